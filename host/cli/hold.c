/* hold.c — the CLI's side of a sandbox's connection holders (cmd_hold.c
 * is the holder itself): where a service's holder keeps its socket, pid
 * and log (STATE/NAME/hold/SVC.{sock,pid,log}, a directory only the user
 * can enter), starting one per service after `sbx up`, stopping them at
 * `sbx down`, and a session through one when it answers.
 *
 * A holder keeps one connection to a remote service's agent open (through
 * the backend's connect: the k8s exec WebSocket, the EC2 SSM session) and
 * gives each CLI call that connects to its socket a new connection to the
 * agent over it (FORWARD agent): a fresh session without a new TLS
 * WebSocket and agent bridge, or a new SSM session. Any failure here is
 * not an error: the caller dials directly. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define HOLD_READY_MS 30000 /* how long `sbx up` waits for a holder to listen */
#define HOLD_CONNECT_S 10.0 /* a holder that answers must give a ready session by then */

void cli_hold_path(const cli_sandbox *sb, const char *svc, const char *what, char *out, size_t len)
{
	if (svc)
		snprintf(out, len, "%s/hold/%s.%s", sb->dir, svc, what);
	else
		snprintf(out, len, "%s/hold", sb->dir);
}

int cli_hold_dir(const cli_sandbox *sb)
{
	char dir[4200];
	cli_hold_path(sb, NULL, NULL, dir, sizeof dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -1;
	return (st.st_mode & 077) ? chmod(dir, 0700) : 0;
}

sbx_session *cli_hold_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc)
{
	char sock[4200], addr[4300];
	cli_hold_path(sb, svc, "sock", sock, sizeof sock);
	if (access(sock, F_OK) < 0)
		return NULL;
	snprintf(addr, sizeof addr, "unix:%s", sock);
	/* When the holder's own connection is reopened (a new SSM session, a
	 * new exec stream), this one drops: it connects to the holder again and
	 * re-attaches its running commands, as to a listening agent. */
	sbx_session_opts so = {.reconnect = 1};
	sbx_error e;
	sbx_session *s = sbx_session_connect(loop, addr, &so, &e);
	if (s && sbx_session_wait_ready(s, HOLD_CONNECT_S, &e) < 0) {
		sbx_session_close(s);
		s = NULL;
	}
	return s;
}

/* The holder's pid from its pidfile, if that process is a holder (its
 * command line says `hold`): 0 otherwise. */
static pid_t holder_pid(const cli_sandbox *sb, const char *svc)
{
	char path[4200], buf[4096];
	cli_hold_path(sb, svc, "pid", path, sizeof path);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 1)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *arg1 = buf + strlen(buf) + 1; /* argv[1] */
	return arg1 < buf + n && !strcmp(arg1, "hold") ? (pid_t)pid : 0;
}

/* Runs `sbx hold NAME/SVC` detached: its own session, stdio to its log,
 * and fd 3 (SBX_HOLD_READY_FD) the write end of ready: it writes a byte
 * there once it listens, and the pipe closes when it exits. */
static void spawn(const cli_sandbox *sb, const char *svc, const int ready[2])
{
	char target[200], log[4200];
	snprintf(target, sizeof target, "%s/%s", sb->name, svc);
	cli_hold_path(sb, svc, "log", log, sizeof log);
	pid_t pid = fork();
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (pid != 0)
		return;
	if (fork() != 0) /* the holder is not our child: no zombie, no wait */
		_exit(0);
	setsid();
	umask(077);
	int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (in < 0 || out < 0 || dup2(ready[1], 3) < 0)
		_exit(1);
	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	setenv("SBX_HOLD_READY_FD", "3", 1);
	execl("/proc/self/exe", "sbx", "hold", target, (char *)NULL);
	_exit(127);
}

/* 1 when the holder said it listens, 0 when it exited or took too long. */
static int wait_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;
	return poll(&p, 1, HOLD_READY_MS) == 1 && read(fd, &b, 1) == 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void cli_hold_start(const cli_sandbox *sb)
{
	if (cli_hold_dir(sb) < 0) {
		cli_say(stderr, "sbx up: note: no connection holder (cannot make %s/hold private)\n", sb->dir);
		return;
	}
	int ready[CLI_MAX_SERVICES];
	for (int i = 0; i < sb->nservices; i++) {
		int p[2];
		ready[i] = -1;
		if (pipe2(p, O_CLOEXEC) < 0)
			continue;
		spawn(sb, sb->services[i], p);
		close(p[1]);
		ready[i] = p[0];
	}
	/* Wait for them, so the next call goes through them. */
	for (int i = 0; i < sb->nservices; i++) {
		if (ready[i] < 0 || !wait_ready(ready[i]))
			cli_say(stderr, "sbx up: note: service %s has no connection holder (see %s/hold/%s.log)\n",
				sb->services[i], sb->dir, sb->services[i]);
		if (ready[i] >= 0)
			close(ready[i]);
	}
}

void cli_hold_stop(const cli_sandbox *sb)
{
	for (int i = 0; i < sb->nservices; i++) {
		pid_t pid = holder_pid(sb, sb->services[i]);
		if (pid <= 0)
			continue;
		kill(pid, SIGTERM);
		for (int waited = 0; waited < 5000 && kill(pid, 0) == 0 && holder_pid(sb, sb->services[i]) == pid;
		     waited += 10)
			sleep_ms(10);
	}
}
