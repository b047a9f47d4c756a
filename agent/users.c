/* users.c — user specs resolved from /etc/passwd and /etc/group (see users.h).
 *
 * Both files are read as a stream of characters, one field at a time, so a
 * line of any length costs no memory: the fields we keep are copied into
 * fixed buffers (a field that does not fit makes its line malformed), the
 * others are skipped. Comments, blank lines and malformed lines are ignored,
 * as are lines the C library would also refuse (bad ids, missing fields). */
#include "users.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PASSWD_DEFAULT "/etc/passwd"
#define GROUP_DEFAULT "/etc/group"

/* One passwd line, as far as we use it. */
typedef struct pw_entry {
	char name[64];
	uid_t uid;
	gid_t gid;
	char home[256];
	char shell[128];
	int too_long; /* home or shell did not fit */
} pw_entry;

/* One group line: its name, its gid, and whether it lists a given member. */
typedef struct gr_entry {
	char name[256];
	gid_t gid;
	int has_member;
} gr_entry;

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* A uid or gid: decimal digits only, at most 4294967294 ((id_t)-1 is not an
 * id). 0, or -1 when s is not such a number. */
static int parse_id(const char *s, unsigned int *out)
{
	uint64_t v = 0;
	size_t i;

	if (s[0] == '\0')
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* 1 when nothing is left to read. */
static int at_eof(FILE *f)
{
	int c = getc(f);

	if (c == EOF)
		return 1;
	ungetc(c, f);
	return 0;
}

/* Read one field: the characters up to a separator from `seps`, a newline
 * or the end of the file. The field is copied into buf (len bytes, always
 * NUL-terminated) unless buf is NULL; *bad is set when it does not fit or
 * holds a NUL byte. A carriage return before the newline is dropped.
 * Returns the separator that ended the field, or '\n' at the end of the
 * line or of the file. */
static int read_field(FILE *f, const char *seps, char *buf, size_t len,
		      int *bad)
{
	size_t n = 0;
	int c;

	*bad = 0;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c != '\0' && strchr(seps, c))
			break;
		if (!buf)
			continue;
		if (c == '\0' || n + 1 >= len)
			*bad = 1;
		else
			buf[n++] = (char)c;
	}
	if (buf) {
		if ((c == EOF || c == '\n') && n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
	}
	if (c == EOF || c == '\n')
		return '\n';
	return c;
}

/* Consume what is left of a line that `end` did not already finish.
 * Returns 0, the "line ignored" result of the parsers below. */
static int skip_rest(FILE *f, int end)
{
	int c;

	if (end == '\n')
		return 0;
	while ((c = getc(f)) != EOF && c != '\n')
		;
	return 0;
}

/* The name:password: both files' lines start with. 1 when both were
 * read, else 0 with the line consumed (a comment, a bad or empty name). */
static int name_and_password(FILE *f, char *name, size_t size)
{
	int bad, end = read_field(f, ":", name, size, &bad);
	if (end != ':' || bad || name[0] == '\0' || name[0] == '#')
		return skip_rest(f, end);
	end = read_field(f, ":", NULL, 0, &bad); /* password */
	return end == ':';
}

/* Parse the next passwd line, name:password:uid:gid:gecos:home:shell.
 * Returns 1 for an entry, 0 for a line to ignore, -1 at the end of file. */
static int next_passwd(FILE *f, pw_entry *e)
{
	char num[16];
	int bad, end;

	if (at_eof(f))
		return -1;
	memset(e, 0, sizeof *e);

	if (!name_and_password(f, e->name, sizeof e->name))
		return 0;
	end = read_field(f, ":", num, sizeof num, &bad);
	if (end != ':' || bad || parse_id(num, &e->uid) < 0)
		return skip_rest(f, end);
	end = read_field(f, ":", num, sizeof num, &bad);
	if (end != ':' || bad || parse_id(num, &e->gid) < 0)
		return skip_rest(f, end);
	end = read_field(f, ":", NULL, 0, &bad); /* gecos */
	if (end != ':')
		return 0;
	end = read_field(f, ":", e->home, sizeof e->home, &bad);
	e->too_long |= bad;
	if (end != ':')
		return 0;
	end = read_field(f, ":", e->shell, sizeof e->shell, &bad);
	e->too_long |= bad;
	if (end != '\n')
		return skip_rest(f, end); /* more than seven fields */
	return 1;
}

/* Parse the next group line, name:password:gid[:member,member...], noting
 * whether `member` (may be NULL) is listed. Same results as next_passwd. */
static int next_group(FILE *f, const char *member, gr_entry *e)
{
	char num[16], who[256];
	int bad, end;

	if (at_eof(f))
		return -1;
	memset(e, 0, sizeof *e);

	if (!name_and_password(f, e->name, sizeof e->name))
		return 0;
	end = read_field(f, ":", num, sizeof num, &bad);
	if (bad || parse_id(num, &e->gid) < 0)
		return skip_rest(f, end);
	while (end != '\n') {
		end = read_field(f, ",", who, sizeof who, &bad);
		if (!bad && member && strcmp(who, member) == 0)
			e->has_member = 1;
	}
	return 1;
}

/* Find the passwd entry named `name`, or (when uid is not NULL) with that
 * uid; the first matching line wins. 1 found, 0 not found, -1 unreadable. */
static int find_passwd(const char *path, const char *name, const uid_t *uid,
		       pw_entry *e)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f)
		return -1;
	while ((r = next_passwd(f, e)) >= 0) {
		if (r == 1 && (strcmp(e->name, name) == 0 ||
			       (uid && e->uid == *uid)))
			break;
	}
	fclose(f);
	return r == 1;
}

/* Find the gid of the group named `name`. 1 found, 0 not, -1 unreadable. */
static int find_group(const char *path, const char *name, gid_t *gid)
{
	FILE *f = fopen(path, "re");
	gr_entry e;
	int r;

	if (!f)
		return -1;
	while ((r = next_group(f, NULL, &e)) >= 0) {
		if (r == 1 && strcmp(e.name, name) == 0)
			break;
	}
	fclose(f);
	if (r == 1)
		*gid = e.gid;
	return r == 1;
}

static void add_group(agent_user *u, gid_t gid)
{
	int i;

	for (i = 0; i < u->ngroups; i++)
		if (u->groups[i] == gid)
			return;
	if (u->ngroups < AGENT_USER_MAX_GROUPS)
		u->groups[u->ngroups++] = gid;
}

/* Primary gid first, then every group listing u->name as a member. A
 * missing or unreadable group file leaves just the primary gid. */
static void collect_groups(const char *path, agent_user *u)
{
	FILE *f;
	gr_entry e;
	int r;

	u->ngroups = 0;
	add_group(u, u->gid);
	f = fopen(path, "re");
	if (!f)
		return;
	while ((r = next_group(f, u->name, &e)) >= 0)
		if (r == 1 && e.has_member)
			add_group(u, e.gid);
	fclose(f);
}

/* Fill uid, gid, name, home and shell from the user part of a spec.
 * Returns 1 when found in passwd, 0 for a numeric uid that is not there,
 * -1 with errno and err on failure. */
static int resolve_user(const char *user, const char *path, agent_user *out,
			char *err, size_t err_len)
{
	pw_entry e;
	uid_t uid;
	int numeric = parse_id(user, &uid) == 0;
	int r = find_passwd(path, user, numeric ? &uid : NULL, &e);
	int saved = errno;

	if (r == 1) {
		if (e.too_long) {
			set_err(err, err_len, "home or shell of user '%s' "
				"too long in %s", e.name, path);
			errno = ENAMETOOLONG;
			return -1;
		}
		out->uid = e.uid;
		out->gid = e.gid;
		memcpy(out->name, e.name, sizeof out->name);
		snprintf(out->home, sizeof out->home, "%s",
			 e.home[0] ? e.home : "/");
		snprintf(out->shell, sizeof out->shell, "%s",
			 e.shell[0] ? e.shell : "/bin/sh");
		return 1;
	}
	if (numeric) {
		out->uid = uid;
		out->gid = 0;
		snprintf(out->name, sizeof out->name, "%u", (unsigned)uid);
		snprintf(out->home, sizeof out->home, "/");
		snprintf(out->shell, sizeof out->shell, "/bin/sh");
		return 0;
	}
	if (r < 0)
		set_err(err, err_len, "unknown user '%.64s' (cannot read %s: %s)",
			user, path, strerror(saved));
	else
		set_err(err, err_len, "unknown user '%.64s' (not in %s)", user,
			path);
	errno = ENOENT;
	return -1;
}

/* Make `group` (a name or a number) the primary and only group. */
static int resolve_group(const char *group, const char *path, agent_user *out,
			 char *err, size_t err_len)
{
	gid_t gid;
	int r;

	if (parse_id(group, &gid) < 0) {
		r = find_group(path, group, &gid);
		if (r != 1) {
			if (r < 0)
				set_err(err, err_len, "unknown group '%.64s' "
					"(cannot read %s: %s)", group, path,
					strerror(errno));
			else
				set_err(err, err_len, "unknown group '%.64s' "
					"(not in %s)", group, path);
			errno = ENOENT;
			return -1;
		}
	}
	out->gid = gid;
	out->groups[0] = gid;
	out->ngroups = 1;
	return 0;
}

int agent_user_lookup(const char *spec, const char *passwd_path,
		      const char *group_path, agent_user *out, char *err,
		      size_t err_len)
{
	char user[256];
	const char *colon, *group = NULL;
	size_t ulen;
	int r;

	if (!passwd_path)
		passwd_path = PASSWD_DEFAULT;
	if (!group_path)
		group_path = GROUP_DEFAULT;
	memset(out, 0, sizeof *out);
	set_err(err, err_len, "%s", "");

	colon = spec ? strchr(spec, ':') : NULL;
	ulen = colon ? (size_t)(colon - spec) : spec ? strlen(spec) : 0;
	if (colon)
		group = colon + 1;
	if (ulen == 0 || (group && group[0] == '\0')) {
		set_err(err, err_len, "invalid user spec '%.64s' (expected "
			"user, uid, user:group or uid:gid)", spec ? spec : "");
		errno = EINVAL;
		return -1;
	}
	if (ulen >= sizeof user) {
		set_err(err, err_len, "unknown user '%.64s...' (name too long)",
			spec);
		errno = ENOENT;
		return -1;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';

	r = resolve_user(user, passwd_path, out, err, err_len);
	if (r < 0)
		return -1;
	if (group)
		return resolve_group(group, group_path, out, err, err_len);
	if (r == 1) {
		collect_groups(group_path, out);
	} else {
		out->groups[0] = out->gid;
		out->ngroups = 1;
	}
	return 0;
}

/* 1 when the process already runs as u (real and effective ids). */
static int is_current(const agent_user *u)
{
	return getuid() == u->uid && geteuid() == u->uid &&
	       getgid() == u->gid && getegid() == u->gid;
}

int agent_user_switch(const agent_user *u)
{
	if (setgroups((size_t)u->ngroups, u->groups) < 0) {
		if (errno != EPERM || !is_current(u))
			return -1;
	}
	if (setgid(u->gid) < 0)
		return -1;
	if (setuid(u->uid) < 0)
		return -1;
	return 0;
}
