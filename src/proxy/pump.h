/* Between the connection's state machine (conn.c) and its data pump
 * (pump.c): internal to vrcloud-proxy's connections. */
#ifndef VRCLOUD_PROXY_PUMP_H
#define VRCLOUD_PROXY_PUMP_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/internal.h"
#include "vrcloud/loop.h"

/* Bytes waiting in a byte queue. */
static inline size_t pb_len(const struct pipebuf *b)
{
	return b->end - b->start;
}

/* --- conn.c, for the pump ------------------------------------------------ */

/* TCP keepalive on a socket of a connection. */
void vr_proxy_keepalive(int fd);
/* Close one of the connection's sockets (reset: with an RST). */
void vr_proxy_conn_close_fd(struct conn *conn, int *fd, bool *watched, bool reset);
/* Ask the loop for what the connection waits for; -1 after a close. */
int vr_proxy_conn_interest(struct conn *conn);
/* What an SSL call's failure means: 1 = try again later, 0 = the peer
 * closed, -1 = the connection is gone (the caller closes it). */
int vr_proxy_conn_tls_retry(struct conn *conn, int ret, bool reading);
/* Queue a REFUSE frame and enter CS_CLOSING; -1 after a close. */
int vr_proxy_conn_refuse(struct conn *conn, const char *reason, const char *message);

/* --- pump.c -------------------------------------------------------------- */

/* A verified data connection: connect to the replication's worker. */
int vr_proxy_data_accepted(struct conn *conn);
/* A verified reverse connection: stitch it to the worker waiting with its
 * cookie. */
int vr_proxy_reverse_accepted(struct conn *conn);
/* Move bytes until nothing moves, then ask the loop for what blocked. */
int vr_proxy_data_pump(struct conn *conn);
/* The worker did not take the connection: log it, forget the route. */
void vr_proxy_worker_unreachable(struct conn *conn, const char *error);
/* Loop callback of the worker's socket. */
void vr_proxy_on_worker(struct vr_loop *loop, int fd, unsigned events, void *arg);

#endif
