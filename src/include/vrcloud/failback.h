/* Failback's stream between a worker and a site's agent over a reverse
 * connection of purpose "failback" (docs/recovery.md): the worker's intro
 * line and transfer header, the agent's group hashes of its on-prem disks,
 * the runs of the groups that differ (the transfer format), the agent's
 * result reply. This module holds what both ends share: the intro line,
 * the group-hash records and the group hash of a disk image.
 *
 * The group-hash records have the byte format of the hash-compare
 * transfers' records (docs/transfer-protocol.md): 'H' type(1) reserved(1)
 * disk(2, big-endian) first_group(8) count(4, 1..4096), count x 32 bytes,
 * then SHA-256 of all that; 'E' type(1) and 31 zero bytes, then SHA-256 of
 * those 32 bytes. */
#ifndef VRCLOUD_FAILBACK_H
#define VRCLOUD_FAILBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/buf.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

#define VR_FB_GROUP_BYTES (VR_TX_GROUP_BLOCKS * VR_TX_BLOCK)
#define VR_FB_INTRO_MAX	  160

/* The worker's first line: "VRCLOUD-FAILBACK 1 failback=<uuid>
 * source=<uuid>\n" (the failback replication, the replication it sends
 * back). */
int vr_fb_intro_format(struct vr_buf *out, const char *failback, const char *source);
/* Parse the line at p[0..n): 0 with *used, VR_TX_ETRUNCATED while no
 * newline came (and fewer than VR_FB_INTRO_MAX bytes), VR_TX_EMAGIC or
 * VR_TX_EHEADER. */
int vr_fb_intro_parse(const uint8_t *p, size_t n, size_t *used, char failback[VR_UUID_LEN + 1],
		      char source[VR_UUID_LEN + 1]);

/* The group hash of group g of the image open at fd, a disk of size
 * bytes (SHA-256 over vr_tx_leaf of its blocks; the last group may be
 * shorter). Bytes past the file's end read as zeros. buf: at least
 * VR_FB_GROUP_BYTES. Returns 0 or VR_EIO. */
int vr_fb_group_hash(int fd, uint64_t size, uint64_t g, uint8_t *buf, uint8_t out[VR_TX_HASH]);

/* Read the blocks of group g into buf (zeros past the file's end); *blocks
 * gets how many the group has. Returns 0 or VR_EIO. */
int vr_fb_group_read(int fd, uint64_t size, uint64_t g, uint8_t *buf, uint32_t *blocks);

#endif
