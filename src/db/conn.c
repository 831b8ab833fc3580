#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/statements.h"
#include "vrcloud/alloc.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

struct vr_db {
	PGconn *conn;
	char *conninfo;
	bool in_transaction;
	char sqlstate[6];
};

static void silence_notices(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

static int prepare_all(struct vr_db *db)
{
	for (size_t t = 0; vr_db_statement_tables[t]; t++) {
		for (const struct vr_db_stmt *s = vr_db_statement_tables[t]; s->name; s++) {
			PGresult *res = PQprepare(db->conn, s->name, s->sql, 0, NULL);
			ExecStatusType st = PQresultStatus(res);
			if (st != PGRES_COMMAND_OK) {
				vr_log_error("db_prepare_failed", "statement", s->name, "error",
					     PQresultErrorMessage(res));
				PQclear(res);
				return VR_EDB;
			}
			PQclear(res);
		}
	}
	return 0;
}

/* The version of the schema found on the last connection whose schema was
 * not the one this build needs, or -1 while the last one was: shared by
 * every thread, so that a mismatch is logged once and every 503 names it. */
static atomic_int schema_found = -1;

static void schema_message(char *out, size_t size, int found)
{
	if (found < vr_db_schema_version)
		snprintf(out, size,
			 "database schema is version %d, this build needs %d: run vrcloudctl "
			 "migrate",
			 found, vr_db_schema_version);
	else
		snprintf(out, size,
			 "database schema is version %d, this build needs %d: run the vrcloud "
			 "release that migrated it, or a newer one",
			 found, vr_db_schema_version);
}

/* The newest migration recorded by vrcloudctl migrate (0 on a database it
 * never migrated). Returns 0 or VR_EUNAVAIL. */
static int read_schema_version(PGconn *conn, int *version_out)
{
	PGresult *res = PQexecParams(conn,
				     "SELECT coalesce(max(version), 0) FROM schema_migrations", 0,
				     NULL, NULL, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*version_out = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	} else {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "42P01") == 0) { /* undefined_table */
			*version_out = 0;
		} else {
			vr_log_warn("db_schema_unreadable", "error",
				    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
			rc = VR_EUNAVAIL;
		}
	}
	PQclear(res);
	return rc;
}

/* Whether the database's schema is the one this build needs; logs each
 * change between a mismatch and a match once for the whole process. */
static bool schema_matches(int found)
{
	int want = found == vr_db_schema_version ? -1 : found;
	int before = atomic_exchange(&schema_found, want);
	if (want == before)
		return want == -1;
	if (want == -1) {
		char version[16];
		snprintf(version, sizeof version, "%d", found);
		vr_log_info("db_schema_ok", "version", version);
		return true;
	}
	char message[160];
	schema_message(message, sizeof message, found);
	vr_log_error("db_schema_mismatch", "message", message);
	return false;
}

bool vr_db_schema_problem(char *message_out, size_t size)
{
	int found = atomic_load(&schema_found);
	if (found < 0)
		return false;
	schema_message(message_out, size, found);
	return true;
}

static int connect_db(struct vr_db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = PQconnectdb(db->conninfo);
	db->in_transaction = false;
	if (PQstatus(db->conn) != CONNECTION_OK) {
		vr_log_warn("db_connect_failed", "error", PQerrorMessage(db->conn));
		PQfinish(db->conn);
		db->conn = NULL;
		return VR_EUNAVAIL;
	}
	PQsetNoticeReceiver(db->conn, silence_notices, NULL);
	/* Statements are prepared only against the schema they were written
	 * for; on another one every request is refused until a reconnection
	 * finds the right version (a migration while this process runs). */
	int found = 0;
	int rc = read_schema_version(db->conn, &found);
	if (!rc && !schema_matches(found))
		rc = VR_EUNAVAIL;
	if (!rc)
		rc = prepare_all(db);
	if (rc) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	return rc;
}

int vr_db_open(struct vr_db **out, const char *conninfo)
{
	struct vr_db *db = vr_calloc(1, sizeof *db);
	db->conninfo = vr_strdup(conninfo);
	int rc = connect_db(db);
	if (rc) {
		vr_db_close(db);
		*out = NULL;
		return rc;
	}
	*out = db;
	return 0;
}

void vr_db_close(struct vr_db *db)
{
	if (!db)
		return;
	if (db->conn)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db);
}

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_db_destroy(void *p)
{
	vr_db_close(p);
}

static void make_thread_key(void)
{
	pthread_key_create(&thread_key, thread_db_destroy);
}

struct vr_db *vr_db_thread(const char *conninfo)
{
	pthread_once(&thread_key_once, make_thread_key);
	struct vr_db *db = pthread_getspecific(thread_key);
	if (db && db->conn && PQstatus(db->conn) == CONNECTION_OK)
		return db;
	if (db) {
		if (connect_db(db) == 0)
			return db;
		return NULL;
	}
	if (vr_db_open(&db, conninfo))
		return NULL;
	pthread_setspecific(thread_key, db);
	return db;
}

void vr_db_thread_close(void)
{
	pthread_once(&thread_key_once, make_thread_key);
	struct vr_db *db = pthread_getspecific(thread_key);
	pthread_setspecific(thread_key, NULL);
	vr_db_close(db);
}

bool vr_db_connected(const struct vr_db *db)
{
	return db && db->conn && PQstatus(db->conn) == CONNECTION_OK;
}

static int classify(struct vr_db *db, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
		return VR_DB_SOFT;
	if (!state)
		return VR_DB_HARD;
	/* 40: serialization failure / deadlock; 08: connection; 57P0x: the
	 * server is shutting down; 53: out of resources. */
	if (strncmp(state, "40", 2) == 0 || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P0", 4) == 0 || strncmp(state, "53", 2) == 0)
		return VR_DB_SOFT;
	return VR_DB_HARD;
}

const char *vr_db_last_sqlstate(const struct vr_db *db)
{
	return db->sqlstate;
}

int vr_db_exec(struct vr_db *db, const char *stmt, PGresult **res_out, int nparams,
	       const char *const *values)
{
	if (res_out)
		*res_out = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
			if (db->in_transaction || connect_db(db) != 0) {
				db->in_transaction = false;
				return VR_DB_SOFT;
			}
		}
		PGresult *res = PQexecPrepared(db->conn, stmt, nparams, values, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			db->sqlstate[0] = '\0';
			int count = st == PGRES_TUPLES_OK ? PQntuples(res) : atoi(PQcmdTuples(res));
			if (res_out)
				*res_out = res;
			else
				PQclear(res);
			return count;
		}
		int cls = classify(db, res);
		if (cls == VR_DB_HARD)
			vr_log_error("db_error", "statement", stmt, "sqlstate", db->sqlstate,
				     "error", PQresultErrorMessage(res));
		PQclear(res);
		bool lost = PQstatus(db->conn) != CONNECTION_OK;
		if (!lost || db->in_transaction) {
			if (lost)
				db->in_transaction = false;
			return cls;
		}
	}
	return VR_DB_SOFT;
}

static int simple(struct vr_db *db, const char *sql)
{
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		if (connect_db(db) != 0)
			return VR_DB_SOFT;
	}
	PGresult *res = PQexec(db->conn, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : classify(db, res);
	PQclear(res);
	return rc;
}

int vr_db_begin(struct vr_db *db)
{
	int rc = simple(db, "BEGIN ISOLATION LEVEL REPEATABLE READ");
	db->in_transaction = rc == 0;
	return rc;
}

int vr_db_commit(struct vr_db *db)
{
	int rc = simple(db, "COMMIT");
	db->in_transaction = false;
	return rc;
}

void vr_db_rollback(struct vr_db *db)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		PQclear(PQexec(db->conn, "ROLLBACK"));
	db->in_transaction = false;
}

int vr_db_ping(struct vr_db *db)
{
	PGresult *res = NULL;
	int rc = vr_db_exec(db, "ping", &res, 0, NULL);
	PQclear(res);
	return rc == 1 ? 0 : VR_EUNAVAIL;
}

const char *vr_db_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

bool vr_db_isnull(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col);
}

bool vr_db_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

long long vr_db_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}
