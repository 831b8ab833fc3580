/* The agent's failback journal (src/agent/failback.c, docs/recovery.md):
 * a committed journal (.failback.apply) that a crash left is applied to
 * the VM's disks by the next failback, the stale changed-block log goes;
 * an uncommitted stage never reaches the disks. And the worker's intro
 * line of a failback stream, with hostile variants. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/agent.h"
#include "vrcloud/buf.h"
#include "vrcloud/err.h"
#include "vrcloud/failback.h"
#include "vrcloud/transfer.h"

static char dir[64];

static int rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-failback-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(agent_failback, .init = setup, .fini = teardown);

static void write_file(const char *name, const void *data, size_t len)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static bool present(const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* A VM of one 64 KiB disk of 0x11 bytes with a changed-block log. */
static void make_vm(void)
{
	const char ini[] = "[vm]\nname = t\n\n[disk 2000]\nfile = disk.img\nsize = 65536\n";
	write_file("vm.ini", ini, sizeof ini - 1);
	static unsigned char disk[65536];
	memset(disk, 0x11, sizeof disk);
	write_file("disk.img", disk, sizeof disk);
	write_file("disk.img.cbt", "log", 3);
}

/* A journal of one run: blocks 3 and 4 of disk "2000" set to 0x77. */
static size_t journal(unsigned char *out)
{
	size_t n = 0;
	memcpy(out, "VRFBJNL1", 8);
	n = 8;
	const unsigned char head[] = {0, 0, 0, 1, 4, '2', '0', '0', '0'};
	memcpy(out + n, head, sizeof head);
	n += sizeof head;
	const unsigned char rec[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2};
	memcpy(out + n, rec, sizeof rec);
	n += sizeof rec;
	memset(out + n, 0x77, 2 * VR_TX_BLOCK);
	return n + 2 * VR_TX_BLOCK;
}

static void read_disk(unsigned char *out)
{
	char path[128];
	snprintf(path, sizeof path, "%s/disk.img", dir);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, out, 65536), 65536);
	close(fd);
}

Test(agent_failback, a_committed_journal_left_by_a_crash_is_applied)
{
	make_vm();
	static unsigned char j[64 + 2 * VR_TX_BLOCK];
	size_t n = journal(j);
	write_file(".failback.apply", j, n);
	char *error = NULL;
	cr_assert_eq(vr_agent_failback_recover(dir, &error), 0, "%s", error ? error : "");
	static unsigned char disk[65536];
	read_disk(disk);
	for (size_t i = 0; i < sizeof disk; i++) {
		unsigned char want = i >= 3 * VR_TX_BLOCK && i < 5 * VR_TX_BLOCK ? 0x77 : 0x11;
		cr_assert_eq(disk[i], want, "byte %zu", i);
	}
	cr_assert_not(present(".failback.apply"));
	cr_assert_not(present("disk.img.cbt"), "the stale log is gone");
	/* applying again (a crash after the disks were written) is harmless */
	write_file(".failback.apply", j, n);
	cr_assert_eq(vr_agent_failback_recover(dir, &error), 0);
	static unsigned char again[65536];
	read_disk(again);
	cr_assert_eq(memcmp(disk, again, sizeof disk), 0);
}

Test(agent_failback, an_uncommitted_stage_never_reaches_the_disks)
{
	make_vm();
	static unsigned char j[64 + 2 * VR_TX_BLOCK];
	size_t n = journal(j);
	write_file(".failback.stage", j, n);
	char *error = NULL;
	cr_assert_eq(vr_agent_failback_recover(dir, &error), 0);
	static unsigned char disk[65536];
	read_disk(disk);
	for (size_t i = 0; i < sizeof disk; i++)
		cr_assert_eq(disk[i], 0x11);
	cr_assert_not(present(".failback.stage"));
	cr_assert(present("disk.img.cbt"));
}

Test(agent_failback, a_damaged_journal_is_refused_and_kept)
{
	make_vm();
	static unsigned char j[64 + 2 * VR_TX_BLOCK];
	size_t n = journal(j);
	j[20] = 0x7f; /* the run's disk index */
	write_file(".failback.apply", j, n);
	char *error = NULL;
	cr_assert_neq(vr_agent_failback_recover(dir, &error), 0);
	cr_assert_not_null(error);
	free(error);
	cr_assert(present(".failback.apply"), "kept for an operator to look at");
}

Test(agent_failback, intro_line)
{
	struct vr_buf b;
	vr_buf_init(&b, 0);
	const char *fb = "0c1b948c-8d28-4520-8648-d30aa634e785";
	const char *src = "c2ff5ee8-4a00-44f3-a1ec-b57b28936b7f";
	cr_assert_eq(vr_fb_intro_format(&b, fb, src), 0);
	char f[VR_UUID_LEN + 1], s[VR_UUID_LEN + 1];
	size_t used = 0;
	cr_assert_eq(vr_fb_intro_parse((const uint8_t *)b.data, b.len, &used, f, s), 0);
	cr_assert_eq(used, b.len);
	cr_assert_str_eq(f, fb);
	cr_assert_str_eq(s, src);
	for (size_t n = 0; n < b.len; n++)
		cr_assert_eq(vr_fb_intro_parse((const uint8_t *)b.data, n, &used, f, s),
			     VR_TX_ETRUNCATED, "prefix of %zu bytes", n);
	vr_buf_free(&b);
	const char *bad[] = {
		"VRCLOUD-FAILBACK 2 failback=x source=y\n",
		"VRCLOUD-DATA 1 peer=x\n",
		"VRCLOUD-FAILBACK 1 failback=0c1b948c-8d28-4520-8648-d30aa634e785\n",
		"VRCLOUD-FAILBACK 1 failback=0c1b948c-8d28-4520-8648-d30aa634e785 "
		"source=c2ff5ee8-4a00-44f3-a1ec-b57b28936b7f extra\n",
		"VRCLOUD-FAILBACK 1 failback=not-a-uuid source=c2ff5ee8-4a00-44f3-a1ec-b57b28936b7f\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = vr_fb_intro_parse((const uint8_t *)bad[i], strlen(bad[i]), &used, f, s);
		cr_assert(rc == VR_TX_EMAGIC || rc == VR_TX_EHEADER, "%s: %d", bad[i], rc);
	}
	static uint8_t noise[512];
	memset(noise, 'A', sizeof noise);
	memcpy(noise, "VRCLOUD-FAILBACK 1 ", 19);
	cr_assert_eq(vr_fb_intro_parse(noise, sizeof noise, &used, f, s), VR_TX_EHEADER);
}
