/* The replica store under SIGKILL: a child process receives an instance,
 * commits it and drops an older one, and is killed at a random moment;
 * the next open must find the replica equal to exactly the previous or
 * the new instance, with the journal saying which, and the interrupted
 * instance must then resume and commit. Every few trials, and at the end,
 * every retained instance is exported and compared with the source. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "unit/test_store_common.h"

TestSuite(store_crash, .init = s_setup, .fini = s_teardown);

#define TRIALS	     200
#define MAX_RETAINED 8

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void save(const struct s_src *s, uint64_t seq)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *p = vr_asprintf("%s/saved-%llu-%u.img", s_root, (unsigned long long)seq, d);
		s_write(p, s->img[d], s->disks[d].size);
		free(p);
	}
}

static void unsave(uint64_t seq)
{
	for (unsigned d = 0; d < S_NDISKS; d++) {
		char *p = vr_asprintf("%s/saved-%llu-%u.img", s_root, (unsigned long long)seq, d);
		unlink(p);
		free(p);
	}
}

static bool replica_equals(struct vr_store *st, uint8_t *const *img, const struct s_src *s)
{
	for (unsigned d = 0; d < S_NDISKS; d++)
		if (!s_file_equals(vr_store_disk_path(st, d), img[d], s->disks[d].size))
			return false;
	return true;
}

static void export_all(struct vr_store *st, const struct s_src *s, unsigned round)
{
	struct vr_store_instance *list;
	size_t n;
	cr_assert_eq(vr_store_instances(st, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		char *dir = vr_asprintf("%s/export-%u-%llu", s_root, round,
					(unsigned long long)list[i].seq);
		cr_assert_eq(vr_store_export(st, list[i].id, dir, VR_STORE_COPY, NULL), 0,
			     "export of %llu: %s", (unsigned long long)list[i].seq,
			     vr_store_message(st));
		s_assert_saved(dir, list[i].seq, s);
		nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
		free(dir);
	}
	free(list);
}

/* The child: receive, commit, drop; killed somewhere in there. */
static void child(const struct s_src *s, struct s_xfer *x, const char *victim)
{
	struct vr_store *st = NULL;
	if (vr_store_open(&st, s_root, S_REPL, 10000, NULL))
		_exit(2);
	s_send(st, s, x);
	if (x->commit_rc)
		_exit(3);
	if (victim[0] && vr_store_drop(st, victim))
		_exit(4);
	vr_store_close(st);
	_exit(0);
}

Test(store_crash, sigkill_during_transfers_commits_and_drops, .timeout = 300)
{
	struct s_src s;
	s_src_init(&s, 192, 64);
	s_create(&s);
	uint8_t *prev[S_NDISKS];
	struct vr_store *st = s_open();
	s_src_write(&s, 20, 20);
	s_src_all_changed(&s);
	struct vr_store_instance first;
	s_instance(st, &s, true, &first);
	vr_store_close(st);
	for (unsigned d = 0; d < S_NDISKS; d++) {
		prev[d] = malloc(s.disks[d].size);
		memcpy(prev[d], s.img[d], s.disks[d].size);
	}
	char prev_id[VR_UUID_LEN + 1];
	strcpy(prev_id, first.id);
	size_t committed = 1;

	int64_t started = now_us(), runs[5], window = 0;
	unsigned finished = 0;
	unsigned before = 0, after = 0, forward = 0, trials = 0;
	char *marker = s_repl_path("commit");
	for (unsigned t = 0; t < TRIALS && now_us() - started < 45000000; t++, trials++) {
		s_src_write(&s, 1 + (unsigned)(s_rand() % 5), 1 + (unsigned)(s_rand() % 40));
		struct s_xfer x;
		s_xfer_new(&x, false);
		x.max_run = 1 + (unsigned)(s_rand() % 16);

		/* An older instance for the child to drop after its commit. */
		char victim[VR_UUID_LEN + 1] = "";
		uint64_t victim_seq = 0;
		st = s_open();
		struct vr_store_instance *list;
		size_t n;
		cr_assert_eq(vr_store_instances(st, &list, &n), 0);
		if (n >= 3) {
			size_t i = (size_t)(s_rand() % n);
			strcpy(victim, list[i].id);
			victim_seq = list[i].seq;
		}
		free(list);
		vr_store_close(st);

		/* The first trials run to the end and measure how long it takes;
		 * the others are killed at a random moment within that time. */
		int64_t t0 = now_us();
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			child(&s, &x, victim);
		if (t >= 5) {
			usleep((useconds_t)(s_rand() % (uint64_t)(window + 1)));
			kill(pid, SIGKILL);
		}
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			cr_assert_eq(WEXITSTATUS(status), 0, "child: exit %d", WEXITSTATUS(status));
		if (t >= 5) {
			/* Keep the kills inside the child's work as its speed varies. */
			finished += WIFEXITED(status);
			window = WIFEXITED(status) ? window * 9 / 10 : window * 21 / 20 + 1;
		}
		if (t < 5)
			runs[t] = now_us() - t0;
		if (t == 4) {
			/* The window: the median run. */
			for (int i = 0; i < 5; i++)
				for (int j = i + 1; j < 5; j++)
					if (runs[j] < runs[i]) {
						int64_t v = runs[i];
						runs[i] = runs[j];
						runs[j] = v;
					}
			window = runs[2];
		}

		/* Exactly the previous or the new instance, and the journal agrees. */
		if (access(marker, F_OK) == 0)
			forward++; /* killed past the commit point: rolled forward */
		st = s_open();
		cr_assert_eq(vr_store_instances(st, &list, &n), 0);
		cr_assert_geq(n, 1);
		const char *newest = list[n - 1].id;
		bool is_new = !strcmp(newest, x.instance);
		cr_assert(is_new || !strcmp(newest, prev_id), "trial %u: newest is %s", t, newest);
		if (is_new) {
			cr_assert(replica_equals(st, s.img, &s),
				  "trial %u: the journal has the new instance, the disks do not",
				  t);
			after++;
			save(&s, list[n - 1].seq);
		} else {
			cr_assert(
				replica_equals(st, prev, &s),
				"trial %u: the journal has the previous instance, the disks do not",
				t);
			before++;
			/* The same instance again resumes and commits. */
			cr_assert_eq(s_send(st, &s, &x), 1);
			cr_assert_eq(x.commit_rc, 0, "trial %u: commit: %s", t,
				     vr_store_message(st));
			cr_assert_leq(x.sent_blocks, x.instance_blocks);
			s_assert_replica(st, &s);
			save(&s, x.committed.seq);
		}
		committed++;
		free(list);
		if (victim_seq) {
			cr_assert_eq(vr_store_instances(st, &list, &n), 0);
			bool dropped = true;
			for (size_t i = 0; i < n; i++)
				dropped = dropped && list[i].seq != victim_seq;
			free(list);
			if (dropped)
				unsave(victim_seq);
		}
		/* Retention: at most MAX_RETAINED, dropped at random. */
		for (;;) {
			cr_assert_eq(vr_store_instances(st, &list, &n), 0);
			if (n <= MAX_RETAINED) {
				free(list);
				break;
			}
			size_t i = (size_t)(s_rand() % (n - 1));
			if (list[i].pinned)
				i = 0;
			cr_assert_eq(vr_store_drop(st, list[i].id), 0, "%s", vr_store_message(st));
			unsave(list[i].seq);
			free(list);
		}
		if (t % 25 == 24)
			export_all(st, &s, t);
		vr_store_close(st);

		strcpy(prev_id, x.instance);
		for (unsigned d = 0; d < S_NDISKS; d++)
			memcpy(prev[d], s.img[d], s.disks[d].size);
		s_src_clear_changed(&s);
	}
	st = s_open();
	export_all(st, &s, TRIALS);
	vr_store_close(st);
	fprintf(stderr,
		"store crash: %u trials: the previous instance after %u, the new one after %u "
		"(rolled forward %u times, not killed %u times); kills within %lld us\n",
		trials, before, after, forward, finished, (long long)window);
	free(marker);
	cr_assert_geq(trials, 100);
	cr_assert_geq(before, 10, "kills before the commit point: %u", before);
	cr_assert_geq(after, 10, "kills after the commit point: %u", after);
	cr_assert_geq(forward, 1, "no kill fell between the commit point and its end");
	cr_assert_eq(committed, trials + 1);
	for (unsigned d = 0; d < S_NDISKS; d++)
		free(prev[d]);
	s_src_free(&s);
}

/* A move out (the failover to the newest instance) killed at random
 * moments: after the next open either nothing moved (the replica is whole
 * in the store, nothing in the destination) or everything did (the
 * destination holds the newest instance, the store none); then the
 * replication is protected again. Odd trials move across file systems
 * when /dev/shm is another one (a copy instead of a rename). */
Test(store_crash, sigkill_during_moves, .timeout = 300)
{
	char shm[] = "/dev/shm/vr-test-store-XXXXXX";
	bool other_fs = mkdtemp(shm) != NULL;
	struct s_src s;
	s_src_init(&s, 512, 256);
	s_create(&s);
	struct vr_store *st = s_open();
	s_src_write(&s, 40, 40);
	s_src_all_changed(&s);
	s_instance(st, &s, true, NULL);
	vr_store_close(st);

	unsigned moved = 0, stayed = 0;
	int64_t window = 2000;
	for (unsigned t = 0; t < 40; t++) {
		char *dest = vr_asprintf("%s/recovered-%u", other_fs && t % 2 ? shm : s_root, t);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			struct vr_store *cs = NULL;
			if (vr_store_open(&cs, s_root, S_REPL, 10000, NULL) ||
			    vr_store_export(cs, NULL, dest, VR_STORE_MOVE, NULL))
				_exit(2);
			vr_store_close(cs);
			_exit(0);
		}
		usleep((useconds_t)(s_rand() % (uint64_t)window));
		kill(pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			cr_assert_eq(WEXITSTATUS(status), 0);
		window = WIFEXITED(status) ? window * 9 / 10 + 1 : window * 11 / 10 + 1;

		st = s_open();
		struct vr_store_instance *list;
		size_t n;
		cr_assert_eq(vr_store_instances(st, &list, &n), 0);
		bool gone = !list[n - 1].available;
		free(list);
		for (unsigned d = 0; d < S_NDISKS; d++) {
			char *p = vr_asprintf("%s/disk-%u.img", dest, d);
			if (gone) {
				cr_assert(s_file_equals(p, s.img[d], s.disks[d].size),
					  "trial %u: moved disk %u differs", t, d);
				cr_assert_neq(access(vr_store_disk_path(st, d), F_OK), 0);
			} else {
				cr_assert_neq(access(p, F_OK), 0, "trial %u: %s exists", t, p);
			}
			free(p);
		}
		if (gone) {
			moved++;
			vr_store_close(st);
			s_create(&s);
			st = s_open();
			s_src_all_changed(&s);
		} else {
			stayed++;
			s_assert_replica(st, &s);
		}
		s_src_write(&s, 3, 20);
		s_instance(st, &s, gone, NULL);
		vr_store_close(st);
		nftw(dest, s_rm, 16, FTW_DEPTH | FTW_PHYS);
		free(dest);
	}
	fprintf(stderr, "store crash: 40 moves: done %u times, not done %u times\n", moved, stayed);
	cr_assert_geq(moved, 3);
	cr_assert_geq(stayed, 3);
	if (other_fs)
		nftw(shm, s_rm, 16, FTW_DEPTH | FTW_PHYS);
	s_src_free(&s);
}

/* The first instance goes straight into the empty replica (no undo, no
 * second copy); killed at random moments it is either not there (and
 * resumes) or there whole. */
Test(store_crash, sigkill_during_first_syncs, .timeout = 300)
{
	struct s_src s;
	s_src_init(&s, 512, 256);
	unsigned done = 0, resumed = 0;
	int64_t window = 20000;
	for (unsigned t = 0; t < 40; t++) {
		cr_assert_eq(vr_store_remove(s_root, S_REPL, NULL), 0);
		s_create(&s);
		s_src_write(&s, 20, 40);
		s_src_all_changed(&s);
		struct s_xfer x;
		s_xfer_new(&x, true);
		x.max_run = 1 + (unsigned)(s_rand() % 64);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			child(&s, &x, "");
		usleep((useconds_t)(s_rand() % (uint64_t)window));
		kill(pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			cr_assert_eq(WEXITSTATUS(status), 0);
		window = WIFEXITED(status) ? window * 9 / 10 + 1 : window * 11 / 10 + 1;

		struct vr_store *st = s_open();
		struct vr_store_instance *list;
		size_t n;
		cr_assert_eq(vr_store_instances(st, &list, &n), 0);
		cr_assert_leq(n, 1);
		if (n == 1) {
			cr_assert_str_eq(list[0].id, x.instance);
			s_assert_replica(st, &s);
			done++;
		} else {
			cr_assert_eq(s_send(st, &s, &x), 1);
			cr_assert_eq(x.commit_rc, 0, "trial %u: %s", t, vr_store_message(st));
			s_assert_replica(st, &s);
			resumed++;
		}
		free(list);
		vr_store_close(st);
	}
	fprintf(stderr, "store crash: 40 first syncs: done %u times, resumed %u times\n", done,
		resumed);
	cr_assert_geq(done, 3);
	cr_assert_geq(resumed, 3);
	s_src_free(&s);
}
