"""sandbox.py — one sandbox (one agent) with Inspect's sandbox contract, without inspect_ai.

`SbxSandbox` wraps an agent session of the extension and implements exec, write_file,
read_file, exec_remote and connection exactly as Inspect's SandboxEnvironment documents
them; the result and error classes come from a `Contract` (contract.py), so the same
code serves Inspect (its own classes) and plain use (ours). Every call is a coroutine
whose future is completed by libsbx's loop (loop.py): no thread per call.

Mapping of agent outcomes:
  exit (any code)            ExecResult(success = code == 0), output decoded UTF-8/replace
  output over the limit      OutputLimitExceededError(limit_str, stdout + stderr truncated)
  timeout                    TimeoutError
  not executable             PermissionError
  executable not found       ExecResult(False, 127, ...) like a shell (docker exec does the same)
  unknown user / bad cwd     ExecResult(False, 126, ...) naming the problem (Inspect's self-check
                             looks for docker's "unable to find user NAME" in stdout)
  file errors                FileNotFoundError, PermissionError, IsADirectoryError, ... by errno
  file over the read limit   OutputLimitExceededError(limit_str, None)
  agent gone                 ConnectionError
"""
from __future__ import annotations

import asyncio
import codecs
import errno as errno_mod
import os
import signal
from typing import Any, Callable

from . import _sbx
from .contract import DEFAULT, Contract
from .loop import driver

# A streaming exec keeps nothing in memory, so the agent needs no output limit: the
# caller's pace bounds what the host holds (manual credit, see SbxProcess).
STREAM_OUTPUT_LIMIT = 1 << 62


class SbxCallError(Exception):
    """A libsbx failure that has no better Python exception."""

    def __init__(self, status: int, err_no: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.errno, self.code, self.message = status, err_no, code, message


def _fs_path(path: str | bytes) -> bytes:
    return os.fsencode(path)


def _call_error(status: int, err_no: int, code: str, message: str, path: str | None = None) -> Exception:
    """The Python exception for a failed call (anything but exec's own outcomes)."""
    if status in (_sbx.E_CONN, _sbx.E_CANCELLED):
        return ConnectionError(f"sandbox agent unavailable: {message}")
    if status == _sbx.E_INVALID:
        return ValueError(message)
    if status in (_sbx.E_REMOTE, _sbx.E_LOCAL) and err_no:
        if path is not None:
            return OSError(err_no, message, path)
        return OSError(err_no, message)
    return SbxCallError(status, err_no, code, message)


class OneAtATime:
    """Runs one coroutine for all the callers that ask while it runs: the
    calls that find a sandbox's stream lost share one reconnect."""

    def __init__(self) -> None:
        self._fut: asyncio.Future | None = None

    async def run(self, start: Callable[[], Any]) -> None:
        if self._fut is None:
            self._fut = asyncio.ensure_future(start())
        fut = self._fut
        try:
            await asyncio.shield(fut)
        finally:
            if self._fut is fut and fut.done():
                self._fut = None


class SbxSandbox:
    """One sandbox: an agent session plus what Inspect needs to know about it."""

    def __init__(self, session: Any, *, name: str = "default", backend: str = "sbx-local",
                 workdir: str | None = None, contract: Contract = DEFAULT,
                 connect: Callable[["SbxSandbox", str | None], Any] | None = None) -> None:
        self.session = session
        self.name = name
        self.backend = backend
        self.workdir = workdir
        self.contract = contract
        self._connect = connect
        self.closed = False
        self.isolated = False   # set by providers that isolate their agents
        self.sample_dir = None  # the provider's directory for this sandbox's sample
        driver.watch()  # heartbeats and redials run from now on, calls or not

    # ------------------------------------------------------------ plumbing

    def _start(self, start: Callable[[asyncio.Future], Any]) -> tuple[asyncio.Future, Any]:
        """Starts a libsbx call whose result tuple completes the returned future (the
        extension sets it; see _sbx's on_done)."""
        fut = driver.attach().create_future()
        try:
            call = start(fut)
        except _sbx.SbxError as e:
            raise _call_error(*e.args) from None
        driver.arm()
        return fut, call

    @staticmethod
    async def _wait(fut: asyncio.Future, call: Any) -> tuple:
        """Awaits a call; a cancelled await cancels the call (the agent kills the command).
        Not shielded: the cancel reaches fut too, and the call's late result finds it done
        (the extension then drops it); a shield would cost every call one more trip round
        the asyncio loop."""
        try:
            return await fut
        except asyncio.CancelledError:
            if not call.done:
                call.cancel()
            raise

    async def ready(self, timeout: float = 30.0) -> None:
        """Waits for the agent's HELLO; raises ConnectionError if it never comes."""
        try:
            failure = await asyncio.wait_for(driver.when_ready(self.session), timeout)
        except asyncio.TimeoutError:
            raise ConnectionError(f"sandbox {self.name}: the agent did not answer within {timeout:g} s") from None
        if failure is not None:
            raise ConnectionError(f"sandbox {self.name}: the agent failed to start: {failure[3]}")

    async def _before_call(self) -> None:
        """Runs before every call; a backend that can reconnect a lost agent overrides it."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.session.close()

    # ------------------------------------------------------------ exec

    async def exec(self, cmd: list[str], input: str | bytes | None = None, cwd: str | None = None,
                   env: dict[str, str] | None = None, user: str | None = None, timeout: int | None = None,
                   timeout_retry: bool = True, concurrency: bool = True) -> Any:
        """Runs cmd (no shell added) and returns ExecResult[str]; see the module docstring."""
        del timeout_retry, concurrency  # one attempt; no local throttling: the agent runs it
        if isinstance(cmd, str):
            raise TypeError("cmd must be a list of strings (use ['sh', '-c', CMD] for a shell)")
        cmd = list(cmd)
        await self._before_call()
        data = input.encode("utf-8") if isinstance(input, str) else input
        envl = [f"{k}={v}" for k, v in env.items()] if env else None
        # session.exec's arguments by position: parsing them as keywords cost ~6k
        # instructions a call (of ~88k; callgrind)
        fut, call = self._start(lambda done: self.session.exec(
            cmd, done, data, cwd, envl, user, float(timeout or 0), self.contract.Limits.MAX_EXEC_OUTPUT_SIZE))
        r = await self._wait(fut, call)
        return self._exec_result(cmd, user, timeout, *r)

    def _exec_result(self, cmd: list[str], user: str | None, timeout: Any, status: int, err_no: int, code: str,
                     message: str, exit_code: int, sig: int, timed_out: int, truncated: int, out: bytes,
                     err: bytes) -> Any:
        C = self.contract
        if status == _sbx.OK:
            return C.ExecResult(success=exit_code == 0, returncode=exit_code,
                                stdout=out.decode("utf-8", errors="replace"),
                                stderr=err.decode("utf-8", errors="replace"))
        if status == _sbx.E_TIMEOUT:
            raise TimeoutError(f"Command timed out after {timeout} seconds: {cmd!r}")
        if status == _sbx.E_LIMIT:
            raise C.OutputLimitExceededError(
                limit_str=C.Limits.MAX_EXEC_OUTPUT_SIZE_STR,
                truncated_output=out.decode("utf-8", errors="replace") + err.decode("utf-8", errors="replace"))
        if status == _sbx.E_REMOTE and code == "permission":
            raise PermissionError(err_no or errno_mod.EACCES, message, cmd[0])
        if status == _sbx.E_REMOTE and code == "not_found":
            return C.ExecResult(success=False, returncode=127, stdout="", stderr=f"{message}\n")
        if status == _sbx.E_REMOTE and code == "bad_user":
            name = (user or "").split(":")[0]
            return C.ExecResult(success=False, returncode=126,
                                stdout=f"unable to find user {name}: no matching entries in passwd file\n",
                                stderr=f"{message}\n")
        if status == _sbx.E_REMOTE and code == "bad_cwd":
            return C.ExecResult(success=False, returncode=126, stdout="", stderr=f"{message}\n")
        raise _call_error(status, err_no, code, message)

    # ------------------------------------------------------------ files

    async def write_file(self, file: str, contents: str | bytes, *, durable: bool = True) -> None:
        """Writes through a temporary file renamed into place; creates parent directories.
        Returns once the agent fsynced the file and its directory (a power loss leaves the
        old file or the new one); durable=False skips the fsyncs."""
        data = contents.encode("utf-8") if isinstance(contents, str) else bytes(contents)
        await self._before_call()
        fut, call = self._start(lambda done: self.session.write_file(_fs_path(file), data, done,
                                                                     durable=durable))
        status, err_no, code, message, _, _ = await self._wait(fut, call)
        if status != _sbx.OK:
            if err_no == errno_mod.EISDIR or code == "is_directory":
                raise IsADirectoryError(errno_mod.EISDIR, f"{file} is a directory", file)
            raise _call_error(status, err_no, code, message, file)

    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        """The file's contents: str (strict UTF-8) or bytes; limited to the read limit."""
        C = self.contract
        await self._before_call()
        fut, call = self._start(lambda done: self.session.read_file(
            _fs_path(file), done, limit=C.Limits.MAX_READ_FILE_SIZE))
        status, err_no, code, message, data, _ = await self._wait(fut, call)
        if status == _sbx.E_LIMIT:
            raise C.OutputLimitExceededError(limit_str=C.Limits.MAX_READ_FILE_SIZE_STR, truncated_output=None)
        if status != _sbx.OK:
            if code == "is_directory" or err_no == errno_mod.EISDIR:
                raise IsADirectoryError(errno_mod.EISDIR, f"{file} is a directory", file)
            raise _call_error(status, err_no, code, message, file)
        data = data or b""
        return data.decode("utf-8") if text else data

    # ------------------------------------------------------------ streaming

    async def exec_remote(self, cmd: list[str], options: Any = None, *, stream: bool = True) -> Any:
        """Inspect's exec_remote: stream=True returns an SbxProcess yielding output events as the
        agent sends them; stream=False returns the same ExecResult as exec()."""
        o = options
        get = (lambda k, d=None: getattr(o, k, d)) if o is not None else (lambda k, d=None: d)
        if not stream:
            return await self.exec(cmd, input=get("input"), cwd=get("cwd"), env=get("env") or {},
                                   user=get("user"), timeout=get("timeout"))
        await self._before_call()
        proc = SbxProcess(self, cmd, input=get("input"), cwd=get("cwd"), env=get("env"), user=get("user"),
                          stdin_open=bool(get("stdin_open", False)))
        proc._begin()
        return proc

    async def exec_tty(self, cmd: list[str], *, rows: int = 24, cols: int = 80, input: str | bytes | None = None,
                       cwd: str | None = None, env: dict[str, str] | None = None,
                       user: str | None = None) -> "SbxProcess":
        """Runs cmd on a terminal (a pty of rows x cols in the sandbox, its controlling terminal,
        stdin, stdout and stderr), as `sbx exec -it` does. Returns an SbxProcess with stdin open:
        write_stdin types keys (b"\\x03" is Ctrl-C, b"\\x04" end of input), resize(rows, cols)
        changes the window (the command gets SIGWINCH); everything the terminal shows arrives as
        ExecStdout. Needs an agent with the "pty" capability (every agent sbx ships)."""
        if not (1 <= rows <= 65535 and 1 <= cols <= 65535):
            raise ValueError("rows and cols must be 1..65535")
        await self._before_call()
        proc = SbxProcess(self, cmd, input=input, cwd=cwd, env=env, user=user, stdin_open=True,
                          tty=(rows, cols))
        proc._begin()
        return proc

    # ------------------------------------------------------------ connection

    async def connection(self, *, user: str | None = None) -> Any:
        if self.closed or self.session.failure is not None:
            raise ConnectionError(f"sandbox {self.name} is not running")
        if self._connect is None:
            raise NotImplementedError(f"{self.backend} sandboxes do not provide connections")
        return self._connect(self, user)


class _Output:
    """An output event in SbxProcess's queue, with the raw bytes it carries (the credit
    its consumption gives back)."""

    __slots__ = ("event", "nbytes")

    def __init__(self, event: Any, nbytes: int) -> None:
        self.event, self.nbytes = event, nbytes


class SbxProcess:
    """A command started by exec_remote(stream=True), with the interface of Inspect's
    ExecRemoteProcess: an async iterator of ExecStdout/ExecStderr events ending with
    ExecCompleted (none after kill), plus write_stdin, close_stdin and kill.

    Backpressure: the call runs with manual credit, so the agent gets flow-control credit
    for output only when the iterator hands the event carrying it to the caller. A caller
    that stops iterating holds at most one window of output (1 MiB per command, stdout and
    stderr together) in the queue; the agent stops reading the command's pipes and the
    command blocks on write, as under a slow terminal."""

    def __init__(self, sandbox: SbxSandbox, cmd: list[str], *, input: str | bytes | None, cwd: str | None,
                 env: dict[str, str] | None, user: str | None, stdin_open: bool,
                 tty: tuple[int, int] | None = None) -> None:
        self._sandbox = sandbox
        self._tty = tty
        self._cmd = list(cmd)
        self._args = dict(input=input, cwd=cwd, env=env, user=user)
        self._stdin_open = stdin_open
        self._queue: asyncio.Queue = asyncio.Queue()
        self._decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"),
                          2: codecs.getincrementaldecoder("utf-8")("replace")}
        self._call: Any = None
        self._done_fut: asyncio.Future | None = None
        self._completed = False
        self._killed = False
        self._iterating = False
        self._finished = False  # the iterator hit its end
        self.result: tuple | None = None

    @property
    def pid(self) -> None:
        """The agent does not report the command's pid; None."""
        return None

    def _begin(self) -> None:
        s = self._sandbox
        a = self._args
        inp = a["input"]
        data = inp.encode("utf-8") if isinstance(inp, str) else inp
        if self._stdin_open and data:
            data, first = None, data  # written as the first stdin chunk, stdin stays open
        else:
            first = None
        envl = [f"{k}={v}" for k, v in a["env"].items()] if a["env"] else None
        C = s.contract

        def on_output(fd: int, chunk: bytes) -> None:
            text = self._decoders[fd].decode(chunk)
            if text:  # credited when the caller takes the event (__anext__)
                ev = C.ExecStdout(data=text) if fd == 1 else C.ExecStderr(data=text)
                self._queue.put_nowait(_Output(ev, len(chunk)))
            else:  # a partial UTF-8 sequence (< 4 bytes) held by the decoder
                self._credit(len(chunk))

        rows, cols = self._tty or (0, 0)

        def start(done: asyncio.Future) -> Any:
            return s.session.exec(self._cmd, done, input=data, cwd=a["cwd"], env=envl, user=a["user"],
                                  output_limit=STREAM_OUTPUT_LIMIT, stream_stdin=self._stdin_open,
                                  on_output=on_output, accumulate=False, manual_credit=True,
                                  tty=self._tty is not None, rows=rows, cols=cols)

        self._done_fut, self._call = s._start(start)
        self._done_fut.add_done_callback(self._on_done)
        if first:
            self._call.write_stdin(first)

    def _credit(self, n: int) -> None:
        """n output bytes reached the caller: the agent may send n more."""
        call = self._call
        if call is not None and not call.done:
            call.consumed(n)

    def _on_done(self, fut: asyncio.Future) -> None:
        C = self._sandbox.contract
        r = fut.result()
        self.result = r
        for fd in (1, 2):
            tail = self._decoders[fd].decode(b"", final=True)
            if tail:
                self._queue.put_nowait(C.ExecStdout(data=tail) if fd == 1 else C.ExecStderr(data=tail))
        if self._killed:
            self._queue.put_nowait(None)
            return
        self._completed = True
        try:  # the same outcome exec() would report
            res = self._sandbox._exec_result(self._cmd, self._args["user"], None, *r)
        except Exception as e:
            self._queue.put_nowait(e)
        else:
            self._queue.put_nowait(C.ExecCompleted(exit_code=res.returncode))
        self._queue.put_nowait(None)

    def __aiter__(self) -> "SbxProcess":
        if self._iterating:
            raise RuntimeError("ExecRemoteProcess can only be iterated once")
        self._iterating = True
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            ev = await self._queue.get()
        except asyncio.CancelledError:
            await asyncio.shield(self.kill())
            raise
        if ev is None:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(ev, BaseException):
            self._finished = True
            raise ev
        if isinstance(ev, _Output):
            self._credit(ev.nbytes)
            return ev.event
        return ev

    async def write_stdin(self, data: str | bytes) -> None:
        if not self._stdin_open:
            raise RuntimeError("write_stdin() requires stdin_open=True in ExecRemoteStreamingOptions")
        if self._completed or self._killed or self._call.done:
            raise RuntimeError("Cannot write to stdin: process has terminated")
        self._call.write_stdin(data.encode("utf-8") if isinstance(data, str) else bytes(data))
        driver.arm()

    async def close_stdin(self) -> None:
        if not self._stdin_open:
            raise RuntimeError("close_stdin() requires stdin_open=True in ExecRemoteStreamingOptions")
        if self._completed or self._killed or self._call.done:
            return
        self._call.close_stdin()
        driver.arm()

    async def resize(self, rows: int, cols: int) -> bool:
        """A terminal's new window size (exec_tty); the command gets SIGWINCH. False when the
        command has ended."""
        if self._tty is None:
            raise RuntimeError("resize() needs a command started with exec_tty()")
        if not (1 <= rows <= 65535 and 1 <= cols <= 65535):
            raise ValueError("rows and cols must be 1..65535")
        if self._completed or self._killed or self._call is None or self._call.done:
            return False
        ok = bool(self._call.resize(rows, cols))
        driver.arm()
        return ok

    async def kill(self) -> None:
        """Terminates the command (its whole process group) and waits until it is gone.
        Output already received stays queued for the iterator; no ExecCompleted follows."""
        if self._completed or self._killed or self._call is None:
            return
        self._killed = True
        if not self._call.done:
            if not self._call.signal(signal.SIGKILL):
                self._call.cancel()
        await asyncio.shield(self._done_fut)

    async def wait(self) -> tuple:
        """The raw result once the command is over (for tests and the awaitable mode)."""
        return await asyncio.shield(self._done_fut)
