/* Failback and the provider's actions, end to end: reverse of a recovered
 * replication and the failback replication it creates (U8, U9, U1, U4,
 * U11 and its controls), a peer's network mappings (U13 against U12), a
 * VDC's recovery details (A1 against U6 and the state machine), moving a
 * replica (A3 against A4), and the replica servers (E2, E3, E4 and their
 * list). A test accepts the request as a tenant or the provider, then runs
 * the job through the internal API as the worker of VRT_SERVICE (whose
 * server is VRT_SERVER_1), and checks that each effect appears when the
 * job succeeds and not before, and that refusals change nothing.
 *
 * The tests run one at a time, so that each may compare the whole
 * database before and after a refused request; the relay keeps away from
 * the jobs a test leaves queued ([jobs] republish_after of a day). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

#define PREFIX "vrt-failback"

VRT_SUITE(.name = "failback", .jobs = 1, .redis_db = 10,
	  .config = "[jobs]\nprefix = " PREFIX "\nrepublish_after = 86400\n");

#define N(a)		(sizeof(a) / sizeof((a)[0]))
#define NS_EXT		"http://www.vmware.com/vcloud/extension/v1.5"
#define MT_MAPPINGS	"application/vnd.vmware.hcs.networkMappings+xml"
#define MT_EDIT		"application/vnd.vmware.hcs.editRecoveryDetailsParams+xml"
#define MT_MOVE		"application/vnd.vmware.hcs.adminMoveReplicationGroupParams+xml"
#define MT_FRG		"application/vnd.vmware.hcs.failbackReplicationGroup+xml"
#define MT_VR_SERVER	"application/vnd.vmware.hcs.vrServer+xml"
#define MT_VR_STATS	"application/vnd.vmware.hcs.vrServerStatistics+xml"
#define VIM_SERVER_HREF "https://vc01.example.com/api/admin/extension/vimServer/" VRT_MISSING

/* --- the routes this program covers ------------------------------------------ */

static const char *const routes[] = {
	"POST /api/vr/replications/{id}/action/reverse",
	"DELETE /api/vr/failbackreplications/{id}",
	"POST /api/vr/failbackreplications/{id}/action/sync",
	"POST /api/vr/failbackreplications/{id}/action/pause",
	"POST /api/vr/failbackreplications/{id}/action/resume",
	"PUT /api/vr/peers/{id}/networkMappings",
	"POST /api/admin/vdc/{id}/action/editRecoveryDetails",
	"POST /api/admin/vr/replications/{id}/action/moveReplication",
	"GET /api/admin/extension/vr/vrServers",
	"GET /api/admin/extension/vr/vrs/{id}",
	"DELETE /api/admin/extension/vr/vrs/{id}",
	"GET /api/admin/extension/vr/vrs/{id}/statistics",
};

/* --- helpers ------------------------------------------------------------------- */

/* method path as token, with Content-Type content_type (NULL: none) and
 * body (NULL: none); the caller frees the response. */
static void call_route(const char *method, const char *path, const char *token,
		       const char *content_type, const char *body, struct vrt_resp *r)
{
	char *type = content_type ? vrt_fmt("Content-Type: %s", content_type) : NULL;
	const char *headers[] = {type, NULL};
	struct vrt_call call = {.method = method,
				.path = path,
				.token = token,
				.headers = type ? headers : NULL,
				.body = body,
				.body_len = -1};
	cr_assert_eq(vrt_call(&call, r), 0, "%s %s: no response", method, path);
	free(type);
}

/* The id at the end of an href attribute selected by xpath (the caller
 * frees). */
static char *id_of(const struct vrt_resp *r, const char *xpath)
{
	char *href = vrt_xstr(r, xpath);
	const char *slash = strrchr(href, '/');
	cr_assert_not_null(slash, "%s: '%s'", xpath, href);
	char *id = strdup(slash + 1);
	free(href);
	return id;
}

/* A request answered 202 + Location + Task: its Task id (the caller frees). */
static char *assert_task_reply(const struct vrt_resp *r, const char *what)
{
	cr_assert_eq(r->status, 202, "%s: %ld\n%s", what, r->status, r->body);
	vrt_assert_valid(r, what);
	const char *ct = vrt_header(r, "Content-Type");
	cr_assert(ct && strncmp(ct, "application/vnd.vmware.vcloud.task+xml;version=", 47) == 0,
		  "%s: Content-Type %s", what, ct ? ct : "(none)");
	char *href = vrt_xstr(r, "string(/v:Task/@href)");
	const char *location = vrt_header(r, "Location");
	cr_assert(location && strcmp(location, href) == 0, "%s: Location %s, Task %s", what,
		  location ? location : "(none)", href);
	free(href);
	return id_of(r, "string(/v:Task/@href)");
}

/* r was accepted as operationName with a queued Task whose Owner has
 * owner_type and ends with owner_id, and a job of action on lane, in the
 * stream. */
static struct vrt_accepted assert_accepted(const struct vrt_resp *r, const char *operation_name,
					   const char *owner_type, const char *owner_id,
					   const char *action, const char *lane, const char *what)
{
	struct vrt_accepted a;
	a.task = assert_task_reply(r, what);
	vrt_assert_xstr(r, "string(/v:Task/@status)", "queued");
	vrt_assert_xstr(r, "string(/v:Task/v:Progress)", "0");
	vrt_assert_xstr(r, "string(/v:Task/@operationName)", operation_name);
	vrt_assert_xstr(r, "string(/v:Task/v:Owner/@type)", owner_type);
	char *owner = id_of(r, "string(/v:Task/v:Owner/@href)");
	cr_assert_str_eq(owner, owner_id, "%s: Owner %s", what, owner);
	free(owner);
	a.job = vrt_job_of(a.task);
	char *job = vrt_fmt("%s %s queued", action, lane);
	vrt_assert_db("SELECT action || ' ' || lane || ' ' || state FROM jobs WHERE id = $1::uuid",
		      a.job, job, what);
	free(job);
	cr_assert(vrt_stream_has(PREFIX, a.job), "%s: the job is not in the stream", what);
	return a;
}

/* r was refused by a precondition: a Task already in error with vendor,
 * major and minor, and no job. Returns its Task id (the caller frees). */
static char *assert_refused(const struct vrt_resp *r, const char *vendor, const char *major,
			    const char *minor, const char *what)
{
	char *task = assert_task_reply(r, what);
	vrt_assert_xstr(r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(r, "string(/v:Task/v:Progress)", "100");
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", vendor);
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@majorErrorCode)", major);
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@minorErrorCode)", minor);
	vrt_assert_db("SELECT count(*)::text FROM jobs WHERE task_id = $1::uuid", task, "0", what);
	return task;
}

/* --- the worker's side (docs/pipeline.md section 2) ----------------------------- */

static void progress_ok(const char *job, int progress)
{
	struct vrt_resp r;
	vrt_job_progress(job, progress, &r);
	cr_assert_eq(r.status, 204, "progress of %s: %ld\n%s", job, r.status, r.body);
	vrt_resp_free(&r);
}

/* The whole run of a job: start, a progress report, the end. */
static void run_job(const char *job, const char *outcome)
{
	vrt_job_start(job);
	progress_ok(job, 50);
	vrt_job_complete(job, outcome);
}

/* The Task as user reads it has status. */
static void assert_task_status(const char *task, const char *user, const char *status)
{
	char *path = vrt_fmt("/api/task/%s", task);
	struct vrt_resp r;
	vrt_get_ok(path, user, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", status);
	vrt_resp_free(&r);
	free(path);
}

/* --- replications, failover and reverse ---------------------------------------------- */

/* A replication of org A with two disks (keys 2000 and 2001); set as for
 * vrt_new_replication. The caller frees. */
static char *new_replication(const char *vdc, const char *name, const char *set)
{
	char *rg = vrt_new_replication(vdc, name, false, set);
	vrt_db_exec("INSERT INTO disks (replication_id, device_key, name, size_bytes)"
		    " VALUES ($1::uuid, 2000, 'disk-0', 8589934592),"
		    " ($1::uuid, 2001, 'disk-1', 1073741824)",
		    rg);
	return rg;
}

static void post_action(const char *action, const char *rg, const char *token, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/vr/replications/%s/action/%s", rg, action);
	call_route("POST", path, token, NULL, NULL, r);
	free(path);
}

/* A replication that a failover, run through its job, has recovered. */
static char *recovered_replication(const char *name)
{
	char *rg = new_replication(NULL, name, NULL);
	struct vrt_resp r;
	post_action("failover", rg, vrt_token(VRT_ADMIN_A), &r);
	char *lane = vrt_fmt("replication:%s", rg);
	struct vrt_accepted a =
		assert_accepted(&r, "hcsFailover", VRT_MT_RG, rg, "failover", lane, "the failover");
	vrt_resp_free(&r);
	run_job(a.job, "success");
	vrt_assert_state(rg, "recovered none notActive false", "after the failover");
	vrt_accepted_free(&a);
	free(lane);
	return rg;
}

/* Accept a reverse of rg as admin-a (the caller frees). */
static struct vrt_accepted accept_reverse(const char *rg)
{
	struct vrt_resp r;
	post_action("reverse", rg, vrt_token(VRT_ADMIN_A), &r);
	char *lane = vrt_fmt("replication:%s", rg);
	struct vrt_accepted a =
		assert_accepted(&r, "hcsReverse", VRT_MT_RG, rg, "reverse", lane, "the reverse");
	vrt_resp_free(&r);
	free(lane);
	return a;
}

/* The failback replication of rg, or NULL (the caller frees). */
static char *failback_of(const char *rg)
{
	return vrt_db_value("SELECT id::text FROM replications WHERE kind = 'failback'"
			    " AND source_replication_id = $1::uuid",
			    rg);
}

/* A recovered replication and its failback, both made through their jobs. */
static char *reversed_replication(const char *name, char **failback_out)
{
	char *rg = recovered_replication(name);
	struct vrt_accepted a = accept_reverse(rg);
	run_job(a.job, "success");
	*failback_out = failback_of(rg);
	cr_assert_not_null(*failback_out, "the reverse made no failback replication");
	vrt_accepted_free(&a);
	return rg;
}

/* Whether the References page at path (as user) lists id. */
static bool listed(const char *path, const char *user, const char *id)
{
	char *full = vrt_fmt("%s?pageSize=128", path);
	struct vrt_resp r;
	vrt_get_ok(full, user, &r);
	char *xpath =
		vrt_fmt("count(/v:References/v:Reference[substring(@href, string-length(@href)"
			" - 35) = '%s'])",
			id);
	char *n = vrt_xstr(&r, xpath);
	bool found = strcmp(n, "1") == 0;
	free(n);
	free(xpath);
	free(full);
	vrt_resp_free(&r);
	return found;
}

/* --- routes ----------------------------------------------------------------------- */

static bool mine(const struct vr_route *route)
{
	bool get = strcmp(route->method, "GET") == 0;
	return (!get && strncmp(route->pattern, "/api/vr/failbackreplications/", 29) == 0) ||
	       strcmp(route->pattern, "/api/vr/replications/{id}/action/reverse") == 0 ||
	       (strcmp(route->method, "PUT") == 0 &&
		strcmp(route->pattern, "/api/vr/peers/{id}/networkMappings") == 0) ||
	       strncmp(route->pattern, "/api/admin/vdc/", 15) == 0 ||
	       strstr(route->pattern, "/action/moveReplication") != NULL ||
	       strncmp(route->pattern, "/api/admin/extension/", 21) == 0;
}

Test(routes, every_route_of_failback_and_the_provider_actions_is_tested_here)
{
	size_t n = 0;
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (!mine(route))
			continue;
		char *line = vrt_fmt("%s %s", route->method, route->pattern);
		bool known = false;
		for (size_t i = 0; i < N(routes) && !known; i++)
			known = strcmp(routes[i], line) == 0;
		cr_assert(known, "%s has no test here", line);
		bool provider = strncmp(route->pattern, "/api/admin/", 11) == 0;
		cr_assert_eq(!!(route->flags & VR_ROUTE_SYSADMIN), provider,
			     "%s: the System administrator flag", line);
		free(line);
		n++;
	}
	cr_assert_eq(n, N(routes), "a route named here is not in the route table");
}

/* --- reverse and the failback replication ------------------------------------------------ */

Test(reverse, creates_the_failback_replication_when_its_job_succeeds)
{
	char *rg = recovered_replication("reverse-ok");
	char *recovered_vapp =
		vrt_db_must("SELECT id::text FROM vapps WHERE replication_id = $1::uuid"
			    " AND kind = 'recovered' AND deleted_at IS NULL",
			    rg);
	struct vrt_accepted a = accept_reverse(rg);
	/* nothing exists before the job succeeds */
	cr_assert_null(failback_of(rg), "a failback replication before the reverse ran");
	struct vrt_resp r;
	post_action("reverse", rg, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "AlreadyReversed", "409", "CONFLICT", "a reverse while one runs"));
	vrt_resp_free(&r);
	vrt_job_start(a.job);
	progress_ok(a.job, 50);
	cr_assert_null(failback_of(rg), "a failback replication while the reverse runs");
	vrt_job_complete(a.job, "success");
	assert_task_status(a.task, VRT_ADMIN_A, "success");

	char *fb = failback_of(rg);
	cr_assert_not_null(fb, "no failback replication after the reverse");
	char *path = vrt_fmt("/api/vr/failbackreplications/%s", fb);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/@name)", "reverse-ok");
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/@type)", MT_FRG);
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/vr:Rpo)", "240");
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/vr:ReplicationState)",
			"initialSync");
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/vr:RecoveryState)", "notStarted");
	vrt_assert_xstr(&r, "string(/vr:FailbackReplicationGroup/vr:Paused)", "false");
	vrt_resp_free(&r);
	/* same org, VDC, peer and disks; its source VM is the recovered vApp */
	vrt_assert_db(
		"SELECT (f.org_id = r.org_id AND f.vdc_id = r.vdc_id AND f.peer_id = r.peer_id"
		" AND f.rpo_minutes = r.rpo_minutes)::text FROM replications f"
		" JOIN replications r ON r.id = f.source_replication_id WHERE f.id = $1::uuid",
		fb, "true", "the failback's placement");
	char *vm = vrt_fmt("urn:vcloud:vapp:%s", recovered_vapp);
	vrt_assert_db("SELECT source_vm_id FROM replications WHERE id = $1::uuid", fb, vm,
		      "the failback's source VM");
	vrt_assert_db("SELECT string_agg(device_key || ':' || size_bytes, ' ' ORDER BY device_key)"
		      " FROM disks WHERE replication_id = $1::uuid",
		      fb, "2000:8589934592 2001:1073741824", "the failback's disks");
	/* listed by the org, the VDC and the peer (U1, U4, U11), not as incoming */
	cr_assert(listed("/api/org/" VRT_ORG_A "/failbackreplications", VRT_ADMIN_A, fb));
	cr_assert(listed("/api/vdc/" VRT_VDC_A1 "/failbackreplications", VRT_ADMIN_A, fb));
	cr_assert(listed("/api/vr/peers/" VRT_PEER_A1 "/failbackreplications", VRT_ADMIN_A, fb));
	cr_assert(!listed("/api/org/" VRT_ORG_A "/replications", VRT_ADMIN_A, fb));
	/* the incoming replication stays recovered, and is reversed once */
	vrt_assert_state(rg, "recovered none notActive false", "after the reverse");
	post_action("reverse", rg, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "AlreadyReversed", "409", "CONFLICT", "a second reverse"));
	vrt_resp_free(&r);
	free(vm);
	free(path);
	free(fb);
	free(recovered_vapp);
	vrt_accepted_free(&a);
	free(rg);
}

Test(reverse, a_failed_job_creates_nothing_and_may_be_repeated)
{
	char *rg = recovered_replication("reverse-failed");
	struct vrt_accepted a = accept_reverse(rg);
	run_job(a.job, "error");
	assert_task_status(a.task, VRT_ADMIN_A, "error");
	cr_assert_null(failback_of(rg), "a failed reverse made a failback replication");
	vrt_assert_state(rg, "recovered none notActive false", "after a failed reverse");
	struct vrt_accepted again = accept_reverse(rg);
	vrt_accepted_free(&again);
	vrt_accepted_free(&a);
	free(rg);
}

Test(reverse, preconditions_are_error_tasks_and_change_nothing)
{
	/* not recovered */
	char *fresh = new_replication(NULL, "reverse-fresh", NULL);
	/* recovered, in a VDC no longer enabled for replication */
	char *vdc = vrt_new_vdc(true, true, true);
	char *off = new_replication(vdc, "reverse-off",
				    "recovery_state = 'recovered',"
				    " replication_state = 'notActive'");
	vrt_db_exec("UPDATE vdcs SET replication_enabled = false WHERE id = $1::uuid", vdc);
	/* a failover still running */
	char *running = new_replication(NULL, "reverse-running", "recovery_state = 'inProgress'");
	static const struct {
		int which;
		const char *vendor, *major, *minor;
	} cases[] = {
		{0, "NotRecovered", "409", "CONFLICT"},
		{1, "VdcNotEnabledForReplication", "403", "ACCESS_TO_RESOURCE_IS_FORBIDDEN"},
		{2, "OngoingFailover", "409", "BUSY_ENTITY"},
	};
	const char *rgs[] = {fresh, off, running};
	for (size_t i = 0; i < N(cases); i++) {
		const char *rg = rgs[cases[i].which];
		char *state = vrt_replication_state(rg);
		struct vrt_resp r;
		post_action("reverse", rg, vrt_token(VRT_ADMIN_A), &r);
		free(assert_refused(&r, cases[i].vendor, cases[i].major, cases[i].minor,
				    cases[i].vendor));
		vrt_resp_free(&r);
		vrt_assert_state(rg, state, cases[i].vendor);
		cr_assert_null(failback_of(rg));
		free(state);
	}
	free(running);
	free(off);
	free(vdc);
	free(fresh);
}

Test(reverse, another_orgs_or_a_failback_replication_is_404)
{
	char *rg = recovered_replication("reverse-foreign");
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	post_action("reverse", rg, vrt_token(VRT_ADMIN_B), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "reverse of org A's replication by B");
	cr_assert_null(strstr(r.body, VRT_ORG_A_NAME));
	vrt_resp_free(&r);
	post_action("reverse", VRT_FAILBACK_A1, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "reverse of a failback replication");
	vrt_resp_free(&r);
	post_action("reverse", VRT_MISSING, vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "reverse of a missing replication");
	vrt_resp_free(&r);
	post_action("reverse", rg, NULL, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "reverse without credentials");
	vrt_resp_free(&r);
	vrt_assert_unchanged_since(before, "after refused reverses");
	free(before);
	free(rg);
}

Test(reverse, ignores_any_body_but_an_operation_key)
{
	char *rg = recovered_replication("reverse-keyed");
	char *path = vrt_fmt("/api/vr/replications/%s/action/reverse", rg);
	static const char keyed[] =
		"<ReverseRequest xmlns=\"urn:example\" operationKey=\"rev-1\"/>";
	struct vrt_resp first, again;
	call_route("POST", path, vrt_token(VRT_ADMIN_A), "text/plain", keyed, &first);
	char *lane = vrt_fmt("replication:%s", rg);
	struct vrt_accepted a = assert_accepted(&first, "hcsReverse", VRT_MT_RG, rg, "reverse",
						lane, "keyed reverse");
	vrt_assert_xstr(&first, "string(/v:Task/@operationKey)", "rev-1");
	char *before = vrt_db_fingerprint();
	call_route("POST", path, vrt_token(VRT_ADMIN_A), "application/xml", keyed, &again);
	char *task = assert_task_reply(&again, "the keyed reverse again");
	cr_assert_str_eq(task, a.task, "a repeated operationKey made another Task");
	vrt_assert_unchanged_since(before, "after the repeated keyed reverse");
	vrt_resp_free(&again);
	free(task);
	/* a body that is no XML, or hostile, is ignored like any other */
	static const char *const bodies[] = {
		"<<< not xml",
		"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x operationKey=\"&e;\"/>",
	};
	for (size_t i = 0; i < N(bodies); i++) {
		call_route("POST", path, vrt_token(VRT_ADMIN_A), "application/xml", bodies[i],
			   &again);
		free(assert_refused(&again, "AlreadyReversed", "409", "CONFLICT", bodies[i]));
		cr_assert_null(strstr(again.body, "root:x:0:0"));
		vrt_resp_free(&again);
	}
	free(before);
	vrt_resp_free(&first);
	vrt_accepted_free(&a);
	free(lane);
	free(path);
	free(rg);
}

static void failback_action(const char *action, const char *fb, const char *token,
			    struct vrt_resp *r)
{
	bool remove = strcmp(action, "delete") == 0;
	char *path = remove ? vrt_fmt("/api/vr/failbackreplications/%s", fb)
			    : vrt_fmt("/api/vr/failbackreplications/%s/action/%s", fb, action);
	call_route(remove ? "DELETE" : "POST", path, token, NULL, NULL, r);
	free(path);
}

static struct vrt_accepted accept_failback_action(const char *action, const char *fb,
						  const char *operation_name)
{
	struct vrt_resp r;
	failback_action(action, fb, vrt_token(VRT_ADMIN_A), &r);
	char *lane = vrt_fmt("replication:%s", fb);
	struct vrt_accepted a =
		assert_accepted(&r, operation_name, MT_FRG, fb, action, lane, action);
	vrt_resp_free(&r);
	free(lane);
	return a;
}

Test(failback, delete_removes_it_when_its_job_succeeds_and_a_new_reverse_may_follow)
{
	char *fb = NULL;
	char *rg = reversed_replication("failback-delete", &fb);
	struct vrt_accepted d = accept_failback_action("delete", fb, "hcsDelete");
	/* still there until the job succeeds; the replication stays reversed */
	char *path = vrt_fmt("/api/vr/failbackreplications/%s", fb);
	struct vrt_resp r;
	vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200, "%ld", r.status);
	vrt_resp_free(&r);
	post_action("reverse", rg, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "AlreadyReversed", "409", "CONFLICT", "reverse beside a failback"));
	vrt_resp_free(&r);
	/* once a delete is accepted, the failback takes nothing more */
	failback_action("sync", fb, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "ReplicationBeingDeleted", "409", "BUSY_ENTITY",
			    "sync of a failback being deleted"));
	vrt_resp_free(&r);
	run_job(d.job, "success");
	assert_task_status(d.task, VRT_ADMIN_A, "success");
	vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "the deleted failback replication");
	vrt_resp_free(&r);
	cr_assert(!listed("/api/org/" VRT_ORG_A "/failbackreplications", VRT_ADMIN_A, fb));
	vrt_assert_state(rg, "recovered none notActive false", "after the failback's removal");
	struct vrt_accepted again = accept_reverse(rg);
	vrt_accepted_free(&again);
	vrt_accepted_free(&d);
	free(path);
	free(rg);
	free(fb);
}

Test(failback, a_failed_delete_leaves_it_as_it_was)
{
	char *fb = NULL;
	char *rg = reversed_replication("failback-delete-failed", &fb);
	struct vrt_accepted d = accept_failback_action("delete", fb, "hcsDelete");
	run_job(d.job, "error");
	vrt_assert_state(fb, "notStarted none initialSync false", "after a failed delete");
	struct vrt_accepted s = accept_failback_action("sync", fb, "hcsSync");
	vrt_accepted_free(&s);
	vrt_accepted_free(&d);
	free(rg);
	free(fb);
}

Test(failback, pause_resume_and_sync_run_through_its_own_routes)
{
	char *fb = NULL;
	char *rg = reversed_replication("failback-controls", &fb);
	struct vrt_accepted p = accept_failback_action("pause", fb, "hcsPause");
	run_job(p.job, "success");
	vrt_assert_state(fb, "notStarted none initialSync true", "after the pause");
	struct vrt_resp r;
	failback_action("pause", fb, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "AlreadyPaused", "409", "CONFLICT", "a second pause"));
	vrt_resp_free(&r);
	failback_action("sync", fb, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "ReplicationPaused", "409", "CONFLICT", "sync while paused"));
	vrt_resp_free(&r);
	struct vrt_accepted u = accept_failback_action("resume", fb, "hcsResume");
	run_job(u.job, "success");
	vrt_assert_state(fb, "notStarted none initialSync false", "after the resume");
	struct vrt_accepted s = accept_failback_action("sync", fb, "hcsSync");
	run_job(s.job, "success");
	assert_task_status(s.task, VRT_ADMIN_A, "success");
	vrt_accepted_free(&s);
	vrt_accepted_free(&u);
	vrt_accepted_free(&p);
	free(rg);
	free(fb);
}

Test(failback, routes_of_one_kind_do_not_reach_the_other_nor_another_org)
{
	char *rg = new_replication(NULL, "kinds", NULL);
	char *before = vrt_db_fingerprint();
	static const char *const actions[] = {"delete", "sync", "pause", "resume"};
	for (size_t i = 0; i < N(actions); i++) {
		struct vrt_resp r;
		/* an incoming replication through the failback routes */
		failback_action(actions[i], rg, vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", actions[i]);
		vrt_resp_free(&r);
		/* another org's failback, and a missing one */
		failback_action(actions[i], VRT_FAILBACK_A1, vrt_token(VRT_ADMIN_B), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", actions[i]);
		cr_assert_null(strstr(r.body, VRT_ORG_A_NAME));
		vrt_resp_free(&r);
		failback_action(actions[i], VRT_MISSING, vrt_token(VRT_ROOT), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", actions[i]);
		vrt_resp_free(&r);
		/* a failback through the incoming routes */
		char *path = strcmp(actions[i], "delete") == 0
				     ? vrt_fmt("/api/vr/replications/%s", VRT_FAILBACK_A1)
				     : vrt_fmt("/api/vr/replications/%s/action/%s", VRT_FAILBACK_A1,
					       actions[i]);
		call_route(strcmp(actions[i], "delete") == 0 ? "DELETE" : "POST", path,
			   vrt_token(VRT_ADMIN_A), NULL, NULL, &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", path);
		vrt_resp_free(&r);
		free(path);
	}
	vrt_assert_unchanged_since(before, "after actions on the wrong kind or org");
	free(before);
	free(rg);
}

/* --- network mappings (U12, U13) ------------------------------------------------------- */

/* A new peer of org A (in a VDC of its own); the caller frees. */
static char *new_peer(void)
{
	char *vdc = vrt_new_vdc(true, true, true);
	char *peer = vrt_db_must("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	free(vdc);
	return peer;
}

static void get_mappings(const char *peer, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/vr/peers/%s/networkMappings", peer);
	vrt_get_ok(path, VRT_ADMIN_A, r);
	free(path);
}

static void put_mappings(const char *peer, const char *token, const char *content_type,
			 const char *body, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/vr/peers/%s/networkMappings", peer);
	call_route("PUT", path, token, content_type, body, r);
	free(path);
}

static struct vrt_accepted accept_mappings(const char *peer, const char *body)
{
	struct vrt_resp r;
	put_mappings(peer, vrt_token(VRT_ADMIN_A), MT_MAPPINGS, body, &r);
	char *lane = vrt_fmt("peer:%s", peer);
	struct vrt_accepted a = assert_accepted(&r, "hcsSetNetworkMappings",
						"application/vnd.vmware.hcs.peer+xml", peer,
						"setNetworkMappings", lane, "PUT networkMappings");
	vrt_resp_free(&r);
	free(lane);
	return a;
}

/* The mappings of a VrNetworkMappings document, one line each:
 * "list|source|target id|target name" (the caller frees). */
static char *mapping_lines(const struct vrt_resp *r)
{
	char *n = vrt_xstr(r, "count(//vr:NetworkMappings)");
	long count = strtol(n, NULL, 10);
	free(n);
	char *out = strdup("");
	for (long i = 1; i <= count; i++) {
		char *base = vrt_fmt("(//vr:NetworkMappings)[%ld]", i);
		char *list = vrt_fmt("local-name(%s/..)", base);
		char *src = vrt_fmt("string(%s/vr:SourceNetwork)", base);
		char *id = vrt_fmt("string(%s/v:TargetNetwork/@id)", base);
		char *name = vrt_fmt("string(%s/v:TargetNetwork/@name)", base);
		char *a = vrt_xstr(r, list), *b = vrt_xstr(r, src), *c = vrt_xstr(r, id),
		     *d = vrt_xstr(r, name);
		char *joined = vrt_fmt("%s%s|%s|%s|%s\n", out, a, b, c, d);
		free(out);
		out = joined;
		free(a);
		free(b);
		free(c);
		free(d);
		free(base);
		free(list);
		free(src);
		free(id);
		free(name);
	}
	return out;
}

static long staged(const char *job)
{
	char *n = vrt_db_must(
		"SELECT count(*)::text FROM network_mapping_staging WHERE job_id = $1::uuid", job);
	long v = strtol(n, NULL, 10);
	free(n);
	return v;
}

Test(network_mappings, put_takes_what_get_answers_and_applies_it_when_the_job_succeeds)
{
	char *peer = new_peer();
	struct vrt_resp fixture, empty, after, again;
	get_mappings(VRT_PEER_A1, &fixture);
	char *want = mapping_lines(&fixture);
	cr_assert(strstr(want, "FailoverNetworkMappings|DMZ & <backup>|"), "%s", want);
	get_mappings(peer, &empty);
	/* the fixture peer's document, hrefs and Links and all */
	struct vrt_accepted a = accept_mappings(peer, fixture.body);
	cr_assert_eq(staged(a.job), 3, "the three mappings are staged");
	/* nothing visible changes before the job succeeds */
	get_mappings(peer, &after);
	cr_assert_str_eq(after.body, empty.body, "the mappings changed before the job ran");
	vrt_resp_free(&after);
	run_job(a.job, "success");
	assert_task_status(a.task, VRT_ADMIN_A, "success");
	cr_assert_eq(staged(a.job), 0, "staged mappings left behind");
	get_mappings(peer, &after);
	char *got = mapping_lines(&after);
	cr_assert_str_eq(got, want, "the peer's mappings after the PUT");
	/* round trip: PUT of its own GET changes nothing */
	struct vrt_accepted b = accept_mappings(peer, after.body);
	run_job(b.job, "success");
	get_mappings(peer, &again);
	cr_assert_str_eq(again.body, after.body, "GET after PUT of GET differs");
	/* empty lists remove all */
	struct vrt_accepted c = accept_mappings(
		peer, "<VrNetworkMappings xmlns=\"" VRT_NS_VR "\"><FailoverNetworkMappings/>"
		      "<TestFailoverNetworkMappings/></VrNetworkMappings>");
	run_job(c.job, "success");
	vrt_assert_db("SELECT count(*)::text FROM network_mappings WHERE peer_id = $1::uuid", peer,
		      "0", "mappings after an empty PUT");
	/* the fixture peer kept its own */
	vrt_assert_db("SELECT count(*)::text FROM network_mappings WHERE peer_id = $1::uuid",
		      VRT_PEER_A1, "3", "the fixture peer's mappings");
	vrt_accepted_free(&c);
	vrt_accepted_free(&b);
	vrt_accepted_free(&a);
	free(got);
	free(want);
	vrt_resp_free(&again);
	vrt_resp_free(&after);
	vrt_resp_free(&empty);
	vrt_resp_free(&fixture);
	free(peer);
}

static const char new_mappings[] =
	"<ns2:VrNetworkMappings xmlns=\"" VRT_NS_VCLOUD "\" xmlns:ns2=\"" VRT_NS_VR "\">"
	"<ns2:FailoverNetworkMappings><ns2:NetworkMappings><ns2:SourceNetwork>Prod</ns2:SourceNetwork>"
	"<TargetNetwork name=\"net-prod\" id=\"urn:vcloud:network:d1000000-0000-4000-8000-000000000001\""
	" href=\"https://vcd.example.com/api/network/D1000000-0000-4000-8000-000000000001\"/>"
	"</ns2:NetworkMappings></ns2:FailoverNetworkMappings>"
	"<ns2:TestFailoverNetworkMappings><ns2:NetworkMappings><ns2:SourceNetwork>Prod"
	"</ns2:SourceNetwork><TargetNetwork name=\"net-test\""
	" href=\"https://vcd.example.com/api/admin/network/d1000000-0000-4000-8000-000000000002\"/>"
	"</ns2:NetworkMappings></ns2:TestFailoverNetworkMappings></ns2:VrNetworkMappings>";

Test(network_mappings, a_failed_job_changes_nothing_and_the_wildcard_type_is_taken)
{
	char *peer = new_peer();
	struct vrt_accepted a = accept_mappings(peer, new_mappings);
	run_job(a.job, "success");
	struct vrt_resp before, after, r;
	get_mappings(peer, &before);
	vrt_assert_xstr(
		&before,
		"string(//vr:FailoverNetworkMappings/vr:NetworkMappings/v:TargetNetwork/@id)",
		"urn:vcloud:network:d1000000-0000-4000-8000-000000000001");
	vrt_assert_xstr(
		&before,
		"string(//vr:TestFailoverNetworkMappings/vr:NetworkMappings/v:TargetNetwork/@name)",
		"net-test");
	put_mappings(peer, vrt_token(VRT_ROOT), "application/*+xml",
		     "<VrNetworkMappings xmlns=\"" VRT_NS_VR "\"><FailoverNetworkMappings/>"
		     "<TestFailoverNetworkMappings/></VrNetworkMappings>",
		     &r);
	char *lane = vrt_fmt("peer:%s", peer);
	struct vrt_accepted b =
		assert_accepted(&r, "hcsSetNetworkMappings", "application/vnd.vmware.hcs.peer+xml",
				peer, "setNetworkMappings", lane, "PUT as root, application/*+xml");
	vrt_resp_free(&r);
	run_job(b.job, "error");
	assert_task_status(b.task, VRT_ADMIN_A, "error");
	cr_assert_eq(staged(b.job), 0, "staged mappings left behind by a failed job");
	get_mappings(peer, &after);
	cr_assert_str_eq(after.body, before.body, "a failed job changed the mappings");
	vrt_resp_free(&after);
	vrt_resp_free(&before);
	vrt_accepted_free(&b);
	vrt_accepted_free(&a);
	free(lane);
	free(peer);
}

Test(network_mappings, an_operation_key_answers_the_first_task)
{
	char *peer = new_peer();
	char *body = vrt_fmt("<VrNetworkMappings xmlns=\"" VRT_NS_VR "\" operationKey=\"map-%s\">"
			     "<FailoverNetworkMappings/><TestFailoverNetworkMappings/>"
			     "</VrNetworkMappings>",
			     peer);
	struct vrt_accepted a = accept_mappings(peer, body);
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	put_mappings(peer, vrt_token(VRT_ADMIN_A), MT_MAPPINGS, body, &r);
	char *task = assert_task_reply(&r, "the keyed PUT again");
	cr_assert_str_eq(task, a.task, "a repeated operationKey made another Task");
	vrt_assert_unchanged_since(before, "after the repeated keyed PUT");
	vrt_resp_free(&r);
	free(task);
	free(before);
	free(body);
	vrt_accepted_free(&a);
	free(peer);
}

Test(network_mappings, refusals_are_errors_and_change_nothing)
{
	char *peer = new_peer();
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	/* organization users may read them, not change them */
	put_mappings(peer, vrt_token(VRT_USER_A), MT_MAPPINGS, new_mappings, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "PUT as an org user");
	vrt_resp_free(&r);
	/* another org's peer, a revoked one, a missing one: 404 before the body */
	static const char *const hidden[][2] = {
		{VRT_PEER_A1, VRT_ADMIN_B}, {VRT_PEER_A3, VRT_ADMIN_A}, {VRT_MISSING, VRT_ROOT}};
	for (size_t i = 0; i < N(hidden); i++) {
		put_mappings(hidden[i][0], vrt_token(hidden[i][1]), "text/plain", "x", &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", hidden[i][0]);
		vrt_resp_free(&r);
	}
	put_mappings(peer, NULL, MT_MAPPINGS, new_mappings, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "PUT without credentials");
	vrt_resp_free(&r);
	static const char *const types[] = {"text/plain", "application/json", MT_EDIT, NULL};
	for (size_t i = 0; i < N(types); i++) {
		put_mappings(peer, vrt_token(VRT_ADMIN_A), types[i], new_mappings, &r);
		vrt_assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", types[i] ? types[i] : "none");
		vrt_resp_free(&r);
	}
#define MAP(src, target)                                                                           \
	"<NetworkMappings><SourceNetwork>" src "</SourceNetwork>" target "</NetworkMappings>"
#define TARGET(attrs) "<vcloud:TargetNetwork " attrs "/>"
#define GOOD_TARGET                                                                                \
	TARGET("name=\"n\" href=\"https://x/api/network/d1000000-0000-4000-8000-000000000001\"")
#define DOC(failover, test)                                                                        \
	"<VrNetworkMappings xmlns=\"" VRT_NS_VR "\" xmlns:vcloud=\"" VRT_NS_VCLOUD "\">"           \
	"<FailoverNetworkMappings>" failover "</FailoverNetworkMappings>"                          \
	"<TestFailoverNetworkMappings>" test "</TestFailoverNetworkMappings></VrNetworkMappings>"
	static const char *const bodies[] = {
		"",
		"<VrNetworkMappings",
		"<!DOCTYPE VrNetworkMappings [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
		"<VrNetworkMappings xmlns=\"" VRT_NS_VR "\"><FailoverNetworkMappings/>"
		"<TestFailoverNetworkMappings/></VrNetworkMappings>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"/>",
		"<VrNetworkMappings xmlns=\"" VRT_NS_VR "\"><FailoverNetworkMappings/>"
		"</VrNetworkMappings>",
		/* the same source twice in one list */
		DOC(MAP("Prod", GOOD_TARGET) MAP("Prod", GOOD_TARGET), ""),
		/* no target network */
		DOC(MAP("Prod", ""), ""),
		/* a blank source */
		DOC(MAP(" ", GOOD_TARGET), ""),
		/* an href that names no network */
		DOC(MAP("Prod", TARGET("name=\"n\" href=\"https://x/api/network/prod\"")), ""),
		/* id and href of different networks */
		DOC("", MAP("Prod", TARGET("name=\"n\" id=\"urn:vcloud:network:d1000000-0000-4000-"
					   "8000-000000000009\" href=\"https://x/api/network/"
					   "d1000000-0000-4000-8000-000000000001\""))),
		/* an id that is no network URN */
		DOC("", MAP("Prod", TARGET("name=\"n\" id=\"d1000000-0000-4000-8000-000000000001\" "
					   "href=\"https://x/api/network/d1000000-0000-4000-8000-"
					   "000000000001\""))),
		/* no name */
		DOC(MAP("Prod", TARGET("href=\"https://x/api/network/d1000000-0000-4000-8000-"
				       "000000000001\"")),
		    ""),
	};
	for (size_t i = 0; i < N(bodies); i++) {
		put_mappings(peer, vrt_token(VRT_ADMIN_A), MT_MAPPINGS, bodies[i], &r);
		char *what = vrt_fmt("body %zu", i);
		vrt_assert_error(&r, 400, "BAD_REQUEST", what);
		cr_assert_null(strstr(r.body, "root:x:0:0"), "%s shows /etc/passwd", what);
		free(what);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after refused PUTs");
	/* the same source in both lists is fine */
	struct vrt_accepted a =
		accept_mappings(peer, DOC(MAP("Prod", GOOD_TARGET), MAP("Prod", GOOD_TARGET)));
	vrt_accepted_free(&a);
	free(before);
	free(peer);
}

/* --- recovery details (A1, U6) ---------------------------------------------------------- */

static char *edit_doc(const char *test, const char *failover, const char *planned)
{
	return vrt_fmt("<EditRecoveryDetailsParams xmlns=\"" VRT_NS_VR "\" name=\"xs:string\">"
		       "<IsTestFailoverEnabled> %s </IsTestFailoverEnabled>"
		       "<IsFailoverEnabled>%s</IsFailoverEnabled>"
		       "<IsPlannedMigrationEnabled>%s</IsPlannedMigrationEnabled>"
		       "</EditRecoveryDetailsParams>",
		       test, failover, planned);
}

static void edit_details(const char *vdc, const char *token, const char *content_type,
			 const char *body, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/admin/vdc/%s/action/editRecoveryDetails", vdc);
	call_route("POST", path, token, content_type, body, r);
	free(path);
}

/* U6 as "planned failover test" booleans. */
static char *recovery_details(const char *vdc)
{
	char *path = vrt_fmt("/api/vdc/%s/recoveryDetails", vdc);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *a = vrt_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsPlannedMigrationEnabled)");
	char *b = vrt_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsFailoverEnabled)");
	char *c = vrt_xstr(&r, "string(/vr:VrRecoveryDetails/vr:IsTestFailoverEnabled)");
	char *out = vrt_fmt("%s %s %s", a, b, c);
	free(a);
	free(b);
	free(c);
	free(path);
	vrt_resp_free(&r);
	return out;
}

static void assert_details(const char *vdc, const char *expected, const char *what)
{
	char *got = recovery_details(vdc);
	cr_assert_str_eq(got, expected, "%s: recovery details '%s', expected '%s'", what, got,
			 expected);
	free(got);
}

Test(recovery_details, edit_then_u6_shows_it_and_failover_is_refused)
{
	char *vdc = vrt_new_vdc(true, true, true);
	char *rg = new_replication(vdc, "edit-details", NULL);
	assert_details(vdc, "true true true", "before the edit");
	char *body = edit_doc("false", "0", "1");
	struct vrt_resp r;
	edit_details(vdc, vrt_token(VRT_ROOT), MT_EDIT, body, &r);
	char *lane = vrt_fmt("vdc:%s", vdc);
	struct vrt_accepted a = assert_accepted(&r, "hcsEditRecoveryDetails",
						"application/vnd.vmware.vcloud.vdc+xml", vdc,
						"editRecoveryDetails", lane, "editRecoveryDetails");
	char *org = id_of(&r, "string(/v:Task/v:Organization/@href)");
	cr_assert_str_eq(org, VRT_ORG_A, "the Task belongs to the VDC's org");
	vrt_resp_free(&r);
	/* the tenant sees its Task; nothing changes before the job succeeds */
	assert_task_status(a.task, VRT_ADMIN_A, "queued");
	assert_details(vdc, "true true true", "before the job");
	run_job(a.job, "success");
	assert_task_status(a.task, VRT_ROOT, "success");
	assert_details(vdc, "true false false", "after the job");
	/* failover and test failover are refused now, planned migration not */
	post_action("failover", rg, vrt_token(VRT_ADMIN_A), &r);
	free(assert_refused(&r, "VdcNotEnabledForRecoveryFault", "403",
			    "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "failover after the edit"));
	vrt_resp_free(&r);
	char *path = vrt_fmt("/api/vr/replications/%s/action/testFailover", rg);
	call_route("POST", path, vrt_token(VRT_ADMIN_A), "application/*+xml",
		   "<TestFailoverParams xmlns=\"" VRT_NS_VR "\"/>", &r);
	free(assert_refused(&r, "VdcNotEnabledForRecoveryFault", "403",
			    "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "test failover after the edit"));
	vrt_resp_free(&r);
	char *mlane = vrt_fmt("replication:%s", rg);
	post_action("plannedMigration", rg, vrt_token(VRT_ADMIN_A), &r);
	struct vrt_accepted m = assert_accepted(&r, "hcsPlannedMigration", VRT_MT_RG, rg,
						"plannedMigration", mlane, "planned migration");
	vrt_resp_free(&r);
	/* and back: a failed edit changes nothing */
	free(body);
	body = edit_doc("true", "true", "true");
	edit_details(vdc, vrt_token(VRT_ROOT), MT_EDIT, body, &r);
	struct vrt_accepted f = assert_accepted(&r, "hcsEditRecoveryDetails",
						"application/vnd.vmware.vcloud.vdc+xml", vdc,
						"editRecoveryDetails", lane, "the second edit");
	vrt_resp_free(&r);
	run_job(f.job, "error");
	assert_details(vdc, "true false false", "after a failed edit");
	vrt_accepted_free(&f);
	vrt_accepted_free(&m);
	vrt_accepted_free(&a);
	free(mlane);
	free(path);
	free(org);
	free(lane);
	free(body);
	free(rg);
	free(vdc);
}

Test(recovery_details, refusals_are_errors_and_change_nothing)
{
	char *vdc = vrt_new_vdc(true, true, true);
	char *body = edit_doc("false", "false", "false");
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	static const char *const tenants[] = {VRT_ADMIN_A, VRT_USER_A, VRT_ADMIN_B};
	for (size_t i = 0; i < N(tenants); i++) {
		edit_details(vdc, vrt_token(tenants[i]), MT_EDIT, body, &r);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", tenants[i]);
		vrt_resp_free(&r);
	}
	edit_details(VRT_MISSING, vrt_token(VRT_ROOT), MT_EDIT, body, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "a missing VDC");
	vrt_resp_free(&r);
	/* the published type only */
	static const char *const types[] = {"application/*+xml", "text/xml", NULL};
	for (size_t i = 0; i < N(types); i++) {
		edit_details(vdc, vrt_token(VRT_ROOT), types[i], body, &r);
		vrt_assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", types[i] ? types[i] : "none");
		vrt_resp_free(&r);
	}
	static const char *const bodies[] = {
		"",
		/* VrRecoveryDetails' order, not this document's */
		"<EditRecoveryDetailsParams xmlns=\"" VRT_NS_VR "\"><IsPlannedMigrationEnabled>true"
		"</IsPlannedMigrationEnabled><IsFailoverEnabled>true</IsFailoverEnabled>"
		"<IsTestFailoverEnabled>true</IsTestFailoverEnabled></EditRecoveryDetailsParams>",
		"<EditRecoveryDetailsParams xmlns=\"" VRT_NS_VR "\"><IsTestFailoverEnabled>true"
		"</IsTestFailoverEnabled><IsFailoverEnabled>true</IsFailoverEnabled>"
		"</EditRecoveryDetailsParams>",
		"<EditRecoveryDetailsParams xmlns=\"" VRT_NS_VR "\"><IsTestFailoverEnabled>yes"
		"</IsTestFailoverEnabled><IsFailoverEnabled>true</IsFailoverEnabled>"
		"<IsPlannedMigrationEnabled>true</IsPlannedMigrationEnabled>"
		"</EditRecoveryDetailsParams>",
		"<VrRecoveryDetails xmlns=\"" VRT_NS_VR "\"/>",
	};
	for (size_t i = 0; i < N(bodies); i++) {
		edit_details(vdc, vrt_token(VRT_ROOT), MT_EDIT, bodies[i], &r);
		char *what = vrt_fmt("body %zu", i);
		vrt_assert_error(&r, 400, "BAD_REQUEST", what);
		free(what);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after refused edits");
	/* a VDC not enabled for replication has no recovery types to set */
	edit_details(VRT_VDC_B2, vrt_token(VRT_ROOT), MT_EDIT, body, &r);
	free(assert_refused(&r, "VdcNotEnabledForReplication", "403",
			    "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "edit of VDC B2"));
	vrt_resp_free(&r);
	vrt_assert_db(
		"SELECT (failover_enabled OR test_failover_enabled OR planned_migration_enabled)"
		"::text FROM vdcs WHERE id = $1::uuid",
		VRT_VDC_B2, "false", "VDC B2");
	free(before);
	free(body);
	free(vdc);
}

/* --- moveReplication (A3, A4) ----------------------------------------------------------- */

static char *move_doc(const char *moref, const char *type, const char *href)
{
	return vrt_fmt("<MoveReplicationGroupParams xmlns=\"" VRT_NS_VR
		       "\" xmlns:vcloud=\"" VRT_NS_VCLOUD "\" xmlns:extension=\"" NS_EXT
		       "\"><extension:NewDatastore>"
		       "<vcloud:VimServerRef href=\"%s\"/><extension:MoRef>%s</extension:MoRef>"
		       "<extension:VimObjectType>%s</extension:VimObjectType>"
		       "</extension:NewDatastore></MoveReplicationGroupParams>",
		       href, moref, type);
}

static void move(const char *rg, const char *token, const char *content_type, const char *body,
		 struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/admin/vr/replications/%s/action/moveReplication", rg);
	call_route("POST", path, token, content_type, body, r);
	free(path);
}

static void get_details(const char *rg, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/admin/vr/replications/%s/details", rg);
	vrt_get_ok(path, VRT_ROOT, r);
	free(path);
}

Test(move_replication, details_show_the_new_datastore_once_the_job_succeeded)
{
	char *rg = new_replication(NULL, "move", NULL);
	char *body = move_doc("datastore-23", "DATASTORE", VIM_SERVER_HREF);
	struct vrt_resp r, d;
	move(rg, vrt_token(VRT_ROOT), MT_MOVE, body, &r);
	char *lane = vrt_fmt("replication:%s", rg);
	struct vrt_accepted a = assert_accepted(&r, "hcsMoveReplication", VRT_MT_RG, rg,
						"moveReplication", lane, "moveReplication");
	vrt_resp_free(&r);
	vrt_assert_db("SELECT (params ->> 'MoRef') || ' ' || (params ->> 'VimServerRef') FROM jobs"
		      " WHERE id = $1::uuid",
		      a.job, "datastore-23 " VIM_SERVER_HREF, "the job's params");
	get_details(rg, &d);
	cr_assert_eq(vrt_xpath_count(d.body, "//ext:DatastoreVimObjectRef"), 0,
		     "a datastore before the move ran\n%s", d.body);
	vrt_resp_free(&d);
	run_job(a.job, "success");
	assert_task_status(a.task, VRT_ADMIN_A, "success");
	get_details(rg, &d);
	cr_assert_eq(vrt_xpath_count(d.body, "//vr:Disk"), 2, "%s", d.body);
	cr_assert_eq(vrt_xpath_count(d.body, "//vr:Disk/ext:DatastoreVimObjectRef"
					     "[ext:MoRef = 'datastore-23' and"
					     " ext:VimObjectType = 'DATASTORE' and"
					     " v:VimServerRef/@href = '" VIM_SERVER_HREF "']"),
		     2, "every disk is on the new datastore\n%s", d.body);
	vrt_resp_free(&d);
	vrt_assert_state(rg, "notStarted none ok false", "after the move");
	/* again, to another one, with the wildcard type */
	free(body);
	body = move_doc("datastore-7", "DATASTORE", VIM_SERVER_HREF);
	move(rg, vrt_token(VRT_ROOT), "application/*+xml", body, &r);
	struct vrt_accepted b = assert_accepted(&r, "hcsMoveReplication", VRT_MT_RG, rg,
						"moveReplication", lane, "a second move");
	vrt_resp_free(&r);
	run_job(b.job, "error");
	get_details(rg, &d);
	cr_assert_eq(vrt_xpath_count(d.body, "//ext:MoRef[. = 'datastore-23']"), 2,
		     "a failed move changed the datastore\n%s", d.body);
	vrt_resp_free(&d);
	vrt_accepted_free(&b);
	vrt_accepted_free(&a);
	free(lane);
	free(body);
	free(rg);
}

Test(move_replication, refusals_are_errors_and_change_nothing)
{
	char *rg = new_replication(NULL, "move-refused", NULL);
	char *recovered = new_replication(NULL, "move-recovered",
					  "recovery_state = 'recovered',"
					  " replication_state = 'notActive'");
	char *good = move_doc("datastore-23", "DATASTORE", VIM_SERVER_HREF);
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	static const char *const tenants[] = {VRT_ADMIN_A, VRT_USER_A};
	for (size_t i = 0; i < N(tenants); i++) {
		move(rg, vrt_token(tenants[i]), MT_MOVE, good, &r);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", tenants[i]);
		vrt_resp_free(&r);
	}
	static const char *const hidden[] = {VRT_MISSING, VRT_FAILBACK_A1};
	for (size_t i = 0; i < N(hidden); i++) {
		move(hidden[i], vrt_token(VRT_ROOT), MT_MOVE, good, &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", hidden[i]);
		vrt_resp_free(&r);
	}
	static const char *const types[] = {"text/plain", MT_MAPPINGS, NULL};
	for (size_t i = 0; i < N(types); i++) {
		move(rg, vrt_token(VRT_ROOT), types[i], good, &r);
		vrt_assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", types[i] ? types[i] : "none");
		vrt_resp_free(&r);
	}
	char *bodies[] = {
		strdup(""),
		strdup("<MoveReplicationGroupParams xmlns=\"" VRT_NS_VR "\"/>"),
		move_doc("vm-12", "VIRTUAL_MACHINE", VIM_SERVER_HREF),
		move_doc("datastore 23", "DATASTORE", VIM_SERVER_HREF),
		move_doc("data\\\"store", "DATASTORE", VIM_SERVER_HREF),
		move_doc("datastore-23", "DATASTORE", "/api/admin/extension/vimServer/1"),
		move_doc("datastore-23", "DATASTORE", "https://vc01/a&quot;b"),
		strdup("<MoveReplicationGroupParams xmlns=\"" VRT_NS_VR
		       "\" xmlns:extension=\"" NS_EXT
		       "\"><extension:NewDatastore><extension:MoRef>d</extension:MoRef>"
		       "</extension:NewDatastore></MoveReplicationGroupParams>"),
	};
	for (size_t i = 0; i < N(bodies); i++) {
		move(rg, vrt_token(VRT_ROOT), MT_MOVE, bodies[i], &r);
		char *what = vrt_fmt("body %zu", i);
		vrt_assert_error(&r, 400, "BAD_REQUEST", what);
		free(what);
		vrt_resp_free(&r);
		free(bodies[i]);
	}
	vrt_assert_unchanged_since(before, "after refused moves");
	move(recovered, vrt_token(VRT_ROOT), MT_MOVE, good, &r);
	free(assert_refused(&r, "AlreadyRecovered", "409", "CONFLICT", "move of a recovered one"));
	vrt_resp_free(&r);
	free(before);
	free(good);
	free(recovered);
	free(rg);
}

/* --- replica servers (E2, E3, E4) ------------------------------------------------------- */

static void get_as_root(const char *path, long status, struct vrt_resp *r)
{
	vrt_get(path, vrt_token(VRT_ROOT), r);
	cr_assert_eq(r->status, status, "GET %s: %ld\n%s", path, r->status, r->body);
	vrt_assert_valid(r, path);
}

Test(vr_servers, documents_describe_the_registered_servers)
{
	struct vrt_resp r;
	get_as_root("/api/admin/extension/vr/vrServers", 200, &r);
	vrt_assert_xstr(&r, "string(/v:References/@total)", "2");
	cr_assert(listed("/api/admin/extension/vr/vrServers", VRT_ROOT, VRT_SERVER_1));
	cr_assert(listed("/api/admin/extension/vr/vrServers", VRT_ROOT, VRT_SERVER_2));
	vrt_assert_xstr(&r, "string(/v:References/v:Reference[1]/@type)", MT_VR_SERVER);
	vrt_assert_xstr(&r, "string(/v:References/v:Reference[1]/@id)",
			"urn:vcloud:vrServer:" VRT_SERVER_1);
	vrt_resp_free(&r);

	/* E2 */
	char *count = vrt_db_must("SELECT count(*)::text FROM replications"
				  " WHERE replica_server_id = $1::uuid",
				  VRT_SERVER_2);
	get_as_root("/api/admin/extension/vr/vrs/" VRT_SERVER_2, 200, &r);
	const char *ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strncmp(ct, MT_VR_SERVER ";version=", strlen(MT_VR_SERVER) + 9) == 0,
		  "Content-Type %s", ct ? ct : "(none)");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/@name)", "worker-2");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/@id)", "urn:vcloud:vrServer:" VRT_SERVER_2);
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:Uuid)", VRT_SERVER_2);
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:ReplicationTrafficAddress)",
			"127.0.0.1:31032");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:State)", "disconnected");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:RegisteredAt)",
			"2024-01-02T00:00:00.000Z");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:LastHeartbeat)",
			"2024-03-04T05:06:07.089Z");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:ReplicationsCount)", count);
	char *statistics = vrt_fmt("%s/api/admin/extension/vr/vrs/" VRT_SERVER_2 "/statistics",
				   vrt_public_url());
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/v:Link[@rel='down']/@href)", statistics);
	free(statistics);
	vrt_resp_free(&r);

	/* E4, over counters of its own */
	vrt_db_exec("UPDATE replica_servers SET bytes_in = 73014444032, bytes_out = 1048576,"
		    " transfer_errors = 3 WHERE id = $1::uuid",
		    VRT_SERVER_2);
	char *disks =
		vrt_db_must("SELECT count(*)::text FROM disks d JOIN replications r"
			    " ON r.id = d.replication_id WHERE r.replica_server_id = $1::uuid",
			    VRT_SERVER_2);
	get_as_root("/api/admin/extension/vr/vrs/" VRT_SERVER_2 "/statistics", 200, &r);
	ct = vrt_header(&r, "Content-Type");
	cr_assert(ct && strncmp(ct, MT_VR_STATS ";version=", strlen(MT_VR_STATS) + 9) == 0,
		  "Content-Type %s", ct ? ct : "(none)");
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:ReplicationsCount)", count);
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:DisksCount)", disks);
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:LwdStatistics/vr:Inbound)",
			"73014444032");
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:LwdStatistics/vr:Outbound)",
			"1048576");
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:LwdStatistics/vr:Errors)", "3");
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:NfcStatistics/vr:Inbound)", "0");
	vrt_assert_xstr(&r, "string(/vr:VrServerStatistics/vr:StartTime)",
			"2024-01-02T00:00:00.000Z");
	vrt_resp_free(&r);

	/* an unregistered server and a missing one are gone; tenants get 403 */
	static const char *const gone[] = {
		"/api/admin/extension/vr/vrs/" VRT_SERVER_GONE,
		"/api/admin/extension/vr/vrs/" VRT_SERVER_GONE "/statistics",
		"/api/admin/extension/vr/vrs/" VRT_MISSING,
		"/api/admin/extension/vr/vrs/" VRT_MISSING "/statistics",
	};
	for (size_t i = 0; i < N(gone); i++) {
		vrt_get(gone[i], vrt_token(VRT_ROOT), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", gone[i]);
		vrt_resp_free(&r);
	}
	static const char *const provider[] = {
		"/api/admin/extension/vr/vrServers",
		"/api/admin/extension/vr/vrs/" VRT_SERVER_1,
		"/api/admin/extension/vr/vrs/" VRT_SERVER_1 "/statistics",
	};
	for (size_t i = 0; i < N(provider); i++) {
		vrt_get(provider[i], vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", provider[i]);
		cr_assert_null(strstr(r.body, "worker-1"));
		vrt_resp_free(&r);
	}
	free(disks);
	free(count);
}

/* Register the service VRT_SERVICE_NEW's server: its id (the caller frees). */
static char *register_new_server(long expected_status)
{
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = "POST",
				.path = "/api/internal/servers",
				.bearer = vrt_service_token(VRT_SERVICE_NEW),
				.headers = headers,
				.body = "<ReplicaServer xmlns=\"" VRT_NS_INTERNAL
					"\"><Name>" VRT_SERVICE_NEW
					"</Name><TrafficAddress>127.0.0.1:31033</TrafficAddress>"
					"</ReplicaServer>",
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, expected_status, "register %s: %ld\n%s", VRT_SERVICE_NEW, r.status,
		     r.body);
	char *id = r.status == 200 ? vrt_xstr(&r, "string(/vi:ReplicaServer/vi:Id)") : NULL;
	vrt_resp_free(&r);
	return id;
}

static void unregister(const char *server, const char *token, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/admin/extension/vr/vrs/%s", server);
	call_route("DELETE", path, token, NULL, NULL, r);
	free(path);
}

Test(vr_servers, unregister_takes_effect_when_its_job_succeeds)
{
	char *server = register_new_server(200);
	char *set = vrt_fmt("replica_server_id = '%s'", server);
	char *rg = new_replication(NULL, "staged-by-worker-3", set);
	struct vrt_resp r;
	unregister(server, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "unregister as a tenant");
	vrt_resp_free(&r);
	unregister(server, vrt_token(VRT_ROOT), &r);
	char *lane = vrt_fmt("server:%s", server);
	struct vrt_accepted a = assert_accepted(&r, "hcsUnregisterVrServer", MT_VR_SERVER, server,
						"unregisterServer", lane, "unregister");
	char *org = id_of(&r, "string(/v:Task/v:Organization/@href)");
	cr_assert_str_eq(org, vrt_system_org(), "the Task is the provider's");
	vrt_resp_free(&r);
	/* a second one while the first is on its way */
	unregister(server, vrt_token(VRT_ROOT), &r);
	free(assert_refused(&r, "ServerBeingUnregistered", "409", "BUSY_ENTITY",
			    "a second unregister"));
	vrt_resp_free(&r);
	/* still registered until the job succeeds */
	char *path = vrt_fmt("/api/admin/extension/vr/vrs/%s", server);
	get_as_root(path, 200, &r);
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:State)", "connected");
	vrt_assert_xstr(&r, "string(/vr:AdminVrServer/vr:ReplicationsCount)", "1");
	vrt_resp_free(&r);
	run_job(a.job, "success");
	assert_task_status(a.task, VRT_ROOT, "success");
	vrt_get(path, vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "the unregistered server");
	vrt_resp_free(&r);
	cr_assert(!listed("/api/admin/extension/vr/vrServers", VRT_ROOT, server));
	/* what it staged waits for another server */
	vrt_assert_db("SELECT coalesce(replica_server_id::text, 'none') FROM replications"
		      " WHERE id = $1::uuid",
		      rg, "none", "the replication it staged");
	/* its credential starts no job and cannot register it again */
	char *other = new_replication(NULL, "after-unregister", NULL);
	post_action("sync", other, vrt_token(VRT_ADMIN_A), &r);
	char *olane = vrt_fmt("replication:%s", other);
	struct vrt_accepted s =
		assert_accepted(&r, "hcsSync", VRT_MT_RG, other, "sync", olane, "a sync");
	vrt_resp_free(&r);
	char *doc = vrt_job_start_doc(server, 1);
	vrt_job_call("start", s.job, vrt_service_token(VRT_SERVICE_NEW), doc, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
			 "job start by the unregistered server");
	vrt_resp_free(&r);
	vrt_assert_db("SELECT state FROM jobs WHERE id = $1::uuid", s.job, "queued",
		      "the job the unregistered server tried");
	free(register_new_server(403));
	/* another server runs it, and stages the replication from then on */
	run_job(s.job, "success");
	vrt_assert_db("SELECT replica_server_id::text FROM replications WHERE id = $1::uuid", other,
		      VRT_SERVER_1, "the replication's new server");
	vrt_accepted_free(&s);
	vrt_accepted_free(&a);
	free(doc);
	free(olane);
	free(other);
	free(path);
	free(org);
	free(lane);
	free(rg);
	free(set);
	free(server);
}

Test(vr_servers, a_failed_unregister_leaves_the_server_registered)
{
	struct vrt_resp r;
	unregister(VRT_SERVER_2, vrt_token(VRT_ROOT), &r);
	char *lane = vrt_fmt("server:%s", VRT_SERVER_2);
	struct vrt_accepted a = assert_accepted(&r, "hcsUnregisterVrServer", MT_VR_SERVER,
						VRT_SERVER_2, "unregisterServer", lane,
						"unregister");
	vrt_resp_free(&r);
	run_job(a.job, "error");
	get_as_root("/api/admin/extension/vr/vrs/" VRT_SERVER_2, 200, &r);
	vrt_resp_free(&r);
	/* the unregistered and missing ones are 404 */
	static const char *const gone[] = {VRT_SERVER_GONE, VRT_MISSING};
	char *before = vrt_db_fingerprint();
	for (size_t i = 0; i < N(gone); i++) {
		unregister(gone[i], vrt_token(VRT_ROOT), &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", gone[i]);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after unregistering missing servers");
	free(before);
	vrt_accepted_free(&a);
	free(lane);
}
