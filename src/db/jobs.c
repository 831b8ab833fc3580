/* Statements over jobs, the outbox of asynchronous Tasks (docs/pipeline.md).
 * A lane's jobs run one at a time in seq order; only a lane's head (its
 * oldest open job) is ever handed to a worker. */
#include "db/statements.h"

#define OPEN "('queued', 'running')"

const struct vr_db_stmt vr_db_stmts_jobs[] = {
	/* $1 job. Locks the job row for the rest of the transaction. */
	{"job_lock",
	 "SELECT j.id, j.task_id, j.action, j.lane, j.state, j.params::text, j.deliveries,"
	 " j.worker_id, coalesce(j.heartbeat_at > now() - make_interval(secs => $2::int), false),"
	 " EXISTS (SELECT 1 FROM jobs o WHERE o.lane = j.lane AND o.seq < j.seq"
	 "   AND o.state IN " OPEN "),"
	 " t.cancel_requested, j.org_id"
	 " FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.id = $1::uuid FOR UPDATE OF j"},
	/* $1 server id, $2 credential name: the server belongs to the caller. */
	{"job_server_owned",
	 "SELECT 1 FROM replica_servers WHERE id = $1::uuid AND name = $2"
	 " AND state <> 'unregistered'"},
	/* $1 job, $2 server, $3 the stream's delivery count. Every start
	 * counts: a job the relay published again comes back as a new stream
	 * entry whose count starts over at 1. */
	{"job_start",
	 "UPDATE jobs SET state = 'running', deliveries = greatest(deliveries + 1, $3::int),"
	 " worker_id = $2::uuid, started_at = coalesce(started_at, now()), heartbeat_at = now()"
	 " WHERE id = $1::uuid RETURNING deliveries"},
	/* The first replica server that runs a job of a replication stages its
	 * data from then on (VrServerInfo). $1 lane, $2 server. */
	{"job_assign_server",
	 "UPDATE replications SET replica_server_id = $2::uuid"
	 " WHERE id = CASE WHEN $1 LIKE 'replication:%' THEN substr($1, 13)::uuid END"
	 " AND replica_server_id IS NULL"},
	{"job_task_running",
	 "UPDATE tasks SET status = 'running', progress = greatest(progress, 1)"
	 " WHERE id = $1::uuid AND status IN ('queued', 'running')"},
	/* $1 job, $2 server, $3 progress. */
	{"job_heartbeat",
	 "UPDATE jobs SET heartbeat_at = now() WHERE id = $1::uuid AND state = 'running'"
	 " AND worker_id = $2::uuid RETURNING task_id"},
	/* $1 job: whether it exists at all (progress answers 404 if not). */
	{"job_exists", "SELECT 1 FROM jobs WHERE id = $1::uuid"},
	{"job_task_progress",
	 "UPDATE tasks SET progress = greatest(progress, least($2::int, 99))"
	 " WHERE id = $1::uuid AND status = 'running' RETURNING cancel_requested"},
	/* $1 job, $2 final state. */
	{"job_finish",
	 "UPDATE jobs SET state = $2, finished_at = now(), heartbeat_at = now()"
	 " WHERE id = $1::uuid AND state IN " OPEN},
	/* $1 task, $2 status, $3 major, $4 minor, $5 vendor, $6 message. */
	{"job_task_finish",
	 "UPDATE tasks SET status = $2, progress = 100, end_time = now(),"
	 " error_major = $3::int, error_minor = $4, error_vendor = $5, error_message = $6"
	 " WHERE id = $1::uuid AND end_time IS NULL"},
	/* The head of a lane, if it waits to be published: queued and never
	 * published. A head already in the stream or running is left alone
	 * (the relay publishes it again should Redis lose it), so that every
	 * action accepted behind it does not add another delivery of it. */
	{"job_lane_head",
	 "SELECT h.id FROM (SELECT id, state, published_at FROM jobs"
	 " WHERE lane = $1 AND state IN " OPEN " ORDER BY seq LIMIT 1) h"
	 " WHERE h.state = 'queued' AND h.published_at IS NULL"},
	{"job_published", "UPDATE jobs SET published_at = now() WHERE id = $1::uuid"},
	/* The relay: heads not started within $1 s of their publication, or
	 * running without a sign of life for $2 s. */
	{"jobs_to_republish",
	 "SELECT j.id FROM jobs j WHERE j.state IN " OPEN
	 " AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.lane = j.lane AND o.seq < j.seq"
	 "   AND o.state IN " OPEN ")"
	 " AND ((j.state = 'queued' AND (j.published_at IS NULL"
	 "       OR j.published_at < now() - make_interval(secs => $1::int)))"
	 "   OR (j.state = 'running' AND j.heartbeat_at < now() - make_interval(secs => $2::int)"
	 "       AND (j.published_at IS NULL"
	 "            OR j.published_at < now() - make_interval(secs => $2::int))))"
	 " ORDER BY j.seq LIMIT $3::int"},
	/* Effects of finished jobs on replications ($1 replication). */
	{"effect_replication_lock",
	 "SELECT r.id, r.name, r.kind, r.org_id, r.vdc_id, r.recovery_state,"
	 " r.test_recovery_state, r.replication_state, r.paused,"
	 " EXISTS (SELECT 1 FROM instances i WHERE i.replication_id = r.id)"
	 " FROM replications r WHERE r.id = $1::uuid FOR UPDATE"},
	/* $1 replication, $2 kind, $3 power state, $4 the instance asked for
	 * (NULL: the newest). */
	{"effect_vapp_add",
	 "INSERT INTO vapps (org_id, vdc_id, replication_id, kind, name, power_state, instance_id)"
	 " SELECT r.org_id, r.vdc_id, r.id, $2, r.name || CASE $2 WHEN 'test' THEN '-test'"
	 "   ELSE '' END, $3,"
	 " coalesce($4::uuid, (SELECT i.id FROM instances i WHERE i.replication_id = r.id"
	 "   ORDER BY i.seq DESC LIMIT 1))"
	 " FROM replications r WHERE r.id = $1::uuid"},
	/* A removed replication's vApps go too, but a recovered VM stays. */
	{"effect_vapps_drop_all",
	 "UPDATE vapps SET deleted_at = now() WHERE replication_id = $1::uuid"
	 " AND kind IN ('placeholder', 'test') AND deleted_at IS NULL"},
	{"effect_vapps_drop",
	 "UPDATE vapps SET deleted_at = now() WHERE replication_id = $1::uuid AND kind = $2"
	 " AND deleted_at IS NULL"},
	{"effect_last_test", "UPDATE replications SET last_test_failover_op_id = $2::uuid"
			     " WHERE id = $1::uuid"},
	{"effect_replication_delete",
	 "DELETE FROM replications WHERE id = $1::uuid"},
	{NULL, NULL},
};
