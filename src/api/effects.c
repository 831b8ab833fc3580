/* What a finished job changes besides its Task, by lane: applied by the
 * API in the transaction that records the job's end (internal_jobs.c), so
 * a job run twice acts once (docs/pipeline.md, section 3). */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/uuid.h"

enum effect_col {
	E_ID, E_NAME, E_KIND, E_ORG, E_VDC, E_RECOVERY, E_TEST, E_REPLICATION, E_PAUSED,
	E_HAS_INSTANCE,
};

/* The effect of a job of a replication's lane. */
static int replication_effect(struct vr_db *db, const char *rg, const char *action_token,
			      const char *task, const char *params, bool succeeded)
{
	enum vr_action action;
	if (vr_engine_action_parse(&action, action_token))
		return VR_DB_HARD;
	const char *id[] = {rg};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "effect_replication_lock", &res, 1, id);
	if (rc <= 0) {
		PQclear(res);
		return rc; /* gone: nothing left to change */
	}
	struct vr_rg_state s;
	memset(&s, 0, sizeof s);
	if (vr_engine_kind_parse(&s.kind, vr_db_str(res, 0, E_KIND)) ||
	    vr_engine_recovery_parse(&s.recovery, vr_db_str(res, 0, E_RECOVERY)) ||
	    vr_engine_test_recovery_parse(&s.test_recovery, vr_db_str(res, 0, E_TEST)) ||
	    vr_engine_replication_parse(&s.replication, vr_db_str(res, 0, E_REPLICATION))) {
		PQclear(res);
		return VR_DB_HARD;
	}
	s.paused = vr_db_bool(res, 0, E_PAUSED);
	s.has_instance = vr_db_bool(res, 0, E_HAS_INSTANCE);
	s.deleting = action == VR_ACTION_DELETE;
	PQclear(res);

	if (action == VR_ACTION_DELETE && succeeded) {
		rc = vr_db_exec(db, "effect_vapps_drop_all", NULL, 1, id);
		return rc < 0 ? rc : vr_db_exec(db, "effect_replication_delete", NULL, 1, id);
	}
	vr_engine_finish(&s, action, succeeded);
	const char *set[] = {rg, vr_engine_recovery_token(s.recovery),
			     vr_engine_test_recovery_token(s.test_recovery),
			     vr_engine_replication_token(s.replication), s.paused ? "true" : "false"};
	rc = vr_db_exec(db, "action_replication_set_state", NULL, 5, set);
	if (rc < 0 || !succeeded)
		return rc;
	bool power_on = strstr(params, "\"PowerOn\": false") == NULL;
	/* "InstanceId": "<uuid>" as the API wrote it (a checked UUID). */
	char instance[VR_UUID_LEN + 1] = "";
	const char *at = strstr(params, "\"InstanceId\": \"");
	if (at) {
		char text[VR_UUID_LEN + 1];
		snprintf(text, sizeof text, "%.*s", VR_UUID_LEN, at + strlen("\"InstanceId\": \""));
		if (vr_uuid_canon(instance, text) != 0)
			instance[0] = '\0';
	}
	const char *chosen = instance[0] ? instance : NULL;
	switch (action) {
	case VR_ACTION_FAILOVER:
	case VR_ACTION_PLANNED_MIGRATION: {
		const char *drop[] = {rg, "placeholder"};
		const char *add[] = {rg, "recovered", power_on ? "on" : "off", chosen};
		rc = vr_db_exec(db, "effect_vapps_drop", NULL, 2, drop);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_vapp_add", NULL, 4, add);
		break;
	}
	case VR_ACTION_TEST_FAILOVER: {
		const char *add[] = {rg, "test", power_on ? "on" : "off", chosen};
		const char *last[] = {rg, task};
		rc = vr_db_exec(db, "effect_vapp_add", NULL, 4, add);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_last_test", NULL, 2, last);
		break;
	}
	case VR_ACTION_TEST_CLEANUP: {
		const char *drop[] = {rg, "test"};
		rc = vr_db_exec(db, "effect_vapps_drop", NULL, 2, drop);
		break;
	}
	case VR_ACTION_REVERSE: {
		/* the failback replicates the recovered vApp back, on the same disks */
		PGresult *made = NULL;
		rc = vr_db_exec(db, "effect_failback_create", &made, 1, id);
		if (rc == 1) {
			const char *disks[] = {vr_db_str(made, 0, 0), rg};
			rc = vr_db_exec(db, "effect_failback_disks", NULL, 2, disks);
		}
		PQclear(made);
		break;
	}
	case VR_ACTION_MOVE: {
		const char *move[] = {rg, params};
		rc = vr_db_exec(db, "effect_replication_move", NULL, 2, move);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_disks_move", NULL, 2, move);
		break;
	}
	case VR_ACTION_CONFIGURE: {
		/* The server that created the replica disks holds the replication
		 * (docs/instances.md). */
		const char *take[] = {rg, task};
		rc = vr_db_exec(db, "effect_placeholder_add", NULL, 1, id);
		if (rc >= 0 && succeeded)
			rc = vr_db_exec(db, "effect_replica_server_take", NULL, 2, take);
		break;
	}
	case VR_ACTION_RECONFIGURE: {
		/* The settings the request named (docs/configure.md). */
		const char *change[] = {rg, params};
		rc = vr_db_exec(db, "effect_reconfigure", NULL, 2, change);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_retention_clear", NULL, 2, change);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_retention_set", NULL, 2, change);
		break;
	}
	default:
		break;
	}
	return rc;
}

/* The effect of a job of a peer's lane: the pair job ends the pairing;
 * the network mappings staged beside a setNetworkMappings job replace the
 * peer's when it succeeds, and go either way. */
static int peer_effect(struct vr_db *db, const char *peer, const char *action, const char *task,
		       const char *params, bool succeeded)
{
	(void)params;
	if (strcmp(action, "pair") == 0) {
		const char *set[] = {peer, succeeded ? "paired" : "error"};
		return vr_db_exec(db, "effect_peer_state", NULL, 2, set);
	}
	if (strcmp(action, "setNetworkMappings") != 0)
		return VR_DB_HARD;
	const char *apply[] = {peer, task};
	const char *unstage[] = {task};
	int rc = 0;
	if (succeeded) {
		rc = vr_db_exec(db, "effect_network_mappings_clear", NULL, 1, apply);
		if (rc >= 0)
			rc = vr_db_exec(db, "effect_network_mappings_apply", NULL, 2, apply);
	}
	return rc < 0 ? rc : vr_db_exec(db, "effect_network_mappings_unstage", NULL, 1, unstage);
}

/* The effect of a job of a VDC's lane: its recovery flags (A1). */
static int vdc_effect(struct vr_db *db, const char *vdc, const char *action, const char *task,
		      const char *params, bool succeeded)
{
	if (strcmp(action, "editRecoveryDetails") != 0)
		return VR_DB_HARD;
	const char *set[] = {vdc, params};
	return succeeded ? vr_db_exec(db, "effect_vdc_recovery_details", NULL, 2, set) : 0;
}

/* The effect of a job of a replica server's lane: unregistered, it runs
 * no more jobs, and another server stages what it staged (E3). */
static int server_effect(struct vr_db *db, const char *server, const char *action, const char *task,
			 const char *params, bool succeeded)
{
	if (strcmp(action, "unregisterServer") != 0)
		return VR_DB_HARD;
	if (!succeeded)
		return 0;
	const char *id[] = {server};
	int rc = vr_db_exec(db, "effect_server_unregister", NULL, 1, id);
	return rc < 0 ? rc : vr_db_exec(db, "effect_server_release", NULL, 1, id);
}

/* Lanes and the effects of their jobs. */
static const struct {
	const char *prefix;
	int (*effect)(struct vr_db *db, const char *id, const char *action, const char *task,
		      const char *params, bool succeeded);
} lanes[] = {
	{"replication:", replication_effect},
	{"peer:", peer_effect},
	{"vdc:", vdc_effect},
	{"server:", server_effect},
};

int vr_api_job_effect(struct vr_db *db, const char *lane, const char *action, const char *task,
		      const char *params, bool succeeded)
{
	for (size_t i = 0; i < sizeof lanes / sizeof lanes[0]; i++) {
		size_t n = strlen(lanes[i].prefix);
		if (strncmp(lane, lanes[i].prefix, n) == 0)
			return lanes[i].effect(db, lane + n, action, task, params, succeeded);
	}
	return 0;
}
