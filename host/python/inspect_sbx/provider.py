"""provider.py — the lifecycle behind each sandbox type, without inspect_ai.

A Provider answers Inspect's class-level calls (task_init, sample_init, sample_cleanup,
task_cleanup, cli_cleanup, config_files, config_deserialize, default_concurrency) for
one backend. LocalProvider runs one local agent per service per sample (each in its own
OCI container, libsbx's box); K8sProvider (k8s.py) one
Helm release per sample with an agent stream per service pod; Ec2Provider one EC2
instance per sample over SSM.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
from typing import Any

from . import _sbx, clistate
from . import config as cfg
from .contract import DEFAULT, Contract
from .loop import driver
from .sandbox import SbxSandbox

READY_TIMEOUT = 30.0


class Provider:
    """One sandbox type. Methods mirror SandboxEnvironment's class methods."""

    name = "sbx"

    def __init__(self, contract: Contract = DEFAULT) -> None:
        self.contract = contract

    def config_files(self) -> list[str]:
        return []

    def config_deserialize(self, config: dict) -> Any:
        raise NotImplementedError

    def default_concurrency(self) -> int | None:
        return None

    async def task_init(self, task_name: str, config: Any) -> None:
        pass

    async def sample_init(self, task_name: str, config: Any, metadata: dict[str, str]) -> dict[str, SbxSandbox]:
        raise NotImplementedError

    async def sample_cleanup(self, task_name: str, config: Any, environments: dict[str, Any],
                             interrupted: bool) -> None:
        pass

    async def task_cleanup(self, task_name: str, config: Any, cleanup: bool) -> None:
        pass

    async def cli_cleanup(self, id: str | None) -> None:
        pass


# ---------------------------------------------------------------- local


def _state_root() -> str:
    """Where local sandboxes keep their bundles and working directories ($SBX_LOCAL_DIR
    overrides); made 0711: a container's root (an unprivileged id) passes through it."""
    root = os.environ.get("SBX_LOCAL_DIR") or os.path.join(tempfile.gettempdir(), f"sbx-inspect-{os.getuid()}")
    os.makedirs(root, mode=0o711, exist_ok=True)
    st = os.stat(root)
    if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
        os.chmod(root, (st.st_mode & 0o7777) | 0o001)
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalProvider(Provider):
    """sbx-local: each sample gets one agent per service, each in its own OCI container
    (libsbx's box: the host's OS read-only, a private /etc, /root, /tmp, no network,
    root inside an unprivileged host id, memory/pids/CPU limits; docs/SECURITY.md) whose
    bundle is STATE/TASK-XXXX/SERVICE (STATE: $SBX_LOCAL_DIR, else TMPDIR/sbx-inspect-UID).
    host=True (or isolate=False) runs plain host processes instead, working in that
    directory. A sample directory holds an `owner` file with the pid of the process that
    made it, so `inspect sandbox cleanup sbx-local` can remove what a killed evaluation
    left behind."""

    name = "sbx-local"

    def __init__(self, contract: Contract = DEFAULT) -> None:
        super().__init__(contract)
        self._samples: dict[str, tuple[str, list[SbxSandbox]]] = {}  # sample dir -> (task, sandboxes)

    def config_files(self) -> list[str]:
        return list(cfg.COMPOSE_NAMES) + list(cfg.VALUES_NAMES)

    def config_deserialize(self, config: dict) -> cfg.LocalConfig:
        return cfg.local_config(config)

    def default_concurrency(self) -> int | None:
        return None  # agents are cheap processes; Inspect's max_samples bounds them

    async def task_init(self, task_name: str, config: Any) -> None:
        c = cfg.local_config(config)
        c.services()  # a bad file fails the task at once, not every sample

    def _session(self, c: cfg.LocalConfig, where: str, svc: str, is_default: bool) -> Any:
        if c.host:
            os.mkdir(where)
            return _sbx.session_local(where, False, c.agent)
        opts = c.box_options()
        if c.values:  # what the file says of this service (as `sbx up -f`); the config's limits win
            spec = _sbx.box_service(c.values, svc, is_default)
            if spec["image"] and not c.rootfs:
                raise ValueError(f"sbx-local: service {svc} runs image {spec['image']}, which the local backend "
                                 "cannot pull: unpack the image into a directory and set `rootfs`, or use "
                                 "sbx-k8s (or sbx-docker once available)")
            opts.update(workdir=spec["workdir"] or None, user=spec["user"] or None, env=spec["env"] or None)
            if not opts["memory"] and spec["memory"]:
                opts["memory"] = spec["memory"]
            if not opts["cpus"] and spec["cpus"]:
                opts["cpus"] = spec["cpus"]
        return _sbx.session_box(where, hostname=svc, **opts)

    async def sample_init(self, task_name: str, config: Any, metadata: dict[str, str]) -> dict[str, SbxSandbox]:
        c = cfg.local_config(config)
        services = c.services()
        root = _state_root()
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", task_name or "task")[:40] or "task"
        sample_dir = tempfile.mkdtemp(prefix=f"{slug}-", dir=root)
        os.chmod(sample_dir, 0o711)  # a container's root passes through to its bundle
        with open(os.path.join(sample_dir, "owner"), "w") as f:
            f.write(f"{os.getpid()}\n")
        envs: dict[str, SbxSandbox] = {}
        self._samples[sample_dir] = (task_name, list(envs.values()))
        try:
            for i, svc in enumerate(services):
                wd = os.path.join(sample_dir, svc)
                try:
                    session = self._session(c, wd, svc, i == 0)
                except _sbx.SbxError as e:
                    raise RuntimeError(f"sbx-local: cannot start the agent for service {svc}: {e.args[3]}") from None
                envs[svc] = SbxSandbox(session, name=svc, backend=self.name, workdir=wd if c.host else None,
                                       contract=self.contract, connect=self._connection)
                envs[svc].isolated = not c.host
                envs[svc].bundle = None if c.host else wd
                self._samples[sample_dir] = (task_name, list(envs.values()))
            await asyncio.gather(*(s.ready(READY_TIMEOUT) for s in envs.values()))
        except BaseException:
            self._close_sample(sample_dir)
            raise
        for s in envs.values():
            s.sample_dir = sample_dir
        if not c.host:
            _register_local(sample_dir, services)
        return envs

    def _close_sample(self, sample_dir: str) -> None:
        clistate.unregister(_cli_name(sample_dir))
        _, sandboxes = self._samples.pop(sample_dir, (None, []))
        for s in sandboxes:
            s.close()  # the agent sees EOF and exits; libsbx deletes its container
        _remove_sample(sample_dir)

    async def sample_cleanup(self, task_name: str, config: Any, environments: dict[str, Any],
                             interrupted: bool) -> None:
        dirs = {getattr(_core(e), "sample_dir", None) for e in environments.values()}
        for d in dirs:
            if d:
                self._close_sample(d)

    async def task_cleanup(self, task_name: str, config: Any, cleanup: bool) -> None:
        """Everything the task started is closed (also after Ctrl-C, when Inspect skipped
        sample cleanups). cleanup=False (--no-sandbox-cleanup) keeps host-mode directories,
        but the agents (and their containers) end with this process either way."""
        for d, (task, sandboxes) in list(self._samples.items()):
            if task != task_name:
                continue
            if cleanup:
                self._close_sample(d)
            else:
                for s in sandboxes:
                    s.close()
                self._samples.pop(d, None)

    async def cli_cleanup(self, id: str | None) -> None:
        """Removes sample directories whose owning process is gone (id: one directory name),
        deleting any container still running from them and killing host-mode agents."""
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
            _remove_sample(d)

    def _connection(self, sandbox: SbxSandbox, user: str | None) -> Any:
        """`sbx shell NAME/SERVICE` (the sample is a CLI sandbox while it runs), the runtime's
        exec into the container after it as the alternative; for a host-mode sandbox a shell
        in its working directory."""
        shell = "su -s /bin/sh " + _quote(user) if user else "${SHELL:-/bin/sh}"
        bundle = getattr(sandbox, "bundle", None)
        if bundle:
            try:
                with open(os.path.join(bundle, "runtime")) as f:
                    runtime, program, cid = f.read().split("\n")[:3]
            except (OSError, ValueError):
                raise ConnectionError(f"sandbox {sandbox.name}: its container is gone") from None
            inner = "su -s /bin/sh " + _quote(user) if user else "/bin/sh"
            cmd = (f"{_quote(program)} --root {_quote(os.path.join(bundle, 'state'))} exec -t "
                   f"--cwd /root {_quote(cid)} {inner}")
            name = _cli_name(getattr(sandbox, "sample_dir", "") or "")
            if clistate.registered(name):
                cmd = f"{clistate.shell_command(name, sandbox.name, user)}  # or: {cmd}"
        else:
            cmd = f"cd {_quote(sandbox.workdir or '.')} && exec {shell}"
        return self.contract.SandboxConnection(type="local", command=cmd, container=None)


def _cli_name(sample_dir: str) -> str:
    """The CLI's name for a sample: "i-" and its directory's name in the CLI's alphabet."""
    base = re.sub(r"[^a-z0-9_-]+", "-", os.path.basename(sample_dir).lower())
    return ("i-" + base)[:40].rstrip("-")


def _register_local(sample_dir: str, services: list[str]) -> None:
    """The sample as a CLI sandbox (clistate): STATE/NAME links to sample_dir, where each
    service's bundle SVC/ is also SVC.box (what host/cli/local_backend.c opens). The CLI
    reaches such a box through a second agent started by the runtime's exec."""
    try:
        for svc in services:
            if clistate.valid_name(svc):
                os.symlink(svc, os.path.join(sample_dir, f"{svc}.box"))
    except OSError:
        return
    clistate.register(_cli_name(sample_dir), "local", list(services), ("cli-local", ""), into=sample_dir)


def _remove_sample(sample_dir: str) -> None:
    """Deletes the containers of a sample directory, kills host-mode agents, removes it."""
    clistate.unregister(_cli_name(sample_dir))
    if not os.path.isdir(sample_dir):
        return
    for svc in os.listdir(sample_dir):
        where = os.path.join(sample_dir, svc)
        if os.path.isdir(where) and not _sbx.box_destroy(where):
            for pid in _agents_in(where):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    shutil.rmtree(sample_dir, ignore_errors=True)


def _core(env: Any) -> Any:
    """The SbxSandbox behind an environment (the Inspect wrapper keeps it as .sbx)."""
    return getattr(env, "sbx", env)


def _quote(s: str) -> str:
    import shlex
    return shlex.quote(s)


def _agents_in(workdir: str) -> list[int]:
    """Pids of processes whose working directory is workdir (agents chdir there)."""
    want = os.path.realpath(workdir)
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/cwd") != want:
                continue
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"sbx-agent") for a in argv[:1]) or b"--stdio" in argv:
            found.append(int(p))
    return sorted(found)


# ---------------------------------------------------------------- k8s

from .k8s import K8sProvider  # noqa: E402  (sbx-k8s lives in its own module)


# ---------------------------------------------------------------- ec2


class Ec2Provider(Provider):
    """sbx-ec2: one EC2 instance per sample, reached over one SSM port-forwarding session
    to its agent (libsbx's EC2 backend through the extension; docs/EC2.md). Every instance
    carries the tag sbx-owner=<this run's id> (plus the EC2 sandbox's own tags), so
    task_cleanup (also after Ctrl-C) and `inspect sandbox cleanup sbx-ec2` find what is left.
    The sbx-agent binary is shipped through the S3 bucket and fetched at boot (checksum
    verified); $SBX_EC2_AGENT_PORT says where it listens on the instance (default 7000)."""

    name = "sbx-ec2"

    def __init__(self, contract: Contract = DEFAULT, agent: str | None = None, agent_port: int = 0,
                 poll_ms: int = 0) -> None:
        super().__init__(contract)
        self.agent = agent
        self.agent_port = agent_port or int(os.environ.get("SBX_EC2_AGENT_PORT", "0") or 0)
        self.poll_ms = poll_ms
        self.owner = "inspect-" + os.urandom(6).hex()
        self._live: dict[int, tuple[str, Any]] = {}  # id(handle) -> (task, handle): not yet removed

    def config_deserialize(self, config: dict) -> cfg.Ec2Config:
        return cfg.ec2_config(config)

    def default_concurrency(self) -> int | None:
        return None  # launches run on the one loop; AWS's own limits are the bound

    def _config(self, config: Any) -> cfg.Ec2Config:
        """The config as libsbx will read it: fields, then INSPECT_EC2_SANDBOX_*, then a
        .env file in the working directory (as the EC2 sandbox's pydantic settings do)."""
        c = cfg.ec2_config(config)
        try:
            _sbx.ec2_check(c.settings())
        except ValueError as e:
            missing = c.missing()
            if missing and "missing" in str(e):
                raise ValueError("sbx-ec2: missing settings: " + ", ".join(
                    f"{m} (or INSPECT_EC2_SANDBOX_{m.upper()})" for m in missing)) from None
            raise ValueError(f"sbx-ec2: {e}") from None
        return c

    async def task_init(self, task_name: str, config: Any) -> None:
        self._config(config)

    async def _down(self, handle: Any) -> None:
        loop = driver.attach()
        fut = loop.create_future()
        handle.down(lambda err: fut.done() or fut.set_result(err))
        driver.arm()
        err = await asyncio.shield(fut)
        self._live.pop(id(handle), None)
        if err is not None:
            raise RuntimeError(f"sbx-ec2: could not remove {handle.instance_id or 'the sandbox'}: {err[3]}")

    async def sample_init(self, task_name: str, config: Any, metadata: dict[str, str]) -> dict[str, SbxSandbox]:
        c = self._config(config)
        loop = driver.attach()
        fut = loop.create_future()
        try:
            handle = _sbx.ec2_up(c.settings(), task_name or "task", self.owner,
                                 lambda err: fut.done() or fut.set_result(err),
                                 agent=None if c.ami_has_agent else self.agent or _sbx.default_agent(),
                                 agent_port=self.agent_port,
                                 poll_ms=self.poll_ms)
        except ValueError as e:
            raise ValueError(f"sbx-ec2: {e}") from None
        except _sbx.SbxError as e:
            raise RuntimeError(f"sbx-ec2: {e.args[3]}") from None
        self._live[id(handle)] = (task_name, handle)
        driver.arm()
        try:
            err = await asyncio.shield(fut)
        except BaseException:  # cancelled (Ctrl-C): remove what was started, then go
            await self._down(handle)
            raise
        if err is not None:
            self._live.pop(id(handle), None)  # libsbx removed the instance and object already
            raise RuntimeError(f"sbx-ec2: {err[3]}")
        sandbox = SbxSandbox(handle.take_session(), name="default", backend=self.name, contract=self.contract,
                             connect=self._connection)
        sandbox.ec2 = handle
        sandbox.region = c.region or os.environ.get("AWS_REGION")
        return {"default": sandbox}

    async def _remove(self, sandbox: SbxSandbox) -> None:
        sandbox.close()
        handle = getattr(sandbox, "ec2", None)
        if handle is not None and id(handle) in self._live:
            await self._down(handle)

    async def sample_cleanup(self, task_name: str, config: Any, environments: dict[str, Any],
                             interrupted: bool) -> None:
        await asyncio.gather(*(self._remove(_core(e)) for e in environments.values()))

    async def task_cleanup(self, task_name: str, config: Any, cleanup: bool) -> None:
        """Removes every instance this task launched that a sample cleanup did not (after
        Ctrl-C Inspect skips those). Instances cost money: they go even with cleanup=False."""
        handles = [h for t, h in list(self._live.values()) if t == task_name]
        results = await asyncio.gather(*(self._down(h) for h in handles), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def cli_cleanup(self, id: str | None) -> None:
        """`inspect sandbox cleanup sbx-ec2 [RUN]`: terminates every instance tagged sbx-owner
        (=RUN when given) and deletes the objects sbx put in the bucket for them. Needs the
        region and the bucket (INSPECT_EC2_SANDBOX_REGION, _S3_BUCKET)."""
        c = cfg.ec2_config(None)
        loop = driver.attach()
        fut = loop.create_future()
        try:
            _sbx.ec2_cleanup(c.settings(), id, lambda err, n, k: fut.done() or fut.set_result((err, n, k)))
        except ValueError as e:
            raise ValueError(f"sbx-ec2 cleanup: {e}") from None
        driver.arm()
        err, instances, objects = await fut
        if err is not None:
            raise RuntimeError(f"sbx-ec2 cleanup: {err[3]}")
        self.cleaned = (instances, objects)

    def _connection(self, sandbox: SbxSandbox, user: str | None) -> Any:
        """A shell on the instance through Session Manager (the AWS CLI and its plugin)."""
        iid = sandbox.ec2.instance_id
        region = getattr(sandbox, "region", None)
        cmd = f"aws ssm start-session --target {iid}" + (f" --region {region}" if region else "")
        if user:
            cmd += (" --document-name AWS-StartInteractiveCommand --parameters "
                    + _quote(f'command=["sudo -iu {user}"]'))
        return self.contract.SandboxConnection(type="ec2", command=cmd, container=None)
