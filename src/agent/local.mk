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
