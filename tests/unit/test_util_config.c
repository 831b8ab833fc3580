/* Configuration: defaults, the INI file, error messages, flag overrides. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrcloud/config.h"
#include "vrcloud/err.h"

static char ini_path[64];

/* Write text to a new temporary file; its path is in ini_path. */
static const char *write_ini(const char *text)
{
	snprintf(ini_path, sizeof ini_path, "/tmp/vrcloud-config-XXXXXX");
	int fd = mkstemp(ini_path);
	cr_assert_geq(fd, 0);
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return ini_path;
}

static void remove_ini(void)
{
	if (ini_path[0])
		unlink(ini_path);
	ini_path[0] = '\0';
}

TestSuite(config, .fini = remove_ini);

Test(config, defaults)
{
	struct vr_config c;
	vr_config_init(&c);
	cr_assert_str_eq(c.listen, "127.0.0.1");
	cr_assert_eq(c.port, 8080);
	cr_assert_eq(c.threads, 2);
	cr_assert_eq(c.max_connections, 1024);
	cr_assert_null(c.public_url);
	cr_assert_null(c.pid_file);
	cr_assert_null(c.port_file);
	cr_assert_str_eq(c.database_uri, "postgresql:///vrcloud");
	cr_assert_str_eq(c.redis_uri, "redis://127.0.0.1:6379/0");
	cr_assert_eq(c.session_idle_timeout, 1800);
	cr_assert_eq(c.session_absolute_timeout, 86400);
	cr_assert_eq(c.login_window, 900);
	cr_assert_eq(c.login_max_failures_user, 5);
	cr_assert_eq(c.login_max_failures_addr, 30);
	cr_assert_eq(c.log_level, VR_LOG_INFO);
	cr_assert_null(c.log_file);
	cr_assert_eq(c.max_body_bytes, 1024 * 1024);
	cr_assert_eq(c.max_url_bytes, 8192);
	cr_assert_eq(c.max_header_bytes, 32768);
	vr_config_free(&c);
	vr_config_free(NULL);
}

Test(config, load_every_key)
{
	struct vr_config c;
	vr_config_init(&c);
	const char *path = write_ini("; vrcloud test configuration\n"
				     "[api]\n"
				     "listen = ::1\n"
				     "port = 9443\n"
				     "threads = 8\n"
				     "max_connections = 5000\n"
				     "public_url = https://p1v17-vcd.vchs.vmware.com:443\n"
				     "pid_file = /run/vrcloud/api.pid\n"
				     "port_file = /run/vrcloud/api.port\n"
				     "\n"
				     "[database]\n"
				     "uri = host=/run/postgresql dbname=vr user=vr\n"
				     "[redis]\n"
				     "uri = unix:///run/redis/redis.sock?db=3\n"
				     "[session]\n"
				     "idle_timeout = 600\n"
				     "absolute_timeout = 7200\n"
				     "[login]\n"
				     "window = 60\n"
				     "max_failures_per_user = 3\n"
				     "max_failures_per_address = 10\n"
				     "[log]\n"
				     "level = debug\n"
				     "file = /var/log/vrcloud/api.log\n"
				     "[limits]\n"
				     "max_body_bytes = 2048\n"
				     "max_url_bytes = 4096\n"
				     "max_header_bytes = 65536\n");
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c, path, &error), 0, "error: %s", error ? error : "");
	cr_assert_null(error);
	cr_assert_str_eq(c.listen, "::1");
	cr_assert_eq(c.port, 9443);
	cr_assert_eq(c.threads, 8);
	cr_assert_eq(c.max_connections, 5000);
	cr_assert_str_eq(c.public_url, "https://p1v17-vcd.vchs.vmware.com:443");
	cr_assert_str_eq(c.pid_file, "/run/vrcloud/api.pid");
	cr_assert_str_eq(c.port_file, "/run/vrcloud/api.port");
	cr_assert_str_eq(c.database_uri, "host=/run/postgresql dbname=vr user=vr");
	cr_assert_str_eq(c.redis_uri, "unix:///run/redis/redis.sock?db=3");
	cr_assert_eq(c.session_idle_timeout, 600);
	cr_assert_eq(c.session_absolute_timeout, 7200);
	cr_assert_eq(c.login_window, 60);
	cr_assert_eq(c.login_max_failures_user, 3);
	cr_assert_eq(c.login_max_failures_addr, 10);
	cr_assert_eq(c.log_level, VR_LOG_DEBUG);
	cr_assert_str_eq(c.log_file, "/var/log/vrcloud/api.log");
	cr_assert_eq(c.max_body_bytes, 2048);
	cr_assert_eq(c.max_url_bytes, 4096);
	cr_assert_eq(c.max_header_bytes, 65536);
	vr_config_free(&c);
}

Test(config, partial_file_keeps_other_defaults)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c, write_ini("[api]\nport = 0\n"), &error), 0);
	cr_assert_eq(c.port, 0, "0 asks for any free port");
	cr_assert_str_eq(c.listen, "127.0.0.1");
	cr_assert_eq(c.threads, 2);
	cr_assert_str_eq(c.database_uri, "postgresql:///vrcloud");
	vr_config_free(&c);
}

Test(config, empty_file)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c, write_ini(""), &error), 0);
	cr_assert_eq(c.port, 8080);
	vr_config_free(&c);
}

Test(config, empty_string_unsets)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_set(&c, "api", "public_url", "https://x.example", &error), 0);
	cr_assert_str_eq(c.public_url, "https://x.example");
	cr_assert_eq(vr_config_load(&c, write_ini("[api]\npublic_url =\n"), &error), 0);
	cr_assert_null(c.public_url);
	vr_config_free(&c);
}

/* Load text and expect VR_ECONFIG with exactly this message (the path
 * prefix replaced by "FILE"). */
static void expect_load_error(const char *text, const char *message)
{
	struct vr_config c;
	vr_config_init(&c);
	const char *path = write_ini(text);
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c, path, &error), VR_ECONFIG, "loaded: %s", text);
	cr_assert_not_null(error);
	size_t plen = strlen(path);
	cr_assert_eq(strncmp(error, path, plen), 0, "message without the path: %s", error);
	char got[512];
	snprintf(got, sizeof got, "FILE%s", error + plen);
	cr_expect_str_eq(got, message);
	free(error);
	vr_config_free(&c);
	remove_ini();
}

Test(config, bad_numbers)
{
	expect_load_error("[api]\nport = 70000\n",
			  "FILE:2: [api] port: '70000' is not a whole number from 0 to 65535");
	expect_load_error("[api]\n\nthreads = many\n",
			  "FILE:3: [api] threads: 'many' is not a whole number from 1 to 256");
	expect_load_error("[api]\nthreads = 0\n",
			  "FILE:2: [api] threads: '0' is not a whole number from 1 to 256");
	expect_load_error("[api]\nport = -1\n",
			  "FILE:2: [api] port: '-1' is not a whole number from 0 to 65535");
	expect_load_error("[api]\nport = 80x\n",
			  "FILE:2: [api] port: '80x' is not a whole number from 0 to 65535");
	expect_load_error("[api]\nport = 4294967377\n",
			  "FILE:2: [api] port: '4294967377' is not a whole number from 0 to 65535");
	expect_load_error("[session]\nidle_timeout = 5\n",
			  "FILE:2: [session] idle_timeout: '5' is not a whole number from 10 to "
			  "2678400");
	expect_load_error("[limits]\nmax_body_bytes =\n",
			  "FILE:2: [limits] max_body_bytes: '' is not a whole number from 1024 to "
			  "1073741824");
}

Test(config, bad_level)
{
	expect_load_error("[log]\nlevel = loud\n",
			  "FILE:2: [log] level: 'loud' is not one of debug, info, warn, error");
	expect_load_error("[log]\nlevel = INFO\n",
			  "FILE:2: [log] level: 'INFO' is not one of debug, info, warn, error");
}

Test(config, unknown_keys_and_sections)
{
	expect_load_error("[api]\ncolour = blue\n", "FILE:2: unknown setting [api] colour");
	expect_load_error("[apis]\nport = 1\n", "FILE:2: unknown setting [apis] port");
	expect_load_error("port = 1\n", "FILE:1: unknown setting [] port");
	/* a key of one section is not accepted in another */
	expect_load_error("[redis]\nport = 6379\n", "FILE:2: unknown setting [redis] port");
}

Test(config, first_error_is_reported)
{
	expect_load_error("[api]\nport = 1\nthreads = x\nport = y\n",
			  "FILE:3: [api] threads: 'x' is not a whole number from 1 to 256");
}

Test(config, syntax_error)
{
	expect_load_error("[api]\nthis line has no equals sign\n", "FILE:2: syntax error");
}

Test(config, missing_file)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c, "/nonexistent/vrcloud.ini", &error), VR_EIO);
	cr_assert_not_null(error);
	cr_assert_str_eq(error, "cannot read /nonexistent/vrcloud.ini: No such file or directory");
	free(error);
	/* error_out is optional */
	cr_assert_eq(vr_config_load(&c, "/nonexistent/vrcloud.ini", NULL), VR_EIO);
	vr_config_free(&c);
}

Test(config, flags_override_the_file)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_load(&c,
				    write_ini("[api]\nport = 9000\nlisten = 0.0.0.0\n"
					      "[log]\nlevel = warn\n"),
				    &error),
		     0);
	cr_assert_eq(c.port, 9000);
	cr_assert_eq(vr_config_set(&c, "api", "port", "9100", &error), 0);
	cr_assert_eq(vr_config_set(&c, "log", "level", "error", &error), 0);
	cr_assert_eq(vr_config_set(&c, "database", "uri", "postgresql:///other", &error), 0);
	cr_assert_eq(c.port, 9100);
	cr_assert_eq(c.log_level, VR_LOG_ERROR);
	cr_assert_str_eq(c.database_uri, "postgresql:///other");
	cr_assert_str_eq(c.listen, "0.0.0.0", "a key no flag names keeps the file's value");
	cr_assert_null(error);
	vr_config_free(&c);
}

Test(config, set_refuses_bad_values_and_keeps_old)
{
	struct vr_config c;
	vr_config_init(&c);
	char *error = NULL;
	cr_assert_eq(vr_config_set(&c, "api", "threads", "257", &error), VR_ECONFIG);
	cr_assert_str_eq(error, "[api] threads: '257' is not a whole number from 1 to 256");
	free(error);
	cr_assert_eq(c.threads, 2);

	error = NULL;
	cr_assert_eq(vr_config_set(&c, "log", "level", "verbose", &error), VR_ECONFIG);
	cr_assert_str_eq(error, "[log] level: 'verbose' is not one of debug, info, warn, error");
	free(error);
	cr_assert_eq(c.log_level, VR_LOG_INFO);

	error = NULL;
	cr_assert_eq(vr_config_set(&c, "api", "nope", "1", &error), VR_ECONFIG);
	cr_assert_str_eq(error, "unknown setting [api] nope");
	free(error);

	/* error_out is optional */
	cr_assert_eq(vr_config_set(&c, "api", "port", "x", NULL), VR_ECONFIG);
	cr_assert_eq(c.port, 8080);
	vr_config_free(&c);
}

Test(config, bounds_are_inclusive)
{
	struct vr_config c;
	vr_config_init(&c);
	cr_assert_eq(vr_config_set(&c, "api", "port", "65535", NULL), 0);
	cr_assert_eq(c.port, 65535);
	cr_assert_eq(vr_config_set(&c, "api", "threads", "256", NULL), 0);
	cr_assert_eq(c.threads, 256);
	cr_assert_eq(vr_config_set(&c, "api", "threads", "1", NULL), 0);
	cr_assert_eq(c.threads, 1);
	cr_assert_eq(vr_config_set(&c, "limits", "max_body_bytes", "1073741824", NULL), 0);
	cr_assert_eq(c.max_body_bytes, 1073741824u);
	cr_assert_eq(vr_config_set(&c, "limits", "max_body_bytes", "1073741825", NULL), VR_ECONFIG);
	vr_config_free(&c);
}
