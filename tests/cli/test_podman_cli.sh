#!/usr/bin/env bash
# test_podman_cli.sh — the docker backend's CLI suite (test_docker_cli.sh),
# unchanged, against Podman's Docker-compatible service instead of dockerd
# (tests/docker/start-podman.sh starts one). Its checks are named podman_*.
# Skips (saying why) where Podman cannot run, and under SAN=1 (the same C
# runs under SAN against dockerd); with SBX_REQUIRE_PODMAN=1 (CI) a Podman
# that cannot run is a failure instead.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ "${SAN:-0}" = 1 ]; then
	echo "skip podman_cli: the docker suite runs this code under SAN against dockerd"
	exit 0
fi
if ! host=$("$HERE/docker/start-podman.sh" 2>&1); then
	if [ "${SBX_REQUIRE_PODMAN:-0}" = 1 ]; then
		echo "FAIL podman_engine: $host"
		exit 1
	fi
	echo "skip podman_cli: $host"
	exit 0
fi
export DOCKER_HOST=$host SBX_ENGINE_NAME=podman SBX_REQUIRE_DOCKER=1
exec bash "$HERE/cli/test_docker_cli.sh"
