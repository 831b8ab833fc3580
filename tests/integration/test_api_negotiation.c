/* Content negotiation and versions (reference 1.4, 4.8, 6.6): every
 * version clients send is accepted and echoed in Content-Type, unknown
 * ones get 406 + Error, and /api/versions lists them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"

VRT_SUITE(.name = "negotiation", .jobs = 3, .redis_db = 2);

#define ORG_LIST_TYPE "application/vnd.vmware.vcloud.orgList+xml"
#define SUPPORTED     "[1.5, 5.1, 5.5, 5.6, 5.7, 9.0, 20.0]"

static const char *const versions[] = {"1.5", "5.1", "5.5", "5.6", "5.7", "9.0", "20.0"};

/* GET path as admin-a with this Accept header ("" for none). */
static void get_accept(const char *path, const char *accept, struct vrt_resp *r)
{
	struct vrt_call call = {.path = path, .token = vrt_token(VRT_ADMIN_A), .accept = accept};
	cr_assert_eq(vrt_call(&call, r), 0, "GET %s: no response", path);
}

/* 200 with Content-Type type;version=version and a valid body. */
static void assert_negotiated(const char *path, const char *accept, const char *type,
			      const char *version)
{
	struct vrt_resp r;
	get_accept(path, accept, &r);
	cr_assert_eq(r.status, 200, "Accept '%s': %ld\n%s", accept, r.status, r.body);
	char *expected = NULL;
	cr_assert(asprintf(&expected, "%s;version=%s", type, version) > 0);
	const char *ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strcmp(ct, expected) == 0, "Accept '%s': Content-Type '%s', expected '%s'",
		  accept, ct ? ct : "(none)", expected);
	vrt_assert_valid(&r, accept);
	free(expected);
	vrt_resp_free(&r);
}

static void assert_not_acceptable(const char *accept)
{
	struct vrt_resp r;
	get_accept("/api/org", accept, &r);
	vrt_assert_error(&r, 406, "NOT_ACCEPTABLE", accept);
	char *message = vrt_xpath_str(r.body, "string(/v:Error/@message)");
	cr_assert(strncmp(message, "The request has invalid accept header", 37) == 0,
		  "Accept '%s': message '%s'", accept, message);
	cr_assert(strstr(message, "Supported API versions are: " SUPPORTED),
		  "Accept '%s': the message does not list the versions: %s", accept, message);
	/* the error's own Content-Type names a version the server speaks */
	const char *ct = vrt_header(&r, "Content-Type");
	const char *v = strstr(ct, ";version=") + 9;
	bool known = false;
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
		known = known || strcmp(v, versions[i]) == 0;
	cr_assert(known, "406 with Content-Type '%s'", ct);
	free(message);
	vrt_resp_free(&r);
}

#define VERSION_TEST(name, version)                                                                \
	Test(compat_6_6, accepts_and_echoes_version_##name)                                        \
	{                                                                                          \
		assert_negotiated("/api/org", "application/*+xml;version=" version, ORG_LIST_TYPE, \
				  version);                                                        \
	}

VERSION_TEST(1_5, "1.5")
VERSION_TEST(5_1, "5.1")
VERSION_TEST(5_5, "5.5")
VERSION_TEST(5_6, "5.6")
VERSION_TEST(5_7, "5.7")
VERSION_TEST(9_0, "9.0")
VERSION_TEST(20_0, "20.0")

Test(compat_6_6, version_star_means_the_latest)
{
	assert_negotiated("/api/org", "application/*+xml;version=*", ORG_LIST_TYPE, "20.0");
}

Test(compat_6_6, missing_accept_means_the_latest)
{
	assert_negotiated("/api/org", "", ORG_LIST_TYPE, "20.0");
}

Test(compat_6_6, media_range_without_version_means_the_latest)
{
	assert_negotiated("/api/org", "application/*+xml", ORG_LIST_TYPE, "20.0");
	assert_negotiated("/api/org", "*/*", ORG_LIST_TYPE, "20.0");
}

Test(compat_6_6, vr_version_parameter_is_ignored)
{
	assert_negotiated("/api/org", "application/*+xml;version=5.6;vr-version=4.0", ORG_LIST_TYPE,
			  "5.6");
	assert_negotiated("/api/org", "application/*+xml;vr-version=4.0;version=5.1", ORG_LIST_TYPE,
			  "5.1");
}

Test(compat_6_6, vcat_accept_20_0_with_vr_version_4_0_is_accepted)
{
	assert_negotiated("/api/vr/replications/" VRT_REPL_A1,
			  "application/*+xml;version=20.0;vr-version=4.0",
			  "application/vnd.vmware.hcs.replicationGroup+xml", "20.0");
}

Test(compat_6_6, specific_media_type_with_version_is_accepted)
{
	assert_negotiated("/api/org", ORG_LIST_TYPE ";version=5.1", ORG_LIST_TYPE, "5.1");
}

Test(compat_6_6, accept_is_read_case_and_space_insensitively)
{
	assert_negotiated("/api/org", "APPLICATION/*+XML;VERSION=5.5", ORG_LIST_TYPE, "5.5");
	assert_negotiated("/api/org", "application/*+xml ; version = 5.7 ", ORG_LIST_TYPE, "5.7");
	assert_negotiated("/api/org", "application/*+xml;version=\"9.0\"", ORG_LIST_TYPE, "9.0");
}

Test(compat_6_6, first_acceptable_media_range_wins)
{
	assert_negotiated("/api/org", "application/json, application/*+xml;version=5.1",
			  ORG_LIST_TYPE, "5.1");
	assert_negotiated("/api/org",
			  "application/*+xml;version=31.0, application/*+xml;version=1.5",
			  ORG_LIST_TYPE, "1.5");
}

Test(compat_6_6, unknown_version_is_406_not_acceptable_listing_supported_versions)
{
	assert_not_acceptable("application/*+xml;version=31.0");
	struct vrt_resp r;
	get_accept("/api/org", "application/*+xml;version=31.0", &r);
	char *message = vrt_xpath_str(r.body, "string(/v:Error/@message)");
	cr_assert(strstr(message, "31.0"), "the message does not name the version: %s", message);
	free(message);
	vrt_resp_free(&r);
	assert_not_acceptable("application/*+xml;version=1.0");
	assert_not_acceptable("application/*+xml;version=5.55");
}

Test(compat_6_6, json_is_406_not_acceptable)
{
	assert_not_acceptable("application/json");
	assert_not_acceptable("application/json;version=5.5");
}

Test(compat_6_6, malformed_accept_headers_are_406_errors)
{
	static const char *const cases[] = {
		"garbage",
		";;;",
		",,,,",
		"=,=;=",
		"text/html",
		"application/*+xml;version=",
		"application/*+xml;version=abc",
		"application/*+xml;version=5.5.5",
		"application/*+xml;version=5.5;q=0",
		"application/*+xml;version=-1",
		"application/*+xml;version='5.5'",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_not_acceptable(cases[i]);
	char *huge = malloc(4097);
	memset(huge, 'a', 4096);
	huge[4096] = '\0';
	assert_not_acceptable(huge);
	memcpy(huge, "application/*+xml;version=", 26);
	assert_not_acceptable(huge);
	free(huge);
}

Test(compat_6_6, negotiation_comes_before_authentication)
{
	/* vCD refuses the Accept of a login attempt before looking at its
	 * credentials; clients report that 406, not a 401 */
	struct vrt_call call = {.method = "POST",
				.path = "/api/sessions",
				.accept = "application/*+xml;version=31.0"};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_error(&r, 406, "NOT_ACCEPTABLE", "login with an unknown version");
	vrt_resp_free(&r);
}

Test(compat_6_6, every_supported_version_logs_in_and_is_echoed)
{
	char *c = NULL;
	cr_assert(asprintf(&c, "%s:%s", "t01@tenant-a", VRT_PASSWORD) > 0);
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		char accept[64];
		snprintf(accept, sizeof accept, "application/*+xml;version=%s", versions[i]);
		struct vrt_call call = {
			.method = "POST", .path = "/api/sessions", .basic = c, .accept = accept};
		struct vrt_resp r;
		cr_assert_eq(vrt_call(&call, &r), 0);
		cr_assert_eq(r.status, 200, "%s: %ld\n%s", accept, r.status, r.body);
		char expected[128];
		snprintf(expected, sizeof expected,
			 "application/vnd.vmware.vcloud.session+xml;version=%s", versions[i]);
		cr_assert_str_eq(vrt_header(&r, "Content-Type"), expected);
		vrt_assert_valid(&r, accept);
		vrt_resp_free(&r);
	}
	free(c);
}

Test(compat_6_6, every_document_type_echoes_the_version)
{
	static const char *const cases[][2] = {
		{"/api/session", "application/vnd.vmware.vcloud.session+xml"},
		{"/api/org/" VRT_ORG_A, "application/vnd.vmware.vcloud.org+xml"},
		{"/api/vdc/" VRT_VDC_A1, "application/vnd.vmware.vcloud.vdc+xml"},
		{"/api/vdc/" VRT_VDC_A1 "/recoveryDetails",
		 "application/vnd.vmware.hcs.vrRecoveryDetails+xml"},
		{"/api/org/" VRT_ORG_A "/replications",
		 "application/vnd.vmware.vcloud.query.references+xml"},
		{"/api/vr/replications/" VRT_REPL_A1,
		 "application/vnd.vmware.hcs.replicationGroup+xml"},
		{"/api/vr/replications/" VRT_REPL_A1 "/instances",
		 "application/vnd.vmware.hcs.replicationGroupInstanceList+xml"},
		{"/api/vr/failbackreplications/" VRT_FAILBACK_A1,
		 "application/vnd.vmware.hcs.failbackReplicationGroup+xml"},
		{"/api/vr/peers/" VRT_PEER_A1, "application/vnd.vmware.hcs.peer+xml"},
		{"/api/vr/peers/" VRT_PEER_A1 "/networkMappings",
		 "application/vnd.vmware.hcs.networkMappings+xml"},
		{"/api/task/" VRT_TASK_A_RUNNING, "application/vnd.vmware.vcloud.task+xml"},
		{"/api/admin/vdcs/query", "application/vnd.vmware.vcloud.query.records+xml"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_negotiated(cases[i][0], "application/*+xml;version=5.7", cases[i][1], "5.7");
}

static void assert_error_version(const char *what, const struct vrt_call *call, long status,
				 const char *version)
{
	struct vrt_resp r;
	cr_assert_eq(vrt_call(call, &r), 0);
	vrt_assert_error(&r, status, NULL, what);
	char expected[96];
	snprintf(expected, sizeof expected, "application/vnd.vmware.vcloud.error+xml;version=%s",
		 version);
	const char *ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strcmp(ct, expected) == 0,
		  "%s: Content-Type '%s' does not echo the negotiated version (expected '%s')",
		  what, ct ? ct : "(none)", expected);
	vrt_resp_free(&r);
}

Test(compat_6_6, version_is_echoed_on_a_404_of_a_missing_object)
{
	struct vrt_call call = {.path = "/api/vr/replications/" VRT_MISSING,
				.token = vrt_token(VRT_ADMIN_A),
				.accept = "application/*+xml;version=5.1"};
	assert_error_version("404 of a missing replication", &call, 404, "5.1");
}

Test(compat_6_6, version_is_echoed_on_a_401)
{
	struct vrt_call call = {.path = "/api/org", .accept = "application/*+xml;version=9.0"};
	assert_error_version("401 without a token", &call, 401, "9.0");
}

Test(compat_6_6, version_is_echoed_on_a_403)
{
	struct vrt_call call = {.path = "/api/admin/vr/nodes",
				.token = vrt_token(VRT_ADMIN_A),
				.accept = "application/*+xml;version=5.6"};
	assert_error_version("403 of an admin route", &call, 403, "5.6");
}

Test(compat_6_6, version_is_echoed_on_a_400)
{
	struct vrt_call call = {.path = "/api/org/" VRT_ORG_A "/replications?page=0",
				.token = vrt_token(VRT_ADMIN_A),
				.accept = "application/*+xml;version=5.5"};
	assert_error_version("400 of a bad page", &call, 400, "5.5");
}

Test(compat_6_6, version_is_echoed_on_a_404_of_an_unknown_path)
{
	struct vrt_call call = {.path = "/api/no/such/thing",
				.token = vrt_token(VRT_ADMIN_A),
				.accept = "application/*+xml;version=5.1"};
	assert_error_version("404 of an unknown path", &call, 404, "5.1");
}

Test(compat_6_6, version_is_echoed_on_a_405)
{
	struct vrt_call call = {.method = "POST",
				.path = "/api/org",
				.token = vrt_token(VRT_ADMIN_A),
				.accept = "application/*+xml;version=1.5"};
	assert_error_version("405 of POST /api/org", &call, 405, "1.5");
}

Test(compat_6_6, versions_document_lists_every_supported_version)
{
	struct vrt_call call = {.path = "/api/versions", .accept = "application/json"};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 200, "GET /api/versions without a session: %ld\n%s", r.status,
		     r.body);
	const char *ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strncmp(ct, "text/xml", 8) == 0, "Content-Type %s", ct ? ct : "(none)");
	vrt_assert_valid(&r, "SupportedVersions");
	cr_assert_eq(vrt_xpath_count(r.body, "/ver:SupportedVersions/ver:VersionInfo"),
		     (long)(sizeof versions / sizeof versions[0]), "%s", r.body);
	char *login = NULL;
	cr_assert(asprintf(&login, "%s/api/sessions", vrt_public_url()) > 0);
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		char xpath[160];
		snprintf(xpath, sizeof xpath,
			 "string(/ver:SupportedVersions/ver:VersionInfo[%zu]/ver:Version)", i + 1);
		char *v = vrt_xpath_str(r.body, xpath);
		cr_assert_str_eq(v, versions[i], "VersionInfo %zu", i + 1);
		free(v);
		snprintf(xpath, sizeof xpath,
			 "string(/ver:SupportedVersions/ver:VersionInfo[%zu]/ver:LoginUrl)", i + 1);
		char *url = vrt_xpath_str(r.body, xpath);
		cr_assert_str_eq(url, login);
		free(url);
	}
	free(login);
	vrt_resp_free(&r);
}

Test(compat_6_6, versions_document_ignores_accept)
{
	struct vrt_resp a, b;
	struct vrt_call plain = {.path = "/api/versions", .accept = ""};
	struct vrt_call odd = {.path = "/api/versions", .accept = "application/*+xml;version=31.0"};
	cr_assert_eq(vrt_call(&plain, &a), 0);
	cr_assert_eq(vrt_call(&odd, &b), 0);
	cr_assert_eq(a.status, 200);
	cr_assert_eq(b.status, 200);
	cr_assert_str_eq(a.body, b.body);
	vrt_resp_free(&a);
	vrt_resp_free(&b);
}
