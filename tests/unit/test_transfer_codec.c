/* The transfer protocol: round trips over any chunking, the hash root's
 * definition, resuming a dropped transfer, the reply, the fd sink. */
#include <fcntl.h>
#include <unistd.h>

#include "test_transfer_common.h"

/* Receiver images equal the source on changed blocks and zero elsewhere. */
static void t_expect_equal(const struct t_src *s, const struct t_dst *r)
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

static void round_trip(size_t chunk, uint64_t seed)
{
	t_rng = seed;
	struct t_src s;
	t_src_make(&s, 3, 300, 40);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_trailer t;
	t_encode(&s, &out, NULL, &t, 16);
	cr_assert_gt(t.sent_blocks, 10);
	cr_assert_eq(t.sent_blocks, t.instance_blocks);
	cr_assert_eq(t.sent_bytes, t.sent_blocks * VR_TX_BLOCK);
	struct t_dst r = {0};
	cr_assert_eq(t_decode((uint8_t *)out.data, out.len, chunk, &r), 0);
	t_expect_equal(&s, &r);
	cr_assert_gt(r.runs, 3);
	t_dst_free(&r);
	vr_buf_free(&out);
	t_src_free(&s);
}

Test(transfer, round_trip_1_byte_chunks)
{
	round_trip(1, 11);
}

Test(transfer, round_trip_7_byte_chunks)
{
	round_trip(7, 12);
}

Test(transfer, round_trip_64k_chunks)
{
	round_trip(65536, 13);
}

Test(transfer, round_trip_random_chunks_and_full_runs)
{
	for (uint64_t seed = 100; seed < 106; seed++) {
		t_rng = seed;
		struct t_src s;
		t_src_make(&s, 1 + (unsigned)(seed % 3), 700, 300);
		struct vr_buf out;
		vr_buf_init(&out, 0);
		struct vr_tx_trailer t;
		t_encode(&s, &out, NULL, &t, VR_TX_MAX_RUN_BLOCKS);
		struct t_dst r = {0};
		cr_assert_eq(t_decode((uint8_t *)out.data, out.len, 0, &r), 0);
		t_expect_equal(&s, &r);
		t_dst_free(&r);
		vr_buf_free(&out);
		t_src_free(&s);
	}
}

Test(transfer, header_fields_survive)
{
	t_rng = 5;
	struct t_src s;
	t_src_make(&s, 2, 64, 4);
	s.hdr.flags = VR_TX_FULL | VR_TX_HASH_COMPARE;
	struct vr_buf out;
	vr_buf_init(&out, 0);
	t_encode(&s, &out, NULL, NULL, 8);
	uint8_t repl[VR_TX_ID];
	vr_tx_id_parse(repl, T_REPL);
	struct vr_tx_dec d;
	cr_assert_eq(vr_tx_dec_init(&d, repl), 0);
	size_t used;
	cr_assert_eq(vr_tx_dec_feed(&d, (uint8_t *)out.data, out.len, &used), VR_TX_EV_HEADER);
	cr_assert_eq(d.hdr.flags, VR_TX_FULL | VR_TX_HASH_COMPARE);
	cr_assert_eq(d.hdr.point_in_time_ms, s.hdr.point_in_time_ms);
	cr_assert_eq(d.hdr.resume_token, s.hdr.resume_token);
	cr_assert_eq(memcmp(d.hdr.instance, s.hdr.instance, VR_TX_ID), 0);
	cr_assert_str_eq(d.hdr.disks[1].key, "scsi0:1");
	cr_assert_eq(d.hdr.disks[1].size, 65 * VR_TX_BLOCK);
	vr_tx_dec_free(&d);
	vr_buf_free(&out);
	t_src_free(&s);
}

/* The definition in docs/transfer-protocol.md, written recursively. */
static void mth(const uint8_t (*leaves)[VR_TX_HASH], size_t n, uint8_t out[VR_TX_HASH])
{
	if (n == 1) {
		memcpy(out, leaves[0], VR_TX_HASH);
		return;
	}
	size_t k = 1;
	while (k * 2 < n)
		k *= 2;
	uint8_t l[VR_TX_HASH], r[VR_TX_HASH], tag = 0x01;
	mth(leaves, k, l);
	mth(leaves + k, n - k, r);
	tx_sha256(out, &tag, 1, l, VR_TX_HASH, r, VR_TX_HASH);
}

Test(transfer, root_matches_the_documented_definition)
{
	static uint8_t leaves[70][VR_TX_HASH];
	uint8_t block[VR_TX_BLOCK];
	for (size_t i = 0; i < 70; i++) {
		memset(block, (int)i, sizeof block);
		vr_tx_leaf(i * 3, block, leaves[i]);
	}
	/* the leaf itself */
	uint8_t pre[9] = {0}, want[VR_TX_HASH];
	tx_put64(pre + 1, 6);
	memset(block, 2, sizeof block);
	tx_sha256(want, pre, 9, block, VR_TX_BLOCK, NULL, 0);
	cr_assert_eq(memcmp(want, leaves[2], VR_TX_HASH), 0);

	for (size_t n = 0; n <= 70; n++) {
		/* disk 0 empty, disk 1 with n leaves */
		struct vr_tx_root r;
		vr_tx_root_init(&r, 2);
		for (size_t i = 0; i < n; i++)
			vr_tx_root_add(&r, 1, leaves[i]);
		uint8_t got[VR_TX_HASH];
		vr_tx_root_final(&r, got);

		uint8_t body[2 + 2 * (8 + VR_TX_HASH)] = {0x02, 2};
		tx_put64(body + 2 + 40, n);
		if (n)
			mth((const uint8_t(*)[VR_TX_HASH])leaves, n, body + 2 + 40 + 8);
		tx_sha256(want, body, sizeof body, NULL, 0, NULL, 0);
		cr_assert_eq(memcmp(got, want, VR_TX_HASH), 0, "%zu leaves", n);
	}
}

/* A transfer dropped after some runs resumes: the receiver primes its
 * decoder with what it staged and replies its positions; the sender sends
 * only the rest; the trailer's root covers the whole instance. */
static void resume_after(size_t cut)
{
	t_rng = 77 + cut;
	struct t_src s;
	t_src_make(&s, 3, 200, 20);
	struct vr_buf full;
	vr_buf_init(&full, 0);
	struct vr_tx_trailer t_full;
	t_encode(&s, &full, NULL, &t_full, 8);
	if (cut > full.len)
		cut = full.len / 2;

	/* attempt 1: the first `cut` bytes; the receiver stages whole runs */
	uint8_t repl[VR_TX_ID];
	vr_tx_id_parse(repl, T_REPL);
	struct vr_tx_dec *d = malloc(sizeof *d);
	cr_assert_eq(vr_tx_dec_init(d, repl), 0);
	struct t_dst staged = {0};
	cr_assert_eq(t_decode_with(d, (uint8_t *)full.data, cut, 4096, &staged), VR_TX_ETRUNCATED);
	cr_assert_str_eq(vr_tx_strerror(vr_tx_dec_end(d)), "truncated");
	vr_tx_dec_free(d);

	/* attempt 2: a new connection; the same header arrives */
	struct vr_buf hdr;
	vr_buf_init(&hdr, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &s.hdr, vr_tx_sink_buf, &hdr), 0);
	cr_assert_eq(vr_tx_dec_init(d, repl), 0);
	size_t used;
	cr_assert_eq(vr_tx_dec_feed(d, (uint8_t *)hdr.data, hdr.len, &used), VR_TX_EV_HEADER);
	cr_assert_eq(used, hdr.len);
	uint64_t primed = 0;
	for (unsigned k = 0; k < staged.ndisks; k++) {
		for (uint64_t b = 0; b < staged.size[k] / VR_TX_BLOCK; b++) {
			static const uint8_t zero[VR_TX_BLOCK];
			const uint8_t *blk = staged.img[k] + b * VR_TX_BLOCK;
			if (!memcmp(blk, zero, VR_TX_BLOCK))
				continue;
			uint8_t leaf[VR_TX_HASH];
			vr_tx_leaf(b, blk, leaf);
			cr_assert_eq(vr_tx_dec_prime(d, k, b, leaf), 0);
			primed++;
		}
	}
	struct vr_tx_reply rep;
	cr_assert_eq(vr_tx_dec_resume_reply(d, &rep), 0);
	struct vr_buf wire;
	vr_buf_init(&wire, 0);
	cr_assert_eq(vr_tx_reply_encode(&rep, &wire), 0);
	struct vr_tx_reply got;
	cr_assert_eq(vr_tx_reply_decode((uint8_t *)wire.data, wire.len - 1, &used, &got),
		     VR_TX_ETRUNCATED);
	cr_assert_eq(vr_tx_reply_decode((uint8_t *)wire.data, wire.len, &used, &got), 0);
	cr_assert_eq(used, wire.len);
	cr_assert_eq(memcmp(got.next_block, rep.next_block, sizeof rep.next_block), 0);

	/* the sender: the rest only */
	struct vr_buf rest;
	vr_buf_init(&rest, 0);
	struct vr_tx_trailer t2;
	t_encode(&s, &rest, &got, &t2, 8);
	cr_assert_eq(t2.instance_blocks, t_full.instance_blocks);
	cr_assert_eq(t2.sent_blocks, t_full.instance_blocks - primed);
	cr_assert_eq(memcmp(t2.root, t_full.root, VR_TX_HASH), 0);
	cr_assert_lt(rest.len, full.len + 1);
	/* the receiver takes it after the header it already has */
	cr_assert_eq(t_decode_with(d, (uint8_t *)rest.data + hdr.len, rest.len - hdr.len, 999,
				   &staged),
		     0);
	t_expect_equal(&s, &staged);
	vr_tx_dec_free(d);
	free(d);
	t_dst_free(&staged);
	vr_buf_free(&full);
	vr_buf_free(&hdr);
	vr_buf_free(&wire);
	vr_buf_free(&rest);
	t_src_free(&s);
}

Test(transfer, resume_sends_only_what_the_replica_lacks)
{
	resume_after(200);	/* inside the header: nothing staged */
	resume_after(70000);	/* a few runs of disk 0 */
	resume_after(900000);	/* into a later disk */
	resume_after(1u << 30); /* half way, wherever that falls */
}

Test(transfer, resume_reply_refused_when_it_does_not_match)
{
	t_rng = 9;
	struct t_src s;
	t_src_make(&s, 2, 50, 4);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &s.hdr, vr_tx_sink_buf, &out), 0);
	struct vr_tx_reply r = {.kind = VR_TX_REPLY_RESUME, .ndisks = 2};
	memcpy(r.replication, s.hdr.replication, VR_TX_ID);
	memcpy(r.instance, s.hdr.instance, VR_TX_ID);
	r.resume_token = s.hdr.resume_token + 1;
	cr_assert_eq(vr_tx_enc_resume(&e, &r), VR_TX_EREPLY);
	r.resume_token = s.hdr.resume_token;
	r.next_block[1] = 52;
	cr_assert_eq(vr_tx_enc_resume(&e, &r), VR_TX_EREPLY);
	r.next_block[1] = 51;
	cr_assert_eq(vr_tx_enc_resume(&e, &r), 0);
	/* a reply with a flipped byte fails its checksum */
	struct vr_buf w;
	vr_buf_init(&w, 0);
	r.kind = VR_TX_REPLY_RESULT;
	r.status = VR_TX_EROOT;
	cr_assert_eq(vr_tx_reply_encode(&r, &w), 0);
	struct vr_tx_reply got;
	size_t used;
	cr_assert_eq(vr_tx_reply_decode((uint8_t *)w.data, w.len, &used, &got), 0);
	cr_assert_eq(got.status, VR_TX_EROOT);
	w.data[20] ^= 1;
	cr_assert_eq(vr_tx_reply_decode((uint8_t *)w.data, w.len, &used, &got), VR_TX_ECHECKSUM);
	cr_assert_eq(vr_tx_reply_decode((uint8_t *)"GET / HTTP/1.1", 14, &used, &got),
		     VR_TX_EMAGIC);
	vr_buf_free(&w);
	vr_buf_free(&out);
	t_src_free(&s);
}

Test(transfer, fd_sink_writes_the_same_bytes)
{
	t_rng = 21;
	struct t_src s;
	t_src_make(&s, 1, 100, 10);
	struct vr_buf a;
	vr_buf_init(&a, 0);
	t_encode(&s, &a, NULL, NULL, 10);

	char path[] = "/tmp/vrcloud-transfer-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	struct vr_tx_enc e;
	cr_assert_eq(vr_tx_enc_init(&e, &s.hdr, vr_tx_sink_fd, &fd), 0);
	for (uint64_t b = 0; b < 100; b++)
		if (s.changed[0][b])
			cr_assert_eq(vr_tx_enc_run(&e, 0, b, 1, s.img[0] + b * VR_TX_BLOCK), 0);
	cr_assert_eq(vr_tx_enc_finish(&e, NULL), 0);
	off_t len = lseek(fd, 0, SEEK_CUR);
	cr_assert_gt(len, 0);
	uint8_t *back = malloc((size_t)len);
	cr_assert_eq(pread(fd, back, (size_t)len, 0), len);
	close(fd);
	struct t_dst r = {0};
	cr_assert_eq(t_decode(back, (size_t)len, 333, &r), 0);
	t_expect_equal(&s, &r);
	t_dst_free(&r);
	free(back);
	vr_buf_free(&a);
	t_src_free(&s);
}

#define T_LINE                                                                                     \
	"VRCLOUD-DATA 1 peer=11111111-2222-4333-8444-555555555555 org=o-1 vdc=v-2 "                \
	"site=66666666-7777-4888-8999-000000000000 replication=" T_REPL " proxy=p1\n"

Test(transfer, preamble_line_parsed)
{
	const char *line = T_LINE "VRCXFER\n";
	struct vr_tx_preamble pre;
	size_t used;
	size_t len = strlen(T_LINE);
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(vr_tx_preamble_parse((const uint8_t *)line, cut, &used, &pre),
			     VR_TX_ETRUNCATED, "cut at %zu", cut);
	cr_assert_eq(vr_tx_preamble_parse((const uint8_t *)line, strlen(line), &used, &pre), 0);
	cr_assert_eq(used, len);
	cr_assert_str_eq(pre.peer, "11111111-2222-4333-8444-555555555555");
	cr_assert_str_eq(pre.org, "o-1");
	cr_assert_str_eq(pre.vdc, "v-2");
	cr_assert_str_eq(pre.site, "66666666-7777-4888-8999-000000000000");
	cr_assert_str_eq(pre.replication, T_REPL);
	cr_assert_str_eq(pre.proxy, "p1");
	uint8_t want[VR_TX_ID];
	vr_tx_id_parse(want, T_REPL);
	cr_assert_eq(memcmp(pre.replication_id, want, VR_TX_ID), 0);
}

static int parse_text(const char *s)
{
	struct vr_tx_preamble pre;
	size_t used;
	return vr_tx_preamble_parse((const uint8_t *)s, strlen(s), &used, &pre);
}

Test(transfer, preamble_line_refused)
{
	cr_assert_eq(parse_text("VRCXFER\n"), VR_TX_EMAGIC);
	cr_assert_eq(parse_text("VRCLOUD-DATA 2 peer=a\n"), VR_TX_EVERSION);
	cr_assert_eq(parse_text("VRCLOUD-DATA 10 peer=a\n"), VR_TX_EVERSION);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1\n"), VR_TX_EHEADER);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1 peer=a org=b vdc=c site=d replication=x proxy=p\n"),
		     VR_TX_EHEADER);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1 peer=a org=b vdc=c site=d replication=" T_REPL
				"\n"),
		     VR_TX_EHEADER);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1 peer= org=b vdc=c site=d replication=" T_REPL
				" proxy=p\n"),
		     VR_TX_EHEADER);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1 org=b peer=a vdc=c site=d replication=" T_REPL
				" proxy=p\n"),
		     VR_TX_EHEADER);
	cr_assert_eq(parse_text("VRCLOUD-DATA 1 peer=a org=b vdc=c site=d replication=" T_REPL
				" proxy=p extra=1\n"),
		     VR_TX_EHEADER);
	/* no newline within the limit */
	static char longline[VR_TX_PREAMBLE_MAX + 10];
	memset(longline, 'a', sizeof longline - 1);
	memcpy(longline, "VRCLOUD-DATA 1 peer=", 20);
	cr_assert_eq(parse_text(longline), VR_TX_EHEADER);
	/* a value over the field limit */
	char big[400];
	snprintf(big, sizeof big,
		 "VRCLOUD-DATA 1 peer=%0200d org=b vdc=c site=d replication=%s "
		 "proxy=p\n",
		 1, T_REPL);
	cr_assert_eq(parse_text(big), VR_TX_EHEADER);
}
