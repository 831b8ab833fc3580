/* Publishing jobs to the job stream (publish.c) and the relay that makes
 * sure every open job reaches it (relay.c). */
#ifndef VRCLOUD_API_PUBLISH_H
#define VRCLOUD_API_PUBLISH_H

#include "vrcloud/config.h"

struct vr_db;

/* XADD job_id and note the time in the job row. 0, or -1 while Redis is
 * away (the relay publishes it later). */
int vr_publish_job(struct vr_db *db, const struct vr_config *config, const char *job_id);

struct vr_relay;

/* Start the relay thread: every second it publishes again every open job
 * that heads its lane and was not started within [jobs] republish_after,
 * or runs without progress for [jobs] stale_after. config must outlive it. */
int vr_relay_start(struct vr_relay **out, const struct vr_config *config);
/* Stop and join it. */
void vr_relay_stop(struct vr_relay *relay);

#endif
