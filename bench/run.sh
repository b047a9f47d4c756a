#!/usr/bin/env bash
# bench/run.sh — run the benchmark programs side by side and print one table.
#
#   BUILD=build bench/run.sh        (what `make bench` runs)
#
# Each program (build/bench/NAME from bench/NAME.c, or bench/NAME.py) prints ROW lines on
# stdout and details on stderr; this script collects the rows into one
# aligned table, then prints the details. A missed target is a MISS in the
# table, not a failure: the exit status is 0 unless a benchmark could not
# run at all.
#
# Knobs: EXEC_REPS (default 500), CLI_REPS (200), FILE_REPS (default 5), SCALE_AGENTS (1000),
# SCALE_EXECS (10000), WINDOW_MIB (the transfer of rows l1/l2, 64), LATENCY_MIB (the unix-socket and k8s
# transfers of rows lt1-lt5, 1024), LATENCY_SSM_MIB (the SSM transfer of rows lt6/lt7, 64: its Python emulator
# moves ~10 MB/s), BOX_SCALE (contained sandboxes in row b3, 1000), DURABLE_REPS (3),
# DURABLE_MIB (the large file of rows d1/d2, 256), K8S_MIB (the transfer of row k3, 1024), DURABLE_FILES (small files of row d3,
# 10000), DOCKER_REPS (30), K8S_CLI_REPS (50), EC2_CLI_REPS (20), DOCKER_COPY_MB (256), TMPDIR (where the temporary files go;
# default /tmp).
set -u

BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
BIN=$BUILD/bench
export SBX_AGENT=${SBX_AGENT:-$PWD/$BUILD/sbx-agent}
EXEC_REPS=${EXEC_REPS:-500}
FILE_REPS=${FILE_REPS:-5}

if [ ! -x "$SBX_AGENT" ]; then
	echo "bench: no agent at $SBX_AGENT (run make first)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sbx-bench-run-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

broken=0
start=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# name, then its arguments
run() {
	local name=$1
	shift
	local t0=$(date +%s%N)
	printf 'bench: %-12s ... ' "$name" >&2
	local cmd=("$BIN/$name")
	[ -f "bench/$name.py" ] && cmd=(python3 "bench/$name.py")
	if [ ! -f "bench/$name.py" ] && [ ! -x "$BIN/$name" ]; then
		echo "missing ($BIN/$name)" >&2
		printf 'ROW\t-\t%s: not built\t-\t-\t-\t-\tERROR\n' "$name" >>"$work/rows"
		broken=1
		return
	fi
	"${cmd[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err"
	local rc=$?
	grep '^ROW' "$work/$name.out" >>"$work/rows"
	local ms=$((($(date +%s%N) - t0) / 1000000))
	printf '%d.%d s\n' $((ms / 1000)) $((ms % 1000 / 100)) >&2
	if [ $rc -ne 0 ]; then
		printf 'ROW\t-\t%s failed (exit %d): %s\t-\t-\t-\t-\tERROR\n' "$name" $rc \
			"$(tail -n 1 "$work/$name.err" | tr '\t' ' ')" >>"$work/rows"
		broken=1
	fi
}

# mem first, in its own process: nothing else raises its peak RSS.
run mem "$SBX_AGENT"
run exec "$EXEC_REPS"
SBX_BIN=${SBX_BIN:-$PWD/$BUILD/sbx} run cli "${CLI_REPS:-200}"
run files "$FILE_REPS"
run durable "${DURABLE_REPS:-3}" "${DURABLE_MIB:-256}" "${DURABLE_FILES:-10000}"
run concurrency
SBX_BIN=${SBX_BIN:-$PWD/$BUILD/sbx} run forward
run auth
run window "${WINDOW_MIB:-64}"
run latency "${LATENCY_MIB:-1024}" "${LATENCY_SSM_MIB:-64}"
run python
run scale "${SCALE_AGENTS:-1000}" "${SCALE_EXECS:-10000}"
run idle "${IDLE_SESSIONS:-10000}" "${IDLE_EXECS:-1000}" "${IDLE_SECONDS:-5}"
run box "${BOX_SCALE:-1000}"
run k8s
SBX_BIN=${SBX_BIN:-$PWD/$BUILD/sbx} run k8s_cli "${K8S_CLI_REPS:-50}"
run ec2
SBX_BIN=${SBX_BIN:-$PWD/$BUILD/sbx} run ec2_cli "${EC2_CLI_REPS:-20}"
# the docker backend: an engine (started if none runs and we may) and the offline image
if tests/docker/start-engine.sh 2>"$work/docker-engine.err" && tests/docker/image.sh 2>>"$work/docker-engine.err"; then
	SBX_BIN=${SBX_BIN:-$PWD/$BUILD/sbx} run docker "${DOCKER_REPS:-30}" "${DOCKER_COPY_MB:-256}"
else
	printf 'ROW\tdk1\tdocker backend: no engine (%s)\t-\t-\t-\t-\tinfo\n' "$(tail -n 1 "$work/docker-engine.err" | tr '\t' ' ')" >>"$work/rows"
fi

echo
echo "sbx benchmarks — $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), total $(($(date +%s) - start)) s"
echo "MB = 10^6 bytes; latencies and throughputs are medians over the repeats; ratio is sbx vs the baseline column"
echo "load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews these numbers)"
echo
awk -F'\t' '
	{ n++; for (i = 2; i <= 8; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
	END {
		split("id|benchmark|sbx|baseline|ratio|target|result", h, "|")
		for (i = 2; i <= 8; i++) if (length(h[i - 1]) > w[i]) w[i] = length(h[i - 1])
		line = "|"; sep = "|"
		for (i = 2; i <= 8; i++) {
			line = line sprintf(" %-*s |", w[i], h[i - 1])
			sep = sep sprintf("%s|", dashes(w[i] + 2))
		}
		print line; print sep
		for (r = 1; r <= n; r++) {
			line = "|"
			for (i = 2; i <= 8; i++) {
				fmt = (i >= 4 && i <= 7) ? " %*s |" : " %-*s |"
				line = line sprintf(fmt, w[i], c[r, i])
			}
			print line
		}
	}
	function dashes(k,   s) { s = ""; while (k-- > 0) s = s "-"; return s }
' "$work/rows"

pass=$(awk -F'\t' '$8 == "PASS"' "$work/rows" | wc -l)
miss=$(awk -F'\t' '$8 == "MISS"' "$work/rows" | wc -l)
err=$(awk -F'\t' '$8 == "ERROR"' "$work/rows" | wc -l)
echo
echo "targets: $pass PASS, $miss MISS${err:+, $err ERROR}" | sed 's/, 0 ERROR//'
if [ "$miss" -gt 0 ]; then
	echo "MISSED:"
	awk -F'\t' '$8 == "MISS" { printf "  %s  %s: %s vs %s (%s, target %s)\n", $2, $3, $4, $5, $6, $7 }' "$work/rows"
fi
echo
echo "details:"
for f in mem exec files durable concurrency forward auth window latency python scale idle box k8s k8s_cli ec2 ec2_cli docker; do
	[ -s "$work/$f.err" ] && sed "s/^/  [$f] /" "$work/$f.err"
done
exit $broken
