/* The internal job routes, the worker side of every action (docs/pipeline.md
 * section 2-4, docs/job-transport.md): a test acts as the worker of the
 * service credential VRT_SERVICE, whose replica server VRT_SERVER_1 the
 * harness registered. It accepts an action as a tenant, then starts the
 * job, reports progress and completes it, and checks the Task, the job,
 * the replication and its vApps after each step; and the refusals (409
 * JOB_FINISHED, JOB_NOT_HEAD, JOB_RUNNING, JOB_NOT_RUNNING,
 * JOB_CANCEL_REQUESTED; 403, 404), the lane order, dead letters and the
 * relay that publishes again what Redis lost.
 *
 * The API runs with [jobs] republish_after = 1 and stale_after = 5 (the
 * least allowed), so that the relay tests take seconds. The tests run one
 * at a time: the relay test deletes the stream the others look into. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

#define PREFIX	    "vrt-jobs"
#define STALE_AFTER 5

VRT_SUITE(.name = "jobs", .jobs = 1, .redis_db = 9,
	  .config = "[jobs]\nprefix = " PREFIX "\nrepublish_after = 1\nstale_after = 5\n");

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- helpers ------------------------------------------------------------- */

/* state and worker of a job ("running 8000...-0001"; no worker: "-") */
static void assert_job_row(const char *job, const char *expected, const char *what)
{
	vrt_assert_db("SELECT state || ' ' || coalesce(worker_id::text, '-') FROM jobs"
		      " WHERE id = $1::uuid",
		      job, expected, what);
}

static char *progress_doc(const char *server, int progress)
{
	return vrt_job_progress_doc(server, progress, "copying disks");
}

/* start as service/server: 200 with a valid Job of the internal type. The
 * caller frees the response. */
static void start_ok_as(const char *service, const char *server, const char *job,
			unsigned deliveries, struct vrt_resp *r)
{
	char *doc = vrt_job_start_doc(server, deliveries);
	vrt_job_call("start", job, vrt_service_token(service), doc, r);
	free(doc);
	cr_assert_eq(r->status, 200, "start of %s: %ld\n%s", job, r->status, r->body);
	vrt_assert_valid(r, "Job");
	const char *ct = vrt_header(r, "Content-Type");
	cr_assert(ct && strncmp(ct, VRT_MT_INTERNAL, strlen(VRT_MT_INTERNAL)) == 0,
		  "Content-Type '%s'", ct ? ct : "(none)");
	vrt_assert_xstr(r, "string(/vi:Job/vi:Id)", job);
	vrt_assert_xstr(r, "string(/vi:Job/vi:State)", "running");
}

static void start_ok(const char *job)
{
	struct vrt_resp r;
	start_ok_as(VRT_SERVICE, VRT_SERVER_1, job, 1, &r);
	vrt_resp_free(&r);
}

static void complete(const char *job, const char *outcome, struct vrt_resp *r)
{
	char *doc = vrt_job_result_doc(VRT_SERVER_1, outcome, NULL, NULL, NULL, NULL);
	vrt_job_call("complete", job, vrt_service_token(VRT_SERVICE), doc, r);
	free(doc);
}

static void complete_ok(const char *job, const char *outcome)
{
	struct vrt_resp r;
	complete(job, outcome, &r);
	char *what = vrt_fmt("complete %s of %s", outcome, job);
	vrt_assert_no_content(&r, what);
	free(what);
	vrt_resp_free(&r);
}

/* start and complete with success: the whole run of a job */
static void run_job(const char *job)
{
	start_ok(job);
	complete_ok(job, "success");
}

static void assert_task(const char *task, const char *status, const char *progress)
{
	struct vrt_resp r;
	vrt_get_task(task, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", status);
	if (progress)
		vrt_assert_xstr(&r, "string(/v:Task/v:Progress)", progress);
	bool final = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/@endTime"), final ? 1 : 0,
		     "Task %s (%s): endTime\n%s", task, status, r.body);
	if (strcmp(status, "error") != 0)
		cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Error"), 0, "%s", r.body);
	vrt_resp_free(&r);
}

/* The Task ended in error with these codes and message. */
static void assert_task_error(const char *task, const char *major, const char *minor,
			      const char *vendor, const char *message)
{
	struct vrt_resp r;
	vrt_get_task(task, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(&r, "string(/v:Task/v:Progress)", "100");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@majorErrorCode)", major);
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@minorErrorCode)", minor);
	if (vendor)
		vrt_assert_xstr(&r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", vendor);
	else
		cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Error/@vendorSpecificErrorCode"), 0,
			     "%s", r.body);
	if (message)
		vrt_assert_xstr(&r, "string(/v:Task/v:Error/@message)", message);
	vrt_resp_free(&r);
}

/* The replication as admin-a reads it (U15); the caller frees. */
static void get_replication(const char *rg, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/vr/replications/%s", rg);
	vrt_get_ok(path, VRT_ADMIN_A, r);
	free(path);
}

static void assert_vapps(const char *rg, const char *expected, const char *what)
{
	char *v = vrt_vapps_of(rg);
	cr_assert_str_eq(v, expected, "%s: live vApps '%s', expected '%s'", what, v, expected);
	free(v);
}

static void add_vapp(const char *rg, const char *kind)
{
	vrt_db_exec("INSERT INTO vapps (org_id, vdc_id, replication_id, kind, name)"
		    " SELECT org_id, vdc_id, id, $2, name FROM replications WHERE id = $1::uuid",
		    rg, kind);
}

/* Wait up to seconds for the job to be in the stream. */
static bool stream_gets(const char *job, double seconds)
{
	double deadline = vrt_now() + seconds;
	do {
		if (vrt_stream_has(PREFIX, job))
			return true;
		vrt_sleep(0.1);
	} while (vrt_now() < deadline);
	return vrt_stream_has(PREFIX, job);
}

/* A job's row and its Task's, to see that a refusal changed neither; all
 * but published_at, which the relay moves whenever it publishes again. */
static char *job_snapshot(const char *job)
{
	return vrt_db_must("SELECT (j.state, j.deliveries, j.worker_id, j.params, j.started_at,"
			   " j.heartbeat_at, j.finished_at)::text || t::text"
			   " FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.id = $1::uuid",
			   job);
}

static void assert_snapshot(const char *job, const char *before, const char *what)
{
	char *now = job_snapshot(job);
	cr_assert_str_eq(now, before, "%s: the job or its Task changed", what);
	free(now);
}

/* --- routes ----------------------------------------------------------------- */

static const char *const routes[] = {"start", "progress", "complete", "dead"};

Test(routes, every_job_route_of_the_table_is_tested_here)
{
	size_t n = 0;
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (strncmp(route->pattern, "/api/internal/jobs/", 19) != 0)
			continue;
		bool known = false;
		for (size_t i = 0; i < N(routes) && !known; i++) {
			char *pattern = vrt_fmt("/api/internal/jobs/{id}/%s", routes[i]);
			known = strcmp(route->method, "POST") == 0 &&
				strcmp(pattern, route->pattern) == 0;
			free(pattern);
		}
		cr_assert(known, "%s %s has no test here", route->method, route->pattern);
		cr_assert(route->flags & VR_ROUTE_SERVICE, "%s is not for services",
			  route->pattern);
		n++;
	}
	cr_assert_eq(n, N(routes), "a test here names a job route the table does not have");
}

/* --- start ------------------------------------------------------------------ */

Test(start, answers_the_job_and_the_task_runs)
{
	char *rg = vrt_new_replication(NULL, "start", false, NULL);
	struct vrt_accepted a =
		vrt_accept_as(VRT_ADMIN_A, "testFailover", rg, VRT_MT_TEST,
			      "<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>false</PowerOn>"
			      "<Synchronize>true</Synchronize></TestFailoverParams>");
	cr_assert(vrt_stream_has(PREFIX, a.job), "the accepted job is not in the stream");
	struct vrt_resp r;
	start_ok_as(VRT_SERVICE, VRT_SERVER_1, a.job, 1, &r);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:TaskId)", a.task);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Action)", "testFailover");
	char *lane = vrt_fmt("replication:%s", rg);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Lane)", lane);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Deliveries)", "1");
	char *children = vrt_xstr(&r, "count(/vi:Job/*)");
	cr_assert_str_eq(children, "7", "Job has %s children\n%s", children, r.body);
	free(children);
	/* Params is the job's JSON */
	char *params = vrt_xstr(&r, "string(/vi:Job/vi:Params)");
	cr_assert(strstr(params, "\"PowerOn\": false") && strstr(params, "\"Synchronize\": true") &&
			  strstr(params, "\"InstanceId\": null"),
		  "Params %s", params);
	free(params);
	cr_assert_not_null(vrt_header(&r, "X-VMWARE-VCLOUD-REQUEST-ID"));
	vrt_resp_free(&r);
	assert_task(a.task, "running", NULL);
	assert_job_row(a.job, "running " VRT_SERVER_1, "started job");
	vrt_assert_db("SELECT deliveries::text FROM jobs WHERE id = $1::uuid", a.job, "1",
		      "deliveries");
	/* the server that first runs a replication's job stages its data */
	struct vrt_resp g;
	get_replication(rg, &g);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:VrServerInfo/vr:Uuid)", VRT_SERVER_1);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:TestRecoveryState)", "testInProgress");
	vrt_resp_free(&g);
	/* a redelivery to the same server starts it again, counting deliveries */
	start_ok_as(VRT_SERVICE, VRT_SERVER_1, a.job, 3, &r);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Deliveries)", "3");
	vrt_resp_free(&r);
	vrt_assert_db("SELECT deliveries::text FROM jobs WHERE id = $1::uuid", a.job, "3",
		      "deliveries");
	free(lane);
	vrt_accepted_free(&a);
	free(rg);
}

Test(start, takes_uppercase_ids_and_does_not_negotiate)
{
	char *rg = vrt_new_replication(NULL, "start-upper", false, NULL);
	struct vrt_accepted a = vrt_accept("failover", rg);
	char upper[40];
	snprintf(upper, sizeof upper, "%s", a.job);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	char *doc = vrt_job_start_doc(VRT_SERVER_1, 1);
	char *path = vrt_fmt("/api/internal/jobs/%s/start", upper);
	const char *headers[] = {"Content-Type: application/xml; charset=utf-8", NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = vrt_service_token(VRT_SERVICE),
				.headers = headers,
				.accept = "application/json",
				.body = doc,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 200, "%ld\n%s", r.status, r.body);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Id)", a.job);
	vrt_assert_xstr(&r, "string(/vi:Job/vi:Params)",
			"{\"PeerId\": \"" VRT_PEER_A1 "\", \"PowerOn\": true, \"InstanceId\": null, "
			"\"Synchronize\": false}");
	vrt_resp_free(&r);
	free(path);
	free(doc);
	vrt_accepted_free(&a);
	free(rg);
}

Test(start, after_the_end_is_409_job_finished)
{
	char *rg = vrt_new_replication(NULL, "finished", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	run_job(a.job);
	char *before = job_snapshot(a.job);
	char *doc = vrt_job_start_doc(VRT_SERVER_1, 2);
	struct vrt_resp r;
	vrt_job_call("start", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_error(&r, 409, "JOB_FINISHED", "start of a finished job");
	vrt_resp_free(&r);
	/* as another server too */
	free(doc);
	doc = vrt_job_start_doc(VRT_SERVER_2, 2);
	vrt_job_call("start", a.job, vrt_service_token(VRT_SERVICE_OTHER), doc, &r);
	vrt_assert_error(&r, 409, "JOB_FINISHED", "start of a finished job by worker-2");
	vrt_resp_free(&r);
	assert_snapshot(a.job, before, "after starts of a finished job");
	assert_task(a.task, "success", "100");
	free(doc);
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

Test(start, by_another_live_server_while_it_runs_is_409_job_running)
{
	char *rg = vrt_new_replication(NULL, "running", false, NULL);
	struct vrt_accepted a = vrt_accept("failover", rg);
	start_ok(a.job);
	char *before = job_snapshot(a.job);
	char *doc = vrt_job_start_doc(VRT_SERVER_2, 2);
	struct vrt_resp r;
	vrt_job_call("start", a.job, vrt_service_token(VRT_SERVICE_OTHER), doc, &r);
	vrt_assert_error(&r, 409, "JOB_RUNNING", "start by worker-2 of worker-1's job");
	vrt_resp_free(&r);
	assert_snapshot(a.job, before, "after JOB_RUNNING");
	assert_job_row(a.job, "running " VRT_SERVER_1, "still worker-1's");
	free(doc);
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

Test(start, naming_a_server_of_another_credential_is_403)
{
	char *rg = vrt_new_replication(NULL, "foreign-server", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	char *before = job_snapshot(a.job);
	static const char *const servers[] = {VRT_SERVER_2, VRT_SERVER_GONE, VRT_MISSING};
	for (size_t i = 0; i < N(servers); i++) {
		char *doc = vrt_job_start_doc(servers[i], 1);
		struct vrt_resp r;
		vrt_job_call("start", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
		char *what = vrt_fmt("start by worker-1 naming server %s", servers[i]);
		vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
		free(what);
		free(doc);
		vrt_resp_free(&r);
	}
	assert_snapshot(a.job, before, "after starts naming foreign servers");
	assert_task(a.task, "queued", "0");
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

/* --- progress ---------------------------------------------------------------- */

static void progress(const char *job, const char *service, const char *server, int value,
		     struct vrt_resp *r)
{
	char *doc = progress_doc(server, value);
	vrt_job_call("progress", job, vrt_service_token(service), doc, r);
	free(doc);
}

Test(progress, moves_the_task_progress_forward_and_below_100)
{
	char *rg = vrt_new_replication(NULL, "progress", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	static const struct {
		int value;
		const char *shown;
	} steps[] = {{40, "40"}, {30, "40"}, {75, "75"}, {100, "99"}};
	for (size_t i = 0; i < N(steps); i++) {
		struct vrt_resp r;
		progress(a.job, VRT_SERVICE, VRT_SERVER_1, steps[i].value, &r);
		char *what = vrt_fmt("progress %d", steps[i].value);
		vrt_assert_no_content(&r, what);
		free(what);
		vrt_resp_free(&r);
		assert_task(a.task, "running", steps[i].shown);
	}
	complete_ok(a.job, "success");
	assert_task(a.task, "success", "100");
	vrt_accepted_free(&a);
	free(rg);
}

Test(progress, from_a_server_not_holding_the_job_is_409_job_not_running)
{
	char *rg = vrt_new_replication(NULL, "not-holding", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	struct vrt_resp r;
	/* not started yet */
	progress(a.job, VRT_SERVICE, VRT_SERVER_1, 10, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_RUNNING", "progress of a queued job");
	vrt_resp_free(&r);
	assert_task(a.task, "queued", "0");
	start_ok(a.job);
	char *before = job_snapshot(a.job);
	progress(a.job, VRT_SERVICE_OTHER, VRT_SERVER_2, 50, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_RUNNING", "progress by worker-2 of worker-1's job");
	vrt_resp_free(&r);
	assert_snapshot(a.job, before, "after progress from another server");
	/* and after the end */
	complete_ok(a.job, "success");
	progress(a.job, VRT_SERVICE, VRT_SERVER_1, 60, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_RUNNING", "progress of a finished job");
	vrt_resp_free(&r);
	assert_task(a.task, "success", "100");
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

Test(progress, after_a_cancel_request_is_409_job_cancel_requested)
{
	char *rg = vrt_new_replication(NULL, "cancel", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	vrt_db_exec("UPDATE tasks SET cancel_requested = true WHERE id = $1::uuid", a.task);
	struct vrt_resp r;
	progress(a.job, VRT_SERVICE, VRT_SERVER_1, 20, &r);
	vrt_assert_error(&r, 409, "JOB_CANCEL_REQUESTED",
			 "progress of a job whose Task is canceled");
	vrt_resp_free(&r);
	/* the worker stops and completes it as canceled */
	complete_ok(a.job, "canceled");
	assert_task(a.task, "canceled", "100");
	assert_job_row(a.job, "canceled " VRT_SERVER_1, "canceled job");
	/* a canceled test failover did not happen: the state before it is back */
	vrt_assert_state(rg, "notStarted none ok false", "after a canceled test failover");
	assert_vapps(rg, "", "after a canceled test failover");
	vrt_accepted_free(&a);
	free(rg);
}

/* --- complete: the effects of each action (docs/state-machine.md) ----------------- */

Test(complete, test_failover_success_builds_the_test_vapp)
{
	char *rg = vrt_new_replication(NULL, "test-ok", false, NULL);
	struct vrt_accepted a = vrt_accept_as(VRT_ADMIN_A, "testFailover", rg, VRT_MT_TEST,
					      "<TestFailoverParams xmlns=\"" VRT_NS_VR
					      "\"><PowerOn>false"
					      "</PowerOn></TestFailoverParams>");
	start_ok(a.job);
	complete_ok(a.job, "success");
	assert_task(a.task, "success", "100");
	assert_job_row(a.job, "succeeded " VRT_SERVER_1, "succeeded job");
	vrt_assert_state(rg, "notStarted complete ok false", "after a test failover");
	assert_vapps(rg, "test:off", "after a test failover (PowerOn false)");
	struct vrt_resp g;
	get_replication(rg, &g);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:TestRecoveryState)", "complete");
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:LastTestFailoverOperationId)", a.task);
	vrt_resp_free(&g);
	vrt_accepted_free(&a);
	free(rg);
}

Test(complete, test_cleanup_success_removes_the_test_vapp)
{
	char *rg = vrt_new_replication(NULL, "cleanup-ok", false, NULL);
	struct vrt_accepted t = vrt_accept("testFailover", rg);
	run_job(t.job);
	assert_vapps(rg, "test:on", "after the test failover");
	struct vrt_accepted c = vrt_accept("testCleanup", rg);
	run_job(c.job);
	assert_task(c.task, "success", "100");
	vrt_assert_state(rg, "notStarted none ok false", "after the test cleanup");
	assert_vapps(rg, "", "after the test cleanup");
	vrt_assert_db("SELECT count(*)::text FROM vapps WHERE replication_id = $1::uuid"
		      " AND kind = 'test' AND deleted_at IS NOT NULL",
		      rg, "1", "the test vApp is marked deleted");
	/* the last test operation stays on record */
	vrt_assert_db("SELECT last_test_failover_op_id::text FROM replications WHERE id = $1::uuid",
		      rg, t.task, "LastTestFailoverOperationId");
	/* and a new test failover may follow */
	struct vrt_accepted again = vrt_accept("testFailover", rg);
	vrt_accepted_free(&again);
	vrt_accepted_free(&t);
	vrt_accepted_free(&c);
	free(rg);
}

Test(complete, failover_success_recovers_the_vm_and_drops_the_placeholder)
{
	char *rg = vrt_new_replication(NULL, "failover-ok", false, NULL);
	add_vapp(rg, "placeholder");
	assert_vapps(rg, "placeholder:off", "before the failover");
	struct vrt_accepted a = vrt_accept("failover", rg);
	start_ok(a.job);
	struct vrt_resp r;
	progress(a.job, VRT_SERVICE, VRT_SERVER_1, 50, &r);
	vrt_assert_no_content(&r, "progress");
	vrt_resp_free(&r);
	complete_ok(a.job, "success");
	assert_task(a.task, "success", "100");
	vrt_assert_state(rg, "recovered none notActive false", "after the failover");
	assert_vapps(rg, "recovered:on", "after the failover");
	struct vrt_resp g;
	get_replication(rg, &g);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:RecoveryState)", "recovered");
	char *t = vrt_xstr(&g, "string(/vr:ReplicationGroup/vr:RecoveryCompletionTime)");
	cr_assert(strlen(t) == 24 && t[23] == 'Z', "RecoveryCompletionTime '%s'", t);
	free(t);
	vrt_resp_free(&g);
	/* recovered: a second failover is refused */
	char *path = vrt_fmt("/api/vr/replications/%s/action/failover", rg);
	struct vrt_call call = {.method = "POST", .path = path, .token = vrt_token(VRT_ADMIN_A)};
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", "AlreadyRecovered");
	vrt_resp_free(&r);
	free(path);
	vrt_accepted_free(&a);
	free(rg);
}

Test(complete, planned_migration_success_recovers_the_vm_powered_off)
{
	char *vdc = vrt_new_vdc(true, true, true);
	char *rg = vrt_new_replication(vdc, "migration-ok", false, NULL);
	add_vapp(rg, "placeholder");
	struct vrt_accepted a = vrt_accept_as(VRT_ADMIN_A, "plannedMigration", rg, VRT_MT_FAILOVER,
					      "<FailoverParams xmlns=\"" VRT_NS_VR
					      "\"><PowerOn>0</PowerOn>"
					      "</FailoverParams>");
	run_job(a.job);
	assert_task(a.task, "success", "100");
	vrt_assert_state(rg, "recovered none notActive false", "after the planned migration");
	assert_vapps(rg, "recovered:off", "after the planned migration (PowerOn 0)");
	vrt_assert_db("SELECT (recovery_completion_time IS NOT NULL)::text FROM replications"
		      " WHERE id = $1::uuid",
		      rg, "true", "RecoveryCompletionTime");
	vrt_accepted_free(&a);
	free(rg);
	free(vdc);
}

Test(complete, pause_and_resume_success_set_paused)
{
	char *rg = vrt_new_replication(NULL, "pause-resume", false, NULL);
	struct vrt_accepted p = vrt_accept("pause", rg);
	run_job(p.job);
	assert_task(p.task, "success", "100");
	vrt_assert_state(rg, "notStarted none ok true", "after the pause");
	struct vrt_resp g;
	get_replication(rg, &g);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:Paused)", "true");
	vrt_resp_free(&g);
	/* pause twice: the second is refused once the first has ended */
	char *path = vrt_fmt("/api/vr/replications/%s/action/pause", rg);
	struct vrt_call call = {.method = "POST", .path = path, .token = vrt_token(VRT_ADMIN_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 202);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", "AlreadyPaused");
	vrt_resp_free(&r);
	free(path);
	struct vrt_accepted u = vrt_accept("resume", rg);
	run_job(u.job);
	assert_task(u.task, "success", "100");
	vrt_assert_state(rg, "notStarted none ok false", "after the resume");
	get_replication(rg, &g);
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:Paused)", "false");
	vrt_resp_free(&g);
	vrt_accepted_free(&p);
	vrt_accepted_free(&u);
	free(rg);
}

Test(complete, sync_success_changes_no_state)
{
	char *rg = vrt_new_replication(NULL, "sync-ok", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	run_job(a.job);
	assert_task(a.task, "success", "100");
	vrt_assert_state(rg, "notStarted none ok false", "after the sync");
	vrt_accepted_free(&a);
	free(rg);
}

Test(complete, delete_success_removes_the_replication)
{
	char *rg = vrt_new_replication(NULL, "delete-ok", false, NULL);
	struct vrt_accepted a = vrt_accept("delete", rg);
	run_job(a.job);
	assert_task(a.task, "success", "100");
	vrt_assert_state(rg, "(gone)", "after the delete");
	char *path = vrt_fmt("/api/vr/replications/%s", rg);
	struct vrt_resp r;
	vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "the deleted replication");
	vrt_resp_free(&r);
	vrt_get("/api/org/" VRT_ORG_A "/replications?pageSize=128", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_null(strstr(r.body, rg), "the deleted replication is still listed");
	vrt_resp_free(&r);
	free(path);
	vrt_accepted_free(&a);
	free(rg);
}

Test(complete, error_ends_the_task_with_the_codes_and_the_failure_state)
{
	static const struct {
		const char *action, *set, *after;
	} cases[] = {
		{"testFailover", NULL, "notStarted testError ok false"},
		{"testCleanup", "test_recovery_state = 'complete'",
		 "notStarted cleanupError ok false"},
		{"failover", NULL, "error none ok false"},
		{"pause", NULL, "notStarted none ok false"},
		{"delete", NULL, "notStarted none ok false"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char *rg = vrt_new_replication(NULL, cases[i].action, false, cases[i].set);
		struct vrt_accepted a = vrt_accept(cases[i].action, rg);
		start_ok(a.job);
		char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", "409", "CONFLICT",
					       "DatastoreFull",
					       "The datastore &amp; its spare are full.");
		struct vrt_resp r;
		vrt_job_call("complete", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
		char *what = vrt_fmt("failed %s", cases[i].action);
		vrt_assert_no_content(&r, what);
		vrt_resp_free(&r);
		assert_task_error(a.task, "409", "CONFLICT", "DatastoreFull",
				  "The datastore & its spare are full.");
		assert_job_row(a.job, "failed " VRT_SERVER_1, what);
		vrt_assert_state(rg, cases[i].after, what);
		assert_vapps(rg, "", what);
		free(what);
		free(doc);
		vrt_accepted_free(&a);
		free(rg);
	}
}

Test(complete, error_without_codes_is_a_500_with_a_message)
{
	char *rg = vrt_new_replication(NULL, "error-bare", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	complete_ok(a.job, "error");
	assert_task_error(a.task, "500", "INTERNAL_SERVER_ERROR", NULL, NULL);
	struct vrt_resp r;
	vrt_get_task(a.task, &r);
	char *message = vrt_xstr(&r, "string(/v:Task/v:Error/@message)");
	cr_assert(message[0], "the Error has no message");
	free(message);
	vrt_resp_free(&r);
	vrt_assert_state(rg, "notStarted testError ok false", "after a failed test failover");
	/* after a failed delete the replication takes actions again */
	struct vrt_accepted d = vrt_accept("delete", rg);
	start_ok(d.job);
	complete_ok(d.job, "error");
	vrt_assert_state(rg, "notStarted testError ok false", "after a failed delete");
	struct vrt_accepted c = vrt_accept("testCleanup", rg);
	vrt_accepted_free(&c);
	vrt_accepted_free(&d);
	vrt_accepted_free(&a);
	free(rg);
}

Test(complete, twice_is_204_and_the_first_result_stands)
{
	char *rg = vrt_new_replication(NULL, "twice", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	complete_ok(a.job, "success");
	char *before = job_snapshot(a.job);
	char *state = vrt_replication_state(rg);
	char *vapps = vrt_vapps_of(rg);
	/* the same result again (a redelivered job), then another one */
	complete_ok(a.job, "success");
	char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", "500", "INTERNAL_SERVER_ERROR",
				       "Late", "too late");
	struct vrt_resp r;
	vrt_job_call("complete", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_no_content(&r, "a second, different result");
	vrt_resp_free(&r);
	complete_ok(a.job, "canceled");
	assert_snapshot(a.job, before, "after completing again");
	vrt_assert_state(rg, state, "after completing again");
	assert_vapps(rg, vapps, "after completing again: one test vApp");
	assert_task(a.task, "success", "100");
	free(doc);
	free(vapps);
	free(state);
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

/* --- dead letters ---------------------------------------------------------------- */

Test(dead, ends_the_task_in_error_job_delivery_exhausted)
{
	char *rg = vrt_new_replication(NULL, "dead", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", NULL, NULL, NULL,
				       "delivered 6 times, more than max_deliveries (5)");
	struct vrt_resp r;
	vrt_job_call("dead", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_no_content(&r, "dead");
	vrt_resp_free(&r);
	assert_task_error(a.task, "500", "INTERNAL_SERVER_ERROR", "JobDeliveryExhausted",
			  "delivered 6 times, more than max_deliveries (5)");
	assert_job_row(a.job, "dead " VRT_SERVER_1, "dead job");
	vrt_assert_state(rg, "notStarted testError ok false", "after a dead test failover");
	/* dead twice, or complete after it: the first end stands */
	vrt_job_call("dead", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_no_content(&r, "dead again");
	vrt_resp_free(&r);
	complete_ok(a.job, "success");
	assert_task_error(a.task, "500", "INTERNAL_SERVER_ERROR", "JobDeliveryExhausted", NULL);
	assert_vapps(rg, "", "after a dead test failover");
	free(doc);
	vrt_accepted_free(&a);
	free(rg);
}

Test(dead, of_a_job_never_started_ends_it_too)
{
	char *rg = vrt_new_replication(NULL, "dead-queued", false, NULL);
	struct vrt_accepted a = vrt_accept("failover", rg);
	char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", NULL, NULL, NULL, NULL);
	struct vrt_resp r;
	vrt_job_call("dead", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_no_content(&r, "dead of a queued job");
	vrt_resp_free(&r);
	assert_task_error(a.task, "500", "INTERNAL_SERVER_ERROR", "JobDeliveryExhausted", NULL);
	assert_job_row(a.job, "dead -", "dead queued job");
	vrt_assert_state(rg, "error none ok false", "after a dead failover");
	free(doc);
	vrt_accepted_free(&a);
	free(rg);
}

/* --- lanes ------------------------------------------------------------------------- */

Test(lanes, the_second_job_waits_for_the_first_then_is_published)
{
	char *rg = vrt_new_replication(NULL, "lane", false, NULL);
	struct vrt_accepted first = vrt_accept("sync", rg);
	struct vrt_accepted second = vrt_accept("pause", rg);
	cr_assert(vrt_stream_has(PREFIX, first.job), "the lane's head is not in the stream");
	cr_assert(!vrt_stream_has(PREFIX, second.job), "the second job is published already");
	char *before = job_snapshot(second.job);
	char *doc = vrt_job_start_doc(VRT_SERVER_1, 1);
	struct vrt_resp r;
	vrt_job_call("start", second.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_HEAD", "start of the second job");
	vrt_resp_free(&r);
	assert_snapshot(second.job, before, "after JOB_NOT_HEAD");
	/* still so while the first runs */
	start_ok(first.job);
	vrt_job_call("start", second.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_HEAD", "start of the second job while the first runs");
	vrt_resp_free(&r);
	/* the relay does not publish it either */
	vrt_sleep(2.5);
	cr_assert(!vrt_stream_has(PREFIX, second.job), "the relay published a job not at the head");
	complete_ok(first.job, "success");
	/* the end of the first publishes the second, after the first */
	cr_assert(vrt_stream_has(PREFIX, second.job), "the second job was not published");
	char *jobs = vrt_stream_jobs(PREFIX);
	char *a = strstr(jobs, first.job), *b = strstr(jobs, second.job);
	cr_assert(a && b && a < b, "the stream has the lane's jobs out of order:\n%s", jobs);
	free(jobs);
	vrt_assert_db("SELECT (published_at IS NOT NULL)::text FROM jobs WHERE id = $1::uuid",
		      second.job, "true", "published_at of the second job");
	run_job(second.job);
	assert_task(second.task, "success", "100");
	vrt_assert_state(rg, "notStarted none ok true", "after sync, then pause");
	free(doc);
	free(before);
	vrt_accepted_free(&first);
	vrt_accepted_free(&second);
	free(rg);
}

/* --- the relay (docs/pipeline.md section 4) ------------------------------------------ */

Test(relay, a_job_lost_from_redis_is_published_again)
{
	char *rg = vrt_new_replication(NULL, "relay", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	cr_assert(vrt_stream_has(PREFIX, a.job), "not published on acceptance");
	vrt_redis_del(PREFIX ":jobs");
	cr_assert(!vrt_stream_has(PREFIX, a.job), "the stream is still there");
	cr_assert(stream_gets(a.job, 6), "the relay did not publish the lost job within 6 s");
	assert_job_row(a.job, "queued -", "the job after the relay");
	run_job(a.job);
	vrt_accepted_free(&a);
	free(rg);
}

Test(relay, a_running_job_without_progress_is_published_again_and_taken_over)
{
	char *rg = vrt_new_replication(NULL, "stale", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	vrt_redis_del(PREFIX ":jobs");
	/* alive: another server may not take it, and it is not republished */
	vrt_sleep(2);
	cr_assert(!vrt_stream_has(PREFIX, a.job), "a running job with a fresh heartbeat was "
						  "published again");
	/* silent for stale_after: published again, and another server takes it */
	cr_assert(stream_gets(a.job, STALE_AFTER + 4),
		  "a running job silent for %d s was not published again", STALE_AFTER);
	struct vrt_resp r;
	start_ok_as(VRT_SERVICE_OTHER, VRT_SERVER_2, a.job, 2, &r);
	vrt_resp_free(&r);
	assert_job_row(a.job, "running " VRT_SERVER_2, "taken over");
	/* the first server no longer holds it */
	progress(a.job, VRT_SERVICE, VRT_SERVER_1, 50, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_RUNNING", "progress of the server that lost the job");
	vrt_resp_free(&r);
	char *doc = vrt_job_result_doc(VRT_SERVER_2, "success", NULL, NULL, NULL, NULL);
	vrt_job_call("complete", a.job, vrt_service_token(VRT_SERVICE_OTHER), doc, &r);
	vrt_assert_no_content(&r, "complete by the server that took it over");
	vrt_resp_free(&r);
	vrt_assert_state(rg, "notStarted complete ok false", "after the taken-over test failover");
	assert_vapps(rg, "test:on", "one test vApp");
	free(doc);
	vrt_accepted_free(&a);
	free(rg);
}

/* --- refusals ----------------------------------------------------------------------- */

Test(refusals, unknown_jobs_are_404_on_every_route)
{
	char *docs[] = {
		vrt_job_start_doc(VRT_SERVER_1, 1),
		progress_doc(VRT_SERVER_1, 10),
		vrt_job_result_doc(VRT_SERVER_1, "success", NULL, NULL, NULL, NULL),
		vrt_job_result_doc(VRT_SERVER_1, "error", NULL, NULL, NULL, NULL),
	};
	for (size_t i = 0; i < N(routes); i++) {
		struct vrt_resp r;
		vrt_job_call(routes[i], VRT_MISSING, vrt_service_token(VRT_SERVICE), docs[i], &r);
		char *what = vrt_fmt("%s of a missing job", routes[i]);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", what);
		free(what);
		vrt_resp_free(&r);
		vrt_job_call(routes[i], "not-a-job", vrt_service_token(VRT_SERVICE), docs[i], &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", routes[i]);
		vrt_resp_free(&r);
		free(docs[i]);
	}
}

Test(refusals, tenant_and_sysadmin_credentials_are_403_on_every_route)
{
	char *rg = vrt_new_replication(NULL, "tenant-refused", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	char *before = job_snapshot(a.job);
	char *docs[] = {
		vrt_job_start_doc(VRT_SERVER_1, 1),
		progress_doc(VRT_SERVER_1, 10),
		vrt_job_result_doc(VRT_SERVER_1, "success", NULL, NULL, NULL, NULL),
		vrt_job_result_doc(VRT_SERVER_1, "error", NULL, NULL, NULL, NULL),
	};
	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A, VRT_ROOT};
	for (size_t i = 0; i < N(routes); i++) {
		char *path = vrt_fmt("/api/internal/jobs/%s/%s", a.job, routes[i]);
		for (size_t u = 0; u < N(users); u++) {
			const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
			struct vrt_call call = {.method = "POST",
						.path = path,
						.token = vrt_token(users[u]),
						.headers = headers,
						.body = docs[i],
						.body_len = -1};
			struct vrt_resp r;
			cr_assert_eq(vrt_call(&call, &r), 0);
			char *what = vrt_fmt("%s as %s", path, users[u]);
			vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", what);
			free(what);
			vrt_resp_free(&r);
		}
		/* no credentials, a revoked service */
		struct vrt_resp r;
		vrt_job_call(routes[i], a.job, NULL, docs[i], &r);
		vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "no credentials");
		vrt_resp_free(&r);
		vrt_job_call(routes[i], a.job, vrt_service_token(VRT_SERVICE_REVOKED), docs[i], &r);
		vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "a revoked service token");
		vrt_resp_free(&r);
		free(path);
		free(docs[i]);
	}
	assert_snapshot(a.job, before, "after tenant calls on the job routes");
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

/* route with this Content-Type line and body: an Error of status, and the
 * job and its Task as they were. */
static void assert_document_refused(const char *route, const char *job, const char *type_line,
				    const char *body, long status, const char *minor,
				    const char *what)
{
	char *before = job_snapshot(job);
	char *path = vrt_fmt("/api/internal/jobs/%s/%s", job, route);
	const char *headers[] = {type_line, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = vrt_service_token(VRT_SERVICE),
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	char *full = vrt_fmt("%s: %s", route, what);
	vrt_assert_error(&r, status, minor, full);
	cr_assert_null(strstr(r.body, "root:x:0:0"), "%s shows /etc/passwd", full);
	vrt_resp_free(&r);
	assert_snapshot(job, before, full);
	free(full);
	free(path);
	free(before);
}

Test(refusals, bad_documents_are_400_415_or_413_and_change_nothing)
{
	char *rg = vrt_new_replication(NULL, "bad-documents", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	start_ok(a.job);
	static const char ct[] = "Content-Type: " VRT_MT_INTERNAL;
	char *padding = vrt_filler(VRT_BODY_CAP, ' ');
	char *big = vrt_fmt("<JobProgress xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			    "</ServerId><Progress>1</Progress></JobProgress>%s",
			    padding);
	for (size_t i = 0; i < N(routes); i++) {
		const char *route = routes[i];
		static const char *const types[] = {"Content-Type: text/plain",
						    "Content-Type: application/json",
						    "Content-Type: " VRT_MT_TEST, "Content-Type:"};
		char *good = strcmp(route, "start") == 0 ? vrt_job_start_doc(VRT_SERVER_1, 1)
			     : strcmp(route, "progress") == 0
				     ? progress_doc(VRT_SERVER_1, 10)
				     : vrt_job_result_doc(VRT_SERVER_1, "success", NULL, NULL, NULL,
							  NULL);
		for (size_t t = 0; t < N(types); t++)
			assert_document_refused(route, a.job, types[t], good, 415,
						"UNSUPPORTED_MEDIA_TYPE", types[t]);
		const char *bodies[] = {
			"",
			"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>",
			"<!DOCTYPE JobResult [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
			"<JobResult xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId><Outcome>error</Outcome><Message>&xxe;</Message></JobResult>",
			"<ReplicaServer xmlns=\"" VRT_NS_INTERNAL "\"><TrafficAddress>x"
			"</TrafficAddress></ReplicaServer>",
			"<JobStart><ServerId>" VRT_SERVER_1 "</ServerId><Deliveries>1</Deliveries>"
			"</JobStart>",
			"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>not-a-uuid</ServerId>"
			"<Deliveries>1</Deliveries></JobStart>",
			"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId><Deliveries>-1</Deliveries></JobStart>",
			"<JobProgress xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId><Progress>101</Progress></JobProgress>",
			"<JobProgress xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId></JobProgress>",
			"<JobResult xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId><Outcome>maybe</Outcome></JobResult>",
			"<JobResult xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
			"</ServerId><Outcome>error</Outcome><MajorErrorCode>big</MajorErrorCode>"
			"</JobResult>",
			"<JobResult xmlns=\"" VRT_NS_INTERNAL "\"><Outcome>success</Outcome>"
			"</JobResult>",
		};
		for (size_t b = 0; b < N(bodies); b++) {
			char *what = vrt_fmt("body %zu", b);
			assert_document_refused(route, a.job, ct, bodies[b], 400, "BAD_REQUEST",
						what);
			free(what);
		}
		assert_document_refused(route, a.job, ct, big, 413, "REQUEST_ENTITY_TOO_LARGE",
					"64 KiB body");
		free(good);
	}
	assert_task(a.task, "running", NULL);
	vrt_assert_state(rg, "notStarted testInProgress ok false", "after bad documents");
	free(big);
	free(padding);
	vrt_accepted_free(&a);
	free(rg);
}
