/* Authentication: who may call, from a session token or from Basic
 * credentials (user@org:password), with failed logins rate-limited per
 * (user, client address) and per client address. Session tokens are 256
 * random bits; only their SHA-256 is stored. */
#ifndef VRCLOUD_AUTH_H
#define VRCLOUD_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "vrcloud/config.h"
#include "vrcloud/uuid.h"

struct vr_db;

enum vr_role {
	VR_ROLE_NONE = 0,
	VR_ROLE_ORG_USER,
	VR_ROLE_ORG_ADMIN,
	VR_ROLE_SYSADMIN,
	VR_ROLE_SERVICE, /* a worker or proxy on the internal API; no tenant routes */
};

struct vr_principal {
	char session_id[VR_UUID_LEN + 1]; /* "" when authenticated by Basic */
	char user_id[VR_UUID_LEN + 1];
	char org_id[VR_UUID_LEN + 1];
	char user_name[130];
	char org_name[130];
	enum vr_role role;
};

/* Text of a token: base64 of 32 random bytes. */
#define VR_TOKEN_LEN 44

/* "sysadmin", "org-admin", "org-user" <-> enum. */
enum vr_role vr_role_parse(const char *name);
const char *vr_role_name(enum vr_role role);

/* Check user@org:password. On success fills *who (session_id empty).
 * Returns 0; VR_EAUTH (unknown user, wrong password, disabled: the same
 * answer and about the same time for each); VR_ERATE (too many failures,
 * *retry_after_out seconds to wait; the password was not even checked);
 * VR_EUNAVAIL / VR_EDB. */
int vr_auth_login(struct vr_db *db, const struct vr_config *config, const char *user_at_org,
		  const char *password, const char *client_addr, struct vr_principal *who,
		  unsigned *retry_after_out);

/* Open a session for who: a new token (token_out, NUL-terminated) whose
 * hash is stored. Returns 0 or a db/VR_EIO error. */
int vr_auth_session_open(struct vr_db *db, const struct vr_config *config,
			 struct vr_principal *who, const char *client_addr,
			 char token_out[VR_TOKEN_LEN + 1]);
/* Resolve a token to its live session. Returns 0, VR_EAUTH (unknown,
 * expired, idle too long, user disabled) or a db error. */
int vr_auth_session_lookup(struct vr_db *db, const struct vr_config *config, const char *token,
			   struct vr_principal *who);
int vr_auth_session_close(struct vr_db *db, const char *session_id);

/* Resolve a service token (Authorization: Bearer) to its credential:
 * who->user_id = credential id, user_name = its name, org_name = its kind,
 * role = VR_ROLE_SERVICE. Returns 0, VR_EAUTH (unknown or revoked) or a db
 * error. */
int vr_auth_service_lookup(struct vr_db *db, const char *token, struct vr_principal *who);

/* A new token: base64 of 32 bytes from the OpenSSL CSPRNG. 0 or VR_EIO. */
int vr_auth_token_new(char out[VR_TOKEN_LEN + 1]);

/* Text of a site credential: unpadded base64url of 32 random bytes. */
#define VR_SITE_CREDENTIAL_LEN 43

/* A new site credential (the secret a paired site authenticates with):
 * 32 bytes from the OpenSSL CSPRNG in unpadded base64url, so that it
 * travels in a header or a URL as is. 0 or VR_EIO. Store only its
 * vr_auth_token_hash_hex. */
int vr_auth_site_credential_new(char out[VR_SITE_CREDENTIAL_LEN + 1]);

/* SHA-256 of a token as the "\x..." hex text PostgreSQL reads as bytea. */
void vr_auth_token_hash_hex(char out[2 + 64 + 1], const char *token);

#endif
