#!/usr/bin/env python3
"""python.py — inspect_sbx (Python over the C extension) against libsbx from C.

    5a  1,000 sequential `await sandbox.exec(["true"])` vs the same through
        sbx_exec_sync from C (bench/pyexec.c): median per call, target <= 2x.
        Run in four interleaved rounds of 250 each, so drift hits both sides.
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

ROUNDS, PER_ROUND = 4, 250
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


async def main():
    tmp = tempfile.mkdtemp(prefix="sbx-bench-py-")
    try:
        wd = os.path.join(tmp, "seq")
        os.mkdir(wd)
        sb = SbxSandbox(_sbx.session_local(wd, False), workdir=wd)
        await sb.ready()
        await py_seq(sb, 20)  # warm-up
        py, c = [], []
        for _ in range(ROUNDS):
            c += c_numbers("seq", PER_ROUND)
            py += await py_seq(sb, PER_ROUND)
        sb.close()
        mp, mc = statistics.median(py), statistics.median(c)
        q = lambda v, p: sorted(v)[int(p / 100 * (len(v) - 1))]  # noqa: E731
        print(f"exec true x{len(py)}: python median {mp:.0f} us p90 {q(py, 90):.0f} | "
              f"C median {mc:.0f} us p90 {q(c, 90):.0f}", file=sys.stderr)
        row("5a", f"{len(py)} sequential exec([\"true\"]) from Python (inspect_sbx) vs from C (libsbx), median per call",
            f"{mp:.0f} us", f"{mc:.0f} us", f"{mp / mc:.2f}x", "<= 2.00x", "PASS" if mp <= 2 * mc else "MISS")

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
