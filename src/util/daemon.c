#include <pthread.h>
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
