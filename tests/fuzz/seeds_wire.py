#!/usr/bin/env python3
"""seeds_wire.py — writes the seed corpora of the wire-format fuzz targets
(ssm_msg, ws_frame, aws_parse, k8s_pod) under tests/fuzz/corpus/; the files
are committed. Run from the repository root. The inputs follow the public
formats (RFC 6455 frames, the Session Manager agent message layout, the EC2
Query API's XML and the Kubernetes pod/event objects)."""
import hashlib
import json
import os
import struct
import uuid

ROOT = "tests/fuzz/corpus"


def save(target, name, data):
    os.makedirs(f"{ROOT}/{target}", exist_ok=True)
    with open(f"{ROOT}/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------- SSM messages
def ssm(mtype, seq, payload_type, payload, flags=0):
    mid = uuid.UUID(int=0x1234567890ABCDEF1122334455667788 + seq).bytes
    return (struct.pack(">I", 116) + mtype.encode().ljust(32, b" ") + struct.pack(">IQqQ", 1, 1700000000000, seq, flags)
            + mid[8:] + mid[:8] + hashlib.sha256(payload).digest() + struct.pack(">II", payload_type, len(payload))
            + payload)


ack = json.dumps({"AcknowledgedMessageType": "input_stream_data", "AcknowledgedMessageId":
                  "12345678-90ab-cdef-1122-334455667788", "AcknowledgedMessageSequenceNumber": 3,
                  "IsSequentialMessage": True}).encode()
hs_req = json.dumps({"AgentVersion": "3.3.0.0", "RequestedClientActions": [
    {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Port", "Properties": {
        "portNumber": "7000", "type": "LocalPortForwarding", "host": "localhost"}}},
    {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "k"}}]}).encode()
hs_resp = json.dumps({"ClientVersion": "1.2.0.0", "ProcessedClientActions": [
    {"ActionType": "SessionType", "ActionStatus": 1}], "Errors": []}).encode()
hs_done = json.dumps({"HandshakeTimeToComplete": 1000000, "CustomerMessage": "hi"}).encode()
closed = json.dumps({"MessageId": "m", "CreatedDate": "", "DestinationId": "", "SessionId": "s-1",
                     "MessageType": "channel_closed", "SchemaVersion": 1, "Output": "bye"}).encode()
save("ssm_msg", "output", ssm("output_stream_data", 0, 1, b"hello agent bytes"))
save("ssm_msg", "ack", ssm("acknowledge", 0, 0, ack))
save("ssm_msg", "handshake_request", ssm("output_stream_data", 1, 5, hs_req))
save("ssm_msg", "handshake_response", ssm("input_stream_data", 1, 6, hs_resp))
save("ssm_msg", "handshake_complete", ssm("output_stream_data", 2, 7, hs_done))
save("ssm_msg", "channel_closed", ssm("channel_closed", 3, 0, closed))
save("ssm_msg", "flag", ssm("input_stream_data", 4, 10, struct.pack(">I", 1), flags=1))
save("ssm_msg", "open_data_channel", json.dumps({"MessageSchemaVersion": "1.0", "RequestId": "r",
                                                 "TokenValue": "tok", "ClientId": "c", "ClientVersion": "1"}))

# ---------------------------------------------------------------- WebSocket frames
def frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


save("ws_frame", "binary", b"\x07" + frame(2, b"\x01agent bytes"))
save("ws_frame", "fragmented", b"\x02" + frame(1, b"hel", fin=False) + frame(9, b"p") + frame(0, b"lo"))
save("ws_frame", "medium", b"\xff" + frame(2, bytes(range(256)) * 2))
save("ws_frame", "close", b"\x00" + frame(8, struct.pack(">H", 1000) + b"done"))
save("ws_frame", "pong_then_text", b"\x10" + frame(10, b"") + frame(1, "caf\u00e9".encode()))

# ---------------------------------------------------------------- AWS answers
run = ("<RunInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>"
       "<instancesSet><item><instanceId>i-0123456789abcdef0</instanceId></item>"
       "<item><instanceId>i-0fedcba9876543210</instanceId></item></instancesSet></RunInstancesResponse>")
describe = ("<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
            "<instanceId>i-0123456789abcdef0</instanceId><imageId>ami-1</imageId>"
            "<instanceState><code>16</code><name>running</name></instanceState>"
            "<privateIpAddress>10.0.0.5</privateIpAddress><instanceType>t3a.large</instanceType>"
            "<metadataOptions><httpTokens>required</httpTokens></metadataOptions>"
            "<tagSet><item><key>sbx-owner</key><value>run-1</value></item>"
            "<item><key>Name</key><value>inspect_ec2_sandbox_t</value></item></tagSet>"
            "</item></instancesSet></item></reservationSet><nextToken>page2</nextToken></DescribeInstancesResponse>")
error = ("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
         "</Message></Error></Errors><RequestID>r</RequestID></Response>")
sts = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
       "<AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"
       "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
       "</AssumeRoleWithWebIdentityResponse>")
process = json.dumps({"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "s", "SessionToken": "t",
                      "Expiration": "2030-01-02T03:04:05Z"})
role = json.dumps({"Code": "Success", "AccessKeyId": "ASIA1", "SecretAccessKey": "s", "Token": "tok",
                   "Expiration": "2030-01-01T06:00:00Z"})
for i, (name, body) in enumerate([("run", run), ("describe", describe), ("error", error), ("sts", sts),
                                  ("process", process), ("role", role)]):
    save("aws_parse", name, bytes([i]) + body.encode())

# ---------------------------------------------------------------- Kubernetes pods
ready = {"metadata": {"name": "p", "namespace": "n", "uid": "u"}, "status": {
    "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}]}}
pulling = {"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Pending", "containerStatuses": [
    {"name": "app", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff",
                                                            "message": "Back-off pulling image"}}}]}}
unsched = {"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Pending", "conditions": [
    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]}}
events = {"kind": "EventList", "items": [{"type": "Warning", "reason": "Failed", "message": "pull failed",
                                          "involvedObject": {"name": "p"}}]}
save("k8s_pod", "ready", json.dumps(ready))
save("k8s_pod", "pulling_with_events", json.dumps(pulling) + "\n" + json.dumps(events))
save("k8s_pod", "unschedulable", json.dumps(unsched) + "\n" + json.dumps(events))
