/* State shared by the threads of one vrcloud-worker: the control thread
 * (registration, heartbeats, leaving) in worker.c and the runner threads
 * in runner.c. */
#ifndef VRCLOUD_WORKER_INTERNAL_H
#define VRCLOUD_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "vrcloud/uuid.h"
#include "vrcloud/worker.h"

struct vr_receiver;
struct vr_store;
struct vr_store_instance;

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
	struct vr_receiver *receiver; /* the replication port; NULL when off */
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

/* --- the replication port (receiver.c, receive.c) ----------------------- */

/* Start listening at [worker] traffic_listen (default traffic_address) in
 * a thread of its own; an address in use is retried every few seconds.
 * Returns 0, VR_ECONFIG (a bad address, *error_out set) or VR_EIO. */
int vr_receiver_start(struct vr_receiver **out, struct vr_worker *worker, char **error_out);
/* The port's totals since the start: false (nothing) when it is off. */
struct vr_receiver_counts {
	unsigned long long bytes_in, bytes_out, errors;
};
bool vr_receiver_counts(struct vr_receiver *rx, struct vr_receiver_counts *out);
/* The heartbeat's ServerStatistics: what was counted since the last one. */
int vr_worker_doc_statistics(struct vr_buf *out, const struct vr_receiver_counts *delta);
/* Stop accepting connections (quick). */
void vr_receiver_quiesce(struct vr_receiver *rx);
/* Let the transfers in flight finish until deadline (CLOCK_MONOTONIC),
 * then cut the others (nothing partial is ever committed). */
void vr_receiver_stop(struct vr_receiver *rx, const struct timespec *deadline);
/* Free a stopped (or never started) receiver. */
void vr_receiver_free(struct vr_receiver *rx);

/* --- instances recorded through the API (instances.c) ----------------- */

/* Most instances an InstanceRetention answer may keep. */
#define VR_WORKER_MAX_KEEP 8192

struct vr_worker_retention {
	unsigned long long seq;
	char (*keep)[VR_UUID_LEN + 1];
	size_t nkeep, cap;
};

/* The InstanceRecord of a committed instance. */
int vr_worker_doc_instance(struct vr_buf *out, const char *server_id,
			   const struct vr_store_instance *inst, unsigned transfer_seconds);
int vr_worker_parse_retention(struct vr_worker_retention *out, const char *body, size_t len,
			      const char **reason_out);
void vr_worker_retention_free(struct vr_worker_retention *r);
/* POST the record doc for replication (retrying while the API is
 * unavailable, a few seconds at most); VR_ANSWER_OK with *out filled
 * (free it with vr_worker_retention_free), else error says why. */
enum vr_worker_answer_kind vr_worker_record_instance(struct vr_worker_client *client,
						     const char *replication,
						     const struct vr_buf *doc,
						     struct vr_worker_retention *out,
						     char *error, size_t error_size);
/* Drop from store every retained instance that retention does not keep
 * (never the newest or a pinned one). Returns 0 or the last failure. */
int vr_worker_store_reconcile(struct vr_store *store, const char *replication,
			      const struct vr_worker_retention *retention, unsigned *dropped_out);

#endif
