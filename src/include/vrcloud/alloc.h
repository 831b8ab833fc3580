/* Allocation wrappers for small objects: they abort the process on
 * out-of-memory instead of returning NULL, so callers need no checks.
 * Bodies and data blocks use plain malloc with explicit limits instead. */
#ifndef VRCLOUD_ALLOC_H
#define VRCLOUD_ALLOC_H

#include <stddef.h>

void *vr_malloc(size_t size);
void *vr_calloc(size_t count, size_t size);
void *vr_realloc(void *ptr, size_t size);
char *vr_strdup(const char *s);
char *vr_strndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *vr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
