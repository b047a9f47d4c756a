/* test_session.c — sessions end to end: listening agents (reconnect and
 * re-attach, many hosts at once, restart detection), a dying agent,
 * command transports and isolated sandboxes. Hostile agents are in
 * test_hostile.c. */
#include <sys/socket.h>
#include <sys/un.h>

#include "it_util.h"

static sbx_loop *g_loop;
static sbx_session *g_healthy; /* a local agent that must survive everything */
static char g_dir[128];

/* ---------------------------------------------------------------- listening agents */

typedef struct rec {
	int done;
	int ndone;
	size_t received;
	sbx_exec_result res;
	char first[64];
} rec;

static void rec_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	rec *r = ud;
	if (fd == 1 && r->received == 0)
		snprintf(r->first, sizeof r->first, "%.*s", (int)n, (const char *)p);
	if (fd == 1)
		r->received += n;
}

static void rec_done(void *ud, sbx_exec_result *res)
{
	rec *r = ud;
	r->ndone++;
	if (r->ndone == 1) {
		r->res = *res;
		res->out = res->err = NULL;
	}
	r->done = 1;
}

static const char *wd_path(const char *rel)
{
	static char b[512];
	snprintf(b, sizeof b, "%s/%s", g_dir, rel);
	return b;
}

/* A session to the agent listening on agent_sock, through path (the same,
 * or a relay to it). */
static sbx_session *connect_via(const char *path, const char *agent_sock, int reconnect)
{
	sbx_error err;
	sbx_session_opts so = {.reconnect = reconnect};
	char key[300];
	it_listener_opts(agent_sock, &so, key, sizeof key);
	sbx_session *s = sbx_session_connect(g_loop, path, &so, &err);
	if (!s) {
		fprintf(stderr, "connect: %s\n", err.message);
		return NULL;
	}
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		fprintf(stderr, "connect: not ready: %s\n", err.message);
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

static sbx_session *connect_ready(const char *path, int reconnect)
{
	return connect_via(path, path, reconnect);
}

static void test_listen_reconnect_reattach(void)
{
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent1.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *s = connect_ready(sock, 1);
	if (!s)
		it_stop_listener(agent, SIGKILL);
	CHECK(s);
	char boot[64];
	snprintf(boot, sizeof boot, "%s", sbx_session_boot_id(s));

	static rec r;
	r = (rec){0};
	const char *a[] = {"sh", "-c", "echo first; sleep 2; echo second; echo err >&2", NULL};
	sbx_exec_opts o = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &r, .timeout_s = 60};
	sbx_error err;
	int ok = sbx_exec(s, &o, &err) != NULL;
	uint64_t end = sbx_now_ms() + 30000;
	while (ok && r.received == 0 && !r.done && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 20);
	int cut = r.received > 0 && !r.done ? it_cut_connection(sock) : -2;
	if (ok)
		it_run_until(g_loop, &r.done, 30);
	it_run_for(g_loop, 300); /* a second on_done would show up here */
	char boot_after[64];
	snprintf(boot_after, sizeof boot_after, "%s", sbx_session_boot_id(s));
	const sbx_error *failure = sbx_session_failure(s);
	int nsock = it_sockets_to(sock, NULL, 0);

	/* the session works on afterwards */
	sbx_exec_result x = {0};
	const char *e[] = {"echo", "still here", NULL};
	int xrc = failure ? -1 : it_exec(s, &x, e);
	sbx_session_close(s);
	it_stop_listener(agent, SIGTERM);

	CHECK(ok);
	CHECKF(cut == 0, "could not cut the connection (%d)", cut);
	CHECK_EQ_INT(r.ndone, 1);
	CHECKF(r.res.error.status == SBX_OK, "%s", r.res.error.message);
	CHECK_EQ_STR(r.first, "first\n");
	CHECK_EQ_STR((char *)r.res.out, "first\nsecond\n");
	CHECK_EQ_STR((char *)r.res.err, "err\n");
	CHECK_EQ_INT(r.res.exit_code, 0);
	sbx_exec_result_free(&r.res);
	CHECK(failure == NULL);
	CHECK_EQ_STR(boot_after, boot);
	CHECK_EQ_INT(nsock, 1); /* connected again */
	CHECK(xrc == 0);
	CHECK_EQ_STR((char *)x.out, "still here\n");
	sbx_exec_result_free(&x);
}

/* A relay between the session and a listening agent that can lose what
 * passes one way, then cut both sides: a network that ate the last bytes. */
typedef struct relay {
	int lfd, host_fd, agent_fd;
	const char *agent_path;
	int lose_to_agent, lose_to_host;
} relay;

static void relay_cut(relay *r)
{
	int *fds[] = {&r->host_fd, &r->agent_fd};
	for (int i = 0; i < 2; i++)
		if (*fds[i] >= 0) {
			sbx_loop_unwatch(g_loop, *fds[i]);
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static void relay_io(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	relay *r = ud;
	uint8_t buf[65536];
	ssize_t n = read(fd, buf, sizeof buf);
	if (n <= 0) {
		relay_cut(r);
		return;
	}
	int to_agent = fd == r->host_fd;
	if (to_agent ? r->lose_to_agent : r->lose_to_host)
		return;
	int out = to_agent ? r->agent_fd : r->host_fd;
	for (ssize_t off = 0; off < n;) { /* small test traffic: blocking writes are fine */
		ssize_t w = write(out, buf + off, (size_t)(n - off));
		if (w <= 0) {
			relay_cut(r);
			return;
		}
		off += w;
	}
}

static void relay_accept(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)events;
	relay *r = ud;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	relay_cut(r);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, r->agent_path, strlen(r->agent_path) + 1); /* length checked by relay_start */
	int a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a < 0 || connect(a, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(c);
		if (a >= 0)
			close(a);
		return;
	}
	r->host_fd = c;
	r->agent_fd = a;
	sbx_loop_watch(loop, c, SBX_EV_READ, relay_io, r);
	sbx_loop_watch(loop, a, SBX_EV_READ, relay_io, r);
}

static int relay_start(relay *r, const char *path, const char *agent_path)
{
	*r = (relay){.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), .host_fd = -1, .agent_fd = -1,
		     .agent_path = agent_path};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path || strlen(agent_path) >= sizeof sa.sun_path)
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(r->lfd, 4) < 0)
		return -1;
	return sbx_loop_watch(g_loop, r->lfd, SBX_EV_READ, relay_accept, r);
}

static void relay_stop(relay *r)
{
	relay_cut(r);
	sbx_loop_unwatch(g_loop, r->lfd);
	close(r->lfd);
}

/* Runs `sh -c script` while the relay loses one direction, then cuts and
 * lets the session reconnect. */
static void exec_through_loss(sbx_session *s, relay *r, int to_agent, const char *script, rec *out)
{
	*out = (rec){0};
	const char *argv[] = {"sh", "-c", script, NULL};
	sbx_exec_opts o = {.argv = argv, .on_done = rec_done, .ud = out};
	sbx_error err;
	if (to_agent)
		r->lose_to_agent = 1;
	else
		r->lose_to_host = 1;
	if (!sbx_exec(s, &o, &err)) {
		snprintf(out->first, sizeof out->first, "%.60s", err.message);
		return;
	}
	it_run_for(g_loop, 300);
	relay_cut(r);
	r->lose_to_agent = r->lose_to_host = 0;
	it_run_until(g_loop, &out->done, 30);
	it_run_for(g_loop, 100); /* a second on_done would show up here */
}

/* The EXEC itself was lost: the agent says it never arrived and the host
 * sends it again; it runs once. The answer was lost: the command is
 * re-attached, not run again. */
static void test_listen_lost_exec_sent_again(void)
{
	char sock[256], via[256];
	snprintf(sock, sizeof sock, "%s/agent5.sock", g_dir);
	snprintf(via, sizeof via, "%s/relay5.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	relay r;
	CHECK(relay_start(&r, via, sock) == 0);
	sbx_session *s = connect_via(via, sock, 1);
	CHECK(s);
	unlink(wd_path("ran.txt"));
	static rec lost_request, lost_answer;
	exec_through_loss(s, &r, 1, "echo ran >> ran.txt; echo hi", &lost_request);
	exec_through_loss(s, &r, 0, "echo ran >> ran.txt; sleep 0.5; echo there", &lost_answer);
	const sbx_error *f = sbx_session_failure(s);
	sbx_error failure = f ? *f : (sbx_error){0};
	sbx_session_close(s);
	relay_stop(&r);
	it_stop_listener(agent, SIGTERM);
	size_t len = 0;
	char *ran = (char *)it_read_local(wd_path("ran.txt"), &len);

	CHECKF(!f, "%s", failure.message);
	CHECK_EQ_INT(lost_request.ndone, 1);
	CHECKF(lost_request.res.error.status == SBX_OK, "%s %s", lost_request.res.error.message, lost_request.first);
	CHECK_EQ_STR((char *)lost_request.res.out, "hi\n");
	CHECK_EQ_INT(lost_answer.ndone, 1);
	CHECKF(lost_answer.res.error.status == SBX_OK, "%s %s", lost_answer.res.error.message, lost_answer.first);
	CHECK_EQ_STR((char *)lost_answer.res.out, "there\n");
	CHECKF(ran && strcmp(ran, "ran\nran\n") == 0, "each command ran once: '%s'", ran ? ran : "(no file)");
	free(ran);
	sbx_exec_result_free(&lost_request.res);
	sbx_exec_result_free(&lost_answer.res);
}

/* Several cuts while megabytes of output stream: every byte exactly once,
 * in order. */
static void test_listen_reattach_streaming(void)
{
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent2.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *s = connect_ready(sock, 1);
	if (!s)
		it_stop_listener(agent, SIGKILL);
	CHECK(s);
	static rec r;
	r = (rec){0};
	const char *a[] = {"sh", "-c", "seq 1 400000; seq 1 1000 >&2", NULL};
	sbx_exec_opts o = {.argv = a, .on_output = rec_output, .on_done = rec_done, .ud = &r, .timeout_s = 120};
	sbx_error err;
	int ok = sbx_exec(s, &o, &err) != NULL;
	size_t cuts_at[] = {100000, 900000, 1800000};
	int cuts = 0;
	uint64_t end = sbx_now_ms() + 60000;
	while (ok && !r.done && sbx_now_ms() < end) {
		if (cuts < 3 && r.received >= cuts_at[cuts]) {
			if (it_cut_connection(sock) == 0)
				cuts++;
		}
		sbx_loop_run_once(g_loop, 10);
	}
	it_run_for(g_loop, 200);
	sbx_session_close(s);
	it_stop_listener(agent, SIGTERM);
	CHECK(ok);
	CHECK_EQ_INT(r.ndone, 1);
	CHECKF(r.res.error.status == SBX_OK, "%s", r.res.error.message);
	CHECKF(cuts >= 2, "only %d cuts happened before the command ended", cuts);

	/* the expected output, built here */
	size_t cap = 3000000, len = 0;
	char *want = malloc(cap);
	for (int i = 1; i <= 400000; i++)
		len += (size_t)snprintf(want + len, cap - len, "%d\n", i);
	int same = r.res.out_len == len && memcmp(r.res.out, want, len) == 0;
	size_t first_diff = 0;
	while (!same && first_diff < len && first_diff < r.res.out_len && r.res.out[first_diff] == (uint8_t)want[first_diff])
		first_diff++;
	free(want);
	size_t elen = 0;
	char ewant[8000];
	for (int i = 1; i <= 1000; i++)
		elen += (size_t)snprintf(ewant + elen, sizeof ewant - elen, "%d\n", i);
	int esame = r.res.err_len == elen && memcmp(r.res.err, ewant, elen) == 0;
	size_t got = r.res.out_len;
	sbx_exec_result_free(&r.res);
	CHECKF(same, "stdout differs: %zu bytes, want %zu, first difference at %zu", got, len, first_diff);
	CHECK(esame);
}

static void test_listen_many_connections(void)
{
	enum { N = 16 };
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent3.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *ss[N] = {0};
	static rec recs[N];
	static char ids[N][16];
	int nready = 0;
	for (int i = 0; i < N; i++) {
		ss[i] = connect_ready(sock, 0);
		nready += ss[i] != NULL;
	}
	/* one long command on the first connection while the others come and go */
	static rec longr;
	longr = (rec){0};
	const char *l[] = {"sh", "-c", "sleep 1; echo long", NULL};
	sbx_exec_opts lo = {.argv = l, .on_done = rec_done, .ud = &longr};
	sbx_error err;
	int ok = nready == N && sbx_exec(ss[0], &lo, &err) != NULL;
	for (int i = 0; ok && i < N; i++) {
		recs[i] = (rec){0};
		snprintf(ids[i], sizeof ids[i], "%d", i);
		const char *a[] = {"sh", "-c", "sleep 0.2; echo conn-$0", ids[i], NULL};
		sbx_exec_opts o = {.argv = a, .on_done = rec_done, .ud = &recs[i]};
		ok = sbx_exec(ss[i], &o, &err) != NULL;
	}
	int alldone = 0;
	uint64_t end = sbx_now_ms() + 60000;
	while (ok && !alldone && sbx_now_ms() < end) {
		alldone = longr.done;
		for (int i = 0; i < N; i++)
			alldone = alldone && recs[i].done;
		sbx_loop_run_once(g_loop, 50);
	}
	int same_boot = 1;
	for (int i = 1; i < N && nready == N; i++)
		same_boot = same_boot && strcmp(sbx_session_boot_id(ss[i]), sbx_session_boot_id(ss[0])) == 0;
	/* closing some connections leaves the others working */
	for (int i = 1; i < N; i += 2) {
		sbx_session_close(ss[i]);
		ss[i] = NULL;
	}
	sbx_exec_result x = {0};
	const char *e[] = {"echo", "after", NULL};
	int xrc = ss[2] ? it_exec(ss[2], &x, e) : -1;
	for (int i = 0; i < N; i++)
		sbx_session_close(ss[i]);
	it_stop_listener(agent, SIGTERM);

	CHECK_EQ_INT(nready, N);
	CHECK(ok);
	CHECK(alldone);
	for (int i = 0; i < N; i++) {
		char want[32];
		snprintf(want, sizeof want, "conn-%d\n", i);
		CHECKF(recs[i].res.out && strcmp((char *)recs[i].res.out, want) == 0, "connection %d: %s", i,
		       recs[i].res.error.message);
		sbx_exec_result_free(&recs[i].res);
	}
	CHECK_EQ_STR((char *)longr.res.out, "long\n");
	sbx_exec_result_free(&longr.res);
	CHECK(same_boot);
	CHECK(xrc == 0);
	CHECK_EQ_STR((char *)x.out, "after\n");
	sbx_exec_result_free(&x);
}

typedef struct up_rec {
	int done, reached;
	sbx_error err;
} up_rec;

static void up_progress(void *ud, uint64_t done, uint64_t total)
{
	(void)total;
	up_rec *u = ud;
	if (done >= (8u << 20))
		u->reached = 1;
}

static void up_done(void *ud, sbx_file_result *r)
{
	up_rec *u = ud;
	u->done++;
	u->err = r->error;
}

/* The connection drops in the middle of an upload: the call fails (a
 * transfer is not resumed), the target keeps its old content, the agent
 * removes its temp file, and the session reconnects for the next call. */
static void test_listen_cut_mid_upload(void)
{
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent5.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *s = connect_ready(sock, 1);
	if (!s)
		it_stop_listener(agent, SIGKILL);
	CHECK(s);
	CHECK(it_write_local(wd_path("cut.txt"), "old content", 11) == 0);
	size_t n = 64u << 20;
	uint8_t *big = malloc(n);
	static up_rec u;
	u = (up_rec){0};
	sbx_file_opts fo = SBX_FILE_OPTS_INIT;
	fo.path = "cut.txt";
	fo.data = big;
	fo.len = n;
	fo.on_progress = up_progress;
	fo.on_done = up_done;
	fo.ud = &u;
	sbx_error err;
	int ok = big && (memset(big, 'N', n), sbx_write_file(s, &fo, &err) != NULL);
	uint64_t end = sbx_now_ms() + 30000;
	while (ok && !u.reached && !u.done && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 10);
	int temps_during = it_count_entries(g_dir, ".cut.txt.sbx-");
	int cut = u.reached && !u.done ? it_cut_connection(sock) : -2;
	if (ok)
		it_run_until(g_loop, &u.done, 30);
	free(big);
	int temps = 1;
	end = sbx_now_ms() + 5000;
	while ((temps = it_count_entries(g_dir, ".cut.txt.sbx-")) > 0 && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 20);
	size_t len = 0;
	uint8_t *got = it_read_local(wd_path("cut.txt"), &len);
	int same = got && len == 11 && memcmp(got, "old content", 11) == 0;
	free(got);
	sbx_exec_result x = {0};
	const char *e[] = {"echo", "reconnected", NULL};
	int xrc = sbx_session_failure(s) ? -1 : it_exec(s, &x, e);
	sbx_session_close(s);
	it_stop_listener(agent, SIGTERM);

	CHECK(ok);
	CHECK_EQ_INT(temps_during, 1);
	CHECKF(cut == 0, "could not cut the connection mid-upload (%d)", cut);
	CHECK_EQ_INT(u.done, 1);
	CHECK_EQ_INT(u.err.status, SBX_E_CONN);
	CHECKF(strstr(u.err.message, "target is unchanged") != NULL, "%s", u.err.message);
	CHECK(same);
	CHECKF(temps == 0, "%d temp files left", temps);
	CHECKF(xrc == 0, "%s", x.error.message);
	CHECK_EQ_STR((char *)x.out, "reconnected\n");
	sbx_exec_result_free(&x);
}

/* The listening agent is replaced by a new one: the host notices (boot id)
 * and fails the commands that were lost, then works with the new agent. */
static void test_listen_agent_restarted(void)
{
	char sock[256], m[32], arg[64], pat[80];
	snprintf(sock, sizeof sock, "%s/agent4.sock", g_dir);
	it_marker(m, sizeof m);
	snprintf(arg, sizeof arg, "100.%s", m);
	snprintf(pat, sizeof pat, "sleep %s", arg);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *s = connect_ready(sock, 1);
	if (!s)
		it_stop_listener(agent, SIGKILL);
	CHECK(s);
	char boot1[64];
	snprintf(boot1, sizeof boot1, "%s", sbx_session_boot_id(s));
	static rec r;
	r = (rec){0};
	const char *a[] = {"sleep", arg, NULL};
	sbx_exec_opts o = {.argv = a, .on_done = rec_done, .ud = &r};
	sbx_error err;
	int ok = sbx_exec(s, &o, &err) != NULL;
	uint64_t end = sbx_now_ms() + 10000;
	while (ok && it_procs_with(pat, NULL, 0) < 1 && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 20);
	it_stop_listener(agent, SIGKILL);
	it_kill_marked(pat);
	pid_t agent2 = it_start_listener(sock, g_dir);
	if (ok)
		it_run_until(g_loop, &r.done, 60);
	char boot2[64] = "";
	uint64_t until = sbx_now_ms() + 20000;
	while (!sbx_session_ready(s) && !sbx_session_failure(s) && sbx_now_ms() < until)
		sbx_loop_run_once(g_loop, 20);
	snprintf(boot2, sizeof boot2, "%s", sbx_session_boot_id(s));
	sbx_exec_result x = {0};
	const char *e[] = {"echo", "new agent", NULL};
	int xrc = sbx_session_failure(s) ? -1 : it_exec(s, &x, e);
	sbx_session_close(s);
	it_stop_listener(agent2, SIGTERM);

	CHECK(ok);
	CHECK(agent2 > 0);
	CHECK_EQ_INT(r.ndone, 1);
	CHECK_ERR(r.res.error, SBX_E_CONN, "restarted");
	CHECK(strstr(r.res.error.message, "restarted") != NULL);
	CHECK(strcmp(boot1, boot2) != 0);
	CHECKF(xrc == 0, "%s", x.error.message);
	CHECK_EQ_STR((char *)x.out, "new agent\n");
	sbx_exec_result_free(&x);
}

/* ---------------------------------------------------------------- a dying agent */

typedef struct closed_rec {
	int calls;
	sbx_error why;
} closed_rec;

static void on_closed(sbx_session *s, const sbx_error *why, void *ud)
{
	(void)s;
	closed_rec *c = ud;
	c->calls++;
	c->why = *why;
}

typedef struct file_rec {
	int done;
	sbx_error err;
} file_rec;

static void file_done(void *ud, sbx_file_result *r)
{
	file_rec *f = ud;
	f->done = 1;
	f->err = r->error;
}

static void test_agent_killed_mid_command(void)
{
	static closed_rec cr;
	cr = (closed_rec){0};
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_dir, .host = 1};
	sbx_session_opts so = {.on_closed = on_closed, .ud = &cr};
	sbx_session *s = sbx_session_local(g_loop, &lo, &so, &err);
	CHECK(s);
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		sbx_session_close(s);
		CHECKF(0, "%s", err.message);
	}
	sbx_exec_result x;
	const char *pp[] = {"sh", "-c", "echo $PPID", NULL};
	int rc = it_exec(s, &x, pp);
	pid_t agent = rc == 0 ? (pid_t)atoi((char *)x.out) : -1;
	sbx_exec_result_free(&x);
	if (agent <= 1) {
		sbx_session_close(s);
		CHECKF(0, "cannot learn the agent's pid");
	}

	char m[32], arg[64], pat[80];
	it_marker(m, sizeof m);
	snprintf(arg, sizeof arg, "100.%s", m);
	snprintf(pat, sizeof pat, "sleep %s", arg);
	static rec recs[3];
	const char *a[] = {"sleep", arg, NULL};
	for (int i = 0; i < 3; i++) {
		recs[i] = (rec){0};
		sbx_exec_opts o = {.argv = a, .on_done = rec_done, .ud = &recs[i]};
		CHECK(sbx_exec(s, &o, &err) != NULL);
	}
	uint64_t end = sbx_now_ms() + 10000;
	while (it_procs_with(pat, NULL, 0) < 3 && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 20);
	/* and an upload in flight (it cannot finish: the loop does not run
	 * before the kill) */
	size_t n = 256u << 20;
	static file_rec fr;
	fr = (file_rec){0};
	uint8_t *big = calloc(1, n);
	sbx_file_opts fo = SBX_FILE_OPTS_INIT;
	fo.path = "killed-upload.bin";
	fo.data = big;
	fo.len = n;
	fo.on_done = file_done;
	fo.ud = &fr;
	int wok = big && sbx_write_file(s, &fo, &err) != NULL;
	kill(agent, SIGKILL);
	int alldone = 0;
	end = sbx_now_ms() + 30000;
	while (!alldone && sbx_now_ms() < end) {
		sbx_loop_run_once(g_loop, 50);
		alldone = recs[0].done && recs[1].done && recs[2].done && (!wok || fr.done);
	}
	const sbx_error *f = sbx_session_failure(s);
	sbx_error failure = f ? *f : (sbx_error){0};
	sbx_call *after = sbx_exec(s, &(sbx_exec_opts){.argv = a}, &err);
	sbx_session_close(s);
	free(big);
	it_kill_marked(pat); /* the agent could not take its commands along */

	CHECK(alldone);
	for (int i = 0; i < 3; i++) {
		CHECKF(recs[i].res.error.status == SBX_E_CONN, "call %d: status %d", i, recs[i].res.error.status);
		CHECKF(strstr(recs[i].res.error.message, "killed by signal 9") != NULL, "call %d: %s", i,
		       recs[i].res.error.message);
		CHECK_EQ_INT(recs[i].ndone, 1);
		sbx_exec_result_free(&recs[i].res);
	}
	CHECK(wok);
	CHECK_EQ_INT(fr.err.status, SBX_E_CONN);
	CHECK(strstr(fr.err.message, "killed by signal 9") != NULL);
	CHECK_EQ_INT(failure.status, SBX_E_CONN);
	CHECK(strstr(failure.message, "killed by signal 9") != NULL);
	CHECK_EQ_INT(cr.calls, 1);
	CHECK(strstr(cr.why.message, "killed by signal 9") != NULL);
	CHECK(after == NULL);
	CHECK_EQ_INT(err.status, SBX_E_CONN);
	CHECK(access(wd_path("killed-upload.bin"), F_OK) != 0); /* never committed */
}

/* Closing a session fails its pending calls as cancelled, at once. */
static void test_close_with_pending_calls(void)
{
	sbx_session *s = it_local(g_loop, g_dir, 0);
	CHECK(s);
	static rec r1, r2;
	r1 = (rec){0};
	r2 = (rec){0};
	const char *a[] = {"sleep", "30", NULL};
	sbx_exec_opts o1 = {.argv = a, .on_done = rec_done, .ud = &r1};
	sbx_exec_opts o2 = {.argv = a, .on_done = rec_done, .ud = &r2, .stream_stdin = 1};
	sbx_error err;
	int ok = sbx_exec(s, &o1, &err) && sbx_exec(s, &o2, &err);
	it_run_for(g_loop, 200);
	size_t pending = sbx_session_pending(s);
	uint64_t t0 = sbx_now_ms();
	sbx_session_close(s);
	uint64_t took = sbx_now_ms() - t0;
	CHECK(ok);
	CHECK_EQ_INT(pending, 2);
	CHECK_EQ_INT(r1.ndone, 1);
	CHECK_EQ_INT(r2.ndone, 1);
	CHECK_ERR(r1.res.error, SBX_E_CANCELLED, "cancelled");
	CHECK_ERR(r2.res.error, SBX_E_CANCELLED, "cancelled");
	sbx_exec_result_free(&r1.res);
	sbx_exec_result_free(&r2.res);
	CHECKF(took < 10000, "close took %llu ms", (unsigned long long)took);
}

/* A caller may close the session from inside any of its callbacks. */
static sbx_session *g_closing;
static int g_close_done;
static sbx_error g_close_err;

static void close_on_done(void *ud, sbx_exec_result *r)
{
	(void)ud;
	g_close_done++;
	g_close_err = r->error;
	sbx_session_close(g_closing);
}

static void close_on_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	(void)ud;
	(void)fd;
	(void)p;
	(void)n;
	sbx_session_close(g_closing);
}

static void close_on_progress(void *ud, uint64_t done, uint64_t total)
{
	(void)ud;
	(void)done;
	(void)total;
	sbx_session_close(g_closing);
}

static void close_file_done(void *ud, sbx_file_result *r)
{
	(void)ud;
	g_close_done++;
	g_close_err = r->error;
}

static void test_close_from_callbacks(void)
{
	sbx_error err;
	const char *echo[] = {"echo", "x", NULL};

	/* on_done of a call cancelled before it started (run by sbx_call_cancel) */
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_dir, .host = 1};
	g_closing = sbx_session_local(g_loop, &lo, NULL, &err);
	CHECK(g_closing);
	g_close_done = 0;
	sbx_exec_opts o = {.argv = echo, .on_done = close_on_done};
	sbx_call *c = sbx_exec(g_closing, &o, &err);
	CHECK(c);
	sbx_call_cancel(c);
	CHECK_EQ_INT(g_close_done, 1);
	CHECK_ERR(g_close_err, SBX_E_CANCELLED, "cancelled");

	/* on_done of a completed command, with another call still pending */
	g_closing = it_local(g_loop, g_dir, 0);
	CHECK(g_closing);
	g_close_done = 0;
	static rec other;
	other = (rec){0};
	const char *sl[] = {"sleep", "30", NULL};
	sbx_exec_opts o2 = {.argv = sl, .on_done = rec_done, .ud = &other};
	CHECK(sbx_exec(g_closing, &o2, &err));
	CHECK(sbx_exec(g_closing, &o, &err));
	it_run_until(g_loop, &other.done, 30);
	CHECK_EQ_INT(g_close_done, 1);
	CHECK_EQ_INT(g_close_err.status, SBX_OK);
	CHECK_EQ_INT(other.ndone, 1);
	CHECK_ERR(other.res.error, SBX_E_CANCELLED, "cancelled");
	sbx_exec_result_free(&other.res);

	/* on_output while the command streams */
	g_closing = it_local(g_loop, g_dir, 0);
	CHECK(g_closing);
	g_close_done = 0;
	const char *y[] = {"yes", NULL};
	sbx_exec_opts o3 = {.argv = y, .on_output = close_on_output, .on_done = close_on_done};
	CHECK(sbx_exec(g_closing, &o3, &err));
	it_run_until(g_loop, &g_close_done, 30);
	CHECK_EQ_INT(g_close_done, 1);
	CHECK_ERR(g_close_err, SBX_E_CANCELLED, "cancelled");

	/* on_progress of an upload (the first one runs inside sbx_write_file) */
	g_closing = it_local(g_loop, g_dir, 0);
	CHECK(g_closing);
	g_close_done = 0;
	static uint8_t data[200000];
	sbx_file_opts fo = SBX_FILE_OPTS_INIT;
	fo.path = "closed-in-progress.bin";
	fo.data = data;
	fo.len = sizeof data;
	fo.on_progress = close_on_progress;
	fo.on_done = close_file_done;
	sbx_write_file(g_closing, &fo, &err);
	it_run_until(g_loop, &g_close_done, 30);
	it_run_for(g_loop, 100);
	CHECK_EQ_INT(g_close_done, 1);
	CHECK_ERR(g_close_err, SBX_E_CANCELLED, "cancelled");
	CHECK(access(wd_path("closed-in-progress.bin"), F_OK) != 0);
}

/* ---------------------------------------------------------------- command transports */

static void test_command_transport(void)
{
	const char *argv[] = {"sh", "-c", "exec \"$SBX_AGENT\" --stdio", NULL};
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	CHECK(s);
	int ready = sbx_session_wait_ready(s, 30, &err);
	sbx_exec_result x = {0};
	const char *e[] = {"sh", "-c", "echo via command; echo e >&2; exit 4", NULL};
	int rc = ready == 0 ? it_exec(s, &x, e) : -1;
	char ver[32];
	snprintf(ver, sizeof ver, "%s", sbx_session_agent_version(s));
	sbx_session_close(s);
	CHECKF(ready == 0, "%s", err.message);
	CHECK(rc == 0);
	CHECK_EQ_STR((char *)x.out, "via command\n");
	CHECK_EQ_STR((char *)x.err, "e\n");
	CHECK_EQ_INT(x.exit_code, 4);
	sbx_exec_result_free(&x);
	CHECK(ver[0] != 0);
}

static void test_command_transport_fails(void)
{
	const char *argv[] = {"sh", "-c", "echo 'pod not found' >&2; exit 1", NULL};
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	CHECK(s);
	int rc = sbx_session_wait_ready(s, 30, &err);
	sbx_session_close(s);
	CHECK(rc == -1);
	CHECK_EQ_INT(err.status, SBX_E_CONN);
	CHECKF(strstr(err.message, "pod not found") != NULL, "%s", err.message);
	CHECKF(strstr(err.message, "exited with status 1") != NULL, "%s", err.message);

	/* a command that cannot even start */
	const char *nx[] = {"/nonexistent/kubectl", "exec", NULL};
	s = sbx_session_command(g_loop, nx, NULL, &err);
	if (s) {
		rc = sbx_session_wait_ready(s, 30, &err);
		sbx_session_close(s);
		CHECK(rc == -1);
	}
	CHECKF(strstr(err.message, "/nonexistent/kubectl") != NULL, "%s", err.message);
	CHECKF(strstr(err.message, "No such file") != NULL, "%s", err.message);

	/* a command that never speaks: wait_ready times out, close ends it */
	char m[32], arg[64], pat[80];
	it_marker(m, sizeof m);
	snprintf(arg, sizeof arg, "30.%s", m);
	snprintf(pat, sizeof pat, "sleep %s", arg);
	const char *quiet[] = {"sleep", arg, NULL};
	s = sbx_session_command(g_loop, quiet, NULL, &err);
	CHECK(s);
	rc = sbx_session_wait_ready(s, 0.5, &err);
	sbx_session_close(s);
	CHECK(rc == -1);
	CHECK_EQ_INT(err.status, SBX_E_CONN);
	CHECKF(strstr(err.message, "HELLO") != NULL, "%s", err.message);
	CHECK_EQ_INT(it_wait_procs_gone(pat, 5), 0);

	CHECK(sbx_session_command(g_loop, (const char *const[]){NULL}, NULL, &err) == NULL);
	CHECK_EQ_INT(err.status, SBX_E_INVALID);
}

/* ---------------------------------------------------------------- isolation */

static void test_isolated_sandbox(void)
{
	char wd[128];
	it_tmpdir(wd, sizeof wd, "iso");
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = wd, .host = 1, .isolate = 1};
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0) {
		if (s)
			sbx_session_close(s);
		it_rm_rf(wd);
		if (strstr(err.message, "namespace") || strstr(err.message, "Operation not permitted"))
			SKIP("no user namespaces here: %.200s", err.message);
		CHECKF(0, "%s", err.message);
	}
	char m[32], inside[128], outside[128], script[600];
	it_marker(m, sizeof m);
	snprintf(inside, sizeof inside, "/tmp/sbx-it-inside-%s", m);
	snprintf(outside, sizeof outside, "/tmp/sbx-it-outside-%s", m);
	it_write_local(outside, "host", 4);
	snprintf(script, sizeof script,
		 "ls /sys/class/net; echo --;"
		 "grep -c : /proc/net/dev; echo --;"
		 "tr '\\0' ' ' < /proc/1/cmdline; echo; echo --;"
		 "echo sandboxed > %s && cat %s; echo --;"
		 "test -e %s && echo visible || echo hidden; echo --;"
		 "id -u; pwd",
		 inside, inside, outside);
	const char *a[] = {"sh", "-c", script, NULL};
	sbx_exec_result x = {0};
	int rc = it_exec(s, &x, a);
	/* users still switch (the id map covers them) */
	sbx_exec_result y = {0};
	const char *id[] = {"id", "-u", NULL};
	sbx_exec_opts yo = {.argv = id, .user = "nobody"};
	int yrc = geteuid() == 0 ? sbx_exec_sync(s, &yo, &y) : 0;
	/* files written inside land in the workdir, visible to the host */
	sbx_file_result fr;
	int frc = 0;
	sbx_file_opts fo = SBX_FILE_OPTS_INIT;
	fo.path = "from-inside.txt";
	fo.data = "iso";
	fo.len = 3;
	frc = sbx_write_file_sync(s, &fo, &fr);
	sbx_session_close(s);
	int leaked = access(inside, F_OK) == 0;
	unlink(inside);
	unlink(outside);
	char host_copy[256];
	snprintf(host_copy, sizeof host_copy, "%s/from-inside.txt", wd);
	int seen = access(host_copy, F_OK) == 0;
	it_rm_rf(wd);

	CHECKF(rc == 0, "%s", x.error.message);
	const char *out = (char *)x.out;
	/* only a loopback interface; the agent is pid 1 of its own pid namespace */
	const char *head = "lo\n--\n1\n--\n";
	CHECKF(strncmp(out, head, strlen(head)) == 0, "%s", out);
	const char *pid1 = out + strlen(head);
	CHECKF(strncmp(pid1, it_agent(), strlen(it_agent())) == 0, "pid 1 is not the agent: %s", out);
	/* its own /tmp both ways; root inside; the workdir */
	char want[PATH_MAX + 300];
	snprintf(want, sizeof want, "\n--\nsandboxed\n--\nhidden\n--\n0\n%s\n", wd);
	const char *tail = strstr(pid1, "\n--\nsandboxed");
	CHECKF(tail != NULL, "%s", out);
	CHECK_EQ_STR(tail, want);
	sbx_exec_result_free(&x);
	CHECK(!leaked);
	if (geteuid() == 0) {
		CHECKF(yrc == 0, "%s", y.error.message);
		CHECK_EQ_STR((char *)y.out, "65534\n");
		sbx_exec_result_free(&y);
	}
	CHECKF(frc == 0, "%s", fr.error.message);
	CHECK(seen);
}

/* ---------------------------------------------------------------- idle sessions */

/* N sessions on their own loop to the agent listening on sock, ping_ms
 * apart (0: the default); how many became ready. */
static int open_idle(sbx_loop *loop, const char *sock, sbx_session **ss, int n, uint64_t ping_ms)
{
	int nready = 0;
	for (int i = 0; i < n; i++) {
		sbx_error err;
		char key[300];
		sbx_session_opts so = {.ping_ms = ping_ms};
		it_listener_opts(sock, &so, key, sizeof key);
		ss[i] = sbx_session_connect(loop, sock, &so, &err);
		if (ss[i] && sbx_session_wait_ready(ss[i], 30, &err) == 0)
			nready++;
	}
	return nready;
}

static void idle_for(sbx_loop *loop, uint64_t ms)
{
	for (uint64_t end = sbx_now_ms() + ms; sbx_now_ms() < end;)
		sbx_loop_run_once(loop, 20);
}

static int count_ready(sbx_session **ss, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += ss[i] && sbx_session_ready(ss[i]);
	return k;
}

/* Idle sessions cost no wake-ups until a heartbeat is due (by default
 * 15 s away: none fires in two idle seconds, where a per-session 1 s tick
 * would fire 2 N times), and the heartbeats that are due share wake-ups:
 * with a 400 ms ping, N sessions keep pinging (and stay up) in far fewer
 * loop wake-ups than timer firings. Counts, not times. */
static void test_idle_sessions_share_wakeups(void)
{
	enum { N = 200 };
	char sock[256];
	snprintf(sock, sizeof sock, "%s/agent-idle.sock", g_dir);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_loop *loop = sbx_loop_new();
	static sbx_session *quiet[N], *pinging[N];

	int nquiet = open_idle(loop, sock, quiet, N, 0);
	idle_for(loop, 1200); /* the handshake's 1 s tick fires once, then sleeps */
	sbx_loop_stats a, b;
	sbx_loop_get_stats(loop, &a);
	idle_for(loop, 2000);
	sbx_loop_get_stats(loop, &b);
	uint64_t quiet_fired = b.timers_fired - a.timers_fired;
	for (int i = 0; i < N; i++)
		sbx_session_close(quiet[i]);

	int nping = open_idle(loop, sock, pinging, N, 400);
	idle_for(loop, 1200);
	sbx_loop_get_stats(loop, &a);
	idle_for(loop, 2000);
	sbx_loop_get_stats(loop, &b);
	uint64_t fired = b.timers_fired - a.timers_fired, wakeups = b.timer_wakeups - a.timer_wakeups;
	int still = count_ready(pinging, N);
	for (int i = 0; i < N; i++)
		sbx_session_close(pinging[i]);
	sbx_loop_free(loop);
	it_stop_listener(agent, SIGTERM);

	fprintf(stderr, "  idle: %d sessions, %llu timer firings in 2 s at the default ping; with a 400 ms ping "
			"%llu firings in %llu wake-ups\n",
		N, (unsigned long long)quiet_fired, (unsigned long long)fired, (unsigned long long)wakeups);
	CHECK_EQ_INT(nquiet, N);
	CHECK_EQ_INT(nping, N);
	CHECKF(quiet_fired == 0, "%llu timers fired for idle sessions", (unsigned long long)quiet_fired);
	CHECKF(fired >= 2 * N, "only %llu heartbeat ticks for %d sessions", (unsigned long long)fired, N);
	CHECKF(wakeups * 10 <= fired, "%llu wake-ups for %llu firings", (unsigned long long)wakeups,
	       (unsigned long long)fired);
	CHECK_EQ_INT(still, N);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "session");
	g_loop = sbx_loop_new();
	g_healthy = it_local(g_loop, g_dir, 0);

	IT_RUN(test_listen_reconnect_reattach);
	IT_RUN(test_listen_reattach_streaming);
	IT_RUN(test_listen_lost_exec_sent_again);
	IT_RUN(test_listen_many_connections);
	IT_RUN(test_listen_cut_mid_upload);
	IT_RUN(test_listen_agent_restarted);
	IT_RUN(test_idle_sessions_share_wakeups);
	IT_RUN(test_agent_killed_mid_command);
	IT_RUN(test_close_with_pending_calls);
	IT_RUN(test_close_from_callbacks);
	IT_RUN(test_command_transport);
	IT_RUN(test_command_transport_fails);
	IT_RUN(test_isolated_sandbox);

	sbx_session_close(g_healthy);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
