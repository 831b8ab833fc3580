/* The worker's replication port end to end, with the real tunnel stack:
 * PostgreSQL, Redis and vrcloud-api of the harness, a vrcloud-worker with
 * its replica store in the test's directory, a vrcloud-proxy behind
 * haproxy, and this process as the site: it opens data connections with
 * the agent library (vr_agent_data_open) and streams instances with the
 * transfer encoder. After each sync the worker's replica images are
 * compared with the source byte for byte, and the API's instances with
 * what was sent. Also: a cut transfer resumes with only the missing
 * blocks, and a wrong replication id or a corrupted run commits nothing. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/agent.h"
#include "vrcloud/buf.h"
#include "vrcloud/store.h"
#include "vrcloud/transfer.h"

VRT_SUITE(.name = "replication", .jobs = 1, .redis_db = 15);

#define BLOCK VR_TX_BLOCK
/* Two disks; the second ends in a short group. */
#define DISK0_BLOCKS 2048u
#define DISK1_BLOCKS 773u

/* --- processes -------------------------------------------------------------- */

static const char *builddir(void)
{
	const char *b = getenv("VRCLOUD_BUILDDIR");
	return b ? b : VR_BUILDDIR;
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
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (file_contains(path, needle))
			return true;
		vrt_sleep(0.05);
	}
	return false;
}

/* Occurrences of needle in the file. */
static unsigned count_in_file(const char *path, const char *needle)
{
	char *text = read_text(path);
	unsigned n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	free(text);
	return n;
}

static void write_secret(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fprintf(f, "%s\n", text);
	fclose(f);
	chmod(path, 0600);
}

struct proc {
	pid_t pid;
	char log[320];
	unsigned port;
};

static void spawn(struct proc *p, const char *const *argv)
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

/* SIGTERM and wait: the exit status, 256 + a signal, -1 when killed after
 * the timeout, -2 when the log shows a sanitizer report. */
static int stop_proc(struct proc *p, double timeout_s)
{
	if (p->pid <= 0)
		return 0;
	kill(p->pid, SIGTERM);
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
		vrt_sleep(0.02);
	}
	p->pid = 0;
	if (rc >= 0 && rc < 256 &&
	    (file_contains(p->log, "runtime error") || file_contains(p->log, "Sanitizer")))
		rc = -2;
	return rc;
}

/* --- the world: a site, its replication, the daemons -------------------------- */

struct world {
	char dir[256];
	char prefix[48];
	char vdc[40], peer[40];
	char credential[128], cred_file[300], proxy_token[300];
	char ca[300], cert[300], key[300];
	char store[300];
	char repl[40];
	uint8_t repl_id[VR_TX_ID];
	char max_transfers[8]; /* the worker's --max-transfers; "": 16 */
	struct proc worker, proxy, haproxy;
	struct vr_agent_config config;
	struct vr_agent_tls tls;
};

static char *ctl(const char *first, ...)
{
	char *exe = vrt_fmt("%s/vrcloudctl", builddir());
	char *argv[16] = {exe, (char *)"--database", (char *)vrt_env("VRT_DB_URI"), (char *)first};
	size_t n = 4;
	va_list ap;
	va_start(ap, first);
	char *a;
	while ((a = va_arg(ap, char *)) && n < 15)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
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
	ssize_t r;
	while ((r = read(fds[0], out + len, cap - len - 1)) > 0)
		len += (size_t)r;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vrcloudctl %s failed:\n%s", first,
		  out);
	free(exe);
	return out;
}

/* The value of "key=" at the start of a line of text. */
static char *kv(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == '=')
			return strndup(p + klen + 1, strcspn(p + klen + 1, "\n"));
	cr_assert_fail("no %s= in:\n%s", key, text);
	return NULL;
}

static void make_ca(struct world *w)
{
	char *dir = vrt_fmt("%s/ca", w->dir);
	const char *src = getenv("VRCLOUD_SRCDIR");
	char *script = vrt_fmt("%s/contrib/tunnel-test-ca", src ? src : VR_SRCDIR);
	char *cmd = vrt_fmt("/bin/bash '%s' '%s' localhost 127.0.0.1 2>/dev/null", script, dir);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	char out[4096] = "";
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	cr_assert_eq(pclose(f), 0, "tunnel-test-ca failed:\n%s", out);
	char *v;
	snprintf(w->ca, sizeof w->ca, "%s", v = kv(out, "ca"));
	free(v);
	snprintf(w->cert, sizeof w->cert, "%s", v = kv(out, "cert"));
	free(v);
	snprintf(w->key, sizeof w->key, "%s", v = kv(out, "key"));
	free(v);
	free(cmd);
	free(script);
	free(dir);
}

/* Wait until needle occurs more than before times in the file. */
static bool wait_count_above(const char *path, const char *needle, unsigned before,
			     double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (count_in_file(path, needle) > before)
			return true;
		vrt_sleep(0.05);
	}
	return false;
}

/* Start (or restart, on the same port and store) the worker. */
static void worker_start(struct world *w)
{
	snprintf(w->worker.log, sizeof w->worker.log, "%s/worker.log", w->dir);
	char *token = vrt_fmt("%s/worker-token", w->dir);
	write_secret(token, vrt_service_token(VRT_SERVICE));
	char *exe = vrt_fmt("%s/vrcloud-worker", builddir());
	if (!w->worker.port)
		w->worker.port = vrt_closed_port();
	char *address = vrt_fmt("127.0.0.1:%u", w->worker.port);
	const char *argv[] = {exe,
			      "--name",
			      VRT_SERVICE,
			      "--api-url",
			      vrt_base_url(),
			      "--token-file",
			      token,
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--traffic-address",
			      address,
			      "--store-dir",
			      w->store,
			      "--max-transfers",
			      w->max_transfers[0] ? w->max_transfers : "16",
			      "--heartbeat-interval",
			      "1",
			      "--shutdown-timeout",
			      "5",
			      "--log-level",
			      "debug",
			      NULL};
	unsigned listening = count_in_file(w->worker.log, "event=replication_port_listening");
	unsigned registered = count_in_file(w->worker.log, "event=registered");
	spawn(&w->worker, argv);
	cr_assert(wait_count_above(w->worker.log, "event=replication_port_listening", listening,
				   15),
		  "the worker's port never listened:\n%s", read_text(w->worker.log));
	cr_assert(wait_count_above(w->worker.log, "event=registered", registered, 15),
		  "the worker never registered:\n%s", read_text(w->worker.log));
	free(address);
	free(exe);
	free(token);
}

static void proxy_start(struct world *w)
{
	snprintf(w->proxy.log, sizeof w->proxy.log, "%s/proxy.log", w->dir);
	char *port_file = vrt_fmt("%s/proxy.port", w->dir);
	char *exe = vrt_fmt("%s/vrcloud-proxy", builddir());
	const char *argv[] = {exe,
			      "--name",
			      "p1",
			      "--listen",
			      "127.0.0.1:0",
			      "--port-file",
			      port_file,
			      "--cert",
			      w->cert,
			      "--key",
			      w->key,
			      "--token-file",
			      w->proxy_token,
			      "--api-url",
			      vrt_base_url(),
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--redis-prefix",
			      w->prefix,
			      "--internal-listen",
			      "127.0.0.1:0",
			      "--shutdown-timeout",
			      "3",
			      "--log-level",
			      "debug",
			      NULL};
	spawn(&w->proxy, argv);
	double end = vrt_now() + 15;
	while (!w->proxy.port && vrt_now() < end) {
		char *text = read_text(port_file);
		w->proxy.port = (unsigned)atoi(text);
		free(text);
		vrt_sleep(0.05);
	}
	cr_assert_neq(w->proxy.port, 0, "the proxy wrote no port:\n%s", read_text(w->proxy.log));
	free(port_file);
	free(exe);
}

/* haproxy in TCP mode in front of the proxy, as in production. */
static void haproxy_start(struct world *w)
{
	snprintf(w->haproxy.log, sizeof w->haproxy.log, "%s/haproxy.log", w->dir);
	w->haproxy.port = vrt_closed_port();
	char *cfg = vrt_fmt("%s/haproxy.cfg", w->dir);
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"global\n  maxconn 64\n"
		"defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n"
		"  timeout server 60s\n"
		"listen tunnel\n  bind 127.0.0.1:%u\n"
		"  server p1 127.0.0.1:%u check inter 300ms\n",
		w->haproxy.port, w->proxy.port);
	fclose(f);
	const char *argv[] = {"haproxy", "-db", "-q", "-f", cfg, NULL};
	spawn(&w->haproxy, argv);
	double end = vrt_now() + 10;
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in addr = {.sin_family = AF_INET,
					   .sin_port = htons((uint16_t)w->haproxy.port),
					   .sin_addr.s_addr = htonl(0x7f000001)};
		bool up = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
		close(fd);
		if (up)
			break;
		cr_assert(vrt_now() < end, "haproxy did not start (is it installed?)");
		vrt_sleep(0.05);
	}
	free(cfg);
}

/* Configure the VM through the API and wait for the worker's job. */
static void configure(struct world *w)
{
	char *body = vrt_fmt("<ReplicationGroupSpecParams xmlns=\"" VRT_NS_VR "\">"
			     "<PeerId>%s</PeerId><VmName>port-vm</VmName><Rpo>15</Rpo>"
			     "<Disk><DeviceKey>2000</DeviceKey><SizeBytes>%u</SizeBytes></Disk>"
			     "<Disk><DeviceKey>2001</DeviceKey><SizeBytes>%u</SizeBytes></Disk>"
			     "</ReplicationGroupSpecParams>",
			     w->peer, DISK0_BLOCKS * BLOCK, DISK1_BLOCKS * BLOCK);
	char *path = vrt_fmt("/api/vdc/%s/replications", w->vdc);
	const char *headers[] = {
		"Content-Type: application/vnd.vmware.hcs.replicationGroupSpecParams+xml", NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	vrt_call_ok(&call, &r);
	cr_assert_eq(r.status, 202, "configure: %ld\n%s", r.status, r.body);
	char *task = vrt_xpath_str(r.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&r);
	char *status = NULL;
	double end = vrt_now() + 30;
	while (vrt_now() < end) {
		free(status);
		status = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
		vrt_sleep(0.1);
	}
	cr_assert_str_eq(status, "success", "the configure task ended %s:\n%s", status,
			 read_text(w->worker.log));
	char *rg = vrt_db_value("SELECT owner_id::text FROM tasks WHERE id = $1::uuid", task);
	snprintf(w->repl, sizeof w->repl, "%s", rg);
	cr_assert_eq(vr_tx_id_parse(w->repl_id, w->repl), 0);
	vrt_assert_db("SELECT s.name FROM replications r JOIN replica_servers s"
		      " ON s.id = r.replica_server_id WHERE r.id = $1::uuid",
		      w->repl, VRT_SERVICE, "the worker holds the replication");
	free(rg);
	free(status);
	free(task);
	free(path);
	free(body);
}

static void world_start(struct world *w, const char *max_transfers)
{
	signal(SIGPIPE, SIG_IGN);
	memset(w, 0, sizeof *w);
	snprintf(w->max_transfers, sizeof w->max_transfers, "%s",
		 max_transfers ? max_transfers : "");
	snprintf(w->dir, sizeof w->dir, "%s/replication-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->prefix, sizeof w->prefix, "vrt%ld-%s", (long)getpid(),
		 strrchr(w->dir, '-') + 1);
	snprintf(w->store, sizeof w->store, "%s/store", w->dir);
	char *vdc = vrt_new_vdc(true, true, true);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(w->vdc, sizeof w->vdc, "%s", vdc);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	free(vdc);
	free(peer);
	char *out = ctl("peer", "credential", w->peer, NULL);
	char *c = kv(out, "credential");
	snprintf(w->credential, sizeof w->credential, "%s", c);
	snprintf(w->cred_file, sizeof w->cred_file, "%s/credential", w->dir);
	write_secret(w->cred_file, c);
	free(c);
	free(out);
	char *name = vrt_fmt("proxy-%s", w->prefix);
	out = ctl("service", "add", name, "--kind", "proxy", NULL);
	char *token = kv(out, "token");
	snprintf(w->proxy_token, sizeof w->proxy_token, "%s/proxy-token", w->dir);
	write_secret(w->proxy_token, token);
	free(token);
	free(out);
	free(name);
	make_ca(w);
	worker_start(w);
	configure(w);
	proxy_start(w);
	haproxy_start(w);
	char *address = vrt_fmt("127.0.0.1:%u", w->haproxy.port);
	vr_agent_config_init(&w->config);
	cr_assert_eq(vr_agent_config_set(&w->config, "agent", "proxy", address, NULL), 0);
	cr_assert_eq(
		vr_agent_config_set(&w->config, "agent", "credential_file", w->cred_file, NULL), 0);
	cr_assert_eq(vr_agent_config_set(&w->config, "agent", "ca_file", w->ca, NULL), 0);
	cr_assert_eq(vr_agent_config_check(&w->config, NULL), 0);
	char *error = NULL;
	cr_assert_eq(vr_agent_tls_init(&w->tls, &w->config, &error), 0, "%s", error);
	free(address);
}

static void world_stop(struct world *w)
{
	vr_agent_tls_free(&w->tls);
	vr_agent_config_free(&w->config);
	stop_proc(&w->haproxy, 5); /* haproxy's own exit status on SIGTERM varies */
	cr_expect_eq(stop_proc(&w->proxy, 10), 0, "%s", read_text(w->proxy.log));
	cr_expect_eq(stop_proc(&w->worker, 15), 0, "%s", read_text(w->worker.log));
	cr_expect(file_contains(w->worker.log, "event=replication_port_closed"));
}

/* --- the source VM ----------------------------------------------------------------- */

struct vm {
	uint64_t blocks[2];
	uint8_t *data[2];
};

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void vm_init(struct vm *vm, uint64_t seed)
{
	vm->blocks[0] = DISK0_BLOCKS;
	vm->blocks[1] = DISK1_BLOCKS;
	for (int d = 0; d < 2; d++) {
		size_t len = vm->blocks[d] * BLOCK;
		vm->data[d] = malloc(len);
		for (size_t i = 0; i < len; i += 8) {
			uint64_t v = next_random(&seed);
			memcpy(vm->data[d] + i, &v, 8);
		}
	}
}

static void vm_free(struct vm *vm)
{
	free(vm->data[0]);
	free(vm->data[1]);
}

/* Write n random blocks of new data; changed[d][b] marks them. Every
 * third block is text-like (a line repeated), which a codec shrinks. */
static void vm_write(struct vm *vm, unsigned n, uint64_t seed, bool *changed[2])
{
	for (unsigned i = 0; i < n; i++) {
		unsigned d = (unsigned)(next_random(&seed) % 2);
		uint64_t b = next_random(&seed) % vm->blocks[d];
		uint8_t *p = vm->data[d] + b * BLOCK;
		if (i % 3 == 0) {
			char line[64];
			int len = snprintf(line, sizeof line, "block %llu of disk %u, write %u\n",
					   (unsigned long long)b, d, i);
			for (size_t k = 0; k < BLOCK; k++)
				p[k] = (uint8_t)line[k % (size_t)len];
		} else {
			for (size_t k = 0; k < BLOCK; k += 8) {
				uint64_t v = next_random(&seed);
				memcpy(p + k, &v, 8);
			}
		}
		if (changed)
			changed[d][b] = true;
	}
}

/* The worker's replica images equal the source. */
static void assert_replica_equals(const struct world *w, const struct vm *vm, const char *when)
{
	struct vr_store *store = NULL;
	char *error = NULL;
	cr_assert_eq(vr_store_open(&store, w->store, w->repl, 10000, &error), 0, "%s: %s", when,
		     error ? error : "");
	cr_assert_eq(vr_store_ndisks(store), 2);
	for (unsigned d = 0; d < 2; d++) {
		FILE *f = fopen(vr_store_disk_path(store, d), "rb");
		cr_assert_not_null(f, "%s: %s", when, vr_store_disk_path(store, d));
		size_t len = vm->blocks[d] * BLOCK;
		uint8_t *got = malloc(len + 1);
		size_t n = fread(got, 1, len + 1, f);
		fclose(f);
		cr_assert_eq(n, len, "%s: disk %u is %zu bytes", when, d, n);
		for (uint64_t b = 0; b < vm->blocks[d]; b++)
			cr_assert_eq(memcmp(got + b * BLOCK, vm->data[d] + b * BLOCK, BLOCK), 0,
				     "%s: disk %u block %llu differs", when, d,
				     (unsigned long long)b);
		free(got);
	}
	vr_store_close(store);
}

/* --- the site's side of a transfer --------------------------------------------------- */

struct xfer {
	uint16_t flags;
	uint8_t instance[VR_TX_ID];
	uint64_t token;
	uint64_t point_ms;	   /* the instance's point in time; 0: now */
	uint8_t codec;		   /* enum vr_tx_codec */
	bool *changed[2];	   /* incremental: the blocks to send */
	const uint8_t *other_repl; /* a header naming another replication */
	unsigned cut_after;	   /* close after this many runs, without a trailer */
	bool corrupt;		   /* flip a byte in the first run's payload */
	/* called after each run with its number (from 1) */
	void (*after_run)(unsigned run, void *arg);
	void *after_run_arg;
};

struct outcome {
	int status;		   /* of the result reply; 1 when cut by us */
	struct vr_tx_reply resume; /* kind 0 when none came */
	struct vr_tx_trailer trailer;
	uint64_t groups_received; /* group hashes the worker sent */
	uint64_t runs;
};

struct rx {
	struct vr_agent_conn *conn;
	uint8_t buf[VR_TX_MAX_HASH_RECORD_LEN + 4096];
	size_t len;
};

/* Read more; false when the worker's side ended. */
static bool rx_more(struct rx *r)
{
	cr_assert_lt(r->len, sizeof r->buf);
	size_t n = 0;
	if (vr_agent_conn_read(r->conn, r->buf + r->len, sizeof r->buf - r->len, &n) != 0 || !n)
		return false;
	r->len += n;
	return true;
}

static void rx_drop(struct rx *r, size_t used)
{
	memmove(r->buf, r->buf + used, r->len - used);
	r->len -= used;
}

/* The next reply; false when the connection ended without one. */
static bool read_reply(struct rx *r, struct vr_tx_reply *out)
{
	for (;;) {
		size_t used = 0;
		int rc = vr_tx_reply_decode(r->buf, r->len, &used, out);
		if (rc == 0) {
			rx_drop(r, used);
			return true;
		}
		cr_assert_eq(rc, VR_TX_ETRUNCATED, "bad reply: %s", vr_tx_strerror(rc));
		if (!rx_more(r))
			return false;
	}
}

/* The hash records up to the end record: remote[d][g] and have[d][g]. */
static uint64_t read_hashes(struct rx *r, const struct vr_tx_header *h, uint8_t *remote[2],
			    bool *have[2])
{
	uint64_t groups = 0;
	for (;;) {
		struct vr_tx_hash_record rec;
		size_t used = 0;
		int rc = vr_tx_hash_record_decode(r->buf, r->len, &used, &rec);
		if (rc == VR_TX_ETRUNCATED) {
			cr_assert(rx_more(r), "the worker closed in its hash records");
			continue;
		}
		cr_assert_eq(rc, 0, "bad hash record: %s", vr_tx_strerror(rc));
		if (rec.kind == VR_TX_HASH_END) {
			rx_drop(r, used);
			return groups;
		}
		cr_assert_eq(vr_tx_hash_record_check(h, &rec), 0);
		for (uint32_t i = 0; i < rec.count; i++) {
			memcpy(remote[rec.disk] + (rec.first_group + i) * VR_TX_HASH,
			       rec.hashes + (size_t)i * VR_TX_HASH, VR_TX_HASH);
			have[rec.disk][rec.first_group + i] = true;
		}
		groups += rec.count;
		rx_drop(r, used);
	}
}

struct sender {
	struct vr_agent_conn *conn;
	bool failed; /* a write failed */
	struct vr_buf out;
	bool corrupt;
	unsigned runs;
};

/* Write what the encoder produced. A write fails once the worker has
 * refused the transfer and closed: the sender stops and reads the result. */
static void flush(struct sender *s)
{
	if (s->out.len && !s->failed)
		s->failed = vr_agent_conn_write(s->conn, s->out.data, s->out.len) != 0;
	s->out.len = 0;
}

/* Whether block b of disk d goes into the stream. */
static bool wanted(const struct vm *vm, const struct xfer *t, unsigned d, uint64_t b,
		   uint8_t *remote[2], bool *have[2])
{
	if (t->flags & VR_TX_INCREMENTAL)
		return t->changed[d][b];
	if (!(t->flags & VR_TX_HASH_COMPARE))
		return true;
	uint64_t g = b / VR_TX_GROUP_BLOCKS;
	if (!have[d][g])
		return true;
	uint64_t first = g * VR_TX_GROUP_BLOCKS;
	uint64_t left = vm->blocks[d] - first;
	uint32_t n = left < VR_TX_GROUP_BLOCKS ? (uint32_t)left : VR_TX_GROUP_BLOCKS;
	uint8_t mine[VR_TX_HASH];
	vr_tx_group_hash(first, n, vm->data[d] + first * BLOCK, mine);
	return memcmp(mine, remote[d] + g * VR_TX_HASH, VR_TX_HASH) != 0;
}

/* Runs of the wanted blocks, up to 256 blocks each; false when cut after
 * t->cut_after runs (a failed write ends the runs early but is no cut). */
static bool send_runs(struct sender *s, struct vr_tx_enc *enc, const struct vm *vm,
		      const struct xfer *t, uint8_t *remote[2], bool *have[2])
{
	for (unsigned d = 0; d < 2; d++) {
		uint64_t b = 0;
		while (b < vm->blocks[d]) {
			if (!wanted(vm, t, d, b, remote, have)) {
				b++;
				continue;
			}
			uint64_t first = b;
			while (b < vm->blocks[d] && b - first < VR_TX_MAX_RUN_BLOCKS &&
			       wanted(vm, t, d, b, remote, have))
				b++;
			cr_assert_eq(vr_tx_enc_run(enc, d, first, (uint32_t)(b - first),
						   vm->data[d] + first * BLOCK),
				     0);
			if (s->corrupt && s->out.len > 100) {
				s->out.data[s->out.len - 100] ^= 0x5a;
				s->corrupt = false;
			}
			flush(s);
			if (s->failed || ++s->runs == t->cut_after)
				return s->failed;
			if (t->after_run)
				t->after_run(s->runs, t->after_run_arg);
		}
	}
	return true;
}

/* A transfer in two halves, so that a test can act between them. */
struct session {
	const struct vm *vm;
	const struct xfer *t;
	struct outcome *o;
	struct vr_agent_conn *conn;
	struct vr_tx_header h;
	struct sender s;
	struct vr_tx_enc enc;
	struct rx *r;
	bool done; /* the worker answered the header with its result */
};

/* Open a data connection, send the header, read the first reply. */
static void session_begin(struct session *x, const struct world *w, const struct vm *vm,
			  const struct xfer *t, struct outcome *o)
{
	memset(x, 0, sizeof *x);
	memset(o, 0, sizeof *o);
	x->vm = vm;
	x->t = t;
	x->o = o;
	char *error = NULL;
	int rc = vr_agent_data_open(&x->conn, &w->tls, &w->config, w->credential, w->repl, &error);
	cr_assert_eq(rc, 0, "data connection: %s", error ? error : "");
	vr_agent_conn_set_timeout(x->conn, 30000);
	struct vr_tx_header *h = &x->h;
	h->version = VR_TX_VERSION;
	h->flags = t->flags;
	h->codec = t->codec;
	h->ndisks = 2;
	memcpy(h->replication, t->other_repl ? t->other_repl : w->repl_id, VR_TX_ID);
	memcpy(h->instance, t->instance, VR_TX_ID);
	h->point_in_time_ms = t->point_ms ? t->point_ms : (uint64_t)time(NULL) * 1000;
	h->resume_token = t->token;
	for (unsigned d = 0; d < 2; d++) {
		snprintf(h->disks[d].key, sizeof h->disks[d].key, "%u", 2000 + d);
		h->disks[d].size = vm->blocks[d] * BLOCK;
	}
	x->s.conn = x->conn;
	x->s.corrupt = t->corrupt;
	vr_buf_init(&x->s.out, 0);
	cr_assert_eq(vr_tx_enc_init(&x->enc, h, vr_tx_sink_buf, &x->s.out), 0);
	flush(&x->s);
	x->r = calloc(1, sizeof *x->r);
	x->r->conn = x->conn;
	struct vr_tx_reply reply;
	cr_assert(read_reply(x->r, &reply), "the worker closed without a reply to the header");
	if (reply.kind == VR_TX_REPLY_RESULT) {
		o->status = reply.status;
		x->done = true;
		return;
	}
	o->resume = reply;
	cr_assert_eq(vr_tx_enc_resume(&x->enc, &reply), 0);
}

/* The hash records, the runs, the trailer and the result; then close. */
static void session_end(struct session *x)
{
	struct outcome *o = x->o;
	uint8_t *remote[2] = {NULL, NULL};
	bool *have[2] = {NULL, NULL};
	if (x->done)
		goto done;
	for (unsigned d = 0; d < 2; d++) {
		uint64_t groups = vr_tx_disk_groups(x->h.disks[d].size);
		remote[d] = calloc(groups, VR_TX_HASH);
		have[d] = calloc(groups, sizeof *have[d]);
	}
	if (x->t->flags & VR_TX_HASH_COMPARE)
		o->groups_received = read_hashes(x->r, &x->h, remote, have);
	if (!send_runs(&x->s, &x->enc, x->vm, x->t, remote, have)) {
		/* let the runs reach the worker, then drop the connection */
		o->status = 1;
		o->runs = x->s.runs;
		vrt_sleep(0.5);
		goto done;
	}
	o->runs = x->s.runs;
	if (!x->s.failed) {
		cr_assert_eq(vr_tx_enc_finish(&x->enc, &o->trailer), 0);
		flush(&x->s);
		vr_agent_conn_finish(x->conn);
	}
	struct vr_tx_reply reply;
	if (!read_reply(x->r, &reply)) {
		o->status = VR_TX_ETRUNCATED; /* the worker's side ended without a result */
		goto done;
	}
	cr_assert_eq(reply.kind, VR_TX_REPLY_RESULT);
	o->status = reply.status;
done:
	for (unsigned d = 0; d < 2; d++) {
		free(remote[d]);
		free(have[d]);
	}
	free(x->r);
	vr_buf_free(&x->s.out);
	vr_agent_conn_close(x->conn);
}

static void transfer(const struct world *w, const struct vm *vm, const struct xfer *t,
		     struct outcome *o)
{
	struct session x;
	session_begin(&x, w, vm, t, o);
	session_end(&x);
}

static void random_id(uint8_t out[VR_TX_ID], uint64_t *seed)
{
	for (int i = 0; i < VR_TX_ID; i += 8) {
		uint64_t v = next_random(seed);
		memcpy(out + i, &v, 8);
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

static char *id_text(const uint8_t id[VR_TX_ID])
{
	return vrt_fmt("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		       id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10],
		       id[11], id[12], id[13], id[14], id[15]);
}

/* The API shows instance as the newest (and, with no retention rules,
 * only) instance, with next as NextInstanceSequenceNumber. */
static void assert_recorded(const struct world *w, const uint8_t instance[VR_TX_ID],
			    const char *next)
{
	char *id = id_text(instance);
	char *path = vrt_fmt("/api/vr/replications/%s/instances", w->repl);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance"), 1,
		     "%s", r.body);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroupInstanceList/vr:Instance/vr:Id)", id);
	vrt_resp_free(&r);
	free(path);
	path = vrt_fmt("/api/vr/replications/%s", w->repl);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationState)", "ok");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)", next);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:CurrentRpoViolation)", "0");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:Id)", id);
	vrt_resp_free(&r);
	free(path);
	free(id);
}

/* The worker's store holds n committed instances. */
static void assert_store_instances(const struct world *w, size_t n, const char *when)
{
	struct vr_store *store = NULL;
	cr_assert_eq(vr_store_open(&store, w->store, w->repl, 10000, NULL), 0);
	struct vr_store_instance *list = NULL;
	size_t got = 0;
	cr_assert_eq(vr_store_instances(store, &list, &got), 0);
	cr_assert_eq(got, n, "%s: %zu instances in the store", when, got);
	free(list);
	vr_store_close(store);
}

/* A counter of the worker's replica server row. */
static long long server_count(const char *column)
{
	char *sql = vrt_fmt("SELECT %s::text FROM replica_servers WHERE name = $1", column);
	char *v = vrt_db_value(sql, VRT_SERVICE);
	long long n = v ? atoll(v) : -1;
	free(v);
	free(sql);
	return n;
}

/* Wait for the heartbeats to bring column to at least want. */
static bool wait_server_count(const char *column, long long want)
{
	double end = vrt_now() + 10;
	while (vrt_now() < end) {
		if (server_count(column) >= want)
			return true;
		vrt_sleep(0.2);
	}
	return false;
}

static bool *new_map(uint64_t blocks)
{
	return calloc(blocks, sizeof(bool));
}

static uint64_t count_map(const bool *map, uint64_t blocks)
{
	uint64_t n = 0;
	for (uint64_t b = 0; b < blocks; b++)
		n += map[b];
	return n;
}

/* --- tests ------------------------------------------------------------------------------ */

Test(replication, full_incremental_and_hash_compare_syncs_land_byte_for_byte, .timeout = 180)
{
	struct world w;
	world_start(&w, NULL);
	vrt_assert_state(w.repl, "notStarted none initialSync false", "before the first sync");
	long long bytes_before = server_count("bytes_in");
	struct vm vm;
	vm_init(&vm, 0x5eed);
	uint64_t seed = 42;

	/* 1. the initial full sync */
	struct xfer t = {.flags = VR_TX_FULL, .token = 1001};
	random_id(t.instance, &seed);
	struct outcome o;
	transfer(&w, &vm, &t, &o);
	cr_assert_eq(o.status, 0, "full sync: %s\n%s", vr_tx_strerror(o.status),
		     read_text(w.worker.log));
	cr_assert_eq(o.trailer.sent_blocks, DISK0_BLOCKS + DISK1_BLOCKS);
	assert_replica_equals(&w, &vm, "after the full sync");
	assert_recorded(&w, t.instance, "2");

	/* 2. an incremental of 300 scattered blocks, compressed with zstd */
	bool *changed[2] = {new_map(DISK0_BLOCKS), new_map(DISK1_BLOCKS)};
	vm_write(&vm, 300, 7, changed);
	uint64_t nchanged =
		count_map(changed[0], DISK0_BLOCKS) + count_map(changed[1], DISK1_BLOCKS);
	struct xfer inc = {.flags = VR_TX_INCREMENTAL, .token = 1002, .codec = VR_TX_CODEC_ZSTD};
	inc.changed[0] = changed[0];
	inc.changed[1] = changed[1];
	random_id(inc.instance, &seed);
	transfer(&w, &vm, &inc, &o);
	cr_assert_eq(o.status, 0, "incremental: %s\n%s", vr_tx_strerror(o.status),
		     read_text(w.worker.log));
	cr_assert_eq(o.trailer.sent_blocks, nchanged);
	cr_assert_lt(o.trailer.sent_bytes, nchanged * BLOCK, "zstd shrank nothing");
	assert_replica_equals(&w, &vm, "after the incremental");
	assert_recorded(&w, inc.instance, "3");
	/* without retention rules the store keeps the newest instance only */
	assert_store_instances(&w, 1, "after the incremental");

	/* 3. a resync by hash compare (lz4): 5 blocks changed behind the log's
	 * back; the worker sends every group hash and gets at most 5 groups */
	vm_write(&vm, 5, 99, NULL);
	struct xfer hc = {
		.flags = VR_TX_FULL | VR_TX_HASH_COMPARE, .token = 1003, .codec = VR_TX_CODEC_LZ4};
	random_id(hc.instance, &seed);
	transfer(&w, &vm, &hc, &o);
	cr_assert_eq(o.status, 0, "hash compare: %s\n%s", vr_tx_strerror(o.status),
		     read_text(w.worker.log));
	cr_assert_eq(o.groups_received, vr_tx_disk_groups(DISK0_BLOCKS * BLOCK) +
						vr_tx_disk_groups(DISK1_BLOCKS * BLOCK));
	cr_assert_leq(o.trailer.sent_blocks, 5 * VR_TX_GROUP_BLOCKS);
	cr_assert_gt(o.trailer.sent_blocks, 0);
	assert_replica_equals(&w, &vm, "after the hash-compare resync");
	assert_recorded(&w, hc.instance, "4");

	/* 4. the same hash compare again: nothing differs, nothing is sent */
	struct xfer same = {.flags = VR_TX_FULL | VR_TX_HASH_COMPARE, .token = 1004};
	random_id(same.instance, &seed);
	transfer(&w, &vm, &same, &o);
	cr_assert_eq(o.status, 0, "empty hash compare: %s", vr_tx_strerror(o.status));
	cr_assert_eq(o.trailer.sent_blocks, 0);
	assert_replica_equals(&w, &vm, "after an empty resync");
	assert_recorded(&w, same.instance, "5");
	cr_assert_eq(count_in_file(w.worker.log, "event=transfer_committed"), 4);
	/* the heartbeats carried the bytes received to the server's totals */
	long long received = (long long)(DISK0_BLOCKS + DISK1_BLOCKS + nchanged) * BLOCK;
	cr_assert(wait_server_count("bytes_in", bytes_before + received),
		  "bytes_in is %lld, expected at least %lld", server_count("bytes_in"),
		  bytes_before + received);
	free(changed[0]);
	free(changed[1]);
	vm_free(&vm);
	world_stop(&w);
}

/* Straight to the worker's port (as a stray client on the internal
 * network would): send text, read the worker's reply until it closes.
 * Returns the reply's status, or 1 when none came. */
static int raw_to_worker(const struct world *w, const char *text)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)w->worker.port),
				   .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (text[0])
		cr_assert_eq(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
	shutdown(fd, SHUT_WR);
	uint8_t buf[4096];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf && (n = recv(fd, buf + len, sizeof buf - len, 0)) > 0)
		len += (size_t)n;
	close(fd);
	struct vr_tx_reply reply;
	size_t used = 0;
	if (vr_tx_reply_decode(buf, len, &used, &reply) != 0)
		return 1;
	cr_assert_eq(reply.kind, VR_TX_REPLY_RESULT);
	return reply.status;
}

Test(replication, a_cut_transfer_resumes_and_hostile_streams_commit_nothing, .timeout = 180)
{
	struct world w;
	world_start(&w, NULL);
	struct vm vm;
	vm_init(&vm, 0xfeed);
	uint64_t seed = 4242;
	struct xfer full = {.flags = VR_TX_FULL, .token = 2001};
	random_id(full.instance, &seed);
	struct outcome o;
	transfer(&w, &vm, &full, &o);
	cr_assert_eq(o.status, 0, "full sync: %s", vr_tx_strerror(o.status));

	long long errors_before = server_count("transfer_errors");

	/* A header naming another replication: refused before any block. */
	struct vm before;
	before.blocks[0] = vm.blocks[0];
	before.blocks[1] = vm.blocks[1];
	before.data[0] = malloc(DISK0_BLOCKS * BLOCK);
	before.data[1] = malloc(DISK1_BLOCKS * BLOCK);
	memcpy(before.data[0], vm.data[0], DISK0_BLOCKS * BLOCK);
	memcpy(before.data[1], vm.data[1], DISK1_BLOCKS * BLOCK);
	bool *changed[2] = {new_map(DISK0_BLOCKS), new_map(DISK1_BLOCKS)};
	vm_write(&vm, 600, 11, changed);
	uint8_t other[VR_TX_ID];
	random_id(other, &seed);
	struct xfer wrong = {.flags = VR_TX_INCREMENTAL, .token = 2002, .other_repl = other};
	wrong.changed[0] = changed[0];
	wrong.changed[1] = changed[1];
	random_id(wrong.instance, &seed);
	transfer(&w, &vm, &wrong, &o);
	cr_assert_eq(o.status, VR_TX_EREPLICATION, "another replication: %s",
		     vr_tx_strerror(o.status));
	cr_assert_eq(o.resume.kind, 0, "no resume reply for another replication");

	/* Strangers on the port: no preamble, a bad one, nothing at all. */
	cr_assert_eq(raw_to_worker(&w, "GET / HTTP/1.0\r\n\r\n"), VR_TX_EMAGIC);
	char *wrong_version =
		vrt_fmt("VRCLOUD-DATA 9 peer=%s replication=%s proxy=x\n", w.peer, w.repl);
	cr_assert_eq(raw_to_worker(&w, wrong_version), VR_TX_EVERSION);
	free(wrong_version);
	cr_assert_eq(raw_to_worker(&w, ""), 1, "an empty connection got a reply");

	/* A corrupted run: refused by its checksum, nothing committed. */
	struct xfer bad = {.flags = VR_TX_INCREMENTAL, .token = 2003, .corrupt = true};
	bad.changed[0] = changed[0];
	bad.changed[1] = changed[1];
	random_id(bad.instance, &seed);
	transfer(&w, &vm, &bad, &o);
	cr_assert_eq(o.status, VR_TX_ECHECKSUM, "a corrupted run: %s", vr_tx_strerror(o.status));
	assert_replica_equals(&w, &before, "after the refusals");
	assert_recorded(&w, full.instance, "2");
	assert_store_instances(&w, 1, "after the refusals");

	/* An incremental cut after 3 runs, then its retry with the same token:
	 * only what the worker had not staged is sent. */
	struct xfer cut = {.flags = VR_TX_INCREMENTAL,
			   .token = 2004,
			   .point_ms = (uint64_t)time(NULL) * 1000,
			   .cut_after = 3};
	cut.changed[0] = changed[0];
	cut.changed[1] = changed[1];
	random_id(cut.instance, &seed);
	transfer(&w, &vm, &cut, &o);
	cr_assert_eq(o.status, 1, "the cut transfer ended otherwise: %d", o.status);
	cr_assert(wait_file_contains(w.worker.log, "error=truncated", 10),
		  "the worker did not notice the cut:\n%s", read_text(w.worker.log));
	assert_replica_equals(&w, &before, "after the cut");
	cr_assert_eq(count_in_file(w.worker.log, "event=transfer_committed"), 1);
	struct xfer retry = cut;
	retry.cut_after = 0;
	transfer(&w, &vm, &retry, &o);
	cr_assert_eq(o.status, 0, "the retry: %s\n%s", vr_tx_strerror(o.status),
		     read_text(w.worker.log));
	uint64_t total = count_map(changed[0], DISK0_BLOCKS) + count_map(changed[1], DISK1_BLOCKS);
	cr_assert_eq(o.trailer.instance_blocks, total);
	cr_assert_gt(o.resume.next_block[0], 0, "the retry did not resume");
	cr_assert_lt(o.trailer.sent_blocks, total, "the retry sent every block again");
	assert_replica_equals(&w, &vm, "after the resumed transfer");
	assert_recorded(&w, retry.instance, "3");
	/* the refusals and the cut count as transfer errors */
	cr_assert(wait_server_count("transfer_errors", errors_before + 3),
		  "transfer_errors is %lld, expected at least %lld",
		  server_count("transfer_errors"), errors_before + 3);

	/* The same instance once more (its result as if lost): answered at
	 * once, nothing new. */
	transfer(&w, &vm, &retry, &o);
	cr_assert_eq(o.status, 0, "a committed instance again: %s", vr_tx_strerror(o.status));
	cr_assert_eq(o.resume.kind, 0, "no resume reply for a committed instance");
	assert_recorded(&w, retry.instance, "3");
	assert_store_instances(&w, 1, "after the repeat");
	free(changed[0]);
	free(changed[1]);
	vm_free(&before);
	vm_free(&vm);
	world_stop(&w);
}

/* SIGTERM the worker once the third run is out. */
static void sigterm_worker(unsigned run, void *arg)
{
	struct world *w = arg;
	if (run != 3)
		return;
	kill(w->worker.pid, SIGTERM);
	cr_assert(wait_file_contains(w->worker.log, "event=stopping", 5) ||
			  wait_file_contains(w->worker.log, "signal", 5),
		  "the worker did not take SIGTERM:\n%s", read_text(w->worker.log));
	vrt_sleep(0.3);
}

Test(replication, a_second_transfer_waits_its_turn_and_sigterm_lets_a_transfer_finish,
     .timeout = 180)
{
	struct world w;
	world_start(&w, NULL);
	struct vm vm;
	vm_init(&vm, 0xabcd);
	uint64_t seed = 777;

	/* While one transfer holds the replica, another of the same
	 * replication is told to come back later; the first goes on. */
	struct xfer first = {.flags = VR_TX_FULL, .token = 3001};
	random_id(first.instance, &seed);
	struct outcome o1, o2;
	struct session held;
	session_begin(&held, &w, &vm, &first, &o1);
	cr_assert(!held.done, "the first transfer was refused: %s", vr_tx_strerror(o1.status));
	struct xfer second = {.flags = VR_TX_FULL, .token = 3002};
	random_id(second.instance, &seed);
	transfer(&w, &vm, &second, &o2);
	cr_assert_eq(o2.status, VR_TX_EBUSY, "a concurrent transfer: %s",
		     vr_tx_strerror(o2.status));
	session_end(&held);
	cr_assert_eq(o1.status, 0, "the held transfer: %s", vr_tx_strerror(o1.status));
	assert_replica_equals(&w, &vm, "after the held transfer");
	assert_recorded(&w, first.instance, "2");

	/* SIGTERM in the middle of an incremental: it finishes, is committed
	 * and recorded, and the worker exits 0 afterwards. */
	bool *changed[2] = {new_map(DISK0_BLOCKS), new_map(DISK1_BLOCKS)};
	vm_write(&vm, 200, 5, changed);
	struct xfer inc = {.flags = VR_TX_INCREMENTAL,
			   .token = 3003,
			   .after_run = sigterm_worker,
			   .after_run_arg = &w};
	inc.changed[0] = changed[0];
	inc.changed[1] = changed[1];
	random_id(inc.instance, &seed);
	struct outcome o3;
	transfer(&w, &vm, &inc, &o3);
	cr_assert_eq(o3.status, 0, "the transfer across SIGTERM: %s\n%s", vr_tx_strerror(o3.status),
		     read_text(w.worker.log));
	int status = stop_proc(&w.worker, 15);
	cr_assert_eq(status, 0, "the worker exited %d:\n%s", status, read_text(w.worker.log));
	assert_replica_equals(&w, &vm, "after the transfer across SIGTERM");
	assert_recorded(&w, inc.instance, "3");
	cr_assert(file_contains(w.worker.log, "event=replication_port_closed"));
	cr_assert(!file_contains(w.worker.log, "event=transfers_cut"));
	free(changed[0]);
	free(changed[1]);
	vm_free(&vm);
	world_stop(&w);
}

/* With max_transfers 1, a second connection is told receiver busy before
 * the replica is even opened; once the first is done it gets through. */
Test(replication, beyond_max_transfers_a_transfer_is_told_to_come_back, .timeout = 180)
{
	struct world w;
	world_start(&w, "1");
	struct vm vm;
	vm_init(&vm, 0x1234);
	uint64_t seed = 99;
	struct xfer first = {.flags = VR_TX_FULL, .token = 4001};
	random_id(first.instance, &seed);
	struct outcome o1, o2;
	struct session held;
	session_begin(&held, &w, &vm, &first, &o1);
	cr_assert(!held.done, "the first transfer was refused: %s", vr_tx_strerror(o1.status));
	struct xfer second = {.flags = VR_TX_FULL, .token = 4002};
	random_id(second.instance, &seed);
	transfer(&w, &vm, &second, &o2);
	cr_assert_eq(o2.status, VR_TX_EBUSY, "beyond max_transfers: %s", vr_tx_strerror(o2.status));
	cr_assert(file_contains(w.worker.log, "takes no more transfers"), "%s",
		  read_text(w.worker.log));
	session_end(&held);
	cr_assert_eq(o1.status, 0, "the first transfer: %s", vr_tx_strerror(o1.status));
	/* the slot is free again once the first connection has ended */
	cr_assert(wait_file_contains(w.worker.log, "event=transfer_committed", 5));
	vrt_sleep(0.5);
	vm_write(&vm, 50, 3, NULL);
	transfer(&w, &vm, &second, &o2);
	cr_assert_eq(o2.status, 0, "the second transfer later: %s\n%s", vr_tx_strerror(o2.status),
		     read_text(w.worker.log));
	assert_replica_equals(&w, &vm, "after the second transfer");
	assert_recorded(&w, second.instance, "3");
	vm_free(&vm);
	world_stop(&w);
}

/* SIGKILL the worker after the fifth run of a full sync; a new worker on
 * the same store resumes the transfer (same instance and token) from what
 * was staged, and the replica ends equal to the source. */
static void sigkill_worker(unsigned run, void *arg)
{
	struct world *w = arg;
	if (run != 5)
		return;
	vrt_sleep(0.3); /* let the runs be staged */
	kill(w->worker.pid, SIGKILL);
	waitpid(w->worker.pid, NULL, 0);
	w->worker.pid = 0;
}

Test(replication, a_transfer_cut_by_sigkill_of_the_worker_resumes_on_its_restart, .timeout = 180)
{
	struct world w;
	world_start(&w, NULL);
	struct vm vm;
	vm_init(&vm, 0x9999);
	uint64_t seed = 5;
	struct xfer full = {.flags = VR_TX_FULL,
			    .token = 5001,
			    .point_ms = (uint64_t)time(NULL) * 1000,
			    .after_run = sigkill_worker,
			    .after_run_arg = &w};
	random_id(full.instance, &seed);
	struct outcome o;
	struct session x;
	session_begin(&x, &w, &vm, &full, &o);
	cr_assert(!x.done);
	session_end(&x);
	cr_assert_neq(o.status, 0, "a transfer to a killed worker succeeded");
	assert_store_instances(&w, 0, "after the SIGKILL");
	worker_start(&w);
	struct xfer retry = full;
	retry.after_run = NULL;
	transfer(&w, &vm, &retry, &o);
	cr_assert_eq(o.status, 0, "the retry: %s\n%s", vr_tx_strerror(o.status),
		     read_text(w.worker.log));
	cr_assert_gt(o.resume.next_block[0], 0, "the retry did not resume");
	cr_assert_lt(o.trailer.sent_blocks, DISK0_BLOCKS + DISK1_BLOCKS);
	cr_assert_eq(o.trailer.instance_blocks, DISK0_BLOCKS + DISK1_BLOCKS);
	assert_replica_equals(&w, &vm, "after the resumed full sync");
	assert_recorded(&w, retry.instance, "2");
	vm_free(&vm);
	world_stop(&w);
}

/* --- vrcloud-agent's sender into the real worker -------------------------------- */

#include "vrcloud/agent_sync.h"
#include "vrcloud/cbt.h"

static void vm_files(const struct vm *vm, const char *dir)
{
	for (unsigned d = 0; d < 2; d++) {
		char *path = vrt_fmt("%s/disk-%u.img", dir, 2000 + d);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, vm->data[d], vm->blocks[d] * BLOCK),
			     (ssize_t)(vm->blocks[d] * BLOCK));
		close(fd);
		free(path);
	}
}

/* The blocks changed[d] marks written into the files through their logs. */
static void vm_files_update(const struct vm *vm, const char *dir, bool *changed[2])
{
	for (unsigned d = 0; d < 2; d++) {
		char *path = vrt_fmt("%s/disk-%u.img", dir, 2000 + d);
		char *log = vrt_fmt("%s.cbt", path);
		struct vr_cbt_writer *wr = NULL;
		cr_assert_eq(vr_cbt_writer_open(&wr, log, vm->blocks[d] * BLOCK), 0);
		int fd = open(path, O_WRONLY);
		for (uint64_t b = 0; b < vm->blocks[d]; b++)
			if (changed[d][b]) {
				cr_assert_eq(vr_cbt_writer_mark(wr, b * BLOCK, BLOCK), 0);
				cr_assert_eq(pwrite(fd, vm->data[d] + b * BLOCK, BLOCK,
						    (off_t)(b * BLOCK)),
					     BLOCK);
			}
		fsync(fd);
		close(fd);
		cr_assert_eq(vr_cbt_writer_close_clean(wr), 0);
		vr_cbt_writer_free(wr);
		free(log);
		free(path);
	}
}

Test(replication, the_agent_sender_syncs_into_the_worker_byte_for_byte, .timeout = 180)
{
	struct world w;
	world_start(&w, NULL);
	struct vm vm;
	vm_init(&vm, 0xa6e);
	char *vmdir = vrt_fmt("%s/vm", w.dir), *state = vrt_fmt("%s/state", w.dir);
	cr_assert_eq(mkdir(vmdir, 0755), 0);
	cr_assert_eq(mkdir(state, 0700), 0);
	vm_files(&vm, vmdir);
	for (unsigned d = 0; d < 2; d++) {
		char *log = vrt_fmt("%s/disk-%u.img.cbt", vmdir, 2000 + d);
		cr_assert_eq(vr_cbt_create(log, vm.blocks[d] * BLOCK, 1), 0);
		free(log);
	}
	char *ini = vrt_fmt("[vm]\nname = port-vm\n[disk 2000]\nfile = disk-2000.img\n"
			    "[disk 2001]\nfile = disk-2001.img\n");
	char *ini_path = vrt_fmt("%s/vm.ini", vmdir);
	FILE *f = fopen(ini_path, "w");
	fputs(ini, f);
	fclose(f);
	struct vr_agent_repl r;
	memset(&r, 0, sizeof r);
	memcpy(r.id, w.repl, VR_UUID_LEN);
	r.vm_name = strdup("port-vm");
	r.vmdir = strdup(vmdir);
	r.rpo = 15;
	r.compress = true;
	r.ndisks = 2;
	for (unsigned d = 0; d < 2; d++) {
		snprintf(r.disks[d].key, sizeof r.disks[d].key, "%u", 2000 + d);
		r.disks[d].size = vm.blocks[d] * BLOCK;
	}
	char *error = NULL;
	cr_assert_eq(vr_agent_repl_save(&r, state, &error), 0);
	vr_agent_repl_free(&r);
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	cr_assert_eq(vr_agent_credential_read(credential, w.cred_file, &error), 0);
	struct vr_agent_sync_env env = {.config = &w.config,
					.tls = &w.tls,
					.credential = credential,
					.state_dir = state,
					.timeout_ms = 20000};
	struct vr_agent_sync_result res;
	/* the first instance: full, hash compare */
	int rc = vr_agent_sync(&env, w.repl, &res, &error);
	cr_assert_eq(rc, 0, "full: %s\n%s", error, read_text(w.worker.log));
	cr_assert(res.full);
	assert_replica_equals(&w, &vm, "after the agent's full sync");
	uint8_t instance[VR_TX_ID];
	cr_assert_eq(vr_tx_id_parse(instance, res.instance), 0);
	assert_recorded(&w, instance, "2");
	/* an incremental instance from the logs, compressed */
	bool *changed[2] = {new_map(DISK0_BLOCKS), new_map(DISK1_BLOCKS)};
	vm_write(&vm, 300, 17, changed);
	vm_files_update(&vm, vmdir, changed);
	rc = vr_agent_sync(&env, w.repl, &res, &error);
	cr_assert_eq(rc, 0, "incremental: %s\n%s", error, read_text(w.worker.log));
	cr_assert_not(res.full);
	assert_replica_equals(&w, &vm, "after the agent's incremental sync");
	cr_assert_eq(vr_tx_id_parse(instance, res.instance), 0);
	assert_recorded(&w, instance, "3");
	/* nothing changed: an empty incremental instance */
	rc = vr_agent_sync(&env, w.repl, &res, &error);
	cr_assert_eq(rc, 0, "empty: %s\n%s", error, read_text(w.worker.log));
	cr_assert_eq(res.blocks, 0);
	assert_replica_equals(&w, &vm, "after an empty incremental sync");
	cr_assert_eq(count_in_file(w.worker.log, "event=transfer_committed"), 3);
	free(changed[0]);
	free(changed[1]);
	free(ini);
	free(ini_path);
	free(vmdir);
	free(state);
	vm_free(&vm);
	world_stop(&w);
}
