#!/usr/bin/env bash
# run.sh — runs each libFuzzer target for $FUZZ_TIME seconds (what `make
# fuzz` does). Seeds come from tests/fuzz/corpus/NAME (read only); what the
# fuzzer learns goes to build/fuzz/corpus/NAME. A crash stops with the
# input saved as build/fuzz/crashes/NAME-crash-*: fix the bug, then keep the
# input as tests/fuzz/regress/NAME/<what-it-was> (the suite replays it).
set -u
cd "$(dirname "$0")/../.."
FUZZ_TIME=${FUZZ_TIME:-10}
failed=0
for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	work=build/fuzz/corpus/$name
	mkdir -p "$work" build/fuzz/crashes
	seeds=()
	for d in tests/fuzz/corpus/$name tests/fuzz/regress/$name; do
		[ -d "$d" ] && seeds+=("$d")
	done
	echo "fuzz: $name for ${FUZZ_TIME}s"
	if ! "$bin" -max_total_time="$FUZZ_TIME" -max_len=200000 -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="build/fuzz/crashes/$name-" \
		"$work" "${seeds[@]}" >"build/fuzz/$name.log" 2>&1; then
		echo "FAIL fuzz $name: see build/fuzz/$name.log and build/fuzz/crashes/"
		tail -n 30 "build/fuzz/$name.log"
		failed=1
	else
		grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "build/fuzz/$name.log" | tail -n 2
	fi
done
exit $failed
