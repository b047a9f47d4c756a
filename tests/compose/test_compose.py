#!/usr/bin/env python3
"""Tests of `sbx compose2values`: compose files under tests/compose/files/ are translated,
then rendered with the real helm through chart/agent-env, and the rendered objects are
checked. Bad compose files must fail with the file, line and key in the message; ignored
keys must warn. `sbx up -f compose.yaml` must use the same translation.

One line per test: "ok   NAME", "FAIL NAME: why" or "skip NAME: why".

    python3 tests/compose/test_compose.py [SUBSTRING]
"""
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "chart"))
from test_chart import LineResult, get_helm, helm_version  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
SBX = os.environ.get("SBX_BIN", os.path.join(ROOT, BUILD, "sbx"))
CHART = os.path.join(ROOT, "chart", "agent-env")
FILES = os.path.join(HERE, "files")
HELM = None
TMP = tempfile.mkdtemp(prefix="sbx-compose-")


def sbx(*args, env=None):
    p = subprocess.run([SBX] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def translate(path):
    """(values dict, stderr) of a compose file that must translate."""
    rc, out, err = sbx("compose2values", path)
    if rc != 0:
        raise AssertionError(f"compose2values failed: {err.strip()}")
    return yaml.safe_load(out), err


def render(values_text):
    """The objects helm renders from the values, by (kind, name)."""
    vf = write("values-render.yaml", values_text)
    p = subprocess.run([HELM, "template", "rel", CHART, "--namespace", "ns1", "-f", vf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("helm template failed: " + p.stderr.strip())
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(p.stdout) if d}


def container(objs, svc):
    sts = objs[("StatefulSet", f"agent-env-rel-{svc}")]
    pod = sts["spec"]["template"]
    names = [c["name"] for c in pod["spec"]["containers"]]
    main = [c for c in pod["spec"]["containers"] if c["name"] not in ("coredns",)]
    assert main, f"no service container in {names}"
    return pod, main[0]


_full = {}


def full():
    """The full fixture: translated once, rendered once."""
    if not _full:
        rc, out, err = sbx("compose2values", os.path.join(FILES, "full.compose.yaml"))
        assert rc == 0, err
        _full.update(values=yaml.safe_load(out), stderr=err, objs=render(out))
    return _full


class Compose(unittest.TestCase):
    # ---- translation, checked on what helm renders ----

    def test_full_renders(self):
        objs = full()["objs"]
        for svc in ("default", "db", "worker", "sidecar"):
            self.assertIn(("StatefulSet", f"agent-env-rel-{svc}"), objs)
        self.assertNotIn(("StatefulSet", "agent-env-rel-web"), objs)

    def test_x_default_becomes_default_first(self):
        v = full()["values"]
        self.assertEqual(list(v["services"]), ["default", "db", "worker", "sidecar"])
        self.assertEqual(v["services"]["default"]["additionalDnsRecords"], ["web"])
        cm = full()["objs"][("ConfigMap", "agent-env-rel-coredns-configmap")]
        self.assertIn("rewrite name exact web agent-env-rel-default.ns1.svc.cluster.local",
                      str(cm["data"]))

    def test_image_entrypoint_command_workdir(self):
        _, c = container(full()["objs"], "default")
        self.assertEqual(c["image"], "nginx:1.27")
        self.assertEqual(c["command"], ["/docker-entrypoint.sh"])
        self.assertEqual(c["args"], ["nginx", "-g", "daemon off;"])
        self.assertEqual(c["workingDir"], "/srv")
        _, db = container(full()["objs"], "db")
        self.assertEqual(db["args"], ["postgres", "-c", "max_connections=50"])

    def test_environment_map_and_list(self):
        _, c = container(full()["objs"], "default")
        env = {e["name"]: e["value"] for e in c["env"]}
        self.assertEqual(env["PORT"], "8080")  # numbers become strings, as Kubernetes needs
        self.assertEqual(env["DEBUG"], "true")
        self.assertEqual(env["EMPTY"], "")
        self.assertNotIn("SHARED", env)  # an explicit key replaces the merged one
        _, db = container(full()["objs"], "db")
        env = {e["name"]: e["value"] for e in db["env"]}
        self.assertEqual(env["POSTGRES_PASSWORD"], "secret=with=equals")
        self.assertEqual(env["QUOTED"], '"kept"')  # like docker compose: quotes stay

    def test_volumes_become_pvcs(self):
        objs = full()["objs"]
        for name in ("shared-data", "cache"):
            pvc = objs[("PersistentVolumeClaim", f"agent-env-rel-{name}")]
            self.assertEqual(pvc["spec"]["storageClassName"], "nfs-csi")
            self.assertEqual(pvc["spec"]["accessModes"], ["ReadWriteMany"])
        pod, c = container(objs, "default")
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertIn("/data", mounts)
        self.assertTrue(mounts["/cache"].get("readOnly"))
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}
        self.assertEqual(claims, {"agent-env-rel-shared-data", "agent-env-rel-cache"})

    def test_healthcheck_readiness_probe(self):
        _, c = container(full()["objs"], "default")
        self.assertEqual(c["readinessProbe"], {
            "exec": {"command": ["curl", "-f", "http://localhost:8080"]},
            "initialDelaySeconds": 5, "periodSeconds": 90, "timeoutSeconds": 10,
            "failureThreshold": 4})
        _, db = container(full()["objs"], "db")
        self.assertEqual(db["readinessProbe"]["exec"]["command"], ["sh", "-c", "pg_isready -U postgres"])
        _, w = container(full()["objs"], "worker")
        self.assertEqual(w["readinessProbe"]["exec"]["command"], ["sh", "-c", "test -f /tmp/ready"])

    def test_resources(self):
        _, c = container(full()["objs"], "default")  # mem_limit + cpus (a number stays one)
        self.assertEqual(c["resources"], {"limits": {"cpu": 0.5, "memory": "512Mi"},
                                          "requests": {"cpu": 0.5, "memory": "512Mi"}})
        _, db = container(full()["objs"], "db")  # deploy.resources with reservations
        self.assertEqual(db["resources"], {"limits": {"cpu": "2", "memory": "1Gi"},
                                           "requests": {"memory": "256Mi"}})
        _, w = container(full()["objs"], "worker")  # limits only: requests = limits
        self.assertEqual(w["resources"], {"limits": {"memory": "2Gi"}, "requests": {"memory": "2Gi"}})
        _, s = container(full()["objs"], "sidecar")  # none: the chart's Guaranteed default
        self.assertEqual(s["resources"]["limits"], s["resources"]["requests"])

    def test_user_and_seccomp(self):
        _, c = container(full()["objs"], "default")
        self.assertEqual(c["securityContext"], {"runAsUser": 1000, "runAsGroup": 1001,
                                                "seccompProfile": {"type": "Unconfined"}})
        _, w = container(full()["objs"], "worker")
        self.assertEqual(w["securityContext"], {"runAsUser": 65534})

    def test_runtime(self):
        pod, _ = container(full()["objs"], "worker")
        self.assertEqual(pod["spec"]["runtimeClassName"], "runc")
        pod, _ = container(full()["objs"], "db")
        self.assertEqual(pod["spec"]["runtimeClassName"], "gvisor")

    def test_networks_and_network_mode_none(self):
        objs = full()["objs"]
        pod, _ = container(objs, "db")
        labels = pod["metadata"]["labels"]
        self.assertTrue(any("front" in k for k in labels), labels)
        self.assertTrue(any("back" in k for k in labels), labels)
        self.assertIn(("CiliumNetworkPolicy", "agent-env-rel-svc-worker-isolate"), objs)
        self.assertEqual(full()["values"]["networks"], {"front": {}, "back": {}})

    def test_extension_keys(self):
        objs = full()["objs"]
        self.assertIn(("ServiceAccount", "runner"), objs)
        pod, _ = container(objs, "default")
        self.assertEqual(pod["spec"]["serviceAccountName"], "runner")
        self.assertIs(pod["spec"]["automountServiceAccountToken"], False)
        egress = str(objs[("CiliumNetworkPolicy", "agent-env-rel-sandbox-egress")]["spec"])
        self.assertIn("pypi.org", egress)
        self.assertIn("*.debian.org", egress)
        self.assertIn("world", egress)

    def test_x_k8s_alias(self):
        v, _ = translate(write("xk8s.compose.yaml",
                               "services:\n  default:\n    image: alpine\n"
                               "x-k8s:\n  allow_domains: [example.com]\n"))
        self.assertEqual(v["allowDomains"], ["example.com"])

    def test_docker_keys(self):
        # --backend docker: the keys only an image-running engine honours, under docker:
        os.makedirs(os.path.join(TMP, "ctx"), exist_ok=True)
        path = write("dk.compose.yaml",
                     "services:\n  main:\n    x-default: true\n    build: ctx\n    init: true\n"
                     "    read_only: true\n    ports: [\"8080:80\", \"10.0.0.1:9000:90/udp\", \"70\"]\n"
                     "    depends_on:\n      db: {condition: service_healthy}\n"
                     "  db:\n    image: alpine\n    depends_on: [main]\n")
        rc, out, err = sbx("compose2values", "--backend", "docker", path)
        self.assertEqual(rc, 0, err)
        v = yaml.safe_load(out)["services"]
        self.assertNotIn("image", v["default"])  # built: the docker backend names it
        self.assertEqual(v["default"]["docker"], {
            "init": True, "ports": ["127.0.0.1:8080:80/tcp", "10.0.0.1:9000:90/udp", "127.0.0.1::70/tcp"],
            "dependsOn": {"db": "service_healthy"},
            "build": {"context": os.path.realpath(os.path.join(TMP, "ctx")), "dockerfile": "Dockerfile"}})
        self.assertEqual(v["default"]["securityContext"], {"readOnlyRootFilesystem": True})
        self.assertEqual(v["db"]["docker"], {"dependsOn": {"default": "service_started"}})  # renamed
        # without --backend docker the same keys stay refused, as before
        rc, _, err = sbx("compose2values", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("unsupported key 'read_only'", err)

    def test_docker_bad_keys(self):
        for text, msg in (("ports: [\"80-90:80\"]", "ranges are not supported"),
                          ("depends_on: [nope]", "'nope' is not a service"),
                          ("depends_on: {db: {condition: service_completed_successfully}}", "use service_healthy"),
                          ("build: missing-dir", "build context 'missing-dir' does not exist")):
            path = write("dkbad.compose.yaml", f"services:\n  default:\n    image: a\n    {text}\n  db:\n    image: a\n")
            rc, _, err = sbx("compose2values", "--backend", "docker", path)
            self.assertNotEqual(rc, 0, text)
            self.assertIn(msg, err)
            self.assertRegex(err, r"dkbad.compose.yaml:\d+:\d+")
        path = write("dknodef.compose.yaml", "services:\n  a:\n    image: x\n  b:\n    image: x\n")
        rc, _, err = sbx("compose2values", "--backend", "docker", path)
        self.assertIn("no default service", err)

    def test_every_service_gets_dns_record(self):
        objs = full()["objs"]
        for svc in ("default", "db", "worker", "sidecar"):
            self.assertIn(("Service", f"agent-env-rel-{svc}"), objs)

    def test_single_service_keeps_its_name(self):
        # as in the k8s sandbox: a lone service is not renamed, and the chart adds its
        # own default service (python:3.12-bookworm) next to it
        v, err = translate(write("one.compose.yaml", "services:\n  app:\n    image: alpine:3\n"))
        self.assertEqual(list(v["services"]), ["app"])
        self.assertNotIn("becomes the sandbox's 'default'", err)
        objs = render(yaml.safe_dump(v))
        self.assertEqual(set(k[1] for k in objs if k[0] == "StatefulSet"),
                         {"agent-env-rel-default", "agent-env-rel-app"})
        _, c = container(objs, "app")
        self.assertEqual(c["image"], "alpine:3")
        _, d = container(objs, "default")
        self.assertEqual(d["image"], "python:3.12-bookworm")
        self.assertEqual(d["command"], ["tail", "-f", "/dev/null"])  # the chart's default

    def test_single_service_x_default_renamed(self):
        # x-default renames even a lone service, and its compose name need not be a
        # Kubernetes name then (it is not used); it resolves only when it is one
        v, _ = translate(write("xd.compose.yaml", "services:\n  calc_improvement:\n    image: a\n"
                                                 "    x-default: true\n"))
        self.assertEqual(list(v["services"]), ["default"])
        self.assertNotIn("x-default", v["services"]["default"])
        self.assertNotIn("additionalDnsRecords", v["services"]["default"])
        v, _ = translate(write("xd2.compose.yaml", "services:\n  calc:\n    image: a\n    x-default: true\n"))
        self.assertEqual(v["services"]["default"]["additionalDnsRecords"], ["calc"])
        render(yaml.safe_dump(v))

    def test_image_defaults_to_chart_image(self):
        v, err = translate(write("noimage.compose.yaml", "services:\n  default:\n    build: .\n"
                                                       "  other:\n    command: sleep 1\n"))
        for svc in ("default", "other"):
            self.assertEqual(v["services"][svc]["image"], "python:3.12-bookworm")
        self.assertRegex(err, r"noimage\.compose\.yaml:3:\d+: service 'default': 'build' ignored: .*python:3\.12")
        objs = render(yaml.safe_dump(v))
        self.assertEqual(container(objs, "other")[1]["image"], "python:3.12-bookworm")

    def test_build_and_x_local_one_warning(self):
        _, err = translate(write("local.compose.yaml", "services:\n  default:\n    image: a\n"
                                                     "    x-local: 'true'\n    build: {context: .}\n"))
        lines = [l for l in err.splitlines() if "ignored" in l]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("'x-local' and 'build' ignored", lines[0])

    def test_network_mode_bridge_is_default(self):
        v, _ = translate(write("bridge.compose.yaml", "services:\n  default:\n    image: a\n"
                                                    "    network_mode: bridge\n"))
        self.assertNotIn("networkIsolated", v["services"]["default"])

    def test_service_extension_resources(self):
        text = ("services:\n  default:\n    image: a\n    mem_limit: 32g\n    cpus: 4.0\n"
                "    x-inspect_k8s_sandbox:\n      resources:\n        requests: {ephemeral-storage: 80Gi}\n"
                "  only:\n    image: a\n    x-k8s:\n      resources:\n        limits: {hugepages-2Mi: 128Mi}\n"
                "  req:\n    image: a\n    x-k8s: {resources: {requests: {ephemeral-storage: 1Gi}}}\n")
        v, _ = translate(write("ext.compose.yaml", text))
        s = v["services"]
        self.assertEqual(s["default"]["resources"], {
            "limits": {"cpu": 4.0, "memory": "32Gi"},
            "requests": {"cpu": 4.0, "memory": "32Gi", "ephemeral-storage": "80Gi"}})
        self.assertEqual(s["only"]["resources"], {"limits": {"hugepages-2Mi": "128Mi"}})
        self.assertEqual(s["req"]["resources"], {"requests": {"ephemeral-storage": "1Gi"}})
        objs = render(yaml.safe_dump(v))
        self.assertEqual(container(objs, "default")[1]["resources"]["requests"]["ephemeral-storage"], "80Gi")
        self.assertNotIn("ephemeral-storage", container(objs, "default")[1]["resources"]["limits"])

    def test_seccomp_profiles(self):
        text = ("services:\n  default:\n    image: a\n    user: 1000:1001\n"
                "    security_opt: ['seccomp=./profiles/no-aslr.json']\n"
                "  b:\n    image: a\n    security_opt: ['seccomp:builtin']\n"
                "  c:\n    image: a\n    security_opt: ['seccomp=unconfined']\n")
        v, err = translate(write("seccomp.compose.yaml", text))
        s = v["services"]
        self.assertEqual(s["default"]["securityContext"], {
            "runAsUser": 1000, "runAsGroup": 1001,
            "seccompProfile": {"type": "Localhost", "localhostProfile": "./profiles/no-aslr.json"}})
        self.assertEqual(s["b"]["securityContext"], {"seccompProfile": {"type": "RuntimeDefault"}})
        self.assertEqual(s["c"]["securityContext"], {"seccompProfile": {"type": "Unconfined"}})
        self.assertRegex(err, r"sbx: note: .*seccomp\.compose\.yaml:5:\d+: .*/var/lib/kubelet/seccomp/")
        render(yaml.safe_dump(v))

    def test_numbers_stay_numbers(self):
        v, _ = translate(write("num.compose.yaml", "services:\n  default:\n    image: a\n    cpus: 0.5\n"
                                                 "    environment: {NUM: 42, STR: '42', OCT: 010}\n"))
        d = v["services"]["default"]
        self.assertEqual(d["env"], [{"name": "NUM", "value": 42}, {"name": "STR", "value": "42"},
                                    {"name": "OCT", "value": "010"}])
        self.assertEqual(d["resources"]["limits"]["cpu"], 0.5)
        _, c = container(render(yaml.safe_dump(v)), "default")
        self.assertIn({"name": "NUM", "value": "42"}, c["env"])  # the chart makes env values text

    def test_values_key_order(self):
        rc, out, err = sbx("compose2values", write("order2.compose.yaml", (
            "x-k8s: {allow_domains: [a.org]}\nnetworks: {n: {internal: true}}\n"
            "volumes: {v: {}}\nservices:\n  default: {image: a, networks: [n], volumes: ['v:/v']}\n")))
        self.assertEqual(rc, 0, err)
        self.assertEqual(list(yaml.safe_load(out)), ["services", "volumes", "networks", "allowDomains"])

    def test_memswap_limit_reported(self):
        v, err = translate(write("swap.compose.yaml", "services:\n  default:\n    image: a\n"
                                                    "    mem_limit: 1G\n    memswap_limit: 1G\n"))
        self.assertNotIn("memswap_limit", v["services"]["default"])
        self.assertIn("'memswap_limit: 1G' ignored", err)

    def test_duration_units(self):
        # compose durations of hours, minutes and seconds, in that order, become seconds;
        # days, sub-second units, unknown units and out-of-order parts are refused
        for text, secs in (("42s", 42), ("42m", 2520), ("42h", 151200), ("1h2m3s", 3723), ("2m5s", 125)):
            with self.subTest(duration=text):
                v, _ = translate(write("dur.compose.yaml", "services:\n  default:\n    image: a\n"
                                       f"    healthcheck: {{test: [CMD, x], interval: {text}}}\n"))
                self.assertEqual(v["services"]["default"]["readinessProbe"]["periodSeconds"], secs)
        for text in ("1x", "1d", "1us", "1ns", "1s2m3h"):
            with self.subTest(duration=text):
                rc, _, err = sbx("compose2values", write("dur.compose.yaml", "services:\n  default:\n"
                                 f"    image: a\n    healthcheck: {{test: [CMD, x], interval: {text}}}\n"))
                self.assertEqual(rc, 1)
                self.assertIn(f"dur.compose.yaml:4:45: service 'default': 'interval: {text}'", err)

    def test_size_units(self):
        # docker sizes (b, k, m, g; with or without a trailing b, any case) become
        # Kubernetes binary quantities; plain bytes stay a bare number
        for text, quantity in (("512b", "512"), ("512B", "512"), ("1k", "1Ki"), ("1kb", "1Ki"),
                               ("1K", "1Ki"), ("1KB", "1Ki"), ("2m", "2Mi"), ("2MB", "2Mi"),
                               ("3g", "3Gi"), ("3GB", "3Gi"), ("1.5g", "1.5Gi")):
            with self.subTest(size=text):
                v, _ = translate(write("size.compose.yaml",
                                       f"services:\n  default:\n    image: a\n    mem_limit: {text}\n"))
                self.assertEqual(v["services"]["default"]["resources"],
                                 {"limits": {"memory": quantity}, "requests": {"memory": quantity}})

    def test_network_settings_dropped(self):
        # a network with no driver is a bridge; 'internal' is accepted either way (every
        # Kubernetes network is internal) and the chart gets an empty mapping
        v, _ = translate(write("netset.compose.yaml", "services:\n  default:\n    image: a\n"
                               "    networks: [n, m]\nnetworks:\n  n: {}\n  m: {internal: false}\n"))
        self.assertEqual(v["networks"], {"n": {}, "m": {}})
        self.assertEqual(v["services"]["default"]["networks"], ["n", "m"])

    def test_named_default_wins_over_x_default(self):
        # a service already named default stays the default; one marked x-default next
        # to it keeps its own name
        v, _ = translate(write("dflt.compose.yaml", "services:\n  default: {image: d}\n"
                                                   "  other-service: {image: o, x-default: true}\n"))
        self.assertEqual(list(v["services"]), ["default", "other-service"])
        self.assertEqual(v["services"]["default"]["image"], "d")
        self.assertNotIn("x-default", v["services"]["other-service"])

    def test_hostname_of_own_name_and_entrypoint_words(self):
        # hostname equal to the service's name is what Kubernetes gives anyway: dropped;
        # a string entrypoint is split into words like command
        v, _ = translate(write("host.compose.yaml", "services:\n  svc:\n    image: a\n"
                                                   "    hostname: svc\n    entrypoint: /bin/sh -c\n"))
        self.assertNotIn("hostname", v["services"]["svc"])
        self.assertEqual(v["services"]["svc"]["command"], ["/bin/sh", "-c"])

    def test_default_service_order(self):
        cases = [("services:\n  a: {image: x}\n  default: {image: y}\n", ["default", "a"], "y"),
                 ("services:\n  a: {image: x}\n  b: {image: y, x-default: true}\n", ["default", "a"], "y"),
                 ("services:\n  a: {image: x}\n  b: {image: y}\n", ["default", "b"], "x")]
        for text, names, image in cases:
            with self.subTest(text=text):
                v, _ = translate(write("order.compose.yaml", text))
                self.assertEqual(list(v["services"]), names)
                self.assertEqual(v["services"]["default"]["image"], image)

    def test_output_quotes_text(self):
        v, _ = translate(write("quote.compose.yaml",
                               "services:\n  default:\n    image: 'on'\n    command: [1.10, 'null', yes]\n"
                               "    environment: {A: no, B: 010}\n"))
        d = v["services"]["default"]
        self.assertEqual(d["image"], "on")
        self.assertEqual(d["args"], ["1.10", "null", "yes"])
        self.assertEqual(d["env"], [{"name": "A", "value": "no"}, {"name": "B", "value": "010"}])

    def test_output_file(self):
        out = os.path.join(TMP, "out-values.yaml")
        rc, stdout, err = sbx("compose2values", os.path.join(FILES, "full.compose.yaml"), "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(stdout, "")
        with open(out) as f:
            self.assertEqual(yaml.safe_load(f), full()["values"])

    # ---- warnings ----

    def test_ignored_keys_warn(self):
        err = full()["stderr"]
        for key, line in (("expose", 33), ("init", 34), ("build", 63), ("memswap_limit: 1g", 64)):
            self.assertRegex(err, rf"full\.compose\.yaml:{line}:\d+: service '[a-z]+': '{key}' ignored: \w")
        rc, _, err = sbx("compose2values", write("w.compose.yaml", (
            "services:\n  default:\n    image: a\n    mem_limit: 1g\n"
            "    deploy: {resources: {limits: {memory: 2g}}}\n"
            "    healthcheck: {test: [CMD, 'true'], start_interval: 1s}\n"
            "networks:\n  n1: {driver: bridge}\n")))
        self.assertEqual(rc, 0, err)
        self.assertIn("'mem_limit' ignored: deploy.resources is set", err)
        self.assertIn("'start_interval' ignored", err)
        self.assertIn("w.compose.yaml:8:3: network 'n1' is not internal", err)

    # ---- errors: file, line and column, the key, and the fix ----

    BAD = [
        ("unsupported-service-key", "services:\n  default:\n    image: a\n    privileged: true\n",
         ["4:5", "service 'default'", "unsupported key 'privileged'", "values.yaml"]),
        ("unsupported-top-key", "services:\n  default: {image: a}\nconfigs: {}\n",
         ["3:1", "unsupported key 'configs'"]),
        ("no-services", "version: '3'\n", ["no-services.compose.yaml", "'services'"]),
        ("empty-file", "", ["empty"]),
        ("not-yaml", "services:\n  a: [unclosed\n", ["not-yaml.compose.yaml:", "invalid YAML"]),
        ("bad-service-name", "services:\n  My_Svc: {image: a}\n", ["2:3", "'My_Svc'", "lower-case"]),
        ("env-no-value-map", "services:\n  default:\n    image: a\n    environment:\n      TOKEN:\n",
         ["5:13", "'TOKEN' has no value"]),
        ("env-not-text", "services:\n  default:\n    image: a\n    environment: {A: [1]}\n",
         ["4:22", "'A' must be text"]),
        ("env-no-equals", "services:\n  default:\n    image: a\n    environment: [TOKEN]\n",
         ["4:19", "'TOKEN' has no '='"]),
        ("bind-mount", "services:\n  default:\n    image: a\n    volumes: ['./src:/src']\n",
         ["4:15", "bind mount"]),
        ("undefined-volume", "services:\n  default:\n    image: a\n    volumes: ['data:/d']\n",
         ["4:15", "volume 'data' is not defined"]),
        ("volume-settings", "services:\n  default: {image: a}\nvolumes:\n  v:\n    driver: local\n",
         ["5:5", "only empty volumes"]),
        ("long-volume-syntax", "services:\n  default:\n    image: a\n    volumes:\n      - {type: volume, source: v, target: /v}\n"
         "volumes: {v: {}}\n", ["5:9", "short volume syntax"]),
        ("healthcheck-test", "services:\n  default:\n    image: a\n    healthcheck: {test: [HTTP, x]}\n",
         ["4:25", "'HTTP'", "CMD, CMD-SHELL"]),
        ("duration", "services:\n  default:\n    image: a\n    healthcheck: {test: [CMD, x], interval: 1.5s}\n",
         ["4:45", "'interval: 1.5s'", "1m30s"]),
        ("memory", "services:\n  default:\n    image: a\n    mem_limit: 1tb\n", ["4:16", "'mem_limit: 1tb'"]),
        ("cpus", "services:\n  default:\n    image: a\n    cpus: lots\n", ["4:11", "CPUs"]),
        ("user-name", "services:\n  default:\n    image: a\n    user: www-data\n",
         ["4:11", "numeric", "1000:1000"]),
        ("security-opt", "services:\n  default:\n    image: a\n    security_opt: ['apparmor:x']\n",
         ["4:20", "'apparmor:x'"]),
        ("network-mode-host", "services:\n  default:\n    image: a\n    network_mode: host\n",
         ["4:19", "'host'", "only 'none'"]),
        ("network-mode-and-networks", "services:\n  default:\n    image: a\n    network_mode: none\n"
         "    networks: [n]\nnetworks: {n: {internal: true}}\n", ["5:15", "cannot both"]),
        ("undefined-network", "services:\n  default:\n    image: a\n    networks: [n]\n",
         ["4:16", "network 'n' is not defined"]),
        ("network-driver", "services:\n  default: {image: a}\nnetworks:\n  n: {driver: overlay}\n",
         ["4:15", "'overlay'"]),
        ("hostname", "services:\n  default:\n    image: a\n    hostname: other\n", ["4:15", "'other'"]),
        ("two-x-default", "services:\n  a: {image: a, x-default: true}\n  b: {image: b, x-default: true}\n",
         ["3:28", "both marked x-default"]),
        ("extension-key", "services:\n  default: {image: a}\nx-inspect_k8s_sandbox:\n  allow_everything: true\n",
         ["4:3", "'allow_everything'"]),
        ("extension-type", "services:\n  default: {image: a}\nx-k8s:\n  allow_domains: example.com\n",
         ["4:18", "must be a list"]),
        ("both-extensions", "services:\n  default: {image: a}\nx-k8s: {}\nx-inspect_k8s_sandbox: {}\n",
         ["both"]),
        ("volume-name-collision", "services:\n  default: {image: a}\nvolumes:\n  a_b:\n  a.b:\n",
         ["5:3", "both become 'a-b'"]),
        ("deploy-key", "services:\n  default:\n    image: a\n    deploy: {mode: global}\n",
         ["4:14", "unsupported key 'mode'"]),
        ("deploy-resources-x-key", "services:\n  default:\n    image: a\n    deploy: {resources: {x-a: 1}}\n",
         ["4:26", "unsupported key 'x-a'"]),
        ("healthcheck-disable", "services:\n  default:\n    image: a\n    healthcheck: {test: [CMD, x], disable: true}\n",
         ["4:35", "unsupported key 'disable'"]),
        ("service-both-extensions", "services:\n  default:\n    image: a\n    x-inspect_k8s_sandbox: {}\n"
         "    x-k8s: {}\n", ["5:12", "both 'x-inspect_k8s_sandbox' and 'x-k8s'"]),
        ("service-extension-key", "services:\n  default:\n    image: a\n    x-inspect_k8s_sandbox: {foo: 1}\n",
         ["4:29", "unsupported key 'foo'", "resources"]),
        ("service-extension-reservations", "services:\n  default:\n    image: a\n"
         "    x-k8s: {resources: {reservations: {ephemeral-storage: 1Gi}}}\n",
         ["4:25", "unsupported key 'reservations'", "requests, limits"]),
        ("service-extension-conflict", "services:\n  default:\n    image: a\n    mem_limit: 32g\n"
         "    x-k8s: {resources: {requests: {memory: 16Gi}}}\n",
         ["5:36", "requests.memory", "already set by mem_limit"]),
        ("seccomp-absolute", "services:\n  default:\n    image: a\n    security_opt: ['seccomp=/etc/p.json']\n",
         ["4:20", "'/etc/p.json'", "relative path"]),
        ("seccomp-traversal", "services:\n  default:\n    image: a\n    security_opt: ['seccomp=p/../../e.json']\n",
         ["4:20", "without '..'"]),
        ("seccomp-empty", "services:\n  default:\n    image: a\n    security_opt: ['seccomp=']\n",
         ["4:20", "relative path"]),
        ("security-opt-scalar", "services:\n  default:\n    image: a\n    security_opt: seccomp=unconfined\n",
         ["4:19", "must be a list"]),
        ("sa-name-number", "services:\n  default: {image: a}\nx-k8s:\n  service_account_name: 42\n",
         ["4:25", "'service_account_name' must be text", "quote it"]),
        ("sa-create-quoted", "services:\n  default: {image: a}\nx-k8s:\n  service_account_create: 'false'\n",
         ["4:27", "must be true or false"]),
        ("services-not-mapping", "services: 42\n", ["1:11", "'services' must be a mapping"]),
        ("user-group-name", "services:\n  default:\n    image: a\n    user: '1000:staff'\n",
         ["4:11", "'1000:staff'", "numeric"]),
        ("security-opt-with-seccomp", "services:\n  default:\n    image: a\n"
         "    security_opt: [seccomp=unconfined, 'no-new-privileges:true']\n",
         ["4:40", "'no-new-privileges:true'"]),
        ("allow-entities-type", "services:\n  default: {image: a}\nx-k8s:\n  allow_entities: world\n",
         ["4:19", "'allow_entities' must be a list"]),
        ("automount-quoted", "services:\n  default: {image: a}\nx-k8s:\n  automount_service_account_token: \"true\"\n",
         ["4:36", "must be true or false"]),
    ]

    def test_errors(self):
        for name, text, wants in self.BAD:
            with self.subTest(case=name):
                path = write(f"{name}.compose.yaml", text)
                rc, out, err = sbx("compose2values", path)
                self.assertEqual(rc, 1, f"exit {rc}, stdout {out!r}")
                self.assertEqual(out, "")
                self.assertIn(path, err)
                for w in wants:
                    self.assertIn(w, err)

    def test_error_keeps_existing_output(self):
        out = write("keep.yaml", "old: values\n")
        rc, _, _ = sbx("compose2values", write("bad.compose.yaml", "services: {a: {image: a, ports: [80]}}\n"),
                       "-o", out)
        self.assertEqual(rc, 1)
        with open(out) as f:
            self.assertEqual(f.read(), "old: values\n")

    def test_missing_file(self):
        rc, _, err = sbx("compose2values", os.path.join(TMP, "nope.compose.yaml"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot open", err)
        self.assertIn("nope.compose.yaml", err)

    # ---- sbx up -f compose.yaml ----

    def test_up_uses_translation(self):
        env = dict(os.environ, SBX_STATE_DIR=os.path.join(TMP, "state"))
        os.makedirs(env["SBX_STATE_DIR"], exist_ok=True)
        path = write("up.compose.yaml", "services:\n  web: {image: a, x-default: true}\n  db: {image: b}\n")
        rc, out, err = sbx("up", "cbox", "-f", path, "--json", env=env)
        self.assertEqual(rc, 1)  # a local box cannot run an image: the error says what can
        self.assertIn("runs image a", err)
        self.assertIn("--rootfs", err)
        self.assertFalse(os.path.exists(os.path.join(env["SBX_STATE_DIR"], "cbox")))
        rc, out, err = sbx("up", "cbox", "-f", path, "--json", "--host", env=env)
        self.assertEqual(rc, 0, err)
        try:
            self.assertEqual(yaml.safe_load(out)["services"], ["default", "db"])
            with open(os.path.join(env["SBX_STATE_DIR"], "cbox", "values.yaml")) as f:
                self.assertEqual(yaml.safe_load(f)["services"]["db"]["image"], "b")
            rc, out, err = sbx("exec", "cbox/db", "--", "echo", "hi", env=env)
            self.assertEqual((rc, out), (0, "hi\n"), err)
        finally:
            sbx("down", "cbox", env=env)
        bad = write("upbad.compose.yaml", "services:\n  default: {image: a, privileged: true}\n")
        rc, _, err = sbx("up", "cbad", "-f", bad, env=env)
        self.assertEqual(rc, 1)
        self.assertIn("unsupported key 'privileged'", err)
        self.assertFalse(os.path.exists(os.path.join(env["SBX_STATE_DIR"], "cbad")))


def main():
    global HELM
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    HELM = os.environ.get("HELM")
    if not HELM:
        HELM, why = get_helm(4)
        if not HELM or not helm_version(HELM):
            print(f"FAIL compose.helm: no usable helm 4: {why}")
            return 1
    suite = unittest.TestSuite()
    for name in unittest.TestLoader().getTestCaseNames(Compose):
        if only in name:
            suite.addTest(Compose(name))
    result = LineResult("compose")
    suite.run(result)
    subprocess.run(["rm", "-rf", TMP])
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
