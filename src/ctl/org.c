/* vrcloudctl org: organizations (tenants). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char org_help[] = "Usage: vrcloudctl org SUBCOMMAND [ARGS...]\n"
			       "\n"
			       "Organizations (tenants). Org names are compared without regard to "
			       "case.\n";

static const char org_add_help[] =
	"Usage: vrcloudctl org add NAME [--full-name TEXT] [--description TEXT]\n"
	"\n"
	"Add an organization. NAME is 1 to 128 letters, digits, '.', '_' or '-' and\n"
	"starts with a letter or digit; it must differ from every other org name in\n"
	"more than case.\n"
	"\n"
	"Options:\n"
	"  --full-name TEXT    display name (default: NAME)\n"
	"  --description TEXT  free text\n"
	"  -h, --help          show this help\n";

static const char org_list_help[] = "Usage: vrcloudctl org list\n"
				    "\n"
				    "List the organizations with their number of VDCs and users.\n"
				    "\n"
				    "Options:\n"
				    "  -h, --help  show this help\n";

static const char sql_find[] = "SELECT id, is_system FROM orgs WHERE lower(name) = lower($1)";

static const char sql_add[] = "INSERT INTO orgs (name, full_name, description)"
			      " VALUES ($1, coalesce($2, $1), coalesce($3, '')) RETURNING id";

static const char sql_list[] = "SELECT o.id, o.name, o.full_name,"
			       " CASE WHEN o.is_system THEN 'yes' ELSE 'no' END,"
			       " (SELECT count(*) FROM vdcs v WHERE v.org_id = o.id),"
			       " (SELECT count(*) FROM users u WHERE u.org_id = o.id)"
			       " FROM orgs o ORDER BY o.is_system DESC, lower(o.name)";

int vr_ctl_org_find(char id_out[VR_UUID_LEN + 1], bool *is_system_out, struct vr_ctl *ctl,
		    const char *name)
{
	PGresult *res;
	const char *params[] = {name};
	int err = vr_ctl_db_exec(&res, ctl, sql_find, 1, params);

	if (err)
		return err;
	if (PQntuples(res) == 0) {
		vr_ctl_error("there is no org '%s'; 'vrcloudctl org list' shows the orgs", name);
		PQclear(res);
		return VR_ENOTFOUND;
	}
	snprintf(id_out, VR_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
	if (is_system_out)
		*is_system_out = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return 0;
}

static int org_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[1], *full_name = NULL, *description = NULL;
	const struct vr_ctl_opt opts[] = {
		{"full-name", true, &full_name},
		{"description", true, &description},
		{NULL, false, NULL},
	};
	PGresult *res;
	int rc, err;

	rc = vr_ctl_parse_args(pos, NULL, "org add", org_add_help, 1, 1, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);

	const char *params[] = {pos[0], full_name, description};
	err = vr_ctl_db_exec(&res, ctl, sql_add, 3, params);
	if (err == VR_EEXIST)
		vr_ctl_error("org '%s' already exists (names are compared without regard to case)",
			     pos[0]);
	else if (err == VR_EINVAL)
		vr_ctl_error(
			"invalid org name '%s': use 1 to 128 letters, digits, '.', '_' or '-', "
			"starting with a letter or digit",
			pos[0]);
	if (err)
		return vr_ctl_exit_status(err);
	printf("added org '%s' (id %s)\n", pos[0], PQgetvalue(res, 0, 0));
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static int org_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID", "NAME", "FULL NAME", "SYSTEM", "VDCS", "USERS"};
	PGresult *res;
	int rc, err;

	rc = vr_ctl_parse_args(NULL, NULL, "org list", org_list_help, 0, 0, NULL, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_db_exec(&res, ctl, sql_list, 0, NULL);
	if (err)
		return vr_ctl_exit_status(err);
	vr_ctl_print_result(stdout, res, headers);
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static const struct vr_ctl_command org_commands[] = {
	{"add", "add an organization", org_add},
	{"list", "list the organizations", org_list},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_org(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "org", org_help, org_commands, argc, argv);
}

int vr_ctl_list_by_org(struct vr_ctl *ctl, const char *command, const char *help,
		       const char *sql, const char *const *headers, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	char org_id[VR_UUID_LEN + 1];
	PGresult *res;
	size_t npos;
	int rc, err;

	rc = vr_ctl_parse_args(pos, &npos, command, help, 0, 1, NULL, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	err = vr_ctl_db_open(ctl);
	if (!err && npos)
		err = vr_ctl_org_find(org_id, NULL, ctl, pos[0]);
	if (err)
		return vr_ctl_exit_status(err);

	const char *params[] = {npos ? org_id : NULL};
	err = vr_ctl_db_exec(&res, ctl, sql, 1, params);
	if (err)
		return vr_ctl_exit_status(err);
	vr_ctl_print_result(stdout, res, headers);
	PQclear(res);
	return VR_CTL_EXIT_OK;
}
