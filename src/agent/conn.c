/* The agent's connections to a proxy: TCP out (never a listening socket),
 * TLS 1.3, the proxy's certificate checked before the hello (which carries
 * the site credential) is sent, then frames or raw bytes. Sockets are
 * non-blocking and every wait is a poll with a deadline, so no call hangs
 * on a silent proxy. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "vrcloud/agent.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

#define IN_CAP (VR_TUNNEL_HEADER_LEN + VR_TUNNEL_MAX_PAYLOAD)

struct vr_agent_conn {
	int fd;
	SSL *ssl;
	unsigned timeout_ms;
	unsigned char in[IN_CAP];
	size_t in_len;
	size_t in_used; /* bytes of in already handed out (the last frame) */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_WOKEN, WAIT_ERROR };

static enum wait_result wait_fd(int fd, short events, int64_t deadline, int wake_fd)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return WAIT_TIMEOUT;
		struct pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
		int n = poll(p, wake_fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return WAIT_ERROR;
		}
		if (n == 0)
			continue;
		if (wake_fd >= 0 && p[1].revents)
			return WAIT_WOKEN;
		if (p[0].revents)
			return WAIT_READY;
	}
}

int vr_agent_tls_init(struct vr_agent_tls *tls, const struct vr_agent_config *config,
		      char **error_out)
{
	memset(tls, 0, sizeof *tls);
	if (config->pin && vr_tls_pins_parse(&tls->pins, config->pin)) {
		*error_out = vr_strdup("[agent] pin is not a list of SHA-256 hashes");
		return VR_ECONFIG;
	}
	int rc = vr_tls_client_ctx(&tls->ctx, config->ca_file, error_out);
	if (rc)
		return rc;
	tls->verify_chain = config->ca_file != NULL;
	tls->server_name = config->server_name ? vr_strdup(config->server_name) : NULL;
	return 0;
}

void vr_agent_tls_free(struct vr_agent_tls *tls)
{
	if (!tls)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls->server_name);
	memset(tls, 0, sizeof *tls);
}

/* A TCP connection to host:port (any of its addresses) by deadline. */
static int tcp_connect(int *fd_out, const char *host, unsigned port, int64_t deadline,
		       char **error_out)
{
	char service[8];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	int rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		*error_out = vr_asprintf("cannot resolve %s: %s", host, gai_strerror(rc));
		return VR_EUNAVAIL;
	}
	int last_error = ETIMEDOUT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			last_error = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last_error = errno;
			close(fd);
			continue;
		}
		enum wait_result w = wait_fd(fd, POLLOUT, deadline, -1);
		int err = 0;
		socklen_t len = sizeof err;
		if (w != WAIT_READY)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			last_error = err;
			close(fd);
			continue;
		}
		int on = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
		freeaddrinfo(res);
		*fd_out = fd;
		return 0;
	}
	freeaddrinfo(res);
	*error_out = vr_asprintf("cannot connect to %s:%u: %s", host, port, strerror(last_error));
	return VR_EUNAVAIL;
}

enum tls_op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* Run one SSL operation to completion or deadline. Returns > 0 (bytes or
 * done), 0 (end of stream / timeout / woken: see *wait_out), or -1. */
static int tls_run(struct vr_agent_conn *c, enum tls_op op, void *buf, size_t len, int64_t deadline,
		   int wake_fd, enum wait_result *wait_out)
{
	if (wait_out)
		*wait_out = WAIT_READY;
	int cap = len > INT32_MAX ? INT32_MAX : (int)len;
	for (;;) {
		ERR_clear_error();
		int r;
		switch (op) {
		case OP_HANDSHAKE: r = SSL_do_handshake(c->ssl); break;
		case OP_READ: r = SSL_read(c->ssl, buf, cap); break;
		case OP_WRITE: r = SSL_write(c->ssl, buf, cap); break;
		default:
			r = SSL_shutdown(c->ssl);
			if (r == 0)
				r = 1; /* our close_notify is out; the proxy's may follow */
			break;
		}
		if (r > 0)
			return r;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -1;
		enum wait_result w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
					     deadline, wake_fd);
		if (w == WAIT_READY)
			continue;
		if (wait_out)
			*wait_out = w;
		return w == WAIT_ERROR ? -1 : 0;
	}
}

void vr_agent_conn_close(struct vr_agent_conn *conn)
{
	if (!conn)
		return;
	if (conn->ssl)
		SSL_free(conn->ssl);
	if (conn->fd >= 0)
		close(conn->fd);
	explicit_bzero(conn->in, sizeof conn->in);
	free(conn);
}

int vr_agent_conn_fd(const struct vr_agent_conn *conn)
{
	return conn->fd;
}

void vr_agent_conn_set_timeout(struct vr_agent_conn *conn, unsigned timeout_ms)
{
	conn->timeout_ms = timeout_ms ? timeout_ms : 1;
}

static int write_all(struct vr_agent_conn *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	int64_t deadline = now_ms() + c->timeout_ms;
	while (len) {
		enum wait_result w;
		int n = tls_run(c, OP_WRITE, (void *)p, len, deadline, -1, &w);
		if (n <= 0)
			return VR_EUNAVAIL;
		p += n;
		len -= (size_t)n;
		deadline = now_ms() + c->timeout_ms;
	}
	return 0;
}

int vr_agent_conn_send(struct vr_agent_conn *conn, unsigned type, const char *payload, size_t len,
		       unsigned timeout_ms)
{
	struct vr_buf frame;
	vr_buf_init(&frame, 0);
	if (vr_tunnel_frame_append(&frame, type, payload, len)) {
		vr_buf_free(&frame);
		return VR_EINVAL;
	}
	unsigned saved = conn->timeout_ms;
	conn->timeout_ms = timeout_ms;
	int rc = write_all(conn, frame.data, frame.len);
	conn->timeout_ms = saved;
	vr_buf_free(&frame);
	return rc;
}

int vr_agent_conn_recv(struct vr_agent_conn *conn, struct vr_tunnel_frame *frame_out,
		       int timeout_ms, int wake_fd)
{
	memset(frame_out, 0, sizeof *frame_out);
	if (conn->in_used) {
		memmove(conn->in, conn->in + conn->in_used, conn->in_len - conn->in_used);
		conn->in_len -= conn->in_used;
		conn->in_used = 0;
	}
	int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		size_t used = 0;
		if (vr_tunnel_frame_parse(frame_out, &used, conn->in, conn->in_len))
			return VR_EUNAVAIL;
		if (used) {
			conn->in_used = used;
			return 0;
		}
		enum wait_result w;
		int n = tls_run(conn, OP_READ, conn->in + conn->in_len, IN_CAP - conn->in_len,
				deadline, wake_fd, &w);
		if (n > 0) {
			conn->in_len += (size_t)n;
			continue;
		}
		if (n == 0 && (w == WAIT_TIMEOUT || w == WAIT_WOKEN)) {
			memset(frame_out, 0, sizeof *frame_out);
			return 0;
		}
		return VR_EUNAVAIL;
	}
}

int vr_agent_conn_write(struct vr_agent_conn *conn, const void *data, size_t len)
{
	return write_all(conn, data, len);
}

int vr_agent_conn_read(struct vr_agent_conn *conn, void *buf, size_t cap, size_t *n_out)
{
	*n_out = 0;
	/* Bytes that came with the welcome go first. */
	size_t left = conn->in_len - conn->in_used;
	if (left) {
		size_t n = left < cap ? left : cap;
		memcpy(buf, conn->in + conn->in_used, n);
		conn->in_used += n;
		if (conn->in_used == conn->in_len)
			conn->in_used = conn->in_len = 0;
		*n_out = n;
		return 0;
	}
	enum wait_result w;
	int n = tls_run(conn, OP_READ, buf, cap, now_ms() + conn->timeout_ms, -1, &w);
	if (n > 0) {
		*n_out = (size_t)n;
		return 0;
	}
	return n == 0 && w == WAIT_READY ? 0 : VR_EUNAVAIL;
}

int vr_agent_conn_finish(struct vr_agent_conn *conn)
{
	int n = tls_run(conn, OP_SHUTDOWN, NULL, 0, now_ms() + conn->timeout_ms, -1, NULL);
	return n > 0 ? 0 : VR_EUNAVAIL;
}

static int refusal(struct vr_tunnel_fields *fields, char **error_out)
{
	const char *reason = vr_tunnel_field(fields, "reason");
	const char *message = vr_tunnel_field(fields, "message");
	*error_out = vr_asprintf("%s: %s", reason ? reason : "refused",
				 message ? message : "the proxy refused the connection");
	return reason && strcmp(reason, "credential") == 0 ? VR_EFORBIDDEN : VR_ECONFLICT;
}

/* TLS and the proxy's checks on a connected socket. */
static int secure(struct vr_agent_conn *c, const struct vr_agent_tls *tls, const char *host,
		  int64_t deadline, char **error_out)
{
	c->ssl = SSL_new(tls->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    vr_tls_client_prepare(c->ssl, tls->server_name ? tls->server_name : host,
				  tls->verify_chain)) {
		*error_out = vr_asprintf("TLS could not be set up: %s", vr_tls_error());
		return VR_EUNAVAIL;
	}
	SSL_set_connect_state(c->ssl);
	enum wait_result w;
	if (tls_run(c, OP_HANDSHAKE, NULL, 0, deadline, -1, &w) <= 0) {
		long verify = SSL_get_verify_result(c->ssl);
		if (tls->verify_chain && verify != X509_V_OK) {
			*error_out = vr_asprintf("the proxy's certificate is not trusted: %s",
						 X509_verify_cert_error_string(verify));
			ERR_clear_error();
			return VR_EAUTH;
		}
		const char *why = vr_tls_error();
		*error_out = vr_asprintf("the TLS handshake failed: %s",
					 w == WAIT_TIMEOUT ? "timed out"
					 : why[0]	   ? why
							   : "the connection was closed");
		return VR_EUNAVAIL;
	}
	const char *why = NULL;
	if (vr_tls_check_peer(c->ssl, &tls->pins, tls->verify_chain, &why)) {
		*error_out = vr_strdup(why);
		return VR_EAUTH;
	}
	return 0;
}

int vr_agent_conn_open(struct vr_agent_conn **out, struct vr_tunnel_fields *welcome_out,
		       const struct vr_agent_tls *tls, const char *address,
		       const struct vr_tunnel_hello *hello, unsigned timeout_ms, char **error_out)
{
	*out = NULL;
	memset(welcome_out, 0, sizeof *welcome_out);
	char host[256];
	unsigned port;
	if (vr_tunnel_split_address(host, sizeof host, &port, address)) {
		*error_out = vr_asprintf("'%s' is not host:port", address);
		return VR_EINVAL;
	}
	int64_t deadline = now_ms() + timeout_ms;
	struct vr_agent_conn *c = vr_calloc(1, sizeof *c);
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	int rc = tcp_connect(&c->fd, host, port, deadline, error_out);
	if (!rc)
		rc = secure(c, tls, host, deadline, error_out);
	if (rc) {
		vr_agent_conn_close(c);
		return rc;
	}
	struct vr_buf frame;
	vr_buf_init(&frame, 0);
	rc = vr_tunnel_hello_append(&frame, hello);
	if (!rc)
		rc = write_all(c, frame.data, frame.len) ? VR_EUNAVAIL : 0;
	if (frame.data)
		explicit_bzero(frame.data, frame.len);
	vr_buf_free(&frame);
	if (rc) {
		*error_out = vr_strdup(rc == VR_EUNAVAIL ? "the hello could not be sent"
							 : "the hello could not be made");
		vr_agent_conn_close(c);
		return rc;
	}
	struct vr_tunnel_frame answer;
	int64_t left = deadline - now_ms();
	rc = vr_agent_conn_recv(c, &answer, left > 0 ? (int)left : 0, -1);
	const char *reason = NULL;
	if (rc || answer.type == 0) {
		*error_out = vr_strdup(rc ? "the proxy closed the connection after the hello"
					  : "the proxy did not answer the hello in time");
		rc = VR_EUNAVAIL;
	} else if (answer.type != VR_FRAME_WELCOME && answer.type != VR_FRAME_REFUSE) {
		*error_out = vr_asprintf("the proxy answered the hello with a %s frame",
					 vr_tunnel_frame_name(answer.type));
		rc = VR_EUNAVAIL;
	} else if (vr_tunnel_fields_parse(welcome_out, answer.payload, answer.len, &reason)) {
		*error_out = vr_asprintf("the proxy's answer is malformed: %s", reason);
		rc = VR_EUNAVAIL;
	} else if (answer.type == VR_FRAME_REFUSE) {
		rc = refusal(welcome_out, error_out);
		vr_tunnel_fields_free(welcome_out);
	}
	if (rc) {
		vr_agent_conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int vr_agent_data_open(struct vr_agent_conn **out, const struct vr_agent_tls *tls,
		       const struct vr_agent_config *config, const char *credential,
		       const char *replication, char **error_out)
{
	*out = NULL;
	*error_out = NULL;
	struct vr_tunnel_hello hello;
	memset(&hello, 0, sizeof hello);
	hello.version = VR_TUNNEL_VERSION;
	hello.kind = VR_TUNNEL_DATA;
	snprintf(hello.agent, sizeof hello.agent, "%s", config->name ? config->name : "");
	if (strlen(credential) > VR_TUNNEL_MAX_CREDENTIAL ||
	    vr_uuid_canon(hello.replication, replication)) {
		*error_out = vr_strdup("the credential or the replication id is malformed");
		return VR_EINVAL;
	}
	memcpy(hello.credential, credential, strlen(credential) + 1);
	int rc = VR_EUNAVAIL;
	const char *p = config->proxy;
	while (p && *p) {
		size_t len = strcspn(p, ",");
		char *address = vr_strndup(p, len);
		struct vr_tunnel_fields welcome;
		free(*error_out);
		*error_out = NULL;
		rc = vr_agent_conn_open(out, &welcome, tls, address, &hello,
					config->connect_timeout * 1000u, error_out);
		free(address);
		if (rc == 0)
			vr_tunnel_fields_free(&welcome);
		if (rc == 0 || rc == VR_EFORBIDDEN || rc == VR_EAUTH)
			break;
		p += len;
		if (*p == ',')
			p++;
	}
	vr_tunnel_hello_clear(&hello);
	return rc;
}

int vr_agent_reverse_open(struct vr_agent_conn **out, const struct vr_agent_tls *tls,
			  const struct vr_agent_config *config, const char *credential,
			  const char *address, const char *cookie, char **error_out)
{
	*out = NULL;
	*error_out = NULL;
	struct vr_tunnel_hello hello;
	memset(&hello, 0, sizeof hello);
	hello.version = VR_TUNNEL_VERSION;
	hello.kind = VR_TUNNEL_REVERSE;
	snprintf(hello.agent, sizeof hello.agent, "%s", config->name ? config->name : "");
	if (strlen(credential) > VR_TUNNEL_MAX_CREDENTIAL || !vr_tunnel_id_valid(cookie)) {
		*error_out = vr_strdup("the credential or the cookie is malformed");
		return VR_EINVAL;
	}
	memcpy(hello.credential, credential, strlen(credential) + 1);
	memcpy(hello.cookie, cookie, strlen(cookie) + 1);
	struct vr_tunnel_fields welcome;
	int rc = vr_agent_conn_open(out, &welcome, tls, address, &hello,
				    config->connect_timeout * 1000u, error_out);
	if (rc == 0)
		vr_tunnel_fields_free(&welcome);
	vr_tunnel_hello_clear(&hello);
	explicit_bzero(hello.cookie, sizeof hello.cookie);
	return rc;
}
