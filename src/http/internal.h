/* Internals of the http module shared between its files. */
#ifndef VRCLOUD_HTTP_INTERNAL_H
#define VRCLOUD_HTTP_INTERNAL_H

#include "vrcloud/http.h"
#include "vrcloud/xml.h"

struct vr_server {
	struct MHD_Daemon *daemon;
	const struct vr_config *config;
	const struct vr_route *routes;
	const struct vr_alias *aliases;
	char *public_url;
	struct vr_xml_schema *schema; /* validates request documents */
};

/* Render a vCD Error document into out. */
int vr_error_render(struct vr_buf *out, unsigned status, const char *minor, const char *vendor,
		    const char *message);

/* Authenticate the request from its token (header or cookie) or Basic
 * credentials. Returns 0 (req->who set), VR_EAUTH, VR_ERATE, VR_EUNAVAIL
 * or VR_EDB. */
int vr_http_authenticate(struct vr_request *req, unsigned *retry_after_out);

/* Find the value of cookie `name` in a Cookie header that may hold other
 * cookies and even Set-Cookie attributes; copies it into out. */
bool vr_http_cookie_value(const char *header, const char *name, char *out, size_t out_size);

#endif
