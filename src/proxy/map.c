/* A string-keyed hash map (chained, FNV-1a, grows at load 1) for the
 * proxy's site table and credential cache. Keys are copied; values are the
 * caller's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"
#include "vrcloud/alloc.h"

struct map_entry {
	char *key;
	void *value;
	struct map_entry *next;
};

struct vr_proxy_map {
	struct map_entry **buckets;
	size_t nbuckets;
	size_t count;
};

static uint64_t hash(const char *key)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return h;
}

struct vr_proxy_map *vr_proxy_map_new(void)
{
	struct vr_proxy_map *map = vr_calloc(1, sizeof *map);
	map->nbuckets = 64;
	map->buckets = vr_calloc(map->nbuckets, sizeof *map->buckets);
	return map;
}

void vr_proxy_map_free(struct vr_proxy_map *map, void (*free_value)(void *))
{
	if (!map)
		return;
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct map_entry *e = map->buckets[i];
		while (e) {
			struct map_entry *next = e->next;
			if (free_value)
				free_value(e->value);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(map->buckets);
	free(map);
}

size_t vr_proxy_map_count(const struct vr_proxy_map *map)
{
	return map->count;
}

static struct map_entry **find(const struct vr_proxy_map *map, const char *key)
{
	struct map_entry **slot = &map->buckets[hash(key) % map->nbuckets];
	while (*slot && strcmp((*slot)->key, key) != 0)
		slot = &(*slot)->next;
	return slot;
}

void *vr_proxy_map_get(const struct vr_proxy_map *map, const char *key)
{
	struct map_entry *e = *find(map, key);
	return e ? e->value : NULL;
}

static void grow(struct vr_proxy_map *map)
{
	size_t n = map->nbuckets * 2;
	struct map_entry **buckets = vr_calloc(n, sizeof *buckets);
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct map_entry *e = map->buckets[i];
		while (e) {
			struct map_entry *next = e->next;
			size_t b = hash(e->key) % n;
			e->next = buckets[b];
			buckets[b] = e;
			e = next;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->nbuckets = n;
}

void *vr_proxy_map_put(struct vr_proxy_map *map, const char *key, void *value)
{
	struct map_entry **slot = find(map, key);
	if (*slot) {
		void *old = (*slot)->value;
		(*slot)->value = value;
		return old;
	}
	struct map_entry *e = vr_calloc(1, sizeof *e);
	e->key = vr_strdup(key);
	e->value = value;
	*slot = e;
	if (++map->count > map->nbuckets)
		grow(map);
	return NULL;
}

void *vr_proxy_map_del(struct vr_proxy_map *map, const char *key)
{
	struct map_entry **slot = find(map, key);
	struct map_entry *e = *slot;
	if (!e)
		return NULL;
	void *value = e->value;
	*slot = e->next;
	free(e->key);
	free(e);
	map->count--;
	return value;
}

void vr_proxy_map_each(struct vr_proxy_map *map,
		       bool (*fn)(const char *key, void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct map_entry **slot = &map->buckets[i];
		while (*slot) {
			struct map_entry *e = *slot;
			if (fn(e->key, e->value, arg)) {
				slot = &e->next;
				continue;
			}
			*slot = e->next;
			free(e->key);
			free(e);
			map->count--;
		}
	}
}
