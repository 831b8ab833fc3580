/* The agent's sender end to end (docs/agent.md): vrcloud-proxy as built,
 * TLS with a CA made by contrib/tunnel-test-ca, the harness's vrcloud-api
 * (which checks the site credential and names the replication's worker)
 * and Redis. The worker's side is a receiver in this process built on the
 * transfer decoder: it stages the runs of an instance, answers the resume
 * reply and, for hash-compare transfers, the hash records of its replica,
 * and commits the staged blocks into replica images when the trailer is
 * verified. Every check compares images byte for byte: the replica equals
 * the source as it was at the instance's start, while vrcloud-io keeps
 * writing into the source (a freeze hook stops the writer and copies the
 * disks, the thaw hook lets it go on). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/agent.h"
#include "vrcloud/agent_sync.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"
#include "vrcloud/redis.h"
#include "vrcloud/transfer.h"

VRT_SUITE(.name = "agent_sync", .jobs = 1, .redis_db = 14);

#define N(a)	 (sizeof(a) / sizeof((a)[0]))
#define MIB	 ((uint64_t)1 << 20)
#define DISK0	 (16 * MIB)
#define DISK1	 (4 * MIB)
#define MAXDISKS 2

/* --- helpers ---------------------------------------------------------------------- */

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
	char *text = calloc(1, 1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

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

static struct vr_redis *redis(void)
{
	static struct vr_redis *r;
	if (!r)
		cr_assert_eq(vr_redis_open(&r, vrt_env("VRT_REDIS_URI")), 0);
	return r;
}

static void rcmd(int argc, const char **argv)
{
	redisReply *r = vr_redis_command(redis(), argc, argv);
	cr_assert_not_null(r, "Redis did not answer %s", argv[0]);
	cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", argv[0], r->str);
	freeReplyObject(r);
}

/* Byte-for-byte equality of two files of the same size. */
static void assert_same_file(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	cr_assert_geq(fa, 0, "%s", a);
	cr_assert_geq(fb, 0, "%s", b);
	struct stat sa, sb;
	fstat(fa, &sa);
	fstat(fb, &sb);
	cr_assert_eq(sa.st_size, sb.st_size, "%s and %s differ in size", a, b);
	uint8_t *x = malloc(MIB), *y = malloc(MIB);
	for (off_t at = 0; at < sa.st_size; at += (off_t)MIB) {
		ssize_t n = pread(fa, x, MIB, at), m = pread(fb, y, MIB, at);
		cr_assert_eq(n, m);
		cr_assert_gt(n, 0);
		if (memcmp(x, y, (size_t)n) != 0) {
			size_t i = 0;
			while (x[i] == y[i])
				i++;
			cr_assert_fail("%s and %s differ at byte %lld (block %lld)", a, b,
				       (long long)(at + (off_t)i),
				       (long long)((at + (off_t)i) / 4096));
		}
	}
	free(x);
	free(y);
	close(fa);
	close(fb);
}

static void copy_file(const char *from, const char *to)
{
	char *argv[] = {(char *)"/bin/cp", (char *)from, (char *)to, NULL};
	int status;
	free(run_capture(argv, &status));
	cr_assert_eq(status, 0);
}

/* --- the stand-in worker ------------------------------------------------------------- */

struct staged {
	unsigned disk;
	uint64_t block;
	uint8_t leaf[VR_TX_HASH];
	uint8_t data[VR_TX_BLOCK];
};

/* The lies a hostile worker tells (receiver.hostile). */
enum { HOSTILE_INSTANCE = 1, HOSTILE_POSITION, HOSTILE_GARBAGE, HOSTILE_HASHES };

struct receiver {
	int listen_fd;
	unsigned port;
	pthread_t thread;
	atomic_bool stop;
	char replica[MAXDISKS][320];
	/* staging: one instance's blocks, kept over cut connections */
	bool staging;
	uint8_t instance[VR_TX_ID];
	uint64_t token;
	struct staged *staged;
	size_t nstaged, cap;
	uint8_t committed[64][VR_TX_ID]; /* the latest committed instances */
	size_t ncommitted;
	/* knobs */
	atomic_long cut_after_runs; /* the next connection closes after this many runs; -1 none */
	atomic_uint run_delay_ms;   /* a pause after each run (a slow worker) */
	atomic_int hostile;	    /* the next connection's replies: 0 honest, else a lie below */
	/* what happened */
	atomic_uint connections, commits, refusals;
	atomic_bool resumed; /* a resume reply named a position above 0 */
	atomic_uint already; /* headers of committed instances answered with success */
	atomic_ullong received_blocks, committed_blocks, last_flags, hashed_groups;
	int64_t last_pit_ms;
	atomic_uint last_codec;
	char preamble[512];
};

static ssize_t write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The newest data of block b of disk d: staged, else the replica's. */
static void view_block(struct receiver *r, int fd, unsigned d, uint64_t b, uint8_t *out)
{
	for (size_t i = r->nstaged; i-- > 0;)
		if (r->staged[i].disk == d && r->staged[i].block == b) {
			memcpy(out, r->staged[i].data, VR_TX_BLOCK);
			return;
		}
	cr_assert_eq(pread(fd, out, VR_TX_BLOCK, (off_t)(b * VR_TX_BLOCK)), VR_TX_BLOCK);
}

struct hash_writer {
	int fd;
	struct vr_buf records;
	pthread_t thread;
};

static void *hash_writer_main(void *arg)
{
	struct hash_writer *h = arg;
	write_full(h->fd, h->records.data, h->records.len);
	return NULL;
}

/* The hash records of the replica from each disk's resume position. */
static void hash_records(struct receiver *r, const struct vr_tx_header *hdr,
			 const struct vr_tx_reply *resume, struct vr_buf *out)
{
	uint8_t *data = malloc(VR_TX_GROUP_BLOCKS * VR_TX_BLOCK);
	for (unsigned d = 0; d < hdr->ndisks; d++) {
		int fd = open(r->replica[d], O_RDONLY);
		cr_assert_geq(fd, 0);
		uint64_t blocks = hdr->disks[d].size / VR_TX_BLOCK;
		uint64_t groups = vr_tx_disk_groups(hdr->disks[d].size);
		uint64_t g = resume->next_block[d] / VR_TX_GROUP_BLOCKS;
		while (g < groups) {
			uint32_t count = groups - g < 100 ? (uint32_t)(groups - g) : 100;
			uint8_t hashes[100 * VR_TX_HASH];
			for (uint32_t k = 0; k < count; k++) {
				uint64_t first = (g + k) * VR_TX_GROUP_BLOCKS;
				uint32_t n = blocks - first < VR_TX_GROUP_BLOCKS
						     ? (uint32_t)(blocks - first)
						     : VR_TX_GROUP_BLOCKS;
				for (uint32_t i = 0; i < n; i++)
					view_block(r, fd, d, first + i,
						   data + (size_t)i * VR_TX_BLOCK);
				vr_tx_group_hash(first, n, data, hashes + (size_t)k * VR_TX_HASH);
			}
			cr_assert_eq(vr_tx_hash_record_encode(d, g, count, hashes, out), 0);
			r->hashed_groups += count;
			g += count;
		}
		close(fd);
	}
	cr_assert_eq(vr_tx_hash_end_encode(out), 0);
	free(data);
}

static void reply(int fd, const struct vr_tx_reply *rep)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_tx_reply_encode(rep, &b), 0);
	write_full(fd, b.data, b.len);
	vr_buf_free(&b);
}

static void result(int fd, const struct vr_tx_dec *dec, int status)
{
	struct vr_tx_reply rep = {.kind = VR_TX_REPLY_RESULT, .status = status};
	memcpy(rep.replication, dec->hdr.replication, VR_TX_ID);
	memcpy(rep.instance, dec->hdr.instance, VR_TX_ID);
	rep.resume_token = dec->hdr.resume_token;
	reply(fd, &rep);
}

static void commit(struct receiver *r)
{
	for (size_t i = 0; i < r->nstaged; i++) {
		int fd = open(r->replica[r->staged[i].disk], O_WRONLY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, r->staged[i].data, VR_TX_BLOCK,
				    (off_t)(r->staged[i].block * VR_TX_BLOCK)),
			     VR_TX_BLOCK);
		close(fd);
	}
	memcpy(r->committed[r->ncommitted++ % 64], r->instance, VR_TX_ID);
	r->committed_blocks = r->nstaged;
	r->nstaged = 0;
	r->staging = false;
	r->commits++;
}

/* One data connection, to its end. */
static void serve(struct receiver *r, int fd)
{
	r->connections++;
	size_t n = 0;
	uint8_t line[VR_TX_PREAMBLE_MAX];
	while (n < sizeof line && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	struct vr_tx_preamble pre;
	size_t used = 0;
	cr_assert_eq(vr_tx_preamble_parse(line, n + 1, &used, &pre), 0, "bad preamble");
	snprintf(r->preamble, sizeof r->preamble, "%.*s", (int)n, line);
	struct vr_tx_dec dec;
	cr_assert_eq(vr_tx_dec_init(&dec, pre.replication_id), 0);
	long cut = atomic_exchange(&r->cut_after_runs, -1);
	long runs = 0;
	struct hash_writer hw = {.fd = fd};
	bool writer = false, done = false;
	uint8_t *buf = malloc(256 * 1024);
	while (!done) {
		ssize_t got = read(fd, buf, 256 * 1024);
		if (got <= 0) {
			if (got == 0)
				vr_tx_dec_end(&dec);
			break;
		}
		size_t off = 0;
		while (off < (size_t)got && !done) {
			int ev = vr_tx_dec_feed(&dec, buf + off, (size_t)got - off, &used);
			off += used;
			if (ev < 0) {
				if (writer)
					pthread_join(hw.thread, NULL);
				writer = false;
				result(fd, &dec, ev);
				r->refusals++;
				done = true;
			} else if (ev == VR_TX_EV_HEADER) {
				r->last_flags = dec.hdr.flags;
				r->last_codec = dec.hdr.codec;
				r->last_pit_ms = (int64_t)dec.hdr.point_in_time_ms;
				bool known = false;
				for (size_t i = 0; i < r->ncommitted && i < 64; i++)
					known |= memcmp(r->committed[i], dec.hdr.instance,
							VR_TX_ID) == 0;
				if (known) {
					/* its result reply was lost: say it is committed */
					result(fd, &dec, 0);
					r->already++;
					done = true;
					continue;
				}
				if (r->staging &&
				    memcmp(r->instance, dec.hdr.instance, VR_TX_ID) == 0 &&
				    r->token == dec.hdr.resume_token) {
					for (size_t i = 0; i < r->nstaged; i++)
						cr_assert_eq(vr_tx_dec_prime(&dec,
									     r->staged[i].disk,
									     r->staged[i].block,
									     r->staged[i].leaf),
							     0);
				} else {
					r->staging = true;
					r->nstaged = 0;
					memcpy(r->instance, dec.hdr.instance, VR_TX_ID);
					r->token = dec.hdr.resume_token;
				}
				struct vr_tx_reply rep;
				cr_assert_eq(vr_tx_dec_resume_reply(&dec, &rep), 0);
				for (unsigned d = 0; d < rep.ndisks; d++)
					if (rep.next_block[d])
						r->resumed = true;
				int lie = atomic_exchange(&r->hostile, 0);
				if (lie == HOSTILE_INSTANCE)
					rep.instance[0] ^= 1;
				else if (lie == HOSTILE_POSITION)
					rep.next_block[0] = dec.hdr.disks[0].size / VR_TX_BLOCK + 1;
				if (lie == HOSTILE_GARBAGE) {
					static const char junk[200] = "VRCXREP\n garbage";
					write_full(fd, junk, sizeof junk);
				} else {
					reply(fd, &rep);
				}
				if (lie == HOSTILE_HASHES) {
					/* a group record whose checksum does not match */
					vr_buf_init(&hw.records, 0);
					hash_records(r, &dec.hdr, &rep, &hw.records);
					hw.records.data[20] ^= 1;
					cr_assert_eq(pthread_create(&hw.thread, NULL,
								    hash_writer_main, &hw),
						     0);
					writer = true;
				} else if (dec.hdr.flags & VR_TX_HASH_COMPARE) {
					vr_buf_init(&hw.records, 0);
					hash_records(r, &dec.hdr, &rep, &hw.records);
					cr_assert_eq(pthread_create(&hw.thread, NULL,
								    hash_writer_main, &hw),
						     0);
					writer = true;
				}
			} else if (ev == VR_TX_EV_RUN) {
				for (uint32_t i = 0; i < dec.run_count; i++) {
					if (r->nstaged == r->cap) {
						r->cap = r->cap ? 2 * r->cap : 1024;
						r->staged = realloc(r->staged,
								    r->cap * sizeof *r->staged);
					}
					struct staged *s = &r->staged[r->nstaged++];
					s->disk = dec.run_disk;
					s->block = dec.run_first + i;
					memcpy(s->data, dec.run_data + (size_t)i * VR_TX_BLOCK,
					       VR_TX_BLOCK);
					vr_tx_leaf(s->block, s->data, s->leaf);
				}
				r->received_blocks += dec.run_count;
				if (atomic_load(&r->run_delay_ms))
					vrt_sleep(atomic_load(&r->run_delay_ms) / 1000.0);
				if (cut >= 0 && ++runs >= cut)
					done = true; /* cut: no reply, the connection just ends */
			} else if (ev == VR_TX_EV_TRAILER) {
				if (writer)
					pthread_join(hw.thread, NULL);
				writer = false;
				commit(r);
				result(fd, &dec, 0);
				done = true;
			}
		}
	}
	if (writer)
		pthread_join(hw.thread, NULL);
	if (hw.records.data)
		vr_buf_free(&hw.records);
	free(buf);
	vr_tx_dec_free(&dec);
	close(fd);
}

static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {r->listen_fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve(r, fd);
	}
	return NULL;
}

static void receiver_start(struct receiver *r)
{
	r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	cr_assert_eq(bind(r->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
	cr_assert_eq(listen(r->listen_fd, 4), 0);
	socklen_t len = sizeof addr;
	getsockname(r->listen_fd, (struct sockaddr *)&addr, &len);
	r->port = ntohs(addr.sin_port);
	atomic_store(&r->cut_after_runs, -1);
	cr_assert_eq(pthread_create(&r->thread, NULL, receiver_main, r), 0);
}

static void receiver_stop(struct receiver *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
	free(r->staged);
}

/* --- the world of one test: a site, a proxy, a VM, its replication ---------------- */

struct proc {
	pid_t pid;
	char log[320];
	unsigned port;
};

struct world {
	char dir[256];
	char prefix[48];
	char peer[40], vdc[40], repl[40], server[40];
	char cred_file[300], token_file[300];
	char ca[300], cert[300], key[300];
	char vmdir[320], state_dir[320];
	char disk[MAXDISKS][400], snap[MAXDISKS][400];
	char io_pid[320];
	struct proc proxy;
	struct receiver recv;
	struct vr_agent_config config;
	struct vr_agent_tls tls;
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
};

static void spawn(struct proc *p, const char *const *argv, const char *out)
{
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		if (out) {
			int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
}

static int stop_proc(struct proc *p, int sig)
{
	if (p->pid <= 0)
		return 0;
	kill(p->pid, sig);
	int status = 0;
	double end = now_s() + 10;
	while (waitpid(p->pid, &status, WNOHANG) == 0) {
		if (now_s() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			break;
		}
		vrt_sleep(0.02);
	}
	p->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
}

static void proxy_start(struct world *w)
{
	struct proc *p = &w->proxy;
	snprintf(p->log, sizeof p->log, "%s/proxy.log", w->dir);
	char *port_file = fmt("%s/proxy.port", w->dir);
	char *exe = fmt("%s/vrcloud-proxy", builddir());
	const char *argv[] = {exe,
			      "--name",
			      "proxy-sync",
			      "--listen",
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
			      vrt_base_url(),
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--redis-prefix",
			      w->prefix,
			      "--internal-listen",
			      "127.0.0.1:0",
			      "--heartbeat-interval",
			      "1",
			      "--log-level",
			      "debug",
			      "--log-file",
			      p->log,
			      NULL};
	spawn(p, argv, NULL);
	double end = now_s() + 15;
	while (now_s() < end && !p->port) {
		char *text = read_text(port_file);
		p->port = (unsigned)atoi(text);
		free(text);
		if (!p->port)
			vrt_sleep(0.05);
	}
	cr_assert_neq(p->port, 0, "vrcloud-proxy wrote no port:\n%s", read_text(p->log));
	free(port_file);
	free(exe);
}

/* A raw image written by vrcloud-io (which keeps its log), seeded. */
static void io_write(const char *disk, uint64_t size, const char *bytes, const char *seed,
		     const char *pattern)
{
	char *exe = fmt("%s/vrcloud-io", builddir());
	char *log = fmt("%s.cbt", disk);
	char *size_text = fmt("%llu", (unsigned long long)size);
	char *argv[] = {exe,
			(char *)"write",
			(char *)disk,
			(char *)"--size",
			size_text,
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
	free(exe);
	free(log);
	free(size_text);
}

/* vrcloud-io writing into disk 0 until stopped; its pid in w->io_pid. */
static void writer_start(struct world *w, struct proc *io, const char *rate)
{
	char *exe = fmt("%s/vrcloud-io", builddir());
	char *log = fmt("%s.cbt", w->disk[0]);
	const char *argv[] = {exe,  "write",  w->disk[0], "--count", "100000000", "--rate",
			      rate, "--seed", "99",	  "--log",   log,	  NULL};
	char *out = fmt("%s/io.log", w->dir);
	spawn(io, argv, out);
	char *pid = fmt("%ld\n", (long)io->pid);
	write_text(w->io_pid, pid, 0644);
	free(pid);
	free(out);
	free(exe);
	free(log);
	vrt_sleep(0.3);
}

static void state_write(const struct world *w, bool quiesce, bool compress)
{
	struct vr_agent_repl r;
	memset(&r, 0, sizeof r);
	memcpy(r.id, w->repl, VR_UUID_LEN);
	r.vm_name = strdup("sync-vm");
	r.vmdir = strdup(w->vmdir);
	r.vdc = strdup(w->vdc);
	r.rpo = 5;
	r.quiesce = quiesce;
	r.compress = compress;
	if (quiesce) {
		/* freeze: stop the writer, then keep the disks as they are now */
		r.freeze_cmd = fmt("p=$(cat %s); if [ \"$p\" -gt 0 ]; then kill -STOP $p; fi; "
				   "cp %s %s && cp %s %s",
				   w->io_pid, w->disk[0], w->snap[0], w->disk[1], w->snap[1]);
		r.thaw_cmd =
			fmt("p=$(cat %s); if [ \"$p\" -gt 0 ]; then kill -CONT $p; fi", w->io_pid);
	}
	r.ndisks = 2;
	snprintf(r.disks[0].key, sizeof r.disks[0].key, "2000");
	r.disks[0].size = DISK0;
	snprintf(r.disks[1].key, sizeof r.disks[1].key, "2001");
	r.disks[1].size = DISK1;
	char *error = NULL;
	cr_assert_eq(vr_agent_repl_save(&r, w->state_dir, &error), 0, "%s", error);
	vr_agent_repl_free(&r);
}

static void world_init(struct world *w)
{
	signal(SIGPIPE, SIG_IGN);
	memset(w, 0, sizeof *w);
	snprintf(w->dir, sizeof w->dir, "%s/agent-sync-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->prefix, sizeof w->prefix, "vrs%ld-%s", (long)getpid(),
		 strrchr(w->dir, '-') + 1);
	char *vdc = vrt_new_vdc(true, true, true);
	snprintf(w->vdc, sizeof w->vdc, "%s", vdc);
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	free(vdc);
	free(peer);
	snprintf(w->cred_file, sizeof w->cred_file, "%s/credential", w->dir);
	char *out = ctl("peer", "credential", w->peer, NULL);
	char *c = kv(out, "credential");
	char *line = fmt("%s\n", c);
	write_text(w->cred_file, line, 0600);
	free(line);
	free(c);
	free(out);
	char *name = fmt("proxy-%s", w->prefix);
	out = ctl("service", "add", name, "--kind", "proxy", NULL);
	char *token = kv(out, "token");
	snprintf(w->token_file, sizeof w->token_file, "%s/proxy-token", w->dir);
	line = fmt("%s\n", token);
	write_text(w->token_file, line, 0600);
	free(line);
	free(token);
	free(out);
	free(name);
	/* the CA of the proxy's certificate */
	char *script = fmt("%s/contrib/tunnel-test-ca", srcdir());
	char *ca_dir = fmt("%s/ca", w->dir);
	char *argv[] = {(char *)"/bin/bash", script, ca_dir, (char *)"localhost",
			(char *)"127.0.0.1", NULL};
	int status;
	out = run_capture(argv, &status);
	cr_assert_eq(status, 0, "tunnel-test-ca exited %d:\n%s", status, out);
	char *v;
	snprintf(w->ca, sizeof w->ca, "%s", v = kv(out, "ca"));
	free(v);
	snprintf(w->cert, sizeof w->cert, "%s", v = kv(out, "cert"));
	free(v);
	snprintf(w->key, sizeof w->key, "%s", v = kv(out, "key"));
	free(v);
	free(out);
	free(script);
	free(ca_dir);
	/* the receiver is the replication's worker */
	receiver_start(&w->recv);
	char *address = fmt("127.0.0.1:%u", w->recv.port);
	char *server = vrt_db_value("INSERT INTO replica_servers (name, traffic_address)"
				    " VALUES ('as-' || $1, $2) RETURNING id::text",
				    strrchr(w->dir, '-') + 1, address);
	char *repl = vrt_new_replication(w->vdc, "sync-vm", true, NULL);
	vrt_db_exec("UPDATE replications SET replica_server_id = $2::uuid WHERE id = $1::uuid",
		    repl, server);
	snprintf(w->server, sizeof w->server, "%s", server);
	snprintf(w->repl, sizeof w->repl, "%s", repl);
	free(address);
	free(server);
	free(repl);
	proxy_start(w);
	/* the VM: two disks written by vrcloud-io, each with its log */
	snprintf(w->vmdir, sizeof w->vmdir, "%s/vm", w->dir);
	snprintf(w->state_dir, sizeof w->state_dir, "%s/state", w->dir);
	cr_assert_eq(mkdir(w->vmdir, 0755), 0);
	cr_assert_eq(mkdir(w->state_dir, 0700), 0);
	snprintf(w->io_pid, sizeof w->io_pid, "%s/io.pid", w->dir);
	write_text(w->io_pid, "0\n", 0644);
	static const uint64_t sizes[MAXDISKS] = {DISK0, DISK1};
	for (int d = 0; d < MAXDISKS; d++) {
		snprintf(w->disk[d], sizeof w->disk[d], "%s/disk-%d.img", w->vmdir, 2000 + d);
		snprintf(w->snap[d], sizeof w->snap[d], "%s/snap-%d.img", w->dir, 2000 + d);
		snprintf(w->recv.replica[d], sizeof w->recv.replica[d], "%s/replica-%d.img", w->dir,
			 2000 + d);
		int fd = open(w->recv.replica[d], O_RDWR | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ftruncate(fd, (off_t)sizes[d]), 0);
		close(fd);
	}
	io_write(w->disk[0], DISK0, "6M", "1", "sequential");
	io_write(w->disk[1], DISK1, "1M", "2", "random");
	char *ini = fmt("[vm]\nname = sync-vm\npower = on\n[disk 2000]\nfile = disk-2000.img\n"
			"[disk 2001]\nfile = disk-2001.img\nsize = %llu\n",
			(unsigned long long)DISK1);
	char *ini_path = fmt("%s/vm.ini", w->vmdir);
	write_text(ini_path, ini, 0644);
	free(ini);
	free(ini_path);
	/* the agent's settings for data connections from this process */
	vr_agent_config_init(&w->config);
	char *proxies = fmt("127.0.0.1:%u", w->proxy.port);
	cr_assert_eq(vr_agent_config_set(&w->config, "agent", "proxy", proxies, NULL), 0);
	cr_assert_eq(
		vr_agent_config_set(&w->config, "agent", "credential_file", w->cred_file, NULL), 0);
	cr_assert_eq(vr_agent_config_set(&w->config, "agent", "ca_file", w->ca, NULL), 0);
	cr_assert_eq(vr_agent_config_set(&w->config, "agent", "state_dir", w->state_dir, NULL), 0);
	cr_assert_eq(vr_agent_config_check(&w->config, NULL), 0);
	free(proxies);
	char *error = NULL;
	cr_assert_eq(vr_agent_credential_read(w->credential, w->cred_file, &error), 0);
	cr_assert_eq(vr_agent_tls_init(&w->tls, &w->config, &error), 0);
}

static void world_free(struct world *w)
{
	stop_proc(&w->proxy, SIGTERM);
	receiver_stop(&w->recv);
	vr_agent_tls_free(&w->tls);
	vr_agent_config_free(&w->config);
}

static int sync_once(struct world *w, struct vr_agent_sync_result *res)
{
	struct vr_agent_sync_env env = {.config = &w->config,
					.tls = &w->tls,
					.credential = w->credential,
					.state_dir = w->state_dir,
					.timeout_ms = 10000};
	char *error = NULL;
	int rc = vr_agent_sync(&env, w->repl, res, &error);
	cr_log_info("sync: rc %d instance %s full %d blocks %llu sent %llu attempts %u%s%s", rc,
		    res->instance, res->full, (unsigned long long)res->blocks,
		    (unsigned long long)res->sent_bytes, res->attempts, error ? ": " : "",
		    error ? error : "");
	free(error);
	if (rc) {
		char *log = read_text(w->proxy.log);
		size_t len = strlen(log);
		cr_log_info("the proxy's log ends:\n%s", log + (len > 3000 ? len - 3000 : 0));
		free(log);
	}
	return rc;
}

/* The replica equals images[0..MAXDISKS) (each a char[400]). */
static void assert_replica_is(const struct world *w, char const (*images)[400])
{
	for (int d = 0; d < MAXDISKS; d++)
		assert_same_file(w->recv.replica[d], images[d]);
}

/* --- tests ------------------------------------------------------------------------ */

Test(agent_sync, instances_equal_the_disks_at_their_start_while_vrcloud_io_writes)
{
	struct world w;
	world_init(&w);
	state_write(&w, true, false);
	struct vr_agent_sync_result res;
	/* the first instance: full, hash compare against the empty replica */
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert(res.full);
	cr_assert_eq(w.recv.last_flags, VR_TX_FULL | VR_TX_HASH_COMPARE);
	cr_assert_gt(w.recv.hashed_groups, 0);
	assert_replica_is(&w, w.disk);
	/* zero blocks (6 MiB + 1 MiB written, the rest zero) were not sent */
	cr_assert_lt(w.recv.committed_blocks, (DISK0 + DISK1) / 4096 / 2);
	struct vr_agent_repl r;
	cr_assert_eq(vr_agent_repl_load(&r, w.state_dir, w.repl, NULL), 0);
	cr_assert_str_eq(r.instance, res.instance);
	cr_assert_eq(r.disks[0].generation, 2, "the log was reset after the instance");
	cr_assert_eq(r.point_in_time_ms, w.recv.last_pit_ms);
	vr_agent_repl_free(&r);

	/* nothing changed: an incremental instance of no blocks */
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert_not(res.full);
	cr_assert_eq(w.recv.last_flags, VR_TX_INCREMENTAL);
	cr_assert_eq(res.blocks, 0);

	/* vrcloud-io writes all along; each instance is the disks at its freeze */
	struct proc io = {0};
	writer_start(&w, &io, "4M");
	for (int i = 0; i < 3; i++) {
		vrt_sleep(0.7);
		cr_assert_eq(sync_once(&w, &res), 0);
		cr_assert_not(res.full);
		cr_assert_gt(res.blocks, 0);
		assert_replica_is(&w, w.snap);
		cr_assert_gt(kill(io.pid, 0) == 0, 0, "the writer went on after the thaw");
	}
	/* the writer stops cleanly; the next instance catches up exactly */
	cr_assert_eq(stop_proc(&io, SIGTERM), 0);
	write_text(w.io_pid, "0\n", 0644);
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert_not(res.full);
	assert_replica_is(&w, w.disk);
	world_free(&w);
}

Test(agent_sync, a_cut_compressed_transfer_resumes_with_what_the_replica_lacks)
{
	struct world w;
	world_init(&w);
	state_write(&w, false, true);
	atomic_store(&w.recv.cut_after_runs, 3);
	struct vr_agent_sync_result res;
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert_eq(res.attempts, 2);
	cr_assert_eq(w.recv.connections, 2);
	/* compressed on the wire: the blocks written by vrcloud-io are random, the
	 * runs that do not shrink go raw */
	cr_assert_eq(w.recv.last_codec, VR_TX_CODEC_ZSTD);
	cr_assert(w.recv.resumed, "the second attempt did not resume");
	cr_assert_eq(w.recv.commits, 1);
	/* the blocks of the three runs staged first were not sent again */
	cr_assert_eq(w.recv.received_blocks, w.recv.committed_blocks);
	assert_replica_is(&w, w.disk);

	/* an incremental instance cut the same way sends its spool's rest */
	io_write(w.disk[0], DISK0, "3M", "5", "random");
	io_write(w.disk[1], DISK1, "2M", "6", "random");
	atomic_store(&w.recv.cut_after_runs, 2);
	w.recv.received_blocks = 0;
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert_not(res.full);
	cr_assert_eq(res.attempts, 2);
	cr_assert_eq(w.recv.received_blocks, w.recv.committed_blocks);
	assert_replica_is(&w, w.disk);
	world_free(&w);
}

Test(agent_sync, an_unclean_log_falls_back_to_hash_compare)
{
	struct world w;
	world_init(&w);
	state_write(&w, false, false);
	/* a pre-seeded replica costs a hash pass and almost no traffic */
	copy_file(w.disk[0], w.recv.replica[0]);
	copy_file(w.disk[1], w.recv.replica[1]);
	struct vr_agent_sync_result res;
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert(res.full);
	cr_assert_eq(res.blocks, 0);
	cr_assert_eq(w.recv.committed_blocks, 0);

	/* vrcloud-io killed in the middle: its log is unclean */
	struct proc io = {0};
	writer_start(&w, &io, "2M");
	vrt_sleep(0.5);
	stop_proc(&io, SIGKILL);
	struct vr_cbt_map map;
	char *log = fmt("%s.cbt", w.disk[0]);
	cr_assert_eq(vr_cbt_read(&map, log), 0);
	cr_assert_not(map.clean);
	uint64_t changed = vr_cbt_map_count(&map);
	vr_cbt_map_release(&map);
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert(res.full, "an unclean log is not trusted");
	/* only the groups holding changed blocks went */
	cr_assert_leq(res.blocks, changed * VR_TX_GROUP_BLOCKS);
	cr_assert_gt(res.blocks, 0);
	assert_replica_is(&w, w.disk);
	/* the dead writer's log was reset after it: incremental again */
	io_write(w.disk[0], DISK0, "64K", "8", "random");
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert_not(res.full);
	assert_replica_is(&w, w.disk);
	free(log);
	world_free(&w);
}

static pid_t agent_command(const char *out, const char *const *args);
static int wait_exit(pid_t pid, double timeout_s);

/* --- the daemon ------------------------------------------------------------------ */

static bool inode_in(const unsigned long *set, size_t n, unsigned long inode)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == inode)
			return true;
	return false;
}

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
	cr_assert_not_null(fgets(line, sizeof line, f));
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

/* The process has sockets, none listens or takes datagrams. */
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
	size_t listening = sockets_in(pid, "tcp", inodes, n, "0A", 3, 9) +
			   sockets_in(pid, "tcp6", inodes, n, "0A", 3, 9);
	size_t datagram = sockets_in(pid, "udp", inodes, n, "", 3, 9) +
			  sockets_in(pid, "udp6", inodes, n, "", 3, 9) +
			  sockets_in(pid, "raw", inodes, n, "", 3, 9) +
			  sockets_in(pid, "raw6", inodes, n, "", 3, 9);
	size_t unix_listening = sockets_in(pid, "unix", inodes, n, "00010000", 3, 6);
	cr_assert_eq(listening, 0, "the agent has a listening TCP socket");
	cr_assert_eq(datagram, 0, "the agent has a datagram or raw socket");
	cr_assert_eq(unix_listening, 0, "the agent has a listening unix socket");
}

/* The newest instance the state records ("" before the first). */
static char *state_instance(const struct world *w)
{
	struct vr_agent_repl r;
	if (vr_agent_repl_load(&r, w->state_dir, w->repl, NULL))
		return strdup("");
	char *id = strdup(r.instance);
	vr_agent_repl_free(&r);
	return id;
}

static char *wait_instance_other_than(const struct world *w, const char *previous, double timeout_s)
{
	double end = now_s() + timeout_s;
	while (now_s() < end) {
		char *id = state_instance(w);
		if (id[0] && strcmp(id, previous) != 0)
			return id;
		free(id);
		vrt_sleep(0.1);
	}
	return NULL;
}

/* Command name for the world's replication, with further "key=value\n" fields. */
static void push_command(const struct world *w, int n, const char *name, const char *fields)
{
	char *key = fmt("%s:tunnel:commands:%s", w->prefix, w->peer);
	char *element = fmt("id=9a0b0c0d-0000-4000-8%03d-%012d\nname=%s\nreplication=%s\n%s", n,
			    getpid(), name, w->repl, fields);
	const char *push[] = {"RPUSH", key, element};
	rcmd(3, push);
	char *channel = fmt("%s:tunnel:wake", w->prefix);
	const char *publish[] = {"PUBLISH", channel, w->peer};
	rcmd(3, publish);
	free(channel);
	free(element);
	free(key);
}

/* configChanged with the settings of a reconfigure reaches the state; a sync
 * with quiesce=true runs the hooks of a replication that has quiescing off. */
static void settings_and_quiesced_sync(struct world *w, const char *previous, const char *log)
{
	struct vr_agent_repl r;
	char *error = NULL;
	/* the sync that recorded previous may still be writing the state */
	for (double end = now_s() + 20; vr_agent_repl_busy(w->state_dir, w->repl) && now_s() < end;)
		vrt_sleep(0.05);
	cr_assert_eq(vr_agent_repl_load(&r, w->state_dir, w->repl, &error), 0, "%s", error);
	char *frozen = fmt("%s/frozen", w->dir), *thawed = fmt("%s/thawed", w->dir);
	r.freeze_cmd = fmt("touch %s", frozen);
	r.thaw_cmd = fmt("touch %s", thawed);
	cr_assert_eq(vr_agent_repl_save(&r, w->state_dir, &error), 0, "%s", error);
	vr_agent_repl_free(&r);
	push_command(w, 1, "configChanged", "rpo=7\ncompress=true\nretention=6x10,4x60\n");
	double end = now_s() + 20;
	for (;;) {
		cr_assert_eq(vr_agent_repl_load(&r, w->state_dir, w->repl, &error), 0, "%s", error);
		if (r.rpo == 7 || now_s() > end)
			break;
		vr_agent_repl_free(&r);
		vrt_sleep(0.1);
	}
	cr_assert_eq(r.rpo, 7, "configChanged did not reach the state:\n%s", read_text(log));
	cr_assert(r.compress);
	cr_assert_not(r.quiesce, "a setting the command does not name stays");
	cr_assert_str_eq(r.retention, "6x10,4x60");
	cr_assert_str_eq(r.instance, previous);
	vr_agent_repl_free(&r);
	cr_assert_neq(access(frozen, F_OK), 0, "no hook ran before it was asked for");
	io_write(w->disk[1], DISK1, "64K", "13", "random");
	push_command(w, 2, "sync", "quiesce=true\n");
	char *next = wait_instance_other_than(w, previous, 30);
	cr_assert_not_null(next, "the quiesced sync brought no instance:\n%s", read_text(log));
	cr_assert_eq(access(frozen, F_OK), 0, "the freeze hook did not run:\n%s", read_text(log));
	cr_assert_eq(access(thawed, F_OK), 0, "the thaw hook did not run:\n%s", read_text(log));
	assert_replica_is(w, w->disk);
	/* a log of another generation: the quiesced instance is a full one, frozen
	 * to its end */
	for (double until = now_s() + 20;
	     vr_agent_repl_busy(w->state_dir, w->repl) && now_s() < until;)
		vrt_sleep(0.05);
	unlink(frozen);
	unlink(thawed);
	char *cbt = fmt("%s.cbt", w->disk[1]);
	cr_assert_eq(unlink(cbt), 0);
	io_write(w->disk[1], DISK1, "64K", "14", "random");
	push_command(w, 3, "sync", "quiesce=true\n");
	char *full = wait_instance_other_than(w, next, 30);
	cr_assert_not_null(full, "the quiesced full sync brought no instance:\n%s", read_text(log));
	cr_assert_eq(access(frozen, F_OK), 0, "no freeze for the full instance:\n%s", read_text(log));
	for (double until = now_s() + 20; access(thawed, F_OK) != 0 && now_s() < until;)
		vrt_sleep(0.05);
	cr_assert_eq(access(thawed, F_OK), 0, "no thaw after the full instance:\n%s",
		     read_text(log));
	char *text = read_text(log);
	cr_assert_not_null(strstr(text, "stays quiesced until the transfer ends"), "%s", text);
	assert_replica_is(w, w->disk);
	free(text);
	free(full);
	free(cbt);
	free(next);
	free(frozen);
	free(thawed);
}

Test(agent_sync, the_daemon_syncs_at_once_and_on_a_sync_command_and_listens_nowhere)
{
	struct world w;
	world_init(&w);
	state_write(&w, false, false);
	char *config = fmt("[agent]\nname = site-daemon\nproxy = 127.0.0.1:%u\ncredential_file = "
			   "%s\nca_file = %s\nstate_dir = %s\nbackoff_initial = 100\n"
			   "backoff_max = 1\nsync_workers = 2\n[log]\nlevel = debug\n",
			   w.proxy.port, w.cred_file, w.ca, w.state_dir);
	char *config_path = fmt("%s/agent.ini", w.dir);
	write_text(config_path, config, 0600);
	char *exe = fmt("%s/vrcloud-agent", builddir());
	char *log = fmt("%s/agent.log", w.dir);
	const char *argv[] = {exe, "-c", config_path, "--log-file", log, NULL};
	struct proc agent = {0};
	spawn(&agent, argv, NULL);
	/* the first instance is due at once */
	char *first = wait_instance_other_than(&w, "", 30);
	cr_assert_not_null(first, "no first instance:\n%s", read_text(log));
	assert_replica_is(&w, w.disk);
	/* the schedule puts the next one minutes away; a sync command brings it now */
	io_write(w.disk[1], DISK1, "256K", "11", "random");
	char *key = fmt("%s:tunnel:commands:%s", w.prefix, w.peer);
	char *element = fmt("id=9a0b0c0d-0000-4000-8000-%012d\nname=sync\nreplication=%s\n",
			    getpid(), w.repl);
	const char *push[] = {"RPUSH", key, element};
	rcmd(3, push);
	char *channel = fmt("%s:tunnel:wake", w.prefix);
	const char *publish[] = {"PUBLISH", channel, w.peer};
	rcmd(3, publish);
	char *second = wait_instance_other_than(&w, first, 30);
	cr_assert_not_null(second, "the sync command brought no instance:\n%s", read_text(log));
	assert_replica_is(&w, w.disk);
	assert_listens_nowhere(agent.pid);
	/* status shows it */
	char *status_argv[] = {exe, (char *)"status", (char *)"-d", w.state_dir, NULL};
	int status;
	char *table = run_capture(status_argv, &status);
	cr_assert_eq(status, 0);
	cr_assert_not_null(strstr(table, w.repl), "%s", table);
	cr_assert_not_null(strstr(table, " ok "), "%s", table);
	cr_assert_null(strstr(table, "No vrcloud-agent daemon runs"), "%s", table);
	settings_and_quiesced_sync(&w, second, log);
	cr_assert_eq(stop_proc(&agent, SIGTERM), 0, "%s", read_text(log));
	/* vrcloud-agent sync: one instance in the foreground */
	io_write(w.disk[0], DISK0, "128K", "12", "random");
	char *out = fmt("%s/sync.out", w.dir);
	const char *sync_args[] = {"sync", "sync-vm", "-c", config_path, NULL};
	pid_t pid = agent_command(out, sync_args);
	cr_assert_eq(wait_exit(pid, 60), 0, "%s", read_text(out));
	char *text = read_text(out);
	cr_assert_not_null(strstr(text, "full=no"), "%s", text);
	char *third = state_instance(&w);
	char *want = fmt("instance=%s", third);
	cr_assert_not_null(strstr(text, want), "%s", text);
	assert_replica_is(&w, w.disk);
	free(want);
	free(third);
	free(text);
	free(out);
	free(table);
	free(first);
	free(second);
	free(key);
	free(element);
	free(channel);
	free(config);
	free(config_path);
	free(exe);
	free(log);
	world_free(&w);
}

/* --- protect and unprotect through the API ------------------------------------------- */

/* Run vrcloud-agent with args in the background, its output into out. */
static pid_t agent_command(const char *out, const char *const *args)
{
	char *exe = fmt("%s/vrcloud-agent", builddir());
	const char *argv[40] = {exe};
	size_t n = 1;
	for (; args[n - 1] && n < 39; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	struct proc p = {0};
	spawn(&p, argv, out);
	free(exe);
	return p.pid;
}

static int wait_exit(pid_t pid, double timeout_s)
{
	struct proc p = {.pid = pid};
	double end = now_s() + timeout_s;
	int status = 0;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_s() > end)
			return stop_proc(&p, SIGKILL);
		vrt_sleep(0.05);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
}

/* The job of the Task of rg named operation, once it is there; run it to success. */
static void run_job(const char *rg, const char *operation_name)
{
	char *task = NULL;
	double end = now_s() + 20;
	while (!task && now_s() < end) {
		task = vrt_db_value("SELECT id::text FROM tasks WHERE owner_id = $1::uuid"
				    " AND operation_name = $2",
				    rg, operation_name);
		if (!task)
			vrt_sleep(0.1);
	}
	cr_assert_not_null(task, "no %s Task for %s", operation_name, rg);
	char *job = vrt_job_of(task);
	vrt_job_start(job);
	vrt_job_complete(job, "success");
	free(job);
	free(task);
}

static char *wait_replication(const char *vdc, const char *name)
{
	double end = now_s() + 20;
	while (now_s() < end) {
		char *id = vrt_db_value("SELECT id::text FROM replications WHERE vdc_id = $1::uuid"
					" AND name = $2",
					vdc, name);
		if (id)
			return id;
		vrt_sleep(0.1);
	}
	cr_assert_fail("protect configured no replication %s", name);
	return NULL;
}

Test(agent_sync, protect_configures_the_replication_and_unprotect_removes_it)
{
	struct world w;
	world_init(&w);
	char *vmdir = fmt("%s/protect-vm", w.dir);
	cr_assert_eq(mkdir(vmdir, 0755), 0);
	char *ini = fmt("[vm]\nname = protect-vm\n[disk 2001]\nfile = %s\nsize = %llu\n"
			"[disk 2000]\nfile = %s\n",
			w.disk[1], (unsigned long long)DISK1, w.disk[0]);
	char *ini_path = fmt("%s/vm.ini", vmdir);
	write_text(ini_path, ini, 0644);
	char *pw = fmt("%s/password", w.dir);
	write_text(pw, VRT_PASSWORD "\n", 0600);
	char *out = fmt("%s/protect.out", w.dir);
	const char *args[] = {"protect",     vmdir,	     "--vdc",		w.vdc,
			      "--rpo",	     "15",	     "--quiesce",	"--compress",
			      "--retention", "24x60,7x1440", "--freeze-cmd",	"sync; true",
			      "--thaw-cmd",  "true",	     "--api",		vrt_base_url(),
			      "--user",	     VRT_ADMIN_A,    "--password-file", pw,
			      "--state-dir", w.state_dir,    "--timeout",	"30",
			      NULL};
	pid_t pid = agent_command(out, args);
	char *rg = wait_replication(w.vdc, "protect-vm");
	run_job(rg, "hcsConfigureReplication");
	int status = wait_exit(pid, 30);
	char *text = read_text(out);
	cr_assert_eq(status, 0, "%s", text);
	char *want = fmt("replication=%s", rg);
	cr_assert_not_null(strstr(text, want), "%s", text);
	free(text);
	free(want);
	/* what the cloud has: the VM's disks by device key, the settings, the rules */
	vrt_assert_db("SELECT string_agg(device_key || ':' || size_bytes, ',' ORDER BY device_key)"
		      " FROM disks WHERE replication_id = $1::uuid",
		      rg, "2000:16777216,2001:4194304", "the disks");
	vrt_assert_db("SELECT rpo_minutes || ' ' || quiesce_guest || ' ' || network_compression"
		      " FROM replications WHERE id = $1::uuid",
		      rg, "15 true true", "the settings");
	vrt_assert_db(
		"SELECT string_agg(instances || 'x' || distance_minutes, ',' ORDER BY position)"
		" FROM retention_rules WHERE replication_id = $1::uuid",
		rg, "24x60,7x1440", "the retention rules");
	/* what the agent keeps */
	struct vr_agent_repl r;
	cr_assert_eq(vr_agent_repl_load(&r, w.state_dir, rg, NULL), 0);
	cr_assert_str_eq(r.vm_name, "protect-vm");
	cr_assert_eq(r.rpo, 15);
	cr_assert(r.quiesce);
	cr_assert(r.compress);
	cr_assert_str_eq(r.freeze_cmd, "sync; true");
	cr_assert_str_eq(r.retention, "24x60,7x1440");
	cr_assert_eq(r.ndisks, 2);
	cr_assert_str_eq(r.disks[0].key, "2000");
	cr_assert_eq(r.disks[1].size, DISK1);
	cr_assert_eq(r.instance[0], '\0');
	vr_agent_repl_free(&r);
	/* a second protect of the same VM is refused before the API is asked */
	pid = agent_command(out, args);
	cr_assert_eq(wait_exit(pid, 30), 4);

	/* unprotect: the removal's Task, then the local state goes */
	const char *un[] = {"unprotect", "protect-vm",	    "--user",
			    VRT_ADMIN_A, "--password-file", pw,
			    "--api",	 vrt_base_url(),    "--state-dir",
			    w.state_dir, "--timeout",	    "30",
			    NULL};
	pid = agent_command(out, un);
	run_job(rg, "hcsDelete");
	status = wait_exit(pid, 30);
	text = read_text(out);
	cr_assert_eq(status, 0, "%s", text);
	free(text);
	cr_assert_eq(vr_agent_repl_load(&r, w.state_dir, rg, NULL), VR_ENOTFOUND);
	free(rg);
	free(out);
	free(pw);
	free(ini);
	free(ini_path);
	free(vmdir);
	world_free(&w);
}

/* --- faults ------------------------------------------------------------------------ */

Test(agent_sync, sigkill_of_the_agent_mid_transfer_and_the_next_sync_completes_from_the_spool)
{
	struct world w;
	world_init(&w);
	state_write(&w, true, false);
	struct vr_agent_sync_result res;
	cr_assert_eq(sync_once(&w, &res), 0);
	assert_replica_is(&w, w.disk);
	char *config = fmt("[agent]\nproxy = 127.0.0.1:%u\ncredential_file = %s\nca_file = %s\n"
			   "state_dir = %s\n",
			   w.proxy.port, w.cred_file, w.ca, w.state_dir);
	char *config_path = fmt("%s/agent.ini", w.dir);
	write_text(config_path, config, 0600);
	char *out = fmt("%s/sync.out", w.dir);
	const char *args[] = {"sync", "sync-vm", "-c", config_path, NULL};
	for (int trial = 0; trial < 3; trial++) {
		/* changes, then a sync killed while the worker takes its runs slowly */
		char *seed = fmt("%d", 20 + trial);
		io_write(w.disk[0], DISK0, "16M", seed, "sequential");
		io_write(w.disk[1], DISK1, "512K", seed, "random");
		free(seed);
		unsigned commits = w.recv.commits;
		uint64_t before = w.recv.received_blocks;
		atomic_store(&w.recv.run_delay_ms, 200);
		pid_t pid = agent_command(out, args);
		double end = now_s() + 20;
		while (w.recv.received_blocks < before + 256 * (unsigned)(trial + 1) &&
		       now_s() < end)
			vrt_sleep(0.01);
		cr_assert_lt(now_s(), end, "the transfer did not start:\n%s", read_text(out));
		kill(pid, SIGKILL);
		wait_exit(pid, 10);
		cr_assert_eq(w.recv.commits, commits, "killed, yet committed");
		char *spool = vr_agent_spool_path(w.state_dir, w.repl);
		cr_assert_eq(access(spool, F_OK), 0, "the spool did not outlive the agent");
		/* the next sync sends that instance, only what the worker lacks */
		atomic_store(&w.recv.run_delay_ms, 0);
		w.recv.resumed = false;
		unsigned already = w.recv.already;
		cr_assert_eq(sync_once(&w, &res), 0);
		/* the worker had it staged (the transfer resumes), or had even
		 * committed it (the agent was killed after its trailer): once */
		cr_assert(w.recv.resumed || w.recv.already == already + 1,
			  "the spool's instance did not resume");
		cr_log_info("trial %d: %s", trial,
			    w.recv.resumed ? "resumed from what the worker staged"
					   : "the worker had committed it");
		cr_assert_eq(w.recv.commits, commits + 1);
		/* exactly the disks at the freeze of the killed sync */
		assert_replica_is(&w, w.snap);
		cr_assert_neq(access(spool, F_OK), 0, "the spool outlived its commit");
		free(spool);
	}
	/* and the next takes what changed meanwhile */
	cr_assert_eq(sync_once(&w, &res), 0);
	assert_replica_is(&w, w.disk);
	free(out);
	free(config);
	free(config_path);
	world_free(&w);
}

Test(agent_sync, a_hostile_worker_is_refused_and_changes_nothing)
{
	struct world w;
	world_init(&w);
	state_write(&w, false, false);
	struct vr_agent_sync_result res;
	cr_assert_eq(sync_once(&w, &res), 0);
	char *before = state_instance(&w);
	static const int lies[] = {HOSTILE_INSTANCE, HOSTILE_POSITION, HOSTILE_GARBAGE};
	io_write(w.disk[0], DISK0, "64K", "31", "random");
	for (size_t i = 0; i < N(lies); i++) {
		atomic_store(&w.recv.hostile, lies[i]);
		unsigned commits = w.recv.commits;
		cr_assert_eq(sync_once(&w, &res), VR_EFORBIDDEN, "lie %d was believed", lies[i]);
		cr_assert_eq(w.recv.commits, commits);
		char *now = state_instance(&w);
		cr_assert_str_eq(now, before, "a refused instance was recorded");
		free(now);
	}
	/* a corrupted hash record in a full sync */
	char *log = fmt("%s.cbt", w.disk[0]);
	cr_assert_eq(unlink(log), 0);
	atomic_store(&w.recv.hostile, HOSTILE_HASHES);
	cr_assert_eq(sync_once(&w, &res), VR_EFORBIDDEN);
	/* an honest worker afterwards gets the instance */
	cr_assert_eq(sync_once(&w, &res), 0);
	cr_assert(res.full);
	assert_replica_is(&w, w.disk);
	free(log);
	free(before);
	world_free(&w);
}
