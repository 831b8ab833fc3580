/* The replica store's instances: exports of every retained instance equal
 * the source at its point in time, before and after drops of the oldest
 * and of middle instances; pinning; moves and copies out; group hashes;
 * damaged undo logs, journals and markers are errors, never wrong data. */
#include <openssl/evp.h>

#include "unit/test_store_common.h"

TestSuite(store_retention, .init = s_setup, .fini = s_teardown);

static char *export_dir(const char *what, uint64_t seq)
{
	return vr_asprintf("%s/%s-%llu", s_root, what, (unsigned long long)seq);
}

static void export_and_check(struct vr_store *st, const struct s_src *s,
			     const struct vr_store_instance *in, const char *what)
{
	char *dir = export_dir(what, in->seq);
	char **paths = NULL;
	int rc = vr_store_export(st, in->id, dir, VR_STORE_COPY, &paths);
	cr_assert_eq(rc, 0, "export of %llu: %s", (unsigned long long)in->seq,
		     vr_store_message(st));
	cr_assert_not_null(paths);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *want = vr_asprintf("%s/disk-%u.img", dir, d);
		cr_assert_str_eq(paths[d], want);
		free(want);
		free(paths[d]);
	}
	free(paths);
	s_assert_saved(dir, in->seq, s);
	free(dir);
}

static void export_all(struct vr_store *st, const struct s_src *s, const char *what)
{
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	for (size_t i = 0; i < n; i++)
		export_and_check(st, s, &list[i], what);
	free(list);
}

static size_t count_instances(struct vr_store *st)
{
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	free(list);
	return n;
}

static bool undo_exists(uint64_t seq)
{
	char *name = vr_asprintf("undo-%llu.log", (unsigned long long)seq);
	char *path = s_repl_path(name);
	bool there = access(path, F_OK) == 0;
	free(name);
	free(path);
	return there;
}

Test(store_retention, many_instances_exports_and_drops, .timeout = 300)
{
	struct s_src s;
	s_src_init(&s, 200, 120);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 20, 20);
	s_src_all_changed(&s);
	struct vr_store_instance ins[41];
	s_instance(st, &s, true, &ins[1]);
	for (unsigned k = 2; k <= 40; k++) {
		s_src_write(&s, 1 + (unsigned)(s_rand() % 6), 1 + (unsigned)(s_rand() % 30));
		s_instance(st, &s, false, &ins[k]);
		cr_assert_eq(ins[k].seq, k);
	}
	cr_assert_eq(count_instances(st), 40);
	for (unsigned k = 1; k < 40; k++)
		cr_assert(undo_exists(k), "instance %u has an undo log", k);
	cr_assert_not(undo_exists(40), "the newest has none");
	export_all(st, &s, "a");

	/* Refusals. */
	char *dir = export_dir("a", 40);
	cr_assert_eq(vr_store_export(st, NULL, dir, VR_STORE_COPY, NULL), VR_EEXIST);
	free(dir);
	dir = export_dir("x", 0);
	cr_assert_eq(vr_store_export(st, "00000000-0000-4000-8000-000000000000", dir, VR_STORE_COPY,
				     NULL),
		     VR_ENOTFOUND);
	cr_assert_eq(vr_store_export(st, ins[3].id, dir, VR_STORE_MOVE, NULL), VR_EINVAL);
	free(dir);
	cr_assert_eq(vr_store_drop(st, ins[40].id), VR_ECONFLICT, "the newest stays");
	cr_assert_eq(vr_store_drop(st, "00000000-0000-4000-8000-000000000000"), VR_ENOTFOUND);
	cr_assert_eq(vr_store_pin(st, ins[10].id, true), 0);
	cr_assert_eq(vr_store_drop(st, ins[10].id), VR_ECONFLICT, "pinned");

	/* The oldest, middles (two neighbours among them), the newest's
	 * predecessor. */
	unsigned drop[] = {1, 2, 5, 6, 7, 11, 20, 39, 25, 24};
	for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) {
		int rc = vr_store_drop(st, ins[drop[i]].id);
		cr_assert_eq(rc, 0, "drop %u: %s", drop[i], vr_store_message(st));
		cr_assert_not(undo_exists(drop[i]));
		cr_assert_eq(vr_store_drop(st, ins[drop[i]].id), VR_ENOTFOUND);
	}
	cr_assert_eq(count_instances(st), 30);
	export_all(st, &s, "b");

	/* After a reopen, the survivors still export right; the pin holds. */
	vr_store_close(st);
	st = s_open();
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 30);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(list[i].pinned, list[i].seq == 10);
	/* Drop everything but the newest and the pinned one. */
	for (size_t i = 0; i + 1 < n; i++)
		if (list[i].seq != 10)
			cr_assert_eq(vr_store_drop(st, list[i].id), 0, "%s", vr_store_message(st));
	free(list);
	cr_assert_eq(count_instances(st), 2);
	export_and_check(st, &s, &ins[10], "c");
	cr_assert_eq(vr_store_pin(st, ins[10].id, false), 0);
	cr_assert_eq(vr_store_drop(st, ins[10].id), 0);
	cr_assert_eq(count_instances(st), 1);
	export_and_check(st, &s, &ins[40], "c");
	/* Commits go on after all that. */
	s_src_write(&s, 5, 5);
	struct vr_store_instance next;
	s_instance(st, &s, false, &next);
	cr_assert_eq(next.seq, 41);
	export_and_check(st, &s, &ins[40], "d");
	vr_store_close(st);
	s_src_free(&s);
}

Test(store_retention, a_thousand_instances, .timeout = 300)
{
	struct s_src s;
	s_src_init(&s, 32, 16);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	struct vr_store_instance keep[4];
	for (unsigned k = 2; k <= 1000; k++) {
		s_src_write(&s, 1, 2);
		struct vr_store_instance in;
		s_instance(st, &s, false, &in);
		if (k == 10 || k == 500 || k == 999 || k == 1000)
			keep[k == 10 ? 0 : k == 500 ? 1 : k == 999 ? 2 : 3] = in;
	}
	cr_assert_eq(count_instances(st), 1000);
	for (unsigned i = 0; i < 4; i++)
		export_and_check(st, &s, &keep[i], "k");
	/* Retention to a handful: the oldest first, then from the middle. */
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t q = list[i].seq;
		if (q != 10 && q != 500 && q != 999 && q != 1000)
			cr_assert_eq(vr_store_drop(st, list[i].id), 0, "%s", vr_store_message(st));
	}
	free(list);
	cr_assert_eq(count_instances(st), 4);
	for (unsigned i = 0; i < 4; i++)
		export_and_check(st, &s, &keep[i], "m");
	vr_store_close(st);
	s_src_free(&s);
}

static void move_and_check(const char *dest_root)
{
	struct s_src s;
	s_src_init(&s, 100, 60);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 10, 10);
	s_src_all_changed(&s);
	struct vr_store_instance ins[4];
	s_instance(st, &s, true, &ins[1]);
	s_src_write(&s, 5, 10);
	s_instance(st, &s, false, &ins[2]);
	s_src_write(&s, 5, 10);
	s_instance(st, &s, false, &ins[3]);
	/* A copy of an older one first: the replica goes on unchanged. */
	export_and_check(st, &s, &ins[2], "copy");
	s_assert_replica(st, &s);

	char *dest = vr_asprintf("%s/moved", dest_root);
	char **paths = NULL;
	int rc = vr_store_export(st, NULL, dest, VR_STORE_MOVE, &paths);
	cr_assert_eq(rc, 0, "move: %s", vr_store_message(st));
	for (unsigned d = 0; d < S_NDISKS; d++) {
		cr_assert(s_file_equals(paths[d], s.img[d], s.disks[d].size));
		cr_assert_neq(access(vr_store_disk_path(st, d), F_OK), 0, "moved out");
		free(paths[d]);
	}
	free(paths);
	/* Retried by a job: the same answer; anything else is refused. */
	cr_assert_eq(vr_store_export(st, ins[3].id, dest, VR_STORE_MOVE, NULL), 0);
	char *other = vr_asprintf("%s/other", s_root);
	cr_assert_eq(vr_store_export(st, NULL, other, VR_STORE_COPY, NULL), VR_ECONFLICT);
	uint8_t h[VR_TX_HASH];
	cr_assert_eq(vr_store_group_hash(st, 0, 0, 16, h), VR_ECONFLICT);
	vr_store_close(st);
	st = s_open();
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	cr_assert_eq(n, 3, "the records stay");
	for (size_t i = 0; i < n; i++)
		cr_assert_not(list[i].available);
	free(list);
	cr_assert_not(undo_exists(1) || undo_exists(2));
	cr_assert_eq(vr_store_export(st, ins[1].id, other, VR_STORE_COPY, NULL), VR_ECONFLICT);
	vr_store_close(st);

	/* Protected again: empty disks, a full sync, no undo log for the old. */
	s_create(&s);
	st = s_open();
	for (unsigned d = 0; d < S_NDISKS; d++) {
		uint8_t *zero = calloc(1, s.disks[d].size);
		cr_assert(s_file_equals(vr_store_disk_path(st, d), zero, s.disks[d].size));
		free(zero);
	}
	s_src_all_changed(&s);
	struct vr_store_instance again;
	s_instance(st, &s, true, &again);
	cr_assert_eq(again.seq, 4);
	cr_assert_not(undo_exists(3));
	cr_assert_eq(vr_store_export(st, ins[3].id, other, VR_STORE_COPY, NULL), VR_ECONFLICT);
	s_src_write(&s, 3, 3);
	s_instance(st, &s, false, NULL);
	export_and_check(st, &s, &again, "after");
	cr_assert_eq(vr_store_drop(st, ins[1].id), 0);
	cr_assert_eq(vr_store_drop(st, ins[3].id), 0);
	free(other);
	free(dest);
	vr_store_close(st);
	s_src_free(&s);
}

Test(store_retention, move_and_copy)
{
	move_and_check(s_root);
}

Test(store_retention, move_across_file_systems)
{
	char shm[] = "/dev/shm/vr-test-store-XXXXXX";
	if (!mkdtemp(shm))
		cr_skip_test("no /dev/shm");
	struct stat a, b;
	cr_assert_eq(stat(shm, &a), 0);
	cr_assert_eq(stat(s_root, &b), 0);
	if (a.st_dev == b.st_dev) {
		rmdir(shm);
		cr_skip_test("/dev/shm is on the same file system");
	}
	move_and_check(shm);
	nftw(shm, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void group_hash_of(const struct s_src *s, unsigned d, uint64_t first, uint32_t count,
			  uint8_t out[VR_TX_HASH])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	cr_assert_eq(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	for (uint64_t b = first; b < first + count; b++) {
		uint8_t leaf[VR_TX_HASH];
		vr_tx_leaf(b, s->img[d] + b * VR_TX_BLOCK, leaf);
		EVP_DigestUpdate(ctx, leaf, sizeof leaf);
	}
	EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
}

Test(store_retention, group_hashes)
{
	struct s_src s;
	s_src_init(&s, 600, 37); /* 37: the last group is short */
	s_create(&s);
	struct vr_store *st = s_open();
	uint8_t got[VR_TX_HASH], want[VR_TX_HASH];
	/* Empty (sparse) disks hash as zeros. */
	cr_assert_eq(vr_store_group_hash(st, 1, 32, 5, got), 0);
	group_hash_of(&s, 1, 32, 5, want);
	cr_assert_eq(memcmp(got, want, VR_TX_HASH), 0);
	s_src_write(&s, 30, 20);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		uint64_t nb = s_blocks(&s, d);
		for (uint64_t g = 0; g * VR_STORE_GROUP_BLOCKS < nb; g++) {
			uint64_t first = g * VR_STORE_GROUP_BLOCKS;
			uint32_t count = (uint32_t)(nb - first < VR_STORE_GROUP_BLOCKS
							    ? nb - first
							    : VR_STORE_GROUP_BLOCKS);
			cr_assert_eq(vr_store_group_hash(st, d, first, count, got), 0);
			group_hash_of(&s, d, first, count, want);
			cr_assert_eq(memcmp(got, want, VR_TX_HASH), 0, "disk %u group %llu", d,
				     (unsigned long long)g);
		}
	}
	/* More than 1 MiB at once. */
	cr_assert_eq(vr_store_group_hash(st, 0, 3, 590, got), 0);
	group_hash_of(&s, 0, 3, 590, want);
	cr_assert_eq(memcmp(got, want, VR_TX_HASH), 0);
	cr_assert_eq(vr_store_group_hash(st, 1, 30, 8, got), VR_EINVAL);
	cr_assert_eq(vr_store_group_hash(st, 2, 0, 1, got), VR_EINVAL);
	cr_assert_eq(vr_store_group_hash(st, 0, 0, 0, got), VR_EINVAL);
	vr_store_close(st);
	s_src_free(&s);
}

static void flip(const char *path, long from_end)
{
	size_t n;
	uint8_t *bytes = s_read(path, &n);
	cr_assert_gt((long)n, from_end);
	bytes[n - (size_t)from_end] ^= 0x10;
	s_write(path, bytes, n);
	free(bytes);
}

static void no_images(const char *dir)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *p = vr_asprintf("%s/disk-%u.img", dir, d);
		cr_assert_neq(access(p, F_OK), 0, "%s was left behind", p);
		free(p);
	}
}

Test(store_retention, damaged_files_are_errors)
{
	struct s_src s;
	s_src_init(&s, 64, 64);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 10, 10);
	s_src_all_changed(&s);
	struct vr_store_instance ins[4];
	s_instance(st, &s, true, &ins[1]);
	for (unsigned k = 2; k <= 3; k++) {
		s_src_write(&s, 4, 8);
		s_instance(st, &s, false, &ins[k]);
	}
	char *undo1 = s_repl_path("undo-1.log");
	size_t len;
	uint8_t *good = s_read(undo1, &len);

	/* A flipped data byte: the export fails and leaves nothing. */
	flip(undo1, 100);
	char *dir = export_dir("bad", 1);
	cr_assert_eq(vr_store_export(st, ins[1].id, dir, VR_STORE_COPY, NULL), VR_EIO);
	cr_assert(strstr(vr_store_message(st), "corrupt"), "%s", vr_store_message(st));
	no_images(dir);
	/* The merge of a drop reads it too and changes nothing. */
	cr_assert_eq(vr_store_drop(st, ins[2].id), VR_EIO);
	cr_assert_eq(count_instances(st), 3);
	/* A missing end record. */
	s_write(undo1, good, len - 48);
	cr_assert_eq(vr_store_export(st, ins[1].id, dir, VR_STORE_COPY, NULL), VR_EIO);
	no_images(dir);
	s_write(undo1, good, len);
	export_and_check(st, &s, &ins[1], "good");
	free(good);
	vr_store_close(st);

	/* A flipped byte in the journal: the store does not open. */
	char *journal = s_repl_path("instances");
	good = s_read(journal, &len);
	flip(journal, 200);
	char *err = NULL;
	cr_assert_eq(vr_store_open(&st, s_root, S_REPL, 100, &err), VR_EIO);
	cr_assert(strstr(err, "corrupt"), "%s", err);
	free(err);
	s_write(journal, good, len);
	free(good);
	/* The same for a commit marker. */
	char *marker = s_repl_path("commit");
	s_write(marker, "VRSCOMM1 and not much else", 26);
	err = NULL;
	cr_assert_eq(vr_store_open(&st, s_root, S_REPL, 100, &err), VR_EIO);
	free(err);
	unlink(marker);
	st = s_open();
	export_and_check(st, &s, &ins[2], "fine");
	vr_store_close(st);
	free(marker);
	free(journal);
	free(dir);
	free(undo1);
	s_src_free(&s);
}

Test(store_retention, relative_destinations_come_back_absolute)
{
	struct s_src s;
	s_src_init(&s, 16, 16);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 3, 3);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	cr_assert_eq(chdir(s_root), 0);
	char **paths = NULL;
	cr_assert_eq(vr_store_export(st, NULL, "rel/copy", VR_STORE_COPY, &paths), 0);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *want = vr_asprintf("%s/rel/copy/disk-%u.img", s_root, d);
		cr_assert_str_eq(paths[d], want);
		cr_assert(s_file_equals(paths[d], s.img[d], s.disks[d].size));
		free(want);
		free(paths[d]);
	}
	free(paths);
	cr_assert_eq(vr_store_export(st, NULL, "rel/moved", VR_STORE_MOVE, &paths), 0);
	cr_assert_eq(paths[0][0], '/');
	for (unsigned d = 0; d < S_NDISKS; d++)
		free(paths[d]);
	free(paths);
	/* The move is recorded by its absolute path: a retry from elsewhere
	 * with the same directory succeeds. */
	cr_assert_eq(chdir("/"), 0);
	char *abs = vr_asprintf("%s/rel/moved", s_root);
	cr_assert_eq(vr_store_export(st, NULL, abs, VR_STORE_MOVE, NULL), 0);
	free(abs);
	vr_store_close(st);
	s_src_free(&s);
}
