/* The action table and how a job run ends, with a recording reporter in
 * place of the API; and the backoff of the daemon's retries. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vrcloud/engine.h"
#include "vrcloud/err.h"
#include "vrcloud/worker.h"
#include "worker/internal.h"

#define RG	 "6f1c2a9e-4b7d-4e0a-9c3b-2d5e8f7a1b60"
#define INSTANCE "0b8e6c1d-2f3a-4b5c-8d9e-1a2b3c4d5e6f"

/* What the reporter saw, and what it answers at a given progress. */
struct recorder {
	int calls;
	int progress[8];
	char messages[8][256];
	int stop_at; /* answer stop_with when this progress is reported */
	int stop_with;
};

static int record(struct vr_job_run *run, int progress, const char *message)
{
	struct recorder *r = run->report_arg;
	if (r->calls < 8) {
		r->progress[r->calls] = progress;
		snprintf(r->messages[r->calls], sizeof r->messages[0], "%s", message);
	}
	r->calls++;
	return progress == r->stop_at ? r->stop_with : 0;
}

static int run_job(const char *action, const char *lane, const char *params, struct recorder *rec,
		   struct vr_worker_result *result, struct vr_job_run *run)
{
	static struct vr_worker_job job;
	memset(&job, 0, sizeof job);
	snprintf(job.action, sizeof job.action, "%s", action);
	snprintf(job.lane, sizeof job.lane, "%s", lane);
	job.params = (char *)params;
	memset(run, 0, sizeof *run);
	run->job = &job;
	run->server_name = "worker-1";
	run->report = record;
	run->report_arg = rec;
	return vr_worker_job_execute(run, result);
}

/* The actions of jobs on other lanes than a replication's, and their lanes. */
static const struct {
	const char *name, *prefix;
} lane_actions[] = {
	{"setNetworkMappings", "peer:"},
	{"editRecoveryDetails", "vdc:"},
	{"unregisterServer", "server:"},
	{"pair", "peer:"},
};
#define N_LANE_ACTIONS (sizeof lane_actions / sizeof lane_actions[0])

/* The lane prefix of an action's jobs. */
static const char *lane_prefix(const char *action)
{
	for (size_t i = 0; i < N_LANE_ACTIONS; i++)
		if (strcmp(lane_actions[i].name, action) == 0)
			return lane_actions[i].prefix;
	return "replication:";
}

Test(worker_actions, every_engine_action_has_an_entry)
{
	for (int a = 0; a < VR_ACTION_COUNT; a++) {
		const char *token = vr_engine_action_token((enum vr_action)a);
		cr_assert_not_null(token);
		const struct vr_job_action *entry = vr_worker_action_find(token);
		cr_assert_not_null(entry, "no entry for %s", token);
		cr_assert_str_eq(entry->name, token);
		cr_assert_not_null(entry->run);
	}
	size_t n = 0;
	for (const struct vr_job_action *e = vr_worker_actions; e->name; e++, n++) {
		enum vr_action parsed;
		bool lane_action = strcmp(lane_prefix(e->name), "replication:") != 0;
		cr_assert(lane_action || vr_engine_action_parse(&parsed, e->name) == 0,
			  "%s is no action of the engine nor of another lane", e->name);
		cr_assert(!lane_action || vr_engine_action_parse(&parsed, e->name) != 0,
			  "%s is an action of the engine", e->name);
		cr_assert_eq(vr_worker_action_find(e->name), e, "%s is listed twice", e->name);
	}
	cr_assert_eq(n, VR_ACTION_COUNT + N_LANE_ACTIONS);
	for (size_t i = 0; i < N_LANE_ACTIONS; i++)
		cr_assert_not_null(vr_worker_action_find(lane_actions[i].name), "no entry for %s",
				   lane_actions[i].name);
	cr_assert_null(vr_worker_action_find("Failover"), "names are case-sensitive");
	cr_assert_null(vr_worker_action_find(""));
	cr_assert_null(vr_worker_action_find(NULL));
}

Test(worker_actions, every_action_reports_three_phases_and_succeeds)
{
	for (const struct vr_job_action *e = vr_worker_actions; e->name; e++) {
		struct recorder rec = {.stop_at = -1};
		struct vr_worker_result result;
		struct vr_job_run run;
		char lane[64];
		snprintf(lane, sizeof lane, "%s%s", lane_prefix(e->name), RG);
		int status = run_job(e->name, lane, "", &rec, &result, &run);
		cr_assert_eq(status, VR_JOB_SUCCEEDED, "%s", e->name);
		cr_assert_eq(result.outcome, VR_OUTCOME_SUCCESS);
		cr_assert_null(result.vendor);
		cr_assert_eq(rec.calls, 3, "%s", e->name);
		cr_assert_eq(rec.progress[0], 10);
		cr_assert_eq(rec.progress[1], 50);
		cr_assert_eq(rec.progress[2], 90);
		for (int i = 0; i < 3; i++)
			cr_assert_gt(strlen(rec.messages[i]), 0);
	}
}

Test(worker_actions, failover_reads_its_parameters)
{
	struct recorder rec = {.stop_at = -1};
	struct vr_worker_result result;
	struct vr_job_run run;
	int status = run_job(
		"failover", "replication:" RG,
		"{\"PowerOn\": false, \"Synchronize\": false, \"InstanceId\": \"" INSTANCE "\"}",
		&rec, &result, &run);
	cr_assert_eq(status, VR_JOB_SUCCEEDED);
	cr_assert_not_null(strstr(rec.messages[0], RG), "%s", rec.messages[0]);
	cr_assert_not_null(strstr(rec.messages[2], "instance " INSTANCE), "%s", rec.messages[2]);
	cr_assert_not_null(strstr(rec.messages[2], "powered off"), "%s", rec.messages[2]);

	rec = (struct recorder){.stop_at = -1};
	status = run_job("testFailover", "replication:" RG,
			 "{\"PowerOn\": true, \"Synchronize\": true, \"InstanceId\": null}", &rec,
			 &result, &run);
	cr_assert_eq(status, VR_JOB_SUCCEEDED);
	cr_assert_not_null(strstr(rec.messages[0], "synchronizing"), "%s", rec.messages[0]);
	cr_assert_not_null(strstr(rec.messages[2], "powering on"), "%s", rec.messages[2]);
}

Test(worker_actions, pair_names_its_peer_and_needs_a_peer_lane)
{
	struct recorder rec = {.stop_at = -1};
	struct vr_worker_result result;
	struct vr_job_run run;
	int status = run_job("pair", "peer:" RG, "{\"SiteName\": \"Head Office\"}", &rec,
			     &result, &run);
	cr_assert_eq(status, VR_JOB_SUCCEEDED);
	cr_assert_eq(rec.calls, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_not_null(strstr(rec.messages[i], "peer " RG), "%s", rec.messages[i]);
	cr_assert_not_null(strstr(rec.messages[2], "credential"), "%s", rec.messages[2]);

	/* a peer's action on a replication's lane, and the other way round */
	rec = (struct recorder){.stop_at = -1};
	cr_assert_eq(run_job("pair", "replication:" RG, "", &rec, &result, &run), VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	cr_assert_not_null(strstr(result.message, "names no peer"), "%s", result.message);
	cr_assert_eq(run_job("pair", "peer:not-a-uuid", "", &rec, &result, &run), VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	cr_assert_eq(run_job("configure", "peer:" RG, "", &rec, &result, &run), VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	cr_assert_eq(rec.calls, 0, "nothing is reported before the lane is checked");
}

Test(worker_actions, unknown_action_fails_without_progress)
{
	struct recorder rec = {.stop_at = -1};
	struct vr_worker_result result;
	struct vr_job_run run;
	int status = run_job("explode", "replication:" RG, "", &rec, &result, &run);
	cr_assert_eq(status, VR_JOB_FAILED);
	cr_assert_eq(rec.calls, 0);
	cr_assert_eq(result.outcome, VR_OUTCOME_ERROR);
	cr_assert_eq(result.major, 500);
	cr_assert_str_eq(result.minor, "INTERNAL_SERVER_ERROR");
	cr_assert_str_eq(result.vendor, "UnknownJobAction");
	cr_assert_not_null(strstr(result.message, "'explode'"), "%s", result.message);
}

Test(worker_actions, bad_lane_and_bad_parameters_fail_the_job)
{
	struct recorder rec = {.stop_at = -1};
	struct vr_worker_result result;
	struct vr_job_run run;
	cr_assert_eq(run_job("pause", "vdc:" RG, "", &rec, &result, &run), VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	cr_assert_eq(run_job("pause", "replication:../../etc", "", &rec, &result, &run),
		     VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	/* the other lanes' jobs check theirs too */
	for (size_t i = 0; i < N_LANE_ACTIONS; i++) {
		cr_assert_eq(run_job(lane_actions[i].name, "replication:" RG, "", &rec, &result,
				     &run),
			     VR_JOB_FAILED, "%s on a replication's lane", lane_actions[i].name);
		cr_assert_str_eq(result.vendor, "JobLaneInvalid");
		char lane[64];
		snprintf(lane, sizeof lane, "%snot-a-uuid", lane_actions[i].prefix);
		cr_assert_eq(run_job(lane_actions[i].name, lane, "", &rec, &result, &run),
			     VR_JOB_FAILED, "%s on %s", lane_actions[i].name, lane);
		cr_assert_str_eq(result.vendor, "JobLaneInvalid");
	}
	cr_assert_eq(run_job("failover", "replication:" RG, "{\"PowerOn\": \"no\"}", &rec, &result,
			     &run),
		     VR_JOB_FAILED);
	cr_assert_str_eq(result.vendor, "JobParamsInvalid");
	cr_assert_eq(result.outcome, VR_OUTCOME_ERROR);
	cr_assert_eq(rec.calls, 0, "nothing is reported before the checks pass");
}

Test(worker_actions, cancel_stops_the_job_as_canceled)
{
	struct recorder rec = {.stop_at = 50, .stop_with = VR_JOB_CANCELED};
	struct vr_worker_result result;
	struct vr_job_run run;
	int status = run_job("sync", "replication:" RG, "", &rec, &result, &run);
	cr_assert_eq(status, VR_JOB_CANCELED);
	cr_assert_eq(rec.calls, 2, "no phase after the cancel");
	cr_assert_eq(result.outcome, VR_OUTCOME_CANCELED);
}

Test(worker_actions, lost_and_aborted_jobs_have_no_result)
{
	static const int stops[] = {VR_JOB_LOST, VR_JOB_ABORTED};
	for (size_t i = 0; i < 2; i++) {
		struct recorder rec = {.stop_at = 10, .stop_with = stops[i]};
		struct vr_worker_result result;
		struct vr_job_run run;
		int status =
			run_job("plannedMigration", "replication:" RG, "", &rec, &result, &run);
		cr_assert_eq(status, stops[i]);
		cr_assert_eq(rec.calls, 1);
	}
}

Test(worker_actions, run_without_reporter)
{
	struct vr_worker_job job;
	memset(&job, 0, sizeof job);
	snprintf(job.action, sizeof job.action, "delete");
	snprintf(job.lane, sizeof job.lane, "replication:" RG);
	struct vr_job_run run = {.job = &job};
	struct vr_worker_result result;
	cr_assert_eq(vr_worker_job_execute(&run, &result), VR_JOB_SUCCEEDED);
}

Test(worker_actions, backoff_grows_to_thirty_seconds_with_jitter)
{
	unsigned seed = 42;
	static const unsigned base[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (unsigned attempt = 0; attempt < 40; attempt++) {
		unsigned nominal = base[attempt < 6 ? attempt : 6];
		for (int i = 0; i < 50; i++) {
			unsigned ms = vr_worker_backoff_ms(attempt, &seed);
			cr_assert_geq(ms, nominal - nominal / 5, "attempt %u: %u", attempt, ms);
			cr_assert_leq(ms, nominal + nominal / 5, "attempt %u: %u", attempt, ms);
		}
	}
}
