#!/usr/bin/env bash
# test_exec_detach.sh — detached commands on the local backend: `sbx exec -d`
# prints an id at once and the command outlives sbx; `sbx ps` lists it
# (running, then exited with its code); `sbx logs [-f]` gives its output
# byte-exact, stdout and stderr apart, -f until it exits; `sbx kill [-s]`;
# ids are validated; `sbx down` kills it. Attacks: a hostile command line
# in `ps` reaches the terminal only escaped; a flood of output (big chunks
# or one byte per write) leaves the agent's memory within the ring bound.
set -u

PREFIX=detach
. "$(dirname "$0")/lib.sh"

up_box

# until_ps ID TEXT: waits (up to 10 s) until `sbx ps box` shows TEXT on ID's row.
export UNTIL_PS='for i in $(seq 100); do "$SBX" ps box | grep "^$0 " | grep -q -- "$1" && exit 0; sleep 0.1; done; "$SBX" ps box; exit 1'
export SBX

t prints_id_at_once sh -c 'id=$("$SBX" exec -d box -- sleep 31501) && echo "$id" | grep -Eqx "[0-9a-f]{12}" && sh -c "$UNTIL_PS" "$id" running'
t outlives_cli sh -c 'id=$("$SBX" exec -d box -- sh -c "sleep 0.3; echo later > /tmp/outlived") && for i in $(seq 100); do [ "$("$SBX" exec box -- cat /tmp/outlived 2>/dev/null)" = later ] && exit 0; sleep 0.1; done; exit 1'
t ps_exited_code sh -c 'id=$("$SBX" exec -d box -- sh -c "exit 7") && sh -c "$UNTIL_PS" "$id" "exited 7" && "$SBX" ps box | grep "^$id " | grep -q "sh -c exit 7"'
t logs_streams_apart sh -c 'id=$("$SBX" exec -d box -- sh -c "echo out1; echo err1 >&2; echo out2") && sh -c "$UNTIL_PS" "$id" "exited 0" && [ "$("$SBX" logs box "$id" 2>/dev/null)" = "$(printf "out1\nout2")" ] && [ "$("$SBX" logs box "$id" 2>&1 >/dev/null)" = err1 ]'
t logs_repeatable sh -c 'id=$("$SBX" exec -d box -- echo again) && sh -c "$UNTIL_PS" "$id" exited && [ "$("$SBX" logs box "$id")" = again ] && [ "$("$SBX" logs box "$id")" = again ]'
t logs_running_returns sh -c 'id=$("$SBX" exec -d box -- sh -c "echo first; exec sleep 31502") && for i in $(seq 100); do [ "$("$SBX" logs box "$id")" = first ] && exit 0; sleep 0.1; done; exit 1'
t logs_follow_until_exit sh -c 'id=$("$SBX" exec -d box -- sh -c "echo a; sleep 0.5; echo b; exit 3"); "$SBX" logs -f box "$id" > "$1/f"; rc=$?; [ $rc -eq 3 ] && [ "$(cat "$1/f")" = "$(printf "a\nb")" ]' _ "$WORK"
t logs_byte_exact sh -c 'id=$("$SBX" exec -d box -- sh -c "printf \"\\033]0;t\\007\\033[2J\\r\\000\\377x\"") && sh -c "$UNTIL_PS" "$id" exited && "$SBX" logs box "$id" > "$1/b" && printf "\033]0;t\007\033[2J\r\000\377x" | cmp - "$1/b"' _ "$WORK"
t ps_escapes_hostile_command sh -c 'id=$("$SBX" exec -d box -- sh -c "sleep 31503 #$(printf "\033]0;pwned\007\033[2J")") && "$SBX" ps box > "$1/ps" && ! grep -q "$(printf "\033")" "$1/ps" && ! grep -q "$(printf "\007")" "$1/ps" && grep -q "sleep 31503" "$1/ps"' _ "$WORK"
t kill_term sh -c 'id=$("$SBX" exec -d box -- sleep 31504) && "$SBX" kill box "$id" && sh -c "$UNTIL_PS" "$id" "exited 143"'
t kill_signal_names sh -c 'id=$("$SBX" exec -d box -- sleep 31505) && "$SBX" kill box "$id" -s KILL && sh -c "$UNTIL_PS" "$id" "exited 137" && id=$("$SBX" exec -d box -- sleep 31506) && "$SBX" kill -s SIGINT box "$id" && sh -c "$UNTIL_PS" "$id" "exited 130" && id=$("$SBX" exec -d box -- sleep 31507) && "$SBX" kill box "$id" -s 9 && sh -c "$UNTIL_PS" "$id" "exited 137"'
t kill_bad_signal sh -c 'id=$("$SBX" exec -d box -- sleep 31508); for s in NOPE 0 65 -1 ""; do "$SBX" kill box "$id" -s "$s" 2>/dev/null; [ $? -eq 2 ] || exit 1; done; sh -c "$UNTIL_PS" "$id" running'
t ids_validated sh -c 'for id in ../x "a;rm -rf /" "" ABC 0123456789abcdef x/y "a b" "$(printf "\033x")"; do for c in logs kill; do "$SBX" $c box "$id" 2>"$1/e"; [ $? -eq 2 ] && grep -q "not a detached command" "$1/e" || exit 1; done; done' _ "$WORK"
t unknown_id sh -c '"$SBX" logs box 0000deadbeef 2>"$1/e"; [ $? -eq 1 ] && grep -q "no detached command" "$1/e" && "$SBX" kill box 0000deadbeef 2>/dev/null; [ $? -eq 1 ]' _ "$WORK"
t not_found_127 sh -c '"$SBX" exec -d box -- no-such-cmd-x 2>/dev/null; [ $? -eq 127 ]'
t refuses_stdin_json sh -c 'for o in -i --json "--limit 1k" -di; do "$SBX" exec -d $o box -- true 2>/dev/null </dev/null; [ $? -eq 2 ] || exit 1; done'

# The agent is pid 1 in the box: its resident memory, in kB. Under SAN=1 the agent's
# ASan keeps freed memory in its quarantine (256 MiB by default, plus its shadow and
# allocator slack: measured to plateau near 330 MB with a flood running), which the bound allows
# for; an unbounded ring would never report "dropped" (UNTIL_DROPPED) in the first place.
rss='grep VmRSS /proc/1/status | tr -dc 0-9'
export RSS_BOUND=$(( ${SAN:-0} == 1 ? 12000 + 400000 : 12000 ))
# until_dropped ID: waits (up to 30 s) until ID's ring has let output go.
export UNTIL_DROPPED='for i in $(seq 300); do "$SBX" logs box "$0" 2>&1 >/dev/null | grep -q "were dropped" && exit 0; sleep 0.1; done; exit 1'
t flood_bounded sh -c 'before=$("$SBX" exec box -- sh -c "$1"); id=$("$SBX" exec -d box -- cat /dev/zero) && id2=$("$SBX" exec -d box -- dd if=/dev/zero bs=1 count=300000000) && sh -c "$UNTIL_DROPPED" "$id" && sh -c "$UNTIL_DROPPED" "$id2" && after=$("$SBX" exec box -- sh -c "$1") && echo "rss $before -> $after kB" && [ $((after - before)) -lt $RSS_BOUND ] && "$SBX" logs box "$id" 2>/dev/null | wc -c > "$2/n" && [ "$(cat "$2/n")" -le 1048576 ] && [ "$(cat "$2/n")" -gt 0 ] && "$SBX" ps box | grep "^$id " | grep -q running && "$SBX" kill box "$id" -s KILL && "$SBX" kill box "$id2" -s KILL' _ "$rss" "$WORK"
t flood_says_dropped sh -c 'id=$("$SBX" exec -d box -- head -c 5000000 /dev/zero) && sh -c "$UNTIL_PS" "$id" exited && "$SBX" logs box "$id" 2>"$1/e" | wc -c >/dev/null && grep -q "were dropped" "$1/e"' _ "$WORK"

t down_kills_it sh -c '"$SBX" up box2 >/dev/null && "$SBX" exec -d box2 -- sleep 31509 >/dev/null && pgrep -f "^sleep 31509" >/dev/null && "$SBX" down box2 && for i in $(seq 50); do pgrep -f "^sleep 31509" >/dev/null || exit 0; sleep 0.1; done; exit 1'
t help sh -c '"$SBX" ps --help | grep -q "detached" && "$SBX" logs --help | grep -q -- "--follow" && "$SBX" kill --help | grep -q -- "--signal" && "$SBX" exec --help | grep -q -- "--detach"'
