/* The data plane with the whole stack (dataplane.h): the VM protected with
 * `vrcloud-agent protect`, its instances taken by the agent daemon and by
 * `vrcloud-agent sync` while vrcloud-io writes (the freeze hook stops the
 * writer and copies the disks, so the test knows each instance's source),
 * recovery and failback through the API. Every check compares images
 * byte for byte with cmp. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integration/dataplane.h"
#include "integration/harness.h"
#include "integration/helpers.h"
#include "vrcloud/agent.h"
#include "vrcloud/buf.h"
#include "vrcloud/transfer.h"

#define PREFIX "vrdp"
VRT_SUITE(.name = "dataplane", .jobs = 1, .redis_db = 0, .config = "[jobs]\nprefix = " PREFIX "\n");
const char dp_prefix[] = PREFIX;

#define TEST_FAILOVER_MT "application/vnd.vmware.hcs.testFailoverParams+xml"
#define FAILOVER_MT	 "application/vnd.vmware.hcs.failoverParams+xml"
#define MAX_INSTANCES	 32

/* The committed instances and the minute of their point in time: with the
 * rule 100x5 the API keeps the oldest instance of each 5 minutes and the
 * newest (docs/instances.md). */
struct history {
	size_t n;
	char id[MAX_INSTANCES][40];
	long minute[MAX_INSTANCES];
};

static void history_add(struct history *h, const struct dp_world *w, const char *id)
{
	cr_assert_lt(h->n, MAX_INSTANCES);
	char *minute = vrt_db_value("SELECT floor(extract(epoch FROM transfer_start_time) / 300)"
				    "::bigint::text FROM instances WHERE id = $1::uuid",
				    id);
	cr_assert_not_null(minute, "instance %s is not recorded", id);
	snprintf(h->id[h->n], sizeof h->id[h->n], "%s", id);
	h->minute[h->n] = atol(minute);
	h->n++;
	free(minute);
	/* what the API lists */
	size_t kept = 0;
	for (size_t i = 0; i < h->n; i++)
		if (i == 0 || h->minute[i] != h->minute[i - 1])
			kept++;
	if (h->n > 1 && h->minute[h->n - 1] == h->minute[h->n - 2])
		kept++; /* the newest, beside the oldest of its minute */
	cr_assert_eq(dp_instance_count(w), (long)kept, "after %zu instances", h->n);
	cr_assert_eq(dp_next_seq(w), (long)h->n + 1);
	char *newest = dp_newest_instance(w);
	cr_assert_str_eq(newest, id);
	free(newest);
}

static char *replication_path(const struct dp_world *w, const char *action)
{
	return vrt_fmt("/api/vr/replications/%s/action/%s", w->repl, action);
}

static char *test_failover_body(bool synchronize)
{
	return vrt_fmt("<TestFailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		       "<PowerOn>false</PowerOn><Synchronize>%s</Synchronize>"
		       "</TestFailoverParams>",
		       synchronize ? "true" : "false");
}

static char *failover_body(const char *instance)
{
	if (!instance)
		return vrt_fmt("<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
			       "<PowerOn>false</PowerOn></FailoverParams>");
	return vrt_fmt("<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\">"
		       "<PowerOn>false</PowerOn><InstanceId>%s</InstanceId></FailoverParams>",
		       instance);
}

/* The disk paths of the live vApp of kind, each equal to the saved source
 * of instance; returns them (caller frees). */
static void assert_vapp_is(const struct dp_world *w, const char *kind, const char *instance,
			   char *paths[DP_DISKS])
{
	char *show = dp_vapp_show(w->repl, kind);
	char *iid = dp_kv(show, "instance_id");
	cr_assert_str_eq(iid, instance, "%s", show);
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *key = vrt_fmt("disk_%u_path", 2000 + d);
		paths[d] = dp_kv(show, key);
		char *saved = dp_saved(w, instance, d);
		cr_assert(dp_same(paths[d], saved), "the %s disk %s is not instance %s", kind,
			  paths[d], instance);
		free(saved);
		free(key);
	}
	free(iid);
	free(show);
}

/* A sync while vrcloud-io writes: the instance's source is what the
 * freeze hook copied. */
static char *sync_and_check(struct dp_world *w, struct history *h)
{
	vrt_sleep(0.4);
	char *id = dp_sync(w);
	dp_save_frozen(w, id);
	dp_assert_replica_is(w, id, "after a sync");
	history_add(h, w, id);
	return id;
}

Test(dataplane, instances_failover_to_an_older_one_and_test_failover_while_replication_goes_on,
     .timeout = 240)
{
	struct dp_world w;
	dp_start(&w, 48, 8);
	struct history h = {0};
	char *first = dp_newest_instance(&w);
	history_add(&h, &w, first);
	dp_writer_start(&w, "4M");
	for (int i = 0; i < 3; i++)
		free(sync_and_check(&w, &h));

	/* a test failover of the newest instance, then replication goes on */
	char *newest = dp_newest_instance(&w);
	char *path = replication_path(&w, "testFailover");
	char *body = test_failover_body(false);
	char *status = dp_act(path, TEST_FAILOVER_MT, body);
	cr_assert_str_eq(status, "success");
	free(status);
	char *test_paths[DP_DISKS];
	assert_vapp_is(&w, "test", newest, test_paths);
	char *next = sync_and_check(&w, &h);
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *saved = dp_saved(&w, newest, d);
		cr_assert(dp_same(test_paths[d], saved), "the test image changed with replication");
		free(saved);
	}
	free(path);
	path = replication_path(&w, "testCleanup");
	status = dp_act(path, NULL, NULL);
	cr_assert_str_eq(status, "success");
	free(status);
	for (unsigned d = 0; d < DP_DISKS; d++) {
		cr_assert_neq(access(test_paths[d], F_OK), 0, "%s outlived testCleanup",
			      test_paths[d]);
		free(test_paths[d]);
	}
	/* and one more instance after the cleanup */
	free(sync_and_check(&w, &h));

	/* a synchronizing test failover: the daemon takes a fresh instance on
	 * the worker's sync command, and the test image is that instance */
	free(body);
	body = test_failover_body(true);
	free(path);
	path = replication_path(&w, "testFailover");
	status = dp_act(path, TEST_FAILOVER_MT, body);
	cr_assert_str_eq(status, "success");
	free(status);
	char *fresh = dp_newest_instance(&w);
	cr_assert_str_neq(fresh, h.id[h.n - 1], "no fresh instance before the test failover");
	dp_save_frozen(&w, fresh);
	dp_assert_replica_is(&w, fresh, "the synchronizing test failover's instance");
	history_add(&h, &w, fresh);
	assert_vapp_is(&w, "test", fresh, test_paths);
	for (unsigned d = 0; d < DP_DISKS; d++)
		free(test_paths[d]);
	free(path);
	path = replication_path(&w, "testCleanup");
	status = dp_act(path, NULL, NULL);
	cr_assert_str_eq(status, "success");
	free(status);
	free(fresh);
	dp_writer_stop(&w);

	/* failover to the first instance (kept: the oldest of its minute) */
	free(path);
	path = replication_path(&w, "failover");
	free(body);
	body = failover_body(first);
	status = dp_act(path, FAILOVER_MT, body);
	cr_assert_str_eq(status, "success");
	free(status);
	char *rec_paths[DP_DISKS];
	assert_vapp_is(&w, "recovered", first, rec_paths);
	for (unsigned d = 0; d < DP_DISKS; d++)
		free(rec_paths[d]);
	cr_log_info("%zu instances; failover to the first of them", h.n);
	free(next);
	free(body);
	free(path);
	free(newest);
	free(first);
	dp_stop(&w);
}

Test(dataplane, failover_to_the_newest_then_failback_of_the_changes_in_the_cloud, .timeout = 240)
{
	struct dp_world w;
	dp_start(&w, 32, 8);
	struct history h = {0};
	char *first = dp_newest_instance(&w);
	history_add(&h, &w, first);
	dp_writer_start(&w, "4M");
	char *newest = sync_and_check(&w, &h);
	dp_writer_stop(&w);

	/* failover to the newest instance */
	char *path = replication_path(&w, "failover");
	char *body = failover_body(NULL);
	char *status = dp_act(path, FAILOVER_MT, body);
	cr_assert_str_eq(status, "success");
	free(status);
	char *rec[DP_DISKS];
	assert_vapp_is(&w, "recovered", newest, rec);

	/* the VM runs in the cloud: vrcloud-io writes into its disks */
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *exe = vrt_fmt("%s/vrcloud-io", dp_builddir());
		char *cmd = vrt_fmt("'%s' write '%s' --bytes %s --seed %u --pattern random"
				    " >/dev/null",
				    exe, rec[d], d ? "256K" : "2M", 70 + d);
		cr_assert_eq(system(cmd), 0, "%s", cmd);
		cr_assert_not(dp_same(rec[d], w.disk[d]));
		free(cmd);
		free(exe);
	}

	/* reverse, then the failback replication's sync through the API */
	free(path);
	path = replication_path(&w, "reverse");
	status = dp_act(path, NULL, NULL);
	cr_assert_str_eq(status, "success");
	free(status);
	char *fb = vrt_db_value("SELECT id::text FROM replications WHERE kind = 'failback'"
				" AND source_replication_id = $1::uuid",
				w.repl);
	cr_assert_not_null(fb);
	free(path);
	path = vrt_fmt("/api/vr/failbackreplications/%s/action/sync", fb);
	status = dp_act(path, NULL, NULL);
	cr_assert_str_eq(status, "success", "agent:\n%s", dp_read_text(w.agent.log));
	free(status);
	for (unsigned d = 0; d < DP_DISKS; d++)
		cr_assert(dp_same(rec[d], w.disk[d]), "the site's disk %u is not the recovered one",
			  d);

	/* the site protects the VM again: a new replication, synced */
	char *exe = vrt_fmt("%s/vrcloud-agent", dp_builddir());
	/* the failed-over replication goes first (the peer's VM name is taken
	 * while it exists), through unprotect and the API */
	char *cmd = vrt_fmt("'%s' unprotect dp-vm --api %s --user '%s' --password-file '%s'"
			    " --state-dir '%s' --timeout 60 > '%s/unprotect.out' 2>&1",
			    exe, vrt_base_url(), VRT_ADMIN_A, w.pw_file, w.state, w.dir);
	int urc = system(cmd);
	char *unprotect_out = vrt_fmt("%s/unprotect.out", w.dir);
	char *text = dp_read_text(unprotect_out);
	cr_assert_eq(urc, 0, "unprotect: %s", text);
	free(text);
	free(unprotect_out);
	free(cmd);
	char *old = vrt_fmt("%s", w.repl);
	cmd = vrt_fmt(
		"'%s' protect '%s' --vdc %s --rpo 60 --api %s --user '%s'"
		" --password-file '%s' --state-dir '%s' --timeout 60 > '%s/protect2.out' 2>&1",
		exe, w.vmdir, w.vdc, vrt_base_url(), VRT_ADMIN_A, w.pw_file, w.state, w.dir);
	int rc = system(cmd);
	char *out_path = vrt_fmt("%s/protect2.out", w.dir);
	char *out = dp_read_text(out_path);
	cr_assert_eq(rc, 0, "protect again: %s", out);
	char *rg = dp_kv(out, "replication");
	cr_assert_str_neq(rg, old);
	snprintf(w.repl, sizeof w.repl, "%s", rg);
	char *id = dp_sync(&w);
	for (unsigned d = 0; d < DP_DISKS; d++) {
		char *replica = dp_replica(&w, d);
		cr_assert(dp_same(replica, rec[d]), "the new replica of disk %u is not the VM", d);
		free(replica);
		free(rec[d]);
	}
	free(id);
	free(rg);
	free(out);
	free(out_path);
	free(old);
	free(cmd);
	free(exe);
	free(fb);
	free(body);
	free(path);
	free(newest);
	free(first);
	dp_stop(&w);
}

/* --- a hostile site ------------------------------------------------------------------ */

struct site {
	struct vr_agent_config config;
	struct vr_agent_tls tls;
	char credential[VR_TUNNEL_MAX_CREDENTIAL + 1];
};

static void site_init(struct site *s, const struct dp_world *w)
{
	vr_agent_config_init(&s->config);
	char *lb = vrt_fmt("127.0.0.1:%u", w->lb.port);
	cr_assert_eq(vr_agent_config_set(&s->config, "agent", "proxy", lb, NULL), 0);
	cr_assert_eq(
		vr_agent_config_set(&s->config, "agent", "credential_file", w->cred_file, NULL), 0);
	cr_assert_eq(vr_agent_config_set(&s->config, "agent", "ca_file", w->ca, NULL), 0);
	cr_assert_eq(vr_agent_config_check(&s->config, NULL), 0);
	char *error = NULL;
	cr_assert_eq(vr_agent_credential_read(s->credential, w->cred_file, &error), 0);
	cr_assert_eq(vr_agent_tls_init(&s->tls, &s->config, &error), 0, "%s", error);
	free(lb);
}

static void site_free(struct site *s)
{
	vr_agent_tls_free(&s->tls);
	vr_agent_config_free(&s->config);
}

/* The worker's result on conn after the site's direction ended: its
 * status, 1 when the connection ended without one. A resume reply is
 * skipped. */
static int result_of(struct vr_agent_conn *conn)
{
	uint8_t buf[1 << 16];
	size_t len = 0;
	for (;;) {
		struct vr_tx_reply reply;
		size_t used = 0;
		int rc = vr_tx_reply_decode(buf, len, &used, &reply);
		if (rc == 0) {
			memmove(buf, buf + used, len - used);
			len -= used;
			if (reply.kind == VR_TX_REPLY_RESULT)
				return reply.status;
			continue;
		}
		if (rc != VR_TX_ETRUNCATED || len == sizeof buf)
			return 1;
		size_t n = 0;
		if (vr_agent_conn_read(conn, buf + len, sizeof buf - len, &n) != 0 || !n)
			return 1;
		len += n;
	}
}

/* An incremental header of a new instance of the VM's replication. */
static void header_of(const struct dp_world *w, struct vr_tx_header *h, uint8_t salt)
{
	memset(h, 0, sizeof *h);
	h->version = VR_TX_VERSION;
	h->flags = VR_TX_INCREMENTAL;
	h->ndisks = DP_DISKS;
	cr_assert_eq(vr_tx_id_parse(h->replication, w->repl), 0);
	for (unsigned i = 0; i < VR_TX_ID; i++)
		h->instance[i] = (uint8_t)(0xa0 + salt + i * 7);
	h->instance[6] = 0x40 | (h->instance[6] & 0x0f);
	h->instance[8] = 0x80 | (h->instance[8] & 0x3f);
	h->point_in_time_ms = (uint64_t)time(NULL) * 1000;
	h->resume_token = 7000 + salt;
	for (unsigned d = 0; d < DP_DISKS; d++) {
		snprintf(h->disks[d].key, sizeof h->disks[d].key, "%u", 2000 + d);
		h->disks[d].size = w->size[d];
	}
}

enum hostile { GARBAGE, TRUNCATED, OVERSIZE };

/* One hostile stream on a data connection for the VM's replication: the
 * worker's result (1: none). */
static int hostile_stream(const struct dp_world *w, struct site *s, enum hostile kind)
{
	struct vr_agent_conn *conn = NULL;
	char *error = NULL;
	int rc = vr_agent_data_open(&conn, &s->tls, &s->config, s->credential, w->repl, &error);
	cr_assert_eq(rc, 0, "data connection: %s", error ? error : "");
	vr_agent_conn_set_timeout(conn, 20000);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	if (kind == GARBAGE) {
		static const char junk[] = "this is no transfer header at all\n";
		cr_assert_eq(vr_agent_conn_write(conn, junk, sizeof junk - 1), 0);
	} else {
		struct vr_tx_header h;
		header_of(w, &h, (uint8_t)kind);
		struct vr_tx_enc enc;
		cr_assert_eq(vr_tx_enc_init(&enc, &h, vr_tx_sink_buf, &out), 0);
		cr_assert_eq(vr_agent_conn_write(conn, out.data, out.len), 0);
		out.len = 0;
		uint8_t data[64 * 4096];
		memset(data, 0xee, sizeof data);
		if (kind == TRUNCATED) {
			/* a run cut in its middle, then the end of the stream */
			cr_assert_eq(vr_tx_enc_run(&enc, 0, 128, 64, data), 0);
			cr_assert_eq(vr_agent_conn_write(conn, out.data, out.len / 2), 0);
		} else {
			/* a run header claiming 257 blocks, refused before its
			 * payload is read */
			uint8_t run[52 + 4096];
			memset(run, 0xee, sizeof run);
			run[0] = 'R';
			run[1] = 0;
			run[2] = 0;
			run[3] = 0;
			uint32_t count = 257, len = 257u * 4096u;
			for (int i = 0; i < 4; i++) {
				run[4 + i] = (uint8_t)(count >> (24 - 8 * i));
				run[16 + i] = (uint8_t)(len >> (24 - 8 * i));
			}
			memset(run + 8, 0, 8);
			cr_assert_eq(vr_agent_conn_write(conn, run, sizeof run), 0);
		}
		vr_tx_enc_free(&enc);
	}
	vr_agent_conn_finish(conn);
	int status = result_of(conn);
	vr_agent_conn_close(conn);
	vr_buf_free(&out);
	return status;
}

Test(dataplane, a_hostile_site_is_refused_and_the_replica_stays_its_last_instance, .timeout = 180)
{
	struct dp_world w;
	dp_start(&w, 16, 4);
	char *last = dp_newest_instance(&w);
	long next = dp_next_seq(&w);
	struct site s;
	site_init(&s, &w);

	/* the site's credential naming another site's replication: the proxy
	 * refuses the data connection */
	struct vr_agent_conn *conn = NULL;
	char *error = NULL;
	int rc = vr_agent_data_open(&conn, &s.tls, &s.config, s.credential, VRT_REPL_A1, &error);
	cr_assert_neq(rc, 0, "a data connection for another site's replication was opened");
	cr_log_info("another site's replication: %s", error ? error : "refused");
	free(error);

	/* changes on the disks that the hostile streams do not carry */
	dp_io_write(&w, 0, "2M", "31", "random");
	struct {
		enum hostile kind;
		int want;
		const char *what;
	} cases[] = {
		{GARBAGE, VR_TX_EMAGIC, "a bad header"},
		{TRUNCATED, 1, "a truncated stream"},
		{OVERSIZE, VR_TX_ERUNSIZE, "an oversize run"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int status = hostile_stream(&w, &s, cases[i].kind);
		if (cases[i].want == 1)
			cr_assert_neq(status, 0, "%s was committed", cases[i].what);
		else
			cr_assert_eq(status, cases[i].want, "%s: %d", cases[i].what, status);
		cr_assert_eq(dp_next_seq(&w), next, "%s changed the instances", cases[i].what);
		char *newest = dp_newest_instance(&w);
		cr_assert_str_eq(newest, last);
		free(newest);
		dp_assert_replica_is(&w, last, cases[i].what);
	}
	/* and the site's next sync goes through */
	char *id = dp_sync(&w);
	dp_save_live(&w, id);
	dp_assert_replica_is(&w, id, "the sync after the hostile streams");
	cr_assert_eq(dp_next_seq(&w), next + 1);
	free(id);
	site_free(&s);
	free(last);
	dp_stop(&w);
}
