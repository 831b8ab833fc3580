/* POST /api/internal/replications/{id}/instances (docs/instances.md): the
 * replica server that holds a replication records the instances it
 * committed; the sequence numbers, the end of the initial sync, retention
 * by the replication's rules, the idempotent replay, and the refusals that
 * change nothing. The public reads (ReplicationGroup, /instances) show
 * what was recorded. The tests compare the whole database before and
 * after refusals, so they run one at a time. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "integration/harness.h"
#include "integration/helpers.h"

VRT_SUITE(.name = "instances", .jobs = 1, .redis_db = 14);

#define ROOT_HASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define OTHER_HASH                                                                                 \
	"00"                                                                                       \
	"86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define NOT_HEX_HASH                                                                               \
	"zz"                                                                                       \
	"86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/* 2026-01-01T00:00:00Z in Unix milliseconds: a day boundary. */
#define DAY0_MS INT64_C(1767225600000)

static char *record_doc(const char *server, const char *instance, int64_t point_ms,
			const char *root)
{
	return vrt_fmt("<InstanceRecord xmlns=\"" VRT_NS_INTERNAL "\">"
		       "<ServerId>%s</ServerId><InstanceId>%s</InstanceId>"
		       "<PointInTimeMs>%lld</PointInTimeMs><TransferSeconds>3</TransferSeconds>"
		       "<TransferBytes>8192</TransferBytes><Blocks>2</Blocks>"
		       "<HashRoot>%s</HashRoot></InstanceRecord>",
		       server, instance, (long long)point_ms, root);
}

static void post_as(const char *service, const char *rg, const char *body, struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/internal/replications/%s/instances", rg);
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.bearer = service ? vrt_service_token(service) : NULL,
				.headers = headers,
				.body = body,
				.body_len = -1};
	vrt_call_ok(&call, r);
	free(path);
}

/* Record as VRT_SERVICE on VRT_SERVER_1: 200 with a valid answer. */
static void record_ok(const char *rg, const char *instance, int64_t point_ms, struct vrt_resp *r)
{
	char *body = record_doc(VRT_SERVER_1, instance, point_ms, ROOT_HASH);
	post_as(VRT_SERVICE, rg, body, r);
	cr_assert_eq(r->status, 200, "recording %s: %ld\n%s", instance, r->status, r->body);
	vrt_assert_valid(r, "InstanceRetention");
	free(body);
}

/* A replication held by VRT_SERVER_1 in its initial sync, no instance. */
static char *held_replication(const char *name)
{
	return vrt_new_replication(NULL, name, true, "replica_server_id = '" VRT_SERVER_1 "'");
}

static char *instance_id(unsigned n)
{
	return vrt_fmt("a1000000-0000-4000-8000-%012x", n);
}

Test(instances, the_first_instance_ends_the_initial_sync)
{
	char *rg = held_replication("inst-first");
	vrt_assert_state(rg, "notStarted none initialSync false", "before");
	char *id = instance_id(1);
	int64_t point = (int64_t)time(NULL) * 1000 - 300 * 60000; /* 5 hours ago */
	struct vrt_resp r;
	record_ok(rg, id, point, &r);
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:ReplicationId)", rg);
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:InstanceId)", id);
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:Sequence)", "1");
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:Keep)", id);
	cr_assert_eq(vrt_xpath_count(r.body, "/vi:InstanceRetention/vi:Keep"), 1);
	vrt_resp_free(&r);
	vrt_assert_state(rg, "notStarted none ok false", "after the first instance");
	vrt_assert_db("SELECT seq || ' ' || blocks || ' ' || encode(hash_root, 'hex') || ' ' ||"
		      " server_id FROM instances WHERE replication_id = $1::uuid",
		      rg, "1 2 " ROOT_HASH " " VRT_SERVER_1, "the row");

	/* The public reads: the instance, the next sequence number and the
	 * RPO violation computed from its point in time (RPO 240). */
	char *path = vrt_fmt("/api/vr/replications/%s", rg);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)", "2");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationState)", "ok");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:CurrentRpoViolation)", "60");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:Id)", id);
	vrt_assert_xstr(&r,
			"string(/vr:ReplicationGroup/vr:ReplicationGroupInstance/vr:TransferBytes)",
			"8192");
	vrt_resp_free(&r);
	free(path);
	path = vrt_fmt("/api/vr/replications/%s/instances", rg);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance"), 1);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroupInstanceList/vr:Instance/vr:Id)", id);
	vrt_resp_free(&r);
	free(path);

	/* A second, newer instance: no rules, so only it stays; the violation
	 * is gone. */
	char *id2 = instance_id(2);
	record_ok(rg, id2, (int64_t)time(NULL) * 1000 - 60000, &r);
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:Sequence)", "2");
	cr_assert_eq(vrt_xpath_count(r.body, "/vi:InstanceRetention/vi:Keep"), 1);
	vrt_assert_xstr(&r, "string(/vi:InstanceRetention/vi:Keep)", id2);
	vrt_resp_free(&r);
	path = vrt_fmt("/api/vr/replications/%s", rg);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)", "3");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:CurrentRpoViolation)", "0");
	vrt_resp_free(&r);
	free(path);
	vrt_assert_db(
		"SELECT string_agg(id::text, ',') FROM instances WHERE replication_id = $1::uuid",
		rg, id2, "the first instance was pruned");
	free(id2);
	free(id);
	free(rg);
}

Test(instances, recording_again_answers_the_same_and_changes_nothing)
{
	char *rg = held_replication("inst-replay");
	char *id = instance_id(0x10);
	struct vrt_resp first, again;
	record_ok(rg, id, DAY0_MS, &first);
	char *before = vrt_db_fingerprint();
	record_ok(rg, id, DAY0_MS, &again);
	cr_assert_str_eq(again.body, first.body, "a replay answers the same");
	vrt_assert_unchanged_since(before, "after the replay");

	/* The same id with other values is a conflict. */
	char *body = record_doc(VRT_SERVER_1, id, DAY0_MS + 1000, ROOT_HASH);
	struct vrt_resp r;
	post_as(VRT_SERVICE, rg, body, &r);
	vrt_assert_error(&r, 409, "INSTANCE_CONFLICT", "another point in time");
	vrt_resp_free(&r);
	free(body);
	body = record_doc(VRT_SERVER_1, id, DAY0_MS, OTHER_HASH);
	post_as(VRT_SERVICE, rg, body, &r);
	vrt_assert_error(&r, 409, "INSTANCE_CONFLICT", "another hash root");
	vrt_resp_free(&r);
	free(body);
	/* ... and so is the same id for another replication. */
	char *other = held_replication("inst-replay-2");
	char *before_other = vrt_db_fingerprint();
	body = record_doc(VRT_SERVER_1, id, DAY0_MS, ROOT_HASH);
	post_as(VRT_SERVICE, other, body, &r);
	vrt_assert_error(&r, 409, "INSTANCE_CONFLICT", "another replication's instance");
	vrt_resp_free(&r);
	free(body);
	vrt_assert_unchanged_since(before_other, "after the conflicts");
	free(before_other);
	free(other);
	free(before);
	vrt_resp_free(&first);
	vrt_resp_free(&again);
	free(id);
	free(rg);
}

Test(instances, only_the_current_server_records)
{
	char *rg = vrt_new_replication(NULL, "inst-foreign", true,
				       "replica_server_id = '" VRT_SERVER_2 "'");
	char *id = instance_id(0x20);
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	/* worker-1 naming its own server, which does not hold it */
	char *body = record_doc(VRT_SERVER_1, id, DAY0_MS, ROOT_HASH);
	post_as(VRT_SERVICE, rg, body, &r);
	vrt_assert_error(&r, 409, "NOT_REPLICATION_SERVER", "a server that does not hold it");
	vrt_resp_free(&r);
	free(body);
	/* worker-1 naming worker-2's server */
	body = record_doc(VRT_SERVER_2, id, DAY0_MS, ROOT_HASH);
	post_as(VRT_SERVICE, rg, body, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "another credential's server");
	vrt_resp_free(&r);
	/* a tenant, and no credentials */
	char *path = vrt_fmt("/api/internal/replications/%s/instances", rg);
	const char *headers[] = {"Content-Type: " VRT_MT_INTERNAL, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.body = body,
				.body_len = -1};
	vrt_call_ok(&call, &r);
	vrt_assert_error(&r, 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "a tenant");
	vrt_resp_free(&r);
	call.token = NULL;
	vrt_call_ok(&call, &r);
	cr_assert_eq(r.status, 401, "no credentials: %ld", r.status);
	vrt_resp_free(&r);
	free(path);
	vrt_assert_unchanged_since(before, "after the refusals");
	/* worker-2 for its own server records it */
	post_as(VRT_SERVICE_OTHER, rg, body, &r);
	cr_assert_eq(r.status, 200, "%ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	free(body);
	free(before);
	free(id);
	free(rg);
}

Test(instances, bad_input_changes_nothing)
{
	char *rg = held_replication("inst-bad");
	char *before = vrt_db_fingerprint();
	char *id = instance_id(0x30);
	static const char *const bad_roots[] = {"abc", ROOT_HASH "00", NOT_HEX_HASH, ""};
	struct vrt_resp r;
	for (size_t i = 0; i < sizeof bad_roots / sizeof bad_roots[0]; i++) {
		char *body = record_doc(VRT_SERVER_1, id, DAY0_MS, bad_roots[i]);
		post_as(VRT_SERVICE, rg, body, &r);
		vrt_assert_error(&r, 400, "BAD_REQUEST", bad_roots[i]);
		vrt_resp_free(&r);
		free(body);
	}
	static const int64_t bad_points[] = {0, INT64_C(253402300800000), -5};
	for (size_t i = 0; i < sizeof bad_points / sizeof bad_points[0]; i++) {
		char *body = record_doc(VRT_SERVER_1, id, bad_points[i], ROOT_HASH);
		post_as(VRT_SERVICE, rg, body, &r);
		vrt_assert_error(&r, 400, "BAD_REQUEST", "a point in time out of range");
		vrt_resp_free(&r);
		free(body);
	}
	const char *docs[] = {
		"",
		"<InstanceRecord xmlns=\"" VRT_NS_INTERNAL "\"/>",
		"<InstanceRecord xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
		"</ServerId><InstanceId>not-a-uuid</InstanceId><PointInTimeMs>1</PointInTimeMs>"
		"<TransferSeconds>1</TransferSeconds><TransferBytes>1</TransferBytes><Blocks>1"
		"</Blocks><HashRoot>" ROOT_HASH "</HashRoot></InstanceRecord>",
		"<InstanceRecord xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
		"</ServerId><InstanceId>a1000000-0000-4000-8000-000000000030</InstanceId>"
		"<PointInTimeMs>1</PointInTimeMs><TransferSeconds>1</TransferSeconds>"
		"<TransferBytes>99999999999999999999</TransferBytes><Blocks>1</Blocks>"
		"<HashRoot>" ROOT_HASH "</HashRoot></InstanceRecord>",
		"<JobStart xmlns=\"" VRT_NS_INTERNAL "\"><ServerId>" VRT_SERVER_1
		"</ServerId><Deliveries>1</Deliveries></JobStart>",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		post_as(VRT_SERVICE, rg, docs[i], &r);
		cr_assert_eq(r.status, 400, "document %zu: %ld\n%s", i, r.status, r.body);
		vrt_assert_valid(&r, "the Error");
		vrt_resp_free(&r);
	}
	/* a replication that does not exist, and a failback replication */
	char *body = record_doc(VRT_SERVER_1, id, DAY0_MS, ROOT_HASH);
	post_as(VRT_SERVICE, VRT_MISSING, body, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "a missing replication");
	vrt_resp_free(&r);
	post_as(VRT_SERVICE, VRT_FAILBACK_A1, body, &r);
	vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", "a failback replication");
	vrt_resp_free(&r);
	free(body);
	vrt_assert_unchanged_since(before, "after bad input");
	free(before);
	free(id);
	free(rg);
}

/* The ids an answer keeps, in its order, comma-separated (the caller
 * frees). */
static char *kept_ids(const struct vrt_resp *r)
{
	long n = vrt_xpath_count(r->body, "/vi:InstanceRetention/vi:Keep");
	char *out = strdup("");
	cr_assert_not_null(out);
	for (long i = 1; i <= n; i++) {
		char *xp = vrt_fmt("string(/vi:InstanceRetention/vi:Keep[%ld])", i);
		char *v = vrt_xpath_str(r->body, xp);
		char *next = vrt_fmt("%s%s%s", out, i > 1 ? "," : "", v);
		free(out);
		out = next;
		free(v);
		free(xp);
	}
	return out;
}

/* Record instance n at minute n of DAY0 and check what the answer and the
 * rows keep: expected lists instance numbers, newest first. */
static void record_and_keep(const char *rg, unsigned n, const unsigned *expected, size_t count,
			    const char *what)
{
	char *id = instance_id(n);
	struct vrt_resp r;
	record_ok(rg, id, DAY0_MS + (int64_t)n * 60000, &r);
	char *want = strdup("");
	cr_assert_not_null(want);
	for (size_t i = 0; i < count; i++) {
		char *e = instance_id(expected[i]);
		char *next = vrt_fmt("%s%s%s", want, i ? "," : "", e);
		free(want);
		want = next;
		free(e);
	}
	char *got = kept_ids(&r);
	cr_assert_str_eq(got, want, "%s: the answer keeps %s", what, got);
	vrt_assert_db("SELECT string_agg(id::text, ',' ORDER BY seq DESC) FROM instances"
		      " WHERE replication_id = $1::uuid",
		      rg, want, what);
	free(got);
	free(want);
	vrt_resp_free(&r);
	free(id);
}

/* A failover to an older instance holds it: with no rules each record
 * keeps only the newest, but the instance a queued or running job names
 * stays until the job ends. */
Test(instances, a_job_naming_an_instance_keeps_it)
{
	char *rg = held_replication("inst-held");
	record_and_keep(rg, 0x20, (unsigned[]){0x20}, 1, "the first instance");
	char *old = instance_id(0x20);
	char *body = vrt_fmt("<FailoverParams xmlns=\"" VRT_NS_VR "\"><PowerOn>false</PowerOn>"
			     "<InstanceId>%s</InstanceId></FailoverParams>",
			     old);
	struct vrt_accepted a = vrt_accept_as(VRT_ADMIN_A, "failover", rg, VRT_MT_FAILOVER, body);
	char *queued = vrt_fmt("queued %s", old);
	vrt_assert_db("SELECT state || ' ' || (params->>'InstanceId') FROM jobs"
		      " WHERE id = $1::uuid",
		      a.job, queued, "the job");
	free(queued);

	record_and_keep(rg, 0x21, (unsigned[]){0x21, 0x20}, 2, "queued: the named one stays");
	record_and_keep(rg, 0x22, (unsigned[]){0x22, 0x20}, 2, "queued: the one before goes");
	vrt_job_start(a.job);
	record_and_keep(rg, 0x23, (unsigned[]){0x23, 0x20}, 2, "running: the named one stays");

	/* The job ends (canceled while it ran); the next record drops it. */
	char *cancel = vrt_fmt("/api/task/%s/action/cancel", a.task);
	struct vrt_call call = {.method = "POST", .path = cancel, .token = vrt_token(VRT_ADMIN_A)};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_no_content(&r, "the cancel request");
	vrt_resp_free(&r);
	free(cancel);
	vrt_job_complete(a.job, "canceled");
	vrt_assert_db("SELECT state FROM jobs WHERE id = $1::uuid", a.job, "canceled",
		      "the job ended");
	record_and_keep(rg, 0x24, (unsigned[]){0x24}, 1, "after the job: only the newest");
	vrt_accepted_free(&a);
	free(body);
	free(old);
	free(rg);
}

/* Nine days of instances every 20 minutes under 24 x 60 then 7 x 1440,
 * recorded one by one: what stays is the newest, the first instance of
 * each hour of its day, the first of each of the 7 days before, and a
 * pinned one. */
Test(instances, retention_by_the_rules, .timeout = 120)
{
	char *rg = held_replication("inst-retention");
	vrt_db_exec("INSERT INTO retention_rules (replication_id, position, instances,"
		    " distance_minutes) VALUES ($1::uuid, 1, 24, 60), ($1::uuid, 2, 7, 1440)",
		    rg);
	enum { N = 9 * 72 };
	struct vrt_resp r = {0};
	for (unsigned i = 0; i < N; i++) {
		char *id = instance_id(0x1000 + i);
		if (i)
			vrt_resp_free(&r);
		record_ok(rg, id, DAY0_MS + (int64_t)i * 1200000, &r);
		if (i == 5)
			cr_assert_eq(vrt_db_exec("UPDATE instances SET pinned = true"
						 " WHERE id = $1::uuid",
						 id),
				     1);
		free(id);
	}
	char expected[64 * 40] = "";
	size_t len = 0;
	unsigned keep[33];
	size_t k = 0;
	keep[k++] = N - 1;
	for (unsigned h = 0; h < 24; h++)
		keep[k++] = 8 * 72 + (23 - h) * 3;
	for (unsigned d = 0; d < 7; d++)
		keep[k++] = (7 - d) * 72;
	keep[k++] = 5;
	for (size_t i = 0; i < k; i++) {
		char *id = instance_id(0x1000 + keep[i]);
		len += (size_t)snprintf(expected + len, sizeof expected - len, "%s%s", i ? "," : "",
					id);
		free(id);
	}
	/* The answer lists them newest first (by sequence number). */
	cr_assert_eq(vrt_xpath_count(r.body, "/vi:InstanceRetention/vi:Keep"), (long)k, "%s",
		     r.body);
	char got[64 * 40] = "";
	size_t glen = 0;
	for (size_t i = 1; i <= k; i++) {
		char *xp = vrt_fmt("string(/vi:InstanceRetention/vi:Keep[%zu])", i);
		char *v = vrt_xpath_str(r.body, xp);
		glen += (size_t)snprintf(got + glen, sizeof got - glen, "%s%s", i > 1 ? "," : "",
					 v);
		free(v);
		free(xp);
	}
	cr_assert_str_eq(got, expected);
	vrt_resp_free(&r);
	vrt_assert_db("SELECT string_agg(id::text, ',' ORDER BY seq DESC) FROM instances"
		      " WHERE replication_id = $1::uuid",
		      rg, expected, "the rows kept");
	char *path = vrt_fmt("/api/vr/replications/%s/instances", rg);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroupInstanceList/vr:Instance"),
		     (long)k);
	vrt_resp_free(&r);
	free(path);
	path = vrt_fmt("/api/vr/replications/%s", rg);
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *next = vrt_fmt("%d", N + 1);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NextInstanceSequenceNumber)", next);
	free(next);
	vrt_resp_free(&r);
	free(path);
	free(rg);
}
