/* Statements that cancel a Task (POST /api/task/{id}/action/cancel) and
 * put back the replication state its job's acceptance changed. */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_cancel[] = {
	/* $1 task, $2 org scope: the Task, its user and its job (if any). */
	{"cancel_task_get",
	 "SELECT t.id, t.user_id, j.id FROM tasks t LEFT JOIN jobs j ON j.task_id = t.id"
	 " WHERE t.id = $1::uuid AND ($2::uuid IS NULL OR t.org_id = $2::uuid)"},
	/* $1 task. Locked after its job, in the order the job routes lock. */
	{"cancel_task_lock",
	 "SELECT end_time IS NOT NULL FROM tasks WHERE id = $1::uuid FOR UPDATE"},
	/* A running job's Task: the worker learns it from its next progress. */
	{"cancel_task_request",
	 "UPDATE tasks SET cancel_requested = true WHERE id = $1::uuid AND end_time IS NULL"},
	/* $1 job: the replication state recorded when it was accepted (NULLs
	 * when its lane changes none). */
	{"cancel_job_prior",
	 "SELECT prior_recovery_state, prior_test_recovery_state, prior_replication_state,"
	 " prior_paused FROM jobs WHERE id = $1::uuid"},
	/* $1 job, $2 recovery, $3 test recovery, $4 replication state, $5
	 * paused: recorded by the accepting transaction. */
	{"cancel_job_record_prior",
	 "UPDATE jobs SET prior_recovery_state = $2, prior_test_recovery_state = $3,"
	 " prior_replication_state = $4, prior_paused = $5::boolean WHERE id = $1::uuid"},
	/* $1 replication, locked for the rest of the transaction. */
	{"cancel_replication_lock",
	 "SELECT recovery_state, test_recovery_state, replication_state, paused"
	 " FROM replications WHERE id = $1::uuid FOR UPDATE"},
	{NULL, NULL},
};
