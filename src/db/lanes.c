/* Statements of the jobs whose lane is not a replication's: the locks
 * that accept them (peer, VDC, replica server), the network mappings a
 * job stages, and what their jobs change when they succeed; and the
 * provider's reads of replica servers. A lock statement takes $1 the
 * object and $2 the caller's org scope and answers its org and name
 * first (src/api/accept.c). */
#include "db/statements.h"

#define OPEN "('queued', 'running')"

const struct vr_db_stmt vr_db_stmts_lanes[] = {
	{"peer_lock",
	 "SELECT org_id, site_name FROM peers WHERE id = $1::uuid AND revoked_at IS NULL"
	 " AND ($2::uuid IS NULL OR org_id = $2::uuid) FOR UPDATE"},
	/* and whether the VDC is enabled for replication */
	{"vdc_lock", "SELECT org_id, name, replication_enabled FROM vdcs WHERE id = $1::uuid"
		     " AND ($2::uuid IS NULL OR org_id = $2::uuid) FOR UPDATE"},
	/* Replica servers belong to the provider (the System org); and
	 * whether an unregistration is already on its way. */
	{"server_lock",
	 "SELECT (SELECT o.id FROM orgs o WHERE o.is_system), s.name,"
	 " EXISTS (SELECT 1 FROM jobs j WHERE j.lane = 'server:' || s.id"
	 "   AND j.action = 'unregisterServer' AND j.state IN " OPEN ")"
	 " FROM replica_servers s WHERE s.id = $1::uuid AND s.state <> 'unregistered'"
	 " AND $2::uuid IS NULL FOR UPDATE OF s"},

	/* $1 job, $2 kind, $3 position, $4 source network, $5 target network
	 * id, $6 its name. */
	{"network_mapping_stage",
	 "INSERT INTO network_mapping_staging (job_id, kind, position, source_network,"
	 " target_network_id, target_network_name)"
	 " VALUES ($1::uuid, $2, $3::int, $4, $5::uuid, $6)"},
	/* Effects of a setNetworkMappings job: $1 peer, $2 the job's task. */
	{"effect_network_mappings_clear", "DELETE FROM network_mappings WHERE peer_id = $1::uuid"},
	{"effect_network_mappings_apply",
	 "INSERT INTO network_mappings (peer_id, kind, position, source_network,"
	 " target_network_id, target_network_name)"
	 " SELECT p.id, s.kind, s.position, s.source_network, s.target_network_id,"
	 " s.target_network_name FROM network_mapping_staging s JOIN jobs j ON j.id = s.job_id"
	 " JOIN peers p ON p.id = $1::uuid WHERE j.task_id = $2::uuid"},
	{"effect_network_mappings_unstage",
	 "DELETE FROM network_mapping_staging WHERE job_id = (SELECT id FROM jobs"
	 " WHERE task_id = $1::uuid)"},
	/* An editRecoveryDetails job: $1 VDC, $2 its params. */
	{"effect_vdc_recovery_details",
	 "UPDATE vdcs SET failover_enabled = ($2::jsonb ->> 'IsFailoverEnabled')::boolean,"
	 " test_failover_enabled = ($2::jsonb ->> 'IsTestFailoverEnabled')::boolean,"
	 " planned_migration_enabled = ($2::jsonb ->> 'IsPlannedMigrationEnabled')::boolean"
	 " WHERE id = $1::uuid"},
	/* An unregisterServer job: $1 server. Its credential can no longer
	 * run jobs, and what it staged waits for another server. */
	{"effect_server_unregister",
	 "UPDATE replica_servers SET state = 'unregistered' WHERE id = $1::uuid"},
	{"effect_server_release",
	 "UPDATE replications SET replica_server_id = NULL, updated_at = now()"
	 " WHERE replica_server_id = $1::uuid"},

	/* Reads of the provider ($1 server). */
	{"vr_servers_page",
	 "SELECT c.total, p.id, p.name FROM (SELECT count(*) AS total FROM replica_servers"
	 " WHERE state <> 'unregistered') c LEFT JOIN LATERAL (SELECT id, name"
	 " FROM replica_servers WHERE state <> 'unregistered' ORDER BY registered_at, id"
	 " LIMIT $1::bigint OFFSET $2::bigint) p ON true"},
	{"vr_server_get",
	 "SELECT s.id, s.name, s.traffic_address, s.state, vr_ts(s.registered_at),"
	 " vr_ts(s.last_heartbeat),"
	 " (SELECT count(*) FROM replications r WHERE r.replica_server_id = s.id)"
	 " FROM replica_servers s WHERE s.id = $1::uuid AND s.state <> 'unregistered'"},
	{"vr_server_statistics",
	 "SELECT s.id, (SELECT count(*) FROM replications r WHERE r.replica_server_id = s.id),"
	 " (SELECT count(*) FROM disks d JOIN replications r ON r.id = d.replication_id"
	 "   WHERE r.replica_server_id = s.id),"
	 " s.bytes_in, s.bytes_out, s.transfer_errors, vr_ts(s.registered_at)"
	 " FROM replica_servers s WHERE s.id = $1::uuid AND s.state <> 'unregistered'"},
	{NULL, NULL},
};
