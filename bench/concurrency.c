/* concurrency.c — many calls on one agent connection.
 *
 *   burst     256 async sbx_exec of `echo x`, all in flight at once on
 *             one session; wall time until the last result arrived.
 *             Baseline: 256 posix_spawn of the same command from this
 *             process, all started before the first waitpid.
 *   hol       head-of-line blocking: a 1 GiB read_file (a real file of
 *             incompressible bytes written once and page-cached, into
 *             /dev/null through an fd: every byte crosses the link, none
 *             is deflated away as a sparse file's zeros were) runs on the
 *             session while sequential `true` execs on the same session
 *             record their latency, p50 and p99. Baseline: the same execs
 *             on the idle session. Target: p50 <= 5 ms. A stat of a file
 *             alternates with the execs: its round trip is the protocol's
 *             head-of-line delay alone, without the cost of starting a
 *             process. The transfer's rate meanwhile is set against the
 *             same read_file alone, so the row shows it ran at full speed.
 *   busy      control for hol: the same execs while two busy-looping
 *             processes (no transfer) keep both cores as busy as the
 *             transfer's two ends do: CPU contention alone. */
#include <signal.h>

#include "bench.h"

#define BURST 256
#define BURST_REPS 5
#define BIG (1024ull * 1024 * 1024)

static const char *const echo_argv[] = {"/bin/echo", "x", NULL};
static const char *const true_argv[] = {"/bin/true", NULL};

/* ---------------------------------------------------------------- burst */

typedef struct burst {
	int done, failed;
} burst;

static void burst_done(void *ud, sbx_exec_result *r)
{
	burst *b = ud;
	b->done++;
	if (r->error.status != SBX_OK || r->exit_code != 0 || r->out_len != 2 || memcmp(r->out, "x\n", 2) != 0)
		b->failed++;
}

static double run_burst(sbx_loop *loop, sbx_session *s)
{
	burst b = {0};
	sbx_exec_opts o = {.argv = echo_argv, .on_done = burst_done, .ud = &b};
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < BURST; i++) {
		sbx_error err;
		if (!sbx_exec(s, &o, &err))
			bench_die("sbx_exec: %s", err.message);
	}
	while (b.done < BURST)
		if (sbx_loop_run_once(loop, -1) < 0)
			bench_die("loop: %s", strerror(errno));
	uint64_t t1 = bench_now_ns();
	if (b.failed)
		bench_die("%d of %d concurrent execs failed", b.failed, BURST);
	return (double)(t1 - t0) / 1e6;
}

static double run_burst_spawn(void)
{
	pid_t pids[BURST];
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < BURST; i++)
		pids[i] = bench_spawn(echo_argv, -1, devnull);
	for (int i = 0; i < BURST; i++)
		if (bench_wait(pids[i]) != 0)
			bench_die("echo failed");
	uint64_t t1 = bench_now_ns();
	close(devnull);
	return (double)(t1 - t0) / 1e6;
}

/* ---------------------------------------------------------------- hol */

typedef struct bigread {
	int done;
	sbx_file_result r;
} bigread;

static void big_done(void *ud, sbx_file_result *r)
{
	bigread *b = ud;
	b->r = *r;
	r->data = NULL;
	b->done = 1;
}

static double stat_ms(sbx_session *s, const char *path)
{
	sbx_stat_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_stat_sync(s, path, &r) < 0 || !r.exists)
		bench_die("stat during transfer: %s", r.error.message);
	return (double)(bench_now_ns() - t0) / 1e6;
}

/* One 1 GiB read_file alone on the session (no execs): MB/s. */
static double read_alone_mb_s(sbx_session *s, const char *path)
{
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = path;
	o.fd = devnull;
	o.limit = UINT64_MAX;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_read_file_sync(s, &o, &r) < 0 || r.size != BIG)
		bench_die("1 GiB read_file alone: %s", r.error.message);
	uint64_t t1 = bench_now_ns();
	sbx_file_result_free(&r);
	close(devnull);
	return (double)BIG / ((double)(t1 - t0) / 1e9) / 1e6;
}

static double exec_true_ms(sbx_session *s)
{
	sbx_exec_opts o = {.argv = true_argv};
	sbx_exec_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_exec_sync(s, &o, &r) < 0 || r.exit_code != 0)
		bench_die("exec true during transfer: %s", r.error.message);
	uint64_t t1 = bench_now_ns();
	sbx_exec_result_free(&r);
	return (double)(t1 - t0) / 1e6;
}

/* Rows 3b-3f: what the execs (and stats) saw during the 1 GiB transfer. */
static void hol_rows(size_t nlat, double p50, double p99, double maxlat, double idle_p50, double idle_p99,
		     double busy_p50, double stat_p50, double stat_idle, double during_mbs, double alone_mbs)
{
	char m[200], a[64], b[64], c[64];
	bench_row("3b",
		  BENCH_FMT(m, "exec `true` latency during a 1 GiB read_file of incompressible bytes (%.0f MB/s) on the "
			       "same session, p50 of %zu (vs idle session)", during_mbs, nlat),
		  BENCH_FMT(a, "%.2f ms", p50), BENCH_FMT(b, "%.2f ms", idle_p50), BENCH_FMT(c, "%.2fx", p50 / idle_p50),
		  "<= 5 ms", p50 <= 5.0 ? "PASS" : "MISS");
	bench_row("3c", BENCH_FMT(m, "exec `true` latency during the same 1 GiB read_file, p99 of %zu (vs idle session; max %.2f ms)", nlat, maxlat),
		  BENCH_FMT(a, "%.2f ms", p99), BENCH_FMT(b, "%.2f ms", idle_p99), BENCH_FMT(c, "%.2fx", p99 / idle_p99), "-",
		  "info");
	bench_row("3d", "exec `true` latency, no transfer but 2 busy-loop processes: CPU contention alone, p50 (vs idle)",
		  BENCH_FMT(a, "%.2f ms", busy_p50), BENCH_FMT(b, "%.2f ms", idle_p50), BENCH_FMT(c, "%.2fx", busy_p50 / idle_p50),
		  "-", "info");
	bench_row("3e", "stat round trip during the same 1 GiB read_file, p50 (vs idle session): head-of-line delay alone",
		  BENCH_FMT(a, "%.2f ms", stat_p50), BENCH_FMT(b, "%.2f ms", stat_idle), BENCH_FMT(c, "%.1fx", stat_p50 / stat_idle),
		  "-", "info");
	bench_row("3f", "the same 1 GiB read_file of incompressible bytes: throughput while execs run (vs the read alone)",
		  BENCH_FMT(a, "%.0f MB/s", during_mbs), BENCH_FMT(b, "%.0f MB/s", alone_mbs),
		  BENCH_FMT(c, "%.0f%%", 100 * during_mbs / alone_mbs), "-", "info");
}

int main(void)
{
	const char *dir = bench_tmpdir("conc");
	sbx_loop *loop = sbx_loop_new();
	sbx_session *s = bench_session(loop, dir, 0);

	/* ---- burst */
	run_burst(loop, s); /* warm-up */
	run_burst_spawn();
	double bs[BURST_REPS], bp[BURST_REPS];
	for (int i = 0; i < BURST_REPS; i++) {
		bs[i] = run_burst(loop, s);
		bp[i] = run_burst_spawn();
	}
	double ms = bench_median(bs, BURST_REPS), mp = bench_median(bp, BURST_REPS);
	bench_log("%d concurrent execs: sbx median %.1f ms (%.0f/s), posix_spawn x%d median %.1f ms (%.0f/s)", BURST, ms,
		  BURST / ms * 1e3, BURST, mp, BURST / mp * 1e3);

	/* ---- idle latency, for reference */
	double idle[200];
	for (int i = 0; i < 20; i++)
		exec_true_ms(s);
	for (int i = 0; i < 200; i++)
		idle[i] = exec_true_ms(s);
	double midle = bench_median(idle, 200);
	static double sidle[200];
	for (int i = 0; i < 200; i++)
		sidle[i] = stat_ms(s, dir);
	double msidle = bench_median(sidle, 200);

	/* ---- latency under a 1 GiB transfer on the same connection */
	char big[4200];
	snprintf(big, sizeof big, "%s/big.random", dir);
	bench_make_incompressible(big, BIG);
	double alone_mbs = read_alone_mb_s(s, big); /* also warms the page cache */
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	static double lat[20000], slat[20000];
	size_t nlat = 0;
	double xfer_s = 0;
	int rounds = 0;
	/* At least 100 samples: a transfer that ends first is started again. */
	while (nlat < 100 && rounds < 5) {
		bigread b = {0};
		sbx_file_opts o = SBX_FILE_OPTS_INIT;
		o.path = big;
		o.fd = devnull;
		o.limit = UINT64_MAX;
		o.on_done = big_done;
		o.ud = &b;
		sbx_error err;
		uint64_t t0 = bench_now_ns();
		if (!sbx_read_file(s, &o, &err))
			bench_die("read_file: %s", err.message);
		/* let the transfer reach full speed first */
		while (sbx_loop_run_once(loop, 0) >= 0 && !b.done && bench_now_ns() - t0 < 20000000)
			;
		while (!b.done && nlat < sizeof lat / sizeof lat[0]) {
			slat[nlat] = stat_ms(s, big);
			lat[nlat++] = exec_true_ms(s);
		}
		while (!b.done)
			sbx_loop_run_once(loop, -1);
		uint64_t t1 = bench_now_ns();
		if (b.r.error.status != SBX_OK || b.r.size != BIG)
			bench_die("1 GiB read_file failed: %s (size %llu)", b.r.error.message,
				  (unsigned long long)b.r.size);
		xfer_s += (double)(t1 - t0) / 1e9;
		rounds++;
	}
	close(devnull);
	unlink(big);
	if (nlat == 0)
		bench_die("no exec finished during the transfer");
	double mlat = bench_median(lat, nlat);
	double mslat = bench_median(slat, nlat);
	double maxlat = lat[nlat > 0 ? nlat - 1 : 0], p99lat = bench_pct(lat, nlat, 99);
	double during_mbs = (double)BIG * rounds / xfer_s / 1e6;
	bench_log("exec latency during 1 GiB read_file of incompressible bytes: %zu samples over %d transfer(s) (%.0f "
		  "MB/s meanwhile, %.0f MB/s alone): median %.2f ms, p90 %.2f, p99 %.2f, max %.2f; idle median %.2f ms, "
		  "p99 %.2f",
		  nlat, rounds, during_mbs, alone_mbs, mlat, bench_pct(lat, nlat, 90), p99lat, maxlat, midle,
		  bench_pct(idle, 200, 99));
	bench_log("stat latency during the transfer: median %.2f ms, p90 %.2f, p99 %.2f; idle median %.2f ms", mslat,
		  bench_pct(slat, nlat, 90), bench_pct(slat, nlat, 99), msidle);

	/* ---- control: the same execs with the cores busy but no transfer */
	pid_t hogs[2];
	for (int i = 0; i < 2; i++)
		if ((hogs[i] = fork()) == 0)
			for (volatile unsigned long spin = 0;; spin++)
				;
	static double blat[100];
	for (int i = 0; i < 100; i++)
		blat[i] = exec_true_ms(s);
	for (int i = 0; i < 2; i++) {
		kill(hogs[i], SIGKILL);
		waitpid(hogs[i], NULL, 0);
	}
	double mblat = bench_median(blat, 100);
	bench_log("exec latency with 2 busy-loop processes and no transfer: median %.2f ms, p90 %.2f", mblat,
		  bench_pct(blat, 100, 90));

	char m[160], a[64], b2[64], c[64];
	bench_row("3a", BENCH_FMT(m, "%d concurrent execs of `echo x` on one session, wall (vs %d posix_spawn in parallel)", BURST, BURST),
		  BENCH_FMT(a, "%.0f ms = %.0f/s", ms, BURST / ms * 1e3), BENCH_FMT(b2, "%.0f ms = %.0f/s", mp, BURST / mp * 1e3),
		  BENCH_FMT(c, "%.2fx", ms / mp), "-", "info");
	hol_rows(nlat, mlat, p99lat, maxlat, midle, bench_pct(idle, 200, 99), mblat, mslat, msidle, during_mbs,
		 alone_mbs);

	sbx_session_close(s);
	sbx_loop_free(loop);
	return 0;
}
