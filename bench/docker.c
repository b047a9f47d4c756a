/* docker.c — the docker backend against the docker CLI on the same
 * container, side by side:
 *
 *   dk1  exec `true` per call through libsbx (one session, reused) vs
 *       `docker exec CONTAINER true` (target >= 100x)
 *   dk2  `sbx exec NAME -- true` (the CLI, a new process and session per
 *       call) vs `docker exec CONTAINER true` (target >= 10x)
 *   dk3  a file copied in (sbx cp vs docker cp; target >= 1x)
 *   dk4  the same file copied out (target >= 1x)
 *   dk5  `sbx up --backend docker` of one service (info)
 *   dk6  `sbx up` of a 3-service compose file vs `docker-compose up -d` of the
 *       same file (Debian's docker-compose; ratio reported, no target)
 *
 * Needs a Docker engine and the image $SBX_BENCH_DOCKER_IMAGE (default
 * sbx-test/busybox, built by tests/docker/image.sh); without them it says
 * so in one info row. argv[1]: CLI repeats (default 30); argv[2]: MB to
 * copy (default 256). */
#include "bench.h"
#include "backends/docker/engine.h"

#define LIB_REPS 300

#define UP_REPS 3

static char sbx_bin[4096], docker_bin[4096], compose_bin[4096], state[4200];

/* The first PATH entry holding an executable name, or "". */
static void find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char copy[8192];
	snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
	out[0] = 0;
	for (char *dir = strtok(copy, ":"); dir; dir = strtok(NULL, ":")) {
		snprintf(out, len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return;
	}
	out[0] = 0;
}

/* Runs argv with stdout to /dev/null; its exit status. */
static int run_quiet(const char *const *argv)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int rc = bench_wait(bench_spawn(argv, null, null));
	close(null);
	return rc;
}

/* Median ms of reps runs of argv (each must exit 0). */
static double median_ms(const char *const *argv, int reps)
{
	double *v = calloc((size_t)reps, sizeof *v);
	for (int i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();
		if (run_quiet(argv) != 0)
			bench_die("%s %s failed", argv[0], argv[1]);
		v[i] = (double)(bench_now_ns() - t0) / 1e6;
	}
	double m = bench_median(v, (size_t)reps);
	free(v);
	return m;
}

static double lib_exec_ms(void)
{
	char sock[4400], key[4400];
	snprintf(sock, sizeof sock, "%s/bench/default.run/agent.sock", state);
	snprintf(key, sizeof key, "%s/bench/default.key", state);
	sbx_loop *loop = sbx_loop_new();
	sbx_session_opts so = {.secret_file = key};
	sbx_error err;
	sbx_session *s = sbx_session_connect(loop, sock, &so, &err);
	if (!s || sbx_session_wait_ready(s, 10, &err) < 0)
		bench_die("cannot connect to the docker sandbox's agent: %s", err.message);
	static const char *const argv[] = {"true", NULL};
	double v[LIB_REPS];
	for (int i = 0; i < LIB_REPS; i++) {
		sbx_exec_result r;
		uint64_t t0 = bench_now_ns();
		if (sbx_exec_sync(s, &(sbx_exec_opts){.argv = argv, .timeout_s = 30}, &r) < 0 || r.exit_code != 0)
			bench_die("exec true failed: %s", r.error.message);
		v[i] = (double)(bench_now_ns() - t0) / 1e6;
		sbx_exec_result_free(&r);
	}
	sbx_session_close(s);
	sbx_loop_free(loop);
	return bench_median(v, LIB_REPS);
}

static void ratio_row(const char *id, const char *metric, double sbx_ms, double base_ms, double target)
{
	char a[64], b[64], r[64], t[64];
	double ratio = base_ms / sbx_ms;
	bench_row(id, metric, BENCH_FMT(a, "%.2f ms", sbx_ms), BENCH_FMT(b, "%.2f ms", base_ms),
		  BENCH_FMT(r, "%.1fx", ratio), BENCH_FMT(t, ">= %gx", target), ratio >= target ? "PASS" : "MISS");
}

/* Copies in and out with sbx cp and docker cp (median of 3 each way). */
static void copy_rows(long mb)
{
	char file[4300], back[4300], dst[4400], cdst[4400], metric[160];
	snprintf(file, sizeof file, "%s/in.bin", bench_tmp);
	snprintf(back, sizeof back, "%s/out.bin", bench_tmp);
	const char *const mk[] = {"/bin/sh", "-c", "head -c $1 /dev/urandom > $2", "sh",
				  BENCH_FMT(dst, "%ld", mb * 1000000), file, NULL};
	if (run_quiet(mk) != 0)
		bench_die("cannot make a %ld MB file", mb);
	snprintf(dst, sizeof dst, "bench:/tmp/in.bin");
	snprintf(cdst, sizeof cdst, "sbx-bench-default:/tmp/in2.bin");
	const char *const sin[] = {sbx_bin, "cp", file, dst, NULL};
	const char *const din[] = {docker_bin, "cp", file, cdst, NULL};
	double s = median_ms(sin, 3), d = median_ms(din, 3);
	ratio_row("dk3", BENCH_FMT(metric, "copy %ld MB in (sbx cp vs docker cp), median of 3", mb), s, d, 1);
	const char *const sout[] = {sbx_bin, "cp", dst, back, NULL};
	const char *const dout[] = {docker_bin, "cp", cdst, back, NULL};
	s = median_ms(sout, 3);
	d = median_ms(dout, 3);
	ratio_row("dk4", BENCH_FMT(metric, "copy %ld MB out (sbx cp vs docker cp), median of 3", mb), s, d, 1);
}

/* d6: three services up, sbx vs docker-compose (each torn down between runs). */
static void compose_row(const char *image)
{
	if (!compose_bin[0]) {
		bench_row("dk6", "sbx up vs docker-compose up -d, 3 services", "-", "no docker-compose", "-", "-", "info");
		return;
	}
	char dir[4300], file[4400], text[1024], metric[160];
	snprintf(dir, sizeof dir, "%s/compose", bench_tmp);
	snprintf(file, sizeof file, "%s/compose.yaml", dir);
	mkdir(dir, 0700);
	int n = snprintf(text, sizeof text, "services:\n");
	const char *names[] = {"default", "web", "db"};
	for (int i = 0; i < 3; i++)
		n += snprintf(text + n, sizeof text - (size_t)n,
			      "  %s:\n    image: %s\n    command: [\"sleep\", \"1000000\"]\n    network_mode: none\n",
			      names[i], image);
	FILE *f = fopen(file, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		bench_die("cannot write %s", file);
	const char *const sup[] = {sbx_bin, "up", "bench3", "--backend", "docker", "-f", file, NULL};
	const char *const sdown[] = {sbx_bin, "down", "bench3", NULL};
	const char *const cup[] = {compose_bin, "-p", "sbxbench", "-f", file, "up", "-d", NULL};
	const char *const cdown[] = {compose_bin, "-p", "sbxbench", "-f", file, "down", "-t", "1", NULL};
	double sv[UP_REPS], cv[UP_REPS];
	for (int i = 0; i < UP_REPS; i++) {
		uint64_t t0 = bench_now_ns();
		if (run_quiet(sup) != 0)
			bench_die("sbx up -f %s failed", file);
		sv[i] = (double)(bench_now_ns() - t0) / 1e6;
		run_quiet(sdown);
		t0 = bench_now_ns();
		if (run_quiet(cup) != 0)
			bench_die("docker-compose up -d failed");
		cv[i] = (double)(bench_now_ns() - t0) / 1e6;
		run_quiet(cdown);
	}
	char a[64], b[64], r[64];
	double sm = bench_median(sv, UP_REPS), cm = bench_median(cv, UP_REPS);
	bench_row("dk6", BENCH_FMT(metric, "up of 3 services: sbx up vs docker-compose up -d, median of %d", UP_REPS),
		  BENCH_FMT(a, "%.0f ms", sm), BENCH_FMT(b, "%.0f ms", cm), BENCH_FMT(r, "%.1fx", cm / sm), "-", "info");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 30;
	long mb = argc > 2 ? atol(argv[2]) : 256;
	const char *image = getenv("SBX_BENCH_DOCKER_IMAGE");
	image = image && image[0] ? image : "sbx-test/busybox";
	const char *bin = getenv("SBX_BIN");
	snprintf(sbx_bin, sizeof sbx_bin, "%s", bin && bin[0] ? bin : "build/sbx");
	find_in_path("docker", docker_bin, sizeof docker_bin);
	find_in_path("docker-compose", compose_bin, sizeof compose_bin);
	sbx_docker d;
	char err[2048];
	int up = sbx_docker_open(&d, err, sizeof err) == 0;
	sbx_docker_close(&d);
	if (!up || !docker_bin[0]) {
		bench_row("dk1", "docker backend", "-", "-", "-", "-", "info");
		bench_log("docker: skipped: %s", up ? "no docker command on PATH" : err);
		return 0;
	}
	snprintf(state, sizeof state, "%s/state", bench_tmpdir("docker"));
	setenv("SBX_STATE_DIR", state, 1);
	const char *const sbx_up[] = {sbx_bin, "up", "bench", "--backend", "docker", "--image", image, NULL};
	uint64_t t0 = bench_now_ns();
	if (run_quiet(sbx_up) != 0)
		bench_die("sbx up --backend docker --image %s failed (build the image: tests/docker/image.sh)", image);
	double up_ms = (double)(bench_now_ns() - t0) / 1e6;
	const char *const sbx_down[] = {sbx_bin, "down", "bench", NULL};
	const char *const dexec[] = {docker_bin, "exec", "sbx-bench-default", "true", NULL};
	const char *const sexec[] = {sbx_bin, "exec", "bench", "--", "true", NULL};
	char metric[160], a[64];
	double docker_ms = median_ms(dexec, reps);
	ratio_row("dk1", BENCH_FMT(metric, "exec true per call: libsbx (median of %d) vs docker exec (median of %d)",
				  LIB_REPS, reps),
		  lib_exec_ms(), docker_ms, 100);
	ratio_row("dk2", BENCH_FMT(metric, "exec true per call: sbx exec CLI vs docker exec, median of %d", reps),
		  median_ms(sexec, reps), docker_ms, 10);
	copy_rows(mb);
	bench_row("dk5", "sbx up --backend docker, one service (container + agent answering)",
		  BENCH_FMT(a, "%.0f ms", up_ms), "-", "-", "-", "info");
	run_quiet(sbx_down);
	compose_row(image);
	return 0;
}
