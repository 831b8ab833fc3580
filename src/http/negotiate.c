#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vrcloud/err.h"
#include "vrcloud/http.h"

const char *const vr_api_versions[] = {"1.5", "5.1", "5.5", "5.6", "5.7", "9.0", "20.0", NULL};

const char *vr_api_versions_text(void)
{
	return "[1.5, 5.1, 5.5, 5.6, 5.7, 9.0, 20.0]";
}

static void trim(const char **start, const char **end)
{
	while (*start < *end && isspace((unsigned char)**start))
		(*start)++;
	while (*end > *start && isspace((unsigned char)(*end)[-1]))
		(*end)--;
}

static bool eq(const char *s, const char *e, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(e - s) == n && strncasecmp(s, lit, n) == 0;
}

/* Does this media range (type/subtype, no parameters) cover our XML documents? */
static bool xml_range(const char *s, const char *e)
{
	if (eq(s, e, "*/*") || eq(s, e, "application/*") || eq(s, e, "application/xml") ||
	    eq(s, e, "text/xml") || eq(s, e, "application/*+xml"))
		return true;
	size_t n = (size_t)(e - s);
	return n > 16 && strncasecmp(s, "application/", 12) == 0 &&
	       strncasecmp(e - 4, "+xml", 4) == 0 && memchr(s + 12, '/', n - 12) == NULL;
}

int vr_negotiate(const char *accept, const char **version_out, char *unknown_out,
		 size_t unknown_size)
{
	if (unknown_size)
		unknown_out[0] = '\0';
	*version_out = NULL;
	if (!accept || !*accept) {
		*version_out = VR_API_VERSION_LATEST;
		return 0;
	}
	const char *range = accept;
	while (*range) {
		const char *range_end = strchrnul(range, ',');
		const char *type_end = memchr(range, ';', (size_t)(range_end - range));
		if (!type_end)
			type_end = range_end;
		const char *ts = range, *te = type_end;
		trim(&ts, &te);
		bool acceptable = xml_range(ts, te);
		const char *version = NULL;
		char asked[32] = "";
		bool refused_q = false;
		bool unknown_version = false;
		/* Parameters: version, q; others (vr-version, charset) are ignored. */
		const char *param = type_end;
		while (acceptable && param < range_end) {
			param++;
			const char *pend = memchr(param, ';', (size_t)(range_end - param));
			if (!pend)
				pend = range_end;
			const char *eqs = memchr(param, '=', (size_t)(pend - param));
			if (eqs) {
				const char *ks = param, *ke = eqs, *vs = eqs + 1, *ve = pend;
				trim(&ks, &ke);
				trim(&vs, &ve);
				if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
					vs++;
					ve--;
				}
				if (eq(ks, ke, "version")) {
					snprintf(asked, sizeof asked, "%.*s", (int)(ve - vs), vs);
					if (eq(vs, ve, "*")) {
						version = VR_API_VERSION_LATEST;
					} else {
						for (int i = 0; vr_api_versions[i]; i++)
							if (eq(vs, ve, vr_api_versions[i]))
								version = vr_api_versions[i];
						if (!version && asked[0] == '\0')
							snprintf(asked, sizeof asked, "(empty)");
						if (!version) {
							acceptable = false;
							unknown_version = true;
						}
					}
				} else if (eq(ks, ke, "q")) {
					if (ve > vs && strtod(vs, NULL) <= 0.0)
						refused_q = true;
				}
			}
			param = pend;
		}
		if (acceptable && !refused_q) {
			*version_out = version ? version : VR_API_VERSION_LATEST;
			return 0;
		}
		if (unknown_version && unknown_size && unknown_out[0] == '\0')
			snprintf(unknown_out, unknown_size, "%s", asked);
		range = *range_end ? range_end + 1 : range_end;
	}
	return VR_EINVAL;
}
