/* XML in and out. Documents are written through libxml2's xmlTextWriter
 * (so every tenant-chosen string is escaped by the library), read through
 * one hardened parse entry point, and validated against schema/. */
#ifndef VRCLOUD_XML_H
#define VRCLOUD_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "vrcloud/buf.h"

#define VR_NS_VCLOUD "http://www.vmware.com/vcloud/v1.5"
#define VR_NS_VR "http://www.vmware.com/vr/v6.0"
#define VR_NS_VERSIONS "http://www.vmware.com/vcloud/versions"
#define VR_NS_EXTENSION "http://www.vmware.com/vcloud/extension/v1.5"

/* Call once at start-up, before any thread uses libxml2. */
void vr_xml_global_init(void);
void vr_xml_global_cleanup(void);

/* --- writing --------------------------------------------------------- */

struct vr_xml;

/* A new document writer. Errors are sticky: after the first failure every
 * call is a no-op and vr_xml_finish reports it. */
struct vr_xml *vr_xml_new(void);
/* Start an element with a literal (possibly prefixed) name. */
void vr_xml_start(struct vr_xml *w, const char *name);
void vr_xml_attr(struct vr_xml *w, const char *name, const char *value);
void vr_xml_attrf(struct vr_xml *w, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void vr_xml_text(struct vr_xml *w, const char *text);
/* <name>text</name> */
void vr_xml_elem(struct vr_xml *w, const char *name, const char *text);
void vr_xml_elemf(struct vr_xml *w, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void vr_xml_elem_bool(struct vr_xml *w, const char *name, bool value);
void vr_xml_end(struct vr_xml *w);
/* Close all open elements and move the document into out (which must be
 * initialised). Frees w. Returns 0 or VR_ENOMEM. */
int vr_xml_finish(struct vr_xml *w, struct vr_buf *out);
void vr_xml_free(struct vr_xml *w);

/* --- reading --------------------------------------------------------- */

#define VR_XML_MAX_DEPTH 32

/* Parse a request body: no network, no DTD loading, no entity substitution;
 * any DOCTYPE, entity declaration or nesting deeper than VR_XML_MAX_DEPTH
 * is refused. Returns 0 and a document the caller frees with xmlFreeDoc,
 * or VR_EINVAL with a short reason in *reason_out (static text). */
int vr_xml_parse(xmlDocPtr *doc_out, const char *data, size_t len, const char **reason_out);

/* --- validating ------------------------------------------------------ */

struct vr_xml_schema;

/* Load the schema set rooted at path (schema/vrcloud.xsd). The result is
 * read-only and may be shared by threads. Returns 0, VR_EIO or VR_EINVAL. */
int vr_xml_schema_load(struct vr_xml_schema **out, const char *path);
/* Validate doc; on failure *message_out (caller frees) holds the first error. */
int vr_xml_schema_validate(const struct vr_xml_schema *schema, xmlDocPtr doc, char **message_out);
void vr_xml_schema_free(struct vr_xml_schema *schema);

#endif
