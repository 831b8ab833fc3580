/* Redis addresses: redis://host[:port][/db] and unix:///path[?db=N]. */
#include <criterion/criterion.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/redis.h"

static struct vr_redis_addr parse_ok(const char *uri)
{
	struct vr_redis_addr a;
	memset(&a, 0x5a, sizeof a);
	int rc = vr_redis_parse_uri(&a, uri);
	cr_assert_eq(rc, 0, "refused '%s'", uri);
	return a;
}

static void expect_tcp(const char *uri, const char *host, int port, int db)
{
	struct vr_redis_addr a = parse_ok(uri);
	cr_expect_str_eq(a.host, host, "%s", uri);
	cr_expect_eq(a.port, port, "%s", uri);
	cr_expect_eq(a.db, db, "%s", uri);
	cr_expect_str_eq(a.path, "", "%s", uri);
}

static void expect_unix(const char *uri, const char *path, int db)
{
	struct vr_redis_addr a = parse_ok(uri);
	cr_expect_str_eq(a.path, path, "%s", uri);
	cr_expect_eq(a.db, db, "%s", uri);
	cr_expect_str_eq(a.host, "", "%s", uri);
}

static void expect_refused(const char *uri)
{
	struct vr_redis_addr a;
	cr_expect_eq(vr_redis_parse_uri(&a, uri), VR_EINVAL, "accepted '%s'", uri);
}

Test(redis_uri, tcp)
{
	expect_tcp("redis://h", "h", 6379, 0);
	expect_tcp("redis://127.0.0.1", "127.0.0.1", 6379, 0);
	expect_tcp("redis://h:6380", "h", 6380, 0);
	expect_tcp("redis://h:6380/2", "h", 6380, 2);
	expect_tcp("redis://redis.example.com/15", "redis.example.com", 6379, 15);
	expect_tcp("redis://h/", "h", 6379, 0);
	expect_tcp("redis://h:1/0", "h", 1, 0);
	expect_tcp("redis://h:65535/1000", "h", 65535, 1000);
}

Test(redis_uri, unix_socket)
{
	expect_unix("unix:///run/redis/redis.sock", "/run/redis/redis.sock", 0);
	expect_unix("unix:///tmp/r.sock?db=2", "/tmp/r.sock", 2);
	expect_unix("unix:///s?db=0", "/s", 0);
	expect_unix("unix:///s?db=1000", "/s", 1000);
}

Test(redis_uri, passwords_refused)
{
	expect_refused("redis://:secret@h");
	expect_refused("redis://user:secret@h:6379/0");
	expect_refused("redis://user@h");
	expect_refused("redis://h/0@x");
}

Test(redis_uri, bad_ports)
{
	expect_refused("redis://h:");
	expect_refused("redis://h:0");
	expect_refused("redis://h:65536");
	expect_refused("redis://h:-1");
	expect_refused("redis://h:abc");
	expect_refused("redis://h:80x");
	expect_refused("redis://h:6379:6380");
	expect_refused("redis://h:99999999999999999999");
	expect_refused("redis://h:6379?db=2");
}

/* A port or database number is digits only: no sign, no blank. */
Test(redis_uri, signs_and_blanks_refused)
{
	expect_refused("redis://h:+6379");
	expect_refused("redis://h: 6379");
	expect_refused("redis://h/+2");
	expect_refused("redis://h/ 2");
	expect_refused("unix:///s?db=+2");
	expect_refused("unix:///s?db= 2");
}

Test(redis_uri, bad_databases)
{
	expect_refused("redis://h/abc");
	expect_refused("redis://h/-1");
	expect_refused("redis://h/1001");
	expect_refused("redis://h/1/2");
	expect_refused("redis://h/99999999999999999999");
	expect_refused("unix:///s?db=");
	expect_refused("unix:///s?db=x");
	expect_refused("unix:///s?db=-1");
	expect_refused("unix:///s?db=1001");
	expect_refused("unix:///s?db=2&x=1");
	expect_refused("unix:///s?foo=1");
	expect_refused("unix:///s?");
}

Test(redis_uri, junk)
{
	expect_refused("");
	expect_refused("junk");
	expect_refused("redis://");
	expect_refused("redis://:6379");
	expect_refused("redis:/h");
	expect_refused("REDIS://h");
	expect_refused("rediss://h");
	expect_refused("http://h:6379");
	expect_refused("tcp://h:6379");
	expect_refused("unix://");
	expect_refused("unix://relative.sock");
	expect_refused("unix:?db=1");
	expect_refused("unix://?db=1");
	expect_refused("redis://[::1]:6379");
}

Test(redis_uri, over_long_names_refused)
{
	char uri[600] = "redis://";
	memset(uri + 8, 'h', 256);
	uri[8 + 256] = '\0';
	expect_refused(uri);
	uri[8 + 255] = '\0';
	struct vr_redis_addr a = parse_ok(uri);
	cr_assert_eq(strlen(a.host), 255);

	char sock[600] = "unix:///";
	memset(sock + 8, 's', 255);
	sock[8 + 255] = '\0';
	expect_refused(sock); /* 256 characters of path */
	sock[8 + 254] = '\0';
	a = parse_ok(sock);
	cr_assert_eq(strlen(a.path), 255);
}

Test(redis_uri, fields_are_reset_between_parses)
{
	struct vr_redis_addr a;
	cr_assert_eq(vr_redis_parse_uri(&a, "redis://first:1/1"), 0);
	cr_assert_eq(vr_redis_parse_uri(&a, "unix:///second"), 0);
	cr_assert_str_eq(a.host, "");
	cr_assert_eq(a.db, 0);
	cr_assert_eq(a.port, 6379);
	cr_assert_str_eq(a.path, "/second");
}
