/* A replica store filled by the test process (replica.h). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/replica.h"
#include "vrcloud/alloc.h"
#include "vrcloud/buf.h"
#include "vrcloud/transfer.h"

static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void rfx_init(struct rfx *f, const char *root, const char *rg, const char *dir, unsigned ndisks,
	      const uint64_t *sizes)
{
	memset(f, 0, sizeof *f);
	cr_assert(ndisks >= 1 && ndisks <= RFX_MAX_DISKS);
	snprintf(f->root, sizeof f->root, "%s", root);
	snprintf(f->rg, sizeof f->rg, "%s", rg);
	snprintf(f->dir, sizeof f->dir, "%s", dir);
	f->ndisks = ndisks;
	f->seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	mkdir(root, 0750);
	mkdir(dir, 0750);
	for (unsigned i = 0; i < ndisks; i++) {
		snprintf(f->disks[i].key, sizeof f->disks[i].key, "%u", 2000 + i);
		f->disks[i].size = sizes[i];
		snprintf(f->src[i], sizeof f->src[i], "%s/source-%u.img", dir, i);
		int fd = open(f->src[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ftruncate(fd, (off_t)sizes[i]), 0);
		close(fd);
		f->changed[i] = vr_calloc(sizes[i] / VR_TX_BLOCK, 1);
		char key[24], size[24];
		snprintf(key, sizeof key, "%u", 2000 + i);
		snprintf(size, sizeof size, "%llu", (unsigned long long)sizes[i]);
		vrt_db_exec("INSERT INTO disks (replication_id, device_key, name, size_bytes)"
			    " VALUES ($1::uuid, $2::int, 'disk ' || $2, $3::bigint)",
			    rg, key, size);
	}
	char *error = NULL;
	int rc = vr_store_create(root, rg, f->disks, ndisks, &error);
	cr_assert_eq(rc, 0, "vr_store_create: %s", error ? error : "");
	free(error);
}

void rfx_free(struct rfx *f)
{
	for (unsigned i = 0; i < f->ndisks; i++)
		free(f->changed[i]);
}

void rfx_write(struct rfx *f, unsigned blocks)
{
	uint8_t block[VR_TX_BLOCK];
	for (unsigned d = 0; d < f->ndisks; d++) {
		int fd = open(f->src[d], O_RDWR);
		cr_assert_geq(fd, 0);
		uint64_t nb = f->disks[d].size / VR_TX_BLOCK;
		for (unsigned i = 0; i < blocks; i++) {
			uint64_t b = next_random(&f->seed) % nb;
			for (size_t j = 0; j < sizeof block; j += 8) {
				uint64_t v = next_random(&f->seed);
				memcpy(block + j, &v, 8);
			}
			cr_assert_eq(pwrite(fd, block, sizeof block, (off_t)(b * VR_TX_BLOCK)),
				     (ssize_t)sizeof block);
			f->changed[d][b] = 1;
		}
		close(fd);
	}
}

/* Encode the changed blocks (runs of contiguous ones) into out. */
static void encode(struct rfx *f, const struct vr_tx_header *h, struct vr_buf *out)
{
	struct vr_tx_enc enc;
	cr_assert_eq(vr_tx_enc_init(&enc, h, vr_tx_sink_buf, out), 0);
	uint8_t *data = vr_malloc(VR_TX_MAX_PAYLOAD);
	for (unsigned d = 0; d < f->ndisks; d++) {
		int fd = open(f->src[d], O_RDONLY);
		cr_assert_geq(fd, 0);
		uint64_t nb = f->disks[d].size / VR_TX_BLOCK;
		for (uint64_t b = 0; b < nb;) {
			if (!f->changed[d][b]) {
				b++;
				continue;
			}
			uint32_t n = 0;
			while (b + n < nb && f->changed[d][b + n] && n < VR_TX_MAX_RUN_BLOCKS)
				n++;
			size_t len = (size_t)n * VR_TX_BLOCK;
			cr_assert_eq(pread(fd, data, len, (off_t)(b * VR_TX_BLOCK)), (ssize_t)len);
			cr_assert_eq(vr_tx_enc_run(&enc, d, b, n, data), 0);
			memset(f->changed[d] + b, 0, n);
			b += n;
		}
		close(fd);
	}
	cr_assert_eq(vr_tx_enc_finish(&enc, NULL), 0);
	free(data);
}

static bool copy_file(const char *from, const char *to)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("cp", "cp", "--sparse=always", from, to, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void rfx_commit(struct rfx *f, int64_t pit_ms, char id_out[VR_UUID_LEN + 1])
{
	if (!pit_ms) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		pit_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	struct vr_tx_header h;
	memset(&h, 0, sizeof h);
	h.version = VR_TX_VERSION;
	h.flags = f->seq ? VR_TX_INCREMENTAL : VR_TX_FULL;
	h.ndisks = (uint8_t)f->ndisks;
	h.point_in_time_ms = (uint64_t)pit_ms;
	h.resume_token = next_random(&f->seed);
	cr_assert_eq(vr_uuid_generate(id_out), 0);
	cr_assert_eq(vr_tx_id_parse(h.replication, f->rg), 0);
	cr_assert_eq(vr_tx_id_parse(h.instance, id_out), 0);
	for (unsigned d = 0; d < f->ndisks; d++) {
		snprintf(h.disks[d].key, sizeof h.disks[d].key, "%s", f->disks[d].key);
		h.disks[d].size = f->disks[d].size;
	}
	struct vr_buf stream;
	vr_buf_init(&stream, 0);
	encode(f, &h, &stream);

	struct vr_store *store = NULL;
	char *error = NULL;
	int rc = vr_store_open(&store, f->root, f->rg, 30000, &error);
	cr_assert_eq(rc, 0, "vr_store_open: %s", error ? error : "");
	struct vr_tx_dec dec;
	cr_assert_eq(vr_tx_dec_init(&dec, h.replication), 0);
	size_t at = 0;
	bool committed = false;
	while (at < stream.len || !committed) {
		size_t used = 0;
		int ev = vr_tx_dec_feed(&dec, (const uint8_t *)stream.data + at, stream.len - at,
					&used);
		cr_assert_geq(ev, 0, "decoder: %s", vr_tx_dec_message(&dec));
		at += used;
		if (ev == VR_TX_EV_HEADER)
			cr_assert_eq(vr_store_stage_begin(store, &dec), 0, "stage_begin: %s",
				     vr_store_message(store));
		else if (ev == VR_TX_EV_RUN)
			cr_assert_eq(vr_store_stage_run(store, dec.run_disk, dec.run_first,
							dec.run_count, dec.run_data),
				     0, "stage_run: %s", vr_store_message(store));
		else if (ev == VR_TX_EV_TRAILER) {
			cr_assert_eq(vr_store_commit(store, &dec, NULL), 0, "commit: %s",
				     vr_store_message(store));
			committed = true;
		} else {
			cr_assert(at == stream.len && committed, "the stream ended early");
		}
	}
	cr_assert_eq(vr_tx_dec_end(&dec), 0);
	vr_tx_dec_free(&dec);
	vr_store_close(store);
	free(error);
	vr_buf_free(&stream);

	char pit[32];
	f->seq++;
	snprintf(pit, sizeof pit, "%.3f", (double)pit_ms / 1000.0);
	vrt_db_exec("INSERT INTO instances (id, replication_id, seq, transfer_start_time)"
		    " SELECT $1::uuid, $2::uuid, coalesce(max(seq), 0) + 1,"
		    " to_timestamp($3::double precision) FROM instances"
		    " WHERE replication_id = $2::uuid",
		    id_out, f->rg, pit);
	for (unsigned d = 0; d < f->ndisks; d++) {
		char *snap = rfx_snapshot(f, id_out, d);
		cr_assert(copy_file(f->src[d], snap), "cannot copy %s", f->src[d]);
		free(snap);
	}
}

char *rfx_snapshot(const struct rfx *f, const char *id, unsigned disk)
{
	return vr_asprintf("%s/%s-disk-%u.img", f->dir, id, disk);
}

bool rfx_cmp(const char *a, const char *b)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("cmp", "cmp", "-s", a, b, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
