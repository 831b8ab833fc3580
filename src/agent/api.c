/* The agent's client of vrcloud-api, shared by pair, protect and
 * unprotect: log in with Basic, call with the session token, read vCD
 * Errors and Tasks, follow a Task to its end, log out. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
#include "vrcloud/err.h"
#include "vrcloud/xml.h"

#define ACCEPT	   "Accept: application/*+xml;version=5.6"
#define MAX_ANSWER ((size_t)1024 * 1024)

struct vr_agent_api {
	CURL *curl;
	struct vr_agent_api_options o;
	char token[256];
};

void vr_agent_fail(char **error_out, const char *fmt, ...)
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
	struct vr_agent_answer *a = arg;
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
	struct vr_agent_answer *a = arg;
	size_t len = size * n;
	header_value(line, len, "x-vcloud-authorization", a->token, sizeof a->token);
	header_value(line, len, "X-VRCLOUD-SITE-CREDENTIAL", a->credential, sizeof a->credential);
	header_value(line, len, "Location", a->location, sizeof a->location);
	return len;
}

void vr_agent_answer_free(struct vr_agent_answer *a)
{
	explicit_bzero(a->credential, sizeof a->credential);
	explicit_bzero(a->token, sizeof a->token);
	vr_buf_free(&a->body);
}

/* The minor code and message of a vCD Error body, if it is one. */
static void read_error(struct vr_agent_answer *a)
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

static int call(struct vr_agent_api *s, const char *method, const char *url, const char *body,
		const char *content_type, bool basic, struct vr_agent_answer *a, char **error_out)
{
	memset(a, 0, sizeof *a);
	vr_buf_init(&a->body, MAX_ANSWER);
	CURL *c = s->curl;
	curl_easy_reset(c);
	char *full = url[0] == '/' ? vr_asprintf("%s%s", s->o.api_url, url) : vr_strdup(url);
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
	if (s->o.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->o.ca_file);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (basic) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, s->o.user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->o.password);
	}
	CURLcode rc = curl_easy_perform(c);
	if (basic)
		curl_easy_setopt(c, CURLOPT_PASSWORD, "");
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	else
		vr_agent_fail(error_out, "%s %s: %s", method, full, curl_easy_strerror(rc));
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

int vr_agent_api_call(struct vr_agent_api *api, const char *method, const char *url,
		      const char *body, const char *content_type, struct vr_agent_answer *a,
		      char **error_out)
{
	return call(api, method, url, body, content_type, false, a, error_out);
}

int vr_agent_api_refused(const struct vr_agent_answer *a, const char *what, char **error_out)
{
	vr_agent_fail(error_out, "%s: HTTP %ld%s%s%s%s", what, a->status, a->minor[0] ? " " : "",
		      a->minor, a->message[0] ? ": " : "", a->message);
	return a->status >= 500 || a->status == 429 ? VR_AGENT_PAIR_UNAVAILABLE
						    : VR_AGENT_PAIR_REFUSED;
}

int vr_agent_file_write(const char *dir, const char *name, const char *data, mode_t mode,
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
		vr_agent_fail(error_out, "cannot write %s: %s", path, strerror(errno));
	free(path);
	free(tmp);
	return rc;
}

char *vr_agent_xml_text(const char *s)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	for (; *s; s++) {
		const char *e = *s == '&'   ? "&amp;"
				: *s == '<' ? "&lt;"
				: *s == '>' ? "&gt;"
				: *s == '"' ? "&quot;"
					    : NULL;
		if (e)
			vr_buf_appends(&b, e);
		else
			vr_buf_append(&b, s, 1);
	}
	char *out = vr_buf_take(&b, NULL);
	return out ? out : vr_strdup("");
}

int vr_agent_task_read(const struct vr_agent_answer *a, char *status, size_t size,
		       char owner[VR_UUID_LEN + 1], char *message, size_t message_size)
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
			if (xmlStrcmp(n->name, BAD_CAST "Owner") == 0 && owner) {
				xmlChar *href = xmlGetProp(n, BAD_CAST "href");
				const char *slash = href ? strrchr((const char *)href, '/') : NULL;
				if (!slash || vr_uuid_canon(owner, slash + 1))
					owner[0] = '\0';
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

int vr_agent_api_open(struct vr_agent_api **out, const struct vr_agent_api_options *o,
		      char **error_out)
{
	*out = NULL;
	struct vr_agent_api *s = vr_calloc(1, sizeof *s);
	s->o = *o;
	s->curl = curl_easy_init();
	if (!s->curl) {
		vr_agent_fail(error_out, "cannot start the HTTP client");
		free(s);
		return VR_AGENT_PAIR_UNAVAILABLE;
	}
	struct vr_agent_answer a;
	int rc = call(s, "POST", "/api/sessions", NULL, NULL, true, &a, error_out);
	if (!rc && a.status != 200)
		rc = vr_agent_api_refused(&a, "logging in", error_out);
	else if (!rc && !a.token[0]) {
		vr_agent_fail(error_out,
			      "logging in: the answer carries no x-vcloud-authorization");
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	} else if (rc) {
		rc = VR_AGENT_PAIR_UNAVAILABLE;
	}
	if (!rc)
		snprintf(s->token, sizeof s->token, "%s", a.token);
	vr_agent_answer_free(&a);
	if (rc) {
		curl_easy_cleanup(s->curl);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void vr_agent_api_close(struct vr_agent_api *s)
{
	if (!s)
		return;
	if (s->token[0]) {
		struct vr_agent_answer a;
		char *error = NULL;
		call(s, "DELETE", "/api/session", NULL, NULL, false, &a, &error);
		vr_agent_answer_free(&a);
		free(error);
		explicit_bzero(s->token, sizeof s->token);
	}
	curl_easy_cleanup(s->curl);
	free(s);
}

int vr_agent_api_follow_task(struct vr_agent_api *s, const char *task_url, unsigned timeout_s,
			     const char *what, char **error_out)
{
	time_t deadline = time(NULL) + (time_t)timeout_s;
	char *reading = vr_asprintf("reading the %s Task", what);
	int rc;
	for (;;) {
		struct vr_agent_answer a;
		rc = call(s, "GET", task_url, NULL, NULL, false, &a, error_out);
		char status[32] = "", message[512] = "";
		if (!rc && a.status == 200)
			rc = vr_agent_task_read(&a, status, sizeof status, NULL, message,
						sizeof message);
		else if (!rc)
			rc = vr_agent_api_refused(&a, reading, error_out);
		vr_agent_answer_free(&a);
		if (rc == VR_AGENT_PAIR_REFUSED)
			break;
		if (!rc && strcmp(status, "success") == 0)
			break;
		if (!rc && (strcmp(status, "error") == 0 || strcmp(status, "aborted") == 0 ||
			    strcmp(status, "canceled") == 0)) {
			vr_agent_fail(error_out, "the %s Task ended with status %s%s%s", what,
				      status, message[0] ? ": " : "", message);
			rc = VR_AGENT_PAIR_FAILED;
			break;
		}
		if (time(NULL) >= deadline) {
			vr_agent_fail(error_out,
				      "the %s Task did not end within %u seconds (status %s)", what,
				      timeout_s, status[0] ? status : "unknown");
			rc = VR_AGENT_PAIR_FAILED;
			break;
		}
		sleep(1);
	}
	free(reading);
	return rc == VR_AGENT_PAIR_REFUSED || rc == VR_AGENT_PAIR_FAILED ? rc : 0;
}
