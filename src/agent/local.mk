# vrcloud-agent: the on-premises end of the tunnels (docs/tunnels.md) and
# the data side that protects VMs (docs/agent.md). Its modules build into
# the internal library.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/agent.h src/include/vrcloud/agent_sync.h \
	src/agent/config.c src/agent/conn.c src/agent/agent.c src/agent/pair.c src/agent/probe.c \
	src/agent/api.c src/agent/vm.c src/agent/state.c src/agent/spool.c src/agent/hook.c \
	src/agent/send.h src/agent/send.c src/agent/sync.c src/agent/schedule.c src/agent/progress.c \
	src/agent/scheduler.c src/agent/failback.c

bin_PROGRAMS += vrcloud-agent
vrcloud_agent_SOURCES = src/cmd/vrcloud-agent.c src/cmd/agent-commands.h \
	src/cmd/agent-protect.c src/cmd/agent-run.c
vrcloud_agent_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS)
vrcloud_agent_LDADD = libvrcloud.la $(CURL_LIBS)

# The agent's failback journal and the failback intro line.
check_PROGRAMS += tests/unit/test_agent_failback
tests_unit_test_agent_failback_SOURCES = tests/unit/test_agent_failback.c
tests_unit_test_agent_failback_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_failback_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_failback_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_failback
check_PROGRAMS += tests/unit/test_agent_vm
tests_unit_test_agent_vm_SOURCES = tests/unit/test_agent_vm.c
tests_unit_test_agent_vm_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_vm_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_vm_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_vm

check_PROGRAMS += tests/unit/test_agent_schedule
tests_unit_test_agent_schedule_SOURCES = tests/unit/test_agent_schedule.c
tests_unit_test_agent_schedule_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_schedule_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_schedule_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_schedule

check_PROGRAMS += tests/unit/test_agent_spool
tests_unit_test_agent_spool_SOURCES = tests/unit/test_agent_spool.c
tests_unit_test_agent_spool_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_spool_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_spool_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_spool

# The sender end to end through a real proxy into a receiver built on the
# transfer decoder, images compared byte for byte.
check_PROGRAMS += tests/integration/test_agent_sync
tests_integration_test_agent_sync_SOURCES = tests/integration/test_agent_sync.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/helpers.c tests/integration/helpers.h
tests_integration_test_agent_sync_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_agent_sync_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_agent_sync_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_agent_sync
EXTRA_DIST += docs/agent.md

check_PROGRAMS += tests/unit/test_agent_state
tests_unit_test_agent_state_SOURCES = tests/unit/test_agent_state.c
tests_unit_test_agent_state_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_state_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_state_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_state
