/* vrcloudctl tunnel-probe: check a site's reverse path end to end, as a
 * worker sends a failback (docs/tunnels.md). The command asks a proxy's
 * internal port for the site with a request of purpose "probe"; the proxy
 * holding the site tells its agent to dial back; once stitched, N random
 * bytes go to the agent, which counts and hashes them (SHA-256) and
 * answers "bytes=N\nsha256=HEX\n". The command compares that answer with
 * what it sent. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ctl.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/tunnel.h"

#define CHUNK	   (256u * 1024u)
#define ANSWER_MAX 256

static const char probe_help[] =
	"Usage: vrcloudctl tunnel-probe PEER_OR_SITE --proxy HOST:PORT [--bytes N]\n"
	"                               [--timeout S]\n"
	"\n"
	"Check a paired site's reverse path: ask a proxy's internal port for the\n"
	"site (as a worker does for a failback), send N random bytes through the\n"
	"connection its agent dials back, and compare the byte count and SHA-256 the\n"
	"agent answers with what was sent. PEER_OR_SITE is the peer id or the site\n"
	"UUID. Prints peer=, proxy=, bytes=, sha256=, seconds= and mib_per_s= lines;\n"
	"exits 0 when the agent's answer matches, 1 otherwise.\n"
	"\n"
	"Options:\n"
	"  --proxy HOST:PORT  a proxy's internal port (its internal_listen) or the\n"
	"                     internal load balancer in front of the proxies\n"
	"  --bytes N          bytes to send, with a K, M or G suffix (default 16M)\n"
	"  --timeout S        seconds any step may wait (default 60)\n"
	"  -h, --help         show this help\n";

struct probe {
	int fd;
	char peer[VR_UUID_LEN + 1];
	uint64_t bytes;
	unsigned timeout_s;
	unsigned char in[VR_TUNNEL_HEADER_LEN + VR_TUNNEL_MAX_PAYLOAD];
	size_t in_len;
	char proxy[VR_TUNNEL_MAX_ID + 1];
	char sent_hex[65];
};

static int parse_size(uint64_t *out, const char *text)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || text[0] == '-')
		return VR_EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || v > (UINT64_MAX >> 34))
		return VR_EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The peer named by a peer id or a site UUID (one not revoked). */
static int find_peer(struct probe *p, struct vr_ctl *ctl, const char *name)
{
	char id[VR_UUID_LEN + 1];
	if (strlen(name) != VR_UUID_LEN || vr_uuid_canon(id, name)) {
		vr_ctl_error("'%s' is neither a peer id nor a site UUID", name);
		return VR_EINVAL;
	}
	int err = vr_ctl_db_open(ctl);
	if (err)
		return err;
	const char *params[] = {id};
	PGresult *res = NULL;
	err = vr_ctl_db_exec(
		&res, ctl,
		"SELECT id::text FROM peers WHERE (id = $1::uuid OR site_uuid = $1::uuid)"
		" AND revoked_at IS NULL ORDER BY id",
		1, params);
	if (err)
		return err;
	int n = PQntuples(res);
	if (n == 1)
		snprintf(p->peer, sizeof p->peer, "%s", PQgetvalue(res, 0, 0));
	else if (n == 0)
		vr_ctl_error("no peer (not revoked) has the id or site UUID %s", id);
	else
		vr_ctl_error("the site %s is paired with %d VDCs: name the peer id", id, n);
	PQclear(res);
	return n == 1 ? 0 : VR_ENOTFOUND;
}

static int dial(struct probe *p, const char *address)
{
	char host[256], port[12];
	unsigned port_number;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, address) || !port_number) {
		vr_ctl_error("--proxy '%s' is not host:port", address);
		return VR_EINVAL;
	}
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		vr_ctl_error("cannot resolve %s: %s", address, gai_strerror(rc));
		return VR_EUNAVAIL;
	}
	p->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = p->timeout_s};
	if (p->fd >= 0) {
		setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	rc = p->fd >= 0 && connect(p->fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : VR_EUNAVAIL;
	freeaddrinfo(res);
	if (rc)
		vr_ctl_error("cannot connect to the proxy at %s: %s", address, strerror(errno));
	return rc;
}

static int send_all(int fd, const void *data, size_t len)
{
	const unsigned char *b = data;
	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EUNAVAIL;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send the request and wait for the proxy's answer frame. */
static int request(struct probe *p)
{
	struct vr_buf payload, frame;
	vr_buf_init(&payload, 0);
	vr_buf_init(&frame, 0);
	vr_tunnel_field_append(&payload, "version", "1");
	vr_tunnel_field_append(&payload, "peer", p->peer);
	vr_tunnel_field_append(&payload, "purpose", VR_TUNNEL_PURPOSE_PROBE);
	vr_tunnel_field_append(&payload, "worker", "vrcloudctl");
	int rc = vr_tunnel_frame_append(&frame, VR_FRAME_REQUEST, payload.data, payload.len);
	if (!rc)
		rc = send_all(p->fd, frame.data, frame.len);
	vr_buf_free(&payload);
	vr_buf_free(&frame);
	if (rc) {
		vr_ctl_error("the request could not be sent: %s", strerror(errno));
		return rc;
	}
	struct vr_tunnel_frame answer;
	size_t used = 0;
	while (!used) {
		if (vr_tunnel_frame_parse(&answer, &used, p->in, p->in_len)) {
			vr_ctl_error("the proxy's answer is not a frame");
			return VR_EINVAL;
		}
		if (used)
			break;
		ssize_t n = recv(p->fd, p->in + p->in_len, sizeof p->in - p->in_len, 0);
		if (n <= 0) {
			vr_ctl_error("the proxy closed without an answer%s%s", n ? ": " : "",
				     n ? strerror(errno) : "");
			return VR_EUNAVAIL;
		}
		p->in_len += (size_t)n;
	}
	struct vr_tunnel_fields fields;
	const char *reason = NULL;
	if (vr_tunnel_fields_parse(&fields, answer.payload, answer.len, &reason)) {
		vr_ctl_error("the proxy's answer is malformed: %s", reason);
		return VR_EINVAL;
	}
	rc = 0;
	if (answer.type == VR_FRAME_WELCOME) {
		const char *proxy = vr_tunnel_field(&fields, "proxy");
		snprintf(p->proxy, sizeof p->proxy, "%s", proxy ? proxy : "");
	} else {
		const char *why = vr_tunnel_field(&fields, "reason");
		const char *message = vr_tunnel_field(&fields, "message");
		vr_ctl_error("refused: %s: %s", why ? why : "?", message ? message : "");
		rc = VR_ECONFLICT;
	}
	vr_tunnel_fields_free(&fields);
	/* What came after the frame is the start of the agent's answer. */
	memmove(p->in, p->in + used, p->in_len - used);
	p->in_len -= used;
	return rc;
}

/* N random bytes (an AES-CTR keystream: fast and not compressible),
 * hashed as they go. */
static int stream(struct probe *p)
{
	unsigned char key[32], iv[16];
	if (RAND_bytes(key, sizeof key) != 1 || RAND_bytes(iv, sizeof iv) != 1) {
		vr_ctl_error("the random number generator failed");
		return VR_EIO;
	}
	EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *zero = calloc(1, CHUNK), *buf = malloc(CHUNK);
	int rc = 0;
	if (!cipher || !md || !zero || !buf ||
	    EVP_EncryptInit_ex(cipher, EVP_aes_128_ctr(), NULL, key, iv) != 1 ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rc = VR_ENOMEM;
	for (uint64_t sent = 0; !rc && sent < p->bytes;) {
		size_t len = p->bytes - sent < CHUNK ? (size_t)(p->bytes - sent) : CHUNK;
		int out = 0;
		if (EVP_EncryptUpdate(cipher, buf, &out, zero, (int)len) != 1 ||
		    EVP_DigestUpdate(md, buf, len) != 1) {
			rc = VR_ENOMEM;
			break;
		}
		if (send_all(p->fd, buf, len)) {
			vr_ctl_error("the stream broke after %llu bytes: %s",
				     (unsigned long long)sent, strerror(errno));
			rc = VR_EUNAVAIL;
			break;
		}
		sent += len;
	}
	unsigned char digest[32];
	unsigned int dlen = 0;
	if (!rc && EVP_DigestFinal_ex(md, digest, &dlen) != 1)
		rc = VR_ENOMEM;
	for (unsigned i = 0; !rc && i < dlen; i++)
		snprintf(p->sent_hex + 2 * i, 3, "%02x", digest[i]);
	EVP_CIPHER_CTX_free(cipher);
	EVP_MD_CTX_free(md);
	free(zero);
	free(buf);
	OPENSSL_cleanse(key, sizeof key);
	if (!rc && shutdown(p->fd, SHUT_WR) != 0) {
		vr_ctl_error("the stream could not be ended: %s", strerror(errno));
		rc = VR_EUNAVAIL;
	}
	return rc;
}

/* Read the agent's answer to the end and compare it. */
static int check_answer(struct probe *p)
{
	char answer[ANSWER_MAX + 1];
	size_t len = p->in_len < ANSWER_MAX ? p->in_len : ANSWER_MAX;
	memcpy(answer, p->in, len);
	for (;;) {
		ssize_t n = recv(p->fd, answer + len, ANSWER_MAX - len, 0);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vr_ctl_error("the stream broke before the site answered: %s",
				     strerror(errno));
			return VR_EUNAVAIL;
		}
		len += (size_t)n;
		if (len == ANSWER_MAX) {
			vr_ctl_error("the site's answer is too long");
			return VR_EINVAL;
		}
	}
	answer[len] = '\0';
	unsigned long long bytes;
	char hex[65];
	if (sscanf(answer, "bytes=%llu\nsha256=%64[0-9a-f]\n", &bytes, hex) != 2) {
		vr_ctl_error("the site's answer is malformed (%zu bytes)", len);
		return VR_EINVAL;
	}
	if (bytes != p->bytes || strcmp(hex, p->sent_hex) != 0) {
		vr_ctl_error("the site got %llu bytes with SHA-256 %s; %llu bytes with SHA-256 "
			     "%s were sent",
			     bytes, hex, (unsigned long long)p->bytes, p->sent_hex);
		return VR_ECONFLICT;
	}
	return 0;
}

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int vr_ctl_cmd_tunnel_probe(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *proxy = NULL, *bytes = NULL, *timeout = NULL;
	const struct vr_ctl_opt opts[] = {{"proxy", true, &proxy},
					  {"bytes", true, &bytes},
					  {"timeout", true, &timeout},
					  {NULL, false, NULL}};
	const char *pos[1];
	int rc = vr_ctl_parse_args(pos, NULL, "tunnel-probe", probe_help, 1, 1, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	struct probe p = {.fd = -1, .bytes = 16u << 20, .timeout_s = 60};
	if (!proxy)
		return vr_ctl_usage_error("tunnel-probe", "--proxy HOST:PORT is required");
	if (bytes && parse_size(&p.bytes, bytes))
		return vr_ctl_usage_error("tunnel-probe", "--bytes takes N, NK, NM or NG");
	if (timeout) {
		char *end;
		unsigned long t = strtoul(timeout, &end, 10);
		if (*end || t < 1 || t > 86400 || timeout[0] == '-')
			return vr_ctl_usage_error("tunnel-probe", "--timeout takes 1 to 86400");
		p.timeout_s = (unsigned)t;
	}
	int err = find_peer(&p, ctl, pos[0]);
	if (err)
		return err == VR_EINVAL ? VR_CTL_EXIT_USAGE : vr_ctl_exit_status(err);
	double start = seconds_now();
	err = dial(&p, proxy);
	if (err == VR_EINVAL)
		return VR_CTL_EXIT_USAGE;
	if (!err)
		err = request(&p);
	double stitched = seconds_now();
	if (!err)
		err = stream(&p);
	if (!err)
		err = check_answer(&p);
	if (p.fd >= 0)
		close(p.fd);
	if (err)
		return VR_CTL_EXIT_FAILURE;
	double end = seconds_now();
	double secs = end - stitched;
	printf("peer=%s\nproxy=%s\nbytes=%llu\nsha256=%s\nconnect_seconds=%.3f\nseconds=%.3f\n"
	       "mib_per_s=%.1f\n",
	       p.peer, p.proxy, (unsigned long long)p.bytes, p.sent_hex, stitched - start, secs,
	       secs > 0 ? (double)p.bytes / 1048576.0 / secs : 0.0);
	return VR_CTL_EXIT_OK;
}
