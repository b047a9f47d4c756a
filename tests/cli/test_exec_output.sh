#!/usr/bin/env bash
# test_exec_output.sh — `sbx exec` passes the command's output at its reader's pace:
# byte-exact, nothing dropped, and no unbounded buffering in the CLI when the reader is
# slow (the agent gets credit only for bytes written to our stdout: issue 18).
set -u
RSS_KB=51200 # the CLI's peak RSS bound while its reader stalls (50 MiB)

PREFIX=exec_output
. "$(dirname "$0")/lib.sh"

up_box

# A reader that stalls 3 s on a blocking pipe: the CLI blocks in write, stays small.
t slow_blocking_reader sh -c '
	mkfifo "$1/fifo"
	"$0" exec box --limit 300000000 -- head -c 200000000 /dev/zero >"$1/fifo" & p=$!
	exec 3<"$1/fifo"
	sleep 3
	hwm=$(awk "/VmHWM/{print \$2}" /proc/$p/status)
	n=$(wc -c <&3)
	wait $p || exit 1
	echo "bytes $n, peak rss ${hwm} kB"
	[ "$n" = 200000000 ] && [ "$hwm" -lt '$RSS_KB' ]' "$SBX" "$WORK"

# The same through a non-blocking pipe (as a shared terminal fd may be): nothing dropped
# on EAGAIN, order kept, memory bounded.
t slow_nonblocking_reader python3 - "$SBX" <<'PY'
import fcntl, hashlib, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sys.argv[1], "exec", "box", "--limit", "300000000", "--", "seq", "1", "3000000"], stdout=w, stdin=subprocess.DEVNULL)
os.close(w)
time.sleep(3)
hwm = int([l.split()[1] for l in open(f"/proc/{p.pid}/status") if l.startswith("VmHWM")][0])
h, n = hashlib.sha256(), 0
while True:
    b = os.read(r, 1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
    if n < 2000000:
        time.sleep(0.001)  # a slow reader keeps the pipe full for a while
want = "".join(f"{i}\n" for i in range(1, 3000001)).encode()
assert p.wait() == 0, p.returncode
assert n == len(want) and h.hexdigest() == hashlib.sha256(want).hexdigest(), (n, len(want))
assert hwm < 51200, hwm
print("bytes", n, "peak rss kB", hwm)
PY

# `sbx cp box:F -` into a non-blocking pipe whose reader is slow: every byte, in order.
t cp_to_slow_nonblocking_stdout python3 - "$SBX" <<'PY'
import fcntl, hashlib, os, subprocess, sys, time
sbx = sys.argv[1]
subprocess.run([sbx, "exec", "box", "--", "sh", "-c", "seq 1 1000000 > big.txt"], check=True)
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sbx, "cp", "box:big.txt", "-"], stdout=w, stdin=subprocess.DEVNULL)
os.close(w)
time.sleep(2)
h, n = hashlib.sha256(), 0
while True:
    b = os.read(r, 1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
want = "".join(f"{i}\n" for i in range(1, 1000001)).encode()
assert p.wait() == 0, p.returncode
assert n == len(want) and h.hexdigest() == hashlib.sha256(want).hexdigest(), (n, len(want))
PY
