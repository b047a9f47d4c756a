#!/usr/bin/env bash
# test_durable_cp.sh — `sbx cp` out of a sandbox lands the file durably (issue 18): the
# temp file is fsynced before the rename that makes it visible and the directory after
# it, before sbx reports success; --no-fsync skips both. Checked with strace.
set -u
SBX=${SBX_BIN:-build/sbx}
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-dur-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-dur-work.XXXXXX)
trap '"$SBX" down --all >/dev/null 2>&1; rm -rf "$SBX_STATE_DIR" "$WORK"' EXIT

if ! command -v strace >/dev/null || ! strace -o /dev/null true 2>/dev/null; then
	echo "skip durable_cp: strace is missing or cannot trace here"
	exit 0
fi
"$SBX" up box >/dev/null 2>"$WORK/up.err" || { echo "FAIL durable_cp_up: $(cat "$WORK/up.err")"; exit 1; }
head -c 3000000 /dev/urandom >"$WORK/src"
"$SBX" cp "$WORK/src" box:data.bin || { echo "FAIL durable_cp_upload"; exit 1; }

# order LOG NAME: prints "fsync rename dirsync" line numbers (0 when missing)
order() {
	awk -v name="$2" -v dir="$WORK" '
		{ sub(/^[0-9]+ +/, "") } # strace -f: the pid first
		match($0, "openat\\(AT_FDCWD, \"[^\"]*/\\." name "\\.sbx-[A-Za-z0-9]+\", [^)]*O_CREAT[^)]*\\) = [0-9]+") { split($0, a, "= "); tmp = a[2] + 0 }
		index($0, "openat(AT_FDCWD, \"" dir "\", O_RDONLY") && /O_DIRECTORY/ { split($0, a, "= "); dfd = a[2] + 0 }
		tmp != "" && index($0, "fsync(" tmp ")") == 1 && !ren { fs = NR }
		/^rename/ && index($0, "/" name "\"") { ren = NR }
		dfd != "" && index($0, "fsync(" dfd ")") == 1 && ren { ds = NR }
		END { print fs + 0, ren + 0, ds + 0 }' "$1"
}

strace -qq -f -o "$WORK/log1" -e trace=openat,fsync,fdatasync,rename,renameat,renameat2 \
	"$SBX" cp box:data.bin "$WORK/out1" 2>"$WORK/e1"
read -r fs ren ds < <(order "$WORK/log1" out1)
if cmp -s "$WORK/src" "$WORK/out1" && [ "$fs" -gt 0 ] && [ "$ren" -gt "$fs" ] && [ "$ds" -gt "$ren" ]; then
	echo "ok   durable_cp_download_fsyncs_file_then_directory"
else
	echo "FAIL durable_cp_download_fsyncs_file_then_directory: fsync@$fs rename@$ren dirsync@$ds $(cat "$WORK/e1")"
fi

strace -qq -f -o "$WORK/log2" -e trace=openat,fsync,fdatasync,rename,renameat,renameat2 \
	"$SBX" cp --no-fsync box:data.bin "$WORK/out2" 2>"$WORK/e2"
read -r fs ren ds < <(order "$WORK/log2" out2)
if cmp -s "$WORK/src" "$WORK/out2" && [ "$ren" -gt 0 ] && ! grep -Eq '^[0-9]* *f(data)?sync\(' "$WORK/log2"; then
	echo "ok   durable_cp_no_fsync_skips_fsync"
else
	echo "FAIL durable_cp_no_fsync_skips_fsync: rename@$ren, fsyncs: $(grep -c 'sync(' "$WORK/log2") $(cat "$WORK/e2")"
fi

if "$SBX" cp --no-fsync "$WORK/src" box:fast.bin && "$SBX" cp box:fast.bin "$WORK/out3" && cmp -s "$WORK/src" "$WORK/out3"; then
	echo "ok   durable_cp_no_fsync_upload"
else
	echo "FAIL durable_cp_no_fsync_upload"
fi
