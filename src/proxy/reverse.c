/* Reverse connections, the worker's half (docs/tunnels.md, "Reverse
 * connections"): a worker that must reach a site connects to a proxy's
 * internal port (plain TCP, the cloud's internal network) and sends one
 * REQUEST frame. This proxy makes a one-time cookie, checks in Redis that
 * some proxy holds the site, and publishes the request on the bus; the
 * proxy holding the site's control connection tells the agent to dial
 * this proxy's own address with the cookie (vr_proxy_reverse_message).
 * The worker waits until the agent's reverse hello arrives (conn.c then
 * stitches the two), or gets a REFUSE: no proxy holds the site, or no
 * agent came within reverse_timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

/* A site no proxy holds is asked for once more at the next sweep (within
 * 500 ms) before the worker is told it is unreachable: a site whose agent
 * has just been welcomed may have its claim still on the way to Redis. */
#define RELOCATE_MS	   1u
#define WAITER_RELOCATIONS 1u

static void on_waiter(struct vr_loop *loop, int fd, unsigned events, void *arg);

static void unlink_waiter(struct waiter *w)
{
	struct vr_proxy *p = w->proxy;
	if (w->prev)
		w->prev->next = w->next;
	else if (p->waiters == w)
		p->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	p->nwaiters--;
	vr_proxy_uncount(&p->stats.open[VR_PROXY_KIND_INTERNAL]);
	if (w->cookie[0] && vr_proxy_map_get(p->cookies, w->cookie) == w)
		vr_proxy_map_del(p->cookies, w->cookie);
}

void vr_proxy_waiter_free(struct waiter *w)
{
	if (!w)
		return;
	vr_buf_free(&w->out);
	explicit_bzero(w->cookie, sizeof w->cookie);
	free(w);
}

static void waiter_close(struct waiter *w, const char *reason)
{
	vr_log_info("reverse_closed", "peer", w->request.peer[0] ? w->request.peer : NULL, "worker",
		    w->request.worker[0] ? w->request.worker : NULL, "client", w->client, "reason",
		    reason);
	if (w->watched)
		vr_loop_unwatch(w->proxy->loop, w->fd);
	close(w->fd);
	unlink_waiter(w);
	vr_proxy_waiter_free(w);
}

/* Send what is queued, then close. -1 once closed. */
static int flush_closing(struct waiter *w)
{
	while (w->out.len) {
		ssize_t n = send(w->fd, w->out.data, w->out.len, MSG_NOSIGNAL);
		if (n > 0) {
			memmove(w->out.data, w->out.data + n, w->out.len - (size_t)n);
			w->out.len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			vr_loop_events(w->proxy->loop, w->fd, VR_LOOP_WRITE);
			return 0;
		}
		break;
	}
	waiter_close(w, "refused");
	return -1;
}

static int refuse(struct waiter *w, const char *reason, const char *message)
{
	vr_log_info("reverse_refused", "peer", w->request.peer[0] ? w->request.peer : NULL,
		    "client", w->client, "reason", reason, "message", message);
	if (w->cookie[0] && vr_proxy_map_get(w->proxy->cookies, w->cookie) == w)
		vr_proxy_map_del(w->proxy->cookies, w->cookie);
	vr_proxy_count(&w->proxy->stats.stitches[w->expired ? VR_PROXY_STITCH_EXPIRED
							    : VR_PROXY_STITCH_FAILED]);
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	vr_tunnel_field_append(&payload, "reason", reason);
	vr_tunnel_field_append(&payload, "message", message);
	vr_buf_free(&w->out);
	vr_buf_init(&w->out, 0);
	int rc = vr_tunnel_frame_append(&w->out, VR_FRAME_REFUSE, payload.data, payload.len);
	vr_buf_free(&payload);
	if (rc) {
		waiter_close(w, "a frame could not be made");
		return -1;
	}
	w->state = WS_CLOSING;
	w->deadline_ms = vr_loop_now_ms() + VR_PROXY_CLOSE_GRACE_MS;
	return flush_closing(w);
}

void vr_proxy_waiter_accept(struct vr_proxy *proxy, int fd, const struct sockaddr *addr)
{
	struct waiter *w = vr_calloc(1, sizeof *w);
	w->proxy = proxy;
	w->fd = fd;
	w->state = WS_REQUEST;
	w->deadline_ms = vr_loop_now_ms() + (uint64_t)proxy->config->handshake_timeout * 1000u;
	vr_buf_init(&w->out, 0);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(w->client, sizeof w->client, "%s:%u", host, port);
	int on = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	w->next = proxy->waiters;
	if (proxy->waiters)
		proxy->waiters->prev = w;
	proxy->waiters = w;
	proxy->nwaiters++;
	vr_proxy_count(&proxy->stats.open[VR_PROXY_KIND_INTERNAL]);
	vr_proxy_count(&proxy->stats.accepted[VR_PROXY_KIND_INTERNAL]);
	if (vr_loop_watch(proxy->loop, fd, VR_LOOP_READ, on_waiter, w)) {
		waiter_close(w, "the loop refused the connection");
		return;
	}
	w->watched = true;
}

struct waiter *vr_proxy_waiter_find(struct vr_proxy *proxy, const char *cookie)
{
	struct waiter *w = vr_proxy_map_get(proxy->cookies, cookie);
	return w && w->state == WS_WAITING ? w : NULL;
}

int vr_proxy_waiter_detach(struct waiter *w)
{
	if (w->watched)
		vr_loop_unwatch(w->proxy->loop, w->fd);
	w->watched = false;
	int fd = w->fd;
	w->fd = -1;
	unlink_waiter(w);
	return fd;
}

/* The whole request is in: make the cookie and ask Redis about the site. */
static int on_request(struct waiter *w, const struct vr_tunnel_frame *frame)
{
	struct vr_proxy *p = w->proxy;
	const char *reason = NULL;
	if (frame->type != VR_FRAME_REQUEST)
		return refuse(w, "protocol", "the first frame must be a request");
	if (vr_tunnel_request_parse(&w->request, frame->payload, frame->len, &reason))
		return refuse(w, "protocol", reason);
	if (p->stopping)
		return refuse(w, "shutdown", "this proxy is stopping");
	if (vr_tunnel_cookie_new(w->cookie))
		return refuse(w, "unavailable", "no cookie could be made");
	if (!vr_proxy_registry_locate(p->registry, w->request.peer, w->cookie)) {
		w->cookie[0] = '\0';
		return refuse(w, "unavailable", "Redis cannot be reached; try again later");
	}
	vr_proxy_map_put(p->cookies, w->cookie, w);
	w->state = WS_LOCATING;
	w->deadline_ms = vr_loop_now_ms() + (uint64_t)p->config->reverse_timeout * 1000u;
	return 0;
}

void vr_proxy_waiter_located(struct vr_proxy *proxy, const char *cookie, int held)
{
	struct waiter *w = vr_proxy_map_get(proxy->cookies, cookie);
	if (!w || w->state != WS_LOCATING)
		return;
	if (held < 0) {
		refuse(w, "unavailable", "Redis cannot be reached; try again later");
		return;
	}
	if (!held) {
		uint64_t now = vr_loop_now_ms();
		if (w->relocations < WAITER_RELOCATIONS && now + RELOCATE_MS < w->deadline_ms) {
			w->relocate_ms = now + RELOCATE_MS;
			return;
		}
		refuse(w, "unreachable", "no proxy holds a connection of this site");
		return;
	}
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	vr_tunnel_field_append(&payload, "peer", w->request.peer);
	if (w->request.replication[0])
		vr_tunnel_field_append(&payload, "replication", w->request.replication);
	vr_tunnel_field_append(&payload, "purpose", w->request.purpose);
	vr_tunnel_field_append(&payload, "cookie", w->cookie);
	vr_tunnel_field_append(&payload, "address", proxy->reverse_address);
	bool sent = payload.data &&
		    vr_proxy_registry_publish_reverse(proxy->registry, payload.data, payload.len);
	explicit_bzero(payload.data, payload.len);
	vr_buf_free(&payload);
	if (!sent) {
		refuse(w, "unavailable", "Redis cannot be reached; try again later");
		return;
	}
	w->state = WS_WAITING;
	vr_log_info("reverse_requested", "peer", w->request.peer, "replication",
		    w->request.replication[0] ? w->request.replication : NULL, "purpose",
		    w->request.purpose, "worker", w->request.worker[0] ? w->request.worker : NULL,
		    "client", w->client);
}

/* Read the request (WS_REQUEST) or bytes sent early (later); -1 once closed. */
static int read_waiter(struct waiter *w)
{
	for (;;) {
		size_t room = sizeof w->in - w->in_len;
		if (!room) {
			/* Full: read on once stitched. */
			vr_loop_events(w->proxy->loop, w->fd, 0);
			return 0;
		}
		ssize_t n = recv(w->fd, w->in + w->in_len, room, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			waiter_close(w, n == 0 ? "the worker gave up"
					       : "the worker's connection was lost");
			return -1;
		}
		w->in_len += (size_t)n;
		if (w->state != WS_REQUEST)
			continue;
		struct vr_tunnel_frame frame;
		size_t used = 0;
		int err = vr_tunnel_frame_parse(&frame, &used, w->in, w->in_len);
		if (err)
			return refuse(w, "protocol",
				      err == VR_ETOOBIG ? "a frame is longer than 16384 bytes"
							: "a frame has an unknown type");
		if (!used)
			continue;
		int rc = on_request(w, &frame);
		if (rc)
			return rc;
		if (w->state == WS_CLOSING)
			return 0;
		memmove(w->in, w->in + used, w->in_len - used);
		w->in_len -= used;
	}
}

static void on_waiter(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct waiter *w = arg;
	if ((events & VR_LOOP_ERROR) && w->in_len == sizeof w->in) {
		/* A hang-up is reported even with nothing asked for. */
		waiter_close(w, "the worker's connection was lost");
		return;
	}
	if (w->state == WS_CLOSING) {
		flush_closing(w);
		return;
	}
	read_waiter(w);
}

void vr_proxy_reverse_message(struct vr_proxy *proxy, const char *payload, size_t len)
{
	struct vr_tunnel_connect connect;
	const char *reason = NULL;
	if (vr_tunnel_connect_parse(&connect, payload, len, true, &reason)) {
		vr_log_warn("reverse_message_malformed", "error", reason);
		return;
	}
	struct conn *conn = vr_proxy_map_get(proxy->sites, connect.peer);
	if (conn)
		vr_proxy_conn_connect(conn, &connect);
	explicit_bzero(connect.cookie, sizeof connect.cookie);
}

void vr_proxy_waiter_sweep(struct vr_proxy *proxy, uint64_t now)
{
	struct waiter *next;
	for (struct waiter *w = proxy->waiters; w; w = next) {
		next = w->next;
		if (w->state == WS_LOCATING && w->relocate_ms && now >= w->relocate_ms) {
			w->relocate_ms = 0;
			w->relocations++;
			if (!vr_proxy_registry_locate(proxy->registry, w->request.peer, w->cookie))
				refuse(w, "unavailable", "Redis cannot be reached; try again later");
			continue;
		}
		if (now < w->deadline_ms)
			continue;
		switch (w->state) {
		case WS_REQUEST: waiter_close(w, "no request in time"); break;
		case WS_LOCATING:
		case WS_WAITING:
			w->expired = true;
			refuse(w, "unreachable", "the site's agent did not connect in time");
			break;
		case WS_CLOSING: waiter_close(w, "refused"); break;
		}
	}
}

void vr_proxy_waiter_close_all(struct vr_proxy *proxy)
{
	while (proxy->waiters)
		waiter_close(proxy->waiters, "the proxy is stopping");
}
