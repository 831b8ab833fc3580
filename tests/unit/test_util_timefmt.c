/* Wire timestamps: YYYY-MM-DDTHH:MM:SS.mmmZ from microseconds since the epoch. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vrcloud/timefmt.h"

#define S 1000000LL

static void expect_time(int64_t usec, const char *text)
{
	char out[VR_TIME_LEN + 1];
	memset(out, '#', sizeof out);
	vr_time_format(out, usec);
	cr_expect_str_eq(out, text, "usec %lld", (long long)usec);
}

/* Exactly YYYY-MM-DDTHH:MM:SS.mmmZ, digits where digits belong. */
static void expect_shape(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	cr_assert_eq(strlen(t), VR_TIME_LEN, "'%s'", t);
	cr_assert_eq(sizeof shape - 1, VR_TIME_LEN);
	for (size_t i = 0; i < VR_TIME_LEN; i++) {
		if (shape[i] == 'd')
			cr_assert(isdigit((unsigned char)t[i]), "'%s' at %zu", t, i);
		else
			cr_assert_eq(t[i], shape[i], "'%s' at %zu", t, i);
	}
}

Test(timefmt, epoch)
{
	expect_time(0, "1970-01-01T00:00:00.000Z");
}

Test(timefmt, milliseconds_truncate)
{
	expect_time(1, "1970-01-01T00:00:00.000Z");
	expect_time(999, "1970-01-01T00:00:00.000Z");
	expect_time(1000, "1970-01-01T00:00:00.001Z");
	expect_time(1234567, "1970-01-01T00:00:01.234Z");
	expect_time(S - 1, "1970-01-01T00:00:00.999Z");
	expect_time(1459851072 * S + 345678, "2016-04-05T10:11:12.345Z");
}

Test(timefmt, calendar)
{
	expect_time(951868799 * S + 999000, "2000-02-29T23:59:59.999Z");
	expect_time(951868800 * S, "2000-03-01T00:00:00.000Z");
	expect_time(2147483648LL * S, "2038-01-19T03:14:08.000Z");
	expect_time(253402300799LL * S + 5000, "9999-12-31T23:59:59.005Z");
}

Test(timefmt, negative_rounds_down)
{
	expect_time(-1, "1969-12-31T23:59:59.999Z");
	expect_time(-1000, "1969-12-31T23:59:59.999Z");
	expect_time(-1001, "1969-12-31T23:59:59.998Z");
	expect_time(-S, "1969-12-31T23:59:59.000Z");
	expect_time(-S - 500000, "1969-12-31T23:59:58.500Z");
	expect_time(-2208988800LL * S, "1900-01-01T00:00:00.000Z");
}

Test(timefmt, shape_over_the_range)
{
	/* a deterministic sweep from 1900 to 9999 */
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t usec = -2208988800LL * S +
			       (int64_t)(x % (uint64_t)((253402300799LL + 2208988800LL) * S));
		char out[VR_TIME_LEN + 1];
		vr_time_format(out, usec);
		expect_shape(out);
	}
}

Test(timefmt, agrees_with_gmtime)
{
	time_t t = 1700000000;
	for (int i = 0; i < 1000; i++, t += 86399 * 7 + 3607) {
		struct tm tm;
		gmtime_r(&t, &tm);
		char want[64];
		strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
		strcat(want, ".042Z");
		char out[VR_TIME_LEN + 1];
		vr_time_format(out, (int64_t)t * S + 42999);
		cr_assert_str_eq(out, want);
	}
}

Test(timefmt, now_is_now)
{
	/* time() reads the coarse clock, which may lag the precise one by a
	 * tick: compare with the clock vr_time_now_us reads. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t before = (int64_t)ts.tv_sec * S + ts.tv_nsec / 1000;
	int64_t now = vr_time_now_us();
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t after = (int64_t)ts.tv_sec * S + ts.tv_nsec / 1000;
	cr_assert_geq(now, before);
	cr_assert_leq(now, after);

	int64_t m1 = vr_time_mono_us();
	int64_t m2 = vr_time_mono_us();
	cr_assert_geq(m2, m1, "the monotonic clock went back");
	cr_assert_gt(m1, 0);
}
