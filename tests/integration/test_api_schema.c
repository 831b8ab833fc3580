/* vrcloud-api against a database whose schema is another version than the
 * one it was built for (its newest migration, vr_db_schema_version): it
 * logs one line saying so, keeps running, answers /healthz and every route
 * that needs the database 503 with the versions and what to do, and works
 * as soon as the database is at its version, without a restart. Each test
 * makes its own database next to the suite's and its own vrcloud-api. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/db.h"

VRT_SUITE(.name = "schema", .jobs = 2, .redis_db = 11);

static PGconn *connect_to(const char *uri)
{
	PGconn *conn = PQconnectdb(uri);
	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "connecting to %s: %s", uri,
		     PQerrorMessage(conn));
	return conn;
}

static void exec_ok(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%.200s: %s", sql,
		  PQresultErrorMessage(res));
	PQclear(res);
}

/* A database of its own: the server's superuser URI with another dbname. */
struct database {
	char name[64];
	char *uri;
};

static void database_create(struct database *db, const char *suffix)
{
	snprintf(db->name, sizeof db->name, "vrt_schema_%ld_%s", (long)getpid(), suffix);
	PGconn *admin = connect_to(vrt_env("VRT_PG_URI"));
	char *sql = vrt_fmt("DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	exec_ok(admin, sql);
	free(sql);
	sql = vrt_fmt("CREATE DATABASE %s", db->name);
	exec_ok(admin, sql);
	free(sql);
	PQfinish(admin);
	char *error = NULL;
	PQconninfoOption *opts = PQconninfoParse(vrt_env("VRT_PG_URI"), &error);
	cr_assert_not_null(opts, "%s", error ? error : "bad URI");
	char *uri = strdup("");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || strcmp(o->keyword, "dbname") == 0)
			continue;
		char *more = vrt_fmt("%s%s='%s' ", uri, o->keyword, o->val);
		free(uri);
		uri = more;
	}
	PQconninfoFree(opts);
	db->uri = vrt_fmt("%sdbname='%s'", uri, db->name);
	free(uri);
}

static void database_drop(struct database *db)
{
	PGconn *admin = connect_to(vrt_env("VRT_PG_URI"));
	char *sql = vrt_fmt("DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	exec_ok(admin, sql);
	free(sql);
	PQfinish(admin);
	free(db->uri);
}

/* Apply the first n migrations as `vrcloudctl migrate` does: each file's
 * SQL with its row in schema_migrations. */
static void migrate_first(const struct database *db, size_t n)
{
	cr_assert(n <= vr_ctl_migration_count);
	PGconn *conn = connect_to(db->uri);
	exec_ok(conn, "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
		      " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
	for (size_t i = 0; i < n; i++) {
		exec_ok(conn, "BEGIN");
		exec_ok(conn, vr_ctl_migration_sql[i]);
		char *sql =
			vrt_fmt("INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')",
				vr_ctl_migration_version[i], vr_ctl_migration_name[i]);
		exec_ok(conn, sql);
		free(sql);
		exec_ok(conn, "COMMIT");
	}
	PQfinish(conn);
}

static void run_sql(const struct database *db, const char *sql)
{
	PGconn *conn = connect_to(db->uri);
	exec_ok(conn, sql);
	PQfinish(conn);
}

/* `vrcloudctl --database URI migrate`, to completion. */
static void ctl_migrate(const struct database *db)
{
	const char *dir = getenv("VRCLOUD_BUILDDIR");
	char *exe = vrt_fmt("%s/vrcloudctl", dir && dir[0] ? dir : VR_BUILDDIR);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(exe, exe, "--database", db->uri, "migrate", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vrcloudctl migrate failed (%d)", st);
	free(exe);
}

static void start_api(struct vrt_api *api, const struct database *db)
{
	struct vrt_api_opts opts = {.database_uri = db->uri, .config = "[api]\nthreads = 2\n"};
	cr_assert_eq(vrt_api_start(api, &opts), 0, "vrcloud-api did not start");
}

static void call_api(const struct vrt_api *api, const char *method, const char *path,
		     const char *basic, struct vrt_resp *r)
{
	struct vrt_call call = {.base = api->base,
				.method = method,
				.path = path,
				.basic = basic,
				.accept = strcmp(path, "/healthz") == 0 ? "" : NULL};
	cr_assert_eq(vrt_call(&call, r), 0, "%s %s: no response", method, path);
}

/* How many log lines of the API name event. */
static int log_count(const struct vrt_api *api, const char *event)
{
	char *path = vrt_fmt("%s/api.log", api->dir);
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return 0;
	char *needle = vrt_fmt("event=%s ", event);
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	free(needle);
	return n;
}

/* Every way in that needs the database is 503 with message; one that does
 * not still works. */
static void assert_refused(const struct vrt_api *api, const char *message)
{
	struct vrt_resp r;
	call_api(api, "GET", "/healthz", NULL, &r);
	cr_assert_eq(r.status, 503, "/healthz: %ld\n%s", r.status, r.body);
	char *line = vrt_fmt("postgresql: %s\n", message);
	cr_assert(strstr(r.body, line), "/healthz does not say '%s':\n%s", message, r.body);
	free(line);
	vrt_resp_free(&r);

	static const struct {
		const char *method, *path;
		const char *basic;
	} routes[] = {
		{"POST", "/api/sessions", VRT_ADMIN_A ":" VRT_PASSWORD},
		{"GET", "/api/org", VRT_ADMIN_A ":" VRT_PASSWORD},
		{"GET", "/api/task/" VRT_TASK_A_RUNNING, VRT_ADMIN_A ":" VRT_PASSWORD},
	};
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		call_api(api, routes[i].method, routes[i].path, routes[i].basic, &r);
		char *what = vrt_fmt("%s %s", routes[i].method, routes[i].path);
		vrt_assert_error(&r, 503, "SERVICE_UNAVAILABLE", what);
		char *said = vrt_xpath_str(r.body, "string(/v:Error/@message)");
		cr_assert_str_eq(said ? said : "", message, "%s", what);
		free(said);
		free(what);
		vrt_resp_free(&r);
	}
	call_api(api, "GET", "/api/versions", NULL, &r);
	cr_assert_eq(r.status, 200, "/api/versions needs no database: %ld", r.status);
	vrt_resp_free(&r);
}

/* Healthy again: /healthz 200, and the login route reaches the database
 * (the database has no users: 401). */
static void assert_working(const struct vrt_api *api)
{
	struct vrt_resp r;
	call_api(api, "GET", "/healthz", NULL, &r);
	cr_assert_eq(r.status, 200, "/healthz after the migration: %ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	call_api(api, "POST", "/api/sessions", "nobody@System:wrong", &r);
	cr_assert_eq(r.status, 401, "login after the migration: %ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
}

Test(schema, one_migration_behind_is_503_until_vrcloudctl_migrate)
{
	cr_assert_geq(vr_ctl_migration_count, 2);
	struct database db;
	database_create(&db, "behind");
	migrate_first(&db, vr_ctl_migration_count - 1);
	struct vrt_api api;
	start_api(&api, &db);
	char *message =
		vrt_fmt("database schema is version %d, this build needs %d: run vrcloudctl "
			"migrate",
			vr_ctl_migration_version[vr_ctl_migration_count - 2], vr_db_schema_version);
	assert_refused(&api, message);
	assert_refused(&api, message);
	/* logged once, however many connections found it */
	cr_assert_eq(log_count(&api, "db_schema_mismatch"), 1, "mismatch logged %d times",
		     log_count(&api, "db_schema_mismatch"));
	cr_assert(vrt_api_log_contains(&api, message), "the log line does not say '%s'", message);

	ctl_migrate(&db);
	assert_working(&api);
	cr_assert_eq(log_count(&api, "db_schema_ok"), 1);
	cr_assert_eq(vrt_api_stop(&api, 5), 0, "vrcloud-api did not exit 0");
	free(message);
	database_drop(&db);
}

Test(schema, a_newer_schema_is_503_until_it_is_this_builds_again)
{
	struct database db;
	database_create(&db, "newer");
	migrate_first(&db, vr_ctl_migration_count);
	run_sql(&db, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'later')");
	struct vrt_api api;
	start_api(&api, &db);
	char *message = vrt_fmt("database schema is version 9999, this build needs %d: run the "
				"vrcloud release that migrated it, or a newer one",
				vr_db_schema_version);
	assert_refused(&api, message);
	run_sql(&db, "DELETE FROM schema_migrations WHERE version = 9999");
	assert_working(&api);
	cr_assert_eq(vrt_api_stop(&api, 5), 0, "vrcloud-api did not exit 0");
	free(message);
	database_drop(&db);
}

Test(schema, a_database_never_migrated_is_version_0)
{
	struct database db;
	database_create(&db, "empty");
	struct vrt_api api;
	start_api(&api, &db);
	char *message = vrt_fmt("database schema is version 0, this build needs %d: run vrcloudctl "
				"migrate",
				vr_db_schema_version);
	assert_refused(&api, message);
	ctl_migrate(&db);
	assert_working(&api);
	cr_assert_eq(vrt_api_stop(&api, 5), 0, "vrcloud-api did not exit 0");
	free(message);
	database_drop(&db);
}
