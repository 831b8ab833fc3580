/* Counters of vrcloud-proxy and its /metrics endpoint (docs/tunnels.md,
 * "Operations"). The loop and the verifier threads count with relaxed
 * atomic operations; the endpoint's own thread (libmicrohttpd) reads them
 * when scraped. Nothing here takes a lock. */
#ifndef VRCLOUD_PROXY_METRICS_H
#define VRCLOUD_PROXY_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/buf.h"

/* Connections by kind: agents' control, data and reverse connections once
 * their hello is accepted; workers' connections on the internal port. */
enum vr_proxy_kind {
	VR_PROXY_KIND_CONTROL,
	VR_PROXY_KIND_DATA,
	VR_PROXY_KIND_REVERSE,
	VR_PROXY_KIND_INTERNAL,
	VR_PROXY_KINDS,
	VR_PROXY_KIND_NONE = VR_PROXY_KINDS, /* not counted (yet) */
};

/* The reasons of REFUSE frames sent to agents (docs/tunnels.md, section
 * 1, plus the limits). */
enum vr_proxy_refusal {
	VR_PROXY_REFUSED_PROTOCOL,
	VR_PROXY_REFUSED_CREDENTIAL,
	VR_PROXY_REFUSED_UNAVAILABLE,
	VR_PROXY_REFUSED_REPLICATION,
	VR_PROXY_REFUSED_WORKER,
	VR_PROXY_REFUSED_SHUTDOWN,
	VR_PROXY_REFUSED_COOKIE,
	VR_PROXY_REFUSED_RATE_LIMITED,
	VR_PROXY_REFUSED_SITE_LIMIT,
	VR_PROXY_REFUSALS,
};

enum vr_proxy_stitch {
	VR_PROXY_STITCH_DONE,	 /* a worker's request met its agent */
	VR_PROXY_STITCH_FAILED,	 /* refused: malformed, no holder, Redis away, stopping */
	VR_PROXY_STITCH_EXPIRED, /* no agent came within reverse_timeout */
	VR_PROXY_STITCHES,
};

enum vr_proxy_api_call {
	VR_PROXY_CALL_VERIFY, /* POST /api/internal/sites/verify */
	VR_PROXY_CALL_ROUTE,  /* POST /api/internal/replications/{id}/server */
	VR_PROXY_CALLS,
};

typedef atomic_uint_fast64_t vr_counter;

struct vr_proxy_stats {
	vr_counter open[VR_PROXY_KINDS];
	vr_counter accepted[VR_PROXY_KINDS];
	vr_counter pending;		 /* public connections before their hello is accepted */
	vr_counter accepts_public;	 /* TCP connections taken on the public port */
	vr_counter accepts_dropped;	 /* closed at accept: max_connections */
	vr_counter bytes_up, bytes_down; /* agent -> worker, worker -> agent */
	vr_counter refused[VR_PROXY_REFUSALS];
	vr_counter revoked; /* control connections cut when a re-check failed */
	vr_counter stitches[VR_PROXY_STITCHES];
	vr_counter handshake_failures;
	vr_counter reloads_ok, reloads_failed;
	vr_counter api_calls[VR_PROXY_CALLS];
	vr_counter limited_addresses; /* gauge: the failed-hello table's entries */
	vr_counter limiter_evictions;
	atomic_int_fast64_t cert_not_after; /* Unix seconds; 0 unknown */
	atomic_int_fast64_t started;	    /* Unix seconds */
};

static inline void vr_proxy_count(vr_counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void vr_proxy_count_n(vr_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void vr_proxy_uncount(vr_counter *c)
{
	atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

static inline void vr_proxy_gauge_set(vr_counter *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

/* The reason token's counter index; VR_PROXY_REFUSALS for an unknown one. */
enum vr_proxy_refusal vr_proxy_refusal_of(const char *reason);
const char *vr_proxy_kind_label(enum vr_proxy_kind kind);

/* The exposition text (Prometheus text format 0.0.4) of stats, for a
 * proxy named name. */
void vr_proxy_metrics_render(struct vr_buf *out, const struct vr_proxy_stats *stats,
			     const char *name);

struct vr_proxy_metrics;

/* Serve GET /metrics on address (host:port; port 0: any) from a thread of
 * its own. *port_out: the bound port. Returns 0, VR_ECONFIG (*error_out)
 * or VR_EIO (*error_out). */
int vr_proxy_metrics_start(struct vr_proxy_metrics **out, const char *address,
			   const struct vr_proxy_stats *stats, const char *name, unsigned *port_out,
			   char **error_out);
void vr_proxy_metrics_stop(struct vr_proxy_metrics *metrics);

#endif
