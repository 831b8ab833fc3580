#include <stdio.h>
#include <string.h>

#include "vrcloud/auth.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/password.h"

enum vr_role vr_role_parse(const char *name)
{
	if (strcmp(name, "sysadmin") == 0)
		return VR_ROLE_SYSADMIN;
	if (strcmp(name, "org-admin") == 0)
		return VR_ROLE_ORG_ADMIN;
	if (strcmp(name, "org-user") == 0)
		return VR_ROLE_ORG_USER;
	return VR_ROLE_NONE;
}

const char *vr_role_name(enum vr_role role)
{
	switch (role) {
	case VR_ROLE_SYSADMIN: return "sysadmin";
	case VR_ROLE_ORG_ADMIN: return "org-admin";
	case VR_ROLE_ORG_USER: return "org-user";
	case VR_ROLE_SERVICE: return "service";
	case VR_ROLE_NONE: break;
	}
	return "none";
}

static int db_err(int status)
{
	return status == VR_DB_SOFT ? VR_EUNAVAIL : VR_EDB;
}

/* Is (user, address) or address over its limit? */
static int check_throttle(struct vr_db *db, const struct vr_config *config, const char *pair,
			  const char *addr, const char *window, unsigned *retry_after_out)
{
	const char *params[] = {pair, addr, window};
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "login_failures_get", &res, 3, params);
	if (rc < 0)
		return db_err(rc);
	int throttled = 0;
	for (int i = 0; i < rc; i++) {
		const char *scope = vr_db_str(res, i, 0);
		long long failures = vr_db_int(res, i, 1);
		long long left = vr_db_int(res, i, 2);
		unsigned limit = strcmp(scope, "addr") == 0 ? config->login_max_failures_addr
							     : config->login_max_failures_user;
		if (failures >= (long long)limit) {
			throttled = VR_ERATE;
			unsigned wait = left > 0 ? (unsigned)left : 1;
			if (wait > *retry_after_out)
				*retry_after_out = wait;
		}
	}
	PQclear(res);
	return throttled;
}

static void record_failure(struct vr_db *db, const char *pair, const char *addr,
			   const char *window)
{
	const char *p1[] = {"user-addr", pair, window};
	vr_db_exec(db, "login_failure_add", NULL, 3, p1);
	const char *p2[] = {"addr", addr, window};
	vr_db_exec(db, "login_failure_add", NULL, 3, p2);
}

int vr_auth_login(struct vr_db *db, const struct vr_config *config, const char *user_at_org,
		  const char *password, const char *client_addr, struct vr_principal *who,
		  unsigned *retry_after_out)
{
	*retry_after_out = 0;
	memset(who, 0, sizeof *who);
	const char *at = strrchr(user_at_org, '@');
	size_t user_len = at ? (size_t)(at - user_at_org) : 0;
	bool well_formed = at && user_len > 0 && user_len < 129 && at[1] != '\0' &&
			   strlen(at + 1) < 129 && strlen(password) <= VR_PASSWORD_MAX;

	char user[130] = "", org[130] = "";
	if (well_formed) {
		memcpy(user, user_at_org, user_len);
		user[user_len] = '\0';
		snprintf(org, sizeof org, "%s", at + 1);
	}
	/* The throttle key folds case like the name lookup does. */
	char pair[300];
	snprintf(pair, sizeof pair, "%s@%s|%s", user, org, client_addr);
	for (char *p = pair; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	char window[16];
	snprintf(window, sizeof window, "%u", config->login_window);

	int rc = check_throttle(db, config, pair, client_addr, window, retry_after_out);
	if (rc) {
		if (rc == VR_ERATE)
			vr_log_warn("login_throttled", "user", user_at_org, "addr", client_addr);
		return rc;
	}

	PGresult *res = NULL;
	const char *stored = vr_password_dummy_hash();
	bool enabled = false;
	if (well_formed) {
		const char *params[] = {org, user};
		rc = vr_db_exec(db, "login_user", &res, 2, params);
		if (rc < 0)
			return db_err(rc);
		if (rc == 1) {
			stored = vr_db_str(res, 0, 3);
			enabled = vr_db_bool(res, 0, 4);
		}
	}
	/* Always run the KDF, so unknown users cost the same time as known ones. */
	bool match = vr_password_verify(stored, password);
	if (!res || PQntuples(res) != 1 || !match || !enabled) {
		PQclear(res);
		record_failure(db, pair, client_addr, window);
		vr_log_warn("login_failed", "user", user_at_org, "addr", client_addr);
		return VR_EAUTH;
	}
	snprintf(who->user_id, sizeof who->user_id, "%s", vr_db_str(res, 0, 0));
	snprintf(who->user_name, sizeof who->user_name, "%s", vr_db_str(res, 0, 1));
	who->role = vr_role_parse(vr_db_str(res, 0, 2));
	snprintf(who->org_id, sizeof who->org_id, "%s", vr_db_str(res, 0, 5));
	snprintf(who->org_name, sizeof who->org_name, "%s", vr_db_str(res, 0, 6));
	PQclear(res);
	if (who->role == VR_ROLE_NONE)
		return VR_EAUTH;
	const char *clear[] = {pair};
	vr_db_exec(db, "login_failures_clear", NULL, 1, clear);
	return 0;
}
