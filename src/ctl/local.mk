# vrcloudctl, the operator CLI: everything but main() is in the internal
# library, with the password module it hashes with.
libvrcloud_la_SOURCES += \
	src/ctl/ctl.h src/ctl/ctl.c src/ctl/args.c src/ctl/input.c src/ctl/output.c \
	src/ctl/db.c src/ctl/migrate.c src/ctl/org.c src/ctl/vdc.c src/ctl/user.c \
	src/ctl/seed.c src/ctl/peer.c src/ctl/replication.c src/ctl/service.c src/ctl/vapp.c src/ctl/tunnels.c \
	src/ctl/instance.c \
	src/ctl/tunnel_probe.c src/auth/password.c

# The migrations, embedded so that the binary is self-contained.
nodist_libvrcloud_la_SOURCES = src/ctl/migrations_gen.c
BUILT_SOURCES = src/ctl/migrations_gen.c
CLEANFILES += src/ctl/migrations_gen.c
EXTRA_DIST += build-aux/embed-sql.sh
src/ctl/migrations_gen.c: $(dist_migrations_DATA) $(top_srcdir)/build-aux/embed-sql.sh
	$(AM_V_GEN)$(MKDIR_P) src/ctl && \
	$(SHELL) $(top_srcdir)/build-aux/embed-sql.sh -d $(srcdir) $(dist_migrations_DATA) \
		>$@.tmp && mv $@.tmp $@

bin_PROGRAMS += vrcloudctl
vrcloudctl_SOURCES = src/cmd/vrcloudctl.c
vrcloudctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
vrcloudctl_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS)
vrcloudctl_LDADD = libvrcloud.la

CTL_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
CTL_TEST_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS) $(CRITERION_CFLAGS)
CTL_TEST_LDADD = libvrcloud.la $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test_auth_password
tests_unit_test_auth_password_SOURCES = tests/unit/test_auth_password.c
tests_unit_test_auth_password_CFLAGS = $(CTL_TEST_CFLAGS)
tests_unit_test_auth_password_LDADD = $(CTL_TEST_LDADD)
TESTS += tests/unit/test_auth_password

check_PROGRAMS += tests/unit/test_ctl_args
tests_unit_test_ctl_args_SOURCES = tests/unit/test_ctl_args.c
tests_unit_test_ctl_args_CPPFLAGS = $(CTL_TEST_CPPFLAGS)
tests_unit_test_ctl_args_CFLAGS = $(CTL_TEST_CFLAGS)
tests_unit_test_ctl_args_LDADD = $(CTL_TEST_LDADD)
TESTS += tests/unit/test_ctl_args

check_PROGRAMS += tests/unit/test_ctl_io
tests_unit_test_ctl_io_SOURCES = tests/unit/test_ctl_io.c
tests_unit_test_ctl_io_CPPFLAGS = $(CTL_TEST_CPPFLAGS)
tests_unit_test_ctl_io_CFLAGS = $(CTL_TEST_CFLAGS)
tests_unit_test_ctl_io_LDADD = $(CTL_TEST_LDADD)
TESTS += tests/unit/test_ctl_io

check_PROGRAMS += tests/unit/test_ctl_migrations
tests_unit_test_ctl_migrations_SOURCES = tests/unit/test_ctl_migrations.c
tests_unit_test_ctl_migrations_CPPFLAGS = $(CTL_TEST_CPPFLAGS)
tests_unit_test_ctl_migrations_CFLAGS = $(CTL_TEST_CFLAGS)
tests_unit_test_ctl_migrations_LDADD = $(CTL_TEST_LDADD)
TESTS += tests/unit/test_ctl_migrations

check_PROGRAMS += tests/integration/test_ctl
tests_integration_test_ctl_SOURCES = tests/integration/test_ctl.c
tests_integration_test_ctl_CPPFLAGS = $(CTL_TEST_CPPFLAGS)
tests_integration_test_ctl_CFLAGS = $(CTL_TEST_CFLAGS)
tests_integration_test_ctl_LDADD = $(CTL_TEST_LDADD)
TESTS += tests/integration/test_ctl
