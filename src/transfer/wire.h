/* Byte order helpers and the parts the encoder and decoder share. */
#ifndef VRCLOUD_TRANSFER_WIRE_H
#define VRCLOUD_TRANSFER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vrcloud/transfer.h"

#define VR_TX_MAGIC	  "VRCXFER\n"
#define VR_TX_REPLY_MAGIC "VRCXREP\n"
#define VR_TX_REC_RUN	  'R'
#define VR_TX_REC_TRAILER 'T'

static inline void tx_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void tx_put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void tx_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint16_t tx_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t tx_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t tx_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* SHA-256 of the concatenation of up to three pieces (NULL ends). */
void tx_sha256(uint8_t out[VR_TX_HASH], const void *a, size_t alen, const void *b, size_t blen,
	       const void *c, size_t clen);

/* Checks a header's values (not its ids); 0 or a vr_tx_err with msg. */
int tx_header_check(const struct vr_tx_header *h, char *msg, size_t msglen);
/* Serializes a checked header; returns its length. */
size_t tx_header_write(const struct vr_tx_header *h, uint8_t out[VR_TX_MAX_HEADER_LEN]);

/* Codecs of run payloads (codec.c). The encoder's and decoder's contexts
 * for the header's codec: 0 or VR_TX_ENOMEM (the caller frees). */
int tx_codec_enc_init(struct vr_tx_enc *e);
void tx_codec_enc_free(struct vr_tx_enc *e);
/* Compresses src[0..len) into e->scratch: the compressed length, or 0 when
 * that would not be smaller than len (the run then goes raw). */
size_t tx_codec_compress(struct vr_tx_enc *e, const uint8_t *src, size_t len);
int tx_codec_dec_init(struct vr_tx_dec *d);
void tx_codec_dec_free(struct vr_tx_dec *d);
/* Decompresses d->payload[0..len) into d->blocks, which must come to
 * exactly raw bytes: 0, or VR_TX_ERUNSIZE (claims more), VR_TX_ECHECKSUM
 * (anything else that is not raw bytes of blocks), VR_TX_ECODEC, with msg. */
int tx_codec_decompress(struct vr_tx_dec *d, unsigned codec, size_t len, size_t raw, char *msg,
			size_t msglen);

#endif
