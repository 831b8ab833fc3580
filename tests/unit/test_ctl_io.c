/* vrcloudctl: switches, passwords from a stream, random passwords, shell
 * quoting and aligned tables. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "vrcloud/err.h"

/* vr_ctl_read_password over the bytes [data, data + len) */
static int read_from(char out[VR_PASSWORD_MAX + 1], const char *data, size_t len)
{
	FILE *in = fmemopen((void *)data, len, "r");
	cr_assert_not_null(in);
	int err = vr_ctl_read_password(out, in);
	fclose(in);
	return err;
}

#define READ(out, literal) read_from(out, literal, sizeof literal - 1)

Test(ctl_io, switches)
{
	bool on = false;

	cr_assert_eq(vr_ctl_parse_switch(&on, "on"), 0);
	cr_assert(on);
	cr_assert_eq(vr_ctl_parse_switch(&on, "OFF"), 0);
	cr_assert_not(on);
	cr_assert_eq(vr_ctl_parse_switch(&on, "yes"), VR_EINVAL);
	cr_assert_eq(vr_ctl_parse_switch(&on, ""), VR_EINVAL);
	cr_assert_eq(vr_ctl_parse_switch(&on, "onn"), VR_EINVAL);
}

Test(ctl_io, password_line)
{
	char pw[VR_PASSWORD_MAX + 1];

	cr_assert_eq(READ(pw, "s3cret\n"), 0);
	cr_assert_str_eq(pw, "s3cret");
	cr_assert_eq(READ(pw, "with spaces  \r\n"), 0);
	cr_assert_str_eq(pw, "with spaces  ");
	cr_assert_eq(READ(pw, "no newline"), 0);
	cr_assert_str_eq(pw, "no newline");
	/* only the first line counts */
	cr_assert_eq(READ(pw, "first\nsecond\n"), 0);
	cr_assert_str_eq(pw, "first");
	cr_assert_eq(READ(pw, "\xc3\xa9t\xc3\xa9\n"), 0);
	cr_assert_str_eq(pw, "\xc3\xa9t\xc3\xa9");
}

Test(ctl_io, password_refused)
{
	char pw[VR_PASSWORD_MAX + 1];

	cr_assert_eq(READ(pw, ""), VR_EINVAL);
	cr_assert_eq(READ(pw, "\n"), VR_EINVAL);
	cr_assert_eq(READ(pw, "\r\n"), VR_EINVAL);
	cr_assert_eq(READ(pw, "ab\0cd\n"), VR_EINVAL);
}

Test(ctl_io, password_length_limit)
{
	char pw[VR_PASSWORD_MAX + 1];
	size_t size = VR_PASSWORD_MAX + 3;
	char *data = malloc(size);

	cr_assert_not_null(data);
	memset(data, 'p', size);
	/* exactly the limit, with "\r\n" */
	data[VR_PASSWORD_MAX] = '\r';
	data[VR_PASSWORD_MAX + 1] = '\n';
	cr_assert_eq(read_from(pw, data, VR_PASSWORD_MAX + 2), 0);
	cr_assert_eq(strlen(pw), VR_PASSWORD_MAX);
	/* one byte over */
	data[VR_PASSWORD_MAX] = 'p';
	data[VR_PASSWORD_MAX + 1] = '\n';
	cr_assert_eq(read_from(pw, data, VR_PASSWORD_MAX + 2), VR_ETOOBIG);
	/* far over, no newline at all */
	cr_assert_eq(read_from(pw, data, size - 1), VR_ETOOBIG);
	free(data);
}

Test(ctl_io, random_passwords)
{
	char a[21], b[21];
	int seen[128] = {0};

	cr_assert_eq(vr_ctl_random_password(a, 20), 0);
	cr_assert_eq(vr_ctl_random_password(b, 20), 0);
	cr_assert_eq(strlen(a), 20);
	cr_assert_str_neq(a, b);
	for (int round = 0; round < 200; round++) {
		cr_assert_eq(vr_ctl_random_password(a, 20), 0);
		for (size_t i = 0; i < 20; i++) {
			unsigned char c = (unsigned char)a[i];
			cr_assert((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					  (c >= '0' && c <= '9'),
				  "character %d", c);
			seen[c]++;
		}
	}
	/* 4000 draws from 62 characters: every one shows up */
	int distinct = 0;
	for (int c = 0; c < 128; c++)
		distinct += seen[c] > 0;
	cr_assert_eq(distinct, 62);
}

Test(ctl_io, shell_quote)
{
	struct {
		const char *in, *out;
	} cases[] = {
		{"abc-DEF_1.2", "abc-DEF_1.2"},
		{"demo-admin@demo", "demo-admin@demo"},
		{"", "''"},
		{"two words", "'two words'"},
		{"it's", "'it'\\''s'"},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
		{"a~b", "'a~b'"},
		{"(unchanged)", "'(unchanged)'"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *q = vr_ctl_shell_quote(cases[i].in);
		cr_assert_str_eq(q, cases[i].out);
		free(q);
	}
}

/* the table printed into a string (the caller frees) */
static char *table(size_t ncols, size_t nrows, const char *const *cells)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	cr_assert_not_null(out);
	vr_ctl_print_table(out, ncols, nrows, cells);
	fclose(out);
	return text;
}

Test(ctl_io, table_alignment)
{
	const char *cells[] = {
		"ID", "NAME",	"SYSTEM", /* header */
		"1",  "System", "yes",	  /* first row */
		"22", "acme",	NULL,	  /* NULL prints as empty */
	};
	char *text = table(3, 2, cells);

	/* no trailing blanks when a row ends in empty cells */
	cr_assert_str_eq(text, "ID  NAME    SYSTEM\n"
			       "1   System  yes\n"
			       "22  acme\n");
	free(text);
}

Test(ctl_io, table_utf8_and_control_characters)
{
	const char *cells[] = {
		"NAME",	       "X", /* header */
		"caf\xc3\xa9", "1", /* 4 characters, 5 bytes */
		"a\x1b[31mb",  "2", /* ESC shown as '?' */
		"tab\there\n", "3", /* TAB and LF shown as '?' */
		"c1\xc2\x9b",  "4", /* C1 CSI shown as '?' */
	};
	char *text = table(2, 4, cells);

	cr_assert_str_eq(text, "NAME       X\n"
			       "caf\xc3\xa9       1\n"
			       "a?[31mb    2\n"
			       "tab?here?  3\n"
			       "c1?        4\n");
	free(text);
}

Test(ctl_io, result_table)
{
	static const char *const headers[] = {"ORG", "USERS"};
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[2] = {{.name = "name", .format = 0}, {.name = "count", .format = 0}};

	cr_assert_not_null(res);
	cr_assert(PQsetResultAttrs(res, 2, attrs));
	cr_assert(PQsetvalue(res, 0, 0, "acme", 4));
	cr_assert(PQsetvalue(res, 0, 1, "12", 2));
	cr_assert(PQsetvalue(res, 1, 0, "b", 1));
	cr_assert(PQsetvalue(res, 1, 1, NULL, -1));

	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	vr_ctl_print_result(out, res, headers);
	fclose(out);
	PQclear(res);
	cr_assert_str_eq(text, "ORG   USERS\n"
			       "acme  12\n"
			       "b\n");
	free(text);
}
