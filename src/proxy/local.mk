# vrcloud-proxy: terminates the agents' tunnels on one epoll loop
# (docs/tunnels.md). Its modules build into the internal library.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/proxy.h src/proxy/internal.h \
	src/proxy/config.c src/proxy/documents.c src/proxy/map.c src/proxy/verifier.c \
	src/proxy/registry.c src/proxy/conn.c src/proxy/pump.h src/proxy/pump.c \
	src/proxy/control.c src/proxy/reverse.c src/proxy/proxy.c

bin_PROGRAMS += vrcloud-proxy
vrcloud_proxy_SOURCES = src/cmd/vrcloud-proxy.c
vrcloud_proxy_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS) $(CURL_CFLAGS)
vrcloud_proxy_LDADD = libvrcloud.la $(CURL_LIBS)
