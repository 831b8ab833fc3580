/* vrcloud-agent: the on-premises end of the tunnels (docs/tunnels.md). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent-commands.h"
#include "config.h"
#include "vrcloud/agent.h"
#include "vrcloud/daemon.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/xml.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-agent [OPTION]...\n"
	      "       vrcloud-agent pair|protect|unprotect|status|sync ... (see COMMAND --help)\n"
	      "Keep the site's control connection to vrcloud's proxies: dial out over TLS\n"
	      "(the agent never listens), beat, take the commands the cloud sends and\n"
	      "acknowledge them, reconnect with backoff to any proxy when one goes away;\n"
	      "send instances of the protected VMs often enough to hold their RPOs\n"
	      "(docs/agent.md).\n"
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
	      "The state directory, the number of transfers at once and the fewest seconds\n"
	      "between two of one VM are [agent] state_dir, sync_workers and sync_floor.\n"
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

static void pair_usage(FILE *out)
{
	fputs("Usage: vrcloud-agent pair --api URL --user USER@ORG --vdc VDC_ID --site-name NAME\n"
	      "                          [OPTION]...\n"
	      "Pair this site with a VDC: log in to vrcloud-api, ask for the pairing, keep\n"
	      "the site credential (shown once) and the site's identity in the state\n"
	      "directory, follow the pairing Task until it ends, log out.\n"
	      "\n"
	      "  -a, --api URL            vrcloud-api's base URL (required)\n"
	      "  -u, --user USER@ORG      an administrator of the VDC's organization (required)\n"
	      "  -w, --password-file FILE read the password from FILE (default: one line from\n"
	      "                           standard input)\n"
	      "      --vdc VDC_ID         the VDC to pair with (required)\n"
	      "      --site-name NAME     the site's name as the cloud shows it (required)\n"
	      "      --site-uuid UUID     the site's UUID (default: the one site.ini holds,\n"
	      "                           else a new one)\n"
	      "      --description TEXT   the pairing's description\n"
	      "  -d, --state-dir DIR      where site.credential (mode 0600) and site.ini go\n"
	      "                           (default /var/lib/vrcloud-agent)\n"
	      "      --ca-file FILE       CA certificates of an https API\n"
	      "      --timeout S          seconds the pairing Task may take (default 120)\n"
	      "  -h, --help               show this help and exit\n"
	      "\n"
	      "Prints peer_id=, site_uuid= and credential_file= on success; the credential\n"
	      "itself is never printed. Exit status: 0 paired, 1 the API could not be\n"
	      "reached, 2 bad usage, 3 state directory or password file unusable, 4 the API\n"
	      "refused (login, rights, VDC, already paired), 5 the pairing failed or timed out.\n",
	      out);
}

/* The site_uuid a previous pairing left in dir/site.ini, "" when none. */
static void previous_site_uuid(char out[VR_UUID_LEN + 1], const char *dir)
{
	out[0] = '\0';
	char path[4096];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, VR_AGENT_SITE_FILE) >= sizeof path)
		return;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof line, f)) {
		char value[128];
		if (sscanf(line, "site_uuid = %127s", value) == 1 && vr_uuid_canon(out, value))
			out[0] = '\0';
	}
	fclose(f);
}

enum { OPT_VDC = 300, OPT_SITE_NAME, OPT_SITE_UUID, OPT_DESCRIPTION, OPT_PAIR_CA, OPT_TIMEOUT };

static int pair_main(int argc, char **argv)
{
	static const struct option options[] = {
		{"api", required_argument, NULL, 'a'},
		{"user", required_argument, NULL, 'u'},
		{"password-file", required_argument, NULL, 'w'},
		{"vdc", required_argument, NULL, OPT_VDC},
		{"site-name", required_argument, NULL, OPT_SITE_NAME},
		{"site-uuid", required_argument, NULL, OPT_SITE_UUID},
		{"description", required_argument, NULL, OPT_DESCRIPTION},
		{"state-dir", required_argument, NULL, 'd'},
		{"ca-file", required_argument, NULL, OPT_PAIR_CA},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vr_agent_pair_options o = {.state_dir = "/var/lib/vrcloud-agent", .timeout = 120};
	const char *password_file = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "a:u:w:d:h", options, NULL)) != -1) {
		switch (opt) {
		case 'a': o.api_url = optarg; break;
		case 'u': o.user = optarg; break;
		case 'w': password_file = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case OPT_VDC: o.vdc = optarg; break;
		case OPT_SITE_NAME: o.site_name = optarg; break;
		case OPT_SITE_UUID: o.site_uuid = optarg; break;
		case OPT_DESCRIPTION: o.description = optarg; break;
		case OPT_PAIR_CA: o.ca_file = optarg; break;
		case OPT_TIMEOUT: {
			char *end;
			unsigned long t = strtoul(optarg, &end, 10);
			if (*end || t == 0 || t > 86400) {
				fprintf(stderr, "vrcloud-agent pair: --timeout wants 1 to 86400 seconds\n");
				return EXIT_USAGE;
			}
			o.timeout = (unsigned)t;
			break;
		}
		case 'h': pair_usage(stdout); return 0;
		default: pair_usage(stderr); return EXIT_USAGE;
		}
	}
	char vdc[VR_UUID_LEN + 1];
	if (optind < argc || !o.api_url || !o.user || !o.vdc || !o.site_name ||
	    !strchr(o.user, '@') || vr_uuid_canon(vdc, o.vdc) ||
	    (strncmp(o.api_url, "http://", 7) != 0 && strncmp(o.api_url, "https://", 8) != 0)) {
		fprintf(stderr, "vrcloud-agent pair: --api (http:// or https://), --user USER@ORG, "
				"--vdc (a UUID) and --site-name are required (see --help)\n");
		return EXIT_USAGE;
	}
	o.vdc = vdc;
	char api[2048];
	snprintf(api, sizeof api, "%s", o.api_url);
	for (size_t n = strlen(api); n > 0 && api[n - 1] == '/'; n--)
		api[n - 1] = '\0';
	o.api_url = api;
	char previous[VR_UUID_LEN + 1];
	previous_site_uuid(previous, o.state_dir);
	if (!o.site_uuid && previous[0])
		o.site_uuid = previous;
	char *password = vr_agent_cmd_read_secret(password_file);
	if (!password) {
		fprintf(stderr, "vrcloud-agent pair: cannot read the password from %s\n",
			password_file ? password_file : "standard input");
		return EXIT_CONFIG;
	}
	o.password = password;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vrcloud-agent pair: cannot start the HTTP client\n");
		free(password);
		return EXIT_RUNTIME;
	}
	vr_xml_global_init();
	struct vr_agent_pair_result result;
	char *error = NULL;
	int rc = vr_agent_pair(&o, &result, &error);
	explicit_bzero(password, strlen(password));
	free(password);
	if (rc) {
		fprintf(stderr, "vrcloud-agent pair: %s\n", error ? error : "failed");
		if (result.peer_id[0])
			fprintf(stderr, "vrcloud-agent pair: peer %s, site %s\n", result.peer_id,
				result.site_uuid);
	} else {
		printf("peer_id=%s\nsite_uuid=%s\ncredential_file=%s/%s\n", result.peer_id,
		       result.site_uuid, o.state_dir, VR_AGENT_CREDENTIAL_FILE);
	}
	free(error);
	vr_xml_global_cleanup();
	curl_global_cleanup();
	return rc;
}

/* The config's setter, for vr_daemon_apply_flags. */
static int set_flag(void *config, const char *section, const char *key, const char *value,
		    char **error_out)
{
	return vr_agent_config_set(config, section, key, value, error_out);
}

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
	static const struct vr_daemon_flag flag_keys[] = {
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
	if (argc > 1 && strcmp(argv[1], "pair") == 0)
		return pair_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "protect") == 0)
		return vr_agent_cmd_protect(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "unprotect") == 0)
		return vr_agent_cmd_unprotect(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return vr_agent_cmd_status(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "sync") == 0)
		return vr_agent_cmd_sync(argc - 1, argv + 1);
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
	if (vr_daemon_apply_flags(argc, argv, short_options, options, flag_keys,
				  sizeof flag_keys / sizeof flag_keys[0], set_flag, &config,
				  "vrcloud-agent")) {
		vr_agent_config_free(&config);
		return EXIT_USAGE;
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
