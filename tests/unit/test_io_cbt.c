/* The changed-block log: records round trip, overlapping extents merge, a torn
 * tail is ignored, foreign headers are refused, reset is crash-safe, and an
 * unfinished writer leaves the log unclean until the next reset. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"

#define DISK_SIZE (1024u * 4096u + 100u) /* 1025 blocks, the last one partial */

static char dir[64];
static char *log_path;

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-cbt-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	log_path = vr_asprintf("%s/disk0.img.cbt", dir);
}

static void teardown(void)
{
	char *tmp = vr_asprintf("%s.tmp", log_path);
	unlink(tmp);
	unlink(log_path);
	rmdir(dir);
	free(tmp);
	free(log_path);
}

TestSuite(io_cbt, .init = setup, .fini = teardown);

static off_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	return st.st_size;
}

static void append_bytes(const char *path, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

static void overwrite_at(const char *path, off_t at, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bytes, len, at), (ssize_t)len);
	close(fd);
}

/* One clean session marking the given byte ranges (pairs offset, length). */
static void session(const uint64_t *ranges, size_t pairs)
{
	struct vr_cbt_writer *w = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0);
	for (size_t i = 0; i < pairs; i++)
		cr_assert_eq(vr_cbt_writer_mark(w, ranges[2 * i], ranges[2 * i + 1]), 0);
	cr_assert_eq(vr_cbt_writer_close_clean(w), 0);
	vr_cbt_writer_free(w);
}

/* The ranges of map as "first+count," text. */
static char *ranges_text(const struct vr_cbt_map *map)
{
	char *text = vr_strdup("");
	uint64_t cursor = 0, first, count;
	while (vr_cbt_map_next_range(map, &cursor, &first, &count)) {
		char *more = vr_asprintf("%s%llu+%llu,", text, (unsigned long long)first,
					 (unsigned long long)count);
		free(text);
		text = more;
	}
	return text;
}

Test(io_cbt, crc32c_check_value)
{
	cr_assert_eq(vr_cbt_crc32c("123456789", 9), 0xe3069283u);
}

Test(io_cbt, records_round_trip)
{
	const uint64_t ranges[] = {0, 4096, 8192, 1, 4095, 2, 1024ull * 4096, 100};
	session(ranges, 4);
	cr_assert_eq(file_size(log_path), VR_CBT_HEADER_SIZE + 6 * VR_CBT_RECORD_SIZE);

	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.generation, 1);
	cr_assert_eq(map.disk_size, DISK_SIZE);
	cr_assert_eq(map.block_size, 4096);
	cr_assert_eq(map.blocks, 1025);
	cr_assert_eq(map.records, 6); /* OPEN, 4 extents, CLOSE */
	cr_assert(map.clean);
	cr_assert_not(map.torn);
	/* byte 4095..4096 touches blocks 0 and 1; 8192 is block 2 */
	char *text = ranges_text(&map);
	cr_assert_str_eq(text, "0+3,1024+1,");
	cr_assert_eq(vr_cbt_map_count(&map), 4);
	cr_assert(vr_cbt_map_test(&map, 1024));
	cr_assert_not(vr_cbt_map_test(&map, 1025));
	free(text);
	vr_cbt_map_release(&map);
}

Test(io_cbt, small_writes_in_one_block_take_one_record)
{
	const uint64_t ranges[] = {0, 512, 512, 512, 1024, 3072, 4096, 512, 4608, 512, 0, 512};
	session(ranges, 6);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.records, 5); /* OPEN, block 0, block 1, block 0 again, CLOSE */
	cr_assert_eq(vr_cbt_map_count(&map), 2);
	vr_cbt_map_release(&map);
}

Test(io_cbt, overlapping_extents_merge)
{
	const uint64_t first[] = {10 * 4096, 10 * 4096, 15 * 4096, 10 * 4096};
	const uint64_t second[] = {12 * 4096, 8 * 4096, 100 * 4096, 4096, 300 * 4096, 4096};
	session(first, 2);
	session(second, 3);

	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert(map.clean);
	char *text = ranges_text(&map);
	cr_assert_str_eq(text, "10+15,100+1,300+1,");
	cr_assert_eq(vr_cbt_map_count(&map), 17);
	free(text);
	vr_cbt_map_release(&map);
}

Test(io_cbt, extent_past_the_disk_refused)
{
	struct vr_cbt_writer *w = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0);
	cr_assert_eq(vr_cbt_writer_mark(w, DISK_SIZE - 1, 2), VR_EINVAL);
	cr_assert_eq(vr_cbt_writer_mark(w, DISK_SIZE - 1, 1), 0);
	vr_cbt_writer_free(w);

	/* A well-formed record that names blocks past the disk is refused. */
	uint8_t r[VR_CBT_RECORD_SIZE] = {0};
	r[0] = VR_CBT_EXTENT;
	r[4] = 2;
	r[8] = 0x00;
	r[9] = 0x04; /* first = 1024 */
	r[16] = 3;   /* sequence number after OPEN and one extent */
	uint32_t crc = vr_cbt_crc32c(r, 28);
	for (int i = 0; i < 4; i++)
		r[28 + i] = (uint8_t)(crc >> (8 * i));
	append_bytes(log_path, r, sizeof r);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
}

Test(io_cbt, torn_tail_ignored)
{
	const uint64_t ranges[] = {0, 4096, 40960, 8192};
	session(ranges, 2);
	off_t good = file_size(log_path);

	/* half a record: the crash came in the middle of an append */
	append_bytes(log_path, "\x02\0\0\0\x05\0\0\0\x07", 9);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert(map.torn);
	cr_assert_not(map.clean);
	cr_assert_eq(map.records, 4);
	char *text = ranges_text(&map);
	cr_assert_str_eq(text, "0+1,10+2,");
	free(text);
	vr_cbt_map_release(&map);

	/* a whole record whose CRC does not match, and everything after it */
	cr_assert_eq(truncate(log_path, good), 0);
	uint8_t junk[2 * VR_CBT_RECORD_SIZE];
	memset(junk, 0x5a, sizeof junk);
	append_bytes(log_path, junk, sizeof junk);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert(map.torn);
	cr_assert_eq(map.records, 4);
	vr_cbt_map_release(&map);

	/* a flipped bit in the last real record drops that record */
	cr_assert_eq(truncate(log_path, good), 0);
	overwrite_at(log_path, good - 1, "\xff", 1);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert(map.torn);
	cr_assert_eq(map.records, 3);
	vr_cbt_map_release(&map);

	/* The next writer cuts the tail off and keeps the log unclean. */
	const uint64_t more[] = {500 * 4096, 4096};
	session(more, 1);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_not(map.torn);
	cr_assert_not(map.clean);
	cr_assert_eq(map.records, 3 + 4); /* UNCLEAN, OPEN, extent, CLOSE */
	text = ranges_text(&map);
	cr_assert_str_eq(text, "0+1,10+2,500+1,");
	free(text);
	vr_cbt_map_release(&map);
	cr_assert_eq(file_size(log_path), good + 3 * VR_CBT_RECORD_SIZE);
}

Test(io_cbt, unfinished_writer_is_unclean)
{
	struct vr_cbt_writer *w = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0);
	cr_assert_eq(vr_cbt_writer_mark(w, 0, 4096), 0);
	vr_cbt_writer_free(w); /* stopped without a clean close */

	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_not(map.clean);
	cr_assert_not(map.torn);
	vr_cbt_map_release(&map);

	/* a later clean session does not make the earlier loss clean */
	const uint64_t ranges[] = {4096, 4096};
	session(ranges, 1);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_not(map.clean);
	cr_assert_eq(vr_cbt_map_count(&map), 2);
	vr_cbt_map_release(&map);

	/* a reset after the hash comparison starts a clean generation */
	uint64_t generation = 0;
	cr_assert_eq(vr_cbt_reset(log_path, DISK_SIZE, &generation), 0);
	cr_assert_eq(generation, 2);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert(map.clean);
	cr_assert_eq(vr_cbt_map_count(&map), 0);
	vr_cbt_map_release(&map);
}

static void write_header(const char *magic, uint32_t version, uint32_t block_size, bool good_crc)
{
	uint8_t h[VR_CBT_HEADER_SIZE] = {0};
	memcpy(h, magic, 8);
	for (int i = 0; i < 4; i++) {
		h[8 + i] = (uint8_t)(version >> (8 * i));
		h[12 + i] = (uint8_t)(block_size >> (8 * i));
	}
	h[17] = 0x10; /* disk size 4096 */
	h[24] = 1;    /* generation 1 */
	uint32_t crc = vr_cbt_crc32c(h, 60) ^ (good_crc ? 0 : 1);
	for (int i = 0; i < 4; i++)
		h[60 + i] = (uint8_t)(crc >> (8 * i));
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, h, sizeof h), (ssize_t)sizeof h);
	close(fd);
}

Test(io_cbt, foreign_headers_refused)
{
	struct vr_cbt_map map;
	struct vr_cbt_writer *w = NULL;

	write_header(VR_CBT_MAGIC, VR_CBT_VERSION, 4096, true);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.disk_size, 4096);
	vr_cbt_map_release(&map);

	write_header("VRCBTLOX", VR_CBT_VERSION, 4096, true);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, 4096), VR_EINVAL);
	write_header(VR_CBT_MAGIC, 2, 4096, true);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, 4096), VR_EINVAL);
	write_header(VR_CBT_MAGIC, VR_CBT_VERSION, 512, true);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
	write_header(VR_CBT_MAGIC, VR_CBT_VERSION, 4096, false);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
	/* a refused log is left as it was */
	cr_assert_eq(file_size(log_path), VR_CBT_HEADER_SIZE);

	cr_assert_eq(truncate(log_path, 10), 0);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_EINVAL);
	unlink(log_path);
	cr_assert_eq(vr_cbt_read(&map, log_path), VR_ENOTFOUND);
}

Test(io_cbt, other_disk_size_or_second_writer_refused)
{
	struct vr_cbt_writer *w = NULL, *other = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0);
	cr_assert_eq(vr_cbt_writer_open(&other, log_path, DISK_SIZE), VR_ECONFLICT);
	uint64_t generation = 0;
	cr_assert_eq(vr_cbt_reset(log_path, DISK_SIZE, &generation), VR_ECONFLICT);
	cr_assert_eq(vr_cbt_writer_close_clean(w), 0);
	vr_cbt_writer_free(w);
	cr_assert_eq(vr_cbt_writer_open(&other, log_path, DISK_SIZE + 4096), VR_ECONFLICT);
}

Test(io_cbt, reset_survives_a_crash_at_each_step)
{
	const uint64_t ranges[] = {0, 3 * 4096};
	session(ranges, 1);
	char *tmp = vr_asprintf("%s.tmp", log_path);
	struct vr_cbt_map map;

	/* crash while the new file was being written: a partial temporary file */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "VRCBT", 5), 5);
	close(fd);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.generation, 1);
	cr_assert_eq(vr_cbt_map_count(&map), 3);
	cr_assert(map.clean);
	vr_cbt_map_release(&map);

	/* crash after the new file was synced, before the rename */
	cr_assert_eq(vr_cbt_create(tmp, DISK_SIZE, 2), 0);
	cr_assert_eq(access(tmp, F_OK), 0);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.generation, 1);
	cr_assert_eq(vr_cbt_map_count(&map), 3);
	vr_cbt_map_release(&map);

	/* the reset after restart replaces the leftovers and the old log */
	uint64_t generation = 0;
	cr_assert_eq(vr_cbt_reset(log_path, DISK_SIZE, &generation), 0);
	cr_assert_eq(generation, 2);
	cr_assert_eq(access(tmp, F_OK), -1);
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.generation, 2);
	cr_assert_eq(map.records, 0);
	cr_assert_eq(vr_cbt_map_count(&map), 0);
	cr_assert(map.clean);
	vr_cbt_map_release(&map);
	cr_assert_eq(file_size(log_path), VR_CBT_HEADER_SIZE);

	/* a reset of a log that cannot be read starts over at generation 1 */
	overwrite_at(log_path, 0, "XX", 2);
	cr_assert_eq(vr_cbt_reset(log_path, DISK_SIZE, &generation), 0);
	cr_assert_eq(generation, 1);
	free(tmp);
}

Test(io_cbt, changes_after_a_sequence_number)
{
	const uint64_t first[] = {10 * 4096, 4096, 20 * 4096, 4096};
	const uint64_t second[] = {30 * 4096, 2 * 4096, 10 * 4096, 4096};
	session(first, 2); /* records 1 OPEN, 2, 3, 4 CLOSE */
	session(second, 2); /* records 5 OPEN, 6, 7, 8 CLOSE */

	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 4), 0);
	cr_assert_eq(map.last_seq, 8);
	cr_assert_eq(map.generation, 1);
	cr_assert_eq(map.extents_since, 2);
	cr_assert(map.clean_since);
	cr_assert_not(map.in_session);
	char *text = ranges_text(&map);
	cr_assert_str_eq(text, "10+1,30+2,");
	free(text);
	vr_cbt_map_release(&map);

	/* after record 6, only record 7 counts */
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 6), 0);
	text = ranges_text(&map);
	cr_assert_str_eq(text, "10+1,");
	free(text);
	vr_cbt_map_release(&map);

	/* nothing after the last record */
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 8), 0);
	cr_assert_eq(vr_cbt_map_count(&map), 0);
	cr_assert(map.clean_since);
	vr_cbt_map_release(&map);

	/* a reader that saw more records than the log has is not served */
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 9), 0);
	cr_assert_not(map.clean_since);
	vr_cbt_map_release(&map);
}

Test(io_cbt, a_running_writer_keeps_the_changes_trusted)
{
	struct vr_cbt_writer *w = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0); /* 1 OPEN */
	cr_assert_eq(vr_cbt_writer_mark(w, 0, 4096), 0);	      /* 2 */
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 0), 0);
	cr_assert(map.in_session);
	cr_assert(map.writer_alive);
	cr_assert(map.clean_since);
	cr_assert_eq(map.last_seq, 2);
	uint64_t seen = map.last_seq;
	vr_cbt_map_release(&map);

	cr_assert_eq(vr_cbt_writer_mark(w, 5 * 4096, 4096), 0); /* 3 */
	cr_assert_eq(vr_cbt_read_since(&map, log_path, seen), 0);
	char *text = ranges_text(&map);
	cr_assert_str_eq(text, "5+1,");
	free(text);
	vr_cbt_map_release(&map);

	/* the writer dies: its open session is no longer trusted */
	vr_cbt_writer_free(w);
	cr_assert_eq(vr_cbt_read_since(&map, log_path, seen), 0);
	cr_assert(map.in_session);
	cr_assert_not(map.writer_alive);
	cr_assert_not(map.clean_since);
	vr_cbt_map_release(&map);

	/* the next writer marks the loss after the reader's position */
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0); /* 4 UNCLEAN, 5 OPEN */
	cr_assert_eq(vr_cbt_writer_close_clean(w), 0);
	vr_cbt_writer_free(w);
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 3), 0);
	cr_assert_not(map.clean_since);
	vr_cbt_map_release(&map);
	/* a reader that already looked past the mark trusts what follows */
	cr_assert_eq(vr_cbt_read_since(&map, log_path, 5), 0);
	cr_assert(map.clean_since);
	vr_cbt_map_release(&map);
}

Test(io_cbt, reset_after_loses_nothing_newer)
{
	const uint64_t ranges[] = {0, 4096};
	session(ranges, 1); /* 1 OPEN, 2, 3 CLOSE */
	uint64_t generation = 0;
	/* an extent after the reader's position would be lost */
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 1, 1, &generation), VR_ECONFLICT);
	/* another generation than the reader's */
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 2, 3, &generation), VR_ECONFLICT);
	/* a writer holds the log */
	struct vr_cbt_writer *w = NULL;
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0); /* 4 OPEN */
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 1, 4, &generation), VR_ECONFLICT);
	cr_assert_eq(vr_cbt_writer_close_clean(w), 0); /* 5 CLOSE */
	vr_cbt_writer_free(w);
	/* only OPEN and CLOSE came after record 3: nothing is lost */
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 1, 3, &generation), 0);
	cr_assert_eq(generation, 2);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log_path), 0);
	cr_assert_eq(map.generation, 2);
	cr_assert_eq(map.last_seq, 0);
	cr_assert(map.clean);
	vr_cbt_map_release(&map);
	/* a dead writer's open session that wrote nothing after the reader's
	 * position loses nothing; one that did, does */
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0); /* 1 OPEN */
	vr_cbt_writer_free(w);
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 2, 1, &generation), 0);
	cr_assert_eq(generation, 3);
	cr_assert_eq(vr_cbt_writer_open(&w, log_path, DISK_SIZE), 0); /* 1 OPEN */
	cr_assert_eq(vr_cbt_writer_mark(w, 0, 4096), 0);	      /* 2 */
	vr_cbt_writer_free(w);
	cr_assert_eq(vr_cbt_reset_after(log_path, DISK_SIZE, 3, 1, &generation), VR_ECONFLICT);
	char *other = vr_asprintf("%s/none.cbt", dir);
	cr_assert_eq(vr_cbt_reset_after(other, DISK_SIZE, 1, 0, &generation), VR_ENOTFOUND);
	free(other);
}
