# The replication state machine (src/engine) and its unit test.
libvrcloud_la_SOURCES += src/include/vrcloud/engine.h src/engine/state.c
EXTRA_DIST += docs/state-machine.md

check_PROGRAMS += tests/unit/test_engine_state
tests_unit_test_engine_state_SOURCES = tests/unit/test_engine_state.c
tests_unit_test_engine_state_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_engine_state_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_engine_state_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_engine_state
