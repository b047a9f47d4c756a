/* exec.c — round trip of running /bin/true, three ways, interleaved:
 *
 *   sbx     sbx_exec_sync on one local session (agent on a socketpair)
 *   spawn   posix_spawn + waitpid of /bin/true from this process
 *   fresh   a fresh `sh -c 'true'` per call with pipes on stdin, stdout
 *           and stderr, read to EOF, waitpid: the model of a per-call
 *           transport such as `kubectl exec` run once per command
 *
 * Targets: sbx median <= 1.5x spawn median; fresh median >= 3x sbx median. */
#include "bench.h"

#define WARMUP 50
#define REPS_DEFAULT 500

static double run_sbx(sbx_session *s)
{
	static const char *const argv[] = {"/bin/true", NULL};
	sbx_exec_opts o = {.argv = argv};
	sbx_exec_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_exec_sync(s, &o, &r);
	uint64_t t1 = bench_now_ns();
	if (rc < 0 || r.exit_code != 0)
		bench_die("sbx exec of /bin/true failed: %s (exit %d)", r.error.message, r.exit_code);
	sbx_exec_result_free(&r);
	return (double)(t1 - t0) / 1e3;
}

static double run_spawn(void)
{
	static const char *const argv[] = {"/bin/true", NULL};
	uint64_t t0 = bench_now_ns();
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
	if (rc != 0)
		bench_die("posix_spawn: %s", strerror(rc));
	int code = bench_wait(pid);
	uint64_t t1 = bench_now_ns();
	if (code != 0)
		bench_die("/bin/true exited %d", code);
	return (double)(t1 - t0) / 1e3;
}

/* A per-call transport: new process, three pipes, drain both outputs. */
static double run_fresh(void)
{
	static const char *const argv[] = {"/bin/sh", "-c", "true", NULL};
	uint64_t t0 = bench_now_ns();
	int in[2], out[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		bench_die("pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		bench_die("posix_spawn sh: %s", strerror(rc));
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(in[1]); /* no input: EOF on stdin */
	char buf[4096];
	while (read(out[0], buf, sizeof buf) > 0)
		;
	while (read(err[0], buf, sizeof buf) > 0)
		;
	close(out[0]);
	close(err[0]);
	int code = bench_wait(pid);
	uint64_t t1 = bench_now_ns();
	if (code != 0)
		bench_die("sh -c true exited %d", code);
	return (double)(t1 - t0) / 1e3;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : REPS_DEFAULT;
	if (reps < 10)
		reps = 10;
	const char *dir = bench_tmpdir("exec");
	sbx_loop *loop = sbx_loop_new();
	sbx_session *s = bench_session(loop, dir, 0);

	for (int i = 0; i < WARMUP; i++) {
		run_sbx(s);
		run_spawn();
		run_fresh();
	}
	double *a = calloc((size_t)reps, sizeof *a), *b = calloc((size_t)reps, sizeof *b),
	       *c = calloc((size_t)reps, sizeof *c);
	/* Interleaved, so drift (frequency, page cache, other load) hits all three alike. */
	for (int i = 0; i < reps; i++) {
		a[i] = run_sbx(s);
		b[i] = run_spawn();
		c[i] = run_fresh();
	}
	double ma = bench_median(a, (size_t)reps), mb = bench_median(b, (size_t)reps),
	       mc = bench_median(c, (size_t)reps);
	bench_log("exec /bin/true, %d reps, us: sbx median %.1f p90 %.1f p99 %.1f | spawn median %.1f p90 %.1f | "
		  "sh -c median %.1f p90 %.1f",
		  reps, ma, bench_pct(a, (size_t)reps, 90), bench_pct(a, (size_t)reps, 99), mb,
		  bench_pct(b, (size_t)reps, 90), mc, bench_pct(c, (size_t)reps, 90));

	char v1[64], v2[64], v3[64], v4[64], m[128];
	bench_row("1a", BENCH_FMT(m, "exec /bin/true round trip, median of %d (sbx vs bare posix_spawn+waitpid)", reps),
		  BENCH_FMT(v1, "%.0f us", ma), BENCH_FMT(v2, "%.0f us", mb), BENCH_FMT(v3, "%.2fx", ma / mb),
		  "<= 1.50x", ma <= 1.5 * mb ? "PASS" : "MISS");
	bench_row("1b", BENCH_FMT(m, "exec /bin/true round trip, median of %d (sbx vs fresh `sh -c true` + 3 pipes per call)", reps),
		  BENCH_FMT(v1, "%.0f us", ma), BENCH_FMT(v4, "%.0f us", mc), BENCH_FMT(v3, "%.2fx faster", mc / ma),
		  ">= 3.00x faster", mc >= 3 * ma ? "PASS" : "MISS");
	bench_row("1c", "exec /bin/true round trip, p99 (sbx vs bare posix_spawn)",
		  BENCH_FMT(v1, "%.0f us", bench_pct(a, (size_t)reps, 99)),
		  BENCH_FMT(v2, "%.0f us", bench_pct(b, (size_t)reps, 99)),
		  BENCH_FMT(v3, "%.2fx", bench_pct(a, (size_t)reps, 99) / bench_pct(b, (size_t)reps, 99)), "-", "info");

	sbx_session_close(s);
	sbx_loop_free(loop);
	free(a);
	free(b);
	free(c);
	return 0;
}
