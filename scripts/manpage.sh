#!/usr/bin/env bash
# manpage.sh SBX OUT — writes the sbx(1) man page to OUT from the CLI's own
# help: `sbx --help` for the synopsis and one section per command from
# `sbx COMMAND --help`, so the page and --help never say different things.
set -euo pipefail
sbx=$1 out=$2
version=$("$sbx" version | awk '{print $2}')

# troff-safe: a leading dot or quote would be a request; backslashes are escapes.
roff() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'; }

{
	printf '.TH SBX 1 "%s" "sbx %s" "User Commands"\n' "$(date -u +%Y-%m-%d -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" "$version"
	printf '.SH NAME\nsbx \\- fast sandboxes for running untrusted code\n'
	printf '.SH SYNOPSIS\n.nf\n'
	"$sbx" --help 2>&1 | roff
	printf '.fi\n'
	for cmd in up exec shell cp port-forward ps logs kill ls down compose2values k8s-config; do
		printf '.SH "SBX %s"\n.nf\n' "$(echo "$cmd" | tr a-z A-Z)"
		"$sbx" "$cmd" --help 2>&1 | roff || true
		printf '.fi\n'
	done
	printf '.SH ENVIRONMENT\n.TP\n.B SBX_AGENT\nthe static agent; else next to sbx, PREFIX/libexec/sbx, then $PATH\n'
	printf '.TP\n.B SBX_CHART\nthe agent-env chart; else PREFIX/share/sbx/chart/agent-env\n'
	printf '.TP\n.B SBX_STATE_DIR\nwhere sandboxes are recorded\n'
	printf '.SH SEE ALSO\n.BR docker (1),\n.BR kubectl (1)\n'
} >"$out"
