"""k8s.py — sbx-k8s: one Helm release of chart/agent-env per sample (libsbx's k8s backend).

sample_init asks the extension for a release (_sbx.k8s_up): libsbx runs `helm install` on
its loop (at most $INSPECT_MAX_HELM_INSTALL at once per process, default 8; the rest wait
in a queue), watches the pods until each service's is ready (failing fast with a
diagnosis), puts the agent into each pod and opens one exec stream per service. Any
failure after the install uninstalls the release before the error is raised. Releases
carry the k8s sandbox's label inspectSandbox=true and the task annotation, so
`inspect sandbox cleanup sbx-k8s` (and the k8s sandbox's own cleanup) find them.

A lost agent stream is re-established on the next call (the pod looked up again, the
agent put back if the container lost it). That is a restarted container as far as the
task is concerned (the processes it started are gone, and with a new pod UID or a
missing agent its files too): restarted_container_behavior "warn" logs a warning and
carries on, "raise" raises RestartedContainerError from that call.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import string
import tempfile
from typing import Any

from . import _sbx
from . import clistate
from . import config as cfg
from .contract import DEFAULT, Contract
from .loop import driver
from .sandbox import OneAtATime, SbxSandbox

READY_TIMEOUT = 60.0
log = logging.getLogger("inspect_sbx")


class RestartedContainerError(RuntimeError):
    """A sandbox's container was restarted or its pod replaced (restarted_container_behavior=raise)."""


def release_name() -> str:
    """8 lowercase letters and digits starting with a letter, like the k8s sandbox's."""
    rest = string.ascii_lowercase + string.digits
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(rest) for _ in range(7))


def is_compose_file(path: str) -> bool:
    name = os.path.basename(path)
    return name in cfg.COMPOSE_NAMES or ".compose." in name or name.startswith("compose.") \
        or name.startswith("docker-compose.")


def _future_callback(fut: asyncio.Future) -> Any:
    return lambda *a: fut.done() or fut.set_result(a[0] if len(a) == 1 else a)


_POD_OPS: dict[tuple[int, int], asyncio.Semaphore] = {}


def _pod_ops(limit: int | None) -> Any:
    """The k8s sandbox's max_pod_ops: one semaphore per event loop and limit, shared by
    every sandbox of the process; no cap without a limit."""
    if not limit:
        return contextlib.nullcontext()
    key = (id(asyncio.get_running_loop()), limit)
    if key not in _POD_OPS:
        _POD_OPS[key] = asyncio.Semaphore(limit)
    return _POD_OPS[key]


class K8sSandbox(SbxSandbox):
    """One service's pod: an SbxSandbox that re-establishes a lost agent stream."""

    def __init__(self, session: Any, *, handle: Any, index: int, pod: str, namespace: str, pod_uid: str,
                 config: cfg.K8sConfig, contract: Contract, connect: Any) -> None:
        super().__init__(session, name=handle.info["services"][index], backend="sbx-k8s", contract=contract,
                         connect=connect)
        self.k8s = handle
        self.index = index
        self.pod = pod
        self.namespace = namespace
        self.pod_uid = pod_uid
        self.config = config
        self.restarts = 0
        self.boot_id: str | None = None  # the agent's, as first seen
        self._reconnecting = OneAtATime()

    async def exec(self, cmd: list[str], input: str | bytes | None = None, cwd: str | None = None,
                   env: dict[str, str] | None = None, user: str | None = None, timeout: int | None = None,
                   timeout_retry: bool = True, concurrency: bool = True) -> Any:
        async with _pod_ops(self.config.max_pod_ops):
            return await super().exec(cmd, input=input, cwd=cwd, env=env, user=user or self.config.default_user,
                                      timeout=timeout, timeout_retry=timeout_retry, concurrency=concurrency)

    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        async with _pod_ops(self.config.max_pod_ops):
            return await super().read_file(file, text=text)

    async def write_file(self, file: str, contents: str | bytes, *, durable: bool = True) -> None:
        async with _pod_ops(self.config.max_pod_ops):
            await super().write_file(file, contents, durable=durable)

    async def _before_call(self) -> None:
        if self.closed:
            return
        if self.session.failure is None:
            # A dropped exec stream is dialled again by libsbx itself (the agent
            # listens in the pod): the same agent means nothing was lost; a new
            # boot id means the agent (or its container) started over.
            boot = self.session.boot_id
            if not boot:  # dialling a new stream: wait for its agent's HELLO
                await self.ready(READY_TIMEOUT)
                boot = self.session.boot_id
            if boot and self.boot_id and boot != self.boot_id:
                self.boot_id = boot
                self._restarted(self.pod_uid, "its agent started over")
            elif boot:
                self.boot_id = boot
            return
        await self._reconnecting.run(self._reconnect)  # one reconnect for all the calls that find the stream lost

    async def _reconnect(self) -> None:
        lost = self.session.failure
        loop = driver.attach()
        fut = loop.create_future()
        try:
            self.k8s.reconnect(self.index, _future_callback(fut))
        except _sbx.SbxError as e:
            raise ConnectionError(f"sbx-k8s: sandbox {self.name}: cannot reconnect: {e.args[3]}") from None
        driver.arm()
        session, uid, err = await fut
        if err is not None:
            raise ConnectionError(f"sbx-k8s: sandbox {self.name} (pod {self.namespace}/{self.pod}) is gone: "
                                  f"{err[3]} (the stream was lost: {lost[3]})")
        old = self.session
        self.session = session
        old.close()
        await self.ready(READY_TIMEOUT)
        self.boot_id = self.session.boot_id
        why = "its pod was replaced" if uid != self.pod_uid else "its agent stream was lost and restarted"
        self._restarted(uid, f"{why} ({lost[3]})")

    def _restarted(self, uid: str, why: str) -> None:
        """Counts a restart and applies restarted_container_behavior."""
        self.restarts += 1
        self.pod_uid = uid
        msg = (f"sbx-k8s: the container of sandbox {self.name} (pod {self.namespace}/{self.pod}) restarted: "
               f"{why}; processes it ran are gone")
        if self.config.restarted_container_behavior == "raise":
            raise RestartedContainerError(msg)
        log.warning(msg)


class K8sProvider:
    """sbx-k8s (see the module docstring). Methods mirror SandboxEnvironment's class methods."""

    name = "sbx-k8s"

    def __init__(self, contract: Contract = DEFAULT, agent: str | None = None) -> None:
        self.contract = contract
        self.agent = agent
        self._live: dict[str, tuple[str, Any]] = {}  # release -> (task, handle): installed, not removed

    def config_files(self) -> list[str]:
        return list(cfg.VALUES_NAMES) + list(cfg.COMPOSE_NAMES)

    def config_deserialize(self, config: dict) -> cfg.K8sConfig:
        return cfg.k8s_config(config)

    def default_concurrency(self) -> int | None:
        return None  # helm runs are limited in libsbx; pods by the cluster

    # ------------------------------------------------------------ configuration

    def _values(self, c: cfg.K8sConfig) -> tuple[str | None, list[str], str | None]:
        """(values file for helm, services default first, a temporary file to remove)."""
        if not c.values:
            return None, ["default"], None
        if not os.path.isfile(c.values):
            raise ValueError(f"sbx-k8s: the values file {c.values} does not exist")
        if not is_compose_file(c.values):
            return c.values, cfg.services_from_file(c.values), None
        try:
            text, warnings = _sbx.compose_to_values(c.values)
        except ValueError as e:
            raise ValueError(f"sbx-k8s: {e}") from None
        for w in warnings:
            log.warning("sbx-k8s: %s", w)
        fd, tmp = tempfile.mkstemp(prefix="sbx-k8s-values-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return tmp, cfg.services_from_file(tmp), tmp

    @staticmethod
    def _chart(c: cfg.K8sConfig) -> str:
        """The config's chart, else the one libsbx finds ($SBX_CHART, the wheel's, an
        installation's, a checkout's)."""
        chart = c.chart or _sbx.default_chart()
        if not c.chart and not os.path.isfile(os.path.join(chart, "Chart.yaml")):
            raise ValueError("sbx-k8s: no agent-env chart (looked at %s): set `chart` in the sandbox config or "
                             "SBX_CHART to the chart directory (chart/agent-env in sbx's sources)"
                             % _sbx.locate_tried(True))
        if not os.path.isfile(os.path.join(chart, "Chart.yaml")):
            raise ValueError(f"sbx-k8s: the chart {chart} has no Chart.yaml (point `chart` or SBX_CHART at the "
                             "agent-env chart directory)")
        return chart

    async def task_init(self, task_name: str, config: Any) -> None:
        c = cfg.k8s_config(config)
        self._chart(c)
        _, _, tmp = self._values(c)  # a bad file fails the task at once, not every sample
        if tmp:
            os.unlink(tmp)

    # ------------------------------------------------------------ samples

    async def _down(self, handle: Any) -> None:
        loop = driver.attach()
        fut = loop.create_future()
        handle.down(_future_callback(fut))
        driver.arm()
        err = await asyncio.shield(fut)
        self._live.pop(handle.info["release"], None)
        clistate.unregister(handle.info["release"])
        if err is not None:
            raise RuntimeError(f"sbx-k8s: could not remove release {handle.info['release']}: {err[3]}")

    async def sample_init(self, task_name: str, config: Any, metadata: dict[str, str]) -> dict[str, K8sSandbox]:
        c = cfg.k8s_config(config)
        chart = self._chart(c)
        values, services, tmp = self._values(c)
        release = release_name()
        loop = driver.attach()
        fut = loop.create_future()
        try:
            try:
                handle = _sbx.k8s_up(release, services, _future_callback(fut), values=values, chart=chart,
                                     context=c.context, task=task_name or "task",
                                     agent=self.agent or _sbx.default_agent(),
                                     kubectl=c.transport == "kubectl")
            except _sbx.SbxError as e:
                raise RuntimeError(f"sbx-k8s: {e.args[3]}") from None
            self._live[release] = (task_name, handle)
            driver.arm()
            try:
                err = await asyncio.shield(fut)
            except BaseException:  # cancelled (Ctrl-C): uninstall what was started, then go
                await self._down(handle)
                raise
        finally:
            if tmp:
                os.unlink(tmp)
        if err is not None:
            self._live.pop(release, None)  # libsbx uninstalled it already
            raise RuntimeError(f"sbx-k8s: {err[3]}")
        info = handle.info
        envs: dict[str, K8sSandbox] = {}
        try:
            for i, svc in enumerate(info["services"]):
                envs[svc] = K8sSandbox(handle.take_session(i), handle=handle, index=i, pod=info["pods"][i],
                                       namespace=info["namespace"], pod_uid=info["pod_uids"][i], config=c,
                                       contract=self.contract, connect=self._connection)
            await asyncio.gather(*(s.ready(READY_TIMEOUT) for s in envs.values()))
            for s in envs.values():
                s.boot_id = s.session.boot_id
            _register(info, c.transport == "kubectl")
        except BaseException:
            for s in envs.values():
                s.close()
            await self._down(handle)
            raise
        return envs

    async def _remove(self, sandboxes: list[K8sSandbox]) -> None:
        for s in sandboxes:
            s.close()
        if sandboxes and sandboxes[0].k8s.info["release"] in self._live:
            await self._down(sandboxes[0].k8s)

    async def sample_cleanup(self, task_name: str, config: Any, environments: dict[str, Any],
                             interrupted: bool) -> None:
        by_release: dict[str, list[K8sSandbox]] = {}
        for e in environments.values():
            s = getattr(e, "sbx", e)
            by_release.setdefault(s.k8s.info["release"], []).append(s)
        await asyncio.gather(*(self._remove(v) for v in by_release.values()))

    async def task_cleanup(self, task_name: str, config: Any, cleanup: bool) -> None:
        """Uninstalls every release of this task that a sample cleanup did not (after Ctrl-C
        Inspect skips those). cleanup=False (--no-sandbox-cleanup) leaves them and says how to
        remove them."""
        handles = [h for t, h in list(self._live.values()) if t == task_name]
        if not cleanup:
            for h in handles:
                self._live.pop(h.info["release"], None)
                log.warning("sbx-k8s: release %s left running; remove it with `helm uninstall %s -n %s` or "
                            "`inspect sandbox cleanup sbx-k8s %s`", h.info["release"], h.info["release"],
                            h.info["namespace"], h.info["release"])
            return
        results = await asyncio.gather(*(self._down(h) for h in handles), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def cli_cleanup(self, id: str | None) -> None:
        """`inspect sandbox cleanup sbx-k8s [RELEASE]`: uninstalls every release labelled
        inspectSandbox=true in the namespace ($INSPECT_K8S_DEFAULT_NAMESPACE, else the
        kubeconfig context's), or just RELEASE."""
        helm = os.environ.get("SBX_HELM") or "helm"
        ns = os.environ.get("INSPECT_K8S_DEFAULT_NAMESPACE")
        argv = [helm, "list", "--selector", "inspectSandbox=true", "--output", "json"] + (["-n", ns] if ns else [])
        try:
            p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            raise RuntimeError(f"sbx-k8s cleanup: cannot run {helm}: {e.strerror} (install helm or set SBX_HELM)") \
                from None
        out, err = await p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"sbx-k8s cleanup: `{' '.join(argv)}` failed: {err.decode(errors='replace').strip()}")
        releases = [(r["name"], r["namespace"]) for r in json.loads(out or b"[]")
                    if not id or r["name"] == id]
        handles = [_sbx.k8s_attach(name, namespace) for name, namespace in releases]
        results = await asyncio.gather(*(self._down(h) for h in handles), return_exceptions=True)
        self.cleaned = [name for (name, _), r in zip(releases, results) if not isinstance(r, BaseException)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    def _connection(self, sandbox: K8sSandbox, user: str | None) -> Any:
        """`sbx shell RELEASE/SERVICE` (the release is known to the CLI), with the anchor's
        `kubectl exec -it POD -n NS -c CONTAINER -- bash -l` as the alternative after it
        (a shell comment, so the line runs as it is), as user when given (or default_user).
        vscode_command as the anchor gives it: without a context or a user."""
        q = _quote
        info = sandbox.k8s.info
        ctx = f" --context {q(info['context'])}" if info["context"] else ""
        user = user or sandbox.config.default_user
        shell = f"su -s /bin/bash -l {q(user)}" if user else "bash -l"
        service = _service_of(sandbox)
        kubectl = (f"kubectl exec -it {q(sandbox.pod)} -n {q(sandbox.namespace)} -c {q(service)}{ctx} "
                   f"-- {shell}")
        cmd = kubectl
        if clistate.registered(info["release"]):
            cmd = f"{clistate.shell_command(info['release'], service, user)}  # or: {kubectl}"
        vscode = None
        if not info["context"] and not user:
            vscode = ["remote-containers.attachToK8sContainer", {"name": sandbox.pod, "namespace": sandbox.namespace}]
        return self.contract.SandboxConnection(type="k8s", command=cmd, vscode_command=vscode, container=sandbox.pod)


def _service_of(sandbox: K8sSandbox) -> str:
    info = sandbox.k8s.info
    return info["services"][info["pods"].index(sandbox.pod)]


def _register(info: dict, kubectl: bool) -> None:
    """The release as a CLI sandbox (clistate): STATE/RELEASE/k8s in host/cli/k8s_backend.c's
    format."""
    lines = [f"release {info['release']}", f"namespace {info['namespace']}", f"context {info['context'] or ''}",
             f"kubeconfig {info['kubeconfig'] or ''}", f"transport {'kubectl' if kubectl else 'websocket'}"]
    lines += [f"pod {svc} {pod} {agent}" for svc, pod, agent in zip(info["services"], info["pods"], info["agents"])]
    if any("\n" in x or "\r" in x for x in lines):
        return
    clistate.register(info["release"], "k8s", list(info["services"]), ("k8s", "\n".join(lines) + "\n"))


def _quote(s: str) -> str:
    import shlex
    return shlex.quote(s)
