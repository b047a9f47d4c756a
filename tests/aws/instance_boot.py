#!/usr/bin/env python3
"""instance_boot.py — boots an emulated EC2 instance from its real user data, for tests.

The Session Manager emulator (ssm_emulator.py --boot) calls boot() when a session first
targets an instance moto launched. Like cloud-init, it runs the instance's user-data
script (read back from moto with DescribeInstanceAttribute) as root, unmodified, in a
private mount namespace where /etc and /usr/local/bin are overlays (the host's files
show through; nothing written reaches them). Two stand-ins on PATH play what an Ubuntu
image would provide:

  curl       `curl ... -o FILE URL`: checks URL is a presigned S3 GET whose signature
             botocore accepts (presign_check.py's check), then fetches that object from
             moto and writes FILE; anything else fails as curl would (exit 22)
  systemctl  `daemon-reload`, `enable UNIT`, `restart UNIT` / `enable --now UNIT`:
             starts ExecStart of /etc/systemd/system/UNIT with systemd's clean
             environment, in the instance's network namespace (its own loopback), with
             Delegate=yes honoured by a cgroup2 hierarchy mounted for the instance

The instance's network namespace also holds its metadata service: 169.254.169.254:80
serving the instance role's credentials at /latest/meta-data/iam/security-credentials/
sbx-instance-role (stand-in values), so a test can see who reaches them.

The instance's 127.0.0.1 is reached from outside through a relay on a unix socket
(DIR/port-N.sock), which the emulator connects to instead of a TCP port. Every
instance has its own loopback, /etc and agent, as on EC2.

    python3 instance_boot.py --curl ARGS...          (the stand-ins run this)
    python3 instance_boot.py --systemctl ARGS...
    python3 instance_boot.py --relay SOCK PORT       (inside the instance's netns)
"""
import base64
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qsl, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ENV_PREFIX = "SBX_INSTANCE_"  # what the stand-ins learn about moto and the instance


class Instance:
    def __init__(self, instance_id, root):
        self.id = instance_id
        self.root = root

    def socket_for(self, port):
        return os.path.join(self.root, "port-%d.sock" % port)

    def log(self):
        try:
            with open(os.path.join(self.root, "boot.log")) as f:
                return f.read()
        except OSError:
            return ""


def _client(service, moto):
    import boto3
    from botocore.config import Config
    sess = boto3.Session(aws_access_key_id=moto["akid"], aws_secret_access_key=moto["secret"],
                         region_name=moto["region"])
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}) if service == "s3" else None
    return sess.client(service, endpoint_url=moto["url"], config=cfg)


def user_data(instance_id, moto):
    got = _client("ec2", moto).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    value = got.get("UserData", {}).get("Value", "")
    return base64.b64decode(value) if value else b""


STANDIN = """#!/bin/sh
exec %s %s --%s "$@"
"""

MOUNTS = """set -e
mount --make-rprivate /
for d in etc usr/local/bin; do
  mkdir -p "$ROOT/upper/$d" "$ROOT/work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ROOT/upper/$d,workdir=$ROOT/work/$d" "/$d"
done
if [ -n "$BAKED" ]; then cp "$BAKED" /usr/local/bin/sbx-agent; chmod 0755 /usr/local/bin/sbx-agent; fi
mount -t tmpfs cgroups /sys/fs/cgroup
mkdir /sys/fs/cgroup/unified
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
exec sh "$ROOT/user-data"
"""


def boot(instance_id, moto, baked_agent=None):
    """Runs the instance's user data; returns the Instance. moto: url, akid, secret, region."""
    data = user_data(instance_id, moto)
    root = tempfile.mkdtemp(prefix="sbx-instance-%s." % instance_id)
    os.makedirs(os.path.join(root, "bin"))
    creds = os.path.join(root, "imds", IMDS_CREDENTIALS)  # the instance role, as IMDS serves it
    os.makedirs(os.path.dirname(creds))
    with open(creds, "w") as f:
        json.dump({"Code": "Success", "AccessKeyId": "ASIAINSTANCEROLE", "SecretAccessKey": "instance-secret",
                   "Token": "instance-token"}, f)
    with open(os.path.join(root, "user-data"), "wb") as f:
        f.write(data)
    for tool in ("curl", "systemctl"):
        path = os.path.join(root, "bin", tool)
        with open(path, "w") as f:
            f.write(STANDIN % (shlex.quote(sys.executable), shlex.quote(os.path.abspath(__file__)), tool))
        os.chmod(path, 0o755)
    env = dict(os.environ)
    env.update({"PATH": os.path.join(root, "bin") + ":" + env.get("PATH", "/usr/bin:/bin"), "ROOT": root,
                "BAKED": baked_agent or "", ENV_PREFIX + "ROOT": root, ENV_PREFIX + "ID": instance_id,
                ENV_PREFIX + "MOTO_URL": moto["url"], ENV_PREFIX + "AKID": moto["akid"],
                ENV_PREFIX + "SECRET": moto["secret"], ENV_PREFIX + "REGION": moto["region"]})
    with open(os.path.join(root, "env.json"), "w") as f:  # for a test that plays a stand-in itself
        json.dump({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}, f)
    with open(os.path.join(root, "boot.log"), "ab") as log:
        rc = subprocess.run(["unshare", "--mount", "sh", "-c", MOUNTS], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, timeout=120).returncode
        log.write(b"user data exited %d\n" % rc)
    return Instance(instance_id, root)


def remove(inst):
    """The instance is terminated: stop what it started, drop its files."""
    try:
        with open(os.path.join(inst.root, "pids")) as f:
            for line in f:
                try:
                    os.killpg(int(line), 9)
                except (OSError, ValueError):
                    pass
    except OSError:
        pass
    shutil.rmtree(inst.root, ignore_errors=True)


# ------------------------------------------------------------ stand-ins

def _env(name):
    return os.environ[ENV_PREFIX + name]


def standin_curl(argv):
    out, url = None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            out = argv[i + 1]
            i += 1
        elif a == "--retry":
            i += 1
        elif not a.startswith("-"):
            url = a
        i += 1
    if not out or not url:
        sys.stderr.write("curl (stand-in): wants -o FILE URL\n")
        return 2
    sys.path.insert(0, HERE)
    from presign_check import signature_ok
    moto = {"url": _env("MOTO_URL"), "akid": _env("AKID"), "secret": _env("SECRET"), "region": _env("REGION")}
    if not signature_ok(url, moto["akid"], moto["secret"], moto["region"]):
        sys.stderr.write("curl: (22) The requested URL returned error: 403 (signature)\n")
        return 22
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    if int(q.get("X-Amz-Expires", "0")) <= 0:
        sys.stderr.write("curl: (22) The requested URL returned error: 403 (expired)\n")
        return 22
    bucket, _, key = parts.path.lstrip("/").partition("/")
    from urllib.parse import unquote
    try:
        body = _client("s3", moto).get_object(Bucket=unquote(bucket), Key=unquote(key))["Body"].read()
    except Exception as e:  # NoSuchKey and friends: curl -f fails
        sys.stderr.write("curl: (22) The requested URL returned error: 404 (%s)\n" % e)
        return 22
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the caller's umask applies
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    with open(os.path.join(_env("ROOT"), "fetched"), "a") as f:
        f.write(url + "\n")
    return 0


def _exec_start(unit):
    with open("/etc/systemd/system/" + unit) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return shlex.split(line[len("ExecStart="):])
    raise SystemExit("systemctl (stand-in): %s has no ExecStart" % unit)


def _listen_port(argv):
    for i, a in enumerate(argv):
        if a == "--listen" and i + 1 < len(argv) and ":" in argv[i + 1]:
            return int(argv[i + 1].rsplit(":", 1)[1])
    return 0


START = """set -e
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
python3 -m http.server --bind 169.254.169.254 80 --directory "$ROOT/imds" >/dev/null 2>&1 &
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" &
echo $! > "$ROOT/agent.pid"
exec python3 "$BOOT" --relay "$SOCK" "$PORT"
"""
IMDS_CREDENTIALS = "latest/meta-data/iam/security-credentials/sbx-instance-role"


def standin_systemctl(argv):
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] == "daemon-reload":
        return 0
    verb, units = words[0], words[1:]
    start = verb in ("start", "restart") or (verb == "enable" and "--now" in argv)
    if not start:
        return 0
    root = _env("ROOT")
    for unit in units:
        cmd = _exec_start(unit)
        if not os.path.exists(cmd[0]):
            sys.stderr.write("systemctl (stand-in): %s: %s does not exist\n" % (unit, cmd[0]))
            return 1
        port = _listen_port(cmd)
        env = dict(os.environ, SOCK=os.path.join(root, "port-%d.sock" % port), PORT=str(port),
                   BOOT=os.path.abspath(__file__))
        with open(os.path.join(root, "agent.log"), "ab") as log:
            p = subprocess.Popen(["unshare", "--net", "sh", "-c", START, "sh", *cmd], env=env, stdout=log,
                                 stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")
        with open(os.path.join(root, "pids"), "a") as f:
            f.write("%d\n" % p.pid)
    return 0


def relay(sock_path, port):
    """Inside the instance's netns: each connection to sock_path is piped to 127.0.0.1:port."""
    srv = socket.socket(socket.AF_UNIX)
    tmp = sock_path + ".tmp"
    srv.bind(tmp)
    srv.listen(64)
    os.rename(tmp, sock_path)

    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        c, _ = srv.accept()
        for _ in range(100):  # the agent may still be starting
            try:
                up = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            c.close()
            continue
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--curl":
        sys.exit(standin_curl(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "--systemctl":
        sys.exit(standin_systemctl(sys.argv[2:]))
    if len(sys.argv) > 3 and sys.argv[1] == "--relay":
        relay(sys.argv[2], int(sys.argv[3]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
