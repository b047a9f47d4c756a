#!/usr/bin/env python3
"""ssm_emulator.py — the service side of SSM Session Manager, for tests.

    python3 tests/aws/ssm_emulator.py --agent-port N [--access-key K --secret S]
                                      [--drop-every N] [--kms] [--session-type T]

Prints "PORT N" on its first line, then serves on 127.0.0.1:N until stdin closes.
Standard library only (botocore, when --access-key is given, to check signatures
the way moto does). Its own codec of the data channel's messages is written here
from the documented layout (shared/notes/wire-protocols.md section 3), apart from
the C one it tests.

API (POST /, JSON 1.1, X-Amz-Target AmazonSSM.*): StartSession (returns a
ws://127.0.0.1:N/v1/data-channel/ID StreamUrl), ResumeSession (a new token
and StreamUrl for a session that is not terminated; DoesNotExistException
otherwise), TerminateSession (ends the session and its WebSocket),
DescribeInstanceInformation (every instance Online; none with --offline), GetParameter (the public
Ubuntu AMI parameters, answered with --ami).

Data channel (WebSocket /v1/data-channel/ID): the first text message must be the
open-data-channel JSON with the session's token. Then it plays the instance's SSM
agent in a port session: HandshakeRequest (SessionType Port), expects a
HandshakeResponse that processed it, sends HandshakeComplete (no handshake for a client
whose open message has no ClientVersion, as the agent does for old clients), connects to
127.0.0.1:agent-port and carries bytes both ways as output/input_stream_data,
acknowledging each message and resending its own unacknowledged messages (at most
1024 in flight, as the agent's window). As the real agent (amazon-ssm-agent's
datachannel.go) does: a message needs its 32-byte digest field but the digest is not
compared (mismatches are counted in /stats), a duplicate of an already processed
message is dropped without an acknowledgement (counted), the first output message
(sequence 0) has flags 1, and a CreatedDate more than 5 minutes from now (not
milliseconds since the epoch) fails the session. --drop-every N drops every Nth stream message it sends the
first time (the client must wait for the resend).

A session outlives its WebSocket, as on the real service: the connection to
the agent's port stays open, and a client that resumes (ResumeSession, then a
new WebSocket with the new token) goes on with the same sequence numbers; both
sides resend what the other did not acknowledge.

--boot MOTO_URL (with --access-key, --secret, --region): instead of one agent on this
host, each instance a session targets is booted from its user data, read back from
moto, by instance_boot.py (a private mount and network namespace per instance, as an
instance has its own files and loopback; needs root), and the port session reaches
the instance's own 127.0.0.1:portNumber. Booted instances are removed when stdin
closes. The user-data log and what the instance fetched are in its directory.

Test hooks, one command a line on stdin:
  drop            cut every session's WebSocket now (TCP shutdown, no close frame)
  drop-after N    cut each open session's WebSocket once, after N more data channel messages
  terminate       terminate every session (as TerminateSession, or an expired one)
  refuse-resume   answer ResumeSession with DoesNotExistException from now on
  refuse-start    answer StartSession with an error from now on
  allow           undo both refusals
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
import peer  # noqa: E402
from wsframe import ws_frame  # noqa: E402

ARGS = None
SESSIONS = {}  # id -> {"token", "port", "closed", "channel"}
STATS = {"resends": 0, "acks_received": 0, "bad": [], "drops": 0, "resumes": 0, "duplicates_dropped": 0,
         "digest_mismatches": 0}
CONTROL = {"refuse_resume": False, "refuse_start": False}
WINDOW = 1024
CREATED_TOLERANCE_MS = 5 * 60 * 1000  # a client's CreatedDate: epoch ms, at most this far from ours


# ---------------------------------------------------------------- the codec

def encode(mtype, seq, payload_type, payload, flags=0, msg_id=None):
    msg_id = msg_id or uuid.uuid4().bytes
    head = struct.pack("!I", 116) + mtype.encode().ljust(32, b" ")
    head += struct.pack("!IQqQ", 1, int(time.time() * 1000), seq, flags)
    head += msg_id[8:16] + msg_id[0:8]
    head += hashlib.sha256(payload).digest() + struct.pack("!II", payload_type, len(payload))
    return head + payload


def decode(data, check_digest=True):
    """One message as a dict. The digest field must be there (32 bytes); with check_digest it
    must also be the payload's SHA-256 (the real agent does not compare it: "digest_ok" says)."""
    if len(data) < 120:
        raise ValueError("short message")
    hl = struct.unpack("!I", data[0:4])[0]
    if hl < 116 or hl + 4 > len(data):
        raise ValueError("header length %d does not leave room for the 32-byte digest and the payload" % hl)
    mtype = data[4:36].strip(b" \x00").decode()
    created = struct.unpack("!Q", data[40:48])[0]
    seq, flags = struct.unpack("!qQ", data[48:64])
    msg_id = data[72:80] + data[64:72]
    digest = data[80:112]
    ptype = struct.unpack("!I", data[112:116])[0]
    plen = struct.unpack("!I", data[hl:hl + 4])[0]
    payload = data[hl + 4:]
    if plen != len(payload):
        raise ValueError("payload length %d but %d bytes" % (plen, len(payload)))
    digest_ok = hashlib.sha256(payload).digest() == digest
    if check_digest and not digest_ok:
        raise ValueError("payload digest mismatch in %s %d" % (mtype, seq))
    return {"type": mtype, "seq": seq, "flags": flags, "id": msg_id, "ptype": ptype, "payload": payload,
            "created": created, "digest_ok": digest_ok}


# ------------------------------------------------------------- the channel

class Channel:
    """The agent's side of one data channel: lives as long as its session,
    across the WebSockets that carry it."""

    def __init__(self, handler, session):
        self.h = handler
        self.session = session
        self.lock = threading.Lock()
        self.input = threading.Lock()  # a resumed WebSocket's messages wait for the old one's last
        self.window = threading.Condition()
        self.out_seq = 0
        self.unacked = {}  # seq -> (bytes, last_sent)
        self.expected = 0
        self.early = {}
        self.sock = None
        self.done = False
        self.sent_stream = 0
        self.drop_in = 0  # > 0: cut the WebSocket after that many more messages

    def drop(self):
        """Cut the WebSocket as a network failure would."""
        h = self.h
        if h is None:
            return
        self.h = None
        STATS["drops"] += 1
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def count(self):
        if self.drop_in > 0:
            self.drop_in -= 1
            if self.drop_in == 0:
                self.drop()

    def send_raw(self, data):
        with self.lock:
            h = self.h
            if h is None:
                return  # no WebSocket now: resent after a resume
            try:
                h.wfile.write(ws_frame(2, data))
                h.wfile.flush()
            except OSError:
                pass

    def send(self, ptype, payload, droppable=False):
        with self.lock:
            seq = self.out_seq
            self.out_seq += 1
        msg = encode("output_stream_data", seq, ptype, payload, flags=1 if seq == 0 else 0)  # as the agent
        self.unacked[seq] = [msg, time.time()]
        self.count()
        if droppable and ARGS.drop_every:
            self.sent_stream += 1
            if self.sent_stream % ARGS.drop_every == 0:
                return  # lost on the way; resent later
        self.send_raw(msg)

    def ack(self, m):
        content = json.dumps({"AcknowledgedMessageType": m["type"],
                              "AcknowledgedMessageId": str(uuid.UUID(bytes=m["id"])),
                              "AcknowledgedMessageSequenceNumber": m["seq"],
                              "IsSequentialMessage": True}).encode()
        self.send_raw(encode("acknowledge", 0, 0, content, flags=3))

    def resender(self):
        while not self.done:
            time.sleep(0.1)
            now = time.time()
            for seq, entry in sorted(dict(self.unacked).items()):
                if now - entry[1] > 0.3 and self.h is not None:
                    entry[1] = now
                    STATS["resends"] += 1
                    self.send_raw(entry[0])

    def pump_port(self):
        try:
            while True:
                with self.window:
                    while len(self.unacked) >= WINDOW and not self.done:
                        self.window.wait(0.5)
                if self.done:
                    return
                data = self.sock.recv(4096)
                if not data:
                    break
                self.send(1, data, droppable=True)
        except OSError:
            pass
        if not self.done:
            try:
                self.send(10, struct.pack("!I", 1))  # DisconnectToPort
            except OSError:
                pass

    def on_stream(self, m):
        if m["ptype"] == 6:
            resp = json.loads(m["payload"])
            ok = any(a.get("ActionType") == "SessionType" and a.get("ActionStatus") == 1
                     for a in resp.get("ProcessedClientActions", []))
            if not ok:
                STATS["bad"].append("handshake response did not process SessionType")
                self.done = True
                return
            if ARGS.kms:
                return  # a real agent would now fail the session
            self.send(7, json.dumps({"HandshakeTimeToComplete": 1000000, "CustomerMessage": ""}).encode())
            try:
                self.sock = connect_port(self.session)
            except OSError:
                self.send(10, struct.pack("!I", 3))  # ConnectToPortError
                return
            threading.Thread(target=self.pump_port, daemon=True).start()
        elif m["ptype"] == 1:
            if self.sock:
                self.sock.sendall(m["payload"])
        elif m["ptype"] == 10:
            self.end()

    def on_message(self, data):
        m = decode(data, check_digest=False)  # the real agent does not compare the digest
        if not m["digest_ok"]:
            STATS["digest_mismatches"] += 1
        skew = m["created"] - int(time.time() * 1000)
        if abs(skew) > CREATED_TOLERANCE_MS:
            raise ValueError("CreatedDate %d of %s %d is %d ms away from now (not milliseconds since the epoch?)"
                             % (m["created"], m["type"], m["seq"], skew))
        self.count()
        if m["type"] == "acknowledge":
            a = json.loads(m["payload"])
            STATS["acks_received"] += 1
            with self.window:
                self.unacked.pop(a["AcknowledgedMessageSequenceNumber"], None)
                self.window.notify()
            return
        if m["type"] != "input_stream_data":
            STATS["bad"].append("unexpected message type " + m["type"])
            return
        if m["seq"] < self.expected:  # as the real agent: dropped without an acknowledgement
            STATS["duplicates_dropped"] += 1
            return
        if m["seq"] > self.expected and m["seq"] not in self.early and len(self.early) >= WINDOW:
            return  # no room to keep it early: not acknowledged, so it is sent again
        self.ack(m)
        self.early[m["seq"]] = m
        while self.expected in self.early:
            self.on_stream(self.early.pop(self.expected))
            self.expected += 1

    def end(self):
        self.done = True
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        with self.window:
            self.window.notify_all()
        self.drop()

    def start_without_handshake(self):
        """A client that sent no ClientVersion predates the handshake (the npm ssm-session
        package, say): the agent skips it and starts the session at once."""
        try:
            self.sock = connect_port(self.session)
        except OSError:
            self.send(10, struct.pack("!I", 3))  # ConnectToPortError
            return
        threading.Thread(target=self.pump_port, daemon=True).start()
        threading.Thread(target=self.resender, daemon=True).start()

    def start(self):
        stype = ARGS.session_type
        actions = [{"ActionType": "SessionType",
                    "ActionParameters": {"SessionType": stype,
                                         "Properties": {"portNumber": str(self.session["port"]),
                                                        "type": "LocalPortForwarding"}}}]
        if ARGS.kms:
            actions.insert(0, {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "k"}})
        self.send(5, json.dumps({"AgentVersion": "3.3.0.0", "RequestedClientActions": actions}).encode())
        threading.Thread(target=self.resender, daemon=True).start()

    def resume(self, handler):
        """A new WebSocket for this session: resend what is unacknowledged."""
        STATS["resumes"] += 1
        with self.lock:
            self.h = handler
        for seq, entry in sorted(dict(self.unacked).items()):
            entry[1] = time.time()
            self.send_raw(entry[0])

    def run(self, handler):
        """Serve one WebSocket until it goes; the session stays."""
        try:
            while not self.done:
                op, payload = peer.read_message(handler.rfile)
                if op == 8:
                    self.end()  # the client closed the session
                    break
                if op == 9:
                    with self.lock:
                        handler.wfile.write(ws_frame(10, payload))
                        handler.wfile.flush()
                    continue
                if op == 2:
                    try:
                        with self.input:
                            self.on_message(payload)
                    except (ValueError, KeyError) as e:
                        STATS["bad"].append(str(e))
                        self.end()
                        break
        except (EOFError, OSError):
            pass
        with self.lock:
            if self.h is handler:
                self.h = None


def connect_port(session):
    """The instance's port: 127.0.0.1 here, or inside a booted instance (--boot),
    whose agent may still be starting."""
    if not session.get("instance"):
        sock = socket.create_connection(("127.0.0.1", session["port"]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    path = session["instance"].socket_for(session["port"])
    deadline = time.time() + 20
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)


BOOTED = {}  # instance id -> instance_boot.Instance
BOOT_LOCK = threading.Lock()


def booted(instance_id):
    """--boot: the instance, booted from its user data the first time a session targets it."""
    import instance_boot
    with BOOT_LOCK:
        if instance_id not in BOOTED:
            moto = {"url": ARGS.boot, "akid": ARGS.access_key, "secret": ARGS.secret, "region": ARGS.region}
            BOOTED[instance_id] = instance_boot.boot(instance_id, moto, ARGS.baked_agent)
        return BOOTED[instance_id]


def control():
    """Test hooks from stdin, until it closes."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "drop":
            for sess in list(SESSIONS.values()):
                if sess.get("channel"):
                    sess["channel"].drop()
        elif words[0] == "drop-after":
            for sess in list(SESSIONS.values()):
                if sess.get("channel"):
                    sess["channel"].drop_in = int(words[1])
        elif words[0] == "terminate":
            for sess in list(SESSIONS.values()):
                sess["closed"] = True
                if sess.get("channel"):
                    sess["channel"].end()
        elif words[0] == "refuse-resume":
            CONTROL["refuse_resume"] = True
        elif words[0] == "refuse-start":
            CONTROL["refuse_start"] = True
        elif words[0] == "allow":
            CONTROL["refuse_resume"] = CONTROL["refuse_start"] = False


# ------------------------------------------------------------------- HTTP

def check_signature(handler, body):
    if not ARGS.access_key:
        return True
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    auth = handler.headers.get("Authorization", "")
    try:
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        given = auth.split("Signature=")[1].split(",")[0]
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
    except IndexError:
        return False
    if scope[0] != ARGS.access_key:
        return False
    headers = {k: v for k, v in handler.headers.items() if k.lower() in signed}
    req = AWSRequest(method="POST", url=handler.path, data=body, headers=headers)
    req.context["timestamp"] = handler.headers.get("X-Amz-Date")
    s = SigV4Auth(Credentials(ARGS.access_key, ARGS.secret), scope[3], scope[2])
    return s.signature(s.string_to_sign(req, s.canonical_request(req)), req) == given


class Server(peer.Server):
    quiet = False  # a handler's traceback goes to stderr


class Handler(peer.Handler):
    def reply(self, status, obj):
        self.send_json(status, obj, "application/x-amz-json-1.1")

    def do_POST(self):
        body = self.read_body()
        if not check_signature(self, body):
            return self.reply(400, {"__type": "InvalidSignatureException",
                                    "message": "The request signature we calculated does not match"})
        target = self.headers.get("X-Amz-Target", "")
        req = json.loads(body or b"{}")
        if target == "AmazonSSM.StartSession":
            if CONTROL["refuse_start"]:
                return self.reply(400, {"__type": "TargetNotConnected",
                                        "message": "%s is not connected." % req.get("Target", "")})
            sid = "sbx-" + uuid.uuid4().hex[:17]
            params = req.get("Parameters", {})
            port = int(params.get("portNumber", [str(ARGS.agent_port)])[0])
            SESSIONS[sid] = {"token": uuid.uuid4().hex, "port": ARGS.agent_port or port, "closed": False}
            if ARGS.boot:
                SESSIONS[sid]["port"] = port
                SESSIONS[sid]["instance"] = booted(req.get("Target", ""))
            host, p = self.server.server_address[:2]
            return self.reply(200, {"SessionId": sid, "TokenValue": SESSIONS[sid]["token"],
                                    "StreamUrl": "ws://%s:%d/v1/data-channel/%s?role=publish_subscribe"
                                                 % (host, p, sid)})
        if target == "AmazonSSM.ResumeSession":
            sid = req.get("SessionId", "")
            sess = SESSIONS.get(sid)
            if not sess or sess["closed"] or CONTROL["refuse_resume"]:
                return self.reply(400, {"__type": "DoesNotExistException",
                                        "message": "Session %s does not exist or is terminated." % sid})
            sess["token"] = uuid.uuid4().hex
            host, p = self.server.server_address[:2]
            return self.reply(200, {"SessionId": sid, "TokenValue": sess["token"],
                                    "StreamUrl": "ws://%s:%d/v1/data-channel/%s?role=publish_subscribe"
                                                 % (host, p, sid)})
        if target == "AmazonSSM.GetParameter":
            if ARGS.ami and req.get("Name", "").startswith("/aws/service/canonical/ubuntu/"):
                return self.reply(200, {"Parameter": {"Name": req["Name"], "Value": ARGS.ami, "Type": "String"}})
            return self.reply(400, {"__type": "ParameterNotFound", "message": req.get("Name", "")})
        if target == "AmazonSSM.TerminateSession":
            sid = req.get("SessionId", "")
            if sid in SESSIONS:
                SESSIONS[sid]["closed"] = True
                if SESSIONS[sid].get("channel"):
                    SESSIONS[sid]["channel"].end()
            return self.reply(200, {"SessionId": sid})
        if target == "AmazonSSM.DescribeInstanceInformation":
            ids = []
            for f in req.get("Filters", []):
                if f.get("Key") == "InstanceIds":
                    ids = f.get("Values", [])
            status = "ConnectionLost" if ARGS.offline else "Online"
            return self.reply(200, {"InstanceInformationList": [{"InstanceId": i, "PingStatus": status}
                                                                for i in ids]})
        return self.reply(400, {"__type": "InvalidAction", "message": "not emulated: " + target})

    def do_GET(self):
        if self.path == "/instances":  # --boot: each booted instance's directory
            return self.send_body(200, json.dumps({i: inst.root for i, inst in BOOTED.items()}).encode(), None)
        if self.path == "/stats":
            stats = dict(STATS, sessions=len(SESSIONS), open_sessions=[s for s, v in SESSIONS.items() if not v["closed"]])
            return self.send_body(200, json.dumps(stats).encode(), None)
        sid = self.path.split("?")[0].rsplit("/", 1)[-1]
        if not self.wants_upgrade() or sid not in SESSIONS or SESSIONS[sid]["closed"]:
            return self.send_body(404, b"", None)
        self.upgrade(close=False)  # closed after the channel ran (a failed open leaves it to the client)
        try:
            op, first = peer.read_message(self.rfile)
            opened = json.loads(first)
        except (EOFError, ValueError, OSError):
            return
        if op != 1 or opened.get("TokenValue") != SESSIONS[sid]["token"] or \
                opened.get("MessageSchemaVersion") != "1.0":
            STATS["bad"].append("bad open-data-channel message")
            self.wfile.write(ws_frame(8, struct.pack("!H", 1008) + b"bad token"))
            return
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as AWS's endpoints answer
        sess = SESSIONS[sid]
        ch = sess.get("channel")
        if ch is None or ch.done:
            ch = sess["channel"] = Channel(self, sess)
            if opened.get("ClientVersion"):
                ch.start()
            else:
                ch.start_without_handshake()
        else:
            ch.resume(self)
        ch.run(self)
        self.close_connection = True


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent-port", type=int, default=0)
    ap.add_argument("--access-key")
    ap.add_argument("--secret")
    ap.add_argument("--drop-every", type=int, default=0)
    ap.add_argument("--kms", action="store_true")
    ap.add_argument("--offline", action="store_true", help="no instance's SSM agent ever comes Online")
    ap.add_argument("--session-type", default="Port")
    ap.add_argument("--ami", help="the value of the public Ubuntu AMI parameters")
    ap.add_argument("--boot", metavar="MOTO_URL",
                    help="boot each targeted instance from its user data (instance_boot.py) and forward "
                         "into it, instead of to --agent-port on this host")
    ap.add_argument("--region", default="us-east-1", help="--boot: moto's region")
    ap.add_argument("--baked-agent", help="--boot: the sbx-agent an AMI with it baked in would hold")
    ARGS = ap.parse_args()
    if ARGS.boot:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    peer.serve(Handler, Server)
    try:
        control()
    finally:
        if BOOTED:
            import instance_boot
            for inst in BOOTED.values():
                instance_boot.remove(inst)


if __name__ == "__main__":
    main()
