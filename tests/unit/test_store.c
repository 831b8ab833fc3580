/* The replica store: create, open, lock and reopen; instances sent through
 * a real encoder and decoder land byte for byte; resumed transfers prime
 * the decoder from the staging and still verify; another token discards
 * the staging; a torn or corrupted staging costs only a resend. */
#include <pthread.h>
#include <stdatomic.h>

#include "transfer/wire.h"
#include "unit/test_store_common.h"

TestSuite(store, .init = s_setup, .fini = s_teardown);

Test(store, create_open_reopen)
{
	struct s_src s;
	s_src_init(&s, 64, 96);
	char *err = NULL;
	struct vr_store *st = NULL;

	cr_assert_eq(vr_store_open(&st, s_root, S_REPL, 10, &err), VR_ENOTFOUND);
	cr_assert_null(st);
	free(err);
	s_create(&s);
	s_create(&s); /* the same disks again: accepted */

	struct vr_store_disk other[S_NDISKS];
	memcpy(other, s.disks, sizeof other);
	other[1].size += VR_TX_BLOCK;
	cr_assert_eq(vr_store_create(s_root, S_REPL, other, S_NDISKS, &err), VR_ECONFLICT);
	cr_assert_not_null(err);
	free(err);
	err = NULL;
	cr_assert_eq(vr_store_create(s_root, "not-a-uuid", s.disks, S_NDISKS, &err), VR_EINVAL);
	free(err);
	err = NULL;
	memcpy(other, s.disks, sizeof other);
	other[0].size = 1000;
	cr_assert_eq(vr_store_create(s_root, S_REPL, other, S_NDISKS, &err), VR_EINVAL);
	free(err);
	err = NULL;
	memcpy(other, s.disks, sizeof other);
	strcpy(other[1].key, other[0].key);
	cr_assert_eq(vr_store_create(s_root, S_REPL, other, S_NDISKS, &err), VR_EINVAL);
	free(err);

	st = s_open();
	cr_assert_eq(vr_store_ndisks(st), S_NDISKS);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		cr_assert_str_eq(vr_store_disk(st, d)->key, s.disks[d].key);
		cr_assert_eq(vr_store_disk(st, d)->size, s.disks[d].size);
		struct stat sb;
		cr_assert_eq(stat(vr_store_disk_path(st, d), &sb), 0);
		cr_assert_eq((uint64_t)sb.st_size, s.disks[d].size);
		cr_assert_lt((uint64_t)sb.st_blocks * 512, s.disks[d].size, "the image is sparse");
	}
	cr_assert_null(vr_store_disk(st, S_NDISKS));
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 0);
	s_assert_replica(st, &s); /* empty disks read as zeros */

	/* A second opener waits, then gives up; creating what exists needs no
	 * lock. */
	struct vr_store *st2 = NULL;
	err = NULL;
	cr_assert_eq(vr_store_open(&st2, s_root, S_REPL, 50, &err), VR_ECONFLICT);
	free(err);
	s_create(&s);
	memcpy(other, s.disks, sizeof other);
	other[1].size += VR_TX_BLOCK;
	err = NULL;
	cr_assert_eq(vr_store_create(s_root, S_REPL, other, S_NDISKS, &err), VR_ECONFLICT);
	free(err);
	cr_assert_eq(vr_store_remove(s_root, S_REPL, NULL), VR_ECONFLICT, "locked");
	vr_store_close(st);
	st = s_open();
	vr_store_close(st);

	cr_assert_eq(vr_store_remove(s_root, S_REPL, NULL), 0);
	err = NULL;
	cr_assert_eq(vr_store_open(&st, s_root, S_REPL, 10, &err), VR_ENOTFOUND);
	free(err);
	cr_assert_eq(vr_store_remove(s_root, S_REPL, NULL), 0, "removing twice is fine");
	s_src_free(&s);
}

Test(store, round_trips)
{
	struct s_src s;
	s_src_init(&s, 300, 517);
	s_create(&s);
	struct vr_store *st = s_open();

	s_src_write(&s, 40, 40);
	s_src_all_changed(&s);
	struct vr_store_instance first;
	s_instance(st, &s, true, &first);
	cr_assert_eq(first.seq, 1);
	cr_assert_eq(first.blocks, 300 + 517);
	cr_assert(first.available);
	cr_assert_not(first.pinned);
	for (unsigned i = 0; i < 6; i++) {
		s_src_write(&s, 1 + (unsigned)(s_rand() % 12), 1 + (unsigned)(s_rand() % 300));
		s_instance(st, &s, false, NULL);
		if (i == 2) {
			/* A restart in between changes nothing. */
			vr_store_close(st);
			st = s_open();
			s_assert_replica(st, &s);
		}
	}
	/* An instance that changed nothing. */
	struct vr_store_instance empty;
	s_instance(st, &s, false, &empty);
	cr_assert_eq(empty.blocks, 0);

	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 8);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(list[i].seq, i + 1);
		cr_assert(list[i].committed_ms > 0);
	}
	cr_assert_str_eq(list[0].id, first.id);
	cr_assert_str_eq(list[7].id, empty.id);
	free(list);

	/* The same instance again (a sender that missed the result) is known
	 * at its header. */
	struct s_xfer again;
	s_xfer_new(&again, false);
	strcpy(again.instance, empty.id);
	again.expect_stage_rc = VR_EEXIST;
	cr_assert_eq(s_send(st, &s, &again), 0);
	cr_assert_eq(again.stage_rc, VR_EEXIST);
	vr_store_close(st);
	st = s_open();
	s_assert_replica(st, &s);
	vr_store_close(st);
	s_src_free(&s);
}

Test(store, resume_primes_the_decoder)
{
	struct s_src s;
	s_src_init(&s, 200, 300);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 30, 30);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);

	s_src_write(&s, 20, 40);
	struct s_xfer x;
	s_xfer_new(&x, false);
	x.max_run = 8;
	x.drop_after_runs = 7;
	cr_assert_eq(s_send(st, &s, &x), 0, "the first attempt drops");
	uint64_t staged = vr_store_staged_bytes(st);
	cr_assert(staged >= 7 * VR_TX_BLOCK && staged <= 7 * 8 * VR_TX_BLOCK, "staged %llu",
		  (unsigned long long)staged);
	/* The worker restarts; a second attempt drops later on the second disk. */
	vr_store_close(st);
	st = s_open();
	x.drop_after_runs = 30;
	cr_assert_eq(s_send(st, &s, &x), 0);
	cr_assert_gt(vr_store_staged_bytes(st), staged);

	x.drop_after_runs = -1;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0, "commit: %s", vr_store_message(st));
	uint64_t changed = 0;
	for (unsigned d = 0; d < S_NDISKS; d++)
		for (uint64_t b = 0; b < s_blocks(&s, d); b++)
			changed += s.changed[d][b];
	cr_assert_eq(x.instance_blocks, changed);
	cr_assert_lt(x.sent_blocks, changed, "the last attempt sends only what is missing");
	cr_assert_eq(x.committed.blocks, changed);
	cr_assert_eq(x.committed.bytes, changed * VR_TX_BLOCK);
	s_assert_replica(st, &s);
	cr_assert_eq(vr_store_staged_bytes(st), 0);
	vr_store_close(st);
	s_src_free(&s);
}

Test(store, another_token_discards_the_staging)
{
	struct s_src s;
	s_src_init(&s, 128, 128);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_all_changed(&s);
	s_src_write(&s, 10, 20);
	s_src_all_changed(&s);

	struct s_xfer x;
	s_xfer_new(&x, true);
	x.max_run = 16;
	x.drop_after_runs = 5;
	cr_assert_eq(s_send(st, &s, &x), 0);
	cr_assert_gt(vr_store_staged_bytes(st), 0);
	x.token++;
	x.drop_after_runs = -1;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0);
	cr_assert_eq(x.sent_blocks, 256, "a new token sends everything");
	s_assert_replica(st, &s);

	/* The same for another instance id with the same token. */
	s_src_write(&s, 5, 5);
	s_xfer_new(&x, false);
	x.max_run = 1;
	x.drop_after_runs = 3;
	cr_assert_eq(s_send(st, &s, &x), 0);
	uint64_t token = x.token;
	s_xfer_new(&x, false);
	x.token = token;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0);
	cr_assert_eq(x.sent_blocks, x.instance_blocks);
	s_assert_replica(st, &s);
	vr_store_close(st);
	s_src_free(&s);
}

static off_t file_size(const char *path)
{
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	return sb.st_size;
}

Test(store, torn_staging_resumes_from_its_last_valid_record)
{
	struct s_src s;
	s_src_init(&s, 256, 64);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_all_changed(&s);
	s_src_write(&s, 30, 10);
	s_src_all_changed(&s);

	struct s_xfer x;
	s_xfer_new(&x, true);
	x.max_run = 4;
	x.drop_after_runs = 10;
	cr_assert_eq(s_send(st, &s, &x), 0);
	vr_store_close(st);

	/* Cut the last record in the middle of its data, as a crash would. */
	char *staging = s_repl_path("staging");
	off_t size = file_size(staging);
	cr_assert_eq(truncate(staging, size - 1000), 0);
	st = s_open();
	x.drop_after_runs = -1;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0, "commit: %s", vr_store_message(st));
	cr_assert_eq(x.sent_blocks, 320 - 9 * 4, "resent from the torn record: %llu",
		     (unsigned long long)x.sent_blocks);
	s_assert_replica(st, &s);

	/* Garbage after valid records is cut off too, and a flipped byte in a
	 * staged block is caught by its leaf: the block is sent again. */
	s_src_write(&s, 30, 10);
	s_src_all_changed(&s);
	s_xfer_new(&x, true);
	x.max_run = 4;
	x.drop_after_runs = 10;
	cr_assert_eq(s_send(st, &s, &x), 0);
	vr_store_close(st);
	size_t n;
	uint8_t *bytes = s_read(staging, &n);
	size_t rec = 48 + 4 * (32 + 4096);
	cr_assert_gt(n, 6 * rec);
	bytes[n - 3 * rec - 100] ^= 0x40; /* the data of the 7th record */
	s_write(staging, bytes, n);
	int fd = open(staging, O_WRONLY | O_APPEND);
	cr_assert_eq(write(fd, "garbage", 7), 7);
	close(fd);
	free(bytes);
	st = s_open();
	x.drop_after_runs = -1;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0, "commit: %s", vr_store_message(st));
	cr_assert_eq(x.sent_blocks, 320 - 6 * 4);
	s_assert_replica(st, &s);
	free(staging);
	vr_store_close(st);
	s_src_free(&s);
}

static void corrupt_staged_block(struct vr_store *st)
{
	(void)st;
	char *staging = s_repl_path("staging");
	size_t n;
	uint8_t *bytes = s_read(staging, &n);
	bytes[n - 5000] ^= 1;
	s_write(staging, bytes, n);
	free(bytes);
	free(staging);
}

Test(store, corrupted_staging_is_caught_by_the_hash_root)
{
	struct s_src s;
	s_src_init(&s, 64, 64);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 10, 10);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	s_src_write(&s, 5, 10);

	struct s_xfer x;
	s_xfer_new(&x, false);
	x.before_trailer = corrupt_staged_block;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, VR_EIO);
	cr_assert(strstr(vr_store_message(st), "root"), "%s", vr_store_message(st));
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 1, "nothing was committed");
	free(list);
	/* The replica still holds the first instance; the retry commits. */
	char *saved0 = vr_asprintf("%s/saved-1-0.img", s_root);
	size_t len;
	uint8_t *img0 = s_read(saved0, &len);
	cr_assert(s_file_equals(vr_store_disk_path(st, 0), img0, len));
	free(img0);
	free(saved0);
	x.before_trailer = NULL;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0, "commit: %s", vr_store_message(st));
	s_assert_replica(st, &s);
	vr_store_close(st);
	s_src_free(&s);
}

Test(store, refuses_other_transfers)
{
	struct s_src s;
	s_src_init(&s, 16, 16);
	s_create(&s);
	struct vr_store *st = s_open();
	uint8_t repl[VR_TX_ID];
	cr_assert_eq(vr_tx_id_parse(repl, S_REPL), 0);
	struct vr_tx_dec dec;
	cr_assert_eq(vr_tx_dec_init(&dec, repl), 0);
	/* Not after a header. */
	cr_assert_eq(vr_store_stage_begin(st, &dec), VR_TX_ESTATE);
	cr_assert_eq(vr_store_stage_run(st, 0, 0, 1, s.img[0]), VR_EIO);
	cr_assert_eq(vr_store_commit(st, &dec, NULL), VR_ECONFLICT);

	struct vr_tx_header h;
	memset(&h, 0, sizeof h);
	h.version = VR_TX_VERSION;
	h.flags = VR_TX_FULL;
	h.ndisks = 1;
	memcpy(h.replication, repl, VR_TX_ID);
	strcpy(h.disks[0].key, "2000");
	h.disks[0].size = 16 * VR_TX_BLOCK;
	struct vr_buf out;
	vr_buf_init(&out, 0);
	struct vr_tx_enc enc;
	cr_assert_eq(vr_tx_enc_init(&enc, &h, vr_tx_sink_buf, &out), 0);
	size_t used;
	cr_assert_eq(vr_tx_dec_feed(&dec, (uint8_t *)out.data, out.len, &used), VR_TX_EV_HEADER);
	cr_assert_eq(vr_store_stage_begin(st, &dec), VR_TX_EHEADER, "one disk of two");
	vr_buf_free(&out);
	vr_tx_dec_free(&dec);
	vr_store_close(st);
	s_src_free(&s);
}

Test(store, create_after_a_removal_cut_short)
{
	struct s_src s;
	s_src_init(&s, 32, 32);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 4, 4);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	s_src_write(&s, 4, 4);
	struct s_xfer x;
	s_xfer_new(&x, false);
	x.max_run = 1;
	x.drop_after_runs = 2;
	cr_assert_eq(s_send(st, &s, &x), 0);
	vr_store_close(st);
	/* A removal takes the manifest first. */
	char *manifest = s_repl_path("disks");
	cr_assert_eq(unlink(manifest), 0);
	free(manifest);
	char *err = NULL;
	cr_assert_eq(vr_store_open(&st, s_root, S_REPL, 10, &err), VR_ENOTFOUND);
	free(err);
	s_create(&s);
	st = s_open();
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 0, "a new store");
	for (unsigned d = 0; d < S_NDISKS; d++) {
		uint8_t *zero = calloc(1, s.disks[d].size);
		cr_assert(s_file_equals(vr_store_disk_path(st, d), zero, s.disks[d].size));
		free(zero);
	}
	/* Nothing of the old staging is resumed. */
	s_src_all_changed(&s);
	x.drop_after_runs = -1;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0);
	cr_assert_eq(x.sent_blocks, 64);
	cr_assert_eq(x.committed.seq, 1);
	s_assert_replica(st, &s);
	vr_store_close(st);
	s_src_free(&s);
}

/* Group hashes from another thread while runs are staged: the replica is
 * the previous instance until the commit. */
struct hasher {
	struct vr_store *st;
	const struct s_src *prev;
	atomic_bool stop;
	unsigned rounds, mismatches, errors;
};

static void *hash_loop(void *arg)
{
	struct hasher *h = arg;
	do {
		for (unsigned d = 0; d < S_NDISKS; d++) {
			uint64_t nb = s_blocks(h->prev, d);
			for (uint64_t first = 0; first < nb; first += VR_STORE_GROUP_BLOCKS) {
				uint32_t n = (uint32_t)(nb - first < VR_STORE_GROUP_BLOCKS
								? nb - first
								: VR_STORE_GROUP_BLOCKS);
				uint8_t got[VR_TX_HASH], leaves[VR_STORE_GROUP_BLOCKS][VR_TX_HASH],
					want[VR_TX_HASH];
				if (vr_store_group_hash(h->st, d, first, n, got)) {
					h->errors++;
					continue;
				}
				for (uint32_t i = 0; i < n; i++)
					vr_tx_leaf(first + i,
						   h->prev->img[d] + (first + i) * VR_TX_BLOCK,
						   leaves[i]);
				tx_sha256(want, leaves, (size_t)n * VR_TX_HASH, NULL, 0, NULL, 0);
				h->mismatches += memcmp(got, want, VR_TX_HASH) != 0;
			}
		}
		h->rounds++;
	} while (!h->stop);
	return NULL;
}

static struct hasher *the_hasher;
static pthread_t the_thread;

/* Before the commit: the hasher finishes its round and ends. */
static void stop_hasher(struct vr_store *st)
{
	(void)st;
	the_hasher->stop = true;
	pthread_join(the_thread, NULL);
}

Test(store, group_hashes_beside_staging)
{
	struct s_src s, prev;
	s_src_init(&s, 256, 128);
	s_src_init(&prev, 256, 128);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 20, 20);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	for (unsigned d = 0; d < S_NDISKS; d++)
		memcpy(prev.img[d], s.img[d], s.disks[d].size);
	s_src_write(&s, 40, 30);

	struct hasher h = {.st = st, .prev = &prev};
	the_hasher = &h;
	cr_assert_eq(pthread_create(&the_thread, NULL, hash_loop, &h), 0);
	struct s_xfer x;
	s_xfer_new(&x, false);
	x.max_run = 1;
	x.before_trailer = stop_hasher;
	cr_assert_eq(s_send(st, &s, &x), 1);
	cr_assert_eq(x.commit_rc, 0);
	cr_assert_gt(h.rounds, 0);
	cr_assert_eq(h.errors, 0);
	cr_assert_eq(h.mismatches, 0, "the replica changed before the commit");
	s_assert_replica(st, &s);
	vr_store_close(st);
	s_src_free(&prev);
	s_src_free(&s);
}
