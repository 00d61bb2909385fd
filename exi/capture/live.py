"""Frames straight from a network interface: an AF_PACKET raw socket (Linux, root or
CAP_NET_RAW), no libpcap.

    with Live("eth1") as live:
        for rec in CaptureReader().read_frames(live.frames(), path=live.spool_path):
            ...

frames() yields (frame_no, time, linktype, bytes) tuples, as the file readers do, until
stop() is called (from a signal handler, another thread, or when `count` frames were
read).  The socket sees both directions and, in promiscuous mode, traffic between
other stations of the link (the EV and an EVSE seen from a third port).  Every frame
is also written to a temporary pcap file (up to SPOOL_LIMIT) so that TLS streams can
be decrypted with tshark when the capture ends.
"""
from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from typing import Iterator, Optional

from .stream import SPOOL_LIMIT        # one bound for both kinds of unbounded input

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
SO_TIMESTAMPNS = 35             # Linux; the control message type is the same number
ARPHRD_TO_LINKTYPE = {1: 1, 772: 1, 0xFFFE: 101}   # Ethernet, loopback (Ethernet framing), none: raw IP
POLL = 0.2                      # seconds between checks of the stop flag


class LiveCaptureError(RuntimeError):
    """The interface cannot be opened (not root, no such interface...)."""


class Live:
    def __init__(self, interface: str, *, promiscuous: bool = True, spool: bool = True,
                 count: Optional[int] = None):
        self.interface = interface
        self.promiscuous = promiscuous
        self.count = count
        self.stopped = False
        self.sock = None
        self.spool = None
        self.spool_path: Optional[str] = None
        self.spooled = 0
        self.want_spool = spool

    def __enter__(self) -> "Live":
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise LiveCaptureError("--live needs root (or the CAP_NET_RAW capability) to open a raw "
                                   "socket; run it as root") from None
        except (AttributeError, OSError) as e:
            raise LiveCaptureError(f"cannot open a raw socket: {e} (--live needs Linux AF_PACKET)") from None
        try:
            sock.bind((self.interface, 0))
        except OSError as e:
            sock.close()
            raise LiveCaptureError(f"interface {self.interface}: {e.strerror or e}") from None
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        if self.promiscuous:
            ifindex = socket.if_nametoindex(self.interface)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)   # dropped with the socket
        sock.settimeout(POLL)
        self.sock = sock
        if self.want_spool:
            fd, self.spool_path = tempfile.mkstemp(suffix=".pcap", prefix="exi-live-")
            self.spool = os.fdopen(fd, "wb")
        return self

    def __exit__(self, *exc) -> bool:
        if self.sock is not None:
            self.sock.close()
        if self.spool is not None:
            self.spool.close()
            os.unlink(self.spool_path)
        return False

    def stop(self) -> None:
        self.stopped = True

    def close_spool(self) -> Optional[str]:
        """The pcap file of what was captured (None if it outgrew SPOOL_LIMIT)."""
        if self.spool is None:
            return None
        self.spool.flush()
        return self.spool_path if self.spooled <= SPOOL_LIMIT else None

    def frames(self) -> Iterator[tuple]:
        sock = self.sock
        n = 0
        anc = socket.CMSG_SPACE(16)
        while not self.stopped:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(262144, anc)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            ts = None
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    ts = sec + nsec * 1e-9
            if ts is None:
                ts = time.time()
            linktype = ARPHRD_TO_LINKTYPE.get(addr[3])
            if linktype is None:
                continue
            n += 1
            self._spool(ts, linktype, data)
            yield (n, ts, linktype, data)
            if self.count is not None and n >= self.count:
                return

    def _spool(self, ts: float, linktype: int, data: bytes) -> None:
        if self.spool is None or self.spooled > SPOOL_LIMIT:
            return
        if not self.spooled:        # nanosecond pcap header, link type of the first frame
            self.spool.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
            self.spooled = 24
        sec = int(ts)
        self.spool.write(struct.pack("<IIII", sec, int((ts - sec) * 1e9), len(data), len(data)))
        self.spool.write(data)
        self.spooled += 16 + len(data)
