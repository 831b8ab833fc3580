/* Internal API of jobs (docs/pipeline.md): a worker starts a delivered job,
 * reports progress, and completes it; the API applies the job's effect in
 * the same transaction that ends it, so a job run twice acts once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

enum job_col {
	J_ID, J_TASK, J_ACTION, J_LANE, J_STATE, J_PARAMS, J_DELIVERIES, J_WORKER, J_ALIVE,
	J_BLOCKED, J_CANCEL, J_ORG,
};


static const struct vr_input_spec start_spec = {
	"JobStart", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};
static const struct vr_input_spec progress_spec = {
	"JobProgress", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

static bool is_final(const char *state)
{
	return strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;
}

static enum MHD_Result conflict(struct vr_request *req, const char *minor, const char *message)
{
	return vr_reply_error(req, MHD_HTTP_CONFLICT, minor, "%s", message);
}

/* The <ServerId> of a body, checked to be a server of the caller's own. */
static int owned_server(struct vr_request *req, struct vr_db *db, xmlNodePtr root,
			char server_out[VR_UUID_LEN + 1])
{
	xmlChar *text = vr_input_child_text(root, "ServerId");
	int rc = text && vr_uuid_canon(server_out, (const char *)text) == 0 ? 0 : VR_EINVAL;
	xmlFree(text);
	if (rc)
		return rc;
	const char *params[] = {server_out, req->who.user_name};
	int n = vr_db_exec(db, "job_server_owned", NULL, 2, params);
	if (n < 0)
		return n == VR_DB_SOFT ? VR_EUNAVAIL : VR_EDB;
	return n == 1 ? 0 : VR_EFORBIDDEN;
}

/* owned_server, answering for the caller when it fails: false after the
 * reply (403, 503, 500) is queued. */
static bool caller_server(struct vr_request *req, struct vr_db *db, xmlNodePtr root,
			  char server_out[VR_UUID_LEN + 1], enum MHD_Result *reply_out)
{
	int rc = owned_server(req, db, root, server_out);
	if (rc == 0)
		return true;
	if (rc == VR_EFORBIDDEN || rc == VR_EINVAL)
		*reply_out = vr_reply_error(req, MHD_HTTP_FORBIDDEN,
					    "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					    "ServerId names no replica server of this credential.");
	else
		*reply_out = vr_reply_err(req, rc);
	return false;
}

/* The starting transaction of job req->ids[0] for server. Returns 0 with
 * *job_out (the job's row) and delivery_text set to the recorded number of
 * deliveries, STARTED_REPLIED once a refusal is queued in *reply, or a db
 * status. */
#define STARTED_REPLIED 1
static int start_in_transaction(struct vr_request *req, struct vr_db *db, const char *server,
				char delivery_text[16], PGresult **job_out, enum MHD_Result *reply)
{
	*job_out = NULL;
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	char stale[16];
	snprintf(stale, sizeof stale, "%u", vr_server_config(req->server)->jobs_stale_after);
	const char *lock[] = {req->ids[0], stale};
	PGresult *job = NULL;
	rc = vr_db_exec(db, "job_lock", &job, 2, lock);
	if (rc <= 0) {
		vr_db_rollback(db);
		PQclear(job);
		if (rc < 0)
			return rc;
		*reply = vr_reply_not_found(req, "job", req->ids[0]);
		return STARTED_REPLIED;
	}
	*reply = MHD_NO;
	if (is_final(vr_db_str(job, 0, J_STATE)))
		*reply = conflict(req, "JOB_FINISHED", "The job has ended; acknowledge and drop it.");
	else if (vr_db_bool(job, 0, J_BLOCKED))
		*reply = conflict(req, "JOB_NOT_HEAD",
				  "An older job of the same lane is still open; acknowledge and "
				  "drop this delivery, the job is published again in turn.");
	else if (strcmp(vr_db_str(job, 0, J_STATE), "running") == 0 &&
		 vr_db_bool(job, 0, J_ALIVE) && strcmp(vr_db_str(job, 0, J_WORKER), server) != 0)
		*reply = conflict(req, "JOB_RUNNING",
				  "Another replica server runs this job and is alive; acknowledge "
				  "and drop this delivery.");
	else
		rc = 0;
	if (rc) {
		vr_db_rollback(db);
		PQclear(job);
		return STARTED_REPLIED;
	}
	const char *start[] = {req->ids[0], server, delivery_text};
	const char *task[] = {vr_db_str(job, 0, J_TASK)};
	const char *assign[] = {vr_db_str(job, 0, J_LANE), server};
	PGresult *started = NULL;
	rc = vr_db_exec(db, "job_start", &started, 3, start);
	if (rc == 1)
		snprintf(delivery_text, 16, "%s", vr_db_str(started, 0, 0));
	PQclear(started);
	if (rc >= 0)
		rc = vr_db_exec(db, "job_assign_server", NULL, 2, assign);
	if (rc >= 0)
		rc = vr_db_exec(db, "job_task_running", NULL, 1, task);
	if (rc >= 0)
		rc = vr_db_commit(db);
	if (rc < 0) {
		vr_db_rollback(db);
		PQclear(job);
		return rc;
	}
	*job_out = job;
	return 0;
}

enum MHD_Result vr_api_internal_job_start(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &start_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *deliveries = vr_input_child_text(root, "Deliveries");
	long delivered = deliveries ? strtol((const char *)deliveries, NULL, 10) : 1L;
	xmlFree(deliveries);
	delivered = delivered < 1 ? 1L : delivered > 1000000 ? 1000000L : delivered;

	struct vr_db *db = vr_request_db(req);
	if (!db) {
		xmlFreeDoc(doc);
		return vr_reply_err(req, VR_EUNAVAIL);
	}
	char server[VR_UUID_LEN + 1];
	bool owned = caller_server(req, db, root, server, &reply);
	xmlFreeDoc(doc);
	if (!owned)
		return reply;
	/* The publisher stamps a job's row right after its XADD, so a start
	 * may meet a serialization failure: retried here, not by the worker. */
	PGresult *job = NULL;
	char delivery_text[16];
	int rc = VR_DB_SOFT;
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		snprintf(delivery_text, sizeof delivery_text, "%ld", delivered);
		rc = start_in_transaction(req, db, server, delivery_text, &job, &reply);
	}
	if (rc == STARTED_REPLIED)
		return reply;
	if (rc < 0)
		return vr_reply_db(req, rc);
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "Job");
	vr_xml_attr(w, "xmlns", VR_NS_INTERNAL);
	vr_xml_elem(w, "Id", vr_db_str(job, 0, J_ID));
	vr_xml_elem(w, "TaskId", vr_db_str(job, 0, J_TASK));
	vr_xml_elem(w, "Action", vr_db_str(job, 0, J_ACTION));
	vr_xml_elem(w, "Lane", vr_db_str(job, 0, J_LANE));
	vr_xml_elem(w, "State", "running");
	vr_xml_elem(w, "Deliveries", delivery_text);
	vr_xml_elem(w, "Params", vr_db_str(job, 0, J_PARAMS));
	vr_xml_end(w);
	PQclear(job);
	return vr_reply_xml(req, w, VR_MT_INTERNAL);
}

enum MHD_Result vr_api_internal_job_progress(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &progress_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *progress = vr_input_child_text(root, "Progress");
	char progress_text[8], server[VR_UUID_LEN + 1];
	snprintf(progress_text, sizeof progress_text, "%ld",
		 progress ? strtol((const char *)progress, NULL, 10) : 0L);
	xmlFree(progress);
	struct vr_db *db = vr_request_db(req);
	bool owned = db && caller_server(req, db, root, server, &reply);
	xmlFreeDoc(doc);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	if (!owned)
		return reply;
	const char *beat[] = {req->ids[0], server};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "job_heartbeat", &res, 2, beat);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(res);
		const char *id[] = {req->ids[0]};
		rc = vr_db_exec(db, "job_exists", NULL, 1, id);
		if (rc < 0)
			return vr_reply_db(req, rc);
		if (rc == 0)
			return vr_reply_not_found(req, "job", req->ids[0]);
		return conflict(req, "JOB_NOT_RUNNING",
				"The job is not running on this server (it ended, or another "
				"server took it over).");
	}
	const char *task[] = {vr_db_str(res, 0, 0), progress_text};
	PGresult *t = NULL;
	rc = vr_db_exec(db, "job_task_progress", &t, 2, task);
	PQclear(res);
	if (rc < 0)
		return vr_reply_db(req, rc);
	bool cancel = rc == 1 && vr_db_bool(t, 0, 0);
	PQclear(t);
	if (cancel)
		return conflict(req, "JOB_CANCEL_REQUESTED",
				"The Task's cancellation was asked: stop and complete the job as "
				"canceled.");
	return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

static const struct vr_input_spec result_spec = {
	"JobResult", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

/* End a job and its Task with outcome, applying the effect, all at once. */
static enum MHD_Result finish_job(struct vr_request *req, const char *outcome, const char *major,
				  const char *minor, const char *vendor, const char *message,
				  bool dead, xmlNodePtr result)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	char stale[16];
	snprintf(stale, sizeof stale, "%u", vr_server_config(req->server)->jobs_stale_after);
	char lane[128] = "";
	int rc = VR_DB_SOFT;
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		rc = vr_db_begin(db);
		if (rc)
			continue;
		PGresult *job = NULL;
		const char *lock[] = {req->ids[0], stale};
		rc = vr_db_exec(db, "job_lock", &job, 2, lock);
		if (rc <= 0) {
			PQclear(job);
			vr_db_rollback(db);
			if (rc == 0)
				return vr_reply_not_found(req, "job", req->ids[0]);
			continue;
		}
		if (is_final(vr_db_str(job, 0, J_STATE))) {
			/* Already ended: the first result stands. */
			PQclear(job);
			vr_db_rollback(db);
			return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
		}
		bool ok = strcmp(outcome, "success") == 0;
		bool canceled = strcmp(outcome, "canceled") == 0;
		/* A canceled job did not happen: what its acceptance changed goes
		 * back (cancel.c). */
		if (canceled)
			rc = vr_api_job_cancel_effect(db, req->ids[0], vr_db_str(job, 0, J_LANE),
						      vr_db_str(job, 0, J_ACTION),
						      vr_db_str(job, 0, J_TASK),
						      vr_db_str(job, 0, J_PARAMS));
		else
			rc = vr_api_job_effect(db, vr_db_str(job, 0, J_LANE),
					       vr_db_str(job, 0, J_ACTION), vr_db_str(job, 0, J_TASK),
					       vr_db_str(job, 0, J_PARAMS), ok);
		if (ok && rc >= 0)
			rc = vr_api_job_recovered(db, vr_db_str(job, 0, J_LANE),
						  vr_db_str(job, 0, J_ACTION), result);
		const char *task_status = ok ? "success" : canceled ? "canceled" : "error";
		const char *job_state = ok ? "succeeded" : canceled ? "canceled" : dead ? "dead"
											  : "failed";
		const char *finish_task[] = {vr_db_str(job, 0, J_TASK), task_status,
					     ok || canceled ? NULL : major,
					     ok || canceled ? NULL : minor,
					     ok || canceled ? NULL : vendor,
					     ok || canceled ? NULL : message};
		const char *finish[] = {req->ids[0], job_state};
		if (rc >= 0)
			rc = vr_db_exec(db, "job_task_finish", NULL, 6, finish_task);
		if (rc >= 0)
			rc = vr_db_exec(db, "job_finish", NULL, 2, finish);
		snprintf(lane, sizeof lane, "%s", vr_db_str(job, 0, J_LANE));
		PQclear(job);
		if (rc >= 0)
			rc = vr_db_commit(db);
		else
			vr_db_rollback(db);
	}
	if (rc < 0)
		return vr_reply_db(req, rc);
	vr_api_publish_lane(req, lane);
	return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result result_route(struct vr_request *req, bool dead)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &result_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		xmlFreeDoc(doc);
		return vr_reply_err(req, VR_EUNAVAIL);
	}
	char server[VR_UUID_LEN + 1];
	if (!caller_server(req, db, root, server, &reply)) {
		xmlFreeDoc(doc);
		return reply;
	}
	xmlChar *outcome = vr_input_child_text(root, "Outcome");
	xmlChar *major = vr_input_child_text(root, "MajorErrorCode");
	xmlChar *minor = vr_input_child_text(root, "MinorErrorCode");
	xmlChar *vendor = vr_input_child_text(root, "VendorSpecificErrorCode");
	xmlChar *message = vr_input_child_text(root, "Message");
	if (dead)
		reply = finish_job(req, "error", "500", "INTERNAL_SERVER_ERROR",
				   "JobDeliveryExhausted",
				   message ? (const char *)message
					   : "The job failed on every replica server that took it.",
				   true, NULL);
	else
		reply = finish_job(req, (const char *)outcome, major ? (const char *)major : "500",
				   minor ? (const char *)minor : "INTERNAL_SERVER_ERROR",
				   (const char *)vendor,
				   message ? (const char *)message : "The job failed.", false,
				   root);
	xmlFree(outcome);
	xmlFree(major);
	xmlFree(minor);
	xmlFree(vendor);
	xmlFree(message);
	xmlFreeDoc(doc);
	return reply;
}

enum MHD_Result vr_api_internal_job_complete(struct vr_request *req)
{
	return result_route(req, false);
}

enum MHD_Result vr_api_internal_job_dead(struct vr_request *req)
{
	return result_route(req, true);
}
