/* POST /api/vdc/{id}/peers: pair an on-premises site with a VDC
 * (docs/configure.md). In one transaction the peer (state 'pairing', the
 * SHA-256 of a new site credential), its Task and its pair job are
 * written; the answer is the Task, with the credential shown this once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>
#include <openssl/crypto.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/auth.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

#define SITE_CREDENTIAL_HEADER "X-VRCLOUD-SITE-CREDENTIAL"
#define SITE_NAME_MAX	       255

static const char *const pair_types[] = {VR_MT_PAIR_PARAMS, "application/*+xml", NULL};
static const struct vr_input_spec pair_spec = {
	"PairVcWithVdcParams", VR_NS_VR, pair_types, false, false,
};

/* What a pairing request asks, once read. */
struct pairing {
	char site_uuid[VR_UUID_LEN + 1];
	char *site_name;
	char *description; /* NULL: none */
	char operation_key[VR_OPERATION_KEY_SIZE];
	char credential[VR_SITE_CREDENTIAL_LEN + 1];
	char credential_hash[2 + 64 + 1];
};

static void pairing_clear(struct pairing *p)
{
	free(p->site_name);
	free(p->description);
	OPENSSL_cleanse(p->credential, sizeof p->credential);
	memset(p, 0, sizeof *p);
}

/* Read PairVcWithVdcParams into p; false after queueing the 400/415. */
static bool read_pairing(struct vr_request *req, struct pairing *p, enum MHD_Result *reply)
{
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &pair_spec, &doc, reply))
		return false;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	char *uuid = vr_input_child_trimmed(root, "SiteUuid");
	p->site_name = vr_input_child_trimmed(root, "SiteName");
	xmlChar *description = vr_input_child_text(root, "Description");
	if (description)
		p->description = vr_strdup((const char *)description);
	xmlFree(description);
	vr_api_read_operation_key(root, p->operation_key);
	xmlFreeDoc(doc);
	bool uuid_ok = uuid && vr_uuid_canon(p->site_uuid, uuid) == 0;
	free(uuid);
	if (!uuid_ok) {
		*reply = vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					"SiteUuid must be the UUID of the site's replication "
					"manager.");
		return false;
	}
	if (!p->site_name || !vr_api_name_ok(p->site_name, SITE_NAME_MAX)) {
		*reply =
			vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
				       "SiteName must have 1 to %d characters, not all spaces, and "
				       "no control characters.",
				       SITE_NAME_MAX);
		return false;
	}
	return true;
}

/* How the accepting transaction ended, when no database error stopped it. */
enum pair_outcome {
	PAIR_ACCEPTED,	     /* peer, Task and job written */
	PAIR_REPEATED,	     /* operationKey seen before: its Task */
	PAIR_NO_VDC,	     /* the VDC went away meanwhile */
	PAIR_NOT_ENABLED,    /* the VDC is not enabled for replication */
	PAIR_ALREADY_PAIRED, /* the site is paired, or being paired, with the VDC */
};

struct pair_result {
	enum pair_outcome outcome;
	char task[VR_UUID_LEN + 1];
	char lane[64];
};

/* Returns 0 with *out, or a negative vr_db_status. */
static int pair_in_transaction(struct vr_request *req, struct vr_db *db, const struct pairing *p,
			       struct pair_result *out)
{
	memset(out, 0, sizeof *out);
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	PGresult *vdc = NULL, *res = NULL;
	if (p->operation_key[0]) {
		const char *key[] = {req->who.user_id, p->operation_key};
		rc = vr_db_exec(db, "action_task_by_key", &res, 2, key);
		if (rc < 0)
			goto cleanup;
		if (rc == 1) {
			snprintf(out->task, sizeof out->task, "%s", vr_db_str(res, 0, 0));
			out->outcome = PAIR_REPEATED;
			rc = 0;
			goto cleanup;
		}
		PQclear(res);
		res = NULL;
	}
	const char *lock[] = {req->ids[0], vr_request_scope(req)};
	rc = vr_db_exec(db, "configure_vdc_lock", &vdc, 2, lock);
	if (rc <= 0) {
		out->outcome = PAIR_NO_VDC;
		goto cleanup;
	}
	if (!vr_db_bool(vdc, 0, 4)) {
		out->outcome = PAIR_NOT_ENABLED;
		rc = 0;
		goto cleanup;
	}
	const char *org = vr_db_str(vdc, 0, 0);
	const char *peer[] = {org,	    req->ids[0],    p->site_uuid,
			      p->site_name, p->description, p->credential_hash};
	rc = vr_db_exec(db, "pair_peer_insert", &res, 6, peer);
	if (rc <= 0) {
		out->outcome = PAIR_ALREADY_PAIRED;
		goto cleanup;
	}
	char peer_id[VR_UUID_LEN + 1];
	snprintf(peer_id, sizeof peer_id, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	res = NULL;

	char *operation = vr_asprintf("Pairing of site %s", p->site_name);
	const char *task[] = {
		org,	   req->who.user_id, req->who.user_name,
		"peer",	   peer_id,	     p->site_name,
		operation, "hcsPairSite",    p->operation_key[0] ? p->operation_key : NULL};
	rc = vr_db_exec(db, "action_task_insert", &res, 9, task);
	free(operation);
	if (rc != 1) {
		rc = rc < 0 ? rc : VR_DB_HARD;
		goto cleanup;
	}
	snprintf(out->task, sizeof out->task, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	res = NULL;
	const char *job[] = {out->task, peer_id};
	rc = vr_db_exec(db, "pair_job_insert", &res, 2, job);
	if (rc != 1) {
		rc = rc < 0 ? rc : VR_DB_HARD;
		goto cleanup;
	}
	snprintf(out->lane, sizeof out->lane, "%s", vr_db_str(res, 0, 1));
	out->outcome = PAIR_ACCEPTED;
	rc = 0;
cleanup:
	PQclear(res);
	PQclear(vdc);
	if (rc == 0 && out->outcome == PAIR_ACCEPTED)
		return vr_db_commit(db);
	vr_db_rollback(db);
	return rc;
}

/* The pairing that keeps the site from pairing again, for the 409. */
static enum MHD_Result reply_already_paired(struct vr_request *req, struct vr_db *db,
					    const struct pairing *p)
{
	const char *params[] = {req->ids[0], p->site_uuid};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "pair_peer_of_site", &res, 2, params);
	if (rc < 0)
		return vr_reply_db(req, rc);
	enum MHD_Result reply;
	if (rc == 0)
		reply = vr_reply_error_vendor(req, MHD_HTTP_CONFLICT, "DUPLICATE_NAME",
					      "SiteAlreadyPaired",
					      "Site %s is already paired with this VDC.",
					      p->site_uuid);
	else
		reply = vr_reply_error_vendor(
			req, MHD_HTTP_CONFLICT, "DUPLICATE_NAME", "SiteAlreadyPaired",
			"Site %s is already %s with this VDC as peer %s.", p->site_uuid,
			strcmp(vr_db_str(res, 0, 1), "pairing") == 0 ? "being paired" : "paired",
			vr_db_str(res, 0, 0));
	PQclear(res);
	return reply;
}

static enum MHD_Result pair(struct vr_request *req, struct pairing *p)
{
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	if (vr_auth_site_credential_new(p->credential))
		return vr_reply_err(req, VR_EIO);
	vr_auth_token_hash_hex(p->credential_hash, p->credential);
	struct pair_result result;
	int rc = VR_DB_SOFT;
	/* Serialization failures and lost connections are retried; so is a
	 * second request with the same operationKey that lost the race. */
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		rc = pair_in_transaction(req, db, p, &result);
		if (rc == VR_DB_HARD && p->operation_key[0] &&
		    strcmp(vr_db_last_sqlstate(db), "23505") == 0)
			rc = VR_DB_SOFT;
	}
	if (rc < 0)
		return vr_reply_db(req, rc);
	switch (result.outcome) {
	case PAIR_REPEATED:
		/* The credential was shown with the first answer only. */
		return vr_reply_task(req, result.task, MHD_HTTP_ACCEPTED);
	case PAIR_NO_VDC: return vr_reply_not_found(req, "VDC", req->ids[0]);
	case PAIR_NOT_ENABLED:
		return vr_reply_error_vendor(req, MHD_HTTP_FORBIDDEN,
					     "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					     "VdcNotEnabledForReplication",
					     "The VDC is not enabled for replication; sites cannot "
					     "pair with it.");
	case PAIR_ALREADY_PAIRED: return reply_already_paired(req, db, p);
	case PAIR_ACCEPTED: break;
	}
	vr_api_publish_lane(req, result.lane);
	const struct vr_task_secret secret = {SITE_CREDENTIAL_HEADER, "SiteCredential",
					      p->credential};
	return vr_reply_task_secret(req, result.task, &secret);
}

enum MHD_Result vr_api_vdc_peers_post(struct vr_request *req)
{
	enum MHD_Result reply;
	/* An invisible VDC is 404 whatever the body or the role. */
	if (vr_api_visible(req, "vdc_visible", "VDC", &reply) != 1)
		return reply;
	if (req->who.role != VR_ROLE_ORG_ADMIN && req->who.role != VR_ROLE_SYSADMIN)
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "Pairing a site with a VDC needs an organization "
				      "administrator of its organization or a system "
				      "administrator.");
	struct pairing p;
	memset(&p, 0, sizeof p);
	if (read_pairing(req, &p, &reply))
		reply = pair(req, &p);
	pairing_clear(&p);
	return reply;
}
