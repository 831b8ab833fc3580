/* The recovery jobs moving data (docs/recovery.md), with the built
 * vrcloud-worker against the harness's API, PostgreSQL and Redis: the test
 * fills a replica store with instances of a source VM (replica.c, the
 * real encoder, decoder and store), then a test failover's images equal an
 * instance byte for byte while replication goes on, a test cleanup removes
 * them, a failover to the newest instance moves the replica disks out
 * without copying (same inode, time independent of the disk's size), a
 * failover to an older instance applies the undo logs, a synchronizing
 * test failover waits for the instance the site sends, and the images'
 * paths are recorded and shown by `vrcloudctl vapp show`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/replica.h"
#include "vrcloud/alloc.h"

VRT_SUITE(.name = "recovery", .jobs = 1, .redis_db = 14);

#define MIB ((uint64_t)1 << 20)

struct world {
	char dir[256];
	char store[300];
	char recovered[300];
	char log[300];
	char config[300];
	pid_t pid;
};

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	cr_assert_geq(vasprintf(&s, f, ap), 0);
	va_end(ap);
	return s;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return vr_strdup("");
	char *text = vr_calloc(1, 1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static ino_t inode_of(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_ino;
}

/* The suite's worker with store_dir and recovered_dir in a directory of
 * its own; boot_check (NULL: none) and more [worker] lines. */
static void world_start(struct world *w, const char *boot_check)
{
	memset(w, 0, sizeof *w);
	signal(SIGPIPE, SIG_IGN);
	snprintf(w->dir, sizeof w->dir, "%s/recovery-XXXXXX", vrt_env("VRT_WORKDIR"));
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->store, sizeof w->store, "%s/store", w->dir);
	snprintf(w->recovered, sizeof w->recovered, "%s/recovered", w->dir);
	snprintf(w->log, sizeof w->log, "%s/worker.log", w->dir);
	snprintf(w->config, sizeof w->config, "%s/worker.ini", w->dir);
	char *token = fmt("%s/token", w->dir);
	FILE *f = fopen(token, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", vrt_service_token(VRT_SERVICE));
	fclose(f);
	chmod(token, 0600);
	f = fopen(w->config, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[worker]\nstore_dir = %s\nrecovered_dir = %s\nsync_timeout = 20\n"
		"traffic_listen = off\n",
		w->store, w->recovered);
	if (boot_check)
		fprintf(f, "boot_check = %s\n", boot_check);
	fclose(f);
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	char *binary = fmt("%s/vrcloud-worker", builddir ? builddir : ".");
	const char *argv[] = {binary,
			      "--config",
			      w->config,
			      "--name",
			      VRT_SERVICE,
			      "--api-url",
			      vrt_base_url(),
			      "--token-file",
			      token,
			      "--redis",
			      vrt_env("VRT_REDIS_URI"),
			      "--concurrency",
			      "2",
			      "--heartbeat-interval",
			      "1",
			      "--shutdown-timeout",
			      "5",
			      "--log-level",
			      "debug",
			      "--log-file",
			      w->log,
			      NULL};
	w->pid = fork();
	cr_assert_geq(w->pid, 0);
	if (w->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	double end = vrt_now() + 15;
	for (;;) {
		char *log = read_text(w->log);
		bool up = strstr(log, "event=registered") != NULL;
		free(log);
		if (up)
			break;
		cr_assert(vrt_now() < end, "the worker never registered:\n%s", read_text(w->log));
		vrt_sleep(0.1);
	}
	free(binary);
	free(token);
}

static void world_stop(struct world *w)
{
	kill(w->pid, SIGTERM);
	int status = 0;
	double end = vrt_now() + 15;
	while (waitpid(w->pid, &status, WNOHANG) == 0) {
		if (vrt_now() > end) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, &status, 0);
			break;
		}
		vrt_sleep(0.05);
	}
	char *log = read_text(w->log);
	cr_assert_null(strstr(log, "runtime error"), "%s", log);
	cr_assert_null(strstr(log, "Sanitizer"), "%s", log);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the worker exited %d", status);
	free(log);
}

/* A replication of its own, replicating, in a VDC of its own (whose peer
 * is the replication's). */
static char *new_replication(const char *name)
{
	char *vdc = vrt_new_vdc(true, true, true);
	char *rg = vrt_new_replication(vdc, name, true, "replication_state = 'ok'");
	free(vdc);
	return rg;
}

/* POST action on rg as admin-a; waits for the Task: its final status, and
 * *task_out (may be NULL) its id. */
static char *act(const char *rg, const char *action, const char *content_type, const char *body,
		 char **task_out)
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
	double end = vrt_now() + 60;
	while (vrt_now() < end) {
		free(status);
		status = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
		vrt_sleep(0.05);
	}
	if (task_out)
		*task_out = task;
	else
		free(task);
	free(header);
	free(path);
	return status;
}

static char *test_failover_body(bool power_on, bool sync)
{
	return fmt("<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		   "<PowerOn>%s</PowerOn><Synchronize>%s</Synchronize></TestFailoverParams>",
		   power_on ? "true" : "false", sync ? "true" : "false");
}

static char *failover_body(const char *instance)
{
	if (!instance)
		return fmt("<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			   "<PowerOn>false</PowerOn></FailoverParams>");
	return fmt("<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		   "<PowerOn>false</PowerOn><InstanceId>%s</InstanceId></FailoverParams>",
		   instance);
}

#define TEST_FAILOVER_MT "application/vnd.vmware.hcs.testFailoverParams+xml"
#define FAILOVER_MT	 "application/vnd.vmware.hcs.failoverParams+xml"

/* `vrcloudctl vapp show` of the live vApp of kind of rg. */
static char *vapp_show(const char *rg, const char *kind)
{
	char *id = vrt_db_value("SELECT id::text FROM vapps WHERE replication_id = $1::uuid"
				" AND kind = $2 AND deleted_at IS NULL",
				rg, kind);
	cr_assert_not_null(id, "no live %s vApp of %s", kind, rg);
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	char *cmd = fmt("%s/vrcloudctl --database '%s' vapp show %s", builddir ? builddir : ".",
			vrt_env("VRT_DB_URI"), id);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char *out = vr_calloc(1, 65536);
	size_t n = fread(out, 1, 65535, p);
	out[n] = '\0';
	cr_assert_eq(pclose(p), 0, "%s:\n%s", cmd, out);
	free(cmd);
	free(id);
	return out;
}

/* The value of line key= of text (shell quotes dropped); caller frees. */
static char *kv(const char *text, const char *key)
{
	char *needle = fmt("%s=", key);
	const char *at = strstr(text, needle);
	while (at && at != text && at[-1] != '\n')
		at = strstr(at + 1, needle);
	cr_assert_not_null(at, "no %s in:\n%s", key, text);
	at += strlen(needle);
	size_t len = strcspn(at, "\n");
	char *v = vr_calloc(1, len + 1);
	size_t j = 0;
	for (size_t i = 0; i < len; i++)
		if (at[i] != '\'')
			v[j++] = at[i];
	free(needle);
	return v;
}

Test(recovery, test_failover_copies_an_instance_while_replication_goes_on_and_cleanup_removes_it)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-test");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {4 * MIB, 8 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 2, sizes);
	char i1[VR_UUID_LEN + 1], i2[VR_UUID_LEN + 1], i3[VR_UUID_LEN + 1];
	rfx_write(&f, 300);
	rfx_commit(&f, 0, i1);
	rfx_write(&f, 50);
	rfx_commit(&f, 0, i2);
	rfx_write(&f, 50);
	rfx_commit(&f, 0, i3);

	char *body = test_failover_body(false, false);
	char *status = act(rg, "testFailover", TEST_FAILOVER_MT, body, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	free(status);
	/* the images and their paths, as recorded and shown */
	char *show = vapp_show(rg, "test");
	char *iid = kv(show, "instance_id");
	cr_assert_str_eq(iid, i3, "%s", show);
	char *paths[2];
	for (unsigned d = 0; d < 2; d++) {
		char *key = fmt("disk_%u_path", 2000 + d);
		paths[d] = kv(show, key);
		char *snap = rfx_snapshot(&f, i3, d);
		cr_assert(rfx_cmp(paths[d], snap), "%s differs from instance 3's %s", paths[d],
			  snap);
		free(snap);
		free(key);
	}
	char *size = kv(show, "disk_2001_size");
	cr_assert_str_eq(size, "8388608");
	free(size);

	/* replication goes on: a fourth instance commits, the test copy stays */
	char i4[VR_UUID_LEN + 1];
	rfx_write(&f, 40);
	rfx_commit(&f, 0, i4);
	for (unsigned d = 0; d < 2; d++) {
		char *snap = rfx_snapshot(&f, i3, d);
		cr_assert(rfx_cmp(paths[d], snap), "the test copy changed with replication");
		free(snap);
	}

	status = act(rg, "testCleanup", NULL, NULL, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	free(status);
	for (unsigned d = 0; d < 2; d++) {
		cr_assert_not(exists(paths[d]), "%s is still there", paths[d]);
		free(paths[d]);
	}
	char *live = vrt_db_value("SELECT count(*)::text FROM vapps WHERE replication_id = $1::uuid"
				  " AND kind = 'test' AND deleted_at IS NULL",
				  rg);
	cr_assert_str_eq(live, "0");
	free(live);

	/* the next test failover finds the newest instance */
	free(status = act(rg, "testFailover", TEST_FAILOVER_MT, body, NULL));
	free(show);
	show = vapp_show(rg, "test");
	char *path = kv(show, "disk_2000_path");
	char *snap = rfx_snapshot(&f, i4, 0);
	cr_assert(rfx_cmp(path, snap));
	free(snap);
	free(path);
	free(show);
	free(iid);
	world_stop(&w);
	rfx_free(&f);
	free(body);
	free(src);
	free(rg);
}

Test(recovery, delete_removes_the_replica_and_the_test_images)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-delete");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {1 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 1, sizes);
	char id[VR_UUID_LEN + 1];
	rfx_write(&f, 10);
	rfx_commit(&f, 0, id);
	char *body = test_failover_body(false, false);
	char *status = act(rg, "testFailover", TEST_FAILOVER_MT, body, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	free(status);
	char *show = vapp_show(rg, "test");
	char *path = kv(show, "disk_2000_path");
	cr_assert(exists(path));
	char *url = fmt("/api/vr/replications/%s", rg);
	struct vrt_call call = {.method = "DELETE", .path = url, .token = vrt_token(VRT_ADMIN_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 202, "%ld %s", r.status, r.body);
	char *task = vrt_xpath_str(r.body, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_resp_free(&r);
	double end = vrt_now() + 30;
	while (vrt_now() < end) {
		status = vrt_db_value("SELECT status FROM tasks WHERE id = $1::uuid", task);
		bool done = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
		if (done)
			break;
		free(status);
		status = NULL;
		vrt_sleep(0.05);
	}
	cr_assert_not_null(status);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	cr_assert_not(exists(path), "the test image %s outlived the replication", path);
	char *replica = fmt("%s/%s", w.store, rg);
	cr_assert_not(exists(replica), "the replica store outlived the replication");
	free(replica);
	free(status);
	free(task);
	free(url);
	free(path);
	free(show);
	free(body);
	world_stop(&w);
	rfx_free(&f);
	free(src);
	free(rg);
}

Test(recovery, failover_to_an_older_instance_applies_the_undo_logs)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-older");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {6 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 1, sizes);
	char ids[4][VR_UUID_LEN + 1];
	for (unsigned i = 0; i < 4; i++) {
		rfx_write(&f, i ? 60 : 400);
		rfx_commit(&f, 0, ids[i]);
	}
	char *body = failover_body(ids[1]);
	char *status = act(rg, "failover", FAILOVER_MT, body, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	char *show = vapp_show(rg, "recovered");
	char *iid = kv(show, "instance_id");
	cr_assert_str_eq(iid, ids[1]);
	char *path = kv(show, "disk_2000_path");
	char *snap = rfx_snapshot(&f, ids[1], 0);
	cr_assert(rfx_cmp(path, snap), "the recovered image is not instance 2");
	char *newest = rfx_snapshot(&f, ids[3], 0);
	cr_assert_not(rfx_cmp(path, newest));
	char *log = read_text(w.log);
	cr_assert(strstr(log, "mode=copy"), "an older instance is copied");
	free(log);
	free(newest);
	free(snap);
	free(path);
	free(iid);
	free(show);
	free(status);
	free(body);
	world_stop(&w);
	rfx_free(&f);
	free(src);
	free(rg);
}

/* Fail rg over to its newest instance; the seconds the job took. */
static double failover_newest(struct world *w, const char *rg, struct rfx *f, const char *newest)
{
	struct vr_store *store = NULL;
	char *error = NULL;
	cr_assert_eq(vr_store_open(&store, w->store, rg, 5000, &error), 0);
	ino_t before = inode_of(vr_store_disk_path(store, 0));
	vr_store_close(store);
	char *body = failover_body(NULL);
	char *task = NULL;
	char *status = act(rg, "failover", FAILOVER_MT, body, &task);
	cr_assert_str_eq(status, "success", "%s", read_text(w->log));
	char *secs = vrt_db_value("SELECT extract(epoch FROM end_time - start_time)::text"
				  " FROM tasks WHERE id = $1::uuid",
				  task);
	double took = atof(secs);
	char *show = vapp_show(rg, "recovered");
	char *path = kv(show, "disk_2000_path");
	cr_assert_eq(inode_of(path), before, "the newest instance was copied, not moved");
	char *snap = rfx_snapshot(f, newest, 0);
	cr_assert(rfx_cmp(path, snap), "the recovered image is not the newest instance");
	free(snap);
	free(path);
	free(show);
	free(secs);
	free(task);
	free(status);
	free(body);
	return took;
}

Test(recovery, failover_to_the_newest_instance_moves_the_disks_in_a_time_independent_of_size)
{
	struct world w;
	world_start(&w, NULL);
	char *src = fmt("%s/src", w.dir);
	double took[2];
	const uint64_t sizes[2] = {64 * MIB, 1024 * MIB};
	for (unsigned i = 0; i < 2; i++) {
		char *name = fmt("recovery-move-%u", i);
		char *rg = new_replication(name);
		char *dir = fmt("%s-%u", src, i);
		struct rfx f;
		rfx_init(&f, w.store, rg, dir, 1, &sizes[i]);
		char a[VR_UUID_LEN + 1], b[VR_UUID_LEN + 1];
		rfx_write(&f, 64);
		rfx_commit(&f, 0, a);
		rfx_write(&f, 16);
		rfx_commit(&f, 0, b);
		took[i] = failover_newest(&w, rg, &f, b);
		rfx_free(&f);
		free(dir);
		free(name);
		free(rg);
	}
	printf("failover to the newest instance: 64 MiB %.3f s, 1 GiB %.3f s\n", took[0], took[1]);
	cr_assert(took[1] < took[0] + 1.0, "1 GiB took %.3f s, 64 MiB %.3f s", took[1], took[0]);
	world_stop(&w);
	free(src);
}

struct later {
	struct rfx *f;
	char id[VR_UUID_LEN + 1];
	double delay;
};

/* The site's answer to a sync: an instance some time later. */
static void *commit_later(void *arg)
{
	struct later *l = arg;
	vrt_sleep(l->delay);
	rfx_write(l->f, 20);
	rfx_commit(l->f, 0, l->id);
	return NULL;
}

Test(recovery, a_synchronizing_test_failover_waits_for_the_instance_the_site_sends)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-sync");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {4 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 1, sizes);
	char old[VR_UUID_LEN + 1];
	rfx_write(&f, 100);
	rfx_commit(&f, 0, old);
	struct later l = {.f = &f, .delay = 2.0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, commit_later, &l), 0);
	char *body = test_failover_body(false, true);
	char *status = act(rg, "testFailover", TEST_FAILOVER_MT, body, NULL);
	pthread_join(t, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	char *log = read_text(w.log);
	cr_assert(strstr(log, "event=site_command_queued") && strstr(log, "command=sync"), "%s",
		  log);
	char *show = vapp_show(rg, "test");
	char *iid = kv(show, "instance_id");
	cr_assert_str_eq(iid, l.id, "the job recovered %s, not the synchronized %s", iid, l.id);
	char *path = kv(show, "disk_2000_path");
	char *snap = rfx_snapshot(&f, l.id, 0);
	cr_assert(rfx_cmp(path, snap));
	char *peer = vrt_db_value("SELECT peer_id::text FROM replications WHERE id = $1::uuid", rg);
	char *list = fmt("vrcloud:tunnel:commands:%s", peer);
	cr_assert_eq(vrt_redis_del(list), 1, "the sync command is not in the site's list");
	free(list);
	free(peer);
	free(snap);
	free(path);
	free(iid);
	free(show);
	free(log);
	free(status);
	free(body);
	world_stop(&w);
	rfx_free(&f);
	free(src);
	free(rg);
}

Test(recovery, a_planned_migration_syncs_quiesced_then_moves_the_newest_instance)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-planned");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {8 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 1, sizes);
	char old[VR_UUID_LEN + 1];
	rfx_write(&f, 100);
	rfx_commit(&f, 0, old);
	struct vr_store *store = NULL;
	char *error = NULL;
	cr_assert_eq(vr_store_open(&store, w.store, rg, 5000, &error), 0);
	ino_t replica = inode_of(vr_store_disk_path(store, 0));
	vr_store_close(store);
	struct later l = {.f = &f, .delay = 1.5};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, commit_later, &l), 0);
	char *status = act(rg, "plannedMigration", FAILOVER_MT,
			   "<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			   "<PowerOn>false</PowerOn></FailoverParams>",
			   NULL);
	pthread_join(t, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	char *peer = vrt_db_value("SELECT peer_id::text FROM replications WHERE id = $1::uuid", rg);
	char *list = fmt("vrcloud:tunnel:commands:%s", peer);
	char *show = vapp_show(rg, "recovered");
	char *iid = kv(show, "instance_id");
	cr_assert_str_eq(iid, l.id, "the migration recovered %s, not the final sync's %s", iid,
			 l.id);
	char *path = kv(show, "disk_2000_path");
	cr_assert_eq(inode_of(path), replica, "the final instance was copied, not moved");
	char *snap = rfx_snapshot(&f, l.id, 0);
	cr_assert(rfx_cmp(path, snap));
	char *state = vrt_replication_state(rg);
	cr_assert(strncmp(state, "recovered ", 10) == 0, "%s", state);
	char *command = vrt_redis_lpop(list);
	cr_assert_not_null(command, "no sync command for the site");
	cr_assert(strstr(command, "name=sync\n") && strstr(command, "quiesce=true\n"), "%s",
		  command);
	free(command);
	free(state);
	free(snap);
	free(path);
	free(iid);
	free(show);
	free(list);
	free(peer);
	free(status);
	world_stop(&w);
	rfx_free(&f);
	free(src);
	free(rg);
}

Test(recovery, a_reconfigure_sends_the_site_the_settings_it_changed)
{
	struct world w;
	world_start(&w, NULL);
	char *rg = new_replication("recovery-reconfigure");
	char *status = act(rg, "reconfigure",
			   "application/vnd.vmware.hcs.reconfigureReplicationGroupParams+xml",
			   "<ReconfigureReplicationGroupParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			   "<Rpo>30</Rpo><QuiesceGuestEnabled>true</QuiesceGuestEnabled>"
			   "<RetentionPolicy><Rule><NumberOfInstances>6</NumberOfInstances>"
			   "<DistanceMinutes>10</DistanceMinutes></Rule><Rule><NumberOfInstances>"
			   "4</NumberOfInstances><DistanceMinutes>60</DistanceMinutes></Rule>"
			   "</RetentionPolicy></ReconfigureReplicationGroupParams>",
			   NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	char *peer = vrt_db_value("SELECT peer_id::text FROM replications WHERE id = $1::uuid", rg);
	char *list = fmt("vrcloud:tunnel:commands:%s", peer);
	char *command = vrt_redis_lpop(list);
	cr_assert_not_null(command, "no configChanged command for the site");
	char *want = fmt("name=configChanged\nreplication=%s\n", rg);
	cr_assert_not_null(strstr(command, want), "%s", command);
	cr_assert_not_null(strstr(command, "rpo=30\n"), "%s", command);
	cr_assert_not_null(strstr(command, "quiesce=true\n"), "%s", command);
	cr_assert_not_null(strstr(command, "retention=6x10,4x60\n"), "%s", command);
	cr_assert_null(strstr(command, "compress="), "a setting not named is not sent: %s", command);
	free(want);
	free(command);
	free(list);
	free(peer);
	free(status);
	world_stop(&w);
	free(rg);
}

Test(recovery, a_failing_boot_check_fails_the_job_clearly_and_a_retried_failover_finds_its_disks)
{
	struct world w;
	char *script = fmt("%s/boot-check-%d.sh", vrt_env("VRT_WORKDIR"), (int)getpid());
	FILE *s = fopen(script, "w");
	cr_assert_not_null(s);
	/* fails until a file .pass appears beside it */
	fprintf(s, "#!/bin/sh\necho \"$@\" > %s.args\ntest -e %s.pass || exit 3\n", script, script);
	fclose(s);
	chmod(script, 0755);
	world_start(&w, script);
	char *rg = new_replication("recovery-boot");
	char *src = fmt("%s/src", w.dir);
	const uint64_t sizes[] = {1 * MIB};
	struct rfx f;
	rfx_init(&f, w.store, rg, src, 1, sizes);
	char id[VR_UUID_LEN + 1];
	rfx_write(&f, 10);
	rfx_commit(&f, 0, id);
	char *body = test_failover_body(true, false);
	char *task = NULL;
	char *status = act(rg, "testFailover", TEST_FAILOVER_MT, body, &task);
	cr_assert_str_eq(status, "error");
	char *vendor = vrt_db_value("SELECT error_vendor || ': ' || error_message FROM tasks"
				    " WHERE id = $1::uuid",
				    task);
	cr_assert(strstr(vendor, "BootCheckFailed") && strstr(vendor, "exited with status 3"), "%s",
		  vendor);
	char *args_path = fmt("%s.args", script);
	char *args = read_text(args_path);
	cr_assert(strstr(args, "/disk-0.img"), "the boot check got '%s'", args);
	free(args);
	free(args_path);
	free(vendor);
	free(status);
	free(task);

	/* the failed test's images go with its cleanup */
	status = act(rg, "testCleanup", NULL, NULL, NULL);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	free(status);
	char *tests = fmt("ls -d %s/%s/test-* 2>/dev/null", w.recovered, rg);
	cr_assert_neq(system(tests), 0, "a test directory is left");
	free(tests);

	/* a failover whose boot check fails keeps the disks it moved out; run
	 * again once the check passes, it finds them */
	char *fo = fmt("<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		       "<PowerOn>true</PowerOn></FailoverParams>");
	status = act(rg, "failover", FAILOVER_MT, fo, &task);
	cr_assert_str_eq(status, "error");
	vendor = vrt_db_value("SELECT error_vendor FROM tasks WHERE id = $1::uuid", task);
	cr_assert_str_eq(vendor, "BootCheckFailed");
	free(vendor);
	free(status);
	free(task);
	char *pass = fmt("%s.pass", script);
	FILE *p = fopen(pass, "w");
	cr_assert_not_null(p);
	fclose(p);
	status = act(rg, "failover", FAILOVER_MT, fo, &task);
	cr_assert_str_eq(status, "success", "%s", read_text(w.log));
	char *show = vapp_show(rg, "recovered");
	char *path = kv(show, "disk_2000_path");
	char *snap = rfx_snapshot(&f, id, 0);
	cr_assert(rfx_cmp(path, snap), "the retried failover's image is not the instance");
	char *power = kv(show, "power_state");
	cr_assert_str_eq(power, "on");
	free(power);
	free(snap);
	free(path);
	free(show);
	free(status);
	free(task);
	free(pass);
	free(fo);

	/* a replication whose replica this server never received */
	char *never = new_replication("recovery-never");
	vrt_db_exec("INSERT INTO instances (replication_id, seq, transfer_start_time)"
		    " VALUES ($1::uuid, 1, now())",
		    never);
	free(body);
	body = failover_body(NULL);
	status = act(never, "failover", FAILOVER_MT, body, &task);
	cr_assert_str_eq(status, "error");
	vendor = vrt_db_value("SELECT error_vendor FROM tasks WHERE id = $1::uuid", task);
	cr_assert_str_eq(vendor, "NoReplicaInstance");
	free(vendor);
	free(status);
	free(task);
	free(never);
	world_stop(&w);
	rfx_free(&f);
	free(body);
	free(src);
	free(rg);
	free(script);
}
