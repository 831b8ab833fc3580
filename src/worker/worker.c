/* The worker daemon: registration and heartbeats (the control thread), the
 * runner threads (runner.c), and an orderly shutdown: no new deliveries,
 * running jobs get shutdown_timeout seconds, then the server leaves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "worker/internal.h"

static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool woken(struct vr_worker *w, enum vr_worker_wake until)
{
	switch (until) {
	case VR_WAKE_STOP: return atomic_load(&w->stopping);
	case VR_WAKE_ABORT: return atomic_load(&w->aborting);
	case VR_WAKE_DONE: return w->runners_done;
	}
	return true;
}

bool vr_worker_sleep(struct vr_worker *w, unsigned ms, enum vr_worker_wake until)
{
	struct timespec deadline = deadline_in(ms);
	pthread_mutex_lock(&w->lock);
	bool early = woken(w, until);
	while (!early) {
		if (pthread_cond_timedwait(&w->wake, &w->lock, &deadline) == ETIMEDOUT)
			break;
		early = woken(w, until);
	}
	pthread_mutex_unlock(&w->lock);
	return early;
}

unsigned vr_worker_backoff_ms(unsigned attempt, unsigned *seed)
{
	unsigned ms = attempt >= 5 ? 30000 : 1000u << attempt;
	if (ms > 30000)
		ms = 30000;
	/* +-20 %, so that workers that lost the API together do not come
	 * back together. */
	unsigned spread = ms / 5;
	return ms - spread + (unsigned)(rand_r(seed) % (2 * spread + 1));
}

bool vr_worker_server_id(struct vr_worker *w, char out[VR_UUID_LEN + 1], bool wait)
{
	pthread_mutex_lock(&w->lock);
	while (wait && !w->server_id[0] && !atomic_load(&w->stopping))
		pthread_cond_wait(&w->wake, &w->lock);
	bool known = w->server_id[0] != '\0';
	memcpy(out, w->server_id, sizeof w->server_id);
	pthread_mutex_unlock(&w->lock);
	return known;
}

void vr_worker_reregister(struct vr_worker *w, const char *server_id)
{
	pthread_mutex_lock(&w->lock);
	/* Only for the id the caller used: a newer registration stands. */
	if (strcmp(w->server_id, server_id) == 0 && !w->reregister) {
		w->reregister = true;
		pthread_cond_broadcast(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
}

static const char *status_text(const struct vr_worker_answer *a, char buf[16])
{
	snprintf(buf, 16, "%ld", a->status);
	return buf;
}

/* POST /api/internal/servers; true with the id in w->server_id. */
static bool register_server(struct vr_worker *w, struct vr_worker_client *client,
			    struct vr_worker_answer *answer, unsigned retry_ms)
{
	const struct vr_worker_config *c = w->config;
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_worker_doc_server(&body, c->name, c->traffic_address) != 0) {
		vr_buf_free(&body);
		vr_log_error("register_failed", "reason",
			     "cannot write the ReplicaServer document");
		return false;
	}
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(client, "POST", "/api/internal/servers", &body, answer);
	vr_buf_free(&body);
	if (kind == VR_ANSWER_ABORTED)
		return false;
	char status[16], retry[16];
	snprintf(retry, sizeof retry, "%u", retry_ms);
	if (kind == VR_ANSWER_OK) {
		char id[VR_UUID_LEN + 1];
		const char *reason = NULL;
		if (vr_worker_parse_server(id, answer->body.data, answer->body.len, &reason) == 0) {
			char previous[VR_UUID_LEN + 1];
			pthread_mutex_lock(&w->lock);
			memcpy(previous, w->server_id, sizeof previous);
			memcpy(w->server_id, id, sizeof id);
			w->reregister = false;
			pthread_cond_broadcast(&w->wake);
			pthread_mutex_unlock(&w->lock);
			vr_log_info("registered", "server", id, "name", c->name, "traffic_address",
				    c->traffic_address, "previous_server",
				    previous[0] && strcmp(previous, id) != 0 ? previous : NULL);
			return true;
		}
		vr_log_error("register_failed", "status", status_text(answer, status), "reason",
			     reason, "retry_in_ms", retry);
		return false;
	}
	if (kind == VR_ANSWER_UNAVAILABLE)
		vr_log_warn("register_failed", "api_url", c->api_url, "status",
			    answer->status ? status_text(answer, status) : NULL, "error",
			    answer->status ? NULL : answer->error, "minor",
			    answer->minor[0] ? answer->minor : NULL, "retry_in_ms", retry);
	else
		vr_log_error(
			"register_refused", "api_url", c->api_url, "status",
			status_text(answer, status), "minor",
			answer->minor[0] ? answer->minor : NULL, "hint",
			answer->status == 401
				? "the token in token_file is not a valid service token"
			: answer->status == 403
				? "[worker] name must be the name of the token's service credential"
				: NULL,
			"retry_in_ms", retry);
	return false;
}

/* The heartbeat carries what the replication port counted since the last
 * one the API took (*reported: the totals it took so far). */
static void heartbeat(struct vr_worker *w, struct vr_worker_client *client,
		      struct vr_worker_answer *answer, const char *id,
		      struct vr_receiver_counts *reported)
{
	char path[128], status[16];
	snprintf(path, sizeof path, "/api/internal/servers/%s/heartbeat", id);
	struct vr_receiver_counts now, delta;
	bool counting = vr_receiver_counts(w->receiver, &now);
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (counting) {
		delta.bytes_in = now.bytes_in - reported->bytes_in;
		delta.bytes_out = now.bytes_out - reported->bytes_out;
		delta.errors = now.errors - reported->errors;
		counting = vr_worker_doc_statistics(&body, &delta) == 0;
	}
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(client, "POST", path, counting ? &body : NULL, answer);
	vr_buf_free(&body);
	if (kind == VR_ANSWER_OK && counting)
		*reported = now;
	if (kind == VR_ANSWER_OK || kind == VR_ANSWER_ABORTED) {
		vr_log_debug("heartbeat", "server", id, "status", status_text(answer, status));
	} else if (kind == VR_ANSWER_NOT_FOUND) {
		vr_log_warn("heartbeat_unknown_server", "server", id, "action",
			    "registering again");
		vr_worker_reregister(w, id);
	} else {
		vr_log_warn("heartbeat_failed", "server", id, "status",
			    answer->status ? status_text(answer, status) : NULL, "error",
			    answer->status ? NULL : answer->error, "minor",
			    answer->minor[0] ? answer->minor : NULL);
	}
}

/* The leaving call is a courtesy (the API also notices the missing
 * heartbeats), so it gets a short timeout of its own: a hung API must not
 * hold the shutdown. */
#define LEAVE_TIMEOUT_MS 5000

static void leave(struct vr_worker *w, struct vr_worker_answer *answer, const char *id)
{
	const struct vr_worker_config *c = w->config;
	struct vr_worker_client_options options = {
		.api_url = c->api_url,
		.token = w->token,
		.connect_timeout_ms = c->connect_timeout * 1000,
		.timeout_ms = c->http_timeout * 1000 < LEAVE_TIMEOUT_MS ? c->http_timeout * 1000
									: LEAVE_TIMEOUT_MS,
	};
	struct vr_worker_client *client = NULL;
	if (vr_worker_client_new(&client, &options) != 0)
		return;
	char path[128], status[16];
	snprintf(path, sizeof path, "/api/internal/servers/%s", id);
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(client, "DELETE", path, NULL, answer);
	if (kind == VR_ANSWER_OK || kind == VR_ANSWER_NOT_FOUND)
		vr_log_info("left", "server", id);
	else
		vr_log_warn("leave_failed", "server", id, "status",
			    answer->status ? status_text(answer, status) : NULL, "error",
			    answer->status ? NULL : answer->error);
	vr_worker_client_free(client);
}

static bool registration_needed(struct vr_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool needed = !w->server_id[0] || w->reregister;
	pthread_mutex_unlock(&w->lock);
	return needed;
}

static void *control_main(void *arg)
{
	struct vr_worker *w = arg;
	const struct vr_worker_config *c = w->config;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	struct vr_worker_client *client = NULL;
	struct vr_worker_client_options options = {
		.api_url = c->api_url,
		.token = w->token,
		.connect_timeout_ms = c->connect_timeout * 1000,
		.timeout_ms = c->http_timeout * 1000,
		/* Heartbeats go on while jobs finish; a call still in flight
		 * when the runners have ended is cut short. */
		.abort = &w->leaving,
	};
	if (vr_worker_client_new(&client, &options) != 0) {
		vr_log_error("control_failed", "reason", "cannot create the HTTP client");
		return NULL;
	}
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	unsigned attempt = 0;
	struct vr_receiver_counts reported = {0};
	for (;;) {
		pthread_mutex_lock(&w->lock);
		bool done = w->runners_done;
		pthread_mutex_unlock(&w->lock);
		if (done)
			break;
		if (registration_needed(w)) {
			if (atomic_load(&w->stopping)) {
				/* Nothing runs without a registration: just wait
				 * for the runners to end. */
				vr_worker_sleep(w, 1000, VR_WAKE_DONE);
				continue;
			}
			unsigned wait = vr_worker_backoff_ms(attempt, &seed);
			if (register_server(w, client, &answer, wait)) {
				attempt = 0;
			} else {
				vr_log_set_request_id(NULL);
				vr_worker_sleep(w, wait, VR_WAKE_DONE);
				if (attempt < 16)
					attempt++;
				continue;
			}
			vr_log_set_request_id(NULL);
		}
		if (vr_worker_sleep(w, c->heartbeat_interval * 1000, VR_WAKE_DONE))
			break;
		char id[VR_UUID_LEN + 1];
		if (!registration_needed(w) && vr_worker_server_id(w, id, false))
			heartbeat(w, client, &answer, id, &reported);
		vr_log_set_request_id(NULL);
	}
	char id[VR_UUID_LEN + 1];
	if (vr_worker_server_id(w, id, false))
		leave(w, &answer, id);
	vr_log_set_request_id(NULL);
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
	return NULL;
}

static void worker_free(struct vr_worker *w)
{
	if (!w)
		return;
	explicit_bzero(w->token, sizeof w->token);
	vr_receiver_free(w->receiver);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->runners);
	free(w);
}

/* End every thread that was started; used by stop and by a failed start. */
static void shut_down(struct vr_worker *w)
{
	/* No new transfers; those in flight get the same time as the jobs. */
	struct timespec deadline = deadline_in(w->config->shutdown_timeout * 1000);
	vr_receiver_quiesce(w->receiver);
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stopping, true);
	pthread_cond_broadcast(&w->wake);
	bool timed_out = false;
	while (w->runners_live > 0 && !timed_out)
		timed_out = pthread_cond_timedwait(&w->wake, &w->lock, &deadline) == ETIMEDOUT;
	if (w->runners_live > 0) {
		char running[16], timeout[16];
		snprintf(running, sizeof running, "%u", w->runners_live);
		snprintf(timeout, sizeof timeout, "%u", w->config->shutdown_timeout);
		vr_log_warn("shutdown_timeout", "runners_busy", running, "timeout_s", timeout,
			    "action",
			    "giving up the running jobs; they stay pending for another "
			    "worker");
		atomic_store(&w->aborting, true);
		pthread_cond_broadcast(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nrunners; i++)
		if (w->runners[i].started)
			pthread_join(w->runners[i].thread, NULL);
	/* The transfers record their instances through the API: the control
	 * thread keeps the registration until they are done. */
	vr_receiver_stop(w->receiver, &deadline);
	pthread_mutex_lock(&w->lock);
	w->runners_done = true;
	atomic_store(&w->leaving, true);
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (w->control_started)
		pthread_join(w->control, NULL);
}

int vr_worker_start(struct vr_worker **out, const struct vr_worker_config *config, char **error_out)
{
	*out = NULL;
	if (vr_worker_config_check(config, error_out))
		return VR_ECONFIG;
	struct vr_worker *w = vr_calloc(1, sizeof *w);
	w->config = config;
	bool loose = false;
	int rc = vr_worker_token_read(w->token, config->token_file, &loose, error_out);
	if (rc) {
		free(w);
		return VR_ECONFIG;
	}
	if (loose)
		vr_log_warn("token_file_readable", "path", config->token_file, "hint",
			    "the token file should be readable by its owner only (chmod 600)");
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&w->stopping, false);
	atomic_init(&w->aborting, false);
	atomic_init(&w->leaving, false);

	w->nrunners = config->concurrency;
	w->runners = vr_calloc(w->nrunners, sizeof *w->runners);
	unsigned base_seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
	for (unsigned i = 0; i < w->nrunners; i++) {
		struct vr_worker_runner *r = &w->runners[i];
		r->worker = w;
		r->index = i + 1;
		r->seed = base_seed + 7919u * (i + 1);
		snprintf(r->consumer, sizeof r->consumer, "%s/%u", config->name, i + 1);
	}
	char concurrency[16];
	snprintf(concurrency, sizeof concurrency, "%u", config->concurrency);
	vr_log_info("started", "name", config->name, "api_url", config->api_url, "redis",
		    config->redis_uri, "jobs_prefix", config->jobs_prefix, "concurrency",
		    concurrency, "version", PACKAGE_VERSION);
	/* The replication port first: the control thread reads its counts. */
	rc = vr_receiver_start(&w->receiver, w, error_out);
	if (rc) {
		worker_free(w);
		return rc;
	}
	int err = pthread_create(&w->control, NULL, control_main, w);
	w->control_started = err == 0;
	for (unsigned i = 0; i < w->nrunners && !err; i++) {
		pthread_mutex_lock(&w->lock);
		w->runners_live++;
		pthread_mutex_unlock(&w->lock);
		err = pthread_create(&w->runners[i].thread, NULL, vr_worker_runner_main,
				     &w->runners[i]);
		w->runners[i].started = err == 0;
		if (err) {
			pthread_mutex_lock(&w->lock);
			w->runners_live--;
			pthread_mutex_unlock(&w->lock);
		}
	}
	if (err) {
		if (error_out)
			*error_out = vr_asprintf("cannot start a thread: %s", strerror(err));
		shut_down(w);
		worker_free(w);
		return VR_EIO;
	}
	*out = w;
	return 0;
}

void vr_worker_stop(struct vr_worker *w)
{
	if (!w)
		return;
	shut_down(w);
	worker_free(w);
}
