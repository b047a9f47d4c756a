#!/usr/bin/env bash
# test_exec_stream.sh — `sbx exec` as a pipeline member on the local
# backend: unlimited streamed output, sizes and timeouts it accepts or
# refuses, EPIPE (exit 141), signals forwarded once then cancelling, a
# killed sbx taking its command along, -e NAME, --env-file, --json codes.
set -u

PREFIX=stream
. "$(dirname "$0")/lib.sh"

up_box

# Waits (up to 10 s) until file $1 holds "ready".
export WAIT_READY='for i in $(seq 100); do grep -q ready "$0" 2>/dev/null && break; sleep 0.1; done'
# How many processes in the box have a command line starting with $1.
count='for p in /proc/[0-9]*; do tr "\0" " " < $p/cmdline 2>/dev/null; echo; done | grep -c "^$0" || true'

t no_limit_when_streaming sh -c '[ "$("$0" exec box -- head -c 100000000 /dev/zero | wc -c)" = 100000000 ]' "$SBX"
t json_keeps_default_limit sh -c '"$0" exec box --json -- head -c 11000000 /dev/zero | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"truncated\"] and len(d[\"stdout\"])==10485760, len(d[\"stdout\"])"' "$SBX"
t limit_suffixes sh -c '[ "$("$0" exec box --limit 1k -- head -c 5000 /dev/zero 2>/dev/null | wc -c)" = 1024 ] && [ "$("$0" exec box --limit 1G -- head -c 5000 /dev/zero | wc -c)" = 5000 ] && [ "$("$0" exec box --limit 0 -- head -c 12000000 /dev/zero | wc -c)" = 12000000 ] && [ "$("$0" exec box --json --limit 2M -- head -c 3000000 /dev/zero | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"stdout\"]))")" = 2097152 ]' "$SBX"
t limit_garbage_refused sh -c 'for v in abc 12q -5 "" 1e30 nan; do "$0" exec box --limit "$v" -- true 2>/dev/null; [ $? -eq 2 ] || exit 1; done' "$SBX"
t timeout_unhonourable_refused sh -c 'for v in 1e17 inf nan -1 0 abc 31536001; do "$0" exec box --timeout "$v" -- true 2>"$1/e"; [ $? -eq 2 ] && grep -q "seconds" "$1/e" || exit 1; done; "$0" exec box --timeout 31536000 -- true' "$SBX" "$WORK"
t timeout_still_works sh -c '"$0" exec box --timeout 0.3 -- sleep 30 2>/dev/null; [ $? -eq 124 ]' "$SBX"
t epipe_exits_141_code bash -c 'timeout 20 "$0" exec box -- sh -c "while :; do echo tick; sleep .1; done" | head -1 >/dev/null; [ "${PIPESTATUS[0]}" = 141 ]' "$SBX"
t epipe_cancels_command bash -c 'timeout 20 "$0" exec box -- sh -c "echo x; exec sleep 31401" | head -1 >/dev/null; sleep 0.3; [ "$("$0" exec box -- sh -c "$1" "sleep 31401")" = 0 ]' "$SBX" "$count"
t epipe_json bash -c '"$0" exec box --json -- head -c 200000 /dev/zero | head -c 10 >/dev/null; [ "${PIPESTATUS[0]}" = 141 ]' "$SBX"
t epipe_on_stderr bash -c 'timeout 20 "$0" exec box -- sh -c "while :; do echo tock >&2; sleep .1; done" 2>&1 >/dev/null | head -1 >/dev/null; [ "${PIPESTATUS[0]}" = 141 ]' "$SBX"
t signal_forwarded_once bash -c '"$0" exec box -- sh -c "trap \"echo got-INT\" INT; echo ready; sleep 0.6; sleep 0.6; echo end" >"$1/o1" & p=$!; sh -c "$WAIT_READY" "$1/o1"; kill -INT $p; wait $p; [ $? -eq 0 ] && grep -q got-INT "$1/o1" && grep -q end "$1/o1"' "$SBX" "$WORK"
t second_signal_cancels bash -c '"$0" exec box -- sh -c "trap \"echo got-TERM\" TERM; trap \"\" INT HUP; echo ready; while :; do sleep 0.1; done; : sleep 31402" >"$1/o2" 2>"$1/e2" & p=$!; sh -c "$WAIT_READY" "$1/o2"; kill -TERM $p; sleep 0.4; kill -INT $p; for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; wait $p; rc=$?; [ $rc -eq 130 ] && grep -q got-TERM "$1/o2" && grep -q cancelling "$1/e2" && sleep 0.3 && [ "$("$0" exec box -- sh -c "$2" "sh -c trap")" = 0 ]' "$SBX" "$WORK" "$count"
t hup_forwarded bash -c '"$0" exec box -- sh -c "trap \"echo got-HUP; exit 5\" HUP; echo ready; while :; do sleep 0.1; done" >"$1/o3" & p=$!; sh -c "$WAIT_READY" "$1/o3"; kill -HUP $p; wait $p; [ $? -eq 5 ] && grep -q got-HUP "$1/o3"' "$SBX" "$WORK"
t killed_cli_kills_command bash -c '"$0" exec box -- sleep 31403 & p=$!; sleep 0.5; kill -9 $p; wait $p 2>/dev/null; for i in $(seq 20); do [ "$("$0" exec box -- sh -c "$1" "sleep 31403")" = 0 ] && exit 0; sleep 0.1; done; exit 1' "$SBX" "$count"
t env_name_passes_host_value sh -c '[ "$(FOO=from-host "$0" exec box -e FOO -e BAR=b -- sh -c "echo \$FOO-\$BAR")" = from-host-b ]' "$SBX"
t env_name_unset_skipped sh -c 'unset NOPE_X; [ "$("$0" exec box -e NOPE_X -- sh -c "echo \${NOPE_X-unset}")" = unset ]' "$SBX"
t env_bad_refused sh -c '"$0" exec box -e =x -- true 2>/dev/null; [ $? -eq 2 ]' "$SBX"
t env_file sh -c 'printf "# comment\nA=1\n\n  B\nC=x=y\n" > "$1/env" && [ "$(B=bee "$0" exec box --env-file "$1/env" -- sh -c "echo \$A \$B \$C")" = "1 bee x=y" ]' "$SBX" "$WORK"
t env_file_missing sh -c '"$0" exec box --env-file "$1/none" -- true 2>"$1/e"; [ $? -eq 2 ] && grep -q "No such file" "$1/e"' "$SBX" "$WORK"
t json_not_found_127 sh -c '"$0" exec box --json -- no-such-cmd > "$1/j"; [ $? -eq 127 ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"exit_code\"]==127, d" "$1/j"' "$SBX" "$WORK"
t json_codes_match sh -c '"$0" exec box --json -- sh -c "exit 9" > "$1/j"; [ $? -eq 9 ] && grep -q "\"exit_code\": 9" "$1/j" && "$0" exec box --json --timeout 0.2 -- sleep 5 > "$1/j"; [ $? -eq 124 ] && grep -q "\"exit_code\": 124" "$1/j"' "$SBX" "$WORK"
