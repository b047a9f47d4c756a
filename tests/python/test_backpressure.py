#!/usr/bin/env python3
"""Streaming backpressure in inspect_sbx: a sandbox that floods stdout cannot grow the
host's memory while the caller does not read (issue 18). exec_remote(stream=True) grants
the agent credit only as the iterator hands events to the caller, so the command blocks
on its pipe instead of the host queueing its output.

    python3 tests/python/test_backpressure.py [SUBSTRING]
"""
import asyncio
import os
import shutil
import tempfile
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()

from inspect_sbx.provider import LocalProvider  # noqa: E402

MB = 1000 * 1000
FLOOD = 200 * MB            # bytes the command writes
RSS_BOUND = 50 * MB         # host RSS growth allowed while the caller does not read
PAUSE_S = 4                 # how long the caller does not read
TAIL_LINES = 100000         # numbered lines after the flood: checks the order


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class BackpressureTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-bp-")
        self.env_patch = mock.patch.dict(os.environ, {"SBX_LOCAL_DIR": self.tmp})
        self.env_patch.start()
        self.provider = LocalProvider()
        await self.provider.task_init("bp", None)
        self.envs = await self.provider.sample_init("bp", None, {})
        self.sb = self.envs["default"]

    async def asyncTearDown(self):
        await self.provider.sample_cleanup("bp", None, self.envs, False)
        await self.provider.task_cleanup("bp", None, True)
        self.env_patch.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def test_flood_unread_keeps_host_rss_bounded(self):
        script = f"head -c {FLOOD} /dev/zero; seq 1 {TAIL_LINES}; echo done >&2"
        before = rss_bytes()
        proc = await self.sb.exec_remote(["sh", "-c", script])
        peak = before
        for _ in range(PAUSE_S * 10):  # the caller does not read; libsbx's loop keeps running
            await asyncio.sleep(0.1)
            peak = max(peak, rss_bytes())
        growth = peak - before
        self.assertLess(growth, RSS_BOUND, f"host RSS grew {growth / MB:.1f} MB while nobody read")
        self.assertFalse(proc._call.done, "the command finished unread: the agent did not stop at the window")
        zeros, text, err, completed = 0, [], [], None
        async for ev in proc:
            name = type(ev).__name__
            if name == "ExecStdout":
                if zeros < FLOOD:
                    head = ev.data[:FLOOD - zeros]
                    self.assertEqual(head.count("\0"), len(head), "flood bytes out of order")
                    zeros += len(head)
                    text.append(ev.data[len(head):])
                else:
                    text.append(ev.data)
            elif name == "ExecStderr":
                err.append(ev.data)
            else:
                completed = ev
        self.assertEqual(zeros, FLOOD)
        want = "".join(f"{i}\n" for i in range(1, TAIL_LINES + 1))
        self.assertTrue("".join(text) == want, "the numbered lines after the flood are not all there in order")
        self.assertEqual("".join(err), "done\n")
        self.assertEqual(getattr(completed, "exit_code", None), 0)
        print(f"# rss growth while unread: {growth / MB:.1f} MB (bound {RSS_BOUND / MB:.0f} MB)", flush=True)

    async def test_slow_reader_gets_everything_in_order(self):
        proc = await self.sb.exec_remote(["seq", "1", "300000"])
        got = []
        n = 0
        async for ev in proc:
            if type(ev).__name__ == "ExecStdout":
                got.append(ev.data)
                n += 1
                if n % 8 == 0:  # a caller slower than the agent
                    await asyncio.sleep(0.01)
        self.assertTrue("".join(got) == "".join(f"{i}\n" for i in range(1, 300001)))


if __name__ == "__main__":
    sbxtest.main()
