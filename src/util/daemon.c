#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>

#include "vrcloud/daemon.h"
#include "vrcloud/log.h"

void vr_daemon_block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int vr_daemon_wait_for_stop(const sigset_t *set, const char *log_file)
{
	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (vr_log_reopen(log_file))
				vr_log_warn("log_reopen_failed", "path", log_file);
			continue;
		}
		vr_log_info("stopping", "signal", sig == SIGTERM ? "TERM" : "INT");
		return sig;
	}
}

int vr_daemon_apply_flags(int argc, char **argv, const char *short_options,
			  const struct option *options, const struct vr_daemon_flag *flags,
			  size_t nflags, vr_daemon_set_fn set, void *config, const char *prog)
{
	optind = 1;
	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
		for (size_t i = 0; i < nflags; i++) {
			if (flags[i].opt != opt)
				continue;
			char *error = NULL;
			if (set(config, flags[i].section, flags[i].key, optarg, &error)) {
				fprintf(stderr, "%s: %s\n", prog, error ? error : "bad option");
				free(error);
				return -1;
			}
		}
	}
	return 0;
}
