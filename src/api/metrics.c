/* GET /metrics: Prometheus text format (version 0.0.4), no authentication,
 * like /healthz. The sites connected to the proxies come from the tunnels'
 * Redis registry (docs/tunnels.md), the rest from PostgreSQL. A source that
 * cannot be reached leaves its families out and sets vrcloud_up{source}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/buf.h"
#include "vrcloud/commands.h"
#include "vrcloud/db.h"
#include "vrcloud/redis.h"

struct family {
	const char *statement;
	const char *name;
	const char *label;
	const char *help;
	const char *const *values; /* every value, so that each series exists */
};

static const char *const job_states[] = {"queued", "running", "succeeded", "failed",
					 "canceled", "dead", NULL};
static const char *const task_statuses[] = {"queued", "preRunning", "running", "success",
					    "error",  "canceled",   "aborted", NULL};
static const char *const server_states[] = {"connected", "disconnected", "unregistered", NULL};
static const char *const peer_states[] = {"pairing", "paired", "error", NULL};

static const struct family families[] = {
	{"metrics_jobs", "vrcloud_jobs", "state", "Jobs by state.", job_states},
	{"metrics_tasks", "vrcloud_tasks", "status", "Tasks by status.", task_statuses},
	{"metrics_servers", "vrcloud_replica_servers", "state", "Replica servers by state.",
	 server_states},
	{"metrics_peers", "vrcloud_peers", "state", "Paired sites (peers not revoked) by state.",
	 peer_states},
};

static const char *count_of(PGresult *res, const char *value)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), value) == 0)
			return PQgetvalue(res, i, 1);
	return "0";
}

/* One family; false when the database did not answer. */
static bool family_out(struct vr_buf *out, struct vr_db *db, const struct family *f)
{
	PGresult *res = NULL;
	if (!db || vr_db_exec(db, f->statement, &res, 0, NULL) < 0) {
		PQclear(res);
		return false;
	}
	vr_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", f->name, f->help, f->name);
	for (const char *const *v = f->values; *v; v++)
		vr_buf_printf(out, "%s{%s=\"%s\"} %s\n", f->name, f->label, *v, count_of(res, *v));
	PQclear(res);
	return true;
}

enum MHD_Result vr_api_metrics_get(struct vr_request *req)
{
	const struct vr_config *config = vr_server_config(req->server);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_redis *redis = vr_redis_thread(config->redis_uri);
	struct vr_tunnel_site *sites = NULL;
	size_t nsites = 0;
	bool redis_ok = redis && vr_tunnel_sites_read(redis, config->jobs_prefix, &sites,
						      &nsites) == 0;
	free(sites);
	if (redis_ok)
		vr_buf_printf(&out,
			      "# HELP vrcloud_sites_connected Sites whose agent holds a control "
			      "connection to a proxy.\n"
			      "# TYPE vrcloud_sites_connected gauge\n"
			      "vrcloud_sites_connected %zu\n",
			      nsites);
	struct vr_db *db = vr_request_db(req);
	bool pg_ok = true;
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		pg_ok = family_out(&out, db, &families[i]) && pg_ok;
	vr_buf_printf(&out,
		      "# HELP vrcloud_up Whether this API process reaches the source.\n"
		      "# TYPE vrcloud_up gauge\n"
		      "vrcloud_up{source=\"postgresql\"} %d\n"
		      "vrcloud_up{source=\"redis\"} %d\n",
		      pg_ok ? 1 : 0, redis_ok ? 1 : 0);
	size_t len = 0;
	char *text = vr_buf_take(&out, &len);
	struct MHD_Response *response = text ? MHD_create_response_from_buffer(
						       len, text, MHD_RESPMEM_MUST_FREE)
					     : NULL;
	if (!response) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	return vr_reply_response(req, MHD_HTTP_OK, response);
}
