/* The action table: one function per job action. A job's effect on the
 * replication's records is applied by the API when the job completes
 * (docs/pipeline.md, section 3); each function here is the replica
 * server's part of its action, reporting its phases as it goes. The
 * engine's action tokens (src/engine/state.c) name the entries of the
 * replication lanes; "pair" is the one action of a peer's lane. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/commands.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/store.h"
#include "vrcloud/uuid.h"
#include "vrcloud/worker.h"
#include "worker/recover.h"

int vr_job_report(struct vr_job_run *run, int progress, const char *message)
{
	if (!run->report)
		return 0;
	return run->report(run, progress, message);
}

int vr_job_fail(struct vr_job_run *run, int major, const char *minor, const char *vendor,
		const char *fmt, ...)
{
	run->error_major = major;
	snprintf(run->error_minor, sizeof run->error_minor, "%s", minor ? minor : "");
	snprintf(run->error_vendor, sizeof run->error_vendor, "%s", vendor ? vendor : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(run->error_message, sizeof run->error_message, fmt, ap);
	va_end(ap);
	return VR_JOB_FAILED;
}

/* Report the phases of a job at 10, 50 and 90 per cent; 0 when all were
 * reported, else the status the job stops with. */
static int phases(struct vr_job_run *run, const char *first, const char *second, const char *third)
{
	static const int progress[] = {10, 50, 90};
	const char *messages[] = {first, second, third};
	for (int i = 0; i < 3; i++) {
		int status = vr_job_report(run, progress[i], messages[i]);
		if (status)
			return status;
	}
	return VR_JOB_SUCCEEDED;
}

/* The replication that the job's lane ("replication:<id>") names. */
static int lane_replication(struct vr_job_run *run, char id_out[VR_UUID_LEN + 1])
{
	static const char prefix[] = "replication:";
	const char *lane = run->job->lane;
	if (strncmp(lane, prefix, sizeof prefix - 1) != 0 ||
	    vr_uuid_canon(id_out, lane + sizeof prefix - 1) != 0)
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobLaneInvalid",
				   "The job's lane '%.100s' names no replication.", lane);
	return 0;
}

/* The peer that the job's lane ("peer:<id>") names. */
static int lane_peer(struct vr_job_run *run, char id_out[VR_UUID_LEN + 1])
{
	static const char prefix[] = "peer:";
	const char *lane = run->job->lane;
	if (strncmp(lane, prefix, sizeof prefix - 1) != 0 ||
	    vr_uuid_canon(id_out, lane + sizeof prefix - 1) != 0)
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobLaneInvalid",
				   "The job's lane '%.100s' names no peer.", lane);
	return 0;
}

static int recovery_params(struct vr_job_run *run, struct vr_recovery_params *params)
{
	if (vr_worker_recovery_params_parse(params, run->job->params) != 0)
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobParamsInvalid",
				   "The parameters of the %s job are not valid.", run->job->action);
	return 0;
}

static const char *instance_text(const struct vr_recovery_params *params, char *buf, size_t size)
{
	if (!params->instance_id[0])
		return "the newest instance";
	snprintf(buf, size, "instance %s", params->instance_id);
	return buf;
}

/* Queue command name for the replication rg's site (docs/tunnels.md): the
 * job goes on once Redis took it; the proxy holding the site delivers it
 * (or, the site being away, its next control connection does) and logs the
 * agent's ack. extra: further key, value pairs ended by NULL (or NULL). */
static int site_command_with(struct vr_job_run *run, const char *rg, const char *name,
			     const char *const *extra)
{
	if (!run->redis)
		return 0;
	char peer[VR_UUID_LEN + 1], id[VR_UUID_LEN + 1];
	if (vr_worker_params_peer(peer, run->job->params))
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobParamsInvalid",
				   "The parameters of the %s job name no PeerId.",
				   run->job->action);
	const char *fields[16] = {"replication", rg};
	size_t n = 2;
	for (size_t i = 0; extra && extra[i] && n + 2 < sizeof fields / sizeof fields[0]; i += 2) {
		fields[n++] = extra[i];
		fields[n++] = extra[i + 1];
	}
	fields[n] = NULL;
	int rc = vr_tunnel_command_push(run->redis, run->tunnel_prefix, peer, name, fields, id);
	if (rc) {
		vr_log_warn("site_command_failed", "peer", peer, "command", name, "replication", rg,
			    "error", vr_err_str(rc));
		return vr_job_fail(run, 503, "SERVICE_UNAVAILABLE", "SiteCommandNotQueued",
				   "The %s command for the site of replication %s could not be "
				   "queued; try again.",
				   name, rg);
	}
	vr_log_info("site_command_queued", "peer", peer, "command", name, "id", id, "replication",
		    rg);
	return 0;
}

static int site_command(struct vr_job_run *run, const char *rg, const char *name)
{
	return site_command_with(run, rg, name, NULL);
}

/* The data of a recovery (recover.c): a fresh instance first when asked
 * (the site is sent `sync`, quiesced for a planned migration, and the job
 * waits for an instance whose point in time follows its start), then the
 * images, then the boot check of a VM to be powered on. */
static int recover_data(struct vr_job_run *run, const char *rg,
			const struct vr_recovery_params *params, bool sync, bool quiesce,
			bool allow_move, const char *kind)
{
	char synced[VR_UUID_LEN + 1] = "";
	const char *instance = params->instance_id;
	int rc = 0;
	if (sync) {
		int64_t start = vr_recover_now_ms();
		const char *quiesced[] = {"quiesce", "true", NULL};
		rc = site_command_with(run, rg, VR_COMMAND_SYNC, quiesce ? quiesced : NULL);
		if (!rc)
			rc = vr_recover_wait_instance(run, rg, start, synced);
		instance = synced;
	}
	if (!rc)
		rc = vr_job_report(run, 50, "Writing the disks of the recovered virtual machine");
	if (!rc)
		rc = vr_recover_export(run, rg, instance, allow_move, kind);
	if (!rc && params->power_on)
		rc = vr_recover_boot_check(run, rg);
	return rc;
}

/* failover, testFailover and plannedMigration share their shape. */
static int recovery(struct vr_job_run *run, const char *what, const char *recover_step,
		    bool always_sync, bool test)
{
	char rg[VR_UUID_LEN + 1];
	struct vr_recovery_params params;
	int rc = lane_replication(run, rg);
	if (!rc)
		rc = recovery_params(run, &params);
	if (rc)
		return rc;
	char instance[64], first[256], third[256];
	bool sync = always_sync || params.synchronize;
	snprintf(first, sizeof first, "%s of replication %s: %s", what, rg,
		 sync ? "synchronizing a last instance from the source site"
		      : "preparing the recovery");
	rc = vr_job_report(run, 10, first);
	if (rc)
		return rc;
	if (run->config && run->store_dir && run->recovered_dir) {
		rc = recover_data(run, rg, &params, sync, always_sync, !test,
				  test ? "test" : "recovered");
	} else if (test && params.synchronize) {
		rc = site_command(run, rg, VR_COMMAND_SYNC);
		if (!rc)
			rc = vr_job_report(run, 50, recover_step);
	} else {
		rc = vr_job_report(run, 50, recover_step);
	}
	if (rc)
		return rc;
	snprintf(third, sizeof third, "%s of replication %s: recovered from %s, %s", what, rg,
		 run->recovered_instance[0] ? run->recovered_instance
		 : sync			    ? "the synchronized instance"
					    : instance_text(&params, instance, sizeof instance),
		 params.power_on ? "powering on" : "left powered off");
	return vr_job_report(run, 90, third);
}

static int action_failover(struct vr_job_run *run)
{
	return recovery(run, "Failover", "Failover: building the recovered virtual machine", false,
			false);
}

static int action_test_failover(struct vr_job_run *run)
{
	return recovery(run, "Test failover",
			"Test failover: making an independent copy of the replica", false, true);
}

static int action_planned_migration(struct vr_job_run *run)
{
	return recovery(run, "Planned migration",
			"Planned migration: building the migrated virtual machine", true, false);
}

/* Actions whose parameters are not read: a lane check and three phases. */
static int simple(struct vr_job_run *run, const char *first, const char *second, const char *third)
{
	char rg[VR_UUID_LEN + 1];
	int rc = lane_replication(run, rg);
	if (rc)
		return rc;
	return phases(run, first, second, third);
}

static int action_test_cleanup(struct vr_job_run *run)
{
	char rg[VR_UUID_LEN + 1];
	int rc = lane_replication(run, rg);
	if (rc || !run->config || !run->recovered_dir)
		return rc ? rc
			  : phases(run, "Test cleanup: finding the test virtual machine",
				   "Test cleanup: removing the test copy",
				   "Test cleanup: the replication is ready for another test");
	rc = vr_job_report(run, 10, "Test cleanup: finding the test virtual machine");
	unsigned removed = 0;
	if (!rc)
		rc = vr_recover_cleanup_tests(run, rg, &removed);
	char done[160];
	snprintf(done, sizeof done,
		 "Test cleanup: %u test cop%s removed; the replication is ready for another test",
		 removed, removed == 1 ? "y" : "ies");
	return rc ? rc : vr_job_report(run, 90, done);
}

/* simple, with command name sent to the replication's site first. */
static int commanding(struct vr_job_run *run, const char *name, const char *first,
		      const char *second, const char *third)
{
	char rg[VR_UUID_LEN + 1];
	int rc = lane_replication(run, rg);
	if (!rc)
		rc = site_command(run, rg, name);
	if (rc)
		return rc;
	return phases(run, first, second, third);
}

/* The source replication a failback replication's job names
 * ("SourceReplicationId", which the API adds for failback replications). */
static bool failback_source(const struct vr_job_run *run, char out[VR_UUID_LEN + 1])
{
	static const char key[] = "\"SourceReplicationId\": \"";
	const char *at = run->job->params ? strstr(run->job->params, key) : NULL;
	if (!at)
		return false;
	char text[VR_UUID_LEN + 1];
	snprintf(text, sizeof text, "%.*s", VR_UUID_LEN, at + sizeof key - 1);
	return vr_uuid_canon(out, text) == 0;
}

static int action_sync(struct vr_job_run *run)
{
	char fb[VR_UUID_LEN + 1], source[VR_UUID_LEN + 1];
	if (run->config && run->recovered_dir && failback_source(run, source)) {
		const char *extra[] = {"source", source, NULL};
		int rc = lane_replication(run, fb);
		if (!rc)
			rc = site_command_with(run, fb, VR_COMMAND_START_FAILBACK_RECEIVE, extra);
		if (!rc)
			rc = vr_failback_sync(run, fb, source);
		return rc;
	}
	return commanding(run, VR_COMMAND_SYNC, "Sync: asking the source site for a new instance",
			  "Sync: waiting for the instance transfer",
			  "Sync: the new instance is committed");
}

static int action_pause(struct vr_job_run *run)
{
	return simple(run, "Pause: telling the source site to stop transfers",
		      "Pause: closing the transfer in flight", "Pause: the replication is paused");
}

static int action_resume(struct vr_job_run *run)
{
	return simple(run, "Resume: telling the source site to transfer again",
		      "Resume: checking the replica against the newest instance",
		      "Resume: the replication is running");
}

/* The value of the top-level key of the job's parameters (JSON as jsonb
 * prints it; the API writes these keys at the top level), past its colon
 * and spaces, or NULL. */
static const char *param_value(const char *json, const char *key)
{
	size_t len = strlen(key);
	for (const char *p = json ? strstr(json, key) : NULL; p; p = strstr(p + 1, key)) {
		if (p == json || p[-1] != '"' || p[len] != '"' || (p - 1 > json && p[-2] == '\\'))
			continue;
		const char *v = p + len + 1;
		while (*v == ' ')
			v++;
		if (*v != ':')
			continue;
		v++;
		while (*v == ' ')
			v++;
		return v;
	}
	return NULL;
}

static const char *param_bool(const char *json, const char *key)
{
	const char *v = param_value(json, key);
	if (v && strncmp(v, "true", 4) == 0)
		return "true";
	if (v && strncmp(v, "false", 5) == 0)
		return "false";
	return NULL;
}

/* "Rpo": minutes, as text into out; false when absent or not a number. */
static bool param_rpo(const char *json, char *out, size_t size)
{
	const char *v = param_value(json, "Rpo");
	size_t n = 0;
	while (v && v[n] >= '0' && v[n] <= '9' && n + 1 < size)
		n++;
	if (!n || n > 4)
		return false;
	snprintf(out, size, "%.*s", (int)n, v);
	return true;
}

/* "RetentionPolicy": [[count, minutes], ...] as the agent's rules
 * "COUNTxMINUTES,..." ("" for no rules); false when absent or malformed. */
static bool param_retention(const char *json, char *out, size_t size)
{
	const char *v = param_value(json, "RetentionPolicy");
	if (!v || *v++ != '[')
		return false;
	size_t n = 0;
	out[0] = '\0';
	for (;;) {
		while (*v == ' ' || *v == ',')
			v++;
		if (*v == ']')
			return true;
		unsigned long count, minutes;
		int used = 0;
		if (sscanf(v, "[%lu , %lu ]%n", &count, &minutes, &used) != 2 || !used)
			return false;
		v += used;
		int w = snprintf(out + n, size - n, "%s%lux%lu", n ? "," : "", count, minutes);
		if (w < 0 || (size_t)w >= size - n)
			return false;
		n += (size_t)w;
	}
}

/* The site hears of the change once every phase went through, as the job's
 * last step. The configChanged command carries the settings the request
 * changed (fields rpo, quiesce, compress, retention, docs/tunnels.md), which
 * the agent writes into its state of the replication. */
static int action_reconfigure(struct vr_job_run *run)
{
	int rc = simple(run, "Reconfigure: reading the new settings",
			"Reconfigure: sending the settings to the source site",
			"Reconfigure: the settings are in effect");
	char rg[VR_UUID_LEN + 1];
	if (!rc)
		rc = lane_replication(run, rg);
	if (rc)
		return rc;
	const char *params = run->job->params;
	char rpo[8], retention[512];
	const char *extra[12];
	size_t n = 0;
	const char *quiesce = param_bool(params, "QuiesceGuestEnabled");
	const char *compress = param_bool(params, "NetworkCompressionEnabled");
	if (param_rpo(params, rpo, sizeof rpo)) {
		extra[n++] = "rpo";
		extra[n++] = rpo;
	}
	if (quiesce) {
		extra[n++] = "quiesce";
		extra[n++] = quiesce;
	}
	if (compress) {
		extra[n++] = "compress";
		extra[n++] = compress;
	}
	if (param_retention(params, retention, sizeof retention)) {
		extra[n++] = "retention";
		extra[n++] = retention;
	}
	extra[n] = NULL;
	return site_command_with(run, rg, VR_COMMAND_CONFIG_CHANGED, extra);
}

/* Delete: the replica store goes with the replication (nothing to do when
 * it was never created here). */
static int action_delete(struct vr_job_run *run)
{
	char rg[VR_UUID_LEN + 1];
	int rc = lane_replication(run, rg);
	if (!rc)
		rc = vr_job_report(run, 10, "Delete: stopping the replication");
	if (!rc)
		rc = vr_job_report(run, 50, "Delete: removing the replica and its instances");
	if (rc)
		return rc;
	char *error = NULL;
	if (run->store_dir && vr_store_remove(run->store_dir, rg, &error) != 0) {
		vr_log_error("store_remove_failed", "replication", rg, "error", error);
		rc = vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "ReplicaStoreFailed",
				 "The replica of replication %s could not be removed: %.300s", rg,
				 error ? error : "I/O error");
		free(error);
		return rc;
	}
	/* the API drops the test vApp with the replication; a recovered VM stays */
	unsigned removed = 0;
	if (run->recovered_dir && run->config)
		rc = vr_recover_cleanup_tests(run, rg, &removed);
	if (rc)
		return rc;
	return vr_job_report(run, 90, "Delete: the replication is gone from this server");
}

static int action_reverse(struct vr_job_run *run)
{
	return simple(run, "Reverse: preparing the failback replication",
		      "Reverse: asking the source site for its disks",
		      "Reverse: the failback replication is configured");
}

static int action_move(struct vr_job_run *run)
{
	return simple(run, "Move: preparing the target datastore",
		      "Move: copying the replica files", "Move: the replica files are moved");
}

static int action_switch_server(struct vr_job_run *run)
{
	return simple(run, "Switch server: handing the replica over",
		      "Switch server: waiting for the new server to take the replica",
		      "Switch server: the new replica server stages the data");
}

/* The empty replica disks of the job's Disks in the replica store
 * (docs/replica-store.md); an existing store with the same disks is kept,
 * so a job run twice acts once. */
static int create_store(struct vr_job_run *run, const char *rg)
{
	if (!run->store_dir)
		return 0;
	struct vr_store_disk disks[VR_TX_MAX_DISKS];
	unsigned n = 0;
	if (vr_worker_params_disks(disks, VR_TX_MAX_DISKS, &n, run->job->params) != 0)
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobParamsInvalid",
				   "The parameters of the configure job name no valid Disks.");
	char *error = NULL;
	int rc = vr_store_create(run->store_dir, rg, disks, n, &error);
	if (rc == 0) {
		char count[16];
		snprintf(count, sizeof count, "%u", n);
		vr_log_info("store_created", "replication", rg, "disks", count, "store_dir",
			    run->store_dir);
		return 0;
	}
	vr_log_error("store_create_failed", "replication", rg, "error", error, "code",
		     vr_err_str(rc));
	rc = vr_job_fail(run, rc == VR_ECONFLICT ? 409 : 500,
			 rc == VR_ECONFLICT ? "CONFLICT" : "INTERNAL_SERVER_ERROR",
			 "ReplicaStoreFailed",
			 "The replica disks of replication %s could not be created: %.300s", rg,
			 error ? error : vr_err_str(rc));
	free(error);
	return rc;
}

static int action_configure(struct vr_job_run *run)
{
	char rg[VR_UUID_LEN + 1];
	int rc = lane_replication(run, rg);
	if (!rc)
		rc = vr_job_report(run, 10, "Configure: creating the placeholder");
	if (!rc)
		rc = vr_job_report(run, 50, "Configure: creating the empty replica disks");
	if (!rc)
		rc = create_store(run, rg);
	if (!rc)
		rc = vr_job_report(run, 90,
				   "Configure: the replication waits for its initial full sync");
	return rc;
}

/* Jobs of the other lanes: the object the lane ("<prefix><id>") names. */
static int lane_object(struct vr_job_run *run, const char *prefix, char id_out[VR_UUID_LEN + 1])
{
	const char *lane = run->job->lane;
	size_t n = strlen(prefix);
	if (strncmp(lane, prefix, n) != 0 || vr_uuid_canon(id_out, lane + n) != 0)
		return vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobLaneInvalid",
				   "The job's lane '%.100s' names no %.20s object.", lane, prefix);
	return 0;
}

/* A lane check and three phases, for the jobs of the other lanes. */
static int lane_phases(struct vr_job_run *run, const char *prefix, const char *first,
		       const char *second, const char *third)
{
	char id[VR_UUID_LEN + 1];
	int rc = lane_object(run, prefix, id);
	if (rc)
		return rc;
	return phases(run, first, second, third);
}

static int action_set_network_mappings(struct vr_job_run *run)
{
	return lane_phases(run, "peer:", "Network mappings: reading the new mappings",
			   "Network mappings: checking the target networks",
			   "Network mappings: the new mappings apply to the next recovery");
}

static int action_edit_recovery_details(struct vr_job_run *run)
{
	return lane_phases(run, "vdc:", "Recovery details: reading the new recovery types",
			   "Recovery details: checking the VDC's replications",
			   "Recovery details: the VDC allows the new recovery types");
}

static int action_unregister_server(struct vr_job_run *run)
{
	return lane_phases(run, "server:", "Unregister: stopping transfers to the replica server",
			   "Unregister: releasing the replications it stages",
			   "Unregister: the replica server is unregistered");
}

/* Pairing a site (docs/configure.md): the API marks the peer paired when
 * this succeeds, and the site then connects with its credential. */
static int action_pair(struct vr_job_run *run)
{
	char peer[VR_UUID_LEN + 1];
	int rc = lane_peer(run, peer);
	if (rc)
		return rc;
	char first[128], second[128], third[128];
	snprintf(first, sizeof first, "Pair of peer %s: checking the site's registration", peer);
	snprintf(second, sizeof second,
		 "Pair of peer %s: preparing the replication endpoint for the site", peer);
	snprintf(third, sizeof third, "Pair of peer %s: the site may connect with its credential",
		 peer);
	return phases(run, first, second, third);
}

const struct vr_job_action vr_worker_actions[] = {
	{"failover", action_failover},
	{"testFailover", action_test_failover},
	{"testCleanup", action_test_cleanup},
	{"plannedMigration", action_planned_migration},
	{"sync", action_sync},
	{"pause", action_pause},
	{"resume", action_resume},
	{"reconfigure", action_reconfigure},
	{"delete", action_delete},
	{"reverse", action_reverse},
	{"moveReplication", action_move},
	{"switchVrServer", action_switch_server},
	{"configure", action_configure},
	/* the jobs of peers, VDCs and replica servers (not of the engine) */
	{"setNetworkMappings", action_set_network_mappings},
	{"editRecoveryDetails", action_edit_recovery_details},
	{"unregisterServer", action_unregister_server},
	{"pair", action_pair},
	{NULL, NULL},
};

void vr_job_run_clear(struct vr_job_run *run)
{
	for (unsigned i = 0; i < run->ndisks; i++)
		free(run->disks[i].path);
	free(run->disks);
	run->disks = NULL;
	run->ndisks = 0;
	run->recovered_instance[0] = '\0';
}

const struct vr_job_action *vr_worker_action_find(const char *name)
{
	if (!name)
		return NULL;
	for (const struct vr_job_action *a = vr_worker_actions; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

int vr_worker_job_execute(struct vr_job_run *run, struct vr_worker_result *result_out)
{
	memset(result_out, 0, sizeof *result_out);
	run->error_major = 0;
	run->error_minor[0] = run->error_vendor[0] = run->error_message[0] = '\0';
	const struct vr_job_action *action = vr_worker_action_find(run->job->action);
	int status = action ? action->run(run)
			    : vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "UnknownJobAction",
					  "This replica server has no action '%.64s'.",
					  run->job->action);
	switch (status) {
	case VR_JOB_SUCCEEDED:
		result_out->outcome = VR_OUTCOME_SUCCESS;
		result_out->instance_id =
			run->recovered_instance[0] ? run->recovered_instance : NULL;
		result_out->disks = run->disks;
		result_out->ndisks = run->ndisks;
		break;
	case VR_JOB_FAILED:
		result_out->outcome = VR_OUTCOME_ERROR;
		result_out->major = run->error_major;
		result_out->minor = run->error_minor[0] ? run->error_minor : NULL;
		result_out->vendor = run->error_vendor[0] ? run->error_vendor : NULL;
		result_out->message = run->error_message[0] ? run->error_message : NULL;
		break;
	case VR_JOB_CANCELED:
		result_out->outcome = VR_OUTCOME_CANCELED;
		result_out->message = "The job was canceled.";
		break;
	case VR_JOB_LOST:
	case VR_JOB_ABORTED: break;
	default:
		/* An action returned something that is not a status: a defect,
		 * reported as the job's failure rather than hidden. */
		status = vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobActionFailed",
				     "The %s action ended without a status.", run->job->action);
		result_out->outcome = VR_OUTCOME_ERROR;
		result_out->major = run->error_major;
		result_out->minor = run->error_minor;
		result_out->vendor = run->error_vendor;
		result_out->message = run->error_message;
		break;
	}
	return status;
}
