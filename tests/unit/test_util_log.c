/* Structured log lines: shape, levels, request ids, and value escaping that
 * no tenant-chosen string can use to forge a field or a line. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/timefmt.h"

/* --- capturing stderr ------------------------------------------------ */

static FILE *capture_file;
static int saved_stderr = -1;

static void capture_start(void)
{
	capture_file = tmpfile();
	cr_assert_not_null(capture_file);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(saved_stderr, 0);
	cr_assert_geq(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

/* Stop capturing; returns everything written (caller frees). */
static char *capture_end(size_t *len_out)
{
	fflush(stderr);
	cr_assert_geq(dup2(saved_stderr, STDERR_FILENO), 0);
	close(saved_stderr);
	saved_stderr = -1;
	/* the log writes with write(2) on fd 2: the FILE offset is stale */
	fseek(capture_file, 0, SEEK_END);
	long len = ftell(capture_file);
	cr_assert_geq(len, 0);
	char *text = malloc((size_t)len + 1);
	cr_assert_not_null(text);
	rewind(capture_file);
	cr_assert_eq(fread(text, 1, (size_t)len, capture_file), (size_t)len);
	text[len] = '\0';
	fclose(capture_file);
	capture_file = NULL;
	if (len_out)
		*len_out = (size_t)len;
	return text;
}

static void setup(void)
{
	vr_log_set_level(VR_LOG_DEBUG);
	vr_log_set_program("unittest");
	vr_log_set_request_id(NULL);
}

TestSuite(log, .init = setup);

/* --- a reader of log lines, written from the format's description ---- */

#define MAX_FIELDS 32

struct field {
	char key[64];
	char value[80000];
};

struct line {
	int n;
	struct field f[MAX_FIELDS];
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse one line (without its '\n') into key/value fields, undoing the
 * escapes. Returns false on anything that is not the documented format. */
static bool parse_line(const char *s, struct line *out)
{
	out->n = 0;
	while (*s) {
		if (out->n == MAX_FIELDS)
			return false;
		struct field *f = &out->f[out->n++];
		const char *eq = strchr(s, '=');
		if (!eq || eq == s || (size_t)(eq - s) >= sizeof f->key)
			return false;
		for (const char *k = s; k < eq; k++)
			if (*k == ' ' || *k == '"' || *k == '\n')
				return false;
		memcpy(f->key, s, (size_t)(eq - s));
		f->key[eq - s] = '\0';
		s = eq + 1;
		size_t o = 0;
		if (*s == '"') {
			s++;
			for (;;) {
				if (o + 1 >= sizeof f->value)
					return false;
				if (*s == '\0' || *s == '\n')
					return false; /* unterminated */
				if (*s == '"') {
					s++;
					break;
				}
				if (*s == '\\') {
					s++;
					if (*s == '"' || *s == '\\') {
						f->value[o++] = *s++;
					} else if (*s == 'n') {
						f->value[o++] = '\n';
						s++;
					} else if (*s == 'x' && hexval(s[1]) >= 0 &&
						   hexval(s[2]) >= 0) {
						f->value[o++] =
							(char)(hexval(s[1]) * 16 + hexval(s[2]));
						s += 3;
					} else {
						return false;
					}
				} else {
					if ((unsigned char)*s < ' ' || *s == 0x7f)
						return false; /* raw control character */
					f->value[o++] = *s++;
				}
			}
		} else {
			while (*s && *s != ' ') {
				if (o + 1 >= sizeof f->value)
					return false;
				if ((unsigned char)*s < ' ' || *s == '"' || *s == '=' || *s == '\\')
					return false;
				f->value[o++] = *s++;
			}
		}
		f->value[o] = '\0';
		if (*s == ' ')
			s++;
		else if (*s)
			return false;
	}
	return true;
}

static const char *field(const struct line *l, const char *key)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->f[i].key, key) == 0)
			return l->f[i].value;
	return NULL;
}

/* The output must be exactly one line; parse it. */
static struct line *one_line(const char *text)
{
	size_t len = strlen(text);
	cr_assert_gt(len, 0, "nothing was logged");
	cr_assert_eq(text[len - 1], '\n', "the line does not end with a newline: %s", text);
	cr_assert_eq(strchr(text, '\n'), text + len - 1, "more than one line: %s", text);
	struct line *l = malloc(sizeof *l);
	cr_assert_not_null(l);
	char *copy = strndup(text, len - 1);
	cr_assert(parse_line(copy, l), "not a well-formed line: %s", text);
	free(copy);
	return l;
}

/* --- tests ------------------------------------------------------------ */

Test(log, line_shape)
{
	capture_start();
	vr_log_info("service_started", "port", "8080", "listen", "127.0.0.1");
	char *text = capture_end(NULL);
	struct line *l = one_line(text);
	cr_assert_eq(l->n, 6, "%s", text);
	cr_assert_str_eq(l->f[0].key, "ts");
	cr_assert_eq(strlen(l->f[0].value), VR_TIME_LEN);
	cr_assert_eq(l->f[0].value[VR_TIME_LEN - 1], 'Z');
	cr_assert_str_eq(l->f[1].key, "level");
	cr_assert_str_eq(l->f[1].value, "info");
	cr_assert_str_eq(l->f[2].key, "prog");
	cr_assert_str_eq(l->f[2].value, "unittest");
	cr_assert_str_eq(l->f[3].key, "event");
	cr_assert_str_eq(l->f[3].value, "service_started");
	cr_assert_str_eq(l->f[4].key, "port");
	cr_assert_str_eq(l->f[4].value, "8080");
	cr_assert_str_eq(l->f[5].key, "listen");
	cr_assert_str_eq(l->f[5].value, "127.0.0.1");
	/* plain values are written as they are */
	cr_assert(strstr(text, " port=8080 listen=127.0.0.1\n") != NULL, "%s", text);
	free(l);
	free(text);
}

Test(log, levels)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		enum vr_log_level level = VR_LOG_ERROR;
		cr_assert_eq(vr_log_parse_level(names[i], &level), 0);
		cr_assert_eq((int)level, i);
	}
	enum vr_log_level level = VR_LOG_WARN;
	cr_assert_eq(vr_log_parse_level("Info", &level), VR_EINVAL);
	cr_assert_eq(vr_log_parse_level("", &level), VR_EINVAL);
	cr_assert_eq(vr_log_parse_level("warning", &level), VR_EINVAL);
	cr_assert_eq(level, VR_LOG_WARN, "unchanged after a refusal");

	vr_log_set_level(VR_LOG_WARN);
	capture_start();
	vr_log_debug("dropped_debug");
	vr_log_info("dropped_info");
	vr_log_warn("kept_warn");
	vr_log_error("kept_error");
	char *text = capture_end(NULL);
	cr_assert_null(strstr(text, "dropped"), "%s", text);
	char *second = strchr(text, '\n');
	cr_assert_not_null(second);
	*second++ = '\0';
	struct line *l = one_line(second);
	cr_assert_str_eq(field(l, "level"), "error");
	cr_assert_str_eq(field(l, "event"), "kept_error");
	free(l);
	strcat(text, "\n");
	l = one_line(text);
	cr_assert_str_eq(field(l, "level"), "warn");
	cr_assert_str_eq(field(l, "event"), "kept_warn");
	free(l);
	free(text);
}

Test(log, null_values_are_skipped)
{
	capture_start();
	vr_log_info("ev", "a", "1", "gone", (const char *)NULL, "b", "2");
	char *text = capture_end(NULL);
	struct line *l = one_line(text);
	cr_assert_null(field(l, "gone"), "%s", text);
	cr_assert_str_eq(field(l, "a"), "1");
	cr_assert_str_eq(field(l, "b"), "2");
	free(l);
	free(text);
}

Test(log, request_id)
{
	vr_log_set_request_id("0f8fad5b-d9cb-469f-a165-70867728950e");
	capture_start();
	vr_log_info("with_rid", "k", "v");
	vr_log_set_request_id(NULL);
	vr_log_info("without_rid", "k", "v");
	char *text = capture_end(NULL);
	char *second = strchr(text, '\n') + 1;
	struct line *l = one_line(second);
	cr_assert_null(field(l, "rid"), "%s", second);
	free(l);
	*second = '\0';
	l = one_line(text);
	cr_assert_str_eq(l->f[4].key, "rid", "rid follows event: %s", text);
	cr_assert_str_eq(l->f[4].value, "0f8fad5b-d9cb-469f-a165-70867728950e");
	free(l);
	free(text);
}

/* Values a tenant could choose, each of which must come back unchanged
 * from the line and must not add a field or a line. */
static const char *const hostile[] = {
	"two words",
	"",
	" ",
	"say \"hi\"",
	"\"",
	"a=b",
	"=",
	"x level=error event=forged",
	"x\" level=\"error",
	"line one\nts=2020-01-01T00:00:00.000Z level=error event=forged",
	"\n",
	"cr\rlf\r\n",
	"tab\there",
	"back\\slash",
	"\\\" level=error",
	"trailing\\",
	"bell\a esc\x1b del\x7f",
	"caf\xc3\xa9 \xe2\x9c\x93",
	"\xff\xfe",
};

Test(log, values_round_trip_and_cannot_forge)
{
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		capture_start();
		vr_log_warn("tenant_input", "name", hostile[i], "after", "ok");
		char *text = capture_end(NULL);
		struct line *l = one_line(text);
		cr_assert_eq(l->n, 6, "value #%zu added fields: %s", i, text);
		cr_assert_str_eq(field(l, "name"), hostile[i], "value #%zu: %s", i, text);
		cr_assert_str_eq(field(l, "after"), "ok");
		cr_assert_str_eq(field(l, "level"), "warn");
		cr_assert_str_eq(field(l, "event"), "tenant_input");
		free(l);
		free(text);
	}
}

Test(log, event_is_escaped_too)
{
	capture_start();
	vr_log_info("bad event\nlevel=error", "k", "v");
	char *text = capture_end(NULL);
	struct line *l = one_line(text);
	cr_assert_str_eq(field(l, "event"), "bad event\nlevel=error");
	cr_assert_str_eq(field(l, "level"), "info");
	free(l);
	free(text);
}

Test(log, special_values_are_quoted)
{
	capture_start();
	vr_log_info("ev", "a", "x y", "b", "", "c", "q\"", "d", "n\n", "e", "\x01");
	char *text = capture_end(NULL);
	cr_assert(strstr(text, " a=\"x y\" b=\"\" c=\"q\\\"\" d=\"n\\n\" e=\"\\x01\"\n") != NULL,
		  "%s", text);
	free(text);
}

/* A value longer than the line limit must not leave the line unterminated
 * (an open quote, no newline): the next line would merge into it. */
Test(log, huge_value_keeps_lines_apart)
{
	size_t n = 70000;
	char *big = malloc(n + 1);
	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 100 == 99) ? ' ' : 'a';
	big[n] = '\0';
	capture_start();
	vr_log_info("big_value", "name", big, "after", "1");
	vr_log_info("next_line", "k", "v");
	char *text = capture_end(NULL);
	size_t len = strlen(text);
	int lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (len == 0 || lines != 2 || text[len - 1] != '\n') {
		free(text);
		free(big);
		cr_assert_fail("%d line ends for two events: the long line was not ended", lines);
	}
	char *second = strchr(text, '\n') + 1;
	struct line *l = one_line(second);
	cr_assert_str_eq(field(l, "event"), "next_line");
	free(l);
	*second = '\0';
	l = one_line(text);
	cr_assert_str_eq(field(l, "event"), "big_value");
	/* the value may be cut (optionally marked by a trailing "..."), but
	 * what is logged of it is its beginning */
	const char *logged = field(l, "name");
	if (logged) {
		size_t kept = strlen(logged);
		if (kept >= 3 && strcmp(logged + kept - 3, "...") == 0)
			kept -= 3;
		cr_assert_eq(strncmp(logged, big, kept), 0, "the value was altered");
	}
	free(l);
	free(text);
	free(big);
}

struct writer_arg {
	int id;
};

static void *write_lines(void *p)
{
	struct writer_arg *a = p;
	char id[16];
	snprintf(id, sizeof id, "%d", a->id);
	for (int i = 0; i < 300; i++)
		vr_log_info("concurrent", "thread", id, "text", "some words with \"quotes\"");
	return NULL;
}

Test(log, concurrent_lines_stay_whole)
{
	enum { THREADS = 4 };
	pthread_t t[THREADS];
	struct writer_arg args[THREADS];
	capture_start();
	for (int i = 0; i < THREADS; i++) {
		args[i].id = i;
		cr_assert_eq(pthread_create(&t[i], NULL, write_lines, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	char *text = capture_end(NULL);
	int count[THREADS] = {0};
	char *save = NULL;
	struct line *l = malloc(sizeof *l);
	cr_assert_not_null(l);
	for (char *s = strtok_r(text, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		cr_assert(parse_line(s, l), "torn line: %s", s);
		const char *tid = field(l, "thread");
		cr_assert_not_null(tid);
		count[atoi(tid)]++;
		cr_assert_str_eq(field(l, "text"), "some words with \"quotes\"");
	}
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(count[i], 300, "thread %d: %d lines", i, count[i]);
	free(l);
	free(text);
}

Test(log, reopen_onto_a_file)
{
	char path[] = "/tmp/vrcloud-log-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	int saved = dup(STDERR_FILENO);
	cr_assert_eq(vr_log_reopen(NULL), 0, "NULL keeps stderr");
	cr_assert_eq(vr_log_reopen(path), 0);
	vr_log_info("to_file", "k", "v");
	cr_assert_eq(vr_log_reopen(path), 0, "reopening appends");
	vr_log_info("again");
	dup2(saved, STDERR_FILENO);
	close(saved);
	cr_assert_eq(vr_log_reopen("/nonexistent/dir/log"), VR_EIO);

	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char line1[512], line2[512];
	cr_assert_not_null(fgets(line1, sizeof line1, f));
	cr_assert_not_null(fgets(line2, sizeof line2, f));
	fclose(f);
	unlink(path);
	cr_assert(strstr(line1, " event=to_file k=v\n") != NULL, "%s", line1);
	cr_assert(strstr(line2, " event=again\n") != NULL, "%s", line2);
}
