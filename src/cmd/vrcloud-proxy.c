/* vrcloud-proxy: terminates the agents' TLS tunnels (docs/tunnels.md). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "config.h"
#include "vrcloud/daemon.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/proxy.h"
#include "vrcloud/xml.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-proxy [OPTION]...\n"
	      "Terminate the TLS tunnels of vrcloud's on-premises agents: authenticate each\n"
	      "site by its credential, deliver the site's commands over its control\n"
	      "connection, and forward data connections to the workers.\n"
	      "\n"
	      "  -c, --config FILE          read settings from FILE (INI; see docs/tunnels.md)\n"
	      "  -n, --name NAME            this proxy's name, unique among proxies\n"
	      "                             (default: the host name)\n"
	      "  -l, --listen HOST:PORT     public TLS address (default 0.0.0.0:8443;\n"
	      "                             port 0 = any free port)\n"
	      "      --cert FILE            certificate chain, PEM, leaf first (required)\n"
	      "      --key FILE             its private key, PEM (required)\n"
	      "      --reverse-address H:P  where agents reach this proxy itself, not through\n"
	      "                             the load balancer (default <name>:<port>; port 0:\n"
	      "                             the bound public port)\n"
	      "      --internal-listen H:P  plain port where workers ask for reverse\n"
	      "                             connections (default 127.0.0.1:8444)\n"
	      "      --reverse-timeout S    seconds a worker waits for the site (default 30)\n"
	      "  -a, --api-url URL          vrcloud-api base URL (default http://127.0.0.1:8080)\n"
	      "  -k, --token-file FILE      file holding the service token of\n"
	      "                             `vrcloudctl service add NAME --kind proxy` (required)\n"
	      "  -r, --redis URI            redis://host:port[/db] or unix:///path[?db=N]\n"
	      "                             (default redis://127.0.0.1:6379/0)\n"
	      "      --redis-prefix PREFIX  key and channel prefix in Redis (default vrcloud)\n"
	      "      --heartbeat-interval S seconds between the agents' heartbeats (default 10)\n"
	      "      --registry-ttl S       seconds a site's registry entry outlives its last\n"
	      "                             heartbeat (default 30)\n"
	      "      --verify-cache S       seconds a checked credential is trusted (default 60)\n"
	      "      --route-cache S        seconds a replication's worker address is kept\n"
	      "                             (default 10; 0: ask the API every time)\n"
	      "      --shutdown-timeout S   seconds data connections get after SIGTERM\n"
	      "                             (default 10)\n"
	      "  -L, --log-level LEVEL      debug, info, warn or error (default info)\n"
	      "      --log-file FILE        log there instead of stderr (reopened on SIGHUP)\n"
	      "      --pid-file FILE        write the process id to FILE\n"
	      "      --port-file FILE       write the bound public and internal ports to FILE\n"
	      "  -h, --help                 show this help and exit\n"
	      "  -V, --version              show the version and exit\n"
	      "\n"
	      "Flags override the config file. The token is read from its file only: it is\n"
	      "never taken on the command line nor logged. SIGTERM or SIGINT: stop accepting,\n"
	      "close the control connections (agents reconnect to another proxy), let data\n"
	      "connections finish (up to the shutdown timeout) and exit 0. SIGHUP reopens the\n"
	      "log file and reads the certificate and key again: new connections get them,\n"
	      "open ones keep theirs; if they do not load, the old ones stay in use.\n"
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
	OPT_CERT = 256,
	OPT_KEY,
	OPT_REVERSE,
	OPT_ROUTE_CACHE,
	OPT_INTERNAL,
	OPT_REVERSE_TIMEOUT,
	OPT_PREFIX,
	OPT_HEARTBEAT,
	OPT_TTL,
	OPT_CACHE,
	OPT_SHUTDOWN,
	OPT_LOG_FILE,
	OPT_PID_FILE,
	OPT_PORT_FILE,
};

/* The config's setter, for vr_daemon_apply_flags. */
static int set_flag(void *config, const char *section, const char *key, const char *value,
		    char **error_out)
{
	return vr_proxy_config_set(config, section, key, value, error_out);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"name", required_argument, NULL, 'n'},
		{"listen", required_argument, NULL, 'l'},
		{"cert", required_argument, NULL, OPT_CERT},
		{"key", required_argument, NULL, OPT_KEY},
		{"reverse-address", required_argument, NULL, OPT_REVERSE},
		{"route-cache", required_argument, NULL, OPT_ROUTE_CACHE},
		{"internal-listen", required_argument, NULL, OPT_INTERNAL},
		{"reverse-timeout", required_argument, NULL, OPT_REVERSE_TIMEOUT},
		{"api-url", required_argument, NULL, 'a'},
		{"token-file", required_argument, NULL, 'k'},
		{"redis", required_argument, NULL, 'r'},
		{"redis-prefix", required_argument, NULL, OPT_PREFIX},
		{"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
		{"registry-ttl", required_argument, NULL, OPT_TTL},
		{"verify-cache", required_argument, NULL, OPT_CACHE},
		{"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
		{"log-level", required_argument, NULL, 'L'},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"port-file", required_argument, NULL, OPT_PORT_FILE},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const struct vr_daemon_flag flag_keys[] = {
		{'n', "proxy", "name"},
		{'l', "proxy", "listen"},
		{OPT_CERT, "proxy", "cert_file"},
		{OPT_KEY, "proxy", "key_file"},
		{OPT_REVERSE, "proxy", "reverse_address"},
		{OPT_ROUTE_CACHE, "proxy", "route_cache"},
		{OPT_INTERNAL, "proxy", "internal_listen"},
		{OPT_REVERSE_TIMEOUT, "proxy", "reverse_timeout"},
		{'a', "proxy", "api_url"},
		{'k', "proxy", "token_file"},
		{'r', "redis", "uri"},
		{OPT_PREFIX, "redis", "prefix"},
		{OPT_HEARTBEAT, "proxy", "heartbeat_interval"},
		{OPT_TTL, "proxy", "registry_ttl"},
		{OPT_CACHE, "proxy", "verify_cache"},
		{OPT_SHUTDOWN, "proxy", "shutdown_timeout"},
		{'L', "log", "level"},
		{OPT_LOG_FILE, "log", "file"},
		{OPT_PID_FILE, "proxy", "pid_file"},
		{OPT_PORT_FILE, "proxy", "port_file"},
	};
	static const char short_options[] = "c:n:l:a:k:r:L:hV";
	vr_log_set_program("vrcloud-proxy");
	struct vr_proxy_config config;
	vr_proxy_config_init(&config);

	/* Pass 1: find --config; pass 2 applies flags over the file. */
	const char *config_path = NULL;
	int opt;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		if (opt == 'c') {
			config_path = optarg;
		} else if (opt == 'h') {
			usage(stdout);
			vr_proxy_config_free(&config);
			return 0;
		} else if (opt == 'V') {
			printf("vrcloud-proxy %s\n", PACKAGE_VERSION);
			vr_proxy_config_free(&config);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			vr_proxy_config_free(&config);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vrcloud-proxy: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		vr_proxy_config_free(&config);
		return EXIT_USAGE;
	}
	char *error = NULL;
	if (config_path && vr_proxy_config_load(&config, config_path, &error)) {
		fprintf(stderr, "vrcloud-proxy: %s\n", error);
		free(error);
		vr_proxy_config_free(&config);
		return EXIT_CONFIG;
	}
	if (vr_daemon_apply_flags(argc, argv, short_options, options, flag_keys,
				  sizeof flag_keys / sizeof flag_keys[0], set_flag, &config,
				  "vrcloud-proxy")) {
		vr_proxy_config_free(&config);
		return EXIT_USAGE;
	}
	if (vr_proxy_config_check(&config, &error)) {
		fprintf(stderr, "vrcloud-proxy: %s\n", error);
		free(error);
		vr_proxy_config_free(&config);
		return EXIT_CONFIG;
	}
	vr_log_set_level(config.log_level);
	if (config.log_file && vr_log_reopen(config.log_file)) {
		fprintf(stderr, "vrcloud-proxy: cannot open log file %s: %s\n", config.log_file,
			strerror(errno));
		vr_proxy_config_free(&config);
		return EXIT_CONFIG;
	}

	/* The loop takes the signals through a signalfd; the verifier threads
	 * inherit the blocked mask. */
	sigset_t signals;
	vr_daemon_block_signals(&signals);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		vr_log_error("start_failed", "error", "libcurl could not be initialised");
		vr_proxy_config_free(&config);
		return EXIT_RUNTIME;
	}
	vr_xml_global_init();
	struct vr_proxy *proxy = NULL;
	int rc = vr_proxy_start(&proxy, &config, &signals, &error);
	if (rc) {
		vr_log_error("start_failed", "error", error ? error : vr_err_str(rc));
		free(error);
		vr_xml_global_cleanup();
		curl_global_cleanup();
		vr_proxy_config_free(&config);
		return rc == VR_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	if (config.pid_file && write_pid(config.pid_file))
		vr_log_warn("pid_file_failed", "path", config.pid_file);
	rc = vr_proxy_run(proxy);
	vr_proxy_free(proxy);
	if (config.pid_file)
		unlink(config.pid_file);
	vr_log_info(rc ? "failed" : "stopped");
	vr_xml_global_cleanup();
	curl_global_cleanup();
	vr_proxy_config_free(&config);
	return rc ? EXIT_RUNTIME : 0;
}
