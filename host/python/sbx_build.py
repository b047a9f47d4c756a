"""sbx_build.py — the PEP 517 backend that builds inspect_sbx offline.

It compiles inspect_sbx._sbx (ext/sbxmodule.c linked with the static libsbx the
top-level Makefile builds, build/libsbx.a; $SBX_LIBSBX names another) with setuptools'
build_ext, and writes the wheel (a zip with a .dist-info) itself from pyproject.toml,
so neither network nor the `wheel` package is needed. The wheel carries what libsbx
looks for next to the extension (host/core/locate.c): the static agent as
inspect_sbx/libexec/sbx-agent (and libexec/arm64/sbx-agent when built), from
$SBX_AGENT_BUILD (default build/), and the agent-env chart as inspect_sbx/chart/agent-env.
"""
import base64
import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
import tomllib
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PACKAGE = "inspect_sbx"


def _project() -> dict:
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _libsbx() -> str:
    lib = os.environ.get("SBX_LIBSBX") or os.path.join(ROOT, "build", "libsbx.a")
    if not os.path.exists(lib):
        sys.exit(f"inspect_sbx: {lib} is missing: run `make lib` in {ROOT} first (or set SBX_LIBSBX)")
    return lib


def _host_libs() -> list[str]:
    """The libraries libsbx needs: $SBX_HOST_LIBS, else HOST_LIBS of the top-level
    Makefile (one list for the C programs and this extension)."""
    text = os.environ.get("SBX_HOST_LIBS")
    if text is None:
        with open(os.path.join(ROOT, "Makefile")) as f:
            lines = [l for l in f if l.startswith("HOST_LIBS")]
        if not lines:
            sys.exit(f"inspect_sbx: no HOST_LIBS line in {ROOT}/Makefile (or set SBX_HOST_LIBS)")
        text = lines[0].split("=", 1)[1]
    return [w[2:] for w in text.split() if w.startswith("-l")]


def build_extension(out_dir: str, extra_cflags: list[str] | None = None) -> str:
    """Compiles the extension into out_dir/inspect_sbx/; returns the .so path."""
    from setuptools import Distribution, Extension

    ext = Extension(
        f"{PACKAGE}._sbx",
        sources=[os.path.join(HERE, "ext", f) for f in ("sbxmodule.c", "sbx_docker.c", "sbx_ec2.c", "sbx_k8s.c")],
        include_dirs=[os.path.join(ROOT, "host"), os.path.join(ROOT, "common")],
        extra_objects=[_libsbx()],
        libraries=_host_libs(),
        extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra"] + (extra_cflags or []),
    )
    dist = Distribution({"name": PACKAGE, "ext_modules": [ext]})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = out_dir
    cmd.build_temp = os.path.join(out_dir, ".tmp")
    cmd.force = True  # setuptools only compares sources: a newer libsbx.a must relink too
    cmd.ensure_finalized()
    cmd.run()
    shutil.rmtree(cmd.build_temp, ignore_errors=True)
    return cmd.get_ext_fullpath(ext.name)


def _tag() -> str:
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{py}-{py}-{plat}"


def _metadata(p: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _entry_points(p: dict) -> str:
    out = []
    for group, eps in p.get("entry-points", {}).items():
        out.append(f"[{group}]")
        out += [f"{k} = {v}" for k, v in eps.items()]
        out.append("")
    return "\n".join(out)


def _record_line(arc: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arc},sha256={digest},{len(data)}"


def _package_data() -> list[tuple[str, bytes, int]]:
    """(archive name, bytes, mode) of the agent(s) and the chart."""
    build = os.environ.get("SBX_AGENT_BUILD") or os.path.join(ROOT, "build")
    agent = os.path.join(build, "sbx-agent")
    if not os.path.exists(agent):
        sys.exit(f"inspect_sbx: {agent} is missing: run `make` in {ROOT} first (or set SBX_AGENT_BUILD)")
    out = []
    for rel, arc in (("sbx-agent", "libexec/sbx-agent"), ("arm64/sbx-agent", "libexec/arm64/sbx-agent")):
        path = os.path.join(build, rel)
        if os.path.exists(path):
            with open(path, "rb") as f:
                out.append((f"{PACKAGE}/{arc}", f.read(), 0o755))
    chart = os.path.join(ROOT, "chart", "agent-env")
    for d, _, names in sorted(os.walk(chart)):
        for n in sorted(names):
            path = os.path.join(d, n)
            with open(path, "rb") as f:
                out.append((f"{PACKAGE}/chart/agent-env/{os.path.relpath(path, chart)}", f.read(), 0o644))
    return out


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    name, version = p["name"], p["version"]
    tag = _tag()
    dist_info = f"{name}-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    modes = {}
    with tempfile.TemporaryDirectory() as tmp:
        so = build_extension(tmp)
        with open(so, "rb") as f:
            files.append((f"{PACKAGE}/{os.path.basename(so)}", f.read()))
    pkg = os.path.join(HERE, PACKAGE)
    for fn in sorted(os.listdir(pkg)):
        if fn.endswith(".py"):
            with open(os.path.join(pkg, fn), "rb") as f:
                files.append((f"{PACKAGE}/{fn}", f.read()))
    for arc, data, mode in _package_data():
        files.append((arc, data))
        modes[arc] = mode
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: sbx_build\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files += [(f"{dist_info}/METADATA", _metadata(p).encode()), (f"{dist_info}/WHEEL", wheel_meta.encode()),
              (f"{dist_info}/entry_points.txt", _entry_points(p).encode())]
    record = [_record_line(a, d) for a, d in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    wheel_name = f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            info = zipfile.ZipInfo(arc, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | modes.get(arc, 0o644)) << 16  # a regular file: pip keeps +x
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    import tarfile

    p = _project()
    base = f"{p['name']}-{p['version']}"
    out = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(out, "w:gz") as t:
        for rel in ["pyproject.toml", "sbx_build.py", "ext", PACKAGE]:
            t.add(os.path.join(HERE, rel), arcname=f"{base}/{rel}",
                  filter=lambda ti: None if "__pycache__" in ti.name or ti.name.endswith(".so") else ti)
    return os.path.basename(out)


if __name__ == "__main__":
    # `python3 sbx_build.py OUT_DIR [CFLAGS...]`: the extension alone (what `make python` uses).
    print(build_extension(sys.argv[1], sys.argv[2:]))
