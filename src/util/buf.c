#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/buf.h"
#include "vrcloud/err.h"

void vr_buf_init(struct vr_buf *buf, size_t limit)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->limit = limit;
}

static int reserve(struct vr_buf *buf, size_t extra)
{
	if (buf->limit && (extra > buf->limit || buf->len > buf->limit - extra))
		return VR_ETOOBIG;
	/* len + extra + 1 must not wrap, nor the doubling below overflow */
	if (extra > SIZE_MAX / 2 - buf->len)
		return VR_ENOMEM;
	size_t need = buf->len + extra + 1;
	if (need <= buf->cap)
		return 0;
	size_t cap = buf->cap ? buf->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(buf->data, cap);
	if (!p)
		return VR_ENOMEM;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

int vr_buf_append(struct vr_buf *buf, const void *data, size_t len)
{
	int rc = reserve(buf, len);
	if (rc)
		return rc;
	if (len)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int vr_buf_appends(struct vr_buf *buf, const char *s)
{
	return vr_buf_append(buf, s, strlen(s));
}

int vr_buf_printf(struct vr_buf *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return VR_EINVAL;
	int rc = reserve(buf, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)n;
	return 0;
}

char *vr_buf_take(struct vr_buf *buf, size_t *len_out)
{
	char *data = buf->data;
	if (len_out)
		*len_out = buf->len;
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	return data;
}

void vr_buf_free(struct vr_buf *buf)
{
	if (!buf)
		return;
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}
