#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"

struct vr_redis {
	redisContext *ctx;
	struct vr_redis_addr addr;
};

int vr_redis_parse_uri(struct vr_redis_addr *addr, const char *uri)
{
	memset(addr, 0, sizeof *addr);
	addr->port = 6379;
	if (strncmp(uri, "unix://", 7) == 0) {
		const char *path = uri + 7;
		const char *q = strchr(path, '?');
		size_t len = q ? (size_t)(q - path) : strlen(path);
		if (len == 0 || len >= sizeof addr->path || path[0] != '/')
			return VR_EINVAL;
		memcpy(addr->path, path, len);
		if (q) {
			if (strncmp(q, "?db=", 4) != 0)
				return VR_EINVAL;
			char *end;
			long db = strtol(q + 4, &end, 10);
			if (!isdigit((unsigned char)q[4]) || *end || db > 1000)
				return VR_EINVAL;
			addr->db = (int)db;
		}
		return 0;
	}
	if (strncmp(uri, "redis://", 8) != 0)
		return VR_EINVAL;
	const char *host = uri + 8;
	if (strchr(host, '@'))
		return VR_EINVAL;
	const char *slash = strchr(host, '/');
	const char *end_host = slash ? slash : host + strlen(host);
	const char *colon = memchr(host, ':', (size_t)(end_host - host));
	const char *host_end = colon ? colon : end_host;
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof addr->host)
		return VR_EINVAL;
	memcpy(addr->host, host, hlen);
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || end != end_host || port < 1 ||
		    port > 65535)
			return VR_EINVAL;
		addr->port = (int)port;
	}
	if (slash && slash[1]) {
		char *end;
		long db = strtol(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || db > 1000)
			return VR_EINVAL;
		addr->db = (int)db;
	}
	return 0;
}

static int connect_redis(struct vr_redis *redis)
{
	if (redis->ctx)
		redisFree(redis->ctx);
	struct timeval timeout = {1, 0};
	redis->ctx = redis->addr.path[0]
			     ? redisConnectUnixWithTimeout(redis->addr.path, timeout)
			     : redisConnectWithTimeout(redis->addr.host, redis->addr.port, timeout);
	if (!redis->ctx || redis->ctx->err) {
		vr_log_warn("redis_connect_failed", "error",
			    redis->ctx ? redis->ctx->errstr : "out of memory");
		if (redis->ctx)
			redisFree(redis->ctx);
		redis->ctx = NULL;
		return VR_EUNAVAIL;
	}
	struct timeval io_timeout = {5, 0};
	redisSetTimeout(redis->ctx, io_timeout);
	if (redis->addr.db) {
		char db[16];
		snprintf(db, sizeof db, "%d", redis->addr.db);
		const char *argv[] = {"SELECT", db};
		redisReply *r = redisCommandArgv(redis->ctx, 2, argv, NULL);
		bool ok = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
		if (!ok) {
			redisFree(redis->ctx);
			redis->ctx = NULL;
			return VR_EUNAVAIL;
		}
	}
	return 0;
}

int vr_redis_open(struct vr_redis **out, const char *uri)
{
	*out = NULL;
	struct vr_redis *redis = vr_calloc(1, sizeof *redis);
	if (vr_redis_parse_uri(&redis->addr, uri)) {
		free(redis);
		return VR_EINVAL;
	}
	int rc = connect_redis(redis);
	if (rc) {
		free(redis);
		return rc;
	}
	*out = redis;
	return 0;
}

void vr_redis_close(struct vr_redis *redis)
{
	if (!redis)
		return;
	if (redis->ctx)
		redisFree(redis->ctx);
	free(redis);
}

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_redis_destroy(void *p)
{
	vr_redis_close(p);
}

static void make_thread_key(void)
{
	pthread_key_create(&thread_key, thread_redis_destroy);
}

struct vr_redis *vr_redis_thread(const char *uri)
{
	pthread_once(&thread_key_once, make_thread_key);
	struct vr_redis *redis = pthread_getspecific(thread_key);
	if (redis) {
		if (redis->ctx || connect_redis(redis) == 0)
			return redis;
		return NULL;
	}
	redis = vr_calloc(1, sizeof *redis);
	if (vr_redis_parse_uri(&redis->addr, uri)) {
		vr_log_error("redis_bad_uri", "uri", uri);
		free(redis);
		return NULL;
	}
	pthread_setspecific(thread_key, redis);
	return connect_redis(redis) == 0 ? redis : NULL;
}

redisReply *vr_redis_command(struct vr_redis *redis, int argc, const char **argv)
{
	if (!redis->ctx && connect_redis(redis) != 0)
		return NULL;
	redisReply *r = redisCommandArgv(redis->ctx, argc, argv, NULL);
	if (!r || redis->ctx->err) {
		if (r)
			freeReplyObject(r);
		vr_log_warn("redis_command_failed", "error", redis->ctx->errstr);
		redisFree(redis->ctx);
		redis->ctx = NULL;
		return NULL;
	}
	return r;
}

int vr_redis_ping(struct vr_redis *redis)
{
	const char *argv[] = {"PING"};
	redisReply *r = vr_redis_command(redis, 1, argv);
	bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
	if (r)
		freeReplyObject(r);
	return ok ? 0 : VR_EUNAVAIL;
}
