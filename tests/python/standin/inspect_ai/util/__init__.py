"""Stand-in of inspect_ai.util's sandbox interface (see ../__init__.py).

Matches Inspect: ExecResult fields; OutputLimitExceededError(limit_str, truncated_output)
and its message; SandboxEnvironmentLimits (10 MiB exec output per stream, 100 MiB read);
SandboxEnvironment's abstract methods and class-method defaults; SandboxConnection's
fields; the exec_remote event and option dataclasses; @sandboxenv(name=...) registering
the class under its name. Inspect's default exec_remote (a JSON-RPC helper polled in
the sandbox) is replaced by an error here, so a provider that does not override it fails.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, Generic, Literal, TypeVar, Union, overload

try:
    from pydantic import BaseModel
except ImportError:  # Inspect depends on pydantic; keep the stand-in usable without it
    class BaseModel:  # type: ignore[no-redef]
        def __init__(self, **kw: Any) -> None:
            for name in self.__annotations__:
                if name not in kw and not hasattr(type(self), name):
                    raise TypeError(f"{type(self).__name__}: missing field {name}")
            for k, v in kw.items():
                setattr(self, k, v)

T = TypeVar("T", str, bytes)


@dataclass
class ExecResult(Generic[T]):
    success: bool
    returncode: int
    stdout: T
    stderr: T


class SandboxEnvironmentLimits:
    MAX_EXEC_OUTPUT_SIZE = 10 * 1024**2
    MAX_EXEC_OUTPUT_SIZE_STR = "10 MiB"
    MAX_READ_FILE_SIZE = 100 * 1024**2
    MAX_READ_FILE_SIZE_STR = "100 MiB"


class OutputLimitExceededError(Exception):
    def __init__(self, limit_str: str, truncated_output: str | None) -> None:
        self.limit_str = limit_str
        self.truncated_output = truncated_output
        super().__init__(f"The sandbox output stream limit of {self.limit_str} was exceeded.")


class PortMapping(BaseModel):
    service: str
    container_port: int
    protocol: str = "tcp"


class SandboxConnection(BaseModel):
    type: str
    command: str
    vscode_command: list[Any] | None = None
    ports: list[PortMapping] | None = None
    container: str | None = None


SandboxEnvironmentConfigType = Union[BaseModel, str]


@dataclass
class ExecStdout:
    type: ClassVar[str] = "stdout"
    data: str


@dataclass
class ExecStderr:
    type: ClassVar[str] = "stderr"
    data: str


@dataclass
class ExecCompleted:
    type: ClassVar[str] = "completed"
    exit_code: int

    @property
    def success(self) -> bool:
        return self.exit_code == 0


ExecOutput = Union[ExecStdout, ExecStderr, ExecCompleted]


@dataclass
class ExecRemoteCommonOptions:
    input: str | bytes | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None
    user: str | None = None
    poll_interval: float | None = None
    concurrency: bool = True


@dataclass
class ExecRemoteStreamingOptions(ExecRemoteCommonOptions):
    stdin_open: bool = False


@dataclass
class ExecRemoteAwaitableOptions(ExecRemoteCommonOptions):
    timeout: int | None = None


class ExecRemoteProcess:
    """Inspect's handle polls a JSON-RPC helper; only its name is needed here."""


class SandboxEnvironment(abc.ABC):
    @classmethod
    def config_files(cls) -> list[str]:
        return []

    @classmethod
    def default_concurrency(cls) -> int | None:
        return None

    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        pass

    @classmethod
    async def sample_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None,
                          metadata: dict[str, str]) -> dict[str, "SandboxEnvironment"]:
        return {}

    @classmethod
    @abc.abstractmethod
    async def sample_cleanup(cls, task_name: str, config: SandboxEnvironmentConfigType | None,
                             environments: dict[str, "SandboxEnvironment"], interrupted: bool) -> None:
        ...

    @classmethod
    async def task_cleanup(cls, task_name: str, config: SandboxEnvironmentConfigType | None, cleanup: bool) -> None:
        pass

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        pass

    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        raise NotImplementedError("The SandboxEnvironment provider has not implemented config_deserialize.")

    @abc.abstractmethod
    async def exec(self, cmd: list[str], input: str | bytes | None = None, cwd: str | None = None,
                   env: dict[str, str] = {}, user: str | None = None, timeout: int | None = None,
                   timeout_retry: bool = True) -> ExecResult[str]:
        ...

    @abc.abstractmethod
    async def write_file(self, file: str, contents: str | bytes) -> None:
        ...

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    @abc.abstractmethod
    async def read_file(self, file: str, text: bool = True) -> Union[str, bytes]:
        ...

    async def exec_remote(self, cmd: list[str],
                          options: ExecRemoteStreamingOptions | ExecRemoteAwaitableOptions | None = None,
                          *, stream: bool = True) -> ExecRemoteProcess | ExecResult[str]:
        raise NotImplementedError("stand-in: Inspect's default exec_remote polls a helper in the sandbox")

    async def connection(self, *, user: str | None = None) -> SandboxConnection:
        raise NotImplementedError("connection not implemented")


_REGISTRY: dict[str, type[SandboxEnvironment]] = {}


def sandboxenv(name: str) -> Callable[..., type[SandboxEnvironment]]:
    def wrapper(sandboxenv_type: type[SandboxEnvironment] | Callable[..., type[SandboxEnvironment]]):
        if not isinstance(sandboxenv_type, type):
            sandboxenv_type = sandboxenv_type()
        _REGISTRY[name] = sandboxenv_type
        return sandboxenv_type

    return wrapper


def registry_find_sandboxenv(envtype: str) -> type[SandboxEnvironment]:
    if envtype not in _REGISTRY:
        raise ValueError(f"SandboxEnvironment type '{envtype}' not recognized.")
    return _REGISTRY[envtype]


TaskInit = Callable[[str, Union[SandboxEnvironmentConfigType, None]], Awaitable[None]]
