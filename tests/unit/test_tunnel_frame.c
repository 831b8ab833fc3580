/* The tunnel protocol's parsers (src/tunnel/frame.c): frames whole, cut
 * short, oversized or of unknown types; key=value payloads; hellos of each
 * kind and what each must and must not carry; commands; round trips. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrcloud/err.h"
#include "vrcloud/tunnel.h"

#define CREDENTIAL "c3VwZXItc2VjcmV0LXNpdGUtY3JlZGVudGlhbC0wMDAwMDA="
#define REPL	   "40000000-0000-4000-8000-000000000001"

/* A frame of type with payload, built by hand (not by the encoder). */
static size_t raw_frame(unsigned char *out, unsigned type, const char *payload, size_t len)
{
	out[0] = (unsigned char)type;
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	memcpy(out + 4, payload, len);
	return 4 + len;
}

Test(tunnel_frame, a_whole_frame_is_returned_with_its_length)
{
	unsigned char buf[64];
	size_t n = raw_frame(buf, VR_FRAME_HEARTBEAT, "seq=1\n", 6);
	struct vr_tunnel_frame f;
	size_t used = 99;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf, n), 0);
	cr_assert_eq(used, 10);
	cr_assert_eq(f.type, VR_FRAME_HEARTBEAT);
	cr_assert_eq(f.len, 6);
	cr_assert_eq(memcmp(f.payload, "seq=1\n", 6), 0);
}

Test(tunnel_frame, an_empty_payload_is_a_frame)
{
	unsigned char buf[4] = {VR_FRAME_HEARTBEAT, 0, 0, 0};
	struct vr_tunnel_frame f;
	size_t used = 0;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf, 4), 0);
	cr_assert_eq(used, 4);
	cr_assert_eq(f.len, 0);
}

Test(tunnel_frame, every_truncation_asks_for_more)
{
	unsigned char buf[64];
	size_t n = raw_frame(buf, VR_FRAME_ACK, "id=abc\n", 7);
	for (size_t cut = 0; cut < n; cut++) {
		struct vr_tunnel_frame f;
		size_t used = 99;
		cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf, cut), 0, "cut at %zu", cut);
		cr_assert_eq(used, 0, "cut at %zu consumed %zu", cut, used);
	}
}

Test(tunnel_frame, two_frames_in_one_buffer_come_one_at_a_time)
{
	unsigned char buf[64];
	size_t n = raw_frame(buf, VR_FRAME_HEARTBEAT, "", 0);
	n += raw_frame(buf + n, VR_FRAME_ACK, "id=x\n", 5);
	struct vr_tunnel_frame f;
	size_t used;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf, n), 0);
	cr_assert_eq(f.type, VR_FRAME_HEARTBEAT);
	cr_assert_eq(used, 4);
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf + 4, n - 4), 0);
	cr_assert_eq(f.type, VR_FRAME_ACK);
	cr_assert_eq(used, 9);
}

Test(tunnel_frame, an_oversize_length_is_refused_from_the_header_alone)
{
	unsigned char header[4] = {VR_FRAME_COMMAND, 0x00, 0x40, 0x01}; /* 16385 */
	struct vr_tunnel_frame f;
	size_t used = 0;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, header, 4), VR_ETOOBIG);
	unsigned char max[4] = {VR_FRAME_COMMAND, 0xff, 0xff, 0xff};
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, max, 4), VR_ETOOBIG);
	/* exactly the limit is a frame (still incomplete here) */
	unsigned char limit[4] = {VR_FRAME_COMMAND, 0x00, 0x40, 0x00};
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, limit, 4), 0);
	cr_assert_eq(used, 0);
}

Test(tunnel_frame, unknown_types_are_refused_at_the_first_byte)
{
	static const unsigned char bad[] = {0, 9, 10, 0x16, 'G', 0x80, 0xff};
	for (size_t i = 0; i < sizeof bad; i++) {
		unsigned char buf[1] = {bad[i]};
		struct vr_tunnel_frame f;
		size_t used = 0;
		cr_assert_eq(vr_tunnel_frame_parse(&f, &used, buf, 1), VR_EINVAL, "type %u",
			     bad[i]);
	}
	/* an HTTP request or a TLS record on the plain side is not a frame */
	struct vr_tunnel_frame f;
	size_t used = 0;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, "GET / HTTP/1.1\r\n", 16), VR_EINVAL);
}

Test(tunnel_frame, the_encoder_writes_what_the_parser_reads)
{
	struct vr_buf out;
	vr_buf_init(&out, 0);
	cr_assert_eq(vr_tunnel_frame_append(&out, VR_FRAME_COMMAND, "id=1\nname=sync\n", 15), 0);
	cr_assert_eq(out.len, 19);
	cr_assert_eq((unsigned char)out.data[0], VR_FRAME_COMMAND);
	cr_assert_eq(out.data[3], 15);
	struct vr_tunnel_frame f;
	size_t used;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, out.data, out.len), 0);
	cr_assert_eq(used, out.len);
	cr_assert_eq(vr_tunnel_frame_append(&out, 0, "", 0), VR_EINVAL);
	cr_assert_eq(vr_tunnel_frame_append(&out, 9, "", 0), VR_EINVAL);
	cr_assert_eq(vr_tunnel_frame_append(&out, 200, "", 0), VR_EINVAL);
	char *big = calloc(1, VR_TUNNEL_MAX_PAYLOAD + 1);
	cr_assert_eq(vr_tunnel_frame_append(&out, VR_FRAME_COMMAND, big, VR_TUNNEL_MAX_PAYLOAD + 1),
		     VR_ETOOBIG);
	cr_assert_eq(out.len, 19, "a refused frame leaves nothing behind");
	free(big);
	vr_buf_free(&out);
}

Test(tunnel_frame, a_capped_buffer_keeps_no_half_frame)
{
	struct vr_buf out;
	vr_buf_init(&out, 10);
	cr_assert_eq(vr_tunnel_frame_append(&out, VR_FRAME_ACK, "id=12345678\n", 12), VR_ETOOBIG);
	cr_assert_eq(out.len, 0);
	vr_buf_free(&out);
}

/* --- fields ---------------------------------------------------------------- */

static int fields(const char *text, const char **reason)
{
	struct vr_tunnel_fields f;
	int rc = vr_tunnel_fields_parse(&f, text, strlen(text), reason);
	vr_tunnel_fields_free(&f);
	return rc;
}

Test(tunnel_frame, fields_parse_and_look_up)
{
	struct vr_tunnel_fields f;
	const char *reason = NULL;
	const char *text = "a=1\nkind=control\nempty=\nspaced=two words\n";
	cr_assert_eq(vr_tunnel_fields_parse(&f, text, strlen(text), &reason), 0, "%s", reason);
	cr_assert_eq(f.count, 4);
	cr_assert_str_eq(vr_tunnel_field(&f, "a"), "1");
	cr_assert_str_eq(vr_tunnel_field(&f, "kind"), "control");
	cr_assert_str_eq(vr_tunnel_field(&f, "empty"), "");
	cr_assert_str_eq(vr_tunnel_field(&f, "spaced"), "two words");
	cr_assert_null(vr_tunnel_field(&f, "missing"));
	vr_tunnel_fields_free(&f);
	cr_assert_eq(vr_tunnel_fields_parse(&f, "", 0, &reason), 0);
	cr_assert_eq(f.count, 0);
	vr_tunnel_fields_free(&f);
}

Test(tunnel_frame, malformed_fields_are_refused_with_a_reason)
{
	static const char *const bad[] = {
		"a=1",					 /* no final newline */
		"a=1\nb=2",				 /* last line unterminated */
		"noequals\n",				 /* no '=' */
		"=value\n",				 /* empty key */
		"Key=1\n",				 /* capital in a key */
		"a-b=1\n",				 /* '-' in a key */
		"a=1\na=2\n",				 /* duplicate */
		"a=\x01\n",				 /* control character */
		"a=tab\there\n",			 /* tab */
		"a=caf\xc3\xa9\n",			 /* non-ASCII */
		"a=1\r\n",				 /* CR */
		"\n",					 /* empty line */
		"abcdefghijklmnopqrstuvwxyz0123456=1\n", /* 33-character key */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *reason = NULL;
		cr_assert_eq(fields(bad[i], &reason), VR_EINVAL, "accepted: %s", bad[i]);
		cr_assert_not_null(reason);
	}
	/* a NUL inside the payload is a control character too */
	struct vr_tunnel_fields f;
	const char *reason = NULL;
	cr_assert_eq(vr_tunnel_fields_parse(&f, "a=1\0b\n", 6, &reason), VR_EINVAL);
}

Test(tunnel_frame, too_many_fields_are_refused)
{
	char text[64 * 8] = "";
	for (int i = 0; i <= VR_TUNNEL_MAX_FIELDS; i++) {
		char line[16];
		snprintf(line, sizeof line, "k%d=v\n", i);
		strcat(text, line);
	}
	const char *reason = NULL;
	cr_assert_eq(fields(text, &reason), VR_EINVAL);
}

Test(tunnel_frame, field_append_refuses_what_cannot_be_read_back)
{
	struct vr_buf out;
	vr_buf_init(&out, 0);
	cr_assert_eq(vr_tunnel_field_append(&out, "id", "a b"), 0);
	cr_assert_str_eq(out.data, "id=a b\n");
	cr_assert_eq(vr_tunnel_field_append(&out, "ID", "x"), VR_EINVAL);
	cr_assert_eq(vr_tunnel_field_append(&out, "id", "line\nbreak"), VR_EINVAL);
	cr_assert_eq(vr_tunnel_field_append(&out, "", "x"), VR_EINVAL);
	cr_assert_eq(out.len, 7);
	vr_buf_free(&out);
}

/* --- hello --------------------------------------------------------------- */

static int hello(const char *text, struct vr_tunnel_hello *h, const char **reason)
{
	return vr_tunnel_hello_parse(h, text, strlen(text), reason);
}

Test(tunnel_frame, hellos_of_each_kind)
{
	struct vr_tunnel_hello h;
	const char *reason = NULL;
	cr_assert_eq(hello("version=1\nkind=control\ncredential=" CREDENTIAL "\nagent=site-a 1.0\n",
			   &h, &reason),
		     0, "%s", reason);
	cr_assert_eq(h.kind, VR_TUNNEL_CONTROL);
	cr_assert_str_eq(h.credential, CREDENTIAL);
	cr_assert_str_eq(h.agent, "site-a 1.0");
	cr_assert_eq(hello("version=1\nkind=data\ncredential=x\nreplication="
			   "40000000-0000-4000-8000-00000000000A\n",
			   &h, &reason),
		     0, "%s", reason);
	cr_assert_eq(h.kind, VR_TUNNEL_DATA);
	cr_assert_str_eq(h.replication, "40000000-0000-4000-8000-00000000000a");
	cr_assert_eq(hello("version=1\nkind=reverse\ncredential=x\ncookie=Zm9v-YmFy_0.1\n", &h,
			   &reason),
		     0, "%s", reason);
	cr_assert_eq(h.kind, VR_TUNNEL_REVERSE);
	cr_assert_str_eq(h.cookie, "Zm9v-YmFy_0.1");
	/* fields a later version may add are ignored */
	cr_assert_eq(hello("version=1\nkind=control\ncredential=x\nfuture=1\n", &h, &reason), 0);
}

Test(tunnel_frame, bad_hellos_are_refused_and_keep_no_credential)
{
	static const char *const bad[] = {
		"kind=control\ncredential=x\n",		     /* no version */
		"version=2\nkind=control\ncredential=x\n",   /* unknown version */
		"version=01\nkind=control\ncredential=x\n",  /* not exactly 1 */
		"version=1\ncredential=x\n",		     /* no kind */
		"version=1\nkind=Control\ncredential=x\n",   /* kinds are lowercase */
		"version=1\nkind=worker\ncredential=x\n",    /* unknown kind */
		"version=1\nkind=\ncredential=x\n",	     /* empty kind */
		"version=1\nkind=control\n",		     /* no credential */
		"version=1\nkind=control\ncredential=\n",    /* empty credential */
		"version=1\nkind=control\ncredential=a b\n", /* space in it */
		"version=1\nkind=data\ncredential=x\n",	     /* data without replication */
		"version=1\nkind=data\ncredential=x\nreplication=nope\n",
		"version=1\nkind=control\ncredential=x\nreplication=" REPL "\n",
		"version=1\nkind=reverse\ncredential=x\n", /* reverse without cookie */
		"version=1\nkind=reverse\ncredential=x\ncookie=a/b\n",
		"version=1\nkind=data\ncredential=x\nreplication=" REPL "\ncookie=c\n",
		"version=1\nkind=control\ncredential=x\nagent=" /* 65 characters */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"version=1\nkind=control\ncredential=x\nkind=data\n", /* duplicate */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct vr_tunnel_hello h;
		const char *reason = NULL;
		cr_assert_eq(hello(bad[i], &h, &reason), VR_EINVAL, "accepted: %s", bad[i]);
		cr_assert_not_null(reason, "no reason for: %s", bad[i]);
		cr_assert_eq(h.credential[0], '\0', "a refused hello kept its credential");
	}
}

Test(tunnel_frame, an_overlong_credential_is_refused)
{
	char *text = malloc(VR_TUNNEL_MAX_CREDENTIAL + 64);
	strcpy(text, "version=1\nkind=control\ncredential=");
	size_t n = strlen(text);
	memset(text + n, 'a', VR_TUNNEL_MAX_CREDENTIAL + 1);
	strcpy(text + n + VR_TUNNEL_MAX_CREDENTIAL + 1, "\n");
	struct vr_tunnel_hello h;
	const char *reason = NULL;
	cr_assert_eq(hello(text, &h, &reason), VR_EINVAL);
	/* one shorter fits */
	strcpy(text + n + VR_TUNNEL_MAX_CREDENTIAL, "\n");
	cr_assert_eq(hello(text, &h, &reason), 0, "%s", reason);
	cr_assert_eq(strlen(h.credential), VR_TUNNEL_MAX_CREDENTIAL);
	free(text);
}

Test(tunnel_frame, a_hello_round_trips_and_its_encoder_checks_the_kind)
{
	struct vr_tunnel_hello in;
	memset(&in, 0, sizeof in);
	in.version = 1;
	in.kind = VR_TUNNEL_DATA;
	strcpy(in.credential, CREDENTIAL);
	strcpy(in.replication, REPL);
	strcpy(in.agent, "site-a");
	struct vr_buf out;
	vr_buf_init(&out, 0);
	cr_assert_eq(vr_tunnel_hello_append(&out, &in), 0);
	struct vr_tunnel_frame f;
	size_t used;
	cr_assert_eq(vr_tunnel_frame_parse(&f, &used, out.data, out.len), 0);
	cr_assert_eq(f.type, VR_FRAME_HELLO);
	struct vr_tunnel_hello back;
	const char *reason = NULL;
	cr_assert_eq(vr_tunnel_hello_parse(&back, f.payload, f.len, &reason), 0, "%s", reason);
	cr_assert_eq(back.kind, VR_TUNNEL_DATA);
	cr_assert_str_eq(back.credential, CREDENTIAL);
	cr_assert_str_eq(back.replication, REPL);
	cr_assert_str_eq(back.agent, "site-a");
	/* a control hello naming a replication is not made */
	in.kind = VR_TUNNEL_CONTROL;
	size_t before = out.len;
	cr_assert_eq(vr_tunnel_hello_append(&out, &in), VR_EINVAL);
	in.replication[0] = '\0';
	in.kind = 0;
	cr_assert_eq(vr_tunnel_hello_append(&out, &in), VR_EINVAL);
	cr_assert_eq(out.len, before);
	vr_tunnel_hello_clear(&back);
	cr_assert_eq(back.credential[0], '\0');
	vr_buf_free(&out);
}

Test(tunnel_frame, kind_and_frame_names)
{
	cr_assert_str_eq(vr_tunnel_kind_name(VR_TUNNEL_CONTROL), "control");
	cr_assert_str_eq(vr_tunnel_kind_name(VR_TUNNEL_REVERSE), "reverse");
	cr_assert_null(vr_tunnel_kind_name(0));
	cr_assert_null(vr_tunnel_kind_name(4));
	cr_assert_str_eq(vr_tunnel_frame_name(VR_FRAME_ACK), "ack");
	cr_assert_str_eq(vr_tunnel_frame_name(VR_FRAME_CONNECT), "connect");
	cr_assert_null(vr_tunnel_frame_name(0));
	cr_assert_null(vr_tunnel_frame_name(9));
	cr_assert_null(vr_tunnel_frame_name(255));
}

/* --- commands ------------------------------------------------------------- */

Test(tunnel_frame, commands_need_an_id_and_a_name)
{
	struct vr_tunnel_command c;
	const char *reason = NULL;
	const char *ok = "id=cmd-1\nname=sync\nreplication=" REPL "\n";
	cr_assert_eq(vr_tunnel_command_parse(&c, ok, strlen(ok), &reason), 0, "%s", reason);
	cr_assert_str_eq(c.id, "cmd-1");
	cr_assert_str_eq(c.name, "sync");
	static const char *const bad[] = {
		"name=sync\n",	      "id=cmd-1\n",	 "id=\nname=sync\n", "id=a b\nname=sync\n",
		"id=x\nname=sy/nc\n", "id=x\nname=sync", "garbage",	     "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		reason = NULL;
		cr_assert_eq(vr_tunnel_command_parse(&c, bad[i], strlen(bad[i]), &reason),
			     VR_EINVAL, "accepted: %s", bad[i]);
		cr_assert_not_null(reason);
	}
}

Test(tunnel_frame, addresses_split_into_host_and_port)
{
	char host[64];
	unsigned port = 0;
	cr_assert_eq(vr_tunnel_split_address(host, sizeof host, &port, "proxy.example:443"), 0);
	cr_assert_str_eq(host, "proxy.example");
	cr_assert_eq(port, 443);
	cr_assert_eq(vr_tunnel_split_address(host, sizeof host, &port, "[::1]:8443"), 0);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 8443);
	cr_assert_eq(vr_tunnel_split_address(host, sizeof host, &port, "0.0.0.0:0"), 0);
	cr_assert_eq(port, 0);
	static const char *const bad[] = {"",	     "host",	"host:",    ":443",    "host:65536",
					  "host:-1", "::1:443", "[::1]443", "ho st:1", "host:1x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(vr_tunnel_split_address(host, sizeof host, &port, bad[i]), VR_EINVAL,
			     "accepted: %s", bad[i]);
}

/* --- reverse connections ----------------------------------------------------- */

Test(tunnel_frame, cookies_are_43_url_safe_characters_and_differ)
{
	char a[VR_TUNNEL_COOKIE_LEN + 1], b[VR_TUNNEL_COOKIE_LEN + 1];
	cr_assert_eq(vr_tunnel_cookie_new(a), 0);
	cr_assert_eq(vr_tunnel_cookie_new(b), 0);
	cr_assert_eq(strlen(a), VR_TUNNEL_COOKIE_LEN);
	cr_assert(vr_tunnel_id_valid(a), "%s", a);
	cr_assert_str_neq(a, b);
	for (size_t i = 0; i < VR_TUNNEL_COOKIE_LEN; i++)
		cr_assert_null(strchr("+/=", a[i]), "%s", a);
}

Test(tunnel_frame, worker_requests_name_a_peer_and_a_replication)
{
	struct vr_tunnel_request r;
	const char *reason = NULL;
	const char *ok = "version=1\npeer=30000000-0000-4000-8000-0000000000A1\nreplication=" REPL
			 "\nworker=worker-1\n";
	cr_assert_eq(vr_tunnel_request_parse(&r, ok, strlen(ok), &reason), 0, "%s", reason);
	cr_assert_str_eq(r.peer, "30000000-0000-4000-8000-0000000000a1");
	cr_assert_str_eq(r.replication, REPL);
	cr_assert_str_eq(r.worker, "worker-1");
	static const char *const bad[] = {
		"peer=30000000-0000-4000-8000-0000000000a1\nreplication=" REPL "\n",
		"version=2\npeer=30000000-0000-4000-8000-0000000000a1\nreplication=" REPL "\n",
		"version=1\nreplication=" REPL "\n",
		"version=1\npeer=nope\nreplication=" REPL "\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\nreplication=" REPL
		"\nworker=a b\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		reason = NULL;
		cr_assert_eq(vr_tunnel_request_parse(&r, bad[i], strlen(bad[i]), &reason),
			     VR_EINVAL, "accepted: %s", bad[i]);
		cr_assert_not_null(reason);
	}
}

Test(tunnel_frame, a_request_has_a_purpose_and_only_a_probe_may_name_no_replication)
{
	struct vr_tunnel_request r;
	const char *reason = NULL;
	const char *plain = "version=1\npeer=30000000-0000-4000-8000-0000000000a1\nreplication=" REPL
			    "\n";
	cr_assert_eq(vr_tunnel_request_parse(&r, plain, strlen(plain), &reason), 0, "%s", reason);
	cr_assert_str_eq(r.purpose, "failback");
	const char *probe = "version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose=probe\n";
	cr_assert_eq(vr_tunnel_request_parse(&r, probe, strlen(probe), &reason), 0, "%s", reason);
	cr_assert_str_eq(r.purpose, "probe");
	cr_assert_str_eq(r.replication, "");
	static const char *const bad[] = {
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose=failback\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose=Probe\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose=\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose=probe\nreplication=x\n",
		"version=1\npeer=30000000-0000-4000-8000-0000000000a1\npurpose="
		"abcdefghijklmnopqrstuvwxyzabcdefg\nreplication=" REPL "\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(vr_tunnel_request_parse(&r, bad[i], strlen(bad[i]), &reason),
			     VR_EINVAL, "accepted: %s", bad[i]);
	struct vr_tunnel_connect c;
	const char *frame = "address=p:1\ncookie=c\npurpose=probe\n";
	cr_assert_eq(vr_tunnel_connect_parse(&c, frame, strlen(frame), false, &reason), 0, "%s",
		     reason);
	cr_assert_str_eq(c.purpose, "probe");
	cr_assert_str_eq(c.replication, "");
	const char *old = "address=p:1\ncookie=c\nreplication=" REPL "\n";
	cr_assert_eq(vr_tunnel_connect_parse(&c, old, strlen(old), false, &reason), 0, "%s", reason);
	cr_assert_str_eq(c.purpose, "failback");
}

Test(tunnel_frame, connect_frames_and_bus_messages)
{
	struct vr_tunnel_connect c;
	const char *reason = NULL;
	const char *frame = "address=proxy-2.example:8443\ncookie=abc-DEF_123\nreplication=" REPL
			    "\n";
	cr_assert_eq(vr_tunnel_connect_parse(&c, frame, strlen(frame), false, &reason), 0, "%s",
		     reason);
	cr_assert_str_eq(c.address, "proxy-2.example:8443");
	cr_assert_str_eq(c.cookie, "abc-DEF_123");
	cr_assert_str_eq(c.peer, "");
	/* the bus message must name the peer */
	cr_assert_eq(vr_tunnel_connect_parse(&c, frame, strlen(frame), true, &reason), VR_EINVAL);
	const char *bus = "peer=30000000-0000-4000-8000-0000000000a1\naddress=[::1]:8443\ncookie=c"
			  "\nreplication=" REPL "\n";
	cr_assert_eq(vr_tunnel_connect_parse(&c, bus, strlen(bus), true, &reason), 0, "%s", reason);
	cr_assert_str_eq(c.peer, "30000000-0000-4000-8000-0000000000a1");
	static const char *const bad[] = {
		"address=p:1\nreplication=" REPL "\n",
		"address=p:1\ncookie=a/b\nreplication=" REPL "\n",
		"address=p\ncookie=c\nreplication=" REPL "\n",
		"address=p:0\ncookie=c\nreplication=" REPL "\n",
		"cookie=c\nreplication=" REPL "\n",
		"address=p:1\ncookie=c\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(vr_tunnel_connect_parse(&c, bad[i], strlen(bad[i]), false, &reason),
			     VR_EINVAL, "accepted: %s", bad[i]);
}
