#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/chvalid.h>
#include <libxml/parser.h>
#include <libxml/xmlwriter.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

struct vr_xml {
	xmlBufferPtr buffer;
	xmlTextWriterPtr writer;
	bool failed;
};

void vr_xml_global_init(void)
{
	xmlInitParser();
}

void vr_xml_global_cleanup(void)
{
	xmlCleanupParser();
}

struct vr_xml *vr_xml_new(void)
{
	struct vr_xml *w = vr_calloc(1, sizeof *w);
	w->buffer = xmlBufferCreate();
	if (w->buffer)
		w->writer = xmlNewTextWriterMemory(w->buffer, 0);
	if (!w->writer || xmlTextWriterStartDocument(w->writer, "1.0", "UTF-8", NULL) < 0)
		w->failed = true;
	return w;
}

#define CHECK(w, call)                                                                             \
	do {                                                                                       \
		if (!(w)->failed && (call) < 0)                                                    \
			(w)->failed = true;                                                        \
	} while (0)

/* XML 1.0 cannot carry most C0 controls, U+FFFE/U+FFFF or broken UTF-8,
 * and libxml2's writer copies them as they are: a tenant-chosen string
 * holding one would break the whole document. Returns text itself when it
 * is clean, else a copy in *copy (caller frees) with each offending
 * character or byte replaced by U+FFFD. */
static const char *xml_clean(const char *text, char **copy)
{
	*copy = NULL;
	size_t len = strlen(text);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	bool dirty = false;
	for (size_t i = 0; i < len;) {
		int n = (int)(len - i > 4 ? 4 : len - i);
		int c = xmlGetUTF8Char((const unsigned char *)text + i, &n);
		if (c < 0 || n <= 0 || !xmlIsCharQ(c)) {
			if (!dirty) {
				vr_buf_append(&out, text, i);
				dirty = true;
			}
			vr_buf_appends(&out, "\xEF\xBF\xBD");
			i += 1;
			continue;
		}
		if (dirty)
			vr_buf_append(&out, text + i, (size_t)n);
		i += (size_t)n;
	}
	if (!dirty)
		return text;
	*copy = vr_buf_take(&out, NULL);
	return *copy ? *copy : "";
}

void vr_xml_start(struct vr_xml *w, const char *name)
{
	if (!w->failed)
		CHECK(w, xmlTextWriterStartElement(w->writer, BAD_CAST name));
}

void vr_xml_attr(struct vr_xml *w, const char *name, const char *value)
{
	if (w->failed || !value)
		return;
	char *copy;
	const char *clean = xml_clean(value, &copy);
	CHECK(w, xmlTextWriterWriteAttribute(w->writer, BAD_CAST name, BAD_CAST clean));
	free(copy);
}

/* printf into a new string; NULL (and w failed) when that fails. */
static char *vformat(struct vr_xml *w, const char *fmt, va_list ap)
{
	char *value = NULL;
	if (vasprintf(&value, fmt, ap) < 0) {
		w->failed = true;
		return NULL;
	}
	return value;
}

void vr_xml_attrf(struct vr_xml *w, const char *name, const char *fmt, ...)
{
	if (w->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *value = vformat(w, fmt, ap);
	va_end(ap);
	vr_xml_attr(w, name, value);
	free(value);
}

void vr_xml_text(struct vr_xml *w, const char *text)
{
	if (w->failed || !text)
		return;
	char *copy;
	const char *clean = xml_clean(text, &copy);
	CHECK(w, xmlTextWriterWriteString(w->writer, BAD_CAST clean));
	free(copy);
}

void vr_xml_elem(struct vr_xml *w, const char *name, const char *text)
{
	vr_xml_start(w, name);
	vr_xml_text(w, text ? text : "");
	vr_xml_end(w);
}

void vr_xml_elemf(struct vr_xml *w, const char *name, const char *fmt, ...)
{
	if (w->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *value = vformat(w, fmt, ap);
	va_end(ap);
	if (value)
		vr_xml_elem(w, name, value);
	free(value);
}

void vr_xml_elem_bool(struct vr_xml *w, const char *name, bool value)
{
	vr_xml_elem(w, name, value ? "true" : "false");
}

void vr_xml_end(struct vr_xml *w)
{
	if (!w->failed)
		CHECK(w, xmlTextWriterEndElement(w->writer));
}

void vr_xml_free(struct vr_xml *w)
{
	if (!w)
		return;
	if (w->writer)
		xmlFreeTextWriter(w->writer);
	if (w->buffer)
		xmlBufferFree(w->buffer);
	free(w);
}

int vr_xml_finish(struct vr_xml *w, struct vr_buf *out)
{
	int rc = 0;
	if (!w->failed && xmlTextWriterEndDocument(w->writer) < 0)
		w->failed = true;
	if (!w->failed && xmlTextWriterFlush(w->writer) < 0)
		w->failed = true;
	if (w->failed) {
		rc = VR_ENOMEM;
	} else {
		const xmlChar *content = xmlBufferContent(w->buffer);
		rc = vr_buf_append(out, content, (size_t)xmlBufferLength(w->buffer));
	}
	vr_xml_free(w);
	return rc;
}
