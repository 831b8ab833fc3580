/* The worker's end of a failback sync (docs/recovery.md): the images of
 * the source replication's recovered VM go back to the site's on-prem
 * disks through a reverse connection of purpose "failback". The worker
 * asks a proxy's internal port for the site ([worker] proxy_internal),
 * sends its intro line and a transfer header (the failback replication,
 * the recovered disks), reads the agent's group hashes of its disks, and
 * sends the blocks of every group whose hash differs from the recovered
 * image's, then the trailer; the agent answers a result reply once it has
 * verified and applied them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/rand.h>

#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/failback.h"
#include "vrcloud/log.h"
#include "vrcloud/transfer.h"
#include "vrcloud/tunnel.h"
#include "worker/recover.h"

/* Seconds a socket call may wait: the proxy waits for the agent up to its
 * reverse_timeout (30 s), and the agent hashes its disks before it
 * answers. */
#define IO_TIMEOUT_S 600
#define READ_CHUNK   (256u * 1024u)

struct fb_disk {
	char key[VR_TX_MAX_KEY + 1];
	char *path;
	uint64_t size;
	int fd;
	uint8_t *differs; /* one byte per group */
	uint64_t groups;
};

struct fb {
	struct vr_job_run *run;
	const char *fb, *source;
	char *dir; /* the recovered VM's directory */
	struct fb_disk disks[VR_TX_MAX_DISKS];
	unsigned ndisks;
	int fd;
	uint8_t *in; /* bytes read and not yet used */
	size_t in_len, in_cap;
	uint64_t groups, differing, sent_bytes;
};

/* --- the recovered VM ----------------------------------------------------- */

/* The newest complete "recovered-*" directory of source. */
static char *find_recovered(const char *recovered_dir, const char *source)
{
	char *parent = vr_asprintf("%s/%s", recovered_dir, source);
	DIR *d = opendir(parent);
	char *best = NULL;
	struct timespec best_time = {0, 0};
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "recovered-", 10) != 0 ||
		    (len > 8 && strcmp(e->d_name + len - 8, ".partial") == 0))
			continue;
		char *dir = vr_asprintf("%s/%s", parent, e->d_name);
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    (!best || st.st_mtim.tv_sec > best_time.tv_sec ||
		     (st.st_mtim.tv_sec == best_time.tv_sec &&
		      st.st_mtim.tv_nsec > best_time.tv_nsec))) {
			free(best);
			best = dir;
			best_time = st.st_mtim;
		} else {
			free(dir);
		}
	}
	if (d)
		closedir(d);
	free(parent);
	return best;
}

static int on_manifest(void *user, const char *section, const char *name, const char *value)
{
	struct fb *f = user;
	if (strncmp(section, "disk ", 5) != 0)
		return 1;
	const char *key = section + 5;
	struct fb_disk *disk = NULL;
	for (unsigned i = 0; i < f->ndisks; i++)
		if (strcmp(f->disks[i].key, key) == 0)
			disk = &f->disks[i];
	if (!disk) {
		if (f->ndisks == VR_TX_MAX_DISKS || strlen(key) > VR_TX_MAX_KEY)
			return 0;
		disk = &f->disks[f->ndisks++];
		snprintf(disk->key, sizeof disk->key, "%s", key);
		disk->fd = -1;
	}
	if (strcmp(name, "file") == 0 && !strchr(value, '/')) {
		free(disk->path);
		disk->path = vr_asprintf("%s/%s", f->dir, value);
	} else if (strcmp(name, "size") == 0) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno || *end || v % VR_TX_BLOCK)
			return 0;
		disk->size = v;
	}
	return 1;
}

static int load_recovered(struct fb *f)
{
	f->dir = find_recovered(f->run->recovered_dir, f->source);
	if (!f->dir)
		return vr_job_fail(f->run, 409, "CONFLICT", "FailbackNothingRecovered",
				   "Replication %s has no recovered VM on this replica server's "
				   "recovered_dir: fail it over before failing back.",
				   f->source);
	char *manifest = vr_asprintf("%s/%s", f->dir, VR_RECOVER_MANIFEST);
	int line = ini_parse(manifest, on_manifest, f);
	free(manifest);
	bool complete = line == 0 && f->ndisks > 0;
	for (unsigned i = 0; complete && i < f->ndisks; i++)
		complete = f->disks[i].path && f->disks[i].size;
	if (!complete)
		return vr_job_fail(f->run, 500, "INTERNAL_SERVER_ERROR", "FailbackManifestInvalid",
				   "The manifest of the recovered VM in %.300s is missing or "
				   "invalid.",
				   f->dir);
	for (unsigned i = 0; i < f->ndisks; i++) {
		struct fb_disk *disk = &f->disks[i];
		disk->fd = open(disk->path, O_RDONLY | O_CLOEXEC);
		if (disk->fd < 0)
			return vr_job_fail(f->run, 500, "INTERNAL_SERVER_ERROR",
					   "FailbackImageUnreadable",
					   "The recovered image %.300s cannot be read: %.100s",
					   disk->path, strerror(errno));
		disk->groups = vr_tx_disk_groups(disk->size);
		disk->differs = vr_malloc(disk->groups ? disk->groups : 1);
		/* a group the agent reports no hash for is sent */
		memset(disk->differs, 1, disk->groups ? disk->groups : 1);
		f->groups += disk->groups;
	}
	return 0;
}

/* --- the connection ------------------------------------------------------- */

static int send_sink(void *ctx, const void *data, size_t len)
{
	int fd = *(int *)ctx;
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_TX_EIO;
		p += n;
		len -= (size_t)n;
	}
	return VR_TX_OK;
}

/* Read more bytes into f->in; 0, or VR_EUNAVAIL at the end or a failure. */
static int read_more(struct fb *f)
{
	if (f->in_cap - f->in_len < READ_CHUNK) {
		f->in_cap = f->in_len + READ_CHUNK;
		f->in = vr_realloc(f->in, f->in_cap);
	}
	for (;;) {
		ssize_t n = recv(f->fd, f->in + f->in_len, f->in_cap - f->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EUNAVAIL;
		f->in_len += (size_t)n;
		return 0;
	}
}

static void consume(struct fb *f, size_t used)
{
	memmove(f->in, f->in + used, f->in_len - used);
	f->in_len -= used;
}

static int dial(struct fb *f)
{
	const char *address = f->run->config->proxy_internal;
	char host[256], port[12];
	unsigned port_number = 0;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, address) || !port_number)
		return vr_job_fail(f->run, 500, "INTERNAL_SERVER_ERROR", "FailbackProxyInvalid",
				   "[worker] proxy_internal '%.200s' is not host:port.", address);
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackProxyUnreachable",
				   "The proxies' internal port %.200s cannot be resolved.",
				   address);
	f->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	if (f->fd >= 0) {
		setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	int ok = f->fd >= 0 && connect(f->fd, res->ai_addr, res->ai_addrlen) == 0;
	freeaddrinfo(res);
	if (!ok)
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackProxyUnreachable",
				   "The proxies' internal port %.200s cannot be reached: %.100s",
				   address, strerror(errno));
	return 0;
}

/* The request frame, then the proxy's welcome (or refusal). */
static int request(struct fb *f, const char *peer)
{
	struct vr_buf payload, frame;
	vr_buf_init(&payload, 0);
	vr_buf_init(&frame, 0);
	vr_tunnel_field_append(&payload, "version", "1");
	vr_tunnel_field_append(&payload, "peer", peer);
	vr_tunnel_field_append(&payload, "replication", f->fb);
	vr_tunnel_field_append(&payload, "purpose", VR_TUNNEL_PURPOSE_FAILBACK);
	vr_tunnel_field_append(&payload, "worker", f->run->server_name);
	int rc = vr_tunnel_frame_append(&frame, VR_FRAME_REQUEST, payload.data, payload.len);
	if (!rc)
		rc = send_sink(&f->fd, frame.data, frame.len);
	vr_buf_free(&payload);
	vr_buf_free(&frame);
	struct vr_tunnel_frame answer;
	size_t used = 0;
	while (!rc && !used) {
		if (vr_tunnel_frame_parse(&answer, &used, f->in, f->in_len))
			rc = VR_EINVAL;
		else if (!used)
			rc = read_more(f);
	}
	if (rc)
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackSiteUnreachable",
				   "The proxy at %.200s did not answer the failback request.",
				   f->run->config->proxy_internal);
	struct vr_tunnel_fields fields;
	const char *reason = NULL;
	if (vr_tunnel_fields_parse(&fields, answer.payload, answer.len, &reason))
		return vr_job_fail(f->run, 502, "BAD_GATEWAY", "FailbackSiteUnreachable",
				   "The proxy's answer is malformed: %s", reason);
	if (answer.type != VR_FRAME_WELCOME) {
		const char *why = vr_tunnel_field(&fields, "reason");
		const char *message = vr_tunnel_field(&fields, "message");
		rc = vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackSiteUnreachable",
				 "The site of failback replication %s could not be reached "
				 "(%.32s: %.200s); is its agent connected?",
				 f->fb, why ? why : "refused", message ? message : "");
	}
	vr_tunnel_fields_free(&fields);
	consume(f, used);
	return rc;
}

/* The intro line and the transfer header. */
static int start_stream(struct fb *f, struct vr_tx_enc *enc)
{
	struct vr_buf intro;
	vr_buf_init(&intro, 0);
	int rc = vr_fb_intro_format(&intro, f->fb, f->source);
	if (!rc)
		rc = send_sink(&f->fd, intro.data, intro.len);
	vr_buf_free(&intro);
	struct vr_tx_header h;
	memset(&h, 0, sizeof h);
	h.version = VR_TX_VERSION;
	h.flags = VR_TX_INCREMENTAL;
	h.codec = VR_TX_CODEC_NONE;
	h.ndisks = (uint8_t)f->ndisks;
	h.point_in_time_ms = (uint64_t)vr_recover_now_ms();
	char instance[VR_UUID_LEN + 1];
	if (!rc && (vr_uuid_generate(instance) || vr_tx_id_parse(h.replication, f->fb) ||
		    vr_tx_id_parse(h.instance, instance) ||
		    RAND_bytes((unsigned char *)&h.resume_token, sizeof h.resume_token) != 1))
		rc = VR_EINVAL;
	for (unsigned i = 0; i < f->ndisks; i++) {
		snprintf(h.disks[i].key, sizeof h.disks[i].key, "%s", f->disks[i].key);
		h.disks[i].size = f->disks[i].size;
	}
	if (!rc)
		rc = vr_tx_enc_init(enc, &h, send_sink, &f->fd);
	if (rc)
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackStreamBroken",
				   "The failback stream to the site broke at its start (%.100s).",
				   rc < 0 ? vr_tx_strerror(rc) : vr_err_str(rc));
	return 0;
}

/* Compare one record's group hashes with the recovered images'. */
static int compare(struct fb *f, const struct vr_tx_hash_record *rec, uint8_t *buf)
{
	if (rec->disk >= f->ndisks)
		return VR_TX_ERANGE;
	struct fb_disk *disk = &f->disks[rec->disk];
	if (rec->first_group > disk->groups || rec->count > disk->groups - rec->first_group)
		return VR_TX_ERANGE;
	for (uint32_t i = 0; i < rec->count; i++) {
		uint64_t g = rec->first_group + i;
		uint8_t mine[VR_TX_HASH];
		if (vr_fb_group_hash(disk->fd, disk->size, g, buf, mine))
			return VR_TX_EIO;
		disk->differs[g] = memcmp(mine, rec->hashes + (size_t)i * VR_TX_HASH, VR_TX_HASH) !=
				   0;
	}
	return 0;
}

static int read_hashes(struct fb *f)
{
	uint8_t *buf = vr_malloc(VR_FB_GROUP_BYTES);
	int rc = 0;
	uint64_t compared = 0, reported = 0;
	for (;;) {
		/* a report each 16384 groups (1 GiB): progress, and a cancel
		 * taken at a safe point */
		if (compared - reported >= 16384) {
			char message[160];
			snprintf(message, sizeof message,
				 "Failback: %" PRIu64 " of %" PRIu64 " groups compared", compared,
				 f->groups);
			int status = vr_job_report(f->run, 40, message);
			if (status) {
				free(buf);
				return status;
			}
			reported = compared;
		}
		struct vr_tx_hash_record rec;
		size_t used = 0;
		rc = f->in_len ? vr_tx_hash_record_decode(f->in, f->in_len, &used, &rec)
			       : VR_TX_ETRUNCATED;
		if (rc == VR_TX_ETRUNCATED) {
			rc = read_more(f);
			if (rc)
				break;
			continue;
		}
		if (rc)
			break;
		if (rec.kind == VR_TX_HASH_END) {
			consume(f, used);
			break;
		}
		rc = compare(f, &rec, buf);
		compared += rec.count;
		consume(f, used);
		if (rc)
			break;
	}
	free(buf);
	if (rc) {
		/* the agent refuses with a result reply in place of the hashes */
		while (f->in_len && f->in[0] != 'H' && f->in[0] != 'E') {
			struct vr_tx_reply r;
			size_t used = 0;
			int d = vr_tx_reply_decode(f->in, f->in_len, &used, &r);
			if (d == 0 && r.status)
				return vr_job_fail(f->run, 409, "CONFLICT", "FailbackRefusedBySite",
						   "The site refused the failback of replication "
						   "%s: %s (see the agent's log).",
						   f->source, vr_tx_strerror(r.status));
			if (d != VR_TX_ETRUNCATED || read_more(f))
				break;
		}
	}
	if (rc == VR_EUNAVAIL) {
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackStreamBroken",
				   "The site closed the failback stream before it sent the hashes "
				   "of its disks (see the agent's log).");
	}
	if (rc)
		return vr_job_fail(f->run, 502, "BAD_GATEWAY", "FailbackHashesInvalid",
				   "The site's disk hashes are invalid: %s.",
				   rc < 0 ? vr_tx_strerror(rc) : vr_err_str(rc));
	return 0;
}

static int send_runs(struct fb *f, struct vr_tx_enc *enc)
{
	uint8_t *buf = vr_malloc(VR_FB_GROUP_BYTES);
	int rc = 0;
	uint64_t reported = 0;
	for (unsigned d = 0; d < f->ndisks && !rc; d++) {
		struct fb_disk *disk = &f->disks[d];
		for (uint64_t g = 0; g < disk->groups && !rc; g++) {
			if (!disk->differs[g])
				continue;
			uint32_t blocks = 0;
			rc = vr_fb_group_read(disk->fd, disk->size, g, buf, &blocks);
			if (!rc)
				rc = vr_tx_enc_run(enc, d, g * VR_TX_GROUP_BLOCKS, blocks, buf);
			f->differing++;
			f->sent_bytes += (uint64_t)blocks * VR_TX_BLOCK;
			if (!rc && f->sent_bytes - reported >= (64u << 20)) {
				char message[160];
				snprintf(message, sizeof message,
					 "Failback: %" PRIu64 " MiB of changed blocks sent",
					 f->sent_bytes >> 20);
				rc = vr_job_report(f->run, 60, message);
				if (rc) {
					free(buf);
					return rc;
				}
				reported = f->sent_bytes;
			}
		}
	}
	free(buf);
	if (!rc)
		rc = vr_tx_enc_finish(enc, NULL);
	if (!rc && shutdown(f->fd, SHUT_WR) != 0)
		rc = VR_TX_EIO;
	if (rc)
		return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE", "FailbackStreamBroken",
				   "The failback stream to the site broke after %" PRIu64
				   " bytes (%s).",
				   f->sent_bytes, rc < 0 ? vr_tx_strerror(rc) : vr_err_str(rc));
	return 0;
}

static int read_result(struct fb *f)
{
	struct vr_tx_reply r;
	for (;;) {
		size_t used = 0;
		int rc = f->in_len ? vr_tx_reply_decode(f->in, f->in_len, &used, &r)
				   : VR_TX_ETRUNCATED;
		if (rc == VR_TX_ETRUNCATED) {
			if (read_more(f))
				return vr_job_fail(f->run, 503, "SERVICE_UNAVAILABLE",
						   "FailbackStreamBroken",
						   "The site closed the failback stream before it "
						   "answered; its disks are unchanged or fully "
						   "updated (see the agent's log).");
			continue;
		}
		if (rc || r.kind != VR_TX_REPLY_RESULT)
			return vr_job_fail(f->run, 502, "BAD_GATEWAY", "FailbackResultInvalid",
					   "The site's answer to the failback is not a result.");
		break;
	}
	if (r.status)
		return vr_job_fail(f->run, 409, "CONFLICT", "FailbackRefusedBySite",
				   "The site did not apply the failback of replication %s: %s.",
				   f->source, vr_tx_strerror(r.status));
	return 0;
}

static void fb_free(struct fb *f)
{
	for (unsigned i = 0; i < f->ndisks; i++) {
		if (f->disks[i].fd >= 0)
			close(f->disks[i].fd);
		free(f->disks[i].path);
		free(f->disks[i].differs);
	}
	if (f->fd >= 0)
		close(f->fd);
	free(f->in);
	free(f->dir);
}

int vr_failback_sync(struct vr_job_run *run, const char *fb, const char *source)
{
	struct fb f;
	memset(&f, 0, sizeof f);
	f.run = run;
	f.fb = fb;
	f.source = source;
	f.fd = -1;
	char peer[VR_UUID_LEN + 1];
	int rc = vr_job_report(run, 10, "Failback: reading the recovered virtual machine");
	if (!rc && vr_worker_params_peer(peer, run->job->params))
		rc = vr_job_fail(run, 500, "INTERNAL_SERVER_ERROR", "JobParamsInvalid",
				 "The parameters of the failback sync name no PeerId.");
	if (!rc)
		rc = load_recovered(&f);
	if (!rc)
		rc = vr_job_report(run, 20, "Failback: reaching the source site");
	struct vr_tx_enc enc;
	if (!rc)
		rc = dial(&f);
	if (!rc)
		rc = request(&f, peer);
	if (!rc)
		rc = start_stream(&f, &enc);
	if (!rc)
		rc = vr_job_report(run, 30,
				   "Failback: comparing the site's disks with the "
				   "recovered ones");
	if (!rc)
		rc = read_hashes(&f);
	if (!rc)
		rc = send_runs(&f, &enc);
	if (!rc)
		rc = read_result(&f);
	if (!rc) {
		char groups[24], differing[24], bytes[24], message[256];
		snprintf(groups, sizeof groups, "%" PRIu64, f.groups);
		snprintf(differing, sizeof differing, "%" PRIu64, f.differing);
		snprintf(bytes, sizeof bytes, "%" PRIu64, f.sent_bytes);
		vr_log_info("failback_sent", "replication", fb, "source", source, "groups", groups,
			    "differing", differing, "bytes", bytes);
		snprintf(message, sizeof message,
			 "Failback: the site's disks equal the recovered VM's; %" PRIu64
			 " of %" PRIu64 " groups differed, %" PRIu64 " bytes sent",
			 f.differing, f.groups, f.sent_bytes);
		rc = vr_job_report(run, 90, message);
	}
	fb_free(&f);
	return rc;
}
