/* listen.c — the listening agent's socket: a unix socket created owner-only
 * from the start (no chmod after bind, so no moment when others may
 * connect), or a TCP port on a numeric IPv4 address; and a name for each
 * peer that connects, for the log line of a refused connection.
 *
 * Who may drive the agent is decided by the AUTH handshake (conn.c), not
 * here: the socket's mode only keeps other users from connecting at all. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

static int listen_tcp(const char *addr, const char *colon)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char host[64];
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = 0;
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "sbx-agent: listen address must be a numeric IPv4 address: %s\n", host);
		return -1;
	}
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Linux gives a unix socket file the mode 0777 less the umask at bind():
 * with umask 077 it is born 0600. */
static int listen_unix(const char *addr)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(addr) >= sizeof sun.sun_path) {
		fprintf(stderr, "sbx-agent: socket path too long: %s\n", addr);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, addr);
	unlink(addr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	int e = errno;
	umask(old);
	if (rc < 0) {
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int agent_listen_on(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	int tcp = colon && addr[0] != '/' && addr[0] != '.';
	int fd = tcp ? listen_tcp(addr, colon) : listen_unix(addr);
	if (fd >= 0 && listen(fd, 128) == 0)
		return fd;
	fprintf(stderr, "sbx-agent: cannot listen on %s: %s\n", addr, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int agent_parse_owner(const char *owner, unsigned *uid, unsigned *gid)
{
	char *end;
	unsigned long u = strtoul(owner, &end, 10), g = u;
	if (end != owner && *end == ':')
		g = strtoul(end + 1, &end, 10);
	if (end == owner || *end || u > 0x7fffffff || g > 0x7fffffff || owner[0] == '-') {
		fprintf(stderr, "sbx-agent: --socket-owner %s: want numeric UID[:GID]\n", owner);
		return -1;
	}
	*uid = (unsigned)u;
	*gid = (unsigned)g;
	return 0;
}

int agent_listen_give(const char *addr, unsigned uid, unsigned gid)
{
	/* No follow: nothing else can have replaced it yet, and it must stay so. */
	if (lchown(addr, (uid_t)uid, (gid_t)gid) < 0) {
		fprintf(stderr, "sbx-agent: --socket-owner: cannot give %s to %u:%u: %s\n", addr, uid, gid,
			strerror(errno));
		return -1;
	}
	return 0;
}

void agent_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	out[0] = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_UNIX && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
		snprintf(out, len, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		char ip[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
		snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	}
}

int agent_listen_inherited(int fd)
{
	int type = 0;
	socklen_t tl = sizeof type;
	if (fd < 3 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
		fprintf(stderr, "sbx-agent: --listen-fd %d: not a stream socket\n", fd);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}
