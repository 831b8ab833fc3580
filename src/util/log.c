#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/timefmt.h"

static enum vr_log_level min_level = VR_LOG_INFO;
static const char *program = "vrcloud";
static __thread char request_id[64];
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

/* Longest part of one value that is logged; the rest becomes "...". Values
 * are cut here, never by a cap on the line, so every line ends. */
#define VALUE_MAX 8192

void vr_log_set_level(enum vr_log_level level)
{
	min_level = level;
}

int vr_log_parse_level(const char *name, enum vr_log_level *level_out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_out = (enum vr_log_level)i;
			return 0;
		}
	}
	return VR_EINVAL;
}

void vr_log_set_program(const char *name)
{
	program = name;
}

int vr_log_reopen(const char *path)
{
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return VR_EIO;
	pthread_mutex_lock(&write_lock);
	int rc = dup2(fd, STDERR_FILENO) < 0 ? VR_EIO : 0;
	pthread_mutex_unlock(&write_lock);
	close(fd);
	return rc;
}

void vr_log_set_request_id(const char *rid)
{
	if (rid)
		snprintf(request_id, sizeof request_id, "%s", rid);
	else
		request_id[0] = '\0';
}

/* Append value, quoted and escaped when it holds anything but plain
 * characters, so a tenant-chosen string can never forge a second field or
 * a second line. */
static void append_value(struct vr_buf *line, const char *value)
{
	bool plain = *value != '\0' && strnlen(value, VALUE_MAX + 1) <= VALUE_MAX;
	for (const char *p = value; plain && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
			plain = false;
			break;
		}
	}
	if (plain) {
		vr_buf_appends(line, value);
		return;
	}
	vr_buf_append(line, "\"", 1);
	const char *p;
	for (p = value; *p && p - value < VALUE_MAX; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			vr_buf_append(line, esc, 2);
		} else if (c == '\n') {
			vr_buf_append(line, "\\n", 2);
		} else if (c < ' ' || c == 0x7f) {
			vr_buf_printf(line, "\\x%02x", c);
		} else {
			vr_buf_append(line, p, 1);
		}
	}
	if (*p)
		vr_buf_append(line, "...", 3);
	vr_buf_append(line, "\"", 1);
}

void vr_log(enum vr_log_level level, const char *event, ...)
{
	if (level < min_level)
		return;
	char ts[VR_TIME_LEN + 1];
	vr_time_format(ts, vr_time_now_us());
	struct vr_buf line;
	vr_buf_init(&line, 0);
	vr_buf_printf(&line, "ts=%s level=%s prog=%s event=", ts, level_names[level], program);
	append_value(&line, event);
	if (request_id[0])
		vr_buf_printf(&line, " rid=%s", request_id);
	va_list ap;
	va_start(ap, event);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		const char *value = va_arg(ap, const char *);
		if (!value)
			continue;
		vr_buf_printf(&line, " %s=", key);
		append_value(&line, value);
	}
	va_end(ap);
	vr_buf_append(&line, "\n", 1);
	if (line.data) {
		pthread_mutex_lock(&write_lock);
		(void)!write(STDERR_FILENO, line.data, line.len);
		pthread_mutex_unlock(&write_lock);
	}
	vr_buf_free(&line);
}
