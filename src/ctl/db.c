/* vrcloudctl: the database connection, statements and error reporting. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/alloc.h"
#include "vrcloud/config.h"
#include "vrcloud/err.h"

/* SQLSTATEs the CLI explains itself */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_CHECK_VIOLATION  "23514"
#define SQLSTATE_UNDEFINED_TABLE  "42P01"

/* The URI to use and, for messages, where it came from. */
static int resolve_uri(char **uri_out, const char **source_out, const struct vr_ctl *ctl)
{
	const char *env = getenv("VRCLOUD_PGURI");
	struct vr_config config;
	char *error = NULL;

	if (ctl->database_option) {
		*uri_out = vr_strdup(ctl->database_option);
		*source_out = "--database";
		return 0;
	}
	if (env && env[0]) {
		*uri_out = vr_strdup(env);
		*source_out = "$VRCLOUD_PGURI";
		return 0;
	}
	if (!ctl->config_path) {
		vr_ctl_error("no database given: pass --database URI, set VRCLOUD_PGURI, or pass "
			     "--config FILE with a [database] uri");
		return VR_ECONFIG;
	}
	vr_config_init(&config);
	if (vr_config_load(&config, ctl->config_path, &error) != 0) {
		vr_ctl_error("%s; fix the config file or pass --database URI",
			     error ? error : ctl->config_path);
		free(error);
		vr_config_free(&config);
		return VR_ECONFIG;
	}
	if (!config.database_uri) {
		vr_ctl_error(
			"%s sets an empty [database] uri; give one there or pass --database URI",
			ctl->config_path);
		vr_config_free(&config);
		return VR_ECONFIG;
	}
	*uri_out = vr_strdup(config.database_uri);
	*source_out = "[database] uri of the config file";
	vr_config_free(&config);
	return 0;
}

/* libpq text on one line: each line break and the indentation after it
 * become one space, the final newline goes */
static void copy_line(char *out, size_t size, const char *text)
{
	size_t o = 0;

	for (const char *t = text; *t && o + 1 < size; t++) {
		if (*t != '\n') {
			out[o++] = *t;
			continue;
		}
		while (t[1] == ' ' || t[1] == '\t')
			t++;
		if (t[1])
			out[o++] = ' ';
	}
	out[o] = '\0';
}

/* The primary message of a failed result, else the connection's. */
static void copy_message(char *out, size_t size, const PGresult *res, const PGconn *conn)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	copy_line(out, size, msg ? msg : PQerrorMessage(conn));
}

int vr_ctl_db_open(struct vr_ctl *ctl)
{
	static const char *const keywords[] = {"connect_timeout", "dbname",
					       "fallback_application_name", NULL};
	const char *source;
	char *uri = NULL, *parse_error = NULL;
	char message[512];
	PQconninfoOption *parsed;
	int err;

	if (ctl->conn)
		return 0;
	err = resolve_uri(&uri, &source, ctl);
	if (err)
		return err;

	parsed = PQconninfoParse(uri, &parse_error);
	if (!parsed) {
		copy_line(message, sizeof message, parse_error ? parse_error : "out of memory");
		vr_ctl_error("the database URI from %s is not valid: %s", source, message);
		err = VR_ECONFIG;
		goto cleanup;
	}
	PQconninfoFree(parsed);

	/* Values in the URI override the defaults listed before it. */
	const char *const values[] = {"10", uri, VR_CTL_PROGRAM, NULL};
	ctl->conn = PQconnectdbParams(keywords, values, 1);
	if (!ctl->conn || PQstatus(ctl->conn) != CONNECTION_OK) {
		copy_message(message, sizeof message, NULL, ctl->conn);
		vr_ctl_error("cannot connect to the database given by %s: %s\n"
			     "Check that PostgreSQL is running and that the URI is right.",
			     source, ctl->conn ? message : "out of memory");
		PQfinish(ctl->conn);
		ctl->conn = NULL;
		err = VR_EUNAVAIL;
		goto cleanup;
	}
	/* keep NOTICEs such as "already exists, skipping" off the terminal */
	err = vr_ctl_db_exec(NULL, ctl, "SET client_min_messages TO warning", 0, NULL);
cleanup:
	PQfreemem(parse_error);
	free(uri);
	return err;
}

int vr_ctl_db_exec(PGresult **res_out, struct vr_ctl *ctl, const char *sql, int nparams,
		   const char *const *params)
{
	PGresult *res = PQexecParams(ctl->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(res);
	const char *state;
	char message[512];
	int err;

	if (res && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) {
		if (res_out)
			*res_out = res;
		else
			PQclear(res);
		return 0;
	}

	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	copy_message(message, sizeof message, res, ctl->conn);
	if (PQstatus(ctl->conn) != CONNECTION_OK) {
		vr_ctl_error("lost the connection to the database: %s", message);
		err = VR_EUNAVAIL;
	} else if (state && strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0) {
		err = VR_EEXIST;
	} else if (state && strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0) {
		err = VR_EINVAL;
	} else if (state && strcmp(state, SQLSTATE_UNDEFINED_TABLE) == 0) {
		vr_ctl_error("the database has no vrcloud schema (%s); run 'vrcloudctl migrate' "
			     "first",
			     message);
		err = VR_EDB;
	} else {
		vr_ctl_error("database error: %s", message);
		err = VR_EDB;
	}
	PQclear(res);
	return err;
}

int vr_ctl_db_begin(struct vr_ctl *ctl)
{
	return vr_ctl_db_exec(NULL, ctl, "BEGIN", 0, NULL);
}

int vr_ctl_db_commit(struct vr_ctl *ctl)
{
	int err = vr_ctl_db_exec(NULL, ctl, "COMMIT", 0, NULL);

	if (err == VR_EEXIST || err == VR_EINVAL) {
		vr_ctl_error("the change conflicts with another one made at the same time; "
			     "nothing was changed, try again");
		err = VR_ECONFLICT;
	}
	return err;
}

void vr_ctl_db_rollback(struct vr_ctl *ctl)
{
	if (ctl->conn && PQstatus(ctl->conn) == CONNECTION_OK)
		PQclear(PQexec(ctl->conn, "ROLLBACK"));
}
