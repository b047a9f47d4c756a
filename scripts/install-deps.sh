#!/usr/bin/env bash
# install-deps.sh — installs what building and testing sbx needs on a fresh
# Debian or Ubuntu machine. Idempotent; needs root (uses sudo otherwise).
#
#   scripts/install-deps.sh          build dependencies only
#   scripts/install-deps.sh --test   also what the test suite uses: the arm64
#                                    cross toolchain and qemu-user (agent smoke
#                                    test), node/npm (helm for the chart tests),
#                                    clang + libFuzzer (make fuzz), valgrind,
#                                    packer (ami/ template check), docker.io
#                                    and podman (the docker backend's tests)
set -euo pipefail
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
apt_install() { $SUDO apt-get install -y -q --no-install-recommends "$@"; }

$SUDO apt-get update -q
apt_install build-essential ca-certificates libmsgpack-dev zlib1g-dev libyaml-dev python3 python3-yaml \
	libcurl4-openssl-dev libssl-dev libjansson-dev libexpat1-dev
# The Inspect provider (host/python): headers and setuptools for its C extension,
# pip for `pip install --no-build-isolation ./host/python`.
apt_install python3-dev python3-setuptools python3-pip
# Local sandboxes are OCI containers: runc (crun where the cgroup layout lets it
# run; runsc for gVisor).
apt_install runc

[ "${1:-}" = "--test" ] || exit 0

apt_install qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross unzip openssl valgrind
# The containment suite: gVisor (runsc), and busybox for a tiny --rootfs image.
apt_install runsc busybox-static file procps || apt_install busybox-static file procps
# The docker backend's tests: a real dockerd (tests/docker/start-engine.sh starts
# it without a bridge or iptables rules) and the docker CLI to import the offline
# test image (tests/docker/image.sh, from busybox-static).
apt_install docker.io curl
# The same suite against Podman's Docker-compatible service (tests/cli/test_podman_cli.sh);
# catatonit is its `init: true`.
apt_install podman catatonit netavark aardvark-dns || echo "install-deps: no podman package here; its suite will be skipped" >&2
# make bench compares `sbx up` with docker-compose (v1) on the same file.
apt_install docker-compose || echo "install-deps: no docker-compose package; its bench row will say so" >&2
# setpriv/nsenter: the Python tests run an agent as nobody and enter isolated sandboxes.
apt_install util-linux
# libFuzzer: clang 14 and its runtime (Debian bookworm / Ubuntu jammy names)
apt_install clang-14 libclang-rt-14-dev || apt_install clang-14
# packer validates ami/sbx-agent.pkr.hcl (tests/cli/test_ami.sh).
apt_install packer || echo "install-deps: no packer package here; the ami/ template check will be skipped" >&2
# cfn-lint (tests/aws/test_infra.py lints ami/infra with it) has no Debian package; it is on
# PyPI: `pip install cfn-lint` where PyPI is reachable. Without it test_infra says skip.
# npm fetches helm for the chart tests; keep a node that is already there
# (e.g. NodeSource's, which conflicts with Debian's npm package).
command -v npm >/dev/null || apt_install nodejs npm
# The static arm64 agent links arm64 builds of zlib and msgpack-c (multiarch).
# Best effort: mirrors without arm64 packages (Ubuntu's main archive) skip it.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	$SUDO dpkg --add-architecture arm64
fi
if ! { $SUDO apt-get update -q && apt_install zlib1g-dev:arm64 libmsgpack-dev:arm64; }; then
	echo "install-deps: no arm64 libraries from this mirror; the arm64 agent smoke test will be skipped" >&2
	$SUDO dpkg --remove-architecture arm64 || true
	$SUDO apt-get update -q || true
fi
