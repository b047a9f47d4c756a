#!/usr/bin/env bash
# test_k8s_cli.sh — `sbx up --backend k8s`, exec, cp, ls and down end to end against the
# Kubernetes API emulator (tests/k8s/emulator.py) with the real helm: the chart installed as a
# release, the agent copied into each service's pod, a failing pod diagnosed with nothing left
# behind, `down --all --backend k8s` removing only k8s sandboxes.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-k8s-cli.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-k8s-work.XXXXXX)
EMU_PID=
cleanup() {
	"$SBX" down --all >/dev/null 2>&1
	[ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null
	rm -rf "$SBX_STATE_DIR" "$WORK"
}
trap cleanup EXIT

. tests/cli/k8s_emulator.sh
EMULATOR_EXEC_LOG=$WORK/exec.log start_k8s_emulator k8s_cli cli-token

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   k8s_cli_$name"
	else
		echo "FAIL k8s_cli_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

cat >"$WORK/values.yaml" <<V
services:
  default:
    image: python:3.12
  web:
    image: nginx
V
"$SBX" up kbox --backend k8s -f "$WORK/values.yaml" >"$WORK/up.out" 2>"$WORK/up.err" ||
	{ echo "FAIL k8s_cli_up: $(tail -3 "$WORK/up.err")"; exit 1; }
echo "ok   k8s_cli_up"
"$SBX" up lbox >/dev/null 2>&1 # a local sandbox next to it

t up_prints_name grep -qx kbox "$WORK/up.out"
t release_labelled sh -c '"$0" list -n evals --selector inspectSandbox=true -q | grep -qx kbox' "$HELM"
t exec_in_default_pod sh -c '[ "$("$0" exec kbox -- sh -c "basename \$PWD")" = agent-env-kbox-default-0 ]' "$SBX"
t exec_in_web_pod sh -c '[ "$("$0" exec kbox/web -- sh -c "basename \$PWD")" = agent-env-kbox-web-0 ]' "$SBX"
t exec_exit_code sh -c '"$0" exec kbox -- sh -c "exit 7"; [ $? -eq 7 ]' "$SBX"
t exec_stdin sh -c '[ "$(printf "a\nb\n" | "$0" exec kbox -- wc -l)" = 2 ]' "$SBX"
t exec_streams_past_10m sh -c '[ "$("$0" exec kbox -- head -c 20000000 /dev/zero | wc -c)" = 20000000 ]' "$SBX"
t exec_epipe_141 bash -c 'timeout 30 "$0" exec kbox -- sh -c "while :; do echo tick; sleep .1; done" | head -1 >/dev/null; [ "${PIPESTATUS[0]}" = 141 ]' "$SBX"
t exec_tty_size sh -c 'python3 "$1" --rows 31 --cols 97 --check-mode -- "$0" exec -it kbox -- sh -c "test -t 0 && stty size" > "$2/tty.out" && grep -q "^31 97" "$2/tty.out"' "$SBX" "$(dirname "$0")/pty_drive.py" "$WORK"
t exec_tty_ctrl_c sh -c 'python3 "$1" --check-mode --wait ready --send "0.3:\x03" -- "$0" exec -it kbox -- sh -c "echo ready; exec sleep 100" >/dev/null; [ $? -eq 130 ]' "$SBX" "$(dirname "$0")/pty_drive.py"
t shell_exit_status sh -c 'python3 "$1" --check-mode --send "1.5:exit 3\n" -- "$0" shell kbox >/dev/null; [ $? -eq 3 ]' "$SBX" "$(dirname "$0")/pty_drive.py"
t cp_both_ways sh -c 'head -c 3000000 /dev/urandom > "$1/f" && "$0" cp "$1/f" kbox:data.bin && "$0" cp kbox:data.bin "$1/g" && cmp "$1/f" "$1/g"' "$SBX" "$WORK"
t detach_logs_follow sh -c 'id=$("$0" exec -d kbox -- sh -c "echo a; sleep 0.3; echo b >&2; exit 4") && echo "$id" | grep -Eqx "[0-9a-f]{12}" && "$0" logs -f kbox "$id" >"$1/d.out" 2>"$1/d.err"; [ $? -eq 4 ] && [ "$(cat "$1/d.out")" = a ] && [ "$(cat "$1/d.err")" = b ] && [ "$("$0" logs kbox "$id" 2>/dev/null)" = a ]' "$SBX" "$WORK"
t detach_ps_kill sh -c 'id=$("$0" exec -d kbox/web -- sleep 31601) && "$0" ps kbox/web | grep "^$id " | grep -q "running .*sleep 31601" && ! "$0" ps kbox | grep -q "^$id " && "$0" kill kbox/web "$id" -s KILL && for i in $(seq 100); do "$0" ps kbox/web | grep "^$id " | grep -q "exited 137" && exit 0; sleep 0.1; done; exit 1' "$SBX"
t cp_tree_both_ways sh -c 'mkdir -p "$1/kt/e" && printf "#!/bin/sh\necho ran\n" > "$1/kt/run.sh" && chmod 755 "$1/kt/run.sh" && ln -s run.sh "$1/kt/l" && "$0" cp -r "$1/kt" kbox:kt && [ "$("$0" exec kbox -- ./kt/run.sh)" = ran ] && "$0" cp kbox:kt "$1/kt2" && diff -r --no-dereference "$1/kt" "$1/kt2" && [ "$(stat -c %a "$1/kt2/run.sh")" = 755 ]' "$SBX" "$WORK"
t cp_into_dir_and_slash_rules sh -c '"$0" exec kbox -- mkdir -p into && "$0" cp "$1/f" kbox:into/ && "$0" exec kbox -- test -f into/f && ! "$0" cp "$1/f" kbox:nodir/ 2>/dev/null && ! "$0" exec kbox -- test -e nodir' "$SBX" "$WORK"
t agent_copied_once sh -c '[ "$(ls "$1/pods/evals/agent-env-kbox-default-0/bin" | grep -c "^sbx-agent-[0-9a-f]*$")" = 1 ]' "$SBX" "$WORK"

# The connection holders `sbx up` started (one per service, hold.c / cmd_hold.c).
HOLD=$SBX_STATE_DIR/kbox/hold
dials() { grep -c -- "--attach" "$WORK/exec.log"; }
t holder_private sh -c '[ -S "$0/default.sock" ] && [ -S "$0/web.sock" ] && [ "$(stat -c %a "$0")" = 700 ] && [ $((0$(stat -c %a "$0/default.sock") & 077)) = 0 ]' "$HOLD"
N0=$(dials)
t holder_exec_byte_exact sh -c 'head -c 3000000 /dev/urandom > "$1/h" && "$0" exec kbox -- cat < "$1/h" > "$1/h2" && cmp "$1/h" "$1/h2" && "$0" exec kbox -- cat < "$1/h" | cmp - "$1/h"' "$SBX" "$WORK"
t holder_no_new_dials sh -c '"$0" exec kbox/web -- true && [ "$(grep -c -- "--attach" "$1/exec.log")" = "$2" ]' "$SBX" "$WORK" "$N0"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	# attack: another user cannot reach the held connection (the 0700 directory stops it
	# first; the socket's 0600 mode would stop it too)
	t holder_other_uid_refused sh -c '! setpriv --reuid=65534 --regid=65534 --clear-groups python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$0/default.sock" 2>/dev/null && chmod 711 "$0" && ! setpriv --reuid=65534 --regid=65534 --clear-groups python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$0/default.sock" 2>/dev/null; rc=$?; chmod 700 "$0"; exit $rc' "$HOLD"
fi
WEB_HOLDER=$(cat "$HOLD/web.pid" 2>/dev/null)
t holder_dead_falls_back sh -c 'kill -9 "$(cat "$0/default.pid")" && sleep 0.2 && [ "$("$1" exec kbox -- echo direct)" = direct ] && [ "$(grep -c -- "--attach" "$2/exec.log")" -gt "$3" ]' "$HOLD" "$SBX" "$WORK" "$N0"

cat >"$WORK/compose.yaml" <<C
services:
  app:
    image: python:3.12
    x-default: true
  db:
    image: postgres
C
t up_from_compose sh -c '"$0" up cbox --backend k8s -f "$1/compose.yaml" >/dev/null && [ "$("$0" exec cbox/db -- sh -c "basename \$PWD")" = agent-env-cbox-db-0 ]' "$SBX" "$WORK"

cat >"$WORK/bad.yaml" <<B
annotations:
  emulator.sbx/waiting: ImagePullBackOff
services:
  default:
    image: no-such/image
B
t bad_image_diagnosed_and_removed sh -c '! "$0" up bad --backend k8s -f "$2/bad.yaml" 2>"$2/bad.err" >/dev/null && grep -q "release bad: pod evals/agent-env-bad-default-0" "$2/bad.err" && grep -q ImagePullBackOff "$2/bad.err" && ! "$1" list -n evals -q | grep -qx bad && ! "$0" ls | grep -q "^bad "' "$SBX" "$HELM" "$WORK"

# The kubectl fallback transport: the agent copy and every session go through `kubectl exec -i`
# (a wrapper logs each call, so the test sees that kubectl, not the WebSocket, carried them).
if KUBECTL=$(tests/chart/get-helm.sh build/tools 4 kubectl 2>>"$WORK/helm.err"); then
	cat >"$WORK/kubectl" <<K
#!/bin/sh
echo "\$*" >>"$WORK/kubectl.log"
exec "$KUBECTL" "\$@"
K
	chmod +x "$WORK/kubectl"
	export SBX_KUBECTL=$WORK/kubectl
	t kubectl_up sh -c '"$0" up xbox --backend k8s --transport kubectl >/dev/null' "$SBX"
	t kubectl_exec sh -c '[ "$("$0" exec xbox -- sh -c "basename \$PWD")" = agent-env-xbox-default-0 ]' "$SBX"
	t kubectl_exec_stdin_and_status sh -c '[ "$(printf "a\nb\n" | "$0" exec xbox -- wc -l)" = 2 ] && { "$0" exec xbox -- sh -c "exit 5"; [ $? -eq 5 ]; }' "$SBX"
	t kubectl_cp_both_ways sh -c 'head -c 2000000 /dev/urandom > "$1/xf" && "$0" cp "$1/xf" xbox:x.bin && "$0" cp xbox:x.bin "$1/xg" && cmp "$1/xf" "$1/xg"' "$SBX" "$WORK"
	t kubectl_carried_it sh -c 'grep -q "exec -i -n evals agent-env-xbox-default-0 -- sh -c" "$0/kubectl.log" && grep -q "exec -i -n evals agent-env-xbox-default-0 -- bin/sbx-agent-[0-9a-f]* --attach bin/sbx-agent-[0-9a-f]*.sock" "$0/kubectl.log"' "$WORK"
	t kubectl_bad_transport sh -c '! "$0" up ybox --backend k8s --transport spdy 2>"$1/tr.err" && grep -q "unknown transport" "$1/tr.err"' "$SBX" "$WORK"
	t kubectl_down sh -c '"$0" down xbox && ! "$1" list -n evals -q | grep -qx xbox' "$SBX" "$HELM"
	unset SBX_KUBECTL
else
	echo "FAIL k8s_cli_kubectl: no kubectl: $(tail -3 "$WORK/helm.err")"
fi

t ls_shows_pods sh -c '"$0" ls | grep -q "^kbox .* k8s .*pod evals/agent-env-kbox-default-0"' "$SBX"
t down_one sh -c '"$0" down cbox && ! "$1" list -n evals -q | grep -qx cbox' "$SBX" "$HELM"
t down_all_k8s_only sh -c '"$0" down --all --backend k8s && ! "$1" list -n evals -q | grep -q . && "$0" ls | grep -q "^lbox " && ! "$0" ls | grep -q "^kbox "' "$SBX" "$HELM"
# (gone, or a zombie when the test runner is a subreaper: the holder is nobody's child;
# down returns once the holder removed its pidfile, so its exit may follow by moments)
t down_stops_holder sh -c '[ -n "$0" ] && for i in $(seq 50); do { ! kill -0 "$0" 2>/dev/null || [ "$(cut -d" " -f3 /proc/$0/stat 2>/dev/null)" = Z ]; } && exit 0; sleep 0.1; done; exit 1' "$WEB_HOLDER"
SBX_HOLD_IDLE=1 "$SBX" up ibox --backend k8s >/dev/null 2>&1
t holder_idle_exit sh -c 'for i in $(seq 100); do [ -e "$1/ibox/hold/default.sock" ] || break; sleep 0.1; done; ! [ -e "$1/ibox/hold/default.sock" ] && grep -q "idle" "$1/ibox/hold/default.log" && [ "$("$0" exec ibox -- echo after)" = after ]' "$SBX" "$SBX_STATE_DIR"
t no_holder_flag sh -c '"$0" up nbox --backend k8s --no-holder >/dev/null && ! [ -e "$1/nbox/hold" ] && [ "$("$0" exec nbox -- echo ok)" = ok ]' "$SBX" "$SBX_STATE_DIR"
"$SBX" down ibox nbox >/dev/null 2>&1
