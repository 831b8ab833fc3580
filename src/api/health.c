/* GET /healthz: can this API process reach PostgreSQL and Redis? */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "vrcloud/db.h"
#include "vrcloud/redis.h"

enum MHD_Result vr_api_health_get(struct vr_request *req)
{
	struct vr_db *db = vr_request_db(req);
	bool pg_ok = db && vr_db_ping(db) == 0;
	struct vr_redis *redis = vr_redis_thread(vr_server_config(req->server)->redis_uri);
	bool redis_ok = redis && vr_redis_ping(redis) == 0;
	char schema[160], text[320];
	const char *pg = pg_ok ? "ok" : "unreachable";
	if (!pg_ok && vr_db_schema_problem(schema, sizeof schema))
		pg = schema;
	snprintf(text, sizeof text, "%s\npostgresql: %s\nredis: %s\n",
		 pg_ok && redis_ok ? "ok" : "unavailable", pg, redis_ok ? "ok" : "unreachable");
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	if (!response)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	return vr_reply_response(req, pg_ok && redis_ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
				 response);
}
