/* POST /api/sessions (log in), GET and DELETE /api/session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/alloc.h"
#include "vrcloud/auth.h"
#include "vrcloud/err.h"

static void render_session(struct vr_request *req, struct vr_xml *w)
{
	/* vCD writes the session href with a trailing slash; /api/api/ is
	 * routed for the client that strips two segments off it. */
	char *self = vr_href(req, "/api/session/");
	char *orgs = vr_href(req, "/api/org/");
	vr_render_root(w, VR_NS_VCLOUD, "Session", self, VR_MT_SESSION);
	vr_xml_attr(w, "user", req->who.user_name);
	vr_xml_attr(w, "org", req->who.org_name);
	vr_xml_attrf(w, "userId", "urn:vcloud:user:%s", req->who.user_id);
	vr_render_link(w, "Link", "down", VR_MT_ORG_LIST, orgs, NULL);
	vr_render_link(w, "Link", "remove", NULL, self, NULL);
	vr_xml_end(w);
	free(self);
	free(orgs);
}

/* A 401 with the Basic challenge and no body, as vCD answers a failed
 * login (a known client only sends credentials after the challenge). */
static enum MHD_Result challenge(struct vr_request *req)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!response)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				"Basic realm=\"vCloud\"");
	return vr_reply_response(req, MHD_HTTP_UNAUTHORIZED, response);
}

enum MHD_Result vr_api_sessions_post(struct vr_request *req)
{
	const struct vr_config *config = vr_server_config(req->server);
	char *password = NULL;
	char *user = MHD_basic_auth_get_username_password(req->connection, &password);
	if (!user || !password) {
		MHD_free(user);
		MHD_free(password);
		return challenge(req);
	}
	struct vr_db *db = vr_request_db(req);
	int rc = VR_EUNAVAIL;
	unsigned retry_after = 0;
	if (db)
		rc = vr_auth_login(db, config, user, password, req->client_addr, &req->who,
				   &retry_after);
	explicit_bzero(password, strlen(password));
	MHD_free(password);
	MHD_free(user);
	if (rc == VR_EAUTH)
		return challenge(req);
	if (rc == VR_ERATE)
		return vr_reply_rate_limited(req, retry_after);
	if (rc)
		return vr_reply_err(req, rc);
	char token[VR_TOKEN_LEN + 1];
	rc = vr_auth_session_open(db, config, &req->who, req->client_addr, token);
	if (rc)
		return vr_reply_err(req, rc);
	req->authenticated = true;

	struct vr_xml *w = vr_xml_new();
	render_session(req, w);
	struct MHD_Response *response = vr_response_from_xml(w);
	if (!response) {
		explicit_bzero(token, sizeof token);
		return vr_reply_err(req, VR_ENOMEM);
	}
	char *content_type = vr_asprintf("%s;version=%s", VR_MT_SESSION, req->version);
	char *cookie = vr_asprintf("vcloud-token=%s; Secure; HttpOnly; Path=/", token);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, "x-vcloud-authorization", token);
	MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	free(content_type);
	explicit_bzero(cookie, strlen(cookie));
	free(cookie);
	explicit_bzero(token, sizeof token);
	return vr_reply_response(req, MHD_HTTP_OK, response);
}

enum MHD_Result vr_api_session_get(struct vr_request *req)
{
	struct vr_xml *w = vr_xml_new();
	render_session(req, w);
	return vr_reply_xml(req, w, VR_MT_SESSION);
}

enum MHD_Result vr_api_session_delete(struct vr_request *req)
{
	if (req->who.session_id[0]) {
		struct vr_db *db = vr_request_db(req);
		if (!db)
			return vr_reply_err(req, VR_EUNAVAIL);
		int rc = vr_auth_session_close(db, req->who.session_id);
		if (rc)
			return vr_reply_err(req, rc);
	}
	struct MHD_Response *response =
		MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!response)
		return MHD_NO;
	/* Expire the cookie too, for clients that replay it. */
	MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE,
				"vcloud-token=; Secure; HttpOnly; Path=/; Max-Age=0");
	return vr_reply_response(req, MHD_HTTP_NO_CONTENT, response);
}
