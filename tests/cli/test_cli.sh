#!/usr/bin/env bash
# test_cli.sh — the sbx command line as a shell user drives it: exit codes,
# stdin/stdout/stderr, --json, cp both ways, errors that name the fix.
set -u

PREFIX=cli
. "$(dirname "$0")/lib.sh"

up_box

# Start-up: the remote backends' libraries are loaded on first use (host/net/dynlib.h), never by a local call.
t cli_links_no_remote_libs sh -c '! readelf -d "$0" | grep -E "NEEDED.*(libcurl|libcrypto|libssl)"' "$SBX"
t local_exec_maps_no_remote_libs sh -c 'LD_DEBUG=files "$0" exec box -- true 2>"$1/ld" && grep -q "file=libmsgpackc" "$1/ld" && ! grep -E "file=(libcurl|libcrypto|libssl)" "$1/ld"' "$SBX" "$WORK"
t up_prints_name sh -c '"$0" up named | grep -qx named' "$SBX"
t up_random_name sh -c 'n=$("$0" up) && echo "$n" | grep -Eq "^[a-z]{8}$" && "$0" down "$n"' "$SBX"
t up_existing_fails sh -c '! "$0" up box 2>&1 >/dev/null | grep -q "already exists" && exit 1 || exit 0' "$SBX"
t ls_lists sh -c '"$0" ls | grep -q "^box "' "$SBX"
t ls_json sh -c '"$0" ls --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert any(s[\"name\"]==\"box\" and s[\"services\"][0][\"running\"] for s in d)"' "$SBX"
t exec_exit_code sh -c '"$0" exec box -- sh -c "exit 7"; [ $? -eq 7 ]' "$SBX"
t exec_stdout_stderr_split sh -c '[ "$("$0" exec box -- sh -c "echo out; echo err >&2" 2>/dev/null)" = out ] && [ "$("$0" exec box -- sh -c "echo out; echo err >&2" 2>&1 >/dev/null)" = err ]' "$SBX"
t exec_stdin_streams sh -c '[ "$(printf "a\nb\n" | "$0" exec box -- wc -l)" = 2 ]' "$SBX"
t exec_big_stdin sh -c 'head -c 20000000 /dev/urandom > "$1/big" && a=$(sha256sum < "$1/big" | cut -d" " -f1) && b=$("$0" exec box -- sha256sum < "$1/big" | cut -d" " -f1) && [ "$a" = "$b" ]' "$SBX" "$WORK"
t exec_no_shell sh -c '[ "$("$0" exec box -- echo "\$HOME")" = "\$HOME" ]' "$SBX"
t exec_env sh -c '[ "$("$0" exec box -e FOO=bar -- sh -c "echo \$FOO")" = bar ]' "$SBX"
t exec_cwd sh -c '"$0" exec box -- mkdir -p sub && [ "$("$0" exec box -w sub -- pwd)" = /root/sub ]' "$SBX"
t exec_user sh -c '[ "$("$0" exec box -u nobody -- id -u)" = 65534 ]' "$SBX"
t exec_not_found_127 sh -c '"$0" exec box -- no-such-cmd 2>"$1/e"; [ $? -eq 127 ] && grep -q "not found" "$1/e"' "$SBX" "$WORK"
t exec_not_executable_126 sh -c '"$0" exec box -- sh -c "echo data > plain.txt; chmod 644 plain.txt" && "$0" exec box -- ./plain.txt 2>"$1/e"; [ $? -eq 126 ] && grep -q "permission" "$1/e"' "$SBX" "$WORK"
t exec_timeout_124 sh -c '"$0" exec box --timeout 0.3 -- sleep 30 2>"$1/e"; [ $? -eq 124 ] && grep -q "timed out" "$1/e"' "$SBX" "$WORK"
t exec_bad_cwd sh -c '"$0" exec box -w /nonexistent -- true 2>"$1/e"; [ $? -eq 125 ] && grep -q "/nonexistent" "$1/e"' "$SBX" "$WORK"
t exec_json sh -c '"$0" exec box --json -- sh -c "printf hi; printf \"\\377\" >&2; exit 3" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"exit_code\"]==3 and d[\"stdout\"]==\"hi\" and d[\"stderr\"]==\"\ufffd\" and d[\"error\"] is None, d"' "$SBX"
t exec_json_timeout sh -c '"$0" exec box --json --timeout 0.2 -- sleep 5 | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"timed_out\"] and d[\"error\"][\"kind\"]==\"timeout\", d"' "$SBX"
t exec_unknown_sandbox sh -c '"$0" exec nope -- true 2>"$1/e"; [ $? -eq 125 ] && grep -q "no sandbox named .nope.; existing: box" "$1/e" && grep -q "sbx up nope" "$1/e"' "$SBX" "$WORK"
t exec_unknown_service sh -c '"$0" exec box/web -- true 2>"$1/e"; [ $? -eq 125 ] && grep -q "no service .web.; its services: default" "$1/e"' "$SBX" "$WORK"
t cp_roundtrip sh -c 'head -c 5000000 /dev/urandom > "$1/r" && "$0" cp "$1/r" box:in/r.bin && "$0" cp box:in/r.bin "$1/r2" && cmp "$1/r" "$1/r2"' "$SBX" "$WORK"
t cp_into_local_dir sh -c 'mkdir -p "$1/d" && "$0" cp box:in/r.bin "$1/d" && cmp "$1/r" "$1/d/r.bin"' "$SBX" "$WORK"
t cp_stdin_stdout sh -c 'echo piped | "$0" cp - box:p.txt && [ "$("$0" cp box:p.txt -)" = piped ]' "$SBX"
t cp_missing_remote sh -c '! "$0" cp box:nope.txt "$1/x" 2>"$1/e" && grep -q "No such file" "$1/e" && [ ! -e "$1/x" ]' "$SBX" "$WORK"
t cp_failed_keeps_destination sh -c 'echo old > "$1/keep" && ! "$0" cp box:nope.txt "$1/keep" 2>/dev/null && [ "$(cat "$1/keep")" = old ] && [ -z "$(ls -A "$1" | grep sbx-)" ]' "$SBX" "$WORK"
t cp_directory_copies sh -c 'mkdir -p "$1/dd/e" && echo x > "$1/dd/f" && "$0" cp "$1/dd" box:dd && "$0" exec box -- test -d dd/e && [ "$("$0" exec box -- cat dd/f)" = x ]' "$SBX" "$WORK"
t cp_no_sandbox_side sh -c '"$0" cp a b 2>/dev/null; [ $? -eq 2 ]' "$SBX"

cat > "$WORK/values.yaml" <<'Y'
services:
  web:
    workingDir: /srv/web
  default:
    env:
      - name: GREETING
        value: hello there
    securityContext:
      runAsUser: 65534
    resources:
      limits:
        memory: 256Mi
        cpu: 500m
Y
t up_values_services sh -c '"$0" up multi -f "$1/values.yaml" >/dev/null && "$0" ls --json | python3 -c "import json,sys; d={s[\"name\"]: [v[\"name\"] for v in s[\"services\"]] for s in json.load(sys.stdin)}; assert d[\"multi\"]==[\"default\",\"web\"], d" && "$0" exec multi/web -- true' "$SBX" "$WORK"
t services_are_separate sh -c '"$0" exec multi -- sh -c "echo x > /tmp/f" && ! "$0" exec multi/web -- cat /tmp/f 2>/dev/null' "$SBX"
# what a service says applies: env, workingDir, user, limits
t values_env_workdir_user sh -c '[ "$("$0" exec multi -- sh -c "echo \$GREETING; id -u")" = "$(printf "hello there\n65534")" ] && [ "$("$0" exec multi/web -- pwd)" = /srv/web ] && [ "$("$0" exec multi -u root -- id -u)" = 0 ]' "$SBX"
t values_memory_limit sh -c 'for f in /sys/fs/cgroup/memory/sbx/*/memory.limit_in_bytes /sys/fs/cgroup/sbx/*/memory.max; do [ -f "$f" ] && grep -qx 268435456 "$f" && exit 0; done; exit 1' "$SBX"
printf 'services:\n  default:\n    image: python:3.12\n' > "$WORK/image.yaml"
t image_needs_rootfs sh -c '! "$0" up img -f "$1/image.yaml" 2>"$1/e" && grep -q "image python:3.12" "$1/e" && grep -q -- "--rootfs" "$1/e" && ! "$0" ls | grep -q "^img "' "$SBX" "$WORK"
printf 'services:\n  a: [unclosed\n' > "$WORK/bad.yaml"
t up_bad_yaml sh -c '! "$0" up bad -f "$1/bad.yaml" 2>"$1/e" && grep -q "bad.yaml:[0-9]" "$1/e" && ! "$0" ls | grep -q "^bad "' "$SBX" "$WORK"
printf 'image: x\n' > "$WORK/nosvc.yaml"
t up_no_services sh -c '! "$0" up bad -f "$1/nosvc.yaml" 2>"$1/e" && grep -q "services" "$1/e"' "$SBX" "$WORK"

t agent_died_message sh -c '"$0" up dying >/dev/null && kill -9 $(cat "$SBX_STATE_DIR/dying/default.box/pid") && sleep 0.2 && ! "$0" exec dying -- true 2>"$1/e" && grep -q "not running" "$1/e" && grep -q "sbx down dying" "$1/e"' "$SBX" "$WORK"
t host_agent_died_message sh -c '"$0" up hdying --host >/dev/null && kill -9 $(cat "$SBX_STATE_DIR/hdying/default.pid") && sleep 0.2 && ! "$0" exec hdying -- true 2>"$1/e" && grep -q "not running" "$1/e"' "$SBX" "$WORK"

t contained_no_network sh -c '[ "$("$0" exec box -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"")" = lo ]' "$SBX"
t contained_private_tmp sh -c 'm=sbx-iso-$$ && "$0" exec box -- touch /tmp/$m && [ ! -e /tmp/$m ]' "$SBX"
if unshare -Ur true 2>/dev/null; then
	t host_isolate_no_network sh -c '"$0" up iso --host --isolate >/dev/null && [ "$("$0" exec iso -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"")" = lo ]' "$SBX"
else
	echo "skip cli_host_isolate: user namespaces are not available here"
fi
t host_mode_is_host sh -c '"$0" up plain --host >/dev/null && [ "$("$0" exec plain -- cat /proc/self/uid_map | tr -s " ")" = " 0 0 4294967295" ] && "$0" down plain' "$SBX"
t bad_limits sh -c '! "$0" up l1 --memory lots 2>"$1/e" && grep -q "512m" "$1/e" && ! "$0" up l2 --pids -3 2>/dev/null && ! "$0" up l3 --cpus x 2>/dev/null && ! "$0" up l4 --host --memory 1g 2>/dev/null && [ -z "$("$0" ls | grep "^l[1-4] ")" ]' "$SBX" "$WORK"
t unknown_runtime sh -c '! "$0" up rt --runtime kata 2>"$1/e" && grep -q "crun, runc or runsc" "$1/e" && ! "$0" ls | grep -q "^rt "' "$SBX" "$WORK"

t help_texts sh -c 'for c in up exec cp ls down; do "$0" $c --help | grep -q "usage: sbx $c" || exit 1; done; "$0" --help | grep -q "usage: sbx"' "$SBX"
t unknown_command sh -c '"$0" frobnicate 2>/dev/null; [ $? -eq 2 ]' "$SBX"
t down_removes sh -c '"$0" down box && ! "$0" ls | grep -q "^box " && [ ! -e "$SBX_STATE_DIR/box" ]' "$SBX"
t down_all sh -c '"$0" down --all && [ -z "$("$0" ls)" ]' "$SBX"
t down_unknown sh -c '! "$0" down nope 2>/dev/null' "$SBX"
