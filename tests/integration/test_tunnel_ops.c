/* The operations side of vrcloud-proxy with real processes (docs/tunnels.md,
 * "Operations"): its /metrics endpoint, the failed-hello limit per source
 * address and the cap of data connections per site. Like test_tunnel, each
 * test pairs a site of its own (a new VDC and peer, a credential from
 * `vrcloudctl peer credential`), a proxy service credential of its own and
 * a Redis prefix of its own, with TLS from contrib/tunnel-test-ca. Hellos
 * are written by hand over TLS from chosen loopback addresses (127.0.0.1
 * and 127.0.0.2 are two sources to the proxy). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "integration/harness.h"
#include "vrcloud/agent.h"
#include "vrcloud/err.h"
#include "vrcloud/tunnel.h"

VRT_SUITE(.name = "tunnelops", .jobs = 1, .redis_db = 14);

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- helpers ---------------------------------------------------------------- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	cr_assert(vasprintf(&s, f, ap) > 0);
	va_end(ap);
	return s;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *text = calloc(1, 4 << 20);
	size_t n = fread(text, 1, (4 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static size_t count_in(const char *path, const char *needle)
{
	char *text = read_text(path);
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* The count of needle in path once it reaches want (the API logs a
 * request as it completes), waiting up to 5 s. */
static size_t wait_count(const char *path, const char *needle, size_t want)
{
	double end = vrt_now() + 5;
	size_t n;
	while ((n = count_in(path, needle)) < want && vrt_now() < end)
		vrt_sleep(0.05);
	return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Run argv to completion; its stdout (caller frees); it must exit 0. */
static char *run_ok(char *const argv[])
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	ssize_t n;
	while ((n = read(fds[0], out + len, cap - len - 1)) > 0)
		len += (size_t)n;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exited %d:\n%s", argv[0],
		  status, out);
	return out;
}

/* The value of "key=" at the start of a line of text (caller frees). */
static char *kv(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == '=')
			return strndup(p + klen + 1, strcspn(p + klen + 1, "\n"));
	cr_assert_fail("no %s= in:\n%s", key, text);
	return NULL;
}

static const char *builddir(void)
{
	const char *b = getenv("VRCLOUD_BUILDDIR");
	return b ? b : ".";
}

static const char *srcdir(void)
{
	const char *s = getenv("VRCLOUD_SRCDIR");
	return s ? s : "..";
}

static char *ctl(const char *a, const char *b, const char *c, const char *d, const char *e)
{
	char *exe = fmt("%s/vrcloudctl", builddir());
	char *argv[] = {exe,
			(char *)"--database",
			(char *)vrt_env("VRT_DB_URI"),
			(char *)a,
			(char *)b,
			(char *)c,
			(char *)d,
			(char *)e,
			NULL};
	char *out = run_ok(argv);
	free(exe);
	return out;
}

/* --- the world of one test ------------------------------------------------------ */

struct world {
	char dir[256];
	char prefix[48];
	char peer[40], vdc[40];
	char credential[128];
	char cred_file[300], token_file[300];
	char ca[300], cert[300], key[300];
	char repl[40], server[40];
};

static void world_init(struct world *w)
{
	signal(SIGPIPE, SIG_IGN);
	memset(w, 0, sizeof *w);
	snprintf(w->dir, sizeof w->dir, "%s/tunnelops-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	const char *tag = strrchr(w->dir, '-') + 1;
	snprintf(w->prefix, sizeof w->prefix, "vrt%ld-%s", (long)getpid(), tag);
	char *vdc = vrt_new_vdc(true, true, true);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(w->vdc, sizeof w->vdc, "%s", vdc);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	free(vdc);
	free(peer);
	char *out = ctl("peer", "credential", w->peer, NULL, NULL);
	char *c = kv(out, "credential");
	snprintf(w->credential, sizeof w->credential, "%s", c);
	snprintf(w->cred_file, sizeof w->cred_file, "%s/credential", w->dir);
	char *line = fmt("%s\n", c);
	write_file(w->cred_file, line, 0600);
	free(line);
	free(c);
	free(out);
	char *name = fmt("proxy-%s", w->prefix);
	out = ctl("service", "add", name, "--kind", "proxy");
	char *token = kv(out, "token");
	snprintf(w->token_file, sizeof w->token_file, "%s/proxy-token", w->dir);
	line = fmt("%s\n", token);
	write_file(w->token_file, line, 0600);
	free(line);
	free(token);
	free(out);
	free(name);
	char *port = fmt("127.0.0.1:%u", vrt_closed_port());
	char *server = vrt_db_value("INSERT INTO replica_servers (name, traffic_address)"
				    " VALUES ('ops-' || $1, $2) RETURNING id::text",
				    tag, port);
	char *repl = vrt_new_replication(w->vdc, "ops-vm", true, NULL);
	vrt_db_exec("UPDATE replications SET replica_server_id = $2::uuid WHERE id = $1::uuid",
		    repl, server);
	snprintf(w->server, sizeof w->server, "%s", server);
	snprintf(w->repl, sizeof w->repl, "%s", repl);
	free(port);
	free(server);
	free(repl);
	char *script = fmt("%s/contrib/tunnel-test-ca", srcdir());
	char *ca_dir = fmt("%s/ca", w->dir);
	char *argv[] = {(char *)"/bin/bash", script, ca_dir, (char *)"localhost",
			(char *)"127.0.0.1", NULL};
	out = run_ok(argv);
	char *v;
	snprintf(w->ca, sizeof w->ca, "%s", v = kv(out, "ca"));
	free(v);
	snprintf(w->cert, sizeof w->cert, "%s", v = kv(out, "cert"));
	free(v);
	snprintf(w->key, sizeof w->key, "%s", v = kv(out, "key"));
	free(v);
	free(out);
	free(ca_dir);
	free(script);
}

/* --- the proxy ------------------------------------------------------------------------ */

struct proc {
	pid_t pid;
	char log[320];
	unsigned port, internal_port, metrics_port;
};

/* A proxy on 127.0.0.1 with its metrics on a free port, checking
 * credentials at api (NULL: the suite's API), with settings (INI lines of
 * [proxy]) over the defaults. */
static void proxy_start(struct proc *p, const struct world *w, const char *name, const char *api,
			const char *settings)
{
	memset(p, 0, sizeof *p);
	snprintf(p->log, sizeof p->log, "%s/%s.log", w->dir, name);
	char *port_file = fmt("%s/%s.port", w->dir, name);
	char *conf = fmt("%s/%s.conf", w->dir, name);
	char *text = fmt("[proxy]\nmetrics_address = 127.0.0.1:0\n%s", settings ? settings : "");
	write_file(conf, text, 0600);
	free(text);
	char *exe = fmt("%s/vrcloud-proxy", builddir());
	const char *argv[] = {exe,
			      "--config",
			      conf,
			      "--name",
			      name,
			      "--listen",
			      "127.0.0.1:0",
			      "--internal-listen",
			      "127.0.0.1:0",
			      "--port-file",
			      port_file,
			      "--cert",
			      w->cert,
			      "--key",
			      w->key,
			      "--token-file",
			      w->token_file,
			      "--api-url",
			      api ? api : vrt_base_url(),
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--redis-prefix",
			      w->prefix,
			      "--route-cache",
			      "0",
			      "--shutdown-timeout",
			      "2",
			      "--log-level",
			      "debug",
			      "--log-file",
			      p->log,
			      NULL};
	unlink(port_file);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	double end = vrt_now() + 15;
	while (vrt_now() < end && !p->metrics_port) {
		char *ports = read_text(port_file);
		unsigned a = 0, b = 0, c = 0;
		if (sscanf(ports, "%u %u %u", &a, &b, &c) == 3) {
			p->port = a;
			p->internal_port = b;
			p->metrics_port = c;
		}
		free(ports);
		cr_assert(waitpid(p->pid, NULL, WNOHANG) == 0, "vrcloud-proxy exited at start:\n%s",
			  read_text(p->log));
		vrt_sleep(0.05);
	}
	cr_assert_neq(p->metrics_port, 0, "vrcloud-proxy wrote no metrics port");
	free(port_file);
	free(conf);
	free(exe);
}

/* SIGTERM; it must exit 0 within 10 s, without a sanitizer report. */
static void proxy_stop(struct proc *p)
{
	kill(p->pid, SIGTERM);
	double end = vrt_now() + 10;
	int status = 0;
	while (waitpid(p->pid, &status, WNOHANG) == 0) {
		if (vrt_now() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			cr_assert_fail("the proxy did not stop in time");
		}
		vrt_sleep(0.02);
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the proxy exited %d", status);
	cr_assert_eq(count_in(p->log, "Sanitizer") + count_in(p->log, "runtime error"), 0, "%s",
		     read_text(p->log));
}

/* --- raw TLS connections from a chosen source address ------------------------------ */

struct raw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int tcp_from(uint32_t source, unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(source)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof to), 0, "%s", strerror(errno));
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void raw_open(struct raw *r, uint32_t source, unsigned port)
{
	r->fd = tcp_from(source, port);
	r->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
	r->ssl = SSL_new(r->ctx);
	SSL_set_fd(r->ssl, r->fd);
	cr_assert_eq(SSL_connect(r->ssl), 1, "TLS with the proxy failed");
}

static void raw_close(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	close(r->fd);
}

/* Send a control hello with credential; the answer's frame type, its
 * payload in payload (NUL-terminated). */
static unsigned hello(struct raw *r, const char *credential, char *payload, size_t cap)
{
	char *text = fmt("version=1\nkind=control\ncredential=%s\nagent=ops-test\n", credential);
	unsigned char frame[600] = {VR_FRAME_HELLO, 0, 0, (unsigned char)strlen(text)};
	memcpy(frame + 4, text, strlen(text));
	cr_assert_eq(SSL_write(r->ssl, frame, (int)(4 + strlen(text))), (int)(4 + strlen(text)));
	free(text);
	unsigned char header[4];
	size_t got = 0;
	while (got < 4) {
		int n = SSL_read(r->ssl, header + got, (int)(4 - got));
		cr_assert_gt(n, 0, "no answer to the hello");
		got += (size_t)n;
	}
	size_t len = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
	cr_assert_lt(len, cap);
	for (got = 0; got < len;) {
		int n = SSL_read(r->ssl, payload + got, (int)(len - got));
		cr_assert_gt(n, 0, "the answer was cut");
		got += (size_t)n;
	}
	payload[len] = '\0';
	return header[0];
}

/* --- the metrics endpoint ---------------------------------------------------------- */

/* GET path on the metrics port: the status code; the body in *body_out. */
static int http_get(unsigned port, const char *method, const char *path, char **body_out)
{
	int fd = tcp_from(0x7f000001, port);
	char *request =
		fmt("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, path);
	cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	free(request);
	size_t cap = 1 << 20, len = 0;
	char *text = calloc(1, cap);
	ssize_t n;
	while ((n = read(fd, text + len, cap - len - 1)) > 0)
		len += (size_t)n;
	close(fd);
	int status = 0;
	cr_assert_eq(sscanf(text, "HTTP/1.1 %d", &status), 1, "%s", text);
	char *body = strstr(text, "\r\n\r\n");
	*body_out = strdup(body ? body + 4 : "");
	if (status == 200)
		cr_assert_not_null(strstr(text, "Content-Type: text/plain; version=0.0.4"), "%s",
				   text);
	free(text);
	return status;
}

/* Every line is # HELP, # TYPE or `name{labels} value`. */
static void assert_exposition(const char *text)
{
	cr_assert(text[0] && text[strlen(text) - 1] == '\n', "%s", text);
	char *copy = strdup(text);
	size_t samples = 0;
	for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
			continue;
		size_t name = strspn(line, "abcdefghijklmnopqrstuvwxyz_:0123456789");
		cr_assert_gt(name, 0, "a line without a name: %s", line);
		const char *p = line + name;
		if (*p == '{') {
			const char *close = strstr(p, "\"}");
			cr_assert_not_null(close, "unclosed labels: %s", line);
			for (const char *q = p + 1; q < close;) {
				size_t k = strspn(q, "abcdefghijklmnopqrstuvwxyz_");
				cr_assert(k > 0 && q[k] == '=' && q[k + 1] == '"', "%s", line);
				q = strchr(q + k + 2, '"');
				cr_assert_not_null(q, "%s", line);
				q++;
				if (*q == ',')
					q++;
			}
			p = close + 2;
		}
		cr_assert_eq(*p, ' ', "no value: %s", line);
		char *end = NULL;
		strtod(p + 1, &end);
		cr_assert(end != p + 1 && *end == '\0', "not a number: %s", line);
		samples++;
	}
	cr_assert_gt(samples, 30);
	free(copy);
}

/* The value of series (name with its labels) in a scrape; -1 when absent. */
static double metric(unsigned port, const char *series)
{
	char *body = NULL;
	cr_assert_eq(http_get(port, "GET", "/metrics", &body), 200);
	assert_exposition(body);
	double v = -1;
	size_t len = strlen(series);
	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, len) == 0 && p[len] == ' ')
			v = strtod(p + len + 1, NULL);
	free(body);
	return v;
}

static bool wait_metric(unsigned port, const char *series, double want, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (metric(port, series) == want)
			return true;
		vrt_sleep(0.1);
	}
	return false;
}

/* --- tests ----------------------------------------------------------------------------- */

#define FROM_1 0x7f000001u /* 127.0.0.1 */
#define FROM_2 0x7f000002u /* 127.0.0.2 */

Test(tunnel_ops, a_burst_of_bad_hellos_from_one_address_is_rate_limited_before_the_api)
{
	struct world w;
	world_init(&w);
	/* an API of this test's own, whose log counts the checks */
	struct vrt_api api;
	cr_assert_eq(vrt_api_start(&api, NULL), 0);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", api.base, "failed_hello_burst = 3\nfailed_hello_rate = 1\n");
	char payload[20000];
	/* 20 hellos with a wrong credential from 127.0.0.1, one after another */
	for (int i = 0; i < 20; i++) {
		struct raw r;
		raw_open(&r, FROM_1, proxy.port);
		cr_assert_eq(hello(&r, "wrong-credential", payload, sizeof payload),
			     VR_FRAME_REFUSE, "hello %d", i);
		const char *want = i < 3 ? "reason=credential\n" : "reason=rate-limited\n";
		cr_assert_not_null(strstr(payload, want), "hello %d: %s", i, payload);
		raw_close(&r);
	}
	/* and 10 more at once */
	struct raw burst[10];
	for (size_t i = 0; i < N(burst); i++)
		raw_open(&burst[i], FROM_1, proxy.port);
	for (size_t i = 0; i < N(burst); i++) {
		cr_assert_eq(hello(&burst[i], "wrong-credential", payload, sizeof payload),
			     VR_FRAME_REFUSE);
		cr_assert_not_null(strstr(payload, "reason=rate-limited\n"), "%s", payload);
		raw_close(&burst[i]);
	}
	/* the API was asked 3 times, no more */
	char *api_log = fmt("%s/api.log", api.dir);
	cr_assert_eq(wait_count(api_log, "path=/api/internal/sites/verify ", 3), 3, "%s",
		     read_text(api_log));
	cr_assert_eq(metric(proxy.metrics_port, "vrcloud_proxy_api_calls_total{call=\"verify\"}"),
		     3);
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_hellos_refused_total{reason=\"credential\"}"),
		     3);
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_hellos_refused_total{reason=\"rate-limited\"}"),
		     27);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_failed_hello_addresses", 1, 3));
	/* logged once, not per attempt: the three refused by the API have a
	 * line each */
	cr_assert_eq(count_in(proxy.log, "event=hello_rate_limited "), 1, "%s",
		     read_text(proxy.log));
	cr_assert_eq(count_in(proxy.log, "event=refused "), 3, "%s", read_text(proxy.log));
	/* the site from another address is unaffected */
	struct raw good;
	raw_open(&good, FROM_2, proxy.port);
	cr_assert_eq(hello(&good, w.credential, payload, sizeof payload), VR_FRAME_WELCOME, "%s",
		     payload);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"control\"}", 1,
			      5));
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_connections_accepted_total{kind=\"control\"}"),
		     1);
	cr_assert_eq(wait_count(api_log, "path=/api/internal/sites/verify ", 4), 4);
	/* its credential, checked now, passes from the limited address too:
	 * a cached answer costs the API nothing */
	struct raw cached;
	raw_open(&cached, FROM_1, proxy.port);
	cr_assert_eq(hello(&cached, w.credential, payload, sizeof payload), VR_FRAME_WELCOME, "%s",
		     payload);
	raw_close(&cached);
	raw_close(&good);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"control\"}", 0,
			      5));
	cr_assert_eq(wait_count(api_log, "path=/api/internal/sites/verify ", 4), 4);
	cr_assert_eq(metric(proxy.metrics_port, "vrcloud_proxy_connections_pending"), 0);
	proxy_stop(&proxy);
	cr_assert_eq(vrt_api_stop(&api, 10), 0);
	free(api_log);
}

/* A worker's stand-in that takes connections into its backlog and reads
 * nothing: data connections stay open until it accepts one and closes it. */
static int backlog_listen(unsigned *port_out)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	cr_assert_eq(listen(fd, 16), 0);
	socklen_t len = sizeof addr;
	getsockname(fd, (struct sockaddr *)&addr, &len);
	*port_out = ntohs(addr.sin_port);
	return fd;
}

Test(tunnel_ops, the_data_connections_of_a_site_are_capped_and_counted)
{
	struct world w;
	world_init(&w);
	unsigned worker_port;
	int worker = backlog_listen(&worker_port);
	char *address = fmt("127.0.0.1:%u", worker_port);
	vrt_db_exec("UPDATE replica_servers SET traffic_address = $2 WHERE id = $1::uuid", w.server,
		    address);
	free(address);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL, "site_data_connections = 2\n");
	char *proxies = fmt("127.0.0.1:%u", proxy.port);
	struct vr_agent_config config;
	vr_agent_config_init(&config);
	cr_assert_eq(vr_agent_config_set(&config, "agent", "proxy", proxies, NULL), 0);
	cr_assert_eq(vr_agent_config_set(&config, "agent", "credential_file", w.cred_file, NULL),
		     0);
	cr_assert_eq(vr_agent_config_set(&config, "agent", "ca_file", w.ca, NULL), 0);
	cr_assert_eq(vr_agent_config_check(&config, NULL), 0);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *conns[3] = {NULL, NULL, NULL};
	for (size_t i = 0; i < 2; i++)
		cr_assert_eq(vr_agent_data_open(&conns[i], &tls, &config, w.credential, w.repl,
						&error),
			     0, "%s", error ? error : "");
	/* bytes up are counted as the proxy reads them */
	static const char data[1000] = {1};
	cr_assert_eq(vr_agent_conn_write(conns[0], data, sizeof data), 0);
	double end = vrt_now() + 5;
	while (metric(proxy.metrics_port, "vrcloud_proxy_bytes_total{direction=\"up\"}") <
	       (double)sizeof data)
		cr_assert_lt(vrt_now(), end, "the bytes up were not counted");
	/* a third is refused with a reason of its own */
	cr_assert_eq(vr_agent_data_open(&conns[2], &tls, &config, w.credential, w.repl, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "site-limit:", 11) == 0, "%s", error);
	free(error);
	error = NULL;
	cr_assert_eq(metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"data\"}"), 2);
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_hellos_refused_total{reason=\"site-limit\"}"),
		     1);
	cr_assert_eq(metric(proxy.metrics_port, "vrcloud_proxy_api_calls_total{call=\"route\"}"),
		     3);
	/* the worker ends one: the site gets its slot back */
	int taken = accept(worker, NULL, NULL);
	cr_assert_geq(taken, 0);
	close(taken);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"data\"}", 1,
			      10),
		  "%s", read_text(proxy.log));
	cr_assert_eq(vr_agent_data_open(&conns[2], &tls, &config, w.credential, w.repl, &error), 0,
		     "%s", error ? error : "");
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_connections_accepted_total{kind=\"data\"}"),
		     3);
	for (size_t i = 0; i < N(conns); i++)
		vr_agent_conn_close(conns[i]);
	close(worker);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"data\"}", 0,
			      10),
		  "%s", read_text(proxy.log));
	proxy_stop(&proxy);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(proxies);
}

static long long file_not_after(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x);
	struct tm tm;
	cr_assert_eq(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
	X509_free(x);
	return (long long)timegm(&tm);
}

Test(tunnel_ops, metrics_show_tls_failures_reloads_the_certificate_and_internal_connections)
{
	struct world w;
	world_init(&w);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL, NULL);
	char *body = NULL;
	cr_assert_eq(http_get(proxy.metrics_port, "GET", "/metrics", &body), 200);
	assert_exposition(body);
	cr_assert_not_null(strstr(body, "vrcloud_proxy_info{name=\"p1\",version=\""), "%s", body);
	free(body);
	cr_assert_eq(http_get(proxy.metrics_port, "GET", "/", &body), 404);
	free(body);
	cr_assert_eq(http_get(proxy.metrics_port, "POST", "/metrics", &body), 405);
	free(body);
	double not_after =
		metric(proxy.metrics_port, "vrcloud_proxy_certificate_not_after_seconds");
	cr_assert_eq(not_after, (double)file_not_after(w.cert), "%.0f, the file's %lld", not_after,
		     file_not_after(w.cert));
	/* a client that does not speak TLS */
	int fd = tcp_from(FROM_1, proxy.port);
	cr_assert_eq(write(fd, "GET / HTTP/1.1\r\n\r\n", 18), 18);
	char buf[256];
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_tls_handshake_failures_total", 1,
			      5));
	cr_assert_eq(metric(proxy.metrics_port, "vrcloud_proxy_accepts_total"), 1);
	/* SIGHUP: the same files load again; a missing key does not */
	kill(proxy.pid, SIGHUP);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_tls_reloads_total{result=\"ok\"}",
			      1, 5));
	char *moved = fmt("%s.moved", w.key);
	cr_assert_eq(rename(w.key, moved), 0);
	kill(proxy.pid, SIGHUP);
	cr_assert(wait_metric(proxy.metrics_port,
			      "vrcloud_proxy_tls_reloads_total{result=\"failed\"}", 1, 5));
	cr_assert_eq(rename(moved, w.key), 0);
	free(moved);
	/* a worker's connection on the internal port; its request names a site
	 * no proxy holds: refused at once, a failed stitch */
	int wfd = tcp_from(FROM_1, proxy.internal_port);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"internal\"}", 1,
			      5));
	char *request = fmt("version=1\npeer=%s\npurpose=probe\n", w.peer);
	unsigned char frame[256] = {VR_FRAME_REQUEST, 0, 0, (unsigned char)strlen(request)};
	memcpy(frame + 4, request, strlen(request));
	cr_assert_eq(write(wfd, frame, 4 + strlen(request)), (ssize_t)(4 + strlen(request)));
	free(request);
	while (read(wfd, buf, sizeof buf) > 0)
		;
	close(wfd);
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_stitches_total{result=\"failed\"}",
			      1, 5));
	cr_assert(wait_metric(proxy.metrics_port, "vrcloud_proxy_connections{kind=\"internal\"}", 0,
			      5));
	cr_assert_eq(metric(proxy.metrics_port,
			    "vrcloud_proxy_connections_accepted_total{kind=\"internal\"}"),
		     1);
	proxy_stop(&proxy);
}
