#!/usr/bin/env bash
# start-podman.sh — makes sure Podman's Docker-compatible service answers on
# unix://$SBX_PODMAN_SOCK (default /run/sbx-podman/podman.sock), starting
# `podman system service` when none does, and prints that DOCKER_HOST.
#
# The service gets its own containers.conf: runc (crun 1.8 refuses these
# machines' hybrid cgroup layout), cgroupfs, file events (no systemd or
# journald here), catatonit for `init: true`, and ulimits no higher than
# this shell's hard limits (Podman's defaults for root, 1048576 files and
# 4194304 processes, fail where the container runtime may not raise them).
# Its log is $SBX_PODMAN_LOG (default /tmp/sbx-podman.log). Exits 0 when
# the service answers, else 1 with the reason on stderr.
set -u
SOCK=${SBX_PODMAN_SOCK:-/run/sbx-podman/podman.sock}
LOG=${SBX_PODMAN_LOG:-/tmp/sbx-podman.log}
CONF=$(dirname "$SOCK")/containers.conf

ping() { curl -sf --max-time 5 --unix-socket "$SOCK" http://podman/_ping >/dev/null 2>&1; }

if ! ping; then
	command -v podman >/dev/null || { echo "start-podman: no podman here (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || { echo "start-podman: only root starts the rootful service the tests use" >&2; exit 1; }
	init=$(command -v catatonit || echo /usr/libexec/podman/catatonit)
	mkdir -p "$(dirname "$SOCK")"
	files=$(ulimit -Hn)
	procs=$(ulimit -Hu)
	[ "$procs" = unlimited ] && procs=32768
	[ "$procs" -gt 32768 ] && procs=32768 # podman lowers its own to this
	cat >"$CONF" <<C
[containers]
default_ulimits = ["nofile=$files:$files", "nproc=$procs:$procs"]
init_path = "$init"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
C
	# From /: the service outlives this shell, and one whose working directory was
	# deleted (a CI clone removed) fails every container start ('write child: broken pipe').
	(cd / && CONTAINERS_CONF=$CONF exec setsid podman system service --time 0 "unix://$SOCK" >>"$LOG" 2>&1 </dev/null) &
	for _ in $(seq 1 60); do
		ping && break
		sleep 0.5
	done
	if ! ping; then
		echo "start-podman: podman system service did not answer on $SOCK within 30 s; its log ($LOG) ends with:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
fi
echo "unix://$SOCK"
