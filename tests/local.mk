# Tests: unit (tests/unit), integration (tests/integration, against real
# PostgreSQL, Redis and the built daemons), and benchmarks (make bench).
TEST_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS) $(CRITERION_CFLAGS) $(CURL_CFLAGS)
TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/tests
TEST_LIBS = libvrcloud.la $(CRITERION_LIBS) $(CURL_LIBS)

TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	VRCLOUD_SRCDIR='$(abs_top_srcdir)'; VRCLOUD_BUILDDIR='$(abs_top_builddir)'; \
	export VRCLOUD_SRCDIR VRCLOUD_BUILDDIR;

include tests/unit/local.mk
include tests/integration/local.mk
include tests/bench/local.mk
