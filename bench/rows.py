"""rows.py — what the Python benches share: a ROW line for bench/run.sh (the columns of
bench/bench.h's bench_row) and the median wall time of a command run again and again."""
import statistics
import subprocess
import time


def row(id, metric, sbx, base, ratio, target, status):
    print("\t".join(["ROW", id, metric, sbx, base, ratio, target, status]), flush=True)


def median_ms(argv, env, reps):
    """The median of reps runs of argv (whole process, stdout discarded), in ms."""
    runs = []
    for _ in range(reps):
        t0 = time.monotonic()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        runs.append((time.monotonic() - t0) * 1000)
    return statistics.median(runs)
