/* State shared by the threads of one vrcloud-worker: the control thread
 * (registration, heartbeats, leaving) in worker.c and the runner threads
 * in runner.c. */
#ifndef VRCLOUD_WORKER_INTERNAL_H
#define VRCLOUD_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vrcloud/uuid.h"
#include "vrcloud/worker.h"

struct vr_worker_runner {
	struct vr_worker *worker;
	unsigned index;
	pthread_t thread;
	bool started;
	unsigned seed;		   /* rand_r state for backoff jitter */
	char consumer[192];	   /* its consumer name in the group: "<name>/<index>" */
	char job[VR_UUID_LEN + 1]; /* the job it runs, "" when none (worker's lock) */
};

struct vr_worker {
	const struct vr_worker_config *config;
	char token[VR_WORKER_MAX_TOKEN + 1];

	pthread_mutex_t lock;
	pthread_cond_t wake;		 /* broadcast on every change below (CLOCK_MONOTONIC) */
	char server_id[VR_UUID_LEN + 1]; /* "" until registered */
	bool reregister;		 /* a call said the API no longer knows server_id */
	bool runners_done;		 /* every runner thread has ended */
	unsigned runners_live;
	atomic_bool stopping; /* take no new deliveries */
	atomic_bool aborting; /* the shutdown timeout passed: give up running jobs */
	atomic_bool leaving;  /* the runners have ended: cut the control calls short */

	pthread_t control;
	bool control_started;
	struct vr_worker_runner *runners;
	unsigned nrunners;
};

/* What a sleep wakes early for. */
enum vr_worker_wake { VR_WAKE_STOP, VR_WAKE_ABORT, VR_WAKE_DONE };

/* Sleep up to ms; returns true when woken by the event instead. */
bool vr_worker_sleep(struct vr_worker *worker, unsigned ms, enum vr_worker_wake until);
/* Exponential backoff from 1 s to 30 s with +-20 % jitter. */
unsigned vr_worker_backoff_ms(unsigned attempt, unsigned *seed);
/* Copy the server id into out, waiting for the registration when wait is
 * set. Returns false when there is none (or the worker stops first). */
bool vr_worker_server_id(struct vr_worker *worker, char out[VR_UUID_LEN + 1], bool wait);
/* The API answered as if server_id were unknown: register again. */
void vr_worker_reregister(struct vr_worker *worker, const char *server_id);
void *vr_worker_runner_main(void *arg);

#endif
