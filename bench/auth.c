/* auth.c — what the AUTH handshake costs a session start. Two listening
 * agents, one with a secret (--secret-file) and one without
 * (--insecure-no-auth); each repeat connects a libsbx session to each, waits
 * for the agent's HELLO (for the first, after the AUTH challenge and the
 * host's proof) and closes it, interleaved so drift hits both alike.
 *
 *   auth [REPS]     (default 300)
 *
 * Row a1: session start, over a unix socket and over loopback TCP; the
 * target is at most 1 ms added. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bench.h"
#include "keyfile.h"

static pid_t start_agent(const char *addr, const char *key)
{
	const char *agent = sbx_default_agent_path();
	const char *with_key[] = {agent, "--listen", addr, "--secret-file", key, NULL};
	const char *without[] = {agent, "--listen", addr, "--insecure-no-auth", NULL};
	return bench_spawn(key ? with_key : without, -1, -1);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
		bench_die("no free port: %s", strerror(errno));
	close(fd);
	return ntohs(sin.sin_port);
}

/* Microseconds from connect to the agent's HELLO; dies on failure. */
static double session_start_us(sbx_loop *loop, const char *addr, const char *key)
{
	sbx_session_opts so = {.secret_file = key};
	sbx_error err;
	uint64_t t0 = bench_now_ns();
	sbx_session *s = sbx_session_connect(loop, addr, &so, &err);
	if (!s || sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("session to %s: %s", addr, err.message);
	double us = (double)(bench_now_ns() - t0) / 1000.0;
	sbx_session_close(s);
	return us;
}

/* Waits until a session to addr works (the agent has started). */
static void wait_up(sbx_loop *loop, const char *addr, const char *key)
{
	for (int i = 0; i < 500; i++) {
		sbx_session_opts so = {.secret_file = key};
		sbx_error err;
		sbx_session *s = sbx_session_connect(loop, addr, &so, &err);
		int ok = s && sbx_session_wait_ready(s, 5, &err) == 0;
		sbx_session_close(s);
		if (ok)
			return;
		usleep(10000);
	}
	bench_die("the agent on %s did not answer", addr);
}

static void measure(sbx_loop *loop, const char *kind, const char *with, const char *without, const char *key,
		    int reps)
{
	double *a = calloc((size_t)reps, sizeof *a), *b = calloc((size_t)reps, sizeof *b);
	for (int i = 0; i < reps; i++) {
		a[i] = session_start_us(loop, with, key);
		b[i] = session_start_us(loop, without, NULL);
	}
	double ma = bench_median(a, (size_t)reps), mb = bench_median(b, (size_t)reps);
	bench_log("session start over %s, %d reps, us: with AUTH median %.1f p90 %.1f | without median %.1f p90 %.1f",
		  kind, reps, ma, bench_pct(a, (size_t)reps, 90), mb, bench_pct(b, (size_t)reps, 90));
	char m[160], v1[32], v2[32], v3[32];
	bench_row(strcmp(kind, "a unix socket") == 0 ? "a1" : "a2",
		  BENCH_FMT(m, "session start (connect to HELLO) over %s, median of %d (with AUTH vs without)", kind,
			    reps),
		  BENCH_FMT(v1, "%.0f us", ma), BENCH_FMT(v2, "%.0f us", mb), BENCH_FMT(v3, "%+.0f us", ma - mb),
		  "<= +1000 us", ma - mb <= 1000 ? "PASS" : "MISS");
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 300;
	if (reps < 1)
		reps = 1;
	const char *dir = bench_tmpdir("auth");
	char key[4200], sock_a[4200], sock_b[4200], tcp_a[64], tcp_b[64], err[512];
	snprintf(key, sizeof key, "%s/agent.key", dir);
	snprintf(sock_a, sizeof sock_a, "%s/auth.sock", dir);
	snprintf(sock_b, sizeof sock_b, "%s/noauth.sock", dir);
	snprintf(tcp_a, sizeof tcp_a, "127.0.0.1:%d", free_port());
	snprintf(tcp_b, sizeof tcp_b, "127.0.0.1:%d", free_port());
	sbx_auth_key k;
	if (sbx_keyfile_create(key, &k, err, sizeof err) < 0)
		bench_die("%s", err);
	pid_t pids[4] = {start_agent(sock_a, key), start_agent(sock_b, NULL), start_agent(tcp_a, key),
			 start_agent(tcp_b, NULL)};
	sbx_loop *loop = sbx_loop_new();
	wait_up(loop, sock_a, key);
	wait_up(loop, sock_b, NULL);
	wait_up(loop, tcp_a, key);
	wait_up(loop, tcp_b, NULL);
	measure(loop, "a unix socket", sock_a, sock_b, key, reps);
	measure(loop, "loopback TCP", tcp_a, tcp_b, key, reps);
	sbx_loop_free(loop);
	for (int i = 0; i < 4; i++) {
		kill(pids[i], SIGTERM);
		bench_wait(pids[i]);
	}
	return 0;
}
