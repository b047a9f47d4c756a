"""port_forward_drive.py — `sbx port-forward TARGET ...` end to end on one sandbox.

    python3 port_forward_drive.py SBX TARGET PREFIX

Starts small TCP servers inside the sandbox (python3 there: SERVER below), then
one `sbx port-forward` with a mapping to each, and checks through the local
ports: many concurrent connections, 16+ MiB each way byte-exact, half-close,
a slow reader holding back the remote sender without the CLI's memory
growing, a remote port that closes, a refused port (reported, the rest go
on), Ctrl-C (exit 0), and a killed CLI making the agent close its sockets.
Prints one "ok   PREFIX_NAME" / "FAIL PREFIX_NAME: why" line per check.
"""
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

SBX, TARGET, PREFIX = sys.argv[1], sys.argv[2], sys.argv[3]
SOURCE_LEN = 40 << 20  # the slow reader's download
UPLOAD_LEN = 17 << 20  # one connection's upload (16+ MiB)

# Runs in the sandbox: python3 srv.py DIR. Listens on loopback ports it picks
# and writes "name port" lines to DIR/ports, then "ready".
SERVER = r'''
import hashlib, os, random, socket, sys, threading
D = sys.argv[1]
def serve(name, fn):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=fn, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return "%s %d\n" % (name, s.getsockname()[1])
def echo(c):
    while True:
        b = c.recv(65536)
        if not b: break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR); c.close()
def digest(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b: break
        h.update(b); n += len(b)
    c.sendall(("%d %s\n" % (n, h.hexdigest())).encode()); c.close()
def source(c):
    r, sent = random.Random(11), 0
    while sent < SOURCE_LEN_:
        c.sendall(r.randbytes(1 << 16)); sent += 1 << 16
        with open(D + "/sent.tmp", "w") as f: f.write(str(sent))
        os.rename(D + "/sent.tmp", D + "/sent")
    c.close()
def bye(c):
    c.sendall(b"bye\n"); c.close()
def watch(c):
    with open(D + "/watch", "w") as f: f.write("open")
    while True:
        try:
            b = c.recv(65536)
        except OSError:
            b = b""
        if not b: break
    with open(D + "/watch", "w") as f: f.write("closed")
# bound, never listening: connecting is refused, and no later listener (another test's, or
# port-forward's own on this host) can take the port meanwhile, as it could once it was closed
dead = socket.socket(); dead.bind(("127.0.0.1", 0)); port = dead.getsockname()[1]
lines = [serve("echo", echo), serve("digest", digest), serve("source", source), serve("bye", bye),
         serve("watch", watch), "dead %d\n" % port]
with open(D + "/ports", "w") as f: f.write("".join(lines) + "ready\n")
threading.Event().wait()
'''.replace("SOURCE_LEN_", str(SOURCE_LEN))

results = []


def check(name, ok, why=""):
    print(("ok   %s_%s" % (PREFIX, name)) if ok else ("FAIL %s_%s: %s" % (PREFIX, name, why)), flush=True)


def sbx(*args, **kw):
    return subprocess.run([SBX] + list(args), capture_output=True, timeout=60, **kw)


def remote_read(path):
    r = sbx("exec", TARGET, "--", "cat", path)
    return r.stdout.decode() if r.returncode == 0 else ""


def wait_for(fn, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            return bytes(out)
        out += b


def start_server():
    d = "/tmp/pf-%d" % os.getpid()
    r = sbx("exec", "-i", TARGET, "--", "sh", "-c",
            'mkdir -p "$1" && cat > "$1/srv.py" && (python3 "$1/srv.py" "$1" >"$1/log" 2>&1 &)', "sh", d,
            input=SERVER.encode())
    if r.returncode != 0:
        return d, None
    text = wait_for(lambda: (lambda t: t if "ready" in t else "")(remote_read(d + "/ports")))
    ports = {}
    for line in text.splitlines():
        if " " in line:
            k, v = line.split()
            ports[k] = int(v)
    return d, ports


def start_forwarder(ports):
    names = ["echo", "digest", "source", "bye", "watch", "dead"]
    pf = subprocess.Popen([SBX, "port-forward", TARGET] + ["0:%d" % ports[n] for n in names],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    local = {}
    for n in names:
        line = pf.stdout.readline().decode()
        # "Forwarding from 127.0.0.1:NNNN -> RRRR"
        if not line.startswith("Forwarding from 127.0.0.1:"):
            return pf, None, line
        lport = int(line.split(":")[1].split()[0])
        if int(line.split("->")[1]) != ports[n]:
            return pf, None, line
        local[n] = lport
    return pf, local, ""


def concurrent(local, err_lines):
    errors = []

    def one(i):
        data = random.Random(i).randbytes(300000 + i * 1000)
        try:
            s = connect(local["echo"])
            def send():
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    errors.append("conn %d: sending: %s" % (i, e))
            t = threading.Thread(target=send)
            t.start()
            got = recv_all(s)
            t.join()
            s.close()
            if got != data:
                errors.append("conn %d: %d bytes back of %d" % (i, len(got), len(data)))
        except OSError as e:
            errors.append("conn %d: %s" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("concurrent_connections", not errors, "; ".join(errors[:3]) + " (sbx said %r)" % err_lines[-3:])


def upload_half_close(local):
    data = random.Random(5).randbytes(UPLOAD_LEN)
    s = connect(local["digest"])
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)  # half-close: the answer still comes back
    got = recv_all(s).decode()
    s.close()
    want = "%d %s\n" % (len(data), hashlib.sha256(data).hexdigest())
    check("upload_16m_half_close", got == want, "got %r" % got[:100])


def slow_reader(local, d, pf):
    base = rss_kib(pf.pid)
    s = connect(local["source"])
    first = s.recv(1 << 16)
    # nothing more is read: the sender must come to a stop (wait until its count holds still)
    last, still = -1, 0
    for _ in range(150):
        v = remote_read(d + "/sent")
        n = int(v) if v.strip().isdigit() else 0
        still = still + 1 if n == last else 0
        last = n
        if still >= 5:
            break
        time.sleep(0.2)
    grew = rss_kib(pf.pid) - base
    held = last
    h = hashlib.sha256(first)
    n = len(first)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    s.close()
    r, w = random.Random(11), hashlib.sha256()
    for _ in range(SOURCE_LEN >> 16):
        w.update(r.randbytes(1 << 16))
    check("slow_reader_holds_sender", 0 < held < SOURCE_LEN // 2,
          "the remote sender got %d of %d bytes out to a reader that read nothing" % (held, SOURCE_LEN))
    check("slow_reader_bounded_memory", grew < 24 * 1024, "sbx port-forward grew by %d KiB" % grew)
    print("     slow reader: the remote sender stopped after %d KiB; sbx grew by %d KiB" % (held >> 10, grew),
          flush=True)
    check("download_byte_exact", n == SOURCE_LEN and h.digest() == w.digest(), "%d bytes" % n)


def remote_closes(local):
    s = connect(local["bye"])
    got = recv_all(s)
    s.close()
    check("remote_port_closes", got == b"bye\n", "got %r" % got)


def refused(local, pf_err_lines):
    s = connect(local["dead"])
    try:
        got = recv_all(s)
    except ConnectionResetError:
        got = b""
    s.close()
    said = wait_for(lambda: any(b"refused" in l for l in pf_err_lines), 10)
    check("refused_reported", not got and said, "got %r, stderr %r" % (got, pf_err_lines[-3:]))
    s = connect(local["echo"])
    s.sendall(b"still here")
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    check("refused_keeps_running", got == b"still here", "got %r" % got)


def main():
    d, ports = start_server()
    check("server_started", bool(ports), "no server in the sandbox")
    if not ports:
        return
    pf, local, line = start_forwarder(ports)
    check("forwarding_printed", local is not None, "printed %r" % line)
    if local is None:
        pf.kill()
        return
    err_lines = []
    threading.Thread(target=lambda: err_lines.extend(iter(pf.stderr.readline, b"")), daemon=True).start()
    concurrent(local, err_lines)
    upload_half_close(local)
    slow_reader(local, d, pf)
    remote_closes(local)
    refused(local, err_lines)
    pf.send_signal(signal.SIGINT)
    try:
        rc = pf.wait(20)
    except subprocess.TimeoutExpired:
        pf.kill()
        rc = "hung"
    check("ctrl_c_clean_exit", rc == 0, "exit %r, stderr %r" % (rc, err_lines[-3:]))

    # a killed CLI: the agent closes the sockets it opened for it
    pf, local, line = start_forwarder(ports)
    if local is None:
        check("killed_cli_closes_sockets", False, "no forwarder: %r" % line)
        return
    s = connect(local["watch"])
    s.sendall(b"x")
    opened = wait_for(lambda: remote_read(d + "/watch") == "open")
    pf.kill()
    pf.wait()
    closed = wait_for(lambda: remote_read(d + "/watch") == "closed", 30)
    s.close()
    check("killed_cli_closes_sockets", opened and closed, "watch says %r" % remote_read(d + "/watch"))


main()
