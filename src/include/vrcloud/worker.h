/* vrcloud-worker: a replica server that runs the cloud-side jobs. It reads
 * job ids from the Redis stream (vr_jobq), starts each job through the
 * internal API of vrcloud-api, runs the action and reports progress and the
 * result there; the API is the one writer of state (docs/pipeline.md,
 * docs/worker.md). This header has its configuration, the documents it
 * sends and reads, the HTTP client, the action table and the daemon. */
#ifndef VRCLOUD_WORKER_H
#define VRCLOUD_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrcloud/buf.h"
#include "vrcloud/log.h"
#include "vrcloud/uuid.h"

#define VR_WORKER_NS	     "urn:vrcloud:internal:1"
#define VR_WORKER_MEDIA_TYPE "application/vnd.vrcloud.internal+xml"
/* The consumer group of the job stream that every worker reads in. */
#define VR_WORKER_GROUP "workers"
/* Longest answer body the worker reads from the API. */
#define VR_WORKER_MAX_ANSWER ((size_t)1024 * 1024)
/* Longest service token accepted from the token file. */
#define VR_WORKER_MAX_TOKEN 512

/* --- configuration ---------------------------------------------------- */

struct vr_worker_config {
	/* [worker] */
	char *name;	       /* service credential's name; default: the host name */
	char *api_url;	       /* vrcloud-api base URL, default http://127.0.0.1:8080 */
	char *token_file;      /* file holding the service token (required) */
	char *traffic_address; /* host:port of replication traffic; default <host name>:44046 */
	unsigned concurrency;  /* jobs at once (runner threads), default 4 */
	unsigned heartbeat_interval; /* seconds, default 10 */
	unsigned claim_idle;	   /* ms before another worker's pending entry is claimed, 30000 */
	unsigned max_deliveries;   /* deliveries before an entry is dead-lettered, default 5 */
	unsigned shutdown_timeout; /* seconds running jobs get after SIGTERM, default 30 */
	unsigned http_timeout;	   /* seconds one API call may take, default 30 */
	unsigned connect_timeout;  /* seconds to connect to the API, default 5 */
	unsigned block;		   /* ms one stream read waits for new entries, default 2000 */
	unsigned phase_delay;	   /* ms each job phase waits before its report, default 0 */
	char *pid_file;		   /* optional */
	/* The replica store and the replication port (docs/worker.md). */
	char *store_dir;	/* replica stores, default /var/lib/vrcloud/store */
	char *recovered_dir;	/* recovered and test VMs, default /var/lib/vrcloud/recovered */
	char *traffic_listen;	/* host:port the port listens at; default traffic_address;
				 * "off": no replication port */
	unsigned max_transfers; /* transfers received at once, default 16 */
	unsigned transfer_idle_timeout; /* seconds a transfer may stay silent, default 120 */
	/* recovery (docs/recovery.md) */
	char *boot_check;	/* optional command run with a recovered VM's images */
	char *proxy_internal;	/* a proxy's internal port, default 127.0.0.1:8444 */
	unsigned sync_timeout;	/* seconds a job waits for a synchronized instance, 600 */
	/* [redis] */
	char *redis_uri; /* default redis://127.0.0.1:6379/0 */
	/* [jobs] */
	char *jobs_prefix; /* key prefix of the job streams, default "vrcloud" */
	/* [log] */
	enum vr_log_level log_level;
	char *log_file; /* optional; stderr when unset */
};

/* Fill config with defaults (name and traffic_address come from the host
 * name). */
void vr_worker_config_init(struct vr_worker_config *config);
/* Read an INI file over the current values. Returns 0, VR_EIO (unreadable)
 * or VR_ECONFIG; on error *error_out (owned by the caller) says where. */
int vr_worker_config_load(struct vr_worker_config *config, const char *path, char **error_out);
/* Set one [section] key as the file would. Returns 0 or VR_ECONFIG. */
int vr_worker_config_set(struct vr_worker_config *config, const char *section, const char *key,
			 const char *value, char **error_out);
/* Check the settings together once file and flags are applied: required
 * keys, the name's form, the URLs. Returns 0 or VR_ECONFIG with
 * *error_out (owned by the caller). */
int vr_worker_config_check(const struct vr_worker_config *config, char **error_out);
void vr_worker_config_free(struct vr_worker_config *config);

/* Read the service token from path into out (NUL-terminated): surrounding
 * white space is dropped; it must be non-empty printable ASCII without
 * spaces. *loose_out tells whether the file is readable by group or
 * others. Returns 0, VR_EIO or VR_EINVAL (with *error_out, owned by the
 * caller, which never contains the token). */
int vr_worker_token_read(char out[VR_WORKER_MAX_TOKEN + 1], const char *path, bool *loose_out,
			 char **error_out);

/* --- documents -------------------------------------------------------- */

enum vr_worker_outcome {
	VR_OUTCOME_SUCCESS,
	VR_OUTCOME_ERROR,
	VR_OUTCOME_CANCELED,
};

/* What a JobResult says. Strings are borrowed; NULL or 0 leaves the
 * optional element out. */
/* A disk image a recovery job wrote. */
struct vr_worker_disk {
	char key[256]; /* the device key, decimal */
	char *path;    /* owned */
	uint64_t size; /* bytes */
};

struct vr_worker_result {
	enum vr_worker_outcome outcome;
	int major;	    /* MajorErrorCode (an HTTP status), 0 = none */
	const char *minor;  /* MinorErrorCode */
	const char *vendor; /* VendorSpecificErrorCode */
	const char *message;
	/* a successful recovery job: the instance and images it recovered */
	const char *instance_id;
	const struct vr_worker_disk *disks;
	unsigned ndisks;
};

const char *vr_worker_outcome_token(enum vr_worker_outcome outcome);

/* Each builder appends one document of schema/internal-1.xsd to out (which
 * must be initialised). Return 0, VR_EINVAL (a value the schema refuses)
 * or VR_ENOMEM. */
int vr_worker_doc_server(struct vr_buf *out, const char *name, const char *traffic_address);
int vr_worker_doc_job_start(struct vr_buf *out, const char *server_id, unsigned deliveries);
int vr_worker_doc_job_progress(struct vr_buf *out, const char *server_id, int progress,
			       const char *message);
int vr_worker_doc_job_result(struct vr_buf *out, const char *server_id,
			     const struct vr_worker_result *result);

/* A job as the API's start answer describes it. */
struct vr_worker_job {
	char id[VR_UUID_LEN + 1];
	char task_id[VR_UUID_LEN + 1];
	char action[64];
	char lane[128];
	char state[32];
	unsigned deliveries;
	char *params; /* the job's parameters (JSON text), owned */
};

/* Each parser reads an answer body through vr_xml_parse only. They return
 * 0 or VR_EINVAL (*reason_out, static text, says why). */
/* ReplicaServer: its Id, canonical. */
int vr_worker_parse_server(char id_out[VR_UUID_LEN + 1], const char *body, size_t len,
			   const char **reason_out);
/* Job: every field; free with vr_worker_job_clear. */
int vr_worker_parse_job(struct vr_worker_job *job_out, const char *body, size_t len,
			const char **reason_out);
void vr_worker_job_clear(struct vr_worker_job *job);
/* A vCD Error: its minorErrorCode ("" when the attribute is absent). */
int vr_worker_parse_error(char *minor_out, size_t minor_size, const char *body, size_t len,
			  const char **reason_out);

/* Parameters of the recovery actions (failover, testFailover,
 * plannedMigration), from the job's JSON: a flat object whose PowerOn and
 * Synchronize are booleans and InstanceId a UUID string or null. Absent
 * keys keep their defaults (power on, no sync, newest instance); other
 * keys are ignored. */
struct vr_recovery_params {
	bool power_on;
	bool synchronize;
	char instance_id[VR_UUID_LEN + 1]; /* "" = the newest instance */
};

/* Returns 0 or VR_EINVAL (malformed JSON or a value of the wrong type). */
int vr_worker_recovery_params_parse(struct vr_recovery_params *out, const char *json);

/* The disks of a configure job's parameters ("Disks": [{"DeviceKey": N,
 * "SizeBytes": N}, ...]): each key as decimal text, in the order given.
 * Returns 0 with *n_out set, or VR_EINVAL (absent, malformed, more than
 * max, a key or size out of range). */
struct vr_store_disk;
int vr_worker_params_disks(struct vr_store_disk *out, unsigned max, unsigned *n_out,
			   const char *json);

/* The replication's peer, which the API puts into the parameters of every
 * action on a replication as the top-level string "PeerId". Returns 0 or
 * VR_ENOTFOUND (absent or not a UUID). */
int vr_worker_params_peer(char out[VR_UUID_LEN + 1], const char *json);

/* --- HTTP client of the internal API ---------------------------------- */

struct vr_worker_client;

struct vr_worker_client_options {
	const char *api_url; /* base URL; a trailing '/' is dropped */
	const char *token;   /* service token, copied; wiped when the client is freed */
	unsigned connect_timeout_ms;
	unsigned timeout_ms;	  /* whole call */
	const atomic_bool *abort; /* optional: once true, calls in flight give up */
};

/* An answer of the API. */
struct vr_worker_answer {
	long status;	     /* HTTP status; 0 when no answer came */
	char request_id[64]; /* X-VMWARE-VCLOUD-REQUEST-ID, "" when none */
	char minor[64];	     /* minorErrorCode of an Error answer, else "" */
	char error[256];     /* why no answer came (status 0) */
	struct vr_buf body;  /* capped at VR_WORKER_MAX_ANSWER */
};

/* How the worker treats an answer. */
enum vr_worker_answer_kind {
	VR_ANSWER_OK,	       /* 2xx */
	VR_ANSWER_NOT_FOUND,   /* 404 */
	VR_ANSWER_CONFLICT,    /* 409: minor says which */
	VR_ANSWER_REFUSED,     /* another 4xx or a 3xx: the same call will not do better */
	VR_ANSWER_UNAVAILABLE, /* 5xx, 408, 429, no connection, a timeout: try later */
	VR_ANSWER_ABORTED,     /* the abort flag stopped the call */
};

/* A client with its own curl handle; one per thread. curl_global_init must
 * have run. Returns 0, VR_EINVAL (bad options) or VR_ENOMEM. */
int vr_worker_client_new(struct vr_worker_client **out,
			 const struct vr_worker_client_options *options);
void vr_worker_client_free(struct vr_worker_client *client);

void vr_worker_answer_init(struct vr_worker_answer *answer);
void vr_worker_answer_free(struct vr_worker_answer *answer);

/* Call method on api_url + path with an optional internal document body.
 * *answer is reset first. The calling thread's log request id is set to
 * the API's request id of the answer (cleared when there is none), so the
 * lines that follow name the API request they are about. Returns the kind
 * of the answer. */
enum vr_worker_answer_kind vr_worker_client_call(struct vr_worker_client *client,
						 const char *method, const char *path,
						 const struct vr_buf *body,
						 struct vr_worker_answer *answer);

enum vr_worker_answer_kind vr_worker_answer_classify(const struct vr_worker_answer *answer);

/* --- jobs and the action table --------------------------------------- */

/* How running a job ended. */
enum vr_job_status {
	VR_JOB_SUCCEEDED = 0,
	VR_JOB_FAILED,	 /* the run's result holds the error */
	VR_JOB_CANCELED, /* the Task's cancellation was asked */
	VR_JOB_LOST,	 /* this server no longer holds the job: drop it */
	VR_JOB_ABORTED,	 /* shutdown: leave it for another worker */
};

struct vr_job_run;
struct vr_redis;

/* Report progress (0-100) and a message to the API. Returns 0 to go on, or
 * the status the job stops with (VR_JOB_CANCELED, VR_JOB_LOST,
 * VR_JOB_ABORTED). */
typedef int (*vr_job_report_fn)(struct vr_job_run *run, int progress, const char *message);

/* One run of a job. */
struct vr_job_run {
	const struct vr_worker_job *job;
	const char *server_name;
	vr_job_report_fn report;
	void *report_arg;
	/* Where commands for sites go (docs/tunnels.md, section 2); NULL: the
	 * actions send none (the unit tests). */
	struct vr_redis *redis;
	const char *tunnel_prefix;
	/* [worker] store_dir and recovered_dir; NULL: the actions touch no
	 * replica store (the unit tests). */
	const char *store_dir;
	const char *recovered_dir;
	/* The worker's configuration (boot check, proxies' internal port,
	 * sync timeout; docs/recovery.md); NULL: the recovery actions move no
	 * data (the unit tests). */
	const struct vr_worker_config *config;
	/* Filled by a recovery action that succeeds (vr_job_run_clear frees). */
	char recovered_instance[VR_UUID_LEN + 1];
	struct vr_worker_disk *disks;
	unsigned ndisks;
	/* Filled by an action that fails (VR_JOB_FAILED). */
	int error_major;
	char error_minor[64];
	char error_vendor[64];
	char error_message[512];
};

typedef int (*vr_job_action_fn)(struct vr_job_run *run);

struct vr_job_action {
	const char *name;     /* the job's Action, e.g. "testFailover" */
	vr_job_action_fn run; /* returns an enum vr_job_status */
};

/* The action table, ended by a { NULL, NULL } entry. */
extern const struct vr_job_action vr_worker_actions[];

/* The entry for an action name (exact, case-sensitive), or NULL. */
const struct vr_job_action *vr_worker_action_find(const char *name);

/* Report progress through run->report; 0 or the status to stop with. */
int vr_job_report(struct vr_job_run *run, int progress, const char *message);
/* Mark run failed with vendor code and message; returns VR_JOB_FAILED. */
int vr_job_fail(struct vr_job_run *run, int major, const char *minor, const char *vendor,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Run run->job through the action table: an unknown action fails with
 * VendorSpecificErrorCode UnknownJobAction. Returns an enum vr_job_status
 * and, for SUCCEEDED, FAILED and CANCELED, the JobResult to send in
 * *result_out (its strings point into run). */
int vr_worker_job_execute(struct vr_job_run *run, struct vr_worker_result *result_out);
/* Free what an action left in run (its recovered disks). */
void vr_job_run_clear(struct vr_job_run *run);

/* --- the daemon ------------------------------------------------------- */

struct vr_worker;

/* Read the token, register with the API (retrying in the background until
 * it answers) and start the heartbeat and concurrency runner threads.
 * curl_global_init and vr_xml_global_init must have run; the caller blocks
 * the signals it waits for before calling. Returns 0, VR_ECONFIG (with
 * *error_out, owned by the caller) or VR_ENOMEM / VR_EIO. */
int vr_worker_start(struct vr_worker **out, const struct vr_worker_config *config,
		    char **error_out);
/* Stop taking deliveries, give running jobs up to shutdown_timeout to
 * finish (those that do not stay pending for another worker), leave the
 * API (DELETE of the server) and free everything. */
void vr_worker_stop(struct vr_worker *worker);

#endif
