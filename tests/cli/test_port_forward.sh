#!/usr/bin/env bash
# test_port_forward.sh — `sbx port-forward` end to end (port_forward_drive.py: concurrent
# connections, 16+ MiB byte-exact both ways, half-close, a slow reader, a remote close, a
# refused port, Ctrl-C, a killed CLI) on a local sandbox and on a k8s sandbox of the
# Kubernetes API emulator (tests/k8s/emulator.py, real helm), plus argument errors.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-pf-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-pf-work.XXXXXX)
EMU_PID=
cleanup() {
	"$SBX" down --all >/dev/null 2>&1
	[ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null
	rm -rf "$SBX_STATE_DIR" "$WORK"
}
trap cleanup EXIT
DRIVE=$(dirname "$0")/port_forward_drive.py

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   pf_$name"
	else
		echo "FAIL pf_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# arguments
t bad_mapping sh -c '"$0" port-forward nobox 1:2:3:4 2>"$1/e"; [ $? -eq 2 ] && grep -q "not a mapping" "$1/e"' "$SBX" "$WORK"
t bad_port sh -c '"$0" port-forward nobox 8080:0 2>/dev/null; [ $? -eq 2 ] && "$0" port-forward nobox 70000 2>/dev/null; [ $? -eq 2 ]' "$SBX"
t no_mapping sh -c '"$0" port-forward nobox 2>/dev/null; [ $? -eq 2 ]' "$SBX"
t help sh -c '"$0" port-forward --help | grep -q "LOCAL_PORT:REMOTE_PORT"' "$SBX"
t no_sandbox sh -c '"$0" port-forward nobox 0:80 2>/dev/null; [ $? -eq 125 ]' "$SBX"

# local backend
"$SBX" up box >/dev/null 2>"$WORK/up.err" || { echo "FAIL pf_up: $(cat "$WORK/up.err")"; exit 1; }
t listen_in_use python3 -c 'import socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
r = subprocess.run([sys.argv[1], "port-forward", "box", "%d:80" % s.getsockname()[1]], capture_output=True, timeout=30)
sys.exit(0 if r.returncode == 125 and b"unable to listen" in r.stderr else 1)' "$SBX"
python3 "$DRIVE" "$SBX" box local

# k8s backend (emulator)
. tests/cli/k8s_emulator.sh
start_k8s_emulator pf_k8s pf-token
printf 'services:\n  default:\n    image: python:3.12\n' >"$WORK/values.yaml"
"$SBX" up kbox --backend k8s -f "$WORK/values.yaml" >/dev/null 2>"$WORK/kup.err" ||
	{ echo "FAIL pf_k8s_up: $(tail -3 "$WORK/kup.err")"; exit 1; }
python3 "$DRIVE" "$SBX" kbox k8s
