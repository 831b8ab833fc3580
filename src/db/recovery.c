/* Statements of the recovered VMs' disk images (migration 8,
 * docs/recovery.md): what a failover, planned migration or test failover
 * wrote, recorded with the vApp its effect made. */
#include "db/statements.h"

/* The newest live vApp of kind $2 of replication $1: the one the job's
 * effect has just added, in the same transaction. */
#define NEWEST_VAPP                                                                                \
	"(SELECT a.id FROM vapps a WHERE a.replication_id = $1::uuid AND a.kind = $2"              \
	" AND a.deleted_at IS NULL ORDER BY a.created_at DESC, a.id LIMIT 1)"

const struct vr_db_stmt vr_db_stmts_recovery[] = {
	/* $1 replication, $2 kind, $3 device key, $4 path, $5 size. */
	{"recovery_disk_add",
	 "INSERT INTO vapp_disks (vapp_id, device_key, path, size_bytes)"
	 " SELECT v.id, $3::int, $4, $5::bigint FROM " NEWEST_VAPP " v (id)"
	 " WHERE v.id IS NOT NULL"
	 " ON CONFLICT (vapp_id, device_key) DO UPDATE SET path = EXCLUDED.path,"
	 " size_bytes = EXCLUDED.size_bytes"},
	/* $1 replication, $2 kind, $3 the instance the images hold (when the
	 * API knows it). */
	{"recovery_vapp_instance", "UPDATE vapps SET instance_id = $3::uuid WHERE id = " NEWEST_VAPP
				   " AND EXISTS (SELECT 1 FROM instances i WHERE i.id = $3::uuid"
				   "   AND i.replication_id = $1::uuid)"},
	/* $1 vApp: its disks (vrcloudctl reads them too). */
	{"recovery_vapp_disks",
	 "SELECT device_key, path, size_bytes FROM vapp_disks WHERE vapp_id = $1::uuid"
	 " ORDER BY device_key"},
	{NULL, NULL},
};
