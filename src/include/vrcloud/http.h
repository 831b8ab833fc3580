/* The HTTP front of vrcloud-api: libmicrohttpd with an epoll thread pool,
 * one static route table, content negotiation, authentication, and replies
 * that are always vCD documents (an Error for every failure). */
#ifndef VRCLOUD_HTTP_H
#define VRCLOUD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>
#include <microhttpd.h>

#include "vrcloud/auth.h"
#include "vrcloud/buf.h"
#include "vrcloud/config.h"
#include "vrcloud/uuid.h"

struct vr_request;
struct vr_server;

typedef enum MHD_Result (*vr_handler)(struct vr_request *req);

enum vr_route_flags {
	VR_ROUTE_PUBLIC = 1 << 0,       /* no session needed */
	VR_ROUTE_SYSADMIN = 1 << 1,     /* System administrators only (403 otherwise) */
	VR_ROUTE_NO_NEGOTIATE = 1 << 2, /* ignore Accept (versions, healthz) */
	VR_ROUTE_SLASH = 1 << 3,        /* also answer with one trailing slash */
	VR_ROUTE_SERVICE = 1 << 4,      /* internal: service credentials only */
};

/* One line of the route table. Patterns are literal segments and "{id}",
 * which matches a UUID (any case; canonicalised into req->ids). GET routes
 * answer HEAD too. */
struct vr_route {
	const char *method;
	const char *pattern;
	vr_handler handler;
	size_t body_limit; /* 0: the default of the config */
	unsigned flags;
};

/* Per-request state, owned by the connection, freed when it completes. */
struct vr_request {
	struct MHD_Connection *connection;
	struct vr_server *server;
	const struct vr_route *route;
	const char *method;
	const char *url;
	bool head;
	char request_id[VR_UUID_LEN + 1];
	char ids[4][VR_UUID_LEN + 1];
	unsigned nids;
	const char *version; /* negotiated API version (static string) */
	struct vr_buf body;
	int pending_error;  /* a vr_err decided while the body streams in */
	bool authenticated;
	struct vr_principal who;
	char client_addr[64];
	int64_t start_us;
	unsigned status;  /* what was answered, for the access log */
	bool replied;     /* a response is queued */
	bool has_body;    /* the request announced a body */
	bool begun;       /* routed and checked (begin_request ran) */
	struct vr_db *db; /* the thread's connection; NULL until needed */
};

/* A compatibility prefix: paths starting with `from` are routed as if they
 * started with `to` (e.g. "/api/compute/api/" -> "/api/"). */
struct vr_alias {
	const char *from;
	const char *to;
};

/* The route table of vrcloud-api (src/api/routes.c); both NULL-terminated. */
extern const struct vr_route vr_api_routes[];
extern const struct vr_alias vr_api_aliases[];

/* Outcome of matching a path against the route table. */
enum vr_match {
	VR_MATCH_OK = 0,
	VR_MATCH_NOT_FOUND,
	VR_MATCH_BAD_METHOD, /* the path exists; allow_out lists its methods */
};

/* Match method + path. On VR_MATCH_OK sets *route_out and copies the
 * canonical ids into ids/nids; on VR_MATCH_BAD_METHOD writes "GET, HEAD"-style
 * text into allow_out. Pure function: unit-tested. */
enum vr_match vr_router_match(const struct vr_route *routes, const struct vr_alias *aliases,
			      const char *method, const char *path,
			      const struct vr_route **route_out, char ids[][VR_UUID_LEN + 1],
			      unsigned *nids, char *allow_out, size_t allow_size);

/* Pick the API version from an Accept header (NULL = none). Returns 0 and a
 * static version string, or VR_EINVAL with *unknown_out set to the refused
 * version ("" when the header names no XML type at all). */
int vr_negotiate(const char *accept, const char **version_out, char *unknown_out,
		 size_t unknown_size);
/* "[1.5, 5.1, ...]" */
const char *vr_api_versions_text(void);

/* Start the daemon on config (listen, port, threads). config must outlive
 * the server. Returns 0 or an error; *bound_port receives the port bound. */
int vr_server_start(struct vr_server **out, const struct vr_config *config,
		    const struct vr_route *routes, const struct vr_alias *aliases,
		    unsigned *bound_port);
void vr_server_stop(struct vr_server *server);
const struct vr_config *vr_server_config(const struct vr_server *server);

/* --- used by handlers ------------------------------------------------ */

/* The API versions we speak, oldest first, NULL-terminated. */
extern const char *const vr_api_versions[];
/* The newest one, used when the client names none. */
#define VR_API_VERSION_LATEST "20.0"

/* The calling thread's database connection, or NULL when PostgreSQL cannot
 * be reached (answer vr_reply_err(req, VR_EUNAVAIL)). */
struct vr_db *vr_request_db(struct vr_request *req);

/* Absolute href: public base URL + path (path starts with "/api/..."). */
char *vr_href(const struct vr_request *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *vr_public_url(const struct vr_request *req);
/* A query argument, or NULL. */
const char *vr_request_arg(struct vr_request *req, const char *name);
bool vr_request_is_sysadmin(const struct vr_request *req);
/* The org scope for tenancy filters: NULL for System administrators (they
 * see all), else the caller's org id. */
const char *vr_request_scope(const struct vr_request *req);

struct vr_input_spec;
/* The request's body as a validated document (see vrcloud/input.h). Returns
 * true with *doc_out (NULL for an accepted empty body; the caller frees it
 * with xmlFreeDoc), or false after queueing the 400/415 Error. */
bool vr_request_document(struct vr_request *req, const struct vr_input_spec *spec,
			 xmlDocPtr *doc_out, enum MHD_Result *reply_out);

/* Reply with a document: media_type gets ";version=V" appended. Takes the
 * body's contents. */
enum MHD_Result vr_reply_doc(struct vr_request *req, unsigned status, const char *media_type,
			     struct vr_buf *body);
/* Reply with a vCD Error document. minor: minorErrorCode; message printf-like. */
enum MHD_Result vr_reply_error(struct vr_request *req, unsigned status, const char *minor,
			       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, with a vendorSpecificErrorCode (vrcloud's CamelCase codes, as
 * failed Tasks carry them; docs/state-machine.md). */
enum MHD_Result vr_reply_error_vendor(struct vr_request *req, unsigned status, const char *minor,
				      const char *vendor, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Reply with the Error that fits an internal error code. */
enum MHD_Result vr_reply_err(struct vr_request *req, int err);
/* 404 for an object the caller cannot see: identical for missing and foreign. */
enum MHD_Result vr_reply_not_found(struct vr_request *req, const char *what, const char *id);
/* 429 with Retry-After: too many failed logins. */
enum MHD_Result vr_reply_rate_limited(struct vr_request *req, unsigned retry_after);
/* Reply with no body (204, or 200/401 with headers). */
enum MHD_Result vr_reply_empty(struct vr_request *req, unsigned status);
/* A response whose body is the contents of body (taken), or NULL. */
struct MHD_Response *vr_response_from_buf(struct vr_buf *body);
/* Queue a ready response, adding the common headers. Takes response. */
enum MHD_Result vr_reply_response(struct vr_request *req, unsigned status,
				  struct MHD_Response *response);

#endif
