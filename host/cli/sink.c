/* sink.c — where `sbx exec` puts the command's stdout and stderr: our own
 * fds 1 and 2, byte-exact, at the pace the reader takes them.
 *
 * The exec runs with manual credit (sbx.h): the agent gets credit back
 * only for bytes written to our fd, so a slow reader (a pager, a stalled
 * pipe) makes the command block on its pipe instead of this process
 * buffering its output. A blocking fd simply blocks us in write(); a
 * non-blocking one that fills up keeps the rest (at most one window) and
 * is written when the loop says it can take more. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "sink.h"

/* Writes what fd takes now; the bytes written. *broken on a hard error. */
static size_t write_some(int fd, const uint8_t *p, size_t n, int *broken)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) { /* the reader is gone: drop the output (the caller cancels) */
			*broken = 1;
			return n;
		}
		done += (size_t)w;
	}
	return done;
}

static void credit(cli_sink *k, size_t n)
{
	if (k->call && n)
		sbx_call_consumed(k->call, n);
}

static void on_writable(sbx_loop *loop, int fd, unsigned events, void *ud);

/* The reader is gone: nothing more is written, the owner is told once. */
static void break_sink(cli_sink *k)
{
	if (k->broken)
		return;
	k->broken = 1;
	for (int fd = 1; fd <= 2; fd++)
		sbx_buf_consume(&k->pending[fd], sbx_buf_size(&k->pending[fd]));
	if (k->on_broken)
		k->on_broken(k->ud);
}

/* Writes fd's pending bytes; watches fd while some remain. */
static void flush_fd(cli_sink *k, int fd)
{
	sbx_buf *b = &k->pending[fd];
	int broken = 0;
	size_t n = write_some(fd, sbx_buf_head(b), sbx_buf_size(b), &broken);
	sbx_buf_consume(b, n);
	credit(k, n);
	if (broken)
		break_sink(k);
	int want = sbx_buf_size(b) > 0;
	if (want != k->watching[fd]) {
		if (want)
			sbx_loop_watch(k->loop, fd, SBX_EV_WRITE, on_writable, k);
		else
			sbx_loop_unwatch(k->loop, fd);
		k->watching[fd] = want;
	}
}

static void on_writable(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	flush_fd(ud, fd);
}

void cli_sink_init(cli_sink *k, sbx_loop *loop)
{
	*k = (cli_sink){.loop = loop};
}

void cli_sink_output(cli_sink *k, int fd, const uint8_t *p, size_t n)
{
	fd = fd == 1 ? 1 : 2;
	if (k->broken)
		return;
	sbx_buf *b = &k->pending[fd];
	if (sbx_buf_size(b) == 0) { /* nothing waiting: straight out */
		int broken = 0;
		size_t w = write_some(fd, p, n, &broken);
		credit(k, w);
		if (broken) {
			break_sink(k);
			return;
		}
		p += w;
		n -= w;
	}
	if (n == 0)
		return;
	sbx_buf_append(b, p, n); /* bounded: the agent has no credit for more */
	flush_fd(k, fd);
}

void cli_sink_drain(cli_sink *k)
{
	k->call = NULL;
	for (int fd = 1; fd <= 2; fd++) {
		sbx_buf *b = &k->pending[fd];
		while (sbx_buf_size(b) > 0 && !k->broken) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, -1);
			int broken = 0;
			sbx_buf_consume(b, write_some(fd, sbx_buf_head(b), sbx_buf_size(b), &broken));
			if (broken)
				k->broken = 1;
		}
		if (k->watching[fd])
			sbx_loop_unwatch(k->loop, fd);
		k->watching[fd] = 0;
		sbx_buf_free(b);
	}
}
