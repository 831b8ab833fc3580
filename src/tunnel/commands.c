/* Commands for sites and the registry of connected sites, through a
 * blocking Redis connection (docs/tunnels.md, section 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/commands.h"
#include "vrcloud/err.h"

int vr_tunnel_command_push(struct vr_redis *redis, const char *prefix, const char *peer_id,
			   const char *name, const char *const *fields,
			   char id_out[VR_UUID_LEN + 1])
{
	char peer[VR_UUID_LEN + 1];
	if (!redis)
		return VR_EUNAVAIL;
	if (vr_uuid_canon(peer, peer_id) || !vr_tunnel_id_valid(name) || vr_uuid_generate(id_out))
		return VR_EINVAL;
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	int rc = vr_tunnel_field_append(&payload, "id", id_out);
	if (!rc)
		rc = vr_tunnel_field_append(&payload, "name", name);
	for (size_t i = 0; !rc && fields && fields[i]; i += 2)
		rc = fields[i + 1] ? vr_tunnel_field_append(&payload, fields[i], fields[i + 1])
				   : VR_EINVAL;
	if (rc) {
		vr_buf_free(&payload);
		return VR_EINVAL;
	}
	char *list = vr_asprintf("%s:tunnel:commands:%s", prefix, peer);
	char *channel = vr_asprintf("%s:tunnel:wake", prefix);
	char *element = vr_buf_take(&payload, NULL);
	const char *push[] = {"RPUSH", list, element};
	redisReply *reply = vr_redis_command(redis, 3, push);
	rc = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : VR_EUNAVAIL;
	if (reply)
		freeReplyObject(reply);
	if (!rc) {
		const char *wake[] = {"PUBLISH", channel, peer};
		reply = vr_redis_command(redis, 3, wake);
		if (reply)
			freeReplyObject(reply);
	}
	free(element);
	free(list);
	free(channel);
	return rc;
}

static int by_peer(const void *a, const void *b)
{
	return strcmp(((const struct vr_tunnel_site *)a)->peer,
		      ((const struct vr_tunnel_site *)b)->peer);
}

/* The proxy's name and reverse address from an entry "<name> <address>". */
static void entry_fill(struct vr_tunnel_site *s, const char *value)
{
	const char *space = strchr(value, ' ');
	size_t n = space ? (size_t)(space - value) : strlen(value);
	snprintf(s->proxy, sizeof s->proxy, "%.*s", (int)n, value);
	snprintf(s->address, sizeof s->address, "%s", space ? space + 1 : "");
}

static void times_fill(struct vr_redis *redis, const char *prefix, struct vr_tunnel_site *s)
{
	char *key = vr_asprintf("%s:tunnel:site:%s", prefix, s->peer);
	const char *argv[] = {"HMGET", key, "since", "heartbeat"};
	redisReply *reply = vr_redis_command(redis, 4, argv);
	free(key);
	if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
		if (reply->element[0]->type == REDIS_REPLY_STRING)
			s->since = strtoll(reply->element[0]->str, NULL, 10);
		if (reply->element[1]->type == REDIS_REPLY_STRING)
			s->heartbeat = strtoll(reply->element[1]->str, NULL, 10);
	}
	if (reply)
		freeReplyObject(reply);
}

/* One SCAN page's keys: append the sites whose entries are still there. */
static int add_page(struct vr_redis *redis, const char *prefix, size_t prefix_len,
		    const redisReply *keys, struct vr_tunnel_site **sites, size_t *n, size_t *cap)
{
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING || k->len != prefix_len + VR_UUID_LEN)
			continue;
		const char *get[] = {"GET", k->str};
		redisReply *value = vr_redis_command(redis, 2, get);
		if (!value)
			return VR_EUNAVAIL;
		if (value->type == REDIS_REPLY_STRING) {
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 16;
				*sites = vr_realloc(*sites, *cap * sizeof **sites);
			}
			struct vr_tunnel_site *s = &(*sites)[(*n)++];
			memset(s, 0, sizeof *s);
			snprintf(s->peer, sizeof s->peer, "%s", k->str + prefix_len);
			entry_fill(s, value->str);
			times_fill(redis, prefix, s);
		}
		freeReplyObject(value);
	}
	return 0;
}

int vr_tunnel_sites_read(struct vr_redis *redis, const char *prefix, struct vr_tunnel_site **out,
			 size_t *count_out)
{
	*out = NULL;
	*count_out = 0;
	if (!redis)
		return VR_EUNAVAIL;
	char *match = vr_asprintf("%s:tunnel:peer:*", prefix);
	size_t prefix_len = strlen(match) - 1;
	struct vr_tunnel_site *sites = NULL;
	size_t n = 0, cap = 0;
	char cursor[32] = "0";
	int rc = 0;
	do {
		const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
		redisReply *reply = vr_redis_command(redis, 6, argv);
		if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		    reply->element[0]->type != REDIS_REPLY_STRING ||
		    reply->element[1]->type != REDIS_REPLY_ARRAY) {
			if (reply)
				freeReplyObject(reply);
			rc = VR_EUNAVAIL;
			break;
		}
		snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
		rc = add_page(redis, prefix, prefix_len, reply->element[1], &sites, &n, &cap);
		freeReplyObject(reply);
	} while (!rc && strcmp(cursor, "0") != 0);
	free(match);
	if (rc) {
		free(sites);
		return rc;
	}
	if (n > 1)
		qsort(sites, n, sizeof *sites, by_peer);
	/* SCAN may return a key twice. */
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (!kept || strcmp(sites[kept - 1].peer, sites[i].peer) != 0)
			sites[kept++] = sites[i];
	n = kept;
	*out = sites;
	*count_out = n;
	return 0;
}
