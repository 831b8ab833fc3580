/* The internal API of replica servers (docs/pipeline.md): register,
 * heartbeat and leave, with service credentials only. Registrations,
 * heartbeats and leaves really change replica_servers, so the tests of
 * this program run one at a time and each compares the database with
 * itself before and after its refused requests. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

VRT_SUITE(.name = "internal", .jobs = 1, .redis_db = 7);

#define N(a)	(sizeof(a) / sizeof((a)[0]))
#define SERVERS "/api/internal/servers"

/* --- helpers ------------------------------------------------------------- */

/* A ReplicaServer document; name NULL leaves Name out. */
static char *server_doc(const char *name, const char *address)
{
	if (!name)
		return vrt_fmt("<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
			       "<TrafficAddress>%s</TrafficAddress></ReplicaServer>",
			       address);
	return vrt_fmt("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">\n"
		       "  <Name>%s</Name>\n  <TrafficAddress>%s</TrafficAddress>\n"
		       "</ReplicaServer>\n",
		       name, address);
}

/* POST body to /api/internal/servers with a service token (NULL: none) and
 * a Content-Type line (NULL: the internal media type). */
static void post_register(const char *bearer, const char *content_type_line, const char *body,
			  struct vrt_resp *r)
{
	char *line = content_type_line ? NULL : vrt_fmt("Content-Type: %s", VRT_MT_INTERNAL);
	const char *headers[] = {content_type_line ? content_type_line : line, NULL};
	struct vrt_call call = {.method = "POST",
				.path = SERVERS,
				.bearer = bearer,
				.headers = headers,
				.body = body,
				.body_len = -1};
	vrt_call_ok(&call, r);
	free(line);
}

/* Register as service with this document: 200 with a valid ReplicaServer
 * of the internal media type; returns its Id (caller frees). */
static char *register_ok(const char *service, const char *name, const char *address)
{
	char *body = server_doc(name, address);
	struct vrt_resp r;
	post_register(vrt_service_token(service), NULL, body, &r);
	cr_assert_eq(r.status, 200, "registering %s: %ld\n%s", service, r.status, r.body);
	vrt_assert_valid(&r, "ReplicaServer answer");
	const char *ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strncmp(ct, VRT_MT_INTERNAL, strlen(VRT_MT_INTERNAL)) == 0 &&
			  (ct[strlen(VRT_MT_INTERNAL)] == '\0' ||
			   ct[strlen(VRT_MT_INTERNAL)] == ';'),
		  "Content-Type '%s' is not " VRT_MT_INTERNAL, ct ? ct : "(none)");
	cr_assert_not_null(vrt_header(&r, "X-VMWARE-VCLOUD-REQUEST-ID"));
	cr_assert_eq(vrt_xpath_count(r.body, "/vi:ReplicaServer"), 1, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "count(/vi:ReplicaServer/*)"), 3,
		     "the answer has Id, Name and TrafficAddress, nothing else:\n%s", r.body);
	char *id = vrt_xpath_str(r.body, "string(/vi:ReplicaServer/vi:Id)");
	cr_assert(vrt_is_uuid(id), "Id '%s' is not a lowercase UUID", id);
	char *got_name = vrt_xpath_str(r.body, "string(/vi:ReplicaServer/vi:Name)");
	cr_assert_str_eq(got_name, service);
	char *got_address = vrt_xpath_str(r.body, "string(/vi:ReplicaServer/vi:TrafficAddress)");
	cr_assert_str_eq(got_address, address);
	free(got_name);
	free(got_address);
	free(body);
	vrt_resp_free(&r);
	return id;
}

/* A call on an internal route with no body: heartbeat (POST) or leave
 * (DELETE) of server id. */
static void server_call(const char *method, const char *id, const char *bearer, const char *token,
			struct vrt_resp *r)
{
	char *path = strcmp(method, "POST") == 0 ? vrt_fmt(SERVERS "/%s/heartbeat", id)
						 : vrt_fmt(SERVERS "/%s", id);
	struct vrt_call call = {.method = method, .path = path, .bearer = bearer, .token = token};
	vrt_call_ok(&call, r);
	free(path);
}

static char *server_value(const char *id, const char *column)
{
	char *sql = vrt_fmt("SELECT %s::text FROM replica_servers WHERE id = $1", column);
	char *v = vrt_db_value(sql, id);
	free(sql);
	cr_assert_not_null(v, "no replica server %s", id);
	return v;
}

static void assert_server_value(const char *id, const char *column, const char *expected)
{
	char *v = server_value(id, column);
	cr_assert_str_eq(v, expected, "server %s: %s is '%s', expected '%s'", id, column, v,
			 expected);
	free(v);
}

/* --- register ------------------------------------------------------------ */

Test(registration, first_registration_answers_200_with_a_new_uuid)
{
	char *before = vrt_db_value("SELECT count(*) FROM replica_servers");
	char *id = register_ok(VRT_SERVICE_NEW, VRT_SERVICE_NEW, "10.0.3.23:31031");
	static const char *const fixtures[] = {VRT_SERVER_1, VRT_SERVER_2, VRT_SERVER_GONE};
	for (size_t i = 0; i < N(fixtures); i++)
		cr_assert_str_neq(id, fixtures[i], "a new server got a fixture server's id");
	char *after = vrt_db_value("SELECT count(*) FROM replica_servers");
	cr_assert_eq(atol(after), atol(before) + 1, "servers: %s before, %s after", before, after);
	assert_server_value(id, "name", VRT_SERVICE_NEW);
	assert_server_value(id, "traffic_address", "10.0.3.23:31031");
	assert_server_value(id, "state", "connected");
	char *fresh = vrt_db_value("SELECT registered_at > now() - interval '1 minute'"
				   " AND last_heartbeat > now() - interval '1 minute'"
				   " FROM replica_servers WHERE id = $1",
				   id);
	cr_assert_str_eq(fresh, "t", "registered_at and last_heartbeat are not now");
	free(fresh);
	free(before);
	free(after);
	free(id);
}

Test(registration, registering_again_answers_the_same_id_and_takes_the_new_address)
{
	/* worker-1's server is the fixture VRT_SERVER_1 */
	char *first = register_ok(VRT_SERVICE, VRT_SERVICE, "10.0.3.21:31031");
	cr_assert_str_eq(first, VRT_SERVER_1);
	char *count = vrt_db_value("SELECT count(*) FROM replica_servers");
	vrt_db_exec("UPDATE replica_servers SET state = 'disconnected',"
		    " last_heartbeat = now() - interval '1 hour' WHERE id = $1",
		    VRT_SERVER_1);
	char *second = register_ok(VRT_SERVICE, VRT_SERVICE, "10.0.9.99:41041");
	cr_assert_str_eq(second, first, "registering again answered another id");
	/* without Name: the credential's own name */
	char *third = register_ok(VRT_SERVICE, NULL, "10.0.9.98:41041");
	cr_assert_str_eq(third, first, "registering without Name answered another id");
	char *count_after = vrt_db_value("SELECT count(*) FROM replica_servers");
	cr_assert_str_eq(count_after, count, "registering again added a server");
	char *rows =
		vrt_db_value("SELECT count(*) FROM replica_servers WHERE name = $1", VRT_SERVICE);
	cr_assert_str_eq(rows, "1");
	assert_server_value(VRT_SERVER_1, "traffic_address", "10.0.9.98:41041");
	assert_server_value(VRT_SERVER_1, "state", "connected");
	char *fresh = vrt_db_value("SELECT last_heartbeat > now() - interval '1 minute'"
				   " FROM replica_servers WHERE id = $1",
				   VRT_SERVER_1);
	cr_assert_str_eq(fresh, "t", "registering again did not refresh the heartbeat");
	/* the other credential's server is untouched */
	assert_server_value(VRT_SERVER_2, "traffic_address", "127.0.0.1:31032");
	assert_server_value(VRT_SERVER_2, "state", "disconnected");
	free(fresh);
	free(rows);
	free(count);
	free(count_after);
	free(first);
	free(second);
	free(third);
}

Test(registration, application_xml_is_accepted_with_parameters_and_in_any_case)
{
	static const char *const types[] = {
		"Content-Type: application/xml",
		"Content-Type: application/xml; charset=utf-8",
		"Content-Type: Application/VND.vrcloud.Internal+XML;charset=UTF-8",
		"Content-Type:  " VRT_MT_INTERNAL " ",
	};
	char *body = server_doc(VRT_SERVICE, "10.0.3.21:31031");
	for (size_t i = 0; i < N(types); i++) {
		struct vrt_resp r;
		post_register(vrt_service_token(VRT_SERVICE), types[i], body, &r);
		cr_assert_eq(r.status, 200, "%s: %ld\n%s", types[i], r.status, r.body);
		vrt_assert_valid(&r, types[i]);
		vrt_resp_free(&r);
	}
	free(body);
}

Test(registration, a_name_other_than_the_credentials_own_is_403)
{
	char *before = vrt_db_fingerprint();
	static const char *const names[] = {VRT_SERVICE_OTHER, VRT_SERVICE_NEW, "WORKER-1",
					    "worker-1.other", "worker"};
	for (size_t i = 0; i < N(names); i++) {
		char *body = server_doc(names[i], "10.6.6.6:31031");
		struct vrt_resp r;
		post_register(vrt_service_token(VRT_SERVICE), NULL, body, &r);
		char *what = vrt_fmt("worker-1 registering as %s", names[i]);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
		free(what);
		free(body);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after registering under other names");
	free(before);
}

/* --- heartbeat ------------------------------------------------------------ */

Test(heartbeat, answers_204_and_moves_last_heartbeat)
{
	vrt_db_exec("UPDATE replica_servers SET state = 'disconnected',"
		    " last_heartbeat = now() - interval '1 hour' WHERE id = $1",
		    VRT_SERVER_1);
	char *then = server_value(VRT_SERVER_1, "last_heartbeat");
	struct vrt_resp r;
	server_call("POST", VRT_SERVER_1, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "heartbeat");
	vrt_resp_free(&r);
	char *moved = vrt_db_value("SELECT last_heartbeat > $2::timestamptz"
				   " AND last_heartbeat > now() - interval '1 minute'"
				   " FROM replica_servers WHERE id = $1",
				   VRT_SERVER_1, then);
	cr_assert_str_eq(moved, "t", "last_heartbeat did not move from %s", then);
	assert_server_value(VRT_SERVER_1, "state", "connected");
	free(moved);
	free(then);

	/* it keeps moving */
	then = server_value(VRT_SERVER_1, "last_heartbeat");
	vrt_sleep(0.05);
	server_call("POST", VRT_SERVER_1, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "second heartbeat");
	vrt_resp_free(&r);
	moved = vrt_db_value("SELECT last_heartbeat > $2::timestamptz FROM replica_servers"
			     " WHERE id = $1",
			     VRT_SERVER_1, then);
	cr_assert_str_eq(moved, "t", "the second heartbeat did not move last_heartbeat");
	free(moved);
	free(then);
}

static void heartbeat_with(const char *body, struct vrt_resp *r)
{
	char *path = vrt_fmt(SERVERS "/%s/heartbeat", VRT_SERVER_1);
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = vrt_service_token(VRT_SERVICE),
				.headers = headers,
				.body = body,
				.body_len = -1};
	vrt_call_ok(&call, r);
	free(path);
}

/* ServerStatistics adds the replication port's counts to the totals that
 * the server's statistics show; a bad one changes nothing. */
Test(heartbeat, statistics_add_to_the_servers_totals)
{
	vrt_db_exec("UPDATE replica_servers SET bytes_in = 1000, bytes_out = 10,"
		    " transfer_errors = 1 WHERE id = $1",
		    VRT_SERVER_1);
	struct vrt_resp r;
	heartbeat_with("<ServerStatistics xmlns=\"" VRT_NS_INTERNAL "\"><BytesIn>4096</BytesIn>"
		       "<BytesOut>64</BytesOut><TransferErrors>2</TransferErrors>"
		       "</ServerStatistics>",
		       &r);
	vrt_assert_no_content(&r, "heartbeat with statistics");
	vrt_resp_free(&r);
	assert_server_value(VRT_SERVER_1, "bytes_in", "5096");
	assert_server_value(VRT_SERVER_1, "bytes_out", "74");
	assert_server_value(VRT_SERVER_1, "transfer_errors", "3");
	char *before = vrt_db_fingerprint();
	static const char *const bad[] = {
		"<ServerStatistics xmlns=\"" VRT_NS_INTERNAL "\"><BytesIn>-1</BytesIn>"
		"<BytesOut>0</BytesOut><TransferErrors>0</TransferErrors></ServerStatistics>",
		"<ServerStatistics xmlns=\"" VRT_NS_INTERNAL "\"><BytesIn>9223372036854775808"
		"</BytesIn><BytesOut>0</BytesOut><TransferErrors>0</TransferErrors>"
		"</ServerStatistics>",
		"<ServerStatistics xmlns=\"" VRT_NS_INTERNAL "\"><BytesIn>1</BytesIn>"
		"</ServerStatistics>",
		"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"/>",
		"not xml",
	};
	for (size_t i = 0; i < N(bad); i++) {
		heartbeat_with(bad[i], &r);
		cr_assert_eq(r.status, 400, "#%zu: %ld\n%s", i, r.status, r.body);
		vrt_assert_valid(&r, "the Error");
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after bad statistics");
	free(before);
	/* and the statistics route shows the totals */
	char *path = vrt_fmt("/api/admin/extension/vr/vrs/%s/statistics", VRT_SERVER_1);
	vrt_get_ok(path, VRT_ROOT, &r);
	cr_assert(strstr(r.body, "5096") != NULL, "bytes in not shown:\n%s", r.body);
	vrt_resp_free(&r);
	free(path);
}

Test(heartbeat, uppercase_ids_aliases_and_any_accept_header_are_served)
{
	char upper[] = VRT_SERVER_1;
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	const char *paths[] = {
		SERVERS "/" VRT_SERVER_1 "/heartbeat",
		"/api/compute/api/internal/servers/" VRT_SERVER_1 "/heartbeat",
		"/api/api/internal/servers/" VRT_SERVER_1 "/heartbeat",
		NULL,
	};
	char *upper_path = vrt_fmt(SERVERS "/%s/heartbeat", upper);
	paths[3] = upper_path;
	/* the internal API does not negotiate: no 406 */
	static const char *const accepts[] = {"application/*+xml;version=31.0", "application/json",
					      ""};
	for (size_t i = 0; i < N(paths); i++) {
		for (size_t a = 0; a < N(accepts); a++) {
			struct vrt_call call = {.method = "POST",
						.path = paths[i],
						.bearer = vrt_service_token(VRT_SERVICE),
						.accept = accepts[a]};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what = vrt_fmt("POST %s with Accept '%s'", paths[i], accepts[a]);
			vrt_assert_no_content(&r, what);
			free(what);
			vrt_resp_free(&r);
		}
	}
	free(upper_path);
}

Test(heartbeat, unknown_foreign_and_unregistered_servers_are_404)
{
	char *before = vrt_db_fingerprint();
	static const char *const ids[] = {VRT_MISSING, VRT_SERVER_2, VRT_SERVER_GONE, VRT_REPL_A1,
					  VRT_ORG_A};
	static const char *const methods[] = {"POST", "DELETE"};
	for (size_t i = 0; i < N(ids); i++) {
		for (size_t m = 0; m < N(methods); m++) {
			struct vrt_resp r;
			server_call(methods[m], ids[i], vrt_service_token(VRT_SERVICE), NULL, &r);
			char *what = vrt_fmt("%s of server %s by worker-1", methods[m], ids[i]);
			vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", what);
			free(what);
			vrt_resp_free(&r);
		}
	}
	vrt_assert_unchanged_since(before, "after calls on servers that are not worker-1's");
	/* worker-1's own server is unknown too while it is unregistered */
	char *state = server_value(VRT_SERVER_1, "state");
	vrt_db_exec("UPDATE replica_servers SET state = 'unregistered' WHERE id = $1",
		    VRT_SERVER_1);
	char *unregistered = vrt_db_fingerprint();
	for (size_t m = 0; m < N(methods); m++) {
		struct vrt_resp r;
		server_call(methods[m], VRT_SERVER_1, vrt_service_token(VRT_SERVICE), NULL, &r);
		char *what = vrt_fmt("%s of worker-1's unregistered server", methods[m]);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", what);
		free(what);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(unregistered, "after calls on an unregistered server");
	vrt_db_exec("UPDATE replica_servers SET state = $2 WHERE id = $1", VRT_SERVER_1, state);
	vrt_assert_unchanged_since(before, "after restoring worker-1's server");
	free(state);
	free(unregistered);
	free(before);
}

/* --- leave --------------------------------------------------------------- */

Test(leave, answers_204_and_disconnects_the_server)
{
	char *id = register_ok(VRT_SERVICE, VRT_SERVICE, "10.0.3.21:31031");
	assert_server_value(id, "state", "connected");
	struct vrt_resp r;
	server_call("DELETE", id, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "leave");
	vrt_resp_free(&r);
	assert_server_value(id, "state", "disconnected");
	assert_server_value(id, "name", VRT_SERVICE);
	assert_server_value(id, "traffic_address", "10.0.3.21:31031");
	/* leaving twice is answered alike */
	server_call("DELETE", id, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "second leave");
	vrt_resp_free(&r);
	assert_server_value(id, "state", "disconnected");
	/* a heartbeat after leaving reconnects it; so does registering */
	server_call("POST", id, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "heartbeat after leave");
	vrt_resp_free(&r);
	assert_server_value(id, "state", "connected");
	server_call("DELETE", id, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_no_content(&r, "leave again");
	vrt_resp_free(&r);
	char *again = register_ok(VRT_SERVICE, VRT_SERVICE, "10.0.3.22:31031");
	cr_assert_str_eq(again, id, "registering after leaving answered another id");
	assert_server_value(id, "state", "connected");
	free(again);
	free(id);
}

/* --- credentials ---------------------------------------------------------- */

/* The three internal operations, with a valid request each. */
struct op {
	const char *method;
	const char *path;
	bool body;
};

static const struct op ops[] = {
	{"POST", SERVERS, true},
	{"POST", SERVERS "/" VRT_SERVER_1 "/heartbeat", false},
	{"DELETE", SERVERS "/" VRT_SERVER_1, false},
};

static void call_op(const struct op *op, const char *bearer, const char *token, const char *basic,
		    struct vrt_resp *r)
{
	char *body = op->body ? server_doc(VRT_SERVICE, "10.6.6.6:31031") : NULL;
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = op->method,
				.path = op->path,
				.bearer = bearer,
				.token = token,
				.basic = basic,
				.headers = op->body ? headers : NULL,
				.body = body,
				.body_len = -1};
	vrt_call_ok(&call, r);
	free(body);
}

/* Every route is internal exactly when it is under /api/internal/, and
 * those of replica servers (/api/internal/servers) are all tested here. */
Test(routes, every_replica_server_route_of_the_table_is_tested_here)
{
	size_t n = 0;
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		bool under = strncmp(route->pattern, "/api/internal/", 14) == 0;
		bool service = route->flags & VR_ROUTE_SERVICE;
		cr_assert_eq(under, service, "%s %s: %s", route->method, route->pattern,
			     service ? "a service route outside /api/internal/"
				     : "not a service route, but under /api/internal/");
		if (strncmp(route->pattern, SERVERS, strlen(SERVERS)) != 0)
			continue;
		bool known = false;
		char *pattern = strdup(route->pattern);
		char *hole = strstr(pattern, "{id}");
		for (size_t i = 0; i < N(ops) && !known; i++) {
			if (strcmp(ops[i].method, route->method) != 0)
				continue;
			if (hole) {
				char *path = vrt_fmt("%.*s" VRT_SERVER_1 "%s",
						     (int)(hole - pattern), pattern, hole + 4);
				known = strcmp(path, ops[i].path) == 0;
				free(path);
			} else {
				known = strcmp(pattern, ops[i].path) == 0;
			}
		}
		cr_assert(known, "%s %s has no test here", route->method, route->pattern);
		free(pattern);
		n++;
	}
	cr_assert_eq(n, N(ops), "a test here names a route the table does not have");
}

Test(credentials, no_credentials_unknown_and_revoked_tokens_are_401)
{
	char *revoked = vrt_db_value("SELECT revoked_at IS NOT NULL FROM service_credentials"
				     " WHERE name = $1",
				     VRT_SERVICE_REVOKED);
	cr_assert_str_eq(revoked, "t", "the revoked credential is not revoked");
	free(revoked);
	char *before = vrt_db_fingerprint();
	char *long_token = vrt_filler(300, 'A');
	const char *bearers[] = {
		NULL,
		vrt_service_token(VRT_SERVICE_REVOKED),
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"' OR 1=1 --",
		long_token,
	};
	for (size_t i = 0; i < N(ops); i++) {
		for (size_t b = 0; b < N(bearers); b++) {
			struct vrt_resp r;
			call_op(&ops[i], bearers[b], NULL, NULL, &r);
			char *what =
				vrt_fmt("%s %s with bearer %zu", ops[i].method, ops[i].path, b);
			vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", what);
			cr_assert_not_null(vrt_header(&r, "WWW-Authenticate"), "%s", what);
			free(what);
			vrt_resp_free(&r);
		}
		/* a Bearer scheme with no token, and the token without the scheme */
		const char *empty[] = {"Authorization: Bearer ", NULL};
		char *bare = vrt_fmt("Authorization: %s", vrt_service_token(VRT_SERVICE));
		const char *bare_headers[] = {bare, NULL};
		const char *const *variants[] = {empty, bare_headers};
		for (size_t v = 0; v < N(variants); v++) {
			struct vrt_call call = {.method = ops[i].method,
						.path = ops[i].path,
						.headers = variants[v]};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what =
				vrt_fmt("%s %s with '%s'", ops[i].method, ops[i].path,
					v ? "Authorization: <token>" : "Authorization: Bearer ");
			vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", what);
			free(what);
			vrt_resp_free(&r);
		}
		free(bare);
	}
	free(long_token);
	vrt_assert_unchanged_since(before, "after unauthenticated internal calls");
	free(before);
}

Test(credentials, tenant_and_sysadmin_credentials_are_403_on_internal_routes)
{
	char *before = vrt_db_fingerprint();
	static const char *const users[] = {VRT_USER_A, VRT_ADMIN_A, VRT_ADMIN_B, VRT_ROOT};
	char *basic = vrt_fmt("%s:%s", VRT_ADMIN_A, VRT_PASSWORD);
	for (size_t i = 0; i < N(ops); i++) {
		for (size_t u = 0; u < N(users); u++) {
			struct vrt_resp r;
			call_op(&ops[i], NULL, vrt_token(users[u]), NULL, &r);
			char *what = vrt_fmt("%s %s as %s", ops[i].method, ops[i].path, users[u]);
			vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
			free(what);
			vrt_resp_free(&r);
		}
		struct vrt_resp r;
		call_op(&ops[i], NULL, NULL, basic, &r);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "Basic credentials");
		vrt_resp_free(&r);
	}
	free(basic);
	vrt_assert_unchanged_since(before, "after tenant calls on internal routes");
	free(before);
}

/* Every route that is neither public nor internal, with a service token:
 * 403 before anything is looked up or changed. */
Test(credentials, service_tokens_are_403_on_every_tenant_route)
{
	char *before = vrt_db_fingerprint();
	size_t n = 0;
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (route->flags & (VR_ROUTE_PUBLIC | VR_ROUTE_SERVICE))
			continue;
		/* the ids of objects the worker's name would never reach */
		char *path = strdup(route->pattern);
		char *hole;
		while ((hole = strstr(path, "{id}")) != NULL) {
			char *next =
				vrt_fmt("%.*s" VRT_ORG_A "%s", (int)(hole - path), path, hole + 4);
			free(path);
			path = next;
		}
		static const char *const services[] = {VRT_SERVICE, VRT_SERVICE_OTHER};
		for (size_t s = 0; s < N(services); s++) {
			struct vrt_call call = {.method = route->method,
						.path = path,
						.bearer = vrt_service_token(services[s])};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what = vrt_fmt("%s %s with the token of %s", route->method, path,
					     services[s]);
			vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
			cr_assert_null(strstr(r.body, VRT_ORG_A_NAME), "%s leaks org A", what);
			free(what);
			vrt_resp_free(&r);
		}
		free(path);
		n++;
	}
	cr_assert_gt(n, 20, "only %zu tenant routes in the table", n);
	/* a service token is no session: the sessions of users are untouched */
	struct vrt_resp r;
	vrt_get("/api/session", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200, "admin-a's session after service calls: %ld", r.status);
	vrt_resp_free(&r);
	vrt_assert_unchanged_since(before, "after service tokens on tenant routes");
	free(before);
}

Test(credentials, a_service_token_wins_over_a_session_token_sent_with_it)
{
	/* Bearer is the service's credential: a tenant token beside it does not
	 * open the internal API to a tenant, nor tenant routes to the service */
	struct vrt_resp r;
	server_call("POST", VRT_SERVER_1, vrt_service_token(VRT_SERVICE), vrt_token(VRT_ROOT), &r);
	vrt_assert_no_content(&r, "heartbeat with a session token beside the service token");
	vrt_resp_free(&r);
	struct vrt_call call = {.path = "/api/org",
				.bearer = vrt_service_token(VRT_SERVICE),
				.token = vrt_token(VRT_ROOT)};
	vrt_call_ok(&call, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "GET /api/org, both tokens");
	vrt_resp_free(&r);
	server_call("POST", VRT_SERVER_1, vrt_service_token(VRT_SERVICE_REVOKED),
		    vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "revoked service token, root's session");
	vrt_resp_free(&r);
}

/* --- request documents ----------------------------------------------------- */

/* POST body as worker-1 with a Content-Type line: an Error of this status. */
static void assert_register_refused(const char *content_type_line, const char *body, long status,
				    const char *minor, const char *what)
{
	struct vrt_resp r;
	post_register(vrt_service_token(VRT_SERVICE), content_type_line, body, &r);
	vrt_assert_error(&r, status, minor, what);
	cr_assert_null(strstr(r.body, "root:x:0:0"), "%s: the answer shows /etc/passwd", what);
	vrt_resp_free(&r);
}

Test(documents, a_wrong_media_type_is_415)
{
	char *before = vrt_db_fingerprint();
	char *body = server_doc(VRT_SERVICE, "10.6.6.6:31031");
	static const char *const types[] = {
		"Content-Type: text/plain",
		"Content-Type: text/xml",
		"Content-Type: application/json",
		"Content-Type: application/x-www-form-urlencoded",
		"Content-Type: application/vnd.vrcloud.internal+json",
		"Content-Type: application/vnd.vmware.hcs.replicationGroup+xml",
		"Content-Type: application/xmlx",
		"Content-Type: application",
		"Content-Type: ;charset=utf-8",
	};
	for (size_t i = 0; i < N(types); i++)
		assert_register_refused(types[i], body, 415, "UNSUPPORTED_MEDIA_TYPE", types[i]);
	free(body);
	vrt_assert_unchanged_since(before, "after wrong media types");
	free(before);
}

Test(documents, a_missing_content_type_is_415)
{
	char *before = vrt_db_fingerprint();
	char *body = server_doc(VRT_SERVICE, "10.6.6.6:31031");
	/* "Content-Type:" with no value makes curl send none at all */
	assert_register_refused("Content-Type:", body, 415, "UNSUPPORTED_MEDIA_TYPE",
				"no Content-Type");
	free(body);
	vrt_assert_unchanged_since(before, "after a body without Content-Type");
	free(before);
}

Test(documents, doctype_and_external_entities_are_400)
{
	char *before = vrt_db_fingerprint();
	static const char *const bodies[] = {
		/* external entity (XXE) */
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE ReplicaServer [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Name>worker-1</Name>"
		"<TrafficAddress>&xxe;</TrafficAddress></ReplicaServer>",
		/* external parameter entity */
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE ReplicaServer [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>\n"
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		/* external DTD */
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE ReplicaServer SYSTEM \"http://127.0.0.1:1/evil.dtd\">\n"
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		/* entity expansion (billion laughs) */
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE ReplicaServer [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
		"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
		"<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>\n"
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
		"<TrafficAddress>&d;</TrafficAddress></ReplicaServer>",
		/* a harmless DOCTYPE is still one */
		"<!DOCTYPE ReplicaServer>"
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("DOCTYPE body %zu", i);
		assert_register_refused(NULL, bodies[i], 400, "BAD_REQUEST", what);
		free(what);
	}
	vrt_assert_unchanged_since(before, "after DOCTYPE bodies");
	assert_server_value(VRT_SERVER_1, "name", VRT_SERVICE);
	free(before);
}

Test(documents, a_wrong_root_element_or_namespace_is_400)
{
	char *before = vrt_db_fingerprint();
	static const char *const bodies[] = {
		"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1 "</ServerId>"
		"<Deliveries>1</Deliveries></JobStart>",
		"<ReplicaServer><TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		"<ReplicaServer xmlns=\"http://www.vmware.com/vr/v6.0\">"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		"<ReplicaServer xmlns=\"urn:vrcloud:internal:2\">"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		"<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" majorErrorCode=\"400\""
		" minorErrorCode=\"BAD_REQUEST\" message=\"x\"/>",
		"<vi:Servers xmlns:vi=\"" VRT_NS_INTERNAL "\"><vi:ReplicaServer>"
		"<vi:TrafficAddress>10.6.6.6:1</vi:TrafficAddress></vi:ReplicaServer></vi:Servers>",
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("wrong root %zu", i);
		assert_register_refused(NULL, bodies[i], 400, "BAD_REQUEST", what);
		free(what);
	}
	vrt_assert_unchanged_since(before, "after wrong roots");
	free(before);
}

Test(documents, invalid_documents_are_400)
{
	char *before = vrt_db_fingerprint();
	char *long_address = vrt_filler(256, 'a');
	char *too_long = server_doc(VRT_SERVICE, long_address);
	const char *bodies[] = {
		/* no TrafficAddress */
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL
		"\"><Name>worker-1</Name></ReplicaServer>",
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"/>",
		/* an empty or overlong one */
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Name>worker-1</Name>"
		"<TrafficAddress></TrafficAddress></ReplicaServer>",
		too_long,
		/* out of order, twice, unknown children */
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><TrafficAddress>10.6.6.6:1"
		"</TrafficAddress><Name>worker-1</Name></ReplicaServer>",
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><TrafficAddress>10.6.6.6:1"
		"</TrafficAddress><TrafficAddress>10.6.6.6:2</TrafficAddress></ReplicaServer>",
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><TrafficAddress>10.6.6.6:1"
		"</TrafficAddress><State>connected</State></ReplicaServer>",
		/* a Name or Id that the schema refuses */
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Name>worker 1</Name>"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Name>worker-1'; DROP TABLE"
		" replica_servers; --</Name><TrafficAddress>10.6.6.6:1</TrafficAddress>"
		"</ReplicaServer>",
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Id>not-a-uuid</Id>"
		"<TrafficAddress>10.6.6.6:1</TrafficAddress></ReplicaServer>",
		/* not XML at all */
		"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><TrafficAddress>10.6.6.6:1",
		"TrafficAddress=10.6.6.6:1",
		"{\"TrafficAddress\": \"10.6.6.6:1\"}",
		"",
		"   \n ",
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("invalid body %zu: %.60s", i, bodies[i]);
		assert_register_refused(NULL, bodies[i], 400, "BAD_REQUEST", what);
		free(what);
	}
	free(too_long);
	free(long_address);
	vrt_assert_unchanged_since(before, "after invalid documents");
	char *servers =
		vrt_db_value("SELECT count(*) FROM replica_servers WHERE name LIKE 'worker%'");
	cr_assert_neq(atol(servers), 0, "replica_servers was emptied");
	free(servers);
	free(before);
}

Test(documents, bodies_over_64_kib_are_413_on_every_internal_route)
{
	char *before = vrt_db_fingerprint();
	/* a valid document padded with white space past the cap */
	char *padding = vrt_filler(VRT_BODY_CAP, ' ');
	char *body = vrt_fmt("<ReplicaServer xmlns=\"" VRT_NS_INTERNAL
			     "\"><TrafficAddress>10.6.6.6:1"
			     "</TrafficAddress></ReplicaServer>%s",
			     padding);
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	static const char *const expect[] = {"Content-Type: " VRT_MT_INTERNAL,
					     "Expect: 100-continue", NULL};
	for (size_t i = 0; i < N(ops); i++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vrt_call call = {.method = ops[i].method,
						.path = ops[i].path,
						.bearer = vrt_service_token(VRT_SERVICE),
						.headers = mode == 1 ? expect : headers,
						.body = body,
						.body_len = -1,
						.chunked = mode == 2};
			struct vrt_resp r;
			vrt_call_ok(&call, &r);
			char *what = vrt_fmt("%s %s, %zu bytes%s", ops[i].method, ops[i].path,
					     strlen(body),
					     mode == 1 ? " after 100-continue"
					     : mode    ? " chunked"
						       : "");
			vrt_assert_error(&r, 413, "REQUEST_ENTITY_TOO_LARGE", what);
			free(what);
			vrt_resp_free(&r);
		}
	}
	free(body);
	free(padding);
	vrt_assert_unchanged_since(before, "after oversized bodies");
	free(before);
}

Test(documents, refused_requests_change_nothing)
{
	/* one of each refusal in a row, and the database compared at the end */
	char *before = vrt_db_fingerprint();
	char *good = server_doc(VRT_SERVICE, "10.6.6.6:31031");
	char *other = server_doc(VRT_SERVICE_OTHER, "10.6.6.6:31031");
	assert_register_refused("Content-Type: text/plain", good, 415, "UNSUPPORTED_MEDIA_TYPE",
				"text/plain");
	assert_register_refused("Content-Type:", good, 415, "UNSUPPORTED_MEDIA_TYPE", "none");
	assert_register_refused(NULL,
				"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>"
				"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\">"
				"<TrafficAddress>&x;</TrafficAddress></ReplicaServer>",
				400, "BAD_REQUEST", "XXE");
	assert_register_refused(NULL, "<ReplicaServer/>", 400, "BAD_REQUEST", "no namespace");
	assert_register_refused(NULL,
				"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><Name>worker-1"
				"</Name></ReplicaServer>",
				400, "BAD_REQUEST", "no TrafficAddress");
	assert_register_refused(NULL, other, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				"another credential's name");
	struct vrt_resp r;
	post_register(vrt_service_token(VRT_SERVICE_REVOKED), NULL, good, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "revoked token");
	vrt_resp_free(&r);
	post_register(NULL, NULL, good, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "no credentials");
	vrt_resp_free(&r);
	struct vrt_call tenant = {.method = "POST",
				  .path = SERVERS,
				  .token = vrt_token(VRT_ROOT),
				  .headers =
					  (const char *[]){"Content-Type: " VRT_MT_INTERNAL, NULL},
				  .body = good,
				  .body_len = -1};
	vrt_call_ok(&tenant, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "root's session");
	vrt_resp_free(&r);
	server_call("POST", VRT_SERVER_2, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "heartbeat of worker-2's server");
	vrt_resp_free(&r);
	server_call("DELETE", VRT_SERVER_2, vrt_service_token(VRT_SERVICE), NULL, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "leave of worker-2's server");
	vrt_resp_free(&r);
	struct vrt_call wrong_method = {
		.method = "PUT", .path = SERVERS, .bearer = vrt_service_token(VRT_SERVICE)};
	vrt_call_ok(&wrong_method, &r);
	vrt_assert_error(&r, 405, "METHOD_NOT_ALLOWED", "PUT " SERVERS);
	cr_assert_not_null(vrt_header(&r, "Allow"));
	cr_assert_str_eq(vrt_header(&r, "Allow"), "POST");
	vrt_resp_free(&r);
	free(good);
	free(other);
	vrt_assert_unchanged_since(before, "after refused internal requests");
	free(before);
}
