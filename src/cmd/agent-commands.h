/* vrcloud-agent's commands that protect VMs (docs/agent.md). */
#ifndef VRCLOUD_CMD_AGENT_COMMANDS_H
#define VRCLOUD_CMD_AGENT_COMMANDS_H

int vr_agent_cmd_protect(int argc, char **argv);
int vr_agent_cmd_unprotect(int argc, char **argv);
int vr_agent_cmd_status(int argc, char **argv);
int vr_agent_cmd_sync(int argc, char **argv);
/* The first line of path (or of standard input), white space at its end
 * cut; NULL when it cannot be read. */
char *vr_agent_cmd_read_secret(const char *path);

#endif
