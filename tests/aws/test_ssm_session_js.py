#!/usr/bin/env python3
"""test_ssm_session_js.py — the Session Manager emulator's message codec
(tests/aws/ssm_emulator.py, which test_ssm_transport and test_ec2_sandbox check the C
client against) checked with an independent client of the same protocol: the npm package
ssm-session (installed into $BUILD/npm on first use). Messages the emulator encodes are
decoded by ssm-session and the other way round; ssm-session's digests are not SHA-256
(the real agent does not check them either), so only there the digest is not compared.
Then the plain ssm-session client (Node's WebSocket, no patches) runs a whole session
against the emulator: it opens the data channel, sends its terminal size and a line, and
gets the line back from an echo server as the instance's port, acknowledging what it
receives; the emulator must accept all of it (no protocol complaint), as the real agent
does this client's (its digests are not SHA-256, it sends no ClientVersion)."""
import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = os.path.join(ROOT, os.environ.get("BUILD", "build"), "npm")
VERSION = "1.0.6"

spec = importlib.util.spec_from_file_location("emu", os.path.join(ROOT, "tests", "aws", "ssm_emulator.py"))
emu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(emu)

NODE = r"""
const ssm = require(process.argv[1]).ssm;
const lines = require('fs').readFileSync(0, 'utf8').trim().split('\n');
for (const line of lines) {
  const q = JSON.parse(line);
  let out;
  if (q.op === 'decode') {
    const m = ssm.decode(Buffer.from(q.b64, 'base64'));
    out = {type: m.messageType, seq: Number(m.sequenceNumber), id: m.messageId, ptype: m.payloadType,
           plen: m.payloadLength, hl: m.headerLength, schema: m.schemaVersion,
           payload: Buffer.from(m.payload).toString('base64')};
  } else if (q.op === 'input') {
    out = {b64: Buffer.from(ssm.buildInputMessage(q.text, q.seq)).toString('base64')};
  } else if (q.op === 'ack') {
    out = {b64: Buffer.from(ssm.buildAcknowledge(q.type, q.seq, q.id)).toString('base64')};
  } else if (q.op === 'token') {
    out = {text: ssm.buildTokenMessage(q.token)};
  }
  console.log(JSON.stringify(out));
}
"""


SESSION = r"""
const ssm = require(process.argv[1]).ssm;
const [url, token, line] = process.argv.slice(2);
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
let out = '', acks = 0, flags0 = -1;
const finish = (ok) => { console.log(JSON.stringify({ok, out, acks, flags0})); ws.close(); process.exit(0); };
setTimeout(() => finish(false), 20000);
ws.onopen = () => { ssm.init(ws, {token, termOptions: {cols: 80, rows: 24}}); ssm.sendText(ws, line); };
ws.onmessage = (ev) => {
  const m = ssm.decode(ev.data);
  if (m.messageType === 'acknowledge') { acks++; return; }
  if (m.messageType !== 'output_stream_data') return;
  if (Number(m.sequenceNumber) === 0) flags0 = Number(m.flags);
  ssm.sendACK(ws, m);
  out += Buffer.from(m.payload).toString();
  if (out.includes(line)) finish(true);
};
ws.onerror = (e) => { console.log(JSON.stringify({ok: false, out: 'websocket error: ' + e.message})); process.exit(0); };
"""


def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=lambda: [c.sendall(d) for d in iter(lambda: c.recv(4096), b"")],
                             daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def session_against_emulator(mod):
    port = echo_server()
    emu_proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "aws", "ssm_emulator.py"),
                                 "--agent-port", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    try:
        base = "http://127.0.0.1:%d/" % int(emu_proc.stdout.readline().split()[1])
        rq = urllib.request.Request(base, data=json.dumps({"Target": "i-0123456789abcdef0"}).encode(),
                                    headers={"X-Amz-Target": "AmazonSSM.StartSession",
                                             "Content-Type": "application/x-amz-json-1.1"})
        started = json.loads(urllib.request.urlopen(rq, timeout=10).read())
        r = subprocess.run(["node", "--experimental-websocket", "-e", SESSION, mod, started["StreamUrl"],
                            started["TokenValue"], "hello from ssm-session\n"],
                           capture_output=True, text=True, timeout=60)
        got = json.loads(r.stdout.strip().split("\n")[-1]) if r.stdout.strip() else {"ok": False, "out": r.stderr}
        stats = json.loads(urllib.request.urlopen(base + "stats", timeout=10).read())
        return got, stats
    finally:
        emu_proc.stdin.close()
        emu_proc.wait(10)


def check(name, cond, why=""):
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, why)), flush=True)


def ensure_package():
    mod = os.path.join(PREFIX, "node_modules", "ssm-session")
    if not os.path.isdir(mod):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", PREFIX,
                        "ssm-session@" + VERSION], check=True, capture_output=True, timeout=300)
    return mod


def node(queries, mod):
    text = "\n".join(json.dumps(q) for q in queries) + "\n"
    r = subprocess.run(["node", "-e", NODE, mod], input=text, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-500:])
    return [json.loads(line) for line in r.stdout.strip().split("\n")]


def main():
    try:
        mod = ensure_package()
    except (OSError, subprocess.SubprocessError) as e:
        check("ssm_session_installed", False, "node/npm and the npm package ssm-session@%s are needed: %s"
              % (VERSION, e))
        return
    mid = uuid.uuid4()
    ours = emu.encode("output_stream_data", 5, 1, b"hello\x00\xff", msg_id=mid.bytes)
    hs = emu.encode("output_stream_data", 0, 5, b'{"AgentVersion":"3.3.0.0"}')
    big = emu.encode("output_stream_data", 2**40 + 3, 1, os.urandom(70000))
    got = node([{"op": "decode", "b64": base64.b64encode(m).decode()} for m in (ours, hs, big)]
               + [{"op": "input", "text": "ls -l\n", "seq": 3},
                  {"op": "ack", "type": "output_stream_data", "seq": 7, "id": str(mid)},
                  {"op": "token", "token": "tok-1"}], mod)
    d = got[0]
    check("emulator_message_decoded_by_ssm_session",
          d["type"] == "output_stream_data" and d["seq"] == 5 and d["ptype"] == 1 and d["plen"] == 7
          and d["hl"] == 116 and d["schema"] == 1 and base64.b64decode(d["payload"]) == b"hello\x00\xff", d)
    check("message_id_byte_order_agrees", d["id"] == str(mid), "%s != %s" % (d["id"], mid))
    check("handshake_payload_type_agrees", got[1]["ptype"] == 5 and got[1]["seq"] == 0, got[1])
    check("large_sequence_numbers_and_payloads", got[2]["seq"] == 2**40 + 3 and got[2]["plen"] == 70000, got[2])

    m = emu.decode(base64.b64decode(got[3]["b64"]), check_digest=False)
    check("ssm_session_input_decoded_by_emulator",
          m["type"] == "input_stream_data" and m["seq"] == 3 and m["ptype"] == 1 and m["payload"] == b"ls -l\n", m)
    a = emu.decode(base64.b64decode(got[4]["b64"]), check_digest=False)
    content = json.loads(a["payload"])
    check("ssm_session_ack_decoded_by_emulator",
          a["type"] == "acknowledge" and content["AcknowledgedMessageSequenceNumber"] == 7
          and content["AcknowledgedMessageId"] == str(mid)
          and content["AcknowledgedMessageType"] == "output_stream_data", content)
    tok = json.loads(got[5]["text"])
    check("open_data_channel_message_agrees", tok["MessageSchemaVersion"] == "1.0" and tok["TokenValue"] == "tok-1",
          tok)

    got, stats = session_against_emulator(mod)
    check("ssm_session_client_runs_a_session_on_the_emulator", got.get("ok") and not stats["bad"],
          "client: %s; emulator complaints: %s" % (got, stats["bad"]))
    check("emulator_acknowledges_the_client_and_flags_its_first_output",
          got.get("acks", 0) >= 2 and got.get("flags0") == 1, got)
    check("emulator_does_not_enforce_the_digest", stats["digest_mismatches"] >= 2, stats)


if __name__ == "__main__":
    main()
    sys.exit(0)
