#!/usr/bin/env bash
# valgrind.sh — runs test programs under valgrind memcheck (what `make
# test-valgrind` does): any invalid read or write, use of uninitialised
# memory, or definite/indirect leak in the test process fails the program.
# Arguments are name prefixes of $BUILD/tests/test_* (e.g. test_conn
# test_fuzz). Children (agents) are not traced: they are checked by their
# own tests under ASan. The last line is the suite's summary, as in run.sh.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/vg}
export BUILD
export SBX_AGENT="$PWD/$BUILD/sbx-agent"
export SBX_BIN="$PWD/$BUILD/sbx"
TIMEOUT=${TEST_TIMEOUT:-600}
VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --num-callers=30 --suppressions=tests/valgrind.supp)
if ! command -v valgrind >/dev/null; then
	echo "FAIL valgrind: not installed (scripts/install-deps.sh --test)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$BUILD"/tests/test_*; do
	name=$(basename "$t")
	match=0
	for prefix in "$@"; do
		[[ "$name" == "$prefix"* ]] && match=1
	done
	[ "$match" -eq 1 ] && [ -x "$t" ] || continue
	echo "== $name (valgrind)"
	timeout -k 5 "$TIMEOUT" "${VG[@]}" "$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^skip ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exited with status $rc under valgrind (99: memcheck found errors or leaks)"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
