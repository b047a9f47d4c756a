/* test_faults.c — the transport dies at a random moment while an exec, a
 * 100 MiB upload and a 100 MiB download are in flight; FAULT_ROUNDS times
 * (default 200; half of them each way):
 *
 *   cut:  the socket to a listening agent is shut down; the session
 *         reconnects, the command is re-attached and collected with all
 *         its output, exactly once; the transfers either completed or
 *         failed saying the target is unchanged;
 *   kill: a stdio agent is killed with SIGKILL; every call either
 *         completed or failed with a connection error.
 *
 * Always: every call reports exactly once; the upload's target and the
 * download's local file hold either their old bytes or all 100 MiB, never
 * a mix; no temporary file is left behind on the host (nor, for a cut, in
 * the sandbox, where the agent cleans up). The cut moment is drawn from a
 * seeded generator (FAULT_SEED) and printed, so a failure replays. */
#include "outcome.h"

#define BIG (100u << 20)
#define LINES 30

static sbx_loop *g_loop;
static char g_dir[128];
static uint8_t *g_pattern; /* the 100 MiB both transfers carry */
static uint64_t g_rng;

static uint64_t rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static const char *wd(const char *rel)
{
	static char b[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(b[k], sizeof b[k], "%s/%s", g_dir, rel);
	return b[k];
}

typedef struct round_calls {
	it_outcome ex, up, down;
} round_calls;

/* Starts the three calls of a round on s. */
static int start_calls(sbx_session *s, round_calls *rc, char *why, size_t len)
{
	memset(rc, 0, sizeof *rc);
	sbx_error err;
	static char script[200];
	snprintf(script, sizeof script, "i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); sleep 0.005; done",
		 LINES);
	const char *argv[] = {"sh", "-c", script, NULL};
	sbx_exec_opts eo = {.argv = argv, .on_done = it_on_exec, .ud = &rc->ex};
	sbx_file_opts up = SBX_FILE_OPTS_INIT;
	up.path = "up.bin";
	up.data = g_pattern;
	up.len = BIG;
	up.on_done = it_on_file;
	up.ud = &rc->up;
	sbx_file_opts down = SBX_FILE_OPTS_INIT;
	down.path = "source.bin";
	down.local_path = wd("local/down.bin");
	down.on_done = it_on_file;
	down.ud = &rc->down;
	if (!sbx_exec(s, &eo, &err) || !sbx_write_file(s, &up, &err) || !sbx_read_file(s, &down, &err)) {
		snprintf(why, len, "could not start: %s", err.message);
		return -1;
	}
	return 0;
}

static int all_done(const round_calls *rc) { return rc->ex.ndone && rc->up.ndone && rc->down.ndone; }

static int count_temps(void)
{
	char local[600];
	snprintf(local, sizeof local, "%s/local", g_dir);
	return it_count_entries(g_dir, ".sbx-") + it_count_entries(local, ".sbx-");
}

/* Checks what a round left behind; fills why on the first problem. */
static int check_round(round_calls *rc, int reattached, char *why, size_t len)
{
	for (int extra = 0; extra < 5; extra++) /* a second report would show up here */
		sbx_loop_run_once(g_loop, 2);
	if (rc->ex.ndone != 1 || rc->up.ndone != 1 || rc->down.ndone != 1) {
		snprintf(why, len, "calls reported %d/%d/%d times", rc->ex.ndone, rc->up.ndone, rc->down.ndone);
		return -1;
	}
	/* (cut before the EXEC reached the agent: the agent says so and the
	 * host sends it again, so it is collected whole like the others) */
	if (reattached || rc->ex.status == SBX_OK) {
		char want[LINES * 10];
		it_lines(want, sizeof want, LINES);
		if (rc->ex.status != SBX_OK || !rc->ex.out || strcmp(rc->ex.out, want) != 0) {
			snprintf(why, len, "the command was not collected whole: %s: %.80s", rc->ex.message,
				 rc->ex.out ? rc->ex.out : "(no output)");
			return -1;
		}
	} else if (rc->ex.status != SBX_E_CONN || !strstr(rc->ex.message, "lost the agent")) {
		snprintf(why, len, "exec: unclear failure %s: %s", sbx_status_name(rc->ex.status), rc->ex.message);
		return -1;
	}
	it_outcome *files[] = {&rc->up, &rc->down};
	for (int i = 0; i < 2; i++) {
		it_outcome *o = files[i];
		int clear = o->status == SBX_E_CONN &&
			    (reattached ? strstr(o->message, "target is unchanged") != NULL
					: strstr(o->message, "lost the agent") != NULL);
		if (o->status != SBX_OK && !clear) {
			snprintf(why, len, "%s: unclear failure %s: %s", i ? "download" : "upload",
				 sbx_status_name(o->status), o->message);
			return -1;
		}
	}
	const char *targets[] = {wd("up.bin"), wd("local/down.bin")};
	int left[2];
	for (int i = 0; i < 2; i++)
		if ((left[i] = it_whole_or_old(targets[i], g_pattern, BIG, why, len)) == IT_TORN)
			return -1;
	for (int i = 0; i < 2; i++) {
		if (files[i]->status == SBX_OK && left[i] != IT_WHOLE) {
			snprintf(why, len, "%s reported success but %s is not all there", i ? "download" : "upload",
				 targets[i]);
			return -1;
		}
	}
	return 0;
}

static void reset_targets(void)
{
	it_write_local(wd("up.bin"), "old", 3);
	it_write_local(wd("local/down.bin"), "old", 3);
}

static void free_round(round_calls *rc) { free(rc->ex.out); }

/* Waits (running the loop) until the calls are done and, where the agent
 * cleans up its own temp files, until none is left. */
static void settle(round_calls *rc, int want_no_temps)
{
	it_run_until(g_loop, &rc->ex.ndone, 60);
	it_run_until(g_loop, &rc->up.ndone, 60);
	it_run_until(g_loop, &rc->down.ndone, 60);
	uint64_t end = sbx_now_ms() + 5000;
	while (want_no_temps && count_temps() > 0 && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 10);
}

/* Runs the loop for about ms, or less if the calls finish first. */
static void run_a_while(round_calls *rc, uint64_t ms)
{
	uint64_t end = sbx_now_ms() + ms;
	while (sbx_now_ms() < end && !all_done(rc))
		sbx_loop_run_once(g_loop, 1);
}

static long g_rounds, g_seed;

/* When to strike, in ms after the calls started: mostly early (mid
 * transfer), one round in eight late enough that some calls finished. */
static uint64_t pick_moment(void)
{
	return rnd() % 8 == 0 ? 300 + rnd() % 1500 : rnd() % 300;
}

static void test_cut_listen_socket(void)
{
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_error err;
	sbx_session_opts so = {.reconnect = 1};
	char key[300];
	it_listener_opts(sock, &so, key, sizeof key);
	sbx_session *s = sbx_session_connect(g_loop, sock, &so, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0) {
		it_stop_listener(agent, SIGKILL);
		CHECKF(0, "%s", err.message);
	}
	int completed = 0, cut = 0;
	char why[700] = "";
	long n = g_rounds / 2;
	for (long i = 0; i < n && !why[0]; i++) {
		reset_targets();
		round_calls rc;
		if (start_calls(s, &rc, why, sizeof why) < 0)
			break;
		uint64_t at = pick_moment();
		run_a_while(&rc, at);
		int done_before = all_done(&rc);
		int reattached = 0;
		if (!done_before && it_cut_connection(sock) == 0) {
			cut++;
			reattached = 1;
		}
		settle(&rc, 1);
		if (check_round(&rc, reattached, why, sizeof why) == 0 && count_temps() > 0)
			snprintf(why, sizeof why, "%d temp files left", count_temps());
		if (why[0])
			snprintf(why + strlen(why), sizeof why - strlen(why), " (round %ld, cut at %llu ms, seed %ld)", i,
				 (unsigned long long)at, g_seed);
		completed += rc.up.status == SBX_OK;
		free_round(&rc);
		CHECKF(!sbx_session_failure(s), "the session gave up: %s", sbx_session_failure(s)->message);
	}
	sbx_session_close(s);
	it_stop_listener(agent, SIGTERM);
	printf("     cut: %ld rounds, %d cuts mid-flight, %d uploads completed\n", n, cut, completed);
	CHECKF(!why[0], "%.600s", why);
	CHECKF(cut > n / 4, "only %d of %ld rounds were cut mid-flight", cut, n);
}

static void test_kill_stdio_agent(void)
{
	int completed = 0, killed = 0;
	char why[700] = "";
	long n = g_rounds - g_rounds / 2;
	for (long i = 0; i < n && !why[0]; i++) {
		reset_targets();
		sbx_session *s = it_local(g_loop, g_dir, 0);
		CHECK(s);
		/* the agent's pid: the child that holds the other end */
		sbx_exec_result x = {0};
		const char *ppid[] = {"sh", "-c", "echo $PPID", NULL};
		int rc0 = it_exec(s, &x, ppid);
		pid_t agent = rc0 == 0 ? (pid_t)atoi((char *)x.out) : -1;
		sbx_exec_result_free(&x);
		round_calls rc;
		if (agent <= 0 || start_calls(s, &rc, why, sizeof why) < 0) {
			sbx_session_close(s);
			CHECKF(0, "round %ld: %.600s", i, why[0] ? why : "no agent pid");
		}
		uint64_t at = pick_moment();
		run_a_while(&rc, at);
		if (!all_done(&rc) && kill(agent, SIGKILL) == 0)
			killed++;
		settle(&rc, 0);
		/* the sandbox may keep a killed agent's temp file; the host none */
		char local[600];
		snprintf(local, sizeof local, "%s/local", g_dir);
		if (check_round(&rc, 0, why, sizeof why) == 0 && it_count_entries(local, ".sbx-") > 0)
			snprintf(why, sizeof why, "temp files left on the host");
		if (why[0])
			snprintf(why + strlen(why), sizeof why - strlen(why), " (round %ld, kill at %llu ms, seed %ld)",
				 i, (unsigned long long)at, g_seed);
		completed += rc.up.status == SBX_OK;
		free_round(&rc);
		sbx_session_close(s);
		char cmd[700];
		snprintf(cmd, sizeof cmd, "rm -f %s/.up.bin.sbx-*", g_dir); /* what the killed agent left */
		if (system(cmd) != 0)
			break;
	}
	printf("     kill: %ld rounds, %d kills mid-flight, %d uploads completed\n", n, killed, completed);
	CHECKF(!why[0], "%.600s", why);
	CHECKF(killed > n / 4, "only %d of %ld rounds were killed mid-flight", killed, n);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const char *r = getenv("FAULT_ROUNDS"), *sd = getenv("FAULT_SEED");
	g_rounds = r && r[0] ? atol(r) : 200;
	g_seed = sd && sd[0] ? atol(sd) : (long)time(NULL);
	g_rng = (uint64_t)g_seed * 2654435761u + 1;
	printf("     FAULT_ROUNDS=%ld FAULT_SEED=%ld\n", g_rounds, g_seed);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "faults");
	mkdir(wd("local"), 0755);
	g_pattern = malloc(BIG);
	it_fill_random(g_pattern, BIG, 42);
	if (it_write_local(wd("source.bin"), g_pattern, BIG) < 0) {
		printf("FAIL setup: cannot write %s\n", wd("source.bin"));
		return 1;
	}
	g_loop = sbx_loop_new();
	IT_RUN(test_cut_listen_socket);
	IT_RUN(test_kill_stdio_agent);
	sbx_loop_free(g_loop);
	free(g_pattern);
	it_rm_rf(g_dir);
	return test_summary();
}
