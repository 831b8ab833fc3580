/* One attempt at sending an instance (docs/transfer-protocol.md): the
 * header, the resume reply, the runs (from the spool, or read live from the
 * disks for a full instance), the trailer, the result reply. Memory is
 * bounded: one run (1 MiB), an output and an input buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/send.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

#define OUT_CAP ((size_t)256 * 1024)
#define IN_CAP	((size_t)160 * 1024)

struct tx {
	struct vr_agent_conn *conn;
	uint8_t *out;
	size_t out_len;
	bool cut; /* a write failed */
	uint8_t *in;
	size_t in_len;
	struct vr_tx_enc enc;
	uint8_t *run; /* VR_TX_MAX_PAYLOAD */
	uint8_t *leaves; /* VR_TX_MAX_RUN_BLOCKS leaves: those of run, in compare_disks */
	const struct vr_agent_sync_env *env;
	struct vr_agent_progress *progress;
	int64_t last_report_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(struct tx *t, bool force)
{
	if (!t->env->progress)
		return;
	int64_t now = mono_ms();
	if (!force && now - t->last_report_ms < 200)
		return;
	t->last_report_ms = now;
	t->progress->sent_bytes = t->enc.sent_bytes;
	t->env->progress(t->env->progress_ctx, t->progress);
}

/* The agent is stopping: the transfer ends here (a retry resumes it). */
static int stopping(struct tx *t, struct vr_send_outcome *out)
{
	if (!t->env->stop || !atomic_load(t->env->stop))
		return 0;
	snprintf(out->message, sizeof out->message, "the agent is stopping");
	return VR_EUNAVAIL;
}

static int flush(struct tx *t)
{
	if (t->cut)
		return VR_TX_EIO;
	if (t->out_len && vr_agent_conn_write(t->conn, t->out, t->out_len)) {
		t->cut = true;
		return VR_TX_EIO;
	}
	t->out_len = 0;
	return 0;
}

/* The encoder's sink: buffered writes to the connection. */
static int sink(void *ctx, const void *data, size_t len)
{
	struct tx *t = ctx;
	if (t->cut)
		return VR_TX_EIO;
	if (t->out_len + len > OUT_CAP && flush(t))
		return VR_TX_EIO;
	if (len >= OUT_CAP) {
		if (vr_agent_conn_write(t->conn, data, len)) {
			t->cut = true;
			return VR_TX_EIO;
		}
		return 0;
	}
	memcpy(t->out + t->out_len, data, len);
	t->out_len += len;
	return 0;
}

/* More bytes from the worker. 0, or VR_EUNAVAIL (closed, cut, silent). */
static int fill(struct tx *t)
{
	if (t->in_len == IN_CAP)
		return VR_EUNAVAIL;
	size_t n = 0;
	if (vr_agent_conn_read(t->conn, t->in + t->in_len, IN_CAP - t->in_len, &n) || n == 0)
		return VR_EUNAVAIL;
	t->in_len += n;
	return 0;
}

static void consume(struct tx *t, size_t n)
{
	memmove(t->in, t->in + n, t->in_len - n);
	t->in_len -= n;
}

/* The next reply. 0, VR_EUNAVAIL (no reply came), VR_EINVAL (malformed). */
static int read_reply(struct tx *t, struct vr_tx_reply *r)
{
	for (;;) {
		size_t used = 0;
		int rc = vr_tx_reply_decode(t->in, t->in_len, &used, r);
		if (rc == 0) {
			consume(t, used);
			return 0;
		}
		if (rc != VR_TX_ETRUNCATED)
			return VR_EINVAL;
		if (fill(t))
			return VR_EUNAVAIL;
	}
}

static bool reply_matches(const struct tx *t, const struct vr_tx_reply *r)
{
	const struct vr_tx_header *h = &t->enc.hdr;
	return memcmp(r->replication, h->replication, VR_TX_ID) == 0 &&
	       memcmp(r->instance, h->instance, VR_TX_ID) == 0 &&
	       r->resume_token == h->resume_token;
}

/* After a write failed: the worker may have said why before it closed. */
static int refusal_after_cut(struct tx *t, struct vr_send_outcome *out)
{
	struct vr_tx_reply r;
	vr_agent_conn_set_timeout(t->conn, 2000);
	if (read_reply(t, &r) == 0 && r.kind == VR_TX_REPLY_RESULT && r.status != 0 &&
	    reply_matches(t, &r)) {
		out->status = r.status;
		snprintf(out->message, sizeof out->message, "the replica refused the instance: %s",
			 vr_tx_strerror(r.status));
		return VR_EFORBIDDEN;
	}
	snprintf(out->message, sizeof out->message, "the data connection was cut");
	return VR_EUNAVAIL;
}

static int pread_full(int fd, uint8_t *buf, size_t len, off_t at)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return VR_EIO;
		if (n == 0) { /* an image shorter than its size reads as zeros */
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* Encoder errors: the connection's, or the sender's own mistake. */
static int enc_failed(struct tx *t, int err, struct vr_send_outcome *out)
{
	if (err == VR_TX_EIO && t->cut)
		return refusal_after_cut(t, out);
	snprintf(out->message, sizeof out->message, "encoding the instance failed: %s",
		 vr_tx_strerror(err));
	return VR_EIO;
}

static int send_spool(struct tx *t, struct vr_send_plan *plan, struct vr_send_outcome *out)
{
	if (vr_spool_rewind(plan->spool)) {
		snprintf(out->message, sizeof out->message, "the spool cannot be read");
		return VR_EIO;
	}
	for (;;) {
		unsigned disk;
		uint64_t first;
		uint32_t count;
		int rc = stopping(t, out);
		if (rc)
			return rc;
		rc = vr_spool_next(plan->spool, &disk, &first, &count, t->run);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			snprintf(out->message, sizeof out->message, "the spool is damaged");
			return VR_EIO;
		}
		int err = vr_tx_enc_run(&t->enc, disk, first, count, t->run);
		if (err)
			return enc_failed(t, err, out);
		t->progress->done_bytes += (uint64_t)count * VR_TX_BLOCK;
		report(t, false);
	}
}

static int send_disks(struct tx *t, struct vr_send_plan *plan, struct vr_send_outcome *out)
{
	const struct vr_tx_header *h = &plan->hdr;
	for (unsigned d = 0; d < h->ndisks; d++) {
		uint64_t blocks = h->disks[d].size / VR_TX_BLOCK;
		for (uint64_t b = 0; b < blocks;) {
			if (stopping(t, out))
				return VR_EUNAVAIL;
			uint32_t count = blocks - b < VR_TX_MAX_RUN_BLOCKS ? (uint32_t)(blocks - b)
									   : VR_TX_MAX_RUN_BLOCKS;
			/* Blocks the replica staged are hashed, not sent: read them
			 * all the same so the root covers them. */
			if (pread_full(plan->fds[d], t->run, (size_t)count * VR_TX_BLOCK,
				       (off_t)(b * VR_TX_BLOCK))) {
				snprintf(out->message, sizeof out->message,
					 "disk %s cannot be read: %s", h->disks[d].key,
					 strerror(errno));
				return VR_EIO;
			}
			int err = vr_tx_enc_run(&t->enc, d, b, count, t->run);
			if (err)
				return enc_failed(t, err, out);
			b += count;
			t->progress->done_bytes += (uint64_t)count * VR_TX_BLOCK;
			report(t, false);
		}
	}
	return 0;
}

/* --- hash compare ---------------------------------------------------------- */

struct hashes {
	struct vr_tx_hash_record rec; /* the record at the head of t->in */
	size_t rec_len;
	bool have, ended;
};

/* The replica's hash of group g of disk d, or NULL when it sent none. */
static int replica_hash(struct tx *t, struct hashes *hs, unsigned d, uint64_t g,
			const uint8_t **out)
{
	*out = NULL;
	for (;;) {
		if (hs->ended)
			return 0;
		if (!hs->have) {
			size_t used = 0;
			int err = vr_tx_hash_record_decode(t->in, t->in_len, &used, &hs->rec);
			if (err == VR_TX_ETRUNCATED) {
				if (t->out_len && flush(t))
					return VR_EUNAVAIL;
				if (fill(t))
					return VR_EUNAVAIL;
				continue;
			}
			if (err || (hs->rec.kind == VR_TX_HASH_GROUPS &&
				    vr_tx_hash_record_check(&t->enc.hdr, &hs->rec)))
				return VR_EINVAL;
			hs->rec_len = used;
			hs->have = true;
			if (hs->rec.kind == VR_TX_HASH_END) {
				consume(t, used);
				hs->have = false;
				hs->ended = true;
				return 0;
			}
		}
		const struct vr_tx_hash_record *r = &hs->rec;
		if (r->disk > d || (r->disk == d && r->first_group > g))
			return 0; /* none for this group */
		if (r->disk == d && g < r->first_group + r->count) {
			*out = r->hashes + (g - r->first_group) * VR_TX_HASH;
			return 0;
		}
		consume(t, hs->rec_len); /* a record of groups behind us */
		hs->have = false;
	}
}

static bool bit(const uint8_t *bits, uint64_t i)
{
	return bits[i / 8] >> (i % 8) & 1;
}

static int run_out(struct tx *t, unsigned d, uint64_t first, uint32_t *count,
		   struct vr_send_outcome *out)
{
	if (!*count)
		return 0;
	int err = vr_tx_enc_run_leaves(&t->enc, d, first, *count, t->run, t->leaves);
	*count = 0;
	return err ? enc_failed(t, err, out) : 0;
}

/* A full instance with hash compare: hash every group of the live disks,
 * send those the replica's hash differs from (and those an earlier attempt
 * sent, so the root covers what the replica staged). */
static int compare_disks(struct tx *t, struct vr_send_plan *plan, struct vr_send_outcome *out)
{
	const struct vr_tx_header *h = &plan->hdr;
	struct hashes hs = {0};
	for (unsigned d = 0; d < h->ndisks; d++) {
		uint64_t blocks = h->disks[d].size / VR_TX_BLOCK;
		uint64_t groups = vr_tx_disk_groups(h->disks[d].size);
		uint64_t first = 0;
		uint32_t count = 0; /* blocks gathered in t->run from first */
		for (uint64_t g = 0; g < groups; g++) {
			uint64_t b = g * VR_TX_GROUP_BLOCKS;
			uint32_t n = blocks - b < VR_TX_GROUP_BLOCKS ? (uint32_t)(blocks - b)
								     : VR_TX_GROUP_BLOCKS;
			if (g % 256 == 0 && stopping(t, out))
				return VR_EUNAVAIL;
			bool sent_before = bit(plan->sent_groups[d], g);
			/* Groups wholly under the resume position that no earlier
			 * attempt sent are not part of the instance. */
			if (!sent_before && b + n <= t->enc.resume[d])
				continue;
			if (count && (first + count != b || count + n > VR_TX_MAX_RUN_BLOCKS)) {
				int rc = run_out(t, d, first, &count, out);
				if (rc)
					return rc;
			}
			uint8_t *data = t->run + (size_t)count * VR_TX_BLOCK;
			uint8_t *leaves = t->leaves + (size_t)count * VR_TX_HASH;
			if (pread_full(plan->fds[d], data, (size_t)n * VR_TX_BLOCK,
				       (off_t)(b * VR_TX_BLOCK))) {
				snprintf(out->message, sizeof out->message,
					 "disk %s cannot be read: %s", h->disks[d].key,
					 strerror(errno));
				return VR_EIO;
			}
			t->progress->done_bytes += (uint64_t)n * VR_TX_BLOCK;
			/* Each block is hashed once: its leaf serves the group hash
			 * and, when the group is sent, the hash root. */
			for (uint32_t i = 0; i < n; i++)
				vr_tx_leaf(b + i, data + (size_t)i * VR_TX_BLOCK,
					   leaves + (size_t)i * VR_TX_HASH);
			bool send = sent_before;
			if (!send) {
				const uint8_t *theirs = NULL;
				int rc = replica_hash(t, &hs, d, g, &theirs);
				if (rc) {
					snprintf(out->message, sizeof out->message, "%s",
						 rc == VR_EINVAL ? "a hash record is malformed"
								 : "the hash records stopped");
					if (rc == VR_EINVAL)
						out->status = VR_TX_EREPLY;
					return rc == VR_EINVAL ? VR_EFORBIDDEN : VR_EUNAVAIL;
				}
				uint8_t mine[VR_TX_HASH];
				vr_tx_group_hash_leaves(n, leaves, mine);
				send = !theirs || memcmp(mine, theirs, VR_TX_HASH) != 0;
			}
			if (send) {
				if (!count)
					first = b;
				count += n;
				plan->sent_groups[d][g / 8] |= (uint8_t)(1u << (g % 8));
			}
			report(t, false);
		}
		int rc = run_out(t, d, first, &count, out);
		if (rc)
			return rc;
	}
	/* The end record: every hash was read. */
	while (!hs.ended) {
		const uint8_t *none;
		int rc = replica_hash(t, &hs, h->ndisks, 0, &none);
		if (rc) {
			snprintf(out->message, sizeof out->message, "the hash records did not end");
			return rc == VR_EINVAL ? VR_EFORBIDDEN : VR_EUNAVAIL;
		}
		if (!hs.ended && hs.have) {
			consume(t, hs.rec_len);
			hs.have = false;
		}
	}
	return 0;
}

static int converse(struct tx *t, struct vr_send_plan *plan, struct vr_send_outcome *out)
{
	int err = vr_tx_enc_init(&t->enc, &plan->hdr, sink, t);
	if (!err)
		err = flush(t);
	if (err)
		return enc_failed(t, err, out);
	struct vr_tx_reply r;
	int rc = read_reply(t, &r);
	if (rc) {
		snprintf(out->message, sizeof out->message, "%s",
			 rc == VR_EINVAL ? "the replica's reply is malformed"
					 : "no reply to the header came");
		return rc == VR_EINVAL ? VR_EFORBIDDEN : VR_EUNAVAIL;
	}
	if (r.kind == VR_TX_REPLY_RESULT && r.status == 0 && reply_matches(t, &r)) {
		/* Committed already: an earlier attempt's result reply was lost. */
		snprintf(out->message, sizeof out->message, "committed by an earlier attempt");
		out->committed_before = true;
		return 0;
	}
	if (r.kind == VR_TX_REPLY_RESULT && r.status != 0) {
		out->status = r.status;
		snprintf(out->message, sizeof out->message, "the replica refused the header: %s%s",
			 vr_tx_strerror(r.status),
			 r.status == VR_TX_ESTORE
				 ? " (failed over, deleted or moved? the worker's log says why; "
				   "`vrcloud-agent unprotect VM --local-only` stops syncing it here)"
				 : "");
		return VR_EFORBIDDEN;
	}
	err = vr_tx_enc_resume(&t->enc, &r);
	if (err) {
		out->status = VR_TX_EREPLY;
		snprintf(out->message, sizeof out->message, "the resume reply does not fit: %s",
			 vr_tx_strerror(err));
		return VR_EFORBIDDEN;
	}
	for (unsigned d = 0; d < r.ndisks; d++)
		if (r.next_block[d]) {
			vr_log_info("transfer_resumed", "replication", plan->replication, "disk",
				    plan->hdr.disks[d].key);
			break;
		}
	if (plan->spool)
		rc = send_spool(t, plan, out);
	else if (plan->hdr.flags & VR_TX_HASH_COMPARE)
		rc = compare_disks(t, plan, out);
	else
		rc = send_disks(t, plan, out);
	if (rc)
		return rc;
	struct vr_tx_trailer trailer;
	err = vr_tx_enc_finish(&t->enc, &trailer);
	if (!err)
		err = flush(t);
	if (err)
		return enc_failed(t, err, out);
	out->instance_blocks = trailer.instance_blocks;
	out->sent_blocks = trailer.sent_blocks;
	out->sent_bytes = trailer.sent_bytes;
	report(t, true);
	if (vr_agent_conn_finish(t->conn)) {
		snprintf(out->message, sizeof out->message,
			 "the data connection was cut at its end");
		return VR_EUNAVAIL;
	}
	rc = read_reply(t, &r);
	if (rc == VR_EINVAL) {
		out->status = VR_TX_EREPLY;
		snprintf(out->message, sizeof out->message, "the result reply is malformed");
		return VR_EFORBIDDEN;
	}
	if (rc) {
		snprintf(out->message, sizeof out->message,
			 "no result came after the trailer (the replica may still commit it)");
		return VR_EUNAVAIL;
	}
	if (r.kind != VR_TX_REPLY_RESULT || !reply_matches(t, &r)) {
		out->status = VR_TX_EREPLY;
		snprintf(out->message, sizeof out->message, "the result reply does not fit");
		return VR_EFORBIDDEN;
	}
	out->status = r.status;
	if (r.status) {
		snprintf(out->message, sizeof out->message, "the replica refused the instance: %s",
			 vr_tx_strerror(r.status));
		return VR_EFORBIDDEN;
	}
	snprintf(out->message, sizeof out->message, "committed");
	return 0;
}

int vr_send_attempt(const struct vr_agent_sync_env *env, struct vr_send_plan *plan,
		    struct vr_agent_progress *progress, struct vr_send_outcome *out)
{
	memset(out, 0, sizeof *out);
	struct tx *t = vr_calloc(1, sizeof *t);
	t->env = env;
	t->progress = progress;
	t->out = malloc(OUT_CAP);
	t->in = malloc(IN_CAP);
	t->run = malloc(VR_TX_MAX_PAYLOAD);
	t->leaves = malloc((size_t)VR_TX_MAX_RUN_BLOCKS * VR_TX_HASH);
	int rc = VR_ENOMEM;
	if (t->out && t->in && t->run && t->leaves) {
		char *error = NULL;
		rc = vr_agent_data_open(&t->conn, env->tls, env->config, env->credential,
					plan->replication, &error);
		if (rc) {
			snprintf(out->message, sizeof out->message, "no data connection: %s",
				 error ? error : vr_err_str(rc));
			rc = rc == VR_EAUTH || rc == VR_EFORBIDDEN ? VR_EFORBIDDEN : VR_EUNAVAIL;
		} else {
			vr_agent_conn_set_timeout(t->conn,
						  env->timeout_ms ? env->timeout_ms : 60000);
			progress->done_bytes = 0;
			rc = converse(t, plan, out);
		}
		free(error);
	}
	vr_tx_enc_free(&t->enc);
	vr_agent_conn_close(t->conn);
	free(t->out);
	free(t->in);
	free(t->run);
	free(t->leaves);
	free(t);
	return rc;
}
