/* The data pump of vrcloud-proxy (docs/tunnels.md): once a data or
 * reverse connection is verified, its bytes are copied between the agent's
 * TLS connection and the worker's TCP connection.
 *
 * Data connections keep one bounded buffer per direction. A side is read
 * only while the buffer towards the other side has room, so a slow worker
 * slows the agent down through TCP instead of filling the proxy's memory.
 * The end of each direction is passed on separately (TLS close_notify to
 * a TCP half-close and back); any failure resets the worker's side, so a
 * cut stream never looks complete to it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "proxy/internal.h"
#include "proxy/pump.h"
#include "vrcloud/alloc.h"
#include "vrcloud/log.h"

/* --- byte queues --------------------------------------------------------- */

/* Room at the end, after moving the waiting bytes to the front when that
 * makes room (moving is allowed: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static size_t pb_room(struct pipebuf *b)
{
	if (b->start == b->end)
		b->start = b->end = 0;
	if (b->end == b->cap && b->start > 0) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return b->cap - b->end;
}

static bool pb_put(struct pipebuf *b, const void *data, size_t len)
{
	if (!len)
		return true;
	if (pb_room(b) < len)
		return false;
	memcpy(b->data + b->end, data, len);
	b->end += len;
	return true;
}

static int data_fail(struct conn *conn, const char *reason)
{
	vr_proxy_conn_close(conn, reason);
	return -1;
}

/* --- connecting ------------------------------------------------------------- */

/* The replication's worker did not take the connection: log it and drop
 * the route, so that the next data connection asks the API again (the
 * replication may have moved). */
void vr_proxy_worker_unreachable(struct conn *conn, const char *error)
{
	vr_log_warn("worker_connect_failed", "peer", conn->site.peer_id, "replication",
		    conn->hello.replication, "address", conn->route.address, "worker",
		    conn->route.server, "error", error);
	vr_proxy_verifier_route_forget(conn->proxy->verifier, conn->site.peer_id,
				       conn->hello.replication);
}

int vr_proxy_data_accepted(struct conn *conn)
{
	struct vr_proxy *p = conn->proxy;
	const struct vr_proxy_route *r = &conn->route;
	int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vr_proxy_conn_refuse(conn, "worker", "the proxy cannot open a connection");
	int on = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	vr_proxy_keepalive(fd);
	if (connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) != 0 &&
	    errno != EINPROGRESS) {
		vr_proxy_worker_unreachable(conn, strerror(errno));
		close(fd);
		return vr_proxy_conn_refuse(conn, "worker", "the worker cannot be reached");
	}
	conn->wfd = fd;
	conn->state = CS_CONNECTING;
	conn->deadline_ms = vr_loop_now_ms() + (uint64_t)p->config->connect_timeout * 1000u;
	return 0;
}

/* Buffers of a data or reverse connection, each starting with what goes
 * first to that side; false when they cannot hold it. */
static bool buffers_start(struct conn *c, const void *to_worker, size_t to_worker_len,
			  const void *worker_early, size_t worker_early_len,
			  const struct vr_buf *welcome)
{
	size_t cap = (size_t)c->proxy->config->buffer_kib * 1024u;
	c->a2w.data = vr_malloc(cap);
	c->w2a.data = vr_malloc(cap);
	c->a2w.cap = c->w2a.cap = cap;
	struct vr_buf frame;
	vr_buf_init(&frame, 0);
	bool ok = pb_put(&c->a2w, to_worker, to_worker_len) && pb_put(&c->a2w, c->in, c->in_len) &&
		  vr_tunnel_frame_append(&frame, VR_FRAME_WELCOME, welcome->data, welcome->len) ==
			  0 &&
		  pb_put(&c->w2a, frame.data, frame.len) &&
		  pb_put(&c->w2a, worker_early, worker_early_len);
	vr_buf_free(&frame);
	c->bytes_up = c->in_len;
	c->in_len = 0;
	return ok;
}

/* An agent answers a worker's request: stitch its connection to the
 * worker's waiting one. The worker gets a welcome naming the site, the
 * agent one naming the replication, then bytes flow as on a data
 * connection. */
int vr_proxy_reverse_accepted(struct conn *c)
{
	struct vr_proxy *p = c->proxy;
	struct waiter *w = vr_proxy_waiter_find(p, c->hello.cookie);
	explicit_bzero(c->hello.cookie, sizeof c->hello.cookie);
	/* A cookie is bound to the site it was made for. */
	if (!w || strcmp(w->request.peer, c->site.peer_id) != 0)
		return vr_proxy_conn_refuse(
			c, "cookie", "the cookie is unknown, used, expired or another site's");
	memcpy(c->hello.replication, w->request.replication, sizeof c->hello.replication);
	c->wfd = vr_proxy_waiter_detach(w);
	struct vr_buf to_worker, to_agent;
	vr_buf_init(&to_worker, 0);
	vr_buf_init(&to_agent, 0);
	vr_tunnel_field_append(&to_worker, "proxy", p->config->name);
	vr_tunnel_field_append(&to_worker, "peer", c->site.peer_id);
	vr_tunnel_field_append(&to_worker, "org", c->site.org_id);
	vr_tunnel_field_append(&to_worker, "vdc", c->site.vdc_id);
	vr_tunnel_field_append(&to_worker, "site", c->site.site_uuid);
	if (c->hello.replication[0]) {
		vr_tunnel_field_append(&to_worker, "replication", c->hello.replication);
		vr_tunnel_field_append(&to_agent, "replication", c->hello.replication);
	}
	vr_tunnel_field_append(&to_worker, "purpose", w->request.purpose);
	vr_tunnel_field_append(&to_agent, "proxy", p->config->name);
	vr_tunnel_field_append(&to_agent, "peer", c->site.peer_id);
	vr_tunnel_field_append(&to_agent, "purpose", w->request.purpose);
	struct vr_buf frame;
	vr_buf_init(&frame, 0);
	bool ok = vr_tunnel_frame_append(&frame, VR_FRAME_WELCOME, to_worker.data, to_worker.len) ==
			  0 &&
		  buffers_start(c, frame.data, frame.len, w->in, w->in_len, &to_agent);
	char worker[VR_TUNNEL_MAX_ID + 1];
	memcpy(worker, w->request.worker, sizeof worker);
	vr_proxy_waiter_free(w);
	vr_buf_free(&frame);
	vr_buf_free(&to_worker);
	vr_buf_free(&to_agent);
	if (!ok)
		return data_fail(c, "the buffers are too small for the welcomes");
	c->state = CS_DATA;
	c->deadline_ms = 0;
	c->started_ms = vr_loop_now_ms();
	vr_log_info("reverse_connected", "peer", c->site.peer_id, "replication",
		    c->hello.replication[0] ? c->hello.replication : NULL, "client", c->client,
		    "worker", worker[0] ? worker : NULL);
	return 0;
}

/* Move bytes until nothing moves, then ask the loop for what blocked. */
int vr_proxy_data_pump(struct conn *c)
{
	bool progress = true;
	while (progress) {
		progress = false;
		/* agent -> buffer */
		if (!c->a_eof && pb_room(&c->a2w)) {
			ERR_clear_error();
			size_t room = c->a2w.cap - c->a2w.end;
			int n = SSL_read(c->ssl, c->a2w.data + c->a2w.end,
					 room > INT32_MAX ? INT32_MAX : (int)room);
			if (n > 0) {
				c->a2w.end += (size_t)n;
				c->bytes_up += (uint64_t)n;
				c->read_wants_write = false;
				progress = true;
			} else {
				int r = vr_proxy_conn_tls_retry(c, n, true);
				if (r < 0)
					return data_fail(c, "the agent's connection was lost");
				if (r == 0) {
					c->a_eof = true;
					progress = true;
				}
			}
		}
		/* buffer -> worker */
		if (pb_len(&c->a2w)) {
			ssize_t n = send(c->wfd, c->a2w.data + c->a2w.start, pb_len(&c->a2w),
					 MSG_NOSIGNAL);
			if (n > 0) {
				c->a2w.start += (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return data_fail(c, "the worker's connection was lost");
			}
		}
		if (c->a_eof && !pb_len(&c->a2w) && !c->w_shut) {
			shutdown(c->wfd, SHUT_WR);
			c->w_shut = true;
			progress = true;
		}
		/* worker -> buffer */
		if (!c->w_eof && pb_room(&c->w2a)) {
			ssize_t n =
				recv(c->wfd, c->w2a.data + c->w2a.end, c->w2a.cap - c->w2a.end, 0);
			if (n > 0) {
				c->w2a.end += (size_t)n;
				progress = true;
			} else if (n == 0) {
				c->w_eof = true;
				progress = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				return data_fail(c, "the worker's connection was lost");
			}
		}
		/* buffer -> agent */
		if (pb_len(&c->w2a)) {
			ERR_clear_error();
			size_t len = pb_len(&c->w2a);
			int n = SSL_write(c->ssl, c->w2a.data + c->w2a.start,
					  len > INT32_MAX ? INT32_MAX : (int)len);
			if (n > 0) {
				c->w2a.start += (size_t)n;
				c->bytes_down += (uint64_t)n;
				c->write_wants_read = false;
				progress = true;
			} else if (vr_proxy_conn_tls_retry(c, n, false) <= 0) {
				return data_fail(c, "the agent's connection was lost");
			}
		}
		if (c->w_eof && !pb_len(&c->w2a) && !c->a_shut) {
			ERR_clear_error();
			int r = SSL_shutdown(c->ssl);
			if (r >= 0) {
				c->a_shut = true;
				progress = true;
			} else if (vr_proxy_conn_tls_retry(c, r, false) <= 0) {
				return data_fail(c, "the agent's connection was lost");
			}
		}
		if (c->a_eof && c->w_eof && c->a_shut && c->w_shut && !pb_len(&c->a2w) &&
		    !pb_len(&c->w2a)) {
			vr_proxy_conn_close(c, "finished");
			return -1;
		}
	}
	return vr_proxy_conn_interest(c);
}

/* The worker accepted the connection: the worker's preamble and the
 * agent's welcome go first, then whatever the agent sent after its hello. */
static int data_start(struct conn *c)
{
	struct vr_proxy *p = c->proxy;
	char *preamble = vr_asprintf("VRCLOUD-DATA 1 peer=%s org=%s vdc=%s site=%s replication=%s "
				     "proxy=%s\n",
				     c->site.peer_id, c->site.org_id, c->site.vdc_id,
				     c->site.site_uuid, c->hello.replication, p->config->name);
	struct vr_buf welcome;
	vr_buf_init(&welcome, 0);
	vr_tunnel_field_append(&welcome, "proxy", p->config->name);
	vr_tunnel_field_append(&welcome, "peer", c->site.peer_id);
	vr_tunnel_field_append(&welcome, "replication", c->hello.replication);
	bool ok = buffers_start(c, preamble, strlen(preamble), NULL, 0, &welcome);
	vr_buf_free(&welcome);
	free(preamble);
	if (!ok)
		return data_fail(c, "the buffers are too small for the preamble");
	c->state = CS_DATA;
	c->deadline_ms = 0;
	c->started_ms = vr_loop_now_ms();
	vr_log_info("data_connected", "peer", c->site.peer_id, "replication", c->hello.replication,
		    "client", c->client, "worker", c->route.server, "address", c->route.address);
	return 0;
}

void vr_proxy_on_worker(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct conn *conn = arg;
	if (events & VR_LOOP_ERROR)
		conn->w_hup = true;
	if (conn->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == EINPROGRESS)
			return;
		if (err) {
			vr_proxy_worker_unreachable(conn, strerror(err));
			vr_proxy_conn_close_fd(conn, &conn->wfd, &conn->w_watched, false);
			conn->w_hup = false;
			if (vr_proxy_conn_refuse(conn, "worker", "the worker cannot be reached") ==
			    0)
				vr_proxy_conn_service(conn);
			return;
		}
		if (data_start(conn))
			return;
	}
	vr_proxy_conn_service(conn);
}
