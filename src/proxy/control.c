/* The frames of a control connection once its site is known
 * (docs/tunnels.md): heartbeats answered, commands from the site's Redis
 * list delivered in a bounded window and removed from the list only after
 * the agent's ack, CONNECT frames for reverse connections. The connection
 * itself (TLS, the hello, the loop) is conn.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

static struct delivery *delivery_find(struct conn *conn, const char *id)
{
	for (size_t i = 0; i < conn->ndeliveries; i++)
		if (strcmp(conn->deliveries[i].id, id) == 0)
			return &conn->deliveries[i];
	return NULL;
}

/* Send the removals that wait (Redis was away when their ack came). */
static void send_removals(struct conn *conn)
{
	if (!vr_proxy_registry_ready(conn->proxy->registry))
		return;
	for (size_t i = 0; i < conn->ndeliveries; i++) {
		struct delivery *d = &conn->deliveries[i];
		if (d->state != DL_ACKED)
			continue;
		if (!vr_proxy_registry_remove(conn->proxy->registry, conn->site.peer_id, d->id,
					      d->element, d->len))
			return;
		d->state = DL_REMOVING;
	}
}

static int on_ack(struct conn *conn, const struct vr_tunnel_frame *frame)
{
	struct vr_tunnel_fields fields;
	const char *reason = NULL;
	if (vr_tunnel_fields_parse(&fields, frame->payload, frame->len, &reason)) {
		vr_proxy_conn_close(conn, "the agent sent a malformed ack");
		return -1;
	}
	const char *id = vr_tunnel_field(&fields, "id");
	struct delivery *d = id ? delivery_find(conn, id) : NULL;
	if (d && d->state == DL_SENT) {
		d->state = DL_ACKED;
		vr_log_info("command_acked", "peer", conn->site.peer_id, "id", d->id, "status",
			    vr_tunnel_field(&fields, "status"));
		send_removals(conn);
	} else {
		vr_log_debug("ack_ignored", "peer", conn->site.peer_id, "id",
			     id && vr_tunnel_id_valid(id) ? id : NULL);
	}
	vr_tunnel_fields_free(&fields);
	return 0;
}

int vr_proxy_control_frame(struct conn *conn, const struct vr_tunnel_frame *frame)
{
	struct vr_proxy *p = conn->proxy;
	conn->deadline_ms = vr_loop_now_ms() + 3000u * (uint64_t)p->config->heartbeat_interval;
	switch (frame->type) {
	case VR_FRAME_HEARTBEAT:
		if (vr_proxy_conn_queue_frame(conn, VR_FRAME_HEARTBEAT, frame->payload, frame->len))
			return -1;
		vr_proxy_registry_renew(p->registry, conn->site.peer_id);
		/* A wake-up may have been lost: look at the list anyway. */
		vr_proxy_conn_fetch(conn);
		return 0;
	case VR_FRAME_ACK: return on_ack(conn, frame);
	default:
		vr_proxy_conn_close(conn, "the agent sent a frame a control connection does "
					  "not take");
		return -1;
	}
}

void vr_proxy_conn_fetch(struct conn *conn)
{
	if (conn->state != CS_CONTROL || conn->dead ||
	    !vr_proxy_registry_ready(conn->proxy->registry))
		return;
	if (conn->fetching) {
		conn->fetch_again = true;
		return;
	}
	conn->fetch_again = false;
	conn->fetching = vr_proxy_registry_fetch(conn->proxy->registry, conn->site.peer_id);
}

void vr_proxy_conn_commands(struct conn *conn, const char *const *elements, const size_t *lens,
			    size_t count)
{
	conn->fetching = false;
	if (conn->state != CS_CONTROL)
		return;
	send_removals(conn);
	for (size_t i = 0; i < count; i++) {
		struct vr_tunnel_command command;
		const char *reason = NULL;
		if (vr_tunnel_command_parse(&command, elements[i], lens[i], &reason)) {
			/* It would block the list for ever. */
			vr_log_warn("command_dropped", "peer", conn->site.peer_id, "error", reason);
			vr_proxy_registry_remove(conn->proxy->registry, conn->site.peer_id, NULL,
						 elements[i], lens[i]);
			continue;
		}
		if (delivery_find(conn, command.id))
			continue;
		if (conn->ndeliveries == VR_PROXY_WINDOW)
			break;
		struct delivery *d = &conn->deliveries[conn->ndeliveries++];
		memcpy(d->id, command.id, sizeof d->id);
		d->element = vr_malloc(lens[i] ? lens[i] : 1);
		memcpy(d->element, elements[i], lens[i]);
		d->len = lens[i];
		d->state = DL_SENT;
		if (vr_proxy_conn_queue_frame(conn, VR_FRAME_COMMAND, elements[i], lens[i]))
			return;
		vr_log_info("command_sent", "peer", conn->site.peer_id, "id", command.id, "name",
			    command.name);
	}
	if (conn->fetch_again)
		vr_proxy_conn_fetch(conn);
	vr_proxy_conn_service(conn);
}

void vr_proxy_conn_connect(struct conn *conn, const struct vr_tunnel_connect *connect)
{
	if (conn->state != CS_CONTROL || conn->dead)
		return;
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	vr_tunnel_field_append(&payload, "address", connect->address);
	vr_tunnel_field_append(&payload, "cookie", connect->cookie);
	if (connect->replication[0])
		vr_tunnel_field_append(&payload, "replication", connect->replication);
	vr_tunnel_field_append(&payload, "purpose", connect->purpose);
	int rc = vr_proxy_conn_queue_frame(conn, VR_FRAME_CONNECT, payload.data, payload.len);
	explicit_bzero(payload.data, payload.len);
	vr_buf_free(&payload);
	if (rc)
		return;
	vr_log_info("connect_sent", "peer", conn->site.peer_id, "replication",
		    connect->replication[0] ? connect->replication : NULL, "purpose",
		    connect->purpose, "address", connect->address);
	vr_proxy_conn_service(conn);
}

void vr_proxy_conn_removal_lost(struct conn *conn, const char *id)
{
	struct delivery *d = delivery_find(conn, id);
	if (d && d->state == DL_REMOVING)
		d->state = DL_ACKED;
}

void vr_proxy_conn_command_removed(struct conn *conn, const char *id)
{
	for (size_t i = 0; i < conn->ndeliveries; i++) {
		if (strcmp(conn->deliveries[i].id, id) != 0)
			continue;
		free(conn->deliveries[i].element);
		memmove(&conn->deliveries[i], &conn->deliveries[i + 1],
			(conn->ndeliveries - i - 1) * sizeof conn->deliveries[0]);
		conn->ndeliveries--;
		break;
	}
	/* Room in the window: more may wait. */
	vr_proxy_conn_fetch(conn);
}
