"""pcap / pcapng frames read from a stream as they arrive (stdin, a pipe, a socket).

`tshark -i eth1 -w - | exi15118 decode -` must print each message when its frame
arrives: the file reader (_pcap) maps a whole file, so a stream is read here record by
record instead, each read asking for exactly the bytes the next header announces.
The bytes read are also spooled to a temporary file (up to SPOOL_LIMIT) so that TLS
streams can be decrypted with tshark once the input ends.

Damage ends the stream with a FrameError item (there is no way to look ahead for the
next good record without waiting for more input).
"""
from __future__ import annotations

import os
import stat
import struct
import sys
import tempfile
from typing import BinaryIO, Iterator, Optional

from ._pcap import MAX_CAPLEN, PCAP_MAGICS, PCAPNG_MAGIC, FrameError, _idb

SPOOL_LIMIT = 512 << 20         # bytes of a stream kept for TLS decryption at its end
MAX_BLOCK = 16 << 20            # a larger pcapng block means corruption


def is_stream(source) -> bool:
    """True for "-" and file objects that cannot be mapped (pipes, sockets, terminals);
    a regular file redirected to stdin is read like a file."""
    if isinstance(source, (str, os.PathLike)):
        if str(source) != "-":
            return False
        source = sys.stdin.buffer
    try:
        return not stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return True


class Spool:
    """Reads a stream and keeps a copy of what was read in a temporary file."""

    def __init__(self, source):
        self.src = sys.stdin.buffer if isinstance(source, (str, os.PathLike)) else source
        fd, self.path = tempfile.mkstemp(suffix=".pcap", prefix="exi-stream-")
        self.out = os.fdopen(fd, "wb")
        self.kept = 0
        self.complete = True

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> bool:
        if not self.out.closed:
            self.out.close()
        os.unlink(self.path)
        return False

    def read(self, n: int) -> bytes:
        data = self.src.read(n)
        if data and self.complete:
            if self.kept + len(data) > SPOOL_LIMIT:
                self.complete = False
            else:
                self.out.write(data)
                self.kept += len(data)
        return data or b""

    def close_for_reading(self) -> Optional[str]:
        """The spooled copy's path (None when the stream outgrew SPOOL_LIMIT)."""
        self.out.close()
        return self.path if self.complete else None


def _read_exact(f, n: int) -> bytes:
    """n bytes, fewer only at the end of the stream (short reads of pipes are joined)."""
    data = f.read(n)
    while 0 < len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def iter_frames(f: BinaryIO) -> Iterator:
    """Yield (frame_no, time, linktype, data) or FrameError, as _pcap.iter_frames does."""
    head = _read_exact(f, 4)
    if not head:
        yield FrameError(0, 0, "empty input")
    elif head == PCAPNG_MAGIC:
        yield from _pcapng(f, head)
    elif head in PCAP_MAGICS:
        yield from _pcap(f, head)
    else:
        yield FrameError(0, 0, f"not a pcap/pcapng stream (magic {head.hex()})")


def _pcap(f, magic: bytes) -> Iterator:
    order, unit = PCAP_MAGICS[magic]
    rest = _read_exact(f, 20)
    if len(rest) < 20:
        yield FrameError(0, 0, "truncated pcap file header")
        return
    snaplen, linktype = struct.unpack(order + "II", rest[12:20])
    linktype &= 0x0FFFFFFF
    caplimit = min(MAX_CAPLEN, max(snaplen or MAX_CAPLEN, 65535) * 4)
    off, n = 24, 0
    while True:
        hdr = _read_exact(f, 16)
        if not hdr:
            return
        if len(hdr) < 16:
            yield FrameError(n, off, f"truncated record header ({len(hdr)} bytes at end of input)")
            return
        sec, frac, caplen, origlen = struct.unpack(order + "IIII", hdr)
        if caplen > caplimit or origlen < caplen:
            yield FrameError(n, off, f"corrupt record header (caplen {caplen}, len {origlen}); "
                                     "stream decoding stops here")
            return
        data = _read_exact(f, caplen)
        n += 1
        if len(data) < caplen:
            yield FrameError(n, off, f"truncated packet: {caplen} bytes announced, {len(data)} received")
            return
        yield (n, sec + frac * unit, linktype, data)
        off += 16 + caplen


def _pcapng(f, magic: bytes) -> Iterator:
    order = "<"
    ifaces: list = []
    n, off, last_ts = 0, 0, 0.0
    head = magic
    while True:
        head += _read_exact(f, 8 - len(head))
        if len(head) == 0:
            return
        if len(head) < 8:
            yield FrameError(n, off, f"truncated block header ({len(head)} bytes at end of input)")
            return
        if head[:4] == PCAPNG_MAGIC:                # section header: byte order from its BOM
            bom = _read_exact(f, 4)
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
            if not order:
                yield FrameError(n, off, "section header with unknown byte order")
                return
            ifaces = []
            head += bom
        btype, blen = struct.unpack(order + "II", head[:8])
        if blen < 12 or blen % 4 or blen > MAX_BLOCK or blen < len(head) + 4:
            yield FrameError(n, off, f"corrupt block (type {btype:#x}, length {blen}); "
                                     "stream decoding stops here")
            return
        body = _read_exact(f, blen - len(head))
        block = head + body
        head = b""
        if len(block) < blen:
            yield FrameError(n, off, f"truncated block: {blen} bytes announced, {len(block)} received")
            return
        if struct.unpack_from(order + "I", block, blen - 4)[0] != blen:
            yield FrameError(n, off, f"corrupt block (type {btype:#x}): trailing length differs; "
                                     "stream decoding stops here")
            return
        if btype == 6 and blen >= 32:                  # Enhanced Packet Block
            iface, hi, lo, caplen, _orig = struct.unpack_from(order + "IIIII", block, 8)
            if iface >= len(ifaces) or 28 + caplen > blen:
                yield FrameError(n + 1, off, f"bad packet block (interface {iface}, caplen {caplen})")
            else:
                i = ifaces[iface]
                n += 1
                last_ts = ((hi << 32) | lo) * i.unit + i.offset
                yield (n, last_ts, i.linktype, block[28:28 + caplen])
        elif btype == 3 and blen >= 16 and ifaces:     # Simple Packet Block: no timestamp
            (origlen,) = struct.unpack_from(order + "I", block, 8)
            n += 1
            yield (n, last_ts, ifaces[0].linktype, block[12:12 + min(origlen, blen - 16)])
        elif btype == 1 and blen >= 20:                # Interface Description Block
            ifaces.append(_idb(block, order))
        off += blen
