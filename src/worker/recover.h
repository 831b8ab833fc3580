/* The data of the worker's recovery jobs (recover.c, docs/recovery.md) and
 * of failback (failback.c). */
#ifndef VRCLOUD_WORKER_RECOVER_H
#define VRCLOUD_WORKER_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vrcloud/uuid.h"
#include "vrcloud/worker.h"

/* The manifest beside a recovered VM's images: [recovered] replication,
 * instance; one [disk KEY] section per disk with file and size. */
#define VR_RECOVER_MANIFEST "disks.ini"

/* <recovered_dir>/<rg>/<kind>-<name> (caller frees): kind "test" with the
 * job's id, or "recovered" with the instance's. */
char *vr_recover_dir(const char *recovered_dir, const char *rg, const char *kind, const char *name);

/* Write instance_id ("" or NULL: the newest) of rg's replica into the
 * job's directory of kind, recording the images in run. allow_move: the
 * newest instance is moved out of the store (no copy; a failover); an
 * older one, or !allow_move, is copied with the undo logs applied. Returns
 * 0 or a job status (run's error set). */
int vr_recover_export(struct vr_job_run *run, const char *rg, const char *instance_id,
		      bool allow_move, const char *kind);

/* Wait (bounded by [worker] sync_timeout, reporting progress, so a cancel
 * stops it) until rg's newest instance has a point in time at or after
 * since_ms; its id goes to instance_out. Returns 0 or a job status. */
int vr_recover_wait_instance(struct vr_job_run *run, const char *rg, int64_t since_ms,
			     char instance_out[VR_UUID_LEN + 1]);

/* Run [worker] boot_check with the images run records; 0 or a failure. */
int vr_recover_boot_check(struct vr_job_run *run, const char *rg);

/* Remove every test directory of rg; 0 or a failure. */
int vr_recover_cleanup_tests(struct vr_job_run *run, const char *rg, unsigned *removed_out);

/* Unix time in milliseconds. */
int64_t vr_recover_now_ms(void);

/* The failback sync of failback replication fb (recovered from source):
 * the site's on-prem disks are made equal to the recovered images through
 * a reverse connection of purpose "failback" (failback.c). Returns 0 or a
 * job status. */
int vr_failback_sync(struct vr_job_run *run, const char *fb, const char *source);

#endif
