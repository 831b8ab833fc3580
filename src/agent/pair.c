/* vrcloud-agent pair: pair the site with a VDC through the API (docs/tunnels.md,
 * "Pairing"): log in, POST PairVcWithVdcParams, keep the one-time site
 * credential (mode 0600) and the site's identity in the state directory,
 * follow the Task until it ends, log out. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "vrcloud/agent.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

#define ACCEPT	       "Accept: application/*+xml;version=5.6"
#define PAIR_TYPE      "Content-Type: application/vnd.vmware.hcs.pairVcWithVdcParams+xml"
#define MAX_ANSWER     ((size_t)1024 * 1024)
#define CREDENTIAL_MAX 512

struct answer {
	long status;
	struct vr_buf body;
	char token[256];		     /* x-vcloud-authorization */
	char credential[CREDENTIAL_MAX + 1]; /* X-VRCLOUD-SITE-CREDENTIAL */
	char location[1024];
	char minor[64];
	char message[512];
};

struct session {
	CURL *curl;
	const struct vr_agent_pair_options *o;
	char token[256];
};

static void fail(char **error_out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(char **error_out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	free(*error_out);
	*error_out = vr_strdup(buf);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	return vr_buf_append(&a->body, data, size * n) ? 0 : size * n;
}

/* Copy the value of header line (name: value\r\n) into out if it is name. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if ((size_t)(end - v) < size)
		snprintf(out, size, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	header_value(line, len, "x-vcloud-authorization", a->token, sizeof a->token);
	header_value(line, len, "X-VRCLOUD-SITE-CREDENTIAL", a->credential, sizeof a->credential);
	header_value(line, len, "Location", a->location, sizeof a->location);
	return len;
}

static void answer_free(struct answer *a)
{
	explicit_bzero(a->credential, sizeof a->credential);
	explicit_bzero(a->token, sizeof a->token);
	vr_buf_free(&a->body);
}

/* The minor code and message of a vCD Error body, if it is one. */
static void read_error(struct answer *a)
{
	xmlDocPtr doc = NULL;
	const char *reason;
	if (!a->body.len || vr_xml_parse(&doc, a->body.data, a->body.len, &reason))
		return;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (root && xmlStrcmp(root->name, BAD_CAST "Error") == 0) {
		xmlChar *minor = xmlGetProp(root, BAD_CAST "minorErrorCode");
		xmlChar *message = xmlGetProp(root, BAD_CAST "message");
		snprintf(a->minor, sizeof a->minor, "%s", minor ? (const char *)minor : "");
		snprintf(a->message, sizeof a->message, "%s", message ? (const char *)message : "");
		xmlFree(minor);
		xmlFree(message);
	}
	xmlFreeDoc(doc);
}

/* One call; a URL that starts with "/" is relative to the API's base.
 * Returns 0 when an answer came (a->status), else VR_EUNAVAIL. */
static int call(struct session *s, const char *method, const char *url, const char *body,
		const char *content_type, bool basic, struct answer *a, char **error_out)
{
	memset(a, 0, sizeof *a);
	vr_buf_init(&a->body, MAX_ANSWER);
	CURL *c = s->curl;
	curl_easy_reset(c);
	char *full = url[0] == '/' ? vr_asprintf("%s%s", s->o->api_url, url) : vr_strdup(url);
	struct curl_slist *headers = curl_slist_append(NULL, ACCEPT);
	headers = curl_slist_append(headers, "Expect:");
	char *auth = NULL;
	if (content_type)
		headers = curl_slist_append(headers, content_type);
	if (s->token[0]) {
		auth = vr_asprintf("x-vcloud-authorization: %s", s->token);
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	if (s->o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->o->ca_file);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (basic) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, s->o->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->o->password);
	}
	CURLcode rc = curl_easy_perform(c);
	if (basic)
		curl_easy_setopt(c, CURLOPT_PASSWORD, "");
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	else
		fail(error_out, "%s %s: %s", method, full, curl_easy_strerror(rc));
	curl_slist_free_all(headers);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(full);
	if (rc != CURLE_OK)
		return VR_EUNAVAIL;
	if (a->status >= 400)
		read_error(a);
	return 0;
}

/* The refusal of an answer as an error text and exit status. */
static int refused(const struct answer *a, const char *what, char **error_out)
{
	fail(error_out, "%s: HTTP %ld%s%s%s%s", what, a->status, a->minor[0] ? " " : "", a->minor,
	     a->message[0] ? ": " : "", a->message);
	return a->status >= 500 || a->status == 429 ? VR_AGENT_PAIR_UNAVAILABLE
						    : VR_AGENT_PAIR_REFUSED;
}

/* Write data to dir/name through a temporary file with mode. */
static int write_file(const char *dir, const char *name, const char *data, mode_t mode,
		      char **error_out)
{
	char *path = vr_asprintf("%s/%s", dir, name);
	char *tmp = vr_asprintf("%s.tmp", path);
	int rc = VR_EIO;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd >= 0) {
		size_t len = strlen(data), done = 0;
		while (done < len) {
			ssize_t n = write(fd, data + done, len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			done += (size_t)n;
		}
		if (done == len && fchmod(fd, mode) == 0 && fsync(fd) == 0)
			rc = 0;
		if (close(fd) != 0)
			rc = VR_EIO;
		if (!rc && rename(tmp, path) != 0)
			rc = VR_EIO;
		if (rc)
			unlink(tmp);
	}
	if (rc)
		fail(error_out, "cannot write %s: %s", path, strerror(errno));
	free(path);
	free(tmp);
	return rc;
}

/* A text for XML content: & < > escaped. */
static char *xml_text(const char *s)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	for (; *s; s++) {
		const char *e = *s == '&'   ? "&amp;"
				: *s == '<' ? "&lt;"
				: *s == '>' ? "&gt;"
					    : NULL;
		if (e)
			vr_buf_appends(&b, e);
		else
			vr_buf_append(&b, s, 1);
	}
	char *out = vr_buf_take(&b, NULL);
	return out ? out : vr_strdup("");
}

/* The Task's status and, once, its Owner (the peer). */
static int read_task(const struct answer *a, char *status, size_t size, char peer[VR_UUID_LEN + 1],
		     char *message, size_t message_size)
{
	xmlDocPtr doc = NULL;
	const char *reason;
	if (vr_xml_parse(&doc, a->body.data, a->body.len, &reason))
		return VR_EINVAL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int rc = VR_EINVAL;
	if (root && xmlStrcmp(root->name, BAD_CAST "Task") == 0) {
		xmlChar *st = xmlGetProp(root, BAD_CAST "status");
		snprintf(status, size, "%s", st ? (const char *)st : "");
		xmlFree(st);
		rc = status[0] ? 0 : VR_EINVAL;
		for (xmlNodePtr n = root->children; n; n = n->next) {
			if (n->type != XML_ELEMENT_NODE)
				continue;
			if (xmlStrcmp(n->name, BAD_CAST "Owner") == 0 && peer) {
				xmlChar *href = xmlGetProp(n, BAD_CAST "href");
				const char *slash = href ? strrchr((const char *)href, '/') : NULL;
				if (!slash || vr_uuid_canon(peer, slash + 1))
					peer[0] = '\0';
				xmlFree(href);
			} else if (xmlStrcmp(n->name, BAD_CAST "Error") == 0 && message) {
				xmlChar *m = xmlGetProp(n, BAD_CAST "message");
				snprintf(message, message_size, "%s", m ? (const char *)m : "");
				xmlFree(m);
			}
		}
	}
	xmlFreeDoc(doc);
	return rc;
}

static int login(struct session *s, char **error_out)
{
	struct answer a;
	int rc = call(s, "POST", "/api/sessions", NULL, NULL, true, &a, error_out);
	if (!rc && a.status != 200)
		rc = refused(&a, "logging in", error_out);
	else if (!rc && !a.token[0]) {
		fail(error_out, "logging in: the answer carries no x-vcloud-authorization");
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else if (rc) {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	}
	if (!rc)
		snprintf(s->token, sizeof s->token, "%s", a.token);
	answer_free(&a);
	return rc;
}

static void logout(struct session *s)
{
	if (!s->token[0])
		return;
	struct answer a;
	char *error = NULL;
	call(s, "DELETE", "/api/session", NULL, NULL, false, &a, &error);
	answer_free(&a);
	free(error);
	explicit_bzero(s->token, sizeof s->token);
}

/* POST the pairing; keeps the credential and the identity. */
static int post_pairing(struct session *s, struct vr_agent_pair_result *r, char **error_out)
{
	const struct vr_agent_pair_options *o = s->o;
	char *name = xml_text(o->site_name);
	char *description = xml_text(o->description ? o->description : "");
	char *body = vr_asprintf("<PairVcWithVdcParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
				 "<Description>%s</Description><SiteUuid>%s</SiteUuid>"
				 "<SiteName>%s</SiteName></PairVcWithVdcParams>",
				 description, r->site_uuid, name);
	char *path = vr_asprintf("/api/vdc/%s/peers", o->vdc);
	struct answer a;
	int rc = call(s, "POST", path, body, PAIR_TYPE, false, &a, error_out);
	free(name);
	free(description);
	free(body);
	free(path);
	if (rc) {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else if (a.status != 202) {
		rc = refused(&a, "pairing", error_out);
	} else if (!a.credential[0] || !a.location[0]) {
		fail(error_out, "pairing: the answer carries no site credential or no Task");
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else {
		char status[32], message[8];
		if (read_task(&a, status, sizeof status, r->peer_id, message, sizeof message) ||
		    !r->peer_id[0]) {
			fail(error_out, "pairing: the Task names no peer");
			rc = VR_AGENT_PAIR_UNAVAILABLE;
		}
		snprintf(r->task_url, sizeof r->task_url, "%s", a.location);
	}
	if (!rc) {
		char *credential = vr_asprintf("%s\n", a.credential);
		rc = write_file(o->state_dir, VR_AGENT_CREDENTIAL_FILE, credential, 0600,
				error_out);
		explicit_bzero(credential, strlen(credential));
		free(credential);
		char *site = vr_asprintf("# written by vrcloud-agent pair\n[site]\npeer_id = %s\n"
					 "site_uuid = %s\nsite_name = %s\nvdc = %s\napi_url = %s\n",
					 r->peer_id, r->site_uuid, o->site_name, o->vdc,
					 o->api_url);
		if (!rc)
			rc = write_file(o->state_dir, VR_AGENT_SITE_FILE, site, 0644, error_out);
		free(site);
		if (rc)
			rc = VR_AGENT_PAIR_CONFIG;
	}
	answer_free(&a);
	return rc;
}

/* Follow the Task until it ends or the timeout passes. */
static int follow_task(struct session *s, struct vr_agent_pair_result *r, char **error_out)
{
	time_t deadline = time(NULL) + (time_t)s->o->timeout;
	for (;;) {
		struct answer a;
		int rc = call(s, "GET", r->task_url, NULL, NULL, false, &a, error_out);
		char status[32] = "", message[512] = "";
		if (!rc && a.status == 200)
			rc = read_task(&a, status, sizeof status, NULL, message, sizeof message);
		else if (!rc)
			rc = refused(&a, "reading the pairing Task", error_out);
		answer_free(&a);
		if (rc == VR_AGENT_PAIR_REFUSED)
			return rc;
		if (!rc && strcmp(status, "success") == 0)
			return 0;
		if (!rc && (strcmp(status, "error") == 0 || strcmp(status, "aborted") == 0 ||
			    strcmp(status, "canceled") == 0)) {
			fail(error_out, "the pairing Task ended with status %s%s%s", status,
			     message[0] ? ": " : "", message);
			return VR_AGENT_PAIR_FAILED;
		}
		if (time(NULL) >= deadline) {
			fail(error_out,
			     "the pairing Task did not end within %u seconds (status %s)",
			     s->o->timeout, status[0] ? status : "unknown");
			return VR_AGENT_PAIR_FAILED;
		}
		sleep(1);
	}
}

int vr_agent_pair(const struct vr_agent_pair_options *o, struct vr_agent_pair_result *r,
		  char **error_out)
{
	*error_out = NULL;
	memset(r, 0, sizeof *r);
	if (o->site_uuid) {
		if (vr_uuid_canon(r->site_uuid, o->site_uuid)) {
			fail(error_out, "--site-uuid '%s' is not a UUID", o->site_uuid);
			return VR_AGENT_PAIR_USAGE;
		}
	} else if (vr_uuid_generate(r->site_uuid)) {
		fail(error_out, "cannot make a site UUID");
		return VR_AGENT_PAIR_CONFIG;
	}
	struct stat st;
	if (stat(o->state_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(o->state_dir, W_OK) != 0) {
		fail(error_out, "state directory %s is not a writable directory", o->state_dir);
		return VR_AGENT_PAIR_CONFIG;
	}
	struct session s = {curl_easy_init(), o, ""};
	if (!s.curl) {
		fail(error_out, "cannot start the HTTP client");
		return VR_AGENT_PAIR_UNAVAILABLE;
	}
	int rc = login(&s, error_out);
	if (!rc)
		rc = post_pairing(&s, r, error_out);
	if (!rc)
		rc = follow_task(&s, r, error_out);
	logout(&s);
	curl_easy_cleanup(s.curl);
	return rc;
}
