/* Statements behind the internal API of replica servers (workers). */
#include "db/statements.h"

const struct vr_db_stmt vr_db_stmts_servers[] = {
	/* Register by name: the same name gets the same id back, unless the
	 * provider unregistered that server (no row then). */
	{"server_register",
	 "INSERT INTO replica_servers (name, traffic_address, state, last_heartbeat)"
	 " VALUES ($1, $2, 'connected', now())"
	 " ON CONFLICT (name) DO UPDATE SET traffic_address = EXCLUDED.traffic_address,"
	 " state = 'connected', last_heartbeat = now()"
	 " WHERE replica_servers.state <> 'unregistered'"
	 " RETURNING id, name, traffic_address"},
	{"server_heartbeat",
	 "UPDATE replica_servers SET last_heartbeat = now(), state = 'connected'"
	 " WHERE id = $1::uuid AND name = $2 AND state <> 'unregistered' RETURNING id"},
	/* $1 id, $2 name, $3 bytes in, $4 bytes out, $5 transfer errors since
	 * the last heartbeat. */
	{"server_heartbeat_counts",
	 "UPDATE replica_servers SET last_heartbeat = now(), state = 'connected',"
	 " bytes_in = bytes_in + $3::bigint, bytes_out = bytes_out + $4::bigint,"
	 " transfer_errors = transfer_errors + $5::bigint"
	 " WHERE id = $1::uuid AND name = $2 AND state <> 'unregistered' RETURNING id"},
	{"server_leave",
	 "UPDATE replica_servers SET state = 'disconnected'"
	 " WHERE id = $1::uuid AND name = $2 AND state <> 'unregistered' RETURNING id"},
	{NULL, NULL},
};
