/* Configuration of the vrcloud daemons: an INI file (libinih) whose values
 * command-line flags override. Every key has a default, so a missing file
 * section is never an error; an unknown key or bad value is. */
#ifndef VRCLOUD_CONFIG_H
#define VRCLOUD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "vrcloud/log.h"

struct vr_config {
	/* [api] */
	char *listen;           /* address to bind, default 127.0.0.1 */
	unsigned port;          /* default 8080; 0 = any free port */
	unsigned threads;       /* thread pool size, default 2 */
	unsigned max_connections; /* default 1024 */
	char *public_url;       /* absolute base of every href, no trailing slash */
	char *pid_file;         /* optional */
	char *port_file;        /* optional: the bound port is written here */
	char *schema;           /* schema/vrcloud.xsd; default: the installed one, else the source tree's */
	/* [database] */
	char *database_uri;     /* libpq connection URI or key=value string */
	/* [redis] */
	char *redis_uri;        /* redis://host:port[/db] or unix:///path[?db=N] */
	/* [jobs] */
	char *jobs_prefix;          /* Redis key prefix of the job streams, default "vrcloud" */
	unsigned jobs_republish_after; /* seconds before an unstarted job is published again (10) */
	unsigned jobs_stale_after;  /* seconds without progress before a running job is (60) */
	/* [session] */
	unsigned session_idle_timeout;     /* seconds, default 1800 */
	unsigned session_absolute_timeout; /* seconds, default 86400 */
	/* [login] */
	unsigned login_window;             /* seconds, default 900 */
	unsigned login_max_failures_user;  /* per user@org and address, default 5 */
	unsigned login_max_failures_addr;  /* per address, default 30 */
	/* [log] */
	enum vr_log_level log_level;
	char *log_file;         /* optional; stderr when unset */
	/* [limits] */
	unsigned max_body_bytes;   /* default body cap, default 1 MiB */
	unsigned max_url_bytes;    /* default 8192 */
	unsigned max_header_bytes; /* all request headers together, default 32768 */
};

/* Fill config with defaults. */
void vr_config_init(struct vr_config *config);
/* Read an INI file over the current values. Returns 0, VR_EIO (unreadable)
 * or VR_ECONFIG; on error *error_out (owned by the caller) says where. */
int vr_config_load(struct vr_config *config, const char *path, char **error_out);
/* Set one "section.key" value as the file would. Returns 0 or VR_ECONFIG. */
int vr_config_set(struct vr_config *config, const char *section, const char *key,
		  const char *value, char **error_out);
void vr_config_free(struct vr_config *config);

#endif
