/* Freeze and thaw hooks of a quiesced replication (docs/agent.md): shell
 * commands the agent runs around the copy of an incremental instance's
 * blocks, with the replication named in their environment. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

int vr_agent_hook_run(const char *cmd, const char *hook, const struct vr_agent_repl *r,
		      unsigned timeout_s, char **error_out)
{
	/* Everything the child needs is made before fork: after it, only
	 * async-signal-safe calls (the daemon has threads). */
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = vr_calloc(n + 5, sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "VRCLOUD_", 8) != 0)
			envp[k++] = environ[i];
	char *own[4] = {
		vr_asprintf("VRCLOUD_VM=%s", r->vm_name ? r->vm_name : ""),
		vr_asprintf("VRCLOUD_VMDIR=%s", r->vmdir ? r->vmdir : ""),
		vr_asprintf("VRCLOUD_REPLICATION=%s", r->id),
		vr_asprintf("VRCLOUD_HOOK=%s", hook),
	};
	for (size_t i = 0; i < 4; i++)
		envp[k++] = own[i];
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	sigset_t none;
	sigemptyset(&none);
	pid_t pid = fork();
	if (pid == 0) {
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	int fork_errno = errno;
	for (size_t i = 0; i < 4; i++)
		free(own[i]);
	free(envp);
	if (pid < 0) {
		*error_out = vr_asprintf("%s hook: fork: %s", hook, strerror(fork_errno));
		return VR_EIO;
	}
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			*error_out = vr_asprintf("%s hook: waitpid: %s", hook, strerror(errno));
			return VR_EIO;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= (time_t)timeout_s) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			*error_out = vr_asprintf("%s hook did not end within %u s: killed", hook,
						 timeout_s);
			return VR_EIO;
		}
		struct timespec pause = {0, 20 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		*error_out =
			vr_asprintf("%s hook exited with status %d", hook, WEXITSTATUS(status));
	else
		*error_out = vr_asprintf("%s hook was killed by signal %d", hook,
					 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return VR_EIO;
}
