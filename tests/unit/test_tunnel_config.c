/* The tunnels' supporting pieces: vrcloud-proxy's and vrcloud-agent's
 * settings (defaults, file, flags, the check of the whole), the agent's
 * reconnect backoff, certificate pins and the SPKI hash, the proxy's map,
 * and the event loop's watches and timers. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "proxy/internal.h"
#include "vrcloud/agent.h"
#include "vrcloud/err.h"
#include "vrcloud/loop.h"
#include "vrcloud/proxy.h"
#include "vrcloud/tls.h"

static char file_path[64];

static const char *write_file(const char *text)
{
	snprintf(file_path, sizeof file_path, "/tmp/vrcloud-tunnel-XXXXXX");
	int fd = mkstemp(file_path);
	cr_assert_geq(fd, 0);
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return file_path;
}

static void remove_file(void)
{
	if (file_path[0])
		unlink(file_path);
	file_path[0] = '\0';
}

TestSuite(tunnel_config, .fini = remove_file);

/* --- vrcloud-proxy ----------------------------------------------------------- */

static void proxy_required(struct vr_proxy_config *c)
{
	vr_proxy_config_init(c);
	cr_assert_eq(vr_proxy_config_set(c, "proxy", "cert_file", "/c.pem", NULL), 0);
	cr_assert_eq(vr_proxy_config_set(c, "proxy", "key_file", "/k.pem", NULL), 0);
	cr_assert_eq(vr_proxy_config_set(c, "proxy", "token_file", "/t", NULL), 0);
}

Test(tunnel_config, proxy_defaults)
{
	struct vr_proxy_config c;
	vr_proxy_config_init(&c);
	char host[HOST_NAME_MAX + 1] = "";
	gethostname(host, sizeof host);
	cr_assert_str_eq(c.name, host);
	cr_assert_str_eq(c.listen, "0.0.0.0:8443");
	cr_assert_eq(c.route_cache, 10);
	cr_assert_str_eq(c.internal_listen, "127.0.0.1:8444");
	cr_assert_eq(c.reverse_timeout, 30);
	cr_assert_str_eq(c.api_url, "http://127.0.0.1:8080");
	cr_assert_null(c.reverse_address);
	cr_assert_eq(c.heartbeat_interval, 10);
	cr_assert_eq(c.registry_ttl, 30);
	cr_assert_eq(c.verify_cache, 60);
	cr_assert_eq(c.buffer_kib, 256);
	cr_assert_str_eq(c.redis_prefix, "vrcloud");
	/* the three files are required */
	char *error = NULL;
	cr_assert_eq(vr_proxy_config_check(&c, &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, "cert_file"));
	free(error);
	vr_proxy_config_free(&c);
	proxy_required(&c);
	cr_assert_eq(vr_proxy_config_check(&c, &error), 0, "%s", error);
	vr_proxy_config_free(&c);
}

Test(tunnel_config, proxy_file_and_flags)
{
	struct vr_proxy_config c;
	proxy_required(&c);
	const char *path = write_file("[proxy]\nname = proxy-7\nlisten = [::1]:9443\n"
				      "reverse_address = proxy-7.example:9443\n"
				      "heartbeat_interval = 5\nregistry_ttl = 11\n"
				      "[redis]\nprefix = tenant:a\n[log]\nlevel = debug\n");
	char *error = NULL;
	cr_assert_eq(vr_proxy_config_load(&c, path, &error), 0, "%s", error);
	cr_assert_str_eq(c.name, "proxy-7");
	cr_assert_str_eq(c.listen, "[::1]:9443");
	cr_assert_eq(c.heartbeat_interval, 5);
	cr_assert_eq(c.registry_ttl, 11);
	cr_assert_str_eq(c.redis_prefix, "tenant:a");
	cr_assert_eq(c.log_level, VR_LOG_DEBUG);
	cr_assert_eq(vr_proxy_config_check(&c, &error), 0, "%s", error);
	/* a flag over the file */
	cr_assert_eq(vr_proxy_config_set(&c, "proxy", "registry_ttl", "10", &error), 0);
	cr_assert_eq(vr_proxy_config_check(&c, &error), VR_ECONFIG, "TTL = 2 x heartbeat");
	cr_assert_not_null(strstr(error, "registry_ttl"));
	free(error);
	vr_proxy_config_free(&c);
}

Test(tunnel_config, proxy_bad_settings)
{
	static const struct {
		const char *section, *key, *value;
	} bad_values[] = {
		{"proxy", "heartbeat_interval", "0"}, {"proxy", "registry_ttl", "x"},
		{"proxy", "buffer_kib", "8"},	      {"proxy", "verify_threads", "0"},
		{"proxy", "nonsense", "1"},	      {"log", "level", "loud"},
	};
	for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
		struct vr_proxy_config c;
		vr_proxy_config_init(&c);
		char *error = NULL;
		cr_assert_eq(vr_proxy_config_set(&c, bad_values[i].section, bad_values[i].key,
						 bad_values[i].value, &error),
			     VR_ECONFIG, "%s", bad_values[i].key);
		free(error);
		vr_proxy_config_free(&c);
	}
	static const struct {
		const char *key, *value, *named;
	} bad_checks[] = {
		{"name", "has space", "name"},
		{"name", "-leading", "name"},
		{"listen", "8443", "listen"},
		{"reverse_address", "proxy", "reverse_address"},
		{"internal_listen", "8444", "internal_listen"},
		{"api_url", "ftp://api", "api_url"},
		{"api_url", "http://user:pw@api", "api_url"},
	};
	for (size_t i = 0; i < sizeof bad_checks / sizeof bad_checks[0]; i++) {
		struct vr_proxy_config c;
		proxy_required(&c);
		cr_assert_eq(vr_proxy_config_set(&c, "proxy", bad_checks[i].key,
						 bad_checks[i].value, NULL),
			     0);
		char *error = NULL;
		cr_assert_eq(vr_proxy_config_check(&c, &error), VR_ECONFIG, "%s = %s accepted",
			     bad_checks[i].key, bad_checks[i].value);
		cr_assert_not_null(strstr(error, bad_checks[i].named), "%s", error);
		free(error);
		vr_proxy_config_free(&c);
	}
	struct vr_proxy_config c;
	proxy_required(&c);
	cr_assert_eq(vr_proxy_config_set(&c, "redis", "prefix", "a b", NULL), 0);
	cr_assert_eq(vr_proxy_config_check(&c, NULL), VR_ECONFIG);
	cr_assert_eq(vr_proxy_config_set(&c, "redis", "prefix", "ok", NULL), 0);
	cr_assert_eq(vr_proxy_config_set(&c, "redis", "uri", "http://redis", NULL), 0);
	cr_assert_eq(vr_proxy_config_check(&c, NULL), VR_ECONFIG);
	vr_proxy_config_free(&c);
}

Test(tunnel_config, proxy_metrics_and_limits)
{
	struct vr_proxy_config c;
	proxy_required(&c);
	cr_assert_null(c.metrics_address);
	cr_assert_eq(c.failed_hello_burst, 10);
	cr_assert_eq(c.failed_hello_rate, 30);
	cr_assert_eq(c.failed_hello_addresses, 16384);
	cr_assert_eq(c.site_data_connections, 64);
	const char *path = write_file("[proxy]\nmetrics_address = 127.0.0.1:9100\n"
				      "failed_hello_burst = 0\nfailed_hello_rate = 600\n"
				      "failed_hello_addresses = 100\nsite_data_connections = 0\n");
	char *error = NULL;
	cr_assert_eq(vr_proxy_config_load(&c, path, &error), 0, "%s", error);
	cr_assert_str_eq(c.metrics_address, "127.0.0.1:9100");
	cr_assert_eq(c.failed_hello_burst, 0);
	cr_assert_eq(c.failed_hello_rate, 600);
	cr_assert_eq(c.failed_hello_addresses, 100);
	cr_assert_eq(c.site_data_connections, 0);
	cr_assert_eq(vr_proxy_config_check(&c, &error), 0, "%s", error);
	/* empty: no endpoint */
	cr_assert_eq(vr_proxy_config_set(&c, "proxy", "metrics_address", "", NULL), 0);
	cr_assert_eq(vr_proxy_config_check(&c, &error), 0, "%s", error);
	cr_assert_eq(vr_proxy_config_set(&c, "proxy", "metrics_address", "9100", NULL), 0);
	cr_assert_eq(vr_proxy_config_check(&c, &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, "metrics_address"), "%s", error);
	free(error);
	static const char *const bad[][2] = {
		{"failed_hello_rate", "0"},
		{"failed_hello_addresses", "1"},
		{"failed_hello_burst", "-1"},
		{"site_data_connections", "many"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		error = NULL;
		cr_assert_eq(vr_proxy_config_set(&c, "proxy", bad[i][0], bad[i][1], &error),
			     VR_ECONFIG, "%s = %s accepted", bad[i][0], bad[i][1]);
		free(error);
	}
	vr_proxy_config_free(&c);
}

/* --- vrcloud-agent -------------------------------------------------------------- */

#define PIN_A "546cee9b3f2107b7808cf83510985d74f4a6a5a326536f393addd359a998417f"

static void agent_required(struct vr_agent_config *c)
{
	vr_agent_config_init(c);
	cr_assert_eq(vr_agent_config_set(c, "agent", "proxy", "lb.example:443", NULL), 0);
	cr_assert_eq(vr_agent_config_set(c, "agent", "credential_file", "/cred", NULL), 0);
	cr_assert_eq(vr_agent_config_set(c, "agent", "pin", PIN_A, NULL), 0);
}

Test(tunnel_config, agent_settings_and_their_check)
{
	struct vr_agent_config c;
	vr_agent_config_init(&c);
	cr_assert_eq(c.connect_timeout, 10);
	cr_assert_eq(c.backoff_initial, 500);
	cr_assert_eq(c.backoff_max, 60);
	char *error = NULL;
	cr_assert_eq(vr_agent_config_check(&c, &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, "proxy"));
	free(error);
	vr_agent_config_free(&c);

	agent_required(&c);
	cr_assert_eq(vr_agent_config_check(&c, &error), 0, "%s", error);
	cr_assert_eq(vr_agent_config_set(&c, "agent", "proxy", "a:1,[::1]:2,b.example:443", NULL),
		     0);
	cr_assert_eq(vr_agent_config_check(&c, NULL), 0);
	/* neither a CA nor a pin: the credential would go to anyone */
	cr_assert_eq(vr_agent_config_set(&c, "agent", "pin", "", NULL), 0);
	cr_assert_null(c.pin);
	cr_assert_eq(vr_agent_config_check(&c, &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, "ca_file or pin"));
	free(error);
	cr_assert_eq(vr_agent_config_set(&c, "agent", "ca_file", "/ca.pem", NULL), 0);
	cr_assert_eq(vr_agent_config_check(&c, NULL), 0);
	vr_agent_config_free(&c);

	static const char *const bad_proxies[] = {"",	  "lb",	      "lb:0",	"a:1,",
						  ",a:1", "a:1,,b:2", "a:1 b:2"};
	for (size_t i = 0; i < sizeof bad_proxies / sizeof bad_proxies[0]; i++) {
		agent_required(&c);
		vr_agent_config_set(&c, "agent", "proxy", bad_proxies[i], NULL);
		cr_assert_eq(vr_agent_config_check(&c, NULL), VR_ECONFIG, "accepted '%s'",
			     bad_proxies[i]);
		vr_agent_config_free(&c);
	}
	agent_required(&c);
	vr_agent_config_set(&c, "agent", "pin", "abcd", NULL);
	cr_assert_eq(vr_agent_config_check(&c, NULL), VR_ECONFIG);
	vr_agent_config_set(&c, "agent", "pin", PIN_A, NULL);
	vr_agent_config_set(&c, "agent", "backoff_initial", "120000", NULL);
	vr_agent_config_set(&c, "agent", "backoff_max", "60", NULL);
	cr_assert_eq(vr_agent_config_check(&c, NULL), VR_ECONFIG);
	vr_agent_config_free(&c);
}

Test(tunnel_config, agent_file)
{
	struct vr_agent_config c;
	vr_agent_config_init(&c);
	const char *path = write_file("[agent]\nproxy = p1:8443,p2:8443\ncredential_file = /c\n"
				      "ca_file = /ca.pem\nserver_name = lb.example\n"
				      "backoff_max = 5\n");
	char *error = NULL;
	cr_assert_eq(vr_agent_config_load(&c, path, &error), 0, "%s", error);
	cr_assert_str_eq(c.proxy, "p1:8443,p2:8443");
	cr_assert_str_eq(c.server_name, "lb.example");
	cr_assert_eq(c.backoff_max, 5);
	cr_assert_eq(vr_agent_config_check(&c, NULL), 0);
	vr_agent_config_free(&c);
	vr_agent_config_init(&c);
	path = write_file("[agent]\nlisten = 0.0.0.0:1\n");
	cr_assert_eq(vr_agent_config_load(&c, path, &error), VR_ECONFIG, "an agent has no listen");
	free(error);
	vr_agent_config_free(&c);
}

Test(tunnel_config, backoff_grows_with_jitter_and_stops_at_the_maximum)
{
	for (unsigned attempt = 0; attempt < 40; attempt++) {
		unsigned ceiling = 500;
		for (unsigned i = 0; i < attempt && ceiling < 60000; i++)
			ceiling *= 2;
		if (ceiling > 60000)
			ceiling = 60000;
		unsigned lo = UINT_MAX, hi = 0;
		for (uint32_t r = 0; r < 5000; r++) {
			unsigned wait = vr_agent_backoff_ms(attempt, 500, 60000, r * 2654435761u);
			lo = wait < lo ? wait : lo;
			hi = wait > hi ? wait : hi;
		}
		cr_assert_geq(lo, ceiling / 2, "attempt %u: %u below half of %u", attempt, lo,
			      ceiling);
		cr_assert_leq(hi, ceiling, "attempt %u: %u above %u", attempt, hi, ceiling);
		cr_assert_gt(hi - lo, ceiling / 4, "attempt %u: no jitter (%u..%u)", attempt, lo,
			     hi);
	}
	cr_assert_eq(vr_agent_backoff_ms(0, 500, 60000, 0), 250);
	cr_assert_eq(vr_agent_backoff_ms(1000, 500, 60000, UINT32_MAX) <= 60000, 1);
}

/* --- pins ----------------------------------------------------------------------- */

Test(tunnel_config, pins_parse_in_their_spellings)
{
	struct vr_tls_pins pins;
	cr_assert_eq(vr_tls_pins_parse(&pins, PIN_A), 0);
	cr_assert_eq(pins.count, 1);
	cr_assert_eq(pins.pin[0][0], 0x54);
	cr_assert_eq(pins.pin[0][31], 0x7f);
	cr_assert_eq(vr_tls_pins_parse(&pins, "sha256:" PIN_A ", " PIN_A), 0);
	cr_assert_eq(pins.count, 2);
	cr_assert_eq(vr_tls_pins_parse(&pins, "54:6C:EE:9B:3F:21:07:B7:80:8C:F8:35:10:98:5D:74:"
					      "F4:A6:A5:A3:26:53:6F:39:3A:DD:D3:59:A9:98:41:7F"),
		     0);
	cr_assert_eq(pins.pin[0][2], 0xee);
	static const char *const bad[] = {
		"",
		"abcd",
		PIN_A "00",
		PIN_A ",",
		"zz6cee9b3f2107b7808cf83510985d74f4a6a5a326536f393addd359a998417f",
		"sha1:" PIN_A,
		"546cee9b3f2107b7808cf83510985d74f4a6a5a326536f393addd359a998417f:",
		"54::6cee9b3f2107b7808cf83510985d74f4a6a5a326536f393addd359a998417f",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(vr_tls_pins_parse(&pins, bad[i]), VR_EINVAL, "accepted '%s'", bad[i]);
		cr_assert_eq(pins.count, 0);
	}
	char many[9 * 66] = "";
	for (int i = 0; i < 9; i++) {
		strcat(many, PIN_A);
		if (i < 8)
			strcat(many, ",");
	}
	cr_assert_eq(vr_tls_pins_parse(&pins, many), VR_EINVAL, "more than 8 pins");
}

Test(tunnel_config, the_spki_hash_is_the_sha256_of_the_public_key)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	cr_assert_not_null(key);
	X509 *cert = X509_new();
	X509_set_pubkey(cert, key);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	cr_assert(X509_sign(cert, key, EVP_sha256()) > 0);
	unsigned char spki[VR_TLS_PIN_LEN];
	cr_assert_eq(vr_tls_spki_sha256(spki, cert), 0);
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(key, &der);
	cr_assert_gt(len, 0);
	unsigned char want[32];
	unsigned int n = 0;
	EVP_Digest(der, (size_t)len, want, &n, EVP_sha256(), NULL);
	cr_assert_eq(memcmp(spki, want, 32), 0);
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* --- the proxy's map -------------------------------------------------------------- */

static bool drop_odd(const char *key, void *value, void *arg)
{
	int *removed = arg;
	if ((intptr_t)value % 2) {
		(*removed)++;
		return false;
	}
	return true;
}

Test(tunnel_config, the_map_grows_replaces_removes_and_filters)
{
	struct vr_proxy_map *map = vr_proxy_map_new();
	char key[32];
	for (intptr_t i = 1; i <= 1000; i++) {
		snprintf(key, sizeof key, "peer-%ld", (long)i);
		cr_assert_null(vr_proxy_map_put(map, key, (void *)i));
	}
	cr_assert_eq(vr_proxy_map_count(map), 1000);
	cr_assert_eq((intptr_t)vr_proxy_map_get(map, "peer-777"), 777);
	cr_assert_eq((intptr_t)vr_proxy_map_put(map, "peer-777", (void *)7770), 777);
	cr_assert_eq(vr_proxy_map_count(map), 1000);
	cr_assert_eq((intptr_t)vr_proxy_map_del(map, "peer-777"), 7770);
	cr_assert_null(vr_proxy_map_get(map, "peer-777"));
	cr_assert_null(vr_proxy_map_del(map, "peer-777"));
	int removed = 0;
	vr_proxy_map_each(map, drop_odd, &removed);
	cr_assert_eq(removed, 499); /* 777 went before */
	cr_assert_eq(vr_proxy_map_count(map), 500);
	cr_assert_null(vr_proxy_map_get(map, "peer-1"));
	cr_assert_eq((intptr_t)vr_proxy_map_get(map, "peer-2"), 2);
	vr_proxy_map_free(map, NULL);
}

/* --- the event loop ---------------------------------------------------------------- */

struct loop_log {
	char order[32];
	size_t n;
	int reads;
	uint64_t cancel;
	struct vr_loop *loop;
};

static void timer_mark(struct vr_loop *loop, void *arg)
{
	struct loop_log *log = arg;
	log->order[log->n++] = 'T';
}

static void timer_a(struct vr_loop *loop, void *arg)
{
	struct loop_log *log = arg;
	log->order[log->n++] = 'a';
}

static void timer_b(struct vr_loop *loop, void *arg)
{
	struct loop_log *log = arg;
	log->order[log->n++] = 'b';
	vr_loop_timer_cancel(loop, log->cancel);
}

static void timer_stop(struct vr_loop *loop, void *arg)
{
	struct loop_log *log = arg;
	log->order[log->n++] = 's';
	vr_loop_stop(loop);
}

Test(tunnel_config, timers_run_in_order_and_cancelled_ones_do_not)
{
	struct vr_loop *loop;
	cr_assert_eq(vr_loop_new(&loop), 0);
	struct loop_log log = {0};
	uint64_t start = vr_loop_now_ms();
	vr_loop_timer(loop, 40, timer_b, &log);
	vr_loop_timer(loop, 10, timer_a, &log);
	log.cancel = vr_loop_timer(loop, 60, timer_mark, &log);
	uint64_t other = vr_loop_timer(loop, 20, timer_mark, &log);
	vr_loop_timer_cancel(loop, other);
	vr_loop_timer_cancel(loop, 0);
	vr_loop_timer_cancel(loop, 123456);
	vr_loop_timer(loop, 80, timer_stop, &log);
	cr_assert_eq(vr_loop_run(loop), 0);
	log.order[log.n] = '\0';
	cr_assert_str_eq(log.order, "abs");
	cr_assert_geq(vr_loop_now_ms() - start, 80);
	vr_loop_free(loop);
}

static void on_readable(struct vr_loop *loop, int fd, unsigned events, void *arg)
{
	struct loop_log *log = arg;
	char buf[16];
	if (events & VR_LOOP_READ) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0)
			log->reads++;
	}
	if (log->reads == 2)
		vr_loop_stop(loop);
}

static void write_later(struct vr_loop *loop, void *arg)
{
	int fd = *(int *)arg;
	if (write(fd, "x", 1) != 1)
		cr_assert_fail("write");
}

Test(tunnel_config, watched_fds_report_readiness_and_quiet_ones_do_not)
{
	struct vr_loop *loop;
	cr_assert_eq(vr_loop_new(&loop), 0);
	int fds[2];
	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	struct loop_log log = {0};
	/* registered with no events: a write is not reported */
	cr_assert_eq(vr_loop_watch(loop, fds[0], 0, on_readable, &log), 0);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	vr_loop_timer(loop, 30, timer_stop, &log);
	cr_assert_eq(vr_loop_run(loop), 0);
	cr_assert_eq(log.reads, 0);
	/* asked for reads: the waiting byte and a later one */
	cr_assert_eq(vr_loop_events(loop, fds[0], VR_LOOP_READ), 0);
	vr_loop_timer(loop, 20, write_later, &fds[1]);
	uint64_t guard = vr_loop_timer(loop, 5000, timer_stop, &log);
	cr_assert_eq(vr_loop_run(loop), 0);
	cr_assert_eq(log.reads, 2);
	vr_loop_timer_cancel(loop, guard);
	/* unwatched: nothing more */
	vr_loop_unwatch(loop, fds[0]);
	cr_assert_eq(vr_loop_events(loop, fds[0], VR_LOOP_READ), VR_EIO);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	vr_loop_timer(loop, 30, timer_stop, &log);
	cr_assert_eq(vr_loop_run(loop), 0);
	cr_assert_eq(log.reads, 2);
	close(fds[0]);
	close(fds[1]);
	vr_loop_free(loop);
}

Test(tunnel_config, the_proxy_reads_a_replications_server_and_writes_its_lookup)
{
	char address[256], server[129];
	const char *reason = NULL;
	const char *ok = "<ReplicationServer xmlns=\"urn:vrcloud:internal:1\">"
			 "<ReplicationId>40000000-0000-4000-8000-000000000001</ReplicationId>"
			 "<ServerId>50000000-0000-4000-8000-000000000001</ServerId>"
			 "<Name>worker-1</Name><TrafficAddress> 10.0.3.11:44046 </TrafficAddress>"
			 "</ReplicationServer>";
	cr_assert_eq(vr_proxy_parse_route(address, sizeof address, server, sizeof server, ok,
					  strlen(ok), &reason),
		     0, "%s", reason);
	cr_assert_str_eq(address, "10.0.3.11:44046");
	cr_assert_str_eq(server, "worker-1");
	static const char *const bad[] = {
		"<Site xmlns=\"urn:vrcloud:internal:1\"/>",
		"<ReplicationServer><Name>w</Name><TrafficAddress>h:1</TrafficAddress>"
		"</ReplicationServer>",
		"<ReplicationServer xmlns=\"urn:vrcloud:internal:1\"><Name>w</Name>"
		"<TrafficAddress>h:0</TrafficAddress></ReplicationServer>",
		"<ReplicationServer xmlns=\"urn:vrcloud:internal:1\"><Name>w</Name>"
		"<TrafficAddress>host</TrafficAddress></ReplicationServer>",
		"<ReplicationServer xmlns=\"urn:vrcloud:internal:1\">"
		"<TrafficAddress>h:1</TrafficAddress></ReplicationServer>",
		"not xml",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		reason = NULL;
		cr_assert_eq(vr_proxy_parse_route(address, sizeof address, server, sizeof server,
						  bad[i], strlen(bad[i]), &reason),
			     VR_EINVAL, "accepted: %s", bad[i]);
		cr_assert_not_null(reason);
	}
	struct vr_buf doc;
	vr_buf_init(&doc, 0);
	cr_assert_eq(vr_proxy_doc_route_lookup(&doc, "30000000-0000-4000-8000-0000000000A1"), 0);
	cr_assert_not_null(strstr(doc.data, "<PeerId>30000000-0000-4000-8000-0000000000a1</PeerId>"));
	vr_buf_free(&doc);
	cr_assert_eq(vr_proxy_doc_route_lookup(&doc, "nope"), VR_EINVAL);
	vr_buf_free(&doc);
}
