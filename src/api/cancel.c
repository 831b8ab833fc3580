/* POST /api/task/{id}/action/cancel (vCD CancelTask, reference 4.5, 6.4):
 * a queued job is canceled at once, a running one is asked to stop through
 * its worker's next progress report (docs/pipeline.md, section 5). Either
 * way a canceled job did not happen: the replication state its acceptance
 * changed goes back to what it was before. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/auth.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/err.h"

enum task_col { C_TASK, C_USER, C_JOB };
/* Columns of job_lock (src/db/jobs.c). */
enum job_col { J_ID, J_TASK, J_ACTION, J_LANE, J_STATE, J_PARAMS };

static const char lane_prefix[] = "replication:";

/* The four recorded or current state fields of a row; false when one of
 * them is not a state token. */
static bool read_state(PGresult *res, struct vr_rg_state *s)
{
	memset(s, 0, sizeof *s);
	if (vr_engine_recovery_parse(&s->recovery, vr_db_str(res, 0, 0)) ||
	    vr_engine_test_recovery_parse(&s->test_recovery, vr_db_str(res, 0, 1)) ||
	    vr_engine_replication_parse(&s->replication, vr_db_str(res, 0, 2)))
		return false;
	s->paused = vr_db_bool(res, 0, 3);
	return true;
}

int vr_api_job_restore(struct vr_db *db, const char *job, const char *lane, const char *action,
		       bool *restored_out)
{
	*restored_out = false;
	if (strncmp(lane, lane_prefix, sizeof lane_prefix - 1) != 0)
		return 0;
	const char *rg = lane + sizeof lane_prefix - 1;
	const char *job_param[] = {job};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "cancel_job_prior", &res, 1, job_param);
	if (rc <= 0 || vr_db_isnull(res, 0, 0)) {
		PQclear(res);
		return rc < 0 ? rc : 0; /* nothing recorded: not ours to restore */
	}
	struct vr_rg_state prior, begun, now;
	enum vr_action a;
	bool readable = read_state(res, &prior) && vr_engine_action_parse(&a, action) == 0;
	PQclear(res);
	if (!readable)
		return VR_DB_HARD;
	begun = prior;
	vr_engine_begin(&begun, a);

	const char *rg_param[] = {rg};
	rc = vr_db_exec(db, "cancel_replication_lock", &res, 1, rg_param);
	if (rc <= 0) {
		PQclear(res);
		*restored_out = rc == 0; /* the replication is gone: nothing to put back */
		return rc;
	}
	readable = read_state(res, &now);
	PQclear(res);
	if (!readable)
		return VR_DB_HARD;
	/* Only what the acceptance changed goes back, and only while it still
	 * holds that value: fields that jobs before this one in the lane (or
	 * the data plane) changed since stay as they are now. */
	if (begun.recovery != prior.recovery && now.recovery == begun.recovery)
		now.recovery = prior.recovery;
	if (begun.test_recovery != prior.test_recovery && now.test_recovery == begun.test_recovery)
		now.test_recovery = prior.test_recovery;
	if (begun.replication != prior.replication && now.replication == begun.replication)
		now.replication = prior.replication;
	if (begun.paused != prior.paused && now.paused == begun.paused)
		now.paused = prior.paused;
	const char *set[] = {rg, vr_engine_recovery_token(now.recovery),
			     vr_engine_test_recovery_token(now.test_recovery),
			     vr_engine_replication_token(now.replication),
			     now.paused ? "true" : "false"};
	rc = vr_db_exec(db, "action_replication_set_state", NULL, 5, set);
	*restored_out = rc >= 0;
	return rc;
}

int vr_api_job_cancel_effect(struct vr_db *db, const char *job, const char *lane,
			     const char *action, const char *task, const char *params)
{
	bool restored = false;
	int rc = vr_api_job_restore(db, job, lane, action, &restored);
	if (rc >= 0 && !restored)
		rc = vr_api_job_effect(db, lane, action, task, params, false);
	return rc;
}

int vr_api_job_record_prior(struct vr_db *db, const char *job, const struct vr_rg_state *prior)
{
	const char *set[] = {job, vr_engine_recovery_token(prior->recovery),
			     vr_engine_test_recovery_token(prior->test_recovery),
			     vr_engine_replication_token(prior->replication),
			     prior->paused ? "true" : "false"};
	return vr_db_exec(db, "cancel_job_record_prior", NULL, 5, set);
}

enum cancel_outcome {
	CANCEL_NOW,	  /* the Task ended canceled in this transaction */
	CANCEL_REQUESTED, /* its job runs: the worker is told to stop */
	CANCEL_FINISHED,  /* nothing left to cancel */
	CANCEL_FORBIDDEN, /* another user's Task, and not an administrator */
};

/* May the caller cancel a Task of user `owner` in its own org (or any org,
 * for a System administrator)? */
static bool may_cancel(const struct vr_request *req, const char *owner)
{
	return req->who.role == VR_ROLE_SYSADMIN || req->who.role == VR_ROLE_ORG_ADMIN ||
	       strcmp(owner, req->who.user_id) == 0;
}

/* End a Task, and its queued job (row `job` of job_lock, or NULL), as
 * canceled. */
static int cancel_now(struct vr_db *db, const char *task, PGresult *job)
{
	int rc = 0;
	if (job) {
		const char *id = vr_db_str(job, 0, J_ID);
		rc = vr_api_job_cancel_effect(db, id, vr_db_str(job, 0, J_LANE),
					      vr_db_str(job, 0, J_ACTION), task,
					      vr_db_str(job, 0, J_PARAMS));
		if (rc >= 0) {
			const char *finish[] = {id, "canceled"};
			rc = vr_db_exec(db, "job_finish", NULL, 2, finish);
		}
	}
	/* the canceled Task shows that a cancel was asked for */
	const char *finish_task[] = {task, "canceled", NULL, NULL, NULL, NULL};
	const char *request[] = {task};
	if (rc >= 0)
		rc = vr_db_exec(db, "cancel_task_request", NULL, 1, request);
	return rc < 0 ? rc : vr_db_exec(db, "job_task_finish", NULL, 6, finish_task);
}

/* The cancelling transaction: locks the job, then the replication, then
 * the Task, in the order the job routes take them. Returns 0 with
 * *outcome_out (and lane_out when a job of a lane was canceled), or
 * VR_ENOTFOUND / a negative db status. */
static int cancel_in_transaction(struct vr_request *req, struct vr_db *db,
				 enum cancel_outcome *outcome_out, char lane_out[128])
{
	lane_out[0] = '\0';
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	PGresult *task = NULL, *job = NULL, *lock = NULL;
	bool changed = false;
	const char *params[] = {req->ids[0], vr_request_scope(req)};
	rc = vr_db_exec(db, "cancel_task_get", &task, 2, params);
	if (rc <= 0) {
		rc = rc < 0 ? rc : VR_ENOTFOUND;
		goto done;
	}
	if (!may_cancel(req, vr_db_str(task, 0, C_USER))) {
		*outcome_out = CANCEL_FORBIDDEN;
		rc = 0;
		goto done;
	}
	bool has_job = !vr_db_isnull(task, 0, C_JOB);
	const char *job_id = has_job ? vr_db_str(task, 0, C_JOB) : NULL;
	if (has_job) {
		char stale[16];
		snprintf(stale, sizeof stale, "%u",
			 vr_server_config(req->server)->jobs_stale_after);
		const char *lock_job[] = {job_id, stale};
		rc = vr_db_exec(db, "job_lock", &job, 2, lock_job);
		if (rc <= 0) {
			rc = rc < 0 ? rc : VR_ENOTFOUND;
			goto done;
		}
	}
	const char *task_param[] = {req->ids[0]};
	rc = vr_db_exec(db, "cancel_task_lock", &lock, 1, task_param);
	if (rc <= 0) {
		rc = rc < 0 ? rc : VR_ENOTFOUND;
		goto done;
	}
	const char *state = has_job ? vr_db_str(job, 0, J_STATE) : "queued";
	if (vr_db_bool(lock, 0, 0) ||
	    (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)) {
		*outcome_out = CANCEL_FINISHED;
		rc = 0;
		goto done;
	}
	if (strcmp(state, "running") == 0) {
		rc = vr_db_exec(db, "cancel_task_request", NULL, 1, task_param);
		*outcome_out = CANCEL_REQUESTED;
	} else {
		/* Queued, or a Task no job will ever end: canceled at once. */
		rc = cancel_now(db, req->ids[0], job);
		snprintf(lane_out, 128, "%s", has_job ? vr_db_str(job, 0, J_LANE) : "");
		*outcome_out = CANCEL_NOW;
	}
	changed = rc >= 0;
done:
	PQclear(task);
	PQclear(job);
	PQclear(lock);
	if (changed)
		return vr_db_commit(db);
	vr_db_rollback(db);
	return rc;
}

enum MHD_Result vr_api_task_cancel(struct vr_request *req)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	enum cancel_outcome outcome = CANCEL_FINISHED;
	char lane[128] = "";
	int rc = VR_DB_SOFT;
	/* Serialization failures (a job route took the job first) and lost
	 * connections are retried. */
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++)
		rc = cancel_in_transaction(req, db, &outcome, lane);
	if (rc == VR_ENOTFOUND)
		return vr_reply_not_found(req, "task", req->ids[0]);
	if (rc < 0)
		return vr_reply_db(req, rc);
	switch (outcome) {
	case CANCEL_FORBIDDEN:
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "Only the user who started the Task, an administrator of its "
				      "organization or a System administrator may cancel it.");
	case CANCEL_FINISHED:
		return vr_reply_error(req, MHD_HTTP_CONFLICT, "CONFLICT",
				      "Task %s has already finished; it cannot be canceled.",
				      req->ids[0]);
	case CANCEL_NOW:
		/* The lane's next job may start now. */
		if (lane[0])
			vr_api_publish_lane(req, lane);
		break;
	case CANCEL_REQUESTED: break;
	}
	return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
}
