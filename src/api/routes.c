/* The one route table of vrcloud-api. Trailing-slash and client
 * compatibility aliases live here and nowhere else. Keep in step with
 * api-spec/routes.txt and api-spec/openapi.yaml. */
#include "api/api.h"

#define SMALL_BODY (64 * 1024)

const struct vr_route vr_api_routes[] = {
	{"GET", "/api/versions", vr_api_versions_get, 0, VR_ROUTE_PUBLIC | VR_ROUTE_NO_NEGOTIATE},
	{"GET", "/healthz", vr_api_health_get, 0, VR_ROUTE_PUBLIC | VR_ROUTE_NO_NEGOTIATE},
	{"GET", "/metrics", vr_api_metrics_get, 0, VR_ROUTE_PUBLIC | VR_ROUTE_NO_NEGOTIATE},

	/* Sessions. POST /api/sessions ignores any (form-encoded) body. */
	{"POST", "/api/sessions", vr_api_sessions_post, SMALL_BODY, VR_ROUTE_PUBLIC},
	{"GET", "/api/session", vr_api_session_get, 0, VR_ROUTE_SLASH},
	{"DELETE", "/api/session", vr_api_session_delete, SMALL_BODY, VR_ROUTE_SLASH},

	/* Organizations and their listings (U1-U3). */
	{"GET", "/api/org", vr_api_orgs_get, 0, VR_ROUTE_SLASH},
	{"GET", "/api/org/{id}", vr_api_org_get, 0, 0},
	{"GET", "/api/org/{id}/failbackreplications", vr_api_org_failbackreplications_get, 0, 0},
	{"GET", "/api/org/{id}/replications", vr_api_org_replications_get, 0, 0},
	{"GET", "/api/org/{id}/enabledForReplicationVdcs", vr_api_org_enabled_vdcs_get, 0, 0},

	/* Virtual data centers (U4-U7). */
	{"GET", "/api/vdc/{id}", vr_api_vdc_get, 0, 0},
	{"GET", "/api/vdc/{id}/failbackreplications", vr_api_vdc_failbackreplications_get, 0, 0},
	{"GET", "/api/vdc/{id}/peers", vr_api_vdc_peers_get, 0, 0},
	{"GET", "/api/vdc/{id}/recoveryDetails", vr_api_vdc_recovery_details_get, 0, 0},
	{"GET", "/api/vdc/{id}/replications", vr_api_vdc_replications_get, 0, 0},
	/* Pairing a site and configuring a replication: 202 + Task. */
	{"POST", "/api/vdc/{id}/peers", vr_api_vdc_peers_post, SMALL_BODY, 0},
	{"POST", "/api/vdc/{id}/replications", vr_api_vdc_replications_post, SMALL_BODY, 0},

	/* Failback replications (U8), peers (U10-U12, U14), replications (U15, U20). */
	{"GET", "/api/vr/failbackreplications/{id}", vr_api_failbackreplication_get, 0, 0},
	{"GET", "/api/vr/peers/{id}", vr_api_peer_get, 0, 0},
	{"GET", "/api/vr/peers/{id}/failbackreplications", vr_api_peer_failbackreplications_get,
	 0, 0},
	{"GET", "/api/vr/peers/{id}/networkMappings", vr_api_peer_network_mappings_get, 0, 0},
	{"GET", "/api/vr/peers/{id}/replications", vr_api_peer_replications_get, 0, 0},
	{"GET", "/api/vr/replications/{id}", vr_api_replication_get, 0, 0},
	{"GET", "/api/vr/replications/{id}/instances", vr_api_replication_instances_get, 0, 0},

	/* Actions on a replication (U16-U19 and extensions): 202 + Task. */
	{"DELETE", "/api/vr/replications/{id}", vr_api_replication_delete, SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/failover", vr_api_replication_failover,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/testFailover", vr_api_replication_test_failover,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/testCleanup", vr_api_replication_test_cleanup,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/plannedMigration",
	 vr_api_replication_planned_migration, SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/sync", vr_api_replication_sync, SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/pause", vr_api_replication_pause, SMALL_BODY, 0},
	{"POST", "/api/vr/replications/{id}/action/resume", vr_api_replication_resume, SMALL_BODY,
	 0},
	{"POST", "/api/vr/replications/{id}/action/reverse", vr_api_replication_reverse, SMALL_BODY,
	 0},

	/* Actions on a failback replication (U9 and the controls), and the
	 * peer's network mappings (U13): 202 + Task. */
	{"DELETE", "/api/vr/failbackreplications/{id}", vr_api_failbackreplication_delete,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/failbackreplications/{id}/action/sync", vr_api_failbackreplication_sync,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/failbackreplications/{id}/action/pause", vr_api_failbackreplication_pause,
	 SMALL_BODY, 0},
	{"POST", "/api/vr/failbackreplications/{id}/action/resume",
	 vr_api_failbackreplication_resume, SMALL_BODY, 0},
	{"PUT", "/api/vr/peers/{id}/networkMappings", vr_api_peer_network_mappings_put, SMALL_BODY,
	 0},
	{"POST", "/api/vr/replications/{id}/action/reconfigure", vr_api_replication_reconfigure,
	 SMALL_BODY, 0},

	{"GET", "/api/task/{id}", vr_api_task_get, 0, 0},
	/* vCD CancelTask: consumes nothing, any body is ignored; 204. */
	{"POST", "/api/task/{id}/action/cancel", vr_api_task_cancel, SMALL_BODY, 0},
	{"GET", "/api/tasksList/{id}", vr_api_tasks_list_get, 0, 0},

	/* Provider side (A2, A4) and the vCD typed query RaaSCLI uses. */
	{"GET", "/api/admin/vdcs/query", vr_api_admin_vdcs_query_get, 0, VR_ROUTE_SLASH},
	{"GET", "/api/admin/vr/nodes", vr_api_admin_nodes_get, 0, VR_ROUTE_SYSADMIN},
	{"GET", "/api/admin/vr/replications/{id}/details", vr_api_replication_details_get, 0,
	 VR_ROUTE_SYSADMIN},

	/* Provider actions (A1, A3) and the replica servers (E2-E4). */
	{"POST", "/api/admin/vdc/{id}/action/editRecoveryDetails",
	 vr_api_admin_vdc_edit_recovery_details, SMALL_BODY, VR_ROUTE_SYSADMIN},
	{"POST", "/api/admin/vr/replications/{id}/action/moveReplication",
	 vr_api_admin_replication_move, SMALL_BODY, VR_ROUTE_SYSADMIN},
	{"GET", "/api/admin/extension/vr/vrServers", vr_api_admin_vr_servers_get, 0,
	 VR_ROUTE_SYSADMIN},
	{"GET", "/api/admin/extension/vr/vrs/{id}", vr_api_admin_vr_server_get, 0,
	 VR_ROUTE_SYSADMIN},
	{"DELETE", "/api/admin/extension/vr/vrs/{id}", vr_api_admin_vr_server_delete, SMALL_BODY,
	 VR_ROUTE_SYSADMIN},
	{"GET", "/api/admin/extension/vr/vrs/{id}/statistics",
	 vr_api_admin_vr_server_statistics_get, 0, VR_ROUTE_SYSADMIN},

	/* Internal API of vrcloud's own services (docs/pipeline.md). */
	{"POST", "/api/internal/servers", vr_api_internal_server_register, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/servers/{id}/heartbeat", vr_api_internal_server_heartbeat,
	 SMALL_BODY, VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"DELETE", "/api/internal/servers/{id}", vr_api_internal_server_leave, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/jobs/{id}/start", vr_api_internal_job_start, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/jobs/{id}/progress", vr_api_internal_job_progress, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/jobs/{id}/complete", vr_api_internal_job_complete, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/jobs/{id}/dead", vr_api_internal_job_dead, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/sites/verify", vr_api_internal_site_verify, SMALL_BODY,
	 VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/replications/{id}/server", vr_api_internal_replication_server,
	 SMALL_BODY, VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{"POST", "/api/internal/replications/{id}/instances", vr_api_internal_replication_instances,
	 SMALL_BODY, VR_ROUTE_SERVICE | VR_ROUTE_NO_NEGOTIATE},
	{NULL, NULL, NULL, 0, 0},
};

const struct vr_alias vr_api_aliases[] = {
	/* vCloud Air mounted the whole vCD API under /api/compute. */
	{"/api/compute/api/", "/api/"},
	/* A client that derives its base from Session/@href ".../api/session/"
	 * by dropping two segments lands on "<base>/api/api/...". */
	{"/api/api/", "/api/"},
	{NULL, NULL},
};
