#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"
#include "vrcloud/auth.h"
#include "vrcloud/err.h"

bool vr_http_cookie_value(const char *header, const char *name, char *out, size_t out_size)
{
	size_t nlen = strlen(name);
	const char *p = header;
	while ((p = strstr(p, name)) != NULL) {
		bool at_start = p == header || p[-1] == ';' || p[-1] == ',' ||
				isspace((unsigned char)p[-1]);
		if (at_start && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t len = strcspn(v, ";, \t\r\n");
			if (len == 0 || len >= out_size)
				return false;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
		p += nlen;
	}
	return false;
}

static const char *header(struct vr_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

int vr_http_authenticate(struct vr_request *req, unsigned *retry_after_out)
{
	*retry_after_out = 0;
	const struct vr_config *config = req->server->config;
	char token[300] = "";
	const char *bearer = header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	if (bearer && strncasecmp(bearer, "Bearer ", 7) == 0) {
		/* Services (workers, proxies) present their own credential. */
		struct vr_db *db = vr_request_db(req);
		if (!db)
			return VR_EUNAVAIL;
		const char *value = bearer + 7;
		while (*value == ' ' || *value == '\t')
			value++;
		snprintf(token, sizeof token, "%s", value);
		int rc = vr_auth_service_lookup(db, token, &req->who);
		explicit_bzero(token, sizeof token);
		if (rc == 0)
			req->authenticated = true;
		return rc;
	}
	const char *h = header(req, "x-vcloud-authorization");
	if (h) {
		while (isspace((unsigned char)*h))
			h++;
		snprintf(token, sizeof token, "%s", h);
		size_t n = strlen(token);
		while (n && isspace((unsigned char)token[n - 1]))
			token[--n] = '\0';
	} else {
		const char *cookie = header(req, MHD_HTTP_HEADER_COOKIE);
		if (cookie)
			vr_http_cookie_value(cookie, "vcloud-token", token, sizeof token);
	}
	if (token[0]) {
		struct vr_db *db = vr_request_db(req);
		if (!db)
			return VR_EUNAVAIL;
		int rc = vr_auth_session_lookup(db, config, token, &req->who);
		if (rc == 0) {
			req->authenticated = true;
			return 0;
		}
		if (rc != VR_EAUTH)
			return rc;
		/* A stale token with valid Basic credentials (RaaSCLI sends both)
		 * still authenticates through the credentials below. */
	}
	char *password = NULL;
	char *user = MHD_basic_auth_get_username_password(req->connection, &password);
	if (!user) {
		MHD_free(password);
		return VR_EAUTH;
	}
	int rc = VR_EAUTH;
	if (password) {
		struct vr_db *db = vr_request_db(req);
		rc = db ? vr_auth_login(db, config, user, password, req->client_addr, &req->who,
					retry_after_out)
			: VR_EUNAVAIL;
	}
	if (password) {
		explicit_bzero(password, strlen(password));
		MHD_free(password);
	}
	MHD_free(user);
	if (rc == 0)
		req->authenticated = true;
	return rc;
}
