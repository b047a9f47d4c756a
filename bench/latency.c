/* latency.c — one large transfer behind a round trip, on each transport:
 * (a) the local unix socket to a listening agent, (b) the k8s exec
 * WebSocket (TLS) against the API emulator (tests/k8s/emulator.py),
 * (c) the SSM data channel against the Session Manager emulator
 * (tests/aws/ssm_emulator.py). Each goes through bench/delay (a user-space
 * relay holding every chunk RTT/2 each way; this machine has no
 * `tc netem`) at 0, 10 and 40 ms, windows auto-tuned (the default),
 * compression off, random data. Each transfer is a write (upload) and then
 * a read (download) of the same bytes; rows give write+read, that is twice
 * the bytes over the sum of both times; the details give each apart.
 *
 *   latency [MIB [SSM_MIB]]   (LATENCY_MIB, default 1024; LATENCY_SSM_MIB, default 64)
 *
 * SSM moves fewer bytes by default: the Python emulator parses, digests and
 * acknowledges every 1 KiB message (~10 MB/s here), so 1 GiB x 3 round
 * trips would take about ten minutes; rows say the size they moved.
 *
 * Rows, per transport, at 10 and 40 ms: the rate against the same
 * transport's rate at 0 ms.
 *  - unix socket: informational (bench/window.c compares tuned and fixed).
 *  - k8s: the emulator's own ceiling at each round trip, through the relay:
 *    the same bytes written and read through raw exec WebSockets (no agent,
 *    no sbx protocol; see k8s_ceiling), on a row of its own. Target
 *    (issue 15), at 40 ms: >= 80% of the 0 ms rate, or of the ceiling at
 *    40 ms when that is lower ("(emulator)"), for the write and the read
 *    each (lt4w, lt4r): the write is bound by the Python emulator's
 *    ingest, the read by the window, so one figure for both would hide
 *    which one moved.
 *  - SSM: target = what the real session-manager-plugin allows. Its bound,
 *    from aws/session-manager-plugin (src/config/config.go,
 *    src/datachannel/streaming.go,
 *    src/sessionmanagerplugin/session/portsession/basicportforwarding.go and
 *    muxportforwarding.go) and, for the other direction, aws/amazon-ssm-agent
 *    (agent/session/config/config.go, agent/session/datachannel/datachannel.go,
 *    agent/session/plugins/port/port_basic.go and port_mux.go):
 *      - each message carries at most StreamDataPayloadSize = 1024 bytes
 *        (the port loops read into a buffer of that size);
 *      - after each message the loop sleeps time.Sleep(time.Millisecond)
 *        (plugin: ReadStream, transferDataToServer; agent: WritePump,
 *        transferDataToMgs), so one direction moves at most 1024 B per ms;
 *      - sending never waits for acknowledgements: SendInputDataMessage /
 *        SendStreamDataMessage write at once and append to the
 *        OutgoingMessageBuffer (plugin capacity OutgoingMessageBufferCapacity
 *        = 10000, the oldest evicted when full; agent 100000, the new one not
 *        kept when full), which only feeds resends: the
 *        ResendStreamDataMessageScheduler wakes every ResendSleepInterval
 *        (100 ms) and resends the oldest message once it is older than the
 *        RetransmissionTimeout (DefaultTransmissionTimeout 200 ms, then
 *        smoothed RTT with RTTConstant 1/8, RTTVConstant 1/4, at most
 *        MaxTransmissionTimeout 1 s). No window, so the round trip does not
 *        enter: at 10 and at 40 ms the bound is 1024 B / 1 ms = 1.02 MB/s
 *        each way (an upper bound: a Go sleep of 1 ms lasts a little
 *        longer, and sending and reading take time too). With write then
 *        read, write+read is bounded by the same 1.02 MB/s. */
#include <sys/random.h>

#include "backends/aws/api.h"
#include "backends/aws/ssm.h"
#include "core/internal.h"
#include "transport/ssm.h"
#include "transport/transport.h"
#include "unit/aws_fixture.h"

#include "bench.h"

#define PLUGIN_BOUND_MB_S (1024.0 / 1e-3 / 1e6) /* StreamDataPayloadSize per time.Sleep(1 ms) */
#define K8S_TARGET 0.80                         /* of the 0 ms rate (or the ceiling), at 40 ms */

enum { T_UNIX, T_K8S, T_SSM, NTRANSPORTS };
static const int rtts[] = {0, 10, 40};
#define NRTTS (sizeof rtts / sizeof rtts[0])

static const char *dir;
static char delay_bin[4200];
static sbx_loop *loop;
static uint8_t *data;

/* Where each relay points: the agent's socket, the emulators' ports. */
static char agent_sock[4300], k8s_target[64], ssm_target[64];

/* What we started, stopped at exit even when a step fails (bench_die). */
static pid_t relay_pid = -1, k8s_pid = -1;
static aws_agent ssm_agent = {-1, 0};

/* ---------------------------------------------------------------- the relay */

/* Starts bench/delay at rtt_ms in front of target (a unix path or
 * tcp:HOST:PORT); its listening address goes to addr: a unix path, or
 * 127.0.0.1:PORT. */
static pid_t relay_start(int rtt_ms, const char *target, char *addr, size_t len)
{
	static int serial;
	char rtt[16], listen[4400];
	snprintf(rtt, sizeof rtt, "%d", rtt_ms);
	int tcp = strncmp(target, "tcp:", 4) == 0;
	if (tcp)
		snprintf(listen, sizeof listen, "tcp:127.0.0.1:0");
	else
		snprintf(listen, sizeof listen, "%s/relay-%d.sock", dir, serial++);
	int out[2];
	if (pipe(out) < 0)
		bench_die("pipe: %s", strerror(errno));
	const char *argv[] = {delay_bin, rtt, listen, target, NULL};
	pid_t pid = relay_pid = bench_spawn(argv, -1, out[1]);
	close(out[1]);
	char line[64];
	int port = 0;
	if (tcp && (!aws_read_line(out[0], line, sizeof line, 10000) || sscanf(line, "PORT %d", &port) != 1))
		bench_die("bench/delay did not say its port");
	close(out[0]);
	for (int i = 0; !tcp && access(listen, F_OK) != 0; i++)
		if (i > 500)
			bench_die("%s never appeared", listen);
		else
			usleep(10000);
	if (tcp)
		snprintf(addr, len, "127.0.0.1:%d", port);
	else
		snprintf(addr, len, "%s", listen);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	bench_wait(pid);
}

static void stop_children(void)
{
	if (relay_pid > 0)
		kill(relay_pid, SIGTERM);
	if (k8s_pid > 0)
		kill(k8s_pid, SIGTERM);
	if (ssm_agent.pid > 0)
		kill(ssm_agent.pid, SIGTERM);
}

/* ---------------------------------------------------------------- the transfer */

/* When a transfer passed each quarter of its bytes, for the details. */
typedef struct quarters {
	uint64_t t0, at[4];
	uint64_t max_window; /* reads: our largest receive window seen */
	uint64_t n;          /* the transfer's bytes */
	sbx_session *s;
} quarters;

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	(void)total; /* a read's is not known from the start */
	quarters *q = ud;
	for (int i = 0; i < 4; i++)
		if (!q->at[i] && done * 4 >= q->n * (uint64_t)(i + 1))
			q->at[i] = bench_now_ns();
	uint64_t w = sbx_conn_recv_window_total(q->s->conn);
	if (w > q->max_window)
		q->max_window = w;
}

/* "a / b / c / d MB/s": the rate of each quarter of n bytes. */
static const char *quarter_rates(const quarters *q, size_t n, char *buf, size_t len)
{
	double mb = (double)n / 4 / 1e6;
	uint64_t prev = q->t0;
	buf[0] = 0;
	for (int i = 0; i < 4; i++) {
		size_t used = strlen(buf);
		double s = q->at[i] > prev ? (double)(q->at[i] - prev) / 1e9 : 1e-9;
		snprintf(buf + used, len - used, "%s%.0f", i ? " / " : "", mb / s);
		prev = q->at[i];
	}
	return buf;
}

typedef struct rates {
	double write, read; /* MB/s */
	double both;        /* 2n over the sum of both times */
} rates;

static double write_blob(sbx_session *s, size_t n, quarters *q)
{
	sbx_file_opts w = SBX_FILE_OPTS_INIT;
	w.path = "latency-blob";
	w.data = data;
	w.len = n;
	w.no_fsync = 1;
	w.on_progress = on_progress;
	w.ud = q;
	sbx_file_result r;
	q->t0 = bench_now_ns();
	if (sbx_write_file_sync(s, &w, &r) < 0)
		bench_die("write: %s", r.error.message);
	sbx_file_result_free(&r);
	return (double)(bench_now_ns() - q->t0) / 1e9;
}

static double read_blob(sbx_session *s, size_t n, quarters *q)
{
	sbx_file_opts rd = SBX_FILE_OPTS_INIT;
	rd.path = "latency-blob";
	rd.limit = n;
	rd.on_progress = on_progress;
	rd.ud = q;
	sbx_file_result r;
	q->t0 = bench_now_ns();
	if (sbx_read_file_sync(s, &rd, &r) < 0)
		bench_die("read: %s", r.error.message);
	double sec = (double)(bench_now_ns() - q->t0) / 1e9;
	if (r.len != n || memcmp(r.data, data, n) != 0)
		bench_die("read: %zu bytes came back, not the %zu written", r.len, n);
	sbx_file_result_free(&r);
	return sec;
}

/* Median ms of a few `/bin/true` round trips: what the relay's RTT looks
 * like from above the session. */
static double exec_ms(sbx_session *s)
{
	static const char *const argv[] = {"/bin/true", NULL};
	double ms[5];
	for (int i = 0; i < 5; i++) {
		sbx_exec_opts o = {.argv = argv};
		sbx_exec_result r;
		uint64_t t0 = bench_now_ns();
		if (sbx_exec_sync(s, &o, &r) < 0 || r.exit_code != 0)
			bench_die("exec /bin/true: %s", r.error.message);
		ms[i] = (double)(bench_now_ns() - t0) / 1e6;
		sbx_exec_result_free(&r);
	}
	return bench_median(ms, 5);
}

static rates transfer(const char *name, int rtt_ms, sbx_session *s, size_t n)
{
	double ms = exec_ms(s);
	quarters qw = {.s = s, .n = n}, qr = {.s = s, .n = n};
	double tw = write_blob(s, n, &qw), tr = read_blob(s, n, &qr);
	rates r = {n / 1e6 / tw, n / 1e6 / tr, 2 * n / 1e6 / (tw + tr)};
	char a[128], b[128];
	bench_log("%-5s RTT %2d ms (exec round trip %.1f ms): write %.1f MB/s (quarters %s), read %.1f MB/s "
		  "(quarters %s; our window at most %.1f MiB, measured RTT %.1f ms), write+read %.1f MB/s",
		  name, rtt_ms, ms, r.write, quarter_rates(&qw, n, a, sizeof a), r.read,
		  quarter_rates(&qr, n, b, sizeof b), (double)qr.max_window / (1 << 20),
		  (double)sbx_conn_rtt_ns(s->conn) / 1e6, r.both);
	return r;
}

/* ---------------------------------------------------------------- unix socket */

static pid_t unix_agent_start(void)
{
	snprintf(agent_sock, sizeof agent_sock, "%s/agent.sock", dir);
	const char *argv[] = {sbx_default_agent_path(), "--listen", agent_sock, "--insecure-no-auth", "--workdir",
			      dir, NULL};
	pid_t pid = bench_spawn(argv, -1, -1);
	for (int i = 0; access(agent_sock, F_OK) != 0; i++)
		if (i > 500)
			bench_die("%s never appeared", agent_sock);
		else
			usleep(10000);
	return pid;
}

static rates unix_run(int rtt_ms, size_t n)
{
	char addr[4400];
	pid_t relay = relay_start(rtt_ms, agent_sock, addr, sizeof addr);
	sbx_error err;
	sbx_session_opts so = {.compress = SBX_COMPRESS_NEVER};
	sbx_session *s = sbx_session_connect(loop, addr, &so, &err);
	if (!s || sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("session through %s: %s", addr, err.message);
	rates r = transfer("unix", rtt_ms, s, n);
	sbx_session_close(s);
	stop(relay);
	return r;
}

/* ---------------------------------------------------------------- k8s */

static const char *TOKEN = "bench-token";
static char *ca_pem;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		bench_die("cannot read %s", path);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strdup(buf);
}

/* The emulator (TLS) serving pod bench/pod; it lives as long as we do. */
static pid_t k8s_start(void)
{
	char certs[4300], cmd[9000], rootdir[4300];
	snprintf(certs, sizeof certs, "%s/certs", dir);
	snprintf(cmd, sizeof cmd, "tests/net/make-certs.sh %s", certs);
	if (system(cmd) != 0)
		bench_die("cannot make certificates (openssl)");
	snprintf(cmd, sizeof cmd, "%s/ca.pem", certs);
	ca_pem = slurp(cmd);
	snprintf(rootdir, sizeof rootdir, "%s/root", dir);
	int in[2], out[2];
	if (pipe(in) < 0 || pipe(out) < 0)
		bench_die("pipe: %s", strerror(errno));
	const char *argv[] = {"/usr/bin/env", "python3", "tests/k8s/emulator.py", "--tls", certs, "--root", rootdir,
			      "--token", TOKEN, "--pod", "bench/pod", NULL};
	pid_t pid = k8s_pid = bench_spawn(argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	char line[64];
	int port;
	if (!aws_read_line(out[0], line, sizeof line, 30000) || sscanf(line, "PORT %d", &port) != 1)
		bench_die("the k8s emulator did not start");
	close(out[0]);
	snprintf(k8s_target, sizeof k8s_target, "tcp:127.0.0.1:%d", port);
	return pid; /* in[1] stays open: the emulator lives until we exit */
}

static sbx_k8s_conn k8s_conn(const char *addr, char *server, size_t len)
{
	snprintf(server, len, "https://%s", addr);
	return (sbx_k8s_conn){.server = server, .ca_pem = ca_pem, .token = TOKEN};
}

/* The emulator's ceiling through the relay, for the same write then read:
 * n bytes into a raw exec WebSocket running `head -c N >/dev/null`, then n
 * bytes out of one running `head -c N /dev/zero` (no agent, no sbx
 * protocol). Each is timed from the command saying "ready" (the WebSocket
 * is open) to its last byte, which, as sbx's write and read, includes one
 * round trip. (bench/k8s.c's ceiling streams both ways at once through
 * `cat`; at 0 ms that measured below sbx's own sequential write+read here,
 * so it is no ceiling for it.) */
typedef struct raw {
	sbx_transport *t;
	int upload;       /* 1: send n bytes, wait for "done"; 0: receive n bytes */
	size_t n, sent, got;
	int ready, done, ok;
	uint64_t t0, t1;
	char text[64]; /* what the command said, up to "ready\n" (and "done") */
	size_t text_len;
	char why[600];
} raw;

static void raw_pump(raw *e)
{
	while (e->sent < e->n) {
		size_t k = e->n - e->sent > 65536 ? 65536 : e->n - e->sent;
		long w = e->t->ops->write(e->t, data + e->sent, k);
		if (w <= 0) {
			e->t->ops->want_write(e->t, w == 0);
			if (w < 0)
				e->done = 1;
			return;
		}
		e->sent += (size_t)w;
	}
	e->t->ops->want_write(e->t, 0);
}

/* Keeps what the command says; returns how many of p's bytes it took. */
static size_t raw_text(raw *e, const uint8_t *p, size_t n)
{
	size_t k = 0;
	while (k < n && e->text_len < sizeof e->text - 1) {
		e->text[e->text_len++] = (char)p[k++];
		e->text[e->text_len] = 0;
		if (!e->ready && strstr(e->text, "ready\n"))
			break;
	}
	return k;
}

static void raw_data(void *ud, const uint8_t *p, size_t n)
{
	raw *e = ud;
	size_t k = e->ready && !e->upload ? 0 : raw_text(e, p, n);
	if (!e->ready && strstr(e->text, "ready\n")) {
		e->ready = 1;
		e->t0 = bench_now_ns();
		if (e->upload)
			raw_pump(e);
		else if (e->t->ops->write(e->t, (const uint8_t *)"go\n", 3) != 3)
			e->done = 1;
	}
	if (e->upload && strstr(e->text, "done\n"))
		e->ok = 1;
	if (!e->upload && e->ready)
		e->got += n - k;
	if (!e->upload && e->got >= e->n)
		e->ok = 1;
	if (e->ok && !e->done) {
		e->t1 = bench_now_ns();
		e->done = 1;
	}
}

static void raw_writable(void *ud)
{
	raw_pump(ud);
}

static void raw_closed(void *ud, const char *why)
{
	raw *e = ud;
	e->done = 1;
	snprintf(e->why, sizeof e->why, "%s", why);
}

/* Seconds for one raw transfer of n bytes (upload or download). */
static double raw_transfer(const char *addr, int upload, size_t n)
{
	char server[4500], err[600], script[128];
	sbx_k8s_conn k = k8s_conn(addr, server, sizeof server);
	if (upload)
		snprintf(script, sizeof script, "echo ready; head -c %zu >/dev/null && echo done", n);
	else
		snprintf(script, sizeof script, "echo ready; read go; head -c %zu /dev/zero", n);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	sbx_k8s_exec x = {.ns = "bench", .pod = "pod", .argv = argv};
	raw e = {.upload = upload, .n = n};
	e.t = sbx_k8s_transport(loop, &k, &x, err, sizeof err);
	if (!e.t)
		bench_die("exec WebSocket: %s", err);
	e.t->ev = (sbx_transport_events){raw_data, raw_writable, raw_closed};
	e.t->ud = &e;
	while (!e.done)
		sbx_loop_run_once(loop, -1);
	e.t->ops->close(e.t);
	if (!e.ok) {
		bench_log("k8s   the raw exec WebSocket (%s) ended early after %zu bytes sent, %zu received: %s",
			  upload ? "upload" : "download", e.sent, e.got, e.why);
		return -1;
	}
	return (double)(e.t1 - e.t0) / 1e9;
}

/* The raw write and read through the relay, MB/s (all -1: one failed). */
static rates k8s_ceiling(int rtt_ms, size_t n)
{
	char addr[4400];
	pid_t relay = relay_start(rtt_ms, k8s_target, addr, sizeof addr);
	double tw = raw_transfer(addr, 1, n);
	stop(relay); /* the relay serves one connection after another: a fresh one */
	relay = relay_start(rtt_ms, k8s_target, addr, sizeof addr);
	double tr = raw_transfer(addr, 0, n);
	stop(relay);
	if (tw < 0 || tr < 0)
		return (rates){-1, -1, -1};
	rates c = {n / 1e6 / tw, n / 1e6 / tr, 2 * n / 1e6 / (tw + tr)};
	bench_log("k8s   RTT %2d ms: the emulator's ceiling (raw exec WebSocket, %zu MiB): write %.1f MB/s, read %.1f "
		  "MB/s, write+read %.1f MB/s", rtt_ms, n >> 20, c.write, c.read, c.both);
	return c;
}

static rates k8s_run(int rtt_ms, size_t n)
{
	char addr[4400], server[4500];
	pid_t relay = relay_start(rtt_ms, k8s_target, addr, sizeof addr);
	sbx_k8s_conn k = k8s_conn(addr, server, sizeof server);
	const char *argv[] = {sbx_default_agent_path(), "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "bench", .pod = "pod", .argv = argv};
	sbx_session_opts so = {.compress = SBX_COMPRESS_NEVER};
	sbx_error err;
	sbx_session *s = sbx_session_k8s(loop, &k, &x, &so, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0)
		bench_die("no session over the exec WebSocket: %s", err.message);
	rates r = transfer("k8s", rtt_ms, s, n);
	sbx_session_close(s);
	stop(relay);
	return r;
}

/* ---------------------------------------------------------------- SSM */

static aws_emulator ssm_emu;
static sbx_http *http;
static aws_client *ssm_client;
static char key_path[4400];

/* An agent on TCP (as on an instance) and the emulator forwarding to it;
 * the emulator checks no signatures (no --access-key). */
static void ssm_start(void)
{
	char port[16], workdir[4300];
	snprintf(key_path, sizeof key_path, "%s/agent.key", dir);
	snprintf(workdir, sizeof workdir, "%s/instance", dir);
	mkdir(workdir, 0700);
	if (aws_agent_start(&ssm_agent, sbx_default_agent_path(), key_path, workdir) < 0)
		bench_die("the instance's agent did not start");
	snprintf(port, sizeof port, "%d", ssm_agent.port);
	const char *args[] = {"--agent-port", port, NULL};
	if (aws_emulator_start(&ssm_emu, args, NULL) < 0)
		bench_die("ssm_emulator did not start: %s", ssm_emu.child.line);
	snprintf(ssm_target, sizeof ssm_target, "tcp:127.0.0.1:%d", ssm_emu.port);
	http = sbx_http_new(loop);
	aws_credentials cr;
	memset(&cr, 0, sizeof cr);
	snprintf(cr.access_key_id, sizeof cr.access_key_id, "AKIDBENCH");
	snprintf(cr.secret_access_key, sizeof cr.secret_access_key, "bench-secret");
	aws_client_opts o = {.region = "us-east-1", .endpoint_url = ssm_emu.endpoint, .static_creds = &cr};
	sbx_error err;
	if (!(ssm_client = aws_client_new(loop, http, &o, &err)))
		bench_die("aws client: %s", err.message);
}

static void ssm_stop(void)
{
	aws_client_free(ssm_client);
	sbx_http_free(http);
	aws_emulator_stop(&ssm_emu);
	aws_agent_stop(&ssm_agent);
}

typedef struct waiter {
	int done;
	sbx_error err;
	aws_ssm_session s;
} waiter;

static void on_session(void *ud, const sbx_error *err, const aws_ssm_session *s)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	if (s)
		w->s = *s;
}

static void on_terminated(void *ud, const sbx_error *err)
{
	on_session(ud, err, NULL);
}

/* StartSession (straight to the emulator), its StreamUrl pointed at addr. */
static aws_ssm_session ssm_start_session(const char *addr)
{
	char port[16];
	snprintf(port, sizeof port, "%d", ssm_agent.port);
	const char *params[] = {"portNumber", port, "localPortNumber", "0", NULL};
	waiter w = {0};
	sbx_error err;
	if (aws_ssm_start_session(ssm_client, "i-0123456789abcdef0", "AWS-StartPortForwardingSession", params,
				  on_session, &w, &err) < 0)
		bench_die("StartSession: %s", err.message);
	sbx_loop_run_until(loop, &w.done);
	if (w.err.status != SBX_OK)
		bench_die("StartSession: %s", w.err.message);
	const char *path = strstr(w.s.stream_url, "/v1/");
	if (!path)
		bench_die("StreamUrl without /v1/: %s", w.s.stream_url);
	char url[sizeof w.s.stream_url];
	snprintf(url, sizeof url, "ws://%s%s", addr, path);
	snprintf(w.s.stream_url, sizeof w.s.stream_url, "%s", url);
	return w.s;
}

static void ssm_terminate(const char *session_id)
{
	waiter w = {0};
	sbx_error err;
	if (aws_ssm_terminate_session(ssm_client, session_id, on_terminated, &w, &err) == 0)
		sbx_loop_run_until(loop, &w.done);
}

static rates ssm_run(int rtt_ms, size_t n)
{
	char addr[64], why[512];
	pid_t relay = relay_start(rtt_ms, ssm_target, addr, sizeof addr);
	aws_ssm_session as = ssm_start_session(addr);
	sbx_ssm_opts o = {.stream_url = as.stream_url, .token = as.token, .session_id = as.session_id};
	sbx_transport *t = sbx_ssm_transport(loop, &o, why, sizeof why);
	if (!t)
		bench_die("SSM data channel: %s", why);
	sbx_session_opts so = {.compress = SBX_COMPRESS_NEVER, .secret_file = key_path};
	sbx_error err;
	sbx_session *s = sbx_session_transport(loop, t, &so, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0)
		bench_die("session over the SSM data channel: %s", err.message);
	rates r = transfer("ssm", rtt_ms, s, n);
	sbx_session_close(s);
	ssm_terminate(as.session_id);
	stop(relay);
	return r;
}

/* ---------------------------------------------------------------- rows */

static void row(const char *id, const char *what, size_t mib, int rtt_ms, double rate, double base,
		const char *target, const char *status)
{
	char metric[300], a[32], b[32], ratio[32];
	snprintf(metric, sizeof metric, "%zu MiB write+read, %s, RTT %d ms vs 0 ms (delay relay, tuned windows)", mib,
		 what, rtt_ms);
	bench_row(id, metric, BENCH_FMT(a, "%.1f MB/s", rate), BENCH_FMT(b, "%.1f MB/s", base),
		  BENCH_FMT(ratio, "%.2fx", rate / base), target, status);
}

static void unix_rows(const rates *r, size_t mib)
{
	row("lt1", "unix socket", mib, 10, r[1].both, r[0].both, "-", "info");
	row("lt2", "unix socket", mib, 40, r[2].both, r[0].both, "-", "info");
}

static const char *ceiling_text(double c, char *buf, size_t len)
{
	return c > 0 ? (snprintf(buf, len, "%.0f", c), buf) : "failed";
}

/* One direction at 40 ms against its 0 ms rate, the target capped by what
 * the emulator itself moves that way at 40 ms when that is lower. */
static void k8s_target_row(const char *id, const char *what, size_t mib, double at40, double at0, double ceiling40)
{
	char metric[300], target[64], a[32], b[32], ratio[32];
	int capped = ceiling40 > 0 && ceiling40 < at0;
	double want = K8S_TARGET * (capped ? ceiling40 : at0);
	snprintf(metric, sizeof metric, "%zu MiB %s, k8s exec WebSocket (emulator), RTT 40 ms vs 0 ms (delay relay, "
		 "tuned windows)", mib, what);
	BENCH_FMT(target, ">= %.1f MB/s (%.0f%% of %s)", want, K8S_TARGET * 100, capped ? "ceiling" : "0 ms");
	bench_row(id, metric, BENCH_FMT(a, "%.1f MB/s", at40), BENCH_FMT(b, "%.1f MB/s", at0),
		  BENCH_FMT(ratio, "%.2fx", at40 / at0), target, at40 >= want ? "PASS" : "MISS");
}

static void k8s_rows(const rates *r, const rates *ceiling, size_t mib)
{
	char m[300], a[128], c[6][16];
	row("lt3", "k8s exec WebSocket (emulator)", mib, 10, r[1].both, r[0].both, "-", "info");
	row("lt4", "k8s exec WebSocket (emulator)", mib, 40, r[2].both, r[0].both, "-", "info");
	k8s_target_row("lt4w", "write", mib, r[2].write, r[0].write, ceiling[2].write);
	k8s_target_row("lt4r", "read", mib, r[2].read, r[0].read, ceiling[2].read);
	bench_row("lt5", BENCH_FMT(m, "%d MiB write / read, k8s emulator's own ceiling (raw exec WebSocket, no agent), "
				     "RTT 0 / 10 / 40 ms", (int)mib),
		  BENCH_FMT(a, "%s/%s, %s/%s, %s/%s MB/s", ceiling_text(ceiling[0].write, c[0], 16),
			    ceiling_text(ceiling[0].read, c[1], 16), ceiling_text(ceiling[1].write, c[2], 16),
			    ceiling_text(ceiling[1].read, c[3], 16), ceiling_text(ceiling[2].write, c[4], 16),
			    ceiling_text(ceiling[2].read, c[5], 16)),
		  "-", "-", "-", "info");
}

static void ssm_rows(const rates *r, size_t mib)
{
	char target[64];
	BENCH_FMT(target, ">= %.2f MB/s (plugin)", PLUGIN_BOUND_MB_S);
	row("lt6", "SSM data channel (emulator)", mib, 10, r[1].both, r[0].both, target,
	    r[1].both >= PLUGIN_BOUND_MB_S ? "PASS" : "MISS");
	row("lt7", "SSM data channel (emulator)", mib, 40, r[2].both, r[0].both, target,
	    r[2].both >= PLUGIN_BOUND_MB_S ? "PASS" : "MISS");
}

/* ---------------------------------------------------------------- main */

static void fill_random(size_t n)
{
	if (!(data = malloc(n)))
		bench_die("out of memory");
	for (size_t off = 0; off < n;) {
		ssize_t k = getrandom(data + off, n - off, 0);
		if (k > 0)
			off += (size_t)k;
	}
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
	size_t ssm_mib = argc > 2 ? (size_t)atol(argv[2]) : 64;
	signal(SIGPIPE, SIG_IGN);
	aws_fixture_clear_env();
	bench_sibling(argv[0], "delay", delay_bin, sizeof delay_bin);
	fill_random((mib > ssm_mib ? mib : ssm_mib) << 20);
	dir = bench_tmpdir("latency");
	atexit(stop_children);
	loop = sbx_loop_new();
	bench_log("every transfer goes through %s, a user-space relay (no tc netem here)", delay_bin);

	rates r[NTRANSPORTS][NRTTS];
	rates ceiling[NRTTS];
	pid_t agent = unix_agent_start();
	for (size_t i = 0; i < NRTTS; i++)
		r[T_UNIX][i] = unix_run(rtts[i], mib << 20);
	stop(agent);
	unix_rows(r[T_UNIX], mib);

	pid_t emu = k8s_start();
	for (size_t i = 0; i < NRTTS; i++) {
		r[T_K8S][i] = k8s_run(rtts[i], mib << 20);
		ceiling[i] = k8s_ceiling(rtts[i], mib << 20);
	}
	stop(emu);
	k8s_pid = -1;
	k8s_rows(r[T_K8S], ceiling, mib);

	ssm_start();
	for (size_t i = 0; i < NRTTS; i++)
		r[T_SSM][i] = ssm_run(rtts[i], ssm_mib << 20);
	ssm_stop();
	ssm_rows(r[T_SSM], ssm_mib);

	sbx_loop_free(loop);
	free(ca_pem);
	free(data);
	return 0;
}
