/* Integration test harness: services, database, fixtures and API for one
 * test program (runner side), and the HTTP, XML and database helpers the
 * tests use (worker side). See harness.h. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <openssl/evp.h>

#include "integration/harness.h"
#include "vrcloud/auth.h"
#include "vrcloud/password.h"
#include "vrcloud/redis.h"
#include "vrcloud/xml.h"

/* ======================================================================
 * Small utilities
 * ====================================================================== */

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	return s;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vrt: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void vrt_sleep(double seconds)
{
	struct timespec ts;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

double vrt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* Whole file as a string (caller frees), NULL when unreadable. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *data = malloc(cap);
	if (!data)
		abort();
	size_t n;
	while ((n = fread(data + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
	}
	fclose(f);
	data[len] = '\0';
	return data;
}

static void print_tail(const char *path, size_t bytes)
{
	char *text = read_file(path);
	if (!text)
		return;
	size_t len = strlen(text);
	const char *start = len > bytes ? text + len - bytes : text;
	fprintf(stderr, "----- %s%s -----\n%s\n----- end of %s -----\n",
		len > bytes ? "end of " : "", path, start, path);
	free(text);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *path)
{
	if (path && path[0])
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *srcdir(void)
{
	const char *d = getenv("VRCLOUD_SRCDIR");
	return d && d[0] ? d : VR_SRCDIR;
}

static const char *builddir(void)
{
	const char *d = getenv("VRCLOUD_BUILDDIR");
	return d && d[0] ? d : VR_BUILDDIR;
}

/* ======================================================================
 * Processes
 * ====================================================================== */

/* fork + exec argv with stdin from /dev/null and stdout/stderr appended
 * to out_path. With die_with_parent the child gets SIGTERM when the
 * process that started it dies, whatever the way. */
static pid_t spawn(char *const argv[], const char *out_path, bool die_with_parent)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		return pid;
	if (die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
	}
	setpgid(0, 0); /* a ^C in the terminal is the runner's to handle */
	int in = open("/dev/null", O_RDONLY);
	int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (in < 0 || out < 0)
		_exit(127);
	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	if (in > 2)
		close(in);
	if (out > 2)
		close(out);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Wait up to timeout_s for pid. Returns its exit status, 256 + signal,
 * or -1 when it is still running. */
static int wait_for(pid_t pid, double timeout_s)
{
	double deadline = vrt_now() + timeout_s;
	for (;;) {
		int st = 0;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 256 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return 256; /* not our child any more */
		if (vrt_now() >= deadline)
			return -1;
		vrt_sleep(0.02);
	}
}

/* Run argv to completion (timeout_s at most) with output to out_path. */
static int run_command(char *const argv[], const char *out_path, double timeout_s)
{
	pid_t pid = spawn(argv, out_path, true);
	if (pid < 0)
		return -1;
	int st = wait_for(pid, timeout_s);
	if (st == -1) {
		kill(pid, SIGKILL);
		wait_for(pid, 5);
	}
	return st;
}

/* ======================================================================
 * Environment helpers
 * ====================================================================== */

const char *vrt_env(const char *name)
{
	const char *v = getenv(name);
	cr_assert(v && v[0], "the harness did not set %s (did its setup run?)", name);
	return v;
}

/* prefix + the name in capitals, other characters as '_'. */
static char *env_name(const char *prefix, const char *name)
{
	char *env = xasprintf("%s%s", prefix, name);
	for (char *p = env + strlen(prefix); *p; p++)
		*p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
	return env;
}

static char *token_env_name(const char *user)
{
	return env_name("VRT_TOKEN_", user);
}

static char *service_env_name(const char *service)
{
	return env_name("VRT_SERVICE_TOKEN_", service);
}

const char *vrt_token(const char *user)
{
	char *name = token_env_name(user);
	const char *v = getenv(name);
	cr_assert(v && v[0], "no token for %s in %s", user, name);
	free(name);
	return v;
}

const char *vrt_service_token(const char *service)
{
	char *name = service_env_name(service);
	const char *v = getenv(name);
	cr_assert(v && v[0], "no token for the service %s in %s", service, name);
	free(name);
	return v;
}

const char *vrt_base_url(void)
{
	return vrt_env("VRT_BASE_URL");
}

const char *vrt_public_url(void)
{
	return vrt_env("VRT_PUBLIC_URL");
}

const char *vrt_system_org(void)
{
	return vrt_env("VRT_SYSTEM_ORG");
}

/* ======================================================================
 * HTTP
 * ====================================================================== */

static void curl_init_once(void)
{
	static bool done;
	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = true;
	}
}

struct body_sink {
	char *data;
	size_t len, cap;
};

static void sink_append(struct body_sink *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap < s->len + n + 1)
			cap *= 2;
		s->data = realloc(s->data, cap);
		if (!s->data)
			abort();
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	sink_append(ud, p, size * n);
	return size * n;
}

static void headers_clear(struct vrt_resp *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

static void header_add(struct vrt_resp *r, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue): forget the last one */
		headers_clear(r);
		return;
	}
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return;
	const char *v = colon + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	r->headers = realloc(r->headers, (r->nheaders + 1) * sizeof *r->headers);
	if (!r->headers)
		abort();
	r->headers[r->nheaders].name = strndup(line, (size_t)(colon - line));
	r->headers[r->nheaders].value = strndup(v, (size_t)(end - v));
	if (!r->headers[r->nheaders].name || !r->headers[r->nheaders].value)
		abort();
	r->nheaders++;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	header_add(ud, p, size * n);
	return size * n;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t want = size * n, left = u->len - u->off;
	/* small pieces, so that a chunked body really comes in chunks */
	if (want > 4096)
		want = 4096;
	if (want > left)
		want = left;
	memcpy(buf, u->data + u->off, want);
	u->off += want;
	return want;
}

static bool has_header_line(const char *const *lines, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; lines && lines[i]; i++)
		if (strncasecmp(lines[i], name, n) == 0 && lines[i][n] == ':')
			return true;
	return false;
}

static char *basic_header(const char *credentials)
{
	size_t len = strlen(credentials);
	unsigned char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		abort();
	EVP_EncodeBlock(out, (const unsigned char *)credentials, (int)len);
	char *h = xasprintf("Authorization: Basic %s", (char *)out);
	free(out);
	return h;
}

int vrt_call(const struct vrt_call *call, struct vrt_resp *resp)
{
	curl_init_once();
	memset(resp, 0, sizeof *resp);
	const char *base = call->base ? call->base : vrt_base_url();
	const char *method = call->method ? call->method : "GET";
	char *url = xasprintf("%s%s", base, call->path);
	CURL *c = curl_easy_init();
	if (!c)
		abort();
	struct body_sink sink = {0};
	struct upload upload = {0};
	struct curl_slist *lines = NULL;
	char *owned[4] = {NULL, NULL, NULL, NULL};

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	if (call->source_addr) {
		owned[0] = xasprintf("host!%s", call->source_addr);
		curl_easy_setopt(c, CURLOPT_INTERFACE, owned[0]);
	}

	if (!has_header_line(call->headers, "Expect"))
		lines = curl_slist_append(lines, "Expect:");
	if (!has_header_line(call->headers, "Accept")) {
		const char *accept = call->accept ? call->accept : VRT_ACCEPT;
		if (accept[0]) {
			owned[1] = xasprintf("Accept: %s", accept);
			lines = curl_slist_append(lines, owned[1]);
		} else {
			lines = curl_slist_append(lines, "Accept:");
		}
	}
	if (call->token) {
		owned[2] = xasprintf("x-vcloud-authorization: %s", call->token);
		lines = curl_slist_append(lines, owned[2]);
	}
	if (call->bearer) {
		owned[3] = xasprintf("Authorization: Bearer %s", call->bearer);
		lines = curl_slist_append(lines, owned[3]);
	}
	char *basic = call->basic ? basic_header(call->basic) : NULL;
	if (basic)
		lines = curl_slist_append(lines, basic);
	for (size_t i = 0; call->headers && call->headers[i]; i++)
		lines = curl_slist_append(lines, call->headers[i]);

	size_t body_len = 0;
	if (call->body)
		body_len = call->body_len < 0 ? strlen(call->body) : (size_t)call->body_len;
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (call->body && call->chunked) {
		upload.data = call->body;
		upload.len = body_len;
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &upload);
		lines = curl_slist_append(lines, "Transfer-Encoding: chunked");
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (call->body || strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, call->body ? call->body : "");
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, lines);

	CURLcode rc = curl_easy_perform(c);
	int result = 0;
	if (rc != CURLE_OK) {
		say("%s %s: %s", method, url, curl_easy_strerror(rc));
		result = -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = sink.data ? sink.data : xstrdup("");
	resp->body_len = sink.len;
	curl_easy_cleanup(c);
	curl_slist_free_all(lines);
	free(basic);
	for (size_t i = 0; i < 4; i++)
		free(owned[i]);
	free(url);
	return result;
}

int vrt_request(const char *method, const char *path, const char *const *headers, const char *body,
		struct vrt_resp *resp)
{
	struct vrt_call call = {
		.method = method, .path = path, .headers = headers, .body = body, .body_len = -1};
	return vrt_call(&call, resp);
}

void vrt_get(const char *path, const char *token, struct vrt_resp *resp)
{
	struct vrt_call call = {.path = path, .token = token};
	cr_assert_eq(vrt_call(&call, resp), 0, "GET %s: no response", path);
}

void vrt_resp_free(struct vrt_resp *resp)
{
	headers_clear(resp);
	free(resp->body);
	memset(resp, 0, sizeof *resp);
}

const char *vrt_header(const struct vrt_resp *resp, const char *name)
{
	for (size_t i = 0; i < resp->nheaders; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

size_t vrt_header_count(const struct vrt_resp *resp, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < resp->nheaders; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			n++;
	return n;
}

/* Parse a complete HTTP/1.x response in data into resp; false while it is
 * still incomplete (by Content-Length; without one, until the end). */
static bool parse_raw_response(const char *data, size_t len, bool at_eof, struct vrt_resp *resp)
{
	const char *end = memmem(data, len, "\r\n\r\n", 4);
	if (!end)
		return false;
	size_t head_len = (size_t)(end - data) + 4;
	struct vrt_resp r = {0};
	const char *p = data;
	long content_length = -1;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
		if (!eol)
			break;
		if (p == data) {
			const char *sp = memchr(p, ' ', (size_t)(eol - p));
			r.status = sp ? strtol(sp + 1, NULL, 10) : 0;
		} else {
			header_add(&r, p, (size_t)(eol - p));
		}
		p = eol + 2;
	}
	const char *cl = vrt_header(&r, "Content-Length");
	if (cl)
		content_length = strtol(cl, NULL, 10);
	size_t have = len - head_len;
	if (content_length >= 0 && have < (size_t)content_length && !at_eof) {
		headers_clear(&r);
		return false;
	}
	if (content_length < 0 && !at_eof) {
		headers_clear(&r);
		return false;
	}
	size_t body_len = content_length >= 0 && (size_t)content_length < have
				  ? (size_t)content_length
				  : have;
	r.body = malloc(body_len + 1);
	if (!r.body)
		abort();
	memcpy(r.body, data + head_len, body_len);
	r.body[body_len] = '\0';
	r.body_len = body_len;
	*resp = r;
	return true;
}

int vrt_raw(const char *request, size_t len, struct vrt_resp *resp)
{
	memset(resp, 0, sizeof *resp);
	const char *base = vrt_base_url();
	const char *colon = strrchr(base, ':');
	int port = colon ? atoi(colon + 1) : 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	struct body_sink sink = {0};
	double deadline = vrt_now() + 30;
	bool done = false;
	while (!done && vrt_now() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		char buf[8192];
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0) {
			done = sink.len > 0 && parse_raw_response(sink.data, sink.len, true, resp);
			break;
		}
		sink_append(&sink, buf, (size_t)n);
		done = parse_raw_response(sink.data, sink.len, false, resp);
	}
	close(fd);
	free(sink.data);
	return done ? 0 : -1;
}

char *vrt_login(const char *base, const char *user_at_org, const char *password, long *status_out)
{
	char *credentials = xasprintf("%s:%s", user_at_org, password);
	struct vrt_call call = {
		.base = base, .method = "POST", .path = "/api/sessions", .basic = credentials};
	struct vrt_resp resp;
	int rc = vrt_call(&call, &resp);
	free(credentials);
	if (status_out)
		*status_out = rc ? 0 : resp.status;
	const char *token = vrt_header(&resp, "x-vcloud-authorization");
	char *result = rc == 0 && resp.status == 200 && token && token[0] ? xstrdup(token) : NULL;
	vrt_resp_free(&resp);
	return result;
}

/* ======================================================================
 * XML
 * ====================================================================== */

static struct vr_xml_schema *schema_get(void)
{
	static struct vr_xml_schema *schema;
	if (!schema) {
		char *path = xasprintf("%s/schema/vrcloud.xsd", srcdir());
		int rc = vr_xml_schema_load(&schema, path);
		cr_assert_eq(rc, 0, "cannot load the schema %s (%d)", path, rc);
		free(path);
	}
	return schema;
}

static xmlDocPtr parse_doc(const char *body, size_t len)
{
	xmlDocPtr doc = NULL;
	const char *reason = NULL;
	if (vr_xml_parse(&doc, body, len, &reason) != 0)
		return NULL;
	return doc;
}

int vrt_validate(const char *body, size_t len, char **error_out)
{
	*error_out = NULL;
	xmlDocPtr doc = parse_doc(body, len);
	if (!doc) {
		*error_out = xstrdup("not well-formed XML");
		return -1;
	}
	char *message = NULL;
	int rc = vr_xml_schema_validate(schema_get(), doc, &message);
	xmlFreeDoc(doc);
	if (rc) {
		*error_out = message ? message : xstrdup("not valid");
		return -1;
	}
	free(message);
	return 0;
}

static xmlXPathObjectPtr xpath_eval(xmlDocPtr doc, const char *xpath)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	if (!ctx)
		abort();
	xmlXPathRegisterNs(ctx, BAD_CAST "v", BAD_CAST VR_NS_VCLOUD);
	xmlXPathRegisterNs(ctx, BAD_CAST "vr", BAD_CAST VR_NS_VR);
	xmlXPathRegisterNs(ctx, BAD_CAST "ver", BAD_CAST VR_NS_VERSIONS);
	xmlXPathRegisterNs(ctx, BAD_CAST "ext", BAD_CAST VR_NS_EXTENSION);
	xmlXPathRegisterNs(ctx, BAD_CAST "vi", BAD_CAST VRT_NS_INTERNAL);
	xmlXPathObjectPtr obj = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
	xmlXPathFreeContext(ctx);
	return obj;
}

long vrt_xpath_count(const char *body, const char *xpath)
{
	xmlDocPtr doc = parse_doc(body, strlen(body));
	if (!doc)
		return -1;
	xmlXPathObjectPtr obj = xpath_eval(doc, xpath);
	cr_assert_not_null(obj, "bad XPath expression %s", xpath);
	long n = 0;
	if (obj->type == XPATH_NODESET)
		n = obj->nodesetval ? obj->nodesetval->nodeNr : 0;
	else if (obj->type == XPATH_NUMBER)
		n = (long)obj->floatval;
	else if (obj->type == XPATH_BOOLEAN)
		n = obj->boolval;
	xmlXPathFreeObject(obj);
	xmlFreeDoc(doc);
	return n;
}

char *vrt_xpath_str(const char *body, const char *xpath)
{
	xmlDocPtr doc = parse_doc(body, strlen(body));
	if (!doc)
		return NULL;
	xmlXPathObjectPtr obj = xpath_eval(doc, xpath);
	cr_assert_not_null(obj, "bad XPath expression %s", xpath);
	xmlChar *s = xmlXPathCastToString(obj);
	char *result = xstrdup((const char *)s);
	xmlFree(s);
	xmlXPathFreeObject(obj);
	xmlFreeDoc(doc);
	return result;
}

void vrt_assert_valid_at(const struct vrt_resp *resp, const char *what, const char *file, int line)
{
	cr_assert(resp->body_len > 0, "%s:%d: %s: empty body (status %ld)", file, line, what,
		  resp->status);
	char *error = NULL;
	int rc = vrt_validate(resp->body, resp->body_len, &error);
	cr_assert_eq(rc, 0,
		     "%s:%d: %s: the response does not validate against the schema: %s\n%.3000s",
		     file, line, what, error ? error : "", resp->body);
	free(error);
}

void vrt_assert_error_at(const struct vrt_resp *resp, long status, const char *minor,
			 const char *what, const char *file, int line)
{
	cr_assert_eq(resp->status, status, "%s:%d: %s: status %ld, expected %ld\n%.2000s", file,
		     line, what, resp->status, status, resp->body);
	const char *ct = vrt_header(resp, "Content-Type");
	static const char prefix[] = "application/vnd.vmware.vcloud.error+xml;version=";
	cr_assert(ct && strncmp(ct, prefix, sizeof prefix - 1) == 0 && ct[sizeof prefix - 1],
		  "%s:%d: %s: Content-Type '%s' is not the vCD error type with a version", file,
		  line, what, ct ? ct : "(none)");
	vrt_assert_valid_at(resp, what, file, line);
	cr_assert_eq(vrt_xpath_count(resp->body, "/v:Error"), 1,
		     "%s:%d: %s: root is not a vCloud Error:\n%s", file, line, what, resp->body);
	char *major = vrt_xpath_str(resp->body, "string(/v:Error/@majorErrorCode)");
	cr_assert_eq(strtol(major, NULL, 10), status, "%s:%d: %s: majorErrorCode %s, expected %ld",
		     file, line, what, major, status);
	free(major);
	if (minor) {
		char *got = vrt_xpath_str(resp->body, "string(/v:Error/@minorErrorCode)");
		cr_assert_str_eq(got, minor, "%s:%d: %s: minorErrorCode %s, expected %s", file,
				 line, what, got, minor);
		free(got);
	}
	char *message = vrt_xpath_str(resp->body, "string(/v:Error/@message)");
	cr_assert(message[0], "%s:%d: %s: the Error has no message", file, line, what);
	free(message);
}

/* ======================================================================
 * Database
 * ====================================================================== */

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *connect_or_null(const char *uri, char **error_out)
{
	PGconn *conn = PQconnectdb(uri);
	if (PQstatus(conn) != CONNECTION_OK) {
		if (error_out)
			*error_out = xstrdup(PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	return conn;
}

static PGconn *test_conn;

PGconn *vrt_db(void)
{
	if (!test_conn || PQstatus(test_conn) != CONNECTION_OK) {
		if (test_conn)
			PQfinish(test_conn);
		char *error = NULL;
		test_conn = connect_or_null(vrt_env("VRT_DB_URI"), &error);
		cr_assert_not_null(test_conn, "cannot connect to the suite database: %s", error);
		PQsetNoticeProcessor(test_conn, quiet_notice, NULL);
	}
	return test_conn;
}

static PGresult *db_run(PGconn *conn, const char *sql, va_list ap)
{
	const char *params[16];
	int n = 0;
	const char *p;
	while ((p = va_arg(ap, const char *)) != NULL) {
		if (n == 16)
			abort();
		params[n++] = p;
	}
	return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

char *vrt_db_value_args(const char *sql, ...)
{
	va_list ap;
	va_start(ap, sql);
	PGresult *res = db_run(vrt_db(), sql, ap);
	va_end(ap);
	ExecStatusType st = PQresultStatus(res);
	cr_assert(st == PGRES_TUPLES_OK, "query failed: %s\n%s", PQresultErrorMessage(res), sql);
	char *value = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? xstrdup(PQgetvalue(res, 0, 0))
								    : NULL;
	PQclear(res);
	return value;
}

long vrt_db_exec_args(const char *sql, ...)
{
	va_list ap;
	va_start(ap, sql);
	PGresult *res = db_run(vrt_db(), sql, ap);
	va_end(ap);
	ExecStatusType st = PQresultStatus(res);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "statement failed: %s\n%s",
		  PQresultErrorMessage(res), sql);
	long n = st == PGRES_TUPLES_OK ? PQntuples(res) : atol(PQcmdTuples(res));
	PQclear(res);
	return n;
}

/* The fingerprint over conn; NULL (with *error_out) on failure. */
static char *fingerprint(PGconn *conn, char **error_out)
{
	PGresult *tables =
		PQexec(conn, "SELECT c.relname, string_agg(quote_ident(a.attname), ', '"
			     "   ORDER BY a.attnum)"
			     " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			     " JOIN pg_attribute a ON a.attrelid = c.oid"
			     " WHERE n.nspname = 'public' AND c.relkind = 'r'"
			     "   AND a.attnum > 0 AND NOT a.attisdropped"
			     "   AND c.relname <> 'login_failures'"
			     "   AND NOT (c.relname = 'sessions' AND a.attname = 'last_used_at')"
			     " GROUP BY c.relname ORDER BY c.relname");
	if (PQresultStatus(tables) != PGRES_TUPLES_OK) {
		*error_out = xstrdup(PQresultErrorMessage(tables));
		PQclear(tables);
		return NULL;
	}
	struct body_sink out = {0};
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *table = PQgetvalue(tables, i, 0);
		char *ident = PQescapeIdentifier(conn, table, strlen(table));
		char *sql = xasprintf("SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n'"
				      " ORDER BY r::text), '')) FROM (SELECT %s FROM %s) r",
				      PQgetvalue(tables, i, 1), ident);
		PQfreemem(ident);
		PGresult *res = PQexec(conn, sql);
		free(sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			*error_out = xasprintf("%s: %s", table, PQresultErrorMessage(res));
			PQclear(res);
			PQclear(tables);
			free(out.data);
			return NULL;
		}
		char *part = xasprintf("%s%s=%s:%s", i ? ";" : "", table, PQgetvalue(res, 0, 0),
				       PQgetvalue(res, 0, 1));
		sink_append(&out, part, strlen(part));
		free(part);
		PQclear(res);
	}
	PQclear(tables);
	return out.data ? out.data : xstrdup("");
}

char *vrt_db_fingerprint(void)
{
	char *error = NULL;
	char *fp = fingerprint(vrt_db(), &error);
	cr_assert_not_null(fp, "fingerprint failed: %s", error);
	return fp;
}

void vrt_assert_db_unchanged_at(const char *what, const char *file, int line)
{
	char *now = vrt_db_fingerprint();
	const char *then = vrt_env("VRT_FINGERPRINT");
	cr_assert_str_eq(now, then,
			 "%s:%d: %s: the database changed.\nafter setup: %s\nnow:         %s", file,
			 line, what, then, now);
	free(now);
}

/* ======================================================================
 * Objects a test makes for itself
 * ====================================================================== */

static const char *sql_bool(bool b)
{
	return b ? "true" : "false";
}

char *vrt_new_vdc(bool failover, bool test_failover, bool planned_migration)
{
	char *vdc = vrt_db_value("INSERT INTO vdcs (org_id, name, description,"
				 " replication_enabled, failover_enabled, test_failover_enabled,"
				 " planned_migration_enabled)"
				 " VALUES ($1::uuid, 'vdc-' || gen_random_uuid()::text,"
				 " 'made by a test', true, $2::boolean, $3::boolean, $4::boolean)"
				 " RETURNING id::text",
				 VRT_ORG_A, sql_bool(failover), sql_bool(test_failover),
				 sql_bool(planned_migration));
	cr_assert_not_null(vdc);
	vrt_db_exec("INSERT INTO peers (org_id, vdc_id, site_uuid, site_name)"
		    " VALUES ($1::uuid, $2::uuid, gen_random_uuid(), 'onprem-test')",
		    VRT_ORG_A, vdc);
	return vdc;
}

char *vrt_new_replication(const char *vdc, const char *name, bool bare, const char *set)
{
	char *id = vrt_db_value(
		"INSERT INTO replications (kind, org_id, vdc_id, peer_id, name, replication_state,"
		" next_instance_seq)"
		" SELECT 'incoming', v.org_id, v.id, p.id, $2, $3, $4::bigint"
		" FROM vdcs v JOIN peers p ON p.vdc_id = v.id AND p.revoked_at IS NULL"
		" WHERE v.id = $1::uuid ORDER BY p.created_at, p.id LIMIT 1 RETURNING id::text",
		vdc ? vdc : VRT_VDC_A1, name, bare ? "initialSync" : "ok", bare ? "1" : "2");
	cr_assert_not_null(id, "no replication made in VDC %s", vdc ? vdc : VRT_VDC_A1);
	if (!bare)
		vrt_db_exec("INSERT INTO instances (replication_id, seq, transfer_start_time,"
			    " transfer_seconds, transfer_bytes)"
			    " VALUES ($1::uuid, 1, now() - interval '10 minutes', 30, 1048576)",
			    id);
	if (set) {
		char *sql = xasprintf("UPDATE replications SET %s WHERE id = $1::uuid", set);
		cr_assert_eq(vrt_db_exec(sql, id), 1, "%s", sql);
		free(sql);
	}
	return id;
}

char *vrt_replication_state(const char *id)
{
	return vrt_db_value("SELECT recovery_state || ' ' || test_recovery_state || ' ' ||"
			    " replication_state || ' ' || paused::text FROM replications"
			    " WHERE id = $1::uuid",
			    id);
}

/* ======================================================================
 * Redis
 * ====================================================================== */

static struct vr_redis *test_redis;

static redisReply *redis_run(int argc, const char **argv)
{
	if (!test_redis) {
		int rc = vr_redis_open(&test_redis, vrt_env("VRT_REDIS_URI"));
		cr_assert_eq(rc, 0, "cannot connect to Redis at %s (%d)", vrt_env("VRT_REDIS_URI"),
			     rc);
	}
	redisReply *reply = vr_redis_command(test_redis, argc, argv);
	cr_assert_not_null(reply, "Redis did not answer %s", argv[0]);
	cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "Redis refused %s: %s", argv[0], reply->str);
	return reply;
}

char *vrt_stream_jobs(const char *prefix)
{
	char *key = xasprintf("%s:jobs", prefix);
	const char *argv[] = {"XRANGE", key, "-", "+"};
	redisReply *reply = redis_run(4, argv);
	struct body_sink out = {0};
	for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
		redisReply *entry = reply->element[i];
		if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2)
			continue;
		redisReply *fields = entry->element[1];
		for (size_t f = 0; fields->type == REDIS_REPLY_ARRAY && f + 1 < fields->elements;
		     f += 2) {
			if (strcmp(fields->element[f]->str, "job") != 0)
				continue;
			sink_append(&out, fields->element[f + 1]->str,
				    strlen(fields->element[f + 1]->str));
			sink_append(&out, "\n", 1);
		}
	}
	freeReplyObject(reply);
	free(key);
	return out.data ? out.data : xstrdup("");
}

bool vrt_stream_has(const char *prefix, const char *job_id)
{
	char *jobs = vrt_stream_jobs(prefix);
	char *line = xasprintf("%s\n", job_id);
	bool found = false;
	for (const char *p = jobs; *p && !found; p = strchr(p, '\n') + 1)
		found = strncmp(p, line, strlen(line)) == 0;
	free(line);
	free(jobs);
	return found;
}

long vrt_redis_del(const char *key)
{
	const char *argv[] = {"DEL", key};
	redisReply *reply = redis_run(2, argv);
	long n = reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : 0;
	freeReplyObject(reply);
	return n;
}

char *vrt_redis_lpop(const char *key)
{
	const char *argv[] = {"LPOP", key};
	redisReply *reply = redis_run(2, argv);
	char *text = reply->type == REDIS_REPLY_STRING ? xstrdup(reply->str) : NULL;
	freeReplyObject(reply);
	return text;
}

/* A libpq key=value string for uri with dbname replaced. */
static char *conninfo_with_dbname(const char *uri, const char *dbname, char **error_out)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(uri, &err);
	if (!opts) {
		*error_out = xstrdup(err ? err : "cannot parse the connection URI");
		PQfreemem(err);
		return NULL;
	}
	struct body_sink out = {0};
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || strcmp(o->keyword, "dbname") == 0)
			continue;
		sink_append(&out, o->keyword, strlen(o->keyword));
		sink_append(&out, "='", 2);
		for (const char *p = o->val; *p; p++) {
			if (*p == '\'' || *p == '\\')
				sink_append(&out, "\\", 1);
			sink_append(&out, p, 1);
		}
		sink_append(&out, "' ", 2);
	}
	PQconninfoFree(opts);
	char *tail = xasprintf("dbname='%s'", dbname);
	sink_append(&out, tail, strlen(tail));
	free(tail);
	return out.data;
}

/* ======================================================================
 * API instances
 * ====================================================================== */

static const char *workdir_get(void);

unsigned vrt_closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	socklen_t len = sizeof sa;
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int api_start_in(struct vrt_api *api, const char *parent, const struct vrt_api_opts *o,
			const char *database_uri, const char *redis_uri)
{
	memset(api, 0, sizeof *api);
	api->pid = -1;
	snprintf(api->dir, sizeof api->dir, "%s/api-XXXXXX", parent);
	if (!mkdtemp(api->dir)) {
		say("mkdtemp %s: %s", api->dir, strerror(errno));
		return -1;
	}
	char *conf = xasprintf("%s/api.conf", api->dir);
	char *port_file = xasprintf("%s/port", api->dir);
	char *log = xasprintf("%s/api.log", api->dir);
	char *out = xasprintf("%s/api.stderr", api->dir);
	char *exe = xasprintf("%s/vrcloud-api", builddir());
	int result = -1;
	if (write_file(conf, o && o->config ? o->config : "") != 0) {
		say("cannot write %s", conf);
		goto cleanup;
	}
	char *argv[24];
	int n = 0;
	argv[n++] = exe;
	argv[n++] = (char *)"--config";
	argv[n++] = conf;
	argv[n++] = (char *)"--listen";
	argv[n++] = (char *)"127.0.0.1";
	argv[n++] = (char *)"--port";
	argv[n++] = (char *)"0";
	argv[n++] = (char *)"--port-file";
	argv[n++] = port_file;
	argv[n++] = (char *)"--database";
	argv[n++] = (char *)database_uri;
	argv[n++] = (char *)"--redis";
	argv[n++] = (char *)redis_uri;
	argv[n++] = (char *)"--log-file";
	argv[n++] = log;
	if (o && o->public_url) {
		argv[n++] = (char *)"--public-url";
		argv[n++] = (char *)o->public_url;
	}
	argv[n] = NULL;
	api->pid = spawn(argv, out, true);
	if (api->pid < 0) {
		say("cannot start %s: %s", exe, strerror(errno));
		goto cleanup;
	}
	double deadline = vrt_now() + 30;
	while (vrt_now() < deadline) {
		char *text = read_file(port_file);
		unsigned port = text ? (unsigned)strtoul(text, NULL, 10) : 0;
		free(text);
		if (port) {
			api->port = port;
			snprintf(api->base, sizeof api->base, "http://127.0.0.1:%u", port);
			result = 0;
			goto cleanup;
		}
		int st = wait_for(api->pid, 0);
		if (st != -1) {
			say("vrcloud-api exited with status %d before listening", st);
			print_tail(out, 4000);
			api->pid = -1;
			goto cleanup;
		}
		vrt_sleep(0.02);
	}
	say("vrcloud-api did not write %s within 30 s", port_file);
	kill(api->pid, SIGKILL);
	wait_for(api->pid, 5);
	api->pid = -1;
	print_tail(out, 4000);
cleanup:
	free(conf);
	free(port_file);
	free(log);
	free(out);
	free(exe);
	return result;
}

int vrt_api_start(struct vrt_api *api, const struct vrt_api_opts *opts)
{
	const char *db = opts && opts->database_uri ? opts->database_uri : vrt_env("VRT_DB_URI");
	const char *redis = opts && opts->redis_uri ? opts->redis_uri : vrt_env("VRT_REDIS_URI");
	return api_start_in(api, workdir_get(), opts, db, redis);
}

int vrt_api_stop(struct vrt_api *api, double timeout_s)
{
	if (api->pid <= 0)
		return -1;
	kill(api->pid, SIGTERM);
	int st = wait_for(api->pid, timeout_s);
	if (st == -1) {
		kill(api->pid, SIGKILL);
		wait_for(api->pid, 5);
	}
	api->pid = -1;
	return st;
}

bool vrt_api_log_contains(const struct vrt_api *api, const char *needle)
{
	static const char *const files[] = {"api.log", "api.stderr"};
	bool found = false;
	for (size_t i = 0; i < 2 && !found; i++) {
		char *path = xasprintf("%s/%s", api->dir, files[i]);
		char *text = read_file(path);
		found = text && strstr(text, needle);
		free(text);
		free(path);
	}
	return found;
}

static bool has_sanitizer_report(const char *path)
{
	char *text = read_file(path);
	bool bad = text && (strstr(text, "LeakSanitizer") || strstr(text, "AddressSanitizer") ||
			    strstr(text, "runtime error:"));
	free(text);
	return bad;
}

/* ======================================================================
 * Runner: setup and teardown
 * ====================================================================== */

static struct {
	pid_t pid;   /* the runner process */
	bool active; /* something to clean up */
	bool failed; /* teardown found a problem */
	char workdir[256];
	char svcdir[300]; /* own services, when started */
	char *admin_uri;  /* superuser URI of the PostgreSQL server */
	char *db_name;
	char *db_uri;
	struct vrt_api api;
} run;

/* Criterion's (BoxFort's) reaper thread waits for any child of the runner
 * and spins on one that is not a test worker until someone reaps it: the
 * suite's API, the runner's only child while tests run, is reaped the
 * moment it exits, and its status kept for the teardown. */
static volatile sig_atomic_t api_exited;
static volatile int api_wait_status;

static void reap_api(void)
{
	int st = 0;
	if (run.api.pid > 0 && !api_exited && waitpid(run.api.pid, &st, WNOHANG) == run.api.pid) {
		api_wait_status = st;
		api_exited = 1;
	}
}

static void on_child(int sig)
{
	(void)sig;
	int saved = errno;
	reap_api();
	errno = saved;
}

/* Stop the suite's API: SIGTERM unless it already ended, then wait up to
 * timeout_s. Returns as vrt_api_stop does; *died_before says whether it
 * had ended on its own before. */
static int stop_suite_api(double timeout_s, bool *died_before)
{
	*died_before = api_exited;
	if (!api_exited)
		kill(run.api.pid, SIGTERM);
	double deadline = vrt_now() + timeout_s;
	while (!api_exited && vrt_now() < deadline) {
		reap_api();
		if (!api_exited)
			vrt_sleep(0.02);
	}
	if (!api_exited) {
		kill(run.api.pid, SIGKILL);
		for (int i = 0; i < 250 && !api_exited; i++) {
			reap_api();
			vrt_sleep(0.02);
		}
		run.api.pid = -1;
		return -1;
	}
	run.api.pid = -1;
	int st = api_wait_status;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 256 + WTERMSIG(st);
}

static const char *workdir_get(void)
{
	if (run.workdir[0])
		return run.workdir;
	return vrt_env("VRT_WORKDIR");
}

static char *services_script(void)
{
	return xasprintf("%s/contrib/lib/services.sh", srcdir());
}

static void services_stop(void)
{
	if (!run.svcdir[0])
		return;
	char *script = services_script();
	char *log = xasprintf("%s/services.log", run.workdir);
	char *argv[] = {(char *)"/bin/bash",
			(char *)"-c",
			(char *)". \"$1\" && svc_stop \"$2\"",
			(char *)"vrt-services",
			script,
			run.svcdir,
			NULL};
	int st = run_command(argv, log, 90);
	if (st != 0) {
		say("stopping the test services failed (status %d)", st);
		print_tail(log, 3000);
		run.failed = true;
	}
	run.svcdir[0] = '\0';
	free(script);
	free(log);
}

static void drop_database(void)
{
	if (!run.db_name || !run.admin_uri)
		return;
	char *error = NULL;
	PGconn *conn = connect_or_null(run.admin_uri, &error);
	if (!conn) {
		say("cannot drop %s: %s", run.db_name, error);
		free(error);
		run.failed = true;
		return;
	}
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	char *ident = PQescapeIdentifier(conn, run.db_name, strlen(run.db_name));
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		say("dropping %s failed: %s", run.db_name, PQresultErrorMessage(res));
		run.failed = true;
	}
	PQclear(res);
	free(sql);
	PQfreemem(ident);
	PQfinish(conn);
	free(run.db_name);
	run.db_name = NULL;
}

/* Stop everything this runner started; used by the normal teardown and,
 * should the runner be interrupted, by the exit and signal handlers. */
static void cleanup_all(bool orderly)
{
	if (!run.active || getpid() != run.pid)
		return;
	run.active = false;
	if (run.api.pid > 0) {
		char *out = xasprintf("%s/api.stderr", run.api.dir);
		bool died = false;
		int st = stop_suite_api(orderly ? 5 : 2, &died);
		if (died) {
			if (st > 255)
				say("vrcloud-api died of signal %d during the tests", st - 256);
			else
				say("vrcloud-api exited with status %d during the tests", st);
			run.failed = true;
		} else if (orderly && st != 0) {
			if (st == -1)
				say("vrcloud-api did not stop within 5 s of SIGTERM (killed)");
			else if (st > 255)
				say("vrcloud-api died of signal %d after SIGTERM", st - 256);
			else
				say("vrcloud-api exited with status %d after SIGTERM (expected 0)",
				    st);
			run.failed = true;
		}
		if (orderly && has_sanitizer_report(out)) {
			say("vrcloud-api reported sanitizer errors:");
			run.failed = true;
		}
		if (run.failed)
			print_tail(out, 20000);
		free(out);
	}
	drop_database();
	services_stop();
	remove_tree(run.workdir);
	free(run.admin_uri);
	free(run.db_uri);
	run.admin_uri = run.db_uri = NULL;
	xmlCleanupParser();
	curl_global_cleanup();
}

static void at_exit_cleanup(void)
{
	if (getpid() != run.pid)
		return;
	if (run.active) {
		say("the runner is exiting before its teardown: stopping what it started");
		cleanup_all(false);
	}
	if (run.failed) {
		fflush(NULL);
		_exit(1);
	}
}

static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction previous_actions[3];

/* Clean up, then let the handler that was there before (Criterion's, for
 * SIGTERM) or the default action have the signal. */
static void on_fatal_signal(int sig)
{
	if (run.active && getpid() == run.pid)
		say("signal %d: stopping everything the runner started", sig);
	cleanup_all(false);
	for (size_t i = 0; i < 3; i++)
		if (fatal_signals[i] == sig)
			sigaction(sig, &previous_actions[i], NULL);
	raise(sig);
}

static void setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void setup_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vrt: SETUP FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	cleanup_all(false);
	run.failed = true;
	exit(1);
}

static void start_services(char **pg_uri, char **redis_uri)
{
	const char *pg = vrt_suite.own_services ? NULL : getenv("VRCLOUD_TEST_PGURI");
	const char *redis = vrt_suite.own_services ? NULL : getenv("VRCLOUD_TEST_REDIS");
	if (pg && pg[0] && redis && redis[0]) {
		*pg_uri = xstrdup(pg);
		*redis_uri = xstrdup(redis);
		return;
	}
	snprintf(run.svcdir, sizeof run.svcdir, "%s/svc", run.workdir);
	char *script = services_script();
	char *log = xasprintf("%s/services.log", run.workdir);
	char *argv[] = {
		(char *)"/bin/bash",
		(char *)"-c",
		(char *)"set -e; . \"$1\"\n"
			"if [ -z \"$3\" ]; then svc_start_pg \"$2\"; else SVC_PG_URI=$3; fi\n"
			"if [ -z \"$4\" ]; then svc_start_redis \"$2\"; else SVC_REDIS_URI=$4; fi\n"
			"printf '%s\\n%s\\n' \"$SVC_PG_URI\" \"$SVC_REDIS_URI\" >\"$2.uris\"",
		(char *)"vrt-services",
		script,
		run.svcdir,
		(char *)(pg ? pg : ""),
		(char *)(redis ? redis : ""),
		NULL};
	if (vrt_suite.own_services)
		say("this program stops and starts its servers: starting throwaway ones");
	else
		say("VRCLOUD_TEST_PGURI/VRCLOUD_TEST_REDIS not set: starting throwaway servers");
	int st = run_command(argv, log, 120);
	free(script);
	if (st != 0) {
		print_tail(log, 3000);
		free(log);
		setup_fail("could not start PostgreSQL/Redis with contrib/lib/services.sh");
	}
	free(log);
	char *uris_path = xasprintf("%s.uris", run.svcdir);
	char *uris = read_file(uris_path);
	free(uris_path);
	char *nl = uris ? strchr(uris, '\n') : NULL;
	if (!nl)
		setup_fail("services.sh gave no URIs");
	*nl = '\0';
	char *second = nl + 1;
	second[strcspn(second, "\n")] = '\0';
	*pg_uri = xstrdup(uris);
	*redis_uri = xstrdup(second);
	free(uris);
}

int vrt_services(const char *function, const char *arg)
{
	const char *dir = vrt_env("VRT_SVC_DIR");
	char *script = services_script();
	char *log = xasprintf("%s/services-%ld.log", workdir_get(), (long)getpid());
	char *argv[] = {(char *)"/bin/bash",
			(char *)"-c",
			(char *)". \"$1\" && \"$2\" \"$3\" $4",
			(char *)"vrt-services",
			script,
			(char *)function,
			(char *)dir,
			(char *)(arg ? arg : ""),
			NULL};
	int st = run_command(argv, log, 90);
	if (st != 0) {
		say("%s %s %s: status %d", function, dir, arg ? arg : "", st);
		print_tail(log, 3000);
	}
	free(script);
	free(log);
	return st;
}

/* redis://host:port -> redis://host:port/N (unless it names a database). */
static char *redis_with_db(const char *uri, unsigned db)
{
	if (strncmp(uri, "redis://", 8) == 0 && !strchr(uri + 8, '/'))
		return xasprintf("%s/%u", uri, db);
	if (strncmp(uri, "unix://", 7) == 0 && !strchr(uri, '?'))
		return xasprintf("%s?db=%u", uri, db);
	return xstrdup(uri);
}

static void exec_sql(PGconn *conn, const char *what, const char *sql, int nparams,
		     const char *const *params)
{
	PGresult *res = nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
				: PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char *msg = xstrdup(PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		setup_fail("%s: %s", what, msg);
	}
	PQclear(res);
}

#define ORG_SYSTEM    "(SELECT id FROM orgs WHERE is_system)"
#define USER_ID(name) "(SELECT id FROM users WHERE name = '" name "')"

/* Everything but users and sessions, in one transaction. */
static const char fixture_sql[] =
	"BEGIN;\n"
	"INSERT INTO orgs (id, name, full_name, description, created_at) VALUES"
	" ('" VRT_ORG_A "', '" VRT_ORG_A_NAME "', 'Tenant A & Sons <Ltd>', 'First tenant',"
	"  '2024-01-01T00:00:00Z'),"
	" ('" VRT_ORG_B "', '" VRT_ORG_B_NAME "', 'Tenant B', 'Second tenant',"
	"  '2024-01-01T00:00:00Z');\n"
	"INSERT INTO vdcs (id, org_id, name, description, replication_enabled, failover_enabled,"
	" test_failover_enabled, planned_migration_enabled, cpu_limit_mhz, memory_limit_mb,"
	" storage_limit_mb, created_at) VALUES"
	" ('" VRT_VDC_A1 "', '" VRT_ORG_A "', 'vdc-a1', 'Recovery VDC of tenant A', true, true,"
	"  true, false, 20000, 65536, 1048576, '2024-01-01T00:00:00Z'),"
	" ('" VRT_VDC_B1 "', '" VRT_ORG_B "', 'vdc-b1', 'Recovery VDC of tenant B', true, true,"
	"  true, true, 10000, 32768, 524288, '2024-01-01T00:00:00Z'),"
	" ('" VRT_VDC_B2 "', '" VRT_ORG_B "', 'vdc-b2', 'Not enabled', false, false, false, false,"
	"  1000, 1024, 2048, '2024-01-02T00:00:00Z');\n"
	"INSERT INTO replica_servers (id, name, traffic_address, state, registered_at,"
	" last_heartbeat) VALUES"
	" ('" VRT_SERVER_1 "', 'worker-1', '127.0.0.1:31031', 'connected', '2024-01-01T00:00:00Z',"
	"  now()),"
	" ('" VRT_SERVER_2 "', 'worker-2', '127.0.0.1:31032', 'disconnected',"
	"  '2024-01-02T00:00:00Z', '2024-03-04T05:06:07.089Z'),"
	" ('" VRT_SERVER_GONE "', 'worker-old', '', 'unregistered', '2024-01-03T00:00:00Z',"
	"  '2024-01-03T00:00:00Z');\n"
	"INSERT INTO peers (id, org_id, vdc_id, site_uuid, site_name, description, created_at,"
	" revoked_at) VALUES"
	" ('" VRT_PEER_A1 "', '" VRT_ORG_A "', '" VRT_VDC_A1 "',"
	"  'c0000000-0000-4000-8000-0000000000a1', 'onprem-a', 'Main site of tenant A',"
	"  '2024-01-01T00:00:00Z', NULL),"
	" ('" VRT_PEER_A2 "', '" VRT_ORG_A "', '" VRT_VDC_A1 "',"
	"  'c0000000-0000-4000-8000-0000000000a2', 'onprem-a-branch', '', '2024-01-02T00:00:00Z',"
	"  NULL),"
	" ('" VRT_PEER_A3 "', '" VRT_ORG_A "', '" VRT_VDC_A1 "',"
	"  'c0000000-0000-4000-8000-0000000000a3', 'onprem-a-old', '', '2024-01-03T00:00:00Z',"
	"  '2024-02-01T00:00:00Z'),"
	" ('" VRT_PEER_B1 "', '" VRT_ORG_B "', '" VRT_VDC_B1 "',"
	"  'c0000000-0000-4000-8000-0000000000b1', 'onprem-b', '', '2024-01-01T00:00:00Z', NULL);\n"
	"INSERT INTO network_mappings (peer_id, kind, position, source_network, target_network_id,"
	" target_network_name) VALUES"
	" ('" VRT_PEER_A1 "', 'failover', 1, 'VM Network', 'd0000000-0000-4000-8000-000000000001',"
	"  'org-net-prod'),"
	" ('" VRT_PEER_A1 "', 'failover', 2, 'DMZ & <backup>',"
	"  'd0000000-0000-4000-8000-000000000002', 'org-net-dmz'),"
	" ('" VRT_PEER_A1 "', 'test', 1, 'VM Network', 'd0000000-0000-4000-8000-000000000003',"
	"  'org-net-test'),"
	" ('" VRT_PEER_B1 "', 'failover', 1, 'B Network', 'd0000000-0000-4000-8000-0000000000b1',"
	"  'b-net');\n"
	/* A's 30 incoming replications, one minute apart in id order. */
	"INSERT INTO replications (id, kind, org_id, vdc_id, peer_id, name, created_at, updated_at)"
	" SELECT format('40000000-0000-4000-8000-%s', lpad(to_hex(i), 12, '0'))::uuid,"
	" 'incoming', '" VRT_ORG_A "', '" VRT_VDC_A1 "', '" VRT_PEER_A1 "',"
	" format('vm-%s', lpad(i::text, 2, '0')),"
	" timestamptz '2024-01-01T00:00:00Z' + i * interval '1 minute',"
	" timestamptz '2024-01-01T00:00:00Z' + i * interval '1 minute'"
	" FROM generate_series(1, 30) AS i;\n"
	"UPDATE replications SET name = $$" VRT_REPL_A1_NAME "$$,"
	" description = 'Primary web & database server', rpo_minutes = 240, quiesce_guest = true,"
	" network_compression = true, placeholder_vapp_id = 'e0000000-0000-4000-8000-000000000001',"
	" event_partition_id = 'f0000000-0000-4000-8000-000000000001', replication_state = 'ok',"
	" replica_server_id = '" VRT_SERVER_1 "', next_instance_seq = 4,"
	" last_test_failover_op_id = 'f1000000-0000-4000-8000-000000000001',"
	" source_vm_id = 'vm-101'"
	" WHERE id = '" VRT_REPL_A1 "';\n"
	"UPDATE replications SET rpo_minutes = 15 WHERE id = '" VRT_REPL_A2 "';\n"
	"UPDATE replications SET rpo_minutes = 60, paused = true,"
	" paused_at = now() - interval '100 minutes' WHERE id = '" VRT_REPL_A3 "';\n"
	"UPDATE replications SET test_recovery_state = 'complete' WHERE id = '" VRT_REPL_A4 "';\n"
	"UPDATE replications SET test_recovery_state = 'testError' WHERE id = '" VRT_REPL_A5 "';\n"
	"UPDATE replications SET rpo_minutes = 60, paused_minutes = 30"
	" WHERE id = '" VRT_REPL_A6 "';\n"
	"UPDATE replications SET recovery_state = 'recovered',"
	" recovery_completion_time = '2024-05-06T07:08:09.123Z', replication_state = 'ok',"
	" replica_server_id = '" VRT_SERVER_2 "', next_instance_seq = 2"
	" WHERE id = '" VRT_REPL_A7 "';\n"
	"INSERT INTO replications (id, kind, org_id, vdc_id, peer_id, name, created_at) VALUES"
	" ('" VRT_REPL_B1 "', 'incoming', '" VRT_ORG_B "', '" VRT_VDC_B1 "', '" VRT_PEER_B1 "',"
	"  'b-vm-01', '2024-01-01T00:00:00Z'),"
	" ('" VRT_REPL_B2 "', 'incoming', '" VRT_ORG_B "', '" VRT_VDC_B1 "', '" VRT_PEER_B1 "',"
	"  'b-vm-02', '2024-01-01T00:01:00Z'),"
	" ('" VRT_FAILBACK_A1 "', 'failback', '" VRT_ORG_A "', '" VRT_VDC_A1 "', '" VRT_PEER_A1 "',"
	"  'web01-failback', '2024-06-01T00:00:00Z'),"
	" ('" VRT_FAILBACK_B1 "', 'failback', '" VRT_ORG_B "', '" VRT_VDC_B1 "', '" VRT_PEER_B1 "',"
	"  'b-vm-01-failback', '2024-06-01T00:00:00Z');\n"
	"UPDATE replications SET source_replication_id = '" VRT_REPL_A1 "'"
	" WHERE id = '" VRT_FAILBACK_A1 "';\n"
	"INSERT INTO instances (id, replication_id, seq, transfer_start_time, transfer_seconds,"
	" transfer_bytes) VALUES"
	" ('" VRT_INSTANCE_A1_1 "', '" VRT_REPL_A1 "', 1, now() - interval '65 minutes', 42,"
	"  1048576),"
	" ('" VRT_INSTANCE_A1_2 "', '" VRT_REPL_A1 "', 2, now() - interval '35 minutes', 40,"
	"  524288),"
	" ('" VRT_INSTANCE_A1_3 "', '" VRT_REPL_A1 "', 3, now() - interval '5 minutes', 38,"
	"  262144),"
	" ('50000000-0000-4000-8000-000000000021', '" VRT_REPL_A2 "', 1,"
	"  now() - interval '75 minutes', 10, 4096),"
	" ('50000000-0000-4000-8000-000000000031', '" VRT_REPL_A3 "', 1,"
	"  now() - interval '200 minutes', 10, 4096),"
	" ('50000000-0000-4000-8000-000000000061', '" VRT_REPL_A6 "', 1,"
	"  now() - interval '100 minutes', 10, 4096),"
	" ('50000000-0000-4000-8000-000000000071', '" VRT_REPL_A7 "', 1,"
	"  '2024-05-06T06:00:00.5Z', 7, 8192);\n"
	"INSERT INTO disks (id, replication_id, device_key, name, size_bytes, used_bytes,"
	" datastore_ref) VALUES"
	" ('" VRT_DISK_A1_1 "', '" VRT_REPL_A1 "', 2000, 'disk-0', 10737418240, 5368709120,"
	"  '[datastore1] web01/disk-0.vmdk'),"
	" ('" VRT_DISK_A1_2 "', '" VRT_REPL_A1 "', 2001, 'disk-1', 2147483648, 0, '');\n"
	"COMMIT;\n";

static const char users_sql[] = "INSERT INTO users (org_id, name, role, password_hash, enabled)"
				" SELECT o.id, u.name, u.role, $1, u.enabled FROM (VALUES"
				"  ('" VRT_ORG_A_NAME "', 'admin-a', 'org-admin', true),"
				"  ('" VRT_ORG_A_NAME "', 'user-a', 'org-user', true),"
				"  ('" VRT_ORG_B_NAME "', 'admin-b', 'org-admin', true),"
				"  ('System', 'root', 'sysadmin', true),"
				"  ('" VRT_ORG_A_NAME "', 'disabled-a', 'org-user', false))"
				"  AS u (org, name, role, enabled) JOIN orgs o ON o.name = u.org"
				" UNION ALL"
				" SELECT '" VRT_ORG_A
				"', format('t%s', lpad(i::text, 2, '0')), 'org-user', $1, true"
				" FROM generate_series(1, $2::int) AS i";

static const char tasks_sql[] =
	"INSERT INTO tasks (id, org_id, user_id, user_name, owner_kind, owner_id, owner_name,"
	" operation, operation_name, status, progress, start_time, end_time, expiry_time,"
	" operation_key, error_major, error_minor, error_vendor, error_message, details) VALUES"
	" ('" VRT_TASK_A_RUNNING "', '" VRT_ORG_A "', " USER_ID(
		"admin-a") ", 'admin-a',"
			   "  'replication', '" VRT_REPL_A1
			   "', 'web01', 'Test failover of replication web01',"
			   "  'hcsTestFailover', 'running', 42, '2024-07-01T10:00:00.123Z', NULL,"
			   "  '2024-09-29T10:00:00.123Z', NULL, NULL, NULL, NULL, NULL, ''),"
			   " ('" VRT_TASK_A_ERROR "', '" VRT_ORG_A "', " USER_ID(
				   "admin-a") ", 'admin-a',"
					      "  'replication', '" VRT_REPL_A4
					      "', 'vm-04', 'Test failover of replication vm-04',"
					      "  'hcsTestFailover', 'error', 70, '2024-07-02T10:00:00.000Z', '2024-07-02T10:00:05.250Z',"
					      "  '2024-09-30T10:00:00.000Z', 'op-key-1', 400, 'BAD_REQUEST', '" VRT_TASK_A_ERROR_VENDOR
					      "',"
					      "  'The replication is already test-recovered.', 'precondition failed'),"
					      " ('" VRT_TASK_B "', '" VRT_ORG_B "', " USER_ID(
						      "admin-b") ", 'admin-b',"
								 "  'replication', '" VRT_REPL_B1
								 "', 'b-vm-01', 'Delete replication b-vm-01',"
								 "  'hcsDeleteReplication', 'success', 100, '2024-07-03T10:00:00.000Z',"
								 "  '2024-07-03T10:01:00.000Z', '2024-10-01T10:00:00.000Z', NULL, NULL, NULL, NULL, NULL, '')";

/* The queued Task and job that no test runs (harness.h says why the relay
 * never publishes it). */
static const char queued_job_sql[] =
	"INSERT INTO tasks (id, org_id, user_id, user_name, owner_kind, owner_id, owner_name,"
	" operation, operation_name, status, progress, start_time, expiry_time)"
	" SELECT '" VRT_TASK_A_QUEUED "', '" VRT_ORG_A "', u.id, u.name, 'replication',"
	" '" VRT_REPL_A2 "', 'vm-02', 'Synchronization of replication vm-02', 'hcsSync',"
	" 'queued', 0, '2024-07-04T10:00:00.000Z', '2024-10-02T10:00:00.000Z'"
	" FROM users u WHERE u.name = 'admin-a';\n"
	"INSERT INTO jobs (id, task_id, org_id, lane, action, params, state, published_at,"
	" created_at) VALUES ('" VRT_JOB_QUEUED "', '" VRT_TASK_A_QUEUED "', '" VRT_ORG_A "',"
	" 'replication:" VRT_REPL_A2 "', 'sync', '{}', 'queued', 'infinity',"
	" '2024-07-04T10:00:00.000Z');\n";

static const char known_sessions_sql[] =
	"INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at,"
	" client_addr) VALUES"
	" ($1::bytea, " USER_ID(
		"admin-a") ", now() - interval '2 days', now() - interval '1 day',"
			   "  now() - interval '1 hour', '127.0.0.1'),"
			   " ($2::bytea, " USER_ID(
				   "admin-a") ", now() - interval '3 days', now() - interval '2 days',"
					      "  now() + interval '1 day', '127.0.0.1')";

static void load_fixtures(const char *db_uri)
{
	char *error = NULL;
	PGconn *conn = connect_or_null(db_uri, &error);
	if (!conn)
		setup_fail("cannot connect to the test database: %s", error);
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	exec_sql(conn, "fixtures", fixture_sql, 0, NULL);
	char hash[VR_PASSWORD_HASH_MAX];
	if (vr_password_hash(hash, VRT_PASSWORD) != 0) {
		PQfinish(conn);
		setup_fail("vr_password_hash failed");
	}
	char spare[16];
	snprintf(spare, sizeof spare, "%d", VRT_SPARE_USERS);
	const char *user_params[] = {hash, spare};
	exec_sql(conn, "users", users_sql, 2, user_params);
	exec_sql(conn, "tasks", tasks_sql, 0, NULL);
	exec_sql(conn, "queued job", queued_job_sql, 0, NULL);
	PQfinish(conn);
}

static void add_known_sessions(const char *db_uri)
{
	char *error = NULL;
	PGconn *conn = connect_or_null(db_uri, &error);
	if (!conn)
		setup_fail("cannot connect to the test database: %s", error);
	char expired[2 + 64 + 1], idle[2 + 64 + 1];
	vr_auth_token_hash_hex(expired, VRT_TOKEN_EXPIRED);
	vr_auth_token_hash_hex(idle, VRT_TOKEN_IDLE);
	const char *params[] = {expired, idle};
	exec_sql(conn, "known sessions", known_sessions_sql, 2, params);
	PGresult *res = PQexec(conn, "SELECT id FROM orgs WHERE is_system");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		PQfinish(conn);
		setup_fail("no System org after migrating");
	}
	setenv("VRT_SYSTEM_ORG", PQgetvalue(res, 0, 0), 1);
	PQclear(res);
	char *fp = fingerprint(conn, &error);
	PQfinish(conn);
	if (!fp)
		setup_fail("fingerprint: %s", error);
	setenv("VRT_FINGERPRINT", fp, 1);
	free(fp);
}

static void create_database(const char *pg_uri)
{
	char *error = NULL;
	PGconn *conn = NULL;
	/* a freshly started server may still be coming up */
	for (int i = 0; i < 50 && !conn; i++) {
		free(error);
		error = NULL;
		conn = connect_or_null(pg_uri, &error);
		if (!conn)
			vrt_sleep(0.1);
	}
	if (!conn)
		setup_fail("cannot connect to PostgreSQL (%s): %s", pg_uri, error);
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	run.db_name = xasprintf("vrt_%s_%ld", vrt_suite.name, (long)getpid());
	char *ident = PQescapeIdentifier(conn, run.db_name, strlen(run.db_name));
	char *drop = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
	char *create = xasprintf("CREATE DATABASE %s", ident);
	PQfreemem(ident);
	exec_sql(conn, "drop a leftover database", drop, 0, NULL);
	exec_sql(conn, "create the database", create, 0, NULL);
	free(drop);
	free(create);
	PQfinish(conn);
	run.db_uri = conninfo_with_dbname(pg_uri, run.db_name, &error);
	if (!run.db_uri)
		setup_fail("%s", error);
}

static void migrate(void)
{
	char *exe = xasprintf("%s/vrcloudctl", builddir());
	char *log = xasprintf("%s/migrate.log", run.workdir);
	char *argv[] = {exe, (char *)"--database", run.db_uri, (char *)"migrate", NULL};
	int st = run_command(argv, log, 120);
	if (st != 0) {
		print_tail(log, 3000);
		setup_fail("'vrcloudctl migrate' exited with status %d", st);
	}
	free(exe);
	free(log);
}

/* Run `vrcloudctl --database <suite db> ARGS...` to completion; its output
 * (stdout and stderr) is returned, the caller frees it. Setup fails when
 * it does not exit 0. */
static char *run_ctl(const char *what, char *const args[])
{
	char *exe = xasprintf("%s/vrcloudctl", builddir());
	char *out = xasprintf("%s/ctl.out", run.workdir);
	char *argv[16];
	size_t n = 0;
	argv[n++] = exe;
	argv[n++] = (char *)"--database";
	argv[n++] = run.db_uri;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	remove(out);
	int st = run_command(argv, out, 60);
	char *text = read_file(out);
	remove(out); /* it may hold a token */
	if (st != 0 || !text) {
		fprintf(stderr, "%s\n", text ? text : "(no output)");
		setup_fail("'vrcloudctl %s' exited with status %d", what, st);
	}
	free(exe);
	free(out);
	return text;
}

/* `vrcloudctl service add NAME --kind worker`: export the token it printed. */
static void add_service(const char *service)
{
	char *args[] = {(char *)"service", (char *)"add",    (char *)service,
			(char *)"--kind",  (char *)"worker", NULL};
	char *text = run_ctl("service add", args);
	const char *line = strstr(text, "token=");
	if (!line || (line != text && line[-1] != '\n'))
		setup_fail("'vrcloudctl service add %s' printed no token= line", service);
	line += strlen("token=");
	char *token = strndup(line, strcspn(line, "\r\n"));
	if (!token || !token[0])
		setup_fail("'vrcloudctl service add %s' printed an empty token", service);
	char *name = service_env_name(service);
	setenv(name, token, 1);
	explicit_bzero(text, strlen(text));
	free(name);
	free(token);
	free(text);
}

static void add_services(void)
{
	add_service(VRT_SERVICE);
	add_service(VRT_SERVICE_OTHER);
	add_service(VRT_SERVICE_NEW);
	add_service(VRT_SERVICE_REVOKED);
	char *args[] = {(char *)"service", (char *)"revoke", (char *)VRT_SERVICE_REVOKED, NULL};
	free(run_ctl("service revoke", args));
}

static void wait_healthy(const char *base)
{
	double deadline = vrt_now() + 30;
	long status = 0;
	while (vrt_now() < deadline) {
		struct vrt_call call = {.base = base, .path = "/healthz", .accept = ""};
		struct vrt_resp resp;
		int rc = vrt_call(&call, &resp);
		status = rc == 0 ? resp.status : 0;
		vrt_resp_free(&resp);
		if (status == 200)
			return;
		vrt_sleep(0.1);
	}
	setup_fail("vrcloud-api at %s never became healthy (last /healthz status %ld)", base,
		   status);
}

static void export_token(const char *base, const char *user)
{
	long status = 0;
	char *token = vrt_login(base, user, VRT_PASSWORD, &status);
	if (!token)
		setup_fail("logging in %s answered %ld", user, status);
	char *name = token_env_name(user);
	setenv(name, token, 1);
	free(name);
	free(token);
}

__attribute__((constructor)) static void default_jobs(void)
{
	char jobs[16];
	if (vrt_suite.jobs && !getenv("CRITERION_JOBS")) {
		snprintf(jobs, sizeof jobs, "%u", vrt_suite.jobs);
		setenv("CRITERION_JOBS", jobs, 0);
	}
}

static const char base_config[] = "# written by the integration test harness\n"
				  "[api]\n"
				  "threads = 4\n"
				  "[login]\n"
				  "max_failures_per_address = 1000000\n";

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
	(void)tests;
	double t0 = vrt_now();
	run.pid = getpid();
	run.active = true;
	curl_init_once();
	vr_xml_global_init();
	atexit(at_exit_cleanup);
	for (size_t i = 0; i < 3; i++) {
		struct sigaction action;
		memset(&action, 0, sizeof action);
		action.sa_handler = on_fatal_signal;
		sigemptyset(&action.sa_mask);
		/* an ignored signal (SIGINT in a background job) stays ignored */
		if (sigaction(fatal_signals[i], NULL, &previous_actions[i]) == 0 &&
		    previous_actions[i].sa_handler != SIG_IGN)
			sigaction(fatal_signals[i], &action, NULL);
	}
	snprintf(run.workdir, sizeof run.workdir, "/tmp/vrt-%s-XXXXXX", vrt_suite.name);
	if (!mkdtemp(run.workdir)) {
		run.workdir[0] = '\0';
		setup_fail("mkdtemp: %s", strerror(errno));
	}

	char *pg_uri = NULL, *redis_uri = NULL;
	start_services(&pg_uri, &redis_uri);
	run.admin_uri = pg_uri;
	create_database(pg_uri);
	migrate();
	load_fixtures(run.db_uri);
	add_services();

	char *redis = redis_with_db(redis_uri, vrt_suite.redis_db);
	free(redis_uri);
	char *config = xasprintf("%s%s\n", base_config, vrt_suite.config ? vrt_suite.config : "");
	struct vrt_api_opts opts = {.config = config, .public_url = vrt_suite.public_url};
	struct sigaction child;
	memset(&child, 0, sizeof child);
	child.sa_handler = on_child;
	child.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&child.sa_mask);
	sigaction(SIGCHLD, &child, NULL);
	if (api_start_in(&run.api, run.workdir, &opts, run.db_uri, redis) != 0)
		setup_fail("vrcloud-api did not start");
	free(config);
	wait_healthy(run.api.base);

	char pid[24];
	snprintf(pid, sizeof pid, "%ld", (long)run.api.pid);
	setenv("VRT_WORKDIR", run.workdir, 1);
	setenv("VRT_DB_URI", run.db_uri, 1);
	setenv("VRT_PG_URI", pg_uri, 1);
	setenv("VRT_REDIS_URI", redis, 1);
	setenv("VRT_BASE_URL", run.api.base, 1);
	setenv("VRT_PUBLIC_URL", vrt_suite.public_url ? vrt_suite.public_url : run.api.base, 1);
	setenv("VRT_API_PID", pid, 1);
	setenv("VRT_API_DIR", run.api.dir, 1);
	if (run.svcdir[0])
		setenv("VRT_SVC_DIR", run.svcdir, 1);
	free(redis);

	static const char *const users[] = {VRT_ADMIN_A, VRT_USER_A, VRT_ADMIN_B, VRT_ROOT};
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		export_token(run.api.base, users[i]);
	add_known_sessions(run.db_uri);
	say("suite '%s' ready in %.1f s: api %s (pid %ld), database %s", vrt_suite.name,
	    vrt_now() - t0, run.api.base, (long)run.api.pid, run.db_name);
	fflush(NULL);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	double t0 = vrt_now();
	cleanup_all(true);
	if (run.failed) {
		say("TEARDOWN FAILED: counted as one more failing test");
		stats->tests_failed++;
		if (stats->tests_passed)
			stats->tests_passed--;
	} else {
		say("suite '%s' torn down in %.1f s", vrt_suite.name, vrt_now() - t0);
	}
	fflush(NULL);
}
