#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/alloc.h"
#include "vrcloud/config.h"
#include "vrcloud/err.h"

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

static int parse_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
		return VR_ECONFIG;
	*out = (unsigned)v;
	return 0;
}

static void set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = value[0] ? vr_strdup(value) : NULL;
}

struct key_spec {
	const char *section;
	const char *key;
	enum { K_STRING, K_UINT, K_LEVEL } kind;
	size_t offset;
	unsigned min, max;
};

#define S(sec, k, field) {sec, k, K_STRING, offsetof(struct vr_config, field), 0, 0}
#define U(sec, k, field, lo, hi) {sec, k, K_UINT, offsetof(struct vr_config, field), lo, hi}

static const struct key_spec keys[] = {
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
	{"log", "level", K_LEVEL, offsetof(struct vr_config, log_level), 0, 0},
	S("log", "file", log_file),
	U("limits", "max_body_bytes", max_body_bytes, 1024, 1024 * 1024 * 1024),
	U("limits", "max_url_bytes", max_url_bytes, 256, 128 * 1024),
	U("limits", "max_header_bytes", max_header_bytes, 1024, 128 * 1024),
};

int vr_config_set(struct vr_config *config, const char *section, const char *key,
		  const char *value, char **error_out)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key_spec *k = &keys[i];
		if (strcmp(k->section, section) || strcmp(k->key, key))
			continue;
		char *base = (char *)config;
		switch (k->kind) {
		case K_STRING:
			set_string((char **)(base + k->offset), value);
			return 0;
		case K_UINT:
			if (parse_uint(value, k->min, k->max, (unsigned *)(base + k->offset))) {
				if (error_out)
					*error_out = vr_asprintf(
						"[%s] %s: '%s' is not a whole number from %u to %u",
						section, key, value, k->min, k->max);
				return VR_ECONFIG;
			}
			return 0;
		case K_LEVEL:
			if (vr_log_parse_level(value, (enum vr_log_level *)(base + k->offset))) {
				if (error_out)
					*error_out = vr_asprintf(
						"[%s] %s: '%s' is not one of debug, info, warn, error",
						section, key, value);
				return VR_ECONFIG;
			}
			return 0;
		}
	}
	if (error_out)
		*error_out = vr_asprintf("unknown setting [%s] %s", section, key);
	return VR_ECONFIG;
}

struct load_state {
	struct vr_config *config;
	char *error;
};

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	if (st->error)
		return 0;
	return vr_config_set(st->config, section, name, value, &st->error) == 0;
}

int vr_config_load(struct vr_config *config, const char *path, char **error_out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (error_out)
			*error_out = vr_asprintf("cannot read %s: %s", path, strerror(errno));
		return VR_EIO;
	}
	struct load_state st = {config, NULL};
	int line = ini_parse_file(f, on_ini_value, &st);
	fclose(f);
	if (line != 0) {
		if (error_out)
			*error_out = vr_asprintf("%s:%d: %s", path, line,
						 st.error ? st.error : "syntax error");
		free(st.error);
		return VR_ECONFIG;
	}
	return 0;
}
