/* Hash records of hash-compare transfers: the receiver's group hashes of
 * its replica, and the end record (docs/transfer-protocol.md). */
#include <string.h>

#include "transfer/wire.h"

#define MAX_GROUPS (VR_TX_MAX_DISK_BYTES / VR_TX_BLOCK / VR_TX_GROUP_BLOCKS)

uint64_t vr_tx_disk_groups(uint64_t size)
{
	uint64_t blocks = size / VR_TX_BLOCK;
	return (blocks + VR_TX_GROUP_BLOCKS - 1) / VR_TX_GROUP_BLOCKS;
}

void vr_tx_group_hash_leaves(uint32_t count, const uint8_t *leaves, uint8_t out[VR_TX_HASH])
{
	tx_sha256(out, leaves, (size_t)count * VR_TX_HASH, NULL, 0, NULL, 0);
}

void vr_tx_group_hash(uint64_t first_block, uint32_t count, const uint8_t *data,
		      uint8_t out[VR_TX_HASH])
{
	uint8_t leaves[VR_TX_GROUP_BLOCKS * VR_TX_HASH];
	if (count > VR_TX_GROUP_BLOCKS) {
		/* Not a group: a hash that matches none the other end sends. */
		memset(out, 0xff, VR_TX_HASH);
		return;
	}
	for (uint32_t i = 0; i < count; i++)
		vr_tx_leaf(first_block + i, data + (size_t)i * VR_TX_BLOCK,
			   leaves + i * VR_TX_HASH);
	vr_tx_group_hash_leaves(count, leaves, out);
}

static bool groups_ok(uint64_t first_group, uint32_t count)
{
	return first_group < MAX_GROUPS && count <= MAX_GROUPS - first_group;
}

int vr_tx_hash_record_encode(unsigned disk, uint64_t first_group, uint32_t count,
			     const uint8_t *hashes, struct vr_buf *out)
{
	if (count == 0 || count > VR_TX_MAX_HASH_GROUPS)
		return VR_TX_ERUNSIZE;
	if (disk >= VR_TX_MAX_DISKS || !groups_ok(first_group, count))
		return VR_TX_ERANGE;
	uint8_t h[VR_TX_HASH_RECORD_FIXED], sum[VR_TX_HASH];
	size_t hlen = (size_t)count * VR_TX_HASH;
	h[0] = VR_TX_HASH_GROUPS;
	h[1] = 0;
	tx_put16(h + 2, (uint16_t)disk);
	tx_put64(h + 4, first_group);
	tx_put32(h + 12, count);
	tx_sha256(sum, h, sizeof h, hashes, hlen, NULL, 0);
	size_t before = out->len;
	if (vr_buf_append(out, h, sizeof h) || vr_buf_append(out, hashes, hlen) ||
	    vr_buf_append(out, sum, sizeof sum)) {
		/* Leave out as it was: no partial record. */
		out->len = before;
		if (out->data)
			out->data[before] = '\0';
		return VR_TX_ENOMEM;
	}
	return VR_TX_OK;
}

int vr_tx_hash_end_encode(struct vr_buf *out)
{
	uint8_t b[VR_TX_HASH_END_LEN] = {VR_TX_HASH_END};
	tx_sha256(b + 32, b, 32, NULL, 0, NULL, 0);
	return vr_buf_append(out, b, sizeof b) ? VR_TX_ENOMEM : VR_TX_OK;
}

static int decode_end(const uint8_t *p, size_t n, size_t *used, struct vr_tx_hash_record *out)
{
	/* Reserved bytes are checked as they arrive: garbage is refused at once. */
	size_t m = n < 32 ? n : 32;
	for (size_t i = 1; i < m; i++)
		if (p[i])
			return VR_TX_ERECORD;
	if (n < VR_TX_HASH_END_LEN)
		return VR_TX_ETRUNCATED;
	uint8_t sum[VR_TX_HASH];
	tx_sha256(sum, p, 32, NULL, 0, NULL, 0);
	if (memcmp(sum, p + 32, VR_TX_HASH))
		return VR_TX_ECHECKSUM;
	memset(out, 0, sizeof *out);
	out->kind = VR_TX_HASH_END;
	*used = VR_TX_HASH_END_LEN;
	return VR_TX_OK;
}

static int decode_groups(const uint8_t *p, size_t n, size_t *used, struct vr_tx_hash_record *out)
{
	if (n >= 2 && p[1])
		return VR_TX_ERECORD;
	if (n >= 4 && tx_get16(p + 2) >= VR_TX_MAX_DISKS)
		return VR_TX_ERANGE;
	if (n < VR_TX_HASH_RECORD_FIXED)
		return VR_TX_ETRUNCATED;
	uint64_t first = tx_get64(p + 4);
	uint32_t count = tx_get32(p + 12);
	if (count == 0 || count > VR_TX_MAX_HASH_GROUPS)
		return VR_TX_ERUNSIZE;
	if (!groups_ok(first, count))
		return VR_TX_ERANGE;
	size_t len = VR_TX_HASH_RECORD_FIXED + (size_t)count * VR_TX_HASH + VR_TX_HASH;
	if (n < len)
		return VR_TX_ETRUNCATED;
	uint8_t sum[VR_TX_HASH];
	tx_sha256(sum, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
	if (memcmp(sum, p + len - VR_TX_HASH, VR_TX_HASH))
		return VR_TX_ECHECKSUM;
	memset(out, 0, sizeof *out);
	out->kind = VR_TX_HASH_GROUPS;
	out->disk = tx_get16(p + 2);
	out->first_group = first;
	out->count = count;
	out->hashes = p + VR_TX_HASH_RECORD_FIXED;
	*used = len;
	return VR_TX_OK;
}

int vr_tx_hash_record_decode(const uint8_t *p, size_t n, size_t *used,
			     struct vr_tx_hash_record *out)
{
	*used = 0;
	if (n == 0)
		return VR_TX_ETRUNCATED;
	if (p[0] == VR_TX_HASH_GROUPS)
		return decode_groups(p, n, used, out);
	if (p[0] == VR_TX_HASH_END)
		return decode_end(p, n, used, out);
	return VR_TX_ERECORD;
}

int vr_tx_hash_record_check(const struct vr_tx_header *h, const struct vr_tx_hash_record *r)
{
	if (r->kind != VR_TX_HASH_GROUPS)
		return r->kind == VR_TX_HASH_END ? VR_TX_OK : VR_TX_ERECORD;
	if (r->disk >= h->ndisks)
		return VR_TX_ERANGE;
	uint64_t groups = vr_tx_disk_groups(h->disks[r->disk].size);
	if (r->first_group >= groups || r->count > groups - r->first_group)
		return VR_TX_ERANGE;
	return VR_TX_OK;
}
