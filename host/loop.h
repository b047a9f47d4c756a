/* loop.h — the host's single event loop (Linux epoll).
 *
 * One thread, one loop. It watches fds (level-triggered), runs one-shot
 * timers, deferred calls and child-exit notifications. Every callback may
 * add or remove any watcher, timer or deferred call, including its own. */
#ifndef SBX_LOOP_H
#define SBX_LOOP_H

#include <stdint.h>
#include <sys/types.h>

typedef struct sbx_loop sbx_loop;
typedef struct sbx_timer sbx_timer;

/* Event bits. SBX_EV_ERROR stands for EPOLLERR/EPOLLHUP and always comes
 * together with SBX_EV_READ, so a reader sees EOF or the error on read(). */
enum { SBX_EV_READ = 1, SBX_EV_WRITE = 2, SBX_EV_ERROR = 4 };

typedef void (*sbx_io_cb)(sbx_loop *loop, int fd, unsigned events, void *ud);
typedef void (*sbx_timer_cb)(sbx_loop *loop, void *ud);
typedef void (*sbx_child_cb)(sbx_loop *loop, pid_t pid, int wait_status,
			     void *ud);

/* Create a loop. Returns NULL and sets errno on failure. */
sbx_loop *sbx_loop_new(void);

/* Run the deferred calls still pending (they are often cleanups), then free
 * the loop, its watchers, pending timers and child watches. User fds are
 * not closed. Must not be called from a callback. */
void sbx_loop_free(sbx_loop *loop);

/* The epoll fd. It becomes readable when watched fds have events pending,
 * so the loop can be embedded in another loop (e.g. asyncio): on readable,
 * call sbx_loop_run_once(loop, 0). Timers and deferred calls do not show
 * up on it; the host loop must also wake after sbx_loop_next_timeout(). */
int sbx_loop_fd(sbx_loop *loop);

/* Watch fd for SBX_EV_READ and/or SBX_EV_WRITE, or change the interest,
 * callback and ud of an existing watch. events == 0 keeps the watch (cb,
 * ud) but takes the fd out of the epoll set, so nothing is reported, not
 * even errors. Returns 0, or -1 with errno (e.g. EPERM for a regular file).
 * Unwatch an fd before closing it. */
int sbx_loop_watch(sbx_loop *loop, int fd, unsigned events, sbx_io_cb cb,
		   void *ud);

/* Stop watching fd. Safe from any callback: if fd has an event pending in
 * the batch being dispatched, its callback is not run, even if the same
 * fd number is watched again before the batch ends. Unknown fds: no-op. */
void sbx_loop_unwatch(sbx_loop *loop, int fd);

/* One-shot timer firing delay_ms from now. Timers with equal deadlines
 * fire in the order they were added. Returns NULL (errno ENOMEM) on
 * failure. The loop frees the timer right after its callback returns. */
sbx_timer *sbx_loop_timer(sbx_loop *loop, uint64_t delay_ms, sbx_timer_cb cb,
			  void *ud);

/* Cancel and free a pending timer. O(log n). Safe from callbacks; t may
 * be NULL. A timer that has fired is already freed: do not cancel it
 * afterwards (cancelling it from inside its own callback is a no-op). */
void sbx_timer_cancel(sbx_loop *loop, sbx_timer *t);

/* Call cb once when child pid exits, with the status from waitpid(), which
 * the loop does itself (WNOHANG). Uses a pidfd; if pidfd_open() is not
 * available (ENOSYS, or EPERM from a seccomp filter) it polls waitpid()
 * every 50 ms instead. pid must be a child of this process (else -1 with
 * ECHILD). If someone else reaps the child first, cb gets wait_status -1.
 * Returns 0, or -1 with errno. */
int sbx_loop_watch_child(sbx_loop *loop, pid_t pid, sbx_child_cb cb,
			 void *ud);

/* Forget a child watch without reaping or calling back (unknown pid: no-op). */
void sbx_loop_unwatch_child(sbx_loop *loop, pid_t pid);

/* Run cb(loop, ud) on the next loop iteration, before the loop blocks.
 * Calls run in the order they were deferred. Aborts if out of memory. */
void sbx_loop_defer(sbx_loop *loop, sbx_timer_cb cb, void *ud);

/* One iteration: run deferred calls, wait for fd events (at most
 * timeout_ms; -1 = until something happens; never blocks while deferred
 * calls or due timers exist), dispatch one batch of them, run due timers.
 * Returns the number of callbacks run, or -1 with errno on error. A signal
 * interrupting the wait is not an error. Not reentrant. */
int sbx_loop_run_once(sbx_loop *loop, int timeout_ms);

/* Run iterations until *done != 0 (checked before each one). Returns 0,
 * or -1 with errno on error; EDEADLK if nothing is left that could ever
 * wake the loop (no active fds, timers or deferred calls) while !*done. */
int sbx_loop_run_until(sbx_loop *loop, const int *done);

/* Milliseconds until the next timer is due: 0 if deferred calls or due
 * timers are waiting, -1 if there is nothing to wait for. */
int sbx_loop_next_timeout(sbx_loop *loop);

/* What the loop has done since it was made: iterations of run_once, the
 * iterations that fired at least one timer (wake-ups for timers), and the
 * timers fired. For tests and benchmarks that count wake-ups. */
typedef struct sbx_loop_stats {
	uint64_t iterations;
	uint64_t timer_wakeups;
	uint64_t timers_fired;
} sbx_loop_stats;
void sbx_loop_get_stats(const sbx_loop *loop, sbx_loop_stats *st);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t sbx_now_ms(void);

#endif
