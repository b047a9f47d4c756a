"""loop.py — libsbx's one event loop, embedded in asyncio.

The extension owns one sbx_loop per process. Its epoll fd is added as a reader to the
running asyncio loop, and a timer wakes asyncio for libsbx's own timers (heartbeats,
deferred calls); both run one non-blocking iteration, in which libsbx completes the
asyncio futures of the calls that finished. No threads: every call is a callback.

The driver attaches as soon as a session is opened inside a running asyncio loop (not
only when a call starts) and re-arms its timer after every iteration, so an idle
session's heartbeats run and a dropped stream is redialled at once, with no call pending.

One asyncio loop drives libsbx at a time. When calls are started from another asyncio
loop while none are in flight (e.g. a new `asyncio.run`), the driver moves over; while
calls are in flight on the old loop, starting one from another loop is an error.
"""
from __future__ import annotations

import asyncio
import time

from . import _sbx


class Driver:
    """Attaches libsbx's loop to the running asyncio loop and keeps it woken."""

    def __init__(self) -> None:
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._fd = _sbx.loop_fd()
        self._waiters: list[tuple[object, asyncio.Future]] = []

    def attach(self) -> asyncio.AbstractEventLoop:
        """The running asyncio loop, now driving libsbx. Call before starting a call."""
        loop = asyncio.get_running_loop()
        if loop is self._aloop:
            return loop
        old = self._aloop
        if old is not None and not old.is_closed():
            if _sbx.inflight() > 0:
                raise RuntimeError(
                    "sbx: calls are still in flight on another asyncio event loop; libsbx's loop "
                    "is driven by one asyncio loop at a time (finish or cancel them first)")
            old.remove_reader(self._fd)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop.add_reader(self._fd, self.tick)
        self._aloop = loop
        return loop

    def watch(self) -> None:
        """A session was opened: drive libsbx from the running asyncio loop from now on.
        Outside a running loop (or while another loop has calls in flight) the first
        call attaches instead."""
        try:
            self.attach()
        except RuntimeError:
            return
        self.arm()

    def tick(self) -> None:
        """One libsbx iteration, then re-arm the timer."""
        _sbx.run_once()
        if self._waiters:
            self._check_waiters()
        self.arm()

    def arm(self) -> None:
        """Make sure asyncio wakes us when libsbx's next timer is due. Runs after every
        call start and iteration, so the common case (an earlier wake-up is already set)
        costs one C call and a comparison."""
        at = _sbx.next_deadline()  # on time.monotonic()'s clock; -1: no timer
        if at < 0 or (self._timer is not None and self._timer_at <= at + 0.0005):
            return
        loop = self._aloop
        if loop is None or loop.is_closed():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(loop.time() + (at - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.tick()

    def when_ready(self, session) -> asyncio.Future:
        """A future done when the session's agent said HELLO (or failed)."""
        loop = self.attach()
        fut = loop.create_future()
        self._waiters.append((session, fut))
        self._check_waiters()
        self.arm()
        return fut

    def _check_waiters(self) -> None:
        keep = []
        for session, fut in self._waiters:
            if fut.done():
                continue
            if session.ready:
                fut.set_result(None)
            elif session.failure is not None:
                fut.set_result(session.failure)
            else:
                keep.append((session, fut))
        self._waiters = keep


driver = Driver()
