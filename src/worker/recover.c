/* The data of the recovery jobs (docs/recovery.md): a failover, planned
 * migration or test failover writes the replication's disks, as of one
 * instance of its replica store, into raw images under
 * <recovered_dir>/<replication id>/test-<job id>/ (a test failover) or
 * recovered-<instance id>/ (a failover or planned migration) with a manifest
 * (disks.ini); a test cleanup removes the test images. The store's lock is
 * held only while an export runs, so replication goes on around a test
 * failover. A directory is complete once it has its final name: exports
 * go to "<dir>.partial" first and are renamed, so a job run again after a
 * crash finds either nothing or the whole result. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/store.h"
#include "worker/recover.h"

/* Milliseconds a job waits for the store's lock (a transfer in flight
 * holds it while it stages and commits). */
#define LOCK_WAIT_MS 60000u
/* How often the store is looked at while a job waits for an instance. */
#define POLL_MS 1000

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int mkdir_p(const char *path)
{
	char *copy = vr_strdup(path);
	int rc = 0;
	for (char *p = copy + 1; *p && !rc; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0750) != 0 && errno != EEXIST)
			rc = VR_EIO;
		*p = '/';
	}
	if (!rc && mkdir(copy, 0750) != 0 && errno != EEXIST)
		rc = VR_EIO;
	free(copy);
	return rc;
}

/* Remove a directory of images (files only, one level). */
static int remove_images(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : VR_EIO;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *file = vr_asprintf("%s/%s", dir, e->d_name);
		if (unlink(file) != 0 && errno != ENOENT)
			rc = VR_EIO;
		free(file);
	}
	closedir(d);
	if (!rc && rmdir(dir) != 0 && errno != ENOENT)
		rc = VR_EIO;
	return rc;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

char *vr_recover_dir(const char *recovered_dir, const char *rg, const char *kind, const char *name)
{
	return vr_asprintf("%s/%s/%s-%s", recovered_dir, rg, kind, name);
}

/* The manifest of a recovered VM's directory (docs/recovery.md). */
static int write_manifest(const char *dir, const char *rg, const char *instance,
			  struct vr_store *store)
{
	char *path = vr_asprintf("%s/%s", dir, VR_RECOVER_MANIFEST);
	FILE *f = fopen(path, "w");
	free(path);
	if (!f)
		return VR_EIO;
	fprintf(f, "[recovered]\nreplication = %s\ninstance = %s\n", rg, instance);
	for (unsigned i = 0; i < vr_store_ndisks(store); i++) {
		const struct vr_store_disk *disk = vr_store_disk(store, i);
		fprintf(f, "\n[disk %s]\nfile = disk-%u.img\nsize = %" PRIu64 "\n", disk->key, i,
			disk->size);
	}
	int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : VR_EIO;
	if (fclose(f) != 0)
		rc = VR_EIO;
	return rc;
}

static int on_manifest(void *user, const char *section, const char *name, const char *value)
{
	char *instance = user;
	if (strcmp(section, "recovered") == 0 && strcmp(name, "instance") == 0)
		snprintf(instance, VR_UUID_LEN + 1, "%s", value);
	return 1;
}

/* The instance a finished directory's manifest names ("" when none). */
static void manifest_instance(const char *dir, char out[VR_UUID_LEN + 1])
{
	out[0] = '\0';
	char *path = vr_asprintf("%s/%s", dir, VR_RECOVER_MANIFEST);
	if (ini_parse(path, on_manifest, out) != 0 || !vr_uuid_valid(out))
		out[0] = '\0';
	free(path);
}

/* Record the images of dir in run (what the JobResult names). */
static void record_disks(struct vr_job_run *run, const char *dir, const char *instance,
			 struct vr_store *store)
{
	vr_job_run_clear(run);
	unsigned n = vr_store_ndisks(store);
	run->disks = vr_calloc(n ? n : 1, sizeof *run->disks);
	for (unsigned i = 0; i < n; i++) {
		const struct vr_store_disk *disk = vr_store_disk(store, i);
		snprintf(run->disks[i].key, sizeof run->disks[i].key, "%s", disk->key);
		run->disks[i].path = vr_asprintf("%s/disk-%u.img", dir, i);
		run->disks[i].size = disk->size;
	}
	run->ndisks = n;
	snprintf(run->recovered_instance, sizeof run->recovered_instance, "%s", instance);
}

static int store_failure(struct vr_job_run *run, const char *rg, int rc, const char *message)
{
	if (rc == VR_ENOTFOUND)
		return vr_job_fail(run, 409, "CONFLICT", "NoReplicaInstance",
				   "Replication %s has no replica on this replica server: it has "
				   "never completed a sync, so there is nothing to recover.",
				   rg);
	if (rc == VR_ECONFLICT)
		return vr_job_fail(run, 503, "SERVICE_UNAVAILABLE", "ReplicaBusy",
				   "The replica of replication %s stayed locked by a transfer "
				   "for %u seconds; try again.",
				   rg, LOCK_WAIT_MS / 1000);
	return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "ReplicaStoreFailed",
			   "The replica store of replication %s failed: %.300s", rg,
			   message ? message : vr_err_str(rc));
}

/* The instance to recover: instance_id, or the newest. */
static int pick_instance(struct vr_job_run *run, struct vr_store *store, const char *rg,
			 const char *instance_id, struct vr_store_instance *out, bool *newest_out)
{
	struct vr_store_instance *list = NULL;
	size_t n = 0;
	int rc = vr_store_instances(store, &list, &n);
	if (rc) {
		free(list);
		return store_failure(run, rg, rc, vr_store_message(store));
	}
	if (n == 0) {
		free(list);
		return vr_job_fail(run, 409, "CONFLICT", "NoReplicaInstance",
				   "Replication %s has no instance yet: it has never completed a "
				   "sync, so there is nothing to recover.",
				   rg);
	}
	size_t at = n - 1;
	if (instance_id && instance_id[0]) {
		for (at = 0; at < n && strcmp(list[at].id, instance_id) != 0; at++)
			;
		if (at == n) {
			free(list);
			return vr_job_fail(run, 404, "RESOURCE_NOT_FOUND", "InstanceNotRetained",
					   "Instance %s of replication %s is not retained on the "
					   "replica (retention dropped it, or it never committed).",
					   instance_id, rg);
		}
	}
	*out = list[at];
	*newest_out = at == n - 1;
	free(list);
	return 0;
}

/* Export into dir through dir.partial. A partial copy left by a crash is
 * made again; a move repeated into the same partial directory is taken by
 * the store as done. */
static int export_into(struct vr_store *store, const char *rg, const char *instance, bool move,
		       const char *dir, char **error_out)
{
	char *partial = vr_asprintf("%s.partial", dir);
	int rc = 0;
	if (!move && exists(partial))
		rc = remove_images(partial);
	if (!rc)
		rc = vr_store_export(store, move ? NULL : instance, partial,
				     move ? VR_STORE_MOVE : VR_STORE_COPY, NULL);
	if (rc)
		*error_out = vr_asprintf("%s", vr_store_message(store));
	if (!rc)
		rc = write_manifest(partial, rg, instance, store);
	if (!rc && rename(partial, dir) != 0)
		rc = VR_EIO;
	free(partial);
	return rc;
}

int vr_recover_export(struct vr_job_run *run, const char *rg, const char *instance_id,
		      bool allow_move, const char *kind)
{
	char *dir = NULL;
	char *parent = vr_asprintf("%s/%s", run->recovered_dir, rg);
	struct vr_store *store = NULL;
	char *error = NULL;
	int rc = vr_store_open(&store, run->store_dir, rg, LOCK_WAIT_MS, &error);
	int status = 0;
	if (rc) {
		status = store_failure(run, rg, rc, error);
		goto out;
	}
	struct vr_store_instance chosen;
	bool newest = false;
	status = pick_instance(run, store, rg, instance_id, &chosen, &newest);
	if (status)
		goto out;
	/* a test copy per job; a recovered VM per instance, so that a failover
	 * run again (its boot check failed, say) finds the disks it moved */
	bool test = strcmp(kind, "test") == 0;
	dir = vr_recover_dir(run->recovered_dir, rg, kind, test ? run->job->id : chosen.id);
	bool done = exists(dir);
	if (!done && !chosen.available) {
		status = vr_job_fail(run, 409, "CONFLICT", "InstanceNotAvailable",
				     "Instance %s of replication %s is no longer on the replica: a "
				     "failover moved the replica disks out.",
				     chosen.id, rg);
		goto out;
	}
	if (done) {
		/* this job ran here before and finished its export */
		char made[VR_UUID_LEN + 1];
		manifest_instance(dir, made);
		record_disks(run, dir, made[0] ? made : chosen.id, store);
		goto out;
	}
	bool move = allow_move && newest;
	char *why = NULL;
	rc = mkdir_p(parent);
	if (!rc)
		rc = export_into(store, rg, chosen.id, move, dir, &why);
	if (rc) {
		status = vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "RecoveryExportFailed",
				     "The disks of replication %s (instance %s) could not be "
				     "written to %.200s: %.200s",
				     rg, chosen.id, dir, why && why[0] ? why : vr_err_str(rc));
		free(why);
		goto out;
	}
	free(why);
	record_disks(run, dir, chosen.id, store);
	vr_log_info("recovery_exported", "replication", rg, "instance", chosen.id, "mode",
		    move ? "move" : "copy", "dir", dir);
out:
	vr_store_close(store);
	free(error);
	free(parent);
	free(dir);
	return status;
}

int vr_recover_wait_instance(struct vr_job_run *run, const char *rg, int64_t since_ms,
			     char instance_out[VR_UUID_LEN + 1])
{
	const struct vr_worker_config *config = run->config;
	int64_t deadline = wall_ms() + (int64_t)config->sync_timeout * 1000;
	int64_t next_report = 0;
	for (;;) {
		struct vr_store *store = NULL;
		char *error = NULL;
		/* a short wait: a transfer holding the lock is what is waited for */
		int rc = vr_store_open(&store, run->store_dir, rg, 200, &error);
		free(error);
		if (rc == VR_ENOTFOUND)
			/* no replica here at all: no sync will make one */
			return store_failure(run, rg, rc, NULL);
		if (!rc) {
			struct vr_store_instance *list = NULL;
			size_t n = 0;
			if (vr_store_instances(store, &list, &n) == 0 && n &&
			    list[n - 1].point_in_time_ms >= since_ms) {
				snprintf(instance_out, VR_UUID_LEN + 1, "%s", list[n - 1].id);
				free(list);
				vr_store_close(store);
				return 0;
			}
			free(list);
			vr_store_close(store);
		}
		int64_t now = wall_ms();
		if (now >= deadline)
			return vr_job_fail(run, 504, "GATEWAY_TIMEOUT", "SyncTimedOut",
					   "The source site of replication %s sent no new instance "
					   "within %u seconds of the sync request (is its agent "
					   "connected?).",
					   rg, config->sync_timeout);
		if (now >= next_report) {
			char message[160];
			snprintf(
				message, sizeof message,
				"Waiting for a new instance of replication %s from the source site",
				rg);
			int status = vr_job_report(run, 20, message);
			if (status)
				return status;
			next_report = now + 5000;
		}
		sleep_ms(POLL_MS);
	}
}

int vr_recover_boot_check(struct vr_job_run *run, const char *rg)
{
	const char *cmd = run->config->boot_check;
	if (!cmd || !cmd[0])
		return 0;
	/* sh -c 'CMD "$@"' sh DISK... : the command may carry its own words */
	char *script = vr_asprintf("%s \"$@\"", cmd);
	char **argv = vr_calloc(run->ndisks + 5, sizeof *argv);
	unsigned n = 0;
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = script;
	argv[n++] = "boot_check";
	for (unsigned i = 0; i < run->ndisks; i++)
		argv[n++] = run->disks[i].path;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int status = -1;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	free(argv);
	free(script);
	if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char how[64];
	if (pid < 0)
		snprintf(how, sizeof how, "could not be started");
	else if (WIFEXITED(status))
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof how, "was killed by signal %d",
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "BootCheckFailed",
			   "The recovered VM of replication %s did not pass the boot check: "
			   "'%.200s' %s.",
			   rg, cmd, how);
}

int vr_recover_cleanup_tests(struct vr_job_run *run, const char *rg, unsigned *removed_out)
{
	*removed_out = 0;
	char *parent = vr_asprintf("%s/%s", run->recovered_dir, rg);
	DIR *d = opendir(parent);
	if (!d) {
		int err = errno;
		free(parent);
		if (err == ENOENT)
			return 0;
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "TestCleanupFailed",
				   "The test images of replication %s could not be listed: %s", rg,
				   strerror(err));
	}
	int status = 0;
	struct dirent *e;
	while (!status && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "test-", 5) != 0)
			continue;
		char *dir = vr_asprintf("%s/%s", parent, e->d_name);
		if (remove_images(dir))
			status = vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "TestCleanupFailed",
					     "The test images in %.200s could not be removed.",
					     dir);
		else
			(*removed_out)++;
		free(dir);
	}
	closedir(d);
	free(parent);
	return status;
}

int64_t vr_recover_now_ms(void)
{
	return wall_ms();
}
