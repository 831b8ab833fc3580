/* Internal API of replica servers (workers): register, heartbeat, leave.
 * A server registers under the name of its service credential, so one
 * credential cannot act for another server. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"

const char *const vr_internal_media_types[] = {VR_MT_INTERNAL, "application/xml", NULL};

static const struct vr_input_spec server_spec = {
	"ReplicaServer", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

static enum MHD_Result render_server(struct vr_request *req, PGresult *res)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "ReplicaServer");
	vr_xml_attr(w, "xmlns", VR_NS_INTERNAL);
	vr_xml_elem(w, "Id", vr_db_str(res, 0, 0));
	vr_xml_elem(w, "Name", vr_db_str(res, 0, 1));
	vr_xml_elem(w, "TrafficAddress", vr_db_str(res, 0, 2));
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_INTERNAL);
}

enum MHD_Result vr_api_internal_server_register(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &server_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *name = vr_input_child_text(root, "Name");
	xmlChar *address = vr_input_child_text(root, "TrafficAddress");
	/* who.org_name holds a service credential's kind. */
	if (strcmp(req->who.org_name, "worker") != 0) {
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				       "Only worker credentials register as replica servers.");
		goto cleanup;
	}
	if (name && strcmp((const char *)name, req->who.user_name) != 0) {
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				       "A server registers under its own credential's name (%s).",
				       req->who.user_name);
		goto cleanup;
	}
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		reply = vr_reply_err(req, VR_EUNAVAIL);
		goto cleanup;
	}
	const char *params[] = {req->who.user_name, (const char *)address};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "server_register", &res, 2, params);
	if (rc == 0) {
		PQclear(res);
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				       "The provider unregistered the replica server %s.",
				       req->who.user_name);
		goto cleanup;
	}
	if (rc != 1) {
		PQclear(res);
		reply = vr_reply_db(req, rc < 0 ? rc : VR_DB_HARD);
		goto cleanup;
	}
	reply = render_server(req, res);
	PQclear(res);
cleanup:
	xmlFree(name);
	xmlFree(address);
	xmlFreeDoc(doc);
	return reply;
}

static enum MHD_Result server_update(struct vr_request *req, const char *stmt)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {req->ids[0], req->who.user_name};
	int rc = vr_db_exec(db, stmt, NULL, 2, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0)
		return vr_reply_not_found(req, "replica server of this credential", req->ids[0]);
	return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

static const struct vr_input_spec statistics_spec = {
	"ServerStatistics", VR_NS_INTERNAL, vr_internal_media_types, false, true,
};

/* A child holding a count that fits a bigint, copied into out. */
static bool child_count(xmlNodePtr root, const char *name, char out[24])
{
	char *text = vr_input_child_trimmed(root, name);
	char *end = NULL;
	errno = 0;
	unsigned long long v = text && isdigit((unsigned char)text[0])
				       ? strtoull(text, &end, 10)
				       : ULLONG_MAX;
	bool ok = text && end && *end == '\0' && errno == 0 && v <= (unsigned long long)INT64_MAX;
	free(text);
	if (ok)
		snprintf(out, 24, "%llu", v);
	return ok;
}

/* A heartbeat, with what the server counted since the last one when it
 * sends ServerStatistics (docs/worker.md). */
enum MHD_Result vr_api_internal_server_heartbeat(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &statistics_spec, &doc, &reply))
		return reply;
	if (!doc)
		return server_update(req, "server_heartbeat");
	xmlNodePtr root = xmlDocGetRootElement(doc);
	char in[24], out[24], errors[24];
	bool ok = child_count(root, "BytesIn", in) && child_count(root, "BytesOut", out) &&
		  child_count(root, "TransferErrors", errors);
	xmlFreeDoc(doc);
	if (!ok)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				      "The counts of ServerStatistics must be 0 to %lld.",
				      (long long)INT64_MAX);
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {req->ids[0], req->who.user_name, in, out, errors};
	int rc = vr_db_exec(db, "server_heartbeat_counts", NULL, 5, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0)
		return vr_reply_not_found(req, "replica server of this credential", req->ids[0]);
	return vr_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

enum MHD_Result vr_api_internal_server_leave(struct vr_request *req)
{
	return server_update(req, "server_leave");
}
