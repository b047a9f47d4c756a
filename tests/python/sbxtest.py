"""sbxtest.py — what the Python test programs share: finding the built package, running
unittest cases with the suite's one-line-per-test output, and sandbox fixtures.

The package is imported from $BUILD/python (`make python` builds it there). Under
SAN=1 the extension is built with ASan/UBSan, so the program re-runs itself with the
sanitizer runtimes preloaded (leak detection off: the interpreter keeps its memory).
"""
import asyncio
import logging
import os
import subprocess
import sys
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
PYBUILD = os.path.join(ROOT, BUILD, "python")
AGENT = os.environ.get("SBX_AGENT") or os.path.join(ROOT, BUILD, "sbx-agent")
IS_ROOT = os.geteuid() == 0


def _preload_sanitizers() -> None:
    if os.environ.get("SAN") != "1" or os.environ.get("SBX_PY_SAN_PRELOADED"):
        return
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        p = subprocess.run([os.environ.get("CC", "cc"), f"-print-file-name={name}"], capture_output=True,
                           text=True).stdout.strip()
        if os.path.isabs(p):
            libs.append(p)
    env = dict(os.environ, SBX_PY_SAN_PRELOADED="1", LD_PRELOAD=":".join(libs),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def setup_path() -> None:
    _preload_sanitizers()
    # IsolatedAsyncioTestCase runs asyncio in debug mode, which logs every callback over
    # 100 ms; starting and closing local agents blocks that long under load (see the
    # provider's notes), which is known and not what these tests check.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    os.environ.setdefault("SBX_AGENT", AGENT)
    if not os.path.isdir(os.path.join(PYBUILD, "inspect_sbx")):
        print(f"FAIL {os.path.basename(sys.argv[0])}: {PYBUILD}/inspect_sbx is missing (run make python)")
        sys.exit(1)
    sys.path.insert(0, PYBUILD)


class _LineResult(unittest.TestResult):
    def _name(self, test):
        return test.id().split(".")[-1]

    def addSuccess(self, test):
        print(f"ok   {self._name(test)}", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        msg = "".join(traceback.format_exception_only(err[0], err[1])).strip().replace("\n", " | ")
        print(f"FAIL {self._name(test)}: {msg}", flush=True)
        sys.stderr.write(self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        msg = "".join(traceback.format_exception_only(err[0], err[1])).strip().replace("\n", " | ")
        print(f"FAIL {self._name(test)}: {type(err[1]).__name__}: {msg}", flush=True)
        sys.stderr.write(self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        print(f"skip {self._name(test)}: {reason}", flush=True)


def main(module_name: str = "__main__") -> None:
    """Runs the module's tests (argv[1]: only those whose name contains it)."""
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module_name])

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    picked = unittest.TestSuite(t for t in flatten(suite) if only in t.id())
    result = _LineResult()
    picked.run(result)
    sys.exit(1 if result.failures or result.errors else 0)


async def wait_until(pred, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Polls an async or sync predicate until true; a hang guard, not a timing assertion."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if loop.time() > end:
            raise AssertionError(f"gave up waiting for {what} after {timeout:g} s")
        await asyncio.sleep(interval)
