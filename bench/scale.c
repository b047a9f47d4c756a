/* scale.c — many sandboxes on one host process: what each connected idle
 * sandbox costs the host in memory, and how many execs per second the
 * host drives across all of them at once.
 *
 *   argv[1]: number of agents (default 1000; local children, not isolated)
 *   argv[2]: number of execs spread over them (default 10000) */
#include <sys/resource.h>

#include "bench.h"

static long g_left, g_running, g_failed;

static void on_done(void *ud, sbx_exec_result *r);

static void start_one(sbx_session *s)
{
	if (g_left <= 0)
		return;
	g_left--;
	g_running++;
	const char *argv[] = {"true", NULL};
	sbx_exec_opts o = {.argv = argv, .on_done = on_done, .ud = s};
	sbx_error err;
	if (!sbx_exec(s, &o, &err))
		bench_die("exec: %s", err.message);
}

static void on_done(void *ud, sbx_exec_result *r)
{
	g_running--;
	if (r->error.status != SBX_OK || r->exit_code != 0)
		g_failed++;
	start_one(ud);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	long execs = argc > 2 ? atol(argv[2]) : 10000;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	const char *dir = bench_tmpdir("scale");
	sbx_loop *loop = sbx_loop_new();
	sbx_session **s = calloc((size_t)n, sizeof *s);

	/* one session first, so the loop and library are warm */
	s[0] = bench_session(loop, dir, 0);
	usleep(200 * 1000);
	long rss0 = bench_status_kb(0, "VmRSS");
	uint64_t t0 = bench_now_ns();
	for (long i = 1; i < n; i++)
		s[i] = bench_session(loop, dir, 0);
	uint64_t t1 = bench_now_ns();
	/* idle a little: heartbeats, nothing else */
	for (uint64_t end = sbx_now_ms() + 500; sbx_now_ms() < end;)
		sbx_loop_run_once(loop, 50);
	long rss1 = bench_status_kb(0, "VmRSS");
	double per = (double)(rss1 - rss0) / (double)(n - 1);
	bench_log("%ld agents connected in %.1f s; host VmRSS %ld KiB with one, %ld KiB with all: %.1f KiB each", n,
		  (double)(t1 - t0) / 1e9, rss0, rss1, per);
	char m[200], a[64], r[64];
	bench_row("5a", BENCH_FMT(m, "host RSS per connected idle sandbox (%ld local agents, VmRSS delta)", n),
		  BENCH_FMT(a, "%.1f KiB", per), "-", BENCH_FMT(r, "%.0f%% of target", 100.0 * per / 64), "<= 64 KiB",
		  per <= 64 ? "PASS" : "MISS");

	/* aggregate throughput: every sandbox busy, two execs in flight each */
	g_left = execs;
	uint64_t t2 = bench_now_ns();
	for (int k = 0; k < 2; k++)
		for (long i = 0; i < n; i++)
			start_one(s[i]);
	while (g_running > 0)
		sbx_loop_run_once(loop, -1);
	uint64_t t3 = bench_now_ns();
	double rate = (double)execs / ((double)(t3 - t2) / 1e9);
	bench_log("%ld execs of `true` over %ld sandboxes in %.1f s (%ld failed)", execs, n, (double)(t3 - t2) / 1e9,
		  g_failed);
	if (g_failed)
		bench_die("%ld execs failed", g_failed);
	bench_row("5b", BENCH_FMT(m, "aggregate exec `true` throughput, %ld sandboxes, 2 in flight each", n),
		  BENCH_FMT(a, "%.0f execs/s", rate), "-", "-", "-", "info");

	for (long i = 0; i < n; i++)
		sbx_session_close(s[i]);
	free(s);
	sbx_loop_free(loop);
	return 0;
}
