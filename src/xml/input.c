#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/xmlmemory.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"

bool vr_input_media_type_is(const char *content_type, const char *media_type)
{
	if (!content_type)
		return false;
	while (isspace((unsigned char)*content_type))
		content_type++;
	size_t len = strcspn(content_type, ";");
	while (len && isspace((unsigned char)content_type[len - 1]))
		len--;
	return len == strlen(media_type) && strncasecmp(content_type, media_type, len) == 0;
}

static int refuse(struct vr_input_error *error, unsigned status, const char *minor,
		  const char *message, const char *detail)
{
	error->status = status;
	error->minor = minor;
	snprintf(error->message, sizeof error->message, "%s%s%s", message, detail ? ": " : "",
		 detail ? detail : "");
	return VR_EINVAL;
}

int vr_input_check(xmlDocPtr *doc_out, struct vr_input_error *error,
		   const struct vr_input_spec *spec, const struct vr_xml_schema *schema,
		   const char *content_type, const char *body, size_t len)
{
	*doc_out = NULL;
	memset(error, 0, sizeof *error);
	bool blank = true;
	for (size_t i = 0; i < len && blank; i++)
		blank = isspace((unsigned char)body[i]);
	if (blank && spec->body_optional)
		return 0;

	if (!content_type || !*content_type) {
		if (!spec->content_type_optional)
			return refuse(error, 415, "UNSUPPORTED_MEDIA_TYPE",
				      "The request has no Content-Type; send one of this operation's "
				      "media types",
				      spec->media_types[0]);
	} else {
		bool known = false;
		for (const char *const *m = spec->media_types; *m && !known; m++)
			known = vr_input_media_type_is(content_type, *m);
		if (!known)
			return refuse(error, 415, "UNSUPPORTED_MEDIA_TYPE",
				      "This operation does not accept the media type of the request; "
				      "send",
				      spec->media_types[0]);
	}
	if (blank)
		return refuse(error, 400, "BAD_REQUEST", "The request needs a body", spec->root);

	const char *reason = NULL;
	xmlDocPtr doc = NULL;
	if (vr_xml_parse(&doc, body, len, &reason))
		return refuse(error, 400, "BAD_REQUEST", "The request body was refused", reason);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const char *ns = root->ns && root->ns->href ? (const char *)root->ns->href : "";
	if (strcmp((const char *)root->name, spec->root) != 0 || strcmp(ns, spec->ns) != 0) {
		char detail[300];
		snprintf(detail, sizeof detail, "expected %s in namespace %s, got %.80s in %.120s",
			 spec->root, spec->ns, (const char *)root->name, *ns ? ns : "no namespace");
		xmlFreeDoc(doc);
		return refuse(error, 400, "BAD_REQUEST", "The request document has the wrong root",
			      detail);
	}
	if (schema) {
		char *message = NULL;
		if (vr_xml_schema_validate(schema, doc, &message)) {
			refuse(error, 400, "BAD_REQUEST", "The request document is not valid",
			       message);
			free(message);
			xmlFreeDoc(doc);
			return VR_EINVAL;
		}
	}
	*doc_out = doc;
	return 0;
}

xmlChar *vr_input_child_text(xmlNodePtr root, const char *name)
{
	for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return xmlNodeGetContent(c);
	return NULL;
}

char *vr_input_child_trimmed(xmlNodePtr root, const char *name)
{
	xmlChar *text = vr_input_child_text(root, name);
	if (!text)
		return NULL;
	const char *s = (const char *)text;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	char *copy = vr_strndup(s, n);
	xmlFree(text);
	return copy;
}

int vr_input_child_bool(xmlNodePtr root, const char *name, bool *value)
{
	char *s = vr_input_child_trimmed(root, name);
	if (!s)
		return VR_ENOTFOUND;
	int rc = 0;
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*value = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*value = false;
	else
		rc = VR_EINVAL;
	free(s);
	return rc;
}
