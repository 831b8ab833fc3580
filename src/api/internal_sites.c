/* Internal API of proxies: is this site credential valid, and whose is it?
 * And where does a site's data connection for a replication go?
 * The proxy holds no database state; it asks here for every site that
 * connects (and caches the answer briefly). Only proxy credentials may
 * ask, and the presented credential never appears in an answer or a log. */
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/auth.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

/* Longest site credential the proxies accept (VR_TUNNEL_MAX_CREDENTIAL). */
#define MAX_CREDENTIAL 512

static const struct vr_input_spec verify_spec = {
	"SiteVerify", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

static bool credential_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > MAX_CREDENTIAL)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static enum MHD_Result render_site(struct vr_request *req, PGresult *res)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "Site");
	vr_xml_attr(w, "xmlns", VR_NS_INTERNAL);
	vr_xml_elem(w, "PeerId", vr_db_str(res, 0, 0));
	vr_xml_elem(w, "OrgId", vr_db_str(res, 0, 1));
	vr_xml_elem(w, "VdcId", vr_db_str(res, 0, 2));
	vr_xml_elem(w, "SiteUuid", vr_db_str(res, 0, 3));
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_INTERNAL);
}

enum MHD_Result vr_api_internal_site_verify(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &verify_spec, &doc, &reply))
		return reply;
	xmlChar *credential = vr_input_child_text(xmlDocGetRootElement(doc), "Credential");
	xmlFreeDoc(doc);
	/* who.org_name holds a service credential's kind. */
	if (strcmp(req->who.org_name, "proxy") != 0) {
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				       "Only proxy credentials verify site credentials.");
		goto cleanup;
	}
	if (!credential || !credential_ok((const char *)credential)) {
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "SITE_CREDENTIAL_INVALID",
				       "The site credential is not valid.");
		goto cleanup;
	}
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		reply = vr_reply_err(req, VR_EUNAVAIL);
		goto cleanup;
	}
	char hash[2 + 64 + 1];
	vr_auth_token_hash_hex(hash, (const char *)credential);
	const char *params[] = {hash};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "site_verify", &res, 1, params);
	if (rc < 0) {
		PQclear(res);
		reply = vr_reply_db(req, rc);
	} else if (rc == 0) {
		PQclear(res);
		reply = vr_reply_error(req, MHD_HTTP_FORBIDDEN, "SITE_CREDENTIAL_INVALID",
				       "The site credential is not valid.");
	} else {
		reply = render_site(req, res);
		PQclear(res);
	}
cleanup:
	if (credential) {
		explicit_bzero(credential, strlen((const char *)credential));
		xmlFree(credential);
	}
	return reply;
}

static const struct vr_input_spec lookup_spec = {
	"ReplicationServerLookup", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

static enum MHD_Result render_server(struct vr_request *req, PGresult *res)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "ReplicationServer");
	vr_xml_attr(w, "xmlns", VR_NS_INTERNAL);
	vr_xml_elem(w, "ReplicationId", req->ids[0]);
	vr_xml_elem(w, "ServerId", vr_db_str(res, 0, 1));
	vr_xml_elem(w, "Name", vr_db_str(res, 0, 2));
	vr_xml_elem(w, "TrafficAddress", vr_db_str(res, 0, 3));
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_INTERNAL);
}

/* Another peer's replication answers like an absent one: a site learns
 * nothing about replications that are not its own. */
static enum MHD_Result answer_server(struct vr_request *req, PGresult *res, const char *peer)
{
	if (strcmp(vr_db_str(res, 0, 0), peer) != 0)
		return vr_reply_not_found(req, "replication", req->ids[0]);
	if (PQgetisnull(res, 0, 1) || vr_db_str(res, 0, 3)[0] == '\0' ||
	    strcmp(vr_db_str(res, 0, 4), "connected") != 0)
		return vr_reply_error(req, MHD_HTTP_CONFLICT, "NO_REPLICATION_SERVER",
				      "No connected replica server holds this replication now.");
	return render_server(req, res);
}

enum MHD_Result vr_api_internal_replication_server(struct vr_request *req)
{
	/* who.org_name holds a service credential's kind. */
	if (strcmp(req->who.org_name, "proxy") != 0)
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "Only proxy credentials look up replication servers.");
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &lookup_spec, &doc, &reply))
		return reply;
	char *text = vr_input_child_trimmed(xmlDocGetRootElement(doc), "PeerId");
	xmlFreeDoc(doc);
	char peer[VR_UUID_LEN + 1];
	bool peer_ok = text && strlen(text) == VR_UUID_LEN && vr_uuid_canon(peer, text) == 0;
	free(text);
	if (!peer_ok)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				      "PeerId is not a UUID.");
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *params[] = {req->ids[0]};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "replication_server", &res, 1, params);
	if (rc < 0)
		reply = vr_reply_db(req, rc);
	else if (rc == 0)
		reply = vr_reply_not_found(req, "replication", req->ids[0]);
	else
		reply = answer_server(req, res, peer);
	PQclear(res);
	return reply;
}
