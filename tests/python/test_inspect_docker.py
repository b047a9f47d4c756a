#!/usr/bin/env python3
"""Tests of inspect_sbx's sbx-docker provider against a real dockerd (started by
tests/docker/start-engine.sh when none runs) and the offline image of tests/docker/image.sh:
sample_init makes one container per compose service and reaches each agent; exec and files
follow Inspect's contract; sample_cleanup, task_cleanup and cli_cleanup remove containers
and directories; a missing image fails clearly and leaves nothing. Skipped, saying why,
where no engine can run (with SBX_REQUIRE_DOCKER=1 that is a failure). One line per test.

    python3 tests/python/test_inspect_docker.py [SUBSTRING]
"""
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()

from inspect_sbx import clistate, docker as sbx_docker  # noqa: E402
from inspect_sbx.docker import DockerProvider  # noqa: E402

IMAGE = "sbx-test/busybox"
DOCKER_READY = None


# Tools run without the sanitizer runtimes sbxtest preloads under SAN=1 (Go's docker
# client hangs with libasan preloaded).
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=CLEAN_ENV, timeout=120)


def _static(path: str) -> bool:
    out = _run(["file", "-L", path]).stdout
    return "statically linked" in out or "static-pie linked" in out


def _engine() -> str | None:
    """None when the engine and image are ready, else why not."""
    here = os.path.join(sbxtest.ROOT, "tests", "docker")
    for script in ("start-engine.sh", "image.sh"):
        r = _run(["bash", os.path.join(here, script)])
        if r.returncode != 0:
            return f"{script}: {(r.stderr or r.stdout).strip().splitlines()[-1:] or ['failed']}"
    return None


def containers(name: str) -> list[str]:
    return _run(["docker", "ps", "-aq", "--filter", f"label=sbx.sandbox={name}"]).stdout.split()


class DockerCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        if DOCKER_READY:
            self.skipTest(DOCKER_READY)
        self.agent = sbxtest.AGENT if _static(sbxtest.AGENT) else os.path.join(sbxtest.ROOT, "build", "sbx-agent")
        if not _static(self.agent):
            self.skipTest(f"no static agent ({sbxtest.AGENT} is a SAN build's and build/sbx-agent is missing)")
        self.tmp = tempfile.mkdtemp(prefix="sbx-docker-py-")
        self.env = mock.patch.dict(os.environ, {"SBX_DOCKER_DIR": os.path.join(self.tmp, "state"),
                                                 "SBX_STATE_DIR": os.path.join(self.tmp, "cli-state")})
        self.env.start()
        self.provider = DockerProvider()

    async def asyncTearDown(self):
        if DOCKER_READY:
            return
        await self.provider.task_cleanup("dtask", None, True)
        self.env.stop()
        _run(["rm", "-rf", self.tmp])

    def compose(self, text: str) -> str:
        d = tempfile.mkdtemp(dir=self.tmp)
        path = os.path.join(d, "compose.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    async def test_sample_lifecycle_exec_and_files(self):
        path = self.compose(f"""services:
  web:
    image: {IMAGE}
    command: ["sleep", "1000000"]
  default:
    image: {IMAGE}
    environment: {{GREETING: hi}}
    working_dir: /home/user
    user: "1000"
""")
        config = {"compose": path, "agent": self.agent}
        await self.provider.task_init("dtask", config)
        envs = await self.provider.sample_init("dtask", config, {})
        self.assertEqual(list(envs), ["default", "web"])
        sb = envs["default"]
        name = os.path.basename(sb.sample_dir)
        self.assertRegex(name, r"^inspect-dtask-i[0-9a-f]{6}$")
        self.assertEqual(len(containers(name)), 2)
        r = await sb.exec(["sh", "-c", "echo $GREETING; pwd; id -u; echo err >&2; exit 4"])
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (False, 4, "hi\n/home/user\n1000\n", "err\n"))
        r = await envs["web"].exec(["cat", "/proc/1/cmdline"])
        self.assertEqual(r.stdout, "sleep\x001000000\x00")
        await sb.write_file("sub/f.bin", b"\x00\xffdata" * 1000)
        self.assertEqual(await sb.read_file("/home/user/sub/f.bin", text=False), b"\x00\xffdata" * 1000)
        with self.assertRaises(FileNotFoundError):
            await sb.read_file("missing.txt")
        with self.assertRaises(TimeoutError):
            await sb.exec(["sleep", "30"], timeout=1)
        conn = await sb.connection() if asyncio.iscoroutinefunction(sb.connection) else sb.connection()
        shell, _, alt = conn.command.partition("  # or: ")
        self.assertTrue(alt.startswith(f"docker exec -it sbx-{name}-default "), alt)  # the anchor's form
        self.assertTrue(shell.endswith(f" shell {name}/default"), shell)
        self.assertEqual(conn.vscode_command, ["remote-containers.attachToRunningContainer", f"sbx-{name}-default"])
        r = subprocess.run(shlex.split(shell), input="echo via-sbx-shell $(id -u); exit 3\n", capture_output=True,
                           text=True, timeout=60)  # the command works as given
        self.assertEqual((r.returncode, r.stdout.strip()), (3, "via-sbx-shell 1000"), r.stderr)
        self.assertIn(" -u root  # or: docker exec -it --user root ", (await sb.connection(user="root")).command)
        await self.provider.sample_cleanup("dtask", config, envs, False)
        self.assertEqual(containers(name), [])
        self.assertFalse(os.path.exists(sb.sample_dir))
        self.assertFalse(clistate.registered(name))

    async def test_image_config_and_task_cleanup(self):
        config = {"image": IMAGE, "agent": self.agent}
        samples = await asyncio.gather(*(self.provider.sample_init("dtask", config, {}) for _ in range(3)))
        names = [os.path.basename(s["default"].sample_dir) for s in samples]
        r = await asyncio.gather(*(s["default"].exec(["echo", str(i)]) for i, s in enumerate(samples)))
        self.assertEqual([x.stdout for x in r], ["0\n", "1\n", "2\n"])
        await self.provider.task_cleanup("dtask", config, cleanup=True)
        self.assertEqual([containers(n) for n in names], [[], [], []])

    async def test_missing_image_is_clear_and_leaves_nothing(self):
        path = self.compose(f"services:\n  default:\n    image: {IMAGE}\n  db:\n    image: sbx-test/none:1\n")
        with self.assertRaises(RuntimeError) as e:
            await self.provider.sample_init("dtask", {"compose": path, "agent": self.agent}, {})
        self.assertIn("cannot pull image sbx-test/none:1", str(e.exception))
        self.assertIn("no registry gave it", str(e.exception))
        self.assertEqual(os.listdir(os.environ["SBX_DOCKER_DIR"]), [])
        labels = _run(["docker", "ps", "-a", "--filter", "label=sbx.sandbox", "--format",
                       '{{.Label "sbx.sandbox"}}']).stdout.split()
        self.assertEqual([n for n in labels if n.startswith("inspect-dtask-")], [])

    async def test_cli_cleanup_removes_a_dead_owners_sample(self):
        envs = await self.provider.sample_init("dtask", {"image": IMAGE, "agent": self.agent}, {})
        d = envs["default"].sample_dir
        name = os.path.basename(d)
        for s in envs.values():
            s.close()
        self.provider._samples.clear()  # as if this process had been killed ...
        with open(os.path.join(d, "owner"), "w") as f:
            f.write("999999\n")  # ... and its pid were gone
        await DockerProvider().cli_cleanup(None)
        self.assertEqual(containers(name), [])
        self.assertFalse(os.path.exists(d))

    async def test_dockerfile_config_is_built_with_inspects_defaults(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(f"FROM {IMAGE}\nCOPY in.txt /in.txt\nRUN echo built > /built\n")
        with open(os.path.join(d, "in.txt"), "w") as f:
            f.write("from the context\n")
        config = os.path.join(d, "Dockerfile")
        envs = await self.provider.sample_init("dtask", {"compose": config, "agent": self.agent}, {})
        self.assertEqual(list(envs), ["default"])
        sb = envs["default"]
        name = os.path.basename(sb.sample_dir)
        r = await sb.exec(["sh", "-c", "cat /in.txt /built; tr '\\0' ' ' < /proc/1/cmdline; echo;"
                           "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"])
        self.assertEqual(r.stdout, "from the context\nbuilt\n/sbin/docker-init -- /.sbx/sbx-agent --idle \nlo\n")
        image = f"sbx-{name}-default:latest"
        self.assertEqual(_run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).returncode, 0)
        await self.provider.sample_cleanup("dtask", config, envs, False)
        self.assertNotEqual(_run(["docker", "image", "inspect", image]).returncode, 0)  # what sbx built goes

    async def test_cli_cleanup_finds_a_sample_whose_directory_is_gone(self):
        envs = await self.provider.sample_init("dtask", {"image": IMAGE, "agent": self.agent}, {})
        d = envs["default"].sample_dir
        name = os.path.basename(d)
        for s in envs.values():
            s.close()
        self.provider._samples.clear()
        _run(["rm", "-rf", d])  # the directory is lost; the containers carry sbx.owner
        self.assertEqual(len(containers(name)), 1)
        await DockerProvider().cli_cleanup(None)
        self.assertEqual(containers(name), [])

    async def test_restarted_container_gets_its_agent_back(self):
        config = {"image": IMAGE, "agent": self.agent, "restarted_container_behavior": "raise"}
        envs = await self.provider.sample_init("dtask", config, {})
        sb = envs["default"]
        await sb.exec(["sh", "-c", "echo kept > /tmp/f"])
        self.assertEqual(_run(["docker", "restart", "-t", "1", sb.container]).returncode, 0)
        with self.assertRaises(sbx_docker.RestartedContainerError) as e:
            await sb.exec(["true"])
        self.assertIn("Docker restarted the container of sandbox default", str(e.exception))
        r = await sb.exec(["cat", "/tmp/f"])  # files survive a restart; the agent answers again
        self.assertEqual((r.stdout, sb.restarts), ("kept\n", 1))
        await self.provider.sample_cleanup("dtask", config, envs, False)

    def test_config(self):
        self.assertEqual(sbx_docker.docker_config("/x/Dockerfile").services(), ["default"])
        with self.assertRaises(ValueError):
            sbx_docker.docker_config({"compose": "c.yaml", "image": "x"})
        with self.assertRaises(ValueError):
            sbx_docker.docker_config({"bogus": 1})
        self.assertEqual(sbx_docker.docker_config(None).services(), ["default"])


if __name__ == "__main__":
    DOCKER_READY = _engine()
    if DOCKER_READY and os.environ.get("SBX_REQUIRE_DOCKER") == "1":
        print(f"FAIL docker_engine: {DOCKER_READY}")
        sys.exit(1)
    sbxtest.main()
