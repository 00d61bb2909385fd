"""Decode V2G traffic (SDP, V2GTP, EXI; TLS with a key log; HomePlug AV / ISO 15118-3 SLAC
frames, see slac.py) out of pcap/pcapng captures, a pipe, or a live interface (live.py).

    for rec in exi.capture.read("session.pcapng", keylog=None):
        print(rec.time, rec.direction, rec.name, rec.content)
"""
from ._impl import IMPLEMENTATION  # noqa: F401  (must run before the hot modules are imported)
from .reader import (EVCC_TO_SECC, SECC_TO_EVCC, CaptureReader, MessageRecord, TsharkMissing,
                     read)
from ._codec import CodecUnavailable, Decoder

__all__ = ["read", "CaptureReader", "MessageRecord", "Decoder", "CodecUnavailable",
           "TsharkMissing", "EVCC_TO_SECC", "SECC_TO_EVCC"]
