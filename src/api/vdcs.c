/* GET /api/vdc/{id}, its recovery details (U6) and listings (U4, U5, U7). */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum vdc_col {
	VDC_ID, VDC_NAME, VDC_DESCRIPTION, VDC_ORG_ID, VDC_ORG_NAME, VDC_REPLICATION,
	VDC_FAILOVER, VDC_TEST_FAILOVER, VDC_PLANNED_MIGRATION, VDC_CPU, VDC_MEMORY, VDC_STORAGE,
};

/* Fetch the VDC row; queues a reply and returns NULL when there is none. */
static PGresult *fetch_vdc(struct vr_request *req, enum MHD_Result *reply)
{
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		*reply = vr_reply_err(req, VR_EUNAVAIL);
		return NULL;
	}
	const char *params[] = {req->ids[0], vr_request_scope(req)};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "vdc_get", &res, 2, params);
	if (rc < 0) {
		*reply = vr_reply_db(req, rc);
		return NULL;
	}
	if (rc == 0) {
		PQclear(res);
		*reply = vr_reply_not_found(req, "VDC", req->ids[0]);
		return NULL;
	}
	return res;
}

static void capacity(struct vr_xml *w, const char *name, const char *units, const char *limit)
{
	vr_xml_start(w, name);
	vr_xml_elem(w, "Units", units);
	vr_xml_elem(w, "Allocated", "0");
	vr_xml_elem(w, "Limit", limit);
	vr_xml_elem(w, "Used", "0");
	vr_xml_end(w);
}

enum MHD_Result vr_api_vdc_get(struct vr_request *req)
{
	enum MHD_Result reply;
	PGresult *vdc = fetch_vdc(req, &reply);
	if (!vdc)
		return reply;
	const char *id = req->ids[0];
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vdc/%s", id);
	char *org = vr_href(req, "/api/org/%s", vr_db_str(vdc, 0, VDC_ORG_ID));
	vr_render_root(w, VR_NS_VCLOUD, "Vdc", self, VR_MT_VDC);
	vr_xml_attrf(w, "id", "urn:vcloud:vdc:%s", id);
	vr_xml_attr(w, "name", vr_db_str(vdc, 0, VDC_NAME));
	vr_xml_attr(w, "status", "1");
	vr_render_link(w, "Link", "up", VR_MT_ORG, org, vr_db_str(vdc, 0, VDC_ORG_NAME));
	char *href = vr_href(req, "/api/vdc/%s/recoveryDetails", id);
	vr_render_link(w, "Link", "down", VR_MT_RECOVERY_DETAILS, href, NULL);
	free(href);
	static const char *const listings[][2] = {
		{"down:replications", "replications"},
		{"down:failbackreplications", "failbackreplications"},
		{"down:peers", "peers"},
	};
	for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++) {
		href = vr_href(req, "/api/vdc/%s/%s", id, listings[i][1]);
		vr_render_link(w, "Link", listings[i][0], VR_MT_REFERENCES, href, NULL);
		free(href);
	}
	vr_xml_elem(w, "Description", vr_db_str(vdc, 0, VDC_DESCRIPTION));
	vr_xml_elem(w, "AllocationModel", "AllocationVApp");
	vr_xml_start(w, "ComputeCapacity");
	capacity(w, "Cpu", "MHz", vr_db_str(vdc, 0, VDC_CPU));
	capacity(w, "Memory", "MB", vr_db_str(vdc, 0, VDC_MEMORY));
	vr_xml_end(w);
	vr_xml_start(w, "ResourceEntities");
	vr_xml_end(w);
	vr_xml_elem_bool(w, "IsEnabled", true);
	vr_xml_end(w);
	free(self);
	free(org);
	PQclear(vdc);
	return vr_reply_xml(req, w, VR_MT_VDC);
}

enum MHD_Result vr_api_vdc_recovery_details_get(struct vr_request *req)
{
	enum MHD_Result reply;
	PGresult *vdc = fetch_vdc(req, &reply);
	if (!vdc)
		return reply;
	/* As in the product followed: the link exists on every VDC, but a VDC
	 * not enabled for replication has no recovery details. */
	if (!vr_db_bool(vdc, 0, VDC_REPLICATION)) {
		PQclear(vdc);
		return vr_reply_error(req, MHD_HTTP_NOT_FOUND, "RESOURCE_NOT_FOUND",
				      "VDC %s is not enabled for replication.", req->ids[0]);
	}
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vdc/%s/recoveryDetails", req->ids[0]);
	char *up = vr_href(req, "/api/vdc/%s", req->ids[0]);
	vr_render_root(w, VR_NS_VR, "VrRecoveryDetails", self, VR_MT_RECOVERY_DETAILS);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_VDC, up, vr_db_str(vdc, 0, VDC_NAME));
	vr_xml_elem_bool(w, "IsPlannedMigrationEnabled", vr_db_bool(vdc, 0, VDC_PLANNED_MIGRATION));
	vr_xml_elem_bool(w, "IsFailoverEnabled", vr_db_bool(vdc, 0, VDC_FAILOVER));
	vr_xml_elem_bool(w, "IsTestFailoverEnabled", vr_db_bool(vdc, 0, VDC_TEST_FAILOVER));
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(vdc);
	return vr_reply_xml(req, w, VR_MT_RECOVERY_DETAILS);
}

enum MHD_Result vr_api_vdc_replications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"vdc_visible", "VDC", "/api/vdc/", "replications_by_vdc", "incoming",
		"replications", VR_MT_RG, "replicationGroup", "/api/vr/replications/",
	};
	return vr_reply_listing(req, &listing);
}

enum MHD_Result vr_api_vdc_failbackreplications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"vdc_visible", "VDC", "/api/vdc/", "replications_by_vdc", "failback",
		"failbackreplications", VR_MT_FRG, "failbackReplicationGroup",
		"/api/vr/failbackreplications/",
	};
	return vr_reply_listing(req, &listing);
}

enum MHD_Result vr_api_vdc_peers_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"vdc_visible", "VDC", "/api/vdc/", "vdc_peers", NULL,
		"peers", VR_MT_PEER, "peer", "/api/vr/peers/",
	};
	return vr_reply_listing(req, &listing);
}
