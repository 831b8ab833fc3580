/* Actions on a replication (U16-U19, planned migration, sync, pause,
 * resume): the state machine decides, and in one transaction the state
 * change, the Task and the job are written (docs/pipeline.md). A refused
 * precondition is a Task that ends in error, as the reference says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/log.h"
#include "vrcloud/uuid.h"

enum lock_col {
	L_ID, L_NAME, L_KIND, L_ORG, L_VDC, L_RECOVERY, L_TEST, L_REPLICATION, L_PAUSED,
	L_HAS_INSTANCE, L_FAILOVER, L_TEST_FAILOVER, L_PLANNED, L_REPLICATION_ON, L_DELETING,
	L_HAS_FAILBACK, L_PEER, L_SOURCE,
};

/* accept_in_transaction's status for an InstanceId that is not one of the
 * replication's: apart from the db statuses (VR_DB_HARD is VR_EINVAL's
 * value) and VR_ENOTFOUND. */
#define NO_SUCH_INSTANCE (-100)

static const char *const failover_types[] = {VR_MT_FAILOVER_PARAMS, NULL};
static const char *const test_failover_types[] = {VR_MT_TEST_FAILOVER_PARAMS, "application/*+xml",
						  VR_MT_FAILOVER_PARAMS, NULL};
/* Clients send failover with the type, a capitalised variant (types compare
 * case-insensitively), no Content-Type at all, or an empty element. */
static const struct vr_input_spec failover_spec = {
	"FailoverParams", VR_NS_VR, failover_types, true, true,
};
static const struct vr_input_spec test_failover_spec = {
	"TestFailoverParams", VR_NS_VR, test_failover_types, false, true,
};

static int load_state(PGresult *res, struct vr_rg_state *s, struct vr_vdc_flags *f)
{
	memset(s, 0, sizeof *s);
	if (vr_engine_kind_parse(&s->kind, vr_db_str(res, 0, L_KIND)) ||
	    vr_engine_recovery_parse(&s->recovery, vr_db_str(res, 0, L_RECOVERY)) ||
	    vr_engine_test_recovery_parse(&s->test_recovery, vr_db_str(res, 0, L_TEST)) ||
	    vr_engine_replication_parse(&s->replication, vr_db_str(res, 0, L_REPLICATION)))
		return VR_EINVAL;
	s->paused = vr_db_bool(res, 0, L_PAUSED);
	s->has_instance = vr_db_bool(res, 0, L_HAS_INSTANCE);
	s->deleting = vr_db_bool(res, 0, L_DELETING);
	s->has_failback = vr_db_bool(res, 0, L_HAS_FAILBACK);
	f->failover = vr_db_bool(res, 0, L_FAILOVER);
	f->test_failover = vr_db_bool(res, 0, L_TEST_FAILOVER);
	f->planned_migration = vr_db_bool(res, 0, L_PLANNED);
	f->replication = vr_db_bool(res, 0, L_REPLICATION_ON);
	return 0;
}

/* Read FailoverParams / TestFailoverParams into the job's parameters. */
static bool read_params(struct vr_request *req, const struct vr_input_spec *spec,
			struct vr_action_request *a, enum MHD_Result *reply)
{
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, spec, &doc, reply))
		return false;
	bool power_on = true, synchronize = false;
	char instance[VR_UUID_LEN + 1] = "";
	if (doc) {
		xmlNodePtr root = xmlDocGetRootElement(doc);
		vr_input_child_bool(root, "PowerOn", &power_on);
		vr_input_child_bool(root, "Synchronize", &synchronize);
		xmlChar *id = vr_input_child_text(root, "InstanceId");
		bool bad_id = id && vr_uuid_canon(instance, (const char *)id) != 0;
		xmlFree(id);
		vr_api_read_operation_key(root, a->operation_key);
		xmlFreeDoc(doc);
		if (bad_id) {
			*reply = vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
						"InstanceId must be the id of one of the replication's "
						"instances (see its /instances).");
			return false;
		}
	}
	snprintf(a->instance_id, sizeof a->instance_id, "%s", instance);
	snprintf(a->params, sizeof a->params,
		 "{\"PowerOn\": %s, \"Synchronize\": %s, \"InstanceId\": %s%s%s}",
		 power_on ? "true" : "false", synchronize ? "true" : "false", instance[0] ? "\"" : "",
		 instance[0] ? instance : "null", instance[0] ? "\"" : "");
	return true;
}

/* The job's parameters: a's, with the replication's peer added as
 * "PeerId" (the worker sends the site its commands with it) and, for a
 * failback replication, "SourceReplicationId" (the replication it sends
 * back, whose recovered disks the worker reads: docs/recovery.md). */
static char *job_params_of(const char *params, const char *peer);

static char *job_params(const char *params, const char *peer, const char *source)
{
	char *base = job_params_of(params, peer);
	if (!source || !source[0])
		return base;
	char *with = vr_asprintf("{\"SourceReplicationId\": \"%s\", %s", source, base + 1);
	free(base);
	return with;
}

static char *job_params_of(const char *params, const char *peer)
{
	const char *rest = params;
	while (*rest == ' ')
		rest++;
	if (*rest == '{')
		rest++;
	while (*rest == ' ')
		rest++;
	if (*rest == '\0' || *rest == '}')
		return vr_asprintf("{\"PeerId\": \"%s\"}", peer);
	return vr_asprintf("{\"PeerId\": \"%s\", %s", peer, rest);
}

/* The accepting transaction. Returns 0 with task_out (and *job_out when a
 * job was made), or a negative db status / VR_ENOTFOUND / VR_EDB. */
static int accept_in_transaction(struct vr_request *req, struct vr_db *db,
				 const struct vr_action_request *a, enum vr_rg_kind kind,
				 char task_out[VR_UUID_LEN + 1], char job_out[VR_UUID_LEN + 1],
				 char lane_out[64])
{
	job_out[0] = '\0';
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	PGresult *rg = NULL, *res = NULL;
	if (a->operation_key[0]) {
		const char *key[] = {req->who.user_id, a->operation_key};
		rc = vr_db_exec(db, "action_task_by_key", &res, 2, key);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			snprintf(task_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
			PQclear(res);
			vr_db_rollback(db);
			return 0;
		}
		PQclear(res);
		res = NULL;
	}
	const char *lock[] = {req->ids[0], vr_request_scope(req), vr_engine_kind_token(kind)};
	rc = vr_db_exec(db, "action_replication_lock", &rg, 3, lock);
	if (rc <= 0) {
		rc = rc < 0 ? rc : VR_ENOTFOUND;
		goto fail;
	}
	if (a->instance_id[0]) {
		const char *of[] = {a->instance_id, req->ids[0]};
		rc = vr_db_exec(db, "action_instance_of", NULL, 2, of);
		if (rc <= 0) {
			rc = rc < 0 ? rc : NO_SUCH_INSTANCE;
			goto fail;
		}
	}
	struct vr_rg_state state;
	struct vr_vdc_flags flags;
	if (load_state(rg, &state, &flags)) {
		vr_log_error("replication_state_unreadable", "replication", req->ids[0]);
		rc = VR_EDB;
		goto fail;
	}
	const char *refused_code = NULL;
	const struct vr_engine_refusal *refusal = NULL;
	if (vr_engine_check(&state, &flags, a->action, &refusal))
		refused_code = refusal->vendor_code;

	char *operation = vr_asprintf("%s %s", a->operation, vr_db_str(rg, 0, L_NAME));
	const char *task[] = {vr_db_str(rg, 0, L_ORG),
			      req->who.user_id,
			      req->who.user_name,
			      strcmp(vr_db_str(rg, 0, L_KIND), "failback") == 0 ? "failbackReplication"
										 : "replication",
			      req->ids[0],
			      vr_db_str(rg, 0, L_NAME),
			      operation,
			      a->operation_name,
			      a->operation_key[0] ? a->operation_key : NULL};
	rc = vr_db_exec(db, "action_task_insert", &res, 9, task);
	free(operation);
	if (rc != 1) {
		rc = rc < 0 ? rc : VR_DB_HARD;
		goto fail;
	}
	snprintf(task_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	res = NULL;

	if (refused_code) {
		char major[8];
		snprintf(major, sizeof major, "%u", refusal->major);
		const char *refuse[] = {task_out, major, refusal->minor, refusal->vendor_code,
					refusal->message};
		rc = vr_db_exec(db, "action_task_refuse", NULL, 5, refuse);
	} else {
		struct vr_rg_state prior = state; /* put back if the job is canceled */
		vr_engine_begin(&state, a->action);
		const char *set[] = {req->ids[0], vr_engine_recovery_token(state.recovery),
				     vr_engine_test_recovery_token(state.test_recovery),
				     vr_engine_replication_token(state.replication),
				     state.paused ? "true" : "false"};
		rc = vr_db_exec(db, "action_replication_set_state", NULL, 5, set);
		snprintf(lane_out, 64, "replication:%s", req->ids[0]);
		char *params = job_params(a->params, vr_db_str(rg, 0, L_PEER),
					  vr_db_str(rg, 0, L_SOURCE));
		const char *job[] = {task_out, vr_db_str(rg, 0, L_ORG), lane_out,
				     vr_engine_action_token(a->action), params};
		if (rc >= 0)
			rc = vr_db_exec(db, "action_job_insert", &res, 5, job);
		free(params);
		if (rc == 1) {
			snprintf(job_out, VR_UUID_LEN + 1, "%s", vr_db_str(res, 0, 0));
			rc = vr_api_job_record_prior(db, job_out, &prior);
		}
	}
	if (rc < 0)
		goto fail;
	PQclear(res);
	PQclear(rg);
	return vr_db_commit(db);
fail:
	PQclear(res);
	PQclear(rg);
	vr_db_rollback(db);
	return rc;
}

enum MHD_Result vr_api_accept_action(struct vr_request *req, const struct vr_action_request *a)
{
	return vr_api_accept_action_of(req, a, VR_RG_INCOMING);
}

enum MHD_Result vr_api_accept_action_of(struct vr_request *req, const struct vr_action_request *a,
					enum vr_rg_kind kind)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	char task[VR_UUID_LEN + 1], job[VR_UUID_LEN + 1], lane[64] = "";
	int rc = VR_DB_SOFT;
	/* Serialization failures and lost connections are retried. */
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		rc = accept_in_transaction(req, db, a, kind, task, job, lane);
		/* Two requests with one operationKey: the loser finds the
		 * winner's Task on the next attempt. */
		if (rc == VR_DB_HARD && a->operation_key[0] &&
		    strcmp(vr_db_last_sqlstate(db), "23505") == 0)
			rc = VR_DB_SOFT;
	}
	if (rc == VR_ENOTFOUND)
		return vr_reply_not_found(
			req, kind == VR_RG_FAILBACK ? "failback replication" : "replication",
			req->ids[0]);
	if (rc == NO_SUCH_INSTANCE)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				      "InstanceId %s is not an instance of this replication (see its "
				      "/instances).",
				      a->instance_id);
	if (rc < 0)
		return rc == VR_EDB ? vr_reply_err(req, VR_EDB) : vr_reply_db(req, rc);
	if (job[0])
		vr_api_publish_lane(req, lane);
	return vr_reply_task(req, task, MHD_HTTP_ACCEPTED);
}

enum MHD_Result vr_api_replication_failover(struct vr_request *req)
{
	struct vr_action_request a = {VR_ACTION_FAILOVER, "Failover of replication",
				   "hcsFailover", "", "", ""};
	enum MHD_Result reply;
	if (!read_params(req, &failover_spec, &a, &reply))
		return reply;
	return vr_api_accept_action(req, &a);
}

enum MHD_Result vr_api_replication_planned_migration(struct vr_request *req)
{
	struct vr_action_request a = {VR_ACTION_PLANNED_MIGRATION,
				   "Planned migration of replication", "hcsPlannedMigration",
				   "", "", ""};
	enum MHD_Result reply;
	if (!read_params(req, &failover_spec, &a, &reply))
		return reply;
	return vr_api_accept_action(req, &a);
}

enum MHD_Result vr_api_replication_test_failover(struct vr_request *req)
{
	struct vr_action_request a = {VR_ACTION_TEST_FAILOVER, "Test failover of replication",
				   "hcsTestFailover", "", "", ""};
	enum MHD_Result reply;
	if (!read_params(req, &test_failover_spec, &a, &reply))
		return reply;
	return vr_api_accept_action(req, &a);
}

/* The next ones take no parameters; any body and Content-Type is ignored
 * (clients send the test-failover body to testCleanup). */
static enum MHD_Result simple_action(struct vr_request *req, enum vr_action action,
				     const char *operation, const char *operation_name)
{
	struct vr_action_request a = {action, operation, operation_name, "{}", "", ""};
	return vr_api_accept_action(req, &a);
}

enum MHD_Result vr_api_replication_test_cleanup(struct vr_request *req)
{
	return simple_action(req, VR_ACTION_TEST_CLEANUP, "Test cleanup of replication",
			     "hcsTestCleanup");
}

enum MHD_Result vr_api_replication_sync(struct vr_request *req)
{
	return simple_action(req, VR_ACTION_SYNC, "Synchronization of replication", "hcsSync");
}

enum MHD_Result vr_api_replication_pause(struct vr_request *req)
{
	return simple_action(req, VR_ACTION_PAUSE, "Pause of replication", "hcsPause");
}

enum MHD_Result vr_api_replication_resume(struct vr_request *req)
{
	return simple_action(req, VR_ACTION_RESUME, "Resume of replication", "hcsResume");
}

enum MHD_Result vr_api_replication_delete(struct vr_request *req)
{
	return simple_action(req, VR_ACTION_DELETE, "Removal of replication", "hcsDelete");
}
