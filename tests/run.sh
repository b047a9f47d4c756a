#!/usr/bin/env bash
# run.sh — runs every test program of the suite and adds up their results.
#
# Each test program prints one line per test: "ok   NAME", "FAIL NAME: why"
# or "skip NAME: why". A program that exits non-zero without printing a
# FAIL line (a crash, a sanitizer report, a hang killed by the timeout)
# counts as one failure. The last line is the suite's summary:
#   N passed, N failed, N skipped
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export SBX_AGENT="$PWD/$BUILD/sbx-agent"
export SBX_BIN="$PWD/$BUILD/sbx"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TIMEOUT=${TEST_TIMEOUT:-300}
only=${1:-}

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() { # name, command...
	local name=$1
	shift
	[ -n "$only" ] && [[ "$name" != *"$only"* ]] && return
	echo "== $name"
	local t0=$SECONDS
	timeout -k 5 "$TIMEOUT" "$@" >"$log" 2>&1
	local rc=$?
	cat "$log"
	echo "-- $name: $((SECONDS - t0)) s"
	local p f s
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^skip ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exited with status $rc (crash, sanitizer report or timeout)"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
for t in tests/cli/test_*.sh; do
	[ -f "$t" ] && run_one "$(basename "$t")" bash "$t"
done
# Under SAN=1 the Python suites that mostly drive emulators, moto and helm (which
# exercise little C) are not run a second time; those that drive the extension
# and libsbx hard are.
SAN_PY="test_inspect_sbx.py test_backpressure.py test_durable.py test_inspect_docker.py"
for t in tests/*/test_*.py; do
	[ -f "$t" ] || continue
	if [ "${SAN:-0}" = 1 ] && [[ " $SAN_PY " != *" $(basename "$t") "* ]]; then
		continue
	fi
	run_one "$(basename "$t")" python3 "$t"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
