/* vrcloud-io: writes into a raw disk image and keeps its changed-block log
 * (docs/changed-block-log.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "vrcloud/cbt.h"
#include "vrcloud/err.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static volatile int stop_requested;

static void usage(FILE *out)
{
	fputs("Usage: vrcloud-io write DISK [OPTION]...\n"
	      "       vrcloud-io log show LOG\n"
	      "       vrcloud-io log reset LOG --size BYTES\n"
	      "Write into a raw disk image and keep its changed-block log.\n"
	      "\n"
	      "write: make seeded writes into DISK, created sparse when missing.\n"
	      "  -s, --size BYTES         size of DISK when it is created (suffixes K M G T)\n"
	      "  -p, --pattern P          random or sequential (default random)\n"
	      "  -b, --block-size N       bytes per write, a multiple of 512 (default 4096)\n"
	      "  -n, --count N            number of writes\n"
	      "      --bytes N            bytes in all (suffixes K M G T); the last write may\n"
	      "                           be shorter. One of --count and --bytes is required\n"
	      "  -r, --rate BYTES_PER_S   pace the writes (suffixes K M G T; default unpaced)\n"
	      "      --seed S             seed of offsets and bytes: the same seed makes the\n"
	      "                           same writes (default: random, printed)\n"
	      "  -l, --log LOGFILE        record every write in this changed-block log,\n"
	      "                           created (generation 1) when missing\n"
	      "log show: print the log's header, state and changed block ranges.\n"
	      "log reset: replace the log by an empty one of the next generation.\n"
	      "\n"
	      "  -h, --help               show this help and exit\n"
	      "  -V, --version            show the version and exit\n"
	      "\n"
	      "SIGINT or SIGTERM stops a write between two writes; the disk is synced and\n"
	      "the log closed cleanly. Exit status: 0 done, 1 runtime failure, 2 bad usage.\n",
	      out);
}

/* A byte count: digits and an optional K, M, G or T (powers of 1024). */
static int parse_size(const char *text, uint64_t *out)
{
	char *end;
	if (!text[0] || text[0] == '-')
		return VR_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text)
		return VR_EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'K':
	case 'k': shift = 10; break;
	case 'M':
	case 'm': shift = 20; break;
	case 'G':
	case 'g': shift = 30; break;
	case 'T':
	case 't': shift = 40; break;
	default: return VR_EINVAL;
	}
	if (*end && end[1])
		return VR_EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return VR_EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_plain(const char *text, uint64_t *out)
{
	char *end;
	if (!text[0] || text[0] == '-')
		return VR_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end)
		return VR_EINVAL;
	*out = v;
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void catch_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Open DISK, creating it sparse with size bytes when missing. */
static int open_disk(int *fd_out, uint64_t *size_out, const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (!size) {
			fprintf(stderr, "vrcloud-io: %s does not exist; give --size to create it\n",
				path);
			return EXIT_USAGE;
		}
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 && ftruncate(fd, (off_t)size) != 0) {
			fprintf(stderr, "vrcloud-io: cannot size %s: %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return EXIT_RUNTIME;
		}
	}
	if (fd < 0) {
		fprintf(stderr, "vrcloud-io: cannot open %s: %s\n", path, strerror(errno));
		return EXIT_RUNTIME;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "vrcloud-io: %s is not a regular file\n", path);
		close(fd);
		return EXIT_RUNTIME;
	}
	if (size && (uint64_t)st.st_size != size) {
		fprintf(stderr, "vrcloud-io: %s has %lld bytes, not the %" PRIu64 " of --size\n",
			path, (long long)st.st_size, size);
		close(fd);
		return EXIT_USAGE;
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

static int cmd_write(int argc, char **argv)
{
	static const struct option options[] = {
		{"size", required_argument, NULL, 's'},
		{"pattern", required_argument, NULL, 'p'},
		{"block-size", required_argument, NULL, 'b'},
		{"count", required_argument, NULL, 'n'},
		{"bytes", required_argument, NULL, 'B'},
		{"rate", required_argument, NULL, 'r'},
		{"seed", required_argument, NULL, 'S'},
		{"log", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vr_io_plan plan = {.pattern = VR_IO_RANDOM, .write_size = 4096};
	uint64_t size = 0, count = 0, bytes = 0, value;
	bool have_count = false, have_bytes = false, have_seed = false;
	const char *log_path = NULL;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:p:b:n:r:l:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_size(optarg, &size) || size == 0)
				goto bad_value;
			break;
		case 'p':
			if (strcmp(optarg, "random") == 0)
				plan.pattern = VR_IO_RANDOM;
			else if (strcmp(optarg, "sequential") == 0)
				plan.pattern = VR_IO_SEQUENTIAL;
			else
				goto bad_value;
			break;
		case 'b':
			if (parse_plain(optarg, &value) || value == 0 || value % 512 ||
			    value > 64u * 1024 * 1024)
				goto bad_value;
			plan.write_size = (uint32_t)value;
			break;
		case 'n':
			if (parse_plain(optarg, &count))
				goto bad_value;
			have_count = true;
			break;
		case 'B':
			if (parse_size(optarg, &bytes))
				goto bad_value;
			have_bytes = true;
			break;
		case 'r':
			if (parse_size(optarg, &plan.rate) || plan.rate == 0)
				goto bad_value;
			break;
		case 'S':
			if (parse_plain(optarg, &plan.seed))
				goto bad_value;
			have_seed = true;
			break;
		case 'l': log_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || have_count == have_bytes) {
		fprintf(stderr, "vrcloud-io: write takes one DISK and one of --count and "
				"--bytes (see --help)\n");
		return EXIT_USAGE;
	}
	if (have_count) {
		if (count > UINT64_MAX / plan.write_size)
			goto bad_total;
		vr_io_plan_bytes(&plan, count * plan.write_size);
	} else {
		vr_io_plan_bytes(&plan, bytes);
	}
	if (!have_seed && getrandom(&plan.seed, sizeof plan.seed, 0) != sizeof plan.seed) {
		fprintf(stderr, "vrcloud-io: no random seed: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}

	const char *disk_path = argv[optind];
	int disk_fd = -1;
	uint64_t disk_size = 0;
	int rc = open_disk(&disk_fd, &disk_size, disk_path, size);
	if (rc)
		return rc;
	if (disk_size < plan.write_size) {
		fprintf(stderr, "vrcloud-io: %s (%" PRIu64 " bytes) is smaller than one write\n",
			disk_path, disk_size);
		close(disk_fd);
		return EXIT_USAGE;
	}
	struct vr_cbt_writer *log = NULL;
	if (log_path && (rc = vr_cbt_writer_open(&log, log_path, disk_size))) {
		fprintf(stderr, "vrcloud-io: cannot open log %s: %s\n", log_path,
			rc == VR_ECONFLICT ? "in use by another writer or kept for a disk of "
					     "another size"
			: rc == VR_EINVAL  ? "not a changed-block log of a version this reads"
					   : vr_err_str(rc));
		close(disk_fd);
		return EXIT_RUNTIME;
	}

	catch_stop_signals();
	plan.stop = &stop_requested;
	struct vr_io_result result;
	rc = vr_io_write_disk(&result, disk_fd, disk_size, &plan, log);
	int exit_code = 0;
	if (rc) {
		fprintf(stderr, "vrcloud-io: writing %s: %s\n", disk_path, vr_err_str(rc));
		exit_code = EXIT_RUNTIME;
	} else if (log && vr_cbt_writer_close_clean(log)) {
		fprintf(stderr, "vrcloud-io: cannot close log %s\n", log_path);
		exit_code = EXIT_RUNTIME;
	}
	vr_cbt_writer_free(log);
	if (close(disk_fd) != 0 && !exit_code) {
		fprintf(stderr, "vrcloud-io: closing %s: %s\n", disk_path, strerror(errno));
		exit_code = EXIT_RUNTIME;
	}
	printf("wrote %" PRIu64 " writes, %" PRIu64 " bytes into %s (seed %" PRIu64 ")%s\n",
	       result.writes, result.bytes, disk_path, plan.seed,
	       stop_requested ? ", stopped by a signal" : "");
	return exit_code;

bad_value:
	fprintf(stderr, "vrcloud-io: bad value '%s' (see --help)\n", optarg);
	return EXIT_USAGE;
bad_total:
	fprintf(stderr, "vrcloud-io: --count times --block-size is too large\n");
	return EXIT_USAGE;
}

static int cmd_log_show(const char *path)
{
	struct vr_cbt_map map;
	int rc = vr_cbt_read(&map, path);
	if (rc) {
		fprintf(stderr, "vrcloud-io: %s: %s\n", path,
			rc == VR_EINVAL ? "not a changed-block log of a version this reads"
					: vr_err_str(rc));
		return EXIT_RUNTIME;
	}
	printf("generation: %" PRIu64 "\n"
	       "disk-size: %" PRIu64 "\n"
	       "block-size: %" PRIu32 "\n"
	       "records: %" PRIu64 "\n"
	       "state: %s\n"
	       "torn-tail: %s\n"
	       "changed-blocks: %" PRIu64 "\n",
	       map.generation, map.disk_size, map.block_size, map.records,
	       map.clean ? "clean" : "unclean", map.torn ? "yes" : "no", vr_cbt_map_count(&map));
	uint64_t cursor = 0, first, count;
	while (vr_cbt_map_next_range(&map, &cursor, &first, &count))
		printf("%" PRIu64 " %" PRIu64 "\n", first, count);
	vr_cbt_map_release(&map);
	return 0;
}

static int cmd_log_reset(int argc, char **argv)
{
	static const struct option options[] = {
		{"size", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	uint64_t size = 0, generation = 0;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:", options, NULL)) != -1) {
		if (opt != 's' || parse_size(optarg, &size) || size == 0) {
			fprintf(stderr, "vrcloud-io: log reset LOG --size BYTES (see --help)\n");
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !size) {
		fprintf(stderr, "vrcloud-io: log reset LOG --size BYTES (see --help)\n");
		return EXIT_USAGE;
	}
	int rc = vr_cbt_reset(argv[optind], size, &generation);
	if (rc) {
		fprintf(stderr, "vrcloud-io: cannot reset %s: %s\n", argv[optind],
			rc == VR_ECONFLICT ? "in use by a writer" : vr_err_str(rc));
		return EXIT_RUNTIME;
	}
	printf("generation: %" PRIu64 "\n", generation);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("vrcloud-io %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "write") == 0)
		return cmd_write(argc - 1, argv + 1);
	if (strcmp(argv[1], "log") == 0 && argc == 4 && strcmp(argv[2], "show") == 0)
		return cmd_log_show(argv[3]);
	if (strcmp(argv[1], "log") == 0 && argc >= 3 && strcmp(argv[2], "reset") == 0)
		return cmd_log_reset(argc - 2, argv + 2);
	fprintf(stderr, "vrcloud-io: unknown command (see --help)\n");
	return EXIT_USAGE;
}
