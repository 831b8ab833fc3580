/* GET /api/vr/replications/{id} (U15), /api/vr/failbackreplications/{id}
 * (U8): one document shape for both kinds, and the instances (U20). */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum rg_col {
	RG_ID, RG_NAME, RG_DESCRIPTION, RG_RPO, RG_QUIESCE, RG_COMPRESSION, RG_PLACEHOLDER,
	RG_EVENT_PARTITION, RG_STATE, RG_SERVER_ID, RG_SERVER_ADDRESS, RG_NEXT_SEQ, RG_PAUSED,
	RG_RPO_VIOLATION, RG_TEST_RECOVERY, RG_RECOVERY, RG_RECOVERY_TIME, RG_INST_ID,
	RG_INST_START, RG_INST_SECONDS, RG_INST_BYTES, RG_LAST_TEST_OP, RG_VDC_ID, RG_PEER_ID,
	RG_ORG_ID, RG_RETENTION,
};

struct rg_kind {
	const char *kind;       /* replications.kind */
	const char *root;       /* document element */
	const char *media_type;
	const char *urn_kind;
	const char *path;       /* href prefix */
	const char *what;       /* for error messages */
};

static const struct rg_kind incoming = {
	"incoming", "ReplicationGroup", VR_MT_RG, "replicationGroup", "/api/vr/replications/",
	"replication",
};
static const struct rg_kind failback = {
	"failback", "FailbackReplicationGroup", VR_MT_FRG, "failbackReplicationGroup",
	"/api/vr/failbackreplications/", "failback replication",
};

/* The retention rules ("instances:distance,..." in position order, NULL
 * when there are none) in vrcloud's extension (docs/configure.md). */
static void render_retention(struct vr_xml *w, PGresult *res)
{
	if (vr_db_isnull(res, 0, RG_RETENTION))
		return;
	vr_render_extension(w, "vcloud:VCloudExtension", "RetentionPolicy");
	const char *p = vr_db_str(res, 0, RG_RETENTION);
	long instances, distance;
	int used;
	while (sscanf(p, "%ld:%ld%n", &instances, &distance, &used) == 2) {
		vr_xml_start(w, "Rule");
		vr_xml_elemf(w, "NumberOfInstances", "%ld", instances);
		vr_xml_elemf(w, "DistanceMinutes", "%ld", distance);
		vr_xml_end(w);
		p += used;
		if (*p != ',')
			break;
		p++;
	}
	vr_xml_end(w);
	vr_xml_end(w);
}

static void render_group(struct vr_request *req, struct vr_xml *w, const struct rg_kind *k,
			 PGresult *res)
{
	const char *id = vr_db_str(res, 0, RG_ID);
	char *self = vr_href(req, "%s%s", k->path, id);
	vr_render_root(w, VR_NS_VR, k->root, self, k->media_type);
	vr_xml_attrf(w, "id", "urn:vcloud:%s:%s", k->urn_kind, id);
	vr_xml_attr(w, "name", vr_db_str(res, 0, RG_NAME));
	render_retention(w, res);

	char *href = vr_href(req, "/api/vdc/%s", vr_db_str(res, 0, RG_VDC_ID));
	vr_render_link(w, "vcloud:Link", "up", VR_MT_VDC, href, NULL);
	free(href);
	href = vr_href(req, "/api/vr/peers/%s", vr_db_str(res, 0, RG_PEER_ID));
	vr_render_link(w, "vcloud:Link", "up", VR_MT_PEER, href, NULL);
	free(href);
	if (k == &incoming) {
		href = vr_href(req, "%s%s/instances", k->path, id);
		vr_render_link(w, "vcloud:Link", "down", VR_MT_INSTANCES, href, NULL);
		free(href);
	}
	if (*vr_db_str(res, 0, RG_DESCRIPTION))
		vr_xml_elem(w, "vcloud:Description", vr_db_str(res, 0, RG_DESCRIPTION));

	vr_xml_elem(w, "Rpo", vr_db_str(res, 0, RG_RPO));
	vr_xml_elem_bool(w, "QuiesceGuestEnabled", vr_db_bool(res, 0, RG_QUIESCE));
	vr_xml_elem_bool(w, "NetworkCompressionEnabled", vr_db_bool(res, 0, RG_COMPRESSION));
	if (!vr_db_isnull(res, 0, RG_PLACEHOLDER))
		vr_xml_elemf(w, "PlaceholderVappId", "urn:vcloud:vapp:%s",
			     vr_db_str(res, 0, RG_PLACEHOLDER));
	vr_xml_elem(w, "EventPartitionId", vr_db_str(res, 0, RG_EVENT_PARTITION));
	vr_xml_elem(w, "ReplicationState", vr_db_str(res, 0, RG_STATE));
	if (!vr_db_isnull(res, 0, RG_SERVER_ID)) {
		vr_xml_start(w, "VrServerInfo");
		vr_xml_elem(w, "Uuid", vr_db_str(res, 0, RG_SERVER_ID));
		vr_xml_elem(w, "ReplicationTrafficAddress", vr_db_str(res, 0, RG_SERVER_ADDRESS));
		vr_xml_end(w);
	}
	vr_xml_elem(w, "NextInstanceSequenceNumber", vr_db_str(res, 0, RG_NEXT_SEQ));
	vr_xml_elem_bool(w, "Paused", vr_db_bool(res, 0, RG_PAUSED));
	vr_xml_elem(w, "CurrentRpoViolation", vr_db_str(res, 0, RG_RPO_VIOLATION));
	vr_xml_elem(w, "TestRecoveryState", vr_db_str(res, 0, RG_TEST_RECOVERY));
	vr_xml_elem(w, "RecoveryState", vr_db_str(res, 0, RG_RECOVERY));
	if (!vr_db_isnull(res, 0, RG_RECOVERY_TIME))
		vr_xml_elem(w, "RecoveryCompletionTime", vr_db_str(res, 0, RG_RECOVERY_TIME));
	if (!vr_db_isnull(res, 0, RG_INST_ID)) {
		vr_xml_start(w, "ReplicationGroupInstance");
		vr_xml_elem(w, "Id", vr_db_str(res, 0, RG_INST_ID));
		vr_xml_elem(w, "TransferStartTime", vr_db_str(res, 0, RG_INST_START));
		vr_xml_elem(w, "TransferSeconds", vr_db_str(res, 0, RG_INST_SECONDS));
		vr_xml_elem(w, "TransferBytes", vr_db_str(res, 0, RG_INST_BYTES));
		vr_xml_end(w);
	}
	if (!vr_db_isnull(res, 0, RG_LAST_TEST_OP))
		vr_xml_elem(w, "LastTestFailoverOperationId", vr_db_str(res, 0, RG_LAST_TEST_OP));
	vr_xml_end(w);
	free(self);
}

static enum MHD_Result get_group(struct vr_request *req, const struct rg_kind *k)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {req->ids[0], vr_request_scope(req), k->kind};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "replication_get", &res, 3, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(res);
		return vr_reply_not_found(req, k->what, req->ids[0]);
	}
	struct vr_xml *w = vr_xml_new();
	render_group(req, w, k, res);
	PQclear(res);
	return vr_reply_xml(req, w, k->media_type);
}

enum MHD_Result vr_api_replication_get(struct vr_request *req)
{
	return get_group(req, &incoming);
}

enum MHD_Result vr_api_failbackreplication_get(struct vr_request *req)
{
	return get_group(req, &failback);
}

enum MHD_Result vr_api_replication_instances_get(struct vr_request *req)
{
	enum MHD_Result reply;
	PGresult *res = NULL;
	int rc = 0;
	if (!vr_api_fetch_children(req, "replication_visible", "replication",
				   "replication_instances", &res, &rc, &reply))
		return reply;
	const char *id = req->ids[0];
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vr/replications/%s/instances", id);
	char *up = vr_href(req, "/api/vr/replications/%s", id);
	vr_render_root(w, VR_NS_VR, "ReplicationGroupInstanceList", self, VR_MT_INSTANCES);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_RG, up, NULL);
	for (int i = 0; i < rc; i++) {
		vr_xml_start(w, "Instance");
		vr_xml_elem(w, "Id", vr_db_str(res, i, 0));
		vr_xml_elem(w, "TransferStartTime", vr_db_str(res, i, 1));
		vr_xml_elem(w, "TransferSeconds", vr_db_str(res, i, 2));
		vr_xml_elem(w, "TransferBytes", vr_db_str(res, i, 3));
		vr_xml_end(w);
	}
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_INSTANCES);
}
