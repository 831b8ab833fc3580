#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlschemas.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

struct vr_xml_schema {
	xmlSchemaPtr schema;
};

static void drop_message(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int vr_xml_schema_load(struct vr_xml_schema **out, const char *path)
{
	*out = NULL;
	xmlSchemaParserCtxtPtr pctxt = xmlSchemaNewParserCtxt(path);
	if (!pctxt)
		return VR_EIO;
	xmlSchemaSetParserErrors(pctxt, drop_message, drop_message, NULL);
	xmlSchemaPtr schema = xmlSchemaParse(pctxt);
	xmlSchemaFreeParserCtxt(pctxt);
	if (!schema)
		return VR_EINVAL;
	struct vr_xml_schema *s = vr_calloc(1, sizeof *s);
	s->schema = schema;
	*out = s;
	return 0;
}

struct first_error {
	char *message;
};

static void keep_first(void *ctx, xmlErrorPtr error)
{
	struct first_error *fe = ctx;
	if (fe->message || !error || !error->message)
		return;
	fe->message = vr_strdup(error->message);
	size_t n = strlen(fe->message);
	while (n && (fe->message[n - 1] == '\n' || fe->message[n - 1] == ' '))
		fe->message[--n] = '\0';
}

int vr_xml_schema_validate(const struct vr_xml_schema *schema, xmlDocPtr doc, char **message_out)
{
	if (message_out)
		*message_out = NULL;
	xmlSchemaValidCtxtPtr vctxt = xmlSchemaNewValidCtxt(schema->schema);
	if (!vctxt)
		return VR_ENOMEM;
	struct first_error fe = {NULL};
	xmlSchemaSetValidStructuredErrors(vctxt, keep_first, &fe);
	int rc = xmlSchemaValidateDoc(vctxt, doc);
	xmlSchemaFreeValidCtxt(vctxt);
	if (rc == 0) {
		free(fe.message);
		return 0;
	}
	if (message_out)
		*message_out = fe.message ? fe.message : vr_strdup("document is not valid");
	else
		free(fe.message);
	return VR_EINVAL;
}

void vr_xml_schema_free(struct vr_xml_schema *schema)
{
	if (!schema)
		return;
	xmlSchemaFree(schema->schema);
	free(schema);
}
