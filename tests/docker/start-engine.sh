#!/usr/bin/env bash
# start-engine.sh — makes sure a Docker engine answers on $DOCKER_HOST
# (default unix:///var/run/docker.sock), starting dockerd when none runs.
#
# dockerd gets no bridge and no iptables rules (container traffic stays off
# the host's networks; the tests use network_mode: none). Its log is
# $SBX_DOCKERD_LOG (default /tmp/sbx-dockerd.log). Exits 0 when the engine
# answers, else 1 with the reason on stderr (the tests then skip, saying it).
set -u
SOCK=/var/run/docker.sock
case "${DOCKER_HOST:-}" in
unix://*) SOCK=${DOCKER_HOST#unix://} ;;
"") ;;
*) echo "start-engine: DOCKER_HOST=$DOCKER_HOST is not a unix socket" >&2; exit 1 ;;
esac
LOG=${SBX_DOCKERD_LOG:-/tmp/sbx-dockerd.log}

ping() { curl -sf --max-time 5 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1; }

wait_ping() {
	for _ in $(seq 1 60); do
		ping && return 0
		sleep 0.5
	done
	return 1
}

ping && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "start-engine: no Docker engine at $SOCK and only root can start dockerd (run as root, or start it)" >&2
	exit 1
fi
if ! command -v dockerd >/dev/null; then
	echo "start-engine: no dockerd here (install it: scripts/install-deps.sh --test installs docker.io)" >&2
	exit 1
fi
# A dockerd that is still starting (another test run, systemd) gets its time.
if pgrep -x dockerd >/dev/null && wait_ping; then
	exit 0
fi
start() {
	# From /: the engine outlives this shell and must not hold a clone that may be deleted
	# (a Podman service that did failed every container start; start-podman.sh).
	(cd / && exec setsid dockerd --host "unix://$SOCK" --bridge=none --iptables=false --ip-forward=false \
		--ip-masq=false "$@" >>"$LOG" 2>&1 </dev/null) &
	echo $! >/tmp/sbx-dockerd.pid
	wait_ping
}
start && exit 0
# overlay2 does not work on every root filesystem (e.g. inside a container): vfs does.
if [ -f /tmp/sbx-dockerd.pid ]; then
	kill "$(cat /tmp/sbx-dockerd.pid)" 2>/dev/null
	sleep 2
fi
start --storage-driver=vfs && exit 0
echo "start-engine: dockerd did not answer on $SOCK within 30 s; its log ($LOG) ends with:" >&2
tail -n 5 "$LOG" >&2
exit 1
