"""V2G Transfer Protocol (V2GTP) framing, sans-I/O.

Every V2G message -- SDP on UDP, EXI on TCP/TLS -- travels in a V2GTP frame::

    +---------+-----------------+--------------+----------------+---------+
    | version | inverse version | payload type | payload length | payload |
    |  0x01   |      0xFE       |  u16 (BE)    |   u32 (BE)     |  ...    |
    +---------+-----------------+--------------+----------------+---------+

DIN SPEC 70121, ISO 15118-2:2014 (clause 7.8) and ISO 15118-20 define the same header
(clause numbers from memory); the payload type codes live in ``exi.registry``.

Header processing follows the order the standards give for a receiving V2GTP entity
(ISO 15118-2 "V2GTP header processing"; its requirement ids are not cited here because
we could not verify them against the text -- the actions below are our reading):

1. protocol version and its inverse -- wrong: the message cannot be trusted to be
   V2GTP at all, so the entity discards it and closes the TCP connection
   (``Action.CLOSE_CONNECTION``);
2. payload type -- unknown: discard the message (``Action.DISCARD``), the length is
   still valid so the stream stays in sync;
3. payload length against the receive buffer -- too large: discard and, on TCP, close
   (``Action.CLOSE_CONNECTION``); nobody buffers 4 GiB to skip a frame.

V2GTP defines no negative acknowledgement message (unlike DoIP, whose header it is
modelled on), so "the response the standard asks for" is always one of the two actions
above; ``V2GTPError.action`` carries it, like h11's ``error_status_hint``.

All checks run on the 8 header bytes alone, BEFORE any payload byte is buffered or any
buffer of the announced size is allocated.
"""
from __future__ import annotations

import enum
import struct
from typing import Collection, NamedTuple, Optional

from exi.registry import PAYLOAD_TYPES

__all__ = [
    "HEADER_LEN", "VERSION", "INVERSE_VERSION", "DEFAULT_MAX_PAYLOAD", "MAX_LENGTH",
    "Action", "Reason", "V2GTPError", "Frame", "pack", "parse_header", "parse_datagram",
    "payload_type_name", "V2GTPFramer",
    "EXI_V2G", "SDP_REQUEST", "SDP_RESPONSE", "SDP_REQUEST_WIRELESS", "SDP_RESPONSE_WIRELESS",
    "SDP_REQUEST_EMSP", "SDP_RESPONSE_EMSP", "SDP_PAYLOAD_TYPES", "TCP_PAYLOAD_TYPES",
]

HEADER_LEN = 8
VERSION = 0x01
INVERSE_VERSION = 0xFE          # VERSION ^ 0xFF
MAX_LENGTH = 0xFFFFFFFF         # what the u32 length field can carry
# The standards leave the receive buffer size to the implementation.  64 KiB holds the
# largest messages seen in practice (-2 CertificateInstallationRes with full chains is a
# few kB; -20 ScheduleExchangeRes with many price levels stays well below) while keeping
# a hostile peer from making us allocate much.  Raise it per connection if needed.
DEFAULT_MAX_PAYLOAD = 64 * 1024

_HEADER = struct.Struct(">BBHI")

# Named codes used by the transport layer; names/meaning come from exi.registry.
EXI_V2G = 0x8001
SDP_REQUEST = 0x9000
SDP_RESPONSE = 0x9001
SDP_REQUEST_WIRELESS = 0x9002
SDP_RESPONSE_WIRELESS = 0x9003
SDP_REQUEST_EMSP = 0x9004
SDP_RESPONSE_EMSP = 0x9005
SDP_PAYLOAD_TYPES = frozenset(c for c in PAYLOAD_TYPES if 0x9000 <= c <= 0x90FF)
# What may arrive on the TCP/TLS connection: everything that is not SDP (SDP is UDP only).
TCP_PAYLOAD_TYPES = frozenset(c for c in PAYLOAD_TYPES if c not in SDP_PAYLOAD_TYPES)


class Action(enum.Enum):
    """What the receiving V2GTP entity has to do with the offending message."""
    CLOSE_CONNECTION = "close the TCP connection"   # the byte stream cannot be trusted any more
    DISCARD = "discard the message"                 # skip it; the stream is still in sync


class Reason(enum.Enum):
    BAD_VERSION = "unsupported protocol version"
    BAD_INVERSE = "inverse protocol version does not match"
    UNKNOWN_PAYLOAD_TYPE = "unknown or unexpected payload type"
    OVERSIZE = "payload length exceeds the receive buffer"
    TRUNCATED = "datagram shorter than its header says"
    LENGTH_MISMATCH = "datagram length differs from the header's payload length"


class V2GTPError(ValueError):
    """A V2GTP header (or datagram) the receiver must reject.

    ``action`` is what the standard asks of the receiver, ``reason`` which check failed;
    ``payload_type`` and ``length`` are the header's values when they could be read.
    """

    def __init__(self, reason: Reason, detail: str, *, action: Action,
                 payload_type: Optional[int] = None, length: Optional[int] = None):
        self.reason = reason
        self.detail = detail
        self.action = action
        self.payload_type = payload_type
        self.length = length
        super().__init__(f"V2GTP: {reason.value}: {detail} ({action.value})")


class Frame(NamedTuple):
    payload_type: int
    payload: bytes

    @property
    def name(self) -> str:
        return payload_type_name(self.payload_type)

    def pack(self) -> bytes:
        return pack(self.payload_type, self.payload)


def payload_type_name(code: int) -> str:
    p = PAYLOAD_TYPES.get(code)
    return p.name if p else f"unknown payload type 0x{code:04X}"


def pack(payload_type: int, payload: bytes) -> bytes:
    """One V2GTP frame: header + payload."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type!r} does not fit in 16 bits")
    if len(payload) > MAX_LENGTH:
        raise ValueError("payload longer than the 32-bit length field allows")
    return _HEADER.pack(VERSION, INVERSE_VERSION, payload_type, len(payload)) + bytes(payload)


def parse_header(buf: bytes, *, max_payload: int = MAX_LENGTH,
                 payload_types: Optional[Collection[int]] = None) -> tuple[int, int]:
    """Check the first 8 bytes of ``buf``; return ``(payload_type, payload_length)``.

    ``payload_types`` restricts the accepted codes (default: every code in
    ``exi.registry.PAYLOAD_TYPES``); ``max_payload`` is the receive buffer size.
    Raises :class:`V2GTPError` in the order of the standard's header processing.
    """
    if len(buf) < HEADER_LEN:
        raise ValueError(f"V2GTP header needs {HEADER_LEN} bytes, got {len(buf)}")
    version, inverse, ptype, length = _HEADER.unpack_from(buf, 0)
    if version != VERSION:
        raise V2GTPError(Reason.BAD_VERSION, f"0x{version:02X} (expected 0x{VERSION:02X})",
                         action=Action.CLOSE_CONNECTION, payload_type=ptype, length=length)
    if inverse != INVERSE_VERSION:
        raise V2GTPError(Reason.BAD_INVERSE,
                         f"0x{inverse:02X} (expected 0x{INVERSE_VERSION:02X})",
                         action=Action.CLOSE_CONNECTION, payload_type=ptype, length=length)
    allowed = PAYLOAD_TYPES if payload_types is None else payload_types
    if ptype not in allowed:
        # Only a length we would have accepted can be skipped; otherwise closing is the
        # one safe answer.
        action = Action.DISCARD if length <= max_payload else Action.CLOSE_CONNECTION
        raise V2GTPError(Reason.UNKNOWN_PAYLOAD_TYPE, payload_type_name(ptype),
                         action=action, payload_type=ptype, length=length)
    if length > max_payload:
        raise V2GTPError(Reason.OVERSIZE, f"{length} > {max_payload} bytes",
                         action=Action.CLOSE_CONNECTION, payload_type=ptype, length=length)
    return ptype, length


def parse_datagram(data: bytes, *, max_payload: int = 0xFFFF,
                   payload_types: Optional[Collection[int]] = None) -> Frame:
    """One V2GTP frame that must fill a UDP datagram exactly (SDP).

    Every error here means "discard the datagram" (there is no connection to close).
    """
    if len(data) < HEADER_LEN:
        raise V2GTPError(Reason.TRUNCATED, f"{len(data)} bytes", action=Action.DISCARD)
    try:
        ptype, length = parse_header(data, max_payload=max_payload, payload_types=payload_types)
    except V2GTPError as e:
        raise V2GTPError(e.reason, e.detail, action=Action.DISCARD, payload_type=e.payload_type,
                         length=e.length) from None
    if len(data) - HEADER_LEN < length:
        raise V2GTPError(Reason.TRUNCATED, f"header says {length}, datagram has "
                         f"{len(data) - HEADER_LEN}", action=Action.DISCARD,
                         payload_type=ptype, length=length)
    if len(data) - HEADER_LEN > length:
        raise V2GTPError(Reason.LENGTH_MISMATCH, f"header says {length}, datagram has "
                         f"{len(data) - HEADER_LEN}", action=Action.DISCARD,
                         payload_type=ptype, length=length)
    return Frame(ptype, bytes(data[HEADER_LEN:]))


class V2GTPFramer:
    """Incremental V2GTP deframer for a byte stream (TCP or TLS).

    Feed it chunks of any size; it returns the frames completed so far::

        framer = V2GTPFramer(max_payload=65536)
        for frame in framer.feed(data):
            ...

    On a bad header it raises :class:`V2GTPError` before buffering a single payload
    byte.  Frames that were complete before the bad header are not lost: that call
    returns them and the error is raised by the next ``feed()`` (``feed(b"")`` will do).
    After an error with ``Action.CLOSE_CONNECTION`` every further ``feed`` raises it
    again.  After ``Action.DISCARD`` the framer skips the payload (without storing it)
    and carries on if fed more.
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 payload_types: Optional[Collection[int]] = TCP_PAYLOAD_TYPES):
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        self.payload_types = payload_types
        self._buf = bytearray()
        self._pending_error: Optional[V2GTPError] = None
        self._fatal: Optional[V2GTPError] = None
        self._skip = 0                     # payload bytes of a discarded frame still to drop
        self._rest = b""                   # input after a discarded frame, replayed next feed
        self._need: Optional[tuple[int, int]] = None   # header parsed, waiting for payload

    @property
    def buffered(self) -> int:
        """Bytes held (header or payload) of the frame in progress."""
        return len(self._buf)

    @property
    def closed(self) -> bool:
        return self._fatal is not None

    @property
    def has_pending(self) -> bool:
        """True when ``feed(b"")`` would raise a held-back error or parse held-back bytes."""
        return self._pending_error is not None or (self._fatal is None and bool(self._rest))

    def feed(self, data: bytes) -> list[Frame]:
        if (len(data) >= HEADER_LEN and not self._buf and self._need is None and not self._skip
                and not self._rest and self._pending_error is None and self._fatal is None):
            # The common case on a request/response link: exactly one whole frame.
            try:
                ptype, length = parse_header(data, max_payload=self.max_payload,
                                             payload_types=self.payload_types)
            except V2GTPError:
                pass                       # the general path below keeps the error state
            else:
                if len(data) == HEADER_LEN + length:
                    return [Frame(ptype, bytes(data[HEADER_LEN:]))]
        if self._pending_error is not None:
            err, self._pending_error = self._pending_error, None
            if err.action is Action.DISCARD:
                self._rest += bytes(data)  # not lost: processed by the following feed()
            raise err
        if self._fatal is not None:
            raise self._fatal
        if self._rest:
            # Bytes that followed a discarded frame in an earlier chunk.
            data, self._rest = self._rest + bytes(data), b""
        frames: list[Frame] = []
        view = memoryview(data)
        pos = 0
        n = len(view)
        while pos < n or (self._need is not None and self._need[1] == len(self._buf)):
            if self._skip:
                k = min(self._skip, n - pos)
                self._skip -= k
                pos += k
                continue
            if self._need is None:
                # Collect the 8 header bytes, no more, and judge them alone.
                k = min(HEADER_LEN - len(self._buf), n - pos)
                self._buf += view[pos:pos + k]
                pos += k
                if len(self._buf) < HEADER_LEN:
                    break
                try:
                    ptype, length = parse_header(self._buf, max_payload=self.max_payload,
                                                 payload_types=self.payload_types)
                except V2GTPError as err:
                    self._buf.clear()
                    if err.action is Action.CLOSE_CONNECTION:
                        self._fatal = err
                    else:
                        # Drop what we already have of the payload, keep what follows it.
                        self._skip = err.length or 0
                        k = min(self._skip, n - pos)
                        self._skip -= k
                        pos += k
                        self._rest = bytes(view[pos:])
                    if frames:
                        self._pending_error = err
                        return frames
                    raise
                self._buf.clear()
                self._need = (ptype, length)
            ptype, length = self._need
            k = min(length - len(self._buf), n - pos)
            self._buf += view[pos:pos + k]
            pos += k
            if len(self._buf) < length:
                break
            frames.append(Frame(ptype, bytes(self._buf)))
            self._buf.clear()
            self._need = None
        return frames
