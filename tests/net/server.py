#!/usr/bin/env python3
"""server.py — the HTTP(S) + WebSocket peer of the network tests (test_http, test_ws).

    python3 tests/net/server.py [--tls CERTDIR] [--require-client-cert]

Prints "PORT N" on its first line, then serves on 127.0.0.1:N until killed (or until
stdin closes, so a test that dies does not leave it behind). CERTDIR comes from
make-certs.sh. Written on the standard library only; the WebSocket side follows RFC 6455
(server frames unmasked, client frames must be masked).

HTTP:  /echo (JSON of method, path, headers, body, client certificate CN), /status/N,
       /big?n=BYTES, /slow?ms=N, /stream?n=LINES (chunked, one line at a time), /count,
       and CONNECT host:port (a tunnelling proxy to 127.0.0.1 only; /count tells how many).
WS:    /ws?accept=P1,P2 (echo; "fragment", "close-me", "ping-me" are commands),
       /ws/hostile?kind=..., /ws/refuse, /ws/badaccept, /ws/drop.
"""
import json
import select
import socket
import ssl
import struct
import sys
import time
import urllib.parse

import peer
from wsframe import ws_frame

COUNTS = {"connect": 0, "requests": 0}


class Handler(peer.Handler):
    def client_cn(self):
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def handle_any(self):
        COUNTS["requests"] += 1
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        body = self.read_body()
        if self.wants_upgrade():
            return self.websocket(u.path, q)
        if u.path == "/echo":
            out = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                   "body": body.decode("utf-8", "replace"), "body_len": len(body), "client_cn": self.client_cn()}
            return self.send_body(200, json.dumps(out).encode(), "application/json", [("X-Echo", "yes")])
        if u.path.startswith("/status/"):
            code = int(u.path[8:])
            return self.send_body(code, ("status %d body" % code).encode())
        if u.path == "/big":
            return self.send_body(200, b"x" * int(q.get("n", "0")))
        if u.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            return self.send_body(200, b"slow done")
        if u.path == "/count":
            return self.send_body(200, json.dumps(COUNTS).encode(), "application/json")
        if u.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", "5"))):
                line = ("line %d\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            return
        return self.send_body(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "123")
        self.end_headers()

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "api.sbx.test"):
            return self.send_body(403, b"this proxy only reaches 127.0.0.1")
        COUNTS["connect"] += 1
        up = socket.create_connection(("127.0.0.1", int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        conns = [self.connection, up]
        try:
            while True:
                r, _, _ = select.select(conns, [], [], 30)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is self.connection else self.connection).sendall(data)
        finally:
            up.close()
            self.close_connection = True

    # ---- WebSocket

    def send(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def websocket(self, path, q):
        if path == "/ws/refuse":
            body = json.dumps({"kind": "Status", "status": "Failure", "message": "pods \"p\" is forbidden",
                               "code": 403}).encode()
            return self.send_body(403, body, "application/json")
        if path == "/ws/badaccept":
            return self.upgrade(accept="d3Jvbmcgd3Jvbmcgd3Jvbmc=")
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        allowed = [p for p in q.get("accept", "").split(",") if p]
        chosen = next((p for p in offered if p in allowed), None)
        self.upgrade(chosen)
        if path == "/ws/drop":
            return
        if path == "/ws/hostile":
            return self.hostile(q.get("kind", ""))
        if path == "/ws/slow":  # a reader that starts late: the client's socket fills first
            time.sleep(int(q.get("ms", "500")) / 1000)
        self.echo()

    def hostile(self, kind):
        frames = {
            "masked": ws_frame(2, b"abc", mask=b"\x01\x02\x03\x04"),
            "rsv": ws_frame(2, b"abc", rsv=0x40),
            "bigcontrol": ws_frame(9, b"p" * 126),
            "fragcontrol": ws_frame(9, b"p", fin=False),
            "badutf8": ws_frame(1, b"\xc3\x28"),
            "huge": struct.pack("!BBQ", 0x82, 127, 1 << 40),
            "topbit": struct.pack("!BBQ", 0x82, 127, 1 << 63),
            "contfirst": ws_frame(0, b"abc"),
            "badopcode": ws_frame(3, b"abc"),
            "badclose": ws_frame(8, b"\x03"),
            "closecode": ws_frame(8, struct.pack("!H", 1005)),
            "interleave": ws_frame(1, b"ab", fin=False) + ws_frame(2, b"cd"),
        }
        self.send(frames[kind])
        try:  # wait for the client's close frame (or its hang-up)
            while True:
                fin, op, data = peer.read_frame(self.rfile)
                if op == 8:
                    self.send(ws_frame(8, data[:2]))
                    return
        except (EOFError, ValueError, OSError):
            return

    def echo(self):
        parts, opcode = [], None
        while True:
            try:
                fin, op, data = peer.read_frame(self.rfile)
            except (EOFError, ValueError, OSError):
                return
            if op == 8:
                self.send(ws_frame(8, data))
                return
            if op == 9:
                self.send(ws_frame(10, data))
                continue
            if op == 10:
                self.send(ws_frame(1, b"pong:" + data))
                continue
            if op in (1, 2):
                opcode, parts = op, [data]
            else:
                parts.append(data)
            if not fin:
                continue
            msg = b"".join(parts)
            if msg == b"fragment":
                self.send(ws_frame(1, b"hello ", fin=False) + ws_frame(9, b"mid") +
                          ws_frame(0, b"wor", fin=False) + ws_frame(0, b"ld"))
            elif msg == b"close-me":
                self.send(ws_frame(8, struct.pack("!H", 4000) + b"bye now"))
            elif msg == b"ping-me":
                self.send(ws_frame(9, b"are you there"))
            else:
                self.send(ws_frame(opcode, msg))


def main():
    args = sys.argv[1:]
    tls = args[args.index("--tls") + 1] if "--tls" in args else None
    verify = ssl.CERT_REQUIRED if "--require-client-cert" in args else ssl.CERT_OPTIONAL
    peer.serve(Handler, tls=peer.tls_context(tls, verify) if tls else None)
    try:
        sys.stdin.read()  # the test holds our stdin: its end (or death) ends us
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
