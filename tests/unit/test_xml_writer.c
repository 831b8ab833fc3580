/* The document writer: escaping by the library, sticky errors, output that
 * always parses back to what was written. */
#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

static void setup(void)
{
	vr_xml_global_init();
}

TestSuite(xml_writer, .init = setup);

/* Finish w into a new string (caller frees); asserts success. */
static char *finish(struct vr_xml *w)
{
	struct vr_buf out;
	vr_buf_init(&out, 0);
	int rc = vr_xml_finish(w, &out);
	cr_assert_eq(rc, 0, "finish failed: %d", rc);
	cr_assert_not_null(out.data);
	return vr_buf_take(&out, NULL);
}

/* Parse text through the hardened entry point; asserts it is well-formed. */
static xmlDocPtr reparse(const char *text)
{
	xmlDocPtr doc = NULL;
	const char *reason = NULL;
	int rc = vr_xml_parse(&doc, text, strlen(text), &reason);
	cr_assert_eq(rc, 0, "the writer's output does not parse (%s): %s", reason ? reason : "",
		     text);
	return doc;
}

/* The document "<root name=VALUE>VALUE</root>" as written by the writer. */
static char *write_value(const char *value)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "root");
	vr_xml_attr(w, "name", value);
	vr_xml_text(w, value);
	vr_xml_end(w);
	return finish(w);
}

Test(xml_writer, simple_document)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "References");
	vr_xml_attr(w, "xmlns", VR_NS_VCLOUD);
	vr_xml_attrf(w, "total", "%d", 42);
	vr_xml_attr(w, "absent", NULL);
	vr_xml_start(w, "Reference");
	vr_xml_attr(w, "href", "https://h/api/vr/replications/1");
	vr_xml_end(w);
	vr_xml_elem(w, "Name", "n");
	vr_xml_elemf(w, "Count", "%u-%s", 7u, "x");
	vr_xml_elem_bool(w, "On", true);
	vr_xml_elem_bool(w, "Off", false);
	vr_xml_elem(w, "Empty", NULL);
	vr_xml_end(w);
	char *text = finish(w);
	cr_assert_str_eq(text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<References xmlns=\"http://www.vmware.com/vcloud/v1.5\" "
			       "total=\"42\"><Reference href=\"https://h/api/vr/replications/1\"/>"
			       "<Name>n</Name><Count>7-x</Count><On>true</On><Off>false</Off>"
			       "<Empty></Empty></References>\n");
	xmlFreeDoc(reparse(text));
	free(text);
}

Test(xml_writer, finish_closes_open_elements)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "a");
	vr_xml_start(w, "b");
	vr_xml_start(w, "c");
	vr_xml_text(w, "t");
	char *text = finish(w);
	cr_assert(strstr(text, "<a><b><c>t</c></b></a>") != NULL, "%s", text);
	free(text);
}

Test(xml_writer, finish_appends_to_out)
{
	struct vr_buf out;
	vr_buf_init(&out, 0);
	vr_buf_appends(&out, "prefix:");
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "x");
	cr_assert_eq(vr_xml_finish(w, &out), 0);
	cr_assert_eq(strncmp(out.data, "prefix:<?xml", 12), 0, "%s", out.data);
	vr_buf_free(&out);
}

Test(xml_writer, markup_characters_are_escaped)
{
	const char *value = "<script>alert('x' & \"y\")</script> ]]> &amp;";
	char *text = write_value(value);
	/* nothing of the value appears unescaped */
	cr_assert_null(strstr(text, "<script>"), "%s", text);
	cr_assert_null(strstr(text, "]]>"), "%s", text);
	cr_assert(strstr(text, "&lt;script&gt;") != NULL, "%s", text);
	cr_assert(strstr(text, "&amp;amp;") != NULL, "%s", text);
	cr_assert(strstr(text, "&quot;y&quot;") != NULL, "the attribute quote: %s", text);

	xmlDocPtr doc = reparse(text);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->name, "root");
	cr_assert_null(root->children ? root->children->next : NULL, "one text child only");
	xmlChar *attr = xmlGetProp(root, BAD_CAST "name");
	xmlChar *content = xmlNodeGetContent(root);
	cr_assert_str_eq((const char *)attr, value);
	cr_assert_str_eq((const char *)content, value);
	xmlFree(attr);
	xmlFree(content);
	xmlFreeDoc(doc);
	free(text);
}

Test(xml_writer, attribute_cannot_break_out)
{
	/* a value trying to close the attribute and add another one */
	const char *value = "x\" injected=\"1";
	char *text = write_value(value);
	xmlDocPtr doc = reparse(text);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_null(xmlHasProp(root, BAD_CAST "injected"), "%s", text);
	xmlChar *attr = xmlGetProp(root, BAD_CAST "name");
	cr_assert_str_eq((const char *)attr, value);
	xmlFree(attr);
	xmlFreeDoc(doc);
	free(text);
}

/* Tab, newline and carriage return survive in attributes (where a parser
 * would otherwise normalise them to spaces) and in text. */
Test(xml_writer, whitespace_controls_round_trip)
{
	const char *value = "a\tb\nc\rd\r\ne";
	char *text = write_value(value);
	xmlDocPtr doc = reparse(text);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *attr = xmlGetProp(root, BAD_CAST "name");
	xmlChar *content = xmlNodeGetContent(root);
	cr_assert_str_eq((const char *)attr, value, "attribute: %s", text);
	cr_assert_str_eq((const char *)content, value, "text: %s", text);
	xmlFree(attr);
	xmlFree(content);
	xmlFreeDoc(doc);
	free(text);
}

Test(xml_writer, utf8_round_trips)
{
	const char *value = "Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x92\xbe";
	char *text = write_value(value);
	xmlDocPtr doc = reparse(text);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlChar *attr = xmlGetProp(root, BAD_CAST "name");
	cr_assert_str_eq((const char *)attr, value);
	xmlFree(attr);
	xmlFreeDoc(doc);
	free(text);
}

/* Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF,
 * CR): a tenant-chosen name holding one must still give a well-formed
 * document, so the writer has to drop, replace or refuse them, never copy
 * them raw. */
Test(xml_writer, forbidden_controls_never_reach_the_output)
{
	for (int c = 1; c < 0x20; c++) {
		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		char value[16];
		snprintf(value, sizeof value, "a%cb", c);
		struct vr_xml *w = vr_xml_new();
		vr_xml_start(w, "root");
		vr_xml_attr(w, "name", value);
		vr_xml_text(w, value);
		vr_xml_end(w);
		struct vr_buf out;
		vr_buf_init(&out, 0);
		int rc = vr_xml_finish(w, &out);
		bool raw = rc == 0 && memchr(out.data, c, out.len) != NULL;
		cr_expect_not(raw, "control 0x%02x copied raw into the document", c);
		if (rc == 0 && !raw)
			xmlFreeDoc(reparse(out.data));
		vr_buf_free(&out);
	}
}

Test(xml_writer, errors_are_sticky)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "a");
	vr_xml_end(w);
	vr_xml_end(w); /* nothing left to close: the writer fails */
	vr_xml_start(w, "b");
	vr_xml_attr(w, "k", "v");
	vr_xml_attrf(w, "n", "%d", 1);
	vr_xml_text(w, "t");
	vr_xml_elem(w, "c", "d");
	vr_xml_elemf(w, "e", "%s", "f");
	vr_xml_elem_bool(w, "g", true);
	vr_xml_end(w);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	cr_assert_neq(vr_xml_finish(w, &out), 0, "a failed writer finished");
	cr_assert_eq(out.len, 0, "a failed writer wrote %zu bytes", out.len);
	cr_assert_null(out.data);
	vr_buf_free(&out);
}

Test(xml_writer, finish_into_a_full_buffer_fails)
{
	struct vr_buf out;
	vr_buf_init(&out, 16);
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "a-rather-long-element-name");
	cr_assert_eq(vr_xml_finish(w, &out), VR_ETOOBIG);
	cr_assert_eq(out.len, 0);
	vr_buf_free(&out);
}

Test(xml_writer, free_without_finish)
{
	vr_xml_free(NULL);
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "a");
	vr_xml_text(w, "abandoned");
	vr_xml_free(w);
}
