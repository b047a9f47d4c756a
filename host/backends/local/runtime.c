/* runtime.c — the OCI runtime that runs boxes: which one, and its calls.
 *
 * crun, runc and runsc share a command line (`--root DIR run --bundle B
 * ID`, `kill`, `delete -f`). Each box keeps the runtime's state in its own
 * bundle (BUNDLE/state), so boxes never share runtime state and removing a
 * bundle leaves nothing behind. "auto" takes crun where it can run here
 * (crun 1.8 refuses hybrid cgroup v1/v2 hosts), else runc; it never falls
 * back to no container. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/local/box.h"
#include "transport/transport.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static const char *const known_runtimes[] = {"crun", "runc", "runsc", NULL};

/* The program for a runtime name: on PATH, then the sbin directories root's PATH has (Debian puts runc in
 * /usr/sbin). */
static int find_program(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof dirs, "%s:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (snprintf(out, len, "%s/%s", d, name) < (int)len && access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* crun 1.8 cannot run on a host that mounts cgroup v1 controllers next to
 * an empty cgroup2 tree (measured: "cgroups in hybrid mode not supported"). */
static int hybrid_cgroups(void)
{
	struct statfs top, unified;
	return statfs("/sys/fs/cgroup", &top) == 0 && top.f_type != CGROUP2_SUPER_MAGIC &&
	       statfs("/sys/fs/cgroup/unified", &unified) == 0 && unified.f_type == CGROUP2_SUPER_MAGIC;
}

int sbx_box_pick_runtime(sbx_box *b, const sbx_box_opts *o, char *err, size_t len)
{
	const char *want = o->runtime;
	if (!want || !want[0] || !strcmp(want, "auto"))
		want = getenv("SBX_RUNTIME");
	if (want && want[0] && strcmp(want, "auto") != 0) {
		int known = 0;
		for (int i = 0; known_runtimes[i]; i++)
			known |= !strcmp(want, known_runtimes[i]);
		if (!known) {
			snprintf(err, len, "unknown runtime '%s': use crun, runc or runsc (gVisor)", want);
			return -1;
		}
		if (find_program(want, b->runtime_path, sizeof b->runtime_path) < 0) {
			snprintf(err, len, "the %s runtime is not installed (apt-get install %s), or pick another with --runtime",
				 want, want);
			return -1;
		}
		snprintf(b->runtime, sizeof b->runtime, "%s", want);
		return 0;
	}
	const char *order[] = {hybrid_cgroups() ? NULL : "crun", "runc"};
	for (int i = 0; i < 2; i++) {
		if (order[i] && find_program(order[i], b->runtime_path, sizeof b->runtime_path) == 0) {
			snprintf(b->runtime, sizeof b->runtime, "%s", order[i]);
			return 0;
		}
	}
	snprintf(err, len, "no OCI runtime to contain the sandbox: install one (apt-get install runc), or run "
			   "uncontained with --host (the code then gets this machine)");
	return -1;
}

/* argv for `RUNTIME --root BUNDLE/state [runsc flags] VERB ...`. */
static int runtime_argv(const sbx_box *b, const char **argv, char *root, size_t root_len)
{
	int n = 0;
	snprintf(root, root_len, "%s/state", b->bundle);
	argv[n++] = b->runtime_path;
	argv[n++] = "--root";
	argv[n++] = root;
	if (!strcmp(b->runtime, "runsc")) {
		argv[n++] = "--network=none";
		if (geteuid() != 0)
			argv[n++] = "--rootless";
	}
	return n;
}

/* Runs a runtime verb to completion, output to /dev/null. Its exit code. */
static int runtime_call(const sbx_box *b, const char *verb, const char *arg1, const char *arg2)
{
	const char *argv[16];
	char root[4200];
	int n = runtime_argv(b, argv, root, sizeof root);
	argv[n++] = verb;
	if (arg1)
		argv[n++] = arg1;
	argv[n++] = b->id;
	if (arg2)
		argv[n++] = arg2;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	return pid < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

pid_t sbx_box_run(const sbx_box *b, int detach, int in, int out, int errfd, const int *keep, int nkeep, char *err,
		  size_t len)
{
	static const char *const counts[] = {"0", "1", "2"};
	const char *argv[24];
	char root[4200], pidfile[4200], bundle_arg[4200];
	int n = runtime_argv(b, argv, root, sizeof root);
	snprintf(pidfile, sizeof pidfile, "%s/pid", b->bundle);
	snprintf(bundle_arg, sizeof bundle_arg, "%s", b->bundle);
	argv[n++] = "run";
	if (detach)
		argv[n++] = "--detach";
	/* A session keyring per box is charged to the boxes' one host uid,
	 * whose key quota (200) would cap how many boxes run at once; the
	 * seccomp filter refuses the keyring calls anyway (oci.c). */
	if (strcmp(b->runtime, "runsc") != 0)
		argv[n++] = "--no-new-keyring";
	if (nkeep > 0) {
		argv[n++] = "--preserve-fds";
		argv[n++] = counts[nkeep > 2 ? 2 : nkeep];
	}
	argv[n++] = "--pid-file";
	argv[n++] = pidfile;
	argv[n++] = "--bundle";
	argv[n++] = bundle_arg;
	argv[n++] = b->id;
	argv[n] = NULL;
	/* The runtime runs with a clean environment too: nothing of ours
	 * reaches the box, and the runtime does not need it. */
	sbx_spawn_opts so = {.argv = argv, .envp = sbx_sandbox_env};
	for (int i = 0; i < nkeep && i < 2; i++)
		so.extra_fds[i] = keep[i];
	return sbx_spawn_process(&so, in, out, errfd, err, len);
}

int sbx_box_started(const sbx_box *b, pid_t runtime_pid, char *err, size_t len)
{
	int st = 0;
	while (waitpid(runtime_pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, len, "%s could not start the container (exit %d)", b->runtime,
			 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return -1;
	}
	return 0;
}

int sbx_box_attach_argv(const sbx_box *b, const char **argv, int max)
{
	static char root[4200]; /* argv points here: one call at a time */
	if (strcmp(b->runtime, "runsc") != 0 || max < 12)
		return -1;
	int n = runtime_argv(b, argv, root, sizeof root);
	argv[n++] = "exec";
	argv[n++] = b->id;
	argv[n++] = SBX_BOX_AGENT;
	argv[n++] = "--attach";
	argv[n++] = SBX_BOX_INNER_SOCKET;
	argv[n] = NULL;
	return 0;
}

int sbx_box_stdio_argv(const sbx_box *b, const char **argv, int max)
{
	static char root[4200]; /* argv points here: one call at a time */
	if (max < 14)
		return -1;
	int n = runtime_argv(b, argv, root, sizeof root);
	argv[n++] = "exec";
	argv[n++] = "--cwd"; /* the bundle keeps no workdir: the default one's */
	argv[n++] = "/root";
	argv[n++] = b->id;
	argv[n++] = SBX_BOX_AGENT;
	argv[n++] = "--stdio";
	argv[n] = NULL;
	return 0;
}

pid_t sbx_box_pid(const sbx_box *b)
{
	char path[4200], buf[32];
	snprintf(path, sizeof path, "%s/pid", b->bundle);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	long pid = strtol(buf, NULL, 10);
	return pid > 1 && pid < (1L << 22) ? (pid_t)pid : 0;
}

/* Removes a tree without following symlinks (the box wrote most of it). */
static void remove_tree(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				remove_tree(fd, e->d_name);
		if (d)
			closedir(d);
		else
			close(fd);
		unlinkat(dirfd, name, AT_REMOVEDIR);
	} else {
		unlinkat(dirfd, name, 0);
	}
}

void sbx_box_destroy(const sbx_box *b)
{
	if (!b->bundle[0])
		return;
	if (b->runtime_path[0]) {
		pid_t pid = sbx_box_pid(b);
		if (runtime_call(b, "delete", "-f", NULL) != 0 && pid > 0)
			kill(pid, SIGKILL); /* the agent is pid 1 of the box: all of it ends */
	}
	char rootfs[4200];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", b->bundle);
	umount2(rootfs, MNT_DETACH); /* a --rootfs overlay (nothing otherwise) */
	remove_tree(AT_FDCWD, b->bundle);
}

int sbx_box_load(sbx_box *b, const char *bundle)
{
	memset(b, 0, sizeof *b);
	char path[4200], text[600];
	snprintf(path, sizeof path, "%s/runtime", bundle);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = 0;
	char *save = NULL, *name = strtok_r(text, "\n", &save), *prog = strtok_r(NULL, "\n", &save),
	     *id = strtok_r(NULL, "\n", &save), *uid = strtok_r(NULL, "\n", &save);
	if (!name || !prog || !id || !uid)
		return -1;
	snprintf(b->runtime, sizeof b->runtime, "%s", name);
	snprintf(b->runtime_path, sizeof b->runtime_path, "%s", prog);
	snprintf(b->id, sizeof b->id, "%s", id);
	snprintf(b->bundle, sizeof b->bundle, "%s", bundle);
	b->host_root = (uid_t)strtoul(uid, NULL, 10);
	return 0;
}
