/* Harness of the integration tests of vrcloud-api: real PostgreSQL, Redis
 * and the built binaries. Each test program gets its own database
 * (vrt_<suite>_<pid>), migrated with vrcloudctl and filled with the
 * fixtures below, and its own vrcloud-api, all prepared once in the
 * Criterion runner before the tests are started and torn down after them.
 * Tests run in separate worker processes and learn what was prepared from
 * environment variables (VRT_*), read through the helpers here.
 *
 * Services: VRCLOUD_TEST_PGURI (a superuser URI) and VRCLOUD_TEST_REDIS
 * name servers to use; when they are not set, throwaway ones are started
 * with contrib/lib/services.sh and stopped at the end. */
#ifndef VRCLOUD_TESTS_INTEGRATION_HARNESS_H
#define VRCLOUD_TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* --- what every test program declares -------------------------------- */

struct vrt_suite {
	const char *name;	/* short, [a-z]: the database is vrt_<name>_<pid> */
	unsigned jobs;		/* tests run at once (CRITERION_JOBS unless set) */
	unsigned redis_db;	/* Redis database number of this program's API */
	const char *public_url; /* --public-url of the API; NULL: its own address */
	const char *config;	/* INI text added to the API's config file */
	bool own_services;	/* always start throwaway PostgreSQL and Redis of its
				 * own (ignoring VRCLOUD_TEST_*), which its tests may
				 * stop and start with vrt_services */
};

/* Exactly one test file of a program defines it:
 *   VRT_SUITE(.name = "reads", .jobs = 3, .redis_db = 3); */
extern const struct vrt_suite vrt_suite;
#define VRT_SUITE(...) const struct vrt_suite vrt_suite = {__VA_ARGS__}

/* --- fixtures ---------------------------------------------------------- */

/* One password for every fixture user. */
#define VRT_PASSWORD   "Fixture-Password-1"

#define VRT_ORG_A      "10000000-0000-4000-8000-00000000000a"
#define VRT_ORG_B      "10000000-0000-4000-8000-00000000000b"
#define VRT_ORG_A_NAME "tenant-a"
#define VRT_ORG_B_NAME "tenant-b"

/* Org A has exactly one VDC; org B has one enabled for replication (B1)
 * and one that is not (B2). */
#define VRT_VDC_A1 "20000000-0000-4000-8000-0000000000a1"
#define VRT_VDC_B1 "20000000-0000-4000-8000-0000000000b1"
#define VRT_VDC_B2 "20000000-0000-4000-8000-0000000000b2"

/* Peers: A1 carries A's replications and network mappings, A2 has none,
 * A3 was revoked (invisible even to A). */
#define VRT_PEER_A1 "30000000-0000-4000-8000-0000000000a1"
#define VRT_PEER_A2 "30000000-0000-4000-8000-0000000000a2"
#define VRT_PEER_A3 "30000000-0000-4000-8000-0000000000a3"
#define VRT_PEER_B1 "30000000-0000-4000-8000-0000000000b1"

/* 30 incoming replications in A (VDC A1, peer A1), created one minute
 * apart in id order: VRT_REPL_A(1) ... VRT_REPL_A(30). Special ones:
 *   1  fully populated (instances, disks, replica server, placeholder,
 *      recovery completion time, last test operation), name with XML
 *      metacharacters, quiescing and compression on, RPO 240, newest
 *      instance 5 minutes old
 *   2  RPO 15, newest instance 75 minutes old (violation ~60, growing)
 *   3  paused 100 minutes ago, newest instance 200 minutes old, RPO 60
 *      (violation frozen at 40)
 *   4  TestRecoveryState complete        5  TestRecoveryState testError
 *   6  resumed after 30 paused minutes, newest instance 100 minutes old,
 *      RPO 60 (violation 10)
 *   7  RecoveryState recovered (with a completion time) */
#define VRT_REPL_A_COUNT 30
#define VRT_REPL_A_FMT	 "40000000-0000-4000-8000-%012x"
#define VRT_REPL_A1	 "40000000-0000-4000-8000-000000000001"
#define VRT_REPL_A2	 "40000000-0000-4000-8000-000000000002"
#define VRT_REPL_A3	 "40000000-0000-4000-8000-000000000003"
#define VRT_REPL_A4	 "40000000-0000-4000-8000-000000000004"
#define VRT_REPL_A5	 "40000000-0000-4000-8000-000000000005"
#define VRT_REPL_A6	 "40000000-0000-4000-8000-000000000006"
#define VRT_REPL_A7	 "40000000-0000-4000-8000-000000000007"
#define VRT_REPL_A1_NAME "web01 & <db> \"primary\""
#define VRT_REPL_B1	 "40000000-0000-4000-8000-0000000000b1"
#define VRT_REPL_B2	 "40000000-0000-4000-8000-0000000000b2"
/* Failback replications (kind 'failback'). */
#define VRT_FAILBACK_A1 "41000000-0000-4000-8000-0000000000a1"
#define VRT_FAILBACK_B1 "41000000-0000-4000-8000-0000000000b1"

/* Instances of replication A1, seq 1..3 (3 is the newest). */
#define VRT_INSTANCE_A1_1 "50000000-0000-4000-8000-000000000001"
#define VRT_INSTANCE_A1_2 "50000000-0000-4000-8000-000000000002"
#define VRT_INSTANCE_A1_3 "50000000-0000-4000-8000-000000000003"
/* Disks of replication A1 (device keys 2000, 2001). */
#define VRT_DISK_A1_1 "60000000-0000-4000-8000-000000000001"
#define VRT_DISK_A1_2 "60000000-0000-4000-8000-000000000002"

/* Tasks: running (progress 42) and failed (vendor code) in A, one in B. */
#define VRT_TASK_A_RUNNING	"70000000-0000-4000-8000-0000000000a1"
#define VRT_TASK_A_ERROR	"70000000-0000-4000-8000-0000000000a2"
#define VRT_TASK_B		"70000000-0000-4000-8000-0000000000b1"
#define VRT_TASK_A_ERROR_VENDOR "AlreadyTestRecovered"
/* A queued synchronization of replication A2 and its job (lane
 * "replication:" VRT_REPL_A2): the object of the job routes in tests that
 * must not change it (test_api_badinput). No test starts, completes or
 * publishes it, and its published_at of 'infinity' keeps the relay of
 * every suite's API away from it, so the database stays as set up. */
#define VRT_TASK_A_QUEUED "70000000-0000-4000-8000-0000000000a3"
#define VRT_JOB_QUEUED	  "90000000-0000-4000-8000-0000000000a3"

/* Replica servers: two listed (connected, disconnected), one unregistered. */
#define VRT_SERVER_1	"80000000-0000-4000-8000-000000000001"
#define VRT_SERVER_2	"80000000-0000-4000-8000-000000000002"
#define VRT_SERVER_GONE "80000000-0000-4000-8000-000000000003"

/* Service credentials of the internal API, made by setup with `vrcloudctl
 * service add NAME --kind worker` (tokens: vrt_service_token). A server
 * registers under its credential's name, so a credential owns the fixture
 * server of that name: VRT_SERVICE (the suite's worker) owns VRT_SERVER_1,
 * VRT_SERVICE_OTHER owns VRT_SERVER_2; VRT_SERVICE_NEW owns none until it
 * registers. VRT_SERVICE_REVOKED (owner of VRT_SERVER_GONE) was revoked
 * with `vrcloudctl service revoke`. */
#define VRT_SERVICE	    "worker-1"
#define VRT_SERVICE_OTHER   "worker-2"
#define VRT_SERVICE_NEW	    "worker-3"
#define VRT_SERVICE_REVOKED "worker-old"

/* An id that names nothing. */
#define VRT_MISSING "4fffffff-ffff-4fff-bfff-ffffffffffff"

/* Users (all with VRT_PASSWORD). Setup logs in the first four and exports
 * their tokens; spare users t01..t24 (org-user of A) are for tests that
 * change a user's state (logout, throttling, disabling). */
#define VRT_ADMIN_A	"admin-a@" VRT_ORG_A_NAME
#define VRT_USER_A	"user-a@" VRT_ORG_A_NAME
#define VRT_ADMIN_B	"admin-b@" VRT_ORG_B_NAME
#define VRT_ROOT	"root@System"
#define VRT_DISABLED_A	"disabled-a@" VRT_ORG_A_NAME
#define VRT_SPARE_USERS 24

/* Sessions present in the database whose tokens are known: one past its
 * absolute expiry, one idle for two days (admin-a's). */
#define VRT_TOKEN_EXPIRED "vrt-expired-session-token-000000000000000000="
#define VRT_TOKEN_IDLE	  "vrt-idle-session-token-00000000000000000000000="

/* Namespace of the internal API's documents (schema/internal-1.xsd). */
#define VRT_NS_INTERNAL "urn:vrcloud:internal:1"

/* --- environment prepared by the runner -------------------------------- */

/* The value of a VRT_* variable; fails the test when it is missing. */
const char *vrt_env(const char *name);
/* The session token of a fixture user (VRT_ADMIN_A, VRT_USER_A,
 * VRT_ADMIN_B or VRT_ROOT). */
const char *vrt_token(const char *user);
/* The token of a service credential (VRT_SERVICE, VRT_SERVICE_OTHER or
 * VRT_SERVICE_REVOKED), exported as VRT_SERVICE_TOKEN_<NAME>. */
const char *vrt_service_token(const char *service);
/* The API's base URL as reached by the tests (http://127.0.0.1:PORT). */
const char *vrt_base_url(void);
/* The base of every href the API writes (its --public-url). */
const char *vrt_public_url(void);
/* The System org's id (made by the migration). */
const char *vrt_system_org(void);

/* --- HTTP -------------------------------------------------------------- */

/* The Accept header sent unless a test names its own. */
#define VRT_ACCEPT "application/*+xml;version=5.5"

struct vrt_header {
	char *name;
	char *value;
};

struct vrt_resp {
	long status;
	char *body; /* NUL-terminated; "" when there was none */
	size_t body_len;
	struct vrt_header *headers; /* of the final response, in order */
	size_t nheaders;
};

/* One request, every part optional but path. */
struct vrt_call {
	const char *base;	    /* NULL: the suite's API */
	const char *method;	    /* NULL: GET; HEAD reads no body */
	const char *path;	    /* sent as is, no normalisation */
	const char *token;	    /* x-vcloud-authorization */
	const char *bearer;	    /* a service token: Authorization: Bearer */
	const char *basic;	    /* "user@org:password" as Basic credentials */
	const char *accept;	    /* NULL: VRT_ACCEPT; "": no Accept header */
	const char *const *headers; /* NULL-terminated "Name: value" lines */
	const char *body;
	long body_len;		 /* -1: strlen(body) */
	bool chunked;		 /* send the body with chunked encoding */
	const char *source_addr; /* local address to send from, e.g. 127.0.0.7 */
};

/* Send a request; returns 0 when a response arrived (any status), -1 on a
 * transport error (message on stderr). */
int vrt_call(const struct vrt_call *call, struct vrt_resp *resp);
/* The same with a method, a path, extra header lines and a body. */
int vrt_request(const char *method, const char *path, const char *const *headers, const char *body,
		struct vrt_resp *resp);
/* GET path with a token (NULL: none); asserts that a response arrived. */
void vrt_get(const char *path, const char *token, struct vrt_resp *resp);
/* Send a raw request over a fresh TCP connection to the suite's API and
 * read the answer until the server closes it. Returns 0 or -1. */
int vrt_raw(const char *request, size_t len, struct vrt_resp *resp);
void vrt_resp_free(struct vrt_resp *resp);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *vrt_header(const struct vrt_resp *resp, const char *name);
size_t vrt_header_count(const struct vrt_resp *resp, const char *name);

/* Log in with Basic credentials at base (NULL: the suite's API). Returns
 * a new token, or NULL with *status_out set to the status answered. */
char *vrt_login(const char *base, const char *user_at_org, const char *password, long *status_out);

/* --- XML ----------------------------------------------------------------- */

/* Validate a document against $VRCLOUD_SRCDIR/schema/vrcloud.xsd. Returns
 * 0, or -1 with *error_out (caller frees) saying why. */
int vrt_validate(const char *body, size_t len, char **error_out);
/* XPath over a document with prefixes v (vCloud 1.5), vr (VR 6.0), ver
 * (versions), ext (vCloud extension) and vi (internal, VRT_NS_INTERNAL).
 * count: number of nodes, -1 when body is not XML. str: the string value
 * of the expression (caller frees), NULL when body is not XML. */
long vrt_xpath_count(const char *body, const char *xpath);
char *vrt_xpath_str(const char *body, const char *xpath);

/* Asserts: the body validates; an Error document with this status and
 * minorErrorCode, the error media type and a version in Content-Type. */
void vrt_assert_valid_at(const struct vrt_resp *resp, const char *what, const char *file, int line);
void vrt_assert_error_at(const struct vrt_resp *resp, long status, const char *minor,
			 const char *what, const char *file, int line);
#define vrt_assert_valid(resp, what) vrt_assert_valid_at(resp, what, __FILE__, __LINE__)
#define vrt_assert_error(resp, status, minor, what)                                                \
	vrt_assert_error_at(resp, status, minor, what, __FILE__, __LINE__)

/* --- database ------------------------------------------------------------ */

/* This process's connection to the suite database. */
PGconn *vrt_db(void);
/* First value of a query with text parameters, or NULL when it returned
 * no row; the caller frees. Fails the test on error.
 *   vrt_db_value("SELECT name FROM users WHERE id = $1", id) */
#define vrt_db_value(...) vrt_db_value_args(__VA_ARGS__, (const char *)NULL)
char *vrt_db_value_args(const char *sql, ...) __attribute__((sentinel));
/* Run a statement with text parameters; returns rows affected. Fails the
 * test on error. */
#define vrt_db_exec(...) vrt_db_exec_args(__VA_ARGS__, (const char *)NULL)
long vrt_db_exec_args(const char *sql, ...) __attribute__((sentinel));
/* md5 of every row of every table, table by table ("name=md5;..."), except
 * sessions.last_used_at and login_failures (what reads and failed logins
 * legitimately touch). The caller frees. */
char *vrt_db_fingerprint(void);
/* Asserts that the fingerprint equals the one taken after setup. */
void vrt_assert_db_unchanged_at(const char *what, const char *file, int line);
#define vrt_assert_db_unchanged(what) vrt_assert_db_unchanged_at(what, __FILE__, __LINE__)

/* --- objects a test makes for itself ---------------------------------------- */

/* A new VDC of org A, enabled for replication, with these recovery flags
 * and a peer of its own. Returns its id; the caller frees. */
char *vrt_new_vdc(bool failover, bool test_failover, bool planned_migration);
/* A new incoming replication of org A in vdc (NULL: VRT_VDC_A1, peer
 * VRT_PEER_A1) named name, replicating (ReplicationState ok) with one
 * committed instance, or, when bare, configured only (initialSync, no
 * instance). set (NULL: none) is an SQL SET list applied to it afterwards,
 * such as "paused = true, paused_at = now()". Returns its id; the caller
 * frees. Tests that change replications make their own with this. */
char *vrt_new_replication(const char *vdc, const char *name, bool bare, const char *set);
/* recovery_state, test_recovery_state, replication_state and paused of a
 * replication, space-separated ("notStarted none ok false"), or NULL when
 * it does not exist; the caller frees. */
char *vrt_replication_state(const char *id);

/* --- Redis ------------------------------------------------------------------ */

/* The job ids of the stream "<prefix>:jobs" in the suite's Redis database
 * (VRT_REDIS_URI), in stream order, each followed by '\n'; "" when the
 * stream is empty or missing. The caller frees. Fails the test when Redis
 * does not answer. */
char *vrt_stream_jobs(const char *prefix);
/* Whether job_id is in the stream "<prefix>:jobs". */
bool vrt_stream_has(const char *prefix, const char *job_id);
/* DEL key in the suite's Redis database; returns how many keys went. */
long vrt_redis_del(const char *key);
/* LPOP key: the first element of a list, or NULL when empty (the caller
 * frees). */
char *vrt_redis_lpop(const char *key);

/* --- the program's own services ------------------------------------------- */

/* Run a function of contrib/lib/services.sh on the services directory of
 * a suite with own_services: vrt_services("svc_stop_pg", "fast"),
 * vrt_services("svc_start_pg", NULL), vrt_services("svc_stop_redis", NULL).
 * Returns the exit status (its output goes to the runner's work
 * directory and is printed when it fails). */
int vrt_services(const char *function, const char *arg);

/* --- more API instances -------------------------------------------------- */

struct vrt_api {
	pid_t pid;
	unsigned port;
	char base[64]; /* http://127.0.0.1:PORT */
	char dir[512]; /* its config, port file and logs */
};

struct vrt_api_opts {
	const char *config;	  /* INI text of its config file */
	const char *database_uri; /* NULL: the suite database */
	const char *redis_uri;	  /* NULL: the suite's Redis */
	const char *public_url;	  /* NULL: its own address */
};

/* Start a vrcloud-api and wait until it listens (not until it is healthy:
 * a test may point it at a dead service). It gets SIGTERM should the
 * starting process die. Returns 0 or -1 (reason on stderr). */
int vrt_api_start(struct vrt_api *api, const struct vrt_api_opts *opts);
/* SIGTERM, then wait up to timeout_s. Returns its exit status, 256 + the
 * signal that ended it, or -1 when it had to be killed after the timeout. */
int vrt_api_stop(struct vrt_api *api, double timeout_s);
/* true when the API's log (or its stderr) contains needle. */
bool vrt_api_log_contains(const struct vrt_api *api, const char *needle);
/* A TCP port on 127.0.0.1 that nothing listens on. */
unsigned vrt_closed_port(void);
/* Wall-clock sleep that survives signals. */
void vrt_sleep(double seconds);
/* Seconds on the monotonic clock, for deadlines. */
double vrt_now(void);

#endif
