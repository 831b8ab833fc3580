/* GET /api/vr/peers/{id} (U10), its listings (U11, U14) and its network
 * mappings (U12). Pairing a site is in pairing.c. */
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
	vr_render_root(w, VR_NS_VR, "Peer", self, VR_MT_PEER);
	vr_xml_attrf(w, "id", "urn:vcloud:peer:%s", id);
	vr_xml_attr(w, "name", vr_db_str(res, 0, 2));
	/* Whether the pairing is done (docs/configure.md). */
	vr_render_extension(w, "vcloud:VCloudExtension", "PairingState");
	vr_xml_text(w, vr_db_str(res, 0, 5));
	vr_xml_end(w);
	vr_xml_end(w);
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

enum MHD_Result vr_api_peer_replications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"peer_visible", "peer", "/api/vr/peers/", "replications_by_peer", "incoming",
		"replications", VR_MT_RG, "replicationGroup", "/api/vr/replications/",
	};
	return vr_reply_listing(req, &listing);
}

enum MHD_Result vr_api_peer_failbackreplications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"peer_visible", "peer", "/api/vr/peers/", "replications_by_peer", "failback",
		"failbackreplications", VR_MT_FRG, "failbackReplicationGroup",
		"/api/vr/failbackreplications/",
	};
	return vr_reply_listing(req, &listing);
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
	PGresult *res = NULL;
	int rc = 0;
	if (!vr_api_fetch_children(req, "peer_visible", "peer", "peer_network_mappings", &res, &rc,
				   &reply))
		return reply;
	const char *id = req->ids[0];
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/vr/peers/%s/networkMappings", id);
	char *up = vr_href(req, "/api/vr/peers/%s", id);
	vr_render_root(w, VR_NS_VR, "VrNetworkMappings", self, VR_MT_NETWORK_MAPPINGS);
	vr_render_link(w, "vcloud:Link", "up", VR_MT_PEER, up, NULL);
	mapping_list(req, w, res, rc, "FailoverNetworkMappings", "failover");
	mapping_list(req, w, res, rc, "TestFailoverNetworkMappings", "test");
	vr_xml_end(w);
	free(self);
	free(up);
	PQclear(res);
	return vr_reply_xml(req, w, VR_MT_NETWORK_MAPPINGS);
}
