/* vrcloudctl: values taken from the command line and from stdin. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "vrcloud/err.h"

int vr_ctl_parse_switch(bool *value_out, const char *text)
{
	if (strcasecmp(text, "on") == 0) {
		*value_out = true;
		return 0;
	}
	if (strcasecmp(text, "off") == 0) {
		*value_out = false;
		return 0;
	}
	return VR_EINVAL;
}

int vr_ctl_read_password(char out[VR_PASSWORD_MAX + 1], FILE *in)
{
	/* room for VR_PASSWORD_MAX bytes plus a '\r' before the newline */
	char line[VR_PASSWORD_MAX + 2];
	size_t len = 0;
	int c, err = 0;

	while ((c = getc(in)) != EOF && c != '\n') {
		if (len == sizeof line) {
			err = VR_ETOOBIG;
			break;
		}
		if (c == '\0')
			err = VR_EINVAL;
		line[len++] = (char)c;
	}
	if (!err && ferror(in))
		err = VR_EIO;
	if (!err && len > 0 && line[len - 1] == '\r')
		len--;
	if (!err && len > VR_PASSWORD_MAX)
		err = VR_ETOOBIG;
	if (!err && len == 0)
		err = VR_EINVAL;
	if (!err) {
		memcpy(out, line, len);
		out[len] = '\0';
	} else {
		OPENSSL_cleanse(out, VR_PASSWORD_MAX + 1);
	}
	OPENSSL_cleanse(line, sizeof line);
	return err;
}

int vr_ctl_password_stdin(char out[VR_PASSWORD_MAX + 1], const char *command)
{
	struct termios saved, quiet;
	bool echo_off = false;
	int err;

	/* Someone typing: prompt on stderr and do not echo. */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fputs("Password: ", stderr);
		fflush(stderr);
		echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	errno = 0;
	err = vr_ctl_read_password(out, stdin);
	if (echo_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}

	switch (err) {
	case 0: break;
	case VR_EINVAL:
		vr_ctl_usage_error(command,
				   "the password read from standard input is empty or holds a NUL "
				   "byte; write the password on one line to standard input");
		break;
	case VR_ETOOBIG:
		vr_ctl_usage_error(command, "the password is longer than %d bytes",
				   VR_PASSWORD_MAX);
		break;
	default:
		vr_ctl_error("%s: cannot read the password from standard input: %s", command,
			     errno ? strerror(errno) : "read error");
		break;
	}
	return err;
}

int vr_ctl_random_password(char *out, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	const unsigned n = sizeof alphabet - 1; /* 62 */
	/* bytes >= limit are rejected, so every character is equally likely */
	const unsigned limit = 256 - 256 % n;
	unsigned char pool[64];
	size_t have = 0, used = 0, i = 0;

	while (i < len) {
		if (used == have) {
			if (RAND_bytes(pool, sizeof pool) != 1) {
				OPENSSL_cleanse(out, len + 1);
				return VR_EIO;
			}
			have = sizeof pool;
			used = 0;
		}
		unsigned b = pool[used++];
		if (b < limit)
			out[i++] = alphabet[b % n];
	}
	out[len] = '\0';
	OPENSSL_cleanse(pool, sizeof pool);
	return 0;
}
