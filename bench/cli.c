/* cli.c — the `sbx` command line's own cost: how long a process start of
 * the CLI takes next to a plain `sh -c true`, for `sbx --version` (start-up
 * alone: dynamic loading and relocation) and for `sbx exec BOX -- true` on a
 * local sandbox (start-up plus one connection and exec round trip).
 *
 *   build/bench/cli [REPS]     (SBX_BIN names the CLI; default build/sbx)
 *
 * Rows cli1, cli2: medians over REPS runs, printed as ratios (no target:
 * the machine's load moves both columns together). */
#include "bench.h"

/* Median wall time in ms of running argv (stdout to /dev/null) reps times. */
static double median_run_ms(const char *const *argv, int reps, int devnull)
{
	double *ms = calloc((size_t)reps, sizeof *ms);
	if (!ms)
		bench_die("out of memory");
	for (int i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();
		int rc = bench_wait(bench_spawn(argv, devnull, devnull));
		if (rc != 0)
			bench_die("%s exited %d", argv[0], rc);
		ms[i] = (double)(bench_now_ns() - t0) / 1e6;
	}
	double m = bench_median(ms, (size_t)reps);
	free(ms);
	return m;
}

static void row(const char *id, const char *metric, double sbx_ms, double base_ms)
{
	char a[32], b[32], r[32];
	bench_row(id, metric, BENCH_FMT(a, "%.2f ms", sbx_ms), BENCH_FMT(b, "%.2f ms", base_ms),
		  BENCH_FMT(r, "%.1fx", sbx_ms / base_ms), "-", "info");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 200;
	if (reps < 1)
		bench_die("usage: cli [REPS]");
	const char *sbx = getenv("SBX_BIN") && *getenv("SBX_BIN") ? getenv("SBX_BIN") : "build/sbx";
	setenv("SBX_STATE_DIR", bench_tmpdir("cli"), 1);
	int devnull = open("/dev/null", O_RDWR);
	const char *sh[] = {"/bin/sh", "-c", "true", NULL};
	const char *version[] = {sbx, "--version", NULL};
	const char *up[] = {sbx, "up", "bench", NULL};
	const char *exec[] = {sbx, "exec", "bench", "--", "true", NULL};
	const char *down[] = {sbx, "down", "bench", NULL};
	char metric[160];

	median_run_ms(version, 5, devnull); /* warm the page cache */
	double base = median_run_ms(sh, reps, devnull);
	double v = median_run_ms(version, reps, devnull);
	row("cli1", BENCH_FMT(metric, "`sbx --version` process start, median of %d (vs `sh -c true`)", reps), v, base);
	bench_log("sbx --version %.2f ms, sh -c true %.2f ms", v, base);

	if (bench_wait(bench_spawn(up, devnull, devnull)) != 0)
		bench_die("%s up bench failed (a local sandbox needs root and runc; see README)", sbx);
	median_run_ms(exec, 5, devnull);
	base = median_run_ms(sh, reps, devnull);
	double e = median_run_ms(exec, reps, devnull);
	bench_wait(bench_spawn(down, devnull, devnull));
	row("cli2", BENCH_FMT(metric, "`sbx exec BOX -- true` on a local box, median of %d (vs `sh -c true`)", reps), e, base);
	bench_log("sbx exec %.2f ms, sh -c true %.2f ms", e, base);
	return 0;
}
