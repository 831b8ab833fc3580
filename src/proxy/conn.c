/* One agent connection through the proxy (docs/tunnels.md): TLS handshake,
 * the hello, the credential check, then either a control connection
 * (heartbeats, commands down, acks up) or a data connection whose bytes
 * are copied to and from a worker. Everything runs on the loop: a call
 * that may close the connection returns -1 after it did, and the caller
 * touches the connection no more. The data pump, and the connecting of
 * data and reverse connections to their worker, are in pump.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "proxy/internal.h"
#include "proxy/pump.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/tls.h"

#define IN_CAP (VR_TUNNEL_HEADER_LEN + VR_TUNNEL_MAX_PAYLOAD)

static void on_agent(struct vr_loop *loop, int fd, unsigned events, void *arg);

static const char *kind_name(const struct conn *conn)
{
	const char *kind = conn->hello.kind ? vr_tunnel_kind_name(conn->hello.kind) : NULL;
	return kind ? kind : "unknown";
}

void vr_proxy_keepalive(int fd)
{
	int on = 1, idle = 60, interval = 10, count = 6;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

/* --- lifecycle ------------------------------------------------------------- */

static void unlink_conn(struct conn *conn)
{
	struct vr_proxy *p = conn->proxy;
	if (conn->prev)
		conn->prev->next = conn->next;
	else if (p->conns == conn)
		p->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	conn->prev = conn->next = NULL;
	p->nconns--;
}

void vr_proxy_conn_close_fd(struct conn *conn, int *fd, bool *watched, bool reset)
{
	if (*fd < 0)
		return;
	if (*watched)
		vr_loop_unwatch(conn->proxy->loop, *fd);
	*watched = false;
	if (reset) {
		struct linger linger = {1, 0};
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
	}
	close(*fd);
	*fd = -1;
}

void vr_proxy_conn_close(struct conn *conn, const char *reason)
{
	if (conn->dead)
		return;
	conn->dead = true;
	struct vr_proxy *p = conn->proxy;
	bool control = conn->state == CS_CONTROL;
	if (control && vr_proxy_map_get(p->sites, conn->site.peer_id) == conn) {
		vr_proxy_map_del(p->sites, conn->site.peer_id);
		vr_proxy_registry_release(p->registry, conn->site.peer_id);
	}
	if (control || conn->state == CS_DATA || conn->state == CS_CONNECTING) {
		char up[24], down[24], ms[24];
		snprintf(up, sizeof up, "%llu", (unsigned long long)conn->bytes_up);
		snprintf(down, sizeof down, "%llu", (unsigned long long)conn->bytes_down);
		snprintf(ms, sizeof ms, "%llu",
			 (unsigned long long)(vr_loop_now_ms() - conn->started_ms));
		bool data = !control;
		vr_log_info("connection_closed", "kind", kind_name(conn), "peer",
			    conn->site.peer_id[0] ? conn->site.peer_id : NULL, "client",
			    conn->client, "reason", reason, "bytes_up", data ? up : NULL,
			    "bytes_down", data ? down : NULL, "duration_ms", ms);
	} else {
		vr_log_debug("connection_closed", "client", conn->client, "reason", reason);
	}
	bool complete = conn->state == CS_DATA && conn->a_eof && conn->w_shut;
	vr_proxy_conn_close_fd(conn, &conn->wfd, &conn->w_watched, conn->wfd >= 0 && !complete);
	if (conn->ssl) {
		SSL_free(conn->ssl);
		conn->ssl = NULL;
	}
	vr_proxy_conn_close_fd(conn, &conn->fd, &conn->a_watched, false);
	if (!conn->verify_pending)
		vr_tunnel_hello_clear(&conn->hello);
	free(conn->in);
	conn->in = NULL;
	vr_buf_free(&conn->out);
	for (size_t i = 0; i < conn->ndeliveries; i++)
		free(conn->deliveries[i].element);
	conn->ndeliveries = 0;
	free(conn->a2w.data);
	free(conn->w2a.data);
	conn->a2w.data = conn->w2a.data = NULL;
	unlink_conn(conn);
	/* The verifier still points at it: its answer frees it. */
	if (!conn->verify_pending)
		free(conn);
}

void vr_proxy_conn_accept(struct vr_proxy *proxy, int fd, const struct sockaddr *addr,
			  socklen_t addrlen)
{
	struct conn *conn = vr_calloc(1, sizeof *conn);
	conn->proxy = proxy;
	conn->fd = fd;
	conn->wfd = -1;
	conn->serial = ++proxy->next_serial;
	conn->state = CS_HANDSHAKE;
	conn->started_ms = vr_loop_now_ms();
	conn->deadline_ms = conn->started_ms + (uint64_t)proxy->config->handshake_timeout * 1000u;
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
	snprintf(conn->client, sizeof conn->client, "%s:%u", host, port);
	int on = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	vr_proxy_keepalive(fd);
	vr_buf_init(&conn->out, 0);
	conn->in = vr_malloc(IN_CAP);
	conn->next = proxy->conns;
	if (proxy->conns)
		proxy->conns->prev = conn;
	proxy->conns = conn;
	proxy->nconns++;
	conn->ssl = SSL_new(proxy->ssl_ctx);
	if (!conn->ssl || SSL_set_fd(conn->ssl, fd) != 1) {
		vr_log_warn("tls_setup_failed", "error", vr_tls_error());
		vr_proxy_conn_close(conn, "TLS could not be set up");
		return;
	}
	SSL_set_accept_state(conn->ssl);
	if (vr_loop_watch(proxy->loop, fd, VR_LOOP_READ, on_agent, conn)) {
		vr_proxy_conn_close(conn, "the loop refused the connection");
		return;
	}
	conn->a_watched = true;
}

/* --- interest ---------------------------------------------------------------- */

static int set_side(struct conn *conn, int fd, unsigned events, bool *watched, bool hup,
		    vr_loop_fd_fn fn)
{
	struct vr_loop *loop = conn->proxy->loop;
	/* A hung-up socket is reported even with no events asked for: take it
	 * off the loop until there is something to do with it. */
	if (events == 0 && hup) {
		if (*watched)
			vr_loop_unwatch(loop, fd);
		*watched = false;
		return 0;
	}
	if (!*watched) {
		if (vr_loop_watch(loop, fd, events, fn, conn))
			return VR_EIO;
		*watched = true;
		return 0;
	}
	return vr_loop_events(loop, fd, events);
}

static unsigned tls_read_bits(const struct conn *conn)
{
	return conn->read_wants_write ? VR_LOOP_WRITE : VR_LOOP_READ;
}

static unsigned tls_write_bits(const struct conn *conn)
{
	return conn->write_wants_read ? VR_LOOP_READ : VR_LOOP_WRITE;
}

int vr_proxy_conn_interest(struct conn *conn)
{
	unsigned a = 0, w = 0;
	switch (conn->state) {
	case CS_HANDSHAKE:
	case CS_HELLO:
	case CS_CONTROL:
		a = tls_read_bits(conn);
		if (conn->out.len)
			a |= tls_write_bits(conn);
		break;
	case CS_VERIFYING: break;
	case CS_CONNECTING: w = VR_LOOP_WRITE; break;
	case CS_DATA:
		if (!conn->a_eof && conn->a2w.end - conn->a2w.start < conn->a2w.cap)
			a |= tls_read_bits(conn);
		if (pb_len(&conn->w2a) || (conn->w_eof && !conn->a_shut))
			a |= tls_write_bits(conn);
		if (!conn->w_eof && pb_len(&conn->w2a) < conn->w2a.cap)
			w |= VR_LOOP_READ;
		if (pb_len(&conn->a2w) || (conn->a_eof && !conn->w_shut))
			w |= VR_LOOP_WRITE;
		break;
	case CS_CLOSING: a = tls_write_bits(conn); break;
	}
	int rc = set_side(conn, conn->fd, a, &conn->a_watched, conn->a_hup, on_agent);
	if (!rc && conn->wfd >= 0)
		rc = set_side(conn, conn->wfd, w, &conn->w_watched, conn->w_hup,
			      vr_proxy_on_worker);
	if (rc) {
		vr_proxy_conn_close(conn, "the loop refused the connection");
		return -1;
	}
	return 0;
}

/* --- TLS I/O ----------------------------------------------------------------- */

/* What an SSL call's failure means: 1 = try again later, -1 = the
 * connection is gone (the caller closes it). */
int vr_proxy_conn_tls_retry(struct conn *conn, int ret, bool reading)
{
	int e = SSL_get_error(conn->ssl, ret);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		bool other = e == (reading ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ);
		if (reading)
			conn->read_wants_write = other;
		else
			conn->write_wants_read = other;
		return 1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	vr_log_debug("tls_error", "client", conn->client, "error", vr_tls_error());
	return -1;
}

static int write_out(struct conn *conn)
{
	while (conn->out.len) {
		ERR_clear_error();
		int n = SSL_write(conn->ssl, conn->out.data,
				  conn->out.len > INT32_MAX ? INT32_MAX : (int)conn->out.len);
		if (n > 0) {
			memmove(conn->out.data, conn->out.data + n, conn->out.len - (size_t)n);
			conn->out.len -= (size_t)n;
			conn->write_wants_read = false;
			continue;
		}
		if (vr_proxy_conn_tls_retry(conn, n, false) > 0)
			return 0;
		vr_proxy_conn_close(conn, "the connection was lost");
		return -1;
	}
	return 0;
}

int vr_proxy_conn_queue_frame(struct conn *conn, unsigned type, const char *payload, size_t len)
{
	if (conn->out.len > VR_PROXY_CONTROL_OUT_MAX) {
		vr_proxy_conn_close(conn, "the agent does not read its frames");
		return -1;
	}
	if (vr_tunnel_frame_append(&conn->out, type, payload, len)) {
		vr_proxy_conn_close(conn, "a frame could not be made");
		return -1;
	}
	return 0;
}

int vr_proxy_conn_refuse(struct conn *conn, const char *reason, const char *message)
{
	vr_log_info("refused", "client", conn->client, "kind", kind_name(conn), "peer",
		    conn->site.peer_id[0] ? conn->site.peer_id : NULL, "reason", reason, "message",
		    message);
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	vr_tunnel_field_append(&payload, "reason", reason);
	vr_tunnel_field_append(&payload, "message", message);
	int rc = vr_proxy_conn_queue_frame(conn, VR_FRAME_REFUSE, payload.data ? payload.data : "",
					   payload.len);
	vr_buf_free(&payload);
	if (rc)
		return -1;
	conn->state = CS_CLOSING;
	conn->close_reason = reason;
	conn->deadline_ms = vr_loop_now_ms() + VR_PROXY_CLOSE_GRACE_MS;
	return 0;
}

/* Send what is queued, then close_notify, then close. */
static int flush_closing(struct conn *conn)
{
	if (write_out(conn))
		return -1;
	if (conn->out.len)
		return vr_proxy_conn_interest(conn);
	ERR_clear_error();
	int r = SSL_shutdown(conn->ssl);
	if (r < 0 && vr_proxy_conn_tls_retry(conn, r, false) > 0)
		return vr_proxy_conn_interest(conn);
	vr_proxy_conn_close(conn, conn->close_reason ? conn->close_reason : "closed");
	return -1;
}

/* --- after the credential is known ---------------------------------------------- */

static int control_accepted(struct conn *conn)
{
	struct vr_proxy *p = conn->proxy;
	const char *peer = conn->site.peer_id;
	struct conn *old = vr_proxy_map_put(p->sites, peer, conn);
	/* Only the newest connection of a site is kept. The map already
	 * names the new one, so closing the old releases nothing. */
	if (old && old != conn)
		vr_proxy_conn_close(old, "replaced by a newer connection of the site");
	conn->state = CS_CONTROL;
	uint64_t now = vr_loop_now_ms();
	conn->verified_ms = now;
	conn->deadline_ms = now + 3000u * (uint64_t)p->config->heartbeat_interval;
	vr_proxy_registry_claim(p->registry, peer);
	char heartbeat[16];
	snprintf(heartbeat, sizeof heartbeat, "%u", p->config->heartbeat_interval);
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	vr_tunnel_field_append(&payload, "proxy", p->config->name);
	vr_tunnel_field_append(&payload, "peer", peer);
	vr_tunnel_field_append(&payload, "site", conn->site.site_uuid);
	vr_tunnel_field_append(&payload, "heartbeat", heartbeat);
	int rc = vr_proxy_conn_queue_frame(conn, VR_FRAME_WELCOME, payload.data, payload.len);
	vr_buf_free(&payload);
	if (rc)
		return -1;
	vr_log_info("site_connected", "peer", peer, "site", conn->site.site_uuid, "org",
		    conn->site.org_id, "client", conn->client, "agent",
		    conn->hello.agent[0] ? conn->hello.agent : NULL);
	vr_proxy_conn_fetch(conn);
	return 0;
}

/* Leave CS_VERIFYING with the answer; -1 when that closed the connection. */
static int verified(struct conn *conn, int status, const struct vr_proxy_site *site)
{
	if (status == VR_EFORBIDDEN)
		return vr_proxy_conn_refuse(conn, "credential", "the site credential is not valid");
	if (status == VR_ENOTFOUND || status == VR_ECONFLICT) {
		vr_log_warn("replication_refused", "peer", site->peer_id, "replication",
			    conn->hello.replication, "client", conn->client, "reason",
			    status == VR_ENOTFOUND ? "not this site's" : "no worker");
		vr_tunnel_hello_clear(&conn->hello);
		if (status == VR_ENOTFOUND)
			return vr_proxy_conn_refuse(conn, "replication",
						    "the site has no such replication");
		return vr_proxy_conn_refuse(conn, "worker", "no worker holds this replication now");
	}
	if (status != 0)
		return vr_proxy_conn_refuse(
			conn, "unavailable",
			"the credential cannot be checked now; try again later");
	conn->site = *site;
	if (conn->proxy->stopping)
		return vr_proxy_conn_refuse(conn, "shutdown", "this proxy is stopping");
	if (conn->hello.kind == VR_TUNNEL_CONTROL)
		return control_accepted(conn);
	/* The credential of a data connection is needed no more. */
	vr_tunnel_hello_clear(&conn->hello);
	if (conn->hello.kind == VR_TUNNEL_REVERSE)
		return vr_proxy_reverse_accepted(conn);
	return vr_proxy_data_accepted(conn);
}

/* through: the bytes of conn->in up to the end of the hello. */
static int on_hello(struct conn *conn, const struct vr_tunnel_frame *frame, size_t through)
{
	if (frame->type != VR_FRAME_HELLO)
		return vr_proxy_conn_refuse(conn, "protocol", "the first frame must be a hello");
	const char *reason = NULL;
	if (vr_tunnel_hello_parse(&conn->hello, frame->payload, frame->len, &reason))
		return vr_proxy_conn_refuse(conn, "protocol", reason);
	/* The hello (with the credential and any cookie) leaves the buffer
	 * now: a connection accepted at once, on a cached answer, passes on
	 * only what the agent sent after it. */
	OPENSSL_cleanse(conn->in, through);
	memmove(conn->in, conn->in + through, conn->in_len - through);
	conn->in_len -= through;
	if (conn->proxy->stopping)
		return vr_proxy_conn_refuse(conn, "shutdown", "this proxy is stopping");
	conn->state = CS_VERIFYING;
	conn->deadline_ms = 0; /* the verifier always answers */
	struct vr_proxy_site site;
	struct vr_proxy_verifier *v = conn->proxy->verifier;
	if (!vr_proxy_verifier_cached(v, conn->hello.credential, &site)) {
		vr_proxy_verifier_submit(v, conn, NULL);
		return 0;
	}
	if (conn->hello.kind != VR_TUNNEL_DATA ||
	    vr_proxy_verifier_route_cached(v, site.peer_id, conn->hello.replication, &conn->route))
		return verified(conn, 0, &site);
	vr_proxy_verifier_submit(v, conn, &site);
	return 0;
}

void vr_proxy_conn_verified(struct conn *conn, int status, const struct vr_proxy_site *site)
{
	conn->verify_pending = false;
	if (conn->dead) {
		vr_tunnel_hello_clear(&conn->hello);
		free(conn);
		return;
	}
	if (conn->reverify) {
		/* A periodic check of an established control connection. */
		conn->reverify = false;
		if (status == VR_EFORBIDDEN) {
			vr_proxy_verifier_forget(conn->proxy->verifier, conn->hello.credential);
			vr_proxy_conn_close(conn, "the site credential is no longer valid");
		} else if (status == 0) {
			conn->verified_ms = vr_loop_now_ms();
		}
		return;
	}
	if (conn->state != CS_VERIFYING)
		return;
	if (verified(conn, status, site) == 0)
		vr_proxy_conn_service(conn);
}

/* --- reading frames ------------------------------------------------------------- */

/* Handle the whole frames in conn->in. Stops when the state leaves
 * CS_HELLO / CS_CONTROL (the rest waits for the new state). */
static int process_frames(struct conn *conn)
{
	size_t pos = 0;
	int rc = 0;
	while (conn->state == CS_HELLO || conn->state == CS_CONTROL) {
		struct vr_tunnel_frame frame;
		size_t used = 0;
		int err = vr_tunnel_frame_parse(&frame, &used, conn->in + pos, conn->in_len - pos);
		if (err) {
			const char *why = err == VR_ETOOBIG ? "a frame is longer than 16384 bytes"
							    : "a frame has an unknown type";
			if (conn->state == CS_HELLO) {
				rc = vr_proxy_conn_refuse(conn, "protocol", why);
			} else {
				vr_proxy_conn_close(conn, why);
				rc = -1;
			}
			break;
		}
		if (!used)
			break;
		pos += used;
		if (conn->state == CS_HELLO) {
			rc = on_hello(conn, &frame, pos);
			pos = 0; /* on_hello took the bytes it read */
		} else {
			rc = vr_proxy_control_frame(conn, &frame);
		}
		if (rc)
			return -1;
	}
	if (rc < 0 || conn->dead)
		return -1;
	if (conn->state == CS_CLOSING) {
		conn->in_len = 0;
		return 0;
	}
	memmove(conn->in, conn->in + pos, conn->in_len - pos);
	conn->in_len -= pos;
	return 0;
}

static int read_frames(struct conn *conn)
{
	while (conn->state == CS_HELLO || conn->state == CS_CONTROL) {
		if (process_frames(conn))
			return -1;
		if (conn->state != CS_HELLO && conn->state != CS_CONTROL)
			return 0;
		ERR_clear_error();
		int n = SSL_read(conn->ssl, conn->in + conn->in_len, (int)(IN_CAP - conn->in_len));
		if (n > 0) {
			conn->in_len += (size_t)n;
			conn->read_wants_write = false;
			continue;
		}
		int r = vr_proxy_conn_tls_retry(conn, n, true);
		if (r > 0)
			return 0;
		vr_proxy_conn_close(conn,
				    r == 0 ? "closed by the agent" : "the connection was lost");
		return -1;
	}
	return 0;
}

static void on_agent(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct conn *conn = arg;
	if (events & VR_LOOP_ERROR)
		conn->a_hup = true;
	vr_proxy_conn_service(conn);
}

int vr_proxy_conn_service(struct conn *conn)
{
	for (;;) {
		switch (conn->state) {
		case CS_HANDSHAKE: {
			ERR_clear_error();
			int r = SSL_do_handshake(conn->ssl);
			if (r == 1) {
				conn->state = CS_HELLO;
				conn->read_wants_write = false;
				continue;
			}
			int e = SSL_get_error(conn->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				conn->read_wants_write = e == SSL_ERROR_WANT_WRITE;
				return vr_proxy_conn_interest(conn);
			}
			vr_log_debug("tls_handshake_failed", "client", conn->client, "error",
				     vr_tls_error());
			vr_proxy_conn_close(conn, "the TLS handshake failed");
			return -1;
		}
		case CS_HELLO:
		case CS_CONTROL: {
			enum conn_state before = conn->state;
			if (read_frames(conn))
				return -1;
			if (conn->state != before && conn->state != CS_CONTROL)
				continue;
			if (write_out(conn))
				return -1;
			return vr_proxy_conn_interest(conn);
		}
		case CS_VERIFYING:
		case CS_CONNECTING: return vr_proxy_conn_interest(conn);
		case CS_DATA: return vr_proxy_data_pump(conn);
		case CS_CLOSING: return flush_closing(conn);
		}
	}
}

void vr_proxy_conn_sweep(struct vr_proxy *proxy, uint64_t now)
{
	uint64_t reverify_ms = (uint64_t)proxy->config->verify_cache * 1000u;
	struct conn *next;
	for (struct conn *conn = proxy->conns; conn; conn = next) {
		next = conn->next;
		if (conn->deadline_ms && now >= conn->deadline_ms) {
			switch (conn->state) {
			case CS_CONNECTING:
				vr_proxy_worker_unreachable(conn, "timed out");
				vr_proxy_conn_close_fd(conn, &conn->wfd, &conn->w_watched, false);
				if (vr_proxy_conn_refuse(conn, "worker",
							 "the worker did not answer") == 0)
					vr_proxy_conn_service(conn);
				break;
			case CS_CONTROL: vr_proxy_conn_close(conn, "no heartbeat in time"); break;
			case CS_CLOSING: vr_proxy_conn_close(conn, conn->close_reason); break;
			default: vr_proxy_conn_close(conn, "no hello in time"); break;
			}
			continue;
		}
		if (conn->state == CS_CONTROL && reverify_ms && !conn->verify_pending &&
		    now - conn->verified_ms >= reverify_ms) {
			conn->reverify = true;
			vr_proxy_verifier_submit(proxy->verifier, conn, NULL);
		}
	}
}
