"""Link layer -> IPv4/IPv6 -> TCP/UDP, with struct on bytes (no per-packet objects).

parse(linktype, frame) returns (proto, src, dst, sport, dport, seq, ack, flags, payload) or
None for anything that is not TCP/UDP over IP.  Addresses stay packed bytes (4 or 16)
until somebody needs text; IP total/payload length trims Ethernet padding, which
otherwise would be appended to the TCP payload of short frames.
"""
from __future__ import annotations

import socket
import struct
from typing import Optional

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
_VLAN = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = (0, 43, 60)        # hop-by-hop, routing, destination options
TCP, UDP = 6, 17

_u16 = struct.Struct("!H").unpack_from
_tcp = struct.Struct("!HHIIBB").unpack_from
_udp = struct.Struct("!HHH").unpack_from


def parse(linktype: int, b: bytes) -> Optional[tuple]:
    if linktype == LINKTYPE_ETHERNET:
        if len(b) < 14:
            return None
        et = _u16(b, 12)[0]
        off = 14
        while et in _VLAN and len(b) >= off + 4:
            et = _u16(b, off + 2)[0]
            off += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(b) < 16:
            return None
        et, off = _u16(b, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(b) < 20:
            return None
        et, off = _u16(b, 0)[0], 20
    elif linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not b:
            return None
        v = b[0] >> 4
        et, off = (ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0), 0
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(b) < 5:
            return None
        v = b[4] >> 4      # the 4-byte family is host order for NULL; the IP version is not
        et, off = (ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0), 4
    else:
        return None
    if et == ETH_IPV6:
        if len(b) < off + 40:
            return None
        plen = _u16(b, off + 4)[0]
        nh = b[off + 6]
        src, dst = b[off + 8:off + 24], b[off + 24:off + 40]
        end = off + 40 + plen if plen else len(b)   # plen 0: jumbogram, take what is there
        off += 40
        while nh in _IPV6_EXT and off + 8 <= end:
            nh, off = b[off], off + 8 + b[off + 1] * 8
        if nh == 44:                                # fragment: V2G never fragments, skip
            return None
    elif et == ETH_IPV4:
        if len(b) < off + 20:
            return None
        ihl = (b[off] & 0x0F) * 4
        total = _u16(b, off + 2)[0]
        if _u16(b, off + 6)[0] & 0x3FFF:            # MF flag or fragment offset
            return None
        nh = b[off + 9]
        src, dst = b[off + 12:off + 16], b[off + 16:off + 20]
        end = off + total if total else len(b)
        off += ihl
    else:
        return None
    if end > len(b):
        end = len(b)                                # snapped: keep what was captured
    if nh == TCP:
        if end - off < 20:
            return None
        sport, dport, seq, ack, doff, flags = _tcp(b, off)
        return (TCP, src, dst, sport, dport, seq, ack, flags, b[off + (doff >> 4) * 4:end])
    if nh == UDP:
        if end - off < 8:
            return None
        sport, dport, _len = _udp(b, off)
        return (UDP, src, dst, sport, dport, 0, 0, 0, b[off + 8:end])
    return None


def addr_text(a: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(a) == 16 else socket.AF_INET, a)


def endpoint_text(a: bytes, port: int) -> str:
    return join(addr_text(a), port)


def join(addr: str, port: int) -> str:
    """"[fe80::1]:15118" for IPv6, "10.0.0.1:15118" for IPv4."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
