#!/usr/bin/env python3
"""emulator.py — a small Kubernetes API server for tests, where a pod is a local directory
plus the processes exec'd "in" it.

    python3 tests/k8s/emulator.py --tls CERTDIR --root DIR [--token TOKEN] [--token-file FILE]
        [--idle-timeout-ms N] [--pod NS/NAME[:LABEL=V,...]]...

Prints "PORT N" on its first line, then serves HTTPS on 127.0.0.1:N until its stdin closes.
CERTDIR comes from tests/net/make-certs.sh (server.pem/key, ca.pem: client certificates signed
by that CA are accepted, as is `Authorization: Bearer TOKEN`; with --token-file, only the token
the file holds at the time of each request: rotating it expires the old one).

What it speaks (the parts of the real API that kubectl and sbx use):
- discovery: /version, /api, /apis, /api/v1 (legacy, non-aggregated documents)
- pods: create (POST), get, list and watch by label selector (one namespace or all), delete;
  `as=Table` lists for `kubectl get`. Each pod's directory is ROOT/NS/NAME.
- every other kind the agent-env chart renders, and helm's release Secrets: objects.py (generic
  create/get/list/put/patch/delete incl. server-side apply, discovery for /apis, a controller
  turning StatefulSets and Deployments into pods); protobuf request bodies of Secrets and
  ConfigMaps (what client-go sends for helm's storage) through kproto.py. Enough for real
  `helm install` (with --disable-openapi-validation: no OpenAPI documents here), `helm list`
  and `helm uninstall`.
- events: list by namespace with fieldSelector (involvedObject.name=...); the emulator records
  Scheduled/Pulled/Created/Started for each pod it creates.
- pods/exec over WebSocket, subprotocols v5.channel.k8s.io and v4.channel.k8s.io (the
  annotation emulator.sbx/no-v5: "true" on a pod makes it a v4-only server): channel bytes 0-4,
  255 close-stdin (v5), the first empty stdout message, the final metav1.Status on channel 3
  (NonZeroExitCode with the ExitCode cause), then a close frame. The command runs with the
  pod's directory as its working directory. Frames over 32 MiB close the stream with 1009.
- --idle-timeout-ms: like the kubelet's streamingConnectionIdleTimeout, an exec stream with no
  data frame in either direction for that long is cut (pings do not count).
Wire facts: /work/shared/notes/wire-protocols.md section 1.
"""
import datetime
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import kproto
import objects

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
import peer  # noqa: E402
import wsmask  # noqa: E402
from wsframe import ws_frame  # noqa: E402

MAX_FRAME = 32 << 20
EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
ARGS = {}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


# ---------------------------------------------------------------- the object store

class Store:
    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.rv = 1
        self.pods = {}  # (ns, name) -> pod
        self.events = []  # event objects
        self.history = []  # (rv, type, pod) for watches
        self.watchers = []  # (ns or None, selector, queue)

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def pod_dir(self, ns, name):
        return os.path.join(self.root, ns, name)

    def add_event(self, ns, pod, reason, message, etype="Normal"):
        rv = self.next_rv()
        self.events.append({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": "%s.%s" % (pod, uuid.uuid4().hex[:12]), "namespace": ns, "resourceVersion": rv,
                         "creationTimestamp": now()},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1"},
            "reason": reason, "message": message, "type": etype, "count": 1,
            "firstTimestamp": now(), "lastTimestamp": now(), "source": {"component": "emulator"}})

    def create_pod(self, ns, body):
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return 422, status_obj(422, "Invalid", "Pod is invalid: metadata.name: Required value")
        spec = body.get("spec") or {}
        containers = spec.get("containers") or [{"name": "main", "image": "emulated"}]
        with self.lock:
            if (ns, name) in self.pods:
                return 409, status_obj(409, "AlreadyExists", 'pods "%s" already exists' % name)
            os.makedirs(self.pod_dir(ns, name), exist_ok=True)
            ann = meta.get("annotations") or {}
            waiting = ann.get("emulator.sbx/waiting")  # e.g. ImagePullBackOff: scheduled, never starts
            phase = "Pending" if waiting else ann.get("emulator.sbx/phase", "Running")  # Pending: unschedulable
            ready = phase == "Running"
            if ready:
                state = {"running": {"startedAt": now()}}
            elif waiting:
                state = {"waiting": {"reason": waiting, "message": 'Back-off pulling image "emulated"'}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            scheduled = ready or bool(waiting)
            pod = {
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                             "labels": meta.get("labels") or {}, "annotations": ann,
                             "resourceVersion": self.next_rv(), "creationTimestamp": now()},
                "spec": {"containers": [{"name": c.get("name", "main"), "image": c.get("image", "emulated")}
                                        for c in containers],
                         "nodeName": "emulator" if scheduled else None},
                "status": {
                    "phase": phase, "podIP": "127.0.0.1", "hostIP": "127.0.0.1", "startTime": now(),
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                   {"type": "PodScheduled", "status": "True" if scheduled else "False"} |
                                   ({} if scheduled else {"reason": "Unschedulable",
                                                          "message": "0/1 nodes are available: emulated"})],
                    "containerStatuses": [
                        {"name": c.get("name", "main"), "image": c.get("image", "emulated"), "imageID": "",
                         "ready": ready, "restartCount": 0, "started": ready,
                         "containerID": "emulated://%s" % uuid.uuid4().hex, "state": state} for c in containers]},
            }
            self.pods[(ns, name)] = pod
            if ready:
                self.add_event(ns, name, "Scheduled", "Successfully assigned %s/%s to emulator" % (ns, name))
                for c in pod["spec"]["containers"]:
                    self.add_event(ns, name, "Pulled", 'Container image "%s" already present' % c["image"])
                    self.add_event(ns, name, "Created", "Created container %s" % c["name"])
                    self.add_event(ns, name, "Started", "Started container %s" % c["name"])
            elif waiting:
                self.add_event(ns, name, "Scheduled", "Successfully assigned %s/%s to emulator" % (ns, name))
                self.add_event(ns, name, "Failed", "Error: %s" % waiting, "Warning")
                self.add_event(ns, name, "BackOff", 'Back-off pulling image "emulated"', "Warning")
            else:
                self.add_event(ns, name, "FailedScheduling", "0/1 nodes are available: emulated as unschedulable",
                               "Warning")
            self.notify("ADDED", pod)
        return 201, pod

    def delete_pod(self, ns, name):
        with self.lock:
            pod = self.pods.pop((ns, name), None)
            if not pod:
                return 404, status_obj(404, "NotFound", 'pods "%s" not found' % name)
            stop_processes_in(self.pod_dir(ns, name))  # as a kubelet ends a deleted pod's containers
            pod = json.loads(json.dumps(pod))
            pod["metadata"]["resourceVersion"] = self.next_rv()
            self.notify("DELETED", pod)
        return 200, pod

    def notify(self, etype, pod):  # with self.lock held
        rv = int(pod["metadata"]["resourceVersion"])
        self.history.append((rv, etype, pod))
        for ns, sel, q in self.watchers:
            if (ns is None or pod["metadata"]["namespace"] == ns) and matches(sel, pod["metadata"]["labels"]):
                q.put((etype, pod))

    def list_pods(self, ns, sel):
        with self.lock:
            items = [p for (pns, _), p in sorted(self.pods.items())
                     if (ns is None or pns == ns) and matches(sel, p["metadata"]["labels"])]
            return items, str(self.rv)


STORE = None
OBJECTS = None


# ---------------------------------------------------------------- selectors

def parse_selector(text):
    """Equality-based label selectors: k=v, k==v, k!=v, k, !k. Raises ValueError otherwise."""
    reqs = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if " in " in part or " notin " in part or "(" in part:
            raise ValueError("set-based selectors are not emulated: %s" % part)
        if "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(("!=", k.strip(), v.strip()))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append(("=", k.strip(), v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append(("=", k.strip(), v.strip()))
        elif part.startswith("!"):
            reqs.append(("!", part[1:].strip(), None))
        else:
            reqs.append(("exists", part, None))
    return reqs


def matches(reqs, labels):
    for op, k, v in reqs:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


def field_get(obj, path):
    for p in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


# ---------------------------------------------------------------- exec

class ExecStream:
    """One exec: a process in the pod's directory, its stdio on WebSocket channels."""

    def __init__(self, handler, pod, argv, v5, want):
        self.h = handler
        self.sock = handler.connection
        self.rfile = handler.rfile
        self.pod = pod
        self.argv = argv
        self.v5 = v5
        self.want = want  # {"stdin": bool, "stdout": bool, "stderr": bool}
        self.wlock = threading.Lock()
        self.last_data = time.monotonic()
        self.closed = False

    def send_raw(self, data):
        with self.wlock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send(self, ch, data):
        if data:
            self.last_data = time.monotonic()
        self.send_raw(ws_frame(2, bytes([ch]) + data))

    def pump(self, f, ch):
        while True:
            try:
                data = os.read(f.fileno(), 32768)
            except OSError:
                data = b""
            if not data:
                return
            if self.want.get("stdout" if ch == 1 else "stderr"):
                self.send(ch, data)

    def status_for(self, rc):
        if rc == 0:
            return {"metadata": {}, "status": "Success"}
        code = rc if rc > 0 else 128 - rc
        return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": "command terminated with non-zero exit code: error executing command [%s], exit code %d"
                           % (" ".join(self.argv), code),
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}

    def idle_watch(self, limit_ms):
        while not self.closed:
            time.sleep(min(limit_ms / 4000, 0.1))
            if (time.monotonic() - self.last_data) * 1000 > limit_ms:
                with self.wlock:
                    self.closed = True
                try:  # like a kubelet giving up on an idle stream: the connection just goes
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

    def run(self):
        pdir = STORE.pod_dir(self.pod["metadata"]["namespace"], self.pod["metadata"]["name"])
        env = dict(os.environ, HOME=pdir, HOSTNAME=self.pod["metadata"]["name"])
        try:
            proc = subprocess.Popen(self.argv, cwd=pdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            msg = 'failed to exec in container: exec: "%s": %s' % (self.argv[0], e.strerror)
            self.send(3, json.dumps({"metadata": {}, "status": "Failure", "reason": "InternalError",
                                     "message": msg}).encode())
            self.send_raw(ws_frame(8, struct.pack("!H", 1000)))
            return
        # the "connected" signal: an empty message on the lowest writable channel
        self.send(1 if self.want.get("stdout") else 2 if self.want.get("stderr") else 3, b"")
        pumps = [threading.Thread(target=self.pump, args=(proc.stdout, 1), daemon=True),
                 threading.Thread(target=self.pump, args=(proc.stderr, 2), daemon=True)]
        for t in pumps:
            t.start()
        if ARGS.get("idle_ms"):
            threading.Thread(target=self.idle_watch, args=(ARGS["idle_ms"],), daemon=True).start()
        done = threading.Event()
        threading.Thread(target=self.finish, args=(proc, pumps, done), daemon=True).start()
        self.read_client(proc)
        # the client is gone or closed: stdin ends; a process that outlives that is stopped
        close_stdin(proc)
        if not done.wait(5):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            done.wait(5)

    def finish(self, proc, pumps, done):
        rc = proc.wait()
        for t in pumps:
            t.join()
        self.send(3, json.dumps(self.status_for(rc)).encode())
        self.send_raw(ws_frame(8, struct.pack("!H", 1000)))
        done.set()
        time.sleep(0.2)  # give the client a moment to answer the close, then hang up
        with self.wlock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_client(self, proc):
        stdin_open = True
        fb = wsmask.FrameBuffer()
        while True:
            try:
                fin, op, data = peer.read_frame(self.rfile, fb, MAX_FRAME)
            except peer.FrameError as e:
                self.send_raw(ws_frame(8, struct.pack("!H", e.code) + str(e).encode()))
                return
            except (EOFError, OSError, ValueError):
                return
            if op == 8:
                self.send_raw(ws_frame(8, bytes(data[:2])))
                return
            if op == 9:
                self.send_raw(ws_frame(10, bytes(data)))
                continue
            if op != 2 or not data:
                continue
            ch = data[0]
            if ch == 0 and stdin_open:
                self.last_data = time.monotonic()
                try:
                    proc.stdin.write(data[1:])
                    proc.stdin.flush()
                except (BrokenPipeError, ValueError, OSError):
                    stdin_open = False
            elif ch == 255 and self.v5 and len(data) == 2 and data[1] == 0:
                close_stdin(proc)
                stdin_open = False


def close_stdin(proc):
    try:
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


# ---------------------------------------------------------------- HTTP

class Handler(peer.Handler):
    def log_message(self, *args):
        if os.environ.get("EMULATOR_LOG"):
            sys.stderr.write("emulator: %s\n" % (args[0] % args[1:]))

    def reply(self, code, obj, ctype="application/json"):
        self.send_json(code, obj, ctype)

    def authorized(self):
        token = ARGS.get("token")
        if ARGS.get("token_file"):  # a rotating token: only the one in the file now is valid
            try:
                with open(ARGS["token_file"]) as f:
                    token = f.read().strip()
            except OSError:
                token = None
            if not token:
                return False
        if not token:
            return True
        if self.headers.get("Authorization", "") == "Bearer " + token:
            return True
        try:
            return bool(self.connection.getpeercert())
        except (AttributeError, ValueError):
            return False

    def body_json(self):
        return json.loads(self.read_body() or b"{}")

    def route(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = [urllib.parse.unquote(p) for p in u.path.strip("/").split("/")] if u.path.strip("/") else []
        if not self.authorized():
            return self.reply(401, status_obj(401, "Unauthorized", "Unauthorized"))
        m = self.command
        if parts == ["version"]:
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulated",
                                    "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if parts == ["apis"]:
            return self.reply(200, objects.group_list())
        if parts[:2] == ["openapi", "v3"]:  # schemas that accept any object of each kind
            return self.reply(200, objects.openapi_v3("/".join(parts[2:])))
        if parts == ["api", "v1"]:
            return self.reply(200, api_resources())
        if len(parts) == 3 and parts[0] == "apis" and "/".join(parts[1:]) in objects.KINDS:
            return self.reply(200, objects.resource_list("/".join(parts[1:])))
        gv, rest = ("v1", parts[2:]) if parts[:2] == ["api", "v1"] else ("/".join(parts[1:3]), parts[3:])
        if (parts[:1] == ["apis"] or parts[:2] == ["api", "v1"]) and len(rest) in (3, 4) and \
                rest[0] == "namespaces" and objects.kind_of(gv, rest[2])[0]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ctype = self.headers.get("Content-Type", "")
            try:
                if m == "DELETE":  # DeleteOptions (propagation, grace): every delete is immediate here
                    body = {}
                else:
                    body = kproto.decode(raw) if "protobuf" in ctype else objects.load_body(raw, ctype)
            except ValueError as e:
                return self.reply(415, status_obj(415, "UnsupportedMediaType", "cannot read the %s body: %s" %
                                                  (ctype, e)))
            code, obj = OBJECTS.handle(m, gv, rest[1], rest[2], rest[3] if len(rest) == 4 else None, q,
                                       body, ctype)
            return self.reply(code, obj)
        if rest == ["namespaces"] and m == "POST" and gv == "v1":
            body = self.body_json()
            return self.reply(201, {"kind": "Namespace", "apiVersion": "v1", "metadata": body.get("metadata", {}),
                                    "status": {"phase": "Active"}})
        if parts[:2] != ["api", "v1"]:
            return self.reply(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        rest = parts[2:]
        if len(rest) == 2 and rest[0] == "namespaces" and m == "GET":  # every namespace exists
            return self.reply(200, {"kind": "Namespace", "apiVersion": "v1",
                                    "metadata": {"name": rest[1], "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, rest[1]))},
                                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        if rest == ["pods"] and m == "GET":
            return self.pods_collection(None, q)
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, kind, tail = rest[1], rest[2], rest[3:]
            if kind == "pods":
                if not tail:
                    if m == "GET":
                        return self.pods_collection(ns, q)
                    if m == "POST":
                        code, obj = STORE.create_pod(ns, self.body_json())
                        return self.reply(code, obj)
                elif len(tail) == 1:
                    if m == "GET":
                        return self.get_pod(ns, tail[0])
                    if m == "DELETE":
                        code, obj = STORE.delete_pod(ns, tail[0])
                        return self.reply(code, obj)
                elif len(tail) == 2 and tail[1] == "exec" and m in ("GET", "POST"):
                    return self.exec(ns, tail[0], q)
            if kind == "events" and not tail and m == "GET":
                return self.events(ns, q)
        return self.reply(404, status_obj(404, "NotFound", "the server could not find the requested resource"))

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = route

    def get_pod(self, ns, name):
        with STORE.lock:
            pod = STORE.pods.get((ns, name))
        if not pod:
            return self.reply(404, status_obj(404, "NotFound", 'pods "%s" not found' % name,
                                              {"name": name, "kind": "pods"}))
        return self.reply(200, pod)

    def pods_collection(self, ns, q):
        try:
            sel = parse_selector(q.get("labelSelector", [""])[0])
        except ValueError as e:
            return self.reply(400, status_obj(400, "BadRequest", str(e)))
        if q.get("watch", [""])[0] in ("1", "true"):
            return self.watch(ns, sel, q)
        items, rv = STORE.list_pods(ns, sel)
        if "as=Table" in self.headers.get("Accept", ""):
            return self.reply(200, pod_table(items, rv), "application/json")
        return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv},
                                "items": items})

    def watch(self, ns, sel, q):
        timeout = float(q.get("timeoutSeconds", ["1800"])[0])
        since = q.get("resourceVersion", [""])[0]
        wq = queue.Queue()
        with STORE.lock:
            if since and since != "0":
                for rv, etype, pod in STORE.history:
                    if rv > int(since) and (ns is None or pod["metadata"]["namespace"] == ns) and \
                            matches(sel, pod["metadata"]["labels"]):
                        wq.put((etype, pod))
            else:
                for (pns, _), pod in sorted(STORE.pods.items()):
                    if (ns is None or pns == ns) and matches(sel, pod["metadata"]["labels"]):
                        wq.put(("ADDED", pod))
            entry = (ns, sel, wq)
            STORE.watchers.append(entry)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                try:
                    etype, pod = wq.get(timeout=0.2)
                except queue.Empty:
                    continue
                line = json.dumps({"type": etype, "object": pod}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            with STORE.lock:
                STORE.watchers.remove(entry)
            self.close_connection = True

    def events(self, ns, q):
        fs = q.get("fieldSelector", [""])[0]
        conds = [c.split("=", 1) for c in fs.split(",") if "=" in c]
        with STORE.lock:
            items = [e for e in STORE.events if e["metadata"]["namespace"] == ns and
                     all(str(field_get(e, k.rstrip("="))) == v.lstrip("=") for k, v in conds)]
        return self.reply(200, {"kind": "EventList", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(STORE.rv)}, "items": items})

    def exec(self, ns, name, q):
        with STORE.lock:
            pod = STORE.pods.get((ns, name))
        if not pod:
            return self.reply(404, status_obj(404, "NotFound", 'pods "%s" not found' % name))
        if pod["status"]["phase"] != "Running":
            return self.reply(400, status_obj(400, "BadRequest", "pod %s is not running (phase %s)" %
                                              (name, pod["status"]["phase"])))
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = q.get("container", [names[0]])[0]
        if container not in names:
            return self.reply(400, status_obj(400, "BadRequest", "container %s is not valid for pod %s" %
                                              (container, name)))
        argv = q.get("command", [])
        if not argv:
            return self.reply(400, status_obj(400, "BadRequest", "you must specify at least one command"))
        want = {k: q.get(k, ["false"])[0] in ("1", "true") for k in ("stdin", "stdout", "stderr")}
        if not self.wants_upgrade():
            return self.reply(400, status_obj(400, "BadRequest",
                                              "Upgrade request required (this emulator speaks WebSocket only)"))
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        allowed = EXEC_PROTOCOLS
        if pod["metadata"]["annotations"].get("emulator.sbx/no-v5") == "true":
            allowed = EXEC_PROTOCOLS[1:]
        chosen = next((p for p in offered if p in allowed), None)
        if not chosen:
            return self.reply(400, status_obj(400, "BadRequest", "unable to upgrade: none of the offered "
                                              "subprotocols %s is supported (%s)" % (offered, ", ".join(allowed))))
        self.upgrade(chosen)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames go out at once
        if os.environ.get("EMULATOR_EXEC_LOG"):  # one line per exec upgrade, for tests that count dials
            with open(os.environ["EMULATOR_EXEC_LOG"], "a") as f:
                f.write("exec %s/%s %s\n" % (ns, name, " ".join(argv)))
        ExecStream(self, pod, argv, chosen.startswith("v5"), want).run()


def api_resources():
    def res(name, kind, verbs, namespaced=True, short=None):
        r = {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}
        if short:
            r["shortNames"] = short
        return r
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        res("pods", "Pod", ["create", "delete", "get", "list", "watch"], short=["po"]),
        res("pods/exec", "PodExecOptions", ["create", "get"]),
        res("events", "Event", ["list", "get"], short=["ev"]),
        res("namespaces", "Namespace", ["create", "get", "list"], namespaced=False, short=["ns"]),
    ] + objects.resource_list("v1")["resources"]}


def pod_table(items, rv):
    cols = [{"name": "Name", "type": "string", "format": "name", "description": "name", "priority": 0},
            {"name": "Ready", "type": "string", "format": "", "description": "ready", "priority": 0},
            {"name": "Status", "type": "string", "format": "", "description": "status", "priority": 0},
            {"name": "Restarts", "type": "string", "format": "", "description": "restarts", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "age", "priority": 0}]
    rows = []
    for p in items:
        cs = p["status"]["containerStatuses"]
        rows.append({"cells": [p["metadata"]["name"], "%d/%d" % (sum(c["ready"] for c in cs), len(cs)),
                               p["status"]["phase"], "0", "1m"],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": p["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols, "rows": rows}


class Server(peer.Server):
    log_env = "EMULATOR_LOG"


def stop_processes_in(directory):
    """Kills every process whose working directory is in directory (a pod's "container")."""
    want = os.path.realpath(directory)
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if cwd == want or cwd.startswith(want + "/"):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def main():
    global STORE, OBJECTS
    a = sys.argv[1:]
    opt = lambda name, default=None: a[a.index(name) + 1] if name in a else default
    certs, root = opt("--tls"), opt("--root")
    if not certs or not root:
        sys.exit("usage: emulator.py --tls CERTDIR --root DIR [--token T] [--token-file F] [--idle-timeout-ms N] [--pod NS/NAME[:L=V,..]]")
    ARGS["token"] = opt("--token")
    ARGS["token_file"] = opt("--token-file")
    ARGS["idle_ms"] = int(opt("--idle-timeout-ms", "0"))
    STORE = Store(root)
    OBJECTS = objects.Objects(STORE, STORE.lock, parse_selector, matches)
    for i, arg in enumerate(a):
        if arg == "--pod":
            spec = a[i + 1]
            ident, _, labels = spec.partition(":")
            ns, _, name = ident.partition("/")
            lab = dict(kv.split("=", 1) for kv in labels.split(",") if kv)
            ann = {k[4:]: v for k, v in lab.items() if k.startswith("ann.")}
            lab = {k: v for k, v in lab.items() if not k.startswith("ann.")}
            STORE.create_pod(ns, {"metadata": {"name": name, "labels": lab, "annotations": ann}})
    peer.serve(Handler, Server, peer.tls_context(certs), do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        stop_processes_in(STORE.root)  # the node goes: so does everything that ran on it


if __name__ == "__main__":
    main()
