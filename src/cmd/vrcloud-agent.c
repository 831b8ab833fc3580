/* vrcloud-agent: the on-premises end of the tunnels (docs/tunnels.md). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "vrcloud/agent.h"
#include "vrcloud/daemon.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-agent [OPTION]...\n"
	      "Keep the site's control connection to vrcloud's proxies: dial out over TLS\n"
	      "(the agent never listens), beat, take the commands the cloud sends and\n"
	      "acknowledge them, reconnect with backoff to any proxy when one goes away.\n"
	      "\n"
	      "  -c, --config FILE          read settings from FILE (INI; see docs/tunnels.md)\n"
	      "  -n, --name NAME            how the proxies' logs name this agent\n"
	      "                             (default: the host name)\n"
	      "  -p, --proxy H:P[,H:P...]   the proxies' load balancer, or proxies to try in\n"
	      "                             turn (required)\n"
	      "  -k, --credential-file FILE file holding the site credential (required)\n"
	      "      --ca-file FILE         CA certificates the proxy's chain must verify\n"
	      "                             against (PEM)\n"
	      "      --pin SHA256[,SHA256]  SHA-256 of the proxies' public keys (SPKI), 64 hex\n"
	      "                             digits each; at least one of --ca-file and --pin\n"
	      "      --server-name NAME     name the proxy's certificate must carry (default:\n"
	      "                             the host dialled)\n"
	      "      --connect-timeout S    seconds for TCP, TLS and the hello (default 10)\n"
	      "      --backoff-initial MS   first wait before reconnecting (default 500)\n"
	      "      --backoff-max S        longest wait between attempts (default 60)\n"
	      "  -L, --log-level LEVEL      debug, info, warn or error (default info)\n"
	      "      --log-file FILE        log there instead of stderr (reopened on SIGHUP)\n"
	      "      --pid-file FILE        write the process id to FILE\n"
	      "  -h, --help                 show this help and exit\n"
	      "  -V, --version              show the version and exit\n"
	      "\n"
	      "Flags override the config file. The credential is read from its file only and\n"
	      "is sent only after the proxy's certificate passed the CA and pin checks.\n"
	      "SIGTERM or SIGINT: close the connection and exit 0. SIGHUP reopens the log.\n"
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
	OPT_CA = 256,
	OPT_PIN,
	OPT_SERVER_NAME,
	OPT_CONNECT_TIMEOUT,
	OPT_BACKOFF_INITIAL,
	OPT_BACKOFF_MAX,
	OPT_LOG_FILE,
	OPT_PID_FILE,
};

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"name", required_argument, NULL, 'n'},
		{"proxy", required_argument, NULL, 'p'},
		{"credential-file", required_argument, NULL, 'k'},
		{"ca-file", required_argument, NULL, OPT_CA},
		{"pin", required_argument, NULL, OPT_PIN},
		{"server-name", required_argument, NULL, OPT_SERVER_NAME},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"backoff-initial", required_argument, NULL, OPT_BACKOFF_INITIAL},
		{"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
		{"log-level", required_argument, NULL, 'L'},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const struct {
		int opt;
		const char *section, *key;
	} flag_keys[] = {
		{'n', "agent", "name"},
		{'p', "agent", "proxy"},
		{'k', "agent", "credential_file"},
		{OPT_CA, "agent", "ca_file"},
		{OPT_PIN, "agent", "pin"},
		{OPT_SERVER_NAME, "agent", "server_name"},
		{OPT_CONNECT_TIMEOUT, "agent", "connect_timeout"},
		{OPT_BACKOFF_INITIAL, "agent", "backoff_initial"},
		{OPT_BACKOFF_MAX, "agent", "backoff_max"},
		{'L', "log", "level"},
		{OPT_LOG_FILE, "log", "file"},
		{OPT_PID_FILE, "agent", "pid_file"},
	};
	static const char short_options[] = "c:n:p:k:L:hV";
	vr_log_set_program("vrcloud-agent");
	struct vr_agent_config config;
	vr_agent_config_init(&config);

	const char *config_path = NULL;
	int opt;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		if (opt == 'c') {
			config_path = optarg;
		} else if (opt == 'h') {
			usage(stdout);
			vr_agent_config_free(&config);
			return 0;
		} else if (opt == 'V') {
			printf("vrcloud-agent %s\n", PACKAGE_VERSION);
			vr_agent_config_free(&config);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			vr_agent_config_free(&config);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vrcloud-agent: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		vr_agent_config_free(&config);
		return EXIT_USAGE;
	}
	char *error = NULL;
	if (config_path && vr_agent_config_load(&config, config_path, &error)) {
		fprintf(stderr, "vrcloud-agent: %s\n", error);
		free(error);
		vr_agent_config_free(&config);
		return EXIT_CONFIG;
	}
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++) {
			if (flag_keys[i].opt != opt)
				continue;
			if (vr_agent_config_set(&config, flag_keys[i].section, flag_keys[i].key,
						optarg, &error)) {
				fprintf(stderr, "vrcloud-agent: %s\n", error);
				free(error);
				vr_agent_config_free(&config);
				return EXIT_USAGE;
			}
		}
	}
	if (vr_agent_config_check(&config, &error)) {
		fprintf(stderr, "vrcloud-agent: %s\n", error);
		free(error);
		vr_agent_config_free(&config);
		return EXIT_CONFIG;
	}
	vr_log_set_level(config.log_level);
	if (config.log_file && vr_log_reopen(config.log_file)) {
		fprintf(stderr, "vrcloud-agent: cannot open log file %s: %s\n", config.log_file,
			strerror(errno));
		vr_agent_config_free(&config);
		return EXIT_CONFIG;
	}
	sigset_t signals;
	vr_daemon_block_signals(&signals);
	struct vr_agent *agent = NULL;
	int rc = vr_agent_start(&agent, &config, &error);
	if (rc) {
		vr_log_error("start_failed", "error", error ? error : vr_err_str(rc));
		free(error);
		vr_agent_config_free(&config);
		return rc == VR_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	if (config.pid_file && write_pid(config.pid_file))
		vr_log_warn("pid_file_failed", "path", config.pid_file);
	vr_log_info("started", "name", config.name, "proxy", config.proxy);
	vr_daemon_wait_for_stop(&signals, config.log_file);
	vr_agent_stop(agent);
	if (config.pid_file)
		unlink(config.pid_file);
	vr_log_info("stopped");
	vr_agent_config_free(&config);
	return 0;
}
