/* GET /api/vr/peers/{id} (U10), its listings (U11, U14) and its network
 * mappings (U12). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum MHD_Result vr_api_peer_get(struct vr_request *req)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *id = req->ids[0];
	const char *params[] = {id, vr_request_scope(req)};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "peer_get", &res, 2, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(res);
		return vr_reply_not_found(req, "peer", id);
	}
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vr/peers/%s", id);
	vr_xml_start(w, "Peer");
	vr_xml_attr(w, "xmlns", VR_NS_VR);
	vr_xml_attr(w, "xmlns:vcloud", VR_NS_VCLOUD);
	vr_xml_attr(w, "href", self);
	vr_xml_attr(w, "type", VR_MT_PEER);
	vr_xml_attrf(w, "id", "urn:vcloud:peer:%s", id);
	vr_xml_attr(w, "name", vr_db_str(res, 0, 2));
	char *href = vr_href(req, "/api/vdc/%s", vr_db_str(res, 0, 4));
	vr_render_link(w, "vcloud:Link", "up", VR_MT_VDC, href, NULL);
	free(href);
	static const char *const listings[][3] = {
		{"down:replications", "replications", VR_MT_REFERENCES},
		{"down:failbackreplications", "failbackreplications", VR_MT_REFERENCES},
		{"down", "networkMappings", VR_MT_NETWORK_MAPPINGS},
	};
	for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++) {
		href = vr_href(req, "/api/vr/peers/%s/%s", id, listings[i][1]);
		vr_render_link(w, "vcloud:Link", listings[i][0], listings[i][2], href, NULL);
		free(href);
	}
	if (*vr_db_str(res, 0, 3))
		vr_xml_elem(w, "vcloud:Description", vr_db_str(res, 0, 3));
	vr_xml_elem(w, "SiteUuid", vr_db_str(res, 0, 1));
	vr_xml_elem(w, "SiteName", vr_db_str(res, 0, 2));
	vr_xml_end(w);
	free(self);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_PEER);
}

static enum MHD_Result peer_listing(struct vr_request *req, const char *kind, const char *name,
				    const char *ref_type, const char *urn_kind,
				    const char *ref_prefix)
{
	enum MHD_Result reply;
	if (vr_api_visible(req, "peer_visible", "peer", &reply) != 1)
		return reply;
	char *path = vr_asprintf("/api/vr/peers/%s/%s", req->ids[0], name);
	const char *params[] = {req->ids[0], kind};
	reply = vr_reply_references(req, "replications_by_peer", params, 2, path, name, ref_type,
				    urn_kind, ref_prefix);
	free(path);
	return reply;
}

enum MHD_Result vr_api_peer_replications_get(struct vr_request *req)
{
	return peer_listing(req, "incoming", "replications", VR_MT_RG, "replicationGroup",
			    "/api/vr/replications/");
}

enum MHD_Result vr_api_peer_failbackreplications_get(struct vr_request *req)
{
	return peer_listing(req, "failback", "failbackreplications", VR_MT_FRG,
			    "failbackReplicationGroup", "/api/vr/failbackreplications/");
}

static void mapping_list(struct vr_request *req, struct vr_xml *w, PGresult *res, int rows,
			 const char *elem, const char *kind)
{
	vr_xml_start(w, elem);
	for (int i = 0; i < rows; i++) {
		if (strcmp(vr_db_str(res, i, 0), kind) != 0)
			continue;
		vr_xml_start(w, "NetworkMappings");
		vr_xml_elem(w, "SourceNetwork", vr_db_str(res, i, 2));
		char *href = vr_href(req, "/api/network/%s", vr_db_str(res, i, 3));
		char *urn = vr_asprintf("urn:vcloud:network:%s", vr_db_str(res, i, 3));
		vr_render_ref(w, "vcloud:TargetNetwork", "application/vnd.vmware.vcloud.orgNetwork+xml",
			      href, urn, vr_db_str(res, i, 4));
		free(href);
		free(urn);
		vr_xml_end(w);
	}
	vr_xml_end(w);
}

enum MHD_Result vr_api_peer_network_mappings_get(struct vr_request *req)
{
	enum MHD_Result reply;
	if (vr_api_visible(req, "peer_visible", "peer", &reply) != 1)
		return reply;
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *id = req->ids[0];
	const char *params[] = {id};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "peer_network_mappings", &res, 1, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vr/peers/%s/networkMappings", id);
	char *up = vr_href(req, "/api/vr/peers/%s", id);
	vr_xml_start(w, "VrNetworkMappings");
	vr_xml_attr(w, "xmlns", VR_NS_VR);
	vr_xml_attr(w, "xmlns:vcloud", VR_NS_VCLOUD);
	vr_xml_attr(w, "href", self);
	vr_xml_attr(w, "type", VR_MT_NETWORK_MAPPINGS);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_PEER, up, NULL);
	mapping_list(req, w, res, rc, "FailoverNetworkMappings", "failover");
	mapping_list(req, w, res, rc, "TestFailoverNetworkMappings", "test");
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_NETWORK_MAPPINGS);
}
