/* The tunnels with real processes (docs/tunnels.md): vrcloud-proxy and
 * vrcloud-agent as built, TLS with a CA made by contrib/tunnel-test-ca, the
 * harness's vrcloud-api (which checks site credentials) and Redis. Each test
 * pairs a site of its own (a new VDC and peer, a credential from
 * `vrcloudctl peer credential`), a proxy service credential of its own
 * (`vrcloudctl service add --kind proxy`) and a Redis prefix of its own.
 * Data connections are driven from this process through the agent's library
 * against a sink that stands in for the worker: each world has a
 * replication of its own whose replica server's traffic address is the
 * sink (route_to), since a proxy looks the worker up through the API. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "integration/harness.h"
#include "vrcloud/agent.h"
#include "vrcloud/err.h"
#include "vrcloud/redis.h"
#include "vrcloud/tls.h"

VRT_SUITE(.name = "tunnel", .jobs = 1, .redis_db = 13);

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MIB  ((size_t)1 << 20)
#define REPL "40000000-0000-4000-8000-000000000001"

/* --- helpers: text, time, commands ----------------------------------------- */

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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static bool file_contains(const char *path, const char *needle)
{
	char *text = read_text(path);
	bool found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

static bool wait_file_contains(const char *path, const char *needle, double timeout_s)
{
	double end = now_s() + timeout_s;
	while (now_s() < end) {
		if (file_contains(path, needle))
			return true;
		vrt_sleep(0.05);
	}
	return false;
}

static void write_secret(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fprintf(f, "%s\n", text);
	fclose(f);
	chmod(path, 0600);
}

/* Run argv to completion; its stdout is returned (caller frees) and
 * *status_out is its exit status. */
static char *run_capture(char *const argv[], int *status_out)
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
	*status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return out;
}

/* The value of "key=" at the start of a line of text (caller frees). */
static char *kv(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=')
			return strndup(p + klen + 1, strcspn(p + klen + 1, "\n"));
	}
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

/* `vrcloudctl --database <suite db> ARGS...`; must exit 0. */
static char *ctl(const char *first, ...)
{
	char *exe = fmt("%s/vrcloudctl", builddir());
	char *argv[16] = {exe, (char *)"--database", (char *)vrt_env("VRT_DB_URI"), (char *)first};
	size_t n = 4;
	va_list ap;
	va_start(ap, first);
	char *a;
	while ((a = va_arg(ap, char *)) && n < 15)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "vrcloudctl %s ... exited %d:\n%s", first, status, out);
	free(exe);
	return out;
}

/* --- Redis --------------------------------------------------------------------- */

static struct vr_redis *redis(void)
{
	static struct vr_redis *r;
	if (!r)
		cr_assert_eq(vr_redis_open(&r, vrt_env("VRT_REDIS_URI")), 0);
	return r;
}

/* Run a command; string replies are returned (caller frees), integers as
 * text, nil as NULL. */
static char *rcmd(int argc, const char **argv)
{
	redisReply *r = vr_redis_command(redis(), argc, argv);
	cr_assert_not_null(r, "Redis did not answer %s", argv[0]);
	cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", argv[0], r->str);
	char *out = NULL;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		out = strndup(r->str, r->len);
	else if (r->type == REDIS_REPLY_INTEGER)
		out = fmt("%lld", r->integer);
	freeReplyObject(r);
	return out;
}

/* --- the world of one test ------------------------------------------------------ */

struct world {
	char dir[256];
	char prefix[48];
	char peer[40], site[40], vdc[40];
	char credential[128];
	char cred_file[300];
	char token_file[300];
	char ca[300], cert[300], key[300], pin[80];
	char repl[40], server[40]; /* the site's replication and its replica server */
};

static void make_ca(struct world *w, const char *dir, const char *const *names)
{
	char *script = fmt("%s/contrib/tunnel-test-ca", srcdir());
	char *argv[12] = {(char *)"/bin/bash", script, (char *)dir};
	size_t n = 3;
	for (size_t i = 0; names[i] && n < 11; i++)
		argv[n++] = (char *)names[i];
	argv[n] = NULL;
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "tunnel-test-ca exited %d:\n%s", status, out);
	char *v;
	snprintf(w->ca, sizeof w->ca, "%s", v = kv(out, "ca"));
	free(v);
	snprintf(w->cert, sizeof w->cert, "%s", v = kv(out, "cert"));
	free(v);
	snprintf(w->key, sizeof w->key, "%s", v = kv(out, "key"));
	free(v);
	snprintf(w->pin, sizeof w->pin, "%s", v = kv(out, "pin"));
	free(v);
	free(out);
	free(script);
}

/* A new site credential for w's peer. */
static void new_credential(struct world *w)
{
	char *out = ctl("peer", "credential", w->peer, NULL);
	char *c = kv(out, "credential");
	snprintf(w->credential, sizeof w->credential, "%s", c);
	write_secret(w->cred_file, c);
	free(c);
	free(out);
}

static void world_init(struct world *w)
{
	signal(SIGPIPE, SIG_IGN);
	memset(w, 0, sizeof *w);
	snprintf(w->dir, sizeof w->dir, "%s/tunnel-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->prefix, sizeof w->prefix, "vrt%ld-%s", (long)getpid(),
		 strrchr(w->dir, '-') + 1);
	char *vdc = vrt_new_vdc(true, true, true);
	snprintf(w->vdc, sizeof w->vdc, "%s", vdc);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	char *site = vrt_db_value("SELECT site_uuid::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	snprintf(w->site, sizeof w->site, "%s", site);
	free(vdc);
	free(peer);
	free(site);
	snprintf(w->cred_file, sizeof w->cred_file, "%s/credential", w->dir);
	new_credential(w);
	char *name = fmt("proxy-%s", w->prefix);
	char *out = ctl("service", "add", name, "--kind", "proxy", NULL);
	char *token = kv(out, "token");
	snprintf(w->token_file, sizeof w->token_file, "%s/proxy-token", w->dir);
	write_secret(w->token_file, token);
	free(token);
	free(out);
	free(name);
	char *port = fmt("127.0.0.1:%u", vrt_closed_port());
	char *server = vrt_db_value("INSERT INTO replica_servers (name, traffic_address)"
				    " VALUES ('ws-' || $1, $2) RETURNING id::text",
				    strrchr(w->dir, '-') + 1, port);
	char *repl = vrt_new_replication(w->vdc, "tunnel-vm", true, NULL);
	vrt_db_exec("UPDATE replications SET replica_server_id = $2::uuid WHERE id = $1::uuid",
		    repl, server);
	snprintf(w->server, sizeof w->server, "%s", server);
	snprintf(w->repl, sizeof w->repl, "%s", repl);
	free(port);
	free(server);
	free(repl);
	static const char *const names[] = {"localhost", "127.0.0.1", NULL};
	char *ca_dir = fmt("%s/ca", w->dir);
	make_ca(w, ca_dir, names);
	free(ca_dir);
}

/* The world's replication is served by a worker at 127.0.0.1:port. */
static void route_to(const struct world *w, unsigned port)
{
	char *address = fmt("127.0.0.1:%u", port);
	vrt_db_exec("UPDATE replica_servers SET traffic_address = $2 WHERE id = $1::uuid",
		    w->server, address);
	free(address);
}

static char *registry_key(const struct world *w)
{
	return fmt("%s:tunnel:peer:%s", w->prefix, w->peer);
}

static char *registry_value(const struct world *w)
{
	char *key = registry_key(w);
	const char *argv[] = {"GET", key};
	char *v = rcmd(2, argv);
	free(key);
	return v;
}

static void push_command(const struct world *w, const char *id, const char *name, bool wake)
{
	char *key = fmt("%s:tunnel:commands:%s", w->prefix, w->peer);
	char *element = fmt("id=%s\nname=%s\nreplication=" REPL "\n", id, name);
	const char *push[] = {"RPUSH", key, element};
	free(rcmd(3, push));
	if (wake) {
		char *channel = fmt("%s:tunnel:wake", w->prefix);
		const char *publish[] = {"PUBLISH", channel, w->peer};
		free(rcmd(3, publish));
		free(channel);
	}
	free(element);
	free(key);
}

static long command_count(const struct world *w)
{
	char *key = fmt("%s:tunnel:commands:%s", w->prefix, w->peer);
	const char *argv[] = {"LLEN", key};
	char *n = rcmd(2, argv);
	long count = atol(n);
	free(n);
	free(key);
	return count;
}

static bool wait_commands(const struct world *w, long count, double timeout_s)
{
	double end = now_s() + timeout_s;
	while (now_s() < end) {
		if (command_count(w) == count)
			return true;
		vrt_sleep(0.05);
	}
	return false;
}

/* --- processes --------------------------------------------------------------------- */

struct proc {
	pid_t pid;
	char name[64];
	char log[320];
	unsigned port;
	unsigned internal_port; /* proxies: the workers' port */
	int status;
};

static void spawn(struct proc *p, const char *const *argv)
{
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* Signal p and wait up to timeout_s: its exit status, 256 + the signal,
 * -1 when it had to be killed, -2 when its log shows a sanitizer report. */
static int stop_proc(struct proc *p, int sig, double timeout_s)
{
	if (p->pid <= 0)
		return p->status;
	kill(p->pid, sig);
	double end = now_s() + timeout_s;
	int status = 0, rc = -1;
	for (;;) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
			break;
		}
		if (now_s() >= end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			break;
		}
		vrt_sleep(0.02);
	}
	p->pid = 0;
	if (rc >= 0 && rc < 256 &&
	    (file_contains(p->log, "runtime error") || file_contains(p->log, "Sanitizer")))
		rc = -2;
	p->status = rc;
	return rc;
}

static bool alive(const struct proc *p)
{
	return p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == 0;
}

struct proxy_opts {
	const char *cert, *key;	  /* NULL: the world's */
	const char *const *extra; /* more flags */
};

static void proxy_start(struct proc *p, const struct world *w, const char *name,
			const struct proxy_opts *o)
{
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	snprintf(p->log, sizeof p->log, "%s/%s.log", w->dir, name);
	char *port_file = fmt("%s/%s.port", w->dir, name);
	char *exe = fmt("%s/vrcloud-proxy", builddir());
	const char *argv[48] = {exe,
				"--name",
				name,
				"--listen",
				"127.0.0.1:0",
				"--port-file",
				port_file,
				"--cert",
				o && o->cert ? o->cert : w->cert,
				"--key",
				o && o->key ? o->key : w->key,
				"--token-file",
				w->token_file,
				"--api-url",
				vrt_base_url(),
				"--redis",
				vrt_env("VRT_REDIS_URI"),
				"--redis-prefix",
				w->prefix,
				"--internal-listen",
				"127.0.0.1:0",
				"--heartbeat-interval",
				"1",
				"--registry-ttl",
				"3",
				"--shutdown-timeout",
				"3",
				"--log-level",
				"debug",
				"--log-file",
				p->log};
	size_t n = 0;
	while (argv[n])
		n++;
	for (size_t i = 0; o && o->extra && o->extra[i] && n < 47; i++)
		argv[n++] = o->extra[i];
	argv[n] = NULL;
	unlink(port_file);
	spawn(p, argv);
	double end = now_s() + 15;
	while (now_s() < end) {
		char *text = read_text(port_file);
		p->port = (unsigned)atoi(text);
		const char *second = strchr(text, '\n');
		p->internal_port = second ? (unsigned)atoi(second + 1) : 0;
		free(text);
		if (p->port)
			break;
		cr_assert(alive(p), "vrcloud-proxy %s exited at start:\n%s", name,
			  read_text(p->log));
		vrt_sleep(0.05);
	}
	cr_assert_neq(p->port, 0, "vrcloud-proxy %s wrote no port", name);
	free(port_file);
	free(exe);
}

static char *address_of(const struct proc *p)
{
	return fmt("127.0.0.1:%u", p->port);
}

/* trust: flags saying how to check the proxy (NULL: the world's CA). */
static void agent_start(struct proc *a, const struct world *w, const char *name,
			const char *proxies, const char *const *trust)
{
	memset(a, 0, sizeof *a);
	snprintf(a->name, sizeof a->name, "%s", name);
	snprintf(a->log, sizeof a->log, "%s/%s.log", w->dir, name);
	char *exe = fmt("%s/vrcloud-agent", builddir());
	const char *argv[32] = {exe,	      "--name",
				name,	      "--proxy",
				proxies,      "--credential-file",
				w->cred_file, "--backoff-initial",
				"100",	      "--backoff-max",
				"1",	      "--connect-timeout",
				"5",	      "--log-level",
				"debug",      "--log-file",
				a->log};
	size_t n = 0;
	while (argv[n])
		n++;
	const char *const ca[] = {"--ca-file", w->ca, NULL};
	for (const char *const *t = trust ? trust : ca; *t && n < 31; t++)
		argv[n++] = *t;
	argv[n] = NULL;
	spawn(a, argv);
	free(exe);
}

/* --- the worker's stand-in ------------------------------------------------------------ */

static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void fill_random(unsigned char *buf, size_t len, uint64_t *state)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = next_random(state);
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

struct sink {
	int listen_fd;
	unsigned port;
	pthread_t thread;
	double pause_s;	    /* read nothing this long after the preamble */
	size_t reply_bytes; /* random bytes sent back after the end of input */
	uint64_t reply_seed;
	char preamble[512];
	uint64_t received;
	unsigned char digest[32];
	bool done;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t n = 0;
	char c;
	while (n + 1 < sizeof s->preamble && read(fd, &c, 1) == 1 && c != '\n')
		s->preamble[n++] = c;
	s->preamble[n] = '\0';
	if (s->pause_s > 0)
		vrt_sleep(s->pause_s);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	unsigned char *buf = malloc(MIB);
	ssize_t r;
	while ((r = read(fd, buf, MIB)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)r);
		s->received += (uint64_t)r;
	}
	EVP_DigestFinal_ex(md, s->digest, NULL);
	EVP_MD_CTX_free(md);
	uint64_t state = s->reply_seed;
	for (size_t sent = 0; r == 0 && sent < s->reply_bytes;) {
		size_t len = s->reply_bytes - sent < MIB ? s->reply_bytes - sent : MIB;
		fill_random(buf, len, &state);
		size_t off = 0;
		while (off < len) {
			ssize_t w = write(fd, buf + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off < len)
			break;
		sent += len;
	}
	free(buf);
	close(fd);
	s->done = r == 0;
	return NULL;
}

static void sink_start(struct sink *s)
{
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
	cr_assert_eq(listen(s->listen_fd, 4), 0);
	socklen_t len = sizeof addr;
	getsockname(s->listen_fd, (struct sockaddr *)&addr, &len);
	s->port = ntohs(addr.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, sink_main, s), 0);
}

static void sink_join(struct sink *s)
{
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
}

/* An agent configuration for data connections from this process. */
static void data_config(struct vr_agent_config *c, const struct world *w, const char *proxies)
{
	vr_agent_config_init(c);
	cr_assert_eq(vr_agent_config_set(c, "agent", "proxy", proxies, NULL), 0);
	cr_assert_eq(vr_agent_config_set(c, "agent", "credential_file", w->cred_file, NULL), 0);
	cr_assert_eq(vr_agent_config_set(c, "agent", "ca_file", w->ca, NULL), 0);
	cr_assert_eq(vr_agent_config_check(c, NULL), 0);
}

struct upload {
	struct vr_agent_conn *conn;
	size_t total;
	uint64_t seed;
	atomic_size_t written;
	unsigned char digest[32];
	int rc;
};

static void *upload_main(void *arg)
{
	struct upload *u = arg;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	unsigned char *buf = malloc(MIB);
	uint64_t state = u->seed;
	u->rc = 0;
	for (size_t done = 0; done < u->total && !u->rc;) {
		size_t len = u->total - done < MIB ? u->total - done : MIB;
		fill_random(buf, len, &state);
		EVP_DigestUpdate(md, buf, len);
		for (size_t off = 0; off < len && !u->rc; off += 64 * 1024) {
			size_t piece = len - off < 64 * 1024 ? len - off : 64 * 1024;
			u->rc = vr_agent_conn_write(u->conn, buf + off, piece);
			atomic_fetch_add(&u->written, piece);
		}
		done += len;
	}
	if (!u->rc)
		u->rc = vr_agent_conn_finish(u->conn);
	EVP_DigestFinal_ex(md, u->digest, NULL);
	EVP_MD_CTX_free(md);
	free(buf);
	return NULL;
}

/* Read the rest of the stream: its length and SHA-256. */
static uint64_t download(struct vr_agent_conn *conn, unsigned char digest[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	unsigned char *buf = malloc(MIB);
	uint64_t total = 0;
	for (;;) {
		size_t n = 0;
		cr_assert_eq(vr_agent_conn_read(conn, buf, MIB, &n), 0, "the stream broke");
		if (!n)
			break;
		EVP_DigestUpdate(md, buf, n);
		total += n;
	}
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	free(buf);
	return total;
}

static void expected_digest(unsigned char out[32], size_t total, uint64_t seed)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	unsigned char *buf = malloc(MIB);
	for (size_t done = 0; done < total;) {
		size_t len = total - done < MIB ? total - done : MIB;
		fill_random(buf, len, &seed);
		EVP_DigestUpdate(md, buf, len);
		done += len;
	}
	EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	free(buf);
}

/* --- /proc: does a process listen? -------------------------------------------------- */

static bool inode_in(const unsigned long *set, size_t n, unsigned long inode)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == inode)
			return true;
	return false;
}

/* Count pid's sockets found in /proc/<pid>/net/<table> whose state column
 * (tcp) is st ("" = any); inode is column inode_col. */
static size_t sockets_in(pid_t pid, const char *table, const unsigned long *set, size_t n,
			 const char *st, int state_col, int inode_col)
{
	char *path = fmt("/proc/%ld/net/%s", (long)pid, table);
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return 0;
	char line[1024];
	size_t count = 0;
	cr_assert_not_null(fgets(line, sizeof line, f)); /* header */
	while (fgets(line, sizeof line, f)) {
		char *cols[16] = {0};
		int k = 0;
		for (char *tok = strtok(line, " \t\n"); tok && k < 16; tok = strtok(NULL, " \t\n"))
			cols[k++] = tok;
		if (k <= inode_col || k <= state_col)
			continue;
		unsigned long inode = strtoul(cols[inode_col], NULL, 10);
		if (inode_in(set, n, inode) && (!st[0] || strcmp(cols[state_col], st) == 0))
			count++;
	}
	fclose(f);
	return count;
}

/* The process has sockets, one is an established TCP connection, and none
 * listens or is a datagram socket bound to receive. */
static void assert_listens_nowhere(pid_t pid)
{
	unsigned long inodes[256];
	size_t n = 0;
	char *dir_path = fmt("/proc/%ld/fd", (long)pid);
	DIR *dir = opendir(dir_path);
	cr_assert_not_null(dir, "%s", dir_path);
	struct dirent *e;
	while ((e = readdir(dir)) && n < N(inodes)) {
		char *p = fmt("%s/%s", dir_path, e->d_name);
		char target[128];
		ssize_t len = readlink(p, target, sizeof target - 1);
		free(p);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, "socket:[", 8) == 0)
			inodes[n++] = strtoul(target + 8, NULL, 10);
	}
	closedir(dir);
	free(dir_path);
	cr_assert_gt(n, 0, "the agent has no socket at all");
	/* tcp/tcp6: st is column 3 ("0A" = LISTEN, "01" = ESTABLISHED), inode 9 */
	size_t listening = sockets_in(pid, "tcp", inodes, n, "0A", 3, 9) +
			   sockets_in(pid, "tcp6", inodes, n, "0A", 3, 9);
	size_t established = sockets_in(pid, "tcp", inodes, n, "01", 3, 9) +
			     sockets_in(pid, "tcp6", inodes, n, "01", 3, 9);
	size_t datagram = sockets_in(pid, "udp", inodes, n, "", 3, 9) +
			  sockets_in(pid, "udp6", inodes, n, "", 3, 9) +
			  sockets_in(pid, "raw", inodes, n, "", 3, 9) +
			  sockets_in(pid, "raw6", inodes, n, "", 3, 9);
	/* unix: Flags (column 3) 00010000 = accepting connections; inode 6 */
	size_t unix_listening = sockets_in(pid, "unix", inodes, n, "00010000", 3, 6);
	cr_assert_eq(listening, 0, "the agent has a listening TCP socket");
	cr_assert_eq(datagram, 0, "the agent has a datagram or raw socket");
	cr_assert_eq(unix_listening, 0, "the agent has a listening unix socket");
	cr_assert_geq(established, 1,
		      "the agent's connection to the proxy is not among its sockets");
}

/* --- tests: control connections -------------------------------------------------------- */

Test(tunnel, a_pushed_command_is_delivered_and_removed_once_acknowledged)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15),
		  "the agent never connected:\n%s", read_text(agent.log));
	char *expected = fmt("peer=%s site=%s heartbeat=1", w.peer, w.site);
	cr_assert(file_contains(agent.log, expected), "%s", read_text(agent.log));
	free(expected);
	/* the registry names this proxy and its own address */
	char *value = registry_value(&w);
	char *want = fmt("p1 p1:%u", proxy.port);
	cr_assert_not_null(value);
	cr_assert_str_eq(value, want);
	free(want);
	free(value);

	push_command(&w, "cmd-1", "sync", true);
	cr_assert(wait_file_contains(agent.log, "event=command id=cmd-1 name=sync", 10),
		  "the command never arrived:\n%s", read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 10), "the acknowledged command is still in the list");
	cr_assert(file_contains(proxy.log, "event=command_acked"), "%s", read_text(proxy.log));
	/* several in a row, in order */
	push_command(&w, "cmd-2", "startFailbackReceive", false);
	push_command(&w, "cmd-3", "configure", true);
	cr_assert(wait_commands(&w, 0, 10));
	char *log = read_text(agent.log);
	char *c2 = strstr(log, "id=cmd-2"), *c3 = strstr(log, "id=cmd-3");
	cr_assert(c2 && c3 && c2 < c3, "commands out of order:\n%s", log);
	cr_assert_null(strstr(log, "command_repeated"), "a command came twice:\n%s", log);
	free(log);
	assert_listens_nowhere(agent.pid);

	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
}

Test(tunnel, a_command_pushed_while_the_site_is_away_waits_for_it)
{
	struct world w;
	world_init(&w);
	push_command(&w, "early-1", "sync", true);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	vrt_sleep(0.5);
	cr_assert_eq(command_count(&w), 1, "a proxy without the site touched its list");
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=command id=early-1 name=sync", 15), "%s",
		  read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 10));
	/* a malformed entry is dropped, not delivered, and blocks nothing */
	char *key = fmt("%s:tunnel:commands:%s", w.prefix, w.peer);
	const char *bad[] = {"RPUSH", key, "no id here"};
	free(rcmd(3, bad));
	push_command(&w, "after-bad", "sync", true);
	cr_assert(wait_file_contains(agent.log, "id=after-bad", 10), "%s", read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 10));
	cr_assert(file_contains(proxy.log, "event=command_dropped"));
	free(key);
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
}

Test(tunnel, an_unacknowledged_command_is_delivered_again_to_the_next_connection)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15));
	/* the agent stops before it can answer: SIGSTOP, then the command */
	kill(agent.pid, SIGSTOP);
	push_command(&w, "held-1", "sync", true);
	cr_assert(wait_file_contains(proxy.log, "event=command_sent", 10));
	/* the proxy drops the silent site; the command stays */
	cr_assert(wait_file_contains(proxy.log, "no heartbeat in time", 10), "%s",
		  read_text(proxy.log));
	cr_assert_eq(command_count(&w), 1);
	kill(agent.pid, SIGCONT);
	cr_assert(wait_file_contains(agent.log, "id=held-1", 15), "%s", read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 15), "%s", read_text(proxy.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
}

Test(tunnel, wrong_and_revoked_credentials_are_refused)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	char good[128];
	snprintf(good, sizeof good, "%s", w.credential);
	write_secret(w.cred_file, "not-the-credential-of-any-site");
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=refused", 15), "%s", read_text(agent.log));
	cr_assert(file_contains(agent.log, "credential: the site credential is not valid"));
	cr_assert(file_contains(proxy.log, "reason=credential"));
	cr_assert_null(registry_value(&w));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert(!file_contains(agent.log, "event=connected"));

	/* a revoked peer's real credential is refused too */
	write_secret(w.cred_file, good);
	vrt_db_exec("UPDATE peers SET revoked_at = now() WHERE id = $1::uuid", w.peer);
	agent_start(&agent, &w, "site-a2", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=refused", 15), "%s", read_text(agent.log));
	cr_assert_null(registry_value(&w));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	cr_assert(!file_contains(proxy.log, good), "the proxy logged a credential");
	cr_assert(!file_contains(agent.log, good), "the agent logged its credential");
	free(address);
}

Test(tunnel, a_credential_replaced_while_connected_cuts_the_site_off)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	static const char *const fast_recheck[] = {"--verify-cache", "1", NULL};
	struct proxy_opts o = {.extra = fast_recheck};
	proxy_start(&proxy, &w, "p1", &o);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15));
	/* the operator makes a new credential: the old one no longer works */
	char *out = ctl("peer", "credential", w.peer, NULL);
	free(out);
	cr_assert(wait_file_contains(proxy.log, "the site credential is no longer valid", 10), "%s",
		  read_text(proxy.log));
	cr_assert(wait_file_contains(agent.log, "event=refused", 10), "%s", read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
}

Test(tunnel, sigkill_of_the_proxy_moves_the_site_to_another_proxy)
{
	struct world w;
	world_init(&w);
	struct proc p1, p2, agent;
	proxy_start(&p1, &w, "p1", NULL);
	proxy_start(&p2, &w, "p2", NULL);
	char *a1 = address_of(&p1), *a2 = address_of(&p2);
	char *list = fmt("%s,%s", a1, a2);
	agent_start(&agent, &w, "site-a", list, NULL);
	char *on_p1 = fmt("event=connected address=%s proxy=p1", a1);
	cr_assert(wait_file_contains(agent.log, on_p1, 15), "%s", read_text(agent.log));
	double killed = now_s();
	kill(p1.pid, SIGKILL);
	cr_assert_eq(stop_proc(&p1, SIGKILL, 5), 256 + SIGKILL);
	/* a command queued while the site has no proxy waits for it */
	push_command(&w, "meanwhile", "sync", true);
	char *on_p2 = fmt("event=connected address=%s proxy=p2", a2);
	cr_assert(wait_file_contains(agent.log, on_p2, 15), "%s", read_text(agent.log));
	double moved = now_s() - killed;
	/* the issue's aim is 5 s; the bound is wider for a loaded machine */
	fprintf(stderr, "tunnel: the site moved to another proxy %.2f s after SIGKILL\n", moved);
	cr_assert_lt(moved, 10.0, "the site took %.1f s to move", moved);
	cr_assert(wait_file_contains(agent.log, "id=meanwhile", 10), "%s", read_text(agent.log));
	/* the registry names p2 now and p2 delivers */
	char *want = fmt("p2 p2:%u", p2.port);
	double end = now_s() + 5;
	char *value = NULL;
	while (now_s() < end) {
		free(value);
		value = registry_value(&w);
		if (value && strcmp(value, want) == 0)
			break;
		vrt_sleep(0.05);
	}
	cr_assert(value && strcmp(value, want) == 0, "registry: %s", value ? value : "(none)");
	push_command(&w, "after-kill", "sync", true);
	cr_assert(wait_file_contains(agent.log, "id=after-kill", 10), "%s", read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 10));
	cr_assert(file_contains(p2.log, "id=after-kill"));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	free(value);
	free(want);
	free(on_p1);
	free(on_p2);
	free(list);
	free(a1);
	free(a2);
}

Test(tunnel, sigterm_releases_the_sites_and_exits_0)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15));
	char *proxy_key = fmt("%s:tunnel:proxy:p1", w.prefix);
	const char *get_proxy[] = {"GET", proxy_key};
	char *reverse = rcmd(2, get_proxy);
	char *want = fmt("p1:%u", proxy.port);
	cr_assert(reverse && strcmp(reverse, want) == 0, "%s", reverse ? reverse : "(none)");
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0, "%s", read_text(proxy.log));
	cr_assert_null(registry_value(&w), "the stopped proxy still holds the site");
	cr_assert_null(rcmd(2, get_proxy), "the stopped proxy is still announced");
	cr_assert(wait_file_contains(agent.log, "event=disconnected", 10));
	cr_assert(alive(&agent), "the agent must outlive its proxy");
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	free(reverse);
	free(want);
	free(proxy_key);
	free(address);
}

/* A second site (its own VDC, peer and credential) beside w's. */
/* --- tests: commands from the rest of the system, pairing, tunnels, metrics ----------- */

/* The suite's worker (VRT_SERVICE) against the suite's API and Redis. */
static void worker_start(struct proc *p, const struct world *w)
{
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "worker");
	snprintf(p->log, sizeof p->log, "%s/worker.log", w->dir);
	char *token = fmt("%s/worker-token", w->dir);
	write_secret(token, vrt_service_token(VRT_SERVICE));
	char *exe = fmt("%s/vrcloud-worker", builddir());
	const char *argv[] = {exe,	   "--name",	   VRT_SERVICE,
			      "--api-url", vrt_base_url(), "--token-file",
			      token,	   "--redis",	   vrt_env("VRT_REDIS_URI"),
			      "--heartbeat-interval", "1", "--shutdown-timeout",
			      "5",	   "--log-level",  "debug",
			      "--log-file", p->log,	   NULL};
	spawn(p, argv);
	cr_assert(wait_file_contains(p->log, "event=registered", 15),
		  "the worker never registered:\n%s", read_text(p->log));
	free(exe);
	free(token);
}

/* POST action on replication rg as admin-a; the Task's final status. */
static char *act_and_wait(const char *rg, const char *action, const char *content_type,
			  const char *body)
{
	char *path = fmt("/api/vr/replications/%s/action/%s", rg, action);
	char *header = fmt("Content-Type: %s", content_type ? content_type : "");
	const char *headers[] = {header, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = content_type ? headers : NULL,
				.body = body,
				.body_len = body ? -1 : 0};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 202, "%s: %ld %s", action, r.status, r.body);
	char *task = vrt_xpath_str(r.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&r);
	char *status = NULL;
	double end = now_s() + 30;
	while (now_s() < end) {
		free(status);
		status = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
		vrt_sleep(0.1);
	}
	free(task);
	free(header);
	free(path);
	return status;
}

/* `vrcloudctl tunnels` against the suite's Redis with prefix. */
static char *tunnels(const char *prefix)
{
	return ctl("tunnels", "--redis", vrt_env("VRT_REDIS_URI"), "--prefix", prefix, NULL);
}

Test(tunnel, sync_test_failover_and_reconfigure_reach_the_agent_through_the_worker)
{
	struct world w;
	world_init(&w);
	/* the API's and the worker's prefix (the default) */
	snprintf(w.prefix, sizeof w.prefix, "vrcloud");
	char *rg = vrt_new_replication(w.vdc, "tunnel-sync", false, NULL);
	struct proc proxy, agent, worker;
	worker_start(&worker, &w);
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-sync", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15), "%s",
		  read_text(agent.log));

	/* vrcloudctl tunnels and /metrics see the site */
	char *list = tunnels("vrcloud");
	cr_assert(strstr(list, w.peer) && strstr(list, " p1 ") && strstr(list, "HEARTBEAT"),
		  "%s", list);
	cr_assert_null(strstr(list, "(unknown peer)"), "%s", list);
	struct vrt_resp m;
	vrt_get("/metrics", NULL, &m);
	cr_assert_eq(m.status, 200);
	cr_assert(strstr(m.body, "\nvrcloud_sites_connected 1\n"), "%s", m.body);
	cr_assert(strstr(m.body, "vrcloud_replica_servers{state=\"connected\"} "), "%s", m.body);
	vrt_resp_free(&m);

	char *status = act_and_wait(rg, "sync", NULL, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(worker.log));
	free(status);
	char *want = fmt("name=sync replication=%s", rg);
	cr_assert(wait_file_contains(agent.log, want, 10), "the sync never reached the agent:\n%s",
		  read_text(agent.log));
	cr_assert(wait_file_contains(proxy.log, "event=command_acked", 10), "%s",
		  read_text(proxy.log));
	cr_assert(file_contains(worker.log, "event=site_command_queued"), "%s",
		  read_text(worker.log));
	cr_assert(wait_commands(&w, 0, 10), "the acknowledged command is still in the list");

	/* test failover without Synchronize sends nothing; with it, a sync */
	free(status = act_and_wait(rg, "testFailover", "application/vnd.vmware.hcs.testFailoverParams+xml",
				   "<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
				   "<PowerOn>false</PowerOn><Synchronize>true</Synchronize>"
				   "</TestFailoverParams>"));
	double end = now_s() + 10;
	char *log = NULL;
	while (now_s() < end) {
		free(log);
		log = read_text(agent.log);
		char *first = strstr(log, want);
		if (first && strstr(first + 1, want))
			break;
		vrt_sleep(0.1);
	}
	char *first = strstr(log, want);
	cr_assert(first && strstr(first + 1, want), "testFailover sent no sync:\n%s", log);
	free(log);

	/* a reconfiguration tells the site once it went through */
	status = act_and_wait(rg, "reconfigure", NULL, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(worker.log));
	free(status);
	char *changed = fmt("name=configChanged replication=%s", rg);
	cr_assert(wait_file_contains(agent.log, changed, 10), "no configChanged:\n%s",
		  read_text(agent.log));
	free(changed);

	/* the site away: the command waits in its list */
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	free(status = act_and_wait(rg, "testCleanup", NULL, NULL));
	free(status = act_and_wait(rg, "sync", NULL, NULL));
	cr_assert(wait_commands(&w, 1, 10), "the sync for an absent site is not waiting");

	cr_assert_eq(stop_proc(&worker, SIGTERM, 15), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	char *key = fmt("vrcloud:tunnel:commands:%s", w.peer);
	const char *del[] = {"DEL", key};
	free(rcmd(2, del));
	free(key);
	free(want);
	free(list);
	free(address);
	free(rg);
}

/* vrcloud-agent pair with password file pw; its exit status and output (both
 * streams). */
static char *pair_run(int *status, const char *pw, const char *state, const char *vdc,
		      const char *site_name, const char *api, const char *timeout)
{
	char *exe = fmt("%s/vrcloud-agent", builddir());
	/* its standard error too */
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exec \"$0\" \"$@\" 2>&1", exe,
			(char *)"pair",	     (char *)"--api",
			(char *)api,  (char *)"--user",	     (char *)VRT_ADMIN_A,
			(char *)"--password-file", (char *)pw, (char *)"--vdc",
			(char *)vdc,  (char *)"--site-name", (char *)site_name,
			(char *)"--state-dir", (char *)state, (char *)"--timeout",
			(char *)timeout, NULL};
	char *out = run_capture(argv, status);
	free(exe);
	return out;
}

Test(tunnel, pair_keeps_the_credential_and_the_site_connects_with_it)
{
	struct world w;
	world_init(&w);
	char *state = fmt("%s/agent-state", w.dir);
	cr_assert_eq(mkdir(state, 0700), 0);
	char *pw = fmt("%s/password", w.dir);
	write_secret(pw, VRT_PASSWORD);
	char *bad_pw = fmt("%s/bad-password", w.dir);
	write_secret(bad_pw, "not-the-password");
	int status;

	/* refusals: a wrong password, an unknown VDC, no API, a bad usage */
	char *out = pair_run(&status, bad_pw, state, w.vdc, "Paired Site", vrt_base_url(), "30");
	cr_assert_eq(status, 4, "%s", out);
	cr_assert(strstr(out, "logging in: HTTP 401"), "%s", out);
	free(out);
	out = pair_run(&status, pw, state, VRT_MISSING, "Paired Site", vrt_base_url(), "30");
	cr_assert_eq(status, 4, "%s", out);
	cr_assert(strstr(out, "pairing: HTTP 404"), "%s", out);
	free(out);
	char *closed = fmt("http://127.0.0.1:%u", vrt_closed_port());
	out = pair_run(&status, pw, state, w.vdc, "Paired Site", closed, "30");
	cr_assert_eq(status, 1, "%s", out);
	free(out);
	out = pair_run(&status, pw, state, "not-a-uuid", "Paired Site", vrt_base_url(), "30");
	cr_assert_eq(status, 2, "%s", out);
	free(out);
	char *credential = fmt("%s/site.credential", state);
	cr_assert_neq(access(credential, F_OK), 0, "a refused pairing left a credential");

	/* no worker runs the pairing: it times out, and pairs again later */
	out = pair_run(&status, pw, state, w.vdc, "Paired Site", vrt_base_url(), "2");
	cr_assert_eq(status, 5, "%s", out);
	cr_assert(strstr(out, "did not end within 2 seconds"), "%s", out);
	free(out);
	struct proc worker;
	worker_start(&worker, &w);
	/* the pairing made before completes once the worker runs; a second
	 * request for the same site is refused (already being paired) */
	char *site_ini = fmt("%s/site.ini", state);
	char *ini = read_text(site_ini);
	char *first_peer = strstr(ini, "peer_id = ");
	cr_assert_not_null(first_peer, "%s", ini);
	out = pair_run(&status, pw, state, w.vdc, "Paired Site", vrt_base_url(), "30");
	cr_assert_eq(status, 4, "%s", out);
	cr_assert(strstr(out, "DUPLICATE_NAME"), "%s", out);
	free(out);
	free(ini);

	/* a new site pairs with the VDC; the session ends with it */
	cr_assert_eq(unlink(site_ini), 0);
	static const char sessions_sql[] = "SELECT count(*)::text FROM sessions s"
					   " JOIN users u ON u.id = s.user_id"
					   " WHERE u.name = 'admin-a' AND u.org_id = $1::uuid";
	char *sessions_before = vrt_db_value(sessions_sql, VRT_ORG_A);
	out = pair_run(&status, pw, state, w.vdc, "Second Site", vrt_base_url(), "30");
	cr_assert_eq(status, 0, "%s\n%s", out, read_text(worker.log));
	char *peer = kv(out, "peer_id");
	char *site = kv(out, "site_uuid");
	cr_assert_null(strstr(out, "credential="), "the credential is printed:\n%s", out);
	free(out);
	struct stat st;
	cr_assert_eq(stat(credential, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	char *state_of = vrt_db_value("SELECT state || ' ' || site_uuid::text || ' ' || site_name"
				      " FROM peers WHERE id = $1::uuid",
				      peer);
	char *want = fmt("paired %s Second Site", site);
	cr_assert_str_eq(state_of, want);
	ini = read_text(site_ini);
	char *line = fmt("peer_id = %s\nsite_uuid = %s\n", peer, site);
	cr_assert(strstr(ini, line), "%s", ini);
	char *sessions_after = vrt_db_value(sessions_sql, VRT_ORG_A);
	cr_assert_str_eq(sessions_after, sessions_before, "pair left its session open");

	/* the agent connects with the credential pair kept */
	snprintf(w.cred_file, sizeof w.cred_file, "%s", credential);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-paired", address, NULL);
	char *connected = fmt("peer=%s site=%s", peer, site);
	cr_assert(wait_file_contains(agent.log, connected, 15), "%s", read_text(agent.log));
	char *list = tunnels(w.prefix);
	cr_assert(strstr(list, peer) && strstr(list, "Second Site") &&
			  strstr(list, VRT_ORG_A_NAME),
		  "%s", list);
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&worker, SIGTERM, 15), 0);
	free(list);
	free(connected);
	free(address);
	free(sessions_before);
	free(sessions_after);
	free(line);
	free(ini);
	free(want);
	free(state_of);
	free(site);
	free(peer);
	free(site_ini);
	free(credential);
	free(closed);
	free(bad_pw);
	free(pw);
	free(state);
}

static void other_site(struct world *out, const struct world *w)
{
	*out = *w;
	char *vdc = vrt_new_vdc(true, true, true);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(out->vdc, sizeof out->vdc, "%s", vdc);
	snprintf(out->peer, sizeof out->peer, "%s", peer);
	snprintf(out->cred_file, sizeof out->cred_file, "%s/credential-2", w->dir);
	new_credential(out);
	free(vdc);
	free(peer);
}

Test(tunnel, each_site_gets_its_own_commands)
{
	struct world w, w2;
	world_init(&w);
	other_site(&w2, &w);
	struct proc proxy, a1, a2;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&a1, &w, "site-1", address, NULL);
	agent_start(&a2, &w2, "site-2", address, NULL);
	cr_assert(wait_file_contains(a1.log, "event=connected", 15));
	cr_assert(wait_file_contains(a2.log, "event=connected", 15));
	push_command(&w, "for-1", "sync", true);
	push_command(&w2, "for-2", "sync", true);
	cr_assert(wait_commands(&w, 0, 10));
	cr_assert(wait_commands(&w2, 0, 10));
	cr_assert(file_contains(a1.log, "id=for-1") && !file_contains(a1.log, "id=for-2"));
	cr_assert(file_contains(a2.log, "id=for-2") && !file_contains(a2.log, "id=for-1"));
	cr_assert_eq(stop_proc(&a1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&a2, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
}

Test(tunnel, a_newer_connection_of_a_site_on_another_proxy_supersedes_the_older)
{
	struct world w;
	world_init(&w);
	struct proc p1, p2, a1, a2;
	proxy_start(&p1, &w, "p1", NULL);
	proxy_start(&p2, &w, "p2", NULL);
	char *addr1 = address_of(&p1), *addr2 = address_of(&p2);
	agent_start(&a1, &w, "first", addr1, NULL);
	cr_assert(wait_file_contains(a1.log, "event=connected", 15));
	/* the same site dials p2 (a stale connection stays on p1) */
	agent_start(&a2, &w, "second", addr2, NULL);
	cr_assert(wait_file_contains(a2.log, "event=connected", 15));
	cr_assert(wait_file_contains(p1.log, "superseded by a newer connection", 5), "%s",
		  read_text(p1.log));
	cr_assert(wait_file_contains(a1.log, "event=disconnected", 5));
	cr_assert_eq(stop_proc(&a1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&a2, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	free(addr1);
	free(addr2);
}

/* A redis-server of this test's own (so that it can be stopped). */
static void redis_start(struct proc *p, const struct world *w, unsigned port)
{
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "redis");
	snprintf(p->log, sizeof p->log, "%s/redis.log", w->dir);
	char *port_text = fmt("%u", port);
	unlink(p->log);
	const char *argv[] = {"redis-server", "--port",	   port_text, "--bind",
			      "127.0.0.1",    "--save",	   "",	      "--appendonly",
			      "no",	      "--logfile", p->log,    NULL};
	spawn(p, argv);
	p->port = port;
	double end = now_s() + 10;
	while (now_s() < end && !file_contains(p->log, "Ready to accept connections"))
		vrt_sleep(0.05);
	cr_assert(file_contains(p->log, "Ready to accept connections"), "%s", read_text(p->log));
	free(port_text);
}

Test(tunnel, sites_keep_their_connections_while_redis_is_away)
{
	struct world w;
	world_init(&w);
	unsigned port = vrt_closed_port();
	struct proc redis_proc;
	redis_start(&redis_proc, &w, port);
	char *uri = fmt("redis://127.0.0.1:%u/0", port);
	const char *const own_redis[] = {"--redis", uri, NULL};
	struct proxy_opts o = {.extra = own_redis};
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", &o);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15));
	cr_assert(wait_file_contains(proxy.log, "event=redis_connected", 5));
	stop_proc(&redis_proc, SIGKILL, 5);
	cr_assert(wait_file_contains(proxy.log, "event=redis_disconnected", 5), "%s",
		  read_text(proxy.log));
	/* heartbeats go on without Redis: the site stays connected */
	vrt_sleep(4);
	cr_assert(!file_contains(agent.log, "event=disconnected"), "%s", read_text(agent.log));
	/* Redis comes back empty: the proxy claims the site again and delivers */
	redis_start(&redis_proc, &w, port);
	struct vr_redis *r = NULL;
	cr_assert_eq(vr_redis_open(&r, uri), 0, "%s", read_text(redis_proc.log));
	char *key = fmt("%s:tunnel:peer:%s", w.prefix, w.peer);
	const char *get[] = {"GET", key};
	double end = now_s() + 10;
	bool claimed = false;
	while (!claimed && now_s() < end) {
		redisReply *reply = vr_redis_command(r, 2, get);
		claimed = reply && reply->type == REDIS_REPLY_STRING;
		if (reply)
			freeReplyObject(reply);
		vrt_sleep(0.1);
	}
	cr_assert(claimed, "the site was not claimed again:\n%s", read_text(proxy.log));
	char *list = fmt("%s:tunnel:commands:%s", w.prefix, w.peer);
	const char *push[] = {"RPUSH", list, "id=back-1\nname=sync\n"};
	freeReplyObject(vr_redis_command(r, 3, push));
	cr_assert(wait_file_contains(agent.log, "id=back-1", 10), "%s", read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	stop_proc(&redis_proc, SIGTERM, 10);
	vr_redis_close(r);
	free(list);
	free(key);
	free(address);
	free(uri);
}

/* --- tests: certificates ------------------------------------------------------------------ */

Test(tunnel, the_proxy_is_authenticated_before_the_credential_leaves_the_site)
{
	struct world w;
	world_init(&w);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);

	/* a pinned key alone is enough */
	const char *const pin[] = {"--pin", w.pin, NULL};
	agent_start(&agent, &w, "pinned", address, pin);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15), "%s", read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);

	/* a CA the proxy's certificate does not chain to */
	struct world other;
	memset(&other, 0, sizeof other);
	char *other_dir = fmt("%s/other-ca", w.dir);
	static const char *const names[] = {"localhost", "127.0.0.1", NULL};
	make_ca(&other, other_dir, names);
	const char *const wrong_ca[] = {"--ca-file", other.ca, NULL};
	agent_start(&agent, &w, "wrong-ca", address, wrong_ca);
	cr_assert(wait_file_contains(agent.log, "event=certificate_rejected", 15), "%s",
		  read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);

	/* another key's pin */
	const char *const wrong_pin[] = {"--pin", other.pin, NULL};
	agent_start(&agent, &w, "wrong-pin", address, wrong_pin);
	cr_assert(wait_file_contains(agent.log, "matches no pinned key", 15), "%s",
		  read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);

	/* the right CA, but a name the certificate does not carry */
	const char *const wrong_name[] = {"--ca-file", w.ca, "--server-name", "proxy.invalid",
					  NULL};
	agent_start(&agent, &w, "wrong-name", address, wrong_name);
	cr_assert(wait_file_contains(agent.log, "event=certificate_rejected", 15), "%s",
		  read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	/* none of them got as far as a hello */
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	char *log = read_text(proxy.log);
	char *first = strstr(log, "event=site_connected");
	cr_assert_not_null(first, "the pinned agent never reached the proxy:\n%s", log);
	cr_assert_null(strstr(first + 1, "event=site_connected"),
		       "a rejected proxy still received a hello:\n%s", log);
	cr_assert_null(strstr(log, "event=refused"), "%s", log);
	free(log);
	free(other_dir);
	free(address);
}

Test(tunnel, a_renewed_certificate_with_the_same_key_keeps_the_pin)
{
	struct world w;
	world_init(&w);
	char old_pin[80];
	snprintf(old_pin, sizeof old_pin, "%s", w.pin);
	char *ca_dir = fmt("%s/ca", w.dir);
	char *old_cert = read_text(w.cert);
	static const char *const names[] = {"localhost", "127.0.0.1", "renewed.example", NULL};
	make_ca(&w, ca_dir, names); /* a new certificate, same CA and key */
	char *new_cert = read_text(w.cert);
	cr_assert_str_neq(old_cert, new_cert, "the certificate was not renewed");
	cr_assert_str_eq(w.pin, old_pin);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	const char *const both[] = {"--ca-file", w.ca, "--pin", old_pin, NULL};
	agent_start(&agent, &w, "site-a", address, both);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15), "%s", read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(old_cert);
	free(new_cert);
	free(ca_dir);
	free(address);
}

static char *serial_hex(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	cr_assert_not_null(bn);
	char *hex = BN_bn2hex(bn);
	char *out = fmt("%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

/* The serial number of the first certificate of a PEM file, in hex. */
static char *file_serial(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x, "no certificate in %s", path);
	char *hex = serial_hex(x);
	X509_free(x);
	return hex;
}

/* A new TLS connection to the proxy, verified against ca: the serial
 * number of the certificate the proxy presents to it. */
static char *seen_serial(unsigned port, const char *ca)
{
	SSL_CTX *ctx = NULL;
	char *error = NULL;
	cr_assert_eq(vr_tls_client_ctx(&ctx, ca, &error), 0, "%s", error);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	SSL *ssl = SSL_new(ctx);
	cr_assert_not_null(ssl);
	cr_assert_eq(SSL_set_fd(ssl, fd), 1);
	cr_assert_eq(vr_tls_client_prepare(ssl, "127.0.0.1", true), 0);
	cr_assert_eq(SSL_connect(ssl), 1, "the handshake failed: %s", vr_tls_error());
	X509 *x = SSL_get1_peer_certificate(ssl);
	cr_assert_not_null(x);
	char *hex = serial_hex(x);
	X509_free(x);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return hex;
}

static size_t count_in(const char *path, const char *needle)
{
	char *text = read_text(path);
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(text);
	return n;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

Test(tunnel, sighup_reloads_the_certificate_for_new_connections_only)
{
	struct world w;
	world_init(&w);
	/* the worker reads nothing for 3 s: the upload spans the reload */
	struct sink sink = {.pause_s = 3, .reply_bytes = 5000, .reply_seed = 77};
	sink_start(&sink);
	route_to(&w, sink.port);
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15), "%s", read_text(agent.log));
	char *old_serial = file_serial(w.cert);
	char *seen = seen_serial(proxy.port, w.ca);
	cr_assert_str_eq(seen, old_serial);
	free(seen);

	/* a data connection made with the old certificate, busy across the reload */
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0, "%s", error);
	struct vr_agent_conn *conn = NULL;
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error), 0,
		     "%s", error ? error : "");
	struct upload up = {.conn = conn, .total = 24 * MIB + 99, .seed = 0x4a9};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, upload_main, &up), 0);
	cr_assert(wait_file_contains(proxy.log, "event=data_connected", 10), "%s",
		  read_text(proxy.log));

	/* renewed: same CA and key, another serial number */
	char *ca_dir = fmt("%s/ca", w.dir);
	static const char *const names[] = {"localhost", "127.0.0.1", "renewed.example", NULL};
	char *good = read_text(w.cert);
	make_ca(&w, ca_dir, names);
	char *new_serial = file_serial(w.cert);
	cr_assert_str_neq(new_serial, old_serial);
	kill(proxy.pid, SIGHUP);
	char *reloaded = fmt("event=tls_reloaded cert=%s serial=%s", w.cert, new_serial);
	cr_assert(wait_file_contains(proxy.log, reloaded, 10), "%s", read_text(proxy.log));
	/* a new connection sees the new certificate; another site's agent
	 * connects with it (the CA's check of the chain and name) */
	seen = seen_serial(proxy.port, w.ca);
	cr_assert_str_eq(seen, new_serial);
	free(seen);
	struct world w2;
	other_site(&w2, &w);
	struct proc second;
	agent_start(&second, &w2, "site-b", address, NULL);
	cr_assert(wait_file_contains(second.log, "event=connected", 15), "%s",
		  read_text(second.log));
	cr_assert_eq(stop_proc(&second, SIGTERM, 10), 0);

	/* the data connection made before carries its bytes to the end */
	unsigned char got[32], want[32];
	uint64_t down = download(conn, got);
	pthread_join(t, NULL);
	cr_assert_eq(up.rc, 0, "the upload failed across the reload");
	sink_join(&sink);
	cr_assert(sink.done);
	cr_assert_eq(sink.received, up.total);
	cr_assert_eq(memcmp(sink.digest, up.digest, 32), 0, "the upload differs");
	expected_digest(want, sink.reply_bytes, sink.reply_seed);
	cr_assert_eq(down, sink.reply_bytes);
	cr_assert_eq(memcmp(got, want, 32), 0, "the download differs");
	vr_agent_conn_close(conn);

	/* a failed reload logs why and keeps the certificate in use */
	write_file(w.cert, "not a certificate\n");
	kill(proxy.pid, SIGHUP);
	cr_assert(wait_file_contains(proxy.log, "event=tls_reload_failed", 10), "%s",
		  read_text(proxy.log));
	cr_assert(file_contains(proxy.log, "cannot read the certificate chain"), "%s",
		  read_text(proxy.log));
	seen = seen_serial(proxy.port, w.ca);
	cr_assert_str_eq(seen, new_serial);
	free(seen);
	/* a certificate of another key */
	char *script = fmt("%s/contrib/tunnel-test-ca", srcdir());
	char *argv[] = {(char *)"/bin/bash", script, (char *)"--cert-name",
			(char *)"other",     ca_dir, (char *)"localhost",
			(char *)"127.0.0.1", NULL};
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "%s", out);
	char *other_pem = fmt("%s/other.pem", ca_dir);
	char *other = read_text(other_pem);
	write_file(w.cert, other);
	kill(proxy.pid, SIGHUP);
	double end = now_s() + 10;
	while (count_in(proxy.log, "event=tls_reload_failed") < 2 && now_s() < end)
		vrt_sleep(0.05);
	cr_assert_eq(count_in(proxy.log, "event=tls_reload_failed"), 2, "%s",
		     read_text(proxy.log));
	seen = seen_serial(proxy.port, w.ca);
	cr_assert_str_eq(seen, new_serial);
	free(seen);
	write_file(w.cert, good);

	/* the control connection made before the reload still works, unbroken */
	push_command(&w, "cmd-1", "sync", true);
	cr_assert(wait_file_contains(agent.log, "event=command id=cmd-1 name=sync", 10), "%s",
		  read_text(agent.log));
	cr_assert(wait_commands(&w, 0, 10), "the command was not acknowledged");
	cr_assert_eq(count_in(agent.log, "event=connected"), 1, "%s", read_text(agent.log));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(other);
	free(other_pem);
	free(out);
	free(script);
	free(reloaded);
	free(good);
	free(new_serial);
	free(old_serial);
	free(ca_dir);
	free(address);
}

/* --- tests: data connections -------------------------------------------------------------- */

Test(tunnel, a_data_connection_carries_64_mib_byte_exact_both_ways)
{
	struct world w;
	world_init(&w);
	struct sink sink = {.reply_bytes = 8 * MIB + 12345, .reply_seed = 0x5eed2};
	sink_start(&sink);
	route_to(&w, sink.port);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0, "%s", error);
	struct vr_agent_conn *conn = NULL;
	int rc = vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error);
	cr_assert_eq(rc, 0, "%s", error ? error : "");
	struct upload up = {.conn = conn, .total = 64 * MIB + 777, .seed = 0x5eed1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, upload_main, &up), 0);
	unsigned char got[32];
	uint64_t down = download(conn, got);
	pthread_join(t, NULL);
	cr_assert_eq(up.rc, 0, "the upload failed");
	sink_join(&sink);
	cr_assert(sink.done);
	/* what the worker got: the preamble, then exactly the agent's bytes */
	char *preamble = fmt("VRCLOUD-DATA 1 peer=%s org=%s vdc=%s site=%s replication=%s proxy=p1",
			     w.peer, VRT_ORG_A, w.vdc, w.site, w.repl);
	cr_assert_str_eq(sink.preamble, preamble);
	cr_assert_eq(sink.received, up.total);
	cr_assert_eq(memcmp(sink.digest, up.digest, 32), 0, "the upload differs");
	/* and what the agent got back */
	unsigned char want[32];
	expected_digest(want, sink.reply_bytes, sink.reply_seed);
	cr_assert_eq(down, sink.reply_bytes);
	cr_assert_eq(memcmp(got, want, 32), 0, "the download differs");
	vr_agent_conn_close(conn);
	cr_assert(wait_file_contains(proxy.log, "reason=finished", 5), "%s", read_text(proxy.log));
	char *bytes = fmt("bytes_up=%zu", up.total);
	cr_assert(file_contains(proxy.log, bytes), "%s", read_text(proxy.log));
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(bytes);
	free(preamble);
	free(address);
}

Test(tunnel, sigterm_lets_a_data_connection_finish)
{
	struct world w;
	world_init(&w);
	struct sink sink = {.pause_s = 1, .reply_bytes = 1000, .reply_seed = 3};
	sink_start(&sink);
	route_to(&w, sink.port);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *conn = NULL;
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error), 0, "%s",
		     error ? error : "");
	struct upload up = {.conn = conn, .total = 24 * MIB, .seed = 9};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, upload_main, &up), 0);
	vrt_sleep(0.3);
	kill(proxy.pid, SIGTERM);
	unsigned char got[32];
	uint64_t down = download(conn, got);
	pthread_join(t, NULL);
	cr_assert_eq(up.rc, 0);
	sink_join(&sink);
	cr_assert_eq(sink.received, up.total);
	cr_assert_eq(memcmp(sink.digest, up.digest, 32), 0);
	cr_assert_eq(down, 1000);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	char *log = read_text(proxy.log);
	char *stopping = strstr(log, "event=stopping"), *finished = strstr(log, "reason=finished");
	cr_assert(stopping && finished && stopping < finished, "%s", log);
	/* no new connection is taken meanwhile */
	free(log);
	vr_agent_conn_close(conn);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(address);
}

Test(tunnel, a_worker_that_does_not_read_holds_the_agent_back)
{
	struct world w;
	world_init(&w);
	struct sink sink = {.pause_s = 3};
	sink_start(&sink);
	route_to(&w, sink.port);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL);
	char *address = address_of(&proxy);
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *conn = NULL;
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error), 0, "%s",
		     error ? error : "");
	struct upload up = {.conn = conn, .total = 96 * MIB, .seed = 0xfeed};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, upload_main, &up), 0);
	/* while the worker reads nothing, only the socket buffers and the
	 * proxy's bounded buffers fill, then the agent's writes wait */
	vrt_sleep(2.0);
	size_t early = atomic_load(&up.written);
	vrt_sleep(0.5);
	size_t later = atomic_load(&up.written);
	cr_assert_lt(early, 32 * MIB,
		     "the proxy took %zu MiB from the agent while the worker "
		     "read nothing",
		     early / MIB);
	cr_assert_lt(later - early, 4 * MIB, "the agent still moves while the worker is stuck");
	pthread_join(t, NULL);
	cr_assert_eq(up.rc, 0);
	unsigned char got[32];
	cr_assert_eq(download(conn, got), 0);
	sink_join(&sink);
	cr_assert_eq(sink.received, up.total);
	cr_assert_eq(memcmp(sink.digest, up.digest, 32), 0, "the upload differs");
	vr_agent_conn_close(conn);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(address);
}

Test(tunnel, data_connections_are_refused_for_bad_credentials_absent_workers_and_other_sites)
{
	struct world w;
	world_init(&w);
	struct proc proxy;
	/* the replication's worker: a closed port; routes are not kept, as the
	 * test changes them */
	static const char *const no_cache[] = {"--route-cache", "0", NULL};
	struct proxy_opts o = {.extra = no_cache};
	proxy_start(&proxy, &w, "p1", &o);
	char *address = address_of(&proxy);
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *conn = NULL;
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "worker:", 7) == 0, "%s", error);
	free(error);
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, "wrong-credential", w.repl, &error),
		     VR_EFORBIDDEN);
	cr_assert(strncmp(error, "credential:", 11) == 0, "%s", error);
	free(error);
	cr_assert_null(conn);
	/* another site's replication, served by a worker that listens: refused
	 * before any byte reaches it, and so is a replication nobody has */
	struct world other;
	other_site(&other, &w);
	char *theirs = vrt_new_replication(other.vdc, "their-vm", true, NULL);
	vrt_db_exec("UPDATE replications SET replica_server_id = $2::uuid WHERE id = $1::uuid",
		    theirs, w.server);
	struct sink sink = {0};
	sink_start(&sink);
	route_to(&w, sink.port);
	const char *refused[] = {theirs, "40000000-0000-4000-8000-00000000dead"};
	for (size_t i = 0; i < N(refused); i++) {
		cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, refused[i],
						&error),
			     VR_ECONFLICT, "%s", refused[i]);
		cr_assert(strncmp(error, "replication:", 12) == 0, "%s", error);
		free(error);
	}
	cr_assert(file_contains(proxy.log, "event=replication_refused"), "%s", read_text(proxy.log));
	/* their own credential reaches it */
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, other.credential, theirs, &error), 0,
		     "%s", error ? error : "");
	cr_assert_eq(vr_agent_conn_finish(conn), 0);
	unsigned char digest[32];
	cr_assert_eq(download(conn, digest), 0);
	vr_agent_conn_close(conn);
	conn = NULL;
	sink_join(&sink);
	char *preamble = fmt("VRCLOUD-DATA 1 peer=%s org=%s vdc=%s site=", other.peer, VRT_ORG_A,
			     other.vdc);
	cr_assert(strncmp(sink.preamble, preamble, strlen(preamble)) == 0, "%s", sink.preamble);
	cr_assert_eq(sink.received, 0);
	/* a replication without a replica server */
	vrt_db_exec("UPDATE replications SET replica_server_id = NULL WHERE id = $1::uuid", w.repl);
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "worker:", 7) == 0, "%s", error);
	free(error);
	free(preamble);
	free(theirs);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(address);
}

/* --- tests: reverse connections ------------------------------------------------------ */

/* Read one frame from a plain socket (15 s at most); its payload is
 * NUL-terminated. Returns the frame's type, 0 when none came whole. */
static unsigned read_plain_frame(int fd, char *payload, size_t cap)
{
	struct timeval tv = {15, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	unsigned char header[4];
	size_t n = 0;
	while (n < 4) {
		ssize_t r = read(fd, header + n, 4 - n);
		if (r <= 0)
			return 0;
		n += (size_t)r;
	}
	size_t len = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
	cr_assert_lt(len, cap);
	for (n = 0; n < len;) {
		ssize_t r = read(fd, payload + n, len - n);
		if (r <= 0)
			return 0;
		n += (size_t)r;
	}
	payload[len] = '\0';
	return header[0];
}

/* A worker's request on a proxy's internal port; returns the socket. */
static int worker_request(unsigned internal_port, const char *peer, const char *text_override)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)internal_port),
				   .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	char *payload =
		text_override
			? strdup(text_override)
			: fmt("version=1\npeer=%s\nreplication=" REPL "\nworker=worker-9\n", peer);
	size_t len = strlen(payload);
	unsigned char header[4] = {VR_FRAME_REQUEST, 0, (unsigned char)(len >> 8),
				   (unsigned char)len};
	cr_assert_eq(write(fd, header, 4), 4);
	cr_assert_eq(write(fd, payload, len), (ssize_t)len);
	free(payload);
	return fd;
}

/* This process as a site's agent: a control connection through the
 * library that beats and waits for a CONNECT frame. */
static void await_connect(struct vr_agent_conn *ctl, struct vr_tunnel_connect *out)
{
	double end = now_s() + 15, next_beat = 0;
	while (now_s() < end) {
		if (now_s() >= next_beat) {
			cr_assert_eq(
				vr_agent_conn_send(ctl, VR_FRAME_HEARTBEAT, "seq=1\n", 6, 5000), 0);
			next_beat = now_s() + 0.5;
		}
		struct vr_tunnel_frame frame;
		cr_assert_eq(vr_agent_conn_recv(ctl, &frame, 200, -1), 0,
			     "control connection lost");
		if (frame.type != VR_FRAME_CONNECT)
			continue;
		const char *reason = NULL;
		cr_assert_eq(vr_tunnel_connect_parse(out, frame.payload, frame.len, false, &reason),
			     0, "%s", reason);
		return;
	}
	cr_assert_fail("no CONNECT frame came");
}

static struct vr_agent_conn *control_open(struct vr_agent_tls *tls, const struct world *w,
					  const char *address)
{
	struct vr_tunnel_hello hello;
	memset(&hello, 0, sizeof hello);
	hello.version = VR_TUNNEL_VERSION;
	hello.kind = VR_TUNNEL_CONTROL;
	snprintf(hello.credential, sizeof hello.credential, "%s", w->credential);
	struct vr_agent_conn *ctl = NULL;
	struct vr_tunnel_fields welcome;
	char *error = NULL;
	cr_assert_eq(vr_agent_conn_open(&ctl, &welcome, tls, address, &hello, 5000, &error), 0,
		     "%s", error ? error : "");
	vr_tunnel_fields_free(&welcome);
	return ctl;
}

struct plain_upload {
	int fd;
	size_t total;
	uint64_t seed;
	unsigned char sent_digest[32];
	unsigned char got_digest[32];
	uint64_t got;
};

/* The worker's side: send total bytes, end its direction, read the rest. */
static void *plain_worker_main(void *arg)
{
	struct plain_upload *u = arg;
	unsigned char *buf = malloc(MIB);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t state = u->seed;
	for (size_t done = 0; done < u->total;) {
		size_t len = u->total - done < MIB ? u->total - done : MIB;
		fill_random(buf, len, &state);
		EVP_DigestUpdate(md, buf, len);
		for (size_t off = 0; off < len;) {
			ssize_t n = write(u->fd, buf + off, len - off);
			if (n <= 0)
				goto out;
			off += (size_t)n;
		}
		done += len;
	}
	EVP_DigestFinal_ex(md, u->sent_digest, NULL);
	shutdown(u->fd, SHUT_WR);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	ssize_t n;
	while ((n = read(u->fd, buf, MIB)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		u->got += (uint64_t)n;
	}
	EVP_DigestFinal_ex(md, u->got_digest, NULL);
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return NULL;
}

Test(tunnel, a_worker_reaches_a_site_through_a_reverse_connection_stitched_by_its_proxy)
{
	struct world w, w2;
	world_init(&w);
	other_site(&w2, &w);
	/* p1 takes the worker's request; the site's control connection is on p2 */
	static const char *const own_address[] = {"--reverse-address", "127.0.0.1:0", NULL};
	struct proxy_opts o = {.extra = own_address};
	struct proc p1, p2;
	proxy_start(&p1, &w, "p1", &o);
	proxy_start(&p2, &w, "p2", &o);
	char *a1 = address_of(&p1), *a2 = address_of(&p2);
	struct vr_agent_config config;
	data_config(&config, &w, a2);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *ctl = control_open(&tls, &w, a2);

	int worker = worker_request(p1.internal_port, w.peer, NULL);
	struct vr_tunnel_connect connect;
	await_connect(ctl, &connect);
	cr_assert_str_eq(connect.address, a1, "the agent is sent to the proxy of the request");
	cr_assert_str_eq(connect.replication, REPL);
	cr_assert_eq(strlen(connect.cookie), VR_TUNNEL_COOKIE_LEN);

	/* another site's credential cannot use the cookie */
	struct vr_agent_conn *rev = NULL;
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w2.credential, connect.address,
					   connect.cookie, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "cookie:", 7) == 0, "%s", error);
	free(error);
	/* the site's own can */
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   connect.cookie, &error),
		     0, "%s", error ? error : "");
	char payload[4096];
	cr_assert_eq(read_plain_frame(worker, payload, sizeof payload), VR_FRAME_WELCOME);
	char *expect = fmt("proxy=p1\npeer=%s\norg=%s\nvdc=%s\nsite=%s\nreplication=" REPL
			   "\npurpose=failback\n",
			   w.peer, VRT_ORG_A, w.vdc, w.site);
	cr_assert_str_eq(payload, expect);
	free(expect);

	/* 16 MiB worker -> site, then 4 MiB back, each compared by SHA-256 */
	struct plain_upload up = {.fd = worker, .total = 16 * MIB + 5, .seed = 0xabc};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, plain_worker_main, &up), 0);
	unsigned char got[32];
	cr_assert_eq(download(rev, got), up.total);
	struct upload back = {.conn = rev, .total = 4 * MIB + 3, .seed = 0xdef};
	upload_main(&back);
	cr_assert_eq(back.rc, 0);
	pthread_join(t, NULL);
	cr_assert_eq(memcmp(got, up.sent_digest, 32), 0, "worker -> site differs");
	cr_assert_eq(up.got, back.total);
	cr_assert_eq(memcmp(up.got_digest, back.digest, 32), 0, "site -> worker differs");
	vr_agent_conn_close(rev);
	close(worker);
	cr_assert(wait_file_contains(p1.log, "event=reverse_connected", 5));
	cr_assert(wait_file_contains(p1.log, "kind=reverse", 5), "%s", read_text(p1.log));
	cr_assert(file_contains(p2.log, "event=connect_sent"));

	/* a cookie works once */
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   connect.cookie, &error),
		     VR_ECONFLICT);
	free(error);
	vr_agent_conn_close(ctl);
	cr_assert_eq(stop_proc(&p1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	cr_assert(!file_contains(p1.log, connect.cookie), "a cookie was logged");
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(a1);
	free(a2);
}

Test(tunnel, reverse_requests_that_cannot_be_met_are_refused)
{
	struct world w;
	world_init(&w);
	char *config_path = fmt("%s/proxy.ini", w.dir);
	FILE *f = fopen(config_path, "w");
	cr_assert_not_null(f);
	fputs("[proxy]\nreverse_timeout = 2\n", f);
	fclose(f);
	const char *const extra[] = {"--config", config_path, NULL};
	struct proxy_opts o = {.extra = extra};
	struct proc proxy, agent;
	proxy_start(&proxy, &w, "p1", &o);
	char payload[4096];

	/* no proxy holds the site: refused at once */
	double start = now_s();
	int fd = worker_request(proxy.internal_port, w.peer, NULL);
	cr_assert_eq(read_plain_frame(fd, payload, sizeof payload), VR_FRAME_REFUSE);
	cr_assert_not_null(strstr(payload, "reason=unreachable\n"), "%s", payload);
	cr_assert_lt(now_s() - start, 1.5);
	close(fd);

	/* a malformed request */
	fd = worker_request(proxy.internal_port, NULL, "version=1\npeer=nope\n");
	cr_assert_eq(read_plain_frame(fd, payload, sizeof payload), VR_FRAME_REFUSE);
	cr_assert_not_null(strstr(payload, "reason=protocol\n"), "%s", payload);
	close(fd);

	/* the site is connected, but its agent takes no failback data: the
	 * request times out */
	char *address = address_of(&proxy);
	agent_start(&agent, &w, "site-a", address, NULL);
	cr_assert(wait_file_contains(agent.log, "event=connected", 15));
	start = now_s();
	fd = worker_request(proxy.internal_port, w.peer, NULL);
	cr_assert_eq(read_plain_frame(fd, payload, sizeof payload), VR_FRAME_REFUSE);
	cr_assert_not_null(strstr(payload, "reason=unreachable\n"), "%s", payload);
	cr_assert_geq(now_s() - start, 1.5);
	close(fd);
	cr_assert(wait_file_contains(agent.log, "event=reverse_not_taken", 5), "%s",
		  read_text(agent.log));
	cr_assert(alive(&agent));
	cr_assert(!file_contains(agent.log, "event=disconnected"));
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(address);
	free(config_path);
}

/* --- tests: hostile clients ------------------------------------------------------------------ */

/* A raw TLS connection to the proxy (no certificate check: a hostile
 * client does none). */
struct raw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static void raw_open(struct raw *r, unsigned port, bool tls)
{
	memset(r, 0, sizeof *r);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(connect(r->fd, (struct sockaddr *)&addr, sizeof addr), 0);
	struct timeval tv = {5, 0};
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!tls)
		return;
	r->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
	r->ssl = SSL_new(r->ctx);
	SSL_set_fd(r->ssl, r->fd);
	cr_assert_eq(SSL_connect(r->ssl), 1, "TLS with the proxy failed");
}

static void raw_send(struct raw *r, const void *data, size_t len)
{
	if (r->ssl)
		SSL_write(r->ssl, data, (int)len);
	else
		cr_assert_eq(write(r->fd, data, len), (ssize_t)len);
}

/* Everything the proxy sends until it closes (or 5 s pass). */
static size_t raw_read_all(struct raw *r, unsigned char *buf, size_t cap, bool *closed_out)
{
	size_t n = 0;
	*closed_out = false;
	for (;;) {
		int k = r->ssl ? SSL_read(r->ssl, buf + n, (int)(cap - n))
			       : (int)read(r->fd, buf + n, cap - n);
		if (k > 0) {
			n += (size_t)k;
			if (n == cap)
				return n;
			continue;
		}
		if (r->ssl) {
			int e = SSL_get_error(r->ssl, k);
			*closed_out = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ||
				      e == SSL_ERROR_SSL;
			if (e == SSL_ERROR_SYSCALL && errno == EAGAIN)
				*closed_out = false;
		} else {
			/* unread bytes make the close a reset */
			*closed_out = k == 0 || (k < 0 && errno == ECONNRESET);
		}
		return n;
	}
}

static void raw_close(struct raw *r)
{
	if (r->ssl)
		SSL_free(r->ssl);
	if (r->ctx)
		SSL_CTX_free(r->ctx);
	close(r->fd);
}

/* A REFUSE frame whose reason is reason, and then the close. */
static void assert_refused(struct raw *r, const char *reason)
{
	unsigned char buf[4096];
	bool closed;
	size_t n = raw_read_all(r, buf, sizeof buf - 1, &closed);
	buf[n] = '\0';
	cr_assert_geq(n, 4, "no answer before the close");
	cr_assert_eq(buf[0], VR_FRAME_REFUSE, "answered with frame type %u", buf[0]);
	char *want = fmt("reason=%s\n", reason);
	cr_assert_not_null(strstr((char *)buf + 4, want), "%s", buf + 4);
	cr_assert(closed, "the proxy did not close after refusing");
	free(want);
}

Test(tunnel, hostile_clients_are_refused_or_cut_off)
{
	struct world w;
	world_init(&w);
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", NULL);
	struct raw r;

	/* not TLS at all */
	raw_open(&r, proxy.port, false);
	raw_send(&r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	unsigned char buf[256];
	bool closed;
	raw_read_all(&r, buf, sizeof buf, &closed);
	cr_assert(closed, "a plain HTTP client was not cut off");
	raw_close(&r);

	/* an unknown frame type first */
	raw_open(&r, proxy.port, true);
	raw_send(&r, "\x09\x00\x00\x00", 4);
	assert_refused(&r, "protocol");
	raw_close(&r);

	/* an oversized frame */
	raw_open(&r, proxy.port, true);
	raw_send(&r, "\x01\x7f\xff\xff", 4);
	assert_refused(&r, "protocol");
	raw_close(&r);

	/* a frame other than a hello first */
	raw_open(&r, proxy.port, true);
	raw_send(&r, "\x04\x00\x00\x00", 4);
	assert_refused(&r, "protocol");
	raw_close(&r);

	/* a hello of another version, one of an unknown kind, a reverse hello */
	static const char *const hellos[] = {
		"version=2\nkind=control\ncredential=x\n",
		"version=1\nkind=shell\ncredential=x\n",
		"version=1\nkind=control\n",
	};
	for (size_t i = 0; i < N(hellos); i++) {
		unsigned char frame[256];
		size_t len = strlen(hellos[i]);
		frame[0] = VR_FRAME_HELLO;
		frame[1] = 0;
		frame[2] = 0;
		frame[3] = (unsigned char)len;
		memcpy(frame + 4, hellos[i], len);
		raw_open(&r, proxy.port, true);
		raw_send(&r, frame, 4 + len);
		assert_refused(&r, "protocol");
		raw_close(&r);
	}
	{
		/* a reverse hello of a real site with a cookie nobody made */
		char *hello =
			fmt("version=1\nkind=reverse\ncredential=%s\ncookie=abc\n", w.credential);
		unsigned char frame[256] = {VR_FRAME_HELLO, 0, 0, (unsigned char)strlen(hello)};
		memcpy(frame + 4, hello, strlen(hello));
		raw_open(&r, proxy.port, true);
		raw_send(&r, frame, 4 + strlen(hello));
		assert_refused(&r, "cookie");
		raw_close(&r);
		free(hello);
	}

	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	cr_assert(file_contains(proxy.log, "reason=protocol"));
	cr_assert(!file_contains(proxy.log, "event=site_connected"));
}

Test(tunnel, a_silent_client_is_dropped_after_the_handshake_timeout)
{
	struct world w;
	world_init(&w);
	char *config = fmt("%s/proxy.ini", w.dir);
	FILE *f = fopen(config, "w");
	cr_assert_not_null(f);
	fputs("[proxy]\nhandshake_timeout = 1\n", f);
	fclose(f);
	const char *const extra[] = {"--config", config, NULL};
	struct proxy_opts o = {.extra = extra};
	struct proc proxy;
	proxy_start(&proxy, &w, "p1", &o);
	struct raw silent_tcp, silent_tls;
	raw_open(&silent_tcp, proxy.port, false);
	raw_open(&silent_tls, proxy.port, true);
	double start = now_s();
	unsigned char buf[64];
	bool closed = false;
	raw_read_all(&silent_tls, buf, sizeof buf, &closed);
	cr_assert(closed, "a TLS client that sends no hello was kept");
	raw_read_all(&silent_tcp, buf, sizeof buf, &closed);
	cr_assert(closed, "a TCP client that never starts TLS was kept");
	cr_assert_lt(now_s() - start, 4.0);
	raw_close(&silent_tcp);
	raw_close(&silent_tls);
	cr_assert_eq(stop_proc(&proxy, SIGTERM, 10), 0);
	free(config);
}

/* --- tests: the daemons' command lines ---------------------------------------------------------
 */

static int run_status(const char *binary, const char *const *args)
{
	char *exe = fmt("%s/%s", builddir(), binary);
	char *argv[16] = {exe};
	size_t n = 1;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	int status;
	free(run_capture(argv, &status));
	free(exe);
	return status;
}

Test(tunnel, the_daemons_answer_help_version_and_bad_settings_with_their_exit_codes)
{
	struct world w;
	world_init(&w);
	static const char *const help[] = {"--help", NULL};
	static const char *const version[] = {"--version", NULL};
	static const char *const bogus[] = {"--bogus", NULL};
	static const char *const extra_arg[] = {"pair", NULL};
	cr_assert_eq(run_status("vrcloud-proxy", help), 0);
	cr_assert_eq(run_status("vrcloud-proxy", version), 0);
	cr_assert_eq(run_status("vrcloud-proxy", bogus), 2);
	cr_assert_eq(run_status("vrcloud-agent", help), 0);
	cr_assert_eq(run_status("vrcloud-agent", version), 0);
	cr_assert_eq(run_status("vrcloud-agent", bogus), 2);
	cr_assert_eq(run_status("vrcloud-agent", extra_arg), 2);
	/* settings that cannot work */
	const char *const no_cert[] = {"--token-file", w.token_file, NULL};
	cr_assert_eq(run_status("vrcloud-proxy", no_cert), 3);
	const char *const short_ttl[] = {"--cert",
					 w.cert,
					 "--key",
					 w.key,
					 "--token-file",
					 w.token_file,
					 "--heartbeat-interval",
					 "10",
					 "--registry-ttl",
					 "20",
					 NULL};
	cr_assert_eq(run_status("vrcloud-proxy", short_ttl), 3);
	const char *const missing_cert[] = {"--cert",	"/nonexistent.pem", "--key",
					    w.key,	"--token-file",	    w.token_file,
					    "--listen", "127.0.0.1:0",	    NULL};
	cr_assert_eq(run_status("vrcloud-proxy", missing_cert), 3);
	const char *const unverified[] = {"--proxy", "127.0.0.1:1", "--credential-file",
					  w.cred_file, NULL};
	cr_assert_eq(run_status("vrcloud-agent", unverified), 3);
	const char *const bad_pin[] = {
		"--proxy", "127.0.0.1:1", "--credential-file", w.cred_file, "--pin", "abcd", NULL};
	cr_assert_eq(run_status("vrcloud-agent", bad_pin), 3);
	const char *const bad_proxy[] = {
		"--proxy", "nowhere", "--credential-file", w.cred_file, "--ca-file", w.ca, NULL};
	cr_assert_eq(run_status("vrcloud-agent", bad_proxy), 3);
	const char *const no_file[] = {
		"--proxy", "127.0.0.1:1", "--credential-file", "/nonexistent", "--ca-file",
		w.ca,	   NULL};
	cr_assert_eq(run_status("vrcloud-agent", no_file), 3);
}

/* --- tests: the internal route ------------------------------------------------------------------
 */

static struct vrt_resp verify_call(const char *bearer, const char *body)
{
	const char *headers[] = {"Content-Type: application/vnd.vrcloud.internal+xml", NULL};
	struct vrt_call call = {.method = "POST",
				.path = "/api/internal/sites/verify",
				.bearer = bearer,
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	return r;
}

Test(tunnel, the_verify_route_names_the_site_of_a_credential_to_proxies_only)
{
	struct world w;
	world_init(&w);
	char *proxy_token = read_text(w.token_file);
	proxy_token[strcspn(proxy_token, "\n")] = '\0';
	char *doc = fmt("<SiteVerify xmlns=\"" VRT_NS_INTERNAL "\"><Credential>%s</Credential>"
			"</SiteVerify>",
			w.credential);
	char *before = vrt_db_fingerprint();
	struct vrt_resp r = verify_call(proxy_token, doc);
	cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
	vrt_assert_valid(&r, "Site");
	cr_assert(strncmp(vrt_header(&r, "Content-Type"), "application/vnd.vrcloud.internal+xml",
			  36) == 0);
	char *peer = vrt_xpath_str(r.body, "string(/vi:Site/vi:PeerId)");
	char *org = vrt_xpath_str(r.body, "string(/vi:Site/vi:OrgId)");
	char *vdc = vrt_xpath_str(r.body, "string(/vi:Site/vi:VdcId)");
	char *site = vrt_xpath_str(r.body, "string(/vi:Site/vi:SiteUuid)");
	cr_assert_str_eq(peer, w.peer);
	cr_assert_str_eq(org, VRT_ORG_A);
	cr_assert_str_eq(vdc, w.vdc);
	cr_assert_str_eq(site, w.site);
	cr_assert_null(strstr(r.body, w.credential));
	vrt_resp_free(&r);

	/* a worker's credential may not ask */
	r = verify_call(vrt_service_token(VRT_SERVICE), doc);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "worker token");
	vrt_resp_free(&r);
	/* nor a tenant */
	const char *headers[] = {"Content-Type: application/vnd.vrcloud.internal+xml", NULL};
	struct vrt_call tenant = {.method = "POST",
				  .path = "/api/internal/sites/verify",
				  .token = vrt_token(VRT_ADMIN_A),
				  .headers = headers,
				  .body = doc,
				  .body_len = -1};
	cr_assert_eq(vrt_call(&tenant, &r), 0);
	cr_assert_eq(r.status, 403, "%ld", r.status);
	vrt_resp_free(&r);
	/* unknown credentials, and a credential no proxy would send */
	static const char *const wrong[] = {"unknown-credential", "a b", "x"};
	for (size_t i = 0; i < N(wrong); i++) {
		char *bad = fmt("<SiteVerify xmlns=\"" VRT_NS_INTERNAL "\"><Credential>%s"
				"</Credential></SiteVerify>",
				wrong[i]);
		r = verify_call(proxy_token, bad);
		vrt_assert_error(&r, 403, "SITE_CREDENTIAL_INVALID", wrong[i]);
		cr_assert_null(strstr(r.body, wrong[i][0] == 'x' ? "<Credential>" : wrong[i]));
		vrt_resp_free(&r);
		free(bad);
	}
	/* documents the schema refuses */
	static const char *const malformed[] = {
		"<SiteVerify xmlns=\"" VRT_NS_INTERNAL "\"/>",
		"<SiteVerify xmlns=\"" VRT_NS_INTERNAL "\"><Credential></Credential></SiteVerify>",
		"<Site xmlns=\"" VRT_NS_INTERNAL "\"/>",
		"<SiteVerify><Credential>x</Credential></SiteVerify>",
		"not xml",
	};
	for (size_t i = 0; i < N(malformed); i++) {
		r = verify_call(proxy_token, malformed[i]);
		cr_assert_eq(r.status, 400, "%s: %ld %s", malformed[i], r.status, r.body);
		vrt_resp_free(&r);
	}
	/* a revoked peer's credential names nothing */
	vrt_db_exec("UPDATE peers SET revoked_at = now() WHERE id = $1::uuid", w.peer);
	char *revoked = vrt_db_fingerprint();
	r = verify_call(proxy_token, doc);
	vrt_assert_error(&r, 403, "SITE_CREDENTIAL_INVALID", "revoked peer");
	vrt_resp_free(&r);
	char *after = vrt_db_fingerprint();
	cr_assert_str_eq(revoked, after, "verifying changed the database");
	cr_assert_str_neq(before, revoked);
	free(before);
	free(revoked);
	free(after);
	free(peer);
	free(org);
	free(vdc);
	free(site);
	free(doc);
	free(proxy_token);
}

/* --- tests: long streams through haproxy, probes, cookies -------------------------------- */

#define GIB ((size_t)1 << 30)

/* haproxy in TCP mode in front of the proxies, as in production; it
 * checks them every 300 ms and sends a connection to another when one
 * is down. */
static void haproxy_start(struct proc *h, const struct world *w, const struct proc *const *proxies,
			  size_t n)
{
	memset(h, 0, sizeof *h);
	snprintf(h->name, sizeof h->name, "haproxy");
	snprintf(h->log, sizeof h->log, "%s/haproxy.log", w->dir);
	h->port = vrt_closed_port();
	char *cfg = fmt("%s/haproxy.cfg", w->dir);
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"global\n  maxconn 256\n"
		"defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n"
		"  timeout server 60s\n  retries 3\n  option redispatch\n"
		"listen tunnel\n  bind 127.0.0.1:%u\n  balance roundrobin\n",
		h->port);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  server %s 127.0.0.1:%u check inter 300ms fall 2 rise 1\n",
			proxies[i]->name, proxies[i]->port);
	fclose(f);
	const char *argv[] = {"haproxy", "-db", "-q", "-f", cfg, NULL};
	spawn(h, argv);
	double end = now_s() + 10;
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in addr = {.sin_family = AF_INET,
					   .sin_port = htons((uint16_t)h->port),
					   .sin_addr.s_addr = htonl(0x7f000001)};
		bool up = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
		close(fd);
		if (up)
			break;
		cr_assert(alive(h) && now_s() < end, "haproxy did not start (is it installed?)");
		vrt_sleep(0.05);
	}
	free(cfg);
}

/* Daemons started while this is on keep no AddressSanitizer quarantine
 * (in a sanitized build it holds up to 256 MiB of freed memory, which
 * would hide what the daemons themselves keep); other checks stay. */
static void sanitizer_quarantine_off(bool off)
{
	static char *saved;
	static bool had;
	if (off) {
		const char *old = getenv("ASAN_OPTIONS");
		had = old != NULL;
		saved = old ? strdup(old) : NULL;
		char *lean = fmt("%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
				 old ? old : "", old && old[0] ? ":" : "");
		setenv("ASAN_OPTIONS", lean, 1);
		free(lean);
	} else {
		if (had)
			setenv("ASAN_OPTIONS", saved, 1);
		else
			unsetenv("ASAN_OPTIONS");
		free(saved);
		saved = NULL;
	}
}

/* Resident memory of pid in KiB, 0 when it is gone. */
static long rss_kib(pid_t pid)
{
	char *path = fmt("/proc/%ld/status", (long)pid);
	char *text = read_text(path);
	free(path);
	const char *v = strstr(text, "VmRSS:");
	long kib = v ? atol(v + 6) : 0;
	free(text);
	return kib;
}

/* The largest resident size of some processes while a transfer runs. */
struct rss_watch {
	pid_t pids[4];
	size_t n;
	long start_kib[4], max_kib[4];
	atomic_bool stop;
	pthread_t thread;
};

static void *rss_main(void *arg)
{
	struct rss_watch *r = arg;
	while (!atomic_load(&r->stop)) {
		for (size_t i = 0; i < r->n; i++) {
			long kib = rss_kib(r->pids[i]);
			if (kib > r->max_kib[i])
				r->max_kib[i] = kib;
		}
		vrt_sleep(0.05);
	}
	return NULL;
}

static void rss_start(struct rss_watch *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->start_kib[i] = r->max_kib[i] = rss_kib(r->pids[i]);
	atomic_init(&r->stop, false);
	cr_assert_eq(pthread_create(&r->thread, NULL, rss_main, r), 0);
}

/* Stop watching; each process grew by less than limit_mib and stayed
 * under max_mib. */
static void rss_check(struct rss_watch *r, long limit_mib, long max_mib)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < r->n; i++)
		cr_log_info("pid %ld: %ld KiB resident before, %ld KiB at most during the transfer",
			    (long)r->pids[i], r->start_kib[i], r->max_kib[i]);
	for (size_t i = 0; i < r->n; i++)
		cr_assert_lt(r->max_kib[i] - r->start_kib[i], limit_mib * 1024,
			     "pid %ld grew from %ld KiB to %ld KiB during the transfer",
			     (long)r->pids[i], r->start_kib[i], r->max_kib[i]);
	for (size_t i = 0; i < r->n; i++)
		cr_assert_lt(r->max_kib[i], max_mib * 1024, "pid %ld reached %ld KiB",
			     (long)r->pids[i], r->max_kib[i]);
}

/* Wait until the registry names proxy for w's site. */
static bool wait_registry(const struct world *w, const char *proxy, double timeout_s)
{
	double end = now_s() + timeout_s;
	char *prefix = fmt("%s ", proxy);
	bool found = false;
	while (!found && now_s() < end) {
		char *v = registry_value(w);
		found = v && strncmp(v, prefix, strlen(prefix)) == 0;
		free(v);
		if (!found)
			vrt_sleep(0.05);
	}
	free(prefix);
	return found;
}

/* `vrcloudctl tunnel-probe` started in the background; its stdout and
 * stderr go to out_path. */
static void probe_spawn(struct proc *c, const struct world *w, const char *peer,
			unsigned internal_port, const char *bytes, const char *out_path)
{
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "tunnel-probe");
	snprintf(c->log, sizeof c->log, "%s", out_path);
	char *exe = fmt("%s/vrcloudctl", builddir());
	char *proxy = fmt("127.0.0.1:%u", internal_port);
	c->pid = fork();
	cr_assert_geq(c->pid, 0);
	if (c->pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(exe, exe, "--database", vrt_env("VRT_DB_URI"), "tunnel-probe", peer,
		      "--proxy", proxy, "--bytes", bytes, "--timeout", "30", (char *)NULL);
		_exit(127);
	}
	(void)w;
	free(exe);
	free(proxy);
}

/* Wait for the probe to exit: its status. */
static int probe_wait(struct proc *c, double timeout_s)
{
	double end = now_s() + timeout_s;
	int status = 0;
	while (waitpid(c->pid, &status, WNOHANG) == 0) {
		if (now_s() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &status, 0);
			cr_assert_fail("tunnel-probe did not end in %.0f s", timeout_s);
		}
		vrt_sleep(0.05);
	}
	c->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(tunnel, one_gib_to_the_cloud_through_haproxy_is_byte_exact_in_bounded_memory,
     .timeout = 180)
{
	struct world w;
	world_init(&w);
	struct sink sink = {0};
	sink_start(&sink);
	route_to(&w, sink.port);
	struct proc p1, p2, lb;
	sanitizer_quarantine_off(true);
	proxy_start(&p1, &w, "p1", NULL);
	proxy_start(&p2, &w, "p2", NULL);
	sanitizer_quarantine_off(false);
	const struct proc *const both[] = {&p1, &p2};
	haproxy_start(&lb, &w, both, 2);
	char *address = address_of(&lb);
	struct vr_agent_config config;
	data_config(&config, &w, address);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0, "%s", error);
	struct rss_watch rss = {.pids = {p1.pid, p2.pid}, .n = 2};
	rss_start(&rss);
	double start = now_s();
	struct vr_agent_conn *conn = NULL;
	cr_assert_eq(vr_agent_data_open(&conn, &tls, &config, w.credential, w.repl, &error), 0,
		     "%s", error ? error : "");
	struct upload up = {.conn = conn, .total = GIB, .seed = 0x1f1f};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, upload_main, &up), 0);
	unsigned char got[32];
	cr_assert_eq(download(conn, got), 0);
	pthread_join(t, NULL);
	cr_assert_eq(up.rc, 0, "the upload failed");
	sink_join(&sink);
	double secs = now_s() - start;
	rss_check(&rss, 32, 64);
	cr_assert(sink.done);
	cr_assert_eq(sink.received, up.total);
	cr_assert_eq(memcmp(sink.digest, up.digest, 32), 0, "the worker got other bytes");
	cr_assert(strstr(sink.preamble, w.repl), "%s", sink.preamble);
	cr_log_info("1 GiB agent -> haproxy -> proxy -> worker in %.1f s (%.0f MiB/s)", secs,
		    1024 / secs);
	vr_agent_conn_close(conn);
	stop_proc(&lb, SIGTERM, 5); /* haproxy: 0 or 143, either is fine */
	cr_assert_eq(stop_proc(&p1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(address);
}

Test(tunnel, one_gib_from_the_cloud_reaches_the_agent_daemon_byte_exact_in_bounded_memory,
     .timeout = 180)
{
	struct world w;
	world_init(&w);
	static const char *const own_address[] = {"--reverse-address", "127.0.0.1:0", NULL};
	struct proxy_opts o = {.extra = own_address};
	struct proc p1, p2, lb, agent, probe;
	sanitizer_quarantine_off(true);
	proxy_start(&p1, &w, "p1", &o);
	proxy_start(&p2, &w, "p2", &o);
	const struct proc *const both[] = {&p1, &p2};
	haproxy_start(&lb, &w, both, 2);
	char *address = address_of(&lb);
	agent_start(&agent, &w, "agent", address, NULL);
	sanitizer_quarantine_off(false);
	char *key = registry_key(&w);
	double end = now_s() + 15;
	char *holder = NULL;
	while (!holder && now_s() < end) {
		holder = registry_value(&w);
		if (!holder)
			vrt_sleep(0.05);
	}
	cr_assert_not_null(holder, "the agent did not connect through haproxy");
	/* the worker asks p1; the agent dials p1's own address back */
	struct rss_watch rss = {.pids = {p1.pid, agent.pid}, .n = 2};
	rss_start(&rss);
	double start = now_s();
	char *out = fmt("%s/probe.out", w.dir);
	probe_spawn(&probe, &w, w.site, p1.internal_port, "1G", out);
	int status = probe_wait(&probe, 150);
	double secs = now_s() - start;
	rss_check(&rss, 32, 64);
	char *text = read_text(out);
	cr_assert_eq(status, 0, "tunnel-probe exited %d:\n%s\n%s", status, text,
		     read_text(agent.log));
	cr_assert(strstr(text, "bytes=1073741824\n"), "%s", text);
	char *sha = kv(text, "sha256");
	char *served = fmt("bytes=1073741824 sha256=%s", sha);
	cr_assert(wait_file_contains(agent.log, served, 5), "%s", read_text(agent.log));
	cr_assert(file_contains(p1.log, "event=reverse_connected"), "%s", read_text(p1.log));
	cr_assert(file_contains(p1.log, "purpose=probe"));
	cr_log_info("1 GiB worker -> proxy -> agent daemon in %.1f s (holder %s)", secs, holder);
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	stop_proc(&lb, SIGTERM, 5); /* haproxy: 0 or 143, either is fine */
	cr_assert_eq(stop_proc(&p1, SIGTERM, 10), 0);
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	free(served);
	free(sha);
	free(text);
	free(out);
	free(holder);
	free(key);
	free(address);
}

Test(tunnel, sigkill_of_the_proxy_during_a_stitch_fails_the_worker_clearly_and_a_retry_succeeds,
     .timeout = 120)
{
	struct world w;
	world_init(&w);
	static const char *const own_address[] = {"--reverse-address", "127.0.0.1:0", NULL};
	struct proxy_opts o = {.extra = own_address};
	struct proc p1, p2, lb, agent, probe;
	proxy_start(&p1, &w, "p1", &o);
	proxy_start(&p2, &w, "p2", &o);
	const struct proc *const both[] = {&p1, &p2};
	haproxy_start(&lb, &w, both, 2);
	char *address = address_of(&lb);
	agent_start(&agent, &w, "agent", address, NULL);
	cr_assert(wait_registry(&w, "p1", 15) || wait_registry(&w, "p2", 1),
		  "the agent did not connect");
	char *out = fmt("%s/probe.out", w.dir);
	probe_spawn(&probe, &w, w.peer, p1.internal_port, "4G", out);
	cr_assert(wait_file_contains(p1.log, "event=reverse_connected", 15), "%s",
		  read_text(p1.log));
	vrt_sleep(0.5);
	kill(p1.pid, SIGKILL);
	cr_assert_eq(stop_proc(&p1, SIGKILL, 5), 256 + SIGKILL);
	int status = probe_wait(&probe, 30);
	char *text = read_text(out);
	cr_assert_eq(status, 1, "tunnel-probe exited %d:\n%s", status, text);
	cr_assert(strstr(text, "the stream broke"), "%s", text);
	cr_assert(wait_file_contains(agent.log, "event=probe_failed", 70), "%s",
		  read_text(agent.log));
	/* the site is on p2 now (at once, or after haproxy moved it) */
	cr_assert(wait_registry(&w, "p2", 15), "the site did not move to p2");
	probe_spawn(&probe, &w, w.peer, p2.internal_port, "8M", out);
	status = probe_wait(&probe, 30);
	free(text);
	text = read_text(out);
	cr_assert_eq(status, 0, "the retry exited %d:\n%s", status, text);
	cr_assert(strstr(text, "bytes=8388608\n"), "%s", text);
	cr_assert_eq(stop_proc(&agent, SIGTERM, 10), 0);
	stop_proc(&lb, SIGTERM, 5); /* haproxy: 0 or 143, either is fine */
	cr_assert_eq(stop_proc(&p2, SIGTERM, 10), 0);
	free(text);
	free(out);
	free(address);
}

Test(tunnel, forged_replayed_expired_and_other_sites_cookies_are_refused)
{
	struct world w, w2;
	world_init(&w);
	other_site(&w2, &w);
	static const char *const flags[] = {"--reverse-address", "127.0.0.1:0",
					    "--reverse-timeout", "2", NULL};
	struct proxy_opts o = {.extra = flags};
	struct proc p1;
	proxy_start(&p1, &w, "p1", &o);
	char *a1 = address_of(&p1);
	struct vr_agent_config config;
	data_config(&config, &w, a1);
	struct vr_agent_tls tls;
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&tls, &config, &error), 0);
	struct vr_agent_conn *ctl = control_open(&tls, &w, a1);
	char *probe = fmt("version=1\npeer=%s\npurpose=probe\nworker=worker-9\n", w.peer);
	int worker = worker_request(p1.internal_port, w.peer, probe);
	struct vr_tunnel_connect connect;
	await_connect(ctl, &connect);
	cr_assert_str_eq(connect.purpose, "probe");
	cr_assert_str_eq(connect.replication, "");
	struct vr_agent_conn *rev = NULL;
	/* forged: well-formed, never made */
	char forged[VR_TUNNEL_COOKIE_LEN + 1];
	cr_assert_eq(vr_tunnel_cookie_new(forged), 0);
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   forged, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "cookie:", 7) == 0, "%s", error);
	free(error);
	/* another site's credential with the real cookie */
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w2.credential, connect.address,
					   connect.cookie, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "cookie:", 7) == 0, "%s", error);
	free(error);
	/* the site's own: stitched; a probe of nothing is answered, and the
	 * worker gets only the answer (the hello, with the credential and the
	 * cookie, stays at the proxy even on a cached credential) */
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   connect.cookie, &error),
		     0, "%s", error ? error : "");
	char payload[4096];
	cr_assert_eq(read_plain_frame(worker, payload, sizeof payload), VR_FRAME_WELCOME);
	cr_assert(strstr(payload, "purpose=probe\n"), "%s", payload);
	cr_assert_null(strstr(payload, "replication="), "%s", payload);
	shutdown(worker, SHUT_WR);
	uint64_t bytes = 0;
	char hex[VR_AGENT_PROBE_HEX + 1];
	cr_assert_eq(vr_agent_probe_serve(rev, &bytes, hex), 0);
	cr_assert_eq(bytes, 0);
	char answer[256];
	size_t got = 0;
	ssize_t n;
	while ((n = read(worker, answer + got, sizeof answer - 1 - got)) > 0)
		got += (size_t)n;
	cr_assert_eq(n, 0, "%s", strerror(errno));
	answer[got] = '\0';
	cr_assert_str_eq(answer,
			 "bytes=0\nsha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
			 "a495991b7852b855\n",
			 "%s", read_text(p1.log));
	vr_agent_conn_close(rev);
	close(worker);
	/* replayed */
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   connect.cookie, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "cookie:", 7) == 0, "%s", error);
	free(error);
	/* expired: the worker gave up after reverse_timeout, its cookie died */
	worker = worker_request(p1.internal_port, w.peer, probe);
	await_connect(ctl, &connect);
	cr_assert_eq(read_plain_frame(worker, payload, sizeof payload), VR_FRAME_REFUSE);
	cr_assert(strstr(payload, "reason=unreachable"), "%s", payload);
	cr_assert_eq(vr_agent_reverse_open(&rev, &tls, &config, w.credential, connect.address,
					   connect.cookie, &error),
		     VR_ECONFLICT);
	cr_assert(strncmp(error, "cookie:", 7) == 0, "%s", error);
	free(error);
	close(worker);
	/* a probe's request with a malformed purpose is refused */
	char *bad = fmt("version=1\npeer=%s\npurpose=Probe!\n", w.peer);
	worker = worker_request(p1.internal_port, w.peer, bad);
	cr_assert_eq(read_plain_frame(worker, payload, sizeof payload), VR_FRAME_REFUSE);
	cr_assert(strstr(payload, "reason=protocol"), "%s", payload);
	close(worker);
	vr_agent_conn_close(ctl);
	cr_assert_eq(stop_proc(&p1, SIGTERM, 10), 0);
	cr_assert(!file_contains(p1.log, connect.cookie), "a cookie was logged");
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	free(bad);
	free(probe);
	free(a1);
}

static struct vrt_resp server_call(const char *bearer, const char *repl, const char *body)
{
	const char *headers[] = {"Content-Type: application/vnd.vrcloud.internal+xml", NULL};
	char *path = fmt("/api/internal/replications/%s/server", repl);
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = bearer,
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	free(path);
	return r;
}

Test(tunnel, the_server_route_names_a_replications_worker_to_proxies_for_its_own_site_only)
{
	struct world w, w2;
	world_init(&w);
	other_site(&w2, &w);
	route_to(&w, 31031);
	char *proxy_token = read_text(w.token_file);
	proxy_token[strcspn(proxy_token, "\n")] = '\0';
	char *mine = fmt("<ReplicationServerLookup xmlns=\"" VRT_NS_INTERNAL "\"><PeerId>%s"
			 "</PeerId></ReplicationServerLookup>",
			 w.peer);
	char *theirs = fmt("<ReplicationServerLookup xmlns=\"" VRT_NS_INTERNAL "\"><PeerId>%s"
			   "</PeerId></ReplicationServerLookup>",
			   w2.peer);
	char *before = vrt_db_fingerprint();
	struct vrt_resp r = server_call(proxy_token, w.repl, mine);
	cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
	vrt_assert_valid(&r, "ReplicationServer");
	char *address = vrt_xpath_str(r.body, "string(/vi:ReplicationServer/vi:TrafficAddress)");
	char *server = vrt_xpath_str(r.body, "string(/vi:ReplicationServer/vi:ServerId)");
	char *repl = vrt_xpath_str(r.body, "string(/vi:ReplicationServer/vi:ReplicationId)");
	cr_assert_str_eq(address, "127.0.0.1:31031");
	cr_assert_str_eq(server, w.server);
	cr_assert_str_eq(repl, w.repl);
	vrt_resp_free(&r);
	/* upper-case ids are the same replication */
	char upper[40];
	snprintf(upper, sizeof upper, "%s", w.repl);
	for (char *p = upper; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	r = server_call(proxy_token, upper, mine);
	cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
	vrt_resp_free(&r);
	/* another site's peer: exactly like an absent replication */
	r = server_call(proxy_token, w.repl, theirs);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "another peer");
	cr_assert_null(strstr(r.body, "31031"));
	vrt_resp_free(&r);
	r = server_call(proxy_token, "40000000-0000-4000-8000-00000000dead", mine);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "absent");
	vrt_resp_free(&r);
	/* only proxies ask */
	r = server_call(vrt_service_token(VRT_SERVICE), w.repl, mine);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "worker token");
	vrt_resp_free(&r);
	/* documents the schema refuses */
	static const char *const malformed[] = {
		"<ReplicationServerLookup xmlns=\"" VRT_NS_INTERNAL "\"/>",
		"<ReplicationServerLookup xmlns=\"" VRT_NS_INTERNAL "\"><PeerId>x</PeerId>"
		"</ReplicationServerLookup>",
		"<SiteVerify xmlns=\"" VRT_NS_INTERNAL "\"><Credential>x</Credential></SiteVerify>",
		"not xml",
	};
	for (size_t i = 0; i < N(malformed); i++) {
		r = server_call(proxy_token, w.repl, malformed[i]);
		cr_assert_eq(r.status, 400, "%s: %ld %s", malformed[i], r.status, r.body);
		vrt_resp_free(&r);
	}
	char *after = vrt_db_fingerprint();
	cr_assert_str_eq(before, after, "a lookup changed the database");
	/* a server that is not connected, or none at all: 409 */
	vrt_db_exec("UPDATE replica_servers SET state = 'disconnected' WHERE id = $1::uuid",
		    w.server);
	r = server_call(proxy_token, w.repl, mine);
	vrt_assert_error(&r, 409, "NO_REPLICATION_SERVER", "disconnected");
	vrt_resp_free(&r);
	vrt_db_exec("UPDATE replications SET replica_server_id = NULL WHERE id = $1::uuid", w.repl);
	r = server_call(proxy_token, w.repl, mine);
	vrt_assert_error(&r, 409, "NO_REPLICATION_SERVER", "no server");
	vrt_resp_free(&r);
	free(before);
	free(after);
	free(address);
	free(server);
	free(repl);
	free(mine);
	free(theirs);
	free(proxy_token);
}
