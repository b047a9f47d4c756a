#!/usr/bin/env python3
"""Tests of inspect_sbx._registry, the module Inspect loads through the `inspect_ai`
entry point, against a stand-in of inspect_ai.util (tests/python/standin/) written from
Inspect's documented interface: registration by name, signatures that match Inspect's,
and the contract seen through Inspect's own classes (ExecResult,
OutputLimitExceededError, SandboxEnvironmentLimits, SandboxConnection, exec_remote
events). One line per test.

    python3 tests/python/test_inspect_registry.py [SUBSTRING]
"""
import asyncio
import importlib
import inspect
import os
import shutil
import sys
import tempfile
import tomllib
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()
sys.path.insert(0, os.path.join(sbxtest.HERE, "standin"))

from inspect_ai import util as iu  # noqa: E402  (the stand-in)


def entry_point_module() -> str:
    with open(os.path.join(sbxtest.ROOT, "host", "python", "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["entry-points"]["inspect_ai"]["inspect_sbx"]


registry = importlib.import_module(entry_point_module())  # what Inspect's entry-point loading does


class RegistrationTests(unittest.TestCase):
    def test_types_registered_by_name(self):
        for name, cls in [("sbx-local", registry.SbxLocalSandboxEnvironment),
                          ("sbx-k8s", registry.SbxK8sSandboxEnvironment),
                          ("sbx-ec2", registry.SbxEc2SandboxEnvironment),
                          ("sbx-docker", registry.SbxDockerSandboxEnvironment)]:
            self.assertIs(iu.registry_find_sandboxenv(name), cls)
            self.assertTrue(issubclass(cls, iu.SandboxEnvironment))
            self.assertFalse(inspect.isabstract(cls), f"{name} leaves abstract methods")

    def test_signatures_match_inspect(self):
        cls = registry.SbxLocalSandboxEnvironment
        for meth in ["exec", "write_file", "read_file", "exec_remote", "connection", "task_init", "sample_init",
                     "sample_cleanup", "task_cleanup", "cli_cleanup", "config_files", "config_deserialize",
                     "default_concurrency"]:
            base = inspect.signature(getattr(iu.SandboxEnvironment, meth))
            ours = inspect.signature(getattr(cls, meth))
            for pname, p in base.parameters.items():
                self.assertIn(pname, ours.parameters, f"{meth} lacks parameter {pname}")
                self.assertEqual(ours.parameters[pname].kind, p.kind, f"{meth}({pname}) kind")
                self.assertEqual(ours.parameters[pname].default, p.default, f"{meth}({pname}) default")
            self.assertEqual(inspect.iscoroutinefunction(getattr(cls, meth)),
                             inspect.iscoroutinefunction(getattr(iu.SandboxEnvironment, meth)), meth)

    def test_config(self):
        cls = registry.SbxLocalSandboxEnvironment
        self.assertIn("compose.yaml", cls.config_files())
        self.assertIsNone(cls.default_concurrency())
        self.assertTrue(cls.config_deserialize({"isolate": False}).isolate is False)
        k8s = registry.SbxK8sSandboxEnvironment.config_deserialize({"chart": "c", "context": "kind"})
        self.assertEqual((k8s.chart, k8s.context), ("c", "kind"))
        ec2 = registry.SbxEc2SandboxEnvironment.config_deserialize({"region": "us-east-1"})
        self.assertEqual(ec2.region, "us-east-1")
        self.assertIn("values.yaml", registry.SbxK8sSandboxEnvironment.config_files())


class ContractThroughInspect(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-pyreg-")
        self.patch = mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": self.tmp})
        self.patch.start()
        self.cls = iu.registry_find_sandboxenv("sbx-local")
        await self.cls.task_init("reg", None)
        self.envs = await self.cls.sample_init("reg", None, {})
        self.sb = self.envs["default"]

    async def asyncTearDown(self):
        await self.cls.sample_cleanup("reg", None, self.envs, False)
        await self.cls.task_cleanup("reg", None, True)
        self.patch.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def test_sample_init_gives_environments(self):
        self.assertEqual(list(self.envs), ["default"])
        self.assertIsInstance(self.sb, self.cls)

    async def test_exec_uses_inspect_classes(self):
        r = await self.sb.exec(["sh", "-c", "echo foo; printf '\\377' >&2; exit 1"])
        self.assertIs(type(r), iu.ExecResult)
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (False, 1, "foo\n", "\ufffd"))
        with self.assertRaises(TimeoutError):
            await self.sb.exec(["sleep", "4"], timeout=1)
        with self.assertRaises(PermissionError):
            await self.sb.exec(["/etc/passwd"])
        r = await self.sb.exec(["whoami"], user="nonexistent")
        self.assertFalse(r.success)
        self.assertIn("unable to find user nonexistent: no matching entries in passwd file", r.stdout)

    async def test_output_limit_is_inspects_error(self):
        with self.assertRaises(iu.OutputLimitExceededError) as e:
            await self.sb.exec(["sh", "-c", f"yes | head -c {10 * 1024**2 + 1024}"])
        self.assertIn("limit of 10 MiB was exceeded", str(e.exception))
        self.assertEqual(len(e.exception.truncated_output), 10 * 1024**2)

    async def test_files_and_patched_read_limit(self):
        await self.sb.write_file("d/file.txt", "great #content\nincluding newlines")
        self.assertEqual(await self.sb.read_file("d/file.txt"), "great #content\nincluding newlines")
        await self.sb.write_file("bin", b"\xc3\x28")
        self.assertEqual(await self.sb.read_file("bin", text=False), b"\xc3\x28")
        with self.assertRaises(IsADirectoryError):
            await self.sb.write_file("d", "x")
        with self.assertRaises(FileNotFoundError):
            await self.sb.read_file("nonexistent")
        await self.sb.write_file("large.file", "a" * 2048)
        with mock.patch.object(iu.SandboxEnvironmentLimits, "MAX_READ_FILE_SIZE", 1024):
            with self.assertRaises(iu.OutputLimitExceededError) as e:
                await self.sb.read_file("large.file", text=True)
        self.assertIn("limit of 100 MiB was exceeded", str(e.exception))
        self.assertEqual(len(await self.sb.read_file("large.file")), 2048)

    async def test_exec_remote_streams_inspect_events(self):
        proc = await self.sb.exec_remote(["sh", "-c", "echo out; cat >&2"],
                                         iu.ExecRemoteStreamingOptions(stdin_open=True))
        await proc.write_stdin(b"from stdin")
        await proc.close_stdin()
        events = [e async for e in proc]
        self.assertEqual([type(e) for e in events], [iu.ExecStdout, iu.ExecStderr, iu.ExecCompleted])
        self.assertEqual([getattr(e, "data", None) for e in events[:2]], ["out\n", "from stdin"])
        self.assertTrue(events[-1].success)
        r = await self.sb.exec_remote(["sh", "-c", "echo done"], iu.ExecRemoteAwaitableOptions(timeout=30),
                                      stream=False)
        self.assertIs(type(r), iu.ExecResult)
        self.assertEqual(r.stdout, "done\n")

    async def test_connection_is_inspects_model(self):
        conn = await self.sb.connection()
        self.assertIsInstance(conn, iu.SandboxConnection)
        self.assertEqual(conn.type, "local")
        self.assertIn(os.path.join(self.sb.sbx.bundle, "state"), conn.command)  # the runtime's exec into its box

    async def test_concurrent_calls(self):
        results = await asyncio.gather(*(self.sb.exec(["echo", str(i)]) for i in range(64)))
        self.assertEqual([r.stdout for r in results], [f"{i}\n" for i in range(64)])


class RemoteTypesThroughInspect(unittest.IsolatedAsyncioTestCase):
    async def test_ec2_names_missing_settings(self):
        cls = iu.registry_find_sandboxenv("sbx-ec2")
        with mock.patch.dict(os.environ, {k: v for k, v in os.environ.items()
                                          if not k.startswith("INSPECT_EC2_SANDBOX_")}, clear=True):
            with self.assertRaisesRegex(ValueError, "INSPECT_EC2_SANDBOX_VPC_ID"):
                await cls.task_init("t", None)

    async def test_k8s_checks_its_config_through_inspect(self):
        # (sandboxes on the emulator: tests/python/test_inspect_k8s.py)
        cls = iu.registry_find_sandboxenv("sbx-k8s")
        await cls.task_init("t", None)
        with self.assertRaisesRegex(ValueError, "values file /no/such/values.yaml does not exist"):
            await cls.task_init("t", "/no/such/values.yaml")
        with self.assertRaisesRegex(ValueError, "restarted_container_behavior"):
            cls.config_deserialize({"restarted_container_behavior": "ignore"})


if __name__ == "__main__":
    sbxtest.main()
