/* What both ends of a failback share (vrcloud/failback.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/failback.h"

#define INTRO_MAGIC "VRCLOUD-FAILBACK 1 "

int vr_fb_intro_format(struct vr_buf *out, const char *failback, const char *source)
{
	if (!vr_uuid_valid(failback) || !vr_uuid_valid(source))
		return VR_EINVAL;
	char line[VR_FB_INTRO_MAX];
	int n = snprintf(line, sizeof line, INTRO_MAGIC "failback=%s source=%s\n", failback,
			 source);
	return vr_buf_append(out, line, (size_t)n);
}

int vr_fb_intro_parse(const uint8_t *p, size_t n, size_t *used, char failback[VR_UUID_LEN + 1],
		      char source[VR_UUID_LEN + 1])
{
	size_t magic = sizeof INTRO_MAGIC - 1;
	size_t cmp = n < magic ? n : magic;
	if (memcmp(p, INTRO_MAGIC, cmp) != 0)
		return VR_TX_EMAGIC;
	const uint8_t *nl = memchr(p, '\n', n < VR_FB_INTRO_MAX ? n : VR_FB_INTRO_MAX);
	if (!nl)
		return n < VR_FB_INTRO_MAX ? VR_TX_ETRUNCATED : VR_TX_EHEADER;
	char line[VR_FB_INTRO_MAX + 1];
	size_t len = (size_t)(nl - p);
	memcpy(line, p, len);
	line[len] = '\0';
	char fb[VR_UUID_LEN + 2], src[VR_UUID_LEN + 2];
	int end = 0;
	if (sscanf(line + magic, "failback=%37s source=%37s%n", fb, src, &end) != 2 ||
	    (size_t)end != len - magic || vr_uuid_canon(failback, fb) != 0 ||
	    vr_uuid_canon(source, src) != 0)
		return VR_TX_EHEADER;
	*used = len + 1;
	return 0;
}

int vr_fb_group_read(int fd, uint64_t size, uint64_t g, uint8_t *buf, uint32_t *blocks)
{
	uint64_t first = g * VR_TX_GROUP_BLOCKS, total = size / VR_TX_BLOCK;
	if (first >= total)
		return VR_EINVAL;
	uint64_t n = total - first < VR_TX_GROUP_BLOCKS ? total - first : VR_TX_GROUP_BLOCKS;
	size_t want = (size_t)n * VR_TX_BLOCK, have = 0;
	off_t at = (off_t)(first * VR_TX_BLOCK);
	while (have < want) {
		ssize_t r = pread(fd, buf + have, want - have, at + (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return VR_EIO;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	memset(buf + have, 0, want - have);
	*blocks = (uint32_t)n;
	return 0;
}

int vr_fb_group_hash(int fd, uint64_t size, uint64_t g, uint8_t *buf, uint8_t out[VR_TX_HASH])
{
	uint32_t n = 0;
	int rc = vr_fb_group_read(fd, size, g, buf, &n);
	if (!rc)
		vr_tx_group_hash(g * VR_TX_GROUP_BLOCKS, n, buf, out);
	return rc;
}
