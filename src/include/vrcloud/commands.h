/* The producers' side of the tunnels' Redis keys (docs/tunnels.md,
 * section 2): pushing a command onto a site's list with its wake-up, and
 * reading the registry of connected sites (for vrcloudctl tunnels and the
 * API's /metrics). The proxy keeps its own asynchronous contexts; the key
 * names are the same. */
#ifndef VRCLOUD_COMMANDS_H
#define VRCLOUD_COMMANDS_H

#include <stddef.h>

#include "vrcloud/redis.h"
#include "vrcloud/tunnel.h"
#include "vrcloud/uuid.h"

/* Commands the cloud sends to a site. */
#define VR_COMMAND_SYNC		  "sync"
#define VR_COMMAND_CONFIG_CHANGED "configChanged"
/* A failback sync is about to dial the site (fields: replication, the
 * failback replication; source, the replication it sends back). */
#define VR_COMMAND_START_FAILBACK_RECEIVE "startFailbackReceive"

/* Push command name for peer_id onto <prefix>:tunnel:commands:<peer id>
 * and publish the wake-up on <prefix>:tunnel:wake. fields are further
 * key, value pairs ended by NULL (NULL: none). id_out gets the command's
 * id (a fresh UUID). Returns 0, VR_EINVAL (a bad name, field or peer id)
 * or VR_EUNAVAIL (Redis did not take it). A lost wake-up only delays the
 * command to the site's next heartbeat. */
int vr_tunnel_command_push(struct vr_redis *redis, const char *prefix, const char *peer_id,
			   const char *name, const char *const *fields,
			   char id_out[VR_UUID_LEN + 1]);

/* A site in the registry. */
struct vr_tunnel_site {
	char peer[VR_UUID_LEN + 1];
	char proxy[VR_TUNNEL_MAX_ID + 1]; /* the proxy holding its control connection */
	char address[256];		  /* that proxy's reverse address */
	long long since;		  /* Unix seconds the connection was made, 0: unknown */
	long long heartbeat;		  /* Unix seconds of its last heartbeat, 0: unknown */
};

/* Every site with a registry entry (<prefix>:tunnel:peer:*), sorted by
 * peer id, with the times of <prefix>:tunnel:site:<peer id>. *out is
 * allocated (free it); Returns 0 or VR_EUNAVAIL. */
int vr_tunnel_sites_read(struct vr_redis *redis, const char *prefix, struct vr_tunnel_site **out,
			 size_t *count_out);

#endif
