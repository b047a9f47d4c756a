/* cmd_cp.c — `sbx cp`: copy a file into, out of, or between sandboxes.
 * Either side may be NAME[/SERVICE]:PATH; "-" is stdin or stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx cp [--quiet] [--no-fsync] SRC DST\n"
		"\n"
		"Copies one file. SRC and DST are local paths, '-' (stdin/stdout), or\n"
		"NAME[/SERVICE]:PATH inside a sandbox. Writes are atomic on both sides: a\n"
		"failed copy leaves the destination as it was. A progress bar shows on a\n"
		"terminal for files over 4 MiB. Copying between two sandboxes goes through\n"
		"a temporary local file.\n"
		"\n"
		"A copy is reported done once the file and its directory are fsynced on the\n"
		"receiving side, so it survives a power loss. --no-fsync skips that (faster;\n"
		"still atomic while the machine stays up).\n");
}

typedef struct endpoint {
	char target[128]; /* NAME[/SERVICE], empty for local */
	const char *path;
} endpoint;

/* "NAME[/SERVICE]:PATH" when NAME is an existing sandbox, else local. */
static void parse_endpoint(const char *arg, endpoint *e)
{
	e->target[0] = 0;
	e->path = arg;
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof e->target)
		return;
	char name[128];
	snprintf(name, sizeof name, "%.*s", (int)(colon - arg), arg);
	char *slash = strchr(name, '/');
	if (slash)
		*slash = 0;
	cli_sandbox sb;
	if (cli_sandbox_load(name, &sb) < 0)
		return;
	snprintf(e->target, sizeof e->target, "%.*s", (int)(colon - arg), arg);
	e->path = colon + 1;
}

typedef struct progress_state {
	int show;
	uint64_t start_ms, last_ms;
} progress_state;

static void human(double v, char *out, size_t len)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%.1f %s", v, units[u]);
}

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	progress_state *p = ud;
	if (!p->show)
		return;
	uint64_t now = sbx_now_ms();
	if (now - p->last_ms < 100 && done != total)
		return;
	p->last_ms = now;
	char d[32], t[32], rate[32];
	human((double)done, d, sizeof d);
	human((double)total, t, sizeof t);
	double secs = (double)(now - p->start_ms) / 1000.0;
	human(secs > 0 ? (double)done / secs : 0, rate, sizeof rate);
	int pct = total ? (int)(done * 100 / total) : 0;
	int bar = pct / 4;
	fprintf(stderr, "\r[%.*s%*s] %3d%% %s / %s  %s/s ", bar, "#########################", 25 - bar, "", pct, d,
		total ? t : "?", rate);
}

static int copy_one(sbx_loop *loop, const endpoint *src, const endpoint *dst, const char *local_src,
		    const char *local_dst, int quiet, int no_fsync)
{
	cli_sandbox sb;
	const char *svc;
	const endpoint *remote = src->target[0] ? src : dst;
	sbx_session *s = cli_connect(loop, remote->target, &sb, &svc);
	if (!s)
		return EXIT_SBX_ERROR;
	progress_state ps = {.start_ms = sbx_now_ms()};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = remote->path;
	o.no_fsync = no_fsync;
	o.on_progress = on_progress;
	o.ud = &ps;
	sbx_file_result r;
	int rc;
	if (remote == dst) { /* upload */
		int fd = strcmp(local_src, "-") == 0 ? 0 : open(local_src, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			cli_say(stderr, "sbx cp: cannot read %s: %s\n", local_src, strerror(errno));
			sbx_session_close(s);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			cli_say(stderr, "sbx cp: %s is a directory; copy directories with tar:\n"
					"  tar -C %s -cf - . | sbx exec %s -- tar -C %s -xf -\n",
				local_src, local_src, remote->target, remote->path);
			sbx_session_close(s);
			return 1;
		}
		ps.show = !quiet && isatty(2) && S_ISREG(st.st_mode) && st.st_size > 4 * 1024 * 1024;
		o.fd = fd;
		rc = sbx_write_file_sync(s, &o, &r);
		if (fd > 0)
			close(fd);
	} else { /* download */
		struct stat st;
		char into[4200];
		if (strcmp(local_dst, "-") == 0) {
			o.fd = 1;
		} else if (stat(local_dst, &st) == 0 && S_ISDIR(st.st_mode)) {
			const char *base = strrchr(remote->path, '/');
			base = base ? base + 1 : remote->path;
			/* the name must stay inside the directory given: no "..", no "." */
			if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
				cli_say(stderr, "sbx cp: '%s' does not end in a file name to create in %s; give the "
						"local file name instead (sbx cp %s:%s %s/NAME)\n",
					remote->path, local_dst, remote->target, remote->path, local_dst);
				sbx_session_close(s);
				return 1;
			}
			snprintf(into, sizeof into, "%s/%s", local_dst, base);
			o.local_path = into; /* like cp: into the directory */
		} else {
			o.local_path = local_dst;
		}
		ps.show = !quiet && isatty(2);
		o.limit = UINT64_MAX;
		rc = sbx_read_file_sync(s, &o, &r);
	}
	if (ps.show)
		cli_say(stderr, "\n");
	if (rc < 0)
		cli_say(stderr, "sbx cp: %s\n", r.error.message);
	sbx_file_result_free(&r);
	sbx_session_close(s);
	return rc < 0 ? 1 : 0;
}

int cmd_cp(int argc, char **argv)
{
	int quiet = 0, no_fsync = 0;
	const char *args[2];
	int nargs = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			quiet = 1;
		} else if (!strcmp(argv[i], "--no-fsync")) {
			no_fsync = 1;
		} else if (nargs < 2 && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
			args[nargs++] = argv[i];
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (nargs != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	endpoint src, dst;
	parse_endpoint(args[0], &src);
	parse_endpoint(args[1], &dst);
	if (!src.target[0] && !dst.target[0]) {
		cli_say(stderr, "sbx cp: neither %s nor %s names a sandbox (NAME[/SERVICE]:PATH); see `sbx ls`\n",
			args[0], args[1]);
		return EXIT_USAGE;
	}
	sbx_loop *loop = sbx_loop_new();
	int rc;
	if (src.target[0] && dst.target[0]) {
		char tmp[] = "/tmp/sbx-cp-XXXXXX";
		int fd = mkstemp(tmp);
		if (fd < 0) {
			cli_say(stderr, "sbx cp: cannot create a temporary file: %s\n", strerror(errno));
			sbx_loop_free(loop);
			return 1;
		}
		close(fd);
		endpoint mid = {.target = "", .path = tmp};
		/* the temporary file need not survive a crash: only the destination is made durable */
		rc = copy_one(loop, &src, &mid, NULL, tmp, quiet, 1);
		if (rc == 0)
			rc = copy_one(loop, &mid, &dst, tmp, NULL, quiet, no_fsync);
		unlink(tmp);
	} else {
		rc = copy_one(loop, &src, &dst, src.path, dst.path, quiet, no_fsync);
	}
	sbx_loop_free(loop);
	return rc;
}
