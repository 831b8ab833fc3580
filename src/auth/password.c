/* Password hashing with scrypt through the OpenSSL 3 EVP_KDF interface.
 * The stored form is parsed strictly: one exact layout, canonical base64,
 * fixed block size and parallelism, and a bounded cost, so a tampered row
 * can neither verify by accident nor make a login allocate unbounded memory. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/password.h"

#define SCRYPT_LN     15 /* N = 2^15 */
#define SCRYPT_LN_MIN 10
#define SCRYPT_LN_MAX 20
#define SCRYPT_R      8
#define SCRYPT_P      1
/* scrypt needs 128 * r * (N + 2) + 128 * r * p bytes: about 1 GiB at the
 * largest accepted cost; OpenSSL refuses anything above this bound. */
#define SCRYPT_MAXMEM (((uint64_t)1 << 30) + ((uint64_t)1 << 20))

#define SALT_LEN      16
#define KEY_LEN	      32
#define SALT_B64_LEN  24 /* 4 * ceil(16 / 3) */
#define KEY_B64_LEN   44 /* 4 * ceil(32 / 3) */

static const char prefix[] = "$scrypt$ln=";
static const char params_tail[] = ",r=8,p=1$";

static int derive(unsigned char key[KEY_LEN], const char *password, size_t password_len,
		  const unsigned char salt[SALT_LEN], unsigned ln)
{
	uint64_t n = (uint64_t)1 << ln;
	uint32_t r = SCRYPT_R, p = SCRYPT_P;
	uint64_t maxmem = SCRYPT_MAXMEM;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	int err = VR_EIO;

	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!kdf)
		goto cleanup;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto cleanup;

	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
						  password_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_LEN),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_KDF_derive(ctx, key, KEY_LEN, params) != 1)
		goto cleanup;
	err = 0;
cleanup:
	if (err)
		vr_log_error("password_kdf_failed", "kdf", "scrypt");
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return err;
}

/* Length of password if it is acceptable (1..VR_PASSWORD_MAX bytes), else 0. */
static size_t password_length(const char *password)
{
	if (!password)
		return 0;
	size_t len = strnlen(password, VR_PASSWORD_MAX + 1);
	return len > VR_PASSWORD_MAX ? 0 : len;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode exactly text_len characters of padded standard base64 into exactly
 * out_len bytes. Only the canonical encoding of those bytes is accepted: no
 * whitespace, padding only where it must be, unused trailing bits zero. */
static int b64_decode_exact(unsigned char *out, size_t out_len, const char *text, size_t text_len)
{
	size_t pad = (3 - out_len % 3) % 3;
	if (text_len != 4 * ((out_len + 2) / 3))
		return VR_EINVAL;
	for (size_t i = text_len - pad; i < text_len; i++)
		if (text[i] != '=')
			return VR_EINVAL;

	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < text_len - pad; i++) {
		int v = b64_value(text[i]);
		if (v < 0)
			return VR_EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (o != out_len || acc != 0)
		return VR_EINVAL;
	return 0;
}

/* Parse "$scrypt$ln=L,r=8,p=1$SALT$KEY" with nothing before or after. */
static int parse_stored(unsigned *ln_out, unsigned char salt[SALT_LEN], unsigned char key[KEY_LEN],
			const char *stored)
{
	if (!stored || strnlen(stored, VR_PASSWORD_HASH_MAX) >= VR_PASSWORD_HASH_MAX)
		return VR_EINVAL;
	if (strncmp(stored, prefix, sizeof prefix - 1) != 0)
		return VR_EINVAL;
	const char *s = stored + sizeof prefix - 1;

	/* one or two digits, no leading zero */
	unsigned ln = 0;
	size_t digits = 0;
	while (s[digits] >= '0' && s[digits] <= '9' && digits < 3)
		ln = ln * 10 + (unsigned)(s[digits++] - '0');
	if (digits == 0 || digits > 2 || s[0] == '0')
		return VR_EINVAL;
	if (ln < SCRYPT_LN_MIN || ln > SCRYPT_LN_MAX)
		return VR_EINVAL;
	s += digits;

	if (strncmp(s, params_tail, sizeof params_tail - 1) != 0)
		return VR_EINVAL;
	s += sizeof params_tail - 1;

	const char *dollar = strchr(s, '$');
	if (!dollar)
		return VR_EINVAL;
	if (b64_decode_exact(salt, SALT_LEN, s, (size_t)(dollar - s)))
		return VR_EINVAL;
	s = dollar + 1;
	if (b64_decode_exact(key, KEY_LEN, s, strlen(s)))
		return VR_EINVAL;
	*ln_out = ln;
	return 0;
}

int vr_password_hash(char out[VR_PASSWORD_HASH_MAX], const char *password)
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char salt_b64[SALT_B64_LEN + 1], key_b64[KEY_B64_LEN + 1];
	size_t len = password_length(password);
	int err;

	out[0] = '\0';
	if (len == 0)
		return VR_EINVAL;
	if (RAND_bytes(salt, sizeof salt) != 1) {
		vr_log_error("password_salt_failed", "source", "RAND_bytes");
		return VR_EIO;
	}
	err = derive(key, password, len, salt, SCRYPT_LN);
	if (err)
		goto cleanup;
	EVP_EncodeBlock((unsigned char *)salt_b64, salt, sizeof salt);
	EVP_EncodeBlock((unsigned char *)key_b64, key, sizeof key);
	int n = snprintf(out, VR_PASSWORD_HASH_MAX, "%s%d%s%s$%s", prefix, SCRYPT_LN, params_tail,
			 salt_b64, key_b64);
	if (n < 0 || n >= VR_PASSWORD_HASH_MAX) {
		out[0] = '\0';
		err = VR_EIO;
	}
cleanup:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(key_b64, sizeof key_b64);
	return err;
}

bool vr_password_verify(const char *stored, const char *password)
{
	unsigned char salt[SALT_LEN], expected[KEY_LEN], actual[KEY_LEN];
	unsigned ln;
	bool match = false;
	size_t len = password_length(password);

	if (len == 0)
		return false;
	if (parse_stored(&ln, salt, expected, stored))
		return false;
	if (derive(actual, password, len, salt, ln) == 0)
		match = CRYPTO_memcmp(expected, actual, KEY_LEN) == 0;
	OPENSSL_cleanse(actual, sizeof actual);
	OPENSSL_cleanse(expected, sizeof expected);
	return match;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[VR_PASSWORD_HASH_MAX];

/* Used only if the KDF fails at start-up: a well-formed stored form whose
 * password was random and discarded, so verifying against it still runs
 * the full parse-and-derive path and never matches. */
static const char dummy_fallback[] = "$scrypt$ln=15,r=8,p=1$eTc94t+e3+sD6RctkVUxsw==$"
				     "jWXrqGMgjDm0O4mnA3140seBZJkKVkvBCMFtphYi5jc=";

static void dummy_init(void)
{
	/* A random password nobody knows: even a caller that forgot to
	 * ignore the result of verifying against the dummy gets false. */
	unsigned char raw[24];
	char password[2 * sizeof raw + 1];
	int err = VR_EIO;

	if (RAND_bytes(raw, sizeof raw) == 1) {
		for (size_t i = 0; i < sizeof raw; i++)
			snprintf(password + 2 * i, 3, "%02x", raw[i]);
		err = vr_password_hash(dummy_hash, password);
	}
	if (err) {
		vr_log_error("password_dummy_hash_failed", "fallback", "precomputed");
		snprintf(dummy_hash, sizeof dummy_hash, "%s", dummy_fallback);
	}
	OPENSSL_cleanse(raw, sizeof raw);
	OPENSSL_cleanse(password, sizeof password);
}

const char *vr_password_dummy_hash(void)
{
	pthread_once(&dummy_once, dummy_init);
	return dummy_hash;
}
