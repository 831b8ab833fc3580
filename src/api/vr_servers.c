/* The provider's view of the replica servers (vrcloud-workers that stage
 * replica data): GET /api/admin/extension/vr/vrServers (their
 * References), GET .../vrs/{id} (E2, AdminVrServer), DELETE .../vrs/{id}
 * (E3, unregister: a Task and a job on the server's lane; effects.c marks
 * it unregistered when the job succeeds) and GET .../vrs/{id}/statistics
 * (E4, VrServerStatistics). An unregistered server is gone from all of
 * them. */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/err.h"

#define VR_MT_VR_SERVER_STATISTICS "application/vnd.vmware.hcs.vrServerStatistics+xml"

enum server_col { S_ID, S_NAME, S_ADDRESS, S_STATE, S_REGISTERED, S_HEARTBEAT, S_REPLICATIONS };
enum stats_col { T_ID, T_REPLICATIONS, T_DISKS, T_IN, T_OUT, T_ERRORS, T_START };
enum lock_col { K_ORG, K_NAME, K_UNREGISTERING };

enum MHD_Result vr_api_admin_vr_servers_get(struct vr_request *req)
{
	return vr_reply_references(req, "vr_servers_page", NULL, 0,
				   "/api/admin/extension/vr/vrServers", "vrServers",
				   VR_MT_VR_SERVER, "vrServer", "/api/admin/extension/vr/vrs/");
}

/* One row of stmt for the server req->ids[0]: true with *res_out, or false
 * after queueing the reply (404, 503, 500). */
static bool fetch_server(struct vr_request *req, const char *stmt, PGresult **res_out,
			 enum MHD_Result *reply_out)
{
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		*reply_out = vr_reply_err(req, VR_EUNAVAIL);
		return false;
	}
	const char *params[] = {req->ids[0]};
	int rc = vr_db_exec(db, stmt, res_out, 1, params);
	if (rc == 1)
		return true;
	PQclear(*res_out);
	*res_out = NULL;
	*reply_out = rc < 0 ? vr_reply_db(req, rc)
			    : vr_reply_not_found(req, "replica server", req->ids[0]);
	return false;
}

enum MHD_Result vr_api_admin_vr_server_get(struct vr_request *req)
{
	PGresult *res = NULL;
	enum MHD_Result reply;
	if (!fetch_server(req, "vr_server_get", &res, &reply))
		return reply;
	const char *id = vr_db_str(res, 0, S_ID);
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/admin/extension/vr/vrs/%s", id);
	vr_render_root(w, VR_NS_VR, "AdminVrServer", self, VR_MT_VR_SERVER);
	vr_xml_attrf(w, "id", "urn:vcloud:vrServer:%s", id);
	vr_xml_attr(w, "name", vr_db_str(res, 0, S_NAME));
	char *href = vr_href(req, "/api/admin/extension/vr/vrServers");
	vr_render_link(w, "vcloud:Link", "up", VR_MT_REFERENCES, href, NULL);
	free(href);
	href = vr_href(req, "/api/admin/extension/vr/vrs/%s/statistics", id);
	vr_render_link(w, "vcloud:Link", "down", VR_MT_VR_SERVER_STATISTICS, href, NULL);
	free(href);
	vr_render_link(w, "vcloud:Link", "remove", NULL, self, NULL);
	vr_xml_elem(w, "Uuid", id);
	vr_xml_elem(w, "ReplicationTrafficAddress", vr_db_str(res, 0, S_ADDRESS));
	vr_xml_elem(w, "State", vr_db_str(res, 0, S_STATE));
	vr_xml_elem(w, "RegisteredAt", vr_db_str(res, 0, S_REGISTERED));
	vr_xml_elem(w, "LastHeartbeat", vr_db_str(res, 0, S_HEARTBEAT));
	vr_xml_elem(w, "ReplicationsCount", vr_db_str(res, 0, S_REPLICATIONS));
	vr_xml_end(w);
	free(self);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_VR_SERVER);
}

/* Inbound, Outbound, Errors and StartTime of one kind of traffic. */
static void network_statistics(struct vr_xml *w, const char *elem, const char *in, const char *out,
			       const char *errors, const char *start)
{
	vr_xml_start(w, elem);
	vr_xml_elem(w, "Inbound", in);
	vr_xml_elem(w, "Outbound", out);
	vr_xml_elem(w, "Errors", errors);
	vr_xml_elem(w, "StartTime", start);
	vr_xml_end(w);
}

enum MHD_Result vr_api_admin_vr_server_statistics_get(struct vr_request *req)
{
	PGresult *res = NULL;
	enum MHD_Result reply;
	if (!fetch_server(req, "vr_server_statistics", &res, &reply))
		return reply;
	const char *id = vr_db_str(res, 0, T_ID);
	const char *start = vr_db_str(res, 0, T_START);
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/admin/extension/vr/vrs/%s/statistics", id);
	char *up = vr_href(req, "/api/admin/extension/vr/vrs/%s", id);
	vr_render_root(w, VR_NS_VR, "VrServerStatistics", self, VR_MT_VR_SERVER_STATISTICS);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_VR_SERVER, up, NULL);
	vr_xml_elem(w, "ReplicationsCount", vr_db_str(res, 0, T_REPLICATIONS));
	vr_xml_elem(w, "DisksCount", vr_db_str(res, 0, T_DISKS));
	/* Replica data reaches a vrcloud server over its one transfer
	 * protocol, counted as LWD traffic; nothing travels by NFC. */
	network_statistics(w, "LwdStatistics", vr_db_str(res, 0, T_IN), vr_db_str(res, 0, T_OUT),
			   vr_db_str(res, 0, T_ERRORS), start);
	network_statistics(w, "NfcStatistics", "0", "0", "0", start);
	vr_xml_elem(w, "StartTime", start);
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_VR_SERVER_STATISTICS);
}

static const struct vr_engine_refusal being_unregistered = {
	"ServerBeingUnregistered", 409, "BUSY_ENTITY",
	"The replica server is being unregistered already."};

static const struct vr_engine_refusal *check_server(PGresult *locked)
{
	return vr_db_bool(locked, 0, K_UNREGISTERING) ? &being_unregistered : NULL;
}

/* Any body and Content-Type are ignored, as on the other removals. */
enum MHD_Result vr_api_admin_vr_server_delete(struct vr_request *req)
{
	struct vr_lane_request a = {
		.lock_stmt = "server_lock",
		.what = "replica server",
		.owner_kind = "vrServer",
		.lane_prefix = "server:",
		.action = "unregisterServer",
		.operation = "Unregistration of replica server",
		.operation_name = "hcsUnregisterVrServer",
		.check = check_server,
	};
	return vr_api_accept_lane(req, &a);
}
