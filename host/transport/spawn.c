/* spawn.c — run a command whose stdin/stdout carry the agent protocol.
 *
 * Used for the local backend (`sbx-agent --stdio` as a child) and for any
 * command that reaches an agent (`kubectl exec -i ...`, `ssh host ...`).
 * With isolate, the child gets new user, pid, mount and network
 * namespaces: no network, its own /tmp and /proc, and pid 1 is the agent. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport.h"

extern char **environ;

const char *const sbx_sandbox_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", NULL};

typedef struct child_args {
	const sbx_spawn_opts *o;
	int in, out, err; /* become stdin, stdout, stderr */
	int sync_r;       /* isolate: wait for the id maps */
} child_args;

static void child_fail(const char *what)
{
	fprintf(stderr, "sbx: %s: %s\n", what, strerror(errno));
	_exit(127);
}

/* Re-exposes a directory that the private /tmp just hid (the sandbox's
 * own state: its socket, workdir) at the same path. */
static void keep_visible(int fd, const char *dir)
{
	char path[4096], src[64];
	snprintf(path, sizeof path, "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
	snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
	if (mount(src, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		child_fail("keeping the sandbox directory visible");
	close(fd);
}

/* The program itself, when the private /tmp hid it (a build under /tmp):
 * bound read-only at its own path, for an exec by path (valgrind, which
 * cannot execveat our handle). Nothing else of the old /tmp shows. */
static void keep_program_visible(int exe, const char *prog)
{
	if (exe < 0 || strncmp(prog, "/tmp/", 5) != 0)
		return;
	char path[4096], src[64];
	snprintf(path, sizeof path, "%s", prog);
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(path, 0755);
			*p = '/';
		}
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	if (fd >= 0)
		close(fd);
	snprintf(src, sizeof src, "/proc/self/fd/%d", exe);
	if (mount(src, path, NULL, MS_BIND, NULL) == 0)
		mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* An O_PATH handle on the program, found like execvp finds it. */
static int open_exe(const char *prog)
{
	if (strchr(prog, '/'))
		return open(prog, O_PATH | O_CLOEXEC);
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char buf[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		if (snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, prog) < (int)sizeof buf &&
		    access(buf, X_OK) == 0)
			return open(buf, O_PATH | O_CLOEXEC);
		if (!*end)
			return -1;
		p = end;
	}
}

static int child_main(void *arg)
{
	int exe = -1;
	child_args *a = arg;
	const sbx_spawn_opts *o = a->o;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(a->in, 0) < 0 || dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0)
		child_fail("dup2");
	/* fds 3 and 4 from fds that are themselves >= 3: dup them out of the
	 * way first, so placing one cannot overwrite the other */
	int moved[2] = {-1, -1};
	for (int i = 0; i < 2; i++)
		if (o->extra_fds[i] > 2 && (moved[i] = fcntl(o->extra_fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			child_fail("dup");
	for (int i = 0; i < 2; i++)
		if (moved[i] >= 0 && (dup2(moved[i], 3 + i) < 0 || fcntl(3 + i, F_SETFD, 0) < 0))
			child_fail("dup2");
	if (o->isolate) {
		char c;
		if (read(a->sync_r, &c, 1) != 1)
			_exit(127); /* the parent could not set up the id maps */
		exe = open_exe(o->argv[0]); /* before the private /tmp may hide it */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			child_fail("making mounts private");
		int keep = o->keep_dir ? open(o->keep_dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
			child_fail("mounting a private /tmp");
		if (keep >= 0)
			keep_visible(keep, o->keep_dir);
		keep_program_visible(exe, o->argv[0]);
		/* A fresh /proc for the new pid namespace (best effort). */
		mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		/* and a /sys that shows this network namespace (best effort) */
		mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
	}
	setsid();
	if (o->workdir && chdir(o->workdir) < 0)
		child_fail(o->workdir);
	if (o->envp)
		environ = (char **)o->envp;
	if (exe >= 0)
		syscall(SYS_execveat, exe, "", (char *const *)o->argv, environ, AT_EMPTY_PATH);
	execvp(o->argv[0], (char *const *)o->argv);
	child_fail(o->argv[0]);
	return 127;
}

static int write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	errno = e;
	return w == (ssize_t)strlen(text) ? 0 : -1;
}

/* Maps ids in the child's new user namespace: the whole low range when we
 * are root (so --user works inside), else just ourselves as root. */
static int map_ids(pid_t pid, char *err, size_t err_len)
{
	char map[64];
	int rc;
	if (geteuid() == 0) {
		rc = write_file(pid, "uid_map", "0 0 65536\n");
		if (rc == 0)
			rc = write_file(pid, "gid_map", "0 0 65536\n");
	} else {
		snprintf(map, sizeof map, "0 %d 1\n", (int)geteuid());
		rc = write_file(pid, "uid_map", map);
		if (rc == 0)
			rc = write_file(pid, "setgroups", "deny");
		snprintf(map, sizeof map, "0 %d 1\n", (int)getegid());
		if (rc == 0)
			rc = write_file(pid, "gid_map", map);
	}
	if (rc < 0)
		snprintf(err, err_len, "cannot map user ids into the sandbox's user namespace: %s", strerror(errno));
	return rc;
}

/* Starts argv with the given stdio fds (which must not be CLOEXEC-sensitive:
 * they are dup2'ed onto 0, 1, 2). Returns the pid, or -1 with err. */
pid_t sbx_spawn_process(const sbx_spawn_opts *o, int in_fd, int out_fd, int err_fd, char *err, size_t err_len)
{
	int sync[2] = {-1, -1};
	if (o->isolate && pipe2(sync, O_CLOEXEC) < 0) {
		snprintf(err, err_len, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	child_args a = {o, in_fd, out_fd, err_fd, sync[0]};
	pid_t pid;
	if (o->isolate) {
		size_t stack_size = 64 * 1024;
		char *stack = malloc(stack_size);
		if (!stack) {
			snprintf(err, err_len, "out of memory");
			return -1;
		}
		pid = clone(child_main, stack + stack_size,
			    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | SIGCHLD, &a);
		int e = errno;
		free(stack); /* the child has its own copy of the address space */
		errno = e;
	} else {
		pid = fork();
		if (pid == 0)
			child_main(&a);
	}
	if (pid < 0) {
		snprintf(err, err_len, "cannot start %s%s: %s", o->argv[0],
			 o->isolate ? " in new namespaces (are user namespaces enabled?)" : "", strerror(errno));
		if (sync[0] >= 0) {
			close(sync[0]);
			close(sync[1]);
		}
		return -1;
	}
	if (o->isolate) {
		close(sync[0]);
		if (map_ids(pid, err, err_len) < 0) {
			close(sync[1]);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
		if (write(sync[1], "g", 1) != 1) {
		}
		close(sync[1]);
	}
	return pid;
}

sbx_transport *sbx_spawn_transport(sbx_loop *loop, const sbx_spawn_opts *o, char *err, size_t err_len)
{
	int sv[2], ep[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, err_len, "cannot create pipes for the agent: %s", strerror(errno));
		return NULL;
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		snprintf(err, err_len, "cannot create pipes for the agent: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	pid_t pid = sbx_spawn_process(o, sv[1], sv[1], ep[1], err, err_len);
	close(sv[1]);
	close(ep[1]);
	if (pid < 0) {
		close(sv[0]);
		close(ep[0]);
		return NULL;
	}
	sbx_transport *t = sbx_fdpipe_new(loop, sv[0], sv[0], pid, ep[0], o->argv[0]);
	if (!t) {
		snprintf(err, err_len, "out of memory");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		close(ep[0]);
	}
	return t;
}
