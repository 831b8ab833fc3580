#include <stdio.h>
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
	snprintf(out, VR_TIME_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, (int)(rem / 1000));
}
