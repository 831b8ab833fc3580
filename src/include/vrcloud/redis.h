/* Redis access: one hiredis context per thread (a context is not
 * thread-safe), addressed by a URI, reconnected after failures. Redis is a
 * transport here, never the store of record. */
#ifndef VRCLOUD_REDIS_H
#define VRCLOUD_REDIS_H

#include <hiredis/hiredis.h>

struct vr_redis_addr {
	char host[256];   /* host name or address; "" for a unix socket */
	int port;
	char path[256];   /* unix socket path; "" for TCP */
	int db;           /* SELECTed database number */
};

/* Parse redis://[:password@]host[:port][/db] or unix:///path[?db=N].
 * Returns 0 or VR_EINVAL. (Passwords are not supported: refused.) */
int vr_redis_parse_uri(struct vr_redis_addr *addr, const char *uri);

struct vr_redis;

/* Connect (1 s timeout); 0, VR_EINVAL or VR_EUNAVAIL. */
int vr_redis_open(struct vr_redis **out, const char *uri);
void vr_redis_close(struct vr_redis *redis);
/* The calling thread's connection to uri, (re)connected on demand, or NULL
 * while Redis cannot be reached. Closed when the thread exits. */
struct vr_redis *vr_redis_thread(const char *uri);
/* Run a command (argv form). Returns the reply (caller frees with
 * freeReplyObject) or NULL after a connection failure, after which the
 * next call reconnects. */
redisReply *vr_redis_command(struct vr_redis *redis, int argc, const char **argv);
int vr_redis_ping(struct vr_redis *redis);

#endif
