/* The replication state machine: which action a replication (incoming
 * ReplicationGroup or FailbackReplicationGroup) accepts in which state, the
 * state it holds while the action's job runs, and the state it ends in.
 * Pure functions, no I/O: the API calls them inside the transaction that
 * reads and writes the replication row. docs/state-machine.md is the prose
 * version of the table in src/engine/state.c. */
#ifndef VRCLOUD_ENGINE_H
#define VRCLOUD_ENGINE_H

#include <stdbool.h>

/* What a tenant, the provider or the system asks of one replication. The
 * wire tokens (vr_engine_action_token) are the operation names of Tasks and
 * the action names of jobs. */
enum vr_action {
	VR_ACTION_FAILOVER,	     /* "failover" */
	VR_ACTION_TEST_FAILOVER,     /* "testFailover" */
	VR_ACTION_TEST_CLEANUP,	     /* "testCleanup" */
	VR_ACTION_PLANNED_MIGRATION, /* "plannedMigration" */
	VR_ACTION_SYNC,		     /* "sync": ask the source for a new instance now */
	VR_ACTION_PAUSE,	     /* "pause" */
	VR_ACTION_RESUME,	     /* "resume" */
	VR_ACTION_RECONFIGURE,	     /* "reconfigure": Rpo, quiescing, compression */
	VR_ACTION_DELETE,	     /* "delete" */
	VR_ACTION_REVERSE,	     /* "reverse": create the failback of a recovered VM */
	VR_ACTION_MOVE,		     /* "moveReplication": replica files to another datastore */
	VR_ACTION_SWITCH_SERVER,     /* "switchVrServer": another replica server stages the data */
	VR_ACTION_CONFIGURE,	     /* "configure": create the placeholder of a new replication */
	VR_ACTION_COUNT
};

/* replications.kind */
enum vr_rg_kind {
	VR_RG_INCOMING, /* "incoming": on-premises site -> cloud */
	VR_RG_FAILBACK, /* "failback": cloud -> on-premises site */
	VR_RG_KIND_COUNT
};

/* replications.recovery_state, the RecoveryState element. */
enum vr_recovery_state {
	VR_RECOVERY_UNKNOWN,	 /* "unknown": outcome of a recovery not known */
	VR_RECOVERY_NOT_STARTED, /* "notStarted" */
	VR_RECOVERY_IN_PROGRESS, /* "inProgress": a failover or planned migration runs */
	VR_RECOVERY_ERROR,	 /* "error": the last failover or planned migration failed */
	VR_RECOVERY_RECOVERED,	 /* "recovered": the VM runs in the cloud */
	VR_RECOVERY_COUNT
};

/* replications.test_recovery_state, the TestRecoveryState element. */
enum vr_test_recovery_state {
	VR_TEST_RECOVERY_UNKNOWN,	      /* "unknown" */
	VR_TEST_RECOVERY_NONE,		      /* "none": no test image */
	VR_TEST_RECOVERY_IN_PROGRESS,	      /* "testInProgress" */
	VR_TEST_RECOVERY_COMPLETE,	      /* "complete": a test image exists */
	VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS, /* "cleanupInProgress" */
	VR_TEST_RECOVERY_TEST_ERROR,	      /* "testError" */
	VR_TEST_RECOVERY_CLEANUP_ERROR,	      /* "cleanupError" */
	VR_TEST_RECOVERY_COUNT
};

/* replications.replication_state, the ReplicationState element: how the
 * data flow is doing. The data plane moves it between initialSync, fullSync,
 * ok and error; the engine sets initialSync when a replication is
 * configured, error when configuring fails and notActive once the VM has
 * been recovered. */
enum vr_replication_state {
	VR_REPLICATION_INITIAL_SYNC, /* "initialSync": no instance committed yet */
	VR_REPLICATION_FULL_SYNC,    /* "fullSync": a hash-compare resync runs */
	VR_REPLICATION_OK,	     /* "ok" */
	VR_REPLICATION_ERROR,	     /* "error" */
	VR_REPLICATION_NOT_ACTIVE,   /* "notActive": recovered, nothing replicates */
	VR_REPLICATION_COUNT
};

/* What the engine needs to know of one replication row. */
struct vr_rg_state {
	enum vr_rg_kind kind;
	enum vr_recovery_state recovery;
	enum vr_test_recovery_state test_recovery;
	enum vr_replication_state replication;
	bool paused;
	bool has_instance; /* a committed point-in-time instance exists */
	bool has_failback; /* a failback replication of this one exists */
	bool deleting;	   /* a delete has been accepted */
};

/* The recovery types the provider allows in the replication's VDC
 * (vdcs.*_enabled, VrRecoveryDetails). */
struct vr_vdc_flags {
	bool failover;
	bool test_failover;
	bool planned_migration;
	bool replication;
};

/* Why an action is refused: the Error a failed Task carries. All strings
 * are static. */
struct vr_engine_refusal {
	const char *vendor_code; /* vendorSpecificErrorCode, e.g. "OngoingFailover" */
	unsigned major;		 /* majorErrorCode: 400, 403 or 409 */
	const char *minor;	 /* minorErrorCode, e.g. "BUSY_ENTITY" */
	const char *message;	 /* one line for the Error's message */
};

/* Whether replication s in a VDC with flags f accepts action a.
 * Returns 0 (allowed; *refusal_out = NULL), VR_ECONFLICT with *refusal_out
 * set to the static refusal, or VR_EINVAL (*refusal_out = NULL) when s, f or
 * a is NULL or out of range. refusal_out may be NULL. */
int vr_engine_check(const struct vr_rg_state *s, const struct vr_vdc_flags *f, enum vr_action a,
		    const struct vr_engine_refusal **refusal_out);

/* The state of s while the job of action a runs: called when the action is
 * accepted, in the same transaction. Does nothing for an out-of-range a. */
void vr_engine_begin(struct vr_rg_state *s, enum vr_action a);

/* The state of s when the job of action a has ended, successfully or not.
 * After a successful delete the caller removes the row; s keeps deleting.
 * Does nothing for an out-of-range a. */
void vr_engine_finish(struct vr_rg_state *s, enum vr_action a, bool succeeded);

/* Wire tokens. The *_token functions return a static string, or NULL for
 * an out-of-range value; the *_parse functions take the exact
 * (case-sensitive) token and return 0 or VR_EINVAL. */
const char *vr_engine_action_token(enum vr_action a);
int vr_engine_action_parse(enum vr_action *out, const char *token);
const char *vr_engine_kind_token(enum vr_rg_kind k);
int vr_engine_kind_parse(enum vr_rg_kind *out, const char *token);
const char *vr_engine_recovery_token(enum vr_recovery_state r);
int vr_engine_recovery_parse(enum vr_recovery_state *out, const char *token);
const char *vr_engine_test_recovery_token(enum vr_test_recovery_state t);
int vr_engine_test_recovery_parse(enum vr_test_recovery_state *out, const char *token);
const char *vr_engine_replication_token(enum vr_replication_state r);
int vr_engine_replication_parse(enum vr_replication_state *out, const char *token);

#endif
