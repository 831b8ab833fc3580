/* Timestamps on the wire: ISO-8601 UTC with milliseconds and a literal Z,
 * e.g. 2016-04-05T10:11:12.345Z. Internally: microseconds since the epoch. */
#ifndef VRCLOUD_TIMEFMT_H
#define VRCLOUD_TIMEFMT_H

#include <stdint.h>

#define VR_TIME_LEN 24

int64_t vr_time_now_us(void);
int64_t vr_time_mono_us(void);
/* Format usec since the epoch; out needs VR_TIME_LEN + 1 bytes. */
void vr_time_format(char out[VR_TIME_LEN + 1], int64_t usec);

#endif
