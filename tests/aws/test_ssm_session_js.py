#!/usr/bin/env python3
"""test_ssm_session_js.py — the Session Manager emulator's message codec
(tests/aws/ssm_emulator.py, which test_ssm_transport and test_ec2_sandbox check the C
client against) checked with an independent client of the same protocol: the npm package
ssm-session (installed into $BUILD/npm on first use). Messages the emulator encodes are
decoded by ssm-session and the other way round; ssm-session's digests are not SHA-256
(the real agent does not check them either), so only there the digest is not compared."""
import base64
import importlib.util
import json
import os
import subprocess
import sys
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


if __name__ == "__main__":
    main()
    sys.exit(0)
