/* A committed instance, recorded through the internal API (POST
 * /api/internal/replications/{id}/instances, docs/instances.md), and the
 * store brought in line with the API's answer: every retained instance
 * the API no longer keeps is dropped (the newest and pinned ones never
 * are). Recording is idempotent, so a retry after a lost answer is safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/store.h"
#include "vrcloud/uuid.h"
#include "vrcloud/xml.h"
#include "worker/internal.h"

static void hex(char out[2 * VR_TX_HASH + 1], const uint8_t *bytes)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < VR_TX_HASH; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * VR_TX_HASH] = '\0';
}

int vr_worker_doc_instance(struct vr_buf *out, const char *server_id,
			   const struct vr_store_instance *inst, unsigned transfer_seconds)
{
	char id[VR_UUID_LEN + 1];
	if (!server_id || !vr_uuid_valid(server_id) || vr_uuid_canon(id, inst->id) != 0 ||
	    inst->point_in_time_ms <= 0)
		return VR_EINVAL;
	char root[2 * VR_TX_HASH + 1];
	hex(root, inst->root);
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "InstanceRecord");
	vr_xml_attr(w, "xmlns", VR_WORKER_NS);
	vr_xml_elem(w, "ServerId", server_id);
	vr_xml_elem(w, "InstanceId", id);
	vr_xml_elemf(w, "PointInTimeMs", "%lld", (long long)inst->point_in_time_ms);
	vr_xml_elemf(w, "TransferSeconds", "%u", transfer_seconds);
	vr_xml_elemf(w, "TransferBytes", "%llu", (unsigned long long)inst->bytes);
	vr_xml_elemf(w, "Blocks", "%llu", (unsigned long long)inst->blocks);
	vr_xml_elem(w, "HashRoot", root);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

int vr_worker_doc_statistics(struct vr_buf *out, const struct vr_receiver_counts *delta)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "ServerStatistics");
	vr_xml_attr(w, "xmlns", VR_WORKER_NS);
	vr_xml_elemf(w, "BytesIn", "%llu", delta->bytes_in);
	vr_xml_elemf(w, "BytesOut", "%llu", delta->bytes_out);
	vr_xml_elemf(w, "TransferErrors", "%llu", delta->errors);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

static bool is_named(xmlNodePtr node, const char *name)
{
	return node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0 &&
	       node->ns && node->ns->href &&
	       strcmp((const char *)node->ns->href, VR_WORKER_NS) == 0;
}

int vr_worker_parse_retention(struct vr_worker_retention *out, const char *body, size_t len,
			      const char **reason_out)
{
	memset(out, 0, sizeof *out);
	xmlDocPtr doc = NULL;
	if (!body || vr_xml_parse(&doc, body, len, reason_out) != 0) {
		if (!body)
			*reason_out = "the answer has no body";
		return VR_EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int rc = is_named(root, "InstanceRetention") ? 0 : VR_EINVAL;
	if (rc)
		*reason_out = "the answer's root element is not InstanceRetention";
	for (xmlNodePtr c = root->children; !rc && c; c = c->next) {
		if (!is_named(c, "Keep") && !is_named(c, "Sequence"))
			continue;
		xmlChar *text = xmlNodeGetContent(c);
		if (is_named(c, "Sequence")) {
			char *end = NULL;
			out->seq = text ? strtoull((const char *)text, &end, 10) : 0;
			if (!text || !end || *end || out->seq == 0) {
				rc = VR_EINVAL;
				*reason_out = "the answer's Sequence is not a number";
			}
		} else if (out->nkeep == VR_WORKER_MAX_KEEP) {
			rc = VR_EINVAL;
			*reason_out = "the answer keeps more instances than a store holds";
		} else {
			if (out->nkeep == out->cap) {
				out->cap = out->cap ? 2 * out->cap : 32;
				out->keep = vr_realloc(out->keep, out->cap * sizeof *out->keep);
			}
			if (!text || vr_uuid_canon(out->keep[out->nkeep], (const char *)text)) {
				rc = VR_EINVAL;
				*reason_out = "a Keep of the answer is not a UUID";
			} else {
				out->nkeep++;
			}
		}
		xmlFree(text);
	}
	if (!rc && out->nkeep == 0) {
		rc = VR_EINVAL;
		*reason_out = "the answer keeps no instance";
	}
	xmlFreeDoc(doc);
	if (rc)
		vr_worker_retention_free(out);
	return rc;
}

void vr_worker_retention_free(struct vr_worker_retention *r)
{
	free(r->keep);
	memset(r, 0, sizeof *r);
}

static bool kept(const struct vr_worker_retention *r, const char *id)
{
	char canon[VR_UUID_LEN + 1];
	if (vr_uuid_canon(canon, id) != 0)
		return true; /* not one the API could name: leave it */
	for (size_t i = 0; i < r->nkeep; i++)
		if (strcmp(r->keep[i], canon) == 0)
			return true;
	return false;
}

int vr_worker_store_reconcile(struct vr_store *store, const char *replication,
			      const struct vr_worker_retention *retention, unsigned *dropped_out)
{
	*dropped_out = 0;
	struct vr_store_instance *list = NULL;
	size_t n = 0;
	int rc = vr_store_instances(store, &list, &n);
	if (rc)
		return rc;
	/* The newest (the last) is what the replica disks hold: never dropped. */
	for (size_t i = 0; i + 1 < n; i++) {
		if (list[i].pinned || kept(retention, list[i].id))
			continue;
		int drc = vr_store_drop(store, list[i].id);
		if (drc == 0) {
			(*dropped_out)++;
			vr_log_debug("instance_dropped", "replication", replication, "instance",
				     list[i].id);
		} else if (drc != VR_ENOTFOUND && drc != VR_ECONFLICT) {
			vr_log_warn("instance_drop_failed", "replication", replication, "instance",
				    list[i].id, "error", vr_store_message(store));
			rc = drc;
		}
	}
	free(list);
	return rc;
}

/* Calls to the API for one record: the first and two retries (after 1 s
 * and 2 s), so that a replica server rides out a brief API restart
 * without holding the agent long. */
#define RECORD_ATTEMPTS 3

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

enum vr_worker_answer_kind vr_worker_record_instance(struct vr_worker_client *client,
						     const char *replication,
						     const struct vr_buf *doc,
						     struct vr_worker_retention *out, char *error,
						     size_t error_size)
{
	char path[128];
	snprintf(path, sizeof path, "/api/internal/replications/%s/instances", replication);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	enum vr_worker_answer_kind kind = VR_ANSWER_UNAVAILABLE;
	for (int attempt = 0; attempt < RECORD_ATTEMPTS; attempt++) {
		if (attempt)
			sleep_ms(1000 * (unsigned)attempt);
		kind = vr_worker_client_call(client, "POST", path, doc, &answer);
		if (kind != VR_ANSWER_UNAVAILABLE)
			break;
	}
	if (kind == VR_ANSWER_OK) {
		const char *reason = NULL;
		if (vr_worker_parse_retention(out, answer.body.data, answer.body.len, &reason)) {
			snprintf(error, error_size, "%s", reason);
			kind = VR_ANSWER_REFUSED;
		}
	} else if (answer.status) {
		snprintf(error, error_size, "status %ld %s", answer.status, answer.minor);
	} else {
		snprintf(error, error_size, "%s", answer.error);
	}
	vr_worker_answer_free(&answer);
	return kind;
}
