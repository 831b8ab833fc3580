/* The job transport (src/queue/jobq.c) against a real redis-server.
 *
 * Redis: the server named by VRCLOUD_TEST_REDIS, or else one that the
 * Criterion runner starts for this program (a unix socket in a private
 * directory) and stops at the end. Each test uses a key prefix of its own
 * (pid and test name), so tests running side by side, and other programs
 * sharing the server, never see each other's entries. The tests that flush
 * or stop Redis start a server of their own, whatever VRCLOUD_TEST_REDIS
 * says, and stop and reap it before they end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/jobq.h"
#include "vrcloud/redis.h"
#include "vrcloud/uuid.h"

/* ---- time ------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- a redis-server of our own ----------------------------------------- */

/* Listens on a unix socket only (port 0: no TCP), in a directory of mode
 * 0700, so that only this user reaches it even when that is root. */
struct own_redis {
	pid_t pid;
	char dir[64];
	char socket[96];
	char uri[128];
};

static void own_redis_log_tail(const struct own_redis *s)
{
	char path[128];
	snprintf(path, sizeof path, "%s/redis.log", s->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f))
		fprintf(stderr, "redis.log: %s", line);
	fclose(f);
}

static bool own_redis_answers(const struct own_redis *s)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectUnixWithTimeout(s->socket, tv);
	bool ok = false;
	if (c && !c->err) {
		redisReply *r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return ok;
}

/* Wait up to timeout_s for the server to exit; true when it has (reaped). */
static bool own_redis_wait(struct own_redis *s, double timeout_s)
{
	double deadline = now_s() + timeout_s;
	for (;;) {
		int st;
		pid_t r = waitpid(s->pid, &st, WNOHANG);
		if (r == s->pid || (r < 0 && errno == ECHILD)) {
			s->pid = 0;
			return true;
		}
		if (now_s() > deadline)
			return false;
		sleep_ms(10);
	}
}

/* Start (or, with s->dir already set, restart at the same socket) a
 * server. Returns 0, or -1 with its log on stderr. */
static int own_redis_start(struct own_redis *s)
{
	if (!s->dir[0]) {
		/* inside the runner's directory, which goes at the end even
		 * when a test crashed before removing its own */
		const char *parent = getenv("VRT_JOBQ_DIR");
		if (parent && parent[0] && strlen(parent) < 40)
			snprintf(s->dir, sizeof s->dir, "%s/sXXXXXX", parent);
		else
			snprintf(s->dir, sizeof s->dir, "/tmp/vrt-jobq-XXXXXX");
		if (!mkdtemp(s->dir)) {
			s->dir[0] = '\0';
			return -1;
		}
		snprintf(s->socket, sizeof s->socket, "%s/redis.sock", s->dir);
		snprintf(s->uri, sizeof s->uri, "unix://%s", s->socket);
	}
	char log[128];
	snprintf(log, sizeof log, "%s/redis.log", s->dir);
	char *const argv[] = {
		"redis-server", "--port",    "0", "--unixsocket", s->socket, "--unixsocketperm",
		"700",		"--save",    "",  "--appendonly", "no",	     "--dir",
		s->dir,		"--logfile", log, "--daemonize",  "no",	     NULL};
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* never outlive the test process, however it ends */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		setpgid(0, 0);
		int in = open("/dev/null", O_RDWR);
		if (in >= 0) {
			dup2(in, 0);
			dup2(in, 1);
		}
		close_range(3, ~0u, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		_exit(127);
	}
	s->pid = pid;
	double deadline = now_s() + 20;
	while (now_s() < deadline) {
		if (own_redis_answers(s))
			return 0;
		if (own_redis_wait(s, 0))
			break; /* exited */
		sleep_ms(20);
	}
	fprintf(stderr, "redis-server did not start in %s\n", s->dir);
	own_redis_log_tail(s);
	if (s->pid) {
		kill(s->pid, SIGKILL);
		own_redis_wait(s, 10);
	}
	return -1;
}

/* Stop the server and reap it; the directory stays for a restart. */
static void own_redis_stop(struct own_redis *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	if (!own_redis_wait(s, 20)) {
		kill(s->pid, SIGKILL);
		own_redis_wait(s, 10);
	}
}

/* Stop it and remove its directory. */
static void own_redis_remove(struct own_redis *s)
{
	own_redis_stop(s);
	if (!s->dir[0])
		return;
	const char *names[] = {"redis.sock", "redis.log", "dump.rdb"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
		unlink(path);
	}
	rmdir(s->dir);
	s->dir[0] = '\0';
}

/* The runner's directory (VRT_JOBQ_DIR), holding the directories of the
 * servers started by this program, and the program's server when
 * VRCLOUD_TEST_REDIS is not set: started by the runner before the tests,
 * stopped after them (or when the runner exits early). Tests find the
 * server's address in VRT_JOBQ_REDIS. */
static char run_dir[64];
static struct own_redis program_redis;
static pid_t runner_pid;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void runner_cleanup(void)
{
	if (getpid() != runner_pid)
		return;
	own_redis_remove(&program_redis);
	if (run_dir[0])
		nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	run_dir[0] = '\0';
}

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
	(void)tests;
	runner_pid = getpid();
	atexit(runner_cleanup);
	snprintf(run_dir, sizeof run_dir, "/tmp/vrt-jobq-XXXXXX");
	if (!mkdtemp(run_dir)) {
		fprintf(stderr, "test_queue_jobs: mkdtemp: %s\n", strerror(errno));
		run_dir[0] = '\0';
		exit(1);
	}
	setenv("VRT_JOBQ_DIR", run_dir, 1);
	const char *given = getenv("VRCLOUD_TEST_REDIS");
	if (given && given[0]) {
		setenv("VRT_JOBQ_REDIS", given, 1);
		return;
	}
	if (own_redis_start(&program_redis) != 0) {
		fprintf(stderr, "test_queue_jobs: could not start redis-server\n");
		exit(1);
	}
	fprintf(stderr, "test_queue_jobs: VRCLOUD_TEST_REDIS not set: using %s\n",
		program_redis.uri);
	setenv("VRT_JOBQ_REDIS", program_redis.uri, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	runner_cleanup();
}

/* ---- helpers ----------------------------------------------------------- */

static const char *redis_uri(void)
{
	const char *uri = getenv("VRT_JOBQ_REDIS");
	cr_assert(uri && uri[0], "VRT_JOBQ_REDIS is not set");
	return uri;
}

static struct vr_redis *connect_to(const char *uri)
{
	struct vr_redis *redis = NULL;
	int rc = vr_redis_open(&redis, uri);
	cr_assert_eq(rc, 0, "cannot reach Redis at %s: %s", uri, vr_err_str(rc));
	return redis;
}

/* "vrt-jobq-<pid>-<name>": unique to this test process. */
static void make_prefix(char *out, size_t size, const char *name)
{
	snprintf(out, size, "vrt-jobq-%ld-%s", (long)getpid(), name);
}

static struct vr_jobq *open_queue(struct vr_redis *redis, const char *prefix, const char *consumer,
				  unsigned claim_idle_ms, unsigned max_deliveries,
				  unsigned block_ms)
{
	struct vr_jobq_config c = {.prefix = prefix,
				   .consumer = consumer,
				   .claim_idle_ms = claim_idle_ms,
				   .max_deliveries = max_deliveries,
				   .block_ms = block_ms};
	struct vr_jobq *q = NULL;
	cr_assert_eq(vr_jobq_open(&q, redis, &c), 0);
	cr_assert_not_null(q);
	return q;
}

/* Run a command given as NULL-terminated strings; asserts a reply came. */
static redisReply *run(struct vr_redis *redis, ...)
{
	const char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, redis);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && argc < 32)
		argv[argc++] = a;
	va_end(ap);
	redisReply *r = vr_redis_command(redis, argc, argv);
	cr_assert_not_null(r, "no reply to %s", argv[0]);
	return r;
}

static long long run_integer(struct vr_redis *redis, const char *cmd, const char *key)
{
	redisReply *r = run(redis, cmd, key, NULL);
	cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s %s: %s", cmd, key,
		     r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

static long long stream_length(struct vr_redis *redis, const char *prefix, const char *suffix)
{
	char key[200];
	snprintf(key, sizeof key, "%s%s", prefix, suffix);
	return run_integer(redis, "XLEN", key);
}

static unsigned long long pending(struct vr_jobq *q)
{
	unsigned long long n = 99999;
	cr_assert_eq(vr_jobq_pending_count(q, &n), 0);
	return n;
}

static void delete_keys(struct vr_redis *redis, const char *prefix)
{
	char jobs[200], dead[200];
	snprintf(jobs, sizeof jobs, "%s:jobs", prefix);
	snprintf(dead, sizeof dead, "%s:jobs:dead", prefix);
	freeReplyObject(run(redis, "DEL", jobs, dead, NULL));
}

/* Job ids that tell their number: 10000000-0000-4000-8000-<n in hex>. */
static void job_uuid(char out[37], unsigned n)
{
	snprintf(out, 37, "10000000-0000-4000-8000-%012x", n);
}

static unsigned job_number(const char *job_id)
{
	return (unsigned)strtoul(job_id + 24, NULL, 16);
}

static void publish(struct vr_jobq *q, const char *job, char entry[64])
{
	int rc = vr_jobq_publish(q, job, entry);
	cr_assert_eq(rc, 0, "publish %s: %s", job, vr_err_str(rc));
}

static int next(struct vr_jobq *q, struct vr_jobq_delivery *out, unsigned max,
		struct vr_jobq_delivery *dead, unsigned dead_max, unsigned *ndead)
{
	int n = vr_jobq_next(q, out, max, dead, dead_max, ndead);
	cr_assert_geq(n, 0, "next: %s", vr_err_str(n));
	return n;
}

/* ---- publish, deliver, acknowledge --------------------------------------- */

Test(jobq, publish_next_ack)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "basic");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, "w1", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0, "an existing group is fine");

	char job[37], entry[64];
	job_uuid(job, 1);
	publish(q, job, entry);
	cr_assert(strchr(entry, '-') != NULL, "entry id '%s'", entry);
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 1);
	cr_assert_eq(pending(q), 0);

	struct vr_jobq_delivery d[4], dead[4];
	unsigned ndead = 7;
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);
	cr_assert_eq(ndead, 0);
	cr_assert_str_eq(d[0].entry_id, entry);
	cr_assert_str_eq(d[0].job_id, job);
	cr_assert_eq(d[0].deliveries, 1);
	cr_assert_eq(pending(q), 1);

	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 0, "nothing more");
	cr_assert_eq(vr_jobq_ack(q, entry), 0);
	cr_assert_eq(pending(q), 0);
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 0, "acknowledged entries are deleted");
	cr_assert_eq(vr_jobq_ack(q, entry), 0, "acknowledging twice is harmless");

	/* ids are checked, and handed out in their canonical form */
	cr_assert_eq(vr_jobq_publish(q, "10000000-0000-4000-8000-00000000ABCD", entry), 0);
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].job_id, "10000000-0000-4000-8000-00000000abcd");
	cr_assert_eq(vr_jobq_ack(q, d[0].entry_id), 0);

	vr_jobq_close(q);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

Test(jobq, refuses_bad_arguments)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "args");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = NULL;
	struct vr_jobq_config empty = {.prefix = ""};
	cr_assert_eq(vr_jobq_open(&q, redis, &empty), VR_EINVAL);
	cr_assert_null(q);
	struct vr_jobq_config empty_consumer = {.prefix = prefix, .consumer = ""};
	cr_assert_eq(vr_jobq_open(&q, redis, &empty_consumer), VR_EINVAL);
	cr_assert_eq(vr_jobq_open(&q, NULL, NULL), VR_EINVAL);

	/* a publisher needs no consumer name; reading does */
	struct vr_jobq_config publisher = {.prefix = prefix};
	cr_assert_eq(vr_jobq_open(&q, redis, &publisher), 0);
	struct vr_jobq_delivery d[2];
	unsigned ndead = 5;
	cr_assert_eq(vr_jobq_next(q, d, 2, NULL, 0, &ndead), VR_EINVAL);
	cr_assert_eq(ndead, 0);
	cr_assert_eq(vr_jobq_touch(q, "1-1"), VR_EINVAL);
	vr_jobq_close(q);

	q = open_queue(redis, prefix, "w", 0, 0, 0);
	const char *bad_jobs[] = {"", "not-a-uuid", "10000000-0000-4000-8000-00000000000",
				  "10000000-0000-4000-8000-0000000000001",
				  "10000000x0000-4000-8000-000000000001"};
	for (size_t i = 0; i < sizeof bad_jobs / sizeof bad_jobs[0]; i++)
		cr_expect_eq(vr_jobq_publish(q, bad_jobs[i], NULL), VR_EINVAL, "'%s'", bad_jobs[i]);
	const char *bad_entries[] = {"", "1", "1-", "-1", "a-1", "1-1-1", "1 -1"};
	for (size_t i = 0; i < sizeof bad_entries / sizeof bad_entries[0]; i++) {
		cr_expect_eq(vr_jobq_ack(q, bad_entries[i]), VR_EINVAL, "'%s'", bad_entries[i]);
		cr_expect_eq(vr_jobq_touch(q, bad_entries[i]), VR_EINVAL, "'%s'", bad_entries[i]);
	}
	struct vr_jobq_delivery dead[2];
	cr_assert_eq(vr_jobq_next(q, d, 0, dead, 2, &ndead), VR_EINVAL);
	cr_assert_eq(vr_jobq_next(q, d, 2, dead, 2, NULL), VR_EINVAL);
	cr_assert_eq(vr_jobq_next(q, d, 2, NULL, 2, &ndead), VR_EINVAL);
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 0, "nothing was published");
	vr_jobq_close(q);
	vr_jobq_close(NULL);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

/* The API may publish before any worker has created the group. */
Test(jobq, jobs_published_before_the_group_exists_are_delivered)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "early");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *api = open_queue(redis, prefix, NULL, 0, 0, 0);
	char job[37];
	for (unsigned i = 1; i <= 3; i++) {
		job_uuid(job, i);
		publish(api, job, NULL);
	}
	struct vr_jobq *w = open_queue(redis, prefix, "w", 0, 0, 0);
	cr_assert_eq(vr_jobq_ensure_group(w), 0);
	struct vr_jobq_delivery d[8];
	cr_assert_eq(next(w, d, 8, NULL, 0, NULL), 3);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(job_number(d[i].job_id), i + 1, "in order");
		cr_assert_eq(vr_jobq_ack(w, d[i].entry_id), 0);
	}
	/* a worker that never called ensure_group gets going as well */
	delete_keys(redis, prefix);
	job_uuid(job, 4);
	publish(api, job, NULL);
	cr_assert_eq(next(w, d, 8, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].job_id, job);
	vr_jobq_close(api);
	vr_jobq_close(w);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

struct later_publish {
	const char *uri, *prefix, *job;
	bool ok;
};

static void *publish_later(void *arg)
{
	struct later_publish *lp = arg;
	sleep_ms(100);
	struct vr_redis *redis = NULL;
	struct vr_jobq *q = NULL;
	struct vr_jobq_config c = {.prefix = lp->prefix};
	lp->ok = vr_redis_open(&redis, lp->uri) == 0 && vr_jobq_open(&q, redis, &c) == 0 &&
		 vr_jobq_publish(q, lp->job, NULL) == 0;
	vr_jobq_close(q);
	vr_redis_close(redis);
	return NULL;
}

Test(jobq, blocking_read_wakes_on_publish)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "block");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, "w", 0, 0, 300);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	struct vr_jobq_delivery d[2];
	double t0 = now_s();
	cr_assert_eq(next(q, d, 2, NULL, 0, NULL), 0);
	double waited = now_s() - t0;
	cr_assert(waited >= 0.2 && waited < 10, "waited %.3f s for block_ms 300", waited);

	/* another thread publishes while this one waits */
	char job[37];
	job_uuid(job, 42);
	struct later_publish lp = {.uri = redis_uri(), .prefix = prefix, .job = job};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, publish_later, &lp), 0);
	vr_jobq_close(q);
	q = open_queue(redis, prefix, "w", 0, 0, VR_JOBQ_BLOCK_MS_MAX);
	int n = 0;
	t0 = now_s();
	while (n == 0 && now_s() - t0 < 20)
		n = next(q, d, 2, NULL, 0, NULL);
	pthread_join(t, NULL);
	cr_assert(lp.ok, "the publisher failed");
	cr_assert_eq(n, 1);
	cr_assert_str_eq(d[0].job_id, job);
	vr_jobq_close(q);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

/* ---- several consumers --------------------------------------------------- */

Test(jobq, two_consumers_share_work_without_doubles)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "share");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *a = open_queue(redis, prefix, "a", 60000, 5, 0);
	struct vr_jobq *b = open_queue(redis, prefix, "b", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(a), 0);
	enum { JOBS = 40 };
	char job[37];
	for (unsigned i = 0; i < JOBS; i++) {
		job_uuid(job, i);
		publish(a, job, NULL);
	}
	int owner[JOBS];
	for (unsigned i = 0; i < JOBS; i++)
		owner[i] = -1;
	unsigned got[2] = {0, 0};
	for (int round = 0; round < 100; round++) {
		struct vr_jobq_delivery d[3];
		int n = 0;
		for (int c = 0; c < 2; c++) {
			int k = next(c ? b : a, d, 3, NULL, 0, NULL);
			for (int i = 0; i < k; i++) {
				unsigned j = job_number(d[i].job_id);
				cr_assert_lt(j, JOBS);
				cr_assert_eq(owner[j], -1, "job %u delivered to %c and %c", j,
					     'a' + owner[j], 'a' + c);
				cr_assert_eq(d[i].deliveries, 1);
				owner[j] = c;
				got[c]++;
			}
			n += k;
		}
		if (n == 0)
			break;
	}
	cr_assert_eq(got[0] + got[1], JOBS);
	cr_assert_gt(got[0], 0);
	cr_assert_gt(got[1], 0);
	cr_assert_eq(pending(a), JOBS, "all delivered, none acknowledged");
	vr_jobq_close(a);
	vr_jobq_close(b);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

Test(jobq, entries_of_a_dead_consumer_are_claimed_after_the_idle_time)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "claim");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *dead = open_queue(redis, prefix, "dies", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(dead), 0);
	char job[37];
	for (unsigned i = 0; i < 5; i++) {
		job_uuid(job, i);
		publish(dead, job, NULL);
	}
	struct vr_jobq_delivery d[10];
	cr_assert_eq(next(dead, d, 10, NULL, 0, NULL), 5);
	vr_jobq_close(dead); /* and never acknowledges */

	/* not idle long enough for a consumer that waits a minute */
	struct vr_jobq *patient = open_queue(redis, prefix, "heir", 60000, 5, 0);
	cr_assert_eq(next(patient, d, 10, NULL, 0, NULL), 0);
	vr_jobq_close(patient);

	struct vr_jobq *heir = open_queue(redis, prefix, "heir", 300, 5, 0);
	sleep_ms(600);
	cr_assert_eq(next(heir, d, 10, NULL, 0, NULL), 5);
	for (unsigned i = 0; i < 5; i++) {
		cr_assert_eq(job_number(d[i].job_id), i);
		cr_assert_eq(d[i].deliveries, 2);
	}
	char key[200];
	snprintf(key, sizeof key, "%s:jobs", prefix);
	redisReply *r = run(redis, "XPENDING", key, "workers", "-", "+", "10", "heir", NULL);
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(r->elements, 5, "the heir owns them now");
	freeReplyObject(r);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(vr_jobq_ack(heir, d[i].entry_id), 0);
	cr_assert_eq(pending(heir), 0);
	vr_jobq_close(heir);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

Test(jobq, a_restarted_consumer_gets_its_own_pending_entries_first)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "restart");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, "w", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	char job[37];
	for (unsigned i = 0; i < 5; i++) {
		job_uuid(job, i);
		publish(q, job, NULL);
	}
	struct vr_jobq_delivery d[8];
	cr_assert_eq(next(q, d, 5, NULL, 0, NULL), 5);
	vr_jobq_close(q); /* the worker stops without acknowledging */
	struct vr_jobq *api = open_queue(redis, prefix, NULL, 0, 0, 0);
	for (unsigned i = 5; i < 7; i++) {
		job_uuid(job, i);
		publish(api, job, NULL);
	}
	vr_jobq_close(api);

	/* the same name again, reading two at a time: its five first */
	q = open_queue(redis, prefix, "w", 60000, 5, 0);
	unsigned expect[] = {0, 1, 2, 3, 4, 5, 6};
	unsigned deliveries[] = {2, 2, 2, 2, 2, 1, 1};
	unsigned seen = 0;
	for (int round = 0; round < 10 && seen < 7; round++) {
		int n = next(q, d, 2, NULL, 0, NULL);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++, seen++) {
			cr_assert_lt(seen, 7);
			cr_assert_eq(job_number(d[i].job_id), expect[seen], "delivery %u", seen);
			cr_assert_eq(d[i].deliveries, deliveries[seen], "delivery %u", seen);
			cr_assert_eq(vr_jobq_ack(q, d[i].entry_id), 0);
		}
	}
	cr_assert_eq(seen, 7);
	cr_assert_eq(next(q, d, 2, NULL, 0, NULL), 0, "its own entries come once");
	cr_assert_eq(pending(q), 0);
	vr_jobq_close(q);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

/* A consumer that keeps a long job alive is not robbed of it. */
Test(jobq, touch_keeps_a_long_job_from_being_claimed)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "touch");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *slow = open_queue(redis, prefix, "slow", 1500, 5, 0);
	struct vr_jobq *other = open_queue(redis, prefix, "other", 1500, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(slow), 0);
	char job[37];
	job_uuid(job, 9);
	publish(slow, job, NULL);
	struct vr_jobq_delivery d[2];
	cr_assert_eq(next(slow, d, 2, NULL, 0, NULL), 1);
	char entry[64];
	snprintf(entry, sizeof entry, "%s", d[0].entry_id);
	sleep_ms(900);
	cr_assert_eq(vr_jobq_touch(slow, entry), 0);
	sleep_ms(900); /* 1.8 s since delivery, 0.9 s since the touch */
	cr_assert_eq(next(other, d, 2, NULL, 0, NULL), 0, "claimed although touched");
	sleep_ms(1700); /* now it is idle past 1.5 s */
	cr_assert_eq(next(other, d, 2, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].entry_id, entry);
	cr_assert_eq(d[0].deliveries, 2);
	cr_assert_eq(vr_jobq_touch(slow, entry), VR_ENOTFOUND, "it belongs to the other now");
	cr_assert_eq(vr_jobq_touch(other, entry), 0);
	cr_assert_eq(vr_jobq_ack(other, entry), 0);
	cr_assert_eq(vr_jobq_touch(other, entry), VR_ENOTFOUND, "acknowledged");
	vr_jobq_close(slow);
	vr_jobq_close(other);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

/* ---- dead letters and bad entries ------------------------------------------ */

static void expect_dead_letter(struct vr_redis *redis, const char *prefix, size_t index,
			       const char *job, unsigned deliveries)
{
	char key[200];
	snprintf(key, sizeof key, "%s:jobs:dead", prefix);
	redisReply *r = run(redis, "XRANGE", key, "-", "+", NULL);
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_gt(r->elements, index);
	redisReply *fields = r->element[index]->element[1];
	cr_assert_eq(fields->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(fields->elements, 6, "job, reason, deliveries");
	char want[16];
	snprintf(want, sizeof want, "%u", deliveries);
	cr_assert_str_eq(fields->element[0]->str, "job");
	cr_assert_str_eq(fields->element[1]->str, job);
	cr_assert_str_eq(fields->element[2]->str, "reason");
	cr_assert(strstr(fields->element[3]->str, "max_deliveries") != NULL, "reason '%s'",
		  fields->element[3]->str);
	cr_assert_str_eq(fields->element[4]->str, "deliveries");
	cr_assert_str_eq(fields->element[5]->str, want);
	freeReplyObject(r);
}

Test(jobq, entries_delivered_too_often_become_dead_letters)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "dead");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, "w", 60000, 2, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	char job[37], entry[64];
	job_uuid(job, 77);
	publish(q, job, entry);
	struct vr_jobq_delivery d[4], dead[4];
	unsigned ndead = 9;

	/* delivered once, then again after each restart of its consumer */
	for (unsigned i = 1; i <= 2; i++) {
		cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);
		cr_assert_eq(ndead, 0);
		cr_assert_eq(d[0].deliveries, i);
		vr_jobq_close(q);
		q = open_queue(redis, prefix, "w", 60000, 2, 0);
	}
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 0, "a third delivery is one too many");
	cr_assert_eq(ndead, 1);
	cr_assert_str_eq(dead[0].job_id, job);
	cr_assert_str_eq(dead[0].entry_id, entry);
	cr_assert_eq(dead[0].deliveries, 3);
	cr_assert_eq(pending(q), 0, "acknowledged");
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 0, "and deleted");
	cr_assert_eq(stream_length(redis, prefix, ":jobs:dead"), 1);
	expect_dead_letter(redis, prefix, 0, job, 3);

	/* the same through a claim: max_deliveries 1, claimed after 200 ms */
	vr_jobq_close(q);
	q = open_queue(redis, prefix, "first", 200, 1, 0);
	struct vr_jobq *heir = open_queue(redis, prefix, "heir", 200, 1, 0);
	job_uuid(job, 78);
	publish(q, job, entry);
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);
	sleep_ms(400);
	cr_assert_eq(next(heir, d, 4, dead, 4, &ndead), 0);
	cr_assert_eq(ndead, 1);
	cr_assert_str_eq(dead[0].job_id, job);
	cr_assert_eq(dead[0].deliveries, 2);
	expect_dead_letter(redis, prefix, 1, job, 2);

	/* a caller that takes no dead letters: still moved, only not returned */
	job_uuid(job, 79);
	publish(q, job, entry);
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);
	sleep_ms(400);
	cr_assert_eq(next(heir, d, 4, NULL, 0, NULL), 0);
	cr_assert_eq(stream_length(redis, prefix, ":jobs:dead"), 3);
	expect_dead_letter(redis, prefix, 2, job, 2);
	cr_assert_eq(pending(q), 0);

	/* every entry read fits: one dead-letter slot means one entry a call */
	for (unsigned i = 80; i < 83; i++) {
		job_uuid(job, i);
		publish(q, job, NULL);
	}
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 3);
	sleep_ms(400);
	unsigned total_dead = 0;
	for (int round = 0; round < 10; round++) {
		int n = next(heir, d, 4, dead, 1, &ndead);
		cr_assert_eq(n, 0);
		cr_assert_leq(ndead, 1);
		total_dead += ndead;
		if (ndead == 0)
			break;
	}
	cr_assert_eq(total_dead, 3);
	cr_assert_eq(pending(q), 0);
	vr_jobq_close(q);
	vr_jobq_close(heir);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

Test(jobq, malformed_entries_are_dropped)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "malformed");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, "w", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	char key[200], job[37];
	snprintf(key, sizeof key, "%s:jobs", prefix);
	job_uuid(job, 5);
	freeReplyObject(run(redis, "XADD", key, "*", "job", "not-a-uuid", NULL));
	freeReplyObject(run(redis, "XADD", key, "*", "task", job, NULL));
	freeReplyObject(
		run(redis, "XADD", key, "*", "job", "10000000-0000-4000-8000-0000000000051", NULL));
	freeReplyObject(run(redis, "XADD", key, "*", "job", "", NULL));
	publish(q, job, NULL);
	freeReplyObject(run(redis, "XADD", key, "*", "job", "../../etc/passwd", NULL));

	struct vr_jobq_delivery d[10];
	cr_assert_eq(next(q, d, 10, NULL, 0, NULL), 1, "only the good one");
	cr_assert_str_eq(d[0].job_id, job);
	cr_assert_eq(pending(q), 1, "the bad ones are acknowledged");
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 1, "and deleted");
	cr_assert_eq(stream_length(redis, prefix, ":jobs:dead"), 0, "they are no dead letters");
	cr_assert_eq(next(q, d, 10, NULL, 0, NULL), 0);

	/* an entry trimmed away while pending is dropped from the backlog */
	cr_assert_eq(vr_jobq_ack(q, d[0].entry_id), 0);
	char entry[64];
	publish(q, job, entry);
	cr_assert_eq(next(q, d, 10, NULL, 0, NULL), 1);
	freeReplyObject(run(redis, "XDEL", key, entry, NULL));
	vr_jobq_close(q);
	q = open_queue(redis, prefix, "w", 60000, 5, 0);
	cr_assert_eq(next(q, d, 10, NULL, 0, NULL), 0);
	cr_assert_eq(pending(q), 0);
	vr_jobq_close(q);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}

/* ---- Redis flushed, stopped, restarted ----------------------------------- */

static struct own_redis test_redis;

static void start_test_redis(void)
{
	/* as in every daemon: a write to a connection Redis closed must fail
	 * with EPIPE, not kill the process */
	signal(SIGPIPE, SIG_IGN);
	memset(&test_redis, 0, sizeof test_redis);
	cr_assert_eq(own_redis_start(&test_redis), 0, "cannot start redis-server");
}

static void stop_test_redis(void)
{
	own_redis_remove(&test_redis);
}

struct flusher {
	const char *uri;
	unsigned delay_ms;
	int ok;
};

static void *flush_later(void *arg)
{
	struct flusher *f = arg;
	sleep_ms(f->delay_ms);
	struct vr_redis *r = NULL;
	if (vr_redis_open(&r, f->uri) == 0) {
		const char *argv[] = {"FLUSHALL"};
		redisReply *reply = vr_redis_command(r, 1, argv);
		f->ok = reply && reply->type == REDIS_REPLY_STATUS;
		if (reply)
			freeReplyObject(reply);
	}
	vr_redis_close(r);
	return NULL;
}

Test(jobq, a_flushed_redis_gets_its_group_back, .init = start_test_redis, .fini = stop_test_redis)
{
	struct vr_redis *redis = connect_to(test_redis.uri);
	/* the defaults: prefix vrcloud, group workers */
	struct vr_jobq_config c = {.consumer = "w"};
	struct vr_jobq *q = NULL;
	cr_assert_eq(vr_jobq_open(&q, redis, &c), 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	redisReply *r = run(redis, "XINFO", "GROUPS", "vrcloud:jobs", NULL);
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(r->elements, 1);
	cr_assert_str_eq(r->element[0]->element[1]->str, "workers");
	freeReplyObject(r);

	char job[37];
	job_uuid(job, 1);
	publish(q, job, NULL);
	struct vr_jobq_delivery d[4];
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);

	/* everything goes: the pending entry, the stream, the group */
	freeReplyObject(run(redis, "FLUSHALL", NULL));
	cr_assert_eq(vr_jobq_ack(q, d[0].entry_id), 0, "nothing left to acknowledge");
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 0);
	cr_assert_eq(pending(q), 0);
	job_uuid(job, 2);
	publish(q, job, NULL);
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].job_id, job);
	cr_assert_eq(vr_jobq_ack(q, d[0].entry_id), 0);

	/* flushed, then a job published (the stream is back, the group not):
	 * the group is recreated from the start of the stream */
	freeReplyObject(run(redis, "FLUSHALL", NULL));
	job_uuid(job, 3);
	publish(q, job, NULL);
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].job_id, job);
	cr_assert_eq(vr_jobq_ack(q, d[0].entry_id), 0);

	/* flushed while pending_count and touch are the first to notice */
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 0);
	freeReplyObject(run(redis, "FLUSHALL", NULL));
	cr_assert_eq(pending(q), 0);
	freeReplyObject(run(redis, "FLUSHALL", NULL));
	cr_assert_eq(vr_jobq_touch(q, "1-1"), VR_ENOTFOUND);

	/* flushed while a read waits for new entries */
	vr_jobq_close(q);
	c.block_ms = 3000;
	cr_assert_eq(vr_jobq_open(&q, redis, &c), 0);
	struct flusher f = {.uri = test_redis.uri, .delay_ms = 300};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, flush_later, &f), 0);
	int n = vr_jobq_next(q, d, 4, NULL, 0, NULL);
	pthread_join(t, NULL);
	cr_assert(f.ok, "FLUSHALL failed");
	cr_assert_eq(n, 0, "next: %d", n);
	job_uuid(job, 4);
	publish(q, job, NULL);
	cr_assert_eq(next(q, d, 4, NULL, 0, NULL), 1);
	cr_assert_str_eq(d[0].job_id, job);
	vr_jobq_close(q);
	vr_redis_close(redis);
}

static void *stop_later(void *arg)
{
	struct own_redis *server = arg;
	sleep_ms(300);
	kill(server->pid, SIGTERM);
	return NULL;
}

Test(jobq, redis_down_is_unavailable_and_back_works_again, .init = start_test_redis,
     .fini = stop_test_redis)
{
	struct vr_redis *redis = connect_to(test_redis.uri);
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "down");
	struct vr_jobq *q = open_queue(redis, prefix, "w", 60000, 5, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);
	char job[37], entry[64];
	job_uuid(job, 1);
	publish(q, job, entry);
	struct vr_jobq_delivery d[4], dead[4];
	unsigned ndead;
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);

	own_redis_stop(&test_redis);
	cr_assert_eq(vr_jobq_next(q, d, 4, dead, 4, &ndead), VR_EUNAVAIL);
	cr_assert_eq(ndead, 0);
	cr_assert_eq(vr_jobq_publish(q, job, NULL), VR_EUNAVAIL);
	cr_assert_eq(vr_jobq_ack(q, entry), VR_EUNAVAIL);
	cr_assert_eq(vr_jobq_touch(q, entry), VR_EUNAVAIL);
	unsigned long long count;
	cr_assert_eq(vr_jobq_pending_count(q, &count), VR_EUNAVAIL);
	cr_assert_eq(vr_jobq_ensure_group(q), VR_EUNAVAIL);
	cr_assert_eq(vr_jobq_next(q, d, 4, dead, 4, &ndead), VR_EUNAVAIL, "still down");

	/* back, empty (no persistence): the same handles carry on */
	cr_assert_eq(own_redis_start(&test_redis), 0);
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 0);
	job_uuid(job, 2);
	publish(q, job, entry);
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);
	cr_assert_str_eq(d[0].job_id, job);
	cr_assert_eq(vr_jobq_ack(q, entry), 0);
	cr_assert_eq(pending(q), 0);

	/* stopped while a read waits */
	vr_jobq_close(q);
	q = open_queue(redis, prefix, "w", 60000, 5, 3000);
	pthread_t killer;
	cr_assert_eq(pthread_create(&killer, NULL, stop_later, &test_redis), 0);
	double t0 = now_s();
	int n = vr_jobq_next(q, d, 4, dead, 4, &ndead);
	double waited = now_s() - t0;
	pthread_join(killer, NULL);
	cr_assert_eq(n, VR_EUNAVAIL, "next: %d", n);
	cr_assert_lt(waited, 10);
	own_redis_wait(&test_redis, 20);
	cr_assert_eq(own_redis_start(&test_redis), 0);
	job_uuid(job, 3);
	publish(q, job, NULL);
	cr_assert_eq(next(q, d, 4, dead, 4, &ndead), 1);
	cr_assert_str_eq(d[0].job_id, job);
	vr_jobq_close(q);
	vr_redis_close(redis);
}

/* ---- many jobs, many consumers -------------------------------------------- */

enum { MANY_JOBS = 1000, CONSUMERS = 4 };

struct many {
	const char *uri;
	const char *prefix;
	atomic_int delivered[MANY_JOBS];
	atomic_int acked;
	atomic_int errors;
	atomic_int bad;
	int per_consumer[CONSUMERS];
};

struct consumer_arg {
	struct many *m;
	int index;
};

static void *publish_many(void *arg)
{
	struct many *m = arg;
	struct vr_redis *redis = NULL;
	struct vr_jobq *q = NULL;
	struct vr_jobq_config c = {.prefix = m->prefix};
	if (vr_redis_open(&redis, m->uri) || vr_jobq_open(&q, redis, &c)) {
		atomic_fetch_add(&m->errors, 1);
	} else {
		for (unsigned i = 0; i < MANY_JOBS; i++) {
			char job[37];
			job_uuid(job, i);
			if (vr_jobq_publish(q, job, NULL))
				atomic_fetch_add(&m->errors, 1);
		}
	}
	vr_jobq_close(q);
	vr_redis_close(redis);
	return NULL;
}

static void *consume_many(void *arg)
{
	struct consumer_arg *a = arg;
	struct many *m = a->m;
	struct vr_redis *redis = NULL;
	struct vr_jobq *q = NULL;
	char name[16];
	snprintf(name, sizeof name, "c%d", a->index);
	struct vr_jobq_config c = {.prefix = m->prefix, .consumer = name, .block_ms = 100};
	if (vr_redis_open(&redis, m->uri) || vr_jobq_open(&q, redis, &c)) {
		atomic_fetch_add(&m->errors, 1);
		goto cleanup;
	}
	double deadline = now_s() + 120;
	while (atomic_load(&m->acked) < MANY_JOBS && now_s() < deadline) {
		struct vr_jobq_delivery d[8], dead[8];
		unsigned ndead = 0;
		int n = vr_jobq_next(q, d, 8, dead, 8, &ndead);
		if (n < 0 || ndead) {
			atomic_fetch_add(&m->errors, 1);
			break;
		}
		for (int i = 0; i < n; i++) {
			unsigned j = job_number(d[i].job_id);
			if (j >= MANY_JOBS || d[i].deliveries != 1) {
				atomic_fetch_add(&m->bad, 1);
				continue;
			}
			atomic_fetch_add(&m->delivered[j], 1);
			m->per_consumer[a->index]++;
			if (vr_jobq_ack(q, d[i].entry_id))
				atomic_fetch_add(&m->errors, 1);
			else
				atomic_fetch_add(&m->acked, 1);
		}
	}
cleanup:
	vr_jobq_close(q);
	vr_redis_close(redis);
	return NULL;
}

Test(jobq, a_thousand_jobs_four_consumers_each_job_once)
{
	char prefix[96];
	make_prefix(prefix, sizeof prefix, "many");
	struct vr_redis *redis = connect_to(redis_uri());
	struct vr_jobq *q = open_queue(redis, prefix, NULL, 0, 0, 0);
	cr_assert_eq(vr_jobq_ensure_group(q), 0);

	struct many *m = calloc(1, sizeof *m);
	cr_assert_not_null(m);
	m->uri = redis_uri();
	m->prefix = prefix;
	pthread_t consumers[CONSUMERS], publisher;
	struct consumer_arg args[CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++) {
		args[i] = (struct consumer_arg){.m = m, .index = i};
		cr_assert_eq(pthread_create(&consumers[i], NULL, consume_many, &args[i]), 0);
	}
	cr_assert_eq(pthread_create(&publisher, NULL, publish_many, m), 0);
	pthread_join(publisher, NULL);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(consumers[i], NULL);

	cr_assert_eq(atomic_load(&m->errors), 0);
	cr_assert_eq(atomic_load(&m->bad), 0);
	cr_assert_eq(atomic_load(&m->acked), MANY_JOBS);
	for (unsigned i = 0; i < MANY_JOBS; i++)
		cr_assert_eq(atomic_load(&m->delivered[i]), 1, "job %u delivered %d times", i,
			     atomic_load(&m->delivered[i]));
	int sum = 0;
	for (int i = 0; i < CONSUMERS; i++)
		sum += m->per_consumer[i];
	cr_assert_eq(sum, MANY_JOBS);
	cr_assert_eq(pending(q), 0);
	cr_assert_eq(stream_length(redis, prefix, ":jobs"), 0);
	free(m);
	vr_jobq_close(q);
	delete_keys(redis, prefix);
	vr_redis_close(redis);
}
