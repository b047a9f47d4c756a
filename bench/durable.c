/* durable.c — what durable writes cost (issue 18).
 *
 * A write (agent side) or a download into a local path (libsbx side) is
 * reported done only once the file and its directory are fsynced; with
 * no_fsync (`durable=False`, `sbx cp --no-fsync`) it is not. Side by side,
 * on the temp dir's file system (TMPDIR, default /tmp):
 *
 *   d1  one large file written into the sandbox (sbx_write_file)
 *   d2  the same file read out into a local path (sbx_read_file)
 *   d3  many small files (4 KiB each) written one after another
 *
 * Large: 256 MiB by default (1 GiB takes too long on a shared machine;
 * argv[2] sets MiB). Small: 10,000 files (argv[3]). Durable and not are
 * interleaved, median of the repeats (argv[1], default 3). The ratio is
 * durable time over no_fsync time: what durability multiplies the wall
 * time by. Rows are "info": the cost is the disk's, not a target. */
#include "bench.h"

static const char *dir;

static void make_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	static uint8_t buf[1 << 20];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	for (size_t done = 0; done < size; done += sizeof buf)
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			bench_die("writing %s: %s", path, strerror(errno));
	close(fd);
}

static double secs_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e9;
}

static double write_big(sbx_session *s, const char *src, const char *name, int no_fsync)
{
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("%s: %s", src, strerror(errno));
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = name;
	o.fd = fd;
	o.no_fsync = no_fsync;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_write_file_sync(s, &o, &r);
	double t = secs_since(t0);
	close(fd);
	if (rc < 0)
		bench_die("write_file %s: %s", name, r.error.message);
	sbx_file_result_free(&r);
	return t;
}

static double read_big(sbx_session *s, const char *name, const char *dst, int no_fsync)
{
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = name;
	o.local_path = dst;
	o.limit = UINT64_MAX;
	o.no_fsync = no_fsync;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	int rc = sbx_read_file_sync(s, &o, &r);
	double t = secs_since(t0);
	if (rc < 0)
		bench_die("read_file %s: %s", name, r.error.message);
	sbx_file_result_free(&r);
	return t;
}

static double write_small(sbx_session *s, int n, const char *sub, int no_fsync)
{
	static uint8_t data[4096];
	memset(data, 'x', sizeof data);
	char path[256];
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < n; i++) {
		sbx_file_opts o = SBX_FILE_OPTS_INIT;
		snprintf(path, sizeof path, "%s/f%05d", sub, i);
		o.path = path;
		o.data = data;
		o.len = sizeof data;
		o.no_fsync = no_fsync;
		sbx_file_result r;
		if (sbx_write_file_sync(s, &o, &r) < 0)
			bench_die("write_file %s: %s", path, r.error.message);
		sbx_file_result_free(&r);
	}
	return secs_since(t0);
}

static void row(const char *id, const char *what, double durable, double fast, const char *unit_fmt, double scale)
{
	char m[200], a[64], b[64], c[64];
	snprintf(m, sizeof m, "%s: durable (fsync) vs --no-fsync", what);
	snprintf(a, sizeof a, unit_fmt, scale / durable);
	snprintf(b, sizeof b, unit_fmt, scale / fast);
	snprintf(c, sizeof c, "%.2fx time", durable / fast);
	bench_row(id, m, a, b, c, "-", "info");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 3;
	int mib = argc > 2 ? atoi(argv[2]) : 256;
	int nsmall = argc > 3 ? atoi(argv[3]) : 10000;
	if (reps < 1 || reps > 16)
		reps = 3;
	if (mib < 1)
		mib = 256;
	if (nsmall < 1)
		nsmall = 10000;
	dir = bench_tmpdir("durable");
	char src[4200], dst[4200];
	snprintf(src, sizeof src, "%s/big.src", dir);
	snprintf(dst, sizeof dst, "%s/big.dst", dir);
	make_file(src, (size_t)mib << 20);

	sbx_loop *loop = sbx_loop_new();
	sbx_session *s = bench_session(loop, dir, SBX_COMPRESS_NEVER);
	double w[2][16], r[2][16];
	write_big(s, src, "warm.bin", 1); /* warm-up: page cache, the agent */
	for (int i = 0; i < reps; i++) {
		for (int nf = 0; nf <= 1; nf++) {
			w[nf][i] = write_big(s, src, nf ? "big.fast" : "big.durable", nf);
			r[nf][i] = read_big(s, nf ? "big.fast" : "big.durable", dst, nf);
			unlink(dst);
		}
	}
	double wd = bench_median(w[0], (size_t)reps), wf = bench_median(w[1], (size_t)reps);
	double rd = bench_median(r[0], (size_t)reps), rf = bench_median(r[1], (size_t)reps);
	bench_log("%d MiB write: durable %.2f s, no-fsync %.2f s; read: durable %.2f s, no-fsync %.2f s (medians of %d)",
		  mib, wd, wf, rd, rf, reps);

	char what[128];
	snprintf(what, sizeof what, "%d MiB file written into the sandbox", mib);
	row("d1", what, wd, wf, "%.0f MB/s", (double)((size_t)mib << 20) / 1e6);
	snprintf(what, sizeof what, "%d MiB file read out to a local path", mib);
	row("d2", what, rd, rf, "%.0f MB/s", (double)((size_t)mib << 20) / 1e6);

	double sd = write_small(s, nsmall, "small.durable", 0);
	double sf = write_small(s, nsmall, "small.fast", 1);
	bench_log("%d files of 4 KiB: durable %.2f s, no-fsync %.2f s", nsmall, sd, sf);
	snprintf(what, sizeof what, "%d files of 4 KiB written one after another", nsmall);
	row("d3", what, sd, sf, "%.0f files/s", (double)nsmall);

	sbx_session_close(s);
	sbx_loop_free(loop);
	return 0;
}
