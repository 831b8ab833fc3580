/* vrcloud-proxy's daemon: the public TLS listener, signals through a
 * signalfd (SIGHUP: the log file and the certificate are read again), a
 * periodic sweep of deadlines, and the orderly stop. All of it runs on one
 * event loop in the main thread. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/tls.h"
#include "vrcloud/worker.h"

#define SWEEP_MS	500
#define ACCEPT_PAUSE_MS 1000
/* Redis gets this long after the shutdown timeout to take the releases. */
#define REDIS_GRACE_MS 2000

static void on_accept(struct vr_loop *loop, int fd, unsigned events, void *arg);

static int resolve(struct sockaddr_storage *out, socklen_t *len_out, const char *address,
		   bool passive, char **error_out)
{
	char host[256], port[8];
	unsigned port_number;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, address)) {
		*error_out = vr_asprintf("'%s' is not host:port", address);
		return VR_ECONFIG;
	}
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		*error_out = vr_asprintf("cannot resolve %s: %s", address, gai_strerror(rc));
		return VR_ECONFIG;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len_out = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int bind_listener(int *fd_out, unsigned *port_out, const char *address, char **error_out)
{
	struct sockaddr_storage addr;
	socklen_t len;
	int rc = resolve(&addr, &len, address, true, error_out);
	if (rc)
		return rc;
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_out = vr_asprintf("socket: %s", strerror(errno));
		return VR_EIO;
	}
	int on = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 512) != 0) {
		*error_out = vr_asprintf("cannot listen on %s: %s", address, strerror(errno));
		close(fd);
		return VR_EIO;
	}
	struct sockaddr_storage bound;
	memset(&bound, 0, sizeof bound);
	socklen_t bound_len = sizeof bound;
	if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) == 0)
		*port_out = ntohs(bound.ss_family == AF_INET6
					  ? ((struct sockaddr_in6 *)&bound)->sin6_port
					  : ((struct sockaddr_in *)&bound)->sin_port);
	*fd_out = fd;
	return 0;
}

static int write_port_file(const char *path, unsigned port, unsigned internal_port)
{
	char *tmp = vr_asprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = VR_EIO;
	if (f) {
		fprintf(f, "%u\n%u\n", port, internal_port);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

static void close_fd(struct vr_proxy *p, int *fd)
{
	if (*fd < 0)
		return;
	if (p->loop)
		vr_loop_unwatch(p->loop, *fd);
	close(*fd);
	*fd = -1;
}

static void close_listener(struct vr_proxy *p)
{
	close_fd(p, &p->listen_fd);
	close_fd(p, &p->internal_fd);
}

static void close_all(struct vr_proxy *p, bool keep_data)
{
	struct conn *next;
	for (struct conn *c = p->conns; c; c = next) {
		next = c->next;
		if (keep_data && (c->state == CS_DATA || c->state == CS_CONNECTING))
			continue;
		vr_proxy_conn_close(c, "the proxy is stopping");
	}
}

/* Stop the loop once the data connections are done (or out of time) and
 * Redis has taken the releases (or is out of time too). */
static void check_stop(struct vr_proxy *p)
{
	uint64_t now = vr_loop_now_ms();
	vr_proxy_waiter_close_all(p);
	if (p->nconns && now < p->stop_deadline_ms)
		return;
	if (p->nconns)
		close_all(p, false);
	if (vr_proxy_registry_shutdown(p->registry) || now >= p->stop_deadline_ms + REDIS_GRACE_MS)
		vr_loop_stop(p->loop);
}

static void begin_stop(struct vr_proxy *p, const char *signal_name)
{
	if (p->stopping)
		return;
	p->stopping = true;
	vr_log_info("stopping", "signal", signal_name);
	close_listener(p);
	close_all(p, true);
	p->stop_deadline_ms = vr_loop_now_ms() + (uint64_t)p->config->shutdown_timeout * 1000u;
	check_stop(p);
}

static void sweep(struct vr_loop *loop, void *arg)
{
	struct vr_proxy *p = arg;
	vr_proxy_conn_sweep(p, vr_loop_now_ms());
	vr_proxy_waiter_sweep(p, vr_loop_now_ms());
	if (p->stopping)
		check_stop(p);
	p->sweep_timer = vr_loop_timer(loop, SWEEP_MS, sweep, p);
}

/* The certificate of ctx as a serial number (hex) and its notAfter (UTC),
 * for the log. */
static void cert_names(SSL_CTX *ctx, char *serial, size_t serial_len, char *not_after,
		       size_t not_after_len)
{
	snprintf(serial, serial_len, "?");
	snprintf(not_after, not_after_len, "?");
	X509 *x = SSL_CTX_get0_certificate(ctx);
	if (!x)
		return;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	if (hex)
		snprintf(serial, serial_len, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		strftime(not_after, not_after_len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* SIGHUP: read the certificate chain and key again. New connections get
 * the new context; every existing connection keeps a reference to the one
 * it was accepted with (SSL_new takes it), so freeing the proxy's own
 * reference here ends nothing. A file that cannot be read, or a key that
 * does not match, leaves the old context in use. */
static void reload_tls(struct vr_proxy *p)
{
	SSL_CTX *ctx = NULL;
	char *error = NULL;
	if (vr_tls_server_ctx(&ctx, p->config->cert_file, p->config->key_file, &error)) {
		vr_log_warn("tls_reload_failed", "cert", p->config->cert_file, "key",
			    p->config->key_file, "error", error ? error : "unknown", "advice",
			    "the previous certificate stays in use");
		free(error);
		return;
	}
	SSL_CTX_free(p->ssl_ctx);
	p->ssl_ctx = ctx;
	char serial[80], not_after[32];
	cert_names(ctx, serial, sizeof serial, not_after, sizeof not_after);
	vr_log_info("tls_reloaded", "cert", p->config->cert_file, "serial", serial, "not_after",
		    not_after);
}

static void on_signal(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct vr_proxy *p = arg;
	struct signalfd_siginfo info;
	while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
		if (info.ssi_signo == SIGHUP) {
			if (vr_log_reopen(p->config->log_file))
				vr_log_warn("log_reopen_failed", "path", p->config->log_file);
			if (!p->stopping)
				reload_tls(p);
			continue;
		}
		if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
			begin_stop(p, info.ssi_signo == SIGTERM ? "TERM" : "INT");
	}
}

static void on_internal_accept(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct vr_proxy *p = arg;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof addr;
		int c = accept4(fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		if (p->nconns + p->nwaiters >= p->config->max_connections) {
			close(c);
			continue;
		}
		vr_proxy_waiter_accept(p, c, (struct sockaddr *)&addr);
	}
}

static void resume_accept(struct vr_loop *loop, void *arg)
{
	struct vr_proxy *p = arg;
	if (p->listen_fd >= 0 && vr_loop_watch(loop, p->listen_fd, VR_LOOP_READ, on_accept, p))
		vr_log_error("listen_watch_failed");
}

static void on_accept(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct vr_proxy *p = arg;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof addr;
		int c = accept4(fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of descriptors: pause instead of spinning. */
			vr_log_warn("accept_failed", "error", strerror(errno));
			vr_loop_unwatch(loop, fd);
			vr_loop_timer(loop, ACCEPT_PAUSE_MS, resume_accept, p);
			return;
		}
		if (p->nconns + p->nwaiters >= p->config->max_connections) {
			static uint64_t last_warned;
			uint64_t now = vr_loop_now_ms();
			if (now - last_warned >= 1000) {
				char max[16];
				snprintf(max, sizeof max, "%u", p->config->max_connections);
				vr_log_warn("connection_limit", "max_connections", max);
				last_warned = now;
			}
			close(c);
			continue;
		}
		vr_proxy_conn_accept(p, c, (struct sockaddr *)&addr, len);
	}
}

/* [proxy] reverse_address, its port 0 standing for the bound public port;
 * by default <name>:<bound port>. */
static void reverse_address(struct vr_proxy *p)
{
	const char *configured = p->config->reverse_address;
	char host[256];
	unsigned port = 0;
	if (!configured || vr_tunnel_split_address(host, sizeof host, &port, configured))
		snprintf(host, sizeof host, "%s", p->config->name);
	if (configured && port)
		snprintf(p->reverse_address, sizeof p->reverse_address, "%s", configured);
	else if (strchr(host, ':'))
		snprintf(p->reverse_address, sizeof p->reverse_address, "[%s]:%u", host, p->port);
	else
		snprintf(p->reverse_address, sizeof p->reverse_address, "%s:%u", host, p->port);
}

int vr_proxy_start(struct vr_proxy **out, const struct vr_proxy_config *config,
		   const sigset_t *signals, char **error_out)
{
	*out = NULL;
	*error_out = NULL;
	struct vr_proxy *p = vr_calloc(1, sizeof *p);
	p->config = config;
	p->listen_fd = p->internal_fd = p->signal_fd = -1;
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose = false;
	int rc = vr_worker_token_read(token, config->token_file, &loose, error_out);
	if (rc) {
		free(p);
		return rc == VR_ENOMEM ? rc : VR_ECONFIG;
	}
	if (loose)
		vr_log_warn("token_file_readable", "path", config->token_file, "advice",
			    "chmod 600: others can read the proxy's token");
	rc = vr_tls_server_ctx(&p->ssl_ctx, config->cert_file, config->key_file, error_out);
	if (rc) {
		explicit_bzero(token, sizeof token);
		free(p);
		return rc == VR_ENOMEM ? rc : VR_ECONFIG;
	}
	if ((rc = vr_loop_new(&p->loop)) != 0) {
		*error_out = vr_strdup("cannot make the event loop");
		goto fail;
	}
	if ((rc = bind_listener(&p->listen_fd, &p->port, config->listen, error_out)) != 0 ||
	    (rc = bind_listener(&p->internal_fd, &p->internal_port, config->internal_listen,
				error_out)) != 0)
		goto fail;
	reverse_address(p);
	p->sites = vr_proxy_map_new();
	p->cookies = vr_proxy_map_new();
	p->signal_fd = signalfd(-1, signals, SFD_NONBLOCK | SFD_CLOEXEC);
	if (p->signal_fd < 0 ||
	    vr_loop_watch(p->loop, p->signal_fd, VR_LOOP_READ, on_signal, p) != 0) {
		*error_out = vr_asprintf("signalfd: %s", strerror(errno));
		rc = VR_EIO;
		goto fail;
	}
	if ((rc = vr_proxy_verifier_start(&p->verifier, p, token)) != 0) {
		*error_out = vr_strdup("the verifier threads could not be started");
		goto fail;
	}
	explicit_bzero(token, sizeof token);
	if ((rc = vr_proxy_registry_start(&p->registry, p)) != 0) {
		*error_out = vr_strdup("[redis] uri is not usable");
		goto fail;
	}
	if (vr_loop_watch(p->loop, p->listen_fd, VR_LOOP_READ, on_accept, p) ||
	    vr_loop_watch(p->loop, p->internal_fd, VR_LOOP_READ, on_internal_accept, p)) {
		*error_out = vr_strdup("cannot watch the listening socket");
		rc = VR_EIO;
		goto fail;
	}
	if (config->port_file && write_port_file(config->port_file, p->port, p->internal_port)) {
		*error_out = vr_asprintf("cannot write the port file %s", config->port_file);
		rc = VR_EIO;
		goto fail;
	}
	p->sweep_timer = vr_loop_timer(p->loop, SWEEP_MS, sweep, p);
	char port[16], internal_port[16];
	snprintf(port, sizeof port, "%u", p->port);
	snprintf(internal_port, sizeof internal_port, "%u", p->internal_port);
	vr_log_info("started", "name", config->name, "listen", config->listen, "port", port,
		    "internal_port", internal_port, "reverse_address", p->reverse_address);
	*out = p;
	return 0;
fail:
	explicit_bzero(token, sizeof token);
	vr_proxy_free(p);
	return rc;
}

int vr_proxy_run(struct vr_proxy *p)
{
	int rc = vr_loop_run(p->loop);
	return rc ? rc : p->status;
}

void vr_proxy_free(struct vr_proxy *p)
{
	if (!p)
		return;
	p->stopping = true;
	close_listener(p);
	/* Answers still due go to their connections (or free them). */
	vr_proxy_verifier_stop(p->verifier);
	close_all(p, false);
	if (p->loop)
		vr_proxy_waiter_close_all(p);
	vr_proxy_registry_free(p->registry);
	vr_proxy_map_free(p->sites, NULL);
	vr_proxy_map_free(p->cookies, NULL);
	if (p->signal_fd >= 0) {
		if (p->loop)
			vr_loop_unwatch(p->loop, p->signal_fd);
		close(p->signal_fd);
	}
	vr_loop_free(p->loop);
	SSL_CTX_free(p->ssl_ctx);
	free(p);
}
