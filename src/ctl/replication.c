/* vrcloudctl replication: replications as the operator sees them, and the
 * operator's way to configure one for a tenant's VM. Configuring records
 * the replication, its disks and a completed Task, as the API would. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

static const char replication_help[] =
	"Usage: vrcloudctl replication SUBCOMMAND [ARGS...]\n"
	"\n"
	"Replications of VMs from paired sites into the VDCs of an org.\n";

static const char replication_add_help[] =
	"Usage: vrcloudctl replication add ORG VDC NAME --peer PEER_ID --disks SIZE[,SIZE...]\n"
	"         [--rpo MINUTES] [--quiesce on|off] [--compress on|off] [--description TEXT]\n"
	"\n"
	"Configure the replication of VM NAME from the site PEER_ID (see 'vrcloudctl peer\n"
	"list') into VDC of org ORG. It starts with no point-in-time instance: the\n"
	"first one arrives with the initial full sync. Prints the replication's id and\n"
	"the id of the Task that records the change.\n"
	"\n"
	"Options:\n"
	"  --peer PEER_ID       the paired site the VM runs at\n"
	"  --disks SIZES        the VM's disk sizes in bytes, with an optional K, M, G or T\n"
	"                       suffix (powers of 1024), separated by commas\n"
	"  --rpo MINUTES        recovery point objective, 1 to 1440 (default 240)\n"
	"  --quiesce on|off     quiesce the guest before each instance (default off)\n"
	"  --compress on|off    compress replication traffic (default off)\n"
	"  --description TEXT   free text\n"
	"  -h, --help           show this help\n";

static const char replication_list_help[] = "Usage: vrcloudctl replication list [ORG]\n"
					    "\n"
					    "List the replications of every org, or of ORG.\n"
					    "\n"
					    "Options:\n"
					    "  -h, --help  show this help\n";

#define MAX_DISKS 64

static const char sql_add[] =
	"INSERT INTO replications (org_id, vdc_id, peer_id, name, description, rpo_minutes,"
	" quiesce_guest, network_compression)"
	" SELECT v.org_id, v.id, p.id, $4, coalesce($5, ''), $6::int, $7::boolean, $8::boolean"
	" FROM vdcs v JOIN peers p ON p.vdc_id = v.id AND p.revoked_at IS NULL"
	" AND p.state = 'paired'"
	" WHERE v.org_id = $1 AND lower(v.name) = lower($2) AND p.id = $3::uuid"
	" RETURNING id";

static const char sql_disk[] = "INSERT INTO disks (replication_id, device_key, name, size_bytes)"
			       " VALUES ($1, $2::int, $3, $4::bigint)";

static const char sql_task[] =
	"INSERT INTO tasks (org_id, owner_kind, owner_id, owner_name, operation, operation_name,"
	" status, progress, end_time, details)"
	" VALUES ($1, 'replication', $2, $3, 'Configure replication of ' || $3,"
	" 'hcsConfigureReplication', 'success', 100, now(), 'configured with vrcloudctl')"
	" RETURNING id";

static const char sql_list[] =
	"SELECT r.id, o.name, v.name, r.name, r.kind, r.rpo_minutes, r.replication_state,"
	" r.recovery_state, r.test_recovery_state,"
	" (SELECT count(*) FROM instances i WHERE i.replication_id = r.id)"
	" FROM replications r JOIN vdcs v ON v.id = r.vdc_id JOIN orgs o ON o.id = r.org_id"
	" WHERE $1::uuid IS NULL OR r.org_id = $1"
	" ORDER BY lower(o.name), lower(v.name), r.created_at, r.id";

/* "10G" -> 10737418240. Returns 0 or VR_EINVAL. */
static int parse_size(uint64_t *out, const char *text, size_t len)
{
	char buf[32];
	if (len == 0 || len >= sizeof buf)
		return VR_EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	if (buf[0] < '0' || buf[0] > '9')
		return VR_EINVAL;
	uint64_t v = strtoull(buf, &end, 10);
	if (errno)
		return VR_EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: return VR_EINVAL;
	}
	if (*end || v == 0 || v > (UINT64_C(64) << 40) >> shift || (v << shift) % 4096)
		return VR_EINVAL;
	*out = v << shift;
	return 0;
}

static int replication_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *peer = NULL, *disks = NULL, *rpo = NULL, *quiesce = NULL, *compress = NULL;
	const char *description = NULL;
	const struct vr_ctl_opt opts[] = {
		{"peer", true, &peer},         {"disks", true, &disks},
		{"rpo", true, &rpo},           {"quiesce", true, &quiesce},
		{"compress", true, &compress}, {"description", true, &description},
		{NULL, false, NULL},
	};
	const char *cmd = "replication add";
	const char *pos[3];
	int rc = vr_ctl_parse_args(pos, NULL, cmd, replication_add_help, 3, 3, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	char peer_id[VR_UUID_LEN + 1];
	if (!peer || vr_uuid_canon(peer_id, peer))
		return vr_ctl_usage_error(cmd, "--peer needs the peer's id (a UUID)");
	if (strlen(pos[2]) == 0 || strlen(pos[2]) > 255)
		return vr_ctl_usage_error(cmd, "the VM name must have 1 to 255 characters");
	long rpo_minutes = 240;
	if (rpo) {
		char *end;
		errno = 0;
		rpo_minutes = strtol(rpo, &end, 10);
		if (errno || *end || end == rpo || rpo_minutes < 1 || rpo_minutes > 1440)
			return vr_ctl_usage_error(cmd, "--rpo takes minutes from 1 to 1440, not '%s'",
						  rpo);
	}
	bool quiesce_on = false, compress_on = false;
	if (quiesce && vr_ctl_parse_switch(&quiesce_on, quiesce))
		return vr_ctl_usage_error(cmd, "--quiesce takes on or off, not '%s'", quiesce);
	if (compress && vr_ctl_parse_switch(&compress_on, compress))
		return vr_ctl_usage_error(cmd, "--compress takes on or off, not '%s'", compress);
	uint64_t sizes[MAX_DISKS];
	size_t ndisks = 0;
	if (!disks)
		return vr_ctl_usage_error(cmd, "--disks is required (for example --disks 10G,2G)");
	for (const char *p = disks; *p;) {
		size_t len = strcspn(p, ",");
		if (ndisks == MAX_DISKS || parse_size(&sizes[ndisks], p, len))
			return vr_ctl_usage_error(cmd, "--disks takes up to %d sizes (multiples of 4096) such as 10G "
						       "or 4096, separated by commas",
						  MAX_DISKS);
		ndisks++;
		p += len;
		if (*p == ',')
			p++;
	}

	char org_id[VR_UUID_LEN + 1];
	int err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_org_find(org_id, NULL, ctl, pos[0]);
	if (!err)
		err = vr_ctl_db_begin(ctl);
	if (err)
		return vr_ctl_exit_status(err);

	char rpo_text[16];
	snprintf(rpo_text, sizeof rpo_text, "%ld", rpo_minutes);
	const char *params[] = {org_id,      pos[1],   peer_id,
				pos[2],      description, rpo_text,
				quiesce_on ? "true" : "false", compress_on ? "true" : "false"};
	PGresult *res = NULL, *task = NULL;
	err = vr_ctl_db_exec(&res, ctl, sql_add, 8, params);
	if (err)
		goto fail;
	if (PQntuples(res) == 0) {
		vr_ctl_error("org '%s' has no VDC '%s' paired with peer %s (or its pairing is not "
			     "done); 'vrcloudctl peer list %s' shows its peers",
			     pos[0], pos[1], peer_id, pos[0]);
		err = VR_ENOTFOUND;
		goto fail;
	}
	const char *id = PQgetvalue(res, 0, 0);
	for (size_t i = 0; i < ndisks; i++) {
		char key[16], name[32], size[32];
		/* Device keys as vSphere numbers virtual disks. */
		snprintf(key, sizeof key, "%zu", 2000 + i);
		snprintf(name, sizeof name, "disk%zu", i);
		snprintf(size, sizeof size, "%" PRIu64, sizes[i]);
		const char *dparams[] = {id, key, name, size};
		err = vr_ctl_db_exec(NULL, ctl, sql_disk, 4, dparams);
		if (err)
			goto fail;
	}
	const char *tparams[] = {org_id, id, pos[2]};
	err = vr_ctl_db_exec(&task, ctl, sql_task, 3, tparams);
	if (err)
		goto fail;
	err = vr_ctl_db_commit(ctl);
	if (err)
		goto fail;
	printf("replication_id=%s\ntask_id=%s\n", id, PQgetvalue(task, 0, 0));
	PQclear(res);
	PQclear(task);
	return VR_CTL_EXIT_OK;
fail:
	if (err == VR_EINVAL)
		vr_ctl_error("the database refused these values (check the name and the RPO)");
	vr_ctl_db_rollback(ctl);
	PQclear(res);
	PQclear(task);
	return vr_ctl_exit_status(err);
}

static int replication_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID",    "ORG",      "VDC",      "NAME",
					      "KIND",  "RPO",      "STATE",    "RECOVERY",
					      "TEST",  "INSTANCES"};
	return vr_ctl_list_by_org(ctl, "replication list", replication_list_help, sql_list,
				  headers, argc, argv);
}

static const struct vr_ctl_command replication_commands[] = {
	{"add", "configure the replication of a VM from a paired site", replication_add},
	{"list", "list the replications of every org or of one", replication_list},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_replication(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "replication", replication_help, replication_commands, argc,
			       argv);
}
