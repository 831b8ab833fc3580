/* Statements behind the internal API of proxies: a site credential to the
 * peer it belongs to (docs/tunnels.md). */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_sites[] = {
	/* Only the SHA-256 of a credential is stored; the credential of a
	 * revoked peer, or of one whose pairing is not done, names nothing. */
	{"site_verify", "SELECT p.id, p.org_id, p.vdc_id, p.site_uuid FROM peers p"
			" WHERE p.credential_hash = $1::bytea AND p.revoked_at IS NULL"
			" AND p.state = 'paired'"},
	{NULL, NULL},
};
