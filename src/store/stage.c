/* Staging (the redo log of the instance in flight) and the commit that
 * turns it into the replica's newest instance (docs/replica-store.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define REDO_FIXED 64

/* ---- the redo log's header ---- */

#define REDO_DIRECT 0x1u

static size_t redo_header_encode(uint8_t *out, const struct vr_store *s,
				 const struct vr_tx_header *h, bool direct)
{
	memset(out, 0, REDO_FIXED);
	memcpy(out, ST_REDO_MAGIC, 8);
	tx_put16(out + 12, (uint16_t)s->ndisks);
	tx_put16(out + 14, direct ? REDO_DIRECT : 0);
	memcpy(out + 16, h->replication, VR_TX_ID);
	memcpy(out + 32, h->instance, VR_TX_ID);
	tx_put64(out + 48, h->resume_token);
	tx_put64(out + 56, h->point_in_time_ms);
	size_t n = REDO_FIXED;
	for (unsigned i = 0; i < s->ndisks; i++) {
		size_t kl = strlen(s->disks[i].key);
		out[n++] = (uint8_t)kl;
		memcpy(out + n, s->disks[i].key, kl);
		n += kl;
		tx_put64(out + n, s->disks[i].size);
		n += 8;
	}
	tx_put32(out + 8, (uint32_t)(n + VR_TX_HASH));
	tx_sha256(out + n, out, n, NULL, 0, NULL, 0);
	return n + VR_TX_HASH;
}

#define REDO_HEADER_MAX (REDO_FIXED + VR_TX_MAX_DISKS * (1 + VR_TX_MAX_KEY + 8) + VR_TX_HASH)

/* Reads the staging header on fd; 0 when it is whole and names this store's
 * replication and disks, with the instance, token and point in time. */
static int redo_header_read(const struct vr_store *s, int fd, struct st_staging *st)
{
	uint8_t buf[REDO_HEADER_MAX], want[REDO_HEADER_MAX];
	size_t got;
	if (st_pread(fd, buf, sizeof buf, 0, &got) || got < REDO_FIXED + VR_TX_HASH)
		return -1;
	if (memcmp(buf, ST_REDO_MAGIC, 8))
		return -1;
	uint32_t len = tx_get32(buf + 8);
	if (len > got || len < REDO_FIXED + VR_TX_HASH)
		return -1;
	struct vr_tx_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.replication, buf + 16, VR_TX_ID);
	memcpy(h.instance, buf + 32, VR_TX_ID);
	h.resume_token = tx_get64(buf + 48);
	h.point_in_time_ms = tx_get64(buf + 56);
	bool direct = tx_get16(buf + 14) == REDO_DIRECT;
	/* Whole and ours exactly when it re-encodes to the same bytes. */
	size_t n = redo_header_encode(want, s, &h, direct);
	if (n != len || memcmp(want, buf, n))
		return -1;
	memcpy(st->instance, h.instance, VR_TX_ID);
	st->token = h.resume_token;
	st->point_in_time_ms = (int64_t)h.point_in_time_ms;
	st->data_start = len;
	st->direct = direct;
	return 0;
}

/* ---- redo records ---- */

struct redo_iter {
	bool direct;	/* the data is in the images, not in the records */
	const int *img; /* the images' fds, for a direct staging */
	uint64_t off, end;
	int last_disk;
	uint64_t next_block;
	unsigned disk;
	uint64_t first;
	uint32_t count;
	const uint8_t (*leaves)[VR_TX_HASH]; /* the record's, in win */
	const uint8_t *data;		     /* the blocks, in win or buf */
	/* the staging's bytes [win_off, win_off + win_len), read in large
	 * pieces: a record is rarely a read of its own */
	uint8_t *win;
	uint64_t win_off;
	size_t win_len;
	uint8_t *buf; /* a direct record's blocks, read from the images */
};

/* The window: at least one record of the largest kind (a header, 256
 * leaves and 256 blocks). */
#define REDO_WINDOW (4u << 20)

/* The staging's write-back starts each time this much was appended. */
#define REDO_WRITEBACK (4u << 20)

static void record_head(uint8_t rec[ST_REDO_REC], unsigned disk, uint64_t first, uint32_t count,
			const uint8_t (*leaves)[VR_TX_HASH])
{
	memset(rec, 0, 16);
	rec[0] = 'R';
	tx_put16(rec + 2, (uint16_t)disk);
	tx_put32(rec + 4, count);
	tx_put64(rec + 8, first);
	tx_sha256(rec + 16, rec, 16, leaves, (size_t)count * VR_TX_HASH, NULL, 0);
}

static bool run_fits(const struct vr_store *s, int last_disk, uint64_t next_block, unsigned disk,
		     uint64_t first, uint64_t count)
{
	if (disk >= s->ndisks || count == 0 || count > VR_TX_MAX_RUN_BLOCKS)
		return false;
	uint64_t blocks = s->disks[disk].size / VR_TX_BLOCK;
	if (first >= blocks || count > blocks - first)
		return false;
	return (int)disk > last_disk || ((int)disk == last_disk && first >= next_block);
}

/* Points *p at the len bytes of the staging at off (below it->end),
 * reading a new window from off when the current one does not hold them:
 * 1, -1 when the file ends first, VR_EIO on a read error. */
static int redo_fetch(int fd, struct redo_iter *it, uint64_t off, size_t len, const uint8_t **p)
{
	if (off < it->win_off || off - it->win_off > it->win_len ||
	    len > it->win_len - (off - it->win_off)) {
		uint64_t want = it->end - off < REDO_WINDOW ? it->end - off : REDO_WINDOW;
		size_t got;
		it->win_len = 0;
		if (st_pread(fd, it->win, (size_t)want, off, &got))
			return VR_EIO;
		it->win_off = off;
		it->win_len = got;
		if (got < len)
			return -1;
	}
	*p = it->win + (off - it->win_off);
	return 1;
}

/* The next whole record at it->off: 1, 0 at it->end, -1 when the bytes
 * there are not a whole valid record (torn or corrupt), VR_EIO on a read
 * error. With verify, each block's data is checked against its leaf. */
static int redo_next(int fd, const struct vr_store *s, struct redo_iter *it, bool verify)
{
	if (it->off >= it->end)
		return 0;
	const uint8_t *rec, *leaves, *data = NULL;
	uint8_t h[VR_TX_HASH];
	size_t got;
	if (it->end - it->off < ST_REDO_REC)
		return -1;
	int r = redo_fetch(fd, it, it->off, ST_REDO_REC, &rec);
	if (r != 1)
		return r;
	if (rec[0] != 'R' || rec[1])
		return -1;
	unsigned disk = tx_get16(rec + 2);
	uint32_t count = tx_get32(rec + 4);
	uint64_t first = tx_get64(rec + 8);
	if (!run_fits(s, it->last_disk, it->next_block, disk, first, count))
		return -1;
	size_t lsize = (size_t)count * VR_TX_HASH, dsize = (size_t)count * VR_TX_BLOCK;
	size_t stored = it->direct ? 0 : dsize;
	if (it->end - it->off < ST_REDO_REC + lsize + stored)
		return -1;
	/* the record, its leaves and its blocks in the window at once */
	r = redo_fetch(fd, it, it->off, ST_REDO_REC + lsize + stored, &rec);
	if (r != 1)
		return r;
	leaves = rec + ST_REDO_REC;
	tx_sha256(h, rec, 16, leaves, lsize, NULL, 0);
	if (memcmp(h, rec + 16, VR_TX_HASH))
		return -1;
	if (it->direct && verify) {
		if (st_pread(it->img[disk], it->buf, dsize, first * VR_TX_BLOCK, &got))
			return VR_EIO;
		memset(it->buf + got, 0, dsize - got);
		data = it->buf;
	} else if (!it->direct) {
		data = leaves + lsize;
	}
	it->leaves = (const uint8_t(*)[VR_TX_HASH])leaves;
	if (verify)
		for (uint32_t i = 0; i < count; i++) {
			vr_tx_leaf(first + i, data + (size_t)i * VR_TX_BLOCK, h);
			if (memcmp(h, it->leaves[i], VR_TX_HASH))
				return -1;
		}
	it->data = data;
	it->disk = disk;
	it->first = first;
	it->count = count;
	it->last_disk = (int)disk;
	it->next_block = first + count;
	it->off += ST_REDO_REC + lsize + stored;
	return 1;
}

static struct redo_iter *redo_iter_new(const struct st_staging *st, uint64_t start, uint64_t end)
{
	struct redo_iter *it = vr_calloc(1, sizeof *it);
	it->direct = st->direct;
	it->img = st->img;
	it->win = malloc(REDO_WINDOW);
	it->buf = it->direct ? malloc(VR_TX_MAX_PAYLOAD) : NULL;
	if (!it->win || (it->direct && !it->buf)) {
		free(it->win);
		free(it->buf);
		free(it);
		return NULL;
	}
	it->off = start;
	it->end = end;
	it->last_disk = -1;
	return it;
}

static void redo_iter_free(struct redo_iter *it)
{
	if (it) {
		free(it->win);
		free(it->buf);
		free(it);
	}
}

/* ---- staging ---- */

void st_stage_close(struct vr_store *s)
{
	if (s->stage.fd >= 0)
		close(s->stage.fd);
	for (unsigned i = 0; i < VR_TX_MAX_DISKS; i++)
		if (s->stage.img[i] >= 0)
			close(s->stage.img[i]);
	memset(&s->stage, 0, sizeof s->stage);
	s->stage.fd = -1;
	s->stage.disk = -1;
	for (unsigned i = 0; i < VR_TX_MAX_DISKS; i++)
		s->stage.img[i] = -1;
}

/* A direct staging writes into the images: open them. */
static int stage_images(struct vr_store *s)
{
	for (unsigned i = 0; i < s->ndisks; i++) {
		s->stage.img[i] = open(s->paths[i], O_RDWR | O_CLOEXEC);
		if (s->stage.img[i] < 0)
			return st_fail(s, VR_EIO, "%s: %s", s->paths[i], strerror(errno));
	}
	return 0;
}

int st_stage_discard(struct vr_store *s)
{
	st_stage_close(s);
	char *path = st_path(s, ST_STAGING);
	int rc = 0;
	if (unlink(path) && errno != ENOENT)
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
	free(path);
	return rc;
}

static bool disks_match(const struct vr_store *s, const struct vr_tx_header *h)
{
	if (h->ndisks != s->ndisks)
		return false;
	for (unsigned i = 0; i < s->ndisks; i++)
		if (strcmp(h->disks[i].key, s->disks[i].key) ||
		    h->disks[i].size != s->disks[i].size)
			return false;
	return true;
}

/* Primes dec with every valid record of the staging open on s->stage.fd and
 * cuts a torn or corrupt tail off. */
static int stage_resume(struct vr_store *s, struct vr_tx_dec *dec)
{
	struct st_staging *st = &s->stage;
	struct stat sb;
	if (fstat(st->fd, &sb))
		return st_fail(s, VR_EIO, "staging: %s", strerror(errno));
	if (st->direct && stage_images(s))
		return VR_EIO;
	struct redo_iter *it = redo_iter_new(st, st->data_start, (uint64_t)sb.st_size);
	if (!it)
		return st_fail(s, VR_EIO, "staging: out of memory");
	int r, rc = 0;
	while ((r = redo_next(st->fd, s, it, true)) == 1) {
		for (uint32_t i = 0; i < it->count; i++) {
			r = vr_tx_dec_prime(dec, it->disk, it->first + i, it->leaves[i]);
			if (r) {
				rc = st_fail(s, r, "staging: priming the decoder: %s",
					     vr_tx_dec_message(dec));
				goto cleanup;
			}
		}
		st->blocks += it->count;
		st->bytes += (uint64_t)it->count * VR_TX_BLOCK;
		st->disk = it->last_disk;
		st->next_block = it->next_block;
	}
	if (r == VR_EIO) {
		rc = st_fail(s, VR_EIO, "staging: %s", strerror(errno));
		goto cleanup;
	}
	st->end = it->off;
	if ((uint64_t)sb.st_size != st->end && ftruncate(st->fd, (off_t)st->end))
		rc = st_fail(s, VR_EIO, "staging: %s", strerror(errno));
cleanup:
	redo_iter_free(it);
	return rc;
}

static int stage_new(struct vr_store *s, const struct vr_tx_header *h)
{
	st_stage_discard(s);
	char *path = st_path(s, ST_STAGING);
	int rc = 0;
	struct st_staging *st = &s->stage;
	st->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (st->fd < 0) {
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	st->direct = s->base_seq == 0;
	if (st->direct && (rc = stage_images(s)))
		goto cleanup;
	uint8_t buf[REDO_HEADER_MAX];
	size_t n = redo_header_encode(buf, s, h, st->direct);
	if (st_pwrite(st->fd, buf, n, 0)) {
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	memcpy(st->instance, h->instance, VR_TX_ID);
	st->token = h->resume_token;
	st->point_in_time_ms = (int64_t)h->point_in_time_ms;
	st->data_start = st->end = n;
cleanup:
	free(path);
	return rc;
}

static void id_text(char out[VR_UUID_LEN + 1], const uint8_t id[VR_TX_ID])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (int i = 0; i < VR_TX_ID; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[id[i] >> 4];
		out[n++] = hex[id[i] & 15];
	}
	out[n] = 0;
}

int vr_store_stage_begin(struct vr_store *s, struct vr_tx_dec *dec)
{
	const struct vr_tx_header *h = &dec->hdr;
	st_stage_close(s);
	if (dec->err || h->ndisks == 0 || dec->instance_blocks)
		return st_fail(s, VR_TX_ESTATE, "the decoder is not just after a header");
	if (memcmp(h->replication, s->replication_id, VR_TX_ID))
		return st_fail(s, VR_TX_EREPLICATION, "the transfer is not for replication %s",
			       s->replication);
	if (!disks_match(s, h))
		return st_fail(s, VR_TX_EHEADER, "the transfer's disks are not the replica's");
	if (s->flags & ST_MOVED_OUT)
		return st_fail(s, VR_ECONFLICT, "the replica disks were moved out");
	char id[VR_UUID_LEN + 1];
	id_text(id, h->instance);
	if (st_find(s, id) >= 0)
		return st_fail(s, VR_EEXIST, "instance %s is already committed", id);
	char *path = st_path(s, ST_STAGING);
	int rc = 0;
	s->stage.fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->stage.fd < 0 && errno != ENOENT) {
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (s->stage.fd >= 0 && redo_header_read(s, s->stage.fd, &s->stage) == 0 &&
	    !memcmp(s->stage.instance, h->instance, VR_TX_ID) &&
	    s->stage.token == h->resume_token &&
	    s->stage.point_in_time_ms == (int64_t)h->point_in_time_ms) {
		rc = stage_resume(s, dec);
	} else {
		rc = stage_new(s, h);
	}
	if (!rc)
		s->stage.active = true;
	else
		st_stage_close(s);
cleanup:
	free(path);
	return rc;
}

int vr_store_stage_run(struct vr_store *s, unsigned disk, uint64_t first, uint32_t count,
		       const uint8_t *data)
{
	return vr_store_stage_run_leaves(s, disk, first, count, data, NULL);
}

int vr_store_stage_run_leaves(struct vr_store *s, unsigned disk, uint64_t first, uint32_t count,
			      const uint8_t *data, const uint8_t (*given)[VR_TX_HASH])
{
	struct st_staging *st = &s->stage;
	if (!st->active)
		return st_fail(s, VR_EIO, "no staging: call vr_store_stage_begin first");
	if (!run_fits(s, st->disk, st->next_block, disk, first, count))
		return st_fail(s, VR_EIO, "run disk %u blocks %llu+%u does not follow the staging",
			       disk, (unsigned long long)first, count);
	uint8_t rec[ST_REDO_REC];
	uint8_t(*leaves)[VR_TX_HASH] = malloc((size_t)count * VR_TX_HASH);
	if (!leaves)
		return st_fail(s, VR_EIO, "staging: out of memory");
	for (uint32_t i = 0; i < count; i++)
		if (given)
			memcpy(leaves[i], given[i], VR_TX_HASH);
		else
			vr_tx_leaf(first + i, data + (size_t)i * VR_TX_BLOCK, leaves[i]);
	record_head(rec, disk, first, count, (const uint8_t(*)[VR_TX_HASH])leaves);
	int rc = 0;
	size_t dsize = (size_t)count * VR_TX_BLOCK;
	/* The record, its leaves and (not direct) its blocks in one write. */
	struct iovec iov[3] = {{.iov_base = rec, .iov_len = sizeof rec},
			       {.iov_base = leaves, .iov_len = (size_t)count * VR_TX_HASH},
			       {.iov_base = (void *)data, .iov_len = dsize}};
	/* Direct: the blocks before their record, so a record is never valid
	 * without them. */
	if ((st->direct && st_pwrite(st->img[disk], data, dsize, first * VR_TX_BLOCK)) ||
	    st_pwritev(st->fd, iov, st->direct ? 2 : 3, st->end)) {
		rc = st_fail(s, VR_EIO, "staging: %s", strerror(errno));
		/* Nothing may follow a torn record: this staging takes no more
		 * runs; the next stage_begin cuts the tail off. */
		st->active = false;
		goto cleanup;
	}
	st->end += ST_REDO_REC + (uint64_t)count * VR_TX_HASH + (st->direct ? 0 : dsize);
	/* Start the write-back of each few MiB as they come, so the commit's
	 * fdatasync finds little left to write. */
	if (st->end - st->synced >= REDO_WRITEBACK &&
	    !sync_file_range(st->fd, (off_t)st->synced, (off_t)(st->end - st->synced),
			     SYNC_FILE_RANGE_WRITE))
		st->synced = st->end;
	st->blocks += count;
	st->bytes += (uint64_t)count * VR_TX_BLOCK;
	st->disk = (int)disk;
	st->next_block = first + count;
cleanup:
	free(leaves);
	return rc;
}

uint64_t vr_store_staged_bytes(const struct vr_store *s)
{
	return s->stage.active ? s->stage.bytes : 0;
}

/* ---- commit ---- */

static int open_images(struct vr_store *s, int *fds, int flags)
{
	for (unsigned i = 0; i < s->ndisks; i++)
		fds[i] = -1;
	for (unsigned i = 0; i < s->ndisks; i++) {
		fds[i] = open(s->paths[i], flags | O_CLOEXEC);
		if (fds[i] < 0)
			return st_fail(s, VR_EIO, "%s: %s", s->paths[i], strerror(errno));
	}
	return 0;
}

static void close_images(const struct vr_store *s, int *fds)
{
	for (unsigned i = 0; i < s->ndisks; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Writes the redo log's records up to end into the replica images and
 * syncs them: what the commit marker promises, so repeating it after a
 * crash changes nothing that was already written. */
static int apply_redo(struct vr_store *s, int stage_fd, uint64_t start, uint64_t end, bool verify)
{
	int fds[VR_TX_MAX_DISKS];
	struct redo_iter *it = redo_iter_new(&s->stage, start, end);
	if (!it)
		return st_fail(s, VR_EIO, "commit: out of memory");
	int r, rc = open_images(s, fds, O_RDWR);
	if (rc)
		goto cleanup;
	it->img = fds;
	uint64_t applied = 0;
	while ((r = redo_next(stage_fd, s, it, verify)) == 1) {
		if (it->direct)
			continue; /* the blocks are in place */
		if (st_pwrite(fds[it->disk], it->data, (size_t)it->count * VR_TX_BLOCK,
			      it->first * VR_TX_BLOCK)) {
			rc = st_fail(s, VR_EIO, "%s: %s", s->paths[it->disk], strerror(errno));
			goto cleanup;
		}
		/* Start the write-back of what was applied every few MiB, so
		 * that it overlaps the rest and the fdatasync below waits less. */
		applied += (uint64_t)it->count * VR_TX_BLOCK;
		if (applied >= REDO_WRITEBACK) {
			sync_file_range(fds[it->disk], 0, 0, SYNC_FILE_RANGE_WRITE);
			applied = 0;
		}
	}
	if (r) {
		rc = st_fail(s, VR_EIO, "staging: the committed redo log is corrupt at byte %llu",
			     (unsigned long long)it->off);
		goto cleanup;
	}
	/* The images keep their size: their data is what must be durable. */
	for (unsigned i = 0; i < s->ndisks; i++)
		if (fdatasync(fds[i])) {
			rc = st_fail(s, VR_EIO, "%s: %s", s->paths[i], strerror(errno));
			goto cleanup;
		}
cleanup:
	close_images(s, fds);
	redo_iter_free(it);
	return rc;
}

/* Verifies the staged data against the transfer's root and, when the
 * replica holds an instance, writes that instance's undo log. */
static int verify_and_undo(struct vr_store *s, const struct vr_tx_dec *dec)
{
	struct st_staging *st = &s->stage;
	int fds[VR_TX_MAX_DISKS];
	struct st_undo_writer w = {.fd = -1};
	bool undo = s->base_seq != 0;
	struct redo_iter *it = redo_iter_new(st, st->data_start, st->end);
	uint8_t *old = malloc(VR_TX_MAX_PAYLOAD);
	struct vr_tx_root root;
	int r, rc = 0;
	for (unsigned i = 0; i < s->ndisks; i++)
		fds[i] = -1;
	if (!it || !old) {
		rc = st_fail(s, VR_EIO, "commit: out of memory");
		goto cleanup;
	}
	rc = open_images(s, fds, O_RDONLY);
	if (rc)
		goto cleanup;
	it->img = fds;
	if (undo && st->direct) {
		rc = st_fail(s, VR_EIO,
			     "a direct staging while the replica holds an instance; "
			     "staging discarded");
		st_stage_discard(s);
		goto cleanup;
	}
	if (undo) {
		rc = st_undo_begin(s, &w, &s->inst[s->ninst - 1]);
		if (rc)
			goto cleanup;
	}
	vr_tx_root_init(&root, s->ndisks);
	uint64_t blocks = 0;
	while ((r = redo_next(st->fd, s, it, true)) == 1) {
		for (uint32_t i = 0; i < it->count; i++)
			vr_tx_root_add(&root, it->disk, it->leaves[i]);
		blocks += it->count;
		if (!undo)
			continue;
		size_t len = (size_t)it->count * VR_TX_BLOCK, got;
		if (st_pread(fds[it->disk], old, len, it->first * VR_TX_BLOCK, &got)) {
			rc = st_fail(s, VR_EIO, "%s: %s", s->paths[it->disk], strerror(errno));
			goto cleanup;
		}
		memset(old + got, 0, len - got);
		rc = st_undo_add(s, &w, it->disk, it->first, it->count,
				 st_zero(old, len) ? NULL : old);
		if (rc)
			goto cleanup;
	}
	if (r == VR_EIO) {
		rc = st_fail(s, VR_EIO, "staging: %s", strerror(errno));
		goto cleanup;
	}
	uint8_t h[VR_TX_HASH];
	vr_tx_root_final(&root, h);
	if (r || blocks != dec->trailer.instance_blocks ||
	    memcmp(h, dec->trailer.root, VR_TX_HASH)) {
		rc = st_fail(s, VR_EIO,
			     "the staged blocks do not hash to the transfer's root; staging "
			     "discarded");
		st_stage_discard(s);
		goto cleanup;
	}
	if (undo)
		rc = st_undo_finish(s, &w);
	/* Direct: the blocks are the instance once the marker is written. */
	for (unsigned i = 0; !rc && st->direct && i < s->ndisks; i++)
		if (fdatasync(fds[i]))
			rc = st_fail(s, VR_EIO, "%s: %s", s->paths[i], strerror(errno));
cleanup:
	if (rc && undo)
		st_undo_abort(&w);
	close_images(s, fds);
	free(old);
	redo_iter_free(it);
	return rc;
}

static void marker_encode(uint8_t out[ST_COMMIT_LEN], uint64_t redo_end, uint64_t prev_base,
			  const struct vr_store_instance *in)
{
	memcpy(out, ST_COMMIT_MAGIC, 8);
	tx_put64(out + 8, redo_end);
	tx_put64(out + 16, prev_base);
	st_instance_encode(out + 24, in, 0);
	tx_sha256(out + 24 + ST_INSTANCE_REC, out, 24 + ST_INSTANCE_REC, NULL, 0, NULL, 0);
}

/* The commit's last steps: the journal names the instance, then the
 * staging and the marker go. */
static int commit_finish(struct vr_store *s, const struct vr_store_instance *in)
{
	st_append_instance(s, in);
	uint64_t base = s->base_seq, next = s->next_seq;
	s->base_seq = in->seq;
	s->next_seq = in->seq + 1;
	int rc = st_journal_write(s);
	if (rc) {
		s->ninst--;
		s->base_seq = base;
		s->next_seq = next;
		return rc;
	}
	char *marker = st_path(s, ST_COMMIT);
	st_stage_discard(s);
	if ((unlink(marker) && errno != ENOENT) || st_fsync_dir(s->dir))
		rc = st_fail(s, VR_EIO, "%s: %s", marker, strerror(errno));
	free(marker);
	return rc;
}

int st_commit_recover(struct vr_store *s)
{
	char *path = st_path(s, ST_COMMIT);
	uint8_t m[ST_COMMIT_LEN + 1], h[VR_TX_HASH] = {0};
	size_t got = 0;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || st_pread(fd, m, sizeof m, 0, &got)) {
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	struct vr_store_instance in;
	uint32_t flags;
	if (got == ST_COMMIT_LEN && !memcmp(m, ST_COMMIT_MAGIC, 8))
		tx_sha256(h, m, 24 + ST_INSTANCE_REC, NULL, 0, NULL, 0);
	if (got != ST_COMMIT_LEN || memcmp(m, ST_COMMIT_MAGIC, 8) ||
	    memcmp(h, m + 24 + ST_INSTANCE_REC, VR_TX_HASH) ||
	    st_instance_decode(&in, &flags, m + 24)) {
		rc = st_fail(s, VR_EIO, "commit marker %s is corrupt", path);
		goto cleanup;
	}
	uint64_t redo_end = tx_get64(m + 8), prev_base = tx_get64(m + 16);
	if (s->ninst && s->inst[s->ninst - 1].seq == in.seq) {
		/* The journal has it: only the cleanup was cut short. */
		char *marker = st_path(s, ST_COMMIT);
		st_stage_discard(s);
		if ((unlink(marker) && errno != ENOENT) || st_fsync_dir(s->dir))
			rc = st_fail(s, VR_EIO, "%s: %s", marker, strerror(errno));
		free(marker);
		goto cleanup;
	}
	if (in.seq != s->next_seq || prev_base != s->base_seq) {
		rc = st_fail(s, VR_EIO, "commit marker %s does not follow the journal", path);
		goto cleanup;
	}
	st_stage_close(s);
	char *spath = st_path(s, ST_STAGING);
	s->stage.fd = open(spath, O_RDONLY | O_CLOEXEC);
	free(spath);
	if (s->stage.fd < 0 || redo_header_read(s, s->stage.fd, &s->stage)) {
		rc = st_fail(s, VR_EIO, "the staging of the commit in %s is missing or corrupt",
			     path);
		goto cleanup;
	}
	rc = apply_redo(s, s->stage.fd, s->stage.data_start, redo_end, true);
	if (!rc)
		rc = commit_finish(s, &in);
cleanup:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

int vr_store_commit(struct vr_store *s, const struct vr_tx_dec *dec, struct vr_store_instance *out)
{
	static const uint8_t zero[VR_TX_HASH];
	struct st_staging *st = &s->stage;
	const struct vr_tx_header *h = &dec->hdr;
	if (!st->active || memcmp(h->replication, s->replication_id, VR_TX_ID) ||
	    memcmp(h->instance, st->instance, VR_TX_ID) || h->resume_token != st->token)
		return st_fail(s, VR_ECONFLICT, "no staging for the transfer's instance");
	if (dec->err || !memcmp(dec->trailer.root, zero, VR_TX_HASH))
		return st_fail(s, VR_ECONFLICT, "the transfer has no verified trailer");
	if (s->flags & ST_MOVED_OUT)
		return st_fail(s, VR_ECONFLICT, "the replica disks were moved out");
	if (s->ninst >= ST_MAX_INSTANCES)
		return st_fail(s, VR_ECONFLICT, "%u instances retained: drop some first",
			       ST_MAX_INSTANCES);
	struct vr_store_instance in;
	memset(&in, 0, sizeof in);
	id_text(in.id, h->instance);
	if (st_find(s, in.id) >= 0)
		return st_fail(s, VR_ECONFLICT, "instance %s is already committed", in.id);
	if (fdatasync(st->fd))
		return st_fail(s, VR_EIO, "staging: %s", strerror(errno));
	in.seq = s->next_seq;
	in.point_in_time_ms = st->point_in_time_ms;
	memcpy(in.root, dec->trailer.root, VR_TX_HASH);
	in.blocks = st->blocks;
	in.bytes = st->bytes;
	in.committed_ms = st_now_ms();
	in.available = true;
	int rc = verify_and_undo(s, dec);
	if (rc)
		return rc;
	uint8_t m[ST_COMMIT_LEN];
	marker_encode(m, st->end, s->base_seq, &in);
	if (st_write_atomic(s->dir, ST_COMMIT, m, sizeof m)) {
		rc = st_fail(s, VR_EIO, "%s/%s: %s", s->dir, ST_COMMIT, strerror(errno));
		char *name = st_undo_name(s->base_seq), *path = st_path(s, name);
		if (s->base_seq)
			unlink(path);
		free(name);
		free(path);
		return rc;
	}
	/* From here the instance is committed: a failure is finished by the
	 * recovery, now or when the store is next opened. */
	rc = apply_redo(s, st->fd, st->data_start, st->end, false);
	if (!rc)
		rc = commit_finish(s, &in);
	if (rc) {
		char keep[sizeof s->msg];
		memcpy(keep, s->msg, sizeof keep);
		if (st_commit_recover(s)) {
			st_fail(s, VR_EIO, "%s; recovery: %s", keep, s->msg);
			return VR_EIO;
		}
	}
	if (out)
		*out = s->inst[s->ninst - 1];
	return 0;
}
