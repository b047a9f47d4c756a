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
import base64
import hashlib
import http.server
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from wsframe import read_exact, ws_frame

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
COUNTS = {"connect": 0, "requests": 0}


def ws_read(f):
    """One client frame: (fin, opcode, payload). Client frames must be masked."""
    b0, b1 = read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(f, 8))[0]
    if not b1 & 0x80:
        raise ValueError("client frame not masked")
    key = read_exact(f, 4)
    data = bytearray(read_exact(f, n))
    for i in range(n):
        data[i] ^= key[i % 4]
    return bool(b0 & 0x80), b0 & 0x0F, bytes(data)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

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

    def send_body(self, status, body, ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        COUNTS["requests"] += 1
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Upgrade", "").lower() == "websocket":
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

    def upgrade(self, protocol=None, accept=None):
        key = self.headers.get("Sec-WebSocket-Key", "")
        acc = accept or base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", acc)
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

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
                fin, op, data = ws_read(self.rfile)
                if op == 8:
                    self.send(ws_frame(8, data[:2]))
                    return
        except (EOFError, ValueError, OSError):
            return

    def echo(self):
        parts, opcode = [], None
        while True:
            try:
                fin, op, data = ws_read(self.rfile)
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


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (timeouts, limits, cancels) are part of the tests


def main():
    args = sys.argv[1:]
    tls = args[args.index("--tls") + 1] if "--tls" in args else None
    srv = Server(("127.0.0.1", 0), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls, "server.pem"), os.path.join(tls, "server.key"))
        ctx.load_verify_locations(os.path.join(tls, "ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED if "--require-client-cert" in args else ssl.CERT_OPTIONAL
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sys.stdin.read()  # the test holds our stdin: its end (or death) ends us
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
