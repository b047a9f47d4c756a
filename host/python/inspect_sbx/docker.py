"""docker.py — sbx-docker: what Inspect's docker sandbox accepts, on the local Docker engine.

One container per service of the compose file (or one `default` service running `image`),
made by libsbx's docker backend (host/backends/docker/sandbox.h, docs/docker.md) through the
Engine API; each is reached through one agent session over a unix socket in the sample's
directory, so exec and files never go through dockerd. A sample's directory
(STATE/NAME: $SBX_DOCKER_DIR, else TMPDIR/sbx-docker-UID) holds its agents' secrets and
sockets and an `owner` file, so `inspect sandbox cleanup sbx-docker` can remove what a
killed evaluation left behind.

Images are pulled when the engine lacks them, or built (a `build:` service or a Dockerfile
config: one `default` service built from it, with init and no network, as Inspect's docker
sandbox does). Everything sbx makes is labelled sbx.sandbox=NAME and sbx.owner=STATE, so
cleanup finds it even when a sample's directory is gone. A container Docker restarted
during a sample (its agent gone with everything else) is found by its new StartedAt when a
call finds the agent stream lost: its agent is started again and, as for sbx-k8s,
restarted_container_behavior "warn" logs a warning and carries on, "raise" raises
RestartedContainerError from that call.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from . import _sbx, clistate
from . import config as cfg
from .contract import DEFAULT, Contract
from .provider import READY_TIMEOUT, Provider, _core, _pid_alive, _quote
from .k8s import RestartedContainerError
from .sandbox import OneAtATime, SbxSandbox

log = logging.getLogger("inspect_sbx")

DEFAULT_IMAGE = "aisiuk/inspect-tool-support"  # Inspect's docker sandbox without a config
UNIX_PATH_MAX = 107


@dataclass
class DockerConfig:
    """compose: a compose (or values) file or a Dockerfile, one container per service;
    without it one service `default` running image. agent: the static sbx-agent (default:
    libsbx's). restarted_container_behavior: "warn" or "raise", as for sbx-k8s."""

    compose: str | None = None
    image: str | None = None
    agent: str | None = None
    restarted_container_behavior: str = "warn"

    def __post_init__(self) -> None:
        if self.restarted_container_behavior not in ("warn", "raise"):
            raise ValueError("sbx-docker config: restarted_container_behavior must be 'warn' or 'raise'")
        if self.compose and self.image:
            raise ValueError("sbx-docker config: give compose or image, not both (the file names each image)")

    def services(self) -> list[str]:
        if not self.compose or is_dockerfile(self.compose):
            return ["default"]
        return cfg.services_from_file(self.compose)


def is_dockerfile(path: str) -> bool:
    """Dockerfile, NAME.Dockerfile or Dockerfile.NAME (host/backends/docker/defaults.c's rule)."""
    base = os.path.basename(path).lower()
    return base == "dockerfile" or base.startswith("dockerfile.") or base.endswith(".dockerfile")


def docker_config(config: Any) -> DockerConfig:
    if config is None:
        return DockerConfig()
    if isinstance(config, str):
        return DockerConfig(compose=config)
    return cfg._from_mapping(DockerConfig, config, "sbx-docker config")


def _state_root() -> str:
    root = os.environ.get("SBX_DOCKER_DIR") or os.path.join(tempfile.gettempdir(), f"sbx-docker-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    return root


def _agent_addr(run_dir: str) -> tuple[str, int | None]:
    """The agent socket's address, through an O_PATH descriptor of its directory when the
    path is too long for a unix address (as host/backends/docker/container.c does)."""
    path = os.path.join(run_dir, "agent.sock")
    if len(path) <= UNIX_PATH_MAX:
        return path, None
    fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/agent.sock", fd


class DockerSandbox(SbxSandbox):
    """A service's container: a lost agent stream is checked against the container's start
    time, and a container Docker restarted gets its agent back (host/backends/docker/restart.h)."""

    def __init__(self, session: Any, *, addr: str, key: str, run_dir: str, sandbox: str, id: str,
                 started_at: str, behavior: str, **kw: Any) -> None:
        super().__init__(session, **kw)
        self.addr, self.key, self.run_dir, self.sandbox, self.id = addr, key, run_dir, sandbox, id
        self.started_at = started_at
        self.behavior = behavior
        self.restarts = 0
        self._reconnecting = OneAtATime()

    async def _again(self, call: Any, *args: Any, **kw: Any) -> Any:
        """call; when it could not reach the agent at all (so nothing ran), once more after
        the container's agent is revived (which raises if it was not restarted)."""
        try:
            return await call(*args, **kw)
        except ConnectionError as e:
            if self.closed or self.session.failure is None or "cannot connect" not in str(e):
                raise
        await self._before_call()
        return await call(*args, **kw)

    async def exec(self, *args: Any, **kw: Any) -> Any:
        return await self._again(super().exec, *args, **kw)

    async def read_file(self, *args: Any, **kw: Any) -> Any:
        return await self._again(super().read_file, *args, **kw)

    async def write_file(self, *args: Any, **kw: Any) -> Any:
        return await self._again(super().write_file, *args, **kw)

    async def _before_call(self) -> None:
        if self.closed or self.session.failure is None:
            return
        await self._reconnecting.run(self._revive)  # one revival for all the calls that find the stream lost

    async def _revive(self) -> None:
        lost = self.session.failure
        try:
            at = await asyncio.to_thread(_sbx.docker_revive, self.id, self.sandbox, self.name, self.run_dir,
                                         self.key, self.started_at)
        except RuntimeError as e:
            raise ConnectionError(f"sbx-docker: sandbox {self.name}: its container is gone or stopped: {e}") \
                from None
        if at is None:
            raise ConnectionError(f"sbx-docker: sandbox {self.name}: the agent stream was lost ({lost[3]}) and "
                                  "its container was not restarted (is it stopped?)")
        old = self.session
        self.session = _sbx.session_connect(self.addr, self.key)
        old.close()
        await self.ready(READY_TIMEOUT)
        self.started_at = at
        self.restarts += 1
        msg = (f"sbx-docker: Docker restarted the container of sandbox {self.name} ({self.container}, at {at}): "
               "processes it ran are gone; its agent was started again")
        if self.behavior == "raise":
            raise RestartedContainerError(msg)
        log.warning(msg)


class DockerProvider(Provider):
    """sbx-docker: each sample's services as containers of the local Docker engine."""

    name = "sbx-docker"

    def __init__(self, contract: Contract = DEFAULT) -> None:
        super().__init__(contract)
        self._samples: dict[str, tuple[str, list[SbxSandbox], list[int]]] = {}  # dir -> (task, sandboxes, fds)

    def config_files(self) -> list[str]:
        return list(cfg.COMPOSE_NAMES) + ["Dockerfile"]

    def config_deserialize(self, config: dict) -> DockerConfig:
        return docker_config(config)

    async def task_init(self, task_name: str, config: Any) -> None:
        docker_config(config).services()  # a bad file fails the task at once

    def _new_sample_dir(self, task_name: str) -> tuple[str, str]:
        slug = re.sub(r"[^a-z0-9-]+", "-", (task_name or "task").lower())[:12].strip("-") or "task"
        name = f"inspect-{slug}-i{secrets.token_hex(3)}"
        sample_dir = os.path.join(_state_root(), name)
        os.mkdir(sample_dir, 0o700)
        with open(os.path.join(sample_dir, "owner"), "w") as f:
            f.write(f"{os.getpid()}\n")
        return name, sample_dir

    async def sample_init(self, task_name: str, config: Any, metadata: dict[str, str]) -> dict[str, SbxSandbox]:
        c = docker_config(config)
        services = c.services()
        name, sample_dir = self._new_sample_dir(task_name)
        self._samples[sample_dir] = (task_name, [], [])
        envs: dict[str, SbxSandbox] = {}
        try:
            try:
                ids = await asyncio.to_thread(_sbx.docker_up, name, sample_dir, services, c.compose,
                                              None if c.compose else (c.image or DEFAULT_IMAGE), c.agent)
            except RuntimeError as e:
                raise RuntimeError(f"sbx-docker: {e}") from None
            fds: list[int] = []
            for svc, cid in zip(services, ids):
                run_dir, key = os.path.join(sample_dir, f"{svc}.run"), os.path.join(sample_dir, f"{svc}.key")
                addr, fd = _agent_addr(run_dir)
                if fd is not None:
                    fds.append(fd)
                started = await asyncio.to_thread(_sbx.docker_revive, cid, name, svc, run_dir, key, "")
                session = _sbx.session_connect(addr, key)
                envs[svc] = DockerSandbox(session, addr=addr, key=key, run_dir=run_dir, sandbox=name, id=cid,
                                          started_at=started or "", behavior=c.restarted_container_behavior,
                                          name=svc, backend=self.name, contract=self.contract,
                                          connect=self._connection)
                envs[svc].isolated = True
                envs[svc].container = f"sbx-{name}-{svc}"
                self._samples[sample_dir] = (task_name, list(envs.values()), fds)
            await asyncio.gather(*(s.ready(READY_TIMEOUT) for s in envs.values()))
        except BaseException:
            await self._close_sample(sample_dir)
            raise
        for s in envs.values():
            s.sample_dir = sample_dir
        record = "".join(f"container {svc} sbx-{name}-{svc}\n" for svc in services)
        clistate.register(name, "docker", list(services), ("docker", record), into=sample_dir)
        return envs

    async def _close_sample(self, sample_dir: str) -> None:
        _, sandboxes, fds = self._samples.pop(sample_dir, (None, [], []))
        for s in sandboxes:
            s.close()
        for fd in fds:
            os.close(fd)
        await asyncio.to_thread(_remove_sample, sample_dir)

    async def sample_cleanup(self, task_name: str, config: Any, environments: dict[str, Any],
                             interrupted: bool) -> None:
        dirs = {getattr(_core(e), "sample_dir", None) for e in environments.values()}
        for d in dirs:
            if d:
                await self._close_sample(d)

    async def task_cleanup(self, task_name: str, config: Any, cleanup: bool) -> None:
        """Everything the task started goes (also after Ctrl-C); cleanup=False
        (--no-sandbox-cleanup) keeps the containers for a look."""
        for d, (task, sandboxes, _) in list(self._samples.items()):
            if task != task_name:
                continue
            if cleanup:
                await self._close_sample(d)
            else:
                for s in sandboxes:
                    s.close()
                self._samples.pop(d, None)

    async def cli_cleanup(self, id: str | None) -> None:
        """Removes the containers and directories of samples whose process is gone (id:
        one sandbox name, removed in any case)."""
        root = _state_root()
        for name in sorted(os.listdir(root)):
            if id and name != id:
                continue
            d = os.path.join(root, name)
            try:
                with open(os.path.join(d, "owner")) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _pid_alive(owner) and not id:
                continue  # a running evaluation's sandbox
            await asyncio.to_thread(_remove_sample, d)
        # what a lost directory left: found by the owner label (host/backends/docker/container.h)
        try:
            owned = await asyncio.to_thread(_sbx.docker_owned, root)
        except RuntimeError:
            owned = []
        for name in owned:
            if (id and name != id) or os.path.isdir(os.path.join(root, name)):
                continue
            await asyncio.to_thread(_sbx.docker_down, name)

    def _connection(self, sandbox: SbxSandbox, user: str | None) -> Any:
        container = getattr(sandbox, "container", None)
        if not container:
            raise ConnectionError(f"sandbox {sandbox.name}: no container")
        as_user = f"--user {_quote(user)} " if user else ""
        docker = (f"docker exec -it {as_user}{container} "
                  "sh -c 'command -v bash >/dev/null && exec bash -l || exec sh'")
        name = os.path.basename(getattr(sandbox, "sample_dir", "") or "")
        cmd = docker
        if name and clistate.registered(name):
            cmd = f"{clistate.shell_command(name, sandbox.name, user)}  # or: {docker}"
        return self.contract.SandboxConnection(type="docker", command=cmd, container=container,
                                               vscode_command=["remote-containers.attachToRunningContainer",
                                                               container])


def _remove_sample(sample_dir: str) -> None:
    """Removes a sample's containers (by its name's label) and its directory."""
    name = os.path.basename(sample_dir)
    clistate.unregister(name)
    try:
        _sbx.docker_down(name)
    except RuntimeError:
        if os.path.isdir(sample_dir):
            raise
    shutil.rmtree(sample_dir, ignore_errors=True)
