/* vrcloud-api: the vCD / vCloud Availability REST API server. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "api/publish.h"
#include "vrcloud/config.h"
#include "vrcloud/daemon.h"
#include "vrcloud/db.h"
#include "vrcloud/err.h"
#include "vrcloud/http.h"
#include "vrcloud/log.h"
#include "vrcloud/xml.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-api [OPTION]...\n"
	      "Serve the vCloud Availability replication API over HTTP.\n"
	      "\n"
	      "  -c, --config FILE      read settings from FILE (INI; see README.md)\n"
	      "  -l, --listen ADDR      address to bind (default 127.0.0.1)\n"
	      "  -p, --port N           port to bind; 0 picks a free one (default 8080)\n"
	      "  -u, --public-url URL   absolute base of every href (default http://ADDR:PORT)\n"
	      "  -d, --database URI     PostgreSQL connection URI\n"
	      "  -r, --redis URI        redis://host:port[/db] or unix:///path[?db=N]\n"
	      "  -t, --threads N        request threads (default 2)\n"
	      "  -L, --log-level LEVEL  debug, info, warn or error (default info)\n"
	      "      --log-file FILE    log there instead of stderr (reopened on SIGHUP)\n"
	      "      --pid-file FILE    write the process id to FILE\n"
	      "      --port-file FILE   write the bound port to FILE once listening\n"
	      "  -h, --help             show this help and exit\n"
	      "  -V, --version          show the version and exit\n"
	      "\n"
	      "Flags override the config file. SIGTERM or SIGINT stop the server after the\n"
	      "requests in progress; SIGHUP reopens the log file.\n"
	      "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage, 3 bad config.\n",
	      out);
}

static int write_number(const char *path, long value)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return VR_EIO;
	fprintf(f, "%ld\n", value);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return VR_EIO;
	return 0;
}

/* The config's setter, for vr_daemon_apply_flags. */
static int set_flag(void *config, const char *section, const char *key, const char *value,
		    char **error_out)
{
	return vr_config_set(config, section, key, value, error_out);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"port", required_argument, NULL, 'p'},
		{"public-url", required_argument, NULL, 'u'},
		{"database", required_argument, NULL, 'd'},
		{"redis", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, 'L'},
		{"log-file", required_argument, NULL, 1},
		{"pid-file", required_argument, NULL, 2},
		{"port-file", required_argument, NULL, 3},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const struct vr_daemon_flag flag_keys[] = {
		{'l', "api", "listen"},       {'p', "api", "port"},      {'u', "api", "public_url"},
		{'d', "database", "uri"},     {'r', "redis", "uri"},     {'t', "api", "threads"},
		{'L', "log", "level"},        {1, "log", "file"},        {2, "api", "pid_file"},
		{3, "api", "port_file"},
	};
	vr_log_set_program("vrcloud-api");
	struct vr_config config;
	vr_config_init(&config);

	/* Pass 1: find --config; pass 2 applies flags over the file. */
	const char *config_path = NULL;
	int opt;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "c:l:p:u:d:r:t:L:hV", options, NULL)) != -1) {
		if (opt == 'c')
			config_path = optarg;
		else if (opt == 'h') {
			usage(stdout);
			vr_config_free(&config);
			return 0;
		} else if (opt == 'V') {
			printf("vrcloud-api %s\n", PACKAGE_VERSION);
			vr_config_free(&config);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			vr_config_free(&config);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vrcloud-api: unexpected argument '%s' (see --help)\n", argv[optind]);
		vr_config_free(&config);
		return EXIT_USAGE;
	}
	char *error = NULL;
	if (config_path && vr_config_load(&config, config_path, &error)) {
		fprintf(stderr, "vrcloud-api: %s\n", error);
		free(error);
		vr_config_free(&config);
		return EXIT_CONFIG;
	}
	if (vr_daemon_apply_flags(argc, argv, "c:l:p:u:d:r:t:L:hV", options, flag_keys,
				  sizeof flag_keys / sizeof flag_keys[0], set_flag, &config,
				  "vrcloud-api")) {
		vr_config_free(&config);
		return EXIT_USAGE;
	}
	vr_log_set_level(config.log_level);
	if (config.log_file && vr_log_reopen(config.log_file)) {
		fprintf(stderr, "vrcloud-api: cannot open log file %s: %s\n", config.log_file,
			strerror(errno));
		vr_config_free(&config);
		return EXIT_CONFIG;
	}

	/* Signals are taken synchronously by this thread; the pool threads
	 * inherit the blocked mask. */
	sigset_t signals;
	vr_daemon_block_signals(&signals);

	vr_xml_global_init();
	struct vr_server *server = NULL;
	unsigned port = 0;
	int rc = vr_server_start(&server, &config, vr_api_routes, vr_api_aliases, &port);
	if (rc) {
		vr_log_error("start_failed", "listen", config.listen, "error", vr_err_str(rc));
		vr_xml_global_cleanup();
		vr_config_free(&config);
		return rc == VR_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	struct vr_relay *relay = NULL;
	if (vr_relay_start(&relay, &config)) {
		vr_log_error("start_failed", "error", "cannot start the job relay thread");
		vr_server_stop(server);
		vr_xml_global_cleanup();
		vr_config_free(&config);
		return EXIT_RUNTIME;
	}
	if (config.pid_file && write_number(config.pid_file, (long)getpid()))
		vr_log_warn("pid_file_failed", "path", config.pid_file);
	if (config.port_file && write_number(config.port_file, (long)port))
		vr_log_warn("port_file_failed", "path", config.port_file);
	char port_text[16], threads[16];
	snprintf(port_text, sizeof port_text, "%u", port);
	snprintf(threads, sizeof threads, "%u", config.threads);
	vr_log_info("started", "listen", config.listen, "port", port_text, "threads", threads,
		    "version", PACKAGE_VERSION);
	/* A database at another schema version than this build's is logged
	 * now (db_schema_mismatch); the API runs on and answers 503 until a
	 * connection finds the right version. */
	struct vr_db *db = NULL;
	if (vr_db_open(&db, config.database_uri) == 0)
		vr_db_close(db);

	vr_daemon_wait_for_stop(&signals, config.log_file);
	vr_relay_stop(relay);
	vr_server_stop(server);
	if (config.pid_file)
		unlink(config.pid_file);
	vr_log_info("stopped");
	vr_xml_global_cleanup();
	vr_config_free(&config);
	return 0;
}
