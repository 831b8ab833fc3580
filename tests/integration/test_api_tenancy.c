/* Tenancy: an org's users see their org's objects; another org's objects
 * are answered exactly like missing ones; System administrators see all;
 * provider routes are theirs alone (reference 1.5, 6.2.6; DESIGN 3). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"

VRT_SUITE(.name = "tenancy", .jobs = 3, .redis_db = 4);

/* A path with one id, split around it. */
struct id_route {
	const char *before;
	const char *after;
};

static const struct id_route org_routes[] = {
	{"/api/org/", ""},
	{"/api/org/", "/replications"},
	{"/api/org/", "/failbackreplications"},
	{"/api/org/", "/enabledForReplicationVdcs"},
	{"/api/tasksList/", ""},
};
static const struct id_route vdc_routes[] = {
	{"/api/vdc/", ""},
	{"/api/vdc/", "/replications"},
	{"/api/vdc/", "/failbackreplications"},
	{"/api/vdc/", "/peers"},
	{"/api/vdc/", "/recoveryDetails"},
};
static const struct id_route peer_routes[] = {
	{"/api/vr/peers/", ""},
	{"/api/vr/peers/", "/replications"},
	{"/api/vr/peers/", "/failbackreplications"},
	{"/api/vr/peers/", "/networkMappings"},
};
static const struct id_route replication_routes[] = {
	{"/api/vr/replications/", ""},
	{"/api/vr/replications/", "/instances"},
};
static const struct id_route failback_routes[] = {
	{"/api/vr/failbackreplications/", ""},
};
static const struct id_route task_routes[] = {
	{"/api/task/", ""},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *path_of(const struct id_route *r, const char *id)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s%s%s", r->before, id, r->after) > 0);
	return p;
}

/* body with every occurrence of from replaced by to (same length). */
static char *replaced(const char *body, const char *from, const char *to)
{
	char *copy = strdup(body);
	size_t n = strlen(from);
	cr_assert_eq(n, strlen(to));
	for (char *p = strstr(copy, from); p; p = strstr(p + n, from))
		memcpy(p, to, n);
	return copy;
}

static void assert_ok(const char *path, const char *token, const char *who)
{
	struct vrt_resp r;
	vrt_get(path, token, &r);
	cr_assert_eq(r.status, 200, "%s GET %s: %ld\n%s", who, path, r.status, r.body);
	vrt_assert_valid(&r, path);
	vrt_resp_free(&r);
}

/* GET before+id+after as token: a 404 whose body equals that of a missing
 * id's (but for the id) and carries nothing of the hidden object. */
static void assert_hidden(const struct id_route *route, const char *id, const char *token,
			  const char *who, const char *secret)
{
	char *path = path_of(route, id);
	char *missing_path = path_of(route, VRT_MISSING);
	struct vrt_resp hidden, missing;
	vrt_get(path, token, &hidden);
	vrt_get(missing_path, token, &missing);
	vrt_assert_error(&missing, 404, "RESOURCE_NOT_FOUND", missing_path);
	vrt_assert_error(&hidden, 404, "RESOURCE_NOT_FOUND", path);
	char *normalised = replaced(hidden.body, id, VRT_MISSING);
	cr_assert_str_eq(normalised, missing.body,
			 "%s: GET %s is told apart from a missing object:\n%s\nvs\n%s", who, path,
			 hidden.body, missing.body);
	cr_assert_str_eq(vrt_header(&hidden, "Content-Type"), vrt_header(&missing, "Content-Type"));
	if (secret)
		cr_assert_null(strstr(hidden.body, secret), "%s: %s leaks '%s'", who, path, secret);
	free(normalised);
	free(path);
	free(missing_path);
	vrt_resp_free(&hidden);
	vrt_resp_free(&missing);
}

static void assert_all_hidden(const struct id_route *routes, size_t n, const char *id,
			      const char *user, const char *secret)
{
	for (size_t i = 0; i < n; i++)
		assert_hidden(&routes[i], id, vrt_token(user), user, secret);
}

static void assert_all_ok(const struct id_route *routes, size_t n, const char *id, const char *user)
{
	for (size_t i = 0; i < n; i++) {
		char *path = path_of(&routes[i], id);
		assert_ok(path, vrt_token(user), user);
		free(path);
	}
}

Test(tenancy, org_list_of_an_org_user_holds_only_its_own_org)
{
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A};
	for (size_t i = 0; i < N(users); i++) {
		struct vrt_resp r;
		vrt_get("/api/org", vrt_token(users[i]), &r);
		cr_assert_eq(r.status, 200);
		vrt_assert_valid(&r, "OrgList");
		cr_assert_eq(vrt_xpath_count(r.body, "/v:OrgList/v:Org"), 1, "%s:\n%s", users[i],
			     r.body);
		char *name = vrt_xpath_str(r.body, "string(/v:OrgList/v:Org/@name)");
		cr_assert_str_eq(name, VRT_ORG_A_NAME);
		char *href = vrt_xpath_str(r.body, "string(/v:OrgList/v:Org/@href)");
		size_t len = strlen(href);
		cr_assert(len > 36 && strcmp(href + len - 36, VRT_ORG_A) == 0, "href %s", href);
		free(name);
		free(href);
		vrt_resp_free(&r);
	}
}

Test(tenancy, org_users_read_every_object_of_their_org)
{
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A};
	for (size_t i = 0; i < N(users); i++) {
		assert_all_ok(org_routes, N(org_routes), VRT_ORG_A, users[i]);
		assert_all_ok(vdc_routes, N(vdc_routes), VRT_VDC_A1, users[i]);
		assert_all_ok(peer_routes, N(peer_routes), VRT_PEER_A1, users[i]);
		assert_all_ok(replication_routes, N(replication_routes), VRT_REPL_A1, users[i]);
		assert_all_ok(failback_routes, N(failback_routes), VRT_FAILBACK_A1, users[i]);
		assert_all_ok(task_routes, N(task_routes), VRT_TASK_A_RUNNING, users[i]);
		assert_all_ok(task_routes, N(task_routes), VRT_TASK_A_ERROR, users[i]);
	}
}

Test(tenancy, objects_of_org_b_are_404_to_org_a_exactly_like_missing_ones)
{
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A};
	for (size_t i = 0; i < N(users); i++) {
		assert_all_hidden(org_routes, N(org_routes), VRT_ORG_B, users[i], VRT_ORG_B_NAME);
		assert_all_hidden(vdc_routes, N(vdc_routes), VRT_VDC_B1, users[i], "vdc-b1");
		assert_all_hidden(vdc_routes, N(vdc_routes), VRT_VDC_B2, users[i], "vdc-b2");
		assert_all_hidden(peer_routes, N(peer_routes), VRT_PEER_B1, users[i], "onprem-b");
		assert_all_hidden(replication_routes, N(replication_routes), VRT_REPL_B1, users[i],
				  "b-vm-01");
		assert_all_hidden(failback_routes, N(failback_routes), VRT_FAILBACK_B1, users[i],
				  "b-vm-01");
		assert_all_hidden(task_routes, N(task_routes), VRT_TASK_B, users[i], "b-vm-01");
	}
}

Test(tenancy, objects_of_org_a_are_404_to_org_b_exactly_like_missing_ones)
{
	assert_all_hidden(org_routes, N(org_routes), VRT_ORG_A, VRT_ADMIN_B, VRT_ORG_A_NAME);
	assert_all_hidden(vdc_routes, N(vdc_routes), VRT_VDC_A1, VRT_ADMIN_B, "vdc-a1");
	assert_all_hidden(peer_routes, N(peer_routes), VRT_PEER_A1, VRT_ADMIN_B, "onprem-a");
	assert_all_hidden(replication_routes, N(replication_routes), VRT_REPL_A1, VRT_ADMIN_B,
			  "web01");
	assert_all_hidden(failback_routes, N(failback_routes), VRT_FAILBACK_A1, VRT_ADMIN_B,
			  "web01");
	assert_all_hidden(task_routes, N(task_routes), VRT_TASK_A_ERROR, VRT_ADMIN_B,
			  VRT_TASK_A_ERROR_VENDOR);
}

Test(tenancy, system_org_is_404_to_org_users)
{
	struct id_route org = {"/api/org/", ""};
	assert_hidden(&org, vrt_system_org(), vrt_token(VRT_ADMIN_A), VRT_ADMIN_A, "System");
}

Test(tenancy, ids_of_the_wrong_kind_are_404_like_missing_ones)
{
	/* A's own failback group is no incoming group, and the reverse */
	assert_all_hidden(replication_routes, N(replication_routes), VRT_FAILBACK_A1, VRT_ADMIN_A,
			  NULL);
	assert_all_hidden(failback_routes, N(failback_routes), VRT_REPL_A1, VRT_ADMIN_A, NULL);
	/* ids of one kind of object used as another's */
	assert_all_hidden(vdc_routes, N(vdc_routes), VRT_ORG_A, VRT_ADMIN_A, NULL);
	assert_all_hidden(org_routes, N(org_routes), VRT_VDC_A1, VRT_ADMIN_A, NULL);
	assert_all_hidden(peer_routes, N(peer_routes), VRT_REPL_A1, VRT_ROOT, NULL);
}

Test(tenancy, revoked_peer_is_404_like_a_missing_one)
{
	assert_all_hidden(peer_routes, N(peer_routes), VRT_PEER_A3, VRT_ADMIN_A, "onprem-a-old");
	assert_all_hidden(peer_routes, N(peer_routes), VRT_PEER_A3, VRT_ROOT, "onprem-a-old");
	struct vrt_resp r;
	vrt_get("/api/vdc/" VRT_VDC_A1 "/peers", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference"), 2, "%s", r.body);
	cr_assert_null(strstr(r.body, VRT_PEER_A3));
	vrt_resp_free(&r);
}

Test(tenancy, uppercase_ids_of_another_org_are_404_like_missing_ones)
{
	struct vrt_resp upper, lower;
	vrt_get("/api/vr/replications/40000000-0000-4000-8000-0000000000B1", vrt_token(VRT_ADMIN_A),
		&upper);
	vrt_get("/api/vr/replications/" VRT_REPL_B1, vrt_token(VRT_ADMIN_A), &lower);
	vrt_assert_error(&upper, 404, "RESOURCE_NOT_FOUND", "uppercase id of B");
	cr_assert_str_eq(upper.body, lower.body);
	vrt_resp_free(&upper);
	vrt_resp_free(&lower);
}

Test(tenancy, aliases_do_not_bypass_tenancy)
{
	static const struct id_route aliased[] = {
		{"/api/compute/api/vr/replications/", ""},
		{"/api/api/vr/replications/", ""},
		{"/api/compute/api/org/", "/replications"},
	};
	assert_hidden(&aliased[0], VRT_REPL_B1, vrt_token(VRT_ADMIN_A), VRT_ADMIN_A, "b-vm-01");
	assert_hidden(&aliased[1], VRT_REPL_B1, vrt_token(VRT_ADMIN_A), VRT_ADMIN_A, "b-vm-01");
	assert_hidden(&aliased[2], VRT_ORG_B, vrt_token(VRT_ADMIN_A), VRT_ADMIN_A, "b-vm-01");
}

Test(tenancy, sysadmin_sees_every_org_and_its_objects)
{
	struct vrt_resp r;
	vrt_get("/api/org", vrt_token(VRT_ROOT), &r);
	cr_assert_eq(r.status, 200);
	vrt_assert_valid(&r, "OrgList of root");
	cr_assert_eq(vrt_xpath_count(r.body, "/v:OrgList/v:Org"), 3, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:OrgList/v:Org[@name='System']"), 1);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:OrgList/v:Org[@name='tenant-a']"), 1);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:OrgList/v:Org[@name='tenant-b']"), 1);
	vrt_resp_free(&r);
	assert_all_ok(org_routes, N(org_routes), VRT_ORG_B, VRT_ROOT);
	assert_all_ok(org_routes, N(org_routes), VRT_ORG_A, VRT_ROOT);
	assert_all_ok(vdc_routes, N(vdc_routes), VRT_VDC_B1, VRT_ROOT);
	assert_all_ok(peer_routes, N(peer_routes), VRT_PEER_B1, VRT_ROOT);
	assert_all_ok(replication_routes, N(replication_routes), VRT_REPL_B1, VRT_ROOT);
	assert_all_ok(replication_routes, N(replication_routes), VRT_REPL_A1, VRT_ROOT);
	assert_all_ok(failback_routes, N(failback_routes), VRT_FAILBACK_B1, VRT_ROOT);
	assert_all_ok(task_routes, N(task_routes), VRT_TASK_B, VRT_ROOT);
	assert_all_ok(task_routes, N(task_routes), VRT_TASK_A_RUNNING, VRT_ROOT);
}

Test(tenancy, org_users_get_403_on_provider_routes)
{
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A, VRT_ADMIN_B};
	static const char *const paths[] = {
		"/api/admin/vr/nodes",
		"/api/admin/vr/replications/" VRT_REPL_A1 "/details",
		"/api/admin/vr/replications/" VRT_REPL_B1 "/details",
		"/api/admin/vr/replications/" VRT_MISSING "/details",
	};
	for (size_t u = 0; u < N(users); u++) {
		for (size_t p = 0; p < N(paths); p++) {
			struct vrt_resp r;
			vrt_get(paths[p], vrt_token(users[u]), &r);
			vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", paths[p]);
			cr_assert_null(strstr(r.body, "worker-1"));
			vrt_resp_free(&r);
		}
	}
}

Test(tenancy, sysadmin_reads_provider_routes)
{
	assert_ok("/api/admin/vr/nodes", vrt_token(VRT_ROOT), VRT_ROOT);
	assert_ok("/api/admin/vr/replications/" VRT_REPL_A1 "/details", vrt_token(VRT_ROOT),
		  VRT_ROOT);
	assert_ok("/api/admin/vr/replications/" VRT_REPL_B1 "/details", vrt_token(VRT_ROOT),
		  VRT_ROOT);
	struct vrt_resp r;
	vrt_get("/api/admin/vr/replications/" VRT_MISSING "/details", vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "details of a missing replication");
	vrt_resp_free(&r);
}

static void assert_vdc_records(const char *path, const char *user, long expected)
{
	struct vrt_resp r;
	vrt_get(path, vrt_token(user), &r);
	cr_assert_eq(r.status, 200, "%s %s: %ld\n%s", user, path, r.status, r.body);
	vrt_assert_valid(&r, path);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:QueryResultRecords/v:OrgVdcRecord"), expected,
		     "%s %s:\n%s", user, path, r.body);
	char *total = vrt_xpath_str(r.body, "string(/v:QueryResultRecords/@total)");
	cr_assert_eq(strtol(total, NULL, 10), expected, "total %s", total);
	free(total);
	vrt_resp_free(&r);
}

Test(compat_6_2_6, vdcs_query_has_exactly_one_record_for_a_single_vdc_tenant)
{
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A};
	for (size_t i = 0; i < N(users); i++) {
		assert_vdc_records("/api/admin/vdcs/query", users[i], 1);
		assert_vdc_records("/api/admin/vdcs/query/", users[i], 1);
		struct vrt_resp r;
		vrt_get("/api/admin/vdcs/query/", vrt_token(users[i]), &r);
		char *href =
			vrt_xpath_str(r.body, "string(/v:QueryResultRecords/v:OrgVdcRecord/@href)");
		char *expected = NULL;
		cr_assert(asprintf(&expected, "%s/api/vdc/%s", vrt_public_url(), VRT_VDC_A1) > 0);
		cr_assert_str_eq(href, expected);
		free(href);
		free(expected);
		vrt_resp_free(&r);
	}
}

Test(tenancy, vdcs_query_lists_every_vdc_for_sysadmin_and_only_own_for_tenants)
{
	assert_vdc_records("/api/admin/vdcs/query", VRT_ROOT, 3);
	assert_vdc_records("/api/admin/vdcs/query", VRT_ADMIN_B, 2);
	struct vrt_resp r;
	vrt_get("/api/admin/vdcs/query", vrt_token(VRT_ADMIN_B), &r);
	cr_assert_null(strstr(r.body, VRT_VDC_A1));
	cr_assert_null(strstr(r.body, "tenant-a"));
	vrt_resp_free(&r);
}

Test(tenancy, listings_hold_only_the_orgs_own_replications)
{
	struct vrt_resp r;
	vrt_get("/api/org/" VRT_ORG_A "/replications?pageSize=128", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference"), VRT_REPL_A_COUNT);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference[contains(@href, "
					     "'40000000-0000-4000-8000-00000000')]"),
		     VRT_REPL_A_COUNT);
	cr_assert_null(strstr(r.body, VRT_REPL_B1));
	cr_assert_null(strstr(r.body, VRT_FAILBACK_A1), "a failback group among incoming ones");
	vrt_resp_free(&r);
	vrt_get("/api/org/" VRT_ORG_B "/replications", vrt_token(VRT_ROOT), &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference"), 2, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References[@total='2']"), 1);
	vrt_resp_free(&r);
	vrt_get("/api/org/" VRT_ORG_A "/failbackreplications", vrt_token(VRT_USER_A), &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference"), 1, "%s", r.body);
	cr_assert_not_null(strstr(r.body, VRT_FAILBACK_A1));
	vrt_resp_free(&r);
}

Test(tenancy, enabled_vdcs_list_only_vdcs_enabled_for_replication)
{
	struct vrt_resp r;
	vrt_get("/api/org/" VRT_ORG_B "/enabledForReplicationVdcs", vrt_token(VRT_ADMIN_B), &r);
	cr_assert_eq(r.status, 200);
	vrt_assert_valid(&r, "U3");
	cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference"), 1, "%s", r.body);
	cr_assert_not_null(strstr(r.body, VRT_VDC_B1));
	cr_assert_null(strstr(r.body, VRT_VDC_B2));
	vrt_resp_free(&r);
}

Test(tenancy, org_document_links_only_its_own_vdcs)
{
	struct vrt_resp r;
	vrt_get("/api/org/" VRT_ORG_A, vrt_token(VRT_USER_A), &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Org/v:Link[@type='application/vnd.vmware.vcloud."
					     "vdc+xml']"),
		     1, "%s", r.body);
	cr_assert_not_null(strstr(r.body, VRT_VDC_A1));
	cr_assert_null(strstr(r.body, VRT_VDC_B1));
	vrt_resp_free(&r);
}

Test(tenancy, recovery_details_of_a_vdc_not_enabled_are_404_to_its_own_org)
{
	struct vrt_resp r;
	vrt_get("/api/vdc/" VRT_VDC_B2 "/recoveryDetails", vrt_token(VRT_ADMIN_B), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "recoveryDetails of a VDC not enabled");
	vrt_resp_free(&r);
	vrt_get("/api/vdc/" VRT_VDC_B2, vrt_token(VRT_ADMIN_B), &r);
	cr_assert_eq(r.status, 200, "the VDC itself is visible: %ld", r.status);
	vrt_resp_free(&r);
}

Test(tenancy, reads_of_other_orgs_change_nothing)
{
	assert_all_hidden(replication_routes, N(replication_routes), VRT_REPL_B1, VRT_ADMIN_A,
			  NULL);
	vrt_assert_db_unchanged("after reads across orgs");
}
