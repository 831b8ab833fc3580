#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vrcloud/timefmt.h"

int64_t vr_time_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t vr_time_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vr_time_format(char out[VR_TIME_LEN + 1], int64_t usec)
{
	int64_t sec = usec / 1000000;
	int64_t rem = usec % 1000000;
	if (rem < 0) {
		rem += 1000000;
		sec -= 1;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	/* Fields are bounded by gmtime_r; unsigned char casts tell the
	 * compiler so. */
	char buf[64];
	snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
		 (unsigned)((tm.tm_year + 1900) % 10000), (unsigned char)(tm.tm_mon + 1),
		 (unsigned char)tm.tm_mday, (unsigned char)tm.tm_hour, (unsigned char)tm.tm_min,
		 (unsigned char)tm.tm_sec, (unsigned)(rem / 1000));
	memcpy(out, buf, VR_TIME_LEN);
	out[VR_TIME_LEN] = '\0';
}
