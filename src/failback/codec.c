/* What both ends of a failback share (vrcloud/failback.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/failback.h"

#define INTRO_MAGIC "VRCLOUD-FAILBACK 1 "

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int sha256(uint8_t out[VR_TX_HASH], const void *data, size_t len)
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : VR_ENOMEM;
}

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

int vr_fb_hashes_encode(struct vr_buf *out, unsigned disk, uint64_t first_group, uint32_t count,
			const uint8_t *hashes)
{
	if (count == 0 || count > VR_FB_MAX_GROUPS || disk >= VR_TX_MAX_DISKS)
		return VR_EINVAL;
	size_t body = 16 + (size_t)count * VR_TX_HASH;
	uint8_t *p = vr_malloc(body + VR_TX_HASH);
	p[0] = 'H';
	p[1] = 0;
	put16(p + 2, (uint16_t)disk);
	put64(p + 4, first_group);
	put32(p + 12, count);
	memcpy(p + 16, hashes, (size_t)count * VR_TX_HASH);
	int rc = sha256(p + body, p, body);
	if (!rc)
		rc = vr_buf_append(out, p, body + VR_TX_HASH);
	free(p);
	return rc;
}

int vr_fb_end_encode(struct vr_buf *out)
{
	uint8_t rec[VR_FB_END_LEN] = {'E'};
	int rc = sha256(rec + 32, rec, 32);
	return rc ? rc : vr_buf_append(out, rec, sizeof rec);
}

int vr_fb_record_decode(const uint8_t *p, size_t n, size_t *used, struct vr_fb_record *rec)
{
	if (n < 1)
		return VR_TX_ETRUNCATED;
	uint8_t digest[VR_TX_HASH];
	memset(rec, 0, sizeof *rec);
	if (p[0] == 'E') {
		if (n < VR_FB_END_LEN)
			return VR_TX_ETRUNCATED;
		for (int i = 1; i < 32; i++)
			if (p[i])
				return VR_TX_ERECORD;
		if (sha256(digest, p, 32) || memcmp(digest, p + 32, VR_TX_HASH) != 0)
			return VR_TX_ECHECKSUM;
		rec->end = true;
		*used = VR_FB_END_LEN;
		return 0;
	}
	if (p[0] != 'H')
		return VR_TX_ERECORD;
	if (n < 16)
		return VR_TX_ETRUNCATED;
	uint32_t count = (uint32_t)get(p + 12, 4);
	if (p[1] != 0 || count == 0 || count > VR_FB_MAX_GROUPS)
		return VR_TX_ERECORD;
	size_t body = 16 + (size_t)count * VR_TX_HASH;
	if (n < body + VR_TX_HASH)
		return VR_TX_ETRUNCATED;
	if (sha256(digest, p, body) || memcmp(digest, p + body, VR_TX_HASH) != 0)
		return VR_TX_ECHECKSUM;
	rec->disk = (unsigned)get(p + 2, 2);
	rec->first_group = get(p + 4, 8);
	rec->count = count;
	rec->hashes = p + 16;
	*used = body + VR_TX_HASH;
	return 0;
}

uint64_t vr_fb_groups(uint64_t size)
{
	uint64_t blocks = size / VR_TX_BLOCK;
	return (blocks + VR_FB_GROUP_BLOCKS - 1) / VR_FB_GROUP_BLOCKS;
}

int vr_fb_group_read(int fd, uint64_t size, uint64_t g, uint8_t *buf, uint32_t *blocks)
{
	uint64_t first = g * VR_FB_GROUP_BLOCKS, total = size / VR_TX_BLOCK;
	if (first >= total)
		return VR_EINVAL;
	uint64_t n = total - first < VR_FB_GROUP_BLOCKS ? total - first : VR_FB_GROUP_BLOCKS;
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
	if (rc)
		return rc;
	uint8_t leaves[VR_FB_GROUP_BLOCKS][VR_TX_HASH];
	uint64_t first = g * VR_FB_GROUP_BLOCKS;
	for (uint32_t i = 0; i < n; i++)
		vr_tx_leaf(first + i, buf + (size_t)i * VR_TX_BLOCK, leaves[i]);
	return sha256(out, leaves, (size_t)n * VR_TX_HASH);
}
