/* What the jobs of reverse and moveReplication change on replications
 * when they succeed (src/api/effects.c). */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_failback[] = {
	/* A successful reverse: the FailbackReplicationGroup of replication
	 * $1, replicating its recovered vApp back to the same peer. Nothing
	 * when it has one already. Returns the new row's id. */
	{"effect_failback_create",
	 "INSERT INTO replications (kind, org_id, vdc_id, peer_id, name, description,"
	 " rpo_minutes, quiesce_guest, network_compression, replication_state,"
	 " source_replication_id, source_vm_id)"
	 " SELECT 'failback', r.org_id, r.vdc_id, r.peer_id, r.name, r.description,"
	 " r.rpo_minutes, r.quiesce_guest, r.network_compression, 'initialSync', r.id,"
	 " coalesce((SELECT 'urn:vcloud:vapp:' || v.id FROM vapps v"
	 "   WHERE v.replication_id = r.id AND v.kind = 'recovered' AND v.deleted_at IS NULL"
	 "   ORDER BY v.created_at DESC, v.id LIMIT 1), '')"
	 " FROM replications r WHERE r.id = $1::uuid AND r.kind = 'incoming'"
	 " ON CONFLICT (source_replication_id) WHERE kind = 'failback' DO NOTHING"
	 " RETURNING id"},
	/* $1 failback, $2 its source: the same disks. */
	{"effect_failback_disks",
	 "INSERT INTO disks (replication_id, device_key, name, size_bytes)"
	 " SELECT $1::uuid, d.device_key, d.name, d.size_bytes FROM disks d"
	 " WHERE d.replication_id = $2::uuid"},
	/* A successful moveReplication: $1 replication, $2 its params. */
	{"effect_replication_move",
	 "UPDATE replications SET datastore = $2::jsonb ->> 'MoRef',"
	 " datastore_server_href = $2::jsonb ->> 'VimServerRef', updated_at = now()"
	 " WHERE id = $1::uuid"},
	{"effect_disks_move",
	 "UPDATE disks SET datastore_ref = $2::jsonb ->> 'MoRef' WHERE replication_id = $1::uuid"},
	{NULL, NULL},
};
