/* vrcloudctl: global options, command lookup and per-command arguments. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"

static const char help[] = "Usage: vrcloudctl thing do NAME [--flag] [--value V]\n";

/* run vr_ctl_parse_args over a NULL-terminated argument list */
static int parse(const char **pos, size_t *npos, size_t min_pos, size_t max_pos,
		 const struct vr_ctl_opt *opts, char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	return vr_ctl_parse_args(pos, npos, "thing do", help, min_pos, max_pos, opts, argc, argv);
}

Test(ctl_args, options_and_positionals_in_any_order)
{
	const char *flag = NULL, *value = NULL, *pos[2] = {NULL, NULL};
	const struct vr_ctl_opt opts[] = {
		{"flag", false, &flag},
		{"value", true, &value},
		{NULL, false, NULL},
	};
	char *argv[] = {"do", "first", "--value", "v 1", "second", "--flag", NULL};
	size_t npos = 0;

	cr_assert_eq(parse(pos, &npos, 1, 2, opts, argv), VR_CTL_EXIT_CONTINUE);
	cr_assert_eq(npos, 2);
	cr_assert_str_eq(pos[0], "first");
	cr_assert_str_eq(pos[1], "second");
	cr_assert_str_eq(value, "v 1");
	cr_assert_not_null(flag);
	cr_assert_str_eq(flag, "");
}

Test(ctl_args, absent_options_stay_null)
{
	const char *flag = NULL, *value = NULL, *pos[1];
	const struct vr_ctl_opt opts[] = {
		{"flag", false, &flag},
		{"value", true, &value},
		{NULL, false, NULL},
	};
	char *argv[] = {"do", "x", NULL};

	cr_assert_eq(parse(pos, NULL, 1, 1, opts, argv), VR_CTL_EXIT_CONTINUE);
	cr_assert_null(flag);
	cr_assert_null(value);
	cr_assert_str_eq(pos[0], "x");
}

Test(ctl_args, double_dash_ends_options)
{
	const char *pos[1];
	char *argv[] = {"do", "--", "--not-an-option", NULL};

	cr_assert_eq(parse(pos, NULL, 1, 1, NULL, argv), VR_CTL_EXIT_CONTINUE);
	cr_assert_str_eq(pos[0], "--not-an-option");
}

Test(ctl_args, help_prints_usage_and_succeeds, .init = cr_redirect_stdout)
{
	const char *pos[1];
	char *argv[] = {"do", "--help", NULL};
	char *short_argv[] = {"do", "-h", NULL};

	/* --help wins even when required arguments are missing */
	cr_assert_eq(parse(pos, NULL, 1, 1, NULL, argv), VR_CTL_EXIT_OK);
	cr_assert_eq(parse(pos, NULL, 1, 1, NULL, short_argv), VR_CTL_EXIT_OK);
	fflush(stdout);
	cr_assert_stdout_eq_str("Usage: vrcloudctl thing do NAME [--flag] [--value V]\n"
				"Usage: vrcloudctl thing do NAME [--flag] [--value V]\n");
}

Test(ctl_args, usage_errors, .init = cr_redirect_stderr)
{
	const char *value = NULL, *pos[2];
	const struct vr_ctl_opt opts[] = {
		{"value", true, &value},
		{NULL, false, NULL},
	};
	char *missing[] = {"do", NULL};
	char *extra[] = {"do", "a", "b", NULL};
	char *unknown[] = {"do", "a", "--bogus", NULL};
	char *no_value[] = {"do", "a", "--value", NULL};

	cr_assert_eq(parse(pos, NULL, 1, 1, opts, missing), VR_CTL_EXIT_USAGE);
	cr_assert_eq(parse(pos, NULL, 1, 1, opts, extra), VR_CTL_EXIT_USAGE);
	cr_assert_eq(parse(pos, NULL, 1, 1, opts, unknown), VR_CTL_EXIT_USAGE);
	value = NULL;
	cr_assert_eq(parse(pos, NULL, 1, 1, opts, no_value), VR_CTL_EXIT_USAGE);
}

Test(ctl_args, repeated_option_refused, .init = cr_redirect_stderr)
{
	const char *value = NULL, *pos[1];
	const struct vr_ctl_opt opts[] = {
		{"value", true, &value},
		{NULL, false, NULL},
	};
	char *argv[] = {"do", "a", "--value", "1", "--value", "2", NULL};

	cr_assert_eq(parse(pos, NULL, 1, 1, opts, argv), VR_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("vrcloudctl: thing do: --value is given twice\n"
				"Run 'vrcloudctl thing do --help' for usage.\n");
}

Test(ctl_args, global_options_stop_at_the_command)
{
	struct vr_ctl ctl;
	char *argv[] = {"vrcloudctl", "--database", "postgresql:///x", "--config", "/etc/v.conf",
			"org",	      "add",	    "--database",      NULL};
	int first = -1;

	vr_ctl_init(&ctl);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 8, argv), VR_CTL_EXIT_CONTINUE);
	cr_assert_eq(first, 5);
	cr_assert_str_eq(ctl.database_option, "postgresql:///x");
	cr_assert_str_eq(ctl.config_path, "/etc/v.conf");
	vr_ctl_free(&ctl);
}

Test(ctl_args, global_errors, .init = cr_redirect_stderr)
{
	struct vr_ctl ctl;
	char *none[] = {"vrcloudctl", NULL};
	char *unknown[] = {"vrcloudctl", "--bogus", "org", NULL};
	char *no_value[] = {"vrcloudctl", "--database", NULL};
	int first;

	vr_ctl_init(&ctl);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 1, none), VR_CTL_EXIT_USAGE);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 3, unknown), VR_CTL_EXIT_USAGE);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 2, no_value), VR_CTL_EXIT_USAGE);
	vr_ctl_free(&ctl);
}

Test(ctl_args, version_and_help, .init = cr_redirect_stdout)
{
	struct vr_ctl ctl;
	char *version[] = {"vrcloudctl", "--version", NULL};
	char *helps[] = {"vrcloudctl", "--help", NULL};
	int first;

	vr_ctl_init(&ctl);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 2, version), VR_CTL_EXIT_OK);
	cr_assert_eq(vr_ctl_parse_global(&first, &ctl, 2, helps), VR_CTL_EXIT_OK);
	fflush(stdout);
	vr_ctl_free(&ctl);
	cr_assert_stdout_neq_str("");
}

Test(ctl_args, command_table)
{
	const char *names[] = {"migrate", "org", "vdc", "user", "sysadmin", "seed-demo"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct vr_ctl_command *c = vr_ctl_command_find(vr_ctl_commands, names[i]);
		cr_assert_not_null(c, "%s", names[i]);
		cr_assert_str_eq(c->name, names[i]);
		cr_assert_not_null(c->run);
	}
	cr_assert_null(vr_ctl_command_find(vr_ctl_commands, "Org"));
	cr_assert_null(vr_ctl_command_find(vr_ctl_commands, "drop"));
}

Test(ctl_args, subcommands_need_no_database, .init = cr_redirect_stdout)
{
	struct vr_ctl ctl;
	char *argv[] = {"org", "--help", NULL};
	char *sub[] = {"user", "passwd", "--help", NULL};

	vr_ctl_init(&ctl);
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, argv), VR_CTL_EXIT_OK);
	cr_assert_eq(vr_ctl_cmd_user(&ctl, 3, sub), VR_CTL_EXIT_OK);
	cr_assert_null(ctl.conn);
	vr_ctl_free(&ctl);
}

/* Everything written to the redirected stderr so far (the caller frees). */
static char *captured_stderr(void)
{
	FILE *f = cr_get_redirected_stderr();
	char *text = calloc(1, 8192);

	fflush(stderr);
	cr_assert_not_null(text);
	size_t n = fread(text, 1, 8191, f);
	text[n] = '\0';
	return text;
}

/* a new config file for this test process, open for writing */
static FILE *config_file(char *path, size_t size)
{
	snprintf(path, size, "/tmp/vrcloud-ctl-test-%ld.conf", (long)getpid());
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot create %s", path);
	return f;
}

Test(ctl_args, no_database_is_a_config_error, .init = cr_redirect_stderr)
{
	struct vr_ctl ctl;
	char *org[] = {"org", "list", NULL};

	unsetenv("VRCLOUD_PGURI");
	vr_ctl_init(&ctl);
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	vr_ctl_free(&ctl);
	char *text = captured_stderr();
	cr_assert_not_null(strstr(text, "--database URI"), "%s", text);
	cr_assert_not_null(strstr(text, "VRCLOUD_PGURI"), "%s", text);
	free(text);
}

Test(ctl_args, uri_sources_in_order, .init = cr_redirect_stderr)
{
	struct vr_ctl ctl;
	char *org[] = {"org", "list", NULL};
	char path[64];
	FILE *f = config_file(path, sizeof path);

	fputs("[database]\nuri = postgresql://[::1\n", f);
	fclose(f);

	vr_ctl_init(&ctl);
	ctl.config_path = path;
	/* the config file is used only when nothing else names a database */
	unsetenv("VRCLOUD_PGURI");
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	setenv("VRCLOUD_PGURI", "host=127.0.0.1 nonsense_key=1", 1);
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	ctl.database_option = "postgresql://[::2";
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	cr_assert_null(ctl.conn);
	vr_ctl_free(&ctl);
	unsetenv("VRCLOUD_PGURI");
	unlink(path);

	char *text = captured_stderr();
	const char *config = strstr(text, "from [database] uri of the config file");
	const char *env = strstr(text, "from $VRCLOUD_PGURI");
	const char *option = strstr(text, "from --database");
	cr_assert(config && env && option && config < env && env < option, "%s", text);
	free(text);
}

Test(ctl_args, bad_config_file_is_a_config_error, .init = cr_redirect_stderr)
{
	struct vr_ctl ctl;
	char *org[] = {"org", "list", NULL};
	char path[64];
	FILE *f = config_file(path, sizeof path);

	fputs("[database]\nurl = postgresql:///x\n", f);
	fclose(f);

	unsetenv("VRCLOUD_PGURI");
	vr_ctl_init(&ctl);
	ctl.config_path = path;
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	ctl.config_path = "/nonexistent/vrcloud.conf";
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	vr_ctl_free(&ctl);
	unlink(path);

	char *text = captured_stderr();
	cr_assert_not_null(strstr(text, "url"), "%s", text);
	cr_assert_not_null(strstr(text, "/nonexistent/vrcloud.conf"), "%s", text);
	free(text);
}

Test(ctl_args, unparsable_uri_is_a_config_error, .init = cr_redirect_stderr)
{
	struct vr_ctl ctl;
	char *org[] = {"org", "list", NULL};

	vr_ctl_init(&ctl);
	ctl.database_option = "postgresql://[::1";
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	ctl.database_option = "host=127.0.0.1 nonsense_key=1";
	cr_assert_eq(vr_ctl_cmd_org(&ctl, 2, org), VR_CTL_EXIT_CONFIG);
	cr_assert_null(ctl.conn);
	vr_ctl_free(&ctl);
}
