/* PostgreSQL access: one connection per thread, every statement prepared
 * when the connection is (re)made, results classified as hard error, soft
 * error (retry: serialization failure, deadlock, lost connection), or a row
 * count. No SQL text is ever built from input. */
#ifndef VRCLOUD_DB_H
#define VRCLOUD_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Return values of vr_db_exec besides a row count (>= 0). */
enum vr_db_status {
	VR_DB_HARD = -2, /* a bug or a constraint violation: do not retry */
	VR_DB_SOFT = -1, /* retry the transaction */
};

/* A named statement; the tables of every resource are prepared together. */
struct vr_db_stmt {
	const char *name;
	const char *sql;
};

struct vr_db;

/* The schema version this build works with: its newest migration
 * (generated from migrations/ by build-aux/embed-sql.sh). */
extern const int vr_db_schema_version;

/* Connect, check that the database's schema is at vr_db_schema_version
 * (the newest version vrcloudctl migrate recorded), and prepare every
 * registered statement. Returns 0, VR_EUNAVAIL (server unreachable, or
 * its schema is another version: see vr_db_schema_problem) or VR_EDB
 * (preparing failed). */
int vr_db_open(struct vr_db **out, const char *conninfo);
void vr_db_close(struct vr_db *db);
/* The calling thread's connection to conninfo, opened on first use and
 * reopened after a failure; closed when the thread exits. NULL when the
 * server cannot be reached right now. */
struct vr_db *vr_db_thread(const char *conninfo);
void vr_db_thread_close(void);

/* Whether the last connection made by this process found the database's
 * schema at another version than vr_db_schema_version; if so, message_out
 * says which and what to do ("database schema is version N, this build
 * needs M: run vrcloudctl migrate"). A connection that finds the right
 * version clears it. */
bool vr_db_schema_problem(char *message_out, size_t size);

/* Run a prepared statement. Returns the number of rows (SELECT) or rows
 * affected (INSERT/UPDATE/DELETE), or a vr_db_status. *res_out (may be
 * NULL) receives the result for the caller to PQclear; it is NULL on error.
 * A lost connection outside a transaction is reset and the statement tried
 * once more. */
int vr_db_exec(struct vr_db *db, const char *stmt, PGresult **res_out, int nparams,
	       const char *const *values);
/* SQLSTATE of the last error on this connection ("" when none). */
const char *vr_db_last_sqlstate(const struct vr_db *db);
int vr_db_begin(struct vr_db *db);
int vr_db_commit(struct vr_db *db);
void vr_db_rollback(struct vr_db *db);
/* true while the connection is up (cheap; no round trip). */
bool vr_db_connected(const struct vr_db *db);
/* Round trip to the server; 0 or VR_EUNAVAIL. */
int vr_db_ping(struct vr_db *db);

/* Result helpers: the value or "" / false / 0 when NULL. */
const char *vr_db_str(const PGresult *res, int row, int col);
bool vr_db_isnull(const PGresult *res, int row, int col);
bool vr_db_bool(const PGresult *res, int row, int col);
long long vr_db_int(const PGresult *res, int row, int col);

#endif
