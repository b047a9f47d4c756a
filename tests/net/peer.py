"""peer.py — the HTTP and WebSocket server parts the test peers share: tests/net/server.py,
tests/k8s/emulator.py and tests/aws/ssm_emulator.py. It owns the request handler's common
replies (a body, JSON), reading a request body, the WebSocket upgrade (RFC 6455 section 4.2.2),
reading a masked client frame or a whole message (section 5), the threading server, TLS and
the "PORT N" start-up line. Framing of server frames is wsframe.py's; unmasking wsmask.py's."""
import base64
import hashlib
import http.server
import json
import os
import ssl
import struct
import threading

import wsmask
from wsframe import read_exact

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class FrameError(ValueError):
    """A client frame the peer refuses; code is the close code to answer with."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def read_frame(f, fb=None, max_frame=None):
    """One client frame: (fin, opcode, payload). Client frames must be masked. With fb (a
    wsmask.FrameBuffer) the payload is a memoryview into it, valid until the next read;
    otherwise bytes. A frame over max_frame bytes raises FrameError 1009."""
    b0, b1 = read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(f, 8))[0]
    if not b1 & 0x80:
        raise FrameError(1002, "client frame not masked")
    if max_frame is not None and n > max_frame:
        raise FrameError(1009, "frame too large")
    key = read_exact(f, 4)
    data = (fb or wsmask.FrameBuffer()).read(f, n, key)
    return bool(b0 & 0x80), b0 & 0x0F, data if fb else bytes(data)


def read_message(f):
    """One whole client message, fragments joined: (opcode, payload). A control frame
    (opcode 8 and up) is returned as it comes; the caller answers pings."""
    parts, first_op = [], None
    while True:
        fin, op, data = read_frame(f)
        if op >= 8:
            return op, data
        if first_op is None:
            first_op = op
        parts.append(data)
        if fin:
            return first_op, b"".join(parts)


class Handler(http.server.BaseHTTPRequestHandler):
    """A request handler with the replies every peer writes."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, status, body, ctype="text/plain", headers=()):
        """A whole reply: status, Content-Type (None: none), Content-Length, extra headers, body."""
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj, ctype="application/json"):
        self.send_body(status, json.dumps(obj).encode(), ctype)

    def read_body(self):
        """The request's body by its Content-Length (b"" when none)."""
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def wants_upgrade(self):
        return self.headers.get("Upgrade", "").lower() == "websocket"

    def upgrade(self, protocol=None, accept=None, close=True):
        """Answers 101 Switching Protocols (accept: a value to send instead of the right one);
        the connection then carries frames and, with close, closes when the handler returns."""
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept or ws_accept(self.headers.get("Sec-WebSocket-Key", "")))
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        if close:
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    """A thread per connection. A handler's exception (most often a client that hung up early,
    which the tests do on purpose) is printed only when quiet is False or the environment
    variable named by log_env is set."""
    daemon_threads = True
    allow_reuse_address = True
    quiet = True
    log_env = None

    def handle_error(self, request, client_address):
        if not self.quiet or (self.log_env and os.environ.get(self.log_env)):
            super().handle_error(request, client_address)


def tls_context(certdir, verify_mode=ssl.CERT_OPTIONAL):
    """A server context from make-certs.sh's CERTDIR: server.pem/key, client certificates of ca.pem."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, "server.pem"), os.path.join(certdir, "server.key"))
    ctx.load_verify_locations(os.path.join(certdir, "ca.pem"))
    ctx.verify_mode = verify_mode
    return ctx


def serve(handler, server_class=Server, tls=None, **wrap):
    """Listens on 127.0.0.1 (a free port), wraps the socket in tls (an SSLContext) if given,
    prints "PORT N" and serves on a daemon thread. Returns the server."""
    srv = server_class(("127.0.0.1", 0), handler)
    if tls:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True, **wrap)
    print("PORT %d" % srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
