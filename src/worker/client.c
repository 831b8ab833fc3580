/* The worker's HTTP client of the internal API (libcurl, one easy handle
 * per thread). Every call has a connect and a total timeout, never follows
 * a redirect (the bearer token goes to the configured API only), caps the
 * answer it reads, and can be cut short by the worker's abort flag. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/worker.h"

#define REQUEST_ID_HEADER "X-VMWARE-VCLOUD-REQUEST-ID"

struct vr_worker_client {
	CURL *curl;
	char *base;	     /* api_url without a trailing '/' */
	char *authorization; /* "Authorization: Bearer ..." (wiped on free) */
	unsigned connect_timeout_ms;
	unsigned timeout_ms;
	const atomic_bool *abort;
};

void vr_worker_answer_init(struct vr_worker_answer *answer)
{
	memset(answer, 0, sizeof *answer);
	vr_buf_init(&answer->body, VR_WORKER_MAX_ANSWER);
}

void vr_worker_answer_free(struct vr_worker_answer *answer)
{
	if (!answer)
		return;
	vr_buf_free(&answer->body);
	memset(answer, 0, sizeof *answer);
}

int vr_worker_client_new(struct vr_worker_client **out,
			 const struct vr_worker_client_options *options)
{
	*out = NULL;
	if (!options->api_url || !options->token || !options->token[0])
		return VR_EINVAL;
	for (const char *p = options->token; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return VR_EINVAL;
	struct vr_worker_client *client = vr_calloc(1, sizeof *client);
	client->curl = curl_easy_init();
	if (!client->curl) {
		free(client);
		return VR_ENOMEM;
	}
	client->base = vr_strdup(options->api_url);
	size_t len = strlen(client->base);
	while (len && client->base[len - 1] == '/')
		client->base[--len] = '\0';
	client->authorization = vr_asprintf("Authorization: Bearer %s", options->token);
	client->connect_timeout_ms = options->connect_timeout_ms ? options->connect_timeout_ms
								 : 5000;
	client->timeout_ms = options->timeout_ms ? options->timeout_ms : 30000;
	client->abort = options->abort;
	*out = client;
	return 0;
}

void vr_worker_client_free(struct vr_worker_client *client)
{
	if (!client)
		return;
	if (client->curl)
		curl_easy_cleanup(client->curl);
	if (client->authorization) {
		explicit_bzero(client->authorization, strlen(client->authorization));
		free(client->authorization);
	}
	free(client->base);
	free(client);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct vr_worker_answer *answer = user;
	size_t len = size * nmemb;
	/* Returning less than len makes curl stop with a write error. */
	return vr_buf_append(&answer->body, data, len) == 0 ? len : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct vr_worker_answer *answer = user;
	size_t len = size * nmemb;
	size_t name_len = strlen(REQUEST_ID_HEADER);
	if (len > name_len && data[name_len] == ':' &&
	    strncasecmp(data, REQUEST_ID_HEADER, name_len) == 0) {
		const char *v = data + name_len + 1;
		const char *end = data + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		size_t n = 0;
		/* Keep what a request id is made of, so nothing the answer says
		 * can shape a log line. */
		while (v < end && n + 1 < sizeof answer->request_id &&
		       (isalnum((unsigned char)*v) || *v == '-' || *v == '_' || *v == '.'))
			answer->request_id[n++] = *v++;
		answer->request_id[n] = '\0';
	}
	return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct vr_worker_client *client = user;
	return client->abort && atomic_load(client->abort) ? 1 : 0;
}

enum vr_worker_answer_kind vr_worker_answer_classify(const struct vr_worker_answer *answer)
{
	long s = answer->status;
	if (s >= 200 && s < 300)
		return VR_ANSWER_OK;
	if (s == 404)
		return VR_ANSWER_NOT_FOUND;
	if (s == 409)
		return VR_ANSWER_CONFLICT;
	/* No answer, a 5xx, 408 and 429 all say "later". */
	if (s == 0 || s >= 500 || s == 408 || s == 429)
		return VR_ANSWER_UNAVAILABLE;
	/* Other 4xx, and redirects (never followed: api_url is wrong). */
	return VR_ANSWER_REFUSED;
}

enum vr_worker_answer_kind vr_worker_client_call(struct vr_worker_client *client,
						 const char *method, const char *path,
						 const struct vr_buf *body,
						 struct vr_worker_answer *answer)
{
	vr_buf_free(&answer->body);
	vr_worker_answer_init(answer);
	vr_log_set_request_id(NULL);
	if (client->abort && atomic_load(client->abort)) {
		snprintf(answer->error, sizeof answer->error, "the worker is shutting down");
		return VR_ANSWER_ABORTED;
	}
	CURL *c = client->curl;
	char *url = vr_asprintf("%s%s", client->base, path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	headers = curl_slist_append(headers, client->authorization);
	headers = curl_slist_append(headers, "Accept: " VR_WORKER_MEDIA_TYPE
					     ", application/vnd.vmware.vcloud.error+xml");
	headers = curl_slist_append(headers, "Expect:");
	if (body && body->len)
		headers = curl_slist_append(headers, "Content-Type: " VR_WORKER_MEDIA_TYPE);

	/* A reset keeps the connection cache, so calls reuse the connection. */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vrcloud-worker/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)client->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)client->timeout_ms);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, answer);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, client);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body && body->data ? body->data : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, body ? (long)body->len : 0L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode rc = curl_easy_perform(c);
	enum vr_worker_answer_kind kind;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer->status);
		kind = vr_worker_answer_classify(answer);
		if (kind != VR_ANSWER_OK && answer->body.len) {
			const char *reason = NULL;
			vr_worker_parse_error(answer->minor, sizeof answer->minor,
					      answer->body.data, answer->body.len, &reason);
		}
	} else if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(answer->error, sizeof answer->error, "the worker is shutting down");
		kind = VR_ANSWER_ABORTED;
	} else {
		answer->status = 0;
		if (rc == CURLE_WRITE_ERROR && answer->body.len)
			snprintf(answer->error, sizeof answer->error,
				 "the answer is longer than %zu bytes", VR_WORKER_MAX_ANSWER);
		else
			snprintf(answer->error, sizeof answer->error, "%s",
				 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		kind = VR_ANSWER_UNAVAILABLE;
	}
	/* Nothing that outlives this call may point at these. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	for (struct curl_slist *h = headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
	free(url);
	vr_log_set_request_id(answer->request_id[0] ? answer->request_id : NULL);
	return kind;
}
