# The tunnel protocol (frames, hello, commands), TLS helpers and the event
# loop shared by vrcloud-proxy and vrcloud-agent (docs/tunnels.md).
libvrcloud_la_SOURCES += \
	src/include/vrcloud/tunnel.h src/tunnel/frame.c src/tunnel/address.c \
	src/include/vrcloud/tls.h src/tunnel/tls.c \
	src/include/vrcloud/loop.h src/tunnel/loop.c \
	src/include/vrcloud/commands.h src/tunnel/commands.c

EXTRA_DIST += docs/tunnels.md

check_PROGRAMS += tests/unit/test_tunnel_frame
tests_unit_test_tunnel_frame_SOURCES = tests/unit/test_tunnel_frame.c
tests_unit_test_tunnel_frame_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_tunnel_frame_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_tunnel_frame_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_tunnel_frame

check_PROGRAMS += tests/unit/test_tunnel_config
tests_unit_test_tunnel_config_SOURCES = tests/unit/test_tunnel_config.c
tests_unit_test_tunnel_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_tunnel_config_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_tunnel_config_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_tunnel_config

# vrcloud-proxy and vrcloud-agent as built, with TLS, the API and Redis.
check_PROGRAMS += tests/integration/test_tunnel
tests_integration_test_tunnel_SOURCES = tests/integration/test_tunnel.c \
	tests/integration/harness.c tests/integration/harness.h \
	tests/integration/replica.c tests/integration/replica.h
tests_integration_test_tunnel_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_tunnel_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_tunnel_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_tunnel

# The proxy's /metrics and limits with real processes.
check_PROGRAMS += tests/integration/test_tunnel_ops
tests_integration_test_tunnel_ops_SOURCES = tests/integration/test_tunnel_ops.c \
	tests/integration/harness.c tests/integration/harness.h
tests_integration_test_tunnel_ops_CFLAGS = $(TEST_CFLAGS)
tests_integration_test_tunnel_ops_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_test_tunnel_ops_LDADD = $(TEST_LIBS)
TESTS += tests/integration/test_tunnel_ops
