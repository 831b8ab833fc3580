/* The sender's side: header, runs, trailer (docs/transfer-protocol.md). */
#include <string.h>

#include "transfer/wire.h"

enum { ENC_RUNS = 1, ENC_STARTED, ENC_DONE, ENC_FAILED };

int vr_tx_enc_init(struct vr_tx_enc *e, const struct vr_tx_header *h, vr_tx_sink sink, void *ctx)
{
	char msg[160];
	memset(e, 0, sizeof *e);
	e->state = ENC_FAILED;
	int err = tx_header_check(h, msg, sizeof msg);
	if (err)
		return err;
	e->hdr = *h;
	e->sink = sink;
	e->ctx = ctx;
	e->disk = -1;
	vr_tx_root_init(&e->root, h->ndisks);
	err = tx_codec_enc_init(e);
	if (!err) {
		uint8_t out[VR_TX_MAX_HEADER_LEN];
		size_t n = tx_header_write(h, out);
		err = sink(ctx, out, n);
	}
	if (err) {
		tx_codec_enc_free(e);
		return err;
	}
	e->state = ENC_RUNS;
	return VR_TX_OK;
}

void vr_tx_enc_free(struct vr_tx_enc *e)
{
	tx_codec_enc_free(e);
}

int vr_tx_enc_resume(struct vr_tx_enc *e, const struct vr_tx_reply *r)
{
	if (e->state != ENC_RUNS)
		return VR_TX_ESTATE;
	if (r->kind != VR_TX_REPLY_RESUME || r->status != 0 || r->ndisks != e->hdr.ndisks ||
	    memcmp(r->replication, e->hdr.replication, VR_TX_ID) ||
	    memcmp(r->instance, e->hdr.instance, VR_TX_ID) ||
	    r->resume_token != e->hdr.resume_token)
		return VR_TX_EREPLY;
	for (unsigned d = 0; d < r->ndisks; d++)
		if (r->next_block[d] > e->hdr.disks[d].size / VR_TX_BLOCK)
			return VR_TX_EREPLY;
	memcpy(e->resume, r->next_block, sizeof e->resume);
	return VR_TX_OK;
}

static int emit(struct vr_tx_enc *e, unsigned disk, uint64_t first, uint32_t count,
		const uint8_t *data)
{
	uint8_t h[VR_TX_RUN_LEN];
	uint32_t raw = count * VR_TX_BLOCK, len = raw;
	uint8_t codec = VR_TX_CODEC_NONE;
	const uint8_t *payload = data;
	size_t packed = tx_codec_compress(e, data, raw);
	if (packed) {
		codec = e->hdr.codec;
		payload = e->scratch;
		len = (uint32_t)packed;
	}
	h[0] = VR_TX_REC_RUN;
	h[1] = codec;
	tx_put16(h + 2, (uint16_t)disk);
	tx_put32(h + 4, count);
	tx_put64(h + 8, first);
	tx_put32(h + 16, len);
	tx_sha256(h + 20, h, 20, payload, len, NULL, 0);
	int err = e->sink(e->ctx, h, sizeof h);
	if (!err)
		err = e->sink(e->ctx, payload, len);
	if (err)
		return err;
	e->sent_blocks += count;
	e->sent_bytes += len;
	e->raw_bytes += raw;
	return VR_TX_OK;
}

int vr_tx_enc_run(struct vr_tx_enc *e, unsigned disk, uint64_t first, uint32_t count,
		  const uint8_t *data)
{
	return vr_tx_enc_run_leaves(e, disk, first, count, data, NULL);
}

int vr_tx_enc_run_leaves(struct vr_tx_enc *e, unsigned disk, uint64_t first, uint32_t count,
			 const uint8_t *data, const uint8_t *leaves)
{
	if (e->state != ENC_RUNS && e->state != ENC_STARTED)
		return VR_TX_ESTATE;
	if (count == 0 || count > VR_TX_MAX_RUN_BLOCKS)
		return VR_TX_ERUNSIZE;
	if (disk >= e->hdr.ndisks)
		return VR_TX_ERANGE;
	uint64_t blocks = e->hdr.disks[disk].size / VR_TX_BLOCK;
	if (first >= blocks || count > blocks - first)
		return VR_TX_ERANGE;
	if ((int)disk < e->disk || ((int)disk == e->disk && first < e->next_block))
		return VR_TX_EORDER;
	for (uint32_t i = 0; i < count; i++) {
		uint8_t leaf[VR_TX_HASH];
		if (leaves)
			memcpy(leaf, leaves + (size_t)i * VR_TX_HASH, VR_TX_HASH);
		else
			vr_tx_leaf(first + i, data + (size_t)i * VR_TX_BLOCK, leaf);
		vr_tx_root_add(&e->root, disk, leaf);
	}
	e->instance_blocks += count;
	e->state = ENC_STARTED;
	e->disk = (int)disk;
	e->next_block = first + count;
	/* Blocks under the receiver's position are already staged there. */
	uint64_t from = first;
	if (from < e->resume[disk])
		from = e->resume[disk];
	if (from >= first + count)
		return VR_TX_OK;
	int err = emit(e, disk, from, (uint32_t)(first + count - from),
		       data + (size_t)(from - first) * VR_TX_BLOCK);
	if (err)
		e->state = ENC_FAILED;
	return err;
}

int vr_tx_enc_finish(struct vr_tx_enc *e, struct vr_tx_trailer *t)
{
	if (e->state != ENC_RUNS && e->state != ENC_STARTED)
		return VR_TX_ESTATE;
	struct vr_tx_trailer tr = {
		.instance_blocks = e->instance_blocks,
		.sent_blocks = e->sent_blocks,
		.sent_bytes = e->sent_bytes,
	};
	vr_tx_root_final(&e->root, tr.root);
	uint8_t b[VR_TX_TRAILER_LEN] = {VR_TX_REC_TRAILER};
	tx_put64(b + 8, tr.instance_blocks);
	tx_put64(b + 16, tr.sent_blocks);
	tx_put64(b + 24, tr.sent_bytes);
	memcpy(b + 32, tr.root, VR_TX_HASH);
	int err = e->sink(e->ctx, b, sizeof b);
	e->state = err ? ENC_FAILED : ENC_DONE;
	tx_codec_enc_free(e);
	if (!err && t)
		*t = tr;
	return err;
}
