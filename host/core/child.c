/* child.c — a command run to completion on the loop: its stdout kept (up to
 * a limit), the tail of its stderr kept for error messages, a timeout that
 * kills its whole process group. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "child.h"
#include "transport/transport.h"

#define STDERR_TAIL 4000
#define DEFAULT_MAX_OUT (1u << 20)

struct sbx_child {
	sbx_loop *loop;
	sbx_child_opts o;
	pid_t pid;
	int out_fd, err_fd;
	sbx_buf out, errs;
	sbx_timer *timer;
	int timed_out;
	int out_truncated;
};

static void drain(sbx_child *c, int *fd, sbx_buf *b)
{
	char chunk[16384];
	while (*fd >= 0) {
		ssize_t n = read(*fd, chunk, sizeof chunk);
		if (n > 0) {
			size_t keep = (size_t)n;
			if (b == &c->out && sbx_buf_size(b) + keep > c->o.max_out) {
				keep = c->o.max_out - sbx_buf_size(b); /* read on to EOF, keep no more */
				c->out_truncated = 1;
			}
			if (keep && sbx_buf_append(b, chunk, keep) < 0)
				abort();
			if (b == &c->errs && sbx_buf_size(b) > STDERR_TAIL)
				sbx_buf_consume(b, sbx_buf_size(b) - STDERR_TAIL);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		sbx_loop_unwatch(c->loop, *fd); /* EOF or error */
		close(*fd);
		*fd = -1;
	}
}

static void on_output(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	sbx_child *c = ud;
	if (fd == c->out_fd)
		drain(c, &c->out_fd, &c->out);
	else
		drain(c, &c->err_fd, &c->errs);
}

static void on_timeout(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_child *c = ud;
	c->timer = NULL;
	c->timed_out = 1;
	kill(-c->pid, SIGKILL);
}

static void release(sbx_child *c)
{
	if (c->timer)
		sbx_timer_cancel(c->loop, c->timer);
	for (int *fd = &c->out_fd; fd; fd = fd == &c->out_fd ? &c->err_fd : NULL)
		if (*fd >= 0) {
			sbx_loop_unwatch(c->loop, *fd);
			close(*fd);
		}
	sbx_buf_free(&c->out);
	sbx_buf_free(&c->errs);
	free(c);
}

/* NUL-terminates b (the terminator is not counted) and cuts trailing newlines. */
static const char *as_text(sbx_buf *b, int trim)
{
	if (sbx_buf_append(b, "", 1) < 0)
		abort();
	char *s = (char *)sbx_buf_head(b);
	size_t n = sbx_buf_size(b) - 1;
	while (trim && n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
	return s;
}

static void on_exit_status(sbx_loop *loop, pid_t pid, int status, void *ud)
{
	(void)loop;
	(void)pid;
	sbx_child *c = ud;
	/* What it wrote is in the pipes: read it now (a grandchild may hold
	 * the pipes open, so do not wait for EOF). */
	drain(c, &c->out_fd, &c->out);
	drain(c, &c->err_fd, &c->errs);
	size_t out_len = sbx_buf_size(&c->out);
	sbx_child_result r = {.timed_out = c->timed_out, .out_len = out_len, .out_truncated = c->out_truncated};
	r.exit_code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r.out = as_text(&c->out, 0);
	r.err = as_text(&c->errs, 1);
	c->o.on_done(c->o.ud, &r);
	release(c);
}

sbx_child *sbx_child_run(sbx_loop *loop, const sbx_child_opts *o, char *err, size_t err_len)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC), out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (null < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, err_len, "cannot start %s: %s", o->argv[0], strerror(errno));
		int fds[] = {null, out[0], out[1], errp[0], errp[1]};
		for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return NULL;
	}
	sbx_spawn_opts so = {.argv = o->argv, .envp = o->envp};
	pid_t pid = sbx_spawn_process(&so, null, out[1], errp[1], err, err_len);
	close(null);
	close(out[1]);
	close(errp[1]);
	if (pid < 0) {
		close(out[0]);
		close(errp[0]);
		return NULL;
	}
	sbx_child *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	*c = (sbx_child){.loop = loop, .o = *o, .pid = pid, .out_fd = out[0], .err_fd = errp[0]};
	if (!c->o.max_out)
		c->o.max_out = DEFAULT_MAX_OUT;
	c->o.argv = NULL; /* not ours to keep */
	c->o.envp = NULL;
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	if (sbx_loop_watch(loop, out[0], SBX_EV_READ, on_output, c) < 0 ||
	    sbx_loop_watch(loop, errp[0], SBX_EV_READ, on_output, c) < 0 ||
	    sbx_loop_watch_child(loop, pid, on_exit_status, c) < 0) {
		snprintf(err, err_len, "cannot watch %s: %s", o->argv[0], strerror(errno));
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		release(c);
		return NULL;
	}
	if (o->timeout_ms > 0)
		c->timer = sbx_loop_timer(loop, (uint64_t)o->timeout_ms, on_timeout, c);
	return c;
}

void sbx_child_cancel(sbx_child *c)
{
	if (!c)
		return;
	kill(-c->pid, SIGKILL);
	sbx_loop_unwatch_child(c->loop, c->pid);
	waitpid(c->pid, NULL, 0); /* killed: it goes at once */
	release(c);
}

void sbx_child_describe(const sbx_child_result *r, int timeout_ms, char *out, size_t len)
{
	if (r->timed_out)
		snprintf(out, len, "did not finish within %d s and was killed", (timeout_ms + 999) / 1000);
	else if (r->exit_code < 0)
		snprintf(out, len, "ended with an unknown status");
	else if (r->exit_code > 128)
		snprintf(out, len, "was killed by signal %d", r->exit_code - 128);
	else if (r->exit_code == 127 && strstr(r->err, "No such file"))
		snprintf(out, len, "could not be run (command not found)");
	else
		snprintf(out, len, "exited with status %d", r->exit_code);
}
