#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/input.h"
#include "vrcloud/log.h"
#include "vrcloud/timefmt.h"

/* MHD's own memory per connection must hold the longest request head we
 * answer ourselves (limits below: 414/431 Errors); past it MHD answers with
 * its own page. MHD clears this pool for every request, so it is kept
 * small: 512 KiB cost a fifth of the CPU time of a read. */
#define CONNECTION_MEMORY (128 * 1024)

const struct vr_config *vr_server_config(const struct vr_server *server)
{
	return server->config;
}

const char *vr_public_url(const struct vr_request *req)
{
	return req->server->public_url;
}

char *vr_href(const struct vr_request *req, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *path = NULL;
	if (vasprintf(&path, fmt, ap) < 0)
		path = NULL;
	va_end(ap);
	char *href = vr_asprintf("%s%s", req->server->public_url, path ? path : "");
	free(path);
	return href;
}

const char *vr_request_arg(struct vr_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

bool vr_request_is_sysadmin(const struct vr_request *req)
{
	return req->authenticated && req->who.role == VR_ROLE_SYSADMIN;
}

const char *vr_request_scope(const struct vr_request *req)
{
	return vr_request_is_sysadmin(req) ? NULL : req->who.org_id;
}

bool vr_request_document(struct vr_request *req, const struct vr_input_spec *spec,
			 xmlDocPtr *doc_out, enum MHD_Result *reply_out)
{
	const char *type = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);
	struct vr_input_error error;
	if (vr_input_check(doc_out, &error, spec, req->server->schema, type,
			   req->body.data ? req->body.data : "", req->body.len) == 0)
		return true;
	*reply_out = vr_reply_error(req, error.status, error.minor, "%s", error.message);
	return false;
}

struct vr_db *vr_request_db(struct vr_request *req)
{
	if (!req->db)
		req->db = vr_db_thread(req->server->config->database_uri);
	else if (!vr_db_connected(req->db))
		req->db = vr_db_thread(req->server->config->database_uri);
	return req->db;
}

static void client_address(struct vr_request *req)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(req->client_addr, sizeof req->client_addr, "unknown");
	if (!info || !info->client_addr)
		return;
	const struct sockaddr *sa = info->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
			  req->client_addr, sizeof req->client_addr);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  req->client_addr, sizeof req->client_addr);
}

struct header_total {
	size_t bytes;
};

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	struct header_total *t = cls;
	t->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/* First call for a request: route it and decide everything that can be
 * decided from its head alone. A non-zero return is the status to refuse
 * it with (its reply is queued at once). */
static enum MHD_Result begin_request(struct vr_request *req, const char *url, const char *method)
{
	const struct vr_config *config = req->server->config;
	/* Refusals below already speak the client's version when it asked for
	 * one we know; dispatch() refuses an unacceptable Accept with 406. */
	char unknown[40];
	const char *accept = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_ACCEPT);
	if (vr_negotiate(accept, &req->version, unknown, sizeof unknown))
		req->version = NULL;
	/* MHD hands over the path alone; the query string counts too. */
	struct header_total query = {strlen(url)};
	MHD_get_connection_values(req->connection, MHD_GET_ARGUMENT_KIND, add_header_size, &query);
	if (query.bytes > config->max_url_bytes)
		return vr_reply_error(req, MHD_HTTP_URI_TOO_LONG, "REQUEST_URI_TOO_LONG",
				      "The request URL is longer than %u bytes.",
				      config->max_url_bytes);
	struct header_total headers = {0};
	MHD_get_connection_values(req->connection, MHD_HEADER_KIND, add_header_size, &headers);
	if (headers.bytes > config->max_header_bytes)
		return vr_reply_error(req, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
				      "REQUEST_HEADER_FIELDS_TOO_LARGE",
				      "The request headers are larger than %u bytes.",
				      config->max_header_bytes);

	char allow[128];
	enum vr_match m = vr_router_match(req->server->routes, req->server->aliases, method, url,
					  &req->route, req->ids, &req->nids, allow, sizeof allow);
	if (m == VR_MATCH_NOT_FOUND)
		return vr_reply_error(req, MHD_HTTP_NOT_FOUND, "RESOURCE_NOT_FOUND",
				      "There is no resource at this URL.");
	if (m == VR_MATCH_BAD_METHOD) {
		struct vr_buf body;
		vr_buf_init(&body, 0);
		char *msg = vr_asprintf("The method %s is not supported here; use %s.", method,
					allow);
		int rc = vr_error_render(&body, MHD_HTTP_METHOD_NOT_ALLOWED,
					 "METHOD_NOT_ALLOWED", NULL, msg);
		free(msg);
		if (rc) {
			vr_buf_free(&body);
			return MHD_NO;
		}
		struct MHD_Response *response = vr_response_from_buf(&body);
		if (!response)
			return MHD_NO;
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
		char *ct = vr_asprintf("application/vnd.vmware.vcloud.error+xml;version=%s",
				       req->version ? req->version : VR_API_VERSION_LATEST);
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
		free(ct);
		return vr_reply_response(req, MHD_HTTP_METHOD_NOT_ALLOWED, response);
	}
	size_t limit = req->route->body_limit ? req->route->body_limit : config->max_body_bytes;
	vr_buf_init(&req->body, limit);
	const char *length = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length && strtoull(length, NULL, 10) > limit)
		return vr_reply_err(req, VR_ETOOBIG);
	return MHD_YES;
}

static enum MHD_Result dispatch(struct vr_request *req)
{
	const struct vr_route *route = req->route;
	if (!(route->flags & VR_ROUTE_NO_NEGOTIATE)) {
		char unknown[40];
		const char *accept = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
								 MHD_HTTP_HEADER_ACCEPT);
		if (vr_negotiate(accept, &req->version, unknown, sizeof unknown)) {
			if (unknown[0])
				return vr_reply_error(
					req, MHD_HTTP_NOT_ACCEPTABLE, "NOT_ACCEPTABLE",
					"The request has invalid accept header: Unknown API version: "
					"%s. Supported API versions are: %s",
					unknown, vr_api_versions_text());
			return vr_reply_error(req, MHD_HTTP_NOT_ACCEPTABLE, "NOT_ACCEPTABLE",
					      "The request has invalid accept header. Supported API "
					      "versions are: %s",
					      vr_api_versions_text());
		}
	}
	if (!(route->flags & VR_ROUTE_PUBLIC)) {
		unsigned retry_after = 0;
		int rc = vr_http_authenticate(req, &retry_after);
		if (rc == VR_ERATE)
			return vr_reply_rate_limited(req, retry_after);
		if (rc)
			return vr_reply_err(req, rc);
		bool service = req->who.role == VR_ROLE_SERVICE;
		if ((route->flags & VR_ROUTE_SERVICE) && !service)
			return vr_reply_error(req, MHD_HTTP_FORBIDDEN,
					      "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					      "Only vrcloud services may use the internal API.");
		if (!(route->flags & VR_ROUTE_SERVICE) && service)
			return vr_reply_error(req, MHD_HTTP_FORBIDDEN,
					      "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					      "Service credentials reach only the internal API.");
		if ((route->flags & VR_ROUTE_SYSADMIN) && req->who.role != VR_ROLE_SYSADMIN)
			return vr_reply_error(req, MHD_HTTP_FORBIDDEN,
					      "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
					      "Only System administrators may use this operation.");
	}
	return route->handler(req);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding of the path and query, as MHD's own but for %00: a NUL
 * would silently cut a path or value short ("/api/org%00/x" read as
 * "/api/org"), so it stays as the three characters and matches nothing. */
static size_t unescape(void *cls, struct MHD_Connection *connection, char *text)
{
	char *out = text;
	for (const char *in = text; *in; in++) {
		int hi, lo;
		if (in[0] == '%' && (hi = hex_value(in[1])) >= 0 && (lo = hex_value(in[2])) >= 0 &&
		    (hi | lo) != 0) {
			*out++ = (char)(hi * 16 + lo);
			in += 2;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
	return (size_t)(out - text);
}

static bool has_body(struct MHD_Connection *connection)
{
	const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *encoding = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							   MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return encoding || (length && strtoull(length, NULL, 10) > 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct vr_server *server = cls;
	struct vr_request *req = *con_cls;
	if (!req) {
		req = vr_calloc(1, sizeof *req);
		*con_cls = req;
		req->connection = connection;
		req->server = server;
		req->method = method;
		req->url = url;
		req->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
		req->start_us = vr_time_mono_us();
		vr_buf_init(&req->body, server->config->max_body_bytes);
		if (vr_uuid_generate(req->request_id))
			snprintf(req->request_id, sizeof req->request_id, "unknown");
		client_address(req);
		/* A request with a body is routed now, so that a refusal (404,
		 * 413...) goes out before the body is read; one without waits
		 * for the next call, so that the refusal keeps the connection. */
		req->has_body = has_body(connection);
		if (!req->has_body)
			return MHD_YES;
		vr_log_set_request_id(req->request_id);
		enum MHD_Result r = begin_request(req, url, method);
		req->begun = true;
		vr_log_set_request_id(NULL);
		return r;
	}
	vr_log_set_request_id(req->request_id);
	enum MHD_Result result = MHD_YES;
	if (!req->begun) {
		req->begun = true;
		result = begin_request(req, url, method);
		if (result != MHD_YES || req->replied) {
			vr_log_set_request_id(NULL);
			return result;
		}
	}
	if (*upload_data_size) {
		/* Past the cap the rest is read and dropped: MHD 0.9.75 cannot
		 * answer while a chunked body still streams in. */
		if (!req->replied && !req->pending_error) {
			int rc = vr_buf_append(&req->body, upload_data, *upload_data_size);
			if (rc) {
				req->pending_error = rc;
				vr_buf_free(&req->body);
			}
		}
		*upload_data_size = 0;
	} else if (!req->replied) {
		result = req->pending_error ? vr_reply_err(req, req->pending_error) : dispatch(req);
	}
	vr_log_set_request_id(NULL);
	return result;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct vr_request *req = *con_cls;
	if (!req)
		return;
	char status[8], ms[32];
	snprintf(status, sizeof status, "%u", req->status);
	snprintf(ms, sizeof ms, "%.3f", (double)(vr_time_mono_us() - req->start_us) / 1000.0);
	char user[280] = "";
	if (req->authenticated)
		snprintf(user, sizeof user, "%s@%s", req->who.user_name, req->who.org_name);
	vr_log_set_request_id(req->request_id);
	vr_log(req->status >= 500 ? VR_LOG_WARN : VR_LOG_INFO, "request", "method", req->method,
	       "path", req->url, "status", status, "ms", ms, "user", user[0] ? user : NULL,
	       "addr", req->client_addr,
	       "aborted", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "true",
	       (char *)NULL);
	vr_log_set_request_id(NULL);
	vr_buf_free(&req->body);
	free(req);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	vr_log_warn("http_server", "message", msg);
}

static char *default_public_url(const struct vr_config *config, unsigned port)
{
	if (config->public_url) {
		char *url = vr_strdup(config->public_url);
		size_t n = strlen(url);
		while (n && url[n - 1] == '/')
			url[--n] = '\0';
		return url;
	}
	const char *host = config->listen;
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
		host = "127.0.0.1";
	if (strchr(host, ':'))
		return vr_asprintf("http://[%s]:%u", host, port);
	return vr_asprintf("http://%s:%u", host, port);
}

int vr_server_start(struct vr_server **out, const struct vr_config *config,
		    const struct vr_route *routes, const struct vr_alias *aliases,
		    unsigned *bound_port)
{
	*out = NULL;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sslen;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, config->listen, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)config->port);
		sslen = sizeof *sin;
	} else if (inet_pton(AF_INET6, config->listen, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)config->port);
		sslen = sizeof *sin6;
		flags |= MHD_USE_IPv6;
	} else {
		vr_log_error("bad_listen_address", "listen", config->listen);
		return VR_ECONFIG;
	}
	(void)sslen;
	const char *schema_path = config->schema;
	if (!schema_path)
		schema_path = access(VR_SCHEMA_DIR "/vrcloud.xsd", R_OK) == 0
				      ? VR_SCHEMA_DIR "/vrcloud.xsd"
				      : VR_SRCDIR "/schema/vrcloud.xsd";
	struct vr_xml_schema *schema = NULL;
	if (vr_xml_schema_load(&schema, schema_path)) {
		vr_log_error("schema_load_failed", "path", schema_path, "hint",
			     "set [api] schema to the path of schema/vrcloud.xsd");
		return VR_ECONFIG;
	}
	struct vr_server *server = vr_calloc(1, sizeof *server);
	server->schema = schema;
	server->config = config;
	server->routes = routes;
	server->aliases = aliases;
	server->daemon = MHD_start_daemon(
		flags, (uint16_t)config->port, NULL, NULL, on_request, server,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)config->threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)config->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_END);
	if (!server->daemon) {
		vr_xml_schema_free(server->schema);
		free(server);
		return VR_EIO;
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = info ? info->port : config->port;
	server->public_url = default_public_url(config, port);
	if (bound_port)
		*bound_port = port;
	*out = server;
	return 0;
}

void vr_server_stop(struct vr_server *server)
{
	if (!server)
		return;
	MHD_stop_daemon(server->daemon);
	vr_xml_schema_free(server->schema);
	free(server->public_url);
	free(server);
}
