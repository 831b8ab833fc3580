/* The codecs of run payloads (docs/transfer-protocol.md, "Codecs"): zstd
 * frames at a fast level and lz4 blocks. The encoder keeps one context and
 * one scratch buffer for the whole stream; the decoder decompresses into
 * its block buffer and never past it. */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "transfer/wire.h"

/* Fast, and still a good ratio on disk blocks: the sender compresses
 * while it reads, the network is usually what it waits for. */
#define TX_ZSTD_LEVEL 1

static size_t scratch_size(void)
{
	size_t z = ZSTD_compressBound(VR_TX_MAX_PAYLOAD);
	size_t l = (size_t)LZ4_compressBound((int)VR_TX_MAX_PAYLOAD);
	return z > l ? z : l;
}

int tx_codec_enc_init(struct vr_tx_enc *e)
{
	if (e->hdr.codec == VR_TX_CODEC_NONE)
		return VR_TX_OK;
	e->scratch_len = scratch_size();
	e->scratch = malloc(e->scratch_len);
	if (!e->scratch)
		return VR_TX_ENOMEM;
	if (e->hdr.codec == VR_TX_CODEC_ZSTD) {
		ZSTD_CCtx *c = ZSTD_createCCtx();
		e->zstd = c;
		if (!c ||
		    ZSTD_isError(
			    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, TX_ZSTD_LEVEL)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)))
			return VR_TX_ENOMEM;
	} else {
		e->lz4 = malloc((size_t)LZ4_sizeofState());
		if (!e->lz4)
			return VR_TX_ENOMEM;
	}
	return VR_TX_OK;
}

void tx_codec_enc_free(struct vr_tx_enc *e)
{
	ZSTD_freeCCtx(e->zstd);
	e->zstd = NULL;
	free(e->lz4);
	e->lz4 = NULL;
	free(e->scratch);
	e->scratch = NULL;
	e->scratch_len = 0;
}

size_t tx_codec_compress(struct vr_tx_enc *e, const uint8_t *src, size_t len)
{
	size_t n = 0;
	if (e->zstd) {
		n = ZSTD_compress2(e->zstd, e->scratch, e->scratch_len, src, len);
		if (ZSTD_isError(n))
			n = 0;
	} else if (e->lz4) {
		int r = LZ4_compress_fast_extState(e->lz4, (const char *)src, (char *)e->scratch,
						   (int)len, (int)e->scratch_len, 1);
		n = r > 0 ? (size_t)r : 0;
	}
	return n < len ? n : 0;
}

int tx_codec_dec_init(struct vr_tx_dec *d)
{
	if (d->hdr.codec == VR_TX_CODEC_NONE)
		return VR_TX_OK;
	d->blocks = malloc(VR_TX_MAX_PAYLOAD);
	if (!d->blocks)
		return VR_TX_ENOMEM;
	if (d->hdr.codec == VR_TX_CODEC_ZSTD) {
		d->zstd = ZSTD_createDCtx();
		if (!d->zstd)
			return VR_TX_ENOMEM;
	}
	return VR_TX_OK;
}

void tx_codec_dec_free(struct vr_tx_dec *d)
{
	ZSTD_freeDCtx(d->zstd);
	d->zstd = NULL;
	free(d->blocks);
	d->blocks = NULL;
}

/* One zstd frame that declares its content size, exactly raw bytes. */
static int unzstd(struct vr_tx_dec *d, size_t len, size_t raw, char *msg, size_t msglen)
{
	unsigned long long claim = ZSTD_getFrameContentSize(d->payload, len);
	if (claim == ZSTD_CONTENTSIZE_ERROR || claim == ZSTD_CONTENTSIZE_UNKNOWN) {
		snprintf(msg, msglen, "not a zstd frame with its content size");
		return VR_TX_ECHECKSUM;
	}
	if (claim > raw) {
		snprintf(msg, msglen, "zstd frame of %llu bytes for %zu", claim, raw);
		return VR_TX_ERUNSIZE;
	}
	if (claim != raw) {
		snprintf(msg, msglen, "zstd frame of %llu bytes for %zu", claim, raw);
		return VR_TX_ECHECKSUM;
	}
	size_t fl = ZSTD_findFrameCompressedSize(d->payload, len);
	if (ZSTD_isError(fl) || fl != len) {
		snprintf(msg, msglen, "payload is not exactly one zstd frame");
		return VR_TX_ECHECKSUM;
	}
	size_t n = ZSTD_decompressDCtx(d->zstd, d->blocks, raw, d->payload, len);
	if (ZSTD_isError(n) || n != raw) {
		snprintf(msg, msglen, "zstd: %s",
			 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
		return VR_TX_ECHECKSUM;
	}
	return VR_TX_OK;
}

/* One lz4 block: it carries no size, so it must decode to exactly raw. */
static int unlz4(struct vr_tx_dec *d, size_t len, size_t raw, char *msg, size_t msglen)
{
	int n = LZ4_decompress_safe((const char *)d->payload, (char *)d->blocks, (int)len,
				    (int)raw);
	if (n < 0 || (size_t)n != raw) {
		snprintf(msg, msglen, "lz4 block does not decode to %zu bytes", raw);
		return VR_TX_ECHECKSUM;
	}
	return VR_TX_OK;
}

int tx_codec_decompress(struct vr_tx_dec *d, unsigned codec, size_t len, size_t raw, char *msg,
			size_t msglen)
{
	if (!d->blocks || raw > VR_TX_MAX_PAYLOAD || len > VR_TX_MAX_PAYLOAD) {
		snprintf(msg, msglen, "codec %u without its buffers", codec);
		return VR_TX_ESTATE;
	}
	if (codec == VR_TX_CODEC_ZSTD && d->zstd)
		return unzstd(d, len, raw, msg, msglen);
	if (codec == VR_TX_CODEC_LZ4)
		return unlz4(d, len, raw, msg, msglen);
	snprintf(msg, msglen, "run codec %u", codec);
	return VR_TX_ECODEC;
}
