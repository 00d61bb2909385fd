"""Synthetic V2G captures for tests and benchmarks (packets built with dpkt).

    conv = TcpConversation(EVCC6, 50000, SECC6, 15118)
    conv.handshake()
    conv.send(True, v2gtp(0x8001, exi_bytes))      # EVCC -> SECC
    write_pcap("x.pcap", conv.frames)

Frames are (timestamp, ip_packet_bytes); the link layer is added when writing, so the
same conversation can be written as Ethernet, Linux SLL/SLL2 or raw IP.
"""
from __future__ import annotations

import socket
import struct
from typing import Iterable, Optional

import dpkt

EVCC6 = "fe80::1:2ff:fe03:405"
SECC6 = "fe80::a:bff:fe0c:d0e"
EVCC4, SECC4 = "192.168.1.10", "192.168.1.20"
MAC_EVCC, MAC_SECC = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def v2gtp(ptype: int, payload: bytes) -> bytes:
    return struct.pack("!BBHI", 1, 0xFE, ptype, len(payload)) + payload


def _ip(src: str, dst: str, proto: int, l4) -> bytes:
    if ":" in src:
        l4b = bytes(l4)
        ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                          nxt=proto, hlim=64, plen=len(l4b), data=l4)
        ip.extension_hdrs = {}
        return bytes(ip)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=l4)
    ip.len = 20 + len(bytes(l4))
    return bytes(ip)


def _tcp_packet(src, sport, dst, dport, seq, ack, flags, data=b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, data=data)
    if ":" in src:      # dpkt fills the checksum when the IP layer packs; keep it simple and valid
        ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                           nxt=6, hlim=64, data=tcp)
        ip6.plen = len(bytes(tcp))
        ip6.extension_hdrs = {}
        return bytes(ip6)
    return _ip(src, dst, 6, tcp)


def udp_packet(src, sport, dst, dport, data: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    udp.ulen = 8 + len(data)
    return _ip(src, dst, 17, udp)


class TcpConversation:
    """One TCP connection; every method appends frames and advances the clock."""

    def __init__(self, client: str = EVCC6, cport: int = 50000, server: str = SECC6, sport: int = 15118,
                 t0: float = 1_700_000_000.0, isn=(1000, 5000)):
        self.ep = ((client, cport), (server, sport))
        self.seq = [isn[0], isn[1]]
        self.t = t0
        self.frames: list[tuple[float, bytes]] = []

    def _pkt(self, from_client: bool, flags: int, data: bytes = b"", seq: Optional[int] = None) -> bytes:
        i = 0 if from_client else 1
        (s, sp), (d, dp) = self.ep if from_client else self.ep[::-1]
        seq = self.seq[i] if seq is None else seq
        return _tcp_packet(s, sp, d, dp, seq & 0xFFFFFFFF, self.seq[1 - i] & 0xFFFFFFFF, flags, data)

    def _add(self, pkt: bytes, dt: float) -> int:
        self.t += dt
        self.frames.append((self.t, pkt))
        return len(self.frames) - 1

    def handshake(self, dt: float = 0.001) -> None:
        S, A = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK
        self._add(self._pkt(True, S), dt)
        self.seq[0] += 1
        self._add(self._pkt(False, S | A), dt)
        self.seq[1] += 1
        self._add(self._pkt(True, A), dt)

    def send(self, from_client: bool, data: bytes, dt: float = 0.01, split: Iterable[int] = ()) -> list[int]:
        """Send data, cut at the given offsets into several segments; return frame indices."""
        cuts = [0, *sorted(c for c in split if 0 < c < len(data)), len(data)]
        idx = []
        for a, b in zip(cuts, cuts[1:]):
            idx.append(self._add(self._pkt(from_client, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data[a:b]), dt))
            self.seq[0 if from_client else 1] += b - a
            dt = 0.0001
        return idx

    def raw_segment(self, from_client: bool, seq_offset: int, data: bytes, dt: float = 0.0001) -> int:
        """A segment at an explicit offset from the current sequence number (retransmissions)."""
        i = 0 if from_client else 1
        return self._add(self._pkt(from_client, dpkt.tcp.TH_ACK, data, seq=self.seq[i] + seq_offset), dt)

    def fin(self, dt: float = 0.001) -> None:
        F, A = dpkt.tcp.TH_FIN, dpkt.tcp.TH_ACK
        self._add(self._pkt(True, F | A), dt)
        self.seq[0] += 1
        self._add(self._pkt(False, F | A), dt)
        self.seq[1] += 1
        self._add(self._pkt(True, A), dt)


def sdp_frames(evcc: str, secc: str, secc_port: int, t: float, tls: bool = False, cport: int = 55555):
    req = v2gtp(0x9000, bytes([0x00 if tls else 0x10, 0x00]))
    res = v2gtp(0x9001, socket.inet_pton(socket.AF_INET6, secc) + struct.pack("!H", secc_port)
                + bytes([0x00 if tls else 0x10, 0x00]))
    return [(t, udp_packet(evcc, cport, "ff02::1", 15118, req)),
            (t + 0.01, udp_packet(secc, 15118, evcc, cport, res))]


def link_frame(linktype: int, ip: bytes) -> bytes:
    v6 = ip[0] >> 4 == 6
    et = 0x86DD if v6 else 0x0800
    if linktype == 1:
        return MAC_SECC + MAC_EVCC + struct.pack("!H", et) + ip
    if linktype == 113:     # Linux cooked v1: packet type, ARPHRD, addr len, addr(8), protocol
        return struct.pack("!HHH8sH", 0, 1, 6, MAC_EVCC + b"\0\0", et) + ip
    if linktype == 276:     # Linux cooked v2: protocol, reserved, ifindex, ARPHRD, type, addr len, addr(8)
        return struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6, MAC_EVCC + b"\0\0") + ip
    if linktype in (101, 228, 229):
        return ip
    if linktype == 0:       # BSD loopback: address family in host byte order
        return struct.pack("=I", 30 if v6 else 2) + ip
    raise ValueError(f"link type {linktype} not supported by synth")


def write_pcap(path: str, frames, linktype: int = 1, nano: bool = False) -> None:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=65535, linktype=linktype, nano=nano)
        for ts, ip in frames:
            w.writepkt(link_frame(linktype, ip), ts)


def write_pcapng(path: str, frames, linktype: int = 1) -> None:
    with open(path, "wb") as f:
        w = dpkt.pcapng.Writer(f, snaplen=65535, linktype=linktype)
        for ts, ip in frames:
            w.writepkt(link_frame(linktype, ip), ts)
