/* durable.c — making a finished file survive a power loss: fsync of a
 * file and of the directory that names it. Used where libsbx lands a
 * download (files.c); the agent has its own in agent/fsops.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int sbx_fsync_fd(int fd)
{
	if (fsync(fd) < 0 && errno != EINVAL) /* EINVAL: a file system without fsync */
		return -1;
	return 0;
}

int sbx_fsync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = sbx_fsync_fd(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}
