/* vrcloudctl: the operator CLI. Global options, then one command from the
 * table in src/ctl/ctl.c; see 'vrcloudctl --help'. */
#include <stdio.h>

#include "ctl/ctl.h"
#include "vrcloud/log.h"

int main(int argc, char **argv)
{
	struct vr_ctl ctl;
	const struct vr_ctl_command *command;
	int first, status;

	vr_log_set_program(VR_CTL_PROGRAM);
	vr_ctl_init(&ctl);
	status = vr_ctl_parse_global(&first, &ctl, argc, argv);
	if (status != VR_CTL_EXIT_CONTINUE)
		goto out;
	command = vr_ctl_command_find(vr_ctl_commands, argv[first]);
	if (!command) {
		fprintf(stderr,
			VR_CTL_PROGRAM ": unknown command '%s'; run 'vrcloudctl --help' for the "
				       "list\n",
			argv[first]);
		status = VR_CTL_EXIT_USAGE;
		goto out;
	}
	status = command->run(&ctl, argc - first, argv + first);
out:
	vr_ctl_free(&ctl);
	if (fflush(stdout) != 0 && status == VR_CTL_EXIT_OK) {
		perror(VR_CTL_PROGRAM ": cannot write the output");
		status = VR_CTL_EXIT_FAILURE;
	}
	return status;
}
