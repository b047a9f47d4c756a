"""_registry.py — registers sbx-local, sbx-k8s, sbx-ec2 and sbx-docker with Inspect.

Loaded by Inspect through the `inspect_ai` entry point. Each type is a thin
SandboxEnvironment subclass: its class methods forward to a Provider and its instance
methods to an SbxSandbox (kept as .sbx), built with Inspect's own result and error
classes, so nothing here decides behaviour.
"""
from __future__ import annotations

from typing import Any, Union

from inspect_ai.util import (
    ExecCompleted,
    ExecRemoteAwaitableOptions,
    ExecRemoteProcess,
    ExecRemoteStreamingOptions,
    ExecResult,
    ExecStderr,
    ExecStdout,
    OutputLimitExceededError,
    SandboxConnection,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    sandboxenv,
)

from .contract import Contract
from .docker import DockerProvider
from .provider import Ec2Provider, K8sProvider, LocalProvider, Provider
from .sandbox import SbxSandbox

CONTRACT = Contract(ExecResult=ExecResult, OutputLimitExceededError=OutputLimitExceededError,
                    Limits=SandboxEnvironmentLimits, ExecStdout=ExecStdout, ExecStderr=ExecStderr,
                    ExecCompleted=ExecCompleted, SandboxConnection=SandboxConnection)


class _SbxEnvironment(SandboxEnvironment):
    provider: Provider

    def __init__(self, sbx: SbxSandbox) -> None:
        super().__init__()
        self.sbx = sbx

    @classmethod
    def config_files(cls) -> list[str]:
        return cls.provider.config_files()

    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> Any:
        return cls.provider.config_deserialize(config)

    @classmethod
    def default_concurrency(cls) -> int | None:
        return cls.provider.default_concurrency()

    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        await cls.provider.task_init(task_name, config)

    @classmethod
    async def sample_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None,
                          metadata: dict[str, str]) -> dict[str, SandboxEnvironment]:
        envs = await cls.provider.sample_init(task_name, config, metadata)
        return {name: cls(s) for name, s in envs.items()}

    @classmethod
    async def sample_cleanup(cls, task_name: str, config: SandboxEnvironmentConfigType | None,
                             environments: dict[str, SandboxEnvironment], interrupted: bool) -> None:
        await cls.provider.sample_cleanup(task_name, config, environments, interrupted)

    @classmethod
    async def task_cleanup(cls, task_name: str, config: SandboxEnvironmentConfigType | None,
                           cleanup: bool) -> None:
        await cls.provider.task_cleanup(task_name, config, cleanup)

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        await cls.provider.cli_cleanup(id)

    async def exec(self, cmd: list[str], input: str | bytes | None = None, cwd: str | None = None,
                   env: dict[str, str] = {}, user: str | None = None, timeout: int | None = None,
                   timeout_retry: bool = True, concurrency: bool = True) -> ExecResult[str]:
        return await self.sbx.exec(cmd, input=input, cwd=cwd, env=env, user=user, timeout=timeout)

    async def write_file(self, file: str, contents: str | bytes, *, durable: bool = True) -> None:
        await self.sbx.write_file(file, contents, durable=durable)

    async def read_file(self, file: str, text: bool = True) -> Union[str, bytes]:  # type: ignore[override]
        return await self.sbx.read_file(file, text)

    async def exec_remote(self, cmd: list[str],
                          options: ExecRemoteStreamingOptions | ExecRemoteAwaitableOptions | None = None,
                          *, stream: bool = True) -> ExecRemoteProcess | ExecResult[str]:
        return await self.sbx.exec_remote(cmd, options, stream=stream)

    async def connection(self, *, user: str | None = None) -> SandboxConnection:
        return await self.sbx.connection(user=user)


@sandboxenv(name="sbx-local")
class SbxLocalSandboxEnvironment(_SbxEnvironment):
    """Local agents, one per service, each in its own OCI container (docs/SECURITY.md)."""

    provider = LocalProvider(CONTRACT)


@sandboxenv(name="sbx-k8s")
class SbxK8sSandboxEnvironment(_SbxEnvironment):
    """Kubernetes (agent-env chart); not available in this build yet."""

    provider = K8sProvider(CONTRACT)


@sandboxenv(name="sbx-ec2")
class SbxEc2SandboxEnvironment(_SbxEnvironment):
    """EC2 instances reached over SSM (one per sample)."""

    provider = Ec2Provider(CONTRACT)


@sandboxenv(name="sbx-docker")
class SbxDockerSandboxEnvironment(_SbxEnvironment):
    """The local Docker engine: one container per compose service, reached by sbx agents."""

    provider = DockerProvider(CONTRACT)
