/* Bad input on every route of the route table: malformed, hostile and
 * foreign ids, oversized URLs, headers and bodies, bad and foreign tokens,
 * wrong methods. Each answer is an Error with the right status that
 * validates, and nothing in the database changes (DESIGN 8). Internal
 * routes (VR_ROUTE_SERVICE) are called with the suite's service token
 * where others get a user's session; tenant credentials get 403 there,
 * and "another org" is another service credential (404). Their successful
 * calls change replica_servers, so they are made in test_api_internal. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

VRT_SUITE(.name = "badinput", .jobs = 3, .redis_db = 6);

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The pattern with every {id} replaced by id. */
static char *instantiate(const char *pattern, const char *id)
{
	size_t cap = strlen(pattern) + 4 * strlen(id) + 1;
	char *out = calloc(1, cap);
	const char *p = pattern;
	for (const char *hole; (hole = strstr(p, "{id}")) != NULL; p = hole + 4) {
		strncat(out, p, (size_t)(hole - p));
		strcat(out, id);
	}
	strcat(out, p);
	return out;
}

/* A fixture object each {id} route answers 200 for, and who may read it. */
static const char *good_id(const char *pattern)
{
	if (strncmp(pattern, "/api/org/", 9) == 0)
		return VRT_ORG_A;
	if (strncmp(pattern, "/api/vdc/", 9) == 0)
		return VRT_VDC_A1;
	if (strncmp(pattern, "/api/vr/failbackreplications/", 29) == 0)
		return VRT_FAILBACK_A1;
	if (strncmp(pattern, "/api/vr/peers/", 14) == 0)
		return VRT_PEER_A1;
	if (strstr(pattern, "/replications/{id}"))
		return VRT_REPL_A1;
	if (strcmp(pattern, "/api/task/{id}/action/cancel") == 0)
		return VRT_TASK_A_ERROR; /* finished: a cancel is refused and changes nothing */
	if (strncmp(pattern, "/api/task/", 10) == 0)
		return VRT_TASK_A_RUNNING;
	if (strncmp(pattern, "/api/tasksList/", 15) == 0)
		return VRT_ORG_A;
	if (strncmp(pattern, "/api/admin/vdc/", 15) == 0)
		return VRT_VDC_A1;
	if (strncmp(pattern, "/api/admin/extension/vr/vrs/", 28) == 0)
		return VRT_SERVER_1;
	if (strncmp(pattern, "/api/internal/servers/", 22) == 0)
		return VRT_SERVER_1; /* the server of the credential VRT_SERVICE */
	if (strncmp(pattern, "/api/internal/jobs/", 19) == 0)
		return VRT_JOB_QUEUED; /* queued, and nothing here starts it */
	cr_assert_fail("no fixture id for route %s: add one", pattern);
	return NULL;
}

static bool sysadmin_only(const struct vr_route *r)
{
	return r->flags & VR_ROUTE_SYSADMIN;
}

static bool has_id(const struct vr_route *r)
{
	return strstr(r->pattern, "{id}") != NULL;
}

static bool internal(const struct vr_route *r)
{
	return r->flags & VR_ROUTE_SERVICE;
}

/* Every {id} route, as its own method, with id in place of the ids: a 404
 * Error (the path names no object). */
static void assert_bad_id_everywhere(const char *id)
{
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (!has_id(route))
			continue;
		char *path = instantiate(route->pattern, id);
		/* the caller each route serves: root, or the service on internal ones */
		struct vrt_call call = {.method = route->method,
					.path = path,
					.token = internal(route) ? NULL : vrt_token(VRT_ROOT),
					.bearer = internal(route) ? vrt_service_token(VRT_SERVICE)
								  : NULL};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		char *what = vrt_fmt("%s %s", route->method, path);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", what);
		free(what);
		free(path);
		vrt_resp_free(&r);
	}
}

Test(badinput, non_uuid_ids_are_404_errors_on_every_route)
{
	static const char *const ids[] = {
		"not-a-uuid",
		"12345",
		"0",
		"40000000-0000-4000-8000-00000000000g",
		"40000000000040008000000000000001",
		"40000000-0000-4000-8000-0000000000011",
		"40000000-0000-4000-8000-00000000001",
		"%7B40000000-0000-4000-8000-000000000001%7D",
		"40000000_0000_4000_8000_000000000001",
		"%2040000000-0000-4000-8000-00000000001",
		"urn:vcloud:replicationGroup:40000000-0000-4000-8000-000000000001",
		"40000000-0000-4000-8000-000000000001.xml",
		"-40000000-0000-4000-8000-00000000001",
	};
	for (size_t i = 0; i < N(ids); i++)
		assert_bad_id_everywhere(ids[i]);
	char *long_id = malloc(2001);
	memset(long_id, 'a', 2000);
	long_id[2000] = '\0';
	assert_bad_id_everywhere(long_id);
	free(long_id);
	vrt_assert_db_unchanged("after non-UUID ids");
}

Test(badinput, ids_with_sql_metacharacters_are_404_errors_on_every_route)
{
	static const char *const ids[] = {
		"40000000-0000-4000-8000-00000000000'",
		"40000000-0000-4000-8000-0000000000;1",
		"40000000-0000-4000-8000-00000000--01",
		"%27%3B%20DROP%20TABLE%20orgs%3B%20--",
		"1%27%20OR%20%271%27%3D%271",
		"'--",
		"40000000-0000-4000-8000-000000000001'%20OR%20'1'='1",
		"$1",
		"%5C%27",
	};
	for (size_t i = 0; i < N(ids); i++)
		assert_bad_id_everywhere(ids[i]);
	vrt_assert_db_unchanged("after SQL metacharacters in ids");
	char *orgs = vrt_db_value("SELECT count(*) FROM orgs");
	cr_assert_str_eq(orgs, "3");
	free(orgs);
}

Test(badinput, path_traversal_is_404_errors_on_every_route)
{
	static const char *const ids[] = {
		"..%2F..%2Fetc%2Fpasswd",
		"%2e%2e",
		"%2e%2e%2f%2e%2e%2forg",
		"..",
		"..%5C..%5Cwindows",
		"%252e%252e%252f",
		"....//",
		"%c0%ae%c0%ae",
	};
	for (size_t i = 0; i < N(ids); i++)
		assert_bad_id_everywhere(ids[i]);
	/* literal dot segments are not resolved into another route */
	static const char *const paths[] = {
		"/api/vr/replications/../../api/org",
		"/api/vr/replications/" VRT_REPL_A1 "/../../../org",
		"/api/org/./" VRT_ORG_A,
		"/api/vdc/%2e%2e/%2e%2e/org",
	};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get(paths[i], vrt_token(VRT_ROOT), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", paths[i]);
		vrt_resp_free(&r);
	}
	vrt_assert_db_unchanged("after path traversal");
}

static void to_upper(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

/* An internal {id} route with id in upper, mixed and lower case: each
 * reaches the route, whose answer to a tenant session is 403 (a 404 would
 * mean the id was not taken for one). Its 204 to the service is in
 * test_api_internal: it changes the server's heartbeat or state. */
static void assert_internal_route_takes_any_case(const struct vr_route *route, const char *upper,
						 const char *mixed, const char *lower)
{
	const char *variants[] = {lower, upper, mixed};
	for (size_t v = 0; v < N(variants); v++) {
		char *path = instantiate(route->pattern, variants[v]);
		struct vrt_call call = {
			.method = route->method, .path = path, .token = vrt_token(VRT_ADMIN_A)};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		char *what = vrt_fmt("%s %s as a tenant", route->method, path);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
		free(what);
		free(path);
		vrt_resp_free(&r);
	}
}

Test(badinput, uppercase_uuids_are_accepted_and_canonicalised_on_every_route)
{
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (!has_id(route) || (strcmp(route->method, "GET") != 0 && !internal(route)))
			continue;
		const char *id = good_id(route->pattern);
		char upper[40], mixed[40];
		snprintf(upper, sizeof upper, "%s", id);
		to_upper(upper);
		snprintf(mixed, sizeof mixed, "%s", id);
		/* every other letter in capitals */
		bool flip = false;
		for (size_t i = 0; i < 36; i++)
			if (isalpha((unsigned char)mixed[i]) && (flip = !flip))
				mixed[i] = (char)toupper((unsigned char)mixed[i]);
		if (internal(route)) {
			assert_internal_route_takes_any_case(route, upper, mixed, id);
			continue;
		}
		char *lower_path = instantiate(route->pattern, id);
		const char *user = sysadmin_only(route) ? VRT_ROOT : VRT_ADMIN_A;
		struct vrt_resp canonical;
		vrt_get(lower_path, vrt_token(user), &canonical);
		cr_assert_eq(canonical.status, 200, "GET %s: %ld\n%s", lower_path, canonical.status,
			     canonical.body);
		const char *variants[] = {upper, mixed};
		for (size_t v = 0; v < 2; v++) {
			char *path = instantiate(route->pattern, variants[v]);
			struct vrt_resp r;
			vrt_get(path, vrt_token(user), &r);
			cr_assert_eq(r.status, 200, "GET %s: %ld\n%s", path, r.status, r.body);
			vrt_assert_valid(&r, path);
			cr_assert_str_eq(r.body, canonical.body,
					 "GET %s differs from the lowercase request", path);
			if (strcmp(variants[v], id) != 0)
				cr_assert_null(strstr(r.body, variants[v]),
					       "%s: the id is not canonical", path);
			free(path);
			vrt_resp_free(&r);
		}
		free(lower_path);
		vrt_resp_free(&canonical);
	}
}

Test(badinput, objects_of_another_org_are_404_on_every_id_route)
{
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (!has_id(route))
			continue;
		char *path = instantiate(route->pattern, good_id(route->pattern));
		struct vrt_call call = {
			.method = route->method, .path = path, .token = vrt_token(VRT_ADMIN_B)};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		if (sysadmin_only(route) || internal(route))
			vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", path);
		else
			vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", path);
		cr_assert_null(strstr(r.body, "tenant-a"), "%s leaks org A", path);
		vrt_resp_free(&r);
		/* (the jobs' routes belong to no credential; the replications'
		 * server route is for proxies: a worker is refused 403; the
		 * instances route is the worker's, and a body-less call is a
		 * 415 that changes nothing) */
		if (internal(route) && strncmp(route->pattern, "/api/internal/servers/", 22) == 0) {
			/* the server of another credential is answered like a missing one */
			struct vrt_call other = {.method = route->method,
						 .path = path,
						 .bearer = vrt_service_token(VRT_SERVICE_OTHER)};
			vrt_call_ok(&other, &r);
			char *what = vrt_fmt("%s %s by %s", route->method, path, VRT_SERVICE_OTHER);
			vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", what);
			cr_assert_null(strstr(r.body, VRT_SERVICE), "%s names the owner", what);
			free(what);
			vrt_resp_free(&r);
		} else if (internal(route) && strstr(route->pattern, "/replications/{id}")) {
			struct vrt_call worker = {.method = route->method,
						  .path = path,
						  .bearer = vrt_service_token(VRT_SERVICE)};
			vrt_call_ok(&worker, &r);
			if (strstr(route->pattern, "/instances"))
				vrt_assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", path);
			else
				vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", path);
			vrt_resp_free(&r);
		}
		free(path);
	}
	vrt_assert_db_unchanged("after foreign reads");
}

/* Jobs belong to no credential: any worker may run any job, but only as a
 * replica server of its own. Starting the fixture job as another
 * credential's server is 403 and changes nothing (test_api_jobs has the
 * other refusals of the job routes, which start and end jobs). */
Test(badinput, starting_a_job_as_another_credentials_server_is_403)
{
	static const char body[] = "<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
				   "</ServerId><Deliveries>1</Deliveries></JobStart>";
	const char *headers[] = {"Content-Type: application/vnd.vrcloud.internal+xml", NULL};
	struct vrt_call call = {.method = "POST",
				.path = "/api/internal/jobs/" VRT_JOB_QUEUED "/start",
				.bearer = vrt_service_token(VRT_SERVICE_OTHER),
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
			 "start as " VRT_SERVICE_OTHER " naming " VRT_SERVICE "'s server");
	cr_assert_null(strstr(r.body, "tenant-a"), "the refusal leaks the job's org");
	vrt_resp_free(&r);
	vrt_assert_db_unchanged("after a start as another credential's server");
}

/* A concrete path for any route, as readable by admin-a or root. */
static char *route_path(const struct vr_route *route)
{
	return has_id(route) ? instantiate(route->pattern, good_id(route->pattern))
			     : strdup(route->pattern);
}

Test(badinput, bad_tokens_are_401_on_every_authenticated_route)
{
	char *long_token = malloc(301);
	memset(long_token, 'A', 300);
	long_token[300] = '\0';
	const char *tokens[] = {
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"' OR 1=1 --",
		"%00",
		VRT_TOKEN_EXPIRED,
		VRT_TOKEN_IDLE,
		long_token,
	};
	/* the expired and idle sessions really are in the database */
	char *known =
		vrt_db_value("SELECT count(*) FROM sessions WHERE token_hash IN"
			     " (sha256(convert_to($1, 'UTF8')), sha256(convert_to($2, 'UTF8')))",
			     VRT_TOKEN_EXPIRED, VRT_TOKEN_IDLE);
	cr_assert_str_eq(known, "2");
	free(known);
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (route->flags & VR_ROUTE_PUBLIC)
			continue;
		char *path = route_path(route);
		for (size_t t = 0; t < N(tokens); t++) {
			struct vrt_call call = {
				.method = route->method, .path = path, .token = tokens[t]};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what =
				vrt_fmt("%s %s with token '%.20s'", route->method, path, tokens[t]);
			vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", what);
			cr_assert_not_null(vrt_header(&r, "WWW-Authenticate"), "%s", what);
			free(what);
			vrt_resp_free(&r);
		}
		/* the same, and a revoked service token, as service tokens (Bearer) */
		for (size_t t = 0; t <= N(tokens); t++) {
			const char *bearer = t < N(tokens) ? tokens[t]
							   : vrt_service_token(VRT_SERVICE_REVOKED);
			struct vrt_call call = {
				.method = route->method, .path = path, .bearer = bearer};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what =
				vrt_fmt("%s %s with Bearer '%.20s'", route->method, path, bearer);
			vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", what);
			cr_assert_not_null(vrt_header(&r, "WWW-Authenticate"), "%s", what);
			free(what);
			vrt_resp_free(&r);
		}
		/* and as a cookie */
		char *cookie = vrt_fmt("Cookie: vcloud-token=%s", VRT_TOKEN_EXPIRED);
		const char *headers[] = {cookie, NULL};
		struct vrt_call call = {.method = route->method, .path = path, .headers = headers};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", path);
		vrt_resp_free(&r);
		free(cookie);
		free(path);
	}
	free(long_token);
	vrt_assert_db_unchanged("after bad tokens");
}

/* Methods a path answers: those of its routes, plus HEAD with GET. */
static void allowed_methods(const char *pattern, char *out, size_t size)
{
	out[0] = '\0';
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		if (strcmp(r->pattern, pattern) != 0)
			continue;
		snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "",
			 r->method);
		if (strcmp(r->method, "GET") == 0)
			snprintf(out + strlen(out), size - strlen(out), ",HEAD");
	}
}

static bool in_list(const char *list, const char *method)
{
	char *copy = strdup(list), *save = NULL;
	bool found = false;
	for (char *tok = strtok_r(copy, ", ", &save); tok && !found;
	     tok = strtok_r(NULL, ", ", &save))
		found = strcmp(tok, method) == 0;
	free(copy);
	return found;
}

/* The Allow header names exactly the methods of `expected` (any order). */
static void assert_allow(const char *allow, const char *expected, const char *what)
{
	cr_assert_not_null(allow, "%s: no Allow header", what);
	char *copy = strdup(allow), *save = NULL;
	size_t n = 0;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		cr_assert(in_list(expected, tok), "%s: Allow '%s' names %s", what, allow, tok);
		n++;
	}
	free(copy);
	copy = strdup(expected);
	size_t m = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		m++;
	free(copy);
	cr_assert_eq(n, m, "%s: Allow '%s', expected %s", what, allow, expected);
}

Test(badinput, wrong_methods_are_405_with_allow_on_every_route)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		char allowed[64];
		allowed_methods(route->pattern, allowed, sizeof allowed);
		char *path = route_path(route);
		for (size_t m = 0; m < N(methods); m++) {
			if (in_list(allowed, methods[m]))
				continue;
			struct vrt_call call = {
				.method = methods[m], .path = path, .token = vrt_token(VRT_ROOT)};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what = vrt_fmt("%s %s", methods[m], path);
			vrt_assert_error(&r, 405, "METHOD_NOT_ALLOWED", what);
			assert_allow(vrt_header(&r, "Allow"), allowed, what);
			free(what);
			vrt_resp_free(&r);
		}
		free(path);
	}
	vrt_assert_db_unchanged("after wrong methods");
}

Test(badinput, lowercase_and_unknown_methods_are_405)
{
	static const char *const methods[] = {"get", "FOO", "PROPFIND"};
	for (size_t m = 0; m < N(methods); m++) {
		struct vrt_call call = {
			.method = methods[m], .path = "/api/org", .token = vrt_token(VRT_ADMIN_A)};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		vrt_assert_error(&r, 405, "METHOD_NOT_ALLOWED", methods[m]);
		vrt_resp_free(&r);
	}
}

Test(badinput, url_path_of_20_kib_is_414_error)
{
	char *segment = vrt_filler(20 * 1024, 'a');
	char *path = vrt_fmt("/api/org/%s", segment);
	struct vrt_resp r;
	vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 414, "REQUEST_URI_TOO_LONG", "20 KiB path");
	vrt_resp_free(&r);
	free(path);
	free(segment);
}

Test(badinput, url_query_of_20_kib_is_414_error)
{
	char *value = vrt_filler(20 * 1024, 'a');
	char *path = vrt_fmt("/api/org?filler=%s", value);
	struct vrt_resp r;
	vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 414, "REQUEST_URI_TOO_LONG", "20 KiB query string");
	vrt_resp_free(&r);
	free(path);
	free(value);
}

Test(badinput, header_of_64_kib_is_431_error)
{
	char *value = vrt_filler(64 * 1024, 'h');
	char *line = vrt_fmt("X-Filler: %s", value);
	const char *headers[] = {line, NULL};
	struct vrt_call call = {
		.path = "/api/org", .token = vrt_token(VRT_ADMIN_A), .headers = headers};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	vrt_assert_error(&r, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "64 KiB header");
	vrt_resp_free(&r);
	free(line);
	free(value);
}

Test(badinput, many_headers_of_64_kib_in_all_are_431_error)
{
	const char *headers[65];
	char *lines[64];
	char *value = vrt_filler(1000, 'h');
	for (int i = 0; i < 64; i++) {
		lines[i] = vrt_fmt("X-Filler-%d: %s", i, value);
		headers[i] = lines[i];
	}
	headers[64] = NULL;
	struct vrt_call call = {
		.path = "/api/org", .token = vrt_token(VRT_ADMIN_A), .headers = headers};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	vrt_assert_error(&r, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "64 headers of 1 KiB");
	vrt_resp_free(&r);
	for (int i = 0; i < 64; i++)
		free(lines[i]);
	free(value);
}

Test(badinput, oversized_token_cookie_and_accept_are_refused)
{
	char *big = vrt_filler(10 * 1024, 'T');
	struct vrt_call token = {.path = "/api/org", .token = big};
	struct vrt_resp r;
	vrt_call_ok(&token, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "10 KiB token");
	vrt_resp_free(&r);
	char *cookie = vrt_fmt("Cookie: vcloud-token=%s", big);
	const char *headers[] = {cookie, NULL};
	struct vrt_call by_cookie = {.path = "/api/org", .headers = headers};
	vrt_call_ok(&by_cookie, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "10 KiB cookie");
	vrt_resp_free(&r);
	struct vrt_call accept = {
		.path = "/api/org", .token = vrt_token(VRT_ADMIN_A), .accept = big};
	vrt_call_ok(&accept, &r);
	vrt_assert_error(&r, 406, "NOT_ACCEPTABLE", "10 KiB Accept");
	vrt_resp_free(&r);
	free(cookie);
	free(big);
}

static void post_sessions_body(const char *body, size_t len, bool chunked,
			       const char *const *headers, struct vrt_resp *r)
{
	char *c = vrt_fmt("%s:%s", VRT_ADMIN_A, VRT_PASSWORD);
	struct vrt_call call = {.method = "POST",
				.path = "/api/sessions",
				.basic = c,
				.body = body,
				.body_len = (long)len,
				.chunked = chunked,
				.headers = headers};
	vrt_call_ok(&call, r);
	free(c);
}

Test(badinput, body_over_the_cap_on_post_sessions_is_413_error)
{
	size_t len = 64 * 1024 + 1;
	char *body = vrt_filler(len, 'x');
	struct vrt_resp r;
	post_sessions_body(body, len, false, NULL, &r);
	vrt_assert_error(&r, 413, "REQUEST_ENTITY_TOO_LARGE", "64 KiB + 1 body");
	cr_assert_null(vrt_header(&r, "x-vcloud-authorization"));
	vrt_resp_free(&r);
	static const char *const expect[] = {"Expect: 100-continue", NULL};
	post_sessions_body(body, len, false, expect, &r);
	vrt_assert_error(&r, 413, "REQUEST_ENTITY_TOO_LARGE", "64 KiB + 1 body after 100-continue");
	vrt_resp_free(&r);
	free(body);
	vrt_assert_db_unchanged("after oversized login bodies");
}

Test(badinput, chunked_body_over_the_cap_on_post_sessions_is_413_error)
{
	size_t len = 200 * 1024;
	char *body = vrt_filler(len, 'y');
	struct vrt_resp r;
	post_sessions_body(body, len, true, NULL, &r);
	vrt_assert_error(&r, 413, "REQUEST_ENTITY_TOO_LARGE", "200 KiB chunked body");
	cr_assert_null(vrt_header(&r, "x-vcloud-authorization"));
	vrt_resp_free(&r);
	free(body);
	vrt_assert_db_unchanged("after an oversized chunked login body");
}

Test(badinput, body_at_the_cap_on_post_sessions_is_read_and_ignored)
{
	/* wrong credentials: a 64 KiB body (the cap) reaches the login, which
	 * answers its challenge (no session is opened, nothing changes) */
	size_t len = 64 * 1024;
	char *body = vrt_filler(len, 'z');
	char *c = vrt_fmt("t01@tenant-a:%s", "not-the-password");
	struct vrt_call call = {.method = "POST",
				.path = "/api/sessions",
				.basic = c,
				.body = body,
				.body_len = (long)len};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	cr_assert_eq(r.status, 401, "a 64 KiB body (the cap): %ld\n%.500s", r.status, r.body);
	cr_assert_eq(r.body_len, 0);
	vrt_resp_free(&r);
	free(c);
	free(body);
	vrt_assert_db_unchanged("after a login body at the cap");
}

Test(badinput, nul_byte_in_the_path_or_query_does_not_truncate_it)
{
	static const char *const paths[] = {
		"/api/org%00/garbage",
		"/api/vr/replications/" VRT_REPL_A1 "%00.xml",
		"/api/vr/replications/" VRT_REPL_A1 "%00/../../org",
		"/api/session%00",
	};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get(paths[i], vrt_token(VRT_ADMIN_A), &r);
		cr_assert(r.status == 404 || r.status == 400,
			  "GET %s answered %ld: the path was cut at the NUL\n%.500s", paths[i],
			  r.status, r.body);
		vrt_assert_valid(&r, paths[i]);
		vrt_resp_free(&r);
	}
	/* a number that ends in a NUL is not that number */
	struct vrt_resp r;
	vrt_get("/api/org/" VRT_ORG_A "/replications?page=1%00", vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 400, "BAD_REQUEST", "page=1%00");
	vrt_resp_free(&r);
}

Test(badinput, malformed_percent_encoding_and_raw_bytes_in_the_path_are_404)
{
	static const char *const paths[] = {
		"/api/org/%zz",
		"/api/org/%",
		"/api/org/%4",
		"/api/vr/replications/%E2%80%AE",
		"/api/vr/replications/%ff%fe",
	};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get(paths[i], vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", paths[i]);
		vrt_resp_free(&r);
	}
	static const char raw[] =
		"GET /api/org/\xff\xfe\x01 HTTP/1.1\r\nHost: x\r\n"
		"Accept: application/*+xml;version=5.5\r\nConnection: close\r\n\r\n";
	struct vrt_resp r;
	cr_assert_eq(vrt_raw(raw, sizeof raw - 1, &r), 0, "no answer to raw bytes in the path");
	cr_assert(r.status == 404 || r.status == 400, "raw bytes in the path: %ld", r.status);
	if (r.status == 404)
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "raw bytes in the path");
	vrt_resp_free(&r);
}

Test(badinput, hostile_query_parameters_are_400_errors)
{
	static const char *const queries[] = {
		"page=1;DROP%20TABLE%20orgs",
		"pageSize=1%27",
		"page=%27%20OR%201=1",
	};
	for (size_t i = 0; i < N(queries); i++) {
		char *path = vrt_fmt("/api/org/" VRT_ORG_A "/replications?%s", queries[i]);
		struct vrt_resp r;
		vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 400, "BAD_REQUEST", path);
		free(path);
		vrt_resp_free(&r);
	}
	vrt_assert_db_unchanged("after hostile query parameters");
}

Test(badinput, server_survives_garbage_on_the_wire)
{
	static const char *const junk[] = {
		"GARBAGE\r\n\r\n",
		"GET\r\n\r\n",
		"GET /api/org HTTP/9.9\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"GET /api/org HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"GET /api/org HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	};
	for (size_t i = 0; i < N(junk); i++) {
		struct vrt_resp r;
		vrt_raw(junk[i], strlen(junk[i]), &r);
		if (r.status)
			cr_assert((r.status >= 400 && r.status < 500) || r.status == 505,
				  "junk %zu answered %ld", i, r.status);
		vrt_resp_free(&r);
	}
	struct vrt_resp r;
	vrt_get("/api/org", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200, "the server no longer answers after junk: %ld", r.status);
	vrt_resp_free(&r);
	vrt_assert_db_unchanged("after junk requests");
}

Test(badinput, overlong_basic_credentials_are_401)
{
	char *password = vrt_filler(2048, 'p');
	char *user = vrt_filler(300, 'u');
	char *c1 = vrt_fmt("t02@tenant-a:%s", password);
	char *c2 = vrt_fmt("%s@tenant-a:%s", user, VRT_PASSWORD);
	char *c3 = vrt_fmt("admin-a@%s:%s", user, VRT_PASSWORD);
	const char *creds[] = {c1, c2, c3};
	for (size_t i = 0; i < N(creds); i++) {
		struct vrt_call call = {
			.method = "POST", .path = "/api/sessions", .basic = creds[i]};
		struct vrt_resp r;
		vrt_call_ok(&call, &r);
		cr_assert_eq(r.status, 401, "credentials %zu: %ld", i, r.status);
		cr_assert_eq(r.body_len, 0);
		vrt_resp_free(&r);
	}
	free(c1);
	free(c2);
	free(c3);
	free(password);
	free(user);
	vrt_assert_db_unchanged("after overlong credentials");
}
