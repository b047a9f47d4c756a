"""ec2_cli.py — `sbx exec BOX -- true` on an EC2 sandbox (moto + the SSM emulator) through
its connection holder, next to the same CLI exec on a sandbox made with --no-holder.

    python3 bench/ec2_cli.py [REPS]     (bench/run.sh runs it; SBX_BIN, default build/sbx)

Starts tests/aws/moto_fixture.py and tests/aws/ssm_emulator.py --boot (each instance booted
from its user data in namespaces of its own: needs root), `sbx up --backend ec2` twice (one
with the holder `up` starts, one with --no-holder), then times REPS runs of each CLI exec
(median, whole process). Row e3 (info): held vs a new SSM session per call (StartSession,
data channel, agent handshake). Emulator-bound: on AWS a StartSession and its WebSocket
cost a round trip or more to the service each, which the emulator on loopback does not.

Prints ROW lines for bench/run.sh (see bench/bench.h) and details on stderr.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SBX = os.path.abspath(os.environ.get("SBX_BIN") or os.path.join(os.environ.get("BUILD", "build"), "sbx"))
METRIC = "CLI exec -- true: EC2 through the holder vs --no-holder (moto + emulator; emulator-bound)"


def row(id, metric, sbx, base, ratio, target, status):
    print("\t".join(["ROW", id, metric, sbx, base, ratio, target, status]), flush=True)


def median_ms(argv, env):
    runs = []
    for _ in range(REPS):
        t0 = time.monotonic()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        runs.append((time.monotonic() - t0) * 1000)
    return statistics.median(runs)


def spawn(argv, log):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    return p, p.stdout.readline()


def stop(p):
    try:
        p.stdin.close()
        p.wait(timeout=10)
    except Exception:
        p.kill()
        p.wait()


def environment(work, m, em_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INSPECT_EC2_SANDBOX_"))}
    env.update({
        "SBX_STATE_DIR": work + "/state", "AWS_ENDPOINT_URL": m["endpoint"], "AWS_ENDPOINT_URL_SSM": em_url,
        "AWS_ACCESS_KEY_ID": m["access_key_id"], "AWS_SECRET_ACCESS_KEY": m["secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": work + "/none",
        "AWS_CONFIG_FILE": work + "/none", "INSPECT_EC2_SANDBOX_REGION": m["region"],
        "INSPECT_EC2_SANDBOX_VPC_ID": m["vpc"], "INSPECT_EC2_SANDBOX_SECURITY_GROUP_ID": m["security_group"],
        "INSPECT_EC2_SANDBOX_SUBNET_ID": m["subnet"], "INSPECT_EC2_SANDBOX_INSTANCE_PROFILE": m["instance_profile"],
        "INSPECT_EC2_SANDBOX_S3_BUCKET": m["bucket"], "INSPECT_EC2_SANDBOX_AMI_ID": m["ami"],
    })
    os.makedirs(env["SBX_STATE_DIR"])
    return env


def main():
    if os.geteuid() != 0:
        row("e3", METRIC + ": needs root (booted instances)", "-", "-", "-", "-", "info")
        return
    work = tempfile.mkdtemp(prefix="sbx-bench-ec2cli-")
    moto, line = spawn([sys.executable, "tests/aws/moto_fixture.py"], work + "/moto.log")
    m = json.loads(line)
    em, first = spawn([sys.executable, "tests/aws/ssm_emulator.py", "--boot", m["endpoint"], "--region", m["region"],
                       "--access-key", m["access_key_id"], "--secret", m["secret_access_key"], "--ami", m["ami"]],
                      work + "/emulator.log")
    env = environment(work, m, "http://127.0.0.1:%s" % first.split()[1])
    try:
        for argv in (["up", "held", "--backend", "ec2"], ["up", "dial", "--backend", "ec2", "--no-holder"]):
            subprocess.run([SBX] + argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        held = median_ms([SBX, "exec", "held", "--", "true"], env)
        dial = median_ms([SBX, "exec", "dial", "--", "true"], env)
        row("e3", METRIC, "%.2f ms" % held, "%.2f ms" % dial, "%.1fx" % (dial / held), "-", "info")
        sys.stderr.write("medians of %d CLI runs each: through the holder %.2f ms, a new SSM session per call "
                         "%.2f ms\n" % (REPS, held, dial))
    finally:
        subprocess.run([SBX, "down", "--all", "--backend", "ec2"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        stop(em)
        stop(moto)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
