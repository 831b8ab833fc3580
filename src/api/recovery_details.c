/* POST /api/admin/vdc/{id}/action/editRecoveryDetails (A1): the provider
 * sets which recovery types the tenants of a VDC may run. A Task and a job
 * on the VDC's lane; the flags change when the job succeeds (effects.c),
 * and from then on U6 shows them and the state machine refuses a disabled
 * recovery with VdcNotEnabledForRecoveryFault. */
#include <stdio.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/input.h"

enum vdc_lock_col { V_ORG, V_NAME, V_REPLICATION_ON };

/* Only the specific type: the reference lists no other for this body. */
static const char *const edit_types[] = {VR_MT_EDIT_RECOVERY_PARAMS, NULL};
static const struct vr_input_spec edit_spec = {
	"EditRecoveryDetailsParams", VR_NS_VR, edit_types, false, false,
};

static const struct vr_engine_refusal replication_disabled = {
	"VdcNotEnabledForReplication", 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
	"The VDC is not enabled for replication; it has no recovery types to set."};

static const struct vr_engine_refusal *check_vdc(PGresult *locked)
{
	return vr_db_bool(locked, 0, V_REPLICATION_ON) ? NULL : &replication_disabled;
}

enum MHD_Result vr_api_admin_vdc_edit_recovery_details(struct vr_request *req)
{
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &edit_spec, &doc, &reply))
		return reply;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	/* All three are required by the schema, which has checked them. */
	bool test = false, failover = false, planned = false;
	vr_input_child_bool(root, "IsTestFailoverEnabled", &test);
	vr_input_child_bool(root, "IsFailoverEnabled", &failover);
	vr_input_child_bool(root, "IsPlannedMigrationEnabled", &planned);
	char params[160];
	snprintf(params, sizeof params,
		 "{\"IsTestFailoverEnabled\": %s, \"IsFailoverEnabled\": %s,"
		 " \"IsPlannedMigrationEnabled\": %s}",
		 test ? "true" : "false", failover ? "true" : "false", planned ? "true" : "false");
	struct vr_lane_request a = {
		.lock_stmt = "vdc_lock",
		.what = "VDC",
		.owner_kind = "vdc",
		.lane_prefix = "vdc:",
		.action = "editRecoveryDetails",
		.operation = "Recovery details of VDC",
		.operation_name = "hcsEditRecoveryDetails",
		.params = params,
		.check = check_vdc,
	};
	vr_api_read_operation_key(root, a.operation_key);
	xmlFreeDoc(doc);
	return vr_api_accept_lane(req, &a);
}
