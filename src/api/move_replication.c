/* POST /api/admin/vr/replications/{id}/action/moveReplication (A3): the
 * provider moves the replica files of a replication to another datastore.
 * An action of the replication's state machine (moveReplication); the new
 * datastore is recorded when the job succeeds (effects.c) and shows in the
 * replication's details (A4). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/engine.h"
#include "vrcloud/input.h"

#define VR_MT_MOVE_PARAMS "application/vnd.vmware.hcs.adminMoveReplicationGroupParams+xml"
/* Longest MoRef and VimServerRef href taken: the job's parameters hold both. */
#define MOREF_MAX 64
#define HREF_MAX  256

static const char *const move_types[] = {VR_MT_MOVE_PARAMS, "application/*+xml", NULL};
static const struct vr_input_spec move_spec = {
	"MoveReplicationGroupParams", VR_NS_VR, move_types, false, false,
};

static xmlNodePtr child(xmlNodePtr parent, const char *ns, const char *name)
{
	for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && c->ns && c->ns->href &&
		    strcmp((const char *)c->ns->href, ns) == 0 &&
		    strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

/* A managed object reference as vSphere writes them ("datastore-12"). */
static bool moref_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MOREF_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._:-", *s))
			return false;
	return true;
}

/* An absolute http(s) URL of RFC 3986 characters only: nothing in it
 * needs escaping in the job's JSON. */
static bool href_valid(const char *s)
{
	size_t n = strlen(s);
	if (n > HREF_MAX || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-._~:/?#[]@!$&'()*+,;=%", *s))
			return false;
	return true;
}

/* The NewDatastore of a validated document into the job's parameters.
 * Returns NULL, or why the document is refused. */
static const char *read_datastore(xmlNodePtr root, char *params, size_t size)
{
	xmlNodePtr ds = child(root, VR_NS_EXTENSION, "NewDatastore");
	if (!ds)
		return "NewDatastore names the datastore to move to and is required";
	xmlNodePtr server = child(ds, VR_NS_VCLOUD, "VimServerRef");
	xmlChar *href = server ? xmlGetProp(server, BAD_CAST "href") : NULL;
	xmlChar *moref = vr_input_child_text(ds, "MoRef");
	xmlChar *type = vr_input_child_text(ds, "VimObjectType");
	const char *why = NULL;
	if (!type || strcmp((const char *)type, "DATASTORE") != 0)
		why = "NewDatastore/VimObjectType must be DATASTORE";
	else if (!moref || !moref_valid((const char *)moref))
		why = "NewDatastore/MoRef must be a managed object reference of at most 64 "
		      "characters (letters, digits, '.', '_', ':', '-')";
	else if (!href || !href_valid((const char *)href))
		why = "NewDatastore/VimServerRef needs an absolute http(s) href of at most 256 "
		      "characters";
	else
		snprintf(params, size, "{\"MoRef\": \"%s\", \"VimServerRef\": \"%s\"}",
			 (const char *)moref, (const char *)href);
	xmlFree(href);
	xmlFree(moref);
	xmlFree(type);
	return why;
}

enum MHD_Result vr_api_admin_replication_move(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &move_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	struct vr_action_request a = {
		VR_ACTION_MOVE, "Move of replication", "hcsMoveReplication", "", "", ""};
	const char *why = read_datastore(root, a.params, sizeof a.params);
	vr_api_read_operation_key(root, a.operation_key);
	xmlFreeDoc(doc);
	if (why)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				      "The move was refused: %s.", why);
	return vr_api_accept_action(req, &a);
}
