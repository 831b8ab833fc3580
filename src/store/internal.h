/* The replica store's internals shared by its files (docs/replica-store.md):
 * the open store, its on-disk names and record layouts, and the small
 * file helpers every step of a commit, a drop or an export uses. */
#ifndef VRCLOUD_STORE_INTERNAL_H
#define VRCLOUD_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "transfer/wire.h"
#include "vrcloud/store.h"

#define ST_MANIFEST	  "disks"
#define ST_JOURNAL	  "instances"
#define ST_STAGING	  "staging"
#define ST_COMMIT	  "commit"
#define ST_MOVED	  "moved"
#define ST_LOCK		  "lock"
#define ST_MAX_INSTANCES  1000000u

#define ST_MANIFEST_MAGIC "VRSDISK1"
#define ST_JOURNAL_MAGIC  "VRSINST1"
#define ST_REDO_MAGIC	  "VRSREDO1"
#define ST_UNDO_MAGIC	  "VRSUNDO1"
#define ST_COMMIT_MAGIC	  "VRSCOMM1"
#define ST_MOVED_MAGIC	  "VRSMOVE1"

#define ST_JOURNAL_HDR	  64
#define ST_INSTANCE_REC	  128
#define ST_REDO_REC	  48 /* record header; then leaves, then data */
#define ST_UNDO_HDR	  96
#define ST_UNDO_REC	  48 /* record header; then data for 'D' */
#define ST_COMMIT_LEN	  (8 + 8 + 8 + ST_INSTANCE_REC + VR_TX_HASH)

/* Journal header flags. */
#define ST_MOVED_OUT 0x1u /* the replica images were moved out (VR_STORE_MOVE) */
/* Instance record flags. */
#define ST_PINNED      0x1u
#define ST_UNAVAILABLE 0x2u /* its data left with the replica images */

struct st_staging {
	int fd;	     /* -1 when no staging is open */
	bool active; /* matches the decoder given to stage_begin */
	uint8_t instance[VR_TX_ID];
	uint64_t token;
	int64_t point_in_time_ms;
	uint64_t data_start; /* offset of the first record */
	uint64_t end;	     /* offset past the last valid record */
	uint64_t synced;     /* the bytes before: write-back started */
	uint64_t blocks, bytes;
	int disk;	     /* disk of the last record, -1 before any */
	uint64_t next_block; /* first block the next record may use */
	/* Direct: the replica holds no instance, so the blocks go straight
	 * into its images and the records keep only their leaves. */
	bool direct;
	int img[VR_TX_MAX_DISKS]; /* the images, open while a direct staging is */
};

struct vr_store {
	char *dir;
	char replication[VR_UUID_LEN + 1];
	uint8_t replication_id[VR_TX_ID];
	int lock_fd;
	unsigned ndisks;
	struct vr_store_disk *disks;
	char **paths; /* replica image per disk */
	/* the journal */
	struct vr_store_instance *inst; /* oldest first */
	size_t ninst, cap;
	uint64_t next_seq;
	uint64_t base_seq; /* the instance the replica images hold, 0 if none */
	uint32_t flags;
	struct st_staging stage;
	char msg[512];
};

/* Sets the store's message and returns err. */
int st_fail(struct vr_store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Whole-buffer I/O, retried on EINTR and short transfers: 0 or -1 (errno). */
int st_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got);
int st_pwrite(int fd, const void *buf, size_t len, uint64_t off);
/* pwritev of the whole iov (which it consumes) at off, as st_pwrite. */
int st_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t off);
int st_fsync_dir(const char *dir);
/* Writes path atomically: path.tmp, fsync, rename, fsync of the directory. */
int st_write_atomic(const char *dir, const char *name, const void *data, size_t len);
char *st_path(const struct vr_store *s, const char *name);
char *st_undo_name(uint64_t seq);
bool st_zero(const uint8_t *p, size_t len);
int st_mkdir_p(const char *path);
int64_t st_now_ms(void);
/* Read a whole file of at most max bytes (*out for the caller to free);
 * 0, or -1 with errno. */
int st_read_file(const char *path, uint8_t **out, size_t *len, size_t max);
/* Load the instance journal into s->inst. */
int st_journal_read(struct vr_store *s);

/* Journal (store.c). */
/* Removes temporary files and the undo logs no retained instance uses. */
int st_sweep(struct vr_store *s);
int st_journal_write(struct vr_store *s);
ssize_t st_find(const struct vr_store *s, const char *instance_id);
void st_instance_encode(uint8_t rec[ST_INSTANCE_REC], const struct vr_store_instance *in,
			uint32_t flags);
int st_instance_decode(struct vr_store_instance *in, uint32_t *flags,
		       const uint8_t rec[ST_INSTANCE_REC]);
uint32_t st_instance_flags(const struct vr_store_instance *in);
/* Appends a committed instance to the journal in memory. */
void st_append_instance(struct vr_store *s, const struct vr_store_instance *in);

/* Staging and commit (stage.c). */
void st_stage_close(struct vr_store *s);
int st_stage_discard(struct vr_store *s);
/* Roll an interrupted commit forward (the commit marker exists). */
int st_commit_recover(struct vr_store *s);

/* Exports (export.c): finish a move cut short (the moved file exists). */
int st_move_recover(struct vr_store *s);

/* Undo logs (undo.c): written by a commit, read by exports and merges. */
struct st_undo_writer {
	int fd;
	char *tmp, *final;
	uint64_t off, records, blocks;
	/* the records not yet written, which start at off - len; the file's
	 * bytes before synced (written back by sync_file_range) */
	uint8_t *buf;
	size_t len;
	uint64_t synced;
};

struct st_undo_reader {
	int fd;
	uint64_t seq;
	uint64_t off, size, records, blocks;
	int last_disk;
	uint64_t next_block;
	bool done;
	/* the current record */
	unsigned disk;
	uint64_t first;
	uint32_t count;
	bool zero;
	uint8_t *data; /* VR_TX_MAX_PAYLOAD bytes, owned by the reader */
};

int st_undo_begin(struct vr_store *s, struct st_undo_writer *w, const struct vr_store_instance *in);
/* data NULL: count zero blocks. */
int st_undo_add(struct vr_store *s, struct st_undo_writer *w, unsigned disk, uint64_t first,
		uint32_t count, const uint8_t *data);
/* End record, fdatasync, rename into place (the directory is not synced). */
int st_undo_finish(struct vr_store *s, struct st_undo_writer *w);
void st_undo_abort(struct st_undo_writer *w);
int st_undo_open(struct vr_store *s, struct st_undo_reader *r, const struct vr_store_instance *in);
/* 1 with the next record, 0 at the (verified) end, or VR_EIO. */
int st_undo_next(struct vr_store *s, struct st_undo_reader *r);
void st_undo_close(struct st_undo_reader *r);
/* Apply the undo log of in to the images open on fds. */
int st_undo_apply(struct vr_store *s, const struct vr_store_instance *in, const int *fds);
/* Merge the undo log of list[i] into list[i - 1]'s (which wins). */
int st_undo_merge(struct vr_store *s, size_t i);

#endif
