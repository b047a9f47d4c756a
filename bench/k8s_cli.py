"""k8s_cli.py — `sbx exec BOX -- true` on a k8s sandbox (the API emulator) through its
connection holder, next to the same CLI exec on a local sandbox.

    python3 bench/k8s_cli.py [REPS]     (bench/run.sh runs it; SBX_BIN, default build/sbx)

Starts tests/k8s/emulator.py (HTTPS, exec WebSocket), `sbx up --backend k8s` (which starts
the holder) and a local `sbx up`, then times REPS runs of each CLI exec (median, whole
process). Row kc1: through the holder vs local, target <= 1.5x. Row kc2 (info): a k8s
sandbox made with --no-holder, where every call dials a new TLS WebSocket and agent bridge.

Prints ROW lines for bench/run.sh (see bench/bench.h) and details on stderr.
"""
import base64
import os
import shutil
import subprocess
import sys
import tempfile

from rows import median_ms, row

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
SBX = os.path.abspath(os.environ.get("SBX_BIN") or os.path.join(os.environ.get("BUILD", "build"), "sbx"))


def start_emulator(work):
    certs = os.path.join(work, "certs")
    subprocess.run(["tests/net/make-certs.sh", certs], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    emu = subprocess.Popen([sys.executable, "tests/k8s/emulator.py", "--tls", certs, "--root",
                            os.path.join(work, "pods"), "--token", "bench-token"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = None
    for line in emu.stdout:
        if line.startswith("PORT"):
            port = int(line.split()[1])
            break
    if not port:
        raise SystemExit("bench k8s_cli: the emulator did not start")
    with open(os.path.join(certs, "ca.pem"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    kc = os.path.join(work, "kubeconfig")
    with open(kc, "w") as f:
        f.write('{"apiVersion": "v1", "kind": "Config", "current-context": "emu",'
                ' "clusters": [{"name": "emu", "cluster": {"server": "https://127.0.0.1:%d",'
                ' "certificate-authority-data": "%s"}}],'
                ' "users": [{"name": "u", "user": {"token": "bench-token"}}],'
                ' "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u", "namespace": "evals"}}]}'
                % (port, ca))
    os.chmod(kc, 0o600)
    return emu, kc


def main():
    work = tempfile.mkdtemp(prefix="sbx-bench-k8scli-")
    os.chmod(work, 0o711)  # a local sandbox's root (an unprivileged id) walks through it
    helm = subprocess.run(["tests/chart/get-helm.sh", "build/tools", "4"], capture_output=True, text=True)
    if helm.returncode != 0:
        row("kc1", "CLI exec k8s (emulator, holder) vs local: no helm", "-", "-", "-", "<= 1.5x", "info")
        return
    emu, kc = start_emulator(work)
    env = dict(os.environ, SBX_STATE_DIR=os.path.join(work, "state"), KUBECONFIG=kc,
               SBX_HELM=helm.stdout.strip(), SBX_K8S_AGENT_DIR="bin")
    try:
        for argv in (["up", "kheld", "--backend", "k8s"], ["up", "kdial", "--backend", "k8s", "--no-holder"],
                     ["up", "local"]):
            subprocess.run([SBX] + argv, env=env, check=True, stdout=subprocess.DEVNULL)
        local = median_ms([SBX, "exec", "local", "--", "true"], env, REPS)
        held = median_ms([SBX, "exec", "kheld", "--", "true"], env, REPS)
        dial = median_ms([SBX, "exec", "kdial", "--", "true"], env, REPS)
        ratio = held / local
        row("kc1", "CLI exec -- true: k8s (emulator, through the holder) vs local", "%.2f ms" % held,
            "%.2f ms" % local, "%.2fx" % ratio, "<= 1.5x", "PASS" if ratio <= 1.5 else "MISS")
        row("kc2", "CLI exec -- true: k8s (emulator, --no-holder: a dial per call) vs local", "%.2f ms" % dial,
            "%.2f ms" % local, "%.1fx" % (dial / local), "-", "info")
        sys.stderr.write("medians of %d CLI runs each: holder %.2f ms, direct dial %.2f ms, local %.2f ms\n"
                         % (REPS, held, dial, local))
    finally:
        subprocess.run([SBX, "down", "--all"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        emu.stdin.close()
        emu.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
