#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/alloc.h"
#include "vrcloud/config.h"
#include "vrcloud/err.h"
#include "vrcloud/ini.h"

void vr_config_init(struct vr_config *config)
{
	memset(config, 0, sizeof *config);
	config->listen = vr_strdup("127.0.0.1");
	config->port = 8080;
	config->threads = 2;
	config->max_connections = 1024;
	config->database_uri = vr_strdup("postgresql:///vrcloud");
	config->redis_uri = vr_strdup("redis://127.0.0.1:6379/0");
	config->jobs_prefix = vr_strdup("vrcloud");
	config->jobs_republish_after = 10;
	config->jobs_stale_after = 60;
	config->session_idle_timeout = 1800;
	config->session_absolute_timeout = 86400;
	config->login_window = 900;
	config->login_max_failures_user = 5;
	config->login_max_failures_addr = 30;
	config->log_level = VR_LOG_INFO;
	config->max_body_bytes = 1024 * 1024;
	config->max_url_bytes = 8192;
	config->max_header_bytes = 32768;
}

void vr_config_free(struct vr_config *config)
{
	if (!config)
		return;
	free(config->listen);
	free(config->public_url);
	free(config->pid_file);
	free(config->port_file);
	free(config->schema);
	free(config->database_uri);
	free(config->redis_uri);
	free(config->jobs_prefix);
	free(config->log_file);
	memset(config, 0, sizeof *config);
}

#define S(sec, k, field) VR_INI_STRING_KEY(struct vr_config, sec, k, field)
#define U(sec, k, field, lo, hi) VR_INI_UINT_KEY(struct vr_config, sec, k, field, lo, hi)

static const struct vr_ini_key keys[] = {
	S("api", "listen", listen),
	U("api", "port", port, 0, 65535),
	U("api", "threads", threads, 1, 256),
	U("api", "max_connections", max_connections, 1, 1000000),
	S("api", "public_url", public_url),
	S("api", "pid_file", pid_file),
	S("api", "port_file", port_file),
	S("api", "schema", schema),
	S("database", "uri", database_uri),
	S("redis", "uri", redis_uri),
	S("jobs", "prefix", jobs_prefix),
	U("jobs", "republish_after", jobs_republish_after, 1, 86400),
	U("jobs", "stale_after", jobs_stale_after, 5, 86400),
	U("session", "idle_timeout", session_idle_timeout, 10, 31 * 86400),
	U("session", "absolute_timeout", session_absolute_timeout, 10, 366 * 86400),
	U("login", "window", login_window, 1, 86400),
	U("login", "max_failures_per_user", login_max_failures_user, 1, 1000000),
	U("login", "max_failures_per_address", login_max_failures_addr, 1, 1000000),
	VR_INI_LEVEL_KEY(struct vr_config, "log", "level", log_level),
	S("log", "file", log_file),
	U("limits", "max_body_bytes", max_body_bytes, 1024, 1024 * 1024 * 1024),
	U("limits", "max_url_bytes", max_url_bytes, 256, 128 * 1024),
	U("limits", "max_header_bytes", max_header_bytes, 1024, 128 * 1024),
};

int vr_config_set(struct vr_config *config, const char *section, const char *key,
		  const char *value, char **error_out)
{
	return vr_ini_set(keys, sizeof keys / sizeof keys[0], config, section, key, value,
			  error_out);
}

int vr_config_load(struct vr_config *config, const char *path, char **error_out)
{
	return vr_ini_load(keys, sizeof keys / sizeof keys[0], config, path, error_out);
}
