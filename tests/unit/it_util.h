/* it_util.h — helpers shared by the integration tests (test_exec.c,
 * test_files.c, test_session.c): agent path, temp dirs, a loop runner with
 * a deadline, process scans by marker, SHA-256, and "skip" results.
 *
 * Header-only (the Makefile builds each test from one .c file); every
 * function is static and marked unused. */
#ifndef SBX_IT_UTIL_H
#define SBX_IT_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keyfile.h"
#include "sbx.h"
#include "sha256.h"
#include "test.h"

#define IT_UNUSED __attribute__((unused))

/* ---------------------------------------------------------------- running tests */

static int it_skip_now;
static char it_skip_why[256];

/* SKIP(why): the running test does not apply here; return from it. */
#define SKIP(...)                                                               \
	do {                                                                    \
		it_skip_now = 1;                                                \
		snprintf(it_skip_why, sizeof it_skip_why, __VA_ARGS__);         \
		return;                                                         \
	} while (0)

/* Like RUN(), but a test may SKIP (printed as "skip NAME: why", which
 * tests/run.sh counts). */
#define IT_RUN(fn) it_run_test(#fn, fn)

IT_UNUSED static void it_run_test(const char *name, void (*fn)(void))
{
	test_name_now = name;
	test_failed_now = 0;
	it_skip_now = 0;
	fn();
	if (test_failed_now) {
		test_failed_total++;
	} else if (it_skip_now) {
		printf("skip %s: %s\n", name, it_skip_why);
	} else {
		test_passed_total++;
		printf("ok   %s\n", name);
	}
	fflush(stdout);
}

/* CHECK with a printf-style explanation (shown on failure). */
#define CHECKF(cond, ...)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			char m_[700];                                           \
			int k_ = snprintf(m_, sizeof m_, "%s: ", #cond);        \
			snprintf(m_ + k_, sizeof m_ - (size_t)k_, __VA_ARGS__); \
			test_fail(__FILE__, __LINE__, m_);                      \
			return;                                                 \
		}                                                               \
	} while (0)

/* CHECK_ERR(err, status, code): an sbx_error of that status and code. */
#define CHECK_ERR(e, st, cd)                                                               \
	CHECKF((e).status == (st) && strcmp((e).code, (cd)) == 0,                          \
	       "got status %d (%s) code '%s' message '%s'", (int)(e).status,               \
	       sbx_status_name((e).status), (e).code, (e).message)

/* ---------------------------------------------------------------- paths */

/* The agent binary: $SBX_AGENT, else build/sbx-agent; made absolute (a
 * session with a workdir starts it from there). */
IT_UNUSED static const char *it_agent(void)
{
	static char path[PATH_MAX];
	if (path[0])
		return path;
	const char *p = getenv("SBX_AGENT");
	if (!p || !p[0])
		p = "build/sbx-agent";
	if (!realpath(p, path))
		snprintf(path, sizeof path, "%s", p);
	setenv("SBX_AGENT", path, 1); /* for commands like sh -c 'exec $SBX_AGENT' */
	return path;
}

IT_UNUSED static void it_tmpdir(char *out, size_t len, const char *tag)
{
	snprintf(out, len, "/tmp/sbx-it-%s-XXXXXX", tag);
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(2);
	}
	chmod(out, 0755);
}

static int it_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(p) < 0 ? 0 : 0;
	unlink(p);
	return 0;
}

IT_UNUSED static void it_rm_rf(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, it_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

IT_UNUSED static int it_write_local(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return close(fd);
}

/* Reads a whole local file (NUL-terminated); NULL on error. */
IT_UNUSED static uint8_t *it_read_local(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	uint8_t *b = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap + 1);
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			free(b);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = 0;
	*len = n;
	return b;
}

/* Number of entries in dir whose name contains needle. */
IT_UNUSED static int it_count_entries(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, needle))
			n++;
	closedir(d);
	return n;
}

/* ---------------------------------------------------------------- data */

/* Deterministic pseudo-random bytes (xorshift64*). */
IT_UNUSED static void it_fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t i = 0;
	while (i < n) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545F4914F6CDD1Dull;
		for (int k = 0; k < 8 && i < n; k++, i++)
			p[i] = (uint8_t)(v >> (8 * k));
	}
}

/* SHA-256 as hex (common/sha256.c), to compare with sha256sum run in the sandbox. */
IT_UNUSED static void it_sha256_hex(const void *data, size_t n, char out[65])
{
	uint8_t d[SBX_SHA256_LEN];
	sbx_sha256_digest(data, n, d);
	for (int k = 0; k < SBX_SHA256_LEN; k++)
		snprintf(out + 2 * k, 3, "%02x", d[k]);
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
IT_UNUSED static int it_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---------------------------------------------------------------- loop */

/* Runs the loop until *flag is set or timeout_s passed. 0 when set. */
IT_UNUSED static int it_run_until(sbx_loop *loop, const int *flag, double timeout_s)
{
	uint64_t end = sbx_now_ms() + (uint64_t)(timeout_s * 1000);
	while (!*flag) {
		if (sbx_now_ms() >= end)
			return -1;
		if (sbx_loop_run_once(loop, 50) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* Runs the loop for about ms milliseconds. */
IT_UNUSED static void it_run_for(sbx_loop *loop, uint64_t ms)
{
	uint64_t end = sbx_now_ms() + ms;
	while (sbx_now_ms() < end)
		sbx_loop_run_once(loop, 20);
}

/* A local session (agent as a child) that is ready, or NULL (err printed). */
/* An uncontained (host mode) local agent working in workdir: for tests of
 * the protocol and calls, which look at the host's files. Containment has
 * its own tests (test_containment.c, it_box below). */
IT_UNUSED static sbx_session *it_local(sbx_loop *loop, const char *workdir, int isolate)
{
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = workdir, .host = 1, .isolate = isolate};
	sbx_session *s = sbx_session_local(loop, &lo, NULL, &err);
	if (!s) {
		fprintf(stderr, "it_local: %s\n", err.message);
		return NULL;
	}
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		fprintf(stderr, "it_local: not ready: %s\n", err.message);
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

/* Runs argv (NULL-terminated list) with default options. */
IT_UNUSED static int it_exec(sbx_session *s, sbx_exec_result *r, const char *const *argv)
{
	sbx_exec_opts o = {.argv = argv};
	return sbx_exec_sync(s, &o, r);
}

/* ---------------------------------------------------------------- processes */

/* Pids of live (non-zombie) processes whose command line (NULs shown as
 * spaces) contains marker. Returns how many (up to max stored). */
IT_UNUSED static int it_procs_with(const char *marker, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	pid_t self = getpid();
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		char path[64], buf[4096];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		char *rp = strrchr(buf, ')');
		if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] == 0)
				buf[i] = ' ';
		buf[r] = 0;
		if (strstr(buf, marker)) {
			if (n < max && pids)
				pids[n] = (pid_t)pid;
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Waits up to timeout_s for no process to carry marker; returns how many
 * are left. */
IT_UNUSED static int it_wait_procs_gone(const char *marker, double timeout_s)
{
	uint64_t end = sbx_now_ms() + (uint64_t)(timeout_s * 1000);
	int n;
	while ((n = it_procs_with(marker, NULL, 0)) > 0 && sbx_now_ms() < end)
		usleep(20 * 1000);
	return n;
}

/* Kills (by pid) the processes this test started that carry marker,
 * scanning again until none is left (one may be between fork and exec). */
IT_UNUSED static void it_kill_marked(const char *marker)
{
	uint64_t end = sbx_now_ms() + 2000;
	for (;;) {
		pid_t pids[64];
		int n = it_procs_with(marker, pids, 64);
		for (int i = 0; i < n && i < 64; i++)
			kill(pids[i], SIGKILL);
		if (n <= 0 || sbx_now_ms() >= end)
			return;
		usleep(10 * 1000);
	}
}

/* A marker unique to this test run, e.g. for `sleep 100.<marker>`-style
 * arguments found later in /proc. Digits only. */
IT_UNUSED static const char *it_marker(char *buf, size_t len)
{
	static unsigned counter;
	snprintf(buf, len, "%d%03u", (int)getpid() % 100000, ++counter % 1000);
	return buf;
}

/* ---------------------------------------------------------------- listening agents */

/* The secret of the listener on path: path.key (what it_start_listener
 * gives the agent); so->secret_file points at key (kept by the caller). */
IT_UNUSED static void it_listener_opts(const char *path, sbx_session_opts *so, char *key, size_t key_len)
{
	snprintf(key, key_len, "%s.key", path);
	so->secret_file = key;
}

/* Starts `sbx-agent --listen path --secret-file path.key --workdir workdir`
 * (path.key made when missing; log: path.log) and waits until it accepts.
 * The pid, or -1. */
IT_UNUSED static pid_t it_start_listener(const char *path, const char *workdir)
{
	char log[300], key[300], err[300];
	snprintf(log, sizeof log, "%s.log", path);
	snprintf(key, sizeof key, "%s.key", path);
	sbx_auth_key k; /* a restarted agent keeps its secret, as under systemd */
	if (sbx_keyfile_read(key, &k, err, sizeof err) < 0 && sbx_keyfile_create(key, &k, err, sizeof err) < 0) {
		fprintf(stderr, "it_start_listener: %s\n", err);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		execl(it_agent(), it_agent(), "--listen", path, "--secret-file", key, "--workdir", workdir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	uint64_t end = sbx_now_ms() + 20000;
	while (sbx_now_ms() < end) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof sun.sun_path, "%.*s", (int)sizeof sun.sun_path - 1, path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

IT_UNUSED static void it_stop_listener(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, sig);
	waitpid(pid, NULL, 0);
}

/* The fds of this process connected to the unix socket at path. */
IT_UNUSED static int it_sockets_to(const char *path, int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		struct stat st;
		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		struct sockaddr_un sun;
		socklen_t len = sizeof sun;
		memset(&sun, 0, sizeof sun);
		if (getpeername(fd, (struct sockaddr *)&sun, &len) < 0 || sun.sun_family != AF_UNIX)
			continue;
		if (strcmp(sun.sun_path, path) == 0) {
			if (n < max)
				fds[n] = fd;
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Breaks the session's connection the way a network failure would. */
IT_UNUSED static int it_cut_connection(const char *path)
{
	int fds[4];
	int n = it_sockets_to(path, fds, 4);
	if (n != 1)
		return -1;
	return shutdown(fds[0], SHUT_RDWR);
}

#endif
