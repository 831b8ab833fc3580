/* Password hashing for user accounts: scrypt (OpenSSL EVP_KDF "SCRYPT")
 * with a random 16-byte salt. Stored form (PHC-like, one line):
 *   $scrypt$ln=15,r=8,p=1$<base64 salt>$<base64 32-byte key>
 * Only this form is ever stored; plaintext passwords never leave memory. */
#ifndef VRCLOUD_PASSWORD_H
#define VRCLOUD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Upper bound on a password's length (bytes) accepted anywhere. */
#define VR_PASSWORD_MAX 1024
/* Length of the stored form, including the NUL. */
#define VR_PASSWORD_HASH_MAX 160

/* Hash password into out (NUL-terminated). Returns 0, VR_EINVAL (empty or
 * over VR_PASSWORD_MAX) or VR_EIO (KDF failure). */
int vr_password_hash(char out[VR_PASSWORD_HASH_MAX], const char *password);
/* Verify password against a stored form in constant time with respect to
 * the key. Returns true only on a match; false for any malformed stored form. */
bool vr_password_verify(const char *stored, const char *password);
/* A hash of a fixed dummy password, to spend the same time when the user
 * does not exist (no user-enumeration by timing). */
const char *vr_password_dummy_hash(void);

#endif
