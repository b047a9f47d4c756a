#!/usr/bin/env python3
"""test_ec2_cli.py — `sbx up/exec/cp/ls/down --backend ec2` end to end without AWS:
moto (EC2, S3, IAM; signatures checked) and the Session Manager emulator (SSM API and
data channel, signatures checked) stand in for AWS, a local sbx-agent on loopback for the
instance's. Checked through boto3 against the same moto: the instance's type and tags (a
flag wins over INSPECT_EC2_SANDBOX_*), the agent's object under the key prefix, that
`down` terminates and deletes, that `down --all --backend ec2` removes exactly what
carries sbx's owner tag, and that Ctrl-C during `up` removes what it started. moto and
the emulators are awsfixture.Aws's."""
import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

import awsfixture

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBX = os.environ.get("SBX_BIN", os.path.join(ROOT, "build", "sbx"))
AGENT = os.environ.get("SBX_AGENT", os.path.join(ROOT, "build", "sbx-agent"))
failed = []


def check(name, cond, why=""):
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, why)), flush=True)
    if not cond:
        failed.append(name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def instance_dir(em_url, instance_id):
    with urllib.request.urlopen(em_url + "/instances") as r:
        return json.load(r).get(instance_id, "")


ATTACK = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", 7000), timeout=10)
first = s.recv(4096)
# no proof: straight to a HELLO and an EXEC of id, as a client that ignores the challenge
s.sendall(bytes.fromhex("00000007") + b"\x93\x01\x00\x81\xa1v\x01")
got = b""
try:
    while len(got) < 65536:
        c = s.recv(4096)
        if not c:
            break
        got += c
except OSError:
    pass
sys.stdout.write(repr(first[:64]) + " " + repr(got[:200]))
"""


def secret_checks(instance_id, em_url, state, ec2):
    """The agent's secret: made per instance, 0600 on both ends, gone from S3 once
    read, and required: a process on the instance without it is refused."""
    root = instance_dir(em_url, instance_id)
    ud = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    script = base64.b64decode(ud).decode()
    check("ec2_unit_requires_secret", "--secret-file /etc/sbx-agent.key" in script and
          "--insecure-no-auth" not in script and "umask 077" in script and "Delegate=yes" in script, script)
    check("ec2_unit_blocks_metadata", "--block-metadata" in script, script)
    key = os.path.join(root, "upper", "etc", "sbx-agent.key")
    st = os.stat(key) if root and os.path.exists(key) else None
    check("ec2_instance_key_root_only", st is not None and (st.st_mode & 0o777) == 0o600 and st.st_uid == 0,
          "%s %s" % (key, st))
    local = state + "/agent.key"
    lst = os.stat(local) if os.path.exists(local) else None
    same = st is not None and lst is not None and open(key).read().strip() == open(local).read().strip()
    check("ec2_cli_keeps_secret_0600", lst is not None and (lst.st_mode & 0o777) == 0o600 and same,
          "%s %s" % (local, lst))
    check("ec2_secret_is_32_bytes", same and len(open(local).read().strip()) == 64, "")
    # the URL in user data no longer gives the secret: its object went after the first connect
    url = [w.strip("'") for w in script.split() if "sbx-agent.key" in w and w.startswith("'http")]
    fetch = subprocess.run([sys.executable, os.path.join(ROOT, "tests/aws/instance_boot.py"), "--curl", "-fsS",
                            "-o", tmp_path(root, "refetch"), url[0] if url else "none"],
                           env=dict(os.environ, **boot_env(root)), capture_output=True, timeout=60)
    check("ec2_key_object_gone_after_connect", url != [] and fetch.returncode == 22, fetch.stderr.decode())
    # attack: uid 65534 on the instance (its loopback) drives the agent without the secret
    pid = open(os.path.join(root, "agent.pid")).read().strip() if root else "0"
    r = subprocess.run(["nsenter", "-t", pid, "-n", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c", ATTACK], capture_output=True, timeout=60)
    log = open(os.path.join(root, "agent.log"), errors="replace").read() if root else ""
    check("ec2_unauthenticated_local_process_refused", b"nonce" in r.stdout and b"auth" in r.stdout and
          b"uid=" not in r.stdout and "authentication failed" in log, r.stdout.decode() + r.stderr.decode() + log)


IMDS = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 80), timeout=5)
    s.sendall(b"GET /latest/meta-data/iam/security-credentials/sbx-instance-role HTTP/1.0\r\n\r\n")
    print("REACHED" if b"ASIAINSTANCEROLE" in s.makefile("rb").read() else "OTHER")
except OSError as e:
    print("REFUSED", e.errno)
"""


def metadata_checks(sbx, name, instance_id, em_url, blocked):
    """The instance role's credentials (the instance's own metadata service): kept from
    commands, as root and as another user, over IPv4 and v4-mapped IPv6, unless the sandbox
    was started with --allow-metadata; the instance's other processes keep them."""
    tag = "ec2_metadata_blocked" if blocked else "ec2_metadata_allowed"
    want = "REFUSED 1" if blocked else "REACHED"
    for who, pre in (("root", []), ("uid65534", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])):
        for addr in ("169.254.169.254", "::ffff:169.254.169.254"):
            r = sbx("exec", name, "--", *pre, "python3", "-c", IMDS, addr)
            check("%s_%s_%s" % (tag, who, "v6mapped" if ":" in addr else "v4"), r.stdout.decode().strip() == want,
                  (r.stdout + r.stderr).decode())
    root = instance_dir(em_url, instance_id)
    pid = open(os.path.join(root, "agent.pid")).read().strip() if root else "0"
    r = subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", IMDS, "169.254.169.254"],
                       capture_output=True, timeout=60)
    check(tag + "_instance_keeps_access", r.stdout.decode().strip() == "REACHED", (r.stdout + r.stderr).decode())


def stats(em_url):
    with urllib.request.urlopen(em_url + "/stats") as r:
        return json.load(r)


def start_count(em_url):
    """StartSession calls the emulator has answered (ResumeSession not counted)."""
    return stats(em_url)["sessions"]


def holder_pid(state, name):
    try:
        return int(open("%s/%s/hold/default.pid" % (state, name)).read().strip())
    except (OSError, ValueError):
        return 0


def gone(pid):
    """pid no longer runs (or is a zombie, when the runner is a subreaper)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def holder_checks(sbx, aws, em_url, state):
    """`sbx up` started a holder for box: a private socket, one SSM session for many
    calls, kept across a resumed and a reopened data channel, a command running through
    it re-attached after the reopen."""
    hold = state + "/box/hold"
    sock = hold + "/default.sock"
    st, dst = (os.stat(sock) if os.path.exists(sock) else None), (os.stat(hold) if os.path.exists(hold) else None)
    check("ec2_holder_socket_private", st is not None and dst is not None and (st.st_mode & 0o077) == 0 and
          (dst.st_mode & 0o777) == 0o700 and stat.S_ISSOCK(st.st_mode), "%s %s" % (st, dst))
    pid = holder_pid(state, "box")
    n0 = start_count(em_url)
    r1 = sbx("exec", "box", "--", "echo", "one")
    r2 = sbx("exec", "box", "--", "echo", "two")
    n1 = start_count(em_url)
    check("ec2_holder_one_session_for_two_execs", r1.stdout == b"one\n" and r2.stdout == b"two\n" and n1 == n0,
          "StartSession %d -> %d; %r %r" % (n0, n1, r1.stderr, r2.stderr))
    # the holder's data channel cut: resumed (ResumeSession), no new session, same holder
    res0 = stats(em_url)["resumes"]
    aws.say(em_url, "drop")
    time.sleep(0.5)
    r = sbx("exec", "box", "--", "echo", "resumed")
    check("ec2_holder_survives_resume", r.stdout == b"resumed\n" and start_count(em_url) == n1 and
          stats(em_url)["resumes"] > res0 and holder_pid(state, "box") == pid and not gone(pid),
          "%r %s" % (r.stderr, stats(em_url)))
    # the session terminated while a command runs through the holder: the holder opens
    # a new one (StartSession), the CLI's session re-attaches the command through it
    p = subprocess.Popen([SBX, "exec", "box", "--", "sh", "-c", "sleep 2; echo survived"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sbx.env)
    time.sleep(0.8)
    aws.say(em_url, "terminate")
    out, err = p.communicate(timeout=120)
    check("ec2_holder_survives_reopen", p.returncode == 0 and out == b"survived\n" and
          start_count(em_url) == n1 + 1 and holder_pid(state, "box") == pid and not gone(pid),
          "%d %r %r StartSession %d -> %d" % (p.returncode, out, err, n1, start_count(em_url)))
    n2 = start_count(em_url)
    r = sbx("exec", "box", "--", "echo", "after")
    check("ec2_holder_after_reopen", r.stdout == b"after\n" and start_count(em_url) == n2, r.stderr.decode())
    return pid


def tmp_path(root, name):
    return os.path.join(root or tempfile.gettempdir(), name)


def boot_env(root):
    with open(os.path.join(root, "env.json")) as f:
        return json.load(f)


def main():
    aws = awsfixture.Aws()
    tmp, m, em_url = aws.tmp, aws.m, aws.ssm_url
    env = aws.clean_environ()
    env.update({"SBX_STATE_DIR": tmp + "/state", "INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR": "team=evals"})
    os.makedirs(env["SBX_STATE_DIR"])
    ec2, s3 = aws.ec2, aws.s3
    instances, live, objects = aws.instances, aws.live, aws.objects

    def sbx(*args, stdin=None, extra_env=None):
        e = dict(env, **(extra_env or {}))
        return subprocess.run([SBX, *args], input=stdin, capture_output=True, env=e, timeout=120)
    sbx.env = env

    try:
        # ---- up: flags win over the environment; progress on stderr
        r = sbx("up", "box", "--backend", "ec2", "--instance-type", "t3.micro")
        err = r.stderr.decode()
        check("ec2_up", r.returncode == 0 and r.stdout.decode() == "box\n", err)
        check("ec2_up_progress", "launching a t3.micro instance" in err and "to be running" in err and
              "SSM agent to come Online" in err and "opening an SSM session" in err, err)
        mine = live(instances(Name="inspect_ec2_sandbox_box"))
        tags = {t["Key"]: t["Value"] for t in mine[0]["Tags"]} if mine else {}
        check("ec2_up_one_instance_flag_wins", len(mine) == 1 and mine[0]["InstanceType"] == "t3.micro",
              str([(i["InstanceId"], i["InstanceType"]) for i in mine]))
        check("ec2_up_tags", tags.get("sbx-owner", "").startswith("cli-box-") and tags.get("team") == "evals" and
              tags.get("inspect_sandbox") == "true", str(tags))
        owner = tags.get("sbx-owner", "?")
        check("ec2_up_agent_object", objects("comms/sbx/%s/" % owner) != [] and
              all(k.endswith("/sbx-agent") for k in objects("comms/sbx/%s/" % owner)), str(objects("comms/")))
        secret_checks(mine[0]["InstanceId"] if mine else "", em_url, env["SBX_STATE_DIR"] + "/box", ec2)

        # ---- exec and cp over the SSM session
        r = sbx("exec", "box", "--", "sh", "-c", "echo on-ec2; echo err >&2; exit 3")
        check("ec2_exec", r.returncode == 3 and r.stdout == b"on-ec2\n" and r.stderr == b"err\n",
              "%d %r %r" % (r.returncode, r.stdout, r.stderr))
        r = sbx("exec", "box", "--", "wc", "-c", stdin=b"x" * 300000)
        check("ec2_exec_stdin", r.returncode == 0 and r.stdout.strip() == b"300000", r.stderr.decode())
        r = sbx("exec", "-t", "box", "--", "sh", "-c", "test -t 0 && test -t 1 && stty size")
        check("ec2_exec_tty", r.returncode == 0 and r.stdout == b"24 80\r\n", "%d %r %r" % (r.returncode, r.stdout, r.stderr))
        data = os.urandom(1 << 20)
        with open(tmp + "/in.bin", "wb") as f:
            f.write(data)
        r1 = sbx("cp", tmp + "/in.bin", "box:" + tmp + "/remote/in.bin")
        r2 = sbx("cp", "box:" + tmp + "/remote/in.bin", tmp + "/out.bin")
        got = open(tmp + "/out.bin", "rb").read() if os.path.exists(tmp + "/out.bin") else b""
        check("ec2_cp_both_ways", r1.returncode == 0 and r2.returncode == 0 and got == data,
              (r1.stderr + r2.stderr).decode())
        metadata_checks(sbx, "box", mine[0]["InstanceId"] if mine else "", em_url, blocked=True)
        box_holder = holder_checks(sbx, aws, em_url, env["SBX_STATE_DIR"])
        r = sbx("ls", "--json")
        ls = json.loads(r.stdout) if r.returncode == 0 else []
        check("ec2_ls", any(s["name"] == "box" and s.get("backend") == "ec2" and
                            s.get("instance_id") == (mine[0]["InstanceId"] if mine else "") for s in ls), r.stdout)
        r = sbx("up", "box", "--backend", "ec2")
        check("ec2_up_existing_fails", r.returncode != 0 and b"already exists" in r.stderr, r.stderr.decode())

        # ---- a dead holder: the next call dials (a new SSM session) and works
        n0 = start_count(em_url)
        if box_holder:
            os.kill(box_holder, signal.SIGKILL)
        time.sleep(0.2)
        r = sbx("exec", "box", "--", "echo", "direct")
        check("ec2_holder_dead_falls_back", box_holder and r.stdout == b"direct\n" and start_count(em_url) == n0 + 1,
              "%r StartSession %d -> %d" % (r.stderr, n0, start_count(em_url)))
        # ---- --no-holder: every call starts its own session
        r = sbx("up", "nohold", "--backend", "ec2", "--no-holder")
        n0 = start_count(em_url)
        open0 = set(stats(em_url)["open_sessions"])
        r1 = sbx("exec", "nohold", "--", "echo", "a")
        r2 = sbx("exec", "nohold", "--", "echo", "b")
        check("ec2_no_holder", r.returncode == 0 and not os.path.exists(env["SBX_STATE_DIR"] + "/nohold/hold") and
              r1.stdout == b"a\n" and r2.stdout == b"b\n" and start_count(em_url) == n0 + 2,
              "%r %r StartSession %d -> %d" % (r.stderr, r1.stderr, n0, start_count(em_url)))
        # each command ended the SSM session it started (none idles on in AWS)
        left = set(stats(em_url)["open_sessions"]) - open0
        check("ec2_no_holder_sessions_terminated", not left, "still open: %s" % sorted(left))
        r = sbx("down", "nohold", "--backend", "ec2")  # one sandbox, not a sweep
        check("ec2_no_holder_down", r.returncode == 0 and not os.path.exists(env["SBX_STATE_DIR"] + "/nohold") and
              os.path.exists(env["SBX_STATE_DIR"] + "/box"), r.stderr.decode())
        # ---- the holder exits after $SBX_HOLD_IDLE seconds without calls; calls then dial
        r = sbx("up", "idle", "--backend", "ec2", extra_env={"SBX_HOLD_IDLE": "1"})
        ipid = holder_pid(env["SBX_STATE_DIR"], "idle")
        for _ in range(100):
            if not os.path.exists(env["SBX_STATE_DIR"] + "/idle/hold/default.sock"):
                break
            time.sleep(0.1)
        log = open(env["SBX_STATE_DIR"] + "/idle/hold/default.log", errors="replace").read() \
            if os.path.exists(env["SBX_STATE_DIR"] + "/idle/hold/default.log") else ""
        r2 = sbx("exec", "idle", "--", "echo", "after")
        check("ec2_holder_idle_exit", r.returncode == 0 and ipid > 0 and gone(ipid) and "idle" in log and
              r2.stdout == b"after\n", "%r %s %r" % (r.stderr, log, r2.stderr))
        sbx("down", "idle")

        # ---- down: the holder stopped (one started by hand, as `sbx up` does), the
        # instance terminated, the object deleted, the record gone
        open0 = set(stats(em_url)["open_sessions"])
        h = subprocess.Popen([SBX, "hold", "box/default"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):  # its own pidfile (an earlier holder's socket may still be there)
            if holder_pid(env["SBX_STATE_DIR"], "box") == h.pid:
                break
            time.sleep(0.1)
        r = sbx("down", "box")
        after = instances(Name="inspect_ec2_sandbox_box")
        check("ec2_down", r.returncode == 0 and not live(after) and
              not objects("comms/sbx/%s/" % owner) and not os.path.exists(env["SBX_STATE_DIR"] + "/box"),
              r.stderr.decode() + str([i["State"] for i in after]))
        # down returns once the holder has removed its pidfile on the way out; its exit
        # follows within moments (it is our child here, so poll for it rather than race)
        try:
            h.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        check("ec2_down_stops_holder", holder_pid(env["SBX_STATE_DIR"], "box") == 0 and h.poll() is not None,
              "holder %s still runs" % h.pid)
        if h.poll() is None:
            h.kill()
        h.wait()
        left = set(stats(em_url)["open_sessions"]) - open0
        check("ec2_down_holder_session_terminated", not left, "still open: %s" % sorted(left))
        r = sbx("exec", "box", "--", "true")
        check("ec2_exec_after_down", r.returncode != 0 and b"no sandbox named 'box'" in r.stderr, r.stderr.decode())

        # ---- missing settings: named, nothing launched, nothing recorded
        before = len(ec2.describe_instances()["Reservations"])
        r = sbx("up", "nope", "--backend", "ec2", extra_env={"INSPECT_EC2_SANDBOX_VPC_ID": "",
                                                             "INSPECT_EC2_SANDBOX_S3_BUCKET": ""})
        check("ec2_up_missing_settings", r.returncode == 2 and b"INSPECT_EC2_SANDBOX_VPC_ID" in r.stderr and
              b"INSPECT_EC2_SANDBOX_S3_BUCKET" in r.stderr and
              len(ec2.describe_instances()["Reservations"]) == before and
              not os.path.exists(env["SBX_STATE_DIR"] + "/nope"), r.stderr.decode())
        r = sbx("up", "bad", "--backend", "ec2", "--launch-timeout", "soon")
        check("ec2_up_bad_flag", r.returncode == 2 and b"--launch-timeout" in r.stderr, r.stderr.decode())

        # ---- down --all --backend ec2: exactly what carries the owner tag
        killed = [aws.run_instance({"sbx-owner": "run-killed-%d" % i}) for i in range(2)]
        foreign = aws.run_instance({"owner": "someone-else"})
        s3.put_object(Bucket=m["bucket"], Key="comms/sbx/run-killed-0/u/sbx-agent", Body=b"x")
        s3.put_object(Bucket=m["bucket"], Key="comms/sbx/run-killed-1/u/sbx-agent", Body=b"y")
        s3.put_object(Bucket=m["bucket"], Key="comms/other/keep", Body=b"z")
        r = sbx("up", "second", "--backend", "ec2", "--allow-metadata")
        second_holder = holder_pid(env["SBX_STATE_DIR"], "second")
        check("ec2_up_second", r.returncode == 0 and second_holder > 0, r.stderr.decode())
        second = live(instances(Name="inspect_ec2_sandbox_second"))
        metadata_checks(sbx, "second", second[0]["InstanceId"] if second else "", em_url, blocked=False)
        r = sbx("down", "--backend", "ec2")
        check("ec2_down_backend_without_all_is_usage", r.returncode == 2 and
              len(live(instances(Name="inspect_ec2_sandbox_second"))) == 1 and not gone(second_holder),
              r.stderr.decode())
        r = sbx("down", "--all", "--backend", "ec2")
        states = {i["InstanceId"]: i["State"]["Name"] for res in ec2.describe_instances()["Reservations"]
                  for i in res["Instances"]}
        check("ec2_down_all_instances", r.returncode == 0 and all(states[i] != "running" for i in killed) and
              states[foreign] == "running" and not live(instances(Name="inspect_ec2_sandbox_second")),
              r.stderr.decode() + str(states))
        check("ec2_down_all_objects", objects("comms/sbx/") == [] and objects("comms/other/") == ["comms/other/keep"],
              str(objects("comms/")))
        check("ec2_down_all_says", b"terminated 3 instances, deleted 3 objects" in r.stdout, r.stdout.decode())
        check("ec2_down_all_records", not os.path.exists(env["SBX_STATE_DIR"] + "/second"), "record left")
        check("ec2_down_all_stops_holder", second_holder > 0 and gone(second_holder), str(second_holder))
        r = sbx("down", "--all", "--backend", "ec2", extra_env={"INSPECT_EC2_SANDBOX_S3_BUCKET": ""})
        check("ec2_down_all_needs_bucket", r.returncode == 2 and b"S3_BUCKET" in r.stderr, r.stderr.decode())

        # ---- Ctrl-C while waiting for the instance to come online removes it
        aws.stop_emulator(em_url)
        em_url = aws.emulator("--offline")
        p = subprocess.Popen([SBX, "up", "intr", "--backend", "ec2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(env, AWS_ENDPOINT_URL_SSM=em_url))
        seen = b""
        deadline = time.time() + 60
        while b"to come Online" not in seen and time.time() < deadline:
            chunk = p.stderr.readline()
            if not chunk:
                break
            seen += chunk
        started = live(instances(Name="inspect_ec2_sandbox_intr"))
        p.send_signal(signal.SIGINT)
        out, rest = p.communicate(timeout=60)
        seen += rest
        intr_owner = {t["Key"]: t["Value"] for t in started[0]["Tags"]}.get("sbx-owner") if started else "?"
        check("ec2_interrupt_was_running", len(started) == 1, seen.decode())
        check("ec2_interrupt_cleans_up", p.returncode == 130 and b"interrupted; removing i-" in seen and
              not live(instances(Name="inspect_ec2_sandbox_intr")) and
              not objects("comms/sbx/%s/" % intr_owner) and
              not os.path.exists(env["SBX_STATE_DIR"] + "/intr"), "%d %s" % (p.returncode, seen.decode()))
    finally:
        subprocess.run([SBX, "down", "--all", "--backend", "ec2"], env=env, capture_output=True, timeout=60)
        aws.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
