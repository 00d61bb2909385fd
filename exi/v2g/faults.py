"""Logging what peers do wrong without letting a peer flood the log.

A charger is on a cable anyone can plug into: one broken or hostile peer must cost one
log line per fault, and a thousand of them a bounded number of lines.  :class:`FaultLog`
writes one WARNING line per fault, at most ``limit`` lines per kind of fault in each
``period`` seconds; what it holds back is counted and summarised in one line when the
period ends (on the next fault of that kind, or on :meth:`FaultLog.flush`).

Every line names the peer the same way (:func:`peer_label`): ``[fe80::1%eth1]:50123``
for IPv6, ``192.0.2.1:50123`` for IPv4.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Callable, Optional

__all__ = ["peer_label", "FaultLog"]


def peer_label(address) -> str:
    """One text form for a socket address (as getpeername/recvfrom return it)."""
    if not address:
        return "[?]"
    if isinstance(address, str):
        return address
    host, port = str(address[0]), address[1]
    if ":" not in host:
        return f"{host}:{port}"
    if "%" not in host and len(address) > 3 and address[3]:
        try:                                   # recvfrom() gives the scope as an index
            host = f"{host}%{socket.if_indextoname(address[3])}"
        except OSError:
            host = f"{host}%{address[3]}"
    return f"[{host}]:{port}"


class FaultLog:
    """Rate-limited fault lines: ``faults.report(kind, peer, detail)``.

    ``counts`` holds every fault reported per kind (logged or not), for statistics.
    """

    def __init__(self, logger: logging.Logger, *, limit: int = 10, period: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, level: int = logging.WARNING):
        self.log = logger
        self.limit = limit
        self.period = period
        self.clock = clock
        self.level = level
        self.counts: dict[str, int] = {}
        self._window: dict[str, list] = {}      # kind -> [window start, lines, held back]

    def report(self, kind: str, peer, detail: str, *, level: Optional[int] = None) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self.clock()
        w = self._window.get(kind)
        if w is None or now - w[0] >= self.period:
            if w is not None and w[2]:
                self._summary(kind, w)
            w = self._window[kind] = [now, 0, 0]
        if w[1] < self.limit:
            w[1] += 1
            self.log.log(self.level if level is None else level, "%s %s: %s",
                         peer_label(peer), kind, detail)
        else:
            w[2] += 1

    def _summary(self, kind: str, w: list) -> None:
        self.log.log(self.level, "%d more %s faults in %.0f s (not logged one by one)",
                     w[2], kind, self.period)
        w[2] = 0

    def flush(self) -> None:
        """Summarise what is still held back (at shutdown)."""
        for kind, w in self._window.items():
            if w[2]:
                self._summary(kind, w)
