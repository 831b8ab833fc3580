/* The worker's replica store (DESIGN.md section 5, docs/replica-store.md):
 * per replication, the replica disks (always equal to the newest committed
 * instance), one undo log per older retained instance (the blocks the next
 * instance overwrote), and a staging redo log for the transfer in flight.
 * A commit is atomic and crash-safe: after a crash at any point, opening
 * the store recovers exactly the previous or the new instance, never a mix.
 *
 * Layout: <root>/<replication id>/ holds everything of one replication;
 * every process that opens it (the receiving worker, a worker running a
 * recovery job) takes an exclusive lock on it, so workers of one machine
 * may share <root>. */
#ifndef VRCLOUD_STORE_H
#define VRCLOUD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

/* Blocks per group hash (hash-compare transfers, docs/transfer-protocol.md). */
#define VR_STORE_GROUP_BLOCKS VR_TX_GROUP_BLOCKS

struct vr_store_disk {
	char key[VR_TX_MAX_KEY + 1]; /* the device key, as in the transfer header */
	uint64_t size;		     /* bytes, a multiple of VR_TX_BLOCK */
};

struct vr_store_instance {
	char id[VR_UUID_LEN + 1]; /* the instance id of the transfer header, as text */
	uint64_t seq;		  /* 1, 2, ... in commit order, never reused */
	int64_t point_in_time_ms; /* the header's point in time */
	uint8_t root[VR_TX_HASH]; /* the verified hash root of the transfer */
	uint64_t blocks;	  /* blocks the instance changed */
	uint64_t bytes;		  /* bytes received for it, over all attempts */
	int64_t committed_ms;	  /* when it was committed (Unix ms) */
	bool pinned;
	bool available; /* exportable; false once VR_STORE_MOVE took the replica disks */
};

struct vr_store;

/* Create the replication's directory with empty (sparse) replica disks, or
 * accept an existing one with the same disks (without waiting for its
 * lock; after a VR_STORE_MOVE export it makes new empty replica disks, for
 * which it takes the lock). Returns 0, VR_ECONFLICT
 * (exists with other disks), VR_EINVAL (bad id, keys or sizes) or VR_EIO,
 * with *error_out (caller frees) on failure. */
int vr_store_create(const char *root, const char *replication, const struct vr_store_disk *disks,
		    unsigned ndisks, char **error_out);

/* Open and lock a replication's store, waiting up to lock_timeout_ms for
 * another holder, and recover an interrupted commit. Returns 0,
 * VR_ENOTFOUND (never created or removed), VR_ECONFLICT (still locked
 * after the timeout), VR_EIO, with *error_out (caller frees) on every
 * failure. */
int vr_store_open(struct vr_store **out, const char *root, const char *replication,
		  unsigned lock_timeout_ms, char **error_out);
void vr_store_close(struct vr_store *store);
/* The last failure's text (valid until the next call on store). */
const char *vr_store_message(const struct vr_store *store);

unsigned vr_store_ndisks(const struct vr_store *store);
const struct vr_store_disk *vr_store_disk(const struct vr_store *store, unsigned index);
/* Path of the replica image of disk index (the newest instance). */
const char *vr_store_disk_path(const struct vr_store *store, unsigned index);

/* --- receiving an instance ---------------------------------------------- */

/* Start (or resume) staging the instance a transfer header describes. The
 * disks must equal the store's (VR_TX_EHEADER otherwise). When the
 * staging holds an earlier attempt of the same instance (ids and resume
 * token equal), it is kept and each block staged so far is given to the
 * decoder with vr_tx_dec_prime, in staging order (a torn or damaged
 * tail is cut off there); otherwise it is discarded. Then dec is ready for
 * vr_tx_dec_resume_reply. Returns 0, a vr_tx_err, VR_EEXIST (the
 * instance is already committed: a sender that missed the result reply
 * retries it; nothing needs to be received), VR_ECONFLICT (the replica
 * disks were moved out) or VR_EIO. */
int vr_store_stage_begin(struct vr_store *store, struct vr_tx_dec *dec);
/* Append a verified run (as vr_tx_dec hands it over) to the staging redo
 * log with the leaf hash of each block. While the replica holds no
 * instance (a first sync, or the first after a move) the blocks go
 * straight into the replica disks and the log keeps only their leaves.
 * Returns 0 or VR_EIO. */
int vr_store_stage_run(struct vr_store *store, unsigned disk, uint64_t first, uint32_t count,
		       const uint8_t *data);
/* The same with the blocks' leaves computed already (count leaves, as
 * dec->run_leaves holds them): the blocks are not hashed again. */
int vr_store_stage_run_leaves(struct vr_store *store, unsigned disk, uint64_t first,
			      uint32_t count, const uint8_t *data,
			      const uint8_t (*leaves)[VR_TX_HASH]);
/* Bytes staged for the instance over all attempts. */
uint64_t vr_store_staged_bytes(const struct vr_store *store);

/* Commit the staged instance whose trailer dec has verified: sync the redo
 * log, write and sync the undo log of the blocks about to change (kept for
 * the previous newest instance, if any), apply the redo log to the replica
 * disks, sync, record the instance, drop the staging. out (may be NULL)
 * receives the committed instance. The staged blocks are read back and
 * must hash to the trailer's root (else the staging is discarded). Returns
 * 0, VR_ECONFLICT (no staging for dec's instance, no verified trailer, the
 * instance already committed, or the replica disks moved out) or VR_EIO. */
int vr_store_commit(struct vr_store *store, const struct vr_tx_dec *dec,
		    struct vr_store_instance *out);

/* --- instances ---------------------------------------------------------- */

/* The committed instances, oldest first (*list for the caller to free).
 * The last one is what the replica disks hold. */
int vr_store_instances(struct vr_store *store, struct vr_store_instance **list, size_t *n);
/* Drop a retained instance that is not the newest: the oldest loses its
 * undo log, a middle one's undo log is merged into its predecessor's.
 * Returns 0, VR_ENOTFOUND, VR_ECONFLICT (the newest, or pinned) or VR_EIO. */
int vr_store_drop(struct vr_store *store, const char *instance_id);
int vr_store_pin(struct vr_store *store, const char *instance_id, bool pinned);

/* --- hash compare ------------------------------------------------------- */

/* The group hash of blocks [first, first + count) of a replica disk:
 * SHA-256 over the leaf hashes (vr_tx_leaf) of its blocks in order.
 * Returns 0, VR_EINVAL (outside the disk), VR_ECONFLICT (the replica disks
 * were moved out) or VR_EIO. It only reads the replica disks: another
 * thread may call it while the store's owner stages runs (not while it
 * commits, drops or exports); runs of a first sync, staged into the
 * replica disks, show in the hashes of their groups. */
int vr_store_group_hash(struct vr_store *store, unsigned disk, uint64_t first, uint32_t count,
			uint8_t out[VR_TX_HASH]);

/* --- recovery ----------------------------------------------------------- */

enum vr_store_export_mode {
	/* Independent copies (reflink when the file system has it, else a
	 * sparse copy); replication goes on into the store. */
	VR_STORE_COPY = 0,
	/* Move the replica disks out without copying (newest instance only);
	 * the store keeps its instances' records but no replica disks until
	 * vr_store_create is called again. */
	VR_STORE_MOVE = 1,
};

/* Write instance_id (NULL: the newest) of every disk into dest_dir (created
 * if missing) as disk-<index>.img, applying the undo logs newer than it
 * (cost proportional to what changed since). paths_out (may be NULL)
 * receives ndisks malloc'ed absolute paths (caller frees each and the
 * array).
 * Returns 0, VR_ENOTFOUND (no such instance), VR_EINVAL (MOVE of an older
 * instance), VR_EEXIST (dest_dir already holds disk images), VR_ECONFLICT
 * (the replica disks were moved out; a repeated MOVE of the same instance
 * to the same dest_dir returns 0 again) or VR_EIO. */
int vr_store_export(struct vr_store *store, const char *instance_id, const char *dest_dir,
		    enum vr_store_export_mode mode, char ***paths_out);

/* Remove a replication's directory (it must not be locked by another
 * process). Returns 0 (also when it does not exist), VR_ECONFLICT (locked)
 * or VR_EIO. */
int vr_store_remove(const char *root, const char *replication, char **error_out);

#endif
