#include <stdio.h>
#include <string.h>

#include "vrcloud/http.h"

/* Compare one path against one pattern, segment by segment. */
static bool match_pattern(const char *pattern, const char *path, bool allow_slash,
			  char ids[][VR_UUID_LEN + 1], unsigned *nids)
{
	unsigned n = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		const char *pend = strchrnul(p, '/');
		const char *send = strchrnul(s, '/');
		size_t plen = (size_t)(pend - p), slen = (size_t)(send - s);
		if (plen == 4 && memcmp(p, "{id}", 4) == 0) {
			if (slen != VR_UUID_LEN || n >= 4)
				return false;
			char text[VR_UUID_LEN + 1];
			memcpy(text, s, VR_UUID_LEN);
			text[VR_UUID_LEN] = '\0';
			if (vr_uuid_canon(ids[n], text))
				return false;
			n++;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return false;
		}
		p = pend;
		s = send;
	}
	if (*p)
		return false;
	if (*s && !(allow_slash && strcmp(s, "/") == 0))
		return false;
	*nids = n;
	return true;
}

static void add_allow(char *allow, size_t size, const char *method)
{
	if (strstr(allow, method))
		return;
	size_t len = strlen(allow);
	snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

enum vr_match vr_router_match(const struct vr_route *routes, const struct vr_alias *aliases,
			      const char *method, const char *path,
			      const struct vr_route **route_out, char ids[][VR_UUID_LEN + 1],
			      unsigned *nids, char *allow_out, size_t allow_size)
{
	char rewritten[2048];
	for (const struct vr_alias *a = aliases; a && a->from; a++) {
		size_t flen = strlen(a->from);
		if (strncmp(path, a->from, flen) == 0) {
			int n = snprintf(rewritten, sizeof rewritten, "%s%s", a->to, path + flen);
			if (n > 0 && (size_t)n < sizeof rewritten)
				path = rewritten;
			break;
		}
	}
	bool is_head = strcmp(method, "HEAD") == 0;
	bool path_known = false;
	if (allow_size)
		allow_out[0] = '\0';
	for (const struct vr_route *r = routes; r->method; r++) {
		unsigned n = 0;
		if (!match_pattern(r->pattern, path, r->flags & VR_ROUTE_SLASH, ids, &n))
			continue;
		bool same = strcmp(r->method, method) == 0 ||
			    (is_head && strcmp(r->method, "GET") == 0);
		if (same) {
			*route_out = r;
			*nids = n;
			return VR_MATCH_OK;
		}
		path_known = true;
		add_allow(allow_out, allow_size, r->method);
		if (strcmp(r->method, "GET") == 0)
			add_allow(allow_out, allow_size, "HEAD");
	}
	return path_known ? VR_MATCH_BAD_METHOD : VR_MATCH_NOT_FOUND;
}
