"""forward.py — throughput through `sbx port-forward` vs a direct loopback connection.

    python3 bench/forward.py [MIB]      (bench/run.sh runs it; SBX_BIN, default build/sbx)

A server sends MIB MiB (default 256) to each connection and closes it. The same server
runs on this machine's loopback (the baseline: one TCP connection, no sbx) and inside a
local sandbox, reached through `sbx port-forward` (TCP to the CLI, the agent protocol over
the sandbox's socket, TCP to the server in the box). Median of 3 downloads each, read in
1 MiB recv calls; the row is a side-by-side ratio with no target.

Prints ROW lines for bench/run.sh (see bench/bench.h) and details on stderr.
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from rows import row

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 256
SBX = os.environ.get("SBX_BIN") or os.path.join(os.environ.get("BUILD", "build"), "sbx")
SERVER = r'''
import socket, sys, threading
n = int(sys.argv[1]) << 20
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
block = b"x" * (1 << 20)
def send(c):
    left = n
    while left:
        k = c.send(block[:min(left, len(block))]); left -= k
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=send, args=(c,), daemon=True).start()
'''


def download(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    t0, got = time.monotonic(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += len(b)
    dt = time.monotonic() - t0
    s.close()
    if got != MIB << 20:
        raise SystemExit("bench forward: got %d bytes of %d" % (got, MIB << 20))
    return got / dt / 1e6


def main():
    state = tempfile.mkdtemp(prefix="sbx-bench-fwd-")
    env = dict(os.environ, SBX_STATE_DIR=state)
    local = subprocess.Popen([sys.executable, "-c", SERVER, str(MIB)], stdout=subprocess.PIPE)
    pf = None
    try:
        lport = int(local.stdout.readline())
        if subprocess.run([SBX, "up", "fwd"], env=env, capture_output=True).returncode:
            row("f1", "port-forward throughput (local box)", "-", "-", "-", "-", "ERROR")
            return 1
        r = subprocess.run([SBX, "exec", "-i", "fwd", "--", "sh", "-c",
                            'cat > /tmp/s.py; python3 /tmp/s.py %d > /tmp/port 2>&1 & '
                            'for i in $(seq 100); do [ -s /tmp/port ] && break; sleep 0.05; done; cat /tmp/port' % MIB],
                           env=env, input=SERVER.encode(), capture_output=True)
        rport = int(r.stdout.split()[0])
        pf = subprocess.Popen([SBX, "port-forward", "fwd", "0:%d" % rport], env=env, stdout=subprocess.PIPE)
        fport = int(pf.stdout.readline().decode().split(":")[1].split()[0])
        direct, forwarded = [], []
        for _ in range(3):
            direct.append(download(lport))
            forwarded.append(download(fport))
        d, f = statistics.median(direct), statistics.median(forwarded)
        print("forward: direct %s MB/s, through port-forward %s MB/s" %
              (["%.0f" % x for x in direct], ["%.0f" % x for x in forwarded]), file=sys.stderr)
        row("f1", "port-forward download, %d MiB (vs direct loopback TCP)" % MIB, "%.0f MB/s" % f,
            "%.0f MB/s" % d, "%.2f" % (f / d), "-", "info")
        return 0
    finally:
        if pf:
            pf.terminate()
            pf.wait()
        local.kill()
        subprocess.run([SBX, "down", "fwd"], env=env, capture_output=True)
        subprocess.run(["rm", "-rf", state])


sys.exit(main())
