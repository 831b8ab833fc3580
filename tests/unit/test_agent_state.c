/* The state of a protected replication: a round trip through its file (hook
 * commands with ';' and '#' kept whole), the list and lookup by id or VM
 * name, the lock, removal, refused files, settings changed by configChanged
 * and kept by a sync that records its instance meanwhile. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

#define ID1 "4b9fec16-a1a2-4bb1-a0ce-fc72afedbd31"
#define ID2 "0c9fec16-a1a2-4bb1-a0ce-fc72afedbd32"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-state-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char *cmd = vr_asprintf("rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

TestSuite(agent_state, .init = setup, .fini = teardown);

static void fill(struct vr_agent_repl *r, const char *id, const char *vm)
{
	memset(r, 0, sizeof *r);
	strcpy(r->id, id);
	r->vm_name = vr_strdup(vm);
	r->vmdir = vr_strdup("/srv/vms/demo");
	r->vdc = vr_strdup("0d6c0000-0000-4000-8000-000000000001");
	r->retention = vr_strdup("24x60,7x1440");
	r->freeze_cmd = vr_strdup("fsfreeze -f /mnt; echo frozen # really");
	r->thaw_cmd = vr_strdup("fsfreeze -u /mnt");
	r->rpo = 15;
	r->quiesce = true;
	r->ndisks = 2;
	strcpy(r->disks[0].key, "2000");
	r->disks[0].size = 268435456;
	r->disks[0].generation = 3;
	r->disks[0].seq = 1234;
	strcpy(r->disks[1].key, "2001");
	r->disks[1].size = 4096;
}

Test(agent_state, round_trip)
{
	struct vr_agent_repl r, back;
	fill(&r, ID1, "demo-vm");
	strcpy(r.instance, "9e1f0000-0000-4000-8000-000000000009");
	r.point_in_time_ms = 1795693202123;
	r.instance_bytes = 3588096;
	for (uint32_t ms = 1; ms <= 10; ms++)
		vr_agent_repl_add_duration(&r, ms * 100);
	char *error = NULL;
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0, "%s", error);
	cr_assert_eq(vr_agent_repl_load(&back, dir, ID1, &error), 0, "%s", error);
	cr_assert_str_eq(back.vm_name, "demo-vm");
	cr_assert_str_eq(back.freeze_cmd, "fsfreeze -f /mnt; echo frozen # really");
	cr_assert_str_eq(back.retention, "24x60,7x1440");
	cr_assert_eq(back.rpo, 15);
	cr_assert(back.quiesce);
	cr_assert_not(back.compress);
	cr_assert_str_eq(back.instance, r.instance);
	cr_assert_eq(back.point_in_time_ms, 1795693202123);
	cr_assert_eq(back.instance_bytes, 3588096);
	cr_assert_eq(back.nrecent, VR_AGENT_RECENT);
	cr_assert_eq(back.recent_ms[0], 1000, "newest first");
	cr_assert_eq(back.recent_ms[7], 300);
	cr_assert_eq(back.ndisks, 2);
	cr_assert_eq(back.disks[0].generation, 3);
	cr_assert_eq(back.disks[0].seq, 1234);
	cr_assert_str_eq(back.disks[1].key, "2001");
	vr_agent_repl_free(&back);
	vr_agent_repl_free(&r);
}

Test(agent_state, list_find_lock_and_remove)
{
	struct vr_agent_repl r;
	char *error = NULL;
	fill(&r, ID1, "demo-vm");
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0);
	vr_agent_repl_free(&r);
	fill(&r, ID2, "other-vm");
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0);
	vr_agent_repl_free(&r);
	char **ids;
	size_t n;
	cr_assert_eq(vr_agent_repl_list(dir, &ids, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(ids[0], ID2);
	cr_assert_str_eq(ids[1], ID1);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	char id[VR_UUID_LEN + 1];
	cr_assert_eq(vr_agent_repl_find(dir, "demo-vm", id), 0);
	cr_assert_str_eq(id, ID1);
	cr_assert_eq(vr_agent_repl_find(dir, "4B9FEC16-A1A2-4BB1-A0CE-FC72AFEDBD31", id), 0);
	cr_assert_str_eq(id, ID1);
	cr_assert_eq(vr_agent_repl_find(dir, "nobody", id), VR_ENOTFOUND);
	/* one sync of a replication at a time */
	int fd = -1, fd2 = -1;
	cr_assert_eq(vr_agent_repl_lock(dir, ID1, &fd), 0);
	cr_assert(vr_agent_repl_busy(dir, ID1));
	cr_assert_eq(vr_agent_repl_lock(dir, ID1, &fd2), VR_ECONFLICT);
	close(fd);
	cr_assert_not(vr_agent_repl_busy(dir, ID1));
	vr_agent_repl_remove(dir, ID1);
	cr_assert_eq(vr_agent_repl_load(&r, dir, ID1, NULL), VR_ENOTFOUND);
	cr_assert_eq(vr_agent_repl_find(dir, "demo-vm", id), VR_ENOTFOUND);
}

Test(agent_state, two_vms_of_one_name_are_ambiguous)
{
	struct vr_agent_repl r;
	char *error = NULL;
	fill(&r, ID1, "demo-vm");
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0);
	vr_agent_repl_free(&r);
	fill(&r, ID2, "demo-vm");
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0);
	vr_agent_repl_free(&r);
	char id[VR_UUID_LEN + 1];
	cr_assert_eq(vr_agent_repl_find(dir, "demo-vm", id), VR_ECONFLICT);
}

Test(agent_state, malformed_files_are_refused)
{
	char *rdir = vr_asprintf("%s/%s", dir, VR_AGENT_REPL_DIR);
	cr_assert_eq(mkdir(rdir, 0700), 0);
	char *path = vr_asprintf("%s/%s.ini", rdir, ID1);
	static const char *const cases[] = {
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\n",	      /* no rpo */
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\nrpo = 0\n", /* rpo */
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\nrpo = 5\nquiesce = yes\n",
		"[replication]\nid = nope\nvm = x\nvmdir = /x\nrpo = 5\n",
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\nrpo = 5\n[other]\na = b\n",
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\nrpo = 5\njunk line\n",
		"[replication]\nid = " ID1 "\nvm = x\nvmdir = /x\nrpo = 5\n[disk 1]\nseq = -1\n",
		"[replication]\nid = " ID1
		"\nvm = x\nvmdir = /x\nrpo = 5\n[last]\ntransfer_ms = 1,x\n",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *f = fopen(path, "w");
		fputs(cases[i], f);
		fclose(f);
		struct vr_agent_repl r;
		char *error = NULL;
		cr_assert_eq(vr_agent_repl_load(&r, dir, ID1, &error), VR_EINVAL, "case %zu", i);
		cr_assert_not_null(error);
		free(error);
	}
	free(path);
	free(rdir);
}

Test(agent_state, configure_changes_only_the_settings_named)
{
	struct vr_agent_repl r, back;
	fill(&r, ID1, "demo-vm");
	strcpy(r.instance, "9e1f0000-0000-4000-8000-000000000009");
	char *error = NULL;
	cr_assert_eq(vr_agent_repl_save(&r, dir, &error), 0, "%s", error);
	bool changed = true;
	struct vr_agent_settings same = {"15", "true", NULL, NULL};
	cr_assert_eq(vr_agent_repl_configure(dir, ID1, &same, &changed, &error), 0, "%s", error);
	cr_assert_not(changed);
	struct vr_agent_settings set = {"5", "false", "true", "12x10"};
	cr_assert_eq(vr_agent_repl_configure(dir, ID1, &set, &changed, &error), 0, "%s", error);
	cr_assert(changed);
	cr_assert_eq(vr_agent_repl_load(&back, dir, ID1, &error), 0, "%s", error);
	cr_assert_eq(back.rpo, 5);
	cr_assert_not(back.quiesce);
	cr_assert(back.compress);
	cr_assert_str_eq(back.retention, "12x10");
	cr_assert_str_eq(back.instance, r.instance, "the rest of the state stays");
	cr_assert_str_eq(back.freeze_cmd, r.freeze_cmd);
	cr_assert_eq(back.disks[0].seq, 1234);
	vr_agent_repl_free(&back);
	/* retention cleared; rpo alone */
	struct vr_agent_settings clear = {NULL, NULL, NULL, ""};
	cr_assert_eq(vr_agent_repl_configure(dir, ID1, &clear, &changed, &error), 0, "%s", error);
	cr_assert_eq(vr_agent_repl_load(&back, dir, ID1, &error), 0, "%s", error);
	cr_assert_null(back.retention);
	cr_assert_eq(back.rpo, 5);
	vr_agent_repl_free(&back);
	/* bad values change nothing */
	static const struct vr_agent_settings bad[] = {
		{"0", NULL, NULL, NULL},      {"1441", NULL, NULL, NULL}, {"5m", NULL, NULL, NULL},
		{NULL, "yes", NULL, NULL},    {NULL, NULL, "", NULL},	  {NULL, NULL, NULL, "12"},
		{NULL, NULL, NULL, "12x10,"}, {"7", NULL, NULL, "x10"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(vr_agent_repl_configure(dir, ID1, &bad[i], &changed, &error),
			     VR_EINVAL, "case %zu", i);
		cr_assert_not_null(error);
		free(error);
		error = NULL;
	}
	cr_assert_eq(vr_agent_repl_load(&back, dir, ID1, &error), 0, "%s", error);
	cr_assert_eq(back.rpo, 5);
	vr_agent_repl_free(&back);
	cr_assert_eq(vr_agent_repl_configure(dir, ID2, &set, &changed, &error), VR_ENOTFOUND);
	free(error);
	vr_agent_repl_free(&r);
}

Test(agent_state, a_sync_recording_its_instance_keeps_new_settings)
{
	/* a sync loaded the state before a configChanged was applied */
	struct vr_agent_repl during, back;
	fill(&during, ID1, "demo-vm");
	char *error = NULL;
	cr_assert_eq(vr_agent_repl_save(&during, dir, &error), 0, "%s", error);
	bool changed;
	struct vr_agent_settings set = {"3", "false", "true", "6x5"};
	cr_assert_eq(vr_agent_repl_configure(dir, ID1, &set, &changed, &error), 0, "%s", error);
	strcpy(during.instance, "9e1f0000-0000-4000-8000-000000000009");
	during.disks[0].seq = 99;
	cr_assert_eq(vr_agent_repl_save_synced(&during, dir, &error), 0, "%s", error);
	cr_assert_eq(vr_agent_repl_load(&back, dir, ID1, &error), 0, "%s", error);
	cr_assert_eq(back.rpo, 3);
	cr_assert_not(back.quiesce);
	cr_assert(back.compress);
	cr_assert_str_eq(back.retention, "6x5");
	cr_assert_str_eq(back.instance, "9e1f0000-0000-4000-8000-000000000009");
	cr_assert_eq(back.disks[0].seq, 99);
	vr_agent_repl_free(&back);
	vr_agent_repl_free(&during);
}
