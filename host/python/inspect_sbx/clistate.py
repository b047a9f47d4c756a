"""Inspect sandboxes made known to the sbx CLI, so that `sbx shell NAME/SERVICE` (and exec,
cp, ps, logs) reach them: connection() offers that command.

The CLI keeps a sandbox NAME as the directory STATE/NAME (host/cli/state.c): a `services`
file, a `backend` file and the backend's own record. STATE follows the CLI's rule:
$SBX_STATE_DIR, else /run/sbx for root, else $XDG_RUNTIME_DIR/sbx, else /tmp/sbx-UID.
A provider registers a sandbox once it runs and unregisters it at cleanup; only the record
is removed then, never anything it names (the provider removes the sandbox itself)."""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil

MARK = "inspect-registered"  # in STATE/NAME: registered here (unregister removes only these)
_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]{0,39}")


def state_dir() -> str:
    env = os.environ.get("SBX_STATE_DIR")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/sbx"
    run = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(run, "sbx") if run else f"/tmp/sbx-{os.getuid()}"


def valid_name(name: str) -> bool:
    """A name the CLI accepts (host/cli/state.c cli_valid_name)."""
    return bool(_NAME.fullmatch(name))


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def register(name: str, backend: str, services: list[str], record: tuple[str, str], into: str | None = None) -> bool:
    """Writes STATE/NAME for a running sandbox: its services (the default first), its backend
    and the backend's record (file name, text). With into (a directory that already holds
    what the backend's CLI side reads, e.g. SVC.run and SVC.key), the files go there and
    STATE/NAME is a symlink to it. False (nothing written) when the name is not one the CLI
    takes or STATE/NAME already exists (a CLI sandbox of that name)."""
    if not valid_name(name) or not services or not all(valid_name(s) for s in services):
        return False
    root = state_dir()
    link = os.path.join(root, name)
    try:
        os.makedirs(root, mode=0o711, exist_ok=True)
        if os.path.lexists(link):
            return False
        d = into or link
        if not into:
            os.mkdir(d, 0o700)
    except OSError:
        return False
    try:
        _write(os.path.join(d, MARK), f"{os.getpid()}\n")
        _write(os.path.join(d, "backend"), backend + "\n")
        _write(os.path.join(d, record[0]), record[1])
        _write(os.path.join(d, "services"), "".join(s + "\n" for s in services))  # last: it makes NAME exist
        if into:
            os.symlink(into, link)
    except OSError:
        if not into:
            shutil.rmtree(d, ignore_errors=True)
        return False
    return True


def unregister(name: str) -> None:
    """Forgets NAME (a symlink made by register(into=...) goes, not what it points to)."""
    if not valid_name(name):
        return
    link = os.path.join(state_dir(), name)
    if os.path.islink(link):
        with contextlib.suppress(OSError):
            os.unlink(link)
    elif os.path.isfile(os.path.join(link, MARK)):  # never a CLI sandbox of the same name
        shutil.rmtree(link, ignore_errors=True)


def registered(name: str) -> bool:
    return valid_name(name) and os.path.isfile(os.path.join(state_dir(), name, "services"))


def sbx_program() -> str:
    """How to call the CLI: `sbx` when it is on PATH, else the one built next to the agent
    (a checkout's build directory), else `sbx`."""
    if shutil.which("sbx"):
        return "sbx"
    from . import _sbx
    try:
        near = os.path.join(os.path.dirname(_sbx.default_agent()), "sbx")
    except Exception:
        near = ""
    return shlex.quote(near) if near and os.access(near, os.X_OK) else "sbx"


def shell_command(name: str, service: str, user: str | None) -> str:
    """`sbx shell NAME/SERVICE [-u USER]`."""
    cmd = f"{sbx_program()} shell {name}/{service}"
    return cmd + (f" -u {shlex.quote(user)}" if user else "")
