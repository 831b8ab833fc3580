/* Failback: POST /api/vr/replications/{id}/action/reverse starts the
 * FailbackReplicationGroup of a recovered replication (its job creates the
 * failback row when it succeeds), and the actions a failback replication
 * takes through its own href: DELETE (U9), sync, pause and resume. All go
 * through the replication state machine (actions.c,
 * docs/state-machine.md). */
#include <stdio.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/engine.h"

/* Reverse takes no parameters and ignores any body, but a body that is
 * an XML document may carry an operationKey on its root, as the other
 * actions' documents do. A body that is not (or not safely) readable is
 * ignored like any other. */
static void body_operation_key(struct vr_request *req, char out[VR_OPERATION_KEY_SIZE])
{
	out[0] = '\0';
	if (!req->body.data || req->body.len == 0)
		return;
	xmlDocPtr doc = NULL;
	const char *reason = NULL;
	if (vr_xml_parse(&doc, req->body.data, req->body.len, &reason) != 0)
		return;
	vr_api_read_operation_key(xmlDocGetRootElement(doc), out);
	xmlFreeDoc(doc);
}

enum MHD_Result vr_api_replication_reverse(struct vr_request *req)
{
	struct vr_action_request a = {
		VR_ACTION_REVERSE, "Reverse of replication", "hcsReverse", "{}", "", ""};
	body_operation_key(req, a.operation_key);
	return vr_api_accept_action(req, &a);
}

/* The actions of a failback replication take no parameters and ignore
 * any body and Content-Type, as the same actions of incoming ones do. */
static enum MHD_Result failback_action(struct vr_request *req, enum vr_action action,
				       const char *operation, const char *operation_name)
{
	struct vr_action_request a = {action, operation, operation_name, "{}", "", ""};
	return vr_api_accept_action_of(req, &a, VR_RG_FAILBACK);
}

enum MHD_Result vr_api_failbackreplication_delete(struct vr_request *req)
{
	return failback_action(req, VR_ACTION_DELETE, "Removal of failback replication",
			       "hcsDelete");
}

enum MHD_Result vr_api_failbackreplication_sync(struct vr_request *req)
{
	return failback_action(req, VR_ACTION_SYNC, "Synchronization of failback replication",
			       "hcsSync");
}

enum MHD_Result vr_api_failbackreplication_pause(struct vr_request *req)
{
	return failback_action(req, VR_ACTION_PAUSE, "Pause of failback replication", "hcsPause");
}

enum MHD_Result vr_api_failbackreplication_resume(struct vr_request *req)
{
	return failback_action(req, VR_ACTION_RESUME, "Resume of failback replication",
			       "hcsResume");
}
