/* Statements over vCD Tasks. */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_tasks[] = {
	{"task_get",
	 "SELECT t.id, t.operation, t.operation_name, t.status, t.progress, vr_ts(t.start_time),"
	 " vr_ts(t.end_time), vr_ts(t.expiry_time), t.cancel_requested, t.operation_key,"
	 " t.owner_kind, t.owner_id, t.owner_name, t.error_major, t.error_minor,"
	 " t.error_vendor, t.error_message, t.user_id, t.user_name, o.id, o.name, t.details"
	 " FROM tasks t JOIN orgs o ON o.id = t.org_id"
	 " WHERE t.id = $1::uuid AND ($2::uuid IS NULL OR t.org_id = $2::uuid)"},
	/* The org's Tasks, newest first: $1 org, $2 limit, $3 offset. Same
	 * columns as task_get. */
	{"tasks_of_org_count", "SELECT count(*) FROM tasks WHERE org_id = $1::uuid"},
	{"tasks_of_org",
	 "SELECT t.id, t.operation, t.operation_name, t.status, t.progress, vr_ts(t.start_time),"
	 " vr_ts(t.end_time), vr_ts(t.expiry_time), t.cancel_requested, t.operation_key,"
	 " t.owner_kind, t.owner_id, t.owner_name, t.error_major, t.error_minor,"
	 " t.error_vendor, t.error_message, t.user_id, t.user_name, o.id, o.name, t.details"
	 " FROM tasks t JOIN orgs o ON o.id = t.org_id WHERE t.org_id = $1::uuid"
	 " ORDER BY t.start_time DESC, t.id LIMIT $2::bigint OFFSET $3::bigint"},
	{NULL, NULL},
};
