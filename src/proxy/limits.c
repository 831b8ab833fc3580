/* Limits of vrcloud-proxy (limits.h): the failed-hello buckets per source
 * address and the data connections per site.
 *
 * The address table is allocated once: max_entries entries, chained in a
 * hash of a power-of-two size with a random seed (an attacker choosing its
 * addresses cannot aim at one chain), and kept on a list from the most to
 * the least recently used, whose tail makes room for a new address when
 * the table is full. A bucket refills lazily when it is touched. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "proxy/internal.h"
#include "proxy/limits.h"
#include "vrcloud/alloc.h"

#define NONE UINT32_MAX

void vr_proxy_addr_from(struct vr_proxy_addr *out, const struct sockaddr *addr)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memset(out, 0, sizeof *out);
	if (addr->sa_family == AF_INET) {
		memcpy(out->bytes, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		out->len = 4;
	} else if (addr->sa_family == AF_INET6) {
		const unsigned char *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		if (memcmp(b, mapped, sizeof mapped) == 0) {
			memcpy(out->bytes, b + 12, 4);
			out->len = 4;
		} else {
			memcpy(out->bytes, b, 8);
			out->len = 8;
		}
	}
}

void vr_proxy_addr_name(const struct vr_proxy_addr *addr, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN] = "?";
	if (addr->len == 4) {
		inet_ntop(AF_INET, addr->bytes, text, sizeof text);
		snprintf(out, size, "%s", text);
	} else if (addr->len == 8) {
		unsigned char full[16] = {0};
		memcpy(full, addr->bytes, 8);
		inet_ntop(AF_INET6, full, text, sizeof text);
		snprintf(out, size, "%s/64", text);
	} else {
		snprintf(out, size, "?");
	}
}

/* --- the address table ---------------------------------------------------- */

struct entry {
	struct vr_proxy_addr key;
	uint32_t chain;	       /* next entry of the same hash bucket */
	uint32_t newer, older; /* the LRU list */
	double tokens;
	uint64_t refilled_ms;
	uint64_t logged_ms; /* last log line of a refusal; 0 never */
	uint64_t suppressed;
};

struct vr_proxy_limiter {
	unsigned burst;
	double per_ms; /* tokens a millisecond */
	uint64_t seed;
	struct entry *entries;
	uint32_t max, used;
	uint32_t *heads; /* hash bucket -> first entry */
	uint32_t mask;
	uint32_t newest, oldest;
	uint32_t free_list; /* through chain */
	uint64_t evictions;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint32_t hash_of(const struct vr_proxy_limiter *l, const struct vr_proxy_addr *a)
{
	uint64_t word = 0;
	memcpy(&word, a->bytes, sizeof word);
	return (uint32_t)(mix(word ^ l->seed) ^ mix(l->seed + a->len)) & l->mask;
}

static bool same(const struct vr_proxy_addr *a, const struct vr_proxy_addr *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

struct vr_proxy_limiter *vr_proxy_limiter_new(size_t max_entries, unsigned burst,
					      unsigned per_minute)
{
	struct vr_proxy_limiter *l = vr_calloc(1, sizeof *l);
	l->burst = burst;
	l->per_ms = (double)per_minute / 60000.0;
	if (!burst)
		return l;
	if (max_entries < 1)
		max_entries = 1;
	if (max_entries > (1u << 24))
		max_entries = 1u << 24;
	l->max = (uint32_t)max_entries;
	uint32_t size = 1;
	while (size < l->max)
		size <<= 1;
	l->mask = size - 1;
	l->entries = vr_calloc(l->max, sizeof *l->entries);
	l->heads = vr_malloc((size_t)size * sizeof *l->heads);
	for (uint32_t i = 0; i < size; i++)
		l->heads[i] = NONE;
	l->newest = l->oldest = NONE;
	l->free_list = NONE;
	if (getrandom(&l->seed, sizeof l->seed, GRND_NONBLOCK) != (ssize_t)sizeof l->seed)
		l->seed = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ULL;
	return l;
}

void vr_proxy_limiter_free(struct vr_proxy_limiter *l)
{
	if (!l)
		return;
	free(l->entries);
	free(l->heads);
	free(l);
}

static void lru_unlink(struct vr_proxy_limiter *l, uint32_t i)
{
	struct entry *e = &l->entries[i];
	if (e->newer != NONE)
		l->entries[e->newer].older = e->older;
	else
		l->newest = e->older;
	if (e->older != NONE)
		l->entries[e->older].newer = e->newer;
	else
		l->oldest = e->newer;
	e->newer = e->older = NONE;
}

static void lru_push(struct vr_proxy_limiter *l, uint32_t i)
{
	struct entry *e = &l->entries[i];
	e->newer = NONE;
	e->older = l->newest;
	if (l->newest != NONE)
		l->entries[l->newest].newer = i;
	l->newest = i;
	if (l->oldest == NONE)
		l->oldest = i;
}

static uint32_t find(const struct vr_proxy_limiter *l, const struct vr_proxy_addr *a)
{
	for (uint32_t i = l->heads[hash_of(l, a)]; i != NONE; i = l->entries[i].chain)
		if (same(&l->entries[i].key, a))
			return i;
	return NONE;
}

static void chain_remove(struct vr_proxy_limiter *l, uint32_t i)
{
	uint32_t *link = &l->heads[hash_of(l, &l->entries[i].key)];
	while (*link != NONE && *link != i)
		link = &l->entries[*link].chain;
	if (*link == i)
		*link = l->entries[i].chain;
}

/* A free entry: an unused one, else the least recently used address's. */
static uint32_t entry_new(struct vr_proxy_limiter *l)
{
	if (l->used < l->max)
		return l->used++;
	uint32_t i = l->oldest;
	lru_unlink(l, i);
	chain_remove(l, i);
	l->evictions++;
	return i;
}

/* addr's entry, made with a full bucket when absent, refilled to now and
 * moved to the front of the list. */
static struct entry *touch(struct vr_proxy_limiter *l, const struct vr_proxy_addr *a,
			   uint64_t now_ms)
{
	uint32_t i = find(l, a);
	if (i == NONE) {
		i = entry_new(l);
		struct entry *e = &l->entries[i];
		memset(e, 0, sizeof *e);
		e->key = *a;
		e->tokens = l->burst;
		e->refilled_ms = now_ms;
		uint32_t h = hash_of(l, a);
		e->chain = l->heads[h];
		l->heads[h] = i;
		lru_push(l, i);
		return e;
	}
	struct entry *e = &l->entries[i];
	if (now_ms > e->refilled_ms) {
		e->tokens += (double)(now_ms - e->refilled_ms) * l->per_ms;
		if (e->tokens > l->burst)
			e->tokens = l->burst;
	}
	e->refilled_ms = now_ms;
	lru_unlink(l, i);
	lru_push(l, i);
	return e;
}

bool vr_proxy_limiter_take(struct vr_proxy_limiter *l, const struct vr_proxy_addr *a,
			   uint64_t now_ms)
{
	if (!l->burst || !a->len)
		return true;
	struct entry *e = touch(l, a, now_ms);
	if (e->tokens < 1.0)
		return false;
	e->tokens -= 1.0;
	return true;
}

void vr_proxy_limiter_give(struct vr_proxy_limiter *l, const struct vr_proxy_addr *a)
{
	if (!l->burst || !a->len)
		return;
	uint32_t i = find(l, a);
	if (i == NONE)
		return;
	struct entry *e = &l->entries[i];
	e->tokens += 1.0;
	if (e->tokens > l->burst)
		e->tokens = l->burst;
}

bool vr_proxy_limiter_log_due(struct vr_proxy_limiter *l, const struct vr_proxy_addr *a,
			      uint64_t now_ms, uint64_t interval_ms, uint64_t *suppressed_out)
{
	*suppressed_out = 0;
	if (!l->burst || !a->len)
		return true;
	uint32_t i = find(l, a);
	if (i == NONE)
		return true;
	struct entry *e = &l->entries[i];
	if (e->logged_ms && now_ms - e->logged_ms < interval_ms) {
		e->suppressed++;
		return false;
	}
	*suppressed_out = e->suppressed;
	e->suppressed = 0;
	e->logged_ms = now_ms ? now_ms : 1;
	return true;
}

size_t vr_proxy_limiter_count(const struct vr_proxy_limiter *l)
{
	return l->used;
}

uint64_t vr_proxy_limiter_evictions(const struct vr_proxy_limiter *l)
{
	return l->evictions;
}

/* --- data connections per site -------------------------------------------------- */

struct vr_proxy_site_counts {
	struct vr_proxy_map *map; /* peer id -> unsigned count (allocated) */
};

struct vr_proxy_site_counts *vr_proxy_site_counts_new(void)
{
	struct vr_proxy_site_counts *c = vr_calloc(1, sizeof *c);
	c->map = vr_proxy_map_new();
	return c;
}

static void free_count(void *p)
{
	free(p);
}

void vr_proxy_site_counts_free(struct vr_proxy_site_counts *c)
{
	if (!c)
		return;
	vr_proxy_map_free(c->map, free_count);
	free(c);
}

bool vr_proxy_site_counts_take(struct vr_proxy_site_counts *c, const char *peer_id, unsigned max)
{
	unsigned *n = vr_proxy_map_get(c->map, peer_id);
	if (max && n && *n >= max)
		return false;
	if (!n) {
		n = vr_calloc(1, sizeof *n);
		vr_proxy_map_put(c->map, peer_id, n);
	}
	(*n)++;
	return true;
}

void vr_proxy_site_counts_give(struct vr_proxy_site_counts *c, const char *peer_id)
{
	unsigned *n = vr_proxy_map_get(c->map, peer_id);
	if (!n)
		return;
	if (--*n == 0)
		free(vr_proxy_map_del(c->map, peer_id));
}

unsigned vr_proxy_site_counts_get(const struct vr_proxy_site_counts *c, const char *peer_id)
{
	const unsigned *n = vr_proxy_map_get(c->map, peer_id);
	return n ? *n : 0;
}
