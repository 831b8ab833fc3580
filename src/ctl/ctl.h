/* vrcloudctl, the operator CLI: its command table, database helpers and
 * the small input/output helpers its commands share. Internal to the CLI
 * (src/cmd/vrcloudctl.c) and its tests.
 *
 * Conventions: command handlers return a process exit status (enum
 * vr_ctl_exit). Helpers return 0 or a negative enum vr_err and have already
 * told the user what went wrong on stderr, except where a comment says the
 * caller must explain the error. */
#ifndef VRCLOUD_CTL_H
#define VRCLOUD_CTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vrcloud/password.h"
#include "vrcloud/uuid.h"

#define VR_CTL_PROGRAM "vrcloudctl"

enum vr_ctl_exit {
	VR_CTL_EXIT_CONTINUE = -1, /* not an exit status: go on with the command */
	VR_CTL_EXIT_OK = 0,
	VR_CTL_EXIT_FAILURE = 1, /* the operation failed */
	VR_CTL_EXIT_USAGE = 2,	 /* bad command line or input */
	VR_CTL_EXIT_CONFIG = 3,	 /* bad configuration or no database connection */
};

struct vr_ctl {
	const char *database_option; /* --database, as given */
	const char *config_path;     /* --config */
	PGconn *conn;		     /* set by vr_ctl_db_open() */
};

/* A command or a subcommand. run() receives argv starting at the command's
 * own name and returns an exit status. */
struct vr_ctl_command {
	const char *name;
	const char *summary;
	int (*run)(struct vr_ctl *ctl, int argc, char **argv);
};

/* The top-level commands, ended by an entry with a NULL name. */
extern const struct vr_ctl_command vr_ctl_commands[];

/* ctl.c: context, global options, dispatch */
void vr_ctl_init(struct vr_ctl *ctl);
void vr_ctl_free(struct vr_ctl *ctl);
/* Parse the global options in front of the command. Returns
 * VR_CTL_EXIT_CONTINUE with *command_index_out set to the command's index
 * in argv, or an exit status when there is nothing to run (--help,
 * --version, usage errors). */
int vr_ctl_parse_global(int *command_index_out, struct vr_ctl *ctl, int argc, char **argv);
const struct vr_ctl_command *vr_ctl_command_find(const struct vr_ctl_command *table,
						 const char *name);
/* Run the subcommand named by argv[1] from table; group is the command
 * path for messages ("org"), help the group's --help text. */
int vr_ctl_dispatch(struct vr_ctl *ctl, const char *group, const char *help,
		    const struct vr_ctl_command *table, int argc, char **argv);
/* Exit status for an enum vr_err value. */
int vr_ctl_exit_status(int err);
/* "vrcloudctl: <message>" on stderr. */
void vr_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* args.c: option parsing shared by every command */
struct vr_ctl_opt {
	const char *name;   /* long option, without the dashes */
	bool takes_value;   /* --name VALUE, else a plain flag */
	const char **value; /* receives VALUE, or "" for a flag given */
};
/* Parse argv for the command named command ("org add"): the options in
 * opts (ended by a NULL name) plus -h/--help, and min_pos..max_pos
 * positional arguments stored into pos (room for max_pos). Returns
 * VR_CTL_EXIT_CONTINUE, or VR_CTL_EXIT_OK after printing help, or
 * VR_CTL_EXIT_USAGE after explaining the mistake. */
int vr_ctl_parse_args(const char **pos, size_t *npos_out, const char *command, const char *help,
		      size_t min_pos, size_t max_pos, const struct vr_ctl_opt *opts, int argc,
		      char **argv);
/* Print "<command>: <message>" and a pointer to --help on stderr; returns
 * VR_CTL_EXIT_USAGE. */
int vr_ctl_usage_error(const char *command, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* input.c: values from the command line and stdin (these print nothing) */
/* "on" or "off" (any case). Returns 0 or VR_EINVAL. */
int vr_ctl_parse_switch(bool *value_out, const char *text);
/* Read one line from in: the trailing "\n" (or "\r\n") is removed.
 * Returns 0, VR_EINVAL (empty line, no input, or a NUL byte), VR_ETOOBIG
 * (over VR_PASSWORD_MAX bytes) or VR_EIO. out is wiped on error. */
int vr_ctl_read_password(char out[VR_PASSWORD_MAX + 1], FILE *in);
/* Read the password for command from stdin (without echo on a terminal)
 * and report problems. Returns 0, VR_EINVAL, VR_ETOOBIG or VR_EIO. */
int vr_ctl_password_stdin(char out[VR_PASSWORD_MAX + 1], const char *command);
/* A random password of len letters and digits into out (len + 1 bytes).
 * Returns 0 or VR_EIO. */
int vr_ctl_random_password(char *out, size_t len);

/* output.c: tables and key=value lines (these print nothing on stderr) */
/* Print an aligned table: cells holds (nrows + 1) * ncols strings, the
 * header row first; NULL cells print as empty. Control characters are
 * shown as '?', columns are separated by two spaces. */
void vr_ctl_print_table(FILE *out, size_t ncols, size_t nrows, const char *const *cells);
/* Print every row of a query result under the given headers (one per
 * column of res). */
void vr_ctl_print_result(FILE *out, const PGresult *res, const char *const *headers);
/* value quoted for a POSIX shell when it needs quoting; the caller frees. */
char *vr_ctl_shell_quote(const char *value);

/* db.c: connection and statements */
/* Connect to the database named by --database, $VRCLOUD_PGURI or the
 * config file. Returns 0, VR_ECONFIG (no database given, bad config file)
 * or VR_EUNAVAIL (cannot connect). */
int vr_ctl_db_open(struct vr_ctl *ctl);
/* Run one statement with text parameters (NULL = SQL NULL). On success
 * *res_out (if res_out is not NULL) holds the result, which the caller
 * PQclear()s. Errors: VR_EEXIST (unique violation) and VR_EINVAL (check
 * violation) are left for the caller to explain; VR_EUNAVAIL (connection
 * lost) and VR_EDB have been reported. */
int vr_ctl_db_exec(PGresult **res_out, struct vr_ctl *ctl, const char *sql, int nparams,
		   const char *const *params);
int vr_ctl_db_begin(struct vr_ctl *ctl);
int vr_ctl_db_commit(struct vr_ctl *ctl);
/* Roll back the open transaction; errors are ignored (the connection may
 * already be gone). */
void vr_ctl_db_rollback(struct vr_ctl *ctl);

/* org.c */
/* Find an org by name (any case). Returns 0, VR_ENOTFOUND (reported) or a
 * database error. is_system_out may be NULL. */
int vr_ctl_org_find(char id_out[VR_UUID_LEN + 1], bool *is_system_out, struct vr_ctl *ctl,
		    const char *name);

/* Run "<command> [ORG]": print the rows of sql (parameter $1: the org's
 * id, or NULL for every org) under headers. Returns an exit status. */
int vr_ctl_list_by_org(struct vr_ctl *ctl, const char *command, const char *help,
		       const char *sql, const char *const *headers, int argc, char **argv);

/* user.c */
/* Role names as stored. Returns true for sysadmin, org-admin, org-user. */
bool vr_ctl_role_valid(const char *role);

/* The commands */
int vr_ctl_cmd_migrate(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_tunnel_probe(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_org(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_vdc(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_user(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_sysadmin(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_seed_demo(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_peer(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_replication(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_service(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_vapp(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_instance(struct vr_ctl *ctl, int argc, char **argv);
int vr_ctl_cmd_tunnels(struct vr_ctl *ctl, int argc, char **argv);

/* migrations_gen.c, generated from migrations/ by build-aux/embed-sql.sh:
 * the migrations in ascending version order. */
extern const size_t vr_ctl_migration_count;
extern const int vr_ctl_migration_version[];
extern const char *const vr_ctl_migration_name[];
extern const char *const vr_ctl_migration_sql[];

#endif
