/* vrcloudctl service: credentials of vrcloud's own services (workers and
 * proxies) for the internal API. A token is shown once, when it is made;
 * only its SHA-256 is stored. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/auth.h"
#include "vrcloud/err.h"

static const char service_help[] = "Usage: vrcloudctl service SUBCOMMAND [ARGS...]\n"
				   "\n"
				   "Credentials with which workers and proxies call the internal API.\n";

static const char service_add_help[] =
	"Usage: vrcloudctl service add NAME --kind worker|proxy\n"
	"\n"
	"Make a credential for the service NAME and print its token (token=...) once:\n"
	"put it in that service's configuration. Only a hash of it is stored.\n"
	"\n"
	"Options:\n"
	"  --kind worker|proxy  what the service is\n"
	"  -h, --help           show this help\n";

static const char service_revoke_help[] = "Usage: vrcloudctl service revoke NAME\n"
					  "\n"
					  "Refuse the token of service NAME from now on.\n"
					  "\n"
					  "Options:\n"
					  "  -h, --help  show this help\n";

static const char service_list_help[] = "Usage: vrcloudctl service list\n"
					"\n"
					"List the service credentials.\n"
					"\n"
					"Options:\n"
					"  -h, --help  show this help\n";

static int service_add(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *kind = NULL;
	const struct vr_ctl_opt opts[] = {{"kind", true, &kind}, {NULL, false, NULL}};
	const char *pos[1];
	int rc = vr_ctl_parse_args(pos, NULL, "service add", service_add_help, 1, 1, opts, argc,
				   argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	if (!kind || (strcmp(kind, "worker") != 0 && strcmp(kind, "proxy") != 0))
		return vr_ctl_usage_error("service add", "--kind takes worker or proxy");
	int err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	char token[VR_TOKEN_LEN + 1], hash[2 + 64 + 1];
	if (vr_auth_token_new(token)) {
		vr_ctl_error("the random number generator failed");
		return VR_CTL_EXIT_FAILURE;
	}
	vr_auth_token_hash_hex(hash, token);
	const char *params[] = {pos[0], kind, hash};
	err = vr_ctl_db_exec(NULL, ctl,
			     "INSERT INTO service_credentials (name, kind, token_hash)"
			     " VALUES ($1, $2, $3::bytea)",
			     3, params);
	if (err == VR_EEXIST)
		vr_ctl_error("a service named '%s' exists already; revoke it or choose another name",
			     pos[0]);
	else if (err == VR_EINVAL)
		vr_ctl_error("invalid service name '%s': use letters, digits, '.', '_' and '-'",
			     pos[0]);
	if (err) {
		explicit_bzero(token, sizeof token);
		return err == VR_EINVAL ? VR_CTL_EXIT_USAGE : vr_ctl_exit_status(err);
	}
	printf("service=%s\nkind=%s\ntoken=%s\n", pos[0], kind, token);
	explicit_bzero(token, sizeof token);
	return VR_CTL_EXIT_OK;
}

static int service_revoke(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *pos[1];
	int rc = vr_ctl_parse_args(pos, NULL, "service revoke", service_revoke_help, 1, 1, NULL,
				   argc, argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	int err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	PGresult *res = NULL;
	const char *params[] = {pos[0]};
	err = vr_ctl_db_exec(&res, ctl,
			     "UPDATE service_credentials SET revoked_at = coalesce(revoked_at, now())"
			     " WHERE name = $1 RETURNING id",
			     1, params);
	if (err)
		return vr_ctl_exit_status(err);
	rc = VR_CTL_EXIT_OK;
	if (PQntuples(res) == 0) {
		vr_ctl_error("there is no service '%s'; 'vrcloudctl service list' shows them", pos[0]);
		rc = VR_CTL_EXIT_FAILURE;
	} else {
		printf("revoked service '%s'\n", pos[0]);
	}
	PQclear(res);
	return rc;
}

static int service_list(struct vr_ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ID", "NAME", "KIND", "STATE", "CREATED"};
	int rc = vr_ctl_parse_args(NULL, NULL, "service list", service_list_help, 0, 0, NULL, argc,
				   argv);
	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	int err = vr_ctl_db_open(ctl);
	if (err)
		return vr_ctl_exit_status(err);
	PGresult *res = NULL;
	err = vr_ctl_db_exec(&res, ctl,
			     "SELECT id, name, kind, CASE WHEN revoked_at IS NULL THEN 'active'"
			     " ELSE 'revoked' END, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS')"
			     " FROM service_credentials ORDER BY name",
			     0, NULL);
	if (err)
		return vr_ctl_exit_status(err);
	vr_ctl_print_result(stdout, res, headers);
	PQclear(res);
	return VR_CTL_EXIT_OK;
}

static const struct vr_ctl_command service_commands[] = {
	{"add", "make a credential for a worker or proxy and print its token", service_add},
	{"revoke", "refuse a service's token from now on", service_revoke},
	{"list", "list the service credentials", service_list},
	{NULL, NULL, NULL},
};

int vr_ctl_cmd_service(struct vr_ctl *ctl, int argc, char **argv)
{
	return vr_ctl_dispatch(ctl, "service", service_help, service_commands, argc, argv);
}
