/* vrcloud-worker's configuration: defaults, the INI file, flags over it,
 * the check of the whole, and the token file. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vrcloud/err.h"
#include "vrcloud/worker.h"

static char file_path[64];

/* Write text to a new temporary file (mode 0600); its path is file_path. */
static const char *write_file(const char *text)
{
	snprintf(file_path, sizeof file_path, "/tmp/vrcloud-worker-XXXXXX");
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

TestSuite(worker_config, .fini = remove_file);

Test(worker_config, defaults)
{
	struct vr_worker_config c;
	vr_worker_config_init(&c);
	char host[HOST_NAME_MAX + 1] = "";
	gethostname(host, sizeof host);
	cr_assert_str_eq(c.name, host);
	char traffic[HOST_NAME_MAX + 16];
	snprintf(traffic, sizeof traffic, "%s:44046", host);
	cr_assert_str_eq(c.traffic_address, traffic);
	cr_assert_str_eq(c.api_url, "http://127.0.0.1:8080");
	cr_assert_null(c.token_file);
	cr_assert_eq(c.concurrency, 4);
	cr_assert_eq(c.heartbeat_interval, 10);
	cr_assert_eq(c.claim_idle, 30000);
	cr_assert_eq(c.max_deliveries, 5);
	cr_assert_eq(c.shutdown_timeout, 30);
	cr_assert_eq(c.http_timeout, 30);
	cr_assert_eq(c.connect_timeout, 5);
	cr_assert_eq(c.block, 2000);
	cr_assert_eq(c.phase_delay, 0);
	cr_assert_str_eq(c.redis_uri, "redis://127.0.0.1:6379/0");
	cr_assert_str_eq(c.jobs_prefix, "vrcloud");
	cr_assert_eq(c.log_level, VR_LOG_INFO);
	cr_assert_null(c.log_file);
	cr_assert_null(c.pid_file);
	vr_worker_config_free(&c);
}

Test(worker_config, file_sets_every_key)
{
	const char *path = write_file("[worker]\n"
				      "name = worker-7\n"
				      "api_url = https://api.example.test:8443/\n"
				      "token_file = /etc/vrcloud/worker.token\n"
				      "traffic_address = 10.0.0.7:44046\n"
				      "concurrency = 9\n"
				      "heartbeat_interval = 3\n"
				      "claim_idle = 45000\n"
				      "max_deliveries = 7\n"
				      "shutdown_timeout = 0\n"
				      "http_timeout = 12\n"
				      "connect_timeout = 2\n"
				      "phase_delay = 250\n"
				      "pid_file = /run/vrcloud-worker.pid\n"
				      "[redis]\n"
				      "uri = unix:///run/redis.sock?db=2\n"
				      "[jobs]\n"
				      "prefix = test1\n"
				      "block = 500\n"
				      "[log]\n"
				      "level = debug\n"
				      "file = /var/log/vrcloud-worker.log\n");
	struct vr_worker_config c;
	vr_worker_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_worker_config_load(&c, path, &error), 0, "%s", error ? error : "");
	cr_assert_str_eq(c.name, "worker-7");
	cr_assert_str_eq(c.api_url, "https://api.example.test:8443/");
	cr_assert_str_eq(c.token_file, "/etc/vrcloud/worker.token");
	cr_assert_str_eq(c.traffic_address, "10.0.0.7:44046");
	cr_assert_eq(c.concurrency, 9);
	cr_assert_eq(c.heartbeat_interval, 3);
	cr_assert_eq(c.claim_idle, 45000);
	cr_assert_eq(c.max_deliveries, 7);
	cr_assert_eq(c.shutdown_timeout, 0);
	cr_assert_eq(c.http_timeout, 12);
	cr_assert_eq(c.connect_timeout, 2);
	cr_assert_eq(c.phase_delay, 250);
	cr_assert_str_eq(c.pid_file, "/run/vrcloud-worker.pid");
	cr_assert_str_eq(c.redis_uri, "unix:///run/redis.sock?db=2");
	cr_assert_str_eq(c.jobs_prefix, "test1");
	cr_assert_eq(c.block, 500);
	cr_assert_eq(c.log_level, VR_LOG_DEBUG);
	cr_assert_str_eq(c.log_file, "/var/log/vrcloud-worker.log");
	cr_assert_eq(vr_worker_config_check(&c, &error), 0, "%s", error ? error : "");
	vr_worker_config_free(&c);
}

Test(worker_config, flags_override_the_file)
{
	const char *path = write_file("[worker]\nname = from-file\nconcurrency = 2\n");
	struct vr_worker_config c;
	vr_worker_config_init(&c);
	cr_assert_eq(vr_worker_config_load(&c, path, NULL), 0);
	cr_assert_eq(vr_worker_config_set(&c, "worker", "name", "from-flag", NULL), 0);
	cr_assert_str_eq(c.name, "from-flag");
	cr_assert_eq(c.concurrency, 2);
	vr_worker_config_free(&c);
}

Test(worker_config, bad_values_say_where)
{
	const char *path = write_file("[worker]\nname = w1\nconcurrency = 0\n");
	struct vr_worker_config c;
	vr_worker_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_worker_config_load(&c, path, &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, ":3: [worker] concurrency: '0' is not a whole number "
					 "from 1 to 256"),
			   "%s", error);
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "worker", "claim_idle", "-5", &error), VR_ECONFIG);
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "worker", "heartbeat_interval", "10s", &error),
		     VR_ECONFIG);
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "jobs", "block", "5000", &error), VR_ECONFIG,
		     "a read may not block past the connection's timeout");
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "log", "level", "loud", &error), VR_ECONFIG);
	cr_assert_not_null(strstr(error, "debug, info, warn, error"));
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "worker", "threads", "3", &error), VR_ECONFIG);
	cr_assert_str_eq(error, "unknown setting [worker] threads");
	free(error);
	error = NULL;
	cr_assert_eq(vr_worker_config_set(&c, "api", "port", "3", &error), VR_ECONFIG);
	free(error);
	vr_worker_config_free(&c);
}

Test(worker_config, unreadable_file)
{
	struct vr_worker_config c;
	vr_worker_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_worker_config_load(&c, "/nonexistent/worker.ini", &error), VR_EIO);
	cr_assert_not_null(strstr(error, "/nonexistent/worker.ini"));
	free(error);
	vr_worker_config_free(&c);
}

/* A configuration that passes the check, to break one key at a time. */
static void valid(struct vr_worker_config *c)
{
	vr_worker_config_init(c);
	cr_assert_eq(vr_worker_config_set(c, "worker", "name", "worker-1", NULL), 0);
	cr_assert_eq(vr_worker_config_set(c, "worker", "token_file", "/tmp/t", NULL), 0);
}

static void expect_refused(const char *section, const char *key, const char *value,
			   const char *words)
{
	struct vr_worker_config c;
	valid(&c);
	cr_assert_eq(vr_worker_config_set(&c, section, key, value, NULL), 0);
	char *error = NULL;
	cr_assert_eq(vr_worker_config_check(&c, &error), VR_ECONFIG, "[%s] %s = %s", section, key,
		     value);
	cr_assert_not_null(strstr(error, words), "%s", error);
	free(error);
	vr_worker_config_free(&c);
}

Test(worker_config, check)
{
	struct vr_worker_config c;
	valid(&c);
	char *error = NULL;
	cr_assert_eq(vr_worker_config_check(&c, &error), 0, "%s", error ? error : "");
	vr_worker_config_free(&c);

	expect_refused("worker", "token_file", "", "token_file is required");
	expect_refused("worker", "name", "", "[worker] name");
	expect_refused("worker", "name", "-leading-dash", "[worker] name");
	expect_refused("worker", "name", "has space", "[worker] name");
	expect_refused("worker", "name", "a/b", "[worker] name");
	expect_refused("worker", "api_url", "ftp://api", "[worker] api_url");
	expect_refused("worker", "api_url", "http://user:pw@api:8080", "[worker] api_url");
	expect_refused("worker", "api_url", "http://", "[worker] api_url");
	expect_refused("worker", "api_url", "http://api/?x=1", "[worker] api_url");
	expect_refused("worker", "traffic_address", "", "traffic_address");
	expect_refused("redis", "uri", "http://redis", "[redis] uri");
	expect_refused("jobs", "prefix", "", "[jobs] prefix");
}

/* --- the token file --------------------------------------------------- */

Test(worker_config, token_is_trimmed)
{
	const char *path = write_file("  s3cr3t-token_value.1\n\n");
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose = true;
	char *error = NULL;
	cr_assert_eq(vr_worker_token_read(token, path, &loose, &error), 0);
	cr_assert_str_eq(token, "s3cr3t-token_value.1");
	cr_assert_not(loose, "mkstemp makes the file 0600");
}

Test(worker_config, token_file_readable_by_others_is_flagged)
{
	const char *path = write_file("tok\n");
	cr_assert_eq(chmod(path, 0644), 0);
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose = false;
	cr_assert_eq(vr_worker_token_read(token, path, &loose, NULL), 0);
	cr_assert(loose);
}

Test(worker_config, bad_tokens_are_refused_without_echo)
{
	static const char *const bad[] = {
		"", "  \n", "two tokens\n", "line1\nline2\n", "tab\there", "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *path = write_file(bad[i]);
		char token[VR_WORKER_MAX_TOKEN + 1];
		bool loose;
		char *error = NULL;
		cr_assert_eq(vr_worker_token_read(token, path, &loose, &error), VR_EINVAL,
			     "case %zu", i);
		cr_assert_str_eq(token, "");
		cr_assert_null(strstr(error, "two"), "%s", error);
		cr_assert_null(strstr(error, "line1"), "%s", error);
		free(error);
		remove_file();
	}
	char big[VR_WORKER_MAX_TOKEN + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const char *path = write_file(big);
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose;
	char *error = NULL;
	cr_assert_eq(vr_worker_token_read(token, path, &loose, &error), VR_EINVAL);
	cr_assert_not_null(strstr(error, "too long"), "%s", error);
	free(error);
}

Test(worker_config, token_of_the_longest_size)
{
	char longest[VR_WORKER_MAX_TOKEN + 1];
	memset(longest, 'y', VR_WORKER_MAX_TOKEN);
	longest[VR_WORKER_MAX_TOKEN] = '\0';
	const char *path = write_file(longest);
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose;
	cr_assert_eq(vr_worker_token_read(token, path, &loose, NULL), 0);
	cr_assert_eq(strlen(token), VR_WORKER_MAX_TOKEN);
}

Test(worker_config, missing_token_file)
{
	char token[VR_WORKER_MAX_TOKEN + 1];
	bool loose;
	char *error = NULL;
	cr_assert_eq(vr_worker_token_read(token, "/nonexistent/token", &loose, &error), VR_EIO);
	cr_assert_not_null(strstr(error, "/nonexistent/token"));
	free(error);
	cr_assert_eq(vr_worker_token_read(token, "/tmp", &loose, &error), VR_EINVAL);
	cr_assert_not_null(strstr(error, "not a regular file"));
	free(error);
}
