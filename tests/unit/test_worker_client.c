/* The worker's HTTP client against a small libmicrohttpd server in the
 * test process: what it sends (bearer token, media types, method, body),
 * how it reads answers (request id, Error minor code, size cap), its
 * timeouts, its abort flag, and that it never follows a redirect. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/worker.h"
#include "vrcloud/xml.h"

#define TOKEN "tok-0123456789abcdef"

/* What the server saw of the last request. */
static struct {
	char method[16];
	char url[256];
	char authorization[128];
	char content_type[128];
	char accept[256];
	char body[1024];
	size_t body_len;
	int requests;
} seen;

static struct MHD_Daemon *daemon_handle;
static unsigned port;

struct upload {
	char data[1024];
	size_t len;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t size)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	snprintf(out, size, "%s", v ? v : "");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const char *body, const char *rid)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	if (rid)
		MHD_add_response_header(r, "X-VMWARE-VCLOUD-REQUEST-ID", rid);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	struct upload *up = *con_cls;
	if (!up) {
		up = calloc(1, sizeof *up);
		*con_cls = up;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		if (up->len + n < sizeof up->data) {
			memcpy(up->data + up->len, upload_data, n);
			up->len += n;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	snprintf(seen.method, sizeof seen.method, "%s", method);
	snprintf(seen.url, sizeof seen.url, "%s", url);
	copy_header(c, "Authorization", seen.authorization, sizeof seen.authorization);
	copy_header(c, "Content-Type", seen.content_type, sizeof seen.content_type);
	copy_header(c, "Accept", seen.accept, sizeof seen.accept);
	memcpy(seen.body, up->data, up->len);
	seen.body[up->len] = '\0';
	seen.body_len = up->len;
	seen.requests++;

	if (strcmp(url, "/api/internal/servers") == 0)
		return reply(c, 200, VR_WORKER_MEDIA_TYPE,
			     "<ReplicaServer xmlns=\"urn:vrcloud:internal:1\"><Id>"
			     "6f1c2a9e-4b7d-4e0a-9c3b-2d5e8f7a1b60</Id><Name>w</Name>"
			     "<TrafficAddress>h:1</TrafficAddress></ReplicaServer>",
			     "rid-0001");
	if (strcmp(url, "/conflict") == 0)
		return reply(c, 409, "application/vnd.vmware.vcloud.error+xml;version=5.1",
			     "<?xml version=\"1.0\"?><Error xmlns=\"http://www.vmware.com/vcloud/"
			     "v1.5\" majorErrorCode=\"409\" minorErrorCode=\"JOB_NOT_HEAD\" "
			     "message=\"m\"/>",
			     "rid-0002");
	if (strcmp(url, "/hostile-rid") == 0)
		return reply(c, 204, NULL, "", "abc def=1\"x");
	if (strcmp(url, "/redirect") == 0) {
		struct MHD_Response *r =
			MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Location", "/api/internal/servers");
		enum MHD_Result ret = MHD_queue_response(c, 302, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/big") == 0) {
		size_t len = VR_WORKER_MAX_ANSWER + 4096;
		char *big = malloc(len + 1);
		memset(big, 'x', len);
		big[len] = '\0';
		enum MHD_Result ret = reply(c, 200, "text/plain", big, NULL);
		free(big);
		return ret;
	}
	if (strcmp(url, "/slow") == 0) {
		sleep(3);
		return reply(c, 204, NULL, "", NULL);
	}
	if (strcmp(url, "/unavailable") == 0)
		return reply(c, 503, "text/html", "<html>down</html>", NULL);
	if (strcmp(url, "/throttled") == 0)
		return reply(c, 429, NULL, "", NULL);
	if (strcmp(url, "/refused") == 0)
		return reply(c, 403, NULL, "", NULL);
	return reply(c, 404, NULL, "", NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

/* 127.0.0.1, any free port. */
static struct sockaddr_in loopback(void)
{
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return addr;
}

static void setup(void)
{
	struct sockaddr_in addr = loopback();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	vr_xml_global_init();
	vr_log_set_level(VR_LOG_ERROR);
	daemon_handle = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
		handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&addr, MHD_OPTION_END);
	cr_assert_not_null(daemon_handle);
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	memset(&seen, 0, sizeof seen);
}

static void teardown(void)
{
	MHD_stop_daemon(daemon_handle);
	curl_global_cleanup();
}

TestSuite(worker_client, .init = setup, .fini = teardown, .timeout = 30);

static struct vr_worker_client *client_for(const char *base, unsigned timeout_ms,
					   const atomic_bool *abort_flag)
{
	struct vr_worker_client_options o = {
		.api_url = base,
		.token = TOKEN,
		.connect_timeout_ms = 2000,
		.timeout_ms = timeout_ms,
		.abort = abort_flag,
	};
	struct vr_worker_client *client = NULL;
	cr_assert_eq(vr_worker_client_new(&client, &o), 0);
	return client;
}

static struct vr_worker_client *client_here(unsigned timeout_ms, const atomic_bool *abort_flag)
{
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%u/", port);
	return client_for(base, timeout_ms, abort_flag);
}

Test(worker_client, post_sends_the_document_with_the_bearer_token)
{
	struct vr_worker_client *client = client_here(5000, NULL);
	struct vr_buf body;
	vr_buf_init(&body, 0);
	cr_assert_eq(vr_worker_doc_server(&body, "w", "h:1"), 0);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/api/internal/servers", &body, &answer),
		     VR_ANSWER_OK);
	cr_assert_eq(answer.status, 200);
	cr_assert_str_eq(answer.request_id, "rid-0001");
	cr_assert_str_eq(seen.method, "POST");
	cr_assert_str_eq(seen.url, "/api/internal/servers", "the base's trailing / is dropped");
	cr_assert_str_eq(seen.authorization, "Bearer " TOKEN);
	cr_assert_str_eq(seen.content_type, VR_WORKER_MEDIA_TYPE);
	cr_assert_not_null(strstr(seen.accept, VR_WORKER_MEDIA_TYPE));
	cr_assert_eq(seen.body_len, body.len);
	cr_assert_str_eq(seen.body, body.data);
	char id[VR_UUID_LEN + 1];
	const char *reason = NULL;
	cr_assert_eq(vr_worker_parse_server(id, answer.body.data, answer.body.len, &reason), 0);
	cr_assert_str_eq(id, "6f1c2a9e-4b7d-4e0a-9c3b-2d5e8f7a1b60");

	/* The same handle, now a DELETE without a body. */
	cr_assert_eq(vr_worker_client_call(client, "DELETE", "/api/internal/servers", NULL,
					   &answer),
		     VR_ANSWER_OK);
	cr_assert_str_eq(seen.method, "DELETE");
	cr_assert_eq(seen.body_len, 0);
	cr_assert_str_eq(seen.content_type, "");
	cr_assert_eq(seen.requests, 2);
	vr_worker_answer_free(&answer);
	vr_buf_free(&body);
	vr_worker_client_free(client);
}

Test(worker_client, kinds_of_answers)
{
	struct vr_worker_client *client = client_here(5000, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/conflict", NULL, &answer),
		     VR_ANSWER_CONFLICT);
	cr_assert_str_eq(answer.minor, "JOB_NOT_HEAD");
	cr_assert_str_eq(answer.request_id, "rid-0002");
	cr_assert_eq(vr_worker_client_call(client, "POST", "/nothing", NULL, &answer),
		     VR_ANSWER_NOT_FOUND);
	cr_assert_str_eq(answer.minor, "");
	cr_assert_str_eq(answer.request_id, "", "no id from the previous answer");
	cr_assert_eq(vr_worker_client_call(client, "POST", "/unavailable", NULL, &answer),
		     VR_ANSWER_UNAVAILABLE);
	cr_assert_eq(answer.status, 503);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/throttled", NULL, &answer),
		     VR_ANSWER_UNAVAILABLE);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/refused", NULL, &answer),
		     VR_ANSWER_REFUSED);
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, redirects_are_not_followed)
{
	struct vr_worker_client *client = client_here(5000, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/redirect", NULL, &answer),
		     VR_ANSWER_REFUSED);
	cr_assert_eq(answer.status, 302);
	cr_assert_eq(seen.requests, 1, "the token went nowhere else");
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, request_id_keeps_only_id_characters)
{
	struct vr_worker_client *client = client_here(5000, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/hostile-rid", NULL, &answer),
		     VR_ANSWER_OK);
	cr_assert_str_eq(answer.request_id, "abc");
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, answers_are_capped)
{
	struct vr_worker_client *client = client_here(10000, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "GET", "/big", NULL, &answer),
		     VR_ANSWER_UNAVAILABLE);
	cr_assert_eq(answer.status, 0);
	cr_assert_not_null(strstr(answer.error, "longer than"), "%s", answer.error);
	cr_assert_leq(answer.body.len, VR_WORKER_MAX_ANSWER);
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, calls_time_out)
{
	struct vr_worker_client *client = client_here(500, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/slow", NULL, &answer),
		     VR_ANSWER_UNAVAILABLE);
	cr_assert_eq(answer.status, 0);
	cr_assert_str_neq(answer.error, "");
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

static void *raise_flag(void *arg)
{
	usleep(300 * 1000);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

Test(worker_client, abort_flag_cuts_a_call_short)
{
	static atomic_bool abort_flag;
	atomic_init(&abort_flag, false);
	struct vr_worker_client *client = client_here(20000, &abort_flag);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	pthread_t t;
	pthread_create(&t, NULL, raise_flag, &abort_flag);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/slow", NULL, &answer),
		     VR_ANSWER_ABORTED);
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_assert_lt(seconds, 2.5, "took %.2f s", seconds);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/api/internal/servers", NULL, &answer),
		     VR_ANSWER_ABORTED, "no call starts once the flag is up");
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, unreachable_api)
{
	/* A port nothing listens on: bind one, take its number, close it. */
	struct sockaddr_in addr = loopback();
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
						handler, NULL, MHD_OPTION_SOCK_ADDR,
						(struct sockaddr *)&addr, MHD_OPTION_END);
	cr_assert_not_null(d);
	unsigned closed = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	MHD_stop_daemon(d);
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%u", closed);
	struct vr_worker_client *client = client_for(base, 2000, NULL);
	struct vr_worker_answer answer;
	vr_worker_answer_init(&answer);
	cr_assert_eq(vr_worker_client_call(client, "POST", "/api/internal/servers", NULL, &answer),
		     VR_ANSWER_UNAVAILABLE);
	cr_assert_eq(answer.status, 0);
	cr_assert_str_neq(answer.error, "");
	vr_worker_answer_free(&answer);
	vr_worker_client_free(client);
}

Test(worker_client, bad_options)
{
	struct vr_worker_client *client = NULL;
	struct vr_worker_client_options o = {.api_url = "http://h", .token = ""};
	cr_assert_eq(vr_worker_client_new(&client, &o), VR_EINVAL);
	o.token = "two words";
	cr_assert_eq(vr_worker_client_new(&client, &o), VR_EINVAL);
	o.token = "crlf\r\nX-Injected: 1";
	cr_assert_eq(vr_worker_client_new(&client, &o), VR_EINVAL);
	cr_assert_null(client);
}
