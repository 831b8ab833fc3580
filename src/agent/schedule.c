/* When the daemon starts a replication's next transfer (docs/agent.md,
 * "Scheduling"): a pure function of times, so it is tested as one. */
#include "vrcloud/agent_sync.h"

int64_t vr_agent_schedule_margin_ms(unsigned rpo_s)
{
	int64_t margin = (int64_t)rpo_s * 100; /* a tenth, in ms */
	if (margin < 5000)
		margin = 5000;
	if (margin > 300000)
		margin = 300000;
	return margin;
}

int64_t vr_agent_schedule_next(const struct vr_agent_schedule_in *in)
{
	int64_t next = in->now_ms;
	if (in->last_pit_ms) {
		int64_t longest = 0;
		for (unsigned i = 0; i < in->nrecent; i++)
			if (in->recent_ms[i] > longest)
				longest = in->recent_ms[i];
		next = in->last_pit_ms + (int64_t)in->rpo_s * 1000 - 2 * longest -
		       vr_agent_schedule_margin_ms(in->rpo_s);
	}
	int64_t previous = in->last_start_ms ? in->last_start_ms : in->last_pit_ms;
	if (previous && next < previous + (int64_t)in->floor_s * 1000)
		next = previous + (int64_t)in->floor_s * 1000;
	if (in->failures) {
		int64_t backoff = 15000;
		for (unsigned i = 1; i < in->failures && backoff < 300000; i++)
			backoff *= 2;
		if (backoff > 300000)
			backoff = 300000;
		if (next < in->failed_ms + backoff)
			next = in->failed_ms + backoff;
	}
	return next;
}
