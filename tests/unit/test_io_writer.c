/* vrcloud-io and its disk writer: the same seed makes the same image and the
 * same log, and the log names exactly the 4 KiB blocks that were written. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/alloc.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/vr-test-io-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char *cmd = vr_asprintf("rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

TestSuite(io_writer, .init = setup, .fini = teardown);

static char *path_in_dir(const char *name)
{
	return vr_asprintf("%s/%s", dir, name);
}

/* Run vrcloud-io with args (a shell word list); its exit status. */
static int run_io(const char *args)
{
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	char *cmd = vr_asprintf("'%s/vrcloud-io' %s >/dev/null 2>&1",
				builddir && builddir[0] ? builddir : VR_BUILDDIR, args);
	int status = system(cmd);
	free(cmd);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The standard output of vrcloud-io with args. */
static char *output_of(const char *args)
{
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	char *cmd = vr_asprintf("'%s/vrcloud-io' %s",
				builddir && builddir[0] ? builddir : VR_BUILDDIR, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(mem);
	cr_assert_eq(pclose(p), 0);
	free(cmd);
	return text;
}

static uint8_t *slurp(const char *path, size_t *len_out)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	uint8_t *data = vr_malloc((size_t)st.st_size + 1);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	*len_out = (size_t)st.st_size;
	return data;
}

/* Every 4 KiB block of image that holds a nonzero byte is in the log, and
 * every block in the log holds one (the writes are random bytes over a zero
 * image). Returns the number of changed blocks. */
static uint64_t check_log_covers_image(const char *image, const char *log)
{
	size_t len;
	uint8_t *data = slurp(image, &len);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log), 0);
	cr_assert(map.clean);
	cr_assert_eq(map.disk_size, len);
	uint64_t changed = 0;
	for (uint64_t b = 0; b < map.blocks; b++) {
		size_t start = (size_t)b * 4096, end = start + 4096 > len ? len : start + 4096;
		bool nonzero = false;
		for (size_t i = start; i < end && !nonzero; i++)
			nonzero = data[i] != 0;
		cr_assert_eq(nonzero, vr_cbt_map_test(&map, b), "block %llu: data %d, log %d",
			     (unsigned long long)b, nonzero, vr_cbt_map_test(&map, b));
		changed += nonzero;
	}
	cr_assert_eq(changed, vr_cbt_map_count(&map));
	vr_cbt_map_release(&map);
	free(data);
	return changed;
}

Test(io_writer, same_seed_same_image_and_log)
{
	char *a = path_in_dir("a.img"), *b = path_in_dir("b.img"), *c = path_in_dir("c.img");
	char *args = vr_asprintf("write '%s' --size 4M --count 300 --seed 42 --log '%s.cbt'", a, a);
	cr_assert_eq(run_io(args), 0);
	free(args);
	args = vr_asprintf("write '%s' --size 4M --count 300 --seed 42 --log '%s.cbt'", b, b);
	cr_assert_eq(run_io(args), 0);
	free(args);
	args = vr_asprintf("write '%s' --size 4M --count 300 --seed 43 --log '%s.cbt'", c, c);
	cr_assert_eq(run_io(args), 0);
	free(args);

	size_t la, lb, lc;
	uint8_t *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
	cr_assert_eq(la, 4u << 20);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(da, db, la), 0, "same seed, different images");
	cr_assert_eq(la, lc);
	cr_assert_neq(memcmp(da, dc, la), 0, "another seed, same image");
	free(da);
	free(db);
	free(dc);

	args = vr_asprintf("log show '%s.cbt'", a);
	char *show_a = output_of(args);
	free(args);
	args = vr_asprintf("log show '%s.cbt'", b);
	char *show_b = output_of(args);
	free(args);
	cr_assert_str_eq(show_a, show_b);
	cr_assert_not_null(strstr(show_a, "generation: 1\ndisk-size: 4194304\nblock-size: 4096\n"
					  "records: 302\nstate: clean\ntorn-tail: no\n"));

	char *log = vr_asprintf("%s.cbt", a);
	uint64_t changed = check_log_covers_image(a, log);
	/* 300 random writes over 1024 blocks: some repeat, most do not */
	cr_assert(changed > 200 && changed <= 300, "changed %llu", (unsigned long long)changed);
	free(log);
	free(show_a);
	free(show_b);
	free(a);
	free(b);
	free(c);
}

Test(io_writer, log_covers_small_and_odd_writes)
{
	char *img = path_in_dir("odd.img");
	char *log = vr_asprintf("%s.cbt", img);
	/* 1536-byte writes straddle 4 KiB blocks; the disk ends mid-block */
	char *args = vr_asprintf("write '%s' --size 1000000 --pattern sequential --block-size 1536 "
				 "--bytes 100000 --seed 7 --log '%s'",
				 img, log);
	cr_assert_eq(run_io(args), 0);
	free(args);
	cr_assert_eq(check_log_covers_image(img, log), 25); /* ceil(100000 / 4096) */

	/* a second session adds random 512-byte writes to the same log */
	args = vr_asprintf("write '%s' --block-size 512 --count 500 --seed 8 --log '%s'", img, log);
	cr_assert_eq(run_io(args), 0);
	free(args);
	uint64_t changed = check_log_covers_image(img, log);
	cr_assert(changed > 25 && changed <= 25 + 500);

	/* after a reset the log is empty and of the next generation */
	args = vr_asprintf("log reset '%s' --size 1000000", log);
	char *out = output_of(args);
	cr_assert_str_eq(out, "generation: 2\n");
	free(out);
	free(args);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log), 0);
	cr_assert_eq(vr_cbt_map_count(&map), 0);
	vr_cbt_map_release(&map);
	free(img);
	free(log);
}

Test(io_writer, rate_paces_the_writes)
{
	char *img = path_in_dir("paced.img");
	char *args = vr_asprintf("write '%s' --size 1M --bytes 200K --rate 400K --seed 1", img);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(run_io(args), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert(seconds >= 0.45, "took %.3f s", seconds);
	free(args);
	free(img);
}

Test(io_writer, usage_and_exit_codes)
{
	char *img = path_in_dir("u.img");
	char *args;
	cr_assert_eq(run_io("--help"), 0);
	cr_assert_eq(run_io("--version"), 0);
	cr_assert_eq(run_io(""), 2);
	cr_assert_eq(run_io("frobnicate"), 2);
	args = vr_asprintf("write '%s' --count 1", img); /* missing, no --size */
	cr_assert_eq(run_io(args), 2);
	free(args);
	cr_assert_eq(access(img, F_OK), -1);
	args = vr_asprintf("write '%s' --size 1M", img); /* neither --count nor --bytes */
	cr_assert_eq(run_io(args), 2);
	free(args);
	args = vr_asprintf("write '%s' --size 1M --count 1 --bytes 4096", img);
	cr_assert_eq(run_io(args), 2);
	free(args);
	args = vr_asprintf("write '%s' --size 1M --count 1 --block-size 1000", img);
	cr_assert_eq(run_io(args), 2);
	free(args);
	args = vr_asprintf("write '%s' --size 1M --count 1 --pattern zigzag", img);
	cr_assert_eq(run_io(args), 2);
	free(args);
	cr_assert_eq(access(img, F_OK), -1);

	/* an existing disk of another size than --size is refused */
	args = vr_asprintf("write '%s' --size 1M --count 1 --seed 1", img);
	cr_assert_eq(run_io(args), 0);
	free(args);
	args = vr_asprintf("write '%s' --size 2M --count 1", img);
	cr_assert_eq(run_io(args), 2);
	free(args);

	/* a log that is not a changed-block log is refused and left alone */
	char *log = path_in_dir("u.cbt");
	int fd = open(log, O_WRONLY | O_CREAT, 0644);
	cr_assert_eq(write(fd, "not a log", 9), 9);
	close(fd);
	args = vr_asprintf("write '%s' --size 1M --count 1 --log '%s'", img, log);
	cr_assert_eq(run_io(args), 1);
	free(args);
	args = vr_asprintf("log show '%s'", log);
	cr_assert_eq(run_io(args), 1);
	free(args);
	size_t len;
	uint8_t *kept = slurp(log, &len);
	cr_assert_eq(len, 9);
	cr_assert_eq(memcmp(kept, "not a log", 9), 0);
	free(kept);
	free(log);
	free(img);
}

Test(io_writer, library_writes_as_planned)
{
	char *img = path_in_dir("lib.img");
	int fd = open(img, O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 64 * 1024), 0);
	struct vr_io_plan plan = {.pattern = VR_IO_SEQUENTIAL, .write_size = 4096, .seed = 5};
	vr_io_plan_bytes(&plan, 10000);
	cr_assert_eq(plan.writes, 3);
	struct vr_io_result result;
	cr_assert_eq(vr_io_write_disk(&result, fd, 64 * 1024, &plan, NULL), 0);
	cr_assert_eq(result.writes, 3);
	cr_assert_eq(result.bytes, 10000);
	plan.write_size = 128 * 1024; /* larger than the disk */
	cr_assert_eq(vr_io_write_disk(&result, fd, 64 * 1024, &plan, NULL), VR_EINVAL);
	close(fd);
	free(img);
}

/* Start vrcloud-io writing slowly into img with log; its process id. */
static pid_t start_slow_writer(const char *img, const char *log)
{
	const char *builddir = getenv("VRCLOUD_BUILDDIR");
	char *exe = vr_asprintf("%s/vrcloud-io", builddir && builddir[0] ? builddir : VR_BUILDDIR);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(exe, "vrcloud-io", "write", img, "--size", "1M", "--bytes", "64M", "--rate",
		      "256K", "--seed", "9", "--log", log, (char *)NULL);
		_exit(127);
	}
	free(exe);
	struct stat before;
	off_t base = stat(log, &before) == 0 ? before.st_size : VR_CBT_HEADER_SIZE;
	/* wait until this writer has put some writes in the log */
	for (int i = 0; i < 200; i++) {
		struct stat st;
		if (stat(log, &st) == 0 && st.st_size >= base + 8 * VR_CBT_RECORD_SIZE)
			return pid;
		usleep(20000);
	}
	cr_assert_fail("the writer wrote nothing in 4 s");
	return pid;
}

Test(io_writer, sigterm_closes_cleanly_sigkill_leaves_unclean)
{
	char *img = path_in_dir("k.img"), *log = path_in_dir("k.img.cbt");
	int status;

	pid_t pid = start_slow_writer(img, log);
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uint64_t changed = check_log_covers_image(img, log);
	cr_assert(changed >= 6 && changed < 256, "changed %llu", (unsigned long long)changed);

	pid = start_slow_writer(img, log);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	struct vr_cbt_map map;
	cr_assert_eq(vr_cbt_read(&map, log), 0);
	cr_assert_not(map.clean);
	/* what reached the disk is in the log (records go first) */
	size_t len;
	uint8_t *data = slurp(img, &len);
	for (uint64_t b = 0; b < map.blocks; b++) {
		bool nonzero = false;
		for (size_t i = (size_t)b * 4096; i < (size_t)(b + 1) * 4096 && !nonzero; i++)
			nonzero = data[i] != 0;
		cr_assert(!nonzero || vr_cbt_map_test(&map, b), "block %llu missing",
			  (unsigned long long)b);
	}
	vr_cbt_map_release(&map);
	free(data);
	free(img);
	free(log);
}
