/* Statements over orgs, VDCs, peers and network mappings. Every lookup of
 * a single object takes the caller's org scope as its last parameter:
 * NULL (System administrators) or the caller's org id, so that an object
 * of another org is indistinguishable from a missing one. Paged lists
 * return (total, id, name) rows, with one row of NULLs past the end. */
#include "db/statements.h"

#define SCOPE(col) " AND ($2::uuid IS NULL OR " col " = $2::uuid)"

/* Paged list over table t filtered by cond ($1..), limit/offset as the two
 * parameters after the filter's. */
#define PAGED(t, cond, order, lim, off)                                                            \
	"SELECT c.total, p.id, p.name FROM (SELECT count(*) AS total FROM " t " WHERE " cond     \
	") c LEFT JOIN LATERAL (SELECT id, name FROM " t " WHERE " cond " ORDER BY " order         \
	" LIMIT " lim " OFFSET " off ") p ON true"

const struct vr_db_stmt vr_db_stmts_tenancy[] = {
	{"org_visible", "SELECT 1 FROM orgs WHERE id = $1::uuid" SCOPE("id")},
	{"org_list",
	 "SELECT id, name FROM orgs WHERE ($1::uuid IS NULL OR id = $1::uuid)"
	 " ORDER BY is_system DESC, lower(name), id"},
	{"org_get",
	 "SELECT id, name, full_name, description, is_system FROM orgs"
	 " WHERE id = $1::uuid" SCOPE("id")},
	{"org_vdcs", "SELECT id, name FROM vdcs WHERE org_id = $1::uuid ORDER BY lower(name), id"},
	{"org_enabled_vdcs",
	 PAGED("vdcs", "org_id = $1::uuid AND replication_enabled", "lower(name), id",
	       "$2::bigint", "$3::bigint")},

	{"vdc_visible", "SELECT 1 FROM vdcs WHERE id = $1::uuid" SCOPE("org_id")},
	{"vdc_get",
	 "SELECT v.id, v.name, v.description, v.org_id, o.name, v.replication_enabled,"
	 " v.failover_enabled, v.test_failover_enabled, v.planned_migration_enabled,"
	 " v.cpu_limit_mhz, v.memory_limit_mb, v.storage_limit_mb"
	 " FROM vdcs v JOIN orgs o ON o.id = v.org_id WHERE v.id = $1::uuid" SCOPE("v.org_id")},
	{"vdc_peers",
	 "SELECT c.total, p.id, p.site_name FROM (SELECT count(*) AS total FROM peers"
	 " WHERE vdc_id = $1::uuid AND revoked_at IS NULL) c LEFT JOIN LATERAL"
	 " (SELECT id, site_name FROM peers WHERE vdc_id = $1::uuid AND revoked_at IS NULL"
	 " ORDER BY created_at, id LIMIT $2::bigint OFFSET $3::bigint) p ON true"},
	/* Typed query /api/admin/vdcs/query: $1 = org scope. */
	{"vdc_query_count",
	 "SELECT count(*) FROM vdcs WHERE ($1::uuid IS NULL OR org_id = $1::uuid)"},
	{"vdc_query_page",
	 "SELECT v.id, v.name, o.name, v.replication_enabled,"
	 " (SELECT count(*) FROM replications r WHERE r.vdc_id = v.id),"
	 " v.cpu_limit_mhz, v.memory_limit_mb, v.storage_limit_mb"
	 " FROM vdcs v JOIN orgs o ON o.id = v.org_id"
	 " WHERE ($1::uuid IS NULL OR v.org_id = $1::uuid)"
	 " ORDER BY lower(o.name), lower(v.name), v.id LIMIT $2::bigint OFFSET $3::bigint"},

	{"peer_visible",
	 "SELECT 1 FROM peers WHERE id = $1::uuid AND revoked_at IS NULL" SCOPE("org_id")},
	{"peer_get",
	 "SELECT id, site_uuid, site_name, description, vdc_id, state FROM peers"
	 " WHERE id = $1::uuid AND revoked_at IS NULL" SCOPE("org_id")},
	{"peer_network_mappings",
	 "SELECT m.kind, m.position, m.source_network, m.target_network_id, m.target_network_name"
	 " FROM network_mappings m JOIN peers p ON p.id = m.peer_id"
	 " WHERE m.peer_id = $1::uuid" SCOPE("p.org_id") " ORDER BY m.kind, m.position"},

	{"replica_servers_count",
	 "SELECT count(*) FROM replica_servers WHERE state <> 'unregistered'"},
	{"replica_servers_page",
	 "SELECT id, name, traffic_address, state, vr_ts(last_heartbeat) FROM replica_servers"
	 " WHERE state <> 'unregistered' ORDER BY registered_at, id"
	 " LIMIT $1::bigint OFFSET $2::bigint"},
	{NULL, NULL},
};
