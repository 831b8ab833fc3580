/* One sync of a protected replication (docs/agent.md): take the
 * replication's lock, decide between an incremental and a full instance,
 * capture an incremental one into the spool between the freeze and thaw
 * hooks, send it with bounded retries (the same instance id and resume
 * token, so the replica keeps what it staged), record the committed
 * instance in the state, drop the spool and reset the logs that can be. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "agent/send.h"
#include "vrcloud/alloc.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

struct job {
	const struct vr_agent_sync_env *env;
	struct vr_agent_repl repl;
	struct vr_vm vm;
	struct vr_spool_info info; /* the instance: ids, token, time, per disk log position */
	bool full;
	bool frozen; /* the freeze hook ran and the thaw is left for after the transfer */
	char *spool_path;
	struct vr_spool_reader *spool;
	struct vr_agent_progress progress;
	char *error;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_error(struct job *j, char *text)
{
	free(j->error);
	j->error = text;
}

/* The VM as protect saw it: the same disks and sizes. */
static int check_vm(struct job *j)
{
	char *error = NULL;
	int rc = vr_vm_load(&j->vm, j->repl.vmdir, &error);
	if (rc) {
		set_error(j, error);
		return rc == VR_ENOMEM ? rc : VR_EINVAL;
	}
	bool same = j->vm.ndisks == j->repl.ndisks;
	for (size_t i = 0; same && i < j->vm.ndisks; i++)
		same = strcmp(j->vm.disks[i].key, j->repl.disks[i].key) == 0 &&
		       j->vm.disks[i].size == j->repl.disks[i].size;
	if (!same) {
		set_error(j, vr_asprintf("the disks of %s/vm.ini are not those protected (device "
					 "keys and sizes); unprotect and protect the VM again",
					 j->repl.vmdir));
		return VR_EINVAL;
	}
	return 0;
}

static void new_instance(struct job *j)
{
	char text[VR_UUID_LEN + 1];
	vr_uuid_generate(text);
	vr_tx_id_parse(j->info.instance, text);
	if (RAND_bytes((unsigned char *)&j->info.resume_token, sizeof j->info.resume_token) != 1)
		j->info.resume_token = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
	j->info.point_in_time_ms = wall_ms();
	j->info.ndisks = (unsigned)j->vm.ndisks;
	for (size_t d = 0; d < j->vm.ndisks; d++) {
		snprintf(j->info.disks[d].key, sizeof j->info.disks[d].key, "%s",
			 j->vm.disks[d].key);
		j->info.disks[d].size = j->vm.disks[d].size;
	}
}

static int hook(struct job *j, const char *which, const char *cmd)
{
	if (!(j->repl.quiesce || j->env->quiesce) || !cmd)
		return 0;
	char *error = NULL;
	int rc = vr_agent_hook_run(cmd, which, &j->repl,
				   j->env->hook_timeout_s ? j->env->hook_timeout_s : 120, &error);
	if (rc)
		set_error(j, error);
	return rc;
}

/* Read every disk's changes since the last instance; false when one of
 * them cannot be trusted (a full instance follows). */
static bool read_changes(struct job *j, struct vr_cbt_map *maps)
{
	for (size_t d = 0; d < j->vm.ndisks; d++) {
		const struct vr_agent_disk_state *s = &j->repl.disks[d];
		const char *path = j->vm.disks[d].cbt_path;
		struct vr_cbt_map *m = &maps[d];
		/* The blocks: the records after the last capture and the few just
		 * before it. */
		uint64_t from = s->seq > VR_AGENT_CBT_OVERLAP ? s->seq - VR_AGENT_CBT_OVERLAP : 0;
		if (s->generation == 0 || vr_cbt_read_since(m, path, from))
			return false;
		j->info.generation[d] = m->generation;
		j->info.seq[d] = m->last_seq;
		j->info.writing[d] = m->writer_alive;
		/* The trust: nothing after the last capture, read again now, so
		 * that it covers every record the blocks came from. */
		struct vr_cbt_map check;
		if (vr_cbt_read_since(&check, path, s->seq))
			return false;
		bool trusted = m->generation == s->generation &&
			       check.generation == s->generation && check.clean_since &&
			       m->disk_size == s->size;
		vr_cbt_map_release(&check);
		if (!trusted)
			return false;
	}
	return true;
}

/* Copy the changed blocks into the spool. */
static int spool_changes(struct job *j, const struct vr_cbt_map *maps)
{
	struct vr_spool_writer *w = NULL;
	int rc = vr_spool_create(&w, j->spool_path);
	for (size_t d = 0; !rc && d < j->vm.ndisks; d++) {
		int fd = open(j->vm.disks[d].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = VR_EIO;
			break;
		}
		rc = vr_spool_copy(w, (unsigned)d, fd, maps[d].bits,
				   j->vm.disks[d].size / VR_TX_BLOCK);
		close(fd);
	}
	if (!rc)
		return vr_spool_commit(w, &j->info);
	vr_spool_abort(w);
	set_error(j, vr_asprintf("the changed blocks could not be copied into %s", j->spool_path));
	return rc;
}

/* Freeze, read the logs, copy the changes, thaw. Sets j->full when the logs
 * cannot tell what changed. A sync asked to quiesce (env->quiesce, a
 * planned migration's last instance) that turns out full stays frozen until
 * its transfer ends: a full instance reads the live disks. */
static int capture(struct job *j)
{
	new_instance(j);
	if (!j->repl.instance[0]) {
		j->full = true;
		if (!j->env->quiesce)
			return 0;
		int rc = hook(j, "freeze", j->repl.freeze_cmd);
		if (rc)
			hook(j, "thaw", j->repl.thaw_cmd);
		else
			j->frozen = true;
		return rc;
	}
	int rc = hook(j, "freeze", j->repl.freeze_cmd);
	if (rc)
		return rc;
	j->info.point_in_time_ms = wall_ms();
	struct vr_cbt_map *maps = vr_calloc(j->vm.ndisks, sizeof *maps);
	j->full = !read_changes(j, maps);
	if (!j->full)
		rc = spool_changes(j, maps);
	for (size_t d = 0; d < j->vm.ndisks; d++)
		vr_cbt_map_release(&maps[d]);
	free(maps);
	if (!rc && j->full && j->env->quiesce) {
		j->frozen = true;
		vr_log_info("sync_full", "replication", j->repl.id, "reason",
			    "a changed-block log is missing, unclean or of another generation; "
			    "the VM stays quiesced until the transfer ends");
		return 0;
	}
	int thaw = hook(j, "thaw", j->repl.thaw_cmd);
	if (rc)
		return rc;
	if (thaw)
		return thaw;
	if (j->full) {
		vr_log_info("sync_full", "replication", j->repl.id, "reason",
			    "a changed-block log is missing, unclean or of another generation");
		return 0;
	}
	struct vr_spool_info check;
	rc = vr_spool_open(&j->spool, j->spool_path, &check);
	if (rc)
		set_error(j, vr_asprintf("the spool %s cannot be read back", j->spool_path));
	return rc;
}

/* A full instance reads the live disks; what is written meanwhile is in
 * the logs after the position taken here. */
static void full_positions(struct job *j)
{
	j->info.point_in_time_ms = wall_ms();
	for (size_t d = 0; d < j->vm.ndisks; d++) {
		struct vr_cbt_map m;
		j->info.generation[d] = j->info.seq[d] = 0;
		if (vr_cbt_read_since(&m, j->vm.disks[d].cbt_path, 0) == 0) {
			j->info.generation[d] = m.generation;
			j->info.seq[d] = m.last_seq;
			j->info.writing[d] = m.writer_alive;
			vr_cbt_map_release(&m);
		}
	}
}

/* A spool a previous sync left: finish that instance first. */
static bool resume_spool(struct job *j)
{
	struct vr_spool_info info;
	if (vr_spool_open(&j->spool, j->spool_path, &info))
		return false;
	bool same = info.ndisks == j->vm.ndisks;
	for (size_t d = 0; same && d < j->vm.ndisks; d++)
		same = strcmp(info.disks[d].key, j->vm.disks[d].key) == 0 &&
		       info.disks[d].size == j->vm.disks[d].size;
	if (!same) {
		vr_spool_close(j->spool);
		j->spool = NULL;
		unlink(j->spool_path);
		return false;
	}
	j->info = info;
	/* Whether a writer was in session at its capture is not known: its
	 * logs are not reset after it. */
	for (size_t d = 0; d < j->info.ndisks; d++)
		j->info.writing[d] = true;
	vr_log_info("sync_spool_resumed", "replication", j->repl.id);
	return true;
}

static void header_of(struct job *j, struct vr_tx_header *h)
{
	memset(h, 0, sizeof *h);
	h->version = VR_TX_VERSION;
	h->flags = j->full ? VR_TX_FULL | VR_TX_HASH_COMPARE : VR_TX_INCREMENTAL;
	h->codec = j->repl.compress ? VR_TX_CODEC_ZSTD : VR_TX_CODEC_NONE;
	h->ndisks = (uint8_t)j->info.ndisks;
	vr_tx_id_parse(h->replication, j->repl.id);
	memcpy(h->instance, j->info.instance, VR_TX_ID);
	h->point_in_time_ms = (uint64_t)j->info.point_in_time_ms;
	h->resume_token = j->info.resume_token;
	memcpy(h->disks, j->info.disks, sizeof h->disks[0] * j->info.ndisks);
}

static void instance_text(const uint8_t id[VR_TX_ID], char out[VR_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < VR_TX_ID; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

/* Send with bounded retries and backoff. */
static int transfer(struct job *j, struct vr_agent_sync_result *res)
{
	struct vr_send_plan plan;
	memset(&plan, 0, sizeof plan);
	plan.replication = j->repl.id;
	header_of(j, &plan.hdr);
	plan.spool = j->spool;
	for (size_t d = 0; d < VR_VM_MAX_DISKS; d++)
		plan.fds[d] = -1;
	int rc = 0;
	if (!j->spool)
		for (size_t d = 0; !rc && d < j->vm.ndisks; d++) {
			plan.sent_groups[d] =
				vr_calloc(vr_tx_disk_groups(j->vm.disks[d].size) / 8 + 1, 1);
			plan.fds[d] = open(j->vm.disks[d].path, O_RDONLY | O_CLOEXEC);
			if (plan.fds[d] < 0) {
				set_error(j, vr_asprintf("%s: %s", j->vm.disks[d].path,
							 strerror(errno)));
				rc = VR_EIO;
			}
		}
	j->progress.replication = j->repl.id;
	j->progress.full = j->full;
	j->progress.started_ms = wall_ms();
	j->progress.total_bytes = 0;
	if (j->spool)
		j->progress.total_bytes = j->info.blocks * VR_TX_BLOCK;
	else
		for (size_t d = 0; d < j->vm.ndisks; d++)
			j->progress.total_bytes += j->vm.disks[d].size;
	unsigned attempts = j->env->attempts ? j->env->attempts : 6;
	struct vr_send_outcome out;
	memset(&out, 0, sizeof out);
	for (unsigned a = 1; !rc; a++) {
		j->progress.attempt = a;
		res->attempts = a;
		rc = vr_send_attempt(j->env, &plan, &j->progress, &out);
		if (rc != VR_EUNAVAIL || a >= attempts ||
		    (j->env->stop && atomic_load(j->env->stop)))
			break;
		char attempt[16];
		snprintf(attempt, sizeof attempt, "%u", a);
		vr_log_warn("transfer_retry", "replication", j->repl.id, "attempt", attempt,
			    "error", out.message);
		sleep(a < 5 ? 1u << (a - 1) : 16u);
		rc = 0;
	}
	for (size_t d = 0; d < VR_VM_MAX_DISKS; d++) {
		if (plan.fds[d] >= 0)
			close(plan.fds[d]);
		free(plan.sent_groups[d]);
	}
	if (rc && !j->error)
		set_error(j, vr_strdup(out.message));
	res->blocks = out.instance_blocks;
	res->sent_bytes = out.sent_bytes;
	if (rc == VR_EFORBIDDEN && j->spool) {
		/* A refused instance is never committed; the logs still hold its
		 * changes, so the next sync takes a fresh one. */
		vr_spool_close(j->spool);
		j->spool = NULL;
		unlink(j->spool_path);
	}
	return rc;
}

/* The committed instance into the state; then the spool goes and the logs
 * start a new generation where that loses nothing: no writer was in session
 * when the instance was captured (a write recorded before the capture may
 * have landed after its block was read) and nothing was recorded since. */
static int record(struct job *j, struct vr_agent_sync_result *res)
{
	struct vr_agent_repl *r = &j->repl;
	instance_text(j->info.instance, r->instance);
	r->point_in_time_ms = j->info.point_in_time_ms;
	r->instance_bytes = res->sent_bytes;
	vr_agent_repl_add_duration(r, res->duration_ms);
	for (size_t d = 0; d < j->vm.ndisks; d++) {
		r->disks[d].generation = j->info.generation[d];
		r->disks[d].seq = j->info.seq[d];
	}
	char *error = NULL;
	int rc = vr_agent_repl_save_synced(r, j->env->state_dir, &error);
	if (rc) {
		set_error(j, error);
		return rc;
	}
	if (j->spool) {
		vr_spool_close(j->spool);
		j->spool = NULL;
	}
	unlink(j->spool_path);
	bool changed = false, all = true;
	for (size_t d = 0; d < j->vm.ndisks; d++) {
		uint64_t generation;
		if (r->disks[d].generation && !j->info.writing[d] &&
		    vr_cbt_reset_after(j->vm.disks[d].cbt_path, r->disks[d].size,
				       r->disks[d].generation, r->disks[d].seq, &generation) == 0) {
			r->disks[d].generation = generation;
			r->disks[d].seq = 0;
			changed = true;
		} else {
			all = false;
		}
	}
	res->log_reset = all;
	if (changed && vr_agent_repl_save_synced(r, j->env->state_dir, &error)) {
		/* The logs are a generation ahead of the state: the next sync is a
		 * full one (hash compare), which loses nothing. */
		vr_log_warn("state_write_failed", "replication", r->id, "error", error);
		free(error);
	}
	return 0;
}

int vr_agent_sync(const struct vr_agent_sync_env *env, const char *id,
		  struct vr_agent_sync_result *res, char **error_out)
{
	memset(res, 0, sizeof *res);
	*error_out = NULL;
	struct job j;
	memset(&j, 0, sizeof j);
	j.env = env;
	int lock = -1;
	int rc = vr_agent_repl_lock(env->state_dir, id, &lock);
	if (rc) {
		*error_out = vr_strdup(rc == VR_ECONFLICT
					       ? "a sync of this replication is running"
					       : "the replication's lock cannot be taken");
		return rc;
	}
	char *error = NULL;
	rc = vr_agent_repl_load(&j.repl, env->state_dir, id, &error);
	if (rc)
		set_error(&j,
			  error ? error : vr_asprintf("replication %s is not protected here", id));
	if (!rc)
		rc = check_vm(&j);
	if (!rc) {
		char *dir = vr_asprintf("%s/%s", env->state_dir, VR_AGENT_SPOOL_DIR);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			vr_log_warn("spool_dir_failed", "path", dir, "error", strerror(errno));
		free(dir);
		j.spool_path = vr_agent_spool_path(env->state_dir, id);
		res->spool_resumed = resume_spool(&j);
		if (!res->spool_resumed)
			rc = capture(&j);
		if (!rc && j.full)
			full_positions(&j);
	}
	int64_t started = wall_ms();
	if (!rc)
		rc = transfer(&j, res);
	if (j.frozen) {
		/* a failed thaw does not undo a committed instance: it is logged */
		char *keep = j.error;
		j.error = NULL;
		if (hook(&j, "thaw", j.repl.thaw_cmd))
			vr_log_warn("hook_failed", "replication", j.repl.id, "hook", "thaw", "error",
				    j.error);
		free(j.error);
		j.error = keep;
	}
	if (!rc) {
		res->duration_ms = (uint32_t)(wall_ms() - started);
		rc = record(&j, res);
	}
	if (!rc) {
		snprintf(res->instance, sizeof res->instance, "%s", j.repl.instance);
		res->full = j.full;
		res->point_in_time_ms = j.info.point_in_time_ms;
	}
	j.progress.finished = true;
	if (env->progress && j.progress.replication)
		env->progress(env->progress_ctx, &j.progress);
	if (rc)
		*error_out = j.error ? j.error : vr_strdup(vr_err_str(rc));
	else
		free(j.error);
	vr_spool_close(j.spool);
	free(j.spool_path);
	vr_vm_free(&j.vm);
	vr_agent_repl_free(&j.repl);
	close(lock);
	return rc;
}
