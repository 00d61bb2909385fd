# cython: boundscheck=True
"""Link layer -> IPv4/IPv6 -> TCP/UDP, read straight from the frame's bytes (no per-packet
objects).

parse(linktype, frame) returns (proto, src, dst, sport, dport, seq, ack, flags, payload) or
None for anything that is not TCP/UDP over IP.  Addresses stay packed bytes (4 or 16)
until somebody needs text; IP total/payload length trims Ethernet padding, which
otherwise would be appended to the TCP payload of short frames.

Cython pure-Python mode (see _net.pxd): compiled by setup.py, also runs as plain Python;
indexing stays bounds-checked when compiled (the bytes come from the capture file).
"""
import socket

import cython

# link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = {0: "NULL", 1: "Ethernet", 12: "raw IP", 14: "raw IP", 101: "raw IP",
                       108: "LOOP", 113: "Linux SLL", 228: "IPv4", 229: "IPv6", 276: "Linux SLL2"}

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
TCP, UDP = 6, 17


@cython.locals(n=cython.Py_ssize_t, off=cython.Py_ssize_t, end=cython.Py_ssize_t, et=cython.int,
               v=cython.int, nh=cython.int, plen=cython.Py_ssize_t, total=cython.Py_ssize_t,
               seq=cython.ulonglong, ack=cython.ulonglong, hl=cython.Py_ssize_t)
def parse(linktype, b: bytes):
    n = len(b)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return None
        et = b[12] << 8 | b[13]
        off = 14
        while (et == 0x8100 or et == 0x88A8 or et == 0x9100) and n >= off + 4:     # VLAN tags
            et = b[off + 2] << 8 | b[off + 3]
            off += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return None
        et, off = b[14] << 8 | b[15], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return None
        et, off = b[0] << 8 | b[1], 20
    elif linktype == LINKTYPE_RAW or linktype == 12 or linktype == 14 or linktype == LINKTYPE_IPV4 \
            or linktype == LINKTYPE_IPV6:
        if n == 0:
            return None
        v = b[0] >> 4
        et, off = (ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0), 0
    elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if n < 5:
            return None
        v = b[4] >> 4      # the 4-byte family is host order for NULL; the IP version is not
        et, off = (ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0), 4
    else:
        return None
    if et == ETH_IPV6:
        if n < off + 40:
            return None
        plen = b[off + 4] << 8 | b[off + 5]
        nh = b[off + 6]
        src, dst = b[off + 8:off + 24], b[off + 24:off + 40]
        end = off + 40 + plen if plen else n        # plen 0: jumbogram, take what is there
        if end > n:
            end = n                                 # before the extension headers are walked
        off += 40
        while (nh == 0 or nh == 43 or nh == 60) and off + 8 <= end:   # hop-by-hop, routing, dest. options
            nh, off = b[off], off + 8 + b[off + 1] * 8
        if nh == 44:                                # fragment: V2G never fragments, skip
            return None
    elif et == ETH_IPV4:
        if n < off + 20:
            return None
        hl = (b[off] & 0x0F) * 4
        total = b[off + 2] << 8 | b[off + 3]
        if (b[off + 6] & 0x3F) or b[off + 7]:       # MF flag or fragment offset
            return None
        nh = b[off + 9]
        src, dst = b[off + 12:off + 16], b[off + 16:off + 20]
        end = off + total if total else n
        off += hl
    else:
        return None
    if end > n:
        end = n                                     # snapped: keep what was captured
    if nh == TCP:
        if end - off < 20:
            return None
        seq = b[off + 4]                            # 64-bit before the shift when compiled
        seq = seq << 24 | b[off + 5] << 16 | b[off + 6] << 8 | b[off + 7]
        ack = b[off + 8]
        ack = ack << 24 | b[off + 9] << 16 | b[off + 10] << 8 | b[off + 11]
        hl = (b[off + 12] >> 4) * 4
        return (TCP, src, dst, b[off] << 8 | b[off + 1], b[off + 2] << 8 | b[off + 3], seq, ack,
                b[off + 13], b[off + hl:end])
    if nh == UDP:
        if end - off < 8:
            return None
        return (UDP, src, dst, b[off] << 8 | b[off + 1], b[off + 2] << 8 | b[off + 3], 0, 0, 0,
                b[off + 8:end])
    return None


def addr_text(a: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(a) == 16 else socket.AF_INET, a)


def endpoint_text(a: bytes, port: int) -> str:
    return join(addr_text(a), port)


def join(addr: str, port: int) -> str:
    """"[fe80::1]:15118" for IPv6, "10.0.0.1:15118" for IPv4."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
