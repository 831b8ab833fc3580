/* The disk writer of vrcloud-io: seeded writes into a raw image, each one
 * recorded in the changed-block log before it is made. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vrcloud/cbt.h"
#include "vrcloud/err.h"

/* xoshiro256** seeded through splitmix64: fast, and the same on every host. */
struct prng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void prng_seed(struct prng *p, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t prng_next(struct prng *p)
{
	uint64_t *s = p->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static void prng_fill(struct prng *p, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = prng_next(p);
		for (size_t k = 0; k < 8 && i + k < len; k++)
			buf[i + k] = (uint8_t)(v >> (8 * k));
	}
}

static int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		done += (size_t)n;
	}
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until bytes written at rate bytes/s are due since start. */
static void pace(double start, uint64_t bytes, uint64_t rate)
{
	double due = start + (double)bytes / (double)rate;
	double wait = due - now_seconds();
	if (wait <= 0)
		return;
	struct timespec ts = {.tv_sec = (time_t)wait,
			      .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
	nanosleep(&ts, NULL);
}

void vr_io_plan_bytes(struct vr_io_plan *plan, uint64_t total_bytes)
{
	plan->total_bytes = total_bytes;
	plan->writes = plan->write_size ? total_bytes / plan->write_size +
						  (total_bytes % plan->write_size != 0)
					: 0;
}

int vr_io_write_disk(struct vr_io_result *result, int disk_fd, uint64_t disk_size,
		     const struct vr_io_plan *plan, struct vr_cbt_writer *log)
{
	memset(result, 0, sizeof *result);
	if (plan->write_size == 0 || plan->write_size % 512 != 0 || disk_size < plan->write_size)
		return VR_EINVAL;
	uint8_t *buf = malloc(plan->write_size);
	if (!buf)
		return VR_ENOMEM;

	struct prng prng;
	prng_seed(&prng, plan->seed);
	uint64_t slots = disk_size / plan->write_size;
	double start = now_seconds();
	int rc = 0;
	for (uint64_t i = 0; i < plan->writes; i++) {
		if (plan->stop && *plan->stop)
			break;
		uint64_t left = plan->total_bytes - result->bytes;
		size_t len = left < plan->write_size ? (size_t)left : plan->write_size;
		uint64_t slot = plan->pattern == VR_IO_RANDOM ? prng_next(&prng) % slots
							      : i % slots;
		uint64_t offset = slot * plan->write_size;
		prng_fill(&prng, buf, len);
		if (log && (rc = vr_cbt_writer_mark(log, offset, len)))
			goto cleanup;
		if ((rc = pwrite_full(disk_fd, buf, len, offset)))
			goto cleanup;
		result->writes++;
		result->bytes += len;
		if (plan->rate)
			pace(start, result->bytes, plan->rate);
	}
	if (fsync(disk_fd) != 0)
		rc = VR_EIO;
cleanup:
	free(buf);
	return rc;
}
