/* Reading the replica out: group hashes for hash-compare transfers, and
 * the exports of recovery (copies of any retained instance, or a move of
 * the newest one) (docs/replica-store.md). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define CHUNK VR_TX_MAX_PAYLOAD

/* ---- group hashes ---- */

int vr_store_group_hash(struct vr_store *s, unsigned disk, uint64_t first, uint32_t count,
			uint8_t out[VR_TX_HASH])
{
	if (disk >= s->ndisks || count == 0)
		return st_fail(s, VR_EINVAL, "group hash: disk %u, %u blocks", disk, count);
	uint64_t blocks = s->disks[disk].size / VR_TX_BLOCK;
	if (first >= blocks || count > blocks - first)
		return st_fail(s, VR_EINVAL, "group hash: blocks %llu+%u of %llu",
			       (unsigned long long)first, count, (unsigned long long)blocks);
	if (s->flags & ST_MOVED_OUT)
		return st_fail(s, VR_ECONFLICT, "the replica disks were moved out");
	uint8_t *buf = malloc(CHUNK);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(s->paths[disk], O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = st_fail(s, VR_EIO, "group hash: out of memory");
		goto cleanup;
	}
	if (fd < 0) {
		rc = st_fail(s, VR_EIO, "%s: %s", s->paths[disk], strerror(errno));
		goto cleanup;
	}
	for (uint64_t b = first; b < first + count;) {
		uint64_t n = first + count - b;
		if (n > VR_TX_MAX_RUN_BLOCKS)
			n = VR_TX_MAX_RUN_BLOCKS;
		size_t len = (size_t)n * VR_TX_BLOCK, got;
		if (st_pread(fd, buf, len, b * VR_TX_BLOCK, &got)) {
			rc = st_fail(s, VR_EIO, "%s: %s", s->paths[disk], strerror(errno));
			goto cleanup;
		}
		memset(buf + got, 0, len - got); /* past the end reads as zeros */
		for (uint64_t i = 0; i < n; i++) {
			uint8_t leaf[VR_TX_HASH];
			vr_tx_leaf(b + i, buf + i * VR_TX_BLOCK, leaf);
			EVP_DigestUpdate(ctx, leaf, sizeof leaf);
		}
		b += n;
	}
	if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		rc = st_fail(s, VR_EIO, "group hash: digest failed");
cleanup:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

/* ---- copies ---- */

/* Copies [start, end) of src to the same place in dst: in the kernel when
 * it can, else through buf, skipping all-zero chunks. */
static int copy_range(int src, int dst, uint64_t start, uint64_t end, uint8_t *buf)
{
	uint64_t off = start;
	while (off < end) {
		loff_t in = (loff_t)off, out = (loff_t)off;
		size_t len = end - off < (UINT64_C(1) << 30) ? (size_t)(end - off)
							     : (size_t)1 << 30;
		ssize_t n = copy_file_range(src, &in, dst, &out, len, 0);
		if (n > 0) {
			off += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -1;
		break; /* not here, or the source ended early: copy by hand */
	}
	while (off < end) {
		size_t len = end - off < CHUNK ? (size_t)(end - off) : CHUNK, got;
		if (st_pread(src, buf, len, off, &got))
			return -1;
		memset(buf + got, 0, len - got);
		if (!st_zero(buf, len) && st_pwrite(dst, buf, len, off))
			return -1;
		off += len;
	}
	return 0;
}

/* A copy of src into dst (both open): a reflink when the file system can,
 * else the data extents only, so holes stay holes. */
static int copy_image(int src, int dst, uint64_t size, uint8_t *buf)
{
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	if (ftruncate(dst, 0) || ftruncate(dst, (off_t)size))
		return -1;
	uint64_t pos = 0;
	while (pos < size) {
		off_t data = lseek(src, (off_t)pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		uint64_t start = pos, end = size;
		if (data >= 0) {
			start = (uint64_t)data;
			off_t hole = lseek(src, data, SEEK_HOLE);
			end = hole < 0 ? size : (uint64_t)hole;
		} else if (errno != EINVAL) {
			return -1;
		}
		if (end > size)
			end = size;
		if (copy_range(src, dst, start, end, buf))
			return -1;
		pos = end;
	}
	return 0;
}

static char *dest_path(const char *dir, unsigned i, const char *suffix)
{
	return vr_asprintf("%s/disk-%u.img%s", dir, i, suffix);
}

static char **paths_list(const struct vr_store *s, const char *dest_dir)
{
	char **paths = vr_calloc(s->ndisks, sizeof *paths);
	for (unsigned i = 0; i < s->ndisks; i++)
		paths[i] = dest_path(dest_dir, i, "");
	return paths;
}

/* The newest instance copied, then the undo logs of every retained
 * instance from the newest's predecessor down to index applied. */
static int export_copy(struct vr_store *s, size_t index, const char *dest_dir)
{
	int src[VR_TX_MAX_DISKS], dst[VR_TX_MAX_DISKS];
	char *tmp[VR_TX_MAX_DISKS] = {0};
	uint8_t *buf = malloc(CHUNK);
	int rc = 0;
	for (unsigned i = 0; i < s->ndisks; i++)
		src[i] = dst[i] = -1;
	if (!buf) {
		rc = st_fail(s, VR_EIO, "export: out of memory");
		goto cleanup;
	}
	for (unsigned i = 0; i < s->ndisks; i++) {
		tmp[i] = dest_path(dest_dir, i, ".tmp");
		src[i] = open(s->paths[i], O_RDONLY | O_CLOEXEC);
		dst[i] = open(tmp[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (src[i] < 0 || dst[i] < 0 || copy_image(src[i], dst[i], s->disks[i].size, buf)) {
			rc = st_fail(s, VR_EIO, "export of %s to %s: %s", s->paths[i], tmp[i],
				     strerror(errno));
			goto cleanup;
		}
	}
	for (size_t j = s->ninst - 1; j-- > index;) {
		rc = st_undo_apply(s, &s->inst[j], dst);
		if (rc)
			goto cleanup;
	}
	for (unsigned i = 0; i < s->ndisks; i++) {
		char *final = dest_path(dest_dir, i, "");
		if (fsync(dst[i]) || rename(tmp[i], final)) {
			rc = st_fail(s, VR_EIO, "export to %s: %s", final, strerror(errno));
			free(final);
			goto cleanup;
		}
		free(final);
		free(tmp[i]);
		tmp[i] = NULL;
	}
	if (st_fsync_dir(dest_dir))
		rc = st_fail(s, VR_EIO, "%s: %s", dest_dir, strerror(errno));
cleanup:
	for (unsigned i = 0; i < s->ndisks; i++) {
		if (src[i] >= 0)
			close(src[i]);
		if (dst[i] >= 0)
			close(dst[i]);
		if (tmp[i])
			unlink(tmp[i]);
		free(tmp[i]);
	}
	if (rc)
		for (unsigned i = 0; i < s->ndisks; i++) {
			char *final = dest_path(dest_dir, i, "");
			unlink(final);
			free(final);
		}
	free(buf);
	return rc;
}

/* ---- moves ---- */

static size_t moved_encode(uint8_t *out, uint64_t seq, const char *dest_dir)
{
	size_t n = strlen(dest_dir);
	memcpy(out, ST_MOVED_MAGIC, 8);
	tx_put64(out + 8, seq);
	tx_put32(out + 16, (uint32_t)n);
	memcpy(out + 20, dest_dir, n);
	tx_sha256(out + 20 + n, out, 20 + n, NULL, 0, NULL, 0);
	return 20 + n + VR_TX_HASH;
}

#define MOVED_MAX (20 + 4096 + VR_TX_HASH)

/* The move recorded in the store's moved file: 0 with the destination
 * (caller frees) and instance, 1 when there is none, VR_EIO. */
static int moved_read(struct vr_store *s, char **dest_out, uint64_t *seq_out)
{
	char *path = st_path(s, ST_MOVED);
	uint8_t buf[MOVED_MAX + 1], h[VR_TX_HASH];
	size_t got = 0;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 1 : st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (st_pread(fd, buf, sizeof buf, 0, &got)) {
		rc = st_fail(s, VR_EIO, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	size_t n = got >= 20 ? tx_get32(buf + 16) : 0;
	if (got < 20 + VR_TX_HASH || memcmp(buf, ST_MOVED_MAGIC, 8) || n == 0 || n > 4096 ||
	    got != 20 + n + VR_TX_HASH) {
		rc = st_fail(s, VR_EIO, "%s is corrupt", path);
		goto cleanup;
	}
	tx_sha256(h, buf, 20 + n, NULL, 0, NULL, 0);
	if (memcmp(h, buf + 20 + n, VR_TX_HASH) || memchr(buf + 20, 0, n)) {
		rc = st_fail(s, VR_EIO, "%s is corrupt", path);
		goto cleanup;
	}
	*seq_out = tx_get64(buf + 8);
	*dest_out = vr_strndup((const char *)buf + 20, n);
cleanup:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Moves every image still in the store to dest_dir (a rename, or a copy
 * when dest_dir is on another file system), then records that the store
 * holds none: every instance's data has left with them. Repeating it after
 * a crash finishes what is left. */
static int move_images(struct vr_store *s, const char *dest_dir)
{
	uint8_t *buf = NULL;
	int rc = 0;
	for (unsigned i = 0; i < s->ndisks && !rc; i++) {
		char *final = dest_path(dest_dir, i, ""), *tmp = dest_path(dest_dir, i, ".tmp");
		int src = -1, dst = -1;
		if (access(s->paths[i], F_OK) && errno == ENOENT)
			goto next; /* moved before a crash */
		if (rename(s->paths[i], final) == 0)
			goto next;
		if (errno != EXDEV) {
			rc = st_fail(s, VR_EIO, "move of %s to %s: %s", s->paths[i], final,
				     strerror(errno));
			goto next;
		}
		if (!buf && !(buf = malloc(CHUNK))) {
			rc = st_fail(s, VR_EIO, "move: out of memory");
			goto next;
		}
		src = open(s->paths[i], O_RDONLY | O_CLOEXEC);
		dst = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (src < 0 || dst < 0 || copy_image(src, dst, s->disks[i].size, buf) ||
		    fsync(dst) || rename(tmp, final) || st_fsync_dir(dest_dir) ||
		    unlink(s->paths[i])) {
			rc = st_fail(s, VR_EIO, "move of %s to %s: %s", s->paths[i], final,
				     strerror(errno));
			unlink(tmp);
		}
next:
		if (src >= 0)
			close(src);
		if (dst >= 0)
			close(dst);
		free(final);
		free(tmp);
	}
	free(buf);
	if (rc)
		return rc;
	if (st_fsync_dir(dest_dir) || st_fsync_dir(s->dir))
		return st_fail(s, VR_EIO, "move: %s", strerror(errno));
	uint32_t flags = s->flags;
	uint64_t base = s->base_seq;
	s->flags |= ST_MOVED_OUT;
	s->base_seq = 0;
	bool *was = vr_calloc(s->ninst ? s->ninst : 1, sizeof *was);
	for (size_t i = 0; i < s->ninst; i++) {
		was[i] = s->inst[i].available;
		s->inst[i].available = false;
	}
	rc = st_journal_write(s);
	if (!rc)
		rc = st_sweep(s); /* the undo logs describe images that left */
	else {
		s->flags = flags;
		s->base_seq = base;
		for (size_t i = 0; i < s->ninst; i++)
			s->inst[i].available = was[i];
	}
	free(was);
	return rc;
}

int st_move_recover(struct vr_store *s)
{
	char *dest = NULL;
	uint64_t seq;
	int rc = moved_read(s, &dest, &seq);
	if (rc == 1)
		return 0;
	if (!rc && !(s->flags & ST_MOVED_OUT))
		rc = move_images(s, dest);
	free(dest);
	return rc;
}

static int export_move(struct vr_store *s, size_t index, const char *dest_dir)
{
	uint8_t buf[MOVED_MAX];
	size_t n = strlen(dest_dir);
	if (n > 4096)
		return st_fail(s, VR_EINVAL, "destination path too long");
	n = moved_encode(buf, s->inst[index].seq, dest_dir);
	if (st_write_atomic(s->dir, ST_MOVED, buf, n))
		return st_fail(s, VR_EIO, "%s/%s: %s", s->dir, ST_MOVED, strerror(errno));
	return move_images(s, dest_dir);
}

/* The export once dest_dir exists, by its absolute path (what a move
 * records and what the caller gets back). */
static int export_to(struct vr_store *s, size_t index, const char *dir,
		     enum vr_store_export_mode mode, char ***paths_out)
{
	if (s->flags & ST_MOVED_OUT) {
		/* A repeated move to the same place (a retried job) succeeds. */
		char *dest = NULL;
		uint64_t seq = 0;
		int rc = moved_read(s, &dest, &seq);
		bool same = !rc && mode == VR_STORE_MOVE && seq == s->inst[index].seq &&
			    !strcmp(dest, dir);
		free(dest);
		if (!same)
			return st_fail(s, VR_ECONFLICT, "the replica disks were moved out");
		if (paths_out)
			*paths_out = paths_list(s, dir);
		return 0;
	}
	for (unsigned i = 0; i < s->ndisks; i++) {
		char *p = dest_path(dir, i, "");
		bool exists = access(p, F_OK) == 0;
		free(p);
		if (exists)
			return st_fail(s, VR_EEXIST, "%s already holds disk images", dir);
	}
	int rc = mode == VR_STORE_MOVE ? export_move(s, index, dir) : export_copy(s, index, dir);
	if (!rc && paths_out)
		*paths_out = paths_list(s, dir);
	return rc;
}

int vr_store_export(struct vr_store *s, const char *instance_id, const char *dest_dir,
		    enum vr_store_export_mode mode, char ***paths_out)
{
	if (paths_out)
		*paths_out = NULL;
	if (!dest_dir || !*dest_dir || (mode != VR_STORE_COPY && mode != VR_STORE_MOVE))
		return st_fail(s, VR_EINVAL, "export: bad destination or mode");
	ssize_t index = instance_id ? st_find(s, instance_id) : (ssize_t)s->ninst - 1;
	if (index < 0)
		return st_fail(s, VR_ENOTFOUND, "no instance %s",
			       instance_id ? instance_id : "committed yet");
	if (mode == VR_STORE_MOVE && (size_t)index + 1 != s->ninst)
		return st_fail(s, VR_EINVAL, "only the newest instance can be moved out");
	if (!(s->flags & ST_MOVED_OUT) && !s->inst[index].available)
		return st_fail(s, VR_ECONFLICT, "instance %s left with moved replica disks",
			       s->inst[index].id);
	if (st_mkdir_p(dest_dir))
		return st_fail(s, VR_EIO, "%s: %s", dest_dir, strerror(errno));
	char *dir = realpath(dest_dir, NULL);
	if (!dir)
		return st_fail(s, VR_EIO, "%s: %s", dest_dir, strerror(errno));
	int rc = export_to(s, (size_t)index, dir, mode, paths_out);
	free(dir);
	return rc;
}
