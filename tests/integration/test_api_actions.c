/* Actions on a replication, the tenant side (reference U16-U19, 1.6, 1.7,
 * 2.5, 6.3.1-6.3.3, 6.4; docs/pipeline.md, docs/state-machine.md): every
 * action answers 202 with a Location and a queued Task, writes its job and
 * publishes it to the Redis stream; the bodies real clients send are
 * accepted, hostile or wrong ones refused before anything changes; a
 * refused precondition is a Task that ends in error with the vendor code,
 * and then no job exists and the replication is as it was.
 *
 * No worker runs here: jobs stay queued (test_api_jobs runs them). The
 * relay would republish them every [jobs] republish_after seconds and so
 * change jobs.published_at; a day keeps it away, and the tests run one at
 * a time, so that each may compare the whole database before and after
 * its refused requests. Each test makes the replications it changes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/http.h"

#define PREFIX "vrt-actions"

VRT_SUITE(.name = "actions", .jobs = 1, .redis_db = 8,
	  .config = "[jobs]\nprefix = " PREFIX "\nrepublish_after = 86400\n");

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- the actions ------------------------------------------------------------ */

struct action {
	const char *name;	    /* the job's action and the last path segment */
	const char *method;	    /* DELETE is the replication's own href */
	const char *operation_name; /* the Task's operationName */
	const char *operation;	    /* the Task's operation, before the replication's name */
};

static const struct action actions[] = {
	{"failover", "POST", "hcsFailover", "Failover of replication"},
	{"testFailover", "POST", "hcsTestFailover", "Test failover of replication"},
	{"testCleanup", "POST", "hcsTestCleanup", "Test cleanup of replication"},
	{"plannedMigration", "POST", "hcsPlannedMigration", "Planned migration of replication"},
	{"sync", "POST", "hcsSync", "Synchronization of replication"},
	{"pause", "POST", "hcsPause", "Pause of replication"},
	{"resume", "POST", "hcsResume", "Resume of replication"},
	{"reconfigure", "POST", "hcsReconfigure", "Reconfiguration of replication"},
	{"delete", "DELETE", "hcsDelete", "Removal of replication"},
	{"reverse", "POST", "hcsReverse", "Reverse of replication"},
};

static const struct action *action_named(const char *name)
{
	for (size_t i = 0; i < N(actions); i++)
		if (strcmp(actions[i].name, name) == 0)
			return &actions[i];
	cr_assert_fail("no action %s", name);
	return NULL;
}

/* --- helpers ------------------------------------------------------------- */

static char *action_path(const struct action *a, const char *rg)
{
	if (strcmp(a->method, "DELETE") == 0)
		return vrt_fmt("/api/vr/replications/%s", rg);
	return vrt_fmt("/api/vr/replications/%s/action/%s", rg, a->name);
}

/* One request of an action on replication rg. token NULL: admin-a's.
 * content_type NULL sends no Content-Type at all; body NULL sends none. */
struct act {
	const char *token;
	const char *content_type;
	const char *body;
	const char *accept;
};

static void act(const char *name, const char *rg, const struct act *o, struct vrt_resp *r)
{
	const struct action *a = action_named(name);
	char *path = action_path(a, rg);
	char *type = o && o->content_type ? vrt_fmt("Content-Type: %s", o->content_type)
					  : strdup("Content-Type:");
	const char *headers[] = {type, NULL};
	struct vrt_call call = {.method = a->method,
				.path = path,
				.token = o && o->token ? o->token : vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.accept = o ? o->accept : NULL,
				.body = o ? o->body : NULL,
				.body_len = -1};
	cr_assert_eq(vrt_call(&call, r), 0, "%s %s: no response", a->method, path);
	free(type);
	free(path);
}

static char *value(const char *sql, const char *param)
{
	char *v = vrt_db_value(sql, param);
	return v ? v : strdup("(none)");
}

static char *rg_name(const char *rg)
{
	return value("SELECT name FROM replications WHERE id = $1::uuid", rg);
}

static char *state_of(const char *rg)
{
	char *s = vrt_replication_state(rg);
	return s ? s : strdup("(gone)");
}

static long count(const char *sql, const char *param)
{
	char *v = value(sql, param);
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

/* The Task answered by an action: 202, Location = its href (GET-able with
 * the same credentials, answering the same document), the task media type
 * with the negotiated version, a valid Task of this action on rg whose
 * User is user (name without the org) and Organization is org A. Returns
 * the task id; the caller frees. */
static char *assert_task_202(const struct vrt_resp *r, const char *action, const char *rg,
			     const char *user, const char *token, const char *what)
{
	const struct action *a = action_named(action);
	cr_assert_eq(r->status, 202, "%s: %ld, expected 202\n%s", what, r->status, r->body);
	vrt_assert_valid(r, what);
	const char *type = vrt_header(r, "Content-Type");
	cr_assert(type && strncmp(type, VRT_MT_TASK ";version=", strlen(VRT_MT_TASK ";version=")) ==
				  0,
		  "%s: Content-Type '%s' is not the task type with a version", what,
		  type ? type : "(none)");
	cr_assert_not_null(vrt_header(r, "X-VMWARE-VCLOUD-REQUEST-ID"), "%s", what);
	cr_assert_eq(vrt_xpath_count(r->body, "/v:Task"), 1, "%s: not a Task\n%s", what, r->body);
	char *href = vrt_xstr(r, "string(/v:Task/@href)");
	const char *location = vrt_header(r, "Location");
	cr_assert_not_null(location, "%s: 202 without Location", what);
	cr_assert_str_eq(location, href, "%s: Location is not the Task's href", what);
	char *prefix = vrt_fmt("%s/api/task/", vrt_public_url());
	cr_assert(strncmp(href, prefix, strlen(prefix)) == 0 && vrt_is_uuid(href + strlen(prefix)),
		  "%s: Task href %s", what, href);
	char *id = strdup(href + strlen(prefix));
	char *urn = vrt_fmt("urn:vcloud:task:%s", id);
	vrt_assert_xstr(r, "string(/v:Task/@id)", urn);
	vrt_assert_xstr(r, "string(/v:Task/@type)", VRT_MT_TASK);
	vrt_assert_xstr(r, "string(/v:Task/@name)", "task");
	vrt_assert_xstr(r, "string(/v:Task/@operationName)", a->operation_name);
	char *name = rg_name(rg);
	char *operation = vrt_fmt("%s %s", a->operation, name);
	vrt_assert_xstr(r, "string(/v:Task/@operation)", operation);
	char *owner = vrt_fmt("%s/api/vr/replications/%s", vrt_public_url(), rg);
	vrt_assert_xstr(r, "string(/v:Task/v:Owner/@href)", owner);
	vrt_assert_xstr(r, "string(/v:Task/v:Owner/@type)", VRT_MT_RG);
	vrt_assert_xstr(r, "string(/v:Task/v:Owner/@name)", name);
	char *user_name = strndup(user, strcspn(user, "@"));
	vrt_assert_xstr(r, "string(/v:Task/v:User/@name)", user_name);
	char *org = vrt_fmt("%s/api/org/" VRT_ORG_A, vrt_public_url());
	vrt_assert_xstr(r, "string(/v:Task/v:Organization/@href)", org);
	vrt_assert_xstr(r, "string(/v:Task/v:Organization/@name)", VRT_ORG_A_NAME);
	char *start = vrt_xstr(r, "string(/v:Task/@startTime)");
	char *expiry = vrt_xstr(r, "string(/v:Task/@expiryTime)");
	cr_assert(start[0] && expiry[0], "%s: startTime '%s', expiryTime '%s'", what, start,
		  expiry);
	/* the href answers the same document with the same credentials */
	struct vrt_resp again;
	vrt_get(href + strlen(vrt_public_url()), token, &again);
	cr_assert_eq(again.status, 200, "%s: GET %s: %ld\n%s", what, href, again.status,
		     again.body);
	cr_assert_str_eq(again.body, r->body, "%s: GET of the Task differs from the 202 body",
			 what);
	cr_assert_str_eq(vrt_header(&again, "Content-Type"), VRT_MT_TASK ";version=5.5");
	vrt_resp_free(&again);
	free(start);
	free(expiry);
	free(org);
	free(user_name);
	free(owner);
	free(operation);
	free(name);
	free(urn);
	free(prefix);
	free(href);
	return id;
}

/* An accepted action: a queued Task with Progress 0 and no Error, and its
 * job, queued in the replication's lane and published to the stream.
 * Returns the job id; *task_out (may be NULL) gets the task id. */
static char *assert_accepted_as(const struct vrt_resp *r, const char *action, const char *rg,
				const char *user, char **task_out, const char *what)
{
	char *task = assert_task_202(r, action, rg, user, vrt_token(user), what);
	vrt_assert_xstr(r, "string(/v:Task/@status)", "queued");
	vrt_assert_xstr(r, "string(/v:Task/v:Progress)", "0");
	vrt_assert_xstr(r, "string(/v:Task/@cancelRequested)", "false");
	cr_assert_eq(vrt_xpath_count(r->body, "/v:Task/@endTime"), 0, "%s", what);
	cr_assert_eq(vrt_xpath_count(r->body, "/v:Task/v:Error"), 0, "%s", what);
	char *job = vrt_db_value("SELECT id::text FROM jobs WHERE task_id = $1::uuid", task);
	cr_assert_not_null(job, "%s: no job for the accepted Task %s", what, task);
	char *row = vrt_db_value("SELECT state || ' ' || lane || ' ' || action || ' ' ||"
				 " org_id::text || ' ' || (published_at IS NOT NULL)::text"
				 " FROM jobs WHERE id = $1::uuid",
				 job);
	char *expected = vrt_fmt("queued replication:%s %s " VRT_ORG_A " true", rg, action);
	cr_assert_str_eq(row, expected, "%s: job %s", what, job);
	cr_assert(vrt_stream_has(PREFIX, job), "%s: job %s is not in the stream %s:jobs", what, job,
		  PREFIX);
	free(expected);
	free(row);
	if (task_out)
		*task_out = task;
	else
		free(task);
	return job;
}

static char *assert_accepted(const struct vrt_resp *r, const char *action, const char *rg,
			     const char *what)
{
	return assert_accepted_as(r, action, rg, VRT_ADMIN_A, NULL, what);
}

/* A refused precondition: 202 all the same, with a Task that ended in
 * error (Progress 100, endTime) whose Error carries the vendor code, and
 * no job. Returns the task id; the caller frees. */
static char *assert_refused(const struct vrt_resp *r, const char *action, const char *rg,
			    const char *vendor, const char *major, const char *minor,
			    const char *what)
{
	char *task = assert_task_202(r, action, rg, VRT_ADMIN_A, vrt_token(VRT_ADMIN_A), what);
	vrt_assert_xstr(r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(r, "string(/v:Task/v:Progress)", "100");
	cr_assert_eq(vrt_xpath_count(r->body, "/v:Task/@endTime"), 1, "%s: no endTime", what);
	cr_assert_eq(vrt_xpath_count(r->body, "/v:Task/v:Error"), 1, "%s: no Error\n%s", what,
		     r->body);
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", vendor);
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@majorErrorCode)", major);
	vrt_assert_xstr(r, "string(/v:Task/v:Error/@minorErrorCode)", minor);
	char *message = vrt_xstr(r, "string(/v:Task/v:Error/@message)");
	cr_assert(message[0], "%s: the Error has no message", what);
	free(message);
	cr_assert_eq(count("SELECT count(*) FROM jobs WHERE task_id = $1::uuid", task), 0,
		     "%s: a refused action made a job", what);
	return task;
}

/* An action on rg that the state machine refuses with vendor: the Task as
 * above, and the replication's state and jobs as they were. */
static void assert_action_refused(const char *action, const char *rg, const struct act *o,
				  const char *vendor, const char *major, const char *minor)
{
	char *before = state_of(rg);
	long jobs = count("SELECT count(*) FROM jobs WHERE lane = 'replication:' || $1", rg);
	struct vrt_resp r;
	act(action, rg, o, &r);
	char *what = vrt_fmt("%s of %s (%s)", action, rg, before);
	free(assert_refused(&r, action, rg, vendor, major, minor, what));
	vrt_assert_state(rg, before, what);
	cr_assert_eq(count("SELECT count(*) FROM jobs WHERE lane = 'replication:' || $1", rg), jobs,
		     "%s: the replication's jobs changed", what);
	free(what);
	free(before);
	vrt_resp_free(&r);
}

/* The Params of a job: PowerOn, Synchronize and InstanceId, space-separated. */
static char *params_of(const char *job)
{
	return value("SELECT (params->'PowerOn')::text || ' ' || (params->'Synchronize')::text"
		     " || ' ' || coalesce(params->>'InstanceId', 'null') FROM jobs"
		     " WHERE id = $1::uuid",
		     job);
}

static void assert_params(const char *job, const char *expected, const char *what)
{
	char *p = params_of(job);
	cr_assert_str_eq(p, expected, "%s: job params '%s', expected '%s'", what, p, expected);
	free(p);
}

/* --- routes ----------------------------------------------------------------- */

/* Every route that changes a replication is one of the actions here. */
Test(routes, every_action_route_of_the_table_is_tested_here)
{
	size_t n = 0;
	for (const struct vr_route *route = vr_api_routes; route->method; route++) {
		if (strncmp(route->pattern, "/api/vr/replications/{id}", 25) != 0 ||
		    strcmp(route->method, "GET") == 0)
			continue;
		bool known = false;
		for (size_t i = 0; i < N(actions) && !known; i++) {
			char *path = action_path(&actions[i], "{id}");
			known = strcmp(actions[i].method, route->method) == 0 &&
				strcmp(path, route->pattern) == 0;
			free(path);
		}
		cr_assert(known, "%s %s has no test here", route->method, route->pattern);
		n++;
	}
	cr_assert_eq(n, N(actions), "a test here names an action the table does not have");
}

/* --- accepted actions (reference 1.6, 6.4.1-6.4.3) ---------------------------- */

/* action on a fresh replication (in vdc, with set applied): accepted, the
 * state moved as vr_engine_begin says, and the ReplicationGroup shows it. */
static void assert_action_accepted(const char *action, const char *vdc, const char *set,
				   const char *state_after, const char *params)
{
	char *rg = vrt_new_replication(vdc, action, false, set);
	struct vrt_resp r;
	act(action, rg, NULL, &r);
	char *what = vrt_fmt("%s of a fresh replication", action);
	char *job = assert_accepted(&r, action, rg, what);
	vrt_assert_state(rg, state_after, what);
	if (params)
		assert_params(job, params, what);
	else
		cr_assert_eq(count("SELECT count(*) FROM jobs j JOIN replications r"
				   " ON j.lane = 'replication:' || r.id WHERE j.id = $1::uuid"
				   " AND j.params = jsonb_build_object('PeerId', r.peer_id::text)",
				   job),
			     1, "%s: the job has parameters beside the peer", what);
	/* the replication is still there (a delete removes it when its job ends) */
	struct vrt_resp g;
	char *path = vrt_fmt("/api/vr/replications/%s", rg);
	vrt_get(path, vrt_token(VRT_ADMIN_A), &g);
	cr_assert_eq(g.status, 200, "%s: GET %s: %ld", what, path, g.status);
	char *recovery = strndup(state_after, strcspn(state_after, " "));
	vrt_assert_xstr(&g, "string(/vr:ReplicationGroup/vr:RecoveryState)", recovery);
	free(recovery);
	vrt_resp_free(&g);
	free(path);
	free(job);
	free(what);
	free(rg);
	vrt_resp_free(&r);
}

Test(accepted, failover_answers_202_and_recovery_is_in_progress)
{
	assert_action_accepted("failover", NULL, NULL, "inProgress none ok false",
			       "true false null");
}

Test(accepted, test_failover_answers_202_and_test_recovery_is_in_progress)
{
	assert_action_accepted("testFailover", NULL, NULL, "notStarted testInProgress ok false",
			       "true false null");
}

Test(accepted, test_cleanup_answers_202_and_cleanup_is_in_progress)
{
	assert_action_accepted("testCleanup", NULL, "test_recovery_state = 'complete'",
			       "notStarted cleanupInProgress ok false", NULL);
}

Test(accepted, test_cleanup_after_a_failed_test_answers_202)
{
	assert_action_accepted("testCleanup", NULL, "test_recovery_state = 'testError'",
			       "notStarted cleanupInProgress ok false", NULL);
}

Test(accepted, planned_migration_answers_202_where_the_vdc_allows_it)
{
	char *vdc = vrt_new_vdc(true, true, true);
	assert_action_accepted("plannedMigration", vdc, NULL, "inProgress none ok false",
			       "true false null");
	free(vdc);
}

Test(accepted, sync_answers_202_and_changes_no_state)
{
	assert_action_accepted("sync", NULL, NULL, "notStarted none ok false", NULL);
}

Test(accepted, pause_answers_202_and_the_replication_pauses_when_its_job_ends)
{
	assert_action_accepted("pause", NULL, NULL, "notStarted none ok false", NULL);
}

Test(accepted, resume_answers_202_for_a_paused_replication)
{
	assert_action_accepted("resume", NULL, "paused = true, paused_at = now()",
			       "notStarted none ok true", NULL);
}

Test(accepted, reconfigure_without_a_body_answers_202_and_changes_nothing_yet)
{
	/* test_api_configure has the settings and their effect */
	assert_action_accepted("reconfigure", NULL, NULL, "notStarted none ok false", NULL);
}

Test(accepted, delete_answers_202_and_the_replication_stays_until_its_job_ends)
{
	assert_action_accepted("delete", NULL, NULL, "notStarted none ok false", NULL);
}

Test(accepted, failover_beside_a_finished_test_image_is_allowed)
{
	assert_action_accepted("failover", NULL, "test_recovery_state = 'complete'",
			       "inProgress complete ok false", "true false null");
}

Test(accepted, failover_after_a_failed_one_is_a_retry)
{
	assert_action_accepted("failover", NULL, "recovery_state = 'error'",
			       "inProgress none ok false", "true false null");
}

Test(accepted, failover_of_a_paused_replication_is_allowed)
{
	assert_action_accepted("failover", NULL, "paused = true, paused_at = now()",
			       "inProgress none ok true", "true false null");
}

Test(accepted, a_system_administrator_acts_on_a_tenants_replication)
{
	char *rg = vrt_new_replication(NULL, "by-root", false, NULL);
	struct vrt_resp r;
	act("sync", rg, &(struct act){.token = vrt_token(VRT_ROOT)}, &r);
	char *task = NULL;
	/* the Task is the tenant's (Organization), the sysadmin its User */
	free(assert_accepted_as(&r, "sync", rg, VRT_ROOT, &task, "sync as root"));
	vrt_assert_xstr(&r, "string(/v:Task/v:User/@name)", "root");
	/* and the tenant reads it */
	char *path = vrt_fmt("/api/task/%s", task);
	struct vrt_resp t;
	vrt_get(path, vrt_token(VRT_USER_A), &t);
	cr_assert_eq(t.status, 200, "GET %s as user-a: %ld\n%s", path, t.status, t.body);
	vrt_resp_free(&t);
	vrt_get(path, vrt_token(VRT_ADMIN_B), &t);
	vrt_assert_error(&t, 404, "RESOURCE_NOT_FOUND", "the Task as admin-b");
	vrt_resp_free(&t);
	free(path);
	free(task);
	free(rg);
	vrt_resp_free(&r);
}

Test(accepted, an_org_user_may_act_and_is_the_tasks_user)
{
	char *rg = vrt_new_replication(NULL, "by-user", false, NULL);
	struct vrt_resp r;
	act("testFailover", rg, &(struct act){.token = vrt_token(VRT_USER_A)}, &r);
	free(assert_accepted_as(&r, "testFailover", rg, VRT_USER_A, NULL, "as user-a"));
	vrt_resp_free(&r);
	free(rg);
}

Test(accepted, the_task_carries_the_version_the_client_negotiated)
{
	char *rg = vrt_new_replication(NULL, "versions", false, NULL);
	struct vrt_resp r;
	act("sync", rg, &(struct act){.accept = "application/*+xml;version=20.0;vr-version=4.0"},
	    &r);
	cr_assert_eq(r.status, 202, "%ld\n%s", r.status, r.body);
	cr_assert_str_eq(vrt_header(&r, "Content-Type"), VRT_MT_TASK ";version=20.0");
	vrt_assert_valid(&r, "sync, version 20.0");
	vrt_resp_free(&r);
	free(rg);
}

/* Repeatable actions queue behind each other in the replication's lane:
 * only the head of the lane is published; the next one waits for it. */
Test(accepted, a_second_action_queues_behind_the_first_in_the_lane)
{
	char *rg = vrt_new_replication(NULL, "two-pauses", false, NULL);
	struct vrt_resp r1, r2;
	act("pause", rg, NULL, &r1);
	char *first = assert_accepted(&r1, "pause", rg, "first pause");
	act("pause", rg, NULL, &r2);
	char *task = assert_task_202(&r2, "pause", rg, VRT_ADMIN_A, vrt_token(VRT_ADMIN_A),
				     "second pause");
	vrt_assert_xstr(&r2, "string(/v:Task/@status)", "queued");
	char *second = vrt_db_value("SELECT id::text FROM jobs WHERE task_id = $1::uuid", task);
	cr_assert_not_null(second, "the second pause has no job");
	char *order = vrt_db_value("SELECT string_agg(id::text, ' ' ORDER BY seq) FROM jobs"
				   " WHERE lane = 'replication:' || $1 AND state = 'queued'",
				   rg);
	char *expected = vrt_fmt("%s %s", first, second);
	cr_assert_str_eq(order, expected, "the lane's jobs are not in request order");
	cr_assert_eq(count("SELECT count(*) FROM jobs WHERE id = $1::uuid AND published_at IS NULL",
			   second),
		     1, "the second job was published while the first is open");
	cr_assert(vrt_stream_has(PREFIX, first));
	cr_assert(!vrt_stream_has(PREFIX, second), "the second job is in the stream already");
	free(expected);
	free(order);
	free(second);
	free(task);
	free(first);
	free(rg);
	vrt_resp_free(&r1);
	vrt_resp_free(&r2);
}

/* --- client bodies (reference 6.3.1-6.3.3) --------------------------------------- */

/* testFailover with this Content-Type and body on a fresh replication:
 * accepted, with these job params. */
static void assert_test_failover_body(const char *content_type, const char *body,
				      const char *params, const char *accept, const char *what)
{
	char *rg = vrt_new_replication(NULL, "client-test-failover", false, NULL);
	struct vrt_resp r;
	act("testFailover", rg,
	    &(struct act){.content_type = content_type, .body = body, .accept = accept}, &r);
	char *job = assert_accepted(&r, "testFailover", rg, what);
	assert_params(job, params, what);
	free(job);
	free(rg);
	vrt_resp_free(&r);
}

static void assert_failover_body(const char *content_type, const char *body, const char *params,
				 const char *what)
{
	char *rg = vrt_new_replication(NULL, "client-failover", false, NULL);
	struct vrt_resp r;
	act("failover", rg, &(struct act){.content_type = content_type, .body = body}, &r);
	char *job = assert_accepted(&r, "failover", rg, what);
	assert_params(job, params, what);
	free(job);
	free(rg);
	vrt_resp_free(&r);
}

Test(compat_6_3_1, raascli_test_failover_with_a_placeholder_name_and_padded_boolean)
{
	assert_test_failover_body(VRT_MT_TEST,
				  "<TestFailoverParams xmlns=\"" VRT_NS_VR
				  "\" xmlns:vcloud_v1.5=\"" VRT_NS_VCLOUD
				  "\" name=\"xs:string\"><Synchronize> false </Synchronize>"
				  "</TestFailoverParams>",
				  "true false null", "application/*+xml;version=5.6", "RaaSCLI");
	assert_test_failover_body(VRT_MT_TEST,
				  "<TestFailoverParams xmlns=\"" VRT_NS_VR
				  "\" xmlns:vcloud_v1.5=\"" VRT_NS_VCLOUD
				  "\" name=\"xs:string\"><Synchronize>\n true\t</Synchronize>"
				  "</TestFailoverParams>",
				  "true true null", NULL, "RaaSCLI, Synchronize true");
}

Test(compat_6_3_1, java_test_failover_sent_as_failover_params_with_a_prefix)
{
	assert_test_failover_body(
		VRT_MT_FAILOVER,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
		"<ns2:TestFailoverParams xmlns=\"" VRT_NS_VCLOUD "\" xmlns:ns2=\"" VRT_NS_VR "\""
		" xmlns:ns3=\"http://schemas.dmtf.org/ovf/envelope/1\""
		" xmlns:ns4=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
		"CIM_VirtualSystemSettingData\""
		" xmlns:ns5=\"http://schemas.dmtf.org/wbem/wscim/1/common\""
		" xmlns:ns6=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
		"CIM_ResourceAllocationSettingData\""
		" xmlns:ns7=\"http://schemas.dmtf.org/ovf/environment/1\">"
		" <ns2:PowerOn>true</ns2:PowerOn> <ns2:Synchronize>false</ns2:Synchronize>"
		" </ns2:TestFailoverParams>",
		"true false null", "application/*+xml;version=9.0", "Java demo app");
}

Test(compat_6_3_1, vcloudair_test_failover_with_numeric_booleans)
{
	assert_test_failover_body(VRT_MT_TEST,
				  "<TestFailoverParams name=\"vm\" xmlns=\"" VRT_NS_VR
				  "\"><PowerOn>1"
				  "</PowerOn><Synchronize>0</Synchronize></TestFailoverParams>",
				  "true false null", NULL, "vcloudair, PowerOn 1");
	assert_test_failover_body(VRT_MT_TEST,
				  "<TestFailoverParams name=\"vm\" xmlns=\"" VRT_NS_VR
				  "\"><PowerOn>0"
				  "</PowerOn><Synchronize>0</Synchronize></TestFailoverParams>",
				  "false false null", NULL, "vcloudair, PowerOn 0");
}

Test(compat_6_3_1, test_failover_takes_any_xml_type_and_a_missing_synchronize)
{
	assert_test_failover_body("application/*+xml",
				  "<TestFailoverParams xmlns=\"" VRT_NS_VR "\"/>",
				  "true false null", NULL, "application/*+xml, empty element");
	assert_test_failover_body(
		"Application/VND.VMware.HCS.TestFailoverParams+XML; charset=utf-8",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>false</PowerOn>"
		"</TestFailoverParams>",
		"false false null", NULL, "type in another case, with a parameter");
	assert_test_failover_body(NULL, NULL, "true false null", NULL, "no body at all");
}

Test(compat_6_3_2, raascli_failover_with_an_empty_element)
{
	assert_failover_body(VRT_MT_FAILOVER,
			     "<FailoverParams xmlns=\"" VRT_NS_VR
			     "\" xmlns:vcloud_v1.5=\"" VRT_NS_VCLOUD
			     "\" name=\"xs:string\"></FailoverParams>",
			     "true false null", "RaaSCLI");
	assert_failover_body(VRT_MT_FAILOVER, "<FailoverParams xmlns=\"" VRT_NS_VR "\"/>",
			     "true false null", "self-closed empty FailoverParams");
}

Test(compat_6_3_2, vcloudair_failover_with_the_capitalised_type_or_none)
{
	static const char body[] = "<FailoverParams name=\"vm\" xmlns=\"" VRT_NS_VR "\"><PowerOn>1"
				   "</PowerOn></FailoverParams>";
	assert_failover_body("application/vnd.vmware.hcs.FailoverParams+xml", body,
			     "true false null", "capitalised FailoverParams type");
	assert_failover_body(NULL, body, "true false null", "no Content-Type");
	assert_failover_body("APPLICATION/VND.VMWARE.HCS.FAILOVERPARAMS+XML;charset=UTF-8", body,
			     "true false null", "type in capitals with a parameter");
}

Test(compat_6_3_2, failover_power_on_and_instance_reach_the_job)
{
	assert_failover_body(VRT_MT_FAILOVER,
			     "<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn> false </PowerOn>"
			     "</FailoverParams>",
			     "false false null", "PowerOn false");
	assert_failover_body(NULL, NULL, "true false null", "no body");
	char *rg = vrt_new_replication(NULL, "instance", false, NULL);
	char *instance =
		vrt_db_value("SELECT id::text FROM instances WHERE replication_id = $1::uuid", rg);
	char *body = vrt_fmt("<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>true</PowerOn>"
			     "<InstanceId>%s</InstanceId></FailoverParams>",
			     instance);
	struct vrt_resp r;
	act("failover", rg, &(struct act){.content_type = VRT_MT_FAILOVER, .body = body}, &r);
	char *job = assert_accepted(&r, "failover", rg, "failover of an instance");
	char *expected = vrt_fmt("true false %s", instance);
	assert_params(job, expected, "InstanceId");
	free(expected);
	free(job);
	free(body);
	free(instance);
	free(rg);
	vrt_resp_free(&r);
}

/* Bodies and types that clients send to testCleanup and the actions that
 * take no parameters: all ignored, whatever they are. */
static const struct {
	const char *content_type;
	const char *body;
} ignored_bodies[] = {
	{VRT_MT_FAILOVER, "<ns2:TestFailoverParams xmlns:ns2=\"" VRT_NS_VR "\"> <ns2:PowerOn>true"
			  "</ns2:PowerOn> <ns2:Synchronize>false</ns2:Synchronize>"
			  " </ns2:TestFailoverParams>"},
	{"text/plain", "clean up, please"},
	{"application/json", "{\"force\": true}"},
	{"application/xml",
	 "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>"},
	{NULL, "<unclosed"},
	{"application/x-www-form-urlencoded", "a=1&b=2"},
};

Test(compat_6_3_3, test_cleanup_ignores_any_body_and_content_type)
{
	for (size_t i = 0; i < N(ignored_bodies); i++) {
		char *rg = vrt_new_replication(NULL, "cleanup-body", false,
					       "test_recovery_state = 'complete'");
		struct vrt_resp r;
		act("testCleanup", rg,
		    &(struct act){.content_type = ignored_bodies[i].content_type,
				  .body = ignored_bodies[i].body},
		    &r);
		char *what = vrt_fmt("testCleanup with body %zu", i);
		free(assert_accepted(&r, "testCleanup", rg, what));
		cr_assert_null(strstr(r.body, "root:x:0:0"), "%s shows /etc/passwd", what);
		vrt_assert_state(rg, "notStarted cleanupInProgress ok false", what);
		free(what);
		free(rg);
		vrt_resp_free(&r);
	}
}

Test(compat_6_3_3, sync_pause_resume_and_delete_ignore_any_body)
{
	static const char *const names[] = {"sync", "pause", "resume", "delete"};
	for (size_t n = 0; n < N(names); n++) {
		for (size_t i = 0; i < N(ignored_bodies); i++) {
			char *rg = vrt_new_replication(
				NULL, names[n], false,
				strcmp(names[n], "resume") == 0 ? "paused = true" : NULL);
			struct vrt_resp r;
			act(names[n], rg,
			    &(struct act){.content_type = ignored_bodies[i].content_type,
					  .body = ignored_bodies[i].body},
			    &r);
			char *what = vrt_fmt("%s with body %zu", names[n], i);
			free(assert_accepted(&r, names[n], rg, what));
			free(what);
			free(rg);
			vrt_resp_free(&r);
		}
	}
}

/* --- refused documents ------------------------------------------------------------ */

/* action on rg with this type and body: an Error of status, nothing
 * changed in the database, and no file content in the answer. */
static void assert_body_refused(const char *action, const char *rg, const char *content_type,
				const char *body, long status, const char *minor, const char *what)
{
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	act(action, rg, &(struct act){.content_type = content_type, .body = body}, &r);
	char *full = vrt_fmt("%s: %s", action, what);
	vrt_assert_error(&r, status, minor, full);
	cr_assert_null(strstr(r.body, "root:x:0:0"), "%s: the answer shows /etc/passwd", full);
	vrt_assert_unchanged_since(before, full);
	free(full);
	free(before);
	vrt_resp_free(&r);
}

#define XXE_DECL "<!DOCTYPE %s [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
#define LAUGHS                                                                                     \
	"<!DOCTYPE %s [<!ENTITY a \"aaaaaaaaaa\">"                                                 \
	"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"                                           \
	"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"                                           \
	"<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"                                           \
	"<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">]>"

/* Hostile bodies for the action whose root is root: DOCTYPEs of every kind. */
static void assert_doctypes_refused(const char *action, const char *root, const char *type)
{
	char *rg = vrt_new_replication(NULL, "hostile", false, NULL);
	char *bodies[] = {
		vrt_fmt(XXE_DECL "<%s xmlns=\"" VRT_NS_VR "\"><InstanceId>&xxe;</InstanceId></%s>",
			root, root, root),
		vrt_fmt("<!DOCTYPE %s [<!ENTITY %% p SYSTEM \"file:///etc/passwd\"> %%p;]>"
			"<%s xmlns=\"" VRT_NS_VR "\"/>",
			root, root),
		vrt_fmt("<!DOCTYPE %s SYSTEM \"http://127.0.0.1:1/evil.dtd\"><%s xmlns=\"" VRT_NS_VR
			"\"/>",
			root, root),
		vrt_fmt(LAUGHS "<%s xmlns=\"" VRT_NS_VR "\"><InstanceId>&e;</InstanceId></%s>",
			root, root, root),
		vrt_fmt("<!DOCTYPE %s><%s xmlns=\"" VRT_NS_VR "\"/>", root, root),
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("DOCTYPE body %zu", i);
		assert_body_refused(action, rg, type, bodies[i], 400, "BAD_REQUEST", what);
		free(what);
		free(bodies[i]);
	}
	vrt_assert_state(rg, "notStarted none ok false", "after DOCTYPE bodies");
	free(rg);
}

Test(documents, doctype_xxe_and_entity_expansion_are_400)
{
	assert_doctypes_refused("failover", "FailoverParams", VRT_MT_FAILOVER);
	assert_doctypes_refused("failover", "FailoverParams", NULL);
	assert_doctypes_refused("testFailover", "TestFailoverParams", VRT_MT_TEST);
	assert_doctypes_refused("plannedMigration", "FailoverParams", VRT_MT_FAILOVER);
}

Test(documents, a_wrong_root_or_namespace_is_400)
{
	char *rg = vrt_new_replication(NULL, "wrong-root", false, NULL);
	static const char *const failover[] = {
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"/>",
		"<FailoverParams/>",
		"<FailoverParams xmlns=\"" VRT_NS_VCLOUD "\"/>",
		"<FailoverParams xmlns=\"http://www.vmware.com/vr/v5.0\"/>",
		"<vr:Failover xmlns:vr=\"" VRT_NS_VR "\"/>",
		"<Error xmlns=\"" VRT_NS_VCLOUD "\" majorErrorCode=\"400\" minorErrorCode=\"x\""
		" message=\"x\"/>",
	};
	for (size_t i = 0; i < N(failover); i++) {
		char *what = vrt_fmt("wrong root %zu", i);
		assert_body_refused("failover", rg, VRT_MT_FAILOVER, failover[i], 400,
				    "BAD_REQUEST", what);
		assert_body_refused("plannedMigration", rg, VRT_MT_FAILOVER, failover[i], 400,
				    "BAD_REQUEST", what);
		free(what);
	}
	static const char *const test[] = {
		/* the Java client's type does not make a FailoverParams one */
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"/>",
		"<TestFailoverParams/>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VCLOUD "\"/>",
		"<ns2:TestFailoverParams xmlns:ns2=\"urn:other\"/>",
	};
	for (size_t i = 0; i < N(test); i++) {
		char *what = vrt_fmt("wrong root %zu", i);
		assert_body_refused("testFailover", rg, VRT_MT_FAILOVER, test[i], 400,
				    "BAD_REQUEST", what);
		free(what);
	}
	vrt_assert_state(rg, "notStarted none ok false", "after wrong roots");
	free(rg);
}

Test(documents, invalid_values_and_malformed_bodies_are_400)
{
	char *rg = vrt_new_replication(NULL, "invalid", false, NULL);
	static const char *const failover[] = {
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>yes</PowerOn></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn></PowerOn></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>TRUE</PowerOn></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>true</PowerOn><PowerOn>false"
		"</PowerOn></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><InstanceId>not-a-uuid</InstanceId>"
		"</FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><InstanceId>1' OR '1'='1</InstanceId>"
		"</FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><InstanceId>" VRT_INSTANCE_A1_1
		"</InstanceId><PowerOn>true</PowerOn></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><Synchronize>true</Synchronize>"
		"</FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><Force>true</Force></FailoverParams>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\" power=\"on\"/>",
		"<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>true</PowerOn>",
		"PowerOn=true",
		"{\"PowerOn\": true}",
		"\xef\xbb\xbf\xff\xfe<FailoverParams/>",
	};
	for (size_t i = 0; i < N(failover); i++) {
		char *what = vrt_fmt("invalid body %zu: %.50s", i, failover[i]);
		assert_body_refused("failover", rg, VRT_MT_FAILOVER, failover[i], 400,
				    "BAD_REQUEST", what);
		free(what);
	}
	static const char *const test[] = {
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><Synchronize>maybe</Synchronize>"
		"</TestFailoverParams>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><Synchronize>2</Synchronize>"
		"</TestFailoverParams>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><Synchronize>false</Synchronize>"
		"<PowerOn>true</PowerOn></TestFailoverParams>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><Synchronize>false</Synchronize>"
		"<Synchronize>true</Synchronize></TestFailoverParams>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\"><InstanceId>x</InstanceId>"
		"</TestFailoverParams>",
		"<TestFailoverParams xmlns=\"" VRT_NS_VR "\">",
	};
	for (size_t i = 0; i < N(test); i++) {
		char *what = vrt_fmt("invalid body %zu: %.50s", i, test[i]);
		assert_body_refused("testFailover", rg, VRT_MT_TEST, test[i], 400, "BAD_REQUEST",
				    what);
		free(what);
	}
	vrt_assert_state(rg, "notStarted none ok false", "after invalid bodies");
	free(rg);
}

Test(documents, a_content_type_the_action_does_not_take_is_415)
{
	char *rg = vrt_new_replication(NULL, "media-types", false, NULL);
	static const char failover_body[] = "<FailoverParams xmlns=\"" VRT_NS_VR "\"/>";
	static const char *const failover[] = {
		VRT_MT_TEST,
		"application/*+xml",
		"application/xml",
		"text/xml",
		"text/plain",
		"application/json",
		"application/vnd.vmware.hcs.failoverParams+json",
		"application/vnd.vmware.hcs.failoverParams+xmlx",
		"application/x-www-form-urlencoded",
	};
	for (size_t i = 0; i < N(failover); i++) {
		assert_body_refused("failover", rg, failover[i], failover_body, 415,
				    "UNSUPPORTED_MEDIA_TYPE", failover[i]);
		assert_body_refused("plannedMigration", rg, failover[i], failover_body, 415,
				    "UNSUPPORTED_MEDIA_TYPE", failover[i]);
	}
	static const char test_body[] = "<TestFailoverParams xmlns=\"" VRT_NS_VR "\"/>";
	static const char *const test[] = {
		"application/xml",
		"text/xml",
		"text/plain",
		"application/json",
		"application/vnd.vmware.hcs.replicationGroup+json",
		"application/x-www-form-urlencoded",
	};
	for (size_t i = 0; i < N(test); i++)
		assert_body_refused("testFailover", rg, test[i], test_body, 415,
				    "UNSUPPORTED_MEDIA_TYPE", test[i]);
	/* only failover takes a body without a Content-Type */
	assert_body_refused("testFailover", rg, NULL, test_body, 415, "UNSUPPORTED_MEDIA_TYPE",
			    "no Content-Type");
	vrt_assert_state(rg, "notStarted none ok false", "after wrong media types");
	free(rg);
}

Test(documents, bodies_over_64_kib_are_413_on_every_action)
{
	char *rg = vrt_new_replication(NULL, "big-body", false, NULL);
	char *padding = vrt_filler(VRT_BODY_CAP, ' ');
	char *body = vrt_fmt("<FailoverParams xmlns=\"" VRT_NS_VR "\"/>%s", padding);
	for (size_t i = 0; i < N(actions); i++)
		assert_body_refused(actions[i].name, rg, VRT_MT_FAILOVER, body, 413,
				    "REQUEST_ENTITY_TOO_LARGE", "64 KiB + 36 bytes");
	vrt_assert_state(rg, "notStarted none ok false", "after oversized bodies");
	free(body);
	free(padding);
	free(rg);
}

/* --- credentials, negotiation and tenancy --------------------------------------------- */

Test(credentials, actions_without_credentials_are_401_and_change_nothing)
{
	char *rg = vrt_new_replication(NULL, "anonymous", false, NULL);
	char *before = vrt_db_fingerprint();
	for (size_t i = 0; i < N(actions); i++) {
		char *path = action_path(&actions[i], rg);
		static const char *const tokens[] = {NULL, VRT_TOKEN_EXPIRED, "' OR 1=1 --"};
		for (size_t t = 0; t < N(tokens); t++) {
			struct vrt_call call = {
				.method = actions[i].method, .path = path, .token = tokens[t]};
			struct vrt_resp r;
			cr_assert_eq(vrt_call(&call, &r), 0);
			char *what = vrt_fmt("%s %s with token %zu", actions[i].method, path, t);
			vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", what);
			cr_assert_not_null(vrt_header(&r, "WWW-Authenticate"), "%s", what);
			free(what);
			vrt_resp_free(&r);
		}
		free(path);
	}
	vrt_assert_unchanged_since(before, "after unauthenticated actions");
	free(before);
	free(rg);
}

Test(credentials, basic_credentials_act_like_a_session)
{
	char *rg = vrt_new_replication(NULL, "basic", false, NULL);
	char *basic = vrt_fmt("%s:%s", VRT_ADMIN_A, VRT_PASSWORD);
	char *path = vrt_fmt("/api/vr/replications/%s/action/sync", rg);
	struct vrt_call call = {.method = "POST", .path = path, .basic = basic};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	free(assert_accepted(&r, "sync", rg, "sync with Basic credentials"));
	vrt_resp_free(&r);
	free(path);
	free(basic);
	free(rg);
}

Test(negotiation, an_unsupported_accept_is_406_and_changes_nothing)
{
	char *rg = vrt_new_replication(NULL, "not-acceptable", false, NULL);
	char *before = vrt_db_fingerprint();
	static const char *const accepts[] = {"application/*+xml;version=31.0", "application/json"};
	for (size_t i = 0; i < N(actions); i++) {
		for (size_t a = 0; a < N(accepts); a++) {
			struct vrt_resp r;
			act(actions[i].name, rg, &(struct act){.accept = accepts[a]}, &r);
			char *what = vrt_fmt("%s with Accept %s", actions[i].name, accepts[a]);
			vrt_assert_error(&r, 406, "NOT_ACCEPTABLE", what);
			free(what);
			vrt_resp_free(&r);
		}
	}
	vrt_assert_unchanged_since(before, "after unacceptable Accept headers");
	free(before);
	free(rg);
}

/* The Error of a 404 with the id replaced by "ID": what a caller learns. */
static char *not_found_shape(const struct vrt_resp *r, const char *id)
{
	char *body = strdup(r->body);
	size_t n = strlen(id);
	for (char *hit = strstr(body, id); hit; hit = strstr(hit + 2, id)) {
		memcpy(hit, "ID", 2);
		memmove(hit + 2, hit + n, strlen(hit + n) + 1);
	}
	return body;
}

Test(tenancy, another_orgs_replication_is_404_like_a_missing_one)
{
	char *rg = vrt_new_replication(NULL, "tenant-a-only", false, NULL);
	char *before = vrt_db_fingerprint();
	for (size_t i = 0; i < N(actions); i++) {
		struct vrt_resp foreign, missing;
		act(actions[i].name, rg, &(struct act){.token = vrt_token(VRT_ADMIN_B)}, &foreign);
		act(actions[i].name, VRT_MISSING, &(struct act){.token = vrt_token(VRT_ADMIN_B)},
		    &missing);
		char *what = vrt_fmt("%s of org A's replication as admin-b", actions[i].name);
		vrt_assert_error(&foreign, 404, "RESOURCE_NOT_FOUND", what);
		vrt_assert_error(&missing, 404, "RESOURCE_NOT_FOUND", "a missing replication");
		char *a = not_found_shape(&foreign, rg),
		     *b = not_found_shape(&missing, VRT_MISSING);
		cr_assert_str_eq(a, b, "%s differs from a missing one", what);
		cr_assert_null(strstr(foreign.body, VRT_ORG_A_NAME), "%s leaks org A", what);
		free(a);
		free(b);
		free(what);
		vrt_resp_free(&foreign);
		vrt_resp_free(&missing);
		/* and the other way round */
		struct vrt_resp r;
		act(actions[i].name, VRT_REPL_B1, NULL, &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "org B's replication as admin-a");
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "after actions on another org's replications");
	vrt_assert_state(rg, "notStarted none ok false", "org A's replication");
	free(before);
	free(rg);
}

/* --- preconditions (reference 1.7, docs/state-machine.md) ------------------------------ */

Test(preconditions, VdcNotEnabledForRecoveryFault_for_test_failover_when_the_vdc_flag_is_off)
{
	char *vdc = vrt_new_vdc(true, false, true);
	char *rg = vrt_new_replication(vdc, "no-test-failover", false, NULL);
	assert_action_refused("testFailover", rg, NULL, "VdcNotEnabledForRecoveryFault", "403",
			      "ACCESS_TO_RESOURCE_IS_FORBIDDEN");
	free(rg);
	free(vdc);
}

Test(preconditions, VdcNotEnabledForRecoveryFault_for_failover_when_the_vdc_flag_is_off)
{
	char *vdc = vrt_new_vdc(false, true, true);
	char *rg = vrt_new_replication(vdc, "no-failover", false, NULL);
	assert_action_refused("failover", rg, NULL, "VdcNotEnabledForRecoveryFault", "403",
			      "ACCESS_TO_RESOURCE_IS_FORBIDDEN");
	free(rg);
	free(vdc);
}

Test(preconditions, VdcNotEnabledForRecoveryFault_for_planned_migration_when_the_flag_is_off)
{
	/* VDC A1 does not allow planned migrations */
	char *rg = vrt_new_replication(NULL, "no-planned-migration", false, NULL);
	assert_action_refused("plannedMigration", rg, NULL, "VdcNotEnabledForRecoveryFault", "403",
			      "ACCESS_TO_RESOURCE_IS_FORBIDDEN");
	free(rg);
}

Test(preconditions, OngoingFailover_for_test_failover_while_one_runs)
{
	char *rg = vrt_new_replication(NULL, "test-twice", false, NULL);
	struct vrt_resp r;
	act("testFailover", rg, NULL, &r);
	free(assert_accepted(&r, "testFailover", rg, "first test failover"));
	vrt_resp_free(&r);
	assert_action_refused("testFailover", rg, NULL, "OngoingFailover", "409", "BUSY_ENTITY");
	free(rg);
}

Test(preconditions, OngoingFailover_for_any_action_while_a_failover_runs)
{
	/* in a VDC that allows every recovery: the flags are checked first */
	char *vdc = vrt_new_vdc(true, true, true);
	char *rg = vrt_new_replication(vdc, "failover-running", false, NULL);
	struct vrt_resp r;
	act("failover", rg, NULL, &r);
	free(assert_accepted(&r, "failover", rg, "the failover"));
	vrt_resp_free(&r);
	for (size_t i = 0; i < N(actions); i++)
		assert_action_refused(actions[i].name, rg, NULL, "OngoingFailover", "409",
				      "BUSY_ENTITY");
	free(rg);
	free(vdc);
}

Test(preconditions, OngoingTestFailover_for_failover_while_a_test_failover_runs)
{
	char *rg = vrt_new_replication(NULL, "test-running", false,
				       "test_recovery_state = 'testInProgress'");
	assert_action_refused("failover", rg, NULL, "OngoingTestFailover", "409", "BUSY_ENTITY");
	assert_action_refused("delete", rg, NULL, "OngoingTestFailover", "409", "BUSY_ENTITY");
	free(rg);
}

Test(preconditions, OngoingTestCleanup_for_failover_while_a_test_cleanup_runs)
{
	char *rg = vrt_new_replication(NULL, "cleanup-running", false,
				       "test_recovery_state = 'cleanupInProgress'");
	assert_action_refused("failover", rg, NULL, "OngoingTestCleanup", "409", "BUSY_ENTITY");
	assert_action_refused("testCleanup", rg, NULL, "OngoingTestCleanup", "409", "BUSY_ENTITY");
	free(rg);
}

Test(preconditions, AlreadyTestRecovered_for_test_failover_after_a_complete_one)
{
	char *rg = vrt_new_replication(NULL, "tested", false, "test_recovery_state = 'complete'");
	assert_action_refused("testFailover", rg, NULL, "AlreadyTestRecovered", "409", "CONFLICT");
	free(rg);
	rg = vrt_new_replication(NULL, "test-failed", false, "test_recovery_state = 'testError'");
	assert_action_refused("testFailover", rg, NULL, "AlreadyTestRecovered", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, AlreadyRecovered_for_failover_after_a_recovered_one)
{
	char *rg =
		vrt_new_replication(NULL, "recovered", false,
				    "recovery_state = 'recovered', replication_state = 'notActive',"
				    " recovery_completion_time = now()");
	assert_action_refused("failover", rg, NULL, "AlreadyRecovered", "409", "CONFLICT");
	assert_action_refused("testFailover", rg, NULL, "AlreadyRecovered", "409", "CONFLICT");
	assert_action_refused("sync", rg, NULL, "AlreadyRecovered", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, NoInstanceAvailable_for_failover_without_an_instance)
{
	char *rg = vrt_new_replication(NULL, "no-instance", true, NULL);
	assert_action_refused("failover", rg, NULL, "NoInstanceAvailable", "409", "CONFLICT");
	assert_action_refused("testFailover", rg, NULL, "NoInstanceAvailable", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, NoTestFailoverToClean_for_test_cleanup_with_none)
{
	char *rg = vrt_new_replication(NULL, "nothing-to-clean", false, NULL);
	assert_action_refused("testCleanup", rg, NULL, "NoTestFailoverToClean", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, AlreadyPaused_for_pause_of_a_paused_replication)
{
	char *rg = vrt_new_replication(NULL, "paused", false, "paused = true, paused_at = now()");
	assert_action_refused("pause", rg, NULL, "AlreadyPaused", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, NotPaused_for_resume_when_not_paused)
{
	char *rg = vrt_new_replication(NULL, "not-paused", false, NULL);
	assert_action_refused("resume", rg, NULL, "NotPaused", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, ReplicationPaused_for_sync_of_a_paused_replication)
{
	char *rg = vrt_new_replication(NULL, "paused-sync", false, "paused = true");
	assert_action_refused("sync", rg, NULL, "ReplicationPaused", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, FailoverIncomplete_for_test_failover_after_a_failed_failover)
{
	char *rg = vrt_new_replication(NULL, "failover-failed", false, "recovery_state = 'error'");
	assert_action_refused("testFailover", rg, NULL, "FailoverIncomplete", "409", "CONFLICT");
	assert_action_refused("pause", rg, NULL, "FailoverIncomplete", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, TestCleanupRequired_for_test_failover_after_a_failed_cleanup)
{
	char *rg = vrt_new_replication(NULL, "cleanup-failed", false,
				       "test_recovery_state = 'cleanupError'");
	assert_action_refused("testFailover", rg, NULL, "TestCleanupRequired", "409", "CONFLICT");
	free(rg);
}

Test(preconditions, ReplicationBeingDeleted_for_every_action_once_a_delete_is_accepted)
{
	char *rg = vrt_new_replication(NULL, "being-deleted", false, NULL);
	struct vrt_resp r;
	act("delete", rg, NULL, &r);
	free(assert_accepted(&r, "delete", rg, "the delete"));
	vrt_resp_free(&r);
	for (size_t i = 0; i < N(actions); i++)
		assert_action_refused(actions[i].name, rg, NULL, "ReplicationBeingDeleted", "409",
				      "BUSY_ENTITY");
	free(rg);
}

/* --- operationKey (docs/pipeline.md) ---------------------------------------------------- */

static void post_with_key(const char *action, const char *rg, const char *user, const char *key,
			  struct vrt_resp *r)
{
	bool test = strcmp(action, "testFailover") == 0;
	char *body = vrt_fmt("<%s xmlns=\"" VRT_NS_VR "\" operationKey=\"%s\"/>",
			     test ? "TestFailoverParams" : "FailoverParams", key);
	act(action, rg,
	    &(struct act){.token = vrt_token(user),
			  .content_type = test ? VRT_MT_TEST : VRT_MT_FAILOVER,
			  .body = body},
	    r);
	free(body);
}

Test(operation_key, twice_from_the_same_user_answers_the_same_task)
{
	char *rg = vrt_new_replication(NULL, "keyed", false, NULL);
	char *key = vrt_fmt("key-%s", rg);
	struct vrt_resp first, again;
	post_with_key("testFailover", rg, VRT_ADMIN_A, key, &first);
	char *task = NULL;
	char *job = assert_accepted_as(&first, "testFailover", rg, VRT_ADMIN_A, &task, "first");
	vrt_assert_xstr(&first, "string(/v:Task/@operationKey)", key);
	char *before = vrt_db_fingerprint();
	post_with_key("testFailover", rg, VRT_ADMIN_A, key, &again);
	/* the same Task, not a refusal (OngoingFailover) and not a second job */
	cr_assert(again.status == 200 || again.status == 202, "again: %ld\n%s", again.status,
		  again.body);
	vrt_assert_valid(&again, "the repeated request");
	char *h1 = vrt_xstr(&first, "string(/v:Task/@href)"),
	     *h2 = vrt_xstr(&again, "string(/v:Task/@href)");
	cr_assert_str_eq(h2, h1, "a repeated operationKey made another Task");
	if (again.status == 202)
		cr_assert_str_eq(vrt_header(&again, "Location"), h1);
	vrt_assert_xstr(&again, "string(/v:Task/@status)", "queued");
	vrt_assert_unchanged_since(before, "after the repeated request");
	/* the key is the user's, whatever the action or replication */
	char *other = vrt_new_replication(NULL, "keyed-other", false, NULL);
	free(before);
	before = vrt_db_fingerprint();
	struct vrt_resp elsewhere;
	post_with_key("failover", other, VRT_ADMIN_A, key, &elsewhere);
	char *h3 = vrt_xstr(&elsewhere, "string(/v:Task/@href)");
	cr_assert_str_eq(h3, h1, "the same key on another action made another Task");
	vrt_assert_unchanged_since(before, "after the key on another action");
	vrt_assert_state(other, "notStarted none ok false", "the other replication");
	free(h3);
	vrt_resp_free(&elsewhere);
	free(other);
	free(h1);
	free(h2);
	free(before);
	free(job);
	free(task);
	free(key);
	free(rg);
	vrt_resp_free(&first);
	vrt_resp_free(&again);
}

Test(operation_key, the_same_key_from_another_user_makes_a_new_task)
{
	char *rg1 = vrt_new_replication(NULL, "keyed-1", false, NULL);
	char *rg2 = vrt_new_replication(NULL, "keyed-2", false, NULL);
	char *key = vrt_fmt("shared-%s", rg1);
	struct vrt_resp a, b;
	post_with_key("failover", rg1, VRT_ADMIN_A, key, &a);
	char *ta = NULL, *tb = NULL;
	char *ja = assert_accepted_as(&a, "failover", rg1, VRT_ADMIN_A, &ta, "admin-a's");
	post_with_key("failover", rg2, VRT_USER_A, key, &b);
	char *jb = assert_accepted_as(&b, "failover", rg2, VRT_USER_A, &tb, "user-a's");
	cr_assert_str_neq(ta, tb, "another user's key answered the first user's Task");
	cr_assert_str_neq(ja, jb);
	vrt_assert_xstr(&b, "string(/v:Task/@operationKey)", key);
	free(ja);
	free(jb);
	free(ta);
	free(tb);
	free(key);
	free(rg1);
	free(rg2);
	vrt_resp_free(&a);
	vrt_resp_free(&b);
}

Test(operation_key, a_refused_request_with_a_key_answers_its_refusal_again)
{
	char *rg = vrt_new_replication(NULL, "keyed-refused", true, NULL);
	char *key = vrt_fmt("refused-%s", rg);
	struct vrt_resp r, again;
	post_with_key("failover", rg, VRT_ADMIN_A, key, &r);
	char *task = assert_refused(&r, "failover", rg, "NoInstanceAvailable", "409", "CONFLICT",
				    "keyed failover without an instance");
	char *before = vrt_db_fingerprint();
	post_with_key("failover", rg, VRT_ADMIN_A, key, &again);
	char *h1 = vrt_xstr(&r, "string(/v:Task/@href)"),
	     *h2 = vrt_xstr(&again, "string(/v:Task/@href)");
	cr_assert_str_eq(h2, h1);
	vrt_assert_xstr(&again, "string(/v:Task/v:Error/@vendorSpecificErrorCode)",
			"NoInstanceAvailable");
	vrt_assert_unchanged_since(before, "after repeating a refused keyed request");
	free(before);
	free(h1);
	free(h2);
	free(task);
	free(key);
	free(rg);
	vrt_resp_free(&r);
	vrt_resp_free(&again);
}
