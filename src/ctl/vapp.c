/* vrcloudctl vapp: the vApps replications place and recover (placeholders,
 * recovered VMs, test images), as the operator sees them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char vapp_help[] = "Usage: vrcloudctl vapp SUBCOMMAND [ARGS...]\n"
				"\n"
				"The vApps of replications: placeholders, recovered VMs and test\n"
				"images.\n";

static const char vapp_list_help[] = "Usage: vrcloudctl vapp list [ORG] [--all]\n"
				     "\n"
				     "List the vApps of every org, or of ORG; removed ones only with\n"
				     "--all.\n"
				     "\n"
				     "Options:\n"
				     "  --all       also the removed vApps\n"
				     "  -h, --help  show this help\n";

static const char vapp_show_help[] = "Usage: vrcloudctl vapp show ID\n"
				     "\n"
				     "Show one vApp with its replication and point-in-time instance,\n"
				     "and where the images of a recovered or test VM's disks are:\n"
				     "disk_KEY_path= and disk_KEY_size= for each disk (KEY: its device\n"
				     "key).\n"
				     "\n"
				     "Options:\n"
				     "  -h, --help  show this help\n";

static const char sql_list[] =
	"SELECT a.id, o.name, v.name, a.name, a.kind, a.power_state,"
	" coalesce(r.name, ''), CASE WHEN a.deleted_at IS NULL THEN 'present' ELSE 'removed' END,"
	" to_char(a.created_at, 'YYYY-MM-DD HH24:MI:SS')"
	" FROM vapps a JOIN orgs o ON o.id = a.org_id JOIN vdcs v ON v.id = a.vdc_id"
	" LEFT JOIN replications r ON r.id = a.replication_id"
	" WHERE ($1::uuid IS NULL OR a.org_id = $1) AND ($2::boolean OR a.deleted_at IS NULL)"
	" ORDER BY lower(o.name), a.created_at, a.id";

static const char sql_show[] =
	"SELECT a.id, a.name, a.kind, a.power_state, o.name, v.name, coalesce(r.id::text, ''),"
	" coalesce(r.name, ''), coalesce(a.instance_id::text, ''),"
	" coalesce(vr_ts(i.transfer_start_time), ''), vr_ts(a.created_at),"
	" coalesce(vr_ts(a.deleted_at), '')"
	" FROM vapps a JOIN orgs o ON o.id = a.org_id JOIN vdcs v ON v.id = a.vdc_id"
	" LEFT JOIN replications r ON r.id = a.replication_id"
	" LEFT JOIN instances i ON i.id = a.instance_id WHERE a.id = $1::uuid";

static const char sql_disks[] = "SELECT device_key, path, size_bytes FROM vapp_disks"
				" WHERE vapp_id = $1::uuid ORDER BY device_key";

/* disk_KEY_path= and disk_KEY_size= lines of the vApp's disk images. */
static int print_disks(struct vr_ctl *ctl, const char *id)
{
	const char *params[] = {id};
	PGresult *res = NULL;
	int err = vr_ctl_db_exec(&res, ctl, sql_disks, 1, params);
	if (err)
		return err;
	for (int i = 0; i < PQntuples(res); i++) {
		char *path = vr_ctl_shell_quote(PQgetvalue(res, i, 1));
		printf("disk_%s_path=%s\ndisk_%s_size=%s\n", PQgetvalue(res, i, 0), path,
		       PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));
		free(path);
	}
	PQclear(res);
	return 0;
}

static int vapp_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID",	"ORG",	       "VDC",	  "NAME",  "KIND",
					      "POWER", "REPLICATION", "STATE", "CREATED"};
	const char *all = NULL;
	const struct vr_ctl_opt opts[] = {{"all", false, &all}, {NULL, false, NULL}};
	const char *pos[1] = {NULL};
	char org_id[VR_UUID_LEN + 1];
	size_t npos;
	int rc = vr_ctl_parse_args(pos, &npos, "vapp list", vapp_list_help, 0, 1, opts, argc,
				   argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	int err = vr_ctl_db_open(ctl);
	if (!err && npos)
		err = vr_ctl_org_find(org_id, NULL, ctl, pos[0]);
	if (err)
		return vr_ctl_exit_status(err);
	const char *params[] = {npos ? org_id : NULL, all ? "true" : "false"};
	PGresult *res = NULL;
	err = vr_ctl_db_exec(&res, ctl, sql_list, 2, params);
	if (err)
		return vr_ctl_exit_status(err);
	vr_ctl_print_result(stdout, res, headers);
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static int vapp_show(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const keys[] = {"id",	  "name",	"kind",
					   "power_state", "org",	"vdc",
					   "replication_id", "replication", "instance_id",
					   "instance_time", "created",	"removed"};
	const char *pos[1];
	char id[VR_UUID_LEN + 1];
	int rc = vr_ctl_parse_args(pos, NULL, "vapp show", vapp_show_help, 1, 1, NULL, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (vr_uuid_canon(id, pos[0]))
		return vr_ctl_usage_error("vapp show", "'%s' is not a vApp id (a UUID)", pos[0]);
	int err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	const char *params[] = {id};
	PGresult *res = NULL;
	err = vr_ctl_db_exec(&res, ctl, sql_show, 1, params);
	if (err)
		return vr_ctl_exit_status(err);
	if (PQntuples(res) == 0) {
		PQclear(res);
		vr_ctl_error("there is no vApp %s; 'vrcloudctl vapp list --all' shows them", id);
		return VR_CTL_EXIT_FAILURE;
	}
	for (int i = 0; i < PQnfields(res) && i < (int)(sizeof keys / sizeof keys[0]); i++) {
		char *value = vr_ctl_shell_quote(PQgetvalue(res, 0, i));
		printf("%s=%s\n", keys[i], value);
		free(value);
	}
	PQclear(res);
	err = print_disks(ctl, id);
	return err ? vr_ctl_exit_status(err) : VR_CTL_EXIT_OK;
}

static const struct vr_ctl_command vapp_commands[] = {
	{"list", "list the vApps of every org or of one", vapp_list},
	{"show", "show one vApp", vapp_show},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_vapp(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "vapp", vapp_help, vapp_commands, argc, argv);
}
