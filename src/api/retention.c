/* Which point-in-time instances a replication keeps (docs/instances.md,
 * "Retention"). Tiers of fixed time buckets aligned to the Unix epoch:
 * tier i has NumberOfInstances buckets of DistanceMinutes each, ending
 * with the bucket that holds the newest instance (tier 1) or the moment
 * where tier i - 1 begins; in each bucket the oldest instance is kept. An
 * instance kept once stays the oldest of its bucket as newer ones arrive,
 * so applying the rules after every new instance keeps the same instances
 * as applying them once to the whole history. */
#include <stdlib.h>

#include "api/api.h"

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* One tier over the instances older than *upper (none yet: INT64_MAX),
 * marking the oldest of each bucket; *upper moves to where it begins. */
static void apply_tier(const struct vr_retention_rule *rule, const int64_t *times, size_t n,
		       int64_t newest, int64_t *upper, size_t *best, bool *keep)
{
	int64_t width = (int64_t)rule->distance_minutes * 60;
	int64_t count = rule->instances;
	int64_t top = floor_div(*upper == INT64_MAX ? newest : *upper - 1, width);
	int64_t bottom = top - count + 1;
	for (int64_t b = 0; b < count; b++)
		best[b] = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (times[i] >= *upper)
			continue;
		int64_t bucket = floor_div(times[i], width);
		if (bucket < bottom || bucket > top)
			continue;
		size_t *slot = &best[bucket - bottom];
		/* The oldest; between equal times the earlier recorded (the
		 * later in the newest-first list). */
		if (*slot == SIZE_MAX || times[i] <= times[*slot])
			*slot = i;
	}
	for (int64_t b = 0; b < count; b++)
		if (best[b] != SIZE_MAX)
			keep[best[b]] = true;
	*upper = bottom * width;
}

int vr_retention_apply(const struct vr_retention_rule *rules, size_t nrules, const int64_t *times,
		       const bool *pinned, size_t n, bool *keep)
{
	if (n == 0)
		return 0;
	size_t most = 0;
	for (size_t r = 0; r < nrules; r++) {
		if (rules[r].instances < 1 || rules[r].distance_minutes < 1)
			return -1;
		if ((size_t)rules[r].instances > most)
			most = (size_t)rules[r].instances;
	}
	size_t *best = NULL;
	if (most) {
		best = malloc(most * sizeof *best);
		if (!best)
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		keep[i] = i == 0 || (pinned && pinned[i]);
	int64_t newest = times[0];
	for (size_t i = 1; i < n; i++)
		if (times[i] > newest)
			newest = times[i];
	int64_t upper = INT64_MAX;
	for (size_t r = 0; r < nrules; r++)
		apply_tier(&rules[r], times, n, newest, &upper, best, keep);
	free(best);
	return 0;
}
