/* GET /api/task/{id} and the org's Tasks list (POST .../action/cancel: cancel.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum task_col {
	T_ID, T_OPERATION, T_OPERATION_NAME, T_STATUS, T_PROGRESS, T_START, T_END, T_EXPIRY,
	T_CANCEL, T_OPERATION_KEY, T_OWNER_KIND, T_OWNER_ID, T_OWNER_NAME, T_ERR_MAJOR,
	T_ERR_MINOR, T_ERR_VENDOR, T_ERR_MESSAGE, T_USER_ID, T_USER_NAME, T_ORG_ID, T_ORG_NAME,
	T_DETAILS,
};

/* How an owner kind is addressed on the wire. */
static const struct {
	const char *kind;
	const char *media_type;
	const char *path;
} owners[] = {
	{"replication", VR_MT_RG, "/api/vr/replications/"},
	{"failbackReplication", VR_MT_FRG, "/api/vr/failbackreplications/"},
	{"vdc", VR_MT_VDC, "/api/vdc/"},
	{"peer", VR_MT_PEER, "/api/vr/peers/"},
	{"org", VR_MT_ORG, "/api/org/"},
	{"vrServer", VR_MT_VR_SERVER, "/api/admin/extension/vr/vrs/"},
};

enum MHD_Result vr_api_task_get(struct vr_request *req)
{
	return vr_reply_task(req, req->ids[0], MHD_HTTP_OK);
}

/* One Task element from row of a task_get-shaped result; root: as the
 * document's root (with its namespace). secret (NULL: none) goes into a
 * VCloudExtension, the first child. */
static void render_task(struct vr_request *req, struct vr_xml *w, PGresult *t, int row, bool root,
			const struct vr_task_secret *secret)
{
	const char *status = vr_db_str(t, row, T_STATUS);
	bool finished = !vr_db_isnull(t, row, T_END);
	const char *id = vr_db_str(t, row, T_ID);
	char *self = vr_href(req, "/api/task/%s", id);
	if (root) {
		vr_render_root(w, VR_NS_VCLOUD, "Task", self, VR_MT_TASK);
	} else {
		vr_xml_start(w, "Task");
		vr_xml_attr(w, "href", self);
		vr_xml_attr(w, "type", VR_MT_TASK);
	}
	vr_xml_attrf(w, "id", "urn:vcloud:task:%s", id);
	if (!vr_db_isnull(t, row, T_OPERATION_KEY))
		vr_xml_attr(w, "operationKey", vr_db_str(t, row, T_OPERATION_KEY));
	vr_xml_attr(w, "name", "task");
	vr_xml_attr(w, "status", status);
	vr_xml_attr(w, "operation", vr_db_str(t, row, T_OPERATION));
	vr_xml_attr(w, "operationName", vr_db_str(t, row, T_OPERATION_NAME));
	vr_xml_attr(w, "serviceNamespace", "com.vmware.vr");
	vr_xml_attr(w, "startTime", vr_db_str(t, row, T_START));
	if (finished)
		vr_xml_attr(w, "endTime", vr_db_str(t, row, T_END));
	vr_xml_attr(w, "expiryTime", vr_db_str(t, row, T_EXPIRY));
	vr_xml_attr(w, "cancelRequested", vr_db_bool(t, row, T_CANCEL) ? "true" : "false");
	if (secret) {
		vr_render_extension(w, "VCloudExtension", secret->element);
		vr_xml_text(w, secret->value);
		vr_xml_end(w);
		vr_xml_end(w);
	}
	/* As vCD: while the Task may still be canceled (queued or running). */
	if (!finished && (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)) {
		char *cancel = vr_href(req, "/api/task/%s/action/cancel", id);
		vr_render_link(w, "Link", "task:cancel", NULL, cancel, NULL);
		free(cancel);
	}

	if (!vr_db_isnull(t, row, T_OWNER_ID)) {
		const char *kind = vr_db_str(t, row, T_OWNER_KIND);
		for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
			if (strcmp(owners[i].kind, kind) != 0)
				continue;
			char *href = vr_href(req, "%s%s", owners[i].path, vr_db_str(t, row, T_OWNER_ID));
			vr_render_ref(w, "Owner", owners[i].media_type, href, NULL,
				      vr_db_str(t, row, T_OWNER_NAME));
			free(href);
		}
	}
	if (strcmp(status, "error") == 0) {
		vr_xml_start(w, "Error");
		vr_xml_attr(w, "majorErrorCode", vr_db_isnull(t, row, T_ERR_MAJOR)
							  ? "500"
							  : vr_db_str(t, row, T_ERR_MAJOR));
		vr_xml_attr(w, "minorErrorCode", vr_db_isnull(t, row, T_ERR_MINOR)
							  ? "INTERNAL_SERVER_ERROR"
							  : vr_db_str(t, row, T_ERR_MINOR));
		vr_xml_attr(w, "message", vr_db_str(t, row, T_ERR_MESSAGE));
		if (!vr_db_isnull(t, row, T_ERR_VENDOR))
			vr_xml_attr(w, "vendorSpecificErrorCode", vr_db_str(t, row, T_ERR_VENDOR));
		vr_xml_end(w);
	}
	if (!vr_db_isnull(t, row, T_USER_ID)) {
		char *href = vr_href(req, "/api/admin/user/%s", vr_db_str(t, row, T_USER_ID));
		vr_render_ref(w, "User", VR_MT_USER, href, NULL, vr_db_str(t, row, T_USER_NAME));
		free(href);
	}
	char *org = vr_href(req, "/api/org/%s", vr_db_str(t, row, T_ORG_ID));
	vr_render_ref(w, "Organization", VR_MT_ORG, org, NULL, vr_db_str(t, row, T_ORG_NAME));
	free(org);
	/* Always present: one client takes a missing Progress for "done". */
	vr_xml_elem(w, "Progress", finished ? "100" : vr_db_str(t, row, T_PROGRESS));
	if (*vr_db_str(t, row, T_DETAILS))
		vr_xml_elem(w, "Details", vr_db_str(t, row, T_DETAILS));
	vr_xml_end(w);
	free(self);
}

static enum MHD_Result reply_task(struct vr_request *req, const char *id, unsigned status_code,
				  const struct vr_task_secret *secret)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {id, vr_request_scope(req)};
	PGresult *t = NULL;
	int rc = vr_db_exec(db, "task_get", &t, 2, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(t);
		return vr_reply_not_found(req, "task", id);
	}
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/task/%s", id);
	render_task(req, w, t, 0, true, secret);
	PQclear(t);
	if (status_code == MHD_HTTP_OK) {
		free(self);
		return vr_reply_xml(req, w, VR_MT_TASK);
	}
	/* An accepted asynchronous request: 202 + Location of its Task. */
	struct MHD_Response *response = vr_response_from_xml(w);
	if (!response) {
		free(self);
		return vr_reply_err(req, VR_ENOMEM);
	}
	char *content_type = vr_asprintf("%s;version=%s", VR_MT_TASK,
					 req->version ? req->version : VR_API_VERSION_LATEST);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, self);
	if (secret)
		MHD_add_response_header(response, secret->header, secret->value);
	free(content_type);
	free(self);
	return vr_reply_response(req, status_code, response);
}

enum MHD_Result vr_reply_task(struct vr_request *req, const char *id, unsigned status_code)
{
	return reply_task(req, id, status_code, NULL);
}

enum MHD_Result vr_reply_task_secret(struct vr_request *req, const char *id,
				     const struct vr_task_secret *secret)
{
	return reply_task(req, id, MHD_HTTP_ACCEPTED, secret);
}

/* GET /api/tasksList/{orgId}: the org's Tasks, newest first, one page. */
enum MHD_Result vr_api_tasks_list_get(struct vr_request *req)
{
	enum MHD_Result reply;
	if (vr_api_visible(req, "org_visible", "organization", &reply) != 1)
		return reply;
	struct vr_page page;
	if (!vr_page_parse(req, &page, &reply))
		return reply;
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *org = req->ids[0];
	const char *count_params[] = {org};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "tasks_of_org_count", &res, 1, count_params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	page.total = vr_db_int(res, 0, 0);
	PQclear(res);
	char limit[24], offset[24];
	vr_page_sql(&page, limit, offset);
	const char *params[] = {org, limit, offset};
	rc = vr_db_exec(db, "tasks_of_org", &res, 3, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	char *path = vr_asprintf("/api/tasksList/%s", org);
	struct vr_xml *w = vr_xml_new();
	if (vr_render_container(req, w, VR_NS_VCLOUD, "TasksList", VR_MT_TASKS_LIST, "tasksList",
				&page, path))
		for (int i = 0; i < rc; i++)
			render_task(req, w, res, i, false, NULL);
	vr_xml_end(w);
	free(path);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_TASKS_LIST);
}
