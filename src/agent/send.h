/* One attempt at sending an instance over a data connection (send.c). */
#ifndef VRCLOUD_AGENT_SEND_H
#define VRCLOUD_AGENT_SEND_H

#include "vrcloud/agent_sync.h"

struct vr_send_plan {
	const char *replication;
	struct vr_tx_header hdr;
	struct vr_spool_reader *spool; /* incremental: the runs */
	int fds[VR_VM_MAX_DISKS];      /* full: the disk images, read live */
	/* hash compare: per disk, groups sent by an earlier attempt of this
	 * instance (one bit per VR_AGENT_GROUP_BLOCKS blocks) */
	uint8_t *sent_groups[VR_VM_MAX_DISKS];
};

struct vr_send_outcome {
	int status; /* the result reply's vr_tx_err, 0 when committed */
	uint64_t instance_blocks, sent_blocks, sent_bytes;
	bool committed_before; /* the header was answered by a result of status 0 */
	char message[256];
};

/* Returns 0 (the replica committed the instance), VR_EUNAVAIL (the
 * connection failed or was cut: try again), VR_EFORBIDDEN (the replica
 * refused: out->status), VR_EIO (a disk or the spool could not be read),
 * VR_ENOMEM. out->message says what happened. */
int vr_send_attempt(const struct vr_agent_sync_env *env, struct vr_send_plan *plan,
		    struct vr_agent_progress *progress, struct vr_send_outcome *out);

#endif
