/* The job transport: job ids travel from the API (which records each job in
 * PostgreSQL first) to the workers through a Redis stream read by one
 * consumer group. Redis is only the transport; docs/job-transport.md has the
 * keys, the delivery order and the claim and dead-letter rules.
 *
 * Stream "<prefix>:jobs" (XADD MAXLEN ~ 100000), group "workers", one field
 * job=<uuid>. Dead letters go to "<prefix>:jobs:dead" with the fields
 * job=<uuid> reason=<text> deliveries=<n>. The prefix defaults to "vrcloud";
 * a different one lets tests and several installations share a Redis.
 *
 * A struct vr_jobq works through one struct vr_redis, whose hiredis context
 * belongs to one thread: a queue handle is used by that thread only. */
#ifndef VRCLOUD_JOBQ_H
#define VRCLOUD_JOBQ_H

struct vr_redis; /* vrcloud/redis.h */

/* Approximate length the jobs stream is trimmed to on every publish. */
#define VR_JOBQ_MAXLEN "100000"
/* Longest wait of vr_jobq_next: the connection's read timeout is 5 s, and a
 * blocked read must return before it. */
#define VR_JOBQ_BLOCK_MS_MAX 4000u

struct vr_jobq;

/* Zero (or NULL) fields take the defaults shown. */
struct vr_jobq_config {
	const char *prefix;	 /* "vrcloud" */
	const char *group;	 /* "workers" */
	const char *consumer;	 /* this consumer's name, stable across restarts;
				  * needed by vr_jobq_next and vr_jobq_touch only */
	unsigned claim_idle_ms;	 /* 60000: a delivery unacknowledged this long may be
				  * claimed by another consumer */
	unsigned max_deliveries; /* 5: one more delivery goes to the dead letters */
	unsigned block_ms;	 /* 0: vr_jobq_next does not wait for new entries;
				  * capped at VR_JOBQ_BLOCK_MS_MAX */
};

/* A new queue handle over redis (not owned: it must outlive the handle).
 * Does not contact Redis. c may be NULL for all defaults. Returns 0 or
 * VR_EINVAL (an empty or overlong name). */
int vr_jobq_open(struct vr_jobq **out, struct vr_redis *redis, const struct vr_jobq_config *c);
void vr_jobq_close(struct vr_jobq *q);

/* Create the stream and the group (XGROUP CREATE <stream> <group> 0
 * MKSTREAM) unless the group exists. The group starts at the stream's first
 * entry, so that jobs published before any worker ran are delivered too
 * (acknowledged entries are deleted, so nothing in the stream is stale).
 * Returns 0, VR_EUNAVAIL (Redis unreachable) or VR_EIO (Redis refused). */
int vr_jobq_ensure_group(struct vr_jobq *q);

/* Add a job (XADD). job_id must be a UUID (either case; sent lowercase).
 * entry_id_out (may be NULL) receives the stream entry's id. Returns 0,
 * VR_EINVAL, VR_EUNAVAIL or VR_EIO. */
int vr_jobq_publish(struct vr_jobq *q, const char *job_id, char entry_id_out[64]);

struct vr_jobq_delivery {
	char entry_id[64];   /* the entry in the jobs stream */
	char job_id[37];     /* canonical lowercase UUID */
	unsigned deliveries; /* times delivered, this one included */
};

/* The next deliveries for this consumer, in this order:
 *  1. on the first calls after vr_jobq_open, the consumer's own pending
 *     entries (read from ID 0: work it had taken before a restart);
 *  2. entries of other consumers left unacknowledged for claim_idle_ms or
 *     longer (XAUTOCLAIM);
 *  3. new entries (XREADGROUP >), waiting up to block_ms when steps 1 and 2
 *     found nothing.
 * Delivery counts come from XPENDING. An entry delivered more than
 * max_deliveries times is added to the dead-letter stream, acknowledged and
 * deleted, and returned in dead_out (entry_id is its id in the jobs stream)
 * so that the caller can fail its Task; with dead_max 0 such entries are
 * only logged. An entry whose job field is not a UUID is acknowledged,
 * deleted and logged, never returned. When the stream and group have been
 * lost (FLUSHALL, a restart without persistence), the group is recreated and
 * reading goes on. Each call reads at most max entries, and at most dead_max
 * when that is not 0, so that every entry read fits where it belongs.
 *
 * Returns the number of deliveries in out (0: nothing now), with
 * *ndead_out (may be NULL when dead_max is 0) set to the number of dead
 * letters in dead_out; VR_EINVAL (bad arguments, no consumer name);
 * VR_EUNAVAIL (Redis unreachable) or VR_EIO (Redis refused) when nothing at
 * all was read. Entries read before a later step failed are returned. */
int vr_jobq_next(struct vr_jobq *q, struct vr_jobq_delivery *out, unsigned max,
		 struct vr_jobq_delivery *dead_out, unsigned dead_max, unsigned *ndead_out);

/* Acknowledge and delete an entry (XACK, XDEL) once its job's result is
 * recorded. Acknowledging an entry that is no longer pending (done by
 * another consumer, lost with a flush) is not an error. Returns 0,
 * VR_EINVAL (not a stream entry id), VR_EUNAVAIL or VR_EIO. */
int vr_jobq_ack(struct vr_jobq *q, const char *entry_id);

/* Tell the group that this consumer is still working on entry_id, so that
 * no other consumer claims it: resets its idle time without counting a
 * delivery (XCLAIM JUSTID, only while this consumer owns it). A job that can
 * run longer than claim_idle_ms calls this regularly. Returns 0,
 * VR_ENOTFOUND (the entry is not pending for this consumer any more: it was
 * claimed by another, acknowledged or lost), VR_EINVAL, VR_EUNAVAIL or
 * VR_EIO. */
int vr_jobq_touch(struct vr_jobq *q, const char *entry_id);

/* Number of entries delivered and not yet acknowledged, all consumers of
 * the group together (XPENDING). Returns 0, VR_EUNAVAIL or VR_EIO. */
int vr_jobq_pending_count(struct vr_jobq *q, unsigned long long *out);

#endif
