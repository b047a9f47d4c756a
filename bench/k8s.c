/* k8s.c — Kubernetes exec transports against the API emulator
 * (tests/k8s/emulator.py: HTTPS, WebSocket v5 exec, a pod = a local dir):
 *
 *   sbx      sbx_exec_sync of /bin/true over one persistent session on the
 *            native exec WebSocket (the agent runs in the pod)
 *   ws       a fresh exec WebSocket per command running `/bin/sh -c true`,
 *            waiting for its exit status (the per-call approach)
 *   kubectl  a fresh `kubectl exec POD -- /bin/sh -c true` per command
 *
 * plus a write+read through the session (K8S_MIB, default 1024 MiB) beside
 * the emulator's own ceiling (the same bytes through a raw exec WebSocket
 * running `cat`, no agent and no sbx protocol), and the host's RSS per
 * connected pod session. The emulator is Python, so absolute numbers are
 * the emulator's more than ours: rows bound by it say "(emulator)".
 * Target (issue 3): persistent stream >= 10x fewer ms than a fresh exec
 * WebSocket per command. */
#include <sys/mman.h>

#include "bench.h"
#include "transport/transport.h"

#define REPS 40
#define SESSIONS 16

static sbx_loop *loop;
static char server[100], certs[4200], kubeconfig[4300];
static char *ca_pem;
static const char *TOKEN = "bench-token";

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strdup(buf);
}

static pid_t emu = -1;

static void stop_emulator(void)
{
	if (emu > 0) {
		kill(emu, SIGTERM);
		waitpid(emu, NULL, 0);
	}
	emu = -1;
}

static pid_t start_emulator(const char *dir, int *port)
{
	int in[2], out[2];
	if (pipe(in) < 0 || pipe(out) < 0)
		bench_die("pipe: %s", strerror(errno));
	char rootdir[4300];
	snprintf(rootdir, sizeof rootdir, "%s/root", dir);
	const char *argv[] = {"/usr/bin/env", "python3", "tests/k8s/emulator.py", "--tls", certs, "--root", rootdir,
			      "--token", TOKEN, "--pod", "bench/pod", NULL};
	pid_t pid = bench_spawn(argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char line[64] = "";
	if (!fgets(line, sizeof line, f) || sscanf(line, "PORT %d", port) != 1)
		bench_die("the emulator did not start");
	fclose(f);
	return pid; /* in[1] stays open: the emulator lives as long as we do */
}

static sbx_session *open_session(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	const char *argv[] = {sbx_default_agent_path(), "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "bench", .pod = "pod", .argv = argv};
	sbx_error err;
	sbx_session *s = sbx_session_k8s(loop, &k, &x, NULL, &err);
	if (!s || sbx_session_wait_ready(s, 30, &err) < 0)
		bench_die("no session over the exec WebSocket: %s", err.message);
	return s;
}

static double run_sbx(sbx_session *s)
{
	static const char *const argv[] = {"/bin/true", NULL};
	sbx_exec_opts o = {.argv = argv};
	sbx_exec_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_exec_sync(s, &o, &r) < 0 || r.exit_code != 0)
		bench_die("sbx exec failed: %s", r.error.message);
	uint64_t t1 = bench_now_ns();
	sbx_exec_result_free(&r);
	return (double)(t1 - t0) / 1e6;
}

typedef struct fresh {
	int done;
	char why[600];
} fresh;

static void f_data(void *ud, const uint8_t *p, size_t n)
{
	(void)ud, (void)p, (void)n;
}

static void f_writable(void *ud)
{
	(void)ud;
}

static void f_closed(void *ud, const char *why)
{
	fresh *f = ud;
	f->done = 1;
	snprintf(f->why, sizeof f->why, "%s", why);
}

/* One exec WebSocket running /bin/sh -c true, until its status and close. */
static double run_fresh_ws(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	const char *argv[] = {"/bin/sh", "-c", "true", NULL};
	sbx_k8s_exec x = {.ns = "bench", .pod = "pod", .argv = argv};
	char err[600];
	fresh f = {0};
	uint64_t t0 = bench_now_ns();
	sbx_transport *t = sbx_k8s_transport(loop, &k, &x, err, sizeof err);
	if (!t)
		bench_die("exec WebSocket: %s", err);
	t->ev = (sbx_transport_events){f_data, f_writable, f_closed};
	t->ud = &f;
	while (!f.done)
		sbx_loop_run_once(loop, -1);
	uint64_t t1 = bench_now_ns();
	t->ops->close(t);
	if (!strstr(f.why, "exited with code 0"))
		bench_die("the per-call exec failed: %s", f.why);
	return (double)(t1 - t0) / 1e6;
}

static double run_kubectl(const char *kubectl)
{
	const char *argv[] = {kubectl, "--kubeconfig", kubeconfig, "exec", "-n", "bench", "pod", "--",
			      "/bin/sh", "-c", "true", NULL};
	uint64_t t0 = bench_now_ns();
	int code = bench_wait(bench_spawn(argv, -1, -1));
	uint64_t t1 = bench_now_ns();
	if (code != 0)
		bench_die("kubectl exec exited %d", code);
	return (double)(t1 - t0) / 1e6;
}

static const char *find_kubectl(void)
{
	static char path[512];
	FILE *f = popen("tests/chart/get-helm.sh build/tools 4 kubectl 2>/dev/null", "r");
	if (!f || !fgets(path, sizeof path, f))
		path[0] = 0;
	if (f)
		pclose(f);
	path[strcspn(path, "\n")] = 0;
	return path[0] ? path : NULL;
}

/* The bytes both transfers move: "not very compressible", and periodic
 * (they depend on bits 13-20 of i times an odd constant), so one period
 * stands for any length without holding it all in memory. */
#define PATTERN_PERIOD (2u << 20)

/* A PATTERN_PERIOD buffer mapped and unmapped outright: freed, it leaves
 * no resident heap behind for row k4's sessions to fill unnoticed. */
static uint8_t *period_alloc(void)
{
	void *p = mmap(NULL, PATTERN_PERIOD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		bench_die("out of memory");
	return p;
}

static void period_free(uint8_t *p) { munmap(p, PATTERN_PERIOD); }

static uint8_t *pattern(void)
{
	uint8_t *p = period_alloc();
	for (size_t i = 0; i < PATTERN_PERIOD; i++)
		p[i] = (uint8_t)(i * 2654435761u >> 13);
	return p;
}

/* The emulator's ceiling: n bytes out and back through one exec WebSocket
 * running `cat` (the transport alone: no agent, no session protocol). */
typedef struct echo {
	sbx_transport *t;
	const uint8_t *data; /* one PATTERN_PERIOD */
	size_t n, sent, got;
	int done;
	char why[600];
} echo;

static void echo_pump(echo *e)
{
	while (e->sent < e->n) {
		size_t off = e->sent % PATTERN_PERIOD, k = 65536;
		if (k > PATTERN_PERIOD - off)
			k = PATTERN_PERIOD - off;
		if (k > e->n - e->sent)
			k = e->n - e->sent;
		long w = e->t->ops->write(e->t, e->data + off, k);
		if (w < 0) {
			e->done = 1;
			snprintf(e->why, sizeof e->why, "write failed");
			return;
		}
		if (w == 0) {
			e->t->ops->want_write(e->t, 1);
			return;
		}
		e->sent += (size_t)w;
	}
	e->t->ops->want_write(e->t, 0);
}

static void echo_data(void *ud, const uint8_t *p, size_t n)
{
	(void)p;
	echo *e = ud;
	e->got += n;
	if (e->got >= e->n)
		e->done = 1;
}

static void echo_writable(void *ud)
{
	echo_pump(ud);
}

static void echo_closed(void *ud, const char *why)
{
	echo *e = ud;
	e->done = 1;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static double emulator_ceiling_mb_s(size_t n)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	const char *argv[] = {"cat", NULL};
	sbx_k8s_exec x = {.ns = "bench", .pod = "pod", .argv = argv};
	char err[600];
	uint8_t *data = pattern();
	echo e = {.data = data, .n = n};
	uint64_t t0 = bench_now_ns();
	e.t = sbx_k8s_transport(loop, &k, &x, err, sizeof err);
	if (!e.t)
		bench_die("exec WebSocket: %s", err);
	e.t->ev = (sbx_transport_events){echo_data, echo_writable, echo_closed};
	e.t->ud = &e;
	echo_pump(&e);
	while (!e.done)
		sbx_loop_run_once(loop, -1);
	uint64_t t1 = bench_now_ns();
	e.t->ops->close(e.t);
	period_free(data);
	if (e.got < n)
		bench_die("the raw exec WebSocket through cat ended early: %s", e.why);
	return 2.0 * (double)n / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* path gets n bytes of the pattern. */
static void write_pattern_file(const char *path, size_t n)
{
	uint8_t *p = pattern();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	for (size_t done = 0; done < n;) {
		size_t k = n - done < PATTERN_PERIOD ? n - done : PATTERN_PERIOD;
		if (write(fd, p, k) != (ssize_t)k)
			bench_die("writing %s: %s", path, strerror(errno));
		done += k;
	}
	close(fd);
	period_free(p);
}

/* Whether path holds exactly n bytes of the pattern. */
static int is_pattern_file(const char *path, size_t n)
{
	uint8_t *p = pattern(), *got = period_alloc();
	int fd = open(path, O_RDONLY | O_CLOEXEC), same = fd >= 0;
	size_t done = 0;
	while (same && done < n) {
		size_t k = n - done < PATTERN_PERIOD ? n - done : PATTERN_PERIOD;
		same = read(fd, got, k) == (ssize_t)k && memcmp(got, p, k) == 0;
		done += k;
	}
	if (same && read(fd, got, 1) != 0) /* longer than n */
		same = 0;
	if (fd >= 0)
		close(fd);
	period_free(p);
	period_free(got);
	return same;
}

/* n bytes of the pattern written into the pod and read back, streamed
 * from and to local files (the read lifts the default 100 MiB limit of a
 * read): MB/s both ways together. */
static double transfer_mb_s(sbx_session *s, size_t n, const char *dir)
{
	char src[4200], back[4200];
	snprintf(src, sizeof src, "%s/blob.out", dir);
	snprintf(back, sizeof back, "%s/blob.back", dir);
	write_pattern_file(src, n);
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("%s: %s", src, strerror(errno));
	sbx_file_opts w = SBX_FILE_OPTS_INIT;
	w.path = "blob";
	w.fd = fd;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_write_file_sync(s, &w, &r) < 0 || r.size != n)
		bench_die("write: %s", r.error.message);
	sbx_file_result_free(&r);
	close(fd);
	sbx_file_opts rd = SBX_FILE_OPTS_INIT;
	rd.path = "blob";
	rd.local_path = back;
	rd.limit = UINT64_MAX;
	if (sbx_read_file_sync(s, &rd, &r) < 0 || r.size != n)
		bench_die("read back: %s", r.error.message);
	uint64_t t1 = bench_now_ns();
	sbx_file_result_free(&r);
	if (!is_pattern_file(back, n))
		bench_die("read back: %s differs from what was written", back);
	unlink(src);
	unlink(back);
	return 2.0 * (double)n / ((double)(t1 - t0) / 1e9) / 1e6;
}

int main(void)
{
	const char *dir = bench_tmpdir("k8s");
	snprintf(certs, sizeof certs, "%s/certs", dir);
	char cmd[9000];
	snprintf(cmd, sizeof cmd, "tests/net/make-certs.sh %s", certs);
	if (system(cmd) != 0)
		bench_die("cannot make certificates (openssl)");
	snprintf(cmd, sizeof cmd, "%s/ca.pem", certs);
	ca_pem = slurp(cmd);
	int port;
	emu = start_emulator(dir, &port);
	atexit(stop_emulator); /* bench_die too: no emulator left behind */
	snprintf(server, sizeof server, "https://127.0.0.1:%d", port);
	snprintf(kubeconfig, sizeof kubeconfig, "%s/kubeconfig", dir);
	snprintf(cmd, sizeof cmd,
		 "printf '{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"e\",\"clusters\":[{\"name\":"
		 "\"e\",\"cluster\":{\"server\":\"%s\",\"certificate-authority-data\":\"%%s\"}}],\"users\":[{\"name\":"
		 "\"u\",\"user\":{\"token\":\"%s\"}}],\"contexts\":[{\"name\":\"e\",\"context\":{\"cluster\":\"e\","
		 "\"user\":\"u\"}}]}' \"$(base64 -w0 %s/ca.pem)\" > %s",
		 server, TOKEN, certs, kubeconfig);
	if (system(cmd) != 0)
		bench_die("cannot write the kubeconfig");
	loop = sbx_loop_new();
	sbx_session *s = open_session();
	const char *kubectl = find_kubectl();

	for (int i = 0; i < 5; i++) {
		run_sbx(s);
		run_fresh_ws();
	}
	double a[REPS], b[REPS], c[REPS];
	int nk = 0;
	for (int i = 0; i < REPS; i++) {
		a[i] = run_sbx(s);
		b[i] = run_fresh_ws();
		if (kubectl && i % 4 == 0)
			c[nk++] = run_kubectl(kubectl); /* slow: a quarter as many */
	}
	double ma = bench_median(a, REPS), mb = bench_median(b, REPS), mc = bench_median(c, (size_t)nk);
	bench_log("exec round trip on the emulator, ms: sbx session %.2f | fresh exec WebSocket %.2f | kubectl exec "
		  "%.1f (%d reps)", ma, mb, mc, nk);
	char v1[64], v2[64], v3[64], m[256];
	bench_row("k1", "k8s exec round trip: persistent sbx stream vs a fresh exec WebSocket per command (emulator)",
		  BENCH_FMT(v1, "%.2f ms", ma), BENCH_FMT(v2, "%.2f ms", mb), BENCH_FMT(v3, "%.1fx faster", mb / ma),
		  ">= 10.0x faster", mb >= 10 * ma ? "PASS" : "MISS");
	if (nk)
		bench_row("k2", "k8s exec round trip: persistent sbx stream vs `kubectl exec` per command (emulator)",
			  BENCH_FMT(v1, "%.2f ms", ma), BENCH_FMT(v2, "%.1f ms", mc),
			  BENCH_FMT(v3, "%.1fx faster", mc / ma), "-", "info");
	else
		bench_row("k2", "k8s exec round trip vs `kubectl exec`: no kubectl (get-helm.sh failed)", "-", "-", "-",
			  "-", "info");

	size_t mib = getenv("K8S_MIB") ? (size_t)atol(getenv("K8S_MIB")) : 1024;
	double mbs = transfer_mb_s(s, mib << 20, dir);
	double ceiling = emulator_ceiling_mb_s(mib << 20);
	bench_log("%zu MiB write+read: sbx %.0f MB/s; the emulator's own ceiling (raw exec WebSocket through cat) %.0f MB/s",
		  mib, mbs, ceiling);
	bench_row("k3", BENCH_FMT(m, "%zu MiB write+read through the exec WebSocket vs the emulator's own ceiling "
				     "(raw exec WebSocket through `cat`) (emulator)", mib),
		  BENCH_FMT(v1, "%.0f MB/s", mbs), BENCH_FMT(v2, "%.0f MB/s", ceiling),
		  BENCH_FMT(v3, "%.2fx of ceiling", mbs / ceiling), "-", "info");

	long before = bench_status_kb(0, "VmRSS");
	sbx_session *more[SESSIONS];
	for (int i = 0; i < SESSIONS; i++)
		more[i] = open_session();
	long after = bench_status_kb(0, "VmRSS");
	double per = (double)(after - before) / SESSIONS;
	bench_log("host RSS %ld KiB before, %ld KiB after %d more pod sessions", before, after, SESSIONS);
	bench_row("k4", BENCH_FMT(m, "host RSS per connected pod (exec WebSocket + TLS + session, %d pods)", SESSIONS),
		  BENCH_FMT(v1, "%.0f KiB", per), "-", "-", "<= 256 KiB", per <= 256 ? "PASS" : "MISS");
	for (int i = 0; i < SESSIONS; i++)
		sbx_session_close(more[i]);
	sbx_session_close(s);
	sbx_loop_free(loop);
	free(ca_pem);
	stop_emulator();
	return 0;
}
