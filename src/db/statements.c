#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_service[] = {
	{"ping", "SELECT 1"},
	{NULL, NULL},
};

const struct vr_db_stmt *const vr_db_statement_tables[] = {
	vr_db_stmts_service, vr_db_stmts_auth,  vr_db_stmts_tenancy,
	vr_db_stmts_replications, vr_db_stmts_tasks, vr_db_stmts_servers, vr_db_stmts_jobs,
	vr_db_stmts_actions, vr_db_stmts_lanes, vr_db_stmts_failback, vr_db_stmts_configure,
	vr_db_stmts_cancel, vr_db_stmts_sites, NULL,
};
