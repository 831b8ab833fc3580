/* Paging of References (and of the other containers) as the clients need
 * it (reference 1.8, 6.5): default 25, at most 128, exact first/previous/
 * next/last links, and a page past the end (or an empty result) with
 * exactly one child, the firstPage Link, which ends the vchs script's loop.
 * Org A has 30 incoming replications, created one minute apart. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"

VRT_SUITE(.name = "paging", .jobs = 3, .redis_db = 5);

#define N(a)		 (sizeof(a) / sizeof((a)[0]))
#define ORG_REPLICATIONS "/api/org/" VRT_ORG_A "/replications"

static long xlong(const struct vrt_resp *r, const char *xpath)
{
	char *s = vrt_xstr(r, xpath);
	long v = strtol(s, NULL, 10);
	free(s);
	return v;
}

/* The rel values of the root's Links, in order, joined by commas. */
static char *link_rels(const struct vrt_resp *r)
{
	long n = vrt_xpath_count(r->body, "/*/*[local-name()='Link']");
	char *out = calloc(1, 32 * (size_t)(n + 1));
	for (long i = 1; i <= n; i++) {
		char *x = vrt_fmt("string(/*/*[local-name()='Link'][%ld]/@rel)", i);
		char *rel = vrt_xstr(r, x);
		if (i > 1)
			strcat(out, ",");
		strcat(out, rel);
		free(rel);
		free(x);
	}
	return out;
}

static char *link_href(const struct vrt_resp *r, const char *rel)
{
	char *x = vrt_fmt("string(/*/*[local-name()='Link'][@rel='%s']/@href)", rel);
	char *href = vrt_xstr(r, x);
	free(x);
	return href;
}

static void assert_link(const struct vrt_resp *r, const char *rel, const char *path, long page,
			long size)
{
	char *href = link_href(r, rel);
	char *expected = vrt_fmt("%s%s?page=%ld&pageSize=%ld", vrt_public_url(), path, page, size);
	cr_assert_str_eq(href, expected, "%s link", rel);
	char *x = vrt_fmt("string(/*/*[local-name()='Link'][@rel='%s']/@type)", rel);
	char *type = vrt_xstr(r, x);
	cr_assert_str_eq(type, VRT_MT_REFS, "%s link type", rel);
	free(type);
	free(x);
	free(href);
	free(expected);
}

static void assert_attrs(const struct vrt_resp *r, long page, long size, long total)
{
	cr_assert_eq(xlong(r, "string(/v:References/@page)"), page, "page\n%s", r->body);
	cr_assert_eq(xlong(r, "string(/v:References/@pageSize)"), size, "pageSize\n%s", r->body);
	cr_assert_eq(xlong(r, "string(/v:References/@total)"), total, "total\n%s", r->body);
}

static long refs(const struct vrt_resp *r)
{
	return vrt_xpath_count(r->body, "/v:References/v:Reference");
}

/* Replication i of A (1-based) is the i-th in creation order. */
static void assert_ref_is_replication(const struct vrt_resp *r, long k, long i)
{
	char *x = vrt_fmt("string(/v:References/v:Reference[%ld]/@href)", k);
	char *href = vrt_xstr(r, x);
	char *id = vrt_fmt(VRT_REPL_A_FMT, (unsigned)i);
	char *expected = vrt_fmt("%s/api/vr/replications/%s", vrt_public_url(), id);
	cr_assert_str_eq(href, expected, "Reference %ld", k);
	free(x);
	free(href);
	free(id);
	free(expected);
}

static void assert_only_first_page_link(const struct vrt_resp *r, const char *path, long size)
{
	cr_assert_eq(vrt_xpath_count(r->body, "/*/*"), 1,
		     "GET %s: a page past the end must hold exactly one child\n%s", path, r->body);
	cr_assert_eq(vrt_xpath_count(r->body, "/*/*[local-name()='Link'][@rel='firstPage']"), 1,
		     "%s", r->body);
	char *plain = strdup(path);
	*strchrnul(plain, '?') = '\0';
	assert_link(r, "firstPage", plain, 1, size);
	free(plain);
}

Test(compat_6_5, default_page_size_is_25)
{
	struct vrt_resp r;
	vrt_get_ok(ORG_REPLICATIONS, VRT_ADMIN_A, &r);
	assert_attrs(&r, 1, 25, 30);
	cr_assert_eq(refs(&r), 25);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,nextPage,lastPage");
	assert_link(&r, "firstPage", ORG_REPLICATIONS, 1, 25);
	assert_link(&r, "nextPage", ORG_REPLICATIONS, 2, 25);
	assert_link(&r, "lastPage", ORG_REPLICATIONS, 2, 25);
	char *self = vrt_xstr(&r, "string(/v:References/@href)");
	char *expected = vrt_fmt("%s%s?page=1&pageSize=25", vrt_public_url(), ORG_REPLICATIONS);
	cr_assert_str_eq(self, expected);
	assert_ref_is_replication(&r, 1, 1);
	assert_ref_is_replication(&r, 25, 25);
	free(self);
	free(expected);
	free(rels);
	vrt_resp_free(&r);
}

Test(compat_6_5, second_and_last_page_holds_the_rest_with_a_previous_link)
{
	struct vrt_resp r;
	vrt_get_ok(ORG_REPLICATIONS "?page=2", VRT_ADMIN_A, &r);
	assert_attrs(&r, 2, 25, 30);
	cr_assert_eq(refs(&r), 5);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,previousPage,lastPage");
	assert_link(&r, "previousPage", ORG_REPLICATIONS, 1, 25);
	assert_link(&r, "lastPage", ORG_REPLICATIONS, 2, 25);
	assert_ref_is_replication(&r, 1, 26);
	assert_ref_is_replication(&r, 5, 30);
	free(rels);
	vrt_resp_free(&r);
}

Test(compat_6_5, page_size_128_holds_all_30)
{
	struct vrt_resp r;
	vrt_get_ok(ORG_REPLICATIONS "?pageSize=128&page=1", VRT_ADMIN_A, &r);
	assert_attrs(&r, 1, 128, 30);
	cr_assert_eq(refs(&r), 30);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,lastPage");
	assert_link(&r, "lastPage", ORG_REPLICATIONS, 1, 128);
	free(rels);
	vrt_resp_free(&r);
}

Test(compat_6_5, page_size_over_128_is_capped_at_128)
{
	static const char *const sizes[] = {"129", "500", "1000000"};
	for (size_t i = 0; i < N(sizes); i++) {
		char *path = vrt_fmt(ORG_REPLICATIONS "?pageSize=%s", sizes[i]);
		struct vrt_resp r;
		vrt_get_ok(path, VRT_ADMIN_A, &r);
		assert_attrs(&r, 1, 128, 30);
		cr_assert_eq(refs(&r), 30);
		assert_link(&r, "firstPage", ORG_REPLICATIONS, 1, 128);
		free(path);
		vrt_resp_free(&r);
	}
}

Test(compat_6_5, middle_page_links_are_exact)
{
	struct vrt_resp r;
	vrt_get_ok(ORG_REPLICATIONS "?page=2&pageSize=7", VRT_ADMIN_A, &r);
	assert_attrs(&r, 2, 7, 30);
	cr_assert_eq(refs(&r), 7);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,previousPage,nextPage,lastPage");
	assert_link(&r, "firstPage", ORG_REPLICATIONS, 1, 7);
	assert_link(&r, "previousPage", ORG_REPLICATIONS, 1, 7);
	assert_link(&r, "nextPage", ORG_REPLICATIONS, 3, 7);
	assert_link(&r, "lastPage", ORG_REPLICATIONS, 5, 7);
	assert_ref_is_replication(&r, 1, 8);
	assert_ref_is_replication(&r, 7, 14);
	free(rels);
	vrt_resp_free(&r);
}

Test(compat_6_5, last_page_is_partial_and_has_no_next_link)
{
	struct vrt_resp r;
	vrt_get_ok(ORG_REPLICATIONS "?page=5&pageSize=7", VRT_ADMIN_A, &r);
	assert_attrs(&r, 5, 7, 30);
	cr_assert_eq(refs(&r), 2);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,previousPage,lastPage");
	assert_link(&r, "previousPage", ORG_REPLICATIONS, 4, 7);
	assert_ref_is_replication(&r, 2, 30);
	free(rels);
	vrt_resp_free(&r);
}

Test(compat_6_5, page_past_the_end_has_exactly_one_child_the_first_page_link)
{
	static const char *const paths[] = {
		ORG_REPLICATIONS "?page=3",
		ORG_REPLICATIONS "?page=2&pageSize=128",
		ORG_REPLICATIONS "?page=6&pageSize=7",
		ORG_REPLICATIONS "?page=99999999",
	};
	static const long sizes[] = {25, 128, 7, 25};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get_ok(paths[i], VRT_ADMIN_A, &r);
		assert_only_first_page_link(&r, paths[i], sizes[i]);
		cr_assert_eq(xlong(&r, "string(/v:References/@total)"), 30);
		vrt_resp_free(&r);
	}
}

Test(compat_6_5, empty_result_has_exactly_one_child_the_first_page_link)
{
	static const char *const paths[] = {
		"/api/vr/peers/" VRT_PEER_A2 "/replications",
		"/api/vr/peers/" VRT_PEER_A2 "/failbackreplications",
		"/api/vr/peers/" VRT_PEER_A2 "/replications?page=2",
	};
	for (size_t i = 0; i < N(paths); i++) {
		struct vrt_resp r;
		vrt_get_ok(paths[i], VRT_ADMIN_A, &r);
		assert_only_first_page_link(&r, paths[i], 25);
		cr_assert_eq(xlong(&r, "string(/v:References/@total)"), 0);
		vrt_resp_free(&r);
	}
}

Test(compat_6_5, bad_page_parameters_are_400_errors)
{
	static const char *const queries[] = {
		"page=0",	"page=-1",	     "page=abc",
		"page=",	"page=1.5",	     "page=1e3",
		"page=0x10",	"page=1abc",	     "pageSize=0",
		"pageSize=-5",	"pageSize=abc",	     "pageSize=",
		"pageSize=2.5", "page=2&pageSize=0", "page=99999999999999999999999",
	};
	for (size_t i = 0; i < N(queries); i++) {
		char *path = vrt_fmt(ORG_REPLICATIONS "?%s", queries[i]);
		struct vrt_resp r;
		vrt_get(path, vrt_token(VRT_ADMIN_A), &r);
		vrt_assert_error(&r, 400, "BAD_REQUEST", path);
		free(path);
		vrt_resp_free(&r);
	}
}

/* Walk all pages of size `size`; the ids in order must be A's 1..30. */
static void walk(const char *path, long size, long total)
{
	long pages = (total + size - 1) / size, seen = 0;
	for (long page = 1; page <= pages + 1; page++) {
		char *p = vrt_fmt("%s?page=%ld&pageSize=%ld", path, page, size);
		struct vrt_resp r;
		vrt_get_ok(p, VRT_ADMIN_A, &r);
		cr_assert_eq(xlong(&r, "string(/v:References/@total)"), total);
		if (page > pages) {
			assert_only_first_page_link(&r, p, size);
		} else {
			long n = refs(&r);
			cr_assert_eq(n, page < pages ? size : total - size * (pages - 1), "%s", p);
			for (long k = 1; k <= n; k++)
				assert_ref_is_replication(&r, k, seen + k);
			seen += n;
		}
		free(p);
		vrt_resp_free(&r);
	}
	cr_assert_eq(seen, total);
}

Test(compat_6_5, pages_are_disjoint_and_cover_every_reference_in_creation_order)
{
	static const long sizes[] = {1, 7, 25, 29, 30};
	for (size_t i = 0; i < N(sizes); i++)
		walk(ORG_REPLICATIONS, sizes[i], 30);
	walk("/api/vdc/" VRT_VDC_A1 "/replications", 13, 30);
	walk("/api/vr/peers/" VRT_PEER_A1 "/replications", 11, 30);
}

/* The vchs script: page=1,2,... with pageSize=128 until the root has
 * exactly one child element. */
static long vchs_loop(const char *path, long size, long *references_out)
{
	long page = 1, collected = 0;
	for (;; page++) {
		cr_assert(page <= 50, "the loop would never end");
		char *p = vrt_fmt("%s?pageSize=%ld&page=%ld", path, size, page);
		struct vrt_resp r;
		vrt_get_ok(p, VRT_ADMIN_A, &r);
		long children = vrt_xpath_count(r.body, "/*/*");
		cr_assert(children >= 1, "%s: no child at all: the script would loop forever", p);
		collected += vrt_xpath_count(r.body, "/*/v:Reference[@type]");
		free(p);
		vrt_resp_free(&r);
		if (children == 1)
			break;
	}
	*references_out = collected;
	return page;
}

Test(compat_6_5, vchs_script_paging_loop_ends_with_every_reference)
{
	long got = 0;
	cr_assert_eq(vchs_loop(ORG_REPLICATIONS, 128, &got), 2);
	cr_assert_eq(got, 30);
	cr_assert_eq(vchs_loop(ORG_REPLICATIONS, 10, &got), 4);
	cr_assert_eq(got, 30);
	cr_assert_eq(vchs_loop("/api/vr/peers/" VRT_PEER_A2 "/replications", 128, &got), 1);
	cr_assert_eq(got, 0);
}

Test(compat_6_5, paging_links_lead_to_the_pages_they_name)
{
	struct vrt_resp first, next, direct;
	vrt_get_ok(ORG_REPLICATIONS "?pageSize=10", VRT_ADMIN_A, &first);
	char *href = link_href(&first, "nextPage");
	size_t base = strlen(vrt_public_url());
	cr_assert_eq(strncmp(href, vrt_public_url(), base), 0);
	vrt_get_ok(href + base, VRT_ADMIN_A, &next);
	vrt_get_ok(ORG_REPLICATIONS "?page=2&pageSize=10", VRT_ADMIN_A, &direct);
	cr_assert_str_eq(next.body, direct.body);
	free(href);
	href = link_href(&next, "lastPage");
	struct vrt_resp last;
	vrt_get_ok(href + base, VRT_ADMIN_A, &last);
	assert_attrs(&last, 3, 10, 30);
	free(href);
	vrt_resp_free(&first);
	vrt_resp_free(&next);
	vrt_resp_free(&direct);
	vrt_resp_free(&last);
}

Test(compat_6_5, every_listing_pages_the_same_way)
{
	static const char *const listings[][2] = {
		{"/api/org/" VRT_ORG_A "/replications", "30"},
		{"/api/org/" VRT_ORG_A "/failbackreplications", "1"},
		{"/api/org/" VRT_ORG_A "/enabledForReplicationVdcs", "1"},
		{"/api/vdc/" VRT_VDC_A1 "/replications", "30"},
		{"/api/vdc/" VRT_VDC_A1 "/failbackreplications", "1"},
		{"/api/vdc/" VRT_VDC_A1 "/peers", "2"},
		{"/api/vr/peers/" VRT_PEER_A1 "/replications", "30"},
		{"/api/vr/peers/" VRT_PEER_A1 "/failbackreplications", "1"},
	};
	for (size_t i = 0; i < N(listings); i++) {
		long total = strtol(listings[i][1], NULL, 10);
		char *p = vrt_fmt("%s?page=1&pageSize=1", listings[i][0]);
		struct vrt_resp r;
		vrt_get_ok(p, VRT_ADMIN_A, &r);
		assert_attrs(&r, 1, 1, total);
		cr_assert_eq(refs(&r), 1, "%s", p);
		char *rels = link_rels(&r);
		cr_assert_str_eq(rels,
				 total > 1 ? "firstPage,nextPage,lastPage" : "firstPage,lastPage",
				 "%s", p);
		assert_link(&r, "lastPage", listings[i][0], total, 1);
		free(rels);
		free(p);
		vrt_resp_free(&r);
		p = vrt_fmt("%s?page=%ld&pageSize=1", listings[i][0], total + 1);
		vrt_get_ok(p, VRT_ADMIN_A, &r);
		assert_only_first_page_link(&r, p, 1);
		free(p);
		vrt_resp_free(&r);
	}
}

Test(compat_6_5, query_records_and_nodes_page_like_references)
{
	struct vrt_resp r;
	vrt_get_ok("/api/admin/vdcs/query?pageSize=2", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:QueryResultRecords/v:OrgVdcRecord"), 2);
	cr_assert_eq(xlong(&r, "string(/v:QueryResultRecords/@total)"), 3);
	char *rels = link_rels(&r);
	cr_assert_str_eq(rels, "firstPage,nextPage,lastPage");
	free(rels);
	vrt_resp_free(&r);
	vrt_get_ok("/api/admin/vdcs/query?pageSize=2&page=2", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:QueryResultRecords/v:OrgVdcRecord"), 1);
	vrt_resp_free(&r);
	vrt_get_ok("/api/admin/vdcs/query/?pageSize=2&page=3", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/*/*"), 1, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "/*/v:Link[@rel='firstPage']"), 1);
	vrt_resp_free(&r);
	vrt_get_ok("/api/admin/vr/nodes?pageSize=1", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:VrcsNodes/vr:Node"), 1);
	cr_assert_eq(xlong(&r, "string(/vr:VrcsNodes/@total)"), 2);
	vrt_resp_free(&r);
	vrt_get_ok("/api/admin/vr/nodes?pageSize=1&page=3", VRT_ROOT, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/*/*"), 1, "%s", r.body);
	vrt_resp_free(&r);
	vrt_get("/api/admin/vdcs/query?page=0", vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 400, "BAD_REQUEST", "query page=0");
	vrt_resp_free(&r);
	vrt_get("/api/admin/vr/nodes?pageSize=x", vrt_token(VRT_ROOT), &r);
	vrt_assert_error(&r, 400, "BAD_REQUEST", "nodes pageSize=x");
	vrt_resp_free(&r);
}

Test(compat_6_5, unknown_query_parameters_are_ignored)
{
	struct vrt_resp a, b;
	vrt_get_ok(ORG_REPLICATIONS "?page=2&format=records&sortAsc=name", VRT_ADMIN_A, &a);
	vrt_get_ok(ORG_REPLICATIONS "?page=2", VRT_ADMIN_A, &b);
	cr_assert_str_eq(a.body, b.body);
	vrt_resp_free(&a);
	vrt_resp_free(&b);
}

Test(compat_6_5, sysadmin_pages_an_org_listing_like_its_users)
{
	struct vrt_resp a, b;
	vrt_get_ok(ORG_REPLICATIONS "?page=2&pageSize=9", VRT_ADMIN_A, &a);
	vrt_get_ok(ORG_REPLICATIONS "?page=2&pageSize=9", VRT_ROOT, &b);
	cr_assert_str_eq(a.body, b.body);
	vrt_resp_free(&a);
	vrt_resp_free(&b);
}
