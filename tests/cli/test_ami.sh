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
