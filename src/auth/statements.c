/* Statements behind logins and sessions. */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_auth[] = {
	{"login_user",
	 "SELECT u.id, u.name, u.role, u.password_hash, u.enabled, o.id, o.name"
	 " FROM users u JOIN orgs o ON o.id = u.org_id"
	 " WHERE lower(o.name) = lower($1) AND lower(u.name) = lower($2)"},
	/* Failures counted in the current window for (user, address) and for
	 * the address; $3 = window seconds. Returns scope, failures, seconds
	 * left in the window. */
	{"login_failures_get",
	 "SELECT scope, failures,"
	 " ceil(extract(epoch FROM window_start + make_interval(secs => $3::int) - now()))::int"
	 " FROM login_failures"
	 " WHERE ((scope = 'user-addr' AND subject = $1) OR (scope = 'addr' AND subject = $2))"
	 " AND window_start > now() - make_interval(secs => $3::int)"},
	{"login_failure_add",
	 "INSERT INTO login_failures AS f (scope, subject, window_start, failures)"
	 " VALUES ($1, $2, now(), 1)"
	 " ON CONFLICT (scope, subject) DO UPDATE SET"
	 " failures = CASE WHEN f.window_start > now() - make_interval(secs => $3::int)"
	 "   THEN f.failures + 1 ELSE 1 END,"
	 " window_start = CASE WHEN f.window_start > now() - make_interval(secs => $3::int)"
	 "   THEN f.window_start ELSE now() END"},
	{"login_failures_clear", "DELETE FROM login_failures WHERE scope = 'user-addr' AND subject = $1"},
	{"login_failures_expire",
	 "DELETE FROM login_failures WHERE window_start < now() - make_interval(secs => $1::int)"},
	/* $3 = absolute lifetime in seconds. */
	{"session_create",
	 "INSERT INTO sessions (token_hash, user_id, expires_at, client_addr)"
	 " VALUES ($1::bytea, $2::uuid, now() + make_interval(secs => $3::int), $4) RETURNING id"},
	/* $2 = idle timeout, $3 = how stale last_used_at may get before it is
	 * written again (seconds): reads do not write on every request. */
	{"session_lookup",
	 "SELECT s.id, u.id, u.name, u.role, o.id, o.name,"
	 " s.last_used_at < now() - make_interval(secs => $3::int)"
	 " FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = u.org_id"
	 " WHERE s.token_hash = $1::bytea AND s.expires_at > now() AND u.enabled"
	 " AND s.last_used_at > now() - make_interval(secs => $2::int)"},
	{"session_touch", "UPDATE sessions SET last_used_at = now() WHERE id = $1::uuid"},
	{"session_delete", "DELETE FROM sessions WHERE id = $1::uuid"},
	{"sessions_expire",
	 "DELETE FROM sessions WHERE expires_at < now()"
	 " OR last_used_at < now() - make_interval(secs => $1::int)"},
	{"service_lookup",
	 "SELECT id, name, kind FROM service_credentials"
	 " WHERE token_hash = $1::bytea AND revoked_at IS NULL"},
	{NULL, NULL},
};
