/* Publishing jobs to the Redis stream, from request threads (right after a
 * commit) and from the relay (for whatever that missed). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/publish.h"
#include "vrcloud/db.h"
#include "vrcloud/jobq.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"

static pthread_key_t queue_key;
static pthread_once_t queue_key_once = PTHREAD_ONCE_INIT;

static void queue_destroy(void *q)
{
	vr_jobq_close(q);
}

static void make_queue_key(void)
{
	pthread_key_create(&queue_key, queue_destroy);
}

/* The calling thread's job queue handle, or NULL while Redis is away. */
static struct vr_jobq *thread_queue(const struct vr_config *config)
{
	struct vr_redis *redis = vr_redis_thread(config->redis_uri);
	if (!redis)
		return NULL;
	pthread_once(&queue_key_once, make_queue_key);
	struct vr_jobq *q = pthread_getspecific(queue_key);
	if (q)
		return q;
	struct vr_jobq_config qc = {
		.prefix = config->jobs_prefix,
		.group = "workers",
		.consumer = "vrcloud-api",
		.claim_idle_ms = 30000,
		.max_deliveries = 5,
		.block_ms = 0,
	};
	if (vr_jobq_open(&q, redis, &qc))
		return NULL;
	pthread_setspecific(queue_key, q);
	return q;
}

int vr_publish_job(struct vr_db *db, const struct vr_config *config, const char *job_id)
{
	struct vr_jobq *q = thread_queue(config);
	if (!q)
		return -1;
	char entry[64];
	if (vr_jobq_publish(q, job_id, entry) != 0)
		return -1;
	const char *params[] = {job_id};
	vr_db_exec(db, "job_published", NULL, 1, params);
	return 0;
}

void vr_api_publish_lane(struct vr_request *req, const char *lane)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return;
	const char *params[] = {lane};
	PGresult *res = NULL;
	if (vr_db_exec(db, "job_lane_head", &res, 1, params) == 1) {
		if (vr_publish_job(db, vr_server_config(req->server), vr_db_str(res, 0, 0)))
			vr_log_warn("job_publish_deferred", "job", vr_db_str(res, 0, 0), "reason",
				    "redis unavailable; the relay publishes it later");
	}
	PQclear(res);
}
