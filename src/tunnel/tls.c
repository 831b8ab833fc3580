/* TLS contexts and peer checks of the tunnels (OpenSSL 3). Both ends
 * speak TLS 1.3 only. Partial writes and moving write buffers are allowed
 * on every connection: the proxy's buffers compact while a write waits. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/tls.h"

const char *vr_tls_error(void)
{
	static __thread char text[256];
	unsigned long e = ERR_get_error();
	text[0] = '\0';
	if (e)
		ERR_error_string_n(e, text, sizeof text);
	ERR_clear_error();
	return text;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	return ctx;
}

int vr_tls_server_ctx(SSL_CTX **out, const char *cert_file, const char *key_file, char **error_out)
{
	*out = NULL;
	SSL_CTX *ctx = new_ctx(TLS_server_method());
	if (!ctx) {
		*error_out = vr_asprintf("cannot make a TLS context: %s", vr_tls_error());
		return VR_ENOMEM;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_out = vr_asprintf("cannot read the certificate chain %s: %s", cert_file,
					 vr_tls_error());
		SSL_CTX_free(ctx);
		return VR_EIO;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_out = vr_asprintf("cannot read the key %s: %s", key_file, vr_tls_error());
		SSL_CTX_free(ctx);
		return VR_EIO;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_out = vr_asprintf("the key %s does not belong to the certificate %s",
					 key_file, cert_file);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return VR_ECONFIG;
	}
	/* The tunnels resume nothing: every connection authenticates anew. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	*out = ctx;
	return 0;
}

int vr_tls_client_ctx(SSL_CTX **out, const char *ca_file, char **error_out)
{
	*out = NULL;
	SSL_CTX *ctx = new_ctx(TLS_client_method());
	if (!ctx) {
		*error_out = vr_asprintf("cannot make a TLS context: %s", vr_tls_error());
		return VR_ENOMEM;
	}
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			*error_out = vr_asprintf("cannot read the CA file %s: %s", ca_file,
						 vr_tls_error());
			SSL_CTX_free(ctx);
			return VR_EIO;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* Pinned key only: the handshake takes any chain and
		 * vr_tls_check_peer decides before a byte is sent. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	*out = ctx;
	return 0;
}

static bool is_ip_address(const char *name)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

int vr_tls_client_prepare(SSL *ssl, const char *server_name, bool verify_name)
{
	if (!server_name || !server_name[0])
		return 0;
	bool ip = is_ip_address(server_name);
	/* SNI carries host names only (RFC 6066). */
	if (!ip && SSL_set_tlsext_host_name(ssl, server_name) != 1)
		return VR_ENOMEM;
	if (!verify_name)
		return 0;
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
		    : X509_VERIFY_PARAM_set1_host(param, server_name, 0);
	return ok == 1 ? 0 : VR_ENOMEM;
}

int vr_tls_spki_sha256(unsigned char out[VR_TLS_PIN_LEN], X509 *cert)
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return VR_EINVAL;
	unsigned int md_len = 0;
	int ok = EVP_Digest(der, (size_t)len, out, &md_len, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok == 1 && md_len == VR_TLS_PIN_LEN ? 0 : VR_EINVAL;
}

int vr_tls_check_peer(SSL *ssl, const struct vr_tls_pins *pins, bool verify_chain,
		      const char **error_out)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (!cert) {
		*error_out = "the proxy sent no certificate";
		return VR_EAUTH;
	}
	if (verify_chain && SSL_get_verify_result(ssl) != X509_V_OK) {
		*error_out = "the proxy's certificate does not verify against the CA";
		return VR_EAUTH;
	}
	if (pins && pins->count) {
		unsigned char spki[VR_TLS_PIN_LEN];
		if (vr_tls_spki_sha256(spki, cert)) {
			*error_out = "the proxy's public key cannot be read";
			return VR_EAUTH;
		}
		bool match = false;
		for (size_t i = 0; i < pins->count; i++)
			match |= CRYPTO_memcmp(spki, pins->pin[i], VR_TLS_PIN_LEN) == 0;
		if (!match) {
			*error_out = "the proxy's public key matches no pinned key";
			return VR_EAUTH;
		}
	}
	return 0;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One pin of len characters at text. */
static int pin_parse(unsigned char out[VR_TLS_PIN_LEN], const char *text, size_t len)
{
	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len > 7 && strncasecmp(text, "sha256:", 7) == 0) {
		text += 7;
		len -= 7;
	}
	size_t n = 0, i = 0;
	while (i < len) {
		if (n == VR_TLS_PIN_LEN || i + 1 >= len)
			return VR_EINVAL;
		int hi = hex_value((unsigned char)text[i]),
		    lo = hex_value((unsigned char)text[i + 1]);
		if (hi < 0 || lo < 0)
			return VR_EINVAL;
		out[n++] = (unsigned char)(hi << 4 | lo);
		i += 2;
		if (i < len && text[i] == ':') {
			if (i + 1 == len)
				return VR_EINVAL;
			i++;
		}
	}
	return n == VR_TLS_PIN_LEN ? 0 : VR_EINVAL;
}

int vr_tls_pins_parse(struct vr_tls_pins *out, const char *text)
{
	memset(out, 0, sizeof *out);
	if (!text)
		return VR_EINVAL;
	const char *p = text;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (out->count == VR_TLS_MAX_PINS || pin_parse(out->pin[out->count], p, len)) {
			memset(out, 0, sizeof *out);
			return VR_EINVAL;
		}
		out->count++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}
