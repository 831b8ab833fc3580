/* Statements that accept an action: the replication's state under a row
 * lock, the Task, the job, and the idempotency key. */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_actions[] = {
	/* $1 replication, $2 org scope, $3 kind. Locks the row for the
	 * transaction. It has a failback from the moment a reverse is
	 * accepted: the failback row itself is made when that job succeeds. */
	{"action_replication_lock",
	 "SELECT r.id, r.name, r.kind, r.org_id, r.vdc_id, r.recovery_state,"
	 " r.test_recovery_state, r.replication_state, r.paused,"
	 " EXISTS (SELECT 1 FROM instances i WHERE i.replication_id = r.id),"
	 " v.failover_enabled, v.test_failover_enabled, v.planned_migration_enabled,"
	 " v.replication_enabled,"
	 " EXISTS (SELECT 1 FROM jobs j WHERE j.lane = 'replication:' || r.id"
	 "   AND j.action = 'delete' AND j.state IN ('queued', 'running')),"
	 " EXISTS (SELECT 1 FROM replications f WHERE f.kind = 'failback'"
	 "   AND f.source_replication_id = r.id)"
	 " OR EXISTS (SELECT 1 FROM jobs j WHERE j.lane = 'replication:' || r.id"
	 "   AND j.action = 'reverse' AND j.state IN ('queued', 'running')),"
	 " r.peer_id, coalesce(r.source_replication_id::text, '')"
	 " FROM replications r JOIN vdcs v ON v.id = r.vdc_id"
	 " WHERE r.id = $1::uuid AND r.kind = $3"
	 " AND ($2::uuid IS NULL OR r.org_id = $2::uuid)"
	 " FOR UPDATE OF r"},
	/* $1 instance, $2 replication: is it one of the replication's? */
	{"action_instance_of",
	 "SELECT 1 FROM instances WHERE id = $1::uuid AND replication_id = $2::uuid"},
	/* $1 user, $2 key: the Task an earlier request with this key made. */
	{"action_task_by_key",
	 "SELECT id FROM tasks WHERE user_id = $1::uuid AND operation_key = $2"},
	/* $1 org, $2 user, $3 user name, $4 owner kind, $5 owner id, $6 owner
	 * name, $7 operation, $8 operationName, $9 operation key. */
	{"action_task_insert",
	 "INSERT INTO tasks (org_id, user_id, user_name, owner_kind, owner_id, owner_name,"
	 " operation, operation_name, operation_key)"
	 " VALUES ($1::uuid, $2::uuid, $3, $4, $5::uuid, $6, $7, $8, $9) RETURNING id"},
	/* A refused action: its Task ends at once. $1 task, $2 major, $3 minor,
	 * $4 vendor, $5 message. */
	{"action_task_refuse",
	 "UPDATE tasks SET status = 'error', progress = 100, end_time = now(),"
	 " error_major = $2::int, error_minor = $3, error_vendor = $4, error_message = $5"
	 " WHERE id = $1::uuid"},
	/* $1 task, $2 org, $3 lane, $4 action, $5 params (JSON text). */
	{"action_job_insert",
	 "INSERT INTO jobs (task_id, org_id, lane, action, params)"
	 " VALUES ($1::uuid, $2::uuid, $3, $4, $5::jsonb) RETURNING id"},
	/* $1 replication, $2 recovery, $3 test recovery, $4 replication state,
	 * $5 paused. */
	{"action_replication_set_state",
	 "UPDATE replications SET recovery_state = $2, test_recovery_state = $3,"
	 " replication_state = $4,"
	 " paused_minutes = paused_minutes + CASE WHEN paused AND NOT $5::boolean"
	 "   THEN floor(extract(epoch FROM now() - paused_at) / 60)::bigint ELSE 0 END,"
	 " paused_at = CASE WHEN $5::boolean AND NOT paused THEN now()"
	 "   WHEN NOT $5::boolean THEN NULL ELSE paused_at END,"
	 " paused = $5::boolean,"
	 " recovery_completion_time = CASE WHEN $2 = 'recovered' AND recovery_state <> 'recovered'"
	 "   THEN now() ELSE recovery_completion_time END,"
	 " updated_at = now() WHERE id = $1::uuid"},
	{NULL, NULL},
};
