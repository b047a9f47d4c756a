#!/usr/bin/env python3
"""Tests of inspect_sbx's sandbox core against real local agents, without inspect_ai:
Inspect's sandbox contract (exec, write_file, read_file, exec_remote, connection), the
asyncio embedding of libsbx's loop, 500 concurrent execs across 50 sandboxes, the
sbx-local lifecycle (sample/task/CLI cleanup), configurations, and the offline pip
install. One line per test ("ok NAME", "FAIL NAME: why", "skip NAME: why").

    python3 tests/python/test_inspect_sbx.py [SUBSTRING]
"""
import asyncio
import atexit
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()

from inspect_sbx import _sbx, clistate, config as cfg, contract  # noqa: E402
from inspect_sbx.provider import K8sProvider, LocalProvider  # noqa: E402
from inspect_sbx.sandbox import SbxSandbox  # noqa: E402

MiB = 1024 * 1024
# Samples become CLI sandboxes (clistate) in here, not in the user's state directory.
CLI_STATE = tempfile.mkdtemp(prefix="sbx-pytest-cli-")
os.environ["SBX_STATE_DIR"] = CLI_STATE
atexit.register(shutil.rmtree, CLI_STATE, True)
Opts = type("Opts", (), {})


async def drain(it):
    """The rest of an already started iteration (a second `async for` would restart it)."""
    out = []
    while True:
        try:
            out.append(await it.__anext__())
        except StopAsyncIteration:
            return out


def opts(**kw):
    o = Opts()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


class SandboxCase(unittest.IsolatedAsyncioTestCase):
    """Each test gets a fresh sbx-local sample (one agent, service "default")."""

    config = None

    async def asyncSetUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        self.env_patch = mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": self.tmp})
        self.env_patch.start()
        self.provider = LocalProvider()
        await self.provider.task_init("pytest", self.config)
        self.envs = await self.provider.sample_init("pytest", self.config, {})
        self.sb = self.envs["default"]
        # The working directory seen from inside, and the same directory on the host
        # (a contained sandbox's is in its bundle's root filesystem).
        bundle = getattr(self.sb, "bundle", None)
        self.inside_wd = "/root" if bundle else os.path.realpath(self.sb.workdir)
        self.host_wd = os.path.join(bundle, "rootfs", "root") if bundle else self.sb.workdir

    async def asyncTearDown(self):
        await self.provider.sample_cleanup("pytest", self.config, self.envs, False)
        await self.provider.task_cleanup("pytest", self.config, True)
        self.env_patch.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def unprivileged(self):
        """A sandbox whose agent runs as nobody (root bypasses file permissions)."""
        wd = os.path.join(self.tmp, "nobody")
        os.mkdir(wd)
        argv = [sbxtest.AGENT, "--stdio", "--workdir", wd]
        if sbxtest.IS_ROOT:
            if not shutil.which("setpriv"):
                self.skipTest("running as root and setpriv (util-linux) is missing")
            os.chown(wd, 65534, 65534)
            os.chmod(self.tmp, 0o755)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + argv
        sb = SbxSandbox(_sbx.session_command(argv), name="nobody", workdir=wd)
        await sb.ready()
        self.addAsyncCleanup(self._close, sb)
        return sb

    async def _close(self, sb):
        sb.close()


# ---------------------------------------------------------------- exec


class ExecTests(SandboxCase):
    async def test_exec_result_fields(self):
        r = await self.sb.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (False, 3, "out\n", "err\n"))
        r = await self.sb.exec(["sh", "-c", "echo foo; echo bar"])
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (True, 0, "foo\nbar\n", ""))

    async def test_exec_decodes_utf8_with_replacement(self):
        r = await self.sb.exec(["printf", "caf\\303\\251 \\377\\376 end"])
        self.assertEqual(r.stdout, "café \ufffd\ufffd end")
        self.assertIsInstance(r.stdout, str)

    async def test_exec_large_command(self):
        # Inspect's self_check test_exec_large_command: 16 arguments of 64 KiB (1 MiB of
        # argv, more than one default frame), and a 100 kB variable besides (the kernel
        # takes at most 128 KiB per string and 2 MiB in all)
        args = [chr(ord("a") + i) * 65536 for i in range(16)]
        r = await self.sb.exec(["sh", "-c", 'n=0; for x in "$@"; do n=$((n + ${#x})); done; echo $# $n ${#BIG}',
                                "sh", *args], env={"BIG": "z" * 100000})
        self.assertEqual((r.returncode, r.stdout), (0, "16 1048576 100000\n"))

    async def test_exec_input_str_and_bytes(self):
        self.assertEqual((await self.sb.exec(["cat"], input="héllo")).stdout, "héllo")
        self.assertEqual((await self.sb.exec(["od", "-An", "-tx1"], input=b"\x00\xff")).stdout.split(), ["00", "ff"])

    async def test_exec_env_and_cwd(self):
        r = await self.sb.exec(["sh", "-c", "echo $FOO-$BAR"], env={"FOO": "1", "BAR": "two words"})
        self.assertEqual(r.stdout, "1-two words\n")
        await self.sb.write_file("sub/dir/f.txt", "x")
        self.assertEqual((await self.sb.exec(["ls"], cwd="sub/dir")).stdout, "f.txt\n")
        self.assertEqual((await self.sb.exec(["pwd"])).stdout.strip(), self.inside_wd)
        self.assertIn("env", (await self.sb.exec(["ls"], cwd="/usr/bin")).stdout.split())
        r = await self.sb.exec(["ls"], cwd="no/such/dir")
        self.assertFalse(r.success)
        self.assertIn("no/such/dir", r.stderr)

    async def test_exec_timeout_raises_and_kills(self):
        with self.assertRaises(TimeoutError):
            await self.sb.exec(["sh", "-c", "echo $$ > pid; exec sleep 30"], timeout=1)
        pid = (await self.sb.read_file("pid")).strip()
        r = await self.sb.exec(["sh", "-c", f"kill -0 {pid} 2>/dev/null && echo alive || echo gone"])
        self.assertEqual(r.stdout, "gone\n")

    async def test_exec_not_executable_is_permission_error(self):
        with self.assertRaises(PermissionError):
            await self.sb.exec(["/etc/passwd"])
        await self.sb.write_file("script.sh", "#!/bin/sh\necho hi\n")
        with self.assertRaises(PermissionError) as e:
            await self.sb.exec(["./script.sh"])
        self.assertIn("script.sh", str(e.exception))
        await self.sb.exec(["chmod", "+x", "script.sh"])
        self.assertEqual((await self.sb.exec(["./script.sh"])).stdout, "hi\n")

    async def test_exec_missing_command_is_127(self):
        r = await self.sb.exec(["no-such-command-sbx"])
        self.assertEqual((r.success, r.returncode), (False, 127))
        self.assertIn("no-such-command-sbx", r.stderr)

    async def test_exec_stdout_over_limit(self):
        size = 10 * MiB + 1024
        with self.assertRaises(contract.OutputLimitExceededError) as e:
            await self.sb.exec(["sh", "-c", f"yes | head -c {size}"])
        self.assertIn("limit of 10 MiB was exceeded", str(e.exception))
        self.assertEqual(len(e.exception.truncated_output), 10 * MiB)
        self.assertTrue(e.exception.truncated_output.startswith("y\ny\n"))

    async def test_exec_stderr_over_limit(self):
        size = 10 * MiB + 1024
        with self.assertRaises(contract.OutputLimitExceededError) as e:
            await self.sb.exec(["sh", "-c", f"echo out; yes | head -c {size} >&2"])
        self.assertEqual(len(e.exception.truncated_output), 10 * MiB + 4)
        self.assertTrue(e.exception.truncated_output.startswith("out\ny\n"))

    async def test_exec_output_at_limit_is_fine(self):
        r = await self.sb.exec(["sh", "-c", f"head -c {10 * MiB} /dev/zero"])
        self.assertEqual(len(r.stdout), 10 * MiB)

    async def test_exec_unknown_user(self):
        r = await self.sb.exec(["whoami"], user="nonexistent")
        self.assertFalse(r.success)
        self.assertIn("unable to find user nonexistent: no matching entries in passwd file", r.stdout)
        self.assertIn("nonexistent", r.stderr)

    async def test_exec_as_user(self):
        if not sbxtest.IS_ROOT:
            self.skipTest("switching users needs the agent to run as root")
        self.assertEqual((await self.sb.exec(["id", "-u"], user="nobody")).stdout, "65534\n")
        self.assertEqual((await self.sb.exec(["id", "-u"], user="root")).stdout, "0\n")

    async def test_exec_rejects_a_string_command(self):
        with self.assertRaises(TypeError):
            await self.sb.exec("echo hi")

    async def test_cancelled_exec_kills_the_command(self):
        task = asyncio.ensure_future(self.sb.exec(["sh", "-c", "echo $$ > pid; exec sleep 300"]))
        await sbxtest.wait_until(lambda: os.path.exists(os.path.join(self.host_wd, "pid")), what="pid file")
        pid = (await self.sb.read_file("pid")).strip()
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task

        async def gone():
            r = await self.sb.exec(["sh", "-c", f"kill -0 {pid} 2>/dev/null || echo gone"])
            return r.stdout == "gone\n"
        await sbxtest.wait_until(gone, what="the cancelled command to end")


# ---------------------------------------------------------------- files


class FileTests(SandboxCase):
    async def test_write_read_text_and_bytes(self):
        for name, content in [("t.txt", "great #content\nincluding newlines"), ("utf.txt", "✨☽︎✨🌞︎︎✨🚀✨"),
                              ("crlf.txt", "a\r\nb\r\n"), ("file with space.txt", "to the moon"), ("zero", "")]:
            await self.sb.write_file(name, content)
            self.assertEqual(await self.sb.read_file(name), content)
        await self.sb.write_file("bin", b"\xc3\x28")
        self.assertEqual(await self.sb.read_file("bin", text=False), b"\xc3\x28")
        big = os.urandom(5_000_000)
        await self.sb.write_file("big", big)
        self.assertEqual(await self.sb.read_file("big", text=False), big)
        await self.sb.write_file("t.txt", "altered")
        self.assertEqual(await self.sb.read_file("t.txt"), "altered")

    async def test_write_creates_parent_directories(self):
        await self.sb.write_file("a/b/c/rel.txt", "relative")
        self.assertEqual(await self.sb.read_file("a/b/c/rel.txt"), "relative")
        await self.sb.write_file(os.path.join(self.inside_wd, "x", "y", "abs.txt"), b"absolute")
        with open(os.path.join(self.host_wd, "x", "y", "abs.txt"), "rb") as f:
            self.assertEqual(f.read(), b"absolute")

    async def test_write_to_a_directory(self):
        await self.sb.write_file("d/file", "unused")
        for content in ("text", b"\xc3\x28"):
            with self.assertRaises(IsADirectoryError) as e:
                await self.sb.write_file("d", content)
            self.assertIn("directory", str(e.exception))
        self.assertEqual(await self.sb.read_file("d/file"), "unused")

    async def test_write_without_permission(self):
        sb = await self.unprivileged()
        await sb.write_file("locked.txt", "impervious")
        await sb.exec(["chmod", "-w", "locked.txt"])
        await sb.exec(["chmod", "-w", "."])
        for content in ("this won't stick", b"\xc3\x28"):
            with self.assertRaises(PermissionError) as e:
                await sb.write_file("locked.txt", content)
            self.assertIn("locked.txt", str(e.exception))
        await sb.exec(["chmod", "+w", "."])
        self.assertEqual(await sb.read_file("locked.txt"), "impervious")

    async def test_read_errors(self):
        with self.assertRaises(FileNotFoundError) as e:
            await self.sb.read_file("nonexistent")
        self.assertIn("nonexistent", str(e.exception))
        with self.assertRaises(FileNotFoundError) as e:
            await self.sb.read_file("https:/en.wikipedia.org/wiki/Bart%C5%82omiej_Kasprzykowski")
        self.assertIn("wikipedia", str(e.exception))
        with self.assertRaises(IsADirectoryError) as e:
            await self.sb.read_file("/etc")
        self.assertIn("directory", str(e.exception))

    async def test_read_text_decodes_strictly(self):
        await self.sb.write_file("bin", b"ok \xff\xfe")
        with self.assertRaises(UnicodeDecodeError):
            await self.sb.read_file("bin", text=True)
        data = await self.sb.read_file("bin", text=False)
        self.assertIsInstance(data, bytes)
        self.assertEqual(data, b"ok \xff\xfe")

    async def test_read_without_permission(self):
        sb = await self.unprivileged()
        await sb.write_file("secret.txt", "inaccessible")
        await sb.exec(["chmod", "-r", "secret.txt"])
        with self.assertRaises(PermissionError) as e:
            await sb.read_file("secret.txt")
        self.assertIn("secret.txt", str(e.exception))

    async def test_read_limit(self):
        await self.sb.write_file("large", "a" * 2048)
        with mock.patch.object(contract.Limits, "MAX_READ_FILE_SIZE", 1024):
            with self.assertRaises(contract.OutputLimitExceededError) as e:
                await self.sb.read_file("large")
        self.assertIn("limit of 100 MiB was exceeded", str(e.exception))
        self.assertIsNone(e.exception.truncated_output)
        # the real default: a sparse file one byte over 100 MiB
        with open(os.path.join(self.host_wd, "huge"), "wb") as f:
            f.truncate(100 * MiB + 1)
        with self.assertRaises(contract.OutputLimitExceededError):
            await self.sb.read_file("huge", text=False)
        with open(os.path.join(self.host_wd, "huge"), "wb") as f:
            f.truncate(100 * MiB)
        self.assertEqual(len(await self.sb.read_file("huge", text=False)), 100 * MiB)


# ---------------------------------------------------------------- exec_remote


class StreamTests(SandboxCase):
    async def test_events_arrive_while_the_command_runs(self):
        proc = await self.sb.exec_remote(["sh", "-c", "echo first; read x; echo second $x; echo e >&2"],
                                         opts(stdin_open=True))
        it = proc.__aiter__()
        first = await asyncio.wait_for(it.__anext__(), 60)  # the command is still blocked in read
        self.assertEqual((first.type, first.data), ("stdout", "first\n"))
        await proc.write_stdin("go\n")
        await proc.close_stdin()
        await proc.close_stdin()  # idempotent
        rest = await drain(it)
        out = "".join(ev.data for ev in rest if ev.type == "stdout")
        err = "".join(ev.data for ev in rest if ev.type == "stderr")
        self.assertEqual((out, err), ("second go\n", "e\n"))
        self.assertEqual(rest[-1].type, "completed")
        self.assertEqual(rest[-1].exit_code, 0)
        self.assertTrue(rest[-1].success)
        with self.assertRaises(RuntimeError):
            await proc.write_stdin("late")
        with self.assertRaises(RuntimeError):
            proc.__aiter__()  # single use

    async def test_input_and_exit_code(self):
        proc = await self.sb.exec_remote(["sh", "-c", "cat; exit 4"], opts(input="in put"))
        evs = [ev async for ev in proc]
        self.assertEqual("".join(e.data for e in evs if e.type == "stdout"), "in put")
        self.assertEqual((evs[-1].type, evs[-1].exit_code, evs[-1].success), ("completed", 4, False))

    async def test_stdin_needs_stdin_open(self):
        proc = await self.sb.exec_remote(["cat"])
        with self.assertRaises(RuntimeError):
            await proc.write_stdin("x")
        with self.assertRaises(RuntimeError):
            await proc.close_stdin()
        self.assertEqual([e.type async for e in proc], ["completed"])

    async def test_kill(self):
        proc = await self.sb.exec_remote(["sh", "-c", "echo $$ > pid; echo started; exec sleep 300"])
        it = proc.__aiter__()
        self.assertEqual((await asyncio.wait_for(it.__anext__(), 60)).data, "started\n")
        await proc.kill()
        await proc.kill()  # no-op
        self.assertEqual(await drain(it), [])  # no ExecCompleted after kill
        pid = (await self.sb.read_file("pid")).strip()
        r = await self.sb.exec(["sh", "-c", f"kill -0 {pid} 2>/dev/null || echo gone"])
        self.assertEqual(r.stdout, "gone\n")

    async def test_cancelled_iteration_kills(self):
        proc = await self.sb.exec_remote(["sh", "-c", "echo $$ > pid; exec sleep 300"])
        await sbxtest.wait_until(lambda: os.path.exists(os.path.join(self.host_wd, "pid")), what="pid file")
        task = asyncio.ensure_future(proc.__aiter__().__anext__())
        await asyncio.sleep(0.05)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        await proc.wait()
        pid = (await self.sb.read_file("pid")).strip()
        r = await self.sb.exec(["sh", "-c", f"kill -0 {pid} 2>/dev/null || echo gone"])
        self.assertEqual(r.stdout, "gone\n")

    async def test_utf8_split_across_chunks(self):
        proc = await self.sb.exec_remote(["sh", "-c", "printf '\\342'; sleep 0.2; printf '\\202\\254\\n'"])
        out = "".join([e.data async for e in proc if e.type == "stdout"])
        self.assertEqual(out, "€\n")

    async def test_awaitable_mode_is_exec(self):
        r = await self.sb.exec_remote(["sh", "-c", "echo a; echo b >&2; exit 2"], opts(), stream=False)
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (False, 2, "a\n", "b\n"))
        with self.assertRaises(TimeoutError):
            await self.sb.exec_remote(["sleep", "30"], opts(timeout=1), stream=False)

    async def test_streaming_has_no_output_limit(self):
        proc = await self.sb.exec_remote(["sh", "-c", f"head -c {11 * MiB} /dev/zero"])
        n = 0
        async for e in proc:
            if e.type == "stdout":
                n += len(e.data)
        self.assertEqual(n, 11 * MiB)


# ---------------------------------------------------------------- concurrency and the loop


class TtyTests(SandboxCase):
    """The pty path through the Python API: SbxSandbox.exec_tty and SbxProcess.resize."""

    async def read_until(self, it, text, got):
        """Appends stdout events to got[0] until text appears in it (or the command ends)."""
        while text not in got[0]:
            ev = await asyncio.wait_for(it.__anext__(), 60)
            if ev.type == "completed":
                return ev
            got[0] += ev.data if ev.type == "stdout" else ""
        return None

    async def test_isatty_size_and_resize(self):
        proc = await self.sb.exec_tty(["sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo is-a-tty; "
                                       "stty size; read x; stty size"], rows=31, cols=97)
        it = proc.__aiter__()
        got = [""]
        self.assertIsNone(await self.read_until(it, "31 97", got), got[0])
        self.assertIn("is-a-tty", got[0])
        self.assertTrue(await proc.resize(40, 120))
        await proc.write_stdin(b"\n")
        rest = await drain(it)
        out = "".join(ev.data for ev in rest if ev.type == "stdout")
        self.assertIn("40 120", out)
        self.assertNotIn("40 120", got[0])
        self.assertEqual((rest[-1].type, rest[-1].exit_code), ("completed", 0))
        self.assertFalse(await proc.resize(10, 10))  # over: nothing to resize

    async def test_winch_reaches_the_command(self):
        proc = await self.sb.exec_tty(["sh", "-c", "trap 'stty size; exit 5' WINCH; echo ready; "
                                       "while :; do sleep 0.05; done"], rows=24, cols=80)
        it = proc.__aiter__()
        got = [""]
        self.assertIsNone(await self.read_until(it, "ready", got), got[0])
        self.assertTrue(await proc.resize(50, 132))
        rest = await drain(it)
        self.assertIn("50 132", "".join(ev.data for ev in rest if ev.type == "stdout"))
        self.assertEqual((rest[-1].type, rest[-1].exit_code), ("completed", 5))

    async def test_ctrl_c_interrupts(self):
        proc = await self.sb.exec_tty(["sh", "-c", "echo ready; exec sleep 300"])
        it = proc.__aiter__()
        got = [""]
        self.assertIsNone(await self.read_until(it, "ready", got), got[0])
        await proc.write_stdin(b"\x03")
        rest = await drain(it)
        self.assertEqual((rest[-1].type, rest[-1].exit_code), ("completed", 130))

    async def test_pipes_are_no_tty(self):
        r = await self.sb.exec(["sh", "-c", "test -t 1 && echo tty || echo pipe"])
        self.assertEqual(r.stdout, "pipe\n")
        proc = await self.sb.exec_remote(["true"])
        with self.assertRaises(RuntimeError):
            await proc.resize(30, 100)  # not a terminal
        with self.assertRaises(ValueError):
            await self.sb.exec_tty(["true"], rows=0)
        await drain(proc.__aiter__())


class ConcurrencyTests(unittest.IsolatedAsyncioTestCase):
    async def test_500_execs_across_50_sandboxes_run_at_once(self):
        """Every command waits until all 500 have started: it only finishes if none queued."""
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        barrier = os.path.join(tmp, "barrier")
        os.mkdir(barrier)
        with mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": tmp}):
            p = LocalProvider()
            conf = cfg.LocalConfig(isolate=False)  # the barrier directory must be shared
            samples = await asyncio.gather(*(p.sample_init("conc", conf, {}) for _ in range(50)))
            try:
                script = (f'touch {barrier}/$0; while [ ! -e {barrier}/go ]; do sleep 0.5; done; echo $0')
                calls = [envs["default"].exec(["sh", "-c", script, f"{i}-{j}"])
                         for i, envs in enumerate(samples) for j in range(10)]
                tasks = [asyncio.ensure_future(c) for c in calls]
                await sbxtest.wait_until(lambda: len(os.listdir(barrier)) >= 500, timeout=240, interval=0.1,
                                         what="all 500 commands running at once")
                open(os.path.join(barrier, "go"), "w").close()
                results = await asyncio.gather(*tasks)
                self.assertEqual(sorted(r.stdout for r in results),
                                 sorted(f"{i}-{j}\n" for i in range(50) for j in range(10)))
                self.assertTrue(all(r.success for r in results))
            finally:
                for envs in samples:
                    await p.sample_cleanup("conc", conf, envs, False)
                shutil.rmtree(tmp, ignore_errors=True)

    async def test_no_thread_per_call(self):
        import threading
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        with mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": tmp}):
            p = LocalProvider()
            envs = await p.sample_init("threads", cfg.LocalConfig(isolate=False), {})
            try:
                before = threading.active_count()
                results = await asyncio.gather(*(envs["default"].exec(["echo", str(i)]) for i in range(100)))
                self.assertEqual([r.stdout for r in results], [f"{i}\n" for i in range(100)])
                self.assertEqual(threading.active_count(), before)
                self.assertEqual(len(os.listdir("/proc/self/task")), 1)
            finally:
                await p.sample_cleanup("threads", None, envs, False)
                shutil.rmtree(tmp, ignore_errors=True)


class IdleRedialTests(unittest.IsolatedAsyncioTestCase):
    """A listening agent's session whose stream drops while no call is pending is
    redialled at once: the driver keeps libsbx's timers armed while a session is open."""

    async def test_idle_session_redialled_without_a_call(self):
        """Relay between session and agent; the relay cuts the session's stream."""
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        agent_sock, relay_sock = os.path.join(tmp, "agent.sock"), os.path.join(tmp, "relay.sock")
        key = os.path.join(tmp, "secret")
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        agent = subprocess.Popen([sbxtest.AGENT, "--listen", agent_sock, "--secret-file", key, "--workdir", tmp],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        accepted, writers = [], []

        async def relay(reader, writer):
            accepted.append(writer)
            up_r, up_w = await asyncio.open_unix_connection(agent_sock)
            writers.extend([writer, up_w])

            async def pipe(r, w):
                try:
                    while data := await r.read(65536):
                        w.write(data)
                        await w.drain()
                except (ConnectionError, OSError):
                    pass
                finally:
                    w.close()

            try:
                await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
            except asyncio.CancelledError:
                pass

        server = await asyncio.start_unix_server(relay, relay_sock)
        try:
            for _ in range(200):
                if os.path.exists(agent_sock):
                    break
                await asyncio.sleep(0.02)
            # No call and no ready(): opening the session is enough for the driver.
            sb = SbxSandbox(_sbx.session_connect(relay_sock, key), workdir=tmp)
            for _ in range(500):
                if sb.session.ready:
                    break
                await asyncio.sleep(0.02)
            self.assertTrue(sb.session.ready, "nothing drove the handshake of a session without calls")
            self.assertEqual(_sbx.inflight(), 0)
            accepted[0].transport.abort()  # cut the idle session's stream; no call follows
            for _ in range(500):
                if len(accepted) >= 2 and sb.session.ready:
                    break
                await asyncio.sleep(0.02)
            self.assertEqual(len(accepted), 2, "the idle session was not redialled")
            self.assertTrue(sb.session.ready)
            self.assertEqual((await sb.exec(["echo", "after"])).stdout, "after\n")
            self.assertEqual(len(accepted), 2)
            sb.close()
        finally:
            server.close()
            for w in writers:
                w.close()
            agent.terminate()
            agent.wait()
            shutil.rmtree(tmp, ignore_errors=True)


class LoopTests(unittest.TestCase):
    def test_driver_moves_between_asyncio_loops(self):
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        try:
            sb = SbxSandbox(_sbx.session_local(tmp, False), workdir=tmp)

            async def one(word):
                await sb.ready()
                return (await sb.exec(["echo", word])).stdout

            self.assertEqual(asyncio.run(one("a")), "a\n")
            self.assertEqual(asyncio.run(one("b")), "b\n")  # a new asyncio loop takes over
            sb.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_second_loop_refused_while_calls_in_flight(self):
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        loop_a = asyncio.new_event_loop()
        try:
            sb = SbxSandbox(_sbx.session_local(tmp, False), workdir=tmp)

            async def start():
                return asyncio.ensure_future(sb.exec(["sleep", "30"]))

            task = loop_a.run_until_complete(start())
            loop_a.run_until_complete(asyncio.sleep(0.05))

            async def other():
                with self.assertRaises(RuntimeError) as e:
                    await sb.exec(["true"])
                return str(e.exception)

            self.assertIn("another asyncio event loop", asyncio.run(other()))
            sb.close()  # fails the sleeping call: its task ends with ConnectionError
            with self.assertRaises(ConnectionError):
                loop_a.run_until_complete(task)
        finally:
            loop_a.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_other_thread_refused_while_calls_in_flight(self):
        import threading
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        try:
            session = _sbx.session_local(tmp, False)
            sb = SbxSandbox(session, workdir=tmp)
            errors = []

            def other_thread():
                try:
                    session.exec(["true"], lambda *r: None)
                except RuntimeError as e:
                    errors.append(str(e))

            async def run():
                await sb.ready()
                task = asyncio.ensure_future(sb.exec(["sleep", "1"]))
                await asyncio.sleep(0.05)
                t = threading.Thread(target=other_thread)
                t.start()
                t.join()
                self.assertEqual((await task).returncode, 0)
            asyncio.run(run())
            self.assertEqual(len(errors), 1)
            self.assertIn("another thread", errors[0])
            sb.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_closed_session_fails_clearly(self):
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        try:
            sb = SbxSandbox(_sbx.session_local(tmp, False), workdir=tmp)
            sb.close()

            async def run():
                with self.assertRaises(ValueError):
                    await sb.exec(["true"])
                with self.assertRaises(ConnectionError):
                    await sb.connection()
            asyncio.run(run())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_agent_that_dies_fails_calls_with_connection_error(self):
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        try:
            sb = SbxSandbox(_sbx.session_command(["sh", "-c", f"exec {sbxtest.AGENT} --stdio"]), workdir=tmp)

            async def run():
                await sb.ready()
                with self.assertRaises(ConnectionError):
                    await sb.exec(["sh", "-c", "kill -9 $PPID; sleep 30"])
            asyncio.run(run())
            sb.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_agent_that_cannot_start(self):
        # refused at once, saying what could not be read (host/core/locate.c), not after a spawn
        with self.assertRaises(_sbx.SbxError) as e:
            _sbx.session_local("/tmp", False, "/nonexistent/sbx-agent")
        self.assertIn("cannot read the agent /nonexistent/sbx-agent", str(e.exception))


    def test_on_done_may_be_an_asyncio_future(self):
        # The driver's hot path: the extension sets the future's result (no Python frame);
        # a future whose await was cancelled first is left alone, with no unraisable
        # InvalidStateError; anything neither callable nor a future is refused before
        # the call starts.
        tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        unraisable = []
        old_hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
        try:
            sb = SbxSandbox(_sbx.session_local(tmp, False), workdir=tmp)

            async def run():
                from inspect_sbx.loop import driver
                await sb.ready()
                fut = driver.attach().create_future()
                sb.session.exec(["sh", "-c", "echo hi; exit 3"], fut)
                driver.arm()
                r = await fut
                self.assertEqual((r[0], r[4], r[8]), (_sbx.OK, 3, b"hi\n"))

                late = driver.attach().create_future()
                call = sb.session.exec(["sleep", "0.2"], late)
                late.cancel()
                await sbxtest.wait_until(lambda: call.done, what="the abandoned call to end")
                self.assertTrue(late.cancelled())

                with self.assertRaises(TypeError):
                    sb.session.exec(["true"], 42)
                self.assertEqual(_sbx.inflight(), 0)
            asyncio.run(run())
            sb.close()
            self.assertEqual([u.exc_value for u in unraisable], [])
        finally:
            sys.unraisablehook = old_hook
            shutil.rmtree(tmp, ignore_errors=True)

# ---------------------------------------------------------------- sbx-local lifecycle


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class LifecycleTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-pytest-")
        os.chmod(self.tmp, 0o711)  # a container's root passes through to its bundle
        self.patch = mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": os.path.join(self.tmp, "state")})
        self.patch.start()

    async def asyncTearDown(self):
        self.patch.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    async def test_services_from_compose_file(self):
        compose = self.write("compose.yaml", "services:\n  web:\n    image: a\n  tools:\n    image: b\n"
                                             "    x-default: true\n  db:\n    image: c\n")
        p = LocalProvider()
        await p.task_init("t", compose)
        with self.assertRaisesRegex(ValueError, "runs image b.*rootfs"):  # no image store here: say so
            await p.sample_init("t", compose, {})
        envs = await p.sample_init("t", {"values": compose, "host": True}, {})
        try:
            self.assertEqual(list(envs), ["tools", "web", "db"])
            dirs = set()
            for name, sb in envs.items():
                r = await sb.exec(["pwd"])
                self.assertTrue(r.stdout.strip().endswith("/" + name))
                dirs.add(r.stdout)
            self.assertEqual(len(dirs), 3)
        finally:
            await p.sample_cleanup("t", compose, envs, False)

    async def test_compose_settings_apply_in_containers(self):
        values = self.write("values.yaml", "services:\n  default:\n    workingDir: /srv/app\n    env:\n"
                                           "      - {name: GREETING, value: hi there}\n"
                                           "    securityContext: {runAsUser: 65534}\n"
                                           "    resources: {limits: {memory: 300Mi}}\n  web:\n    env: []\n")
        p = LocalProvider()
        envs = await p.sample_init("t", values, {})
        try:
            r = await envs["default"].exec(["sh", "-c", "pwd; echo $GREETING; id -u; echo x > /etc/mine"])
            self.assertEqual(r.stdout.split("\n")[:3], ["/srv/app", "hi there", "65534"])
            self.assertNotEqual(r.returncode, 0)  # nobody cannot write /etc
            self.assertEqual((await envs["web"].exec(["id", "-u"])).stdout, "0\n")
            with open(os.path.join(envs["default"].bundle, "config.json")) as f:
                self.assertIn('"limit": 314572800', f.read())
        finally:
            await p.sample_cleanup("t", values, envs, False)

    async def test_values_file_default_named_service_first(self):
        values = self.write("values.yaml", "services:\n  a:\n    image: x\n  default:\n    image: y\n")
        self.assertEqual(cfg.local_config(values).services(), ["default", "a"])
        self.assertEqual(cfg.local_config(None).services(), ["default"])

    async def test_bad_config_files(self):
        p = LocalProvider()
        bad = self.write("bad.yaml", "services:\n  web: [\n")
        with self.assertRaises(ValueError) as e:
            await p.task_init("t", bad)
        self.assertIn("bad.yaml:", str(e.exception))
        self.assertIn("invalid YAML", str(e.exception))
        empty = self.write("empty.yaml", "other: 1\n")
        with self.assertRaises(ValueError) as e:
            await p.sample_init("t", empty, {})
        self.assertIn("no 'services:' mapping", str(e.exception))
        upper = self.write("upper.yaml", "services:\n  Web:\n    image: x\n")
        with self.assertRaisesRegex(ValueError, "service name 'Web'"):
            cfg.local_config(upper).services()
        with self.assertRaisesRegex(ValueError, "cannot open"):
            cfg.local_config(os.path.join(self.tmp, "missing.yaml")).services()
        with self.assertRaisesRegex(ValueError, "unknown field"):
            cfg.local_config({"isolated": True})
        self.assertEqual(sorted(os.listdir(self.tmp)), ["bad.yaml", "empty.yaml", "upper.yaml"])  # no sandbox left

    async def test_sample_cleanup_ends_agents_and_commands(self):
        p = LocalProvider()
        conf = cfg.LocalConfig(isolate=False)
        envs = await p.sample_init("t", conf, {})
        sb = envs["default"]
        proc = await sb.exec_remote(["sh", "-c", "echo $$; exec sleep 300"])
        first = await asyncio.wait_for(proc.__aiter__().__anext__(), 60)
        pid = int(first.data)
        agents = _agents(sb.workdir)
        self.assertEqual(len(agents), 1)
        self.assertTrue(_alive(pid))
        await p.sample_cleanup("t", conf, envs, True)
        await sbxtest.wait_until(lambda: not _alive(pid) and not any(_alive(a) for a in agents),
                                 what="the agent and its command to end")
        self.assertFalse(os.path.exists(sb.workdir))

    async def test_task_cleanup_after_interrupt(self):
        """Ctrl-C: Inspect skips sample cleanups, then calls task_cleanup."""
        p = LocalProvider()
        conf = cfg.LocalConfig(isolate=False)
        mine = [await p.sample_init("task-a", conf, {}) for _ in range(3)]
        other = await p.sample_init("task-b", conf, {})
        agents = [a for envs in mine for a in _agents(envs["default"].workdir)]
        self.assertEqual(len(agents), 3)
        await p.task_cleanup("task-a", conf, True)
        await sbxtest.wait_until(lambda: not any(_alive(a) for a in agents), what="task-a's agents to end")
        self.assertTrue(all(not os.path.exists(e["default"].workdir) for e in mine))
        self.assertEqual((await other["default"].exec(["echo", "ok"])).stdout, "ok\n")
        await p.task_cleanup("task-b", conf, False)  # --no-sandbox-cleanup: files stay
        self.assertTrue(os.path.isdir(other["default"].workdir))

    async def test_cli_cleanup_removes_what_a_dead_run_left(self):
        state = os.environ["SBX_LOCAL_DIR"]
        os.makedirs(state)
        dead = subprocess.Popen(["true"])
        dead.wait()
        left = os.path.join(state, "task-left")
        os.makedirs(os.path.join(left, "default"))
        with open(os.path.join(left, "owner"), "w") as f:
            f.write(f"{dead.pid}\n")
        agent = subprocess.Popen([sbxtest.AGENT, "--stdio", "--workdir", os.path.join(left, "default")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.path.join(left, "default"))
        busy = os.path.join(state, "task-busy")
        os.makedirs(busy)
        with open(os.path.join(busy, "owner"), "w") as f:
            f.write(f"{os.getppid()}\n")  # a live process: a running evaluation
        try:
            await LocalProvider().cli_cleanup(None)
            self.assertEqual(agent.wait(timeout=30), -signal.SIGKILL)
            self.assertFalse(os.path.exists(left))
            self.assertTrue(os.path.exists(busy))
            await LocalProvider().cli_cleanup("task-busy")  # named explicitly: removed
            self.assertFalse(os.path.exists(busy))
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()

    async def test_contained_by_default(self):
        p = LocalProvider()
        envs = await p.sample_init("t", None, {})
        try:
            sb = envs["default"]
            self.assertTrue(sb.isolated)
            r = await sb.exec(["readlink", "/proc/self/ns/net"])
            self.assertNotEqual(r.stdout.strip(), os.readlink("/proc/self/ns/net"))
            r = await sb.exec(["cat", "/proc/self/uid_map"])
            self.assertNotEqual(r.stdout.split()[1], "0")  # root inside is no host root
            await sb.write_file("f", "in the sandbox")
            with open(os.path.join(sb.bundle, "rootfs", "root", "f")) as f:
                self.assertEqual(f.read(), "in the sandbox")
            r = await sb.exec(["sh", "-c", "echo x > /usr/sbx-py-escape"])
            self.assertNotEqual(r.returncode, 0)
            self.assertFalse(os.path.exists("/usr/sbx-py-escape"))
        finally:
            await p.sample_cleanup("t", None, envs, False)
        self.assertFalse(os.path.exists(sb.bundle))

    async def test_connection_gives_a_working_shell(self):
        for host in (True, False):
            p = LocalProvider()
            conf = cfg.LocalConfig(host=host)
            envs = await p.sample_init("t", conf, {})
            try:
                sb = envs["default"]
                conn = await sb.connection()
                self.assertEqual(conn.type, "local")
                # the contained one is a terminal command (`exec -t`): give it a pty
                argv = ["sh", "-c", conn.command] if host else ["script", "-qec", conn.command, "/dev/null"]
                out = await asyncio.to_thread(
                    subprocess.run, argv, input="pwd; readlink /proc/self/ns/net; exit\n",
                    capture_output=True, text=True, timeout=60, env=dict(os.environ, SHELL="/bin/sh"))
                want_wd = os.path.realpath(sb.workdir) if host else "/root"
                want_net = (await sb.exec(["readlink", "/proc/self/ns/net"])).stdout.strip()
                self.assertIn(want_wd, out.stdout.split(), out.stdout + out.stderr)
                self.assertIn(want_net, out.stdout.split(), out.stdout + out.stderr)
                if not host:  # sbx shell first, the runtime's exec as the alternative
                    shell, _, alt = conn.command.partition("  # or: ")
                    self.assertRegex(shell, r" shell i-[a-z0-9_-]+/default$")
                    self.assertIn(" exec -t --cwd /root ", alt)
                    name = shell.split()[-1].split("/")[0]
                    self.assertTrue(clistate.registered(name))
                    r = await asyncio.to_thread(subprocess.run, shlex.split(shell),
                                                input="readlink /proc/self/ns/net; exit 3\n", capture_output=True,
                                                text=True, timeout=60)
                    self.assertEqual((r.returncode, r.stdout.split()), (3, [want_net]), r.stderr)
            finally:
                await p.sample_cleanup("t", conf, envs, False)
            if not host:
                self.assertFalse(clistate.registered(name))


def _agents(workdir):
    from inspect_sbx.provider import _agents_in
    return _agents_in(workdir)


# ---------------------------------------------------------------- k8s


class RemoteConfigTests(unittest.IsolatedAsyncioTestCase):
    async def test_k8s_config(self):
        self.assertEqual(cfg.k8s_config("values.yaml").values, "values.yaml")
        c = cfg.k8s_config({"chart": "c", "values": "v.yaml", "context": "kind", "default_user": "agent",
                            "restarted_container_behavior": "raise"})
        self.assertEqual((c.chart, c.context, c.default_user, c.restarted_container_behavior),
                         ("c", "kind", "agent", "raise"))
        with self.assertRaisesRegex(ValueError, "restarted_container_behavior"):
            cfg.k8s_config({"restarted_container_behavior": "ignore"})
        with self.assertRaisesRegex(ValueError, "unknown field.*namespace"):
            cfg.k8s_config({"namespace": "x"})

    async def test_k8s_checks_its_file_at_task_init(self):
        # (sandboxes on the emulator: tests/python/test_inspect_k8s.py)
        p = K8sProvider()
        await p.task_init("t", None)  # the chart's default values: nothing to check
        with self.assertRaisesRegex(ValueError, "sbx-k8s: the values file /no/such/values.yaml does not exist"):
            await p.task_init("t", "/no/such/values.yaml")


# ---------------------------------------------------------------- packaging


class PackagingTests(unittest.TestCase):
    def test_pip_install_offline(self):
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            self.skipTest("pip is not installed for this Python")
        target = tempfile.mkdtemp(prefix="sbx-pip-")
        try:
            env = dict(os.environ, SBX_LIBSBX=os.path.join(sbxtest.ROOT, sbxtest.BUILD, "libsbx.a"),
                       SBX_AGENT_BUILD=os.path.join(sbxtest.ROOT, sbxtest.BUILD),
                       PIP_NO_INDEX="1", PIP_FIND_LINKS="", PIP_DISABLE_PIP_VERSION_CHECK="1")
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                "--no-deps", "--target", target, os.path.join(sbxtest.ROOT, "host", "python")],
                               capture_output=True, text=True, env=env, timeout=240)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            check = (
                "import asyncio, os, sys, tempfile\n"
                "import inspect_sbx\n"
                "assert inspect_sbx.__file__.startswith(sys.argv[1]), inspect_sbx.__file__\n"
                "from importlib.metadata import entry_points\n"
                "eps = [e for e in entry_points(group='inspect_ai') if e.name == 'inspect_sbx']\n"
                "assert eps and eps[0].value == 'inspect_sbx._registry', eps\n"
                "from inspect_sbx import LocalProvider\n"
                "async def main():\n"
                "    p = LocalProvider()\n"
                "    envs = await p.sample_init('pip', {'isolate': False}, {})\n"
                "    print((await envs['default'].exec(['echo', 'installed'])).stdout, end='')\n"
                "    await p.sample_cleanup('pip', None, envs, False)\n"
                "asyncio.run(main())\n")
            env2 = dict(os.environ, PYTHONPATH=target, SBX_LOCAL_DIR=target)
            r = subprocess.run([sys.executable, "-c", check, target], capture_output=True, text=True, env=env2,
                               timeout=120, cwd="/")
            self.assertEqual((r.returncode, r.stdout), (0, "installed\n"), r.stderr[-2000:])
        finally:
            shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    sbxtest.main()
