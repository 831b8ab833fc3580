/* Schema validation: schema/vrcloud.xsd loads, accepts good documents
 * (including ones vrcloud renders itself) and reports why a bad one fails. */
#include <criterion/criterion.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

static struct vr_xml_schema *schema;

static const char *srcdir(void)
{
	const char *dir = getenv("VRCLOUD_SRCDIR");
	return dir && *dir ? dir : VR_SRCDIR;
}

static void load_schema(void)
{
	vr_xml_global_init();
	char path[4096];
	snprintf(path, sizeof path, "%s/schema/vrcloud.xsd", srcdir());
	int rc = vr_xml_schema_load(&schema, path);
	cr_assert_eq(rc, 0, "cannot load %s: %d", path, rc);
	cr_assert_not_null(schema);
}

static void free_schema(void)
{
	vr_xml_schema_free(schema);
	schema = NULL;
}

TestSuite(xml_schema, .init = load_schema, .fini = free_schema);

static xmlDocPtr parse_text(const char *text)
{
	xmlDocPtr doc = NULL;
	const char *reason = NULL;
	cr_assert_eq(vr_xml_parse(&doc, text, strlen(text), &reason), 0, "%s: %s", reason, text);
	return doc;
}

/* Validate text; returns the result and the message (caller frees). */
static int validate(const char *text, char **message)
{
	xmlDocPtr doc = parse_text(text);
	int rc = vr_xml_schema_validate(schema, doc, message);
	xmlFreeDoc(doc);
	return rc;
}

static char *read_example(const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/schema/examples/%s", srcdir(), name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	struct vr_buf b;
	vr_buf_init(&b, 0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		cr_assert_eq(vr_buf_append(&b, chunk, n), 0);
	fclose(f);
	return vr_buf_take(&b, NULL);
}

Test(xml_schema, good_documents)
{
	const char *docs[] = {
		"<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" majorErrorCode=\"404\" "
		"minorErrorCode=\"RESOURCE_NOT_FOUND\" message=\"No such replication.\"/>",
		"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		"<PowerOn>true</PowerOn><Synchronize> false </Synchronize></TestFailoverParams>",
		"<ns2:FailoverParams xmlns:ns2=\"http://www.vmware.com/vr/v6.0\"/>",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		char *message = (char *)"untouched";
		cr_expect_eq(validate(docs[i], &message), 0, "#%zu: %s", i,
			     message ? message : "(null)");
		cr_expect_null(message, "a valid document got a message");
		free(message);
	}
}

Test(xml_schema, good_examples)
{
	const char *names[] = {"valid/error.xml", "valid/references.xml",
			       "valid/references-past-end.xml", "valid/replication-group.xml",
			       "valid/session.xml"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *text = read_example(names[i]);
		char *message = NULL;
		cr_expect_eq(validate(text, &message), 0, "%s: %s", names[i],
			     message ? message : "");
		free(message);
		free(text);
	}
}

Test(xml_schema, bad_document_reports_why)
{
	char *message = NULL;
	int rc = validate("<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" "
			  "minorErrorCode=\"X\" message=\"m\"/>",
			  &message);
	cr_assert_eq(rc, VR_EINVAL);
	cr_assert_not_null(message);
	cr_assert(strstr(message, "majorErrorCode") != NULL, "message: %s", message);
	size_t n = strlen(message);
	cr_assert_gt(n, 0);
	cr_assert_neq(message[n - 1], '\n', "the message keeps its newline");
	cr_assert_neq(message[n - 1], ' ');
	free(message);
}

Test(xml_schema, bad_documents)
{
	const struct {
		const char *text;
		const char *needle; /* a word the message must name */
	} bad[] = {
		/* wrong type */
		{"<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\" majorErrorCode=\"four\" "
		 "minorErrorCode=\"X\" message=\"m\"/>",
		 "majorErrorCode"},
		/* unknown root element */
		{"<Nonsense xmlns=\"http://www.vmware.com/vcloud/v1.5\"/>", "Nonsense"},
		/* a root without any namespace */
		{"<Error majorErrorCode=\"400\" minorErrorCode=\"X\" message=\"m\"/>", "Error"},
		/* the right name in the wrong namespace */
		{"<TestFailoverParams xmlns=\"http://www.vmware.com/vcloud/v1.5\"/>",
		 "TestFailoverParams"},
		/* a bad boolean */
		{"<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		 "<Synchronize>maybe</Synchronize></TestFailoverParams>",
		 "maybe"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *message = NULL;
		cr_expect_eq(validate(bad[i].text, &message), VR_EINVAL, "#%zu accepted", i);
		cr_assert_not_null(message, "#%zu: no message", i);
		cr_expect(strstr(message, bad[i].needle) != NULL, "#%zu: message '%s' lacks '%s'",
			  i, message, bad[i].needle);
		free(message);
	}
}

Test(xml_schema, bad_examples)
{
	const char *names[] = {"invalid/error-missing-major-code.xml",
			       "invalid/references-reference-before-link.xml",
			       "invalid/test-failover-params-bad-boolean.xml",
			       "invalid/task-progress-out-of-range.xml"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *text = read_example(names[i]);
		char *message = NULL;
		cr_expect_eq(validate(text, &message), VR_EINVAL, "%s accepted", names[i]);
		cr_expect_not_null(message, "%s: no message", names[i]);
		free(message);
		free(text);
	}
}

Test(xml_schema, message_is_optional)
{
	xmlDocPtr doc = parse_text("<Nonsense/>");
	cr_assert_eq(vr_xml_schema_validate(schema, doc, NULL), VR_EINVAL);
	xmlFreeDoc(doc);
}

/* The Error document every failure is answered with validates, whatever
 * the message holds. */
Test(xml_schema, rendered_errors_validate)
{
	const char *messages[] = {"plain", "", "quotes \" and <tags> & 'apostrophes'",
				  "line\nbreak\ttab", "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
		struct vr_buf out;
		vr_buf_init(&out, 0);
		cr_assert_eq(vr_error_render(&out, 404, "RESOURCE_NOT_FOUND", NULL, messages[i]),
			     0);
		char *message = NULL;
		cr_expect_eq(validate(out.data, &message), 0, "#%zu: %s\n%s", i,
			     message ? message : "", out.data);
		free(message);
		vr_buf_free(&out);

		vr_buf_init(&out, 0);
		cr_assert_eq(vr_error_render(&out, 500, "INTERNAL_SERVER_ERROR", "VR-17",
					     messages[i]),
			     0);
		cr_expect_eq(validate(out.data, &message), 0, "#%zu with vendor code: %s", i,
			     message ? message : "");
		free(message);
		vr_buf_free(&out);
	}
}

Test(xml_schema, load_failures)
{
	struct vr_xml_schema *s = (struct vr_xml_schema *)1;
	cr_assert_neq(vr_xml_schema_load(&s, "/nonexistent/vrcloud.xsd"), 0);
	cr_assert_null(s);

	/* a file that is XML but not a schema */
	char path[4096];
	snprintf(path, sizeof path, "%s/schema/examples/valid/error.xml", srcdir());
	s = (struct vr_xml_schema *)1;
	cr_assert_eq(vr_xml_schema_load(&s, path), VR_EINVAL);
	cr_assert_null(s);
	vr_xml_schema_free(NULL);
}
