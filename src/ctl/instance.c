/* vrcloudctl instance: the point-in-time instances of a replication, and
 * the operator's pin that keeps one through retention (docs/instances.md,
 * "Retention"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char instance_help[] =
	"Usage: vrcloudctl instance SUBCOMMAND [ARGS...]\n"
	"\n"
	"The point-in-time instances of a replication. Retention keeps the newest\n"
	"instance, the pinned ones and those a queued or running recovery job\n"
	"names; the rules decide about the others.\n";

static const char instance_list_help[] =
	"Usage: vrcloudctl instance list REPLICATION_ID\n"
	"\n"
	"List the instances of a replication, newest first: id, sequence number,\n"
	"point in time, bytes transferred, whether it is pinned, and the queued or\n"
	"running jobs that name it (which keep it too).\n"
	"\n"
	"Options:\n"
	"  -h, --help  show this help\n";

static const char instance_pin_help[] =
	"Usage: vrcloudctl instance pin REPLICATION_ID INSTANCE_ID\n"
	"\n"
	"Pin an instance of a replication: retention keeps it until it is unpinned.\n"
	"\n"
	"Options:\n"
	"  -h, --help  show this help\n";

static const char instance_unpin_help[] =
	"Usage: vrcloudctl instance unpin REPLICATION_ID INSTANCE_ID\n"
	"\n"
	"Unpin an instance of a replication: from the replication's next instance\n"
	"on, retention keeps it only if its rules (or a job naming it) do.\n"
	"\n"
	"Options:\n"
	"  -h, --help  show this help\n";

/* The jobs that hold an instance: the replication's queued or running
 * jobs naming it as their InstanceId, as retention counts them
 * (instance_list in src/db/instances.c). */
static const char sql_list[] =
	"SELECT i.id, i.seq, vr_ts(i.transfer_start_time), i.transfer_bytes,"
	" CASE WHEN i.pinned THEN 'yes' ELSE 'no' END,"
	" coalesce((SELECT string_agg(j.action || ' ' || j.state, ', ' ORDER BY j.seq)"
	"   FROM jobs j WHERE j.lane = 'replication:' || i.replication_id"
	"   AND j.state IN ('queued', 'running') AND j.params->>'InstanceId' = i.id::text), '')"
	" FROM instances i WHERE i.replication_id = $1::uuid ORDER BY i.seq DESC";

/* The replication's row lock: the record of an instance (which applies
 * retention) takes it too, so a pin is never lost to a pruning that
 * listed the instances before it. */
static const char sql_replication[] = "SELECT name FROM replications WHERE id = $1::uuid"
				      " FOR SHARE";

static const char sql_set_pinned[] =
	"UPDATE instances SET pinned = $3::boolean WHERE replication_id = $1::uuid"
	" AND id = $2::uuid RETURNING seq";

/* Check that replication id exists, locking it; its name into *name_out
 * (if not NULL; the caller frees). Returns 0, VR_ENOTFOUND (reported) or
 * a database error. */
static int find_replication(struct vr_ctl *ctl, const char *id, char **name_out)
{
	const char *params[] = {id};
	PGresult *res = NULL;
	int err = vr_ctl_db_exec(&res, ctl, sql_replication, 1, params);
	if (err)
		return err;
	if (PQntuples(res) == 0) {
		PQclear(res);
		vr_ctl_error("there is no replication %s; 'vrcloudctl replication list' shows them",
			     id);
		return VR_ENOTFOUND;
	}
	if (name_out)
		*name_out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (name_out && !*name_out) {
		vr_ctl_error("out of memory");
		return VR_ENOMEM;
	}
	return 0;
}

static int instance_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID",    "SEQ",	 "POINT IN TIME",
					      "BYTES", "PINNED", "HELD BY JOB"};
	const char *pos[1];
	char id[VR_UUID_LEN + 1];
	int rc = vr_ctl_parse_args(pos, NULL, "instance list", instance_list_help, 1, 1, NULL, argc,
				   argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (vr_uuid_canon(id, pos[0]))
		return vr_ctl_usage_error("instance list", "'%s' is not a replication id (a UUID)",
					  pos[0]);
	int err = vr_ctl_db_open(ctl);
	if (!err)
		err = find_replication(ctl, id, NULL);
	if (err)
		return vr_ctl_exit_status(err);
	const char *params[] = {id};
	PGresult *res = NULL;
	err = vr_ctl_db_exec(&res, ctl, sql_list, 1, params);
	if (err)
		return vr_ctl_exit_status(err);
	vr_ctl_print_result(stdout, res, headers);
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static int set_pinned(struct vr_ctl *ctl, int argc, char **argv, bool pin)
{
	const char *command = pin ? "instance pin" : "instance unpin";
	const char *pos[2];
	char replication[VR_UUID_LEN + 1], instance[VR_UUID_LEN + 1];
	int rc = vr_ctl_parse_args(pos, NULL, command,
				   pin ? instance_pin_help : instance_unpin_help, 2, 2, NULL, argc,
				   argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (vr_uuid_canon(replication, pos[0]))
		return vr_ctl_usage_error(command, "'%s' is not a replication id (a UUID)", pos[0]);
	if (vr_uuid_canon(instance, pos[1]))
		return vr_ctl_usage_error(command, "'%s' is not an instance id (a UUID)", pos[1]);
	int err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_db_begin(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	char *name = NULL;
	PGresult *res = NULL;
	err = find_replication(ctl, replication, &name);
	if (err)
		goto fail;
	const char *params[] = {replication, instance, pin ? "true" : "false"};
	err = vr_ctl_db_exec(&res, ctl, sql_set_pinned, 3, params);
	if (err)
		goto fail;
	if (PQntuples(res) == 0) {
		vr_ctl_error("replication %s has no instance %s; 'vrcloudctl instance list %s' "
			     "shows them",
			     replication, instance, replication);
		err = VR_ENOTFOUND;
		goto fail;
	}
	err = vr_ctl_db_commit(ctl);
	if (err)
		goto fail;
	printf("%s instance %s (sequence %s) of replication %s (%s)\n", pin ? "pinned" : "unpinned",
	       instance, PQgetvalue(res, 0, 0), replication, name);
	PQclear(res);
	free(name);
	return VR_CTL_EXIT_OK;
fail:
	vr_ctl_db_rollback(ctl);
	PQclear(res);
	free(name);
	return vr_ctl_exit_status(err);
}

static int instance_pin(struct vr_ctl *ctl, int argc, char **argv)
{
	return set_pinned(ctl, argc, argv, true);
}

static int instance_unpin(struct vr_ctl *ctl, int argc, char **argv)
{
	return set_pinned(ctl, argc, argv, false);
}

static const struct vr_ctl_command instance_commands[] = {
	{"list", "list the instances of a replication", instance_list},
	{"pin", "keep an instance through retention", instance_pin},
	{"unpin", "leave an instance to the retention rules again", instance_unpin},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_instance(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "instance", instance_help, instance_commands, argc, argv);
}
