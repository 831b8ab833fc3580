/* UUIDs as vrcloud writes them: 36 characters, lowercase, hyphenated. */
#ifndef VRCLOUD_UUID_H
#define VRCLOUD_UUID_H

#include <stdbool.h>

#define VR_UUID_LEN 36

/* Parse text as a UUID (either case) and write its canonical lowercase form
 * (37 bytes with the NUL) into out. Returns 0 or VR_EINVAL. */
int vr_uuid_canon(char out[VR_UUID_LEN + 1], const char *text);
bool vr_uuid_valid(const char *text);
/* A new random (version 4) UUID from the OpenSSL CSPRNG. Returns 0 or VR_EIO. */
int vr_uuid_generate(char out[VR_UUID_LEN + 1]);

#endif
