/* The parts of the transfer protocol both ends share: error texts, the
 * header's checks and layout, the hash root, the reply, the sinks. */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transfer/wire.h"

const char *vr_tx_strerror(int err)
{
	switch (err) {
	case VR_TX_OK: return "ok";
	case VR_TX_ETRUNCATED: return "truncated";
	case VR_TX_EMAGIC: return "bad magic";
	case VR_TX_EVERSION: return "unknown version";
	case VR_TX_EFLAGS: return "bad flags";
	case VR_TX_ECODEC: return "unsupported codec";
	case VR_TX_EHEADER: return "bad header";
	case VR_TX_EREPLICATION: return "wrong replication";
	case VR_TX_ERECORD: return "unknown record";
	case VR_TX_ERUNSIZE: return "oversize run";
	case VR_TX_ERANGE: return "run outside disk";
	case VR_TX_EORDER: return "run out of order";
	case VR_TX_ECHECKSUM: return "checksum mismatch";
	case VR_TX_EROOT: return "hash root mismatch";
	case VR_TX_ECOUNT: return "count mismatch";
	case VR_TX_ETRAILING: return "bytes after trailer";
	case VR_TX_ESTATE: return "out of sequence";
	case VR_TX_ENOMEM: return "out of memory";
	case VR_TX_EIO: return "write failed";
	case VR_TX_EREPLY: return "bad reply";
	case VR_TX_EBUSY: return "receiver busy";
	case VR_TX_ESTORE: return "replica unavailable";
	default: return "unknown error";
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vr_tx_id_parse(uint8_t out[VR_TX_ID], const char *text)
{
	size_t n = 0;
	for (size_t i = 0; i < 36; i++) {
		if (!text[i])
			return VR_TX_EHEADER;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return VR_TX_EHEADER;
			continue;
		}
		int hi = hexval(text[i]), lo = hexval(text[i + 1]);
		if (hi < 0 || lo < 0)
			return VR_TX_EHEADER;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return text[36] ? VR_TX_EHEADER : VR_TX_OK;
}

/* SHA-256 fetched from the provider once: EVP_sha256() makes every
 * EVP_DigestInit_ex fetch it again, a cost of the order of hashing a
 * block, and a transfer hashes every block three or four times. */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_fetched ? sha256_fetched : EVP_sha256();
}

void tx_sha256(uint8_t out[VR_TX_HASH], const void *a, size_t alen, const void *b, size_t blen,
	       const void *c, size_t clen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	/* Without a context (allocation failure) the digest is all ones,
	 * which matches nothing the other end computes: the transfer fails
	 * its checks instead of passing them. */
	if (!ctx || EVP_DigestInit_ex(ctx, sha256_md(), NULL) != 1 ||
	    (alen && EVP_DigestUpdate(ctx, a, alen) != 1) ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0xff, VR_TX_HASH);
	EVP_MD_CTX_free(ctx);
}

void vr_tx_leaf(uint64_t block, const uint8_t data[VR_TX_BLOCK], uint8_t out[VR_TX_HASH])
{
	uint8_t pre[9];
	pre[0] = 0x00;
	tx_put64(pre + 1, block);
	tx_sha256(out, pre, sizeof pre, data, VR_TX_BLOCK, NULL, 0);
}

static void node(const uint8_t l[VR_TX_HASH], const uint8_t r[VR_TX_HASH], uint8_t out[VR_TX_HASH])
{
	static const uint8_t tag = 0x01;
	tx_sha256(out, &tag, 1, l, VR_TX_HASH, r, VR_TX_HASH);
}

static void merkle_add(struct vr_tx_merkle *m, const uint8_t leaf[VR_TX_HASH])
{
	/* A full stack would mean 2^64 leaves: cannot happen. */
	memcpy(m->stack[m->depth], leaf, VR_TX_HASH);
	m->level[m->depth++] = 0;
	while (m->depth >= 2 && m->level[m->depth - 1] == m->level[m->depth - 2]) {
		uint8_t h[VR_TX_HASH];
		node(m->stack[m->depth - 2], m->stack[m->depth - 1], h);
		m->depth--;
		memcpy(m->stack[m->depth - 1], h, VR_TX_HASH);
		m->level[m->depth - 1]++;
	}
}

static void merkle_final(struct vr_tx_merkle *m, uint8_t out[VR_TX_HASH])
{
	if (!m->depth) {
		memset(out, 0, VR_TX_HASH);
		return;
	}
	uint8_t h[VR_TX_HASH];
	memcpy(h, m->stack[m->depth - 1], VR_TX_HASH);
	for (unsigned i = m->depth - 1; i-- > 0;)
		node(m->stack[i], h, h);
	memcpy(out, h, VR_TX_HASH);
	m->depth = 0;
}

void vr_tx_root_init(struct vr_tx_root *r, unsigned ndisks)
{
	memset(r, 0, sizeof *r);
	r->ndisks = (uint8_t)ndisks;
	r->disk = -1;
}

static void root_close(struct vr_tx_root *r)
{
	if (r->disk >= 0)
		merkle_final(&r->tree, r->roots[r->disk]);
}

void vr_tx_root_add(struct vr_tx_root *r, unsigned disk, const uint8_t leaf[VR_TX_HASH])
{
	if ((int)disk != r->disk) {
		root_close(r);
		r->disk = (int)disk;
	}
	merkle_add(&r->tree, leaf);
	r->blocks[disk]++;
}

void vr_tx_root_final(struct vr_tx_root *r, uint8_t out[VR_TX_HASH])
{
	root_close(r);
	r->disk = -1;
	uint8_t pre[2] = {0x02, r->ndisks};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, pre, sizeof pre) == 1;
	for (unsigned d = 0; ok && d < r->ndisks; d++) {
		uint8_t n[8];
		tx_put64(n, r->blocks[d]);
		ok = EVP_DigestUpdate(ctx, n, 8) == 1 &&
		     EVP_DigestUpdate(ctx, r->roots[d], VR_TX_HASH) == 1;
	}
	if (!ok || EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0xff, VR_TX_HASH);
	EVP_MD_CTX_free(ctx);
}

static bool key_ok(const char *k, size_t *len)
{
	size_t n = strnlen(k, VR_TX_MAX_KEY + 1);
	if (n == 0 || n > VR_TX_MAX_KEY)
		return false;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return false;
	*len = n;
	return true;
}

int tx_header_check(const struct vr_tx_header *h, char *msg, size_t msglen)
{
	if (h->version != VR_TX_VERSION) {
		snprintf(msg, msglen, "version %u is not %u", h->version, VR_TX_VERSION);
		return VR_TX_EVERSION;
	}
	if ((h->flags & ~VR_TX_FLAGS_KNOWN) ||
	    !(h->flags & VR_TX_FULL) == !(h->flags & VR_TX_INCREMENTAL)) {
		snprintf(msg, msglen, "flags 0x%04x: unknown bits or not one of full, incremental",
			 h->flags);
		return VR_TX_EFLAGS;
	}
	if (h->codec != VR_TX_CODEC_NONE && h->codec != VR_TX_CODEC_ZSTD &&
	    h->codec != VR_TX_CODEC_LZ4) {
		snprintf(msg, msglen, "codec %u is not one of 0 (none), 1 (zstd), 2 (lz4)",
			 h->codec);
		return VR_TX_ECODEC;
	}
	if (h->ndisks < 1 || h->ndisks > VR_TX_MAX_DISKS) {
		snprintf(msg, msglen, "%u disks (1 to %u)", h->ndisks, VR_TX_MAX_DISKS);
		return VR_TX_EHEADER;
	}
	for (unsigned d = 0; d < h->ndisks; d++) {
		size_t len;
		if (!key_ok(h->disks[d].key, &len)) {
			snprintf(msg, msglen, "disk %u: bad device key", d);
			return VR_TX_EHEADER;
		}
		uint64_t sz = h->disks[d].size;
		if (sz == 0 || sz % VR_TX_BLOCK || sz > VR_TX_MAX_DISK_BYTES) {
			snprintf(msg, msglen, "disk %u: size %llu", d, (unsigned long long)sz);
			return VR_TX_EHEADER;
		}
		for (unsigned e = 0; e < d; e++)
			if (!strcmp(h->disks[e].key, h->disks[d].key)) {
				snprintf(msg, msglen, "disk %u: key of disk %u again", d, e);
				return VR_TX_EHEADER;
			}
	}
	return VR_TX_OK;
}

size_t tx_header_write(const struct vr_tx_header *h, uint8_t out[VR_TX_MAX_HEADER_LEN])
{
	memcpy(out, VR_TX_MAGIC, 8);
	tx_put16(out + 8, h->version);
	tx_put16(out + 10, h->flags);
	out[12] = h->codec;
	out[13] = h->ndisks;
	tx_put16(out + 14, 0);
	tx_put32(out + 16, VR_TX_BLOCK);
	memcpy(out + 20, h->replication, VR_TX_ID);
	memcpy(out + 36, h->instance, VR_TX_ID);
	tx_put64(out + 52, h->point_in_time_ms);
	tx_put64(out + 60, h->resume_token);
	size_t n = VR_TX_FIXED_LEN;
	for (unsigned d = 0; d < h->ndisks; d++) {
		size_t len = strlen(h->disks[d].key);
		out[n++] = (uint8_t)len;
		memcpy(out + n, h->disks[d].key, len);
		n += len;
		tx_put64(out + n, h->disks[d].size);
		n += 8;
	}
	n += VR_TX_HASH;
	tx_put32(out + 68, (uint32_t)n);
	tx_sha256(out + n - VR_TX_HASH, out, n - VR_TX_HASH, NULL, 0, NULL, 0);
	return n;
}

int vr_tx_reply_encode(const struct vr_tx_reply *r, struct vr_buf *out)
{
	if ((r->kind != VR_TX_REPLY_RESUME && r->kind != VR_TX_REPLY_RESULT) ||
	    r->ndisks > VR_TX_MAX_DISKS || r->status > 0 || r->status < -0xffff)
		return VR_TX_EREPLY;
	uint8_t b[VR_TX_MAX_REPLY_LEN];
	memcpy(b, VR_TX_REPLY_MAGIC, 8);
	tx_put16(b + 8, VR_TX_VERSION);
	b[10] = r->kind;
	b[11] = r->ndisks;
	tx_put16(b + 12, (uint16_t)-r->status);
	tx_put16(b + 14, 0);
	memcpy(b + 16, r->replication, VR_TX_ID);
	memcpy(b + 32, r->instance, VR_TX_ID);
	tx_put64(b + 48, r->resume_token);
	size_t n = 56;
	for (unsigned d = 0; d < r->ndisks; d++, n += 8)
		tx_put64(b + n, r->next_block[d]);
	tx_sha256(b + n, b, n, NULL, 0, NULL, 0);
	n += VR_TX_HASH;
	return vr_buf_append(out, b, n) ? VR_TX_ENOMEM : VR_TX_OK;
}

int vr_tx_reply_decode(const uint8_t *p, size_t n, size_t *used, struct vr_tx_reply *r)
{
	*used = 0;
	if (n == 0)
		return VR_TX_ETRUNCATED;
	if (n < 8 ? memcmp(p, VR_TX_REPLY_MAGIC, n) : memcmp(p, VR_TX_REPLY_MAGIC, 8))
		return VR_TX_EMAGIC;
	if (n < 56)
		return VR_TX_ETRUNCATED;
	if (tx_get16(p + 8) != VR_TX_VERSION)
		return VR_TX_EVERSION;
	if ((p[10] != VR_TX_REPLY_RESUME && p[10] != VR_TX_REPLY_RESULT) ||
	    p[11] > VR_TX_MAX_DISKS || tx_get16(p + 14) != 0)
		return VR_TX_EREPLY;
	size_t len = 56 + (size_t)p[11] * 8 + VR_TX_HASH;
	if (n < len)
		return VR_TX_ETRUNCATED;
	uint8_t h[VR_TX_HASH];
	tx_sha256(h, p, len - VR_TX_HASH, NULL, 0, NULL, 0);
	if (memcmp(h, p + len - VR_TX_HASH, VR_TX_HASH))
		return VR_TX_ECHECKSUM;
	memset(r, 0, sizeof *r);
	r->kind = p[10];
	r->ndisks = p[11];
	r->status = -(int)tx_get16(p + 12);
	memcpy(r->replication, p + 16, VR_TX_ID);
	memcpy(r->instance, p + 32, VR_TX_ID);
	r->resume_token = tx_get64(p + 48);
	for (unsigned d = 0; d < r->ndisks; d++)
		r->next_block[d] = tx_get64(p + 56 + 8 * d);
	*used = len;
	return VR_TX_OK;
}

int vr_tx_sink_buf(void *ctx, const void *data, size_t len)
{
	return vr_buf_append(ctx, data, len) ? VR_TX_EIO : VR_TX_OK;
}

int vr_tx_sink_fd(void *ctx, const void *data, size_t len)
{
	int fd = *(int *)ctx;
	const uint8_t *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return VR_TX_EIO;
		p += w;
		len -= (size_t)w;
	}
	return VR_TX_OK;
}
