/* loop.c — the host's single event loop on Linux epoll.
 *
 * Owns the epoll fd, the fd-indexed watcher table, the timer min-heap, the
 * deferred-call queue and the child watches built on top of them.
 *
 * Stale events: each watcher slot has a generation, bumped on unwatch and
 * stored next to the fd in the epoll data. An event whose generation no
 * longer matches its slot belongs to a removed watcher and is dropped. */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define NOT_IN_HEAP SIZE_MAX
#define CHILD_POLL_MS 50

struct watcher {
	sbx_io_cb cb;		/* NULL: slot unused */
	void *ud;
	unsigned events;	/* SBX_EV_READ | SBX_EV_WRITE */
	int in_epoll;		/* registered with the kernel */
	uint32_t gen;		/* bumped on unwatch */
};

struct sbx_timer {
	uint64_t deadline;
	uint64_t seq;		/* insertion order, breaks deadline ties */
	size_t index;		/* slot in the heap, NOT_IN_HEAP while firing */
	sbx_timer_cb cb;
	void *ud;
};

struct deferred {
	sbx_timer_cb cb;
	void *ud;
	struct deferred *next;
};

struct child {
	pid_t pid;
	int pidfd;		/* -1 when polling */
	sbx_timer *timer;	/* the polling timer, if any */
	sbx_child_cb cb;
	void *ud;
	struct child *prev, *next;
};

struct sbx_loop {
	int epfd;
	struct watcher *w;	/* indexed by fd */
	int nw;
	int nactive;		/* watchers in the epoll set */
	sbx_timer **heap;
	size_t nheap, capheap;
	uint64_t seq;
	struct deferred *dhead, *dtail;
	struct child *children;
	sbx_loop_stats stats;
	struct epoll_event events[MAX_EVENTS];
};

static void child_free(sbx_loop *loop, struct child *c);

uint64_t sbx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

sbx_loop *sbx_loop_new(void)
{
	sbx_loop *loop = calloc(1, sizeof *loop);
	int err;

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		err = errno;
		free(loop);
		errno = err;
		return NULL;
	}
	return loop;
}

static int run_deferred(sbx_loop *loop);

void sbx_loop_free(sbx_loop *loop)
{
	struct deferred *d, *next;

	if (!loop)
		return;
	/* Deferred calls are often cleanups (closing a transport): run them. */
	while (loop->dhead)
		run_deferred(loop);
	while (loop->children)
		child_free(loop, loop->children);
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	for (d = loop->dhead; d; d = next) {
		next = d->next;
		free(d);
	}
	free(loop->w);
	close(loop->epfd);
	free(loop);
}

int sbx_loop_fd(sbx_loop *loop)
{
	return loop->epfd;
}

/* ---- fd watchers ---- */

static int grow_watchers(sbx_loop *loop, int fd)
{
	int n = loop->nw ? loop->nw : 64;
	struct watcher *w;

	while (n <= fd)
		n = n > INT_MAX / 2 ? fd + 1 : n * 2;
	w = realloc(loop->w, (size_t)n * sizeof *w);
	if (!w)
		return -1;
	memset(w + loop->nw, 0, (size_t)(n - loop->nw) * sizeof *w);
	loop->w = w;
	loop->nw = n;
	return 0;
}

static void set_in_epoll(sbx_loop *loop, struct watcher *w, int on)
{
	loop->nactive += on - w->in_epoll;
	w->in_epoll = on;
}

/* Make the kernel's view of fd match `events`. Copes with an fd that was
 * closed and reopened behind our back (MOD -> ENOENT) and vice versa. */
static int epoll_apply(sbx_loop *loop, int fd, struct watcher *w,
		       unsigned events)
{
	struct epoll_event ev = { 0 };
	int op, rc;

	if (events == 0) {
		if (w->in_epoll)
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		set_in_epoll(loop, w, 0);
		return 0;
	}
	ev.events = (events & SBX_EV_READ ? EPOLLIN : 0) |
		    (events & SBX_EV_WRITE ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)w->gen << 32 | (uint32_t)fd;
	op = w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	rc = epoll_ctl(loop->epfd, op, fd, &ev);
	if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT) {
		set_in_epoll(loop, w, 0);
		rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
	} else if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST) {
		rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
	}
	if (rc == 0)
		set_in_epoll(loop, w, 1);
	return rc;
}

int sbx_loop_watch(sbx_loop *loop, int fd, unsigned events, sbx_io_cb cb,
		   void *ud)
{
	struct watcher *w;

	if (fd < 0 || !cb) {
		errno = EINVAL;
		return -1;
	}
	if (fd >= loop->nw && grow_watchers(loop, fd) < 0)
		return -1;
	events &= SBX_EV_READ | SBX_EV_WRITE;
	w = &loop->w[fd];
	if (epoll_apply(loop, fd, w, events) < 0)
		return -1;
	w->cb = cb;
	w->ud = ud;
	w->events = events;
	return 0;
}

void sbx_loop_unwatch(sbx_loop *loop, int fd)
{
	struct watcher *w;

	if (fd < 0 || fd >= loop->nw || !loop->w[fd].cb)
		return;
	w = &loop->w[fd];
	epoll_apply(loop, fd, w, 0);
	w->cb = NULL;
	w->ud = NULL;
	w->events = 0;
	w->gen++;
}

static int dispatch_io(sbx_loop *loop, int n)
{
	int ran = 0;

	for (int i = 0; i < n; i++) {
		uint64_t data = loop->events[i].data.u64;
		uint32_t kev = loop->events[i].events;
		int fd = (int)(uint32_t)data;
		struct watcher *w;
		unsigned ev = 0;

		if (fd >= loop->nw)
			continue;
		w = &loop->w[fd];
		if (!w->cb || !w->in_epoll || w->gen != (uint32_t)(data >> 32))
			continue;	/* removed or idled during this batch */
		if (kev & EPOLLIN)
			ev |= SBX_EV_READ;
		if (kev & EPOLLOUT)
			ev |= SBX_EV_WRITE;
		ev &= w->events;	/* interest may have shrunk meanwhile */
		if (kev & (EPOLLERR | EPOLLHUP))
			ev |= SBX_EV_ERROR | SBX_EV_READ;
		if (!ev)
			continue;
		w->cb(loop, fd, ev, w->ud);
		ran++;
	}
	return ran;
}

/* ---- timers: binary min-heap on (deadline, seq) ---- */

static int timer_before(const sbx_timer *a, const sbx_timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->seq < b->seq;
}

static void heap_set(sbx_loop *loop, size_t i, sbx_timer *t)
{
	loop->heap[i] = t;
	t->index = i;
}

static void sift_up(sbx_loop *loop, size_t i)
{
	sbx_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void sift_down(sbx_loop *loop, size_t i)
{
	sbx_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap &&
		    timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove(sbx_loop *loop, sbx_timer *t)
{
	size_t i = t->index;
	sbx_timer *last = loop->heap[--loop->nheap];

	t->index = NOT_IN_HEAP;
	if (last == t)
		return;
	heap_set(loop, i, last);
	sift_up(loop, i);
	sift_down(loop, last->index);
}

sbx_timer *sbx_loop_timer(sbx_loop *loop, uint64_t delay_ms, sbx_timer_cb cb,
			  void *ud)
{
	uint64_t now = sbx_now_ms();
	sbx_timer *t;

	if (loop->nheap == loop->capheap) {
		size_t cap = loop->capheap ? loop->capheap * 2 : 64;
		sbx_timer **heap = realloc(loop->heap, cap * sizeof *heap);

		if (!heap)
			return NULL;
		loop->heap = heap;
		loop->capheap = cap;
	}
	t = malloc(sizeof *t);
	if (!t)
		return NULL;
	t->deadline = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
	t->seq = loop->seq++;
	t->cb = cb;
	t->ud = ud;
	heap_set(loop, loop->nheap++, t);
	sift_up(loop, t->index);
	return t;
}

void sbx_timer_cancel(sbx_loop *loop, sbx_timer *t)
{
	if (!t || t->index == NOT_IN_HEAP)
		return;		/* firing now: run_timers frees it */
	heap_remove(loop, t);
	free(t);
}

/* Fire timers due now, but none added while doing so: a callback that
 * re-adds a 0 ms timer must not keep this loop spinning. */
static int run_timers(sbx_loop *loop)
{
	uint64_t now = sbx_now_ms();
	uint64_t first_new = loop->seq;
	int ran = 0;

	while (loop->nheap > 0) {
		sbx_timer *t = loop->heap[0];

		if (t->deadline > now || t->seq >= first_new)
			break;
		heap_remove(loop, t);
		t->cb(loop, t->ud);
		free(t);
		ran++;
	}
	loop->stats.timers_fired += (uint64_t)ran;
	loop->stats.timer_wakeups += ran > 0;
	return ran;
}

/* ---- deferred calls ---- */

void sbx_loop_defer(sbx_loop *loop, sbx_timer_cb cb, void *ud)
{
	struct deferred *d = malloc(sizeof *d);

	if (!d) {
		fputs("sbx: out of memory in sbx_loop_defer\n", stderr);
		abort();
	}
	d->cb = cb;
	d->ud = ud;
	d->next = NULL;
	if (loop->dtail)
		loop->dtail->next = d;
	else
		loop->dhead = d;
	loop->dtail = d;
}

/* Run the calls queued so far; ones they defer wait for the next round. */
static int run_deferred(sbx_loop *loop)
{
	struct deferred *d = loop->dhead;
	int ran = 0;

	loop->dhead = loop->dtail = NULL;
	while (d) {
		struct deferred *next = d->next;
		sbx_timer_cb cb = d->cb;
		void *ud = d->ud;

		free(d);
		cb(loop, ud);
		d = next;
		ran++;
	}
	return ran;
}

/* ---- running ---- */

int sbx_loop_next_timeout(sbx_loop *loop)
{
	uint64_t now, deadline;

	if (loop->dhead)
		return 0;
	if (loop->nheap == 0)
		return -1;
	now = sbx_now_ms();
	deadline = loop->heap[0]->deadline;
	if (deadline <= now)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

int sbx_loop_run_once(sbx_loop *loop, int timeout_ms)
{
	int ran = run_deferred(loop);
	int timeout = sbx_loop_next_timeout(loop);
	int n;

	loop->stats.iterations++;
	if (timeout_ms >= 0 && (timeout < 0 || timeout_ms < timeout))
		timeout = timeout_ms;
	if (ran > 0)
		timeout = 0;	/* something happened: let the caller look */
	n = epoll_wait(loop->epfd, loop->events, MAX_EVENTS, timeout);
	if (n < 0 && errno != EINTR)
		return -1;
	if (n > 0)
		ran += dispatch_io(loop, n);
	ran += run_timers(loop);
	return ran;
}

int sbx_loop_run_until(sbx_loop *loop, const int *done)
{
	while (!*done) {
		if (!loop->dhead && loop->nheap == 0 && loop->nactive == 0) {
			errno = EDEADLK;
			return -1;
		}
		if (sbx_loop_run_once(loop, -1) < 0)
			return -1;
	}
	return 0;
}

void sbx_loop_get_stats(const sbx_loop *loop, sbx_loop_stats *st)
{
	*st = loop->stats;
}

/* ---- child watches ---- */

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static void child_free(sbx_loop *loop, struct child *c)
{
	if (c->pidfd >= 0) {
		sbx_loop_unwatch(loop, c->pidfd);
		close(c->pidfd);
	}
	sbx_timer_cancel(loop, c->timer);
	if (c->prev)
		c->prev->next = c->next;
	else
		loop->children = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* Reap the child if it has exited; then forget it and tell the user.
 * Returns 1 if the child is done, 0 if it is still running. */
static int child_check(sbx_loop *loop, struct child *c)
{
	sbx_child_cb cb = c->cb;
	void *ud = c->ud;
	pid_t pid = c->pid, r;
	int status = -1;

	do
		r = waitpid(pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0)
		status = -1;	/* reaped by someone else */
	child_free(loop, c);
	cb(loop, pid, status, ud);
	return 1;
}

static void on_pidfd(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)fd;
	(void)events;
	child_check(loop, ud);
}

static void on_child_poll(sbx_loop *loop, void *ud)
{
	struct child *c = ud;

	c->timer = NULL;	/* firing; the loop frees it */
	if (child_check(loop, c))
		return;
	c->timer = sbx_loop_timer(loop, CHILD_POLL_MS, on_child_poll, c);
	if (!c->timer) {	/* out of memory: give up on this child */
		sbx_child_cb cb = c->cb;
		void *cud = c->ud;
		pid_t pid = c->pid;

		child_free(loop, c);
		cb(loop, pid, -1, cud);
	}
}

int sbx_loop_watch_child(sbx_loop *loop, pid_t pid, sbx_child_cb cb, void *ud)
{
	siginfo_t si;
	struct child *c;

	if (pid <= 0 || !cb) {
		errno = EINVAL;
		return -1;
	}
	/* Fail now, not at exit, if pid is not ours to wait for. */
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return -1;
	c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	c->pid = pid;
	c->cb = cb;
	c->ud = ud;
	c->pidfd = open_pidfd(pid);
	if (c->pidfd >= 0) {
		if (sbx_loop_watch(loop, c->pidfd, SBX_EV_READ, on_pidfd, c) < 0)
			goto fail;
	} else if (errno == ENOSYS || errno == EPERM) {
		c->timer = sbx_loop_timer(loop, CHILD_POLL_MS, on_child_poll, c);
		if (!c->timer)
			goto fail;
	} else {
		goto fail;
	}
	c->next = loop->children;
	if (c->next)
		c->next->prev = c;
	loop->children = c;
	return 0;
fail:
	if (c->pidfd >= 0) {
		int err = errno;

		close(c->pidfd);
		errno = err;
	}
	free(c);
	return -1;
}

void sbx_loop_unwatch_child(sbx_loop *loop, pid_t pid)
{
	for (struct child *c = loop->children; c; c = c->next) {
		if (c->pid == pid) {
			child_free(loop, c);
			return;
		}
	}
}
