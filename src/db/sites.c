/* Statements behind the internal API of proxies: a site credential to the
 * peer it belongs to (docs/tunnels.md). */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_sites[] = {
	/* Only the SHA-256 of a credential is stored; the credential of a
	 * revoked peer, or of one whose pairing is not done, names nothing. */
	{"site_verify", "SELECT p.id, p.org_id, p.vdc_id, p.site_uuid FROM peers p"
			" WHERE p.credential_hash = $1::bytea AND p.revoked_at IS NULL"
			" AND p.state = 'paired'"},
	/* The replica server of a replication, for the proxies' data
	 * connections: the caller checks the peer (a site reaches only its
	 * own replications). */
	{"replication_server", "SELECT r.peer_id::text, s.id::text, s.name, s.traffic_address,"
			       " s.state FROM replications r"
			       " LEFT JOIN replica_servers s ON s.id = r.replica_server_id"
			       " WHERE r.id = $1::uuid"},
	{NULL, NULL},
};
