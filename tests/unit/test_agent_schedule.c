/* The schedule of a replication's transfers by the vSphere rule: a pure
 * function of times. */
#include <criterion/criterion.h>

#include "vrcloud/agent_sync.h"

#define S   1000LL
#define MIN (60 * S)
#define T0  1700000000000LL

Test(agent_schedule, the_first_instance_starts_now)
{
	struct vr_agent_schedule_in in = {.now_ms = T0, .rpo_s = 900, .floor_s = 30};
	cr_assert_eq(vr_agent_schedule_next(&in), T0);
}

Test(agent_schedule, the_next_start_keeps_the_newest_instance_within_the_rpo)
{
	/* RPO 15 min, transfers of 20 s and 40 s: start 80 s + 90 s margin early. */
	uint32_t recent[] = {20000, 40000};
	struct vr_agent_schedule_in in = {.now_ms = T0 + 60 * S,
					  .last_pit_ms = T0,
					  .rpo_s = 900,
					  .recent_ms = recent,
					  .nrecent = 2,
					  .floor_s = 30,
					  .last_start_ms = T0};
	int64_t next = vr_agent_schedule_next(&in);
	cr_assert_eq(next, T0 + 15 * MIN - 80 * S - 90 * S);
	/* the instance started then ends, at the estimate, before the RPO */
	cr_assert_lt(next + 40 * S, T0 + 15 * MIN);
}

Test(agent_schedule, longer_transfers_start_earlier)
{
	uint32_t fast[] = {1000}, slow[] = {1000, 120000};
	struct vr_agent_schedule_in in = {.last_pit_ms = T0, .rpo_s = 3600, .floor_s = 30};
	in.recent_ms = fast;
	in.nrecent = 1;
	int64_t a = vr_agent_schedule_next(&in);
	in.recent_ms = slow;
	in.nrecent = 2;
	int64_t b = vr_agent_schedule_next(&in);
	cr_assert_eq(a - b, 2 * (120000 - 1000));
}

Test(agent_schedule, margin_is_a_tenth_of_the_rpo_within_bounds)
{
	cr_assert_eq(vr_agent_schedule_margin_ms(300), 30 * S);
	cr_assert_eq(vr_agent_schedule_margin_ms(10), 5 * S);
	cr_assert_eq(vr_agent_schedule_margin_ms(86400), 300 * S);
}

Test(agent_schedule, never_more_often_than_the_floor)
{
	/* transfers as long as the RPO: the rule says "at once", the floor holds */
	uint32_t recent[] = {300000};
	struct vr_agent_schedule_in in = {.now_ms = T0 + 10 * S,
					  .last_pit_ms = T0,
					  .rpo_s = 300,
					  .recent_ms = recent,
					  .nrecent = 1,
					  .floor_s = 60,
					  .last_start_ms = T0};
	cr_assert_eq(vr_agent_schedule_next(&in), T0 + 60 * S);
}

Test(agent_schedule, overdue_means_now_or_earlier)
{
	struct vr_agent_schedule_in in = {.now_ms = T0 + 2 * 3600 * S,
					  .last_pit_ms = T0,
					  .rpo_s = 900,
					  .floor_s = 30,
					  .last_start_ms = T0};
	cr_assert_leq(vr_agent_schedule_next(&in), in.now_ms);
}

Test(agent_schedule, failures_back_off_up_to_five_minutes)
{
	struct vr_agent_schedule_in in = {
		.now_ms = T0, .rpo_s = 900, .floor_s = 30, .failed_ms = T0};
	in.failures = 1;
	cr_assert_eq(vr_agent_schedule_next(&in), T0 + 15 * S);
	in.failures = 3;
	cr_assert_eq(vr_agent_schedule_next(&in), T0 + 60 * S);
	in.failures = 30;
	cr_assert_eq(vr_agent_schedule_next(&in), T0 + 300 * S);
}
