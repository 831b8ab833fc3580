#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/jobq.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"
#include "vrcloud/uuid.h"

#define DEFAULT_PREFIX	       "vrcloud"
#define DEFAULT_GROUP	       "workers"
#define DEFAULT_CLAIM_IDLE_MS  60000u
#define DEFAULT_MAX_DELIVERIES 5u
/* Longest prefix, group or consumer name accepted. */
#define NAME_MAX_LEN 200
/* XAUTOCLAIM calls per vr_jobq_next at most (each scans up to ten times
 * the entries it asks for). */
#define CLAIM_ROUNDS 8

/* Internal result of a command: the group (and likely the stream) is gone. */
#define GROUP_LOST 1

struct vr_jobq {
	struct vr_redis *redis; /* not owned */
	char *stream;
	char *dead_stream;
	char *group;
	char *consumer; /* NULL: publishing only */
	unsigned claim_idle_ms;
	unsigned max_deliveries;
	unsigned block_ms;
	/* The consumer's own pending entries are read once after opening,
	 * page by page from backlog_cursor (exclusive). */
	bool backlog;
	char backlog_cursor[64];
	/* Where the next XAUTOCLAIM scan of the group's pending list starts. */
	char claim_cursor[64];
};

/* Where one vr_jobq_next call puts what it reads. */
struct batch {
	struct vr_jobq_delivery *out;
	unsigned max, n;
	struct vr_jobq_delivery *dead;
	unsigned dead_max, ndead;
};

/* An entry read from the stream whose job field is a UUID. */
struct candidate {
	char entry_id[64];
	char job_id[VR_UUID_LEN + 1];
	unsigned deliveries; /* 0: not pending for this consumer */
};

static bool valid_name(const char *s)
{
	return s && s[0] && strlen(s) <= NAME_MAX_LEN;
}

/* A stream entry id: digits '-' digits, shorter than 64 bytes. */
static bool valid_entry_id(const char *id)
{
	if (!id)
		return false;
	size_t len = strlen(id);
	if (len == 0 || len >= 64)
		return false;
	const char *dash = strchr(id, '-');
	if (!dash || dash == id || dash[1] == '\0')
		return false;
	for (const char *p = id; *p; p++)
		if (p != dash && (*p < '0' || *p > '9'))
			return false;
	return true;
}

int vr_jobq_open(struct vr_jobq **out, struct vr_redis *redis, const struct vr_jobq_config *c)
{
	*out = NULL;
	struct vr_jobq_config none = {0};
	if (!c)
		c = &none;
	const char *prefix = c->prefix ? c->prefix : DEFAULT_PREFIX;
	const char *group = c->group ? c->group : DEFAULT_GROUP;
	if (!redis || !valid_name(prefix) || !valid_name(group) ||
	    (c->consumer && !valid_name(c->consumer)))
		return VR_EINVAL;
	struct vr_jobq *q = vr_calloc(1, sizeof *q);
	q->redis = redis;
	q->stream = vr_asprintf("%s:jobs", prefix);
	q->dead_stream = vr_asprintf("%s:jobs:dead", prefix);
	q->group = vr_strdup(group);
	q->consumer = c->consumer ? vr_strdup(c->consumer) : NULL;
	q->claim_idle_ms = c->claim_idle_ms ? c->claim_idle_ms : DEFAULT_CLAIM_IDLE_MS;
	q->max_deliveries = c->max_deliveries ? c->max_deliveries : DEFAULT_MAX_DELIVERIES;
	q->block_ms = c->block_ms < VR_JOBQ_BLOCK_MS_MAX ? c->block_ms : VR_JOBQ_BLOCK_MS_MAX;
	q->backlog = true;
	strcpy(q->backlog_cursor, "0");
	strcpy(q->claim_cursor, "0-0");
	*out = q;
	return 0;
}

void vr_jobq_close(struct vr_jobq *q)
{
	if (!q)
		return;
	free(q->stream);
	free(q->dead_stream);
	free(q->group);
	free(q->consumer);
	free(q);
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Run a command. Returns 0 with *reply set (never an error reply),
 * GROUP_LOST when Redis says the group or stream no longer exists,
 * VR_EUNAVAIL when Redis cannot be reached or cannot serve now, VR_EIO on
 * any other error reply (logged). */
static int command(struct vr_jobq *q, redisReply **reply, int argc, const char **argv)
{
	*reply = NULL;
	redisReply *r = vr_redis_command(q->redis, argc, argv);
	if (!r)
		return VR_EUNAVAIL;
	if (r->type != REDIS_REPLY_ERROR) {
		*reply = r;
		return 0;
	}
	const char *msg = r->str ? r->str : "";
	int rc;
	/* A read blocked on a stream that is deleted is answered UNBLOCKED. */
	if (starts_with(msg, "NOGROUP") || starts_with(msg, "UNBLOCKED")) {
		rc = GROUP_LOST;
	} else if (starts_with(msg, "LOADING") || starts_with(msg, "BUSY ") ||
		   starts_with(msg, "MASTERDOWN") || starts_with(msg, "READONLY") ||
		   starts_with(msg, "TRYAGAIN") || starts_with(msg, "CLUSTERDOWN") ||
		   starts_with(msg, "OOM")) {
		vr_log_warn("jobq_redis_unavailable", "command", argv[0], "error", msg);
		rc = VR_EUNAVAIL;
	} else {
		vr_log_error("jobq_redis_error", "command", argv[0], "stream", q->stream, "error",
			     msg);
		rc = VR_EIO;
	}
	freeReplyObject(r);
	return rc;
}

/* XGROUP CREATE from the first entry; an existing group is fine. */
static int create_group(struct vr_jobq *q)
{
	const char *argv[] = {"XGROUP", "CREATE", q->stream, q->group, "0", "MKSTREAM"};
	redisReply *r = vr_redis_command(q->redis, 6, argv);
	if (!r)
		return VR_EUNAVAIL;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		const char *msg = r->str ? r->str : "";
		if (!starts_with(msg, "BUSYGROUP")) {
			vr_log_error("jobq_group_create_failed", "stream", q->stream, "group",
				     q->group, "error", msg);
			rc = starts_with(msg, "LOADING") || starts_with(msg, "OOM") ||
					     starts_with(msg, "READONLY")
				     ? VR_EUNAVAIL
				     : VR_EIO;
		}
	}
	freeReplyObject(r);
	return rc;
}

/* The group vanished under us (Redis flushed or restarted empty): make it
 * again. This consumer's pending entries went with it. */
static int recreate_group(struct vr_jobq *q)
{
	vr_log_warn("jobq_group_recreated", "stream", q->stream, "group", q->group);
	q->backlog = false;
	strcpy(q->claim_cursor, "0-0");
	return create_group(q);
}

/* command(), recreating a lost group and trying once more. */
static int command_in_group(struct vr_jobq *q, redisReply **reply, int argc, const char **argv)
{
	int rc = command(q, reply, argc, argv);
	if (rc != GROUP_LOST)
		return rc;
	rc = recreate_group(q);
	if (rc)
		return rc;
	rc = command(q, reply, argc, argv);
	return rc == GROUP_LOST ? VR_EIO : rc;
}

int vr_jobq_ensure_group(struct vr_jobq *q)
{
	return create_group(q);
}

int vr_jobq_publish(struct vr_jobq *q, const char *job_id, char entry_id_out[64])
{
	if (entry_id_out)
		entry_id_out[0] = '\0';
	char job[VR_UUID_LEN + 1];
	if (vr_uuid_canon(job, job_id))
		return VR_EINVAL;
	const char *argv[] = {"XADD", q->stream, "MAXLEN", "~", VR_JOBQ_MAXLEN, "*", "job", job};
	redisReply *r;
	int rc = command(q, &r, 8, argv);
	if (rc)
		return rc == GROUP_LOST ? VR_EIO : rc;
	if (r->type != REDIS_REPLY_STRING || !valid_entry_id(r->str)) {
		vr_log_error("jobq_unexpected_reply", "command", "XADD", "stream", q->stream);
		freeReplyObject(r);
		return VR_EIO;
	}
	if (entry_id_out)
		snprintf(entry_id_out, 64, "%s", r->str);
	freeReplyObject(r);
	return 0;
}

/* XACK then XDEL: an entry that is done leaves the stream, so that the
 * stream only holds work not yet finished. */
static int ack_delete(struct vr_jobq *q, const char *entry_id)
{
	const char *ack[] = {"XACK", q->stream, q->group, entry_id};
	redisReply *r;
	int rc = command(q, &r, 4, ack);
	if (rc == GROUP_LOST) {
		/* nothing is pending in a group that does not exist */
		rc = recreate_group(q);
	} else if (rc == 0) {
		freeReplyObject(r);
	}
	if (rc)
		return rc;
	const char *del[] = {"XDEL", q->stream, entry_id};
	rc = command(q, &r, 3, del);
	if (rc == 0)
		freeReplyObject(r);
	return rc == GROUP_LOST ? VR_EIO : rc;
}

int vr_jobq_ack(struct vr_jobq *q, const char *entry_id)
{
	if (!valid_entry_id(entry_id))
		return VR_EINVAL;
	return ack_delete(q, entry_id);
}

int vr_jobq_touch(struct vr_jobq *q, const char *entry_id)
{
	if (!q->consumer || !valid_entry_id(entry_id))
		return VR_EINVAL;
	/* Only the owner may refresh an entry: XCLAIM alone would take it back
	 * from a consumer that has claimed it meanwhile. */
	static const char script[] =
		"local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
		"if #p == 1 and p[1][2] == ARGV[2] then\n"
		"  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')\n"
		"  return 1\n"
		"end\n"
		"return 0\n";
	const char *argv[] = {"EVAL", script, "1", q->stream, q->group, q->consumer, entry_id};
	redisReply *r;
	int rc = command(q, &r, 7, argv);
	if (rc == GROUP_LOST) {
		rc = recreate_group(q);
		return rc ? rc : VR_ENOTFOUND;
	}
	if (rc)
		return rc;
	rc = r->type == REDIS_REPLY_INTEGER ? (r->integer == 1 ? 0 : VR_ENOTFOUND) : VR_EIO;
	freeReplyObject(r);
	return rc;
}

int vr_jobq_pending_count(struct vr_jobq *q, unsigned long long *out)
{
	*out = 0;
	const char *argv[] = {"XPENDING", q->stream, q->group};
	redisReply *r;
	int rc = command(q, &r, 3, argv);
	if (rc == GROUP_LOST)
		return recreate_group(q); /* a new group has nothing pending */
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0) {
		vr_log_error("jobq_unexpected_reply", "command", "XPENDING", "stream", q->stream);
		rc = VR_EIO;
	} else {
		*out = (unsigned long long)r->element[0]->integer;
	}
	freeReplyObject(r);
	return rc;
}

/* ---- reading --------------------------------------------------------- */

/* Entries that still fit in the batch: each one read ends either as a
 * delivery or as a dead letter, so both must have room for it. */
static unsigned room(const struct batch *b)
{
	unsigned n = b->max - b->n;
	if (b->dead_max && b->dead_max - b->ndead < n)
		n = b->dead_max - b->ndead;
	return n;
}

static void drop_entry(struct vr_jobq *q, const char *entry_id, const char *reason)
{
	vr_log_warn("jobq_entry_dropped", "stream", q->stream, "entry", entry_id, "reason", reason);
	/* A failure here leaves the entry pending; it comes back and is
	 * dropped then. */
	ack_delete(q, entry_id);
}

/* Check one entry ([id, [field, value, ...]] or [id, nil] when it was
 * deleted) and add it to cand when its job field is a UUID; anything else
 * is acknowledged and dropped. Returns false when the reply is not shaped
 * like an entry at all. */
static bool take_entry(struct vr_jobq *q, const redisReply *e, struct candidate *cand,
		       size_t *ncand)
{
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || !valid_entry_id(e->element[0]->str))
		return false;
	const char *id = e->element[0]->str;
	const redisReply *fields = e->element[1];
	if (fields->type == REDIS_REPLY_NIL) {
		drop_entry(q, id, "deleted from the stream (trimmed)");
		return true;
	}
	if (fields->type != REDIS_REPLY_ARRAY)
		return false;
	const char *job = NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, "job") == 0 && strlen(v->str) == v->len) {
			job = v->str;
			break;
		}
	}
	struct candidate *c = &cand[*ncand];
	if (!job || vr_uuid_canon(c->job_id, job)) {
		drop_entry(q, id, job ? "job field is not a UUID" : "no job field");
		return true;
	}
	snprintf(c->entry_id, sizeof c->entry_id, "%s", id);
	c->deliveries = 0;
	(*ncand)++;
	return true;
}

/* Parse an XPENDING extended-form row [id, consumer, idle, deliveries]. */
static bool pending_row(const redisReply *row, const char **id, const char **consumer,
			long long *deliveries)
{
	if (row->type != REDIS_REPLY_ARRAY || row->elements != 4 ||
	    row->element[0]->type != REDIS_REPLY_STRING ||
	    row->element[1]->type != REDIS_REPLY_STRING ||
	    row->element[3]->type != REDIS_REPLY_INTEGER)
		return false;
	*id = row->element[0]->str;
	*consumer = row->element[1]->str;
	*deliveries = row->element[3]->integer;
	return true;
}

static void clamp_deliveries(struct candidate *c, long long deliveries)
{
	if (deliveries < 1)
		deliveries = 1;
	if (deliveries > 1000000000)
		deliveries = 1000000000;
	c->deliveries = (unsigned)deliveries;
}

/* Fill in the delivery counts of cand (entries in increasing id order, all
 * just delivered to this consumer) from XPENDING. An entry missing from
 * this consumer's pending list keeps 0: someone else has it now. */
static int fetch_deliveries(struct vr_jobq *q, struct candidate *cand, size_t ncand)
{
	if (ncand == 0)
		return 0;
	/* One range query over this consumer's entries; the range may also
	 * hold other entries of this consumer, hence the margin. */
	char count[24];
	snprintf(count, sizeof count, "%zu", ncand + 64);
	const char *argv[] = {
		"XPENDING", q->stream,	q->group, cand[0].entry_id, cand[ncand - 1].entry_id,
		count,	    q->consumer};
	redisReply *r;
	int rc = command_in_group(q, &r, 7, argv);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return VR_EIO;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const char *id, *consumer;
		long long deliveries;
		if (!pending_row(r->element[i], &id, &consumer, &deliveries))
			continue;
		for (size_t j = 0; j < ncand; j++)
			if (strcmp(cand[j].entry_id, id) == 0)
				clamp_deliveries(&cand[j], deliveries);
	}
	freeReplyObject(r);
	/* Entries beyond the margin: ask one by one. */
	for (size_t j = 0; j < ncand; j++) {
		if (cand[j].deliveries)
			continue;
		const char *one[] = {"XPENDING",       q->stream, q->group,   cand[j].entry_id,
				     cand[j].entry_id, "1",	  q->consumer};
		rc = command_in_group(q, &r, 7, one);
		if (rc)
			return rc;
		const char *id, *consumer;
		long long deliveries;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
		    pending_row(r->element[0], &id, &consumer, &deliveries) &&
		    strcmp(consumer, q->consumer) == 0)
			clamp_deliveries(&cand[j], deliveries);
		freeReplyObject(r);
	}
	return 0;
}

/* Move an entry delivered too often to the dead letters. */
static int bury(struct vr_jobq *q, struct batch *b, const struct candidate *c)
{
	char reason[128], deliveries[16];
	snprintf(reason, sizeof reason, "delivered %u times, more than max_deliveries (%u)",
		 c->deliveries, q->max_deliveries);
	snprintf(deliveries, sizeof deliveries, "%u", c->deliveries);
	const char *argv[] = {"XADD", q->dead_stream, "MAXLEN", "~",	VR_JOBQ_MAXLEN, "*",
			      "job",  c->job_id,      "reason", reason, "deliveries",	deliveries};
	redisReply *r;
	int rc = command(q, &r, 12, argv);
	if (rc)
		return rc == GROUP_LOST ? VR_EIO : rc;
	freeReplyObject(r);
	rc = ack_delete(q, c->entry_id);
	if (rc)
		return rc;
	vr_log_warn("jobq_dead_letter", "stream", q->stream, "entry", c->entry_id, "job", c->job_id,
		    "deliveries", deliveries, "returned", b->dead_max ? "yes" : "no");
	if (b->dead_max) {
		struct vr_jobq_delivery *d = &b->dead[b->ndead++];
		snprintf(d->entry_id, sizeof d->entry_id, "%s", c->entry_id);
		memcpy(d->job_id, c->job_id, sizeof d->job_id);
		d->deliveries = c->deliveries;
	}
	return 0;
}

/* Sort a list of entries ([id, fields] each) into the batch. Returns 0 or a
 * negative error; deliveries added before an error stay in the batch. */
static int take_entries(struct vr_jobq *q, struct batch *b, const redisReply *entries,
			const char *command_name)
{
	if (entries->type == REDIS_REPLY_NIL || entries->elements == 0)
		return 0;
	size_t n = entries->elements;
	struct candidate *cand = vr_calloc(n, sizeof *cand);
	size_t ncand = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!take_entry(q, entries->element[i], cand, &ncand)) {
			vr_log_error("jobq_unexpected_reply", "command", command_name, "stream",
				     q->stream);
			rc = VR_EIO;
			goto cleanup;
		}
	}
	rc = fetch_deliveries(q, cand, ncand);
	if (rc)
		goto cleanup;
	for (size_t i = 0; i < ncand; i++) {
		const struct candidate *c = &cand[i];
		if (c->deliveries == 0) {
			vr_log_info("jobq_entry_taken_over", "stream", q->stream, "entry",
				    c->entry_id);
			continue;
		}
		if (c->deliveries > q->max_deliveries) {
			rc = bury(q, b, c);
			if (rc)
				goto cleanup;
			continue;
		}
		struct vr_jobq_delivery *d = &b->out[b->n++];
		snprintf(d->entry_id, sizeof d->entry_id, "%s", c->entry_id);
		memcpy(d->job_id, c->job_id, sizeof d->job_id);
		d->deliveries = c->deliveries;
	}
cleanup:
	free(cand);
	return rc;
}

/* The entries of the one stream in an XREADGROUP reply, or NULL (nil
 * reply: nothing). Sets *bad when the reply has another shape. */
static const redisReply *read_entries(const redisReply *r, bool *bad)
{
	*bad = false;
	if (r->type == REDIS_REPLY_NIL)
		return NULL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
	    (r->element[0]->element[1]->type != REDIS_REPLY_ARRAY &&
	     r->element[0]->element[1]->type != REDIS_REPLY_NIL)) {
		*bad = true;
		return NULL;
	}
	return r->element[0]->element[1];
}

/* Step 1: this consumer's own pending entries, after backlog_cursor. */
static int read_backlog(struct vr_jobq *q, struct batch *b)
{
	unsigned want = room(b);
	char count[16];
	snprintf(count, sizeof count, "%u", want);
	const char *argv[] = {"XREADGROUP", "GROUP",   q->group,  q->consumer,	    "COUNT",
			      count,	    "STREAMS", q->stream, q->backlog_cursor};
	redisReply *r;
	int rc = command(q, &r, 9, argv);
	if (rc == GROUP_LOST)
		return recreate_group(q); /* and with it the backlog */
	if (rc)
		return rc;
	bool bad;
	const redisReply *entries = read_entries(r, &bad);
	if (bad) {
		vr_log_error("jobq_unexpected_reply", "command", "XREADGROUP", "stream", q->stream);
		freeReplyObject(r);
		return VR_EIO;
	}
	size_t got = entries ? entries->elements : 0;
	/* Move on before looking at the entries: should that fail half way,
	 * the entries handed out must not come again from the backlog (those
	 * left behind are claimed once idle). */
	if (got < want) {
		q->backlog = false;
	} else {
		const redisReply *last = entries->element[got - 1];
		if (last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
		    last->element[0]->type == REDIS_REPLY_STRING &&
		    valid_entry_id(last->element[0]->str))
			snprintf(q->backlog_cursor, sizeof q->backlog_cursor, "%s",
				 last->element[0]->str);
		else
			q->backlog = false;
	}
	rc = entries ? take_entries(q, b, entries, "XREADGROUP") : 0;
	freeReplyObject(r);
	return rc;
}

/* Step 2: entries other consumers left idle for claim_idle_ms. */
static int claim_idle(struct vr_jobq *q, struct batch *b)
{
	char idle[16];
	snprintf(idle, sizeof idle, "%u", q->claim_idle_ms);
	for (int round = 0; round < CLAIM_ROUNDS && room(b) > 0; round++) {
		char count[16];
		snprintf(count, sizeof count, "%u", room(b));
		const char *argv[] = {"XAUTOCLAIM", q->stream,	     q->group, q->consumer,
				      idle,	    q->claim_cursor, "COUNT",  count};
		redisReply *r;
		int rc = command_in_group(q, &r, 8, argv);
		if (rc)
			return rc;
		/* [next cursor, [entries], [ids deleted from the stream]] */
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    !valid_entry_id(r->element[0]->str) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			vr_log_error("jobq_unexpected_reply", "command", "XAUTOCLAIM", "stream",
				     q->stream);
			freeReplyObject(r);
			return VR_EIO;
		}
		snprintf(q->claim_cursor, sizeof q->claim_cursor, "%s", r->element[0]->str);
		if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY)
			for (size_t i = 0; i < r->element[2]->elements; i++)
				if (r->element[2]->element[i]->type == REDIS_REPLY_STRING)
					vr_log_warn("jobq_entry_dropped", "stream", q->stream,
						    "entry", r->element[2]->element[i]->str,
						    "reason", "deleted from the stream (trimmed)");
		rc = take_entries(q, b, r->element[1], "XAUTOCLAIM");
		freeReplyObject(r);
		if (rc)
			return rc;
		if (strcmp(q->claim_cursor, "0-0") == 0)
			break; /* the whole pending list has been scanned */
	}
	return 0;
}

/* Step 3: new entries, waiting for them when block is set. */
static int read_new(struct vr_jobq *q, struct batch *b, bool block)
{
	char count[16], block_ms[16];
	snprintf(count, sizeof count, "%u", room(b));
	snprintf(block_ms, sizeof block_ms, "%u", q->block_ms);
	const char *argv[] = {"XREADGROUP", "GROUP",  q->group,	 q->consumer, "COUNT", count,
			      "BLOCK",	    block_ms, "STREAMS", q->stream,   ">"};
	/* the same without BLOCK */
	const char *nonblocking[] = {"XREADGROUP", "GROUP",   q->group,	 q->consumer, "COUNT",
				     count,	   "STREAMS", q->stream, ">"};
	redisReply *r;
	int rc = block && q->block_ms > 0 ? command(q, &r, 11, argv)
					  : command(q, &r, 9, nonblocking);
	if (rc == GROUP_LOST) {
		/* also the answer to a read that was blocked when the stream
		 * was deleted: look once more, without waiting again */
		rc = recreate_group(q);
		if (rc == 0)
			rc = command(q, &r, 9, nonblocking);
		if (rc == GROUP_LOST)
			rc = VR_EIO;
	}
	if (rc)
		return rc;
	bool bad;
	const redisReply *entries = read_entries(r, &bad);
	if (bad) {
		vr_log_error("jobq_unexpected_reply", "command", "XREADGROUP", "stream", q->stream);
		rc = VR_EIO;
	} else if (entries) {
		rc = take_entries(q, b, entries, "XREADGROUP");
	}
	freeReplyObject(r);
	return rc;
}

int vr_jobq_next(struct vr_jobq *q, struct vr_jobq_delivery *out, unsigned max,
		 struct vr_jobq_delivery *dead_out, unsigned dead_max, unsigned *ndead_out)
{
	if (ndead_out)
		*ndead_out = 0;
	if (!q || !q->consumer || !out || max == 0 || max > (unsigned)INT32_MAX ||
	    (dead_max && (!dead_out || !ndead_out)))
		return VR_EINVAL;
	struct batch b = {.out = out, .max = max, .dead = dead_out, .dead_max = dead_max};
	int rc = 0;
	while (rc == 0 && q->backlog && room(&b) > 0)
		rc = read_backlog(q, &b);
	if (rc == 0 && room(&b) > 0)
		rc = claim_idle(q, &b);
	if (rc == 0 && room(&b) > 0)
		rc = read_new(q, &b, b.n == 0 && b.ndead == 0);
	if (ndead_out)
		*ndead_out = b.ndead;
	if (rc == GROUP_LOST)
		rc = VR_EIO;
	if (rc < 0 && b.n == 0 && b.ndead == 0)
		return rc;
	return (int)b.n;
}
