/* The documents of the internal API that a worker sends (written through
 * the vr_xml builder, so libxml2 escapes every value) and reads (parsed by
 * vr_xml_parse only), and the parameters of recovery jobs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/store.h"
#include "vrcloud/uuid.h"
#include "vrcloud/worker.h"
#include "vrcloud/xml.h"

static const char *const outcome_tokens[] = {
	[VR_OUTCOME_SUCCESS] = "success",
	[VR_OUTCOME_ERROR] = "error",
	[VR_OUTCOME_CANCELED] = "canceled",
};

const char *vr_worker_outcome_token(enum vr_worker_outcome outcome)
{
	if ((unsigned)outcome >= sizeof outcome_tokens / sizeof outcome_tokens[0])
		return NULL;
	return outcome_tokens[outcome];
}

/* The schema's NameType. */
static bool name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > 128 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static struct vr_xml *start_doc(const char *root)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, root);
	vr_xml_attr(w, "xmlns", VR_WORKER_NS);
	return w;
}

int vr_worker_doc_server(struct vr_buf *out, const char *name, const char *traffic_address)
{
	size_t address_len = traffic_address ? strlen(traffic_address) : 0;
	if (!name_ok(name) || address_len == 0 || address_len > 255)
		return VR_EINVAL;
	struct vr_xml *w = start_doc("ReplicaServer");
	vr_xml_elem(w, "Name", name);
	vr_xml_elem(w, "TrafficAddress", traffic_address);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

int vr_worker_doc_job_start(struct vr_buf *out, const char *server_id, unsigned deliveries)
{
	if (!server_id || !vr_uuid_valid(server_id))
		return VR_EINVAL;
	struct vr_xml *w = start_doc("JobStart");
	vr_xml_elem(w, "ServerId", server_id);
	vr_xml_elemf(w, "Deliveries", "%u", deliveries);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

int vr_worker_doc_job_progress(struct vr_buf *out, const char *server_id, int progress,
			       const char *message)
{
	if (!server_id || !vr_uuid_valid(server_id) || progress < 0 || progress > 100)
		return VR_EINVAL;
	struct vr_xml *w = start_doc("JobProgress");
	vr_xml_elem(w, "ServerId", server_id);
	vr_xml_elemf(w, "Progress", "%d", progress);
	if (message)
		vr_xml_elem(w, "Message", message);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

int vr_worker_doc_job_result(struct vr_buf *out, const char *server_id,
			     const struct vr_worker_result *result)
{
	const char *outcome = vr_worker_outcome_token(result->outcome);
	if (!server_id || !vr_uuid_valid(server_id) || !outcome)
		return VR_EINVAL;
	struct vr_xml *w = start_doc("JobResult");
	vr_xml_elem(w, "ServerId", server_id);
	vr_xml_elem(w, "Outcome", outcome);
	if (result->major)
		vr_xml_elemf(w, "MajorErrorCode", "%d", result->major);
	if (result->minor)
		vr_xml_elem(w, "MinorErrorCode", result->minor);
	if (result->vendor)
		vr_xml_elem(w, "VendorSpecificErrorCode", result->vendor);
	if (result->message)
		vr_xml_elem(w, "Message", result->message);
	if (result->instance_id && vr_uuid_valid(result->instance_id))
		vr_xml_elem(w, "InstanceId", result->instance_id);
	for (unsigned i = 0; i < result->ndisks && i < 64; i++) {
		const struct vr_worker_disk *disk = &result->disks[i];
		size_t key_len = strlen(disk->key), path_len = disk->path ? strlen(disk->path) : 0;
		if (key_len == 0 || key_len > 9 || strspn(disk->key, "0123456789") != key_len ||
		    path_len == 0 || path_len > 4096) {
			vr_xml_free(w);
			return VR_EINVAL;
		}
		vr_xml_start(w, "Disk");
		vr_xml_elem(w, "Key", disk->key);
		vr_xml_elem(w, "Path", disk->path);
		vr_xml_elemf(w, "Size", "%llu", (unsigned long long)disk->size);
		vr_xml_end(w);
	}
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

/* Parse body and check its root element. */
static int parse_root(xmlDocPtr *doc_out, const char *body, size_t len, const char *root_name,
		      const char *ns, const char **reason_out)
{
	*doc_out = NULL;
	xmlDocPtr doc = NULL;
	if (!body || vr_xml_parse(&doc, body, len, reason_out) != 0) {
		if (!body)
			*reason_out = "the answer has no body";
		return VR_EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const char *root_ns = root->ns && root->ns->href ? (const char *)root->ns->href : "";
	if (strcmp((const char *)root->name, root_name) != 0 || strcmp(root_ns, ns) != 0) {
		xmlFreeDoc(doc);
		*reason_out = "the answer's root element is not the expected one";
		return VR_EINVAL;
	}
	*doc_out = doc;
	return 0;
}

/* Copy root's child name, trimmed, into out; VR_EINVAL when absent or too
 * long. An empty value is accepted only when empty_ok. */
static int child_copy(char *out, size_t size, xmlNodePtr root, const char *name, bool empty_ok)
{
	xmlChar *text = vr_input_child_text(root, name);
	if (!text)
		return VR_EINVAL;
	const char *s = (const char *)text;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	int rc = n >= size || (n == 0 && !empty_ok) ? VR_EINVAL : 0;
	if (!rc) {
		memcpy(out, s, n);
		out[n] = '\0';
	}
	xmlFree(text);
	return rc;
}

static int child_uuid(char out[VR_UUID_LEN + 1], xmlNodePtr root, const char *name)
{
	char text[64];
	if (child_copy(text, sizeof text, root, name, false))
		return VR_EINVAL;
	return vr_uuid_canon(out, text);
}

int vr_worker_parse_server(char id_out[VR_UUID_LEN + 1], const char *body, size_t len,
			   const char **reason_out)
{
	id_out[0] = '\0';
	xmlDocPtr doc;
	if (parse_root(&doc, body, len, "ReplicaServer", VR_WORKER_NS, reason_out))
		return VR_EINVAL;
	int rc = child_uuid(id_out, xmlDocGetRootElement(doc), "Id");
	if (rc) {
		id_out[0] = '\0';
		*reason_out = "the ReplicaServer has no valid Id";
	}
	xmlFreeDoc(doc);
	return rc;
}

void vr_worker_job_clear(struct vr_worker_job *job)
{
	if (!job)
		return;
	free(job->params);
	memset(job, 0, sizeof *job);
}

int vr_worker_parse_job(struct vr_worker_job *job_out, const char *body, size_t len,
			const char **reason_out)
{
	memset(job_out, 0, sizeof *job_out);
	xmlDocPtr doc;
	if (parse_root(&doc, body, len, "Job", VR_WORKER_NS, reason_out))
		return VR_EINVAL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	char deliveries[16];
	int rc = 0;
	if (child_uuid(job_out->id, root, "Id"))
		*reason_out = "the Job has no valid Id", rc = VR_EINVAL;
	else if (child_uuid(job_out->task_id, root, "TaskId"))
		*reason_out = "the Job has no valid TaskId", rc = VR_EINVAL;
	else if (child_copy(job_out->action, sizeof job_out->action, root, "Action", false))
		*reason_out = "the Job has no Action", rc = VR_EINVAL;
	else if (child_copy(job_out->lane, sizeof job_out->lane, root, "Lane", false))
		*reason_out = "the Job has no Lane", rc = VR_EINVAL;
	else if (child_copy(job_out->state, sizeof job_out->state, root, "State", false))
		*reason_out = "the Job has no State", rc = VR_EINVAL;
	else if (child_copy(deliveries, sizeof deliveries, root, "Deliveries", false))
		*reason_out = "the Job has no Deliveries", rc = VR_EINVAL;
	if (!rc) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(deliveries, &end, 10);
		if (errno || *end || !isdigit((unsigned char)deliveries[0]) || n > 0xffffffffUL) {
			*reason_out = "the Job's Deliveries is not a count";
			rc = VR_EINVAL;
		} else {
			job_out->deliveries = (unsigned)n;
		}
	}
	if (!rc) {
		xmlChar *params = vr_input_child_text(root, "Params");
		job_out->params = vr_strdup(params ? (const char *)params : "");
		xmlFree(params);
	}
	xmlFreeDoc(doc);
	if (rc)
		vr_worker_job_clear(job_out);
	return rc;
}

int vr_worker_parse_error(char *minor_out, size_t minor_size, const char *body, size_t len,
			  const char **reason_out)
{
	if (minor_size)
		minor_out[0] = '\0';
	xmlDocPtr doc;
	if (parse_root(&doc, body, len, "Error", VR_NS_VCLOUD, reason_out))
		return VR_EINVAL;
	xmlChar *minor = xmlGetProp(xmlDocGetRootElement(doc), BAD_CAST "minorErrorCode");
	if (minor && minor_size)
		snprintf(minor_out, minor_size, "%s", (const char *)minor);
	xmlFree(minor);
	xmlFreeDoc(doc);
	return 0;
}

/* --- the parameters of recovery jobs (a flat JSON object) ------------- */

enum json_kind { J_STRING, J_TRUE, J_FALSE, J_NULL, J_NUMBER };

struct json_value {
	enum json_kind kind;
	char text[64]; /* a string's value, cut to fit */
	bool truncated;
};

static void skip_space(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A JSON string at *p (which is at its opening quote). Escapes are
 * decoded; a \u escape beyond ASCII becomes '?', which no key or UUID
 * this parser looks for holds. */
static int read_string(const char **p, struct json_value *v)
{
	const char *s = *p + 1;
	size_t n = 0;
	v->kind = J_STRING;
	v->truncated = false;
	for (;;) {
		unsigned char c = (unsigned char)*s;
		char out;
		if (c == '\0' || c < 0x20)
			return VR_EINVAL;
		if (c == '"')
			break;
		if (c == '\\') {
			s++;
			switch (*s) {
			case '"': out = '"'; break;
			case '\\': out = '\\'; break;
			case '/': out = '/'; break;
			case 'b': out = '\b'; break;
			case 'f': out = '\f'; break;
			case 'n': out = '\n'; break;
			case 'r': out = '\r'; break;
			case 't': out = '\t'; break;
			case 'u': {
				int code = 0;
				for (int i = 1; i <= 4; i++) {
					int d = hex_digit(s[i]);
					if (d < 0)
						return VR_EINVAL;
					code = code * 16 + d;
				}
				s += 4;
				out = code > 0 && code < 0x80 ? (char)code : '?';
				break;
			}
			default: return VR_EINVAL;
			}
		} else {
			out = (char)c;
		}
		if (n + 1 < sizeof v->text)
			v->text[n++] = out;
		else
			v->truncated = true;
		s++;
	}
	v->text[n] = '\0';
	*p = s + 1;
	return 0;
}

static int read_value(const char **p, struct json_value *v)
{
	skip_space(p);
	const char *s = *p;
	if (*s == '"')
		return read_string(p, v);
	static const struct {
		const char *word;
		enum json_kind kind;
	} words[] = {{"true", J_TRUE}, {"false", J_FALSE}, {"null", J_NULL}};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		size_t len = strlen(words[i].word);
		if (strncmp(s, words[i].word, len) == 0 && !isalnum((unsigned char)s[len])) {
			v->kind = words[i].kind;
			*p = s + len;
			return 0;
		}
	}
	if (*s == '-' || isdigit((unsigned char)*s)) {
		char *end;
		errno = 0;
		(void)strtod(s, &end);
		if (end == s)
			return VR_EINVAL;
		v->kind = J_NUMBER;
		*p = end;
		return 0;
	}
	return VR_EINVAL; /* nested objects and arrays have no place here */
}

static int apply_recovery_value(struct vr_recovery_params *out, const struct json_value *key,
				const struct json_value *v)
{
	if (key->truncated)
		return 0;
	if (strcmp(key->text, "PowerOn") == 0 || strcmp(key->text, "Synchronize") == 0) {
		if (v->kind != J_TRUE && v->kind != J_FALSE)
			return VR_EINVAL;
		bool *slot = key->text[0] == 'P' ? &out->power_on : &out->synchronize;
		*slot = v->kind == J_TRUE;
		return 0;
	}
	if (strcmp(key->text, "InstanceId") == 0) {
		if (v->kind == J_NULL) {
			out->instance_id[0] = '\0';
			return 0;
		}
		if (v->kind != J_STRING || v->truncated)
			return VR_EINVAL;
		return vr_uuid_canon(out->instance_id, v->text);
	}
	return 0;
}

int vr_worker_recovery_params_parse(struct vr_recovery_params *out, const char *json)
{
	out->power_on = true;
	out->synchronize = false;
	out->instance_id[0] = '\0';
	const char *p = json ? json : "";
	skip_space(&p);
	if (*p == '\0')
		return 0;
	if (*p != '{')
		return VR_EINVAL;
	p++;
	skip_space(&p);
	if (*p == '}') {
		p++;
	} else {
		for (;;) {
			struct json_value key, value;
			skip_space(&p);
			if (*p != '"' || read_string(&p, &key))
				return VR_EINVAL;
			skip_space(&p);
			if (*p != ':')
				return VR_EINVAL;
			p++;
			if (read_value(&p, &value) || apply_recovery_value(out, &key, &value))
				return VR_EINVAL;
			skip_space(&p);
			if (*p == ',') {
				p++;
				continue;
			}
			if (*p != '}')
				return VR_EINVAL;
			p++;
			break;
		}
	}
	skip_space(&p);
	return *p == '\0' ? 0 : VR_EINVAL;
}

int vr_worker_params_peer(char out[VR_UUID_LEN + 1], const char *json)
{
	static const char key[] = "\"PeerId\"";
	/* jsonb escapes every quote inside a string, so an unescaped "PeerId"
	 * followed by a colon is a key; the API writes it at the top level. */
	for (const char *p = json ? strstr(json, key) : NULL; p; p = strstr(p + 1, key)) {
		if (p > json && p[-1] == '\\')
			continue;
		const char *v = p + sizeof key - 1;
		skip_space(&v);
		if (*v != ':')
			continue;
		v++;
		skip_space(&v);
		struct json_value value;
		if (*v != '"' || read_string(&v, &value) || value.truncated)
			return VR_ENOTFOUND;
		return vr_uuid_canon(out, value.text) ? VR_ENOTFOUND : 0;
	}
	return VR_ENOTFOUND;
}

/* An unsigned JSON integer at *p, at most max. */
static int read_uint(const char **p, unsigned long long max, unsigned long long *out)
{
	skip_space(p);
	if (!isdigit((unsigned char)**p))
		return VR_EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(*p, &end, 10);
	if (errno || v > max || *end == '.' || *end == 'e' || *end == 'E')
		return VR_EINVAL;
	*p = end;
	*out = v;
	return 0;
}

/* One {"DeviceKey": N, "SizeBytes": N} at *p (at its brace). */
static int read_disk(const char **p, struct vr_store_disk *disk)
{
	bool have_key = false, have_size = false;
	(*p)++;
	for (;;) {
		struct json_value key;
		unsigned long long v;
		skip_space(p);
		if (**p != '"' || read_string(p, &key))
			return VR_EINVAL;
		skip_space(p);
		if (**p != ':')
			return VR_EINVAL;
		(*p)++;
		if (strcmp(key.text, "DeviceKey") == 0) {
			if (read_uint(p, 2147483647ULL, &v))
				return VR_EINVAL;
			snprintf(disk->key, sizeof disk->key, "%llu", v);
			have_key = true;
		} else if (strcmp(key.text, "SizeBytes") == 0) {
			if (read_uint(p, VR_TX_MAX_DISK_BYTES, &v) || v == 0 || v % VR_TX_BLOCK)
				return VR_EINVAL;
			disk->size = v;
			have_size = true;
		} else {
			struct json_value skipped;
			if (read_value(p, &skipped))
				return VR_EINVAL;
		}
		skip_space(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p != '}')
			return VR_EINVAL;
		(*p)++;
		return have_key && have_size ? 0 : VR_EINVAL;
	}
}

int vr_worker_params_disks(struct vr_store_disk *out, unsigned max, unsigned *n_out,
			   const char *json)
{
	static const char key[] = "\"Disks\"";
	*n_out = 0;
	for (const char *p = json ? strstr(json, key) : NULL; p; p = strstr(p + 1, key)) {
		if (p > json && p[-1] == '\\')
			continue;
		const char *v = p + sizeof key - 1;
		skip_space(&v);
		if (*v != ':')
			continue;
		v++;
		skip_space(&v);
		if (*v != '[')
			return VR_EINVAL;
		v++;
		skip_space(&v);
		if (*v == ']')
			return VR_EINVAL; /* a replication has at least one disk */
		for (unsigned n = 0;; n++) {
			skip_space(&v);
			if (n == max || *v != '{' || read_disk(&v, &out[n]))
				return VR_EINVAL;
			skip_space(&v);
			if (*v == ',') {
				v++;
				continue;
			}
			if (*v != ']')
				return VR_EINVAL;
			*n_out = n + 1;
			return 0;
		}
	}
	return VR_EINVAL;
}
