/* Pairing a site, configuring a replication and reconfiguring it
 * (docs/configure.md, docs/pipeline.md): POST /api/vdc/{id}/peers answers
 * 202 with the Task and the site credential, once; POST
 * /api/vdc/{id}/replications writes the replication, its disks, its
 * retention rules, its Task and its job in one transaction; POST
 * .../action/reconfigure changes the settings only when its job succeeds.
 * Refused requests (roles, tenancy, bad documents, unpaired peers,
 * duplicates) answer an Error and change nothing.
 *
 * Jobs are driven through the internal API, acting as the worker
 * VRT_SERVICE with its replica server VRT_SERVER_1, as test_api_jobs does.
 * The relay is kept away (republish_after of a day) and the tests run one
 * at a time, so that each may compare the whole database before and after
 * its refused requests. Each test pairs sites with UUIDs of its own. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"
#include "integration/helpers.h"

#define PREFIX "vrt-configure"

VRT_SUITE(.name = "configure", .jobs = 1, .redis_db = 12,
	  .config = "[jobs]\nprefix = " PREFIX "\nrepublish_after = 86400\n");

#define N(a)	      (sizeof(a) / sizeof((a)[0]))
#define NS_EXT	      "urn:vrcloud:extension:1"
#define PEER_TYPE     "application/vnd.vmware.hcs.peer+xml"
#define MT_PAIR	      "application/vnd.vmware.hcs.pairVcWithVdcParams+xml"
#define MT_SPEC	      "application/vnd.vmware.hcs.replicationGroupSpecParams+xml"
#define MT_RECONF     "application/vnd.vmware.hcs.reconfigureReplicationGroupParams+xml"
#define CREDENTIAL_H  "X-VRCLOUD-SITE-CREDENTIAL"
#define EXT(name)     "*[local-name()='" name "' and namespace-uri()='" NS_EXT "']"
#define TASK_SECRET   "/v:Task/v:VCloudExtension/" EXT("SiteCredential")
#define PEER_STATE    "/vr:Peer/v:VCloudExtension/" EXT("PairingState")
#define RG_RETENTION  "/vr:ReplicationGroup/v:VCloudExtension/" EXT("RetentionPolicy")

/* --- helpers ------------------------------------------------------------- */

static char *new_uuid(void)
{
	return vrt_db_must("SELECT gen_random_uuid()::text", NULL);
}

/* A POST as token (NULL: admin-a's) with this Content-Type (NULL: none)
 * and body (NULL: none). */
static void post(const char *path, const char *token, const char *content_type,
		 const char *body, struct vrt_resp *r)
{
	char *type = content_type ? vrt_fmt("Content-Type: %s", content_type)
				  : strdup("Content-Type:");
	const char *headers[] = {type, NULL};
	struct vrt_call call = {.method = "POST",
				.path = path,
				.token = token ? token : vrt_token(VRT_ADMIN_A),
				.headers = headers,
				.body = body,
				.body_len = -1};
	cr_assert_eq(vrt_call(&call, r), 0, "POST %s: no response", path);
	free(type);
}

/* An accepted request: 202, the task type with a version, Location = the
 * Task's href, a valid queued Task with this operationName, owned by
 * owner_path (e.g. "/api/vr/peers/ID") of owner_type. Returns the Task's
 * id; the caller frees. */
static char *assert_task_202(const struct vrt_resp *r, const char *operation_name,
			     const char *owner_type, const char *what)
{
	cr_assert_eq(r->status, 202, "%s: %ld, expected 202\n%s", what, r->status, r->body);
	vrt_assert_valid(r, what);
	const char *type = vrt_header(r, "Content-Type");
	cr_assert(type && strncmp(type, VRT_MT_TASK ";version=", strlen(VRT_MT_TASK ";version=")) ==
				  0,
		  "%s: Content-Type '%s'", what, type ? type : "(none)");
	char *href = vrt_xstr(r, "string(/v:Task/@href)");
	const char *location = vrt_header(r, "Location");
	cr_assert_not_null(location, "%s: 202 without Location", what);
	cr_assert_str_eq(location, href, "%s: Location is not the Task's href", what);
	char *prefix = vrt_fmt("%s/api/task/", vrt_public_url());
	cr_assert(strncmp(href, prefix, strlen(prefix)) == 0 && strlen(href + strlen(prefix)) == 36,
		  "%s: Task href %s", what, href);
	vrt_assert_xstr(r, "string(/v:Task/@status)", "queued");
	vrt_assert_xstr(r, "string(/v:Task/v:Progress)", "0");
	vrt_assert_xstr(r, "string(/v:Task/@operationName)", operation_name);
	vrt_assert_xstr(r, "string(/v:Task/v:Owner/@type)", owner_type);
	char *id = strdup(href + strlen(prefix));
	free(prefix);
	free(href);
	return id;
}

/* The id at the end of the Task's Owner href. */
static char *owner_id(const struct vrt_resp *r)
{
	char *href = vrt_xstr(r, "string(/v:Task/v:Owner/@href)");
	size_t n = strlen(href);
	cr_assert_geq(n, 36, "Owner href %s", href);
	char *id = strdup(href + n - 36);
	free(href);
	return id;
}

/* --- jobs, as the worker VRT_SERVICE ----------------------------------------- */

/* outcome "success" or "error" (with a vendor code of the worker's). */
static void job_complete(const char *job, const char *outcome)
{
	if (strcmp(outcome, "error") != 0) {
		vrt_job_complete(job, outcome);
		return;
	}
	char *doc = vrt_job_result_doc(VRT_SERVER_1, "error", "500", "INTERNAL_SERVER_ERROR",
				       "ReplicaStoreFull", "no room");
	struct vrt_resp r;
	vrt_job_call("complete", job, vrt_service_token(VRT_SERVICE), doc, &r);
	cr_assert_eq(r.status, 204, "complete of %s: %ld\n%s", job, r.status, r.body);
	vrt_resp_free(&r);
	free(doc);
}

static void assert_task_status(const char *task, const char *status)
{
	vrt_assert_db("SELECT status FROM tasks WHERE id = $1::uuid", task, status, "the Task");
}

/* --- pairing ------------------------------------------------------------- */

static char *pair_doc(const char *site, const char *name)
{
	return vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\" xmlns:vcloud=\"" VRT_NS_VCLOUD
		       "\" name=\"site\"><vcloud:Description>made by a test</vcloud:Description>"
		       "<SiteUuid>%s</SiteUuid><SiteName>%s</SiteName></PairVcWithVdcParams>",
		       site, name);
}

static char *vdc_peers_path(const char *vdc)
{
	return vrt_fmt("/api/vdc/%s/peers", vdc);
}

/* What an accepted pairing answered. */
struct pairing {
	char *task;
	char *peer;
	char *job;
	char *credential;
};

static void pairing_free(struct pairing *p)
{
	free(p->task);
	free(p->peer);
	free(p->job);
	free(p->credential);
}

static bool is_base64url(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* Pair site (name) with vdc as token's user: 202, the Task, the credential
 * in the header and in the Task's extension (the same), the peer pairing. */
static struct pairing pair_as(const char *vdc, const char *site, const char *name,
			      const char *token)
{
	char *path = vdc_peers_path(vdc), *doc = pair_doc(site, name);
	struct vrt_resp r;
	post(path, token, MT_PAIR, doc, &r);
	struct pairing p;
	p.task = assert_task_202(&r, "hcsPairSite", PEER_TYPE, path);
	p.peer = owner_id(&r);
	vrt_assert_xstr(&r, "string(/v:Task/v:Owner/@name)", name);
	const char *header = vrt_header(&r, CREDENTIAL_H);
	cr_assert_not_null(header, "no %s header", CREDENTIAL_H);
	cr_assert(is_base64url(header, 43), "credential '%s' is not 43 base64url characters",
		  header);
	cr_assert_eq(vrt_header_count(&r, CREDENTIAL_H), 1);
	p.credential = strdup(header);
	vrt_assert_xstr(&r, "string(" TASK_SECRET ")", p.credential);
	vrt_assert_xstr(&r, "string(/v:Task/v:VCloudExtension/@required)", "false");
	p.job = vrt_job_of(p.task);
	vrt_resp_free(&r);
	free(doc);
	free(path);
	return p;
}

static struct pairing pair(const char *vdc, const char *site, const char *name)
{
	return pair_as(vdc, site, name, NULL);
}

static void assert_peer_state(const char *peer, const char *state)
{
	char *path = vrt_fmt("/api/vr/peers/%s", peer);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(" PEER_STATE ")", state);
	vrt_resp_free(&r);
	free(path);
	vrt_assert_db("SELECT state FROM peers WHERE id = $1::uuid", peer, state, "peers.state");
}

Test(pairing, answers_202_with_the_task_and_the_credential_once)
{
	char *site = new_uuid();
	struct pairing p = pair(VRT_VDC_A1, site, "Head Office");

	/* the Task's href: the same Task, without the credential */
	struct vrt_resp again;
	char *path = vrt_fmt("/api/task/%s", p.task);
	vrt_get_ok(path, VRT_ADMIN_A, &again);
	cr_assert_null(vrt_header(&again, CREDENTIAL_H), "a later GET shows the credential");
	cr_assert_null(strstr(again.body, p.credential), "a later GET shows the credential");
	cr_assert_eq(vrt_xpath_count(again.body, "/v:Task/v:VCloudExtension"), 0, "%s",
		     again.body);
	vrt_assert_xstr(&again, "string(/v:Task/@operation)", "Pairing of site Head Office");
	vrt_assert_xstr(&again, "string(/v:Task/v:Organization/@name)", VRT_ORG_A_NAME);
	vrt_assert_xstr(&again, "string(/v:Task/v:User/@name)", "admin-a");
	char *owner = vrt_fmt("%s/api/vr/peers/%s", vrt_public_url(), p.peer);
	vrt_assert_xstr(&again, "string(/v:Task/v:Owner/@href)", owner);
	vrt_resp_free(&again);

	/* the database holds the credential's SHA-256 only */
	char *row = vrt_fmt("%s " VRT_VDC_A1 " " VRT_ORG_A " pairing made by a test", site);
	vrt_assert_db(
		"SELECT site_uuid::text || ' ' || vdc_id::text || ' ' || org_id::text || ' ' ||"
		" state || ' ' || description FROM peers WHERE id = $1::uuid",
		p.peer, row, "the peer");
	char *hashed = vrt_db_value("SELECT count(*) FROM peers WHERE id = $1::uuid"
				    " AND credential_hash = sha256(convert_to($2, 'UTF8'))",
				    p.peer, p.credential);
	cr_assert_str_eq(hashed, "1", "peers.credential_hash is not the credential's SHA-256");
	char *anywhere = vrt_db_value(
		"SELECT count(*) FROM (SELECT row_to_json(t)::text AS r FROM tasks t UNION ALL"
		" SELECT row_to_json(j)::text FROM jobs j UNION ALL"
		" SELECT row_to_json(p)::text FROM peers p) x WHERE strpos(r, $1) > 0",
		p.credential);
	cr_assert_str_eq(anywhere, "0", "the credential itself is stored");

	/* the job of the peer's lane, published */
	char *job = vrt_fmt("queued peer:%s pair " VRT_ORG_A " true", p.peer);
	vrt_assert_db(
		"SELECT state || ' ' || lane || ' ' || action || ' ' || org_id::text || ' ' ||"
		" (published_at IS NOT NULL)::text FROM jobs WHERE id = $1::uuid",
		p.job, job, "the pair job");
	cr_assert(vrt_stream_has(PREFIX, p.job), "the pair job is not in the stream");
	char *params = vrt_fmt("%s Head Office", site);
	vrt_assert_db("SELECT (params->>'SiteUuid') || ' ' || (params->>'SiteName') FROM jobs"
		      " WHERE id = $1::uuid",
		      p.job, params, "the job's parameters");

	/* the Peer, its state, and the VDC's list of peers */
	char *peer_path = vrt_fmt("/api/vr/peers/%s", p.peer);
	struct vrt_resp peer;
	vrt_get_ok(peer_path, VRT_ADMIN_A, &peer);
	vrt_assert_xstr(&peer, "string(/vr:Peer/vr:SiteUuid)", site);
	vrt_assert_xstr(&peer, "string(/vr:Peer/vr:SiteName)", "Head Office");
	vrt_assert_xstr(&peer, "string(/vr:Peer/@name)", "Head Office");
	vrt_assert_xstr(&peer, "string(" PEER_STATE ")", "pairing");
	vrt_resp_free(&peer);
	struct vrt_resp list;
	vrt_get_ok("/api/vdc/" VRT_VDC_A1 "/peers?pageSize=128", VRT_ADMIN_A, &list);
	char *ref = vrt_fmt("count(/v:References/v:Reference[@href='%s/api/vr/peers/%s'])",
			    vrt_public_url(), p.peer);
	cr_assert_eq(vrt_xpath_count(list.body, ref), 1, "the VDC does not list the peer");
	vrt_resp_free(&list);
	free(ref);
	free(peer_path);
	free(params);
	free(job);
	free(anywhere);
	free(hashed);
	free(row);
	free(owner);
	free(path);
	pairing_free(&p);
	free(site);
}

Test(pairing, the_pair_job_marks_the_peer_paired_or_failed_and_a_failed_one_pairs_again)
{
	char *site_ok = new_uuid(), *site_bad = new_uuid();
	struct pairing ok = pair(VRT_VDC_A1, site_ok, "Branch One");
	struct pairing bad = pair(VRT_VDC_A1, site_bad, "Branch Two");
	vrt_job_start(ok.job);
	assert_peer_state(ok.peer, "pairing");
	job_complete(ok.job, "success");
	assert_peer_state(ok.peer, "paired");
	assert_task_status(ok.task, "success");

	vrt_job_start(bad.job);
	job_complete(bad.job, "error");
	assert_peer_state(bad.peer, "error");
	assert_task_status(bad.task, "error");

	/* the failed site pairs again: the same peer, a new credential */
	struct pairing again = pair(VRT_VDC_A1, site_bad, "Branch Two again");
	cr_assert_str_eq(again.peer, bad.peer, "a new attempt made another peer");
	cr_assert_str_neq(again.credential, bad.credential, "the credential was not renewed");
	assert_peer_state(again.peer, "pairing");
	char *hashed = vrt_db_value("SELECT count(*) FROM peers WHERE id = $1::uuid"
				    " AND credential_hash = sha256(convert_to($2, 'UTF8'))",
				    again.peer, again.credential);
	cr_assert_str_eq(hashed, "1", "the new credential's hash is not stored");
	vrt_assert_db("SELECT site_name FROM peers WHERE id = $1::uuid", again.peer,
		      "Branch Two again", "the new site name");
	vrt_job_start(again.job);
	job_complete(again.job, "success");
	assert_peer_state(again.peer, "paired");
	free(hashed);
	pairing_free(&again);
	pairing_free(&bad);
	pairing_free(&ok);
	free(site_bad);
	free(site_ok);
}

/* A pairing refused with an Error: status, minor and vendor code, and the
 * database as it was. */
static void assert_pair_refused(const char *vdc, const char *token, const char *content_type,
				const char *body, long status, const char *minor,
				const char *vendor, const char *what)
{
	char *before = vrt_db_fingerprint();
	char *path = vdc_peers_path(vdc);
	struct vrt_resp r;
	post(path, token, content_type, body, &r);
	vrt_assert_error(&r, status, minor, what);
	cr_assert_null(vrt_header(&r, CREDENTIAL_H), "%s: a refusal carries a credential", what);
	if (vendor)
		vrt_assert_xstr(&r, "string(/v:Error/@vendorSpecificErrorCode)", vendor);
	vrt_assert_unchanged_since(before, what);
	vrt_resp_free(&r);
	free(path);
	free(before);
}

Test(pairing, a_site_paired_with_the_vdc_already_is_409)
{
	char *site = new_uuid();
	struct pairing p = pair(VRT_VDC_A1, site, "Twice");
	char *doc = pair_doc(site, "Twice");
	assert_pair_refused(VRT_VDC_A1, NULL, MT_PAIR, doc, 409, "DUPLICATE_NAME",
			    "SiteAlreadyPaired", "the same site while it pairs");
	vrt_job_start(p.job);
	job_complete(p.job, "success");
	assert_pair_refused(VRT_VDC_A1, NULL, MT_PAIR, doc, 409, "DUPLICATE_NAME",
			    "SiteAlreadyPaired", "the same site once paired");
	/* a fixture site, paired by hand */
	char *fixture = pair_doc("C0000000-0000-4000-8000-0000000000A1", "onprem-a");
	assert_pair_refused(VRT_VDC_A1, NULL, MT_PAIR, fixture, 409, "DUPLICATE_NAME",
			    "SiteAlreadyPaired", "a fixture site, its UUID in capitals");
	/* the same site with another VDC, and a revoked pairing's site again */
	char *vdc = vrt_new_vdc(true, true, true);
	struct pairing other = pair(vdc, site, "Twice");
	struct pairing revoked =
		pair(VRT_VDC_A1, "c0000000-0000-4000-8000-0000000000a3", "onprem-a-old");
	cr_assert_str_neq(revoked.peer, VRT_PEER_A3, "a revoked peer came back");
	pairing_free(&revoked);
	pairing_free(&other);
	free(vdc);
	free(fixture);
	free(doc);
	pairing_free(&p);
	free(site);
}

Test(pairing, org_users_are_403_and_other_orgs_vdcs_404)
{
	char *site = new_uuid();
	char *doc = pair_doc(site, "Not mine");
	assert_pair_refused(VRT_VDC_A1, vrt_token(VRT_USER_A), MT_PAIR, doc, 403,
			    "ACCESS_TO_RESOURCE_IS_FORBIDDEN", NULL, "an org user");
	assert_pair_refused(VRT_VDC_A1, vrt_token(VRT_ADMIN_B), MT_PAIR, doc, 404,
			    "RESOURCE_NOT_FOUND", NULL, "another org's VDC");
	assert_pair_refused(VRT_VDC_B1, NULL, MT_PAIR, doc, 404, "RESOURCE_NOT_FOUND", NULL,
			    "org B's VDC as admin-a");
	assert_pair_refused(VRT_MISSING, NULL, MT_PAIR, doc, 404, "RESOURCE_NOT_FOUND", NULL,
			    "a missing VDC");
	/* the foreign VDC is 404 before the body or the role is looked at */
	assert_pair_refused(VRT_VDC_A1, vrt_token(VRT_ADMIN_B), NULL, NULL, 404,
			    "RESOURCE_NOT_FOUND", NULL, "another org's VDC, no body");
	assert_pair_refused(VRT_VDC_B1, vrt_token(VRT_USER_A), MT_PAIR, doc, 404,
			    "RESOURCE_NOT_FOUND", NULL, "another org's VDC as an org user");
	free(doc);
	free(site);
}

Test(pairing, a_system_administrator_pairs_a_tenants_vdc)
{
	char *site = new_uuid();
	struct pairing p = pair_as(VRT_VDC_B1, site, "Provider made", vrt_token(VRT_ROOT));
	vrt_assert_db("SELECT org_id::text FROM tasks WHERE id = $1::uuid", p.task, VRT_ORG_B,
		      "the Task's org");
	vrt_assert_db("SELECT org_id::text || ' ' || state FROM peers WHERE id = $1::uuid", p.peer,
		      VRT_ORG_B " pairing", "the peer");
	pairing_free(&p);
	free(site);
}

Test(pairing, a_vdc_not_enabled_for_replication_is_403)
{
	char *site = new_uuid();
	char *doc = pair_doc(site, "Nowhere");
	assert_pair_refused(VRT_VDC_B2, vrt_token(VRT_ADMIN_B), MT_PAIR, doc, 403,
			    "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "VdcNotEnabledForReplication",
			    "VDC B2");
	free(doc);
	free(site);
}

Test(pairing, bad_bodies_are_400_or_415_and_change_nothing)
{
	char *site = new_uuid();
	char *good = pair_doc(site, "Good");
	static const char *const wrong_types[] = {"application/json", "text/plain",
						  "application/vnd.vmware.hcs.peer+xml"};
	for (size_t i = 0; i < N(wrong_types); i++)
		assert_pair_refused(VRT_VDC_A1, NULL, wrong_types[i], good, 415,
				    "UNSUPPORTED_MEDIA_TYPE", NULL, wrong_types[i]);
	assert_pair_refused(VRT_VDC_A1, NULL, NULL, good, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
			    "no Content-Type");
	char *bodies[] = {
		strdup(""),
		strdup("<PairVcWithVdcParams"),
		vrt_fmt("<Pair xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid></Pair>", site),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"urn:other\"><SiteUuid>%s</SiteUuid>"
			"<SiteName>x</SiteName></PairVcWithVdcParams>",
			site),
		strdup("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteName>x</SiteName>"
		       "</PairVcWithVdcParams>"),
		strdup("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR
		       "\"><SiteUuid>not-a-uuid</SiteUuid>"
		       "<SiteName>x</SiteName></PairVcWithVdcParams>"),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid>"
			"</PairVcWithVdcParams>",
			site),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid>"
			"<SiteName>   </SiteName></PairVcWithVdcParams>",
			site),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid>"
			"<SiteName>%0300d</SiteName></PairVcWithVdcParams>",
			site, 7),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteName>x</SiteName>"
			"<SiteUuid>%s</SiteUuid></PairVcWithVdcParams>",
			site),
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid>"
			"<SiteName>x</SiteName><Extra/></PairVcWithVdcParams>",
			site),
		vrt_fmt("<!DOCTYPE PairVcWithVdcParams [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			"<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\"><SiteUuid>%s</SiteUuid>"
			"<SiteName>&x;</SiteName></PairVcWithVdcParams>",
			site),
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("body %zu: %.60s", i, bodies[i]);
		assert_pair_refused(VRT_VDC_A1, NULL, MT_PAIR, bodies[i], 400, "BAD_REQUEST", NULL,
				    what);
		free(what);
		free(bodies[i]);
	}
	/* the media type compares case-insensitively; the wildcard XML type is taken */
	struct pairing p = pair(VRT_VDC_A1, site, "Good");
	char *other = new_uuid();
	char *doc = pair_doc(other, "Wildcard");
	struct vrt_resp r;
	post("/api/vdc/" VRT_VDC_A1 "/peers", NULL, "Application/*+XML; charset=utf-8", doc, &r);
	free(assert_task_202(&r, "hcsPairSite", PEER_TYPE, "application/*+xml"));
	vrt_resp_free(&r);
	char *third = new_uuid();
	char *doc3 = pair_doc(third, "Capitals");
	post("/api/vdc/" VRT_VDC_A1 "/peers", NULL,
	     "application/vnd.vmware.hcs.PairVcWithVdcParams+xml", doc3, &r);
	free(assert_task_202(&r, "hcsPairSite", PEER_TYPE, "the type in other capitals"));
	vrt_resp_free(&r);
	free(doc3);
	free(third);
	free(doc);
	free(other);
	pairing_free(&p);
	free(good);
	free(site);
}

Test(pairing, a_repeated_operation_key_answers_the_first_task_without_the_credential)
{
	char *site = new_uuid();
	char *key = vrt_fmt("pair-%s", site);
	char *doc =
		vrt_fmt("<PairVcWithVdcParams xmlns=\"" VRT_NS_VR "\" operationKey=\"%s\">"
			"<SiteUuid>%s</SiteUuid><SiteName>Keyed</SiteName></PairVcWithVdcParams>",
			key, site);
	struct vrt_resp first, again;
	post("/api/vdc/" VRT_VDC_A1 "/peers", NULL, MT_PAIR, doc, &first);
	char *task = assert_task_202(&first, "hcsPairSite", PEER_TYPE, "first");
	cr_assert_not_null(vrt_header(&first, CREDENTIAL_H));
	vrt_assert_xstr(&first, "string(/v:Task/@operationKey)", key);
	char *before = vrt_db_fingerprint();
	post("/api/vdc/" VRT_VDC_A1 "/peers", NULL, MT_PAIR, doc, &again);
	char *again_task = assert_task_202(&again, "hcsPairSite", PEER_TYPE, "again");
	cr_assert_str_eq(again_task, task, "a repeated operationKey made another Task");
	cr_assert_null(vrt_header(&again, CREDENTIAL_H), "the credential is shown twice");
	cr_assert_eq(vrt_xpath_count(again.body, "/v:Task/v:VCloudExtension"), 0);
	vrt_assert_unchanged_since(before, "after the repeated request");
	free(again_task);
	free(before);
	free(task);
	vrt_resp_free(&again);
	vrt_resp_free(&first);
	free(doc);
	free(key);
	free(site);
}

/* --- configure --------------------------------------------------------------- */

/* A ReplicationGroupSpecParams: peer (NULL: no PeerId), then raw XML of
 * the children after VmName and Rpo (options, disks, retention). */
static char *spec_doc(const char *peer, const char *vm, const char *rpo, const char *rest)
{
	char *peer_elem = peer ? vrt_fmt("<PeerId>%s</PeerId>", peer) : strdup("");
	char *doc = vrt_fmt("<ReplicationGroupSpecParams xmlns=\"" VRT_NS_VR "\" name=\"%s\">"
			    "<Description>made by a test</Description>%s<VmName>%s</VmName>"
			    "<Rpo>%s</Rpo>%s</ReplicationGroupSpecParams>",
			    vm, peer_elem, vm, rpo, rest);
	free(peer_elem);
	return doc;
}

#define ONE_DISK "<Disk><DeviceKey>2000</DeviceKey><SizeBytes>1073741824</SizeBytes></Disk>"

static char *configure_path(const char *vdc)
{
	return vrt_fmt("/api/vdc/%s/replications", vdc);
}

/* What an accepted configure answered. */
struct configured {
	char *task;
	char *rg;
	char *job;
};

static void configured_free(struct configured *c)
{
	free(c->task);
	free(c->rg);
	free(c->job);
}

static struct configured configure_as(const char *vdc, const char *doc, const char *token)
{
	char *path = configure_path(vdc);
	struct vrt_resp r;
	post(path, token, MT_SPEC, doc, &r);
	struct configured c;
	c.task = assert_task_202(&r, "hcsConfigureReplication", VRT_MT_RG, path);
	c.rg = owner_id(&r);
	cr_assert_null(vrt_header(&r, CREDENTIAL_H));
	c.job = vrt_job_of(c.task);
	vrt_resp_free(&r);
	free(path);
	return c;
}

static struct configured configure(const char *vdc, const char *doc)
{
	return configure_as(vdc, doc, NULL);
}

static void assert_configure_refused(const char *vdc, const char *token,
				     const char *content_type, const char *body, long status,
				     const char *minor, const char *vendor, const char *what)
{
	char *before = vrt_db_fingerprint();
	char *path = configure_path(vdc);
	struct vrt_resp r;
	post(path, token, content_type, body, &r);
	vrt_assert_error(&r, status, minor, what);
	if (vendor)
		vrt_assert_xstr(&r, "string(/v:Error/@vendorSpecificErrorCode)", vendor);
	vrt_assert_unchanged_since(before, what);
	vrt_resp_free(&r);
	free(path);
	free(before);
}

static char *vm_name(const char *base)
{
	char *id = new_uuid();
	char *name = vrt_fmt("%s-%.8s", base, id);
	free(id);
	return name;
}

Test(configure, answers_202_and_writes_the_replication_its_disks_rules_task_and_job)
{
	char *vm = vm_name("web");
	char *doc = spec_doc(
		VRT_PEER_A1, vm, "15",
		"<QuiesceGuestEnabled>true</QuiesceGuestEnabled>"
		"<NetworkCompressionEnabled>1</NetworkCompressionEnabled>"
		"<Disk><DeviceKey>2000</DeviceKey><Name>system.vmdk</Name>"
		"<SizeBytes>17179869184</SizeBytes></Disk>"
		"<Disk><DeviceKey>2001</DeviceKey><SizeBytes>4096</SizeBytes></Disk>"
		"<RetentionPolicy><Rule><NumberOfInstances>24</NumberOfInstances>"
		"<DistanceMinutes>60</DistanceMinutes></Rule><Rule><NumberOfInstances>7"
		"</NumberOfInstances><DistanceMinutes>1440</DistanceMinutes></Rule>"
		"</RetentionPolicy>");
	struct configured c = configure(VRT_VDC_A1, doc);

	char *row = vrt_fmt("%s " VRT_VDC_A1 " " VRT_PEER_A1 " " VRT_ORG_A
			    " incoming 15 true true made by a test",
			    vm);
	vrt_assert_db(
		"SELECT name || ' ' || vdc_id::text || ' ' || peer_id::text || ' ' ||"
		" org_id::text || ' ' || kind || ' ' || rpo_minutes || ' ' || quiesce_guest ||"
		" ' ' || network_compression || ' ' || description FROM replications"
		" WHERE id = $1::uuid",
		c.rg, row, "the replication");
	char *state = vrt_replication_state(c.rg);
	cr_assert_str_eq(state, "notStarted none initialSync false");
	vrt_assert_db("SELECT string_agg(device_key || ':' || name || ':' || size_bytes, ' '"
		      " ORDER BY device_key) FROM disks WHERE replication_id = $1::uuid",
		      c.rg, "2000:system.vmdk:17179869184 2001:disk1:4096", "the disks");
	vrt_assert_db(
		"SELECT string_agg(position || ':' || instances || 'x' || distance_minutes, ' '"
		" ORDER BY position) FROM retention_rules WHERE replication_id = $1::uuid",
		c.rg, "1:24x60 2:7x1440", "the retention rules");
	char *job = vrt_fmt("queued replication:%s configure " VRT_ORG_A " true", c.rg);
	vrt_assert_db(
		"SELECT state || ' ' || lane || ' ' || action || ' ' || org_id::text || ' ' ||"
		" (published_at IS NOT NULL)::text FROM jobs WHERE id = $1::uuid",
		c.job, job, "the configure job");
	cr_assert(vrt_stream_has(PREFIX, c.job), "the configure job is not in the stream");
	char *params = vrt_fmt("%s 2 17179869184", vm);
	vrt_assert_db(
		"SELECT (params->>'VmName') || ' ' || jsonb_array_length(params->'Disks') || ' ' ||"
		" (params->'Disks'->0->>'SizeBytes') FROM jobs WHERE id = $1::uuid",
		c.job, params, "the configure job's parameters");

	/* the ReplicationGroup, before its job ran */
	char *path = vrt_fmt("/api/vr/replications/%s", c.rg);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/@name)", vm);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:Rpo)", "15");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:QuiesceGuestEnabled)", "true");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:NetworkCompressionEnabled)", "true");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:ReplicationState)", "initialSync");
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:RecoveryState)", "notStarted");
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroup/vr:PlaceholderVappId"), 0,
		     "a placeholder before the configure job ran");
	vrt_assert_xstr(&r,
			"string(" RG_RETENTION "/" EXT("Rule") "[2]/" EXT("NumberOfInstances") ")",
			"7");
	vrt_assert_xstr(&r,
			"string(" RG_RETENTION "/" EXT("Rule") "[2]/" EXT("DistanceMinutes") ")",
			"1440");
	cr_assert_eq(vrt_xpath_count(r.body, RG_RETENTION "/" EXT("Rule")), 2, "%s", r.body);
	vrt_resp_free(&r);
	free(path);
	free(params);
	free(job);
	free(state);
	free(row);
	configured_free(&c);
	free(doc);
	free(vm);
}

Test(configure, the_configure_job_places_the_placeholder_or_fails_the_replication)
{
	char *vm_ok = vm_name("app"), *vm_bad = vm_name("db");
	char *doc_ok = spec_doc(VRT_PEER_A1, vm_ok, "60", ONE_DISK);
	char *doc_bad = spec_doc(VRT_PEER_A1, vm_bad, "60", ONE_DISK);
	struct configured ok = configure(VRT_VDC_A1, doc_ok);
	struct configured bad = configure(VRT_VDC_A1, doc_bad);

	vrt_job_start(ok.job);
	vrt_assert_db("SELECT count(*) FROM vapps WHERE replication_id = $1::uuid", ok.rg, "0",
		      "a placeholder while the job runs");
	job_complete(ok.job, "success");
	assert_task_status(ok.task, "success");
	char *state = vrt_replication_state(ok.rg);
	cr_assert_str_eq(state, "notStarted none initialSync false");
	free(state);
	char *vapp = vrt_db_must("SELECT id::text FROM vapps WHERE replication_id = $1::uuid"
				 " AND kind = 'placeholder' AND deleted_at IS NULL",
				 ok.rg);
	vrt_assert_db("SELECT placeholder_vapp_id::text FROM replications WHERE id = $1::uuid",
		      ok.rg, vapp, "placeholder_vapp_id");
	char *vapp_row = vrt_fmt("%s off " VRT_VDC_A1, vm_ok);
	vrt_assert_db("SELECT name || ' ' || power_state || ' ' || vdc_id::text FROM vapps"
		      " WHERE id = $1::uuid",
		      vapp, vapp_row, "the placeholder vApp");
	char *path = vrt_fmt("/api/vr/replications/%s", ok.rg);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *urn = vrt_fmt("urn:vcloud:vapp:%s", vapp);
	vrt_assert_xstr(&r, "string(/vr:ReplicationGroup/vr:PlaceholderVappId)", urn);
	/* no retention policy: no extension */
	cr_assert_eq(vrt_xpath_count(r.body, "/vr:ReplicationGroup/v:VCloudExtension"), 0, "%s",
		     r.body);
	vrt_resp_free(&r);

	vrt_job_start(bad.job);
	job_complete(bad.job, "error");
	assert_task_status(bad.task, "error");
	state = vrt_replication_state(bad.rg);
	cr_assert_str_eq(state, "notStarted none error false");
	vrt_assert_db("SELECT count(*) || ' ' || coalesce(max(placeholder_vapp_id::text), '-')"
		      " FROM replications r LEFT JOIN vapps v ON v.replication_id = r.id"
		      " WHERE r.id = $1::uuid",
		      bad.rg, "1 -", "no placeholder after a failed configure");
	free(state);
	free(urn);
	free(path);
	free(vapp_row);
	free(vapp);
	configured_free(&bad);
	configured_free(&ok);
	free(doc_bad);
	free(doc_ok);
	free(vm_bad);
	free(vm_ok);
}

static char *disks_xml(int n, bool same_key)
{
	size_t size = (size_t)n * 96 + 1;
	char *xml = calloc(1, size);
	cr_assert_not_null(xml);
	for (int i = 0; i < n; i++)
		snprintf(xml + strlen(xml), size - strlen(xml),
			 "<Disk><DeviceKey>%d</DeviceKey><SizeBytes>4096</SizeBytes></Disk>",
			 same_key ? 2000 : 2000 + i);
	return xml;
}

static char *rules_xml(int n, int instances, int first_distance, int step)
{
	size_t size = (size_t)n * 128 + 64;
	char *xml = calloc(1, size);
	cr_assert_not_null(xml);
	strcat(xml, "<RetentionPolicy>");
	for (int i = 0; i < n; i++)
		snprintf(xml + strlen(xml), size - strlen(xml),
			 "<Rule><NumberOfInstances>%d</NumberOfInstances>"
			 "<DistanceMinutes>%d</DistanceMinutes></Rule>",
			 instances, first_distance + i * step);
	strcat(xml, "</RetentionPolicy>");
	return xml;
}

Test(configure, invalid_documents_are_400_and_change_nothing)
{
	char *d65 = disks_xml(65, false), *d2same = disks_xml(2, true);
	char *r17 = rules_xml(17, 1, 60, 60), *r_total = rules_xml(2, 600, 60, 60);
	char *r_down = rules_xml(2, 4, 1440, -1380), *r_equal = rules_xml(2, 4, 60, 0);
	char *long_name = calloc(1, 300);
	memset(long_name, 'v', 256);
	struct {
		const char *peer, *vm, *rpo, *rest, *why;
	} cases[] = {
		{VRT_PEER_A1, "no-disk", "15", "", "no disk"},
		{VRT_PEER_A1, "many-disks", "15", d65, "65 disks"},
		{VRT_PEER_A1, "same-keys", "15", d2same, "two disks with one device key"},
		{VRT_PEER_A1, "empty-disk", "15",
		 "<Disk><DeviceKey>1</DeviceKey><SizeBytes>0</SizeBytes></Disk>", "a 0-byte disk"},
		{VRT_PEER_A1, "huge-disk", "15",
		 "<Disk><DeviceKey>1</DeviceKey><SizeBytes>70368744177665</SizeBytes></Disk>",
		 "a disk over 64 TiB"},
		{VRT_PEER_A1, "odd-disk", "15",
		 "<Disk><DeviceKey>1</DeviceKey><SizeBytes>1024</SizeBytes></Disk>",
		 "a disk that is not a whole number of 4 KiB blocks"},
		{VRT_PEER_A1, "negative-key", "15",
		 "<Disk><DeviceKey>-1</DeviceKey><SizeBytes>1</SizeBytes></Disk>",
		 "a negative device key"},
		{VRT_PEER_A1, "bad-disk-name", "15",
		 "<Disk><DeviceKey>1</DeviceKey><Name>  </Name><SizeBytes>4096</SizeBytes></Disk>",
		 "a blank disk name"},
		{VRT_PEER_A1, "rpo-0", "0", ONE_DISK, "RPO 0"},
		{VRT_PEER_A1, "rpo-1441", "1441", ONE_DISK, "RPO 1441"},
		{VRT_PEER_A1, "rpo-text", "fifteen", ONE_DISK, "RPO not a number"},
		{VRT_PEER_A1, "rpo-empty", "", ONE_DISK, "RPO empty"},
		{VRT_PEER_A1, "rules-17", "15", NULL, "17 retention rules"},
		{VRT_PEER_A1, "rules-total", "15", NULL, "1200 instances in all"},
		{VRT_PEER_A1, "rules-down", "15", NULL, "distances that shrink"},
		{VRT_PEER_A1, "rules-equal", "15", NULL, "equal distances"},
		{VRT_PEER_A1, "rule-none", "15",
		 ONE_DISK "<RetentionPolicy><Rule><NumberOfInstances>0</NumberOfInstances>"
			  "<DistanceMinutes>60</DistanceMinutes></Rule></RetentionPolicy>",
		 "a rule of 0 instances"},
		{VRT_PEER_A1, "rule-1025", "15",
		 ONE_DISK "<RetentionPolicy><Rule><NumberOfInstances>1025</NumberOfInstances>"
			  "<DistanceMinutes>60</DistanceMinutes></Rule></RetentionPolicy>",
		 "a rule of 1025 instances"},
		{VRT_PEER_A1, "rule-4-minutes", "15",
		 ONE_DISK "<RetentionPolicy><Rule><NumberOfInstances>2</NumberOfInstances>"
			  "<DistanceMinutes>4</DistanceMinutes></Rule></RetentionPolicy>",
		 "a distance of 4 minutes"},
		{VRT_PEER_A1, "   ", "15", ONE_DISK, "a blank VM name"},
		{VRT_PEER_A1, long_name, "15", ONE_DISK, "a VM name of 256 characters"},
		{"not-a-peer", "bad-peer", "15", ONE_DISK, "a PeerId that is no id"},
		{VRT_PEER_A1, "bad-switch", "15",
		 "<QuiesceGuestEnabled>yes</QuiesceGuestEnabled>" ONE_DISK, "QuiesceGuestEnabled yes"},
		{VRT_PEER_A1, "wrong-order", "15",
		 ONE_DISK "<QuiesceGuestEnabled>true</QuiesceGuestEnabled>", "options after disks"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char *rest = NULL;
		if (!cases[i].rest)
			rest = vrt_fmt(ONE_DISK "%s",
				       strcmp(cases[i].vm, "rules-17") == 0	 ? r17
				       : strcmp(cases[i].vm, "rules-total") == 0 ? r_total
				       : strcmp(cases[i].vm, "rules-down") == 0	 ? r_down
										 : r_equal);
		char *doc = spec_doc(cases[i].peer, cases[i].vm, cases[i].rpo,
				     rest ? rest : cases[i].rest);
		assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, doc, 400, "BAD_REQUEST", NULL,
					 cases[i].why);
		free(doc);
		free(rest);
	}
	/* not the document, or not XML at all */
	char *good = spec_doc(VRT_PEER_A1, "good", "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_A1, NULL, "application/json", good, 415,
				 "UNSUPPORTED_MEDIA_TYPE", NULL, "application/json");
	assert_configure_refused(VRT_VDC_A1, NULL, NULL, good, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
				 "no Content-Type");
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, NULL, 400, "BAD_REQUEST", NULL,
				 "no body");
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC,
				 "<ReconfigureReplicationGroupParams xmlns=\"" VRT_NS_VR "\"/>",
				 400, "BAD_REQUEST", NULL, "another root");
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC,
				 "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
				 "<ReplicationGroupSpecParams xmlns=\"" VRT_NS_VR
				 "\"><VmName>&x;</VmName><Rpo>15</Rpo>" ONE_DISK
				 "</ReplicationGroupSpecParams>",
				 400, "BAD_REQUEST", NULL, "a DOCTYPE");
	free(good);
	free(long_name);
	free(r_equal);
	free(r_down);
	free(r_total);
	free(r17);
	free(d2same);
	free(d65);
}

Test(configure, the_limits_themselves_are_accepted)
{
	char *vm = vm_name("limits");
	char *disks = disks_xml(64, false);
	/* 16 rules, 1024 instances in all, distances from 5 minutes to a year */
	char *rules = calloc(1, 16 * 128 + 64);
	strcat(rules, "<RetentionPolicy>");
	static const int distances[16] = {5,     10,    15,    30,     60,     120,    240,    480,
					  720,   1440,  2880,  10080,  20160,  43200,  262800, 525600};
	for (int i = 0; i < 16; i++)
		sprintf(rules + strlen(rules),
			"<Rule><NumberOfInstances>64</NumberOfInstances>"
			"<DistanceMinutes>%d</DistanceMinutes></Rule>",
			distances[i]);
	strcat(rules, "</RetentionPolicy>");
	char *rest = vrt_fmt("%s%s", disks, rules);
	char *doc = spec_doc(VRT_PEER_A1, vm, "1440", rest);
	struct configured c = configure(VRT_VDC_A1, doc);
	vrt_assert_db("SELECT count(*) FROM disks WHERE replication_id = $1::uuid", c.rg, "64",
		      "64 disks");
	vrt_assert_db("SELECT sum(instances) || ' ' || count(*) FROM retention_rules"
		      " WHERE replication_id = $1::uuid",
		      c.rg, "1024 16", "16 rules");
	configured_free(&c);
	free(doc);
	free(rest);
	free(rules);
	free(disks);
	free(vm);
}

Test(configure, unpaired_unknown_and_ambiguous_peers_are_refused)
{
	char *site = new_uuid();
	struct pairing p = pair(VRT_VDC_A1, site, "Not yet");
	char *doc = spec_doc(p.peer, "on-a-pairing-site", "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, doc, 409, "CONFLICT", "PeerNotPaired",
				 "a peer whose pairing runs");
	vrt_job_start(p.job);
	job_complete(p.job, "error");
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, doc, 409, "CONFLICT", "PeerNotPaired",
				 "a peer whose pairing failed");
	static const char *const unknown[] = {VRT_PEER_B1, VRT_PEER_A3, VRT_MISSING};
	for (size_t i = 0; i < N(unknown); i++) {
		char *other = spec_doc(unknown[i], "elsewhere", "15", ONE_DISK);
		assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, other, 400, "BAD_REQUEST",
					 "UnknownPeer", unknown[i]);
		free(other);
	}
	/* a peer of another VDC of the same org */
	char *vdc = vrt_new_vdc(true, true, true);
	char *other_peer = vrt_db_must("SELECT id::text FROM peers WHERE vdc_id = $1::uuid", vdc);
	char *other = spec_doc(other_peer, "wrong-vdc", "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, other, 400, "BAD_REQUEST",
				 "UnknownPeer", "a peer of another VDC");
	/* no PeerId: VDC A1 has several paired peers; the new VDC exactly one */
	char *bare = spec_doc(NULL, "no-peer-named", "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, bare, 400, "BAD_REQUEST",
				 "UnknownPeer", "no PeerId among several peers");
	struct configured c = configure(vdc, bare);
	vrt_assert_db("SELECT peer_id::text FROM replications WHERE id = $1::uuid", c.rg,
		      other_peer, "the VDC's only peer");
	/* and a VDC with no paired peer at all */
	vrt_db_exec("UPDATE peers SET state = 'error' WHERE vdc_id = $1::uuid", vdc);
	char *bare2 = spec_doc(NULL, "no-peer-at-all", "15", ONE_DISK);
	assert_configure_refused(vdc, NULL, MT_SPEC, bare2, 400, "BAD_REQUEST", "UnknownPeer",
				 "no PeerId and no paired peer");
	/* PeerId as a URN */
	char *urn = vrt_fmt("urn:vcloud:peer:%s", VRT_PEER_A2);
	char *vm = vm_name("urn");
	char *by_urn = spec_doc(urn, vm, "15", ONE_DISK);
	struct configured u = configure(VRT_VDC_A1, by_urn);
	vrt_assert_db("SELECT peer_id::text FROM replications WHERE id = $1::uuid", u.rg,
		      VRT_PEER_A2, "the peer named by its URN");
	configured_free(&u);
	free(by_urn);
	free(vm);
	free(urn);
	free(bare2);
	configured_free(&c);
	free(bare);
	free(other);
	free(other_peer);
	free(vdc);
	free(doc);
	pairing_free(&p);
	free(site);
}

Test(configure, a_vm_replicated_from_the_peer_already_is_409)
{
	char *vm = vm_name("dup");
	char *doc = spec_doc(VRT_PEER_A1, vm, "15", ONE_DISK);
	struct configured c = configure(VRT_VDC_A1, doc);
	assert_configure_refused(VRT_VDC_A1, NULL, MT_SPEC, doc, 409, "DUPLICATE_NAME",
				 "ReplicationExists", "the same VM twice");
	/* the same name on another peer is another VM */
	char *doc2 = spec_doc(VRT_PEER_A2, vm, "15", ONE_DISK);
	struct configured c2 = configure(VRT_VDC_A1, doc2);
	configured_free(&c2);
	free(doc2);
	/* once the VM was recovered in the cloud (and failed back), the site
	 * protects it again */
	vrt_db_exec("UPDATE replications SET recovery_state = 'recovered' WHERE id = $1::uuid", c.rg);
	struct configured again = configure(VRT_VDC_A1, doc);
	cr_assert_str_neq(again.rg, c.rg);
	configured_free(&again);
	configured_free(&c);
	free(doc);
	free(vm);
}

Test(configure, tenancy_roles_and_the_vdcs_flags)
{
	char *vm = vm_name("tenancy");
	char *doc = spec_doc(VRT_PEER_A1, vm, "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_A1, vrt_token(VRT_ADMIN_B), MT_SPEC, doc, 404,
				 "RESOURCE_NOT_FOUND", NULL, "another org's VDC");
	assert_configure_refused(VRT_VDC_A1, vrt_token(VRT_ADMIN_B), NULL, NULL, 404,
				 "RESOURCE_NOT_FOUND", NULL, "another org's VDC, no body");
	assert_configure_refused(VRT_MISSING, NULL, MT_SPEC, doc, 404, "RESOURCE_NOT_FOUND", NULL,
				 "a missing VDC");
	char *b2 = spec_doc(VRT_PEER_B1, vm, "15", ONE_DISK);
	assert_configure_refused(VRT_VDC_B2, vrt_token(VRT_ADMIN_B), MT_SPEC, b2, 403,
				 "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "VdcNotEnabledForReplication",
				 "VDC B2");
	/* org users configure (only pairing needs an administrator); so does root */
	struct configured c = configure_as(VRT_VDC_A1, doc, vrt_token(VRT_USER_A));
	vrt_assert_db("SELECT user_name FROM tasks WHERE id = $1::uuid", c.task, "user-a",
		      "the Task's user");
	char *vm2 = vm_name("root");
	char *doc2 = spec_doc(VRT_PEER_B1, vm2, "15", ONE_DISK);
	struct configured r = configure_as(VRT_VDC_B1, doc2, vrt_token(VRT_ROOT));
	vrt_assert_db("SELECT org_id::text FROM replications WHERE id = $1::uuid", r.rg, VRT_ORG_B,
		      "the replication's org");
	configured_free(&r);
	free(doc2);
	free(vm2);
	configured_free(&c);
	free(b2);
	free(doc);
	free(vm);
}

/* --- reconfigure --------------------------------------------------------------- */

static void reconfigure_post(const char *rg, const char *content_type, const char *body,
			     struct vrt_resp *r)
{
	char *path = vrt_fmt("/api/vr/replications/%s/action/reconfigure", rg);
	post(path, NULL, content_type, body, r);
	free(path);
}

/* An accepted reconfigure: its job (the caller frees). */
static char *reconfigure(const char *rg, const char *body)
{
	struct vrt_resp r;
	reconfigure_post(rg, MT_RECONF, body, &r);
	char *task = assert_task_202(&r, "hcsReconfigure", VRT_MT_RG, "reconfigure");
	char *job = vrt_job_of(task);
	char *row = vrt_fmt("queued replication:%s reconfigure", rg);
	vrt_assert_db("SELECT state || ' ' || lane || ' ' || action FROM jobs WHERE id = $1::uuid",
		      job, row, "the reconfigure job");
	cr_assert(vrt_stream_has(PREFIX, job));
	free(row);
	free(task);
	vrt_resp_free(&r);
	return job;
}

/* Rpo, quiescing, compression and the rules, as the database and the
 * ReplicationGroup say: "30 true false 4x60,7x1440" ("-": no rule). */
static void assert_settings(const char *rg, const char *expected, const char *what)
{
	vrt_assert_db(
		"SELECT rpo_minutes || ' ' || quiesce_guest || ' ' || network_compression ||"
		" ' ' || coalesce((SELECT string_agg(instances || 'x' || distance_minutes, ','"
		"   ORDER BY position) FROM retention_rules WHERE replication_id = r.id), '-')"
		" FROM replications r WHERE id = $1::uuid",
		rg, expected, what);
	char *path = vrt_fmt("/api/vr/replications/%s", rg);
	struct vrt_resp r;
	vrt_get_ok(path, VRT_ADMIN_A, &r);
	char *doc = vrt_xstr(&r, "concat(/vr:ReplicationGroup/vr:Rpo, ' ',"
				 " /vr:ReplicationGroup/vr:QuiesceGuestEnabled, ' ',"
				 " /vr:ReplicationGroup/vr:NetworkCompressionEnabled)");
	cr_assert(strncmp(expected, doc, strlen(doc)) == 0 && expected[strlen(doc)] == ' ',
		  "%s: the document says '%s', expected '%s'", what, doc, expected);
	const char *rules = strrchr(expected, ' ') + 1;
	long n = vrt_xpath_count(r.body, RG_RETENTION "/" EXT("Rule"));
	long expected_n = 0;
	if (strcmp(rules, "-") != 0) {
		expected_n = 1;
		for (const char *c = rules; *c; c++)
			expected_n += *c == ',';
	}
	cr_assert_eq(n, expected_n, "%s: %ld rules in the document, expected %ld\n%s", what, n,
		     expected_n, r.body);
	free(doc);
	vrt_resp_free(&r);
	free(path);
}

#define RECONF(children)                                                                           \
	"<ReconfigureReplicationGroupParams xmlns=\"" VRT_NS_VR "\">" children                     \
	"</ReconfigureReplicationGroupParams>"

Test(reconfigure, the_settings_apply_only_when_the_job_succeeds)
{
	char *rg = vrt_new_replication(NULL, "reconfigured", false, NULL);
	assert_settings(rg, "240 false false -", "before");
	char *job = reconfigure(
		rg, RECONF("<Rpo>30</Rpo><QuiesceGuestEnabled>true</QuiesceGuestEnabled>"
			   "<NetworkCompressionEnabled>true</NetworkCompressionEnabled>"
			   "<RetentionPolicy><Rule><NumberOfInstances>4</NumberOfInstances>"
			   "<DistanceMinutes>60</DistanceMinutes></Rule><Rule><NumberOfInstances>7"
			   "</NumberOfInstances><DistanceMinutes>1440</DistanceMinutes></Rule>"
			   "</RetentionPolicy>"));
	/* beside the settings, the replication's peer (for the site's command) */
	vrt_assert_db("SELECT (params - 'PeerId')::text FROM jobs WHERE id = $1::uuid", job,
		      "{\"Rpo\": 30, \"RetentionPolicy\": [[4, 60], [7, 1440]], "
		      "\"QuiesceGuestEnabled\": true, \"NetworkCompressionEnabled\": true}",
		      "the job's parameters");
	assert_settings(rg, "240 false false -", "accepted");
	vrt_job_start(job);
	assert_settings(rg, "240 false false -", "running");
	job_complete(job, "success");
	assert_settings(rg, "30 true true 4x60,7x1440", "after the job");
	char *state = vrt_replication_state(rg);
	cr_assert_str_eq(state, "notStarted none ok false");
	free(state);
	free(job);
	free(rg);
}

Test(reconfigure, what_the_request_leaves_out_keeps_its_value)
{
	char *rg = vrt_new_replication(NULL, "partly", false,
				       "rpo_minutes = 45, quiesce_guest = true");
	vrt_db_exec("INSERT INTO retention_rules VALUES ($1::uuid, 1, 12, 120)", rg);
	assert_settings(rg, "45 true false 12x120", "before");
	char *job = reconfigure(rg, RECONF("<NetworkCompressionEnabled> true </NetworkCompressionEnabled>"));
	vrt_job_start(job);
	job_complete(job, "success");
	assert_settings(rg, "45 true true 12x120", "compression only");
	free(job);
	job = reconfigure(rg, RECONF("<Rpo>5</Rpo>"));
	vrt_job_start(job);
	job_complete(job, "success");
	assert_settings(rg, "5 true true 12x120", "RPO only");
	free(job);
	/* an empty policy: the newest instance only */
	job = reconfigure(rg, RECONF("<RetentionPolicy/>"));
	vrt_job_start(job);
	job_complete(job, "success");
	assert_settings(rg, "5 true true -", "an empty policy");
	free(job);
	/* no body at all: a job that changes nothing */
	struct vrt_resp r;
	reconfigure_post(rg, NULL, NULL, &r);
	char *task = assert_task_202(&r, "hcsReconfigure", VRT_MT_RG, "no body");
	job = vrt_job_of(task);
	vrt_assert_db("SELECT (params - 'PeerId')::text FROM jobs WHERE id = $1::uuid", job, "{}",
		      "no settings");
	vrt_assert_db("SELECT j.params->>'PeerId' = r.peer_id::text FROM jobs j"
		      " JOIN replications r ON j.lane = 'replication:' || r.id WHERE j.id = $1::uuid",
		      job, "t", "the job's PeerId");
	vrt_job_start(job);
	job_complete(job, "success");
	assert_settings(rg, "5 true true -", "nothing named");
	vrt_resp_free(&r);
	free(task);
	free(job);
	free(rg);
}

Test(reconfigure, a_failed_job_changes_nothing)
{
	char *rg = vrt_new_replication(NULL, "not-reconfigured", false, NULL);
	char *job = reconfigure(rg, RECONF("<Rpo>15</Rpo><RetentionPolicy><Rule>"
					   "<NumberOfInstances>24</NumberOfInstances>"
					   "<DistanceMinutes>60</DistanceMinutes></Rule>"
					   "</RetentionPolicy>"));
	char *task = vrt_db_must("SELECT task_id::text FROM jobs WHERE id = $1::uuid", job);
	vrt_job_start(job);
	job_complete(job, "error");
	assert_task_status(task, "error");
	assert_settings(rg, "240 false false -", "after the failed job");
	free(task);
	free(job);
	free(rg);
}

static void assert_reconfigure_refused(const char *rg, const char *content_type,
				       const char *body, long status, const char *minor,
				       const char *what)
{
	char *before = vrt_db_fingerprint();
	struct vrt_resp r;
	reconfigure_post(rg, content_type, body, &r);
	vrt_assert_error(&r, status, minor, what);
	vrt_assert_unchanged_since(before, what);
	vrt_resp_free(&r);
	free(before);
}

Test(reconfigure, invalid_documents_are_400_or_415_and_change_nothing)
{
	char *rg = vrt_new_replication(NULL, "badly-reconfigured", false, NULL);
	char *r17 = rules_xml(17, 1, 60, 60), *r_total = rules_xml(3, 400, 60, 60);
	char *r_down = rules_xml(2, 4, 1440, -1380);
	char *bodies[] = {
		strdup(RECONF("<Rpo>0</Rpo>")),
		strdup(RECONF("<Rpo>1441</Rpo>")),
		strdup(RECONF("<Rpo>thirty</Rpo>")),
		strdup(RECONF("<QuiesceGuestEnabled>maybe</QuiesceGuestEnabled>")),
		strdup(RECONF(
			"<NetworkCompressionEnabled>true</NetworkCompressionEnabled><Rpo>30</Rpo>")),
		vrt_fmt(RECONF("%s"), r17),
		vrt_fmt(RECONF("%s"), r_total),
		vrt_fmt(RECONF("%s"), r_down),
		strdup(RECONF("<RetentionPolicy><Rule><NumberOfInstances>2</NumberOfInstances>"
			      "</Rule></RetentionPolicy>")),
		strdup("<ReplicationGroupSpecParams xmlns=\"" VRT_NS_VR "\"/>"),
		strdup("<ReconfigureReplicationGroupParams xmlns=\"" VRT_NS_VR "\">"),
	};
	for (size_t i = 0; i < N(bodies); i++) {
		char *what = vrt_fmt("body %zu: %.80s", i, bodies[i]);
		assert_reconfigure_refused(rg, MT_RECONF, bodies[i], 400, "BAD_REQUEST", what);
		free(what);
		free(bodies[i]);
	}
	const char *good = RECONF("<Rpo>30</Rpo>");
	assert_reconfigure_refused(rg, "application/json", good, 415, "UNSUPPORTED_MEDIA_TYPE",
				   "application/json");
	assert_reconfigure_refused(rg, NULL, good, 415, "UNSUPPORTED_MEDIA_TYPE",
				   "a body without a Content-Type");
	/* another org's replication and a missing one */
	char *before = vrt_db_fingerprint();
	static const char *const others[] = {VRT_REPL_B1, VRT_MISSING};
	for (size_t i = 0; i < N(others); i++) {
		struct vrt_resp r;
		reconfigure_post(others[i], MT_RECONF, good, &r);
		vrt_assert_error(&r, 404, "RESOURCE_NOT_FOUND", others[i]);
		vrt_resp_free(&r);
	}
	vrt_assert_unchanged_since(before, "another org's replication");
	free(before);
	free(r_down);
	free(r_total);
	free(r17);
	free(rg);
}

Test(reconfigure, a_recovered_replication_refuses_with_an_error_task)
{
	char *rg = vrt_new_replication(NULL, "recovered", false,
				       "recovery_state = 'recovered', replication_state = 'notActive'");
	struct vrt_resp r;
	reconfigure_post(rg, MT_RECONF, RECONF("<Rpo>30</Rpo>"), &r);
	cr_assert_eq(r.status, 202, "%ld\n%s", r.status, r.body);
	vrt_assert_valid(&r, "refused reconfigure");
	vrt_assert_xstr(&r, "string(/v:Task/@status)", "error");
	vrt_assert_xstr(&r, "string(/v:Task/v:Error/@vendorSpecificErrorCode)", "AlreadyRecovered");
	char *task = vrt_xstr(&r, "substring-after(/v:Task/@id, 'urn:vcloud:task:')");
	vrt_assert_db("SELECT count(*) FROM jobs WHERE task_id = $1::uuid", task, "0", "no job");
	assert_settings(rg, "240 false false -", "the recovered replication");
	free(task);
	vrt_resp_free(&r);
	free(rg);
}
