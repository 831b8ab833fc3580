/* vrcloud-agent, data side (docs/agent.md): the VMs a site protects, the
 * state it keeps per replication, the sender of instances (changed-block
 * log -> spool -> transfer encoder over a data connection) and the
 * schedule that holds each replication's RPO. */
#ifndef VRCLOUD_AGENT_SYNC_H
#define VRCLOUD_AGENT_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/agent.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

/* --- the VM directory (VMDIR/vm.ini) ----------------------------------- */

#define VR_VM_FILE	"vm.ini"
#define VR_VM_MAX_NAME	255
#define VR_VM_MAX_DISKS VR_TX_MAX_DISKS
#define VR_VM_MAX_KEY	2147483647u

struct vr_vm_disk {
	char key[16]; /* the decimal device key, e.g. "2000" */
	uint32_t device_key;
	char *file;	/* as vm.ini names it */
	char *path;	/* VMDIR/file, or file when absolute */
	char *cbt_path; /* path + ".cbt" */
	uint64_t size;	/* bytes, a multiple of 4096 */
};

struct vr_vm {
	char *dir;
	char *name;
	bool power_on;
	size_t ndisks;
	struct vr_vm_disk disks[VR_VM_MAX_DISKS]; /* in device key order */
};

/* Read dir/vm.ini: [vm] name (required), power (on|off, default off);
 * [disk KEY] file (required), size (default the file's size). Refused with
 * VR_EINVAL and *error_out (caller frees): unknown sections or keys, a key
 * that is not 0 to 2147483647, a repeated key or file, no disks or more than
 * 64, a size that is not a positive multiple of 4096, a disk file without a
 * size that does not exist; VR_ENOTFOUND without vm.ini, VR_EIO. */
int vr_vm_load(struct vr_vm *vm, const char *dir, char **error_out);
void vr_vm_free(struct vr_vm *vm);
/* The disk with that device key, or NULL. */
const struct vr_vm_disk *vr_vm_disk_find(const struct vr_vm *vm, const char *key);

/* --- the state of a protected replication -------------------------------
 * STATE_DIR/replications/<id>.ini, written atomically (temporary file,
 * fsync, rename); STATE_DIR/replications/<id>.lock held by whoever syncs
 * it; STATE_DIR/spool/<id>.spool the instance being sent. */

#define VR_AGENT_REPL_DIR  "replications"
#define VR_AGENT_SPOOL_DIR "spool"
#define VR_AGENT_RECENT	   8 /* transfer durations kept for the schedule */

struct vr_agent_disk_state {
	char key[16];
	uint64_t size;
	uint64_t generation; /* of the changed-block log the last instance read, 0: none */
	uint64_t seq;	     /* the log's last record when the last instance was taken */
};

struct vr_agent_repl {
	char id[VR_UUID_LEN + 1];
	char *vm_name;
	char *vmdir;
	char *vdc;
	char *retention; /* as given to protect, e.g. "24x60,7x1440"; NULL: none */
	char *freeze_cmd, *thaw_cmd;
	unsigned rpo; /* minutes */
	bool quiesce, compress;
	/* the newest committed instance ("" before the first) */
	char instance[VR_UUID_LEN + 1];
	int64_t point_in_time_ms; /* when its transfer started */
	uint64_t instance_bytes;  /* bytes it sent */
	unsigned nrecent;
	uint32_t recent_ms[VR_AGENT_RECENT]; /* durations of the latest transfers, newest first */
	size_t ndisks;
	struct vr_agent_disk_state disks[VR_VM_MAX_DISKS];
};

/* Load STATE_DIR/replications/<id>.ini (fresh r; free with
 * vr_agent_repl_free). VR_ENOTFOUND, VR_EINVAL (with *error_out), VR_EIO. */
int vr_agent_repl_load(struct vr_agent_repl *r, const char *state_dir, const char *id,
		       char **error_out);
/* Write it atomically. 0 or VR_EIO with *error_out. */
int vr_agent_repl_save(const struct vr_agent_repl *r, const char *state_dir, char **error_out);
void vr_agent_repl_free(struct vr_agent_repl *r);
/* The ids of every replications/<id>.ini, sorted; *ids_out is an array of
 * *count_out strings (free each and the array). 0 or VR_EIO. */
int vr_agent_repl_list(const char *state_dir, char ***ids_out, size_t *count_out);
/* The replication whose id or VM name is what. 0, VR_ENOTFOUND, or VR_ECONFLICT
 * (two replications of that VM name). */
int vr_agent_repl_find(const char *state_dir, const char *what, char id_out[VR_UUID_LEN + 1]);
/* Remove its state, lock, progress and spool files. */
void vr_agent_repl_remove(const char *state_dir, const char *id);
/* Paths of its files (caller frees). */
char *vr_agent_repl_path(const char *state_dir, const char *id, const char *suffix);
char *vr_agent_spool_path(const char *state_dir, const char *id);
/* Take the replication's sync lock without waiting: 0 with *fd_out (close it
 * to release), VR_ECONFLICT (a sync of it runs), VR_EIO. */
int vr_agent_repl_lock(const char *state_dir, const char *id, int *fd_out);
/* Record a transfer duration (newest first). */
void vr_agent_repl_add_duration(struct vr_agent_repl *r, uint32_t ms);

/* Settings a reconfigure changed (the configChanged command's fields rpo,
 * quiesce, compress, retention; docs/agent.md). */
struct vr_agent_settings {
	const char *rpo;       /* minutes, 1 to 1440; NULL: unchanged */
	const char *quiesce;   /* "true" or "false"; NULL: unchanged */
	const char *compress;  /* "true" or "false"; NULL: unchanged */
	const char *retention; /* COUNTxMINUTES[,...]; "": no rules; NULL: unchanged */
};
/* Write the settings into replications/<id>.ini (read, changed and written
 * again under the state's write lock, so a sync recording its instance
 * meanwhile keeps them). *changed_out: whether a value differed. 0,
 * VR_ENOTFOUND, VR_EINVAL (a bad value, with *error_out), VR_EIO. */
int vr_agent_repl_configure(const char *state_dir, const char *id,
			    const struct vr_agent_settings *set, bool *changed_out,
			    char **error_out);
/* Save r after a sync: the settings (rpo, quiesce, compress, retention) of
 * the state on disk are taken into r first, under the state's write lock,
 * so a configChanged applied during the sync is not undone. 0 or VR_EIO. */
int vr_agent_repl_save_synced(struct vr_agent_repl *r, const char *state_dir, char **error_out);

/* --- the spool: an incremental instance's blocks, copied between freeze
 * and thaw, sent from here on every attempt (the same blocks, the same
 * contents, the same resume token) until the replica commits it. --------- */

#define VR_SPOOL_MAGIC	"VRSPOOL1"
#define VR_SPOOL_HEADER 4096u

struct vr_spool_info {
	uint8_t instance[VR_TX_ID];
	uint64_t resume_token;
	int64_t point_in_time_ms;
	unsigned ndisks;
	struct vr_tx_disk disks[VR_VM_MAX_DISKS];
	uint64_t generation[VR_VM_MAX_DISKS]; /* of each disk's log when captured */
	uint64_t seq[VR_VM_MAX_DISKS];	      /* its last record when captured */
	bool writing[VR_VM_MAX_DISKS];	      /* a writer was in session then (not kept) */
	uint64_t runs, blocks;		      /* set by vr_spool_commit */
};

struct vr_spool_writer;
/* Start writing path (through path.tmp). 0, VR_EIO. */
int vr_spool_create(struct vr_spool_writer **out, const char *path);
/* Copy each run of the changed set of disk (its open image fd) into the
 * spool, runs of at most VR_TX_MAX_RUN_BLOCKS blocks in ascending order;
 * disks in ascending order. 0, VR_EIO (read or write failed), VR_ENOMEM. */
int vr_spool_copy(struct vr_spool_writer *w, unsigned disk, int fd, const uint8_t *bits,
		  uint64_t blocks);
/* Write the header (info->runs and ->blocks filled in), fsync and rename the
 * spool into place: from here it is complete. Frees w. */
int vr_spool_commit(struct vr_spool_writer *w, struct vr_spool_info *info);
/* Drop an unfinished spool (NULL-safe). */
void vr_spool_abort(struct vr_spool_writer *w);

struct vr_spool_reader;
/* Open a complete spool. VR_ENOTFOUND, VR_EINVAL (not a complete spool),
 * VR_EIO. */
int vr_spool_open(struct vr_spool_reader **out, const char *path, struct vr_spool_info *info);
/* The next run: its disk, first block and count, its data in buf
 * (VR_TX_MAX_PAYLOAD bytes). Returns 1 with a run, 0 at the end, or
 * VR_EINVAL / VR_EIO. */
int vr_spool_next(struct vr_spool_reader *r, unsigned *disk, uint64_t *first, uint32_t *count,
		  uint8_t *buf);
/* Back to the first run (a new attempt). */
int vr_spool_rewind(struct vr_spool_reader *r);
void vr_spool_close(struct vr_spool_reader *r);

/* --- hooks ------------------------------------------------------------- */

/* Run cmd with /bin/sh -c, VRCLOUD_VM, VRCLOUD_VMDIR, VRCLOUD_REPLICATION
 * and VRCLOUD_HOOK (freeze|thaw) in its environment, within timeout_s.
 * 0, or VR_EIO with *error_out (it failed, was killed, or timed out). */
int vr_agent_hook_run(const char *cmd, const char *hook, const struct vr_agent_repl *r,
		      unsigned timeout_s, char **error_out);

/* --- the sender -------------------------------------------------------- */

/* Records of the log before the last capture that the next incremental
 * instance reads again: a write whose record came before the capture may
 * land on the disk after its block was copied (a writer records first and
 * writes then; a freeze hook may stop it in between). */
#define VR_AGENT_CBT_OVERLAP 64u

struct vr_agent_progress {
	const char *replication;
	bool full;
	unsigned attempt;     /* 1, 2, ... */
	uint64_t total_bytes; /* of the instance's blocks (full: of the disks) */
	uint64_t done_bytes;  /* of those, read and hashed so far */
	uint64_t sent_bytes;  /* run payload bytes on the wire so far */
	int64_t started_ms;   /* wall clock */
	bool finished;
};

typedef void (*vr_agent_progress_fn)(void *ctx, const struct vr_agent_progress *p);

struct vr_agent_sync_env {
	const struct vr_agent_config *config;
	const struct vr_agent_tls *tls;
	const char *credential;
	const char *state_dir;
	unsigned attempts;	       /* transfer attempts of one instance; 0: 6 */
	unsigned timeout_ms;	       /* a read or write without progress; 0: 60000 */
	unsigned hook_timeout_s;       /* 0: 120 */
	vr_agent_progress_fn progress; /* optional, called at most 5 times a second */
	void *progress_ctx;
	const atomic_bool *stop; /* optional: when set, the transfer stops (the spool stays) */
	bool quiesce; /* run the freeze and thaw hooks for this instance even when the
		       * replication has quiescing off (a planned migration's sync) */
};

struct vr_agent_sync_result {
	char instance[VR_UUID_LEN + 1];
	bool full;
	int64_t point_in_time_ms;
	uint64_t blocks;     /* blocks of the instance */
	uint64_t sent_bytes; /* run payload bytes of the last attempt */
	uint32_t duration_ms;
	unsigned attempts;
	bool log_reset; /* every disk's log was reset to a new generation */
	bool spool_resumed; /* the instance was one an interrupted sync left in the spool */
};

/* Take one instance of replication id and send it (docs/agent.md): an
 * incremental one from the changed-block logs through the spool, or a full
 * one when a log is missing, unclean, of another generation, or for the
 * first instance; a spool left by an earlier sync is finished first.
 * Returns 0 (committed: the state records it), VR_ECONFLICT (a sync of it
 * runs), VR_ENOTFOUND (not protected here), VR_EUNAVAIL (no connection after
 * every attempt), VR_EIO / VR_EINVAL (the VM directory, a hook, the spool),
 * VR_EFORBIDDEN (the replica refused the instance). *error_out (caller
 * frees) says why. */
int vr_agent_sync(const struct vr_agent_sync_env *env, const char *id,
		  struct vr_agent_sync_result *result, char **error_out);

/* --- the schedule (the vSphere rule) -----------------------------------
 * An instance reflects the VM at the start of its transfer, so the newest
 * instance is as old as the time since that start. The next transfer must
 * end before the newest instance gets older than the RPO: it starts at
 *   last start + RPO - 2 x (longest of the recent transfers) - margin,
 * margin = RPO / 10 within [5 s, 300 s]; never sooner than floor seconds
 * after the previous attempt started; after failures, not before a backoff
 * of 15 s doubling per failure up to 300 s has passed since the last one. */

struct vr_agent_schedule_in {
	int64_t now_ms;
	int64_t last_pit_ms; /* the newest instance's point in time; 0: none yet */
	unsigned rpo_s;
	const uint32_t *recent_ms; /* durations of recent transfers */
	unsigned nrecent;
	unsigned floor_s;      /* fewest seconds between two starts */
	int64_t last_start_ms; /* the last attempt's start; 0: none */
	unsigned failures;     /* consecutive failed attempts */
	int64_t failed_ms;     /* when the last failed attempt ended */
};

/* The wall-clock time (ms) the next transfer should start: at or before
 * now_ms means now. */
int64_t vr_agent_schedule_next(const struct vr_agent_schedule_in *in);
/* The margin the rule keeps for an RPO, in milliseconds. */
int64_t vr_agent_schedule_margin_ms(unsigned rpo_s);

/* --- progress of a running sync ------------------------------------------
 * The daemon keeps STATE_DIR/replications/<id>.progress current while it
 * syncs, so `vrcloud-agent status` can draw the bar. */
int vr_agent_progress_save(const char *state_dir, const struct vr_agent_progress *p);
/* 0 and *p (p->replication NULL), VR_ENOTFOUND, VR_EINVAL. */
int vr_agent_progress_load(const char *state_dir, const char *id, struct vr_agent_progress *p);
/* Whether someone holds the replication's sync lock now. */
bool vr_agent_repl_busy(const char *state_dir, const char *id);
/* "[#######.............]  35%  96.0 MiB / 270.0 MiB  12.1 MiB/s" (width
 * characters of bar) into out. */
void vr_agent_progress_format(char *out, size_t size, const struct vr_agent_progress *p,
			      int64_t now_ms, unsigned width);
/* Bytes as "123.4 MiB". */
void vr_agent_bytes_format(char *out, size_t size, uint64_t bytes);

/* --- the daemon's scheduler ---------------------------------------------- */

struct vr_agent_scheduler;

/* Start the scheduler of every replication in config->state_dir, with
 * config->sync_workers transfers at once. tls and credential outlive it. */
int vr_agent_scheduler_start(struct vr_agent_scheduler **out, const struct vr_agent_config *config,
			     const struct vr_agent_tls *tls, const char *credential,
			     char **error_out);
/* A sync of replication (NULL: of every one) as soon as a worker is free;
 * one that runs already is followed by another (its instance started before
 * the request). An id not scheduled yet makes the state directory be read
 * again (a replication protected since). */
void vr_agent_scheduler_sync_now(struct vr_agent_scheduler *s, const char *replication);
/* The same, with that sync quiesced (env.quiesce: a planned migration). */
void vr_agent_scheduler_sync_quiesced(struct vr_agent_scheduler *s, const char *replication);
/* Whether a daemon's scheduler runs on state_dir (it holds
 * STATE_DIR/scheduler.lock). */
bool vr_agent_scheduler_running(const char *state_dir);
/* Read the state directory again (protect, unprotect, configChanged). */
void vr_agent_scheduler_reload(struct vr_agent_scheduler *s);
/* Stop: running transfers stop at their next block (their spools stay). */
void vr_agent_scheduler_stop(struct vr_agent_scheduler *s);

#endif
