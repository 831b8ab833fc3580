/* The tunnel protocol between vrcloud-agent and vrcloud-proxy (docs/tunnels.md):
 * frames over TLS 1.3, a hello that names the connection's kind and carries
 * the site credential, and the key=value payloads of the control messages.
 * This module only encodes and parses; it does no I/O. */
#ifndef VRCLOUD_TUNNEL_H
#define VRCLOUD_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/buf.h"
#include "vrcloud/uuid.h"

#define VR_TUNNEL_VERSION 1
/* A frame: type (1 byte), payload length (3 bytes, big-endian), payload. */
#define VR_TUNNEL_HEADER_LEN 4
/* Longest payload either side accepts; a longer length field ends the
 * connection. */
#define VR_TUNNEL_MAX_PAYLOAD 16384
/* Longest site credential a hello may carry. */
#define VR_TUNNEL_MAX_CREDENTIAL 512
/* Longest command id and command name. */
#define VR_TUNNEL_MAX_ID 64
/* Most fields one payload may hold. */
#define VR_TUNNEL_MAX_FIELDS 32

enum vr_tunnel_frame_type {
	VR_FRAME_HELLO = 1,	/* agent -> proxy, the first frame of every connection */
	VR_FRAME_WELCOME = 2,	/* proxy -> agent: the hello was accepted */
	VR_FRAME_REFUSE = 3,	/* proxy -> agent: refused; the proxy closes */
	VR_FRAME_HEARTBEAT = 4, /* both ways on control connections */
	VR_FRAME_COMMAND = 5,	/* proxy -> agent */
	VR_FRAME_ACK = 6,	/* agent -> proxy: a command was taken */
	VR_FRAME_REQUEST = 7,	/* worker -> proxy (internal port): reach a site */
	VR_FRAME_CONNECT = 8,	/* proxy -> agent (control): dial a proxy with a cookie */
};

/* "hello", "welcome", ...; NULL for a type the protocol does not have. */
const char *vr_tunnel_frame_name(unsigned type);

struct vr_tunnel_frame {
	unsigned type;
	const char *payload; /* points into the parsed buffer */
	size_t len;
};

/* Look for one whole frame at the start of data. Returns 0 with
 * *consumed_out = 0 when more bytes are needed, 0 with the frame and the
 * bytes it takes in *consumed_out, VR_EINVAL for a type the protocol does
 * not have, or VR_ETOOBIG for a length over VR_TUNNEL_MAX_PAYLOAD (both
 * known from the header alone). */
int vr_tunnel_frame_parse(struct vr_tunnel_frame *frame_out, size_t *consumed_out, const void *data,
			  size_t len);
/* Append one frame to out. Returns 0, VR_EINVAL (unknown type), VR_ETOOBIG
 * (payload too long) or VR_ENOMEM. */
int vr_tunnel_frame_append(struct vr_buf *out, unsigned type, const void *payload, size_t len);

/* --- key=value payloads ----------------------------------------------- */

/* A payload is lines "key=value\n": keys are [a-z0-9_] (1-32), values
 * printable ASCII (space allowed, no control character), every line ends
 * with '\n', no key twice. */
struct vr_tunnel_fields {
	size_t count;
	struct {
		char key[33];
		char *value; /* owned */
	} field[VR_TUNNEL_MAX_FIELDS];
};

/* Parse a payload. Returns 0 or VR_EINVAL with *reason_out (static text). */
int vr_tunnel_fields_parse(struct vr_tunnel_fields *out, const char *payload, size_t len,
			   const char **reason_out);
/* The value of key, or NULL. */
const char *vr_tunnel_field(const struct vr_tunnel_fields *fields, const char *key);
void vr_tunnel_fields_free(struct vr_tunnel_fields *fields);
/* Append "key=value\n" to out. Returns 0, VR_EINVAL (a key or value the
 * format does not allow) or VR_ENOMEM. */
int vr_tunnel_field_append(struct vr_buf *out, const char *key, const char *value);

/* --- the hello -------------------------------------------------------- */

enum vr_tunnel_kind {
	VR_TUNNEL_CONTROL = 1, /* long-lived: heartbeats, commands and acks */
	VR_TUNNEL_DATA,	       /* raw bytes to the worker after the welcome */
	VR_TUNNEL_REVERSE,     /* answers a reverse-connection request (cookie) */
};

/* "control", "data", "reverse"; NULL for anything else. */
const char *vr_tunnel_kind_name(enum vr_tunnel_kind kind);

struct vr_tunnel_hello {
	unsigned version;
	enum vr_tunnel_kind kind;
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	char replication[VR_UUID_LEN + 1]; /* data: the replication the stream is for */
	char cookie[VR_TUNNEL_MAX_ID + 1]; /* reverse: the one-time cookie */
	char agent[VR_TUNNEL_MAX_ID + 1];  /* optional: the agent's name and version */
};

/* Parse a hello payload: version=1, a known kind, a credential on every
 * kind, a replication UUID on data, a cookie on reverse. Returns 0 or
 * VR_EINVAL with *reason_out (static text). The credential is wiped from
 * every copy but hello_out's. */
int vr_tunnel_hello_parse(struct vr_tunnel_hello *hello_out, const char *payload, size_t len,
			  const char **reason_out);
/* Append the hello frame of hello to out. Returns 0, VR_EINVAL or
 * VR_ENOMEM. */
int vr_tunnel_hello_append(struct vr_buf *out, const struct vr_tunnel_hello *hello);
/* Wipe the credential. */
void vr_tunnel_hello_clear(struct vr_tunnel_hello *hello);

/* --- commands ----------------------------------------------------------- */

/* A command as it waits in the site's Redis list and travels in a COMMAND
 * frame: a key=value payload with id=[A-Za-z0-9._-]{1,64} and
 * name=[A-Za-z0-9._-]{1,64}, and any further fields for the command. */
struct vr_tunnel_command {
	char id[VR_TUNNEL_MAX_ID + 1];
	char name[VR_TUNNEL_MAX_ID + 1];
};

/* Returns 0 or VR_EINVAL with *reason_out (static text). */
int vr_tunnel_command_parse(struct vr_tunnel_command *out, const char *payload, size_t len,
			    const char **reason_out);
/* Whether s is a valid command id or name. */
bool vr_tunnel_id_valid(const char *s);

/* --- reverse connections --------------------------------------------------- */

/* Length of a cookie: 32 random bytes in unpadded base64url. */
#define VR_TUNNEL_COOKIE_LEN 43

/* A new one-time cookie from the OpenSSL CSPRNG. Returns 0 or VR_EIO. */
int vr_tunnel_cookie_new(char out[VR_TUNNEL_COOKIE_LEN + 1]);

/* What a reverse connection is for: the agent hands the stream to the
 * handler of this name. "failback" (the default) carries a failback's
 * blocks; "probe" is an operator's check of the site's reverse path. */
#define VR_TUNNEL_PURPOSE_FAILBACK "failback"
#define VR_TUNNEL_PURPOSE_PROBE	   "probe"

/* A worker's request on a proxy's internal port: version=1, peer (the
 * site's peer id), replication (optional for a probe, else required),
 * and optionally purpose (default failback) and worker (its name, for
 * logs). */
struct vr_tunnel_request {
	char peer[VR_UUID_LEN + 1];
	char replication[VR_UUID_LEN + 1]; /* "" for a probe naming none */
	char purpose[VR_TUNNEL_MAX_ID + 1];
	char worker[VR_TUNNEL_MAX_ID + 1];
};

/* Returns 0 or VR_EINVAL with *reason_out (static text). */
int vr_tunnel_request_parse(struct vr_tunnel_request *out, const char *payload, size_t len,
			    const char **reason_out);

/* What a CONNECT frame (and a request on the bus) carries: the address of
 * the proxy to dial, the cookie, the replication; the bus message names
 * the peer too. */
struct vr_tunnel_connect {
	char peer[VR_UUID_LEN + 1]; /* "" when absent (CONNECT frames) */
	char address[256];
	char cookie[VR_TUNNEL_MAX_ID + 1];
	char replication[VR_UUID_LEN + 1]; /* "" for a probe naming none */
	char purpose[VR_TUNNEL_MAX_ID + 1];
};

/* Returns 0 or VR_EINVAL with *reason_out. need_peer: the peer field is
 * required (bus messages). */
int vr_tunnel_connect_parse(struct vr_tunnel_connect *out, const char *payload, size_t len,
			    bool need_peer, const char **reason_out);

/* --- addresses ------------------------------------------------------------ */

/* Split "host:port" or "[v6]:port" into host (without brackets) and port
 * (0 to 65535). Returns 0 or VR_EINVAL. */
int vr_tunnel_split_address(char *host, size_t host_size, unsigned *port_out, const char *address);

#endif
