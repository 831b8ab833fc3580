#include <ctype.h>
#include <string.h>

#include <openssl/rand.h>

#include "vrcloud/err.h"
#include "vrcloud/uuid.h"

int vr_uuid_canon(char out[VR_UUID_LEN + 1], const char *text)
{
	if (!text || strlen(text) != VR_UUID_LEN)
		return VR_EINVAL;
	for (size_t i = 0; i < VR_UUID_LEN; i++) {
		unsigned char c = (unsigned char)text[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return VR_EINVAL;
			out[i] = '-';
		} else {
			if (!isxdigit(c))
				return VR_EINVAL;
			out[i] = (char)tolower(c);
		}
	}
	out[VR_UUID_LEN] = '\0';
	return 0;
}

bool vr_uuid_valid(const char *text)
{
	char tmp[VR_UUID_LEN + 1];
	return vr_uuid_canon(tmp, text) == 0;
}

int vr_uuid_generate(char out[VR_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		return VR_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}
