"""ec2_cli.py — `sbx exec BOX -- true` on an EC2 sandbox (moto + the SSM emulator) through
its connection holder, next to the same CLI exec on a sandbox made with --no-holder.

    python3 bench/ec2_cli.py [REPS]     (bench/run.sh runs it; SBX_BIN, default build/sbx)

Starts moto and the SSM emulator --boot through tests/aws/awsfixture.py (each instance booted
from its user data in namespaces of its own: needs root), `sbx up --backend ec2` twice (one
with the holder `up` starts, one with --no-holder), then times REPS runs of each CLI exec
(median, whole process). Row e3 (info): held vs a new SSM session per call (StartSession,
data channel, agent handshake). Emulator-bound: on AWS a StartSession and its WebSocket
cost a round trip or more to the service each, which the emulator on loopback does not.

Prints ROW lines for bench/run.sh (see bench/bench.h) and details on stderr.
"""
import os
import subprocess
import sys

from rows import median_ms, row

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "aws"))
import awsfixture  # noqa: E402

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SBX = os.path.abspath(os.environ.get("SBX_BIN") or os.path.join(os.environ.get("BUILD", "build"), "sbx"))
METRIC = "CLI exec -- true: EC2 through the holder vs --no-holder (moto + emulator; emulator-bound)"


def main():
    if os.geteuid() != 0:
        row("e3", METRIC + ": needs root (booted instances)", "-", "-", "-", "-", "info")
        return
    aws = awsfixture.Aws()
    env = dict(aws.clean_environ(), SBX_STATE_DIR=aws.tmp + "/state")
    os.makedirs(env["SBX_STATE_DIR"])
    try:
        for argv in (["up", "held", "--backend", "ec2"], ["up", "dial", "--backend", "ec2", "--no-holder"]):
            subprocess.run([SBX] + argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        held = median_ms([SBX, "exec", "held", "--", "true"], env, REPS)
        dial = median_ms([SBX, "exec", "dial", "--", "true"], env, REPS)
        row("e3", METRIC, "%.2f ms" % held, "%.2f ms" % dial, "%.1fx" % (dial / held), "-", "info")
        sys.stderr.write("medians of %d CLI runs each: through the holder %.2f ms, a new SSM session per call "
                         "%.2f ms\n" % (REPS, held, dial))
    finally:
        subprocess.run([SBX, "down", "--all", "--backend", "ec2"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        aws.close()


if __name__ == "__main__":
    main()
