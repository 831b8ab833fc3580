/* vrcloudctl: the command table, global options and dispatch. */
#include <config.h>

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/err.h"

const struct vr_ctl_command vr_ctl_commands[] = {
	{"migrate", "apply the database migrations built into this binary", vr_ctl_cmd_migrate},
	{"org", "add and list organizations", vr_ctl_cmd_org},
	{"vdc", "add, change and list virtual data centers", vr_ctl_cmd_vdc},
	{"user", "add, list, enable and disable users; change passwords", vr_ctl_cmd_user},
	{"sysadmin", "add a provider administrator (a sysadmin of org System)",
	 vr_ctl_cmd_sysadmin},
	{"seed-demo", "create a demo org, VDC and org administrator", vr_ctl_cmd_seed_demo},
	{"peer", "record and list sites paired with VDCs", vr_ctl_cmd_peer},
	{"replication", "configure and list replications", vr_ctl_cmd_replication},
	{"service", "credentials of workers and proxies for the internal API", vr_ctl_cmd_service},
	{"vapp", "list and show the vApps of replications", vr_ctl_cmd_vapp},
	{"instance", "list, pin and unpin the point-in-time instances of a replication",
	 vr_ctl_cmd_instance},
	{"tunnels", "list the sites connected to the proxies", vr_ctl_cmd_tunnels},
	{"tunnel-probe", "check a site's reverse path through the proxies", vr_ctl_cmd_tunnel_probe},
	{NULL, NULL, NULL},
};

static const char global_usage[] =
	"Usage: vrcloudctl [--database URI | --config FILE] COMMAND [ARGS...]\n";

static const char global_help_tail[] =
	"\n"
	"Global options (before the command):\n"
	"  --database URI   PostgreSQL connection URI or key=value string\n"
	"  --config FILE    vrcloud config file whose [database] uri is used\n"
	"  -h, --help       show this help\n"
	"  --version        print the version\n"
	"\n"
	"The database is the one given by --database, else by $VRCLOUD_PGURI,\n"
	"else by the [database] uri of the --config file.\n"
	"Run 'vrcloudctl COMMAND --help' for the arguments of a command.\n"
	"\n"
	"Exit status: 0 success, 1 the operation failed, 2 bad usage or input,\n"
	"3 bad configuration or no connection to the database.\n";

void vr_ctl_init(struct vr_ctl *ctl)
{
	memset(ctl, 0, sizeof *ctl);
}

void vr_ctl_free(struct vr_ctl *ctl)
{
	if (!ctl)
		return;
	if (ctl->conn)
		PQfinish(ctl->conn);
	ctl->conn = NULL;
}

void vr_ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs(VR_CTL_PROGRAM ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vr_ctl_exit_status(int err)
{
	switch (err) {
	case VR_OK: return VR_CTL_EXIT_OK;
	case VR_EINVAL:
	case VR_ETOOBIG: return VR_CTL_EXIT_USAGE;
	case VR_ECONFIG:
	case VR_EUNAVAIL: return VR_CTL_EXIT_CONFIG;
	default: return VR_CTL_EXIT_FAILURE;
	}
}

static void print_command_list(FILE *out, const struct vr_ctl_command *table)
{
	size_t width = 0;

	for (const struct vr_ctl_command *c = table; c->name; c++)
		if (strlen(c->name) > width)
			width = strlen(c->name);
	for (const struct vr_ctl_command *c = table; c->name; c++)
		fprintf(out, "  %-*s  %s\n", (int)width, c->name, c->summary);
}

static void print_global_help(void)
{
	fputs(global_usage, stdout);
	fputs("\nOperator tool for vrcloud: database migrations, organizations, VDCs and users.\n"
	      "\nCommands:\n",
	      stdout);
	print_command_list(stdout, vr_ctl_commands);
	fputs(global_help_tail, stdout);
}

static int global_usage_error(const char *problem, const char *option)
{
	vr_ctl_error("%s '%s'\nRun 'vrcloudctl --help' for usage.", problem, option);
	return VR_CTL_EXIT_USAGE;
}

int vr_ctl_parse_global(int *command_index_out, struct vr_ctl *ctl, int argc, char **argv)
{
	enum { OPT_DATABASE = 256, OPT_CONFIG, OPT_VERSION };
	static const struct option options[] = {
		{"database", required_argument, NULL, OPT_DATABASE},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	int opt;

	/* "+": stop at the command, whose own options come after it */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_DATABASE: ctl->database_option = optarg; break;
		case OPT_CONFIG: ctl->config_path = optarg; break;
		case 'h': print_global_help(); return VR_CTL_EXIT_OK;
		case OPT_VERSION:
			printf("vrcloudctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return VR_CTL_EXIT_OK;
		case ':': return global_usage_error("a value is needed after", argv[optind - 1]);
		default: return global_usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		fputs(global_usage, stderr);
		fputs(VR_CTL_PROGRAM ": no command given; run 'vrcloudctl --help' for the list\n",
		      stderr);
		return VR_CTL_EXIT_USAGE;
	}
	*command_index_out = optind;
	return VR_CTL_EXIT_CONTINUE;
}

const struct vr_ctl_command *vr_ctl_command_find(const struct vr_ctl_command *table,
						 const char *name)
{
	for (const struct vr_ctl_command *c = table; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int vr_ctl_dispatch(struct vr_ctl *ctl, const char *group, const char *help,
		    const struct vr_ctl_command *table, int argc, char **argv)
{
	if (argc < 2) {
		vr_ctl_error("%s: which subcommand? Run 'vrcloudctl %s --help' for the list.",
			     group, group);
		return VR_CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(help, stdout);
		fputs("\nSubcommands:\n", stdout);
		print_command_list(stdout, table);
		printf("\nRun 'vrcloudctl %s SUBCOMMAND --help' for the arguments of one.\n",
		       group);
		return VR_CTL_EXIT_OK;
	}
	const struct vr_ctl_command *sub = vr_ctl_command_find(table, argv[1]);
	if (!sub) {
		vr_ctl_error("%s: unknown subcommand '%s'; run 'vrcloudctl %s --help' for the list",
			     group, argv[1], group);
		return VR_CTL_EXIT_USAGE;
	}
	return sub->run(ctl, argc - 1, argv + 1);
}
