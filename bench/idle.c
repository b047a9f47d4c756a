/* idle.c — many idle sessions in one host process, all to one listening
 * agent (so the host side is what is measured): host RSS per idle session,
 * the loop's wake-ups while they idle, and the latency of many execs
 * started at once across them.
 *
 *   argv[1]: sessions (default 10000; scaled down to fit RLIMIT_NOFILE)
 *   argv[2]: execs started at once, one per session (default 1000)
 *   argv[3]: idle seconds over which wake-ups are counted (default 5) */
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

#define BATCH 256 /* connections opened before waiting for their handshakes */
#define RSS_TARGET_KIB 16.0
#define BURST_LIMIT_MS 300000

typedef struct lat {
	uint64_t t0;
	double ms;
	int failed;
	int done;
} lat;

static long g_running;

/* This process's user + system CPU time in ms. */
static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* The file descriptors this process may hold, raised to the hard limit. */
static long raise_fd_limit(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long)rl.rlim_cur;
}

static pid_t start_listener(const char *sock, const char *key, const char *dir)
{
	FILE *f = fopen(key, "w");
	if (!f)
		bench_die("cannot write %s", key);
	fchmod(fileno(f), 0600);
	uint8_t r[32];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		bench_die("getrandom failed");
	for (size_t i = 0; i < sizeof r; i++)
		fprintf(f, "%02x", r[i]);
	fputc('\n', f);
	fclose(f);
	const char *argv[] = {sbx_default_agent_path(), "--listen", sock, "--secret-file", key, "--workdir", dir, NULL};
	pid_t pid = bench_spawn(argv, -1, -1);
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10 * 1000);
	if (access(sock, F_OK) != 0)
		bench_die("the agent did not listen on %s", sock);
	return pid;
}

/* Opens n sessions, BATCH at a time, each batch waiting for its HELLOs. */
static void open_sessions(sbx_loop *loop, sbx_session **s, long n, const char *sock, const char *key)
{
	sbx_session_opts so = {.secret_file = key};
	for (long first = 0; first < n; first += BATCH) {
		long last = first + BATCH < n ? first + BATCH : n;
		for (long i = first; i < last; i++) {
			sbx_error err;
			s[i] = sbx_session_connect(loop, sock, &so, &err);
			if (!s[i])
				bench_die("session %ld: %s", i, err.message);
		}
		for (long i = first; i < last; i++) {
			sbx_error err;
			if (sbx_session_wait_ready(s[i], 60, &err) < 0)
				bench_die("session %ld not ready: %s", i, err.message);
		}
	}
}

static void on_done(void *ud, sbx_exec_result *r)
{
	lat *l = ud;
	l->ms = (double)(bench_now_ns() - l->t0) / 1e6;
	l->failed = r->error.status != SBX_OK || r->exit_code != 0;
	l->done = 1;
	g_running--;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* execs execs of `true` at once, on sessions spread evenly over s[0..n). */
static void burst(sbx_loop *loop, sbx_session **s, long n, long execs, double *p50, double *p99)
{
	lat *l = calloc((size_t)execs, sizeof *l);
	double *ms = calloc((size_t)execs, sizeof *ms);
	const char *argv[] = {"true", NULL};
	for (long i = 0; i < execs; i++) {
		sbx_exec_opts o = {.argv = argv, .on_done = on_done, .ud = &l[i]};
		sbx_error err;
		l[i].t0 = bench_now_ns();
		g_running++;
		if (!sbx_exec(s[i * n / execs], &o, &err))
			bench_die("exec: %s", err.message);
	}
	uint64_t give_up = sbx_now_ms() + BURST_LIMIT_MS;
	while (g_running > 0 && sbx_now_ms() < give_up)
		sbx_loop_run_once(loop, 1000);
	if (g_running > 0)
		bench_die("%ld of %ld execs still running after %d s", g_running, execs, BURST_LIMIT_MS / 1000);
	long failed = 0;
	for (long i = 0; i < execs; i++) {
		ms[i] = l[i].ms;
		failed += l[i].failed;
	}
	if (failed)
		bench_die("%ld of %ld execs failed", failed, execs);
	qsort(ms, (size_t)execs, sizeof *ms, cmp_double);
	*p50 = bench_pct(ms, (size_t)execs, 50);
	*p99 = bench_pct(ms, (size_t)execs, 99);
	free(ms);
	free(l);
}

int main(int argc, char **argv)
{
	long want = argc > 1 ? atol(argv[1]) : 10000;
	long execs = argc > 2 ? atol(argv[2]) : 1000;
	long idle_s = argc > 3 ? atol(argv[3]) : 5;
	long fds = raise_fd_limit();
	long n = want < fds - 64 ? want : fds - 64;
	if (n < want)
		bench_log("RLIMIT_NOFILE is %ld: %ld sessions instead of %ld", fds, n, want);
	if (execs > n)
		execs = n;
	const char *dir = bench_tmpdir("idle");
	char sock[4200], key[4200];
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(key, sizeof key, "%s/agent.key", dir);
	pid_t agent = start_listener(sock, key, dir);
	sbx_loop *loop = sbx_loop_new();
	sbx_session **s = calloc((size_t)n, sizeof *s);

	/* one session first, so the loop and library are warm */
	open_sessions(loop, s, 1, sock, key);
	usleep(200 * 1000);
	long rss0 = bench_status_kb(0, "VmRSS");
	uint64_t t0 = bench_now_ns();
	open_sessions(loop, s + 1, n - 1, sock, key);
	uint64_t t1 = bench_now_ns();
	/* past the handshakes' 1 s ticks: every session is idle now */
	for (uint64_t end = sbx_now_ms() + 1500; sbx_now_ms() < end;)
		sbx_loop_run_once(loop, 100);
	long rss1 = bench_status_kb(0, "VmRSS");
	double per = (double)(rss1 - rss0) / (double)(n - 1);
	bench_log("%ld sessions to one listening agent in %.1f s; host VmRSS %ld KiB with one, %ld KiB with all: "
		  "%.2f KiB each",
		  n, (double)(t1 - t0) / 1e9, rss0, rss1, per);

	sbx_loop_stats a, b;
	sbx_loop_get_stats(loop, &a);
	for (uint64_t end = sbx_now_ms() + (uint64_t)idle_s * 1000; sbx_now_ms() < end;)
		sbx_loop_run_once(loop, 1000);
	sbx_loop_get_stats(loop, &b);
	double wake_s = (double)(b.timer_wakeups - a.timer_wakeups) / (double)idle_s;
	double fire_s = (double)(b.timers_fired - a.timers_fired) / (double)idle_s;
	bench_log("idle %ld s: %.1f timer wake-ups/s, %.1f timer firings/s for %ld sessions (a 1 s tick per session "
		  "would be %ld/s)",
		  idle_s, wake_s, fire_s, n, n);

	double p50, p99;
	uint64_t t2 = bench_now_ns();
	double c2 = cpu_ms();
	burst(loop, s, n, execs, &p50, &p99);
	double host_cpu = cpu_ms() - c2;
	uint64_t t3 = bench_now_ns();
	bench_log("%ld execs of `true` at once over %ld idle sessions in %.2f s: p50 %.1f ms, p99 %.1f ms; host CPU "
		  "%.0f ms in all (%.0f us per exec: the rest is the one agent starting the commands)",
		  execs, n, (double)(t3 - t2) / 1e9, p50, p99, host_cpu, 1000 * host_cpu / (double)execs);

	char m[200], v[64], r[64];
	bench_row("5c", BENCH_FMT(m, "host RSS per idle session (%ld sessions, one listening agent, VmRSS delta)", n),
		  BENCH_FMT(v, "%.2f KiB", per), "-", BENCH_FMT(r, "%.0f%% of target", 100.0 * per / RSS_TARGET_KIB),
		  "<= 16 KiB", per <= RSS_TARGET_KIB ? "PASS" : "MISS");
	bench_row("5d", BENCH_FMT(m, "loop timer wake-ups/s while %ld sessions idle (firings/s: %.1f)", n, fire_s),
		  BENCH_FMT(v, "%.1f /s", wake_s), BENCH_FMT(r, "%ld /s (1 s tick each)", n), "-", "-", "info");
	bench_row("5e",
		  BENCH_FMT(m, "%ld execs `true` at once across %ld idle sessions (one agent starts them all): p50 / p99",
			    execs, n),
		  BENCH_FMT(v, "%.1f / %.1f ms", p50, p99), "-", "-", "-", "info");

	for (long i = 0; i < n; i++)
		sbx_session_close(s[i]);
	free(s);
	sbx_loop_free(loop);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	return 0;
}
