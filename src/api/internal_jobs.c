/* Internal API of jobs (docs/pipeline.md): a worker starts a delivered job,
 * reports progress, and completes it; the API applies the job's effect in
 * the same transaction that ends it, so a job run twice acts once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

enum job_col {
	J_ID, J_TASK, J_ACTION, J_LANE, J_STATE, J_PARAMS, J_DELIVERIES, J_WORKER, J_ALIVE,
	J_BLOCKED, J_CANCEL, J_ORG,
};

/* Seconds without a heartbeat after which a running job's worker counts
 * as gone. */
#define JOB_STALE_SECONDS "60"

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

enum MHD_Result vr_api_internal_job_start(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &start_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *deliveries = vr_input_child_text(root, "Deliveries");
	char delivery_text[16];
	snprintf(delivery_text, sizeof delivery_text, "%ld",
		 deliveries ? strtol((const char *)deliveries, NULL, 10) : 1L);
	xmlFree(deliveries);

	struct vr_db *db = vr_request_db(req);
	if (!db) {
		xmlFreeDoc(doc);
		return vr_reply_err(req, VR_EUNAVAIL);
	}
	char server[VR_UUID_LEN + 1];
	int rc = vr_db_begin(db);
	if (rc) {
		xmlFreeDoc(doc);
		return vr_reply_db(req, rc);
	}
	PGresult *job = NULL;
	rc = owned_server(req, db, root, server);
	xmlFreeDoc(doc);
	if (rc) {
		vr_db_rollback(db);
		if (rc == VR_EFORBIDDEN)
			return vr_reply_error(req, MHD_HTTP_FORBIDDEN,
					      "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					      "ServerId names no replica server of this credential.");
		return vr_reply_err(req, rc);
	}
	const char *lock[] = {req->ids[0], JOB_STALE_SECONDS};
	rc = vr_db_exec(db, "job_lock", &job, 2, lock);
	if (rc <= 0) {
		vr_db_rollback(db);
		PQclear(job);
		return rc < 0 ? vr_reply_db(req, rc) : vr_reply_not_found(req, "job", req->ids[0]);
	}
	if (is_final(vr_db_str(job, 0, J_STATE))) {
		reply = conflict(req, "JOB_FINISHED", "The job has ended; acknowledge and drop it.");
		goto rollback;
	}
	if (vr_db_bool(job, 0, J_BLOCKED)) {
		reply = conflict(req, "JOB_NOT_HEAD",
				 "An older job of the same lane is still open; acknowledge and "
				 "drop this delivery, the job is published again in turn.");
		goto rollback;
	}
	if (strcmp(vr_db_str(job, 0, J_STATE), "running") == 0 && vr_db_bool(job, 0, J_ALIVE) &&
	    strcmp(vr_db_str(job, 0, J_WORKER), server) != 0) {
		reply = conflict(req, "JOB_RUNNING",
				 "Another replica server runs this job and is alive; acknowledge "
				 "and drop this delivery.");
		goto rollback;
	}
	const char *start[] = {req->ids[0], server, delivery_text};
	const char *task[] = {vr_db_str(job, 0, J_TASK)};
	rc = vr_db_exec(db, "job_start", NULL, 3, start);
	if (rc >= 0)
		rc = vr_db_exec(db, "job_task_running", NULL, 1, task);
	if (rc >= 0)
		rc = vr_db_commit(db);
	if (rc < 0) {
		vr_db_rollback(db);
		PQclear(job);
		return vr_reply_db(req, rc);
	}
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
rollback:
	vr_db_rollback(db);
	PQclear(job);
	return reply;
}

enum MHD_Result vr_api_internal_job_progress(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &progress_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *progress = vr_input_child_text(root, "Progress");
	xmlChar *server_text = vr_input_child_text(root, "ServerId");
	char progress_text[8], server[VR_UUID_LEN + 1] = "";
	snprintf(progress_text, sizeof progress_text, "%ld",
		 progress ? strtol((const char *)progress, NULL, 10) : 0L);
	bool server_ok = server_text && vr_uuid_canon(server, (const char *)server_text) == 0;
	xmlFree(progress);
	xmlFree(server_text);
	xmlFreeDoc(doc);
	if (!server_ok)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				      "JobProgress needs the ServerId of the server running the job.");
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *beat[] = {req->ids[0], server};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "job_heartbeat", &res, 2, beat);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(res);
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
