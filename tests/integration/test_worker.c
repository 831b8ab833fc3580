/* vrcloud-worker against the real vrcloud-api, PostgreSQL and Redis of the
 * harness: it registers, runs the jobs that tenants' actions make, drops
 * deliveries the API says are done or unknown, and on SIGTERM leaves the
 * API and exits 0. Tests run one at a time: each starts its own worker
 * under the suite's one service credential. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "vrcloud/jobq.h"
#include "vrcloud/redis.h"

VRT_SUITE(.name = "worker", .jobs = 1, .redis_db = 9);

/* Replication n of org A (VRT_REPL_A_FMT); one static buffer per n. */
static const char *repl_a(unsigned n)
{
	static char ids[VRT_REPL_A_COUNT + 1][40];
	snprintf(ids[n], sizeof ids[n], VRT_REPL_A_FMT, n);
	return ids[n];
}

struct worker {
	pid_t pid;
	char dir[256];
	char log[300];
	char store[300]; /* its [worker] store_dir */
};

/* Start vrcloud-worker as VRT_SERVICE against api_url, with extra flags. */
static void worker_start(struct worker *w, const char *api_url, const char *const *extra)
{
	snprintf(w->dir, sizeof w->dir, "%s/worker-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	char token_path[300];
	snprintf(token_path, sizeof token_path, "%s/token", w->dir);
	FILE *f = fopen(token_path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", vrt_service_token(VRT_SERVICE));
	fclose(f);
	chmod(token_path, 0600);
	snprintf(w->log, sizeof w->log, "%s/worker.log", w->dir);
	snprintf(w->store, sizeof w->store, "%s/store", w->dir);
	char binary[512];
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	snprintf(binary, sizeof binary, "%s/vrcloud-worker", builddir ? builddir : ".");
	const char *argv[32] = {binary,
				"--name",
				VRT_SERVICE,
				"--api-url",
				api_url,
				"--token-file",
				token_path,
				"--redis",
				vrt_env("VRT_REDIS_URI"),
				"--traffic-address",
				"127.0.0.1:44046",
				"--traffic-listen",
				"off",
				"--store-dir",
				w->store,
				"--concurrency",
				"2",
				"--heartbeat-interval",
				"1",
				"--shutdown-timeout",
				"5",
				"--log-level",
				"debug",
				"--log-file",
				w->log};
	size_t n = 0;
	while (argv[n])
		n++;
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	w->pid = fork();
	cr_assert_geq(w->pid, 0);
	if (w->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
}

static char *read_log(const struct worker *w)
{
	FILE *f = fopen(w->log, "r");
	if (!f)
		return strdup("");
	char *text = calloc(1, 1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static bool log_contains(const struct worker *w, const char *needle)
{
	char *text = read_log(w);
	bool found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

static bool wait_for_log(const struct worker *w, const char *needle, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (log_contains(w, needle))
			return true;
		vrt_sleep(0.1);
	}
	return false;
}

/* SIGTERM; returns the exit status, or -1 when it took longer than
 * timeout_s (the worker is then killed). */
static int worker_stop(struct worker *w, double timeout_s, double *took_out)
{
	double start = vrt_now();
	kill(w->pid, SIGTERM);
	int status = 0;
	while (vrt_now() - start < timeout_s) {
		pid_t r = waitpid(w->pid, &status, WNOHANG);
		if (r == w->pid) {
			if (took_out)
				*took_out = vrt_now() - start;
			if (log_contains(w, "runtime error") || log_contains(w, "Sanitizer"))
				return -2;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
		}
		vrt_sleep(0.05);
	}
	kill(w->pid, SIGKILL);
	waitpid(w->pid, &status, 0);
	return -1;
}

/* The Task's status once it left queued/running, waiting up to timeout_s. */
static char *task_final_status(const char *task_id, double timeout_s)
{
	char path[128];
	snprintf(path, sizeof path, "/api/task/%s", task_id);
	double end = vrt_now() + timeout_s;
	char *status = NULL;
	while (vrt_now() < end) {
		struct vrt_resp resp;
		vrt_get(path, vrt_token(VRT_ADMIN_A), &resp);
		free(status);
		status = vrt_xpath_str(resp.body, "string(/v:Task/@status)");
		vrt_resp_free(&resp);
		if (status && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			return status;
		vrt_sleep(0.1);
	}
	return status;
}

/* POST an action on a replication as admin-a; returns the Task's id. */
static char *act(const char *replication, const char *action, const char *content_type,
		 const char *body)
{
	char path[160], header[160];
	snprintf(path, sizeof path, "/api/vr/replications/%s/action/%s", replication, action);
	snprintf(header, sizeof header, "Content-Type: %s", content_type ? content_type : "");
	const char *headers[] = {header, NULL};
	struct vrt_call call = {
		.method = "POST",
		.path = path,
		.token = vrt_token(VRT_ADMIN_A),
		.headers = content_type ? headers : NULL,
		.body = body,
		.body_len = body ? -1 : 0,
	};
	struct vrt_resp resp;
	cr_assert_eq(vrt_call(&call, &resp), 0);
	cr_assert_eq(resp.status, 202, "%s: %ld %s", action, resp.status, resp.body);
	char *id = vrt_xpath_str(resp.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&resp);
	cr_assert(id && strlen(id) == 36, "%s", id ? id : "(none)");
	return id;
}

Test(worker, registers_runs_a_pause_and_leaves_on_sigterm)
{
	struct worker w;
	worker_start(&w, vrt_base_url(), NULL);
	cr_assert(wait_for_log(&w, "event=registered", 15), "the worker never registered");
	char *state =
		vrt_db_value("SELECT state FROM replica_servers WHERE name = $1", VRT_SERVICE);
	cr_assert_str_eq(state, "connected");
	free(state);

	char *task = act(repl_a(10), "pause", NULL, NULL);
	char *status = task_final_status(task, 20);
	cr_assert_str_eq(status, "success", "task %s ended %s", task, status);
	char *paused =
		vrt_db_value("SELECT paused::text FROM replications WHERE id = $1", repl_a(10));
	cr_assert_str_eq(paused, "true");
	char *job = vrt_db_value("SELECT state FROM jobs WHERE task_id = $1", task);
	cr_assert_str_eq(job, "succeeded");
	cr_assert(wait_for_log(&w, "event=job_completed", 5));
	cr_assert(log_contains(&w, "action=pause outcome=success"));
	cr_assert(log_contains(&w, "progress=90"));

	double took = 0;
	cr_assert_eq(worker_stop(&w, 15, &took), 0);
	cr_assert(log_contains(&w, "event=left"));
	state = vrt_db_value("SELECT state FROM replica_servers WHERE name = $1", VRT_SERVICE);
	cr_assert_str_eq(state, "disconnected");
	cr_assert_not(log_contains(&w, vrt_service_token(VRT_SERVICE)),
		      "the token is never logged");
	free(state);
	free(job);
	free(paused);
	free(status);
	free(task);
}

/* The recovery jobs move data (test_recovery.c): a replication whose
 * replica this server never received fails with a clear error, and
 * nothing is recorded. */
Test(worker, test_failover_without_a_replica_fails_with_a_clear_error)
{
	struct worker w;
	worker_start(&w, vrt_base_url(), NULL);
	cr_assert(wait_for_log(&w, "event=registered", 15));
	/* a replication of its own: the fixture's A2 has a queued job that
	 * never runs (harness.h), and its lane waits behind it */
	char *rg = vrt_new_replication(NULL, "worker-test-failover", false, NULL);
	char *task = act(rg, "testFailover",
			 "application/vnd.vmware.hcs.testFailoverParams+xml",
			 "<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			 "<PowerOn>false</PowerOn><Synchronize>false</Synchronize>"
			 "</TestFailoverParams>");
	char *status = task_final_status(task, 20);
	cr_assert_str_eq(status, "error", "task %s ended %s", task, status);
	char *vendor = vrt_db_value("SELECT error_vendor FROM tasks WHERE id = $1::uuid", task);
	cr_assert_str_eq(vendor, "NoReplicaInstance");
	char *vapps = vrt_db_value("SELECT count(*)::text FROM vapps WHERE replication_id ="
				   " $1::uuid AND kind = 'test'",
				   rg);
	cr_assert_str_eq(vapps, "0");
	cr_assert_eq(worker_stop(&w, 15, NULL), 0);
	free(vapps);
	free(vendor);
	free(status);
	free(task);
	free(rg);
}

/* POST a document to path as admin-a; returns the Task's id (202). */
static char *post_task(const char *path, const char *content_type, const char *body)
{
	char header[160];
	snprintf(header, sizeof header, "Content-Type: %s", content_type);
	const char *headers[] = {header, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp resp;
	cr_assert_eq(vrt_call(&call, &resp), 0);
	cr_assert_eq(resp.status, 202, "%s: %ld %s", path, resp.status, resp.body);
	char *id = vrt_xpath_str(resp.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&resp);
	cr_assert(id && strlen(id) == 36, "%s", id ? id : "(none)");
	return id;
}

/* docs/configure.md end to end: a site pairs, one of its VMs is
 * configured, then reconfigured, each through a job the worker runs. */
Test(worker, pairs_a_site_then_configures_and_reconfigures_its_vm)
{
	struct worker w;
	worker_start(&w, vrt_base_url(), NULL);
	cr_assert(wait_for_log(&w, "event=registered", 15));
	char *site = vrt_db_value("SELECT gen_random_uuid()::text");
	char body[1024];
	snprintf(body, sizeof body,
		 "<PairVcWithVdcParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		 "<SiteUuid>%s</SiteUuid><SiteName>Worker site</SiteName></PairVcWithVdcParams>",
		 site);
	char *task = post_task("/api/vdc/" VRT_VDC_A1 "/peers",
			       "application/vnd.vmware.hcs.pairVcWithVdcParams+xml", body);
	char *status = task_final_status(task, 20);
	cr_assert_str_eq(status, "success", "pairing task %s ended %s", task, status);
	cr_assert(wait_for_log(&w, "action=pair outcome=success", 5));
	char *peer = vrt_db_value("SELECT id::text FROM peers WHERE site_uuid = $1::uuid", site);
	char *state = vrt_db_value("SELECT state FROM peers WHERE id = $1::uuid", peer);
	cr_assert_str_eq(state, "paired");
	free(status);
	free(task);

	snprintf(body, sizeof body,
		 "<ReplicationGroupSpecParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		 "<PeerId>%s</PeerId><VmName>worker-vm</VmName><Rpo>15</Rpo>"
		 "<Disk><DeviceKey>2000</DeviceKey><SizeBytes>1048576</SizeBytes></Disk>"
		 "</ReplicationGroupSpecParams>",
		 peer);
	task = post_task("/api/vdc/" VRT_VDC_A1 "/replications",
			 "application/vnd.vmware.hcs.replicationGroupSpecParams+xml", body);
	status = task_final_status(task, 20);
	cr_assert_str_eq(status, "success", "configure task %s ended %s", task, status);
	char *rg = vrt_db_value("SELECT owner_id::text FROM tasks WHERE id = $1::uuid", task);
	char *placeholder = vrt_db_value("SELECT count(*) FROM replications r JOIN vapps v"
					 " ON v.id = r.placeholder_vapp_id"
					 " WHERE r.id = $1::uuid AND v.kind = 'placeholder'",
					 rg);
	cr_assert_str_eq(placeholder, "1", "no placeholder after the configure job");
	/* the configure job created the replica disks in the worker's store
	 * (sparse, of the disk's size), and its server holds the replication */
	char image[400];
	snprintf(image, sizeof image, "%s/%s", w.store, rg);
	struct stat st;
	cr_assert_eq(stat(image, &st), 0, "no replica store at %s", image);
	cr_assert(S_ISDIR(st.st_mode));
	char *holder = vrt_db_value("SELECT s.name FROM replications r JOIN replica_servers s"
				    " ON s.id = r.replica_server_id WHERE r.id = $1::uuid",
				    rg);
	cr_assert_str_eq(holder, VRT_SERVICE);
	free(holder);
	free(status);
	free(task);

	char path[128];
	snprintf(path, sizeof path, "/api/vr/replications/%s/action/reconfigure", rg);
	task = post_task(path, "application/*+xml",
			 "<ReconfigureReplicationGroupParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			 "<Rpo>30</Rpo></ReconfigureReplicationGroupParams>");
	status = task_final_status(task, 20);
	cr_assert_str_eq(status, "success", "reconfigure task %s ended %s", task, status);
	char *rpo = vrt_db_value("SELECT rpo_minutes::text FROM replications WHERE id = $1::uuid",
				 rg);
	cr_assert_str_eq(rpo, "30");
	cr_assert_eq(worker_stop(&w, 15, NULL), 0);
	free(rpo);
	free(placeholder);
	free(rg);
	free(status);
	free(task);
	free(state);
	free(peer);
	free(site);
}

/* Add job_id to the suite's job stream, as the API's publisher does. */
static void publish(const char *job_id)
{
	struct vr_redis *redis = NULL;
	cr_assert_eq(vr_redis_open(&redis, vrt_env("VRT_REDIS_URI")), 0);
	struct vr_jobq *q = NULL;
	cr_assert_eq(vr_jobq_open(&q, redis, NULL), 0);
	cr_assert_eq(vr_jobq_publish(q, job_id, NULL), 0);
	vr_jobq_close(q);
	vr_redis_close(redis);
}

Test(worker, finished_and_unknown_jobs_are_acknowledged_and_dropped)
{
	struct worker w;
	worker_start(&w, vrt_base_url(), NULL);
	cr_assert(wait_for_log(&w, "event=registered", 15));
	char *task = act(repl_a(11), "pause", NULL, NULL);
	char *status = task_final_status(task, 20);
	cr_assert_str_eq(status, "success");
	char *job = vrt_db_value("SELECT id::text FROM jobs WHERE task_id = $1", task);
	publish(job);
	publish(VRT_MISSING);
	char unknown[128];
	snprintf(unknown, sizeof unknown, "job=%s call=start", VRT_MISSING);
	cr_assert(wait_for_log(&w, "reason=JOB_FINISHED", 10));
	cr_assert(wait_for_log(&w, unknown, 10));
	cr_assert(log_contains(&w, "event=job_dropped rid="),
		  "the API's request id is on the line");

	/* Nothing stays pending: both deliveries were acknowledged. */
	struct vr_redis *redis = NULL;
	cr_assert_eq(vr_redis_open(&redis, vrt_env("VRT_REDIS_URI")), 0);
	struct vr_jobq *q = NULL;
	cr_assert_eq(vr_jobq_open(&q, redis, NULL), 0);
	unsigned long long pending = 1;
	double end = vrt_now() + 5;
	while (vrt_now() < end && pending) {
		cr_assert_eq(vr_jobq_pending_count(q, &pending), 0);
		vrt_sleep(0.1);
	}
	cr_assert_eq(pending, 0);
	vr_jobq_close(q);
	vr_redis_close(redis);
	cr_assert_eq(worker_stop(&w, 15, NULL), 0);
	free(job);
	free(status);
	free(task);
}

Test(worker, unreachable_api_is_retried_and_sigterm_still_exits_0)
{
	char api[64];
	snprintf(api, sizeof api, "http://127.0.0.1:%u", vrt_closed_port());
	struct worker w;
	worker_start(&w, api, NULL);
	cr_assert(wait_for_log(&w, "event=register_failed", 10));
	vrt_sleep(2.5);
	char *text = read_log(&w);
	int failures = 0;
	for (const char *p = text; (p = strstr(p, "event=register_failed")); p++)
		failures++;
	free(text);
	cr_assert_geq(failures, 2, "registration is retried");
	cr_assert_leq(failures, 4, "with a backoff, not in a loop");
	double took = 0;
	cr_assert_eq(worker_stop(&w, 10, &took), 0);
	cr_assert_lt(took, 3.0, "took %.1f s", took);
	cr_assert_not(log_contains(&w, "event=left"), "it never registered, so it does not leave");
}

Test(worker, bad_token_file_is_a_config_error)
{
	struct worker w;
	const char *extra[] = {"--token-file", "/nonexistent/token", NULL};
	worker_start(&w, vrt_base_url(), extra);
	int status = 0;
	cr_assert_eq(waitpid(w.pid, &status, 0), w.pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 3);
}
