#!/usr/bin/env python3
"""Tests of the kubeconfig loader (host/backends/k8s/kubeconfig.c, execcred.c).

What sbx resolves (printed by the test tool kubeconfig_dump) is checked against the real
kubectl (`kubectl config view --minify --flatten`, `kubectl config current-context`) for
the fixture kubeconfigs in tests/k8s/kubeconfig/, alone and merged in KUBECONFIG lists.
Then: exec credential plugins (a fake plugin script), the in-cluster service account,
the namespace rules, and every malformed input (the message must name the file, the key
and the fix). One line per test: "ok   NAME", "FAIL NAME: why" or "skip NAME: why".

    python3 tests/k8s/test_kubeconfig.py [SUBSTRING]
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "chart"))
from test_chart import LineResult, get_helm  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
DUMP = os.path.join(ROOT, BUILD, "tests", "kubeconfig_dump")
SBX = os.environ.get("SBX_BIN", os.path.join(ROOT, BUILD, "sbx"))
FIX = os.path.join(HERE, "kubeconfig")
MAIN = os.path.join(FIX, "main.yaml")
EXTRA = os.path.join(FIX, "extra.yaml")
KUBECTL = None
TMP = tempfile.mkdtemp(prefix="sbx-kubeconfig-")
NO_SA = os.path.join(TMP, "no-serviceaccount")


def clean_env(**extra):
    """An environment with no kubeconfig, cluster or namespace settings of our own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                        "INSPECT_K8S_DEFAULT_NAMESPACE")}
    env["HOME"] = os.path.join(TMP, "home")
    env["SBX_K8S_SERVICEACCOUNT_DIR"] = NO_SA
    env.update(extra)
    return env


def dump(*args, env=None, ok=True):
    p = subprocess.run([DUMP] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=env or clean_env())
    if ok:
        if p.returncode != 0:
            raise AssertionError(f"kubeconfig_dump {' '.join(args)} failed: {p.stderr.strip()}")
        return json.loads(p.stdout)
    return p.returncode, p.stdout, p.stderr


def kubectl(*args, kubeconfig):
    p = subprocess.run([KUBECTL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=clean_env(KUBECONFIG=kubeconfig))
    if p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def write(name, text):
    path = os.path.join(TMP, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def defining_file(kubeconfig, list_name, name):
    """The first file of the list that defines NAME in LIST_NAME (kubectl's merge rule)."""
    import yaml
    for path in kubeconfig.split(":"):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        if any(e.get("name") == name for e in doc.get(list_name) or []):
            return path
    return None


class Kubeconfig(unittest.TestCase):
    # ---- against kubectl ----

    def compare(self, kubeconfig, context=None):
        """kubeconfig_dump and kubectl agree on every setting of the context."""
        args = ["config", "view", "--minify", "--flatten", "-o", "json"]
        if context:
            args += ["--context", context]
        kv = json.loads(kubectl(*args, kubeconfig=kubeconfig))
        env = clean_env(KUBECONFIG=kubeconfig)
        ours = dump(*(["--context", context] if context else []), env=env)
        ctx = kv["contexts"][0]
        self.assertEqual(ours["context"], kv["current-context"])
        self.assertEqual(ours["cluster"], ctx["context"]["cluster"])
        self.assertEqual(ours["user"], ctx["context"].get("user") or None)
        self.assertEqual(ours["namespace"], ctx["context"].get("namespace", "default"))
        cl = kv["clusters"][0]["cluster"]
        self.assertEqual(ours["server"], cl["server"].rstrip("/"))
        ca = cl.get("certificate-authority-data")
        self.assertEqual(ours["ca_pem"], base64.b64decode(ca).decode() if ca else None)
        self.assertEqual(ours["insecure"], cl.get("insecure-skip-tls-verify", False))
        self.assertEqual(ours["tls_server_name"], cl.get("tls-server-name"))
        self.assertEqual(ours["proxy_url"], cl.get("proxy-url"))
        user = kv["users"][0]["user"] if kv.get("users") else {}
        for key, field in (("client-certificate-data", "cert_pem"), ("client-key-data", "key_pem")):
            want = base64.b64decode(user[key]).decode() if key in user else None
            self.assertEqual(ours[field], want, key)
        if "token" in user:
            self.assertEqual(ours["token"], user["token"])
        if "tokenFile" in user:
            home = os.path.dirname(defining_file(kubeconfig, "users", ours["user"]))
            self.assertEqual(ours["token_file"], os.path.join(home, user["tokenFile"]))
            with open(ours["token_file"]) as f:
                self.assertEqual(ours["token"], f.read().strip())
        if "exec" in user:
            x = user["exec"]
            home = os.path.dirname(defining_file(kubeconfig, "users", ours["user"]))
            self.assertEqual(ours["exec_command"], os.path.normpath(os.path.join(home, x["command"])))
            self.assertEqual(ours["exec_args"], x.get("args", []))
            self.assertEqual(ours["exec_env"], [f"{e['name']}={e['value']}" for e in x.get("env", [])])
        if not user:
            self.assertEqual(ours["auth"], "none")
        return ours

    def test_every_context_matches_kubectl(self):
        for ctx in ("prod-alice", "staging-bob", "dev-carol", "prod-dave", "staging-erin", "dev-anonymous"):
            with self.subTest(context=ctx):
                self.compare(MAIN, ctx)

    def test_current_context_matches_kubectl(self):
        for kc in (MAIN, f"{MAIN}:{EXTRA}", f"{EXTRA}:{MAIN}"):
            with self.subTest(kubeconfig=kc):
                want = kubectl("config", "current-context", kubeconfig=kc).strip()
                self.assertEqual(self.compare(kc)["context"], want)

    def test_merge_first_file_wins(self):
        missing = os.path.join(TMP, "does-not-exist.yaml")
        for kc in (f"{MAIN}:{missing}:{EXTRA}", f"{EXTRA}:{MAIN}"):
            for ctx in ("prod-alice", "extra-frank", "staging-bob"):
                with self.subTest(kubeconfig=kc, context=ctx):
                    self.compare(kc, ctx)
        first = dump("--context", "prod-alice", env=clean_env(KUBECONFIG=f"{MAIN}:{EXTRA}"))
        self.assertEqual((first["server"], first["namespace"], first["token"]),
                         ("https://prod.example.test:6443", "team-a", "alice-static-token"))
        second = dump("--context", "prod-alice", env=clean_env(KUBECONFIG=f"{EXTRA}:{MAIN}"))
        self.assertEqual((second["server"], second["namespace"], second["token"]),
                         ("https://other-prod.example.test:6443", "other-ns", "alice-other-token"))

    def test_files_resolved_against_their_directory(self):
        # run from elsewhere: relative paths are relative to the kubeconfig, not the cwd
        p = subprocess.run([DUMP, "--context", "staging-bob"], cwd="/", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=clean_env(KUBECONFIG=MAIN))
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)
        self.assertEqual(d["cert_file"], os.path.join(FIX, "certs", "client.crt"))
        with open(d["cert_file"]) as f:
            self.assertEqual(d["cert_pem"], f.read())
        self.assertEqual(d["auth"], "client certificate")

    def test_default_kubeconfig_is_home(self):
        home = os.path.join(TMP, "home2")
        os.makedirs(os.path.join(home, ".kube"), exist_ok=True)
        shutil.copy(EXTRA, os.path.join(home, ".kube", "config"))
        d = dump(env=clean_env(HOME=home))
        self.assertEqual(d["context"], "extra-frank")
        self.assertEqual(d["origin"], os.path.join(home, ".kube", "config"))

    def test_explicit_kubeconfig_option(self):
        d = dump("--kubeconfig", EXTRA, env=clean_env(KUBECONFIG=MAIN))
        self.assertEqual(d["context"], "extra-frank")

    # ---- namespace rules ----

    def test_namespace_order(self):
        sa = os.path.join(TMP, "sa-ns")
        write("sa-ns/namespace", "from-sa-file\n")
        kc = MAIN
        d = dump("--context", "prod-alice", env=clean_env(KUBECONFIG=kc))
        self.assertEqual((d["namespace"], d["namespace_from"]), ("team-a", "the context"))
        d = dump("--context", "staging-bob", env=clean_env(KUBECONFIG=kc))
        self.assertEqual((d["namespace"], d["namespace_from"]), ("default", "the default"))
        d = dump("--context", "prod-alice", env=clean_env(KUBECONFIG=kc, SBX_K8S_SERVICEACCOUNT_DIR=sa))
        self.assertEqual(d["namespace"], "from-sa-file")
        d = dump("--context", "prod-alice", "--sa-dir", sa, env=clean_env(KUBECONFIG=kc))
        self.assertEqual(d["namespace"], "from-sa-file")
        d = dump("--context", "prod-alice", env=clean_env(KUBECONFIG=kc, SBX_K8S_SERVICEACCOUNT_DIR=sa,
                                                          INSPECT_K8S_DEFAULT_NAMESPACE="from-env"))
        self.assertEqual(d["namespace"], "from-env")
        d = dump("--context", "prod-alice", "--namespace", "explicit",
                 env=clean_env(KUBECONFIG=kc, INSPECT_K8S_DEFAULT_NAMESPACE="from-env"))
        self.assertEqual(d["namespace"], "explicit")

    # ---- in-cluster ----

    def sa_dir(self, name, token="sa-token\n", ca=True, namespace="pod-ns\n"):
        d = os.path.join(TMP, name)
        os.makedirs(d, exist_ok=True)
        if token is not None:
            write(f"{name}/token", token)
        if ca:
            shutil.copy(os.path.join(FIX, "certs", "ca.crt"), os.path.join(d, "ca.crt"))
        if namespace is not None:
            write(f"{name}/namespace", namespace)
        return d

    def test_in_cluster(self):
        sa = self.sa_dir("sa1")
        env = clean_env(KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443",
                        SBX_K8S_SERVICEACCOUNT_DIR=sa)
        d = dump(env=env)
        self.assertTrue(d["in_cluster"])
        self.assertEqual(d["server"], "https://10.96.0.1:443")
        self.assertEqual(d["token"], "sa-token")
        self.assertEqual(d["token_file"], os.path.join(sa, "token"))
        with open(os.path.join(sa, "ca.crt")) as f:
            self.assertEqual(d["ca_pem"], f.read())
        self.assertEqual((d["namespace"], d["namespace_from"]), ("pod-ns", "the service account's namespace file"))
        env["INSPECT_K8S_DEFAULT_NAMESPACE"] = "override"
        self.assertEqual(dump(env=env)["namespace"], "override")
        env = clean_env(KUBERNETES_SERVICE_HOST="fd00::1", KUBERNETES_SERVICE_PORT="6443",
                        SBX_K8S_SERVICEACCOUNT_DIR=self.sa_dir("sa2", namespace=None))
        d = dump(env=env)
        self.assertEqual((d["server"], d["namespace"]), ("https://[fd00::1]:6443", "default"))

    def test_kubeconfig_beats_in_cluster(self):
        env = clean_env(KUBECONFIG=EXTRA, KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443",
                        SBX_K8S_SERVICEACCOUNT_DIR=self.sa_dir("sa3"))
        d = dump(env=env)
        self.assertFalse(d["in_cluster"])
        self.assertEqual(d["namespace"], "pod-ns")  # the namespace file still comes before the context's

    def test_in_cluster_token_reread(self):
        # the kubelet rotates the token file; a refresh after a minute reads it again
        sa = self.sa_dir("sa4")
        env = clean_env(KUBERNETES_SERVICE_HOST="10.0.0.1", KUBERNETES_SERVICE_PORT="443",
                        SBX_K8S_SERVICEACCOUNT_DIR=sa)
        d = dump("--refresh", "1", env=env)
        self.assertEqual(d["token"], "sa-token")  # read less than a minute ago: kept

    # ---- exec credential plugins ----

    def plugin_env(self, **extra):
        log = os.path.join(TMP, f"plugin-{time.monotonic_ns()}.log")
        return log, clean_env(KUBECONFIG=MAIN, FAKE_PLUGIN_LOG=log, **extra)

    def plugin_config(self, name, mode, api="client.authentication.k8s.io/v1", extra=""):
        return write(f"{name}.yaml", f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster: {{server: "https://k.example.test", certificate-authority: {FIX}/certs/ca.crt}}
users:
- name: u
  user:
    exec:
      apiVersion: {api}
      command: {FIX}/fake-exec-plugin.sh
      args: [--mode, {mode}]
      installHint: "run: fake-cloud login"
{extra}
contexts:
- name: c
  context: {{cluster: k, user: u}}
""")

    def runs(self, log):
        with open(log) as f:
            return f.read().splitlines()

    def test_exec_token_cached(self):
        log, env = self.plugin_env(FAKE_PLUGIN_EXPIRY="2999-01-01T00:00:00Z")
        d = dump("--context", "staging-erin", "--refresh", "3", env=env)
        self.assertEqual(d["token"], "plugin-token-1")
        self.assertEqual(self.runs(log), ["run greeting=hello"])  # once, with the kubeconfig's env
        self.assertEqual(d["expires"], 32472144000)

    def test_exec_one_run_for_concurrent_callers(self):
        log, env = self.plugin_env(FAKE_PLUGIN_EXPIRY="2999-01-01T00:00:00Z")
        d = dump("--context", "staging-erin", "--parallel", "20", env=env)
        self.assertEqual(d["token"], "plugin-token-1")
        self.assertEqual(len(self.runs(log)), 1)

    def test_exec_refreshed_before_expiry(self):
        soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 30))
        log, env = self.plugin_env(FAKE_PLUGIN_EXPIRY=soon)
        d = dump("--context", "staging-erin", "--refresh", "3", env=env)
        self.assertEqual(len(self.runs(log)), 3)
        self.assertEqual(d["token"], "plugin-token-3")

    def test_exec_no_expiry_cached(self):
        log, env = self.plugin_env()
        dump("--context", "staging-erin", "--refresh", "2", env=env)
        self.assertEqual(len(self.runs(log)), 1)

    def test_exec_info_and_cluster(self):
        info = os.path.join(TMP, "exec-info.json")
        _, env = self.plugin_env(FAKE_PLUGIN_INFO=info)
        dump("--context", "staging-erin", "--refresh", "1", env=env)
        with open(info) as f:
            got = json.load(f)
        self.assertEqual(got["kind"], "ExecCredential")
        self.assertEqual(got["apiVersion"], "client.authentication.k8s.io/v1")
        self.assertIs(got["spec"]["interactive"], False)
        cl = got["spec"]["cluster"]  # provideClusterInfo: true
        self.assertEqual(cl["server"], "https://10.1.2.3:443")
        kv = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json", "--context", "staging-erin",
                                kubeconfig=MAIN))
        self.assertEqual(cl["certificate-authority-data"], kv["clusters"][0]["cluster"]["certificate-authority-data"])
        # without provideClusterInfo there is no cluster
        kc = self.plugin_config("noinfo", "token")
        dump("--refresh", "1", env=clean_env(KUBECONFIG=kc, FAKE_PLUGIN_INFO=info))
        with open(info) as f:
            self.assertNotIn("cluster", json.load(f)["spec"])

    def test_exec_client_certificate(self):
        kc = self.plugin_config("certplugin", "cert")
        d = dump("--refresh", "1", env=clean_env(KUBECONFIG=kc))
        self.assertTrue(d["cert_pem"].startswith("-----BEGIN CERTIFICATE-----"))
        self.assertTrue(d["key_pem"].startswith("-----BEGIN PRIVATE KEY-----"))
        self.assertIsNone(d["token"])

    def test_exec_failures(self):
        cases = [
            ("fail", ["fake-exec-plugin.sh", "user 'u'", "exited with status 3",
                      "you must be logged in to the fake cloud", "run: fake-cloud login"]),
            ("garbage", ["not JSON"]),
            ("empty", ["not JSON"]),
            ("wrongkind", ["not an ExecCredential", "'Pod'"]),
            ("notoken", ["neither a token nor clientCertificateData"]),
        ]
        for mode, wants in cases:
            with self.subTest(mode=mode):
                kc = self.plugin_config(f"p-{mode}", mode)
                rc, _, err = dump("--refresh", "1", env=clean_env(KUBECONFIG=kc), ok=False)
                self.assertEqual(rc, 1)
                for w in wants:
                    self.assertIn(w, err)

    def test_exec_timeout_kills_plugin(self):
        kc = self.plugin_config("p-slow", "slow")
        start = time.monotonic()
        rc, _, err = dump("--refresh", "1", "--timeout", "300", env=clean_env(KUBECONFIG=kc), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("did not finish within 300 ms and was killed", err)
        self.assertLess(time.monotonic() - start, 25)  # not the plugin's 30 s sleep

    def test_exec_missing_command(self):
        kc = write("p-missing.yaml", open(self.plugin_config("p-tmp", "token")).read().replace(
            f"{FIX}/fake-exec-plugin.sh", "sbx-no-such-credential-plugin"))
        rc, _, err = dump("--refresh", "1", env=clean_env(KUBECONFIG=kc), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("'sbx-no-such-credential-plugin'", err)
        self.assertIn("could not be run (command not found)", err)
        self.assertIn("fake-cloud login", err)

    def test_exec_interactive_always_refused(self):
        kc = self.plugin_config("p-inter", "token", extra="      interactiveMode: Always")
        rc, _, err = dump("--refresh", "1", env=clean_env(KUBECONFIG=kc), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("interactiveMode: Always", err)

    # ---- sbx k8s-config ----

    def test_cli_shows_no_secrets(self):
        for ctx in ("prod-alice", "dev-carol", "staging-bob", "prod-dave"):
            with self.subTest(context=ctx):
                p = subprocess.run([SBX, "k8s-config", "--context", ctx, "--json"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=clean_env(KUBECONFIG=MAIN))
                self.assertEqual(p.returncode, 0, p.stderr)
                d = json.loads(p.stdout)
                full = dump("--context", ctx, env=clean_env(KUBECONFIG=MAIN))
                self.assertEqual(d["server"], full["server"])
                self.assertEqual(d["namespace"], full["namespace"])
                for secret in (full["token"], full["key_pem"], full["cert_pem"]):
                    if secret:
                        self.assertNotIn(secret.strip(), p.stdout)
                        self.assertNotIn(secret.strip().splitlines()[1 if "\n" in secret else 0], p.stdout)
        p = subprocess.run([SBX, "k8s-config", "--context", "staging-erin", "--login"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=clean_env(KUBECONFIG=MAIN))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("credential       token, no expiry", p.stdout)
        self.assertNotIn("plugin-token", p.stdout)

    # ---- malformed input: the file, the key, the fix ----

    GOOD_CLUSTER = "clusters:\n- name: k\n  cluster: {server: 'https://k.test'}\n"
    GOOD_USER = "users:\n- name: u\n  user: {token: t}\n"
    GOOD_CONTEXT = "contexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n"

    def bad_cases(self):
        C, U, X = self.GOOD_CLUSTER, self.GOOD_USER, self.GOOD_CONTEXT
        return [
            ("invalid-yaml", "clusters: [\n", ["invalid-yaml.yaml:2:1", "invalid YAML"]),
            ("not-a-mapping", "- a\n- b\n", ["not-a-mapping.yaml:1:1", "mapping"]),
            ("no-current-context", C + U + "contexts:\n- name: c\n  context: {cluster: k}\n",
             ["no current-context", "--context NAME", "use-context", "contexts: c"]),
            ("unknown-context", C + U + X.replace("current-context: c", "current-context: nope"),
             ["context 'nope'", "does not exist", "contexts: c"]),
            ("missing-cluster", U + X, ["cluster 'k'", "no kubeconfig file defines", "set-cluster"]),
            ("missing-user", C + X, ["user 'u'", "no kubeconfig file defines", "set-credentials"]),
            ("no-server", "clusters:\n- name: k\n  cluster: {insecure-skip-tls-verify: true}\n" + U + X,
             ["no-server.yaml:3:12", "cluster 'k' has no 'server'", "https://HOST:PORT"]),
            ("server-not-url", "clusters:\n- name: k\n  cluster: {server: k.test:443}\n" + U + X,
             ["server-not-url.yaml:3:21", "not an http(s) URL"]),
            ("ca-missing", "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
             "    certificate-authority: nope/ca.crt\n" + U + X,
             ["ca-missing.yaml:5:28", "certificate-authority", "nope/ca.crt", "No such file",
              "certificate-authority-data"]),
            ("ca-bad-base64", "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
             "    certificate-authority-data: '%%%'\n" + U + X,
             ["ca-bad-base64.yaml:5:33", "certificate-authority-data", "not valid base64", "base64 -w0"]),
            ("ca-not-pem", "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
             "    certificate-authority-data: aGVsbG8=\n" + U + X,
             ["ca-not-pem.yaml:5:33", "PEM"]),
            ("insecure-not-bool", "clusters:\n- name: k\n  cluster: {server: 'https://k', "
             "insecure-skip-tls-verify: maybe}\n" + U + X, ["insecure-not-bool.yaml:3:", "true or false"]),
            ("cert-without-key", C + "users:\n- name: u\n  user:\n    client-certificate: "
             + os.path.join(FIX, "certs", "client.crt") + "\n" + X,
             ["cert-without-key.yaml:", "user 'u'", "no client key", "client-key"]),
            ("cert-missing", C + "users:\n- name: u\n  user:\n    client-certificate: /nonexistent/c.crt\n"
             "    client-key: /nonexistent/c.key\n" + X,
             ["cert-missing.yaml:7:25", "client-certificate '/nonexistent/c.crt'", "client-certificate-data"]),
            ("token-file-missing", C + "users:\n- name: u\n  user: {tokenFile: tok}\n" + X,
             ["token-file-missing.yaml:6:21", "tokenFile", "/tok'"]),
            ("exec-no-command", C + "users:\n- name: u\n  user:\n    exec: {apiVersion: "
             "client.authentication.k8s.io/v1}\n" + X, ["exec-no-command.yaml:7:11", "no 'command'"]),
            ("exec-old-api", C + "users:\n- name: u\n  user:\n    exec: {apiVersion: "
             "client.authentication.k8s.io/v1alpha1, command: x}\n" + X,
             ["exec-old-api.yaml:7:11", "v1alpha1", "client.authentication.k8s.io/v1"]),
            ("auth-provider", C + "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n" + X,
             ["auth-provider.yaml:7:20", "'auth-provider'", "exec plugin", "gke-gcloud-auth-plugin"]),
            ("basic-auth", C + "users:\n- name: u\n  user: {username: a, password: b}\n" + X,
             ["basic-auth.yaml:6:20", "basic authentication"]),
            ("clusters-not-list", "clusters: {k: {server: x}}\n" + U + X,
             ["clusters-not-list.yaml:1:11", "'clusters' must be a list"]),
            ("entry-no-name", "clusters:\n- cluster: {server: 'https://k'}\n" + U + X,
             ["entry-no-name.yaml:2:3", "needs a 'name'"]),
            ("context-no-cluster", C + U + "contexts:\n- name: c\n  context: {user: u}\ncurrent-context: c\n",
             ["context-no-cluster.yaml:", "context 'c' has no 'cluster'"]),
            ("server-not-text", "clusters:\n- name: k\n  cluster: {server: [a]}\n" + U + X,
             ["server-not-text.yaml:3:21", "'server' must be text"]),
        ]

    def test_malformed_kubeconfigs(self):
        for name, text, wants in self.bad_cases():
            with self.subTest(case=name):
                path = write(f"bad/{name}.yaml", text)
                rc, out, err = dump(env=clean_env(KUBECONFIG=path), ok=False)
                self.assertEqual(rc, 1, out)
                for w in wants:
                    self.assertIn(w, err)
                p = subprocess.run([SBX, "k8s-config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=clean_env(KUBECONFIG=path))
                self.assertEqual(p.returncode, 1)
                self.assertIn(wants[0], p.stderr)

    def test_nothing_configured(self):
        rc, _, err = dump(env=clean_env(), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("no Kubernetes configuration", err)
        self.assertIn("KUBERNETES_SERVICE_HOST", err)
        self.assertIn("set KUBECONFIG", err)

    def test_explicit_missing_file(self):
        rc, _, err = dump("--kubeconfig", os.path.join(TMP, "absent.yaml"), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("absent.yaml", err)
        self.assertIn("No such file", err)

    def test_in_cluster_errors(self):
        env = clean_env(KUBERNETES_SERVICE_HOST="10.0.0.1", KUBERNETES_SERVICE_PORT="443",
                        SBX_K8S_SERVICEACCOUNT_DIR=self.sa_dir("sa-notoken", token=None))
        rc, _, err = dump(env=env, ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("token", err)
        self.assertIn("automountServiceAccountToken", err)
        env = clean_env(KUBERNETES_SERVICE_HOST="10.0.0.1", SBX_K8S_SERVICEACCOUNT_DIR=self.sa_dir("sa5"))
        rc, _, err = dump(env=env, ok=False)
        self.assertIn("KUBERNETES_SERVICE_PORT", err)

    def test_bad_namespace(self):
        rc, _, err = dump(env=clean_env(KUBECONFIG=EXTRA, INSPECT_K8S_DEFAULT_NAMESPACE="Bad_NS"), ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("'Bad_NS'", err)
        self.assertIn("INSPECT_K8S_DEFAULT_NAMESPACE", err)


def main():
    global KUBECTL
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    helm, why = get_helm(4)
    KUBECTL = os.path.join(os.path.dirname(os.path.dirname(helm)), "kubectl", "kubectl") if helm else None
    if not KUBECTL or not os.access(KUBECTL, os.X_OK):
        print(f"FAIL kubeconfig.kubectl: no kubectl (it comes with helm from get-helm.sh): {why}")
        return 1
    os.makedirs(os.path.join(TMP, "home"), exist_ok=True)
    suite = unittest.TestSuite()
    for name in unittest.TestLoader().getTestCaseNames(Kubeconfig):
        if only in name:
            suite.addTest(Kubeconfig(name))
    result = LineResult("kubeconfig")
    suite.run(result)
    shutil.rmtree(TMP, ignore_errors=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
