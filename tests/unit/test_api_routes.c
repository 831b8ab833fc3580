/* The C route table and api-spec/routes.txt (the list the OpenAPI
 * description is checked against) name exactly the same routes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/http.h"

#define MAX_ROUTES 256

struct route_set {
	char *items[MAX_ROUTES];
	size_t n;
};

static void add(struct route_set *set, const char *text)
{
	cr_assert_lt(set->n, MAX_ROUTES);
	for (size_t i = 0; i < set->n; i++)
		cr_assert_str_neq(set->items[i], text, "listed twice: %s", text);
	set->items[set->n++] = strdup(text);
}

static bool contains(const struct route_set *set, const char *text)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->items[i], text) == 0)
			return true;
	return false;
}

/* "{orgId}" and friends -> "{id}", as the C table writes parameters. */
static void normalise(char *line)
{
	char *open;
	char *from = line;
	while ((open = strchr(from, '{')) != NULL) {
		char *close = strchr(open, '}');
		cr_assert_not_null(close, "unbalanced brace: %s", line);
		memmove(open + 4, close + 1, strlen(close + 1) + 1);
		memcpy(open, "{id}", 4);
		from = open + 4;
	}
}

static void read_spec_list(struct route_set *routes, struct route_set *aliases)
{
	const char *srcdir = getenv("VRCLOUD_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/api-spec/routes.txt", srcdir ? srcdir : VR_SRCDIR);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot read %s", path);
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		normalise(line);
		if (strncmp(line, "ALIAS ", 6) == 0)
			add(aliases, line + 6);
		else
			add(routes, line);
	}
	fclose(f);
}

Test(api_routes, table_and_spec_list_name_the_same_routes)
{
	struct route_set spec = {0}, spec_aliases = {0}, table = {0}, table_aliases = {0};
	read_spec_list(&spec, &spec_aliases);
	char text[512];
	for (const struct vr_route *r = vr_api_routes; r->method; r++) {
		snprintf(text, sizeof text, "%s %s", r->method, r->pattern);
		add(&table, text);
		if (r->flags & VR_ROUTE_SLASH) {
			snprintf(text, sizeof text, "%s %s/", r->method, r->pattern);
			add(&table, text);
		}
	}
	for (const struct vr_alias *a = vr_api_aliases; a->from; a++) {
		snprintf(text, sizeof text, "%s %s", a->from, a->to);
		add(&table_aliases, text);
	}
	for (size_t i = 0; i < table.n; i++)
		cr_expect(contains(&spec, table.items[i]), "route not in api-spec/routes.txt: %s",
			  table.items[i]);
	for (size_t i = 0; i < spec.n; i++)
		cr_expect(contains(&table, spec.items[i]), "api-spec/routes.txt lists a route the "
							  "server does not have: %s",
			  spec.items[i]);
	for (size_t i = 0; i < table_aliases.n; i++)
		cr_expect(contains(&spec_aliases, table_aliases.items[i]),
			  "alias not in api-spec/routes.txt: %s", table_aliases.items[i]);
	cr_expect_eq(spec_aliases.n, table_aliases.n, "alias counts differ");
	for (size_t i = 0; i < spec.n; i++)
		free(spec.items[i]);
	for (size_t i = 0; i < spec_aliases.n; i++)
		free(spec_aliases.items[i]);
	for (size_t i = 0; i < table.n; i++)
		free(table.items[i]);
	for (size_t i = 0; i < table_aliases.n; i++)
		free(table_aliases.items[i]);
}
