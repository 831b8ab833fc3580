/* GET /metrics of vrcloud-proxy (metrics.h): Prometheus text format 0.0.4
 * on a plain HTTP address of its own ([proxy] metrics_address), served by
 * a small libmicrohttpd daemon on its own thread, so that a scrape never
 * waits for the event loop nor the loop for a scraper. It only reads the
 * counters; no authentication, like the API's /metrics: bind it to an
 * address only the monitoring reaches. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "proxy/metrics.h"
#include "vrcloud/alloc.h"
#include "vrcloud/err.h"
#include "vrcloud/log.h"
#include "vrcloud/tunnel.h"

#include "config.h"

/* Label values, in the order of the enumerations. */
static const char *const kinds[VR_PROXY_KINDS] = {"control", "data", "reverse", "internal"};
static const char *const refusals[VR_PROXY_REFUSALS] = {
	"protocol", "credential", "unavailable",  "replication", "worker",
	"shutdown", "cookie",	  "rate-limited", "site-limit",
};
static const char *const stitches[VR_PROXY_STITCHES] = {"done", "failed", "expired"};
static const char *const calls[VR_PROXY_CALLS] = {"verify", "route"};

enum vr_proxy_refusal vr_proxy_refusal_of(const char *reason)
{
	for (size_t i = 0; i < VR_PROXY_REFUSALS; i++)
		if (strcmp(refusals[i], reason) == 0)
			return (enum vr_proxy_refusal)i;
	return VR_PROXY_REFUSALS;
}

const char *vr_proxy_kind_label(enum vr_proxy_kind kind)
{
	return kind < VR_PROXY_KINDS ? kinds[kind] : "none";
}

/* --- the text ------------------------------------------------------------ */

static uint64_t get(const vr_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static long long get_signed(const atomic_int_fast64_t *v)
{
	return (long long)atomic_load_explicit(v, memory_order_relaxed);
}

static void family(struct vr_buf *out, const char *name, const char *type, const char *help)
{
	vr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series per label value of a counter array. */
static void series(struct vr_buf *out, const char *name, const char *label,
		   const char *const *values, const vr_counter *counters, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vr_buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
			      (unsigned long long)get(&counters[i]));
}

/* name as a label value: backslash, quote and newline escaped. */
static void label_value(struct vr_buf *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			vr_buf_printf(out, "\\%c", *p);
		else if (*p == '\n')
			vr_buf_printf(out, "\\n");
		else
			vr_buf_printf(out, "%c", *p);
	}
}

static void render_connections(struct vr_buf *out, const struct vr_proxy_stats *s)
{
	family(out, "vrcloud_proxy_connections", "gauge",
	       "Connections open now by kind (agents' once their hello is accepted; workers' "
	       "on the internal port).");
	series(out, "vrcloud_proxy_connections", "kind", kinds, s->open, VR_PROXY_KINDS);
	family(out, "vrcloud_proxy_connections_accepted_total", "counter",
	       "Connections accepted by kind since the start.");
	series(out, "vrcloud_proxy_connections_accepted_total", "kind", kinds, s->accepted,
	       VR_PROXY_KINDS);
	family(out, "vrcloud_proxy_connections_pending", "gauge",
	       "Public connections in the TLS handshake, the hello or its check.");
	vr_buf_printf(out, "vrcloud_proxy_connections_pending %llu\n",
		      (unsigned long long)get(&s->pending));
	family(out, "vrcloud_proxy_accepts_total", "counter",
	       "TCP connections taken on the public port.");
	vr_buf_printf(out, "vrcloud_proxy_accepts_total %llu\n",
		      (unsigned long long)get(&s->accepts_public));
	family(out, "vrcloud_proxy_accepts_dropped_total", "counter",
	       "Connections closed at accept because max_connections were open.");
	vr_buf_printf(out, "vrcloud_proxy_accepts_dropped_total %llu\n",
		      (unsigned long long)get(&s->accepts_dropped));
	family(out, "vrcloud_proxy_bytes_total", "counter",
	       "Bytes carried by data and reverse connections: up is agent to worker, down "
	       "worker to agent.");
	vr_buf_printf(out, "vrcloud_proxy_bytes_total{direction=\"up\"} %llu\n",
		      (unsigned long long)get(&s->bytes_up));
	vr_buf_printf(out, "vrcloud_proxy_bytes_total{direction=\"down\"} %llu\n",
		      (unsigned long long)get(&s->bytes_down));
}

static void render_refusals(struct vr_buf *out, const struct vr_proxy_stats *s)
{
	family(out, "vrcloud_proxy_hellos_refused_total", "counter",
	       "Agents' connections refused, by the reason of the refusal frame.");
	series(out, "vrcloud_proxy_hellos_refused_total", "reason", refusals, s->refused,
	       VR_PROXY_REFUSALS);
	family(out, "vrcloud_proxy_control_revoked_total", "counter",
	       "Control connections closed because a periodic check found their credential "
	       "no longer valid (replaced or revoked).");
	vr_buf_printf(out, "vrcloud_proxy_control_revoked_total %llu\n",
		      (unsigned long long)get(&s->revoked));
	family(out, "vrcloud_proxy_stitches_total", "counter",
	       "Workers' reverse requests: stitched to their agent, refused, or expired "
	       "without an agent.");
	series(out, "vrcloud_proxy_stitches_total", "result", stitches, s->stitches,
	       VR_PROXY_STITCHES);
	family(out, "vrcloud_proxy_api_calls_total", "counter",
	       "Calls to the API: credential checks and replication route lookups.");
	series(out, "vrcloud_proxy_api_calls_total", "call", calls, s->api_calls, VR_PROXY_CALLS);
	family(out, "vrcloud_proxy_failed_hello_addresses", "gauge",
	       "Source addresses in the table of failed-hello buckets.");
	vr_buf_printf(out, "vrcloud_proxy_failed_hello_addresses %llu\n",
		      (unsigned long long)get(&s->limited_addresses));
	family(out, "vrcloud_proxy_failed_hello_evictions_total", "counter",
	       "Addresses dropped from the full table of failed-hello buckets.");
	vr_buf_printf(out, "vrcloud_proxy_failed_hello_evictions_total %llu\n",
		      (unsigned long long)get(&s->limiter_evictions));
}

static void render_tls(struct vr_buf *out, const struct vr_proxy_stats *s)
{
	family(out, "vrcloud_proxy_tls_handshake_failures_total", "counter",
	       "TLS handshakes on the public port that failed.");
	vr_buf_printf(out, "vrcloud_proxy_tls_handshake_failures_total %llu\n",
		      (unsigned long long)get(&s->handshake_failures));
	family(out, "vrcloud_proxy_certificate_not_after_seconds", "gauge",
	       "notAfter of the certificate new connections get, in Unix seconds.");
	vr_buf_printf(out, "vrcloud_proxy_certificate_not_after_seconds %lld\n",
		      get_signed(&s->cert_not_after));
	family(out, "vrcloud_proxy_tls_reloads_total", "counter",
	       "Certificate reloads on SIGHUP by result.");
	vr_buf_printf(out, "vrcloud_proxy_tls_reloads_total{result=\"ok\"} %llu\n",
		      (unsigned long long)get(&s->reloads_ok));
	vr_buf_printf(out, "vrcloud_proxy_tls_reloads_total{result=\"failed\"} %llu\n",
		      (unsigned long long)get(&s->reloads_failed));
}

void vr_proxy_metrics_render(struct vr_buf *out, const struct vr_proxy_stats *s, const char *name)
{
	family(out, "vrcloud_proxy_info", "gauge", "This proxy's name and version.");
	vr_buf_printf(out, "vrcloud_proxy_info{name=\"");
	label_value(out, name);
	vr_buf_printf(out, "\",version=\"%s\"} 1\n", PACKAGE_VERSION);
	family(out, "vrcloud_proxy_start_time_seconds", "gauge",
	       "When the proxy started, in Unix seconds.");
	vr_buf_printf(out, "vrcloud_proxy_start_time_seconds %lld\n", get_signed(&s->started));
	render_connections(out, s);
	render_refusals(out, s);
	render_tls(out, s);
}

/* --- the HTTP endpoint ---------------------------------------------------------- */

struct vr_proxy_metrics {
	struct MHD_Daemon *daemon;
	const struct vr_proxy_stats *stats;
	char *name;
};

static enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *text,
			     size_t len, bool must_free)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(
		len, (void *)text, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!response) {
		if (must_free)
			free((void *)text);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
						      : "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **state)
{
	struct vr_proxy_metrics *m = cls;
	static int first;
	/* Answer once the headers are in; a body is not read. */
	if (!*state) {
		*state = &first;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0) {
		static const char text[] = "not found: the proxy serves /metrics only\n";
		return reply(connection, MHD_HTTP_NOT_FOUND, text, sizeof text - 1, false);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char text[] = "method not allowed\n";
		return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, text, sizeof text - 1, false);
	}
	struct vr_buf out;
	vr_buf_init(&out, 0);
	vr_proxy_metrics_render(&out, m->stats, m->name);
	size_t len = 0;
	char *text = vr_buf_take(&out, &len);
	if (!text)
		return MHD_NO;
	return reply(connection, MHD_HTTP_OK, text, len, true);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	vr_log_warn("metrics_http", "message", msg);
}

static int resolve(struct sockaddr_storage *out, const char *address, char **error_out)
{
	char host[256], port[8];
	unsigned port_number;
	if (vr_tunnel_split_address(host, sizeof host, &port_number, address)) {
		*error_out = vr_asprintf("[proxy] metrics_address: '%s' is not host:port", address);
		return VR_ECONFIG;
	}
	snprintf(port, sizeof port, "%u", port_number);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		*error_out = vr_asprintf("[proxy] metrics_address: cannot resolve %s: %s", address,
					 gai_strerror(rc));
		return VR_ECONFIG;
	}
	memset(out, 0, sizeof *out);
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int vr_proxy_metrics_start(struct vr_proxy_metrics **out, const char *address,
			   const struct vr_proxy_stats *stats, const char *name, unsigned *port_out,
			   char **error_out)
{
	*out = NULL;
	struct sockaddr_storage addr;
	int rc = resolve(&addr, address, error_out);
	if (rc)
		return rc;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct vr_proxy_metrics *m = vr_calloc(1, sizeof *m);
	m->stats = stats;
	m->name = vr_strdup(name);
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned int)16, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				     (unsigned int)8, MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned int)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				     (size_t)16384, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
				     MHD_OPTION_END);
	if (!m->daemon) {
		*error_out = vr_asprintf("[proxy] metrics_address: cannot listen on %s", address);
		free(m->name);
		free(m);
		return VR_EIO;
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info ? info->port : 0;
	*out = m;
	return 0;
}

void vr_proxy_metrics_stop(struct vr_proxy_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->daemon);
	free(m->name);
	free(m);
}
