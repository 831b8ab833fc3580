#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/alloc.h"

static void __attribute__((noreturn)) out_of_memory(size_t size)
{
	char msg[96];
	int n = snprintf(msg, sizeof msg, "level=error event=out_of_memory bytes=%zu\n", size);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	abort();
}

void *vr_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

void *vr_calloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		out_of_memory(count * size);
	return p;
}

void *vr_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

char *vr_strdup(const char *s)
{
	return vr_strndup(s, strlen(s));
}

char *vr_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = vr_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *vr_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(0);
	return s;
}
