/* What the integration test programs share on top of the harness: string
 * and XPath helpers, database assertions, and the two sides of an action's
 * job: accepting it as a tenant, and starting, reporting and completing it
 * through the internal API as the worker of VRT_SERVICE, whose replica
 * server VRT_SERVER_1 the harness registered (docs/pipeline.md).
 *
 * Like the harness, these fail the running test instead of returning an
 * error; the strings and structures they return are the caller's to free.
 * The assertions that take `what` name it and their caller's line. */
#ifndef VRCLOUD_TESTS_INTEGRATION_HELPERS_H
#define VRCLOUD_TESTS_INTEGRATION_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include "integration/harness.h"

/* --- the wire ------------------------------------------------------------- */

/* Namespaces of the request documents tests write (vr, vcloud). */
#define VRT_NS_VR     "http://www.vmware.com/vr/v6.0"
#define VRT_NS_VCLOUD "http://www.vmware.com/vcloud/v1.5"
/* Media types, without a version. */
#define VRT_MT_TASK	"application/vnd.vmware.vcloud.task+xml"
#define VRT_MT_REFS	"application/vnd.vmware.vcloud.query.references+xml"
#define VRT_MT_RG	"application/vnd.vmware.hcs.replicationGroup+xml"
#define VRT_MT_FAILOVER "application/vnd.vmware.hcs.failoverParams+xml"
#define VRT_MT_TEST	"application/vnd.vmware.hcs.testFailoverParams+xml"
/* The internal API's documents (schema/internal-1.xsd). */
#define VRT_MT_INTERNAL "application/vnd.vrcloud.internal+xml"
/* The body limit of the action and internal routes (src/api/routes.c). */
#define VRT_BODY_CAP (64 * 1024)

/* --- strings ------------------------------------------------------------ */

/* printf into a new string. */
char *vrt_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
/* n times c. */
char *vrt_filler(size_t n, char c);
/* Whether s is a UUID in lowercase hex (8-4-4-4-12). */
bool vrt_is_uuid(const char *s);

/* --- HTTP ----------------------------------------------------------------- */

/* vrt_call, failing the test when no response arrived. */
void vrt_call_ok(const struct vrt_call *call, struct vrt_resp *r);
/* GET path as user (a fixture user of vrt_token; NULL: no credentials):
 * 200 with a document that validates. The caller frees the response. */
void vrt_get_ok(const char *path, const char *user, struct vrt_resp *r);
/* 204 without a body, with a request id. */
void vrt_assert_no_content_at(const struct vrt_resp *r, const char *what, const char *file,
			      int line);
#define vrt_assert_no_content(r, what) vrt_assert_no_content_at(r, what, __FILE__, __LINE__)

/* --- XPath over a response (prefixes as for vrt_xpath_str) ----------------- */

/* The string value of xpath; fails the test when the body is not XML. */
char *vrt_xstr(const struct vrt_resp *r, const char *xpath);
void vrt_assert_xstr_at(const struct vrt_resp *r, const char *xpath, const char *expected,
			const char *file, int line);
#define vrt_assert_xstr(r, xpath, expected)                                                        \
	vrt_assert_xstr_at(r, xpath, expected, __FILE__, __LINE__)

/* --- the database ----------------------------------------------------------- */

/* First value of a query with one text parameter (NULL: none) that must
 * return a row. */
char *vrt_db_must(const char *sql, const char *param);
/* The first value of the query is expected; "(no row)" stands for none. */
void vrt_assert_db_at(const char *sql, const char *param, const char *expected, const char *what,
		      const char *file, int line);
#define vrt_assert_db(sql, param, expected, what)                                                  \
	vrt_assert_db_at(sql, param, expected, what, __FILE__, __LINE__)
/* vrt_replication_state of rg is expected; "(gone)" stands for none. */
void vrt_assert_state_at(const char *rg, const char *expected, const char *what, const char *file,
			 int line);
#define vrt_assert_state(rg, expected, what)                                                       \
	vrt_assert_state_at(rg, expected, what, __FILE__, __LINE__)
/* The database's vrt_db_fingerprint is still before. */
void vrt_assert_unchanged_since_at(const char *before, const char *what, const char *file,
				   int line);
#define vrt_assert_unchanged_since(before, what)                                                   \
	vrt_assert_unchanged_since_at(before, what, __FILE__, __LINE__)
/* The live vApps of a replication by kind and power state, in kind order:
 * "placeholder:off test:on"; "" when it has none. */
char *vrt_vapps_of(const char *rg);

/* --- accepting an action as a tenant ---------------------------------------- */

/* An accepted action's Task and job. */
struct vrt_accepted {
	char *task;
	char *job;
};

/* Accept action ("delete": DELETE of the replication; otherwise POST
 * .../action/ACTION) on replication rg as user, with this Content-Type
 * (NULL: none) and body (NULL: none): 202 with a queued Task, and its job. */
struct vrt_accepted vrt_accept_as(const char *user, const char *action, const char *rg,
				  const char *content_type, const char *body);
/* The same as admin-a, without a document. */
struct vrt_accepted vrt_accept(const char *action, const char *rg);
void vrt_accepted_free(struct vrt_accepted *a);
/* The job of a Task, which must have one. */
char *vrt_job_of(const char *task);
/* GET /api/task/{task} as admin-a: 200 with a valid Task. */
void vrt_get_task(const char *task, struct vrt_resp *r);

/* --- a job, as a worker through the internal API ---------------------------- */

/* The documents of the job routes. A JobProgress's message and a
 * JobResult's major, minor, vendor and message may be NULL (left out). */
char *vrt_job_start_doc(const char *server, unsigned deliveries);
char *vrt_job_progress_doc(const char *server, int progress, const char *message);
char *vrt_job_result_doc(const char *server, const char *outcome, const char *major,
			 const char *minor, const char *vendor, const char *message);
/* POST /api/internal/jobs/{job}/{route} (start, progress, complete, dead)
 * with a document of the internal type and this service token (NULL: none). */
void vrt_job_call(const char *route, const char *job, const char *bearer, const char *body,
		  struct vrt_resp *r);
/* As VRT_SERVICE on VRT_SERVER_1: the first delivery's start (200), a
 * progress report without a message (the answer is the caller's to check
 * and free), and the result outcome without error details (204). */
void vrt_job_start(const char *job);
void vrt_job_progress(const char *job, int progress, struct vrt_resp *r);
void vrt_job_complete(const char *job, const char *outcome);

#endif
