/* Configuration of vrcloud-worker: [worker], [redis], [jobs] and [log] of
 * an INI file (libinih), then command-line flags over it, then one check
 * of the whole. The service token lives in its own file and is read here
 * without ever being echoed. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/ini.h"
#include "vrcloud/redis.h"
#include "vrcloud/worker.h"

/* The port replication traffic goes to when traffic_address names none
 * (vSphere Replication's own). */
#define DEFAULT_TRAFFIC_PORT 44046

static char *host_name(void)
{
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		return vr_strdup("localhost");
	host[sizeof host - 1] = '\0';
	return vr_strdup(host);
}

void vr_worker_config_init(struct vr_worker_config *config)
{
	memset(config, 0, sizeof *config);
	config->name = host_name();
	config->api_url = vr_strdup("http://127.0.0.1:8080");
	config->traffic_address = vr_asprintf("%s:%d", config->name, DEFAULT_TRAFFIC_PORT);
	config->concurrency = 4;
	config->heartbeat_interval = 10;
	config->claim_idle = 30000;
	config->max_deliveries = 5;
	config->shutdown_timeout = 30;
	config->http_timeout = 30;
	config->connect_timeout = 5;
	config->block = 2000;
	config->redis_uri = vr_strdup("redis://127.0.0.1:6379/0");
	config->jobs_prefix = vr_strdup("vrcloud");
	config->log_level = VR_LOG_INFO;
	config->store_dir = vr_strdup("/var/lib/vrcloud/store");
	config->recovered_dir = vr_strdup("/var/lib/vrcloud/recovered");
	config->max_transfers = 16;
	config->transfer_idle_timeout = 120;
	config->proxy_internal = vr_strdup("127.0.0.1:8444");
	config->sync_timeout = 600;
}

void vr_worker_config_free(struct vr_worker_config *config)
{
	if (!config)
		return;
	free(config->name);
	free(config->api_url);
	free(config->token_file);
	free(config->traffic_address);
	free(config->pid_file);
	free(config->redis_uri);
	free(config->jobs_prefix);
	free(config->log_file);
	free(config->store_dir);
	free(config->recovered_dir);
	free(config->traffic_listen);
	free(config->boot_check);
	free(config->proxy_internal);
	memset(config, 0, sizeof *config);
}

#define S(sec, k, field) VR_INI_STRING_KEY(struct vr_worker_config, sec, k, field)
#define U(sec, k, field, lo, hi) VR_INI_UINT_KEY(struct vr_worker_config, sec, k, field, lo, hi)

static const struct vr_ini_key keys[] = {
	S("worker", "name", name),
	S("worker", "api_url", api_url),
	S("worker", "token_file", token_file),
	S("worker", "traffic_address", traffic_address),
	U("worker", "concurrency", concurrency, 1, 256),
	U("worker", "heartbeat_interval", heartbeat_interval, 1, 3600),
	U("worker", "claim_idle", claim_idle, 1000, 86400000),
	U("worker", "max_deliveries", max_deliveries, 1, 1000),
	U("worker", "shutdown_timeout", shutdown_timeout, 0, 86400),
	U("worker", "http_timeout", http_timeout, 1, 3600),
	U("worker", "connect_timeout", connect_timeout, 1, 600),
	U("worker", "phase_delay", phase_delay, 0, 600000),
	S("worker", "pid_file", pid_file),
	S("worker", "store_dir", store_dir),
	S("worker", "recovered_dir", recovered_dir),
	S("worker", "traffic_listen", traffic_listen),
	U("worker", "max_transfers", max_transfers, 1, 1024),
	U("worker", "transfer_idle_timeout", transfer_idle_timeout, 1, 86400),
	S("worker", "boot_check", boot_check),
	S("worker", "proxy_internal", proxy_internal),
	U("worker", "sync_timeout", sync_timeout, 1, 86400),
	S("redis", "uri", redis_uri),
	S("jobs", "prefix", jobs_prefix),
	U("jobs", "block", block, 100, 4000),
	VR_INI_LEVEL_KEY(struct vr_worker_config, "log", "level", log_level),
	S("log", "file", log_file),
};

int vr_worker_config_set(struct vr_worker_config *config, const char *section, const char *key,
			 const char *value, char **error_out)
{
	return vr_ini_set(keys, sizeof keys / sizeof keys[0], config, section, key, value,
			  error_out);
}

int vr_worker_config_load(struct vr_worker_config *config, const char *path, char **error_out)
{
	return vr_ini_load(keys, sizeof keys / sizeof keys[0], config, path, error_out);
}

/* The schema's NameType: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. */
static int name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 128 || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* http(s)://host[:port][/path], no credentials, no query, printable. */
static int api_url_valid(const char *url)
{
	const char *rest;
	if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		return 0;
	size_t host_len = strcspn(rest, "/");
	if (host_len == 0 || memchr(rest, '@', host_len))
		return 0;
	for (const char *p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#')
			return 0;
	}
	return 1;
}

int vr_worker_config_check(const struct vr_worker_config *config, char **error_out)
{
	const char *problem = NULL;
	char *owned = NULL;
	struct vr_redis_addr addr;
	if (!config->name || !name_valid(config->name))
		owned = vr_asprintf("[worker] name: '%s' must be the service credential's name "
				    "(letters, digits, '.', '_' and '-', up to 128, starting "
				    "with a letter or digit)",
				    config->name ? config->name : "");
	else if (!config->api_url || !api_url_valid(config->api_url))
		owned = vr_asprintf("[worker] api_url: '%s' is not an http:// or https:// URL "
				    "without credentials or query",
				    config->api_url ? config->api_url : "");
	else if (!config->token_file)
		problem = "[worker] token_file is required (the file holding the token of "
			  "`vrcloudctl service add NAME --kind worker`)";
	else if (!config->traffic_address || strlen(config->traffic_address) > 255)
		problem = "[worker] traffic_address must be a host:port of at most 255 characters";
	else if (!config->store_dir || config->store_dir[0] != '/')
		problem = "[worker] store_dir must be an absolute path";
	else if (!config->recovered_dir || config->recovered_dir[0] != '/')
		problem = "[worker] recovered_dir must be an absolute path";
	else if (config->traffic_listen && strcmp(config->traffic_listen, "off") != 0 &&
		 !strchr(config->traffic_listen, ':'))
		owned = vr_asprintf("[worker] traffic_listen: '%s' is not host:port or off",
				    config->traffic_listen);
	else if (!config->redis_uri || vr_redis_parse_uri(&addr, config->redis_uri) != 0)
		owned = vr_asprintf("[redis] uri: '%s' is not redis://host[:port][/db] or "
				    "unix:///path[?db=N]",
				    config->redis_uri ? config->redis_uri : "");
	else if (!config->jobs_prefix)
		problem = "[jobs] prefix must not be empty";
	if (!problem && !owned)
		return 0;
	if (error_out)
		*error_out = owned ? owned : vr_strdup(problem);
	else
		free(owned);
	return VR_ECONFIG;
}

int vr_worker_token_read(char out[VR_WORKER_MAX_TOKEN + 1], const char *path, bool *loose_out,
			 char **error_out)
{
	out[0] = '\0';
	*loose_out = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (error_out)
			*error_out =
				vr_asprintf("cannot read token file %s: %s", path, strerror(errno));
		return VR_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		if (error_out)
			*error_out = vr_asprintf("token file %s is not a regular file", path);
		return VR_EINVAL;
	}
	*loose_out = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
	char data[VR_WORKER_MAX_TOKEN + 64];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, data + len, sizeof data - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			explicit_bzero(data, sizeof data);
			if (error_out)
				*error_out = vr_asprintf("cannot read token file %s: %s", path,
							 strerror(err));
			return VR_EIO;
		}
		if (n == 0 || (len += (size_t)n) == sizeof data)
			break;
	}
	close(fd);
	size_t start = 0, end = len;
	while (start < end && isspace((unsigned char)data[start]))
		start++;
	while (end > start && isspace((unsigned char)data[end - 1]))
		end--;
	const char *problem = NULL;
	if (len == sizeof data || end - start > VR_WORKER_MAX_TOKEN)
		problem = "is too long to hold a service token";
	else if (end == start)
		problem = "is empty";
	for (size_t i = start; !problem && i < end; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c <= ' ' || c >= 0x7f)
			problem = "holds more than one token (or a character no token has)";
	}
	if (problem) {
		explicit_bzero(data, sizeof data);
		if (error_out)
			*error_out = vr_asprintf("token file %s %s", path, problem);
		return VR_EINVAL;
	}
	memcpy(out, data + start, end - start);
	out[end - start] = '\0';
	explicit_bzero(data, sizeof data);
	return 0;
}
