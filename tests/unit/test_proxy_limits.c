/* vrcloud-proxy's limits (src/proxy/limits.c): the failed-hello buckets
 * per address in their bounded table, the data connections per site; and
 * the text of its /metrics (src/proxy/metrics.c). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/limits.h"
#include "proxy/metrics.h"

static struct vr_proxy_addr v4(const char *text)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	cr_assert_eq(inet_pton(AF_INET, text, &in.sin_addr), 1, "%s", text);
	struct vr_proxy_addr a;
	vr_proxy_addr_from(&a, (struct sockaddr *)&in);
	return a;
}

static struct vr_proxy_addr v6(const char *text)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	cr_assert_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1, "%s", text);
	struct vr_proxy_addr a;
	vr_proxy_addr_from(&a, (struct sockaddr *)&in6);
	return a;
}

/* Tokens left: takes until refused, at one instant. */
static unsigned drain(struct vr_proxy_limiter *l, const struct vr_proxy_addr *a, uint64_t now)
{
	unsigned n = 0;
	while (n < 100000 && vr_proxy_limiter_take(l, a, now))
		n++;
	return n;
}

Test(limiter, a_new_address_has_a_full_bucket_and_is_refused_past_the_burst)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(64, 5, 60);
	struct vr_proxy_addr a = v4("192.0.2.7");
	for (int i = 0; i < 5; i++)
		cr_assert(vr_proxy_limiter_take(l, &a, 1000), "take %d", i);
	cr_assert_not(vr_proxy_limiter_take(l, &a, 1000));
	cr_assert_not(vr_proxy_limiter_take(l, &a, 1500));
	/* another address is not touched */
	struct vr_proxy_addr b = v4("192.0.2.8");
	cr_assert_eq(drain(l, &b, 1500), 5);
	cr_assert_eq(vr_proxy_limiter_count(l), 2);
	vr_proxy_limiter_free(l);
}

Test(limiter, tokens_come_back_at_the_rate_and_never_above_the_burst)
{
	/* 60 a minute: one a second */
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(64, 3, 60);
	struct vr_proxy_addr a = v4("198.51.100.1");
	cr_assert_eq(drain(l, &a, 10000), 3);
	cr_assert_not(vr_proxy_limiter_take(l, &a, 10999));
	cr_assert(vr_proxy_limiter_take(l, &a, 11999));
	cr_assert_not(vr_proxy_limiter_take(l, &a, 11999));
	/* a long quiet time refills to the burst only */
	cr_assert_eq(drain(l, &a, 10000000), 3);
	/* a time going backwards takes nothing away and gives nothing */
	cr_assert_not(vr_proxy_limiter_take(l, &a, 5000));
	vr_proxy_limiter_free(l);
}

Test(limiter, a_given_back_token_is_taken_again_but_not_beyond_the_burst)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(64, 2, 1);
	struct vr_proxy_addr a = v4("203.0.113.9");
	cr_assert_eq(drain(l, &a, 0), 2);
	vr_proxy_limiter_give(l, &a);
	cr_assert(vr_proxy_limiter_take(l, &a, 0));
	cr_assert_not(vr_proxy_limiter_take(l, &a, 0));
	for (int i = 0; i < 10; i++)
		vr_proxy_limiter_give(l, &a);
	cr_assert_eq(drain(l, &a, 0), 2);
	/* an address not in the table gets nothing and is not added */
	struct vr_proxy_addr b = v4("203.0.113.10");
	vr_proxy_limiter_give(l, &b);
	cr_assert_eq(vr_proxy_limiter_count(l), 1);
	vr_proxy_limiter_free(l);
}

Test(limiter, the_table_keeps_its_size_and_evicts_the_least_recently_used)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(16, 1, 1);
	struct vr_proxy_addr keep = v4("10.0.0.1");
	cr_assert(vr_proxy_limiter_take(l, &keep, 0));
	for (unsigned i = 0; i < 1000; i++) {
		char text[32];
		snprintf(text, sizeof text, "10.1.%u.%u", i / 256, i % 256);
		struct vr_proxy_addr a = v4(text);
		cr_assert(vr_proxy_limiter_take(l, &a, 0), "%s", text);
		cr_assert_not(vr_proxy_limiter_take(l, &a, 0), "%s", text);
		/* keep stays recent: refused, so it is still in the table */
		cr_assert_not(vr_proxy_limiter_take(l, &keep, 0), "%s", text);
		cr_assert_leq(vr_proxy_limiter_count(l), 16);
	}
	cr_assert_eq(vr_proxy_limiter_count(l), 16);
	cr_assert_eq(vr_proxy_limiter_evictions(l), 1001 - 16);
	/* the oldest addresses were evicted: they come back with a full bucket */
	struct vr_proxy_addr first = v4("10.1.0.0");
	cr_assert(vr_proxy_limiter_take(l, &first, 0));
	/* the most recent ones are still there, empty */
	struct vr_proxy_addr last = v4("10.1.3.231");
	cr_assert_not(vr_proxy_limiter_take(l, &last, 0));
	vr_proxy_limiter_free(l);
}

Test(limiter, ipv6_addresses_share_the_bucket_of_their_64_and_mapped_ipv4_is_ipv4)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(64, 2, 1);
	struct vr_proxy_addr a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
	struct vr_proxy_addr c = v6("2001:db8:1:3::1");
	cr_assert(vr_proxy_limiter_take(l, &a, 0));
	cr_assert(vr_proxy_limiter_take(l, &b, 0));
	cr_assert_not(vr_proxy_limiter_take(l, &a, 0));
	cr_assert(vr_proxy_limiter_take(l, &c, 0));
	struct vr_proxy_addr m = v6("::ffff:192.0.2.1"), p = v4("192.0.2.1");
	cr_assert_eq(m.len, 4);
	cr_assert(vr_proxy_limiter_take(l, &m, 0));
	cr_assert(vr_proxy_limiter_take(l, &p, 0));
	cr_assert_not(vr_proxy_limiter_take(l, &m, 0));
	char name[64];
	vr_proxy_addr_name(&a, name, sizeof name);
	cr_assert_str_eq(name, "2001:db8:1:2::/64");
	vr_proxy_addr_name(&p, name, sizeof name);
	cr_assert_str_eq(name, "192.0.2.1");
	vr_proxy_limiter_free(l);
}

Test(limiter, a_burst_of_0_limits_nothing_and_keeps_nothing)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(16, 0, 1);
	struct vr_proxy_addr a = v4("192.0.2.1");
	for (int i = 0; i < 1000; i++)
		cr_assert(vr_proxy_limiter_take(l, &a, 0));
	cr_assert_eq(vr_proxy_limiter_count(l), 0);
	/* an address of no family is never limited either */
	struct vr_proxy_limiter *m = vr_proxy_limiter_new(16, 1, 1);
	struct vr_proxy_addr none = {.len = 0};
	for (int i = 0; i < 10; i++)
		cr_assert(vr_proxy_limiter_take(m, &none, 0));
	vr_proxy_limiter_free(l);
	vr_proxy_limiter_free(m);
}

Test(limiter, refusals_are_logged_once_per_interval_with_the_count_between)
{
	struct vr_proxy_limiter *l = vr_proxy_limiter_new(16, 1, 1);
	struct vr_proxy_addr a = v4("192.0.2.1");
	cr_assert(vr_proxy_limiter_take(l, &a, 100));
	uint64_t suppressed = 99;
	cr_assert(vr_proxy_limiter_log_due(l, &a, 100, 60000, &suppressed));
	cr_assert_eq(suppressed, 0);
	for (int i = 0; i < 7; i++)
		cr_assert_not(
			vr_proxy_limiter_log_due(l, &a, 200 + (uint64_t)i, 60000, &suppressed));
	cr_assert_not(vr_proxy_limiter_log_due(l, &a, 60099, 60000, &suppressed));
	cr_assert(vr_proxy_limiter_log_due(l, &a, 60100, 60000, &suppressed));
	cr_assert_eq(suppressed, 8);
	/* another address has its own interval */
	struct vr_proxy_addr b = v4("192.0.2.2");
	cr_assert(vr_proxy_limiter_take(l, &b, 60100));
	cr_assert(vr_proxy_limiter_log_due(l, &b, 60100, 60000, &suppressed));
	vr_proxy_limiter_free(l);
}

Test(site_counts, a_site_gets_up_to_its_maximum_and_a_slot_back_when_one_ends)
{
	struct vr_proxy_site_counts *c = vr_proxy_site_counts_new();
	const char *a = "10000000-0000-4000-8000-000000000001";
	const char *b = "10000000-0000-4000-8000-000000000002";
	for (int i = 0; i < 3; i++)
		cr_assert(vr_proxy_site_counts_take(c, a, 3));
	cr_assert_not(vr_proxy_site_counts_take(c, a, 3));
	cr_assert(vr_proxy_site_counts_take(c, b, 3));
	cr_assert_eq(vr_proxy_site_counts_get(c, a), 3);
	vr_proxy_site_counts_give(c, a);
	cr_assert_eq(vr_proxy_site_counts_get(c, a), 2);
	cr_assert(vr_proxy_site_counts_take(c, a, 3));
	for (int i = 0; i < 3; i++)
		vr_proxy_site_counts_give(c, a);
	cr_assert_eq(vr_proxy_site_counts_get(c, a), 0);
	/* one more give than takes does not go below 0 */
	vr_proxy_site_counts_give(c, a);
	cr_assert_eq(vr_proxy_site_counts_get(c, a), 0);
	/* 0: no limit */
	for (int i = 0; i < 1000; i++)
		cr_assert(vr_proxy_site_counts_take(c, a, 0));
	vr_proxy_site_counts_free(c);
}

/* --- /metrics text --------------------------------------------------------------- */

static bool name_ok(const char *s, size_t len)
{
	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
			return false;
	return true;
}

/* One sample line: name, optional {label="value",...}, a space, a number. */
static bool sample_ok(const char *line)
{
	size_t n = strcspn(line, "{ ");
	if (!name_ok(line, n))
		return false;
	const char *p = line + n;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			size_t k = strcspn(p, "=");
			if (!name_ok(p, k) || p[k] != '=' || p[k + 1] != '"')
				return false;
			p += k + 2;
			while (*p && *p != '"')
				p += *p == '\\' && p[1] ? 2 : 1;
			if (*p != '"')
				return false;
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p != ' ' || !p[1])
		return false;
	char *end = NULL;
	strtod(p + 1, &end);
	return end && *end == '\0';
}

Test(metrics, the_text_is_prometheus_exposition_with_every_series)
{
	struct vr_proxy_stats s;
	memset(&s, 0, sizeof s);
	vr_proxy_count_n(&s.bytes_up, 12345);
	vr_proxy_count(&s.refused[VR_PROXY_REFUSED_RATE_LIMITED]);
	vr_proxy_count(&s.open[VR_PROXY_KIND_CONTROL]);
	atomic_store(&s.cert_not_after, 1893456000);
	struct vr_buf out;
	vr_buf_init(&out, 0);
	vr_proxy_metrics_render(&out, &s, "p\"1");
	char *text = strndup(out.data, out.len);
	vr_buf_free(&out);
	cr_assert(out.len == 0 || text[strlen(text) - 1] == '\n');
	size_t lines = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
			continue;
		cr_assert(sample_ok(line), "not a sample line: %s", line);
	}
	cr_assert_gt(lines, 40);
	free(text);
	vr_buf_init(&out, 0);
	vr_proxy_metrics_render(&out, &s, "p\"1");
	text = strndup(out.data, out.len);
	vr_buf_free(&out);
	static const char *const want[] = {
		"vrcloud_proxy_bytes_total{direction=\"up\"} 12345\n",
		"vrcloud_proxy_bytes_total{direction=\"down\"} 0\n",
		"vrcloud_proxy_hellos_refused_total{reason=\"rate-limited\"} 1\n",
		"vrcloud_proxy_hellos_refused_total{reason=\"site-limit\"} 0\n",
		"vrcloud_proxy_connections{kind=\"control\"} 1\n",
		"vrcloud_proxy_connections{kind=\"internal\"} 0\n",
		"vrcloud_proxy_connections_accepted_total{kind=\"reverse\"} 0\n",
		"vrcloud_proxy_stitches_total{result=\"expired\"} 0\n",
		"vrcloud_proxy_certificate_not_after_seconds 1893456000\n",
		"vrcloud_proxy_tls_reloads_total{result=\"failed\"} 0\n",
		"vrcloud_proxy_info{name=\"p\\\"1\",",
		"# TYPE vrcloud_proxy_bytes_total counter\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_assert_not_null(strstr(text, want[i]), "no %s in:\n%s", want[i], text);
	free(text);
}

Test(metrics, refusal_reasons_map_to_their_counters)
{
	cr_assert_eq(vr_proxy_refusal_of("credential"), VR_PROXY_REFUSED_CREDENTIAL);
	cr_assert_eq(vr_proxy_refusal_of("rate-limited"), VR_PROXY_REFUSED_RATE_LIMITED);
	cr_assert_eq(vr_proxy_refusal_of("site-limit"), VR_PROXY_REFUSED_SITE_LIMIT);
	cr_assert_eq(vr_proxy_refusal_of("cookie"), VR_PROXY_REFUSED_COOKIE);
	cr_assert_eq(vr_proxy_refusal_of("nonsense"), VR_PROXY_REFUSALS);
	cr_assert_str_eq(vr_proxy_kind_label(VR_PROXY_KIND_INTERNAL), "internal");
}
