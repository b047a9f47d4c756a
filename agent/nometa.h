/* nometa.h — `--block-metadata`: the commands an agent runs cannot reach
 * the cloud's instance metadata service (on EC2 the instance role's
 * credentials), while the agent itself and every other process on the
 * machine (the SSM agent) still can.
 *
 * The agent makes a cgroup v2 child of its own cgroup ("sbx-commands-PID")
 * with socket-address BPF programs that refuse connect() and UDP sendmsg()
 * to 169.254.169.254, fd00:ec2::254 and ::ffff:169.254.169.254 (EPERM);
 * every command starts inside that cgroup and its children stay there.
 * Setup proves the block works before the agent serves anyone; if anything
 * fails the agent refuses to start — never runs commands unprotected. What
 * this does not stop (root commands that tamper with cgroups or BPF) is in
 * docs/SECURITY.md. */
#ifndef SBX_AGENT_NOMETA_H
#define SBX_AGENT_NOMETA_H

#include <stddef.h>
#include <sys/types.h>

typedef struct nometa {
	int cgroup_fd;        /* the commands' cgroup directory (O_CLOEXEC); -1: not blocking */
	char path[4096];      /* its path, to remove it at exit */
} nometa;

/* Sets up the block: the cgroup, the programs, a check that a process in
 * the cgroup is refused. 0, or -1 with a message in err saying what failed
 * and what the machine needs. */
int nometa_setup(nometa *nm, char *err, size_t len);

/* Starts a child process inside the commands' cgroup (or an ordinary
 * child when nm is NULL or not blocking): fork semantics, returns 0 in the
 * child, the pid in the parent, -1 with errno. */
pid_t nometa_fork(const nometa *nm);

/* Removes the cgroup if it is empty (at agent exit; best effort). */
void nometa_cleanup(nometa *nm);

#endif
