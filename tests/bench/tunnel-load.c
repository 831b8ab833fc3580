/* Load for the tunnel benchmark (tests/bench/run-tunnel-bench.sh), one
 * process per role:
 *
 *   tunnel-load port
 *       print a free TCP port of 127.0.0.1
 *   tunnel-load sink --listen HOST:PORT [--port-file FILE] [--echo]
 *       stands in for the worker: reads every connection to its end and
 *       prints "received bytes=N seconds=S" for each (--echo: writes back
 *       what it reads instead); runs until SIGTERM
 *   tunnel-load send --bytes N (--plain HOST:PORT | --proxy HOST:PORT --ca FILE
 *                    --credential-file FILE)
 *       one to-the-cloud stream of N bytes: through the agent library's data
 *       connection (--proxy) or over plain TCP (--plain, into a stunnel
 *       client); ends its direction, waits for the far end's, and prints
 *       "sent bytes=N seconds=S cpu=C" (C: its own CPU seconds)
 *   tunnel-load idle --connect HOST:PORT --ca FILE --count N
 *                    (--credentials FILE | --raw) [--inflight K] [--hold S]
 *       opens N TLS connections from this one process (epoll, K handshakes
 *       at a time): control hellos with the credentials of FILE (one a
 *       line, one per connection) answered by a welcome, then heartbeats;
 *       --raw: a byte echoed back (stunnel in front of an echoing sink).
 *       Prints "established connections=N failed=F seconds=S", then holds
 *       the connections for S seconds (default: until SIGTERM)
 *   tunnel-load handshakes --connect HOST:PORT --ca FILE --seconds S
 *                    (--credentials FILE | --raw) [--inflight K]
 *       new connections for S seconds, K at a time, each closed once its
 *       hello is welcomed (--raw: its byte echoed); prints
 *       "handshakes count=N failed=F seconds=S"
 *
 * Failures are counted and printed, never fatal: the figures are the
 * point. The exit status is 1 only when nothing could run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "vrcloud/agent.h"
#include "vrcloud/buf.h"
#include "vrcloud/tls.h"
#include "vrcloud/tunnel.h"

#define CHUNK	   ((size_t)1 << 20)
#define SINK_BUF   ((size_t)256 << 10)
#define MAX_EVENTS 256

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "tunnel-load: %s\n", what);
	exit(1);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int parse_address(struct sockaddr_in *out, const char *address)
{
	char host[256];
	unsigned port;
	if (vr_tunnel_split_address(host, sizeof host, &port, address) != 0)
		return -1;
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
			 &out->sin_addr) == 1
		       ? 0
		       : -1;
}

/* --- port ------------------------------------------------------------------ */

static int cmd_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("no free port");
	printf("%u\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

/* --- sink ------------------------------------------------------------------- */

struct sink_conn {
	int fd;
	uint64_t bytes;
	double started;
	struct sink_conn *prev, *next;
};

static struct sink_conn *sink_conns;

static void sink_close(int ep, struct sink_conn *c, bool echo)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		sink_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (!echo) {
		printf("received bytes=%llu seconds=%.3f\n", (unsigned long long)c->bytes,
		       now_s() - c->started);
		fflush(stdout);
	}
	free(c);
}

static void sink_read(int ep, struct sink_conn *c, bool echo, unsigned char *buf)
{
	for (;;) {
		ssize_t n = read(c->fd, buf, SINK_BUF);
		if (n > 0) {
			c->bytes += (uint64_t)n;
			/* echo: the few bytes of a handshake probe; a full socket
			 * buffer just drops them */
			if (echo && write(c->fd, buf, (size_t)n) < 0 && errno != EAGAIN)
				break;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break; /* end of stream or reset */
	}
	sink_close(ep, c, echo);
}

static int cmd_sink(const char *listen_address, const char *port_file, bool echo)
{
	struct sockaddr_in a;
	if (!listen_address || parse_address(&a, listen_address) != 0)
		die("sink: --listen HOST:PORT is required");
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	socklen_t len = sizeof a;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
		die("sink: cannot listen");
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		if (!f)
			die("sink: cannot write the port file");
		fprintf(f, "%u\n", ntohs(a.sin_port));
		fclose(f);
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	unsigned char *buf = malloc(SINK_BUF);
	if (!buf)
		die("out of memory");
	struct epoll_event events[MAX_EVENTS];
	while (!stopping) {
		int n = epoll_wait(ep, events, MAX_EVENTS, 500);
		for (int i = 0; i < n; i++) {
			struct sink_conn *c = events[i].data.ptr;
			if (c) {
				sink_read(ep, c, echo, buf);
				continue;
			}
			int fd;
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				c = calloc(1, sizeof *c);
				if (!c)
					die("out of memory");
				c->fd = fd;
				c->started = now_s();
				c->next = sink_conns;
				if (sink_conns)
					sink_conns->prev = c;
				sink_conns = c;
				struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
			}
		}
	}
	while (sink_conns)
		sink_close(ep, sink_conns, true);
	close(ep);
	close(lfd);
	free(buf);
	return 0;
}

/* --- send ------------------------------------------------------------------ */

static void fill(unsigned char *buf, size_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static int send_plain(const char *address, uint64_t total, const unsigned char *buf)
{
	struct sockaddr_in a;
	if (parse_address(&a, address) != 0)
		die("send: --plain HOST:PORT");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("send: cannot connect");
	uint64_t left = total;
	while (left) {
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t n = write(fd, buf, want);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			die("send: write failed");
		}
		left -= (uint64_t)n;
	}
	shutdown(fd, SHUT_WR);
	unsigned char tail[4096];
	while (read(fd, tail, sizeof tail) > 0)
		;
	close(fd);
	return 0;
}

static int send_agent(const char *proxy, const char *ca, const char *credential_file,
		      uint64_t total, const unsigned char *buf)
{
	struct vr_agent_config config;
	vr_agent_config_init(&config);
	char *error = NULL;
	if (vr_agent_config_set(&config, "agent", "proxy", proxy, &error) ||
	    vr_agent_config_set(&config, "agent", "credential_file", credential_file, &error) ||
	    vr_agent_config_set(&config, "agent", "ca_file", ca, &error) ||
	    vr_agent_config_set(&config, "agent", "name", "tunnel-load", &error) ||
	    vr_agent_config_check(&config, &error))
		die(error ? error : "send: bad agent settings");
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	struct vr_agent_tls tls;
	if (vr_agent_credential_read(credential, credential_file, &error) ||
	    vr_agent_tls_init(&tls, &config, &error))
		die(error ? error : "send: no credential or TLS");
	struct vr_agent_conn *conn = NULL;
	if (vr_agent_data_open(&conn, &tls, &config, credential,
			       "40000000-0000-4000-8000-0000000000b1", &error))
		die(error ? error : "send: the data connection was refused");
	vr_agent_conn_set_timeout(conn, 60000);
	uint64_t left = total;
	while (left) {
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		if (vr_agent_conn_write(conn, buf, want))
			die("send: the data connection failed while writing");
		left -= want;
	}
	if (vr_agent_conn_finish(conn))
		die("send: the data connection failed at its end");
	unsigned char tail[4096];
	size_t n;
	while (vr_agent_conn_read(conn, tail, sizeof tail, &n) == 0 && n > 0)
		;
	vr_agent_conn_close(conn);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	explicit_bzero(credential, sizeof credential);
	return 0;
}

static int cmd_send(const char *plain, const char *proxy, const char *ca,
		    const char *credential_file, uint64_t total)
{
	unsigned char *buf = malloc(CHUNK);
	if (!buf || total == 0)
		die("send: --bytes N (N > 0) is required");
	fill(buf, CHUNK);
	double t0 = now_s();
	if (plain)
		send_plain(plain, total, buf);
	else if (proxy && ca && credential_file)
		send_agent(proxy, ca, credential_file, total, buf);
	else
		die("send: --plain, or --proxy with --ca and --credential-file");
	double took = now_s() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("sent bytes=%llu seconds=%.3f cpu=%.2f\n", (unsigned long long)total, took, cpu);
	free(buf);
	return 0;
}

/* --- many TLS connections: idle and handshakes ------------------------------ */

enum cstate { C_CONNECT, C_HANDSHAKE, C_SEND, C_REPLY, C_IDLE };

struct tconn {
	int fd;
	SSL *ssl;
	enum cstate state;
	size_t cred;	       /* index into the credentials */
	unsigned char in[512]; /* the welcome (or echo), then heartbeats */
	size_t in_len;
	struct vr_buf out;
	size_t out_used;
	unsigned heartbeat; /* seconds, from the welcome */
	double next_beat;
	uint64_t seq;
	unsigned events;	   /* what epoll watches */
	struct tconn *prev, *next; /* every open connection */
};

struct load {
	bool idle; /* hold the connections (else: close once welcomed) */
	bool raw;
	struct sockaddr_in addr;
	SSL_CTX *ctx;
	char **creds;
	size_t ncreds;
	int ep;
	size_t inflight, max_inflight;
	size_t opened, target; /* idle: connections to open */
	size_t done, failed;
	struct tconn **held;
	size_t nheld;
	struct tconn *all;
};

static char **read_lines(const char *path, size_t *count_out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot read the credentials file");
	size_t cap = 1024, n = 0;
	char **lines = malloc(cap * sizeof *lines);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while (lines && (len = getline(&line, &lcap, f)) > 0) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len)
			continue;
		if (n == cap)
			lines = realloc(lines, (cap *= 2) * sizeof *lines);
		if (lines)
			lines[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (!lines || !n)
		die("no credentials");
	*count_out = n;
	return lines;
}

static void watch(struct load *l, struct tconn *c, unsigned events)
{
	if (c->events == events)
		return;
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(l->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	c->events = events;
}

static void tconn_free(struct load *l, struct tconn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	vr_buf_free(&c->out);
	free(c);
}

static void open_one(struct load *l)
{
	struct tconn *c = calloc(1, sizeof *c);
	if (!c)
		die("out of memory");
	vr_buf_init(&c->out, 0);
	c->cred = l->ncreds ? l->opened % l->ncreds : 0;
	l->opened++;
	l->inflight++;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		l->inflight--;
		l->failed++;
		vr_buf_free(&c->out);
		free(c);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->state = C_CONNECT;
	if (connect(c->fd, (struct sockaddr *)&l->addr, sizeof l->addr) != 0 &&
	    errno != EINPROGRESS) {
		l->inflight--;
		l->failed++;
		close(c->fd);
		vr_buf_free(&c->out);
		free(c);
		return;
	}
	c->next = l->all;
	if (l->all)
		l->all->prev = c;
	l->all = c;
	watch(l, c, EPOLLOUT);
}

static void fail(struct load *l, struct tconn *c)
{
	if (c->state == C_IDLE) {
		/* a held connection was closed by the far end */
		for (size_t i = 0; i < l->nheld; i++) {
			if (l->held[i] == c) {
				l->held[i] = l->held[--l->nheld];
				break;
			}
		}
		l->done--;
	} else {
		l->inflight--;
	}
	l->failed++;
	tconn_free(l, c);
}

/* The hello (or the raw probe byte) into c->out. */
static int queue_hello(struct load *l, struct tconn *c)
{
	if (l->raw)
		return vr_buf_append(&c->out, "x", 1);
	struct vr_tunnel_hello hello = {.version = VR_TUNNEL_VERSION, .kind = VR_TUNNEL_CONTROL};
	snprintf(hello.credential, sizeof hello.credential, "%s", l->creds[c->cred]);
	snprintf(hello.agent, sizeof hello.agent, "tunnel-load");
	int rc = vr_tunnel_hello_append(&c->out, &hello);
	vr_tunnel_hello_clear(&hello);
	return rc;
}

/* Write what c->out holds. Returns 1 when all is out, 0 to wait, -1 on
 * failure. */
static int flush(struct load *l, struct tconn *c)
{
	while (c->out_used < c->out.len) {
		int n = SSL_write(c->ssl, c->out.data + c->out_used,
				  (int)(c->out.len - c->out_used));
		if (n > 0) {
			c->out_used += (size_t)n;
			continue;
		}
		int err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE) {
			watch(l, c, EPOLLIN | EPOLLOUT);
			return 0;
		}
		if (err == SSL_ERROR_WANT_READ) {
			watch(l, c, EPOLLIN);
			return 0;
		}
		return -1;
	}
	c->out.len = c->out_used = 0;
	return 1;
}

static void welcomed(struct load *l, struct tconn *c)
{
	l->inflight--;
	l->done++;
	if (!l->idle) {
		SSL_shutdown(c->ssl);
		tconn_free(l, c);
		return;
	}
	c->state = C_IDLE;
	c->in_len = 0;
	c->next_beat = now_s() + c->heartbeat;
	l->held[l->nheld++] = c;
	watch(l, c, EPOLLIN);
}

/* Frames in c->in: the welcome (C_REPLY) or heartbeats (C_IDLE). Returns
 * -1 on a refusal or a malformed frame. */
static int take_frames(struct load *l, struct tconn *c)
{
	for (;;) {
		struct vr_tunnel_frame frame;
		size_t used;
		if (vr_tunnel_frame_parse(&frame, &used, c->in, c->in_len) != 0)
			return -1;
		if (!used)
			return c->in_len == sizeof c->in ? -1 : 0;
		if (c->state == C_REPLY) {
			if (frame.type != VR_FRAME_WELCOME)
				return -1;
			struct vr_tunnel_fields fields;
			const char *why;
			if (vr_tunnel_fields_parse(&fields, frame.payload, frame.len, &why))
				return -1;
			const char *hb = vr_tunnel_field(&fields, "heartbeat");
			c->heartbeat = hb && atoi(hb) > 0 ? (unsigned)atoi(hb) : 10;
			vr_tunnel_fields_free(&fields);
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
			welcomed(l, c);
			return 1;
		}
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
}

static void on_readable(struct load *l, struct tconn *c)
{
	for (;;) {
		int n = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - c->in_len));
		if (n <= 0) {
			int err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ)
				return;
			if (err == SSL_ERROR_WANT_WRITE) {
				watch(l, c, EPOLLIN | EPOLLOUT);
				return;
			}
			fail(l, c);
			return;
		}
		c->in_len += (size_t)n;
		if (l->raw) {
			if (c->state == C_REPLY)
				welcomed(l, c); /* frees c unless idle */
			else
				c->in_len = 0;
			return;
		}
		int rc = take_frames(l, c);
		if (rc < 0) {
			fail(l, c);
			return;
		}
		if (rc > 0)
			return; /* welcomed: c may be gone */
	}
}

static void step(struct load *l, struct tconn *c, unsigned events)
{
	if (events & (EPOLLERR | EPOLLHUP) && c->state == C_CONNECT) {
		fail(l, c);
		return;
	}
	switch (c->state) {
	case C_CONNECT: {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
			fail(l, c);
			return;
		}
		c->ssl = SSL_new(l->ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
		    vr_tls_client_prepare(c->ssl, "127.0.0.1", true)) {
			fail(l, c);
			return;
		}
		c->state = C_HANDSHAKE;
	}
		/* fall through */
	case C_HANDSHAKE: {
		int n = SSL_connect(c->ssl);
		if (n != 1) {
			int err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ)
				watch(l, c, EPOLLIN);
			else if (err == SSL_ERROR_WANT_WRITE)
				watch(l, c, EPOLLOUT);
			else
				fail(l, c);
			return;
		}
		if (queue_hello(l, c)) {
			fail(l, c);
			return;
		}
		c->state = C_SEND;
	}
		/* fall through */
	case C_SEND: {
		int rc = flush(l, c);
		if (rc < 0)
			fail(l, c);
		if (rc <= 0)
			return;
		c->state = C_REPLY;
		watch(l, c, EPOLLIN);
		on_readable(l, c);
		return;
	}
	case C_REPLY: on_readable(l, c); return;
	case C_IDLE:
		if (events & EPOLLOUT) {
			int rc = flush(l, c);
			if (rc < 0) {
				fail(l, c);
				return;
			}
			if (rc > 0)
				watch(l, c, EPOLLIN);
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on_readable(l, c);
		return;
	}
}

/* Heartbeats of the held connections that are due. */
static void beat(struct load *l, double now)
{
	if (l->raw)
		return;
	for (size_t i = 0; i < l->nheld; i++) {
		struct tconn *c = l->held[i];
		if (now < c->next_beat)
			continue;
		c->next_beat = now + c->heartbeat;
		char payload[48];
		int len = snprintf(payload, sizeof payload, "seq=%llu\n",
				   (unsigned long long)++c->seq);
		if (vr_tunnel_frame_append(&c->out, VR_FRAME_HEARTBEAT, payload, (size_t)len) ||
		    flush(l, c) < 0) {
			fail(l, c);
			i--;
		}
	}
}

static void load_init(struct load *l, const char *connect, const char *ca, const char *credentials,
		      bool raw, size_t inflight)
{
	if (!connect || parse_address(&l->addr, connect) != 0)
		die("--connect HOST:PORT is required");
	if (!ca)
		die("--ca FILE is required");
	if (!raw && !credentials)
		die("--credentials FILE or --raw is required");
	char *error = NULL;
	if (vr_tls_client_ctx(&l->ctx, ca, &error))
		die(error ? error : "TLS context");
	SSL_CTX_set_mode(l->ctx, SSL_MODE_RELEASE_BUFFERS);
	l->raw = raw;
	if (!raw)
		l->creds = read_lines(credentials, &l->ncreds);
	l->max_inflight = inflight ? inflight : 32;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		die("epoll");
}

static void load_events(struct load *l, int timeout_ms)
{
	struct epoll_event events[MAX_EVENTS];
	int n = epoll_wait(l->ep, events, MAX_EVENTS, timeout_ms);
	for (int i = 0; i < n; i++)
		step(l, events[i].data.ptr, events[i].events);
}

static void load_free(struct load *l)
{
	while (l->all)
		tconn_free(l, l->all);
	for (size_t i = 0; i < l->ncreds; i++) {
		explicit_bzero(l->creds[i], strlen(l->creds[i]));
		free(l->creds[i]);
	}
	free(l->creds);
	free(l->held);
	SSL_CTX_free(l->ctx);
	close(l->ep);
}

static int cmd_idle(const char *connect, const char *ca, const char *credentials, bool raw,
		    size_t inflight, size_t count, double hold)
{
	struct load l = {.idle = true, .target = count};
	if (!count)
		die("idle: --count N is required");
	load_init(&l, connect, ca, credentials, raw, inflight);
	l.held = calloc(count, sizeof *l.held);
	if (!l.held)
		die("out of memory");
	double t0 = now_s(), last_progress = t0;
	size_t last_done = 0;
	/* open them all, a window at a time; give up on a stall of 30 s */
	while (!stopping && l.opened < count) {
		while (l.opened < count && l.inflight < l.max_inflight)
			open_one(&l);
		load_events(&l, 100);
		double now = now_s();
		beat(&l, now);
		if (l.done != last_done) {
			last_done = l.done;
			last_progress = now;
		} else if (now - last_progress > 30) {
			break;
		}
	}
	while (!stopping && l.inflight && now_s() - last_progress < 30)
		load_events(&l, 100), beat(&l, now_s());
	printf("established connections=%zu failed=%zu seconds=%.3f\n", l.done, l.failed,
	       now_s() - t0);
	fflush(stdout);
	double end = hold > 0 ? now_s() + hold : 0;
	while (!stopping && (!end || now_s() < end)) {
		load_events(&l, 200);
		beat(&l, now_s());
	}
	printf("held connections=%zu failed=%zu\n", l.nheld, l.failed);
	load_free(&l);
	return 0;
}

static int cmd_handshakes(const char *connect, const char *ca, const char *credentials, bool raw,
			  size_t inflight, double seconds)
{
	struct load l = {.idle = false, .target = SIZE_MAX};
	if (seconds <= 0)
		die("handshakes: --seconds S is required");
	load_init(&l, connect, ca, credentials, raw, inflight);
	double t0 = now_s(), end = t0 + seconds;
	while (!stopping && now_s() < end) {
		while (l.inflight < l.max_inflight)
			open_one(&l);
		load_events(&l, 50);
	}
	double took = now_s() - t0;
	printf("handshakes count=%zu failed=%zu seconds=%.3f\n", l.done, l.failed, took);
	load_free(&l);
	return 0;
}

/* --- main --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: tunnel-load port|sink|send|idle|handshakes [OPTIONS]\n");
		return 2;
	}
	const char *mode = argv[1];
	const char *listen_address = NULL, *port_file = NULL, *plain = NULL, *proxy = NULL;
	const char *ca = NULL, *credential_file = NULL, *credentials = NULL, *connect = NULL;
	bool echo = false, raw = false;
	unsigned long long bytes = 0;
	size_t count = 0, inflight = 0;
	double hold = 0, seconds = 0;
	static const struct option options[] = {
		{"listen", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'P'},
		{"echo", no_argument, NULL, 'e'},
		{"plain", required_argument, NULL, 'p'},
		{"proxy", required_argument, NULL, 'x'},
		{"ca", required_argument, NULL, 'c'},
		{"credential-file", required_argument, NULL, 'k'},
		{"credentials", required_argument, NULL, 'K'},
		{"connect", required_argument, NULL, 'C'},
		{"raw", no_argument, NULL, 'r'},
		{"bytes", required_argument, NULL, 'b'},
		{"count", required_argument, NULL, 'n'},
		{"inflight", required_argument, NULL, 'i'},
		{"hold", required_argument, NULL, 'h'},
		{"seconds", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_address = optarg; break;
		case 'P': port_file = optarg; break;
		case 'e': echo = true; break;
		case 'p': plain = optarg; break;
		case 'x': proxy = optarg; break;
		case 'c': ca = optarg; break;
		case 'k': credential_file = optarg; break;
		case 'K': credentials = optarg; break;
		case 'C': connect = optarg; break;
		case 'r': raw = true; break;
		case 'b': bytes = strtoull(optarg, NULL, 10); break;
		case 'n': count = (size_t)strtoull(optarg, NULL, 10); break;
		case 'i': inflight = (size_t)strtoull(optarg, NULL, 10); break;
		case 'h': hold = strtod(optarg, NULL); break;
		case 's': seconds = strtod(optarg, NULL); break;
		default: return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	raise_nofile();
	if (strcmp(mode, "port") == 0)
		return cmd_port();
	if (strcmp(mode, "sink") == 0)
		return cmd_sink(listen_address, port_file, echo);
	if (strcmp(mode, "send") == 0)
		return cmd_send(plain, proxy, ca, credential_file, bytes);
	if (strcmp(mode, "idle") == 0)
		return cmd_idle(connect, ca, credentials, raw, inflight, count, hold);
	if (strcmp(mode, "handshakes") == 0)
		return cmd_handshakes(connect, ca, credentials, raw, inflight, seconds);
	fprintf(stderr, "tunnel-load: unknown mode '%s'\n", mode);
	return 2;
}
