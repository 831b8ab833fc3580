/* Helpers shared by the integration test programs (helpers.h). */
#include "integration/helpers.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- strings ------------------------------------------------------------ */

char *vrt_fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	cr_assert(vasprintf(&s, f, ap) > 0);
	va_end(ap);
	return s;
}

char *vrt_filler(size_t n, char c)
{
	char *s = malloc(n + 1);
	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

bool vrt_is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
			return false;
	}
	return true;
}

/* --- HTTP ----------------------------------------------------------------- */

void vrt_call_ok(const struct vrt_call *call, struct vrt_resp *r)
{
	cr_assert_eq(vrt_call(call, r), 0, "%s %s: no response (connection dropped or crashed)",
		     call->method ? call->method : "GET", call->path);
}

void vrt_get_ok(const char *path, const char *user, struct vrt_resp *r)
{
	vrt_get(path, user ? vrt_token(user) : NULL, r);
	cr_assert_eq(r->status, 200, "GET %s: %ld\n%s", path, r->status, r->body);
	vrt_assert_valid(r, path);
}

void vrt_assert_no_content_at(const struct vrt_resp *r, const char *what, const char *file,
			      int line)
{
	cr_assert_eq(r->status, 204, "%s:%d: %s: %ld, expected 204\n%s", file, line, what,
		     r->status, r->body);
	cr_assert_eq(r->body_len, 0, "%s:%d: %s: 204 with a body", file, line, what);
	cr_assert_not_null(vrt_header(r, "X-VMWARE-VCLOUD-REQUEST-ID"), "%s:%d: %s: no request id",
			   file, line, what);
}

/* --- XPath over a response ------------------------------------------------- */

char *vrt_xstr(const struct vrt_resp *r, const char *xpath)
{
	char *s = vrt_xpath_str(r->body, xpath);
	cr_assert_not_null(s, "not XML:\n%s", r->body);
	return s;
}

void vrt_assert_xstr_at(const struct vrt_resp *r, const char *xpath, const char *expected,
			const char *file, int line)
{
	char *s = vrt_xstr(r, xpath);
	cr_assert_str_eq(s, expected, "%s:%d: %s is '%s', expected '%s'\n%s", file, line, xpath, s,
			 expected, r->body);
	free(s);
}

/* --- the database ----------------------------------------------------------- */

char *vrt_db_must(const char *sql, const char *param)
{
	char *v = vrt_db_value(sql, param);
	cr_assert_not_null(v, "no row: %s [%s]", sql, param);
	return v;
}

void vrt_assert_db_at(const char *sql, const char *param, const char *expected, const char *what,
		      const char *file, int line)
{
	char *v = vrt_db_value(sql, param);
	cr_assert_str_eq(v ? v : "(no row)", expected, "%s:%d: %s: '%s', expected '%s'", file, line,
			 what, v ? v : "(no row)", expected);
	free(v);
}

void vrt_assert_state_at(const char *rg, const char *expected, const char *what, const char *file,
			 int line)
{
	char *s = vrt_replication_state(rg);
	cr_assert_str_eq(s ? s : "(gone)", expected,
			 "%s:%d: %s: replication %s is '%s', expected '%s'", file, line, what, rg,
			 s ? s : "(gone)", expected);
	free(s);
}

void vrt_assert_unchanged_since_at(const char *before, const char *what, const char *file, int line)
{
	char *now = vrt_db_fingerprint();
	cr_assert_str_eq(now, before, "%s:%d: %s: the database changed.\nbefore: %s\nnow:    %s",
			 file, line, what, before, now);
	free(now);
}

char *vrt_vapps_of(const char *rg)
{
	char *v = vrt_db_value("SELECT coalesce(string_agg(kind || ':' || power_state, ' '"
			       " ORDER BY kind), '') FROM vapps WHERE replication_id = $1::uuid"
			       " AND deleted_at IS NULL",
			       rg);
	return v ? v : strdup("");
}

/* --- accepting an action as a tenant ---------------------------------------- */

struct vrt_accepted vrt_accept_as(const char *user, const char *action, const char *rg,
				  const char *content_type, const char *body)
{
	bool del = strcmp(action, "delete") == 0;
	char *path = del ? vrt_fmt("/api/vr/replications/%s", rg)
			 : vrt_fmt("/api/vr/replications/%s/action/%s", rg, action);
	/* an empty Content-Type line keeps curl from adding one of its own */
	char *type = content_type ? vrt_fmt("Content-Type: %s", content_type)
				  : strdup("Content-Type:");
	const char *headers[] = {type, NULL};
	struct vrt_call call = {.method = del ? "DELETE" : "POST",
				.path = path,
				.token = vrt_token(user),
				.headers = headers,
				.body = body,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 202, "%s: %ld\n%s", path, r.status, r.body);
	char *status = vrt_xstr(&r, "string(/v:Task/@status)");
	cr_assert_str_eq(status, "queued", "%s was not accepted:\n%s", path, r.body);
	free(status);
	char *href = vrt_xstr(&r, "string(/v:Task/@href)");
	struct vrt_accepted a;
	a.task = strdup(strrchr(href, '/') + 1);
	a.job = vrt_job_of(a.task);
	free(href);
	free(type);
	free(path);
	vrt_resp_free(&r);
	return a;
}

struct vrt_accepted vrt_accept(const char *action, const char *rg)
{
	return vrt_accept_as(VRT_ADMIN_A, action, rg, NULL, NULL);
}

void vrt_accepted_free(struct vrt_accepted *a)
{
	free(a->task);
	free(a->job);
}

char *vrt_job_of(const char *task)
{
	return vrt_db_must("SELECT id::text FROM jobs WHERE task_id = $1::uuid", task);
}

void vrt_get_task(const char *task, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/task/%s", task);
	vrt_get_ok(path, VRT_ADMIN_A, r);
	free(path);
}

/* --- a job, as a worker through the internal API ---------------------------- */

char *vrt_job_start_doc(const char *server, unsigned deliveries)
{
	return vrt_fmt("<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>%s</ServerId>"
		       "<Deliveries>%u</Deliveries></JobStart>",
		       server, deliveries);
}

char *vrt_job_progress_doc(const char *server, int progress, const char *message)
{
	char *m = message ? vrt_fmt("<Message>%s</Message>", message) : strdup("");
	char *doc = vrt_fmt("<JobProgress xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>%s</ServerId>"
			    "<Progress>%d</Progress>%s</JobProgress>",
			    server, progress, m);
	free(m);
	return doc;
}

char *vrt_job_result_doc(const char *server, const char *outcome, const char *major,
			 const char *minor, const char *vendor, const char *message)
{
	char *a = major ? vrt_fmt("<MajorErrorCode>%s</MajorErrorCode>", major) : strdup("");
	char *b = minor ? vrt_fmt("<MinorErrorCode>%s</MinorErrorCode>", minor) : strdup("");
	char *c = vendor ? vrt_fmt("<VendorSpecificErrorCode>%s</VendorSpecificErrorCode>", vendor)
			 : strdup("");
	char *d = message ? vrt_fmt("<Message>%s</Message>", message) : strdup("");
	char *doc = vrt_fmt("<JobResult xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>%s</ServerId>"
			    "<Outcome>%s</Outcome>%s%s%s%s</JobResult>",
			    server, outcome, a, b, c, d);
	free(a);
	free(b);
	free(c);
	free(d);
	return doc;
}

void vrt_job_call(const char *route, const char *job, const char *bearer, const char *body,
		  struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/internal/jobs/%s/%s", job, route);
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = bearer,
				.headers = headers,
				.body = body,
				.body_len = -1};
	cr_assert_eq(vrt_call(&call, r), 0, "POST %s: no response", path);
	free(path);
}

void vrt_job_start(const char *job)
{
	char *doc = vrt_job_start_doc(VRT_SERVER_1, 1);
	struct vrt_resp r;
	vrt_job_call("start", job, vrt_service_token(VRT_SERVICE), doc, &r);
	cr_assert_eq(r.status, 200, "start of %s: %ld\n%s", job, r.status, r.body);
	vrt_resp_free(&r);
	free(doc);
}

void vrt_job_progress(const char *job, int progress, struct vrt_resp *r)
{
	char *doc = vrt_job_progress_doc(VRT_SERVER_1, progress, NULL);
	vrt_job_call("progress", job, vrt_service_token(VRT_SERVICE), doc, r);
	free(doc);
}

void vrt_job_complete(const char *job, const char *outcome)
{
	char *doc = vrt_job_result_doc(VRT_SERVER_1, outcome, NULL, NULL, NULL, NULL);
	struct vrt_resp r;
	vrt_job_call("complete", job, vrt_service_token(VRT_SERVICE), doc, &r);
	cr_assert_eq(r.status, 204, "complete %s of %s: %ld\n%s", outcome, job, r.status, r.body);
	vrt_resp_free(&r);
	free(doc);
}
