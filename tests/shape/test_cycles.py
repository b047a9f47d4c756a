#!/usr/bin/env python3
"""test_cycles.py — no dependency cycle among the files of host/ and agent/ (issue 11).

Runs scripts/include-cycles.py on the tree (includes) and on $BUILD's objects (calls
across files), and checks on a small made-up tree that the script does see a cycle.
Prints "ok NAME" / "FAIL NAME: why" lines for tests/run.sh.
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "include-cycles.py")
failed = 0


def report(name, ok, why=""):
    global failed
    print(("ok   %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    failed += 0 if ok else 1


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def test_tree_has_no_cycle():
    args = ["--root", ROOT]
    objects = os.path.join(ROOT, os.environ.get("BUILD", "build"))
    with_objects = os.path.isdir(os.path.join(objects, "obj", "host"))
    if with_objects:
        args += ["--objects", objects]
    r = run(*args)
    name = "no cycle among host/ and agent/ (%s)" % ("includes and calls" if with_objects else "includes only")
    report(name, r.returncode == 0, r.stdout.strip().replace("\n", "; "))


def test_script_sees_a_cycle():
    """host/a.c includes b.h and host/b.c includes a.h: one cycle, found."""
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "host"))
        for me, other in (("a", "b"), ("b", "a")):
            with open(os.path.join(d, "host", me + ".h"), "w") as f:
                f.write("int %s(void);\n" % me)
            with open(os.path.join(d, "host", me + ".c"), "w") as f:
                f.write('#include "%s.h"\n#include "%s.h"\nint %s(void) { return %s(); }\n' % (me, other, me, other))
        r = run("--root", d)
        report("the script reports a made-up cycle", r.returncode == 1 and "host/a -> host/b -> host/a" in r.stdout,
               "rc %d, output %r" % (r.returncode, r.stdout))


test_tree_has_no_cycle()
test_script_sees_a_cycle()
sys.exit(1 if failed else 0)
