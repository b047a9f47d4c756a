/* mem.c — footprint: the agent binary, the agent's memory idle and after
 * moving 1 GiB each way, and the host's memory while it does.
 *
 * Runs as its own process so that nothing else this suite does raises the
 * peak (VmHWM) it reports. $MEM_SOURCE says what the 1 GiB is: `sparse`
 * (the default) a sparse file, whose zeros the default (auto) compression
 * deflates, so both ends run their compressors; `random` a real file of
 * incompressible bytes, every byte sent raw at full speed. The agent's
 * RSS after the transfers (row 4e) is taken once both calls ended, so it
 * counts what the agent keeps, not what a transfer needs while it runs.
 *
 *   argv[1]: path of the agent binary (default: $SBX_AGENT) */
#include "bench.h"

#define BIG (1024ull * 1024 * 1024)

static void row_kib(const char *id, const char *metric, long kb, long limit_kb, const char *base)
{
	char a[64], t[64], r[64];
	bench_row(id, metric, BENCH_FMT(a, "%.2f MiB", kb / 1024.0), base,
		  BENCH_FMT(r, "%.0f%% of target", 100.0 * kb / limit_kb), BENCH_FMT(t, "<= %.0f MiB", limit_kb / 1024.0),
		  kb >= 0 && kb <= limit_kb ? "PASS" : "MISS");
}

/* The 1 GiB source: a sparse file, or incompressible bytes (written by a
 * child, so its buffer does not count in this process's peak). */
static void make_source(const char *path, const char *kind)
{
	if (strcmp(kind, "random") == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			bench_make_incompressible(path, BIG);
			_exit(0);
		}
		if (pid < 0 || bench_wait(pid) != 0)
			bench_die("cannot write %s", path);
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)BIG) < 0)
		bench_die("%s: %s", path, strerror(errno));
	close(fd);
}

/* Details: the agent's resident KiB per kind of mapping (heap, stack, other
 * anonymous memory, the binary), from /proc/PID/smaps. */
static void log_mappings(pid_t pid, const char *when)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	long heap = 0, stack = 0, anon = 0, file = 0, kb;
	long *cur = &anon;
	while (fgets(line, sizeof line, f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ')) { /* a mapping's header */
			cur = strstr(line, "[heap]") ? &heap : strstr(line, "[stack]") ? &stack : strchr(line, '/') ? &file : &anon;
		} else if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
			*cur += kb;
		}
	}
	fclose(f);
	bench_log("agent RSS %s: heap %ld KiB, stack %ld KiB, other anonymous %ld KiB, binary %ld KiB", when, heap, stack,
		  anon, file);
}

int main(int argc, char **argv)
{
	const char *agent = argc > 1 ? argv[1] : sbx_default_agent_path();
	setenv("SBX_AGENT", agent, 1);
	const char *dir = bench_tmpdir("mem");
	char m[200], a[64], b[64];

	/* ---- binary size */
	struct stat st;
	if (stat(agent, &st) < 0)
		bench_die("%s: %s", agent, strerror(errno));
	bench_row("4a", BENCH_FMT(m, "agent binary size (%s, static, stripped)", agent),
		  BENCH_FMT(a, "%.2f MiB", (double)st.st_size / 1048576), "-",
		  BENCH_FMT(b, "%.0f%% of target", 100.0 * (double)st.st_size / 1048576), "<= 1 MiB",
		  st.st_size <= 1048576 ? "PASS" : "MISS");

	/* ---- the host process before any session */
	long host_base_kb = bench_status_kb(0, "VmRSS");

	sbx_loop *loop = sbx_loop_new();
	sbx_session *s = bench_session(loop, dir, 0);
	/* the kernel's comm: the executable's name, cut to 15 characters */
	char comm[16];
	const char *slash = strrchr(agent, '/');
	snprintf(comm, sizeof comm, "%s", slash ? slash + 1 : agent);
	pid_t apid = bench_find_child(comm);
	if (apid < 0)
		bench_die("cannot find the agent process among our children");

	/* ---- agent idle RSS after the handshake */
	usleep(100 * 1000);
	long idle_kb = bench_status_kb(apid, "VmRSS");
	bench_log("agent pid %d idle after handshake: VmRSS %ld KiB, VmHWM %ld KiB", (int)apid, idle_kb,
		  bench_status_kb(apid, "VmHWM"));
	row_kib("4b", "agent idle RSS, local child right after the handshake (VmRSS)", idle_kb, 2048, "-");
	log_mappings(apid, "idle");

	/* ---- host peak RSS while moving 1 GiB each way */
	char src[4200], dst[4200];
	const char *ms = getenv("MEM_SOURCE"), *kind = ms && strcmp(ms, "random") == 0 ? "random" : "sparse";
	snprintf(src, sizeof src, "%s/big.%s", dir, kind);
	snprintf(dst, sizeof dst, "%s/big.copy", dir);
	make_source(src, kind);
	long host_ready_hwm = bench_status_kb(0, "VmHWM");

	int fd = open(src, O_RDONLY | O_CLOEXEC);
	sbx_file_opts wo = SBX_FILE_OPTS_INIT;
	wo.path = dst;
	wo.fd = fd;
	sbx_file_result r;
	uint64_t t0 = bench_now_ns();
	if (sbx_write_file_sync(s, &wo, &r) < 0 || r.size != BIG)
		bench_die("1 GiB write_file: %s", r.error.message);
	uint64_t t1 = bench_now_ns();
	sbx_file_result_free(&r);
	close(fd);
	unlink(dst); /* do not keep 1 GiB of page cache around */

	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	sbx_file_opts ro = SBX_FILE_OPTS_INIT;
	ro.path = src;
	ro.fd = devnull;
	ro.limit = UINT64_MAX;
	if (sbx_read_file_sync(s, &ro, &r) < 0 || r.size != BIG)
		bench_die("1 GiB read_file: %s", r.error.message);
	uint64_t t2 = bench_now_ns();
	sbx_file_result_free(&r);
	close(devnull);

	long host_hwm = bench_status_kb(0, "VmHWM");
	long agent_hwm = bench_status_kb(apid, "VmHWM");
	usleep(100 * 1000); /* as for the idle figure */
	long agent_rss = bench_status_kb(apid, "VmRSS");
	log_mappings(apid, "after the transfers");
	bench_log("host VmRSS before the session %ld KiB, VmHWM once ready %ld KiB, VmHWM after 1 GiB write (%.0f MB/s) "
		  "+ 1 GiB read (%.0f MB/s) %ld KiB; agent VmHWM %ld KiB, VmRSS now %ld KiB",
		  host_base_kb, host_ready_hwm, (double)BIG / ((double)(t1 - t0) / 1e9) / 1e6,
		  (double)BIG / ((double)(t2 - t1) / 1e9) / 1e6, host_hwm, agent_hwm, agent_rss);
	row_kib("4c", BENCH_FMT(m, "host peak RSS (VmHWM) over a 1 GiB write_file + 1 GiB read_file (%.1f MiB once ready)",
				host_ready_hwm / 1024.0),
		host_hwm, 32 * 1024, "-");
	bench_row("4d", BENCH_FMT(m, "agent peak RSS (VmHWM) over the same transfers (%s source)", kind),
		  BENCH_FMT(a, "%.2f MiB", agent_hwm / 1024.0), "-", "-", "-", "info");
	row_kib("4e",
		BENCH_FMT(m, "agent RSS (VmRSS) after the same 1 GiB write_file + 1 GiB read_file ended (%s source; vs idle)",
			  kind),
		agent_rss, 2048, BENCH_FMT(b, "%.2f MiB", idle_kb / 1024.0));

	sbx_session_close(s);
	sbx_loop_free(loop);
	return 0;
}
