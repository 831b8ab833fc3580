/* The outbox relay: Redis is a transport, not a store, so every open job
 * that should be in the stream and may not be is published again from
 * PostgreSQL. Duplicates are harmless (docs/pipeline.md). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api/publish.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"

struct vr_relay {
	const struct vr_config *config;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

/* One pass; returns how many jobs were published. */
static int relay_pass(struct vr_relay *relay)
{
	struct vr_db *db = vr_db_thread(relay->config->database_uri);
	if (!db)
		return 0;
	char republish[16], stale[16];
	snprintf(republish, sizeof republish, "%u", relay->config->jobs_republish_after);
	snprintf(stale, sizeof stale, "%u", relay->config->jobs_stale_after);
	const char *params[] = {republish, stale, "500"};
	PGresult *res = NULL;
	int rows = vr_db_exec(db, "jobs_to_republish", &res, 3, params);
	int published = 0;
	for (int i = 0; i < rows; i++) {
		if (vr_publish_job(db, relay->config, vr_db_str(res, i, 0)))
			break;
		published++;
	}
	PQclear(res);
	if (published) {
		char n[16];
		snprintf(n, sizeof n, "%d", published);
		vr_log_info("relay_published", "jobs", n);
	}
	return published;
}

static void *relay_main(void *arg)
{
	struct vr_relay *relay = arg;
	pthread_mutex_lock(&relay->lock);
	while (!relay->stopping) {
		pthread_mutex_unlock(&relay->lock);
		relay_pass(relay);
		pthread_mutex_lock(&relay->lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!relay->stopping)
			pthread_cond_timedwait(&relay->wake, &relay->lock, &until);
	}
	pthread_mutex_unlock(&relay->lock);
	vr_db_thread_close();
	return NULL;
}

int vr_relay_start(struct vr_relay **out, const struct vr_config *config)
{
	struct vr_relay *relay = vr_calloc(1, sizeof *relay);
	relay->config = config;
	pthread_mutex_init(&relay->lock, NULL);
	pthread_cond_init(&relay->wake, NULL);
	if (pthread_create(&relay->thread, NULL, relay_main, relay) != 0) {
		pthread_mutex_destroy(&relay->lock);
		pthread_cond_destroy(&relay->wake);
		free(relay);
		*out = NULL;
		return VR_EIO;
	}
	*out = relay;
	return 0;
}

void vr_relay_stop(struct vr_relay *relay)
{
	if (!relay)
		return;
	pthread_mutex_lock(&relay->lock);
	relay->stopping = true;
	pthread_cond_signal(&relay->wake);
	pthread_mutex_unlock(&relay->lock);
	pthread_join(relay->thread, NULL);
	pthread_mutex_destroy(&relay->lock);
	pthread_cond_destroy(&relay->wake);
	free(relay);
}
