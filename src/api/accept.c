/* Accepting a job on a lane that is not a replication's (a peer's, a VDC's,
 * a replica server's): the object is locked, a precondition may refuse the
 * request with an error Task, and otherwise the Task, the job and whatever
 * the job stages are written in one transaction, then the lane is
 * published (docs/pipeline.md). Replications go through their state
 * machine instead (actions.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum lock_col { L_ORG, L_NAME };

void vr_api_read_operation_key(xmlNodePtr root, char out[VR_OPERATION_KEY_SIZE])
{
	out[0] = '\0';
	xmlChar *key = root ? xmlGetProp(root, BAD_CAST "operationKey") : NULL;
	if (key)
		snprintf(out, VR_OPERATION_KEY_SIZE, "%s", (const char *)key);
	xmlFree(key);
}

/* The Task an earlier request of this user with this key made: 1 and
 * task_out, 0 when none, or a db status. */
static int task_by_key(struct vr_request *req, struct vr_db *db, const char *key,
		       char task_out[VR_UUID_LEN + 1])
{
	const char *params[] = {req->who.user_id, key};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "action_task_by_key", &res, 2, params);
	if (rc == 1)
		snprintf(task_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	return rc;
}

/* The accepted job, and what it stages. Returns a db status. */
static int insert_job(struct vr_db *db, const struct vr_lane_request *a, const char *task,
		      const char *org, const char *lane, char job_out[VR_UUID_LEN + 1])
{
	const char *job[] = {task, org, lane, a->action, a->params ? a->params : "{}"};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "action_job_insert", &res, 5, job);
	if (rc == 1)
		snprintf(job_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	if (rc != 1)
		return rc < 0 ? rc : VR_DB_HARD;
	return a->stage ? a->stage(db, job_out, a->stage_arg) : 0;
}

/* The accepting transaction. Returns 0 with task_out (and job_out when a
 * job was made), VR_ENOTFOUND, or a db status. */
static int accept_in_transaction(struct vr_request *req, struct vr_db *db,
				 const struct vr_lane_request *a, char task_out[VR_UUID_LEN + 1],
				 char job_out[VR_UUID_LEN + 1], char lane_out[VR_LANE_SIZE])
{
	job_out[0] = '\0';
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	if (a->operation_key[0]) {
		rc = task_by_key(req, db, a->operation_key, task_out);
		if (rc != 0) {
			vr_db_rollback(db);
			return rc < 0 ? rc : 0;
		}
	}
	PGresult *locked = NULL, *res = NULL;
	const char *lock[] = {req->ids[0], vr_request_scope(req)};
	rc = vr_db_exec(db, a->lock_stmt, &locked, 2, lock);
	if (rc <= 0) {
		rc = rc < 0 ? rc : VR_ENOTFOUND;
		goto fail;
	}
	const struct vr_engine_refusal *refusal = a->check ? a->check(locked) : NULL;
	char *operation = vr_asprintf("%s %s", a->operation, vr_db_str(locked, 0, L_NAME));
	const char *task[] = {vr_db_str(locked, 0, L_ORG),
			      req->who.user_id,
			      req->who.user_name,
			      a->owner_kind,
			      req->ids[0],
			      vr_db_str(locked, 0, L_NAME),
			      operation,
			      a->operation_name,
			      a->operation_key[0] ? a->operation_key : NULL};
	rc = vr_db_exec(db, "action_task_insert", &res, 9, task);
	free(operation);
	if (rc != 1) {
		rc = rc < 0 ? rc : VR_DB_HARD;
		goto fail;
	}
	snprintf(task_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
	if (refusal) {
		char major[8];
		snprintf(major, sizeof major, "%u", refusal->major);
		const char *refuse[] = {task_out, major, refusal->minor, refusal->vendor_code,
					refusal->message};
		rc = vr_db_exec(db, "action_task_refuse", NULL, 5, refuse);
	} else {
		snprintf(lane_out, VR_LANE_SIZE, "%s%s", a->lane_prefix, req->ids[0]);
		rc = insert_job(db, a, task_out, vr_db_str(locked, 0, L_ORG), lane_out, job_out);
	}
	if (rc < 0)
		goto fail;
	PQclear(res);
	PQclear(locked);
	return vr_db_commit(db);
fail:
	job_out[0] = '\0';
	PQclear(res);
	PQclear(locked);
	vr_db_rollback(db);
	return rc;
}

enum MHD_Result vr_api_accept_lane(struct vr_request *req, const struct vr_lane_request *a)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	char task[VR_UUID_LEN + 1], job[VR_UUID_LEN + 1], lane[VR_LANE_SIZE] = "";
	int rc = VR_DB_SOFT;
	/* Serialization failures and lost connections are retried; of two
	 * requests with one operationKey, the loser finds the winner's Task
	 * on the next attempt. */
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		rc = accept_in_transaction(req, db, a, task, job, lane);
		if (rc == VR_DB_HARD && a->operation_key[0] &&
		    strcmp(vr_db_last_sqlstate(db), "23505") == 0)
			rc = VR_DB_SOFT;
	}
	if (rc == VR_ENOTFOUND)
		return vr_reply_not_found(req, a->what, req->ids[0]);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (job[0])
		vr_api_publish_lane(req, lane);
	return vr_reply_task(req, task, MHD_HTTP_ACCEPTED);
}
