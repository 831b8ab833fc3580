/* Statements of the instance record of replica servers
 * (src/api/internal_instances.c, docs/instances.md). */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_instances[] = {
	/* $1 replication: the incoming replication under a row lock. */
	{"instance_replication_lock",
	 "SELECT r.replica_server_id::text, r.next_instance_seq, r.replication_state"
	 " FROM replications r WHERE r.id = $1::uuid AND r.kind = 'incoming' FOR UPDATE"},
	/* $1 instance id: an instance recorded before, of any replication. */
	{"instance_find",
	 "SELECT i.replication_id::text, i.seq,"
	 " (extract(epoch FROM i.transfer_start_time) * 1000)::bigint,"
	 " encode(i.hash_root, 'hex'), i.blocks"
	 " FROM instances i WHERE i.id = $1::uuid"},
	/* $1 id, $2 replication, $3 seq, $4 point in time (Unix ms), $5 transfer
	 * seconds, $6 bytes, $7 blocks, $8 hash root (hex), $9 server. */
	{"instance_insert",
	 "INSERT INTO instances (id, replication_id, seq, transfer_start_time, transfer_seconds,"
	 " transfer_bytes, blocks, hash_root, server_id)"
	 " VALUES ($1::uuid, $2::uuid, $3::bigint, to_timestamp($4::bigint / 1000.0),"
	 " $5::bigint, $6::bigint, $7::bigint, decode($8, 'hex'), $9::uuid)"},
	/* $1 replication, $2 the seq just used. The first instance ends the
	 * initial (or full) sync. */
	{"instance_advance",
	 "UPDATE replications SET next_instance_seq = GREATEST(next_instance_seq, $2::bigint + 1),"
	 " replication_state = CASE WHEN replication_state IN ('initialSync', 'fullSync')"
	 "   THEN 'ok' ELSE replication_state END, updated_at = now()"
	 " WHERE id = $1::uuid"},
	/* $1 replication: its retention rules, fine to coarse. */
	{"instance_rules",
	 "SELECT instances, distance_minutes FROM retention_rules"
	 " WHERE replication_id = $1::uuid ORDER BY position"},
	/* $1 replication: its instances, newest recorded first, with their
	 * points in time in Unix seconds and whether retention must keep
	 * them: pinned, or named by a queued or running job of the
	 * replication (a failover or test failover to an InstanceId). */
	{"instance_list",
	 "SELECT i.id::text, floor(extract(epoch FROM i.transfer_start_time))::bigint,"
	 " i.pinned OR i.id::text IN (SELECT j.params->>'InstanceId' FROM jobs j"
	 "   WHERE j.lane = 'replication:' || $1::uuid AND j.state IN ('queued', 'running')"
	 "   AND j.params->>'InstanceId' IS NOT NULL)"
	 " FROM instances i WHERE i.replication_id = $1::uuid ORDER BY i.seq DESC"},
	/* $1 replication, $2 the ids to keep as a uuid[] literal. */
	{"instance_prune",
	 "DELETE FROM instances WHERE replication_id = $1::uuid AND NOT (id = ANY ($2::uuid[]))"},
	/* $1 replication, $2 its configure job's Task: the server that ran the
	 * job (and created the replica disks) holds the replication, unless
	 * one already does. */
	{"effect_replica_server_take",
	 "UPDATE replications r SET replica_server_id = j.worker_id, updated_at = now()"
	 " FROM jobs j WHERE r.id = $1::uuid AND j.task_id = $2::uuid"
	 " AND r.replica_server_id IS NULL AND j.worker_id IS NOT NULL"},
	{NULL, NULL},
};
