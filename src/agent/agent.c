/* vrcloud-agent's control connection: one thread keeps one connection to
 * a proxy, beats at the interval the proxy's welcome asks for, logs and
 * acknowledges the commands that come down (a `sync` starts one now, a
 * `configChanged` reads the replications' state again: the scheduler of
 * scheduler.c runs the syncs), and reconnects with jittered
 * exponential backoff, trying the configured addresses in turn. A command
 * seen again (delivery is at least once) is acknowledged again and logged
 * as repeated. A connect frame is followed on a thread of its own: the
 * agent dials the named proxy with the cookie and hands the stream to the
 * handler of the request's purpose ("probe", or "failback": failback.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "vrcloud/agent.h"
#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

/* Command ids remembered to recognise repeats. */
#define RECENT 256
/* Reverse connections followed at once; more connect frames wait for the
 * worker to ask again. */
#define MAX_HANDLERS 4
/* Milliseconds a handler's stream may stay silent. */
#define HANDLER_IDLE_MS 60000u

struct vr_agent {
	const struct vr_agent_config *config;
	struct vr_agent_tls tls;
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	char **addresses;
	size_t naddresses;
	pthread_t thread;
	bool started;
	int wake[2];
	atomic_bool stop;
	char recent[RECENT][VR_TUNNEL_MAX_ID + 1];
	size_t recent_next;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned handlers; /* reverse connections being served */
	struct vr_agent_scheduler *scheduler;
};

struct handler {
	struct vr_agent *agent;
	struct vr_tunnel_connect connect;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool seen(struct vr_agent *agent, const char *id)
{
	for (size_t i = 0; i < RECENT; i++)
		if (strcmp(agent->recent[i], id) == 0)
			return true;
	snprintf(agent->recent[agent->recent_next], sizeof agent->recent[0], "%s", id);
	agent->recent_next = (agent->recent_next + 1) % RECENT;
	return false;
}

/* configChanged: the settings a reconfigure changed (fields rpo, quiesce,
 * compress, retention) into the replication's state; the scheduler reads
 * them again. */
static void config_changed(struct vr_agent *agent, const char *id,
			   const struct vr_tunnel_fields *fields)
{
	struct vr_agent_settings set = {vr_tunnel_field(fields, "rpo"),
					vr_tunnel_field(fields, "quiesce"),
					vr_tunnel_field(fields, "compress"),
					vr_tunnel_field(fields, "retention")};
	if (!set.rpo && !set.quiesce && !set.compress && !set.retention)
		return;
	bool changed = false;
	char *error = NULL;
	int rc = vr_agent_repl_configure(agent->config->state_dir, id, &set, &changed, &error);
	if (rc == VR_ENOTFOUND)
		vr_log_info("config_not_protected_here", "replication", id);
	else if (rc)
		vr_log_warn("config_refused", "replication", id, "error", error);
	else
		vr_log_info(changed ? "config_applied" : "config_unchanged", "replication", id,
			    "rpo", set.rpo, "quiesce", set.quiesce, "compress", set.compress,
			    "retention", set.retention);
	free(error);
}

/* One COMMAND frame: log it and acknowledge it. Returns 0 or VR_EUNAVAIL. */
static int on_command(struct vr_agent *agent, struct vr_agent_conn *conn,
		      const struct vr_tunnel_frame *frame)
{
	struct vr_tunnel_command command;
	const char *reason = NULL;
	if (vr_tunnel_command_parse(&command, frame->payload, frame->len, &reason)) {
		/* Without an id it cannot be acknowledged; the proxy drops such
		 * entries itself, so this is a proxy speaking another version. */
		vr_log_warn("command_malformed", "error", reason);
		return 0;
	}
	bool repeated = seen(agent, command.id);
	/* The replication a command is about, when it names one. */
	struct vr_tunnel_fields fields;
	bool parsed = vr_tunnel_fields_parse(&fields, frame->payload, frame->len, &reason) == 0;
	const char *replication = parsed ? vr_tunnel_field(&fields, "replication") : NULL;
	vr_log_info(repeated ? "command_repeated" : "command", "id", command.id, "name",
		    command.name, "replication", replication);
	char canon[VR_UUID_LEN + 1];
	bool named = replication && vr_uuid_canon(canon, replication) == 0;
	if (!repeated && strcmp(command.name, VR_AGENT_COMMAND_SYNC) == 0) {
		const char *quiesce = parsed ? vr_tunnel_field(&fields, "quiesce") : NULL;
		if (quiesce && strcmp(quiesce, "true") == 0)
			vr_agent_scheduler_sync_quiesced(agent->scheduler, named ? canon : NULL);
		else
			vr_agent_scheduler_sync_now(agent->scheduler, named ? canon : NULL);
	} else if (!repeated && strcmp(command.name, VR_AGENT_COMMAND_CONFIG_CHANGED) == 0) {
		if (named && parsed)
			config_changed(agent, canon, &fields);
		vr_agent_scheduler_reload(agent->scheduler);
	}
	if (parsed)
		vr_tunnel_fields_free(&fields);
	struct vr_buf ack;
	vr_buf_init(&ack, 0);
	vr_tunnel_field_append(&ack, "id", command.id);
	vr_tunnel_field_append(&ack, "status", "received");
	int rc = vr_agent_conn_send(conn, VR_FRAME_ACK, ack.data, ack.len,
				    agent->config->connect_timeout * 1000u);
	vr_buf_free(&ack);
	return rc;
}

static void handler_done(struct vr_agent *agent)
{
	pthread_mutex_lock(&agent->lock);
	agent->handlers--;
	pthread_cond_broadcast(&agent->idle);
	pthread_mutex_unlock(&agent->lock);
}

/* Serve one probe: dial, read to the end, answer. */
static void *probe_main(void *arg)
{
	struct handler *h = arg;
	struct vr_agent *agent = h->agent;
	const struct vr_tunnel_connect *c = &h->connect;
	struct vr_agent_conn *conn = NULL;
	char *error = NULL;
	int rc = vr_agent_reverse_open(&conn, &agent->tls, agent->config, agent->credential,
				       c->address, c->cookie, &error);
	if (rc) {
		vr_log_warn("reverse_failed", "purpose", c->purpose, "address", c->address, "error",
			    error);
	} else {
		vr_agent_conn_set_timeout(conn, HANDLER_IDLE_MS);
		uint64_t bytes = 0;
		char hex[VR_AGENT_PROBE_HEX + 1];
		char count[24];
		rc = vr_agent_probe_serve(conn, &bytes, hex);
		snprintf(count, sizeof count, "%llu", (unsigned long long)bytes);
		if (rc)
			vr_log_warn("probe_failed", "address", c->address, "bytes", count, "error",
				    "the stream broke before its end");
		else
			vr_log_info("probe_served", "address", c->address, "bytes", count, "sha256",
				    hex);
		vr_agent_conn_close(conn);
	}
	free(error);
	explicit_bzero(h->connect.cookie, sizeof h->connect.cookie);
	free(h);
	handler_done(agent);
	return NULL;
}

/* Serve one failback: dial, compare, stage, apply, answer (failback.c). */
static void *failback_main(void *arg)
{
	struct handler *h = arg;
	struct vr_agent *agent = h->agent;
	const struct vr_tunnel_connect *c = &h->connect;
	struct vr_agent_conn *conn = NULL;
	char *error = NULL;
	int rc = vr_agent_reverse_open(&conn, &agent->tls, agent->config, agent->credential,
				       c->address, c->cookie, &error);
	if (rc) {
		vr_log_warn("reverse_failed", "purpose", c->purpose, "address", c->address, "error",
			    error);
	} else {
		vr_agent_conn_set_timeout(conn, HANDLER_IDLE_MS);
		struct vr_agent_failback_stats stats;
		free(error);
		error = NULL;
		rc = vr_agent_failback_serve(conn, agent->config->state_dir, &stats, &error);
		char groups[24], blocks[24], bytes[24];
		snprintf(groups, sizeof groups, "%llu", (unsigned long long)stats.groups);
		snprintf(blocks, sizeof blocks, "%llu", (unsigned long long)stats.blocks);
		snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)stats.bytes);
		if (rc)
			vr_log_warn("failback_failed", "replication", stats.failback, "source",
				    stats.source, "vmdir", stats.vmdir, "error", error);
		else
			vr_log_info("failback_applied", "replication", stats.failback, "source",
				    stats.source, "vmdir", stats.vmdir, "groups", groups, "blocks",
				    blocks, "bytes", bytes);
		vr_agent_conn_close(conn);
	}
	free(error);
	explicit_bzero(h->connect.cookie, sizeof h->connect.cookie);
	free(h);
	handler_done(agent);
	return NULL;
}

/* A CONNECT frame: a worker asks for a reverse connection. The handler of
 * its purpose runs on a thread of its own, so the control connection
 * beats on meanwhile. A purpose without a handler here is logged; the
 * worker's request times out at the proxy. */
static void on_connect(struct vr_agent *agent, const struct vr_tunnel_frame *frame)
{
	struct handler *h = vr_calloc(1, sizeof *h);
	h->agent = agent;
	const char *reason = NULL;
	if (vr_tunnel_connect_parse(&h->connect, frame->payload, frame->len, false, &reason)) {
		vr_log_warn("connect_malformed", "error", reason);
		free(h);
		return;
	}
	const struct vr_tunnel_connect *c = &h->connect;
	const char *refusal = NULL;
	void *(*handler_main)(void *) = NULL;
	if (strcmp(c->purpose, VR_TUNNEL_PURPOSE_PROBE) == 0)
		handler_main = probe_main;
	else if (strcmp(c->purpose, VR_TUNNEL_PURPOSE_FAILBACK) == 0)
		handler_main = failback_main;
	else
		refusal = "this agent has no handler for the purpose";
	pthread_mutex_lock(&agent->lock);
	if (!refusal && agent->handlers >= MAX_HANDLERS)
		refusal = "too many reverse connections at once";
	if (!refusal)
		agent->handlers++;
	pthread_mutex_unlock(&agent->lock);
	pthread_t thread;
	if (!refusal && pthread_create(&thread, NULL, handler_main, h) != 0) {
		handler_done(agent);
		refusal = "a thread could not be started";
	}
	if (refusal) {
		vr_log_warn("reverse_not_taken", "purpose", c->purpose, "replication",
			    c->replication[0] ? c->replication : NULL, "address", c->address,
			    "reason", refusal);
		explicit_bzero(h->connect.cookie, sizeof h->connect.cookie);
		free(h);
		return;
	}
	vr_log_info("reverse_taken", "purpose", c->purpose, "address", c->address);
	pthread_detach(thread);
}

/* Run one established control connection until it ends or stop is set. */
static void session(struct vr_agent *agent, struct vr_agent_conn *conn, unsigned heartbeat_s)
{
	int64_t interval = (int64_t)heartbeat_s * 1000;
	int64_t next_beat = now_ms() + interval, last_heard = now_ms();
	unsigned long long seq = 0;
	const char *why = NULL;
	while (!atomic_load(&agent->stop)) {
		int64_t now = now_ms();
		if (now - last_heard > 3 * interval) {
			why = "the proxy went silent";
			break;
		}
		if (now >= next_beat) {
			char payload[48];
			int len = snprintf(payload, sizeof payload, "seq=%llu\n", ++seq);
			if (vr_agent_conn_send(conn, VR_FRAME_HEARTBEAT, payload, (size_t)len,
					       agent->config->connect_timeout * 1000u)) {
				why = "a heartbeat could not be sent";
				break;
			}
			next_beat = now + interval;
		}
		struct vr_tunnel_frame frame;
		int64_t wait = next_beat - now_ms();
		if (vr_agent_conn_recv(conn, &frame, wait > 0 ? (int)wait : 0, agent->wake[0])) {
			why = "the connection was lost";
			break;
		}
		if (frame.type == 0)
			continue;
		last_heard = now_ms();
		if (frame.type == VR_FRAME_HEARTBEAT)
			continue;
		if (frame.type == VR_FRAME_COMMAND) {
			if (on_command(agent, conn, &frame)) {
				why = "an ack could not be sent";
				break;
			}
			continue;
		}
		if (frame.type == VR_FRAME_CONNECT) {
			on_connect(agent, &frame);
			continue;
		}
		if (frame.type == VR_FRAME_REFUSE) {
			why = "the proxy ended the connection";
			break;
		}
		why = "the proxy sent a frame a control connection does not take";
		break;
	}
	vr_log_info("disconnected", "reason", atomic_load(&agent->stop) ? "stopping" : why);
}

static uint32_t random32(void)
{
	uint32_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
		r = (uint32_t)now_ms();
	return r;
}

/* Wait ms or until stop; true when stopping. */
static bool pause_ms(struct vr_agent *agent, unsigned ms)
{
	int64_t deadline = now_ms() + ms;
	while (!atomic_load(&agent->stop)) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {agent->wake[0], POLLIN, 0};
		if (poll(&p, 1, left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR)
			break;
	}
	return true;
}

static void *control_main(void *arg)
{
	struct vr_agent *agent = arg;
	const struct vr_agent_config *config = agent->config;
	struct vr_tunnel_hello hello;
	memset(&hello, 0, sizeof hello);
	hello.version = VR_TUNNEL_VERSION;
	hello.kind = VR_TUNNEL_CONTROL;
	memcpy(hello.credential, agent->credential, sizeof hello.credential);
	snprintf(hello.agent, sizeof hello.agent, "%s", config->name);
	unsigned attempt = 0;
	size_t next = 0;
	while (!atomic_load(&agent->stop)) {
		const char *address = agent->addresses[next++ % agent->naddresses];
		struct vr_agent_conn *conn = NULL;
		struct vr_tunnel_fields welcome;
		char *error = NULL;
		int rc = vr_agent_conn_open(&conn, &welcome, &agent->tls, address, &hello,
					    config->connect_timeout * 1000u, &error);
		if (rc == 0) {
			attempt = 0;
			const char *beat = vr_tunnel_field(&welcome, "heartbeat");
			unsigned heartbeat = config->heartbeat_default;
			if (beat) {
				char *end;
				unsigned long v = strtoul(beat, &end, 10);
				if (!*end && v >= 1 && v <= 3600)
					heartbeat = (unsigned)v;
			}
			char beat_text[16];
			snprintf(beat_text, sizeof beat_text, "%u", heartbeat);
			vr_log_info("connected", "address", address, "proxy",
				    vr_tunnel_field(&welcome, "proxy"), "peer",
				    vr_tunnel_field(&welcome, "peer"), "site",
				    vr_tunnel_field(&welcome, "site"), "heartbeat", beat_text);
			vr_tunnel_fields_free(&welcome);
			session(agent, conn, heartbeat);
			vr_agent_conn_close(conn);
		} else if (rc == VR_EAUTH) {
			vr_log_error("certificate_rejected", "address", address, "error", error);
		} else if (rc == VR_EFORBIDDEN || rc == VR_ECONFLICT) {
			vr_log_error("refused", "address", address, "error", error);
		} else {
			vr_log_warn("connect_failed", "address", address, "error", error);
		}
		free(error);
		if (atomic_load(&agent->stop))
			break;
		unsigned wait = vr_agent_backoff_ms(attempt++, config->backoff_initial,
						    config->backoff_max * 1000u, random32());
		char wait_text[16];
		snprintf(wait_text, sizeof wait_text, "%u", wait);
		vr_log_debug("reconnect_wait", "ms", wait_text);
		if (pause_ms(agent, wait))
			break;
	}
	vr_tunnel_hello_clear(&hello);
	return NULL;
}

static void split_addresses(struct vr_agent *agent, const char *list)
{
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		agent->addresses = vr_realloc(agent->addresses,
					      (agent->naddresses + 1) * sizeof *agent->addresses);
		agent->addresses[agent->naddresses++] = vr_strndup(p, len);
		p += len;
		if (*p == ',')
			p++;
	}
}

static void agent_free(struct vr_agent *agent)
{
	for (size_t i = 0; i < agent->naddresses; i++)
		free(agent->addresses[i]);
	free(agent->addresses);
	vr_agent_tls_free(&agent->tls);
	if (agent->wake[0] >= 0)
		close(agent->wake[0]);
	if (agent->wake[1] >= 0)
		close(agent->wake[1]);
	explicit_bzero(agent->credential, sizeof agent->credential);
	pthread_cond_destroy(&agent->idle);
	pthread_mutex_destroy(&agent->lock);
	free(agent);
}

int vr_agent_start(struct vr_agent **out, const struct vr_agent_config *config, char **error_out)
{
	*out = NULL;
	*error_out = NULL;
	struct vr_agent *agent = vr_calloc(1, sizeof *agent);
	agent->config = config;
	agent->wake[0] = agent->wake[1] = -1;
	atomic_init(&agent->stop, false);
	pthread_mutex_init(&agent->lock, NULL);
	pthread_cond_init(&agent->idle, NULL);
	int rc = vr_agent_credential_read(agent->credential, config->credential_file, error_out);
	if (rc) {
		agent_free(agent);
		return VR_ECONFIG;
	}
	rc = vr_agent_tls_init(&agent->tls, config, error_out);
	if (rc) {
		agent_free(agent);
		return rc == VR_ENOMEM ? rc : VR_ECONFIG;
	}
	split_addresses(agent, config->proxy);
	if (pipe2(agent->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		*error_out = vr_asprintf("pipe: %s", strerror(errno));
		agent_free(agent);
		return VR_EIO;
	}
	rc = vr_agent_scheduler_start(&agent->scheduler, config, &agent->tls, agent->credential,
				      error_out);
	if (rc) {
		agent_free(agent);
		return rc;
	}
	if (pthread_create(&agent->thread, NULL, control_main, agent) != 0) {
		vr_agent_scheduler_stop(agent->scheduler);
		*error_out = vr_strdup("the control thread could not be started");
		agent_free(agent);
		return VR_EIO;
	}
	agent->started = true;
	*out = agent;
	return 0;
}

void vr_agent_stop(struct vr_agent *agent)
{
	if (!agent)
		return;
	atomic_store(&agent->stop, true);
	char byte = 1;
	if (write(agent->wake[1], &byte, 1) < 0)
		vr_log_warn("agent_wake_failed", "error", strerror(errno));
	if (agent->started)
		pthread_join(agent->thread, NULL);
	vr_agent_scheduler_stop(agent->scheduler);
	/* Reverse connections being served end on their own (their stream
	 * ends, breaks or stays silent HANDLER_IDLE_MS). */
	pthread_mutex_lock(&agent->lock);
	while (agent->handlers)
		pthread_cond_wait(&agent->idle, &agent->lock);
	pthread_mutex_unlock(&agent->lock);
	agent_free(agent);
}
