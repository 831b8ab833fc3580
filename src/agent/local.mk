# vrcloud-agent, network side: the on-premises end of the tunnels
# (docs/tunnels.md). Its modules build into the internal library.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/agent.h \
	src/agent/config.c src/agent/conn.c src/agent/agent.c src/agent/pair.c src/agent/probe.c \
	src/agent/failback.c

bin_PROGRAMS += vrcloud-agent
vrcloud_agent_SOURCES = src/cmd/vrcloud-agent.c
vrcloud_agent_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS)
vrcloud_agent_LDADD = libvrcloud.la $(CURL_LIBS)

# The agent's failback journal and the failback intro line.
check_PROGRAMS += tests/unit/test_agent_failback
tests_unit_test_agent_failback_SOURCES = tests/unit/test_agent_failback.c
tests_unit_test_agent_failback_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_agent_failback_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_agent_failback_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_agent_failback
