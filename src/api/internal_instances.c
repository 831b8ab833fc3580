/* Internal API of replica servers: record a committed point-in-time
 * instance (docs/instances.md). The server that holds the replication
 * reports each instance it committed into its replica store; the API
 * gives it the next sequence number, ends the initial sync, applies the
 * retention rules and answers the instances to keep, in one transaction.
 * Recording the same instance again changes nothing and answers alike. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/uuid.h"

static const struct vr_input_spec record_spec = {
	"InstanceRecord", VR_NS_INTERNAL, vr_internal_media_types, false, false,
};

/* Latest point in time accepted: 9999-12-31T23:59:59.999Z. */
#define MAX_POINT_MS 253402300799999LL

struct record {
	char server[VR_UUID_LEN + 1];
	char instance[VR_UUID_LEN + 1];
	char point_ms[24];
	char seconds[24];
	char bytes[24];
	char blocks[24];
	char root[65]; /* lowercase hex */
};

/* A child holding a decimal integer 0..max, copied canonically into out. */
static bool child_number(xmlNodePtr root, const char *name, long long max, char out[24])
{
	char *text = vr_input_child_trimmed(root, name);
	bool ok = text && text[0] && isdigit((unsigned char)text[0]);
	long long v = 0;
	if (ok) {
		char *end = NULL;
		errno = 0;
		v = strtoll(text, &end, 10);
		ok = errno == 0 && *end == '\0' && v >= 0 && v <= max;
	}
	free(text);
	if (ok)
		snprintf(out, 24, "%lld", v);
	return ok;
}

static bool child_uuid(xmlNodePtr root, const char *name, char out[VR_UUID_LEN + 1])
{
	char *text = vr_input_child_trimmed(root, name);
	bool ok = text && strlen(text) == VR_UUID_LEN && vr_uuid_canon(out, text) == 0;
	free(text);
	return ok;
}

static bool child_hash(xmlNodePtr root, const char *name, char out[65])
{
	char *text = vr_input_child_trimmed(root, name);
	bool ok = text && strlen(text) == 64;
	for (size_t i = 0; ok && i < 64; i++) {
		ok = isxdigit((unsigned char)text[i]) != 0;
		out[i] = (char)tolower((unsigned char)text[i]);
	}
	out[64] = '\0';
	free(text);
	return ok;
}

/* The body's fields; NULL, or what is wrong with them. */
static const char *read_record(xmlNodePtr root, struct record *r)
{
	if (!child_uuid(root, "ServerId", r->server))
		return "ServerId is not a UUID.";
	if (!child_uuid(root, "InstanceId", r->instance))
		return "InstanceId is not a UUID.";
	if (!child_number(root, "PointInTimeMs", MAX_POINT_MS, r->point_ms) ||
	    strcmp(r->point_ms, "0") == 0)
		return "PointInTimeMs must be 1 to 253402300799999 (Unix milliseconds).";
	if (!child_number(root, "TransferSeconds", 4294967295LL, r->seconds))
		return "TransferSeconds must be 0 to 4294967295.";
	if (!child_number(root, "TransferBytes", INT64_MAX, r->bytes))
		return "TransferBytes must be 0 to 9223372036854775807.";
	if (!child_number(root, "Blocks", INT64_MAX, r->blocks))
		return "Blocks must be 0 to 9223372036854775807.";
	if (!child_hash(root, "HashRoot", r->root))
		return "HashRoot must be 64 hexadecimal digits (a SHA-256).";
	return NULL;
}

/* What the transaction decided. */
struct outcome {
	int db;		   /* a db status (< 0), or 0 */
	unsigned status;   /* an Error to answer (0: none) */
	const char *minor; /* its minorErrorCode */
	const char *message;
	char seq[24];
	struct vr_buf keep; /* the kept ids, newest first, one per line */
};

static int refuse(struct outcome *o, unsigned status, const char *minor, const char *message)
{
	o->status = status;
	o->minor = minor;
	o->message = message;
	return 0;
}

/* The instance as recorded before: 1 (the same one, o->seq set), 0 (none),
 * or a db status; a different one is refused into o. */
static int find_recorded(struct vr_db *db, const char *replication, const struct record *r,
			 struct outcome *o)
{
	const char *params[] = {r->instance};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "instance_find", &res, 1, params);
	if (rc <= 0) {
		PQclear(res);
		return rc;
	}
	bool same = strcmp(vr_db_str(res, 0, 0), replication) == 0 &&
		    strcmp(vr_db_str(res, 0, 2), r->point_ms) == 0 &&
		    strcmp(vr_db_str(res, 0, 3), r->root) == 0 &&
		    strcmp(vr_db_str(res, 0, 4), r->blocks) == 0;
	if (same)
		snprintf(o->seq, sizeof o->seq, "%s", vr_db_str(res, 0, 1));
	PQclear(res);
	if (!same) {
		refuse(o, MHD_HTTP_CONFLICT, "INSTANCE_CONFLICT",
		       "An instance with this InstanceId was recorded with other values.");
		return 0;
	}
	return 1;
}

static int read_rules(struct vr_db *db, const char *replication, struct vr_retention_rule **out,
		      size_t *n)
{
	const char *params[] = {replication};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "instance_rules", &res, 1, params);
	if (rc < 0)
		return rc;
	*n = (size_t)rc;
	*out = vr_calloc(rc ? (size_t)rc : 1, sizeof **out);
	for (int i = 0; i < rc; i++) {
		(*out)[i].instances = (long)vr_db_int(res, i, 0);
		(*out)[i].distance_minutes = (long)vr_db_int(res, i, 1);
	}
	PQclear(res);
	return 0;
}

/* Apply the retention rules to the replication's instances, delete the
 * others and list the kept ids into o->keep. Returns a db status. */
static int retain(struct vr_db *db, const char *replication, struct outcome *o)
{
	struct vr_retention_rule *rules = NULL;
	size_t nrules = 0;
	int rc = read_rules(db, replication, &rules, &nrules);
	if (rc < 0)
		return rc;
	const char *params[] = {replication};
	PGresult *res = NULL;
	rc = vr_db_exec(db, "instance_list", &res, 1, params);
	if (rc < 0) {
		free(rules);
		return rc;
	}
	size_t n = (size_t)rc;
	int64_t *times = vr_calloc(n ? n : 1, sizeof *times);
	bool *pinned = vr_calloc(n ? n : 1, sizeof *pinned);
	bool *keep = vr_calloc(n ? n : 1, sizeof *keep);
	for (size_t i = 0; i < n; i++) {
		times[i] = vr_db_int(res, (int)i, 1);
		pinned[i] = vr_db_bool(res, (int)i, 2);
	}
	rc = vr_retention_apply(rules, nrules, times, pinned, n, keep) == 0 ? 0 : VR_DB_HARD;
	struct vr_buf array;
	vr_buf_init(&array, 0);
	vr_buf_appends(&array, "{");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!keep[i])
			continue;
		const char *id = vr_db_str(res, (int)i, 0);
		vr_buf_printf(&array, "%s%s", array.len > 1 ? "," : "", id);
		vr_buf_printf(&o->keep, "%s\n", id);
	}
	vr_buf_appends(&array, "}");
	if (rc == 0) {
		const char *prune[] = {replication, array.data};
		rc = vr_db_exec(db, "instance_prune", NULL, 2, prune);
	}
	vr_buf_free(&array);
	PQclear(res);
	free(keep);
	free(pinned);
	free(times);
	free(rules);
	return rc < 0 ? rc : 0;
}

/* Insert the instance (unless recorded before) and retain; one attempt of
 * the transaction, which is open. Returns a db status; refusals go into o
 * (the caller rolls back). */
static int record_in_transaction(struct vr_db *db, const char *replication, const struct record *r,
				 struct outcome *o)
{
	const char *lock[] = {replication};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "instance_replication_lock", &res, 1, lock);
	if (rc <= 0) {
		PQclear(res);
		if (rc == 0)
			refuse(o, MHD_HTTP_NOT_FOUND, "RESOURCE_NOT_FOUND", NULL);
		return rc;
	}
	bool holder = !vr_db_isnull(res, 0, 0) && strcmp(vr_db_str(res, 0, 0), r->server) == 0;
	char seq[24];
	snprintf(seq, sizeof seq, "%s", vr_db_str(res, 0, 1));
	PQclear(res);
	if (!holder)
		return refuse(o, MHD_HTTP_CONFLICT, "NOT_REPLICATION_SERVER",
			      "This replica server does not hold the replication now; only "
			      "its current server records instances.");
	rc = find_recorded(db, replication, r, o);
	if (rc < 0 || o->status)
		return rc;
	if (rc == 0) {
		const char *insert[] = {r->instance, replication, seq,	   r->point_ms, r->seconds,
					r->bytes,    r->blocks,	  r->root, r->server};
		rc = vr_db_exec(db, "instance_insert", NULL, 9, insert);
		if (rc < 0)
			return rc;
		const char *advance[] = {replication, seq};
		rc = vr_db_exec(db, "instance_advance", NULL, 2, advance);
		if (rc < 0)
			return rc;
		snprintf(o->seq, sizeof o->seq, "%s", seq);
	}
	return retain(db, replication, o);
}

static enum MHD_Result render_retention(struct vr_request *req, const struct record *r,
					const struct outcome *o)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "InstanceRetention");
	vr_xml_attr(w, "xmlns", VR_NS_INTERNAL);
	vr_xml_elem(w, "ReplicationId", req->ids[0]);
	vr_xml_elem(w, "InstanceId", r->instance);
	vr_xml_elem(w, "Sequence", o->seq);
	for (const char *p = o->keep.data; p && *p;) {
		const char *nl = strchr(p, '\n');
		char id[VR_UUID_LEN + 1];
		snprintf(id, sizeof id, "%.*s", (int)(nl - p), p);
		vr_xml_elem(w, "Keep", id);
		p = nl + 1;
	}
	vr_xml_end(w);
	return vr_reply_xml(req, w, VR_MT_INTERNAL);
}

static enum MHD_Result record(struct vr_request *req, struct vr_db *db, const struct record *r)
{
	char replication[VR_UUID_LEN + 1];
	if (vr_uuid_canon(replication, req->ids[0]) != 0)
		return vr_reply_not_found(req, "replication", req->ids[0]);
	struct outcome o = {0};
	vr_buf_init(&o.keep, 0);
	int rc = VR_DB_SOFT;
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		o.status = 0;
		o.keep.len = 0;
		if (o.keep.data)
			o.keep.data[0] = '\0';
		rc = vr_db_begin(db);
		if (rc)
			continue;
		rc = record_in_transaction(db, replication, r, &o);
		if (rc < 0 || o.status) {
			vr_db_rollback(db);
			continue;
		}
		rc = vr_db_commit(db);
	}
	enum MHD_Result reply;
	if (o.status == MHD_HTTP_NOT_FOUND)
		reply = vr_reply_not_found(req, "replication", req->ids[0]);
	else if (o.status)
		reply = vr_reply_error(req, o.status, o.minor, "%s", o.message);
	else if (rc < 0)
		reply = vr_reply_db(req, rc);
	else
		reply = render_retention(req, r, &o);
	vr_buf_free(&o.keep);
	return reply;
}

enum MHD_Result vr_api_internal_replication_instances(struct vr_request *req)
{
	/* who.org_name holds a service credential's kind. */
	if (strcmp(req->who.org_name, "worker") != 0)
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "Only worker credentials record instances.");
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &record_spec, &doc, &reply))
		return reply;
	struct record r;
	const char *bad = read_record(xmlDocGetRootElement(doc), &r);
	xmlFreeDoc(doc);
	if (bad)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "%s", bad);
	struct vr_db *db = vr_request_db(req);
	if (!db)
		return vr_reply_err(req, VR_EUNAVAIL);
	const char *owned[] = {r.server, req->who.user_name};
	int n = vr_db_exec(db, "job_server_owned", NULL, 2, owned);
	if (n < 0)
		return vr_reply_db(req, n);
	if (n == 0)
		return vr_reply_error(req, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
				      "ServerId names no replica server of this credential.");
	return record(req, db, &r);
}
