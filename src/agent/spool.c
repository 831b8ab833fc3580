/* The spool of an incremental instance (docs/agent.md, "Point in time"):
 * the changed blocks copied out of the disks while the VM is frozen, so the
 * instance is the disks at that moment however long its transfer takes, and
 * every retry sends identical blocks. Layout, little-endian:
 *
 *   header (4096 bytes): magic "VRSPOOL1", instance id (16), resume token
 *     (8), point in time ms (8), disks (4), runs (8), blocks (8), then per
 *     disk: key length (1), key (up to 255), size (8), log generation (8),
 *     log record (8); then a SHA-256 of the header's bytes before it;
 *   runs: disk (2), reserved (2), count (4), first block (8), count x 4096
 *     bytes.
 *
 * It is written to PATH.tmp and renamed into place once complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define RUN_HEAD 16

/* Runs are written and read in pieces of this size: a few large writes
 * and reads instead of two per run. At least one run of the largest kind. */
#define SPOOL_BUF (4u << 20)

struct vr_spool_writer {
	int fd;
	char *path, *tmp;
	uint8_t *buf; /* runs not yet written, which belong at `at` */
	size_t len;
	off_t at;     /* the file's end */
	off_t synced; /* the bytes before: write-back started */
	uint64_t runs, blocks;
};

struct vr_spool_reader {
	int fd;
	off_t end;
	off_t at; /* the next run */
	/* the file's bytes [win_at, win_at + win_len) */
	uint8_t *win;
	off_t win_at;
	size_t win_len;
};

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int pwrite_all(int fd, const void *data, size_t len, off_t at)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = pwrite(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* Read exactly len bytes at at; a short file reads as zeros past its end
 * only when zero_past_end (a disk image smaller than its declared size). */
static int pread_all(int fd, void *data, size_t len, off_t at, bool zero_past_end)
{
	uint8_t *p = data;
	while (len) {
		ssize_t n = pread(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return VR_EIO;
		if (n == 0) {
			if (!zero_past_end)
				return VR_EINVAL;
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

int vr_spool_create(struct vr_spool_writer **out, const char *path)
{
	*out = NULL;
	struct vr_spool_writer *w = vr_calloc(1, sizeof *w);
	w->path = vr_strdup(path);
	w->tmp = vr_asprintf("%s.tmp", path);
	w->fd = open(w->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	w->buf = malloc(SPOOL_BUF);
	w->at = VR_SPOOL_HEADER;
	w->synced = VR_SPOOL_HEADER;
	if (w->fd < 0 || !w->buf) {
		int rc = w->buf ? VR_EIO : VR_ENOMEM;
		vr_spool_abort(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Writes the buffered runs and starts their write-back, so that the
 * fdatasync of vr_spool_commit finds little left to write. */
static int flush(struct vr_spool_writer *w)
{
	if (w->len && pwrite_all(w->fd, w->buf, w->len, w->at))
		return VR_EIO;
	w->at += (off_t)w->len;
	w->len = 0;
	if (w->at > w->synced &&
	    sync_file_range(w->fd, w->synced, w->at - w->synced, SYNC_FILE_RANGE_WRITE) == 0)
		w->synced = w->at;
	return 0;
}

int vr_spool_copy(struct vr_spool_writer *w, unsigned disk, int fd, const uint8_t *bits,
		  uint64_t blocks)
{
	uint64_t b = 0;
	while (b < blocks) {
		if (!(bits[b / 8] >> (b % 8) & 1)) {
			b += b % 8 == 0 && bits[b / 8] == 0 ? 8 : 1;
			continue;
		}
		uint64_t first = b;
		while (b < blocks && b - first < VR_TX_MAX_RUN_BLOCKS && bits[b / 8] >> (b % 8) & 1)
			b++;
		uint32_t count = (uint32_t)(b - first);
		size_t len = (size_t)count * VR_TX_BLOCK;
		if (SPOOL_BUF - w->len < RUN_HEAD + len && flush(w))
			return VR_EIO;
		uint8_t *head = w->buf + w->len;
		int rc = pread_all(fd, head + RUN_HEAD, len, (off_t)(first * VR_TX_BLOCK), true);
		if (rc)
			return rc;
		memset(head, 0, RUN_HEAD);
		put(head, disk, 2);
		put(head + 4, count, 4);
		put(head + 8, first, 8);
		w->len += RUN_HEAD + len;
		w->runs++;
		w->blocks += count;
	}
	return 0;
}

static size_t header_encode(const struct vr_spool_info *info, uint8_t h[VR_SPOOL_HEADER])
{
	memset(h, 0, VR_SPOOL_HEADER);
	memcpy(h, VR_SPOOL_MAGIC, 8);
	memcpy(h + 8, info->instance, VR_TX_ID);
	put(h + 24, info->resume_token, 8);
	put(h + 32, (uint64_t)info->point_in_time_ms, 8);
	put(h + 40, info->ndisks, 4);
	put(h + 44, info->runs, 8);
	put(h + 52, info->blocks, 8);
	size_t at = 60;
	for (unsigned d = 0; d < info->ndisks; d++) {
		size_t klen = strlen(info->disks[d].key);
		h[at] = (uint8_t)klen;
		memcpy(h + at + 1, info->disks[d].key, klen);
		at += 1 + klen;
		put(h + at, info->disks[d].size, 8);
		put(h + at + 8, info->generation[d], 8);
		put(h + at + 16, info->seq[d], 8);
		at += 24;
	}
	return at;
}

/* The header's room: 60 + 64 x (1 + 255 + 24) + 32 > 4096 only for keys far
 * longer than device keys (10 digits), which vm.ini does not allow. */
int vr_spool_commit(struct vr_spool_writer *w, struct vr_spool_info *info)
{
	info->runs = w->runs;
	info->blocks = w->blocks;
	uint8_t h[VR_SPOOL_HEADER];
	size_t len = 60;
	for (unsigned d = 0; d < info->ndisks; d++)
		len += 25 + strlen(info->disks[d].key);
	int rc = flush(w) ? VR_EIO : VR_EINVAL;
	if (rc == VR_EINVAL && info->ndisks >= 1 && info->ndisks <= VR_VM_MAX_DISKS &&
	    len + SHA256_DIGEST_LENGTH <= VR_SPOOL_HEADER) {
		len = header_encode(info, h);
		SHA256(h, len, h + len);
		rc = pwrite_all(w->fd, h, sizeof h, 0);
	}
	/* A new file: fdatasync writes its size with its data. */
	if (!rc && fdatasync(w->fd) != 0)
		rc = VR_EIO;
	if (!rc && rename(w->tmp, w->path) != 0)
		rc = VR_EIO;
	if (rc) {
		vr_spool_abort(w);
		return rc;
	}
	close(w->fd);
	free(w->buf);
	free(w->path);
	free(w->tmp);
	free(w);
	return 0;
}

void vr_spool_abort(struct vr_spool_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp);
	free(w->buf);
	free(w->path);
	free(w->tmp);
	free(w);
}

static int header_decode(struct vr_spool_info *info, const uint8_t h[VR_SPOOL_HEADER])
{
	memset(info, 0, sizeof *info);
	if (memcmp(h, VR_SPOOL_MAGIC, 8) != 0)
		return VR_EINVAL;
	memcpy(info->instance, h + 8, VR_TX_ID);
	info->resume_token = get(h + 24, 8);
	info->point_in_time_ms = (int64_t)get(h + 32, 8);
	uint64_t ndisks = get(h + 40, 4);
	info->runs = get(h + 44, 8);
	info->blocks = get(h + 52, 8);
	if (ndisks < 1 || ndisks > VR_VM_MAX_DISKS)
		return VR_EINVAL;
	info->ndisks = (unsigned)ndisks;
	size_t at = 60;
	for (unsigned d = 0; d < info->ndisks; d++) {
		size_t klen = h[at];
		if (klen == 0 || at + 1 + klen + 24 + SHA256_DIGEST_LENGTH > VR_SPOOL_HEADER)
			return VR_EINVAL;
		memcpy(info->disks[d].key, h + at + 1, klen);
		info->disks[d].key[klen] = '\0';
		at += 1 + klen;
		info->disks[d].size = get(h + at, 8);
		info->generation[d] = get(h + at + 8, 8);
		info->seq[d] = get(h + at + 16, 8);
		at += 24;
	}
	uint8_t sum[SHA256_DIGEST_LENGTH];
	SHA256(h, at, sum);
	return memcmp(sum, h + at, sizeof sum) == 0 ? 0 : VR_EINVAL;
}

int vr_spool_open(struct vr_spool_reader **out, const char *path, struct vr_spool_info *info)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	uint8_t h[VR_SPOOL_HEADER];
	int rc = pread_all(fd, h, sizeof h, 0, false);
	if (!rc)
		rc = header_decode(info, h);
	off_t end = rc ? -1 : lseek(fd, 0, SEEK_END);
	if (!rc &&
	    end != (off_t)(VR_SPOOL_HEADER + info->runs * RUN_HEAD + info->blocks * VR_TX_BLOCK))
		rc = VR_EINVAL;
	if (rc) {
		close(fd);
		return rc;
	}
	struct vr_spool_reader *r = vr_calloc(1, sizeof *r);
	r->fd = fd;
	r->end = end;
	r->win = malloc(SPOOL_BUF);
	if (!r->win) {
		vr_spool_close(r);
		return VR_ENOMEM;
	}
	*out = r;
	return vr_spool_rewind(r);
}

/* Points *p at the len bytes at at, reading the next window from at when
 * the current one does not hold them. */
static int fetch(struct vr_spool_reader *r, off_t at, size_t len, const uint8_t **p)
{
	if (at < r->win_at || (size_t)(at - r->win_at) > r->win_len ||
	    len > r->win_len - (size_t)(at - r->win_at)) {
		size_t want = r->end - at < (off_t)SPOOL_BUF ? (size_t)(r->end - at) : SPOOL_BUF;
		r->win_len = 0;
		if (len > want)
			return VR_EINVAL;
		int rc = pread_all(r->fd, r->win, want, at, false);
		if (rc)
			return rc;
		r->win_at = at;
		r->win_len = want;
	}
	*p = r->win + (at - r->win_at);
	return 0;
}

int vr_spool_next(struct vr_spool_reader *r, unsigned *disk, uint64_t *first, uint32_t *count,
		  uint8_t *buf)
{
	if (r->at == r->end)
		return 0;
	const uint8_t *head, *data;
	if (fetch(r, r->at, RUN_HEAD, &head))
		return VR_EINVAL;
	*disk = (unsigned)get(head, 2);
	*count = (uint32_t)get(head + 4, 4);
	*first = get(head + 8, 8);
	if (*count == 0 || *count > VR_TX_MAX_RUN_BLOCKS)
		return VR_EINVAL;
	size_t len = (size_t)*count * VR_TX_BLOCK;
	int rc = fetch(r, r->at + RUN_HEAD, len, &data);
	if (rc)
		return rc;
	memcpy(buf, data, len);
	r->at += RUN_HEAD + (off_t)len;
	return 1;
}

int vr_spool_rewind(struct vr_spool_reader *r)
{
	r->at = VR_SPOOL_HEADER;
	r->win_len = 0;
	return r->end >= (off_t)VR_SPOOL_HEADER ? 0 : VR_EIO;
}

void vr_spool_close(struct vr_spool_reader *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r->win);
	free(r);
}
