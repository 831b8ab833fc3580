/* PUT /api/vr/peers/{id}/networkMappings (U13): replace a peer's failover
 * and test-failover network mappings. The body is the VrNetworkMappings
 * document GET (U12, peers.c) answers, so what GET emits PUT takes back.
 * The new mappings are staged beside the job and replace the peer's when
 * the job succeeds (effects.c); until then nothing visible changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

/* Names longer than this are refused. */
#define NAME_MAX_BYTES 255

static const char *const mapping_types[] = {VR_MT_NETWORK_MAPPINGS, "application/*+xml", NULL};
static const struct vr_input_spec mappings_spec = {
	"VrNetworkMappings", VR_NS_VR, mapping_types, false, false,
};

struct mapping {
	const char *kind; /* "failover", "test" */
	int position;	  /* 1-based within its kind */
	char *source;
	char target_id[VR_UUID_LEN + 1];
	char *target_name;
};

struct mapping_set {
	struct mapping *items;
	size_t n, cap;
	int counts[2]; /* failover, test */
};

static void set_free(struct mapping_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		xmlFree(set->items[i].source);
		xmlFree(set->items[i].target_name);
	}
	free(set->items);
}

static bool in_namespace(xmlNodePtr node, const char *ns, const char *name)
{
	return node->type == XML_ELEMENT_NODE && node->ns && node->ns->href &&
	       strcmp((const char *)node->ns->href, ns) == 0 &&
	       strcmp((const char *)node->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *ns, const char *name)
{
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (in_namespace(c, ns, name))
			return c;
	return NULL;
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

/* The network a TargetNetwork names: the UUID that ends its href, which
 * its id (urn:vcloud:network:<uuid>), when present, must repeat. Returns
 * NULL, or why the reference is refused. */
static const char *target_id(xmlNodePtr target, char out[VR_UUID_LEN + 1])
{
	xmlChar *href = xmlGetProp(target, BAD_CAST "href");
	xmlChar *id = xmlGetProp(target, BAD_CAST "id");
	const char *why = NULL;
	const char *last = href ? strrchr((const char *)href, '/') : NULL;
	if (!last || vr_uuid_canon(out, last + 1) != 0) {
		why = "its href must end with the network's id (.../network/<uuid>)";
	} else if (id) {
		static const char urn[] = "urn:vcloud:network:";
		char from_id[VR_UUID_LEN + 1];
		if (strncmp((const char *)id, urn, sizeof urn - 1) != 0 ||
		    vr_uuid_canon(from_id, (const char *)id + sizeof urn - 1) != 0)
			why = "its id must be urn:vcloud:network:<uuid>";
		else if (strcmp(from_id, out) != 0)
			why = "its id and href name different networks";
	}
	xmlFree(href);
	xmlFree(id);
	return why;
}

/* Read one NetworkMappings item into set. Returns NULL or why it is refused. */
static const char *read_mapping(xmlNodePtr item, const char *kind, int kind_index,
				struct mapping_set *set)
{
	xmlChar *source = vr_input_child_text(item, "SourceNetwork");
	xmlNodePtr target = child(item, VR_NS_VCLOUD, "TargetNetwork");
	if (!source || blank((const char *)source) ||
	    strlen((const char *)source) > NAME_MAX_BYTES) {
		xmlFree(source);
		return "a SourceNetwork is empty or longer than 255 bytes";
	}
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->items[i].kind, kind) == 0 &&
		    strcmp(set->items[i].source, (const char *)source) == 0) {
			xmlFree(source);
			return "a SourceNetwork is mapped twice in one list";
		}
	if (!target) {
		xmlFree(source);
		return "a mapping has no TargetNetwork";
	}
	struct mapping m = {.kind = kind, .source = (char *)source};
	const char *why = target_id(target, m.target_id);
	m.target_name = (char *)xmlGetProp(target, BAD_CAST "name");
	if (!why &&
	    (!m.target_name || blank(m.target_name) || strlen(m.target_name) > NAME_MAX_BYTES))
		why = "a TargetNetwork needs a name of at most 255 bytes";
	if (why) {
		xmlFree(m.source);
		xmlFree(m.target_name);
		return why;
	}
	if (set->n == set->cap) {
		set->cap = set->cap ? 2 * set->cap : 8;
		set->items = vr_realloc(set->items, set->cap * sizeof *set->items);
	}
	m.position = ++set->counts[kind_index];
	set->items[set->n++] = m;
	return NULL;
}

/* Both lists of a validated document. Returns NULL or why it is refused. */
static const char *read_mappings(xmlNodePtr root, struct mapping_set *set)
{
	static const struct {
		const char *list, *kind;
	} lists[] = {
		{"FailoverNetworkMappings", "failover"},
		{"TestFailoverNetworkMappings", "test"},
	};
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
		xmlNodePtr list = child(root, VR_NS_VR, lists[l].list);
		for (xmlNodePtr c = list ? list->children : NULL; c; c = c->next) {
			if (!in_namespace(c, VR_NS_VR, "NetworkMappings"))
				continue;
			const char *why = read_mapping(c, lists[l].kind, (int)l, set);
			if (why)
				return why;
		}
	}
	return NULL;
}

/* Stage the new mappings beside the accepted job. */
static int stage_mappings(struct vr_db *db, const char *job_id, const void *arg)
{
	const struct mapping_set *set = arg;
	for (size_t i = 0; i < set->n; i++) {
		const struct mapping *m = &set->items[i];
		char position[16];
		snprintf(position, sizeof position, "%d", m->position);
		const char *params[] = {job_id,	   m->kind,	 position,
					m->source, m->target_id, m->target_name};
		int rc = vr_db_exec(db, "network_mapping_stage", NULL, 6, params);
		if (rc < 0)
			return rc;
	}
	return 0;
}

enum MHD_Result vr_api_peer_network_mappings_put(struct vr_request *req)
{
	/* Another org's peer is answered like a missing one, before anything
	 * else is looked at. */
	enum MHD_Result reply;
	if (vr_api_visible(req, "peer_visible", "peer", &reply) != 1)
		return reply;
	if (req->who.role == VR_ROLE_ORG_USER)
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "Only organization administrators change network mappings.");
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &mappings_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	struct mapping_set set = {0};
	const char *why = read_mappings(root, &set);
	if (why) {
		reply = vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				       "The network mappings were refused: %s.", why);
		goto cleanup;
	}
	char params[64];
	snprintf(params, sizeof params, "{\"failover\": %d, \"test\": %d}", set.counts[0],
		 set.counts[1]);
	struct vr_lane_request a = {
		.lock_stmt = "peer_lock",
		.what = "peer",
		.owner_kind = "peer",
		.lane_prefix = "peer:",
		.action = "setNetworkMappings",
		.operation = "Network mappings of peer",
		.operation_name = "hcsSetNetworkMappings",
		.params = params,
		.stage = stage_mappings,
		.stage_arg = &set,
	};
	vr_api_read_operation_key(root, a.operation_key);
	reply = vr_api_accept_lane(req, &a);
cleanup:
	set_free(&set);
	xmlFreeDoc(doc);
	return reply;
}
