#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/ini.h"
#include "vrcloud/log.h"

static int parse_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
		return VR_ECONFIG;
	*out = (unsigned)v;
	return 0;
}

int vr_ini_set(const struct vr_ini_key *keys, size_t nkeys, void *base, const char *section,
	       const char *key, const char *value, char **error_out)
{
	for (size_t i = 0; i < nkeys; i++) {
		const struct vr_ini_key *k = &keys[i];
		if (strcmp(k->section, section) != 0 || strcmp(k->key, key) != 0)
			continue;
		char *field = (char *)base + k->offset;
		switch (k->kind) {
		case VR_INI_STRING: {
			char **slot = (char **)(void *)field;
			free(*slot);
			*slot = value[0] ? vr_strdup(value) : NULL;
			return 0;
		}
		case VR_INI_UINT:
			if (parse_uint(value, k->min, k->max, (unsigned *)(void *)field)) {
				if (error_out)
					*error_out = vr_asprintf(
						"[%s] %s: '%s' is not a whole number from %u to %u",
						section, key, value, k->min, k->max);
				return VR_ECONFIG;
			}
			return 0;
		case VR_INI_LEVEL:
			if (vr_log_parse_level(value, (enum vr_log_level *)(void *)field)) {
				if (error_out)
					*error_out = vr_asprintf(
						"[%s] %s: '%s' is not one of debug, info, warn, error",
						section, key, value);
				return VR_ECONFIG;
			}
			return 0;
		}
	}
	if (error_out)
		*error_out = vr_asprintf("unknown setting [%s] %s", section, key);
	return VR_ECONFIG;
}

struct load_state {
	const struct vr_ini_key *keys;
	size_t nkeys;
	void *base;
	char *error;
};

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	if (st->error)
		return 0;
	return vr_ini_set(st->keys, st->nkeys, st->base, section, name, value, &st->error) == 0;
}

int vr_ini_load(const struct vr_ini_key *keys, size_t nkeys, void *base, const char *path,
		char **error_out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (error_out)
			*error_out = vr_asprintf("cannot read %s: %s", path, strerror(errno));
		return VR_EIO;
	}
	struct load_state st = {keys, nkeys, base, NULL};
	int line = ini_parse_file(f, on_ini_value, &st);
	fclose(f);
	if (line != 0) {
		if (error_out)
			*error_out = vr_asprintf("%s:%d: %s", path, line,
						 st.error ? st.error : "syntax error");
		free(st.error);
		return VR_ECONFIG;
	}
	return 0;
}
