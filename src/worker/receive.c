/* One data connection on the replication port (docs/worker.md,
 * docs/transfer-protocol.md): the proxy's preamble names the replication
 * the site may send; the decoder checks the transfer against it; the
 * replica store stages each verified run and commits the instance once
 * the trailer is verified; the API records it and says what to keep; the
 * result reply goes back last. In a hash-compare transfer a second thread
 * sends the group hashes of the replica while this one reads the runs.
 * Any refusal is a result reply with the error, then the connection ends;
 * nothing is committed without a verified trailer. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/store.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"
#include "worker/receiver.h"

#define IO_SLICE_MS	  250
#define READ_CHUNK	  (256 * 1024)
#define GROUPS_PER_RECORD 256u
/* After the result: how long the rest of the agent's bytes are read and
 * dropped, so that the reply is not lost to a reset. */
#define DRAIN_MS 3000

struct conn {
	struct vr_receiver *rx;
	struct vr_receiver_slot *slot;
	int fd;
	unsigned idle_ms;
	struct vr_tx_preamble pre;
	bool got_bytes; /* the proxy sent something */
	bool have_preamble, have_header, dec_ready;
	char replication[VR_UUID_LEN + 1];
	char instance[VR_UUID_LEN + 1];
	struct vr_tx_dec dec;
	struct vr_store *store;
	pthread_mutex_t store_lock; /* the store between the two threads */
	/* hash records */
	pthread_t hasher;
	bool hashing;
	atomic_bool abort;
	atomic_int hash_err; /* the hash thread failed: the transfer cannot go on */
	uint64_t next_block[VR_TX_MAX_DISKS];
	/* the outcome */
	uint64_t bytes_in;
	bool committed;
	struct vr_store_instance inst;
	unsigned long long seq;
	unsigned dropped;
	char why[256];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(struct conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct conn *c, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	return err;
}

/* --- I/O on the non-blocking socket ---------------------------------------- */

/* Wait until fd is ready for events: 0, or VR_TX_EBUSY (cut at
 * shutdown), VR_TX_EIO (abort, when honoured) or VR_TX_ETRUNCATED (idle
 * for idle_ms). */
static int wait_io(struct conn *c, short events, bool honour_abort)
{
	unsigned waited = 0;
	for (;;) {
		if (atomic_load(&c->rx->cut))
			return VR_TX_EBUSY;
		if (honour_abort && atomic_load(&c->abort))
			return VR_TX_EIO;
		int hash_err = atomic_load(&c->hash_err);
		if (hash_err)
			return hash_err;
		struct pollfd p = {.fd = c->fd, .events = events};
		int n = poll(&p, 1, IO_SLICE_MS);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return VR_TX_EIO;
		waited += IO_SLICE_MS;
		if (waited >= c->idle_ms)
			return VR_TX_ETRUNCATED;
	}
}

/* Bytes read (> 0), 0 at the end of the stream, or a vr_tx_err. */
static ssize_t conn_read(struct conn *c, uint8_t *buf, size_t cap)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, cap, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return VR_TX_ETRUNCATED;
		int rc = wait_io(c, POLLIN, false);
		if (rc)
			return rc;
	}
}

static int conn_write(struct conn *c, const void *data, size_t len, bool honour_abort)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			atomic_fetch_add(&c->rx->bytes_out, (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_io(c, POLLOUT, honour_abort);
			if (rc)
				return rc;
			continue;
		}
		return VR_TX_EIO;
	}
	return 0;
}

static int send_reply(struct conn *c, const struct vr_tx_reply *r)
{
	struct vr_buf out;
	vr_buf_init(&out, 0);
	int rc = vr_tx_reply_encode(r, &out);
	if (rc == 0)
		rc = conn_write(c, out.data, out.len, false);
	vr_buf_free(&out);
	return rc;
}

static void send_result(struct conn *c, int status)
{
	struct vr_tx_reply r;
	memset(&r, 0, sizeof r);
	r.kind = VR_TX_REPLY_RESULT;
	r.status = status;
	if (c->have_header) {
		memcpy(r.replication, c->dec.hdr.replication, VR_TX_ID);
		memcpy(r.instance, c->dec.hdr.instance, VR_TX_ID);
		r.resume_token = c->dec.hdr.resume_token;
		r.ndisks = c->dec.hdr.ndisks;
	} else if (c->have_preamble) {
		memcpy(r.replication, c->pre.replication_id, VR_TX_ID);
	}
	send_reply(c, &r);
}

/* --- hash records (a thread of their own) ---------------------------------- */

static int group_hashes(struct conn *c, unsigned disk, uint64_t first_group, uint32_t count,
			uint8_t *out)
{
	uint64_t blocks = c->dec.hdr.disks[disk].size / VR_TX_BLOCK;
	for (uint32_t i = 0; i < count; i++) {
		if (atomic_load(&c->abort) || atomic_load(&c->rx->cut))
			return VR_TX_EIO;
		uint64_t first = (first_group + i) * VR_TX_GROUP_BLOCKS;
		uint64_t left = blocks - first;
		uint32_t n = left < VR_TX_GROUP_BLOCKS ? (uint32_t)left : VR_TX_GROUP_BLOCKS;
		pthread_mutex_lock(&c->store_lock);
		int rc =
			vr_store_group_hash(c->store, disk, first, n, out + (size_t)i * VR_TX_HASH);
		pthread_mutex_unlock(&c->store_lock);
		if (rc)
			return VR_TX_ESTORE;
	}
	return 0;
}

static void *hasher_main(void *arg)
{
	struct conn *c = arg;
	uint8_t *hashes = vr_malloc((size_t)GROUPS_PER_RECORD * VR_TX_HASH);
	struct vr_buf rec;
	vr_buf_init(&rec, 0);
	int rc = 0;
	for (unsigned d = 0; !rc && d < c->dec.hdr.ndisks; d++) {
		uint64_t groups = vr_tx_disk_groups(c->dec.hdr.disks[d].size);
		for (uint64_t g = c->next_block[d] / VR_TX_GROUP_BLOCKS; !rc && g < groups;) {
			uint64_t left = groups - g;
			uint32_t count = left < GROUPS_PER_RECORD ? (uint32_t)left
								  : GROUPS_PER_RECORD;
			rc = group_hashes(c, d, g, count, hashes);
			rec.len = 0;
			if (!rc)
				rc = vr_tx_hash_record_encode(d, g, count, hashes, &rec);
			if (!rc)
				rc = conn_write(c, rec.data, rec.len, true);
			g += count;
		}
	}
	rec.len = 0;
	if (!rc)
		rc = vr_tx_hash_end_encode(&rec);
	if (!rc)
		rc = conn_write(c, rec.data, rec.len, true);
	if (rc && !atomic_load(&c->abort))
		atomic_store(&c->hash_err, rc);
	vr_buf_free(&rec);
	free(hashes);
	return NULL;
}

static void stop_hasher(struct conn *c, bool abort)
{
	if (!c->hashing)
		return;
	if (abort)
		atomic_store(&c->abort, true);
	pthread_join(c->hasher, NULL);
	c->hashing = false;
}

/* --- the transfer ------------------------------------------------------------ */

static void id_text(char out[VR_UUID_LEN + 1], const uint8_t id[VR_TX_ID])
{
	snprintf(out, VR_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
		 id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
		 id[12], id[13], id[14], id[15]);
}

/* The instance of the header is committed already (its result reply was
 * lost): *found with its record. */
static int find_committed(struct conn *c, bool *found)
{
	*found = false;
	struct vr_store_instance *list = NULL;
	size_t n = 0;
	if (vr_store_instances(c->store, &list, &n))
		return fail(c, VR_TX_ESTORE, "cannot list the instances: %s",
			    vr_store_message(c->store));
	for (size_t i = 0; i < n && !*found; i++) {
		char canon[VR_UUID_LEN + 1];
		if (vr_uuid_canon(canon, list[i].id) == 0 && strcmp(canon, c->instance) == 0) {
			c->inst = list[i];
			*found = true;
		}
	}
	free(list);
	return 0;
}

static int open_store(struct conn *c)
{
	char *error = NULL;
	int rc = vr_store_open(&c->store, c->rx->config->store_dir, c->replication,
			       VR_RECEIVER_LOCK_MS, &error);
	if (rc == 0)
		return 0;
	c->store = NULL;
	if (rc == VR_ENOTFOUND)
		rc = fail(c, VR_TX_ESTORE, "this server has no replica of the replication");
	else if (rc == VR_ECONFLICT)
		rc = fail(c, VR_TX_EBUSY,
			  "the replica is busy (another transfer or a recovery job holds it)");
	else
		rc = fail(c, VR_TX_ESTORE, "cannot open the replica: %s",
			  error ? error : vr_err_str(rc));
	free(error);
	return rc;
}

static int record(struct conn *c);

/* After the header: the store, its staging, the resume reply and, for a
 * hash-compare transfer, the hash records. 1 when the instance turned out
 * to be committed already. */
static int on_header(struct conn *c)
{
	c->have_header = true;
	id_text(c->instance, c->dec.hdr.instance);
	if (c->slot->refuse)
		return fail(c, VR_TX_EBUSY, "the server takes no more transfers now");
	int rc = open_store(c);
	if (rc)
		return rc;
	bool found = false;
	if ((rc = find_committed(c, &found)) != 0)
		return rc;
	if (found) {
		c->committed = true;
		vr_log_info("transfer_already_committed", "replication", c->replication, "instance",
			    c->instance);
		record(c);
		return 1;
	}
	rc = vr_store_stage_begin(c->store, &c->dec);
	if (rc)
		return rc <= VR_TX_ETRUNCATED && rc >= VR_TX_ESTORE
			       ? fail(c, rc, "%s", vr_store_message(c->store))
			       : fail(c, VR_TX_ESTORE, "cannot stage: %s",
				      vr_store_message(c->store));
	struct vr_tx_reply reply;
	if ((rc = vr_tx_dec_resume_reply(&c->dec, &reply)) != 0)
		return fail(c, rc, "no resume reply");
	for (unsigned d = 0; d < reply.ndisks; d++)
		c->next_block[d] = reply.next_block[d];
	if ((rc = send_reply(c, &reply)) != 0)
		return fail(c, rc, "the resume reply was not sent");
	if (c->dec.hdr.flags & VR_TX_HASH_COMPARE) {
		int err = pthread_create(&c->hasher, NULL, hasher_main, c);
		if (err)
			return fail(c, VR_TX_ENOMEM, "cannot start the hash thread: %s",
				    strerror(err));
		c->hashing = true;
	}
	return 0;
}

static int on_run(struct conn *c)
{
	pthread_mutex_lock(&c->store_lock);
	int rc = vr_store_stage_run_leaves(c->store, c->dec.run_disk, c->dec.run_first,
					   c->dec.run_count, c->dec.run_data,
					   (const uint8_t(*)[VR_TX_HASH])c->dec.run_leaves);
	pthread_mutex_unlock(&c->store_lock);
	if (rc)
		return fail(c, VR_TX_ESTORE, "cannot stage a run: %s", vr_store_message(c->store));
	uint64_t bytes = (uint64_t)c->dec.run_count * VR_TX_BLOCK;
	c->bytes_in += bytes;
	atomic_fetch_add(&c->rx->bytes_in, bytes);
	return 0;
}

/* Record the committed instance through the API and drop what it no
 * longer keeps. A failure is logged: the instance stays committed in the
 * store, and the next commit's answer reconciles the store again. */
static int record(struct conn *c)
{
	struct vr_worker *w = c->rx->worker;
	const struct vr_worker_config *cfg = c->rx->config;
	char server[VR_UUID_LEN + 1];
	if (!vr_worker_server_id(w, server, false)) {
		vr_log_error("instance_not_recorded", "replication", c->replication, "instance",
			     c->instance, "reason", "this server is not registered with the API");
		return 0;
	}
	int64_t seconds = (c->inst.committed_ms - c->inst.point_in_time_ms) / 1000;
	struct vr_buf doc;
	vr_buf_init(&doc, 0);
	if (vr_worker_doc_instance(&doc, server, &c->inst,
				   seconds < 0		  ? 0
				   : seconds > UINT32_MAX ? UINT32_MAX
							  : (unsigned)seconds)) {
		vr_buf_free(&doc);
		vr_log_error("instance_not_recorded", "replication", c->replication, "instance",
			     c->instance, "reason", "the instance cannot be described");
		return 0;
	}
	struct vr_worker_client_options options = {
		.api_url = cfg->api_url,
		.token = w->token,
		.connect_timeout_ms = cfg->connect_timeout * 1000,
		.timeout_ms = cfg->http_timeout * 1000,
	};
	struct vr_worker_client *client = NULL;
	struct vr_worker_retention retention = {0};
	char error[256] = "";
	enum vr_worker_answer_kind kind = VR_ANSWER_UNAVAILABLE;
	if (vr_worker_client_new(&client, &options) == 0)
		kind = vr_worker_record_instance(client, c->replication, &doc, &retention, error,
						 sizeof error);
	else
		snprintf(error, sizeof error, "cannot create the HTTP client");
	vr_worker_client_free(client);
	vr_buf_free(&doc);
	if (kind != VR_ANSWER_OK) {
		vr_log_error("instance_not_recorded", "replication", c->replication, "instance",
			     c->instance, "error", error);
		return 0;
	}
	c->seq = retention.seq;
	vr_worker_store_reconcile(c->store, c->replication, &retention, &c->dropped);
	vr_worker_retention_free(&retention);
	return 0;
}

static int on_trailer(struct conn *c)
{
	stop_hasher(c, false);
	if (atomic_load(&c->rx->cut))
		return fail(c, VR_TX_EBUSY, "the server is shutting down");
	int64_t t0 = now_ms();
	pthread_mutex_lock(&c->store_lock);
	int rc = vr_store_commit(c->store, &c->dec, &c->inst);
	pthread_mutex_unlock(&c->store_lock);
	if (rc)
		return fail(c, VR_TX_ESTORE, "the commit failed: %s", vr_store_message(c->store));
	c->committed = true;
	int64_t t1 = now_ms();
	record(c);
	char commit_ms[24], record_ms[24];
	snprintf(commit_ms, sizeof commit_ms, "%lld", (long long)(t1 - t0));
	snprintf(record_ms, sizeof record_ms, "%lld", (long long)(now_ms() - t1));
	vr_log_debug("transfer_phases", "replication", c->replication, "instance", c->instance,
		     "commit_ms", commit_ms, "record_ms", record_ms);
	return 1;
}

/* Feed p[0..n) to the decoder: 0 for more, 1 when done, or an error. */
static int feed(struct conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t used = 0;
		int ev = vr_tx_dec_feed(&c->dec, p, n, &used);
		p += used;
		n -= used;
		int rc = 0;
		if (ev < 0)
			return fail(c, ev, "%s", vr_tx_dec_message(&c->dec));
		if (ev == VR_TX_EV_HEADER)
			rc = on_header(c);
		else if (ev == VR_TX_EV_RUN)
			rc = on_run(c);
		else if (ev == VR_TX_EV_TRAILER)
			rc = n ? fail(c, VR_TX_ETRAILING, "bytes after the trailer")
			       : on_trailer(c);
		if (rc)
			return rc;
	}
	return 0;
}

/* The whole transfer: 0 when committed (or committed before), else the
 * error of the result reply. */
static int transfer(struct conn *c, uint8_t *buf)
{
	size_t have = 0, used = 0;
	for (;;) {
		ssize_t n = conn_read(c, buf + have, READ_CHUNK - have);
		if (n <= 0)
			return fail(c, n ? (int)n : VR_TX_ETRUNCATED, "no preamble");
		have += (size_t)n;
		c->got_bytes = true;
		int rc = vr_tx_preamble_parse(buf, have, &used, &c->pre);
		if (rc == 0)
			break;
		if (rc != VR_TX_ETRUNCATED)
			return fail(c, rc, "the proxy's preamble is not valid");
	}
	c->have_preamble = true;
	vr_uuid_canon(c->replication, c->pre.replication);
	int rc = vr_tx_dec_init(&c->dec, c->pre.replication_id);
	if (rc)
		return fail(c, rc, "cannot start the decoder");
	c->dec_ready = true;
	rc = feed(c, buf + used, have - used);
	while (rc == 0) {
		ssize_t n = conn_read(c, buf, READ_CHUNK);
		if (n == 0) {
			rc = vr_tx_dec_end(&c->dec);
			rc = fail(c, rc ? rc : VR_TX_ETRUNCATED, "the stream ended: %s",
				  vr_tx_dec_message(&c->dec));
		} else if (n < 0) {
			rc = fail(c, (int)n, "%s",
				  n == VR_TX_EBUSY	  ? "the server is shutting down"
				  : n == VR_TX_ETRUNCATED ? "the connection failed or idled"
							  : "the hash records could not be sent");
		} else {
			rc = feed(c, buf, (size_t)n);
		}
		int hash_err = atomic_load(&c->hash_err);
		if (rc == 0 && hash_err)
			rc = fail(c, hash_err, "the hash records could not be sent");
	}
	return rc == 1 ? 0 : rc;
}

/* Stop writing, read what the agent still sends for a while, close. */
static void finish(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	uint8_t sink[4096];
	for (unsigned waited = 0; waited < DRAIN_MS;) {
		ssize_t n = recv(c->fd, sink, sizeof sink, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			break;
		if (n > 0)
			continue;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		poll(&p, 1, IO_SLICE_MS);
		waited += IO_SLICE_MS;
		if (atomic_load(&c->rx->cut))
			break;
	}
	close(c->fd);
}

static void log_outcome(const struct conn *c, int status, int64_t started)
{
	char bytes[24], ms[24], blocks[24], seq[24], dropped[16];
	snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)c->bytes_in);
	snprintf(ms, sizeof ms, "%lld", (long long)(now_ms() - started));
	if (status == 0) {
		snprintf(blocks, sizeof blocks, "%llu", (unsigned long long)c->inst.blocks);
		snprintf(seq, sizeof seq, "%llu", c->seq);
		snprintf(dropped, sizeof dropped, "%u", c->dropped);
		vr_log_info("transfer_committed", "replication", c->replication, "instance",
			    c->instance, "sequence", c->seq ? seq : NULL, "blocks", blocks,
			    "bytes_in", bytes, "ms", ms, "dropped", dropped, "client",
			    c->slot->client);
		return;
	}
	vr_log_warn("transfer_refused", "replication", c->have_preamble ? c->replication : NULL,
		    "instance", c->have_header ? c->instance : NULL, "error",
		    vr_tx_strerror(status), "detail", c->why, "bytes_in", bytes, "ms", ms, "client",
		    c->slot->client);
}

void vr_receive_serve(struct vr_receiver_slot *slot)
{
	struct conn *c = vr_calloc(1, sizeof *c);
	c->rx = slot->rx;
	c->slot = slot;
	c->fd = slot->fd;
	c->idle_ms = c->rx->config->transfer_idle_timeout * 1000;
	pthread_mutex_init(&c->store_lock, NULL);
	atomic_init(&c->abort, false);
	atomic_init(&c->hash_err, 0);
	int64_t started = now_ms();
	uint8_t *buf = vr_malloc(READ_CHUNK);
	int status = transfer(c, buf);
	free(buf);
	stop_hasher(c, status != 0);
	if (c->store)
		vr_store_close(c->store);
	if (c->got_bytes) {
		send_result(c, status);
		log_outcome(c, status, started);
		atomic_fetch_add(status == 0 ? &c->rx->committed : &c->rx->failed, 1);
	} else {
		/* a connection that sent nothing (a port check): no transfer */
		vr_log_debug("transfer_empty", "client", c->slot->client);
	}
	if (c->dec_ready)
		vr_tx_dec_free(&c->dec);
	finish(c);
	pthread_mutex_destroy(&c->store_lock);
	free(c);
}
