/* vrcloudctl seed-demo: an org, a VDC and an org administrator to try
 * vrcloud with, created or brought back to that state. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define RANDOM_PASSWORD_LEN 20
/* names are at most 128 characters of up to 4 bytes each */
#define NAME_SIZE (4 * 128 + 1)

static const char seed_help[] =
	"Usage: vrcloudctl seed-demo [--org NAME] [--vdc NAME] [--user NAME] [--password-stdin]\n"
	"\n"
	"Make sure a demo org, a VDC in it with every recovery switch on, and an\n"
	"enabled org-admin user exist; running it again changes nothing else. The\n"
	"user's password is the first line of standard input with --password-stdin\n"
	"(an existing user's password is reset to it); otherwise a new user gets a\n"
	"random 20-character password and an existing user keeps the one it has.\n"
	"\n"
	"Prints key=value lines that a shell can source:\n"
	"  org=  org_id=  vdc=  vdc_id=  user=NAME@ORG  password=\n"
	"where password=(unchanged) means the existing password was kept.\n"
	"\n"
	"Options:\n"
	"  --org NAME        org name (default demo)\n"
	"  --vdc NAME        VDC name (default demo-vdc)\n"
	"  --user NAME       user name (default demo-admin)\n"
	"  --password-stdin  read the user's password from standard input\n"
	"  -h, --help        show this help\n";

static const char sql_org[] =
	"INSERT INTO orgs (name, full_name, description)"
	" VALUES ($1, $1, 'Demo organization created by vrcloudctl seed-demo')"
	" ON CONFLICT ((lower(name))) DO UPDATE SET name = orgs.name"
	" RETURNING id, name, is_system";

static const char sql_vdc[] =
	"INSERT INTO vdcs (org_id, name, description)"
	" VALUES ($1, $2, 'Demo VDC created by vrcloudctl seed-demo')"
	" ON CONFLICT (org_id, (lower(name))) DO UPDATE SET replication_enabled = true,"
	" failover_enabled = true, test_failover_enabled = true, planned_migration_enabled = true"
	" RETURNING id, name";

static const char sql_user_find[] =
	"SELECT id, name FROM users WHERE org_id = $1 AND lower(name) = lower($2) FOR UPDATE";

static const char sql_user_add[] = "INSERT INTO users (org_id, name, role, password_hash)"
				   " VALUES ($1, $2, 'org-admin', $3) RETURNING id, name";

/* $2 NULL keeps the password; a new password ends the sessions. */
static const char sql_user_update[] =
	"WITH u AS (UPDATE users SET role = 'org-admin', enabled = true,"
	"  password_hash = coalesce($2, password_hash), updated_at = now()"
	"  WHERE id = $1 RETURNING id)"
	" DELETE FROM sessions USING u WHERE sessions.user_id = u.id AND $2 IS NOT NULL";

struct seed {
	const char *org, *vdc, *user;
	char password[VR_PASSWORD_MAX + 1]; /* empty: keep the existing one */
	char hash[VR_PASSWORD_HASH_MAX];
	/* results, as stored */
	char org_id[VR_UUID_LEN + 1], vdc_id[VR_UUID_LEN + 1];
	char org_name[NAME_SIZE], vdc_name[NAME_SIZE], user_name[NAME_SIZE];
};

static void copy_value(char *out, size_t size, const PGresult *res, int column)
{
	snprintf(out, size, "%s", PQgetvalue(res, 0, column));
}

static int seed_org(struct seed *seed, struct vr_ctl *ctl)
{
	PGresult *res;
	const char *params[] = {seed->org};
	int err = vr_ctl_db_exec(&res, ctl, sql_org, 1, params);

	if (err == VR_EINVAL)
		vr_ctl_error(
			"invalid org name '%s': use 1 to 128 letters, digits, '.', '_' or '-', "
			"starting with a letter or digit",
			seed->org);
	else if (err == VR_EEXIST)
		vr_ctl_error("cannot create org '%s': a unique constraint refused it", seed->org);
	if (err)
		return err == VR_EEXIST ? VR_EDB : err;
	bool is_system = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	copy_value(seed->org_id, sizeof seed->org_id, res, 0);
	copy_value(seed->org_name, sizeof seed->org_name, res, 1);
	PQclear(res);
	if (is_system) {
		vr_ctl_error("seed-demo: '%s' is the provider's own org; give a tenant org name "
			     "with --org",
			     seed->org);
		return VR_EINVAL;
	}
	return 0;
}

static int seed_vdc(struct seed *seed, struct vr_ctl *ctl)
{
	PGresult *res;
	const char *params[] = {seed->org_id, seed->vdc};
	int err = vr_ctl_db_exec(&res, ctl, sql_vdc, 2, params);

	if (err == VR_EINVAL)
		vr_ctl_error("invalid VDC name '%s': use 1 to 128 characters", seed->vdc);
	else if (err == VR_EEXIST)
		vr_ctl_error("cannot create VDC '%s': a unique constraint refused it", seed->vdc);
	if (err)
		return err == VR_EEXIST ? VR_EDB : err;
	copy_value(seed->vdc_id, sizeof seed->vdc_id, res, 0);
	copy_value(seed->vdc_name, sizeof seed->vdc_name, res, 1);
	PQclear(res);
	return 0;
}

static int hash_password(struct seed *seed)
{
	int err = vr_password_hash(seed->hash, seed->password);

	if (err)
		vr_ctl_error("seed-demo: cannot hash the password (%s)", vr_err_str(err));
	return err;
}

static int seed_user(struct seed *seed, struct vr_ctl *ctl)
{
	PGresult *res;
	const char *find_params[] = {seed->org_id, seed->user};
	int err = vr_ctl_db_exec(&res, ctl, sql_user_find, 2, find_params);

	if (err)
		return err == VR_EEXIST || err == VR_EINVAL ? VR_EDB : err;

	if (PQntuples(res) == 1) {
		char user_id[VR_UUID_LEN + 1];
		copy_value(user_id, sizeof user_id, res, 0);
		copy_value(seed->user_name, sizeof seed->user_name, res, 1);
		PQclear(res);
		const char *params[] = {user_id, seed->password[0] ? seed->hash : NULL};
		err = vr_ctl_db_exec(NULL, ctl, sql_user_update, 2, params);
		return err == VR_EEXIST || err == VR_EINVAL ? VR_EDB : err;
	}
	PQclear(res);

	if (!seed->password[0]) {
		err = vr_ctl_random_password(seed->password, RANDOM_PASSWORD_LEN);
		if (err) {
			vr_ctl_error("seed-demo: cannot draw a random password");
			return err;
		}
		err = hash_password(seed);
		if (err)
			return err;
	}
	const char *params[] = {seed->org_id, seed->user, seed->hash};
	err = vr_ctl_db_exec(&res, ctl, sql_user_add, 3, params);
	if (err == VR_EINVAL)
		vr_ctl_error(
			"invalid user name '%s': use 1 to 128 letters, digits, '.', '_' or '-', "
			"starting with a letter or digit",
			seed->user);
	else if (err == VR_EEXIST)
		vr_ctl_error("user '%s' was created by someone else meanwhile; run seed-demo again",
			     seed->user);
	if (err)
		return err == VR_EEXIST ? VR_ECONFLICT : err;
	copy_value(seed->user_name, sizeof seed->user_name, res, 1);
	PQclear(res);
	return 0;
}

static void print_value(const char *key, const char *value)
{
	char *quoted = vr_ctl_shell_quote(value);

	printf("%s=%s\n", key, quoted);
	free(quoted);
}

static void print_seed(const struct seed *seed)
{
	char login[2 * NAME_SIZE];

	snprintf(login, sizeof login, "%s@%s", seed->user_name, seed->org_name);
	print_value("org", seed->org_name);
	print_value("org_id", seed->org_id);
	print_value("vdc", seed->vdc_name);
	print_value("vdc_id", seed->vdc_id);
	print_value("user", login);
	if (seed->password[0])
		print_value("password", seed->password);
	else
		printf("password=(unchanged)\n"); /* the documented marker, unquoted */
}

static int seed_all(struct seed *seed, struct vr_ctl *ctl)
{
	int err = vr_ctl_db_begin(ctl);

	if (err)
		return err;
	err = seed_org(seed, ctl);
	if (!err)
		err = seed_vdc(seed, ctl);
	if (!err)
		err = seed_user(seed, ctl);
	if (!err)
		err = vr_ctl_db_commit(ctl);
	if (err)
		vr_ctl_db_rollback(ctl);
	return err;
}

int vr_ctl_cmd_seed_demo(struct vr_ctl *ctl, int argc, char **argv)
{
	struct seed *seed;
	const char *org = NULL, *vdc = NULL, *user = NULL, *password_stdin = NULL;
	const struct vr_ctl_opt opts[] = {
		{"org", true, &org},   {"vdc", true, &vdc},
		{"user", true, &user}, {"password-stdin", false, &password_stdin},
		{NULL, false, NULL},
	};
	int rc, err;

	rc = vr_ctl_parse_args(NULL, NULL, "seed-demo", seed_help, 0, 0, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	seed = vr_calloc(1, sizeof *seed);
	seed->org = org ? org : "demo";
	seed->vdc = vdc ? vdc : "demo-vdc";
	seed->user = user ? user : "demo-admin";

	err = vr_ctl_db_open(ctl);
	if (!err && password_stdin) {
		err = vr_ctl_password_stdin(seed->password, "seed-demo");
		if (!err)
			err = hash_password(seed);
	}
	if (!err)
		err = seed_all(seed, ctl);
	if (!err)
		print_seed(seed);
	OPENSSL_cleanse(seed, sizeof *seed);
	free(seed);
	return vr_ctl_exit_status(err);
}
