/* Shared by the transfer protocol tests: a seeded generator, random
 * streams with the images they describe, and a decoder driver that feeds
 * any chunking, each chunk in its own exactly sized allocation so that
 * AddressSanitizer sees any read past what was given. */
#ifndef TEST_TRANSFER_COMMON_H
#define TEST_TRANSFER_COMMON_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/wire.h"
#include "vrcloud/buf.h"
#include "vrcloud/transfer.h"

#define T_REPL "6f1c2a3e-1b2d-4c5e-8f90-a1b2c3d4e5f6"
#define T_INST "0a0b0c0d-0e0f-4011-8213-141516171819"

static uint64_t t_rng = 1;

static inline uint64_t t_rand(void)
{
	t_rng ^= t_rng << 13;
	t_rng ^= t_rng >> 7;
	t_rng ^= t_rng << 17;
	return t_rng;
}

static inline void t_header(struct vr_tx_header *h, unsigned ndisks, uint64_t blocks_each)
{
	memset(h, 0, sizeof *h);
	h->version = VR_TX_VERSION;
	h->flags = VR_TX_INCREMENTAL;
	h->codec = VR_TX_CODEC_NONE;
	h->ndisks = (uint8_t)ndisks;
	cr_assert_eq(vr_tx_id_parse(h->replication, T_REPL), 0);
	cr_assert_eq(vr_tx_id_parse(h->instance, T_INST), 0);
	h->point_in_time_ms = 1764150000123ULL;
	h->resume_token = 0x1122334455667788ULL;
	for (unsigned d = 0; d < ndisks; d++) {
		snprintf(h->disks[d].key, sizeof h->disks[d].key, "scsi0:%u", d);
		h->disks[d].size = (blocks_each + d) * VR_TX_BLOCK;
	}
}

/* A source: per disk an image; changed[] marks the blocks in the stream. */
struct t_src {
	struct vr_tx_header hdr;
	uint8_t *img[VR_TX_MAX_DISKS];
	uint8_t *changed[VR_TX_MAX_DISKS];
};

static inline void t_src_make(struct t_src *s, unsigned ndisks, uint64_t blocks_each,
			      unsigned max_run)
{
	t_header(&s->hdr, ndisks, blocks_each);
	for (unsigned d = 0; d < ndisks; d++) {
		uint64_t nb = s->hdr.disks[d].size / VR_TX_BLOCK;
		s->img[d] = malloc(nb * VR_TX_BLOCK);
		s->changed[d] = calloc(nb, 1);
		cr_assert(s->img[d] && s->changed[d]);
		for (uint64_t i = 0; i < nb * VR_TX_BLOCK; i += 8) {
			uint64_t v = t_rand();
			memcpy(s->img[d] + i, &v, 8);
		}
		for (uint64_t b = t_rand() % 4; b < nb;) {
			uint64_t len = 1 + t_rand() % max_run;
			for (uint64_t i = b; i < b + len && i < nb; i++)
				s->changed[d][i] = 1;
			b += len + 1 + t_rand() % (2 * max_run);
		}
	}
}

static inline void t_src_free(struct t_src *s)
{
	for (unsigned d = 0; d < s->hdr.ndisks; d++) {
		free(s->img[d]);
		free(s->changed[d]);
	}
}

/* Encodes the changed blocks as runs (split at max_run blocks). */
static inline void t_encode(const struct t_src *s, struct vr_buf *out, const struct vr_tx_reply *r,
			    struct vr_tx_trailer *t, unsigned max_run)
{
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &s->hdr, vr_tx_sink_buf, out), 0);
	if (r)
		cr_assert_eq(vr_tx_enc_resume(&e, r), 0);
	for (unsigned d = 0; d < s->hdr.ndisks; d++) {
		uint64_t nb = s->hdr.disks[d].size / VR_TX_BLOCK;
		for (uint64_t b = 0; b < nb;) {
			if (!s->changed[d][b]) {
				b++;
				continue;
			}
			uint32_t n = 0;
			while (b + n < nb && s->changed[d][b + n] && n < max_run)
				n++;
			cr_assert_eq(vr_tx_enc_run(&e, d, b, n, s->img[d] + b * VR_TX_BLOCK), 0);
			b += n;
		}
	}
	cr_assert_eq(vr_tx_enc_finish(&e, t), 0);
}

/* The receiver's images (zero outside what arrived). */
struct t_dst {
	unsigned ndisks;
	uint64_t size[VR_TX_MAX_DISKS];
	uint8_t *img[VR_TX_MAX_DISKS];
	unsigned runs;
	unsigned packed; /* runs that arrived compressed */
};

static inline void t_dst_free(struct t_dst *r)
{
	for (unsigned d = 0; d < VR_TX_MAX_DISKS; d++)
		free(r->img[d]);
	memset(r, 0, sizeof *r);
}

static inline void t_apply(struct t_dst *r, const struct vr_tx_dec *d)
{
	if (!r)
		return;
	cr_assert_lt(d->run_disk, r->ndisks);
	cr_assert_leq((d->run_first + d->run_count) * VR_TX_BLOCK, r->size[d->run_disk]);
	memcpy(r->img[d->run_disk] + d->run_first * VR_TX_BLOCK, d->run_data,
	       (size_t)d->run_count * VR_TX_BLOCK);
	r->runs++;
	r->packed += d->run_codec != VR_TX_CODEC_NONE;
}

static inline void t_on_header(struct t_dst *r, const struct vr_tx_dec *d)
{
	if (!r || r->ndisks)
		return;
	r->ndisks = d->hdr.ndisks;
	for (unsigned i = 0; i < r->ndisks; i++) {
		r->size[i] = d->hdr.disks[i].size;
		r->img[i] = calloc(1, r->size[i]);
		cr_assert_not_null(r->img[i]);
	}
}

/* Feeds s[0..n) in chunks of `chunk` bytes (0: random sizes up to 9000);
 * returns the first error, or vr_tx_dec_end()'s verdict. */
static inline int t_decode_with(struct vr_tx_dec *d, const uint8_t *s, size_t n, size_t chunk,
				struct t_dst *r)
{
	size_t off = 0;
	while (off < n) {
		size_t len = chunk ? chunk : 1 + t_rand() % 9000;
		if (len > n - off)
			len = n - off;
		uint8_t *c = malloc(len);
		cr_assert_not_null(c);
		memcpy(c, s + off, len);
		size_t pos = 0;
		while (pos < len) {
			size_t used = 0;
			int rc = vr_tx_dec_feed(d, c + pos, len - pos, &used);
			cr_assert_leq(used, len - pos);
			pos += used;
			if (rc < 0) {
				free(c);
				return rc;
			}
			if (rc == VR_TX_EV_HEADER)
				t_on_header(r, d);
			else if (rc == VR_TX_EV_RUN)
				t_apply(r, d);
			else if (rc == VR_TX_EV_NONE)
				cr_assert_eq(pos, len);
		}
		free(c);
		off += len;
	}
	return vr_tx_dec_end(d);
}

static inline int t_decode(const uint8_t *s, size_t n, size_t chunk, struct t_dst *r)
{
	uint8_t repl[VR_TX_ID];
	cr_assert_eq(vr_tx_id_parse(repl, T_REPL), 0);
	struct vr_tx_dec *d = malloc(sizeof *d);
	cr_assert_not_null(d);
	cr_assert_eq(vr_tx_dec_init(d, repl), 0);
	int rc = t_decode_with(d, s, n, chunk, r);
	if (rc)
		cr_assert_neq(strcmp(vr_tx_dec_message(d), "ok"), 0);
	vr_tx_dec_free(d);
	free(d);
	return rc;
}

#endif
