/* Retention of point-in-time instances (src/api/retention.c,
 * docs/instances.md): the bucket rule, the newest and pinned instances,
 * and that applying the rules after each new instance keeps exactly what
 * applying them once to the whole history keeps. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* 2026-01-01T00:00:00Z: a day boundary. */
#define DAY0 INT64_C(1767225600)

static const struct vr_retention_rule hourly_daily[] = {{24, 60}, {7, 1440}};

/* Keep after every arrival: times[0..n) in arrival order (oldest first).
 * Returns the survivors' arrival indexes, newest first, in *out. */
static size_t incremental(const struct vr_retention_rule *rules, size_t nrules,
			  const int64_t *arrivals, size_t n, const bool *pinned_at, size_t *out)
{
	size_t *live = calloc(n, sizeof *live); /* arrival indexes, newest first */
	size_t nlive = 0;
	int64_t *times = calloc(n, sizeof *times);
	bool *pinned = calloc(n, sizeof *pinned);
	bool *keep = calloc(n, sizeof *keep);
	for (size_t a = 0; a < n; a++) {
		memmove(live + 1, live, nlive * sizeof *live);
		live[0] = a;
		nlive++;
		for (size_t i = 0; i < nlive; i++) {
			times[i] = arrivals[live[i]];
			pinned[i] = pinned_at && pinned_at[live[i]];
		}
		cr_assert_eq(vr_retention_apply(rules, nrules, times, pinned, nlive, keep), 0);
		size_t k = 0;
		for (size_t i = 0; i < nlive; i++)
			if (keep[i])
				live[k++] = live[i];
		nlive = k;
	}
	memcpy(out, live, nlive * sizeof *live);
	free(live);
	free(times);
	free(pinned);
	free(keep);
	return nlive;
}

/* Keep once over the whole history; survivors newest first. */
static size_t batch(const struct vr_retention_rule *rules, size_t nrules, const int64_t *arrivals,
		    size_t n, const bool *pinned_at, size_t *out)
{
	int64_t *times = calloc(n, sizeof *times);
	bool *pinned = calloc(n, sizeof *pinned);
	bool *keep = calloc(n, sizeof *keep);
	for (size_t i = 0; i < n; i++) {
		times[i] = arrivals[n - 1 - i];
		pinned[i] = pinned_at && pinned_at[n - 1 - i];
	}
	cr_assert_eq(vr_retention_apply(rules, nrules, times, pinned, n, keep), 0);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (keep[i])
			out[k++] = n - 1 - i;
	free(times);
	free(pinned);
	free(keep);
	return k;
}

Test(retention, no_rules_keep_the_newest_only)
{
	int64_t times[] = {DAY0 + 300, DAY0 + 200, DAY0 + 100};
	bool keep[3];
	cr_assert_eq(vr_retention_apply(NULL, 0, times, NULL, 3, keep), 0);
	cr_assert(keep[0] && !keep[1] && !keep[2]);
	bool pinned[] = {false, false, true};
	cr_assert_eq(vr_retention_apply(NULL, 0, times, pinned, 3, keep), 0);
	cr_assert(keep[0] && !keep[1] && keep[2], "a pinned instance stays");
	cr_assert_eq(vr_retention_apply(NULL, 0, times, NULL, 0, keep), 0);
}

Test(retention, bad_rules_are_refused)
{
	int64_t times[] = {DAY0};
	bool keep[1];
	struct vr_retention_rule zero[] = {{0, 60}};
	cr_assert_eq(vr_retention_apply(zero, 1, times, NULL, 1, keep), -1);
	struct vr_retention_rule nodistance[] = {{3, 0}};
	cr_assert_eq(vr_retention_apply(nodistance, 1, times, NULL, 1, keep), -1);
}

/* 1000 instances one minute apart, 24 x 60 then 7 x 1440: the newest and
 * the first instance of each hour in the 24 hours up to the newest's; the
 * 1000 minutes fit in tier 1, so tier 2 finds nothing. */
Test(retention, a_thousand_minutes)
{
	enum { N = 1000 };
	int64_t arrivals[N];
	for (size_t i = 0; i < N; i++)
		arrivals[i] = DAY0 + 7 * 3600 + (int64_t)i * 60; /* from 07:00 on */
	size_t inc[N], bat[N];
	size_t ni = incremental(hourly_daily, 2, arrivals, N, NULL, inc);
	size_t nb = batch(hourly_daily, 2, arrivals, N, NULL, bat);
	cr_assert_eq(ni, nb);
	cr_assert_eq(memcmp(inc, bat, ni * sizeof *inc), 0, "incremental and batch differ");
	/* 07:00 .. 23:39 (minute 999 = 16 h 39 min): hours 7..23 = 17
	 * first-of-hour instances, and the newest. */
	cr_assert_eq(nb, 18, "kept %zu", nb);
	cr_assert_eq(bat[0], N - 1, "the newest first");
	for (size_t k = 1; k < nb; k++)
		cr_assert_eq(bat[k], (size_t)(60 * (17 - k)), "kept #%zu is arrival %zu", k,
			     bat[k]);
}

/* Nine days of instances every 20 minutes: hourly for the newest's day,
 * daily for the 7 days before, nothing of the first day. */
Test(retention, hourly_then_daily)
{
	enum { N = 9 * 72 };
	int64_t arrivals[N];
	bool pinned[N] = {false};
	for (size_t i = 0; i < N; i++)
		arrivals[i] = DAY0 + (int64_t)i * 1200;
	pinned[5] = true;
	size_t inc[N], bat[N];
	size_t ni = incremental(hourly_daily, 2, arrivals, N, pinned, inc);
	size_t nb = batch(hourly_daily, 2, arrivals, N, pinned, bat);
	cr_assert_eq(ni, nb);
	cr_assert_eq(memcmp(inc, bat, ni * sizeof *inc), 0, "incremental and batch differ");
	/* newest (day 8 23:40), 24 hours of day 8, days 1..7 at 00:00, and the
	 * pinned one */
	cr_assert_eq(nb, 1 + 24 + 7 + 1, "kept %zu", nb);
	cr_assert_eq(bat[0], N - 1);
	for (size_t h = 0; h < 24; h++)
		cr_assert_eq(bat[1 + h], 8 * 72 + (23 - h) * 3, "hour %zu", 23 - h);
	for (size_t d = 0; d < 7; d++)
		cr_assert_eq(bat[25 + d], (7 - d) * 72, "day %zu", 7 - d);
	cr_assert_eq(bat[32], 5, "the pinned one");
}

/* Irregular arrivals (a gap, bursts) still give the same result both ways. */
Test(retention, irregular_history_is_stable)
{
	enum { N = 2000 };
	int64_t arrivals[N];
	int64_t t = DAY0;
	unsigned seed = 7;
	for (size_t i = 0; i < N; i++) {
		t += 60 + (int64_t)(rand_r(&seed) % 3600);
		if (i == 900)
			t += 3 * 86400;
		arrivals[i] = t;
	}
	static const struct vr_retention_rule three[] = {{12, 30}, {10, 360}, {4, 10080}};
	size_t inc[N], bat[N];
	size_t ni = incremental(three, 3, arrivals, N, NULL, inc);
	size_t nb = batch(three, 3, arrivals, N, NULL, bat);
	cr_assert_eq(ni, nb);
	cr_assert_eq(memcmp(inc, bat, ni * sizeof *inc), 0, "incremental and batch differ");
	cr_assert_leq(nb, 1 + 12 + 10 + 4);
}
