/* The daemon's scheduler (docs/agent.md, "Scheduling"): for every
 * protected replication, the next start by the vSphere rule
 * (vr_agent_schedule_next), at most one sync of a replication at a time
 * and at most [agent] sync_workers at once; `sync` commands start one now,
 * `configChanged` and protect/unprotect are picked up by reading the state
 * directory again. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

/* Seconds between two readings of the state directory. */
#define RESCAN_S 10

struct entry {
	char id[VR_UUID_LEN + 1];
	bool running, now, gone;
	bool quiesce; /* the next sync runs the hooks whatever the settings (sync quiesce=true) */
	bool asked;   /* the sync running was asked for (a sync command), not scheduled */
	unsigned failures;
	int64_t failed_ms, last_start_ms;
	int64_t next_ms; /* cached from the state, recomputed after each sync */
};

struct vr_agent_scheduler {
	const struct vr_agent_config *config;
	struct vr_agent_sync_env env;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t main;
	pthread_t *workers;
	unsigned nworkers;
	atomic_bool stop;
	bool rescan;
	struct entry *entries;
	size_t nentries;
	struct entry **queue; /* handed to the workers */
	size_t queued;
	int lock_fd; /* STATE_DIR/scheduler.lock, held while the scheduler runs */
};

#define LOCK_FILE "scheduler.lock"

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void save_progress(void *ctx, const struct vr_agent_progress *p)
{
	struct vr_agent_scheduler *s = ctx;
	vr_agent_progress_save(s->config->state_dir, p);
}

/* The next start of e from its state (lock held). */
static void plan(struct vr_agent_scheduler *s, struct entry *e, int64_t now)
{
	struct vr_agent_repl r;
	if (vr_agent_repl_load(&r, s->config->state_dir, e->id, NULL)) {
		e->gone = true;
		return;
	}
	struct vr_agent_schedule_in in = {.now_ms = now,
					  .last_pit_ms = r.point_in_time_ms,
					  .rpo_s = r.rpo * 60,
					  .recent_ms = r.recent_ms,
					  .nrecent = r.nrecent,
					  .floor_s = s->config->sync_floor,
					  .last_start_ms = e->last_start_ms,
					  .failures = e->failures,
					  .failed_ms = e->failed_ms};
	e->next_ms = vr_agent_schedule_next(&in);
	if (!e->last_start_ms) {
		/* A spool left by a sync this daemon did not start (it was killed in
		 * the middle): its instance was captured already; finish it now. */
		char *spool = vr_agent_spool_path(s->config->state_dir, e->id);
		if (access(spool, F_OK) == 0 && e->next_ms > now) {
			e->next_ms = now;
			vr_log_info("sync_spool_pending", "replication", e->id);
		}
		free(spool);
	}
	vr_agent_repl_free(&r);
}

/* Read the state directory: new replications get an entry, removed ones
 * lose theirs once not running (lock held). */
static void rescan(struct vr_agent_scheduler *s, int64_t now)
{
	char **ids;
	size_t n;
	if (vr_agent_repl_list(s->config->state_dir, &ids, &n)) {
		vr_log_warn("state_dir_unreadable", "path", s->config->state_dir);
		return;
	}
	for (size_t i = 0; i < s->nentries; i++)
		s->entries[i].gone = true;
	for (size_t k = 0; k < n; k++) {
		struct entry *e = NULL;
		for (size_t i = 0; i < s->nentries; i++)
			if (strcmp(s->entries[i].id, ids[k]) == 0)
				e = &s->entries[i];
		if (!e) {
			/* The queue holds pointers: grow only when nothing is queued
			 * or running. */
			bool busy = s->queued > 0;
			for (size_t i = 0; i < s->nentries && !busy; i++)
				busy = s->entries[i].running;
			if (busy) {
				s->rescan = true;
				continue;
			}
			s->entries = vr_realloc(s->entries, (s->nentries + 1) * sizeof *s->entries);
			e = &s->entries[s->nentries++];
			memset(e, 0, sizeof *e);
			snprintf(e->id, sizeof e->id, "%s", ids[k]);
			vr_log_info("replication_scheduled", "replication", e->id);
		}
		e->gone = false;
		if (!e->running)
			plan(s, e, now);
	}
	for (size_t k = 0; k < n; k++)
		free(ids[k]);
	free(ids);
	/* Drop the entries whose state went, unless they run. */
	bool busy = s->queued > 0;
	for (size_t i = 0; i < s->nentries && !busy; i++)
		busy = s->entries[i].running;
	if (busy)
		return;
	size_t kept = 0;
	for (size_t i = 0; i < s->nentries; i++)
		if (!s->entries[i].gone)
			s->entries[kept++] = s->entries[i];
		else
			vr_log_info("replication_unscheduled", "replication", s->entries[i].id);
	s->nentries = kept;
}

static void *worker_main(void *arg)
{
	struct vr_agent_scheduler *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!atomic_load(&s->stop)) {
		if (!s->queued) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		struct entry *e = s->queue[0];
		memmove(s->queue, s->queue + 1, --s->queued * sizeof *s->queue);
		char id[VR_UUID_LEN + 1];
		snprintf(id, sizeof id, "%s", e->id);
		e->last_start_ms = wall_ms();
		struct vr_agent_sync_env env = s->env;
		env.quiesce = e->quiesce;
		e->quiesce = false;
		pthread_mutex_unlock(&s->lock);

		struct vr_agent_sync_result res;
		char *error = NULL;
		vr_log_info("sync_started", "replication", id, "quiesce",
			    env.quiesce ? "requested" : NULL);
		int rc = vr_agent_sync(&env, id, &res, &error);
		if (rc == 0) {
			char blocks[24], bytes[24], ms[24];
			snprintf(blocks, sizeof blocks, "%llu", (unsigned long long)res.blocks);
			snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)res.sent_bytes);
			snprintf(ms, sizeof ms, "%u", res.duration_ms);
			vr_log_info("sync_committed", "replication", id, "instance", res.instance,
				    "full", res.full ? "yes" : "no", "blocks", blocks, "sent_bytes",
				    bytes, "ms", ms);
		} else if (rc == VR_ECONFLICT) {
			vr_log_info("sync_busy", "replication", id, "reason", error);
		} else {
			vr_log_warn("sync_failed", "replication", id, "error", error);
		}
		free(error);

		pthread_mutex_lock(&s->lock);
		e->running = false;
		if (rc == 0) {
			e->failures = 0;
		} else if (rc != VR_ECONFLICT) {
			e->failures++;
			e->failed_ms = wall_ms();
		}
		if (rc == VR_ECONFLICT && env.quiesce)
			e->quiesce = true; /* the asked-for quiesced instance is still to come */
		if (rc == 0 && res.spool_resumed && e->asked) {
			/* That was the instance an interrupted sync left, older than the
			 * request: the one asked for follows at once. */
			e->now = true;
			e->quiesce |= env.quiesce;
		}
		e->asked = false;
		plan(s, e, wall_ms());
		if (rc == VR_ECONFLICT && e->next_ms < wall_ms() + 5000)
			e->next_ms = wall_ms() + 5000; /* another sync of it runs: look again soon
							*/
		pthread_cond_broadcast(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Syncs queued or running (an entry is running from when it is queued). */
static unsigned running(const struct vr_agent_scheduler *s)
{
	unsigned n = 0;
	for (size_t i = 0; i < s->nentries; i++)
		n += s->entries[i].running;
	return n;
}

static void *main_loop(void *arg)
{
	struct vr_agent_scheduler *s = arg;
	int64_t next_scan = 0;
	pthread_mutex_lock(&s->lock);
	while (!atomic_load(&s->stop)) {
		int64_t now = wall_ms();
		if (s->rescan || now >= next_scan) {
			s->rescan = false;
			rescan(s, now);
			next_scan = now + RESCAN_S * 1000;
		}
		int64_t soonest = next_scan;
		for (size_t i = 0; i < s->nentries; i++) {
			struct entry *e = &s->entries[i];
			if (e->running || e->gone)
				continue;
			if ((e->now || e->next_ms <= now) && running(s) < s->nworkers) {
				e->asked = e->now;
				e->now = false;
				e->running = true;
				s->queue[s->queued++] = e;
				pthread_cond_broadcast(&s->wake);
			} else if (e->next_ms < soonest) {
				soonest = e->next_ms;
			}
		}
		int64_t wait = soonest - wall_ms();
		if (wait < 50)
			wait = 50;
		if (wait > 1000)
			wait = 1000;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(wait % 1000) * 1000000;
		until.tv_sec += wait / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&s->wake, &s->lock, &until);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int vr_agent_scheduler_start(struct vr_agent_scheduler **out, const struct vr_agent_config *config,
			     const struct vr_agent_tls *tls, const char *credential,
			     char **error_out)
{
	*out = NULL;
	struct vr_agent_scheduler *s = vr_calloc(1, sizeof *s);
	s->config = config;
	s->env.config = config;
	s->env.tls = tls;
	s->env.credential = credential;
	s->env.state_dir = config->state_dir;
	s->env.progress = save_progress;
	s->env.progress_ctx = s;
	s->env.stop = &s->stop;
	atomic_init(&s->stop, false);
	s->nworkers = config->sync_workers ? config->sync_workers : 1;
	s->rescan = true;
	char *lock_path = vr_asprintf("%s/%s", config->state_dir, LOCK_FILE);
	s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
		vr_log_warn("scheduler_lock_failed", "path", lock_path, "error",
			    s->lock_fd < 0 ? strerror(errno)
					   : "another vrcloud-agent daemon uses this state directory");
	free(lock_path);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->workers = vr_calloc(s->nworkers, sizeof *s->workers);
	s->queue = vr_calloc(s->nworkers, sizeof *s->queue);
	unsigned started = 0;
	bool ok = pthread_create(&s->main, NULL, main_loop, s) == 0;
	for (; ok && started < s->nworkers; started++)
		ok = pthread_create(&s->workers[started], NULL, worker_main, s) == 0;
	if (!ok) {
		*error_out = vr_strdup("the scheduler's threads could not be started");
		atomic_store(&s->stop, true);
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		/* only the threads that started are joined */
		if (started)
			pthread_join(s->main, NULL);
		for (unsigned i = 0; i + 1 < started; i++)
			pthread_join(s->workers[i], NULL);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		free(s->workers);
		free(s->queue);
		free(s);
		return VR_EIO;
	}
	*out = s;
	return 0;
}

static void sync_now(struct vr_agent_scheduler *s, const char *replication, bool quiesce)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	bool known = false;
	for (size_t i = 0; i < s->nentries; i++)
		if (!replication || strcmp(s->entries[i].id, replication) == 0) {
			s->entries[i].now = true;
			s->entries[i].quiesce |= quiesce;
			known = true;
		}
	if (!known)
		s->rescan = true; /* protected since the last scan, perhaps */
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (!known && replication) {
		/* After the rescan the main loop finds it due if it is new: a new
		 * replication's first sync is due at once. */
		vr_log_info("sync_requested_unknown", "replication", replication);
	}
}

void vr_agent_scheduler_sync_now(struct vr_agent_scheduler *s, const char *replication)
{
	sync_now(s, replication, false);
}

void vr_agent_scheduler_sync_quiesced(struct vr_agent_scheduler *s, const char *replication)
{
	sync_now(s, replication, true);
}

void vr_agent_scheduler_reload(struct vr_agent_scheduler *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->rescan = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void vr_agent_scheduler_stop(struct vr_agent_scheduler *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->main, NULL);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->entries);
	free(s->workers);
	free(s->queue);
	free(s);
}

bool vr_agent_scheduler_running(const char *state_dir)
{
	char *path = vr_asprintf("%s/%s", state_dir, LOCK_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}
