/* A replica store filled by the test process (tests of the recovery jobs
 * and of failback): a source VM of raw images under a directory of the
 * test, changed at random between instances, each instance sent through a
 * real transfer encoder and decoder into vr_store_* and recorded in the
 * API's instances table, as the worker's replication port does. */
#ifndef VRT_REPLICA_H
#define VRT_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "vrcloud/store.h"
#include "vrcloud/uuid.h"

#define RFX_MAX_DISKS 4

struct rfx {
	char root[512]; /* the store root (the worker's store_dir) */
	char rg[VR_UUID_LEN + 1];
	char dir[512]; /* where the source images and snapshots go */
	unsigned ndisks;
	struct vr_store_disk disks[RFX_MAX_DISKS];
	char src[RFX_MAX_DISKS][600];	 /* the source images */
	uint8_t *changed[RFX_MAX_DISKS]; /* blocks changed since the last instance */
	uint64_t seed;
	uint64_t seq;
};

/* A replication's store with ndisks disks of sizes[] bytes (keys 2000,
 * 2001, ...), the disks rows in the API's database, and sparse source
 * images of those sizes in dir. */
void rfx_init(struct rfx *f, const char *root, const char *rg, const char *dir, unsigned ndisks,
	      const uint64_t *sizes);
void rfx_free(struct rfx *f);
/* Write blocks random 4 KiB blocks into each source image. */
void rfx_write(struct rfx *f, unsigned blocks);
/* Send the changed blocks as an instance with point in time pit_ms (0:
 * now) into the store and record it in the instances table. id_out gets
 * its id; the source images are copied to <dir>/<id>-disk-<i>.img. */
void rfx_commit(struct rfx *f, int64_t pit_ms, char id_out[VR_UUID_LEN + 1]);
/* <dir>/<id>-disk-<i>.img (caller frees). */
char *rfx_snapshot(const struct rfx *f, const char *id, unsigned disk);
/* true when `cmp -s a b` finds the files equal. */
bool rfx_cmp(const char *a, const char *b);

#endif
