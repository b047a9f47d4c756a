/* pyexec.c — the C side of the Python benchmark (bench/python.py), which runs
 * it between its own rounds and compares:
 *
 *   pyexec seq N        N sequential sbx_exec_sync of `true` on one local
 *                       session, each followed by a bare posix_spawnp +
 *                       waitpid of `true` from this process (bench/exec.c's
 *                       baseline: the process start any exec pays);
 *                       prints each pair in us, `SBX SPAWN` a line
 *   pyexec conc S N     S local sessions, N async execs of `true` on each,
 *                       all in flight at once; prints the wall time in ms
 *
 * Sessions are plain local agents (not isolated), like the Python side's. */
#include "bench.h"

static const char *const true_argv[] = {"true", NULL};

/* One bare posix_spawnp + waitpid of `true`, in us. */
static double spawn_us(void)
{
	pid_t pid;
	uint64_t t0 = bench_now_ns();
	int rc = posix_spawnp(&pid, true_argv[0], NULL, NULL, (char *const *)true_argv, environ);
	if (rc != 0)
		bench_die("posix_spawnp true: %s", strerror(rc));
	if (bench_wait(pid) != 0)
		bench_die("true failed");
	return (double)(bench_now_ns() - t0) / 1e3;
}

static void run_seq(int n)
{
	const char *dir = bench_tmpdir("pyexec");
	sbx_loop *loop = sbx_loop_new();
	sbx_session *s = bench_session(loop, dir, 0);
	sbx_exec_opts o = {.argv = true_argv};
	for (int i = 0; i < n + 20; i++) { /* 20 warm-up calls */
		sbx_exec_result r;
		uint64_t t0 = bench_now_ns();
		if (sbx_exec_sync(s, &o, &r) < 0 || r.exit_code != 0)
			bench_die("exec true failed: %s", r.error.message);
		uint64_t t1 = bench_now_ns();
		sbx_exec_result_free(&r);
		double spawn = spawn_us();
		if (i >= 20)
			printf("%.1f %.1f\n", (double)(t1 - t0) / 1e3, spawn);
	}
	sbx_session_close(s);
	sbx_loop_free(loop);
}

typedef struct tally {
	int done, failed;
} tally;

static void conc_done(void *ud, sbx_exec_result *r)
{
	tally *t = ud;
	t->done++;
	if (r->error.status != SBX_OK || r->exit_code != 0)
		t->failed++;
}

static void run_conc(int nsess, int per)
{
	const char *dir = bench_tmpdir("pyconc");
	sbx_loop *loop = sbx_loop_new();
	sbx_session **s = calloc((size_t)nsess, sizeof *s);
	for (int i = 0; i < nsess; i++) {
		char wd[4200];
		snprintf(wd, sizeof wd, "%s/%d", dir, i);
		if (mkdir(wd, 0755) < 0)
			bench_die("mkdir %s: %s", wd, strerror(errno));
		s[i] = bench_session(loop, wd, 0);
	}
	tally t = {0};
	sbx_exec_opts o = {.argv = true_argv, .on_done = conc_done, .ud = &t};
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < nsess; i++)
		for (int j = 0; j < per; j++) {
			sbx_error err;
			if (!sbx_exec(s[i], &o, &err))
				bench_die("sbx_exec: %s", err.message);
		}
	while (t.done < nsess * per)
		if (sbx_loop_run_once(loop, -1) < 0)
			bench_die("loop: %s", strerror(errno));
	uint64_t t1 = bench_now_ns();
	if (t.failed)
		bench_die("%d of %d concurrent execs failed", t.failed, nsess * per);
	printf("%.1f\n", (double)(t1 - t0) / 1e6);
	for (int i = 0; i < nsess; i++)
		sbx_session_close(s[i]);
	free(s);
	sbx_loop_free(loop);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "seq") == 0)
		run_seq(atoi(argv[2]));
	else if (argc == 4 && strcmp(argv[1], "conc") == 0)
		run_conc(atoi(argv[2]), atoi(argv[3]));
	else
		bench_die("usage: pyexec seq N | pyexec conc SESSIONS PER_SESSION");
	return 0;
}
