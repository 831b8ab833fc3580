/* vrcloud-worker: the replica server that runs cloud-side jobs. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "vrcloud/daemon.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/worker.h"
#include "vrcloud/xml.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-worker [OPTION]...\n"
	      "Run vrcloud's cloud-side jobs: read them from the Redis job stream, start\n"
	      "each through vrcloud-api's internal API, report progress and the result.\n"
	      "\n"
	      "  -c, --config FILE          read settings from FILE (INI; see docs/worker.md)\n"
	      "  -n, --name NAME            this server's name = its service credential's name\n"
	      "                             (default: the host name)\n"
	      "  -a, --api-url URL          vrcloud-api base URL (default http://127.0.0.1:8080)\n"
	      "  -k, --token-file FILE      file holding the service token of\n"
	      "                             `vrcloudctl service add NAME --kind worker` (required)\n"
	      "      --traffic-address H:P  where replication traffic reaches this server\n"
	      "                             (default <host name>:44046)\n"
	      "  -r, --redis URI            redis://host:port[/db] or unix:///path[?db=N]\n"
	      "                             (default redis://127.0.0.1:6379/0)\n"
	      "      --jobs-prefix PREFIX   key prefix of the job streams (default vrcloud)\n"
	      "  -j, --concurrency N        jobs run at once (default 4)\n"
	      "      --heartbeat-interval S seconds between heartbeats (default 10)\n"
	      "      --claim-idle MS        take over another worker's job after MS idle\n"
	      "                             milliseconds (default 30000)\n"
	      "      --max-deliveries N     deliveries before a job is dead (default 5)\n"
	      "      --shutdown-timeout S   seconds running jobs get after SIGTERM (default 30)\n"
	      "      --http-timeout S       seconds one API call may take (default 30)\n"
	      "      --connect-timeout S    seconds to connect to the API (default 5)\n"
	      "      --phase-delay MS       milliseconds each phase of a job lasts at least,\n"
	      "                             for tests and demonstrations (default 0)\n"
	      "      --store-dir DIR        replica stores (default /var/lib/vrcloud/store)\n"
	      "      --recovered-dir DIR    recovered and test VMs\n"
	      "                             (default /var/lib/vrcloud/recovered)\n"
	      "      --traffic-listen H:P   where the replication port listens (default: the\n"
	      "                             traffic address; off: no replication port)\n"
	      "      --max-transfers N      transfers received at once (default 16)\n"
	      "  -L, --log-level LEVEL      debug, info, warn or error (default info)\n"
	      "      --log-file FILE        log there instead of stderr (reopened on SIGHUP)\n"
	      "      --pid-file FILE        write the process id to FILE\n"
	      "  -h, --help                 show this help and exit\n"
	      "  -V, --version              show the version and exit\n"
	      "\n"
	      "Flags override the config file. The token is read from its file only: it is\n"
	      "never taken on the command line nor logged. SIGTERM or SIGINT: take no new\n"
	      "job, let running jobs finish (up to the shutdown timeout; unfinished ones are\n"
	      "left to other workers), leave the API and exit 0. SIGHUP reopens the log file.\n"
	      "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage, 3 bad config.\n",
	      out);
}

static int write_pid(const char *path)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return VR_EIO;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return VR_EIO;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return VR_EIO;
	}
	return 0;
}

enum {
	OPT_TRAFFIC = 256,
	OPT_PREFIX,
	OPT_HEARTBEAT,
	OPT_CLAIM,
	OPT_DELIVERIES,
	OPT_SHUTDOWN,
	OPT_HTTP_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_PHASE_DELAY,
	OPT_LOG_FILE,
	OPT_PID_FILE,
	OPT_STORE_DIR,
	OPT_RECOVERED_DIR,
	OPT_TRAFFIC_LISTEN,
	OPT_MAX_TRANSFERS,
};

/* The config's setter, for vr_daemon_apply_flags. */
static int set_flag(void *config, const char *section, const char *key, const char *value,
		    char **error_out)
{
	return vr_worker_config_set(config, section, key, value, error_out);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"name", required_argument, NULL, 'n'},
		{"api-url", required_argument, NULL, 'a'},
		{"token-file", required_argument, NULL, 'k'},
		{"traffic-address", required_argument, NULL, OPT_TRAFFIC},
		{"redis", required_argument, NULL, 'r'},
		{"jobs-prefix", required_argument, NULL, OPT_PREFIX},
		{"concurrency", required_argument, NULL, 'j'},
		{"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
		{"claim-idle", required_argument, NULL, OPT_CLAIM},
		{"max-deliveries", required_argument, NULL, OPT_DELIVERIES},
		{"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
		{"http-timeout", required_argument, NULL, OPT_HTTP_TIMEOUT},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"phase-delay", required_argument, NULL, OPT_PHASE_DELAY},
		{"log-level", required_argument, NULL, 'L'},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"store-dir", required_argument, NULL, OPT_STORE_DIR},
		{"recovered-dir", required_argument, NULL, OPT_RECOVERED_DIR},
		{"traffic-listen", required_argument, NULL, OPT_TRAFFIC_LISTEN},
		{"max-transfers", required_argument, NULL, OPT_MAX_TRANSFERS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const struct vr_daemon_flag flag_keys[] = {
		{'n', "worker", "name"},
		{'a', "worker", "api_url"},
		{'k', "worker", "token_file"},
		{OPT_TRAFFIC, "worker", "traffic_address"},
		{'r', "redis", "uri"},
		{OPT_PREFIX, "jobs", "prefix"},
		{'j', "worker", "concurrency"},
		{OPT_HEARTBEAT, "worker", "heartbeat_interval"},
		{OPT_CLAIM, "worker", "claim_idle"},
		{OPT_DELIVERIES, "worker", "max_deliveries"},
		{OPT_SHUTDOWN, "worker", "shutdown_timeout"},
		{OPT_HTTP_TIMEOUT, "worker", "http_timeout"},
		{OPT_CONNECT_TIMEOUT, "worker", "connect_timeout"},
		{OPT_PHASE_DELAY, "worker", "phase_delay"},
		{'L', "log", "level"},
		{OPT_LOG_FILE, "log", "file"},
		{OPT_PID_FILE, "worker", "pid_file"},
		{OPT_STORE_DIR, "worker", "store_dir"},
		{OPT_RECOVERED_DIR, "worker", "recovered_dir"},
		{OPT_TRAFFIC_LISTEN, "worker", "traffic_listen"},
		{OPT_MAX_TRANSFERS, "worker", "max_transfers"},
	};
	static const char short_options[] = "c:n:a:k:r:j:L:hV";
	vr_log_set_program("vrcloud-worker");
	struct vr_worker_config config;
	vr_worker_config_init(&config);

	/* Pass 1: find --config; pass 2 applies flags over the file. */
	const char *config_path = NULL;
	int opt;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		if (opt == 'c') {
			config_path = optarg;
		} else if (opt == 'h') {
			usage(stdout);
			vr_worker_config_free(&config);
			return 0;
		} else if (opt == 'V') {
			printf("vrcloud-worker %s\n", PACKAGE_VERSION);
			vr_worker_config_free(&config);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			vr_worker_config_free(&config);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vrcloud-worker: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		vr_worker_config_free(&config);
		return EXIT_USAGE;
	}
	char *error = NULL;
	if (config_path && vr_worker_config_load(&config, config_path, &error)) {
		fprintf(stderr, "vrcloud-worker: %s\n", error);
		free(error);
		vr_worker_config_free(&config);
		return EXIT_CONFIG;
	}
	if (vr_daemon_apply_flags(argc, argv, short_options, options, flag_keys,
				  sizeof flag_keys / sizeof flag_keys[0], set_flag, &config,
				  "vrcloud-worker")) {
		vr_worker_config_free(&config);
		return EXIT_USAGE;
	}
	if (vr_worker_config_check(&config, &error)) {
		fprintf(stderr, "vrcloud-worker: %s\n", error);
		free(error);
		vr_worker_config_free(&config);
		return EXIT_CONFIG;
	}
	vr_log_set_level(config.log_level);
	if (config.log_file && vr_log_reopen(config.log_file)) {
		fprintf(stderr, "vrcloud-worker: cannot open log file %s: %s\n", config.log_file,
			strerror(errno));
		vr_worker_config_free(&config);
		return EXIT_CONFIG;
	}

	/* Signals are taken synchronously by this thread; every other thread
	 * inherits the blocked mask. */
	sigset_t signals;
	vr_daemon_block_signals(&signals);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		vr_log_error("start_failed", "error", "libcurl could not be initialised");
		vr_worker_config_free(&config);
		return EXIT_RUNTIME;
	}
	vr_xml_global_init();
	struct vr_worker *worker = NULL;
	int rc = vr_worker_start(&worker, &config, &error);
	if (rc) {
		vr_log_error("start_failed", "error", error ? error : vr_err_str(rc));
		free(error);
		vr_xml_global_cleanup();
		curl_global_cleanup();
		vr_worker_config_free(&config);
		return rc == VR_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	if (config.pid_file && write_pid(config.pid_file))
		vr_log_warn("pid_file_failed", "path", config.pid_file);

	vr_daemon_wait_for_stop(&signals, config.log_file);
	vr_worker_stop(worker);
	if (config.pid_file)
		unlink(config.pid_file);
	vr_log_info("stopped");
	vr_xml_global_cleanup();
	curl_global_cleanup();
	vr_worker_config_free(&config);
	return 0;
}
