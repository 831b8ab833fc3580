/* vrcloud-agent status and sync (docs/agent.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent-commands.h"
#include "vrcloud/agent.h"
#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_REFUSED = 4, EXIT_FAILED = 5 };

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- status ----------------------------------------------------------------- */

static void status_usage(FILE *out)
{
	fputs("Usage: vrcloud-agent status [-d STATE_DIR] [-c CONFIG]\n"
	      "A table of the protected VMs: replication, RPO, the newest instance and its\n"
	      "age, state and the next sync the schedule plans. While a sync runs and standard\n"
	      "output is a terminal, its progress bar follows until it ends.\n",
	      out);
}

static void age_text(char *out, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;
	if (s < 0)
		snprintf(out, size, "-");
	else if (s < 120)
		snprintf(out, size, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(out, size, "%" PRId64 "m", s / 60);
	else if (s < 172800)
		snprintf(out, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(out, size, "%" PRId64 "d", s / 86400);
}

static void time_text(char *out, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One row; true when a sync of it runs. */
static bool status_row(const char *state_dir, const char *id, unsigned floor_s, int64_t now)
{
	struct vr_agent_repl r;
	if (vr_agent_repl_load(&r, state_dir, id, NULL))
		return false;
	char last[32] = "-", age[16] = "-", next[32] = "-", state[32];
	bool busy = vr_agent_repl_busy(state_dir, id);
	struct vr_agent_schedule_in in = {.now_ms = now,
					  .last_pit_ms = r.point_in_time_ms,
					  .rpo_s = r.rpo * 60,
					  .recent_ms = r.recent_ms,
					  .nrecent = r.nrecent,
					  .floor_s = floor_s};
	int64_t at = vr_agent_schedule_next(&in);
	if (r.instance[0]) {
		time_text(last, sizeof last, r.point_in_time_ms);
		age_text(age, sizeof age, now - r.point_in_time_ms);
	}
	if (busy)
		snprintf(next, sizeof next, "running");
	else if (at <= now)
		snprintf(next, sizeof next, "due");
	else {
		char in_text[16];
		age_text(in_text, sizeof in_text, at - now);
		snprintf(next, sizeof next, "in %s", in_text);
	}
	if (!r.instance[0])
		snprintf(state, sizeof state, "%s", busy ? "initial sync" : "not synced yet");
	else if (now - r.point_in_time_ms > (int64_t)r.rpo * 60000)
		snprintf(state, sizeof state, "rpo violated");
	else
		snprintf(state, sizeof state, "ok");
	char rpo[16];
	snprintf(rpo, sizeof rpo, "%um", r.rpo);
	printf("%-20.20s %-36s %5s %-20s %7s %-14s %s\n", r.vm_name, r.id, rpo, last, age, state,
	       next);
	vr_agent_repl_free(&r);
	return busy;
}

int vr_agent_cmd_status(int argc, char **argv)
{
	static const struct option options[] = {
		{"state-dir", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vr_agent_config config;
	vr_agent_config_init(&config);
	const char *state_dir = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "d:c:h", options, NULL)) != -1) {
		char *error = NULL;
		if (opt == 'd') {
			state_dir = optarg;
		} else if (opt == 'c') {
			if (vr_agent_config_load(&config, optarg, &error)) {
				fprintf(stderr, "vrcloud-agent status: %s\n", error);
				free(error);
				vr_agent_config_free(&config);
				return EXIT_CONFIG;
			}
		} else {
			status_usage(opt == 'h' ? stdout : stderr);
			vr_agent_config_free(&config);
			return opt == 'h' ? 0 : EXIT_USAGE;
		}
	}
	if (!state_dir)
		state_dir = config.state_dir;
	char **ids;
	size_t n;
	if (vr_agent_repl_list(state_dir, &ids, &n)) {
		fprintf(stderr, "vrcloud-agent status: cannot read %s/%s\n", state_dir,
			VR_AGENT_REPL_DIR);
		vr_agent_config_free(&config);
		return EXIT_CONFIG;
	}
	printf("%-20s %-36s %5s %-20s %7s %-14s %s\n", "VM", "REPLICATION", "RPO", "LAST INSTANCE",
	       "AGE", "STATE", "NEXT SYNC");
	int64_t now = wall_ms();
	char *running = NULL;
	for (size_t i = 0; i < n; i++)
		if (status_row(state_dir, ids[i], config.sync_floor, now) && !running)
			running = vr_strdup(ids[i]);
	if (n && !vr_agent_scheduler_running(state_dir))
		printf("No vrcloud-agent daemon runs on %s: nothing is synced by its RPO until one "
		       "starts (NEXT SYNC says when it would).\n",
		       state_dir);
	fflush(stdout);
	if (running && isatty(STDOUT_FILENO)) {
		/* Follow the running sync until it ends. */
		struct vr_agent_progress p;
		while (vr_agent_repl_busy(state_dir, running)) {
			if (vr_agent_progress_load(state_dir, running, &p) == 0 && !p.finished) {
				char line[256];
				vr_agent_progress_format(line, sizeof line, &p, wall_ms(), 30);
				printf("\r%.8s %s\033[K", running, line);
				fflush(stdout);
			}
			usleep(250 * 1000);
		}
		printf("\r%.8s sync ended\033[K\n", running);
	}
	free(running);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	vr_agent_config_free(&config);
	return 0;
}

/* --- sync --------------------------------------------------------------------- */

static void sync_usage(FILE *out)
{
	fputs("Usage: vrcloud-agent sync VM [-c CONFIG] [OPTION]...\n"
	      "Take one instance of VM (its name or replication id) now and send it, in the\n"
	      "foreground, printing its progress. It never runs beside another sync of the\n"
	      "same VM (the daemon's): it waits for that one to end first.\n"
	      "\n"
	      "  -c, --config FILE          the agent's settings (INI, as the daemon's)\n"
	      "  -d, --state-dir DIR        the agent's state directory\n"
	      "  -p, --proxy H:P[,H:P...]   the proxies' load balancer, or proxies in turn\n"
	      "  -k, --credential-file FILE the site credential\n"
	      "      --ca-file FILE, --pin SHA256[,...], --server-name NAME,\n"
	      "      --connect-timeout S    as for the daemon\n"
	      "  -h, --help                 show this help and exit\n"
	      "\n"
	      "Exit status: 0 the instance is committed, 1 it failed, 2 bad usage, 3 bad\n"
	      "configuration, 4 the replica refused it.\n",
	      out);
}

struct bar {
	bool tty;
	int64_t last_line_ms;
	const char *state_dir;
};

static void on_progress(void *ctx, const struct vr_agent_progress *p)
{
	struct bar *b = ctx;
	char line[256];
	int64_t now = wall_ms();
	/* for `vrcloud-agent status` in another terminal, as the daemon does */
	vr_agent_progress_save(b->state_dir, p);
	vr_agent_progress_format(line, sizeof line, p, now, 30);
	if (b->tty) {
		printf("\r%s%s\033[K", line, p->finished ? "\n" : "");
		fflush(stdout);
	} else if (p->finished || now - b->last_line_ms >= 5000) {
		printf("%s\n", line);
		fflush(stdout);
		b->last_line_ms = now;
	}
}

enum { SOPT_CA = 500, SOPT_PIN, SOPT_SERVER_NAME, SOPT_CONNECT_TIMEOUT };

int vr_agent_cmd_sync(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"state-dir", required_argument, NULL, 'd'},
		{"proxy", required_argument, NULL, 'p'},
		{"credential-file", required_argument, NULL, 'k'},
		{"ca-file", required_argument, NULL, SOPT_CA},
		{"pin", required_argument, NULL, SOPT_PIN},
		{"server-name", required_argument, NULL, SOPT_SERVER_NAME},
		{"connect-timeout", required_argument, NULL, SOPT_CONNECT_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vr_agent_config config;
	vr_agent_config_init(&config);
	const char *keys[][2] = {
		{"agent", "state_dir"},	     {"agent", "proxy"}, {"agent", "credential_file"},
		{"agent", "ca_file"},	     {"agent", "pin"},	 {"agent", "server_name"},
		{"agent", "connect_timeout"}};
	char *error = NULL;
	int opt, rc = 0;
	/* The config file first, the flags over it. */
	for (int i = 1; i + 1 < argc; i++)
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    vr_agent_config_load(&config, argv[i + 1], &error)) {
			fprintf(stderr, "vrcloud-agent sync: %s\n", error);
			free(error);
			vr_agent_config_free(&config);
			return EXIT_CONFIG;
		}
	while (!rc && (opt = getopt_long(argc, argv, "c:d:p:k:h", options, NULL)) != -1) {
		int key = opt == 'd'			? 0
			  : opt == 'p'			? 1
			  : opt == 'k'			? 2
			  : opt == SOPT_CA		? 3
			  : opt == SOPT_PIN		? 4
			  : opt == SOPT_SERVER_NAME	? 5
			  : opt == SOPT_CONNECT_TIMEOUT ? 6
							: -1;
		if (key >= 0) {
			if (vr_agent_config_set(&config, keys[key][0], keys[key][1], optarg,
						&error)) {
				fprintf(stderr, "vrcloud-agent sync: %s\n", error);
				free(error);
				rc = EXIT_USAGE;
			}
		} else if (opt == 'h') {
			sync_usage(stdout);
			vr_agent_config_free(&config);
			return 0;
		} else if (opt != 'c') {
			sync_usage(stderr);
			rc = EXIT_USAGE;
		}
	}
	if (!rc && optind + 1 != argc) {
		sync_usage(stderr);
		rc = EXIT_USAGE;
	}
	if (!rc && vr_agent_config_check(&config, &error)) {
		fprintf(stderr, "vrcloud-agent sync: %s\n", error);
		free(error);
		rc = EXIT_CONFIG;
	}
	char id[VR_UUID_LEN + 1];
	if (!rc) {
		int found = vr_agent_repl_find(config.state_dir, argv[optind], id);
		if (found) {
			fprintf(stderr, "vrcloud-agent sync: %s\n",
				found == VR_ECONFLICT ? "several replications have that VM name: "
							"name the id"
						      : "no such protected VM here");
			rc = EXIT_USAGE;
		}
	}
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
	struct vr_agent_tls tls;
	memset(&tls, 0, sizeof tls);
	if (!rc && (vr_agent_credential_read(credential, config.credential_file, &error) ||
		    vr_agent_tls_init(&tls, &config, &error))) {
		fprintf(stderr, "vrcloud-agent sync: %s\n", error);
		free(error);
		rc = EXIT_CONFIG;
	}
	if (rc) {
		vr_agent_tls_free(&tls);
		vr_agent_config_free(&config);
		return rc;
	}
	vr_log_set_level(VR_LOG_WARN);
	struct bar bar = {isatty(STDOUT_FILENO) != 0, 0, config.state_dir};
	struct vr_agent_sync_env env = {.config = &config,
					.tls = &tls,
					.credential = credential,
					.state_dir = config.state_dir,
					.progress = on_progress,
					.progress_ctx = &bar};
	struct vr_agent_sync_result res;
	bool waited = false;
	for (unsigned resumed = 0;;) {
		rc = vr_agent_sync(&env, id, &res, &error);
		if (rc == 0 && res.spool_resumed && resumed++ == 0) {
			/* That was the instance an interrupted sync left; the one asked
			 * for is of the disks now. */
			char when[32];
			time_text(when, sizeof when, res.point_in_time_ms);
			fprintf(stderr,
				"vrcloud-agent sync: sent instance %s that an interrupted sync had "
				"left (point in time %s); now a new one\n",
				res.instance, when);
			continue;
		}
		if (rc != VR_ECONFLICT)
			break;
		if (!waited)
			fprintf(stderr, "vrcloud-agent sync: a sync of %s runs; waiting for it\n",
				argv[optind]);
		waited = true;
		free(error);
		error = NULL;
		sleep(1);
	}
	if (rc) {
		fprintf(stderr, "vrcloud-agent sync: %s\n", error ? error : vr_err_str(rc));
		rc = rc == VR_EFORBIDDEN ? EXIT_REFUSED
		     : rc == VR_EINVAL	 ? EXIT_CONFIG
					 : EXIT_RUNTIME;
	} else {
		char when[32], bytes[32];
		time_text(when, sizeof when, res.point_in_time_ms);
		vr_agent_bytes_format(bytes, sizeof bytes, res.sent_bytes);
		printf("instance=%s\nfull=%s\npoint_in_time=%s\nblocks=%" PRIu64
		       "\nsent_bytes=%" PRIu64 "\nseconds=%.3f\nattempts=%u\n",
		       res.instance, res.full ? "yes" : "no", when, res.blocks, res.sent_bytes,
		       res.duration_ms / 1000.0, res.attempts);
	}
	free(error);
	explicit_bzero(credential, sizeof credential);
	vr_agent_tls_free(&tls);
	vr_agent_config_free(&config);
	return rc;
}
