/* Configuration of vrcloud-agent's tunnels: [agent] and [log] of an INI
 * file, flags over it, one check of the whole; and the reconnect backoff.
 * The site credential lives in its own file. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/agent.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/ini.h"
#include "vrcloud/worker.h"

static char *host_name(void)
{
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		return vr_strdup("localhost");
	host[sizeof host - 1] = '\0';
	return vr_strdup(host);
}

void vr_agent_config_init(struct vr_agent_config *config)
{
	memset(config, 0, sizeof *config);
	config->name = host_name();
	config->connect_timeout = 10;
	config->backoff_initial = 500;
	config->backoff_max = 60;
	config->heartbeat_default = 10;
	config->log_level = VR_LOG_INFO;
	config->state_dir = vr_strdup(VR_AGENT_STATE_DIR);
	config->sync_workers = 2;
	config->sync_floor = 30;
}

void vr_agent_config_free(struct vr_agent_config *config)
{
	if (!config)
		return;
	free(config->name);
	free(config->proxy);
	free(config->credential_file);
	free(config->ca_file);
	free(config->pin);
	free(config->server_name);
	free(config->pid_file);
	free(config->state_dir);
	free(config->log_file);
	memset(config, 0, sizeof *config);
}

#define S(sec, k, field)	 VR_INI_STRING_KEY(struct vr_agent_config, sec, k, field)
#define U(sec, k, field, lo, hi) VR_INI_UINT_KEY(struct vr_agent_config, sec, k, field, lo, hi)

static const struct vr_ini_key keys[] = {
	S("agent", "name", name),
	S("agent", "proxy", proxy),
	S("agent", "credential_file", credential_file),
	S("agent", "ca_file", ca_file),
	S("agent", "pin", pin),
	S("agent", "server_name", server_name),
	U("agent", "connect_timeout", connect_timeout, 1, 600),
	U("agent", "backoff_initial", backoff_initial, 10, 600000),
	U("agent", "backoff_max", backoff_max, 1, 86400),
	U("agent", "heartbeat_default", heartbeat_default, 1, 3600),
	S("agent", "pid_file", pid_file),
	S("agent", "state_dir", state_dir),
	U("agent", "sync_workers", sync_workers, 1, 64),
	U("agent", "sync_floor", sync_floor, 1, 86400),
	VR_INI_LEVEL_KEY(struct vr_agent_config, "log", "level", log_level),
	S("log", "file", log_file),
};

int vr_agent_config_set(struct vr_agent_config *config, const char *section, const char *key,
			const char *value, char **error_out)
{
	return vr_ini_set(keys, sizeof keys / sizeof keys[0], config, section, key, value,
			  error_out);
}

int vr_agent_config_load(struct vr_agent_config *config, const char *path, char **error_out)
{
	return vr_ini_load(keys, sizeof keys / sizeof keys[0], config, path, error_out);
}

/* Every comma-separated entry of list is host:port with a port. */
static bool addresses_valid(const char *list)
{
	if (!list || !list[0])
		return false;
	const char *p = list;
	for (;;) {
		size_t len = strcspn(p, ",");
		char address[300], host[256];
		unsigned port;
		if (len == 0 || len >= sizeof address)
			return false;
		memcpy(address, p, len);
		address[len] = '\0';
		if (vr_tunnel_split_address(host, sizeof host, &port, address) || port == 0)
			return false;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

static char *check(const struct vr_agent_config *c)
{
	struct vr_tls_pins pins;
	if (!c->name || !c->name[0] || strlen(c->name) > VR_TUNNEL_MAX_ID)
		return vr_strdup("[agent] name must be 1 to 64 characters");
	for (const char *p = c->name; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return vr_strdup("[agent] name must be printable ASCII");
	if (!addresses_valid(c->proxy))
		return vr_asprintf("[agent] proxy: '%s' is not a list of host:port (the load "
				   "balancer, or proxies to try in turn, comma-separated)",
				   c->proxy ? c->proxy : "");
	if (!c->credential_file)
		return vr_strdup("[agent] credential_file is required (the file holding the "
				 "site credential)");
	if (!c->ca_file && !c->pin)
		return vr_strdup("[agent] ca_file or pin is required: the proxy must be "
				 "authenticated before the credential is sent");
	if (c->pin && vr_tls_pins_parse(&pins, c->pin))
		return vr_asprintf("[agent] pin: '%s' is not a list of SHA-256 hashes (64 hex "
				   "digits each, up to %d, comma-separated)",
				   c->pin, VR_TLS_MAX_PINS);
	if (!c->state_dir)
		return vr_strdup("[agent] state_dir must not be empty");
	if (c->backoff_initial > c->backoff_max * 1000u)
		return vr_strdup("[agent] backoff_initial (ms) must not exceed backoff_max (s)");
	return NULL;
}

int vr_agent_config_check(const struct vr_agent_config *config, char **error_out)
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

unsigned vr_agent_backoff_ms(unsigned attempt, unsigned initial_ms, unsigned max_ms, uint32_t rnd)
{
	uint64_t ceiling = initial_ms ? initial_ms : 1;
	for (unsigned i = 0; i < attempt && ceiling < max_ms; i++)
		ceiling *= 2;
	if (ceiling > max_ms)
		ceiling = max_ms;
	uint64_t half = ceiling / 2;
	return (unsigned)(half + (uint64_t)rnd % (ceiling - half + 1));
}

int vr_agent_credential_read(char out[VR_TUNNEL_MAX_CREDENTIAL + 1], const char *path,
			     char **error_out)
{
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose = false;
	int rc = vr_worker_token_read(token, path, &loose, error_out);
	if (rc)
		return rc;
	if (strlen(token) > VR_TUNNEL_MAX_CREDENTIAL) {
		explicit_bzero(token, sizeof token);
		*error_out = vr_asprintf("credential file %s holds more than %d characters", path,
					 VR_TUNNEL_MAX_CREDENTIAL);
		return VR_EINVAL;
	}
	if (loose)
		vr_log_warn("credential_file_readable", "path", path, "advice",
			    "chmod 600: others can read the site credential");
	memcpy(out, token, strlen(token) + 1);
	explicit_bzero(token, sizeof token);
	return 0;
}
