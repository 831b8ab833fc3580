/* Logging in and out, tokens (header, cookie, Basic on any route), expiry,
 * throttling of failed logins (reference 1.5, 6.3.4, 6.3.5). Tests that
 * change a user's state each use a spare user of their own. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/harness.h"

/* Failed logins: 3 per user and address in a 6-second window. */
VRT_SUITE(.name = "sessions", .jobs = 8, .redis_db = 1,
	  .config = "[login]\nmax_failures_per_user = 3\nwindow = 6\n");

#define SESSION_TYPE "application/vnd.vmware.vcloud.session+xml"
#define CHALLENGE    "Basic realm=\"vCloud\""

static char *cred(const char *user, const char *password)
{
	char *s = NULL;
	cr_assert(asprintf(&s, "%s:%s", user, password) > 0);
	return s;
}

/* POST /api/sessions with Basic user:password (NULL user: no credentials). */
static void post_sessions(const char *base, const char *user, const char *password,
			  struct vrt_resp *resp)
{
	char *c = user ? cred(user, password) : NULL;
	struct vrt_call call = {
		.base = base, .method = "POST", .path = "/api/sessions", .basic = c};
	cr_assert_eq(vrt_call(&call, resp), 0);
	free(c);
}

static void assert_challenge(const struct vrt_resp *r, const char *what)
{
	cr_assert_eq(r->status, 401, "%s: status %ld\n%s", what, r->status, r->body);
	const char *h = vrt_header(r, "WWW-Authenticate");
	cr_assert(h && strcmp(h, CHALLENGE) == 0, "%s: WWW-Authenticate '%s'", what,
		  h ? h : "(none)");
	cr_assert_eq(r->body_len, 0, "%s: a failed login has a body:\n%s", what, r->body);
	cr_assert_null(vrt_header(r, "x-vcloud-authorization"), "%s: a token was issued", what);
}

static long get_status(const char *base, const char *path, const char *token)
{
	struct vrt_call call = {.base = base, .path = path, .token = token};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	long status = r.status;
	if (status == 401)
		vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", path);
	vrt_resp_free(&r);
	return status;
}

static char *login_ok(const char *base, const char *user)
{
	long status = 0;
	char *token = vrt_login(base, user, VRT_PASSWORD, &status);
	cr_assert_not_null(token, "login of %s answered %ld", user, status);
	return token;
}

Test(login, basic_credentials_give_a_session_token_header_cookie_and_document)
{
	struct vrt_resp r;
	post_sessions(NULL, "t01@tenant-a", VRT_PASSWORD, &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	const char *token = vrt_header(&r, "x-vcloud-authorization");
	cr_assert(token && strlen(token) == 44, "token '%s' is not 256 bits in base64",
		  token ? token : "(none)");
	const char *cookie = vrt_header(&r, "Set-Cookie");
	cr_assert_not_null(cookie);
	char *expected = NULL;
	cr_assert(asprintf(&expected, "vcloud-token=%s;", token) > 0);
	cr_assert_eq(strncmp(cookie, expected, strlen(expected)), 0, "Set-Cookie: %s", cookie);
	cr_assert(strstr(cookie, "; Secure") && strstr(cookie, "; Path=/"), "Set-Cookie: %s",
		  cookie);
	free(expected);
	cr_assert_str_eq(vrt_header(&r, "Content-Type"), SESSION_TYPE ";version=5.5");
	vrt_assert_valid(&r, "Session");
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Session[@user='t01'][@org='tenant-a']"), 1, "%s",
		     r.body);
	char *href = vrt_xpath_str(r.body, "string(/v:Session/@href)");
	char *self = NULL;
	cr_assert(asprintf(&self, "%s/api/session/", vrt_public_url()) > 0);
	cr_assert_str_eq(href, self);
	char *orgs = vrt_xpath_str(r.body,
				   "string(/v:Session/v:Link[@rel='down']"
				   "[@type='application/vnd.vmware.vcloud.orgList+xml']/@href)");
	cr_assert(strstr(orgs, "/api/org/") &&
			  strncmp(orgs, vrt_public_url(), strlen(vrt_public_url())) == 0,
		  "orgList link %s", orgs);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Session/v:Link[@rel='remove']"), 1);
	free(href);
	free(self);
	free(orgs);
	vrt_resp_free(&r);
}

Test(login, two_logins_give_different_tokens)
{
	char *a = login_ok(NULL, "t01@tenant-a");
	char *b = login_ok(NULL, "t01@tenant-a");
	cr_assert_str_neq(a, b);
	free(a);
	free(b);
}

Test(login, user_and_org_names_are_case_insensitive)
{
	char *token = login_ok(NULL, "T01@TENANT-A");
	cr_assert_eq(get_status(NULL, "/api/session", token), 200);
	free(token);
}

Test(compat_6_3_4, wrong_password_is_401_with_basic_challenge_and_empty_body)
{
	struct vrt_resp r;
	post_sessions(NULL, "t02@tenant-a", "not-the-password", &r);
	assert_challenge(&r, "wrong password");
	vrt_resp_free(&r);
}

Test(compat_6_3_4, unknown_user_and_unknown_org_are_answered_like_a_wrong_password)
{
	struct vrt_resp r;
	post_sessions(NULL, "nobody@tenant-a", VRT_PASSWORD, &r);
	assert_challenge(&r, "unknown user");
	vrt_resp_free(&r);
	post_sessions(NULL, "admin-a@no-such-org", VRT_PASSWORD, &r);
	assert_challenge(&r, "unknown org");
	vrt_resp_free(&r);
}

Test(compat_6_3_4, missing_authorization_is_401_with_basic_challenge_and_empty_body)
{
	struct vrt_resp r;
	post_sessions(NULL, NULL, NULL, &r);
	assert_challenge(&r, "no Authorization");
	vrt_resp_free(&r);
}

Test(compat_6_3_4, form_encoded_body_is_ignored)
{
	static const char form[] = "username=t03%40tenant-a&password=" VRT_PASSWORD "&org=tenant-a";
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
					      NULL};
	char *c = cred("t03@tenant-a", VRT_PASSWORD);
	struct vrt_call with = {.method = "POST",
				.path = "/api/sessions",
				.basic = c,
				.headers = headers,
				.body = form,
				.body_len = -1};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&with, &r), 0);
	cr_assert_eq(r.status, 200, "Basic + form body: %ld\n%s", r.status, r.body);
	cr_assert_not_null(vrt_header(&r, "x-vcloud-authorization"));
	vrt_assert_valid(&r, "Session");
	vrt_resp_free(&r);
	free(c);

	/* the form alone carries no credentials */
	struct vrt_call without = {.method = "POST",
				   .path = "/api/sessions",
				   .headers = headers,
				   .body = form,
				   .body_len = -1};
	cr_assert_eq(vrt_call(&without, &r), 0);
	assert_challenge(&r, "form body without Authorization");
	vrt_resp_free(&r);
}

Test(compat_6_3_4, malformed_authorization_headers_are_401_challenges)
{
	static const char *const cases[] = {
		"Authorization: Basic !!!not-base64!!!",
		"Authorization: Basic dDA0QHRlbmFudC1h", /* "t04@tenant-a": no colon */
		"Authorization: Basic dDA0OkZpeHR1cmUtUGFzc3dvcmQtMQ==", /* no @org */
		"Authorization: Basic ",
		"Authorization: Bearer abcdef",
		"Authorization: Digest username=\"t04@tenant-a\"",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *headers[] = {cases[i], NULL};
		struct vrt_call call = {
			.method = "POST", .path = "/api/sessions", .headers = headers};
		struct vrt_resp r;
		cr_assert_eq(vrt_call(&call, &r), 0);
		assert_challenge(&r, cases[i]);
		vrt_resp_free(&r);
	}
}

Test(login, disabled_user_cannot_log_in)
{
	struct vrt_resp r;
	post_sessions(NULL, VRT_DISABLED_A, VRT_PASSWORD, &r);
	assert_challenge(&r, "disabled user");
	vrt_resp_free(&r);
}

Test(login, session_of_a_user_disabled_afterwards_is_refused)
{
	char *token = login_ok(NULL, "t05@tenant-a");
	cr_assert_eq(get_status(NULL, "/api/session", token), 200);
	cr_assert_eq(vrt_db_exec("UPDATE users SET enabled = false WHERE name = 't05'"), 1);
	cr_assert_eq(get_status(NULL, "/api/session", token), 401);
	cr_assert_eq(get_status(NULL, "/api/org", token), 401);
	free(token);
}

Test(session, get_session_answers_with_and_without_trailing_slash)
{
	struct vrt_resp a, b;
	vrt_get("/api/session", vrt_token(VRT_ADMIN_A), &a);
	vrt_get("/api/session/", vrt_token(VRT_ADMIN_A), &b);
	cr_assert_eq(a.status, 200, "%s", a.body);
	cr_assert_eq(b.status, 200, "%s", b.body);
	vrt_assert_valid(&a, "GET /api/session");
	cr_assert_str_eq(vrt_header(&a, "Content-Type"), SESSION_TYPE ";version=5.5");
	cr_assert_eq(vrt_xpath_count(a.body, "/v:Session[@user='admin-a'][@org='tenant-a']"), 1,
		     "%s", a.body);
	cr_assert_str_eq(a.body, b.body);
	vrt_resp_free(&a);
	vrt_resp_free(&b);
}

Test(session, no_credentials_on_a_route_is_401_not_authenticated_with_challenge)
{
	struct vrt_resp r;
	vrt_get("/api/org", NULL, &r);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "GET /api/org without a token");
	const char *h = vrt_header(&r, "WWW-Authenticate");
	cr_assert(h && strcmp(h, CHALLENGE) == 0, "WWW-Authenticate '%s'", h ? h : "(none)");
	vrt_resp_free(&r);
}

Test(session, unknown_and_empty_tokens_are_401)
{
	static const char *const tokens[] = {
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"x",
		"' OR '1'='1",
		"   ",
	};
	for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
		cr_assert_eq(get_status(NULL, "/api/org", tokens[i]), 401, "token '%s'", tokens[i]);
}

Test(session, token_from_vcloud_token_cookie_is_accepted)
{
	char *line = NULL;
	cr_assert(asprintf(&line, "Cookie: vcloud-token=%s", vrt_token(VRT_ADMIN_A)) > 0);
	const char *headers[] = {line, NULL};
	struct vrt_call call = {.path = "/api/session", .headers = headers};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(vrt_xpath_count(r.body, "/v:Session[@user='admin-a']"), 1);
	vrt_resp_free(&r);
	free(line);
}

Test(compat_6_3_5, raascli_raw_set_cookie_echo_is_accepted)
{
	/* before and after the token */
	static const char *const forms[][2] = {
		{"Cookie: vcloud-token=", "; Secure; Path=/"},
		{"Cookie: vcloud-token=", "; Secure; HttpOnly; Path=/"},
		{"Cookie: JSESSIONID=0123abcd; vcloud-token=", "; Secure; Path=/"},
		{"Cookie: vcloud-token=", ""},
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		char *line = NULL;
		cr_assert(asprintf(&line, "%s%s%s", forms[i][0], vrt_token(VRT_USER_A),
				   forms[i][1]) > 0);
		const char *headers[] = {line, NULL};
		struct vrt_call call = {.path = "/api/org", .headers = headers};
		struct vrt_resp r;
		cr_assert_eq(vrt_call(&call, &r), 0);
		cr_assert_eq(r.status, 200, "%s\n%s", line, r.body);
		vrt_assert_valid(&r, line);
		vrt_resp_free(&r);
		free(line);
	}
}

Test(compat_6_3_5, cookie_with_a_different_name_is_not_a_token)
{
	char *line = NULL;
	cr_assert(asprintf(&line, "Cookie: my-vcloud-token=%s", vrt_token(VRT_USER_A)) > 0);
	const char *headers[] = {line, NULL};
	struct vrt_call call = {.path = "/api/org", .headers = headers};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", line);
	vrt_resp_free(&r);
	free(line);
}

Test(compat_6_3_5, basic_credentials_are_accepted_on_any_route)
{
	char *c = cred("t06@tenant-a", VRT_PASSWORD);
	static const char *const paths[] = {
		"/api/org",
		"/api/session",
		"/api/vr/replications/" VRT_REPL_A1,
		"/api/vdc/" VRT_VDC_A1 "/replications",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct vrt_call call = {.path = paths[i], .basic = c};
		struct vrt_resp r;
		cr_assert_eq(vrt_call(&call, &r), 0);
		cr_assert_eq(r.status, 200, "%s with Basic: %ld\n%s", paths[i], r.status, r.body);
		vrt_assert_valid(&r, paths[i]);
		cr_assert_null(vrt_header(&r, "x-vcloud-authorization"),
			       "Basic on a route must not open a session");
		vrt_resp_free(&r);
	}
	/* RaaSCLI sends Basic together with a token that may have died */
	struct vrt_call both = {.path = "/api/org",
				.basic = c,
				.token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&both, &r), 0);
	cr_assert_eq(r.status, 200, "stale token + Basic: %ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	free(c);
}

Test(compat_6_3_5, wrong_basic_credentials_on_a_route_are_401_error)
{
	char *c = cred("t07@tenant-a", "wrong");
	struct vrt_call call = {.path = "/api/org", .basic = c};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	vrt_assert_error(&r, 401, "NOT_AUTHENTICATED", "wrong Basic on GET /api/org");
	const char *h = vrt_header(&r, "WWW-Authenticate");
	cr_assert(h && strcmp(h, CHALLENGE) == 0);
	vrt_resp_free(&r);
	free(c);
}

static void logout_kills_token(const char *user, const char *path)
{
	char *token = login_ok(NULL, user);
	cr_assert_eq(get_status(NULL, "/api/session", token), 200);
	struct vrt_call call = {.method = "DELETE", .path = path, .token = token};
	struct vrt_resp r;
	cr_assert_eq(vrt_call(&call, &r), 0);
	cr_assert(r.status == 204 || r.status == 200, "DELETE %s: %ld\n%s", path, r.status, r.body);
	cr_assert_eq(r.body_len, 0, "DELETE %s answered a body", path);
	const char *cookie = vrt_header(&r, "Set-Cookie");
	cr_assert(cookie && strncmp(cookie, "vcloud-token=;", 14) == 0 &&
			  strstr(cookie, "Max-Age=0"),
		  "the logout does not expire the cookie: %s", cookie ? cookie : "(none)");
	vrt_resp_free(&r);
	cr_assert_eq(get_status(NULL, "/api/session", token), 401, "token alive after logout");
	cr_assert_eq(get_status(NULL, "/api/org", token), 401, "token alive after logout");
	/* the cookie form is dead too */
	char *line = NULL;
	cr_assert(asprintf(&line, "Cookie: vcloud-token=%s", token) > 0);
	const char *headers[] = {line, NULL};
	struct vrt_call by_cookie = {.path = "/api/org", .headers = headers};
	cr_assert_eq(vrt_call(&by_cookie, &r), 0);
	cr_assert_eq(r.status, 401);
	vrt_resp_free(&r);
	free(line);
	free(token);
	/* other sessions live on */
	cr_assert_eq(get_status(NULL, "/api/session", vrt_token(VRT_ADMIN_A)), 200);
}

Test(session, logout_with_delete_session_kills_the_token)
{
	logout_kills_token("t08@tenant-a", "/api/session");
	char *rows = vrt_db_value("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
				  " WHERE u.name = 't08'");
	cr_assert_str_eq(rows, "0", "the session row outlived the logout");
	free(rows);
}

Test(session, logout_with_trailing_slash_kills_the_token)
{
	logout_kills_token("t09@tenant-a", "/api/session/");
}

Test(session, tokens_are_stored_only_as_sha256_hashes)
{
	char *token = login_ok(NULL, "t10@tenant-a");
	char *leaks = vrt_db_value("SELECT count(*) FROM sessions s"
				   " WHERE strpos(s::text, $1) > 0 OR strpos(s::text, encode("
				   "convert_to($1, 'UTF8'), 'hex')) > 0",
				   token);
	cr_assert_str_eq(leaks, "0", "a sessions row contains the token text");
	char *hashed = vrt_db_value("SELECT count(*) FROM sessions"
				    " WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
				    token);
	cr_assert_str_eq(hashed, "1", "no session row holds the SHA-256 of the token");
	char *anywhere =
		vrt_db_value("SELECT count(*) FROM users u WHERE strpos(u::text, $1) > 0", token);
	cr_assert_str_eq(anywhere, "0");
	free(leaks);
	free(hashed);
	free(anywhere);
	free(token);
}

Test(session, tokens_and_passwords_never_reach_the_log)
{
	char *token = login_ok(NULL, "t11@tenant-a");
	cr_assert_eq(get_status(NULL, "/api/org", token), 200);
	struct vrt_resp r;
	post_sessions(NULL, "t11@tenant-a", "t11-wrong-password", &r);
	vrt_resp_free(&r);
	struct vrt_api api = {0};
	snprintf(api.dir, sizeof api.dir, "%s", vrt_env("VRT_API_DIR"));
	cr_assert(vrt_api_log_contains(&api, "t11@tenant-a"),
		  "the log does not even mention the user; wrong log file?");
	cr_assert_not(vrt_api_log_contains(&api, token), "the session token is in the log");
	cr_assert_not(vrt_api_log_contains(&api, VRT_PASSWORD), "a password is in the log");
	cr_assert_not(vrt_api_log_contains(&api, "t11-wrong-password"), "a password is in the log");
	free(token);
}

/* --- expiry: API instances of their own, sharing the suite database -- */

Test(expiry, idle_session_is_refused_after_the_idle_timeout)
{
	/* Only requests, no logins, reach the short instance: a login there
	 * would sweep every session idle for 10 s out of the shared table. */
	struct vrt_api api;
	struct vrt_api_opts opts = {.config = "[session]\nidle_timeout = 10\n"};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	char *token = login_ok(NULL, "t12@tenant-a");
	cr_assert_eq(get_status(api.base, "/api/session", token), 200);
	vrt_sleep(6);
	cr_assert_eq(get_status(api.base, "/api/session", token), 200, "6 s idle");
	vrt_sleep(6);
	cr_assert_eq(get_status(api.base, "/api/session", token), 200,
		     "12 s old but used 6 s ago: the idle timeout must count from the last use");
	vrt_sleep(11.5);
	cr_assert_eq(get_status(api.base, "/api/session", token), 401, "11.5 s idle");
	cr_assert_eq(vrt_api_stop(&api, 5), 0);
	free(token);
}

Test(expiry, session_is_refused_after_the_absolute_timeout)
{
	struct vrt_api api;
	struct vrt_api_opts opts = {.config = "[session]\nabsolute_timeout = 12\n"};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	char *token = login_ok(api.base, "t13@tenant-a");
	char *lifetime = vrt_db_value("SELECT extract(epoch FROM s.expires_at - s.created_at)::int"
				      " FROM sessions s JOIN users u ON u.id = s.user_id"
				      " WHERE u.name = 't13'");
	cr_assert_str_eq(lifetime, "12");
	free(lifetime);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(get_status(api.base, "/api/session", token), 200);
		vrt_sleep(5);
	}
	cr_assert_eq(get_status(api.base, "/api/session", token), 200, "10 s after login");
	vrt_sleep(3.5);
	cr_assert_eq(get_status(api.base, "/api/session", token), 401,
		     "13.5 s after login, although used 3.5 s ago");
	/* the main instance agrees: the expiry is the session's */
	cr_assert_eq(get_status(NULL, "/api/session", token), 401);
	cr_assert_eq(vrt_api_stop(&api, 5), 0);
	free(token);
}

/* --- throttling of failed logins ------------------------------------- */

static void fail_logins(const char *user, int n)
{
	for (int i = 0; i < n; i++) {
		struct vrt_resp r;
		post_sessions(NULL, user, "wrong-password", &r);
		assert_challenge(&r, "failed login before the limit");
		vrt_resp_free(&r);
	}
}

static unsigned assert_throttled(const struct vrt_resp *r, const char *what)
{
	vrt_assert_error(r, 429, "TOO_MANY_REQUESTS", what);
	const char *retry = vrt_header(r, "Retry-After");
	cr_assert_not_null(retry, "%s: no Retry-After", what);
	char *end;
	unsigned long seconds = strtoul(retry, &end, 10);
	cr_assert(*end == '\0' && seconds >= 1 && seconds <= 6,
		  "%s: Retry-After '%s' is not within the 6 s window", what, retry);
	cr_assert_null(vrt_header(r, "x-vcloud-authorization"));
	return (unsigned)seconds;
}

Test(rate_limit, failures_of_one_user_give_429_with_retry_after)
{
	fail_logins("t14@tenant-a", 3);
	struct vrt_resp r;
	post_sessions(NULL, "t14@tenant-a", "wrong-password", &r);
	assert_throttled(&r, "4th failed login");
	vrt_resp_free(&r);
}

Test(rate_limit, right_password_is_refused_while_throttled)
{
	fail_logins("t15@tenant-a", 3);
	struct vrt_resp r;
	post_sessions(NULL, "t15@tenant-a", VRT_PASSWORD, &r);
	assert_throttled(&r, "right password while throttled");
	vrt_resp_free(&r);
	/* nor do Basic credentials get through on another route */
	char *c = cred("t15@tenant-a", VRT_PASSWORD);
	struct vrt_call call = {.path = "/api/org", .basic = c};
	cr_assert_eq(vrt_call(&call, &r), 0);
	assert_throttled(&r, "Basic on GET /api/org while throttled");
	vrt_resp_free(&r);
	free(c);
}

Test(rate_limit, other_users_at_the_same_address_are_not_locked_out)
{
	fail_logins("t16@tenant-a", 3);
	struct vrt_resp r;
	post_sessions(NULL, "t16@tenant-a", VRT_PASSWORD, &r);
	assert_throttled(&r, "throttled user");
	vrt_resp_free(&r);
	char *token = login_ok(NULL, "t18@tenant-a");
	cr_assert_eq(get_status(NULL, "/api/session", token), 200);
	free(token);
	/* sessions opened before keep working */
	cr_assert_eq(get_status(NULL, "/api/org", vrt_token(VRT_USER_A)), 200);
}

Test(rate_limit, throttle_ends_when_the_window_expires)
{
	fail_logins("t17@tenant-a", 3);
	struct vrt_resp r;
	post_sessions(NULL, "t17@tenant-a", VRT_PASSWORD, &r);
	unsigned wait = assert_throttled(&r, "throttled");
	vrt_resp_free(&r);
	vrt_sleep(wait + 1.0);
	post_sessions(NULL, "t17@tenant-a", VRT_PASSWORD, &r);
	cr_assert_eq(r.status, 200, "still refused %u s later: %ld\n%s", wait + 1, r.status,
		     r.body);
	vrt_resp_free(&r);
}

Test(rate_limit, success_resets_the_failure_count)
{
	fail_logins("t19@tenant-a", 2);
	char *token = login_ok(NULL, "t19@tenant-a");
	free(token);
	/* two more failures: not throttled, the count started again */
	fail_logins("t19@tenant-a", 2);
	token = login_ok(NULL, "t19@tenant-a");
	free(token);
}

static void login_from(const char *base, const char *source, const char *user, const char *password,
		       struct vrt_resp *r)
{
	char *c = cred(user, password);
	struct vrt_call call = {.base = base,
				.method = "POST",
				.path = "/api/sessions",
				.basic = c,
				.source_addr = source};
	cr_assert_eq(vrt_call(&call, r), 0, "cannot send from %s", source);
	free(c);
}

Test(rate_limit, failures_from_one_address_throttle_every_user_from_it)
{
	/* an instance of its own with a per-address limit of 4; the suite's
	 * other failures come from 127.0.0.1, these from 127.0.0.7 */
	struct vrt_api api;
	struct vrt_api_opts opts = {
		.config = "[login]\nmax_failures_per_address = 4\nmax_failures_per_user = 100\n"
			  "window = 60\n"};
	cr_assert_eq(vrt_api_start(&api, &opts), 0);
	static const char *const ghosts[] = {"ghost1@tenant-a", "ghost2@tenant-a",
					     "ghost3@tenant-a", "t20@tenant-b"};
	struct vrt_resp r;
	for (size_t i = 0; i < 4; i++) {
		login_from(api.base, "127.0.0.7", ghosts[i], "guess", &r);
		assert_challenge(&r, ghosts[i]);
		vrt_resp_free(&r);
	}
	login_from(api.base, "127.0.0.7", "t20@tenant-a", VRT_PASSWORD, &r);
	vrt_assert_error(&r, 429, "TOO_MANY_REQUESTS", "a valid user from the throttled address");
	cr_assert_not_null(vrt_header(&r, "Retry-After"));
	vrt_resp_free(&r);
	login_from(api.base, "127.0.0.8", "t20@tenant-a", VRT_PASSWORD, &r);
	cr_assert_eq(r.status, 200, "another address: %ld\n%s", r.status, r.body);
	vrt_resp_free(&r);
	cr_assert_eq(vrt_api_stop(&api, 5), 0);
}
