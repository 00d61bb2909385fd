"""What the session cores return: bytes to send and events to report.

``receive()``, ``handle_timer()`` and ``start()``/``connection_made()`` return a list of
these, in order.  Drivers send :class:`Send` payloads as V2GTP frames, log/trace the
events and close the connection at :class:`Close`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["Event", "Send", "MessageReceived", "ProtocolNegotiated", "SessionEstablished",
           "PowerDeliveryChanged", "TimerViolation", "SessionEnded", "Close", "BackendRequest"]


class Event:
    """Base class of everything a core returns."""
    __slots__ = ()


@dataclass(frozen=True)
class Send(Event):
    """An encoded message to send as one V2GTP frame."""
    payload: bytes
    schema: str
    name: str                      # message name, e.g. "SessionSetupReq"
    message: Any = field(repr=False, compare=False)   # the object that was encoded
    payload_type: int = 0x8001


@dataclass(frozen=True)
class MessageReceived(Event):
    schema: str
    name: str
    message: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class ProtocolNegotiated(Event):
    schema: str                    # "din" or "iso2"
    namespace: str
    schema_id: int
    response_code: str


@dataclass(frozen=True)
class SessionEstablished(Event):
    session_id: bytes
    resumed: bool                  # OK_OldSessionJoined
    response_code: str


@dataclass(frozen=True)
class PowerDeliveryChanged(Event):
    progress: str                  # "Start", "Stop", "Renegotiate"


@dataclass(frozen=True)
class TimerViolation(Event):
    """The peer broke a timer of the standard and the core went on because it was told to
    (``EVCCConfig.late_responses="tolerate"``): which timer, its limit, and what was late."""
    timer: str                     # e.g. "V2G_EVCC_Msg_Timeout"
    limit: float                   # seconds
    detail: str


@dataclass(frozen=True)
class SessionEnded(Event):
    """The session is over: ``ok`` after a normal SessionStop (or pause), else why not."""
    ok: bool
    reason: str
    paused: bool = False
    session_id: Optional[bytes] = None
    response_code: Optional[str] = None      # the FAILED_* code sent/received, if any


@dataclass(frozen=True)
class Close(Event):
    """Close the connection (after sending everything before this)."""
    reason: str


@dataclass(frozen=True)
class BackendRequest(Event):
    """The core needs its operator's systems (:class:`exi.v2g.backend.Backend`, e.g. Plug &
    Charge authorization or a certificate installation): the driver runs ``await
    call.run(backend)`` (:class:`exi.v2g.pnc.BackendCall`).  With ``hold`` the core's
    response waits for the call: once it finished the driver calls
    ``core.backend_done(call, now)`` and sends what that returns; without, the core
    answers meanwhile (EVSEProcessing=Ongoing) and looks at the call again later."""
    call: Any = field(compare=False)
    hold: bool = False
