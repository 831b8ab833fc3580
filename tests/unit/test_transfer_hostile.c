/* The transfer decoder against hostile and broken input: every truncation,
 * corrupted blocks, another replication, oversize and misplaced runs,
 * unknown versions, flags and codecs, and random byte flips. */
#include "test_transfer_common.h"

/* One disk of 8 blocks; runs 1-2 and 5; the offsets of the parts. */
struct small {
	struct vr_buf buf;
	size_t hlen, run1, run2, trailer;
};

static void small_make(struct small *m)
{
	struct vr_tx_header h;
	t_header(&h, 1, 8);
	vr_buf_init(&m->buf, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &m->buf), 0);
	m->hlen = m->buf.len;
	uint8_t data[3 * VR_TX_BLOCK];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	m->run1 = m->buf.len;
	cr_assert_eq(vr_tx_enc_run(&e, 0, 1, 2, data), 0);
	m->run2 = m->buf.len;
	cr_assert_eq(vr_tx_enc_run(&e, 0, 5, 1, data + 2 * VR_TX_BLOCK), 0);
	m->trailer = m->buf.len;
	cr_assert_eq(vr_tx_enc_finish(&e, NULL), 0);
	cr_assert_eq(m->buf.len, m->trailer + VR_TX_TRAILER_LEN);
	cr_assert_eq(t_decode((uint8_t *)m->buf.data, m->buf.len, 3, NULL), 0);
}

static uint8_t *bytes(struct small *m)
{
	return (uint8_t *)m->buf.data;
}

static void reseal_header(struct small *m)
{
	tx_sha256(bytes(m) + m->hlen - VR_TX_HASH, bytes(m), m->hlen - VR_TX_HASH, NULL, 0, NULL,
		  0);
}

static void reseal_run(struct small *m, size_t off)
{
	uint8_t *p = bytes(m) + off;
	tx_sha256(p + 20, p, 20, p + VR_TX_RUN_LEN, tx_get32(p + 16), NULL, 0);
}

static int decode_small(struct small *m, size_t chunk)
{
	return t_decode(bytes(m), m->buf.len, chunk, NULL);
}

Test(transfer_hostile, every_truncation_point_is_truncated)
{
	struct small m;
	small_make(&m);
	for (size_t cut = 0; cut < m.buf.len; cut++) {
		cr_assert_eq(t_decode(bytes(&m), cut, cut % 2 ? 1 : 4096, NULL), VR_TX_ETRUNCATED,
			     "cut at %zu", cut);
	}
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, corrupted_block_caught_by_run_checksum_and_by_root)
{
	struct small m;
	small_make(&m);
	bytes(&m)[m.run1 + VR_TX_RUN_LEN + 5000] ^= 0x40;
	cr_assert_eq(decode_small(&m, 7), VR_TX_ECHECKSUM);
	/* a sender that checksums the corrupted block: the root catches it */
	reseal_run(&m, m.run1);
	cr_assert_eq(decode_small(&m, 7), VR_TX_EROOT);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, corrupted_run_header_caught)
{
	struct small m;
	small_make(&m);
	bytes(&m)[m.run2 + 20] ^= 1; /* the checksum itself */
	cr_assert_eq(decode_small(&m, 64), VR_TX_ECHECKSUM);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, wrong_replication_refused)
{
	struct small m;
	small_make(&m);
	uint8_t other[VR_TX_ID];
	vr_tx_id_parse(other, "6f1c2a3e-1b2d-4c5e-8f90-a1b2c3d4e5f7");
	struct vr_tx_dec d;
	cr_assert_eq(vr_tx_dec_init(&d, other), 0);
	size_t used;
	cr_assert_eq(vr_tx_dec_feed(&d, bytes(&m), m.buf.len, &used), VR_TX_EREPLICATION);
	cr_assert_leq(used, m.hlen);
	cr_assert_not_null(strstr(vr_tx_dec_message(&d), "wrong replication"));
	/* sticky: nothing more is taken */
	cr_assert_eq(vr_tx_dec_feed(&d, bytes(&m) + used, 1, &used), VR_TX_EREPLICATION);
	cr_assert_eq(used, 0);
	cr_assert_eq(vr_tx_dec_end(&d), VR_TX_EREPLICATION);
	vr_tx_dec_free(&d);
	cr_assert_eq(vr_tx_id_parse(other, "not-a-uuid"), VR_TX_EHEADER);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, oversize_runs_refused)
{
	struct small m;
	small_make(&m);
	uint8_t *r = bytes(&m) + m.run1;
	tx_put32(r + 4, VR_TX_MAX_RUN_BLOCKS + 1);
	tx_put32(r + 16, (VR_TX_MAX_RUN_BLOCKS + 1) * VR_TX_BLOCK);
	cr_assert_eq(decode_small(&m, 1), VR_TX_ERUNSIZE);
	tx_put32(r + 4, 2);
	tx_put32(r + 16, 0xffffffffu); /* payload over the limit */
	cr_assert_eq(decode_small(&m, 100), VR_TX_ERUNSIZE);
	tx_put32(r + 16, 2 * VR_TX_BLOCK + 1);
	cr_assert_eq(decode_small(&m, 100), VR_TX_ERUNSIZE);
	tx_put32(r + 4, 0);
	tx_put32(r + 16, 0);
	cr_assert_eq(decode_small(&m, 100), VR_TX_ERUNSIZE);

	struct vr_tx_header h;
	t_header(&h, 1, 1000);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &out), 0);
	static uint8_t big[(VR_TX_MAX_RUN_BLOCKS + 1) * VR_TX_BLOCK];
	cr_assert_eq(vr_tx_enc_run(&e, 0, 0, VR_TX_MAX_RUN_BLOCKS + 1, big), VR_TX_ERUNSIZE);
	cr_assert_eq(vr_tx_enc_run(&e, 0, 0, 0, big), VR_TX_ERUNSIZE);
	vr_buf_free(&out);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, runs_outside_a_disk_refused)
{
	struct small m;
	small_make(&m);
	uint8_t *r = bytes(&m) + m.run2;
	tx_put64(r + 8, 7); /* block 7 of 8 is fine, so make it 2 blocks */
	tx_put32(r + 4, 2);
	tx_put32(r + 16, 2 * VR_TX_BLOCK);
	cr_assert_eq(decode_small(&m, 7), VR_TX_ERANGE);
	tx_put32(r + 4, 1);
	tx_put32(r + 16, VR_TX_BLOCK);
	tx_put64(r + 8, UINT64_MAX); /* wraps if added carelessly */
	cr_assert_eq(decode_small(&m, 7), VR_TX_ERANGE);
	tx_put64(r + 8, 5);
	tx_put16(r + 2, 1); /* disk 1 of 1 */
	cr_assert_eq(decode_small(&m, 7), VR_TX_ERANGE);

	struct vr_tx_header h;
	t_header(&h, 1, 8);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc e;
	static uint8_t data[2 * VR_TX_BLOCK];
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &out), 0);
	cr_assert_eq(vr_tx_enc_run(&e, 0, 7, 2, data), VR_TX_ERANGE);
	cr_assert_eq(vr_tx_enc_run(&e, 1, 0, 1, data), VR_TX_ERANGE);
	vr_buf_free(&out);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, runs_out_of_order_refused)
{
	struct small m;
	small_make(&m);
	uint8_t *r = bytes(&m) + m.run2;
	tx_put64(r + 8, 2); /* overlaps run 1-2 */
	reseal_run(&m, m.run2);
	cr_assert_eq(decode_small(&m, 9), VR_TX_EORDER);
	tx_put64(r + 8, 0); /* before it */
	reseal_run(&m, m.run2);
	cr_assert_eq(decode_small(&m, 9), VR_TX_EORDER);
	tx_put64(r + 8, 3); /* right after it: fine up to the root */
	reseal_run(&m, m.run2);
	cr_assert_eq(decode_small(&m, 9), VR_TX_EROOT);

	struct vr_tx_header h;
	t_header(&h, 2, 8);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc e;
	static uint8_t data[VR_TX_BLOCK];
	cr_assert_eq(vr_tx_enc_init(&e, &h, vr_tx_sink_buf, &out), 0);
	cr_assert_eq(vr_tx_enc_run(&e, 1, 3, 1, data), 0);
	cr_assert_eq(vr_tx_enc_run(&e, 1, 3, 1, data), VR_TX_EORDER);
	cr_assert_eq(vr_tx_enc_run(&e, 0, 5, 1, data), VR_TX_EORDER);
	vr_buf_free(&out);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, unknown_version_flags_codec_refused)
{
	struct small m;
	small_make(&m);
	uint8_t *p = bytes(&m);
	tx_put16(p + 8, 2);
	cr_assert_eq(decode_small(&m, 1), VR_TX_EVERSION);
	tx_put16(p + 8, 0);
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EVERSION);
	tx_put16(p + 8, VR_TX_VERSION);

	tx_put16(p + 10, VR_TX_INCREMENTAL | 0x0100);
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EFLAGS);
	tx_put16(p + 10, VR_TX_INCREMENTAL | VR_TX_FULL);
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EFLAGS);
	tx_put16(p + 10, VR_TX_HASH_COMPARE);
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EFLAGS);
	tx_put16(p + 10, VR_TX_INCREMENTAL);

	p[12] = VR_TX_CODEC_ZSTD; /* known: raw runs are allowed under it */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), 0);
	p[12] = 3;
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECODEC);
	p[12] = 9;
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECODEC);
	p[12] = 0;
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), 0);

	p[m.run1 + 1] = VR_TX_CODEC_LZ4; /* a run's own codec, not the header's */
	reseal_run(&m, m.run1);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECODEC);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, malformed_headers_refused)
{
	struct small m;
	small_make(&m);
	uint8_t *p = bytes(&m);
	const uint8_t http[] = "GET / HTTP/1.1\r\n";
	cr_assert_eq(t_decode(http, sizeof http - 1, 1, NULL), VR_TX_EMAGIC);

	tx_put32(p + 16, 8192); /* block size */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	tx_put32(p + 16, VR_TX_BLOCK);
	p[13] = 0; /* no disks */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	p[13] = 2; /* more disks than listed */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	p[13] = 1;
	p[VR_TX_FIXED_LEN] = 200; /* key longer than the header */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	p[VR_TX_FIXED_LEN] = 7;
	p[VR_TX_FIXED_LEN + 1] = ' '; /* a space in the key */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	p[VR_TX_FIXED_LEN + 1] = 's';
	tx_put64(p + VR_TX_FIXED_LEN + 8, 4097); /* size not a multiple */
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	tx_put64(p + VR_TX_FIXED_LEN + 8, 8 * VR_TX_BLOCK);
	reseal_header(&m);
	cr_assert_eq(decode_small(&m, 50), 0);
	p[m.hlen - 1] ^= 1; /* the header checksum */
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECHECKSUM);
	reseal_header(&m);
	tx_put32(p + 68, 0x7fffffff); /* header length */
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	tx_put32(p + 68, 10);
	cr_assert_eq(decode_small(&m, 50), VR_TX_EHEADER);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, trailer_and_records_checked)
{
	struct small m;
	small_make(&m);
	uint8_t *p = bytes(&m);
	p[m.run2] = 'X';
	cr_assert_eq(decode_small(&m, 50), VR_TX_ERECORD);
	p[m.run2] = 'R';
	tx_put64(p + m.trailer + 8, 4);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECOUNT);
	tx_put64(p + m.trailer + 8, 3);
	tx_put64(p + m.trailer + 24, 3 * VR_TX_BLOCK + 1);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ECOUNT);
	tx_put64(p + m.trailer + 24, 3 * VR_TX_BLOCK);
	p[m.trailer + 40] ^= 0x80;
	cr_assert_eq(decode_small(&m, 50), VR_TX_EROOT);
	p[m.trailer + 40] ^= 0x80;
	p[m.trailer + 3] = 1;
	cr_assert_eq(decode_small(&m, 50), VR_TX_ERECORD);
	p[m.trailer + 3] = 0;
	cr_assert_eq(decode_small(&m, 50), 0);
	/* a run removed: the counts and the root no longer agree */
	struct vr_buf cut;
	vr_buf_init(&cut, 0);
	vr_buf_append(&cut, p, m.run2);
	vr_buf_append(&cut, p + m.trailer, VR_TX_TRAILER_LEN);
	cr_assert_eq(t_decode((uint8_t *)cut.data, cut.len, 50, NULL), VR_TX_ECOUNT);
	vr_buf_free(&cut);
	/* bytes after the trailer */
	vr_buf_append(&m.buf, "x", 1);
	cr_assert_eq(decode_small(&m, 50), VR_TX_ETRAILING);
	vr_buf_free(&m.buf);
}

Test(transfer_hostile, prime_checked)
{
	struct small m;
	small_make(&m);
	uint8_t repl[VR_TX_ID], leaf[VR_TX_HASH] = {0};
	vr_tx_id_parse(repl, T_REPL);
	struct vr_tx_dec d;
	cr_assert_eq(vr_tx_dec_init(&d, repl), 0);
	cr_assert_eq(vr_tx_dec_prime(&d, 0, 0, leaf), VR_TX_ESTATE); /* before the header */
	size_t used;
	cr_assert_eq(vr_tx_dec_feed(&d, bytes(&m), m.buf.len, &used), VR_TX_EV_HEADER);
	cr_assert_eq(vr_tx_dec_prime(&d, 0, 3, leaf), 0);
	struct vr_tx_reply r;
	cr_assert_eq(vr_tx_dec_resume_reply(&d, &r), 0);
	cr_assert_eq(r.next_block[0], 4);
	cr_assert_eq(vr_tx_dec_prime(&d, 0, 8, leaf), VR_TX_ERANGE);
	vr_tx_dec_free(&d);
	cr_assert_eq(vr_tx_dec_init(&d, repl), 0);
	cr_assert_eq(vr_tx_dec_feed(&d, bytes(&m), m.buf.len, &used), VR_TX_EV_HEADER);
	cr_assert_eq(vr_tx_dec_prime(&d, 0, 3, leaf), 0);
	cr_assert_eq(vr_tx_dec_prime(&d, 0, 2, leaf), VR_TX_EORDER);
	vr_tx_dec_free(&d);
	vr_buf_free(&m.buf);
}

/* Random byte flips of valid streams, random chunkings: always an error
 * code, never a crash or a read out of bounds. */
Test(transfer_hostile, random_flips_never_crash, .timeout = 240)
{
	t_rng = 0x5eed;
	struct t_src s;
	t_src_make(&s, 2, 12, 3);
	struct vr_buf good;
	vr_buf_init(&good, 0);
	t_encode(&s, &good, NULL, NULL, 3);
	uint8_t *work = malloc(good.len);
	cr_assert_not_null(work);
	size_t hlen = tx_get32((uint8_t *)good.data + 68);
	unsigned codes[200] = {0};
	for (int iter = 0; iter < 4000; iter++) {
		memcpy(work, good.data, good.len);
		int flips = 1 + (int)(t_rand() % 6);
		for (int f = 0; f < flips; f++) {
			/* half the flips land in the header, where parsing is */
			size_t at = t_rand() % 2 ? t_rand() % hlen : t_rand() % good.len;
			work[at] ^= (uint8_t)(1 + t_rand() % 255);
		}
		size_t len = t_rand() % 8 ? good.len : t_rand() % good.len;
		size_t chunk = t_rand() % 3 ? 1 + t_rand() % 97 : 0;
		int rc = t_decode(work, len, chunk, NULL);
		cr_assert_lt(rc, 0, "iteration %d decoded a damaged stream", iter);
		codes[-rc - 100 < 200 ? -rc - 100 : 199]++;
	}
	/* the checks that fired: flips are refused for many reasons */
	unsigned kinds = 0;
	for (int i = 0; i < 200; i++)
		kinds += codes[i] != 0;
	cr_assert_geq(kinds, 4);
	/* garbage from the first byte */
	for (int iter = 0; iter < 500; iter++) {
		size_t len = 1 + t_rand() % 300;
		for (size_t i = 0; i < len; i++)
			work[i] = (uint8_t)t_rand();
		if (iter % 2)
			memcpy(work, VR_TX_MAGIC, len < 8 ? len : 8);
		cr_assert_lt(t_decode(work, len, 1 + t_rand() % 16, NULL), 0);
	}
	free(work);
	vr_buf_free(&good);
	t_src_free(&s);
}
