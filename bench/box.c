/* box.c — what containment costs: local sandboxes as OCI containers (boxes)
 * against the plain host process they replaced, side by side.
 *
 *   b1  sandbox start (session created -> first exec answered), median of
 *       START_REPS, per runtime (runc/crun, and runsc where it starts) vs a
 *       host-mode agent
 *   b2  exec /bin/true round trip inside a box vs a host-mode agent (the
 *       agent is already inside: target <= 1.10x)
 *   b3  many boxes on one host process: the host's RSS per box (target
 *       <= 64 KiB), and the runtime's own per-box cost reported apart
 *
 *   argv[1]: boxes for b3 (default 1000)
 *   argv[2]: exec repeats for b2 (default 300) */
#include "bench.h"
#include "backends/local/box.h"

#define START_REPS 7

static sbx_session *start(sbx_loop *loop, const char *dir, int host, const char *runtime, int i)
{
	static const sbx_box_opts none;
	char where[4200];
	snprintf(where, sizeof where, "%s/%s-%d", dir, host ? "host" : runtime, i);
	if (host)
		mkdir(where, 0755);
	sbx_box_opts bo = none;
	bo.runtime = runtime;
	sbx_local_opts lo = {.agent_path = sbx_default_agent_path(), .workdir = where, .host = host, .box = &bo};
	sbx_error err;
	sbx_session *s = sbx_session_local(loop, &lo, NULL, &err);
	if (!s)
		bench_die("cannot start a %s sandbox: %s", host ? "host-mode" : runtime, err.message);
	return s;
}

static double exec_true_us(sbx_session *s)
{
	static const char *const argv[] = {"/bin/true", NULL};
	sbx_exec_opts o = {.argv = argv, .timeout_s = 30};
	sbx_exec_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_exec_sync(s, &o, &r);
	uint64_t t1 = bench_now_ns();
	if (rc < 0 || r.exit_code != 0)
		bench_die("exec /bin/true failed: %s", r.error.message);
	sbx_exec_result_free(&r);
	return (double)(t1 - t0) / 1e3;
}

/* Median ms from creating a session to its first exec's answer. */
static double start_ms(sbx_loop *loop, const char *dir, int host, const char *runtime)
{
	double v[START_REPS];
	for (int i = 0; i < START_REPS; i++) {
		uint64_t t0 = bench_now_ns();
		sbx_session *s = start(loop, dir, host, runtime, i);
		exec_true_us(s);
		v[i] = (double)(bench_now_ns() - t0) / 1e6;
		sbx_session_close(s);
	}
	return bench_median(v, START_REPS);
}

static int runtime_starts(sbx_loop *loop, const char *dir, const char *runtime)
{
	sbx_box_opts bo = {.runtime = runtime};
	char where[4200];
	snprintf(where, sizeof where, "%s/probe-%s", dir, runtime);
	sbx_local_opts lo = {.agent_path = sbx_default_agent_path(), .workdir = where, .box = &bo};
	sbx_error err;
	sbx_session *s = sbx_session_local(loop, &lo, NULL, &err);
	int ok = s && sbx_session_wait_ready(s, 20, &err) == 0;
	if (!ok)
		bench_log("%s does not start here: %s", runtime, err.message);
	if (s)
		sbx_session_close(s);
	return ok;
}

static void row_start(sbx_loop *loop, const char *dir, const char *runtime, const char *id, double host_ms)
{
	char m[160], a[32], b[32], r[32];
	double ms = start_ms(loop, dir, 0, runtime);
	bench_row(id, BENCH_FMT(m, "sandbox start, up to first exec answered (%s box vs host process)", runtime),
		  BENCH_FMT(a, "%.0f ms", ms), BENCH_FMT(b, "%.0f ms", host_ms), BENCH_FMT(r, "%.1fx", ms / host_ms), "-",
		  "info");
}

/* b2: interleaved exec round trips, box vs host mode. */
static void row_exec(sbx_loop *loop, const char *dir, const char *runtime, int reps)
{
	sbx_session *box = start(loop, dir, 0, runtime, 100), *host = start(loop, dir, 1, NULL, 100);
	double *vb = calloc((size_t)reps, sizeof *vb), *vh = calloc((size_t)reps, sizeof *vh);
	for (int i = 0; i < 30; i++) { /* warm up both */
		exec_true_us(box);
		exec_true_us(host);
	}
	for (int i = 0; i < reps; i++) {
		vb[i] = exec_true_us(box);
		vh[i] = exec_true_us(host);
	}
	double mb = bench_median(vb, (size_t)reps), mh = bench_median(vh, (size_t)reps);
	char m[160], a[32], b[32], r[32];
	bench_row("b2", BENCH_FMT(m, "exec /bin/true round trip, median of %d (%s box vs host-mode agent)", reps, runtime),
		  BENCH_FMT(a, "%.0f us", mb), BENCH_FMT(b, "%.0f us", mh), BENCH_FMT(r, "%.2fx", mb / mh), "<= 1.10x",
		  mb / mh <= 1.10 ? "PASS" : "MISS");
	free(vb);
	free(vh);
	sbx_session_close(box);
	sbx_session_close(host);
}

/* The RSS (KiB) of every process whose command line starts with prog. */
static long rss_of(const char *prog, long *count)
{
	DIR *d = opendir("/proc");
	long kb = 0;
	*count = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], cmd[256] = "";
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
		cmd[n] = 0;
		if (n && strcmp(cmd, prog) == 0) {
			kb += bench_status_kb(atoi(e->d_name), "VmRSS");
			(*count)++;
		}
	}
	if (d)
		closedir(d);
	return kb;
}

static void row_scale(sbx_loop *loop, const char *dir, const char *runtime, const char *runtime_path, long n)
{
	sbx_session **s = calloc((size_t)n, sizeof *s);
	s[0] = start(loop, dir, 0, runtime, 1000);
	exec_true_us(s[0]);
	long rss0 = bench_status_kb(0, "VmRSS");
	uint64_t t0 = bench_now_ns();
	for (long i = 1; i < n; i++)
		s[i] = start(loop, dir, 0, runtime, (int)(1000 + i));
	sbx_error err;
	for (long i = 1; i < n; i++)
		if (sbx_session_wait_ready(s[i], 60, &err) < 0)
			bench_die("box %ld did not start: %s", i, err.message);
	uint64_t t1 = bench_now_ns();
	for (uint64_t end = sbx_now_ms() + 500; sbx_now_ms() < end;)
		sbx_loop_run_once(loop, 50);
	long rss1 = bench_status_kb(0, "VmRSS"), procs = 0;
	long runtime_kb = rss_of(runtime_path, &procs);
	double per = (double)(rss1 - rss0) / (double)(n - 1);
	bench_log("%ld %s boxes started in %.1f s; host VmRSS %ld KiB with one, %ld KiB with all; %ld runtime "
		  "processes hold %ld KiB",
		  n, runtime, (double)(t1 - t0) / 1e9, rss0, rss1, procs, runtime_kb);
	char m[200], a[64], b[64];
	bench_row("b3", BENCH_FMT(m, "host RSS per contained idle sandbox (%ld %s boxes, VmRSS delta)", n, runtime),
		  BENCH_FMT(a, "%.1f KiB", per), "-", "-", "<= 64 KiB", per <= 64 ? "PASS" : "MISS");
	bench_row("b3r", BENCH_FMT(m, "the runtime's own RSS per box (%s processes left running / boxes)", runtime),
		  BENCH_FMT(b, "%.0f KiB", (double)runtime_kb / (double)n), "-", "-", "-", "info");
	for (long i = 0; i < n; i++)
		sbx_session_close(s[i]);
	free(s);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	int reps = argc > 2 ? atoi(argv[2]) : 300;
	if (geteuid() != 0) {
		bench_row("b1", "sandbox start (boxes need root for their limits here)", "-", "-", "-", "-", "info");
		return 0;
	}
	const char *dir = bench_tmpdir("box");
	chmod(dir, 0711);
	sbx_loop *loop = sbx_loop_new();
	char err[512];
	sbx_box b = {0};
	if (sbx_box_pick_runtime(&b, &(sbx_box_opts){0}, err, sizeof err) < 0)
		bench_die("%s", err);
	double host_ms = start_ms(loop, dir, 1, NULL);
	row_start(loop, dir, b.runtime, "b1", host_ms);
	if (runtime_starts(loop, dir, "runsc"))
		row_start(loop, dir, "runsc", "b1g", host_ms);
	row_exec(loop, dir, b.runtime, reps);
	row_scale(loop, dir, b.runtime, b.runtime_path, n);
	sbx_loop_free(loop);
	return 0;
}
