/* The changed-block log: format in docs/changed-block-log.md. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"

struct vr_cbt_writer {
	int fd;
	uint64_t disk_size;
	uint64_t next_seq;
	/* The last extent this session appended: writes inside it add nothing. */
	uint64_t last_first, last_count;
};

/* ---- CRC-32C ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t vr_cbt_crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;

	pthread_once(&crc_once, crc_table_init);
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* ---- little-endian fields ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t blocks_of(uint64_t disk_size)
{
	return disk_size / VR_CBT_BLOCK_SIZE + (disk_size % VR_CBT_BLOCK_SIZE != 0);
}

/* ---- header and records ---- */

static void header_encode(uint8_t h[VR_CBT_HEADER_SIZE], uint64_t disk_size, uint64_t generation)
{
	memset(h, 0, VR_CBT_HEADER_SIZE);
	memcpy(h, VR_CBT_MAGIC, 8);
	put32(h + 8, VR_CBT_VERSION);
	put32(h + 12, VR_CBT_BLOCK_SIZE);
	put64(h + 16, disk_size);
	put64(h + 24, generation);
	put32(h + 60, vr_cbt_crc32c(h, 60));
}

static int header_decode(struct vr_cbt_map *map, const uint8_t h[VR_CBT_HEADER_SIZE])
{
	if (memcmp(h, VR_CBT_MAGIC, 8) != 0)
		return VR_EINVAL;
	if (get32(h + 60) != vr_cbt_crc32c(h, 60))
		return VR_EINVAL;
	if (get32(h + 8) != VR_CBT_VERSION || get32(h + 12) != VR_CBT_BLOCK_SIZE)
		return VR_EINVAL;
	for (int i = 32; i < 60; i++)
		if (h[i])
			return VR_EINVAL;
	map->block_size = VR_CBT_BLOCK_SIZE;
	map->disk_size = get64(h + 16);
	map->generation = get64(h + 24);
	map->blocks = blocks_of(map->disk_size);
	return 0;
}

static void record_encode(uint8_t r[VR_CBT_RECORD_SIZE], uint32_t type, uint32_t count,
			  uint64_t first, uint64_t seq)
{
	memset(r, 0, VR_CBT_RECORD_SIZE);
	put32(r, type);
	put32(r + 4, count);
	put64(r + 8, first);
	put64(r + 16, seq);
	put32(r + 28, vr_cbt_crc32c(r, 28));
}

/* Whether r is a well-formed record with sequence number seq. */
static bool record_valid(const uint8_t r[VR_CBT_RECORD_SIZE], uint64_t seq)
{
	if (get32(r + 28) != vr_cbt_crc32c(r, 28) || get64(r + 16) != seq || get32(r + 24) != 0)
		return false;
	uint32_t type = get32(r);
	return type >= VR_CBT_OPEN && type <= VR_CBT_UNCLEAN;
}

static void map_set_range(struct vr_cbt_map *map, uint64_t first, uint64_t count)
{
	for (uint64_t b = first; b < first + count; b++)
		map->bits[b / 8] |= (uint8_t)(1u << (b % 8));
}

static int read_full(int fd, void *buf, size_t len, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return VR_EIO;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Parse the log open on fd into map, merging the extents whose sequence
 * number is above after_seq; *valid_end_out gets the offset just past the
 * last valid record and *seq_out the next sequence number. */
/* Records read at once by parse_fd (64 KiB). */
#define CBT_READ_RECORDS 2048

static int parse_fd(struct vr_cbt_map *map, int fd, uint64_t after_seq, off_t *valid_end_out,
		    uint64_t *seq_out)
{
	uint8_t h[VR_CBT_HEADER_SIZE];
	size_t got;

	memset(map, 0, sizeof *map);
	if (lseek(fd, 0, SEEK_SET) < 0 || read_full(fd, h, sizeof h, &got))
		return VR_EIO;
	if (got < sizeof h)
		return VR_EINVAL;
	int rc = header_decode(map, h);
	if (rc)
		return rc;
	map->bits = calloc(map->blocks / 8 + 1, 1);
	/* the records, read CBT_READ_RECORDS at a time */
	uint8_t *buf = malloc(CBT_READ_RECORDS * VR_CBT_RECORD_SIZE);
	size_t have = 0, pos = 0;
	if (!map->bits || !buf) {
		free(buf);
		vr_cbt_map_release(map);
		return VR_ENOMEM;
	}

	bool open_session = false, unclean = false, unclean_since = false;
	uint64_t seq = 1;
	off_t end = VR_CBT_HEADER_SIZE;
	for (;;) {
		if (have - pos < VR_CBT_RECORD_SIZE) {
			memmove(buf, buf + pos, have - pos);
			have -= pos;
			pos = 0;
			if (read_full(fd, buf + have, CBT_READ_RECORDS * VR_CBT_RECORD_SIZE - have,
				      &got)) {
				rc = VR_EIO;
				goto fail;
			}
			have += got;
		}
		if (have == pos)
			break;
		const uint8_t *r = buf + pos;
		if (have - pos < VR_CBT_RECORD_SIZE || !record_valid(r, seq)) {
			map->torn = true;
			break;
		}
		pos += VR_CBT_RECORD_SIZE;
		uint32_t type = get32(r), count = get32(r + 4);
		uint64_t first = get64(r + 8);
		bool since = seq > after_seq, bad = false;
		if (type == VR_CBT_EXTENT) {
			if (count == 0 || first >= map->blocks || count > map->blocks - first) {
				rc = VR_EINVAL;
				goto fail;
			}
			if (since) {
				map_set_range(map, first, count);
				map->extents_since++;
			}
			bad = !open_session;
		} else if (type == VR_CBT_OPEN) {
			bad = open_session;
			open_session = true;
		} else if (type == VR_CBT_CLOSE) {
			open_session = false;
		} else {
			bad = true;
		}
		unclean |= bad;
		unclean_since |= bad && since;
		map->records++;
		seq++;
		end += VR_CBT_RECORD_SIZE;
	}
	map->clean = !unclean && !open_session && !map->torn;
	map->clean_since = !unclean_since && !map->torn && seq - 1 >= after_seq;
	map->in_session = open_session;
	map->last_seq = seq - 1;
	if (valid_end_out)
		*valid_end_out = end;
	if (seq_out)
		*seq_out = seq;
	free(buf);
	return 0;
fail:
	free(buf);
	vr_cbt_map_release(map);
	return rc;
}

int vr_cbt_read(struct vr_cbt_map *map, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		memset(map, 0, sizeof *map);
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	}
	int rc = parse_fd(map, fd, 0, NULL, NULL);
	close(fd);
	return rc;
}

int vr_cbt_read_since(struct vr_cbt_map *map, const char *path, uint64_t after_seq)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		memset(map, 0, sizeof *map);
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	}
	int rc = parse_fd(map, fd, after_seq, NULL, NULL);
	if (!rc && map->in_session) {
		/* An open session is a running writer only while its lock is held. */
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			map->writer_alive = false;
			flock(fd, LOCK_UN);
		} else {
			map->writer_alive = errno == EWOULDBLOCK;
		}
		if (!map->writer_alive)
			map->clean_since = false;
	}
	close(fd);
	return rc;
}

void vr_cbt_map_release(struct vr_cbt_map *map)
{
	if (!map)
		return;
	free(map->bits);
	map->bits = NULL;
}

bool vr_cbt_map_test(const struct vr_cbt_map *map, uint64_t block)
{
	return block < map->blocks && (map->bits[block / 8] >> (block % 8)) & 1;
}

uint64_t vr_cbt_map_count(const struct vr_cbt_map *map)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < map->blocks / 8 + 1; i++)
		n += (uint64_t)__builtin_popcount(map->bits[i]);
	return n;
}

bool vr_cbt_map_next_range(const struct vr_cbt_map *map, uint64_t *cursor, uint64_t *first_out,
			   uint64_t *count_out)
{
	uint64_t b = *cursor;
	while (b < map->blocks && !vr_cbt_map_test(map, b)) {
		if (b % 8 == 0 && map->bits[b / 8] == 0)
			b += 8;
		else
			b++;
	}
	if (b >= map->blocks) {
		*cursor = map->blocks;
		return false;
	}
	uint64_t first = b;
	while (b < map->blocks && vr_cbt_map_test(map, b))
		b++;
	*first_out = first;
	*count_out = b - first;
	*cursor = b;
	return true;
}

/* ---- creation and reset ---- */

static int fsync_dir_of(const char *path)
{
	char *copy = vr_strdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return VR_EIO;
	int rc = fsync(fd) == 0 ? 0 : VR_EIO;
	close(fd);
	return rc;
}

/* Write a header-only log to path.tmp and put it at path: replacing what is
 * there, or (replace false) only if nothing is, so that two writers creating
 * the log at once agree on one file. */
static int create_file(const char *path, uint64_t disk_size, uint64_t generation, bool replace)
{
	uint8_t h[VR_CBT_HEADER_SIZE];
	char *tmp = vr_asprintf("%s.tmp", path);
	int rc = VR_EIO;

	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto cleanup;
	header_encode(h, disk_size, generation);
	if (write_full(fd, h, sizeof h) || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		goto cleanup;
	}
	if (close(fd) != 0) {
		unlink(tmp);
		goto cleanup;
	}
	if (replace) {
		if (rename(tmp, path) != 0) {
			unlink(tmp);
			goto cleanup;
		}
	} else {
		int linked = link(tmp, path) == 0 || errno == EEXIST;
		unlink(tmp);
		if (!linked)
			goto cleanup;
	}
	rc = fsync_dir_of(path);
cleanup:
	free(tmp);
	return rc;
}

int vr_cbt_create(const char *path, uint64_t disk_size, uint64_t generation)
{
	return create_file(path, disk_size, generation, true);
}

int vr_cbt_reset(const char *path, uint64_t disk_size, uint64_t *generation_out)
{
	uint64_t generation = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return VR_EIO;
	if (fd >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			close(fd);
			return errno == EWOULDBLOCK ? VR_ECONFLICT : VR_EIO;
		}
		struct vr_cbt_map map;
		if (parse_fd(&map, fd, 0, NULL, NULL) == 0) {
			generation = map.generation + 1;
			vr_cbt_map_release(&map);
		}
	}
	/* The old file stays locked until the new one has replaced it, so no
	 * writer appends to a log that is being dropped. */
	int rc = vr_cbt_create(path, disk_size, generation);
	if (fd >= 0)
		close(fd);
	if (!rc && generation_out)
		*generation_out = generation;
	return rc;
}

int vr_cbt_reset_after(const char *path, uint64_t disk_size, uint64_t generation,
		       uint64_t after_seq, uint64_t *generation_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int busy = errno == EWOULDBLOCK;
		close(fd);
		return busy ? VR_ECONFLICT : VR_EIO;
	}
	struct vr_cbt_map map;
	int rc = parse_fd(&map, fd, after_seq, NULL, NULL);
	if (rc) {
		close(fd);
		return rc;
	}
	/* Nothing after after_seq may be lost: no extent, no mark of an
	 * unclean stop, no torn tail. A session still open is a dead writer's
	 * (the lock is ours): it wrote nothing after after_seq, since it
	 * recorded every write before making it. */
	bool safe = map.generation == generation && map.disk_size == disk_size &&
		    map.extents_since == 0 && map.clean_since;
	vr_cbt_map_release(&map);
	if (safe)
		rc = vr_cbt_create(path, disk_size, generation + 1);
	else
		rc = VR_ECONFLICT;
	close(fd);
	if (!rc && generation_out)
		*generation_out = generation + 1;
	return rc;
}

/* ---- writer ---- */

static int append(struct vr_cbt_writer *w, uint32_t type, uint32_t count, uint64_t first)
{
	uint8_t r[VR_CBT_RECORD_SIZE];
	record_encode(r, type, count, first, w->next_seq);
	if (write_full(w->fd, r, sizeof r))
		return VR_EIO;
	w->next_seq++;
	return 0;
}

/* Open and lock path; retry when a reset replaced the file meanwhile. */
static int open_locked(int *fd_out, const char *path)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int busy = errno == EWOULDBLOCK;
			close(fd);
			return busy ? VR_ECONFLICT : VR_EIO;
		}
		struct stat held, now;
		if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
	return VR_ECONFLICT;
}

int vr_cbt_writer_open(struct vr_cbt_writer **out, const char *path, uint64_t disk_size)
{
	int fd = -1;
	int rc = open_locked(&fd, path);
	if (rc == VR_ENOTFOUND) {
		rc = create_file(path, disk_size, 1, false);
		if (!rc)
			rc = open_locked(&fd, path);
	}
	if (rc)
		return rc;

	struct vr_cbt_map map;
	off_t end;
	uint64_t seq;
	rc = parse_fd(&map, fd, 0, &end, &seq);
	if (rc) {
		close(fd);
		return rc;
	}
	bool clean = map.clean, same_disk = map.disk_size == disk_size;
	vr_cbt_map_release(&map);
	if (!same_disk) {
		close(fd);
		return VR_ECONFLICT;
	}

	struct vr_cbt_writer *w = vr_calloc(1, sizeof *w);
	w->fd = fd;
	w->disk_size = disk_size;
	w->next_seq = seq;
	if (ftruncate(fd, end) != 0 || lseek(fd, end, SEEK_SET) != end) {
		rc = VR_EIO;
		goto fail;
	}
	/* The mark of an unfinished session must outlive the cut tail. */
	if (!clean && (append(w, VR_CBT_UNCLEAN, 0, 0) || fsync(fd) != 0)) {
		rc = VR_EIO;
		goto fail;
	}
	if (append(w, VR_CBT_OPEN, 0, 0) || fsync(fd) != 0) {
		rc = VR_EIO;
		goto fail;
	}
	*out = w;
	return 0;
fail:
	vr_cbt_writer_free(w);
	return rc;
}

int vr_cbt_writer_mark(struct vr_cbt_writer *w, uint64_t offset, uint64_t length)
{
	if (length == 0)
		return 0;
	if (offset > w->disk_size || length > w->disk_size - offset)
		return VR_EINVAL;
	uint64_t first = offset / VR_CBT_BLOCK_SIZE;
	uint64_t last = (offset + length - 1) / VR_CBT_BLOCK_SIZE;
	if (first >= w->last_first && last < w->last_first + w->last_count)
		return 0;
	for (uint64_t at = first; at <= last;) {
		uint64_t left = last - at + 1;
		uint32_t count = left > VR_CBT_RECORD_MAX_BLOCKS ? VR_CBT_RECORD_MAX_BLOCKS
								 : (uint32_t)left;
		int rc = append(w, VR_CBT_EXTENT, count, at);
		if (rc)
			return rc;
		at += count;
	}
	w->last_first = first;
	w->last_count = last - first + 1;
	return 0;
}

int vr_cbt_writer_close_clean(struct vr_cbt_writer *w)
{
	if (append(w, VR_CBT_CLOSE, 0, 0) || fsync(w->fd) != 0)
		return VR_EIO;
	return 0;
}

void vr_cbt_writer_free(struct vr_cbt_writer *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}
