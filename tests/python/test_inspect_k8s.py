#!/usr/bin/env python3
"""Tests of inspect_sbx's sbx-k8s provider against the Kubernetes API emulator
(tests/k8s/emulator.py) with the real helm: sample_init installs a release of
chart/agent-env per sample through libsbx and reaches an agent in each service's pod;
exec and files follow Inspect's contract there; a bad values file and a pod that never
starts give clear errors and leave no release; sample_cleanup, task_cleanup and
cli_cleanup uninstall; the per-process helm install/uninstall limits hold (a fake helm
that records how many run at once); a lost agent is reconnected and reported as a
restarted container (warn / raise); the k8s sandbox's max_pod_ops caps concurrent exec
and file calls; 1 MiB of argv (Inspect's self_check) goes through. One line per test.

    python3 tests/python/test_inspect_k8s.py [SUBSTRING]
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
sys.path.insert(0, os.path.join(sbxtest.ROOT, "tests", "k8s"))

from test_emulator import Emulator  # noqa: E402
from inspect_sbx import _sbx, clistate  # noqa: E402
from inspect_sbx.k8s import K8sProvider, RestartedContainerError  # noqa: E402
from inspect_sbx.sandbox import SbxSandbox  # noqa: E402

ROOT = sbxtest.ROOT
EMU = None
HELM = None
TMP = None

LARGE_ARGV = 'n=0; for x in "$@"; do n=$((n + ${#x})); done; echo $# $n'
TWO_SERVICES = """services:
  default:
    image: python:3.12
  web:
    image: nginx
"""


def setUpModule():
    global EMU, HELM, TMP
    TMP = tempfile.mkdtemp(prefix="sbx-inspect-k8s-")
    os.environ["SBX_STATE_DIR"] = os.path.join(TMP, "cli-state")  # where releases become CLI sandboxes
    p = subprocess.run([os.path.join(ROOT, "tests/chart/get-helm.sh"), os.path.join(ROOT, "build/tools"), "4"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("tests/chart/get-helm.sh found no helm: " + p.stderr.strip()[-300:])
    HELM = p.stdout.strip()
    EMU = Emulator(TMP, [])


def tearDownModule():
    if EMU:
        EMU.stop()
    subprocess.run(["rm", "-rf", TMP])


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def releases():
    out = subprocess.run([HELM, "--kubeconfig", EMU.kubeconfig, "list", "-n", "ns1", "-q"], capture_output=True,
                         text=True, check=True).stdout
    return sorted(out.split())


def agent_pids(pod_dir):
    want = os.path.realpath(pod_dir)
    pids = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and os.readlink(f"/proc/{p}/cwd") == want:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                    if b"--stdio" in args or b"--attach" in args or b"--listen" in args:
                        pids.append(int(p))
        except OSError:
            pass
    return pids


class K8sCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        env = {"KUBECONFIG": EMU.kubeconfig, "SBX_HELM": HELM, "SBX_K8S_AGENT_DIR": "bin",
               "SBX_CHART": os.path.join(ROOT, "chart", "agent-env")}
        self.env_patch = mock.patch.dict(os.environ, env)
        self.env_patch.start()
        self.provider = K8sProvider()

    async def asyncTearDown(self):
        self.env_patch.stop()

    async def test_sample_lifecycle_exec_and_files(self):
        await self.provider.task_init("k8stask", None)
        envs = await self.provider.sample_init("k8stask", None, {})
        self.assertEqual(list(envs), ["default"])
        sb = envs["default"]
        release = sb.k8s.info["release"]
        self.assertRegex(release, r"^[a-z][a-z0-9]{7}$")
        self.assertIn(release, releases())
        labelled = subprocess.run([HELM, "--kubeconfig", EMU.kubeconfig, "list", "-n", "ns1", "-q", "--selector",
                                   "inspectSandbox=true"], capture_output=True, text=True).stdout.split()
        self.assertIn(release, labelled)
        values = subprocess.run([HELM, "--kubeconfig", EMU.kubeconfig, "get", "values", release, "-n", "ns1", "-o",
                                 "json"], capture_output=True, text=True).stdout
        self.assertIn('"inspectTaskName":"k8stask"', values.replace(" ", ""))
        r = await sb.exec(["sh", "-c", "echo out; echo err >&2; basename $PWD; exit 4"])
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr),
                         (False, 4, "out\nagent-env-%s-default-0\n" % release, "err\n"))
        self.assertEqual((await sb.exec(["cat"], input="piped")).stdout, "piped")
        # Inspect's self_check test_exec_large_command: 16 arguments of 64 KiB
        r = await sb.exec(["sh", "-c", LARGE_ARGV, "sh", *(chr(ord("a") + i) * 65536 for i in range(16))])
        self.assertEqual((r.returncode, r.stdout), (0, "16 1048576\n"))
        await sb.write_file("sub/dir/f.bin", b"\x00\xffdata" * 1000)
        self.assertEqual(await sb.read_file("sub/dir/f.bin", text=False), b"\x00\xffdata" * 1000)
        with self.assertRaises(UnicodeDecodeError):
            await sb.read_file("sub/dir/f.bin")
        with self.assertRaises(FileNotFoundError):
            await sb.read_file("missing.txt")
        with self.assertRaises(TimeoutError):
            await sb.exec(["sleep", "30"], timeout=1)
        conn = await sb.connection()
        kubectl = f"kubectl exec -it agent-env-{release}-default-0 -n ns1 -c default -- bash -l"
        shell, _, alt = conn.command.partition("  # or: ")
        self.assertEqual(alt, kubectl)  # the anchor's form, kept as the alternative
        self.assertTrue(shell.endswith(f" shell {release}/default"), shell)
        self.assertEqual(conn.vscode_command, ["remote-containers.attachToK8sContainer",
                                               {"name": f"agent-env-{release}-default-0", "namespace": "ns1"}])
        env = dict(os.environ, KUBECONFIG=EMU.kubeconfig)
        r = subprocess.run(shlex.split(shell) + [], input="echo via-sbx-shell $(basename $PWD); exit 3\n",
                           capture_output=True, text=True, env=env, timeout=60)  # the command works as given
        self.assertEqual((r.returncode, r.stdout.strip()), (3, f"via-sbx-shell agent-env-{release}-default-0"),
                         r.stderr)
        conn_u = await sb.connection(user="nobody")
        self.assertIn(" -u nobody  # or: kubectl exec", conn_u.command)
        self.assertIn("-- su -s /bin/bash -l nobody", conn_u.command)
        self.assertIsNone(conn_u.vscode_command)
        await self.provider.sample_cleanup("k8stask", None, envs, False)
        self.assertNotIn(release, releases())
        self.assertFalse(clistate.registered(release))  # the CLI forgets it with the release

    async def test_max_pod_ops_caps_concurrent_calls(self):
        # The k8s sandbox's max_pod_ops: at most N exec/file calls at once. Each command
        # counts the commands running beside it (files in a shared directory of the pod).
        envs = await self.provider.sample_init("podops", {"max_pod_ops": 2}, {})
        sb = envs["default"]
        count = "mkdir -p podops; : > podops/$$; ls podops | wc -l >> podops.seen; sleep 0.3; rm podops/$$"

        async def most_at_once(run):
            await sb.exec(["rm", "-rf", "podops", "podops.seen"])
            await asyncio.gather(*(run(["sh", "-c", count]) for _ in range(6)))
            return max(int(n) for n in (await sb.read_file("podops.seen")).split())

        try:
            capped = await most_at_once(sb.exec)
            uncapped = await most_at_once(lambda cmd: SbxSandbox.exec(sb, cmd))  # past the cap: the control
            self.assertLessEqual(capped, 2)
            self.assertGreater(capped, 1)
            self.assertGreater(uncapped, 2)
            # file calls wait for a slot too: with both slots held, a write does not start
            hold = [asyncio.ensure_future(sb.exec(["sleep", "1"])) for _ in range(2)]
            await asyncio.sleep(0.2)
            write = asyncio.ensure_future(sb.write_file("late.txt", "x"))
            await asyncio.sleep(0.3)
            self.assertFalse(write.done())
            await asyncio.gather(*hold, write)
            self.assertEqual(await sb.read_file("late.txt"), "x")
        finally:
            await self.provider.sample_cleanup("podops", None, envs, False)
        with self.assertRaisesRegex(ValueError, "max_pod_ops must be a positive integer"):
            await self.provider.sample_init("podops", {"max_pod_ops": 0}, {})

    async def test_kubectl_transport(self):
        p = subprocess.run([os.path.join(ROOT, "tests/chart/get-helm.sh"), os.path.join(ROOT, "build/tools"), "4",
                            "kubectl"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, "no kubectl: " + p.stderr[-300:])
        log = os.path.join(TMP, "kubectl.log")
        wrapper = write("kubectl-wrapper", f'#!/bin/sh\necho "$*" >> {log}\nexec {p.stdout.strip()} "$@"\n')
        os.chmod(wrapper, 0o755)
        with mock.patch.dict(os.environ, {"SBX_KUBECTL": wrapper}):
            envs = await self.provider.sample_init("k8stask", {"transport": "kubectl"}, {})
            sb = envs["default"]
            release = sb.k8s.info["release"]
            r = await sb.exec(["sh", "-c", "basename $PWD"])
            self.assertEqual(r.stdout, f"agent-env-{release}-default-0\n")
            await sb.write_file("k.txt", "through kubectl")
            self.assertEqual(await sb.read_file("k.txt"), "through kubectl")
            await self.provider.sample_cleanup("k8stask", None, envs, False)
        with open(log) as f:
            calls = f.read()
        self.assertIn(f"exec -i -n ns1 agent-env-{release}-default-0 -- bin/sbx-agent-", calls)
        self.assertNotIn(release, releases())
        with self.assertRaisesRegex(ValueError, "transport must be"):
            await self.provider.sample_init("k8stask", {"transport": "spdy"}, {})

    async def test_two_services_from_values_and_compose(self):
        values = write("values.yaml", TWO_SERVICES)
        config = {"values": values, "default_user": None}
        envs = await self.provider.sample_init("two", config, {})
        self.assertEqual(list(envs), ["default", "web"])
        rel = envs["web"].k8s.info["release"]
        for svc in ("default", "web"):
            r = await envs[svc].exec(["sh", "-c", "basename $PWD"])
            self.assertEqual(r.stdout.strip(), f"agent-env-{rel}-{svc}-0")
        compose = write("compose.yaml", "services:\n  app:\n    image: python:3.12\n    x-default: true\n"
                                        "  db:\n    image: postgres\n")
        cenvs = await self.provider.sample_init("two", compose, {})
        self.assertEqual(list(cenvs), ["default", "db"])  # the x-default service becomes default
        crel = cenvs["db"].k8s.info["release"]
        self.assertEqual((await cenvs["db"].exec(["sh", "-c", "basename $PWD"])).stdout.strip(),
                         f"agent-env-{crel}-db-0")
        await self.provider.task_cleanup("two", config, True)  # both samples' releases (the Ctrl-C path)
        self.assertFalse({rel, crel} & set(releases()))

    async def test_bad_values_file_is_clear_and_leaves_no_release(self):
        before = releases()
        bad = write("bad-values.yaml", "services:\n  default:\n    image: python:3.12\n    imagee: typo\n")
        with self.assertRaises(RuntimeError) as e:
            await self.provider.sample_init("bad", bad, {})
        msg = str(e.exception)
        self.assertIn("helm install of release", msg)
        self.assertIn("imagee", msg)  # the chart's schema names the typo
        self.assertEqual(releases(), before)
        stuck = write("stuck.yaml", "annotations:\n  emulator.sbx/waiting: ImagePullBackOff\n"
                                    "services:\n  default:\n    image: no-such/image\n")
        with self.assertRaises(RuntimeError) as e:
            await self.provider.sample_init("bad", stuck, {})
        self.assertIn("ImagePullBackOff", str(e.exception))
        self.assertEqual(releases(), before)  # uninstalled before the error was raised
        with self.assertRaisesRegex(ValueError, r"compose.yaml:4:5: service 'app': unsupported key 'privileged'"):
            await self.provider.task_init("bad", write("compose.yaml", "services:\n  app:\n    build: .\n    "
                                                                       "privileged: true\n"))

    async def test_cancelled_sample_init_leaves_no_release(self):
        before = releases()
        for delay in (0.05, 1.0):  # during the install, and later (readiness or the agent)
            task = asyncio.ensure_future(self.provider.sample_init("cancel", None, {}))
            await asyncio.sleep(delay)
            task.cancel()
            try:
                envs = await task
            except asyncio.CancelledError:
                pass
            else:  # it finished first: clean up the usual way
                await self.provider.sample_cleanup("cancel", None, envs, True)
            self.assertEqual(releases(), before)
        self.assertEqual(self.provider._live, {})

    async def test_cli_cleanup_removes_labelled_releases(self):
        envs = await self.provider.sample_init("left", None, {})
        rel = envs["default"].k8s.info["release"]
        for s in envs.values():
            s.close()
        other = K8sProvider()  # a later `inspect sandbox cleanup sbx-k8s`
        await other.cli_cleanup(None)
        self.assertIn(rel, other.cleaned)
        self.assertNotIn(rel, releases())

    async def test_restarted_container_warn_then_raise(self):
        for behaviour in ("warn", "raise"):
            config = {"restarted_container_behavior": behaviour}
            envs = await self.provider.sample_init("restart", config, {})
            sb = envs["default"]
            rel = sb.k8s.info["release"]
            pod_dir = os.path.join(TMP, "root", "ns1", f"agent-env-{rel}-default-0")
            await sb.write_file("kept.txt", "still here")
            boot = sb.session.boot_id
            pids = agent_pids(pod_dir)
            self.assertEqual(len(pids), 2)  # the stream's bridge and the agent listening in the pod
            for pid in pids:
                os.kill(pid, 9)
            for _ in range(200):  # the stream ends; the next call dials a new one, which starts a new agent
                if sb.session.boot_id is None or sb.session.failure is not None:
                    break
                await asyncio.sleep(0.05)
            if behaviour == "warn":
                with self.assertLogs("inspect_sbx", "WARNING") as logs:
                    r = await sb.exec(["cat", "kept.txt"])
                self.assertEqual(r.stdout, "still here")
                self.assertIn(f"pod ns1/agent-env-{rel}-default-0) restarted", logs.output[0])
            else:
                with self.assertRaisesRegex(RestartedContainerError, "restarted"):
                    await sb.exec(["true"])
                self.assertTrue((await sb.exec(["true"])).success)  # raised once; the new agent works
            self.assertNotEqual(sb.session.boot_id, boot)
            self.assertEqual(sb.restarts, 1)
            await self.provider.sample_cleanup("restart", config, envs, False)


FAKE_HELM = """#!/bin/sh
d=%s
( flock 9; n=$(( $(cat $d/n 2>/dev/null || echo 0) + 1 )); echo $n > $d/n
  m=$(cat $d/max 2>/dev/null || echo 0); [ $n -gt $m ] && echo $n > $d/max ) 9>$d/lock
sleep 0.3
( flock 9; echo $(( $(cat $d/n) - 1 )) > $d/n ) 9>$d/lock
echo "$1" >> $d/log
if [ "$1" = install ]; then echo "Error: INSTALLATION FAILED: fake helm" >&2; exit 1; fi
"""


class HelmLimits(unittest.IsolatedAsyncioTestCase):
    def fake_helm(self):
        d = tempfile.mkdtemp(dir=TMP)
        path = os.path.join(d, "helm")
        with open(path, "w") as f:
            f.write(FAKE_HELM % d)
        os.chmod(path, 0o755)
        return d, path

    @staticmethod
    def read(d, name):
        with open(os.path.join(d, name)) as f:
            return f.read()

    async def test_install_limit_holds(self):
        d, helm = self.fake_helm()
        env = {"KUBECONFIG": EMU.kubeconfig, "SBX_HELM": helm, "INSPECT_MAX_HELM_INSTALL": "2",
               "SBX_CHART": os.path.join(ROOT, "chart", "agent-env")}
        with mock.patch.dict(os.environ, env):
            p = K8sProvider()
            results = await asyncio.gather(*(p.sample_init("lim", None, {}) for _ in range(6)),
                                           return_exceptions=True)
        for r in results:
            self.assertIsInstance(r, RuntimeError)
            self.assertIn("fake helm", str(r))
            self.assertIn("the release was uninstalled", str(r))
        log = self.read(d, "log").split()
        self.assertEqual((log.count("install"), log.count("uninstall")), (6, 6))
        most = int(self.read(d, "max"))
        self.assertLessEqual(most, 2)
        self.assertGreater(most, 1)

    async def test_uninstall_limit_holds(self):
        d, helm = self.fake_helm()
        with mock.patch.dict(os.environ, {"SBX_HELM": helm, "INSPECT_MAX_HELM_UNINSTALL": "3"}):
            p = K8sProvider()
            handles = [_sbx.k8s_attach(f"gone{i}", "ns1") for i in range(7)]
            await asyncio.gather(*(p._down(h) for h in handles))
        self.assertEqual(self.read(d, "log").split(), ["uninstall"] * 7)
        most = int(self.read(d, "max"))
        self.assertLessEqual(most, 3)
        self.assertGreater(most, 1)

    async def test_bad_limit_is_named(self):
        with mock.patch.dict(os.environ, {"KUBECONFIG": EMU.kubeconfig, "INSPECT_MAX_HELM_INSTALL": "lots",
                                          "SBX_CHART": os.path.join(ROOT, "chart", "agent-env")}):
            with self.assertRaisesRegex(RuntimeError, "INSPECT_MAX_HELM_INSTALL='lots' is not a number"):
                await K8sProvider().sample_init("lim", None, {})


if __name__ == "__main__":
    assert SbxSandbox  # the class the provider's sandboxes extend
    sbxtest.main()
