/* The proxy's side of Redis (docs/tunnels.md, "Redis"): which proxy holds
 * which site (an entry with a time to live, renewed by the site's
 * heartbeats), the sites' command lists, and the wake-up channel. Two
 * asynchronous hiredis contexts run on the proxy's loop: one for commands,
 * one subscribed. Both reconnect every second while Redis is away; when
 * they are back, every site this proxy holds is claimed and fetched again
 * (a wake-up sent meanwhile was lost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"

#define RECONNECT_MS 1000

/* Take a site's entry and note in <prefix>:tunnel:site:<peer id> (for
 * vrcloudctl tunnels) since when this proxy holds it and its last
 * heartbeat. KEYS: entry, site; ARGV: value, ttl, proxy name, now. */
#define SITE_TIMES                                                                         \
	"if redis.call('HGET', KEYS[2], 'proxy') ~= ARGV[3] then "                         \
	"redis.call('DEL', KEYS[2]) "                                                      \
	"redis.call('HSET', KEYS[2], 'proxy', ARGV[3], 'since', ARGV[4]) end "             \
	"redis.call('HSET', KEYS[2], 'heartbeat', ARGV[4]) "                               \
	"redis.call('EXPIRE', KEYS[2], ARGV[2]) "
static const char claim_script[] = "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) " SITE_TIMES
				   "return 1";
/* Renew the entry if it still names this proxy, or take it if it is gone;
 * 0 when another proxy holds the site now. */
static const char renew_script[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v == ARGV[1] or not v then "
	"redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) " SITE_TIMES "return 1 end "
	"return 0";
/* Delete the entry (and its times) only if it still names this proxy. */
static const char release_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
				     "redis.call('DEL', KEYS[2]) "
				     "return redis.call('DEL', KEYS[1]) end return 0";

struct vr_proxy_registry {
	struct vr_proxy *proxy;
	struct vr_redis_addr addr;
	redisAsyncContext *cmd, *sub;
	bool cmd_ready;
	bool closing;
	uint64_t reconnect_timer;
	uint64_t beat_timer;
	char *value;	       /* what an entry of this proxy holds: "<name> <reverse address>" */
	char *proxy_key;       /* <prefix>:tunnel:proxy:<name> */
	char *wake_channel;    /* <prefix>:tunnel:wake */
	char *reverse_channel; /* <prefix>:tunnel:reverse */
	char ttl[16];
};

enum request_kind {
	REQ_SELECT,
	REQ_CLAIM,
	REQ_RENEW,
	REQ_RELEASE,
	REQ_FETCH,
	REQ_REMOVE,
	REQ_BEAT,
	REQ_LOCATE,
	REQ_PUBLISH,
};

struct request {
	struct vr_proxy_registry *registry;
	enum request_kind kind;
	char peer[VR_UUID_LEN + 1];
	char id[VR_TUNNEL_MAX_ID + 1];
};

static char *key_of(const struct vr_proxy_registry *r, const char *what, const char *peer)
{
	return vr_asprintf("%s:tunnel:%s:%s", r->proxy->config->redis_prefix, what, peer);
}

static struct conn *site_conn(const struct vr_proxy_registry *r, const char *peer)
{
	return vr_proxy_map_get(r->proxy->sites, peer);
}

static void connect_all(struct vr_loop *loop, void *arg);

static void schedule_reconnect(struct vr_proxy_registry *r)
{
	if (r->closing || r->reconnect_timer)
		return;
	r->reconnect_timer = vr_loop_timer(r->proxy->loop, RECONNECT_MS, connect_all, r);
}

/* Hand the elements of an LRANGE reply (NULL: none) to conn. */
static void deliver(struct conn *conn, const redisReply *reply)
{
	size_t n = reply && reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
	const char **elements = vr_calloc(n ? n : 1, sizeof *elements);
	size_t *lens = vr_calloc(n ? n : 1, sizeof *lens);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = reply->element[i];
		if (e->type != REDIS_REPLY_STRING)
			continue;
		elements[k] = e->str;
		lens[k++] = e->len;
	}
	vr_proxy_conn_commands(conn, elements, lens, k);
	free(elements);
	free(lens);
}

static void on_reply(redisAsyncContext *ac, void *reply_p, void *privdata)
{
	struct request *req = privdata;
	struct vr_proxy_registry *r = req->registry;
	redisReply *reply = reply_p;
	struct conn *conn = r->closing || !req->peer[0] ? NULL : site_conn(r, req->peer);
	if (req->kind == REQ_LOCATE) {
		int held = !reply || reply->type == REDIS_REPLY_ERROR ? -1
			   : reply->type == REDIS_REPLY_STRING	      ? 1
								      : 0;
		if (!r->closing)
			vr_proxy_waiter_located(r->proxy, req->id, held);
		free(req);
		return;
	}
	if (!reply) {
		/* Redis went away before answering: what waited is asked again
		 * once it is back (claim_and_fetch). */
		if (conn && req->kind == REQ_FETCH)
			conn->fetching = false;
		else if (conn && req->kind == REQ_REMOVE)
			vr_proxy_conn_removal_lost(conn, req->id);
		free(req);
		return;
	}
	bool error = reply->type == REDIS_REPLY_ERROR;
	if (error)
		vr_log_warn("redis_error", "error", reply->str);
	switch (req->kind) {
	case REQ_SELECT:
		if (error) {
			vr_log_error("redis_select_failed", "error", reply->str);
			redisAsyncDisconnect(ac);
		}
		break;
	case REQ_RENEW:
		if (conn && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
			vr_proxy_conn_close(conn, "superseded by a newer connection");
		break;
	case REQ_FETCH:
		if (conn)
			deliver(conn, error ? NULL : reply);
		break;
	case REQ_REMOVE:
		/* An error too: the command is then delivered again. */
		if (conn)
			vr_proxy_conn_command_removed(conn, req->id);
		break;
	case REQ_CLAIM:
	case REQ_RELEASE:
	case REQ_BEAT:
	case REQ_LOCATE:
	case REQ_PUBLISH: break;
	}
	free(req);
}

/* Queue a command on the command context; false when it was not taken
 * (no context, or one being torn down). */
static bool send_command(struct vr_proxy_registry *r, enum request_kind kind, const char *peer,
			 const char *id, int argc, const char **argv, const size_t *lens)
{
	if (!r->cmd)
		return false;
	struct request *req = vr_calloc(1, sizeof *req);
	req->registry = r;
	req->kind = kind;
	if (peer)
		snprintf(req->peer, sizeof req->peer, "%s", peer);
	if (id)
		snprintf(req->id, sizeof req->id, "%s", id);
	if (redisAsyncCommandArgv(r->cmd, on_reply, req, argc, argv, lens) != REDIS_OK) {
		free(req);
		return false;
	}
	return true;
}

static void argv_lens(size_t *lens, int argc, const char **argv)
{
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
}

static void beat(struct vr_loop *loop, void *arg)
{
	struct vr_proxy_registry *r = arg;
	r->beat_timer = 0;
	if (r->cmd_ready) {
		const char *argv[] = {"SET", r->proxy_key, r->proxy->reverse_address, "EX", r->ttl};
		size_t lens[5];
		argv_lens(lens, 5, argv);
		send_command(r, REQ_BEAT, NULL, NULL, 5, argv, lens);
	}
	if (!r->closing)
		r->beat_timer = vr_loop_timer(
			r->proxy->loop, (uint64_t)r->proxy->config->heartbeat_interval * 1000u,
			beat, r);
}

static bool claim_and_fetch(const char *peer, void *value, void *arg)
{
	struct vr_proxy_registry *r = arg;
	vr_proxy_registry_claim(r, peer);
	vr_proxy_conn_fetch(value);
	return true;
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
	struct vr_proxy_registry *r = ac->data;
	if (status != REDIS_OK) {
		vr_log_warn("redis_connect_failed", "error", ac->errstr);
		r->cmd = NULL; /* hiredis frees it */
		schedule_reconnect(r);
		return;
	}
	vr_log_info("redis_connected");
	r->cmd_ready = true;
	/* Sites kept their connections while Redis was away. */
	vr_proxy_map_each(r->proxy->sites, claim_and_fetch, r);
	if (r->beat_timer) {
		vr_loop_timer_cancel(r->proxy->loop, r->beat_timer);
		r->beat_timer = 0;
	}
	beat(r->proxy->loop, r);
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
	struct vr_proxy_registry *r = ac->data;
	if (!r->closing)
		vr_log_warn("redis_disconnected", "error", status == REDIS_OK ? NULL : ac->errstr);
	r->cmd = NULL;
	r->cmd_ready = false;
	schedule_reconnect(r);
}

static bool fetch_site(const char *peer, void *value, void *arg)
{
	vr_proxy_conn_fetch(value);
	return true;
}

static void on_message(redisAsyncContext *ac, void *reply_p, void *privdata)
{
	struct vr_proxy_registry *r = privdata;
	redisReply *reply = reply_p;
	if (!reply || r->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
		return;
	redisReply *kind = reply->element[0], *payload = reply->element[2];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	redisReply *channel = reply->element[1];
	if (channel->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		/* Wake-ups sent while unsubscribed were lost: look at every list. */
		if (strcmp(channel->str, r->wake_channel) == 0)
			vr_proxy_map_each(r->proxy->sites, fetch_site, r);
		return;
	}
	if (strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(channel->str, r->reverse_channel) == 0) {
		vr_proxy_reverse_message(r->proxy, payload->str, payload->len);
		return;
	}
	if (payload->len != VR_UUID_LEN)
		return;
	struct conn *conn = site_conn(r, payload->str);
	if (conn)
		vr_proxy_conn_fetch(conn);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
	struct vr_proxy_registry *r = ac->data;
	if (status != REDIS_OK) {
		r->sub = NULL;
		schedule_reconnect(r);
	}
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	struct vr_proxy_registry *r = ac->data;
	r->sub = NULL;
	schedule_reconnect(r);
}

static redisAsyncContext *open_context(struct vr_proxy_registry *r)
{
	redisAsyncContext *ac = r->addr.path[0] ? redisAsyncConnectUnix(r->addr.path)
						: redisAsyncConnect(r->addr.host, r->addr.port);
	if (!ac)
		return NULL;
	if (ac->err) {
		vr_log_warn("redis_connect_failed", "error", ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	if (vr_loop_redis_attach(r->proxy->loop, ac)) {
		redisAsyncFree(ac);
		return NULL;
	}
	return ac;
}

static void connect_all(struct vr_loop *loop, void *arg)
{
	struct vr_proxy_registry *r = arg;
	r->reconnect_timer = 0;
	if (r->closing)
		return;
	if (!r->cmd) {
		r->cmd = open_context(r);
		if (r->cmd) {
			redisAsyncSetConnectCallback(r->cmd, on_cmd_connect);
			redisAsyncSetDisconnectCallback(r->cmd, on_cmd_disconnect);
			if (r->addr.db) {
				char db[16];
				snprintf(db, sizeof db, "%d", r->addr.db);
				const char *argv[] = {"SELECT", db};
				size_t lens[2];
				argv_lens(lens, 2, argv);
				send_command(r, REQ_SELECT, NULL, NULL, 2, argv, lens);
			}
		}
	}
	if (!r->sub) {
		r->sub = open_context(r);
		if (r->sub) {
			redisAsyncSetConnectCallback(r->sub, on_sub_connect);
			redisAsyncSetDisconnectCallback(r->sub, on_sub_disconnect);
			const char *argv[] = {"SUBSCRIBE", r->wake_channel, r->reverse_channel};
			size_t lens[3];
			argv_lens(lens, 3, argv);
			redisAsyncCommandArgv(r->sub, on_message, r, 3, argv, lens);
		}
	}
	if (!r->cmd || !r->sub)
		schedule_reconnect(r);
}

int vr_proxy_registry_start(struct vr_proxy_registry **out, struct vr_proxy *proxy)
{
	*out = NULL;
	struct vr_proxy_registry *r = vr_calloc(1, sizeof *r);
	r->proxy = proxy;
	if (vr_redis_parse_uri(&r->addr, proxy->config->redis_uri)) {
		free(r);
		return VR_EINVAL;
	}
	const char *prefix = proxy->config->redis_prefix;
	r->value = vr_asprintf("%s %s", proxy->config->name, proxy->reverse_address);
	r->proxy_key = vr_asprintf("%s:tunnel:proxy:%s", prefix, proxy->config->name);
	r->wake_channel = vr_asprintf("%s:tunnel:wake", prefix);
	r->reverse_channel = vr_asprintf("%s:tunnel:reverse", prefix);
	snprintf(r->ttl, sizeof r->ttl, "%u", proxy->config->registry_ttl);
	connect_all(proxy->loop, r);
	*out = r;
	return 0;
}

bool vr_proxy_registry_ready(const struct vr_proxy_registry *r)
{
	return r && r->cmd_ready && !r->closing;
}

/* EVAL script on the site's entry and times (KEYS), with this proxy's
 * value, the ttl, its name and the time now (ARGV). */
static void eval_site(struct vr_proxy_registry *r, enum request_kind kind, const char *script,
		      const char *peer_id)
{
	char *key = key_of(r, "peer", peer_id);
	char *site = key_of(r, "site", peer_id);
	char now[24];
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *argv[] = {"EVAL",  script,	     "2", key, site, r->value,
			      r->ttl, r->proxy->config->name, now};
	size_t lens[9];
	argv_lens(lens, 9, argv);
	send_command(r, kind, peer_id, NULL, 9, argv, lens);
	free(key);
	free(site);
}

void vr_proxy_registry_claim(struct vr_proxy_registry *r, const char *peer_id)
{
	if (!vr_proxy_registry_ready(r))
		return;
	eval_site(r, REQ_CLAIM, claim_script, peer_id);
}

void vr_proxy_registry_renew(struct vr_proxy_registry *r, const char *peer_id)
{
	if (!vr_proxy_registry_ready(r))
		return;
	eval_site(r, REQ_RENEW, renew_script, peer_id);
}

void vr_proxy_registry_release(struct vr_proxy_registry *r, const char *peer_id)
{
	/* Also while closing: a clean stop hands the site over at once. */
	if (!r || !r->cmd_ready)
		return;
	char *key = key_of(r, "peer", peer_id);
	char *site = key_of(r, "site", peer_id);
	const char *argv[] = {"EVAL", release_script, "2", key, site, r->value};
	size_t lens[6];
	argv_lens(lens, 6, argv);
	send_command(r, REQ_RELEASE, peer_id, NULL, 6, argv, lens);
	free(key);
	free(site);
}

bool vr_proxy_registry_fetch(struct vr_proxy_registry *r, const char *peer_id)
{
	char *key = key_of(r, "commands", peer_id);
	char last[16];
	snprintf(last, sizeof last, "%d", VR_PROXY_WINDOW - 1);
	const char *argv[] = {"LRANGE", key, "0", last};
	size_t lens[4];
	argv_lens(lens, 4, argv);
	bool sent = send_command(r, REQ_FETCH, peer_id, NULL, 4, argv, lens);
	free(key);
	return sent;
}

bool vr_proxy_registry_remove(struct vr_proxy_registry *r, const char *peer_id, const char *id,
			      const char *element, size_t len)
{
	char *key = key_of(r, "commands", peer_id);
	const char *argv[] = {"LREM", key, "1", element};
	size_t lens[4] = {4, strlen(key), 1, len};
	bool sent = send_command(r, REQ_REMOVE, peer_id, id, 4, argv, lens);
	free(key);
	return sent;
}

bool vr_proxy_registry_locate(struct vr_proxy_registry *r, const char *peer_id, const char *cookie)
{
	if (!vr_proxy_registry_ready(r))
		return false;
	char *key = key_of(r, "peer", peer_id);
	const char *argv[] = {"GET", key};
	size_t lens[2];
	argv_lens(lens, 2, argv);
	bool sent = send_command(r, REQ_LOCATE, peer_id, cookie, 2, argv, lens);
	free(key);
	return sent;
}

bool vr_proxy_registry_publish_reverse(struct vr_proxy_registry *r, const char *payload, size_t len)
{
	if (!vr_proxy_registry_ready(r))
		return false;
	const char *argv[] = {"PUBLISH", r->reverse_channel, payload};
	size_t lens[3] = {7, strlen(r->reverse_channel), len};
	return send_command(r, REQ_PUBLISH, NULL, NULL, 3, argv, lens);
}

bool vr_proxy_registry_shutdown(struct vr_proxy_registry *r)
{
	if (!r)
		return true;
	if (!r->closing) {
		r->closing = true;
		vr_loop_timer_cancel(r->proxy->loop, r->reconnect_timer);
		vr_loop_timer_cancel(r->proxy->loop, r->beat_timer);
		r->reconnect_timer = r->beat_timer = 0;
		if (r->cmd_ready) {
			const char *argv[] = {"DEL", r->proxy_key};
			size_t lens[2];
			argv_lens(lens, 2, argv);
			send_command(r, REQ_BEAT, NULL, NULL, 2, argv, lens);
		}
		r->cmd_ready = false;
		/* Both wait for the replies still due, then close. */
		if (r->cmd)
			redisAsyncDisconnect(r->cmd);
		if (r->sub)
			redisAsyncDisconnect(r->sub);
	}
	return !r->cmd && !r->sub;
}

void vr_proxy_registry_free(struct vr_proxy_registry *r)
{
	if (!r)
		return;
	r->closing = true;
	vr_loop_timer_cancel(r->proxy->loop, r->reconnect_timer);
	vr_loop_timer_cancel(r->proxy->loop, r->beat_timer);
	if (r->cmd)
		redisAsyncFree(r->cmd);
	if (r->sub)
		redisAsyncFree(r->sub);
	free(r->value);
	free(r->proxy_key);
	free(r->wake_channel);
	free(r->reverse_channel);
	free(r);
}
