/* proctree.h — the processes descended from one process, found in /proc.
 *
 * A command that times out or is cancelled is killed with its process
 * group; processes that left the group (setsid, daemons) are found here by
 * parent links while their ancestors still run, and killed too. */
#ifndef SBX_AGENT_PROCTREE_H
#define SBX_AGENT_PROCTREE_H

#include <sys/types.h>

/* Fills out with up to max descendants of root (not root itself); returns
 * how many were found (possibly more than max: only max are stored). */
int proctree_descendants(pid_t root, pid_t *out, int max);

/* Sends sig to root's process group and SIGKILL to every descendant of
 * root outside that group (they would never get the group's signals). */
void proctree_kill(pid_t root, int sig);

#endif
