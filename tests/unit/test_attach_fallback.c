/* test_attach_fallback.c — `sbx-agent --attach PATH` when PATH's directory is
 * read-only (an agent baked into a read-only image directory, where the
 * socket would sit next to the binary): the bridge puts the socket and its
 * files in a private runtime directory instead, the session works, a second
 * bridge given the same PATH reaches the same listening agent, and nothing
 * is written to the read-only directory. Each bridge runs in its own mount
 * namespace where the directory is bind-mounted read-only (needs root, as
 * the local backend's tests do). */
#include "it_util.h"

static sbx_loop *loop;

static sbx_session *bridge(const char *dir, const char *sock, sbx_error *err)
{
	char script[4600];
	snprintf(script, sizeof script, "mount --bind -o ro %s %s && exec %s --attach %s", dir, dir, it_agent(), sock);
	const char *argv[] = {"unshare", "-m", "sh", "-c", script, NULL};
	sbx_session *s = sbx_session_command(loop, argv, NULL, err);
	if (s && sbx_session_wait_ready(s, 20, err) < 0) {
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

static void attach_socket_falls_back_from_a_read_only_dir(void)
{
	char dir[] = "/tmp/sbx-ro-agent-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char sock[200];
	snprintf(sock, sizeof sock, "%s/sbx-agent.sock", dir);
	sbx_error err;
	sbx_session *a = bridge(dir, sock, &err);
	char why[600] = "";
	if (!a)
		snprintf(why, sizeof why, "%s", err.message);
	sbx_session *b = a ? bridge(dir, sock, &err) : NULL;
	if (a && !b)
		snprintf(why, sizeof why, "second bridge: %s", err.message);
	int ran = 0, same = 0;
	if (a && b) {
		sbx_exec_result r;
		const char *argv[] = {"echo", "through-the-fallback", NULL};
		ran = it_exec(b, &r, argv) == 0 && r.exit_code == 0 && r.out &&
		      strcmp((char *)r.out, "through-the-fallback\n") == 0;
		sbx_exec_result_free(&r);
		same = strcmp(sbx_session_boot_id(a), sbx_session_boot_id(b)) == 0;
	}
	if (b)
		sbx_session_close(b);
	if (a)
		sbx_session_close(a);
	DIR *d = opendir(dir);
	int entries = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		entries += e->d_name[0] != '.';
	if (d)
		closedir(d);
	/* the listener runs on with --listen <runtime dir>/sbx-agent-UID/HASH.sock */
	char marker[64];
	snprintf(marker, sizeof marker, "/sbx-agent-%u/", (unsigned)geteuid());
	pid_t pids[4];
	int n = it_procs_with(marker, pids, 4);
	for (int i = 0; i < n && i < 4; i++)
		kill(pids[i], SIGTERM);
	rmdir(dir);
	CHECKF(a && b, "%s", why);
	CHECK(ran);
	CHECK(same);              /* one listener for both bridges */
	CHECK_EQ_INT(entries, 0); /* nothing was made in the read-only directory */
	CHECK(n >= 1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("XDG_RUNTIME_DIR");
	loop = sbx_loop_new();
	IT_RUN(attach_socket_falls_back_from_a_read_only_dir);
	sbx_loop_free(loop);
	return test_summary();
}
