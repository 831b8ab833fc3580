/* Undo logs: the old contents of the blocks the next retained instance
 * overwrote, written by a commit, applied by exports newest first, merged
 * when a middle instance is dropped (docs/replica-store.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define REC_DATA 'D'
#define REC_ZERO 'Z'
#define REC_END	 'E'

/* The writer's buffer: records go to the file in writes of about this
 * size, each followed by the start of its write-back. */
#define UNDO_BUF (4u << 20)

static void undo_header(uint8_t h[ST_UNDO_HDR], const struct vr_store_instance *in)
{
	memset(h, 0, ST_UNDO_HDR);
	memcpy(h, ST_UNDO_MAGIC, 8);
	tx_put32(h + 8, 1);
	tx_put64(h + 16, in->seq);
	memcpy(h + 24, in->id, VR_UUID_LEN);
	tx_sha256(h + 64, h, 64, NULL, 0, NULL, 0);
}

static void rec_head(uint8_t rec[ST_UNDO_REC], int type, unsigned disk, uint64_t first,
		     uint32_t count, const uint8_t *data)
{
	memset(rec, 0, 16);
	rec[0] = (uint8_t)type;
	tx_put16(rec + 2, (uint16_t)disk);
	tx_put32(rec + 4, count);
	tx_put64(rec + 8, first);
	tx_sha256(rec + 16, rec, 16, data, data ? (size_t)count * VR_TX_BLOCK : 0, NULL, 0);
}

/* ---- writing ---- */

int st_undo_begin(struct vr_store *s, struct st_undo_writer *w, const struct vr_store_instance *in)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
	char *name = st_undo_name(in->seq);
	w->final = st_path(s, name);
	w->tmp = vr_asprintf("%s.tmp", w->final);
	free(name);
	w->buf = malloc(UNDO_BUF);
	if (!w->buf) {
		st_undo_abort(w);
		return st_fail(s, VR_EIO, "undo log: out of memory");
	}
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		int rc = st_fail(s, VR_EIO, "%s: %s", w->tmp, strerror(errno));
		st_undo_abort(w);
		return rc;
	}
	undo_header(w->buf, in);
	w->len = ST_UNDO_HDR;
	w->off = ST_UNDO_HDR;
	return 0;
}

/* Writes the buffered records and starts their write-back, so that the
 * fdatasync of st_undo_finish finds little left to write. */
static int undo_flush(struct vr_store *s, struct st_undo_writer *w)
{
	uint64_t at = w->off - w->len;
	if (w->len && st_pwrite(w->fd, w->buf, w->len, at))
		return st_fail(s, VR_EIO, "%s: %s", w->tmp, strerror(errno));
	w->len = 0;
	if (w->off > w->synced &&
	    !sync_file_range(w->fd, (off_t)w->synced, (off_t)(w->off - w->synced),
			     SYNC_FILE_RANGE_WRITE))
		w->synced = w->off;
	return 0;
}

static int undo_put(struct vr_store *s, struct st_undo_writer *w, const uint8_t *p, size_t n)
{
	while (n) {
		if (w->len == UNDO_BUF) {
			int rc = undo_flush(s, w);
			if (rc)
				return rc;
		}
		size_t take = UNDO_BUF - w->len < n ? UNDO_BUF - w->len : n;
		memcpy(w->buf + w->len, p, take);
		w->len += take;
		w->off += take;
		p += take;
		n -= take;
	}
	return 0;
}

int st_undo_add(struct vr_store *s, struct st_undo_writer *w, unsigned disk, uint64_t first,
		uint32_t count, const uint8_t *data)
{
	uint8_t rec[ST_UNDO_REC];
	rec_head(rec, data ? REC_DATA : REC_ZERO, disk, first, count, data);
	size_t dlen = data ? (size_t)count * VR_TX_BLOCK : 0;
	int rc = undo_put(s, w, rec, sizeof rec);
	if (!rc && dlen)
		rc = undo_put(s, w, data, dlen);
	if (rc)
		return rc;
	w->records++;
	w->blocks += count;
	return 0;
}

int st_undo_finish(struct vr_store *s, struct st_undo_writer *w)
{
	uint8_t rec[ST_UNDO_REC];
	rec_head(rec, REC_END, 0, w->records, 0, NULL);
	int rc = undo_put(s, w, rec, sizeof rec);
	if (!rc)
		rc = undo_flush(s, w);
	if (rc)
		return rc;
	/* A new file: fdatasync writes its size with its data. */
	if (fdatasync(w->fd))
		return st_fail(s, VR_EIO, "%s: %s", w->tmp, strerror(errno));
	free(w->buf);
	w->buf = NULL;
	close(w->fd);
	w->fd = -1;
	if (rename(w->tmp, w->final) || st_fsync_dir(s->dir))
		return st_fail(s, VR_EIO, "%s: %s", w->final, strerror(errno));
	free(w->tmp);
	free(w->final);
	w->tmp = w->final = NULL;
	return 0;
}

void st_undo_abort(struct st_undo_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = 0;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->final);
	w->tmp = w->final = NULL;
}

/* ---- reading ---- */

int st_undo_open(struct vr_store *s, struct st_undo_reader *r, const struct vr_store_instance *in)
{
	memset(r, 0, sizeof *r);
	r->last_disk = -1;
	r->seq = in->seq;
	char *name = st_undo_name(in->seq), *path = st_path(s, name);
	free(name);
	uint8_t h[ST_UNDO_HDR], want[ST_UNDO_HDR];
	struct stat sb;
	size_t got;
	int rc = 0;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &sb) || st_pread(r->fd, h, sizeof h, 0, &got)) {
		rc = st_fail(s, VR_EIO, "undo log %s: %s", path, strerror(errno));
		goto cleanup;
	}
	undo_header(want, in);
	if (got != sizeof h || memcmp(h, want, sizeof h)) {
		rc = st_fail(s, VR_EIO, "undo log %s: bad header", path);
		goto cleanup;
	}
	r->data = malloc(VR_TX_MAX_PAYLOAD);
	if (!r->data) {
		rc = st_fail(s, VR_EIO, "undo log %s: out of memory", path);
		goto cleanup;
	}
	r->size = (uint64_t)sb.st_size;
	r->off = ST_UNDO_HDR;
cleanup:
	free(path);
	if (rc)
		st_undo_close(r);
	return rc;
}

void st_undo_close(struct st_undo_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->data);
	r->data = NULL;
}

static int corrupt(struct vr_store *s, const struct st_undo_reader *r, const char *what)
{
	return st_fail(s, VR_EIO, "undo log of instance %llu is corrupt at byte %llu: %s",
		       (unsigned long long)r->seq, (unsigned long long)r->off, what);
}

int st_undo_next(struct vr_store *s, struct st_undo_reader *r)
{
	if (r->done)
		return 0;
	uint8_t rec[ST_UNDO_REC], h[VR_TX_HASH];
	size_t got;
	if (r->size - r->off < ST_UNDO_REC)
		return corrupt(s, r, "no end record");
	if (st_pread(r->fd, rec, sizeof rec, r->off, &got) || got != sizeof rec)
		return st_fail(s, VR_EIO, "undo log: %s", strerror(errno ? errno : EIO));
	if (rec[1])
		return corrupt(s, r, "reserved bits");
	unsigned disk = tx_get16(rec + 2);
	uint32_t count = tx_get32(rec + 4);
	uint64_t first = tx_get64(rec + 8);
	if (rec[0] == REC_END) {
		tx_sha256(h, rec, 16, NULL, 0, NULL, 0);
		if (memcmp(h, rec + 16, VR_TX_HASH) || disk || first != r->records || count)
			return corrupt(s, r, "bad end record");
		if (r->off + ST_UNDO_REC != r->size)
			return corrupt(s, r, "bytes after the end record");
		r->done = true;
		return 0;
	}
	if (rec[0] != REC_DATA && rec[0] != REC_ZERO)
		return corrupt(s, r, "unknown record");
	if (disk >= s->ndisks || count == 0 || count > VR_TX_MAX_RUN_BLOCKS)
		return corrupt(s, r, "bad record header");
	uint64_t blocks = s->disks[disk].size / VR_TX_BLOCK;
	if (first >= blocks || count > blocks - first || (int)disk < r->last_disk ||
	    ((int)disk == r->last_disk && first < r->next_block))
		return corrupt(s, r, "record out of range or order");
	size_t dlen = rec[0] == REC_DATA ? (size_t)count * VR_TX_BLOCK : 0;
	if (r->size - r->off - ST_UNDO_REC < dlen)
		return corrupt(s, r, "truncated record");
	if (dlen && (st_pread(r->fd, r->data, dlen, r->off + ST_UNDO_REC, &got) || got != dlen))
		return st_fail(s, VR_EIO, "undo log: %s", strerror(errno ? errno : EIO));
	tx_sha256(h, rec, 16, r->data, dlen, NULL, 0);
	if (memcmp(h, rec + 16, VR_TX_HASH))
		return corrupt(s, r, "checksum mismatch");
	r->disk = disk;
	r->first = first;
	r->count = count;
	r->zero = rec[0] == REC_ZERO;
	r->last_disk = (int)disk;
	r->next_block = first + count;
	r->off += ST_UNDO_REC + dlen;
	r->records++;
	r->blocks += count;
	return 1;
}

/* ---- applying ---- */

static int write_zeros(int fd, uint8_t *buf, uint64_t off, size_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	memset(buf, 0, len);
	return st_pwrite(fd, buf, len, off);
}

int st_undo_apply(struct vr_store *s, const struct vr_store_instance *in, const int *fds)
{
	struct st_undo_reader r;
	int rc = st_undo_open(s, &r, in);
	if (rc)
		return rc;
	while ((rc = st_undo_next(s, &r)) == 1) {
		size_t len = (size_t)r.count * VR_TX_BLOCK;
		uint64_t off = r.first * VR_TX_BLOCK;
		int w = r.zero ? write_zeros(fds[r.disk], r.data, off, len)
			       : st_pwrite(fds[r.disk], r.data, len, off);
		if (w) {
			rc = st_fail(s, VR_EIO, "export: %s", strerror(errno));
			break;
		}
	}
	st_undo_close(&r);
	return rc;
}

/* ---- merging ---- */

struct cursor {
	struct st_undo_reader r;
	bool has;
	uint64_t pos; /* the first block of the current record not yet used */
};

static int advance(struct vr_store *s, struct cursor *c)
{
	int rc = st_undo_next(s, &c->r);
	if (rc < 0)
		return rc;
	c->has = rc == 1;
	c->pos = c->r.first;
	return 0;
}

static int emit(struct vr_store *s, struct st_undo_writer *w, const struct cursor *c, uint64_t from,
		uint64_t to)
{
	const uint8_t *data = c->r.zero ? NULL
					: c->r.data + (size_t)(from - c->r.first) * VR_TX_BLOCK;
	return st_undo_add(s, w, c->r.disk, from, (uint32_t)(to - from), data);
}

static bool before_or_at(const struct cursor *a, const struct cursor *b)
{
	return a->r.disk < b->r.disk || (a->r.disk == b->r.disk && a->pos <= b->pos);
}

/* One pass over both logs in block order: the older log's records whole,
 * the newer one's only where the older has nothing. */
int st_undo_merge(struct vr_store *s, size_t i)
{
	struct cursor a, b;
	struct st_undo_writer w = {.fd = -1};
	int rc = st_undo_open(s, &a.r, &s->inst[i - 1]);
	if (rc)
		return rc;
	rc = st_undo_open(s, &b.r, &s->inst[i]);
	if (rc) {
		st_undo_close(&a.r);
		return rc;
	}
	rc = st_undo_begin(s, &w, &s->inst[i - 1]);
	if (rc)
		goto cleanup;
	if ((rc = advance(s, &a)) || (rc = advance(s, &b)))
		goto cleanup;
	while (a.has || b.has) {
		if (!b.has || (a.has && before_or_at(&a, &b))) {
			uint64_t end = a.r.first + a.r.count;
			if ((rc = emit(s, &w, &a, a.pos, end)))
				goto cleanup;
			while (b.has && b.r.disk == a.r.disk && b.pos < end) {
				if (b.r.first + b.r.count <= end) {
					if ((rc = advance(s, &b)))
						goto cleanup;
				} else {
					b.pos = end;
				}
			}
			if ((rc = advance(s, &a)))
				goto cleanup;
		} else {
			uint64_t limit = b.r.first + b.r.count;
			if (a.has && a.r.disk == b.r.disk && a.pos < limit)
				limit = a.pos;
			if ((rc = emit(s, &w, &b, b.pos, limit)))
				goto cleanup;
			if (limit == b.r.first + b.r.count)
				rc = advance(s, &b);
			else
				b.pos = limit;
			if (rc)
				goto cleanup;
		}
	}
	rc = st_undo_finish(s, &w);
cleanup:
	if (rc)
		st_undo_abort(&w);
	st_undo_close(&a.r);
	st_undo_close(&b.r);
	return rc;
}
