/* Canceling Tasks (POST /api/task/{id}/action/cancel, docs/pipeline.md
 * section 5): a queued job ends at once and the replication's state is put
 * back as it was before the action was accepted, and the lane's next job
 * is published; a running job's Task shows cancelRequested, the worker
 * learns it from its next progress report and completes the job canceled,
 * which puts the state back too; a success that comes first stands;
 * finished Tasks, other users' and other orgs' Tasks are refused; the
 * Task carries its task:cancel Link exactly while it may be canceled.
 *
 * A test acts as the tenant and, through the internal API, as the worker
 * of the service credential VRT_SERVICE (its replica server VRT_SERVER_1),
 * as test_api_jobs does. Each test makes its own replications. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"

#define PREFIX "vrt-cancel"

VRT_SUITE(.name = "cancel", .jobs = 3, .redis_db = 10, .config = "[jobs]\nprefix = " PREFIX "\n");

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- helpers ------------------------------------------------------------- */

static void assert_job_state(const char *job, const char *expected, const char *what)
{
	vrt_assert_db("SELECT state FROM jobs WHERE id = $1::uuid", job, expected, what);
}

/* POST /api/task/{task}/action/cancel as user (NULL: no credentials). */
static void cancel_as(const char *user, const char *task, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/task/%s/action/cancel", task);
	struct vrt_call call = {
		.method = "POST", .path = path, .token = user ? vrt_token(user) : NULL};
	cr_assert_eq(vrt_call(&call, r), 0, "POST %s: no response", path);
	free(path);
}

static void cancel_ok(const char *user, const char *task)
{
	struct vrt_resp r;
	cancel_as(user, task, &r);
	char *what = vrt_fmt("cancel of %s by %s", task, user);
	vrt_assert_no_content(&r, what);
	free(what);
	vrt_resp_free(&r);
}

/* Task status, Progress, cancelRequested, and whether it has its cancel
 * Link (and then exactly the vCD one). */
static void assert_task(const char *task, const char *status, const char *progress_value,
			const char *cancel_requested, bool cancel_link)
{
	struct vrt_resp r;
	vrt_get_task(task, &r);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", status);
	vrt_assert_xstr(&r, "string(/v:Task/v:Progress)", progress_value);
	vrt_assert_xstr(&r, "string(/v:Task/@cancelRequested)", cancel_requested);
	bool final = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/@endTime"), final ? 1 : 0, "%s", r.body);
	if (strcmp(status, "error") != 0)
		cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Error"), 0, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Link"), cancel_link ? 1 : 0,
		     "Task %s (%s): task:cancel Link expected %s\n%s", task, status,
		     cancel_link ? "present" : "absent", r.body);
	if (cancel_link) {
		char *href = vrt_fmt("%s/api/task/%s/action/cancel", vrt_public_url(), task);
		vrt_assert_xstr(&r, "string(/v:Task/v:Link/@rel)", "task:cancel");
		vrt_assert_xstr(&r, "string(/v:Task/v:Link/@href)", href);
		cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Link/@type"), 0, "%s", r.body);
		/* the first child, before Owner, as the schema orders them */
		vrt_assert_xstr(&r, "local-name(/v:Task/*[1])", "Link");
		free(href);
	}
	vrt_resp_free(&r);
}

/* The Task and job row, to see that a refusal changed neither. */
static char *task_snapshot(const char *task)
{
	return vrt_db_must("SELECT t::text || coalesce((SELECT j::text FROM jobs j"
			   " WHERE j.task_id = t.id), '') FROM tasks t WHERE t.id = $1::uuid",
			   task);
}

static void assert_task_unchanged(const char *task, const char *before, const char *what)
{
	char *now = task_snapshot(task);
	cr_assert_str_eq(now, before, "%s: the Task or its job changed", what);
	free(now);
}

/* --- a queued job: canceled at once ---------------------------------------------- */

/* Accept action on a new replication (SET list `set`), check that the
 * acceptance changed its state to `begun` (NULL: left it alone), cancel
 * the queued job and check that everything is as before. Returns the
 * replication (the caller frees). */
static char *cancel_queued_in(const char *vdc, const char *action, const char *set,
			      const char *begun)
{
	char *rg = vrt_new_replication(vdc, action, false, set);
	char *before = vrt_replication_state(rg);
	char *row_before =
		vrt_db_must("SELECT (recovery_state, test_recovery_state, replication_state,"
			    " paused, paused_at, paused_minutes, recovery_completion_time)::text"
			    " FROM replications WHERE id = $1::uuid",
			    rg);
	char *vapps = vrt_vapps_of(rg);
	struct vrt_accepted a = vrt_accept(action, rg);
	vrt_assert_state(rg, begun ? begun : before, "after the acceptance");
	assert_task(a.task, "queued", "0", "false", true);

	cancel_ok(VRT_ADMIN_A, a.task);
	assert_task(a.task, "canceled", "100", "true", false);
	assert_job_state(a.job, "canceled", "the canceled job");
	vrt_assert_db("SELECT (finished_at IS NOT NULL AND worker_id IS NULL)::text FROM jobs"
		      " WHERE id = $1::uuid",
		      a.job, "true", "the canceled job never ran");
	vrt_assert_state(rg, before, "after the cancellation");
	vrt_assert_db("SELECT (recovery_state, test_recovery_state, replication_state, paused,"
		      " paused_at, paused_minutes, recovery_completion_time)::text"
		      " FROM replications WHERE id = $1::uuid",
		      rg, row_before, "the replication row after the cancellation");
	char *after = vrt_vapps_of(rg);
	cr_assert_str_eq(after, vapps, "vApps changed: '%s' -> '%s'", vapps, after);
	free(after);

	/* a worker that took the delivery is told the job has ended */
	char *doc = vrt_job_start_doc(VRT_SERVER_1, 1);
	struct vrt_resp r;
	vrt_job_call("start", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	vrt_assert_error(&r, 409, "JOB_FINISHED", "start of a canceled job");
	vrt_resp_free(&r);
	free(doc);
	vrt_assert_state(rg, before, "after the refused start");
	vrt_accepted_free(&a);
	free(vapps);
	free(row_before);
	free(before);
	return rg;
}

static char *cancel_queued_and_check(const char *action, const char *set, const char *begun)
{
	return cancel_queued_in(NULL, action, set, begun);
}

Test(queued, failover_is_canceled_at_once_and_recovery_state_restored)
{
	free(cancel_queued_and_check("failover", NULL, "inProgress none ok false"));
}

Test(queued, failover_after_a_failed_one_restores_recovery_state_error)
{
	free(cancel_queued_and_check("failover", "recovery_state = 'error'",
				     "inProgress none ok false"));
}

Test(queued, planned_migration_is_canceled_and_recovery_state_restored)
{
	/* VDC A1 does not allow planned migrations */
	char *vdc = vrt_new_vdc(true, true, true);
	free(cancel_queued_in(vdc, "plannedMigration", NULL, "inProgress none ok false"));
	free(vdc);
}

Test(queued, test_failover_is_canceled_and_test_recovery_state_restored)
{
	free(cancel_queued_and_check("testFailover", NULL, "notStarted testInProgress ok false"));
}

Test(queued, test_cleanup_is_canceled_and_test_recovery_state_restored)
{
	free(cancel_queued_and_check("testCleanup", "test_recovery_state = 'testError'",
				     "notStarted cleanupInProgress ok false"));
}

Test(queued, pause_is_canceled_and_the_replication_stays_unpaused)
{
	free(cancel_queued_and_check("pause", NULL, NULL));
}

Test(queued, resume_is_canceled_and_the_replication_stays_paused)
{
	free(cancel_queued_and_check(
		"resume", "paused = true, paused_at = now() - interval '30 minutes'", NULL));
}

Test(queued, delete_is_canceled_and_the_replication_takes_actions_again)
{
	char *rg = cancel_queued_and_check("delete", NULL, NULL);
	/* the canceled delete no longer makes it "being deleted" */
	struct vrt_accepted a = vrt_accept("sync", rg);
	assert_task(a.task, "queued", "0", "false", true);
	vrt_accepted_free(&a);
	free(rg);
}

Test(queued, configure_of_a_failed_replication_restores_replication_state_error)
{
	/* configure is accepted only through its own route; its begin is
	 * recorded like any other: exercise the restore on a job made here */
	char *rg = vrt_new_replication(NULL, "resync", true, "replication_state = 'error'");
	struct vrt_accepted a = vrt_accept("sync", rg);
	vrt_db_exec("UPDATE jobs SET action = 'configure' WHERE id = $1::uuid", a.job);
	vrt_db_exec("UPDATE replications SET replication_state = 'initialSync' WHERE id = $1::uuid",
		    rg);
	cancel_ok(VRT_ADMIN_A, a.task);
	vrt_assert_state(rg, "notStarted none error false", "after the canceled configure");
	vrt_accepted_free(&a);
	free(rg);
}

Test(queued, the_next_job_of_the_lane_is_published)
{
	char *rg = vrt_new_replication(NULL, "lane", false, NULL);
	struct vrt_accepted first = vrt_accept("sync", rg);
	struct vrt_accepted second = vrt_accept("pause", rg);
	cr_assert(vrt_stream_has(PREFIX, first.job), "the lane's head is not in the stream");
	cr_assert(!vrt_stream_has(PREFIX, second.job), "the second job is published already");
	cancel_ok(VRT_ADMIN_A, first.task);
	cr_assert(vrt_stream_has(PREFIX, second.job),
		  "the next job of the lane was not published after the head was canceled");
	/* and it runs */
	vrt_job_start(second.job);
	vrt_job_complete(second.job, "success");
	assert_task(second.task, "success", "100", "false", false);
	vrt_assert_state(rg, "notStarted none ok true", "after the pause that followed");
	vrt_accepted_free(&first);
	vrt_accepted_free(&second);
	free(rg);
}

Test(queued, a_job_waiting_behind_another_puts_back_only_its_own_change)
{
	char *rg = vrt_new_replication(NULL, "behind", false, NULL);
	struct vrt_accepted test = vrt_accept("testFailover", rg);
	struct vrt_accepted sync = vrt_accept("sync", rg);
	struct vrt_accepted pause = vrt_accept("pause", rg);
	/* the test failover runs to its end: test recovery complete */
	vrt_job_start(test.job);
	vrt_job_complete(test.job, "success");
	vrt_assert_state(rg, "notStarted complete ok false", "after the test failover");
	/* the sync behind it was accepted during testInProgress; canceling it
	 * must not bring that back */
	cancel_ok(VRT_ADMIN_A, sync.task);
	vrt_assert_state(rg, "notStarted complete ok false", "after canceling the sync");
	cr_assert(vrt_stream_has(PREFIX, pause.job), "the pause was not published");
	cancel_ok(VRT_ADMIN_A, pause.task);
	vrt_assert_state(rg, "notStarted complete ok false", "after canceling the pause");
	/* a queued test failover of a lane whose head is canceled */
	char *rg2 = vrt_new_replication(NULL, "behind-2", false, NULL);
	struct vrt_accepted head = vrt_accept("sync", rg2);
	struct vrt_accepted second = vrt_accept("testFailover", rg2);
	cancel_ok(VRT_ADMIN_A, second.task);
	vrt_assert_state(rg2, "notStarted none ok false",
			 "after canceling the queued test failover");
	assert_task(head.task, "queued", "0", "false", true);
	vrt_accepted_free(&head);
	vrt_accepted_free(&second);
	vrt_accepted_free(&test);
	vrt_accepted_free(&sync);
	vrt_accepted_free(&pause);
	free(rg2);
	free(rg);
}

/* --- a running job: the worker stops it ------------------------------------------ */

/* Accept action (its acceptance moves the state to `begun`) and, when the
 * state machine lets a sync queue behind it, a sync; start the job, cancel
 * it, let the worker notice and complete it canceled. */
static void cancel_running_and_check(const char *action, const char *begun, bool queue_next)
{
	char *rg = vrt_new_replication(NULL, action, false, NULL);
	char *before = vrt_replication_state(rg);
	char *vapps = vrt_vapps_of(rg);
	struct vrt_accepted a = vrt_accept(action, rg);
	struct vrt_accepted next = {NULL, NULL};
	if (queue_next)
		next = vrt_accept("sync", rg);
	vrt_job_start(a.job);
	struct vrt_resp r;
	vrt_job_progress(a.job, 30, &r);
	cr_assert_eq(r.status, 204, "progress before the cancel: %ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	assert_task(a.task, "running", "30", "false", true);

	cancel_ok(VRT_ADMIN_A, a.task);
	/* still running until the worker notices; the Task says it was asked */
	assert_task(a.task, "running", "30", "true", true);
	assert_job_state(a.job, "running", "the job after the cancel request");
	vrt_assert_state(rg, begun, "while the cancel is pending");
	if (queue_next)
		cr_assert(!vrt_stream_has(PREFIX, next.job),
			  "the next job was published too early");
	/* asking again changes nothing */
	char *snapshot = task_snapshot(a.task);
	cancel_ok(VRT_ADMIN_A, a.task);
	assert_task_unchanged(a.task, snapshot, "a second cancel request");
	free(snapshot);

	/* the worker's next progress report tells it */
	vrt_job_progress(a.job, 60, &r);
	vrt_assert_error(&r, 409, "JOB_CANCEL_REQUESTED", "progress after the cancel request");
	vrt_resp_free(&r);
	vrt_job_complete(a.job, "canceled");
	assert_task(a.task, "canceled", "100", "true", false);
	assert_job_state(a.job, "canceled", "the job the worker canceled");
	vrt_assert_state(rg, before, "after the worker canceled the job");
	char *after = vrt_vapps_of(rg);
	cr_assert_str_eq(after, vapps, "vApps changed: '%s' -> '%s'", vapps, after);
	free(after);
	if (queue_next)
		cr_assert(vrt_stream_has(PREFIX, next.job),
			  "the next job of the lane was not published");
	vrt_accepted_free(&a);
	vrt_accepted_free(&next);
	free(vapps);
	free(before);
	free(rg);
}

Test(running, test_failover_canceled_by_the_worker_restores_the_state)
{
	cancel_running_and_check("testFailover", "notStarted testInProgress ok false", true);
}

Test(running, failover_canceled_by_the_worker_restores_the_state)
{
	cancel_running_and_check("failover", "inProgress none ok false", false);
}

Test(running, delete_canceled_by_the_worker_keeps_the_replication)
{
	cancel_running_and_check("delete", "notStarted none ok false", false);
}

Test(running, pause_canceled_by_the_worker_leaves_it_unpaused)
{
	cancel_running_and_check("pause", "notStarted none ok false", true);
}

Test(running, success_before_the_worker_notices_stands)
{
	char *rg = vrt_new_replication(NULL, "late", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	vrt_job_start(a.job);
	cancel_ok(VRT_ADMIN_A, a.task);
	assert_task(a.task, "running", "1", "true", true);
	vrt_job_complete(a.job, "success");
	assert_task(a.task, "success", "100", "true", false);
	assert_job_state(a.job, "succeeded", "the job that succeeded");
	vrt_assert_state(rg, "notStarted complete ok false", "after the success");
	char *vapps = vrt_vapps_of(rg);
	cr_assert_str_eq(vapps, "test:on", "the test vApp of the success: '%s'", vapps);
	free(vapps);
	/* the Task has ended: too late now */
	struct vrt_resp r;
	cancel_as(VRT_ADMIN_A, a.task, &r);
	vrt_assert_error(&r, 409, "CONFLICT", "cancel after the success");
	vrt_resp_free(&r);
	vrt_accepted_free(&a);
	free(rg);
}

Test(running, an_error_after_a_cancel_request_stays_an_error)
{
	char *rg = vrt_new_replication(NULL, "late-error", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	vrt_job_start(a.job);
	cancel_ok(VRT_ADMIN_A, a.task);
	char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", "500", NULL, NULL, "disk gone");
	struct vrt_resp r;
	vrt_job_call("complete", a.job, vrt_service_token(VRT_SERVICE), doc, &r);
	cr_assert_eq(r.status, 204, "%ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	free(doc);
	assert_task(a.task, "error", "100", "true", false);
	vrt_assert_state(rg, "notStarted testError ok false", "after the failed test failover");
	vrt_accepted_free(&a);
	free(rg);
}

/* --- refusals ------------------------------------------------------------------------- */

Test(refusals, a_finished_task_is_409_and_nothing_changes)
{
	char *rg = vrt_new_replication(NULL, "finished", false, NULL);
	/* ended in success */
	struct vrt_accepted ok = vrt_accept("sync", rg);
	vrt_job_start(ok.job);
	vrt_job_complete(ok.job, "success");
	/* ended canceled */
	struct vrt_accepted gone = vrt_accept("sync", rg);
	cancel_ok(VRT_ADMIN_A, gone.task);
	/* refused by a precondition: an error Task without a job */
	char *path = vrt_fmt("/api/vr/replications/%s/action/resume", rg);
	struct vrt_call call = {.method = "POST", .path = path, .token = vrt_token(VRT_ADMIN_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 202);
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "error");
	char *href = vrt_xstr(&r, "string(/v:Task/@href)");
	char *refused = strdup(strrchr(href, '/') + 1);
	free(href);
	vrt_resp_free(&r);
	const char *tasks[] = {ok.task, gone.task, refused, VRT_TASK_A_ERROR};
	for (size_t i = 0; i < N(tasks); i++) {
		char *before = task_snapshot(tasks[i]);
		char *state = vrt_replication_state(rg);
		cancel_as(VRT_ADMIN_A, tasks[i], &r);
		char *what = vrt_fmt("cancel of the finished Task %s", tasks[i]);
		vrt_assert_error(&r, 409, "CONFLICT", what);
		char *message = vrt_xstr(&r, "string(/v:Error/@message)");
		cr_assert(strstr(message, "already finished"), "%s: message '%s'", what, message);
		free(message);
		assert_task_unchanged(tasks[i], before, what);
		vrt_assert_state(rg, state, what);
		vrt_resp_free(&r);
		free(what);
		free(state);
		free(before);
	}
	free(refused);
	free(path);
	vrt_accepted_free(&ok);
	vrt_accepted_free(&gone);
	free(rg);
}

Test(refusals, another_user_of_the_org_is_403_and_nothing_changes)
{
	char *rg = vrt_new_replication(NULL, "others", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	char *before = task_snapshot(a.task);
	struct vrt_resp r;
	cancel_as(VRT_USER_A, a.task, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "user-a on admin-a's Task");
	vrt_resp_free(&r);
	assert_task_unchanged(a.task, before, "after the 403");
	vrt_assert_state(rg, "notStarted testInProgress ok false", "after the 403");
	/* running: not even the request is recorded */
	vrt_job_start(a.job);
	free(before);
	before = task_snapshot(a.task);
	cancel_as(VRT_USER_A, a.task, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "user-a on a running Task");
	vrt_resp_free(&r);
	assert_task_unchanged(a.task, before, "after the 403 on the running Task");
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

Test(refusals, another_org_is_404_like_a_missing_task)
{
	char *rg = vrt_new_replication(NULL, "foreign", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	char *before = task_snapshot(a.task);
	struct vrt_resp r, missing;
	cancel_as(VRT_ADMIN_B, a.task, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "admin-b on org A's Task");
	cr_assert_null(strstr(r.body, VRT_ORG_A_NAME), "the 404 leaks org A");
	cancel_as(VRT_ADMIN_B, VRT_MISSING, &missing);
	vrt_assert_error(&missing, 404, "RESOURCE_NOT_FOUND", "a missing Task");
	vrt_resp_free(&r);
	vrt_resp_free(&missing);
	assert_task_unchanged(a.task, before, "after the foreign cancel");
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

Test(refusals, credentials_are_needed_and_service_credentials_are_403)
{
	char *rg = vrt_new_replication(NULL, "anonymous", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	char *before = task_snapshot(a.task);
	struct vrt_resp r;
	cancel_as(NULL, a.task, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "cancel without credentials");
	vrt_resp_free(&r);
	char *path = vrt_fmt("/api/task/%s/action/cancel", a.task);
	struct vrt_call call = {
		.method = "POST", .path = path, .bearer = vrt_service_token(VRT_SERVICE)};
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "cancel as a worker");
	vrt_resp_free(&r);
	assert_task_unchanged(a.task, before, "after the refusals");
	free(path);
	free(before);
	vrt_accepted_free(&a);
	free(rg);
}

/* --- who may cancel ---------------------------------------------------------------- */

Test(permissions, the_tasks_user_its_org_admin_and_sysadmin_may_cancel)
{
	char *rg = vrt_new_replication(NULL, "allowed", false, NULL);
	/* user-a's own Task */
	struct vrt_accepted own = vrt_accept_as(VRT_USER_A, "sync", rg, NULL, NULL);
	cancel_ok(VRT_USER_A, own.task);
	assert_task(own.task, "canceled", "100", "true", false);
	/* user-a's Task, by the org's administrator */
	struct vrt_accepted by_admin = vrt_accept_as(VRT_USER_A, "sync", rg, NULL, NULL);
	cancel_ok(VRT_ADMIN_A, by_admin.task);
	assert_task(by_admin.task, "canceled", "100", "true", false);
	/* admin-a's Task, by the System administrator */
	struct vrt_accepted by_root = vrt_accept_as(VRT_ADMIN_A, "testFailover", rg, NULL, NULL);
	cancel_ok(VRT_ROOT, by_root.task);
	assert_task(by_root.task, "canceled", "100", "true", false);
	vrt_assert_state(rg, "notStarted none ok false", "after the canceled test failover");
	vrt_accepted_free(&own);
	vrt_accepted_free(&by_admin);
	vrt_accepted_free(&by_root);
	free(rg);
}

/* --- the Task document ----------------------------------------------------------- */

Test(document, the_cancel_link_is_there_exactly_while_the_task_may_be_canceled)
{
	char *rg = vrt_new_replication(NULL, "link", false, NULL);
	struct vrt_accepted a = vrt_accept("testFailover", rg);
	assert_task(a.task, "queued", "0", "false", true);
	vrt_job_start(a.job);
	assert_task(a.task, "running", "1", "false", true);
	vrt_job_complete(a.job, "success");
	assert_task(a.task, "success", "100", "false", false);
	/* the fixture's finished Task has none either */
	struct vrt_resp r;
	vrt_get("/api/task/" VRT_TASK_A_ERROR, vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Task/v:Link"), 0, "%s", r.body);
	vrt_resp_free(&r);
	/* the org's Tasks list renders each Task alike */
	struct vrt_accepted queued = vrt_accept("sync", rg);
	vrt_get("/api/tasksList/" VRT_ORG_A "?pageSize=128", vrt_token(VRT_ADMIN_A), &r);
	cr_assert_eq(r.status, 200, "%ld\n%s", r.status, r.body);
	vrt_assert_valid(&r, "tasksList");
	char *xp = vrt_fmt(
		"string(//v:Task[@id='urn:vcloud:task:%s']/v:Link[@rel='task:cancel']/@href)",
		queued.task);
	char *expected = vrt_fmt("%s/api/task/%s/action/cancel", vrt_public_url(), queued.task);
	vrt_assert_xstr(&r, xp, expected);
	free(xp);
	xp = vrt_fmt("count(//v:Task[@id='urn:vcloud:task:%s']/v:Link)", a.task);
	vrt_assert_xstr(&r, xp, "0");
	free(xp);
	free(expected);
	vrt_resp_free(&r);
	vrt_accepted_free(&queued);
	vrt_accepted_free(&a);
	free(rg);
}

Test(document, the_link_is_followed_with_any_body_and_content_type)
{
	char *rg = vrt_new_replication(NULL, "body", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	struct vrt_resp t;
	vrt_get_task(a.task, &t);
	char *href = vrt_xstr(&t, "string(/v:Task/v:Link[@rel='task:cancel']/@href)");
	vrt_resp_free(&t);
	const char *path = href + strlen(vrt_public_url());
	const char *headers[] = {"Content-Type: text/plain", NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.body = "<not-xml",
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_no_content(&r, "cancel with a body");
	vrt_resp_free(&r);
	assert_task(a.task, "canceled", "100", "true", false);
	free(href);
	vrt_accepted_free(&a);
	free(rg);
}

Test(document, a_task_without_a_job_that_never_ended_is_canceled_at_once)
{
	/* a Task no job will end (made by hand here, like the fixtures') */
	char *task =
		vrt_db_must("INSERT INTO tasks (org_id, user_id, user_name, owner_kind, owner_id,"
			    " owner_name, operation, operation_name, status, progress)"
			    " SELECT org_id, id, name, 'org', org_id, 'tenant-a', 'Hand-made',"
			    " 'hcsHandMade', 'running', 5 FROM users WHERE org_id = $1::uuid"
			    " AND name = 'admin-a' RETURNING id::text",
			    VRT_ORG_A);
	cancel_ok(VRT_ADMIN_A, task);
	assert_task(task, "canceled", "100", "true", false);
	free(task);
}

/* --- the internal API ----------------------------------------------------------------- */

Test(internal, progress_of_an_unknown_job_is_404_like_start_and_complete)
{
	struct vrt_resp r;
	vrt_job_progress(VRT_MISSING, 10, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "progress of a missing job");
	vrt_resp_free(&r);
	/* a job this server does not run is still 409 JOB_NOT_RUNNING */
	char *rg = vrt_new_replication(NULL, "not-running", false, NULL);
	struct vrt_accepted a = vrt_accept("sync", rg);
	vrt_job_progress(a.job, 10, &r);
	vrt_assert_error(&r, 409, "JOB_NOT_RUNNING", "progress of a queued job");
	vrt_resp_free(&r);
	vrt_accepted_free(&a);
	free(rg);
}
