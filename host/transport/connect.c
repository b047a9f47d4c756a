/* connect.c — a socket to an agent started with `sbx-agent --listen`. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport.h"

static int connect_unix(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, err_len, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		snprintf(err, err_len, "cannot connect to the agent at %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *addr, const char *colon, char *err, size_t err_len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char host[64];
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host) {
		snprintf(err, err_len, "bad agent address: %s", addr);
		return -1;
	}
	memcpy(host, addr, hl);
	host[hl] = 0;
	int port = atoi(colon + 1);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port <= 0 || port > 65535) {
		snprintf(err, err_len, "bad agent address %s (want a numeric IPv4 HOST:PORT)", addr);
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		snprintf(err, err_len, "cannot connect to the agent at %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

sbx_transport *sbx_connect_transport(sbx_loop *loop, const char *addr, char *err, size_t err_len)
{
	int fd;
	const char *colon = strrchr(addr, ':');
	if (strncmp(addr, "unix:", 5) == 0)
		fd = connect_unix(addr + 5, err, err_len);
	else if (addr[0] == '/' || addr[0] == '.' || !colon)
		fd = connect_unix(addr, err, err_len);
	else
		fd = connect_tcp(addr, colon, err, err_len);
	if (fd < 0)
		return NULL;
	sbx_transport *t = sbx_fdpipe_new(loop, fd, fd, 0, -1, addr);
	if (!t) {
		snprintf(err, err_len, "out of memory");
		close(fd);
	}
	return t;
}
