/* throttle.c — a slow link for the benchmarks, not a benchmark itself.
 *
 *   throttle MBPS CMD [ARG...]
 *
 * Runs CMD on pipes and relays our stdin to its stdin and its stdout to
 * our stdout, each direction at most MBPS * 10^6 bytes per second (a token
 * bucket with 10 ms of burst). `throttle 40 sbx-agent --stdio` is an agent
 * behind a 40 MB/s link; `cat F | throttle 40 /bin/cat > G` is the raw
 * pipe over the same link. Exits with CMD's status. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

typedef struct relay {
	int src, dst; /* -1 once closed */
	char buf[BUF];
	size_t len, off;
	double tokens; /* bytes we may write now */
} relay;

static double rate; /* bytes per second */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void refill(relay *r, double dt)
{
	r->tokens += dt * rate;
	if (r->tokens > rate / 100)
		r->tokens = rate / 100;
}

static int done(const relay *r) { return r->dst < 0; }

/* Read if empty; write what the bucket allows; close dst after src's EOF. */
static void step(relay *r, short rev_src, short rev_dst)
{
	if (r->len == 0 && r->src >= 0 && (rev_src & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(r->src, r->buf, BUF);
		if (n > 0) {
			r->len = (size_t)n;
			r->off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(r->src);
			r->src = -1;
		}
	}
	if (r->len > 0 && r->tokens >= 1 && (rev_dst & (POLLOUT | POLLERR))) {
		size_t k = r->len < (size_t)r->tokens ? r->len : (size_t)r->tokens;
		ssize_t n = write(r->dst, r->buf + r->off, k);
		if (n > 0) {
			r->off += (size_t)n;
			r->len -= (size_t)n;
			r->tokens -= (double)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			r->len = 0; /* the reader went away: drop the rest */
			if (r->src >= 0)
				close(r->src);
			r->src = -1;
		}
	}
	if (r->src < 0 && r->len == 0 && r->dst >= 0) {
		close(r->dst);
		r->dst = -1;
	}
}

static void add(struct pollfd *p, int *n, int fd, short ev)
{
	p[*n] = (struct pollfd){.fd = fd, .events = ev};
	(*n)++;
}

int main(int argc, char **argv)
{
	if (argc < 3 || atof(argv[1]) <= 0) {
		fprintf(stderr, "usage: throttle MBPS CMD [ARG...]\n");
		return 2;
	}
	rate = atof(argv[1]) * 1e6;
	signal(SIGPIPE, SIG_IGN);
	int to_child[2], from_child[2];
	if (pipe(to_child) < 0 || pipe(from_child) < 0)
		return 2;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		close(to_child[0]);
		close(to_child[1]);
		close(from_child[0]);
		close(from_child[1]);
		execv(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	static relay up, down;
	up = (relay){.src = 0, .dst = to_child[1]};
	down = (relay){.src = from_child[0], .dst = 1};
	relay *rs[2] = {&up, &down};
	for (int i = 0; i < 2; i++) {
		fcntl(rs[i]->src, F_SETFL, fcntl(rs[i]->src, F_GETFL) | O_NONBLOCK);
		fcntl(rs[i]->dst, F_SETFL, fcntl(rs[i]->dst, F_GETFL) | O_NONBLOCK);
	}
	double last = now_s();
	while (!done(&up) || !done(&down)) {
		struct pollfd p[4];
		int n = 0, wait_ms = -1, at[2][2];
		for (int i = 0; i < 2; i++) {
			relay *r = rs[i];
			at[i][0] = at[i][1] = -1;
			if (r->len == 0 && r->src >= 0) {
				at[i][0] = n;
				add(p, &n, r->src, POLLIN);
			}
			if (r->len > 0 && r->tokens >= 1) {
				at[i][1] = n;
				add(p, &n, r->dst, POLLOUT);
			} else if (r->len > 0) {
				wait_ms = 1; /* out of tokens: come back when some accrued */
			}
			if (r->src < 0 && r->len == 0 && r->dst >= 0)
				wait_ms = 0;
		}
		if (poll(p, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
			return 2;
		double t = now_s();
		for (int i = 0; i < 2; i++) {
			refill(rs[i], t - last);
			short rs_src = at[i][0] >= 0 ? p[at[i][0]].revents : 0;
			short rs_dst = at[i][1] >= 0 ? p[at[i][1]].revents : 0;
			step(rs[i], rs_src, rs_dst);
		}
		last = t;
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return 2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
