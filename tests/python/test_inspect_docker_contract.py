#!/usr/bin/env python3
"""Inspect's sandbox contract on sbx-docker: the exec, file and streaming tests that
test_inspect_sbx.py runs on sbx-local (ExecTests, FileTests, StreamTests), run unchanged
against a sample of the sbx-docker provider on a real dockerd (tests/docker/start-engine.sh).
The image, sbx-test/contract, is built first by sbx itself (a `build:` service: POST
/build) FROM the offline busybox image (tests/docker/image.sh) with what the tests expect
of a Linux image: a nobody user, /usr/bin/env, a working directory. The tests that look at
the sandbox's files from the host side get the container's root through /proc/PID/root.
Skipped, saying why, where no engine can run (SBX_REQUIRE_DOCKER=1: failure).

    python3 tests/python/test_inspect_docker_contract.py [SUBSTRING]
"""
import asyncio
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()

import test_inspect_docker as td  # noqa: E402
import test_inspect_sbx as local  # noqa: E402
from inspect_sbx.docker import DockerProvider  # noqa: E402

READY = None
IMAGE = "sbx-test/contract"
DOCKERFILE = f"""FROM {td.IMAGE}
RUN echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >> /etc/passwd && \\
    echo 'nogroup:x:65534:' >> /etc/group && mkdir -p /usr/bin /work && \\
    ln -s /bin/busybox /usr/bin/env
WORKDIR /work
"""


def agent_path() -> str:
    return sbxtest.AGENT if td._static(sbxtest.AGENT) else os.path.join(sbxtest.ROOT, "build", "sbx-agent")


async def build_image() -> None:
    """sbx-test/contract, built through sbx-docker (a named build stays after cleanup)."""
    tmp = tempfile.mkdtemp(prefix="sbx-docker-contract-build-")
    with open(os.path.join(tmp, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(tmp, "compose.yaml"), "w") as f:
        f.write(f"services:\n  default:\n    image: {IMAGE}\n    build: .\n")
    with mock.patch.dict(os.environ, {"SBX_DOCKER_DIR": os.path.join(tmp, "state")}):
        p = DockerProvider()
        config = {"compose": os.path.join(tmp, "compose.yaml"), "agent": agent_path()}
        envs = await p.sample_init("build", config, {})
        await p.sample_cleanup("build", config, envs, False)
    shutil.rmtree(tmp, ignore_errors=True)


class DockerSample:
    """SandboxCase's set-up with a sbx-docker sample in place of a sbx-local one."""

    async def asyncSetUp(self):
        if READY:
            self.skipTest(READY)
        agent = agent_path()
        if not td._static(agent):
            self.skipTest("no static agent (a SAN build's is not; build/sbx-agent is missing)")
        self.tmp = tempfile.mkdtemp(prefix="sbx-docker-contract-")
        self.env_patch = mock.patch.dict(os.environ, {"SBX_DOCKER_DIR": os.path.join(self.tmp, "state")})
        self.env_patch.start()
        self.config = {"image": IMAGE, "agent": agent}
        self.provider = DockerProvider()
        await self.provider.task_init("pytest", self.config)
        self.envs = await self.provider.sample_init("pytest", self.config, {})
        self.sb = self.envs["default"]
        r = await self.sb.exec(["pwd"])
        self.inside_wd = r.stdout.strip()
        pid = td._run(["docker", "inspect", "-f", "{{.State.Pid}}", self.sb.container]).stdout.strip()
        self.host_wd = f"/proc/{pid}/root{self.inside_wd}"  # the container's files, seen from the host

    async def asyncTearDown(self):
        if getattr(self, "provider", None) is None or not hasattr(self, "envs"):
            return
        await self.provider.sample_cleanup("pytest", self.config, self.envs, False)
        await self.provider.task_cleanup("pytest", self.config, True)
        self.env_patch.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class DockerExecTests(DockerSample, local.ExecTests):
    pass


class DockerFileTests(DockerSample, local.FileTests):
    pass


class DockerStreamTests(DockerSample, local.StreamTests):
    pass


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for cls in (DockerExecTests, DockerFileTests, DockerStreamTests):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    READY = td._engine()
    if not READY and td._static(agent_path()):
        try:
            asyncio.run(build_image())
        except RuntimeError as e:
            print(f"FAIL docker_contract_build: {e}")
            sys.exit(1)
    if READY and os.environ.get("SBX_REQUIRE_DOCKER") == "1":
        print(f"FAIL docker_engine: {READY}")
        sys.exit(1)
    sbxtest.main()
