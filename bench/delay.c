/* delay.c — a link with a round trip for the benchmarks, not a benchmark
 * itself: a user-space stand-in for `tc netem delay` (this machine has no
 * sch_netem module).
 *
 *   delay RTT_MS LISTEN TARGET
 *
 * LISTEN and TARGET are each a unix socket path or tcp:HOST:PORT. Listens
 * on LISTEN and, for each connection in turn, connects to TARGET and relays
 * bytes both ways, holding every chunk it reads for RTT_MS / 2 before
 * writing it on, so a request and its answer take RTT_MS longer. Bytes pass
 * untouched (TLS goes through as it is). Listening on tcp:HOST:0 takes a
 * free port and prints "PORT N" on stdout. Bandwidth is whatever one thread
 * copying through sockets gives (GB/s); nothing is dropped or reordered.
 * Runs until killed. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* A socket address from "tcp:HOST:PORT" or a unix path; exits when bad. */
typedef struct address {
	struct sockaddr_storage sa;
	socklen_t len;
	int tcp;
} address;

static void parse_address(const char *text, address *a)
{
	memset(a, 0, sizeof *a);
	if (strncmp(text, "tcp:", 4) != 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;
		if (strlen(text) >= sizeof sun->sun_path) {
			fprintf(stderr, "delay: socket path too long: %s\n", text);
			exit(2);
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, text);
		a->len = sizeof *sun;
		return;
	}
	char host[256];
	const char *port = strrchr(text + 4, ':');
	if (!port || (size_t)(port - text - 4) >= sizeof host) {
		fprintf(stderr, "delay: not tcp:HOST:PORT: %s\n", text);
		exit(2);
	}
	snprintf(host, sizeof host, "%.*s", (int)(port - text - 4), text + 4);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, port + 1, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "delay: %s: %s\n", text, gai_strerror(rc));
		exit(2);
	}
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	a->tcp = 1;
	freeaddrinfo(res);
}

static int new_socket(const address *a)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0 && a->tcp) /* each chunk goes when due, not when Nagle lets it */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static int port_of(const struct sockaddr_storage *sa)
{
	return ntohs(sa->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
					       : ((const struct sockaddr_in *)sa)->sin_port);
}

/* Prints "PORT N" when a tcp listener was asked for a free port (port 0). */
static void say_port(int lfd, const address *a)
{
	address got = {.len = sizeof got.sa};
	if (!a->tcp || port_of(&a->sa) != 0 || getsockname(lfd, (struct sockaddr *)&got.sa, &got.len) < 0)
		return;
	printf("PORT %d\n", port_of(&got.sa));
	fflush(stdout);
}

static int listen_on(const address *a)
{
	int one = 1, fd = new_socket(a);
	if (fd < 0)
		return -1;
	if (a->tcp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	else
		unlink(((const struct sockaddr_un *)&a->sa)->sun_path);
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	say_port(fd, a);
	return fd;
}

static void set_nonblocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: delay RTT_MS LISTEN TARGET (each a unix path or tcp:HOST:PORT)\n");
		return 2;
	}
	half_ns = (uint64_t)(atof(argv[1]) * 1e6 / 2);
	signal(SIGPIPE, SIG_IGN);
	address from, to;
	parse_address(argv[2], &from);
	parse_address(argv[3], &to);
	int lfd = listen_on(&from);
	if (lfd < 0) {
		fprintf(stderr, "delay: cannot listen on %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0)
			continue;
		int b = new_socket(&to);
		if (b >= 0 && connect(b, (const struct sockaddr *)&to.sa, to.len) == 0) {
			int one = 1;
			if (from.tcp)
				setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			set_nonblocking(a);
			set_nonblocking(b);
			relay(a, b);
		}
		else
			fprintf(stderr, "delay: cannot connect to %s: %s\n", argv[3], strerror(errno));
		close(a);
		if (b >= 0)
			close(b);
	}
}
