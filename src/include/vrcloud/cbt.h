/* The changed-block log kept beside a raw disk image (docs/changed-block-log.md):
 * a header and append-only, CRC-protected records of changed 4 KiB block
 * ranges, read back into a bitmap of changed blocks; plus the disk writer of
 * vrcloud-io, which records every write it makes. */
#ifndef VRCLOUD_CBT_H
#define VRCLOUD_CBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VR_CBT_MAGIC	   "VRCBTLOG"
#define VR_CBT_VERSION	   1u
#define VR_CBT_BLOCK_SIZE  4096u
#define VR_CBT_HEADER_SIZE 64u
#define VR_CBT_RECORD_SIZE 32u
/* Most blocks one record covers; longer ranges take several records. */
#define VR_CBT_RECORD_MAX_BLOCKS 0xffffffffu

enum vr_cbt_record_type {
	VR_CBT_OPEN = 1,    /* a writer started */
	VR_CBT_EXTENT = 2,  /* blocks [first, first + count) changed */
	VR_CBT_CLOSE = 3,   /* the writer synced the disk and stopped cleanly */
	VR_CBT_UNCLEAN = 4, /* a writer found the previous session unfinished */
};

/* CRC-32C (Castagnoli, reflected, initial value and final xor 0xffffffff). */
uint32_t vr_cbt_crc32c(const void *data, size_t len);

/* The changed blocks of one log, merged. */
struct vr_cbt_map {
	uint64_t disk_size;
	uint32_t block_size;
	uint64_t generation;
	uint64_t blocks;  /* blocks of the disk: ceil(disk_size / block_size) */
	uint64_t records; /* valid records read */
	bool clean;	  /* every writer closed cleanly, nothing torn */
	bool torn;	  /* a torn or corrupt tail was found and ignored */
	uint8_t *bits;	  /* bit b of bits[b / 8] (LSB first) = block b changed */
	/* What vr_cbt_read_since adds (vr_cbt_read reads "since 0"). */
	uint64_t last_seq;	/* sequence number of the last valid record, 0: none */
	uint64_t extents_since; /* EXTENT records merged */
	bool clean_since;	/* nothing after the given sequence number makes the changed
				 * set untrustworthy: no UNCLEAN, no OPEN inside a session, no
				 * extent outside one, no torn tail, the log reaches that far,
				 * and a session still open belongs to a writer holding the lock */
	bool in_session;	/* the last session has no CLOSE yet */
	bool writer_alive;	/* in_session and a writer holds the lock now */
};

/* Read the log at path and merge its extents into map (fresh; release it with
 * vr_cbt_map_release). A torn or corrupt tail is ignored (map->torn, and the
 * log counts as unclean). Returns 0, VR_ENOTFOUND (no file), VR_EINVAL (bad
 * magic, version, header CRC or an extent past the disk's end), VR_EIO. */
int vr_cbt_read(struct vr_cbt_map *map, const char *path);
/* Read the log at path like vr_cbt_read, merging only the EXTENT records
 * whose sequence number is above after_seq: the blocks changed since a reader
 * last looked at record after_seq of the same generation. A writer that holds
 * the log for days does not hinder it. Returns as vr_cbt_read. */
int vr_cbt_read_since(struct vr_cbt_map *map, const char *path, uint64_t after_seq);
void vr_cbt_map_release(struct vr_cbt_map *map);
bool vr_cbt_map_test(const struct vr_cbt_map *map, uint64_t block);
/* Blocks marked changed. */
uint64_t vr_cbt_map_count(const struct vr_cbt_map *map);
/* The first run of changed blocks at or after *cursor: *first_out and
 * *count_out; *cursor moves past it. Returns true if one was found. */
bool vr_cbt_map_next_range(const struct vr_cbt_map *map, uint64_t *cursor, uint64_t *first_out,
			   uint64_t *count_out);

/* Write a fresh log (header only) for a disk of disk_size bytes: a temporary
 * file, fsync, rename over path, fsync of the directory. */
int vr_cbt_create(const char *path, uint64_t disk_size, uint64_t generation);
/* Replace the log at path by an empty one of the next generation (1 if there
 * was none readable), crash-safely as vr_cbt_create; *generation_out gets it.
 * VR_ECONFLICT while a writer holds the log open. */
int vr_cbt_reset(const char *path, uint64_t disk_size, uint64_t *generation_out);

/* Reset the log of generation `generation` at path to the next generation,
 * as vr_cbt_reset, only if doing so loses nothing recorded after record
 * after_seq: no extent or UNCLEAN after it, no torn tail. The caller makes
 * sure no writer was in session when it read record after_seq (a write
 * recorded before it may have landed after the reader looked).
 * VR_ECONFLICT when a writer holds the lock or something would be lost (or
 * the generation or disk size differ), VR_ENOTFOUND without a log. */
int vr_cbt_reset_after(const char *path, uint64_t disk_size, uint64_t generation,
		       uint64_t after_seq, uint64_t *generation_out);

/* A writer's open log. */
struct vr_cbt_writer;

/* Open the log at path for a disk of disk_size bytes (creating it, generation
 * 1, when missing), holding an exclusive lock on it until closed. A torn tail
 * is cut off; an unfinished previous session is recorded as UNCLEAN; then an
 * OPEN record is appended. VR_ECONFLICT: another writer holds it, or its disk
 * size differs; VR_EINVAL: not a valid log; VR_EIO. */
int vr_cbt_writer_open(struct vr_cbt_writer **out, const char *path, uint64_t disk_size);
/* Record that bytes [offset, offset + length) of the disk change; call it
 * before writing them. VR_EINVAL past the disk's end, VR_EIO. */
int vr_cbt_writer_mark(struct vr_cbt_writer *writer, uint64_t offset, uint64_t length);
/* Append CLOSE and fsync the log; the caller has synced the disk first. */
int vr_cbt_writer_close_clean(struct vr_cbt_writer *writer);
/* Release the writer (NULL-safe); without a clean close the log stays unclean. */
void vr_cbt_writer_free(struct vr_cbt_writer *writer);

/* The writes vrcloud-io makes into a raw disk image. */
enum vr_io_pattern { VR_IO_SEQUENTIAL, VR_IO_RANDOM };

struct vr_io_plan {
	enum vr_io_pattern pattern;
	uint32_t write_size;  /* bytes per write, a multiple of 512 */
	uint64_t writes;      /* number of writes (the last may be shorter) */
	uint64_t total_bytes; /* bytes in all */
	uint64_t rate;	      /* bytes per second, 0 = as fast as possible */
	uint64_t seed;	      /* same seed, same offsets and bytes */
	volatile int *stop;   /* optional: stop between writes when nonzero */
};

struct vr_io_result {
	uint64_t writes;
	uint64_t bytes;
};

/* Fill plan->writes from a byte total: ceil(total / write_size). */
void vr_io_plan_bytes(struct vr_io_plan *plan, uint64_t total_bytes);
/* Write into the open disk fd of disk_size bytes as planned, recording each
 * write in log (may be NULL) before making it, then fsync the disk.
 * VR_EINVAL if a write cannot fit the disk, VR_EIO. */
int vr_io_write_disk(struct vr_io_result *result, int disk_fd, uint64_t disk_size,
		     const struct vr_io_plan *plan, struct vr_cbt_writer *log);

#endif
