/* vrcloudctl vdc: virtual data centers and their recovery switches. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char vdc_help[] = "Usage: vrcloudctl vdc SUBCOMMAND [ARGS...]\n"
			       "\n"
			       "Virtual data centers of an org, where its replicas and recovered\n"
			       "VMs live, with the switches that allow each kind of recovery.\n";

#define VDC_SWITCHES_HELP                                                                          \
	"  --description TEXT          free text\n"                                                \
	"  --replication on|off        accept new replications into this VDC\n"                    \
	"  --failover on|off           allow failover\n"                                           \
	"  --test-failover on|off      allow test failover\n"                                      \
	"  --planned-migration on|off  allow planned migration\n"                                  \
	"  -h, --help                  show this help\n"

static const char vdc_add_help[] =
	"Usage: vrcloudctl vdc add ORG NAME [--description TEXT] [--failover on|off]\n"
	"         [--test-failover on|off] [--planned-migration on|off] [--replication on|off]\n"
	"\n"
	"Add a VDC to org ORG. NAME is 1 to 128 characters and must differ from the\n"
	"org's other VDC names in more than case. Every switch is on unless turned off.\n"
	"\n"
	"Options:\n" VDC_SWITCHES_HELP;

static const char vdc_set_help[] =
	"Usage: vrcloudctl vdc set ORG NAME [--description TEXT] [--failover on|off]\n"
	"         [--test-failover on|off] [--planned-migration on|off] [--replication on|off]\n"
	"\n"
	"Change the description or switches of an existing VDC; what is not given\n"
	"stays as it is.\n"
	"\n"
	"Options:\n" VDC_SWITCHES_HELP;

static const char vdc_list_help[] = "Usage: vrcloudctl vdc list [ORG]\n"
				    "\n"
				    "List the VDCs of every org, or of ORG.\n"
				    "\n"
				    "Options:\n"
				    "  -h, --help  show this help\n";

static const char sql_add[] =
	"INSERT INTO vdcs (org_id, name, description, replication_enabled, failover_enabled,"
	" test_failover_enabled, planned_migration_enabled)"
	" VALUES ($1, $2, coalesce($3, ''), coalesce($4::boolean, true),"
	" coalesce($5::boolean, true), coalesce($6::boolean, true), coalesce($7::boolean, true))"
	" RETURNING id";

static const char sql_set[] =
	"UPDATE vdcs SET description = coalesce($3, description),"
	" replication_enabled = coalesce($4::boolean, replication_enabled),"
	" failover_enabled = coalesce($5::boolean, failover_enabled),"
	" test_failover_enabled = coalesce($6::boolean, test_failover_enabled),"
	" planned_migration_enabled = coalesce($7::boolean, planned_migration_enabled)"
	" WHERE org_id = $1 AND lower(name) = lower($2) RETURNING id";

static const char sql_list[] = "SELECT v.id, o.name, v.name,"
			       " CASE WHEN v.replication_enabled THEN 'on' ELSE 'off' END,"
			       " CASE WHEN v.failover_enabled THEN 'on' ELSE 'off' END,"
			       " CASE WHEN v.test_failover_enabled THEN 'on' ELSE 'off' END,"
			       " CASE WHEN v.planned_migration_enabled THEN 'on' ELSE 'off' END,"
			       " v.description"
			       " FROM vdcs v JOIN orgs o ON o.id = v.org_id"
			       " WHERE $1::uuid IS NULL OR v.org_id = $1"
			       " ORDER BY o.is_system DESC, lower(o.name), lower(v.name)";

enum { SW_REPLICATION, SW_FAILOVER, SW_TEST_FAILOVER, SW_PLANNED_MIGRATION, SW_COUNT };

/* The options shared by add and set, as SQL parameters $3..$7. */
struct vdc_settings {
	const char *description;
	const char *switch_text[SW_COUNT];  /* as given: on/off */
	const char *switch_param[SW_COUNT]; /* "true", "false" or NULL */
};

static int parse_settings(struct vdc_settings *settings, const char **pos, const char *command,
			  const char *help, int argc, char **argv)
{
	static const char *const names[SW_COUNT] = {"replication", "failover", "test-failover",
						    "planned-migration"};
	const struct vr_ctl_opt opts[] = {
		{"description", true, &settings->description},
		{names[0], true, &settings->switch_text[0]},
		{names[1], true, &settings->switch_text[1]},
		{names[2], true, &settings->switch_text[2]},
		{names[3], true, &settings->switch_text[3]},
		{NULL, false, NULL},
	};
	int rc = vr_ctl_parse_args(pos, NULL, command, help, 2, 2, opts, argc, argv);

	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	for (int i = 0; i < SW_COUNT; i++) {
		bool on;
		if (!settings->switch_text[i])
			continue;
		if (vr_ctl_parse_switch(&on, settings->switch_text[i]))
			return vr_ctl_usage_error(command, "--%s takes on or off, not '%s'",
						  names[i], settings->switch_text[i]);
		settings->switch_param[i] = on ? "true" : "false";
	}
	return VR_CTL_EXIT_CONTINUE;
}

static int vdc_write(struct vr_ctl *ctl, int argc, char **argv, bool adding)
{
	const char *command = adding ? "vdc add" : "vdc set";
	struct vdc_settings settings = {0};
	const char *pos[2];
	char org_id[VR_UUID_LEN + 1];
	PGresult *res = NULL;
	int rc, err;

	rc = parse_settings(&settings, pos, command, adding ? vdc_add_help : vdc_set_help, argc,
			    argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!adding && !settings.description && !settings.switch_text[SW_REPLICATION] &&
	    !settings.switch_text[SW_FAILOVER] && !settings.switch_text[SW_TEST_FAILOVER] &&
	    !settings.switch_text[SW_PLANNED_MIGRATION])
		return vr_ctl_usage_error(command, "nothing to change: give --description or a "
						   "switch such as --failover off");
	err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_org_find(org_id, NULL, ctl, pos[0]);
	if (err)
		return vr_ctl_exit_status(err);

	const char *params[] = {
		org_id,
		pos[1],
		settings.description,
		settings.switch_param[SW_REPLICATION],
		settings.switch_param[SW_FAILOVER],
		settings.switch_param[SW_TEST_FAILOVER],
		settings.switch_param[SW_PLANNED_MIGRATION],
	};
	err = vr_ctl_db_exec(&res, ctl, adding ? sql_add : sql_set, 7, params);
	if (err == VR_EEXIST)
		vr_ctl_error("org '%s' already has a VDC named '%s' (names are compared without "
			     "regard to case)",
			     pos[0], pos[1]);
	else if (err == VR_EINVAL)
		vr_ctl_error("invalid VDC name '%s': use 1 to 128 characters", pos[1]);
	if (err)
		return vr_ctl_exit_status(err);

	if (PQntuples(res) == 0) {
		vr_ctl_error("org '%s' has no VDC '%s'; 'vrcloudctl vdc list %s' shows its VDCs",
			     pos[0], pos[1], pos[0]);
		rc = VR_CTL_EXIT_FAILURE;
	} else {
		printf("%s VDC '%s' of org '%s' (id %s)\n", adding ? "added" : "changed", pos[1],
		       pos[0], PQgetvalue(res, 0, 0));
		rc = VR_CTL_EXIT_OK;
	}
	PQclear(res);
	return rc;
}

static int vdc_add(struct vr_ctl *ctl, int argc, char **argv)
{
	return vdc_write(ctl, argc, argv, true);
}

static int vdc_set(struct vr_ctl *ctl, int argc, char **argv)
{
	return vdc_write(ctl, argc, argv, false);
}

static int vdc_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID",
					      "ORG",
					      "NAME",
					      "REPLICATION",
					      "FAILOVER",
					      "TEST-FAILOVER",
					      "PLANNED-MIGRATION",
					      "DESCRIPTION"};
	return vr_ctl_list_by_org(ctl, "vdc list", vdc_list_help, sql_list, headers, argc, argv);
}

static const struct vr_ctl_command vdc_commands[] = {
	{"add", "add a VDC to an org", vdc_add},
	{"set", "change the description or switches of a VDC", vdc_set},
	{"list", "list the VDCs of every org or of one", vdc_list},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_vdc(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "vdc", vdc_help, vdc_commands, argc, argv);
}
