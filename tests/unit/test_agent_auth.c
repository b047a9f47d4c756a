/* test_agent_auth.c — a listening agent serves only the host that holds
 * its secret (docs/agent-auth.md), tested as attacks on a real agent
 * (running as root, as on EC2 or in a pod):
 *
 *   - an unprivileged process (uid 65534 via setpriv) connecting over TCP
 *     without the secret, or with a wrong one, is refused with code "auth"
 *     and the agent logs who it was; the host with the secret runs `id`;
 *   - on a unix socket the same process cannot even connect (the socket is
 *     born 0600: no moment after bind when its mode lets others in), and
 *     root without the secret is refused by the handshake;
 *   - an AUTH answer captured from one connection does not open another;
 *   - a connection that never authenticates is closed;
 *   - the agent refuses to listen without a secret unless told
 *     --insecure-no-auth, and refuses a secret file others can read.
 *
 * Runs as root (setpriv needs it); skips otherwise. */
#include "it_util.h"

#include <poll.h>

#include "auth.h"
#include "conn.h"

static char g_dir[256];
static char g_probe[PATH_MAX + 32];

/* A socket connected to addr ("127.0.0.1:PORT" or a path), or -1. */
static int dial(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	if (addr[0] != '/' && colon) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
		inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Runs the agent with extra arguments (NULL-terminated), stderr to log.
 * wait: until addr accepts. The pid, or -1 (exited: *status). */
static pid_t run_agent(const char *addr, const char *log, int wait, int *status, const char *const *extra)
{
	const char *argv[16] = {it_agent(), "--listen", addr};
	int n = 3;
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (!wait)
		return pid;
	uint64_t end = sbx_now_ms() + 30000; /* a loaded machine (the whole suite, ASan) is slow */
	while (sbx_now_ms() < end) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return -1;
		int fd = wait ? dial(addr) : -1;
		if (fd >= 0) {
			close(fd);
			return pid;
		}
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static pid_t start_agent(const char *addr, const char *key, const char *log)
{
	const char *extra[] = {"--secret-file", key, "--workdir", g_dir, NULL};
	return run_agent(addr, log, 1, NULL, extra);
}

/* Runs auth_probe addr [opt val], as uid/gid 65534 when nobody; its stdout
 * into out. Exit status, or -1. */
static int probe(int nobody, const char *addr, const char *opt, const char *val, char *out, size_t len)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		const char *argv[12];
		int n = 0;
		if (nobody) {
			argv[n++] = "setpriv";
			argv[n++] = "--reuid=65534";
			argv[n++] = "--regid=65534";
			argv[n++] = "--clear-groups";
		}
		argv[n++] = g_probe;
		argv[n++] = addr;
		if (opt) {
			argv[n++] = opt;
			argv[n++] = val;
		}
		argv[n] = NULL;
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < len && (r = read(pfd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(pfd[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int log_has(const char *log, const char *needle)
{
	size_t n = 0;
	char *text = (char *)it_read_local(log, &n);
	int found = text && strstr(text, needle) != NULL;
	free(text);
	return found;
}

static void key_path(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.key", g_dir, name);
	sbx_auth_key k;
	char err[300];
	if (sbx_keyfile_create(out, &k, err, sizeof err) < 0)
		fprintf(stderr, "%s\n", err);
}

static const char *wrong_hex(void)
{
	static char hex[2 * SBX_AUTH_KEY_LEN + 1];
	sbx_auth_key k;
	sbx_keyfile_random(&k);
	sbx_auth_key_format(&k, hex);
	return hex;
}

/* ---------------------------------------------------------------- attacks */

static void test_tcp_refuses_unprivileged_process(void)
{
	char addr[64], key[300], log[300], out[1024];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	key_path("tcp", key, sizeof key);
	snprintf(log, sizeof log, "%s/tcp.log", g_dir);
	pid_t agent = start_agent(addr, key, log);
	CHECK(agent > 0);
	int no_secret = probe(1, addr, NULL, NULL, out, sizeof out);
	char out2[1024];
	int wrong = probe(1, addr, "--secret-hex", wrong_hex(), out2, sizeof out2);
	char out3[1024];
	int host = probe(0, addr, "--secret-file", key, out3, sizeof out3);
	it_stop_listener(agent, SIGTERM);
	CHECKF(no_secret == 1 && strncmp(out, "refused auth:", 13) == 0, "no secret: rc %d: %.300s", no_secret, out);
	CHECKF(strstr(out, "this session has none") != NULL, "%.300s", out);
	CHECKF(wrong == 1 && strncmp(out2, "refused auth:", 13) == 0, "wrong secret: rc %d: %.300s", wrong, out2);
	CHECKF(strstr(out2, "does not match") != NULL, "%.300s", out2);
	CHECKF(host == 0 && strcmp(out3, "uid 0\n") == 0, "with the secret: rc %d: %.300s", host, out3);
	CHECKF(log_has(log, "connection from 127.0.0.1:") && log_has(log, "authentication failed"),
	       "the agent's log does not name the refused peer");
}

static void test_unix_socket_refuses(void)
{
	char sock[300], key[300], log[300], out[1024], out2[1024], out3[1024], out4[1024];
	snprintf(sock, sizeof sock, "%s/agent.sock", g_dir);
	key_path("unix", key, sizeof key);
	snprintf(log, sizeof log, "%s/unix.log", g_dir);
	pid_t agent = start_agent(sock, key, log);
	CHECK(agent > 0);
	struct stat st;
	int mode = stat(sock, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
	int nobody = probe(1, sock, NULL, NULL, out, sizeof out);
	int root_no_secret = probe(0, sock, NULL, NULL, out2, sizeof out2);
	int root_wrong = probe(0, sock, "--secret-hex", wrong_hex(), out3, sizeof out3);
	int host = probe(0, sock, "--secret-file", key, out4, sizeof out4);
	it_stop_listener(agent, SIGTERM);
	CHECKF(mode >= 0 && (mode & 077) == 0, "socket mode %03o", mode);
	CHECKF(nobody == 1 && strstr(out, "Permission denied") != NULL, "uid 65534: rc %d: %.300s", nobody, out);
	CHECKF(root_no_secret == 1 && strncmp(out2, "refused auth:", 13) == 0, "root, no secret: %.300s", out2);
	CHECKF(root_wrong == 1 && strncmp(out3, "refused auth:", 13) == 0, "root, wrong secret: %.300s", out3);
	CHECKF(host == 0 && strcmp(out4, "uid 0\n") == 0, "with the secret: rc %d: %.300s", host, out4);
	CHECKF(log_has(log, "connection from uid 0 pid "), "the agent's log does not name the refused peer");
}

/* The socket file never exists with a mode open to others, not even for a
 * moment between bind and a chmod: watched from before the agent starts
 * until it accepts, 20 times. */
static void test_socket_born_private(void)
{
	char key[300], log[300];
	key_path("born", key, sizeof key);
	snprintf(log, sizeof log, "%s/born.log", g_dir);
	int seen = 0, open_modes = 0, worst = 0;
	for (int round = 0; round < 20; round++) {
		char sock[300];
		snprintf(sock, sizeof sock, "%s/born%d.sock", g_dir, round);
		const char *extra[] = {"--secret-file", key, NULL};
		pid_t agent = run_agent(sock, log, 0, NULL, extra);
		uint64_t end = sbx_now_ms() + 10000;
		int fd = -1;
		while (fd < 0 && sbx_now_ms() < end) {
			struct stat st;
			if (lstat(sock, &st) == 0) {
				seen++;
				if (st.st_mode & 077) {
					open_modes++;
					worst = (int)(st.st_mode & 0777);
				}
				fd = dial(sock);
			}
		}
		if (fd >= 0)
			close(fd);
		it_stop_listener(agent, SIGKILL);
	}
	CHECKF(seen >= 20, "saw the socket only %d times", seen);
	CHECKF(open_modes == 0, "%d of %d looks found the socket open to others (mode %03o)", open_modes, seen, worst);
}

/* Reads one frame (at most cap bytes of body) into buf; its length, or -1. */
static int read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	size_t got = 0, want = 4;
	while (got < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		ssize_t r = read(fd, buf + got, want - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		if (got == 4 && want == 4) {
			want = 4 + ((size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3]);
			if (want > cap)
				return -1;
		}
	}
	return (int)got;
}

/* Decodes a frame read by read_frame: its type; the nonce of an AUTH
 * challenge; the code of a GOAWAY. */
static int frame_info(const uint8_t *buf, int n, uint8_t nonce[SBX_AUTH_NONCE_LEN], char *code, size_t code_len)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	char why[200];
	int type = -1;
	if (sbx_msg_decode(buf + 4, (size_t)n - 4, &u, &m, why, sizeof why) == 0) {
		type = m.type;
		if (type == SBX_MSG_AUTH && nonce && sbx_auth_read_challenge(m.body, nonce, why, sizeof why) < 0)
			type = -2;
		if (code)
			snprintf(code, code_len, "%s", m.code);
	}
	msgpack_unpacked_destroy(&u);
	return type;
}

/* A sniffer on the host's side keeps the AUTH answer of one connection
 * and sends it on a new one: the new connection has another nonce, and
 * the agent refuses. */
static void test_replayed_proof_refused(void)
{
	char addr[64], key[300], log[300], err[300];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	key_path("replay", key, sizeof key);
	snprintf(log, sizeof log, "%s/replay.log", g_dir);
	sbx_auth_key k;
	CHECK(sbx_keyfile_read(key, &k, err, sizeof err) == 0);
	pid_t agent = start_agent(addr, key, log);
	CHECK(agent > 0);
	uint8_t buf[4096], n1[SBX_AUTH_NONCE_LEN], n2[SBX_AUTH_NONCE_LEN];
	int fd1 = dial(addr);
	int len = read_frame(fd1, buf, sizeof buf, 5000);
	int t1 = len > 0 ? frame_info(buf, len, n1, NULL, 0) : -1;
	sbx_buf answer = {0};
	sbx_auth_pack_proof(&answer, &k, n1);
	int sent = write(fd1, sbx_buf_head(&answer), sbx_buf_size(&answer)) == (ssize_t)sbx_buf_size(&answer);
	/* the honest connection goes on: HELLO arrives, nothing refused */
	len = read_frame(fd1, buf, sizeof buf, 5000);
	int hello = len > 0 ? frame_info(buf, len, NULL, NULL, 0) : -1;
	int fd2 = dial(addr);
	len = read_frame(fd2, buf, sizeof buf, 5000);
	int t2 = len > 0 ? frame_info(buf, len, n2, NULL, 0) : -1;
	read_frame(fd2, buf, sizeof buf, 5000); /* its HELLO */
	int resent = write(fd2, sbx_buf_head(&answer), sbx_buf_size(&answer)) == (ssize_t)sbx_buf_size(&answer);
	char code[32] = "";
	len = read_frame(fd2, buf, sizeof buf, 5000);
	int t3 = len > 0 ? frame_info(buf, len, NULL, code, sizeof code) : -1;
	char eof;
	struct pollfd p = {.fd = fd2, .events = POLLIN};
	int closed = poll(&p, 1, 5000) == 1 && read(fd2, &eof, 1) == 0;
	close(fd1);
	close(fd2);
	sbx_buf_free(&answer);
	it_stop_listener(agent, SIGTERM);
	CHECK(t1 == SBX_MSG_AUTH && t2 == SBX_MSG_AUTH && sent && resent);
	CHECK_EQ_INT(hello, SBX_MSG_HELLO);
	CHECK(memcmp(n1, n2, sizeof n1) != 0);
	CHECKF(t3 == SBX_MSG_GOAWAY && strcmp(code, "auth") == 0, "replayed answer got frame %d code '%s'", t3, code);
	CHECK(closed);
	CHECK(log_has(log, "the proof does not match"));
}

/* A connection that never answers the challenge does not stay open. */
static void test_silent_connection_closed(void)
{
	char addr[64], key[300], log[300];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	key_path("silent", key, sizeof key);
	snprintf(log, sizeof log, "%s/silent.log", g_dir);
	pid_t agent = start_agent(addr, key, log);
	CHECK(agent > 0);
	int fd = dial(addr);
	uint64_t t0 = sbx_now_ms();
	uint8_t buf[4096];
	ssize_t r;
	do {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 30000) <= 0)
			break;
		r = read(fd, buf, sizeof buf);
	} while (r > 0);
	uint64_t took = sbx_now_ms() - t0;
	close(fd);
	it_stop_listener(agent, SIGTERM);
	CHECKF(took >= 9000 && took < 25000, "closed after %llu ms (the deadline is 10 s)", (unsigned long long)took);
	CHECK(log_has(log, "no handshake in time"));
}

/* ---------------------------------------------------------------- starting */

static void test_listen_needs_a_secret(void)
{
	char addr[64], log[300];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	snprintf(log, sizeof log, "%s/nosecret.log", g_dir);
	int status = 0;
	pid_t pid = run_agent(addr, log, 1, &status, NULL);
	CHECKF(pid < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2, "agent without a secret: pid %d status %d",
	       pid, status);
	CHECK(log_has(log, "--listen needs --secret-file"));
	const char *insecure[] = {"--insecure-no-auth", NULL};
	pid = run_agent(addr, log, 1, &status, insecure);
	CHECK(pid > 0);
	char out[1024];
	int rc = probe(1, addr, NULL, NULL, out, sizeof out); /* anyone: that is what the flag says */
	it_stop_listener(pid, SIGTERM);
	CHECKF(rc == 0 && strcmp(out, "uid 0\n") == 0, "%.300s", out);
}

static void test_secret_file_checked(void)
{
	char addr[64], key[300], log[300];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	snprintf(log, sizeof log, "%s/badkey.log", g_dir);
	key_path("open", key, sizeof key);
	chmod(key, 0644);
	int status = 0;
	const char *extra[] = {"--secret-file", key, NULL};
	pid_t pid = run_agent(addr, log, 1, &status, extra);
	CHECKF(pid < 0 && WEXITSTATUS(status) == 2, "agent took a 0644 secret file");
	CHECK(log_has(log, "open to group or others"));
	char bad[300];
	snprintf(bad, sizeof bad, "%s/bad.key", g_dir);
	CHECK(it_write_local(bad, "not hex at all\n", 15) == 0);
	chmod(bad, 0600);
	extra[1] = bad;
	pid = run_agent(addr, log, 1, &status, extra);
	CHECKF(pid < 0 && WEXITSTATUS(status) == 2, "agent took a malformed secret");
	CHECK(log_has(log, "does not hold a secret"));
}

/* --secret-fd: the secret through an inherited pipe, never a path. */
static void test_secret_fd(void)
{
	char addr[64], key[300], log[300], err[300];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_free_port());
	snprintf(log, sizeof log, "%s/fd.log", g_dir);
	key_path("fd", key, sizeof key);
	sbx_auth_key k;
	CHECK(sbx_keyfile_read(key, &k, err, sizeof err) == 0);
	char hex[2 * SBX_AUTH_KEY_MAX + 2];
	sbx_auth_key_format(&k, hex);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], hex, strlen(hex)) == (ssize_t)strlen(hex));
	close(p[1]);
	char fdnum[16];
	snprintf(fdnum, sizeof fdnum, "%d", p[0]);
	const char *extra[] = {"--secret-fd", fdnum, NULL};
	pid_t pid = run_agent(addr, log, 1, NULL, extra);
	close(p[0]);
	CHECK(pid > 0);
	char out[1024], out2[1024];
	int host = probe(0, addr, "--secret-file", key, out, sizeof out);
	int other = probe(0, addr, NULL, NULL, out2, sizeof out2);
	it_stop_listener(pid, SIGTERM);
	CHECKF(host == 0 && strcmp(out, "uid 0\n") == 0, "%.300s", out);
	CHECKF(other == 1 && strncmp(out2, "refused auth:", 13) == 0, "%.300s", out2);
}

/* --socket-owner: a root agent serving a non-root host (the docker
 * backend) gives that user the socket and trusts its secret file; without
 * the flag that file is refused, and the user still needs the secret. */
static void test_socket_owner(void)
{
	char dir[300], sock[320], key[320], log[320], out[1024], out2[1024];
	snprintf(dir, sizeof dir, "%s/owned", g_dir);
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(key, sizeof key, "%s/agent.key", dir);
	snprintf(log, sizeof log, "%s/owned.log", g_dir);
	sbx_auth_key k;
	char err[300];
	CHECK(mkdir(dir, 0700) == 0 && sbx_keyfile_create(key, &k, err, sizeof err) == 0);
	CHECK(chown(dir, 65534, 65534) == 0 && chown(key, 65534, 65534) == 0 && chmod(g_dir, 0711) == 0);
	int status = 0;
	const char *plain[] = {"--secret-file", key, NULL};
	pid_t pid = run_agent(sock, log, 1, &status, plain);
	CHECKF(pid < 0 && WEXITSTATUS(status) == 2, "agent took a secret file of uid 65534");
	CHECK(log_has(log, "belongs to uid 65534, neither this user nor root"));
	const char *owned[] = {"--secret-file", key, "--socket-owner", "65534:65534", NULL};
	pid = run_agent(sock, log, 1, &status, owned);
	CHECK(pid > 0);
	struct stat st;
	int st_ok = lstat(sock, &st) == 0;
	int bare = probe(1, sock, NULL, NULL, out, sizeof out);
	int with = probe(1, sock, "--secret-file", key, out2, sizeof out2);
	it_stop_listener(pid, SIGTERM);
	chmod(g_dir, 0700);
	CHECKF(st_ok && st.st_uid == 65534 && st.st_gid == 65534 && !(st.st_mode & 077), "socket %u:%u %03o",
	       (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 0777));
	CHECKF(bare == 1 && strncmp(out, "refused auth:", 13) == 0, "uid 65534 without the secret: %.300s", out);
	CHECKF(with == 0 && strcmp(out2, "uid 0\n") == 0, "uid 65534 with the secret: rc %d: %.300s", with, out2);
	const char *bad[] = {"--secret-file", key, "--socket-owner", "-1", NULL};
	pid = run_agent(sock, log, 1, &status, bad);
	CHECKF(pid < 0 && WEXITSTATUS(status) == 2 && log_has(log, "want numeric UID[:GID]"), "--socket-owner -1");
}

int main(void)
{
	if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
		printf("skip test_agent_auth: needs root and setpriv\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(g_probe, sizeof g_probe, "%s/auth_probe", self);
	it_tmpdir(g_dir, sizeof g_dir, "auth");
	IT_RUN(test_tcp_refuses_unprivileged_process);
	IT_RUN(test_unix_socket_refuses);
	IT_RUN(test_socket_born_private);
	IT_RUN(test_replayed_proof_refused);
	IT_RUN(test_silent_connection_closed);
	IT_RUN(test_listen_needs_a_secret);
	IT_RUN(test_secret_file_checked);
	IT_RUN(test_secret_fd);
	IT_RUN(test_socket_owner);
	it_rm_rf(g_dir);
	return test_summary();
}
