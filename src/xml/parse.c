/* The one entry point through which vrcloud reads XML from outside. */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vrcloud/err.h"
#include "vrcloud/xml.h"

static void silent_error(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static int max_depth(xmlNodePtr node, int depth)
{
	int deepest = depth;
	for (xmlNodePtr c = node->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (depth + 1 > VR_XML_MAX_DEPTH)
			return depth + 1;
		int d = max_depth(c, depth + 1);
		if (d > deepest)
			deepest = d;
		if (deepest > VR_XML_MAX_DEPTH)
			break;
	}
	return deepest;
}

int vr_xml_parse(xmlDocPtr *doc_out, const char *data, size_t len, const char **reason_out)
{
	*doc_out = NULL;
	*reason_out = NULL;
	if (len == 0 || len > (size_t)INT32_MAX) {
		*reason_out = "the request body is empty";
		return VR_EINVAL;
	}
	/* Refuse DTDs before the parser sees them: libxml2 2.9 has no
	 * amplification limit, and no request document needs a DOCTYPE. */
	if (memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8)) {
		*reason_out = "DOCTYPE and entity declarations are not allowed";
		return VR_EINVAL;
	}
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		*reason_out = "out of memory";
		return VR_ENOMEM;
	}
	xmlSetGenericErrorFunc(NULL, silent_error);
	/* NONET: no network; no NOENT (entities are never substituted); no
	 * DTDLOAD/DTDATTR; NONET also stops XInclude and external subsets. */
	int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
		      XML_PARSE_NOCDATA | XML_PARSE_NOBLANKS;
	xmlDocPtr doc = xmlCtxtReadMemory(ctxt, data, (int)len, "request.xml", NULL, options);
	/* Undeclared prefixes make a document namespace-ill-formed. */
	bool wellformed = ctxt->wellFormed && ctxt->nsWellFormed;
	xmlFreeParserCtxt(ctxt);
	if (!doc || !wellformed) {
		if (doc)
			xmlFreeDoc(doc);
		*reason_out = "the request body is not well-formed XML";
		return VR_EINVAL;
	}
	if (doc->intSubset || doc->extSubset) {
		xmlFreeDoc(doc);
		*reason_out = "DOCTYPE and entity declarations are not allowed";
		return VR_EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (!root) {
		xmlFreeDoc(doc);
		*reason_out = "the request body has no root element";
		return VR_EINVAL;
	}
	if (max_depth(root, 1) > VR_XML_MAX_DEPTH) {
		xmlFreeDoc(doc);
		*reason_out = "the request document is nested too deeply";
		return VR_EINVAL;
	}
	*doc_out = doc;
	return 0;
}
