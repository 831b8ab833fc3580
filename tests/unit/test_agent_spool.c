/* The spool of an incremental instance: runs of at most 256 blocks in
 * order, the blocks as they were when copied, complete only once
 * committed, a damaged header refused. */
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
static char *disk_path, *spool_path;

#define BLOCKS 1000u

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-spool-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	disk_path = vr_asprintf("%s/disk.img", dir);
	spool_path = vr_asprintf("%s/r.spool", dir);
	int fd = open(disk_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	uint8_t block[VR_TX_BLOCK];
	for (unsigned b = 0; b < BLOCKS; b++) {
		memset(block, (int)(b * 7 + 1), sizeof block);
		memcpy(block, &b, sizeof b);
		cr_assert_eq(pwrite(fd, block, sizeof block, (off_t)b * VR_TX_BLOCK), VR_TX_BLOCK);
	}
	close(fd);
}

static void teardown(void)
{
	char *cmd = vr_asprintf("rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	free(disk_path);
	free(spool_path);
}

TestSuite(agent_spool, .init = setup, .fini = teardown);

static void set(uint8_t *bits, unsigned first, unsigned count)
{
	for (unsigned b = first; b < first + count; b++)
		bits[b / 8] |= (uint8_t)(1u << (b % 8));
}

static void info_init(struct vr_spool_info *info)
{
	memset(info, 0, sizeof *info);
	memset(info->instance, 0xab, sizeof info->instance);
	info->resume_token = 0x1122334455667788ull;
	info->point_in_time_ms = 1700000000123;
	info->ndisks = 2;
	strcpy(info->disks[0].key, "2000");
	info->disks[0].size = BLOCKS * VR_TX_BLOCK;
	strcpy(info->disks[1].key, "2001");
	info->disks[1].size = BLOCKS * VR_TX_BLOCK;
	info->generation[0] = 3;
	info->seq[0] = 77;
	info->generation[1] = 1;
	info->seq[1] = 9;
}

Test(agent_spool, runs_in_order_with_the_copied_blocks)
{
	uint8_t bits0[BLOCKS / 8 + 1] = {0}, bits1[BLOCKS / 8 + 1] = {0};
	set(bits0, 5, 1);
	set(bits0, 100, 600); /* cut into runs of 256, 256 and 88 */
	set(bits1, 999, 1);
	struct vr_spool_writer *w = NULL;
	cr_assert_eq(vr_spool_create(&w, spool_path), 0);
	int fd = open(disk_path, O_RDWR);
	cr_assert_eq(vr_spool_copy(w, 0, fd, bits0, BLOCKS), 0);
	/* a write after the copy does not reach the spool */
	uint8_t junk[VR_TX_BLOCK];
	memset(junk, 0xee, sizeof junk);
	cr_assert_eq(pwrite(fd, junk, sizeof junk, 5 * VR_TX_BLOCK), VR_TX_BLOCK);
	cr_assert_eq(vr_spool_copy(w, 1, fd, bits1, BLOCKS), 0);
	close(fd);
	struct vr_spool_reader *r = NULL;
	struct vr_spool_info info, got;
	cr_assert_eq(vr_spool_open(&r, spool_path, &got), VR_ENOTFOUND, "not complete yet");
	info_init(&info);
	cr_assert_eq(vr_spool_commit(w, &info), 0);
	cr_assert_eq(info.runs, 5);
	cr_assert_eq(info.blocks, 602);

	cr_assert_eq(vr_spool_open(&r, spool_path, &got), 0);
	cr_assert_eq(memcmp(got.instance, info.instance, VR_TX_ID), 0);
	cr_assert_eq(got.resume_token, info.resume_token);
	cr_assert_eq(got.point_in_time_ms, info.point_in_time_ms);
	cr_assert_eq(got.ndisks, 2);
	cr_assert_str_eq(got.disks[1].key, "2001");
	cr_assert_eq(got.seq[0], 77);
	cr_assert_eq(got.generation[1], 1);
	static const struct {
		unsigned disk, first, count;
	} want[] = {{0, 5, 1}, {0, 100, 256}, {0, 356, 256}, {0, 612, 88}, {1, 999, 1}};
	uint8_t *buf = malloc(VR_TX_MAX_PAYLOAD);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < 5; i++) {
			unsigned disk;
			uint64_t first;
			uint32_t count;
			cr_assert_eq(vr_spool_next(r, &disk, &first, &count, buf), 1);
			cr_assert_eq(disk, want[i].disk);
			cr_assert_eq(first, want[i].first);
			cr_assert_eq(count, want[i].count);
			for (uint32_t k = 0; k < count; k++) {
				unsigned b;
				memcpy(&b, buf + (size_t)k * VR_TX_BLOCK, sizeof b);
				cr_assert_eq(b, first + k, "block %u holds %u",
					     (unsigned)(first + k), b);
			}
		}
		unsigned disk;
		uint64_t first;
		uint32_t count;
		cr_assert_eq(vr_spool_next(r, &disk, &first, &count, buf), 0);
		cr_assert_eq(vr_spool_rewind(r), 0);
	}
	free(buf);
	vr_spool_close(r);
}

Test(agent_spool, a_damaged_or_truncated_spool_is_refused)
{
	uint8_t bits[BLOCKS / 8 + 1] = {0};
	set(bits, 0, 3);
	struct vr_spool_writer *w = NULL;
	cr_assert_eq(vr_spool_create(&w, spool_path), 0);
	int fd = open(disk_path, O_RDONLY);
	cr_assert_eq(vr_spool_copy(w, 0, fd, bits, BLOCKS), 0);
	close(fd);
	struct vr_spool_info info;
	info_init(&info);
	info.ndisks = 1;
	cr_assert_eq(vr_spool_commit(w, &info), 0);
	struct vr_spool_reader *r = NULL;
	/* the header's checksum */
	fd = open(spool_path, O_RDWR);
	uint8_t byte = 0x5a;
	cr_assert_eq(pwrite(fd, &byte, 1, 30), 1);
	cr_assert_eq(vr_spool_open(&r, spool_path, &info), VR_EINVAL);
	uint8_t token[8];
	for (int i = 0; i < 8; i++)
		token[i] = (uint8_t)(0x1122334455667788ull >> (8 * i));
	cr_assert_eq(pwrite(fd, token, 8, 24), 8);
	cr_assert_eq(vr_spool_open(&r, spool_path, &info), 0);
	vr_spool_close(r);
	/* a truncated run */
	cr_assert_eq(ftruncate(fd, VR_SPOOL_HEADER + 16 + 2 * VR_TX_BLOCK), 0);
	close(fd);
	cr_assert_eq(vr_spool_open(&r, spool_path, &info), VR_EINVAL);
	/* an abandoned spool leaves nothing */
	cr_assert_eq(vr_spool_create(&w, spool_path), 0);
	vr_spool_abort(w);
	char *tmp = vr_asprintf("%s.tmp", spool_path);
	cr_assert_neq(access(tmp, F_OK), 0);
	free(tmp);
}
