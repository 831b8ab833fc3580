/* Every prepared statement of vrcloud-api, one table per resource file;
 * all are prepared on each (re)connection. */
#ifndef VRCLOUD_DB_STATEMENTS_H
#define VRCLOUD_DB_STATEMENTS_H

#include "vrcloud/db.h"

extern const struct vr_db_stmt vr_db_stmts_service[];
extern const struct vr_db_stmt vr_db_stmts_auth[];
extern const struct vr_db_stmt vr_db_stmts_tenancy[];
extern const struct vr_db_stmt vr_db_stmts_replications[];
extern const struct vr_db_stmt vr_db_stmts_tasks[];
extern const struct vr_db_stmt vr_db_stmts_servers[];
extern const struct vr_db_stmt vr_db_stmts_jobs[];
extern const struct vr_db_stmt vr_db_stmts_actions[];
extern const struct vr_db_stmt vr_db_stmts_lanes[];
extern const struct vr_db_stmt vr_db_stmts_failback[];
extern const struct vr_db_stmt vr_db_stmts_configure[];
extern const struct vr_db_stmt vr_db_stmts_cancel[];
extern const struct vr_db_stmt vr_db_stmts_sites[];
extern const struct vr_db_stmt vr_db_stmts_instances[];
extern const struct vr_db_stmt vr_db_stmts_recovery[];

/* NULL-terminated list of the tables above. */
extern const struct vr_db_stmt *const vr_db_statement_tables[];

#endif
