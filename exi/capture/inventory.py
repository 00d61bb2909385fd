"""What a capture holds, frame by frame, for captures in which no V2G message was found:
"66 frames: 65 HomePlug AV, 1 DHCPv6".  A second, plain-Python pass over the file; it only
runs when the decoding pass found nothing to show.
"""
from __future__ import annotations

from collections import Counter

from . import _net, _pcap
from ._pcap import FrameError

ETHERTYPES = {0x88E1: "HomePlug AV", 0x887B: "HomePlug 1.0", 0x0806: "ARP", 0x88CC: "LLDP",
              0x8035: "RARP"}
# link types and protocol numbers as in _net (whose compiled build does not export them)
ETHERNET, LINUX_SLL, LINUX_SLL2 = 1, 113, 276
ETH_IPV4, ETH_IPV6, UDP = 0x0800, 0x86DD, 17
UDP_PORTS = {67: "DHCP", 68: "DHCP", 546: "DHCPv6", 547: "DHCPv6", 15118: "SDP", 53: "DNS",
             5353: "mDNS", 123: "NTP", 5355: "LLMNR", 1900: "SSDP", 137: "NetBIOS", 138: "NetBIOS"}


def _ethertype(linktype: int, b: bytes):
    """(ethertype, offset of the network header) or (None, 0)."""
    if linktype == ETHERNET and len(b) >= 14:
        et, off = b[12] << 8 | b[13], 14
        while et in (0x8100, 0x88A8, 0x9100) and len(b) >= off + 4:
            et, off = b[off + 2] << 8 | b[off + 3], off + 4
        return et, off
    if linktype == LINUX_SLL and len(b) >= 16:
        return b[14] << 8 | b[15], 16
    if linktype == LINUX_SLL2 and len(b) >= 20:
        return b[0] << 8 | b[1], 20
    return None, 0


def kind(linktype: int, b: bytes) -> str:
    """A short name for what one frame carries."""
    p = _net.parse(linktype, b)
    if p is not None:
        proto, _src, _dst, sport, dport = p[:5]
        if proto == UDP:
            return UDP_PORTS.get(dport) or UDP_PORTS.get(sport) or "other UDP"
        return "TCP"
    et, off = _ethertype(linktype, b)
    if et in ETHERTYPES:
        return ETHERTYPES[et]
    if et == ETH_IPV6 or (et is None and b[:1] and b[0] >> 4 == 6):
        off = off if et else 0
        if len(b) > off + 6 and b[off + 6] == 58:
            return "ICMPv6"
        return "other IPv6"
    if et == ETH_IPV4 or (et is None and b[:1] and b[0] >> 4 == 4):
        off = off if et else 0
        return "ICMP" if len(b) > off + 9 and b[off + 9] == 1 else "other IPv4"
    if et is not None:
        return f"EtherType 0x{et:04X}"
    return f"link type {linktype}"


def inventory(path: str) -> tuple[int, Counter]:
    """(number of frames, Counter of kind -> frames)."""
    counts: Counter = Counter()
    frames = 0
    with open(path, "rb") as f:
        for item in _pcap.iter_frames(f):
            if item.__class__ is FrameError:
                continue
            frames += 1
            counts[kind(item[2], item[3])] += 1
    return frames, counts


def describe(path: str) -> str:
    """"66 frames: 65 HomePlug AV, 1 DHCPv6" (most frequent first)."""
    frames, counts = inventory(path)
    if not frames:
        return "no frames"
    parts = ", ".join(f"{n} {name}" for name, n in counts.most_common())
    return f"{frames} frame{'s' if frames != 1 else ''}: {parts}"
