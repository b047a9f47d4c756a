#!/usr/bin/env python3
"""python.py — inspect_sbx (Python over the C extension) against libsbx from C.

    5a  1,000 sequential `await sandbox.exec(["true"])` vs the same through
        sbx_exec_sync from C (bench/pyexec.c): each side's per-call overhead
        above a bare process start, (median - spawn) for Python over the
        same for C, where spawn is the median of a bare posix_spawnp +
        waitpid of `true` (bench/exec.c's baseline) measured in the same
        run, alternating call by call with the C side's execs; target <= 2x. A round trip is mostly that process start, which
        both sides pay alike: the whole round trips (raw medians, in the
        details) would hide the overhead. Run in ten interleaved rounds of
        100 each, so drift hits all three alike.
    5b  500 concurrent execs of `true` across 50 local sandboxes (10 each, all in
        flight at once): wall time, median of 3, vs the C figure; target <= 2x.

Prints ROW lines for bench/run.sh (see bench/bench.h) and details on stderr.
"""
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from rows import row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
sys.path.insert(0, os.path.join(ROOT, BUILD, "python"))
C_BENCH = os.path.join(ROOT, BUILD, "bench", "pyexec")

from inspect_sbx import _sbx  # noqa: E402
from inspect_sbx.sandbox import SbxSandbox  # noqa: E402

ROUNDS, PER_ROUND = 10, 100
SESSIONS, PER_SESSION, CONC_REPS = 50, 10, 3


def c_numbers(*args):
    out = subprocess.run([C_BENCH, *map(str, args)], capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


async def py_seq(sb, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        r = await sb.exec(["true"])
        out.append((time.perf_counter_ns() - t0) / 1e3)
        if r.returncode != 0:
            raise SystemExit(f"bench: exec true failed: {r}")
    return out


async def py_conc(tmp):
    sbs = []
    for i in range(SESSIONS):
        wd = os.path.join(tmp, f"s{i}")
        os.mkdir(wd)
        sbs.append(SbxSandbox(_sbx.session_local(wd, False), workdir=wd))
    await asyncio.gather(*(s.ready() for s in sbs))
    t0 = time.perf_counter_ns()
    rs = await asyncio.gather(*(s.exec(["true"]) for s in sbs for _ in range(PER_SESSION)))
    ms = (time.perf_counter_ns() - t0) / 1e6
    for s in sbs:
        s.close()
    if not all(r.success for r in rs):
        raise SystemExit("bench: some concurrent execs failed")
    return ms


def overhead_row(py, c, sp):
    """Row 5a: per-call overhead above the bare process start, Python vs C."""
    mp, mc, ms = statistics.median(py), statistics.median(c), statistics.median(sp)
    q = lambda v, p: sorted(v)[int(p / 100 * (len(v) - 1))]  # noqa: E731
    print(f"exec true x{len(py)}: python median {mp:.0f} us p90 {q(py, 90):.0f} | "
          f"C median {mc:.0f} us p90 {q(c, 90):.0f} | bare posix_spawnp+waitpid median {ms:.0f} us "
          f"p90 {q(sp, 90):.0f}; whole round trips Python / C {mp / mc:.2f}x, Python adds {mp - mc:.0f} us "
          f"a call (the steadier figure: C's overhead above the spawn is a difference of two noisy medians)",
          file=sys.stderr)
    op, oc = mp - ms, mc - ms
    metric = (f"{len(py)} sequential exec([\"true\"]): per-call overhead above a bare process start "
              f"(median - {ms:.0f} us spawn median), Python (inspect_sbx) vs C (libsbx)")
    if oc <= 0:  # C within the spawn's noise: no ratio to take
        row("5a", metric, f"{op:.0f} us", f"{oc:.0f} us", "-", "<= 2.00x", "MISS")
        return
    row("5a", metric, f"{op:.0f} us", f"{oc:.0f} us", f"{op / oc:.2f}x", "<= 2.00x",
        "PASS" if op <= 2 * oc else "MISS")


async def main():
    tmp = tempfile.mkdtemp(prefix="sbx-bench-py-")
    try:
        wd = os.path.join(tmp, "seq")
        os.mkdir(wd)
        sb = SbxSandbox(_sbx.session_local(wd, False), workdir=wd)
        await sb.ready()
        await py_seq(sb, 20)  # warm-up
        py, c, sp = [], [], []
        for _ in range(ROUNDS):
            pairs = c_numbers("seq", PER_ROUND)  # sbx, spawn, sbx, spawn, ...
            c += pairs[0::2]
            sp += pairs[1::2]
            py += await py_seq(sb, PER_ROUND)
        sb.close()
        overhead_row(py, c, sp)

        pc, cc = [], []
        for i in range(CONC_REPS):
            cc += c_numbers("conc", SESSIONS, PER_SESSION)
            d = os.path.join(tmp, f"conc{i}")
            os.mkdir(d)
            pc.append(await py_conc(d))
        mp, mc = statistics.median(pc), statistics.median(cc)
        print(f"{SESSIONS * PER_SESSION} concurrent execs over {SESSIONS} sandboxes: python {pc} ms, C {cc} ms",
              file=sys.stderr)
        row("5b", f"{SESSIONS * PER_SESSION} concurrent exec([\"true\"]) across {SESSIONS} local sandboxes, wall "
            f"(Python vs C), median of {CONC_REPS}", f"{mp:.0f} ms", f"{mc:.0f} ms", f"{mp / mc:.2f}x", "<= 2.00x",
            "PASS" if mp <= 2 * mc else "MISS")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
