/* test_hostile.c — hostile agents against one host loop.
 *
 * Each case starts build/tests/hostile_agent (tests/tools/hostile_agent.c)
 * as a session next to three healthy local agents on the same loop, checks
 * the session answers an honest exec, then orders one attack and checks:
 *   - the attacked call completes exactly once, with a clear error;
 *   - only the hostile session failed (or, for a polite endless stream,
 *     only the call did);
 *   - the host's heap never grew more than HEAP_BOUND above where it was
 *     before the attack (sampled every 2 ms and at every callback);
 *   - on each healthy session, a streaming exec started before the attack
 *     finishes correctly after it, and a fresh exec works. */
#include <malloc.h>
#include <msgpack.h>

#include "it_util.h"

/* The most a hostile session may make the host hold, all buffers
 * together: its input frame (max_frame, 1 MiB), its output queue (the
 * session fails past 4 MiB; the buffer may be twice that), the output of
 * its exec (limited to 1 MiB here) and slack for allocator rounding. */
#define HEAP_BOUND (16u << 20)

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_in_use(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static sbx_loop *g_loop;
static char g_dir[128];
static char g_tool[PATH_MAX];
#define NHEALTHY 3
static sbx_session *g_healthy[NHEALTHY];

static size_t g_peak;
static sbx_timer *g_sampler;

static void sample(void)
{
	size_t h = heap_in_use();
	if (h > g_peak)
		g_peak = h;
}

static void on_sample(sbx_loop *loop, void *ud)
{
	(void)ud;
	sample();
	g_sampler = sbx_loop_timer(loop, 2, on_sample, NULL);
}

typedef struct rec {
	int done, ndone;
	sbx_exec_result res;
} rec;

static void rec_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	(void)ud, (void)fd, (void)p, (void)n;
	sample();
}

static void rec_done(void *ud, sbx_exec_result *res)
{
	rec *r = ud;
	sample();
	if (++r->ndone == 1) {
		r->res = *res;
		res->out = res->err = NULL;
	}
	r->done = 1;
}

typedef struct hostile_case {
	const char *before_hello; /* misbehave before the handshake */
	const char *attack;       /* else: the command that orders the attack */
	sbx_status status;        /* what the attacked call reports */
	const char *want[2];      /* substrings of the call's error message */
	const char *session_want; /* how the session fails; NULL: it must not */
	uint64_t dead_ms;         /* the session's dead_ms; 0: 8000 (roomy: loaded CI machines) */
	double timeout_s;         /* the attacked exec's timeout (sets overdue_ms to 1000) */
} hostile_case;

static const char *g_input; /* stdin for the attacked exec (noread) */
#define INPUT_LEN (32u << 20)

static void run_case(const hostile_case *hc)
{
	/* healthy sessions: a streaming `cat` in flight across the attack */
	static rec inflight[NHEALTHY];
	sbx_call *calls[NHEALTHY];
	const char *cat[] = {"cat", NULL};
	sbx_error err;
	for (int i = 0; i < NHEALTHY; i++) {
		inflight[i] = (rec){0};
		sbx_exec_opts o = {.argv = cat, .stream_stdin = 1, .on_done = rec_done, .ud = &inflight[i]};
		calls[i] = sbx_exec(g_healthy[i], &o, &err);
		CHECKF(calls[i], "%s", err.message);
		CHECK_EQ_INT(sbx_call_write_stdin(calls[i], "before\n", 7), 0);
	}

	const char *plain[] = {g_tool, NULL};
	const char *early[] = {g_tool, "--before-hello", hc->before_hello, NULL};
	sbx_session_opts so = {.ping_ms = 300, .dead_ms = hc->dead_ms ? hc->dead_ms : 8000,
			       .overdue_ms = hc->timeout_s > 0 ? 1000 : 0};
	sbx_session *s = sbx_session_command(g_loop, hc->before_hello ? early : plain, &so, &err);
	CHECKF(s, "%s", err.message);
	if (!hc->before_hello) {
		sbx_exec_result x = {0};
		const char *echo[] = {"echo", "honest", NULL};
		int rc = it_exec(s, &x, echo);
		int ok = rc == 0 && x.out && strcmp((char *)x.out, "honest\n") == 0;
		sbx_exec_result_free(&x);
		if (!ok)
			sbx_session_close(s);
		CHECKF(ok, "%s: the hostile agent did not answer honestly first: %s", hc->attack, x.error.message);
	}

	size_t base = heap_in_use();
	g_peak = base;
	g_sampler = sbx_loop_timer(g_loop, 2, on_sample, NULL);
	static rec r;
	r = (rec){0};
	const char *argv[] = {hc->attack ? hc->attack : "echo", "x", NULL};
	sbx_exec_opts o = {.argv = argv, .on_output = rec_output, .on_done = rec_done, .ud = &r,
			   .output_limit = 1u << 20, .timeout_s = hc->timeout_s};
	if (hc->attack && !strcmp(hc->attack, "noread")) {
		o.input = g_input;
		o.input_len = INPUT_LEN;
	}
	int started = sbx_exec(s, &o, &err) != NULL;
	if (started)
		it_run_until(g_loop, &r.done, 30);
	/* the session's own failure may come a little after the call's */
	uint64_t until = sbx_now_ms() + 30000;
	while (hc->session_want && !sbx_session_failure(s) && sbx_now_ms() < until)
		sbx_loop_run_once(g_loop, 50);
	sample();
	sbx_timer_cancel(g_loop, g_sampler);
	const sbx_error *f = sbx_session_failure(s);
	sbx_error failure = f ? *f : (sbx_error){0};
	sbx_session_close(s);
	size_t grew = g_peak - base;
	const char *name = hc->attack ? hc->attack : hc->before_hello;

	/* the healthy sessions did not notice */
	for (int i = 0; i < NHEALTHY; i++) {
		CHECK_EQ_INT(sbx_call_write_stdin(calls[i], "after\n", 6), 0);
		CHECK_EQ_INT(sbx_call_close_stdin(calls[i]), 0);
	}
	int all = 0;
	for (int i = 0; i < NHEALTHY; i++)
		CHECKF(it_run_until(g_loop, &inflight[i].done, 30) == 0, "%s: healthy call %d never finished", name, i);
	for (int i = 0; i < NHEALTHY; i++) {
		CHECKF(inflight[i].res.error.status == SBX_OK, "%s: healthy call %d: %s", name, i,
		       inflight[i].res.error.message);
		CHECK_EQ_STR((char *)inflight[i].res.out, "before\nafter\n");
		sbx_exec_result_free(&inflight[i].res);
		sbx_exec_result x = {0};
		const char *e[] = {"echo", "healthy", NULL};
		int rc = it_exec(g_healthy[i], &x, e);
		all += rc == 0 && strcmp((char *)x.out, "healthy\n") == 0;
		sbx_exec_result_free(&x);
	}
	CHECKF(all == NHEALTHY, "%s: a healthy session broke", name);

	CHECKF(started, "%s: %s", name, err.message);
	CHECKF(r.done, "%s: the call never completed", name);
	CHECK_EQ_INT(r.ndone, 1);
	CHECKF(r.res.error.status == hc->status, "%s: status %s: %s", name, sbx_status_name(r.res.error.status),
	       r.res.error.message);
	for (int i = 0; i < 2 && hc->want[i]; i++)
		CHECKF(strstr(r.res.error.message, hc->want[i]) != NULL, "%s: call error '%s' lacks '%s'", name,
		       r.res.error.message, hc->want[i]);
	if (hc->session_want)
		CHECKF(f && strstr(failure.message, hc->session_want) != NULL, "%s: session failure '%s' lacks '%s'",
		       name, failure.message, hc->session_want);
	else
		CHECKF(!f, "%s: the session failed: %s", name, failure.message);
	if (hc->status == SBX_E_LIMIT)
		CHECKF(r.res.truncated && r.res.out_len == 1u << 20, "%s: kept %zu bytes", name, r.res.out_len);
	sbx_exec_result_free(&r.res);
	if (base == 0) /* valgrind's allocator: mallinfo2 reports nothing */
		return;
	CHECKF(grew <= HEAP_BOUND, "%s: the host's heap grew by %zu bytes (bound %u)", name, grew, HEAP_BOUND);
	printf("     %-12s heap +%zu KiB (bound %u KiB)\n", name, grew / 1024, HEAP_BOUND / 1024);
}

static const hostile_case g_cases[] = {
	{NULL, "bigframe", SBX_E_CONN, {"protocol error", "frame of 4294967295 bytes"}, "frame of 4294967295", 0},
	{NULL, "truncated", SBX_E_CONN, {"protocol error", "msgpack"}, "msgpack", 0},
	{NULL, "garbage", SBX_E_CONN, {"protocol error", "frame of"}, "frame of", 0},
	{NULL, "badmsgpack", SBX_E_CONN, {"protocol error", "not a valid msgpack value"}, "not a valid msgpack", 0},
	{NULL, "unknown", SBX_E_CONN, {"protocol error", "unknown message type 127"}, "unknown message type", 0},
	{NULL, "unrequested", SBX_E_CONN, {"protocol error", "which has no request"}, "which has no request", 0},
	{NULL, "bomb", SBX_E_CONN, {"protocol error", "does not inflate to its declared 1000 bytes"}, "inflate", 0},
	/* output past the limit ends the call; past the credit, the session */
	{NULL, "endless", SBX_E_LIMIT, {"more than the output limit", "truncated"}, NULL, 0},
	{NULL, "flood", SBX_E_LIMIT, {"more than the output limit", NULL}, "exceeds its window", 0},
	/* a peer that never reads: stalled (it still PINGs), or drowning us in PONGs */
	{NULL, "noread", SBX_E_CONN, {"read nothing for", "stalled"}, "read nothing for", 1500},
	{NULL, "pingflood", SBX_E_CONN, {"not reading", "bytes are waiting"}, "not reading", 60000},
	/* a command the agent never ends, past its timeout: the host gives up on it */
	{NULL, "neverexits", SBX_E_TIMEOUT, {"did not end this call", "stuck or misbehaving"}, NULL, 0, 0.2},
	{NULL, "midframe", SBX_E_CONN, {"middle of a frame", "lost the agent"}, "middle of a frame", 0},
	{"garbage", NULL, SBX_E_CONN, {"protocol error", "frame of"}, "frame of", 0},
	{"badproto", NULL, SBX_E_CONN, {"protocol error", "protocol version 99"}, "protocol version 99", 0},
	{"silent", NULL, SBX_E_CONN, {"sent nothing for", "connection dead"}, "connection dead", 1500},
};

static const hostile_case *g_case;

static void test_case(void) { run_case(g_case); }

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const char *build = getenv("BUILD");
	snprintf(g_tool, sizeof g_tool, "%s/tests/hostile_agent", build && build[0] ? build : "build");
	if (access(g_tool, X_OK) < 0) {
		printf("FAIL setup: no %s (make tools)\n", g_tool);
		return 1;
	}
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "hostile");
	g_loop = sbx_loop_new();
	for (int i = 0; i < NHEALTHY; i++) {
		g_healthy[i] = it_local(g_loop, g_dir, 0);
		if (!g_healthy[i]) {
			printf("FAIL setup: no healthy agent\n");
			return 1;
		}
	}
	g_input = calloc(1, INPUT_LEN);
	for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
		g_case = &g_cases[i];
		char name[64];
		snprintf(name, sizeof name, "hostile_%s%s", g_case->before_hello ? "before_hello_" : "",
			 g_case->attack ? g_case->attack : g_case->before_hello);
		it_run_test(name, test_case);
	}
	free((void *)g_input);
	for (int i = 0; i < NHEALTHY; i++)
		sbx_session_close(g_healthy[i]);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
