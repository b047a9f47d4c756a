/* fdpipe.c — a transport over file descriptors (socketpair, pipes, socket).
 *
 * Reads are delivered as they arrive; writes go straight to the fd and the
 * session keeps whatever did not fit. When the pipe belongs to a child
 * process, its exit is awaited before reporting the close, so the error can
 * say how the agent (or kubectl, or ssh) ended and what it last printed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport.h"

#define ERR_TAIL 1024
#define CLOSE_GRACE_MS 200 /* how long close waits for a child to exit on EOF */

typedef struct fdpipe {
	sbx_transport t;
	int rfd, wfd, err_fd;
	pid_t child;
	int child_status, child_done;
	int eof;            /* the read side ended */
	char why[256];      /* why the pipe closed, before the child's story */
	char tail[ERR_TAIL];/* the last bytes the child wrote to stderr */
	size_t tail_len;
	int want_out;
	int reported;
	void (*cleanup)(void *ud); /* runs last in close (sbx_fdpipe_on_close) */
	void *cleanup_ud;
} fdpipe;

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ": LINE" for the last non-empty line of stderr, or "". */
static void last_words(const fdpipe *p, char *out, size_t len)
{
	out[0] = 0;
	size_t n = p->tail_len;
	while (n > 0 && (p->tail[n - 1] == '\n' || p->tail[n - 1] == '\r'))
		n--;
	size_t start = n;
	while (start > 0 && p->tail[start - 1] != '\n')
		start--;
	if (n > start)
		snprintf(out, len, ": %.*s", (int)(n - start), p->tail + start);
}

static void describe_exit(fdpipe *p, char *out, size_t len)
{
	int st = p->child_status;
	char how[64];
	if (WIFEXITED(st))
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(how, sizeof how, "ended");
	char last[300];
	last_words(p, last, sizeof last);
	snprintf(out, len, "%s; %s (pid %d) %s%s", p->why, p->t.ops->name, (int)p->child, how, last);
}

/* Reports the close once the read side ended and any child exited. */
static void maybe_report(fdpipe *p)
{
	if (p->reported || !p->eof || (p->child > 0 && !p->child_done))
		return;
	p->reported = 1;
	char why[700], last[300];
	if (p->child > 0) {
		describe_exit(p, why, sizeof why);
	} else {
		last_words(p, last, sizeof last);
		snprintf(why, sizeof why, "%s%s", p->why, last);
	}
	p->t.ev.on_closed(p->t.ud, why);
}

static void read_err(fdpipe *p)
{
	char buf[4096];
	ssize_t r;
	while ((r = read(p->err_fd, buf, sizeof buf)) > 0) {
		size_t n = (size_t)r;
		if (n >= ERR_TAIL) {
			memcpy(p->tail, buf + n - ERR_TAIL, ERR_TAIL);
			p->tail_len = ERR_TAIL;
		} else {
			if (p->tail_len + n > ERR_TAIL) {
				size_t drop = p->tail_len + n - ERR_TAIL;
				memmove(p->tail, p->tail + drop, p->tail_len - drop);
				p->tail_len -= drop;
			}
			memcpy(p->tail + p->tail_len, buf, n);
			p->tail_len += n;
		}
	}
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		sbx_loop_unwatch(p->t.loop, p->err_fd);
		close(p->err_fd);
		p->err_fd = -1;
	}
}

static void on_err_fd(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)fd;
	(void)events;
	read_err(ud);
}

static void mark_eof(fdpipe *p, const char *why)
{
	if (p->eof)
		return;
	p->eof = 1;
	snprintf(p->why, sizeof p->why, "%s", why);
	sbx_loop_unwatch(p->t.loop, p->rfd);
	if (p->wfd != p->rfd)
		sbx_loop_unwatch(p->t.loop, p->wfd);
	if (p->child > 0 && !p->child_done)
		kill(p->child, SIGTERM); /* a half-dead pipe is no use: make sure it ends */
	if (p->err_fd >= 0)
		read_err(p);
	maybe_report(p);
}

static void on_io(sbx_loop *loop, int fd, unsigned events, void *ud);

static void update_watch(fdpipe *p)
{
	if (p->eof)
		return;
	if (p->rfd == p->wfd) {
		sbx_loop_watch(p->t.loop, p->rfd, SBX_EV_READ | (p->want_out ? SBX_EV_WRITE : 0), on_io, p);
	} else {
		sbx_loop_watch(p->t.loop, p->wfd, p->want_out ? SBX_EV_WRITE : 0, on_io, p);
	}
}

static void on_io(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	fdpipe *p = ud;
	if ((events & SBX_EV_WRITE) && fd == p->wfd && !p->eof)
		p->t.ev.on_writable(p->t.ud);
	if ((events & (SBX_EV_READ | SBX_EV_ERROR)) && fd == p->rfd && !p->eof) {
		uint8_t buf[256 * 1024];
		for (int i = 0; i < 4 && !p->eof; i++) {
			ssize_t r = read(p->rfd, buf, sizeof buf);
			if (r > 0) {
				p->t.ev.on_data(p->t.ud, buf, (size_t)r);
				if ((size_t)r < sizeof buf)
					break;
			} else if (r == 0) {
				mark_eof(p, "the agent's stream ended");
			} else if (errno == EAGAIN || errno == EINTR) {
				break;
			} else {
				char why[128];
				snprintf(why, sizeof why, "reading the agent's stream failed: %s", strerror(errno));
				mark_eof(p, why);
			}
		}
	}
}

static void on_child(sbx_loop *loop, pid_t pid, int status, void *ud)
{
	(void)loop;
	(void)pid;
	fdpipe *p = ud;
	p->child_done = 1;
	p->child_status = status;
	if (p->err_fd >= 0)
		read_err(p);
	if (!p->eof)
		mark_eof(p, "the agent process ended");
	else
		maybe_report(p);
}

static long fp_write(sbx_transport *t, const uint8_t *buf, size_t n)
{
	fdpipe *p = (fdpipe *)t;
	if (p->eof)
		return -1;
	/* send() with MSG_NOSIGNAL: a closed peer must not kill the host with SIGPIPE */
	ssize_t w = send(p->wfd, buf, n, MSG_NOSIGNAL);
	if (w < 0 && errno == ENOTSOCK)
		w = write(p->wfd, buf, n);
	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	/* Broken pipe: the read side reports the close from the loop (never
	 * from inside a write, where the caller is mid-operation). */
	return -1;
}

static void fp_want_write(sbx_transport *t, int on)
{
	fdpipe *p = (fdpipe *)t;
	if (p->want_out == on)
		return;
	p->want_out = on;
	update_watch(p);
}

static void fp_close(sbx_transport *t)
{
	fdpipe *p = (fdpipe *)t;
	sbx_loop_unwatch(t->loop, p->rfd);
	close(p->rfd);
	if (p->wfd != p->rfd) {
		sbx_loop_unwatch(t->loop, p->wfd);
		close(p->wfd);
	}
	if (p->err_fd >= 0) {
		sbx_loop_unwatch(t->loop, p->err_fd);
		close(p->err_fd);
	}
	if (p->child > 0 && !p->child_done) {
		/* The agent sees EOF, abandons its transfers (removing their temp
		 * files), kills its commands and exits. Give it a moment to do so
		 * (a SIGKILL right away leaves temp files behind), then make sure.
		 * The loop's child watch is dropped with us. */
		sbx_loop_unwatch_child(t->loop, p->child);
		uint64_t until = sbx_now_ms() + CLOSE_GRACE_MS;
		pid_t r;
		while (((r = waitpid(p->child, NULL, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) &&
		       sbx_now_ms() < until)
			usleep(1000);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			kill(p->child, SIGKILL);
			waitpid(p->child, NULL, 0);
		}
	}
	if (p->cleanup)
		p->cleanup(p->cleanup_ud);
	free(p);
}

void sbx_fdpipe_on_close(sbx_transport *t, void (*cleanup)(void *ud), void *ud)
{
	fdpipe *p = (fdpipe *)t;
	p->cleanup = cleanup;
	p->cleanup_ud = ud;
}

static const sbx_transport_ops fdpipe_ops_process = {"agent process", fp_write, fp_want_write, fp_close};
static const sbx_transport_ops fdpipe_ops_socket = {"agent socket", fp_write, fp_want_write, fp_close};

sbx_transport *sbx_fdpipe_new(sbx_loop *loop, int rfd, int wfd, pid_t child, int err_fd, const char *what)
{
	fdpipe *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	(void)what;
	p->t.ops = child > 0 ? &fdpipe_ops_process : &fdpipe_ops_socket;
	p->t.loop = loop;
	p->rfd = rfd;
	p->wfd = wfd;
	p->err_fd = err_fd;
	p->child = child;
	set_nonblock(rfd);
	set_nonblock(wfd);
	if (sbx_loop_watch(loop, rfd, SBX_EV_READ, on_io, p) < 0 ||
	    (wfd != rfd && sbx_loop_watch(loop, wfd, 0, on_io, p) < 0)) {
		free(p);
		return NULL;
	}
	if (err_fd >= 0) {
		set_nonblock(err_fd);
		sbx_loop_watch(loop, err_fd, SBX_EV_READ, on_err_fd, p);
	}
	if (child > 0)
		sbx_loop_watch_child(loop, child, on_child, p);
	return &p->t;
}
