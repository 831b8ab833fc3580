/* vrcloudctl: option and argument parsing shared by every command. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vrcloud/alloc.h"

#define OPT_FIRST 256

int vr_ctl_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, VR_CTL_PROGRAM ": %s: ", command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun 'vrcloudctl %s --help' for usage.\n", command);
	return VR_CTL_EXIT_USAGE;
}

/* The first line of a command's help is its synopsis ("Usage: ..."). */
static void print_usage_line(const char *help)
{
	size_t len = strcspn(help, "\n");
	fprintf(stderr, "%.*s\n", (int)len, help);
}

int vr_ctl_parse_args(const char **pos, size_t *npos_out, const char *command, const char *help,
		      size_t min_pos, size_t max_pos, const struct vr_ctl_opt *opts, int argc,
		      char **argv)
{
	size_t nopts = 0, npos;
	struct option *longopts;
	int opt, status = VR_CTL_EXIT_CONTINUE;

	while (opts && opts[nopts].name)
		nopts++;
	longopts = vr_calloc(nopts + 2, sizeof *longopts);
	for (size_t i = 0; i < nopts; i++) {
		longopts[i].name = opts[i].name;
		longopts[i].has_arg = opts[i].takes_value ? required_argument : no_argument;
		longopts[i].val = OPT_FIRST + (int)i;
	}
	longopts[nopts].name = "help";
	longopts[nopts].has_arg = no_argument;
	longopts[nopts].val = 'h';

	optind = 0; /* glibc: start afresh for this argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(help, stdout);
			status = VR_CTL_EXIT_OK;
			goto cleanup;
		}
		if (opt == ':') {
			status = vr_ctl_usage_error(command, "a value is needed after '%s'",
						    argv[optind - 1]);
			goto cleanup;
		}
		if (opt < OPT_FIRST || (size_t)(opt - OPT_FIRST) >= nopts) {
			status = vr_ctl_usage_error(command, "unknown option '%s'",
						    argv[optind - 1]);
			goto cleanup;
		}
		const struct vr_ctl_opt *o = &opts[opt - OPT_FIRST];
		if (*o->value) {
			status = vr_ctl_usage_error(command, "--%s is given twice", o->name);
			goto cleanup;
		}
		*o->value = o->takes_value ? optarg : "";
	}

	npos = (size_t)(argc - optind);
	if (npos < min_pos) {
		print_usage_line(help);
		status = vr_ctl_usage_error(command, "%s",
					    npos ? "too few arguments" : "arguments are missing");
		goto cleanup;
	}
	if (npos > max_pos) {
		print_usage_line(help);
		status = vr_ctl_usage_error(command, "unexpected argument '%s'",
					    argv[optind + (int)max_pos]);
		goto cleanup;
	}
	for (size_t i = 0; i < npos; i++)
		pos[i] = argv[optind + (int)i];
	if (npos_out)
		*npos_out = npos;
cleanup:
	free(longopts);
	return status;
}
