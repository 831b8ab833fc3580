/* A growable byte buffer, always NUL-terminated, with an optional cap.
 * Used for request bodies (capped) and rendered documents (uncapped). */
#ifndef VRCLOUD_BUF_H
#define VRCLOUD_BUF_H

#include <stddef.h>

struct vr_buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	size_t limit; /* 0 = unlimited; appends past it fail with VR_ETOOBIG */
};

void vr_buf_init(struct vr_buf *buf, size_t limit);
/* Append len bytes; returns 0, VR_ETOOBIG (buffer unchanged) or VR_ENOMEM. */
int vr_buf_append(struct vr_buf *buf, const void *data, size_t len);
int vr_buf_appends(struct vr_buf *buf, const char *s);
int vr_buf_printf(struct vr_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the contents to the caller (who frees them) and reset the buffer. */
char *vr_buf_take(struct vr_buf *buf, size_t *len_out);
void vr_buf_free(struct vr_buf *buf);

#endif
