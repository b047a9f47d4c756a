/* keyfile.c — a sandbox's secret on disk (see keyfile.h). */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

#define TEXT_MAX (2 * SBX_AUTH_KEY_MAX + 16) /* hex plus some whitespace */

int sbx_keyfile_random(sbx_auth_key *k)
{
	k->len = SBX_AUTH_KEY_LEN;
	size_t got = 0;
	while (got < k->len) {
		ssize_t r = getrandom(k->bytes + got, k->len - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

int sbx_keyfile_write(const char *path, const sbx_auth_key *k, char *err, size_t err_len)
{
	char tmp[4200], text[TEXT_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, err_len, "secret file path too long: %.200s", path);
		return -1;
	}
	sbx_auth_key_format(k, text);
	strcat(text, "\n");
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t len = strlen(text); /* one short write to a new regular file: all or an error */
	int ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len;
	ok = fd >= 0 && close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		snprintf(err, err_len, "cannot write the secret file %.200s: %s", path, strerror(errno));
		unlink(tmp);
		ok = 0;
	}
	sbx_wipe(text, sizeof text);
	return ok ? 0 : -1;
}

int sbx_keyfile_create(const char *path, sbx_auth_key *k, char *err, size_t err_len)
{
	if (sbx_keyfile_random(k) < 0) {
		snprintf(err, err_len, "no random bytes for a secret: %s", strerror(errno));
		return -1;
	}
	if (sbx_keyfile_write(path, k, err, err_len) == 0)
		return 0;
	sbx_wipe(k, sizeof *k);
	return -1;
}

/* Reads to EOF (at most TEXT_MAX bytes) and parses. */
static int read_text(int fd, sbx_auth_key *k, const char *name, char *err, size_t err_len)
{
	char text[TEXT_MAX + 1];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, text + n, sizeof text - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, err_len, "cannot read the secret from %.200s: %s", name, strerror(errno));
			return -1;
		}
		if (r == 0 || (n += (size_t)r) == sizeof text)
			break;
	}
	int rc = n <= TEXT_MAX ? sbx_auth_key_parse(text, n, k) : -1;
	sbx_wipe(text, sizeof text);
	if (rc < 0)
		snprintf(err, err_len, "%.200s does not hold a secret (%d to %d bytes as hex digits)", name,
			 SBX_AUTH_KEY_MIN, SBX_AUTH_KEY_MAX);
	return rc;
}

int sbx_keyfile_read_fd(int fd, sbx_auth_key *k, char *err, size_t err_len)
{
	char name[32];
	snprintf(name, sizeof name, "fd %d", fd);
	return read_text(fd, k, name, err, err_len);
}

int sbx_keyfile_read(const char *path, sbx_auth_key *k, char *err, size_t err_len)
{
	return sbx_keyfile_read_also(path, 0, k, err, err_len);
}

int sbx_keyfile_read_also(const char *path, unsigned also, sbx_auth_key *k, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open the secret file %.200s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) < 0)
		snprintf(err, err_len, "cannot stat the secret file %.200s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(err, err_len, "the secret file %.200s is not a regular file", path);
	else if (st.st_mode & 077)
		snprintf(err, err_len, "the secret file %.200s is open to group or others (mode %04o): make it 0600",
			 path, (unsigned)(st.st_mode & 07777));
	else if (st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != also)
		snprintf(err, err_len, "the secret file %.200s belongs to uid %u, neither this user nor root", path,
			 (unsigned)st.st_uid);
	else
		rc = read_text(fd, k, path, err, err_len);
	close(fd);
	return rc;
}
