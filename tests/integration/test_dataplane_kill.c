/* SIGKILL of `vrcloud-agent sync`, of the agent daemon, of the proxy carrying
 * a transfer or of the worker receiving it, at random moments of the transfer
 * and just after the store began its commit,
 * with the whole stack (dataplane.h). After each trial the replica equals
 * exactly one committed instance, the newest the API lists (compared with
 * cmp against the disks saved at each instance's start), and the next sync
 * completes. Then a byte of a staged block flipped on disk before the
 * commit is caught. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integration/dataplane.h"
#include "integration/harness.h"
#include "integration/helpers.h"

#define PREFIX "vrdpk"
VRT_SUITE(.name = "dataplanekill", .jobs = 1, .redis_db = 0,
	  .config = "[jobs]\nprefix = " PREFIX "\n");
const char dp_prefix[] = PREFIX;

#define TRIALS	24
#define TARGETS 4

/* The foreground `vrcloud-agent sync`, the daemon syncing on the API's
 * sync action, the proxy carrying the transfer, the worker receiving it. */
enum target { AGENT, DAEMON, PROXY, WORKER };
static const char *const target_names[] = {"agent sync", "agent daemon", "proxy", "worker"};

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static long long seq_of(const char *instance)
{
	char *v = vrt_db_value("SELECT seq::text FROM instances WHERE id = $1::uuid", instance);
	cr_assert_not_null(v, "instance %s is not recorded", instance);
	long long n = atoll(v);
	free(v);
	return n;
}

static long long newest_seq(const struct dp_world *w)
{
	char *v = vrt_db_value("SELECT coalesce(max(seq), 0)::text FROM instances"
			       " WHERE replication_id = $1::uuid",
			       w->repl);
	long long n = atoll(v);
	free(v);
	return n;
}

/* The replica equals the saved disks named name. */
static bool replica_is(const struct dp_world *w, const char *name)
{
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *replica = dp_replica(w, d);
		char *saved = dp_saved(w, name, d);
		bool same = dp_same(replica, saved);
		free(saved);
		free(replica);
		if (!same)
			return false;
	}
	return true;
}

/* Which name's disks the newest instance the API lists holds: those of
 * this trial when it was committed after seq_before, else the previous. */
static const char *expected_name(const struct dp_world *w, long long seq_before, const char *now,
				 const char *before)
{
	return newest_seq(w) > seq_before ? now : before;
}

/* Count needle in the part of the daemon's log its latest start wrote. */
static unsigned since_start(const char *text, const char *needle)
{
	const char *from = text;
	for (const char *p = strstr(text, "event=started "); p; p = strstr(p + 1, "event=started "))
		from = p;
	unsigned n = 0;
	for (const char *q = strstr(from, needle); q; q = strstr(q + 1, needle))
		n++;
	return n;
}

/* Wait until the daemon runs no sync (its own schedule may start one after
 * a restart): what it writes into the disks' instances is then known. */
static void daemon_idle(const struct dp_world *w)
{
	double end = vrt_now() + 60;
	for (;;) {
		char *text = dp_read_text(w->agent.log);
		unsigned started = since_start(text, "event=sync_started");
		unsigned ended = since_start(text, "event=sync_committed") +
				 since_start(text, "event=sync_busy") +
				 since_start(text, "event=sync_failed");
		free(text);
		if (started <= ended)
			return;
		cr_assert(vrt_now() < end, "the daemon's sync never ended");
		vrt_sleep(0.02);
	}
}

/* The replica equals the newest listed instance once the worker is done
 * with what it received (a commit the kill did not stop may still run). */
static void assert_replica_is_newest(const struct dp_world *w, long long seq_before,
				     const char *now, const char *before, const char *when)
{
	double end = vrt_now() + 10;
	const char *name;
	for (;;) {
		name = expected_name(w, seq_before, now, before);
		if (replica_is(w, name))
			return;
		if (vrt_now() > end)
			break;
		vrt_sleep(0.1);
	}
	cr_assert_fail("%s: the replica is not the newest instance (%s)", when, name);
}

/* The proxy whose log gains a data connection within timeout_s, or -1. */
static int carrying_proxy(const struct dp_world *w, const unsigned before[2], double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		for (int i = 0; i < 2; i++) {
			char *text = dp_read_text(w->proxy[i].log);
			unsigned n = 0;
			for (const char *p = strstr(text, "event=data_connected"); p;
			     p = strstr(p + 1, "event=data_connected"))
				n++;
			free(text);
			if (n > before[i])
				return i;
		}
		vrt_sleep(0.005);
	}
	return -1;
}

static unsigned data_connections(const struct dp_proc *p)
{
	char *text = dp_read_text(p->log);
	unsigned n = 0;
	for (const char *q = strstr(text, "event=data_connected"); q;
	     q = strstr(q + 1, "event=data_connected"))
		n++;
	free(text);
	return n;
}

/* Changes into both disks, then their copy as name. */
static void change(struct dp_world *w, unsigned trial, const char *name)
{
	char *seed = vrt_fmt("%u", 100 + trial);
	dp_io_write(w, 0, "28M", seed, trial % 2 ? "sequential" : "random");
	dp_io_write(w, 1, "512K", seed, "random");
	free(seed);
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *to = dp_saved(w, name, d);
		dp_save(w->disk[d], to);
		free(to);
	}
}

/* Wait until path exists (the store's commit marker) or pid ended;
 * whether it appeared. */
static bool wait_marker(const char *path, pid_t pid, double timeout_s)
{
	double end = vrt_now() + timeout_s;
	while (vrt_now() < end) {
		if (access(path, F_OK) == 0)
			return true;
		if (pid > 0 && kill(pid, 0) != 0)
			return false;
		usleep(200);
	}
	return false;
}

static unsigned count_in(const char *path, const char *needle)
{
	char *text = dp_read_text(path);
	unsigned n = 0;
	for (const char *q = strstr(text, needle); q; q = strstr(q + 1, needle))
		n++;
	free(text);
	return n;
}

/* The API's sync action: the worker pushes `sync` to the daemon. */
static void daemon_sync(const struct dp_world *w)
{
	unsigned started = count_in(w->agent.log, "event=sync_started");
	char *path = vrt_fmt("/api/vr/replications/%s/action/sync", w->repl);
	char *status = dp_act(path, NULL, NULL);
	cr_assert_str_eq(status, "success");
	double end = vrt_now() + 15;
	while (count_in(w->agent.log, "event=sync_started") <= started) {
		cr_assert(vrt_now() < end, "the daemon did not start the sync:\n%s",
			  dp_read_text(w->agent.log));
		usleep(500);
	}
	free(status);
	free(path);
}

Test(dataplane_kill, sigkill_of_agent_proxy_or_worker_leaves_one_committed_instance, .timeout = 300)
{
	struct dp_world w;
	dp_start(&w, 96, 8);
	uint64_t rnd = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	char *first = dp_newest_instance(&w);
	char before[40];
	snprintf(before, sizeof before, "%s", first);
	free(first);
	unsigned outcomes[TARGETS][2] = {{0}}, at_commit[TARGETS] = {0};
	double started = vrt_now();
	char *out = vrt_fmt("%s/kill-sync.out", w.dir);
	char *marker = vrt_fmt("%s/%s/commit", w.store, w.repl);
	for (unsigned t = 0; t < TRIALS; t++) {
		enum target target = (enum target)(t % TARGETS);
		/* every other round waits for the commit to begin */
		bool commit = (t / TARGETS) % 2 == 1;
		char now[40];
		snprintf(now, sizeof now, "trial-%u", t);
		daemon_idle(&w);
		change(&w, t, now);
		long long seq_before = newest_seq(&w);
		unsigned conns[2] = {data_connections(&w.proxy[0]), data_connections(&w.proxy[1])};
		double delay = (double)(next_random(&rnd) % (commit ? 30 : 700)) / 1000.0;
		pid_t pid = 0;
		if (target == DAEMON)
			daemon_sync(&w);
		else
			pid = dp_sync_spawn(&w, out);
		int victim = -1;
		if (target == PROXY) {
			victim = carrying_proxy(&w, conns, 10);
			cr_assert_geq(victim, 0, "no proxy carried the transfer:\n%s",
				      dp_read_text(out));
		} else if (target == WORKER) {
			victim = (int)dp_holder(&w);
		}
		bool hit = commit && wait_marker(marker, target == DAEMON ? w.agent.pid : pid, 30);
		at_commit[target] += hit;
		vrt_sleep(delay);
		pid_t kill_pid = target == AGENT    ? pid
				 : target == DAEMON ? w.agent.pid
				 : target == PROXY  ? w.proxy[victim].pid
						    : w.worker[victim].pid;
		kill(kill_pid, SIGKILL);
		if (target == DAEMON) {
			dp_stop_proc(&w.agent, SIGKILL, 5);
			dp_agent_start(&w);
		} else if (target == PROXY) {
			dp_stop_proc(&w.proxy[victim], SIGKILL, 5);
			dp_proxy_start(&w, (unsigned)victim);
		} else if (target == WORKER) {
			dp_stop_proc(&w.worker[victim], SIGKILL, 5);
			dp_worker_start(&w, (unsigned)victim);
		}
		int rc = target == DAEMON ? 1 : dp_wait_exit(pid, 120);
		bool committed = rc == 0;
		outcomes[target][committed]++;
		char *text = dp_read_text(out);
		char *attempts = committed ? dp_kv(text, "attempts") : strdup("-");
		cr_log_info("trial %u: %s killed %.3f s after %s, the sync exited %d (attempts %s)",
			    t, target_names[target], delay, hit ? "the commit began" : "its start",
			    rc, attempts);
		free(attempts);
		free(text);
		/* exactly one committed instance: the newest listed */
		if (target != WORKER || committed)
			assert_replica_is_newest(&w, seq_before, now, before, "after the kill");
		if (committed)
			cr_assert_str_eq(expected_name(&w, seq_before, now, before), now);
		/* the next sync completes and takes what is missing */
		char *id = dp_sync(&w);
		daemon_idle(&w);
		cr_assert_gt(newest_seq(&w), seq_before);
		cr_assert(replica_is(&w, now),
			  "trial %u: after the next sync the replica is not the disks of the trial",
			  t);
		/* the copies of the previous trial are no longer needed */
		for (unsigned d = 0; d < DP_DISKS; d++) {
			char *saved = dp_saved(&w, before, d);
			unlink(saved);
			free(saved);
		}
		snprintf(before, sizeof before, "%s", now);
		free(id);
	}
	for (int k = 0; k < TARGETS; k++)
		cr_log_info("%s killed: %u syncs failed, %u finished anyway, %u kills in a commit",
			    target_names[k], outcomes[k][0], outcomes[k][1], at_commit[k]);
	cr_log_info("%u trials in %.1f s", TRIALS, vrt_now() - started);
	free(marker);
	free(out);
	dp_stop(&w);
}

/* The size of a file, 0 when it is missing. */
static off_t size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

Test(dataplane_kill, a_byte_flipped_in_a_staged_block_is_cut_off_and_sent_again, .timeout = 240)
{
	struct dp_world w;
	dp_start(&w, 96, 8);
	char *out = vrt_fmt("%s/flip-sync.out", w.dir);
	char *staging = vrt_fmt("%s/%s/staging", w.store, w.repl);
	for (unsigned t = 0; t < 3; t++) {
		char now[40];
		snprintf(now, sizeof now, "flip-%u", t);
		change(&w, 50 + t, now);
		long long seq_before = newest_seq(&w);
		/* the agent killed once the worker staged a few MiB */
		pid_t pid = dp_sync_spawn(&w, out);
		double end = vrt_now() + 30;
		while (size_of(staging) < (off_t)(6 * DP_MIB) && vrt_now() < end)
			vrt_sleep(0.002);
		kill(pid, SIGKILL);
		dp_wait_exit(pid, 10);
		off_t size = size_of(staging);
		cr_assert_gt(size, (off_t)(4 * DP_MIB), "nothing was staged:\n%s",
			     dp_read_text(out));
		/* a byte of a block in the middle of the staging, flipped */
		int fd = open(staging, O_RDWR);
		cr_assert_geq(fd, 0);
		off_t at = size / 2;
		unsigned char byte;
		cr_assert_eq(pread(fd, &byte, 1, at), 1);
		byte ^= 0x5a;
		cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
		close(fd);
		cr_assert_eq(newest_seq(&w), seq_before, "the killed sync committed");
		/* the resumed sync: the damaged record and what follows are sent
		 * again, and the instance is the disks, byte for byte */
		char *id = dp_sync(&w);
		cr_assert_gt(seq_of(id), seq_before);
		cr_assert(replica_is(&w, now), "the flipped byte reached the replica");
		free(id);
	}
	free(staging);
	free(out);
	dp_stop(&w);
}
