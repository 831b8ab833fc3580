/* The transfer protocol of a data connection (docs/transfer-protocol.md):
 * a header, runs of changed 4 KiB blocks, a trailer with the counts and
 * the hash root; the receiver's reply (resume positions, result).
 *
 * The encoder writes through a sink (a vr_buf or a file descriptor). The
 * decoder takes any chunking of the byte stream, holds at most one run
 * (VR_TX_MAX_PAYLOAD bytes, allocated once at init; a second buffer of the
 * same size and the codec's context when the header names a codec) and
 * refuses hostile input with one of the vr_tx_err codes; it never reads
 * past what it was given nor writes past its buffers. */
#ifndef VRCLOUD_TRANSFER_H
#define VRCLOUD_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/buf.h"

#define VR_TX_VERSION	     1
#define VR_TX_BLOCK	     4096u
#define VR_TX_HASH	     32
#define VR_TX_ID	     16
#define VR_TX_MAX_DISKS	     64
#define VR_TX_MAX_KEY	     255
#define VR_TX_MAX_RUN_BLOCKS 256u
#define VR_TX_MAX_PAYLOAD    (VR_TX_MAX_RUN_BLOCKS * VR_TX_BLOCK)
#define VR_TX_MAX_DISK_BYTES (UINT64_C(1) << 46)
#define VR_TX_FIXED_LEN	     72 /* the header's fixed part */
#define VR_TX_RUN_LEN	     52 /* a run header */
#define VR_TX_TRAILER_LEN    64
#define VR_TX_MAX_HEADER_LEN                                                                       \
	(VR_TX_FIXED_LEN + VR_TX_MAX_DISKS * (1 + VR_TX_MAX_KEY + 8) + VR_TX_HASH)
#define VR_TX_MAX_REPLY_LEN (56 + VR_TX_MAX_DISKS * 8 + VR_TX_HASH)

/* Header flags: exactly one of FULL and INCREMENTAL. */
#define VR_TX_FULL	   0x0001u
#define VR_TX_INCREMENTAL  0x0002u
#define VR_TX_HASH_COMPARE 0x0004u
#define VR_TX_FLAGS_KNOWN  (VR_TX_FULL | VR_TX_INCREMENTAL | VR_TX_HASH_COMPARE)

enum vr_tx_codec {
	VR_TX_CODEC_NONE = 0,
	VR_TX_CODEC_ZSTD = 1,
	VR_TX_CODEC_LZ4 = 2,
};

enum vr_tx_err {
	VR_TX_OK = 0,
	VR_TX_ETRUNCATED = -100,   /* the stream ended before its trailer */
	VR_TX_EMAGIC = -101,	   /* not a transfer stream or reply */
	VR_TX_EVERSION = -102,	   /* unknown protocol version */
	VR_TX_EFLAGS = -103,	   /* unknown or contradictory flags */
	VR_TX_ECODEC = -104,	   /* unknown codec, or not in this build */
	VR_TX_EHEADER = -105,	   /* malformed header (sizes, keys, limits) */
	VR_TX_EREPLICATION = -106, /* another replication's transfer */
	VR_TX_ERECORD = -107,	   /* unknown record type */
	VR_TX_ERUNSIZE = -108,	   /* run or payload over the limits */
	VR_TX_ERANGE = -109,	   /* run outside its disk */
	VR_TX_EORDER = -110,	   /* run before or overlapping an earlier one */
	VR_TX_ECHECKSUM = -111,	   /* header, run or reply checksum mismatch */
	VR_TX_EROOT = -112,	   /* hash root mismatch */
	VR_TX_ECOUNT = -113,	   /* trailer counts mismatch */
	VR_TX_ETRAILING = -114,	   /* bytes after the trailer */
	VR_TX_ESTATE = -115,	   /* call out of sequence */
	VR_TX_ENOMEM = -116,
	VR_TX_EIO = -117,    /* the sink failed */
	VR_TX_EREPLY = -118, /* malformed or mismatched reply */
	VR_TX_EBUSY = -119,  /* the receiver cannot take the transfer now: retry later */
	VR_TX_ESTORE = -120, /* the receiver has no replica for it, or cannot write it */
};

/* A short static text for a vr_tx_err code. */
const char *vr_tx_strerror(int err);

struct vr_tx_disk {
	char key[VR_TX_MAX_KEY + 1]; /* device key, printable ASCII, no spaces */
	uint64_t size;		     /* bytes, a multiple of VR_TX_BLOCK */
};

struct vr_tx_header {
	uint16_t version;
	uint16_t flags;
	uint8_t codec;
	uint8_t ndisks;
	uint8_t replication[VR_TX_ID];
	uint8_t instance[VR_TX_ID];
	uint64_t point_in_time_ms; /* Unix time in milliseconds */
	uint64_t resume_token;	   /* the same for every attempt of an instance */
	struct vr_tx_disk disks[VR_TX_MAX_DISKS];
};

struct vr_tx_trailer {
	uint64_t instance_blocks; /* every block of the instance, all attempts */
	uint64_t sent_blocks;	  /* blocks carried by this stream */
	uint64_t sent_bytes;	  /* run payload bytes of this stream */
	uint8_t root[VR_TX_HASH];
};

/* 16 bytes from the canonical text of a UUID (36 characters). */
int vr_tx_id_parse(uint8_t out[VR_TX_ID], const char *text);

/* The proxy's preamble line in front of a data connection's stream
 * (docs/tunnels.md): "VRCLOUD-DATA 1 peer=... org=... vdc=... site=...
 * replication=... proxy=...\n". */
#define VR_TX_PREAMBLE_MAX 1024
#define VR_TX_FIELD_MAX	   128

struct vr_tx_preamble {
	char peer[VR_TX_FIELD_MAX + 1];
	char org[VR_TX_FIELD_MAX + 1];
	char vdc[VR_TX_FIELD_MAX + 1];
	char site[VR_TX_FIELD_MAX + 1];
	char replication[VR_TX_FIELD_MAX + 1];
	char proxy[VR_TX_FIELD_MAX + 1];
	uint8_t replication_id[VR_TX_ID]; /* for vr_tx_dec_init */
};

/* Parses the line at the start of p[0..n): 0 with *used (the newline
 * included), VR_TX_ETRUNCATED while no newline has arrived (and fewer than
 * VR_TX_PREAMBLE_MAX bytes), else VR_TX_EMAGIC, VR_TX_EVERSION or
 * VR_TX_EHEADER. */
int vr_tx_preamble_parse(const uint8_t *p, size_t n, size_t *used, struct vr_tx_preamble *out);

/* The leaf hash of one block (docs/transfer-protocol.md, "Hash root"). */
void vr_tx_leaf(uint64_t block, const uint8_t data[VR_TX_BLOCK], uint8_t out[VR_TX_HASH]);

/* The incremental hash root: leaves in ascending order, disk by disk. */
struct vr_tx_merkle {
	uint8_t stack[64][VR_TX_HASH];
	uint8_t level[64];
	unsigned depth;
};

struct vr_tx_root {
	uint8_t ndisks;
	int disk; /* the disk whose leaves are being added, -1 before any */
	struct vr_tx_merkle tree;
	uint64_t blocks[VR_TX_MAX_DISKS];
	uint8_t roots[VR_TX_MAX_DISKS][VR_TX_HASH];
};

void vr_tx_root_init(struct vr_tx_root *r, unsigned ndisks);
/* disk must not go down between calls; the caller checks block order. */
void vr_tx_root_add(struct vr_tx_root *r, unsigned disk, const uint8_t leaf[VR_TX_HASH]);
void vr_tx_root_final(struct vr_tx_root *r, uint8_t out[VR_TX_HASH]);

/* The receiver's reply. */
enum vr_tx_reply_kind {
	VR_TX_REPLY_RESUME = 1, /* after the header: where to resume each disk */
	VR_TX_REPLY_RESULT = 2, /* after the trailer or a refusal: the outcome */
};

struct vr_tx_reply {
	uint8_t kind;
	int status; /* 0 or a vr_tx_err */
	uint8_t replication[VR_TX_ID];
	uint8_t instance[VR_TX_ID];
	uint64_t resume_token;
	uint8_t ndisks;
	uint64_t next_block[VR_TX_MAX_DISKS];
};

/* Appends the reply's bytes to out; 0 or a vr_tx_err. */
int vr_tx_reply_encode(const struct vr_tx_reply *r, struct vr_buf *out);
/* Decodes one reply from p[0..n): VR_TX_ETRUNCATED while incomplete,
 * else 0 with *used set, or an error. */
int vr_tx_reply_decode(const uint8_t *p, size_t n, size_t *used, struct vr_tx_reply *r);

/* Hash records (hash-compare transfers, docs/transfer-protocol.md, "Hash
 * records"): after its resume reply the receiver sends, disk by disk, the
 * hashes of groups of VR_TX_GROUP_BLOCKS blocks from the group holding the
 * disk's resume position to the disk's end, then one end record. A group's
 * hash is SHA-256 over the leaves (vr_tx_leaf) of its blocks in order; the
 * last group of a disk may be shorter. */
#define VR_TX_GROUP_BLOCKS	16u
#define VR_TX_MAX_HASH_GROUPS	4096u /* group hashes in one record */
#define VR_TX_HASH_RECORD_FIXED 16    /* type, reserved, disk, first group, count */
#define VR_TX_HASH_END_LEN	64
#define VR_TX_MAX_HASH_RECORD_LEN                                                                  \
	(VR_TX_HASH_RECORD_FIXED + VR_TX_MAX_HASH_GROUPS * VR_TX_HASH + VR_TX_HASH)

enum vr_tx_hash_kind {
	VR_TX_HASH_GROUPS = 'H', /* group hashes of one disk */
	VR_TX_HASH_END = 'E',	 /* no more group hashes */
};

struct vr_tx_hash_record {
	uint8_t kind; /* a vr_tx_hash_kind */
	uint16_t disk;
	uint64_t first_group;
	uint32_t count;
	/* count x VR_TX_HASH bytes: into the decoded input (valid as long as
	 * it is), or the caller's array when encoding */
	const uint8_t *hashes;
};

/* The number of groups of a disk of size bytes. */
uint64_t vr_tx_disk_groups(uint64_t size);
/* The group hash of blocks [first_block, first_block + count) with their
 * data (count x VR_TX_BLOCK bytes), count 1 to VR_TX_GROUP_BLOCKS. */
void vr_tx_group_hash(uint64_t first_block, uint32_t count, const uint8_t *data,
		      uint8_t out[VR_TX_HASH]);
/* The same from the blocks' leaves (count x VR_TX_HASH bytes). */
void vr_tx_group_hash_leaves(uint32_t count, const uint8_t *leaves, uint8_t out[VR_TX_HASH]);

/* Append an 'H' record (count 1 to VR_TX_MAX_HASH_GROUPS, disk under
 * VR_TX_MAX_DISKS) or the end record to out: 0, VR_TX_ERUNSIZE,
 * VR_TX_ERANGE or VR_TX_ENOMEM. */
int vr_tx_hash_record_encode(unsigned disk, uint64_t first_group, uint32_t count,
			     const uint8_t *hashes, struct vr_buf *out);
int vr_tx_hash_end_encode(struct vr_buf *out);
/* Decodes one record from p[0..n): VR_TX_ETRUNCATED while incomplete (at
 * most VR_TX_MAX_HASH_RECORD_LEN bytes are ever needed), else 0 with *used
 * set, or VR_TX_ERECORD (unknown type, reserved bytes), VR_TX_ERUNSIZE
 * (count), VR_TX_ERANGE (disk or groups past any disk), VR_TX_ECHECKSUM. */
int vr_tx_hash_record_decode(const uint8_t *p, size_t n, size_t *used,
			     struct vr_tx_hash_record *out);
/* Checks a decoded 'H' record against the transfer's header: the disk
 * exists and its groups are inside it (VR_TX_ERANGE otherwise). */
int vr_tx_hash_record_check(const struct vr_tx_header *h, const struct vr_tx_hash_record *r);

/* Sinks: 0 or VR_TX_EIO. */
typedef int (*vr_tx_sink)(void *ctx, const void *data, size_t len);
int vr_tx_sink_buf(void *ctx, const void *data, size_t len); /* ctx: struct vr_buf * */
int vr_tx_sink_fd(void *ctx, const void *data, size_t len);  /* ctx: int * */

/* Encoder. */
struct vr_tx_enc {
	int state;
	struct vr_tx_header hdr;
	vr_tx_sink sink;
	void *ctx;
	uint64_t resume[VR_TX_MAX_DISKS];
	int disk;	     /* disk of the last run, -1 before any */
	uint64_t next_block; /* first block the next run on that disk may use */
	struct vr_tx_root root;
	uint64_t instance_blocks, sent_blocks, sent_bytes;
	uint64_t raw_bytes; /* sent_bytes before compression */
	/* with a codec: the compressor's context and one scratch buffer */
	void *zstd;
	void *lz4;
	uint8_t *scratch;
	size_t scratch_len;
};

/* Checks the header and writes it. With a codec (zstd at a fast level, or
 * lz4) each run's payload is compressed, and sent raw when that does not
 * make it smaller; the compressor's context and one scratch buffer are
 * allocated here, once, and released by vr_tx_enc_finish or
 * vr_tx_enc_free. */
int vr_tx_enc_init(struct vr_tx_enc *e, const struct vr_tx_header *h, vr_tx_sink sink, void *ctx);
/* Releases what vr_tx_enc_init allocated (for an encoding given up before
 * its trailer; harmless after vr_tx_enc_finish, or twice). */
void vr_tx_enc_free(struct vr_tx_enc *e);
/* Applies a resume reply (before the first run): blocks under each disk's
 * position are hashed into the root but not sent. */
int vr_tx_enc_resume(struct vr_tx_enc *e, const struct vr_tx_reply *r);
/* One run of count contiguous blocks (data: count * VR_TX_BLOCK bytes),
 * runs in ascending (disk, block) order, count up to VR_TX_MAX_RUN_BLOCKS. */
int vr_tx_enc_run(struct vr_tx_enc *e, unsigned disk, uint64_t first, uint32_t count,
		  const uint8_t *data);
/* The same, with the leaves of the blocks (count * VR_TX_HASH bytes,
 * vr_tx_leaf of each) computed already by the caller; NULL: computed here. */
int vr_tx_enc_run_leaves(struct vr_tx_enc *e, unsigned disk, uint64_t first, uint32_t count,
			 const uint8_t *data, const uint8_t *leaves);
/* Writes the trailer; t (may be NULL) receives its values. */
int vr_tx_enc_finish(struct vr_tx_enc *e, struct vr_tx_trailer *t);

/* Decoder. */
enum vr_tx_event {
	VR_TX_EV_NONE = 0,    /* everything given was used; feed more */
	VR_TX_EV_HEADER = 1,  /* dec->hdr is valid */
	VR_TX_EV_RUN = 2,     /* dec->run_* and dec->run_data are valid until the next feed */
	VR_TX_EV_TRAILER = 3, /* dec->trailer is valid and verified */
};

struct vr_tx_dec {
	int state;
	int err;
	char msg[160];
	uint64_t offset; /* stream bytes taken so far */
	uint8_t expect_replication[VR_TX_ID];
	struct vr_tx_header hdr;
	struct vr_tx_trailer trailer;
	/* the record being gathered */
	uint8_t small[VR_TX_MAX_HEADER_LEN];
	size_t have, need;
	uint8_t *payload; /* VR_TX_MAX_PAYLOAD bytes: a run's payload as sent */
	uint8_t *blocks;  /* VR_TX_MAX_PAYLOAD bytes: a compressed run's blocks */
	void *zstd;	  /* the decompressor's context (codec zstd) */
	/* the last complete run */
	unsigned run_disk;
	uint8_t run_codec;
	uint64_t run_first;
	uint32_t run_count;
	const uint8_t *run_data;
	uint8_t run_leaves[VR_TX_MAX_RUN_BLOCKS][VR_TX_HASH]; /* vr_tx_leaf of each */
	/* order and verification */
	int disk;
	uint64_t next_block;
	struct vr_tx_root root;
	uint64_t instance_blocks, sent_blocks, sent_bytes;
	uint64_t raw_bytes; /* sent_bytes after decompression */
};

/* expect_replication: the replication named by the proxy's preamble. */
int vr_tx_dec_init(struct vr_tx_dec *d, const uint8_t expect_replication[VR_TX_ID]);
void vr_tx_dec_free(struct vr_tx_dec *d);
/* Feeds p[0..n); *used gets the bytes taken. Returns a vr_tx_event (>= 0)
 * or a vr_tx_err; after an error every call returns it again and
 * vr_tx_dec_message() explains it. */
int vr_tx_dec_feed(struct vr_tx_dec *d, const uint8_t *p, size_t n, size_t *used);
/* At the end of the stream: 0 after a verified trailer, else an error. */
int vr_tx_dec_end(struct vr_tx_dec *d);
const char *vr_tx_dec_message(const struct vr_tx_dec *d);
/* After the header, before any run: a block this receiver has staged from
 * an earlier attempt of the same instance (same ids and resume token), in
 * the order it was received, with its leaf hash. */
int vr_tx_dec_prime(struct vr_tx_dec *d, unsigned disk, uint64_t block,
		    const uint8_t leaf[VR_TX_HASH]);
/* The resume reply for the decoder's position (after the header). */
int vr_tx_dec_resume_reply(const struct vr_tx_dec *d, struct vr_tx_reply *r);

#endif
