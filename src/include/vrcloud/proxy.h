/* vrcloud-proxy: terminates the agents' TLS tunnels (docs/tunnels.md). One
 * epoll loop holds every connection; sites are authenticated by their
 * credential through the API's internal route (cached briefly), the
 * registry of which proxy holds which site lives in Redis, and commands
 * wait in a Redis list per site until the agent acknowledges them. The
 * proxy keeps no state but its connections. */
#ifndef VRCLOUD_PROXY_H
#define VRCLOUD_PROXY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "vrcloud/buf.h"
#include "vrcloud/log.h"
#include "vrcloud/uuid.h"

/* --- configuration ---------------------------------------------------- */

struct vr_proxy_config {
	/* [proxy] */
	char *name;		     /* unique among proxies; default: the host name */
	char *listen;		     /* public TLS address host:port, default 0.0.0.0:8443 */
	char *cert_file;	     /* certificate chain, PEM, leaf first (required) */
	char *key_file;		     /* its key, PEM (required) */
	char *reverse_address;	     /* host:port agents dial to reach this proxy itself;
					default <name>:<bound port>; port 0: the bound one */
	char *internal_listen;	     /* plain port of workers' reverse requests,
					default 127.0.0.1:8444 */
	unsigned reverse_timeout;    /* seconds a worker waits for the site, default 30 */
	char *api_url;		     /* vrcloud-api base URL, default http://127.0.0.1:8080 */
	char *token_file;	     /* the proxy's service token (required) */
	unsigned heartbeat_interval; /* seconds the agents are asked to beat, default 10 */
	unsigned registry_ttl;	     /* seconds a registry entry lives unrenewed, default 30 */
	unsigned verify_cache;	     /* seconds a verified credential is trusted, default 60 */
	unsigned route_cache;	     /* seconds a replication's worker address is kept, default 10 */
	unsigned verify_threads;     /* calls to the API at once, default 2 */
	unsigned max_connections;    /* default 4096 */
	unsigned buffer_kib;	     /* per direction of a data connection, default 256 */
	unsigned handshake_timeout;  /* seconds for TLS handshake and hello, default 10 */
	unsigned shutdown_timeout;   /* seconds data connections get after SIGTERM, 10 */
	unsigned http_timeout;	     /* seconds one API call may take, default 10 */
	unsigned connect_timeout;    /* seconds to connect to the API or a worker, 5 */
	char *pid_file;		     /* optional */
	char *port_file; /* optional: the bound public and internal ports, a line each
			    (then the metrics port when metrics_address is set) */
	char *metrics_address;		 /* plain HTTP host:port of GET /metrics; NULL or "": off */
	unsigned failed_hello_burst;	 /* failed hellos an address may have at once, 10; 0 off */
	unsigned failed_hello_rate;	 /* failed hellos an address gets back a minute, 30 */
	unsigned failed_hello_addresses; /* addresses the limiter keeps, 16384 */
	unsigned site_data_connections;	 /* data connections open per site, 64; 0 no limit */
	/* [redis] */
	char *redis_uri;    /* default redis://127.0.0.1:6379/0 */
	char *redis_prefix; /* key and channel prefix, default "vrcloud" */
	/* [log] */
	enum vr_log_level log_level;
	char *log_file; /* optional; stderr when unset */
};

void vr_proxy_config_init(struct vr_proxy_config *config);
/* Read an INI file over the current values. Returns 0, VR_EIO or
 * VR_ECONFIG; on error *error_out (owned by the caller) says where. */
int vr_proxy_config_load(struct vr_proxy_config *config, const char *path, char **error_out);
/* Set one [section] key as the file would. Returns 0 or VR_ECONFIG. */
int vr_proxy_config_set(struct vr_proxy_config *config, const char *section, const char *key,
			const char *value, char **error_out);
/* Check the whole once file and flags are applied. Returns 0 or
 * VR_ECONFIG with *error_out (owned by the caller). */
int vr_proxy_config_check(const struct vr_proxy_config *config, char **error_out);
void vr_proxy_config_free(struct vr_proxy_config *config);

/* --- documents of the internal API ------------------------------------- */

/* What the API answers for a valid site credential. */
struct vr_proxy_site {
	char peer_id[VR_UUID_LEN + 1];
	char org_id[VR_UUID_LEN + 1];
	char vdc_id[VR_UUID_LEN + 1];
	char site_uuid[VR_UUID_LEN + 1];
};

/* The SiteVerify document carrying credential. Returns 0, VR_EINVAL or
 * VR_ENOMEM. The caller wipes out when done. */
int vr_proxy_doc_site_verify(struct vr_buf *out, const char *credential);
/* Parse the API's Site answer. Returns 0 or VR_EINVAL (*reason_out). */
int vr_proxy_parse_site(struct vr_proxy_site *out, const char *body, size_t len,
			const char **reason_out);

/* The ReplicationServerLookup document naming peer_id. Returns 0 or
 * VR_EINVAL (not a UUID). */
int vr_proxy_doc_route_lookup(struct vr_buf *out, const char *peer_id);
/* Parse the API's ReplicationServer answer: the server's TrafficAddress
 * (host:port, port not 0) and name. Returns 0 or VR_EINVAL (*reason_out). */
int vr_proxy_parse_route(char *address, size_t address_size, char *server, size_t server_size,
			 const char *body, size_t len, const char **reason_out);

/* --- the daemon ------------------------------------------------------- */

struct vr_proxy;

/* Bind the public port, load the certificate, read the token, connect to
 * Redis (retried in the background) and start the verifier threads. The
 * caller blocks the signals in *signals first; the loop takes them through
 * a signalfd. curl_global_init and vr_xml_global_init must have run.
 * Returns 0, VR_ECONFIG / VR_EIO (with *error_out, owned by the caller)
 * or VR_ENOMEM. */
int vr_proxy_start(struct vr_proxy **out, const struct vr_proxy_config *config,
		   const sigset_t *signals, char **error_out);
/* Run until SIGTERM or SIGINT (SIGHUP reopens the log), then close the
 * listener and the control connections (their registry entries are
 * released), give data connections up to shutdown_timeout, and return 0;
 * VR_EIO when the loop failed. */
int vr_proxy_run(struct vr_proxy *proxy);
void vr_proxy_free(struct vr_proxy *proxy);

#endif
