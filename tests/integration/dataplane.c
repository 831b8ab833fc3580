/* The whole stack of the data plane (dataplane.h). */
#include "integration/dataplane.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/helpers.h"

const char *dp_builddir(void)
{
	const char *b = getenv("VRCLOUD_BUILDDIR");
	return b ? b : VR_BUILDDIR;
}

static const char *srcdir(void)
{
	const char *s = getenv("VRCLOUD_SRCDIR");
	return s ? s : VR_SRCDIR;
}

char *dp_read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap);
	cr_assert_not_null(text);
	size_t n;
	while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			text = realloc(text, cap);
			cr_assert_not_null(text);
		}
	}
	text[len] = '\0';
	fclose(f);
	return text;
}

/* The last 4000 characters of a log, for messages (caller frees). */
static char *tail_of(const char *path)
{
	char *text = dp_read_text(path);
	size_t len = strlen(text);
	if (len > 4000)
		memmove(text, text + len - 4000, 4001);
	return text;
}

bool dp_file_contains(const char *path, const char *needle)
{
	char *text = dp_read_text(path);
	bool yes = strstr(text, needle) != NULL;
	free(text);
	return yes;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Run argv; its standard output and error (caller frees), *status_out its
 * exit status. */
static char *run_capture(char *const argv[], int *status_out)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	cr_assert_not_null(out);
	ssize_t r;
	while ((r = read(fds[0], out + len, cap - len - 1)) > 0)
		len += (size_t)r;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	*status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
	return out;
}

static char *ctl(const char *first, ...)
{
	char *exe = vrt_fmt("%s/vrcloudctl", dp_builddir());
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
	cr_assert_eq(status, 0, "vrcloudctl %s exited %d:\n%s", first, status, out);
	free(exe);
	return out;
}

char *dp_kv(const char *text, const char *key)
{
	char *needle = vrt_fmt("%s=", key);
	const char *at = strstr(text, needle);
	while (at && at != text && at[-1] != '\n')
		at = strstr(at + 1, needle);
	cr_assert_not_null(at, "no %s= in:\n%s", key, text);
	at += strlen(needle);
	size_t len = strcspn(at, "\n");
	char *v = calloc(1, len + 1);
	cr_assert_not_null(v);
	size_t j = 0;
	for (size_t i = 0; i < len; i++)
		if (at[i] != '\'')
			v[j++] = at[i];
	free(needle);
	return v;
}

/* --- processes ------------------------------------------------------------------- */

static void spawn(struct dp_proc *p, const char *const *argv)
{
	fflush(NULL);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		int out = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
}

int dp_stop_proc(struct dp_proc *p, int sig, double timeout_s)
{
	if (p->pid <= 0)
		return 0;
	kill(p->pid, sig);
	double end = vrt_now() + timeout_s;
	int status = 0, rc = -1;
	for (;;) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
			break;
		}
		if (vrt_now() >= end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			break;
		}
		vrt_sleep(0.01);
	}
	p->pid = 0;
	if (rc >= 0 && rc < 256 &&
	    (dp_file_contains(p->log, "runtime error") || dp_file_contains(p->log, "Sanitizer")))
		rc = -2;
	return rc;
}

static unsigned count_in_file(const char *path, const char *needle)
{
	char *text = dp_read_text(path);
	unsigned n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	free(text);
	return n;
}

static bool wait_count_above(const char *path, const char *needle, unsigned before,
			     double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (count_in_file(path, needle) > before)
			return true;
		vrt_sleep(0.02);
	}
	return false;
}

static const char *worker_names[2] = {VRT_SERVICE, VRT_SERVICE_OTHER};

void dp_worker_start(struct dp_world *w, unsigned i)
{
	struct dp_proc *p = &w->worker[i];
	snprintf(p->name, sizeof p->name, "worker-%u", i + 1);
	char *log = vrt_fmt("%s/worker-%u.log", w->dir, i + 1);
	snprintf(p->log, sizeof p->log, "%s", log);
	free(log);
	char *token = vrt_fmt("%s/worker-%u.token", w->dir, i + 1);
	char *line = vrt_fmt("%s\n", vrt_service_token(worker_names[i]));
	write_text(token, line, 0600);
	free(line);
	if (!p->port)
		p->port = vrt_closed_port();
	char *config = vrt_fmt("%s/worker-%u.ini", w->dir, i + 1);
	char *text = vrt_fmt("[worker]\nstore_dir = %s\nrecovered_dir = %s\n"
			     "proxy_internal = 127.0.0.1:%u\ntraffic_address = 127.0.0.1:%u\n"
			     "sync_timeout = 60\nconcurrency = 2\n[jobs]\nprefix = %s\n",
			     w->store, w->recovered, w->proxy[0].internal_port, p->port, dp_prefix);
	write_text(config, text, 0600);
	free(text);
	char *exe = vrt_fmt("%s/vrcloud-worker", dp_builddir());
	const char *argv[] = {exe,
			      "--config",
			      config,
			      "--name",
			      worker_names[i],
			      "--api-url",
			      vrt_base_url(),
			      "--token-file",
			      token,
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--heartbeat-interval",
			      "1",
			      "--shutdown-timeout",
			      "5",
			      "--log-level",
			      "debug",
			      NULL};
	unsigned listening = count_in_file(p->log, "event=replication_port_listening");
	unsigned registered = count_in_file(p->log, "event=registered");
	spawn(p, argv);
	cr_assert(wait_count_above(p->log, "event=replication_port_listening", listening, 15),
		  "worker %u never listened:\n%s", i + 1, tail_of(p->log));
	cr_assert(wait_count_above(p->log, "event=registered", registered, 15),
		  "worker %u never registered:\n%s", i + 1, tail_of(p->log));
	free(exe);
	free(config);
	free(token);
}

static char *proxy_token(const struct dp_world *w)
{
	return vrt_fmt("%s/proxy.token", w->dir);
}

void dp_proxy_start(struct dp_world *w, unsigned i)
{
	struct dp_proc *p = &w->proxy[i];
	snprintf(p->name, sizeof p->name, "proxy-%u", i + 1);
	char *log = vrt_fmt("%s/proxy-%u.log", w->dir, i + 1);
	snprintf(p->log, sizeof p->log, "%s", log);
	free(log);
	if (!p->port) {
		p->port = vrt_closed_port();
		do
			p->internal_port = vrt_closed_port();
		while (p->internal_port == p->port);
	}
	char *listen = vrt_fmt("127.0.0.1:%u", p->port);
	char *internal = vrt_fmt("127.0.0.1:%u", p->internal_port);
	char *port_file = vrt_fmt("%s/proxy-%u.port", w->dir, i + 1);
	char *token = proxy_token(w);
	char *exe = vrt_fmt("%s/vrcloud-proxy", dp_builddir());
	const char *argv[] = {exe,
			      "--name",
			      p->name,
			      "--listen",
			      listen,
			      "--reverse-address",
			      listen,
			      "--port-file",
			      port_file,
			      "--cert",
			      w->cert,
			      "--key",
			      w->key,
			      "--token-file",
			      token,
			      "--api-url",
			      vrt_base_url(),
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--redis-prefix",
			      dp_prefix,
			      "--internal-listen",
			      internal,
			      "--heartbeat-interval",
			      "1",
			      "--registry-ttl",
			      "3",
			      "--shutdown-timeout",
			      "3",
			      "--log-level",
			      "debug",
			      NULL};
	unlink(port_file);
	spawn(p, argv);
	double end = vrt_now() + 15;
	for (;;) {
		char *text = dp_read_text(port_file);
		bool up = atoi(text) > 0;
		free(text);
		if (up)
			break;
		cr_assert(vrt_now() < end, "%s wrote no port:\n%s", p->name, tail_of(p->log));
		vrt_sleep(0.02);
	}
	free(exe);
	free(token);
	free(port_file);
	free(internal);
	free(listen);
}

static void haproxy_start(struct dp_world *w)
{
	struct dp_proc *h = &w->lb;
	snprintf(h->log, sizeof h->log, "%s/haproxy.log", w->dir);
	h->port = vrt_closed_port();
	char *cfg = vrt_fmt("%s/haproxy.cfg", w->dir);
	char *text = vrt_fmt("global\n  maxconn 256\n"
			     "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5m\n"
			     "  timeout server 5m\n  timeout tunnel 1h\n  retries 2\n"
			     "  option redispatch\n"
			     "listen tunnels\n  bind 127.0.0.1:%u\n  balance leastconn\n"
			     "  default-server inter 300ms fall 1 rise 1\n"
			     "  server p1 127.0.0.1:%u check\n  server p2 127.0.0.1:%u check\n",
			     h->port, w->proxy[0].port, w->proxy[1].port);
	write_text(cfg, text, 0644);
	free(text);
	const char *argv[] = {"haproxy", "-db", "-q", "-f", cfg, NULL};
	spawn(h, argv);
	double end = vrt_now() + 10;
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in addr = {.sin_family = AF_INET,
					   .sin_port = htons((uint16_t)h->port),
					   .sin_addr.s_addr = htonl(0x7f000001)};
		bool up = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
		close(fd);
		if (up)
			break;
		cr_assert(vrt_now() < end, "haproxy did not start");
		vrt_sleep(0.05);
	}
	free(cfg);
}

void dp_agent_start(struct dp_world *w)
{
	struct dp_proc *a = &w->agent;
	snprintf(a->name, sizeof a->name, "agent");
	snprintf(a->log, sizeof a->log, "%s/agent.log", w->dir);
	char *exe = vrt_fmt("%s/vrcloud-agent", dp_builddir());
	unsigned connected = count_in_file(a->log, "event=connected");
	const char *argv[] = {exe,     "--config",   w->agent_ini, "--log-level",
			      "debug", "--log-file", a->log,	   NULL};
	spawn(a, argv);
	cr_assert(wait_count_above(a->log, "event=connected", connected, 15),
		  "the agent never connected:\n%s", tail_of(a->log));
	free(exe);
}

unsigned dp_holder(const struct dp_world *w)
{
	char *name = vrt_db_value("SELECT s.name FROM replications r JOIN replica_servers s"
				  " ON s.id = r.replica_server_id WHERE r.id = $1::uuid",
				  w->repl);
	cr_assert_not_null(name, "the replication has no replica server");
	unsigned i = strcmp(name, worker_names[0]) == 0 ? 0 : 1;
	cr_assert_str_eq(name, worker_names[i]);
	free(name);
	return i;
}

/* --- vrcloud-io ----------------------------------------------------------------- */

void dp_io_write(const struct dp_world *w, unsigned d, const char *bytes, const char *seed,
		 const char *pattern)
{
	char *exe = vrt_fmt("%s/vrcloud-io", dp_builddir());
	char *log = vrt_fmt("%s.cbt", w->disk[d]);
	char *size = vrt_fmt("%llu", (unsigned long long)w->size[d]);
	char *disk = strdup(w->disk[d]);
	char *argv[] = {exe,
			(char *)"write",
			disk,
			(char *)"--size",
			size,
			(char *)"--bytes",
			(char *)bytes,
			(char *)"--seed",
			(char *)seed,
			(char *)"--log",
			log,
			(char *)"--pattern",
			(char *)pattern,
			NULL};
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "vrcloud-io exited %d: %s", status, out);
	free(out);
	free(disk);
	free(size);
	free(log);
	free(exe);
}

void dp_writer_start(struct dp_world *w, const char *rate)
{
	char *exe = vrt_fmt("%s/vrcloud-io", dp_builddir());
	char *log = vrt_fmt("%s.cbt", w->disk[0]);
	snprintf(w->io.log, sizeof w->io.log, "%s/io.log", w->dir);
	const char *argv[] = {exe,  "write",  w->disk[0], "--count", "100000000", "--rate",
			      rate, "--seed", "99",	  "--log",   log,	  NULL};
	spawn(&w->io, argv);
	char *pid = vrt_fmt("%ld\n", (long)w->io.pid);
	write_text(w->io_pid, pid, 0644);
	free(pid);
	free(log);
	free(exe);
	vrt_sleep(0.3);
}

void dp_writer_stop(struct dp_world *w)
{
	write_text(w->io_pid, "0\n", 0644);
	kill(w->io.pid, SIGCONT);
	int rc = dp_stop_proc(&w->io, SIGTERM, 10);
	cr_assert_eq(rc, 0, "vrcloud-io exited %d:\n%s", rc, tail_of(w->io.log));
}

/* --- syncs and instances ----------------------------------------------------------- */

pid_t dp_sync_spawn(const struct dp_world *w, const char *out)
{
	char *exe = vrt_fmt("%s/vrcloud-agent", dp_builddir());
	const char *argv[] = {exe, "sync", "dp-vm", "-c", w->agent_ini, NULL};
	struct dp_proc p;
	memset(&p, 0, sizeof p);
	snprintf(p.log, sizeof p.log, "%s", out);
	unlink(out);
	spawn(&p, argv);
	free(exe);
	return p.pid;
}

int dp_wait_exit(pid_t pid, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
		if (vrt_now() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		vrt_sleep(0.01);
	}
}

char *dp_sync(const struct dp_world *w)
{
	char *out = vrt_fmt("%s/sync.out", w->dir);
	double start = vrt_now();
	int rc = dp_wait_exit(dp_sync_spawn(w, out), 120);
	char *text = dp_read_text(out);
	cr_assert_eq(rc, 0, "vrcloud-agent sync exited %d:\n%s\nworkers:\n%s\n%s", rc, text,
		     tail_of(w->worker[0].log), tail_of(w->worker[1].log));
	char *instance = dp_kv(text, "instance");
	char *blocks = dp_kv(text, "blocks");
	cr_log_info("sync: instance %s blocks %s in %.2f s", instance, blocks, vrt_now() - start);
	free(blocks);
	free(text);
	free(out);
	return instance;
}

long dp_instance_count(const struct dp_world *w)
{
	char *path = vrt_fmt("/api/vr/replications/%s/instances", w->repl);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	long n = vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance");
	vrt_resp_free(&r);
	free(path);
	return n;
}

long dp_next_seq(const struct dp_world *w)
{
	char *path = vrt_fmt("/api/vr/replications/%s", w->repl);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *v =
		vrt_xpath_str(r.body, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)");
	long n = v && *v ? atol(v) : -1;
	free(v);
	vrt_resp_free(&r);
	free(path);
	return n;
}

char *dp_newest_instance(const struct dp_world *w)
{
	return vrt_db_value("SELECT id::text FROM instances WHERE replication_id = $1::uuid"
			    " ORDER BY seq DESC LIMIT 1",
			    w->repl);
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 256;
}

void dp_save(const char *from, const char *to)
{
	char *cmd = vrt_fmt("cp --sparse=always '%s' '%s'", from, to);
	cr_assert_eq(sh(cmd), 0, "%s", cmd);
	free(cmd);
}

bool dp_same(const char *a, const char *b)
{
	char *cmd = vrt_fmt("cmp -s '%s' '%s'", a, b);
	int rc = sh(cmd);
	free(cmd);
	return rc == 0;
}

char *dp_replica(const struct dp_world *w, unsigned d)
{
	return vrt_fmt("%s/%s/disk-%u.img", w->store, w->repl, d);
}

char *dp_saved(const struct dp_world *w, const char *instance, unsigned d)
{
	return vrt_fmt("%s/saved/%s-%u.img", w->dir, instance, 2000 + d);
}

void dp_save_frozen(const struct dp_world *w, const char *instance)
{
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *from = vrt_fmt("%s/disk-%u.img", w->frozen, 2000 + d);
		char *to = dp_saved(w, instance, d);
		dp_save(from, to);
		free(to);
		free(from);
	}
}

void dp_save_live(const struct dp_world *w, const char *instance)
{
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *to = dp_saved(w, instance, d);
		dp_save(w->disk[d], to);
		free(to);
	}
}

void dp_assert_replica_is(const struct dp_world *w, const char *instance, const char *when)
{
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *replica = dp_replica(w, d);
		char *saved = dp_saved(w, instance, d);
		cr_assert(dp_same(replica, saved), "%s: replica disk %u is not instance %s", when,
			  d, instance);
		free(saved);
		free(replica);
	}
}

/* --- the API ------------------------------------------------------------------------ */

char *dp_act(const char *path, const char *content_type, const char *body)
{
	char *header = vrt_fmt("Content-Type: %s", content_type ? content_type : "");
	const char *headers[] = {header, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = content_type ? headers : NULL,
				.body = body,
				.body_len = body ? -1 : 0};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	cr_assert_eq(r.status, 202, "%s: %ld %s", path, r.status, r.body);
	char *task = vrt_xpath_str(r.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&r);
	char *status = NULL;
	double end = vrt_now() + 120;
	while (vrt_now() < end) {
		free(status);
		status = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
		vrt_sleep(0.05);
	}
	if (strcmp(status, "success") != 0) {
		char *message = vrt_db_value("SELECT coalesce(error_message, '') FROM tasks"
					     " WHERE id = $1::uuid",
					     task);
		cr_log_info("%s: task %s ended %s: %s", path, task, status, message);
		free(message);
	}
	free(task);
	free(header);
	return status;
}

char *dp_vapp_show(const char *rg, const char *kind)
{
	char *id = vrt_db_value("SELECT id::text FROM vapps WHERE replication_id = $1::uuid"
				" AND kind = $2 AND deleted_at IS NULL",
				rg, kind);
	cr_assert_not_null(id, "no live %s vApp of %s", kind, rg);
	char *out = ctl("vapp", "show", id, NULL);
	free(id);
	return out;
}

/* --- the world ---------------------------------------------------------------------- */

static void make_ca(struct dp_world *w)
{
	char *script = vrt_fmt("%s/contrib/tunnel-test-ca", srcdir());
	char *dir = vrt_fmt("%s/ca", w->dir);
	char *argv[] = {(char *)"/bin/bash", script, dir, (char *)"localhost",
			(char *)"127.0.0.1", NULL};
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "tunnel-test-ca exited %d:\n%s", status, out);
	char *v;
	snprintf(w->ca, sizeof w->ca, "%s", v = dp_kv(out, "ca"));
	free(v);
	snprintf(w->cert, sizeof w->cert, "%s", v = dp_kv(out, "cert"));
	free(v);
	snprintf(w->key, sizeof w->key, "%s", v = dp_kv(out, "key"));
	free(v);
	free(out);
	free(dir);
	free(script);
}

static void credentials(struct dp_world *w)
{
	char *out = ctl("peer", "credential", w->peer, NULL);
	char *c = dp_kv(out, "credential");
	char *line = vrt_fmt("%s\n", c);
	char *cred = vrt_fmt("%s/site.credential", w->state);
	snprintf(w->cred_file, sizeof w->cred_file, "%s", cred);
	free(cred);
	write_text(w->cred_file, line, 0600);
	free(line);
	free(c);
	free(out);
	char *name = vrt_fmt("proxy-dp-%s", strrchr(w->dir, '-') + 1);
	out = ctl("service", "add", name, "--kind", "proxy", NULL);
	char *token = dp_kv(out, "token");
	char *path = proxy_token(w);
	line = vrt_fmt("%s\n", token);
	write_text(path, line, 0600);
	free(line);
	free(path);
	free(token);
	free(out);
	free(name);
	snprintf(w->pw_file, sizeof w->pw_file, "%s/password", w->dir);
	write_text(w->pw_file, VRT_PASSWORD "\n", 0600);
}

static void vm_create(struct dp_world *w, uint64_t mib0, uint64_t mib1)
{
	snprintf(w->vmdir, sizeof w->vmdir, "%s/vm", w->dir);
	cr_assert_eq(mkdir(w->vmdir, 0755), 0);
	w->size[0] = mib0 * DP_MIB;
	w->size[1] = mib1 * DP_MIB;
	for (unsigned d = 0; d < DP_DISKS; d++)
		snprintf(w->disk[d], sizeof w->disk[d], "%s/disk-%u.img", w->vmdir, 2000 + d);
	char *half = vrt_fmt("%lluM", (unsigned long long)mib0 / 2);
	dp_io_write(w, 0, half, "1", "sequential");
	dp_io_write(w, 1, "1M", "2", "random");
	free(half);
	char *ini = vrt_fmt("[vm]\nname = dp-vm\npower = on\n[disk 2000]\nfile = disk-2000.img\n"
			    "[disk 2001]\nfile = disk-2001.img\n");
	char *path = vrt_fmt("%s/vm.ini", w->vmdir);
	write_text(path, ini, 0644);
	free(path);
	free(ini);
}

/* vrcloud-agent protect, the CLI: the freeze hook stops the writer and
 * copies the disks into w->frozen, the thaw hook lets the writer go on. */
static void protect(struct dp_world *w)
{
	char *freeze = vrt_fmt("p=$(cat %s); if [ \"$p\" -gt 0 ]; then kill -STOP $p; fi; "
			       "rm -rf %s.tmp && mkdir %s.tmp && cp --sparse=always %s %s %s.tmp/ "
			       "&& rm -rf %s && mv %s.tmp %s",
			       w->io_pid, w->frozen, w->frozen, w->disk[0], w->disk[1], w->frozen,
			       w->frozen, w->frozen, w->frozen);
	char *thaw = vrt_fmt("p=$(cat %s); if [ \"$p\" -gt 0 ]; then kill -CONT $p; fi; true",
			     w->io_pid);
	char *exe = vrt_fmt("%s/vrcloud-agent", dp_builddir());
	char *argv[] = {exe,
			(char *)"protect",
			w->vmdir,
			(char *)"--vdc",
			w->vdc,
			(char *)"--rpo",
			(char *)"60",
			(char *)"--quiesce",
			(char *)"--retention",
			(char *)"100x5",
			(char *)"--freeze-cmd",
			freeze,
			(char *)"--thaw-cmd",
			thaw,
			(char *)"--api",
			(char *)vrt_base_url(),
			(char *)"--user",
			(char *)VRT_ADMIN_A,
			(char *)"--password-file",
			w->pw_file,
			(char *)"--state-dir",
			w->state,
			(char *)"--timeout",
			(char *)"60",
			NULL};
	int status;
	char *out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "vrcloud-agent protect exited %d:\n%s\nworker:\n%s", status, out,
		     tail_of(w->worker[0].log));
	char *rg = dp_kv(out, "replication");
	snprintf(w->repl, sizeof w->repl, "%s", rg);
	free(rg);
	free(out);
	free(exe);
	free(thaw);
	free(freeze);
}

void dp_start(struct dp_world *w, uint64_t mib0, uint64_t mib1)
{
	signal(SIGPIPE, SIG_IGN);
	memset(w, 0, sizeof *w);
	snprintf(w->dir, sizeof w->dir, "%s/dataplane-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->store, sizeof w->store, "%s/store", w->dir);
	snprintf(w->recovered, sizeof w->recovered, "%s/recovered", w->dir);
	snprintf(w->state, sizeof w->state, "%s/agent", w->dir);
	snprintf(w->frozen, sizeof w->frozen, "%s/frozen", w->dir);
	snprintf(w->io_pid, sizeof w->io_pid, "%s/io.pid", w->dir);
	snprintf(w->agent_ini, sizeof w->agent_ini, "%s/agent.ini", w->dir);
	const char *dirs[] = {w->store, w->recovered, w->state};
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(mkdir(dirs[i], 0700), 0);
	char *saved = vrt_fmt("%s/saved", w->dir);
	cr_assert_eq(mkdir(saved, 0700), 0);
	free(saved);
	write_text(w->io_pid, "0\n", 0644);

	char *vdc = vrt_new_vdc(true, true, true);
	snprintf(w->vdc, sizeof w->vdc, "%s", vdc);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	free(peer);
	free(vdc);
	credentials(w);
	make_ca(w);
	dp_proxy_start(w, 0);
	dp_proxy_start(w, 1);
	haproxy_start(w);
	dp_worker_start(w, 0);
	dp_worker_start(w, 1);
	char *ini = vrt_fmt("[agent]\nname = dp-site\nproxy = 127.0.0.1:%u\ncredential_file = %s\n"
			    "ca_file = %s\nstate_dir = %s\nconnect_timeout = 5\n"
			    "backoff_initial = 100\nbackoff_max = 1\n",
			    w->lb.port, w->cred_file, w->ca, w->state);
	write_text(w->agent_ini, ini, 0600);
	free(ini);
	vm_create(w, mib0, mib1);
	protect(w);
	/* the daemon takes the first (full) instance at once; nothing writes */
	dp_agent_start(w);
	double end = vrt_now() + 90;
	while (dp_instance_count(w) < 1) {
		cr_assert(vrt_now() < end, "the daemon took no first instance:\n%s",
			  tail_of(w->agent.log));
		vrt_sleep(0.2);
	}
	char *first = dp_newest_instance(w);
	dp_save_live(w, first);
	dp_assert_replica_is(w, first, "the daemon's first instance");
	free(first);
}

void dp_stop(struct dp_world *w)
{
	if (w->io.pid > 0)
		dp_writer_stop(w);
	int rc = dp_stop_proc(&w->agent, SIGTERM, 10);
	cr_expect_eq(rc, 0, "the agent exited %d:\n%s", rc, tail_of(w->agent.log));
	for (unsigned i = 0; i < 2; i++) {
		rc = dp_stop_proc(&w->worker[i], SIGTERM, 15);
		cr_expect_eq(rc, 0, "worker %u exited %d:\n%s", i + 1, rc,
			     tail_of(w->worker[i].log));
	}
	dp_stop_proc(&w->lb, SIGTERM, 5); /* haproxy: 0 or 143 */
	for (unsigned i = 0; i < 2; i++) {
		rc = dp_stop_proc(&w->proxy[i], SIGTERM, 10);
		cr_expect_eq(rc, 0, "proxy %u exited %d:\n%s", i + 1, rc, tail_of(w->proxy[i].log));
	}
	char *key = vrt_fmt("%s:tunnel:commands:%s", dp_prefix, w->peer);
	vrt_redis_del(key);
	free(key);
}
