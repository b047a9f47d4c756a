/* test_files.c — write_file, read_file and stat end to end: libsbx driving
 * a real sbx-agent (the local backend).
 *
 * Covers DESIGN.md's file contract: parent directories, atomic writes
 * (owner kept, old content intact and no temporary files after a failed
 * write), every source and sink (memory, fd, local path), read limits and
 * errors (not found, is a directory, permission), large and binary data,
 * empty files, stat fields, owners of new files, and relative paths. */
#include "it_util.h"

static sbx_loop *g_loop;
static sbx_session *g_s;
static char g_wd[128];    /* the sandbox's working directory */
static char g_local[128]; /* host-side scratch (sources and sinks) */

#define NEED_SESSION() CHECKF(g_s && !sbx_session_failure(g_s), "the shared session is gone")

static int put(sbx_session *s, const char *path, const void *data, size_t len, sbx_file_result *r)
{
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = path;
	o.data = data;
	o.len = len;
	return sbx_write_file_sync(s, &o, r);
}

static int get(sbx_session *s, const char *path, sbx_file_result *r)
{
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = path;
	return sbx_read_file_sync(s, &o, r);
}

/* host path of something in the sandbox's working directory */
static const char *wd(const char *rel)
{
	static char bufs[4][512];
	static int i;
	char *b = bufs[i++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", g_wd, rel);
	return b;
}

static const char *loc(const char *rel)
{
	static char bufs[4][512];
	static int i;
	char *b = bufs[i++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", g_local, rel);
	return b;
}

/* ---------------------------------------------------------------- write */

static void test_write_creates_parents(void)
{
	NEED_SESSION();
	sbx_file_result r;
	CHECK(put(g_s, "a/b/c/file.txt", "hello", 5, &r) == 0);
	CHECK_EQ_INT(r.size, 5);
	sbx_file_result_free(&r);
	size_t n;
	uint8_t *got = it_read_local(wd("a/b/c/file.txt"), &n);
	CHECK(got != NULL);
	int same = n == 5 && memcmp(got, "hello", 5) == 0;
	free(got);
	CHECK(same);
	struct stat st;
	CHECK(stat(wd("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 0777, 0755);
	CHECK(stat(wd("a/b/c/file.txt"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0644); /* the default for new files */

	/* absolute paths too */
	char abs[512];
	snprintf(abs, sizeof abs, "%s/abs/x/y.txt", g_wd);
	CHECK(put(g_s, abs, "y", 1, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(stat(wd("abs/x/y.txt"), &st) == 0 && st.st_size == 1);
	CHECK_EQ_INT(it_count_entries(wd("a/b/c"), ".sbx-"), 0);
}

static void test_write_relative_path(void)
{
	NEED_SESSION();
	sbx_file_result r;
	CHECK(put(g_s, "rel/dir/x.txt", "relative", 8, &r) == 0);
	sbx_file_result_free(&r);
	struct stat st;
	CHECK(stat(wd("rel/dir/x.txt"), &st) == 0);
	CHECK(get(g_s, "./rel/../rel/dir//x.txt", &r) == 0);
	CHECK_EQ_STR((char *)r.data, "relative");
	sbx_file_result_free(&r);
	/* ".." never climbs above / */
	char deep[512];
	snprintf(deep, sizeof deep, "../../../../../../../../..%s/rel/dir/x.txt", g_wd);
	CHECK(get(g_s, deep, &r) == 0);
	CHECK_EQ_STR((char *)r.data, "relative");
	sbx_file_result_free(&r);
}

static void test_overwrite_keeps_owner_and_mode(void)
{
	NEED_SESSION();
	if (geteuid() != 0)
		SKIP("needs root to chown the target");
	sbx_file_result r;
	CHECK(put(g_s, "owned.txt", "first version", 13, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(chown(wd("owned.txt"), 1234, 1234) == 0);
	CHECK(chmod(wd("owned.txt"), 0640) == 0);
	struct stat before, after;
	CHECK(stat(wd("owned.txt"), &before) == 0);

	CHECK(put(g_s, "owned.txt", "second", 6, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(stat(wd("owned.txt"), &after) == 0);
	CHECK_EQ_INT(after.st_uid, 1234);
	CHECK_EQ_INT(after.st_gid, 1234);
	CHECK_EQ_INT(after.st_mode & 07777, 0640);
	CHECK_EQ_INT(after.st_size, 6);
	CHECK(after.st_ino != before.st_ino); /* replaced by rename, not rewritten in place */

	/* an explicit mode wins, the owner still stays */
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "owned.txt";
	o.data = "third";
	o.len = 5;
	o.mode = 0600;
	CHECK(sbx_write_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(stat(wd("owned.txt"), &after) == 0);
	CHECK_EQ_INT(after.st_uid, 1234);
	CHECK_EQ_INT(after.st_mode & 07777, 0600);
	CHECK(get(g_s, "owned.txt", &r) == 0);
	CHECK_EQ_STR((char *)r.data, "third");
	sbx_file_result_free(&r);
	CHECK_EQ_INT(it_count_entries(g_wd, ".sbx-"), 0);
}

/* A symlink at the path is replaced by the new file, not written through. */
static void test_write_replaces_symlink(void)
{
	NEED_SESSION();
	CHECK(it_write_local(wd("link-target.txt"), "target", 6) == 0);
	unlink(wd("link.txt"));
	CHECK(symlink("link-target.txt", wd("link.txt")) == 0);
	sbx_file_result r;
	CHECK(put(g_s, "link.txt", "new", 3, &r) == 0);
	sbx_file_result_free(&r);
	struct stat st;
	CHECK(lstat(wd("link.txt"), &st) == 0 && S_ISREG(st.st_mode));
	size_t n;
	uint8_t *t = it_read_local(wd("link-target.txt"), &n);
	CHECK(t != NULL);
	int same = n == 6 && memcmp(t, "target", 6) == 0;
	free(t);
	CHECK(same);
}

static void test_write_with_user(void)
{
	NEED_SESSION();
	if (geteuid() != 0)
		SKIP("needs root to give files away");
	mkdir(wd("uexisting"), 0755);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "uexisting/u1/u2/f.txt";
	o.data = "mine";
	o.len = 4;
	o.user = "nobody";
	sbx_file_result r;
	CHECKF(sbx_write_file_sync(g_s, &o, &r) == 0, "%s", r.error.message);
	sbx_file_result_free(&r);
	struct stat st;
	CHECK(stat(wd("uexisting/u1/u2/f.txt"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 65534);
	CHECK_EQ_INT(st.st_gid, 65534);
	CHECK(stat(wd("uexisting/u1/u2"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 65534);
	CHECK(stat(wd("uexisting/u1"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 65534);
	CHECK_EQ_INT(st.st_gid, 65534);
	CHECK(stat(wd("uexisting"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 0); /* existing directories are left alone */

	/* set-id bits survive the chown */
	o.path = "uexisting/setid";
	o.mode = 04755;
	o.user = "1234:1234";
	CHECK(sbx_write_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(stat(wd("uexisting/setid"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);
	CHECK_EQ_INT(st.st_mode & 07777, 04755);

	o.path = "uexisting/nouser";
	o.mode = -1;
	o.user = "no-such-user-sbx-it";
	CHECK(sbx_write_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "bad_user");
	CHECK(access(wd("uexisting/nouser"), F_OK) != 0);
}

static void test_write_sources(void)
{
	NEED_SESSION();
	sbx_file_result r;
	/* fd: a regular file, from its current offset to EOF */
	uint8_t data[300000];
	it_fill_random(data, sizeof data, 3);
	CHECK(it_write_local(loc("src.bin"), data, sizeof data) == 0);
	int fd = open(loc("src.bin"), O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "from-fd.bin";
	o.fd = fd;
	int rc = sbx_write_file_sync(g_s, &o, &r);
	close(fd);
	CHECKF(rc == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.size, sizeof data);
	sbx_file_result_free(&r);
	size_t n;
	uint8_t *got = it_read_local(wd("from-fd.bin"), &n);
	CHECK(got);
	int same = n == sizeof data && memcmp(got, data, n) == 0;
	free(got);
	CHECK(same);

	/* fd: a pipe, read to EOF */
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "through a pipe", 14) == 14);
	close(p[1]);
	o = (sbx_file_opts)SBX_FILE_OPTS_INIT;
	o.path = "from-pipe.txt";
	o.fd = p[0];
	rc = sbx_write_file_sync(g_s, &o, &r);
	close(p[0]);
	CHECKF(rc == 0, "%s", r.error.message);
	sbx_file_result_free(&r);
	CHECK(get(g_s, "from-pipe.txt", &r) == 0);
	CHECK_EQ_STR((char *)r.data, "through a pipe");
	sbx_file_result_free(&r);

	/* local_path */
	o = (sbx_file_opts)SBX_FILE_OPTS_INIT;
	o.path = "from-path.bin";
	o.local_path = loc("src.bin");
	CHECK(sbx_write_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	got = it_read_local(wd("from-path.bin"), &n);
	CHECK(got);
	same = n == sizeof data && memcmp(got, data, n) == 0;
	free(got);
	CHECK(same);

	/* a missing local source fails locally, and nothing is created */
	o.path = "never.bin";
	o.local_path = loc("no-such-source");
	CHECK(sbx_write_file_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_LOCAL);
	CHECK_EQ_INT(r.error.err_no, ENOENT);
	CHECK(strstr(r.error.message, "no-such-source") != NULL);
	CHECK(access(wd("never.bin"), F_OK) != 0);

	/* no source at all with a length is invalid */
	o = (sbx_file_opts)SBX_FILE_OPTS_INIT;
	o.path = "never.bin";
	o.len = 5;
	CHECK(sbx_write_file_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
	o.len = 0;
	o.path = "";
	o.data = "x";
	CHECK(sbx_write_file_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
}

static void test_write_errors(void)
{
	NEED_SESSION();
	sbx_file_result r;
	mkdir(wd("adir"), 0755);
	CHECK(put(g_s, "adir", "x", 1, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "is_directory");
	CHECK(put(g_s, "adir/", "x", 1, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "is_directory");
	CHECK(it_write_local(wd("afile"), "f", 1) == 0);
	CHECK(put(g_s, "afile/below/x.txt", "x", 1, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_directory");
	CHECK(strstr(r.error.message, "afile") != NULL);
	CHECK_EQ_INT(it_count_entries(wd("adir"), ".sbx-"), 0);
	CHECK_EQ_INT(it_count_entries(g_wd, ".sbx-"), 0);
}

/* ---------------------------------------------------------------- atomic writes */

typedef struct xfer {
	int done;
	int stop_at_mb;    /* progress threshold that triggers the action */
	int cancel_now;    /* cancel from inside on_progress */
	int reached;       /* the threshold was passed */
	uint64_t last, total;
	int monotonic;
	sbx_call *call;
	sbx_file_result res;
} xfer;

static void x_progress(void *ud, uint64_t done, uint64_t total)
{
	xfer *x = ud;
	if (done < x->last)
		x->monotonic = 0;
	x->last = done;
	x->total = total;
	if (!x->reached && x->stop_at_mb && done >= (uint64_t)x->stop_at_mb << 20) {
		x->reached = 1;
		if (x->cancel_now)
			sbx_call_cancel(x->call);
	}
}

static void x_done(void *ud, sbx_file_result *r)
{
	xfer *x = ud;
	x->res = *r;
	r->data = NULL;
	x->done = 1;
}

static void test_cancelled_write_keeps_old(void)
{
	NEED_SESSION();
	CHECK(it_write_local(wd("atomic.txt"), "old content", 11) == 0);
	size_t n = 64u << 20;
	uint8_t *big = malloc(n);
	CHECK(big);
	memset(big, 'N', n);
	static xfer x;
	x = (xfer){.stop_at_mb = 8, .cancel_now = 1, .monotonic = 1};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "atomic.txt";
	o.data = big;
	o.len = n;
	o.on_progress = x_progress;
	o.on_done = x_done;
	o.ud = &x;
	sbx_error err;
	x.call = sbx_write_file(g_s, &o, &err);
	if (!x.call)
		free(big);
	CHECK(x.call != NULL);
	int rc = it_run_until(g_loop, &x.done, 60);
	free(big);
	CHECK(rc == 0);
	CHECK(x.reached);
	CHECK_ERR(x.res.error, SBX_E_CANCELLED, "cancelled");
	size_t len;
	uint8_t *got = it_read_local(wd("atomic.txt"), &len);
	CHECK(got);
	int same = len == 11 && memcmp(got, "old content", 11) == 0;
	free(got);
	CHECK(same);
	/* the agent removed its temporary file before it answered */
	CHECK_EQ_INT(it_count_entries(g_wd, ".atomic.txt.sbx-"), 0);
	CHECK_EQ_INT(sbx_session_pending(g_s), 0);
}

/* The session goes away in the middle of an upload: the target keeps its
 * old content and the agent, seeing its host gone, drops the temp file. */
static void test_closed_session_mid_write_keeps_old(void)
{
	NEED_SESSION();
	sbx_session *s = it_local(g_loop, g_wd, 0);
	CHECK(s);
	CHECK(it_write_local(wd("atomic2.txt"), "old content", 11) == 0);
	size_t n = 64u << 20;
	uint8_t *big = malloc(n);
	CHECK(big);
	memset(big, 'N', n);
	static xfer x;
	x = (xfer){.stop_at_mb = 8, .monotonic = 1};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "atomic2.txt";
	o.data = big;
	o.len = n;
	o.on_progress = x_progress;
	o.on_done = x_done;
	o.ud = &x;
	sbx_error err;
	x.call = sbx_write_file(s, &o, &err);
	CHECK(x.call != NULL);
	int rc = it_run_until(g_loop, &x.reached, 60);
	/* the temp file is there while the upload runs */
	int temps_during = it_count_entries(g_wd, ".atomic2.txt.sbx-");
	sbx_session_close(s);
	free(big);
	CHECK(rc == 0);
	CHECK_EQ_INT(x.done, 1);
	CHECK_ERR(x.res.error, SBX_E_CANCELLED, "cancelled");
	CHECK_EQ_INT(temps_during, 1);
	size_t len;
	uint8_t *got = it_read_local(wd("atomic2.txt"), &len);
	CHECK(got);
	int same = len == 11 && memcmp(got, "old content", 11) == 0;
	free(got);
	CHECK(same);
	int temps = it_count_entries(g_wd, ".atomic2.txt.sbx-");
	CHECKF(temps == 0, "%d temporary files left behind", temps);
}

/* ---------------------------------------------------------------- read */

static void test_read_sinks(void)
{
	NEED_SESSION();
	uint8_t data[200000];
	it_fill_random(data, sizeof data, 11);
	CHECK(it_write_local(wd("payload.bin"), data, sizeof data) == 0);

	/* memory */
	sbx_file_result r;
	CHECK(get(g_s, "payload.bin", &r) == 0);
	CHECK_EQ_INT(r.len, sizeof data);
	CHECK_EQ_INT(r.size, sizeof data);
	CHECK(memcmp(r.data, data, sizeof data) == 0);
	sbx_file_result_free(&r);

	/* fd */
	int fd = open(loc("sink.bin"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "payload.bin";
	o.fd = fd;
	int rc = sbx_read_file_sync(g_s, &o, &r);
	close(fd);
	CHECK(rc == 0);
	CHECK(r.data == NULL);
	sbx_file_result_free(&r);
	size_t n;
	uint8_t *got = it_read_local(loc("sink.bin"), &n);
	CHECK(got);
	int same = n == sizeof data && memcmp(got, data, n) == 0;
	free(got);
	CHECK(same);

	/* local path: created, then replaced */
	o = (sbx_file_opts)SBX_FILE_OPTS_INIT;
	o.path = "payload.bin";
	o.local_path = loc("dest.bin");
	CHECK(it_write_local(loc("dest.bin"), "previous", 8) == 0);
	CHECK(sbx_read_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	got = it_read_local(loc("dest.bin"), &n);
	CHECK(got);
	same = n == sizeof data && memcmp(got, data, n) == 0;
	free(got);
	CHECK(same);
	CHECK_EQ_INT(it_count_entries(g_local, ".sbx-"), 0);

	/* local path into a missing directory: a local error */
	o.local_path = loc("no/such/dir/dest.bin");
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_LOCAL);
}

/* A failed read into a local path leaves the destination as it was. */
static void test_read_local_path_atomic(void)
{
	NEED_SESSION();
	CHECK(it_write_local(loc("keep.txt"), "keep me", 7) == 0);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.local_path = loc("keep.txt");
	sbx_file_result r;

	o.path = "no-such-file.txt";
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_found");

	/* over the limit while streaming (a file whose size is not known) */
	o.path = "/proc/self/status";
	o.limit = 100;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");

	/* a device is refused, not read forever */
	o.path = "/dev/zero";
	o.limit = 0;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "invalid");

	/* over the limit by its size */
	uint8_t buf[5000] = {0};
	CHECK(it_write_local(wd("5000.bin"), buf, sizeof buf) == 0);
	o.path = "5000.bin";
	o.limit = 4999;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");

	size_t n;
	uint8_t *got = it_read_local(loc("keep.txt"), &n);
	CHECK(got);
	int same = n == 7 && memcmp(got, "keep me", 7) == 0;
	free(got);
	CHECK(same);
	CHECK_EQ_INT(it_count_entries(g_local, ".keep.txt.sbx-"), 0);
	CHECK_EQ_INT(it_count_entries(g_local, ".sbx-"), 0);
}

static void test_read_limit(void)
{
	NEED_SESSION();
	uint8_t *buf = calloc(1, 2u << 20);
	CHECK(buf);
	int wr = it_write_local(wd("2mib.bin"), buf, 2u << 20);
	free(buf);
	CHECK(wr == 0);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "2mib.bin";
	o.limit = 1u << 20;
	sbx_file_result r;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");
	CHECK_EQ_INT(r.error.err_no, EFBIG);
	CHECK(strstr(r.error.message, "2097152") != NULL);
	CHECK(r.data == NULL);

	/* exactly the limit is fine */
	o.limit = 2u << 20;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == 0);
	CHECK_EQ_INT(r.len, 2u << 20);
	sbx_file_result_free(&r);

	/* a file without a known size (procfs) stops at the limit */
	o.path = "/proc/self/status";
	o.limit = 200;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");
	CHECK(r.data == NULL);

	/* devices and FIFOs are refused (a read could block the agent) */
	o.path = "/dev/zero";
	o.limit = 0;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "invalid");
	CHECK(mkfifo(wd("fifo"), 0644) == 0 || errno == EEXIST);
	CHECK(get(g_s, "fifo", &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "invalid");

	/* the default limit is 100 MiB (a sparse file: nothing is moved) */
	int fd = open(wd("sparse.bin"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	int tr = ftruncate(fd, (off_t)SBX_DEFAULT_READ_LIMIT + 1);
	close(fd);
	CHECK(tr == 0);
	CHECK(get(g_s, "sparse.bin", &r) == -1);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");
	unlink(wd("sparse.bin"));

	/* files the kernel reports as empty are read to their end */
	CHECK(get(g_s, "/proc/self/status", &r) == 0);
	CHECK(r.len > 0 && strstr((char *)r.data, "Pid:") != NULL);
	sbx_file_result_free(&r);

	/* the session goes on */
	CHECK(get(g_s, "2mib.bin", &r) == 0);
	sbx_file_result_free(&r);
}

static void test_read_errors(void)
{
	NEED_SESSION();
	sbx_file_result r;
	CHECK(get(g_s, "no/such/file", &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_found");
	CHECK_EQ_INT(r.error.err_no, ENOENT);
	CHECK(strstr(r.error.message, "no/such/file") != NULL);
	mkdir(wd("rdir"), 0755);
	CHECK(get(g_s, "rdir", &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "is_directory");
	CHECK_EQ_INT(r.error.err_no, EISDIR);
	CHECK(it_write_local(wd("rfile"), "f", 1) == 0);
	CHECK(get(g_s, "rfile/x", &r) == -1);
	CHECK_ERR(r.error, SBX_E_REMOTE, "not_directory");
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = NULL;
	CHECK(sbx_read_file_sync(g_s, &o, &r) == -1);
	CHECK_EQ_INT(r.error.status, SBX_E_INVALID);
}

/* Permission errors need an agent that is not root: run it as nobody. */
static void test_permission_errors(void)
{
	NEED_SESSION();
	if (geteuid() != 0)
		SKIP("needs root to start the agent as another user");
	if (access("/usr/bin/setpriv", X_OK) != 0)
		SKIP("setpriv is not installed");
	const char *argv[] = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			      it_agent(), "--stdio", NULL};
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	CHECK(s);
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		sbx_session_close(s);
		CHECKF(0, "agent as nobody: %s", err.message);
	}
	CHECK(mkdir(wd("perm"), 0755) == 0 || errno == EEXIST);
	CHECK(it_write_local(wd("perm/secret.txt"), "secret", 6) == 0);
	chmod(wd("perm/secret.txt"), 0);
	CHECK(mkdir(wd("perm/closed"), 0700) == 0 || errno == EEXIST);
	CHECK(it_write_local(wd("perm/closed/inner.txt"), "inner", 5) == 0);

	sbx_file_result r;
	int rc1 = get(s, wd("perm/secret.txt"), &r);
	sbx_error e1 = r.error;
	sbx_file_result_free(&r);
	int rc2 = get(s, wd("perm/closed/inner.txt"), &r);
	sbx_error e2 = r.error;
	sbx_file_result_free(&r);
	int rc3 = put(s, wd("perm/new.txt"), "x", 1, &r); /* directory owned by root */
	sbx_error e3 = r.error;
	int rc4 = put(s, wd("perm/closed/sub/new.txt"), "x", 1, &r);
	sbx_error e4 = r.error;
	sbx_exec_result xr;
	const char *id[] = {"id", "-u", NULL};
	int rc5 = it_exec(s, &xr, id);
	char uid_out[32];
	snprintf(uid_out, sizeof uid_out, "%s", xr.out ? (char *)xr.out : "");
	sbx_exec_result_free(&xr);
	sbx_session_close(s);

	CHECK(rc1 == -1);
	CHECK_ERR(e1, SBX_E_REMOTE, "permission");
	CHECK_EQ_INT(e1.err_no, EACCES);
	CHECK(strstr(e1.message, "secret.txt") != NULL);
	CHECK(rc2 == -1);
	CHECK_ERR(e2, SBX_E_REMOTE, "permission");
	CHECK(rc3 == -1);
	CHECK_ERR(e3, SBX_E_REMOTE, "permission");
	CHECK(rc4 == -1);
	CHECK_ERR(e4, SBX_E_REMOTE, "permission");
	CHECK(access(wd("perm/new.txt"), F_OK) != 0);
	CHECK_EQ_INT(it_count_entries(wd("perm"), ".sbx-"), 0);
	CHECK(rc5 == 0);
	CHECK_EQ_STR(uid_out, "65534\n");
}

/* ---------------------------------------------------------------- data */

static void test_big_round_trip(void)
{
	NEED_SESSION();
	size_t n = 100u << 20;
	uint8_t *data = malloc(n);
	CHECK(data);
	it_fill_random(data, n, 99);
	char want[65];
	it_sha256_hex(data, n, want);
	sbx_file_result w, r;
	int rc = put(g_s, "big/random.bin", data, n, &w);
	sbx_error we = w.error;
	uint64_t wsize = w.size;
	int rrc = rc == 0 ? get(g_s, "big/random.bin", &r) : -1;
	int same = rrc == 0 && r.len == n && memcmp(r.data, data, n) == 0;
	if (rrc == 0)
		sbx_file_result_free(&r);
	free(data);
	CHECKF(rc == 0, "write: %s", we.message);
	CHECK_EQ_INT(wsize, n);
	CHECK(rrc == 0);
	CHECK(same);

	/* the sandbox's view agrees */
	sbx_exec_result x;
	const char *sha[] = {"sha256sum", "big/random.bin", NULL};
	CHECK(it_exec(g_s, &x, sha) == 0);
	int ok = x.out_len >= 64 && memcmp(x.out, want, 64) == 0;
	sbx_exec_result_free(&x);
	CHECK(ok);

	/* and through local paths both ways */
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "big/random.bin";
	o.local_path = loc("big-down.bin");
	CHECK(sbx_read_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	o.path = "big/random-up.bin";
	CHECK(sbx_write_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	unlink(loc("big-down.bin"));
	const char *sha2[] = {"sha256sum", "big/random-up.bin", NULL};
	CHECK(it_exec(g_s, &x, sha2) == 0);
	ok = x.out_len >= 64 && memcmp(x.out, want, 64) == 0;
	sbx_exec_result_free(&x);
	CHECK(ok);
	unlink(wd("big/random.bin"));
	unlink(wd("big/random-up.bin"));
}

static void test_binary_and_empty(void)
{
	NEED_SESSION();
	uint8_t data[256 * 1031];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i % 256 == 0 ? 0 : (i * 31 + i / 256));
	sbx_file_result r;
	CHECK(put(g_s, "binary.bin", data, sizeof data, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(get(g_s, "binary.bin", &r) == 0);
	CHECK_EQ_INT(r.len, sizeof data);
	CHECK(memcmp(r.data, data, sizeof data) == 0);
	sbx_file_result_free(&r);
	const uint8_t nuls[4] = {0, 0, 0, 0};
	CHECK(put(g_s, "nuls.bin", nuls, 4, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(get(g_s, "nuls.bin", &r) == 0);
	CHECK_EQ_INT(r.len, 4);
	CHECK(memcmp(r.data, nuls, 4) == 0);
	sbx_file_result_free(&r);

	/* empty: created, read back as zero bytes (with a valid buffer) */
	CHECK(put(g_s, "empty.txt", "", 0, &r) == 0);
	CHECK_EQ_INT(r.size, 0);
	sbx_file_result_free(&r);
	struct stat st;
	CHECK(stat(wd("empty.txt"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
	CHECK(get(g_s, "empty.txt", &r) == 0);
	CHECK_EQ_INT(r.len, 0);
	CHECK(r.data != NULL);
	sbx_file_result_free(&r);
	/* no source at all also writes an empty file */
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "binary.bin";
	CHECK(sbx_write_file_sync(g_s, &o, &r) == 0);
	sbx_file_result_free(&r);
	CHECK(stat(wd("binary.bin"), &st) == 0 && st.st_size == 0);
}

static void test_stat(void)
{
	NEED_SESSION();
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "st/file.txt";
	char data[1234];
	memset(data, 'x', sizeof data);
	o.data = data;
	o.len = sizeof data;
	o.mode = 0640;
	sbx_file_result w;
	CHECK(sbx_write_file_sync(g_s, &o, &w) == 0);
	sbx_file_result_free(&w);
	struct stat hs;
	CHECK(stat(wd("st/file.txt"), &hs) == 0);

	sbx_stat_result st;
	CHECK(sbx_stat_sync(g_s, "st/file.txt", &st) == 0);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.is_dir, 0);
	CHECK_EQ_INT(st.is_link, 0);
	CHECK(S_ISREG(st.mode));
	CHECK_EQ_INT(st.mode & 07777, 0640);
	CHECK_EQ_INT(st.size, 1234);
	CHECK_EQ_INT(st.uid, hs.st_uid);
	CHECK_EQ_INT(st.gid, hs.st_gid);
	CHECK_EQ_INT(st.mtime_ns, (int64_t)hs.st_mtim.tv_sec * 1000000000 + hs.st_mtim.tv_nsec);

	CHECK(sbx_stat_sync(g_s, "st", &st) == 0);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.is_dir, 1);
	CHECK(S_ISDIR(st.mode));

	/* a missing path is an answer, not an error */
	CHECK(sbx_stat_sync(g_s, "st/missing", &st) == 0);
	CHECK_EQ_INT(st.exists, 0);
	CHECK(sbx_stat_sync(g_s, "st/file.txt/below", &st) == 0);
	CHECK_EQ_INT(st.exists, 0);

	/* symlinks are followed */
	unlink(wd("st/link"));
	CHECK(symlink("file.txt", wd("st/link")) == 0);
	CHECK(sbx_stat_sync(g_s, "st/link", &st) == 0);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.size, 1234);
	CHECK(S_ISREG(st.mode));
	unlink(wd("st/dangling"));
	CHECK(symlink("nowhere", wd("st/dangling")) == 0);
	CHECK(sbx_stat_sync(g_s, "st/dangling", &st) == 0);
	CHECK_EQ_INT(st.exists, 0);

	CHECK(sbx_stat_sync(g_s, "", &st) == -1);
	CHECK_EQ_INT(st.error.status, SBX_E_INVALID);
}

typedef struct many_files {
	int done;
	int ok;
	int *ndone;
} many_files;

static void mf_done(void *ud, sbx_file_result *r)
{
	many_files *m = ud;
	m->done = 1;
	m->ok = r->error.status == SBX_OK;
	(*m->ndone)++;
}

/* Many transfers at once on one session, next to an exec. */
static void test_concurrent_files(void)
{
	NEED_SESSION();
	enum { N = 40 };
	static uint8_t bufs[N][70000];
	static many_files recs[N];
	static char paths[N][64];
	int ndone = 0;
	sbx_error err;
	for (int i = 0; i < N; i++) {
		it_fill_random(bufs[i], sizeof bufs[i], (uint64_t)i + 1000);
		snprintf(paths[i], sizeof paths[i], "many/f%02d.bin", i);
		recs[i] = (many_files){.ndone = &ndone};
		sbx_file_opts o = SBX_FILE_OPTS_INIT;
		o.path = paths[i];
		o.data = bufs[i];
		o.len = sizeof bufs[i];
		o.on_done = mf_done;
		o.ud = &recs[i];
		CHECK(sbx_write_file(g_s, &o, &err) != NULL);
	}
	sbx_exec_result x;
	const char *e[] = {"echo", "alongside", NULL};
	CHECK(it_exec(g_s, &x, e) == 0);
	CHECK_EQ_STR((char *)x.out, "alongside\n");
	sbx_exec_result_free(&x);
	uint64_t end = sbx_now_ms() + 60000;
	while (ndone < N && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 50);
	CHECK_EQ_INT(ndone, N);
	for (int i = 0; i < N; i++) {
		CHECKF(recs[i].ok, "write %d failed", i);
		sbx_file_result r;
		CHECK(get(g_s, paths[i], &r) == 0);
		int same = r.len == sizeof bufs[i] && memcmp(r.data, bufs[i], r.len) == 0;
		sbx_file_result_free(&r);
		CHECKF(same, "file %d differs", i);
	}
	CHECK_EQ_INT(it_count_entries(wd("many"), ".sbx-"), 0);
}

static volatile sig_atomic_t g_alarm_fired;
static int g_pipe_writer = -1;

/* Ends the pipe (write and close are async-signal-safe): a pump stuck in
 * read() gets its data and EOF, so a broken build fails here instead of
 * hanging. */
static void on_alarm(int sig)
{
	(void)sig;
	g_alarm_fired = 1;
	if (write(g_pipe_writer, "part two", 8) == 8)
		close(g_pipe_writer);
}

typedef sbx_call *(*transfer_fn)(sbx_session *s, const sbx_file_opts *o, sbx_error *err);

/* Starts the transfer o on g_s (filling rec when done) and, while it is
 * stuck on its pipe, runs `echo meanwhile` on the same session, with a
 * 20 s alarm running on_fire in case the library blocks in the pipe
 * instead of waiting on the loop. */
static void transfer_then_exec(transfer_fn start, sbx_file_opts *o, many_files *rec, void (*on_fire)(int))
{
	o->on_done = mf_done;
	o->ud = rec;
	struct sigaction sa = {.sa_handler = on_fire, .sa_flags = SA_RESTART}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	g_alarm_fired = 0;
	alarm(20);
	sbx_error err;
	CHECK(start(g_s, o, &err) != NULL);
	sbx_exec_result x;
	const char *e[] = {"echo", "meanwhile", NULL};
	int rc = it_exec(g_s, &x, e);
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	CHECK(rc == 0);
	CHECK_EQ_STR((char *)x.out, "meanwhile\n");
	sbx_exec_result_free(&x);
	CHECKF(!g_alarm_fired, "the exec waited for the pipe");
}

/* An upload from a pipe that runs dry waits on the loop, not in read():
 * an exec on the same session finishes while the pipe's writer (this
 * process) says nothing more. Were the pump to block in read(), the exec
 * would get through only once the alarm ended the pipe. */
static void test_pipe_source_waits_on_the_loop(void)
{
	NEED_SESSION();
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "part one, ", 10) == 10);
	g_pipe_writer = p[1];
	int ndone = 0;
	many_files rec = {.ndone = &ndone};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "dry-pipe.txt";
	o.fd = p[0];
	transfer_then_exec(sbx_write_file, &o, &rec, on_alarm);
	if (!g_alarm_fired) {
		CHECK_EQ_INT(rec.done, 0);
		CHECK(write(p[1], "part two", 8) == 8);
		close(p[1]);
	}
	uint64_t end = sbx_now_ms() + 30000;
	while (!rec.done && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 50);
	close(p[0]);
	CHECK(rec.ok);
	sbx_file_result r;
	CHECK(get(g_s, "dry-pipe.txt", &r) == 0);
	CHECK_EQ_STR((char *)r.data, "part one, part two");
	sbx_file_result_free(&r);
}

static int g_pipe_reader = -1;

/* Closes the reader: a read stuck writing into its full pipe fails with
 * EPIPE, so a broken build fails here instead of hanging. */
static void on_alarm_close_reader(int sig)
{
	(void)sig;
	g_alarm_fired = 1;
	close(g_pipe_reader);
}

/* A read into a non-blocking pipe whose reader is slow waits on the loop,
 * not in the library: while the pipe is full an exec on the same session
 * finishes, and once the reader drains it every byte arrives in order.
 * Were the sink written with a blocking wait, the exec would get through
 * only once the alarm broke the pipe. */
static void test_full_sink_waits_on_the_loop(void)
{
	NEED_SESSION();
	size_t n = 1u << 20; /* many times a pipe's buffer */
	uint8_t *data = malloc(n);
	CHECK(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 12));
	sbx_file_result w;
	CHECK(put(g_s, "for-slow-pipe.bin", data, n, &w) == 0);
	sbx_file_result_free(&w);
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	g_pipe_reader = p[0];
	int ndone = 0;
	many_files rec = {.ndone = &ndone};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "for-slow-pipe.bin";
	o.fd = p[1];
	transfer_then_exec(sbx_read_file, &o, &rec, on_alarm_close_reader);
	size_t got = 0;
	int same = 1;
	if (!g_alarm_fired) {
		CHECK_EQ_INT(rec.done, 0);
		uint8_t buf[65536];
		uint64_t end = sbx_now_ms() + 30000;
		while ((!rec.done || got < n) && sbx_now_ms() < end) {
			sbx_loop_run_once(g_loop, 5);
			ssize_t r;
			while ((r = read(p[0], buf, sizeof buf)) > 0) {
				if (got + (size_t)r > n || memcmp(buf, data + got, (size_t)r) != 0)
					same = 0;
				got += (size_t)r;
			}
		}
		close(p[0]);
	}
	close(p[1]);
	free(data);
	CHECK(rec.done && rec.ok);
	CHECK_EQ_INT(got, n);
	CHECK(same);
}

/* The reader of a full sink goes away: the read ends with a local error
 * (the agent is told to stop), and the session goes on. */
static void test_full_sink_reader_gone(void)
{
	NEED_SESSION();
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	int ndone = 0;
	many_files rec = {.ndone = &ndone};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "for-slow-pipe.bin"; /* test_full_sink_waits_on_the_loop's 1 MiB */
	o.fd = p[1];
	o.on_done = mf_done;
	o.ud = &rec;
	sbx_error err;
	CHECK(sbx_read_file(g_s, &o, &err) != NULL);
	sbx_exec_result x;
	const char *e[] = {"true", NULL};
	CHECK(it_exec(g_s, &x, e) == 0); /* by now the pipe is full */
	sbx_exec_result_free(&x);
	CHECK_EQ_INT(rec.done, 0);
	close(p[0]);
	uint64_t end = sbx_now_ms() + 30000;
	while (!rec.done && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 50);
	close(p[1]);
	CHECK(rec.done);
	CHECK(!rec.ok);
	const char *again[] = {"echo", "still here", NULL};
	CHECK(it_exec(g_s, &x, again) == 0);
	CHECK_EQ_STR((char *)x.out, "still here\n");
	sbx_exec_result_free(&x);
}

static void test_progress(void)
{
	NEED_SESSION();
	size_t n = 3u << 20;
	uint8_t *data = calloc(1, n);
	CHECK(data);
	static xfer x;
	x = (xfer){.monotonic = 1};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "progress.bin";
	o.data = data;
	o.len = n;
	o.on_progress = x_progress;
	o.on_done = x_done;
	o.ud = &x;
	sbx_error err;
	x.call = sbx_write_file(g_s, &o, &err);
	int rc = x.call ? it_run_until(g_loop, &x.done, 60) : -1;
	free(data);
	CHECK(rc == 0);
	CHECK_EQ_INT(x.res.error.status, SBX_OK);
	CHECK(x.monotonic);
	CHECK_EQ_INT(x.last, n);
	CHECK_EQ_INT(x.total, n);
	/* reads report progress too */
	x = (xfer){.monotonic = 1};
	sbx_file_opts ro = SBX_FILE_OPTS_INIT;
	ro.path = "progress.bin";
	ro.on_progress = x_progress;
	ro.on_done = x_done;
	ro.ud = &x;
	x.call = sbx_read_file(g_s, &ro, &err);
	CHECK(x.call);
	CHECK(it_run_until(g_loop, &x.done, 60) == 0);
	CHECK_EQ_INT(x.res.error.status, SBX_OK);
	CHECK_EQ_INT(x.res.len, n);
	CHECK(x.monotonic);
	CHECK_EQ_INT(x.last, n);
	sbx_file_result_free(&x.res);
}

/* A session that asks the agent to compress: contents are unchanged. */
/* The *_sync wrappers hand on_progress the caller's ud (they once passed
 * their own wait struct, which the caller's callback then scribbled on). */
typedef struct sync_progress {
	uint32_t magic;
	uint64_t last, calls;
} sync_progress;

static void sync_progress_cb(void *ud, uint64_t done, uint64_t total)
{
	(void)total;
	sync_progress *p = ud;
	if (p->magic != 0x5eed)
		return; /* not our struct: the count stays 0 */
	p->last = done;
	p->calls++;
}

static void test_sync_progress_ud(void)
{
	NEED_SESSION();
	size_t n = 1u << 20;
	uint8_t *data = calloc(1, n);
	CHECK(data);
	sync_progress p = {.magic = 0x5eed};
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "sync-progress.bin";
	o.data = data;
	o.len = n;
	o.on_progress = sync_progress_cb;
	o.ud = &p;
	sbx_file_result r;
	int rc = sbx_write_file_sync(g_s, &o, &r);
	free(data);
	CHECK(rc == 0);
	CHECK(p.calls > 0);
	CHECK_EQ_INT(p.last, n);
	p = (sync_progress){.magic = 0x5eed};
	sbx_file_opts ro = SBX_FILE_OPTS_INIT;
	ro.path = "sync-progress.bin";
	ro.local_path = loc("sync-progress.bin");
	ro.on_progress = sync_progress_cb;
	ro.ud = &p;
	CHECK(sbx_read_file_sync(g_s, &ro, &r) == 0);
	CHECK_EQ_INT(p.last, n);
}

/* A read into a local path gets the source's permission bits, umask-free
 * and without set-id bits. */
static void test_read_keeps_mode(void)
{
	NEED_SESSION();
	CHECK(it_write_local(wd("moded.sh"), "#!/bin/sh\n", 10) == 0);
	CHECK(chmod(wd("moded.sh"), 04751) == 0);
	mode_t old = umask(077);
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = "moded.sh";
	o.local_path = loc("moded.sh");
	sbx_file_result r;
	int rc = sbx_read_file_sync(g_s, &o, &r);
	umask(old);
	CHECK(rc == 0);
	struct stat st;
	CHECK(stat(loc("moded.sh"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0751);
}

static void test_compressed_session(void)
{
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_wd, .host = 1};
	sbx_session_opts so = {.compress = SBX_COMPRESS_ALWAYS};
	sbx_session *s = sbx_session_local(g_loop, &lo, &so, &err);
	CHECK(s);
	if (sbx_session_wait_ready(s, 30, &err) < 0) {
		sbx_session_close(s);
		CHECKF(0, "%s", err.message);
	}
	size_t n = 5u << 20;
	uint8_t *text = malloc(n), *rnd = malloc(n);
	for (size_t i = 0; i < n; i++)
		text[i] = "sandbox "[i % 8];
	it_fill_random(rnd, n, 5);
	sbx_file_result r;
	int ok = put(s, "z/text.txt", text, n, &r) == 0;
	ok = ok && put(s, "z/rnd.bin", rnd, n, &r) == 0;
	int t_ok = ok && get(s, "z/text.txt", &r) == 0 && r.len == n && memcmp(r.data, text, n) == 0;
	sbx_file_result_free(&r);
	int r_ok = ok && get(s, "z/rnd.bin", &r) == 0 && r.len == n && memcmp(r.data, rnd, n) == 0;
	sbx_file_result_free(&r);
	sbx_exec_result x;
	const char *cat[] = {"cat", "z/text.txt", NULL};
	int x_ok = it_exec(s, &x, cat) == 0 && x.out_len == n && memcmp(x.out, text, n) == 0;
	sbx_exec_result_free(&x);
	free(text);
	free(rnd);
	sbx_session_close(s);
	CHECK(ok);
	CHECK(t_ok);
	CHECK(r_ok);
	CHECK(x_ok);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	it_agent();
	it_tmpdir(g_wd, sizeof g_wd, "files");
	it_tmpdir(g_local, sizeof g_local, "local");
	g_loop = sbx_loop_new();
	g_s = it_local(g_loop, g_wd, 0);
	if (!g_s)
		printf("FAIL setup: cannot start a local agent (%s)\n", it_agent());

	IT_RUN(test_write_creates_parents);
	IT_RUN(test_write_relative_path);
	IT_RUN(test_overwrite_keeps_owner_and_mode);
	IT_RUN(test_write_replaces_symlink);
	IT_RUN(test_write_with_user);
	IT_RUN(test_write_sources);
	IT_RUN(test_write_errors);
	IT_RUN(test_cancelled_write_keeps_old);
	IT_RUN(test_closed_session_mid_write_keeps_old);
	IT_RUN(test_read_sinks);
	IT_RUN(test_read_local_path_atomic);
	IT_RUN(test_read_limit);
	IT_RUN(test_read_errors);
	IT_RUN(test_permission_errors);
	IT_RUN(test_big_round_trip);
	IT_RUN(test_binary_and_empty);
	IT_RUN(test_stat);
	IT_RUN(test_concurrent_files);
	IT_RUN(test_pipe_source_waits_on_the_loop);
	IT_RUN(test_full_sink_waits_on_the_loop);
	IT_RUN(test_full_sink_reader_gone);
	IT_RUN(test_progress);
	IT_RUN(test_sync_progress_ud);
	IT_RUN(test_read_keeps_mode);
	IT_RUN(test_compressed_session);

	sbx_session_close(g_s);
	sbx_loop_free(g_loop);
	it_rm_rf(g_wd);
	it_rm_rf(g_local);
	return g_s ? test_summary() : 1;
}
