/* net_util.h — helpers of the network tests (test_http, test_ws, test_k8s):
 * a throwaway PKI (tests/net/make-certs.sh), Python peers started as
 * children that print "PORT N" and end when their stdin closes.
 *
 * Header-only, like it_util.h (include that first). */
#ifndef SBX_NET_UTIL_H
#define SBX_NET_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "it_util.h"

typedef struct net_peer {
	pid_t pid;
	int stdin_fd; /* closing it ends the peer */
	int port;
} net_peer;

/* Runs argv (a Python peer) and waits for its "PORT N" line. 0 or -1. */
IT_UNUSED static int net_peer_start(net_peer *p, const char *const *argv)
{
	int in[2], out[2];
	memset(p, 0, sizeof *p);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	p->pid = fork();
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->stdin_fd = in[1];
	char line[128];
	size_t n = 0;
	while (n < sizeof line - 1) {
		ssize_t r = read(out[0], line + n, 1);
		if (r <= 0)
			break;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	close(out[0]);
	if (sscanf(line, "PORT %d", &p->port) != 1) {
		fprintf(stderr, "net_peer_start: %s printed '%s', not PORT N\n", argv[1] ? argv[1] : argv[0], line);
		return -1;
	}
	return 0;
}

IT_UNUSED static void net_peer_stop(net_peer *p)
{
	if (p->pid <= 0)
		return;
	close(p->stdin_fd);
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

/* Makes the PKI of make-certs.sh in a fresh temp dir (path into dir). */
IT_UNUSED static int net_make_certs(char *dir, size_t len)
{
	it_tmpdir(dir, len, "certs");
	char cmd[600];
	snprintf(cmd, sizeof cmd, "tests/net/make-certs.sh %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Reads DIR/NAME into a NUL-terminated string (free it), or NULL. */
IT_UNUSED static char *net_read_pem(const char *dir, const char *name)
{
	char path[600];
	size_t n;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return (char *)it_read_local(path, &n);
}

IT_UNUSED static int net_have_python(void)
{
	return system("python3 -c 'import ssl' >/dev/null 2>&1") == 0;
}

#endif
