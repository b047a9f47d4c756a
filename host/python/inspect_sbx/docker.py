"""docker.py — sbx-docker: what Inspect's docker sandbox accepts, on the local Docker engine.

One container per service of the compose file (or one `default` service running `image`),
made by libsbx's docker backend (host/docker/sandbox.h, docs/docker.md) through the
Engine API; each is reached through one agent session over a unix socket in the sample's
directory, so exec and files never go through dockerd. A sample's directory
(STATE/NAME: $SBX_DOCKER_DIR, else TMPDIR/sbx-docker-UID) holds its agents' secrets and
sockets and an `owner` file, so `inspect sandbox cleanup sbx-docker` can remove what a
killed evaluation left behind.

Not yet: images pulled or built (a Dockerfile config), networks, restarted containers.
"""
from __future__ import annotations

import asyncio
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
from .sandbox import SbxSandbox

DEFAULT_IMAGE = "aisiuk/inspect-tool-support"  # Inspect's docker sandbox without a config
UNIX_PATH_MAX = 107


@dataclass
class DockerConfig:
    """compose: a compose (or values) file, one container per service; without it one
    service `default` running image. agent: the static sbx-agent (default: libsbx's)."""

    compose: str | None = None
    image: str | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        if self.compose and os.path.basename(self.compose).lower().endswith("dockerfile"):
            raise ValueError(f"sbx-docker: {self.compose}: Dockerfile configs are not supported yet: build the "
                             "image (docker build -t NAME .) and name it in a compose file")
        if self.compose and self.image:
            raise ValueError("sbx-docker config: give compose or image, not both (the file names each image)")

    def services(self) -> list[str]:
        return cfg.services_from_file(self.compose) if self.compose else ["default"]


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
    path is too long for a unix address (as host/docker/container.c does)."""
    path = os.path.join(run_dir, "agent.sock")
    if len(path) <= UNIX_PATH_MAX:
        return path, None
    fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/agent.sock", fd


class DockerProvider(Provider):
    """sbx-docker: each sample's services as containers of the local Docker engine."""

    name = "sbx-docker"

    def __init__(self, contract: Contract = DEFAULT) -> None:
        super().__init__(contract)
        self._samples: dict[str, tuple[str, list[SbxSandbox], list[int]]] = {}  # dir -> (task, sandboxes, fds)

    def config_files(self) -> list[str]:
        return list(cfg.COMPOSE_NAMES)

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
                await asyncio.to_thread(_sbx.docker_up, name, sample_dir, services, c.compose,
                                        None if c.compose else (c.image or DEFAULT_IMAGE), c.agent)
            except RuntimeError as e:
                raise RuntimeError(f"sbx-docker: {e}") from None
            fds: list[int] = []
            for svc in services:
                addr, fd = _agent_addr(os.path.join(sample_dir, f"{svc}.run"))
                if fd is not None:
                    fds.append(fd)
                session = _sbx.session_connect(addr, os.path.join(sample_dir, f"{svc}.key"))
                envs[svc] = SbxSandbox(session, name=svc, backend=self.name, contract=self.contract,
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
