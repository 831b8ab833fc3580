/* Frames and key=value payloads of the tunnel protocol (docs/tunnels.md).
 * Parsers take bytes from the network: every length is checked before it
 * is used, and nothing is trusted to be NUL-terminated. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/tunnel.h"

static const char *const frame_names[] = {
	[VR_FRAME_HELLO] = "hello",	[VR_FRAME_WELCOME] = "welcome",
	[VR_FRAME_REFUSE] = "refuse",	[VR_FRAME_HEARTBEAT] = "heartbeat",
	[VR_FRAME_COMMAND] = "command", [VR_FRAME_ACK] = "ack",
	[VR_FRAME_REQUEST] = "request", [VR_FRAME_CONNECT] = "connect",
};

const char *vr_tunnel_frame_name(unsigned type)
{
	if (type >= sizeof frame_names / sizeof frame_names[0])
		return NULL;
	return frame_names[type];
}

int vr_tunnel_frame_parse(struct vr_tunnel_frame *frame_out, size_t *consumed_out, const void *data,
			  size_t len)
{
	const unsigned char *p = data;
	*consumed_out = 0;
	memset(frame_out, 0, sizeof *frame_out);
	if (len < 1)
		return 0;
	/* The type is judged as soon as it arrives, so a peer speaking
	 * another protocol is cut off at its first byte. */
	if (!vr_tunnel_frame_name(p[0]))
		return VR_EINVAL;
	if (len < VR_TUNNEL_HEADER_LEN)
		return 0;
	size_t payload_len = (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3];
	if (payload_len > VR_TUNNEL_MAX_PAYLOAD)
		return VR_ETOOBIG;
	if (len - VR_TUNNEL_HEADER_LEN < payload_len)
		return 0;
	frame_out->type = p[0];
	frame_out->payload = (const char *)p + VR_TUNNEL_HEADER_LEN;
	frame_out->len = payload_len;
	*consumed_out = VR_TUNNEL_HEADER_LEN + payload_len;
	return 0;
}

int vr_tunnel_frame_append(struct vr_buf *out, unsigned type, const void *payload, size_t len)
{
	if (!vr_tunnel_frame_name(type))
		return VR_EINVAL;
	if (len > VR_TUNNEL_MAX_PAYLOAD)
		return VR_ETOOBIG;
	unsigned char header[VR_TUNNEL_HEADER_LEN] = {
		(unsigned char)type,
		(unsigned char)(len >> 16),
		(unsigned char)(len >> 8),
		(unsigned char)len,
	};
	size_t before = out->len;
	int rc = vr_buf_append(out, header, sizeof header);
	if (!rc && len)
		rc = vr_buf_append(out, payload, len);
	if (rc && out->data) {
		/* Leave no half frame behind. */
		out->len = before;
		out->data[before] = '\0';
	}
	return rc;
}

/* --- key=value payloads ----------------------------------------------- */

static bool key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool key_valid(const char *key, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!key_char((unsigned char)key[i]))
			return false;
	return true;
}

static bool value_valid(const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

void vr_tunnel_fields_free(struct vr_tunnel_fields *fields)
{
	if (!fields)
		return;
	for (size_t i = 0; i < fields->count; i++) {
		if (fields->field[i].value) {
			explicit_bzero(fields->field[i].value, strlen(fields->field[i].value));
			free(fields->field[i].value);
		}
	}
	memset(fields, 0, sizeof *fields);
}

const char *vr_tunnel_field(const struct vr_tunnel_fields *fields, const char *key)
{
	for (size_t i = 0; i < fields->count; i++)
		if (strcmp(fields->field[i].key, key) == 0)
			return fields->field[i].value;
	return NULL;
}

int vr_tunnel_fields_parse(struct vr_tunnel_fields *out, const char *payload, size_t len,
			   const char **reason_out)
{
	memset(out, 0, sizeof *out);
	const char *reason = NULL;
	size_t pos = 0;
	while (pos < len && !reason) {
		const char *line = payload + pos;
		const char *nl = memchr(line, '\n', len - pos);
		if (!nl) {
			reason = "a line does not end with a newline";
			break;
		}
		size_t line_len = (size_t)(nl - line);
		const char *eq = memchr(line, '=', line_len);
		if (!eq) {
			reason = "a line has no '='";
			break;
		}
		size_t key_len = (size_t)(eq - line);
		size_t value_len = line_len - key_len - 1;
		if (!key_valid(line, key_len)) {
			reason = "a key is not 1 to 32 of a-z, 0-9 and '_'";
			break;
		}
		if (!value_valid(eq + 1, value_len)) {
			reason = "a value holds a control or non-ASCII character";
			break;
		}
		if (out->count == VR_TUNNEL_MAX_FIELDS) {
			reason = "too many fields";
			break;
		}
		char key[33];
		memcpy(key, line, key_len);
		key[key_len] = '\0';
		if (vr_tunnel_field(out, key)) {
			reason = "a key appears twice";
			break;
		}
		memcpy(out->field[out->count].key, key, key_len + 1);
		out->field[out->count].value = vr_strndup(eq + 1, value_len);
		out->count++;
		pos += line_len + 1;
	}
	if (reason) {
		vr_tunnel_fields_free(out);
		*reason_out = reason;
		return VR_EINVAL;
	}
	return 0;
}

int vr_tunnel_field_append(struct vr_buf *out, const char *key, const char *value)
{
	size_t key_len = strlen(key), value_len = strlen(value);
	if (!key_valid(key, key_len) || !value_valid(value, value_len))
		return VR_EINVAL;
	int rc = vr_buf_append(out, key, key_len);
	if (!rc)
		rc = vr_buf_append(out, "=", 1);
	if (!rc)
		rc = vr_buf_append(out, value, value_len);
	if (!rc)
		rc = vr_buf_append(out, "\n", 1);
	return rc;
}

/* --- hello -------------------------------------------------------------- */

static const char *const kind_names[] = {
	[VR_TUNNEL_CONTROL] = "control",
	[VR_TUNNEL_DATA] = "data",
	[VR_TUNNEL_REVERSE] = "reverse",
};

const char *vr_tunnel_kind_name(enum vr_tunnel_kind kind)
{
	if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
		return NULL;
	return kind_names[kind];
}

static int kind_parse(const char *name, enum vr_tunnel_kind *out)
{
	for (unsigned k = VR_TUNNEL_CONTROL; k <= VR_TUNNEL_REVERSE; k++) {
		if (strcmp(kind_names[k], name) == 0) {
			*out = (enum vr_tunnel_kind)k;
			return 0;
		}
	}
	return VR_EINVAL;
}

bool vr_tunnel_id_valid(const char *s)
{
	size_t len = s ? strlen(s) : 0;
	if (len == 0 || len > VR_TUNNEL_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

/* A credential: 1 to VR_TUNNEL_MAX_CREDENTIAL printable characters
 * without spaces (what a token file may hold). */
static bool credential_valid(const char *s)
{
	size_t len = s ? strlen(s) : 0;
	if (len == 0 || len > VR_TUNNEL_MAX_CREDENTIAL)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static const char *hello_check(struct vr_tunnel_hello *hello, const struct vr_tunnel_fields *f)
{
	const char *version = vr_tunnel_field(f, "version");
	if (!version)
		return "the hello has no version";
	if (strcmp(version, "1") != 0)
		return "the hello's version is not one this proxy speaks (1)";
	hello->version = VR_TUNNEL_VERSION;
	const char *kind = vr_tunnel_field(f, "kind");
	if (!kind)
		return "the hello has no kind";
	if (kind_parse(kind, &hello->kind))
		return "the hello's kind is not control, data or reverse";
	const char *credential = vr_tunnel_field(f, "credential");
	if (!credential)
		return "the hello has no credential";
	if (!credential_valid(credential))
		return "the hello's credential is empty, too long or not printable";
	memcpy(hello->credential, credential, strlen(credential) + 1);
	const char *replication = vr_tunnel_field(f, "replication");
	if (hello->kind == VR_TUNNEL_DATA) {
		if (!replication)
			return "a data hello has no replication";
		if (vr_uuid_canon(hello->replication, replication))
			return "the hello's replication is not a UUID";
	} else if (replication) {
		return "only a data hello names a replication";
	}
	const char *cookie = vr_tunnel_field(f, "cookie");
	if (hello->kind == VR_TUNNEL_REVERSE) {
		if (!cookie)
			return "a reverse hello has no cookie";
		if (!vr_tunnel_id_valid(cookie))
			return "the hello's cookie is not 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'";
		memcpy(hello->cookie, cookie, strlen(cookie) + 1);
	} else if (cookie) {
		return "only a reverse hello carries a cookie";
	}
	const char *agent = vr_tunnel_field(f, "agent");
	if (agent) {
		if (strlen(agent) > VR_TUNNEL_MAX_ID)
			return "the hello's agent is longer than 64 characters";
		memcpy(hello->agent, agent, strlen(agent) + 1);
	}
	return NULL;
}

int vr_tunnel_hello_parse(struct vr_tunnel_hello *hello_out, const char *payload, size_t len,
			  const char **reason_out)
{
	memset(hello_out, 0, sizeof *hello_out);
	struct vr_tunnel_fields fields;
	if (vr_tunnel_fields_parse(&fields, payload, len, reason_out))
		return VR_EINVAL;
	const char *reason = hello_check(hello_out, &fields);
	vr_tunnel_fields_free(&fields);
	if (reason) {
		vr_tunnel_hello_clear(hello_out);
		*reason_out = reason;
		return VR_EINVAL;
	}
	return 0;
}

void vr_tunnel_hello_clear(struct vr_tunnel_hello *hello)
{
	explicit_bzero(hello->credential, sizeof hello->credential);
}

int vr_tunnel_hello_append(struct vr_buf *out, const struct vr_tunnel_hello *hello)
{
	const char *kind = vr_tunnel_kind_name(hello->kind);
	if (!kind || !credential_valid(hello->credential))
		return VR_EINVAL;
	if ((hello->kind == VR_TUNNEL_DATA) != (hello->replication[0] != '\0') ||
	    (hello->kind == VR_TUNNEL_REVERSE) != (hello->cookie[0] != '\0'))
		return VR_EINVAL;
	struct vr_buf payload;
	vr_buf_init(&payload, VR_TUNNEL_MAX_PAYLOAD);
	int rc = vr_tunnel_field_append(&payload, "version", "1");
	if (!rc)
		rc = vr_tunnel_field_append(&payload, "kind", kind);
	if (!rc)
		rc = vr_tunnel_field_append(&payload, "credential", hello->credential);
	if (!rc && hello->replication[0])
		rc = vr_tunnel_field_append(&payload, "replication", hello->replication);
	if (!rc && hello->cookie[0])
		rc = vr_tunnel_field_append(&payload, "cookie", hello->cookie);
	if (!rc && hello->agent[0])
		rc = vr_tunnel_field_append(&payload, "agent", hello->agent);
	if (!rc)
		rc = vr_tunnel_frame_append(out, VR_FRAME_HELLO, payload.data, payload.len);
	if (payload.data)
		explicit_bzero(payload.data, payload.len);
	vr_buf_free(&payload);
	return rc;
}

/* --- commands ----------------------------------------------------------- */

int vr_tunnel_command_parse(struct vr_tunnel_command *out, const char *payload, size_t len,
			    const char **reason_out)
{
	memset(out, 0, sizeof *out);
	if (len > VR_TUNNEL_MAX_PAYLOAD) {
		*reason_out = "the command is longer than a frame may be";
		return VR_EINVAL;
	}
	struct vr_tunnel_fields fields;
	if (vr_tunnel_fields_parse(&fields, payload, len, reason_out))
		return VR_EINVAL;
	const char *id = vr_tunnel_field(&fields, "id");
	const char *name = vr_tunnel_field(&fields, "name");
	const char *reason = NULL;
	if (!id || !vr_tunnel_id_valid(id)) {
		reason = "the command has no valid id";
	} else if (!name || !vr_tunnel_id_valid(name)) {
		reason = "the command has no valid name";
	} else {
		memcpy(out->id, id, strlen(id) + 1);
		memcpy(out->name, name, strlen(name) + 1);
	}
	vr_tunnel_fields_free(&fields);
	if (reason) {
		*reason_out = reason;
		return VR_EINVAL;
	}
	return 0;
}

/* --- reverse connections --------------------------------------------------- */

int vr_tunnel_cookie_new(char out[VR_TUNNEL_COOKIE_LEN + 1])
{
	unsigned char raw[32];
	unsigned char encoded[48];
	if (RAND_bytes(raw, sizeof raw) != 1)
		return VR_EIO;
	int n = EVP_EncodeBlock(encoded, raw, sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	if (n != VR_TUNNEL_COOKIE_LEN + 1) /* 44 with one '=' of padding */
		return VR_EIO;
	for (int i = 0; i < VR_TUNNEL_COOKIE_LEN; i++)
		out[i] = encoded[i] == '+' ? '-' : encoded[i] == '/' ? '_' : (char)encoded[i];
	out[VR_TUNNEL_COOKIE_LEN] = '\0';
	OPENSSL_cleanse(encoded, sizeof encoded);
	return 0;
}

/* A required UUID field, canonical. */
static const char *uuid_field(char out[VR_UUID_LEN + 1], const struct vr_tunnel_fields *f,
			      const char *key, const char *missing, const char *malformed)
{
	const char *v = vr_tunnel_field(f, key);
	if (!v)
		return missing;
	return vr_uuid_canon(out, v) ? malformed : NULL;
}

/* purpose (default failback: [a-z]{1,32}) and replication (required
 * unless the purpose is a probe). */
static const char *purpose_check(char purpose[VR_TUNNEL_MAX_ID + 1],
				 char replication[VR_UUID_LEN + 1],
				 const struct vr_tunnel_fields *f)
{
	const char *p = vr_tunnel_field(f, "purpose");
	if (!p)
		p = VR_TUNNEL_PURPOSE_FAILBACK;
	size_t len = strlen(p);
	if (len == 0 || len > 32 || strspn(p, "abcdefghijklmnopqrstuvwxyz") != len)
		return "the request's purpose is not 1 to 32 of a-z";
	memcpy(purpose, p, len + 1);
	if (strcmp(p, VR_TUNNEL_PURPOSE_PROBE) == 0 && !vr_tunnel_field(f, "replication"))
		return NULL;
	return uuid_field(replication, f, "replication", "the request names no replication",
			  "the request's replication is not a UUID");
}

static const char *request_check(struct vr_tunnel_request *out, const struct vr_tunnel_fields *f)
{
	const char *version = vr_tunnel_field(f, "version");
	if (!version || strcmp(version, "1") != 0)
		return "the request's version is not 1";
	const char *reason = uuid_field(out->peer, f, "peer", "the request names no peer",
					"the request's peer is not a UUID");
	if (!reason)
		reason = purpose_check(out->purpose, out->replication, f);
	if (reason)
		return reason;
	const char *worker = vr_tunnel_field(f, "worker");
	if (worker) {
		if (!vr_tunnel_id_valid(worker))
			return "the request's worker is not 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'";
		memcpy(out->worker, worker, strlen(worker) + 1);
	}
	return NULL;
}

int vr_tunnel_request_parse(struct vr_tunnel_request *out, const char *payload, size_t len,
			    const char **reason_out)
{
	memset(out, 0, sizeof *out);
	struct vr_tunnel_fields fields;
	if (vr_tunnel_fields_parse(&fields, payload, len, reason_out))
		return VR_EINVAL;
	const char *reason = request_check(out, &fields);
	vr_tunnel_fields_free(&fields);
	if (reason) {
		memset(out, 0, sizeof *out);
		*reason_out = reason;
		return VR_EINVAL;
	}
	return 0;
}

static const char *connect_check(struct vr_tunnel_connect *out, const struct vr_tunnel_fields *f,
				 bool need_peer)
{
	const char *reason = NULL;
	if (need_peer || vr_tunnel_field(f, "peer"))
		reason = uuid_field(out->peer, f, "peer", "the request names no peer",
				    "the request's peer is not a UUID");
	if (!reason)
		reason = purpose_check(out->purpose, out->replication, f);
	if (reason)
		return reason;
	const char *cookie = vr_tunnel_field(f, "cookie");
	if (!cookie || !vr_tunnel_id_valid(cookie))
		return "the request has no valid cookie";
	memcpy(out->cookie, cookie, strlen(cookie) + 1);
	const char *address = vr_tunnel_field(f, "address");
	char host[256];
	unsigned port = 0;
	if (!address || strlen(address) >= sizeof out->address ||
	    vr_tunnel_split_address(host, sizeof host, &port, address) || port == 0)
		return "the request has no valid address (host:port)";
	memcpy(out->address, address, strlen(address) + 1);
	return NULL;
}

int vr_tunnel_connect_parse(struct vr_tunnel_connect *out, const char *payload, size_t len,
			    bool need_peer, const char **reason_out)
{
	memset(out, 0, sizeof *out);
	struct vr_tunnel_fields fields;
	if (vr_tunnel_fields_parse(&fields, payload, len, reason_out))
		return VR_EINVAL;
	const char *reason = connect_check(out, &fields, need_peer);
	vr_tunnel_fields_free(&fields);
	if (reason) {
		memset(out, 0, sizeof *out);
		*reason_out = reason;
		return VR_EINVAL;
	}
	return 0;
}
