/* The VM directory's vm.ini: disks in device key order with their paths,
 * logs and sizes; every malformed file refused with a reason. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-vm-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char *cmd = vr_asprintf("rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

TestSuite(agent_vm, .init = setup, .fini = teardown);

static void write_ini(const char *text)
{
	char *path = vr_asprintf("%s/vm.ini", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

static void make_image(const char *name, off_t size)
{
	char *path = vr_asprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
	free(path);
}

Test(agent_vm, disks_in_device_key_order_with_paths_and_sizes)
{
	make_image("disk-2000.img", 8 * 4096);
	write_ini("[vm]\nname = demo-vm\npower = on\n"
		  "[disk 2001]\nfile = /abs/disk-b.img\nsize = 268435456\n"
		  "[disk 2000]\nfile = disk-2000.img ; the boot disk\n"
		  "[disk 16]\nfile = small.img\nsize = 4096\n");
	struct vr_vm vm;
	char *error = NULL;
	char *slashed = vr_asprintf("%s//", dir);
	cr_assert_eq(vr_vm_load(&vm, slashed, &error), 0, "%s", error);
	free(slashed);
	cr_assert_str_eq(vm.name, "demo-vm");
	cr_assert(vm.power_on);
	cr_assert_eq(vm.ndisks, 3);
	cr_assert_str_eq(vm.disks[0].key, "16");
	cr_assert_str_eq(vm.disks[1].key, "2000");
	cr_assert_str_eq(vm.disks[2].key, "2001");
	cr_assert_eq(vm.disks[1].size, 8 * 4096);
	cr_assert_eq(vm.disks[2].size, 268435456);
	cr_assert_eq(vm.disks[0].size, 4096);
	char *want = vr_asprintf("%s/disk-2000.img", dir);
	cr_assert_str_eq(vm.disks[1].path, want);
	char *want_cbt = vr_asprintf("%s.cbt", want);
	cr_assert_str_eq(vm.disks[1].cbt_path, want_cbt);
	cr_assert_str_eq(vm.disks[2].path, "/abs/disk-b.img");
	cr_assert_eq(vr_vm_disk_find(&vm, "2001"), &vm.disks[2]);
	cr_assert_null(vr_vm_disk_find(&vm, "7"));
	free(want);
	free(want_cbt);
	vr_vm_free(&vm);
}

Test(agent_vm, power_defaults_to_off)
{
	write_ini("[vm]\nname = x\n[disk 0]\nfile = a.img\nsize = 4096\n");
	struct vr_vm vm;
	char *error = NULL;
	cr_assert_eq(vr_vm_load(&vm, dir, &error), 0, "%s", error);
	cr_assert_not(vm.power_on);
	cr_assert_str_eq(vm.disks[0].key, "0");
	vr_vm_free(&vm);
}

Test(agent_vm, missing_file_is_not_found)
{
	struct vr_vm vm;
	char *error = NULL;
	cr_assert_eq(vr_vm_load(&vm, dir, &error), VR_ENOTFOUND);
	cr_assert_not_null(strstr(error, "vm.ini"));
	free(error);
}

Test(agent_vm, malformed_files_are_refused_with_a_reason)
{
	make_image("odd.img", 4097);
	static const struct {
		const char *text, *reason;
	} cases[] = {
		{"[disk 2000]\nfile = a.img\nsize = 4096\n", "name is required"},
		{"[vm]\nname = x\n", "no [disk KEY]"},
		{"[vm]\nname = x\ncolour = red\n[disk 1]\nfile = a\nsize = 4096\n", "unknown key"},
		{"[vm]\nname = x\npower = maybe\n[disk 1]\nfile = a\nsize = 4096\n", "power"},
		{"[vm]\nname = x\n[disks 1]\nfile = a\nsize = 4096\n", "unknown section"},
		{"[vm]\nname = x\n[disk -1]\nfile = a\nsize = 4096\n", "unknown section"},
		{"[vm]\nname = x\n[disk 01]\nfile = a\nsize = 4096\n", "unknown section"},
		{"[vm]\nname = x\n[disk 2147483648]\nfile = a\nsize = 4096\n", "unknown section"},
		{"[vm]\nname = x\n[disk 1]\nfile = a\nsize = 4095\n", "multiple of 4096"},
		{"[vm]\nname = x\n[disk 1]\nfile = a\nsize = 0\n", "multiple of 4096"},
		{"[vm]\nname = x\n[disk 1]\nfile = a\nsize = 12k\n", "multiple of 4096"},
		{"[vm]\nname = x\n[disk 1]\nsize = 4096\n", "has no file"},
		{"[vm]\nname = x\n[disk 1]\nfile = a\nfile = b\nsize = 4096\n",
		 "one non-empty file"},
		{"[vm]\nname = x\n[disk 1]\nfile = missing.img\n", "no size is given"},
		{"[vm]\nname = x\n[disk 1]\nfile = odd.img\n", "multiple of 4096"},
		{"[vm]\nname = x\n[disk 1]\nfile = a\nsize = 4096\n[disk 2]\nfile = a\nsize = 4096\n",
		 "the same file"},
		{"[vm]\nname = \x01x\n[disk 1]\nfile = a\nsize = 4096\n", "control character"},
		{"[vm]\nname x\n", "not an INI line"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_ini(cases[i].text);
		struct vr_vm vm;
		char *error = NULL;
		cr_assert_eq(vr_vm_load(&vm, dir, &error), VR_EINVAL, "case %zu", i);
		cr_assert_not_null(error, "case %zu", i);
		cr_assert_not_null(strstr(error, cases[i].reason), "case %zu: %s", i, error);
		free(error);
	}
}

Test(agent_vm, sixty_five_disks_are_too_many)
{
	char *text = vr_strdup("[vm]\nname = x\n");
	for (int i = 0; i < 65; i++) {
		char *more = vr_asprintf("%s[disk %d]\nfile = d%d.img\nsize = 4096\n", text, i, i);
		free(text);
		text = more;
	}
	write_ini(text);
	free(text);
	struct vr_vm vm;
	char *error = NULL;
	cr_assert_eq(vr_vm_load(&vm, dir, &error), VR_EINVAL);
	cr_assert_not_null(strstr(error, "more than 64"), "%s", error);
	free(error);
}
