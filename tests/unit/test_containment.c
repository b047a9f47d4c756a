/* test_containment.c — what a sandbox never gets from the host through
 * libsbx: the host's environment (cloud keys, kubeconfig tokens), any
 * credential at all (the agent works with an empty environment), a local
 * file written anywhere but the path the caller gave, or — for the default
 * contained session (a box) — the host's files, or a process that outlives
 * the session. The CLI side, with the full set of attacks on a box, is
 * tests/cli/test_containment.sh. */
#include "it_util.h"

static sbx_loop *g_loop;
static char g_dir[128];

static const char *const g_secrets[] = {
	"AWS_ACCESS_KEY_ID=AKIAHOSTSECRET", "AWS_SECRET_ACCESS_KEY=host-secret-key", "AWS_SESSION_TOKEN=host-token",
	"KUBECONFIG=/home/me/.kube/config", "SBX_CONTAIN_MARKER=host-only", NULL};

static void set_secrets(void)
{
	for (int i = 0; g_secrets[i]; i++)
		putenv((char *)g_secrets[i]);
}

/* Runs `env` in a session and checks none of the host's secrets is there. */
static void check_env_clean(sbx_session *s, const char *what)
{
	sbx_exec_result x = {0};
	const char *env[] = {"env", NULL};
	int rc = it_exec(s, &x, env);
	CHECKF(rc == 0, "%s: %s", what, x.error.message);
	const char *out = (const char *)x.out;
	for (int i = 0; g_secrets[i]; i++) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(strchr(g_secrets[i], '=') - g_secrets[i]), g_secrets[i]);
		CHECKF(strstr(out, name) == NULL, "%s: the sandbox sees %s:\n%s", what, name, out);
	}
	CHECKF(strstr(out, "host-secret") == NULL, "%s: %s", what, out);
	CHECKF(strstr(out, "PATH=") != NULL, "%s: no PATH at all: %s", what, out);
	sbx_exec_result_free(&x);
}

static void test_local_env_not_passed(void)
{
	set_secrets();
	CHECK(getenv("AWS_SECRET_ACCESS_KEY") != NULL);
	sbx_session *s = it_local(g_loop, g_dir, 0);
	CHECK(s);
	check_env_clean(s, "local");
	/* the caller's per-call overlay still works, and stays per call */
	sbx_exec_result x = {0};
	const char *a[] = {"sh", "-c", "echo $ONLY", NULL};
	const char *env[] = {"ONLY=this", NULL};
	sbx_exec_opts o = {.argv = a, .env = env};
	int rc = sbx_exec_sync(s, &o, &x);
	sbx_session_close(s);
	CHECKF(rc == 0, "%s", x.error.message);
	CHECK_EQ_STR((char *)x.out, "this\n");
	sbx_exec_result_free(&x);
}

static void test_isolated_env_not_passed(void)
{
	set_secrets();
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_dir, .host = 1, .isolate = 1};
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0) {
		if (s)
			sbx_session_close(s);
		if (strstr(err.message, "namespace") || strstr(err.message, "Operation not permitted"))
			SKIP("no user namespaces here: %.200s", err.message);
		CHECKF(0, "%s", err.message);
	}
	check_env_clean(s, "isolated");
	sbx_session_close(s);
}

/* The agent needs nothing from its environment: with none at all it still
 * runs commands (absolute paths) and moves files. */
static void test_agent_needs_no_environment(void)
{
	static const char *const empty[] = {NULL};
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_dir, .host = 1, .env = empty};
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	CHECKF(s, "%s", err.message);
	CHECKF(sbx_session_wait_ready(s, 30, &err) == 0, "%s", err.message);
	sbx_exec_result x = {0};
	const char *a[] = {"/usr/bin/env", NULL};
	int rc = it_exec(s, &x, a);
	sbx_file_result w = {0}, r = {0};
	sbx_file_opts wo = SBX_FILE_OPTS_INIT;
	wo.path = "noenv.txt";
	wo.data = "works";
	wo.len = 5;
	int wrc = sbx_write_file_sync(s, &wo, &w);
	sbx_file_opts ro = SBX_FILE_OPTS_INIT;
	ro.path = "noenv.txt";
	int rrc = sbx_read_file_sync(s, &ro, &r);
	sbx_session_close(s);
	CHECKF(rc == 0, "%s", x.error.message);
	/* nothing but the PATH the agent supplies when it has none */
	CHECKF(x.out_len == 0 || (strncmp((char *)x.out, "PATH=", 5) == 0 && strchr((char *)x.out, '\n') ==
			       (char *)x.out + x.out_len - 1), "the agent had an environment: %s", (char *)x.out);
	sbx_exec_result_free(&x);
	CHECKF(wrc == 0, "%s", w.error.message);
	CHECKF(rrc == 0 && r.len == 5 && memcmp(r.data, "works", 5) == 0, "%s", r.error.message);
	sbx_file_result_free(&r);
}

/* Reading into a local path that is a symlink is refused (a download
 * replaces only a regular file): the sandbox's bytes never land where the
 * link points, and the link stays as it was. */
static void test_read_into_symlink_is_refused(void)
{
	sbx_session *s = it_local(g_loop, g_dir, 0);
	CHECK(s);
	char outside[256], link[256];
	snprintf(outside, sizeof outside, "%s/outside.txt", g_dir);
	snprintf(link, sizeof link, "%s/link.txt", g_dir);
	it_write_local(outside, "precious", 8);
	unlink(link);
	CHECK(symlink(outside, link) == 0);
	sbx_file_result w = {0}, r = {0};
	sbx_file_opts wo = SBX_FILE_OPTS_INIT;
	wo.path = "payload.txt";
	wo.data = "payload";
	wo.len = 7;
	int wrc = sbx_write_file_sync(s, &wo, &w);
	sbx_file_opts ro = SBX_FILE_OPTS_INIT;
	ro.path = "payload.txt";
	ro.local_path = link;
	int rrc = sbx_read_file_sync(s, &ro, &r);
	sbx_session_close(s);
	CHECKF(wrc == 0, "%s", w.error.message);
	CHECKF(rrc != 0 && strstr(r.error.message, "symlink"), "read into a symlink: rc %d: %s", rrc, r.error.message);
	size_t n = 0;
	uint8_t *o = it_read_local(outside, &n);
	CHECKF(o && n == 8 && memcmp(o, "precious", 8) == 0, "the link's target was written");
	free(o);
	struct stat st;
	CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
}

/* A contained session (the default): none of the host's environment, its
 * own /root, and the host's files out of sight. */
static sbx_session *box_session(const char *name)
{
	char where[300];
	snprintf(where, sizeof where, "%s/%s", g_dir, name);
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = where};
	sbx_error err;
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	if (s && sbx_session_wait_ready(s, 30, &err) == 0)
		return s;
	if (s)
		sbx_session_close(s);
	fprintf(stderr, "box: %s\n", err.message);
	return NULL;
}

static void test_box_env_and_files(void)
{
	if (geteuid() != 0)
		SKIP("boxes with limits need root here");
	set_secrets();
	char marker[300];
	snprintf(marker, sizeof marker, "%s/host-only.txt", g_dir);
	it_write_local(marker, "host-secret", 11);
	sbx_session *s = box_session("box1");
	CHECK(s);
	check_env_clean(s, "box");
	sbx_exec_result x = {0};
	const char *probe[] = {"sh", "-c", "cat \"$0\" 2>/dev/null; pwd; echo made > here.txt", marker, NULL};
	int rc = it_exec(s, &x, probe);
	sbx_session_close(s);
	CHECKF(rc == 0, "%s", x.error.message);
	CHECKF(strcmp((char *)x.out, "/root\n") == 0, "the box saw: %s", (char *)x.out);
	sbx_exec_result_free(&x);
	char bundle[300];
	snprintf(bundle, sizeof bundle, "%s/box1", g_dir);
	CHECKF(access(bundle, F_OK) < 0, "the box's bundle outlived its session");
}

/* Closing a contained session ends every process of the box, also those
 * that left the command's process group. */
static void test_box_close_ends_everything(void)
{
	if (geteuid() != 0)
		SKIP("boxes with limits need root here");
	sbx_session *s = box_session("box2");
	CHECK(s);
	sbx_exec_result x = {0};
	const char *bg[] = {"sh", "-c", "setsid sleep 27999 </dev/null >/dev/null 2>&1 & echo started", NULL};
	int rc = it_exec(s, &x, bg);
	CHECKF(rc == 0, "%s", x.error.message);
	sbx_exec_result_free(&x);
	pid_t pids[4];
	int running = 0;
	for (int i = 0; i < 250 && !running; i++) { /* it may still be on its way to exec (slow under SAN) */
		running = it_procs_with("sleep 27999", pids, 4) > 0;
		if (!running)
			usleep(20000);
	}
	CHECKF(running, "the background process is not running");
	sbx_session_close(s);
	int left = 1;
	for (int i = 0; i < 100 && left; i++) {
		left = it_procs_with("sleep 27999", pids, 4);
		if (left)
			usleep(20000);
	}
	CHECKF(left == 0, "a process of the box outlived its session (pid %d)", (int)pids[0]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "contain");
	g_loop = sbx_loop_new();
	IT_RUN(test_local_env_not_passed);
	IT_RUN(test_isolated_env_not_passed);
	IT_RUN(test_agent_needs_no_environment);
	IT_RUN(test_read_into_symlink_is_refused);
	chmod(g_dir, 0711); /* a box's root passes through to its bundle */
	IT_RUN(test_box_env_and_files);
	IT_RUN(test_box_close_ends_everything);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
