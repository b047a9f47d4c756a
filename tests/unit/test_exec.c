/* test_exec.c — exec semantics end to end: libsbx driving a real sbx-agent
 * (the local backend: the agent as a child process on a socketpair).
 *
 * Covers the Inspect sandbox contract of DESIGN.md ("Exec and file
 * semantics"): argv without a shell, stdin then EOF, env overlay, cwd,
 * users, timeouts (whole process group, grace period), exit codes, output
 * limits, background children, missing/non-executable commands, streaming
 * output and stdin, signals, cancel, and many calls at once.
 *
 * Needs root for the user tests (skipped otherwise). */
#include "it_util.h"

static sbx_loop *g_loop;
static sbx_session *g_s;
static char g_wd[128]; /* the sandbox's working directory */
static char g_self[PATH_MAX]; /* this program, for helper modes */

static int session_ok(void)
{
	return g_s && !sbx_session_failure(g_s);
}

#define NEED_SESSION() CHECKF(session_ok(), "the shared session is gone: %s", \
			      g_s && sbx_session_failure(g_s) ? sbx_session_failure(g_s)->message : "never started")

/* ---------------------------------------------------------------- basics */

static void test_argv_runs_without_shell(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a1[] = {"echo", "$HOME", "`id`", "*", "a;b", NULL};
	CHECK(it_exec(g_s, &r, a1) == 0);
	CHECK_EQ_STR((char *)r.out, "$HOME `id` * a;b\n");
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);

	/* arguments with spaces and quotes arrive as separate, intact words */
	const char *a2[] = {"printf", "[%s]", "a b", "'c'", "\"d\"", "", NULL};
	CHECK(it_exec(g_s, &r, a2) == 0);
	CHECK_EQ_STR((char *)r.out, "[a b]['c'][\"d\"][]");
	sbx_exec_result_free(&r);
}

static void test_exit_code_and_streams(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 7", NULL};
	CHECK(it_exec(g_s, &r, a) == 0); /* any exit code is a successful call */
	CHECK_EQ_INT(r.error.status, SBX_OK);
	CHECK_EQ_INT(r.exit_code, 7);
	CHECK_EQ_INT(r.signal, 0);
	CHECK_EQ_INT(r.timed_out, 0);
	CHECK_EQ_INT(r.truncated, 0);
	CHECK_EQ_STR((char *)r.out, "out1\nout2\n");
	CHECK_EQ_STR((char *)r.err, "err1\nerr2\n");
	CHECK_EQ_INT(r.out_len, 10);
	CHECK_EQ_INT(r.err_len, 10);
	sbx_exec_result_free(&r);

	/* no output at all: empty but valid (NUL-terminated) buffers */
	const char *t[] = {"true", NULL};
	CHECK(it_exec(g_s, &r, t) == 0);
	CHECK_EQ_INT(r.out_len, 0);
	CHECK_EQ_INT(r.err_len, 0);
	CHECK(r.out && r.out[0] == 0);
	sbx_exec_result_free(&r);
}

static void test_empty_argv_is_invalid(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {NULL};
	sbx_exec_opts o = {.argv = a};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
	sbx_exec_result_free(&r);
	sbx_exec_opts o2 = {.argv = NULL};
	CHECK(sbx_exec_sync(g_s, &o2, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
	sbx_exec_result_free(&r);
}

/* A request over the agent's frame limit is refused cleanly. */
static void test_request_too_large(void)
{
	NEED_SESSION();
	size_t n = 2u << 20;
	char *big = malloc(n + 1);
	CHECK(big);
	memset(big, 'a', n);
	big[n] = 0;
	sbx_exec_result r;
	const char *a[] = {"echo", big, NULL};
	int rc = it_exec(g_s, &r, a);
	free(big);
	CHECK(rc == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
	CHECK(strstr(r.error.message, "too large") != NULL);
	sbx_exec_result_free(&r);
	CHECK_EQ_INT(sbx_session_pending(g_s), 0);
	const char *e[] = {"echo", "fine", NULL};
	CHECK(it_exec(g_s, &r, e) == 0);
	CHECK_EQ_STR((char *)r.out, "fine\n");
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- stdin */

static void test_stdin_input_then_eof(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *cat[] = {"cat", NULL};
	sbx_exec_opts o = {.argv = cat, .input = "hello\nworld", .input_len = 11};
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0); /* returns: cat saw EOF */
	CHECK_EQ_STR((char *)r.out, "hello\nworld");
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);

	/* binary input with NULs, counted exactly */
	uint8_t bin[12345];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (uint8_t)(i * 7);
	const char *wc[] = {"wc", "-c", NULL};
	sbx_exec_opts o2 = {.argv = wc, .input = bin, .input_len = sizeof bin};
	CHECK(sbx_exec_sync(g_s, &o2, &r) == 0);
	CHECK_EQ_INT(atol((char *)r.out), 12345);
	sbx_exec_result_free(&r);

	/* no input: stdin is empty (not the agent's own stdin), cat ends at once */
	CHECK(it_exec(g_s, &r, cat) == 0);
	CHECK_EQ_INT(r.out_len, 0);
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);
	const char *rd[] = {"sh", "-c", "if read x; then echo got; else echo eof; fi", NULL};
	CHECK(it_exec(g_s, &r, rd) == 0);
	CHECK_EQ_STR((char *)r.out, "eof\n");
	sbx_exec_result_free(&r);
}

static void test_stdin_large(void)
{
	NEED_SESSION();
	size_t n = 50u * 1024 * 1024;
	uint8_t *data = malloc(n);
	CHECK(data);
	it_fill_random(data, n, 42);
	char want[65];
	it_sha256_hex(data, n, want);

	sbx_exec_result r;
	const char *sha[] = {"sha256sum", NULL};
	sbx_exec_opts o = {.argv = sha, .input = data, .input_len = n};
	int rc = sbx_exec_sync(g_s, &o, &r);
	char got[65] = "";
	if (r.out_len >= 64)
		memcpy(got, r.out, 64);
	sbx_exec_result_free(&r);

	const char *wc[] = {"wc", "-c", NULL};
	sbx_exec_opts o2 = {.argv = wc, .input = data, .input_len = n};
	sbx_exec_result r2;
	int rc2 = sbx_exec_sync(g_s, &o2, &r2);
	free(data);
	long count = r2.out ? atol((char *)r2.out) : -1;
	sbx_exec_result_free(&r2);
	CHECKF(rc == 0, "%s", r.error.message);
	CHECK_EQ_STR(got, want);
	CHECKF(rc2 == 0, "%s", r2.error.message);
	CHECK_EQ_INT(count, (long)n);
}

/* A command that does not read its stdin must not hang the call, even with
 * more input than any pipe holds. */
static void test_stdin_unread(void)
{
	NEED_SESSION();
	size_t n = 8u * 1024 * 1024;
	uint8_t *data = calloc(1, n);
	CHECK(data);
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "exec 0<&-; echo closed", NULL};
	sbx_exec_opts o = {.argv = a, .input = data, .input_len = n};
	int rc = sbx_exec_sync(g_s, &o, &r);
	free(data);
	CHECKF(rc == 0, "%s", r.error.message);
	CHECK_EQ_STR((char *)r.out, "closed\n");
	sbx_exec_result_free(&r);
	const char *t[] = {"true", NULL};
	data = calloc(1, n);
	sbx_exec_opts o2 = {.argv = t, .input = data, .input_len = n};
	rc = sbx_exec_sync(g_s, &o2, &r);
	free(data);
	CHECKF(rc == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- env, cwd */

static void test_env_overlay_this_call_only(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "echo \"[$SBX_IT_FOO][$SBX_IT_EMPTY][${SBX_IT_EMPTY+set}][$HOME]\";"
			   " echo \"$LANG|$PATH\"", NULL};
	CHECK(it_exec(g_s, &r, a) == 0);
	char before[512];
	snprintf(before, sizeof before, "%s", (char *)r.out);
	sbx_exec_result_free(&r);
	CHECK(strncmp(before, "[][][][", 7) == 0);
	const char *rest = strchr(before, '\n'); /* the variables the overlay leaves alone */
	CHECK(rest != NULL);

	const char *env[] = {"SBX_IT_FOO=bar baz=qux", "SBX_IT_EMPTY=", "HOME=/overlaid", NULL};
	sbx_exec_opts o = {.argv = a, .env = env};
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	/* the overlay adds and replaces; the rest of the agent's env stays */
	char want[600];
	snprintf(want, sizeof want, "[bar baz=qux][][set][/overlaid]%s", rest);
	CHECK_EQ_STR((char *)r.out, want);
	sbx_exec_result_free(&r);

	/* the next call sees the agent's environment again */
	CHECK(it_exec(g_s, &r, a) == 0);
	CHECK_EQ_STR((char *)r.out, before);
	sbx_exec_result_free(&r);

	/* PATH is there even when the overlay does not set it */
	const char *p[] = {"sh", "-c", "echo \"$PATH\"", NULL};
	CHECK(it_exec(g_s, &r, p) == 0);
	CHECK(strstr((char *)r.out, "/usr/bin") != NULL);
	sbx_exec_result_free(&r);
}

static void test_cwd(void)
{
	NEED_SESSION();
	char sub[256], want[300];
	snprintf(sub, sizeof sub, "%s/sub", g_wd);
	mkdir(sub, 0755);
	snprintf(sub, sizeof sub, "%s/sub/deeper", g_wd);
	CHECK(mkdir(sub, 0755) == 0 || errno == EEXIST);

	sbx_exec_result r;
	const char *pwd[] = {"pwd", "-P", NULL};
	/* default: the sandbox's working directory */
	CHECK(it_exec(g_s, &r, pwd) == 0);
	snprintf(want, sizeof want, "%s\n", g_wd);
	CHECK_EQ_STR((char *)r.out, want);
	sbx_exec_result_free(&r);

	const char *cases[][2] = {
		{"sub", "/sub"},
		{"sub/deeper", "/sub/deeper"},
		{"./sub/../sub/deeper/", "/sub/deeper"},
		{".", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sbx_exec_opts o = {.argv = pwd, .cwd = cases[i][0]};
		CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
		snprintf(want, sizeof want, "%s%s\n", g_wd, cases[i][1]);
		CHECKF(strcmp((char *)r.out, want) == 0, "cwd '%s' gave %s", cases[i][0], (char *)r.out);
		sbx_exec_result_free(&r);
	}
	sbx_exec_opts o = {.argv = pwd, .cwd = "/"};
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	CHECK_EQ_STR((char *)r.out, "/\n");
	sbx_exec_result_free(&r);
}

static void test_bad_cwd(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *t[] = {"true", NULL};
	sbx_exec_opts o = {.argv = t, .cwd = "/nonexistent-sbx-it"};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_cwd");
	CHECK_EQ_INT(r.error.err_no, ENOENT);
	CHECK(strstr(r.error.message, "/nonexistent-sbx-it") != NULL);
	CHECK_EQ_INT(r.timed_out, 0);
	sbx_exec_result_free(&r);

	/* relative: the message names the resolved path */
	sbx_exec_opts o2 = {.argv = t, .cwd = "no/such/dir"};
	CHECK(sbx_exec_sync(g_s, &o2, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_cwd");
	CHECK(strstr(r.error.message, "no/such/dir") != NULL);
	sbx_exec_result_free(&r);

	/* a file is not a working directory */
	char file[256];
	snprintf(file, sizeof file, "%s/plainfile", g_wd);
	CHECK(it_write_local(file, "x", 1) == 0);
	sbx_exec_opts o3 = {.argv = t, .cwd = "plainfile"};
	CHECK(sbx_exec_sync(g_s, &o3, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_cwd");
	CHECK_EQ_INT(r.error.err_no, ENOTDIR);
	sbx_exec_result_free(&r);

	/* and the session is fine afterwards */
	CHECK(it_exec(g_s, &r, t) == 0);
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- users */

static void test_user_switch(void)
{
	NEED_SESSION();
	if (geteuid() != 0)
		SKIP("needs root (the agent can only switch users as root)");
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "id -u; id -g; id -G; echo \"$HOME $USER $LOGNAME\"", NULL};
	sbx_exec_opts o = {.argv = a, .user = "nobody"};
	CHECKF(sbx_exec_sync(g_s, &o, &r) == 0, "%s", r.error.message);
	CHECK_EQ_STR((char *)r.out, "65534\n65534\n65534\n/nonexistent nobody nobody\n");
	sbx_exec_result_free(&r);

	o.user = "65534:65534";
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	CHECK(strncmp((char *)r.out, "65534\n65534\n65534\n", 18) == 0);
	sbx_exec_result_free(&r);

	/* a uid that is in no passwd file is accepted as is */
	o.user = "4321:4322";
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	CHECK(strncmp((char *)r.out, "4321\n4322\n4322\n", 15) == 0);
	sbx_exec_result_free(&r);

	o.user = "root";
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	CHECK(strncmp((char *)r.out, "0\n0\n", 4) == 0);
	sbx_exec_result_free(&r);

	/* the env overlay wins over the switched user's HOME */
	const char *env[] = {"HOME=/custom", NULL};
	sbx_exec_opts o2 = {.argv = a, .user = "nobody", .env = env};
	CHECK(sbx_exec_sync(g_s, &o2, &r) == 0);
	CHECK(strstr((char *)r.out, "/custom nobody nobody") != NULL);
	sbx_exec_result_free(&r);

	/* the user's own processes cannot do root things */
	const char *w[] = {"sh", "-c", "echo x > /root/sbx-it-denied", NULL};
	sbx_exec_opts o3 = {.argv = w, .user = "nobody"};
	CHECK(sbx_exec_sync(g_s, &o3, &r) == 0);
	CHECK(r.exit_code != 0);
	CHECK(strstr((char *)r.err, "ermission denied") != NULL);
	sbx_exec_result_free(&r);
}

static void test_unknown_user(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *t[] = {"true", NULL};
	sbx_exec_opts o = {.argv = t, .user = "no-such-user-sbx-it"};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_user");
	CHECK(strstr(r.error.message, "no-such-user-sbx-it") != NULL);
	sbx_exec_result_free(&r);

	o.user = "nobody:no-such-group-sbx-it";
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_user");
	CHECK(strstr(r.error.message, "no-such-group-sbx-it") != NULL);
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- timeouts */

static void test_timeout(void)
{
	NEED_SESSION();
	char m[32], arg[64];
	it_marker(m, sizeof m);
	snprintf(arg, sizeof arg, "100.%s", m);
	const char *a[] = {"sleep", arg, NULL};
	sbx_exec_result r;
	sbx_exec_opts o = {.argv = a, .timeout_s = 0.5};
	uint64_t t0 = sbx_now_ms();
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	uint64_t took = sbx_now_ms() - t0;
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	CHECK_EQ_INT(r.timed_out, 1);
	CHECK(strstr(r.error.message, "timed out") != NULL);
	sbx_exec_result_free(&r);
	CHECKF(took < 20000, "took %llu ms", (unsigned long long)took);
	char pat[80];
	snprintf(pat, sizeof pat, "sleep %s", arg);
	CHECK_EQ_INT(it_wait_procs_gone(pat, 5), 0);
}

/* SIGTERM goes to the whole process group: background children too, and
 * one that ignores SIGTERM is killed once the main process is gone. */
static void test_timeout_kills_process_group(void)
{
	NEED_SESSION();
	char m[32], pat[80], script[256];
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "sleep 100.%s & sleep 100.%s & sleep 100.%s", m, m, m);
	snprintf(pat, sizeof pat, "sleep 100.%s", m);
	const char *a[] = {"sh", "-c", script, NULL};
	sbx_exec_result r;
	sbx_exec_opts o = {.argv = a, .timeout_s = 0.8};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	sbx_exec_result_free(&r);
	int left = it_wait_procs_gone(pat, 5);
	it_kill_marked(pat);
	CHECKF(left == 0, "%d sleep processes of the timed-out group survived", left);

	/* a background child that ignores SIGTERM, main process that does not */
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "(trap '' TERM; exec sleep 100.%s) & exec sleep 100.%s", m, m);
	snprintf(pat, sizeof pat, "sleep 100.%s", m);
	const char *b[] = {"sh", "-c", script, NULL};
	sbx_exec_opts o2 = {.argv = b, .timeout_s = 1.0, .grace_s = 30};
	uint64_t t0 = sbx_now_ms();
	CHECK(sbx_exec_sync(g_s, &o2, &r) == -1);
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	sbx_exec_result_free(&r);
	CHECKF(sbx_now_ms() - t0 < 25000, "waited for the grace period although the main process ended");
	left = it_wait_procs_gone(pat, 5);
	it_kill_marked(pat);
	CHECKF(left == 0, "%d processes of the timed-out group survived", left);
}

/* A command that handles SIGTERM and exits 0 still timed out; its output
 * up to then is kept. */
static void test_timeout_grace_trap(void)
{
	NEED_SESSION();
	const char *a[] = {"sh", "-c", "trap 'echo term; exit 0' TERM; echo started; while :; do sleep 0.05; done", NULL};
	sbx_exec_result r;
	sbx_exec_opts o = {.argv = a, .timeout_s = 0.5, .grace_s = 10};
	uint64_t t0 = sbx_now_ms();
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	CHECK_EQ_INT(r.timed_out, 1);
	CHECK_EQ_STR((char *)r.out, "started\nterm\n");
	sbx_exec_result_free(&r);
	CHECKF(sbx_now_ms() - t0 < 9000, "the command exited on SIGTERM, yet the call waited for the grace period");

	/* ignoring SIGTERM: SIGKILL after the grace period */
	char m[32], script[128], pat[64];
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "trap '' TERM; sleep 100.%s", m);
	snprintf(pat, sizeof pat, "sleep 100.%s", m);
	const char *b[] = {"sh", "-c", script, NULL};
	sbx_exec_opts o2 = {.argv = b, .timeout_s = 0.3, .grace_s = 0.3};
	t0 = sbx_now_ms();
	CHECK(sbx_exec_sync(g_s, &o2, &r) == -1);
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	CHECK_EQ_INT(r.timed_out, 1);
	CHECK_EQ_INT(r.signal, SIGKILL);
	sbx_exec_result_free(&r);
	CHECK(sbx_now_ms() - t0 < 20000);
	int left = it_wait_procs_gone(pat, 5);
	it_kill_marked(pat);
	CHECK_EQ_INT(left, 0);
}

static void test_exit_137_is_ordinary(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "kill -9 $$", NULL};
	CHECK(it_exec(g_s, &r, a) == 0);
	CHECK_EQ_INT(r.error.status, SBX_OK);
	CHECK_EQ_INT(r.exit_code, 137);
	CHECK_EQ_INT(r.signal, 9);
	CHECK_EQ_INT(r.timed_out, 0);
	sbx_exec_result_free(&r);
	const char *b[] = {"sh", "-c", "exit 137", NULL};
	CHECK(it_exec(g_s, &r, b) == 0);
	CHECK_EQ_INT(r.exit_code, 137);
	CHECK_EQ_INT(r.signal, 0);
	sbx_exec_result_free(&r);
	/* a timeout on a command that finishes in time changes nothing */
	const char *c[] = {"sh", "-c", "exit 3", NULL};
	sbx_exec_opts o = {.argv = c, .timeout_s = 30};
	CHECK(sbx_exec_sync(g_s, &o, &r) == 0);
	CHECK_EQ_INT(r.exit_code, 3);
	CHECK_EQ_INT(r.timed_out, 0);
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- output */

static void test_output_limit(void)
{
	NEED_SESSION();
	size_t lim = 1024 * 1024;
	sbx_exec_result r;
	const char *y[] = {"yes", NULL};
	sbx_exec_opts o = {.argv = y, .output_limit = lim, .timeout_s = 60};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "output_limit");
	CHECK_EQ_INT(r.truncated, 1);
	CHECK_EQ_INT(r.timed_out, 0);
	CHECK_EQ_INT(r.out_len, lim);
	for (size_t i = 0; i < r.out_len; i++)
		CHECKF(r.out[i] == (i % 2 ? '\n' : 'y'), "byte %zu is %d", i, r.out[i]);
	sbx_exec_result_free(&r);

	/* stderr has its own limit */
	const char *ye[] = {"sh", "-c", "echo fine; yes err >&2", NULL};
	sbx_exec_opts o2 = {.argv = ye, .output_limit = lim, .timeout_s = 60};
	CHECK(sbx_exec_sync(g_s, &o2, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "output_limit");
	CHECK_EQ_INT(r.err_len, lim);
	CHECK_EQ_STR((char *)r.out, "fine\n");
	sbx_exec_result_free(&r);

	/* exactly the limit is not over it */
	const char *ex[] = {"head", "-c", "1048576", "/dev/zero", NULL};
	sbx_exec_opts o3 = {.argv = ex, .output_limit = lim};
	CHECK(sbx_exec_sync(g_s, &o3, &r) == 0);
	CHECK_EQ_INT(r.truncated, 0);
	CHECK_EQ_INT(r.out_len, lim);
	sbx_exec_result_free(&r);

	/* the default limit is 10 MiB per stream */
	const char *big[] = {"head", "-c", "11000000", "/dev/zero", NULL};
	CHECK(it_exec(g_s, &r, big) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "output_limit");
	CHECK_EQ_INT(r.out_len, SBX_DEFAULT_OUTPUT_LIMIT);
	sbx_exec_result_free(&r);
}

static void test_background_child_holding_pipes(void)
{
	NEED_SESSION();
	char m[32], script[128], pat[64];
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "echo $$; sleep 30.%s & echo done", m);
	snprintf(pat, sizeof pat, "sleep 30.%s", m);
	const char *a[] = {"sh", "-c", script, NULL};
	sbx_exec_result r;
	uint64_t t0 = sbx_now_ms();
	int rc = it_exec(g_s, &r, a);
	uint64_t took = sbx_now_ms() - t0;
	/* the command's process group: the main process's pid (setsid) */
	pid_t pgid = rc == 0 ? (pid_t)atoi((char *)r.out) : 0;
	if (pgid > 1)
		kill(-pgid, SIGKILL);
	it_kill_marked(pat);
	CHECKF(rc == 0, "%s", r.error.message);
	char want[64];
	snprintf(want, sizeof want, "%d\ndone\n", (int)pgid);
	CHECK_EQ_STR((char *)r.out, want);
	CHECK_EQ_INT(r.exit_code, 0);
	sbx_exec_result_free(&r);
	CHECKF(took < 15000, "returned after %llu ms: waited for the background child",
	       (unsigned long long)took);

	/* output produced before the exit is still delivered in full */
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "echo $$ >&2; head -c 3000000 /dev/zero; echo tail >&2; sleep 30.%s & exit 0", m);
	snprintf(pat, sizeof pat, "sleep 30.%s", m);
	const char *b[] = {"sh", "-c", script, NULL};
	t0 = sbx_now_ms();
	rc = it_exec(g_s, &r, b);
	took = sbx_now_ms() - t0;
	pgid = rc == 0 ? (pid_t)atoi((char *)r.err) : 0;
	if (pgid > 1)
		kill(-pgid, SIGKILL);
	it_kill_marked(pat);
	CHECKF(rc == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.out_len, 3000000);
	snprintf(want, sizeof want, "%d\ntail\n", (int)pgid);
	CHECK_EQ_STR((char *)r.err, want);
	sbx_exec_result_free(&r);
	CHECK(took < 15000);
}

static void test_output_drained_before_exit(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {"sh", "-c", "head -c 5000000 /dev/zero; exit 0", NULL};
	CHECK(it_exec(g_s, &r, a) == 0);
	CHECK_EQ_INT(r.out_len, 5000000);
	size_t nonzero = 0;
	for (size_t i = 0; i < r.out_len; i++)
		nonzero += r.out[i] != 0;
	CHECK_EQ_INT(nonzero, 0);
	sbx_exec_result_free(&r);

	/* a main process that leaves full 1 MB pipes behind when it exits:
	 * the agent reads 64 KiB at a time, so it must keep draining after
	 * the exit, not just take one read (this program, in --spew mode) */
	const char *spew[] = {g_self, "--spew", "1000000", NULL};
	CHECK(it_exec(g_s, &r, spew) == 0);
	CHECK_EQ_INT(r.exit_code, 0);
	CHECK_EQ_INT(r.out_len, 1000000);
	CHECK_EQ_INT(r.err_len, 1000000);
	CHECK(r.out[0] == 'o' && r.out[999999] == 'o' && r.err[999999] == 'e');
	sbx_exec_result_free(&r);

	/* interleaved streams of random size, both complete */
	const char *b[] = {"sh", "-c", "head -c 777777 /dev/urandom | od -An -v -tx1 > /dev/null;"
			   " head -c 2000000 /dev/zero; head -c 1500000 /dev/zero >&2; exit 5", NULL};
	CHECK(it_exec(g_s, &r, b) == 0);
	CHECK_EQ_INT(r.exit_code, 5);
	CHECK_EQ_INT(r.out_len, 2000000);
	CHECK_EQ_INT(r.err_len, 1500000);
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- spawn errors */

static void test_not_found(void)
{
	NEED_SESSION();
	sbx_exec_result r;
	const char *a[] = {"no-such-command-sbx-it", "x", NULL};
	CHECK(it_exec(g_s, &r, a) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_found");
	CHECK_EQ_INT(r.error.err_no, ENOENT);
	CHECK(strstr(r.error.message, "no-such-command-sbx-it") != NULL);
	CHECK(strstr(r.error.message, "not found") != NULL);
	sbx_exec_result_free(&r);

	const char *b[] = {"/nonexistent/bin/tool", NULL};
	CHECK(it_exec(g_s, &r, b) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_found");
	sbx_exec_result_free(&r);

	/* PATH from the overlay is the one searched */
	const char *c[] = {"ls", NULL};
	const char *env[] = {"PATH=/nonexistent-dir", NULL};
	sbx_exec_opts o = {.argv = c, .env = env};
	CHECK(sbx_exec_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_found");
	sbx_exec_result_free(&r);
}

static void test_not_executable(void)
{
	NEED_SESSION();
	char path[256];
	snprintf(path, sizeof path, "%s/script.txt", g_wd);
	CHECK(it_write_local(path, "echo should-not-run\n", 20) == 0);
	chmod(path, 0644);
	sbx_exec_result r;
	const char *a[] = {"./script.txt", NULL};
	CHECK(it_exec(g_s, &r, a) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "permission");
	CHECK(strstr(r.error.message, "script.txt") != NULL);
	sbx_exec_result_free(&r);

	/* executable, but not a program and no #! line: not run through sh */
	chmod(path, 0755);
	CHECK(it_exec(g_s, &r, a) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "permission");
	CHECK(r.out == NULL || strstr((char *)r.out, "should-not-run") == NULL);
	sbx_exec_result_free(&r);

	/* a directory */
	const char *d[] = {"/tmp", NULL};
	CHECK(it_exec(g_s, &r, d) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "permission");
	sbx_exec_result_free(&r);
}

/* ---------------------------------------------------------------- streaming */

typedef struct stream_rec {
	char buf[256];
	size_t len;
	int callbacks;
	int done;
	int done_at_first_output; /* was on_done already called then? */
	char first[64];
	sbx_exec_result res;
} stream_rec;

static void rec_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	stream_rec *s = ud;
	if (fd != 1)
		return;
	if (s->callbacks++ == 0) {
		s->done_at_first_output = s->done;
		snprintf(s->first, sizeof s->first, "%.*s", (int)n, (const char *)p);
	}
	if (s->len + n < sizeof s->buf) {
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		s->buf[s->len] = 0;
	}
}

static void rec_done(void *ud, sbx_exec_result *r)
{
	stream_rec *s = ud;
	s->res = *r;
	r->out = r->err = NULL;
	s->done = 1;
}

static void test_streaming_output(void)
{
	NEED_SESSION();
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"sh", "-c", "echo first; sleep 1; echo second", NULL};
	sbx_exec_opts o = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &rec};
	sbx_error err;
	CHECK(sbx_exec(g_s, &o, &err) != NULL);
	CHECK(it_run_until(g_loop, &rec.done, 30) == 0);
	CHECK_EQ_INT(rec.res.error.status, SBX_OK);
	CHECK(rec.callbacks >= 2);
	CHECK_EQ_INT(rec.done_at_first_output, 0);
	CHECK_EQ_STR(rec.first, "first\n");
	CHECK_EQ_STR(rec.buf, "first\nsecond\n");
	CHECK_EQ_STR((char *)rec.res.out, "first\nsecond\n"); /* accumulated too */
	sbx_exec_result_free(&rec.res);

	/* no_accumulate: callbacks only */
	static stream_rec rec2;
	rec2 = (stream_rec){0};
	sbx_exec_opts o2 = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &rec2, .no_accumulate = 1};
	CHECK(sbx_exec(g_s, &o2, &err) != NULL);
	CHECK(it_run_until(g_loop, &rec2.done, 30) == 0);
	CHECK_EQ_STR(rec2.buf, "first\nsecond\n");
	CHECK_EQ_INT(rec2.res.out_len, 0);
	sbx_exec_result_free(&rec2.res);
}

/* Runs the loop until the recorded output ends with want. */
static int wait_output(stream_rec *rec, const char *want, double timeout_s)
{
	uint64_t end = sbx_now_ms() + (uint64_t)(timeout_s * 1000);
	size_t wl = strlen(want);
	while (!(rec->len >= wl && strcmp(rec->buf + rec->len - wl, want) == 0)) {
		if (rec->done || sbx_now_ms() > end)
			return -1;
		sbx_loop_run_once(g_loop, 50);
	}
	return 0;
}

static void test_stream_stdin_round_trips(void)
{
	NEED_SESSION();
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"cat", NULL};
	sbx_exec_opts o = {.argv = a, .stream_stdin = 1, .on_output = rec_output, .on_done = rec_done, .ud = &rec};
	sbx_error err;
	sbx_call *c = sbx_exec(g_s, &o, &err);
	CHECK(c != NULL);
	char line[32], want[512] = "";
	for (int i = 0; i < 5; i++) {
		snprintf(line, sizeof line, "ping %d\n", i);
		CHECK(sbx_call_write_stdin(c, line, strlen(line)) == 0);
		strcat(want, line);
		CHECKF(wait_output(&rec, line, 30) == 0, "no echo of round %d (have '%s')", i, rec.buf);
		CHECK_EQ_INT(rec.done, 0); /* cat still waits for more */
	}
	CHECK(sbx_call_close_stdin(c) == 0);
	CHECK(sbx_call_write_stdin(c, "late", 4) == -1);
	CHECK(it_run_until(g_loop, &rec.done, 30) == 0);
	CHECK_EQ_INT(rec.res.error.status, SBX_OK);
	CHECK_EQ_INT(rec.res.exit_code, 0);
	CHECK_EQ_STR((char *)rec.res.out, want);
	sbx_exec_result_free(&rec.res);

	/* stdin calls on a call without stream_stdin are refused */
	static stream_rec rec2;
	rec2 = (stream_rec){0};
	const char *s[] = {"sleep", "0.2", NULL};
	sbx_exec_opts o2 = {.argv = s, .on_done = rec_done, .ud = &rec2};
	c = sbx_exec(g_s, &o2, &err);
	CHECK(c != NULL);
	CHECK(sbx_call_write_stdin(c, "x", 1) == -1);
	CHECK(sbx_call_close_stdin(c) == -1);
	CHECK(it_run_until(g_loop, &rec2.done, 30) == 0);
	sbx_exec_result_free(&rec2.res);
}

/* manual_credit: output the caller has not consumed holds the agent at one
 * window (the command blocks on its pipe); consuming lets the rest come. */
typedef struct credit_rec {
	uint64_t got, consumed;
	int done;
	sbx_exec_result res;
} credit_rec;

static void credit_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	(void)fd;
	(void)p;
	((credit_rec *)ud)->got += n;
}

static void credit_done(void *ud, sbx_exec_result *r)
{
	credit_rec *c = ud;
	c->res = *r;
	r->out = r->err = NULL;
	c->done = 1;
}

static void test_manual_credit(void)
{
	NEED_SESSION();
	static credit_rec rec;
	rec = (credit_rec){0};
	const char *a[] = {"head", "-c", "20000000", "/dev/zero", NULL};
	sbx_exec_opts o = {.argv = a, .on_output = credit_output, .on_done = credit_done, .ud = &rec,
			   .no_accumulate = 1, .manual_credit = 1, .output_limit = 100000000};
	sbx_error err;
	sbx_call *c = sbx_exec(g_s, &o, &err);
	CHECK(c != NULL);
	uint64_t end = sbx_now_ms() + 1500;
	while (sbx_now_ms() < end && !rec.done)
		sbx_loop_run_once(g_loop, 50);
	CHECKF(rec.got <= 1024 * 1024, "received %llu bytes without granting any credit",
	       (unsigned long long)rec.got);
	CHECK(rec.got > 0);
	CHECK_EQ_INT(rec.done, 0);
	end = sbx_now_ms() + 60000;
	while (!rec.done && sbx_now_ms() < end) {
		if (rec.got > rec.consumed) {
			CHECK_EQ_INT(sbx_call_consumed(c, (size_t)(rec.got - rec.consumed)), 0);
			rec.consumed = rec.got;
		}
		sbx_loop_run_once(g_loop, 50);
	}
	CHECK_EQ_INT(rec.done, 1);
	CHECK_EQ_INT(rec.res.error.status, SBX_OK);
	CHECK(rec.got == 20000000);
	sbx_exec_result_free(&rec.res);

	/* an exec without manual_credit refuses it */
	static credit_rec rec2;
	rec2 = (credit_rec){0};
	const char *t[] = {"true", NULL};
	sbx_exec_opts o2 = {.argv = t, .on_done = credit_done, .ud = &rec2};
	c = sbx_exec(g_s, &o2, &err);
	CHECK(c != NULL);
	CHECK_EQ_INT(sbx_call_consumed(c, 1), -1);
	CHECK(it_run_until(g_loop, &rec2.done, 30) == 0);
	sbx_exec_result_free(&rec2.res);
}

/* Large streamed stdin respects back-pressure and arrives intact. */
static void test_stream_stdin_large(void)
{
	NEED_SESSION();
	size_t n = 16u * 1024 * 1024, chunk = 1024 * 1024;
	uint8_t *data = malloc(n);
	CHECK(data);
	it_fill_random(data, n, 7);
	char want[65];
	it_sha256_hex(data, n, want);
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"sha256sum", NULL};
	sbx_exec_opts o = {.argv = a, .stream_stdin = 1, .on_done = rec_done, .ud = &rec};
	sbx_error err;
	sbx_call *c = sbx_exec(g_s, &o, &err);
	if (!c)
		free(data);
	CHECK(c != NULL);
	size_t off = 0;
	uint64_t end = sbx_now_ms() + 60000;
	while (off < n && !rec.done && sbx_now_ms() < end) {
		if (sbx_call_stdin_pending(c) < 2 * chunk) {
			sbx_call_write_stdin(c, data + off, chunk);
			off += chunk;
		} else {
			sbx_loop_run_once(g_loop, 50);
		}
	}
	free(data);
	CHECK(off == n);
	CHECK(sbx_call_close_stdin(c) == 0);
	CHECK(it_run_until(g_loop, &rec.done, 60) == 0);
	CHECKF(rec.res.error.status == SBX_OK, "%s", rec.res.error.message);
	CHECK(rec.res.out_len >= 64);
	rec.res.out[64] = 0;
	CHECK_EQ_STR((char *)rec.res.out, want);
	sbx_exec_result_free(&rec.res);
}

/* ---------------------------------------------------------------- signals, cancel */

static void test_signal(void)
{
	NEED_SESSION();
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"sh", "-c", "trap 'echo got-int; exit 3' INT; echo ready; while :; do sleep 0.05; done", NULL};
	sbx_exec_opts o = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &rec, .timeout_s = 60};
	sbx_error err;
	sbx_call *c = sbx_exec(g_s, &o, &err);
	CHECK(c != NULL);
	CHECK(wait_output(&rec, "ready\n", 30) == 0);
	CHECK(sbx_call_signal(c, SIGINT) == 0);
	CHECK(it_run_until(g_loop, &rec.done, 30) == 0);
	CHECK_EQ_INT(rec.res.error.status, SBX_OK);
	CHECK_EQ_INT(rec.res.exit_code, 3);
	CHECK_EQ_STR((char *)rec.res.out, "ready\ngot-int\n");
	sbx_exec_result_free(&rec.res);

	/* SIGTERM from the caller is an ordinary result, not a timeout */
	static stream_rec rec2;
	rec2 = (stream_rec){0};
	const char *b[] = {"sh", "-c", "echo ready; exec sleep 100", NULL};
	sbx_exec_opts o2 = {.argv = b, .on_output = rec_output, .on_done = rec_done, .ud = &rec2, .timeout_s = 60};
	c = sbx_exec(g_s, &o2, &err);
	CHECK(c != NULL);
	CHECK(wait_output(&rec2, "ready\n", 30) == 0);
	CHECK(sbx_call_signal(c, SIGTERM) == 0);
	CHECK(it_run_until(g_loop, &rec2.done, 30) == 0);
	CHECK_EQ_INT(rec2.res.error.status, SBX_OK);
	CHECK_EQ_INT(rec2.res.signal, SIGTERM);
	CHECK_EQ_INT(rec2.res.exit_code, 128 + SIGTERM);
	CHECK_EQ_INT(rec2.res.timed_out, 0);
	sbx_exec_result_free(&rec2.res);
}

static void test_cancel(void)
{
	NEED_SESSION();
	char m[32], script[128], pat[64];
	it_marker(m, sizeof m);
	snprintf(script, sizeof script, "echo ready; sleep 100.%s & exec sleep 100.%s", m, m);
	snprintf(pat, sizeof pat, "sleep 100.%s", m);
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"sh", "-c", script, NULL};
	sbx_exec_opts o = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &rec};
	sbx_error err;
	sbx_call *c = sbx_exec(g_s, &o, &err);
	CHECK(c != NULL);
	int ready = wait_output(&rec, "ready\n", 30) == 0;
	uint64_t until = sbx_now_ms() + 10000;
	int running;
	while ((running = it_procs_with(pat, NULL, 0)) < 2 && sbx_now_ms() < until)
		sbx_loop_run_once(g_loop, 20);
	uint64_t t0 = sbx_now_ms();
	sbx_call_cancel(c);
	CHECK(it_run_until(g_loop, &rec.done, 30) == 0);
	CHECK(sbx_now_ms() - t0 < 20000);
	CHECK(ready);
	CHECK_EQ_INT(running, 2);
	CHECK_ERR(rec.res.error, SBX_E_CANCELLED, "cancelled");
	sbx_exec_result_free(&rec.res);
	int left = it_wait_procs_gone(pat, 5);
	it_kill_marked(pat);
	CHECKF(left == 0, "%d processes of the cancelled command survived", left);
	CHECK_EQ_INT(sbx_session_pending(g_s), 0);

	/* the session goes on */
	sbx_exec_result r;
	const char *e[] = {"echo", "after", NULL};
	CHECK(it_exec(g_s, &r, e) == 0);
	CHECK_EQ_STR((char *)r.out, "after\n");
	sbx_exec_result_free(&r);
}

/* Cancelling a call that has not reached the agent yet (session still
 * starting) reports at once. */
static void test_cancel_before_start(void)
{
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_wd, .host = 1};
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	CHECK(s != NULL);
	static stream_rec rec;
	rec = (stream_rec){0};
	const char *a[] = {"echo", "never", NULL};
	sbx_exec_opts o = {.argv = a, .on_done = rec_done, .ud = &rec};
	sbx_call *c = sbx_exec(s, &o, &err);
	CHECK(c != NULL);
	CHECK_EQ_INT(sbx_session_pending(s), 1);
	sbx_call_cancel(c);
	CHECK_EQ_INT(rec.done, 1);
	CHECK_ERR(rec.res.error, SBX_E_CANCELLED, "cancelled");
	sbx_exec_result_free(&rec.res);
	CHECK_EQ_INT(sbx_session_pending(s), 0);
	/* a call queued before ready runs once the agent is there */
	static stream_rec rec2;
	rec2 = (stream_rec){0};
	const char *b[] = {"echo", "queued", NULL};
	sbx_exec_opts o2 = {.argv = b, .on_done = rec_done, .ud = &rec2};
	CHECK(sbx_exec(s, &o2, &err) != NULL);
	int rc = it_run_until(g_loop, &rec2.done, 30);
	if (rc == 0) {
		CHECK_EQ_STR((char *)rec2.res.out, "queued\n");
		sbx_exec_result_free(&rec2.res);
	}
	sbx_session_close(s);
	CHECK(rc == 0);
}

/* ---------------------------------------------------------------- concurrency */

typedef struct many_rec {
	int idx;
	int done;
	int ok;
	char why[200];
	int *ndone;
} many_rec;

static void many_done(void *ud, sbx_exec_result *r)
{
	many_rec *m = ud;
	char want[64], want_err[64];
	m->done = 1;
	(*m->ndone)++;
	if (m->idx % 2 == 0) {
		snprintf(want, sizeof want, "call-%d\n", m->idx);
		snprintf(want_err, sizeof want_err, "err-%d\n", m->idx);
	} else {
		snprintf(want, sizeof want, "input-%d", m->idx);
		want_err[0] = 0;
	}
	int want_code = m->idx % 7;
	m->ok = r->error.status == SBX_OK && r->out && strcmp((char *)r->out, want) == 0 &&
		strcmp((char *)r->err, want_err) == 0 && r->exit_code == (m->idx % 2 == 0 ? want_code : 0);
	if (!m->ok)
		snprintf(m->why, sizeof m->why, "status %d %.60s out %.40s err %.40s code %d",
			 r->error.status, r->error.message, r->out ? (char *)r->out : "", r->err ? (char *)r->err : "",
			 r->exit_code);
}

static void test_concurrent_execs(void)
{
	NEED_SESSION();
	enum { N = 200 };
	static many_rec recs[N];
	static char args[N][32], inputs[N][32];
	int ndone = 0;
	sbx_error err;
	for (int i = 0; i < N; i++) {
		recs[i] = (many_rec){.idx = i, .ndone = &ndone};
		snprintf(args[i], sizeof args[i], "%d", i);
		snprintf(inputs[i], sizeof inputs[i], "input-%d", i);
		sbx_exec_opts o = {.on_done = many_done, .ud = &recs[i], .timeout_s = 120};
		const char *even[] = {"sh", "-c", "echo call-$0; echo err-$0 >&2; exit $(($0 % 7))", args[i], NULL};
		const char *odd[] = {"cat", NULL};
		if (i % 2 == 0) {
			o.argv = even;
		} else {
			o.argv = odd;
			o.input = inputs[i];
			o.input_len = strlen(inputs[i]);
		}
		CHECKF(sbx_exec(g_s, &o, &err) != NULL, "exec %d: %s", i, err.message);
	}
	CHECK_EQ_INT(sbx_session_pending(g_s), N);
	uint64_t end = sbx_now_ms() + 120000;
	while (ndone < N && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 100);
	CHECK_EQ_INT(ndone, N);
	for (int i = 0; i < N; i++)
		CHECKF(recs[i].ok, "call %d: %s", i, recs[i].why);
	CHECK_EQ_INT(sbx_session_pending(g_s), 0);
}

/* Two sessions on one loop run side by side, each with its own agent. */
static void test_two_sessions_one_loop(void)
{
	NEED_SESSION();
	sbx_session *s2 = it_local(g_loop, g_wd, 0);
	CHECK(s2 != NULL);
	CHECK(strcmp(sbx_session_boot_id(s2), sbx_session_boot_id(g_s)) != 0);
	CHECK(sbx_session_agent_version(s2)[0] != 0);
	static stream_rec r1, r2;
	r1 = (stream_rec){0};
	r2 = (stream_rec){0};
	const char *a[] = {"sh", "-c", "sleep 0.3; echo one", NULL};
	const char *b[] = {"sh", "-c", "sleep 0.3; echo two", NULL};
	sbx_exec_opts o1 = {.argv = a, .on_done = rec_done, .ud = &r1};
	sbx_exec_opts o2 = {.argv = b, .on_done = rec_done, .ud = &r2};
	sbx_error err;
	int ok = sbx_exec(g_s, &o1, &err) && sbx_exec(s2, &o2, &err);
	if (ok) {
		ok = it_run_until(g_loop, &r1.done, 30) == 0 && it_run_until(g_loop, &r2.done, 30) == 0;
	}
	sbx_session_close(s2);
	CHECK(ok);
	CHECK_EQ_STR((char *)r1.res.out, "one\n");
	CHECK_EQ_STR((char *)r2.res.out, "two\n");
	sbx_exec_result_free(&r1.res);
	sbx_exec_result_free(&r2.res);
}

/* --spew N: fill stdout and stderr (pipes enlarged to hold it all) with
 * N bytes each, then exit at once. */
static int spew(long n)
{
	static char buf[1 << 20];
	if (n < 0 || n > (long)sizeof buf)
		return 2;
	for (int fd = 1; fd <= 2; fd++) {
		fcntl(fd, F_SETPIPE_SZ, 1 << 20);
		memset(buf, fd == 1 ? 'o' : 'e', (size_t)n);
		for (long off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				_exit(3);
			off += w;
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--spew") == 0)
		return spew(atol(argv[2]));
	signal(SIGPIPE, SIG_IGN);
	ssize_t sn = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
	if (sn > 0)
		g_self[sn] = 0;
	it_agent();
	it_tmpdir(g_wd, sizeof g_wd, "exec");
	g_loop = sbx_loop_new();
	g_s = it_local(g_loop, g_wd, 0);
	if (!g_s)
		printf("FAIL setup: cannot start a local agent (%s)\n", it_agent());

	IT_RUN(test_argv_runs_without_shell);
	IT_RUN(test_exit_code_and_streams);
	IT_RUN(test_empty_argv_is_invalid);
	IT_RUN(test_request_too_large);
	IT_RUN(test_stdin_input_then_eof);
	IT_RUN(test_stdin_large);
	IT_RUN(test_stdin_unread);
	IT_RUN(test_env_overlay_this_call_only);
	IT_RUN(test_cwd);
	IT_RUN(test_bad_cwd);
	IT_RUN(test_user_switch);
	IT_RUN(test_unknown_user);
	IT_RUN(test_timeout);
	IT_RUN(test_timeout_kills_process_group);
	IT_RUN(test_timeout_grace_trap);
	IT_RUN(test_exit_137_is_ordinary);
	IT_RUN(test_output_limit);
	IT_RUN(test_background_child_holding_pipes);
	IT_RUN(test_output_drained_before_exit);
	IT_RUN(test_not_found);
	IT_RUN(test_not_executable);
	IT_RUN(test_streaming_output);
	IT_RUN(test_stream_stdin_round_trips);
	IT_RUN(test_manual_credit);
	IT_RUN(test_stream_stdin_large);
	IT_RUN(test_signal);
	IT_RUN(test_cancel);
	IT_RUN(test_cancel_before_start);
	IT_RUN(test_concurrent_execs);
	IT_RUN(test_two_sessions_one_loop);

	sbx_session_close(g_s);
	sbx_loop_free(g_loop);
	it_rm_rf(g_wd);
	return g_s ? test_summary() : 1;
}
