/* Password hashing: scrypt stored forms, verification, strict parsing. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/password.h"

#define PREFIX "$scrypt$ln=15,r=8,p=1$"

/* A stored form for password, checked for its shape. */
static void hash_ok(char out[VR_PASSWORD_HASH_MAX], const char *password)
{
	cr_assert_eq(vr_password_hash(out, password), 0);
	/* prefix + 24 characters of salt + '$' + 44 characters of key */
	cr_assert_eq(strlen(out), strlen(PREFIX) + 24 + 1 + 44, "stored form: %s", out);
	cr_assert_eq(strncmp(out, PREFIX, strlen(PREFIX)), 0, "stored form: %s", out);
	cr_assert_eq(out[strlen(PREFIX) + 24], '$');
	cr_assert_null(strchr(out, '\n'));
}

/* stored with the characters [at, at + cut) replaced by insert */
static char *edited(const char *stored, size_t at, size_t cut, const char *insert)
{
	size_t len = strlen(stored);
	char *out = malloc(len + strlen(insert) + 1);
	cr_assert_not_null(out);
	memcpy(out, stored, at);
	strcpy(out + at, insert);
	strcat(out, stored + at + cut);
	return out;
}

static void expect_rejected(const char *stored, const char *password, const char *why)
{
	cr_expect_not(vr_password_verify(stored, password), "accepted %s: '%s'", why, stored);
}

Test(password, round_trip)
{
	char stored[VR_PASSWORD_HASH_MAX];

	hash_ok(stored, "correct horse battery staple");
	cr_assert(vr_password_verify(stored, "correct horse battery staple"));
}

Test(password, wrong_password)
{
	char stored[VR_PASSWORD_HASH_MAX];

	hash_ok(stored, "s3cret");
	cr_assert_not(vr_password_verify(stored, "s3creT"));
	cr_assert_not(vr_password_verify(stored, "s3cret "));
	cr_assert_not(vr_password_verify(stored, "s3cre"));
	cr_assert_not(vr_password_verify(stored, ""));
	cr_assert_not(vr_password_verify(stored, NULL));
}

Test(password, same_password_different_hashes)
{
	char a[VR_PASSWORD_HASH_MAX], b[VR_PASSWORD_HASH_MAX];

	hash_ok(a, "same");
	hash_ok(b, "same");
	cr_assert_str_neq(a, b);
	/* the salts differ, not only the keys */
	cr_assert_neq(strncmp(a, b, strlen(PREFIX) + 24), 0);
	cr_assert(vr_password_verify(a, "same"));
	cr_assert(vr_password_verify(b, "same"));
}

Test(password, empty_and_oversize_refused)
{
	char stored[VR_PASSWORD_HASH_MAX];
	char *big = malloc(VR_PASSWORD_MAX + 2);

	cr_assert_not_null(big);
	cr_assert_eq(vr_password_hash(stored, ""), VR_EINVAL);
	cr_assert_eq(stored[0], '\0');
	cr_assert_eq(vr_password_hash(stored, NULL), VR_EINVAL);

	memset(big, 'x', VR_PASSWORD_MAX + 1);
	big[VR_PASSWORD_MAX + 1] = '\0';
	cr_assert_eq(vr_password_hash(stored, big), VR_EINVAL);

	/* exactly the limit is fine, and one byte more never verifies */
	big[VR_PASSWORD_MAX] = '\0';
	hash_ok(stored, big);
	cr_assert(vr_password_verify(stored, big));
	big[VR_PASSWORD_MAX] = 'x';
	cr_assert_not(vr_password_verify(stored, big));
	free(big);
}

Test(password, malformed_stored_forms)
{
	char stored[VR_PASSWORD_HASH_MAX];
	const char *pw = "tr0ub4dor";
	size_t salt_at = strlen(PREFIX);
	size_t key_at = salt_at + 24 + 1;
	size_t len;
	char *s;

	hash_ok(stored, pw);
	len = strlen(stored);
	cr_assert(vr_password_verify(stored, pw));

	expect_rejected(NULL, pw, "NULL");
	expect_rejected("", pw, "empty");
	expect_rejected("$scrypt$", pw, "prefix only");

	/* truncated at every length */
	for (size_t cut = 0; cut < len; cut++) {
		s = edited(stored, cut, len - cut, "");
		expect_rejected(s, pw, "truncated");
		free(s);
	}

	/* anything after the key, even the padding repeated or a newline */
	const char *tails[] = {"\n", " ", "=", "$", "$x", "A"};
	for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
		s = edited(stored, len, 0, tails[i]);
		expect_rejected(s, pw, "trailing data");
		free(s);
	}

	/* base64 outside the alphabet, padding moved, whitespace */
	s = edited(stored, salt_at + 3, 1, "!");
	expect_rejected(s, pw, "bad salt base64");
	free(s);
	s = edited(stored, key_at + 10, 1, "-");
	expect_rejected(s, pw, "URL-safe alphabet in key");
	free(s);
	s = edited(stored, key_at + 43, 1, "A");
	expect_rejected(s, pw, "key without padding");
	free(s);
	s = edited(stored, salt_at + 22, 2, "A=");
	expect_rejected(s, pw, "salt with one padding byte");
	free(s);
	s = edited(stored, key_at, 0, " ");
	expect_rejected(s, pw, "space in key");
	free(s);

	/* the same salt with unused low bits set still decodes to the same
	 * bytes in a lenient decoder: only the canonical form is accepted */
	char last = stored[salt_at + 21];
	char bits[2] = {last == 'A' ? 'B' : (char)(last + 1), '\0'};
	s = edited(stored, salt_at + 21, 1, bits);
	expect_rejected(s, pw, "non-canonical salt");
	free(s);

	/* wrong parameters with the right salt and key */
	const char *params[] = {
		"$scrypt$ln=015,r=8,p=1$", "$scrypt$ln=9,r=8,p=1$",   "$scrypt$ln=21,r=8,p=1$",
		"$scrypt$ln=,r=8,p=1$",	   "$scrypt$ln=+15,r=8,p=1$", "$scrypt$ln=15,r=16,p=1$",
		"$scrypt$ln=15,r=8,p=2$",  "$scrypt$ln=15,p=1,r=8$",  "$scrypt$ln=15,r=8$",
		"$scrypt$ln=15$",	   "$Scrypt$ln=15,r=8,p=1$",  "$bcrypt$ln=15,r=8,p=1$",
		"scrypt$ln=15,r=8,p=1$",   "$scrypt$ln=15,r=8,p=1$$", "$scrypt$ln=14,r=8,p=1$",
	};
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
		s = edited(stored, 0, salt_at, params[i]);
		expect_rejected(s, pw, "wrong parameters");
		free(s);
	}

	/* salt and key swapped: lengths no longer fit */
	char swapped[VR_PASSWORD_HASH_MAX];
	snprintf(swapped, sizeof swapped, "%s%s$%.24s", PREFIX, stored + key_at, stored + salt_at);
	expect_rejected(swapped, pw, "salt and key swapped");
}

/* A stored form computed independently with EVP_PBE_scrypt. */
static void reference_form(char out[VR_PASSWORD_HASH_MAX], const char *password, unsigned ln)
{
	unsigned char salt[16], key[32];
	char salt_b64[25], key_b64[45];

	for (size_t i = 0; i < sizeof salt; i++)
		salt[i] = (unsigned char)(0xa5 ^ (i * 17));
	cr_assert_eq(EVP_PBE_scrypt(password, strlen(password), salt, sizeof salt,
				    (uint64_t)1 << ln, 8, 1, (uint64_t)64 << 20, key, sizeof key),
		     1);
	EVP_EncodeBlock((unsigned char *)salt_b64, salt, sizeof salt);
	EVP_EncodeBlock((unsigned char *)key_b64, key, sizeof key);
	snprintf(out, VR_PASSWORD_HASH_MAX, "$scrypt$ln=%u,r=8,p=1$%s$%s", ln, salt_b64, key_b64);
}

Test(password, matches_reference_scrypt)
{
	char stored[VR_PASSWORD_HASH_MAX];

	/* the cost this module writes */
	reference_form(stored, "pa55 word", 15);
	cr_assert(vr_password_verify(stored, "pa55 word"), "%s", stored);
	cr_assert_not(vr_password_verify(stored, "pa55 wore"));

	/* a lower cost inside the accepted range is read as written */
	reference_form(stored, "pa55 word", 10);
	cr_assert(vr_password_verify(stored, "pa55 word"), "%s", stored);
}

static void *dummy_in_thread(void *arg)
{
	(void)arg;
	return (void *)vr_password_dummy_hash();
}

Test(password, dummy_hash)
{
	pthread_t threads[4];
	const char *seen[4];

	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&threads[i], NULL, dummy_in_thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *result;
		cr_assert_eq(pthread_join(threads[i], &result), 0);
		seen[i] = result;
	}
	const char *dummy = vr_password_dummy_hash();
	for (int i = 0; i < 4; i++)
		cr_assert_eq(seen[i], dummy, "every caller gets the one hash computed once");

	cr_assert_eq(strlen(dummy), strlen(PREFIX) + 24 + 1 + 44, "dummy: %s", dummy);
	cr_assert_eq(strncmp(dummy, PREFIX, strlen(PREFIX)), 0, "dummy: %s", dummy);
	cr_assert_not(vr_password_verify(dummy, "password"));
	cr_assert_not(vr_password_verify(dummy, "dummy"));
}
