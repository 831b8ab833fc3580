/* Configuring replications (docs/configure.md): POST
 * /api/vdc/{id}/replications makes a new incoming replication of a VM of a
 * paired site, with its disks and retention policy, its Task and its
 * configure job in one transaction; POST
 * /api/vr/replications/{id}/action/reconfigure changes its settings
 * through vr_api_accept_action, and the new values apply when its job
 * succeeds (effects.c). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/engine.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/transfer.h"
#include "vrcloud/uuid.h"

#define RPO_MIN		   1
#define RPO_MAX		   1440
#define DISKS_MAX	   64
#define DISK_SIZE_MAX	   (INT64_C(64) << 40)
#define NAME_MAX_CHARS	   255
#define RULES_MAX	   16
#define RULE_INSTANCES_MAX 1024
#define RULE_DISTANCE_MIN  5
#define RULE_DISTANCE_MAX  525600
#define RETAINED_MAX	   1024
#define PEER_URN	   "urn:vcloud:peer:"

static const char *const spec_types[] = {VR_MT_SPEC_PARAMS, "application/*+xml", NULL};
static const struct vr_input_spec spec_input = {
	"ReplicationGroupSpecParams", VR_NS_VR, spec_types, false, false,
};
static const char *const reconfigure_types[] = {VR_MT_RECONFIGURE_PARAMS, "application/*+xml",
						NULL};
/* Every child is optional, so is the body: nothing named, nothing changes. */
static const struct vr_input_spec reconfigure_input = {
	"ReconfigureReplicationGroupParams", VR_NS_VR, reconfigure_types, false, true,
};

/* --- reading the request documents ------------------------------------- */

bool vr_api_name_ok(const char *s, size_t max_chars)
{
	size_t chars = 0;
	bool blank = true;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			return false;
		if (*c != ' ')
			blank = false;
		if ((*c & 0xc0) != 0x80)
			chars++;
	}
	return !blank && chars <= max_chars;
}

/* An integer child within [min, max]: 0, VR_ENOTFOUND (absent) or
 * VR_EINVAL (not a number, or out of range). */
static int child_integer(xmlNodePtr parent, const char *name, long long min, long long max,
			 long long *out)
{
	char *text = vr_input_child_trimmed(parent, name);
	if (!text)
		return VR_ENOTFOUND;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	int rc = errno || end == text || *end || v < min || v > max ? VR_EINVAL : 0;
	free(text);
	if (rc == 0)
		*out = v;
	return rc;
}

/* The next element child of parent named name after `after` (NULL: the
 * first). */
static xmlNodePtr next_named(xmlNodePtr parent, xmlNodePtr after, const char *name)
{
	for (xmlNodePtr c = after ? after->next : parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

struct retention {
	bool present; /* a RetentionPolicy element was sent */
	int count;
	long long instances[RULES_MAX];
	long long distance[RULES_MAX];
};

/* Why a document was refused: the message of its 400 (static or in buf). */
struct refusal {
	char message[256];
};

static bool refuse(struct refusal *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool refuse(struct refusal *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
	return false;
}

/* RetentionPolicy: up to RULES_MAX rules, distances growing from rule to
 * rule, at most RETAINED_MAX instances in all. */
static bool read_retention(xmlNodePtr root, struct retention *out, struct refusal *why)
{
	memset(out, 0, sizeof *out);
	xmlNodePtr policy = next_named(root, NULL, "RetentionPolicy");
	if (!policy)
		return true;
	out->present = true;
	long long total = 0;
	for (xmlNodePtr rule = next_named(policy, NULL, "Rule"); rule;
	     rule = next_named(policy, rule, "Rule")) {
		int i = out->count;
		if (i == RULES_MAX)
			return refuse(why, "A RetentionPolicy has at most %d rules.", RULES_MAX);
		if (child_integer(rule, "NumberOfInstances", 1, RULE_INSTANCES_MAX,
				  &out->instances[i]))
			return refuse(why, "Rule %d: NumberOfInstances must be 1 to %d.", i + 1,
				      RULE_INSTANCES_MAX);
		if (child_integer(rule, "DistanceMinutes", RULE_DISTANCE_MIN, RULE_DISTANCE_MAX,
				  &out->distance[i]))
			return refuse(why, "Rule %d: DistanceMinutes must be %d to %d.", i + 1,
				      RULE_DISTANCE_MIN, RULE_DISTANCE_MAX);
		if (i > 0 && out->distance[i] <= out->distance[i - 1])
			return refuse(why,
				      "Rule %d: the rules go from fine to coarse, so its "
				      "DistanceMinutes must be larger than the %lld of rule %d.",
				      i + 1, out->distance[i - 1], i);
		total += out->instances[i];
		out->count++;
	}
	if (total > RETAINED_MAX)
		return refuse(
			why,
			"The rules keep %lld instances in all; a replication keeps at most %d.",
			total, RETAINED_MAX);
	return true;
}

/* Rpo (1 to 1440 minutes) and the two switches, when present. */
struct settings {
	long long rpo; /* -1: not named */
	int quiesce;   /* -1: not named, else 0 / 1 */
	int compression;
};

static bool read_switch(xmlNodePtr root, const char *name, int *out, struct refusal *why)
{
	bool value;
	int rc = vr_input_child_bool(root, name, &value);
	*out = rc == 0 ? value : -1;
	if (rc == VR_EINVAL)
		return refuse(why, "%s must be true or false.", name);
	return true;
}

static bool read_settings(xmlNodePtr root, struct settings *out, struct refusal *why)
{
	out->rpo = -1;
	int rc = child_integer(root, "Rpo", RPO_MIN, RPO_MAX, &out->rpo);
	if (rc == VR_EINVAL)
		return refuse(why, "Rpo must be a number of minutes from %d to %d.", RPO_MIN,
			      RPO_MAX);
	return read_switch(root, "QuiesceGuestEnabled", &out->quiesce, why) &&
	       read_switch(root, "NetworkCompressionEnabled", &out->compression, why);
}

/* --- POST /api/vdc/{id}/replications ----------------------------------- */

struct disk {
	long long key;
	char *name;
	long long size;
};

/* What a ReplicationGroupSpecParams asks, once read. */
struct spec {
	char peer_id[VR_UUID_LEN + 1]; /* "": the VDC's only paired peer */
	char *vm_name;
	char *description;
	struct settings settings;
	int ndisks;
	struct disk disks[DISKS_MAX];
	struct retention retention;
	char operation_key[VR_OPERATION_KEY_SIZE];
};

static void spec_clear(struct spec *s)
{
	free(s->vm_name);
	free(s->description);
	for (int i = 0; i < s->ndisks; i++)
		free(s->disks[i].name);
	memset(s, 0, sizeof *s);
}

static bool read_peer_id(xmlNodePtr root, struct spec *s, struct refusal *why)
{
	char *text = vr_input_child_trimmed(root, "PeerId");
	if (!text)
		return true;
	const char *id = strncmp(text, PEER_URN, strlen(PEER_URN)) == 0 ? text + strlen(PEER_URN)
									: text;
	int rc = vr_uuid_canon(s->peer_id, id);
	free(text);
	if (rc)
		return refuse(why, "PeerId must be a peer's id or its URN (" PEER_URN "ID).");
	return true;
}

static bool read_disks(xmlNodePtr root, struct spec *s, struct refusal *why)
{
	for (xmlNodePtr d = next_named(root, NULL, "Disk"); d; d = next_named(root, d, "Disk")) {
		int i = s->ndisks;
		if (i == DISKS_MAX)
			return refuse(why, "A replication has at most %d disks.", DISKS_MAX);
		struct disk *disk = &s->disks[i];
		s->ndisks++;
		if (child_integer(d, "DeviceKey", 0, INT32_MAX, &disk->key))
			return refuse(why, "Disk %d: DeviceKey must be a number from 0 to %d.",
				      i + 1, INT32_MAX);
		if (child_integer(d, "SizeBytes", 1, DISK_SIZE_MAX, &disk->size))
			return refuse(why,
				      "Disk %d: SizeBytes must be 1 byte to 64 TiB (%" PRId64 ").",
				      i + 1, DISK_SIZE_MAX);
		if (disk->size % VR_TX_BLOCK)
			return refuse(why,
				      "Disk %d: SizeBytes must be a multiple of %u, the replica's "
				      "block size (%lld).",
				      i + 1, VR_TX_BLOCK, disk->size);
		disk->name = vr_input_child_trimmed(d, "Name");
		if (disk->name && !vr_api_name_ok(disk->name, NAME_MAX_CHARS))
			return refuse(why,
				      "Disk %d: Name must have 1 to %d characters and no "
				      "control characters.",
				      i + 1, NAME_MAX_CHARS);
		if (!disk->name)
			disk->name = vr_asprintf("disk%d", i);
		for (int j = 0; j < i; j++)
			if (s->disks[j].key == disk->key)
				return refuse(why, "Disks %d and %d have the same DeviceKey %lld.",
					      j + 1, i + 1, disk->key);
	}
	if (s->ndisks == 0)
		return refuse(why, "A replication needs at least one Disk.");
	return true;
}

static bool read_spec_document(xmlNodePtr root, struct spec *s, struct refusal *why)
{
	if (!read_peer_id(root, s, why))
		return false;
	s->vm_name = vr_input_child_trimmed(root, "VmName");
	if (!s->vm_name || !vr_api_name_ok(s->vm_name, NAME_MAX_CHARS))
		return refuse(why,
			      "VmName must have 1 to %d characters, not all spaces, and no "
			      "control characters.",
			      NAME_MAX_CHARS);
	xmlChar *description = vr_input_child_text(root, "Description");
	if (description)
		s->description = vr_strdup((const char *)description);
	xmlFree(description);
	if (!read_settings(root, &s->settings, why))
		return false;
	if (s->settings.rpo < 0)
		return refuse(why, "Rpo is required: minutes from %d to %d.", RPO_MIN, RPO_MAX);
	vr_api_read_operation_key(root, s->operation_key);
	return read_disks(root, s, why) && read_retention(root, &s->retention, why);
}

/* Read the body into s; false after queueing the 400/415. */
static bool read_spec(struct vr_request *req, struct spec *s, enum MHD_Result *reply)
{
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &spec_input, &doc, reply))
		return false;
	struct refusal why;
	bool ok = read_spec_document(xmlDocGetRootElement(doc), s, &why);
	xmlFreeDoc(doc);
	if (!ok)
		*reply =
			vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "%s", why.message);
	return ok;
}

/* How the accepting transaction ended, when no database error stopped it. */
enum configure_outcome {
	CONFIGURE_ACCEPTED,
	CONFIGURE_REPEATED,	   /* operationKey seen before: its Task */
	CONFIGURE_NO_VDC,	   /* the VDC went away meanwhile */
	CONFIGURE_REFUSED,	   /* the state machine refused (the VDC's flags) */
	CONFIGURE_NO_PAIRED_PEER,  /* no PeerId, and the VDC has no paired peer */
	CONFIGURE_PEER_AMBIGUOUS,  /* no PeerId, and the VDC has several */
	CONFIGURE_UNKNOWN_PEER,	   /* PeerId names no live peer of the VDC */
	CONFIGURE_PEER_NOT_PAIRED, /* its pairing is not done, or failed */
	CONFIGURE_NAME_TAKEN,	   /* the peer's VM of that name is replicated already */
};

struct configure_result {
	enum configure_outcome outcome;
	const struct vr_engine_refusal *refusal;
	char task[VR_UUID_LEN + 1];
	char replication[VR_UUID_LEN + 1];
	char peer[VR_UUID_LEN + 1];
	char peer_state[16];
	char lane[64];
};

/* The state machine's say on a new replication in a VDC with these flags:
 * NULL (allowed) or the refusal; *state is the row's state to write. */
static const struct vr_engine_refusal *check_new(PGresult *vdc, struct vr_rg_state *state)
{
	memset(state, 0, sizeof *state);
	state->kind = VR_RG_INCOMING;
	state->recovery = VR_RECOVERY_NOT_STARTED;
	state->test_recovery = VR_TEST_RECOVERY_NONE;
	state->replication = VR_REPLICATION_INITIAL_SYNC;
	struct vr_vdc_flags flags = {
		.failover = vr_db_bool(vdc, 0, 1),
		.test_failover = vr_db_bool(vdc, 0, 2),
		.planned_migration = vr_db_bool(vdc, 0, 3),
		.replication = vr_db_bool(vdc, 0, 4),
	};
	const struct vr_engine_refusal *refusal = NULL;
	if (vr_engine_check(state, &flags, VR_ACTION_CONFIGURE, &refusal))
		return refusal;
	vr_engine_begin(state, VR_ACTION_CONFIGURE);
	return NULL;
}

/* The peer the replication comes from, locked: 0 with out->peer (and
 * outcome ACCEPTED so far), or a negative db status. */
static int choose_peer(struct vr_request *req, struct vr_db *db, const struct spec *s,
		       struct configure_result *out)
{
	PGresult *res = NULL;
	if (s->peer_id[0]) {
		snprintf(out->peer, sizeof out->peer, "%s", s->peer_id);
	} else {
		const char *vdc[] = {req->ids[0]};
		int rc = vr_db_exec(db, "configure_paired_peers", &res, 1, vdc);
		if (rc < 0)
			return rc;
		if (rc == 1)
			snprintf(out->peer, sizeof out->peer, "%s", vr_db_str(res, 0, 0));
		PQclear(res);
		res = NULL;
		if (rc != 1) {
			out->outcome = rc == 0 ? CONFIGURE_NO_PAIRED_PEER
					       : CONFIGURE_PEER_AMBIGUOUS;
			return 0;
		}
	}
	const char *lock[] = {out->peer, req->ids[0]};
	int rc = vr_db_exec(db, "configure_peer_lock", &res, 2, lock);
	if (rc == 0)
		out->outcome = CONFIGURE_UNKNOWN_PEER;
	if (rc == 1 && strcmp(vr_db_str(res, 0, 1), "paired") != 0) {
		out->outcome = CONFIGURE_PEER_NOT_PAIRED;
		snprintf(out->peer_state, sizeof out->peer_state, "%s", vr_db_str(res, 0, 1));
	}
	PQclear(res);
	return rc < 0 ? rc : 0;
}

/* The replication's rows: itself, its disks and retention rules. */
static int insert_replication(struct vr_db *db, const char *org, const struct spec *s,
			      const struct vr_rg_state *state, struct configure_result *out,
			      const char *vdc)
{
	char rpo[24];
	snprintf(rpo, sizeof rpo, "%lld", s->settings.rpo);
	const char *row[] = {org,
			     vdc,
			     out->peer,
			     s->vm_name,
			     s->description,
			     rpo,
			     s->settings.quiesce == 1 ? "true" : "false",
			     s->settings.compression == 1 ? "true" : "false",
			     vr_engine_replication_token(state->replication)};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "configure_replication_insert", &res, 9, row);
	if (rc == 1)
		snprintf(out->replication, sizeof out->replication, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	if (rc != 1)
		return rc < 0 ? rc : VR_DB_HARD;
	for (int i = 0; i < s->ndisks && rc >= 0; i++) {
		char key[24], size[24];
		snprintf(key, sizeof key, "%lld", s->disks[i].key);
		snprintf(size, sizeof size, "%lld", s->disks[i].size);
		const char *disk[] = {out->replication, key, s->disks[i].name, size};
		rc = vr_db_exec(db, "configure_disk_insert", NULL, 4, disk);
	}
	for (int i = 0; i < s->retention.count && rc >= 0; i++) {
		char position[16], instances[24], distance[24];
		snprintf(position, sizeof position, "%d", i + 1);
		snprintf(instances, sizeof instances, "%lld", s->retention.instances[i]);
		snprintf(distance, sizeof distance, "%lld", s->retention.distance[i]);
		const char *rule[] = {out->replication, position, instances, distance};
		rc = vr_db_exec(db, "configure_retention_insert", NULL, 4, rule);
	}
	return rc < 0 ? rc : 0;
}

/* The Task and the configure job of the new replication. */
static int insert_task_and_job(struct vr_request *req, struct vr_db *db, const char *org,
			       const struct spec *s, struct configure_result *out)
{
	char *operation = vr_asprintf("Configuration of replication %s", s->vm_name);
	const char *task[] = {org,
			      req->who.user_id,
			      req->who.user_name,
			      "replication",
			      out->replication,
			      s->vm_name,
			      operation,
			      "hcsConfigureReplication",
			      s->operation_key[0] ? s->operation_key : NULL};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "action_task_insert", &res, 9, task);
	free(operation);
	if (rc == 1)
		snprintf(out->task, sizeof out->task, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	if (rc != 1)
		return rc < 0 ? rc : VR_DB_HARD;
	const char *job[] = {out->task, out->replication};
	rc = vr_db_exec(db, "configure_job_insert", NULL, 2, job);
	if (rc != 1)
		return rc < 0 ? rc : VR_DB_HARD;
	snprintf(out->lane, sizeof out->lane, "replication:%s", out->replication);
	return 0;
}

/* Returns 0 with *out, or a negative vr_db_status. */
static int configure_in_transaction(struct vr_request *req, struct vr_db *db, const struct spec *s,
				    struct configure_result *out)
{
	memset(out, 0, sizeof *out);
	int rc = vr_db_begin(db);
	if (rc)
		return rc;
	PGresult *vdc = NULL, *res = NULL;
	if (s->operation_key[0]) {
		const char *key[] = {req->who.user_id, s->operation_key};
		rc = vr_db_exec(db, "action_task_by_key", &res, 2, key);
		if (rc == 1) {
			snprintf(out->task, sizeof out->task, "%s", vr_db_str(res, 0, 0));
			out->outcome = CONFIGURE_REPEATED;
		}
		PQclear(res);
		res = NULL;
		if (rc != 0)
			goto cleanup;
	}
	const char *lock[] = {req->ids[0], vr_request_scope(req)};
	rc = vr_db_exec(db, "configure_vdc_lock", &vdc, 2, lock);
	if (rc <= 0) {
		out->outcome = CONFIGURE_NO_VDC;
		goto cleanup;
	}
	struct vr_rg_state state;
	out->refusal = check_new(vdc, &state);
	if (out->refusal) {
		out->outcome = CONFIGURE_REFUSED;
		goto cleanup;
	}
	rc = choose_peer(req, db, s, out);
	if (rc < 0 || out->outcome != CONFIGURE_ACCEPTED)
		goto cleanup;
	const char *taken[] = {out->peer, s->vm_name};
	rc = vr_db_exec(db, "configure_name_taken", &res, 2, taken);
	if (rc != 0) {
		if (rc > 0) {
			out->outcome = CONFIGURE_NAME_TAKEN;
			snprintf(out->replication, sizeof out->replication, "%s",
				 vr_db_str(res, 0, 0));
		}
		goto cleanup;
	}
	const char *org = vr_db_str(vdc, 0, 0);
	rc = insert_replication(db, org, s, &state, out, req->ids[0]);
	if (rc == 0)
		rc = insert_task_and_job(req, db, org, s, out);
cleanup:
	PQclear(res);
	PQclear(vdc);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && out->outcome == CONFIGURE_ACCEPTED)
		return vr_db_commit(db);
	vr_db_rollback(db);
	return rc;
}

static enum MHD_Result reply_refused(struct vr_request *req, const struct configure_result *r,
				     const struct spec *s)
{
	switch (r->outcome) {
	case CONFIGURE_REPEATED: return vr_reply_task(req, r->task, MHD_HTTP_ACCEPTED);
	case CONFIGURE_NO_VDC: return vr_reply_not_found(req, "VDC", req->ids[0]);
	case CONFIGURE_REFUSED:
		return vr_reply_error_vendor(req, r->refusal->major, r->refusal->minor,
					     r->refusal->vendor_code, "%s", r->refusal->message);
	case CONFIGURE_NO_PAIRED_PEER:
		return vr_reply_error_vendor(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					     "UnknownPeer",
					     "No site is paired with this VDC; pair one first "
					     "(POST /api/vdc/%s/peers).",
					     req->ids[0]);
	case CONFIGURE_PEER_AMBIGUOUS:
		return vr_reply_error_vendor(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					     "UnknownPeer",
					     "Several sites are paired with this VDC; name the one "
					     "the VM runs at with PeerId (see /api/vdc/%s/peers).",
					     req->ids[0]);
	case CONFIGURE_UNKNOWN_PEER:
		return vr_reply_error_vendor(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST",
					     "UnknownPeer",
					     "Peer %s is no peer of this VDC (see "
					     "/api/vdc/%s/peers).",
					     r->peer, req->ids[0]);
	case CONFIGURE_PEER_NOT_PAIRED:
		return vr_reply_error_vendor(req, MHD_HTTP_CONFLICT, "CONFLICT", "PeerNotPaired",
					     "Peer %s is not paired (its pairing is %s): "
					     "replications come from paired sites only.",
					     r->peer,
					     strcmp(r->peer_state, "error") == 0
						     ? "failed; pair the "
						       "site again"
						     : "not done yet");
	case CONFIGURE_NAME_TAKEN:
		return vr_reply_error_vendor(req, MHD_HTTP_CONFLICT, "DUPLICATE_NAME",
					     "ReplicationExists",
					     "The VM %s of peer %s is replicated already, by "
					     "replication %s.",
					     s->vm_name, r->peer, r->replication);
	case CONFIGURE_ACCEPTED: break;
	}
	return vr_reply_err(req, VR_EDB);
}

enum MHD_Result vr_api_vdc_replications_post(struct vr_request *req)
{
	enum MHD_Result reply;
	/* An invisible VDC is 404 whatever the body. */
	if (vr_api_visible(req, "vdc_visible", "VDC", &reply) != 1)
		return reply;
	struct spec *s = vr_calloc(1, sizeof *s);
	if (!read_spec(req, s, &reply))
		goto done;
	struct vr_db *db = vr_request_db(req);
	if (!db) {
		reply = vr_reply_err(req, VR_EUNAVAIL);
		goto done;
	}
	struct configure_result result;
	int rc = VR_DB_SOFT;
	/* Serialization failures (a concurrent configure of the same peer)
	 * and lost connections are retried; so is a second request with the
	 * same operationKey that lost the race. */
	for (int attempt = 0; attempt < 3 && rc == VR_DB_SOFT; attempt++) {
		rc = configure_in_transaction(req, db, s, &result);
		if (rc == VR_DB_HARD && s->operation_key[0] &&
		    strcmp(vr_db_last_sqlstate(db), "23505") == 0)
			rc = VR_DB_SOFT;
	}
	if (rc < 0) {
		reply = vr_reply_db(req, rc);
	} else if (result.outcome != CONFIGURE_ACCEPTED) {
		reply = reply_refused(req, &result, s);
	} else {
		vr_api_publish_lane(req, result.lane);
		reply = vr_reply_task(req, result.task, MHD_HTTP_ACCEPTED);
	}
done:
	spec_clear(s);
	free(s);
	return reply;
}

/* --- POST /api/vr/replications/{id}/action/reconfigure --------------------- */

/* The job's parameters: the settings named, as effects.c applies them.
 * Returns false when they do not fit (they always do within the limits). */
static bool reconfigure_params(char *out, size_t size, const struct settings *set,
			       const struct retention *retention)
{
	size_t n = 0;
	int w = snprintf(out, size, "{");
	const char *sep = "";
	if (w > 0)
		n += (size_t)w;
	if (set->rpo >= 0 && n < size) {
		w = snprintf(out + n, size - n, "%s\"Rpo\": %lld", sep, set->rpo);
		n += w > 0 ? (size_t)w : 0;
		sep = ", ";
	}
	if (set->quiesce >= 0 && n < size) {
		w = snprintf(out + n, size - n, "%s\"QuiesceGuestEnabled\": %s", sep,
			     set->quiesce ? "true" : "false");
		n += w > 0 ? (size_t)w : 0;
		sep = ", ";
	}
	if (set->compression >= 0 && n < size) {
		w = snprintf(out + n, size - n, "%s\"NetworkCompressionEnabled\": %s", sep,
			     set->compression ? "true" : "false");
		n += w > 0 ? (size_t)w : 0;
		sep = ", ";
	}
	if (retention->present && n < size) {
		w = snprintf(out + n, size - n, "%s\"RetentionPolicy\": [", sep);
		n += w > 0 ? (size_t)w : 0;
		for (int i = 0; i < retention->count && n < size; i++) {
			w = snprintf(out + n, size - n, "%s[%lld, %lld]", i ? ", " : "",
				     retention->instances[i], retention->distance[i]);
			n += w > 0 ? (size_t)w : 0;
		}
		if (n < size) {
			w = snprintf(out + n, size - n, "]");
			n += w > 0 ? (size_t)w : 0;
		}
	}
	if (n < size) {
		w = snprintf(out + n, size - n, "}");
		n += w > 0 ? (size_t)w : 0;
	}
	return n < size;
}

enum MHD_Result vr_api_replication_reconfigure(struct vr_request *req)
{
	struct vr_action_request a = {VR_ACTION_RECONFIGURE,
				      "Reconfiguration of replication",
				      "hcsReconfigure",
				      "",
				      "",
				      ""};
	enum MHD_Result reply;
	xmlDocPtr doc = NULL;
	if (!vr_request_document(req, &reconfigure_input, &doc, &reply))
		return reply;
	struct settings set = {-1, -1, -1};
	struct retention retention = {0};
	struct refusal why = {""};
	bool ok = true;
	if (doc) {
		xmlNodePtr root = xmlDocGetRootElement(doc);
		ok = read_settings(root, &set, &why) && read_retention(root, &retention, &why);
		vr_api_read_operation_key(root, a.operation_key);
		xmlFreeDoc(doc);
	}
	if (!ok)
		return vr_reply_error(req, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "%s", why.message);
	if (!reconfigure_params(a.params, sizeof a.params, &set, &retention))
		return vr_reply_err(req, VR_EINVAL);
	return vr_api_accept_action(req, &a);
}
