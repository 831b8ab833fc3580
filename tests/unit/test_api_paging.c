/* Paging of References containers (vcav-api 1.8, 6.5): the Links of each
 * page, the one-child page past the end, LIMIT/OFFSET, and schema validity. */
#include <criterion/criterion.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/internal.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

#define BASE "https://p1v17-vcd.vchs.vmware.com:443"
#define PATH "/api/vdc/2f1d0c6e-7a3b-4c8d-9e0f-1a2b3c4d5e6f/replications"

static struct vr_xml_schema *schema;

static const char *srcdir(void)
{
	const char *dir = getenv("VRCLOUD_SRCDIR");
	return dir && *dir ? dir : VR_SRCDIR;
}

static void setup(void)
{
	vr_xml_global_init();
	char path[4096];
	snprintf(path, sizeof path, "%s/schema/vrcloud.xsd", srcdir());
	cr_assert_eq(vr_xml_schema_load(&schema, path), 0, "cannot load %s", path);
}

static void teardown(void)
{
	vr_xml_schema_free(schema);
}

TestSuite(paging, .init = setup, .fini = teardown);

/* The container for one page with `refs` References after it. */
struct page_doc {
	bool in_range;
	xmlDocPtr doc;
	char *text;
};

static struct page_doc render(long page, long page_size, long long total, int refs)
{
	struct vr_server server;
	memset(&server, 0, sizeof server);
	server.public_url = (char *)BASE;
	struct vr_request req;
	memset(&req, 0, sizeof req);
	req.server = &server;

	struct vr_page p = {.page = page, .page_size = page_size, .total = total};
	struct vr_xml *w = vr_xml_new();
	struct page_doc out;
	out.in_range = vr_render_container(&req, w, VR_NS_VCLOUD, "References", VR_MT_REFERENCES,
					   "replications", &p, PATH);
	if (out.in_range) {
		for (int i = 0; i < refs; i++) {
			char href[256], id[64], name[32];
			snprintf(id, sizeof id, "urn:vcloud:replication:%d", i);
			snprintf(href, sizeof href, BASE "/api/vr/replications/%d", i);
			snprintf(name, sizeof name, "vm-%d", i);
			vr_render_ref(w, "Reference", VR_MT_RG, href, id, name);
		}
	}
	vr_xml_end(w);
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_xml_finish(w, &buf), 0);
	out.text = vr_buf_take(&buf, NULL);
	const char *reason = NULL;
	cr_assert_eq(vr_xml_parse(&out.doc, out.text, strlen(out.text), &reason), 0, "%s: %s",
		     reason, out.text);
	char *message = NULL;
	cr_assert_eq(vr_xml_schema_validate(schema, out.doc, &message), 0, "%s\n%s",
		     message ? message : "", out.text);
	return out;
}

static void page_doc_free(struct page_doc *d)
{
	xmlFreeDoc(d->doc);
	free(d->text);
}

static char *prop(xmlNodePtr n, const char *name)
{
	static char value[1024];
	xmlChar *v = xmlGetProp(n, BAD_CAST name);
	if (!v)
		return NULL;
	snprintf(value, sizeof value, "%s", (const char *)v);
	xmlFree(v);
	return value;
}

/* "firstPage:1 nextPage:3 lastPage:4 Reference Reference": every child of
 * the root in order, Links as rel:page, after checking each Link's href
 * and type. */
static void children(const struct page_doc *d, long page_size, char *out, size_t size)
{
	out[0] = '\0';
	xmlNodePtr root = xmlDocGetRootElement(d->doc);
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		char item[1100];
		if (strcmp((const char *)c->name, "Link") == 0) {
			cr_assert_str_eq(prop(c, "type"), VR_MT_REFERENCES);
			const char *href = prop(c, "href");
			long number = 0, psize = 0;
			cr_assert_eq(sscanf(href, BASE PATH "?page=%ld&pageSize=%ld", &number,
					    &psize),
				     2, "href %s", href);
			cr_assert_eq(psize, page_size, "href %s", href);
			snprintf(item, sizeof item, "%s:%ld", prop(c, "rel"), number);
		} else {
			cr_assert_not_null(prop(c, "type"), "a child without type");
			snprintf(item, sizeof item, "%s", (const char *)c->name);
		}
		size_t len = strlen(out);
		snprintf(out + len, size - len, "%s%s", len ? " " : "", item);
	}
}

static void expect_page(long page, long page_size, long long total, int refs, bool in_range,
			const char *want)
{
	struct page_doc d = render(page, page_size, total, refs);
	cr_assert_eq(d.in_range, in_range, "page %ld of total %lld", page, total);
	char got[2048];
	children(&d, page_size, got, sizeof got);
	cr_assert_str_eq(got, want, "page %ld size %ld total %lld", page, page_size, total);

	xmlNodePtr root = xmlDocGetRootElement(d.doc);
	char num[32];
	snprintf(num, sizeof num, "%ld", page);
	cr_assert_str_eq(prop(root, "page"), num);
	snprintf(num, sizeof num, "%ld", page_size);
	cr_assert_str_eq(prop(root, "pageSize"), num);
	snprintf(num, sizeof num, "%lld", total);
	cr_assert_str_eq(prop(root, "total"), num);
	cr_assert_str_eq(prop(root, "type"), VR_MT_REFERENCES);
	cr_assert_str_eq(prop(root, "name"), "replications");
	char href[512];
	snprintf(href, sizeof href, BASE PATH "?page=%ld&pageSize=%ld", page, page_size);
	cr_assert_str_eq(prop(root, "href"), href);
	page_doc_free(&d);
}

Test(paging, middle_page)
{
	expect_page(2, 25, 100, 25, true,
		    "firstPage:1 previousPage:1 nextPage:3 lastPage:4"
		    " Reference Reference Reference Reference Reference Reference Reference"
		    " Reference Reference Reference Reference Reference Reference Reference"
		    " Reference Reference Reference Reference Reference Reference Reference"
		    " Reference Reference Reference Reference");
}

Test(paging, first_page)
{
	expect_page(1, 25, 100, 2, true, "firstPage:1 nextPage:2 lastPage:4 Reference Reference");
}

Test(paging, last_page)
{
	expect_page(4, 25, 100, 1, true, "firstPage:1 previousPage:3 lastPage:4 Reference");
	/* a partial last page */
	expect_page(5, 25, 101, 1, true, "firstPage:1 previousPage:4 lastPage:5 Reference");
}

Test(paging, single_page)
{
	expect_page(1, 128, 1, 1, true, "firstPage:1 lastPage:1 Reference");
	expect_page(1, 25, 25, 1, true, "firstPage:1 lastPage:1 Reference");
}

/* vcav-api 6.5: past the end, or nothing at all, is exactly one child. */
Test(paging, past_the_end_has_exactly_one_child)
{
	expect_page(5, 25, 100, 3, false, "firstPage:1");
	expect_page(2, 128, 1, 3, false, "firstPage:1");
	expect_page(100000000, 128, 1000, 3, false, "firstPage:1");
}

Test(paging, empty_result_has_exactly_one_child)
{
	expect_page(1, 25, 0, 3, false, "firstPage:1");
	expect_page(7, 25, 0, 3, false, "firstPage:1");
}

Test(paging, boundaries)
{
	/* total exactly a multiple of the page size: no empty last page */
	expect_page(4, 25, 100, 1, true, "firstPage:1 previousPage:3 lastPage:4 Reference");
	expect_page(2, 1, 3, 1, true, "firstPage:1 previousPage:1 nextPage:3 lastPage:3 Reference");
	expect_page(1, 1, 2, 1, true, "firstPage:1 nextPage:2 lastPage:2 Reference");
}

Test(paging, link_order_and_vr_namespace_prefix)
{
	/* containers in the VR namespace write their Links as vcloud:Link */
	struct vr_server server;
	memset(&server, 0, sizeof server);
	server.public_url = (char *)BASE;
	struct vr_request req;
	memset(&req, 0, sizeof req);
	req.server = &server;
	struct vr_page p = {.page = 1, .page_size = 10, .total = 30};
	struct vr_xml *w = vr_xml_new();
	cr_assert(vr_render_container(&req, w, VR_NS_VR, "VrcsNodes", VR_MT_NODES, "nodes", &p,
				      "/api/admin/vr/nodes"));
	vr_xml_end(w);
	struct vr_buf buf;
	vr_buf_init(&buf, 0);
	cr_assert_eq(vr_xml_finish(w, &buf), 0);
	xmlDocPtr doc;
	const char *reason;
	cr_assert_eq(vr_xml_parse(&doc, buf.data, buf.len, &reason), 0, "%s", reason);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->ns->href, VR_NS_VR);
	int links = 0;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		cr_assert_str_eq((const char *)c->name, "Link");
		cr_assert_not_null(c->ns);
		cr_assert_str_eq((const char *)c->ns->href, VR_NS_VCLOUD);
		links++;
	}
	cr_assert_eq(links, 3, "firstPage, nextPage, lastPage: %s", buf.data);
	xmlFreeDoc(doc);
	vr_buf_free(&buf);
}

Test(paging, limit_and_offset)
{
	char limit[24], offset[24];
	struct vr_page p = {.page = 1, .page_size = 25, .total = 0};
	vr_page_sql(&p, limit, offset);
	cr_assert_str_eq(limit, "25");
	cr_assert_str_eq(offset, "0");

	p.page = 3;
	vr_page_sql(&p, limit, offset);
	cr_assert_str_eq(offset, "50");

	p.page = 100000000;
	p.page_size = 128;
	vr_page_sql(&p, limit, offset);
	cr_assert_str_eq(limit, "128");
	cr_assert_str_eq(offset, "12799999872");
}
