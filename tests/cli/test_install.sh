#!/usr/bin/env bash
# test_install.sh — sbx used as installed, with no checkout and no SBX_* variables:
#  - `make install PREFIX=T`: the installed sbx finds its agent (libexec/sbx) and runs a
#    sandbox from an empty directory with a clean environment; `sbx` copied alone names
#    where it looked for the agent; the man page is the CLI's help; uninstall removes all;
#  - a C program built with `pkg-config --cflags --libs sbx` runs an exec through the
#    installed libsbx.so, which finds the installed agent next to itself;
#  - the wheel (`make wheel`) installed into a fresh --target directory carries the
#    agent and the chart, and its LocalProvider runs a sample with no SBX_* variables.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROOT=$PWD
tmp=$(mktemp -d)
chmod 755 "$tmp" # a contained box's root (an unprivileged id) must reach its bundle below
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
clean_env=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$tmp/home" SBX_STATE_DIR="$tmp/state" LANG=C.UTF-8)
mkdir -p "$tmp/home" "$tmp/empty"

check() { # name, condition-status, why
	if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1: $3"; fi
}

out=$(make --no-print-directory install BUILD="$BUILD" SAN="${SAN:-0}" PREFIX="$prefix" 2>&1)
rc=$?
want="bin/sbx libexec/sbx/sbx-agent lib/libsbx.a lib/libsbx.so lib/libsbx.so.0 include/sbx/sbx.h include/sbx/loop.h lib/pkgconfig/sbx.pc share/sbx/chart/agent-env/Chart.yaml share/man/man1/sbx.1"
missing=""
for f in $want; do [ -e "$prefix/$f" ] || missing="$missing $f"; done
check install_layout $(( rc != 0 || ${#missing} > 0 )) "rc=$rc missing:$missing $out"
soname=$(objdump -p "$prefix/lib/libsbx.so" 2>/dev/null | awk '/SONAME/ {print $2}')
check install_soname $([ "$soname" = libsbx.so.0 ]; echo $?) "SONAME is '$soname'"
check man_page_is_the_help $(grep -q '^\.TH SBX 1' "$prefix/share/man/man1/sbx.1" &&
	grep -q 'SBX EXEC' "$prefix/share/man/man1/sbx.1" &&
	grep -qF -- "$("$BUILD/sbx" exec --help 2>&1 | sed -n 1p)" "$prefix/share/man/man1/sbx.1"; echo $?) "sbx.1 lacks the help text"

# The installed CLI from an empty directory and a clean environment.
if [ "$(id -u)" -eq 0 ] && [ -z "${SAN:-}" -o "${SAN:-0}" = 0 ]; then
	r=$(cd "$tmp/empty" && "${clean_env[@]}" "$prefix/bin/sbx" up inst 2>&1 &&
		"${clean_env[@]}" "$prefix/bin/sbx" exec inst -- sh -c 'echo installed-ok' 2>&1)
	"${clean_env[@]}" "$prefix/bin/sbx" down inst >/dev/null 2>&1
	check installed_cli_runs_a_sandbox $([[ "$r" == *installed-ok* ]]; echo $?) "$r"
else
	echo "skip installed_cli_runs_a_sandbox: needs root and a non-sanitizer build (a contained box)"
fi
cp "$prefix/bin/sbx" "$tmp/empty/sbx-alone"
r=$(cd "$tmp/empty" && "${clean_env[@]}" ./sbx-alone up lonely 2>&1)
check lone_cli_says_where_it_looked $([[ "$r" == *"cannot find sbx-agent (looked at"*"SBX_AGENT"* ]]; echo $?) "$r"

# A C program against the installed library, through pkg-config.
cat >"$tmp/prog.c" <<'EOF'
#include <sbx.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	sbx_loop *loop = sbx_loop_new();
	sbx_local_opts lo = {.host = 1};
	sbx_error err;
	sbx_session *s = sbx_session_local(loop, &lo, NULL, &err);
	if (!s) {
		printf("no session: %s\n", err.message);
		return 1;
	}
	const char *argv[] = {"sh", "-c", "echo from-pkg-config", NULL};
	sbx_exec_opts eo = {.argv = argv};
	sbx_exec_result r;
	int rc = sbx_exec_sync(s, &eo, &r);
	printf("%d %s", rc, rc == 0 ? (char *)r.out : err.message);
	if (rc == 0)
		sbx_exec_result_free(&r);
	sbx_session_close(s);
	sbx_loop_free(loop);
	return 0;
}
EOF
san=""
[ "${SAN:-0}" = 1 ] && san="-fsanitize=address,undefined"
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs sbx 2>&1)
cc_out=$(cc -std=c11 $san -o "$tmp/prog" "$tmp/prog.c" $flags 2>&1)
check pkg_config_builds $? "$flags $cc_out"
r=$(cd "$tmp/empty" && "${clean_env[@]}" LD_LIBRARY_PATH="$prefix/lib" ASAN_OPTIONS=detect_leaks=0 "$tmp/prog" 2>&1)
check pkg_config_program_runs $([[ "$r" == "0 from-pkg-config" ]]; echo $?) "$r"

out=$(make --no-print-directory uninstall PREFIX="$prefix" 2>&1)
left=$(find "$prefix" -type f 2>/dev/null)
check uninstall_removes_all $([ -z "$left" ]; echo $?) "left: $left $out"

# The wheel, installed into a fresh directory, with no SBX_* variables.
if [ "${SAN:-0}" = 1 ]; then
	echo "skip wheel_carries_agent_and_chart: the wheel is not built with sanitizers"
	echo "skip wheel_runs_a_sample_without_env: the wheel is not built with sanitizers"
	exit 0
fi
out=$(make --no-print-directory wheel BUILD="$BUILD" 2>&1)
whl=$(ls "$BUILD"/inspect_sbx-*.whl 2>/dev/null | head -1)
pip=$(python3 -m pip install --quiet --no-deps --no-index --target "$tmp/site" "$whl" 2>&1)
check wheel_installs $([ -n "$whl" ] && [ -x "$tmp/site/inspect_sbx/libexec/sbx-agent" ]; echo $?) "$out $pip"
yaml=$(python3 -c 'import yaml, os; print(os.path.dirname(os.path.dirname(yaml.__file__)))')
r=$(cd "$tmp/empty" && "${clean_env[@]}" PYTHONPATH="$tmp/site:$yaml" python3 -c '
import inspect_sbx._sbx as s
print(s.default_agent()); print(s.default_chart())' 2>&1)
check wheel_carries_agent_and_chart $([[ "$r" == "$tmp/site/inspect_sbx/libexec/sbx-agent"$'\n'"$tmp/site/inspect_sbx/chart/agent-env" ]]; echo $?) "$r"
r=$(cd "$tmp/empty" && "${clean_env[@]}" PYTHONPATH="$tmp/site:$yaml:$ROOT/tests/python/standin" python3 -c '
import asyncio
from inspect_sbx import config
from inspect_sbx.provider import LocalProvider
async def main():
    p = LocalProvider()
    conf = config.LocalConfig(host=True)
    await p.task_init("wheel", conf)
    envs = await p.sample_init("wheel", conf, {})
    r = await envs["default"].exec(["sh", "-c", "echo from-the-wheel"])
    await p.sample_cleanup("wheel", conf, envs, False)
    print(r.stdout.strip())
asyncio.run(main())' 2>&1)
check wheel_runs_a_sample_without_env $([[ "$r" == *from-the-wheel ]]; echo $?) "$r"
