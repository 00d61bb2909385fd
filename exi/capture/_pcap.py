"""Frames out of pcap / pcapng files.

dpkt parses the file and interface headers (byte order, timestamp resolution, link
type per interface); the per-packet records are unpacked here with struct straight
from an mmap, because a dpkt object per packet costs more than the rest of the
pipeline together.  Unlike dpkt's readers this one keeps a link type per pcapng
interface, handles several sections, and never raises on a damaged file: it reports
the damage as a FrameError item, tries to resynchronise on the next plausible record,
and goes on.

Compiled by setup.py (Cython pure-Python mode: C offsets in the record loop), also runs
as plain Python; timestamps stay Python float arithmetic, so both give the same values.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Union

import cython
import dpkt
from dpkt import pcapng as _ng

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_CAPLEN = 262144 * 4        # far above any real snaplen; larger means corruption
RESYNC_WINDOW = 1 << 20        # how far to look for the next good record


@dataclass(frozen=True)
class FrameError:
    """Damage found in the capture file itself (not in a packet)."""
    frame: int          # number of the last good frame before the damage (1-based)
    offset: int         # file offset where the damage was found
    message: str


Item = Union[tuple, FrameError]


def is_capture(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


def iter_frames(f: BinaryIO) -> Iterator[Item]:
    """Yield (frame_no, ts, linktype, data) tuples, or FrameError on damage.

    frame_no counts from 1 as Wireshark does.  `f` must be a real file (it is mapped).
    """
    try:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:          # empty file
        yield FrameError(0, 0, "empty file")
        return
    try:
        head = buf[:4]
        if head == PCAPNG_MAGIC:
            yield from _pcapng(buf)
        elif head in PCAP_MAGICS:
            yield from _pcap(buf)
        else:
            yield FrameError(0, 0, f"not a pcap/pcapng file (magic {head.hex()})")
    finally:
        buf.close()


@cython.locals(end=cython.Py_ssize_t, off=cython.Py_ssize_t, n=cython.Py_ssize_t, caplen=cython.Py_ssize_t,
               origlen=cython.Py_ssize_t, data_end=cython.Py_ssize_t, caplimit=cython.Py_ssize_t)
def _pcap(buf) -> Iterator[Item]:
    end = len(buf)
    if end < 24:
        yield FrameError(0, 0, "truncated pcap file header")
        return
    hdr = dpkt.pcap.LEFileHdr(buf[:24]) if buf[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") \
        else dpkt.pcap.FileHdr(buf[:24])
    order, unit = PCAP_MAGICS[buf[:4]]
    linktype = hdr.linktype & 0x0FFFFFFF   # upper bits carry FCS information
    snaplen = hdr.snaplen or MAX_CAPLEN
    caplimit = min(MAX_CAPLEN, max(snaplen, 65535) * 4)
    rec = struct.Struct(order + "IIII")
    unpack = rec.unpack_from
    off, n = 24, 0
    while off < end:
        if off + 16 > end:
            yield FrameError(n, off, f"truncated record header ({end - off} bytes at end of file)")
            return
        sec, frac, caplen, origlen = unpack(buf, off)
        if caplen > caplimit or origlen < caplen:
            yield FrameError(n, off, f"corrupt record header (caplen {caplen}, len {origlen})")
            nxt = _pcap_resync(buf, off + 1, unpack, sec, snaplen)
            if nxt < 0:
                return
            off = nxt
            continue
        data_end = off + 16 + caplen
        if data_end > end:
            n += 1
            yield FrameError(n, off, f"truncated packet: {caplen} bytes announced, "
                             f"{end - off - 16} in file")
            return
        n += 1
        yield (n, sec + frac * unit, linktype, buf[off + 16:data_end])
        off = data_end


def _pcap_resync(buf, start, unpack, last_sec, snaplen) -> int:
    """Offset of the next record header that looks right and is followed by another
    one (or by the end of the file); -1 if none within RESYNC_WINDOW."""
    end = len(buf)
    limit = min(end - 16, start + RESYNC_WINDOW)
    for off in range(start, limit + 1):
        sec, frac, caplen, origlen = unpack(buf, off)
        if abs(sec - last_sec) > 86400 or caplen > snaplen or origlen < caplen or caplen < 14:
            continue
        nxt = off + 16 + caplen
        if nxt == end:
            return off
        if nxt + 16 <= end:
            s2, _, c2, o2 = unpack(buf, nxt)
            if abs(s2 - sec) <= 86400 and c2 <= snaplen and o2 >= c2:
                return off
    return -1


class _Iface:
    __slots__ = ("linktype", "unit", "offset")

    def __init__(self, linktype, unit, offset):
        self.linktype, self.unit, self.offset = linktype, unit, offset


def _pcapng(buf) -> Iterator[Item]:
    end = len(buf)
    off, n = 0, 0
    order = "<"
    ifaces: list[_Iface] = []
    last_ts = 0.0
    while off < end:
        if off + 12 > end:
            yield FrameError(n, off, f"truncated block header ({end - off} bytes at end of file)")
            return
        if buf[off:off + 4] == PCAPNG_MAGIC:            # a new section: byte order may change
            bom = buf[off + 8:off + 12]
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
            if not order:
                yield FrameError(n, off, "section header with unknown byte order")
                return
            ifaces = []
        btype, blen = struct.unpack_from(order + "II", buf, off)
        if blen < 12 or blen % 4 or off + blen > end or \
                struct.unpack_from(order + "I", buf, off + blen - 4)[0] != blen:
            nxt = _pcapng_resync(buf, off + 4, order)
            if nxt < 0 and off + blen > end:     # nothing sane follows: the file was cut short
                yield FrameError(n, off, f"truncated block: {blen} bytes announced, {end - off} in file")
                return
            yield FrameError(n, off, f"corrupt block (type {btype:#x}, length {blen})")
            if nxt < 0:
                return
            off = nxt
            continue
        if btype == 6:                                     # Enhanced Packet Block
            iface, hi, lo, caplen, _orig = struct.unpack_from(order + "IIIII", buf, off + 8)
            if iface >= len(ifaces) or 28 + caplen > blen:
                yield FrameError(n + 1, off, f"bad packet block (interface {iface}, caplen {caplen})")
            else:
                i = ifaces[iface]
                n += 1
                last_ts = ((hi << 32) | lo) * i.unit + i.offset
                yield (n, last_ts, i.linktype, buf[off + 28:off + 28 + caplen])
        elif btype == 3:                                   # Simple Packet Block: no timestamp
            (origlen,) = struct.unpack_from(order + "I", buf, off + 8)
            caplen = min(origlen, blen - 16)
            if ifaces:
                n += 1
                yield (n, last_ts, ifaces[0].linktype, buf[off + 12:off + 12 + caplen])
        elif btype == 2:                                   # obsolete Packet Block
            iface, _drops, hi, lo, caplen, _orig = struct.unpack_from(order + "HHIIII", buf, off + 8)
            if iface < len(ifaces) and 28 + caplen <= blen:
                i = ifaces[iface]
                n += 1
                last_ts = ((hi << 32) | lo) * i.unit + i.offset
                yield (n, last_ts, i.linktype, buf[off + 28:off + 28 + caplen])
        elif btype == 1:                                   # Interface Description Block
            ifaces.append(_idb(buf[off:off + blen], order))
        off += blen


def _idb(block: bytes, order: str) -> _Iface:
    idb = (_ng.InterfaceDescriptionBlockLE if order == "<" else _ng.InterfaceDescriptionBlock)(block)
    unit, offset = 1e-6, 0
    for opt in idb.opts:
        if opt.code == _ng.PCAPNG_OPT_IF_TSRESOL and opt.data:
            v = opt.data[0]
            unit = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -(v & 0x7F)
        elif opt.code == _ng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) >= 8:
            offset = struct.unpack(order + "q", opt.data[:8])[0]
    return _Iface(idb.linktype, unit, offset)


def _pcapng_resync(buf, start, order) -> int:
    end = len(buf)
    start += (-start) % 4
    for off in range(start, min(end - 12, start + RESYNC_WINDOW), 4):
        btype, blen = struct.unpack_from(order + "II", buf, off)
        if btype in (1, 2, 3, 5, 6) and 12 <= blen and blen % 4 == 0 and off + blen <= end and \
                struct.unpack_from(order + "I", buf, off + blen - 4)[0] == blen:
            return off
    return -1
