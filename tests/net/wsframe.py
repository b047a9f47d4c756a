"""wsframe.py — the server side of WebSocket framing (RFC 6455 section 5.2) shared by the
test peers: tests/net/server.py, tests/k8s/emulator.py and tests/aws/ssm_emulator.py.
Reading client frames is peer.py's; wsmask.py unmasks."""
import struct


def ws_frame(opcode, payload, fin=True, rsv=0, mask=None):
    """One frame: unmasked as a server sends it, or with mask (4 bytes) as a client would."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return head + mask + payload
    return head + payload


def read_exact(f, n):
    """n bytes from the file f, or EOFError when it ends first."""
    data = b""
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
