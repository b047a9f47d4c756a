#!/usr/bin/env python3
"""Durable writes (issue 18): the agent fsyncs a written file before the rename that makes
it visible and the directory after it, before it reports the write done; durable=False
(the WRITE's `fsync: false`) skips both; a writer killed between the data and the rename
leaves the old file unchanged. Checked by running the agent under strace (its syscalls
in order; strace's fault injection kills it exactly at the rename).

    python3 tests/python/test_durable.py [SUBSTRING]
"""
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import sbxtest

sbxtest.setup_path()

from inspect_sbx import _sbx  # noqa: E402
from inspect_sbx.sandbox import SbxSandbox  # noqa: E402

TRACED = "trace=openat,fsync,fdatasync,rename,renameat,renameat2"


def have_strace() -> bool:
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True).returncode == 0


class DurableTests(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        if not have_strace():
            self.skipTest("strace is missing or cannot trace here")
        self.tmp = tempfile.mkdtemp(prefix="sbx-durable-")
        self.wd = os.path.join(self.tmp, "wd")
        os.mkdir(self.wd)
        self.log = os.path.join(self.tmp, "strace.log")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def agent(self, *strace_args):
        argv = ["strace", "-qq", "-o", self.log, "-e", TRACED, *strace_args,
                sbxtest.AGENT, "--stdio", "--workdir", self.wd]
        sb = SbxSandbox(_sbx.session_command(argv), name="traced", workdir=self.wd)
        await sb.ready()
        return sb

    async def syscalls(self, sb):
        """The agent's traced syscalls, once it has exited (strace has written them all)."""
        sb.close()
        for _ in range(100):
            await asyncio.sleep(0.05)
            with open(self.log) as f:
                text = f.read()
            if "+++" in text or "exited" in text or "killed" in text:
                break
        return text.splitlines()

    def order(self, lines, name):
        """Indexes in lines of: the temp file's fsync, the rename onto name, the directory's
        fsync (None for what is missing)."""
        tmp_fd = dir_fd = None
        i_fsync = i_rename = i_dirsync = None
        for i, line in enumerate(lines):
            m = re.match(r'openat\(AT_FDCWD, "[^"]*/\.' + re.escape(name) + r'\.sbx-\w+", .*O_CREAT.*\) = (\d+)', line)
            if m:
                tmp_fd = m.group(1)
            m = re.match(r'openat\(AT_FDCWD, "' + re.escape(self.wd) + r'", O_RDONLY[^)]*O_DIRECTORY[^)]*\) = (\d+)', line)
            if m:
                dir_fd = m.group(1)
            if tmp_fd and line.startswith(f"fsync({tmp_fd})") and i_rename is None:
                i_fsync = i
            if re.match(r'rename(at2?)?\(.*\.' + re.escape(name) + r'\.sbx-\w+", .*/' + re.escape(name) + r'"', line):
                i_rename = i
            if dir_fd and line.startswith(f"fsync({dir_fd})") and i_rename is not None:
                i_dirsync = i
        return i_fsync, i_rename, i_dirsync

    async def test_write_fsyncs_file_before_rename_and_directory_after(self):
        sb = await self.agent()
        await sb.write_file("f.txt", "new contents")
        lines = await self.syscalls(sb)
        i_fsync, i_rename, i_dirsync = self.order(lines, "f.txt")
        self.assertIsNotNone(i_fsync, "no fsync of the temp file:\n" + "\n".join(lines[-20:]))
        self.assertIsNotNone(i_rename, "no rename onto the target")
        self.assertIsNotNone(i_dirsync, "no fsync of the directory after the rename")
        self.assertLess(i_fsync, i_rename)
        self.assertLess(i_rename, i_dirsync)
        with open(os.path.join(self.wd, "f.txt")) as f:
            self.assertEqual(f.read(), "new contents")

    async def test_new_directories_are_fsynced_too(self):
        sb = await self.agent()
        await sb.write_file("a/b/c.txt", "deep")
        lines = await self.syscalls(sb)
        # a's entry (in wd), b's (in a), then the file, then c.txt's entry (in b)
        opened = {}
        synced = []
        for line in lines:
            m = re.match(r'openat\(AT_FDCWD, "([^"]*)", ([^)]*)\) = (\d+)', line)
            if m:  # fd numbers are reused: remember what each one is now
                opened[m.group(3)] = m.group(1) if "O_DIRECTORY" in m.group(2) else None
            m = re.match(r'fsync\((\d+)\)', line)
            if m and opened.get(m.group(1)):
                synced.append(opened[m.group(1)])
        want = [self.wd, self.wd + "/a", self.wd + "/a/b"]
        self.assertEqual(synced, want)
        with open(os.path.join(self.wd, "a/b/c.txt")) as f:
            self.assertEqual(f.read(), "deep")

    async def test_durable_false_skips_fsync(self):
        sb = await self.agent()
        await sb.write_file("g.txt", "fast", durable=False)
        lines = await self.syscalls(sb)
        _, i_rename, _ = self.order(lines, "g.txt")
        self.assertIsNotNone(i_rename)
        self.assertEqual([ln for ln in lines if ln.startswith(("fsync(", "fdatasync("))], [])
        with open(os.path.join(self.wd, "g.txt")) as f:
            self.assertEqual(f.read(), "fast")

    async def test_writer_killed_before_rename_leaves_old_file(self):
        target = os.path.join(self.wd, "keep.txt")
        with open(target, "w") as f:
            f.write("old contents")
        # the agent dies on entering rename: after the data was written and fsynced
        sb = await self.agent("-e", "inject=rename,renameat,renameat2:error=EIO:signal=SIGKILL")
        with self.assertRaises(ConnectionError):
            await sb.write_file("keep.txt", "x" * 3_000_000)
        lines = await self.syscalls(sb)
        i_fsync, i_rename, _ = self.order(lines, "keep.txt")
        self.assertIsNotNone(i_fsync, "the writer did not get as far as the data's fsync")
        self.assertIsNotNone(i_rename, "the writer was not stopped at the rename")
        with open(target) as f:
            self.assertEqual(f.read(), "old contents")


if __name__ == "__main__":
    sbxtest.main()
