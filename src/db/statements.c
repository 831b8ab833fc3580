#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_service[] = {
	{"ping", "SELECT 1"},
	/* GET /metrics (src/api/metrics.c): counts by state. */
	{"metrics_jobs", "SELECT state, count(*) FROM jobs GROUP BY state"},
	{"metrics_tasks", "SELECT status, count(*) FROM tasks GROUP BY status"},
	{"metrics_servers", "SELECT state, count(*) FROM replica_servers GROUP BY state"},
	{"metrics_peers",
	 "SELECT state, count(*) FROM peers WHERE revoked_at IS NULL GROUP BY state"},
	{NULL, NULL},
};

const struct vr_db_stmt *const vr_db_statement_tables[] = {
	vr_db_stmts_service, vr_db_stmts_auth,  vr_db_stmts_tenancy,
	vr_db_stmts_replications, vr_db_stmts_tasks, vr_db_stmts_servers, vr_db_stmts_jobs,
	vr_db_stmts_actions, vr_db_stmts_lanes, vr_db_stmts_failback, vr_db_stmts_configure,
	vr_db_stmts_cancel, vr_db_stmts_sites, vr_db_stmts_instances, vr_db_stmts_recovery,
	NULL,
};
