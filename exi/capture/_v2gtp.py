# cython: boundscheck=True
"""V2GTP framing of a reassembled byte stream, and SDP payloads.

parse_header is exi.v2g.v2gtp's (one header parser in the project).  The capture framer
does not reuse exi.v2g's V2GTPFramer because it must behave differently on bad bytes:
a live endpoint closes the connection, a capture reader reports and resynchronises on
the next header signature; so it inlines the same four header checks on its hot path.

Cython pure-Python mode (see _v2gtp.pxd): compiled by setup.py, also runs as plain Python;
indexing stays bounds-checked when compiled (the bytes come from the capture file).
"""
import struct

import cython

from ..registry import PAYLOAD_TYPES
from ..v2g.v2gtp import parse_header  # noqa: F401  (re-exported for callers of this module)

HEADER_LEN = 8
VERSION, INV_VERSION = 0x01, 0xFE
SIGNATURE = b"\x01\xfe"
KNOWN_TYPES = frozenset(PAYLOAD_TYPES)
MAX_PAYLOAD = 1 << 20      # bounds the per-direction buffer; real V2G messages are < 64 KiB


@cython.locals(length=cython.Py_ssize_t)
def plausible_at(buf: bytes, i) -> cython.bint:
    """A header signature with a known payload type and a sane length starts at buf[i]."""
    if len(buf) - i < HEADER_LEN or buf[i] != VERSION or buf[i + 1] != INV_VERSION:
        return False
    length = buf[i + 4]                     # Py_ssize_t before the shift when compiled
    length = length << 24 | buf[i + 5] << 16 | buf[i + 6] << 8 | buf[i + 7]
    return (buf[i + 2] << 8 | buf[i + 3]) in KNOWN_TYPES and length <= MAX_PAYLOAD


@cython.locals(i=cython.Py_ssize_t)
def find_header(buf: bytes, start=0) -> cython.Py_ssize_t:
    """Index of the next plausible header at or after start, or -1."""
    i = buf.find(SIGNATURE, start)
    while i >= 0:
        if len(buf) - i < HEADER_LEN:
            return -1
        if plausible_at(buf, i):
            return i
        i = buf.find(SIGNATURE, i + 1)
    return -1


@cython.cclass
class Framer:
    """Cuts one direction of a TCP stream into V2GTP messages.

    feed() returns a list of events:
      (offset, payload_type, payload)   a complete message; offset = stream byte offset
      (offset, None, text)              bytes skipped while searching for a header
    A lost segment (gap) drops the partial message and makes the framer search for the
    next header signature; so does a stream picked up in the middle.
    """
    __slots__ = ("buf", "need", "pos", "sync", "skipped", "skip_at")

    def __init__(self, synced):
        self.buf = bytearray()  # the unconsumed tail of the stream
        self.need = 0           # buf length at which a frame (or header) is complete; 0: search
        self.pos = 0            # stream offset of buf[0]
        self.sync = synced      # False: search for a header signature first
        self.skipped = 0
        self.skip_at = 0

    @cython.locals(pos=cython.Py_ssize_t, i=cython.Py_ssize_t, n=cython.Py_ssize_t, j=cython.Py_ssize_t,
                   keep=cython.Py_ssize_t, end=cython.Py_ssize_t, length=cython.Py_ssize_t,
                   maxp=cython.Py_ssize_t, ptype=cython.int, need=cython.Py_ssize_t)
    def feed(self, data: bytes) -> list:
        out = []
        maxp = MAX_PAYLOAD
        if self.buf:
            # a message arriving in many small segments is collected, not re-joined and
            # re-parsed at every segment (that was quadratic in its length)
            self.buf += data
            if len(self.buf) < self.need:
                return out
            data = bytes(self.buf)
        pos, i, n = self.pos, 0, len(data)
        need = 0
        while True:
            if not self.sync:
                j = find_header(data, i)
                if j < 0:
                    keep = max(i, n - HEADER_LEN + 1)       # a header may straddle segments
                    self._skip(keep - i, pos + i)
                    i = keep
                    break
                self._skip(j - i, pos + i)
                i = j
                self.sync = True
                if self.skipped:
                    out.append((self.skip_at, None, f"skipped {self.skipped} bytes without a V2GTP header"))
                    self.skipped = 0
            if n - i < HEADER_LEN:
                need = HEADER_LEN
                break
            ptype = data[i + 2] << 8 | data[i + 3]
            length = data[i + 4]
            length = length << 24 | data[i + 5] << 16 | data[i + 6] << 8 | data[i + 7]
            if data[i] != VERSION or data[i + 1] != INV_VERSION or ptype not in KNOWN_TYPES \
                    or length > maxp:
                self.sync = False
                self.skip_at = pos + i
                i += 1
                self.skipped = 1
                continue
            end = i + HEADER_LEN + length
            if end > n:
                need = end - i
                break
            out.append((pos + i, ptype, data[i + HEADER_LEN:end]))
            i = end
        self.buf = bytearray(data[i:]) if i < n else bytearray()
        self.need = need if i < n else 0
        self.pos = pos + i
        return out

    def _skip(self, count, at):
        if count > 0:
            if not self.skipped:
                self.skip_at = at
            self.skipped += count

    def gap(self, size) -> list:
        """`size` stream bytes were never captured."""
        out = []
        if self.buf or self.skipped:
            lost = len(self.buf) + self.skipped
            out.append((self.skip_at if self.skipped else self.pos, None,
                        f"{lost} bytes before a {size}-byte capture gap discarded (partial message)"))
        self.pos += len(self.buf) + size
        self.buf = bytearray()
        self.need = 0
        self.skipped = 0
        self.sync = False
        return out

    def flush(self) -> list:
        """End of stream: report what is left over."""
        out = []
        buf = self.buf
        if buf and self.sync and len(buf) >= HEADER_LEN:
            ptype, length = struct.unpack_from("!HI", buf, 2)
            out.append((self.pos, None, f"incomplete V2GTP message at end of stream: payload type "
                        f"{ptype:#06x}, {length} bytes announced, {len(buf) - HEADER_LEN} captured"))
        elif buf or self.skipped:
            out.append((self.skip_at if self.skipped else self.pos, None,
                        f"{len(buf) + self.skipped} trailing bytes without a complete V2GTP header"))
        self.buf = bytearray()
        self.need = 0
        self.skipped = 0
        return out


# --- SDP (ISO 15118-2 7.10.1, DIN SPEC 70121 [V2G-DC-...] SECC Discovery) --------------

_SECURITY = {0x00: "TLS", 0x10: "NoTLS"}
_TRANSPORT = {0x00: "TCP", 0x10: "UDP"}


def parse_sdp(ptype: int, payload: bytes) -> tuple[str, dict]:
    """(message name, fields) of an SDP request/response payload (V2GTP header removed)."""
    if ptype in (0x9000, 0x9002):
        if len(payload) < 2:
            raise ValueError(f"SDP request payload too short ({len(payload)} bytes)")
        d = {"Security": _SECURITY.get(payload[0], payload[0]),
             "TransportProtocol": _TRANSPORT.get(payload[1], payload[1])}
        if ptype == 0x9002:
            d["Extra"] = payload[2:].hex()
        return "SECCDiscoveryReq", d
    if len(payload) < 20:
        raise ValueError(f"SDP response payload too short ({len(payload)} bytes)")
    from ._net import addr_text
    d = {"SECCIPAddress": addr_text(payload[:16]), "SECCPort": struct.unpack_from("!H", payload, 16)[0],
         "Security": _SECURITY.get(payload[18], payload[18]),
         "TransportProtocol": _TRANSPORT.get(payload[19], payload[19])}
    if ptype == 0x9003:
        d["Extra"] = payload[20:].hex()
    return "SECCDiscoveryRes", d
