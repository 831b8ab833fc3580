/* Internals of the api module: handlers (one file per resource), media
 * types, and the rendering helpers they share. */
#ifndef VRCLOUD_API_API_H
#define VRCLOUD_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "vrcloud/engine.h"
#include "vrcloud/http.h"
#include "vrcloud/uuid.h"
#include "vrcloud/xml.h"

#define VR_MT_REFERENCES "application/vnd.vmware.vcloud.query.references+xml"
#define VR_MT_RECORDS "application/vnd.vmware.vcloud.query.records+xml"
#define VR_MT_SESSION "application/vnd.vmware.vcloud.session+xml"
#define VR_MT_ORG_LIST "application/vnd.vmware.vcloud.orgList+xml"
#define VR_MT_ORG "application/vnd.vmware.vcloud.org+xml"
#define VR_MT_VDC "application/vnd.vmware.vcloud.vdc+xml"
#define VR_MT_TASK "application/vnd.vmware.vcloud.task+xml"
#define VR_MT_TASKS_LIST "application/vnd.vmware.vcloud.tasksList+xml"
#define VR_MT_USER "application/vnd.vmware.admin.user+xml"
#define VR_MT_QUERY_LIST "application/vnd.vmware.vcloud.query.queryList+xml"
#define VR_MT_ENTITY "application/vnd.vmware.vcloud.entity+xml"
#define VR_MT_ADMIN "application/vnd.vmware.admin.vcloud+xml"
#define VR_MT_EXTENSION "application/vnd.vmware.admin.vmwExtension+xml"
#define VR_MT_VAPP "application/vnd.vmware.vcloud.vApp+xml"
#define VR_MT_RG "application/vnd.vmware.hcs.replicationGroup+xml"
#define VR_MT_FRG "application/vnd.vmware.hcs.failbackReplicationGroup+xml"
#define VR_MT_INSTANCES "application/vnd.vmware.hcs.replicationGroupInstanceList+xml"
#define VR_MT_DETAILS "application/vnd.vmware.hcs.adminReplicationGroupDetails+xml"
#define VR_MT_PEER "application/vnd.vmware.hcs.peer+xml"
#define VR_MT_NETWORK_MAPPINGS "application/vnd.vmware.hcs.networkMappings+xml"
#define VR_MT_RECOVERY_DETAILS "application/vnd.vmware.hcs.vrRecoveryDetails+xml"
#define VR_MT_FAILOVER_PARAMS "application/vnd.vmware.hcs.failoverParams+xml"
#define VR_MT_TEST_FAILOVER_PARAMS "application/vnd.vmware.hcs.testFailoverParams+xml"
#define VR_MT_EDIT_RECOVERY_PARAMS "application/vnd.vmware.hcs.editRecoveryDetailsParams+xml"
#define VR_MT_NODES "application/vnd.vmware.hcs.nodes+xml"
#define VR_MT_VR_SERVER "application/vnd.vmware.hcs.vrServer+xml"
#define VR_MT_INTERNAL "application/vnd.vrcloud.internal+xml"
#define VR_NS_INTERNAL "urn:vrcloud:internal:1"
#define VR_MT_PAIR_PARAMS "application/vnd.vmware.hcs.pairVcWithVdcParams+xml"
#define VR_MT_SPEC_PARAMS "application/vnd.vmware.hcs.replicationGroupSpecParams+xml"
#define VR_MT_RECONFIGURE_PARAMS "application/vnd.vmware.hcs.reconfigureReplicationGroupParams+xml"
/* vrcloud's public extension elements (schema/extension-1.xsd). */
#define VR_NS_EXTENSION_VRCLOUD "urn:vrcloud:extension:1"

/* Media types the internal API accepts (internal_servers.c). */
extern const char *const vr_internal_media_types[];

/* --- rendering helpers (render.c) ------------------------------------ */

/* <elem rel type href name/>; NULL attributes are left out. */
void vr_render_link(struct vr_xml *w, const char *elem, const char *rel, const char *type,
		    const char *href, const char *name);
/* <elem href id type name/> */
void vr_render_ref(struct vr_xml *w, const char *elem, const char *type, const char *href,
		   const char *id, const char *name);
/* Finish a writer into a response (NULL on failure). Frees w. */
struct MHD_Response *vr_response_from_xml(struct vr_xml *w);
/* Finish a writer and reply 200 with it. */
enum MHD_Result vr_reply_xml(struct vr_request *req, struct vr_xml *w, const char *media_type);

/* Paging of References and QueryResultRecords (vCD style, 1-based). */
struct vr_page {
	long page;
	long page_size;
	long long total;
};
#define VR_PAGE_SIZE_DEFAULT 25
#define VR_PAGE_SIZE_MAX 128

/* Read page/pageSize; on bad values queues a 400 and returns false. */
bool vr_page_parse(struct vr_request *req, struct vr_page *page, enum MHD_Result *reply_out);
/* LIMIT and OFFSET as statement parameters. */
void vr_page_sql(const struct vr_page *page, char limit[24], char offset[24]);
/* Open a container root (References, QueryResultRecords, VrcsNodes) in
 * namespace ns and write its paging Links. Returns true when the page is
 * in range (children may follow). */
bool vr_render_container(struct vr_request *req, struct vr_xml *w, const char *ns,
			 const char *root, const char *media_type, const char *name,
			 const struct vr_page *page, const char *path);

/* A References page from rows (total, id, name) of a paged statement:
 * each Reference gets type ref_type, id urn:vcloud:<urn_kind>:<id>, and
 * href <public url><ref_path_prefix><id>. */
enum MHD_Result vr_reply_references(struct vr_request *req, const char *stmt,
				    const char *const *params, int nparams, const char *path,
				    const char *name, const char *ref_type, const char *urn_kind,
				    const char *ref_path_prefix);

/* Open a document root in namespace ns (VR documents also declare the
 * vcloud prefix) with its href and type. */
void vr_render_root(struct vr_xml *w, const char *ns, const char *root, const char *href,
		    const char *media_type);

/* A References listing that hangs off a parent object (org, VDC, peer):
 * 404 unless the parent (req->ids[0]) is visible through visible_stmt,
 * then the page of stmt with parameters (parent id[, kind]). parent_path
 * is e.g. "/api/org/"; name the listing's last path segment. */
struct vr_listing {
	const char *visible_stmt;
	const char *what;
	const char *parent_path;
	const char *stmt;
	const char *kind;
	const char *name;
	const char *ref_type;
	const char *urn_kind;
	const char *ref_path_prefix;
};
enum MHD_Result vr_reply_listing(struct vr_request *req, const struct vr_listing *listing);

/* Rows of stmt (parameter: the id) that belong to an object visible
 * through visible_stmt. Returns true with *res_out and *rows_out set, or
 * false after queueing a reply (404, 503, 500). */
bool vr_api_fetch_children(struct vr_request *req, const char *visible_stmt, const char *what,
			   const char *stmt, PGresult **res_out, int *rows_out,
			   enum MHD_Result *reply_out);

/* Reply with Task id: 200, or 202 with a Location header for a request
 * just accepted. */
enum MHD_Result vr_reply_task(struct vr_request *req, const char *id, unsigned status_code);

/* A secret shown once, in the 202 answer of the request that made it: as
 * the response header `header` and as the element `element` of vrcloud's
 * extension namespace in a VCloudExtension of the Task. */
struct vr_task_secret {
	const char *header;
	const char *element;
	const char *value;
};

/* Reply 202 with Task id, as vr_reply_task does, and the secret. */
enum MHD_Result vr_reply_task_secret(struct vr_request *req, const char *id,
				     const struct vr_task_secret *secret);

/* Open <elem required="false"> (elem: "VCloudExtension", prefixed in VR
 * documents) and in it <name xmlns="urn:vrcloud:extension:1">; close both
 * with two vr_xml_end. */
void vr_render_extension(struct vr_xml *w, const char *elem, const char *name);

/* Publish the head of a job lane to the job stream when it waits to be
 * (publish.c). Failures are left to the relay, which publishes again. */
void vr_api_publish_lane(struct vr_request *req, const char *lane);

/* An action on a replication, once its request body is read
 * (actions.c). */
struct vr_action_request {
	enum vr_action action;
	const char *operation;      /* "Failover of replication" */
	const char *operation_name; /* operationName */
	char params[1024];          /* the job's parameters, JSON */
	char operation_key[129];    /* "" when none */
	char instance_id[VR_UUID_LEN + 1]; /* InstanceId asked for, "" when none */
};

/* Accept action a on replication req->ids[0]: the state machine decides,
 * and the state change, the Task and the job are written in one
 * transaction; replies 202 + Task (or the first Task of a repeated
 * operationKey), 404 for an unknown or foreign replication. */
enum MHD_Result vr_api_accept_action(struct vr_request *req, const struct vr_action_request *a);
/* The same on a replication of kind kind (vr_api_accept_action: incoming);
 * one of the other kind is answered as a missing one. */
enum MHD_Result vr_api_accept_action_of(struct vr_request *req, const struct vr_action_request *a,
					enum vr_rg_kind kind);

/* Size of an operationKey buffer: keys are cut at 128 bytes. */
#define VR_OPERATION_KEY_SIZE 129
/* Size of a lane buffer ("replication:<id>" and the like). */
#define VR_LANE_SIZE 64

/* The operationKey attribute of a request document's root (root may be
 * NULL), "" when it has none (accept.c). */
void vr_api_read_operation_key(xmlNodePtr root, char out[VR_OPERATION_KEY_SIZE]);

/* A job on a lane that is not a replication's: a peer's, a VDC's, a
 * replica server's (accept.c). */
struct vr_db;
struct vr_lane_request {
	/* $1 req->ids[0], $2 the caller's org scope: the object under a row
	 * lock, one row: its org (column 0) and name (1), then whatever check
	 * reads; no row answers 404 */
	const char *lock_stmt;
	const char *what;           /* names the object in a 404: "peer" */
	const char *owner_kind;     /* the Task's Owner: "peer", "vdc", "vrServer" */
	const char *lane_prefix;    /* "peer:": the lane is prefix + id */
	const char *action;         /* the job's action */
	const char *operation;      /* "Network mappings of peer"; the name follows */
	const char *operation_name; /* the Task's operationName */
	const char *params;         /* the job's parameters, JSON; NULL: {} */
	char operation_key[VR_OPERATION_KEY_SIZE]; /* "" when none */
	/* NULL, or the refusal (an error Task, no job) the locked row earns */
	const struct vr_engine_refusal *(*check)(PGresult *locked);
	/* NULL, or what the accepted job needs written beside it in the same
	 * transaction (staged data); returns a db status */
	int (*stage)(struct vr_db *db, const char *job_id, const void *arg);
	const void *stage_arg;
};

/* Accept a on the object req->ids[0]: the Task (refused, or queued with
 * its job) in one transaction, published after the commit; replies 202 +
 * Task (or the first Task of a repeated operationKey), 404 when the lock
 * statement finds no object. */
enum MHD_Result vr_api_accept_lane(struct vr_request *req, const struct vr_lane_request *a);

/* Apply what the job (lane, action, task, params as JSON text) changes
 * besides its Task, inside the transaction that records its end
 * (effects.c). Returns a db status (>= 0 ok). */
struct vr_db;
int vr_api_job_effect(struct vr_db *db, const char *lane, const char *action, const char *task,
		      const char *params, bool succeeded);

/* The disk images a successful recovery job names in its JobResult
 * (result: the document's root; NULL: none), recorded with the vApp its
 * effect made (recovered.c). Returns a db status (>= 0 ok). */
int vr_api_job_recovered(struct vr_db *db, const char *lane, const char *action,
			 xmlNodePtr result);

/* A name a tenant gives (a VM, a site, a disk): 1 to max_chars characters
 * (UTF-8), not all spaces, no control characters (configure.c). */
bool vr_api_name_ok(const char *s, size_t max_chars);

/* Cancellation (cancel.c). Record, in the accepting transaction, the
 * replication state as it was before vr_engine_begin (prior) with job. */
int vr_api_job_record_prior(struct vr_db *db, const char *job, const struct vr_rg_state *prior);
/* Put back what accepting job (of lane, action) changed on its
 * replication, for a job that ends canceled: each state field the
 * acceptance changed returns to its recorded value while it still holds
 * the accepted one. *restored_out is false when the job recorded nothing
 * (a lane that is not a replication's, or a job accepted before jobs
 * recorded it). Returns a db status (>= 0 ok). */
int vr_api_job_restore(struct vr_db *db, const char *job, const char *lane, const char *action,
		       bool *restored_out);
/* What a canceled job leaves: vr_api_job_restore, or, for a job that
 * recorded nothing, the effect of a failure (vr_api_job_effect). */
int vr_api_job_cancel_effect(struct vr_db *db, const char *job, const char *lane,
			     const char *action, const char *task, const char *params);

/* Map a negative vr_db_exec status to a reply. */
enum MHD_Result vr_reply_db(struct vr_request *req, int status);

/* Look up whether an object is visible to the caller. Returns 1 (visible),
 * 0 (missing or foreign; a 404 was queued), or -1 (an error was queued). */
int vr_api_visible(struct vr_request *req, const char *stmt, const char *what,
		   enum MHD_Result *reply_out);

/* --- handlers -------------------------------------------------------- */

enum MHD_Result vr_api_versions_get(struct vr_request *req);
enum MHD_Result vr_api_health_get(struct vr_request *req);
enum MHD_Result vr_api_metrics_get(struct vr_request *req);
enum MHD_Result vr_api_sessions_post(struct vr_request *req);
enum MHD_Result vr_api_session_get(struct vr_request *req);
enum MHD_Result vr_api_session_delete(struct vr_request *req);
enum MHD_Result vr_api_orgs_get(struct vr_request *req);
enum MHD_Result vr_api_org_get(struct vr_request *req);
enum MHD_Result vr_api_org_replications_get(struct vr_request *req);
enum MHD_Result vr_api_org_failbackreplications_get(struct vr_request *req);
enum MHD_Result vr_api_org_enabled_vdcs_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_replications_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_failbackreplications_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_peers_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_recovery_details_get(struct vr_request *req);
enum MHD_Result vr_api_peer_get(struct vr_request *req);
enum MHD_Result vr_api_peer_replications_get(struct vr_request *req);
enum MHD_Result vr_api_peer_failbackreplications_get(struct vr_request *req);
enum MHD_Result vr_api_peer_network_mappings_get(struct vr_request *req);
enum MHD_Result vr_api_replication_get(struct vr_request *req);
enum MHD_Result vr_api_failbackreplication_get(struct vr_request *req);
enum MHD_Result vr_api_replication_instances_get(struct vr_request *req);
enum MHD_Result vr_api_replication_details_get(struct vr_request *req);
enum MHD_Result vr_api_task_get(struct vr_request *req);
enum MHD_Result vr_api_tasks_list_get(struct vr_request *req);
enum MHD_Result vr_api_task_cancel(struct vr_request *req);
enum MHD_Result vr_api_admin_vdcs_query_get(struct vr_request *req);
enum MHD_Result vr_api_admin_nodes_get(struct vr_request *req);
enum MHD_Result vr_api_internal_server_register(struct vr_request *req);
enum MHD_Result vr_api_internal_server_heartbeat(struct vr_request *req);
enum MHD_Result vr_api_internal_server_leave(struct vr_request *req);
enum MHD_Result vr_api_replication_failover(struct vr_request *req);
enum MHD_Result vr_api_replication_planned_migration(struct vr_request *req);
enum MHD_Result vr_api_replication_test_failover(struct vr_request *req);
enum MHD_Result vr_api_replication_test_cleanup(struct vr_request *req);
enum MHD_Result vr_api_replication_sync(struct vr_request *req);
enum MHD_Result vr_api_replication_pause(struct vr_request *req);
enum MHD_Result vr_api_replication_resume(struct vr_request *req);
enum MHD_Result vr_api_replication_delete(struct vr_request *req);
enum MHD_Result vr_api_internal_job_start(struct vr_request *req);
enum MHD_Result vr_api_internal_job_progress(struct vr_request *req);
enum MHD_Result vr_api_internal_job_complete(struct vr_request *req);
enum MHD_Result vr_api_internal_job_dead(struct vr_request *req);
enum MHD_Result vr_api_replication_reverse(struct vr_request *req);
enum MHD_Result vr_api_failbackreplication_delete(struct vr_request *req);
enum MHD_Result vr_api_failbackreplication_sync(struct vr_request *req);
enum MHD_Result vr_api_failbackreplication_pause(struct vr_request *req);
enum MHD_Result vr_api_failbackreplication_resume(struct vr_request *req);
enum MHD_Result vr_api_peer_network_mappings_put(struct vr_request *req);
enum MHD_Result vr_api_admin_vdc_edit_recovery_details(struct vr_request *req);
enum MHD_Result vr_api_admin_replication_move(struct vr_request *req);
enum MHD_Result vr_api_admin_vr_servers_get(struct vr_request *req);
enum MHD_Result vr_api_admin_vr_server_get(struct vr_request *req);
enum MHD_Result vr_api_admin_vr_server_delete(struct vr_request *req);
enum MHD_Result vr_api_admin_vr_server_statistics_get(struct vr_request *req);
enum MHD_Result vr_api_vdc_peers_post(struct vr_request *req);
enum MHD_Result vr_api_vdc_replications_post(struct vr_request *req);
enum MHD_Result vr_api_replication_reconfigure(struct vr_request *req);

/* --- internal API of proxies (internal_sites.c) ------------------------ */

/* POST /api/internal/sites/verify: a site credential to its peer, org,
 * VDC and site UUID; 403 SITE_CREDENTIAL_INVALID otherwise. */
enum MHD_Result vr_api_internal_site_verify(struct vr_request *req);
/* POST /api/internal/replications/{id}/server: where a site's data
 * connection for a replication goes (proxies only; the replication must
 * belong to the peer named in the body). */
enum MHD_Result vr_api_internal_replication_server(struct vr_request *req);


/* --- instances (internal_instances.c, retention.c) -------------------- */

/* One retention rule: `instances` buckets of `distance_minutes` each. */
struct vr_retention_rule {
	long instances;
	long distance_minutes;
};

/* Which of n instances (times: their points in time in Unix seconds,
 * newest recorded first; pinned may be NULL) the rules keep, in order
 * from fine to coarse (docs/instances.md): keep[0] (the newest) and every
 * pinned one always. Returns 0, or -1 (a rule below 1, or no memory). */
int vr_retention_apply(const struct vr_retention_rule *rules, size_t nrules,
		       const int64_t *times, const bool *pinned, size_t n, bool *keep);

/* POST /api/internal/replications/{id}/instances: a replica server records
 * the instance it committed; the answer lists the instances to keep. */
enum MHD_Result vr_api_internal_replication_instances(struct vr_request *req);

#endif
