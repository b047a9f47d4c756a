#!/usr/bin/env bash
# test_cp.sh — `sbx cp` like docker cp on the local backend: trees both ways with modes,
# symlinks, empty files and directories; docker's destination rules; downloads that only
# ever replace regular files; sandbox symlinks never followed on the host; --max-size;
# temp files gone after Ctrl-C, a cancelled upload and a full disk; the progress bar.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-cp-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-cp-work.XXXXXX)
trap 'umount "$WORK/small" 2>/dev/null; "$SBX" down --all >/dev/null 2>&1; rm -rf "$SBX_STATE_DIR" "$WORK"' EXIT

t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   cp_$name"
	else
		echo "FAIL cp_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

"$SBX" up box >/dev/null 2>"$WORK/up.err" || { echo "FAIL cp_up: $(cat "$WORK/up.err")"; exit 1; }

# a tree with what docker cp keeps
T=$WORK/tree
mkdir -p "$T/sub/empty" && printf '#!/bin/sh\necho ran\n' >"$T/run.sh" && chmod 755 "$T/run.sh" &&
	: >"$T/empty.txt" && echo secret >"$T/priv" && chmod 600 "$T/priv" && chmod 750 "$T/sub" &&
	ln -s /etc "$T/etc" && ln -s .. "$T/sub/up" && head -c 3000000 /dev/urandom >"$T/sub/big"

t tree_upload_keeps_modes_links_empties sh -c 'umask 077; "$0" cp -r "$1" box:/tmp/tree && [ "$("$0" exec box -- /tmp/tree/run.sh)" = ran ] && [ "$("$0" exec box -- stat -c "%a %F" /tmp/tree/run.sh /tmp/tree/priv /tmp/tree/sub /tmp/tree/sub/empty /tmp/tree/empty.txt | tr "\n" ,)" = "755 regular file,600 regular file,750 directory,755 directory,644 regular empty file," ] && [ "$("$0" exec box -- readlink /tmp/tree/etc /tmp/tree/sub/up | tr "\n" ,)" = "/etc,..," ]' "$SBX" "$T"
t tree_download_roundtrip sh -c 'umask 077; "$0" cp box:/tmp/tree "$1/back" && diff -r --no-dereference "$2" "$1/back" && [ "$(stat -c %a "$1/back/run.sh" "$1/back/sub" "$1/back/empty.txt" | tr "\n" ,)" = "755,750,644," ] && [ "$(readlink "$1/back/etc")" = /etc ]' "$SBX" "$WORK" "$T"
t dir_into_existing_dir sh -c 'mkdir -p "$1/into" && "$0" cp box:/tmp/tree "$1/into" && [ -x "$1/into/tree/run.sh" ] && "$0" exec box -- mkdir -p /tmp/dst && "$0" cp "$2" box:/tmp/dst && "$0" exec box -- test -x /tmp/dst/tree/run.sh' "$SBX" "$WORK" "$T"
t file_modes_both_ways sh -c 'umask 077; printf "#!/bin/sh\necho yes\n" >"$1/s" && chmod 755 "$1/s" && "$0" cp "$1/s" box:s.sh && [ "$("$0" exec box -- ./s.sh)" = yes ] && "$0" exec box -- sh -c "echo x > m && chmod 640 m" && "$0" cp box:m "$1/m" && [ "$(stat -c %a "$1/m")" = 640 ]' "$SBX" "$WORK"
t file_into_existing_dir_slash sh -c 'echo hi >"$1/f1" && "$0" exec box -- mkdir -p /tmp/ed && "$0" cp "$1/f1" box:/tmp/ed/ && [ "$("$0" exec box -- cat /tmp/ed/f1)" = hi ] && "$0" cp "$1/f1" box:/tmp/ed && [ "$("$0" exec box -- cat /tmp/ed/f1)" = hi ]' "$SBX" "$WORK"
t missing_dir_slash_is_error sh -c '! "$0" cp "$1/f1" box:/tmp/newdir/ 2>"$1/e" && grep -q "does not exist" "$1/e" && ! "$0" exec box -- test -e /tmp/newdir && ! "$0" cp box:/tmp/ed/f1 "$1/nodir/" 2>/dev/null && [ ! -e "$1/nodir" ]' "$SBX" "$WORK"
t dir_over_file_is_error sh -c '! "$0" cp "$2" box:/tmp/ed/f1 2>"$1/e" && grep -q "not a directory" "$1/e"' "$SBX" "$WORK" "$T"
t dir_to_missing_creates_it sh -c '"$0" cp box:/tmp/tree/sub "$1/newsub" && [ -f "$1/newsub/big" ] && [ -d "$1/newsub/empty" ]' "$SBX" "$WORK"

# downloads replace regular files only
t dev_null_not_replaced sh -c '"$0" exec box -- sh -c "echo data > /tmp/f" && ! "$0" cp box:/tmp/f /dev/null 2>"$1/e" && grep -q "refusing to replace" "$1/e" && [ -c /dev/null ] && [ -z "$(ls -a /dev | grep sbx-)" ]' "$SBX" "$WORK"
t local_symlink_not_replaced sh -c 'echo keep >"$1/kept" && ln -sf "$1/kept" "$1/lnk" && ! "$0" cp box:/tmp/f "$1/lnk" 2>/dev/null && [ -L "$1/lnk" ] && [ "$(cat "$1/kept")" = keep ]' "$SBX" "$WORK"
# a sandbox symlink from one download is never followed by the next
t sandbox_symlink_never_followed sh -c 'mkdir -p "$1/victim" && "$0" exec box -- sh -c "mkdir -p /tmp/evil && ln -sfn $1/victim /tmp/evil/x" && "$0" cp box:/tmp/evil "$1/ev" && [ -L "$1/ev/x" ] && "$0" exec box -- sh -c "rm /tmp/evil/x && mkdir /tmp/evil/x && echo pwned > /tmp/evil/x/f && ln -s $1/victim/g /tmp/evil/g" && ! "$0" cp box:/tmp/evil "$1/ev/.." 2>/dev/null; ! "$0" cp box:/tmp/evil "$1" 2>/dev/null; [ -z "$(ls -A "$1/victim")" ] && "$0" exec box -- sh -c "rm -r /tmp/evil/x /tmp/evil/g && ln -s .. /tmp/evil/x && echo a > /tmp/evil/a" && rm -rf "$1/ev2" && "$0" cp box:/tmp/evil "$1/ev2" && "$0" exec box -- sh -c "rm /tmp/evil/x && mkdir /tmp/evil/x && echo pwned > /tmp/evil/x/escaped" && ! "$0" cp box:/tmp/evil "$1/ev2" 2>/dev/null; [ ! -e "$1/escaped" ] && [ -L "$1/ev2/x" ]' "$SBX" "$WORK"

# --max-size
t max_size_refuses sh -c 'head -c 2000000 /dev/zero >"$1/two" && ! "$0" cp --max-size 1M "$1/two" box:two 2>"$1/e" && grep -q "max-size" "$1/e" && ! "$0" exec box -- test -e two && ! "$0" cp --max-size 1M box:/tmp/tree/sub/big "$1/big1" 2>/dev/null && [ ! -e "$1/big1" ] && ! "$0" cp --max-size 1M box:/tmp/tree "$1/tr1" 2>"$1/e" && grep -q "limit" "$1/e" && ! "$0" cp --max-size 1M "$2" box:/tmp/tr1 2>/dev/null && "$0" cp --max-size 4M box:/tmp/tree/sub/big "$1/big4"' "$SBX" "$WORK" "$T"
t max_size_stdin_bounded sh -c '! head -c 3000000 /dev/zero | "$0" cp --max-size 1M - box:st 2>/dev/null && ! "$0" exec box -- test -e st && [ -z "$("$0" exec box -- ls -A | grep sbx-)" ]' "$SBX"
t max_size_bad_values sh -c 'for v in abc 0 -1 1Q; do "$0" cp --max-size "$v" a box:b 2>"$1/e"; [ $? -eq 2 ] && grep -q "512K" "$1/e" || exit 1; done' "$SBX" "$WORK"

# a full local disk: the download stops with ENOSPC, no temp file, the target unchanged
if mkdir -p "$WORK/small" && mount -t tmpfs -o size=1m tmpfs "$WORK/small" 2>/dev/null; then
	t enospc_stops_download sh -c 'echo old >"$1/small/big" && ! "$0" cp box:/tmp/tree/sub/big "$1/small/big" 2>"$1/e" && grep -q "No space left" "$1/e" && [ "$(cat "$1/small/big")" = old ] && [ -z "$(ls -A "$1/small" | grep sbx-)" ] && ! "$0" cp box:/tmp/tree "$1/small/t" 2>/dev/null && [ -z "$(find "$1/small" -name ".*sbx-*")" ]' "$SBX" "$WORK"
	umount "$WORK/small"
else
	echo "skip cp_enospc_stops_download: cannot mount a small tmpfs here"
fi

# Ctrl-C during an upload from a pipe: the agent's temp file goes; exit 130
ctrl_c_upload() {
	mkfifo "$WORK/fifo"
	exec 7<>"$WORK/fifo"
	head -c 60000 /dev/zero >&7 # under the pipe buffer: does not block
	"$SBX" cp - box:/tmp/slow <"$WORK/fifo" 2>/dev/null &
	local pid=$!
	# wait (no deadline but the suite's) until the agent's temp file holds data
	# (more bytes each round: the CLI reads its stdin with blocking reads)
	until "$SBX" exec box -- sh -c 'ls -A /tmp | grep -q "^\.slow\.sbx-"' </dev/null; do
		head -c 1000 /dev/zero >&7
		sleep 0.05
	done
	kill -INT $pid
	wait $pid
	local rc=$?
	exec 7>&-
	[ $rc -eq 130 ] || { echo "exit $rc"; return 1; }
	"$SBX" exec box -- sh -c '! ls -A /tmp | grep sbx- && ! test -e /tmp/slow'
}
t ctrl_c_upload_leaves_no_temp ctrl_c_upload

# Ctrl-C during a download: the local temp file goes
ctrl_c_download() {
	"$SBX" exec box -- truncate -s 4G /tmp/huge || return 1
	"$SBX" cp --no-fsync box:/tmp/huge "$WORK/huge" 2>/dev/null &
	local pid=$!
	until ls -A "$WORK" | grep -q '^\.huge\.sbx-'; do sleep 0.01; done
	kill -INT $pid
	wait $pid
	local rc=$?
	"$SBX" exec box -- rm /tmp/huge
	[ $rc -eq 130 ] || { echo "exit $rc"; return 1; }
	[ -z "$(ls -A "$WORK" | grep sbx-)" ] && [ ! -e "$WORK/huge" ]
}
t ctrl_c_download_leaves_no_temp ctrl_c_download

# the progress bar on a terminal (script gives stderr a pty)
t progress_bar_on_terminal sh -c 'script -qec "$0 cp box:/tmp/tree/sub/big $1/pb" /dev/null >"$1/tty.out" && grep -q "100%" "$1/tty.out" && cmp "$1/pb" "$2/sub/big" && "$0" cp box:/tmp/tree/sub/big "$1/pb2" 2>"$1/e" && ! grep -q "%" "$1/e"' "$SBX" "$WORK" "$T"
t help_mentions_flags sh -c '"$0" cp --help | grep -q -- "--max-size" && "$0" cp --help | grep -q -- "-r"' "$SBX"
