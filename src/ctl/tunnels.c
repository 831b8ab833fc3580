/* vrcloudctl tunnels: the sites connected to the proxies, read from the
 * Redis registry (docs/tunnels.md, section 2) and named from the peers in
 * the database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "vrcloud/alloc.h"
#include "vrcloud/commands.h"
#include "vrcloud/config.h"
#include "vrcloud/err.h"
#include "vrcloud/redis.h"

static const char tunnels_help[] =
	"Usage: vrcloudctl tunnels [--redis URI] [--prefix PREFIX]\n"
	"\n"
	"List the sites whose agents hold a control connection: the peer, its site\n"
	"and organization, the proxy holding the connection (and its own address),\n"
	"since when, and the last heartbeat (UTC). Sites are read from the proxies'\n"
	"registry in Redis, their names from the database.\n"
	"\n"
	"Options:\n"
	"  --redis URI      Redis of the proxies (default: $VRCLOUD_REDIS, else the\n"
	"                   [redis] uri of the --config file, else\n"
	"                   redis://127.0.0.1:6379/0)\n"
	"  --prefix PREFIX  key prefix (default: the config file's [jobs] prefix, else\n"
	"                   vrcloud)\n"
	"  -h, --help       show this help\n";

static void format_time(char *out, size_t size, long long t)
{
	struct tm tm;
	time_t when = (time_t)t;
	if (t <= 0 || !gmtime_r(&when, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "-");
}

/* The Redis URI and prefix: options, environment, config file, defaults. */
static int settings(char **uri_out, char **prefix_out, const struct vr_ctl *ctl, const char *uri,
		    const char *prefix)
{
	const char *env = getenv("VRCLOUD_REDIS");
	struct vr_config config;
	vr_config_init(&config);
	if (ctl->config_path && (!uri || !prefix)) {
		char *error = NULL;
		if (vr_config_load(&config, ctl->config_path, &error) != 0) {
			vr_ctl_error("%s", error ? error : ctl->config_path);
			free(error);
			vr_config_free(&config);
			return VR_ECONFIG;
		}
	}
	if (!uri)
		uri = env && env[0]		      ? env
		      : ctl->config_path && config.redis_uri ? config.redis_uri
							     : "redis://127.0.0.1:6379/0";
	if (!prefix)
		prefix = ctl->config_path && config.jobs_prefix ? config.jobs_prefix : "vrcloud";
	*uri_out = vr_strdup(uri);
	*prefix_out = vr_strdup(prefix);
	vr_config_free(&config);
	return 0;
}

/* Name the sites from the database: site name and organization per peer. */
static int print_sites(struct vr_ctl *ctl, const struct vr_tunnel_site *sites, size_t n)
{
	enum { NCOLS = 7 };
	const char **cells = vr_calloc((n + 1) * NCOLS, sizeof *cells);
	char (*times)[2][32] = vr_calloc(n ? n : 1, sizeof *times);
	PGresult **rows = vr_calloc(n ? n : 1, sizeof *rows);
	static const char *const headers[NCOLS] = {"PEER",  "SITE",  "ORG",      "PROXY",
						   "ADDRESS", "SINCE", "HEARTBEAT"};
	memcpy(cells, headers, sizeof headers);
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		const char *params[] = {sites[i].peer};
		err = vr_ctl_db_exec(&rows[i], ctl,
				     "SELECT p.site_name, o.name FROM peers p"
				     " JOIN orgs o ON o.id = p.org_id WHERE p.id = $1::uuid",
				     1, params);
		const char **row = cells + (i + 1) * NCOLS;
		bool known = !err && PQntuples(rows[i]) == 1;
		row[0] = sites[i].peer;
		row[1] = known ? PQgetvalue(rows[i], 0, 0) : "(unknown peer)";
		row[2] = known ? PQgetvalue(rows[i], 0, 1) : "-";
		row[3] = sites[i].proxy;
		row[4] = sites[i].address;
		format_time(times[i][0], sizeof times[i][0], sites[i].since);
		format_time(times[i][1], sizeof times[i][1], sites[i].heartbeat);
		row[5] = times[i][0];
		row[6] = times[i][1];
	}
	if (!err)
		vr_ctl_print_table(stdout, NCOLS, n, cells);
	for (size_t i = 0; i < n; i++)
		PQclear(rows[i]);
	free(rows);
	free(times);
	free(cells);
	return err;
}

int vr_ctl_cmd_tunnels(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *uri_opt = NULL, *prefix_opt = NULL;
	const struct vr_ctl_opt opts[] = {
		{"redis", true, &uri_opt}, {"prefix", true, &prefix_opt}, {NULL, false, NULL}};
	int rc = vr_ctl_parse_args(NULL, NULL, "tunnels", tunnels_help, 0, 0, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	char *uri = NULL, *prefix = NULL;
	int err = settings(&uri, &prefix, ctl, uri_opt, prefix_opt);
	if (err)
		return vr_ctl_exit_status(err);
	struct vr_redis *redis = NULL;
	struct vr_tunnel_site *sites = NULL;
	size_t n = 0;
	err = vr_redis_open(&redis, uri);
	if (err)
		vr_ctl_error("cannot reach Redis at %s (pass --redis URI)", uri);
	else if ((err = vr_tunnel_sites_read(redis, prefix, &sites, &n)) != 0)
		vr_ctl_error("cannot read the registry from Redis at %s", uri);
	vr_redis_close(redis);
	if (!err)
		err = vr_ctl_db_open(ctl);
	if (!err)
		err = print_sites(ctl, sites, n);
	free(sites);
	free(uri);
	free(prefix);
	if (err == VR_EUNAVAIL || err == VR_EINVAL)
		return VR_CTL_EXIT_CONFIG;
	return err ? vr_ctl_exit_status(err) : VR_CTL_EXIT_OK;
}
