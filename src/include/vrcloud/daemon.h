/* What every vrcloud daemon's main does alike: take its stop and reload
 * signals synchronously in the main thread, and wait for them. */
#ifndef VRCLOUD_DAEMON_H
#define VRCLOUD_DAEMON_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (threads started
 * afterwards inherit the mask) and ignore SIGPIPE. Call before starting
 * any thread. */
void vr_daemon_block_signals(sigset_t *set);
/* Wait for SIGTERM or SIGINT and return it; SIGHUP meanwhile reopens
 * log_file (NULL: stderr stays). Logs the stop. */
int vr_daemon_wait_for_stop(const sigset_t *set, const char *log_file);

/* A command-line option that overrides one setting of the config file. */
struct vr_daemon_flag {
	int opt;
	const char *section, *key;
};

/* Sets one setting of a daemon's config; error_out gets a message the
 * caller frees. Returns 0 or a negative vr_err. */
typedef int (*vr_daemon_set_fn)(void *config, const char *section, const char *key,
				const char *value, char **error_out);

/* The second pass over a daemon's command line, after its config file is
 * loaded: every option listed in flags sets its setting through set.
 * Returns 0, or -1 after printing "prog: message" to stderr. */
int vr_daemon_apply_flags(int argc, char **argv, const char *short_options,
			  const struct option *options, const struct vr_daemon_flag *flags,
			  size_t nflags, vr_daemon_set_fn set, void *config, const char *prog);

#endif
