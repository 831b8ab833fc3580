/* The replica store: a replication's directory, its lock, the manifest of
 * its disks, the instance journal, recovery on open, pinning and dropping
 * (docs/replica-store.md); the file helpers are in file.c, the journal and
 * the calls over instances in journal.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define CREATE_LOCK_TIMEOUT_MS 30000u


/* ---- the manifest of the disks ---- */

static bool key_valid(const char *key)
{
	size_t n = strnlen(key, VR_TX_MAX_KEY + 1);
	if (n == 0 || n > VR_TX_MAX_KEY)
		return false;
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return false;
	return true;
}

static int disks_check(const struct vr_store_disk *disks, unsigned ndisks, char *msg, size_t len)
{
	if (ndisks < 1 || ndisks > VR_TX_MAX_DISKS) {
		snprintf(msg, len, "%u disks (1 to %d)", ndisks, VR_TX_MAX_DISKS);
		return VR_EINVAL;
	}
	for (unsigned i = 0; i < ndisks; i++) {
		if (!key_valid(disks[i].key)) {
			snprintf(msg, len, "disk %u: bad device key", i);
			return VR_EINVAL;
		}
		if (disks[i].size == 0 || disks[i].size % VR_TX_BLOCK ||
		    disks[i].size > VR_TX_MAX_DISK_BYTES) {
			snprintf(msg, len, "disk %u: size %llu", i,
				 (unsigned long long)disks[i].size);
			return VR_EINVAL;
		}
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(disks[i].key, disks[j].key)) {
				snprintf(msg, len, "disk %u: device key %s twice", i, disks[i].key);
				return VR_EINVAL;
			}
	}
	return 0;
}

static size_t manifest_encode(uint8_t *out, const char *replication,
			      const struct vr_store_disk *disks, unsigned ndisks)
{
	memset(out, 0, 56);
	memcpy(out, ST_MANIFEST_MAGIC, 8);
	tx_put32(out + 8, ndisks);
	memcpy(out + 16, replication, VR_UUID_LEN);
	size_t n = 56;
	for (unsigned i = 0; i < ndisks; i++) {
		size_t kl = strlen(disks[i].key);
		out[n++] = (uint8_t)kl;
		memcpy(out + n, disks[i].key, kl);
		n += kl;
		tx_put64(out + n, disks[i].size);
		n += 8;
	}
	tx_sha256(out + n, out, n, NULL, 0, NULL, 0);
	return n + VR_TX_HASH;
}

#define MANIFEST_MAX (56 + VR_TX_MAX_DISKS * (1 + VR_TX_MAX_KEY + 8) + VR_TX_HASH)

static int manifest_decode(const uint8_t *p, size_t len, const char *replication,
			   struct vr_store_disk **disks_out, unsigned *ndisks_out)
{
	uint8_t h[VR_TX_HASH];
	if (len < 56 + VR_TX_HASH || memcmp(p, ST_MANIFEST_MAGIC, 8))
		return VR_EIO;
	tx_sha256(h, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
	if (memcmp(h, p + len - VR_TX_HASH, VR_TX_HASH))
		return VR_EIO;
	if (memcmp(p + 16, replication, VR_UUID_LEN))
		return VR_EIO;
	unsigned nd = tx_get32(p + 8);
	if (nd < 1 || nd > VR_TX_MAX_DISKS)
		return VR_EIO;
	struct vr_store_disk *disks = vr_calloc(nd, sizeof *disks);
	size_t off = 56, end = len - VR_TX_HASH;
	for (unsigned i = 0; i < nd; i++) {
		if (off >= end || end - off < (size_t)p[off] + 9) {
			free(disks);
			return VR_EIO;
		}
		size_t kl = p[off++];
		memcpy(disks[i].key, p + off, kl);
		off += kl;
		disks[i].size = tx_get64(p + off);
		off += 8;
	}
	char msg[64];
	if (off != end || disks_check(disks, nd, msg, sizeof msg)) {
		free(disks);
		return VR_EIO;
	}
	*disks_out = disks;
	*ndisks_out = nd;
	return 0;
}

/* ---- locking ---- */

static int lock_dir(const char *dir, unsigned timeout_ms, int *fd_out)
{
	char *path = vr_asprintf("%s/%s", dir, ST_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			close(fd);
			return VR_EIO;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t waited = (int64_t)(now.tv_sec - start.tv_sec) * 1000 +
				 (now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited >= (int64_t)timeout_ms) {
			close(fd);
			return VR_ECONFLICT;
		}
		usleep(5000);
	}
	*fd_out = fd;
	return 0;
}

/* ---- create ---- */

static int set_error(char **error_out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(char **error_out, int err, const char *fmt, ...)
{
	if (error_out) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		free(*error_out);
		*error_out = vr_strdup(buf);
	}
	return err;
}

int st_mkdir_p(const char *path)
{
	char *copy = vr_strdup(path);
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(copy, 0755) && errno != EEXIST) {
			free(copy);
			return -1;
		}
		*p = '/';
	}
	int rc = mkdir(copy, 0755) && errno != EEXIST ? -1 : 0;
	free(copy);
	return rc;
}

/* A new empty (sparse) image of size bytes, replacing any file there. */
static int image_create(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) || fsync(fd)) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

static struct vr_store *store_new(const char *root, const char *replication)
{
	struct vr_store *s = vr_calloc(1, sizeof *s);
	s->lock_fd = -1;
	s->stage.fd = -1;
	for (unsigned i = 0; i < VR_TX_MAX_DISKS; i++)
		s->stage.img[i] = -1;
	memcpy(s->replication, replication, VR_UUID_LEN + 1);
	vr_tx_id_parse(s->replication_id, replication);
	s->dir = vr_asprintf("%s/%s", root, replication);
	return s;
}

static void set_paths(struct vr_store *s)
{
	s->paths = vr_calloc(s->ndisks, sizeof *s->paths);
	for (unsigned i = 0; i < s->ndisks; i++)
		s->paths[i] = vr_asprintf("%s/disk-%u.img", s->dir, i);
}

/* Removes every file of a replication's directory but its lock. */
static int clear_dir(const char *dir, char **error_out)
{
	DIR *d = opendir(dir);
	if (!d)
		return set_error(error_out, VR_EIO, "%s: %s", dir, strerror(errno));
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ST_LOCK))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) && errno != ENOENT) {
			rc = set_error(error_out, VR_EIO, "%s/%s: %s", dir, e->d_name,
				       strerror(errno));
			break;
		}
	}
	closedir(d);
	return rc;
}

static int create_locked(struct vr_store *s, const struct vr_store_disk *disks, unsigned ndisks,
			 char **error_out)
{
	char *mpath = st_path(s, ST_MANIFEST);
	uint8_t *old;
	size_t oldlen;
	int rc = 0;
	if (st_read_file(mpath, &old, &oldlen, MANIFEST_MAX) == 0) {
		struct vr_store_disk *have;
		unsigned nhave;
		rc = manifest_decode(old, oldlen, s->replication, &have, &nhave);
		free(old);
		if (rc) {
			rc = set_error(error_out, VR_EIO, "%s is corrupt", mpath);
			goto cleanup;
		}
		bool same = nhave == ndisks;
		for (unsigned i = 0; same && i < ndisks; i++)
			same = !strcmp(have[i].key, disks[i].key) && have[i].size == disks[i].size;
		free(have);
		if (!same) {
			rc = set_error(error_out, VR_ECONFLICT,
				       "replication %s exists with other disks", s->replication);
			goto cleanup;
		}
		s->disks = vr_calloc(ndisks, sizeof *s->disks);
		memcpy(s->disks, disks, ndisks * sizeof *disks);
		s->ndisks = ndisks;
		set_paths(s);
		if (st_journal_read(s)) {
			rc = set_error(error_out, VR_EIO, "%s", s->msg);
			goto cleanup;
		}
		if (!(s->flags & ST_MOVED_OUT))
			goto cleanup;
		/* After a MOVE: new empty images; the records stay. */
		for (unsigned i = 0; i < ndisks; i++)
			if (image_create(s->paths[i], disks[i].size)) {
				rc = set_error(error_out, VR_EIO, "%s: %s", s->paths[i],
					       strerror(errno));
				goto cleanup;
			}
		s->flags &= ~ST_MOVED_OUT;
		s->base_seq = 0;
		char *moved = st_path(s, ST_MOVED);
		if (st_journal_write(s))
			rc = set_error(error_out, VR_EIO, "%s", s->msg);
		else if ((unlink(moved) && errno != ENOENT) || st_fsync_dir(s->dir))
			rc = set_error(error_out, VR_EIO, "%s: %s", moved, strerror(errno));
		free(moved);
		goto cleanup;
	}
	if (errno != ENOENT) {
		rc = set_error(error_out, VR_EIO, "%s: %s", mpath, strerror(errno));
		goto cleanup;
	}
	/* New: images and an empty journal first; the manifest makes it exist.
	 * Whatever a removal cut short left behind goes first. */
	rc = clear_dir(s->dir, error_out);
	if (rc)
		goto cleanup;
	s->disks = vr_calloc(ndisks, sizeof *s->disks);
	memcpy(s->disks, disks, ndisks * sizeof *disks);
	s->ndisks = ndisks;
	set_paths(s);
	for (unsigned i = 0; i < ndisks; i++)
		if (image_create(s->paths[i], disks[i].size)) {
			rc = set_error(error_out, VR_EIO, "%s: %s", s->paths[i], strerror(errno));
			goto cleanup;
		}
	s->next_seq = 1;
	if (st_journal_write(s)) {
		rc = set_error(error_out, VR_EIO, "%s", s->msg);
		goto cleanup;
	}
	uint8_t buf[MANIFEST_MAX];
	size_t len = manifest_encode(buf, s->replication, disks, ndisks);
	if (st_write_atomic(s->dir, ST_MANIFEST, buf, len))
		rc = set_error(error_out, VR_EIO, "%s: %s", mpath, strerror(errno));
cleanup:
	free(mpath);
	return rc;
}

/* 1 when the store exists with these disks and its images, VR_ECONFLICT
 * when it exists with others, else 0 (the manifest and the journal are
 * replaced atomically, so they read whole without the lock). */
static int already_created(struct vr_store *s, const struct vr_store_disk *disks, unsigned ndisks)
{
	char *mpath = st_path(s, ST_MANIFEST);
	uint8_t *m;
	size_t mlen;
	int rc = st_read_file(mpath, &m, &mlen, MANIFEST_MAX);
	free(mpath);
	if (rc)
		return 0;
	struct vr_store_disk *have;
	unsigned nhave;
	rc = manifest_decode(m, mlen, s->replication, &have, &nhave);
	free(m);
	if (rc)
		return 0;
	bool same = nhave == ndisks;
	for (unsigned i = 0; same && i < ndisks; i++)
		same = !strcmp(have[i].key, disks[i].key) && have[i].size == disks[i].size;
	free(have);
	if (!same)
		return VR_ECONFLICT;
	if (st_journal_read(s))
		return 0;
	same = !(s->flags & ST_MOVED_OUT);
	free(s->inst);
	s->inst = NULL;
	s->ninst = s->cap = 0;
	return same ? 1 : 0;
}

int vr_store_create(const char *root, const char *replication, const struct vr_store_disk *disks,
		    unsigned ndisks, char **error_out)
{
	char canon[VR_UUID_LEN + 1], msg[128];
	if (error_out)
		*error_out = NULL;
	if (!root || !*root || !replication || vr_uuid_canon(canon, replication))
		return set_error(error_out, VR_EINVAL, "bad replication id");
	if (!disks || disks_check(disks, ndisks, msg, sizeof msg))
		return set_error(error_out, VR_EINVAL, "%s", disks ? msg : "no disks");
	struct vr_store *s = store_new(root, canon);
	int rc;
	if (st_mkdir_p(s->dir) || st_fsync_dir(root)) {
		rc = set_error(error_out, VR_EIO, "%s: %s", s->dir, strerror(errno));
		goto cleanup;
	}
	rc = already_created(s, disks, ndisks);
	if (rc) {
		/* Nothing to do: no need to wait for a transfer's lock. */
		if (rc < 0)
			set_error(error_out, rc, "replication %s exists with other disks",
				  s->replication);
		else
			rc = 0;
		goto cleanup;
	}
	rc = lock_dir(s->dir, CREATE_LOCK_TIMEOUT_MS, &s->lock_fd);
	if (rc) {
		rc = set_error(error_out, rc == VR_ECONFLICT ? VR_EIO : rc, "%s: cannot lock: %s",
			       s->dir,
			       rc == VR_ECONFLICT ? "held by another process" : strerror(errno));
		goto cleanup;
	}
	rc = create_locked(s, disks, ndisks, error_out);
cleanup:
	vr_store_close(s);
	return rc;
}

/* ---- open, recovery, close ---- */

static bool retained_undo(const struct vr_store *s, uint64_t seq)
{
	/* Every retained instance but the newest has one, while its data is here. */
	for (size_t i = 0; i + 1 < s->ninst; i++)
		if (s->inst[i].seq == seq)
			return s->inst[i].available;
	return false;
}

/* Remove what no committed state refers to: temporary files, undo logs of
 * instances no longer retained (a drop or a commit cut short). */
int st_sweep(struct vr_store *s)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return st_fail(s, VR_EIO, "%s: %s", s->dir, strerror(errno));
	bool removed = false;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		size_t n = strlen(name);
		bool drop = false;
		unsigned long long seq;
		char tail;
		if (n > 4 && !strcmp(name + n - 4, ".tmp"))
			drop = true;
		else if (sscanf(name, "undo-%llu.lo%c", &seq, &tail) == 2 && tail == 'g')
			drop = !retained_undo(s, seq);
		if (!drop)
			continue;
		if (unlinkat(dirfd(d), name, 0) && errno != ENOENT) {
			rc = st_fail(s, VR_EIO, "%s/%s: %s", s->dir, name, strerror(errno));
			break;
		}
		removed = true;
	}
	closedir(d);
	if (!rc && removed && st_fsync_dir(s->dir))
		rc = st_fail(s, VR_EIO, "%s: %s", s->dir, strerror(errno));
	return rc;
}

static int recover(struct vr_store *s)
{
	char *marker = st_path(s, ST_COMMIT);
	int rc = 0;
	if (access(marker, F_OK) == 0)
		rc = st_commit_recover(s);
	else if (errno != ENOENT)
		rc = st_fail(s, VR_EIO, "%s: %s", marker, strerror(errno));
	free(marker);
	if (!rc)
		rc = st_move_recover(s);
	if (!rc)
		rc = st_sweep(s);
	if (rc || (s->flags & ST_MOVED_OUT))
		return rc;
	for (unsigned i = 0; i < s->ndisks; i++) {
		struct stat st;
		if (stat(s->paths[i], &st))
			return st_fail(s, VR_EIO, "replica image %s: %s", s->paths[i],
				       strerror(errno));
		if ((uint64_t)st.st_size != s->disks[i].size)
			return st_fail(s, VR_EIO, "replica image %s: %llu bytes, not %llu",
				       s->paths[i], (unsigned long long)st.st_size,
				       (unsigned long long)s->disks[i].size);
	}
	return 0;
}

int vr_store_open(struct vr_store **out, const char *root, const char *replication,
		  unsigned lock_timeout_ms, char **error_out)
{
	char canon[VR_UUID_LEN + 1];
	*out = NULL;
	if (error_out)
		*error_out = NULL;
	if (!root || !replication || vr_uuid_canon(canon, replication))
		return set_error(error_out, VR_ENOTFOUND, "bad replication id");
	struct vr_store *s = store_new(root, canon);
	struct stat st;
	int rc;
	if (stat(s->dir, &st)) {
		rc = set_error(error_out, errno == ENOENT ? VR_ENOTFOUND : VR_EIO, "%s: %s", s->dir,
			       strerror(errno));
		goto fail;
	}
	rc = lock_dir(s->dir, lock_timeout_ms, &s->lock_fd);
	if (rc) {
		set_error(error_out, rc, "%s: %s", s->dir,
			  rc == VR_ECONFLICT ? "locked by another process" : "cannot lock");
		goto fail;
	}
	char *mpath = st_path(s, ST_MANIFEST);
	uint8_t *m;
	size_t mlen;
	if (st_read_file(mpath, &m, &mlen, MANIFEST_MAX)) {
		rc = set_error(error_out, errno == ENOENT ? VR_ENOTFOUND : VR_EIO, "%s: %s", mpath,
			       strerror(errno));
		free(mpath);
		goto fail;
	}
	rc = manifest_decode(m, mlen, s->replication, &s->disks, &s->ndisks);
	free(m);
	if (rc) {
		set_error(error_out, rc, "%s is corrupt", mpath);
		free(mpath);
		goto fail;
	}
	free(mpath);
	set_paths(s);
	rc = st_journal_read(s);
	if (!rc)
		rc = recover(s);
	if (rc) {
		set_error(error_out, rc, "%s", s->msg);
		goto fail;
	}
	s->msg[0] = 0;
	*out = s;
	return 0;
fail:
	vr_store_close(s);
	return rc;
}

void vr_store_close(struct vr_store *s)
{
	if (!s)
		return;
	st_stage_close(s);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->paths)
		for (unsigned i = 0; i < s->ndisks; i++)
			free(s->paths[i]);
	free(s->paths);
	free(s->disks);
	free(s->inst);
	free(s->dir);
	free(s);
}

const char *vr_store_message(const struct vr_store *s)
{
	return s->msg[0] ? s->msg : "ok";
}

unsigned vr_store_ndisks(const struct vr_store *s)
{
	return s->ndisks;
}

const struct vr_store_disk *vr_store_disk(const struct vr_store *s, unsigned index)
{
	return index < s->ndisks ? &s->disks[index] : NULL;
}

const char *vr_store_disk_path(const struct vr_store *s, unsigned index)
{
	return index < s->ndisks ? s->paths[index] : NULL;
}

/* ---- remove ---- */

int vr_store_remove(const char *root, const char *replication, char **error_out)
{
	char canon[VR_UUID_LEN + 1];
	if (error_out)
		*error_out = NULL;
	if (!root || !replication || vr_uuid_canon(canon, replication))
		return set_error(error_out, VR_EINVAL, "bad replication id");
	char *dir = vr_asprintf("%s/%s", root, canon);
	int lock_fd = -1, rc = lock_dir(dir, 0, &lock_fd);
	if (rc == VR_ENOTFOUND) {
		free(dir);
		return 0;
	}
	if (rc) {
		rc = set_error(error_out, rc == VR_ECONFLICT ? VR_ECONFLICT : VR_EIO, "%s: %s", dir,
			       rc == VR_ECONFLICT ? "locked by another process" : "cannot lock");
		free(dir);
		return rc;
	}
	/* The manifest first: a removal cut short leaves a store that does not
	 * open (VR_ENOTFOUND) and that the next removal finishes. */
	char *mpath = vr_asprintf("%s/%s", dir, ST_MANIFEST);
	if ((unlink(mpath) && errno != ENOENT) || st_fsync_dir(dir)) {
		rc = set_error(error_out, VR_EIO, "%s: %s", mpath, strerror(errno));
		goto cleanup;
	}
	rc = clear_dir(dir, error_out);
	if (rc)
		goto cleanup;
	char *lpath = vr_asprintf("%s/%s", dir, ST_LOCK);
	unlink(lpath);
	free(lpath);
	if (rmdir(dir) && errno != ENOENT)
		rc = set_error(error_out, VR_EIO, "%s: %s", dir, strerror(errno));
	else if (st_fsync_dir(root))
		rc = set_error(error_out, VR_EIO, "%s: %s", root, strerror(errno));
cleanup:
	free(mpath);
	close(lock_fd);
	free(dir);
	return rc;
}
