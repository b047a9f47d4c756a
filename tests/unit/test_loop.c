/* test_loop.c — unit tests for host/core/loop.c: fd watchers, timers, deferred
 * calls, child watches and embedding via sbx_loop_fd(). */
#include "loop.h"
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A record of which callbacks ran, in order. */
struct log {
	int n;
	int what[64];
	unsigned events[64];
};

static void log_add(struct log *l, int what, unsigned events)
{
	if (l->n < 64) {
		l->what[l->n] = what;
		l->events[l->n] = events;
	}
	l->n++;
}

/* ---- fd watchers ---- */

static void on_io(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	log_add(ud, fd, events);
}

static void test_pipe_readable(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	int p[2];

	CHECK(loop);
	CHECK(pipe(p) == 0);
	CHECK(sbx_loop_watch(loop, p[0], SBX_EV_READ, on_io, &log) == 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 0), 0);
	CHECK(write(p[1], "x", 1) == 1);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
	CHECK_EQ_INT(log.what[0], p[0]);
	CHECK_EQ_INT(log.events[0], SBX_EV_READ);

	/* events == 0: still watched but idle, so nothing fires. */
	CHECK(sbx_loop_watch(loop, p[0], 0, on_io, &log) == 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 0), 0);

	/* Closing the writer is reported as ERROR|READ. */
	CHECK(sbx_loop_watch(loop, p[0], SBX_EV_READ, on_io, &log) == 0);
	close(p[1]);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
	CHECK_EQ_INT(log.events[1], SBX_EV_READ | SBX_EV_ERROR);
	sbx_loop_unwatch(loop, p[0]);
	close(p[0]);
	sbx_loop_free(loop);
}

static void test_write_interest(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	int p[2];

	CHECK(pipe(p) == 0);
	CHECK(sbx_loop_watch(loop, p[1], SBX_EV_WRITE, on_io, &log) == 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
	CHECK_EQ_INT(log.what[0], p[1]);
	CHECK_EQ_INT(log.events[0], SBX_EV_WRITE);

	/* Switch the same fd to read interest: a pipe's write end never
	 * becomes readable, so nothing fires. */
	CHECK(sbx_loop_watch(loop, p[1], SBX_EV_READ, on_io, &log) == 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 0), 0);
	sbx_loop_unwatch(loop, p[1]);
	close(p[0]);
	close(p[1]);
	sbx_loop_free(loop);
}

/* Two pipes readable in the same batch; whichever callback runs first
 * reads its byte and unwatches the other's fd, so exactly one callback
 * runs. With reuse set it also watches the victim's fd number again. */
struct pair {
	int a, b;
	int calls;
	int first;		/* the fd whose callback ran */
	int reuse;
	struct log stale;	/* what the re-added watcher saw */
};

static void on_pair(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct pair *pr = ud;
	int victim = fd == pr->a ? pr->b : pr->a;
	char c;

	(void)events;
	pr->calls++;
	pr->first = fd;
	if (read(fd, &c, 1) != 1)
		pr->calls += 100;
	sbx_loop_unwatch(loop, victim);
	if (pr->reuse)
		sbx_loop_watch(loop, victim, SBX_EV_READ, on_io, &pr->stale);
}

static void run_pair(int reuse)
{
	sbx_loop *loop = sbx_loop_new();
	struct pair pr = { 0 };
	int p[2], q[2];

	CHECK(pipe(p) == 0 && pipe(q) == 0);
	pr.a = p[0];
	pr.b = q[0];
	pr.reuse = reuse;
	CHECK(write(p[1], "x", 1) == 1 && write(q[1], "y", 1) == 1);
	CHECK(sbx_loop_watch(loop, pr.a, SBX_EV_READ, on_pair, &pr) == 0);
	CHECK(sbx_loop_watch(loop, pr.b, SBX_EV_READ, on_pair, &pr) == 0);
	/* Both events come in one batch; the victim's one is stale. */
	CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
	CHECK_EQ_INT(pr.calls, 1);
	CHECK_EQ_INT(pr.stale.n, 0);
	if (reuse) {
		/* Level-triggered: the new watcher sees the byte next time. */
		CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
		CHECK_EQ_INT(pr.calls, 1);
		CHECK_EQ_INT(pr.stale.n, 1);
		CHECK_EQ_INT(pr.stale.what[0], pr.first == pr.a ? pr.b : pr.a);
	} else {
		CHECK_EQ_INT(sbx_loop_run_once(loop, 0), 0);
	}
	sbx_loop_unwatch(loop, pr.a);
	sbx_loop_unwatch(loop, pr.b);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	sbx_loop_free(loop);
}

static void test_unwatch_in_batch(void)
{
	run_pair(0);
}

static void test_rewatch_in_batch(void)
{
	run_pair(1);
}

/* Re-watch a reused fd number after close + pipe. */
static void test_reused_fd(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log old = { 0 }, new = { 0 };
	int p[2], q[2];

	CHECK(pipe(p) == 0);
	CHECK(sbx_loop_watch(loop, p[0], SBX_EV_READ, on_io, &old) == 0);
	sbx_loop_unwatch(loop, p[0]);
	close(p[0]);
	close(p[1]);
	CHECK(pipe(q) == 0);
	CHECK_EQ_INT(q[0], p[0]);	/* lowest free fd is reused */
	CHECK(sbx_loop_watch(loop, q[0], SBX_EV_READ, on_io, &new) == 0);
	CHECK(write(q[1], "z", 1) == 1);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 1000), 1);
	CHECK_EQ_INT(old.n, 0);
	CHECK_EQ_INT(new.n, 1);
	sbx_loop_unwatch(loop, q[0]);
	close(q[0]);
	close(q[1]);
	sbx_loop_free(loop);
}

/* ---- timers ---- */

struct tctx {
	struct log *log;
	int id;
	sbx_timer *victim;
};

static void on_timer(sbx_loop *loop, void *ud)
{
	struct tctx *t = ud;

	log_add(t->log, t->id, 0);
	if (t->victim)
		sbx_timer_cancel(loop, t->victim);
}

static void test_timer_order(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	struct tctx t[5] = {
		{ &log, 30, NULL }, { &log, 10, NULL }, { &log, 20, NULL },
		{ &log, 11, NULL }, { &log, 0, NULL },
	};
	uint64_t delays[5] = { 30, 10, 20, 10, 0 };
	uint64_t start = sbx_now_ms();

	for (int i = 0; i < 5; i++)
		CHECK(sbx_loop_timer(loop, delays[i], on_timer, &t[i]));
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), 0);
	while (log.n < 5)
		CHECK(sbx_loop_run_once(loop, -1) >= 0);
	CHECK(sbx_now_ms() - start >= 30);
	CHECK_EQ_INT(log.what[0], 0);
	CHECK_EQ_INT(log.what[1], 10);	/* tie: insertion order */
	CHECK_EQ_INT(log.what[2], 11);
	CHECK_EQ_INT(log.what[3], 20);
	CHECK_EQ_INT(log.what[4], 30);
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), -1);
	sbx_loop_free(loop);
}

static void test_timer_cancel_from_cb(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	struct tctx a = { &log, 1, NULL }, b = { &log, 2, NULL };
	struct tctx c = { &log, 3, NULL };
	int done = 0;

	/* a fires first and cancels b, which is due in the same round. */
	CHECK(sbx_loop_timer(loop, 5, on_timer, &a));
	b.victim = NULL;
	a.victim = sbx_loop_timer(loop, 5, on_timer, &b);
	CHECK(a.victim);
	/* c cancels itself: a no-op, the loop frees it. */
	c.victim = sbx_loop_timer(loop, 1, on_timer, &c);
	CHECK(c.victim);
	/* A timer cancelled before it fires never runs. */
	sbx_timer_cancel(loop, sbx_loop_timer(loop, 2, on_timer, &b));
	sbx_timer_cancel(loop, NULL);
	while (sbx_loop_next_timeout(loop) >= 0)
		CHECK(sbx_loop_run_once(loop, -1) >= 0);
	CHECK_EQ_INT(log.n, 2);
	CHECK_EQ_INT(log.what[0], 3);
	CHECK_EQ_INT(log.what[1], 1);
	CHECK_EQ_INT(sbx_loop_run_until(loop, &done), -1);
	CHECK_EQ_INT(errno, EDEADLK);
	sbx_loop_free(loop);
}

#define NTIMERS 10000

struct many {
	uint64_t last_deadline;
	uint64_t slack;		/* ms the clock moved while adding timers */
	int fired;
	int out_of_order;
	int early;
};

struct many_timer {
	struct many *m;
	uint64_t deadline;
	sbx_timer *t;
};

static void on_many(sbx_loop *loop, void *ud)
{
	struct many_timer *mt = ud;

	(void)loop;
	if (mt->deadline + mt->m->slack < mt->m->last_deadline)
		mt->m->out_of_order++;
	if (sbx_now_ms() < mt->deadline)
		mt->m->early++;
	mt->m->last_deadline = mt->deadline;
	mt->m->fired++;
	mt->t = NULL;
}

static void test_many_timers(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct many m = { 0 };
	struct many_timer *mt = calloc(NTIMERS, sizeof *mt);
	uint64_t now = sbx_now_ms();
	int cancelled = 0;

	CHECK(mt);
	for (int i = 0; i < NTIMERS; i++) {
		uint64_t delay = (uint64_t)(i * 7919) % 50;

		mt[i].m = &m;
		mt[i].deadline = now + delay;
		mt[i].t = sbx_loop_timer(loop, delay, on_many, &mt[i]);
		CHECK(mt[i].t);
	}
	m.slack = sbx_now_ms() - now;
	for (int i = 0; i < NTIMERS; i += 3) {
		sbx_timer_cancel(loop, mt[i].t);
		mt[i].t = NULL;
		cancelled++;
	}
	while (sbx_loop_next_timeout(loop) >= 0)
		CHECK(sbx_loop_run_once(loop, -1) >= 0);
	CHECK_EQ_INT(m.fired, NTIMERS - cancelled);
	CHECK_EQ_INT(m.out_of_order, 0);
	CHECK_EQ_INT(m.early, 0);
	free(mt);
	/* Pending timers are freed by sbx_loop_free. */
	for (int i = 0; i < 1000; i++)
		CHECK(sbx_loop_timer(loop, 60000 + (uint64_t)i, on_many, NULL));
	sbx_loop_free(loop);
}

static void on_count(sbx_loop *loop, void *ud)
{
	(void)loop;
	(*(int *)ud)++;
}

/* One round of test_stats_shared_deadline: 5000 timers aimed at one
 * grid slot, run to the end; the loop's stats and the firings. */
static void shared_deadline_round(sbx_loop_stats *st, int *fired)
{
	sbx_loop *loop = sbx_loop_new();
	*fired = 0;
	/* a 1000 ms grid slot that starts at least 20 ms from now */
	uint64_t slot = (sbx_now_ms() + 20 + 999) / 1000 * 1000;
	for (int i = 0; i < 5000; i++)
		CHECK(sbx_loop_timer(loop, slot - sbx_now_ms(), on_count, fired));
	while (sbx_loop_next_timeout(loop) >= 0)
		CHECK(sbx_loop_run_once(loop, -1) >= 0);
	sbx_loop_get_stats(loop, st);
	sbx_loop_free(loop);
}

/* Timers due at the same moment fire in one wake-up, however many there
 * are; the stats count iterations, timer wake-ups and firings. The test
 * and the loop read the clock apart, so a millisecond can tick between
 * them and put one timer a slot later (two wake-ups, seen once under
 * ASan): up to three rounds, the last one judged. */
static void test_stats_shared_deadline(void)
{
	sbx_loop_stats st;
	int fired = 0;
	for (int round = 0; round < 3; round++) {
		shared_deadline_round(&st, &fired);
		if (st.timer_wakeups == 1)
			break;
	}
	CHECK_EQ_INT(fired, 5000);
	CHECK_EQ_INT((int)st.timers_fired, 5000);
	CHECK_EQ_INT((int)st.timer_wakeups, 1);
	CHECK(st.iterations >= 1);
}

/* ---- child watches ---- */

struct child_result {
	pid_t pid;
	int status;
	int calls;
	int done;
};

static void on_child(sbx_loop *loop, pid_t pid, int status, void *ud)
{
	struct child_result *r = ud;

	(void)loop;
	r->pid = pid;
	r->status = status;
	r->calls++;
	r->done = 1;
}

static void test_child_exit(void)
{
	/* Fork first: the child then owns nothing a leak checker could
	 * count against its exit status. */
	pid_t pid = fork();
	struct child_result r = { 0 };
	sbx_loop *loop;

	CHECK(pid >= 0);
	if (pid == 0)
		_exit(7);
	loop = sbx_loop_new();
	CHECK(loop);
	CHECK(sbx_loop_watch_child(loop, pid, on_child, &r) == 0);
	CHECK(sbx_loop_run_until(loop, &r.done) == 0);
	CHECK_EQ_INT(r.calls, 1);
	CHECK_EQ_INT(r.pid, pid);
	CHECK(WIFEXITED(r.status));
	CHECK_EQ_INT(WEXITSTATUS(r.status), 7);
	/* Reaped by the loop, and nothing is left behind. */
	CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), -1);
	CHECK(sbx_loop_watch_child(loop, pid, on_child, &r) < 0);
	sbx_loop_free(loop);
}

static void test_child_killed(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct child_result r = { 0 };
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECK(sbx_loop_watch_child(loop, pid, on_child, &r) == 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 20), 0);	/* still running */
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(sbx_loop_run_until(loop, &r.done) == 0);
	CHECK_EQ_INT(r.calls, 1);
	CHECK(WIFSIGNALED(r.status));
	CHECK_EQ_INT(WTERMSIG(r.status), SIGKILL);
	sbx_loop_free(loop);
}

/* A watch on a live child is released by sbx_loop_free. */
static void test_child_free_pending(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct child_result r = { 0 };
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECK(sbx_loop_watch_child(loop, pid, on_child, &r) == 0);
	sbx_loop_free(loop);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_EQ_INT(r.calls, 0);
}

/* ---- deferred calls and running ---- */

struct dctx {
	struct log *log;
	int id;
	int again;		/* defer another call from inside this one */
	int *done;
};

static void on_defer(sbx_loop *loop, void *ud)
{
	struct dctx *d = ud;

	log_add(d->log, d->id, 0);
	if (d->again) {
		d->again--;
		sbx_loop_defer(loop, on_defer, d);
	}
	if (d->done)
		*d->done = 1;
}

static void test_defer(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	struct dctx a = { &log, 1, 1, NULL }, b = { &log, 2, 0, NULL };
	struct dctx c = { &log, 3, 0, NULL };
	uint64_t start = sbx_now_ms();

	sbx_loop_defer(loop, on_defer, &a);
	sbx_loop_defer(loop, on_defer, &b);
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), 0);
	/* Must not block although -1 was asked and no fd is ready. */
	CHECK_EQ_INT(sbx_loop_run_once(loop, -1), 2);
	CHECK_EQ_INT(log.n, 2);
	CHECK_EQ_INT(log.what[0], 1);
	CHECK_EQ_INT(log.what[1], 2);
	/* a deferred itself again: that runs next round, not in the first. */
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), 0);
	CHECK_EQ_INT(sbx_loop_run_once(loop, -1), 1);
	CHECK_EQ_INT(log.what[2], 1);
	CHECK_EQ_INT(sbx_loop_next_timeout(loop), -1);
	CHECK(sbx_now_ms() - start < 1000);
	/* Pending deferred calls (often cleanups) run in sbx_loop_free. */
	sbx_loop_defer(loop, on_defer, &c);
	sbx_loop_free(loop);
	CHECK_EQ_INT(log.n, 4);
	CHECK_EQ_INT(log.what[3], 3);
}

static void on_set_done(sbx_loop *loop, void *ud)
{
	(void)loop;
	*(int *)ud = 1;
}

static void on_tick(sbx_loop *loop, void *ud)
{
	int *ticks = ud;

	if (++*ticks < 5)
		sbx_loop_timer(loop, 1, on_tick, ticks);
}

static void test_run_until(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	int done = 0, ticks = 0;
	struct dctx d = { &log, 1, 0, &done };
	int p[2];

	/* Timers keep the loop going; a deferred call ends it. */
	CHECK(sbx_loop_timer(loop, 1, on_tick, &ticks));
	CHECK(sbx_loop_timer(loop, 20, on_set_done, &done));
	CHECK_EQ_INT(sbx_loop_run_until(loop, &done), 0);
	CHECK_EQ_INT(ticks, 5);

	done = 0;
	sbx_loop_defer(loop, on_defer, &d);
	CHECK_EQ_INT(sbx_loop_run_until(loop, &done), 0);
	CHECK_EQ_INT(log.n, 1);

	/* An idle fd alone cannot wake the loop. */
	done = 0;
	CHECK(pipe(p) == 0);
	CHECK(sbx_loop_watch(loop, p[0], 0, on_io, &log) == 0);
	CHECK_EQ_INT(sbx_loop_run_until(loop, &done), -1);
	CHECK_EQ_INT(errno, EDEADLK);
	sbx_loop_unwatch(loop, p[0]);
	close(p[0]);
	close(p[1]);
	sbx_loop_free(loop);
}

static void test_loop_fd_readable(void)
{
	sbx_loop *loop = sbx_loop_new();
	struct log log = { 0 };
	struct pollfd pfd;
	int p[2];

	CHECK(pipe(p) == 0);
	CHECK(sbx_loop_watch(loop, p[0], SBX_EV_READ, on_io, &log) == 0);
	pfd.fd = sbx_loop_fd(loop);
	pfd.events = POLLIN;
	CHECK_EQ_INT(poll(&pfd, 1, 0), 0);
	CHECK(write(p[1], "x", 1) == 1);
	CHECK_EQ_INT(poll(&pfd, 1, 1000), 1);
	CHECK(pfd.revents & POLLIN);
	CHECK_EQ_INT(sbx_loop_run_once(loop, 0), 1);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_EQ_INT(poll(&pfd, 1, 0), 0);
	sbx_loop_unwatch(loop, p[0]);
	close(p[0]);
	close(p[1]);
	sbx_loop_free(loop);
}

int main(void)
{
	RUN(test_pipe_readable);
	RUN(test_write_interest);
	RUN(test_unwatch_in_batch);
	RUN(test_rewatch_in_batch);
	RUN(test_reused_fd);
	RUN(test_timer_order);
	RUN(test_timer_cancel_from_cb);
	RUN(test_many_timers);
	RUN(test_stats_shared_deadline);
	RUN(test_child_exit);
	RUN(test_child_killed);
	RUN(test_child_free_pending);
	RUN(test_defer);
	RUN(test_run_until);
	RUN(test_loop_fd_readable);
	return test_summary();
}
