/* The receiver's side: an incremental decoder that takes any chunking of
 * the stream, buffers at most one run, and checks everything before it
 * hands anything out (docs/transfer-protocol.md). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/wire.h"

enum { DEC_FIXED = 1, DEC_HEADER, DEC_RECORD, DEC_RUNHDR, DEC_PAYLOAD, DEC_TRAILER, DEC_DONE };

static int fail(struct vr_tx_dec *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct vr_tx_dec *d, int err, const char *fmt, ...)
{
	char what[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(d->msg, sizeof d->msg, "%s at byte %llu: %s", vr_tx_strerror(err),
		 (unsigned long long)d->offset, what);
	d->err = err;
	return err;
}

int vr_tx_dec_init(struct vr_tx_dec *d, const uint8_t expect_replication[VR_TX_ID])
{
	memset(d, 0, sizeof *d);
	d->payload = malloc(VR_TX_MAX_PAYLOAD);
	if (!d->payload)
		return fail(d, VR_TX_ENOMEM, "payload buffer");
	memcpy(d->expect_replication, expect_replication, VR_TX_ID);
	d->state = DEC_FIXED;
	d->need = VR_TX_FIXED_LEN;
	d->disk = -1;
	return VR_TX_OK;
}

void vr_tx_dec_free(struct vr_tx_dec *d)
{
	tx_codec_dec_free(d);
	free(d->payload);
	d->payload = NULL;
	d->state = 0;
}

const char *vr_tx_dec_message(const struct vr_tx_dec *d)
{
	return d->err ? d->msg : "ok";
}

/* The fixed part: magic and version are checked on the bytes that have
 * arrived so that a stranger is refused at once. */
static int check_fixed(struct vr_tx_dec *d)
{
	size_t m = d->have < 8 ? d->have : 8;
	if (memcmp(d->small, VR_TX_MAGIC, m))
		return fail(d, VR_TX_EMAGIC, "not a transfer stream");
	if (d->have >= 10 && tx_get16(d->small + 8) != VR_TX_VERSION)
		return fail(d, VR_TX_EVERSION, "version %u", tx_get16(d->small + 8));
	if (d->have < VR_TX_FIXED_LEN)
		return VR_TX_OK;
	uint32_t len = tx_get32(d->small + 68);
	if (len < VR_TX_FIXED_LEN + 10 + VR_TX_HASH || len > VR_TX_MAX_HEADER_LEN)
		return fail(d, VR_TX_EHEADER, "header length %u", len);
	d->state = DEC_HEADER;
	d->need = len;
	return VR_TX_OK;
}

static int parse_header(struct vr_tx_dec *d)
{
	const uint8_t *p = d->small;
	size_t len = d->need;
	uint8_t h[VR_TX_HASH];
	tx_sha256(h, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
	if (memcmp(h, p + len - VR_TX_HASH, VR_TX_HASH))
		return fail(d, VR_TX_ECHECKSUM, "header checksum");
	struct vr_tx_header *hd = &d->hdr;
	memset(hd, 0, sizeof *hd);
	hd->version = tx_get16(p + 8);
	hd->flags = tx_get16(p + 10);
	hd->codec = p[12];
	hd->ndisks = p[13];
	if (tx_get16(p + 14) != 0)
		return fail(d, VR_TX_EHEADER, "reserved bits set");
	if (tx_get32(p + 16) != VR_TX_BLOCK)
		return fail(d, VR_TX_EHEADER, "block size %u", tx_get32(p + 16));
	memcpy(hd->replication, p + 20, VR_TX_ID);
	memcpy(hd->instance, p + 36, VR_TX_ID);
	hd->point_in_time_ms = tx_get64(p + 52);
	hd->resume_token = tx_get64(p + 60);
	if (memcmp(hd->replication, d->expect_replication, VR_TX_ID))
		return fail(d, VR_TX_EREPLICATION, "not the connection's replication");
	if (hd->ndisks < 1 || hd->ndisks > VR_TX_MAX_DISKS)
		return fail(d, VR_TX_EHEADER, "%u disks", hd->ndisks);
	size_t off = VR_TX_FIXED_LEN, end = len - VR_TX_HASH;
	for (unsigned i = 0; i < hd->ndisks; i++) {
		if (off >= end)
			return fail(d, VR_TX_EHEADER, "disk %u: past the header", i);
		size_t kl = p[off++];
		if (kl == 0 || end - off < kl + 8)
			return fail(d, VR_TX_EHEADER, "disk %u: key length %zu", i, kl);
		if (memchr(p + off, 0, kl))
			return fail(d, VR_TX_EHEADER, "disk %u: bad device key", i);
		memcpy(hd->disks[i].key, p + off, kl);
		off += kl;
		hd->disks[i].size = tx_get64(p + off);
		off += 8;
	}
	if (off != end)
		return fail(d, VR_TX_EHEADER, "%zu bytes after the disk list", end - off);
	char msg[160];
	int err = tx_header_check(hd, msg, sizeof msg);
	if (err)
		return fail(d, err, "%s", msg);
	if (tx_codec_dec_init(d))
		return fail(d, VR_TX_ENOMEM, "codec %u buffers", hd->codec);
	vr_tx_root_init(&d->root, hd->ndisks);
	d->state = DEC_RECORD;
	d->have = 0;
	d->need = 1;
	return VR_TX_EV_HEADER;
}

static int check_order(struct vr_tx_dec *d, unsigned disk, uint64_t first, uint64_t count)
{
	if (disk >= d->hdr.ndisks)
		return fail(d, VR_TX_ERANGE, "disk %u of %u", disk, d->hdr.ndisks);
	uint64_t blocks = d->hdr.disks[disk].size / VR_TX_BLOCK;
	if (first >= blocks || count > blocks - first)
		return fail(d, VR_TX_ERANGE, "disk %u: blocks %llu+%llu of %llu", disk,
			    (unsigned long long)first, (unsigned long long)count,
			    (unsigned long long)blocks);
	if ((int)disk < d->disk || ((int)disk == d->disk && first < d->next_block))
		return fail(d, VR_TX_EORDER, "disk %u block %llu after disk %d block %llu", disk,
			    (unsigned long long)first, d->disk, (unsigned long long)d->next_block);
	return VR_TX_OK;
}

static int parse_run(struct vr_tx_dec *d)
{
	const uint8_t *p = d->small;
	unsigned codec = p[1], disk = tx_get16(p + 2);
	uint32_t count = tx_get32(p + 4), len = tx_get32(p + 16);
	uint64_t first = tx_get64(p + 8);
	if (codec != VR_TX_CODEC_NONE && codec != d->hdr.codec)
		return fail(d, VR_TX_ECODEC, "run codec %u under header codec %u", codec,
			    d->hdr.codec);
	if (count == 0 || count > VR_TX_MAX_RUN_BLOCKS)
		return fail(d, VR_TX_ERUNSIZE, "run of %u blocks", count);
	/* A compressed payload is smaller than its blocks (else it goes raw):
	 * it fits the payload buffer whatever it claims to hold. */
	if (codec == VR_TX_CODEC_NONE ? len != count * VR_TX_BLOCK
				      : len == 0 || len >= count * VR_TX_BLOCK)
		return fail(d, VR_TX_ERUNSIZE, "payload %u for %u blocks, codec %u", len, count,
			    codec);
	int err = check_order(d, disk, first, count);
	if (err)
		return err;
	d->run_disk = disk;
	d->run_codec = (uint8_t)codec;
	d->run_first = first;
	d->run_count = count;
	d->state = DEC_PAYLOAD;
	d->have = 0;
	d->need = len;
	return VR_TX_OK;
}

static int finish_run(struct vr_tx_dec *d)
{
	uint8_t h[VR_TX_HASH];
	tx_sha256(h, d->small, 20, d->payload, d->need, NULL, 0);
	if (memcmp(h, d->small + 20, VR_TX_HASH))
		return fail(d, VR_TX_ECHECKSUM, "run at disk %u block %llu", d->run_disk,
			    (unsigned long long)d->run_first);
	size_t raw = (size_t)d->run_count * VR_TX_BLOCK;
	const uint8_t *blocks = d->payload;
	if (d->run_codec != VR_TX_CODEC_NONE) {
		char msg[96];
		int err = tx_codec_decompress(d, d->run_codec, d->need, raw, msg, sizeof msg);
		if (err)
			return fail(d, err, "run at disk %u block %llu: %s", d->run_disk,
				    (unsigned long long)d->run_first, msg);
		blocks = d->blocks;
	}
	for (uint32_t i = 0; i < d->run_count; i++) {
		vr_tx_leaf(d->run_first + i, blocks + (size_t)i * VR_TX_BLOCK, d->run_leaves[i]);
		vr_tx_root_add(&d->root, d->run_disk, d->run_leaves[i]);
	}
	d->disk = (int)d->run_disk;
	d->next_block = d->run_first + d->run_count;
	d->instance_blocks += d->run_count;
	d->sent_blocks += d->run_count;
	d->sent_bytes += d->need;
	d->raw_bytes += raw;
	d->run_data = blocks;
	d->state = DEC_RECORD;
	d->have = 0;
	d->need = 1;
	return VR_TX_EV_RUN;
}

static int parse_trailer(struct vr_tx_dec *d)
{
	const uint8_t *p = d->small;
	for (int i = 1; i < 8; i++)
		if (p[i])
			return fail(d, VR_TX_ERECORD, "trailer reserved bytes");
	struct vr_tx_trailer *t = &d->trailer;
	t->instance_blocks = tx_get64(p + 8);
	t->sent_blocks = tx_get64(p + 16);
	t->sent_bytes = tx_get64(p + 24);
	memcpy(t->root, p + 32, VR_TX_HASH);
	if (t->instance_blocks != d->instance_blocks || t->sent_blocks != d->sent_blocks ||
	    t->sent_bytes != d->sent_bytes)
		return fail(d, VR_TX_ECOUNT,
			    "trailer says %llu/%llu blocks %llu bytes, stream had %llu/%llu %llu",
			    (unsigned long long)t->instance_blocks,
			    (unsigned long long)t->sent_blocks, (unsigned long long)t->sent_bytes,
			    (unsigned long long)d->instance_blocks,
			    (unsigned long long)d->sent_blocks, (unsigned long long)d->sent_bytes);
	uint8_t root[VR_TX_HASH];
	vr_tx_root_final(&d->root, root);
	if (memcmp(root, t->root, VR_TX_HASH))
		return fail(d, VR_TX_EROOT, "the blocks do not hash to the sender's root");
	d->state = DEC_DONE;
	return VR_TX_EV_TRAILER;
}

/* A complete record part is in d->small or d->payload: act on it. */
static int step(struct vr_tx_dec *d)
{
	switch (d->state) {
	case DEC_HEADER: return parse_header(d);
	case DEC_RECORD:
		if (d->small[0] == VR_TX_REC_RUN) {
			d->state = DEC_RUNHDR;
			d->need = VR_TX_RUN_LEN;
		} else if (d->small[0] == VR_TX_REC_TRAILER) {
			d->state = DEC_TRAILER;
			d->need = VR_TX_TRAILER_LEN;
		} else {
			return fail(d, VR_TX_ERECORD, "record type 0x%02x", d->small[0]);
		}
		return VR_TX_OK;
	case DEC_RUNHDR: return parse_run(d);
	case DEC_PAYLOAD: return finish_run(d);
	case DEC_TRAILER: return parse_trailer(d);
	default: return fail(d, VR_TX_ESTATE, "decoder state %d", d->state);
	}
}

int vr_tx_dec_feed(struct vr_tx_dec *d, const uint8_t *p, size_t n, size_t *used)
{
	*used = 0;
	if (d->err)
		return d->err;
	if (!d->state || !d->payload)
		return fail(d, VR_TX_ESTATE, "decoder not initialized");
	d->run_data = NULL;
	while (*used < n) {
		if (d->state == DEC_DONE)
			return fail(d, VR_TX_ETRAILING, "%zu bytes", n - *used);
		uint8_t *dst = d->state == DEC_PAYLOAD ? d->payload : d->small;
		size_t take = d->need - d->have;
		if (take > n - *used)
			take = n - *used;
		memcpy(dst + d->have, p + *used, take);
		d->have += take;
		*used += take;
		d->offset += take;
		if (d->state == DEC_FIXED) {
			int err = check_fixed(d);
			if (err)
				return err;
			continue;
		}
		if (d->have < d->need)
			continue;
		int r = step(d);
		if (r < 0)
			return r;
		if (r > 0)
			return r;
	}
	return VR_TX_EV_NONE;
}

int vr_tx_dec_end(struct vr_tx_dec *d)
{
	if (d->err)
		return d->err;
	if (d->state == DEC_DONE)
		return VR_TX_OK;
	return fail(d, VR_TX_ETRUNCATED, "the stream ended before its trailer");
}

int vr_tx_dec_prime(struct vr_tx_dec *d, unsigned disk, uint64_t block,
		    const uint8_t leaf[VR_TX_HASH])
{
	if (d->err)
		return d->err;
	if (d->state != DEC_RECORD || d->have || d->sent_blocks)
		return VR_TX_ESTATE;
	int err = check_order(d, disk, block, 1);
	if (err)
		return err;
	vr_tx_root_add(&d->root, disk, leaf);
	d->disk = (int)disk;
	d->next_block = block + 1;
	d->instance_blocks++;
	return VR_TX_OK;
}

int vr_tx_dec_resume_reply(const struct vr_tx_dec *d, struct vr_tx_reply *r)
{
	if (d->err || d->state < DEC_RECORD)
		return VR_TX_ESTATE;
	memset(r, 0, sizeof *r);
	r->kind = VR_TX_REPLY_RESUME;
	memcpy(r->replication, d->hdr.replication, VR_TX_ID);
	memcpy(r->instance, d->hdr.instance, VR_TX_ID);
	r->resume_token = d->hdr.resume_token;
	r->ndisks = d->hdr.ndisks;
	for (int i = 0; i < d->hdr.ndisks; i++) {
		if (i < d->disk)
			r->next_block[i] = d->hdr.disks[i].size / VR_TX_BLOCK;
		else if (i == d->disk)
			r->next_block[i] = d->next_block;
	}
	return VR_TX_OK;
}
