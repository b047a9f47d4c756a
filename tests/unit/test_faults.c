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

static it_round_spec g_spec; /* set in main: 100 MiB each way, LINES lines 5 ms apart */

static const char *wd(const char *rel) { return it_path(g_dir, rel); }

/* Checks what a round left behind; fills why on the first problem. */
static int check_round(it_round *rc, int reattached, char *why, size_t len)
{
	if (it_round_reported_once(rc, why, len) < 0)
		return -1;
	/* (cut before the EXEC reached the agent: the agent says so and the
	 * host sends it again, so it is collected whole like the others) */
	if (reattached || rc->ex.status == SBX_OK) {
		if (!it_round_output_whole(rc, &g_spec)) {
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
	return it_round_targets(rc, &g_spec, why, len);
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
		it_round_reset(&g_spec);
		it_round rc;
		if (it_round_start(s, &rc, &g_spec, why, sizeof why) < 0)
			break;
		uint64_t at = pick_moment();
		it_round_run_a_while(g_loop, &rc, at);
		int done_before = it_round_done(&rc);
		int reattached = 0;
		if (!done_before && it_cut_connection(sock) == 0) {
			cut++;
			reattached = 1;
		}
		it_round_settle(g_loop, &rc, &g_spec, 60, 1);
		if (check_round(&rc, reattached, why, sizeof why) == 0 && it_round_temps(&g_spec) > 0)
			snprintf(why, sizeof why, "%d temp files left", it_round_temps(&g_spec));
		if (why[0])
			snprintf(why + strlen(why), sizeof why - strlen(why), " (round %ld, cut at %llu ms, seed %ld)", i,
				 (unsigned long long)at, g_seed);
		completed += rc.up.status == SBX_OK;
		it_round_free(&rc);
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
		it_round_reset(&g_spec);
		sbx_session *s = it_local(g_loop, g_dir, 0);
		CHECK(s);
		/* the agent's pid: the child that holds the other end */
		sbx_exec_result x = {0};
		const char *ppid[] = {"sh", "-c", "echo $PPID", NULL};
		int rc0 = it_exec(s, &x, ppid);
		pid_t agent = rc0 == 0 ? (pid_t)atoi((char *)x.out) : -1;
		sbx_exec_result_free(&x);
		it_round rc;
		if (agent <= 0 || it_round_start(s, &rc, &g_spec, why, sizeof why) < 0) {
			sbx_session_close(s);
			CHECKF(0, "round %ld: %.600s", i, why[0] ? why : "no agent pid");
		}
		uint64_t at = pick_moment();
		it_round_run_a_while(g_loop, &rc, at);
		if (!it_round_done(&rc) && kill(agent, SIGKILL) == 0)
			killed++;
		it_round_settle(g_loop, &rc, &g_spec, 60, 0);
		/* the sandbox may keep a killed agent's temp file; the host none */
		char local[600];
		snprintf(local, sizeof local, "%s/local", g_dir);
		if (check_round(&rc, 0, why, sizeof why) == 0 && it_count_entries(local, ".sbx-") > 0)
			snprintf(why, sizeof why, "temp files left on the host");
		if (why[0])
			snprintf(why + strlen(why), sizeof why - strlen(why), " (round %ld, kill at %llu ms, seed %ld)",
				 i, (unsigned long long)at, g_seed);
		completed += rc.up.status == SBX_OK;
		it_round_free(&rc);
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
	g_spec = (it_round_spec){.dir = g_dir, .pattern = g_pattern, .size = BIG, .lines = LINES, .sleep = "0.005"};
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
