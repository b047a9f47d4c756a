/* bench.h — helpers shared by the benchmark programs (header-only: the
 * Makefile builds each bench/NAME.c into its own binary).
 *
 * Every program prints its results as ROW lines on stdout, one per table
 * row, tab-separated:
 *
 *   ROW <id> <metric> <sbx> <baseline> <ratio> <target> <status>
 *
 * and its progress and diagnostics on stderr. bench/run.sh collects the
 * ROW lines of all programs and prints them as one aligned table. */
#ifndef SBX_BENCH_H
#define SBX_BENCH_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx.h"

extern char **environ;

/* ---------------------------------------------------------------- time */

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sorts v in place and returns its median. */
static inline double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Percentile (0..100) of an already sorted array (nearest rank). */
static inline double bench_pct(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
	if (k > 0)
		k--;
	if (k >= n)
		k = n - 1;
	return sorted[k];
}

/* ---------------------------------------------------------------- output */

static inline void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static inline void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void bench_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* One table row. status: "PASS", "MISS" or "info". */
static inline void bench_row(const char *id, const char *metric, const char *sbx, const char *base,
			     const char *ratio, const char *target, const char *status)
{
	printf("ROW\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, metric, sbx, base, ratio, target, status);
	fflush(stdout);
}

#define BENCH_FMT(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

/* ---------------------------------------------------------------- temp dir */

static char bench_tmp[4096];

static int bench_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void bench_tmp_cleanup(void)
{
	if (bench_tmp[0])
		nftw(bench_tmp, bench_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	bench_tmp[0] = 0;
}

/* Interrupted (Ctrl-C, a closed pipe): remove the temp dir all the same. */
static void bench_on_signal(int sig)
{
	bench_tmp_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* mkdtemp under $TMPDIR (else /tmp), removed at exit or on a fatal signal. */
/* The path of another bench program next to this one (argv0's
 * directory); dies when it is not built. */
static inline void bench_sibling(const char *argv0, const char *name, char *out, size_t len)
{
	const char *slash = strrchr(argv0, '/');
	int dirlen = slash ? (int)(slash - argv0 + 1) : 0;
	snprintf(out, len, "%.*s%s", dirlen, argv0, name);
	if (access(out, X_OK) != 0)
		bench_die("no %s (make it first)", out);
}

static inline const char *bench_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	if (!base || !base[0])
		base = "/tmp";
	snprintf(bench_tmp, sizeof bench_tmp, "%s/sbx-bench-%s-XXXXXX", base, tag);
	if (!mkdtemp(bench_tmp))
		bench_die("mkdtemp %s: %s", bench_tmp, strerror(errno));
	atexit(bench_tmp_cleanup);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], bench_on_signal);
	return bench_tmp;
}

/* ---------------------------------------------------------------- payloads */

/* Writes size bytes that no compressor shrinks (xorshift64*, seeded from
 * the clock) to path: a real, non-sparse source that moves every byte
 * through the link at full rate, as a sparse file (zeros: deflate makes
 * them nearly free) does not. */
static inline void bench_make_incompressible(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	static uint64_t buf[1 << 17]; /* 1 MiB */
	uint64_t x = bench_now_ns() | 1;
	for (uint64_t done = 0; done < size; done += sizeof buf) {
		for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			buf[i] = x * 0x2545f4914f6cdd1dull;
		}
		size_t n = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
		if (write(fd, buf, n) != (ssize_t)n)
			bench_die("writing %s: %s", path, strerror(errno));
	}
	if (close(fd) < 0)
		bench_die("writing %s: %s", path, strerror(errno));
}

/* ---------------------------------------------------------------- sessions */

static inline sbx_session *bench_session(sbx_loop *loop, const char *workdir, int compress)
{
	sbx_error err;
	sbx_local_opts lo = {.agent_path = sbx_default_agent_path(), .workdir = workdir, .host = 1};
	sbx_session_opts so = {.compress = compress};
	sbx_session *s = sbx_session_local(loop, &lo, &so, &err);
	if (!s)
		bench_die("cannot start the agent %s: %s", lo.agent_path, err.message);
	if (sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("agent did not become ready: %s", err.message);
	return s;
}

/* ---------------------------------------------------------------- processes */

/* Runs argv with stdin/stdout from the given fds (-1: inherit); returns pid. */
static inline pid_t bench_spawn(const char *const *argv, int in_fd, int out_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		bench_die("posix_spawn %s: %s", argv[0], strerror(rc));
	return pid;
}

static inline int bench_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			bench_die("waitpid: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1. */
static inline long bench_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			kb = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* The pid of our child whose command name is comm, or -1. */
static inline pid_t bench_find_child(const char *comm)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	pid_t self = getpid(), found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		/* pid (comm) state ppid ... ; comm may contain spaces */
		char *l = strchr(buf, '('), *r = strrchr(buf, ')');
		if (!l || !r)
			continue;
		int ppid = 0;
		if (sscanf(r + 1, " %*c %d", &ppid) != 1 || ppid != self)
			continue;
		if ((size_t)(r - l - 1) == strlen(comm) && strncmp(l + 1, comm, (size_t)(r - l - 1)) == 0)
			found = (pid_t)atoi(e->d_name);
	}
	closedir(d);
	return found;
}

#endif
