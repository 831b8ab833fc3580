/* TLS 1.3 for the tunnels (OpenSSL): the proxy's server context, the
 * agent's client context, and how the agent checks the proxy: against a
 * CA (chain and name) and/or a pinned public key (SHA-256 of the
 * certificate's SubjectPublicKeyInfo, which survives a renewal that keeps
 * the key). */
#ifndef VRCLOUD_TLS_H
#define VRCLOUD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#define VR_TLS_PIN_LEN 32
/* Most pins a client accepts (old and new key during a rotation). */
#define VR_TLS_MAX_PINS 8

/* A server context: TLS 1.3 only, the certificate chain of cert_file (the
 * leaf first, PEM) and its key_file. Returns 0, VR_EIO (unreadable) or
 * VR_ECONFIG (key and certificate do not match, ...) with *error_out. */
int vr_tls_server_ctx(SSL_CTX **out, const char *cert_file, const char *key_file, char **error_out);

struct vr_tls_pins {
	size_t count;
	unsigned char pin[VR_TLS_MAX_PINS][VR_TLS_PIN_LEN];
};

/* Parse a comma-separated list of SHA-256 hashes, each 64 hex digits
 * (colons between byte pairs allowed), optionally "sha256:"-prefixed.
 * Returns 0 or VR_EINVAL. */
int vr_tls_pins_parse(struct vr_tls_pins *out, const char *text);

/* A client context: TLS 1.3 only; with ca_file (PEM) the proxy's chain
 * is verified against it during the handshake. Without a CA, the chain is
 * not verified and vr_tls_check_peer's pin check is what authenticates.
 * Returns 0, VR_EIO or VR_ECONFIG with *error_out. */
int vr_tls_client_ctx(SSL_CTX **out, const char *ca_file, char **error_out);

/* Prepare a client connection: SNI and, with a CA, the name the
 * certificate must carry (a DNS name or an IP address). Returns 0 or
 * VR_ENOMEM. */
int vr_tls_client_prepare(SSL *ssl, const char *server_name, bool verify_name);

/* After the handshake, before anything is sent: the peer's leaf must
 * match one of pins (when any are given) and, with verify_chain, the chain
 * must have verified. Returns 0 or VR_EAUTH with *error_out (static). */
int vr_tls_check_peer(SSL *ssl, const struct vr_tls_pins *pins, bool verify_chain,
		      const char **error_out);

/* SHA-256 of a certificate's SubjectPublicKeyInfo. Returns 0 or VR_EINVAL. */
int vr_tls_spki_sha256(unsigned char out[VR_TLS_PIN_LEN], X509 *cert);

/* The last OpenSSL error as text (static buffer per thread), "" when none;
 * the error queue is cleared. */
const char *vr_tls_error(void);

#endif
