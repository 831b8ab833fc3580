/* Compressed runs (zstd, lz4): round trips over random chunkings with
 * compressible and incompressible data, raw fallback, resume, and hostile
 * compressed payloads (zip bombs, frames without or with wrong sizes,
 * truncated frames, garbage) refused without writing past any buffer. */
#include <lz4.h>
#include <zstd.h>

#include "test_transfer_common.h"

static const uint8_t codecs[] = {VR_TX_CODEC_NONE, VR_TX_CODEC_ZSTD, VR_TX_CODEC_LZ4};

/* Makes about percent of every disk's blocks compressible: a few repeated
 * words and zero runs, like file system metadata and text. */
static void make_compressible(struct t_src *s, unsigned percent)
{
	for (unsigned d = 0; d < s->hdr.ndisks; d++) {
		uint64_t nb = s->hdr.disks[d].size / VR_TX_BLOCK;
		for (uint64_t b = 0; b < nb; b++) {
			if (t_rand() % 100 >= percent)
				continue;
			uint8_t *p = s->img[d] + b * VR_TX_BLOCK;
			uint64_t word = t_rand();
			for (size_t i = 0; i < VR_TX_BLOCK; i += 8) {
				uint64_t v = i % 512 < 256 ? word : 0;
				if (t_rand() % 16 == 0)
					v = t_rand() % 256;
				memcpy(p + i, &v, 8);
			}
		}
	}
}

static void expect_equal(const struct t_src *s, const struct t_dst *r)
{
	static const uint8_t zero[VR_TX_BLOCK];
	cr_assert_eq(r->ndisks, s->hdr.ndisks);
	for (unsigned d = 0; d < s->hdr.ndisks; d++) {
		uint64_t nb = s->hdr.disks[d].size / VR_TX_BLOCK;
		for (uint64_t b = 0; b < nb; b++) {
			const uint8_t *want = s->changed[d][b] ? s->img[d] + b * VR_TX_BLOCK : zero;
			cr_assert_eq(memcmp(r->img[d] + b * VR_TX_BLOCK, want, VR_TX_BLOCK), 0,
				     "disk %u block %llu", d, (unsigned long long)b);
		}
	}
}

/* Encodes s with codec; returns the stream length; *t the trailer. */
static size_t encode_with(struct t_src *s, uint8_t codec, struct vr_buf *out,
			  struct vr_tx_trailer *t, unsigned max_run)
{
	s->hdr.codec = codec;
	vr_buf_init(out, 0);
	t_encode(s, out, NULL, t, max_run);
	return out->len;
}

Test(transfer_compress, round_trips_each_codec_random_chunkings, .timeout = 120)
{
	static const size_t chunks[] = {1, 7, 4096, 65536, 0, 0};
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		for (size_t k = 0; k < sizeof codecs; k++) {
			t_rng = 1000 + c;
			struct t_src s;
			t_src_make(&s, 2, chunks[c] == 1 ? 120 : 700, 300);
			make_compressible(&s, 60);
			struct vr_buf out;
			struct vr_tx_trailer t;
			unsigned max_run = 1 + (unsigned)(t_rand() % VR_TX_MAX_RUN_BLOCKS);
			encode_with(&s, codecs[k], &out, &t, max_run);
			cr_assert_eq(t.sent_blocks, t.instance_blocks);
			if (codecs[k] == VR_TX_CODEC_NONE)
				cr_assert_eq(t.sent_bytes, t.sent_blocks * VR_TX_BLOCK);
			else
				cr_assert_lt(t.sent_bytes, t.sent_blocks * VR_TX_BLOCK);
			struct t_dst r = {0};
			cr_assert_eq(t_decode((uint8_t *)out.data, out.len, chunks[c], &r), 0,
				     "codec %u chunk %zu", codecs[k], chunks[c]);
			expect_equal(&s, &r);
			if (codecs[k] == VR_TX_CODEC_NONE)
				cr_assert_eq(r.packed, 0);
			else
				cr_assert_gt(r.packed, 0);
			t_dst_free(&r);
			vr_buf_free(&out);
			t_src_free(&s);
		}
	}
}

Test(transfer_compress, roots_and_counts_agree_across_codecs)
{
	t_rng = 31;
	struct t_src s;
	t_src_make(&s, 3, 500, 200);
	make_compressible(&s, 50);
	struct vr_tx_trailer t[3];
	size_t len[3];
	for (size_t k = 0; k < sizeof codecs; k++) {
		struct vr_buf out;
		len[k] = encode_with(&s, codecs[k], &out, &t[k], 64);
		vr_buf_free(&out);
	}
	/* the root is over the blocks, not over what was sent */
	for (size_t k = 1; k < sizeof codecs; k++) {
		cr_assert_eq(memcmp(t[k].root, t[0].root, VR_TX_HASH), 0);
		cr_assert_eq(t[k].instance_blocks, t[0].instance_blocks);
		cr_assert_lt(len[k], len[0] * 3 / 4, "codec %u: %zu of %zu", codecs[k], len[k],
			     len[0]);
	}
	t_src_free(&s);
}

Test(transfer_compress, incompressible_runs_go_raw)
{
	for (size_t k = 1; k < sizeof codecs; k++) {
		t_rng = 77;
		struct t_src s;
		t_src_make(&s, 1, 600, 256);
		struct vr_buf plain, packed;
		struct vr_tx_trailer tp, tc;
		encode_with(&s, VR_TX_CODEC_NONE, &plain, &tp, 256);
		encode_with(&s, codecs[k], &packed, &tc, 256);
		/* random data: every run raw, the stream as long as without a codec */
		cr_assert_eq(packed.len, plain.len);
		cr_assert_eq(tc.sent_bytes, tp.sent_bytes);
		struct t_dst r = {0};
		cr_assert_eq(t_decode((uint8_t *)packed.data, packed.len, 0, &r), 0);
		cr_assert_eq(r.packed, 0);
		cr_assert_gt(r.runs, 0);
		expect_equal(&s, &r);
		t_dst_free(&r);
		vr_buf_free(&plain);
		vr_buf_free(&packed);
		t_src_free(&s);
	}
}

Test(transfer_compress, zero_blocks_shrink_to_almost_nothing)
{
	for (size_t k = 1; k < sizeof codecs; k++) {
		struct vr_tx_header h;
		t_header(&h, 1, 4096);
		h.codec = codecs[k];
		uint8_t *zero = calloc(VR_TX_MAX_RUN_BLOCKS, VR_TX_BLOCK);
		cr_assert_not_null(zero);
		struct vr_buf out;
		vr_buf_init(&out, 0);
		struct vr_tx_enc e;
		cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &out), 0);
		/* one scratch buffer, no bigger than a compressed maximal run */
		cr_assert_not_null(e.scratch);
		cr_assert_geq(e.scratch_len, ZSTD_compressBound(VR_TX_MAX_PAYLOAD));
		cr_assert_leq(e.scratch_len, VR_TX_MAX_PAYLOAD + VR_TX_MAX_PAYLOAD / 64);
		for (uint64_t b = 0; b < 4096; b += VR_TX_MAX_RUN_BLOCKS)
			cr_assert_eq(vr_tx_enc_run(&e, 0, b, VR_TX_MAX_RUN_BLOCKS, zero), 0);
		struct vr_tx_trailer t;
		cr_assert_eq(vr_tx_enc_finish(&e, &t), 0);
		cr_assert_null(e.scratch);
		cr_assert_eq(e.raw_bytes, 4096ull * VR_TX_BLOCK);
		cr_assert_lt(t.sent_bytes, 4096ull * VR_TX_BLOCK / 100, "codec %u: %llu bytes",
			     codecs[k], (unsigned long long)t.sent_bytes);
		uint8_t repl[VR_TX_ID];
		vr_tx_id_parse(repl, T_REPL);
		struct vr_tx_dec *d = malloc(sizeof *d);
		cr_assert_not_null(d);
		cr_assert_eq(vr_tx_dec_init(d, repl), 0);
		cr_assert_eq(t_decode_with(d, (uint8_t *)out.data, out.len, 5000, NULL), 0);
		cr_assert_eq(d->raw_bytes, 4096ull * VR_TX_BLOCK);
		cr_assert_eq(d->sent_bytes, t.sent_bytes);
		vr_tx_dec_free(d);
		free(d);
		vr_buf_free(&out);
		free(zero);
	}
}

Test(transfer_compress, resume_with_a_codec)
{
	for (size_t k = 1; k < sizeof codecs; k++) {
		t_rng = 55;
		struct t_src s;
		t_src_make(&s, 2, 300, 40);
		make_compressible(&s, 70);
		s.hdr.codec = codecs[k];
		struct vr_buf full;
		vr_buf_init(&full, 0);
		struct vr_tx_trailer t;
		t_encode(&s, &full, NULL, &t, 16);
		/* a receiver that got the first third of the stream */
		uint8_t repl[VR_TX_ID];
		vr_tx_id_parse(repl, T_REPL);
		struct vr_tx_dec *d = malloc(sizeof *d);
		cr_assert_not_null(d);
		cr_assert_eq(vr_tx_dec_init(d, repl), 0);
		struct t_dst r = {0};
		cr_assert_eq(t_decode_with(d, (uint8_t *)full.data, full.len / 3, 999, &r),
			     VR_TX_ETRUNCATED);
		struct vr_tx_reply rep = {.kind = VR_TX_REPLY_RESUME, .ndisks = s.hdr.ndisks};
		memcpy(rep.replication, s.hdr.replication, VR_TX_ID);
		memcpy(rep.instance, s.hdr.instance, VR_TX_ID);
		rep.resume_token = s.hdr.resume_token;
		rep.next_block[0] = d->next_block;
		vr_tx_dec_free(d);
		/* the second attempt: the receiver primes what it kept */
		cr_assert_eq(vr_tx_dec_init(d, repl), 0);
		struct vr_buf hdr;
		vr_buf_init(&hdr, 0);
		struct vr_tx_enc e;
		cr_assert_eq(vr_tx_enc_init(&e, &s.hdr, vr_tx_sink_buf, &hdr), 0);
		size_t used;
		cr_assert_eq(vr_tx_dec_feed(d, (uint8_t *)hdr.data, hdr.len, &used),
			     VR_TX_EV_HEADER);
		for (uint64_t b = 0; b < rep.next_block[0]; b++)
			if (s.changed[0][b]) {
				uint8_t leaf[VR_TX_HASH];
				vr_tx_leaf(b, s.img[0] + b * VR_TX_BLOCK, leaf);
				cr_assert_eq(vr_tx_dec_prime(d, 0, b, leaf), 0);
			}
		vr_tx_enc_free(&e);
		vr_buf_free(&hdr);
		struct vr_buf again;
		vr_buf_init(&again, 0);
		t_encode(&s, &again, &rep, NULL, 16);
		cr_assert_lt(again.len, full.len);
		cr_assert_eq(
			t_decode_with(d, (uint8_t *)again.data + used, again.len - used, 0, &r), 0);
		expect_equal(&s, &r);
		vr_tx_dec_free(d);
		free(d);
		t_dst_free(&r);
		vr_buf_free(&again);
		vr_buf_free(&full);
		t_src_free(&s);
	}
}

/* --- hostile compressed payloads ----------------------------------------- */

/* A stream: the header (codec, one disk of 1000 blocks), then one run
 * record with the given codec byte, count and payload, correctly
 * checksummed, then a trailer claiming what the blocks would be. */
static void crafted(struct vr_buf *out, uint8_t hdr_codec, uint8_t run_codec, uint32_t count,
		    const void *payload, size_t len)
{
	struct vr_tx_header h;
	t_header(&h, 1, 1000);
	h.codec = hdr_codec;
	vr_buf_init(out, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, out), 0);
	vr_tx_enc_free(&e);
	uint8_t r[VR_TX_RUN_LEN] = {VR_TX_REC_RUN, run_codec};
	tx_put16(r + 2, 0);
	tx_put32(r + 4, count);
	tx_put64(r + 8, 10);
	tx_put32(r + 16, (uint32_t)len);
	tx_sha256(r + 20, r, 20, payload, len, NULL, 0);
	cr_assert_eq(vr_buf_append(out, r, sizeof r), 0);
	cr_assert_eq(vr_buf_append(out, payload, len), 0);
	uint8_t t[VR_TX_TRAILER_LEN] = {VR_TX_REC_TRAILER};
	tx_put64(t + 8, count);
	tx_put64(t + 16, count);
	tx_put64(t + 24, len);
	cr_assert_eq(vr_buf_append(out, t, sizeof t), 0);
}

static int decode_crafted(uint8_t hdr_codec, uint8_t run_codec, uint32_t count, const void *payload,
			  size_t len)
{
	struct vr_buf b;
	crafted(&b, hdr_codec, run_codec, count, payload, len);
	int rc = t_decode((uint8_t *)b.data, b.len, 1 + t_rand() % 5000, NULL);
	vr_buf_free(&b);
	return rc;
}

/* A zstd frame of src[0..n): with its content size, or without it. */
static size_t zframe(uint8_t *dst, size_t cap, const void *src, size_t n, int with_size)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	cr_assert_not_null(c);
	cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, with_size)));
	size_t r;
	if (with_size) {
		r = ZSTD_compress2(c, dst, cap, src, n);
	} else {
		/* streaming without a pledged size: no content size in the frame */
		ZSTD_outBuffer o = {dst, cap, 0};
		ZSTD_inBuffer i = {src, n, 0};
		r = ZSTD_compressStream2(c, &o, &i, ZSTD_e_end);
		cr_assert_eq(r, 0);
		r = o.pos;
	}
	cr_assert(!ZSTD_isError(r));
	ZSTD_freeCCtx(c);
	return r;
}

Test(transfer_compress, zstd_bombs_and_bad_frames_refused)
{
	t_rng = 404;
	size_t huge = 64u << 20;
	uint8_t *zeros = calloc(1, huge + 1);
	uint8_t *f = malloc(1 << 20);
	cr_assert(zeros && f);
	/* claims 64 MiB in a run of one block */
	size_t n = zframe(f, 1 << 20, zeros, huge, 1);
	cr_assert_lt(n, VR_TX_BLOCK);
	cr_assert_eq(ZSTD_getFrameContentSize(f, n), huge);
	cr_assert_eq(decode_crafted(1, 1, 1, f, n), VR_TX_ERUNSIZE);
	/* the same bomb without its size: refused before it is decompressed */
	n = zframe(f, 1 << 20, zeros, huge, 0);
	cr_assert_lt(n, VR_TX_BLOCK);
	cr_assert_eq(decode_crafted(1, 1, 1, f, n), VR_TX_ECHECKSUM);
	/* one byte more than its blocks */
	n = zframe(f, 1 << 20, zeros, 4 * VR_TX_BLOCK + 1, 1);
	cr_assert_eq(decode_crafted(1, 1, 4, f, n), VR_TX_ERUNSIZE);
	/* one block short: a wrong size */
	n = zframe(f, 1 << 20, zeros, 3 * VR_TX_BLOCK, 1);
	cr_assert_eq(decode_crafted(1, 1, 4, f, n), VR_TX_ECHECKSUM);
	/* exactly its blocks, but no content size */
	n = zframe(f, 1 << 20, zeros, 4 * VR_TX_BLOCK, 0);
	cr_assert_eq(decode_crafted(1, 1, 4, f, n), VR_TX_ECHECKSUM);
	/* exactly its blocks: accepted, and the root then decides */
	n = zframe(f, 1 << 20, zeros, 4 * VR_TX_BLOCK, 1);
	cr_assert_eq(decode_crafted(1, 1, 4, f, n), VR_TX_EROOT);
	/* every truncation of a good frame */
	uint8_t *blocks = malloc(8 * VR_TX_BLOCK);
	cr_assert_not_null(blocks);
	for (size_t i = 0; i < 8 * VR_TX_BLOCK; i++)
		blocks[i] = (uint8_t)(i % 251 < 128 ? i / 64 : t_rand() % 4);
	n = zframe(f, 1 << 20, blocks, 8 * VR_TX_BLOCK, 1);
	cr_assert_lt(n, 8 * VR_TX_BLOCK);
	for (size_t cut = 1; cut < n; cut++)
		cr_assert_eq(decode_crafted(1, 1, 8, f, cut), VR_TX_ECHECKSUM, "cut %zu", cut);
	/* two frames of half the blocks each */
	size_t h1 = zframe(f, 1 << 20, blocks, 4 * VR_TX_BLOCK, 1);
	size_t h2 = zframe(f + h1, (1 << 20) - h1, blocks + 4 * VR_TX_BLOCK, 4 * VR_TX_BLOCK, 1);
	cr_assert_eq(decode_crafted(1, 1, 8, f, h1 + h2), VR_TX_ECHECKSUM);
	/* a good frame with bytes after it */
	n = zframe(f, 1 << 20, blocks, 8 * VR_TX_BLOCK, 1);
	f[n] = 0;
	cr_assert_eq(decode_crafted(1, 1, 8, f, n + 1), VR_TX_ECHECKSUM);
	/* a good frame decodes; its checksum over the compressed bytes */
	struct vr_buf b;
	crafted(&b, 1, 1, 8, f, n);
	uint8_t *p = (uint8_t *)b.data;
	size_t hlen = tx_get32(p + 68);
	cr_assert_eq(t_decode(p, b.len, 0, NULL), VR_TX_EROOT);
	p[hlen + VR_TX_RUN_LEN + n / 2] ^= 1;
	cr_assert_eq(t_decode(p, b.len, 0, NULL), VR_TX_ECHECKSUM);
	vr_buf_free(&b);
	/* garbage */
	for (int i = 0; i < 200; i++) {
		size_t len = 1 + t_rand() % 3000;
		for (size_t j = 0; j < len; j++)
			f[j] = (uint8_t)t_rand();
		if (i % 2)
			memcpy(f, "\x28\xb5\x2f\xfd", len < 4 ? len : 4); /* the zstd magic */
		int rc = decode_crafted(1, 1, 1, f, len);
		cr_assert(rc == VR_TX_ECHECKSUM || rc == VR_TX_ERUNSIZE, "rc %d", rc);
	}
	free(blocks);
	free(zeros);
	free(f);
}

Test(transfer_compress, lz4_bad_blocks_refused)
{
	t_rng = 505;
	size_t big = 512u << 10;
	uint8_t *zeros = calloc(1, big);
	uint8_t *f = malloc(LZ4_compressBound((int)big));
	cr_assert(zeros && f);
	int cap = LZ4_compressBound((int)big);
	/* decodes to 512 KiB: in a run of one block it would overflow */
	int n = LZ4_compress_default((char *)zeros, (char *)f, (int)big, cap);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, VR_TX_BLOCK);
	cr_assert_eq(decode_crafted(2, 2, 1, f, (size_t)n), VR_TX_ECHECKSUM);
	/* one block short, one byte long */
	n = LZ4_compress_default((char *)zeros, (char *)f, 3 * VR_TX_BLOCK, cap);
	cr_assert_eq(decode_crafted(2, 2, 4, f, (size_t)n), VR_TX_ECHECKSUM);
	n = LZ4_compress_default((char *)zeros, (char *)f, 4 * VR_TX_BLOCK + 1, cap);
	cr_assert_eq(decode_crafted(2, 2, 4, f, (size_t)n), VR_TX_ECHECKSUM);
	/* exactly right: accepted, the root decides */
	n = LZ4_compress_default((char *)zeros, (char *)f, 4 * VR_TX_BLOCK, cap);
	cr_assert_eq(decode_crafted(2, 2, 4, f, (size_t)n), VR_TX_EROOT);
	/* every truncation */
	uint8_t *blocks = malloc(8 * VR_TX_BLOCK);
	cr_assert_not_null(blocks);
	for (size_t i = 0; i < 8 * VR_TX_BLOCK; i++)
		blocks[i] = (uint8_t)(i % 251 < 128 ? i / 64 : t_rand() % 4);
	n = LZ4_compress_default((char *)blocks, (char *)f, 8 * VR_TX_BLOCK, cap);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, 8 * VR_TX_BLOCK);
	for (int cut = 1; cut < n; cut++)
		cr_assert_eq(decode_crafted(2, 2, 8, f, (size_t)cut), VR_TX_ECHECKSUM, "cut %d",
			     cut);
	/* garbage */
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + t_rand() % 3000;
		for (size_t j = 0; j < len; j++)
			f[j] = (uint8_t)t_rand();
		cr_assert_eq(decode_crafted(2, 2, 1, f, len), VR_TX_ECHECKSUM);
	}
	free(blocks);
	free(zeros);
	free(f);
}

Test(transfer_compress, run_codec_and_length_rules)
{
	uint8_t blocks[2 * VR_TX_BLOCK] = {0};
	uint8_t f[3 * VR_TX_BLOCK];
	size_t n = zframe(f, sizeof f, blocks, sizeof blocks, 1);
	/* a run's codec is 0 or the header's */
	cr_assert_eq(decode_crafted(0, 1, 2, f, n), VR_TX_ECODEC);
	cr_assert_eq(decode_crafted(2, 1, 2, f, n), VR_TX_ECODEC);
	cr_assert_eq(decode_crafted(1, 2, 2, f, n), VR_TX_ECODEC);
	cr_assert_eq(decode_crafted(1, 3, 2, f, n), VR_TX_ECODEC);
	/* raw runs under a codec are fine */
	cr_assert_eq(decode_crafted(1, 0, 2, blocks, sizeof blocks), VR_TX_EROOT);
	cr_assert_eq(decode_crafted(2, 0, 2, blocks, sizeof blocks), VR_TX_EROOT);
	/* a compressed payload must be shorter than its blocks */
	memset(f + n, 0, sizeof f - n);
	cr_assert_eq(decode_crafted(1, 1, 2, f, sizeof blocks), VR_TX_ERUNSIZE);
	cr_assert_eq(decode_crafted(1, 1, 2, f, sizeof blocks + 1), VR_TX_ERUNSIZE);
	cr_assert_eq(decode_crafted(1, 1, 2, f, 0), VR_TX_ERUNSIZE);
	cr_assert_eq(decode_crafted(2, 2, 1, f, VR_TX_BLOCK), VR_TX_ERUNSIZE);
	/* the header's codec: 0 to 2 */
	struct vr_tx_header h;
	t_header(&h, 1, 10);
	h.codec = 3;
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &out), VR_TX_ECODEC);
	cr_assert_eq(out.len, 0);
	vr_buf_free(&out);
}

/* Byte flips of compressed streams: always refused, never a crash or a
 * write past a buffer. */
Test(transfer_compress, random_flips_of_compressed_streams, .timeout = 240)
{
	for (size_t k = 1; k < sizeof codecs; k++) {
		t_rng = 0xc0dec + k;
		struct t_src s;
		t_src_make(&s, 2, 40, 6);
		make_compressible(&s, 80);
		struct vr_buf good;
		struct vr_tx_trailer t;
		encode_with(&s, codecs[k], &good, &t, 6);
		cr_assert_lt(t.sent_bytes, t.sent_blocks * VR_TX_BLOCK);
		uint8_t *work = malloc(good.len);
		cr_assert_not_null(work);
		size_t hlen = tx_get32((uint8_t *)good.data + 68);
		for (int iter = 0; iter < 1500; iter++) {
			memcpy(work, good.data, good.len);
			int flips = 1 + (int)(t_rand() % 4);
			for (int f = 0; f < flips; f++) {
				size_t at = hlen + t_rand() % (good.len - hlen);
				work[at] ^= (uint8_t)(1 + t_rand() % 255);
			}
			size_t chunk = t_rand() % 3 ? 1 + t_rand() % 4000 : 0;
			cr_assert_lt(t_decode(work, good.len, chunk, NULL), 0, "iteration %d",
				     iter);
		}
		free(work);
		vr_buf_free(&good);
		t_src_free(&s);
	}
}
