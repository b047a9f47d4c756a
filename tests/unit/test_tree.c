/* test_tree.c — the tree stream's receiving end (common/treefs.c, what
 * libsbx runs on a download's DATA and the agent on an upload's) fed
 * hostile streams as a sandbox could craft them. Each attack would leave
 * a file outside the target (or an unbounded amount of data) if the
 * property it checks broke. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "treefs.h"

static char g_dir[64];    /* a fresh directory per test: target's parent */
static char g_victim[96]; /* outside the target: must stay empty */

static void fresh(void)
{
	char cmd[256];
	if (g_dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
		if (system(cmd) != 0)
			return;
	}
	snprintf(g_dir, sizeof g_dir, "/tmp/sbx-tree-test.XXXXXX");
	if (!mkdtemp(g_dir))
		abort();
	snprintf(g_victim, sizeof g_victim, "%s/victim", g_dir);
	mkdir(g_victim, 0755);
}

/* A stream under construction. */
typedef struct stream {
	uint8_t b[1 << 16];
	size_t n;
} stream;

static void rec(stream *s, int kind, uint32_t mode, const char *name, size_t namelen, const char *body, size_t blen)
{
	s->n += sbx_tree_header(s->b + s->n, kind, mode, blen, name, namelen);
	memcpy(s->b + s->n, body, blen);
	s->n += blen;
}

static void dir(stream *s, const char *name) { rec(s, SBX_TREE_DIR, 0755, name, strlen(name), "", 0); }
static void up(stream *s) { s->n += sbx_tree_header(s->b + s->n, SBX_TREE_UP, 0, 0, "", 0); }
static void file(stream *s, const char *name, const char *body) { rec(s, SBX_TREE_FILE, 0644, name, strlen(name), body, strlen(body)); }
static void link_(stream *s, const char *name, const char *to) { rec(s, SBX_TREE_LINK, 0777, name, strlen(name), to, strlen(to)); }

/* Applies the stream at g_dir/dl; 0 when accepted whole, else -1. */
static int apply(const stream *s, uint64_t max, treefs_apply *a)
{
	char target[128];
	snprintf(target, sizeof target, "%s/dl", g_dir);
	if (treefs_apply_open(a, target, 0, (uid_t)-1, (gid_t)-1, max) < 0)
		return -1;
	int rc = treefs_apply_feed(a, s->b, s->n);
	if (rc == 0)
		rc = treefs_apply_finish(a);
	treefs_apply_close(a);
	return rc;
}

static int victim_empty(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "[ -z \"$(ls -A %s)\" ]", g_victim);
	return system(cmd) == 0;
}

/* No temp file (.NAME.sbx-XXXXXX) anywhere under g_dir. */
static int no_temp_files(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "[ -z \"$(find %s -name '.*.sbx-*')\" ]", g_dir);
	return system(cmd) == 0;
}

static void test_honest_tree_lands(void)
{
	fresh();
	stream s = {0};
	treefs_apply a;
	dir(&s, "root");
	file(&s, "x", "hello");
	rec(&s, SBX_TREE_FILE, 0755, "run.sh", 6, "#!/bin/sh\n", 10);
	dir(&s, "empty");
	up(&s);
	link_(&s, "l", "../x");
	up(&s);
	CHECK_EQ_INT(apply(&s, 0, &a), 0);
	char p[160];
	struct stat st;
	snprintf(p, sizeof p, "%s/dl/run.sh", g_dir);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
	snprintf(p, sizeof p, "%s/dl/empty", g_dir);
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
	snprintf(p, sizeof p, "%s/dl/l", g_dir);
	CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
	CHECK(no_temp_files());
}

/* Names that would climb out of (or jump past) the target: refused. */
static void test_bad_names_refused(void)
{
	const char *names[] = {"..", ".", "a/b", "/etc", "../victim"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		fresh();
		stream s = {0};
		treefs_apply a;
		dir(&s, "root");
		rec(&s, SBX_TREE_FILE, 0644, names[i], strlen(names[i]), "pwned", 5);
		up(&s);
		CHECK_EQ_INT(apply(&s, 0, &a), -1);
		CHECK(strstr(a.msg, "malformed"));
		CHECK(victim_empty());
	}
	fresh();
	stream s = {0};
	treefs_apply a;
	dir(&s, "root");
	rec(&s, SBX_TREE_FILE, 0644, "ok\0../x", 7, "pwned", 5); /* a NUL inside */
	up(&s);
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(no_temp_files());
}

/* A tree stream that says "../" through a directory's end: more 'u' than 'd'. */
static void test_climb_by_up_refused(void)
{
	fresh();
	stream s = {0};
	treefs_apply a;
	dir(&s, "root");
	up(&s);
	up(&s);
	file(&s, "victim", "pwned");
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(victim_empty());
}

/* A symlink in the stream, then a directory and a file of the same name:
 * the second entry must not go through the link to /victim. */
static void test_symlink_then_dir_not_followed(void)
{
	fresh();
	stream s = {0};
	treefs_apply a;
	dir(&s, "root");
	link_(&s, "esc", g_victim);
	dir(&s, "esc");
	file(&s, "f", "pwned");
	up(&s);
	up(&s);
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(victim_empty());
	/* the same through ".." */
	fresh();
	stream t = {0};
	dir(&t, "root");
	link_(&t, "up", "..");
	dir(&t, "up");
	file(&t, "escaped", "pwned");
	up(&t);
	up(&t);
	CHECK_EQ_INT(apply(&t, 0, &a), -1);
	char p[160];
	snprintf(p, sizeof p, "%s/escaped", g_dir);
	CHECK(access(p, F_OK) < 0);
}

/* A symlink then a file of its name: the file must not be written
 * through the link (it is not even replaced: only regular files are). */
static void test_symlink_then_file_not_followed(void)
{
	fresh();
	stream s = {0};
	treefs_apply a;
	char to[160];
	snprintf(to, sizeof to, "%s/target", g_victim);
	dir(&s, "root");
	link_(&s, "f", to);
	file(&s, "f", "pwned");
	up(&s);
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(strstr(a.msg, "symlink"));
	CHECK(victim_empty());
	CHECK(no_temp_files());
}

/* A device, a symlink or a directory at the target is never replaced. */
static void test_target_kinds_kept(void)
{
	fresh();
	char p[160];
	snprintf(p, sizeof p, "%s/dl", g_dir);
	CHECK(symlink("/dev/null", p) == 0);
	stream s = {0};
	treefs_apply a;
	file(&s, "x", "data");
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	struct stat st;
	CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
	CHECK(no_temp_files());
}

/* An endless stream (of empty directories, of bytes) stops at max. */
static void test_endless_stream_bounded(void)
{
	fresh();
	treefs_apply a;
	char target[128];
	snprintf(target, sizeof target, "%s/dl", g_dir);
	CHECK_EQ_INT(treefs_apply_open(&a, target, 0, (uid_t)-1, (gid_t)-1, 100000), 0);
	stream s = {0};
	dir(&s, "root");
	int rc = treefs_apply_feed(&a, s.b, s.n);
	uint64_t fed = s.n;
	for (int i = 0; rc == 0 && i < 1000000; i++) {
		stream e = {0};
		char name[32];
		snprintf(name, sizeof name, "d%d", i);
		dir(&e, name);
		up(&e);
		fed += e.n;
		rc = treefs_apply_feed(&a, e.b, e.n);
	}
	treefs_apply_close(&a);
	CHECK_EQ_INT(rc, -1);
	CHECK_EQ_INT(a.err, EFBIG);
	CHECK(fed <= 100000 + 64);
}

/* Directories nested past the depth bound are refused (fd exhaustion). */
static void test_deep_nesting_refused(void)
{
	fresh();
	stream s = {0};
	treefs_apply a;
	for (int i = 0; i < SBX_TREE_DEPTH_MAX + 2; i++)
		dir(&s, "d");
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(strstr(a.msg, "deeper"));
}

/* A cut-off stream leaves no temp file; the target file is unchanged. */
static void test_truncated_stream_no_temp(void)
{
	fresh();
	char p[160];
	snprintf(p, sizeof p, "%s/dl", g_dir);
	FILE *f = fopen(p, "w");
	CHECK(f);
	fputs("old", f);
	fclose(f);
	stream s = {0};
	treefs_apply a;
	file(&s, "x", "new contents");
	s.n -= 4;
	CHECK_EQ_INT(apply(&s, 0, &a), -1);
	CHECK(no_temp_files());
	char buf[8] = {0};
	int fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 3);
	close(fd);
	CHECK_EQ_STR(buf, "old");
}

int main(void)
{
	RUN(test_honest_tree_lands);
	RUN(test_bad_names_refused);
	RUN(test_climb_by_up_refused);
	RUN(test_symlink_then_dir_not_followed);
	RUN(test_symlink_then_file_not_followed);
	RUN(test_target_kinds_kept);
	RUN(test_endless_stream_bounded);
	RUN(test_deep_nesting_refused);
	RUN(test_truncated_stream_no_temp);
	if (g_dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
		if (system(cmd) != 0)
			return 1;
	}
	return test_summary();
}
