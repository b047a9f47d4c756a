#!/usr/bin/env bash
# test_containment.sh — what a sandbox can never get from the host through
# the CLI: the host's environment (cloud keys, kubeconfig), or a file written
# outside the destination given to `sbx cp` (".." names, symlinks).
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-contain-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-contain-work.XXXXXX)
trap '"$SBX" down --all >/dev/null 2>&1; rm -rf "$SBX_STATE_DIR" "$WORK"' EXIT

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   contain_$name"
	else
		echo "FAIL contain_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# The host's secrets, as an evaluation harness would have them.
export AWS_ACCESS_KEY_ID=AKIAHOSTSECRET AWS_SECRET_ACCESS_KEY=host-secret-key AWS_SESSION_TOKEN=host-token
export KUBECONFIG=$WORK/kubeconfig SBX_CONTAIN_MARKER=host-only
if ! "$SBX" up box >/dev/null 2>"$WORK/up.err"; then
	echo "FAIL contain_up: $(cat "$WORK/up.err")"
	exit 1
fi

t env_not_passed sh -c '"$0" exec box -- env > "$1/env" && grep -q "^PATH=" "$1/env" && ! grep -Eq "AWS_|KUBECONFIG|SBX_CONTAIN_MARKER|host-secret" "$1/env"' "$SBX" "$WORK"
t agent_env_clean sh -c 'tr "\0" "\n" < /proc/$(cat "$SBX_STATE_DIR/box/default.pid")/environ > "$1/aenv" && ! grep -Eq "AWS_|KUBECONFIG|SBX_CONTAIN_MARKER" "$1/aenv"' "$SBX" "$WORK"
t env_flag_still_works sh -c '[ "$("$0" exec box -e ONLY=this -- sh -c "echo \$ONLY")" = this ]' "$SBX"

# cp out of the sandbox: names that would leave the destination directory
mkdir -p "$WORK/dest/inner"
"$SBX" exec box -- sh -c 'mkdir -p sub && echo payload > sub/f && echo evil > ../escaped 2>/dev/null; ln -sf /etc/hostname link' >/dev/null 2>&1
for src in 'sub/..' '..' '.' 'sub/' 'sub/.'; do
	t "cp_refuses_${src//[\/.]/_}" sh -c '! "$0" cp "box:$2" "$1/dest/inner" 2>"$1/e" && grep -q "file name" "$1/e" && [ -z "$(ls -A "$1/dest/inner")" ] && [ "$(ls -A "$1/dest")" = inner ]' "$SBX" "$WORK" "$src"
done
t cp_dotdot_in_middle_stays sh -c '"$0" cp "box:sub/../sub/f" "$1/dest/inner" && [ "$(cat "$1/dest/inner/f")" = payload ] && rm "$1/dest/inner/f"' "$SBX" "$WORK"
# a symlink inside the sandbox is followed inside the sandbox only; the
# host gets a plain file
t cp_sandbox_symlink_is_plain_file sh -c '"$0" cp box:link "$1/dest/inner" && [ -f "$1/dest/inner/link" ] && [ ! -L "$1/dest/inner/link" ] && rm "$1/dest/inner/link"' "$SBX" "$WORK"
# a symlink at the destination is replaced, never written through
echo precious > "$WORK/outside"
ln -s "$WORK/outside" "$WORK/dest/inner/trap"
t cp_local_symlink_replaced sh -c '"$0" cp box:sub/f "$1/dest/inner/trap" && [ "$(cat "$1/outside")" = precious ] && [ ! -L "$1/dest/inner/trap" ] && [ "$(cat "$1/dest/inner/trap")" = payload ]' "$SBX" "$WORK"
t cp_no_temp_left sh -c '[ -z "$(ls -A "$1/dest/inner" | grep sbx-)" ] && [ -z "$(ls -A "$1" | grep "^\.")" ]' "$SBX" "$WORK"
