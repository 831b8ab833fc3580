/* Limits of vrcloud-proxy (docs/tunnels.md, "Operations"): a token bucket
 * of failed hellos per source address, kept in a table of fixed size with
 * the least recently used address evicted first, and the count of data
 * connections open per site. Loop thread only; no I/O, so the table is
 * tested on its own (tests/unit/test_proxy_limits). */
#ifndef VRCLOUD_PROXY_LIMITS_H
#define VRCLOUD_PROXY_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A source address as the limiter keys it: an IPv4 address (IPv4-mapped
 * IPv6 ones too), or the /64 prefix of an IPv6 address (one host of IPv6
 * commonly holds a whole /64). */
struct vr_proxy_addr {
	unsigned char bytes[8];
	unsigned char len; /* 4 or 8; 0: no address (never limited) */
};

void vr_proxy_addr_from(struct vr_proxy_addr *out, const struct sockaddr *addr);
/* The address for logs ("192.0.2.7", "2001:db8:1:2::/64"). */
void vr_proxy_addr_name(const struct vr_proxy_addr *addr, char *out, size_t size);

struct vr_proxy_limiter;

/* A table of at most max_entries addresses, each with a bucket of burst
 * tokens refilled at per_minute tokens a minute. burst 0: no limit (every
 * take succeeds and nothing is kept). */
struct vr_proxy_limiter *vr_proxy_limiter_new(size_t max_entries, unsigned burst,
					      unsigned per_minute);
void vr_proxy_limiter_free(struct vr_proxy_limiter *limiter);

/* Take one token of addr's bucket at now_ms: true when there was one. An
 * address not in the table enters it with a full bucket (evicting the
 * least recently used address when the table is full). */
bool vr_proxy_limiter_take(struct vr_proxy_limiter *limiter, const struct vr_proxy_addr *addr,
			   uint64_t now_ms);
/* Give back a token taken for a hello that did not fail (never above the
 * burst; nothing when addr was evicted since). */
void vr_proxy_limiter_give(struct vr_proxy_limiter *limiter, const struct vr_proxy_addr *addr);
/* A refused take of addr at now_ms is to be logged: true at most once per
 * interval_ms per address; *suppressed_out is the number of refusals not
 * logged since the last time. */
bool vr_proxy_limiter_log_due(struct vr_proxy_limiter *limiter, const struct vr_proxy_addr *addr,
			      uint64_t now_ms, uint64_t interval_ms, uint64_t *suppressed_out);
/* Addresses in the table now; addresses evicted to make room, in all. */
size_t vr_proxy_limiter_count(const struct vr_proxy_limiter *limiter);
uint64_t vr_proxy_limiter_evictions(const struct vr_proxy_limiter *limiter);

/* --- data connections per site ----------------------------------------- */

struct vr_proxy_site_counts;

struct vr_proxy_site_counts *vr_proxy_site_counts_new(void);
void vr_proxy_site_counts_free(struct vr_proxy_site_counts *counts);
/* Count one more connection of peer_id unless it has max already (max 0:
 * no limit): true when counted. */
bool vr_proxy_site_counts_take(struct vr_proxy_site_counts *counts, const char *peer_id,
			       unsigned max);
/* One connection of peer_id ended. */
void vr_proxy_site_counts_give(struct vr_proxy_site_counts *counts, const char *peer_id);
/* Connections of peer_id open now. */
unsigned vr_proxy_site_counts_get(const struct vr_proxy_site_counts *counts, const char *peer_id);

#endif
