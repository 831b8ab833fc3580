/* The agent's end of a failback (docs/recovery.md): a reverse connection
 * of purpose "failback" carries the worker's intro line and a transfer
 * header naming the failback replication and the recovered VM's disks.
 * The agent finds the VM of the source replication, sends the group
 * hashes of its disk images, and receives the runs of the groups that
 * differ. Nothing touches the disks before the trailer's hash root is
 * verified:
 *
 *   1. runs go to VMDIR/.failback.stage (a journal: magic, the disk keys,
 *      then records of disk, first block, count and the blocks);
 *   2. after the verified trailer the journal is synced and renamed to
 *      VMDIR/.failback.apply (the commit point), and the directory synced;
 *   3. the journal's blocks are written into the disk images, which are
 *      synced; each changed disk's changed-block log (FILE.cbt) is removed,
 *      so the next protection of the VM compares hashes in full;
 *   4. the journal is removed and the result reply sent.
 *
 * A crash before 2 leaves the disks as they were (the stage is discarded
 * by the next failback); a crash after 2 leaves a journal that the next
 * failback of the VM (or vr_agent_failback_recover) applies again from the
 * start: writing the same blocks twice is harmless. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/agent.h"
#include "vrcloud/agent_sync.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/failback.h"
#include "vrcloud/log.h"
#include "vrcloud/transfer.h"

#define STAGE_FILE    ".failback.stage"
#define APPLY_FILE    ".failback.apply"
#define JOURNAL_MAGIC "VRFBJNL1"
#define READ_CHUNK    (256u * 1024u)
/* Group hashes written per record (and per write). */
#define HASH_BATCH VR_TX_MAX_HASH_GROUPS

/* The VM (vm.c's reader) with its disks open for writing; vm.disks and fd
 * are kept in the same order (match_disks puts them in the header's). */
struct vm {
	struct vr_vm vm;
	int fd[VR_VM_MAX_DISKS];
	bool loaded;
};

static void vm_free(struct vm *vm)
{
	for (size_t i = 0; vm->loaded && i < vm->vm.ndisks; i++)
		if (vm->fd[i] >= 0)
			close(vm->fd[i]);
	if (vm->loaded)
		vr_vm_free(&vm->vm);
	memset(vm, 0, sizeof *vm);
}

static char *failf(char **error_out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *failf(char **error_out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	free(*error_out);
	*error_out = text;
	return text;
}

/* --- the VM directory: VMDIR/vm.ini through vr_vm_load ------------------- */

static int vm_load(struct vm *vm, const char *dir, char **error_out)
{
	memset(vm, 0, sizeof *vm);
	char *error = NULL;
	int rc = vr_vm_load(&vm->vm, dir, &error);
	if (rc) {
		free(*error_out);
		*error_out = error ? error : vr_asprintf("%s/vm.ini: %s", dir, vr_err_str(rc));
		return VR_EIO;
	}
	vm->loaded = true;
	for (size_t i = 0; i < VR_VM_MAX_DISKS; i++)
		vm->fd[i] = -1;
	return 0;
}

static int vm_open(struct vm *vm, char **error_out)
{
	for (size_t i = 0; i < vm->vm.ndisks; i++) {
		if (vm->fd[i] >= 0)
			continue;
		vm->fd[i] = open(vm->vm.disks[i].path, O_RDWR | O_CLOEXEC);
		if (vm->fd[i] < 0) {
			failf(error_out, "%s: %s", vm->vm.disks[i].path, strerror(errno));
			return VR_EIO;
		}
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return VR_EIO;
	int rc = fsync(fd) == 0 ? 0 : VR_EIO;
	close(fd);
	return rc;
}

/* --- the journal ------------------------------------------------------------ */

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(int fd, void *data, size_t len)
{
	uint8_t *p = data;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VR_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The journal's head: magic, disk count, each disk's key (length byte). */
static int journal_head(int fd, const struct vr_tx_header *h)
{
	uint8_t head[12];
	memcpy(head, JOURNAL_MAGIC, 8);
	put(head + 8, h->ndisks, 4);
	int rc = write_all(fd, head, sizeof head);
	for (unsigned i = 0; !rc && i < h->ndisks; i++) {
		uint8_t len = (uint8_t)strlen(h->disks[i].key);
		rc = write_all(fd, &len, 1);
		if (!rc)
			rc = write_all(fd, h->disks[i].key, len);
	}
	return rc;
}

/* A run: disk(4) first(8) count(4), then the blocks. */
static int journal_run(int fd, unsigned disk, uint64_t first, uint32_t count, const uint8_t *data)
{
	uint8_t rec[16];
	put(rec, disk, 4);
	put(rec + 4, first, 8);
	put(rec + 12, count, 4);
	int rc = write_all(fd, rec, sizeof rec);
	return rc ? rc : write_all(fd, data, (size_t)count * VR_TX_BLOCK);
}

/* Apply the journal at path to vm's disks, sync them, drop the changed
 * disks' logs. *blocks_out (may be NULL) counts the blocks written. */
static int journal_apply(struct vm *vm, const char *path, uint64_t *blocks_out, char **error_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		failf(error_out, "%s: %s", path, strerror(errno));
		return VR_EIO;
	}
	int map[VR_TX_MAX_DISKS]; /* journal disk -> index in vm */
	bool changed[VR_TX_MAX_DISKS] = {false};
	uint8_t head[12];
	int rc = read_exact(fd, head, sizeof head);
	unsigned ndisks = rc ? 0 : (unsigned)get(head + 8, 4);
	if (!rc && (memcmp(head, JOURNAL_MAGIC, 8) != 0 || ndisks > VR_TX_MAX_DISKS))
		rc = VR_EIO;
	for (unsigned i = 0; !rc && i < ndisks; i++) {
		uint8_t len;
		char key[VR_TX_MAX_KEY + 1];
		rc = read_exact(fd, &len, 1);
		if (!rc)
			rc = read_exact(fd, key, len);
		key[rc ? 0 : len] = '\0';
		map[i] = -1;
		for (size_t d = 0; !rc && d < vm->vm.ndisks; d++)
			if (strcmp(vm->vm.disks[d].key, key) == 0)
				map[i] = (int)d;
		if (!rc && map[i] < 0)
			rc = VR_EIO;
	}
	if (!rc)
		rc = vm_open(vm, error_out);
	uint8_t *buf = vr_malloc(VR_TX_MAX_PAYLOAD);
	uint64_t blocks = 0;
	while (!rc) {
		uint8_t rec[16];
		ssize_t n = read(fd, rec, sizeof rec);
		if (n == 0)
			break;
		if (n != (ssize_t)sizeof rec) {
			rc = VR_EIO;
			break;
		}
		unsigned disk = (unsigned)get(rec, 4);
		uint64_t first = get(rec + 4, 8);
		uint32_t count = (uint32_t)get(rec + 12, 4);
		if (disk >= ndisks || count == 0 || count > VR_TX_MAX_RUN_BLOCKS ||
		    first + count > vm->vm.disks[map[disk]].size / VR_TX_BLOCK) {
			rc = VR_EIO;
			break;
		}
		size_t len = (size_t)count * VR_TX_BLOCK;
		rc = read_exact(fd, buf, len);
		for (size_t done = 0; !rc && done < len;) {
			ssize_t w = pwrite(vm->fd[map[disk]], buf + done, len - done,
					   (off_t)(first * VR_TX_BLOCK + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				rc = VR_EIO;
			else
				done += (size_t)w;
		}
		changed[disk] = true;
		blocks += count;
	}
	free(buf);
	close(fd);
	for (unsigned i = 0; !rc && i < ndisks; i++) {
		if (!changed[i])
			continue;
		if (fsync(vm->fd[map[i]]) != 0) {
			rc = VR_EIO;
			break;
		}
		/* the log no longer describes the disk: the next sync of a
		 * protection compares hashes in full */
		const char *cbt = vm->vm.disks[map[i]].cbt_path;
		if (unlink(cbt) != 0 && errno != ENOENT)
			rc = VR_EIO;
	}
	if (rc && !*error_out)
		failf(error_out, "the failback journal %s could not be applied", path);
	if (blocks_out)
		*blocks_out = blocks;
	return rc;
}

static int finish_journal(struct vm *vm, uint64_t *blocks_out, char **error_out)
{
	char *apply = vr_asprintf("%s/%s", vm->vm.dir, APPLY_FILE);
	int rc = journal_apply(vm, apply, blocks_out, error_out);
	if (!rc && unlink(apply) != 0)
		rc = VR_EIO;
	if (!rc)
		rc = sync_dir(vm->vm.dir);
	free(apply);
	return rc;
}

int vr_agent_failback_recover(const char *vmdir, char **error_out)
{
	char *apply = vr_asprintf("%s/%s", vmdir, APPLY_FILE);
	char *stage = vr_asprintf("%s/%s", vmdir, STAGE_FILE);
	struct stat st;
	bool pending = stat(apply, &st) == 0;
	unlink(stage); /* an uncommitted stage never reaches the disks */
	free(stage);
	free(apply);
	if (!pending)
		return 0;
	struct vm vm;
	int rc = vm_load(&vm, vmdir, error_out);
	if (!rc)
		rc = finish_journal(&vm, NULL, error_out);
	if (!rc)
		vr_log_info("failback_journal_applied", "vmdir", vmdir);
	vm_free(&vm);
	return rc;
}

/* --- the stream ------------------------------------------------------------- */

struct stream {
	struct vr_agent_conn *conn;
	uint8_t *in;
	size_t len, cap;
	bool eof;
};

static int more(struct stream *s)
{
	if (s->eof)
		return VR_EUNAVAIL;
	if (s->cap - s->len < READ_CHUNK) {
		s->cap = s->len + READ_CHUNK;
		s->in = vr_realloc(s->in, s->cap);
	}
	size_t n = 0;
	int rc = vr_agent_conn_read(s->conn, s->in + s->len, s->cap - s->len, &n);
	if (rc)
		return rc;
	if (n == 0)
		s->eof = true;
	s->len += n;
	return 0;
}

static void used(struct stream *s, size_t n)
{
	memmove(s->in, s->in + n, s->len - n);
	s->len -= n;
}

static int send_result(struct stream *s, const struct vr_tx_header *h, int status)
{
	struct vr_tx_reply r;
	memset(&r, 0, sizeof r);
	r.kind = VR_TX_REPLY_RESULT;
	r.status = status <= VR_TX_ETRUNCATED && status >= VR_TX_EREPLY ? status
		   : status						? VR_TX_EIO
									: 0;
	if (h) {
		memcpy(r.replication, h->replication, VR_TX_ID);
		memcpy(r.instance, h->instance, VR_TX_ID);
		r.resume_token = h->resume_token;
	}
	struct vr_buf out;
	vr_buf_init(&out, 0);
	int rc = vr_tx_reply_encode(&r, &out);
	if (!rc)
		rc = vr_agent_conn_write(s->conn, out.data, out.len);
	vr_buf_free(&out);
	if (!rc)
		rc = vr_agent_conn_finish(s->conn);
	return rc;
}

/* The VM directory the agent protects source from (state.c's reader). */
static char *vmdir_of(const char *state_dir, const char *source, char **error_out)
{
	struct vr_agent_repl r;
	char *error = NULL;
	int rc = vr_agent_repl_load(&r, state_dir, source, &error);
	if (rc) {
		failf(error_out, "replication %s is not protected by this agent (%s)", source,
		      error ? error : vr_err_str(rc));
		free(error);
		return NULL;
	}
	char *vmdir = r.vmdir;
	r.vmdir = NULL;
	vr_agent_repl_free(&r);
	return vmdir;
}

/* The header's disks must be the VM's, in the header's order. */
static int match_disks(struct vm *vm, const struct vr_tx_header *h, char **error_out)
{
	if (h->ndisks != vm->vm.ndisks) {
		failf(error_out, "the worker sends %u disks, the VM in %s has %zu", h->ndisks,
		      vm->vm.dir, vm->vm.ndisks);
		return VR_TX_EHEADER;
	}
	for (unsigned i = 0; i < h->ndisks; i++) {
		size_t d = vm->vm.ndisks;
		/* disks before i are placed: a key named twice finds none */
		for (size_t j = i; j < vm->vm.ndisks; j++)
			if (strcmp(vm->vm.disks[j].key, h->disks[i].key) == 0)
				d = j;
		if (d == vm->vm.ndisks || vm->vm.disks[d].size != h->disks[i].size) {
			failf(error_out,
			      "disk %s (%" PRIu64 " bytes) is not a disk of the VM in %s",
			      h->disks[i].key, h->disks[i].size, vm->vm.dir);
			return VR_TX_EHEADER;
		}
		/* put the VM's disks in the header's order */
		struct vr_vm_disk tmp = vm->vm.disks[i];
		vm->vm.disks[i] = vm->vm.disks[d];
		vm->vm.disks[d] = tmp;
		int fd = vm->fd[i];
		vm->fd[i] = vm->fd[d];
		vm->fd[d] = fd;
	}
	return 0;
}

static int send_hashes(struct stream *s, struct vm *vm, uint64_t *groups_out, char **error_out)
{
	int rc = vm_open(vm, error_out);
	uint8_t *buf = vr_malloc(VR_FB_GROUP_BYTES);
	uint8_t *hashes = vr_malloc((size_t)HASH_BATCH * VR_TX_HASH);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	for (unsigned d = 0; !rc && d < vm->vm.ndisks; d++) {
		uint64_t groups = vr_tx_disk_groups(vm->vm.disks[d].size);
		for (uint64_t g = 0; !rc && g < groups;) {
			uint32_t n = groups - g < HASH_BATCH ? (uint32_t)(groups - g) : HASH_BATCH;
			for (uint32_t i = 0; !rc && i < n; i++)
				rc = vr_fb_group_hash(vm->fd[d], vm->vm.disks[d].size, g + i,
						      buf, hashes + (size_t)i * VR_TX_HASH);
			if (!rc)
				rc = vr_tx_hash_record_encode(d, g, n, hashes, &out);
			if (!rc)
				rc = vr_agent_conn_write(s->conn, out.data, out.len);
			out.len = 0;
			g += n;
			*groups_out += n;
		}
	}
	if (!rc)
		rc = vr_tx_hash_end_encode(&out);
	if (!rc)
		rc = vr_agent_conn_write(s->conn, out.data, out.len);
	vr_buf_free(&out);
	free(hashes);
	free(buf);
	if (rc && !*error_out)
		failf(error_out, "the disks' hashes could not be sent");
	return rc;
}

/* Decode the runs into the stage until the verified trailer and the end of
 * the stream. Returns 0 or a vr_tx_err / vrcloud error. */
static int receive(struct stream *s, struct vr_tx_dec *dec, int stage,
		   struct vr_agent_failback_stats *stats, char **error_out)
{
	bool trailer = false;
	for (;;) {
		size_t n = 0;
		int ev = s->len ? vr_tx_dec_feed(dec, s->in, s->len, &n) : VR_TX_EV_NONE;
		if (ev < 0) {
			failf(error_out, "the failback stream is invalid: %s",
			      vr_tx_dec_message(dec));
			return ev;
		}
		used(s, n);
		if (ev == VR_TX_EV_RUN) {
			int rc = journal_run(stage, dec->run_disk, dec->run_first, dec->run_count,
					     dec->run_data);
			if (rc) {
				failf(error_out, "the failback stage could not be written");
				return rc;
			}
			stats->bytes += (uint64_t)dec->run_count * VR_TX_BLOCK;
			continue;
		}
		if (ev == VR_TX_EV_TRAILER)
			trailer = true;
		if (ev != VR_TX_EV_NONE)
			continue;
		if (s->eof)
			break;
		int rc = more(s);
		if (rc) {
			failf(error_out, "the failback stream broke before its end");
			return rc;
		}
	}
	int rc = vr_tx_dec_end(dec);
	if (rc || !trailer) {
		failf(error_out, "the failback stream ended without a verified trailer: %s",
		      vr_tx_dec_message(dec));
		return rc ? rc : VR_TX_ETRUNCATED;
	}
	return 0;
}

/* Stage, commit and apply. */
static int stage_and_apply(struct stream *s, struct vr_tx_dec *dec, struct vm *vm,
			   struct vr_agent_failback_stats *stats, char **error_out)
{
	char *stage_path = vr_asprintf("%s/%s", vm->vm.dir, STAGE_FILE);
	char *apply_path = vr_asprintf("%s/%s", vm->vm.dir, APPLY_FILE);
	int stage = open(stage_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = stage < 0 ? VR_EIO : journal_head(stage, &dec->hdr);
	if (rc)
		failf(error_out, "%s: %s", stage_path, strerror(errno));
	if (!rc)
		rc = receive(s, dec, stage, stats, error_out);
	if (!rc && fsync(stage) != 0)
		rc = VR_EIO;
	if (stage >= 0)
		close(stage);
	/* the commit point */
	if (!rc && rename(stage_path, apply_path) != 0)
		rc = VR_EIO;
	if (!rc)
		rc = sync_dir(vm->vm.dir);
	if (rc) {
		unlink(stage_path);
		if (!*error_out)
			failf(error_out, "the failback could not be committed in %s", vm->vm.dir);
	} else {
		rc = finish_journal(vm, &stats->blocks, error_out);
	}
	free(stage_path);
	free(apply_path);
	return rc;
}

int vr_agent_failback_serve(struct vr_agent_conn *conn, const char *state_dir,
			    struct vr_agent_failback_stats *stats, char **error_out)
{
	memset(stats, 0, sizeof *stats);
	*error_out = NULL;
	struct stream s = {.conn = conn};
	struct vm vm;
	memset(&vm, 0, sizeof vm);
	struct vr_tx_dec dec;
	bool dec_ready = false;
	const struct vr_tx_header *hdr = NULL;
	int rc;
	/* the intro line */
	size_t intro = 0;
	for (;;) {
		rc = vr_fb_intro_parse(s.in ? s.in : (const uint8_t *)"", s.len, &intro,
				       stats->failback, stats->source);
		if (rc != VR_TX_ETRUNCATED)
			break;
		rc = more(&s);
		if (!rc && s.eof)
			rc = VR_TX_ETRUNCATED;
		if (rc)
			break;
	}
	if (!rc)
		used(&s, intro);
	if (rc) {
		failf(error_out, "the worker's intro line is invalid");
		goto out;
	}
	char *dir = vmdir_of(state_dir, stats->source, error_out);
	if (!dir) {
		rc = VR_TX_EREPLICATION;
		goto out;
	}
	snprintf(stats->vmdir, sizeof stats->vmdir, "%s", dir);
	rc = vr_agent_failback_recover(dir, error_out);
	if (!rc)
		rc = vm_load(&vm, dir, error_out);
	free(dir);
	if (rc)
		goto out;
	uint8_t id[VR_TX_ID];
	vr_tx_id_parse(id, stats->failback);
	rc = vr_tx_dec_init(&dec, id);
	if (rc)
		goto out;
	dec_ready = true;
	/* the header */
	for (;;) {
		size_t n = 0;
		int ev = s.len ? vr_tx_dec_feed(&dec, s.in, s.len, &n) : VR_TX_EV_NONE;
		if (ev < 0) {
			failf(error_out, "the failback header is invalid: %s",
			      vr_tx_dec_message(&dec));
			rc = ev;
			goto out;
		}
		used(&s, n);
		if (ev == VR_TX_EV_HEADER)
			break;
		if ((rc = more(&s)) != 0 || s.eof) {
			failf(error_out, "the failback stream ended before its header");
			rc = rc ? rc : VR_TX_ETRUNCATED;
			goto out;
		}
	}
	hdr = &dec.hdr;
	rc = match_disks(&vm, hdr, error_out);
	if (!rc)
		rc = send_hashes(&s, &vm, &stats->groups, error_out);
	if (!rc)
		rc = stage_and_apply(&s, &dec, &vm, stats, error_out);
out:
	/* the worker learns the outcome; a broken stream hears nothing */
	if (rc != VR_EUNAVAIL)
		send_result(&s, hdr, rc);
	if (dec_ready)
		vr_tx_dec_free(&dec);
	vm_free(&vm);
	free(s.in);
	return rc;
}
