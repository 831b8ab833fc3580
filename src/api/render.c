#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"

void vr_render_link(struct vr_xml *w, const char *elem, const char *rel, const char *type,
		    const char *href, const char *name)
{
	vr_xml_start(w, elem);
	vr_xml_attr(w, "rel", rel);
	vr_xml_attr(w, "type", type);
	vr_xml_attr(w, "href", href);
	vr_xml_attr(w, "name", name);
	vr_xml_end(w);
}

void vr_render_ref(struct vr_xml *w, const char *elem, const char *type, const char *href,
		   const char *id, const char *name)
{
	vr_xml_start(w, elem);
	vr_xml_attr(w, "href", href);
	vr_xml_attr(w, "id", id);
	vr_xml_attr(w, "type", type);
	vr_xml_attr(w, "name", name);
	vr_xml_end(w);
}

struct MHD_Response *vr_response_from_xml(struct vr_xml *w)
{
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_xml_finish(w, &body)) {
		vr_buf_free(&body);
		return NULL;
	}
	return vr_response_from_buf(&body);
}

enum MHD_Result vr_reply_xml(struct vr_request *req, struct vr_xml *w, const char *media_type)
{
	struct vr_buf body;
	vr_buf_init(&body, 0);
	int rc = vr_xml_finish(w, &body);
	if (rc) {
		vr_buf_free(&body);
		return vr_reply_err(req, rc);
	}
	return vr_reply_doc(req, MHD_HTTP_OK, media_type, &body);
}

enum MHD_Result vr_reply_db(struct vr_request *req, int status)
{
	return vr_reply_err(req, status == VR_DB_SOFT ? VR_EUNAVAIL : VR_EDB);
}

static bool parse_long(const char *text, long *out)
{
	if (!text)
		return true;
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool vr_page_parse(struct vr_request *req, struct vr_page *page, enum MHD_Result *reply_out)
{
	page->page = 1;
	page->page_size = VR_PAGE_SIZE_DEFAULT;
	page->total = 0;
	const char *p = vr_request_arg(req, "page");
	const char *s = vr_request_arg(req, "pageSize");
	if (!parse_long(p, &page->page) || page->page < 1 || page->page > 100000000) {
		*reply_out = vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					    "The page parameter must be a whole number from 1.");
		return false;
	}
	if (!parse_long(s, &page->page_size) || page->page_size < 1) {
		*reply_out = vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					    "The pageSize parameter must be a whole number from 1 "
					    "to %d.",
					    VR_PAGE_SIZE_MAX);
		return false;
	}
	/* Larger pages are capped, as vCD caps them; the answer's pageSize says so. */
	if (page->page_size > VR_PAGE_SIZE_MAX)
		page->page_size = VR_PAGE_SIZE_MAX;
	return true;
}

void vr_page_sql(const struct vr_page *page, char limit[24], char offset[24])
{
	snprintf(limit, 24, "%ld", page->page_size);
	snprintf(offset, 24, "%lld", (long long)(page->page - 1) * page->page_size);
}

static void page_link(struct vr_request *req, struct vr_xml *w, const char *link, const char *rel,
		      const char *media_type, const char *path, long number, long size)
{
	char *href = vr_href(req, "%s?page=%ld&pageSize=%ld", path, number, size);
	vr_render_link(w, link, rel, media_type, href, NULL);
	free(href);
}

bool vr_render_container(struct vr_request *req, struct vr_xml *w, const char *ns,
			 const char *root, const char *media_type, const char *name,
			 const struct vr_page *page, const char *path)
{
	bool vr = strcmp(ns, VR_NS_VR) == 0;
	const char *link = vr ? "vcloud:Link" : "Link";
	long last = page->total == 0 ? 1 : (long)((page->total + page->page_size - 1) /
						  page->page_size);
	bool in_range = page->total > 0 && page->page <= last;
	char *href = vr_href(req, "%s?page=%ld&pageSize=%ld", path, page->page, page->page_size);
	vr_render_root(w, ns, root, href, media_type);
	vr_xml_attr(w, "name", name);
	vr_xml_attrf(w, "page", "%ld", page->page);
	vr_xml_attrf(w, "pageSize", "%ld", page->page_size);
	vr_xml_attrf(w, "total", "%lld", page->total);
	free(href);
	/* A page past the end (or of an empty result) holds exactly one
	 * child, the firstPage Link: a known client stops paging on that. */
	page_link(req, w, link, "firstPage", media_type, path, 1, page->page_size);
	if (!in_range)
		return false;
	if (page->page > 1)
		page_link(req, w, link, "previousPage", media_type, path, page->page - 1,
			  page->page_size);
	if (page->page < last)
		page_link(req, w, link, "nextPage", media_type, path, page->page + 1, page->page_size);
	page_link(req, w, link, "lastPage", media_type, path, last, page->page_size);
	return true;
}

enum MHD_Result vr_reply_references(struct vr_request *req, const char *stmt,
				    const char *const *params, int nparams, const char *path,
				    const char *name, const char *ref_type, const char *urn_kind,
				    const char *ref_path_prefix)
{
	struct vr_page page;
	enum MHD_Result reply;
	if (!vr_page_parse(req, &page, &reply))
		return reply;
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	char limit[24], offset[24];
	vr_page_sql(&page, limit, offset);
	const char *all[8];
	for (int i = 0; i < nparams; i++)
		all[i] = params[i];
	all[nparams] = limit;
	all[nparams + 1] = offset;
	PGresult *res = NULL;
	int rc = vr_db_exec(db, stmt, &res, nparams + 2, all);
	if (rc < 0)
		return vr_reply_db(req, rc);
	page.total = rc > 0 ? vr_db_int(res, 0, 0) : 0;
	struct vr_xml *w = vr_xml_new();
	if (vr_render_container(req, w, VR_NS_VCLOUD, "References", VR_MT_REFERENCES, name, &page, path)) {
		for (int i = 0; i < rc; i++) {
			if (vr_db_isnull(res, i, 1))
				continue;
			const char *id = vr_db_str(res, i, 1);
			char *href = vr_href(req, "%s%s", ref_path_prefix, id);
			char *urn = vr_asprintf("urn:vcloud:%s:%s", urn_kind, id);
			vr_render_ref(w, "Reference", ref_type, href, urn, vr_db_str(res, i, 2));
			free(href);
			free(urn);
		}
	}
	PQclear(res);
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_REFERENCES);
}

int vr_api_visible(struct vr_request *req, const char *stmt, const char *what,
		   enum MHD_Result *reply_out)
{
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		*reply_out = vr_reply_err(req, VR_EUNAVAIL);
		return -1;
	}
	const char *params[] = {req->ids[0], vr_request_scope(req)};
	int rc = vr_db_exec(db, stmt, NULL, 2, params);
	if (rc < 0) {
		*reply_out = vr_reply_db(req, rc);
		return -1;
	}
	if (rc == 0) {
		*reply_out = vr_reply_not_found(req, what, req->ids[0]);
		return 0;
	}
	return 1;
}

void vr_render_extension(struct vr_xml *w, const char *elem, const char *name)
{
	vr_xml_start(w, elem);
	vr_xml_attr(w, "required", "false");
	vr_xml_start(w, name);
	vr_xml_attr(w, "xmlns", VR_NS_EXTENSION_VRCLOUD);
}

void vr_render_root(struct vr_xml *w, const char *ns, const char *root, const char *href,
		    const char *media_type)
{
	vr_xml_start(w, root);
	vr_xml_attr(w, "xmlns", ns);
	if (strcmp(ns, VR_NS_VR) == 0)
		vr_xml_attr(w, "xmlns:vcloud", VR_NS_VCLOUD);
	vr_xml_attr(w, "href", href);
	vr_xml_attr(w, "type", media_type);
}

enum MHD_Result vr_reply_listing(struct vr_request *req, const struct vr_listing *l)
{
	enum MHD_Result reply;
	if (vr_api_visible(req, l->visible_stmt, l->what, &reply) != 1)
		return reply;
	char *path = vr_asprintf("%s%s/%s", l->parent_path, req->ids[0], l->name);
	const char *params[] = {req->ids[0], l->kind};
	reply = vr_reply_references(req, l->stmt, params, l->kind ? 2 : 1, path, l->name,
				    l->ref_type, l->urn_kind, l->ref_path_prefix);
	free(path);
	return reply;
}

bool vr_api_fetch_children(struct vr_request *req, const char *visible_stmt, const char *what,
			   const char *stmt, PGresult **res_out, int *rows_out,
			   enum MHD_Result *reply_out)
{
	if (vr_api_visible(req, visible_stmt, what, reply_out) != 1)
		return false;
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		*reply_out = vr_reply_err(req, VR_EUNAVAIL);
		return false;
	}
	const char *params[] = {req->ids[0], vr_request_scope(req)};
	int rc = vr_db_exec(db, stmt, res_out, 2, params);
	if (rc < 0) {
		*reply_out = vr_reply_db(req, rc);
		return false;
	}
	*rows_out = rc;
	return true;
}
