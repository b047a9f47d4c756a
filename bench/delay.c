/* delay.c — a link with a round trip for the benchmarks, not a benchmark
 * itself: a user-space stand-in for `tc netem delay` (this machine has no
 * sch_netem module).
 *
 *   delay RTT_MS LISTEN_PATH TARGET_PATH
 *
 * Listens on the unix socket LISTEN_PATH and, for each connection in turn,
 * connects to the unix socket TARGET_PATH and relays bytes both ways,
 * holding every chunk it reads for RTT_MS / 2 before writing it on, so a
 * request and its answer take RTT_MS longer. Bandwidth is whatever one
 * thread copying through sockets gives (GB/s); nothing is dropped or
 * reordered. Runs until killed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define QUEUE_MAX (256u * 1024 * 1024) /* stop reading past this much held */

typedef struct chunk {
	struct chunk *next;
	uint64_t due_ns; /* when it may be written on */
	size_t len, off;
	char data[CHUNK];
} chunk;

/* One direction: src -> (held chunks) -> dst. */
typedef struct pipe_dir {
	int src, dst;
	chunk *head, *tail;
	size_t queued;
	int src_eof; /* src said EOF; dst is shut once the queue drains */
	int done;    /* dst shut (or broken) */
} pipe_dir;

static uint64_t half_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void drop_queue(pipe_dir *d)
{
	while (d->head) {
		chunk *c = d->head;
		d->head = c->next;
		free(c);
	}
	d->tail = NULL;
	d->queued = 0;
}

/* Reads one chunk from src into the queue, stamped with its due time. */
static void read_side(pipe_dir *d)
{
	chunk *c = malloc(sizeof *c);
	if (!c) {
		d->src_eof = 1;
		return;
	}
	ssize_t n = read(d->src, c->data, CHUNK);
	if (n <= 0) {
		free(c);
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			d->src_eof = 1;
		return;
	}
	c->next = NULL;
	c->len = (size_t)n;
	c->off = 0;
	c->due_ns = now_ns() + half_ns;
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued += (size_t)n;
}

/* Writes the chunks that are due; shuts dst after src's EOF and the last chunk. */
static void write_side(pipe_dir *d)
{
	uint64_t now = now_ns();
	while (d->head && d->head->due_ns <= now) {
		chunk *c = d->head;
		ssize_t n = write(d->dst, c->data + c->off, c->len - c->off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) { /* the reader went away: drop the rest, read no more */
			drop_queue(d);
			d->done = d->src_eof = 1;
			return;
		}
		c->off += (size_t)n;
		d->queued -= (size_t)n;
		if (c->off < c->len)
			return;
		d->head = c->next;
		if (!d->head)
			d->tail = NULL;
		free(c);
	}
	if (d->src_eof && !d->head && !d->done) {
		shutdown(d->dst, SHUT_WR);
		d->done = 1;
	}
}

/* Milliseconds until the earliest held chunk is due (-1: none held). */
static int wait_ms(const pipe_dir *a, const pipe_dir *b)
{
	uint64_t due = UINT64_MAX;
	if (a->head)
		due = a->head->due_ns;
	if (b->head && b->head->due_ns < due)
		due = b->head->due_ns;
	if (due == UINT64_MAX)
		return -1;
	uint64_t now = now_ns();
	return due <= now ? 0 : (int)((due - now + 999999) / 1000000);
}

static void watch(const pipe_dir *d, struct pollfd *in, struct pollfd *out)
{
	in->fd = !d->src_eof && d->queued < QUEUE_MAX ? d->src : -1;
	in->events = POLLIN;
	out->fd = d->head && d->head->due_ns <= now_ns() ? d->dst : -1;
	out->events = POLLOUT;
}

/* Relays one connection until both directions are done. */
static void relay(int a, int b)
{
	pipe_dir up = {.src = a, .dst = b}, down = {.src = b, .dst = a};
	while (!(up.done && down.done)) {
		struct pollfd p[4];
		watch(&up, &p[0], &p[1]);
		watch(&down, &p[2], &p[3]);
		if (poll(p, 4, wait_ms(&up, &down)) < 0 && errno != EINTR)
			break;
		if (p[0].fd >= 0 && p[0].revents)
			read_side(&up);
		if (p[2].fd >= 0 && p[2].revents)
			read_side(&down);
		write_side(&up);
		write_side(&down);
	}
	drop_queue(&up);
	drop_queue(&down);
}

static int unix_socket(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path) {
		fprintf(stderr, "delay: socket path too long: %s\n", path);
		exit(2);
	}
	strcpy(sun->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: delay RTT_MS LISTEN_PATH TARGET_PATH\n");
		return 2;
	}
	half_ns = (uint64_t)(atof(argv[1]) * 1e6 / 2);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_un sun;
	int lfd = unix_socket(argv[2], &sun);
	unlink(argv[2]);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(lfd, 16) < 0) {
		fprintf(stderr, "delay: cannot listen on %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0)
			continue;
		int b = unix_socket(argv[3], &sun);
		if (b >= 0 && connect(b, (struct sockaddr *)&sun, sizeof sun) == 0) {
			fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
			fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
			relay(a, b);
		}
		else
			fprintf(stderr, "delay: cannot connect to %s: %s\n", argv[3], strerror(errno));
		close(a);
		if (b >= 0)
			close(b);
	}
}
