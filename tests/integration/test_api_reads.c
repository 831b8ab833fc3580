/* The read side of the API, route by route of the route table, and the
 * wire details clients depend on (reference 6.1, 6.2, 6.3.6, 6.4, 6.7):
 * document shapes and order, tokens, booleans, timestamps, hrefs and
 * their fixed offsets, aliases, HEAD, 405/404, RPO violation, health. The
 * API advertises the 29-character authority RaaSCLI needs. */
#include <criterion/criterion.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

#define PUBLIC "https://p1v17-vcd.vchs.vmware.com:443"

VRT_SUITE(.name = "reads", .jobs = 3, .redis_db = 3, .public_url = PUBLIC);

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- helpers ------------------------------------------------------------- */

/* The path of an href the API wrote (public base stripped). */
static const char *local_path(const char *href)
{
	cr_assert_eq(strncmp(href, PUBLIC "/api", strlen(PUBLIC "/api")), 0,
		     "href %s does not start with the public base URL", href);
	return href + strlen(PUBLIC);
}

/* Names of the element children of the node at xpath, as "v:Link,vr:Rpo". */
static char *child_names(const struct vrt_resp *r, const char *xpath)
{
	char *count_expr = vrt_fmt("count(%s/*)", xpath);
	long n = vrt_xpath_count(r->body, count_expr);
	free(count_expr);
	size_t cap = 64 * (size_t)(n + 1), len = 0;
	char *out = calloc(1, cap);
	for (long i = 1; i <= n; i++) {
		char *ns_expr = vrt_fmt("namespace-uri(%s/*[%ld])", xpath, i);
		char *name_expr = vrt_fmt("local-name(%s/*[%ld])", xpath, i);
		char *ns = vrt_xstr(r, ns_expr);
		char *name = vrt_xstr(r, name_expr);
		const char *prefix = strcmp(ns, "http://www.vmware.com/vr/v6.0") == 0	    ? "vr"
				     : strcmp(ns, "http://www.vmware.com/vcloud/v1.5") == 0 ? "v"
											    : ns;
		len += (size_t)snprintf(out + len, cap - len, "%s%s:%s", i > 1 ? "," : "", prefix,
					name);
		free(ns_expr);
		free(name_expr);
		free(ns);
		free(name);
	}
	return out;
}

static void assert_timestamp(const char *value, const char *what)
{
	regex_t re;
	cr_assert_eq(regcomp(&re,
			     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
			     REG_EXTENDED | REG_NOSUB),
		     0);
	cr_assert_eq(regexec(&re, value, 0, NULL, 0), 0,
		     "%s '%s' is not UTC with milliseconds and Z", what, value);
	regfree(&re);
}

/* --- every route of the table ------------------------------------------ */

struct route_case {
	const char *pattern; /* as in the route table */
	const char *path;    /* a concrete path that must answer 200 */
	const char *user;    /* NULL: no credentials */
	const char *type;    /* Content-Type without the version; NULL: not negotiated */
	bool xml;
};

static const struct route_case get_routes[] = {
	{"/api/versions", "/api/versions", NULL, NULL, true},
	{"/healthz", "/healthz", NULL, NULL, false},
	{"/metrics", "/metrics", NULL, NULL, false},
	{"/api/session", "/api/session", VRT_USER_A, "application/vnd.vmware.vcloud.session+xml",
	 true},
	{"/api/org", "/api/org", VRT_USER_A, "application/vnd.vmware.vcloud.orgList+xml", true},
	{"/api/org/{id}", "/api/org/" VRT_ORG_A, VRT_USER_A,
	 "application/vnd.vmware.vcloud.org+xml", true},
	{"/api/org/{id}/failbackreplications", "/api/org/" VRT_ORG_A "/failbackreplications",
	 VRT_USER_A, VRT_MT_REFS, true},
	{"/api/org/{id}/replications", "/api/org/" VRT_ORG_A "/replications", VRT_USER_A,
	 VRT_MT_REFS, true},
	{"/api/org/{id}/enabledForReplicationVdcs",
	 "/api/org/" VRT_ORG_A "/enabledForReplicationVdcs", VRT_USER_A, VRT_MT_REFS, true},
	{"/api/vdc/{id}", "/api/vdc/" VRT_VDC_A1, VRT_USER_A,
	 "application/vnd.vmware.vcloud.vdc+xml", true},
	{"/api/vdc/{id}/failbackreplications", "/api/vdc/" VRT_VDC_A1 "/failbackreplications",
	 VRT_USER_A, VRT_MT_REFS, true},
	{"/api/vdc/{id}/peers", "/api/vdc/" VRT_VDC_A1 "/peers", VRT_USER_A, VRT_MT_REFS, true},
	{"/api/vdc/{id}/recoveryDetails", "/api/vdc/" VRT_VDC_A1 "/recoveryDetails", VRT_USER_A,
	 "application/vnd.vmware.hcs.vrRecoveryDetails+xml", true},
	{"/api/vdc/{id}/replications", "/api/vdc/" VRT_VDC_A1 "/replications", VRT_USER_A,
	 VRT_MT_REFS, true},
	{"/api/vr/failbackreplications/{id}", "/api/vr/failbackreplications/" VRT_FAILBACK_A1,
	 VRT_USER_A, "application/vnd.vmware.hcs.failbackReplicationGroup+xml", true},
	{"/api/vr/peers/{id}", "/api/vr/peers/" VRT_PEER_A1, VRT_USER_A,
	 "application/vnd.vmware.hcs.peer+xml", true},
	{"/api/vr/peers/{id}/failbackreplications",
	 "/api/vr/peers/" VRT_PEER_A1 "/failbackreplications", VRT_USER_A, VRT_MT_REFS, true},
	{"/api/vr/peers/{id}/networkMappings", "/api/vr/peers/" VRT_PEER_A1 "/networkMappings",
	 VRT_USER_A, "application/vnd.vmware.hcs.networkMappings+xml", true},
	{"/api/vr/peers/{id}/replications", "/api/vr/peers/" VRT_PEER_A1 "/replications",
	 VRT_USER_A, VRT_MT_REFS, true},
	{"/api/vr/replications/{id}", "/api/vr/replications/" VRT_REPL_A1, VRT_USER_A, VRT_MT_RG,
	 true},
	{"/api/vr/replications/{id}/instances", "/api/vr/replications/" VRT_REPL_A1 "/instances",
	 VRT_USER_A, "application/vnd.vmware.hcs.replicationGroupInstanceList+xml", true},
	{"/api/task/{id}", "/api/task/" VRT_TASK_A_RUNNING, VRT_USER_A,
	 "application/vnd.vmware.vcloud.task+xml", true},
	{"/api/tasksList/{id}", "/api/tasksList/" VRT_ORG_A, VRT_USER_A,
	 "application/vnd.vmware.vcloud.tasksList+xml", true},
	{"/api/admin/vdcs/query", "/api/admin/vdcs/query", VRT_USER_A,
	 "application/vnd.vmware.vcloud.query.records+xml", true},
	{"/api/admin/vr/nodes", "/api/admin/vr/nodes", VRT_ROOT,
	 "application/vnd.vmware.hcs.nodes+xml", true},
	{"/api/admin/vr/replications/{id}/details",
	 "/api/admin/vr/replications/" VRT_REPL_A1 "/details", VRT_ROOT,
	 "application/vnd.vmware.hcs.adminReplicationGroupDetails+xml", true},
	{"/api/admin/extension/vr/vrServers", "/api/admin/extension/vr/vrServers", VRT_ROOT,
	 VRT_MT_REFS, true},
	{"/api/admin/extension/vr/vrs/{id}", "/api/admin/extension/vr/vrs/" VRT_SERVER_1, VRT_ROOT,
	 "application/vnd.vmware.hcs.vrServer+xml", true},
	{"/api/admin/extension/vr/vrs/{id}/statistics",
	 "/api/admin/extension/vr/vrs/" VRT_SERVER_1 "/statistics", VRT_ROOT,
	 "application/vnd.vmware.hcs.vrServerStatistics+xml", true},
};

/* Routes of other methods, tested by other programs (sessions; internal,
 * which also checks that every VR_ROUTE_SERVICE route is under
 * /api/internal/; actions and jobs, which check that they know every
 * action and every job route; failback, which checks that it knows every
 * route of failback, network mappings, the provider's actions and the
 * replica servers). */
static const char *const other_routes[] = {
	"POST /api/sessions",
	"DELETE /api/session",
	"POST /api/internal/servers",
	"POST /api/internal/servers/{id}/heartbeat",
	"DELETE /api/internal/servers/{id}",
	"DELETE /api/vr/replications/{id}",
	"POST /api/vr/replications/{id}/action/failover",
	"POST /api/vr/replications/{id}/action/testFailover",
	"POST /api/vr/replications/{id}/action/testCleanup",
	"POST /api/vr/replications/{id}/action/plannedMigration",
	"POST /api/vr/replications/{id}/action/sync",
	"POST /api/vr/replications/{id}/action/pause",
	"POST /api/vr/replications/{id}/action/resume",
	"POST /api/vr/replications/{id}/action/reverse",
	"DELETE /api/vr/failbackreplications/{id}",
	"POST /api/vr/failbackreplications/{id}/action/sync",
	"POST /api/vr/failbackreplications/{id}/action/pause",
	"POST /api/vr/failbackreplications/{id}/action/resume",
	"PUT /api/vr/peers/{id}/networkMappings",
	"POST /api/admin/vdc/{id}/action/editRecoveryDetails",
	"POST /api/admin/vr/replications/{id}/action/moveReplication",
	"DELETE /api/admin/extension/vr/vrs/{id}",
	"POST /api/vr/replications/{id}/action/reconfigure",
	"POST /api/vdc/{id}/peers",
	"POST /api/vdc/{id}/replications",
	"POST /api/internal/jobs/{id}/start",
	"POST /api/internal/jobs/{id}/progress",
	"POST /api/internal/jobs/{id}/complete",
	"POST /api/internal/jobs/{id}/dead",
	"POST /api/task/{id}/action/cancel", /* test_api_cancel */
	"POST /api/internal/sites/verify",
	"POST /api/internal/replications/{id}/server", /* test_tunnel */
	"POST /api/internal/replications/{id}/instances", /* test_api_instances */
};

static const struct route_case *case_for(const char *pattern)
{
	for (size_t i = 0; i < N(get_routes); i++)
		if (strcmp(get_routes[i].pattern, pattern) == 0)
			return &get_routes[i];
	return NULL;
}

Test(routes, every_route_of_the_table_is_covered_by_a_test)
{
	size_t gets = 0;
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		if (strcmp(r->method, "GET") == 0) {
			cr_assert_not_null(case_for(r->pattern),
					   "GET %s is in the route table but has no read test here",
					   r->pattern);
			gets++;
			continue;
		}
		char *line = vrt_fmt("%s %s", r->method, r->pattern);
		bool known = false;
		for (size_t i = 0; i < N(other_routes); i++)
			known = known || strcmp(other_routes[i], line) == 0;
		cr_assert(known, "route %s has no test", line);
		free(line);
	}
	cr_assert_eq(gets, N(get_routes), "a read test names a route the table does not have");
}

Test(routes, every_get_route_answers_200_with_a_valid_document)
{
	for (size_t i = 0; i < N(get_routes); i++) {
		const struct route_case *c = &get_routes[i];
		struct vrt_resp r;
		vrt_get(c->path, c->user ? vrt_token(c->user) : NULL, &r);
		cr_assert_eq(r.status, 200, "GET %s: %ld\n%s", c->path, r.status, r.body);
		if (c->xml)
			vrt_assert_valid(&r, c->path);
		if (c->type) {
			char *ct = vrt_fmt("%s;version=5.5", c->type);
			cr_assert_str_eq(vrt_header(&r, "Content-Type"), ct, "GET %s", c->path);
			free(ct);
		}
		cr_assert_not_null(vrt_header(&r, "X-VMWARE-VCLOUD-REQUEST-ID"), "GET %s", c->path);
		vrt_resp_free(&r);
	}
}

Test(routes, every_get_route_refuses_requests_without_credentials)
{
	for (size_t i = 0; i < N(get_routes); i++) {
		const struct route_case *c = &get_routes[i];
		if (!c->user)
			continue;
		struct vrt_resp r;
		vrt_get(c->path, NULL, &r);
		vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", c->path);
		vrt_resp_free(&r);
	}
}

Test(http, head_answers_every_get_route_with_get_headers_and_no_body)
{
	for (size_t i = 0; i < N(get_routes); i++) {
		const struct route_case *c = &get_routes[i];
		const char *token = c->user ? vrt_token(c->user) : NULL;
		struct vrt_resp get, head;
		vrt_get(c->path, token, &get);
		struct vrt_call call = {.method = "HEAD", .path = c->path, .token = token};
		cr_assert_eq(vrt_call(&call, &head), 0);
		cr_assert_eq(head.status, get.status, "HEAD %s: %ld", c->path, head.status);
		cr_assert_eq(head.body_len, 0, "HEAD %s has a body", c->path);
		cr_assert_str_eq(vrt_header(&head, "Content-Type"),
				 vrt_header(&get, "Content-Type"), "HEAD %s", c->path);
		const char *length = vrt_header(&head, "Content-Length");
		cr_assert(length && strtoul(length, NULL, 10) == get.body_len,
			  "HEAD %s: Content-Length %s, GET body %zu bytes", c->path,
			  length ? length : "(none)", get.body_len);
		vrt_resp_free(&get);
		vrt_resp_free(&head);
	}
}

Test(http, reads_change_nothing_in_the_database)
{
	for (size_t i = 0; i < N(get_routes); i++) {
		struct vrt_resp r;
		vrt_get(get_routes[i].path,
			get_routes[i].user ? vrt_token(get_routes[i].user) : NULL, &r);
		vrt_resp_free(&r);
	}
	vrt_assert_db_unchanged("after reading every route");
}

/* --- 405, 404, the bare base URL ------------------------------------------ */

/* The methods of an Allow value, sorted: "HEAD, GET" -> "GET,HEAD". */
static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *sorted_methods(const char *allow)
{
	char *copy = strdup(allow), *save = NULL, *methods[16];
	size_t n = 0;
	for (char *tok = strtok_r(copy, ", ", &save); tok && n < 16;
	     tok = strtok_r(NULL, ", ", &save))
		methods[n++] = tok;
	qsort(methods, n, sizeof methods[0], compare_strings);
	char *out = calloc(1, strlen(allow) + 2);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, methods[i]);
	}
	free(copy);
	return out;
}

static void assert_method_not_allowed(const char *method, const char *path, const char *allow)
{
	struct vrt_call call = {.method = method, .path = path, .token = vrt_token(VRT_ADMIN_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	char *what = vrt_fmt("%s %s", method, path);
	vrt_assert_error(&r, 405, "METHOD_NOT_ALLOWED", what);
	const char *got = vrt_header(&r, "Allow");
	cr_assert_not_null(got, "%s: no Allow header", what);
	char *got_sorted = sorted_methods(got), *expected_sorted = sorted_methods(allow);
	cr_assert_str_eq(got_sorted, expected_sorted, "%s: Allow '%s', expected '%s'", what, got,
			 allow);
	free(got_sorted);
	free(expected_sorted);
	free(what);
	vrt_resp_free(&r);
}

Test(http, wrong_method_is_405_with_allow)
{
	assert_method_not_allowed("DELETE", "/api/org/" VRT_ORG_A, "GET, HEAD");
	assert_method_not_allowed("POST", "/api/org", "GET, HEAD");
	assert_method_not_allowed("POST", "/api/org/", "GET, HEAD");
	assert_method_not_allowed("PUT", "/api/vr/replications/" VRT_REPL_A1, "GET, HEAD, DELETE");
	assert_method_not_allowed("PATCH", "/api/vdc/" VRT_VDC_A1 "/replications", "GET, HEAD, POST");
	assert_method_not_allowed("GET", "/api/sessions", "POST");
	assert_method_not_allowed("PUT", "/api/session", "GET, HEAD, DELETE");
	assert_method_not_allowed("OPTIONS", "/api/admin/vr/nodes", "GET, HEAD");
	assert_method_not_allowed("DELETE", "/api/compute/api/org", "GET, HEAD");
}

Test(http, unknown_paths_are_404_errors)
{
	static const char *const paths[] = {
		"/",
		"/nothing",
		"/api",
		"/api/",
		"/api/nothing",
		"/api/org/" VRT_ORG_A "/nothing",
		"/api/vr",
		"/api/vr/replications",
		"/api/vr/replications/",
		"/api/vdc/" VRT_VDC_A1 "/replications/extra",
		"/api//org",
		"/API/ORG",
	};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get(paths[i], vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", paths[i]);
		vrt_resp_free(&r);
	}
}

Test(compat_6_3_6, delete_on_the_bare_base_url_has_no_side_effect)
{
	static const char *const paths[] = {"/", "/api", "/api/"};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_call call = {
			.method = "DELETE", .path = paths[i], .token = vrt_token(VRT_ADMIN_A)};
		struct vrt_resp r;
		cr_assert_eq(vrt_call(&call, &r), 0);
		cr_assert(r.status == 200 || r.status == 204 || r.status == 404, "DELETE %s: %ld",
			  paths[i], r.status);
		if (r.body_len)
			vrt_assert_valid(&r, paths[i]);
		vrt_resp_free(&r);
	}
	vrt_assert_db_unchanged("after DELETE on the base URL");
	struct vrt_resp r;
	vrt_get_ok("/api/session", VRT_ADMIN_A, &r);
	vrt_resp_free(&r);
}

/* --- ReplicationGroup ---------------------------------------------------- */

Test(compat_6_7, replication_group_children_are_in_reference_order)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A, &r);
	char *names = child_names(&r, "/vr:ReplicationGroup");
	/* Links first, then the EntityType Description, then 3.1's order */
	const char *links_end = strstr(names, "v:Description");
	cr_assert_not_null(links_end, "%s", names);
	for (const char *p = names; p < links_end; p = strchr(p, ',') + 1)
		cr_assert_eq(strncmp(p, "v:Link,", 7), 0, "not a Link before Description: %s",
			     names);
	cr_assert_str_eq(links_end,
			 "v:Description,vr:Rpo,vr:QuiesceGuestEnabled,"
			 "vr:NetworkCompressionEnabled,vr:PlaceholderVappId,vr:EventPartitionId,"
			 "vr:ReplicationState,vr:VrServerInfo,vr:NextInstanceSequenceNumber,"
			 "vr:Paused,vr:CurrentRpoViolation,vr:TestRecoveryState,vr:RecoveryState,"
			 "vr:ReplicationGroupInstance,vr:LastTestFailoverOperationId");
	free(names);
	names = child_names(&r, "/vr:ReplicationGroup/vr:VrServerInfo");
	cr_assert_str_eq(names, "vr:Uuid,vr:ReplicationTrafficAddress");
	free(names);
	names = child_names(&r, "/vr:ReplicationGroup/vr:ReplicationGroupInstance");
	cr_assert_str_eq(names, "vr:Id,vr:TransferStartTime,vr:TransferSeconds,vr:TransferBytes");
	free(names);
	vrt_resp_free(&r);

	vrt_get_ok("/api/vr/replications/" VRT_REPL_A7, VRT_ADMIN_A, &r);
	names = child_names(&r, "/vr:ReplicationGroup");
	const char *own = strstr(names, "vr:Rpo");
	cr_assert_not_null(own);
	cr_assert_str_eq(own, "vr:Rpo,vr:QuiesceGuestEnabled,vr:NetworkCompressionEnabled,"
			      "vr:EventPartitionId,vr:ReplicationState,vr:VrServerInfo,"
			      "vr:NextInstanceSequenceNumber,vr:Paused,vr:CurrentRpoViolation,"
			      "vr:TestRecoveryState,vr:RecoveryState,vr:RecoveryCompletionTime,"
			      "vr:ReplicationGroupInstance");
	free(names);
	vrt_resp_free(&r);
}

Test(compat_6_7, replication_group_values_come_from_the_replication)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1, VRT_USER_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/@name)", VRT_REPL_A1_NAME);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/@id)",
			"urn:vcloud:replicationGroup:" VRT_REPL_A1);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/@type)", VRT_MT_RG);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/v:Description)",
			"Primary web & database server");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:Rpo)", "240");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:PlaceholderVappId)",
			"urn:vcloud:vapp:e0000000-0000-4000-8000-000000000001");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:EventPartitionId)",
			"f0000000-0000-4000-8000-000000000001");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationState)", "ok");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:VrServerInfo/vr:Uuid)", VRT_SERVER_1);
	vrt_assert_xstr(&r,
			"string(/vr:ReplicationGroup/vr:VrServerInfo/vr:ReplicationTrafficAddress)",
			"127.0.0.1:31031");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)", "4");
	/* the newest instance only */
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroup/vr:ReplicationGroupInstance"),
		     1);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:Id)",
			VRT_INSTANCE_A1_3);
	vrt_assert_xstr(
		&r, "string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:TransferSeconds)",
		"38");
	vrt_assert_xstr(&r,
			"string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:TransferBytes)",
			"262144");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:LastTestFailoverOperationId)",
			"f1000000-0000-4000-8000-000000000001");
	/* names are escaped by the writer, not mangled */
	cr_assert_not_null(strstr(r.body, "web01 &amp; &lt;db&gt;"), "%s", r.body);
	vrt_resp_free(&r);
}

Test(compat_6_2_5, state_tokens_are_the_ones_clients_test)
{
	static const char *const cases[][3] = {
		{VRT_REPL_A1, "none", "notStarted"},
		{VRT_REPL_A4, "complete", "notStarted"},
		{VRT_REPL_A5, "testError", "notStarted"},
		{VRT_REPL_A7, "none", "recovered"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char *path = vrt_fmt("/api/vr/replications/%s", cases[i][0]);
		struct vrt_resp r;
		vrt_get_ok(path, VRT_ADMIN_A, &r);
		vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:TestRecoveryState)",
				cases[i][1]);
		vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:RecoveryState)", cases[i][2]);
		vrt_resp_free(&r);
		free(path);
	}
}

Test(compat_6_2_4, booleans_are_true_or_false)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:QuiesceGuestEnabled)", "true");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NetworkCompressionEnabled)", "true");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:Paused)", "false");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A3, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:Paused)", "true");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:QuiesceGuestEnabled)", "false");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vdc/" VRT_VDC_A1 "/recoveryDetails", VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsPlannedMigrationEnabled)", "false");
	vrt_assert_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsFailoverEnabled)", "true");
	vrt_assert_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsTestFailoverEnabled)", "true");
	vrt_resp_free(&r);
	vrt_get_ok("/api/task/" VRT_TASK_A_RUNNING, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@cancelRequested)", "false");
	vrt_resp_free(&r);
}

Test(compat_6_2_4, timestamps_are_utc_with_milliseconds_and_z)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A, &r);
	char *t = vrt_xstr(&r, "string(//vr:ReplicationGroupInstance/vr:TransferStartTime)");
	assert_timestamp(t, "TransferStartTime");
	free(t);
	vrt_resp_free(&r);
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A7, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:RecoveryCompletionTime)",
			"2024-05-06T07:08:09.123Z");
	vrt_assert_xstr(&r, "string(//vr:ReplicationGroupInstance/vr:TransferStartTime)",
			"2024-05-06T06:00:00.500Z");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1 "/instances", VRT_ADMIN_A, &r);
	for (int i = 1; i <= 3; i++) {
		char *x = vrt_fmt("string(/vr:ReplicationGroupInstanceList/vr:Instance[%d]/"
				  "vr:TransferStartTime)",
				  i);
		t = vrt_xstr(&r, x);
		assert_timestamp(t, "Instance/TransferStartTime");
		free(t);
		free(x);
	}
	vrt_resp_free(&r);
	vrt_get_ok("/api/task/" VRT_TASK_A_ERROR, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@startTime)", "2024-07-02T10:00:00.000Z");
	vrt_assert_xstr(&r, "string(/v:Task/@endTime)", "2024-07-02T10:00:05.250Z");
	vrt_assert_xstr(&r, "string(/v:Task/@expiryTime)", "2024-09-30T10:00:00.000Z");
	vrt_resp_free(&r);
	vrt_get_ok("/api/admin/vr/nodes", VRT_ROOT, &r);
	vrt_assert_xstr(&r, "string(//vr:Node[@name='worker-2']/vr:LastHeartbeat)",
			"2024-03-04T05:06:07.089Z");
	t = vrt_xstr(&r, "string(//vr:Node[@name='worker-1']/vr:LastHeartbeat)");
	assert_timestamp(t, "LastHeartbeat");
	free(t);
	vrt_resp_free(&r);
}

/* --- CurrentRpoViolation -------------------------------------------------- */

static long rpo_violation(const char *id)
{
	char *path = vrt_fmt("/api/vr/replications/%s", id);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *v = vrt_xstr(&r, "string(/vr:ReplicationGroup/vr:CurrentRpoViolation)");
	long minutes = strtol(v, NULL, 10);
	free(v);
	free(path);
	vrt_resp_free(&r);
	return minutes;
}

/* The violation the database clock gives for an unpaused replication:
 * whole minutes since its newest instance minus paused minutes and RPO. */
static long expected_violation(const char *id)
{
	char *v = vrt_db_value("SELECT GREATEST(0, floor(extract(epoch FROM now() -"
			       " max(i.transfer_start_time)) / 60)::bigint - r.paused_minutes"
			       " - r.rpo_minutes) FROM replications r JOIN instances i"
			       " ON i.replication_id = r.id WHERE r.id = $1"
			       " GROUP BY r.paused_minutes, r.rpo_minutes",
			       id);
	cr_assert_not_null(v);
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

Test(rpo, violation_counts_the_minutes_past_the_rpo)
{
	long before = expected_violation(VRT_REPL_A2);
	long got = rpo_violation(VRT_REPL_A2);
	long after = expected_violation(VRT_REPL_A2);
	/* newest instance about 75 minutes old, RPO 15 */
	cr_assert(before >= 60, "fixture: %ld", before);
	cr_assert(got >= before && got <= after, "CurrentRpoViolation %ld, expected %ld..%ld", got,
		  before, after);
}

Test(rpo, no_violation_while_the_newest_instance_is_within_the_rpo)
{
	cr_assert_eq(rpo_violation(VRT_REPL_A1), 0);
}

Test(rpo, violation_of_a_paused_replication_is_frozen_when_it_was_paused)
{
	/* newest instance 200 minutes old, paused 100 minutes ago, RPO 60:
	 * 40 minutes late when paused, and no later */
	cr_assert_eq(rpo_violation(VRT_REPL_A3), 40);
}

Test(rpo, minutes_spent_paused_do_not_count)
{
	long before = expected_violation(VRT_REPL_A6);
	long got = rpo_violation(VRT_REPL_A6);
	long after = expected_violation(VRT_REPL_A6);
	/* newest instance ~100 minutes old, 30 of them paused, RPO 60 */
	cr_assert(before >= 10 && before <= 12, "fixture: %ld", before);
	cr_assert(got >= before && got <= after, "CurrentRpoViolation %ld, expected %ld..%ld", got,
		  before, after);
}

/* --- hrefs ------------------------------------------------------------------ */

/* Every href in the document starts with the public base URL + /api/. */
static void assert_hrefs_absolute(const struct vrt_resp *r, const char *what)
{
	long bad = vrt_xpath_count(r->body, "//@href[not(starts-with(., '" PUBLIC "/api/'))]");
	cr_assert_eq(bad, 0, "%s: %ld hrefs are not absolute under " PUBLIC "/api/:\n%s", what, bad,
		     r->body);
}

/* The root's href ends with the 36-character id of its id URN. */
static void assert_root_href_ends_with_id(const struct vrt_resp *r, const char *root,
					  const char *id)
{
	char *x = vrt_fmt("string(/%s/@href)", root);
	char *href = vrt_xstr(r, x);
	size_t len = strlen(href);
	cr_assert(len > 36 && strcmp(href + len - 36, id) == 0 && href[len - 37] == '/',
		  "%s href '%s' does not end with /%s", root, href, id);
	free(x);
	x = vrt_fmt("string(/%s/@id)", root);
	char *urn = vrt_xstr(r, x);
	size_t ulen = strlen(urn);
	cr_assert(ulen > 36 && strcmp(urn + ulen - 36, id) == 0, "%s id '%s'", root, urn);
	free(x);
	free(urn);
	free(href);
}

Test(compat_6_1_1, hrefs_are_absolute_and_end_with_the_36_character_id)
{
	static const char *const docs[][3] = {
		{"/api/vr/replications/" VRT_REPL_A1, "vr:ReplicationGroup", VRT_REPL_A1},
		{"/api/vr/failbackreplications/" VRT_FAILBACK_A1, "vr:FailbackReplicationGroup",
		 VRT_FAILBACK_A1},
		{"/api/vr/peers/" VRT_PEER_A1, "vr:Peer", VRT_PEER_A1},
		{"/api/org/" VRT_ORG_A, "v:Org", VRT_ORG_A},
		{"/api/vdc/" VRT_VDC_A1, "v:Vdc", VRT_VDC_A1},
		{"/api/task/" VRT_TASK_A_RUNNING, "v:Task", VRT_TASK_A_RUNNING},
	};
	for (size_t i = 0; i < N(docs); i++) {
		struct vrt_resp r;
		vrt_get_ok(docs[i][0], VRT_ADMIN_A, &r);
		assert_hrefs_absolute(&r, docs[i][0]);
		assert_root_href_ends_with_id(&r, docs[i][1], docs[i][2]);
		vrt_resp_free(&r);
	}
	/* every Reference of every listing: href ends with the id of its URN */
	for (size_t i = 0; i < N(get_routes); i++) {
		if (!get_routes[i].type || strcmp(get_routes[i].type, VRT_MT_REFS) != 0)
			continue;
		char *path = vrt_fmt("%s?pageSize=128", get_routes[i].path);
		struct vrt_resp r;
		vrt_get_ok(path, get_routes[i].user, &r);
		assert_hrefs_absolute(&r, path);
		long n = vrt_xpath_count(r.body, "/v:References/v:Reference");
		for (long k = 1; k <= n; k++) {
			char *hx = vrt_fmt("string(/v:References/v:Reference[%ld]/@href)", k);
			char *ix = vrt_fmt("string(/v:References/v:Reference[%ld]/@id)", k);
			char *href = vrt_xstr(&r, hx), *id = vrt_xstr(&r, ix);
			size_t hl = strlen(href), il = strlen(id);
			cr_assert(hl > 36 && il > 36 && vrt_is_uuid(href + hl - 36) &&
					  strcmp(href + hl - 36, id + il - 36) == 0,
				  "%s: Reference href '%s' id '%s'", path, href, id);
			free(hx);
			free(ix);
			free(href);
			free(id);
		}
		free(path);
		vrt_resp_free(&r);
	}
	/* the instances, nodes, details and query documents too */
	static const char *const more[][2] = {
		{"/api/vr/replications/" VRT_REPL_A1 "/instances", VRT_ADMIN_A},
		{"/api/vr/peers/" VRT_PEER_A1 "/networkMappings", VRT_ADMIN_A},
		{"/api/vdc/" VRT_VDC_A1 "/recoveryDetails", VRT_ADMIN_A},
		{"/api/admin/vdcs/query", VRT_ADMIN_A},
		{"/api/admin/vr/nodes", VRT_ROOT},
		{"/api/admin/vr/replications/" VRT_REPL_A1 "/details", VRT_ROOT},
		{"/api/admin/extension/vr/vrs/" VRT_SERVER_1, VRT_ROOT},
		{"/api/admin/extension/vr/vrs/" VRT_SERVER_1 "/statistics", VRT_ROOT},
		{"/api/session", VRT_ADMIN_A},
		{"/api/org", VRT_ROOT},
	};
	for (size_t i = 0; i < N(more); i++) {
		struct vrt_resp r;
		vrt_get_ok(more[i][0], more[i][1], &r);
		assert_hrefs_absolute(&r, more[i][0]);
		vrt_resp_free(&r);
	}
}

/* RaaSCLI cuts ids out of hrefs at fixed offsets. */
static void assert_id_at(const char *href, size_t offset, const char *prefix, const char *id)
{
	cr_assert(strlen(href) == offset + 36, "href '%s' is not %zu + 36 characters", href,
		  offset);
	cr_assert_eq(strncmp(href, prefix, offset), 0, "href '%s' does not start with '%s'", href,
		     prefix);
	cr_assert_str_eq(href + offset, id, "the id at offset %zu of '%s'", offset, href);
}

Test(compat_6_1_2, raascli_fixed_offsets_46_51_58_find_the_ids)
{
	cr_assert_eq(strlen("p1v17-vcd.vchs.vmware.com:443"), 29);
	struct vrt_resp r;
	vrt_get_ok("/api/admin/vdcs/query/", VRT_ADMIN_A, &r);
	char *href = vrt_xstr(&r, "string(/v:QueryResultRecords/v:OrgVdcRecord/@href)");
	assert_id_at(href, 46, PUBLIC "/api/vdc/", VRT_VDC_A1);
	free(href);
	vrt_resp_free(&r);
	vrt_get_ok("/api/vdc/" VRT_VDC_A1 "/peers", VRT_ADMIN_A, &r);
	href = vrt_xstr(&r, "string(/v:References/v:Reference[1]/@href)");
	assert_id_at(href, 51, PUBLIC "/api/vr/peers/", VRT_PEER_A1);
	free(href);
	vrt_resp_free(&r);
	vrt_get_ok("/api/vdc/" VRT_VDC_A1 "/replications", VRT_ADMIN_A, &r);
	href = vrt_xstr(&r, "string(/v:References/v:Reference[1]/@href)");
	assert_id_at(href, 58, PUBLIC "/api/vr/replications/", VRT_REPL_A1);
	free(href);
	vrt_resp_free(&r);
}

Test(compat_6_1_3, session_href_minus_two_segments_still_reaches_the_org_list)
{
	struct vrt_resp session, orgs, derived;
	vrt_get_ok("/api/session", VRT_ADMIN_A, &session);
	char *href = vrt_xstr(&session, "string(/v:Session/@href)");
	cr_assert_str_eq(href, PUBLIC "/api/session/");
	/* the vchs script: base = href without its last two segments */
	for (int i = 0; i < 2; i++)
		*strrchr(href, '/') = '\0';
	char *org_url = vrt_fmt("%s/api/org", href);
	vrt_get_ok(local_path(org_url), VRT_ADMIN_A, &derived);
	vrt_get_ok("/api/org", VRT_ADMIN_A, &orgs);
	cr_assert_str_eq(derived.body, orgs.body);
	char *org_a = vrt_fmt("%s/api/org/%s", href, VRT_ORG_A);
	struct vrt_resp org;
	vrt_get_ok(local_path(org_a), VRT_ADMIN_A, &org);
	cr_assert_eq(vrt_xpath_count(org.body, "/v:Org[@name='tenant-a']"), 1);
	free(href);
	free(org_url);
	free(org_a);
	vrt_resp_free(&session);
	vrt_resp_free(&orgs);
	vrt_resp_free(&derived);
	vrt_resp_free(&org);
}

static void assert_same_document(const char *a, const char *b, const char *user)
{
	struct vrt_resp ra, rb;
	vrt_get_ok(a, user, &ra);
	vrt_get_ok(b, user, &rb);
	cr_assert_str_eq(ra.body, rb.body, "%s and %s answer differently", a, b);
	cr_assert_str_eq(vrt_header(&ra, "Content-Type"), vrt_header(&rb, "Content-Type"));
	vrt_resp_free(&ra);
	vrt_resp_free(&rb);
}

Test(compat_6_1_4, trailing_slash_variants_answer_like_the_plain_paths)
{
	assert_same_document("/api/org/", "/api/org", VRT_ADMIN_A);
	assert_same_document("/api/admin/vdcs/query/", "/api/admin/vdcs/query", VRT_ADMIN_A);
	assert_same_document("/api/admin/vdcs/query/", "/api/admin/vdcs/query", VRT_ROOT);
	assert_same_document("/api/session/", "/api/session", VRT_ADMIN_A);
}

Test(compat_6_1_4, compute_and_double_api_aliases_answer_like_the_plain_paths)
{
	assert_same_document("/api/compute/api/org", "/api/org", VRT_ADMIN_A);
	assert_same_document("/api/compute/api/org/" VRT_ORG_A "/replications",
			     "/api/org/" VRT_ORG_A "/replications", VRT_ADMIN_A);
	assert_same_document("/api/compute/api/vr/replications/" VRT_REPL_A1,
			     "/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A);
	assert_same_document("/api/api/org", "/api/org", VRT_ADMIN_A);
	assert_same_document("/api/api/vdc/" VRT_VDC_A1, "/api/vdc/" VRT_VDC_A1, VRT_ADMIN_A);
}

Test(compat_6_1_5, org_and_vdc_hrefs_are_byte_identical_everywhere)
{
	struct vrt_resp list, org, vdc, u3, query;
	vrt_get_ok("/api/org", VRT_ADMIN_A, &list);
	vrt_get_ok("/api/org/" VRT_ORG_A, VRT_ADMIN_A, &org);
	vrt_get_ok("/api/vdc/" VRT_VDC_A1, VRT_ADMIN_A, &vdc);
	vrt_get_ok("/api/org/" VRT_ORG_A "/enabledForReplicationVdcs", VRT_ADMIN_A, &u3);
	vrt_get_ok("/api/admin/vdcs/query", VRT_ADMIN_A, &query);
	char *org_in_list = vrt_xstr(&list, "string(/v:OrgList/v:Org/@href)");
	char *org_self = vrt_xstr(&org, "string(/v:Org/@href)");
	char *org_up = vrt_xstr(&vdc, "string(/v:Vdc/v:Link[@rel='up']"
				      "[@type='application/vnd.vmware.vcloud.org+xml']/@href)");
	cr_assert_str_eq(org_in_list, org_self);
	cr_assert_str_eq(org_up, org_self);
	char *vdc_in_org = vrt_xstr(&org,
				    "string(/v:Org/v:Link[@type='application/vnd.vmware.vcloud."
				    "vdc+xml']/@href)");
	char *vdc_in_u3 = vrt_xstr(&u3, "string(/v:References/v:Reference/@href)");
	char *vdc_self = vrt_xstr(&vdc, "string(/v:Vdc/@href)");
	char *vdc_record = vrt_xstr(&query, "string(/v:QueryResultRecords/v:OrgVdcRecord/@href)");
	cr_assert_str_eq(vdc_in_org, vdc_self);
	cr_assert_str_eq(vdc_in_u3, vdc_self);
	cr_assert_str_eq(vdc_record, vdc_self);
	cr_assert_str_eq(vdc_self, PUBLIC "/api/vdc/" VRT_VDC_A1);
	free(org_in_list);
	free(org_self);
	free(org_up);
	free(vdc_in_org);
	free(vdc_in_u3);
	free(vdc_self);
	free(vdc_record);
	vrt_resp_free(&list);
	vrt_resp_free(&org);
	vrt_resp_free(&vdc);
	vrt_resp_free(&u3);
	vrt_resp_free(&query);
}

/* --- XML shape --------------------------------------------------------------- */

Test(compat_6_2_1, vr_and_vcd_documents_use_their_namespace_as_default)
{
	static const char *const vr_docs[][2] = {
		{"/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A},
		{"/api/vr/failbackreplications/" VRT_FAILBACK_A1, VRT_ADMIN_A},
		{"/api/vr/replications/" VRT_REPL_A1 "/instances", VRT_ADMIN_A},
		{"/api/vr/peers/" VRT_PEER_A1, VRT_ADMIN_A},
		{"/api/vr/peers/" VRT_PEER_A1 "/networkMappings", VRT_ADMIN_A},
		{"/api/vdc/" VRT_VDC_A1 "/recoveryDetails", VRT_ADMIN_A},
		{"/api/admin/vr/nodes", VRT_ROOT},
		{"/api/admin/vr/replications/" VRT_REPL_A1 "/details", VRT_ROOT},
	};
	static const char *const vcd_docs[][2] = {
		{"/api/session", VRT_ADMIN_A},
		{"/api/org", VRT_ADMIN_A},
		{"/api/org/" VRT_ORG_A, VRT_ADMIN_A},
		{"/api/vdc/" VRT_VDC_A1, VRT_ADMIN_A},
		{"/api/org/" VRT_ORG_A "/replications", VRT_ADMIN_A},
		{"/api/task/" VRT_TASK_A_ERROR, VRT_ADMIN_A},
		{"/api/admin/vdcs/query", VRT_ADMIN_A},
	};
	for (int kind = 0; kind < 2; kind++) {
		size_t n = kind ? N(vcd_docs) : N(vr_docs);
		for (size_t i = 0; i < n; i++) {
			const char *path = kind ? vcd_docs[i][0] : vr_docs[i][0];
			struct vrt_resp r;
			vrt_get_ok(path, kind ? vcd_docs[i][1] : vr_docs[i][1], &r);
			vrt_assert_xstr(&r, "namespace-uri(/*)",
					kind ? "http://www.vmware.com/vcloud/v1.5"
					     : "http://www.vmware.com/vr/v6.0");
			char *name = vrt_xstr(&r, "name(/*)"),
			     *local = vrt_xstr(&r, "local-name(/*)");
			cr_assert_str_eq(name, local, "%s: the root element is prefixed", path);
			free(name);
			free(local);
			/* vCD pieces inside VR documents are in the vCloud namespace */
			cr_assert_eq(vrt_xpath_count(r.body,
						     "//*[local-name()='Link' or "
						     "local-name()='Reference']"
						     "[namespace-uri()!='http://www.vmware.com/"
						     "vcloud/v1.5']"),
				     0, "%s", path);
			vrt_resp_free(&r);
		}
	}
}

Test(compat_6_2_2, references_have_links_then_references_each_with_a_type)
{
	for (size_t i = 0; i < N(get_routes); i++) {
		if (!get_routes[i].type || strcmp(get_routes[i].type, VRT_MT_REFS) != 0)
			continue;
		static const char *const queries[] = {"", "?page=1&pageSize=2",
						      "?page=2&pageSize=2", "?page=99"};
		for (size_t q = 0; q < N(queries); q++) {
			char *path = vrt_fmt("%s%s", get_routes[i].path, queries[q]);
			struct vrt_resp r;
			vrt_get_ok(path, get_routes[i].user, &r);
			cr_assert_eq(vrt_xpath_count(r.body, "/v:References"), 1, "%s", path);
			cr_assert_eq(vrt_xpath_count(r.body, "/v:References/*[not(self::v:Link or "
							     "self::v:Reference)]"),
				     0, "%s: other children\n%s", path, r.body);
			cr_assert_eq(vrt_xpath_count(r.body,
						     "/v:References/*[not(@type) or @type='']"),
				     0, "%s: a child without type\n%s", path, r.body);
			cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Reference/"
							     "following-sibling::v:Link"),
				     0, "%s: a Link after a Reference\n%s", path, r.body);
			cr_assert_eq(vrt_xpath_count(r.body, "/v:References/v:Link[not(@href) or "
							     "not(@rel)]"),
				     0, "%s", path);
			free(path);
			vrt_resp_free(&r);
		}
	}
}

Test(compat_6_2_3, at_most_one_link_of_the_replication_group_and_test_failover_types)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1, VRT_ADMIN_A, &r);
	long rg = vrt_xpath_count(r.body, "/vr:ReplicationGroup/v:Link[@type='" VRT_MT_RG "']");
	long tf = vrt_xpath_count(r.body, "/vr:ReplicationGroup/v:Link[@type='application/vnd."
					  "vmware.hcs.testFailoverParams+xml']");
	cr_assert(rg <= 1 && tf <= 1, "%ld replicationGroup and %ld testFailoverParams links", rg,
		  tf);
	if (rg == 1)
		cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroup/v:Link[@type='" VRT_MT_RG
						     "'][@rel='remove']"),
			     1, "the replicationGroup-typed Link must be the remove link");
	/* the instances link is there for the clients that list them */
	cr_assert_eq(vrt_xpath_count(r.body,
				     "/vr:ReplicationGroup/v:Link[@rel='down'][@type="
				     "'application/vnd.vmware.hcs.replicationGroupInstanceList"
				     "+xml']"),
		     1, "%s", r.body);
	vrt_resp_free(&r);
}

/* --- Tasks --------------------------------------------------------------------- */

Test(compat_6_4_2, running_task_has_progress_and_no_end_time)
{
	struct vrt_resp r;
	vrt_get_ok("/api/task/" VRT_TASK_A_RUNNING, VRT_USER_A, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "running");
	vrt_assert_xstr(&r, "string(/v:Task/v:Progress)", "42");
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/@endTime"), 0);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Error"), 0);
	vrt_resp_free(&r);
}

Test(compat_6_4_3, task_carries_every_field_the_java_client_reads)
{
	struct vrt_resp r;
	vrt_get_ok("/api/task/" VRT_TASK_A_RUNNING, VRT_USER_A, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@href)", PUBLIC "/api/task/" VRT_TASK_A_RUNNING);
	vrt_assert_xstr(&r, "string(/v:Task/@id)", "urn:vcloud:task:" VRT_TASK_A_RUNNING);
	vrt_assert_xstr(&r, "string(/v:Task/@type)", "application/vnd.vmware.vcloud.task+xml");
	vrt_assert_xstr(&r, "string(/v:Task/@name)", "task");
	vrt_assert_xstr(&r, "string(/v:Task/@operation)", "Test failover of replication web01");
	vrt_assert_xstr(&r, "string(/v:Task/@operationName)", "hcsTestFailover");
	vrt_assert_xstr(&r, "string(/v:Task/@startTime)", "2024-07-01T10:00:00.123Z");
	vrt_assert_xstr(&r, "string(/v:Task/@expiryTime)", "2024-09-29T10:00:00.123Z");
	vrt_assert_xstr(&r, "string(/v:Task/v:Owner/@href)",
			PUBLIC "/api/vr/replications/" VRT_REPL_A1);
	vrt_assert_xstr(&r, "string(/v:Task/v:Owner/@type)", VRT_MT_RG);
	vrt_assert_xstr(&r, "string(/v:Task/v:Owner/@name)", "web01");
	vrt_assert_xstr(&r, "string(/v:Task/v:User/@name)", "admin-a");
	vrt_assert_xstr(&r, "string(/v:Task/v:User/@type)",
			"application/vnd.vmware.admin.user+xml");
	char *user = vrt_xstr(&r, "string(/v:Task/v:User/@href)");
	cr_assert(strncmp(user, PUBLIC "/api/admin/user/", strlen(PUBLIC "/api/admin/user/")) ==
				  0 &&
			  vrt_is_uuid(user + strlen(PUBLIC "/api/admin/user/")),
		  "User href %s", user);
	free(user);
	vrt_assert_xstr(&r, "string(/v:Task/v:Organization/@href)", PUBLIC "/api/org/" VRT_ORG_A);
	vrt_assert_xstr(&r, "string(/v:Task/v:Organization/@name)", VRT_ORG_A_NAME);
	char *children = child_names(&r, "/v:Task");
	/* running: it may be canceled (test_api_cancel) */
	cr_assert_str_eq(children, "v:Link,v:Owner,v:User,v:Organization,v:Progress");
	free(children);
	vrt_resp_free(&r);
}

Test(compat_6_4_3, task_href_is_gettable_with_the_same_credentials)
{
	struct vrt_resp r, again;
	vrt_get_ok("/api/task/" VRT_TASK_A_ERROR, VRT_USER_A, &r);
	char *href = vrt_xstr(&r, "string(/v:Task/@href)");
	vrt_get_ok(local_path(href), VRT_USER_A, &again);
	cr_assert_str_eq(again.body, r.body);
	free(href);
	vrt_resp_free(&r);
	vrt_resp_free(&again);
}

Test(compat_6_4_4, failed_task_has_progress_100_and_an_error_with_the_vendor_code)
{
	struct vrt_resp r;
	vrt_get_ok("/api/task/" VRT_TASK_A_ERROR, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(&r, "string(/v:Task/v:Progress)", "100");
	vrt_assert_xstr(&r, "string(/v:Task/@operationKey)", "op-key-1");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)",
			VRT_TASK_A_ERROR_VENDOR);
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@majorErrorCode)", "400");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@minorErrorCode)", "BAD_REQUEST");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@message)",
			"The replication is already test-recovered.");
	char *children = child_names(&r, "/v:Task");
	cr_assert_str_eq(children, "v:Owner,v:Error,v:User,v:Organization,v:Progress,v:Details");
	free(children);
	vrt_resp_free(&r);
}

/* --- other documents ------------------------------------------------------------ */

Test(reads, instances_are_listed_newest_first)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/replications/" VRT_REPL_A1 "/instances", VRT_USER_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance"), 3);
	vrt_assert_xstr(&r, "string(//vr:Instance[1]/vr:Id)", VRT_INSTANCE_A1_3);
	vrt_assert_xstr(&r, "string(//vr:Instance[2]/vr:Id)", VRT_INSTANCE_A1_2);
	vrt_assert_xstr(&r, "string(//vr:Instance[3]/vr:Id)", VRT_INSTANCE_A1_1);
	vrt_assert_xstr(&r, "string(//vr:Instance[3]/vr:TransferSeconds)", "42");
	vrt_assert_xstr(&r, "string(//vr:Instance[3]/vr:TransferBytes)", "1048576");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vr/replications/40000000-0000-4000-8000-000000000009/instances",
		   VRT_USER_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance"), 0);
	vrt_resp_free(&r);
}

Test(reads, network_mappings_list_failover_and_test_mappings_in_order)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/peers/" VRT_PEER_A1 "/networkMappings", VRT_USER_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "//vr:FailoverNetworkMappings/vr:NetworkMappings"), 2,
		     "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "//vr:TestFailoverNetworkMappings/vr:NetworkMappings"),
		     1);
	vrt_assert_xstr(
		&r, "string(//vr:FailoverNetworkMappings/vr:NetworkMappings[1]/vr:SourceNetwork)",
		"VM Network");
	vrt_assert_xstr(
		&r, "string(//vr:FailoverNetworkMappings/vr:NetworkMappings[2]/vr:SourceNetwork)",
		"DMZ & <backup>");
	vrt_assert_xstr(&r,
			"string(//vr:FailoverNetworkMappings/vr:NetworkMappings[2]/"
			"v:TargetNetwork/@name)",
			"org-net-dmz");
	vrt_assert_xstr(&r,
			"string(//vr:TestFailoverNetworkMappings/vr:NetworkMappings[1]/"
			"v:TargetNetwork/@name)",
			"org-net-test");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vr/peers/" VRT_PEER_A2 "/networkMappings", VRT_USER_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "//vr:NetworkMappings"), 0);
	vrt_resp_free(&r);
}

Test(reads, replication_details_list_the_disks)
{
	struct vrt_resp r;
	vrt_get_ok("/api/admin/vr/replications/" VRT_REPL_A1 "/details", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupDetails/vr:Vm/vr:Disk"), 2, "%s",
		     r.body);
	vrt_assert_xstr(&r, "string(//vr:Disk[1]/vr:Uuid)", VRT_DISK_A1_1);
	vrt_assert_xstr(&r, "string(//vr:Disk[1]/vr:DeviceKey)", "2000");
	vrt_assert_xstr(&r, "string(//vr:Disk[2]/vr:DeviceKey)", "2001");
	vrt_resp_free(&r);
}

Test(reads, nodes_list_the_registered_replica_servers)
{
	struct vrt_resp r;
	vrt_get_ok("/api/admin/vr/nodes", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:VrcsNodes/vr:Node"), 2, "%s", r.body);
	vrt_assert_xstr(&r, "string(/vr:VrcsNodes/@total)", "2");
	vrt_assert_xstr(&r, "string(/vr:VrcsNodes/vr:Node[1]/@name)", "worker-1");
	vrt_assert_xstr(&r, "string(/vr:VrcsNodes/vr:Node[2]/@name)", "worker-2");
	vrt_assert_xstr(&r, "string(/vr:VrcsNodes/vr:Node[2]/vr:State)", "disconnected");
	cr_assert_null(strstr(r.body, "worker-old"));
	vrt_resp_free(&r);
}

Test(reads, peer_document_names_the_site)
{
	struct vrt_resp r;
	vrt_get_ok("/api/vr/peers/" VRT_PEER_A1, VRT_USER_A, &r);
	vrt_assert_xstr(&r, "string(/vr:Peer/vr:SiteUuid)", "c0000000-0000-4000-8000-0000000000a1");
	vrt_assert_xstr(&r, "string(/vr:Peer/vr:SiteName)", "onprem-a");
	vrt_assert_xstr(&r, "string(/vr:Peer/v:Link[@rel='up']/@href)",
			PUBLIC "/api/vdc/" VRT_VDC_A1);
	vrt_resp_free(&r);
}

Test(reads, org_and_vdc_documents_link_their_listings)
{
	struct vrt_resp r;
	vrt_get_ok("/api/org/" VRT_ORG_A, VRT_USER_A, &r);
	vrt_assert_xstr(&r, "string(/v:Org/v:Link[@rel='down:replications']/@href)",
			PUBLIC "/api/org/" VRT_ORG_A "/replications");
	vrt_assert_xstr(&r, "string(/v:Org/v:FullName)", "Tenant A & Sons <Ltd>");
	vrt_resp_free(&r);
	vrt_get_ok("/api/vdc/" VRT_VDC_A1, VRT_USER_A, &r);
	vrt_assert_xstr(&r,
			"string(/v:Vdc/v:Link[@type='application/vnd.vmware.hcs.vrRecoveryDetails"
			"+xml']/@href)",
			PUBLIC "/api/vdc/" VRT_VDC_A1 "/recoveryDetails");
	vrt_assert_xstr(&r, "string(/v:Vdc/v:Link[@rel='down:replications']/@href)",
			PUBLIC "/api/vdc/" VRT_VDC_A1 "/replications");
	vrt_resp_free(&r);
}

/* --- health and process life ----------------------------------------------------- */

Test(health, healthz_is_200_when_postgresql_and_redis_answer)
{
	struct vrt_resp r;
	vrt_get("/healthz", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(r.body, "ok\npostgresql: ok\nredis: ok\n");
	vrt_resp_free(&r);
}

/* The line "<family>{<label>=\"<value>\"} N" of a metrics text must read the
 * count of sql. */
static void assert_metric(const char *text, const char *series, const char *sql)
{
	char *count = vrt_db_value(sql);
	char line[256];
	snprintf(line, sizeof line, "\n%s %s\n", series, count);
	cr_assert_not_null(strstr(text, line), "no line '%s %s' in:\n%s", series, count, text);
	free(count);
}

Test(health, metrics_count_jobs_tasks_servers_peers_and_connected_sites)
{
	struct vrt_resp r;
	vrt_get("/metrics", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	const char *type = vrt_header(&r, "Content-Type");
	cr_assert(type && strcmp(type, "text/plain; version=0.0.4; charset=utf-8") == 0, "%s",
		  type ? type : "(none)");
	/* no site connects in this suite: the registry is empty */
	cr_assert_not_null(strstr(r.body, "\nvrcloud_sites_connected 0\n"), "%s", r.body);
	cr_assert_not_null(strstr(r.body, "# TYPE vrcloud_jobs gauge\n"), "%s", r.body);
	assert_metric(r.body, "vrcloud_replica_servers{state=\"connected\"}",
		      "SELECT count(*) FROM replica_servers WHERE state = 'connected'");
	assert_metric(r.body, "vrcloud_replica_servers{state=\"unregistered\"}",
		      "SELECT count(*) FROM replica_servers WHERE state = 'unregistered'");
	assert_metric(r.body, "vrcloud_jobs{state=\"dead\"}",
		      "SELECT count(*) FROM jobs WHERE state = 'dead'");
	assert_metric(r.body, "vrcloud_tasks{status=\"aborted\"}",
		      "SELECT count(*) FROM tasks WHERE status = 'aborted'");
	assert_metric(r.body, "vrcloud_peers{state=\"paired\"}",
		      "SELECT count(*) FROM peers WHERE state = 'paired' AND revoked_at IS NULL");
	cr_assert_not_null(strstr(r.body, "\nvrcloud_up{source=\"postgresql\"} 1\n"
					  "vrcloud_up{source=\"redis\"} 1\n"),
			   "%s", r.body);
	vrt_resp_free(&r);

	/* Redis away: the sites are left out, the rest stays */
	char redis[64];
	snprintf(redis, sizeof redis, "redis://127.0.0.1:%u", vrt_closed_port());
	struct vrt_api api;
	struct vrt_api_opts opts = {.redis_uri = redis, .public_url = PUBLIC};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	struct vrt_call call = {.base = api.base, .path = "/metrics"};
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_null(strstr(r.body, "vrcloud_sites_connected"), "%s", r.body);
	cr_assert_not_null(strstr(r.body, "vrcloud_up{source=\"redis\"} 0\n"), "%s", r.body);
	cr_assert_not_null(strstr(r.body, "vrcloud_jobs{state=\"queued\"} "), "%s", r.body);
	vrt_resp_free(&r);
	cr_assert_eq(vrt_api_stop(&api, 5), 0);
}

Test(health, redis_down_gives_503_on_healthz_while_reads_keep_working)
{
	char redis[64];
	snprintf(redis, sizeof redis, "redis://127.0.0.1:%u", vrt_closed_port());
	struct vrt_api api;
	struct vrt_api_opts opts = {.redis_uri = redis, .public_url = PUBLIC};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	struct vrt_call health = {.base = api.base, .path = "/healthz"};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&health, &r), 0);
	cr_assert_eq(r.status, 503, "/healthz with Redis down: %ld\n%s", r.status, r.body);
	cr_assert_not_null(strstr(r.body, "postgresql: ok"), "%s", r.body);
	cr_assert_not_null(strstr(r.body, "redis: unreachable"), "%s", r.body);
	vrt_resp_free(&r);
	static const char *const paths[] = {"/api/org", "/api/vr/replications/" VRT_REPL_A1,
					    "/api/org/" VRT_ORG_A "/replications", "/api/session"};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_call call = {
			.base = api.base, .path = paths[i], .token = vrt_token(VRT_ADMIN_A)};
		cr_assert_eq(vrt_call(&call, &r), 0);
		cr_assert_eq(r.status, 200, "%s with Redis down: %ld\n%s", paths[i], r.status,
			     r.body);
		vrt_assert_valid(&r, paths[i]);
		vrt_resp_free(&r);
	}
	cr_assert_eq(vrt_api_stop(&api, 5), 0);
}

Test(lifecycle, api_exits_0_within_5_seconds_of_sigterm)
{
	struct vrt_api api;
	struct vrt_api_opts opts = {.public_url = PUBLIC};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	struct vrt_call call = {
		.base = api.base, .path = "/api/org", .token = vrt_token(VRT_USER_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 200);
	vrt_resp_free(&r);
	int status = vrt_api_stop(&api, 5);
	cr_assert_eq(status, 0,
		     "vrcloud-api ended with %d after SIGTERM (-1: still running 5 s later)",
		     status);
	cr_assert(vrt_api_log_contains(&api, "event=stopped"), "no 'stopped' line in the log");
	cr_assert_not(vrt_api_log_contains(&api, "Sanitizer"), "sanitizer report at exit");
}
