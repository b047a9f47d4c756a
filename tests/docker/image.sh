#!/usr/bin/env bash
# image.sh — builds the tests' offline images with `docker import`, unless
# they exist: sbx-test/busybox:latest (a static busybox, /etc/passwd with
# root and user 1000, no CMD) and sbx-test/empty:latest (one file, no shell,
# no CMD). Needs busybox-static; no registry.
set -eu
IMAGE=sbx-test/busybox:latest
if ! docker image inspect sbx-test/empty:latest >/dev/null 2>&1; then
	EMPTY=$(mktemp -d)
	echo "nothing else here" >"$EMPTY/hello.txt"
	tar -C "$EMPTY" -c . | docker import - sbx-test/empty:latest >/dev/null
	rm -rf "$EMPTY"
fi
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
BB=$(command -v busybox || true)
if [ -z "$BB" ] || ! file -L "$BB" 2>/dev/null | grep -q "statically linked"; then
	[ -x /bin/busybox ] && BB=/bin/busybox
fi
[ -n "$BB" ] || { echo "image.sh: no busybox (install busybox-static)" >&2; exit 1; }
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/root" "$ROOT/home/user" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
cp "$BB" "$ROOT/bin/busybox"
for app in $("$ROOT/bin/busybox" --list); do
	[ -e "$ROOT/bin/$app" ] || ln -s busybox "$ROOT/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$ROOT/etc/group"
chmod 1777 "$ROOT/tmp"
chown 1000:1000 "$ROOT/home/user"
tar -C "$ROOT" -c . | docker import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
