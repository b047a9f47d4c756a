#!/usr/bin/env bash
# test_terminal.sh — what the CLI prints besides the command's own streams reaches the
# terminal escaped (issue 18): escape sequences in an agent's error text, in an agent's
# last log line and in a file name come out as \e, \xNN; the command's stdout and stderr
# stay byte-exact.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-term-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-term-work.XXXXXX)
trap '"$SBX" down --all >/dev/null 2>&1; rm -rf "$SBX_STATE_DIR" "$WORK"' EXIT

# check NAME FILE LITERAL: FILE holds LITERAL (escaped text) and no raw ESC, BEL, CSI or CR
check() {
	if ! grep -qF -- "$3" "$2"; then
		echo "FAIL term_$1: '$3' not in: $(od -c "$2" | head -n 5 | tr '\n' ' ')"
	elif LC_ALL=C grep -q $'[\x1b\x07\x9b\r]' "$2"; then
		echo "FAIL term_$1: raw control bytes reached the terminal: $(od -c "$2" | head -n 5 | tr '\n' ' ')"
	else
		echo "ok   term_$1"
	fi
}

"$SBX" up box >/dev/null 2>"$WORK/up.err" || { echo "FAIL term_up: $(cat "$WORK/up.err")"; exit 1; }

# an agent ERROR whose text carries the sequence (bad working directory, missing command)
"$SBX" exec box -w $'/no\e]0;pwned\awhere' -- true 2>"$WORK/e1"
check agent_error_bad_cwd "$WORK/e1" '/no\e]0;pwned\x07where'
"$SBX" exec box -- $'run\e[2J\e[Hme' 2>"$WORK/e2"
check agent_error_not_found "$WORK/e2" 'run\e[2J\e[Hme'

# a file name, echoed back in the agent's error and in our own
"$SBX" cp box:$'evil\e[8mhidden\e[0m.txt' "$WORK/x" 2>"$WORK/e3"
check file_name_in_agent_error "$WORK/e3" 'evil\e[8mhidden\e[0m.txt'
mkdir -p "$WORK/d"
"$SBX" cp box:$'sub/..\e[1A' "$WORK/d" 2>"$WORK/e4"
check file_name_in_cli_error "$WORK/e4" '..\e[1A'

# the agent's last words: a log line the sandbox controls, shown when the agent is gone
"$SBX" up dying >/dev/null 2>&1
printf 'panic: \e[2J\e[H\e]2;owned\a\xc2\x9b31m gone\r\n' >>"$SBX_STATE_DIR/dying/default.log"
kill -9 "$(cat "$SBX_STATE_DIR/dying/default.box/pid")" 2>/dev/null
sleep 0.3
"$SBX" exec dying -- true 2>"$WORK/e5"
check agent_log_line "$WORK/e5" 'panic: \e[2J\e[H\e]2;owned\x07\xc2\x9b31m gone'

# the command's own streams are not touched
"$SBX" exec box -- sh -c 'printf "\033[31mred\a\r\n"; printf "\033]0;t\a" >&2' >"$WORK/o" 2>"$WORK/e"
if [ "$(od -An -tx1 "$WORK/o" | tr -d ' \n')" = 1b5b33316d726564070d0a ]; then
	if [ "$(od -An -tx1 "$WORK/e" | tr -d ' \n')" = 1b5d303b7407 ]; then
		echo "ok   term_command_streams_byte_exact"
	else
		echo "FAIL term_command_streams_byte_exact: stderr $(od -An -tx1 "$WORK/e")"
	fi
else
	echo "FAIL term_command_streams_byte_exact: stdout $(od -An -tx1 "$WORK/o")"
fi

# --json: the agent's error text is escaped as JSON (\u001b, \u009b) and decodes back exactly
"$SBX" exec box --json -w $'/x\e[2J\xc2\x9by' -- true >"$WORK/j" 2>/dev/null
if python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
assert b"\x1b" not in raw and b"\xc2\x9b" not in raw, raw
assert b"\\u001b" in raw and b"\\u009b" in raw, raw
assert "/x\x1b[2J\x9by" in json.loads(raw)["error"]["message"]' "$WORK/j"; then
	echo "ok   term_json_error_escaped"
else
	echo "FAIL term_json_error_escaped: $(od -c "$WORK/j" | head -n 4 | tr '\n' ' ')"
fi
