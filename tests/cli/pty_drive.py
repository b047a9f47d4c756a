#!/usr/bin/env python3
"""pty_drive.py — runs a command on a fresh pty pair, as a user at a terminal
would: a window size, keys typed after delays, window changes; prints what
the terminal showed and exits with the command's exit code. --check-mode
exits 99 when the terminal's mode after the command differs from before
(raw mode left behind).

usage: pty_drive.py [--rows R --cols C] [--send SECS:TEXT]... [--resize SECS:R:C]...
                    [--kill SECS:SIGNO]... [--wait TEXT] [--check-mode] [--timeout SECS]
                    -- COMMAND ARG...
TEXT takes Python escapes (\\x03 is Ctrl-C)."""
import argparse
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--resize", action="append", default=[])
    ap.add_argument("--kill", action="append", default=[])
    ap.add_argument("--wait", default=None, help="timed events count from when this text is shown")
    ap.add_argument("--check-mode", action="store_true")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    events = []
    for s in a.send:
        t, text = s.split(":", 1)
        events.append((float(t), "send", text.encode().decode("unicode_escape").encode("latin-1")))
    for s in a.resize:
        t, r, c = s.split(":")
        events.append((float(t), "resize", (int(r), int(c))))
    for s in a.kill:
        t, sig = s.split(":")
        events.append((float(t), "kill", int(sig)))
    events.sort(key=lambda e: e[0])

    master, slave = os.openpty()
    set_size(slave, a.rows, a.cols)
    before = termios.tcgetattr(slave)

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(a.cmd, stdin=slave, stdout=slave, stderr=slave, preexec_fn=child_setup, close_fds=True)
    start = time.monotonic()
    t0 = None if a.wait else start
    out = bytearray()
    rc = None
    while True:
        now = time.monotonic() - start
        if t0 is None and a.wait.encode() in out:
            t0 = time.monotonic()
        since = time.monotonic() - t0 if t0 is not None else -1
        while events and since >= 0 and events[0][0] <= since:
            _, kind, arg = events.pop(0)
            if kind == "send":
                os.write(master, arg)
            elif kind == "kill":
                p.send_signal(arg)
            else:
                set_size(slave, *arg)  # the kernel sends SIGWINCH to the foreground group
        if rc is None:
            rc = p.poll()
            if rc is not None:
                end = time.monotonic() + 0.3  # what is left in the pty
        if rc is not None and time.monotonic() >= end:
            break
        if now > a.timeout:
            p.kill()
            p.wait()
            sys.stdout.write(out.decode("utf-8", "replace"))
            print("\npty_drive: timed out", file=sys.stderr)
            sys.exit(98)
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                out += os.read(master, 65536)
            except OSError:
                pass
    after = termios.tcgetattr(slave)
    sys.stdout.write(out.decode("utf-8", "replace"))
    sys.stdout.flush()
    if a.check_mode and after != before:
        print("\npty_drive: the terminal's mode was not restored", file=sys.stderr)
        sys.exit(99)
    sys.exit(rc if rc >= 0 else 128 - rc)


main()
