#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "vrcloud/auth.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

void vr_auth_token_hash_hex(char out[2 + 64 + 1], const char *token)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), digest);
	out[0] = '\\';
	out[1] = 'x';
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 + 2 * i] = hex[digest[i] >> 4];
		out[3 + 2 * i] = hex[digest[i] & 15];
	}
	out[2 + 64] = '\0';
}

int vr_auth_token_new(char out[VR_TOKEN_LEN + 1])
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof raw) != 1)
		return VR_EIO;
	unsigned char encoded[VR_TOKEN_LEN + 4];
	int n = EVP_EncodeBlock(encoded, raw, sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	if (n != VR_TOKEN_LEN)
		return VR_EIO;
	memcpy(out, encoded, VR_TOKEN_LEN);
	out[VR_TOKEN_LEN] = '\0';
	OPENSSL_cleanse(encoded, sizeof encoded);
	return 0;
}

int vr_auth_site_credential_new(char out[VR_SITE_CREDENTIAL_LEN + 1])
{
	char encoded[VR_TOKEN_LEN + 1];
	int rc = vr_auth_token_new(encoded);
	if (rc)
		return rc;
	/* base64 of 32 bytes: 43 characters and one '=' of padding. */
	for (int i = 0; i < VR_SITE_CREDENTIAL_LEN; i++)
		out[i] = encoded[i] == '+' ? '-' : encoded[i] == '/' ? '_' : encoded[i];
	out[VR_SITE_CREDENTIAL_LEN] = '\0';
	OPENSSL_cleanse(encoded, sizeof encoded);
	return 0;
}

static int db_err(int status)
{
	return status == VR_DB_SOFT ? VR_EUNAVAIL : VR_EDB;
}

int vr_auth_session_open(struct vr_db *db, const struct vr_config *config,
			 struct vr_principal *who, const char *client_addr,
			 char token_out[VR_TOKEN_LEN + 1])
{
	int rc = vr_auth_token_new(token_out);
	if (rc)
		return rc;

	char hash[2 + 64 + 1];
	vr_auth_token_hash_hex(hash, token_out);
	char lifetime[16], idle[16];
	snprintf(lifetime, sizeof lifetime, "%u", config->session_absolute_timeout);
	snprintf(idle, sizeof idle, "%u", config->session_idle_timeout);

	/* Housekeeping rides on logins, which are rare next to reads. */
	const char *expire_params[] = {idle};
	vr_db_exec(db, "sessions_expire", NULL, 1, expire_params);

	const char *params[] = {hash, who->user_id, lifetime, client_addr};
	PGresult *res = NULL;
	rc = vr_db_exec(db, "session_create", &res, 4, params);
	if (rc != 1) {
		PQclear(res);
		return rc < 0 ? db_err(rc) : VR_EDB;
	}
	snprintf(who->session_id, sizeof who->session_id, "%s", vr_db_str(res, 0, 0));
	PQclear(res);
	return 0;
}

int vr_auth_session_lookup(struct vr_db *db, const struct vr_config *config, const char *token,
			   struct vr_principal *who)
{
	size_t len = strlen(token);
	if (len == 0 || len > 256)
		return VR_EAUTH;
	char hash[2 + 64 + 1];
	vr_auth_token_hash_hex(hash, token);
	char idle[16], stale[16];
	unsigned slack = config->session_idle_timeout / 10;
	snprintf(idle, sizeof idle, "%u", config->session_idle_timeout);
	snprintf(stale, sizeof stale, "%u", slack < 1 ? 1 : slack > 30 ? 30 : slack);
	const char *params[] = {hash, idle, stale};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "session_lookup", &res, 3, params);
	if (rc < 0)
		return db_err(rc);
	if (rc == 0) {
		PQclear(res);
		return VR_EAUTH;
	}
	memset(who, 0, sizeof *who);
	snprintf(who->session_id, sizeof who->session_id, "%s", vr_db_str(res, 0, 0));
	snprintf(who->user_id, sizeof who->user_id, "%s", vr_db_str(res, 0, 1));
	snprintf(who->user_name, sizeof who->user_name, "%s", vr_db_str(res, 0, 2));
	who->role = vr_role_parse(vr_db_str(res, 0, 3));
	snprintf(who->org_id, sizeof who->org_id, "%s", vr_db_str(res, 0, 4));
	snprintf(who->org_name, sizeof who->org_name, "%s", vr_db_str(res, 0, 5));
	bool touch_needed = vr_db_bool(res, 0, 6);
	PQclear(res);
	if (touch_needed) {
		const char *touch[] = {who->session_id};
		vr_db_exec(db, "session_touch", NULL, 1, touch);
	}
	return who->role == VR_ROLE_NONE ? VR_EAUTH : 0;
}

int vr_auth_session_close(struct vr_db *db, const char *session_id)
{
	const char *params[] = {session_id};
	int rc = vr_db_exec(db, "session_delete", NULL, 1, params);
	return rc < 0 ? db_err(rc) : 0;
}

int vr_auth_service_lookup(struct vr_db *db, const char *token, struct vr_principal *who)
{
	size_t len = strlen(token);
	if (len == 0 || len > 256)
		return VR_EAUTH;
	char hash[2 + 64 + 1];
	vr_auth_token_hash_hex(hash, token);
	const char *params[] = {hash};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "service_lookup", &res, 1, params);
	if (rc < 0)
		return db_err(rc);
	if (rc == 0) {
		PQclear(res);
		return VR_EAUTH;
	}
	memset(who, 0, sizeof *who);
	snprintf(who->user_id, sizeof who->user_id, "%s", vr_db_str(res, 0, 0));
	snprintf(who->user_name, sizeof who->user_name, "%s", vr_db_str(res, 0, 1));
	snprintf(who->org_name, sizeof who->org_name, "%s", vr_db_str(res, 0, 2));
	who->role = VR_ROLE_SERVICE;
	PQclear(res);
	return 0;
}
