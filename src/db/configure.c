/* Statements of pairing sites and configuring replications
 * (docs/configure.md): the accepting transactions of POST
 * /api/vdc/{id}/peers and POST /api/vdc/{id}/replications, the effects of
 * their jobs and of reconfigure. */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_configure[] = {
	/* $1 VDC, $2 org scope. Held until the end of the transaction, so
	 * that its flags stay as read. */
	{"configure_vdc_lock",
	 "SELECT v.org_id, v.failover_enabled, v.test_failover_enabled,"
	 " v.planned_migration_enabled, v.replication_enabled FROM vdcs v"
	 " WHERE v.id = $1::uuid AND ($2::uuid IS NULL OR v.org_id = $2::uuid) FOR SHARE"},
	/* A new pairing, or a new attempt of one that failed. $1 org, $2 VDC,
	 * $3 site UUID, $4 site name, $5 description, $6 credential hash. No
	 * row: the site is paired, or being paired, with the VDC already. */
	{"pair_peer_insert",
	 "INSERT INTO peers (org_id, vdc_id, site_uuid, site_name, description, credential_hash,"
	 " state) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, coalesce($5, ''), $6::bytea,"
	 " 'pairing')"
	 " ON CONFLICT (vdc_id, site_uuid) WHERE revoked_at IS NULL DO UPDATE"
	 " SET site_name = EXCLUDED.site_name, description = EXCLUDED.description,"
	 " credential_hash = EXCLUDED.credential_hash, state = 'pairing'"
	 " WHERE peers.state = 'error' RETURNING id"},
	/* $1 VDC, $2 site UUID: the live pairing of that site. */
	{"pair_peer_of_site",
	 "SELECT id, state FROM peers WHERE vdc_id = $1::uuid AND site_uuid = $2::uuid"
	 " AND revoked_at IS NULL"},
	/* $1 task, $2 peer. */
	{"pair_job_insert",
	 "INSERT INTO jobs (task_id, org_id, lane, action, params)"
	 " SELECT $1::uuid, p.org_id, 'peer:' || p.id, 'pair',"
	 " jsonb_build_object('SiteUuid', p.site_uuid, 'SiteName', p.site_name)"
	 " FROM peers p WHERE p.id = $2::uuid RETURNING id, lane"},

	/* $1 VDC: its paired peers, at most two (one is the default). */
	{"configure_paired_peers",
	 "SELECT id FROM peers WHERE vdc_id = $1::uuid AND revoked_at IS NULL"
	 " AND state = 'paired' ORDER BY created_at, id LIMIT 2"},
	/* $1 peer, $2 VDC. Writes the row (changing nothing) so that a
	 * concurrent configure of the same peer waits, then fails to
	 * serialize and retries: it sees this one's replication then. */
	{"configure_peer_lock",
	 "UPDATE peers SET state = state WHERE id = $1::uuid AND vdc_id = $2::uuid"
	 " AND revoked_at IS NULL RETURNING id, state, site_name"},
	/* $1 peer, $2 VM name. A replication whose VM was recovered in the
	 * cloud no longer replicates it: the site may protect it again (after
	 * a failback). */
	{"configure_name_taken",
	 "SELECT id FROM replications WHERE peer_id = $1::uuid AND kind = 'incoming'"
	 " AND name = $2 AND recovery_state <> 'recovered'"},
	/* $1 org, $2 VDC, $3 peer, $4 name, $5 description, $6 RPO, $7
	 * quiescing, $8 compression, $9 ReplicationState. */
	{"configure_replication_insert",
	 "INSERT INTO replications (kind, org_id, vdc_id, peer_id, name, description, rpo_minutes,"
	 " quiesce_guest, network_compression, replication_state)"
	 " VALUES ('incoming', $1::uuid, $2::uuid, $3::uuid, $4, coalesce($5, ''), $6::int,"
	 " $7::boolean, $8::boolean, $9) RETURNING id"},
	/* $1 replication, $2 device key, $3 name, $4 size in bytes. */
	{"configure_disk_insert",
	 "INSERT INTO disks (replication_id, device_key, name, size_bytes)"
	 " VALUES ($1::uuid, $2::int, $3, $4::bigint)"},
	/* $1 replication, $2 position, $3 instances, $4 distance in minutes. */
	{"configure_retention_insert",
	 "INSERT INTO retention_rules (replication_id, position, instances, distance_minutes)"
	 " VALUES ($1::uuid, $2::int, $3::int, $4::int)"},
	/* $1 task, $2 replication: the configure job, with what the replica
	 * server creates (the disks) as its parameters. */
	{"configure_job_insert",
	 "INSERT INTO jobs (task_id, org_id, lane, action, params)"
	 " SELECT $1::uuid, r.org_id, 'replication:' || r.id, 'configure',"
	 " jsonb_build_object('VmName', r.name, 'PeerId', r.peer_id, 'Disks',"
	 "   (SELECT coalesce(jsonb_agg(jsonb_build_object('DeviceKey', d.device_key,"
	 "     'SizeBytes', d.size_bytes) ORDER BY d.device_key), '[]'::jsonb)"
	 "    FROM disks d WHERE d.replication_id = r.id))"
	 " FROM replications r WHERE r.id = $2::uuid RETURNING id"},

	/* Effects. $1 peer, $2 its state at the end of the pair job. */
	{"effect_peer_state",
	 "UPDATE peers SET state = $2 WHERE id = $1::uuid AND revoked_at IS NULL"},
	/* $1 replication: its placeholder vApp, once. */
	{"effect_placeholder_add",
	 "WITH v AS (INSERT INTO vapps (org_id, vdc_id, replication_id, kind, name, power_state)"
	 " SELECT r.org_id, r.vdc_id, r.id, 'placeholder', r.name, 'off' FROM replications r"
	 " WHERE r.id = $1::uuid AND NOT EXISTS (SELECT 1 FROM vapps p"
	 "   WHERE p.replication_id = r.id AND p.kind = 'placeholder' AND p.deleted_at IS NULL)"
	 " RETURNING id, replication_id)"
	 " UPDATE replications r SET placeholder_vapp_id = v.id, updated_at = now() FROM v"
	 " WHERE r.id = v.replication_id"},
	/* $1 replication, $2 the reconfigure job's parameters: the settings it
	 * names; the others keep their values. */
	{"effect_reconfigure",
	 "UPDATE replications SET"
	 " rpo_minutes = coalesce(($2::jsonb ->> 'Rpo')::int, rpo_minutes),"
	 " quiesce_guest = coalesce(($2::jsonb ->> 'QuiesceGuestEnabled')::boolean,"
	 "   quiesce_guest),"
	 " network_compression = coalesce(($2::jsonb ->> 'NetworkCompressionEnabled')::boolean,"
	 "   network_compression),"
	 " updated_at = now() WHERE id = $1::uuid"},
	/* $1 replication, $2 parameters whose RetentionPolicy, when present,
	 * is a list of [instances, distance] that replaces the rules. */
	{"effect_retention_clear",
	 "DELETE FROM retention_rules WHERE replication_id = $1::uuid"
	 " AND jsonb_typeof($2::jsonb -> 'RetentionPolicy') = 'array'"},
	{"effect_retention_set",
	 "INSERT INTO retention_rules (replication_id, position, instances, distance_minutes)"
	 " SELECT $1::uuid, e.position::int, (e.rule ->> 0)::int, (e.rule ->> 1)::int"
	 " FROM jsonb_array_elements(CASE WHEN jsonb_typeof($2::jsonb -> 'RetentionPolicy')"
	 "   = 'array' THEN $2::jsonb -> 'RetentionPolicy' ELSE '[]'::jsonb END)"
	 " WITH ORDINALITY AS e(rule, position)"},

	{NULL, NULL},
};
