/* A runner thread: it reads deliveries from the job stream with its own
 * Redis connection, queue handle and HTTP client, and takes each through
 * the internal API (docs/pipeline.md, docs/worker.md):
 *   start -> run the action (progress) -> complete -> acknowledge.
 * An entry is acknowledged only once the API has recorded the job's end
 * (or answered that there is nothing to do); anything else leaves it
 * pending, for this worker's retry or another worker's claim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vrcloud/err.h"
#include "vrcloud/jobq.h"
#include "vrcloud/log.h"
#include "vrcloud/redis.h"
#include "worker/internal.h"

/* Dead letters taken per read. */
#define DEAD_MAX 4

enum delivery_end {
	DELIVERY_DONE,	  /* acknowledged, or dropped as the API said */
	DELIVERY_LEFT,	  /* left pending: back off before reading again */
	DELIVERY_STOPPED, /* the worker stops: left pending for another worker */
};

struct runner {
	struct vr_worker_runner *self;
	struct vr_worker *w;
	struct vr_worker_client *client;
	struct vr_redis *redis;
	struct vr_jobq *q;
	struct vr_worker_answer answer;
	char server_id[VR_UUID_LEN + 1];
	const struct vr_jobq_delivery *delivery; /* the one being run */
	unsigned attempt;			 /* backoff step of the read loop */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *num(char buf[24], long long value)
{
	snprintf(buf, 24, "%lld", value);
	return buf;
}

/* The answer's status, or NULL when none came. */
static const char *answer_status(const struct vr_worker_answer *a, char buf[24])
{
	return a->status ? num(buf, a->status) : NULL;
}

static const char *answer_minor(const struct vr_worker_answer *a)
{
	return a->minor[0] ? a->minor : NULL;
}

static const char *answer_error(const struct vr_worker_answer *a)
{
	return a->status ? NULL : a->error;
}

static unsigned backoff(struct runner *x, unsigned attempt)
{
	return vr_worker_backoff_ms(attempt, &x->self->seed);
}

static void ack(struct runner *x, const struct vr_jobq_delivery *d)
{
	int rc = vr_jobq_ack(x->q, d->entry_id);
	if (rc)
		vr_log_warn("job_ack_failed", "job", d->job_id, "entry", d->entry_id, "error",
			    vr_err_str(rc), "effect",
			    "the entry stays pending; its next delivery is answered JOB_FINISHED "
			    "and acknowledged then");
}

static int report_progress(struct vr_job_run *run, int progress, const char *message)
{
	struct runner *x = run->report_arg;
	const struct vr_jobq_delivery *d = x->delivery;
	char path[128], pct[24], status[24];
	if (atomic_load(&x->w->aborting))
		return VR_JOB_ABORTED;
	/* [worker] phase_delay: each phase lasts at least that long, so that
	 * a test can stop a worker in the middle of a job. */
	if (x->w->config->phase_delay &&
	    vr_worker_sleep(x->w, x->w->config->phase_delay, VR_WAKE_ABORT))
		return VR_JOB_ABORTED;
	/* Keep the entry from being claimed while the job is alive here. */
	int rc = vr_jobq_touch(x->q, d->entry_id);
	if (rc == VR_ENOTFOUND)
		vr_log_warn("job_entry_not_owned", "job", d->job_id, "entry", d->entry_id, "effect",
			    "the API decides whether this server still runs the job");
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_worker_doc_job_progress(&body, x->server_id, progress, message)) {
		vr_buf_free(&body);
		return 0;
	}
	snprintf(path, sizeof path, "/api/internal/jobs/%s/progress", d->job_id);
	enum vr_worker_answer_kind kind =
		vr_worker_client_call(x->client, "POST", path, &body, &x->answer);
	vr_buf_free(&body);
	switch (kind) {
	case VR_ANSWER_OK:
		vr_log_debug("job_progress", "job", d->job_id, "progress", num(pct, progress),
			     "message", message);
		return 0;
	case VR_ANSWER_CONFLICT:
		if (strcmp(x->answer.minor, "JOB_CANCEL_REQUESTED") == 0) {
			vr_log_info("job_cancel_requested", "job", d->job_id, "progress",
				    num(pct, progress));
			return VR_JOB_CANCELED;
		}
		if (strcmp(x->answer.minor, "JOB_NOT_RUNNING") == 0)
			return VR_JOB_LOST;
		break;
	case VR_ANSWER_NOT_FOUND: return VR_JOB_LOST;
	case VR_ANSWER_ABORTED: return VR_JOB_ABORTED;
	case VR_ANSWER_REFUSED:
	case VR_ANSWER_UNAVAILABLE: break;
	}
	/* Progress is advisory: the job goes on, and its completion is what
	 * must reach the API. */
	vr_log_warn("job_progress_not_reported", "job", d->job_id, "progress", num(pct, progress),
		    "status", answer_status(&x->answer, status), "minor", answer_minor(&x->answer),
		    "error", answer_error(&x->answer));
	return 0;
}

/* Send the JobResult until the API records it (or the worker gives up at
 * the shutdown timeout). */
static enum delivery_end complete(struct runner *x, const struct vr_jobq_delivery *d,
				  const struct vr_worker_job *job,
				  const struct vr_worker_result *result)
{
	char path[128], status[24], retry[24];
	const char *outcome = vr_worker_outcome_token(result->outcome);
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_worker_doc_job_result(&body, x->server_id, result)) {
		vr_buf_free(&body);
		vr_log_error("job_complete_failed", "job", d->job_id, "reason",
			     "cannot write the JobResult document");
		return DELIVERY_LEFT;
	}
	snprintf(path, sizeof path, "/api/internal/jobs/%s/complete", d->job_id);
	enum delivery_end end = DELIVERY_LEFT;
	for (unsigned attempt = 0;; attempt++) {
		enum vr_worker_answer_kind kind =
			vr_worker_client_call(x->client, "POST", path, &body, &x->answer);
		if (kind == VR_ANSWER_OK) {
			vr_log_info("job_completed", "job", d->job_id, "action", job->action,
				    "outcome", outcome, "vendor_code", result->vendor);
			ack(x, d);
			end = DELIVERY_DONE;
			break;
		}
		if (kind == VR_ANSWER_NOT_FOUND) {
			vr_log_warn("job_unknown", "job", d->job_id, "call", "complete", "action",
				    "acknowledged and dropped");
			ack(x, d);
			end = DELIVERY_DONE;
			break;
		}
		if (kind == VR_ANSWER_ABORTED) {
			vr_log_warn("job_abandoned", "job", d->job_id, "outcome", outcome, "reason",
				    "shutdown timeout before the API recorded the result; the "
				    "entry stays pending for another worker");
			end = DELIVERY_STOPPED;
			break;
		}
		if (kind != VR_ANSWER_UNAVAILABLE) {
			vr_log_error("job_complete_refused", "job", d->job_id, "status",
				     answer_status(&x->answer, status), "minor",
				     answer_minor(&x->answer), "effect",
				     "left pending; it is delivered again and dead-lettered past "
				     "max_deliveries");
			end = DELIVERY_LEFT;
			break;
		}
		unsigned wait = backoff(x, attempt);
		vr_log_warn("job_complete_failed", "job", d->job_id, "status",
			    answer_status(&x->answer, status), "error", answer_error(&x->answer),
			    "retry_in_ms", num(retry, wait));
		vr_jobq_touch(x->q, d->entry_id);
		if (vr_worker_sleep(x->w, wait, VR_WAKE_ABORT)) {
			vr_log_warn("job_abandoned", "job", d->job_id, "outcome", outcome, "reason",
				    "shutdown timeout before the API recorded the result; "
				    "the entry stays pending for another worker");
			end = DELIVERY_STOPPED;
			break;
		}
	}
	vr_buf_free(&body);
	return end;
}

static enum delivery_end run_job(struct runner *x, const struct vr_jobq_delivery *d,
				 const struct vr_worker_job *job)
{
	char deliveries[24];
	vr_log_info("job_started", "job", job->id, "action", job->action, "task", job->task_id,
		    "lane", job->lane, "deliveries", num(deliveries, d->deliveries), "server",
		    x->server_id);
	struct vr_job_run run;
	memset(&run, 0, sizeof run);
	run.job = job;
	run.server_name = x->w->config->name;
	run.report = report_progress;
	run.report_arg = x;
	run.redis = x->redis;
	run.tunnel_prefix = x->w->config->jobs_prefix;
	run.store_dir = x->w->config->store_dir;
	run.recovered_dir = x->w->config->recovered_dir;
	run.config = x->w->config;
	x->delivery = d;
	struct vr_worker_result result;
	int status = vr_worker_job_execute(&run, &result);
	x->delivery = NULL;
	if (status == VR_JOB_LOST) {
		vr_log_info("job_dropped", "job", d->job_id, "reason",
			    "this server no longer runs the job (JOB_NOT_RUNNING)");
		ack(x, d);
		vr_job_run_clear(&run);
		return DELIVERY_DONE;
	}
	if (status == VR_JOB_ABORTED) {
		vr_log_warn("job_abandoned", "job", d->job_id, "reason",
			    "shutdown timeout; the entry stays pending for another worker");
		vr_job_run_clear(&run);
		return DELIVERY_STOPPED;
	}
	if (status == VR_JOB_FAILED)
		vr_log_warn("job_failed", "job", d->job_id, "action", job->action, "vendor_code",
			    result.vendor, "message", result.message);
	enum delivery_end end = complete(x, d, job, &result);
	vr_job_run_clear(&run);
	return end;
}

/* Take job_id as this runner's job, unless another runner of this worker
 * runs it: a second delivery of a running job (the relay published it
 * again, or another runner claimed its idle entry) would otherwise start
 * it a second time, since the API lets a server start its own job again
 * (how a restarted worker takes its jobs back). */
static bool job_take(struct runner *x, const char *job_id)
{
	struct vr_worker *w = x->w;
	bool taken = true;
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->nrunners && taken; i++)
		if (&w->runners[i] != x->self && strcmp(w->runners[i].job, job_id) == 0)
			taken = false;
	if (taken)
		snprintf(x->self->job, sizeof x->self->job, "%s", job_id);
	pthread_mutex_unlock(&w->lock);
	return taken;
}

static void job_release(struct runner *x)
{
	pthread_mutex_lock(&x->w->lock);
	x->self->job[0] = '\0';
	pthread_mutex_unlock(&x->w->lock);
}

/* Start a delivered job through the API and run it. The start is retried
 * in place while the API is unavailable, for at most claim_idle: after
 * that the entry is left to whichever worker claims it. */
static enum delivery_end start_and_run(struct runner *x, const struct vr_jobq_delivery *d)
{
	const struct vr_worker_config *c = x->w->config;
	char path[128], status[24], retry[24];
	snprintf(path, sizeof path, "/api/internal/jobs/%s/start", d->job_id);
	long long give_up_at = now_ms() + c->claim_idle;
	for (unsigned attempt = 0;; attempt++) {
		if (atomic_load(&x->w->stopping))
			return DELIVERY_STOPPED;
		struct vr_buf body;
		vr_buf_init(&body, 0);
		if (vr_worker_doc_job_start(&body, x->server_id, d->deliveries)) {
			vr_buf_free(&body);
			return DELIVERY_LEFT;
		}
		enum vr_worker_answer_kind kind =
			vr_worker_client_call(x->client, "POST", path, &body, &x->answer);
		vr_buf_free(&body);
		switch (kind) {
		case VR_ANSWER_OK: {
			struct vr_worker_job job;
			const char *reason = NULL;
			if (vr_worker_parse_job(&job, x->answer.body.data, x->answer.body.len,
						&reason) != 0 ||
			    strcmp(job.id, d->job_id) != 0) {
				vr_log_error("job_start_unreadable", "job", d->job_id, "reason",
					     reason ? reason : "the answer is about another job");
				vr_worker_job_clear(&job);
				return DELIVERY_LEFT;
			}
			enum delivery_end end = run_job(x, d, &job);
			vr_worker_job_clear(&job);
			return end;
		}
		case VR_ANSWER_CONFLICT:
			if (strcmp(x->answer.minor, "JOB_FINISHED") == 0 ||
			    strcmp(x->answer.minor, "JOB_NOT_HEAD") == 0 ||
			    strcmp(x->answer.minor, "JOB_RUNNING") == 0) {
				vr_log_info("job_dropped", "job", d->job_id, "reason",
					    x->answer.minor);
				ack(x, d);
				return DELIVERY_DONE;
			}
			vr_log_warn("job_start_conflict", "job", d->job_id, "minor",
				    answer_minor(&x->answer), "effect", "left pending");
			return DELIVERY_LEFT;
		case VR_ANSWER_NOT_FOUND:
			vr_log_warn("job_unknown", "job", d->job_id, "call", "start", "action",
				    "acknowledged and dropped");
			ack(x, d);
			return DELIVERY_DONE;
		case VR_ANSWER_REFUSED:
			vr_log_error("job_start_refused", "job", d->job_id, "status",
				     answer_status(&x->answer, status), "minor",
				     answer_minor(&x->answer), "effect", "left pending");
			/* 403: the API does not take ServerId as this credential's
			 * server (it was removed): register again. */
			if (x->answer.status == 403)
				vr_worker_reregister(x->w, x->server_id);
			return DELIVERY_LEFT;
		case VR_ANSWER_ABORTED:
			vr_log_warn("job_left", "job", d->job_id, "reason",
				    "shutdown timeout before the API answered start; the entry "
				    "stays pending for another worker");
			return DELIVERY_STOPPED;
		case VR_ANSWER_UNAVAILABLE: break;
		}
		unsigned wait = backoff(x, attempt);
		if (now_ms() + wait > give_up_at) {
			vr_log_warn("job_start_failed", "job", d->job_id, "status",
				    answer_status(&x->answer, status), "error",
				    answer_error(&x->answer), "effect",
				    "left pending for a later delivery");
			return DELIVERY_LEFT;
		}
		vr_log_warn("job_start_failed", "job", d->job_id, "status",
			    answer_status(&x->answer, status), "error", answer_error(&x->answer),
			    "retry_in_ms", num(retry, wait));
		if (vr_worker_sleep(x->w, wait, VR_WAKE_STOP))
			return DELIVERY_STOPPED;
	}
}

static enum delivery_end handle_delivery(struct runner *x, const struct vr_jobq_delivery *d)
{
	if (!job_take(x, d->job_id)) {
		vr_log_info("job_dropped", "job", d->job_id, "entry", d->entry_id, "reason",
			    "another runner of this worker runs it");
		ack(x, d);
		return DELIVERY_DONE;
	}
	enum delivery_end end = start_and_run(x, d);
	job_release(x);
	return end;
}

/* Fail the Task of a job delivered too often. The entry is already
 * acknowledged and in the dead-letter stream. */
static void report_dead(struct runner *x, const struct vr_jobq_delivery *d)
{
	const struct vr_worker_config *c = x->w->config;
	char path[128], message[256], status[24], retry[24], count[24];
	snprintf(path, sizeof path, "/api/internal/jobs/%s/dead", d->job_id);
	snprintf(message, sizeof message,
		 "The job was delivered %u times without completing (max_deliveries is %u).",
		 d->deliveries, c->max_deliveries);
	struct vr_worker_result result = {
		.outcome = VR_OUTCOME_ERROR,
		.message = message,
	};
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_worker_doc_job_result(&body, x->server_id, &result)) {
		vr_buf_free(&body);
		return;
	}
	for (unsigned attempt = 0;; attempt++) {
		enum vr_worker_answer_kind kind =
			vr_worker_client_call(x->client, "POST", path, &body, &x->answer);
		if (kind == VR_ANSWER_OK) {
			vr_log_warn("job_dead", "job", d->job_id, "deliveries",
				    num(count, d->deliveries), "effect",
				    "its Task ends in error JobDeliveryExhausted");
			break;
		}
		if (kind == VR_ANSWER_UNAVAILABLE && !atomic_load(&x->w->stopping)) {
			unsigned wait = backoff(x, attempt);
			vr_log_warn("job_dead_not_reported", "job", d->job_id, "status",
				    answer_status(&x->answer, status), "error",
				    answer_error(&x->answer), "retry_in_ms", num(retry, wait));
			if (!vr_worker_sleep(x->w, wait, VR_WAKE_STOP))
				continue;
		}
		vr_log_error("job_dead_not_reported", "job", d->job_id, "status",
			     answer_status(&x->answer, status), "minor", answer_minor(&x->answer),
			     "error", answer_error(&x->answer), "effect",
			     "the API's relay publishes the job again when it finds it stale");
		break;
	}
	vr_buf_free(&body);
}

/* Connect to Redis and make sure the group exists, retrying until it
 * works or the worker stops. */
static bool open_queue(struct runner *x)
{
	const struct vr_worker_config *c = x->w->config;
	char retry[24];
	for (unsigned attempt = 0; !atomic_load(&x->w->stopping); attempt++) {
		int rc = 0;
		if (!x->redis)
			rc = vr_redis_open(&x->redis, c->redis_uri);
		if (!rc && !x->q) {
			struct vr_jobq_config qc = {
				.prefix = c->jobs_prefix,
				.group = VR_WORKER_GROUP,
				.consumer = x->self->consumer,
				.claim_idle_ms = c->claim_idle,
				.max_deliveries = c->max_deliveries,
				.block_ms = c->block,
			};
			rc = vr_jobq_open(&x->q, x->redis, &qc);
			if (rc) {
				vr_log_error("jobq_open_failed", "consumer", x->self->consumer,
					     "error", vr_err_str(rc));
				return false;
			}
		}
		if (!rc)
			rc = vr_jobq_ensure_group(x->q);
		if (!rc)
			return true;
		unsigned wait = backoff(x, attempt);
		vr_log_warn("redis_unavailable", "consumer", x->self->consumer, "error",
			    vr_err_str(rc), "retry_in_ms", num(retry, wait));
		vr_worker_sleep(x->w, wait, VR_WAKE_STOP);
	}
	return false;
}

void *vr_worker_runner_main(void *arg)
{
	struct vr_worker_runner *self = arg;
	struct vr_worker *w = self->worker;
	const struct vr_worker_config *c = w->config;
	struct runner x;
	memset(&x, 0, sizeof x);
	x.self = self;
	x.w = w;
	vr_worker_answer_init(&x.answer);
	struct vr_worker_client_options options = {
		.api_url = c->api_url,
		.token = w->token,
		.connect_timeout_ms = c->connect_timeout * 1000,
		.timeout_ms = c->http_timeout * 1000,
		.abort = &w->aborting,
	};
	if (vr_worker_client_new(&x.client, &options) != 0)
		vr_log_error("runner_failed", "consumer", self->consumer, "reason",
			     "cannot create the HTTP client");
	else if (open_queue(&x))
		vr_log_debug("runner_ready", "consumer", self->consumer);
	char retry[24];
	while (x.client && x.q && !atomic_load(&w->stopping)) {
		if (!vr_worker_server_id(w, x.server_id, true))
			break;
		struct vr_jobq_delivery delivery, dead[DEAD_MAX];
		unsigned ndead = 0;
		int n = vr_jobq_next(x.q, &delivery, 1, dead, DEAD_MAX, &ndead);
		if (n < 0) {
			unsigned wait = backoff(&x, x.attempt);
			vr_log_warn("jobq_read_failed", "consumer", self->consumer, "error",
				    vr_err_str(n), "retry_in_ms", num(retry, wait));
			if (x.attempt < 16)
				x.attempt++;
			vr_worker_sleep(w, wait, VR_WAKE_STOP);
			continue;
		}
		for (unsigned i = 0; i < ndead && i < DEAD_MAX; i++)
			report_dead(&x, &dead[i]);
		vr_log_set_request_id(NULL);
		if (n == 0) {
			x.attempt = 0;
			continue;
		}
		enum delivery_end end = handle_delivery(&x, &delivery);
		vr_log_set_request_id(NULL);
		if (end == DELIVERY_STOPPED)
			break;
		if (end == DELIVERY_DONE) {
			x.attempt = 0;
			continue;
		}
		unsigned wait = backoff(&x, x.attempt);
		if (x.attempt < 16)
			x.attempt++;
		vr_worker_sleep(w, wait, VR_WAKE_STOP);
	}
	vr_jobq_close(x.q);
	vr_redis_close(x.redis);
	vr_worker_client_free(x.client);
	vr_worker_answer_free(&x.answer);
	vr_log_set_request_id(NULL);
	pthread_mutex_lock(&w->lock);
	w->runners_live--;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}
