/* What every vrcloud daemon's main does alike: take its stop and reload
 * signals synchronously in the main thread, and wait for them. */
#ifndef VRCLOUD_DAEMON_H
#define VRCLOUD_DAEMON_H

#include <signal.h>

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (threads started
 * afterwards inherit the mask) and ignore SIGPIPE. Call before starting
 * any thread. */
void vr_daemon_block_signals(sigset_t *set);
/* Wait for SIGTERM or SIGINT and return it; SIGHUP meanwhile reopens
 * log_file (NULL: stderr stays). Logs the stop. */
int vr_daemon_wait_for_stop(const sigset_t *set, const char *log_file);

#endif
