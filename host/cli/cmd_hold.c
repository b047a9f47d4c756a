/* cmd_hold.c — `sbx hold NAME/SVC` (internal; started by `sbx up`, see
 * hold.c): one service's connection holder, like ssh's ControlMaster.
 *
 * Dials the service's agent once through its backend's connect (any
 * backend with `held`: k8s, ec2), then listens on
 * STATE/NAME/hold/SVC.sock (born 0600 under umask 077, in a 0700
 * directory) and joins each connection there to a new connection to the
 * agent (sbx_forward_open with agent set): every CLI call runs its own
 * session, handshake included, over the one held connection. The held
 * session re-dials by itself (a resumed or new SSM session, a new exec
 * stream); the calls forwarded at that moment drop and their CLI sessions
 * reconnect here (hold.c). Exits on
 * TERM/INT/HUP (`sbx down`), when the session dies for good, or after
 * SBX_HOLD_IDLE seconds (default 600) with no call; removes its socket
 * and pidfile on the way out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define HOLD_IDLE_S 600   /* default idle time before the holder exits */
#define HOLD_TICK_MS 1000 /* how often health and idleness are checked */

typedef struct holder {
	sbx_loop *loop;
	sbx_session *s;
	int listen_fd;
	int active;          /* connections being forwarded */
	uint64_t idle_ms, last_ms;
	int done;
} holder;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_done(void *ud, const sbx_forward_result *r)
{
	holder *h = ud;
	h->active--;
	h->last_ms = now_ms();
	if (r->error.status != SBX_OK && !h->done)
		fprintf(stderr, "sbx hold: a forwarded call ended: %s\n", r->error.message);
}

static void on_accept(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	holder *h = ud;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	sbx_forward_opts o = {.agent = 1, .fd = c, .on_done = on_done, .ud = h};
	sbx_error err;
	h->last_ms = now_ms();
	if (sbx_forward_open(h->s, &o, &err))
		h->active++;
	else
		fprintf(stderr, "sbx hold: cannot forward a call: %s\n", err.message);
}

static void tick(sbx_loop *loop, void *ud)
{
	holder *h = ud;
	const sbx_error *e = sbx_session_failure(h->s);
	if (e) {
		fprintf(stderr, "sbx hold: lost the sandbox: %s\n", e->message);
		h->done = 1;
		return;
	}
	if (h->active == 0 && now_ms() - h->last_ms >= h->idle_ms) {
		fprintf(stderr, "sbx hold: idle for %llu s: exiting\n", (unsigned long long)(h->idle_ms / 1000));
		h->done = 1;
		return;
	}
	sbx_loop_timer(loop, HOLD_TICK_MS, tick, h);
}

/* The socket, owner-only from birth (umask 077 at bind: no window). */
static int listen_private(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(077);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static uint64_t idle_from_env(void)
{
	const char *v = getenv("SBX_HOLD_IDLE");
	char *end;
	double s = v && *v ? strtod(v, &end) : HOLD_IDLE_S;
	if (v && *v && (*end || s <= 0 || s > 86400 * 365))
		s = HOLD_IDLE_S;
	return (uint64_t)(s * 1000);
}

/* `sbx up` waits on SBX_HOLD_READY_FD (hold.c): one byte, then closed. */
static void tell_ready(void)
{
	const char *v = getenv("SBX_HOLD_READY_FD");
	int fd = v && *v ? atoi(v) : -1;
	if (fd < 3)
		return;
	if (write(fd, "1", 1) < 0) { /* `sbx up` gave up waiting: nothing to tell */
	}
	close(fd);
	unsetenv("SBX_HOLD_READY_FD");
}

static int serve(holder *h, const cli_sandbox *sb, const char *svc)
{
	char sock[4200], pidfile[4200], err[512];
	if (cli_hold_dir(sb) < 0) {
		fprintf(stderr, "sbx hold: cannot make %s/hold private\n", sb->dir);
		return EXIT_SBX_ERROR;
	}
	cli_hold_path(sb, svc, "sock", sock, sizeof sock);
	cli_hold_path(sb, svc, "pid", pidfile, sizeof pidfile);
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (cli_write_file(pidfile, pid, (size_t)n, err, sizeof err) < 0) {
		fprintf(stderr, "sbx hold: %s\n", err);
		return EXIT_SBX_ERROR;
	}
	h->listen_fd = listen_private(sock);
	if (h->listen_fd < 0) {
		fprintf(stderr, "sbx hold: cannot listen on %s: %s\n", sock, strerror(errno));
		unlink(pidfile);
		return EXIT_SBX_ERROR;
	}
	sbx_loop_watch(h->loop, h->listen_fd, SBX_EV_READ, on_accept, h);
	tell_ready();
	int sfd = cli_watch_stop_signals(h->loop, &h->done);
	h->last_ms = now_ms();
	sbx_loop_timer(h->loop, HOLD_TICK_MS, tick, h);
	sbx_loop_run_until(h->loop, &h->done);
	unlink(sock);
	unlink(pidfile);
	sbx_loop_unwatch(h->loop, h->listen_fd);
	close(h->listen_fd);
	cli_unwatch_stop_signals(h->loop, sfd);
	return 0;
}

int cmd_hold(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		cli_say(stderr, "usage: sbx hold NAME/SERVICE  (internal: started by `sbx up`)\n");
		return EXIT_USAGE;
	}
	const char *ready = getenv("SBX_HOLD_READY_FD");
	if (ready && atoi(ready) >= 3) /* not for the transport's children (kubectl) */
		fcntl(atoi(ready), F_SETFD, FD_CLOEXEC);
	holder h = {.idle_ms = idle_from_env(), .listen_fd = -1};
	h.loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	h.s = cli_connect_direct(h.loop, argv[1], &sb, &svc);
	int rc = h.s ? serve(&h, &sb, svc) : EXIT_SBX_ERROR;
	if (h.s)
		cli_disconnect(h.loop, h.s);
	sbx_loop_free(h.loop);
	return rc;
}
