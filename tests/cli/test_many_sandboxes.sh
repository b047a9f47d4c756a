#!/usr/bin/env bash
# test_many_sandboxes.sh — `sbx ls` and `sbx down --all` see every sandbox,
# not a fixed number of them (they once stopped at 256: the rest kept
# running and down --all exited 0).
#
# 300 local sandboxes are made cheaply as state entries (state.c): each an
# uncontained service whose pid file names a `sleep` this script started,
# so that down has a real process to end for each.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-many-test.XXXXXX)
N=300
pids=()
cleanup() {
	chattr -i "$SBX_STATE_DIR"/*/pinned 2>/dev/null
	umount "$SBX_STATE_DIR"/*/pinned 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$SBX_STATE_DIR"
}
trap cleanup EXIT

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   many_$name"
	else
		echo "FAIL many_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

make_boxes() { # first, last: state entries box-FIRST..box-LAST, each with a live process
	for i in $(seq "$1" "$2"); do
		local d=$SBX_STATE_DIR/box-$(printf %03d "$i")
		mkdir -p "$d/default.root"
		echo default >"$d/services"
		sleep 1000 &
		pids+=($!)
		echo $! >"$d/default.pid"
	done
}
alive() { # how many of the sleeps still run (a reaped or zombie one does not)
	local n=0
	for p in "${pids[@]}"; do
		[ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null && n=$((n + 1))
	done
	echo $n
}

make_boxes 1 $N

t ls_lists_all sh -c '[ "$("$0" ls | grep -c "^box-")" -eq "$1" ]' "$SBX" $N
t ls_json_lists_all sh -c '"$0" ls --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert len(d)==$1 and d[-1][\"name\"]==\"box-300\" and all(s[\"services\"][0][\"running\"] for s in d), len(d)"' "$SBX" $N
t ls_sorted sh -c '"$0" ls | grep "^box-" | cut -d" " -f1 | sort -c' "$SBX"
t unknown_name_lists_some sh -c '"$0" exec nope -- true 2>"$1/e"; [ $? -eq 125 ] && grep -q "box-001" "$1/e" && grep -q "and 280 more (sbx ls)" "$1/e"' "$SBX" "$SBX_STATE_DIR"
t down_all_removes_all sh -c '"$0" down --all && [ -z "$(ls -A "$SBX_STATE_DIR" | grep "^box-")" ] && [ -z "$("$0" ls)" ]' "$SBX"
wait 2>/dev/null # reap the ended sleeps
t down_all_ended_every_process sh -c '[ "$1" -eq 0 ]' sh "$(alive)"

# A state directory down cannot remove: the others still go, the exit code says so.
pids=()
make_boxes 1 $N
pin=$SBX_STATE_DIR/box-150/pinned
touch "$pin"
if chattr +i "$pin" 2>/dev/null || { rm -f "$pin" && mkdir "$pin" && mount -t tmpfs none "$pin" 2>/dev/null; }; then
	t down_all_fails_when_one_stays sh -c '"$0" down --all 2>"$1/e"; rc=$?; [ $rc -ne 0 ] && grep -q "box-150" "$1/e" && grep -q "sbx down box-150" "$1/e" && [ "$(ls -A "$SBX_STATE_DIR" | grep "^box-")" = box-150 ] && [ "$("$0" ls | grep -c "^box-")" -eq 1 ]' "$SBX" "$(mktemp -d)"
	chattr -i "$pin" 2>/dev/null
	umount "$pin" 2>/dev/null
	t down_retry_after_fix sh -c '"$0" down box-150 && [ -z "$("$0" ls)" ]' "$SBX"
else
	echo "skip many_down_all_fails_when_one_stays: neither chattr +i nor a tmpfs mount works here"
fi
wait 2>/dev/null
