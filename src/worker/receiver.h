/* The replication port of a worker (docs/worker.md, "Replication port"):
 * the listener and its connection slots (receiver.c), and one data
 * connection from a proxy (receive.c). */
#ifndef VRCLOUD_WORKER_RECEIVER_H
#define VRCLOUD_WORKER_RECEIVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "worker/internal.h"

/* Connections that are only told "busy" beyond max_transfers. */
#define VR_RECEIVER_REFUSERS 8
/* How long a replica store's lock is waited for: another transfer of the
 * same replication holds it for the whole transfer, a recovery job for a
 * while; the agent retries later (VR_TX_EBUSY). */
#define VR_RECEIVER_LOCK_MS 1000

struct vr_receiver;

struct vr_receiver_slot {
	struct vr_receiver *rx;
	pthread_t thread;
	bool used;	  /* a thread was started and not yet joined */
	atomic_bool done; /* its thread has ended: join it */
	bool refuse;	  /* over max_transfers: answer busy */
	int fd;
	char client[64];
};

struct vr_receiver {
	struct vr_worker *worker;
	const struct vr_worker_config *config;
	char *listen_address;
	int listen_fd;
	pthread_t thread;
	bool started;
	atomic_bool stopping; /* accept nothing more */
	atomic_bool cut;      /* the shutdown timeout passed: end every transfer */

	pthread_mutex_t lock;
	pthread_cond_t changed; /* a slot ended (CLOCK_MONOTONIC) */
	struct vr_receiver_slot *slots;
	unsigned nslots; /* max_transfers + VR_RECEIVER_REFUSERS */
	unsigned active; /* slots in use */

	/* counters, for the log */
	atomic_uint_fast64_t bytes_in;
	atomic_uint_fast64_t bytes_out;
	atomic_uint_fast64_t committed;
	atomic_uint_fast64_t failed;
};

/* Serve one accepted connection (the slot's fd, closed at the end). */
void vr_receive_serve(struct vr_receiver_slot *slot);

#endif
