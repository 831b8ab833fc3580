/* The router, over vrcloud-api's own route table: ids, trailing slashes,
 * compatibility aliases, HEAD, 405 with its Allow text, and 404. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "vrcloud/http.h"
#include "vrcloud/uuid.h"

struct match {
	enum vr_match result;
	const struct vr_route *route;
	char ids[4][VR_UUID_LEN + 1];
	unsigned nids;
	char allow[128];
};

static enum vr_match route(struct match *m, const char *method, const char *path)
{
	memset(m, 0, sizeof *m);
	m->nids = 99;
	m->result = vr_router_match(vr_api_routes, vr_api_aliases, method, path, &m->route, m->ids,
				    &m->nids, m->allow, sizeof m->allow);
	return m->result;
}

/* Fill the route's pattern with ids; ids[i] is used for the i-th {id}.
 * Returns how many ids the pattern has. */
static unsigned fill_with(char *out, size_t size, const char *pattern, const char *const ids[4])
{
	unsigned n = 0;
	size_t o = 0;
	for (const char *p = pattern; *p;) {
		if (strncmp(p, "{id}", 4) == 0) {
			cr_assert_lt(n, 4u);
			o += (size_t)snprintf(out + o, size - o, "%s", ids[n++]);
			p += 4;
		} else {
			cr_assert_lt(o + 1, size);
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return n;
}

static unsigned fill(char *out, size_t size, const char *pattern, char ids[4][VR_UUID_LEN + 1])
{
	const char *const p[4] = {ids[0], ids[1], ids[2], ids[3]};
	return fill_with(out, size, pattern, p);
}

static void fresh_ids(char ids[4][VR_UUID_LEN + 1])
{
	for (int i = 0; i < 4; i++)
		cr_assert_eq(vr_uuid_generate(ids[i]), 0);
}

static size_t route_count(void)
{
	size_t n = 0;
	while (vr_api_routes[n].method)
		n++;
	return n;
}

Test(router, table_is_sane)
{
	cr_assert_gt(route_count(), 20, "the route table looks empty");
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		cr_assert_not_null(r->pattern);
		cr_assert_not_null(r->handler, "%s %s has no handler", r->method, r->pattern);
		cr_assert_eq(r->pattern[0], '/', "%s", r->pattern);
		cr_assert_neq(r->pattern[strlen(r->pattern) - 1], '/', "%s", r->pattern);
		/* no two lines claim the same method and pattern */
		for (const struct vr_route *q = r + 1; q->method; q++)
			cr_assert(strcmp(r->method, q->method) || strcmp(r->pattern, q->pattern),
				  "duplicate route %s %s", r->method, r->pattern);
	}
}

Test(router, every_route_matches_itself)
{
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		char ids[4][VR_UUID_LEN + 1];
		fresh_ids(ids);
		char path[512];
		unsigned n = fill(path, sizeof path, r->pattern, ids);
		struct match m;
		cr_assert_eq(route(&m, r->method, path), VR_MATCH_OK, "%s %s", r->method, path);
		cr_assert_eq(m.route, r, "%s %s matched %s %s", r->method, path, m.route->method,
			     m.route->pattern);
		cr_assert_eq(m.nids, n, "%s: %u ids", path, m.nids);
		for (unsigned i = 0; i < n; i++)
			cr_assert_str_eq(m.ids[i], ids[i]);
	}
}

Test(router, uppercase_ids_are_canonicalised)
{
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		if (!strstr(r->pattern, "{id}"))
			continue;
		char ids[4][VR_UUID_LEN + 1], upper[4][VR_UUID_LEN + 1];
		fresh_ids(ids);
		for (int i = 0; i < 4; i++) {
			for (int c = 0; c <= VR_UUID_LEN; c++)
				upper[i][c] = (char)toupper((unsigned char)ids[i][c]);
			/* mixed case too */
			if (i % 2)
				upper[i][0] = ids[i][0];
		}
		char path[512];
		unsigned n = fill(path, sizeof path, r->pattern, upper);
		struct match m;
		cr_assert_eq(route(&m, r->method, path), VR_MATCH_OK, "%s", path);
		cr_assert_eq(m.route, r);
		for (unsigned i = 0; i < n; i++)
			cr_assert_str_eq(m.ids[i], ids[i], "not canonical: %s", m.ids[i]);
	}
}

static void expect_not_found(const char *method, const char *path)
{
	struct match m;
	cr_expect_eq(route(&m, method, path), VR_MATCH_NOT_FOUND, "%s %s: %d", method, path,
		     m.result);
}

Test(router, bad_ids_do_not_match)
{
	const char *bad[] = {
		"not-a-uuid",
		"0f8fad5b-d9cb-469f-a165-70867728950",	 /* 35 */
		"0f8fad5b-d9cb-469f-a165-70867728950e0", /* 37 */
		"0f8fad5bd9cb469fa16570867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950g",
		"0f8fad5b_d9cb_469f_a165_70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950%",
		"..",
		"%2e",
	};
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		if (!strstr(r->pattern, "{id}"))
			continue;
		for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
			const char *const ids[4] = {bad[b], bad[b], bad[b], bad[b]};
			char path[512];
			fill_with(path, sizeof path, r->pattern, ids);
			expect_not_found(r->method, path);
		}
	}
}

Test(router, trailing_slash_only_where_flagged)
{
	int flagged = 0;
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		char ids[4][VR_UUID_LEN + 1];
		fresh_ids(ids);
		char path[512];
		fill(path, sizeof path, r->pattern, ids);
		strcat(path, "/");
		struct match m;
		enum vr_match got = route(&m, r->method, path);
		if (r->flags & VR_ROUTE_SLASH) {
			flagged++;
			cr_expect_eq(got, VR_MATCH_OK, "%s %s", r->method, path);
			cr_expect_eq(m.route, r);
		} else {
			cr_expect_eq(got, VR_MATCH_NOT_FOUND, "%s %s matched", r->method, path);
		}
		/* never two slashes */
		strcat(path, "/");
		cr_expect_eq(route(&m, r->method, path), VR_MATCH_NOT_FOUND, "%s %s", r->method,
			     path);
	}
	cr_assert_geq(flagged, 4, "the slash-tolerant routes of the clients are gone");
}

Test(router, client_slash_routes)
{
	/* the trailing slashes real clients send (vcav-api 6.1) */
	struct match m;
	cr_assert_eq(route(&m, "GET", "/api/org/"), VR_MATCH_OK);
	cr_assert_str_eq(m.route->pattern, "/api/org");
	cr_assert_eq(route(&m, "GET", "/api/session/"), VR_MATCH_OK);
	cr_assert_eq(route(&m, "DELETE", "/api/session/"), VR_MATCH_OK);
	cr_assert_str_eq(m.route->method, "DELETE");
	cr_assert_eq(route(&m, "GET", "/api/admin/vdcs/query/"), VR_MATCH_OK);
	cr_assert_str_eq(m.route->pattern, "/api/admin/vdcs/query");
}

Test(router, aliases)
{
	char id[VR_UUID_LEN + 1];
	cr_assert_eq(vr_uuid_generate(id), 0);
	const char *prefixes[] = {"/api/api/", "/api/compute/api/"};
	for (size_t i = 0; i < 2; i++) {
		for (const struct vr_route *r = vr_api_routes; r->method; r++) {
			if (strncmp(r->pattern, "/api/", 5) != 0)
				continue;
			char ids[4][VR_UUID_LEN + 1];
			fresh_ids(ids);
			char plain[512], path[600];
			unsigned n = fill(plain, sizeof plain, r->pattern, ids);
			snprintf(path, sizeof path, "%s%s", prefixes[i], plain + 5);
			struct match m;
			cr_assert_eq(route(&m, r->method, path), VR_MATCH_OK, "%s %s", r->method,
				     path);
			cr_assert_eq(m.route, r, "%s", path);
			cr_assert_eq(m.nids, n);
			for (unsigned k = 0; k < n; k++)
				cr_assert_str_eq(m.ids[k], ids[k]);
		}
	}
	/* the alias with the uppercase id of the vCloud Air client */
	char upper[VR_UUID_LEN + 1], path[128];
	for (int c = 0; c <= VR_UUID_LEN; c++)
		upper[c] = (char)toupper((unsigned char)id[c]);
	snprintf(path, sizeof path, "/api/compute/api/org/%s/replications", upper);
	struct match m;
	cr_assert_eq(route(&m, "GET", path), VR_MATCH_OK);
	cr_assert_str_eq(m.route->pattern, "/api/org/{id}/replications");
	cr_assert_str_eq(m.ids[0], id);

	/* an alias is a whole-segment prefix, applied once */
	expect_not_found("GET", "/api/apiorg");
	expect_not_found("GET", "/api/compute/org");
	expect_not_found("GET", "/api/compute/api/api/api/org");
	expect_not_found("GET", "/api/api/");
	expect_not_found("GET", "/api/api");
}

Test(router, head_matches_get)
{
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		if (strcmp(r->method, "GET") != 0)
			continue;
		char ids[4][VR_UUID_LEN + 1];
		fresh_ids(ids);
		char path[512];
		fill(path, sizeof path, r->pattern, ids);
		struct match m;
		cr_assert_eq(route(&m, "HEAD", path), VR_MATCH_OK, "HEAD %s", path);
		cr_assert_eq(m.route, r);
	}
	/* HEAD is not POST */
	struct match m;
	cr_assert_eq(route(&m, "HEAD", "/api/sessions"), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "POST");
}

Test(router, wrong_method_lists_allowed)
{
	struct match m;
	const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		cr_assert_eq(route(&m, methods[i], "/api/org"), VR_MATCH_BAD_METHOD, "%s",
			     methods[i]);
		cr_assert_str_eq(m.allow, "GET, HEAD");
	}
	cr_assert_eq(route(&m, "PUT", "/api/versions"), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "GET, HEAD");

	char path[128];
	char id[VR_UUID_LEN + 1];
	cr_assert_eq(vr_uuid_generate(id), 0);
	snprintf(path, sizeof path, "/api/vr/replications/%s/instances", id);
	cr_assert_eq(route(&m, "DELETE", path), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "GET, HEAD");
	snprintf(path, sizeof path, "/api/vr/replications/%s", id);
	cr_assert_eq(route(&m, "PUT", path), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "GET, HEAD, DELETE");

	cr_assert_eq(route(&m, "GET", "/api/sessions"), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "POST");

	/* a path with several methods lists each once */
	cr_assert_eq(route(&m, "PUT", "/api/session"), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "GET, HEAD, DELETE");
	cr_assert_eq(route(&m, "POST", "/api/session/"), VR_MATCH_BAD_METHOD);
	cr_assert_str_eq(m.allow, "GET, HEAD, DELETE");
}

Test(router, small_allow_buffer_is_not_overrun)
{
	char allow[6];
	memset(allow, 'Z', sizeof allow);
	const struct vr_route *r = NULL;
	char ids[4][VR_UUID_LEN + 1];
	unsigned n = 0;
	cr_assert_eq(vr_router_match(vr_api_routes, vr_api_aliases, "PUT", "/api/session", &r, ids,
				     &n, allow, sizeof allow),
		     VR_MATCH_BAD_METHOD);
	cr_assert_lt(strlen(allow), sizeof allow);
}

Test(router, empty_segments_and_junk)
{
	const char *paths[] = {
		"",
		"/",
		"//",
		"//api/org",
		"/api//org",
		"/api/org//",
		"/api/vr//replications",
		"/api/vr/replications//",
		"api/org",
		"/API/org",
		"/api/Org",
		"/api/org/.",
		"/api/org/..",
		"/api/nothing",
		"/api/versions/extra",
		"/api/versionsx",
		"/healthz/",
		"/api/vr/replications",
		"/api/org?x=1",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		expect_not_found("GET", paths[i]);

	char id[VR_UUID_LEN + 1], path[200];
	cr_assert_eq(vr_uuid_generate(id), 0);
	snprintf(path, sizeof path, "/api/vr/replications//%s", id);
	expect_not_found("GET", path);
	snprintf(path, sizeof path, "/api/vr/replications/%s//instances", id);
	expect_not_found("GET", path);
	snprintf(path, sizeof path, "/api/vr/replications/%s/instances/", id);
	expect_not_found("GET", path);
	snprintf(path, sizeof path, "/api/vr/replications/%s/unknown", id);
	expect_not_found("GET", path);
}

Test(router, unknown_path_with_unknown_method)
{
	struct match m;
	cr_assert_eq(route(&m, "BREW", "/coffee"), VR_MATCH_NOT_FOUND);
	cr_assert_str_eq(m.allow, "");
}

Test(router, very_long_alias_path)
{
	/* longer than the rewrite buffer: not matched, not overrun */
	static char path[5000];
	strcpy(path, "/api/api/org");
	memset(path + strlen(path), 'x', 4000);
	path[4012] = '\0';
	expect_not_found("GET", path);
}
