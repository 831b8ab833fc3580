# The internal library: every module except the mains.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/err.h src/util/err.c \
	src/include/vrcloud/alloc.h src/util/alloc.c \
	src/include/vrcloud/buf.h src/util/buf.c \
	src/include/vrcloud/log.h src/util/log.c \
	src/include/vrcloud/uuid.h src/util/uuid.c \
	src/include/vrcloud/timefmt.h src/util/timefmt.c \
	src/include/vrcloud/config.h src/util/config.c \
	src/include/vrcloud/ini.h src/util/ini.c \
	src/include/vrcloud/daemon.h src/util/daemon.c \
	src/include/vrcloud/xml.h src/xml/writer.c src/xml/parse.c src/xml/schema.c \
	src/include/vrcloud/input.h src/xml/input.c \
	src/include/vrcloud/db.h src/db/statements.h src/db/conn.c src/db/statements.c \
	src/db/tenancy.c src/db/replications.c src/db/tasks.c src/db/servers.c \
	src/db/jobs.c src/db/actions.c src/db/lanes.c src/db/failback.c src/db/configure.c src/db/cancel.c \
	src/include/vrcloud/redis.h src/queue/redis.c \
	src/include/vrcloud/password.h src/include/vrcloud/auth.h \
	src/auth/statements.c src/auth/token.c src/auth/login.c \
	src/include/vrcloud/http.h src/http/internal.h src/http/server.c src/http/router.c \
	src/http/negotiate.c src/http/reply.c src/http/authn.c \
	src/api/api.h src/api/routes.c src/api/render.c src/api/versions.c src/api/health.c src/api/metrics.c \
	src/api/sessions.c src/api/orgs.c src/api/vdcs.c src/api/peers.c \
	src/api/replications.c src/api/tasks.c src/api/admin.c \
	src/api/internal_servers.c src/api/internal_jobs.c src/api/effects.c \
	src/api/actions.c src/api/publish.h src/api/publish.c src/api/relay.c \
	src/api/accept.c src/api/failback.c src/api/network_mappings.c \
	src/api/recovery_details.c src/api/move_replication.c src/api/vr_servers.c \
	src/api/pairing.c src/api/configure.c src/api/cancel.c
libvrcloud_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
# The internal route of the proxies (docs/tunnels.md).
libvrcloud_la_SOURCES += src/db/sites.c src/api/internal_sites.c
# The transfer protocol of data connections (docs/transfer-protocol.md).
libvrcloud_la_SOURCES += src/include/vrcloud/transfer.h src/transfer/wire.h \
	src/transfer/wire.c src/transfer/encode.c src/transfer/decode.c src/transfer/preamble.c \
	src/transfer/hashrec.c src/transfer/codec.c
