/* main.c — sbx-agent's command line: serve on stdio or listen on a socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "agent.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx-agent --stdio | --listen ADDR | --attach PATH [options]\n"
		"\n"
		"The sbx in-sandbox agent: runs commands and moves files for an sbx host,\n"
		"speaking the sbx protocol (docs/PROTOCOL.md).\n"
		"\n"
		"  --stdio            serve one host on stdin/stdout, exit when it leaves\n"
		"  --listen ADDR      serve hosts on a unix socket path or 127.0.0.1:PORT;\n"
		"                     commands survive a dropped connection and can be re-attached\n"
		"  --listen-fd N      serve hosts on the listening socket inherited as fd N\n"
		"                     (how a contained local sandbox gets its socket)\n"
		"  --attach PATH      connect stdin/stdout to the agent listening on the unix\n"
		"                     socket PATH, starting it (detached) if none answers: a\n"
		"                     stdio stream whose commands survive the stream\n"
		"  --workdir DIR      directory relative paths resolve against (default: cwd)\n"
		"  --user USER[:GROUP] run commands as this user unless a request names one\n"
		"  --keep SECONDS     keep results of detached commands this long (default 600)\n"
		"  --version          print the version\n");
}

static int listen_on(const char *addr)
{
	int fd;
	const char *colon = strrchr(addr, ':');
	if (colon && addr[0] != '/' && addr[0] != '.') {
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
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
			goto fail;
	} else {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		if (strlen(addr) >= sizeof sun.sun_path) {
			fprintf(stderr, "sbx-agent: socket path too long: %s\n", addr);
			return -1;
		}
		strcpy(sun.sun_path, addr);
		unlink(addr);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
			goto fail;
		chmod(addr, 0600);
	}
	if (listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	fprintf(stderr, "sbx-agent: cannot listen on %s: %s\n", addr, strerror(errno));
	return -1;
}

/* A listening socket handed over by whoever started us: kept from the
 * commands we run and made non-blocking like our own. */
static int listen_inherited(int fd)
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

static void make_boot_id(char *out, size_t len)
{
	unsigned char r[16] = {0};
	if (getrandom(r, sizeof r, 0) != sizeof r) {
		pid_t p = getpid();
		memcpy(r, &p, sizeof p);
	}
	for (size_t i = 0; i < sizeof r && 2 * i + 2 < len; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static const char *arch_name(void)
{
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "aarch64";
#else
	return "unknown";
#endif
}

int main(int argc, char **argv)
{
	static agent ag;
	const char *listen_addr = NULL, *attach_path = NULL, *keep = "600";
	int inherited = -1;
	ag.listen_fd = -1;
	ag.keep_ms = 600 * 1000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--stdio") == 0) {
			ag.stdio = 1;
		} else if (strcmp(a, "--listen") == 0 && v) {
			listen_addr = v;
			i++;
		} else if (strcmp(a, "--listen-fd") == 0 && v) {
			inherited = atoi(v);
			listen_addr = v;
			i++;
		} else if (strcmp(a, "--attach") == 0 && v) {
			attach_path = v;
			i++;
		} else if (strcmp(a, "--workdir") == 0 && v) {
			if (chdir(v) < 0) {
				fprintf(stderr, "sbx-agent: --workdir %s: %s\n", v, strerror(errno));
				return 2;
			}
			i++;
		} else if (strcmp(a, "--user") == 0 && v) {
			ag.default_user = v;
			i++;
		} else if (strcmp(a, "--keep") == 0 && v) {
			ag.keep_ms = (uint64_t)strtoull(v, NULL, 10) * 1000;
			keep = v;
			i++;
		} else if (strcmp(a, "--version") == 0) {
			printf("sbx-agent %s (protocol %d, %s)\n", AGENT_VERSION, SBX_PROTO_VERSION, arch_name());
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sbx-agent: unknown or incomplete option: %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (attach_path && !ag.stdio && !listen_addr)
		return agent_attach(attach_path, keep); /* the listener gets our cwd as its workdir */
	if (ag.stdio == (listen_addr != NULL)) {
		usage(stderr);
		return 2;
	}
	if (!getcwd(ag.workdir, sizeof ag.workdir))
		strcpy(ag.workdir, "/");
	if (inherited >= 0 && (ag.listen_fd = listen_inherited(inherited)) < 0)
		return 1;
	if (inherited < 0 && listen_addr && (ag.listen_fd = listen_on(listen_addr)) < 0)
		return 1;
	snprintf(ag.hello.version, sizeof ag.hello.version, "%s", AGENT_VERSION);
	make_boot_id(ag.hello.boot_id, sizeof ag.hello.boot_id);
	snprintf(ag.hello.arch, sizeof ag.hello.arch, "%s", arch_name());
	ag.hello.pid = getpid();
	ag.hello.uid = getuid();
	if (!ag.stdio)
		ag.hello.caps |= SBX_CAP_ATTACH;
	if (geteuid() == 0)
		ag.hello.caps |= SBX_CAP_USER;
	return agent_serve(&ag);
}
