/* proctree.c — descendants of a process by their parent links in /proc. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctree.h"

#define PROCTREE_MAX 4096

typedef struct proc_link {
	pid_t pid, ppid, pgid;
} proc_link;

/* pid, parent and process group of one /proc entry; 0, or -1 when gone. */
static int read_link(pid_t pid, proc_link *l)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *rp = strrchr(buf, ')'); /* the command name may hold anything */
	int ppid, pgid;
	char state;
	if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgid) != 3)
		return -1;
	l->pid = pid;
	l->ppid = ppid;
	l->pgid = pgid;
	return 0;
}

static int load_links(proc_link *links, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while (n < max && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end == 0 && pid > 0 && read_link((pid_t)pid, &links[n]) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Marks the descendants of root in links (a breadth-first walk over the
 * parent links: each round adds the children of the last round). */
static int walk(const proc_link *links, int n, pid_t root, pid_t *out, int max)
{
	pid_t *found = malloc((size_t)n * sizeof *found);
	if (!found)
		return 0;
	int count = 0, head = 0;
	pid_t parent = root;
	for (;;) {
		for (int i = 0; i < n; i++)
			if (links[i].ppid == parent && links[i].pid != root && count < n)
				found[count++] = links[i].pid;
		if (head == count)
			break;
		parent = found[head++];
	}
	for (int i = 0; i < count && i < max; i++)
		out[i] = found[i];
	free(found);
	return count;
}

int proctree_descendants(pid_t root, pid_t *out, int max)
{
	proc_link *links = malloc(PROCTREE_MAX * sizeof *links);
	if (!links)
		return 0;
	int n = load_links(links, PROCTREE_MAX);
	int count = walk(links, n, root, out, max);
	free(links);
	return count;
}

void proctree_kill(pid_t root, int sig)
{
	if (root <= 0)
		return;
	pid_t group = getpgid(root);
	pid_t kids[PROCTREE_MAX];
	int n = proctree_descendants(root, kids, PROCTREE_MAX);
	kill(-root, sig);
	for (int i = 0; i < n && i < PROCTREE_MAX; i++)
		if (getpgid(kids[i]) != group || group < 0)
			kill(kids[i], SIGKILL);
}
