# The job transport over Redis Streams and its integration test (real Redis).
libvrcloud_la_SOURCES += src/include/vrcloud/jobq.h src/queue/jobq.c

check_PROGRAMS += tests/integration/test_queue_jobs
tests_integration_test_queue_jobs_SOURCES = tests/integration/test_queue_jobs.c
tests_integration_test_queue_jobs_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_queue_jobs_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_queue_jobs_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_queue_jobs

EXTRA_DIST += docs/job-transport.md
