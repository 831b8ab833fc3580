/* vrcloudctl peer: on-premises sites paired with a VDC. Sites pair
 * themselves through the API (POST /api/vdc/{id}/peers); this is the
 * operator's way to record one by hand, already paired (for example a
 * site being onboarded), and to see them all with their state. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/auth.h"
#include "vrcloud/err.h"

static const char peer_help[] = "Usage: vrcloudctl peer SUBCOMMAND [ARGS...]\n"
				"\n"
				"On-premises sites paired with a VDC of an org.\n";

static const char peer_add_help[] =
	"Usage: vrcloudctl peer add ORG VDC --site-name NAME [--site-uuid UUID]\n"
	"         [--description TEXT]\n"
	"\n"
	"Record a site paired with VDC of org ORG. SITE-UUID identifies the site's\n"
	"replication manager; a new one is made when it is not given. Prints the\n"
	"peer's id.\n"
	"\n"
	"Options:\n"
	"  --site-name NAME     the site's display name\n"
	"  --site-uuid UUID     the site's id (default: a new random one)\n"
	"  --description TEXT   free text\n"
	"  -h, --help           show this help\n";

static const char peer_list_help[] = "Usage: vrcloudctl peer list [ORG]\n"
				     "\n"
				     "List the peers of every org, or of ORG. STATE is pairing\n"
				     "(a site's pairing through the API has not finished), paired,\n"
				     "error (its pairing failed; the site may pair again) or\n"
				     "revoked.\n"
				     "\n"
				     "Options:\n"
				     "  -h, --help  show this help\n";

static const char peer_credential_help[] =
	"Usage: vrcloudctl peer credential PEER-ID\n"
	"\n"
	"Make a new site credential for the peer PEER-ID and print it (credential=...)\n"
	"once: put it in the site agent's credential file. Only its SHA-256 is stored;\n"
	"the peer's previous credential stops working (connections the proxies hold\n"
	"with it are dropped when they check it again).\n"
	"\n"
	"Options:\n"
	"  -h, --help  show this help\n";

static const char sql_credential[] = "UPDATE peers SET credential_hash = $2::bytea"
				     " WHERE id = $1::uuid AND revoked_at IS NULL RETURNING id";

static const char sql_add[] =
	"INSERT INTO peers (org_id, vdc_id, site_uuid, site_name, description)"
	" SELECT v.org_id, v.id, coalesce($3::uuid, gen_random_uuid()), $4, coalesce($5, '')"
	" FROM vdcs v WHERE v.org_id = $1 AND lower(v.name) = lower($2) RETURNING id, site_uuid";

static const char sql_list[] = "SELECT p.id, o.name, v.name, p.site_name, p.site_uuid,"
			       " CASE WHEN p.revoked_at IS NULL THEN p.state ELSE 'revoked' END"
			       " FROM peers p JOIN vdcs v ON v.id = p.vdc_id"
			       " JOIN orgs o ON o.id = p.org_id"
			       " WHERE $1::uuid IS NULL OR p.org_id = $1"
			       " ORDER BY lower(o.name), lower(v.name), p.created_at";

static int peer_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *site_name = NULL, *site_uuid = NULL, *description = NULL;
	const struct vr_ctl_opt opts[] = {
		{"site-name", true, &site_name},
		{"site-uuid", true, &site_uuid},
		{"description", true, &description},
		{NULL, false, NULL},
	};
	const char *pos[2];
	char org_id[VR_UUID_LEN + 1], uuid[VR_UUID_LEN + 1];
	PGresult *res = NULL;
	int rc = vr_ctl_parse_args(pos, NULL, "peer add", peer_add_help, 2, 2, opts, argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!site_name || !*site_name)
		return vr_ctl_usage_error("peer add", "--site-name is required");
	if (strlen(site_name) > 255)
		return vr_ctl_usage_error("peer add", "--site-name is longer than 255 characters");
	if (site_uuid && vr_uuid_canon(uuid, site_uuid))
		return vr_ctl_usage_error("peer add", "--site-uuid '%s' is not a UUID", site_uuid);
	int err = vr_ctl_db_open(ctl);
	if (!err)
		err = vr_ctl_org_find(org_id, NULL, ctl, pos[0]);
	if (err)
		return vr_ctl_exit_status(err);
	const char *params[] = {org_id, pos[1], site_uuid ? uuid : NULL, site_name, description};
	err = vr_ctl_db_exec(&res, ctl, sql_add, 5, params);
	if (err == VR_EEXIST)
		vr_ctl_error("VDC '%s' is already paired with site %s", pos[1], site_uuid);
	if (err)
		return vr_ctl_exit_status(err);
	if (PQntuples(res) == 0) {
		vr_ctl_error("org '%s' has no VDC '%s'; 'vrcloudctl vdc list %s' shows its VDCs",
			     pos[0], pos[1], pos[0]);
		rc = VR_CTL_EXIT_FAILURE;
	} else {
		printf("peer_id=%s\nsite_uuid=%s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		rc = VR_CTL_EXIT_OK;
	}
	PQclear(res);
	return rc;
}

static int peer_credential(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[1];
	char id[VR_UUID_LEN + 1];
	int rc = vr_ctl_parse_args(pos, NULL, "peer credential", peer_credential_help, 1, 1, NULL,
				   argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (vr_uuid_canon(id, pos[0]))
		return vr_ctl_usage_error("peer credential", "'%s' is not a peer id (a UUID)",
					  pos[0]);
	int err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	char credential[VR_TOKEN_LEN + 1], hash[2 + 64 + 1];
	if (vr_auth_token_new(credential)) {
		vr_ctl_error("the random number generator failed");
		return VR_CTL_EXIT_FAILURE;
	}
	vr_auth_token_hash_hex(hash, credential);
	const char *params[] = {id, hash};
	PGresult *res = NULL;
	err = vr_ctl_db_exec(&res, ctl, sql_credential, 2, params);
	if (err) {
		explicit_bzero(credential, sizeof credential);
		return vr_ctl_exit_status(err);
	}
	if (PQntuples(res) == 0) {
		vr_ctl_error("there is no active peer %s; 'vrcloudctl peer list' shows them", id);
		rc = VR_CTL_EXIT_FAILURE;
	} else {
		printf("peer_id=%s\ncredential=%s\n", id, credential);
		rc = VR_CTL_EXIT_OK;
	}
	explicit_bzero(credential, sizeof credential);
	PQclear(res);
	return rc;
}

static int peer_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID", "ORG", "VDC", "SITE", "SITE-UUID", "STATE"};
	return vr_ctl_list_by_org(ctl, "peer list", peer_list_help, sql_list, headers, argc, argv);
}

static const struct vr_ctl_command peer_commands[] = {
	{"add", "record a site paired with a VDC", peer_add},
	{"list", "list the peers of every org or of one", peer_list},
	{"credential", "make a new site credential for a peer", peer_credential},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_peer(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "peer", peer_help, peer_commands, argc, argv);
}
