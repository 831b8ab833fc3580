/* Internals of vrcloud-proxy: the connection state machine (conn.c) and
 * its data pump (pump.c, pump.h), the
 * verifier threads that ask the API about credentials (verifier.c), the
 * Redis registry and command lists (registry.c), and the daemon that ties
 * them to one event loop (proxy.c). Everything here runs on the loop's
 * thread except the verifier's own threads. */
#ifndef VRCLOUD_PROXY_INTERNAL_H
#define VRCLOUD_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "proxy/limits.h"
#include "proxy/metrics.h"
#include "vrcloud/buf.h"
#include "vrcloud/loop.h"
#include "vrcloud/proxy.h"
#include "vrcloud/tunnel.h"

/* Commands delivered to one site and not yet acknowledged, at most. */
#define VR_PROXY_WINDOW 16
/* Outgoing frames a control connection may have queued before the agent
 * is deemed stuck and dropped. */
#define VR_PROXY_CONTROL_OUT_MAX ((size_t)VR_PROXY_WINDOW * (VR_TUNNEL_MAX_PAYLOAD + 64) + 4096)
/* Seconds a refused connection gets to take its REFUSE frame. */
#define VR_PROXY_CLOSE_GRACE_MS 2000

/* --- string map (map.c) ------------------------------------------------ */

struct vr_proxy_map;

struct vr_proxy_map *vr_proxy_map_new(void);
/* free_value (may be NULL) is called on every value left. */
void vr_proxy_map_free(struct vr_proxy_map *map, void (*free_value)(void *));
size_t vr_proxy_map_count(const struct vr_proxy_map *map);
void *vr_proxy_map_get(const struct vr_proxy_map *map, const char *key);
/* Set key to value; returns the value it replaced, or NULL. */
void *vr_proxy_map_put(struct vr_proxy_map *map, const char *key, void *value);
/* Remove key; returns its value, or NULL. */
void *vr_proxy_map_del(struct vr_proxy_map *map, const char *key);
/* Call fn on every entry; an entry for which fn returns false is removed
 * (fn disposes of its value). fn must not change the map otherwise. */
void vr_proxy_map_each(struct vr_proxy_map *map,
		       bool (*fn)(const char *key, void *value, void *arg), void *arg);

/* --- connections (conn.c) ---------------------------------------------- */

/* Where a data connection goes: the replica server of its replication
 * (POST /api/internal/replications/{id}/server), resolved. */
struct vr_proxy_route {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char address[256]; /* the server's TrafficAddress, for logs */
	char server[129];  /* its name */
};

/* A byte queue with a fixed capacity: data[start, end) waits to be sent. */
struct pipebuf {
	unsigned char *data;
	size_t start, end, cap;
};

enum conn_state {
	CS_HANDSHAKE,  /* TLS handshake */
	CS_HELLO,      /* reading the hello */
	CS_VERIFYING,  /* the credential is with the verifier */
	CS_CONTROL,    /* a site's control connection */
	CS_CONNECTING, /* data: connecting to the worker */
	CS_DATA,       /* data: bytes flow both ways */
	CS_CLOSING,    /* sending a REFUSE, then TLS close */
};

enum delivery_state {
	DL_SENT,     /* sent to the agent, no ack yet */
	DL_ACKED,    /* acknowledged; its removal waits for Redis */
	DL_REMOVING, /* removal sent to Redis, reply pending */
};

struct delivery {
	char id[VR_TUNNEL_MAX_ID + 1];
	char *element; /* the list element, to remove it on the ack */
	size_t len;
	enum delivery_state state;
};

struct vr_proxy;

struct conn {
	struct vr_proxy *proxy;
	struct conn *prev, *next;
	uint64_t serial;
	enum conn_state state;
	int fd;
	SSL *ssl;
	char client[64];	     /* the agent's address, for logs */
	struct vr_proxy_addr source; /* the same, as the failed-hello limiter keys it */
	uint64_t deadline_ms;	     /* handshake, hello, idle or closing deadline; 0 none */
	bool read_wants_write, write_wants_read;
	bool a_hup, w_hup;	   /* hang-up seen: unwatched while nothing is wanted */
	bool a_watched, w_watched; /* registered with the loop */
	const char *close_reason;  /* CS_CLOSING: what the final log line says */

	struct vr_tunnel_hello hello;
	struct vr_proxy_site site;
	bool verify_pending; /* the verifier holds a pointer to this conn */
	bool dead;	     /* closed while verify_pending: freed by the verifier's answer */
	bool reverify;	     /* a periodic re-check of a control connection is out */
	bool hello_token;    /* took a failed-hello token of its address for the check */
	bool site_counted;   /* data: counted in the site's open data connections */
	bool pending;	     /* counted in stats.pending */
	enum vr_proxy_kind counted; /* counted in stats.open[] as this kind */

	/* frames in (hello, control) and out (control, refuse) */
	unsigned char *in;
	size_t in_len;
	struct vr_buf out;

	/* control */
	struct delivery deliveries[VR_PROXY_WINDOW];
	size_t ndeliveries;
	bool fetching, fetch_again;
	uint64_t verified_ms;

	/* data: the worker that owns the hello's replication */
	struct vr_proxy_route route;
	int wfd;
	struct pipebuf a2w, w2a; /* agent -> worker, worker -> agent */
	bool a_eof, w_eof;	 /* end of stream read from each side */
	bool a_shut, w_shut;	 /* end of stream passed on to each side */
	uint64_t bytes_up, bytes_down;
	uint64_t started_ms;
};

/* Accept fd (non-blocking) from the public listener. */
void vr_proxy_conn_accept(struct vr_proxy *proxy, int fd, const struct sockaddr *addr,
			  socklen_t addrlen);
/* Close and free (or leave for the verifier to free). reason is logged. */
void vr_proxy_conn_close(struct conn *conn, const char *reason);
/* The verifier's answer for conn: status 0 (site set; for a data hello
 * conn->route too), VR_EFORBIDDEN (the credential), VR_ENOTFOUND (data: the
 * replication is not the site's), VR_ECONFLICT (data: no worker holds it)
 * or VR_EUNAVAIL. */
void vr_proxy_conn_verified(struct conn *conn, int status, const struct vr_proxy_site *site);
/* Periodic checks: deadlines of every connection. */
void vr_proxy_conn_sweep(struct vr_proxy *proxy, uint64_t now);
/* Registry answers about a site's control connection. */
void vr_proxy_conn_commands(struct conn *conn, const char *const *elements, const size_t *lens,
			    size_t count);
void vr_proxy_conn_command_removed(struct conn *conn, const char *id);
/* The removal of command id got no answer: it is sent again later. */
void vr_proxy_conn_removal_lost(struct conn *conn, const char *id);
void vr_proxy_conn_fetch(struct conn *conn);

/* Queue a CONNECT frame (dial a proxy with a cookie) on a control
 * connection. */
void vr_proxy_conn_connect(struct conn *conn, const struct vr_tunnel_connect *connect);

/* Queue one frame to the agent (conn.c). Returns 0, or -1 after closing
 * the connection. */
int vr_proxy_conn_queue_frame(struct conn *conn, unsigned type, const char *payload, size_t len);
/* Advance the connection as far as it can go now (handshake, frames,
 * writes, data) and set the loop's interest; -1 after a close (conn.c). */
int vr_proxy_conn_service(struct conn *conn);
/* One frame of a verified control connection (control.c); -1 after a
 * close. */
int vr_proxy_control_frame(struct conn *conn, const struct vr_tunnel_frame *frame);

/* --- reverse requests of workers (reverse.c) ------------------------------------ */

enum waiter_state {
	WS_REQUEST,  /* reading the worker's request */
	WS_LOCATING, /* asking Redis whether a proxy holds the site */
	WS_WAITING,  /* published: waiting for the site's agent to dial in */
	WS_CLOSING,  /* sending a REFUSE, then close */
};

/* A worker's connection on the internal port, waiting to be stitched to
 * an agent's reverse connection. */
struct waiter {
	struct vr_proxy *proxy;
	struct waiter *prev, *next;
	enum waiter_state state;
	int fd;
	bool watched;
	char client[64];
	uint64_t deadline_ms;
	struct vr_tunnel_request request;
	char cookie[VR_TUNNEL_COOKIE_LEN + 1];
	bool expired; /* no agent came in time (counted apart from refusals) */
	/* No proxy held the site when asked: ask again at relocate_ms (0:
	 * not waiting to), up to WAITER_RELOCATIONS times (reverse.c): a
	 * site that has just connected, its claim still on its way to Redis,
	 * is found a moment later. */
	uint64_t relocate_ms;
	unsigned relocations;
	unsigned char in[VR_TUNNEL_HEADER_LEN + VR_TUNNEL_MAX_PAYLOAD];
	size_t in_len; /* after the request: bytes the worker sent early */
	struct vr_buf out;
};

/* Take fd (non-blocking) from the internal listener. */
void vr_proxy_waiter_accept(struct vr_proxy *proxy, int fd, const struct sockaddr *addr);
/* The waiter holding cookie, or NULL. */
struct waiter *vr_proxy_waiter_find(struct vr_proxy *proxy, const char *cookie);
/* Take the waiter's socket for stitching: it leaves the loop, the cookie
 * map and the list; the caller owns the fd and frees the waiter with
 * vr_proxy_waiter_free. */
int vr_proxy_waiter_detach(struct waiter *waiter);
void vr_proxy_waiter_free(struct waiter *waiter);
/* Redis answered whether a proxy holds the waiter's site: 1 yes, 0 no,
 * -1 Redis went away first. */
void vr_proxy_waiter_located(struct vr_proxy *proxy, const char *cookie, int held);
/* A reverse request from the bus: if this proxy holds the site, tell its
 * agent. */
void vr_proxy_reverse_message(struct vr_proxy *proxy, const char *payload, size_t len);
/* Deadlines of the waiters. */
void vr_proxy_waiter_sweep(struct vr_proxy *proxy, uint64_t now);
/* Close every waiter (stopping). */
void vr_proxy_waiter_close_all(struct vr_proxy *proxy);

/* --- verifier (verifier.c) -------------------------------------------------- */

struct vr_proxy_verifier;

/* Start config->verify_threads threads, each with its own client of the
 * API under token. Answers come back on the loop through an eventfd.
 * Returns 0, VR_EINVAL (bad client options) or VR_EIO. */
int vr_proxy_verifier_start(struct vr_proxy_verifier **out, struct vr_proxy *proxy,
			    const char *token);
/* Ask the API about conn's hello credential (unless site is given: it was
 * cached) and, for a data hello, where its replication is served;
 * conn->verify_pending is set until the answer is handed to
 * vr_proxy_conn_verified on the loop. */
void vr_proxy_verifier_submit(struct vr_proxy_verifier *verifier, struct conn *conn,
			      const struct vr_proxy_site *site);
/* A route of peer's replication looked up less than route_cache seconds
 * ago: true and *route_out. */
bool vr_proxy_verifier_route_cached(struct vr_proxy_verifier *verifier, const char *peer_id,
				    const char *replication, struct vr_proxy_route *route_out);
/* Drop a route whose worker could not be reached: the next data
 * connection asks the API again. */
void vr_proxy_verifier_route_forget(struct vr_proxy_verifier *verifier, const char *peer_id,
				    const char *replication);
/* A valid answer for credential cached less than verify_cache seconds
 * ago: true and *site_out. */
bool vr_proxy_verifier_cached(struct vr_proxy_verifier *verifier, const char *credential,
			      struct vr_proxy_site *site_out);
/* Drop credential's cached answer (the API refused it since). */
void vr_proxy_verifier_forget(struct vr_proxy_verifier *verifier, const char *credential);
/* Stop the threads; unanswered connections are answered VR_EUNAVAIL. */
void vr_proxy_verifier_stop(struct vr_proxy_verifier *verifier);

/* --- registry (registry.c) -------------------------------------------------- */

struct vr_proxy_registry;

/* Connect the command and subscriber contexts (retried every second while
 * Redis is away). Returns 0 or VR_EINVAL (bad URI). */
int vr_proxy_registry_start(struct vr_proxy_registry **out, struct vr_proxy *proxy);
/* Whether commands can be sent now. */
bool vr_proxy_registry_ready(const struct vr_proxy_registry *registry);
/* This proxy holds peer's control connection now (SET with the TTL). */
void vr_proxy_registry_claim(struct vr_proxy_registry *registry, const char *peer_id);
/* Renew the entry while it names this proxy; an entry naming another
 * proxy means a newer connection went there: the local one is closed. */
void vr_proxy_registry_renew(struct vr_proxy_registry *registry, const char *peer_id);
/* Delete the entry if it still names this proxy. */
void vr_proxy_registry_release(struct vr_proxy_registry *registry, const char *peer_id);
/* Read the head of peer's command list; the answer goes to
 * vr_proxy_conn_commands of peer's control connection, if any still.
 * false when the request could not be sent (Redis is away). */
bool vr_proxy_registry_fetch(struct vr_proxy_registry *registry, const char *peer_id);
/* Remove one element (an acknowledged or malformed command); the answer
 * goes to vr_proxy_conn_command_removed (or _removal_lost when Redis went
 * away first). false when the request could not be sent. */
bool vr_proxy_registry_remove(struct vr_proxy_registry *registry, const char *peer_id,
			      const char *id, const char *element, size_t len);
/* Ask whether any proxy holds peer's site; the answer goes to
 * vr_proxy_waiter_located(cookie). false when it could not be sent. */
bool vr_proxy_registry_locate(struct vr_proxy_registry *registry, const char *peer_id,
			      const char *cookie);
/* Publish a reverse request on the bus. false when it could not be sent. */
bool vr_proxy_registry_publish_reverse(struct vr_proxy_registry *registry, const char *payload,
				       size_t len);
/* Disconnect cleanly once pending replies are in; true when nothing is
 * left to wait for. */
bool vr_proxy_registry_shutdown(struct vr_proxy_registry *registry);
void vr_proxy_registry_free(struct vr_proxy_registry *registry);

/* --- the daemon (proxy.c) ----------------------------------------------------- */

struct vr_proxy {
	const struct vr_proxy_config *config;
	struct vr_loop *loop;
	SSL_CTX *ssl_ctx;
	int listen_fd;
	int internal_fd;
	int signal_fd;
	unsigned port;		/* the bound public port */
	unsigned internal_port; /* the bound internal port */
	char reverse_address[300];

	struct conn *conns; /* every connection, newest first */
	size_t nconns;
	uint64_t next_serial;
	struct vr_proxy_map *sites; /* peer id -> its control connection */
	struct waiter *waiters;	    /* workers' reverse requests */
	size_t nwaiters;
	struct vr_proxy_map *cookies; /* cookie -> its waiter */

	struct vr_proxy_verifier *verifier;
	struct vr_proxy_registry *registry;

	struct vr_proxy_stats stats;
	struct vr_proxy_metrics *metrics; /* GET /metrics; NULL when off */
	unsigned metrics_port;
	struct vr_proxy_limiter *limiter;	/* failed hellos per address */
	struct vr_proxy_site_counts *site_data; /* data connections per site */

	bool stopping;
	uint64_t stop_deadline_ms;
	uint64_t sweep_timer;
	int status;
};

#endif
