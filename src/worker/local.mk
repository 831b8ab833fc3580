# vrcloud-worker: the replica server that runs cloud-side jobs
# (docs/worker.md). Its modules build into the internal library, so that the
# unit tests link the same code; the main is a thin program over it.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/worker.h src/worker/internal.h \
	src/worker/config.c src/worker/documents.c src/worker/client.c \
	src/worker/actions.c src/worker/runner.c src/worker/worker.c \
	src/worker/receiver.h src/worker/receiver.c src/worker/receive.c \
	src/worker/instances.c \
	src/worker/recover.h src/worker/recover.c src/worker/failback.c
libvrcloud_la_CFLAGS += $(CURL_CFLAGS)
libvrcloud_la_LIBADD += $(CURL_LIBS)

bin_PROGRAMS += vrcloud-worker
vrcloud_worker_SOURCES = src/cmd/vrcloud-worker.c
vrcloud_worker_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS) $(CURL_CFLAGS)
vrcloud_worker_LDADD = libvrcloud.la $(CURL_LIBS)

EXTRA_DIST += docs/worker.md docs/recovery.md

check_PROGRAMS += tests/unit/test_worker_config
tests_unit_test_worker_config_SOURCES = tests/unit/test_worker_config.c
tests_unit_test_worker_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_worker_config_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_worker_config_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_worker_config

check_PROGRAMS += tests/unit/test_worker_documents
tests_unit_test_worker_documents_SOURCES = tests/unit/test_worker_documents.c
tests_unit_test_worker_documents_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_worker_documents_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_worker_documents_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_worker_documents

check_PROGRAMS += tests/unit/test_worker_actions
tests_unit_test_worker_actions_SOURCES = tests/unit/test_worker_actions.c
tests_unit_test_worker_actions_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_worker_actions_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_worker_actions_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_worker_actions

check_PROGRAMS += tests/unit/test_worker_client
tests_unit_test_worker_client_SOURCES = tests/unit/test_worker_client.c
tests_unit_test_worker_client_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_worker_client_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_worker_client_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_worker_client

# vrcloud-worker against the real API, PostgreSQL and Redis (tests/integration).
check_PROGRAMS += tests/integration/test_worker
tests_integration_test_worker_SOURCES = tests/integration/test_worker.c \
	tests/integration/harness.c tests/integration/harness.h
tests_integration_test_worker_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_worker_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_worker_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_worker

# The recovery jobs moving data, with a replica store the test fills.
check_PROGRAMS += tests/integration/test_recovery
tests_integration_test_recovery_SOURCES = tests/integration/test_recovery.c \
	tests/integration/replica.c tests/integration/replica.h \
	tests/integration/harness.c tests/integration/harness.h
tests_integration_test_recovery_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_recovery_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_recovery_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_recovery
