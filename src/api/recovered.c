/* The disk images a recovery job wrote (docs/recovery.md): a successful
 * failover, planned migration or test failover names in its JobResult the
 * instance its images hold and each image (device key, path, size); they
 * are recorded with the vApp the job's effect made, in the same
 * transaction. */
#include <stdio.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

/* The vApp kind a recovery action makes, or NULL for other actions. */
static const char *vapp_kind(const char *action)
{
	if (strcmp(action, "failover") == 0 || strcmp(action, "plannedMigration") == 0)
		return "recovered";
	if (strcmp(action, "testFailover") == 0)
		return "test";
	return NULL;
}

static int record_disk(struct vr_db *db, const char *rg, const char *kind, xmlNodePtr disk)
{
	xmlChar *key = vr_input_child_text(disk, "Key");
	xmlChar *path = vr_input_child_text(disk, "Path");
	xmlChar *size = vr_input_child_text(disk, "Size");
	int rc = 0;
	if (key && path && size) {
		const char *add[] = {rg, kind, (const char *)key, (const char *)path,
				     (const char *)size};
		rc = vr_db_exec(db, "recovery_disk_add", NULL, 5, add);
	}
	xmlFree(key);
	xmlFree(path);
	xmlFree(size);
	return rc;
}

int vr_api_job_recovered(struct vr_db *db, const char *lane, const char *action, xmlNodePtr result)
{
	static const char prefix[] = "replication:";
	const char *kind = vapp_kind(action);
	if (!kind || !result || strncmp(lane, prefix, sizeof prefix - 1) != 0)
		return 0;
	const char *rg = lane + sizeof prefix - 1;
	int rc = 0;
	xmlChar *instance = vr_input_child_text(result, "InstanceId");
	char id[VR_UUID_LEN + 1];
	if (instance && vr_uuid_canon(id, (const char *)instance) == 0) {
		const char *set[] = {rg, kind, id};
		rc = vr_db_exec(db, "recovery_vapp_instance", NULL, 3, set);
	}
	xmlFree(instance);
	for (xmlNodePtr n = result->children; n && rc >= 0; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "Disk") == 0)
			rc = record_disk(db, rg, kind, n);
	return rc;
}
