/* vrcloudctl: aligned tables and shell-safe key=value values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/alloc.h"

/* Length in bytes of the control character at s (C0, DEL, or a C1 control
 * in UTF-8), else 0. Such characters could drive the terminal, so tables
 * show '?' instead. */
static size_t control_len(const unsigned char *s)
{
	if (s[0] < 0x20 || s[0] == 0x7f)
		return 1;
	if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
		return 2;
	return 0;
}

/* Columns a cell takes: one per UTF-8 character. */
static size_t cell_width(const char *text)
{
	size_t width = 0;

	for (const unsigned char *s = (const unsigned char *)text; *s; s++)
		if ((*s & 0xc0) != 0x80)
			width++;
	return width;
}

static void put_cell(FILE *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	while (*s) {
		size_t n = control_len(s);
		if (n) {
			fputc('?', out);
			s += n;
		} else {
			fputc(*s++, out);
		}
	}
}

void vr_ctl_print_table(FILE *out, size_t ncols, size_t nrows, const char *const *cells)
{
	size_t *width;

	if (ncols == 0)
		return;
	width = vr_calloc(ncols, sizeof *width);
	for (size_t r = 0; r <= nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *cell = cells[r * ncols + c];
			size_t w = cell_width(cell ? cell : "");
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= nrows; r++) {
		const char *const *row = cells + r * ncols;
		size_t last = ncols; /* the row ends after its last non-empty cell */
		while (last > 1 && (!row[last - 1] || !row[last - 1][0]))
			last--;
		for (size_t c = 0; c < last; c++) {
			const char *cell = row[c] ? row[c] : "";
			put_cell(out, cell);
			if (c + 1 < last)
				fprintf(out, "%*s", (int)(width[c] - cell_width(cell) + 2), "");
		}
		fputc('\n', out);
	}
	free(width);
}

void vr_ctl_print_result(FILE *out, const PGresult *res, const char *const *headers)
{
	size_t ncols = (size_t)PQnfields(res);
	size_t nrows = (size_t)PQntuples(res);
	const char **cells = vr_calloc((nrows + 1) * ncols, sizeof *cells);

	for (size_t c = 0; c < ncols; c++)
		cells[c] = headers[c];
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < ncols; c++)
			if (!PQgetisnull(res, (int)r, (int)c))
				cells[(r + 1) * ncols + c] = PQgetvalue(res, (int)r, (int)c);
	vr_ctl_print_table(out, ncols, nrows, cells);
	free(cells);
}

char *vr_ctl_shell_quote(const char *value)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789@%+=:,./_-";
	size_t quotes = 0;
	char *quoted, *q;

	if (value[0] && value[strspn(value, safe)] == '\0')
		return vr_strdup(value);
	/* 'value' with each ' written as '\'' */
	for (const char *s = value; *s; s++)
		quotes += *s == '\'';
	q = quoted = vr_malloc(strlen(value) + 3 * quotes + 3);
	*q++ = '\'';
	for (const char *s = value; *s; s++) {
		if (*s == '\'') {
			memcpy(q, "'\\''", 4);
			q += 4;
		} else {
			*q++ = *s;
		}
	}
	*q++ = '\'';
	*q = '\0';
	return quoted;
}
