/* test_block_metadata.c — `sbx-agent --block-metadata` keeps the commands
 * it runs from the instance metadata service (on EC2: the instance role's
 * credentials), tested as attacks on a real root agent.
 *
 * The test makes its own network namespace whose loopback holds
 * 169.254.169.254, fd00:ec2::254 and two ordinary addresses (10.77.0.1,
 * fd00:77::1), and a stand-in metadata server on port 80 of all of them
 * (a child of the test: outside the agent's cgroup, as the SSM agent is).
 * Commands try what a model-written program would (tests/tools/meta_probe):
 *
 *   - as root and as uid 65534: TCP to 169.254.169.254, to the v4-mapped
 *     ::ffff:169.254.169.254, to fd00:ec2::254, TCP fast open, UDP connect
 *     and unconnected UDP sendto — all refused (EPERM);
 *   - a command's setsid'd grandchild — refused;
 *   - uid 65534 moving itself into the agent's cgroup or the root cgroup
 *     first, also from a user namespace of its own — cannot, still refused;
 *   - other addresses — reached;
 *   - a process in the agent's own cgroup and one outside any of this
 *     (the test itself) — reach the metadata server;
 *   - a listening agent with a secret, as on EC2 — the same;
 *   - an agent without --block-metadata (the opt-out) — commands reach it;
 *   - the agent removes its cgroup at exit, and at start the empty ones of
 *     agents that died (SIGKILL) without removing theirs;
 *   - an agent that cannot set the block up (no cgroup2 mounted, not root)
 *     refuses to start and says why, before serving anyone.
 *
 * Runs as root with cgroup2 writable; skips otherwise. */
#include "it_util.h"

#include <sched.h>

#define META4 "169.254.169.254"
#define META6 "fd00:ec2::254"
#define META_MAPPED "::ffff:169.254.169.254"

static char g_probe[PATH_MAX + 32];
static char g_cgroup2[PATH_MAX]; /* where cgroup2 is mounted */
static pid_t g_server = -1;

/* ---------------------------------------------------------------- the network */

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A private network namespace with the addresses on its loopback (these
 * kernels may have no dummy driver). */
static int make_network(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	return sh("ip link set lo up && ip addr add " META4 "/32 dev lo && ip addr add 10.77.0.1/32 dev lo"
		  " && ip -6 addr add " META6 "/128 dev lo && ip -6 addr add fd00:77::1/128 dev lo");
}

/* The stand-in metadata server: every address, port 80, IPv4 and IPv6;
 * answers each connection with a token and closes it. */
static void serve_forever(int fd)
{
	static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Length: 19\r\n\r\nsbx-metadata-token\n";
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		if (write(c, answer, sizeof answer - 1) < 0) {
		}
		close(c);
	}
}

static pid_t start_server(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int zero = 0, one = 1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(80), .sin6_addr = in6addr_any};
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0)
		serve_forever(fd);
	close(fd);
	return pid;
}

/* ---------------------------------------------------------------- cgroups */

/* The cgroup2 mount point, or -1. */
static int find_cgroup2(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int rc = -1;
	while (f && rc < 0 && fgets(line, sizeof line, f)) {
		char dir[PATH_MAX];
		const char *sep = strstr(line, " - ");
		if (sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 && sscanf(line, "%*s %*s %*s %*s %4095s", dir) == 1 &&
		    (size_t)snprintf(out, len, "%s", dir) < len)
			rc = 0;
	}
	if (f)
		fclose(f);
	return rc;
}

/* The cgroup2 directory of process pid ("/proc/PID/cgroup", "0::" line). */
static int cgroup_dir_of(pid_t pid, char *out, size_t len)
{
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "r");
	int rc = -1;
	while (f && rc < 0 && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "0::", 3) == 0 && (size_t)snprintf(out, len, "%s%s", g_cgroup2, line + 3) < len)
			rc = 0;
	}
	if (f)
		fclose(f);
	return rc;
}

/* Can this process make a cgroup next to its own (what the agent needs)? */
static int cgroup2_writable(void)
{
	char dir[PATH_MAX], probe[PATH_MAX + 64];
	if (cgroup_dir_of(getpid(), dir, sizeof dir) < 0)
		return 0;
	snprintf(probe, sizeof probe, "%s/sbx-test-probe-%d", dir, (int)getpid());
	if (mkdir(probe, 0755) < 0)
		return 0;
	rmdir(probe);
	return 1;
}

/* ---------------------------------------------------------------- the agent */

static sbx_session *start_agent(sbx_loop *loop, int block)
{
	const char *argv[] = {it_agent(), "--stdio", block ? "--block-metadata" : NULL, NULL};
	sbx_error err;
	sbx_session *s = sbx_session_command(loop, argv, NULL, &err);
	if (!s)
		return NULL;
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		fprintf(stderr, "agent not ready: %s\n", err.message);
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

/* Runs argv as user (NULL: the agent's, root); its stdout into out. */
static int run_as(sbx_session *s, const char *user, const char *const *argv, char *out, size_t len)
{
	sbx_exec_opts o = {.argv = argv, .user = user, .timeout_s = 30};
	sbx_exec_result r;
	out[0] = 0;
	if (sbx_exec_sync(s, &o, &r) < 0)
		return -1;
	snprintf(out, len, "%s", r.out ? (char *)r.out : "");
	out[strcspn(out, "\n")] = 0;
	int code = r.exit_code;
	sbx_exec_result_free(&r);
	return code;
}

/* meta_probe KIND ADDR run by the agent as user: "reached", "refused", ... */
static const char *probe_as(sbx_session *s, const char *user, const char *kind, const char *addr)
{
	static char out[256];
	const char *argv[] = {g_probe, kind, addr, NULL};
	if (run_as(s, user, argv, out, sizeof out) < 0)
		snprintf(out, sizeof out, "exec failed");
	return out;
}

/* The same, run by the test (outside the agent's cgroups). */
static const char *probe_here(const char *kind, const char *addr)
{
	static char out[256];
	char cmd[PATH_MAX + 300];
	snprintf(cmd, sizeof cmd, "%s %s %s", g_probe, kind, addr);
	FILE *p = popen(cmd, "r");
	out[0] = 0;
	if (!p || !fgets(out, sizeof out, p))
		snprintf(out, sizeof out, "no output");
	if (p)
		pclose(p);
	out[strcspn(out, "\n")] = 0;
	return out;
}

static sbx_loop *g_loop;
static sbx_session *g_blocked; /* an agent with --block-metadata */

/* ---------------------------------------------------------------- the attacks */

/* Every way to the metadata service a command might take, as user. */
static void attack_all_ways(const char *user)
{
	static const char *const ways[][2] = {
		{"tcp", META4},       {"tcp", META_MAPPED}, {"tcp", META6},         {"fastopen", META4},
		{"fastopen", META6},  {"udp", META4},       {"udp", META_MAPPED},   {"udp", META6},
		{"udpconnect", META4}, {"udpconnect", META6},
	};
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		const char *got = probe_as(g_blocked, user, ways[i][0], ways[i][1]);
		CHECKF(strcmp(got, "refused") == 0, "%.20s %.40s as %.20s: %.100s", ways[i][0], ways[i][1], user ? user : "root",
		       got);
	}
}

static void test_root_commands_refused(void)
{
	attack_all_ways(NULL);
}

static void test_other_user_commands_refused(void)
{
	attack_all_ways("nobody");
}

/* A grandchild in its own session, and one of a shell's background jobs. */
static void test_descendants_refused(void)
{
	char cmd[2 * sizeof g_probe + 200], out[256];
	snprintf(cmd, sizeof cmd, "setsid %s tcp " META4 " & wait; sh -c '%s tcp " META6 "'", g_probe, g_probe);
	const char *argv[] = {"sh", "-c", cmd, NULL};
	run_as(g_blocked, "nobody", argv, out, sizeof out);
	CHECKF(strcmp(out, "refused") == 0, "setsid grandchild: %.200s", out);
	sbx_exec_result r;
	CHECK(sbx_exec_sync(g_blocked, &(sbx_exec_opts){.argv = argv, .timeout_s = 30}, &r) == 0);
	CHECKF(strcmp((char *)r.out, "refused\nrefused\n") == 0, "as root: %.200s", (char *)r.out);
	sbx_exec_result_free(&r);
}

/* A command's cgroup is the commands' cgroup, under the agent's own. */
static void commands_cgroup(char *dir, size_t len)
{
	char out[512];
	const char *argv[] = {"sh", "-c", "grep ^0:: /proc/self/cgroup", NULL};
	dir[0] = 0;
	if (run_as(g_blocked, NULL, argv, out, sizeof out) == 0)
		snprintf(dir, len, "%.2000s%.400s", g_cgroup2, out + 3);
}

/* uid 65534 cannot leave the cgroup for its parent or the root. */
static void test_other_user_cannot_leave(void)
{
	char dir[PATH_MAX], procs[2][PATH_MAX + 32], out[256];
	commands_cgroup(dir, sizeof dir);
	CHECKF(strstr(dir, "/sbx-commands-") != NULL, "a command's cgroup: %.200s", dir);
	*strrchr(dir, '/') = 0;
	snprintf(procs[0], sizeof procs[0], "%s/cgroup.procs", dir);
	snprintf(procs[1], sizeof procs[1], "%s/cgroup.procs", g_cgroup2);
	for (int i = 0; i < 2; i++) {
		const char *argv[] = {g_probe, "escape", procs[i], "tcp", META4, NULL};
		run_as(g_blocked, "nobody", argv, out, sizeof out);
		CHECKF(strcmp(out, "refused") == 0, "after writing to %.200s: %.200s", procs[i], out);
	}
}

/* uid 65534 in a user namespace of its own is "root" there, but the
 * cgroup files, the programs and the network belong to the machine's. */
static void test_user_namespace_does_not_help(void)
{
	char procs[PATH_MAX + 32], out[256];
	snprintf(procs, sizeof procs, "%s/cgroup.procs", g_cgroup2);
	const char *argv[] = {"unshare", "-Ur", g_probe, "escape", procs, "tcp", META4, NULL};
	run_as(g_blocked, "nobody", argv, out, sizeof out);
	CHECKF(strcmp(out, "reached") != 0, "%.100s", out);
	const char *probe[] = {"unshare", "-Ur", g_probe, "tcp", META6, NULL};
	run_as(g_blocked, "nobody", probe, out, sizeof out);
	CHECKF(strcmp(out, "reached") != 0, "%.100s", out);
}

static void test_other_addresses_reached(void)
{
	static const char *const addrs[] = {"10.77.0.1", "::ffff:10.77.0.1", "fd00:77::1"};
	for (int u = 0; u < 2; u++)
		for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
			const char *got = probe_as(g_blocked, u ? "nobody" : NULL, "tcp", addrs[i]);
			CHECKF(strcmp(got, "reached") == 0, "%.200s: %.200s", addrs[i], got);
		}
}

/* The agent's own cgroup, and the rest of the machine, keep access. */
static void test_agent_and_machine_reach(void)
{
	CHECKF(strcmp(probe_here("tcp", META4), "reached") == 0, "the test itself: %.200s", probe_here("tcp", META4));
	CHECKF(strcmp(probe_here("tcp", META6), "reached") == 0, "the test itself: %.200s", probe_here("tcp", META6));
	char dir[PATH_MAX], procs[PATH_MAX + 32], cmd[2 * PATH_MAX + 100], out[256] = "";
	commands_cgroup(dir, sizeof dir);
	CHECK(strstr(dir, "/sbx-commands-") != NULL);
	*strrchr(dir, '/') = 0;
	snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
	/* a process of ours joins the agent's cgroup (as root may), then tries */
	snprintf(cmd, sizeof cmd, "%s escape %s tcp " META4, g_probe, procs);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!fgets(out, sizeof out, p))
		out[0] = 0;
	pclose(p);
	CHECKF(strncmp(out, "reached", 7) == 0, "in the agent's cgroup %.200s: %.200s", dir, out);
}

/* As on EC2: a listening agent with a secret (ami/sbx-agent.service). */
static void test_listening_agent_blocks(void)
{
	char dir[64] = "/tmp/sbx-it-nometa-XXXXXX", key[128], addr[64], err[300];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(key, sizeof key, "%s/agent.key", dir);
	sbx_auth_key k;
	CHECKF(sbx_keyfile_create(key, &k, err, sizeof err) == 0, "%.200s", err);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	pid_t pid = fork();
	if (pid == 0) {
		execl(it_agent(), it_agent(), "--listen", addr, "--secret-file", key, "--block-metadata", (char *)NULL);
		_exit(127);
	}
	sbx_session_opts so = {.secret_file = key};
	sbx_session *s = NULL;
	for (int i = 0; i < 2000 && !s && waitpid(pid, NULL, WNOHANG) == 0; i++) {
		sbx_error e;
		s = sbx_session_connect(g_loop, addr, &so, &e);
		if (s && sbx_session_wait_ready(s, 5, &e) < 0) {
			sbx_session_close(s);
			s = NULL;
		}
		if (!s)
			usleep(10000);
	}
	const char *root = s ? probe_as(s, NULL, "tcp", META4) : "no session";
	char root_got[256];
	snprintf(root_got, sizeof root_got, "%s", root);
	const char *nobody = s ? probe_as(s, "nobody", "tcp", META4) : "no session";
	if (s)
		sbx_session_close(s);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	it_rm_rf(dir);
	CHECKF(strcmp(root_got, "refused") == 0 && strcmp(nobody, "refused") == 0, "root: %.100s, nobody: %.100s",
	       root_got, nobody);
}

static void test_opt_out_reaches(void)
{
	sbx_session *s = start_agent(g_loop, 0);
	CHECK(s != NULL);
	const char *root = probe_as(s, NULL, "tcp", META4);
	char root_got[256];
	snprintf(root_got, sizeof root_got, "%s", root);
	const char *nobody = probe_as(s, "nobody", "tcp", META_MAPPED);
	CHECKF(strcmp(root_got, "reached") == 0 && strcmp(nobody, "reached") == 0, "root: %.200s, nobody: %.200s", root_got,
	       nobody);
	sbx_session_close(s);
}

/* Runs the agent with --block-metadata under prefix (a shell snippet that
 * ends in exec); its exit status and stderr. */
static int agent_fails(const char *prefix, char *err, size_t len)
{
	char cmd[2 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "%s %s --stdio --block-metadata </dev/null 2>&1 >/dev/null", prefix, it_agent());
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(err, 1, len - 1, p);
	err[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_refuses_without_cgroup2(void)
{
	char err[4096];
	int rc = agent_fails("unshare -m sh -c 'umount -a -t cgroup2 && exec \"$0\" \"$@\"'", err, sizeof err);
	CHECKF(rc == 2, "exit %d: %.500s", rc, err);
	CHECKF(strstr(err, "no cgroup2 file system mounted") && strstr(err, "refusing to start"), "%.500s", err);
}

static void test_refuses_as_other_user(void)
{
	char err[4096];
	int rc = agent_fails("setpriv --reuid=65534 --regid=65534 --clear-groups", err, sizeof err);
	CHECKF(rc == 2, "exit %d: %.500s", rc, err);
	CHECKF(strstr(err, "Permission denied") && strstr(err, "needs root") && strstr(err, "refusing to start"), "%.500s",
	       err);
}

/* --attach would bridge to a listener that may run without the block. */
static void test_refuses_with_attach(void)
{
	char err[4096];
	int rc = agent_fails("sh -c 'exec \"$0\" --attach /tmp/sbx-nometa-none.sock \"$@\"'", err, sizeof err);
	CHECKF(rc == 2 && strstr(err, "not with --attach"), "exit %d: %.300s", rc, err);
}

/* What a SIGKILLed agent left (an empty sbx-commands-PID, PID gone) goes
 * at the next start; another live agent's stays. */
static void test_stale_cgroups_removed(void)
{
	char dir[PATH_MAX], dead[PATH_MAX + 64], live[PATH_MAX + 64];
	CHECK(cgroup_dir_of(getpid(), dir, sizeof dir) == 0);
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	snprintf(dead, sizeof dead, "%s/sbx-commands-%d", dir, (int)gone);
	snprintf(live, sizeof live, "%s/sbx-commands-%d", dir, (int)g_server);
	CHECK(mkdir(dead, 0755) == 0 && mkdir(live, 0755) == 0);
	sbx_session *s = start_agent(g_loop, 1);
	struct stat st;
	int dead_left = stat(dead, &st) == 0, live_left = stat(live, &st) == 0;
	rmdir(dead);
	rmdir(live);
	CHECK(s != NULL);
	sbx_session_close(s);
	CHECKF(!dead_left && live_left, "dead one left: %d, live one left: %d", dead_left, live_left);
}

/* The commands' cgroup goes with the agent. */
static void test_cgroup_removed_at_exit(void)
{
	sbx_session *s = start_agent(g_loop, 1);
	CHECK(s != NULL);
	sbx_session *keep = g_blocked;
	g_blocked = s;
	char dir[PATH_MAX];
	commands_cgroup(dir, sizeof dir);
	g_blocked = keep;
	CHECKF(strstr(dir, "/sbx-commands-") != NULL, "%.200s", dir);
	sbx_session_close(s);
	struct stat st;
	for (int i = 0; i < 500 && stat(dir, &st) == 0; i++)
		usleep(10000);
	CHECKF(stat(dir, &st) < 0, "%.200s still there", dir);
}

int main(void)
{
	if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
		printf("skip test_block_metadata: needs root and setpriv\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(g_probe, sizeof g_probe, "%s/meta_probe", self);
	if (find_cgroup2(g_cgroup2, sizeof g_cgroup2) < 0 || !cgroup2_writable()) {
		printf("skip test_block_metadata: no writable cgroup2 here (the agent would refuse to start)\n");
		return 0;
	}
	if (make_network() != 0) {
		printf("skip test_block_metadata: cannot make a network namespace with the test addresses\n");
		return 0;
	}
	g_server = start_server();
	g_loop = sbx_loop_new();
	g_blocked = start_agent(g_loop, 1);
	if (g_server < 0 || !g_blocked) {
		printf("FAIL test_block_metadata: %s\n", g_server < 0 ? "no stand-in server" : "agent did not start");
		return 1;
	}
	IT_RUN(test_root_commands_refused);
	IT_RUN(test_other_user_commands_refused);
	IT_RUN(test_descendants_refused);
	IT_RUN(test_other_user_cannot_leave);
	IT_RUN(test_user_namespace_does_not_help);
	IT_RUN(test_other_addresses_reached);
	IT_RUN(test_agent_and_machine_reach);
	IT_RUN(test_listening_agent_blocks);
	IT_RUN(test_opt_out_reaches);
	IT_RUN(test_refuses_without_cgroup2);
	IT_RUN(test_refuses_as_other_user);
	IT_RUN(test_refuses_with_attach);
	IT_RUN(test_cgroup_removed_at_exit);
	IT_RUN(test_stale_cgroups_removed);
	sbx_session_close(g_blocked);
	sbx_loop_free(g_loop);
	kill(g_server, SIGKILL);
	waitpid(g_server, NULL, 0);
	return test_summary();
}
