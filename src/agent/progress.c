/* A running sync's progress: a small file beside the state for `status`,
 * and the bar both `status` and `sync` draw. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"

int vr_agent_progress_save(const char *state_dir, const struct vr_agent_progress *p)
{
	char *path = vr_agent_repl_path(state_dir, p->replication, ".progress");
	char *tmp = vr_asprintf("%s.tmp", path);
	int rc = VR_EIO;
	FILE *f = fopen(tmp, "w");
	if (f) {
		fprintf(f,
			"full=%d\nattempt=%u\ntotal_bytes=%" PRIu64 "\ndone_bytes=%" PRIu64
			"\nsent_bytes=%" PRIu64 "\nstarted_ms=%" PRId64 "\nfinished=%d\n",
			p->full, p->attempt, p->total_bytes, p->done_bytes, p->sent_bytes,
			p->started_ms, p->finished);
		rc = fclose(f) == 0 && rename(tmp, path) == 0 ? 0 : VR_EIO;
	}
	if (rc)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

int vr_agent_progress_load(const char *state_dir, const char *id, struct vr_agent_progress *p)
{
	memset(p, 0, sizeof *p);
	char *path = vr_agent_repl_path(state_dir, id, ".progress");
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return errno == ENOENT ? VR_ENOTFOUND : VR_EIO;
	char line[128];
	int seen = 0;
	while (fgets(line, sizeof line, f)) {
		int flag;
		unsigned long long v;
		long long t;
		if (sscanf(line, "full=%d", &flag) == 1) {
			p->full = flag;
			seen++;
		} else if (sscanf(line, "attempt=%llu", &v) == 1) {
			p->attempt = (unsigned)v;
		} else if (sscanf(line, "total_bytes=%llu", &v) == 1) {
			p->total_bytes = v;
			seen++;
		} else if (sscanf(line, "done_bytes=%llu", &v) == 1) {
			p->done_bytes = v;
			seen++;
		} else if (sscanf(line, "sent_bytes=%llu", &v) == 1) {
			p->sent_bytes = v;
		} else if (sscanf(line, "started_ms=%lld", &t) == 1) {
			p->started_ms = t;
			seen++;
		} else if (sscanf(line, "finished=%d", &flag) == 1) {
			p->finished = flag;
		}
	}
	fclose(f);
	return seen == 4 ? 0 : VR_EINVAL;
}

bool vr_agent_repl_busy(const char *state_dir, const char *id)
{
	char *path = vr_agent_repl_path(state_dir, id, ".lock");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	bool busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

void vr_agent_bytes_format(char *out, size_t size, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	unsigned u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%" PRIu64 " B", bytes);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
}

void vr_agent_progress_format(char *out, size_t size, const struct vr_agent_progress *p,
			      int64_t now_ms, unsigned width)
{
	char bar[128];
	if (width > sizeof bar - 3)
		width = sizeof bar - 3;
	double fraction = p->total_bytes ? (double)p->done_bytes / (double)p->total_bytes : 1.0;
	if (fraction > 1)
		fraction = 1;
	unsigned filled = (unsigned)(fraction * width);
	bar[0] = '[';
	for (unsigned i = 0; i < width; i++)
		bar[1 + i] = i < filled ? '#' : '.';
	bar[width + 1] = ']';
	bar[width + 2] = '\0';
	char done[32], total[32], rate[32], sent[32];
	vr_agent_bytes_format(done, sizeof done, p->done_bytes);
	vr_agent_bytes_format(total, sizeof total, p->total_bytes);
	vr_agent_bytes_format(sent, sizeof sent, p->sent_bytes);
	double seconds = (double)(now_ms - p->started_ms) / 1000.0;
	vr_agent_bytes_format(rate, sizeof rate,
			      seconds > 0.05 ? (uint64_t)((double)p->done_bytes / seconds) : 0);
	/* everything read and sent: the replica verifies and commits */
	bool committing = !p->finished && p->total_bytes && p->done_bytes >= p->total_bytes;
	snprintf(out, size, "%s %3u%%  %s / %s  %s/s  sent %s%s%s", bar,
		 (unsigned)(fraction * 100), done, total, rate, sent,
		 p->full ? "  (full, hash compare)" : "",
		 committing ? "  committing" : "");
}
