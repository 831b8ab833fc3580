/* The "probe" purpose of reverse connections: an operator checks a site's
 * reverse path (docs/tunnels.md). The agent reads the worker's stream to
 * its end, counting and hashing it, and writes back one answer before it
 * closes:
 *
 *     bytes=<count>\nsha256=<64 hex digits>\n
 *
 * Nothing is kept: the bytes are discarded as they are hashed. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "vrcloud/agent.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define PROBE_CHUNK (256u * 1024u)

int vr_agent_probe_serve(struct vr_agent_conn *conn, uint64_t *bytes_out,
			 char hex_out[VR_AGENT_PROBE_HEX + 1])
{
	*bytes_out = 0;
	hex_out[0] = '\0';
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return VR_ENOMEM;
	}
	unsigned char *buf = vr_malloc(PROBE_CHUNK);
	int rc = 0;
	for (;;) {
		size_t n = 0;
		rc = vr_agent_conn_read(conn, buf, PROBE_CHUNK, &n);
		if (rc || n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, n) != 1) {
			rc = VR_ENOMEM;
			break;
		}
		*bytes_out += n;
	}
	free(buf);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!rc && EVP_DigestFinal_ex(md, digest, &len) != 1)
		rc = VR_ENOMEM;
	EVP_MD_CTX_free(md);
	if (rc)
		return rc;
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < len && 2 * i + 1 < VR_AGENT_PROBE_HEX + 1; i++) {
		hex_out[2 * i] = hex[digest[i] >> 4];
		hex_out[2 * i + 1] = hex[digest[i] & 15];
	}
	hex_out[VR_AGENT_PROBE_HEX] = '\0';
	char answer[128];
	int alen = snprintf(answer, sizeof answer, "bytes=%llu\nsha256=%s\n",
			    (unsigned long long)*bytes_out, hex_out);
	rc = vr_agent_conn_write(conn, answer, (size_t)alen);
	if (!rc)
		rc = vr_agent_conn_finish(conn);
	return rc;
}
