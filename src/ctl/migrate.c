/* vrcloudctl migrate: apply the SQL migrations built into the binary. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

static const char migrate_help[] =
	"Usage: vrcloudctl migrate [--status]\n"
	"\n"
	"Apply the database migrations built into this vrcloudctl that the database\n"
	"does not have yet, in order, each in its own transaction together with its\n"
	"row in the table schema_migrations. Running it again changes nothing. A\n"
	"database whose schema is newer than this vrcloudctl is refused. Concurrent\n"
	"runs are safe: they wait for each other on a PostgreSQL advisory lock.\n"
	"\n"
	"Options:\n"
	"  --status    print the current and the latest version, change nothing\n"
	"  -h, --help  show this help\n";

/* Advisory lock key of migrations: the bytes of "vrmigrat". */
#define LOCK_KEY "8535004543295054196"

static const char sql_create_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
				       " version integer PRIMARY KEY,"
				       " name text NOT NULL,"
				       " applied_at timestamptz NOT NULL DEFAULT now())";
static const char sql_table_exists[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";
static const char sql_applied[] = "SELECT version FROM schema_migrations ORDER BY version";
static const char sql_record[] = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

static int latest_version(void)
{
	return vr_ctl_migration_count ? vr_ctl_migration_version[vr_ctl_migration_count - 1] : 0;
}

/* The versions recorded in schema_migrations, ascending. */
static int read_applied(int **versions_out, size_t *count_out, struct vr_ctl *ctl)
{
	PGresult *res;
	int err = vr_ctl_db_exec(&res, ctl, sql_applied, 0, NULL);

	if (err)
		return err;
	size_t n = (size_t)PQntuples(res);
	int *versions = vr_calloc(n ? n : 1, sizeof *versions);
	for (size_t i = 0; i < n; i++)
		versions[i] = (int)strtol(PQgetvalue(res, (int)i, 0), NULL, 10);
	PQclear(res);
	*versions_out = versions;
	*count_out = n;
	return 0;
}

/* The recorded versions must be exactly the first n known ones. */
static int check_applied(const int *applied, size_t napplied)
{
	int current = napplied ? applied[napplied - 1] : 0;

	if (current > latest_version()) {
		vr_ctl_error("the database schema is at version %d, newer than this vrcloudctl "
			     "knows (latest %d); use the vrcloudctl of the vrcloud release that "
			     "migrated it, or a newer one",
			     current, latest_version());
		return VR_ECONFLICT;
	}
	for (size_t i = 0; i < napplied; i++) {
		if (applied[i] != vr_ctl_migration_version[i]) {
			int expected = vr_ctl_migration_version[i];
			vr_ctl_error("schema_migrations records version %d where version %d "
				     "(%s) belongs: the table was changed by other means than "
				     "'vrcloudctl migrate'; repair it before migrating",
				     applied[i] < expected ? applied[i] : expected, expected,
				     vr_ctl_migration_name[i]);
			return VR_ECONFLICT;
		}
	}
	return 0;
}

/* Line of the 1-based character position PostgreSQL reports in sql. */
static long line_of_position(const char *sql, long position)
{
	long line = 1, chars = 0;

	for (const unsigned char *s = (const unsigned char *)sql; *s; s++) {
		if ((*s & 0xc0) == 0x80)
			continue;
		if (++chars >= position)
			break;
		if (*s == '\n')
			line++;
	}
	return line;
}

static int apply_one(struct vr_ctl *ctl, size_t i, int current)
{
	int version = vr_ctl_migration_version[i];
	const char *name = vr_ctl_migration_name[i];
	const char *sql = vr_ctl_migration_sql[i];
	char version_text[16];
	PGresult *res = NULL;
	int err;

	err = vr_ctl_db_begin(ctl);
	if (err)
		return err;
	/* Several statements in one string need the simple query protocol;
	 * the text is the migration file built into the binary. */
	res = PQexec(ctl->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
		char where[32] = "";
		if (pos)
			snprintf(where, sizeof where, " at line %ld",
				 line_of_position(sql, strtol(pos, NULL, 10)));
		vr_ctl_error("migration %04d_%s failed%s: %s; the database stays at version %d",
			     version, name, where, msg ? msg : PQerrorMessage(ctl->conn), current);
		err = PQstatus(ctl->conn) == CONNECTION_OK ? VR_EDB : VR_EUNAVAIL;
		goto cleanup;
	}
	snprintf(version_text, sizeof version_text, "%d", version);
	const char *params[] = {version_text, name};
	err = vr_ctl_db_exec(NULL, ctl, sql_record, 2, params);
	if (err == VR_EEXIST || err == VR_EINVAL) {
		vr_ctl_error("cannot record migration %d in schema_migrations", version);
		err = VR_EDB;
	}
	if (err)
		goto cleanup;
	err = vr_ctl_db_commit(ctl);
	if (!err)
		printf("applied migration %d (%s)\n", version, name);
cleanup:
	PQclear(res);
	if (err)
		vr_ctl_db_rollback(ctl);
	return err;
}

static int lock_migrations(struct vr_ctl *ctl)
{
	PGresult *res;
	int err = vr_ctl_db_exec(&res, ctl, "SELECT pg_try_advisory_lock(" LOCK_KEY ")", 0, NULL);

	if (err)
		return err;
	bool locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (locked)
		return 0;
	fputs(VR_CTL_PROGRAM ": another 'vrcloudctl migrate' is running; waiting for it\n", stderr);
	return vr_ctl_db_exec(NULL, ctl, "SELECT pg_advisory_lock(" LOCK_KEY ")", 0, NULL);
}

static int migrate(struct vr_ctl *ctl)
{
	int *applied = NULL;
	size_t napplied = 0;
	int err;

	err = lock_migrations(ctl);
	if (err)
		return err;
	err = vr_ctl_db_exec(NULL, ctl, sql_create_table, 0, NULL);
	if (err)
		goto cleanup;
	err = read_applied(&applied, &napplied, ctl);
	if (err)
		goto cleanup;
	err = check_applied(applied, napplied);
	if (err)
		goto cleanup;

	int current = napplied ? applied[napplied - 1] : 0;
	for (size_t i = napplied; i < vr_ctl_migration_count; i++) {
		err = apply_one(ctl, i, current);
		if (err)
			goto cleanup;
		current = vr_ctl_migration_version[i];
	}
	printf("database is up to date at version %d\n", current);
cleanup:
	free(applied);
	/* closing the session would release the lock too */
	if (PQstatus(ctl->conn) == CONNECTION_OK)
		vr_ctl_db_exec(NULL, ctl, "SELECT pg_advisory_unlock(" LOCK_KEY ")", 0, NULL);
	return err;
}

static int status(struct vr_ctl *ctl)
{
	PGresult *res;
	int *applied = NULL;
	size_t napplied = 0;
	int err;

	err = vr_ctl_db_exec(&res, ctl, sql_table_exists, 0, NULL);
	if (err)
		return err;
	bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (exists) {
		err = read_applied(&applied, &napplied, ctl);
		if (err)
			return err;
	}

	int current = napplied ? applied[napplied - 1] : 0;
	int latest = latest_version();
	printf("current version: %d\nlatest version: %d\n", current, latest);
	if (current > latest)
		printf("the database is newer than this vrcloudctl\n");
	else if (current == latest)
		printf("the database is up to date\n");
	else
		printf("%zu migration(s) pending: run 'vrcloudctl migrate'\n",
		       vr_ctl_migration_count > napplied ? vr_ctl_migration_count - napplied : 0);
	free(applied);
	return 0;
}

int vr_ctl_cmd_migrate(struct vr_ctl *ctl, int argc, char **argv)
{
	const char *status_flag = NULL;
	const struct vr_ctl_opt opts[] = {
		{"status", false, &status_flag},
		{NULL, false, NULL},
	};
	int rc = vr_ctl_parse_args(NULL, NULL, "migrate", migrate_help, 0, 0, opts, argc, argv);
	int err;

	if (rc != VR_CTL_EXIT_CONTINUE)
		return rc;
	err = vr_ctl_db_open(ctl);
	if (!err)
		err = status_flag ? status(ctl) : migrate(ctl);
	return vr_ctl_exit_status(err);
}
