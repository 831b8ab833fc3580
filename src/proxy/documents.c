/* The documents of the internal API that the proxy sends (SiteVerify,
 * ReplicationServerLookup, written through the vr_xml builder) and reads
 * (Site, ReplicationServer, parsed by vr_xml_parse only). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/proxy.h"
#include "vrcloud/tunnel.h"
#include "vrcloud/uuid.h"
#include "vrcloud/xml.h"

#define NS_INTERNAL "urn:vrcloud:internal:1"

int vr_proxy_doc_site_verify(struct vr_buf *out, const char *credential)
{
	size_t len = credential ? strlen(credential) : 0;
	if (len == 0 || len > VR_TUNNEL_MAX_CREDENTIAL)
		return VR_EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)credential[i] <= ' ' || (unsigned char)credential[i] >= 0x7f)
			return VR_EINVAL;
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "SiteVerify");
	vr_xml_attr(w, "xmlns", NS_INTERNAL);
	vr_xml_elem(w, "Credential", credential);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

/* Root's child name as a canonical UUID. */
static int child_uuid(char out[VR_UUID_LEN + 1], xmlNodePtr root, const char *name)
{
	xmlChar *text = vr_input_child_text(root, name);
	if (!text)
		return VR_EINVAL;
	const char *s = (const char *)text;
	while (isspace((unsigned char)*s))
		s++;
	char copy[VR_UUID_LEN + 1];
	size_t n = strcspn(s, " \t\r\n");
	int rc = VR_EINVAL;
	if (n == VR_UUID_LEN) {
		memcpy(copy, s, n);
		copy[n] = '\0';
		rc = vr_uuid_canon(out, copy);
	}
	xmlFree(text);
	return rc;
}

int vr_proxy_parse_site(struct vr_proxy_site *out, const char *body, size_t len,
			const char **reason_out)
{
	memset(out, 0, sizeof *out);
	xmlDocPtr doc = NULL;
	if (!body || vr_xml_parse(&doc, body, len, reason_out) != 0) {
		if (!body)
			*reason_out = "the answer has no body";
		return VR_EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const char *ns = root->ns && root->ns->href ? (const char *)root->ns->href : "";
	int rc = 0;
	if (strcmp((const char *)root->name, "Site") != 0 || strcmp(ns, NS_INTERNAL) != 0) {
		*reason_out = "the answer's root element is not Site";
		rc = VR_EINVAL;
	} else if (child_uuid(out->peer_id, root, "PeerId") ||
		   child_uuid(out->org_id, root, "OrgId") ||
		   child_uuid(out->vdc_id, root, "VdcId") ||
		   child_uuid(out->site_uuid, root, "SiteUuid")) {
		*reason_out = "the Site lacks a valid PeerId, OrgId, VdcId or SiteUuid";
		rc = VR_EINVAL;
	}
	if (rc)
		memset(out, 0, sizeof *out);
	xmlFreeDoc(doc);
	return rc;
}

int vr_proxy_doc_route_lookup(struct vr_buf *out, const char *peer_id)
{
	char peer[VR_UUID_LEN + 1];
	if (!peer_id || strlen(peer_id) != VR_UUID_LEN || vr_uuid_canon(peer, peer_id))
		return VR_EINVAL;
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "ReplicationServerLookup");
	vr_xml_attr(w, "xmlns", NS_INTERNAL);
	vr_xml_elem(w, "PeerId", peer);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

/* Root's child name, trimmed, into out; false when absent, empty or too
 * long. */
static bool child_copy(char *out, size_t size, xmlNodePtr root, const char *name)
{
	char *text = vr_input_child_trimmed(root, name);
	bool ok = text && text[0] && strlen(text) < size;
	if (ok)
		memcpy(out, text, strlen(text) + 1);
	free(text);
	return ok;
}

int vr_proxy_parse_route(char *address, size_t address_size, char *server, size_t server_size,
			 const char *body, size_t len, const char **reason_out)
{
	xmlDocPtr doc = NULL;
	if (!body || vr_xml_parse(&doc, body, len, reason_out) != 0) {
		if (!body)
			*reason_out = "the answer has no body";
		return VR_EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const char *ns = root->ns && root->ns->href ? (const char *)root->ns->href : "";
	int rc = 0;
	char host[256];
	unsigned port = 0;
	if (strcmp((const char *)root->name, "ReplicationServer") != 0 ||
	    strcmp(ns, NS_INTERNAL) != 0) {
		*reason_out = "the answer's root element is not ReplicationServer";
		rc = VR_EINVAL;
	} else if (!child_copy(address, address_size, root, "TrafficAddress") ||
		   vr_tunnel_split_address(host, sizeof host, &port, address) || port == 0) {
		*reason_out = "the ReplicationServer lacks a host:port TrafficAddress";
		rc = VR_EINVAL;
	} else if (!child_copy(server, server_size, root, "Name")) {
		*reason_out = "the ReplicationServer lacks a Name";
		rc = VR_EINVAL;
	}
	xmlFreeDoc(doc);
	return rc;
}
