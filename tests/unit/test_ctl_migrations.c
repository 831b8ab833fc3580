/* The migrations built into vrcloudctl are exactly migrations/NNNN_*.sql. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int is_migration(const struct dirent *entry)
{
	size_t len = strlen(entry->d_name);
	return len > 9 && strcmp(entry->d_name + len - 4, ".sql") == 0 && entry->d_name[4] == '_';
}

static char *slurp(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	cr_assert_geq(len, 0);
	rewind(f);
	char *data = malloc((size_t)len + 1);
	cr_assert_not_null(data);
	cr_assert_eq(fread(data, 1, (size_t)len, f), (size_t)len);
	data[len] = '\0';
	fclose(f);
	*len_out = (size_t)len;
	return data;
}

Test(ctl_migrations, embedded_files_match_the_tree)
{
	struct dirent **entries;
	int n = scandir(VR_SRCDIR "/migrations", &entries, is_migration, alphasort);

	cr_assert_gt(n, 0);
	cr_assert_eq(vr_ctl_migration_count, (size_t)n);
	for (int i = 0; i < n; i++) {
		const char *file = entries[i]->d_name;
		char path[4096], name[256];
		size_t len;

		cr_assert_eq(vr_ctl_migration_version[i], atoi(file), "%s", file);
		snprintf(name, sizeof name, "%.*s", (int)(strlen(file) - 9), file + 5);
		cr_assert_str_eq(vr_ctl_migration_name[i], name);
		snprintf(path, sizeof path, "%s/migrations/%s", VR_SRCDIR, file);
		char *sql = slurp(path, &len);
		/* the generator ends every line with a newline */
		if (len == 0 || sql[len - 1] != '\n') {
			sql = realloc(sql, len + 2);
			sql[len++] = '\n';
			sql[len] = '\0';
		}
		cr_assert_eq(strlen(vr_ctl_migration_sql[i]), len, "%s", file);
		cr_assert_eq(memcmp(vr_ctl_migration_sql[i], sql, len), 0, "%s differs", file);
		free(sql);
		free(entries[i]);
	}
	free(entries);
}

Test(ctl_migrations, versions_ascend)
{
	for (size_t i = 1; i < vr_ctl_migration_count; i++)
		cr_assert_gt(vr_ctl_migration_version[i], vr_ctl_migration_version[i - 1]);
	cr_assert_gt(vr_ctl_migration_version[0], 0);
}
