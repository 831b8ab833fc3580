/* The session token from a Cookie header, including the raw Set-Cookie
 * string RaaSCLI echoes back. */
#include <criterion/criterion.h>
#include <string.h>

#include "http/internal.h"

#define NAME "vcloud-token"

static void expect_token(const char *header, const char *token)
{
	char out[64];
	memset(out, 'Z', sizeof out);
	cr_assert(vr_http_cookie_value(header, NAME, out, sizeof out), "no token in '%s'", header);
	cr_assert_str_eq(out, token, "from '%s'", header);
}

static void expect_none(const char *header)
{
	char out[64] = "untouched";
	cr_assert_not(vr_http_cookie_value(header, NAME, out, sizeof out), "found '%s' in '%s'",
		      out, header);
}

Test(cookie, plain)
{
	expect_token("vcloud-token=abc123", "abc123");
	expect_token("vcloud-token=a+b/c==", "a+b/c==");
}

Test(cookie, among_other_cookies)
{
	expect_token("lang=en; vcloud-token=T0K; theme=dark", "T0K");
	expect_token("lang=en;vcloud-token=T0K;theme=dark", "T0K");
	expect_token("lang=en; theme=dark; vcloud-token=last", "last");
	expect_token("  vcloud-token=lead", "lead");
	expect_token("a=1,vcloud-token=comma", "comma");
	expect_token("a=1;\tvcloud-token=tab", "tab");
}

Test(cookie, raascli_set_cookie_echo)
{
	expect_token("vcloud-token=X; Secure; Path=/", "X");
	expect_token("vcloud-token=0123456789abcdef; Secure; Path=/; HttpOnly", "0123456789abcdef");
	expect_token("JSESSIONID=1; vcloud-token=Y; Secure; Path=/", "Y");
}

Test(cookie, name_as_suffix_does_not_match)
{
	expect_none("xvcloud-token=EVIL");
	expect_none("my-vcloud-token=EVIL; other=1");
	expect_token("xvcloud-token=EVIL; vcloud-token=GOOD", "GOOD");
	expect_token("a-vcloud-token=EVIL;vcloud-token=GOOD", "GOOD");
}

Test(cookie, name_as_prefix_does_not_match)
{
	expect_none("vcloud-tokens=EVIL");
	expect_none("vcloud-token2=EVIL");
	expect_token("vcloud-token2=EVIL; vcloud-token=GOOD", "GOOD");
}

Test(cookie, name_inside_a_value_does_not_match)
{
	expect_none("other=vcloud-token=EVIL");
	expect_token("other=vcloud-token=EVIL; vcloud-token=GOOD", "GOOD");
}

Test(cookie, absent)
{
	expect_none("");
	expect_none("lang=en; theme=dark");
	expect_none("vcloud-token");
	expect_none("vcloud-token ; Secure");
	expect_none("Secure; Path=/");
}

Test(cookie, empty_value)
{
	expect_none("vcloud-token=");
	expect_none("vcloud-token=; Secure; Path=/");
	expect_none("vcloud-token=;");
	expect_none("vcloud-token= ");
}

Test(cookie, value_ends_at_separators)
{
	expect_token("vcloud-token=abc def", "abc");
	expect_token("vcloud-token=abc\r\nX-Injected: 1", "abc");
	expect_token("vcloud-token=abc,def", "abc");
}

Test(cookie, too_long_is_refused)
{
	char header[256] = NAME "=";
	size_t prefix = strlen(header);
	/* fits: out_size - 1 characters */
	memset(header + prefix, 'a', 15);
	header[prefix + 15] = '\0';
	char out[16];
	cr_assert(vr_http_cookie_value(header, NAME, out, sizeof out));
	cr_assert_eq(strlen(out), 15);

	/* one more does not, and nothing is cut silently */
	memset(header + prefix, 'a', 16);
	header[prefix + 16] = '\0';
	memset(out, 'Q', sizeof out);
	cr_assert_not(vr_http_cookie_value(header, NAME, out, sizeof out));
	for (size_t i = 0; i < sizeof out; i++)
		cr_assert_eq(out[i], 'Q', "out written at %zu", i);

	strcat(header, "; Secure");
	cr_assert_not(vr_http_cookie_value(header, NAME, out, sizeof out));
}

Test(cookie, real_token_size)
{
	/* the server's tokens are far shorter than the buffer it uses (300) */
	char header[400] = "vcloud-token=";
	memset(header + 13, 'k', 64);
	header[13 + 64] = '\0';
	strcat(header, "; Secure; Path=/");
	char out[300];
	cr_assert(vr_http_cookie_value(header, NAME, out, sizeof out));
	cr_assert_eq(strlen(out), 64);
}
