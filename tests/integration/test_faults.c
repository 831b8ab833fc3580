/* Faults in the job pipeline, with real processes: the harness's
 * vrcloud-api, vrcloud-worker processes started here, and a PostgreSQL and
 * a Redis of this program's own (own_services), which the tests stop and
 * start with contrib/lib/services.sh (docs/pipeline.md, docs/worker.md,
 * docs/job-transport.md):
 *   - a worker killed in the middle of a job: another one finishes it, and
 *     its effect is applied once;
 *   - a second delivery of a job while it runs is not run again;
 *   - Redis restarted empty while actions are accepted: the relay publishes
 *     again what was lost and every Task ends;
 *   - PostgreSQL stopped for 10 s: the API answers 503 meanwhile and
 *     recovers alone, the workers retry and their jobs end;
 *   - 3 workers and 500 concurrent actions on 50 replications: no Task is
 *     stuck, no effect is applied twice, a lane's jobs run in order.
 *
 * The API relays with [jobs] republish_after = 2 and stale_after = 5 (the
 * least allowed), workers claim idle entries after a few seconds and slow
 * their jobs down with [worker] phase_delay, so that each test takes
 * seconds. Tests run one at a time (they stop the servers the
 * others use); each stops the workers it started, even when it fails. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/helpers.h"
#include "integration/replica.h"
#include "vrcloud/jobq.h"
#include "vrcloud/redis.h"

#define PREFIX "vrt-faults"

VRT_SUITE(.name = "faults", .jobs = 1, .redis_db = 10, .own_services = true,
	  .config = "[jobs]\nprefix = " PREFIX "\nrepublish_after = 2\nstale_after = 5\n");

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_BODY                                                                                  \
	"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"><PowerOn>false"               \
	"</PowerOn><Synchronize>false</Synchronize></TestFailoverParams>"
/* Bound on "every Task reaches a final state": generous, never the point. */
#define TERMINAL_S  60.0
#define MAX_WORKERS 3

/* --- helpers ------------------------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	size_t cap = 1 << 16, len = 0, n;
	char *text = malloc(cap);
	cr_assert_not_null(text);
	while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			text = realloc(text, cap);
			cr_assert_not_null(text);
		}
	}
	fclose(f);
	text[len] = '\0';
	return text;
}

static size_t count_in_file(const char *path, const char *needle)
{
	char *text = read_text(path);
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Lines of a file that contain both a and b. */
static size_t lines_with(const char *path, const char *a, const char *b)
{
	char *text = read_text(path);
	size_t n = 0;
	for (char *line = text; line && *line;) {
		char *eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		if (strstr(line, a) && strstr(line, b))
			n++;
		line = eol ? eol + 1 : NULL;
	}
	free(text);
	return n;
}

/* The suite API's log (it logs relay_published there). */
static char *api_log_path(void)
{
	return vrt_fmt("%s/api.log", vrt_env("VRT_API_DIR"));
}

/* --- workers ----------------------------------------------------------------- */

/* The three credentials the harness made; a worker registers under its
 * credential's name, so each worker has one of them. */
static const char *const services[MAX_WORKERS] = {VRT_SERVICE, VRT_SERVICE_OTHER, VRT_SERVICE_NEW};

struct worker {
	pid_t pid;
	const char *name;
	char dir[256];
	char log[300];
	char err[300]; /* stdout and stderr: sanitizer reports land there */
};

static struct worker workers[MAX_WORKERS];

/* The workers' shared replica store and recovered VMs (docs/recovery.md),
 * and the config file that names them. */
static char store_root[256], recovered_root[256], worker_config[256];

static void recovery_dirs(void)
{
	if (worker_config[0])
		return;
	snprintf(store_root, sizeof store_root, "%s/faults-store", vrt_env("VRT_WORKDIR"));
	snprintf(recovered_root, sizeof recovered_root, "%s/faults-recovered",
		 vrt_env("VRT_WORKDIR"));
	snprintf(worker_config, sizeof worker_config, "%s/faults-worker.ini",
		 vrt_env("VRT_WORKDIR"));
	FILE *f = fopen(worker_config, "w");
	cr_assert_not_null(f);
	fprintf(f, "[worker]\nstore_dir = %s\nrecovered_dir = %s\n", store_root,
		recovered_root);
	fclose(f);
}

/* A replica of one small disk with one instance in the workers' store, so
 * that the recovery jobs of rg have something to recover. */
static void give_replica(const char *rg)
{
	recovery_dirs();
	char *dir = vrt_fmt("%s/faults-src-%s", vrt_env("VRT_WORKDIR"), rg);
	const uint64_t size = 256 * 1024;
	struct rfx f;
	rfx_init(&f, store_root, rg, dir, 1, &size);
	rfx_write(&f, 8);
	char id[VR_UUID_LEN + 1];
	rfx_commit(&f, 0, id);
	rfx_free(&f);
	free(dir);
}

/* admin-a's session token, read by the main thread (vrt_token asserts). */
static const char *admin_token;

/* Start worker i as services[i] with the test's flags. */
static void worker_start(unsigned i, const char *const *extra)
{
	struct worker *w = &workers[i];
	memset(w, 0, sizeof *w);
	w->name = services[i];
	snprintf(w->dir, sizeof w->dir, "%s/worker-%s-XXXXXX", vrt_env("VRT_WORKDIR"), w->name);
	cr_assert_not_null(mkdtemp(w->dir));
	char token_path[300];
	snprintf(token_path, sizeof token_path, "%s/token", w->dir);
	int fd = open(token_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	dprintf(fd, "%s\n", vrt_service_token(w->name));
	close(fd);
	char dir[256];
	memcpy(dir, w->dir, sizeof dir);
	snprintf(w->log, sizeof w->log, "%s/worker.log", dir);
	snprintf(w->err, sizeof w->err, "%s/worker.stderr", dir);
	char binary[512];
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	snprintf(binary, sizeof binary, "%s/vrcloud-worker", builddir ? builddir : VR_BUILDDIR);
	recovery_dirs();
	const char *argv[40] = {binary,
				"--config",
				worker_config,
				"--name",
				w->name,
				"--api-url",
				vrt_base_url(),
				"--token-file",
				token_path,
				"--redis",
				vrt_env("VRT_REDIS_URI"),
				"--jobs-prefix",
				PREFIX,
				"--traffic-address",
				"127.0.0.1:44046",
				"--traffic-listen",
				"off",
				"--concurrency",
				"4",
				"--heartbeat-interval",
				"1",
				"--shutdown-timeout",
				"5",
				"--http-timeout",
				"10",
				"--log-file",
				w->log};
	size_t n = 0;
	while (argv[n])
		n++;
	for (size_t k = 0; extra && extra[k] && n < N(argv) - 1; k++)
		argv[n++] = extra[k];
	argv[n] = NULL;
	pid_t parent = getpid();
	fflush(NULL);
	w->pid = fork();
	cr_assert_geq(w->pid, 0);
	if (w->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int out = open(w->err, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int in = open("/dev/null", O_RDONLY);
		if (out < 0 || in < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
}

static bool worker_log_has(const struct worker *w, const char *needle)
{
	return count_in_file(w->log, needle) > 0;
}

static void workers_wait_registered(unsigned count)
{
	double end = vrt_now() + 20;
	for (unsigned i = 0; i < count; i++) {
		while (!worker_log_has(&workers[i], "event=registered") && vrt_now() < end)
			vrt_sleep(0.05);
		cr_assert(worker_log_has(&workers[i], "event=registered"),
			  "worker %s never registered", workers[i].name);
	}
}

static int wait_status(pid_t pid, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 256 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -2;
		if (vrt_now() >= end)
			return -1;
		vrt_sleep(0.02);
	}
}

/* SIGKILL a worker in the middle of whatever it does. */
static void worker_kill(struct worker *w)
{
	cr_assert_gt(w->pid, 0);
	kill(w->pid, SIGKILL);
	cr_assert_eq(wait_status(w->pid, 10), 256 + SIGKILL);
	w->pid = 0;
}

/* SIGTERM, up to 15 s to exit; its exit status, -1 when it had to be
 * killed. A sanitizer report fails the test. */
static int worker_stop(struct worker *w)
{
	if (w->pid <= 0)
		return 0;
	kill(w->pid, SIGTERM);
	int st = wait_status(w->pid, 15);
	if (st == -1) {
		kill(w->pid, SIGKILL);
		wait_status(w->pid, 5);
	}
	w->pid = 0;
	size_t reports =
		count_in_file(w->err, "Sanitizer") + count_in_file(w->err, "runtime error");
	cr_expect_eq(reports, 0, "worker %s reported sanitizer errors (%s)", w->name, w->err);
	return st;
}

/* SIGTERM to every worker still running, then worker_stop each (they
 * stop side by side); true when all exited 0. */
static bool stop_all_workers_ok(void)
{
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		if (workers[i].pid > 0)
			kill(workers[i].pid, SIGTERM);
	bool ok = true;
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		if (workers[i].pid > 0 && worker_stop(&workers[i]) != 0)
			ok = false;
	return ok;
}

/* Every test ends with its workers gone, whatever happened. */
static void stop_all_workers(void)
{
	stop_all_workers_ok();
}

static void read_token(void)
{
	admin_token = vrt_token(VRT_ADMIN_A);
}

TestSuite(faults, .init = read_token, .fini = stop_all_workers);

/* --- the API ------------------------------------------------------------------ */

struct answer {
	long status;
	char task[40]; /* the Task's id of a 202, "" otherwise */
};

/* The Task id in a Task document, by text (usable from any thread). */
static void task_id_of(const char *body, char out[40])
{
	static const char mark[] = "id=\"urn:vcloud:task:";
	const char *at = strstr(body, mark);
	out[0] = '\0';
	if (at && strlen(at + sizeof mark - 1) >= 36)
		snprintf(out, 37, "%s", at + sizeof mark - 1);
}

/* POST an action as admin-a; no assertion, so threads may call it. */
static void post_action(const char *rg, const char *action, struct answer *out)
{
	char path[160];
	snprintf(path, sizeof path, "/api/vr/replications/%s/action/%s", rg, action);
	bool test = strcmp(action, "testFailover") == 0;
	const char *headers[] = {"Content-Type: " VRT_MT_TEST, NULL};
	struct vrt_call call = {
		.method = "POST",
		.path = path,
		.token = admin_token,
		.headers = test ? headers : NULL,
		.body = test ? TEST_BODY : NULL,
		.body_len = test ? -1 : 0,
	};
	struct vrt_resp resp;
	out->status = vrt_call(&call, &resp) == 0 ? resp.status : 0;
	out->task[0] = '\0';
	if (out->status == 202)
		task_id_of(resp.body, out->task);
	vrt_resp_free(&resp);
}

/* An accepted action's Task id. */
static char *act(const char *rg, const char *action)
{
	struct answer a;
	post_action(rg, action, &a);
	cr_assert_eq(a.status, 202, "%s of %s answered %ld", action, rg, a.status);
	cr_assert_eq(strlen(a.task), 36, "no Task id in the answer to %s", action);
	return strdup(a.task);
}

/* --- the database ------------------------------------------------------------- */

/* A PostgreSQL array literal of ids: "{a,b,...}". */
static char *id_array(char *const *ids, size_t n)
{
	size_t len = 3 + n * 37;
	char *s = malloc(len);
	cr_assert_not_null(s);
	size_t off = 0;
	s[off++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (!ids[i] || !ids[i][0])
			continue;
		if (off > 1)
			s[off++] = ',';
		memcpy(s + off, ids[i], 36);
		off += 36;
	}
	s[off++] = '}';
	s[off] = '\0';
	return s;
}

static long db_long(const char *sql, const char *param)
{
	char *v = vrt_db_value(sql, param);
	cr_assert_not_null(v, "%s", sql);
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

/* Wait until no Task of the array is queued or running; the number still
 * open at the end (0 when all ended). */
static long wait_terminal(const char *tasks, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	long open;
	for (;;) {
		open = db_long("SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[])"
			       " AND status IN ('queued', 'running')",
			       tasks);
		if (open == 0 || vrt_now() >= end)
			return open;
		vrt_sleep(0.2);
	}
}

static char *task_status(const char *task)
{
	char *s = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
	cr_assert_not_null(s);
	return s;
}

/* What the open Tasks of an array are doing, for a failure message. */
static char *open_tasks_summary(const char *tasks)
{
	char *s = vrt_db_value(
		"SELECT coalesce(string_agg(t.status || '/' || coalesce(j.state, '-') || '/' ||"
		" coalesce(j.action, '-') || '/deliveries=' || coalesce(j.deliveries, 0), ', '), '')"
		" FROM tasks t LEFT JOIN jobs j ON j.task_id = t.id"
		" WHERE t.id = ANY($1::uuid[]) AND t.status IN ('queued', 'running')",
		tasks);
	return s ? s : strdup("");
}

static char **new_replications(const char *name, size_t n)
{
	char **rgs = calloc(n, sizeof *rgs);
	cr_assert_not_null(rgs);
	for (size_t i = 0; i < n; i++) {
		char label[64];
		snprintf(label, sizeof label, "%s-%02zu", name, i);
		rgs[i] = vrt_new_replication(NULL, label, false, NULL);
		give_replica(rgs[i]);
	}
	return rgs;
}

static void free_all(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* --- a: a worker killed in the middle of a job --------------------------------- */

Test(faults, worker_killed_mid_job_another_finishes_it_once)
{
	/* three phases of 1.5 s: the job runs for 4.5 s at least */
	const char *flags[] = {"--phase-delay", "1500", "--claim-idle", "2000", NULL};
	worker_start(0, flags);
	worker_start(1, flags);
	workers_wait_registered(2);
	char *rg = vrt_new_replication(NULL, "faults-killed", false, NULL);
	give_replica(rg);
	char *task = act(rg, "testFailover");
	char *job = vrt_db_value("SELECT id::text FROM jobs WHERE task_id = $1::uuid", task);
	cr_assert_not_null(job);

	/* the worker that took the job */
	char *runner = NULL;
	double end = vrt_now() + 20;
	while (!runner && vrt_now() < end) {
		runner = vrt_db_value("SELECT s.name FROM jobs j JOIN replica_servers s"
				      " ON s.id = j.worker_id WHERE j.id = $1::uuid"
				      " AND j.state = 'running'",
				      job);
		if (!runner)
			vrt_sleep(0.02);
	}
	cr_assert_not_null(runner, "no worker started the job");
	unsigned victim = strcmp(runner, workers[0].name) == 0 ? 0 : 1;
	unsigned survivor = 1 - victim;
	cr_assert_str_eq(runner, workers[victim].name);
	worker_kill(&workers[victim]);
	char *mid = task_status(task);
	cr_assert_str_eq(mid, "running", "the job ended before its worker was killed");

	char *tasks = vrt_fmt("{%s}", task);
	long open = wait_terminal(tasks, TERMINAL_S);
	char *left = open_tasks_summary(tasks);
	cr_assert_eq(open, 0, "the Task did not end within %.0f s: %s", TERMINAL_S, left);
	char *status = task_status(task);
	cr_assert_str_eq(status, "success", "task %s ended %s", task, status);

	/* applied once: one test image, ever, and the replication's state */
	cr_assert_eq(db_long("SELECT count(*) FROM vapps WHERE replication_id = $1::uuid"
			     " AND kind = 'test'",
			     rg),
		     1, "exactly one test vApp record");
	char *state = vrt_replication_state(rg);
	cr_assert_str_eq(state, "notStarted complete ok false");
	/* the survivor finished it, after a second delivery */
	char *finisher = vrt_db_value("SELECT s.name FROM jobs j JOIN replica_servers s"
				      " ON s.id = j.worker_id WHERE j.id = $1::uuid",
				      job);
	cr_assert_str_eq(finisher, workers[survivor].name);
	long deliveries = db_long("SELECT deliveries FROM jobs WHERE id = $1::uuid", job);
	cr_assert_geq(deliveries, 2, "jobs.deliveries is %ld", deliveries);
	cr_assert_eq(db_long("SELECT count(*) FROM jobs WHERE id = $1::uuid"
			     " AND state = 'succeeded' AND finished_at IS NOT NULL",
			     job),
		     1);
	char *done = vrt_fmt("job=%s action=testFailover outcome=success", job);
	cr_assert(worker_log_has(&workers[survivor], done), "the survivor completed the job");
	cr_assert_eq(worker_stop(&workers[survivor]), 0);
	free(done);
	free(finisher);
	free(state);
	free(status);
	free(left);
	free(tasks);
	free(mid);
	free(runner);
	free(job);
	free(task);
	free(rg);
}

/* Add job_id to the job stream once more, as the relay does. */
static void publish_again(const char *job_id)
{
	struct vr_redis *redis = NULL;
	cr_assert_eq(vr_redis_open(&redis, vrt_env("VRT_REDIS_URI")), 0);
	struct vr_jobq_config qc = {.prefix = PREFIX};
	struct vr_jobq *q = NULL;
	cr_assert_eq(vr_jobq_open(&q, redis, &qc), 0);
	cr_assert_eq(vr_jobq_publish(q, job_id, NULL), 0);
	vr_jobq_close(q);
	vr_redis_close(redis);
}

Test(faults, second_delivery_of_a_running_job_is_not_run_again)
{
	/* one worker, two runners: the second delivery reaches the runner
	 * that is free while the first runs the job */
	const char *flags[] = {"--concurrency", "2", "--phase-delay", "1000",
			       "--claim-idle", "4000", NULL};
	worker_start(0, flags);
	workers_wait_registered(1);
	char *rg = vrt_new_replication(NULL, "faults-twice", false, NULL);
	char *task = act(rg, "pause");
	char *job = vrt_db_value("SELECT id::text FROM jobs WHERE task_id = $1::uuid", task);
	cr_assert_not_null(job);
	double end = vrt_now() + 20;
	while (db_long("SELECT count(*) FROM jobs WHERE id = $1::uuid AND state = 'running'",
		       job) == 0 &&
	       vrt_now() < end)
		vrt_sleep(0.02);
	publish_again(job);
	char *named = vrt_fmt("job=%s", job);
	end = vrt_now() + 20;
	while (lines_with(workers[0].log, named, "another runner of this worker runs it") == 0 &&
	       vrt_now() < end)
		vrt_sleep(0.05);
	cr_assert_eq(lines_with(workers[0].log, named, "another runner of this worker runs it"), 1,
		     "the second delivery was not dropped");
	char *tasks = vrt_fmt("{%s}", task);
	cr_assert_eq(wait_terminal(tasks, TERMINAL_S), 0);
	char *status = task_status(task);
	cr_assert_str_eq(status, "success");
	size_t starts = lines_with(workers[0].log, named, "event=job_started");
	cr_assert_eq(starts, 1, "the job was started %zu times", starts);
	cr_assert_eq(db_long("SELECT deliveries FROM jobs WHERE id = $1::uuid", job), 1);
	cr_assert(stop_all_workers_ok(), "the worker did not exit 0 on SIGTERM");
	free(status);
	free(tasks);
	free(named);
	free(job);
	free(task);
	free(rg);
}

/* --- b: Redis restarted empty ---------------------------------------------------- */

#define REDIS_RGS     40
#define REDIS_ACTIONS 100

Test(faults, redis_restarted_empty_every_accepted_task_ends)
{
	/* 4 runners in all for 20 busy lanes: most heads wait in the stream */
	const char *flags[] = {"--concurrency", "2", "--phase-delay", "100",
			       "--claim-idle", "2000", NULL};
	worker_start(0, flags);
	worker_start(1, flags);
	workers_wait_registered(2);
	char **rgs = new_replications("faults-redis", REDIS_RGS);
	char **tasks = calloc(REDIS_ACTIONS, sizeof *tasks);
	cr_assert_not_null(tasks);
	char *log = api_log_path();

	/* half of the actions on 20 replications, then Redis goes and comes
	 * back empty while their jobs wait in the stream or run, then the
	 * other half on 20 others: nothing accepted later in their lanes
	 * publishes the lost jobs of the first 20, only the relay does */
	for (size_t i = 0; i < REDIS_ACTIONS / 2; i++)
		tasks[i] = act(rgs[i % (REDIS_RGS / 2)], "sync");
	char *accepted = id_array(tasks, REDIS_ACTIONS / 2);
	long open =
		db_long("SELECT count(DISTINCT j.lane) FROM jobs j"
			" WHERE j.task_id = ANY($1::uuid[]) AND j.state IN ('queued', 'running')",
			accepted);
	cr_assert_gt(open, 4, "only %ld lanes had jobs left when Redis was restarted", open);
	size_t relayed = count_in_file(log, "event=relay_published");
	cr_assert_eq(vrt_services("svc_stop_redis", NULL), 0);
	cr_assert_eq(vrt_services("svc_start_redis", NULL), 0);
	for (size_t i = REDIS_ACTIONS / 2; i < REDIS_ACTIONS; i++)
		tasks[i] = act(rgs[REDIS_RGS / 2 + i % (REDIS_RGS / 2)], "sync");

	char *all = id_array(tasks, REDIS_ACTIONS);
	open = wait_terminal(all, TERMINAL_S);
	char *left = open_tasks_summary(all);
	cr_assert_eq(open, 0, "%ld Tasks did not end within %.0f s: %s", open, TERMINAL_S, left);
	cr_assert_eq(db_long("SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[])"
			     " AND status = 'success'",
			     all),
		     REDIS_ACTIONS, "every sync succeeded");
	cr_assert_eq(db_long("SELECT count(*) FROM jobs WHERE task_id = ANY($1::uuid[])"
			     " AND state = 'succeeded'",
			     all),
		     REDIS_ACTIONS);
	cr_assert_gt(count_in_file(log, "event=relay_published"), relayed,
		     "the relay published the lost jobs again");
	cr_assert(stop_all_workers_ok(), "a worker did not exit 0 on SIGTERM");
	free(left);
	free(all);
	free(accepted);
	free(log);
	free_all(tasks, REDIS_ACTIONS);
	free_all(rgs, REDIS_RGS);
}

/* --- c: PostgreSQL stopped for 10 s -------------------------------------------- */

#define PG_RGS	  10
#define PG_DOWN_S 10.0

static void assert_unavailable(const struct vrt_resp *r, const char *what)
{
	vrt_assert_error(r, 503, "SERVICE_UNAVAILABLE", what);
}

Test(faults, postgresql_stopped_503_then_recovers_and_jobs_end)
{
	/* phases of 1 s: the jobs are in flight when PostgreSQL stops; a
	 * start that fails is retried for 5 s before the entry is left */
	const char *flags[] = {"--phase-delay", "1000", "--claim-idle", "5000", NULL};
	worker_start(0, flags);
	worker_start(1, flags);
	workers_wait_registered(2);
	char **rgs = new_replications("faults-pg", PG_RGS + 1);
	char *tasks[PG_RGS + 1] = {NULL};
	for (size_t i = 0; i < PG_RGS; i++)
		tasks[i] = act(rgs[i], "pause");
	char *accepted = id_array(tasks, PG_RGS);
	double end = vrt_now() + 20;
	while (db_long("SELECT count(*) FROM jobs WHERE task_id = ANY($1::uuid[])"
		       " AND state = 'running'",
		       accepted) == 0 &&
	       vrt_now() < end)
		vrt_sleep(0.05);

	pid_t api = (pid_t)strtol(vrt_env("VRT_API_PID"), NULL, 10);
	const char *token = vrt_token(VRT_ADMIN_A);
	char *get_path = vrt_fmt("/api/vr/replications/%s", rgs[0]);
	cr_assert_eq(vrt_services("svc_stop_pg", "fast"), 0);
	double down_at = vrt_now();

	/* every probe while it is down: 503, a vCD Error but for /healthz */
	unsigned probes = 0;
	while (vrt_now() - down_at < PG_DOWN_S) {
		struct vrt_resp r;
		vrt_get(get_path, token, &r);
		assert_unavailable(&r, "GET replication, PostgreSQL down");
		vrt_resp_free(&r);
		struct answer a;
		post_action(rgs[PG_RGS], "sync", &a);
		cr_assert_eq(a.status, 503, "POST action with PostgreSQL down answered %ld",
			     a.status);
		struct vrt_call health = {.path = "/healthz", .accept = ""};
		cr_assert_eq(vrt_call(&health, &r), 0);
		cr_assert_eq(r.status, 503, "/healthz with PostgreSQL down answered %ld", r.status);
		cr_assert(strstr(r.body, "postgresql: unreachable"), "%s", r.body);
		vrt_resp_free(&r);
		probes++;
		vrt_sleep(0.5);
	}
	cr_assert_geq(probes, 3);
	cr_assert_eq(vrt_services("svc_start_pg", NULL), 0);

	/* back without a restart of the API */
	long status = 0;
	end = vrt_now() + 30;
	while (status != 200 && vrt_now() < end) {
		struct vrt_resp r;
		vrt_get(get_path, token, &r);
		status = r.status;
		vrt_resp_free(&r);
		if (status != 200)
			vrt_sleep(0.2);
	}
	cr_assert_eq(status, 200, "GET replication after PostgreSQL came back: %ld", status);
	struct vrt_call health = {.path = "/healthz", .accept = ""};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&health, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.body);
	vrt_resp_free(&r);
	cr_assert_eq(kill(api, 0), 0, "the API is the same process");

	/* the test's own connection died with the server */
	PQreset(vrt_db());
	cr_assert(PQstatus(vrt_db()) == CONNECTION_OK);
	double back_at = vrt_now();
	tasks[PG_RGS] = act(rgs[PG_RGS], "sync");
	char *all = id_array(tasks, PG_RGS + 1);
	long open = wait_terminal(all, TERMINAL_S);
	char *most = vrt_db_value("SELECT max(deliveries)::text FROM jobs"
				  " WHERE task_id = ANY($1::uuid[])",
				  all);
	cr_log_info("%u probes answered 503 in %.0f s; every Task ended %.1f s after "
		    "PostgreSQL came back; most deliveries of a job: %s",
		    probes, PG_DOWN_S, vrt_now() - back_at, most ? most : "-");
	free(most);
	char *left = open_tasks_summary(all);
	cr_assert_eq(open, 0, "%ld Tasks did not end within %.0f s: %s", open, TERMINAL_S, left);
	char *failed = vrt_db_value("SELECT coalesce(string_agg(t.status || ' ' ||"
				    " coalesce(t.error_vendor, '') || ' ' ||"
				    " coalesce(t.error_message, ''), '; '), '')"
				    " FROM tasks t WHERE t.id = ANY($1::uuid[])"
				    " AND t.status <> 'success'",
				    all);
	cr_assert_str_eq(failed, "", "the jobs in flight ended in success: %s", failed);
	char *paused = id_array(rgs, PG_RGS);
	cr_assert_eq(db_long("SELECT count(*) FROM replications WHERE id = ANY($1::uuid[])"
			     " AND paused",
			     paused),
		     PG_RGS, "every pause took effect");
	free(paused);
	cr_assert(stop_all_workers_ok(), "a worker did not exit 0 on SIGTERM");
	free(failed);
	free(left);
	free(all);
	free(get_path);
	free(accepted);
	for (size_t i = 0; i <= PG_RGS; i++)
		free(tasks[i]);
	free_all(rgs, PG_RGS + 1);
}

/* --- d: 3 workers, 500 concurrent actions on 50 replications ------------------- */

#define LOAD_RGS     50
#define LOAD_ACTIONS 500
#define LOAD_TESTS   10 /* replications 0-9 alternate testFailover and testCleanup */
#define LOAD_THREADS 8

struct load {
	char **rgs;
	struct answer answers[LOAD_ACTIONS];
	atomic_uint next;
};

/* Request i: replication i % 50, in rounds; the first ten replications
 * alternate testFailover and testCleanup, the others pause, resume and
 * sync. Many are refused by the state machine (an error Task, no job). */
static const char *load_action(unsigned i)
{
	static const char *const controls[] = {"pause", "resume", "sync"};
	static const char *const tests[] = {"testFailover", "testCleanup"};
	unsigned rg = i % LOAD_RGS, round = i / LOAD_RGS;
	return rg < LOAD_TESTS ? tests[round % 2] : controls[round % 3];
}

static void *load_thread(void *arg)
{
	struct load *l = arg;
	for (;;) {
		unsigned i = atomic_fetch_add(&l->next, 1);
		if (i >= LOAD_ACTIONS)
			break;
		post_action(l->rgs[i % LOAD_RGS], load_action(i), &l->answers[i]);
	}
	return NULL;
}

Test(faults, three_workers_500_concurrent_actions_none_stuck_none_doubled)
{
	const char *flags[] = {"--claim-idle", "10000", "--phase-delay", "30", NULL};
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		worker_start(i, flags);
	workers_wait_registered(MAX_WORKERS);
	static struct load l;
	memset(&l, 0, sizeof l);
	l.rgs = new_replications("faults-load", LOAD_RGS);
	double t0 = vrt_now();
	pthread_t threads[LOAD_THREADS];
	for (unsigned t = 0; t < LOAD_THREADS; t++)
		cr_assert_eq(pthread_create(&threads[t], NULL, load_thread, &l), 0);
	for (unsigned t = 0; t < LOAD_THREADS; t++)
		pthread_join(threads[t], NULL);
	double sent = vrt_now() - t0;

	char *ids[LOAD_ACTIONS];
	unsigned accepted = 0;
	for (unsigned i = 0; i < LOAD_ACTIONS; i++) {
		cr_assert_eq(l.answers[i].status, 202, "request %u (%s) answered %ld", i,
			     load_action(i), l.answers[i].status);
		cr_assert_eq(strlen(l.answers[i].task), 36, "request %u: no Task id", i);
		ids[i] = l.answers[i].task;
		accepted++;
	}
	char *tasks = id_array(ids, LOAD_ACTIONS);
	char *rgs = id_array(l.rgs, LOAD_RGS);
	long open = wait_terminal(tasks, TERMINAL_S);
	char *left = open_tasks_summary(tasks);
	cr_assert_eq(open, 0, "%ld Tasks stuck after %.0f s: %s", open, TERMINAL_S, left);
	double took = vrt_now() - t0;
	long jobs = db_long("SELECT count(*) FROM jobs WHERE task_id = ANY($1::uuid[])", tasks);
	cr_log_info("%u actions sent in %.1f s; %ld jobs; all ended after %.1f s", accepted, sent,
		    jobs, took);
	cr_assert_gt(jobs, LOAD_RGS,
		     "the state machine allowed a job on each replication at least");

	/* every job succeeded and so did its Task; every other Task is a
	 * refusal, ended at once without a job */
	cr_assert_eq(db_long("SELECT count(*) FROM jobs j JOIN tasks t ON t.id = j.task_id"
			     " WHERE t.id = ANY($1::uuid[])"
			     " AND (j.state <> 'succeeded' OR t.status <> 'success'"
			     "      OR t.progress <> 100 OR j.finished_at IS NULL)",
			     tasks),
		     0, "a job or its Task did not succeed");
	cr_assert_eq(db_long("SELECT count(*) FROM tasks t WHERE t.id = ANY($1::uuid[])"
			     " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.task_id = t.id)"
			     " AND (t.status <> 'error' OR t.error_vendor IS NULL)",
			     tasks),
		     0, "a Task without a job is not a refusal");
	/* the three workers shared the work */
	cr_assert_eq(db_long("SELECT count(DISTINCT worker_id) FROM jobs"
			     " WHERE task_id = ANY($1::uuid[])",
			     tasks),
		     MAX_WORKERS);
	/* a lane's jobs ran one at a time, in seq order */
	cr_assert_eq(db_long("SELECT count(*) FROM jobs a JOIN jobs b ON b.lane = a.lane"
			     " AND b.seq > a.seq"
			     " WHERE a.task_id = ANY($1::uuid[]) AND b.task_id = ANY($1::uuid[])"
			     " AND (b.started_at < a.finished_at OR b.finished_at < a.finished_at)",
			     tasks),
		     0, "a job started before an older job of its lane finished");
	/* paused as the last pause or resume that succeeded left it */
	cr_assert_eq(db_long("SELECT count(*) FROM replications r WHERE r.id = ANY($1::uuid[])"
			     " AND r.paused IS DISTINCT FROM coalesce((SELECT j.action = 'pause'"
			     "   FROM jobs j WHERE j.lane = 'replication:' || r.id"
			     "   AND j.action IN ('pause', 'resume') AND j.state = 'succeeded'"
			     "   ORDER BY j.seq DESC LIMIT 1), false)",
			     rgs),
		     0, "a replication's paused state is not that of its last action");
	/* one test image per succeeded test failover, and only the last one
	 * left when no cleanup followed it */
	cr_assert_eq(
		db_long("SELECT count(*) FROM replications r WHERE r.id = ANY($1::uuid[])"
			" AND ((SELECT count(*) FROM vapps v WHERE v.replication_id = r.id"
			"       AND v.kind = 'test')"
			"   <> (SELECT count(*) FROM jobs j WHERE j.lane = 'replication:' || r.id"
			"       AND j.action = 'testFailover' AND j.state = 'succeeded')"
			"   OR (SELECT count(*) FROM vapps v WHERE v.replication_id = r.id"
			"       AND v.kind = 'test' AND v.deleted_at IS NULL)"
			"   <> CASE r.test_recovery_state WHEN 'complete' THEN 1 ELSE 0 END"
			"   OR r.test_recovery_state <> coalesce((SELECT CASE j.action"
			"       WHEN 'testFailover' THEN 'complete' ELSE 'none' END"
			"     FROM jobs j WHERE j.lane = 'replication:' || r.id"
			"     AND j.state = 'succeeded' ORDER BY j.seq DESC LIMIT 1), 'none'))",
			rgs),
		0, "test images counted wrong");
	cr_assert_eq(db_long("SELECT count(*) FROM jobs WHERE task_id = ANY($1::uuid[])"
			     " AND action = 'testFailover' AND state = 'succeeded'",
			     tasks) > 0,
		     1, "some test failovers ran");
	/* and each job ran once: no delivery started a job that was running */
	size_t started = 0, dropped = 0;
	for (unsigned i = 0; i < MAX_WORKERS; i++) {
		started += count_in_file(workers[i].log, "event=job_started");
		dropped += count_in_file(workers[i].log, "event=job_dropped");
	}
	cr_log_info("%zu job starts, %zu deliveries dropped", started, dropped);
	cr_assert_eq(started, (size_t)jobs, "%zu starts of %ld jobs", started, jobs);
	cr_assert(stop_all_workers_ok(), "a worker did not exit 0 on SIGTERM");
	free(left);
	free(rgs);
	free(tasks);
	free_all(l.rgs, LOAD_RGS);
}
