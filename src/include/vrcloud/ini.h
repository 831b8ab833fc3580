/* Table-driven INI settings (files read with libinih): each daemon lists
 * its keys once, with where each value goes and what it may be, and this
 * module applies files and command-line flags through that table. */
#ifndef VRCLOUD_INI_H
#define VRCLOUD_INI_H

#include <stddef.h>

enum vr_ini_kind {
	VR_INI_STRING, /* char *, owned; an empty value sets NULL */
	VR_INI_UINT,   /* unsigned within [min, max] */
	VR_INI_LEVEL,  /* enum vr_log_level */
};

struct vr_ini_key {
	const char *section;
	const char *key;
	enum vr_ini_kind kind;
	size_t offset; /* of the field in the settings struct */
	unsigned min, max;
};

#define VR_INI_STRING_KEY(type, section, key, field)                                               \
	{ section, key, VR_INI_STRING, offsetof(type, field), 0, 0 }
#define VR_INI_UINT_KEY(type, section, key, field, min, max)                                       \
	{ section, key, VR_INI_UINT, offsetof(type, field), min, max }
#define VR_INI_LEVEL_KEY(type, section, key, field)                                                \
	{ section, key, VR_INI_LEVEL, offsetof(type, field), 0, 0 }

/* Set one "[section] key" of the struct at base as a file would. Returns 0
 * or VR_ECONFIG with *error_out (the caller frees it) saying why. */
int vr_ini_set(const struct vr_ini_key *keys, size_t nkeys, void *base, const char *section,
	       const char *key, const char *value, char **error_out);
/* Read an INI file over the current values. Returns 0, VR_EIO (unreadable)
 * or VR_ECONFIG, with *error_out naming the file and line. */
int vr_ini_load(const struct vr_ini_key *keys, size_t nkeys, void *base, const char *path,
		char **error_out);

#endif
