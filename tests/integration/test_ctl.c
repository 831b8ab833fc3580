/* vrcloudctl against a real PostgreSQL: the server named by
 * VRCLOUD_TEST_PGURI. Every test gets a fresh database vrt_ctl_<pid>,
 * created through that server and dropped afterwards. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vrcloud/password.h"

#define CTL	 VR_BUILDDIR "/vrcloudctl"
#define MAX_ARGS 32

struct run {
	int status; /* exit status, or 128 + signal */
	char *out;
	char *err;
};

static char db_name[64];
static char *db_uri; /* conninfo of the test database */
static PGconn *db;   /* a connection to it for checks */
static bool db_created;

/* ---- running vrcloudctl ---- */

static char *read_all(int fd)
{
	size_t cap = 4096, len = 0;
	char *data = malloc(cap);
	ssize_t n;

	cr_assert_not_null(data);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, data + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			data = realloc(data, cap);
			cr_assert_not_null(data);
		}
	}
	data[len] = '\0';
	return data;
}

/* an anonymous temporary file, as a descriptor */
static int temp_fd(void)
{
	FILE *f = tmpfile();

	cr_assert_not_null(f);
	int fd = dup(fileno(f));
	cr_assert_geq(fd, 0);
	fclose(f);
	return fd;
}

/* Start vrcloudctl with argv (NULL-terminated), input on stdin; do not wait. */
static pid_t spawn(int out_fd, int err_fd, const char *input, char *const *argv)
{
	int in_fd = temp_fd();

	if (input)
		cr_assert_eq(write(in_fd, input, strlen(input)), (ssize_t)strlen(input));
	lseek(in_fd, 0, SEEK_SET);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(in_fd, STDIN_FILENO);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		execv(CTL, argv);
		_exit(127);
	}
	close(in_fd);
	return pid;
}

static int wait_status(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run vrcloudctl [--database URI] args... (NULL-terminated). */
static void run_v(struct run *r, bool with_db, const char *input, va_list ap)
{
	char *argv[MAX_ARGS];
	int argc = 0, out_fd = temp_fd(), err_fd = temp_fd();
	const char *arg;

	argv[argc++] = "vrcloudctl";
	if (with_db) {
		argv[argc++] = "--database";
		argv[argc++] = db_uri;
	}
	while ((arg = va_arg(ap, const char *)) != NULL) {
		cr_assert_lt(argc, MAX_ARGS - 1);
		argv[argc++] = (char *)arg;
	}
	argv[argc] = NULL;
	r->status = wait_status(spawn(out_fd, err_fd, input, argv));
	r->out = read_all(out_fd);
	r->err = read_all(err_fd);
	close(out_fd);
	close(err_fd);
}

static struct run ctl(const char *input, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, input);
	run_v(&r, true, input, ap);
	va_end(ap);
	return r;
}

static struct run ctl_nodb(const char *input, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, input);
	run_v(&r, false, input, ap);
	va_end(ap);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

#define expect_run(r, code)                                                                        \
	cr_assert_eq((r).status, (code), "exit %d, expected %d\nstdout: %s\nstderr: %s",           \
		     (r).status, (code), (r).out, (r).err)
#define expect_in(text, needle)                                                                    \
	cr_assert_not_null(strstr((text), (needle)), "'%s' not in: %s", (needle), (text))

/* ---- the test database ---- */

static PGconn *connect_or_fail(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "cannot connect: %s", PQerrorMessage(conn));
	PQclear(PQexec(conn, "SET client_min_messages TO warning"));
	return conn;
}

static void admin_exec(const char *sql)
{
	PGconn *admin = connect_or_fail(getenv("VRCLOUD_TEST_PGURI"));
	PGresult *res = PQexec(admin, sql);

	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql,
		     PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(admin);
}

/* conninfo of base with dbname replaced */
static char *conninfo_for(const char *base, const char *dbname)
{
	char *error = NULL;
	PQconninfoOption *options = PQconninfoParse(base, &error);
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);

	cr_assert_not_null(options, "VRCLOUD_TEST_PGURI: %s", error ? error : "?");
	cr_assert_not_null(out);
	out[0] = '\0';
	for (PQconninfoOption *o = options; o->keyword; o++) {
		const char *val = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
		if (!val)
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s='", o->keyword);
		for (const char *v = val; *v && len + 4 < cap; v++) {
			if (*v == '\'' || *v == '\\')
				out[len++] = '\\';
			out[len++] = *v;
		}
		len += (size_t)snprintf(out + len, cap - len, "' ");
		cr_assert_lt(len, cap - 1);
	}
	PQconninfoFree(options);
	return out;
}

/* Called first by every test that needs PostgreSQL. */
static void need_db(void)
{
	const char *base = getenv("VRCLOUD_TEST_PGURI");
	const char *ci = getenv("CI");
	char sql[128];

	if (!base || !base[0]) {
		if (ci && strcmp(ci, "true") == 0)
			cr_assert_fail(
				"VRCLOUD_TEST_PGURI is not set, and CI=true requires this test");
		cr_skip_test("VRCLOUD_TEST_PGURI is not set (run through tests/with-services.sh)");
	}
	snprintf(db_name, sizeof db_name, "vrt_ctl_%ld", (long)getpid());
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
	admin_exec(sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", db_name);
	admin_exec(sql);
	db_created = true;
	db_uri = conninfo_for(base, db_name);
	db = connect_or_fail(db_uri);
}

static void drop_db(void)
{
	char sql[128];

	if (db)
		PQfinish(db);
	db = NULL;
	free(db_uri);
	db_uri = NULL;
	if (db_created) {
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
		admin_exec(sql);
		db_created = false;
	}
}

/* First column of the first row of a query on the test database, or NULL
 * when there is no row (the caller frees). */
static char *query(const char *sql, const char *param)
{
	const char *params[] = {param};
	PGresult *res = PQexecParams(db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
	char *value = NULL;

	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
		     PQresultErrorMessage(res));
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		value = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

static void expect_query(const char *sql, const char *param, const char *expected)
{
	char *value = query(sql, param);

	cr_assert_not_null(value, "no row: %s", sql);
	cr_assert_str_eq(value, expected, "%s", sql);
	free(value);
}

static void exec_sql(const char *sql)
{
	PGresult *res = PQexec(db, sql);

	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql,
		     PQresultErrorMessage(res));
	PQclear(res);
}

static void migrate(void)
{
	struct run r = ctl(NULL, "migrate", NULL);
	expect_run(r, 0);
	run_free(&r);
}

/* value of "key=" in key=value output (the caller frees) */
static char *kv(const char *text, const char *key)
{
	size_t klen = strlen(key);

	const char *line = text;
	while (*line) {
		size_t len = strcspn(line, "\n");
		if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=')
			return strndup(line + klen + 1, len - klen - 1);
		line += len;
		if (*line)
			line++;
	}
	cr_assert_fail("no %s= in: %s", key, text);
	return NULL;
}

/* text with every run of spaces made one (the caller frees) */
static char *squeeze(const char *text)
{
	char *out = strdup(text), *o = out;

	cr_assert_not_null(out);
	for (const char *t = text; *t; t++)
		if (*t != ' ' || o == out || o[-1] != ' ')
			*o++ = *t;
	*o = '\0';
	return out;
}

TestSuite(ctl, .fini = drop_db);

/* ---- migrations ---- */

Test(ctl, migrate_twice_is_idempotent)
{
	need_db();
	struct run status = ctl(NULL, "migrate", "--status", NULL);
	expect_run(status, 0);
	expect_in(status.out, "current version: 0\n");
	char *latest = strstr(status.out, "latest version: ");
	cr_assert_not_null(latest);
	int n = atoi(latest + strlen("latest version: "));
	cr_assert_gt(n, 0);

	char expected[64];
	snprintf(expected, sizeof expected, "database is up to date at version %d\n", n);
	struct run first = ctl(NULL, "migrate", NULL);
	expect_run(first, 0);
	expect_in(first.out, "applied migration 1 (");
	expect_in(first.out, expected);

	struct run second = ctl(NULL, "migrate", NULL);
	expect_run(second, 0);
	cr_assert_str_eq(second.out, expected);
	cr_assert_null(strstr(second.out, "applied"));

	/* one row per migration applied (numbers may skip), the latest last */
	int applied = 0;
	for (const char *p = first.out; (p = strstr(p, "applied migration ")) != NULL; p++)
		applied++;
	char count[16], version[16];
	snprintf(count, sizeof count, "%d", applied);
	snprintf(version, sizeof version, "%d", n);
	expect_query("SELECT count(*) FROM schema_migrations", NULL, count);
	expect_query("SELECT max(version) FROM schema_migrations", NULL, version);
	expect_query("SELECT count(*) FROM orgs WHERE is_system", NULL, "1");

	struct run after = ctl(NULL, "migrate", "--status", NULL);
	expect_run(after, 0);
	expect_in(after.out, "the database is up to date");
	run_free(&status);
	run_free(&first);
	run_free(&second);
	run_free(&after);
}

Test(ctl, concurrent_migrations_wait_for_each_other)
{
	need_db();
	char *argv[] = {"vrcloudctl", "--database", db_uri, "migrate", NULL};
	int out[2] = {temp_fd(), temp_fd()}, err[2] = {temp_fd(), temp_fd()};
	pid_t a = spawn(out[0], err[0], NULL, argv);
	pid_t b = spawn(out[1], err[1], NULL, argv);
	int sa = wait_status(a), sb = wait_status(b);

	for (int i = 0; i < 2; i++) {
		char *o = read_all(out[i]), *e = read_all(err[i]);
		cr_expect_eq(i == 0 ? sa : sb, 0, "stdout: %s\nstderr: %s", o, e);
		free(o);
		free(e);
		close(out[i]);
		close(err[i]);
	}
	cr_assert_eq(sa, 0);
	cr_assert_eq(sb, 0);
	/* each migration recorded once, the schema created once */
	expect_query("SELECT count(*) = count(DISTINCT version) FROM schema_migrations", NULL, "t");
	expect_query("SELECT count(*) FROM orgs", NULL, "1");
}

Test(ctl, refuses_a_newer_database)
{
	need_db();
	migrate();
	exec_sql("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')");
	struct run r = ctl(NULL, "migrate", NULL);
	expect_run(r, 1);
	expect_in(r.err, "version 9999");
	expect_in(r.err, "newer than this vrcloudctl");
	cr_assert_str_eq(r.out, "");
	run_free(&r);
}

Test(ctl, commands_before_migrate_say_so)
{
	need_db();
	struct run r = ctl(NULL, "org", "list", NULL);
	expect_run(r, 1);
	expect_in(r.err, "vrcloudctl migrate");
	run_free(&r);
}

/* ---- orgs, VDCs, users ---- */

Test(ctl, org_vdc_user_add_and_list)
{
	need_db();
	migrate();
	struct run r = ctl(NULL, "org", "add", "acme", "--full-name", "Acme Corp", "--description",
			   "a tenant", NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT full_name || '/' || description FROM orgs WHERE name = 'acme'", NULL,
		     "Acme Corp/a tenant");

	r = ctl(NULL, "vdc", "add", "ACME", "vdc-one", "--failover", "off", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl("Pa55 word\n", "user", "add", "acme", "alice", "--role", "org-admin",
		"--password-stdin", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl("x\n", "user", "add", "acme", "bob", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 0);
	run_free(&r);

	r = ctl(NULL, "org", "list", NULL);
	expect_run(r, 0);
	expect_in(r.out, "ID");
	expect_in(r.out, "FULL NAME");
	/* System first, then acme with one VDC and two users */
	const char *sys = strstr(r.out, "System"), *acme = strstr(r.out, "acme");
	cr_assert(sys && acme && sys < acme, "%s", r.out);
	char *rows = squeeze(r.out);
	expect_in(rows, " acme Acme Corp no 1 2\n");
	free(rows);
	run_free(&r);

	r = ctl(NULL, "vdc", "list", "acme", NULL);
	expect_run(r, 0);
	rows = squeeze(r.out);
	expect_in(rows, " acme vdc-one on off on on\n");
	free(rows);
	run_free(&r);

	r = ctl(NULL, "vdc", "set", "acme", "VDC-ONE", "--failover", "on", "--replication", "off",
		NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT replication_enabled::text || failover_enabled::text || "
		     "test_failover_enabled::text || planned_migration_enabled::text FROM vdcs",
		     NULL, "falsetruetruetrue");

	r = ctl(NULL, "user", "list", "acme", NULL);
	expect_run(r, 0);
	expect_in(r.out, "alice");
	expect_in(r.out, "org-admin");
	expect_in(r.out, "org-user");
	cr_assert_null(strstr(r.out, "System"));
	run_free(&r);

	r = ctl(NULL, "user", "disable", "acme", "Alice", NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT enabled::text FROM users WHERE name = 'alice'", NULL, "false");
	r = ctl(NULL, "user", "enable", "acme", "alice", NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT enabled::text FROM users WHERE name = 'alice'", NULL, "true");
}

Test(ctl, duplicates_and_bad_names)
{
	need_db();
	migrate();
	struct run r = ctl(NULL, "org", "add", "acme", NULL);
	expect_run(r, 0);
	run_free(&r);

	r = ctl(NULL, "org", "add", "ACME", NULL);
	expect_run(r, 1);
	expect_in(r.err, "org 'ACME' already exists");
	run_free(&r);

	r = ctl(NULL, "org", "add", "bad name", NULL);
	expect_run(r, 2);
	expect_in(r.err, "invalid org name 'bad name'");
	run_free(&r);

	r = ctl(NULL, "vdc", "add", "acme", "v", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl(NULL, "vdc", "add", "acme", "V", NULL);
	expect_run(r, 1);
	expect_in(r.err, "already has a VDC");
	run_free(&r);

	r = ctl(NULL, "vdc", "add", "nosuch", "v", NULL);
	expect_run(r, 1);
	expect_in(r.err, "there is no org 'nosuch'");
	run_free(&r);

	r = ctl(NULL, "vdc", "set", "acme", "nosuch", "--failover", "off", NULL);
	expect_run(r, 1);
	expect_in(r.err, "has no VDC 'nosuch'");
	run_free(&r);

	r = ctl("pw\n", "user", "add", "acme", "carol", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl("pw\n", "user", "add", "acme", "CAROL", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 1);
	expect_in(r.err, "already has a user 'CAROL'");
	run_free(&r);
	r = ctl("pw\n", "user", "add", "acme", "-x", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 2);
	run_free(&r);
	expect_query("SELECT count(*) FROM users", NULL, "1");
	expect_query("SELECT count(*) FROM orgs", NULL, "2");
}

Test(ctl, bad_usage_exits_2)
{
	need_db();
	migrate();
	struct run r = ctl(NULL, "org", "add", "acme", NULL);
	expect_run(r, 0);
	run_free(&r);

	r = ctl("pw\n", "user", "add", "acme", "dave", "--role", "admin", "--password-stdin", NULL);
	expect_run(r, 2);
	expect_in(r.err, "unknown role 'admin'");
	run_free(&r);
	r = ctl("pw\n", "user", "add", "acme", "dave", "--role", "org-user", NULL);
	expect_run(r, 2);
	expect_in(r.err, "--password-stdin");
	run_free(&r);
	r = ctl("\n", "user", "add", "acme", "dave", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 2);
	expect_in(r.err, "empty");
	run_free(&r);
	r = ctl(NULL, "vdc", "add", "acme", "v", "--failover", "maybe", NULL);
	expect_run(r, 2);
	run_free(&r);
	r = ctl(NULL, "vdc", "set", "acme", "v", NULL);
	expect_run(r, 2);
	run_free(&r);
	expect_query("SELECT count(*) FROM users", NULL, "0");
	expect_query("SELECT count(*) FROM vdcs", NULL, "0");
}

Test(ctl, sysadmins_only_in_system)
{
	need_db();
	migrate();
	struct run r = ctl(NULL, "org", "add", "acme", NULL);
	expect_run(r, 0);
	run_free(&r);

	r = ctl("pw\n", "user", "add", "acme", "root", "--role", "sysadmin", "--password-stdin",
		NULL);
	expect_run(r, 1);
	expect_in(r.err, "sysadmin exists only in org System");
	run_free(&r);
	r = ctl("pw\n", "user", "add", "system", "eve", "--role", "org-admin", "--password-stdin",
		NULL);
	expect_run(r, 1);
	expect_in(r.err, "org System holds only sysadmins");
	run_free(&r);
	expect_query("SELECT count(*) FROM users", NULL, "0");

	r = ctl("root pw\n", "sysadmin", "add", "root", "--password-stdin", NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT o.name || '/' || u.role FROM users u JOIN orgs o ON o.id = u.org_id",
		     NULL, "System/sysadmin");
}

Test(ctl, passwords_stored_as_scrypt_only)
{
	need_db();
	migrate();
	const char *password = "Very-Secret-Password-42";
	char input[64];
	snprintf(input, sizeof input, "%s\n", password);

	struct run r = ctl(NULL, "org", "add", "acme", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl(input, "user", "add", "acme", "alice", "--role", "org-admin", "--password-stdin",
		NULL);
	expect_run(r, 0);
	cr_assert_null(strstr(r.out, password));
	cr_assert_null(strstr(r.err, password));
	run_free(&r);

	char *hash = query("SELECT password_hash FROM users WHERE name = 'alice'", NULL);
	cr_assert_not_null(hash);
	cr_assert_eq(strncmp(hash, "$scrypt$ln=15,r=8,p=1$", 22), 0, "%s", hash);
	cr_assert_null(strstr(hash, password));
	cr_assert(vr_password_verify(hash, password));
	cr_assert_not(vr_password_verify(hash, "Very-Secret-Password-43"));
	free(hash);
	/* nowhere else in the row either */
	expect_query("SELECT count(*) FROM users u WHERE position($1 in u::text) > 0", password,
		     "0");
}

Test(ctl, passwd_ends_sessions)
{
	need_db();
	migrate();
	struct run r = ctl(NULL, "org", "add", "acme", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl("old-pw\n", "user", "add", "acme", "alice", "--role", "org-user",
		"--password-stdin", NULL);
	expect_run(r, 0);
	run_free(&r);
	r = ctl("pw\n", "user", "add", "acme", "bob", "--role", "org-user", "--password-stdin",
		NULL);
	expect_run(r, 0);
	run_free(&r);
	for (int i = 0; i < 3; i++)
		exec_sql(
			"INSERT INTO sessions (token_hash, user_id, expires_at)"
			" SELECT sha256(gen_random_uuid()::text::bytea), id, now() + interval '1 hour'"
			" FROM users");
	expect_query("SELECT count(*) FROM sessions", NULL, "6");

	r = ctl("new-pw\n", "user", "passwd", "acme", "ALICE", "--password-stdin", NULL);
	expect_run(r, 0);
	expect_in(r.out, "ended 3 session(s)");
	run_free(&r);
	/* alice's sessions are gone, bob's stay */
	expect_query("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
		     " WHERE u.name = 'alice'",
		     NULL, "0");
	expect_query("SELECT count(*) FROM sessions", NULL, "3");
	char *hash = query("SELECT password_hash FROM users WHERE name = 'alice'", NULL);
	cr_assert(vr_password_verify(hash, "new-pw"));
	cr_assert_not(vr_password_verify(hash, "old-pw"));
	free(hash);

	r = ctl("x\n", "user", "passwd", "acme", "nobody", "--password-stdin", NULL);
	expect_run(r, 1);
	expect_in(r.err, "has no user 'nobody'");
	run_free(&r);

	/* disabling ends the sessions too */
	r = ctl(NULL, "user", "disable", "acme", "bob", NULL);
	expect_run(r, 0);
	run_free(&r);
	expect_query("SELECT count(*) FROM sessions", NULL, "0");
}

Test(ctl, seed_demo_is_idempotent)
{
	need_db();
	migrate();
	struct run first = ctl(NULL, "seed-demo", NULL);
	expect_run(first, 0);
	char *org_id = kv(first.out, "org_id"), *vdc_id = kv(first.out, "vdc_id");
	char *user = kv(first.out, "user"), *password = kv(first.out, "password");
	cr_assert_str_eq(user, "demo-admin@demo");
	cr_assert_eq(strlen(password), 20, "%s", password);
	cr_assert_eq(strlen(org_id), 36);
	cr_assert_eq(strlen(vdc_id), 36);
	expect_query("SELECT id::text FROM orgs WHERE name = 'demo'", NULL, org_id);
	expect_query("SELECT replication_enabled AND failover_enabled AND test_failover_enabled"
		     " AND planned_migration_enabled FROM vdcs WHERE id = $1",
		     vdc_id, "t");
	char *hash = query("SELECT password_hash FROM users WHERE name = 'demo-admin'", NULL);
	cr_assert(vr_password_verify(hash, password));
	free(hash);

	/* again: same objects, password kept */
	exec_sql("UPDATE vdcs SET failover_enabled = false");
	struct run second = ctl(NULL, "seed-demo", NULL);
	expect_run(second, 0);
	char *org_id2 = kv(second.out, "org_id"), *vdc_id2 = kv(second.out, "vdc_id");
	char *password2 = kv(second.out, "password");
	cr_assert_str_eq(org_id2, org_id);
	cr_assert_str_eq(vdc_id2, vdc_id);
	cr_assert_str_eq(password2, "(unchanged)");
	hash = query("SELECT password_hash FROM users WHERE name = 'demo-admin'", NULL);
	cr_assert(vr_password_verify(hash, password));
	free(hash);
	expect_query("SELECT count(*) FROM orgs", NULL, "2");
	expect_query("SELECT count(*) FROM vdcs", NULL, "1");
	expect_query("SELECT count(*) FROM users", NULL, "1");
	expect_query("SELECT failover_enabled::text FROM vdcs", NULL, "true");

	/* with a password: reset, printed quoted for the shell */
	struct run third = ctl("new pass\n", "seed-demo", "--password-stdin", NULL);
	expect_run(third, 0);
	expect_in(third.out, "password='new pass'\n");
	hash = query("SELECT password_hash FROM users WHERE name = 'demo-admin'", NULL);
	cr_assert(vr_password_verify(hash, "new pass"));
	free(hash);

	/* other names; System refused */
	struct run other = ctl(NULL, "seed-demo", "--org", "trial", "--vdc", "t-vdc", "--user",
			       "t-admin", NULL);
	expect_run(other, 0);
	expect_in(other.out, "user=t-admin@trial\n");
	struct run sys = ctl(NULL, "seed-demo", "--org", "System", NULL);
	expect_run(sys, 2);
	expect_query("SELECT count(*) FROM users", NULL, "2");

	free(org_id);
	free(vdc_id);
	free(user);
	free(password);
	free(org_id2);
	free(vdc_id2);
	free(password2);
	run_free(&first);
	run_free(&second);
	run_free(&third);
	run_free(&other);
	run_free(&sys);
}

Test(ctl, seed_demo_output_can_be_sourced)
{
	need_db();
	migrate();
	struct run r = ctl("it's \"quoted\" $HOME\n", "seed-demo", "--password-stdin", NULL);
	expect_run(r, 0);

	/* feed the lines to sh and print the password back */
	char path[64];
	snprintf(path, sizeof path, "/tmp/vrt-ctl-seed-%ld.sh", (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, r.out, strlen(r.out)), (ssize_t)strlen(r.out));
	close(fd);
	char command[256];
	snprintf(command, sizeof command, ". %s && printf '%%s|%%s' \"$password\" \"$user\"", path);
	FILE *p = popen(command, "r");
	cr_assert_not_null(p);
	char got[256] = "";
	cr_assert_not_null(fgets(got, sizeof got, p));
	cr_assert_eq(pclose(p), 0);
	unlink(path);
	cr_assert_str_eq(got, "it's \"quoted\" $HOME|demo-admin@demo");
	run_free(&r);
}

Test(ctl, peer_and_replication_add_record_a_task)
{
	need_db();
	migrate();
	struct run seed = ctl(NULL, "seed-demo", NULL);
	expect_run(seed, 0);
	struct run peer = ctl(NULL, "peer", "add", "demo", "demo-vdc", "--site-name", "Site A",
			      NULL);
	expect_run(peer, 0);
	char *peer_id = kv(peer.out, "peer_id");
	cr_assert_eq(strlen(peer_id), 36);

	struct run rep = ctl(NULL, "replication", "add", "demo", "demo-vdc", "web01", "--peer",
			     peer_id, "--disks", "10G,512M", "--rpo", "15", NULL);
	expect_run(rep, 0);
	char *rep_id = kv(rep.out, "replication_id"), *task_id = kv(rep.out, "task_id");
	expect_query("SELECT rpo_minutes || ' ' || recovery_state || ' ' || test_recovery_state"
		     " FROM replications WHERE id = $1",
		     rep_id, "15 notStarted none");
	expect_query("SELECT string_agg(device_key || ':' || size_bytes, ',' ORDER BY device_key)"
		     " FROM disks WHERE replication_id = $1",
		     rep_id, "2000:10737418240,2001:536870912");
	char *task = query("SELECT status || ' ' || progress || ' ' || owner_id FROM tasks"
			   " WHERE id = $1",
			   task_id);
	char *expected = NULL;
	cr_assert_gt(asprintf(&expected, "success 100 %s", rep_id), 0);
	cr_assert_str_eq(task, expected);

	/* a peer of another VDC, a bad size and a bad RPO change nothing */
	struct run wrong = ctl(NULL, "replication", "add", "demo", "no-such-vdc", "db01", "--peer",
			       peer_id, "--disks", "1G", NULL);
	expect_run(wrong, 1);
	struct run zero = ctl(NULL, "replication", "add", "demo", "demo-vdc", "db01", "--peer",
			      peer_id, "--disks", "0", NULL);
	expect_run(zero, 2);
	struct run rpo = ctl(NULL, "replication", "add", "demo", "demo-vdc", "db01", "--peer",
			     peer_id, "--disks", "1G", "--rpo", "0", NULL);
	expect_run(rpo, 2);
	expect_query("SELECT count(*) FROM replications", NULL, "1");
	expect_query("SELECT count(*) FROM tasks", NULL, "1");

	struct run list = ctl(NULL, "replication", "list", "demo", NULL);
	expect_run(list, 0);
	expect_in(list.out, "web01");
	free(task);
	free(expected);
	free(peer_id);
	free(rep_id);
	free(task_id);
	run_free(&seed);
	run_free(&peer);
	run_free(&rep);
	run_free(&wrong);
	run_free(&zero);
	run_free(&rpo);
	run_free(&list);
}

Test(ctl, service_tokens_are_shown_once_and_stored_hashed)
{
	need_db();
	migrate();
	struct run add = ctl(NULL, "service", "add", "worker-1", "--kind", "worker", NULL);
	expect_run(add, 0);
	char *token = kv(add.out, "token");
	cr_assert_eq(strlen(token), 44, "%s", token);
	/* only the SHA-256 of the token is in the database */
	expect_query("SELECT count(*) FROM service_credentials"
		     " WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND revoked_at IS NULL",
		     token, "1");
	char *texts = query("SELECT count(*) FROM service_credentials"
			    " WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0",
			    token);
	cr_assert_str_eq(texts, "0");

	struct run again = ctl(NULL, "service", "add", "worker-1", "--kind", "worker", NULL);
	expect_run(again, 1);
	struct run kind = ctl(NULL, "service", "add", "worker-2", "--kind", "robot", NULL);
	expect_run(kind, 2);
	struct run revoke = ctl(NULL, "service", "revoke", "worker-1", NULL);
	expect_run(revoke, 0);
	expect_query("SELECT count(*) FROM service_credentials WHERE revoked_at IS NOT NULL",
		     NULL, "1");
	struct run missing = ctl(NULL, "service", "revoke", "nobody", NULL);
	expect_run(missing, 1);
	struct run list = ctl(NULL, "service", "list", NULL);
	expect_run(list, 0);
	expect_in(list.out, "revoked");
	free(token);
	free(texts);
	run_free(&add);
	run_free(&again);
	run_free(&kind);
	run_free(&revoke);
	run_free(&missing);
	run_free(&list);
}

Test(ctl, vapp_list_and_show)
{
	need_db();
	migrate();
	struct run seed = ctl(NULL, "seed-demo", NULL);
	expect_run(seed, 0);
	struct run peer = ctl(NULL, "peer", "add", "demo", "demo-vdc", "--site-name", "Site A",
			      NULL);
	expect_run(peer, 0);
	char *peer_id = kv(peer.out, "peer_id");
	struct run rep = ctl(NULL, "replication", "add", "demo", "demo-vdc", "app01", "--peer",
			     peer_id, "--disks", "1G", NULL);
	expect_run(rep, 0);
	char *rep_id = kv(rep.out, "replication_id");
	char *vapp = query("INSERT INTO vapps (org_id, vdc_id, replication_id, kind, name)"
			   " SELECT org_id, vdc_id, id, 'recovered', name FROM replications"
			   " WHERE id = $1 RETURNING id",
			   rep_id);
	cr_assert_not_null(vapp);
	exec_sql("INSERT INTO vapps (org_id, vdc_id, kind, name, deleted_at)"
		 " SELECT org_id, vdc_id, 'test', 'gone-test', now() FROM replications");

	struct run list = ctl(NULL, "vapp", "list", "demo", NULL);
	expect_run(list, 0);
	expect_in(list.out, vapp);
	cr_assert_null(strstr(list.out, "gone-test"), "%s", list.out);
	struct run all = ctl(NULL, "vapp", "list", "--all", NULL);
	expect_run(all, 0);
	expect_in(all.out, "gone-test");
	struct run show = ctl(NULL, "vapp", "show", vapp, NULL);
	expect_run(show, 0);
	expect_in(show.out, "kind=recovered\n");
	expect_in(show.out, "replication=app01\n");
	struct run bad = ctl(NULL, "vapp", "show", "not-a-uuid", NULL);
	expect_run(bad, 2);
	struct run missing = ctl(NULL, "vapp", "show", "4fffffff-ffff-4fff-bfff-ffffffffffff", NULL);
	expect_run(missing, 1);
	free(peer_id);
	free(rep_id);
	free(vapp);
	run_free(&seed);
	run_free(&peer);
	run_free(&rep);
	run_free(&list);
	run_free(&all);
	run_free(&show);
	run_free(&bad);
	run_free(&missing);
}

Test(ctl, instance_list_pin_and_unpin)
{
	need_db();
	migrate();
	struct run seed = ctl(NULL, "seed-demo", NULL);
	expect_run(seed, 0);
	struct run peer = ctl(NULL, "peer", "add", "demo", "demo-vdc", "--site-name", "Site A",
			      NULL);
	expect_run(peer, 0);
	char *peer_id = kv(peer.out, "peer_id");
	struct run rep = ctl(NULL, "replication", "add", "demo", "demo-vdc", "db02", "--peer",
			     peer_id, "--disks", "1G", NULL);
	expect_run(rep, 0);
	char *rep_id = kv(rep.out, "replication_id");
	const char *old = "60000000-0000-4000-8000-000000000001";
	const char *new = "60000000-0000-4000-8000-000000000002";
	char *sql = NULL;
	cr_assert_gt(asprintf(&sql,
			      "INSERT INTO instances (id, replication_id, seq, transfer_start_time,"
			      " transfer_bytes) VALUES"
			      " ('%s', '%s', 1, '2026-01-02 03:04:05+00', 4096),"
			      " ('%s', '%s', 2, '2026-01-02 04:04:05+00', 8192)",
			      old, rep_id, new, rep_id),
		     0);
	exec_sql(sql);
	free(sql);
	/* a queued test failover to the old instance holds it */
	cr_assert_gt(asprintf(&sql,
			      "WITH t AS (INSERT INTO tasks (org_id, owner_kind, owner_id,"
			      " operation, operation_name) SELECT org_id, 'replication', id,"
			      " 'Test failover', 'hcsTestFailover' FROM replications WHERE id = '%s'"
			      " RETURNING id, org_id)"
			      " INSERT INTO jobs (task_id, org_id, lane, action, params)"
			      " SELECT id, org_id, 'replication:%s', 'testFailover',"
			      " '{\"InstanceId\": \"%s\"}' FROM t",
			      rep_id, rep_id, old),
		     0);
	exec_sql(sql);
	free(sql);

	struct run list = ctl(NULL, "instance", "list", rep_id, NULL);
	expect_run(list, 0);
	char *table = squeeze(list.out);
	expect_in(table, "ID SEQ POINT IN TIME BYTES PINNED HELD BY JOB\n");
	/* newest first */
	char *row = NULL;
	cr_assert_gt(asprintf(&row, "%s 2 2026-01-02T04:04:05.000Z 8192 no\n", new), 0);
	expect_in(table, row);
	cr_assert_lt(strstr(table, new), strstr(table, old), "%s", table);
	free(row);
	cr_assert_gt(asprintf(&row, "%s 1 2026-01-02T03:04:05.000Z 4096 no testFailover queued\n",
			      old),
		     0);
	expect_in(table, row);
	free(row);
	free(table);

	struct run pin = ctl(NULL, "instance", "pin", rep_id, old, NULL);
	expect_run(pin, 0);
	expect_in(pin.out, "pinned instance");
	expect_query("SELECT string_agg(seq || ':' || pinned, ',' ORDER BY seq) FROM instances",
		     NULL, "1:true,2:false");
	/* pinning twice is fine */
	struct run again = ctl(NULL, "instance", "pin", rep_id, old, NULL);
	expect_run(again, 0);
	struct run pinned = ctl(NULL, "instance", "list", rep_id, NULL);
	expect_run(pinned, 0);
	table = squeeze(pinned.out);
	cr_assert_gt(asprintf(&row, "%s 1 2026-01-02T03:04:05.000Z 4096 yes testFailover", old), 0);
	expect_in(table, row);
	free(row);
	free(table);
	struct run unpin = ctl(NULL, "instance", "unpin", rep_id, old, NULL);
	expect_run(unpin, 0);
	expect_in(unpin.out, "unpinned instance");
	expect_query("SELECT count(*) FROM instances WHERE pinned", NULL, "0");

	/* unknown ids fail (1), malformed ones are usage errors (2), and
	 * nothing changes */
	const char *nobody = "4fffffff-ffff-4fff-bfff-ffffffffffff";
	struct run no_rep = ctl(NULL, "instance", "pin", nobody, old, NULL);
	expect_run(no_rep, 1);
	expect_in(no_rep.err, "there is no replication");
	struct run no_inst = ctl(NULL, "instance", "pin", rep_id, nobody, NULL);
	expect_run(no_inst, 1);
	expect_in(no_inst.err, "has no instance");
	struct run list_none = ctl(NULL, "instance", "list", nobody, NULL);
	expect_run(list_none, 1);
	struct run bad = ctl(NULL, "instance", "unpin", rep_id, "not-a-uuid", NULL);
	expect_run(bad, 2);
	struct run bad_list = ctl(NULL, "instance", "list", "not-a-uuid", NULL);
	expect_run(bad_list, 2);
	struct run missing = ctl(NULL, "instance", "pin", rep_id, NULL);
	expect_run(missing, 2);
	expect_query("SELECT count(*) FROM instances WHERE pinned", NULL, "0");
	free(peer_id);
	free(rep_id);
	run_free(&seed);
	run_free(&peer);
	run_free(&rep);
	run_free(&list);
	run_free(&pin);
	run_free(&again);
	run_free(&pinned);
	run_free(&unpin);
	run_free(&no_rep);
	run_free(&no_inst);
	run_free(&list_none);
	run_free(&bad);
	run_free(&bad_list);
	run_free(&missing);
}

/* ---- without a database ---- */

Test(ctl_cli, help_everywhere)
{
	const char *commands[][3] = {
		{"--help", NULL, NULL},	       {"migrate", "--help", NULL},
		{"org", "--help", NULL},       {"org", "add", "--help"},
		{"org", "list", "--help"},     {"vdc", "--help", NULL},
		{"vdc", "add", "--help"},      {"vdc", "set", "--help"},
		{"vdc", "list", "--help"},     {"user", "--help", NULL},
		{"user", "add", "--help"},     {"user", "passwd", "--help"},
		{"user", "list", "--help"},    {"user", "disable", "--help"},
		{"user", "enable", "--help"},  {"sysadmin", "--help", NULL},
		{"sysadmin", "add", "--help"}, {"seed-demo", "--help", NULL},
		{"instance", "--help", NULL},  {"instance", "list", "--help"},
		{"instance", "pin", "--help"}, {"instance", "unpin", "--help"},
	};

	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		struct run r = ctl_nodb(NULL, commands[i][0], commands[i][1], commands[i][2], NULL);
		expect_run(r, 0);
		expect_in(r.out, "Usage: vrcloudctl");
		cr_assert_str_eq(r.err, "");
		run_free(&r);
	}
	struct run v = ctl_nodb(NULL, "--version", NULL);
	expect_run(v, 0);
	expect_in(v.out, "vrcloudctl (vrcloud) ");
	run_free(&v);
}

Test(ctl_cli, usage_and_connection_errors)
{
	struct run r = ctl_nodb(NULL, NULL);
	expect_run(r, 2);
	run_free(&r);
	r = ctl_nodb(NULL, "frobnicate", NULL);
	expect_run(r, 2);
	expect_in(r.err, "unknown command 'frobnicate'");
	run_free(&r);
	r = ctl_nodb(NULL, "org", "remove", NULL);
	expect_run(r, 2);
	expect_in(r.err, "vrcloudctl org --help");
	run_free(&r);
	r = ctl_nodb(NULL, "org", "add", NULL);
	expect_run(r, 2);
	expect_in(r.err, "Usage: vrcloudctl org add NAME");
	run_free(&r);

	/* no database anywhere */
	unsetenv("VRCLOUD_PGURI");
	r = ctl_nodb(NULL, "org", "list", NULL);
	expect_run(r, 3);
	expect_in(r.err, "--database");
	run_free(&r);
	/* nothing listens on port 1 */
	r = ctl_nodb(NULL, "--database", "postgresql://127.0.0.1:1/x?connect_timeout=5", "migrate",
		     NULL);
	expect_run(r, 3);
	expect_in(r.err, "cannot connect to the database given by --database");
	run_free(&r);
}
