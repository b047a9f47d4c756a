/* users.h — user specs ("name", "uid", "name:group", "uid:gid") resolved by
 * reading /etc/passwd and /etc/group directly, and the uid/gid switch.
 *
 * The agent is linked statically and must work in images without NSS, so
 * nothing here calls getpwnam(), getgrnam() or initgroups(). The semantics
 * follow `docker exec --user` (runc):
 *   - "name" or "uid": the passwd entry; groups = its primary gid plus every
 *     group in /etc/group that lists the user name as a member.
 *   - a numeric uid that is not in passwd is accepted as is: name = the
 *     number, home = "/", shell = "/bin/sh", gid = 0, groups = {gid}.
 *   - "user:group": the group (a name from /etc/group, or any number) becomes
 *     the primary gid and the only group; no supplementary groups are added. */
#ifndef SBX_AGENT_USERS_H
#define SBX_AGENT_USERS_H

#include <stddef.h>
#include <sys/types.h>

#define AGENT_USER_MAX_GROUPS 64

typedef struct agent_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[AGENT_USER_MAX_GROUPS]; /* supplementary groups, incl. gid */
	int ngroups;                         /* extra memberships are dropped */
	char home[256];
	char shell[128];
	char name[64];
} agent_user;

/* Resolve `spec`. passwd_path / group_path default to /etc/passwd and
 * /etc/group when NULL. Returns 0, or -1 with errno:
 *   ENOENT       no such user or group (err says which, and why)
 *   EINVAL       malformed spec ("", ":g", "u:")
 *   ENAMETOOLONG the passwd entry's name, home or shell does not fit
 * err (err_len bytes, may be NULL) receives a message such as
 * "unknown user 'bob' (not in /etc/passwd)". */
int agent_user_lookup(const char *spec, const char *passwd_path,
		      const char *group_path, agent_user *out, char *err,
		      size_t err_len);

/* Switch identity, in a forked child: setgroups, setgid, setuid in that
 * order. Setting HOME/USER/LOGNAME is the caller's job. When the target is
 * already the current identity and setgroups is not permitted (non-root
 * agent, user namespace with setgroups denied) the group list is left
 * as it is. Returns 0, or -1 with errno. */
int agent_user_switch(const agent_user *u);

#endif
