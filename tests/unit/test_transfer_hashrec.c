/* Hash records of hash-compare transfers: round trips over every chunking,
 * every truncation point, the group hash against its definition, limits,
 * and random byte flips (each input in an exactly sized allocation so
 * AddressSanitizer sees any read past it). */
#include "test_transfer_common.h"

static void fill_hashes(uint8_t *h, uint32_t count)
{
	for (size_t i = 0; i < (size_t)count * VR_TX_HASH; i++)
		h[i] = (uint8_t)t_rand();
}

/* Decodes s[0..n) as a caller does: bytes arrive in chunks, appended to a
 * buffer that the decoder sees whole; records decoded are consumed. */
struct seen {
	unsigned records, ends;
	uint64_t groups;
	struct vr_tx_hash_record last;
	uint8_t last_hashes[VR_TX_MAX_HASH_GROUPS * VR_TX_HASH];
};

static int feed_all(const uint8_t *s, size_t n, size_t chunk, struct seen *seen)
{
	uint8_t *acc = malloc(VR_TX_MAX_HASH_RECORD_LEN);
	cr_assert_not_null(acc);
	size_t have = 0, off = 0;
	int rc = VR_TX_ETRUNCATED;
	memset(seen, 0, sizeof *seen);
	while (off < n) {
		size_t len = chunk ? chunk : 1 + t_rand() % 20000;
		if (len > n - off)
			len = n - off;
		if (len > VR_TX_MAX_HASH_RECORD_LEN - have)
			len = VR_TX_MAX_HASH_RECORD_LEN - have;
		memcpy(acc + have, s + off, len);
		have += len;
		off += len;
		for (;;) {
			/* the decoder sees exactly the bytes that arrived */
			uint8_t *c = malloc(have ? have : 1);
			cr_assert_not_null(c);
			memcpy(c, acc, have);
			size_t used = 0;
			struct vr_tx_hash_record r;
			rc = vr_tx_hash_record_decode(c, have, &used, &r);
			if (rc == 0) {
				cr_assert_gt(used, 0);
				cr_assert_leq(used, have);
				seen->last = r;
				if (r.kind == VR_TX_HASH_END) {
					seen->ends++;
				} else {
					seen->records++;
					seen->groups += r.count;
					memcpy(seen->last_hashes, r.hashes,
					       (size_t)r.count * VR_TX_HASH);
					cr_assert_eq(r.hashes, c + VR_TX_HASH_RECORD_FIXED);
				}
				memmove(acc, acc + used, have - used);
				have -= used;
			} else {
				cr_assert_eq(used, 0);
			}
			free(c);
			if (rc != 0 || have == 0)
				break;
		}
		if (rc != 0 && rc != VR_TX_ETRUNCATED)
			break;
	}
	free(acc);
	if (rc == 0 && have)
		rc = VR_TX_ETRUNCATED;
	return rc;
}

Test(transfer_hashrec, round_trip_over_chunkings)
{
	static const size_t chunks[] = {1, 7, 64, 4096, 65536, 0};
	static const uint32_t counts[] = {1, 2, 15, 16, 17, 1000, VR_TX_MAX_HASH_GROUPS};
	uint8_t *h = malloc(VR_TX_MAX_HASH_GROUPS * VR_TX_HASH);
	cr_assert_not_null(h);
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
		struct vr_buf b;
		vr_buf_init(&b, 0);
		fill_hashes(h, counts[k]);
		cr_assert_eq(vr_tx_hash_record_encode(3, 12345 + k, counts[k], h, &b), 0);
		cr_assert_eq(b.len, VR_TX_HASH_RECORD_FIXED + counts[k] * VR_TX_HASH + VR_TX_HASH);
		cr_assert_eq(vr_tx_hash_end_encode(&b), 0);
		for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
			if (chunks[c] == 1 && counts[k] > 100)
				continue; /* quadratic in the test driver */
			struct seen *s = malloc(sizeof *s);
			cr_assert_not_null(s);
			cr_assert_eq(feed_all((uint8_t *)b.data, b.len, chunks[c], s), 0);
			cr_assert_eq(s->records, 1);
			cr_assert_eq(s->ends, 1);
			cr_assert_eq(s->groups, counts[k]);
			free(s);
		}
		/* the decoded record itself */
		struct vr_tx_hash_record r;
		size_t used;
		cr_assert_eq(vr_tx_hash_record_decode((uint8_t *)b.data, b.len, &used, &r), 0);
		cr_assert_eq(r.kind, VR_TX_HASH_GROUPS);
		cr_assert_eq(r.disk, 3);
		cr_assert_eq(r.first_group, 12345 + k);
		cr_assert_eq(r.count, counts[k]);
		cr_assert_eq(memcmp(r.hashes, h, counts[k] * VR_TX_HASH), 0);
		cr_assert_eq(vr_tx_hash_record_decode((uint8_t *)b.data + used, b.len - used, &used,
						      &r),
			     0);
		cr_assert_eq(r.kind, VR_TX_HASH_END);
		cr_assert_eq(used, VR_TX_HASH_END_LEN);
		vr_buf_free(&b);
	}
	free(h);
}

Test(transfer_hashrec, many_records_random_chunks)
{
	t_rng = 77;
	struct vr_buf b;
	vr_buf_init(&b, 0);
	uint8_t *h = malloc(VR_TX_MAX_HASH_GROUPS * VR_TX_HASH);
	cr_assert_not_null(h);
	uint64_t groups = 0;
	for (unsigned i = 0; i < 40; i++) {
		uint32_t count = 1 + (uint32_t)(t_rand() % VR_TX_MAX_HASH_GROUPS);
		fill_hashes(h, count);
		cr_assert_eq(vr_tx_hash_record_encode(i % 5, groups, count, h, &b), 0);
		groups += count;
	}
	cr_assert_eq(vr_tx_hash_end_encode(&b), 0);
	struct seen *s = malloc(sizeof *s);
	cr_assert_not_null(s);
	cr_assert_eq(feed_all((uint8_t *)b.data, b.len, 0, s), 0);
	cr_assert_eq(s->records, 40);
	cr_assert_eq(s->ends, 1);
	cr_assert_eq(s->groups, groups);
	cr_assert_eq(memcmp(s->last_hashes, h, s->last.count * VR_TX_HASH), 0);
	free(s);
	free(h);
	vr_buf_free(&b);
}

Test(transfer_hashrec, every_truncation_point)
{
	uint8_t h[20 * VR_TX_HASH];
	fill_hashes(h, 20);
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_tx_hash_record_encode(0, 0, 20, h, &b), 0);
	size_t rec = b.len;
	cr_assert_eq(vr_tx_hash_end_encode(&b), 0);
	for (size_t cut = 0; cut < b.len; cut++) {
		size_t from = cut < rec ? 0 : rec;
		size_t n = cut - from;
		uint8_t *c = malloc(n ? n : 1);
		cr_assert_not_null(c);
		memcpy(c, b.data + from, n);
		size_t used = 99;
		struct vr_tx_hash_record r;
		cr_assert_eq(vr_tx_hash_record_decode(c, n, &used, &r), VR_TX_ETRUNCATED,
			     "cut at %zu", cut);
		cr_assert_eq(used, 0);
		free(c);
	}
	vr_buf_free(&b);
}

static void leaf_concat_hash(uint64_t first, uint32_t count, const uint8_t *data, uint8_t *out)
{
	/* the definition, spelled out: SHA-256 over the concatenated leaves */
	uint8_t leaves[VR_TX_GROUP_BLOCKS * VR_TX_HASH];
	for (uint32_t i = 0; i < count; i++) {
		uint8_t pre[9] = {0};
		tx_put64(pre + 1, first + i);
		tx_sha256(leaves + i * VR_TX_HASH, pre, 9, data + (size_t)i * VR_TX_BLOCK,
			  VR_TX_BLOCK, NULL, 0);
	}
	tx_sha256(out, leaves, (size_t)count * VR_TX_HASH, NULL, 0, NULL, 0);
}

Test(transfer_hashrec, group_hash_matches_its_definition)
{
	t_rng = 5;
	uint8_t *data = malloc(VR_TX_GROUP_BLOCKS * VR_TX_BLOCK);
	cr_assert_not_null(data);
	for (size_t i = 0; i < VR_TX_GROUP_BLOCKS * VR_TX_BLOCK; i++)
		data[i] = (uint8_t)t_rand();
	for (uint32_t count = 1; count <= VR_TX_GROUP_BLOCKS; count++) {
		uint8_t a[VR_TX_HASH], b[VR_TX_HASH], leaves[VR_TX_GROUP_BLOCKS * VR_TX_HASH];
		vr_tx_group_hash(48, count, data, a);
		leaf_concat_hash(48, count, data, b);
		cr_assert_eq(memcmp(a, b, VR_TX_HASH), 0, "count %u", count);
		for (uint32_t i = 0; i < count; i++)
			vr_tx_leaf(48 + i, data + (size_t)i * VR_TX_BLOCK, leaves + i * VR_TX_HASH);
		vr_tx_group_hash_leaves(count, leaves, b);
		cr_assert_eq(memcmp(a, b, VR_TX_HASH), 0);
	}
	/* the block numbers are bound: the same data elsewhere differs */
	uint8_t a[VR_TX_HASH], b[VR_TX_HASH];
	vr_tx_group_hash(0, VR_TX_GROUP_BLOCKS, data, a);
	vr_tx_group_hash(VR_TX_GROUP_BLOCKS, VR_TX_GROUP_BLOCKS, data, b);
	cr_assert_neq(memcmp(a, b, VR_TX_HASH), 0);
	/* one changed byte changes it */
	data[VR_TX_BLOCK * 7 + 100] ^= 1;
	vr_tx_group_hash(0, VR_TX_GROUP_BLOCKS, data, b);
	cr_assert_neq(memcmp(a, b, VR_TX_HASH), 0);
	free(data);
}

Test(transfer_hashrec, disk_groups)
{
	cr_assert_eq(vr_tx_disk_groups(VR_TX_BLOCK), 1);
	cr_assert_eq(vr_tx_disk_groups(16 * VR_TX_BLOCK), 1);
	cr_assert_eq(vr_tx_disk_groups(17 * VR_TX_BLOCK), 2);
	cr_assert_eq(vr_tx_disk_groups(VR_TX_MAX_DISK_BYTES), UINT64_C(1) << 30);
}

Test(transfer_hashrec, encoder_limits)
{
	uint8_t h[VR_TX_HASH] = {0};
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_tx_hash_record_encode(0, 0, 0, h, &b), VR_TX_ERUNSIZE);
	cr_assert_eq(vr_tx_hash_record_encode(0, 0, VR_TX_MAX_HASH_GROUPS + 1, h, &b),
		     VR_TX_ERUNSIZE);
	cr_assert_eq(vr_tx_hash_record_encode(VR_TX_MAX_DISKS, 0, 1, h, &b), VR_TX_ERANGE);
	cr_assert_eq(vr_tx_hash_record_encode(0, UINT64_C(1) << 30, 1, h, &b), VR_TX_ERANGE);
	cr_assert_eq(vr_tx_hash_record_encode(0, UINT64_MAX, 1, h, &b), VR_TX_ERANGE);
	cr_assert_eq(b.len, 0);
	/* a capped buffer: refused whole, nothing partial left behind */
	struct vr_buf small;
	vr_buf_init(&small, 40);
	uint8_t two[2 * VR_TX_HASH] = {0};
	cr_assert_eq(vr_tx_hash_record_encode(0, 0, 2, two, &small), VR_TX_ENOMEM);
	cr_assert_eq(small.len, 0);
	vr_buf_free(&small);
}

static void reseal(uint8_t *p, size_t len)
{
	tx_sha256(p + len - VR_TX_HASH, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
}

static int decode_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	cr_assert_not_null(c);
	memcpy(c, p, n);
	size_t used;
	struct vr_tx_hash_record r;
	int rc = vr_tx_hash_record_decode(c, n, &used, &r);
	free(c);
	return rc;
}

Test(transfer_hashrec, hostile_records)
{
	uint8_t h[4 * VR_TX_HASH];
	fill_hashes(h, 4);
	struct vr_buf b;
	vr_buf_init(&b, 0);
	cr_assert_eq(vr_tx_hash_record_encode(1, 8, 4, h, &b), 0);
	size_t len = b.len;
	uint8_t *p = malloc(len);
	cr_assert_not_null(p);
#define RESET() memcpy(p, b.data, len)
	RESET();
	cr_assert_eq(decode_copy(p, len), 0);
	/* unknown type, even resealed */
	p[0] = 'R';
	cr_assert_eq(decode_copy(p, 1), VR_TX_ERECORD);
	RESET();
	/* reserved byte: refused as soon as it arrives */
	p[1] = 1;
	reseal(p, len);
	cr_assert_eq(decode_copy(p, 2), VR_TX_ERECORD);
	cr_assert_eq(decode_copy(p, len), VR_TX_ERECORD);
	RESET();
	/* disk index past any header */
	tx_put16(p + 2, VR_TX_MAX_DISKS);
	reseal(p, len);
	cr_assert_eq(decode_copy(p, 4), VR_TX_ERANGE);
	RESET();
	/* count 0 and over the limit, before the hashes arrive */
	tx_put32(p + 12, 0);
	cr_assert_eq(decode_copy(p, VR_TX_HASH_RECORD_FIXED), VR_TX_ERUNSIZE);
	tx_put32(p + 12, VR_TX_MAX_HASH_GROUPS + 1);
	cr_assert_eq(decode_copy(p, VR_TX_HASH_RECORD_FIXED), VR_TX_ERUNSIZE);
	tx_put32(p + 12, UINT32_MAX);
	cr_assert_eq(decode_copy(p, VR_TX_HASH_RECORD_FIXED), VR_TX_ERUNSIZE);
	RESET();
	/* groups past the largest disk */
	tx_put64(p + 4, (UINT64_C(1) << 30) - 2);
	reseal(p, len);
	cr_assert_eq(decode_copy(p, VR_TX_HASH_RECORD_FIXED), VR_TX_ERANGE);
	tx_put64(p + 4, UINT64_MAX - 1);
	cr_assert_eq(decode_copy(p, VR_TX_HASH_RECORD_FIXED), VR_TX_ERANGE);
	RESET();
	/* a changed hash, a changed count that still fits the bytes */
	p[VR_TX_HASH_RECORD_FIXED + 40] ^= 0x10;
	cr_assert_eq(decode_copy(p, len), VR_TX_ECHECKSUM);
	RESET();
	tx_put32(p + 12, 3);
	cr_assert_eq(decode_copy(p, len), VR_TX_ECHECKSUM);
	RESET();
	p[len - 1] ^= 0x80;
	cr_assert_eq(decode_copy(p, len), VR_TX_ECHECKSUM);
#undef RESET
	free(p);

	/* the end record: reserved bytes and checksum */
	struct vr_buf e;
	vr_buf_init(&e, 0);
	cr_assert_eq(vr_tx_hash_end_encode(&e), 0);
	uint8_t *q = (uint8_t *)e.data;
	for (size_t i = 1; i < VR_TX_HASH_END_LEN; i++) {
		q[i] ^= 0x04;
		int want = i < 32 ? VR_TX_ERECORD : VR_TX_ECHECKSUM;
		cr_assert_eq(decode_copy(q, VR_TX_HASH_END_LEN), want, "byte %zu", i);
		if (i < 32)
			cr_assert_eq(decode_copy(q, i + 1), VR_TX_ERECORD, "byte %zu early", i);
		q[i] ^= 0x04;
	}
	cr_assert_eq(decode_copy(q, VR_TX_HASH_END_LEN), 0);
	vr_buf_free(&e);
	vr_buf_free(&b);
}

Test(transfer_hashrec, check_against_header)
{
	struct vr_tx_header hdr;
	t_header(&hdr, 2, 40); /* disk 0: 40 blocks (3 groups), disk 1: 41 (3 groups) */
	struct vr_tx_hash_record r = {
		.kind = VR_TX_HASH_GROUPS, .disk = 0, .first_group = 0, .count = 3};
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &r), 0);
	r.count = 4;
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &r), VR_TX_ERANGE);
	r.count = 1;
	r.first_group = 3;
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &r), VR_TX_ERANGE);
	r.first_group = 2;
	r.disk = 2;
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &r), VR_TX_ERANGE);
	r.disk = 1;
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &r), 0);
	struct vr_tx_hash_record end = {.kind = VR_TX_HASH_END};
	cr_assert_eq(vr_tx_hash_record_check(&hdr, &end), 0);
}

Test(transfer_hashrec, random_flips_never_pass_or_overread)
{
	t_rng = 4242;
	uint8_t h[64 * VR_TX_HASH];
	struct vr_buf b;
	vr_buf_init(&b, 0);
	fill_hashes(h, 64);
	cr_assert_eq(vr_tx_hash_record_encode(2, 100, 64, h, &b), 0);
	cr_assert_eq(vr_tx_hash_end_encode(&b), 0);
	uint8_t *p = malloc(b.len);
	cr_assert_not_null(p);
	for (int trial = 0; trial < 3000; trial++) {
		memcpy(p, b.data, b.len);
		size_t at = t_rand() % b.len;
		p[at] ^= (uint8_t)(1 + t_rand() % 255);
		struct seen *s = malloc(sizeof *s);
		cr_assert_not_null(s);
		int rc = feed_all(p, b.len, 0, s);
		/* a flip anywhere is caught: by type, limits or checksum */
		cr_assert_neq(rc, 0, "flip at %zu passed", at);
		free(s);
	}
	for (int trial = 0; trial < 300; trial++) {
		size_t n = 1 + t_rand() % 300;
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)t_rand();
		if (t_rand() % 2)
			p[0] = t_rand() % 2 ? 'H' : 'E';
		int rc = decode_copy(p, n);
		cr_assert_neq(rc, 0);
	}
	free(p);
	vr_buf_free(&b);
}
