# lib.sh — what a CLI suite starts with. Set PREFIX (the tests' name
# prefix, e.g. "cli") and source this: it gives $SBX, a private state
# directory ($SBX_STATE_DIR) and work directory ($WORK) removed at exit
# with every sandbox in them, t() to run one check, and up_box to start
# the sandbox "box" most suites use (or stop the suite saying why).

SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d "/tmp/sbx-$PREFIX-test.XXXXXX")
WORK=$(mktemp -d "/tmp/sbx-$PREFIX-work.XXXXXX")
trap '"$SBX" down --all >/dev/null 2>&1; rm -rf "$SBX_STATE_DIR" "$WORK"' EXIT

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   ${PREFIX}_$name"
	else
		echo "FAIL ${PREFIX}_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

up_box() {
	"$SBX" up box >/dev/null 2>"$WORK/up.err" || { echo "FAIL ${PREFIX}_up: $(cat "$WORK/up.err")"; exit 1; }
}
