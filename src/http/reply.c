/* Every answer vrcloud-api sends goes through here, so that each carries
 * the request id, the negotiated version and, on failure, an Error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/xml.h"

#define ERROR_MEDIA_TYPE "application/vnd.vmware.vcloud.error+xml"

enum MHD_Result vr_reply_response(struct vr_request *req, unsigned status,
				  struct MHD_Response *response)
{
	if (!response)
		return MHD_NO;
	MHD_add_response_header(response, "X-VMWARE-VCLOUD-REQUEST-ID", req->request_id);
	MHD_add_response_header(response, "Cache-Control", "no-store");
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	req->status = status;
	req->replied = true;
	enum MHD_Result r = MHD_queue_response(req->connection, status, response);
	MHD_destroy_response(response);
	return r;
}

struct MHD_Response *vr_response_from_buf(struct vr_buf *body)
{
	size_t len = 0;
	char *data = vr_buf_take(body, &len);
	if (!data)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return MHD_create_response_from_buffer_with_free_callback(len, data, free);
}

enum MHD_Result vr_reply_doc(struct vr_request *req, unsigned status, const char *media_type,
			     struct vr_buf *body)
{
	struct MHD_Response *response = vr_response_from_buf(body);
	if (!response)
		return MHD_NO;
	char *content_type = vr_asprintf("%s;version=%s", media_type,
					 req->version ? req->version : VR_API_VERSION_LATEST);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	free(content_type);
	return vr_reply_response(req, status, response);
}

int vr_error_render(struct vr_buf *out, unsigned status, const char *minor, const char *vendor,
		    const char *message)
{
	struct vr_xml *w = vr_xml_new();
	vr_xml_start(w, "Error");
	vr_xml_attr(w, "xmlns", VR_NS_VCLOUD);
	vr_xml_attrf(w, "majorErrorCode", "%u", status);
	vr_xml_attr(w, "minorErrorCode", minor);
	vr_xml_attr(w, "message", message);
	if (vendor)
		vr_xml_attr(w, "vendorSpecificErrorCode", vendor);
	vr_xml_end(w);
	return vr_xml_finish(w, out);
}

static enum MHD_Result reply_error_header(struct vr_request *req, unsigned status,
					  const char *minor, const char *vendor,
					  const char *message, const char *header,
					  const char *value)
{
	struct vr_buf body;
	vr_buf_init(&body, 0);
	if (vr_error_render(&body, status, minor, vendor, message)) {
		vr_buf_free(&body);
		return MHD_NO;
	}
	if (status >= 500)
		vr_log_error("request_failed", "status_text", minor, "message", message);
	struct MHD_Response *response = vr_response_from_buf(&body);
	if (!response)
		return MHD_NO;
	char *content_type = vr_asprintf("%s;version=%s", ERROR_MEDIA_TYPE,
					 req->version ? req->version : VR_API_VERSION_LATEST);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	free(content_type);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Basic realm=\"vCloud\"");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "5");
	if (header)
		MHD_add_response_header(response, header, value);
	return vr_reply_response(req, status, response);
}

static enum MHD_Result reply_error_text(struct vr_request *req, unsigned status,
					const char *minor, const char *message)
{
	return reply_error_header(req, status, minor, NULL, message, NULL, NULL);
}

enum MHD_Result vr_reply_rate_limited(struct vr_request *req, unsigned retry_after)
{
	char seconds[16];
	snprintf(seconds, sizeof seconds, "%u", retry_after ? retry_after : 1);
	char *message = vr_asprintf("Too many failed logins from this address or for this user; "
				    "retry in %s seconds.", seconds);
	enum MHD_Result r = reply_error_header(req, MHD_HTTP_TOO_MANY_REQUESTS,
					       "TOO_MANY_REQUESTS", NULL, message,
					       MHD_HTTP_HEADER_RETRY_AFTER, seconds);
	free(message);
	return r;
}

enum MHD_Result vr_reply_error(struct vr_request *req, unsigned status, const char *minor,
			       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *message = NULL;
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	enum MHD_Result r = reply_error_text(req, status, minor, message ? message : "error");
	free(message);
	return r;
}

enum MHD_Result vr_reply_error_vendor(struct vr_request *req, unsigned status, const char *minor,
				      const char *vendor, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *message = NULL;
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	enum MHD_Result r = reply_error_header(req, status, minor, vendor,
					       message ? message : "error", NULL, NULL);
	free(message);
	return r;
}

/* The one table from internal errors to HTTP status and minorErrorCode. */
static const struct {
	int err;
	unsigned status;
	const char *minor;
	const char *message;
} error_map[] = {
	{VR_EINVAL, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "The request is not valid."},
	{VR_ENOTFOUND, MHD_HTTP_NOT_FOUND, "RESOURCE_NOT_FOUND", "The requested resource was not found."},
	{VR_EAUTH, MHD_HTTP_UNAUTHORIZED, "NOT_AUTHENTICATED",
	 "This operation requires an authenticated session: log in with POST /api/sessions."},
	{VR_EFORBIDDEN, MHD_HTTP_FORBIDDEN, "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
	 "Your role does not allow this operation."},
	{VR_ECONFLICT, MHD_HTTP_CONFLICT, "BUSY_ENTITY", "The object is busy with another operation."},
	{VR_EEXIST, MHD_HTTP_CONFLICT, "DUPLICATE_NAME", "An object with that name already exists."},
	{VR_ETOOBIG, MHD_HTTP_CONTENT_TOO_LARGE, "REQUEST_ENTITY_TOO_LARGE",
	 "The request body is larger than this operation accepts."},
	{VR_ERATE, MHD_HTTP_TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS",
	 "Too many failed attempts; try again later."},
	{VR_EUNAVAIL, MHD_HTTP_SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE",
	 "The service is temporarily unavailable (its database cannot be reached); retry shortly."},
	{VR_EDB, MHD_HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR",
	 "The server failed to process the request; the request id identifies it in the logs."},
	{VR_ENOMEM, MHD_HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR",
	 "The server ran out of memory processing the request."},
};

enum MHD_Result vr_reply_err(struct vr_request *req, int err)
{
	/* The database answers but holds another schema version: say so. */
	char schema[160];
	if (err == VR_EUNAVAIL && vr_db_schema_problem(schema, sizeof schema))
		return reply_error_text(req, MHD_HTTP_SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE",
					schema);
	for (size_t i = 0; i < sizeof error_map / sizeof error_map[0]; i++)
		if (error_map[i].err == err)
			return reply_error_text(req, error_map[i].status, error_map[i].minor,
						error_map[i].message);
	return reply_error_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR",
				vr_err_str(err));
}

enum MHD_Result vr_reply_not_found(struct vr_request *req, const char *what, const char *id)
{
	return vr_reply_error(req, MHD_HTTP_NOT_FOUND, "RESOURCE_NOT_FOUND",
			      "No %s with id %s exists, or you are not allowed to see it.", what, id);
}

enum MHD_Result vr_reply_empty(struct vr_request *req, unsigned status)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return vr_reply_response(req, status, response);
}
