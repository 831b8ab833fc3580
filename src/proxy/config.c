/* Configuration of vrcloud-proxy: [proxy], [redis] and [log] of an INI
 * file (libinih), then command-line flags over it, then one check of the
 * whole. The service token is read from its own file, never from here. */
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/ini.h"
#include "vrcloud/proxy.h"
#include "vrcloud/redis.h"
#include "vrcloud/tunnel.h"

static char *host_name(void)
{
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		return vr_strdup("localhost");
	host[sizeof host - 1] = '\0';
	return vr_strdup(host);
}

void vr_proxy_config_init(struct vr_proxy_config *config)
{
	memset(config, 0, sizeof *config);
	config->name = host_name();
	config->listen = vr_strdup("0.0.0.0:8443");
	config->internal_listen = vr_strdup("127.0.0.1:8444");
	config->reverse_timeout = 30;
	config->api_url = vr_strdup("http://127.0.0.1:8080");
	config->heartbeat_interval = 10;
	config->registry_ttl = 30;
	config->verify_cache = 60;
	config->route_cache = 10;
	config->verify_threads = 2;
	config->max_connections = 4096;
	config->buffer_kib = 256;
	config->handshake_timeout = 10;
	config->shutdown_timeout = 10;
	config->http_timeout = 10;
	config->connect_timeout = 5;
	config->failed_hello_burst = 10;
	config->failed_hello_rate = 30;
	config->failed_hello_addresses = 16384;
	config->site_data_connections = 64;
	config->redis_uri = vr_strdup("redis://127.0.0.1:6379/0");
	config->redis_prefix = vr_strdup("vrcloud");
	config->log_level = VR_LOG_INFO;
}

void vr_proxy_config_free(struct vr_proxy_config *config)
{
	if (!config)
		return;
	free(config->name);
	free(config->listen);
	free(config->cert_file);
	free(config->key_file);
	free(config->reverse_address);
	free(config->internal_listen);
	free(config->api_url);
	free(config->token_file);
	free(config->pid_file);
	free(config->port_file);
	free(config->metrics_address);
	free(config->redis_uri);
	free(config->redis_prefix);
	free(config->log_file);
	memset(config, 0, sizeof *config);
}

#define S(sec, k, field)	 VR_INI_STRING_KEY(struct vr_proxy_config, sec, k, field)
#define U(sec, k, field, lo, hi) VR_INI_UINT_KEY(struct vr_proxy_config, sec, k, field, lo, hi)

static const struct vr_ini_key keys[] = {
	S("proxy", "name", name),
	S("proxy", "listen", listen),
	S("proxy", "cert_file", cert_file),
	S("proxy", "key_file", key_file),
	S("proxy", "reverse_address", reverse_address),
	S("proxy", "internal_listen", internal_listen),
	U("proxy", "reverse_timeout", reverse_timeout, 1, 3600),
	S("proxy", "api_url", api_url),
	S("proxy", "token_file", token_file),
	U("proxy", "heartbeat_interval", heartbeat_interval, 1, 3600),
	U("proxy", "registry_ttl", registry_ttl, 3, 86400),
	U("proxy", "verify_cache", verify_cache, 0, 3600),
	U("proxy", "route_cache", route_cache, 0, 3600),
	U("proxy", "verify_threads", verify_threads, 1, 64),
	U("proxy", "max_connections", max_connections, 2, 1000000),
	U("proxy", "buffer_kib", buffer_kib, 64, 65536),
	U("proxy", "handshake_timeout", handshake_timeout, 1, 600),
	U("proxy", "shutdown_timeout", shutdown_timeout, 0, 86400),
	U("proxy", "http_timeout", http_timeout, 1, 600),
	U("proxy", "connect_timeout", connect_timeout, 1, 600),
	S("proxy", "pid_file", pid_file),
	S("proxy", "port_file", port_file),
	S("proxy", "metrics_address", metrics_address),
	U("proxy", "failed_hello_burst", failed_hello_burst, 0, 1000000),
	U("proxy", "failed_hello_rate", failed_hello_rate, 1, 6000000),
	U("proxy", "failed_hello_addresses", failed_hello_addresses, 16, 16777216),
	U("proxy", "site_data_connections", site_data_connections, 0, 1000000),
	S("redis", "uri", redis_uri),
	S("redis", "prefix", redis_prefix),
	VR_INI_LEVEL_KEY(struct vr_proxy_config, "log", "level", log_level),
	S("log", "file", log_file),
};

int vr_proxy_config_set(struct vr_proxy_config *config, const char *section, const char *key,
			const char *value, char **error_out)
{
	return vr_ini_set(keys, sizeof keys / sizeof keys[0], config, section, key, value,
			  error_out);
}

int vr_proxy_config_load(struct vr_proxy_config *config, const char *path, char **error_out)
{
	return vr_ini_load(keys, sizeof keys / sizeof keys[0], config, path, error_out);
}

/* The schema's NameType: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. */
static bool name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > 128 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static bool prefix_valid(const char *prefix)
{
	size_t len = prefix ? strlen(prefix) : 0;
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)prefix[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':')
			return false;
	}
	return true;
}

static bool api_url_valid(const char *url)
{
	const char *rest;
	if (!url)
		return false;
	if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		return false;
	size_t host_len = strcspn(rest, "/");
	if (host_len == 0 || memchr(rest, '@', host_len))
		return false;
	for (const char *p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#')
			return false;
	}
	return true;
}

static bool address_valid(const char *address, bool port_zero_ok)
{
	char host[256];
	unsigned port;
	return vr_tunnel_split_address(host, sizeof host, &port, address) == 0 &&
	       (port_zero_ok || port != 0);
}

static char *check(const struct vr_proxy_config *c)
{
	struct vr_redis_addr addr;
	if (!name_valid(c->name))
		return vr_asprintf("[proxy] name: '%s' must be letters, digits, '.', '_' and "
				   "'-', up to 128, starting with a letter or digit",
				   c->name ? c->name : "");
	if (!address_valid(c->listen, true))
		return vr_asprintf("[proxy] listen: '%s' is not host:port",
				   c->listen ? c->listen : "");
	if (!c->cert_file || !c->key_file)
		return vr_strdup("[proxy] cert_file and key_file are required (PEM files of "
				 "the proxy's certificate chain and key)");
	if (!address_valid(c->internal_listen, true))
		return vr_asprintf("[proxy] internal_listen: '%s' is not host:port",
				   c->internal_listen ? c->internal_listen : "");
	if (c->reverse_address && !address_valid(c->reverse_address, true))
		return vr_asprintf("[proxy] reverse_address: '%s' is not host:port",
				   c->reverse_address);
	if (c->metrics_address && c->metrics_address[0] && !address_valid(c->metrics_address, true))
		return vr_asprintf("[proxy] metrics_address: '%s' is not host:port (empty: no "
				   "metrics endpoint)",
				   c->metrics_address);
	if (!api_url_valid(c->api_url))
		return vr_asprintf("[proxy] api_url: '%s' is not an http:// or https:// URL "
				   "without credentials or query",
				   c->api_url ? c->api_url : "");
	if (!c->token_file)
		return vr_strdup("[proxy] token_file is required (the file holding the token "
				 "of `vrcloudctl service add NAME --kind proxy`)");
	if (c->registry_ttl <= 2 * c->heartbeat_interval)
		return vr_asprintf("[proxy] registry_ttl (%u) must be more than twice "
				   "heartbeat_interval (%u): one lost heartbeat must not drop a "
				   "site",
				   c->registry_ttl, c->heartbeat_interval);
	if (!c->redis_uri || vr_redis_parse_uri(&addr, c->redis_uri) != 0)
		return vr_asprintf("[redis] uri: '%s' is not redis://host[:port][/db] or "
				   "unix:///path[?db=N]",
				   c->redis_uri ? c->redis_uri : "");
	if (!prefix_valid(c->redis_prefix))
		return vr_strdup("[redis] prefix must be 1 to 64 of letters, digits, '.', '_', "
				 "'-' and ':'");
	return NULL;
}

int vr_proxy_config_check(const struct vr_proxy_config *config, char **error_out)
{
	char *problem = check(config);
	if (!problem)
		return 0;
	if (error_out)
		*error_out = problem;
	else
		free(problem);
	return VR_ECONFIG;
}
