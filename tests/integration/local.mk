# Integration tests of vrcloud-api against real PostgreSQL and Redis (those
# named by VRCLOUD_TEST_PGURI / VRCLOUD_TEST_REDIS, else throwaway servers
# started through contrib/lib/services.sh) and the built vrcloud-api and
# vrcloudctl. Each program sets up its own database, fixtures and API in
# tests/integration/harness.c, so that `make -j2 check` runs them side by
# side, and takes the helpers the programs share (assertions, accepting an
# action, driving its job as a worker) from tests/integration/helpers.c.
# The longest (faults: servers stopped and workers killed; sessions: expiry
# and throttling wait for real time; jobs: the relay does too) come first.

# Faults with real processes (worker killed mid-job, Redis restarted empty,
# PostgreSQL stopped, 500 concurrent actions): its own servers, which it
# stops and starts.
check_PROGRAMS += tests/integration/test_faults
tests_integration_test_faults_SOURCES = tests/integration/test_faults.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h \
	tests/integration/replica.c tests/integration/replica.h
tests_integration_test_faults_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_faults_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_faults_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_faults

check_PROGRAMS += tests/integration/test_api_sessions
tests_integration_test_api_sessions_SOURCES = tests/integration/test_api_sessions.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_sessions_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_sessions_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_sessions_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_sessions

check_PROGRAMS += tests/integration/test_api_jobs
tests_integration_test_api_jobs_SOURCES = tests/integration/test_api_jobs.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_jobs_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_jobs_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_jobs_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_jobs

check_PROGRAMS += tests/integration/test_api_failback
tests_integration_test_api_failback_SOURCES = tests/integration/test_api_failback.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_failback_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_failback_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_failback_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_failback

check_PROGRAMS += tests/integration/test_api_actions
tests_integration_test_api_actions_SOURCES = tests/integration/test_api_actions.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_actions_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_actions_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_actions_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_actions

check_PROGRAMS += tests/integration/test_api_configure
tests_integration_test_api_configure_SOURCES = tests/integration/test_api_configure.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_configure_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_configure_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_configure_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_configure

check_PROGRAMS += tests/integration/test_api_negotiation
tests_integration_test_api_negotiation_SOURCES = tests/integration/test_api_negotiation.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_negotiation_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_negotiation_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_negotiation_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_negotiation

check_PROGRAMS += tests/integration/test_api_tenancy
tests_integration_test_api_tenancy_SOURCES = tests/integration/test_api_tenancy.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_tenancy_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_tenancy_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_tenancy_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_tenancy

check_PROGRAMS += tests/integration/test_api_reads
tests_integration_test_api_reads_SOURCES = tests/integration/test_api_reads.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_reads_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_reads_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_reads_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_reads

check_PROGRAMS += tests/integration/test_api_paging
tests_integration_test_api_paging_SOURCES = tests/integration/test_api_paging.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_paging_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_paging_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_paging_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_paging

check_PROGRAMS += tests/integration/test_api_badinput
tests_integration_test_api_badinput_SOURCES = tests/integration/test_api_badinput.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_badinput_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_badinput_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_badinput_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_badinput

check_PROGRAMS += tests/integration/test_api_internal
tests_integration_test_api_internal_SOURCES = tests/integration/test_api_internal.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_internal_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_internal_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_internal_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_internal

check_PROGRAMS += tests/integration/test_api_cancel
tests_integration_test_api_cancel_SOURCES = tests/integration/test_api_cancel.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_cancel_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_cancel_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_cancel_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_cancel

check_PROGRAMS += tests/integration/test_api_schema
tests_integration_test_api_schema_SOURCES = tests/integration/test_api_schema.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_schema_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_schema_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_schema_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_schema

EXTRA_DIST += tests/integration/README.md


check_PROGRAMS += tests/integration/test_api_instances
tests_integration_test_api_instances_SOURCES = tests/integration/test_api_instances.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_api_instances_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_api_instances_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_api_instances_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_api_instances

# The worker's replication port through the real tunnel stack.
check_PROGRAMS += tests/integration/test_replication
tests_integration_test_replication_SOURCES = tests/integration/test_replication.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_replication_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_replication_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_replication_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_replication

# The data plane with the whole stack (two workers sharing a store, two
# proxies behind haproxy, the agent daemon, vrcloud-io), byte for byte.
check_PROGRAMS += tests/integration/test_dataplane
tests_integration_test_dataplane_SOURCES = tests/integration/test_dataplane.c \
	tests/integration/dataplane.c tests/integration/dataplane.h \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_dataplane_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_dataplane_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_dataplane_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_dataplane

# SIGKILL of the agent, a proxy or a worker during transfers and commits,
# with the same whole stack.
check_PROGRAMS += tests/integration/test_dataplane_kill
tests_integration_test_dataplane_kill_SOURCES = tests/integration/test_dataplane_kill.c \
	tests/integration/dataplane.c tests/integration/dataplane.h \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_dataplane_kill_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_dataplane_kill_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_dataplane_kill_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_dataplane_kill
