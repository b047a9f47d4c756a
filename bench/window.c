/* window.c — what per-stream window auto-tuning buys one stream behind a
 * round trip: 64 MiB written to and read back from a listening agent over
 * a unix socket, through bench/delay (a user-space relay holding every
 * chunk RTT/2 each way; this machine has no `tc netem`), at 0, 10 and
 * 40 ms, with fixed windows (SBX_FIXED_WINDOW=1 on both sides: the agent
 * pins what it grants for writes, the host what it grants for reads) and
 * tuned ones, interleaved so drift hits both alike.
 *
 *   window [MIB]      (default 64)
 *
 * Rows l1 (write) and l2 (read), one per round trip: tuned MB/s against
 * fixed MB/s and their ratio. Informational: no target. */
#include <signal.h>
#include <sys/random.h>

#include "bench.h"

#define NMODES 2 /* fixed, tuned */

static const char *dir;
static char delay_bin[4200];
static uint8_t *data;
static size_t data_len;

static const char *path_in(const char *name)
{
	static char p[2][4400];
	static int i;
	i ^= 1;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

/* Pins (or not) the windows of what is started or connected next. */
static void set_fixed(int fixed)
{
	if (fixed)
		setenv("SBX_FIXED_WINDOW", "1", 1);
	else
		unsetenv("SBX_FIXED_WINDOW");
}

static void wait_for_socket(const char *path)
{
	for (int i = 0; i < 500; i++) {
		if (access(path, F_OK) == 0)
			return;
		usleep(10000);
	}
	bench_die("%s never appeared", path);
}

static pid_t start_agent(int fixed)
{
	const char *sock = path_in(fixed ? "fixed.sock" : "tuned.sock");
	const char *argv[] = {sbx_default_agent_path(), "--listen", sock, "--insecure-no-auth", "--workdir", dir, NULL};
	set_fixed(fixed);
	pid_t pid = bench_spawn(argv, -1, -1);
	wait_for_socket(sock);
	return pid;
}

static pid_t start_relay(int fixed, int rtt_ms, char *listen_path, size_t len)
{
	char rtt[16];
	snprintf(listen_path, len, "%s/relay-%s-%d.sock", dir, fixed ? "fixed" : "tuned", rtt_ms);
	snprintf(rtt, sizeof rtt, "%d", rtt_ms);
	const char *argv[] = {delay_bin, rtt, listen_path, path_in(fixed ? "fixed.sock" : "tuned.sock"), NULL};
	pid_t pid = bench_spawn(argv, -1, -1);
	wait_for_socket(listen_path);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	bench_wait(pid);
}

/* MB/s of one write and one read of data_len bytes, through the relay at
 * rtt_ms to the agent of this mode. */
static void transfer(sbx_loop *loop, int fixed, int rtt_ms, double *write_mbs, double *read_mbs)
{
	char relay[4400];
	pid_t rp = start_relay(fixed, rtt_ms, relay, sizeof relay);
	set_fixed(fixed); /* the host reads it as it connects */
	sbx_error err;
	sbx_session_opts so = {.compress = SBX_COMPRESS_NEVER};
	sbx_session *s = sbx_session_connect(loop, relay, &so, &err);
	if (!s || sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("session through %s: %s", relay, err.message);
	sbx_file_opts w = SBX_FILE_OPTS_INIT;
	w.path = "blob";
	w.data = data;
	w.len = data_len;
	w.no_fsync = 1;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_write_file_sync(s, &w, &r) < 0)
		bench_die("write at %d ms: %s", rtt_ms, r.error.message);
	*write_mbs = (double)data_len / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
	sbx_file_result_free(&r);
	sbx_file_opts rd = SBX_FILE_OPTS_INIT;
	rd.path = "blob";
	rd.limit = data_len;
	t0 = bench_now_ns();
	if (sbx_read_file_sync(s, &rd, &r) < 0)
		bench_die("read at %d ms: %s", rtt_ms, r.error.message);
	*read_mbs = (double)data_len / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
	if (r.len != data_len || memcmp(r.data, data, data_len) != 0)
		bench_die("read at %d ms: %zu bytes came back, not the %zu written", rtt_ms, r.len, data_len);
	sbx_file_result_free(&r);
	sbx_session_close(s);
	stop(rp);
	set_fixed(0);
}

static void row(const char *id, const char *what, int rtt_ms, double tuned, double fixed)
{
	char metric[200], a[32], b[32], ratio[32];
	snprintf(metric, sizeof metric, "%zu MiB %s, unix socket + delay relay, RTT %d ms: tuned vs fixed window",
		 data_len >> 20, what, rtt_ms);
	bench_row(id, metric, BENCH_FMT(a, "%.0f MB/s", tuned), BENCH_FMT(b, "%.0f MB/s", fixed),
		  BENCH_FMT(ratio, "%.2fx", tuned / fixed), "-", "info");
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	data_len = mib << 20;
	data = malloc(data_len);
	if (!data)
		bench_die("out of memory");
	for (size_t off = 0; off < data_len;) {
		ssize_t n = getrandom(data + off, data_len - off, 0);
		if (n > 0)
			off += (size_t)n;
	}
	bench_sibling(argv[0], "delay", delay_bin, sizeof delay_bin);
	dir = bench_tmpdir("window");
	pid_t agents[NMODES] = {start_agent(1), start_agent(0)};
	set_fixed(0);
	sbx_loop *loop = sbx_loop_new();
	const int rtts[] = {0, 10, 40};
	bench_log("each transfer goes through %s, a user-space relay (no tc netem here)", delay_bin);
	for (size_t i = 0; i < sizeof rtts / sizeof rtts[0]; i++) {
		double w[NMODES], r[NMODES];
		for (int mode = 0; mode < NMODES; mode++) {
			transfer(loop, mode == 0, rtts[i], &w[mode], &r[mode]);
			bench_log("RTT %2d ms %s: write %.0f MB/s, read %.0f MB/s", rtts[i], mode == 0 ? "fixed" : "tuned",
				  w[mode], r[mode]);
		}
		row("l1", "write", rtts[i], w[1], w[0]);
		row("l2", "read", rtts[i], r[1], r[0]);
	}
	sbx_loop_free(loop);
	for (int mode = 0; mode < NMODES; mode++)
		stop(agents[mode]);
	free(data);
	return 0;
}
