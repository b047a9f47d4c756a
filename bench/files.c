/* files.c — moving 100 MiB files in and out of the sandbox.
 *
 * Two payloads: random bytes, and text (realistic log lines with counters,
 * ids and timings). For each:
 *
 *   sbx write   sbx_write_file from a local file fd (compress never, auto)
 *   sbx read    sbx_read_file into a local file path (compress never, auto)
 *   raw pipe    `cat SRC | cat > DST`: two processes and a pipe, the
 *               cheapest way a byte stream crosses a process boundary
 *   base64      `base64 SRC | sh -c 'base64 -d > DST'`: what a per-call
 *               shell transport that is not 8-bit clean has to do
 *
 * All runs are interleaved round-robin; each figure is the median of the
 * repeats. Every copy is checked (size and a sample of bytes) so a fast
 * wrong answer cannot pass. Targets: random >= 60% of raw pipe throughput,
 * text >= raw pipe throughput with the default (auto) compression.
 *
 * Then the same text over a slow link (bench/throttle: 40 MB/s each way,
 * a cluster's API server or an SSM session, not a local pipe). This is
 * where compression pays; on the local pipe auto must cost nothing. sbx
 * deflates (zlib level 1, each 64 KiB chunk on its own, common/chunk.c)
 * while that is faster, so each sbx mode is set against the baseline
 * that does the same work:
 *
 *   never   vs the raw pipe over the link `cat SRC | throttle cat > DST`
 *   auto    vs the same bytes compressed around the same link:
 *           `gzip -1 -c SRC | throttle cat | gzip -dc > DST` (gzip -dc is
 *           gunzip), measured side by side in the same run. */
#include <zlib.h>

#include "bench.h"

#define SIZE (100u * 1024 * 1024)
#define REPS_DEFAULT 5
#define SLOW_SIZE (32u * 1024 * 1024)
#define SLOW_MBPS "40"

static size_t size = SIZE; /* bytes per copy in the current section */

static const char *dir;

/* ---------------------------------------------------------------- payloads */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static void make_random(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	static uint8_t buf[1 << 20];
	for (size_t done = 0; done < size; done += sizeof buf) {
		/* urandom seeds each MiB; xorshift fills it fast */
		uint64_t seed;
		if (ufd < 0 || read(ufd, &seed, sizeof seed) != sizeof seed)
			seed = done + 1;
		rng ^= seed | 1;
		for (size_t i = 0; i < sizeof buf; i += 8) {
			uint64_t v = next_rand();
			memcpy(buf + i, &v, 8);
		}
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			bench_die("writing %s: %s", path, strerror(errno));
	}
	if (ufd >= 0)
		close(ufd);
	close(fd);
}

/* Log lines as a service writes them: timestamps, levels, request ids,
 * paths, status codes, sizes and durations that change line to line. */
static void make_text(const char *path)
{
	static const char *levels[] = {"INFO ", "INFO ", "INFO ", "DEBUG", "WARN ", "ERROR"};
	static const char *methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
	static const char *paths[] = {"/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/orders",
				      "/static/app.js", "/api/v1/search"};
	static const char *msgs[] = {"request completed", "cache miss, fetched from upstream",
				     "slow query detected", "request completed", "retrying after timeout",
				     "user session refreshed"};
	FILE *f = fopen(path, "w");
	if (!f)
		bench_die("%s: %s", path, strerror(errno));
	static char buf[1 << 20];
	setvbuf(f, buf, _IOFBF, sizeof buf);
	rng = 12345;
	uint64_t t = 1732356000000ull, id = 1000000, written = 0;
	char line[512];
	while (written < size) {
		uint64_t r = next_rand();
		t += r % 37;
		id++;
		int n = snprintf(line, sizeof line,
				 "2024-11-23T%02u:%02u:%02u.%03uZ %s [worker-%02u] req=%08llx %s %s/%u "
				 "status=%u bytes=%u dur_ms=%u.%03u trace=%016llx msg=\"%s\"\n",
				 (unsigned)(t / 3600000 % 24), (unsigned)(t / 60000 % 60), (unsigned)(t / 1000 % 60),
				 (unsigned)(t % 1000), levels[r % 6], (unsigned)(r >> 8) % 16,
				 (unsigned long long)id, methods[(r >> 12) % 6], paths[(r >> 16) % 6],
				 (unsigned)(r >> 20) % 100000, (r >> 40) % 17 ? 200u : 500u,
				 (unsigned)(r >> 24) % 65536, (unsigned)(r >> 44) % 300, (unsigned)(r >> 32) % 1000,
				 (unsigned long long)next_rand(), msgs[(r >> 52) % 6]);
		if (written + (uint64_t)n > size)
			n = (int)(size - written);
		fwrite(line, 1, (size_t)n, f);
		written += (uint64_t)n;
	}
	if (fclose(f) != 0)
		bench_die("writing %s failed", path);
}

/* What compress=1 can do at best on this machine: zlib level 1 raw
 * deflate on one core, 64 KiB chunks (as sbx compresses), over the first
 * 16 MiB of a file. Fills *ratio; returns MB/s of input. */
static double deflate_speed(const char *path, double *ratio)
{
	enum { CH = 65536, N = 16 << 20 };
	static uint8_t in[N], out[CH + 1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, in, N) != N)
		bench_die("reading %s", path);
	close(fd);
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		bench_die("deflateInit2");
	uint64_t outb = 0, t0 = bench_now_ns();
	for (size_t off = 0; off < N; off += CH) {
		deflateReset(&z);
		z.next_in = in + off;
		z.avail_in = CH;
		z.next_out = out;
		z.avail_out = sizeof out;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			bench_die("deflate");
		outb += sizeof out - z.avail_out;
	}
	uint64_t t1 = bench_now_ns();
	deflateEnd(&z);
	*ratio = (double)N / (double)outb;
	return (double)N / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* ---------------------------------------------------------------- checks */

static void check_copy(const char *src, const char *dst)
{
	struct stat a, b;
	if (stat(src, &a) < 0 || stat(dst, &b) < 0 || a.st_size != b.st_size)
		bench_die("copy %s -> %s has the wrong size", src, dst);
	int fa = open(src, O_RDONLY), fb = open(dst, O_RDONLY);
	static uint8_t x[65536], y[65536];
	/* 16 samples spread over the file, including its end */
	for (int i = 0; i <= 16; i++) {
		off_t off = (off_t)((uint64_t)(a.st_size - (off_t)sizeof x) * (uint64_t)i / 16);
		if (pread(fa, x, sizeof x, off) != (ssize_t)sizeof x || pread(fb, y, sizeof y, off) != (ssize_t)sizeof y ||
		    memcmp(x, y, sizeof x) != 0)
			bench_die("copy %s -> %s differs near offset %lld", src, dst, (long long)off);
	}
	close(fa);
	close(fb);
}

/* ---------------------------------------------------------------- runners */

static double mbps(uint64_t ns) { return (double)size / ((double)ns / 1e9) / 1e6; }

static double run_sbx_write(sbx_session *s, const char *src, const char *dst)
{
	unlink(dst);
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("%s: %s", src, strerror(errno));
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = dst;
	o.fd = fd;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_write_file_sync(s, &o, &r);
	uint64_t t1 = bench_now_ns();
	close(fd);
	if (rc < 0 || r.size != size)
		bench_die("sbx write_file %s: %s (size %llu)", dst, r.error.message, (unsigned long long)r.size);
	sbx_file_result_free(&r);
	check_copy(src, dst);
	return mbps(t1 - t0);
}

static double run_sbx_read(sbx_session *s, const char *src, const char *dst)
{
	unlink(dst);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = src;
	o.local_path = dst;
	o.limit = UINT64_MAX;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_read_file_sync(s, &o, &r);
	uint64_t t1 = bench_now_ns();
	if (rc < 0 || r.size != size)
		bench_die("sbx read_file %s: %s (size %llu)", src, r.error.message, (unsigned long long)r.size);
	sbx_file_result_free(&r);
	check_copy(src, dst);
	return mbps(t1 - t0);
}

#define MAX_STAGES 3

/* stages[0] | stages[1] | ... > dst: the first reads its own input, each
 * one's stdout is the next one's stdin, the last writes dst. */
static double run_chain(const char *const *const *stages, int n, const char *src, const char *dst)
{
	unlink(dst);
	uint64_t t0 = bench_now_ns();
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		bench_die("%s: %s", dst, strerror(errno));
	pid_t pids[MAX_STAGES];
	int in = -1;
	for (int i = 0; i < n; i++) {
		int p[2] = {-1, out};
		if (i < n - 1 && pipe2(p, O_CLOEXEC) < 0)
			bench_die("pipe: %s", strerror(errno));
		pids[i] = bench_spawn(stages[i], in, p[1]);
		if (in >= 0)
			close(in);
		close(p[1]);
		in = p[0];
	}
	int failed = 0;
	for (int i = 0; i < n; i++)
		if (bench_wait(pids[i]) != 0)
			failed = 1;
	uint64_t t1 = bench_now_ns();
	if (failed)
		bench_die("pipeline %s | ... | %s failed", stages[0][0], stages[n - 1][0]);
	check_copy(src, dst);
	return mbps(t1 - t0);
}

/* producer argv (stdout to the pipe) | consumer argv (stdin from the
 * pipe, stdout to dst). */
static double run_pipeline(const char *const *prod, const char *const *cons, const char *src, const char *dst)
{
	const char *const *stages[] = {prod, cons};
	return run_chain(stages, 2, src, dst);
}

static double run_cat(const char *src, const char *dst)
{
	const char *prod[] = {"/bin/cat", src, NULL};
	const char *cons[] = {"/bin/cat", NULL};
	return run_pipeline(prod, cons, src, dst);
}

static double run_base64(const char *src, const char *dst)
{
	const char *prod[] = {"/usr/bin/base64", src, NULL};
	const char *cons[] = {"/bin/sh", "-c", "base64 -d", NULL};
	return run_pipeline(prod, cons, src, dst);
}

/* `cat SRC | throttle MBPS cat > DST`: the raw pipe over the slow link. */
static char throttle[4200];
static double run_slow_cat(const char *src, const char *dst)
{
	const char *prod[] = {"/bin/cat", src, NULL};
	const char *cons[] = {throttle, SLOW_MBPS, "/bin/cat", NULL};
	return run_pipeline(prod, cons, src, dst);
}

/* `gzip -1 -c SRC | throttle MBPS cat | gzip -dc > DST`: the compressing
 * baseline over the same slow link (gzip -dc is what gunzip runs). */
static double run_slow_gzip(const char *src, const char *dst)
{
	const char *zip[] = {"/usr/bin/gzip", "-1", "-c", src, NULL};
	const char *link[] = {throttle, SLOW_MBPS, "/bin/cat", NULL};
	const char *unzip[] = {"/usr/bin/gzip", "-d", "-c", NULL};
	const char *const *stages[] = {zip, link, unzip};
	return run_chain(stages, 3, src, dst);
}

/* ---------------------------------------------------------------- main */

enum { W0, W1, R0, R1, CAT, B64, GZ, NV };
static const char *vname[NV] = {"sbx write_file, compress=never", "sbx write_file, compress=auto",
				"sbx read_file,  compress=never", "sbx read_file,  compress=auto",
				"raw pipe `cat SRC | cat > DST`", "per-call shell base64 | base64 -d",
				"gzip -1 | link | gunzip"};
/* What each section runs: on the local pipe the raw and base64 baselines;
 * over the slow link the raw pipe and gzip around it. */
static const int local_set[] = {W0, W1, R0, R1, CAT, B64};
static const int slow_set[] = {W0, W1, R0, R1, CAT, GZ};
#define SET_LEN(a) ((int)(sizeof a / sizeof a[0]))

/* sessions[0] never compresses, sessions[1] is the default (auto). */
static double run_variant(int v, sbx_session **ss, const char *src, const char *dst, int slow)
{
	switch (v) {
	case W0: return run_sbx_write(ss[0], src, dst);
	case W1: return run_sbx_write(ss[1], src, dst);
	case R0: return run_sbx_read(ss[0], src, dst);
	case R1: return run_sbx_read(ss[1], src, dst);
	case CAT: return slow ? run_slow_cat(src, dst) : run_cat(src, dst);
	case GZ: return run_slow_gzip(src, dst);
	default: return run_base64(src, dst);
	}
}

/* Medians (res[variant]) over reps of the variants in set, interleaved,
 * after a warm-up. */
static void measure(double *res, const int *set, int nset, sbx_session **ss, const char *src, const char *dst,
		    int slow, int reps, const char *what)
{
	double v[NV][64];
	for (int k = 0; k < nset; k++) /* warm-up: page cache, binaries, the link estimate */
		run_variant(set[k], ss, src, dst, slow);
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < nset; k++)
			v[set[k]][r] = run_variant(set[k], ss, src, dst, slow);
	for (int k = 0; k < nset; k++) {
		int i = set[k];
		res[i] = bench_median(v[i], (size_t)reps);
		bench_log("%-26s %-36s median %7.0f MB/s (min %.0f, max %.0f)", what, vname[i], res[i], v[i][0],
			  v[i][reps - 1]);
	}
	unlink(dst);
}

/* Rows 2c: each sbx mode against the baseline doing the same work over
 * the same link (never: raw pipe; auto, which deflates: gzip -1 around
 * the pipe), then what gzip alone buys over the raw pipe. */
static void slow_rows(const double *sres)
{
	char id[16], m[240], a[64], b[64], c[64];
	for (int i = W0; i <= R1; i++) {
		int compressing = i == W1 || i == R1;
		double x = sres[i], base = sres[compressing ? GZ : CAT];
		bench_row(BENCH_FMT(id, "2c%d", i + 1),
			  BENCH_FMT(m, "32 MiB text over a " SLOW_MBPS " MB/s link: %s (vs %s over the same link)",
				    vname[i], compressing ? "`gzip -1 | link | gunzip`" : "raw pipe `cat | link`"),
			  BENCH_FMT(a, "%.0f MB/s", x), BENCH_FMT(b, "%.0f MB/s", base),
			  BENCH_FMT(c, "%.0f%%", 100 * x / base), compressing ? ">= 100%" : "-",
			  !compressing ? "info" : x >= base ? "PASS" : "MISS");
	}
	bench_row("2c5",
		  "32 MiB text over a " SLOW_MBPS " MB/s link: `gzip -1 | link | gunzip` (vs raw pipe over the same link)",
		  BENCH_FMT(a, "%.0f MB/s", sres[GZ]), BENCH_FMT(b, "%.0f MB/s", sres[CAT]),
		  BENCH_FMT(c, "%.0f%%", 100 * sres[GZ] / sres[CAT]), "-", "info");
}

static sbx_session *slow_session(sbx_loop *loop, const char *workdir, int compress)
{
	const char *argv[] = {throttle, SLOW_MBPS, sbx_default_agent_path(), "--stdio", "--workdir", workdir, NULL};
	sbx_session_opts so = {.compress = compress};
	sbx_error err;
	sbx_session *s = sbx_session_command(loop, argv, &so, &err);
	if (!s || sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("agent behind %s did not start: %s", throttle, err.message);
	return s;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : REPS_DEFAULT;
	if (reps < 1)
		reps = 1;
	if (reps > 64)
		reps = 64;
	dir = bench_tmpdir("files");
	char src[3][4200], dst[4200];
	snprintf(src[0], sizeof src[0], "%s/random.bin", dir);
	snprintf(src[1], sizeof src[1], "%s/text.log", dir);
	snprintf(src[2], sizeof src[2], "%s/text-32m.log", dir);
	snprintf(dst, sizeof dst, "%s/dst", dir);
	make_random(src[0]);
	make_text(src[1]);
	size = SLOW_SIZE;
	make_text(src[2]);
	size = SIZE;
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0)
		bench_die("readlink /proc/self/exe: %s", strerror(errno));
	self[sl] = 0;
	*strrchr(self, '/') = 0;
	snprintf(throttle, sizeof throttle, "%s/throttle", self);

	sbx_loop *loop = sbx_loop_new();
	sbx_session *ss[2] = {bench_session(loop, dir, SBX_COMPRESS_NEVER), bench_session(loop, dir, SBX_COMPRESS_AUTO)};

	static const char *kind[2] = {"random", "text"};
	double res[2][NV];
	for (int k = 0; k < 2; k++)
		measure(res[k], local_set, SET_LEN(local_set), ss, src[k], dst, 0, reps,
			k ? "100 MiB text" : "100 MiB random");

	char id[16], m[200], a[64], b[64], c[64], t[64];
	for (int k = 0; k < 2; k++) {
		double raw = res[k][CAT], b64 = res[k][B64];
		double need = k == 0 ? 0.60 : 1.00;
		int n = 0;
		for (int i = W0; i <= R1; i++) {
			double x = res[k][i];
			/* text: the target is for the default mode; never is for reference */
			int targeted = k == 0 || i == W1 || i == R1;
			bench_row(BENCH_FMT(id, "2%c%d", 'a' + k, ++n),
				  BENCH_FMT(m, "100 MiB %s: %s (vs raw pipe; %.1fx base64 shell)", kind[k], vname[i],
					    x / b64),
				  BENCH_FMT(a, "%.0f MB/s", x), BENCH_FMT(b, "%.0f MB/s", raw),
				  BENCH_FMT(c, "%.0f%%", 100 * x / raw),
				  targeted ? BENCH_FMT(t, ">= %.0f%%", 100 * need) : "-",
				  !targeted ? "info" : x >= need * raw ? "PASS" : "MISS");
		}
		bench_row(BENCH_FMT(id, "2%c%d", 'a' + k, ++n),
			  BENCH_FMT(m, "100 MiB %s: per-call shell `base64 SRC | sh -c 'base64 -d > DST'` (vs raw pipe)",
				    kind[k]),
			  "-", BENCH_FMT(b, "%.0f MB/s", b64), BENCH_FMT(c, "%.0f%%", 100 * b64 / raw), "-", "info");
	}
	double ratio, zspeed = deflate_speed(src[1], &ratio);
	bench_log("zlib deflate level 1 on the text, one core, 64 KiB chunks: %.0f MB/s in, ratio %.2fx", zspeed, ratio);
	bench_row("2b6",
		  BENCH_FMT(m, "zlib level-1 deflate of the text on one core (ratio %.1fx): why auto stays raw here", ratio),
		  BENCH_FMT(a, "%.0f MB/s", zspeed), BENCH_FMT(b, "%.0f MB/s", res[1][CAT]),
		  BENCH_FMT(c, "%.0f%%", 100 * zspeed / res[1][CAT]), "-", "info");
	sbx_session_close(ss[0]);
	sbx_session_close(ss[1]);

	/* The slow link: the agents behind throttle, 32 MiB of the text. */
	size = SLOW_SIZE;
	sbx_session *slow[2] = {slow_session(loop, dir, SBX_COMPRESS_NEVER), slow_session(loop, dir, SBX_COMPRESS_AUTO)};
	int slow_reps = reps < 3 ? reps : 3;
	double sres[NV];
	measure(sres, slow_set, SET_LEN(slow_set), slow, src[2], dst, 1, slow_reps,
		"32 MiB text, " SLOW_MBPS " MB/s link");
	slow_rows(sres);
	sbx_session_close(slow[0]);
	sbx_session_close(slow[1]);
	sbx_loop_free(loop);
	return 0;
}
