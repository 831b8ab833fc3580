/* Provider-side reads: the vCD typed query of VDCs, the service nodes (A2)
 * and per-disk details of a replication (A4). */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

/* Count + page in two statements; queues a reply and returns false on error. */
static bool fetch_page(struct vr_request *req, const char *count_stmt, const char *page_stmt,
		       const char *scope, bool scoped, struct vr_page *page, PGresult **res_out,
		       int *rows_out, enum MHD_Result *reply)
{
	if (!vr_page_parse(req, page, reply))
		return false;
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		*reply = vr_reply_err(req, VR_EUNAVAIL);
		return false;
	}
	char limit[24], offset[24];
	vr_page_sql(page, limit, offset);
	const char *count_params[] = {scope};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, count_stmt, &res, scoped ? 1 : 0, count_params);
	if (rc < 0) {
		*reply = vr_reply_db(req, rc);
		return false;
	}
	page->total = vr_db_int(res, 0, 0);
	PQclear(res);
	const char *scoped_params[] = {scope, limit, offset};
	const char *plain_params[] = {limit, offset};
	rc = vr_db_exec(db, page_stmt, res_out, scoped ? 3 : 2,
			scoped ? scoped_params : plain_params);
	if (rc < 0) {
		*reply = vr_reply_db(req, rc);
		return false;
	}
	*rows_out = rc;
	return true;
}

enum MHD_Result vr_api_admin_vdcs_query_get(struct vr_request *req)
{
	struct vr_page page;
	PGresult *res = NULL;
	int rows = 0;
	enum MHD_Result reply;
	if (!fetch_page(req, "vdc_query_count", "vdc_query_page", vr_request_scope(req), true,
			&page, &res, &rows, &reply))
		return reply;
	struct vr_xml *w = vr_xml_new();
	if (vr_render_container(req, w, VR_NS_VCLOUD, "QueryResultRecords", VR_MT_RECORDS,
				"orgVdc", &page, "/api/admin/vdcs/query")) {
		for (int i = 0; i < rows; i++) {
			char *href = vr_href(req, "/api/vdc/%s", vr_db_str(res, i, 0));
			vr_xml_start(w, "OrgVdcRecord");
			vr_xml_attr(w, "href", href);
			vr_xml_attr(w, "type", VR_MT_VDC);
			vr_xml_attr(w, "name", vr_db_str(res, i, 1));
			vr_xml_attr(w, "orgName", vr_db_str(res, i, 2));
			vr_xml_attr(w, "isEnabled", "true");
			vr_xml_attr(w, "isSystemVdc", "false");
			vr_xml_attr(w, "status", "READY");
			vr_xml_attr(w, "allocationModel", "AllocationVApp");
			vr_xml_attr(w, "cpuLimitMhz", vr_db_str(res, i, 5));
			vr_xml_attr(w, "memoryLimitMB", vr_db_str(res, i, 6));
			vr_xml_attr(w, "storageLimitMB", vr_db_str(res, i, 7));
			vr_xml_end(w);
			free(href);
		}
	}
	PQclear(res);
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_RECORDS);
}

enum MHD_Result vr_api_admin_nodes_get(struct vr_request *req)
{
	struct vr_page page;
	PGresult *res = NULL;
	int rows = 0;
	enum MHD_Result reply;
	if (!fetch_page(req, "replica_servers_count", "replica_servers_page", NULL, false, &page,
			&res, &rows, &reply))
		return reply;
	struct vr_xml *w = vr_xml_new();
	if (vr_render_container(req, w, VR_NS_VR, "VrcsNodes", VR_MT_NODES, "nodes", &page,
				"/api/admin/vr/nodes")) {
		for (int i = 0; i < rows; i++) {
			const char *id = vr_db_str(res, i, 0);
			char *href = vr_href(req, "/api/admin/extension/vr/vrs/%s", id);
			vr_xml_start(w, "Node");
			vr_xml_attr(w, "href", href);
			vr_xml_attr(w, "type", VR_MT_VR_SERVER);
			vr_xml_attrf(w, "id", "urn:vcloud:vrServer:%s", id);
			vr_xml_attr(w, "name", vr_db_str(res, i, 1));
			vr_xml_elem(w, "Role", "replicaServer");
			vr_xml_elem(w, "Address", vr_db_str(res, i, 2));
			vr_xml_elem(w, "State", vr_db_str(res, i, 3));
			vr_xml_elem(w, "LastHeartbeat", vr_db_str(res, i, 4));
			vr_xml_end(w);
			free(href);
		}
	}
	PQclear(res);
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_NODES);
}

/* The datastore a disk's replica lives on, once the server managing it is
 * known (a moveReplication names it). */
static void datastore_ref(struct vr_xml *w, const char *moref, const char *server_href)
{
	if (!*moref || !*server_href)
		return;
	vr_xml_start(w, "extension:DatastoreVimObjectRef");
	vr_xml_attr(w, "xmlns:extension", VR_NS_EXTENSION);
	vr_render_ref(w, "vcloud:VimServerRef", "application/vnd.vmware.admin.vmwvirtualcenter+xml",
		      server_href, NULL, NULL);
	vr_xml_elem(w, "extension:MoRef", moref);
	vr_xml_elem(w, "extension:VimObjectType", "DATASTORE");
	vr_xml_end(w);
}

enum MHD_Result vr_api_replication_details_get(struct vr_request *req)
{
	enum MHD_Result reply;
	PGresult *res = NULL;
	int rc = 0;
	if (!vr_api_fetch_children(req, "replication_visible", "replication", "replication_disks",
				   &res, &rc, &reply))
		return reply;
	const char *id = req->ids[0];
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/admin/vr/replications/%s/details", id);
	char *up = vr_href(req, "/api/vr/replications/%s", id);
	vr_render_root(w, VR_NS_VR, "ReplicationGroupDetails", self, VR_MT_DETAILS);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_RG, up, NULL);
	/* One VM per replication group in vrcloud. */
	vr_xml_start(w, "Vm");
	for (int i = 0; i < rc; i++) {
		vr_xml_start(w, "Disk");
		vr_xml_elem(w, "Uuid", vr_db_str(res, i, 0));
		datastore_ref(w, vr_db_str(res, i, 4), vr_db_str(res, i, 7));
		vr_xml_elem(w, "DeviceKey", vr_db_str(res, i, 1));
		vr_xml_elem(w, "SpaceRequirement", vr_db_str(res, i, 2));
		vr_xml_end(w);
	}
	vr_xml_end(w);
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_DETAILS);
}
