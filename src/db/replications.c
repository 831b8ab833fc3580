/* Statements over replications (incoming and failback), their instances
 * and disks. $2 is always the caller's org scope (NULL = all). */
#include "db/statements.h"

#define SCOPE " AND ($2::uuid IS NULL OR r.org_id = $2::uuid)"

#define PAGED(filter)                                                                              \
	"SELECT c.total, p.id, p.name FROM (SELECT count(*) AS total FROM replications"           \
	" WHERE " filter " AND kind = $2) c LEFT JOIN LATERAL (SELECT id, name FROM replications" \
	" WHERE " filter " AND kind = $2 ORDER BY created_at, id"                                 \
	" LIMIT $3::bigint OFFSET $4::bigint) p ON true"

const struct vr_db_stmt vr_db_stmts_replications[] = {
	/* $1 id, $2 scope, $3 kind. CurrentRpoViolation: minutes by which the
	 * age of the newest instance (from the replication's creation while
	 * there is none) exceeds the RPO; time spent paused does not count. */
	{"replication_get",
	 "SELECT r.id, r.name, r.description, r.rpo_minutes, r.quiesce_guest,"
	 " r.network_compression, r.placeholder_vapp_id, r.event_partition_id,"
	 " r.replication_state, rs.id, rs.traffic_address, r.next_instance_seq, r.paused,"
	 " GREATEST(0, floor(extract(epoch FROM"
	 "   COALESCE(CASE WHEN r.paused THEN r.paused_at END, now())"
	 "   - COALESCE(li.transfer_start_time, r.created_at)) / 60)::bigint"
	 "   - r.paused_minutes - r.rpo_minutes),"
	 " r.test_recovery_state, r.recovery_state, vr_ts(r.recovery_completion_time),"
	 " li.id, vr_ts(li.transfer_start_time), li.transfer_seconds, li.transfer_bytes,"
	 " r.last_test_failover_op_id, r.vdc_id, r.peer_id, r.org_id,"
	 " (SELECT string_agg(rr.instances || ':' || rr.distance_minutes, ','"
	 "   ORDER BY rr.position) FROM retention_rules rr WHERE rr.replication_id = r.id)"
	 " FROM replications r"
	 " LEFT JOIN replica_servers rs ON rs.id = r.replica_server_id"
	 " LEFT JOIN LATERAL (SELECT i.id, i.transfer_start_time, i.transfer_seconds,"
	 "   i.transfer_bytes FROM instances i WHERE i.replication_id = r.id"
	 "   ORDER BY i.seq DESC LIMIT 1) li ON true"
	 " WHERE r.id = $1::uuid AND r.kind = $3" SCOPE},
	{"replication_visible",
	 "SELECT 1 FROM replications r WHERE r.id = $1::uuid AND r.kind = 'incoming'" SCOPE},
	{"replication_instances",
	 "SELECT i.id, vr_ts(i.transfer_start_time), i.transfer_seconds, i.transfer_bytes"
	 " FROM instances i JOIN replications r ON r.id = i.replication_id"
	 " WHERE r.id = $1::uuid AND r.kind = 'incoming'" SCOPE " ORDER BY i.seq DESC"},
	{"replication_disks",
	 "SELECT d.id, d.device_key, d.size_bytes, d.used_bytes, d.datastore_ref, r.source_vm_id,"
	 " r.name, r.datastore_server_href FROM disks d JOIN replications r ON r.id = d.replication_id"
	 " WHERE r.id = $1::uuid" SCOPE " ORDER BY d.device_key"},
	{"replications_by_org", PAGED("org_id = $1::uuid")},
	{"replications_by_vdc", PAGED("vdc_id = $1::uuid")},
	{"replications_by_peer", PAGED("peer_id = $1::uuid")},
	{NULL, NULL},
};
