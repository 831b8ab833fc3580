/* Request documents: the one path by which a request body becomes an XML
 * tree. It checks the media type (case-insensitively, as real clients
 * vary it), parses through the hardened vr_xml_parse, validates against
 * schema/ and checks the root element, and says which Error to answer
 * when any of that fails. Nothing is touched before it succeeds. */
#ifndef VRCLOUD_INPUT_H
#define VRCLOUD_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "vrcloud/xml.h"

/* What a route accepts as its body. */
struct vr_input_spec {
	const char *root;                /* local name of the root element */
	const char *ns;                  /* its namespace (VR_NS_VR, VR_NS_VCLOUD) */
	const char *const *media_types;  /* NULL-terminated; compared without parameters */
	bool content_type_optional;      /* a missing Content-Type is accepted */
	bool body_optional;              /* an empty body is accepted (*doc_out = NULL) */
};

/* Why a body was refused. */
struct vr_input_error {
	unsigned status;     /* 400 or 415 */
	const char *minor;   /* minorErrorCode */
	char message[512];   /* one line for the Error's message */
};

/* Check a body against spec. Returns 0 with *doc_out (the caller frees it
 * with xmlFreeDoc; NULL for an accepted empty body) or VR_EINVAL with
 * *error filled. schema may be NULL only in tests of the media-type rules. */
int vr_input_check(xmlDocPtr *doc_out, struct vr_input_error *error,
		   const struct vr_input_spec *spec, const struct vr_xml_schema *schema,
		   const char *content_type, const char *body, size_t len);

/* Does content_type name media_type? Case-insensitive, parameters and
 * white space ignored. */
bool vr_input_media_type_is(const char *content_type, const char *media_type);

/* The text of root's first child element named name (any namespace), or
 * NULL. The caller frees it with xmlFree. */
xmlChar *vr_input_child_text(xmlNodePtr root, const char *name);
/* The text of root's first child element named name (any namespace)
 * without surrounding white space, or NULL; the caller frees it with free. */
char *vr_input_child_trimmed(xmlNodePtr root, const char *name);
/* An xs:boolean child: 0 and *value set; VR_ENOTFOUND when absent;
 * VR_EINVAL when not true/false/1/0 (surrounding white space allowed). */
int vr_input_child_bool(xmlNodePtr root, const char *name, bool *value);

#endif
