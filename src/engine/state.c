/* The replication state machine. One ordered table decides whether an action
 * is accepted: the first row whose action and state match gives the answer.
 * begin() and finish() below it give the state while a job runs and after
 * it ends. docs/state-machine.md describes both. */
#include <stddef.h>
#include <string.h>

#include "vrcloud/engine.h"
#include "vrcloud/err.h"

/* Refusals. vendor codes documented by the API reference: */
static const struct vr_engine_refusal recovery_disabled = {
	"VdcNotEnabledForRecoveryFault", 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
	"The replication's VDC is not enabled for this recovery type."};
static const struct vr_engine_refusal ongoing_failover = {
	"OngoingFailover", 409, "BUSY_ENTITY", "The replication is already being recovered."};
static const struct vr_engine_refusal already_recovered = {
	"AlreadyRecovered", 409, "CONFLICT", "The replication has already been recovered."};
static const struct vr_engine_refusal already_test_recovered = {
	"AlreadyTestRecovered", 409, "CONFLICT",
	"The replication has already been test-recovered; clean up the test failover first."};
/* and vrcloud's own: */
static const struct vr_engine_refusal being_deleted = {
	"ReplicationBeingDeleted", 409, "BUSY_ENTITY", "The replication is being deleted."};
static const struct vr_engine_refusal incoming_only = {
	"IncomingReplicationOnly", 400, "BAD_REQUEST",
	"This operation applies to incoming replications only, not to failback replications."};
static const struct vr_engine_refusal replication_disabled = {
	"VdcNotEnabledForReplication", 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
	"The VDC is not enabled for replication."};
static const struct vr_engine_refusal ongoing_test = {
	"OngoingTestFailover", 409, "BUSY_ENTITY",
	"A test failover of the replication is running."};
static const struct vr_engine_refusal ongoing_cleanup = {
	"OngoingTestCleanup", 409, "BUSY_ENTITY", "A test cleanup of the replication is running."};
static const struct vr_engine_refusal no_instance = {
	"NoInstanceAvailable", 409, "CONFLICT",
	"The replication has no point-in-time instance to recover yet."};
static const struct vr_engine_refusal replication_paused = {
	"ReplicationPaused", 409, "CONFLICT", "The replication is paused; resume it first."};
static const struct vr_engine_refusal test_cleanup_required = {
	"TestCleanupRequired", 409, "CONFLICT",
	"The last test failover has not been cleaned up; run a test cleanup first."};
static const struct vr_engine_refusal failover_incomplete = {
	"FailoverIncomplete", 409, "CONFLICT",
	"The last failover of the replication failed or its outcome is unknown; retry the failover."};
static const struct vr_engine_refusal nothing_to_clean = {
	"NoTestFailoverToClean", 409, "CONFLICT",
	"The replication has no test failover to clean up."};
static const struct vr_engine_refusal already_paused = {"AlreadyPaused", 409, "CONFLICT",
							"The replication is already paused."};
static const struct vr_engine_refusal not_paused = {"NotPaused", 409, "CONFLICT",
						    "The replication is not paused."};
static const struct vr_engine_refusal not_recovered = {
	"NotRecovered", 409, "CONFLICT",
	"Only a replication whose failover has completed can be reversed."};
static const struct vr_engine_refusal already_reversed = {
	"AlreadyReversed", 409, "CONFLICT", "The replication already has a failback replication."};
static const struct vr_engine_refusal already_configured = {
	"AlreadyConfigured", 409, "CONFLICT", "The replication has already been configured."};

/* Row matchers: a set of values as a bit mask (0 matches any value), a
 * boolean as ANY / YES / NO. */
#define ACT(a)	 (1u << VR_ACTION_##a)
#define KIND(k)	 (1u << VR_RG_##k)
#define REC(r)	 (1u << VR_RECOVERY_##r)
#define TEST(t)	 (1u << VR_TEST_RECOVERY_##t)
#define REPL(r)	 (1u << VR_REPLICATION_##r)
#define ALL	 ((1u << VR_ACTION_COUNT) - 1)
#define ALL_REC	 ((1u << VR_RECOVERY_COUNT) - 1)
#define ALL_TEST ((1u << VR_TEST_RECOVERY_COUNT) - 1)

/* Actions that drive the source's data flow and leave the replica's files
 * alone: they run alongside a test failover. */
#define CONTROLS (ACT(SYNC) | ACT(PAUSE) | ACT(RESUME) | ACT(RECONFIGURE))
/* Actions that relocate the replica's files. */
#define RELOCATIONS (ACT(MOVE) | ACT(SWITCH_SERVER))
/* Actions of the cloud-side recovery workflow, incoming replications only. */
#define INCOMING_ONLY                                                                              \
	(ACT(FAILOVER) | ACT(TEST_FAILOVER) | ACT(TEST_CLEANUP) | ACT(PLANNED_MIGRATION) |         \
	 ACT(REVERSE) | RELOCATIONS)

enum tri { ANY = 0, YES, NO };

/* The VDC flag whose being off makes a row match. */
enum vdc_flag {
	FLAG_ANY = 0,
	FLAG_FAILOVER,
	FLAG_TEST_FAILOVER,
	FLAG_PLANNED_MIGRATION,
	FLAG_REPLICATION
};

struct rule {
	unsigned actions;
	unsigned kind;
	unsigned recovery;
	unsigned test_recovery;
	unsigned replication;
	enum tri paused;
	enum tri has_instance;
	enum tri has_failback;
	enum tri deleting;
	enum vdc_flag vdc_off;
	const struct vr_engine_refusal *refusal; /* NULL: allowed */
};

/* THE table. Read top to bottom; the first matching row wins. The numbers
 * are the rows of the table in docs/state-machine.md. Kept out of
 * clang-format so that each row reads as one line. */
/* clang-format off */
static const struct rule rules[] = {
	/* A replication being deleted accepts nothing more. */
	/*  1 */ {ALL, .deleting = YES, .refusal = &being_deleted},

	/* The recovery workflow exists for incoming replications only. */
	/*  2 */ {INCOMING_ONLY, .kind = KIND(FAILBACK), .refusal = &incoming_only},

	/* The provider's per-VDC switches (EditRecoveryDetails). Test cleanup
	 * is never switched off: a test image can always go. */
	/*  3 */ {ACT(FAILOVER), .vdc_off = FLAG_FAILOVER, .refusal = &recovery_disabled},
	/*  4 */ {ACT(TEST_FAILOVER), .vdc_off = FLAG_TEST_FAILOVER, .refusal = &recovery_disabled},
	/*  5 */ {ACT(PLANNED_MIGRATION), .vdc_off = FLAG_PLANNED_MIGRATION,
		  .refusal = &recovery_disabled},
	/*  6 */ {ACT(CONFIGURE) | ACT(REVERSE), .vdc_off = FLAG_REPLICATION,
		  .refusal = &replication_disabled},

	/* A running failover or planned migration excludes everything; a
	 * running test failover or test cleanup everything but the controls. */
	/*  7 */ {ALL, .recovery = REC(IN_PROGRESS), .refusal = &ongoing_failover},
	/*  8 */ {ACT(TEST_FAILOVER), .test_recovery = TEST(IN_PROGRESS), .refusal = &ongoing_failover},
	/*  9 */ {ALL & ~CONTROLS, .test_recovery = TEST(IN_PROGRESS), .refusal = &ongoing_test},
	/* 10 */ {ALL & ~CONTROLS, .test_recovery = TEST(CLEANUP_IN_PROGRESS),
		  .refusal = &ongoing_cleanup},

	/* Failover and planned migration: allowed again after an error (a
	 * retry) and beside a finished test image (kept until its cleanup). */
	/* 11 */ {ACT(FAILOVER) | ACT(PLANNED_MIGRATION), .recovery = REC(RECOVERED),
		  .refusal = &already_recovered},
	/* 12 */ {ACT(FAILOVER) | ACT(PLANNED_MIGRATION), .has_instance = NO,
		  .refusal = &no_instance},
	/* 13 */ {ACT(PLANNED_MIGRATION), .paused = YES, .refusal = &replication_paused},

	/* Test failover: only from TestRecoveryState none and RecoveryState
	 * notStarted, with an instance to copy. */
	/* 14 */ {ACT(TEST_FAILOVER), .test_recovery = TEST(COMPLETE) | TEST(TEST_ERROR),
		  .refusal = &already_test_recovered},
	/* 15 */ {ACT(TEST_FAILOVER), .test_recovery = TEST(CLEANUP_ERROR) | TEST(UNKNOWN),
		  .refusal = &test_cleanup_required},
	/* 16 */ {ACT(TEST_FAILOVER), .recovery = REC(RECOVERED), .refusal = &already_recovered},
	/* 17 */ {ACT(TEST_FAILOVER), .recovery = REC(ERROR) | REC(UNKNOWN),
		  .refusal = &failover_incomplete},
	/* 18 */ {ACT(TEST_FAILOVER), .has_instance = NO, .refusal = &no_instance},

	/* Test cleanup: from complete, testError, cleanupError or unknown. */
	/* 19 */ {ACT(TEST_CLEANUP), .test_recovery = TEST(NONE), .refusal = &nothing_to_clean},

	/* Controls and relocations need a replication that still replicates. */
	/* 20 */ {CONTROLS | RELOCATIONS, .recovery = REC(RECOVERED), .refusal = &already_recovered},
	/* 21 */ {CONTROLS | RELOCATIONS, .recovery = REC(ERROR) | REC(UNKNOWN),
		  .refusal = &failover_incomplete},
	/* 22 */ {ACT(SYNC), .paused = YES, .refusal = &replication_paused},
	/* 23 */ {ACT(PAUSE), .paused = YES, .refusal = &already_paused},
	/* 24 */ {ACT(RESUME), .paused = NO, .refusal = &not_paused},

	/* Reverse: after a completed failover, once. */
	/* 25 */ {ACT(REVERSE), .recovery = ALL_REC & ~REC(RECOVERED), .refusal = &not_recovered},
	/* 26 */ {ACT(REVERSE), .has_failback = YES, .refusal = &already_reversed},

	/* Configure: only a row that never held data and was never recovered
	 * or tested; a configure that failed (ReplicationState error) may run
	 * again. */
	/* 27 */ {ACT(CONFIGURE), .has_instance = YES, .refusal = &already_configured},
	/* 28 */ {ACT(CONFIGURE), .replication = REPL(FULL_SYNC) | REPL(OK) | REPL(NOT_ACTIVE),
		  .refusal = &already_configured},
	/* 29 */ {ACT(CONFIGURE), .recovery = ALL_REC & ~REC(NOT_STARTED),
		  .refusal = &already_configured},
	/* 30 */ {ACT(CONFIGURE), .test_recovery = ALL_TEST & ~TEST(NONE),
		  .refusal = &already_configured},

	/* Everything else is allowed; delete in particular, which also
	 * removes a test image. */
	/* 31 */ {ALL, .refusal = NULL},
};
/* clang-format on */

static bool tri_matches(enum tri t, bool value)
{
	return t == ANY || (t == YES) == value;
}

static bool mask_matches(unsigned mask, unsigned value)
{
	return mask == 0 || (mask & (1u << value)) != 0;
}

static bool flag_off(enum vdc_flag flag, const struct vr_vdc_flags *f)
{
	switch (flag) {
	case FLAG_ANY: return true;
	case FLAG_FAILOVER: return !f->failover;
	case FLAG_TEST_FAILOVER: return !f->test_failover;
	case FLAG_PLANNED_MIGRATION: return !f->planned_migration;
	case FLAG_REPLICATION: return !f->replication;
	}
	return false;
}

static bool rule_matches(const struct rule *r, const struct vr_rg_state *s,
			 const struct vr_vdc_flags *f, enum vr_action a)
{
	return (r->actions & (1u << a)) && mask_matches(r->kind, s->kind) &&
	       mask_matches(r->recovery, s->recovery) &&
	       mask_matches(r->test_recovery, s->test_recovery) &&
	       mask_matches(r->replication, s->replication) && tri_matches(r->paused, s->paused) &&
	       tri_matches(r->has_instance, s->has_instance) &&
	       tri_matches(r->has_failback, s->has_failback) &&
	       tri_matches(r->deleting, s->deleting) && flag_off(r->vdc_off, f);
}

static bool state_valid(const struct vr_rg_state *s)
{
	return (unsigned)s->kind < VR_RG_KIND_COUNT && (unsigned)s->recovery < VR_RECOVERY_COUNT &&
	       (unsigned)s->test_recovery < VR_TEST_RECOVERY_COUNT &&
	       (unsigned)s->replication < VR_REPLICATION_COUNT;
}

int vr_engine_check(const struct vr_rg_state *s, const struct vr_vdc_flags *f, enum vr_action a,
		    const struct vr_engine_refusal **refusal_out)
{
	if (refusal_out)
		*refusal_out = NULL;
	if (!s || !f || (unsigned)a >= VR_ACTION_COUNT || !state_valid(s))
		return VR_EINVAL;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		if (!rule_matches(&rules[i], s, f, a))
			continue;
		if (!rules[i].refusal)
			return 0;
		if (refusal_out)
			*refusal_out = rules[i].refusal;
		return VR_ECONFLICT;
	}
	/* not reached: the last row matches every action; refuse rather than
	 * allow should the table ever lose it */
	return VR_EINVAL;
}

void vr_engine_begin(struct vr_rg_state *s, enum vr_action a)
{
	if (!s)
		return;
	switch (a) {
	case VR_ACTION_FAILOVER:
	case VR_ACTION_PLANNED_MIGRATION: s->recovery = VR_RECOVERY_IN_PROGRESS; break;
	case VR_ACTION_TEST_FAILOVER: s->test_recovery = VR_TEST_RECOVERY_IN_PROGRESS; break;
	case VR_ACTION_TEST_CLEANUP: s->test_recovery = VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS; break;
	case VR_ACTION_DELETE: s->deleting = true; break;
	/* the failback row is created in the same transaction */
	case VR_ACTION_REVERSE: s->has_failback = true; break;
	/* a configure that failed starts the initial sync over */
	case VR_ACTION_CONFIGURE: s->replication = VR_REPLICATION_INITIAL_SYNC; break;
	case VR_ACTION_SYNC:
	case VR_ACTION_PAUSE:
	case VR_ACTION_RESUME:
	case VR_ACTION_RECONFIGURE:
	case VR_ACTION_MOVE:
	case VR_ACTION_SWITCH_SERVER:
	case VR_ACTION_COUNT: break;
	}
}

void vr_engine_finish(struct vr_rg_state *s, enum vr_action a, bool succeeded)
{
	if (!s)
		return;
	switch (a) {
	case VR_ACTION_FAILOVER:
	case VR_ACTION_PLANNED_MIGRATION:
		if (succeeded) {
			s->recovery = VR_RECOVERY_RECOVERED;
			s->replication = VR_REPLICATION_NOT_ACTIVE;
		} else {
			s->recovery = VR_RECOVERY_ERROR;
		}
		break;
	case VR_ACTION_TEST_FAILOVER:
		s->test_recovery = succeeded ? VR_TEST_RECOVERY_COMPLETE
					     : VR_TEST_RECOVERY_TEST_ERROR;
		break;
	case VR_ACTION_TEST_CLEANUP:
		s->test_recovery = succeeded ? VR_TEST_RECOVERY_NONE
					     : VR_TEST_RECOVERY_CLEANUP_ERROR;
		break;
	case VR_ACTION_PAUSE:
		if (succeeded)
			s->paused = true;
		break;
	case VR_ACTION_RESUME:
		if (succeeded)
			s->paused = false;
		break;
	/* a failed delete leaves the replication usable again */
	case VR_ACTION_DELETE:
		if (!succeeded)
			s->deleting = false;
		break;
	/* the failback row of a failed reverse is removed with it */
	case VR_ACTION_REVERSE:
		if (!succeeded)
			s->has_failback = false;
		break;
	/* the data plane sets ok once the first instance is committed */
	case VR_ACTION_CONFIGURE:
		s->replication = succeeded ? VR_REPLICATION_INITIAL_SYNC : VR_REPLICATION_ERROR;
		break;
	case VR_ACTION_SYNC:
	case VR_ACTION_RECONFIGURE:
	case VR_ACTION_MOVE:
	case VR_ACTION_SWITCH_SERVER:
	case VR_ACTION_COUNT: break;
	}
}

/* Tokens, indexed by enum value. */
static const char *const action_tokens[VR_ACTION_COUNT] = {
	[VR_ACTION_FAILOVER] = "failover",
	[VR_ACTION_TEST_FAILOVER] = "testFailover",
	[VR_ACTION_TEST_CLEANUP] = "testCleanup",
	[VR_ACTION_PLANNED_MIGRATION] = "plannedMigration",
	[VR_ACTION_SYNC] = "sync",
	[VR_ACTION_PAUSE] = "pause",
	[VR_ACTION_RESUME] = "resume",
	[VR_ACTION_RECONFIGURE] = "reconfigure",
	[VR_ACTION_DELETE] = "delete",
	[VR_ACTION_REVERSE] = "reverse",
	[VR_ACTION_MOVE] = "moveReplication",
	[VR_ACTION_SWITCH_SERVER] = "switchVrServer",
	[VR_ACTION_CONFIGURE] = "configure",
};

static const char *const kind_tokens[VR_RG_KIND_COUNT] = {
	[VR_RG_INCOMING] = "incoming",
	[VR_RG_FAILBACK] = "failback",
};

static const char *const recovery_tokens[VR_RECOVERY_COUNT] = {
	[VR_RECOVERY_UNKNOWN] = "unknown",	  [VR_RECOVERY_NOT_STARTED] = "notStarted",
	[VR_RECOVERY_IN_PROGRESS] = "inProgress", [VR_RECOVERY_ERROR] = "error",
	[VR_RECOVERY_RECOVERED] = "recovered",
};

static const char *const test_recovery_tokens[VR_TEST_RECOVERY_COUNT] = {
	[VR_TEST_RECOVERY_UNKNOWN] = "unknown",
	[VR_TEST_RECOVERY_NONE] = "none",
	[VR_TEST_RECOVERY_IN_PROGRESS] = "testInProgress",
	[VR_TEST_RECOVERY_COMPLETE] = "complete",
	[VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS] = "cleanupInProgress",
	[VR_TEST_RECOVERY_TEST_ERROR] = "testError",
	[VR_TEST_RECOVERY_CLEANUP_ERROR] = "cleanupError",
};

static const char *const replication_tokens[VR_REPLICATION_COUNT] = {
	[VR_REPLICATION_INITIAL_SYNC] = "initialSync",
	[VR_REPLICATION_FULL_SYNC] = "fullSync",
	[VR_REPLICATION_OK] = "ok",
	[VR_REPLICATION_ERROR] = "error",
	[VR_REPLICATION_NOT_ACTIVE] = "notActive",
};

static const char *token_of(const char *const *tokens, unsigned count, unsigned value)
{
	return value < count ? tokens[value] : NULL;
}

static int parse_token(unsigned *out, const char *const *tokens, unsigned count, const char *token)
{
	if (!token)
		return VR_EINVAL;
	for (unsigned i = 0; i < count; i++)
		if (strcmp(tokens[i], token) == 0) {
			*out = i;
			return 0;
		}
	return VR_EINVAL;
}

const char *vr_engine_action_token(enum vr_action a)
{
	return token_of(action_tokens, VR_ACTION_COUNT, (unsigned)a);
}

int vr_engine_action_parse(enum vr_action *out, const char *token)
{
	unsigned value;
	int err = parse_token(&value, action_tokens, VR_ACTION_COUNT, token);

	if (err == 0)
		*out = (enum vr_action)value;
	return err;
}

const char *vr_engine_kind_token(enum vr_rg_kind k)
{
	return token_of(kind_tokens, VR_RG_KIND_COUNT, (unsigned)k);
}

int vr_engine_kind_parse(enum vr_rg_kind *out, const char *token)
{
	unsigned value;
	int err = parse_token(&value, kind_tokens, VR_RG_KIND_COUNT, token);

	if (err == 0)
		*out = (enum vr_rg_kind)value;
	return err;
}

const char *vr_engine_recovery_token(enum vr_recovery_state r)
{
	return token_of(recovery_tokens, VR_RECOVERY_COUNT, (unsigned)r);
}

int vr_engine_recovery_parse(enum vr_recovery_state *out, const char *token)
{
	unsigned value;
	int err = parse_token(&value, recovery_tokens, VR_RECOVERY_COUNT, token);

	if (err == 0)
		*out = (enum vr_recovery_state)value;
	return err;
}

const char *vr_engine_test_recovery_token(enum vr_test_recovery_state t)
{
	return token_of(test_recovery_tokens, VR_TEST_RECOVERY_COUNT, (unsigned)t);
}

int vr_engine_test_recovery_parse(enum vr_test_recovery_state *out, const char *token)
{
	unsigned value;
	int err = parse_token(&value, test_recovery_tokens, VR_TEST_RECOVERY_COUNT, token);

	if (err == 0)
		*out = (enum vr_test_recovery_state)value;
	return err;
}

const char *vr_engine_replication_token(enum vr_replication_state r)
{
	return token_of(replication_tokens, VR_REPLICATION_COUNT, (unsigned)r);
}

int vr_engine_replication_parse(enum vr_replication_state *out, const char *token)
{
	unsigned value;
	int err = parse_token(&value, replication_tokens, VR_REPLICATION_COUNT, token);

	if (err == 0)
		*out = (enum vr_replication_state)value;
	return err;
}
