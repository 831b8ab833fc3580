/* vrcloud-agent, network side (docs/tunnels.md): the on-premises end of the
 * tunnels. It dials out only (it never listens): one long-lived control
 * connection that beats, takes commands and acknowledges them, and
 * reconnects with jittered exponential backoff to any proxy it is given;
 * data connections on demand. The proxy is authenticated by a CA and/or a
 * pinned public key before the site credential is sent. */
#ifndef VRCLOUD_AGENT_H
#define VRCLOUD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vrcloud/buf.h"

#include "vrcloud/log.h"
#include "vrcloud/tls.h"
#include "vrcloud/tunnel.h"
#include "vrcloud/uuid.h"

/* --- configuration ---------------------------------------------------- */

struct vr_agent_config {
	/* [agent] */
	char *name;		    /* sent in the hello, for the proxy's logs; default host name */
	char *proxy;		    /* host:port[,host:port...]: the load balancer or proxies */
	char *credential_file;	    /* the site credential (required) */
	char *ca_file;		    /* CA of the proxies' certificates (PEM) */
	char *pin;		    /* SHA-256 of the proxies' public keys, comma-separated */
	char *server_name;	    /* name the certificate must carry; default the host dialled */
	unsigned connect_timeout;   /* seconds for TCP, TLS and hello, default 10 */
	unsigned backoff_initial;   /* milliseconds before the first retry, default 500 */
	unsigned backoff_max;	    /* seconds the wait between attempts grows to, default 60 */
	unsigned heartbeat_default; /* seconds, when the proxy's welcome names none: 10 */
	char *pid_file;		    /* optional */
	char *state_dir;       /* site.ini, replications/, spool/; default /var/lib/vrcloud-agent */
	unsigned sync_workers; /* transfers at once across replications, default 2 */
	unsigned sync_floor;   /* fewest seconds between two starts of one replication, 30 */
	/* [log] */
	enum vr_log_level log_level;
	char *log_file;
};

void vr_agent_config_init(struct vr_agent_config *config);
int vr_agent_config_load(struct vr_agent_config *config, const char *path, char **error_out);
int vr_agent_config_set(struct vr_agent_config *config, const char *section, const char *key,
			const char *value, char **error_out);
/* Required keys, at least one of ca_file and pin, pins and addresses
 * well-formed. Returns 0 or VR_ECONFIG with *error_out. */
int vr_agent_config_check(const struct vr_agent_config *config, char **error_out);
void vr_agent_config_free(struct vr_agent_config *config);

/* The next wait before reconnecting: full jitter over an exponential
 * ceiling, ceiling = min(max_ms, initial_ms * 2^attempt); the result is in
 * [ceiling / 2, ceiling]. rnd is a random 32-bit value. */
unsigned vr_agent_backoff_ms(unsigned attempt, unsigned initial_ms, unsigned max_ms, uint32_t rnd);

/* --- connections to a proxy --------------------------------------------- */

/* What every connection shares: the TLS context and the checks. */
struct vr_agent_tls {
	SSL_CTX *ctx;
	struct vr_tls_pins pins;
	bool verify_chain;
	char *server_name; /* NULL: the host of the address dialled */
};

/* Returns 0 or VR_ECONFIG / VR_EIO with *error_out (caller frees). */
int vr_agent_tls_init(struct vr_agent_tls *tls, const struct vr_agent_config *config,
		      char **error_out);
void vr_agent_tls_free(struct vr_agent_tls *tls);

struct vr_agent_conn;

/* Connect to address (host:port), complete TLS, check the proxy, send
 * hello and wait for the welcome, all within timeout_ms. *welcome_out
 * (fields of the welcome) is for the caller to free. Returns 0;
 * VR_EUNAVAIL (no connection, timed out, closed); VR_EAUTH (the proxy's
 * certificate was rejected: nothing was sent); VR_EFORBIDDEN (refused:
 * credential) or VR_ECONFLICT (refused otherwise); *error_out (caller
 * frees) says why, with the refusal's reason token first ("credential: ..."). */
int vr_agent_conn_open(struct vr_agent_conn **out, struct vr_tunnel_fields *welcome_out,
		       const struct vr_agent_tls *tls, const char *address,
		       const struct vr_tunnel_hello *hello, unsigned timeout_ms, char **error_out);
void vr_agent_conn_close(struct vr_agent_conn *conn);
/* Underlying socket (for poll). */
int vr_agent_conn_fd(const struct vr_agent_conn *conn);

/* Send one frame within timeout_ms. Returns 0 or VR_EUNAVAIL. */
int vr_agent_conn_send(struct vr_agent_conn *conn, unsigned type, const char *payload, size_t len,
		       unsigned timeout_ms);
/* Wait up to timeout_ms for a frame, or until wake_fd (-1: none) is
 * readable. Returns 0 with frame_out->type 0 when none came, 0 with a
 * frame (its payload valid until the next call), or VR_EUNAVAIL (closed,
 * lost, malformed frame). */
int vr_agent_conn_recv(struct vr_agent_conn *conn, struct vr_tunnel_frame *frame_out,
		       int timeout_ms, int wake_fd);

/* Data connections: raw bytes after the welcome. Each call waits at most
 * the connection's timeout for progress. */
int vr_agent_conn_write(struct vr_agent_conn *conn, const void *data, size_t len);
/* Read up to cap bytes; *n_out = 0 at the end of the stream. Returns 0 or
 * VR_EUNAVAIL. */
int vr_agent_conn_read(struct vr_agent_conn *conn, void *buf, size_t cap, size_t *n_out);
/* End the agent's direction (TLS close_notify); reading goes on. */
int vr_agent_conn_finish(struct vr_agent_conn *conn);
/* Set the per-call timeout of write/read/finish (milliseconds). */
void vr_agent_conn_set_timeout(struct vr_agent_conn *conn, unsigned timeout_ms);

/* Open a data connection for replication through the first address of
 * config's proxy list that accepts it. Returns as vr_agent_conn_open. */
int vr_agent_data_open(struct vr_agent_conn **out, const struct vr_agent_tls *tls,
		       const struct vr_agent_config *config, const char *credential,
		       const char *replication, char **error_out);

/* Answer a CONNECT frame: open a reverse connection to address (a
 * proxy's own, not the load balancer) with the cookie. Returns as
 * vr_agent_conn_open; after it, bytes flow with the worker that asked. */
int vr_agent_reverse_open(struct vr_agent_conn **out, const struct vr_agent_tls *tls,
			  const struct vr_agent_config *config, const char *credential,
			  const char *address, const char *cookie, char **error_out);

/* Hex digits of a probe's SHA-256. */
#define VR_AGENT_PROBE_HEX 64

/* Serve a reverse connection of purpose "probe": read the stream to its
 * end, counting and hashing it (SHA-256), then write back
 * "bytes=N\nsha256=HEX\n" and end the agent's direction. *bytes_out and
 * hex_out tell what was read. Returns 0, VR_EUNAVAIL (the stream broke:
 * nothing is answered) or VR_ENOMEM. */
int vr_agent_probe_serve(struct vr_agent_conn *conn, uint64_t *bytes_out,
			 char hex_out[VR_AGENT_PROBE_HEX + 1]);

/* What a failback did (vr_agent_failback_serve). */
struct vr_agent_failback_stats {
	char failback[VR_UUID_LEN + 1]; /* the failback replication */
	char source[VR_UUID_LEN + 1];	/* the replication it sent back */
	char vmdir[1024];
	uint64_t groups;	/* group hashes sent */
	uint64_t blocks;	/* blocks applied to the disks */
	uint64_t bytes;		/* block bytes received */
};

/* Serve a reverse connection of purpose "failback" (docs/recovery.md):
 * read the worker's intro and transfer header, find the VM of the source
 * replication (state_dir/replications/<id>.ini, vmdir), send the group
 * hashes of its disks, stage the runs that come back, and only after the
 * trailer verified apply them to the disk images (crash-safe: an apply
 * journal that a crash interrupted is finished first by the next
 * failback); then answer a result reply. Returns 0 or an error with
 * *error_out (caller frees). */
int vr_agent_failback_serve(struct vr_agent_conn *conn, const char *state_dir,
			    struct vr_agent_failback_stats *stats, char **error_out);

/* Finish an apply journal left in vmdir by a crash (no journal: nothing
 * to do). Returns 0 or VR_EIO with *error_out. */
int vr_agent_failback_recover(const char *vmdir, char **error_out);

/* Read the site credential file (as a service token file). */
int vr_agent_credential_read(char out[VR_TUNNEL_MAX_CREDENTIAL + 1], const char *path,
			     char **error_out);

/* --- the daemon ------------------------------------------------------- */

struct vr_agent;

/* Read the credential, prepare TLS and start the control thread. The
 * caller blocks signals first. Returns 0, VR_ECONFIG / VR_EIO (with
 * *error_out) or VR_ENOMEM. */
int vr_agent_start(struct vr_agent **out, const struct vr_agent_config *config, char **error_out);
/* Close the control connection and stop. */
void vr_agent_stop(struct vr_agent *agent);

/* --- pairing (vrcloud-agent pair) ------------------------------------ */

/* Commands of the control connection the agent acts on (the same names as
 * vrcloud/commands.h's producers). */
#define VR_AGENT_COMMAND_SYNC		"sync"
#define VR_AGENT_COMMAND_CONFIG_CHANGED "configChanged"

/* The state directory's default. */
#define VR_AGENT_STATE_DIR "/var/lib/vrcloud-agent"

/* Files pair writes in the state directory. */
#define VR_AGENT_CREDENTIAL_FILE "site.credential" /* mode 0600 */
#define VR_AGENT_SITE_FILE	 "site.ini"	   /* [site] peer_id, site_uuid, ... */

struct vr_agent_pair_options {
	const char *api_url; /* base URL of vrcloud-api, no trailing '/' */
	const char *ca_file; /* optional: CA of an https API */
	const char *user;    /* USER@ORG */
	const char *password;
	const char *vdc; /* the VDC's id */
	const char *site_name;
	const char *site_uuid;	 /* NULL: a new one */
	const char *description; /* optional */
	const char *state_dir;
	unsigned timeout; /* seconds the Task may take */
};

struct vr_agent_pair_result {
	char peer_id[VR_UUID_LEN + 1];
	char site_uuid[VR_UUID_LEN + 1];
	char task_url[1024];
};

/* vr_agent_pair's statuses, also vrcloud-agent pair's exit statuses. */
enum {
	VR_AGENT_PAIR_UNAVAILABLE = 1, /* the API could not be reached or answered oddly */
	VR_AGENT_PAIR_USAGE = 2,
	VR_AGENT_PAIR_CONFIG = 3,  /* state directory or password file */
	VR_AGENT_PAIR_REFUSED = 4, /* the API refused: login, rights, VDC, already paired */
	VR_AGENT_PAIR_FAILED = 5,  /* the pairing Task ended in error or took too long */
};

/* Pair the site (curl_global_init and vr_xml_global_init must have run).
 * Returns 0 (paired: the credential and site.ini are in the state
 * directory) or one of the statuses above with *error_out (owned by the
 * caller; never holds the credential or the password). */
int vr_agent_pair(const struct vr_agent_pair_options *options, struct vr_agent_pair_result *result,
		  char **error_out);

/* --- the client of vrcloud-api (pair, protect, unprotect) -------------- */

struct vr_agent_api_options {
	const char *api_url; /* base URL, no trailing '/' */
	const char *ca_file; /* optional: CA of an https API */
	const char *user;    /* USER@ORG */
	const char *password;
};

struct vr_agent_api;

/* An answer of the API: status, body, the headers the agent reads and, for
 * an Error body, its minor code and message. */
struct vr_agent_answer {
	long status;
	struct vr_buf body;
	char token[256];
	char credential[513]; /* X-VRCLOUD-SITE-CREDENTIAL */
	char location[1024];
	char minor[64];
	char message[512];
};

/* Log in (curl_global_init and vr_xml_global_init must have run). Returns 0
 * or a VR_AGENT_PAIR_* status with *error_out (caller frees). */
int vr_agent_api_open(struct vr_agent_api **out, const struct vr_agent_api_options *options,
		      char **error_out);
/* Log out and release (NULL-safe). */
void vr_agent_api_close(struct vr_agent_api *api);
/* One call; a URL that starts with "/" is relative to the API's base. 0 when
 * an answer came (free it with vr_agent_answer_free), else VR_EUNAVAIL. */
int vr_agent_api_call(struct vr_agent_api *api, const char *method, const char *url,
		      const char *body, const char *content_type, struct vr_agent_answer *answer,
		      char **error_out);
void vr_agent_answer_free(struct vr_agent_answer *answer);
/* An answer's refusal as *error_out and a VR_AGENT_PAIR_* status. */
int vr_agent_api_refused(const struct vr_agent_answer *answer, const char *what, char **error_out);
/* A Task body's status, the id at the end of its Owner's href (owner may be
 * NULL) and its Error's message (may be NULL). 0 or VR_EINVAL. */
int vr_agent_task_read(const struct vr_agent_answer *answer, char *status, size_t size,
		       char owner[VR_UUID_LEN + 1], char *message, size_t message_size);
/* GET the Task every second until it succeeds (0), ends otherwise or
 * timeout_s passes (VR_AGENT_PAIR_FAILED), or is refused
 * (VR_AGENT_PAIR_REFUSED). what names it in *error_out. */
int vr_agent_api_follow_task(struct vr_agent_api *api, const char *task_url, unsigned timeout_s,
			     const char *what, char **error_out);
/* Write data to dir/name through a temporary file with mode (fsync, rename). */
int vr_agent_file_write(const char *dir, const char *name, const char *data, mode_t mode,
			char **error_out);
/* Text for XML content or attributes: & < > " escaped (caller frees). */
char *vr_agent_xml_text(const char *s);
/* Replace *error_out by a formatted text. */
void vr_agent_fail(char **error_out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
