/* The whole stack of the data plane for test_dataplane and
 * test_dataplane_kill: the harness's API, PostgreSQL and Redis, two
 * vrcloud-worker processes sharing one store_dir and one recovered_dir,
 * two vrcloud-proxy behind haproxy, the vrcloud-agent daemon of a site
 * paired with a VDC of its own, and a VM of two raw disks written by
 * vrcloud-io (with its changed-block logs), protected with
 * `vrcloud-agent protect`. Every check compares images byte for byte. */
#ifndef VRCLOUD_TESTS_INTEGRATION_DATAPLANE_H
#define VRCLOUD_TESTS_INTEGRATION_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The Redis prefix of the program's jobs and tunnels, the API's included
 * (its suite sets "[jobs] prefix"), so that programs sharing a Redis
 * server never take each other's jobs. Each test program defines it. */
extern const char dp_prefix[];

#define DP_MIB	 ((uint64_t)1 << 20)
#define DP_DISKS 2

struct dp_proc {
	pid_t pid;
	char log[320];
	unsigned port, internal_port;
	char name[32];
};

struct dp_world {
	char dir[256];
	char vdc[40], peer[40], repl[40];
	char cred_file[300], pw_file[300];
	char ca[300], cert[300], key[300];
	char store[300], recovered[300], state[300], vmdir[300];
	char agent_ini[300], frozen[300], io_pid[300];
	uint64_t size[DP_DISKS];
	char disk[DP_DISKS][400];
	struct dp_proc worker[2], proxy[2], lb, agent, io;
};

/* Start everything, protect the VM (disk sizes in MiB, the disks first
 * written by vrcloud-io) and wait for the daemon's first (full) instance. */
void dp_start(struct dp_world *w, uint64_t mib0, uint64_t mib1);
/* Stop everything; fails the test on a sanitizer report or an unclean
 * exit of a daemon. */
void dp_stop(struct dp_world *w);

/* Processes. */
void dp_worker_start(struct dp_world *w, unsigned i);
void dp_proxy_start(struct dp_world *w, unsigned i);
void dp_agent_start(struct dp_world *w);
/* SIGTERM (or sig) and wait: exit status, 256 + signal, -1 killed after
 * the timeout, -2 a sanitizer report in its log. */
int dp_stop_proc(struct dp_proc *p, int sig, double timeout_s);
/* The worker (0 or 1) holding the replication. */
unsigned dp_holder(const struct dp_world *w);

/* vrcloud-io: bytes written into disk d (sequential or random), seeded. */
void dp_io_write(const struct dp_world *w, unsigned d, const char *bytes, const char *seed,
		 const char *pattern);
/* vrcloud-io writing into disk 0 at a rate until dp_writer_stop. */
void dp_writer_start(struct dp_world *w, const char *rate);
void dp_writer_stop(struct dp_world *w);

/* `vrcloud-agent sync VM` in the foreground: its pid (dp_sync_wait). */
pid_t dp_sync_spawn(const struct dp_world *w, const char *out);
/* Wait for it: its exit status, -1 after the timeout (then killed). */
int dp_wait_exit(pid_t pid, double timeout_s);
/* A sync to its end (asserted 0); the committed instance's id, caller frees. */
char *dp_sync(const struct dp_world *w);

/* The instances the API lists, NextInstanceSequenceNumber, the newest
 * instance's id (NULL when none; caller frees). */
long dp_instance_count(const struct dp_world *w);
long dp_next_seq(const struct dp_world *w);
char *dp_newest_instance(const struct dp_world *w);

/* Copies of images and byte-for-byte comparison (cmp). */
void dp_save(const char *from, const char *to);
bool dp_same(const char *a, const char *b);
/* The replica image of disk d, and the saved source of instance id. */
char *dp_replica(const struct dp_world *w, unsigned d);
char *dp_saved(const struct dp_world *w, const char *instance, unsigned d);
/* Save the frozen copies (made by the freeze hook) or the live disks as
 * instance id's source. */
void dp_save_frozen(const struct dp_world *w, const char *instance);
void dp_save_live(const struct dp_world *w, const char *instance);
/* The replica equals the saved source of instance id, disk by disk. */
void dp_assert_replica_is(const struct dp_world *w, const char *instance, const char *when);

/* POST an action on the replication as admin-a and wait for its Task's end:
 * the Task's status (caller frees). */
char *dp_act(const char *path, const char *content_type, const char *body);
/* `vrcloudctl vapp show` of the live vApp of kind of rg (caller frees). */
char *dp_vapp_show(const char *rg, const char *kind);
/* The value of key= in text (quotes dropped; caller frees). */
char *dp_kv(const char *text, const char *key);
char *dp_read_text(const char *path);
bool dp_file_contains(const char *path, const char *needle);
const char *dp_builddir(void);

#endif
