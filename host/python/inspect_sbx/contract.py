"""contract.py — the result and error types the sandbox core hands back.

The core (sandbox.py) does not import inspect_ai. It builds its results through a
`Contract`: a set of classes with Inspect's shapes. Used on its own, the package uses
the plain classes below; the Inspect registration (_registry.py) passes Inspect's own
classes, so Inspect gets its real ExecResult, OutputLimitExceededError and exec_remote
events, and its SandboxEnvironmentLimits are read at each call (tests patch them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


@dataclass
class ExecResult(Generic[T]):
    success: bool
    returncode: int
    stdout: T
    stderr: T


class OutputLimitExceededError(Exception):
    def __init__(self, limit_str: str, truncated_output: str | None) -> None:
        self.limit_str = limit_str
        self.truncated_output = truncated_output
        super().__init__(f"The sandbox output stream limit of {self.limit_str} was exceeded.")


class Limits:
    MAX_EXEC_OUTPUT_SIZE = 10 * 1024**2
    MAX_EXEC_OUTPUT_SIZE_STR = "10 MiB"
    MAX_READ_FILE_SIZE = 100 * 1024**2
    MAX_READ_FILE_SIZE_STR = "100 MiB"


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


@dataclass
class SandboxConnection:
    type: str
    command: str
    vscode_command: list[Any] | None = None
    ports: list[Any] | None = None
    container: str | None = None


@dataclass
class Contract:
    ExecResult: Any = ExecResult
    OutputLimitExceededError: Any = OutputLimitExceededError
    Limits: Any = Limits
    ExecStdout: Any = ExecStdout
    ExecStderr: Any = ExecStderr
    ExecCompleted: Any = ExecCompleted
    SandboxConnection: Any = SandboxConnection
    extra: dict = field(default_factory=dict)


DEFAULT = Contract()
