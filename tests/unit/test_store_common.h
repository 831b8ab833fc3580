/* Shared by the replica store tests: a temporary store root, a source of
 * two disks changed at random between instances, a driver that sends an
 * instance through a real encoder and decoder into the store, and
 * byte-for-byte comparisons of images. */
#ifndef TEST_STORE_COMMON_H
#define TEST_STORE_COMMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/store.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

#define S_REPL	 "3f2b8c1d-5e6a-4b7c-9d8e-0f1a2b3c4d5e"
#define S_NDISKS 2

static char s_root[64];
static uint64_t s_rng = 88172645463325252ULL;

static inline uint64_t s_rand(void)
{
	s_rng ^= s_rng << 13;
	s_rng ^= s_rng >> 7;
	s_rng ^= s_rng << 17;
	return s_rng;
}

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void s_setup(void)
{
	strcpy(s_root, "/tmp/vr-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(s_root));
}

static inline void s_teardown(void)
{
	nftw(s_root, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *s_repl_path(const char *name)
{
	return vr_asprintf("%s/%s/%s", s_root, S_REPL, name);
}

/* The source VM: its disks in memory, and which blocks changed since the
 * last instance. */
struct s_src {
	struct vr_store_disk disks[S_NDISKS];
	uint8_t *img[S_NDISKS];
	uint8_t *changed[S_NDISKS];
	unsigned instances;
};

static inline uint64_t s_blocks(const struct s_src *s, unsigned d)
{
	return s->disks[d].size / VR_TX_BLOCK;
}

static inline void s_src_init(struct s_src *s, uint64_t blocks0, uint64_t blocks1)
{
	memset(s, 0, sizeof *s);
	uint64_t nb[S_NDISKS] = {blocks0, blocks1};
	for (unsigned d = 0; d < S_NDISKS; d++) {
		snprintf(s->disks[d].key, sizeof s->disks[d].key, "%u", 2000 + d);
		s->disks[d].size = nb[d] * VR_TX_BLOCK;
		s->img[d] = calloc(nb[d], VR_TX_BLOCK);
		s->changed[d] = calloc(nb[d], 1);
		cr_assert(s->img[d] && s->changed[d]);
	}
}

static inline void s_src_free(struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		free(s->img[d]);
		free(s->changed[d]);
	}
}

static inline void s_fill(uint8_t *p, size_t len, bool zero)
{
	if (zero) {
		memset(p, 0, len);
		return;
	}
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = s_rand();
		memcpy(p + i, &v, 8);
	}
}

/* Writes about `runs` random runs (up to max_run blocks, some of zeros)
 * into every disk and marks them changed. */
static inline void s_src_write(struct s_src *s, unsigned runs, unsigned max_run)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		uint64_t nb = s_blocks(s, d);
		for (unsigned r = 0; r < runs; r++) {
			uint64_t first = s_rand() % nb, len = 1 + s_rand() % max_run;
			if (len > nb - first)
				len = nb - first;
			s_fill(s->img[d] + first * VR_TX_BLOCK, len * VR_TX_BLOCK,
			       s_rand() % 8 == 0);
			memset(s->changed[d] + first, 1, len);
		}
	}
}

static inline void s_src_all_changed(struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++)
		memset(s->changed[d], 1, s_blocks(s, d));
}

static inline void s_src_clear_changed(struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++)
		memset(s->changed[d], 0, s_blocks(s, d));
}

static inline void s_create(const struct s_src *s)
{
	char *err = NULL;
	int rc = vr_store_create(s_root, S_REPL, s->disks, S_NDISKS, &err);
	cr_assert_eq(rc, 0, "create: %d %s", rc, err ? err : "");
	free(err);
}

static inline struct vr_store *s_open(void)
{
	struct vr_store *st = NULL;
	char *err = NULL;
	int rc = vr_store_open(&st, s_root, S_REPL, 1000, &err);
	cr_assert_eq(rc, 0, "open: %d %s", rc, err ? err : "");
	free(err);
	return st;
}

/* One transfer attempt. */
struct s_xfer {
	char instance[VR_UUID_LEN + 1];
	uint64_t token;
	int64_t pit;
	bool full;
	int drop_after_runs; /* >= 0: the connection drops after that many runs */
	unsigned max_run;    /* runs the sender makes, in blocks (1 to 256) */
	void (*before_trailer)(struct vr_store *st); /* a fault to inject */
	int expect_stage_rc; /* nonzero: stage_begin refuses with it, the send stops */
	/* results */
	int stage_rc, commit_rc;
	uint64_t sent_blocks, instance_blocks;
	struct vr_tx_trailer trailer;
	struct vr_store_instance committed;
};

static inline void s_xfer_new(struct s_xfer *x, bool full)
{
	memset(x, 0, sizeof *x);
	cr_assert_eq(vr_uuid_generate(x->instance), 0);
	x->token = s_rand();
	x->pit = 1764150000000LL + (int64_t)(s_rand() % 1000000);
	x->full = full;
	x->drop_after_runs = -1;
	x->max_run = 1 + (unsigned)(s_rand() % 64);
}

struct s_pump {
	struct vr_store *st;
	struct vr_tx_dec *dec;
	struct vr_tx_enc *enc;
	struct vr_buf out;
	struct s_xfer *x;
	bool header_done;
};

/* Feeds what the encoder wrote to the decoder in random chunks and acts
 * on its events as the worker does; 1 when the trailer was committed. */
static inline int s_pump_feed(struct s_pump *p)
{
	size_t off = 0;
	int done = 0;
	while (off < p->out.len) {
		size_t len = 1 + s_rand() % 70000, used = 0;
		if (len > p->out.len - off)
			len = p->out.len - off;
		int ev = vr_tx_dec_feed(p->dec, (const uint8_t *)p->out.data + off, len, &used);
		cr_assert_geq(ev, 0, "decoder: %s", vr_tx_dec_message(p->dec));
		off += used;
		if (ev == VR_TX_EV_HEADER) {
			p->x->stage_rc = vr_store_stage_begin(p->st, p->dec);
			cr_assert_eq(p->x->stage_rc, p->x->expect_stage_rc, "stage_begin: %s",
				     vr_store_message(p->st));
			if (p->x->stage_rc)
				break;
			struct vr_tx_reply r;
			cr_assert_eq(vr_tx_dec_resume_reply(p->dec, &r), 0);
			cr_assert_eq(vr_tx_enc_resume(p->enc, &r), 0);
			p->header_done = true;
		} else if (ev == VR_TX_EV_RUN) {
			int rc = vr_store_stage_run(p->st, p->dec->run_disk, p->dec->run_first,
						    p->dec->run_count, p->dec->run_data);
			cr_assert_eq(rc, 0, "stage_run: %s", vr_store_message(p->st));
		} else if (ev == VR_TX_EV_TRAILER) {
			cr_assert_eq(vr_tx_dec_end(p->dec), 0);
			if (p->x->before_trailer)
				p->x->before_trailer(p->st);
			p->x->commit_rc = vr_store_commit(p->st, p->dec, &p->x->committed);
			done = 1;
		}
	}
	p->out.len = 0;
	return done;
}

/* Sends the source's changed blocks as instance x into st; returns 1 when
 * committed (x->commit_rc tells how), 0 when the attempt was dropped. */
static inline int s_send(struct vr_store *st, const struct s_src *s, struct s_xfer *x)
{
	struct vr_tx_header h;
	memset(&h, 0, sizeof h);
	h.version = VR_TX_VERSION;
	h.flags = x->full ? VR_TX_FULL : VR_TX_INCREMENTAL;
	h.ndisks = S_NDISKS;
	cr_assert_eq(vr_tx_id_parse(h.replication, S_REPL), 0);
	cr_assert_eq(vr_tx_id_parse(h.instance, x->instance), 0);
	h.point_in_time_ms = (uint64_t)x->pit;
	h.resume_token = x->token;
	for (unsigned d = 0; d < S_NDISKS; d++) {
		strcpy(h.disks[d].key, s->disks[d].key);
		h.disks[d].size = s->disks[d].size;
	}
	uint8_t repl[VR_TX_ID];
	cr_assert_eq(vr_tx_id_parse(repl, S_REPL), 0);
	struct vr_tx_dec *dec = malloc(sizeof *dec);
	struct vr_tx_enc *enc = malloc(sizeof *enc);
	cr_assert(dec && enc);
	cr_assert_eq(vr_tx_dec_init(dec, repl), 0);
	struct s_pump p = {.st = st, .dec = dec, .enc = enc, .x = x};
	vr_buf_init(&p.out, 0);
	cr_assert_eq(vr_tx_enc_init(enc, &h, vr_tx_sink_buf, &p.out), 0);
	int runs = 0, result = 0;
	s_pump_feed(&p);
	if (x->expect_stage_rc)
		goto dropped;
	cr_assert(p.header_done);
	unsigned max_run = x->max_run ? x->max_run : 64;
	for (unsigned d = 0; d < S_NDISKS; d++) {
		uint64_t nb = s_blocks(s, d);
		for (uint64_t b = 0; b < nb;) {
			if (!s->changed[d][b]) {
				b++;
				continue;
			}
			uint32_t n = 0;
			while (b + n < nb && s->changed[d][b + n] && n < max_run)
				n++;
			if (x->drop_after_runs >= 0 && runs == x->drop_after_runs)
				goto dropped;
			cr_assert_eq(vr_tx_enc_run(enc, d, b, n, s->img[d] + b * VR_TX_BLOCK), 0);
			s_pump_feed(&p);
			runs++;
			b += n;
		}
	}
	cr_assert_eq(vr_tx_enc_finish(enc, &x->trailer), 0);
	x->sent_blocks = dec->sent_blocks;
	x->instance_blocks = dec->instance_blocks;
	result = s_pump_feed(&p);
	cr_assert_eq(result, 1);
dropped:
	vr_buf_free(&p.out);
	vr_tx_dec_free(dec);
	free(dec);
	free(enc);
	return result;
}

/* Reads a whole file (caller frees). */
static inline uint8_t *s_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *buf = malloc((size_t)sb.st_size + 1);
	cr_assert_not_null(buf);
	size_t done = 0;
	while (done < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)sb.st_size - done);
		cr_assert_gt(n, 0);
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return buf;
}

static inline void s_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static inline bool s_file_equals(const char *path, const uint8_t *data, size_t len)
{
	size_t n;
	uint8_t *buf = s_read(path, &n);
	bool same = n == len && !memcmp(buf, data, len);
	free(buf);
	return same;
}

/* The replica images equal the source. */
static inline void s_assert_replica(struct vr_store *st, const struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++)
		cr_assert(s_file_equals(vr_store_disk_path(st, d), s->img[d], s->disks[d].size),
			  "replica disk %u differs from the source", d);
}

/* One committed instance: send, check, save the source's images under
 * s_root/saved-<seq>-<disk>.img. */
static inline void s_instance(struct vr_store *st, struct s_src *s, bool full,
			      struct vr_store_instance *out)
{
	struct s_xfer x;
	s_xfer_new(&x, full);
	cr_assert_eq(s_send(st, s, &x), 1);
	cr_assert_eq(x.commit_rc, 0, "commit: %s", vr_store_message(st));
	cr_assert_str_eq(x.committed.id, x.instance);
	cr_assert_eq(memcmp(x.committed.root, x.trailer.root, VR_TX_HASH), 0);
	cr_assert_eq(x.committed.blocks, x.trailer.instance_blocks);
	cr_assert_eq(x.committed.point_in_time_ms, x.pit);
	s_assert_replica(st, s);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *p = vr_asprintf("%s/saved-%llu-%u.img", s_root,
				      (unsigned long long)x.committed.seq, d);
		s_write(p, s->img[d], s->disks[d].size);
		free(p);
	}
	s_src_clear_changed(s);
	s->instances++;
	if (out)
		*out = x.committed;
}

/* The exported images in dir equal the source saved at instance seq. */
static inline void s_assert_saved(const char *dir, uint64_t seq, const struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *saved =
			vr_asprintf("%s/saved-%llu-%u.img", s_root, (unsigned long long)seq, d);
		char *got = vr_asprintf("%s/disk-%u.img", dir, d);
		size_t n, m;
		uint8_t *a = s_read(saved, &n), *b = s_read(got, &m);
		cr_assert(n == m && !memcmp(a, b, n),
			  "export of instance %llu disk %u differs from the source",
			  (unsigned long long)seq, d);
		free(a);
		free(b);
		free(saved);
		free(got);
	}
}

#endif
