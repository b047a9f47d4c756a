/* cmd_cp.c — `sbx cp`: copy a file or a directory tree into, out of, or
 * between sandboxes, like `docker cp`. Either side may be
 * NAME[/SERVICE]:PATH; "-" is stdin or stdout (one file). Where the copy
 * lands is cp_target.c's; a tree travels as one stream (libsbx `tree`). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cp_target.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx cp [-r] [--quiet] [--no-fsync] [--max-size SIZE] SRC DST\n"
		"\n"
		"Copies a file, a symlink or a directory tree, like docker cp. SRC and DST\n"
		"are local paths, '-' (stdin/stdout, one file), or NAME[/SERVICE]:PATH\n"
		"inside a sandbox. Copying between two sandboxes goes through a temporary\n"
		"local copy.\n"
		"\n"
		"Where it lands: when DST is an existing directory the copy goes inside it\n"
		"(DST/BASENAME); DST ending in '/' must be an existing directory; otherwise\n"
		"DST itself is created (a directory source becomes DST) or, for a file,\n"
		"replaced. A directory merges into an existing directory of the same name.\n"
		"\n"
		"Kept: permission bits both ways (no umask; set-id bits are dropped on the\n"
		"way out of a sandbox), symlinks as links (never followed), empty files\n"
		"and directories. Sockets, FIFOs and devices inside a tree are skipped. A\n"
		"download only ever replaces a regular file: an existing directory, symlink\n"
		"or device at the destination is an error, so `sbx cp box:f /dev/null`\n"
		"fails instead of replacing /dev/null.\n"
		"\n"
		"Each file is written to .NAME.sbx-XXXXXX beside it and renamed into place\n"
		"when complete, so a failed or interrupted copy (an error, Ctrl-C, a full\n"
		"disk) leaves that file as it was and no temporary file behind; files of\n"
		"a tree already copied stay. A copy is reported done once files and\n"
		"directories are fsynced on the receiving side; --no-fsync skips that\n"
		"(faster; still atomic per file while the machine stays up).\n"
		"\n"
		"  -r, -R, --recursive  accepted for cp habits: directories always copy whole\n"
		"  --max-size SIZE      refuse a source over SIZE bytes (K, M, G suffixes);\n"
		"                       for a tree, SIZE bounds the whole stream (contents\n"
		"                       plus about 15 bytes and the name per entry)\n"
		"  -q, --quiet          no progress bar (it shows on a terminal for copies\n"
		"                       out of a sandbox and uploads over 4 MiB)\n");
}

typedef struct endpoint {
	char target[128]; /* NAME[/SERVICE], empty for local */
	const char *path;
} endpoint;

typedef struct cp_opts {
	int quiet, no_fsync;
	uint64_t max_size; /* 0: none */
} cp_opts;

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

/* ---------------------------------------------------------------- progress */

typedef struct progress_state {
	int show, shown;
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
	p->shown = 1;
	char d[32], t[32], rate[32];
	human((double)done, d, sizeof d);
	human((double)total, t, sizeof t);
	double secs = (double)(now - p->start_ms) / 1000.0;
	human(secs > 0 ? (double)done / secs : 0, rate, sizeof rate);
	if (!total) { /* a tree: its size is not known ahead */
		fprintf(stderr, "\r%s  %s/s ", d, rate);
		return;
	}
	int pct = (int)(done * 100 / total);
	int bar = pct / 4;
	fprintf(stderr, "\r[%.*s%*s] %3d%% %s / %s  %s/s ", bar, "#########################", 25 - bar, "", pct, d, t,
		rate);
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* INT/TERM/HUP cancel the transfer (so temp files go) instead of killing
 * us in the middle of it. No SA_RESTART: the loop's wait returns. */
static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---------------------------------------------------------------- one transfer */

/* The ud of a transfer's callbacks: its progress and its result. */
typedef struct transfer_wait {
	progress_state ps;
	uint64_t size; /* a download's size from its STAT (reads report no total) */
	int done;
	sbx_file_result r;
} transfer_wait;

static void transfer_progress(void *ud, uint64_t done, uint64_t total)
{
	transfer_wait *w = ud;
	on_progress(&w->ps, done, total ? total : w->size);
}

static void transfer_done(void *ud, sbx_file_result *r)
{
	transfer_wait *w = ud;
	w->r = *r;
	r->data = NULL;
	w->done = 1;
}

/* Runs one read or write to its end, cancelling it on a signal (the
 * library then removes the temp file). 0, or -1 with the error said. */
static int run_transfer(sbx_session *s, sbx_loop *loop, sbx_file_opts *o, int is_write, int show, uint64_t size)
{
	transfer_wait w;
	memset(&w, 0, sizeof w);
	w.size = size;
	w.ps.show = show;
	w.ps.start_ms = sbx_now_ms();
	o->on_progress = transfer_progress;
	o->on_done = transfer_done;
	o->ud = &w;
	sbx_call *c = is_write ? sbx_write_file(s, o, &w.r.error) : sbx_read_file(s, o, &w.r.error);
	int cancelled = 0;
	while (c && !w.done) {
		if (stop_signal && !cancelled) {
			sbx_call_cancel(c);
			cancelled = 1;
		}
		/* a bounded wait: a signal landing just before it is seen soon */
		if (sbx_loop_run_once(loop, 200) < 0)
			break;
	}
	if (w.ps.shown)
		cli_say(stderr, "\n");
	int rc = c && w.done && w.r.error.status == SBX_OK ? 0 : -1;
	if (rc < 0 && !stop_signal)
		cli_say(stderr, "sbx cp: %s\n", w.r.error.message[0] ? w.r.error.message : "the transfer failed");
	sbx_file_result_free(&w.r);
	return rc;
}

/* ---------------------------------------------------------------- upload */

static int upload(sbx_session *s, sbx_loop *loop, const char *src, const endpoint *dst, const cp_opts *co)
{
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.no_fsync = co->no_fsync;
	o.limit = co->max_size;
	if (!strcmp(src, "-")) { /* stdin: one file at exactly that path */
		o.path = dst->path;
		o.fd = 0;
		return run_transfer(s, loop, &o, 1, 0, 0);
	}
	struct stat st;
	if (lstat(src, &st) < 0) {
		cli_say(stderr, "sbx cp: cannot read %s: %s\n", src, strerror(errno));
		return -1;
	}
	int is_dir = S_ISDIR(st.st_mode);
	if (!is_dir && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		cli_say(stderr, "sbx cp: %s is not a file, directory or symlink\n", src);
		return -1;
	}
	if (co->max_size && S_ISREG(st.st_mode) && (uint64_t)st.st_size > co->max_size) {
		cli_say(stderr, "sbx cp: %s is %llu bytes, over --max-size %llu\n", src,
			(unsigned long long)st.st_size, (unsigned long long)co->max_size);
		return -1;
	}
	sbx_stat_result rs;
	char where[4200], err[4400];
	if (sbx_stat_sync(s, dst->path, &rs) < 0) {
		cli_say(stderr, "sbx cp: %s\n", rs.error.message);
		return -1;
	}
	cp_dest_info info = {.exists = rs.exists, .is_dir = rs.is_dir};
	if (cp_target(src, is_dir, dst->path, &info, where, sizeof where, err, sizeof err) < 0) {
		cli_say(stderr, "sbx cp: %s:%s\n", dst->target, err);
		return -1;
	}
	o.path = where;
	o.local_path = src;
	if (S_ISREG(st.st_mode)) { /* one file: its mode, a known size for the bar */
		o.mode = (int)(st.st_mode & 07777);
		return run_transfer(s, loop, &o, 1, !co->quiet && isatty(2) && st.st_size > 4 * 1024 * 1024, 0);
	}
	o.tree = 1;
	return run_transfer(s, loop, &o, 1, !co->quiet && isatty(2), 0);
}

/* ---------------------------------------------------------------- download */

static int download(sbx_session *s, sbx_loop *loop, const endpoint *src, const char *dst, const cp_opts *co)
{
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.no_fsync = co->no_fsync;
	o.limit = co->max_size ? co->max_size : UINT64_MAX;
	o.path = src->path;
	if (!strcmp(dst, "-")) {
		o.fd = 1;
		return run_transfer(s, loop, &o, 0, 0, 0);
	}
	sbx_stat_result rs;
	char where[4200], err[4400];
	if (sbx_stat_sync(s, src->path, &rs) < 0) {
		cli_say(stderr, "sbx cp: %s\n", rs.error.message);
		return -1;
	}
	if (!rs.exists) {
		cli_say(stderr, "sbx cp: %s:%s: No such file or directory\n", src->target, src->path);
		return -1;
	}
	struct stat st;
	cp_dest_info info = {0};
	if (stat(dst, &st) == 0) {
		info.exists = 1;
		info.is_dir = S_ISDIR(st.st_mode);
	}
	if (cp_target(src->path, rs.is_dir, dst, &info, where, sizeof where, err, sizeof err) < 0) {
		cli_say(stderr, "sbx cp: %s\n", err);
		return -1;
	}
	o.local_path = where;
	o.tree = rs.is_dir || rs.is_link || !S_ISREG(rs.mode);
	if (!o.tree && co->max_size && rs.size > co->max_size) {
		cli_say(stderr, "sbx cp: %s:%s is %llu bytes, over --max-size %llu\n", src->target, src->path,
			(unsigned long long)rs.size, (unsigned long long)co->max_size);
		return -1;
	}
	return run_transfer(s, loop, &o, 0, !co->quiet && isatty(2), o.tree ? 0 : rs.size);
}

/* ---------------------------------------------------------------- the command */

static int copy_one(sbx_loop *loop, const endpoint *src, const endpoint *dst, const cp_opts *co)
{
	cli_sandbox sb;
	const char *svc;
	const endpoint *remote = src->target[0] ? src : dst;
	sbx_session *s = cli_connect(loop, remote->target, &sb, &svc);
	if (!s)
		return EXIT_SBX_ERROR;
	int rc = remote == dst ? upload(s, loop, src->path, dst, co) : download(s, loop, src, dst->path, co);
	cli_disconnect(loop, s);
	return rc < 0 ? 1 : 0;
}

/* Both sides in sandboxes: through a private local directory. */
static int copy_between(sbx_loop *loop, const endpoint *src, const endpoint *dst, const cp_opts *co)
{
	char dir[] = "/tmp/sbx-cp-XXXXXX";
	if (!mkdtemp(dir)) {
		cli_say(stderr, "sbx cp: cannot create a temporary directory: %s\n", strerror(errno));
		return 1;
	}
	char mid_path[64];
	const char *slash = strrchr(src->path, '/');
	const char *base = slash && slash[1] ? slash + 1 : "copy";
	snprintf(mid_path, sizeof mid_path, "%s/%.40s", dir, strcmp(base, ".") && strcmp(base, "..") ? base : "copy");
	endpoint mid = {.target = "", .path = mid_path};
	cp_opts first = *co;
	first.no_fsync = 1; /* only the destination is made durable */
	int rc = copy_one(loop, src, &mid, &first);
	if (rc == 0 && !stop_signal)
		rc = copy_one(loop, &mid, dst, co);
	cli_remove_tree(dir);
	return rc;
}

static int parse_args(int argc, char **argv, cp_opts *co, const char **args)
{
	int nargs = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -2;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			co->quiet = 1;
		} else if (!strcmp(a, "--no-fsync")) {
			co->no_fsync = 1;
		} else if (!strcmp(a, "-r") || !strcmp(a, "-R") || !strcmp(a, "--recursive")) {
			/* directories always copy whole */
		} else if (!strcmp(a, "--max-size") || !strncmp(a, "--max-size=", 11)) {
			const char *v = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : NULL);
			long long n = v ? cli_parse_size(v) : -1;
			if (n <= 0) {
				cli_say(stderr, "sbx cp: --max-size takes a size above 0 such as 512K, 100M or 2G, not '%s'\n",
					v ? v : "");
				return -1;
			}
			co->max_size = (uint64_t)n;
		} else if (nargs < 2 && (a[0] != '-' || !strcmp(a, "-"))) {
			args[nargs++] = a;
		} else {
			usage(stderr);
			return -1;
		}
	}
	if (nargs != 2) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int cmd_cp(int argc, char **argv)
{
	cp_opts co = {0};
	const char *args[2];
	int prc = parse_args(argc, argv, &co, args);
	if (prc < 0)
		return prc == -2 ? 0 : EXIT_USAGE;
	endpoint src, dst;
	parse_endpoint(args[0], &src);
	parse_endpoint(args[1], &dst);
	if (!src.target[0] && !dst.target[0]) {
		cli_say(stderr, "sbx cp: neither %s nor %s names a sandbox (NAME[/SERVICE]:PATH); see `sbx ls`\n",
			args[0], args[1]);
		return EXIT_USAGE;
	}
	catch_signals();
	sbx_loop *loop = sbx_loop_new();
	int rc = src.target[0] && dst.target[0] ? copy_between(loop, &src, &dst, &co) : copy_one(loop, &src, &dst, &co);
	sbx_loop_free(loop);
	if (stop_signal) {
		cli_say(stderr, "sbx cp: interrupted; the destination file being written is unchanged\n");
		return 128 + stop_signal;
	}
	return rc;
}
