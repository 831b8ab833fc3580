/* The replica store's file helpers: errors, whole reads and writes,
 * atomic replacement, directory syncs and paths (docs/replica-store.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"


/* ---- helpers ---- */

int st_fail(struct vr_store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof s->msg, fmt, ap);
	va_end(ap);
	return err;
}

int st_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int st_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n =
			pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int st_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
	while (iovcnt > 0) {
		ssize_t n = pwritev(fd, iov, iovcnt, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)n;
		for (size_t left = (size_t)n; left;) {
			size_t take = left < iov->iov_len ? left : iov->iov_len;
			iov->iov_base = (uint8_t *)iov->iov_base + take;
			iov->iov_len -= take;
			left -= take;
			if (!iov->iov_len) {
				iov++;
				iovcnt--;
			}
		}
		while (iovcnt > 0 && !iov->iov_len) {
			iov++;
			iovcnt--;
		}
	}
	return 0;
}

int st_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int st_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
	char *tmp = vr_asprintf("%s/%s.tmp", dir, name);
	char *final = vr_asprintf("%s/%s", dir, name);
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto cleanup;
	if (st_pwrite(fd, data, len, 0) || fsync(fd)) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto cleanup;
	}
	close(fd);
	if (rename(tmp, final)) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		goto cleanup;
	}
	rc = st_fsync_dir(dir);
cleanup:
	free(tmp);
	free(final);
	return rc;
}

char *st_path(const struct vr_store *s, const char *name)
{
	return vr_asprintf("%s/%s", s->dir, name);
}

char *st_undo_name(uint64_t seq)
{
	return vr_asprintf("undo-%llu.log", (unsigned long long)seq);
}

bool st_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zeros[256];
	while (len) {
		size_t n = len < sizeof zeros ? len : sizeof zeros;
		if (memcmp(p, zeros, n))
			return false;
		p += n;
		len -= n;
	}
	return true;
}

int64_t st_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int st_read_file(const char *path, uint8_t **out, size_t *len, size_t max)
{
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) || (uint64_t)st.st_size > max) {
		if (!errno)
			errno = EFBIG;
		close(fd);
		return -1;
	}
	size_t n = (size_t)st.st_size, got;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf || st_pread(fd, buf, n, 0, &got) || got != n) {
		free(buf);
		close(fd);
		errno = errno ? errno : EIO;
		return -1;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}
