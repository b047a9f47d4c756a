"""objects.py — the emulator's generic object store: every kind the agent-env chart renders and
helm's release storage (Secrets) kept as plain JSON by (group/version, namespace, resource, name),
with create (POST), get, list by label, replace (PUT), patch (merge, strategic-merge treated as
merge, JSON patch, server-side apply) and delete; the discovery documents that let helm and
kubectl map those kinds to paths; and a controller that turns each StatefulSet or Deployment into
emulated pods carrying its pod template's labels (and deletes them with it).

Imported by emulator.py, which keeps pods, events and exec itself and passes this module its
Store (create_pod/delete_pod) and lock.
"""
import copy
import datetime
import json
import threading
import uuid

import yaml

# group/version -> [(resource, kind, namespaced, short names)]
KINDS = {
    "v1": [("configmaps", "ConfigMap", True, ["cm"]), ("secrets", "Secret", True, []),
           ("services", "Service", True, ["svc"]), ("persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
           ("serviceaccounts", "ServiceAccount", True, ["sa"])],
    "apps/v1": [("statefulsets", "StatefulSet", True, ["sts"]), ("deployments", "Deployment", True, ["deploy"])],
    "cilium.io/v2": [("ciliumnetworkpolicies", "CiliumNetworkPolicy", True, ["cnp"])],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True, ["netpol"])],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure" if code >= 300 else "Success",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def kind_of(gv, resource):
    for r, kind, namespaced, _ in KINDS.get(gv, []):
        if r == resource:
            return kind, namespaced
    return None, None


def resource_list(gv):
    res = [{"name": r, "singularName": kind.lower(), "namespaced": ns, "kind": kind, "verbs": VERBS,
            "shortNames": short} for r, kind, ns, short in KINDS[gv]]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}


def group_list():
    groups = []
    for gv in KINDS:
        if "/" not in gv:
            continue
        g, v = gv.split("/")
        groups.append({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                       "preferredVersion": {"groupVersion": gv, "version": v}})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def openapi_v3(path):
    """/openapi/v3 (the index) or /openapi/v3/api/v1, /openapi/v3/apis/G/V: one schema per kind
    that accepts any object (clients validate against these before sending)."""
    if not path:
        return {"paths": {("api/" if gv == "v1" else "apis/") + gv: {"serverRelativeURL": "/openapi/v3/%s%s?hash=0" % (
            "api/" if gv == "v1" else "apis/", gv)} for gv in KINDS}}
    gv = path[4:] if path.startswith("api/") else path[5:]
    group, _, version = gv.rpartition("/")
    schemas = {}
    for _, kind, _, _ in KINDS.get(gv, []) + ([("pods", "Pod", True, []), ("namespaces", "Namespace", False, [])]
                                            if gv == "v1" else []):
        schemas["emulated.%s.%s" % (gv.replace("/", "."), kind)] = {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {},
            "components": {"schemas": schemas}}


def merge(dst, patch):
    """JSON merge patch (RFC 7386)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(dst) if isinstance(dst, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def json_patch(doc, ops):
    """RFC 6902 add/replace/remove/test, enough for helm's patches."""
    doc = copy.deepcopy(doc)
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in path[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = path[-1] if path else None
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
    return doc


class Objects:
    def __init__(self, pods, lock, parse_selector, matches):
        self.pods = pods  # the emulator's Store: create_pod, delete_pod, next_rv, pods
        self.lock = lock
        self.parse_selector = parse_selector
        self.matches = matches
        self.objs = {}  # (gv, ns, resource, name) -> object

    # ---- the REST verbs: each returns (code, body)

    def handle(self, method, gv, ns, resource, name, query, body, ctype):
        kind, namespaced = kind_of(gv, resource)
        if not kind:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        ns = ns if namespaced else ""
        key = (gv, ns, resource, name)
        group = gv.split("/")[0] if "/" in gv else ""
        nf = status(404, "NotFound", '%s "%s" not found' % (resource if not group else resource + "." + group, name),
                    {"name": name, "group": group, "kind": resource})
        with self.lock:
            if name is None and method == "GET":
                return 200, self.list(gv, ns, resource, kind, query)
            if name is None and method == "POST":
                return self.create(gv, ns, resource, kind, body)
            obj = self.objs.get(key)
            if method == "GET":
                return (200, obj) if obj else (404, nf)
            if method == "DELETE":
                if not obj:
                    return 404, nf
                del self.objs[key]
                self.on_deleted(kind, ns, obj)
                return 200, status(200, "", "", {"name": name, "group": group, "kind": resource,
                                                 "uid": obj["metadata"].get("uid")}) | {"status": "Success"}
            if method == "PUT":
                if not obj:
                    return 404, nf
                body.setdefault("metadata", {})["namespace"] = ns or None
                return 200, self.store(key, kind, gv, body, obj)
            if method == "PATCH":
                return self.patch(key, kind, gv, obj, body, ctype, query, nf)
        return 405, status(405, "MethodNotAllowed", "method %s is not allowed here" % method)

    def list(self, gv, ns, resource, kind, query):
        sel = self.parse_selector(query.get("labelSelector", [""])[0])
        items = [o for (g, n, r, _), o in sorted(self.objs.items())
                 if g == gv and r == resource and (not ns or n == ns) and
                 self.matches(sel, o["metadata"].get("labels") or {})]
        return {"kind": kind + "List", "apiVersion": gv, "metadata": {"resourceVersion": str(self.pods.rv)},
                "items": items}

    def create(self, gv, ns, resource, kind, body):
        name = (body.get("metadata") or {}).get("name")
        if not name:
            return 422, status(422, "Invalid", "%s is invalid: metadata.name: Required value" % kind)
        key = (gv, ns, resource, name)
        if key in self.objs:
            return 409, status(409, "AlreadyExists", '%s "%s" already exists' % (resource, name),
                               {"name": name, "kind": resource})
        return 201, self.store(key, kind, gv, body, None)

    def patch(self, key, kind, gv, obj, body, ctype, query, nf):
        if "apply-patch" in ctype:  # server-side apply: create or merge
            patch = body
            if not obj:
                patch.setdefault("metadata", {})["name"] = key[3]
                return 201, self.store(key, kind, gv, patch, None)
            return 200, self.store(key, kind, gv, merge(obj, patch), obj)
        if not obj:
            return 404, nf
        if "json-patch" in ctype:
            new = json_patch(obj, body)
        else:
            new = merge(obj, body)
        return 200, self.store(key, kind, gv, new, obj)

    def store(self, key, kind, gv, body, old):
        gv_, ns, resource, name = key
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = kind, gv
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if ns:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta.pop("managedFields", None)
        meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else now()
        meta["resourceVersion"] = self.pods.next_rv()
        meta["generation"] = (old["metadata"].get("generation", 1) + 1) if old else 1
        if kind == "Secret" and "stringData" in obj:  # folded into data, as the API server does
            import base64
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(v.encode()).decode()
        self.objs[key] = obj
        if not old:
            self.on_created(kind, ns, obj)
        return obj

    # ---- the controller: workloads become pods

    def workload_pods(self, kind, obj):
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        n = spec.get("replicas", 1)
        if kind == "StatefulSet":
            return ["%s-%d" % (name, i) for i in range(n)]
        return ["%s-%s" % (name, uuid.uuid5(uuid.NAMESPACE_DNS, "%s/%d" % (obj["metadata"]["uid"], i)).hex[:10])
                for i in range(n)]

    def on_created(self, kind, ns, obj):  # with the lock held
        if kind not in ("StatefulSet", "Deployment"):
            return
        tmpl = (obj.get("spec") or {}).get("template") or {}
        meta = tmpl.get("metadata") or {}
        for pod in self.workload_pods(kind, obj):
            threading.Thread(target=self.pods.create_pod, daemon=True, args=(ns, {
                "metadata": {"name": pod, "labels": meta.get("labels") or {},
                             "annotations": meta.get("annotations") or {}},
                "spec": tmpl.get("spec") or {}})).start()  # create_pod takes the lock itself

    def on_deleted(self, kind, ns, obj):
        if kind not in ("StatefulSet", "Deployment"):
            return
        for pod in self.workload_pods(kind, obj):
            threading.Thread(target=self.pods.delete_pod, daemon=True, args=(ns, pod)).start()


def load_body(raw, ctype):
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        if "yaml" in ctype:
            return yaml.safe_load(raw)
        raise
