/* GET /api/org, /api/org/{id} and the org-wide listings U1-U3. */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

enum MHD_Result vr_api_orgs_get(struct vr_request *req)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {vr_request_scope(req)};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "org_list", &res, 1, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/org/");
	vr_render_root(w, VR_NS_VCLOUD, "OrgList", self, VR_MT_ORG_LIST);
	free(self);
	for (int i = 0; i < rc; i++) {
		/* The same href string as the VDC's "up" link and the Org's own. */
		char *href = vr_href(req, "/api/org/%s", vr_db_str(res, i, 0));
		vr_xml_start(w, "Org");
		vr_xml_attr(w, "href", href);
		vr_xml_attr(w, "type", VR_MT_ORG);
		vr_xml_attr(w, "name", vr_db_str(res, i, 1));
		vr_xml_end(w);
		free(href);
	}
	PQclear(res);
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_ORG_LIST);
}

enum MHD_Result vr_api_org_get(struct vr_request *req)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *id = req->ids[0];
	const char *params[] = {id, vr_request_scope(req)};
	PGresult *org = NULL, *vdcs = NULL;
	int rc = vr_db_exec(db, "org_get", &org, 2, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	if (rc == 0) {
		PQclear(org);
		return vr_reply_not_found(req, "organization", id);
	}
	int nvdcs = vr_db_exec(db, "org_vdcs", &vdcs, 1, params);
	if (nvdcs < 0) {
		PQclear(org);
		return vr_reply_db(req, nvdcs);
	}
	struct vr_xml *w = vr_xml_new();
	char *self = vr_href(req, "/api/org/%s", id);
	vr_render_root(w, VR_NS_VCLOUD, "Org", self, VR_MT_ORG);
	vr_xml_attrf(w, "id", "urn:vcloud:org:%s", id);
	vr_xml_attr(w, "name", vr_db_str(org, 0, 1));
	for (int i = 0; i < nvdcs; i++) {
		char *href = vr_href(req, "/api/vdc/%s", vr_db_str(vdcs, i, 0));
		vr_render_link(w, "Link", "down", VR_MT_VDC, href, vr_db_str(vdcs, i, 1));
		free(href);
	}
	static const char *const listings[][2] = {
		{"down:replications", "replications"},
		{"down:failbackreplications", "failbackreplications"},
		{"down:enabledForReplicationVdcs", "enabledForReplicationVdcs"},
	};
	for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++) {
		char *href = vr_href(req, "/api/org/%s/%s", id, listings[i][1]);
		vr_render_link(w, "Link", listings[i][0], VR_MT_REFERENCES, href, NULL);
		free(href);
	}
	vr_xml_elem(w, "Description", vr_db_str(org, 0, 3));
	vr_xml_elem(w, "FullName", vr_db_str(org, 0, 2));
	vr_xml_elem_bool(w, "IsEnabled", true);
	vr_xml_end(w);
	free(self);
	PQclear(org);
	PQclear(vdcs);
	return vr_reply_xml(req, w, VR_MT_ORG);
}

enum MHD_Result vr_api_org_replications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"org_visible", "organization", "/api/org/", "replications_by_org", "incoming",
		"replications", VR_MT_RG, "replicationGroup", "/api/vr/replications/",
	};
	return vr_reply_listing(req, &listing);
}

enum MHD_Result vr_api_org_failbackreplications_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"org_visible", "organization", "/api/org/", "replications_by_org", "failback",
		"failbackreplications", VR_MT_FRG, "failbackReplicationGroup",
		"/api/vr/failbackreplications/",
	};
	return vr_reply_listing(req, &listing);
}

enum MHD_Result vr_api_org_enabled_vdcs_get(struct vr_request *req)
{
	static const struct vr_listing listing = {
		"org_visible", "organization", "/api/org/", "org_enabled_vdcs", NULL,
		"enabledForReplicationVdcs", VR_MT_VDC, "vdc", "/api/vdc/",
	};
	return vr_reply_listing(req, &listing);
}
