/* Site credentials are checked by the API (POST /api/internal/sites/verify),
 * and a data connection's worker is looked up there too (POST
 * /api/internal/replications/{id}/server, which answers only for the
 * verified site's own replications): the proxy holds no database state.
 * The calls block, so a few verifier threads make them, each with its own
 * HTTP client; answers come back to the loop through an eventfd. Valid
 * answers are cached on the loop's thread, keyed by the credential's SHA-256 (never the credential), for
 * [proxy] verify_cache seconds; routes, keyed by peer and replication, for
 * [proxy] route_cache seconds. The worker's address is resolved on the
 * verifier's thread too (getaddrinfo blocks). */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/worker.h"

#define CACHE_MAX   4096
#define VERIFY_PATH "/api/internal/sites/verify"

struct job {
	struct conn *conn;
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	bool site_known; /* site came from the cache: no verify call */
	bool route;	 /* a data hello: look up its replication's worker */
	char replication[VR_UUID_LEN + 1];
	int status;
	struct vr_proxy_site site;
	struct vr_proxy_route where;
	struct job *next;
};

struct cache_entry {
	struct vr_proxy_site site;
	uint64_t expires_ms;
};

struct route_entry {
	struct vr_proxy_route route;
	uint64_t expires_ms;
};

struct vr_proxy_verifier {
	struct vr_proxy *proxy;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *queue, *queue_tail; /* waiting for a thread */
	struct job *answers;		/* answered, for the loop */
	bool stop;
	pthread_t *threads;
	size_t nthreads;
	struct vr_worker_client **clients;
	int event_fd;
	struct vr_proxy_map *cache;  /* hex SHA-256 of a credential -> cache_entry */
	struct vr_proxy_map *routes; /* "<peer> <replication>" -> route_entry */
};

static void job_free(struct job *job)
{
	explicit_bzero(job->credential, sizeof job->credential);
	free(job);
}

static void credential_key(char out[2 * SHA256_DIGEST_LENGTH + 1], const char *credential)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)credential, strlen(credential), digest);
	for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[2 * SHA256_DIGEST_LENGTH] = '\0';
	OPENSSL_cleanse(digest, sizeof digest);
}

/* One call to the API; fills job->status and job->site. */
static void verify(struct vr_worker_client *client, struct job *job, struct vr_proxy_stats *stats)
{
	struct vr_buf body;
	vr_buf_init(&body, 0);
	job->status = VR_EUNAVAIL;
	if (vr_proxy_doc_site_verify(&body, job->credential)) {
		job->status = VR_EFORBIDDEN;
		vr_buf_free(&body);
		return;
	}
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	vr_proxy_count(&stats->api_calls[VR_PROXY_CALL_VERIFY]);
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(client, "POST", VERIFY_PATH, &body, &answer);
	explicit_bzero(body.data, body.len);
	vr_buf_free(&body);
	const char *reason = NULL;
	char status[16];
	snprintf(status, sizeof status, "%ld", answer.status);
	if (kind == VR_ANSWER_OK) {
		if (vr_proxy_parse_site(&job->site, answer.body.data, answer.body.len, &reason) ==
		    0)
			job->status = 0;
		else
			vr_log_error("site_verify_bad_answer", "error", reason);
	} else if (answer.status == 403 && strcmp(answer.minor, "SITE_CREDENTIAL_INVALID") == 0) {
		job->status = VR_EFORBIDDEN;
	} else if (answer.status == 401 || answer.status == 403) {
		vr_log_error("site_verify_unauthorized", "status", status, "error",
			     "the API refuses this proxy's service token (revoked, or not of "
			     "kind proxy)");
	} else {
		vr_log_warn("site_verify_failed", "status", status, "minor",
			    answer.minor[0] ? answer.minor : NULL, "error",
			    answer.error[0] ? answer.error : NULL);
	}
	vr_log_set_request_id(NULL);
	vr_worker_answer_free(&answer);
}

/* Resolve the worker's address (blocking). */
static int resolve_route(struct vr_proxy_route *route)
{
	char host[256], port[8];
	unsigned port_number;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, route->address))
		return VR_EINVAL;
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		vr_log_warn("worker_resolve_failed", "address", route->address, "error",
			    gai_strerror(rc));
		return VR_EUNAVAIL;
	}
	memcpy(&route->addr, res->ai_addr, res->ai_addrlen);
	route->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Where the data connection of a verified site goes; fills job->status
 * and job->where. */
static void lookup(struct vr_worker_client *client, struct job *job, struct vr_proxy_stats *stats)
{
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_proxy_doc_route_lookup(&body, job->site.peer_id)) {
		vr_buf_free(&body);
		job->status = VR_EUNAVAIL;
		return;
	}
	char path[96];
	snprintf(path, sizeof path, "/api/internal/replications/%s/server", job->replication);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	vr_proxy_count(&stats->api_calls[VR_PROXY_CALL_ROUTE]);
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(client, "POST", path, &body, &answer);
	vr_buf_free(&body);
	char status[16];
	snprintf(status, sizeof status, "%ld", answer.status);
	const char *reason = NULL;
	job->status = VR_EUNAVAIL;
	if (kind == VR_ANSWER_OK) {
		if (vr_proxy_parse_route(job->where.address, sizeof job->where.address,
					 job->where.server, sizeof job->where.server,
					 answer.body.data, answer.body.len, &reason) == 0)
			job->status = resolve_route(&job->where);
		else
			vr_log_error("route_bad_answer", "error", reason);
	} else if (answer.status == 404) {
		job->status = VR_ENOTFOUND;
	} else if (answer.status == 409) {
		job->status = VR_ECONFLICT;
	} else {
		vr_log_warn("route_lookup_failed", "status", status, "minor",
			    answer.minor[0] ? answer.minor : NULL, "error",
			    answer.error[0] ? answer.error : NULL);
	}
	vr_log_set_request_id(NULL);
	vr_worker_answer_free(&answer);
}

struct thread_arg {
	struct vr_proxy_verifier *verifier;
	struct vr_worker_client *client;
};

static void *thread_main(void *p)
{
	struct thread_arg *arg = p;
	struct vr_proxy_verifier *v = arg->verifier;
	struct vr_worker_client *client = arg->client;
	free(arg);
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->stop && !v->queue)
			pthread_cond_wait(&v->wake, &v->lock);
		if (v->stop)
			break;
		struct job *job = v->queue;
		v->queue = job->next;
		if (!v->queue)
			v->queue_tail = NULL;
		pthread_mutex_unlock(&v->lock);
		if (job->site_known)
			job->status = 0;
		else
			verify(client, job, &v->proxy->stats);
		if (job->status == 0 && job->route)
			lookup(client, job, &v->proxy->stats);
		pthread_mutex_lock(&v->lock);
		job->next = v->answers;
		v->answers = job;
		uint64_t one = 1;
		if (write(v->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			vr_log_warn("verifier_wake_failed", "error", strerror(errno));
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static void cache_put(struct vr_proxy_verifier *v, const char *credential,
		      const struct vr_proxy_site *site);
static void route_put(struct vr_proxy_verifier *v, const char *peer_id, const char *replication,
		      const struct vr_proxy_route *route);

/* Hand answers to their connections (on the loop's thread). */
static void on_answers(struct vr_loop *loop, int fd, unsigned events, void *p)
{
	struct vr_proxy_verifier *v = p;
	uint64_t count;
	if (read(v->event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
		vr_log_warn("verifier_read_failed", "error", strerror(errno));
	pthread_mutex_lock(&v->lock);
	struct job *answers = v->answers;
	v->answers = NULL;
	pthread_mutex_unlock(&v->lock);
	while (answers) {
		struct job *job = answers;
		answers = job->next;
		/* A refused route still means a valid credential. */
		bool site_ok = job->status == 0 || (job->route && (job->status == VR_ENOTFOUND ||
								   job->status == VR_ECONFLICT));
		if (site_ok && !job->site_known && v->proxy->config->verify_cache)
			cache_put(v, job->credential, &job->site);
		if (job->status == 0 && job->route) {
			if (v->proxy->config->route_cache)
				route_put(v, job->site.peer_id, job->replication, &job->where);
			if (!job->conn->dead)
				job->conn->route = job->where;
		}
		vr_proxy_conn_verified(job->conn, job->status, &job->site);
		job_free(job);
	}
}

static void free_entry(void *p)
{
	free(p);
}

int vr_proxy_verifier_start(struct vr_proxy_verifier **out, struct vr_proxy *proxy,
			    const char *token)
{
	*out = NULL;
	const struct vr_proxy_config *config = proxy->config;
	struct vr_proxy_verifier *v = vr_calloc(1, sizeof *v);
	v->proxy = proxy;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->wake, NULL);
	v->cache = vr_proxy_map_new();
	v->routes = vr_proxy_map_new();
	v->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int rc = v->event_fd < 0 ? VR_EIO : 0;
	if (!rc)
		rc = vr_loop_watch(proxy->loop, v->event_fd, VR_LOOP_READ, on_answers, v);
	v->threads = vr_calloc(config->verify_threads, sizeof *v->threads);
	v->clients = vr_calloc(config->verify_threads, sizeof *v->clients);
	struct vr_worker_client_options options = {
		.api_url = config->api_url,
		.token = token,
		.connect_timeout_ms = config->connect_timeout * 1000u,
		.timeout_ms = config->http_timeout * 1000u,
	};
	for (size_t i = 0; !rc && i < config->verify_threads; i++) {
		rc = vr_worker_client_new(&v->clients[i], &options);
		if (rc)
			break;
		struct thread_arg *arg = vr_malloc(sizeof *arg);
		arg->verifier = v;
		arg->client = v->clients[i];
		if (pthread_create(&v->threads[i], NULL, thread_main, arg) != 0) {
			free(arg);
			vr_worker_client_free(v->clients[i]);
			v->clients[i] = NULL;
			rc = VR_EIO;
			break;
		}
		v->nthreads++;
	}
	if (rc) {
		vr_proxy_verifier_stop(v);
		return rc;
	}
	*out = v;
	return 0;
}

void vr_proxy_verifier_stop(struct vr_proxy_verifier *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = true;
	pthread_cond_broadcast(&v->wake);
	pthread_mutex_unlock(&v->lock);
	for (size_t i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	for (size_t i = 0; i < v->proxy->config->verify_threads; i++)
		vr_worker_client_free(v->clients[i]);
	/* Whatever is left is answered "unavailable". */
	struct job *lists[] = {v->answers, v->queue};
	v->answers = v->queue = v->queue_tail = NULL;
	for (size_t l = 0; l < 2; l++) {
		while (lists[l]) {
			struct job *job = lists[l];
			lists[l] = job->next;
			vr_proxy_conn_verified(job->conn, VR_EUNAVAIL, NULL);
			job_free(job);
		}
	}
	if (v->event_fd >= 0) {
		vr_loop_unwatch(v->proxy->loop, v->event_fd);
		close(v->event_fd);
	}
	vr_proxy_map_free(v->cache, free_entry);
	vr_proxy_map_free(v->routes, free_entry);
	free(v->threads);
	free(v->clients);
	pthread_cond_destroy(&v->wake);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

void vr_proxy_verifier_submit(struct vr_proxy_verifier *v, struct conn *conn,
			      const struct vr_proxy_site *site)
{
	struct job *job = vr_calloc(1, sizeof *job);
	job->conn = conn;
	memcpy(job->credential, conn->hello.credential, sizeof job->credential);
	if (site) {
		job->site = *site;
		job->site_known = true;
	}
	if (conn->hello.kind == VR_TUNNEL_DATA && !conn->reverify) {
		job->route = true;
		memcpy(job->replication, conn->hello.replication, sizeof job->replication);
	}
	conn->verify_pending = true;
	pthread_mutex_lock(&v->lock);
	if (v->queue_tail)
		v->queue_tail->next = job;
	else
		v->queue = job;
	v->queue_tail = job;
	pthread_cond_signal(&v->wake);
	pthread_mutex_unlock(&v->lock);
}

struct purge_arg {
	uint64_t now;
	bool all;
};

static bool purge(const char *key, void *value, void *p)
{
	const struct purge_arg *arg = p;
	struct cache_entry *e = value;
	if (!arg->all && e->expires_ms > arg->now)
		return true;
	free(e);
	return false;
}

static void cache_put(struct vr_proxy_verifier *v, const char *credential,
		      const struct vr_proxy_site *site)
{
	if (vr_proxy_map_count(v->cache) >= CACHE_MAX) {
		struct purge_arg arg = {vr_loop_now_ms(), false};
		vr_proxy_map_each(v->cache, purge, &arg);
		if (vr_proxy_map_count(v->cache) >= CACHE_MAX) {
			arg.all = true;
			vr_proxy_map_each(v->cache, purge, &arg);
		}
	}
	char key[2 * SHA256_DIGEST_LENGTH + 1];
	credential_key(key, credential);
	struct cache_entry *e = vr_calloc(1, sizeof *e);
	e->site = *site;
	e->expires_ms = vr_loop_now_ms() + (uint64_t)v->proxy->config->verify_cache * 1000u;
	free(vr_proxy_map_put(v->cache, key, e));
}

bool vr_proxy_verifier_cached(struct vr_proxy_verifier *v, const char *credential,
			      struct vr_proxy_site *site_out)
{
	char key[2 * SHA256_DIGEST_LENGTH + 1];
	credential_key(key, credential);
	struct cache_entry *e = vr_proxy_map_get(v->cache, key);
	if (!e)
		return false;
	if (e->expires_ms <= vr_loop_now_ms()) {
		free(vr_proxy_map_del(v->cache, key));
		return false;
	}
	*site_out = e->site;
	return true;
}

void vr_proxy_verifier_forget(struct vr_proxy_verifier *v, const char *credential)
{
	char key[2 * SHA256_DIGEST_LENGTH + 1];
	credential_key(key, credential);
	free(vr_proxy_map_del(v->cache, key));
}

static bool purge_routes(const char *key, void *value, void *p)
{
	const struct purge_arg *arg = p;
	struct route_entry *e = value;
	if (!arg->all && e->expires_ms > arg->now)
		return true;
	free(e);
	return false;
}

static char *route_key(const char *peer_id, const char *replication)
{
	return vr_asprintf("%s %s", peer_id, replication);
}

static void route_put(struct vr_proxy_verifier *v, const char *peer_id, const char *replication,
		      const struct vr_proxy_route *route)
{
	if (vr_proxy_map_count(v->routes) >= CACHE_MAX) {
		struct purge_arg arg = {vr_loop_now_ms(), false};
		vr_proxy_map_each(v->routes, purge_routes, &arg);
		if (vr_proxy_map_count(v->routes) >= CACHE_MAX) {
			arg.all = true;
			vr_proxy_map_each(v->routes, purge_routes, &arg);
		}
	}
	char *key = route_key(peer_id, replication);
	struct route_entry *e = vr_calloc(1, sizeof *e);
	e->route = *route;
	e->expires_ms = vr_loop_now_ms() + (uint64_t)v->proxy->config->route_cache * 1000u;
	free(vr_proxy_map_put(v->routes, key, e));
	free(key);
}

bool vr_proxy_verifier_route_cached(struct vr_proxy_verifier *v, const char *peer_id,
				    const char *replication, struct vr_proxy_route *route_out)
{
	char *key = route_key(peer_id, replication);
	struct route_entry *e = vr_proxy_map_get(v->routes, key);
	bool found = false;
	if (e && e->expires_ms <= vr_loop_now_ms())
		free(vr_proxy_map_del(v->routes, key));
	else if (e) {
		*route_out = e->route;
		found = true;
	}
	free(key);
	return found;
}

void vr_proxy_verifier_route_forget(struct vr_proxy_verifier *v, const char *peer_id,
				    const char *replication)
{
	char *key = route_key(peer_id, replication);
	free(vr_proxy_map_del(v->routes, key));
	free(key);
}
