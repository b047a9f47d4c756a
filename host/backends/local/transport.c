/* transport.c — an agent inside a new box, as a transport.
 *
 * The runtime starts the container detached with the agent's stdio on a
 * socketpair (fdpipe.c owns the pipe) and exits, so a box costs the host no
 * runtime process; the loop reaps the runtime. If the container cannot
 * start, the runtime's error arrives on the agent's stderr and the stream
 * ends. Closing the transport deletes the container (every process in it)
 * and its bundle. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/local/box.h"
#include "transport/transport.h"

/* A container id no other box has: sbx-<12 random hex>. */
void sbx_box_new_id(char *out, size_t len)
{
	unsigned char r[6] = {0};
	if (getrandom(r, sizeof r, 0) != sizeof r) {
		pid_t p = getpid();
		memcpy(r, &p, sizeof p);
	}
	snprintf(out, len, "sbx-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

/* The box's root (an unprivileged host id) must reach BUNDLE/rootfs: every
 * directory above the bundle must let others search it. */
int sbx_box_check_reachable(const char *bundle, char *err, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", bundle);
	for (char *slash = strrchr(path, '/'); slash && slash > path; slash = strrchr(path, '/')) {
		*slash = 0;
		struct stat st;
		if (stat(path, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			snprintf(err, len, "%s is mode %03o: the sandbox's root (an unprivileged id) cannot reach its "
					   "files below it; make it searchable (chmod o+x %s) or put the sandbox elsewhere",
				 path, st.st_mode & 0777, path);
			return -1;
		}
	}
	return 0;
}

/* The detached runtime exits once the box runs (or failed to start: then
 * its words are on the agent's stderr and the stream has ended). */
static void reap_runtime(sbx_loop *loop, pid_t pid, int wait_status, void *ud)
{
	(void)loop;
	(void)pid;
	(void)wait_status;
	(void)ud;
}

static void box_cleanup(void *ud)
{
	sbx_box *b = ud;
	sbx_box_destroy(b);
	free(b);
}

/* A temporary bundle directory under $TMPDIR. */
static int temp_bundle(char *out, size_t len, char *err, size_t err_len)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, len, "%s/sbx-box-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(out)) {
		snprintf(err, err_len, "cannot create a directory for the sandbox in %s: %s", tmp ? tmp : "/tmp",
			 strerror(errno));
		return -1;
	}
	return 0;
}

sbx_transport *sbx_box_transport(sbx_loop *loop, const sbx_box_opts *o, const char *agent_path, const char *bundle,
				 char *err, size_t err_len)
{
	static const sbx_box_opts defaults;
	if (!o)
		o = &defaults;
	sbx_box *b = calloc(1, sizeof *b);
	char dir[4096], id[64];
	if (!b) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (sbx_box_pick_runtime(b, o, err, err_len) < 0 ||
	    (bundle ? snprintf(dir, sizeof dir, "%s", bundle) < 0 : temp_bundle(dir, sizeof dir, err, err_len) < 0)) {
		free(b);
		return NULL;
	}
	rmdir(dir); /* an empty directory made for us is taken over; anything else stays and fails below */
	sbx_box_new_id(id, sizeof id);
	const char *argv[] = {agent_path, "--stdio", NULL};
	int sv[2] = {-1, -1}, ep[2] = {-1, -1};
	if (sbx_box_check_reachable(dir, err, err_len) < 0 ||
	    sbx_box_prepare(b, o, dir, id, agent_path, argv, err, err_len) < 0) {
		free(b);
		return NULL;
	}
	pid_t pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(ep, O_CLOEXEC) < 0)
		snprintf(err, err_len, "cannot create pipes for the agent: %s", strerror(errno));
	else
		pid = sbx_box_run(b, 1, sv[1], sv[1], ep[1], NULL, 0, err, err_len);
	if (sv[1] >= 0)
		close(sv[1]);
	if (ep[1] >= 0)
		close(ep[1]);
	if (pid > 0)
		sbx_loop_watch_child(loop, pid, reap_runtime, NULL);
	sbx_transport *t = pid > 0 ? sbx_fdpipe_new(loop, sv[0], sv[0], 0, ep[0], b->runtime) : NULL;
	if (!t) {
		if (pid > 0)
			snprintf(err, err_len, "out of memory");
		if (sv[0] >= 0)
			close(sv[0]);
		if (ep[0] >= 0)
			close(ep[0]);
		box_cleanup(b);
		return NULL;
	}
	sbx_fdpipe_on_close(t, box_cleanup, b);
	return t;
}
