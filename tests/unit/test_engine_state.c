/* The replication state machine: one test per row of the table in
 * src/engine/state.c and per begin/finish transition, then properties over
 * every combination of states, VDC flags and actions, and the tokens
 * against the migration and the documentation. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/engine.h"
#include "vrcloud/err.h"

/* An incoming replication that replicates normally and has an instance. */
static struct vr_rg_state replicating(void)
{
	return (struct vr_rg_state){
		.kind = VR_RG_INCOMING,
		.recovery = VR_RECOVERY_NOT_STARTED,
		.test_recovery = VR_TEST_RECOVERY_NONE,
		.replication = VR_REPLICATION_OK,
		.has_instance = true,
	};
}

/* The row a new replication starts with (the migration's defaults). */
static struct vr_rg_state configured(void)
{
	struct vr_rg_state s = replicating();

	s.replication = VR_REPLICATION_INITIAL_SYNC;
	s.has_instance = false;
	return s;
}

static struct vr_vdc_flags all_enabled(void)
{
	return (struct vr_vdc_flags){true, true, true, true};
}

static void expect_refused(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			   enum vr_action a, const char *code)
{
	const struct vr_engine_refusal *refusal = NULL;

	cr_assert_eq(vr_engine_check(s, f, a, &refusal), VR_ECONFLICT, "%s should be refused (%s)",
		     vr_engine_action_token(a), code);
	cr_assert_not_null(refusal);
	cr_assert_str_eq(refusal->vendor_code, code, "%s", vr_engine_action_token(a));
}

static void expect_allowed(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			   enum vr_action a)
{
	const struct vr_engine_refusal *refusal = NULL;
	int rc = vr_engine_check(s, f, a, &refusal);

	cr_assert_eq(rc, 0, "%s refused with %s", vr_engine_action_token(a),
		     refusal ? refusal->vendor_code : "(none)");
	cr_assert_null(refusal);
}

static const enum vr_action controls[] = {VR_ACTION_SYNC, VR_ACTION_PAUSE, VR_ACTION_RESUME,
					  VR_ACTION_RECONFIGURE};
#define NCONTROLS (sizeof controls / sizeof controls[0])

static bool is_control(enum vr_action a)
{
	for (size_t i = 0; i < NCONTROLS; i++)
		if (controls[i] == a)
			return true;
	return false;
}

/* ---- rows of the table, in table order ---- */

Test(engine, every_action_refused_while_deleting)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.deleting = true;
	for (int a = 0; a < VR_ACTION_COUNT; a++)
		expect_refused(&s, &f, (enum vr_action)a, "ReplicationBeingDeleted");
	/* it wins over every other reason */
	s.kind = VR_RG_FAILBACK;
	s.recovery = VR_RECOVERY_IN_PROGRESS;
	f = (struct vr_vdc_flags){false, false, false, false};
	expect_refused(&s, &f, VR_ACTION_FAILOVER, "ReplicationBeingDeleted");
}

Test(engine, recovery_actions_refused_on_failback_replication)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_action incoming_only[] = {VR_ACTION_FAILOVER,	VR_ACTION_TEST_FAILOVER,
						VR_ACTION_TEST_CLEANUP, VR_ACTION_PLANNED_MIGRATION,
						VR_ACTION_REVERSE,	VR_ACTION_MOVE,
						VR_ACTION_SWITCH_SERVER};

	s.kind = VR_RG_FAILBACK;
	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	s.recovery = VR_RECOVERY_RECOVERED;
	for (size_t i = 0; i < sizeof incoming_only / sizeof incoming_only[0]; i++)
		expect_refused(&s, &f, incoming_only[i], "IncomingReplicationOnly");
}

Test(engine, failback_replication_accepts_controls_delete_and_configure)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	s.kind = VR_RG_FAILBACK;
	expect_allowed(&s, &f, VR_ACTION_CONFIGURE);
	s = replicating();
	s.kind = VR_RG_FAILBACK;
	expect_allowed(&s, &f, VR_ACTION_SYNC);
	expect_allowed(&s, &f, VR_ACTION_PAUSE);
	expect_allowed(&s, &f, VR_ACTION_RECONFIGURE);
	expect_allowed(&s, &f, VR_ACTION_DELETE);
	s.paused = true;
	expect_allowed(&s, &f, VR_ACTION_RESUME);
}

Test(engine, failover_refused_when_vdc_failover_disabled)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	f.failover = false;
	expect_refused(&s, &f, VR_ACTION_FAILOVER, "VdcNotEnabledForRecoveryFault");
	/* the VDC's switch is reported before the replication's state */
	s.recovery = VR_RECOVERY_RECOVERED;
	expect_refused(&s, &f, VR_ACTION_FAILOVER, "VdcNotEnabledForRecoveryFault");
	s = replicating();
	expect_allowed(&s, &f, VR_ACTION_TEST_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_PLANNED_MIGRATION);
}

Test(engine, test_failover_refused_when_vdc_test_failover_disabled)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	f.test_failover = false;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "VdcNotEnabledForRecoveryFault");
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_PLANNED_MIGRATION);
}

Test(engine, test_cleanup_allowed_when_vdc_test_failover_disabled)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = {false, false, false, false};

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	expect_allowed(&s, &f, VR_ACTION_TEST_CLEANUP);
}

Test(engine, planned_migration_refused_when_vdc_planned_migration_disabled)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	f.planned_migration = false;
	expect_refused(&s, &f, VR_ACTION_PLANNED_MIGRATION, "VdcNotEnabledForRecoveryFault");
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_TEST_FAILOVER);
}

Test(engine, configure_and_reverse_refused_when_vdc_replication_disabled)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	f.replication = false;
	expect_refused(&s, &f, VR_ACTION_CONFIGURE, "VdcNotEnabledForReplication");
	s = replicating();
	s.recovery = VR_RECOVERY_RECOVERED;
	expect_refused(&s, &f, VR_ACTION_REVERSE, "VdcNotEnabledForReplication");
	/* existing replications keep working */
	s = replicating();
	expect_allowed(&s, &f, VR_ACTION_SYNC);
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
}

Test(engine, every_action_refused_while_failover_in_progress)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_IN_PROGRESS;
	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	for (int a = 0; a < VR_ACTION_COUNT; a++)
		expect_refused(&s, &f, (enum vr_action)a, "OngoingFailover");
}

Test(engine, test_failover_refused_while_test_failover_in_progress)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_IN_PROGRESS;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "OngoingFailover");
}

Test(engine, non_control_actions_refused_while_test_failover_in_progress)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_IN_PROGRESS;
	for (int a = 0; a < VR_ACTION_COUNT; a++)
		if (a != VR_ACTION_TEST_FAILOVER && !is_control((enum vr_action)a))
			expect_refused(&s, &f, (enum vr_action)a, "OngoingTestFailover");
}

Test(engine, controls_allowed_while_test_failover_in_progress)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_IN_PROGRESS;
	expect_allowed(&s, &f, VR_ACTION_SYNC);
	expect_allowed(&s, &f, VR_ACTION_PAUSE);
	expect_allowed(&s, &f, VR_ACTION_RECONFIGURE);
	s.paused = true;
	expect_allowed(&s, &f, VR_ACTION_RESUME);
}

Test(engine, non_control_actions_refused_while_test_cleanup_in_progress)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS;
	for (int a = 0; a < VR_ACTION_COUNT; a++)
		if (!is_control((enum vr_action)a))
			expect_refused(&s, &f, (enum vr_action)a, "OngoingTestCleanup");
	expect_allowed(&s, &f, VR_ACTION_SYNC);
	expect_allowed(&s, &f, VR_ACTION_RECONFIGURE);
}

Test(engine, failover_refused_after_successful_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_RECOVERED;
	s.replication = VR_REPLICATION_NOT_ACTIVE;
	expect_refused(&s, &f, VR_ACTION_FAILOVER, "AlreadyRecovered");
	expect_refused(&s, &f, VR_ACTION_PLANNED_MIGRATION, "AlreadyRecovered");
}

Test(engine, failover_refused_without_instance)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	expect_refused(&s, &f, VR_ACTION_FAILOVER, "NoInstanceAvailable");
	expect_refused(&s, &f, VR_ACTION_PLANNED_MIGRATION, "NoInstanceAvailable");
	s.has_instance = true;
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_PLANNED_MIGRATION);
}

Test(engine, planned_migration_refused_while_paused)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.paused = true;
	expect_refused(&s, &f, VR_ACTION_PLANNED_MIGRATION, "ReplicationPaused");
	/* disaster recovery does not need the source */
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
}

Test(engine, failover_allowed_while_replication_in_error)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.replication = VR_REPLICATION_ERROR;
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_TEST_FAILOVER);
}

Test(engine, test_failover_refused_when_test_complete_or_test_error)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "AlreadyTestRecovered");
	s.test_recovery = VR_TEST_RECOVERY_TEST_ERROR;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "AlreadyTestRecovered");
}

Test(engine, test_failover_refused_after_cleanup_error_or_unknown)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_CLEANUP_ERROR;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "TestCleanupRequired");
	s.test_recovery = VR_TEST_RECOVERY_UNKNOWN;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "TestCleanupRequired");
}

Test(engine, test_failover_refused_after_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_RECOVERED;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "AlreadyRecovered");
}

Test(engine, test_failover_refused_after_failed_or_unknown_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_ERROR;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "FailoverIncomplete");
	s.recovery = VR_RECOVERY_UNKNOWN;
	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "FailoverIncomplete");
}

Test(engine, test_failover_refused_without_instance)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	expect_refused(&s, &f, VR_ACTION_TEST_FAILOVER, "NoInstanceAvailable");
}

Test(engine, test_cleanup_refused_without_test_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	expect_refused(&s, &f, VR_ACTION_TEST_CLEANUP, "NoTestFailoverToClean");
}

Test(engine, test_cleanup_allowed_from_every_finished_test_state)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_test_recovery_state finished[] = {VR_TEST_RECOVERY_COMPLETE,
							VR_TEST_RECOVERY_TEST_ERROR,
							VR_TEST_RECOVERY_CLEANUP_ERROR,
							VR_TEST_RECOVERY_UNKNOWN};

	for (size_t i = 0; i < sizeof finished / sizeof finished[0]; i++) {
		s.test_recovery = finished[i];
		expect_allowed(&s, &f, VR_ACTION_TEST_CLEANUP);
	}
	/* also after the VM has been recovered: the test image outlives it */
	s.recovery = VR_RECOVERY_RECOVERED;
	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	expect_allowed(&s, &f, VR_ACTION_TEST_CLEANUP);
}

Test(engine, controls_and_relocations_refused_after_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_action acts[] = {VR_ACTION_SYNC, VR_ACTION_PAUSE, VR_ACTION_RECONFIGURE,
				       VR_ACTION_MOVE, VR_ACTION_SWITCH_SERVER};

	s.recovery = VR_RECOVERY_RECOVERED;
	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
		expect_refused(&s, &f, acts[i], "AlreadyRecovered");
	s.paused = true;
	expect_refused(&s, &f, VR_ACTION_RESUME, "AlreadyRecovered");
}

Test(engine, controls_and_relocations_refused_after_failed_or_unknown_failover)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_action acts[] = {VR_ACTION_SYNC, VR_ACTION_PAUSE, VR_ACTION_RECONFIGURE,
				       VR_ACTION_MOVE, VR_ACTION_SWITCH_SERVER};
	const enum vr_recovery_state states[] = {VR_RECOVERY_ERROR, VR_RECOVERY_UNKNOWN};

	for (size_t j = 0; j < 2; j++) {
		s.recovery = states[j];
		s.paused = false;
		for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
			expect_refused(&s, &f, acts[i], "FailoverIncomplete");
		s.paused = true;
		expect_refused(&s, &f, VR_ACTION_RESUME, "FailoverIncomplete");
	}
}

Test(engine, sync_refused_while_paused)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.paused = true;
	expect_refused(&s, &f, VR_ACTION_SYNC, "ReplicationPaused");
	expect_allowed(&s, &f, VR_ACTION_RECONFIGURE);
	expect_allowed(&s, &f, VR_ACTION_MOVE);
	expect_allowed(&s, &f, VR_ACTION_SWITCH_SERVER);
	expect_allowed(&s, &f, VR_ACTION_TEST_FAILOVER);
}

Test(engine, pause_refused_when_paused)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.paused = true;
	expect_refused(&s, &f, VR_ACTION_PAUSE, "AlreadyPaused");
}

Test(engine, resume_refused_when_not_paused)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	expect_refused(&s, &f, VR_ACTION_RESUME, "NotPaused");
}

Test(engine, reverse_refused_before_failover_completes)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_recovery_state states[] = {VR_RECOVERY_NOT_STARTED, VR_RECOVERY_ERROR,
						 VR_RECOVERY_UNKNOWN};

	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		s.recovery = states[i];
		expect_refused(&s, &f, VR_ACTION_REVERSE, "NotRecovered");
	}
}

Test(engine, reverse_refused_when_failback_exists)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_RECOVERED;
	s.has_failback = true;
	expect_refused(&s, &f, VR_ACTION_REVERSE, "AlreadyReversed");
}

Test(engine, configure_refused_with_instance)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	s.has_instance = true;
	expect_refused(&s, &f, VR_ACTION_CONFIGURE, "AlreadyConfigured");
}

Test(engine, configure_refused_once_replicating_or_recovered)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_replication_state states[] = {VR_REPLICATION_FULL_SYNC, VR_REPLICATION_OK,
						    VR_REPLICATION_NOT_ACTIVE};

	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		s.replication = states[i];
		expect_refused(&s, &f, VR_ACTION_CONFIGURE, "AlreadyConfigured");
	}
}

Test(engine, configure_refused_after_a_recovery_attempt)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_recovery_state states[] = {VR_RECOVERY_UNKNOWN, VR_RECOVERY_ERROR,
						 VR_RECOVERY_RECOVERED};

	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		s.recovery = states[i];
		expect_refused(&s, &f, VR_ACTION_CONFIGURE, "AlreadyConfigured");
	}
}

Test(engine, configure_refused_after_a_test_failover)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_test_recovery_state states[] = {VR_TEST_RECOVERY_UNKNOWN,
						      VR_TEST_RECOVERY_COMPLETE,
						      VR_TEST_RECOVERY_TEST_ERROR,
						      VR_TEST_RECOVERY_CLEANUP_ERROR};

	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		s.test_recovery = states[i];
		expect_refused(&s, &f, VR_ACTION_CONFIGURE, "AlreadyConfigured");
	}
}

Test(engine, delete_allowed_beside_test_image_and_after_recovery)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = {false, false, false, false};

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	expect_allowed(&s, &f, VR_ACTION_DELETE);
	s.recovery = VR_RECOVERY_RECOVERED;
	s.replication = VR_REPLICATION_NOT_ACTIVE;
	expect_allowed(&s, &f, VR_ACTION_DELETE);
	s.recovery = VR_RECOVERY_ERROR;
	expect_allowed(&s, &f, VR_ACTION_DELETE);
	s = configured();
	s.kind = VR_RG_FAILBACK;
	s.paused = true;
	expect_allowed(&s, &f, VR_ACTION_DELETE);
}

Test(engine, refusals_carry_their_documented_error_codes)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const struct vr_engine_refusal *r;

	s.recovery = VR_RECOVERY_IN_PROGRESS;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_FAILOVER, &r), VR_ECONFLICT);
	cr_assert_eq(r->major, 409);
	cr_assert_str_eq(r->minor, "BUSY_ENTITY");
	s = replicating();
	f.failover = false;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_FAILOVER, &r), VR_ECONFLICT);
	cr_assert_eq(r->major, 403);
	cr_assert_str_eq(r->minor, "ACCESS_TO_RESOURCE_IS_FORBIDDEN");
	s.kind = VR_RG_FAILBACK;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_TEST_CLEANUP, &r), VR_ECONFLICT);
	cr_assert_eq(r->major, 400);
	cr_assert_str_eq(r->minor, "BAD_REQUEST");
	s = replicating();
	s.recovery = VR_RECOVERY_RECOVERED;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_SYNC, &r), VR_ECONFLICT);
	cr_assert_eq(r->major, 409);
	cr_assert_str_eq(r->minor, "CONFLICT");
}

/* ---- begin / finish ---- */

Test(engine, failover_begin_sets_recovery_in_progress)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	cr_assert_eq(s.recovery, VR_RECOVERY_IN_PROGRESS);
	cr_assert_eq(s.replication, VR_REPLICATION_OK);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_NONE);
}

Test(engine, failover_success_recovers_and_stops_replication)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_FAILOVER, true);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
	cr_assert_eq(s.replication, VR_REPLICATION_NOT_ACTIVE);
}

Test(engine, failover_failure_sets_error_and_allows_retry)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_FAILOVER, false);
	cr_assert_eq(s.recovery, VR_RECOVERY_ERROR);
	cr_assert_eq(s.replication, VR_REPLICATION_OK);
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	expect_allowed(&s, &f, VR_ACTION_PLANNED_MIGRATION);
	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_FAILOVER, true);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
}

Test(engine, failover_allowed_from_unknown_recovery_state)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_UNKNOWN;
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	cr_assert_eq(s.recovery, VR_RECOVERY_IN_PROGRESS);
}

Test(engine, failover_beside_finished_test_image_keeps_it)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	expect_allowed(&s, &f, VR_ACTION_FAILOVER);
	vr_engine_begin(&s, VR_ACTION_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_FAILOVER, true);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_COMPLETE);
	expect_allowed(&s, &f, VR_ACTION_TEST_CLEANUP);
	vr_engine_begin(&s, VR_ACTION_TEST_CLEANUP);
	vr_engine_finish(&s, VR_ACTION_TEST_CLEANUP, true);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_NONE);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
}

Test(engine, planned_migration_begin_sets_recovery_in_progress)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_PLANNED_MIGRATION);
	cr_assert_eq(s.recovery, VR_RECOVERY_IN_PROGRESS);
}

Test(engine, planned_migration_success_recovers)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_PLANNED_MIGRATION);
	vr_engine_finish(&s, VR_ACTION_PLANNED_MIGRATION, true);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
	cr_assert_eq(s.replication, VR_REPLICATION_NOT_ACTIVE);
}

Test(engine, planned_migration_failure_sets_recovery_error)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_PLANNED_MIGRATION);
	vr_engine_finish(&s, VR_ACTION_PLANNED_MIGRATION, false);
	cr_assert_eq(s.recovery, VR_RECOVERY_ERROR);
	cr_assert_eq(s.replication, VR_REPLICATION_OK);
}

Test(engine, test_failover_begin_sets_test_in_progress)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_TEST_FAILOVER);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_IN_PROGRESS);
	cr_assert_eq(s.recovery, VR_RECOVERY_NOT_STARTED);
}

Test(engine, test_failover_success_completes)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_TEST_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_TEST_FAILOVER, true);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_COMPLETE);
	cr_assert_eq(s.recovery, VR_RECOVERY_NOT_STARTED);
	cr_assert_eq(s.replication, VR_REPLICATION_OK);
}

Test(engine, test_failover_failure_sets_test_error)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_TEST_FAILOVER);
	vr_engine_finish(&s, VR_ACTION_TEST_FAILOVER, false);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_TEST_ERROR);
}

Test(engine, test_cleanup_begin_sets_cleanup_in_progress)
{
	struct vr_rg_state s = replicating();

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	vr_engine_begin(&s, VR_ACTION_TEST_CLEANUP);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS);
}

Test(engine, test_cleanup_success_returns_to_none)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_TEST_ERROR;
	vr_engine_begin(&s, VR_ACTION_TEST_CLEANUP);
	vr_engine_finish(&s, VR_ACTION_TEST_CLEANUP, true);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_NONE);
	expect_allowed(&s, &f, VR_ACTION_TEST_FAILOVER);
}

Test(engine, test_cleanup_failure_sets_cleanup_error_and_allows_retry)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.test_recovery = VR_TEST_RECOVERY_COMPLETE;
	vr_engine_begin(&s, VR_ACTION_TEST_CLEANUP);
	vr_engine_finish(&s, VR_ACTION_TEST_CLEANUP, false);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_CLEANUP_ERROR);
	expect_allowed(&s, &f, VR_ACTION_TEST_CLEANUP);
}

Test(engine, pause_takes_effect_at_finish)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_PAUSE);
	cr_assert_not(s.paused);
	vr_engine_finish(&s, VR_ACTION_PAUSE, true);
	cr_assert(s.paused);
}

Test(engine, pause_failure_leaves_replication_running)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_PAUSE);
	vr_engine_finish(&s, VR_ACTION_PAUSE, false);
	cr_assert_not(s.paused);
}

Test(engine, resume_takes_effect_at_finish)
{
	struct vr_rg_state s = replicating();

	s.paused = true;
	vr_engine_begin(&s, VR_ACTION_RESUME);
	cr_assert(s.paused);
	vr_engine_finish(&s, VR_ACTION_RESUME, true);
	cr_assert_not(s.paused);
}

Test(engine, resume_failure_leaves_replication_paused)
{
	struct vr_rg_state s = replicating();

	s.paused = true;
	vr_engine_begin(&s, VR_ACTION_RESUME);
	vr_engine_finish(&s, VR_ACTION_RESUME, false);
	cr_assert(s.paused);
}

Test(engine, delete_begin_marks_deleting)
{
	struct vr_rg_state s = replicating();

	vr_engine_begin(&s, VR_ACTION_DELETE);
	cr_assert(s.deleting);
	vr_engine_finish(&s, VR_ACTION_DELETE, true);
	cr_assert(s.deleting);
}

Test(engine, delete_failure_makes_replication_usable_again)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	vr_engine_begin(&s, VR_ACTION_DELETE);
	vr_engine_finish(&s, VR_ACTION_DELETE, false);
	cr_assert_not(s.deleting);
	expect_allowed(&s, &f, VR_ACTION_DELETE);
	expect_allowed(&s, &f, VR_ACTION_SYNC);
}

Test(engine, reverse_begin_records_the_failback)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_RECOVERED;
	s.replication = VR_REPLICATION_NOT_ACTIVE;
	expect_allowed(&s, &f, VR_ACTION_REVERSE);
	vr_engine_begin(&s, VR_ACTION_REVERSE);
	cr_assert(s.has_failback);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
	vr_engine_finish(&s, VR_ACTION_REVERSE, true);
	cr_assert(s.has_failback);
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
	cr_assert_eq(s.replication, VR_REPLICATION_NOT_ACTIVE);
}

Test(engine, reverse_failure_allows_another_reverse)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();

	s.recovery = VR_RECOVERY_RECOVERED;
	vr_engine_begin(&s, VR_ACTION_REVERSE);
	vr_engine_finish(&s, VR_ACTION_REVERSE, false);
	cr_assert_not(s.has_failback);
	expect_allowed(&s, &f, VR_ACTION_REVERSE);
}

Test(engine, configure_keeps_initial_sync_until_the_data_plane_reports)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	expect_allowed(&s, &f, VR_ACTION_CONFIGURE);
	vr_engine_begin(&s, VR_ACTION_CONFIGURE);
	cr_assert_eq(s.replication, VR_REPLICATION_INITIAL_SYNC);
	vr_engine_finish(&s, VR_ACTION_CONFIGURE, true);
	cr_assert_eq(s.replication, VR_REPLICATION_INITIAL_SYNC);
	cr_assert_eq(s.recovery, VR_RECOVERY_NOT_STARTED);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_NONE);
}

Test(engine, configure_failure_sets_error_and_allows_retry)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();

	vr_engine_begin(&s, VR_ACTION_CONFIGURE);
	vr_engine_finish(&s, VR_ACTION_CONFIGURE, false);
	cr_assert_eq(s.replication, VR_REPLICATION_ERROR);
	expect_allowed(&s, &f, VR_ACTION_CONFIGURE);
	vr_engine_begin(&s, VR_ACTION_CONFIGURE);
	cr_assert_eq(s.replication, VR_REPLICATION_INITIAL_SYNC);
}

static void expect_unchanged(enum vr_action a)
{
	const struct vr_rg_state before = replicating();
	struct vr_rg_state s = before;

	vr_engine_begin(&s, a);
	cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "%s begin", vr_engine_action_token(a));
	vr_engine_finish(&s, a, true);
	cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "%s success", vr_engine_action_token(a));
	vr_engine_finish(&s, a, false);
	cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "%s failure", vr_engine_action_token(a));
}

Test(engine, sync_leaves_state_unchanged)
{
	expect_unchanged(VR_ACTION_SYNC);
}

Test(engine, reconfigure_leaves_state_unchanged)
{
	expect_unchanged(VR_ACTION_RECONFIGURE);
}

Test(engine, move_leaves_state_unchanged)
{
	expect_unchanged(VR_ACTION_MOVE);
}

Test(engine, switch_server_leaves_state_unchanged)
{
	expect_unchanged(VR_ACTION_SWITCH_SERVER);
}

Test(engine, lifecycle_of_one_replication)
{
	struct vr_rg_state s = configured();
	struct vr_vdc_flags f = all_enabled();
	const enum vr_action steps[] = {VR_ACTION_TEST_FAILOVER, VR_ACTION_TEST_CLEANUP,
					VR_ACTION_PAUSE,	 VR_ACTION_RESUME,
					VR_ACTION_FAILOVER,	 VR_ACTION_REVERSE,
					VR_ACTION_DELETE};

	expect_allowed(&s, &f, VR_ACTION_CONFIGURE);
	vr_engine_begin(&s, VR_ACTION_CONFIGURE);
	vr_engine_finish(&s, VR_ACTION_CONFIGURE, true);
	/* what the data plane does once the first instance is committed */
	s.has_instance = true;
	s.replication = VR_REPLICATION_OK;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		expect_allowed(&s, &f, steps[i]);
		vr_engine_begin(&s, steps[i]);
		vr_engine_finish(&s, steps[i], true);
	}
	cr_assert_eq(s.recovery, VR_RECOVERY_RECOVERED);
	cr_assert_eq(s.test_recovery, VR_TEST_RECOVERY_NONE);
	cr_assert_eq(s.replication, VR_REPLICATION_NOT_ACTIVE);
	cr_assert_not(s.paused);
	cr_assert(s.has_failback);
	cr_assert(s.deleting);
}

/* ---- properties over every combination ---- */

typedef void case_fn(const struct vr_rg_state *s, const struct vr_vdc_flags *f, enum vr_action a,
		     long *failures);

/* The next digit of a mixed-radix counter. */
static int digit(long *counter, int radix)
{
	int d = (int)(*counter % radix);

	*counter /= radix;
	return d;
}

/* Runs fn over every state, VDC flag set and action; returns the number of
 * cases it ran. Criterion assertions are costly per call, so fn counts
 * failures and reports the first few itself. */
static long for_each_case(case_fn *fn, long *failures)
{
	const long total = (long)VR_ACTION_COUNT * 16 * 16 * VR_RG_KIND_COUNT * VR_RECOVERY_COUNT *
			   VR_TEST_RECOVERY_COUNT * VR_REPLICATION_COUNT;

	for (long i = 0; i < total; i++) {
		long n = i;
		enum vr_action a = (enum vr_action)digit(&n, VR_ACTION_COUNT);
		int flags = digit(&n, 16);
		int bits = digit(&n, 16);
		int kind = digit(&n, VR_RG_KIND_COUNT);
		int recovery = digit(&n, VR_RECOVERY_COUNT);
		int test_recovery = digit(&n, VR_TEST_RECOVERY_COUNT);
		int replication = digit(&n, VR_REPLICATION_COUNT);
		struct vr_rg_state s = {
			.kind = (enum vr_rg_kind)kind,
			.recovery = (enum vr_recovery_state)recovery,
			.test_recovery = (enum vr_test_recovery_state)test_recovery,
			.replication = (enum vr_replication_state)replication,
			.paused = bits & 1,
			.has_instance = bits & 2,
			.has_failback = bits & 4,
			.deleting = bits & 8,
		};
		struct vr_vdc_flags f = {flags & 1, flags & 2, flags & 4, flags & 8};

		fn(&s, &f, a, failures);
	}
	return total;
}

static void describe(char *out, size_t len, const struct vr_rg_state *s,
		     const struct vr_vdc_flags *f, enum vr_action a)
{
	snprintf(out, len,
		 "%s on %s/%s/%s/%s paused=%d instance=%d failback=%d deleting=%d "
		 "vdc=%d%d%d%d",
		 vr_engine_action_token(a), vr_engine_kind_token(s->kind),
		 vr_engine_recovery_token(s->recovery),
		 vr_engine_test_recovery_token(s->test_recovery),
		 vr_engine_replication_token(s->replication), s->paused, s->has_instance,
		 s->has_failback, s->deleting, f->failover, f->test_failover, f->planned_migration,
		 f->replication);
}

static void fail_case(long *failures, const char *what, const struct vr_rg_state *s,
		      const struct vr_vdc_flags *f, enum vr_action a)
{
	if ((*failures)++ < 5) {
		char text[512];

		describe(text, sizeof text, s, f, a);
		cr_log_error("%s: %s", what, text);
	}
}

static bool camel_case(const char *code)
{
	if (!code || code[0] < 'A' || code[0] > 'Z')
		return false;
	for (const char *p = code; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static void check_is_total(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			   enum vr_action a, long *failures)
{
	const struct vr_engine_refusal *r = (const void *)1;
	int rc = vr_engine_check(s, f, a, &r);

	if (rc == 0) {
		if (r != NULL)
			fail_case(failures, "allowed with a refusal", s, f, a);
		return;
	}
	if (rc != VR_ECONFLICT || r == NULL) {
		fail_case(failures, "neither allowed nor refused", s, f, a);
		return;
	}
	if (!camel_case(r->vendor_code) || !r->minor || !r->minor[0] || !r->message ||
	    !r->message[0] || (r->major != 400 && r->major != 403 && r->major != 409))
		fail_case(failures, "incomplete refusal", s, f, a);
	/* the answer does not depend on whether the caller wants the refusal */
	if (vr_engine_check(s, f, a, NULL) != rc)
		fail_case(failures, "answer differs without refusal_out", s, f, a);
}

Test(engine, check_answers_every_combination)
{
	long failures = 0;
	long cases = for_each_case(check_is_total, &failures);

	cr_assert_eq(cases, 2L * 5 * 7 * 5 * 16 * 16 * VR_ACTION_COUNT);
	cr_assert_eq(failures, 0, "%ld of %ld cases failed", failures, cases);
}

/* Actions that may be accepted again while their job runs: their jobs
 * queue behind each other in the replication's job lane and converge. */
static bool repeatable(enum vr_action a)
{
	return is_control(a) || a == VR_ACTION_MOVE || a == VR_ACTION_SWITCH_SERVER ||
	       a == VR_ACTION_CONFIGURE;
}

static void no_double_start(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			    enum vr_action a, long *failures)
{
	struct vr_rg_state running = *s;

	if (vr_engine_check(s, f, a, NULL) != 0)
		return;
	vr_engine_begin(&running, a);
	int again = vr_engine_check(&running, f, a, NULL);
	if (repeatable(a) ? again != 0 : again != VR_ECONFLICT)
		fail_case(failures,
			  repeatable(a) ? "repeatable action refused after begin"
					: "action accepted twice",
			  s, f, a);
}

Test(engine, begin_refuses_a_second_start_except_repeatable_actions)
{
	long failures = 0;
	long cases = for_each_case(no_double_start, &failures);

	cr_assert_eq(failures, 0, "%ld of %ld cases failed", failures, cases);
}

static bool state_has_tokens(const struct vr_rg_state *s)
{
	return vr_engine_kind_token(s->kind) && vr_engine_recovery_token(s->recovery) &&
	       vr_engine_test_recovery_token(s->test_recovery) &&
	       vr_engine_replication_token(s->replication);
}

static bool still_running(const struct vr_rg_state *s, enum vr_action a)
{
	switch (a) {
	case VR_ACTION_FAILOVER:
	case VR_ACTION_PLANNED_MIGRATION: return s->recovery == VR_RECOVERY_IN_PROGRESS;
	case VR_ACTION_TEST_FAILOVER: return s->test_recovery == VR_TEST_RECOVERY_IN_PROGRESS;
	case VR_ACTION_TEST_CLEANUP:
		return s->test_recovery == VR_TEST_RECOVERY_CLEANUP_IN_PROGRESS;
	default: return false;
	}
}

static void finish_is_valid(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			    enum vr_action a, long *failures)
{
	if (vr_engine_check(s, f, a, NULL) != 0)
		return;
	for (int ok = 0; ok < 2; ok++) {
		struct vr_rg_state t = *s;

		vr_engine_begin(&t, a);
		if (!state_has_tokens(&t))
			fail_case(failures, "begin left an invalid state", s, f, a);
		vr_engine_finish(&t, a, ok);
		if (!state_has_tokens(&t))
			fail_case(failures, "finish left an invalid state", s, f, a);
		/* no job ends in a state that says it still runs */
		if (still_running(&t, a))
			fail_case(failures, "finish left its job running", s, f, a);
		for (int b = 0; b < VR_ACTION_COUNT; b++) {
			int rc = vr_engine_check(&t, f, (enum vr_action)b, NULL);
			if (rc != 0 && rc != VR_ECONFLICT)
				fail_case(failures, "finish left a state check rejects", s, f, a);
		}
	}
}

Test(engine, finish_always_leaves_valid_states)
{
	long failures = 0;
	long cases = for_each_case(finish_is_valid, &failures);

	cr_assert_eq(failures, 0, "%ld of %ld cases failed", failures, cases);
}

/* Every refusal code the table can give, in alphabetical order. */
static const char *const expected_codes[] = {
	"AlreadyConfigured",
	"AlreadyPaused",
	"AlreadyRecovered",
	"AlreadyReversed",
	"AlreadyTestRecovered",
	"FailoverIncomplete",
	"IncomingReplicationOnly",
	"NoInstanceAvailable",
	"NoTestFailoverToClean",
	"NotPaused",
	"NotRecovered",
	"OngoingFailover",
	"OngoingTestCleanup",
	"OngoingTestFailover",
	"ReplicationBeingDeleted",
	"ReplicationPaused",
	"TestCleanupRequired",
	"VdcNotEnabledForRecoveryFault",
	"VdcNotEnabledForReplication",
};
#define NCODES (sizeof expected_codes / sizeof expected_codes[0])

static const struct vr_engine_refusal *seen[NCODES];
static long unexpected;

static void collect_codes(const struct vr_rg_state *s, const struct vr_vdc_flags *f,
			  enum vr_action a, long *failures)
{
	const struct vr_engine_refusal *r;

	if (vr_engine_check(s, f, a, &r) != VR_ECONFLICT)
		return;
	for (size_t i = 0; i < NCODES; i++)
		if (strcmp(r->vendor_code, expected_codes[i]) == 0) {
			/* one code, one refusal: same major, minor and message */
			if (seen[i] && seen[i] != r)
				fail_case(failures, "one code with two refusals", s, f, a);
			seen[i] = r;
			return;
		}
	unexpected++;
	fail_case(failures, r->vendor_code, s, f, a);
}

Test(engine, every_refusal_code_is_expected_and_reachable)
{
	long failures = 0;

	for_each_case(collect_codes, &failures);
	cr_assert_eq(unexpected, 0, "codes outside the documented list");
	cr_assert_eq(failures, 0);
	for (size_t i = 0; i < NCODES; i++)
		cr_assert_not_null(seen[i], "%s is never given", expected_codes[i]);
}

Test(engine, check_rejects_invalid_input)
{
	struct vr_rg_state s = replicating();
	struct vr_vdc_flags f = all_enabled();
	const struct vr_engine_refusal *r = (const void *)1;

	cr_assert_eq(vr_engine_check(NULL, &f, VR_ACTION_SYNC, &r), VR_EINVAL);
	cr_assert_null(r);
	cr_assert_eq(vr_engine_check(&s, NULL, VR_ACTION_SYNC, &r), VR_EINVAL);
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_COUNT, &r), VR_EINVAL);
	cr_assert_eq(vr_engine_check(&s, &f, (enum vr_action) - 1, &r), VR_EINVAL);
	cr_assert_null(r);
	s.recovery = VR_RECOVERY_COUNT;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_SYNC, &r), VR_EINVAL);
	s = replicating();
	s.test_recovery = (enum vr_test_recovery_state)99;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_SYNC, &r), VR_EINVAL);
	s = replicating();
	s.replication = VR_REPLICATION_COUNT;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_SYNC, &r), VR_EINVAL);
	s = replicating();
	s.kind = VR_RG_KIND_COUNT;
	cr_assert_eq(vr_engine_check(&s, &f, VR_ACTION_SYNC, &r), VR_EINVAL);
	cr_assert_null(r);
	/* begin and finish ignore what they cannot apply */
	s = replicating();
	vr_engine_begin(&s, VR_ACTION_COUNT);
	vr_engine_finish(&s, VR_ACTION_COUNT, true);
	vr_engine_begin(NULL, VR_ACTION_FAILOVER);
	vr_engine_finish(NULL, VR_ACTION_FAILOVER, true);
	struct vr_rg_state before = replicating();
	cr_assert_eq(memcmp(&s, &before, sizeof s), 0);
}

/* ---- tokens ---- */

Test(engine, tokens_round_trip)
{
	for (int i = 0; i < VR_ACTION_COUNT; i++) {
		enum vr_action v = VR_ACTION_COUNT;
		const char *t = vr_engine_action_token((enum vr_action)i);
		cr_assert_not_null(t);
		cr_assert_eq(vr_engine_action_parse(&v, t), 0, "%s", t);
		cr_assert_eq((int)v, i, "%s", t);
	}
	for (int i = 0; i < VR_RG_KIND_COUNT; i++) {
		enum vr_rg_kind v = VR_RG_KIND_COUNT;
		const char *t = vr_engine_kind_token((enum vr_rg_kind)i);
		cr_assert_not_null(t);
		cr_assert_eq(vr_engine_kind_parse(&v, t), 0, "%s", t);
		cr_assert_eq((int)v, i, "%s", t);
	}
	for (int i = 0; i < VR_RECOVERY_COUNT; i++) {
		enum vr_recovery_state v = VR_RECOVERY_COUNT;
		const char *t = vr_engine_recovery_token((enum vr_recovery_state)i);
		cr_assert_not_null(t);
		cr_assert_eq(vr_engine_recovery_parse(&v, t), 0, "%s", t);
		cr_assert_eq((int)v, i, "%s", t);
	}
	for (int i = 0; i < VR_TEST_RECOVERY_COUNT; i++) {
		enum vr_test_recovery_state v = VR_TEST_RECOVERY_COUNT;
		const char *t = vr_engine_test_recovery_token((enum vr_test_recovery_state)i);
		cr_assert_not_null(t);
		cr_assert_eq(vr_engine_test_recovery_parse(&v, t), 0, "%s", t);
		cr_assert_eq((int)v, i, "%s", t);
	}
	for (int i = 0; i < VR_REPLICATION_COUNT; i++) {
		enum vr_replication_state v = VR_REPLICATION_COUNT;
		const char *t = vr_engine_replication_token((enum vr_replication_state)i);
		cr_assert_not_null(t);
		cr_assert_eq(vr_engine_replication_parse(&v, t), 0, "%s", t);
		cr_assert_eq((int)v, i, "%s", t);
	}
}

Test(engine, tokens_are_the_documented_wire_spellings)
{
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_FAILOVER), "failover");
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_TEST_FAILOVER), "testFailover");
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_TEST_CLEANUP), "testCleanup");
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_PLANNED_MIGRATION), "plannedMigration");
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_MOVE), "moveReplication");
	cr_assert_str_eq(vr_engine_action_token(VR_ACTION_SWITCH_SERVER), "switchVrServer");
	/* the tokens clients compare against (reference 6.2.5) */
	cr_assert_str_eq(vr_engine_test_recovery_token(VR_TEST_RECOVERY_NONE), "none");
	cr_assert_str_eq(vr_engine_test_recovery_token(VR_TEST_RECOVERY_COMPLETE), "complete");
	cr_assert_str_eq(vr_engine_test_recovery_token(VR_TEST_RECOVERY_TEST_ERROR), "testError");
	cr_assert_str_eq(vr_engine_recovery_token(VR_RECOVERY_NOT_STARTED), "notStarted");
	cr_assert_str_eq(vr_engine_replication_token(VR_REPLICATION_INITIAL_SYNC), "initialSync");
}

Test(engine, tokens_reject_unknown_spellings_and_ranges)
{
	enum vr_action a = VR_ACTION_SYNC;
	enum vr_recovery_state r = VR_RECOVERY_ERROR;
	enum vr_test_recovery_state t = VR_TEST_RECOVERY_COMPLETE;
	enum vr_replication_state p = VR_REPLICATION_OK;
	enum vr_rg_kind k = VR_RG_FAILBACK;

	cr_assert_eq(vr_engine_action_parse(&a, "Failover"), VR_EINVAL);
	cr_assert_eq(vr_engine_action_parse(&a, "failover "), VR_EINVAL);
	cr_assert_eq(vr_engine_action_parse(&a, ""), VR_EINVAL);
	cr_assert_eq(vr_engine_action_parse(&a, NULL), VR_EINVAL);
	cr_assert_eq(a, VR_ACTION_SYNC, "a refused token leaves the output alone");
	cr_assert_eq(vr_engine_recovery_parse(&r, "ok"), VR_EINVAL);
	cr_assert_eq(r, VR_RECOVERY_ERROR);
	cr_assert_eq(vr_engine_test_recovery_parse(&t, "NONE"), VR_EINVAL);
	cr_assert_eq(t, VR_TEST_RECOVERY_COMPLETE);
	cr_assert_eq(vr_engine_replication_parse(&p, "OK"), VR_EINVAL);
	cr_assert_eq(p, VR_REPLICATION_OK);
	cr_assert_eq(vr_engine_kind_parse(&k, "outgoing"), VR_EINVAL);
	cr_assert_eq(k, VR_RG_FAILBACK);
	cr_assert_null(vr_engine_action_token(VR_ACTION_COUNT));
	cr_assert_null(vr_engine_action_token((enum vr_action) - 1));
	cr_assert_null(vr_engine_kind_token(VR_RG_KIND_COUNT));
	cr_assert_null(vr_engine_recovery_token(VR_RECOVERY_COUNT));
	cr_assert_null(vr_engine_test_recovery_token(VR_TEST_RECOVERY_COUNT));
	cr_assert_null(vr_engine_replication_token(VR_REPLICATION_COUNT));
}

/* ---- the migration and the documentation ---- */

static char *read_source(const char *relative)
{
	const char *top = getenv("VRCLOUD_SRCDIR");
	char path[4096];

	if (!top || !*top)
		top = VR_SRCDIR;
	snprintf(path, sizeof path, "%s/%s", top, relative);
	FILE *in = fopen(path, "rb");
	cr_assert_not_null(in, "cannot open %s", path);
	cr_assert_eq(fseek(in, 0, SEEK_END), 0);
	long len = ftell(in);
	cr_assert_geq(len, 0);
	rewind(in);
	char *text = malloc((size_t)len + 1);
	cr_assert_not_null(text);
	cr_assert_eq(fread(text, 1, (size_t)len, in), (size_t)len);
	text[len] = '\0';
	fclose(in);
	return text;
}

/* The body of CREATE TABLE replications, NUL-terminated in place. */
static char *replications_table(char *sql)
{
	char *start = strstr(sql, "CREATE TABLE replications (");
	cr_assert_not_null(start);
	char *end = strstr(start, "\n);");
	cr_assert_not_null(end);
	*end = '\0';
	return start;
}

/* The quoted tokens of "CHECK (column IN ('a', 'b', ...))" in table; count
 * returned, tokens copied into out. */
static size_t check_list(const char *table, const char *column, char out[][32], size_t max)
{
	char needle[128];
	size_t n = 0;

	snprintf(needle, sizeof needle, "CHECK (%s IN (", column);
	const char *p = strstr(table, needle);
	cr_assert_not_null(p, "no CHECK list for %s", column);
	p += strlen(needle);
	const char *end = strstr(p, "))");
	cr_assert_not_null(end);
	while ((p = memchr(p, '\'', (size_t)(end - p))) != NULL) {
		const char *close = strchr(p + 1, '\'');
		cr_assert(close && close < end);
		cr_assert_lt(n, max);
		cr_assert_lt((size_t)(close - p - 1), sizeof out[0]);
		snprintf(out[n++], sizeof out[0], "%.*s", (int)(close - p - 1), p + 1);
		p = close + 1;
	}
	return n;
}

Test(engine, tokens_match_the_migration)
{
	char *sql = read_source("migrations/0001_foundation.sql");
	char *table = replications_table(sql);
	char list[16][32];
	size_t n;

	n = check_list(table, "test_recovery_state", list, 16);
	cr_assert_eq(n, VR_TEST_RECOVERY_COUNT);
	for (size_t i = 0; i < n; i++) {
		enum vr_test_recovery_state v;
		cr_assert_eq(vr_engine_test_recovery_parse(&v, list[i]), 0, "%s", list[i]);
	}

	n = check_list(table, "recovery_state", list, 16);
	cr_assert_eq(n, VR_RECOVERY_COUNT);
	for (size_t i = 0; i < n; i++) {
		enum vr_recovery_state v;
		cr_assert_eq(vr_engine_recovery_parse(&v, list[i]), 0, "%s", list[i]);
	}

	n = check_list(table, "kind", list, 16);
	cr_assert_eq(n, VR_RG_KIND_COUNT);
	for (size_t i = 0; i < n; i++) {
		enum vr_rg_kind v;
		cr_assert_eq(vr_engine_kind_parse(&v, list[i]), 0, "%s", list[i]);
	}

	/* replication_state has no CHECK list; its default must be ours */
	const char *col = strstr(table, "replication_state ");
	cr_assert_not_null(col);
	const char *def = strstr(col, "DEFAULT '");
	cr_assert_not_null(def);
	def += strlen("DEFAULT '");
	char token[32];
	snprintf(token, sizeof token, "%.*s", (int)strcspn(def, "'"), def);
	enum vr_replication_state repl;
	cr_assert_eq(vr_engine_replication_parse(&repl, token), 0, "%s", token);
	cr_assert_eq(repl, VR_REPLICATION_INITIAL_SYNC);
	free(sql);
}

Test(engine, every_code_and_token_is_documented)
{
	char *doc = read_source("docs/state-machine.md");
	char quoted[128];

	for (size_t i = 0; i < NCODES; i++) {
		snprintf(quoted, sizeof quoted, "`%s`", expected_codes[i]);
		cr_assert_not_null(strstr(doc, quoted), "%s is not in docs/state-machine.md",
				   expected_codes[i]);
	}
	for (int i = 0; i < VR_ACTION_COUNT; i++) {
		snprintf(quoted, sizeof quoted, "`%s`", vr_engine_action_token((enum vr_action)i));
		cr_assert_not_null(strstr(doc, quoted), "%s is not documented", quoted);
	}
	for (int i = 0; i < VR_REPLICATION_COUNT; i++) {
		snprintf(quoted, sizeof quoted, "`%s`",
			 vr_engine_replication_token((enum vr_replication_state)i));
		cr_assert_not_null(strstr(doc, quoted), "%s is not documented", quoted);
	}
	for (int i = 0; i < VR_TEST_RECOVERY_COUNT; i++) {
		snprintf(quoted, sizeof quoted, "`%s`",
			 vr_engine_test_recovery_token((enum vr_test_recovery_state)i));
		cr_assert_not_null(strstr(doc, quoted), "%s is not documented", quoted);
	}
	free(doc);
}
