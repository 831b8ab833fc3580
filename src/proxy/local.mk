# vrcloud-proxy: terminates the agents' tunnels on one epoll loop
# (docs/tunnels.md). Its modules build into the internal library.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/proxy.h src/proxy/internal.h \
	src/proxy/config.c src/proxy/documents.c src/proxy/map.c src/proxy/verifier.c \
	src/proxy/registry.c src/proxy/conn.c src/proxy/pump.h src/proxy/pump.c \
	src/proxy/control.c src/proxy/reverse.c src/proxy/proxy.c \
	src/proxy/limits.h src/proxy/limits.c src/proxy/metrics.h src/proxy/metrics.c

bin_PROGRAMS += vrcloud-proxy
vrcloud_proxy_SOURCES = src/cmd/vrcloud-proxy.c
vrcloud_proxy_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS) $(CURL_CFLAGS)
vrcloud_proxy_LDADD = libvrcloud.la $(CURL_LIBS)

check_PROGRAMS += tests/unit/test_proxy_limits
tests_unit_test_proxy_limits_SOURCES = tests/unit/test_proxy_limits.c
tests_unit_test_proxy_limits_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_proxy_limits_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_proxy_limits_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_proxy_limits
