/* test_fsops.c — agent/fsops.c: parent directories, atomic writes, opening
 * for reading, stat and path resolution, in a scratch directory. Ownership
 * and permission checks need root (the agent's usual identity). */
#include "test.h"
#include "fsops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];
static int g_root;

/* g_dir + "/" + name, in one of four rotating buffers. */
static const char *at(const char *name)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
	return b;
}

static int put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* The whole of a small file, or "" when unreadable. */
static const char *contents(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return buf;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Number of entries in dir whose name holds ".sbx-". */
static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".sbx-"))
			n++;
	closedir(d);
	return n;
}

static int write_atomic(const char *path, const char *text, mode_t mode,
			uid_t uid, gid_t gid)
{
	char tmp[512];
	int fd = fsops_open_temp(path, tmp, sizeof tmp);
	size_t len = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		fsops_abort_temp(fd, tmp);
		return -1;
	}
	return fsops_commit_temp(fd, tmp, path, mode, uid, gid, 1);
}

/* Run fn in a child that has become nobody (65534); its exit status. */
static int as_nobody(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		_exit(fn());
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_make_parents_nested(void)
{
	struct stat st;

	CHECK_EQ_INT(fsops_make_parents(at("mp/a/b/c/file"), (uid_t)-1,
					(gid_t)-1, 1), 0);
	CHECK(stat(at("mp/a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ_INT(st.st_uid, getuid());
	CHECK(access(at("mp/a/b/c/file"), F_OK) < 0);

	/* again: all there already */
	CHECK_EQ_INT(fsops_make_parents(at("mp/a/b/c/file"), (uid_t)-1,
					(gid_t)-1, 0), 0);
	/* doubled and trailing slashes, "." */
	CHECK_EQ_INT(fsops_make_parents(at("mp//d/./e///f/"), (uid_t)-1,
					(gid_t)-1, 0), 0);
	CHECK(stat(at("mp/d/e"), &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(access(at("mp/d/e/f"), F_OK) < 0);
	/* no parent to make */
	CHECK_EQ_INT(fsops_make_parents("file", (uid_t)-1, (gid_t)-1, 0), 0);
	CHECK_EQ_INT(fsops_make_parents("/file", (uid_t)-1, (gid_t)-1, 0), 0);
	/* through a symlink to a directory */
	CHECK(symlink(at("mp/a"), at("mp/link")) == 0);
	CHECK_EQ_INT(fsops_make_parents(at("mp/link/x/y"), (uid_t)-1,
					(gid_t)-1, 0), 0);
	CHECK(stat(at("mp/a/x"), &st) == 0 && S_ISDIR(st.st_mode));
}

static void test_make_parents_owner(void)
{
	struct stat st;

	if (!g_root) {
		printf("# skip test_make_parents_owner (needs root)\n");
		return;
	}
	CHECK(mkdir(at("own"), 0755) == 0);
	CHECK_EQ_INT(fsops_make_parents(at("own/x/y/file"), 1234, 1235, 0), 0);
	/* made here: chowned; there before: untouched */
	CHECK(stat(at("own"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 0);
	CHECK(stat(at("own/x"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);
	CHECK_EQ_INT(st.st_gid, 1235);
	CHECK(stat(at("own/x/y"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);
	CHECK_EQ_INT(st.st_gid, 1235);
}

static void test_make_parents_notdir(void)
{
	CHECK(mkdir(at("nd"), 0755) == 0);
	CHECK(put_file(at("nd/f"), "x") == 0);
	errno = 0;
	CHECK_EQ_INT(fsops_make_parents(at("nd/f/g/h"), (uid_t)-1,
					(gid_t)-1, 0), -1);
	CHECK_EQ_INT(errno, ENOTDIR);
	errno = 0;
	CHECK_EQ_INT(fsops_make_parents(at("nd/f/g"), (uid_t)-1, (gid_t)-1, 0),
		     -1);
	CHECK_EQ_INT(errno, ENOTDIR);
	/* a dangling symlink is not a directory either */
	CHECK(symlink(at("nd/nowhere"), at("nd/dangling")) == 0);
	CHECK_EQ_INT(fsops_make_parents(at("nd/dangling/g"), (uid_t)-1,
					(gid_t)-1, 0), -1);
}

static void test_temp_commit_new(void)
{
	char tmp[512], prefix[512];
	struct stat st;
	int fd;

	CHECK(mkdir(at("w"), 0755) == 0);
	fd = fsops_open_temp(at("w/new.txt"), tmp, sizeof tmp);
	CHECK(fd >= 0);
	snprintf(prefix, sizeof prefix, "%s/.new.txt.sbx-", at("w"));
	CHECK(strncmp(tmp, prefix, strlen(prefix)) == 0);
	CHECK_EQ_INT(strlen(tmp), strlen(prefix) + 6);
	CHECK(fstat(fd, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0600);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_EQ_INT(write(fd, "hello", 5), 5);
	/* nothing visible at the target until the commit */
	CHECK(access(at("w/new.txt"), F_OK) < 0);
	CHECK_EQ_INT(fsops_commit_temp(fd, tmp, at("w/new.txt"), (mode_t)-1,
				       (uid_t)-1, (gid_t)-1, 1), 0);
	CHECK_EQ_STR(contents(at("w/new.txt")), "hello");
	CHECK(stat(at("w/new.txt"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0644);
	CHECK_EQ_INT(st.st_uid, getuid());
	CHECK_EQ_INT(count_temps(at("w")), 0);

	/* an explicit mode */
	CHECK_EQ_INT(write_atomic(at("w/exec.sh"), "#!/bin/sh\n", 0755,
				  (uid_t)-1, (gid_t)-1), 0);
	CHECK(stat(at("w/exec.sh"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0755);
	CHECK_EQ_INT(count_temps(at("w")), 0);
}

static void test_temp_commit_new_owner(void)
{
	struct stat st;

	if (!g_root) {
		printf("# skip test_temp_commit_new_owner (needs root)\n");
		return;
	}
	CHECK(mkdir(at("wn"), 0755) == 0);
	CHECK_EQ_INT(write_atomic(at("wn/f"), "x", (mode_t)-1, 1234, 1235),
		     0);
	CHECK(stat(at("wn/f"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);
	CHECK_EQ_INT(st.st_gid, 1235);
	CHECK_EQ_INT(st.st_mode & 07777, 0644);
}

static void test_temp_commit_keeps_owner_mode(void)
{
	struct stat st;

	if (!g_root) {
		printf("# skip test_temp_commit_keeps_owner_mode (needs root)\n");
		return;
	}
	CHECK(mkdir(at("k"), 0755) == 0);
	CHECK(put_file(at("k/f"), "old") == 0);
	CHECK(chown(at("k/f"), 1234, 1235) == 0);
	CHECK(chmod(at("k/f"), 0600) == 0);

	/* root writes; the file keeps its owner and mode */
	CHECK_EQ_INT(write_atomic(at("k/f"), "new", (mode_t)-1, (uid_t)-1,
				  (gid_t)-1), 0);
	CHECK_EQ_STR(contents(at("k/f")), "new");
	CHECK(stat(at("k/f"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);
	CHECK_EQ_INT(st.st_gid, 1235);
	CHECK_EQ_INT(st.st_mode & 07777, 0600);

	/* a given uid does not override an existing owner */
	CHECK_EQ_INT(write_atomic(at("k/f"), "newer", (mode_t)-1, 42, 42), 0);
	CHECK(stat(at("k/f"), &st) == 0);
	CHECK_EQ_INT(st.st_uid, 1234);

	/* an explicit mode wins, set-id bits survive the chown */
	CHECK_EQ_INT(write_atomic(at("k/f"), "x", 04750, (uid_t)-1,
				  (gid_t)-1), 0);
	CHECK(stat(at("k/f"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 04750);
	CHECK_EQ_INT(st.st_uid, 1234);
	/* and an existing set-id mode is kept too */
	CHECK_EQ_INT(write_atomic(at("k/f"), "y", (mode_t)-1, (uid_t)-1,
				  (gid_t)-1), 0);
	CHECK(stat(at("k/f"), &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 04750);
	CHECK_EQ_INT(count_temps(at("k")), 0);
}

/* As nobody: replace a file nobody may write but does not own. Keeping the
 * owner is not permitted, so the write must still succeed, owned by
 * nobody. */
static int replace_foreign_file(void)
{
	struct stat st;

	if (write_atomic(at("kf/d/f"), "mine", (mode_t)-1, (uid_t)-1,
			 (gid_t)-1) < 0) {
		perror("replace_foreign_file");
		return 1;
	}
	if (stat(at("kf/d/f"), &st) < 0 || st.st_uid != 65534)
		return 2;
	if ((st.st_mode & 07777) != 0666)
		return 3;
	return 0;
}

static void test_temp_commit_owner_not_permitted(void)
{
	if (!g_root) {
		printf("# skip test_temp_commit_owner_not_permitted (needs root)\n");
		return;
	}
	CHECK(mkdir(at("kf"), 0755) == 0);
	CHECK(mkdir(at("kf/d"), 0777) == 0);
	CHECK(chmod(at("kf/d"), 0777) == 0); /* past the umask */
	CHECK(put_file(at("kf/d/f"), "theirs") == 0);
	CHECK(chown(at("kf/d/f"), 1234, 1234) == 0);
	CHECK(chmod(at("kf/d/f"), 0666) == 0);
	CHECK_EQ_INT(as_nobody(replace_foreign_file), 0);
	CHECK_EQ_STR(contents(at("kf/d/f")), "mine");
}

static void test_temp_errors(void)
{
	char tmp[512], small[16];
	int fd;

	CHECK(mkdir(at("te"), 0755) == 0);
	CHECK(mkdir(at("te/dir"), 0755) == 0);
	errno = 0;
	CHECK_EQ_INT(fsops_open_temp(at("te/dir"), tmp, sizeof tmp), -1);
	CHECK_EQ_INT(errno, EISDIR);
	CHECK_EQ_INT(fsops_open_temp(at("te/nodir/"), tmp, sizeof tmp), -1);
	CHECK_EQ_INT(errno, EISDIR);
	errno = 0;
	CHECK_EQ_INT(fsops_open_temp(at("te/missing/f"), tmp, sizeof tmp), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK_EQ_STR(tmp, "");
	errno = 0;
	CHECK_EQ_INT(fsops_open_temp(at("te/f"), small, sizeof small), -1);
	CHECK_EQ_INT(errno, ENAMETOOLONG);
	CHECK_EQ_INT(fsops_open_temp("", tmp, sizeof tmp), -1);
	CHECK_EQ_INT(errno, ENOENT);

	/* a target that became a directory meanwhile: the temp goes away */
	fd = fsops_open_temp(at("te/late"), tmp, sizeof tmp);
	CHECK(fd >= 0);
	CHECK(mkdir(at("te/late"), 0755) == 0);
	errno = 0;
	CHECK_EQ_INT(fsops_commit_temp(fd, tmp, at("te/late"), (mode_t)-1,
				       (uid_t)-1, (gid_t)-1, 0), -1);
	CHECK_EQ_INT(errno, EISDIR);
	CHECK(access(tmp, F_OK) < 0);
	CHECK_EQ_INT(count_temps(at("te")), 0);
}

static void test_temp_long_name(void)
{
	char name[300], path[1024], tmp[1024];
	int fd;

	/* a 250-byte name: the temp name is cut to stay under NAME_MAX */
	CHECK(mkdir(at("ln"), 0755) == 0);
	memset(name, 'n', 250);
	name[250] = '\0';
	snprintf(path, sizeof path, "%s/%s", at("ln"), name);
	fd = fsops_open_temp(path, tmp, sizeof tmp);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "z", 1), 1);
	CHECK_EQ_INT(fsops_commit_temp(fd, tmp, path, (mode_t)-1, (uid_t)-1,
				       (gid_t)-1, 0), 0);
	CHECK_EQ_STR(contents(path), "z");
	CHECK_EQ_INT(count_temps(at("ln")), 0);
}

static void test_temp_relative(void)
{
	char cwd[512], tmp[512];
	int fd;

	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK(mkdir(at("rel"), 0755) == 0);
	CHECK(chdir(at("rel")) == 0);
	fd = fsops_open_temp("plain", tmp, sizeof tmp);
	if (fd >= 0) {
		CHECK(strncmp(tmp, ".plain.sbx-", 11) == 0);
		fsops_commit_temp(fd, tmp, "plain", (mode_t)-1, (uid_t)-1,
				  (gid_t)-1, 1);
	}
	CHECK(chdir(cwd) == 0);
	CHECK(fd >= 0);
	CHECK(access(at("rel/plain"), F_OK) == 0);
}

static void test_abort(void)
{
	char tmp[512];
	int fd;

	CHECK(mkdir(at("ab"), 0755) == 0);
	CHECK(put_file(at("ab/f"), "keep") == 0);
	fd = fsops_open_temp(at("ab/f"), tmp, sizeof tmp);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "lost", 4), 4);
	CHECK(access(tmp, F_OK) == 0);
	errno = EIO;
	fsops_abort_temp(fd, tmp);
	CHECK_EQ_INT(errno, EIO);
	CHECK(access(tmp, F_OK) < 0);
	CHECK(fcntl(fd, F_GETFD) < 0);
	CHECK_EQ_STR(contents(at("ab/f")), "keep");
	CHECK_EQ_INT(count_temps(at("ab")), 0);
	/* nothing opened: harmless */
	fsops_abort_temp(-1, "");
	fsops_abort_temp(-1, NULL);
}

static void test_open_read(void)
{
	uint64_t size = 99;
	int fd;
	char buf[16];

	CHECK(mkdir(at("r"), 0755) == 0);
	CHECK(put_file(at("r/f"), "twelve bytes") == 0);
	fd = fsops_open_read(at("r/f"), &size);
	CHECK(fd >= 0);
	CHECK_EQ_INT(size, 12);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_EQ_INT(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	CHECK_EQ_INT(read(fd, buf, sizeof buf), 12);
	close(fd);

	CHECK(put_file(at("r/empty"), "") == 0);
	fd = fsops_open_read(at("r/empty"), &size);
	CHECK(fd >= 0);
	CHECK_EQ_INT(size, 0);
	close(fd);

	errno = 0;
	CHECK_EQ_INT(fsops_open_read(at("r"), &size), -1);
	CHECK_EQ_INT(errno, EISDIR);
	errno = 0;
	CHECK_EQ_INT(fsops_open_read(at("r/missing"), &size), -1);
	CHECK_EQ_INT(errno, ENOENT);
	errno = 0;
	CHECK_EQ_INT(fsops_open_read(at("r/f/x"), &size), -1);
	CHECK_EQ_INT(errno, ENOTDIR);

	/* a FIFO with no writer does not hang the open */
	CHECK(mkfifo(at("r/fifo"), 0644) == 0);
	fd = fsops_open_read(at("r/fifo"), &size);
	CHECK(fd >= 0);
	CHECK_EQ_INT(size, 0);
	close(fd);
}

static int read_unreadable(void)
{
	uint64_t size;

	errno = 0;
	if (fsops_open_read(at("ur/secret"), &size) != -1)
		return 1;
	if (errno != EACCES)
		return 2;
	return 0;
}

static void test_open_read_unreadable(void)
{
	if (!g_root) {
		printf("# skip test_open_read_unreadable (needs root)\n");
		return;
	}
	CHECK(mkdir(at("ur"), 0755) == 0);
	CHECK(put_file(at("ur/secret"), "s") == 0);
	CHECK(chmod(at("ur/secret"), 0600) == 0);
	CHECK_EQ_INT(as_nobody(read_unreadable), 0);
}

static void test_stat(void)
{
	struct timespec times[2] = {
		{ 1700000000, 123456789 },
		{ 1700000000, 123456789 },
	};
	fsops_stat s;

	CHECK(mkdir(at("st"), 0755) == 0);
	CHECK(put_file(at("st/f"), "12345") == 0);
	CHECK(chmod(at("st/f"), 0640) == 0);
	CHECK(utimensat(AT_FDCWD, at("st/f"), times, 0) == 0);
	if (g_root)
		CHECK(chown(at("st/f"), 1234, 5678) == 0);
	CHECK(symlink("f", at("st/link")) == 0);
	CHECK(symlink("nowhere", at("st/dangling")) == 0);

	CHECK_EQ_INT(fsops_stat_path(at("st/f"), 1, &s), 0);
	CHECK_EQ_INT(s.exists, 1);
	CHECK(S_ISREG(s.mode));
	CHECK_EQ_INT(s.mode & 07777, 0640);
	CHECK_EQ_INT(s.size, 5);
	CHECK_EQ_INT(s.mtime_ns, 1700000000123456789LL);
	CHECK_EQ_INT(s.is_dir, 0);
	CHECK_EQ_INT(s.is_link, 0);
	if (g_root) {
		CHECK_EQ_INT(s.uid, 1234);
		CHECK_EQ_INT(s.gid, 5678);
	}

	CHECK_EQ_INT(fsops_stat_path(at("st"), 1, &s), 0);
	CHECK_EQ_INT(s.exists, 1);
	CHECK_EQ_INT(s.is_dir, 1);
	CHECK(S_ISDIR(s.mode));

	/* a symlink: followed, or itself */
	CHECK_EQ_INT(fsops_stat_path(at("st/link"), 1, &s), 0);
	CHECK_EQ_INT(s.is_link, 0);
	CHECK_EQ_INT(s.size, 5);
	CHECK_EQ_INT(fsops_stat_path(at("st/link"), 0, &s), 0);
	CHECK_EQ_INT(s.exists, 1);
	CHECK_EQ_INT(s.is_link, 1);
	CHECK(S_ISLNK(s.mode));
	CHECK_EQ_INT(s.size, 1); /* strlen("f") */

	/* missing things exist = 0, not an error */
	s.exists = 7;
	CHECK_EQ_INT(fsops_stat_path(at("st/missing"), 1, &s), 0);
	CHECK_EQ_INT(s.exists, 0);
	CHECK_EQ_INT(fsops_stat_path(at("st/dangling"), 1, &s), 0);
	CHECK_EQ_INT(s.exists, 0);
	CHECK_EQ_INT(fsops_stat_path(at("st/dangling"), 0, &s), 0);
	CHECK_EQ_INT(s.exists, 1);
	CHECK_EQ_INT(fsops_stat_path(at("st/f/x"), 1, &s), 0);
	CHECK_EQ_INT(s.exists, 0);
}

static void test_stat_error(void)
{
	char longpath[PATH_MAX + 16];
	fsops_stat s;

	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	errno = 0;
	CHECK_EQ_INT(fsops_stat_path(longpath, 1, &s), -1);
	CHECK_EQ_INT(errno, ENAMETOOLONG);
	CHECK_EQ_INT(s.exists, 0);
}

/* fsops_resolve(base, path) == want */
static int resolves(const char *base, const char *path, const char *want)
{
	char out[256];

	if (fsops_resolve(base, path, out, sizeof out) < 0)
		return 0;
	if (strcmp(out, want) != 0) {
		printf("# resolve(%s, %s) = %s, want %s\n",
		       base ? base : "NULL", path, out, want);
		return 0;
	}
	return 1;
}

static void test_resolve(void)
{
	char out[16];

	/* absolute: base unused */
	CHECK(resolves("/work", "/etc/passwd", "/etc/passwd"));
	CHECK(resolves(NULL, "/etc/passwd", "/etc/passwd"));
	CHECK(resolves("/work", "/", "/"));
	CHECK(resolves("/work", "//etc//./passwd/", "/etc/passwd"));
	/* relative */
	CHECK(resolves("/work", "a/b", "/work/a/b"));
	CHECK(resolves("/work/", "./a//b/", "/work/a/b"));
	CHECK(resolves("/", "a", "/a"));
	CHECK(resolves("/work", "", "/work"));
	CHECK(resolves("/work", ".", "/work"));
	CHECK(resolves("/work", ".hidden", "/work/.hidden"));
	CHECK(resolves("/work", "..dots", "/work/..dots"));
	/* ".." */
	CHECK(resolves("/work/x", "../y", "/work/y"));
	CHECK(resolves("/work/x", "..", "/work"));
	CHECK(resolves("/work", "a/../../b", "/b"));
	CHECK(resolves("/", "../../a", "/a"));
	CHECK(resolves("/work", "/a/b/../../..", "/"));
	CHECK(resolves("/a/../b", "c", "/b/c"));

	/* relative path needs an absolute base */
	errno = 0;
	CHECK_EQ_INT(fsops_resolve("work", "a", out, sizeof out), -1);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK_EQ_INT(fsops_resolve(NULL, "a", out, sizeof out), -1);
	CHECK_EQ_INT(errno, EINVAL);

	/* length: 15 characters fit in 16 bytes, 16 do not */
	CHECK_EQ_INT(fsops_resolve("/0123456789", "abc", out, sizeof out), 0);
	CHECK_EQ_STR(out, "/0123456789/abc");
	errno = 0;
	CHECK_EQ_INT(fsops_resolve("/0123456789", "abcd", out, sizeof out),
		     -1);
	CHECK_EQ_INT(errno, ENAMETOOLONG);
	CHECK_EQ_INT(fsops_resolve("/", "/", out, 1), -1);
	CHECK_EQ_INT(errno, ENAMETOOLONG);
	CHECK_EQ_INT(fsops_resolve("/", "/", out, 2), 0);
	CHECK_EQ_STR(out, "/");
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	snprintf(g_dir, sizeof g_dir, "/tmp/sbx-fsops-XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 2;
	}
	chmod(g_dir, 0755); /* the as_nobody tests walk into it */
	g_root = geteuid() == 0;

	RUN(test_make_parents_nested);
	RUN(test_make_parents_owner);
	RUN(test_make_parents_notdir);
	RUN(test_temp_commit_new);
	RUN(test_temp_commit_new_owner);
	RUN(test_temp_commit_keeps_owner_mode);
	RUN(test_temp_commit_owner_not_permitted);
	RUN(test_temp_errors);
	RUN(test_temp_long_name);
	RUN(test_temp_relative);
	RUN(test_abort);
	RUN(test_open_read);
	RUN(test_open_read_unreadable);
	RUN(test_stat);
	RUN(test_stat_error);
	RUN(test_resolve);

	nftw(g_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	return test_summary();
}
