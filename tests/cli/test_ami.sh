#!/usr/bin/env bash
# test_ami.sh — ami/sbx-agent.pkr.hcl passes `packer validate` (Debian's packer, which
# scripts/install-deps.sh --test installs), and a broken copy of it does not.
set -u
cd "$(dirname "$0")/../.."
if ! command -v packer >/dev/null; then
	echo "FAIL packer_validate: packer is not installed (scripts/install-deps.sh --test installs it)"
	exit 1
fi
out=$(cd ami && packer validate . 2>&1)
if [ $? -eq 0 ] && ! grep -q Error <<<"$out"; then
	echo "ok   packer_validate"
else
	echo "FAIL packer_validate: $out"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/instance_type = source.value.instance_type/instance_typo = 1/' ami/sbx-agent.pkr.hcl >"$tmp/t.pkr.hcl"
cp ami/sbx-agent.service "$tmp/"
if (cd "$tmp" && packer validate . 2>&1) | grep -q "Unsupported argument"; then
	echo "ok   packer_rejects_a_broken_template"
else
	echo "FAIL packer_rejects_a_broken_template: packer validate accepted an unknown argument"
fi
# The unit keeps commands from the instance role (--block-metadata, which needs its cgroup
# delegated) and is a unit systemd accepts as written (an unknown key would be ignored).
unit="$tmp/sbx-agent.service"
sed -e 's/@PORT@/7000/' -e "s#/usr/local/bin/sbx-agent#/bin/true#" ami/sbx-agent.service >"$unit"
if ! grep -q '^ExecStart=.* --block-metadata' "$unit" || ! grep -qx 'Delegate=yes' "$unit"; then
	echo "FAIL unit_blocks_metadata: ami/sbx-agent.service lacks --block-metadata or Delegate=yes"
elif ! command -v systemd-analyze >/dev/null; then
	echo "skip unit_blocks_metadata: systemd-analyze is not installed"
elif out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
	echo "ok   unit_blocks_metadata"
else
	echo "FAIL unit_blocks_metadata: systemd-analyze verify: $out"
fi
