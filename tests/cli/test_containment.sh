#!/usr/bin/env bash
# test_containment.sh — what a sandbox can never get from the host through
# the CLI: the host's environment (cloud keys, kubeconfig), a file written
# outside the destination given to `sbx cp` (".." names, symlinks), and —
# each an attack from inside that would work if containment broke — the
# host's files, ids, processes, network, sbx's own control state, other
# sandboxes, and unbounded memory or processes (docs/SECURITY.md).
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-contain-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-contain-work.XXXXXX)
MARK=sbx-contain-$$
cleanup() {
	"$SBX" down --all >/dev/null 2>&1
	rm -rf "$SBX_STATE_DIR" "$WORK" "/etc/$MARK" "/root/$MARK" "/var/tmp/$MARK"* "/tmp/$MARK"* "/$MARK"*
	[ -n "${HOST_PID:-}" ] && kill "$HOST_PID" 2>/dev/null
	[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null
}
trap cleanup EXIT

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   contain_$name"
	else
		echo "FAIL contain_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# The host's secrets, as an evaluation harness would have them.
export AWS_ACCESS_KEY_ID=AKIAHOSTSECRET AWS_SECRET_ACCESS_KEY=host-secret-key AWS_SESSION_TOKEN=host-token
export KUBECONFIG=$WORK/kubeconfig SBX_CONTAIN_MARKER=host-only
if ! "$SBX" up box >/dev/null 2>"$WORK/up.err"; then
	echo "FAIL contain_up: $(cat "$WORK/up.err")"
	exit 1
fi

t env_not_passed sh -c '"$0" exec box -- env > "$1/env" && grep -q "^PATH=" "$1/env" && ! grep -Eq "AWS_|KUBECONFIG|SBX_CONTAIN_MARKER|host-secret" "$1/env"' "$SBX" "$WORK"
t agent_env_clean sh -c 'tr "\0" "\n" < /proc/$(cat "$SBX_STATE_DIR/box/default.box/pid")/environ > "$1/aenv" && ! grep -Eq "AWS_|KUBECONFIG|SBX_CONTAIN_MARKER" "$1/aenv"' "$SBX" "$WORK"
t env_flag_still_works sh -c '[ "$("$0" exec box -e ONLY=this -- sh -c "echo \$ONLY")" = this ]' "$SBX"

# cp out of the sandbox: names that would leave the destination directory
mkdir -p "$WORK/dest/inner"
"$SBX" exec box -- sh -c 'mkdir -p sub && echo payload > sub/f && echo evil > ../escaped 2>/dev/null; ln -sf /etc/hostname link' >/dev/null 2>&1
for src in 'sub/..' '..' '.' 'sub/.'; do
	t "cp_refuses_${src//[\/.]/_}" sh -c '! "$0" cp "box:$2" "$1/dest/inner" 2>"$1/e" && grep -q "name" "$1/e" && [ -z "$(ls -A "$1/dest/inner")" ] && [ "$(ls -A "$1/dest")" = inner ]' "$SBX" "$WORK" "$src"
done
# a directory source lands inside the destination directory, nowhere else
t cp_dir_source_stays_inside sh -c '"$0" cp "box:sub/" "$1/dest/inner" && [ "$(cat "$1/dest/inner/sub/f")" = payload ] && [ "$(ls -A "$1/dest")" = inner ] && rm -r "$1/dest/inner/sub"' "$SBX" "$WORK"
t cp_dotdot_in_middle_stays sh -c '"$0" cp "box:sub/../sub/f" "$1/dest/inner" && [ "$(cat "$1/dest/inner/f")" = payload ] && rm "$1/dest/inner/f"' "$SBX" "$WORK"
# a symlink inside the sandbox is followed inside the sandbox only; the
# host gets a plain file
t cp_sandbox_symlink_is_plain_file sh -c '"$0" cp box:link "$1/dest/inner" && [ -f "$1/dest/inner/link" ] && [ ! -L "$1/dest/inner/link" ] && rm "$1/dest/inner/link"' "$SBX" "$WORK"
# a symlink at the destination is refused (a download replaces only a
# regular file), never written through
echo precious > "$WORK/outside"
ln -s "$WORK/outside" "$WORK/dest/inner/trap"
t cp_local_symlink_refused sh -c '! "$0" cp box:sub/f "$1/dest/inner/trap" 2>/dev/null && [ "$(cat "$1/outside")" = precious ] && [ -L "$1/dest/inner/trap" ] && rm "$1/dest/inner/trap"' "$SBX" "$WORK"
t cp_no_temp_left sh -c '[ -z "$(ls -A "$1/dest/inner" | grep sbx-)" ] && [ -z "$(ls -A "$1" | grep "^\.")" ]' "$SBX" "$WORK"

# ---------------------------------------------------------------- the box
# Host things a sandbox must never reach.
echo "host-secret-$MARK" > "/etc/$MARK"
echo "host-secret-$MARK" > "/root/$MARK" 2>/dev/null
sleep 31415 &
HOST_PID=$!
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.close()' > "$WORK/port" &
LISTENER=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
IN() { "$SBX" exec box -- sh -c "$1"; }

t host_files_invisible sh -c '! "$0" exec box -- cat "/etc/$1" "/root/$1" 2>/dev/null | grep -q host-secret' "$SBX" "$MARK"
t shadow_is_its_own sh -c '"$0" exec box -- cat /etc/shadow > "$1/shadow" && grep -q "^root:\*:" "$1/shadow" && ! grep -q "\\$" "$1/shadow" && ! cmp -s "$1/shadow" /etc/shadow' "$SBX" "$WORK"
t no_ssh_or_cloud_keys sh -c '[ -z "$("$0" exec box -- sh -c "ls -A /etc/ssh /etc/ssl/private /root/.aws /root/.kube /root/.ssh /root/.config 2>/dev/null")" ]' "$SBX"
t writes_stay_inside sh -c '"$0" exec box -- sh -c "for d in /etc /var/tmp /tmp /root /; do echo x > \$d/$1-w || exit 1; done" && for d in /etc /var/tmp /tmp /root ""; do [ ! -e "$d/$1-w" ] || exit 1; done' "$SBX" "$MARK"
t os_dirs_read_only sh -c '"$0" exec box -- sh -c "touch /usr/$1 /usr/bin/$1" 2>"$2/e"; grep -q "Read-only" "$2/e" && [ ! -e "/usr/$1" ] && [ ! -e "/usr/bin/$1" ]' "$SBX" "$MARK" "$WORK"
t agent_binary_read_only sh -c '! "$0" exec box -- sh -c "echo x > /.sbx/sbx-agent" 2>/dev/null && cmp -s "$SBX_AGENT" "$SBX_STATE_DIR/box/default.box/agent"' "$SBX"
t root_is_not_host_root sh -c '"$0" exec box -- cat /proc/self/uid_map > "$1/map" && [ "$(awk "NR==1{print \$2}" "$1/map")" != 0 ] && "$0" exec box -- touch /root/owned && [ "$(stat -c %u "$SBX_STATE_DIR/box/default.box/rootfs/root/owned")" != 0 ]' "$SBX" "$WORK"
t no_capabilities_beyond_docker sh -c '"$0" exec box -- grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status > "$1/caps" && grep -q "NoNewPrivs:[[:space:]]*1" "$1/caps" && grep -q "CapEff:[[:space:]]*00000000a80425fb" "$1/caps"' "$SBX" "$WORK"
t no_new_namespaces_or_mounts sh -c '! "$0" exec box -- unshare -U true 2>/dev/null && ! "$0" exec box -- unshare -n true 2>/dev/null && ! "$0" exec box -- mount -t tmpfs none /mnt 2>/dev/null' "$SBX"
t secret_not_in_box sh -c 'k=$(cat "$SBX_STATE_DIR/box/default.key") && [ ${#k} -ge 32 ] && [ "$("$0" exec box -- sh -c "grep -rls $k / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr 2>/dev/null | wc -l; grep -c $k /proc/1/cmdline /proc/1/environ | grep -vc :0; ls -l /proc/1/fd | grep -c key")" = "$(printf "0\n0\n0")" ]' "$SBX"
t state_dir_invisible sh -c '! "$0" exec box -- ls "$SBX_STATE_DIR" 2>/dev/null && [ -z "$("$0" exec box -- find / -xdev -name "*.sock" 2>/dev/null)" ] && ! "$0" exec box -- ls /run/sbx 2>/dev/null' "$SBX"
t own_process_tree sh -c '[ "$("$0" exec box -- sh -c "ls /proc | grep -c \"^[0-9]\"")" -lt 10 ] && "$0" exec box -- cat /proc/1/cmdline | grep -q sbx-agent && ! "$0" exec box -- kill -0 "$1" 2>/dev/null' "$SBX" "$HOST_PID"
t no_host_loopback sh -c '[ -n "$1" ] && python3 -c "import socket; socket.create_connection((\"127.0.0.1\", $1), 2)" && ! "$0" exec box -- python3 -c "import socket; socket.create_connection((\"127.0.0.1\", $1), 2)" 2>/dev/null' "$SBX" "$PORT"

# Control state: what the old layout let a sandbox forge is out of its reach,
# and `down` acts on the runtime's record only.
"$SBX" up victim >/dev/null
mkdir -p "$WORK/fakebin"
printf '#!/bin/sh\ntouch %s/helm-called\n' "$WORK" > "$WORK/fakebin/helm"
chmod +x "$WORK/fakebin/helm"
t tampered_state_ignored sh -c '"$0" exec victim -- sh -c "cd /root; for f in ../default.pid /default.pid ../k8s /k8s ../backend ../services; do printf \"%s\\n\" $1 > \$f; done; printf \"release: prod-db\\nnamespace: production\\n\" > ../k8s; kill $1" 2>/dev/null; SBX_HELM="$2/fakebin/helm" "$0" down victim && kill -0 "$1" && [ ! -e "$2/helm-called" ] && [ ! -e "$SBX_STATE_DIR/victim" ]' "$SBX" "$HOST_PID" "$WORK"
t other_sandbox_unreachable sh -c '"$0" up other >/dev/null && "$0" exec other -- sh -c "echo other-$1 > /root/mine" && ! "$0" exec box -- sh -c "cat /root/mine; ls $SBX_STATE_DIR/other" 2>/dev/null | grep -q "other-" && ! "$0" exec box -- test -e "$SBX_STATE_DIR/other/default.sock"' "$SBX" "$MARK"
t setsid_gone_after_timeout sh -c '"$0" exec --timeout 1 box -- sh -c "setsid sleep 27172 </dev/null >/dev/null 2>&1 & nohup sleep 27173 </dev/null >/dev/null 2>&1 & sleep 30" 2>/dev/null; [ $? -eq 124 ] && sleep 0.3 && ! pgrep -f "^sleep 2717[23]$" && [ "$("$0" exec box -- sh -c "for p in /proc/[0-9]*; do tr \"\\\\0\" \" \" < \$p/cmdline; echo; done | grep -c \"^sleep 2717\"")" = 0 ]' "$SBX"
t setsid_gone_after_down sh -c '"$0" up daemons >/dev/null && "$0" exec daemons -- sh -c "setsid sleep 27182 </dev/null >/dev/null 2>&1 & nohup sleep 27183 </dev/null >/dev/null 2>&1 & (setsid sleep 27184 </dev/null >/dev/null 2>&1 &)" && sleep 0.3 && [ "$(pgrep -fc "^sleep 2718[234]$")" = 3 ] && "$0" down daemons && sleep 0.3 && ! pgrep -f "^sleep 2718[234]$"' "$SBX"

# Limits: a sandbox that hits one fails inside; the host and the sandbox carry on.
t memory_limit_holds sh -c '"$0" up mem --memory 64m >/dev/null && ! "$0" exec mem -- python3 -c "b = bytearray(256 << 20); b[::4096] = b\"x\" * len(b[::4096])" 2>/dev/null && "$0" exec mem -- true' "$SBX"
t pids_limit_holds sh -c '"$0" up pids --pids 30 >/dev/null && "$0" exec pids -- sh -c "for i in \$(seq 60); do sleep 2 & done; wait" 2>"$1/e"; grep -qi "fork\|resource" "$1/e" && sleep 2.5 && "$0" exec pids -- true' "$SBX" "$WORK"

# Bad input: clear errors, nothing half-made left behind.
printf '#!/bin/sh\necho "runc: boom: cannot start" >&2\nexit 1\n' > "$WORK/fakebin/runc"
chmod +x "$WORK/fakebin/runc"
t failing_runtime_leaves_nothing sh -c '! PATH="$1/fakebin:$PATH" "$0" up broken --runtime runc 2>"$1/e" && grep -q "runc" "$1/e" && [ ! -e "$SBX_STATE_DIR/broken" ] && ! ls -d /sys/fs/cgroup/memory/sbx/* 2>/dev/null | xargs -r -n1 basename | grep -q broken' "$SBX" "$WORK"
if ! command -v crun >/dev/null; then
	t missing_runtime_named sh -c '! "$0" up nocrun --runtime crun 2>"$1/e" && grep -q "apt-get install crun" "$1/e" && [ ! -e "$SBX_STATE_DIR/nocrun" ]' "$SBX" "$WORK"
fi
t rootfs_missing sh -c '! "$0" up r1 --rootfs /nonexistent 2>"$1/e" && grep -q "not a directory" "$1/e" && [ ! -e "$SBX_STATE_DIR/r1" ]' "$SBX" "$WORK"
t rootfs_host_root_refused sh -c '! "$0" up r2 --rootfs / 2>"$1/e" && grep -q "own root" "$1/e" && [ ! -e "$SBX_STATE_DIR/r2" ]' "$SBX" "$WORK"

# --rootfs: a tiny image (busybox); the directory itself is never written.
# (The agent must be the static one: a sanitizer build needs the host's loader.)
if ! file -L "$SBX_AGENT" 2>/dev/null | grep -q "statically linked"; then
	echo "skip contain_rootfs_image: $SBX_AGENT is not statically linked (a SAN build); an image has no loader for it"
elif command -v busybox >/dev/null && [ -n "$(busybox --list 2>/dev/null)" ] && file -L "$(command -v busybox)" 2>/dev/null | grep -q "statically linked"; then
	IMG=$WORK/img
	mkdir -p "$IMG/bin" "$IMG/etc" "$IMG/tmp"
	cp "$(command -v busybox)" "$IMG/bin/busybox"
	for a in sh cat echo ls id touch; do ln -s busybox "$IMG/bin/$a"; done
	echo "root:x:0:0:root:/:/bin/sh" > "$IMG/etc/passwd"
	before=$(cd "$IMG" && find . | sort | md5sum)
	t rootfs_image_runs sh -c '"$0" up img --rootfs "$1" >/dev/null && [ "$("$0" exec img -- /bin/sh -c "echo hi > /made-inside; cat /made-inside; ls /usr 2>/dev/null | wc -l")" = "$(printf "hi\n0")" ]' "$SBX" "$IMG"
	t rootfs_dir_unchanged sh -c '"$0" down img && [ "$(cd "$1" && find . | sort | md5sum)" = "$2" ] && [ ! -e "$1/made-inside" ]' "$SBX" "$IMG" "$before"
else
	echo "skip contain_rootfs_image: no static busybox here (apt-get install busybox-static)"
fi

# gVisor: the same sandbox under its own kernel, where runsc starts.
if command -v runsc >/dev/null; then
	if "$SBX" up gv --runtime runsc >/dev/null 2>"$WORK/gv.err"; then
		t runsc_runs sh -c '[ "$("$0" exec gv -- sh -c "echo hi")" = hi ] && echo data | "$0" cp - gv:/root/in.txt && [ "$("$0" cp gv:/root/in.txt -)" = data ]' "$SBX"
		t runsc_host_files_invisible sh -c '! "$0" exec gv -- cat "/etc/$1" 2>/dev/null | grep -q host-secret && "$0" exec gv -- sh -c "echo x > /etc/$1-gv" && [ ! -e "/etc/$1-gv" ] && ! "$0" exec gv -- touch /usr/$1 2>/dev/null' "$SBX" "$MARK"
		t runsc_own_kernel sh -c '"$0" exec gv -- cat /proc/version | grep -qi "gvisor\|Linux version 4.4.0"' "$SBX"
	else
		echo "skip contain_runsc: runsc does not start here: $(tail -n 1 "$WORK/gv.err")"
	fi
else
	echo "skip contain_runsc: runsc (gVisor) is not installed (apt-get install runsc)"
fi
