"""wsmask.py — reading a masked WebSocket client frame's payload (RFC 6455 section 5.3)
fast in pure Python, for the test peers (peer.py's read_frame).

The payload is XORed with the 4-byte key in 16 KiB pieces, each as one integer, in place:
one XOR over the whole frame as a single big integer slows sharply with frame size (its
fresh 256 KiB+ buffers are page-faulted in for every frame), and a byte loop is slower still.
A FrameBuffer reuses one buffer per connection, so a frame costs no new large allocation."""

CHUNK = 16384  # a multiple of 4: every piece starts at key offset 0
_WHOLE = {}


def unmask(buf, key):
    """XOR buf (a bytearray or writable memoryview) in place with key (4 bytes) repeated."""
    mv = memoryview(buf)
    n = len(mv)
    whole = _WHOLE.get(key)
    if whole is None:
        whole = _WHOLE[key] = int.from_bytes(key * (CHUNK // 4), "little")
        if len(_WHOLE) > 64:
            _WHOLE.clear()
    for off in range(0, n, CHUNK):
        m = min(CHUNK, n - off)
        k = whole if m == CHUNK else int.from_bytes((key * (m // 4 + 1))[:m], "little")
        mv[off:off + m] = (int.from_bytes(mv[off:off + m], "little") ^ k).to_bytes(m, "little")


class FrameBuffer:
    """One connection's frame buffer: read(f, n, key) returns a memoryview of the n unmasked
    bytes, valid until the next read (copy with bytes() to keep them)."""

    def __init__(self):
        self.buf = bytearray(0)

    def read(self, f, n, key):
        if len(self.buf) < n:
            self.buf = bytearray(max(n, 2 * len(self.buf)))
        mv = memoryview(self.buf)[:n]
        got = 0
        while got < n:
            k = f.readinto(mv[got:])
            if not k:
                raise EOFError
            got += k
        unmask(mv, key)
        return mv
