/* test_users.c — agent/users.c: user specs resolved from fixture passwd and
 * group files, and the identity switch (in a forked child; needs root). */
#include "test.h"
#include "users.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];
static char g_passwd[128];
static char g_group[128];
static char g_many[128]; /* a group file putting "alice" in 70 groups */

/* The start of the passwd fixture: good lines among every kind of bad one. */
static const char passwd_head[] =
	"# the users\n"
	"root:x:0:0:root:/root:/bin/bash\n"
	"\n"
	"   \n"
	"alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n"
	"bob:x:1001:100::/home/bob:\n"
	"malformed line without colons\n"
	"short:x:1002\n"
	"baduid:x:abc:100::/home/x:/bin/sh\n"
	"hugeuid:x:4294967296:100::/home/x:/bin/sh\n"
	"extra:x:1010:1010::/home/extra:/bin/sh:more\n"
	":x:1011:1011::/home/noname:/bin/sh\n"
	"nul\0x:x:1012:1012::/home/nul:/bin/sh\n"
	"crlf:x:1013:1013::/home/crlf:/bin/sh\r\n"
	"#carol:x:9:9::/nope:/bin/sh\n";

/* A line of n bytes of junk with colons in it, then a newline. */
static void put_junk_line(FILE *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fputc(i % 7 == 0 ? ':' : 'x', f);
	fputc('\n', f);
}

static void make_fixtures(void)
{
	FILE *f;
	int i;

	snprintf(g_dir, sizeof g_dir, "/tmp/sbx-users-XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		exit(2);
	}
	chmod(g_dir, 0755); /* test_switch_unprivileged reads it as nobody */
	snprintf(g_passwd, sizeof g_passwd, "%s/passwd", g_dir);
	snprintf(g_group, sizeof g_group, "%s/group", g_dir);
	snprintf(g_many, sizeof g_many, "%s/group-many", g_dir);

	f = fopen(g_passwd, "w");
	if (!f)
		exit(2);
	/* fwrite, not fputs: one line holds a NUL byte */
	fwrite(passwd_head, 1, sizeof passwd_head - 1, f);
	put_junk_line(f, 200000);
	fputs("carol:x:1003:1003::/home/carol:/bin/zsh\n", f);
	fputs("nohome:x:1004:1004:::\n", f);
	fputs("nohome2:x:1005:1005:::/bin/sh\n", f);
	fputs("longhome:x:1006:1006::/", f);
	for (i = 0; i < 400; i++)
		fputc('h', f);
	fputs(":/bin/sh\n", f);
	fputs("alice:x:2000:2000:second alice:/nope:/bin/sh\n", f);
	fputs("dave:x:1007:1007::/home/dave:/bin/sh", f); /* no newline */
	fclose(f);

	f = fopen(g_group, "w");
	if (!f)
		exit(2);
	fputs("# groups\n"
	      "root:x:0:\n"
	      "\n"
	      "users:x:100:alice,bob\n"
	      "alice:x:1000:\n"
	      "staff:x:50:carol,alice\n"
	      "wheel:x:10:carol\n"
	      "bad group line\n"
	      "badgid:x:xyz:alice\n"
	      "nomembers:x:60\n"
	      "prefix:x:61:alicex,xalice,ali\n"
	      "crlf:x:62:carol\r\n",
	      f);
	put_junk_line(f, 100000);
	fputs("big:x:3000:", f);
	for (i = 0; i < 20000; i++)
		fprintf(f, "member%d,", i);
	fputs("carol\n", f);
	fputs("nonl:x:3001:dave", f); /* no newline */
	fclose(f);

	f = fopen(g_many, "w");
	if (!f)
		exit(2);
	for (i = 0; i < 70; i++)
		fprintf(f, "g%d:x:%d:alice\n", i, 5000 + i);
	fclose(f);
}

static int has_group(const agent_user *u, gid_t g)
{
	int i;

	for (i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return 1;
	return 0;
}

static int lookup(const char *spec, agent_user *u, char *err, size_t len)
{
	return agent_user_lookup(spec, g_passwd, g_group, u, err, len);
}

static void test_name(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("alice", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1000);
	CHECK_EQ_INT(u.gid, 1000);
	CHECK_EQ_STR(u.name, "alice");
	CHECK_EQ_STR(u.home, "/home/alice");
	CHECK_EQ_STR(u.shell, "/bin/sh");
	CHECK_EQ_STR(err, "");
	/* primary first, then /etc/group order; the first alice line wins */
	CHECK_EQ_INT(u.ngroups, 3);
	CHECK_EQ_INT(u.groups[0], 1000);
	CHECK_EQ_INT(u.groups[1], 100);
	CHECK_EQ_INT(u.groups[2], 50);

	CHECK_EQ_INT(lookup("root", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 0);
	CHECK_EQ_STR(u.home, "/root");
	CHECK_EQ_STR(u.shell, "/bin/bash");
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 0);
}

static void test_uid(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("1000", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.name, "alice");
	CHECK_EQ_INT(u.uid, 1000);
	CHECK_EQ_INT(u.gid, 1000);
	CHECK_EQ_STR(u.home, "/home/alice");
	CHECK_EQ_INT(u.ngroups, 3);

	CHECK_EQ_INT(lookup("0", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.name, "root");
}

static void test_uid_not_in_passwd(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("4242", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 4242);
	CHECK_EQ_INT(u.gid, 0);
	CHECK_EQ_STR(u.name, "4242");
	CHECK_EQ_STR(u.home, "/");
	CHECK_EQ_STR(u.shell, "/bin/sh");
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 0);

	/* the largest uid there is */
	CHECK_EQ_INT(lookup("4294967294", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 4294967294u);
}

static void test_name_group(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("alice:staff", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1000);
	CHECK_EQ_INT(u.gid, 50);
	CHECK_EQ_STR(u.name, "alice");
	CHECK_EQ_STR(u.home, "/home/alice");
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 50);

	/* a numeric group need not exist */
	CHECK_EQ_INT(lookup("alice:777", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.gid, 777);
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 777);

	CHECK_EQ_INT(lookup("alice:nomembers", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.gid, 60);
}

static void test_uid_gid(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("4242:4343", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 4242);
	CHECK_EQ_INT(u.gid, 4343);
	CHECK_EQ_STR(u.name, "4242");
	CHECK_EQ_STR(u.home, "/");
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 4343);

	/* a known uid keeps its name and home */
	CHECK_EQ_INT(lookup("1000:50", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.name, "alice");
	CHECK_EQ_STR(u.home, "/home/alice");
	CHECK_EQ_INT(u.gid, 50);
	CHECK_EQ_INT(u.ngroups, 1);

	CHECK_EQ_INT(lookup("4242:staff", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 4242);
	CHECK_EQ_INT(u.gid, 50);
}

static void test_unknown_user(void)
{
	agent_user u;
	char err[256];

	errno = 0;
	CHECK_EQ_INT(lookup("nobody2", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "unknown user 'nobody2'") != NULL);
	CHECK(strstr(err, g_passwd) != NULL);

	errno = 0;
	CHECK_EQ_INT(lookup("nobody2:staff", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "unknown user 'nobody2'") != NULL);

	/* not a valid uid, so a name, and there is no such name */
	errno = 0;
	CHECK_EQ_INT(lookup("4294967295", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK_EQ_INT(lookup("99999999999", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("-1", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("ALICE", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("alic", &u, err, sizeof err), -1);
}

static void test_unknown_group(void)
{
	agent_user u;
	char err[256];

	errno = 0;
	CHECK_EQ_INT(lookup("alice:nogroup", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "unknown group 'nogroup'") != NULL);
	CHECK(strstr(err, g_group) != NULL);

	/* a line that failed to parse names no group */
	CHECK_EQ_INT(lookup("alice:badgid", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK_EQ_INT(lookup("alice:bad group line", &u, err, sizeof err), -1);
}

static void test_supplementary_groups(void)
{
	agent_user u;
	char err[256];

	/* carol: listed in staff, wheel, crlf (CRLF line) and at the end of
	 * a 150 KB member list */
	CHECK_EQ_INT(lookup("carol", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.ngroups, 5);
	CHECK_EQ_INT(u.groups[0], 1003);
	CHECK(has_group(&u, 50));
	CHECK(has_group(&u, 10));
	CHECK(has_group(&u, 62));
	CHECK(has_group(&u, 3000));

	/* bob: primary gid 100 and listed in users (gid 100): no duplicate */
	CHECK_EQ_INT(lookup("bob", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 100);

	/* member names match whole: alicex, xalice, ali are not alice */
	CHECK_EQ_INT(lookup("alice", &u, err, sizeof err), 0);
	CHECK(!has_group(&u, 61));
}

static void test_too_many_groups(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(agent_user_lookup("alice", g_passwd, g_many, &u, err,
				       sizeof err), 0);
	CHECK_EQ_INT(u.ngroups, AGENT_USER_MAX_GROUPS);
	CHECK_EQ_INT(u.groups[0], 1000);
	CHECK_EQ_INT(u.groups[1], 5000);
	CHECK_EQ_INT(u.groups[AGENT_USER_MAX_GROUPS - 1],
		     5000 + AGENT_USER_MAX_GROUPS - 2);
}

static void test_malformed_lines(void)
{
	agent_user u;
	char err[256];

	CHECK_EQ_INT(lookup("short", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("baduid", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("hugeuid", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("extra", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("nul", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("malformed line without colons", &u, err,
			    sizeof err), -1);
	CHECK_EQ_INT(lookup("# the users", &u, err, sizeof err), -1);
	CHECK_EQ_INT(lookup("#carol", &u, err, sizeof err), -1);
	/* uid 1011 has an empty name: skipped, so 1011 is just a number */
	CHECK_EQ_INT(lookup("1011", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.name, "1011");
	CHECK_EQ_STR(u.home, "/");

	/* CRLF line endings are tolerated */
	CHECK_EQ_INT(lookup("crlf", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.shell, "/bin/sh");

	/* empty home and shell get defaults */
	CHECK_EQ_INT(lookup("nohome", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.home, "/");
	CHECK_EQ_STR(u.shell, "/bin/sh");
	CHECK_EQ_INT(lookup("nohome2", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1005);
	CHECK_EQ_STR(u.home, "/");
	CHECK_EQ_INT(lookup("bob", &u, err, sizeof err), 0);
	CHECK_EQ_STR(u.shell, "/bin/sh");

	/* a home that does not fit is an error, not a truncated path */
	errno = 0;
	CHECK_EQ_INT(lookup("longhome", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENAMETOOLONG);
	CHECK(strstr(err, "longhome") != NULL);
}

static void test_long_lines(void)
{
	agent_user u;
	char err[256];

	/* carol comes after a 200 KB junk line; dave is the last line and has
	 * no newline, and so has his group */
	CHECK_EQ_INT(lookup("carol", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1003);
	CHECK_EQ_STR(u.shell, "/bin/zsh");
	CHECK_EQ_INT(lookup("dave", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1007);
	CHECK_EQ_STR(u.shell, "/bin/sh");
	CHECK_EQ_INT(u.ngroups, 2);
	CHECK_EQ_INT(u.groups[1], 3001);
	CHECK_EQ_INT(lookup("dave:big", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.gid, 3000);
	CHECK_EQ_INT(lookup("dave:nonl", &u, err, sizeof err), 0);
	CHECK_EQ_INT(u.gid, 3001);
}

static void test_invalid_spec(void)
{
	agent_user u;
	char err[256], longname[600];

	errno = 0;
	CHECK_EQ_INT(lookup("", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK(strstr(err, "invalid user spec") != NULL);
	CHECK_EQ_INT(lookup(":staff", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK_EQ_INT(lookup("alice:", &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK_EQ_INT(lookup(NULL, &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, EINVAL);

	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK_EQ_INT(lookup(longname, &u, err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strlen(err) < sizeof err);
}

static void test_err_buffer(void)
{
	agent_user u;
	char small[8];

	/* no buffer at all, and one too small for the message */
	CHECK_EQ_INT(lookup("nobody2", &u, NULL, 0), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK_EQ_INT(lookup("nobody2", &u, small, sizeof small), -1);
	CHECK_EQ_INT(strlen(small), sizeof small - 1);
}

static void test_missing_files(void)
{
	agent_user u;
	char err[256], nopasswd[160], nogroup[160];

	snprintf(nopasswd, sizeof nopasswd, "%s/missing-passwd", g_dir);
	snprintf(nogroup, sizeof nogroup, "%s/missing-group", g_dir);

	errno = 0;
	CHECK_EQ_INT(agent_user_lookup("alice", nopasswd, g_group, &u, err,
				       sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "cannot read") != NULL);

	/* numeric ids work without any file */
	CHECK_EQ_INT(agent_user_lookup("1234:55", nopasswd, nogroup, &u, err,
				       sizeof err), 0);
	CHECK_EQ_INT(u.uid, 1234);
	CHECK_EQ_INT(u.gid, 55);

	/* no group file: only the primary group */
	CHECK_EQ_INT(agent_user_lookup("alice", g_passwd, nogroup, &u, err,
				       sizeof err), 0);
	CHECK_EQ_INT(u.ngroups, 1);
	CHECK_EQ_INT(u.groups[0], 1000);

	errno = 0;
	CHECK_EQ_INT(agent_user_lookup("alice:staff", g_passwd, nogroup, &u,
				       err, sizeof err), -1);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "unknown group 'staff'") != NULL);
	CHECK(strstr(err, "cannot read") != NULL);
}

static void test_default_paths(void)
{
	agent_user u;
	char err[256];

	/* the system's root entry, read without NSS */
	CHECK_EQ_INT(agent_user_lookup("root", NULL, NULL, &u, err,
				       sizeof err), 0);
	CHECK_EQ_INT(u.uid, 0);
	CHECK_EQ_INT(u.gid, 0);
}

/* Child side of test_switch: exit 0 when the identity matches u. */
static int switch_and_check(const agent_user *u)
{
	gid_t got[128];
	int n, i;

	if (agent_user_switch(u) < 0)
		return 10;
	if (getuid() != u->uid || geteuid() != u->uid)
		return 11;
	if (getgid() != u->gid || getegid() != u->gid)
		return 12;
	n = getgroups(128, got);
	if (n != u->ngroups)
		return 13;
	for (i = 0; i < n; i++)
		if (!has_group(u, got[i]))
			return 14;
	/* and there is no way back */
	if (setuid(0) == 0)
		return 15;
	return 0;
}

static int run_switch(const agent_user *u)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(switch_and_check(u));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_switch(void)
{
	agent_user u;
	char err[256];

	if (geteuid() != 0) {
		printf("# skip test_switch (needs root)\n");
		return;
	}
	CHECK_EQ_INT(lookup("carol", &u, err, sizeof err), 0);
	CHECK_EQ_INT(run_switch(&u), 0);
	CHECK_EQ_INT(lookup("4242:4343", &u, err, sizeof err), 0);
	CHECK_EQ_INT(run_switch(&u), 0);
	/* root to root is a no-op that must succeed */
	CHECK_EQ_INT(lookup("0:0", &u, err, sizeof err), 0);
	u.ngroups = 1;
	{
		pid_t pid = fork();
		int status;

		CHECK(pid >= 0);
		if (pid == 0)
			_exit(agent_user_switch(&u) == 0 && getuid() == 0 ? 0
									  : 1);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

/* A non-root process can "switch" to itself, but to nobody else. */
static void test_switch_unprivileged(void)
{
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		printf("# skip test_switch_unprivileged (needs root)\n");
		return;
	}
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		agent_user self, other;
		char err[256];

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(20);
		if (lookup("65534:65534", &self, err, sizeof err) < 0)
			_exit(21);
		if (agent_user_switch(&self) < 0)
			_exit(22);
		if (lookup("alice", &other, err, sizeof err) < 0)
			_exit(23);
		if (agent_user_switch(&other) == 0 || errno != EPERM)
			_exit(24);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

static void remove_fixtures(void)
{
	unlink(g_passwd);
	unlink(g_group);
	unlink(g_many);
	rmdir(g_dir);
}

int main(void)
{
	make_fixtures();
	RUN(test_name);
	RUN(test_uid);
	RUN(test_uid_not_in_passwd);
	RUN(test_name_group);
	RUN(test_uid_gid);
	RUN(test_unknown_user);
	RUN(test_unknown_group);
	RUN(test_supplementary_groups);
	RUN(test_too_many_groups);
	RUN(test_malformed_lines);
	RUN(test_long_lines);
	RUN(test_invalid_spec);
	RUN(test_err_buffer);
	RUN(test_missing_files);
	RUN(test_default_paths);
	RUN(test_switch);
	RUN(test_switch_unprivileged);
	remove_fixtures();
	return test_summary();
}
