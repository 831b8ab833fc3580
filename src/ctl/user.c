/* vrcloudctl user and sysadmin: accounts, roles and passwords. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char user_help[] =
	"Usage: vrcloudctl user SUBCOMMAND [ARGS...]\n"
	"\n"
	"User accounts. A user belongs to one org and has one role: sysadmin (only\n"
	"in org System: the provider's administrators), org-admin or org-user (only\n"
	"in tenant orgs). Org and user names are compared without regard to case.\n"
	"Passwords are read from standard input, never from the command line.\n";

static const char user_add_help[] =
	"Usage: vrcloudctl user add ORG NAME --role sysadmin|org-admin|org-user --password-stdin\n"
	"\n"
	"Add user NAME to org ORG. NAME is 1 to 128 letters, digits, '.', '_' or '-'\n"
	"and starts with a letter or digit. The password is the first line of\n"
	"standard input (without its newline), for example:\n"
	"  printf '%s\\n' \"$PASSWORD\" | vrcloudctl user add acme alice --role org-admin \\\n"
	"      --password-stdin\n"
	"\n"
	"Options:\n"
	"  --role ROLE       sysadmin (org System only), org-admin or org-user\n"
	"  --password-stdin  read the password from standard input (required)\n"
	"  -h, --help        show this help\n";

static const char user_passwd_help[] =
	"Usage: vrcloudctl user passwd ORG NAME --password-stdin\n"
	"\n"
	"Set a new password for user NAME of org ORG, read from the first line of\n"
	"standard input, and end all of that user's sessions.\n"
	"\n"
	"Options:\n"
	"  --password-stdin  read the password from standard input (required)\n"
	"  -h, --help        show this help\n";

static const char user_list_help[] = "Usage: vrcloudctl user list [ORG]\n"
				     "\n"
				     "List the users of every org, or of ORG.\n"
				     "\n"
				     "Options:\n"
				     "  -h, --help  show this help\n";

static const char user_disable_help[] =
	"Usage: vrcloudctl user disable ORG NAME\n"
	"\n"
	"Disable user NAME of org ORG: logins are refused and the user's sessions end.\n"
	"\n"
	"Options:\n"
	"  -h, --help  show this help\n";

static const char user_enable_help[] = "Usage: vrcloudctl user enable ORG NAME\n"
				       "\n"
				       "Enable user NAME of org ORG again.\n"
				       "\n"
				       "Options:\n"
				       "  -h, --help  show this help\n";

static const char sysadmin_help[] = "Usage: vrcloudctl sysadmin SUBCOMMAND [ARGS...]\n"
				    "\n"
				    "The provider's administrators: users of org System with "
				    "role sysadmin.\n";

static const char sysadmin_add_help[] =
	"Usage: vrcloudctl sysadmin add NAME --password-stdin\n"
	"\n"
	"Add sysadmin NAME to org System; the same as\n"
	"  vrcloudctl user add System NAME --role sysadmin --password-stdin\n"
	"\n"
	"Options:\n"
	"  --password-stdin  read the password from standard input (required)\n"
	"  -h, --help        show this help\n";

static const char sql_add[] = "INSERT INTO users (org_id, name, role, password_hash)"
			      " VALUES ($1, $2, $3, $4) RETURNING id";

/* One statement, so the new hash and the end of the sessions commit
 * together. */
static const char sql_passwd[] =
	"WITH u AS (UPDATE users SET password_hash = $3, updated_at = now()"
	"  WHERE org_id = $1 AND lower(name) = lower($2) RETURNING id),"
	" s AS (DELETE FROM sessions USING u WHERE sessions.user_id = u.id RETURNING 1)"
	" SELECT (SELECT id FROM u), (SELECT count(*) FROM s)";

/* Disabling ends the sessions too ($3 false). */
static const char sql_set_enabled[] =
	"WITH u AS (UPDATE users SET enabled = $3::boolean, updated_at = now()"
	"  WHERE org_id = $1 AND lower(name) = lower($2) RETURNING id),"
	" s AS (DELETE FROM sessions USING u"
	"  WHERE sessions.user_id = u.id AND NOT $3::boolean RETURNING 1)"
	" SELECT (SELECT id FROM u), (SELECT count(*) FROM s)";

static const char sql_list[] =
	"SELECT u.id, o.name, u.name, u.role, CASE WHEN u.enabled THEN 'yes' ELSE 'no' END,"
	" to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	" FROM users u JOIN orgs o ON o.id = u.org_id"
	" WHERE $1::uuid IS NULL OR u.org_id = $1"
	" ORDER BY o.is_system DESC, lower(o.name), lower(u.name)";

bool vr_ctl_role_valid(const char *role)
{
	return strcmp(role, "sysadmin") == 0 || strcmp(role, "org-admin") == 0 ||
	       strcmp(role, "org-user") == 0;
}

/* Read and hash the password; reports problems. */
static int hashed_password(char hash[VR_PASSWORD_HASH_MAX], const char *command)
{
	char password[VR_PASSWORD_MAX + 1];
	int err = vr_ctl_password_stdin(password, command);

	if (err)
		return err;
	err = vr_password_hash(hash, password);
	OPENSSL_cleanse(password, sizeof password);
	if (err)
		vr_ctl_error("%s: cannot hash the password (%s)", command, vr_err_str(err));
	return err;
}

static int add_user(struct vr_ctl *ctl, const char *command, const char *org, const char *name,
		    const char *role)
{
	char org_id[VR_UUID_LEN + 1], hash[VR_PASSWORD_HASH_MAX];
	bool is_system;
	PGresult *res;
	int err;

	err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_org_find(org_id, &is_system, ctl, org);
	if (err)
		return vr_ctl_exit_status(err);
	if (strcmp(role, "sysadmin") == 0 && !is_system) {
		vr_ctl_error(
			"%s: role sysadmin exists only in org System; use 'vrcloudctl sysadmin "
			"add NAME', or give the user role org-admin or org-user",
			command);
		return VR_CTL_EXIT_FAILURE;
	}
	if (strcmp(role, "sysadmin") != 0 && is_system) {
		vr_ctl_error("%s: org System holds only sysadmins; use --role sysadmin, or add the "
			     "user to a tenant org",
			     command);
		return VR_CTL_EXIT_FAILURE;
	}
	err = hashed_password(hash, command);
	if (err)
		return vr_ctl_exit_status(err);

	const char *params[] = {org_id, name, role, hash};
	err = vr_ctl_db_exec(&res, ctl, sql_add, 4, params);
	if (err == VR_EEXIST)
		vr_ctl_error("org '%s' already has a user '%s' (names are compared without regard "
			     "to case)",
			     org, name);
	else if (err == VR_EINVAL)
		vr_ctl_error(
			"invalid user name '%s': use 1 to 128 letters, digits, '.', '_' or '-', "
			"starting with a letter or digit",
			name);
	if (err)
		return vr_ctl_exit_status(err);
	printf("added user '%s' to org '%s' as %s (id %s)\n", name, org, role,
	       PQgetvalue(res, 0, 0));
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static int user_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[2], *role = NULL, *password_stdin = NULL;
	const struct vr_ctl_opt opts[] = {
		{"role", true, &role},
		{"password-stdin", false, &password_stdin},
		{NULL, false, NULL},
	};
	int rc = vr_ctl_parse_args(pos, NULL, "user add", user_add_help, 2, 2, opts, argc, argv);

	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!role)
		return vr_ctl_usage_error("user add",
					  "--role is required: sysadmin, org-admin or org-user");
	if (!vr_ctl_role_valid(role))
		return vr_ctl_usage_error(
			"user add", "unknown role '%s': use sysadmin, org-admin or org-user", role);
	if (!password_stdin)
		return vr_ctl_usage_error("user add", "--password-stdin is required: the password "
						      "is read from standard input");
	return add_user(ctl, "user add", pos[0], pos[1], role);
}

/* Run sql_passwd or sql_set_enabled for ORG NAME and report. */
static int change_user(struct vr_ctl *ctl, const char *sql, const char *org, const char *name,
		       const char *third, const char *done)
{
	char org_id[VR_UUID_LEN + 1];
	PGresult *res;
	int err;

	err = vr_ctl_org_find(org_id, NULL, ctl, org);
	if (err)
		return vr_ctl_exit_status(err);
	const char *params[] = {org_id, name, third};
	err = vr_ctl_db_exec(&res, ctl, sql, 3, params);
	if (err == VR_EEXIST || err == VR_EINVAL) {
		vr_ctl_error("the database refused the change to user '%s'", name);
		err = VR_EDB;
	}
	if (err)
		return vr_ctl_exit_status(err);
	if (PQgetisnull(res, 0, 0)) {
		vr_ctl_error("org '%s' has no user '%s'; 'vrcloudctl user list %s' shows its users",
			     org, name, org);
		PQclear(res);
		return VR_CTL_EXIT_FAILURE;
	}
	printf("%s user '%s' of org '%s'; ended %s session(s)\n", done, name, org,
	       PQgetvalue(res, 0, 1));
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static int user_passwd(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[2], *password_stdin = NULL;
	const struct vr_ctl_opt opts[] = {
		{"password-stdin", false, &password_stdin},
		{NULL, false, NULL},
	};
	char hash[VR_PASSWORD_HASH_MAX];
	int rc, err;

	rc = vr_ctl_parse_args(pos, NULL, "user passwd", user_passwd_help, 2, 2, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!password_stdin)
		return vr_ctl_usage_error("user passwd", "--password-stdin is required: the "
							 "password is read from standard input");
	err = vr_ctl_db_open(ctl);
	if (!err)
		err = hashed_password(hash, "user passwd");
	if (err)
		return vr_ctl_exit_status(err);
	return change_user(ctl, sql_passwd, pos[0], pos[1], hash, "changed the password of");
}

static int set_enabled(struct vr_ctl *ctl, int argc, char **argv, bool enable)
{
	const char *command = enable ? "user enable" : "user disable";
	const char *pos[2];
	int rc, err;

	rc = vr_ctl_parse_args(pos, NULL, command, enable ? user_enable_help : user_disable_help, 2,
			       2, NULL, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	return change_user(ctl, sql_set_enabled, pos[0], pos[1], enable ? "true" : "false",
			   enable ? "enabled" : "disabled");
}

static int user_enable(struct vr_ctl *ctl, int argc, char **argv)
{
	return set_enabled(ctl, argc, argv, true);
}

static int user_disable(struct vr_ctl *ctl, int argc, char **argv)
{
	return set_enabled(ctl, argc, argv, false);
}

static int user_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID", "ORG", "NAME", "ROLE", "ENABLED", "CREATED"};
	return vr_ctl_list_by_org(ctl, "user list", user_list_help, sql_list, headers, argc, argv);
}

static const struct vr_ctl_command user_commands[] = {
	{"add", "add a user to an org", user_add},
	{"passwd", "set a user's password and end the user's sessions", user_passwd},
	{"list", "list the users of every org or of one", user_list},
	{"disable", "refuse a user's logins and end the user's sessions", user_disable},
	{"enable", "allow a disabled user to log in again", user_enable},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_user(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "user", user_help, user_commands, argc, argv);
}

static int sysadmin_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[1], *password_stdin = NULL;
	const struct vr_ctl_opt opts[] = {
		{"password-stdin", false, &password_stdin},
		{NULL, false, NULL},
	};
	int rc = vr_ctl_parse_args(pos, NULL, "sysadmin add", sysadmin_add_help, 1, 1, opts, argc,
				   argv);

	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!password_stdin)
		return vr_ctl_usage_error("sysadmin add", "--password-stdin is required: the "
							  "password is read from standard input");
	return add_user(ctl, "sysadmin add", "System", pos[0], "sysadmin");
}

static const struct vr_ctl_command sysadmin_commands[] = {
	{"add", "add a sysadmin to org System", sysadmin_add},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_sysadmin(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "sysadmin", sysadmin_help, sysadmin_commands, argc, argv);
}
