/* attach.c — `sbx-agent --attach PATH`: the stdio end of a connection that
 * survives its stream. A pod exec stream runs this: it connects stdin and
 * stdout to the agent listening on the unix socket PATH, starting that agent
 * (detached, in its own session) when none answers, then copies bytes both
 * ways until either side ends. A dropped stream loses only this bridge; the
 * listening agent keeps the commands, and the host's next stream
 * re-attaches them. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define START_WAIT_MS 5000

static int connect_to(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		return fd;
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

/* The listening agent, as a grandchild in its own session: it outlives
 * this bridge and the exec that started it. */
static void start_listener(const char *path, const char *keep)
{
	pid_t pid = fork();
	if (pid != 0) {
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return;
	}
	setsid();
	if (fork() != 0)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	char log[4200];
	snprintf(log, sizeof log, "%s.log", path);
	int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	dup2(null, 0);
	dup2(null, 1);
	dup2(err >= 0 ? err : null, 2);
	char *argv[] = {"sbx-agent", "--listen", (char *)path, "--keep", (char *)keep, NULL};
	execv("/proc/self/exe", argv);
	_exit(127);
}

/* Connects, starting the agent first if nobody listens. A lock file keeps
 * two bridges from starting two agents on one path. */
static int reach_agent(const char *path, const char *keep)
{
	char lock_path[4200];
	snprintf(lock_path, sizeof lock_path, "%s.lock", path);
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0)
		flock(lock, LOCK_EX);
	int fd = connect_to(path);
	if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED)) {
		start_listener(path, keep);
		for (int waited = 0; fd < 0 && waited < START_WAIT_MS; waited += 10) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
			fd = connect_to(path);
		}
	}
	if (lock >= 0)
		close(lock); /* releases the lock */
	return fd;
}

/* Writes all of p; -1 when the other side is gone. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int agent_attach(const char *path, const char *keep)
{
	int sock = reach_agent(path, keep);
	if (sock < 0) {
		fprintf(stderr, "sbx-agent: cannot reach or start the agent on %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
	int out[2] = {sock, 1};
	char buf[65536];
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || write_all(out[i], buf, (size_t)n) < 0)
				return 0; /* either side ended: the agent keeps the commands */
		}
	}
}
