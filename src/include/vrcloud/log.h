/* Structured logging: one line per event on stderr, key=value pairs.
 *   ts=2026-11-26T06:00:00.000Z level=info event=request rid=... status=200
 * Values with spaces, quotes or '=' are quoted and escaped. A per-thread
 * request id is added to every line while one is set. */
#ifndef VRCLOUD_LOG_H
#define VRCLOUD_LOG_H

enum vr_log_level { VR_LOG_DEBUG = 0, VR_LOG_INFO, VR_LOG_WARN, VR_LOG_ERROR };

void vr_log_set_level(enum vr_log_level level);
/* Parse "debug", "info", "warn", "error"; returns 0 or VR_EINVAL. */
int vr_log_parse_level(const char *name, enum vr_log_level *level_out);
/* Name of the program put on every line (prog=...). */
void vr_log_set_program(const char *name);
/* Reopen stderr onto path (for SIGHUP); NULL keeps stderr as it is. */
int vr_log_reopen(const char *path);
/* Set/clear the current thread's request id (copied). */
void vr_log_set_request_id(const char *rid);

/* Log an event. kv is a list of key, value string pairs ended by NULL.
 * NULL values are skipped. */
void vr_log(enum vr_log_level level, const char *event, ...) __attribute__((sentinel));

#define vr_log_debug(...) vr_log(VR_LOG_DEBUG, __VA_ARGS__, (char *)NULL)
#define vr_log_info(...) vr_log(VR_LOG_INFO, __VA_ARGS__, (char *)NULL)
#define vr_log_warn(...) vr_log(VR_LOG_WARN, __VA_ARGS__, (char *)NULL)
#define vr_log_error(...) vr_log(VR_LOG_ERROR, __VA_ARGS__, (char *)NULL)

#endif
