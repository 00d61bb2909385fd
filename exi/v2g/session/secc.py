"""Sans-I/O SECC session core: one object per TCP/TLS connection.

    core = SECCSession(SECCConfig(protocols=("iso2", "din")))
    out = core.connection_made(now)
    out = core.receive(v2gtp_payload, now)      # -> [MessageReceived, Send, ..., Close]
    core.next_deadline(); core.handle_timer(now)

The core is protocol-agnostic: it negotiates SupportedAppProtocol, then hands the
session to the chosen protocol's handler object (:mod:`.protocols`: :mod:`.din`,
:mod:`.iso2`, :mod:`.iso20`).  For DIN and -2 (one ``V2G_Message`` on payload type
0x8001) it decodes the payload, checks the header SessionID and the request against the
protocol's transition table, calls the protocol's handler (which asks the
:class:`~.controllers.EVSEController`), and encodes the response; -20 runs its own
receive path over its message sets and payload types.

Errors ([V2G2-538]/[V2G2-736] (2nd-hand), DIN SPEC 70121 the same, ids unverified):

* a request out of sequence is answered with its own response type carrying
  ``FAILED_SequenceError`` and every mandatory field filled, then the session ends;
* a request whose header SessionID is not the session's gets ``FAILED_UnknownSession``;
* checks of the request content give the specific ``FAILED_*`` code (wrong energy
  transfer mode, tariff selection, charging profile, payment/service selection, ...);
* after any FAILED response the session ends and the connection is closed;
* a request that decodes but breaks the schema's facets (a value out of range, a field
  too long, a required element missing -- non-strict EXI streams can carry all three) is
  answered with the generic ``FAILED`` code (SAP: ``Failed_NoNegotiation``) before any
  handler sees it (checked with :func:`exi.validate`; no requirement id found for it);
* an undecodable payload, a root that is not a V2G_Message or a wrong V2GTP payload type
  ends this session only, without a response (there is no request type to answer);
* any exception inside the core ends this session only (the SECC keeps serving others).

The sequence timer (V2G_SECC_Sequence_Timeout, 60 s) runs from the connection and from
every response; on expiry the session ends.  Paused sessions (-2 SessionStop Pause) are
kept in a :class:`SessionStore` shared by all connections of one SECC so a later
SessionSetupReq with that SessionID is answered ``OK_OldSessionJoined``.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import exi
from exi.registry import SCHEMAS, schema_for_protocol_namespace

from . import protocols as protocol_modules
from . import timers
from ._msg import message_name, sap, v2g, val
from .common import Failed
from .controllers import EVSEController, SimulatedEVSE
from .events import Close, MessageReceived, ProtocolNegotiated, Send, SessionEnded, SessionEstablished
from .machine import SAP_REQ, SAP_SECC, SECCState, check_transition

__all__ = ["SECCConfig", "SECCSession", "SessionStore", "PausedSession", "Failed"]

log = logging.getLogger("exi.v2g.session.secc")
S = SECCState


@dataclass
class PausedSession:
    session_id: bytes
    schema: str
    evcc_id: Optional[bytes]
    paused_at: float
    context: Any = None                     # protocol module's state to resume with
    peer_cert_digest: Optional[bytes] = None  # TLS client certificate (-20 resume check)


class SessionStore:
    """Paused sessions of one SECC, shared by its connections."""

    def __init__(self, max_paused: int = 1024):
        self.max_paused = max_paused
        self.paused: dict[bytes, PausedSession] = {}

    def pause(self, info: PausedSession) -> None:
        self.paused[info.session_id] = info
        while len(self.paused) > self.max_paused:
            self.paused.pop(next(iter(self.paused)))

    def resume(self, session_id: bytes, schema: str) -> Optional[PausedSession]:
        info = self.paused.get(session_id)
        if info is None or info.schema != schema:
            return None
        return self.paused.pop(session_id)


@dataclass
class SECCConfig:
    protocols: tuple = ("iso2", "din")          # supported, in the SECC's preference order
    evse_factory: Callable[[], EVSEController] = SimulatedEVSE
    store: SessionStore = field(default_factory=SessionStore)
    # Who decides among protocols both support: "ev" (the EV's Priority, as -2 7.10.2
    # describes the handshake) or "secc" (this SECC's order in ``protocols``).
    priority: str = "ev"
    energy_modes: tuple = ("AC_single_phase_core", "AC_three_phase_core", "DC_core",
                           "DC_extended")
    sequence_timeout: float = timers.V2G_SECC_SEQUENCE_TIMEOUT
    # -2: ask for a MeteringReceipt every ``receipt_every`` charge-loop responses.
    receipt_required: bool = False
    receipt_every: int = 3
    offer_value_added_services: bool = True
    # -2: more value-added services to list in ServiceDiscoveryRes and accept in
    # ServiceDetail/PaymentServiceSelection: (ServiceID, ServiceName, ServiceCategory).
    extra_services: tuple = ()
    # The SAScheduleTupleID of the one schedule offered (1..255 in -2, 1..255 DIN).
    sa_schedule_tuple_id: int = 1
    session_id_factory: Callable[[], bytes] = field(default=lambda: secrets.token_bytes(8))
    # ISO 15118-20: its settings (exi.v2g.session.iso20.ISO20SECCSettings, None = defaults),
    # and the test-only permission to select it on plain TCP ([V2G20-2356] forbids it).
    iso20: Any = None
    iso20_plain_tcp: bool = False
    # ISO 15118-2 Plug & Charge (exi.v2g.pnc.SECCPnCConfig): Contract payment over TLS,
    # with the backend its BackendRequest calls run on
    pnc: Any = None


class SECCSession:
    """One V2G communication session, SECC side (no I/O, no clock)."""

    def __init__(self, config: Optional[SECCConfig] = None,
                 evse: Optional[EVSEController] = None, name: str = ""):
        self.config = config or SECCConfig()
        self.evse = evse if evse is not None else self.config.evse_factory()
        self.name = name
        self.state = S.SUPPORTED_APP_PROTOCOL
        self.schema: Optional[str] = None
        self.session_id: Optional[bytes] = None
        self.evcc_id: Optional[bytes] = None
        self.ended: Optional[SessionEnded] = None
        self._deadline: Optional[float] = None
        self.requests = 0
        self._last_name: Optional[str] = None          # tried first when naming the next message
        # Set by the driver: "TLSv1.3", "TLSv1.2" or None (plain TCP), and the SHA-512 of
        # the client certificate; -20 needs TLS 1.3 and binds resumption to the vehicle.
        self.tls_version: Optional[str] = None
        self.peer_cert_digest: Optional[bytes] = None
        self.sequence_limit = self.config.sequence_timeout
        # The protocol's handler object, chosen in SAP (protocols.SECC_PROTOCOLS).
        self.protocol = None
        protocol_modules.preload(self.config.protocols)

    # -- driver interface ---------------------------------------------------------------
    def connection_made(self, now: float) -> list:
        self._deadline = now + self.config.sequence_timeout
        return []

    def next_deadline(self) -> Optional[float]:
        return None if self.ended else self._deadline

    def handle_timer(self, now: float) -> list:
        if self.ended or self._deadline is None or now < self._deadline:
            return []
        return self._end(now, False, f"V2G_SECC_Sequence_Timeout ({self.sequence_limit:g} s) "
                                     f"expired waiting for a request in state {self.state.name}")

    def connection_lost(self, reason: str, now: Optional[float] = None) -> list:
        if self.ended:
            return []
        return self._end(now, False, f"connection lost in state {self.state.name}: {reason}",
                         close=False)

    def receive(self, payload: bytes, now: float, payload_type: int = 0x8001) -> list:
        if self.ended:
            return []
        try:
            return self._receive(payload, now, payload_type)
        except Exception as e:       # noqa: BLE001 - a bug ends this session, not the SECC
            log.exception("%s: internal error", self.name)
            return self._end(now, False, f"internal error: {e!r}")

    # -- core ---------------------------------------------------------------------------
    def _receive(self, payload: bytes, now: float, payload_type: int) -> list:
        protocol = self.protocol
        if protocol is not None and protocol.owns_messages:
            return protocol.receive(payload, now, payload_type)
        self.requests += 1
        if payload_type != 0x8001:
            return self._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X}")
        schema = self.schema or "sap"
        out, name, msg, body = self._request(payload, now, schema)
        if name is None:
            return out
        try:        # values beyond the schema's facets never reach the handlers or the store
            exi.validate(msg)
        except exi.ValidationError as e:
            return out + self._fail(name, "FAILED", f"{name} outside the schema: {e}", now, body)
        table = protocol.table if protocol is not None else SAP_SECC
        wrong = self._wrong_session(name, msg)
        if wrong:
            return out + self._fail(name, "FAILED_UnknownSession", wrong, now, body)
        allowed = table.get((self.state, name))
        if allowed is None:
            return out + self._fail(name, "FAILED_SequenceError",
                                    f"{name} not expected in state {self.state.name}", now, body)
        handler = protocol.handler(name) if protocol is not None else self._sap
        try:
            res, new_state, events = handler(body, msg, now)
        except Failed as f:
            return out + self._fail(name, f.code, f.reason, now, body)
        if new_state not in allowed:            # a handler bug: raises TransitionError
            check_transition(table, self.state, name, new_state)
        if new_state is not self.state:
            log.debug("%s: %s -> %s", self.name, self.state.name, new_state.name)
        self.state = new_state
        if res is not None:          # None: held until a backend call finished (backend_done)
            out.append(self._send(name, res))
        out += events
        if new_state is S.ENDED:
            paused = getattr(body, "ChargingSession", None) == "Pause"
            out += self._end(now, True, "SessionStop (Pause)" if paused else "SessionStop (Terminate)",
                             paused=paused)
        else:
            self._deadline = now + self.config.sequence_timeout
        return out

    # -- the preamble every protocol's requests share (DIN, -2 here; -20 from its module) ----
    def _request(self, payload: bytes, now: float, schema: str) -> tuple:
        """Decode a request of ``schema`` (zero padding some encoders add is accepted),
        name it and report it: (events, name, message, body); name None when that ended
        the session (undecodable, or a response where a request belongs)."""
        try:
            msg = exi.decode(payload, schema, padding=True)
            name, body = message_name(schema, msg, self._last_name)
        except (exi.DecodeError, ValueError) as e:
            return self._end(now, False, f"undecodable {schema} message: {e}"), None, None, None
        self._last_name = name
        out: list = [MessageReceived(schema, name, msg)]
        if not name.endswith("Req"):
            return out + self._end(now, False, f"{name} is not a request"), None, None, None
        return out, name, msg, body

    def _wrong_session(self, name: str, msg) -> Optional[str]:
        """Why the request's header SessionID is not this session's (answered
        FAILED_UnknownSession), or None; SessionSetupReq may carry any."""
        if self.session_id is None or name == "SessionSetupReq":
            return None
        sid = msg.Header.SessionID if msg.Header is not None else None
        if sid == self.session_id:
            return None
        return f"{name} with SessionID {(sid or b'').hex()} (session is {self.session_id.hex()})"

    def _send(self, req_name: str, body) -> Send:
        if self.schema is None or req_name == SAP_REQ:
            msg, name, schema = body, "supportedAppProtocolRes", "sap"
        else:
            name = req_name[:-3] + "Res"
            schema = self.schema
            msg = self.protocol.finish(v2g(schema, self.session_id or b"\x00", name, body))
        return Send(exi.encode(msg), schema, name, msg)

    def backend_done(self, call, now: float) -> list:
        """The driver ran a backend call a response was held for (events.BackendRequest
        with ``hold``): send that response now."""
        if self.ended or self.protocol is None:
            return []
        held = self.protocol.held_response(call)
        if held is None:
            return []
        req_name, msg = held
        name = req_name[:-3] + "Res"
        out: list = [Send(exi.encode(msg), self.schema, name, msg)]
        code = str(val(getattr(msg.Body, name).ResponseCode))
        if not code.startswith("OK"):
            reason = f"{req_name}: {code} ({self.protocol.refusal_reason()})"
            log.warning("%s: %s", self.name, reason)
            return out + self._end(now, False, reason, code=code)
        self._deadline = now + self.config.sequence_timeout
        return out

    def _fail(self, req_name: str, code: str, reason: str, now: float, body=None) -> list:
        out: list = []
        if req_name == SAP_REQ:
            out.append(self._send(req_name, sap.supportedAppProtocolRes(ResponseCode="Failed_NoNegotiation")))
        else:
            res = self.protocol.failed_response(req_name, code, now, body)
            if res is None:
                reason += " (no response sent: request type not supported)"
            else:
                out.append(self._send(req_name, res))
        log.warning("%s: %s -> %s: %s", self.name, req_name, code, reason)
        return out + self._end(now, False, reason, code=code)

    def _end(self, now: Optional[float], ok: bool, reason: str, *, paused: bool = False,
             code: Optional[str] = None, close: bool = True) -> list:
        if self.ended:
            return []
        self.state = S.ENDED
        self._deadline = None
        self.ended = SessionEnded(ok, reason, paused, self.session_id, code)
        try:
            self.evse.session_ended(now or 0.0)
        except Exception:               # noqa: BLE001
            log.exception("%s: EVSE session_ended failed", self.name)
        return [self.ended, Close(reason)] if close else [self.ended]

    # -- SupportedAppProtocol -------------------------------------------------------------
    def _sap(self, req, msg, now):
        offers = sorted(req.AppProtocol or [], key=lambda a: (a.Priority or 99))
        candidates = []
        for a in offers:
            sid = schema_for_protocol_namespace(a.ProtocolNamespace or "")
            if sid in self._serves() and a.VersionNumberMajor == SCHEMAS[sid].version_major:
                candidates.append((a, sid))
        if not candidates:
            offered = ", ".join(f"{a.ProtocolNamespace} {a.VersionNumberMajor}.{a.VersionNumberMinor}"
                                for a in offers) or "nothing"
            raise Failed("Failed_NoNegotiation", f"no common protocol (EV offered {offered})")
        if self.config.priority == "secc":
            candidates.sort(key=lambda c: self.config.protocols.index(c[1]))
        a, sid = candidates[0]
        code = ("OK_SuccessfulNegotiation" if a.VersionNumberMinor == SCHEMAS[sid].version_minor
                else "OK_SuccessfulNegotiationWithMinorDeviation")
        self.schema = sid
        self.protocol = protocol_modules.SECC_PROTOCOLS[sid](self, sid)
        res = sap.supportedAppProtocolRes(ResponseCode=code, SchemaID=a.SchemaID)
        return res, S.SESSION_SETUP, [ProtocolNegotiated(sid, a.ProtocolNamespace, a.SchemaID, code)]

    def _serves(self) -> set:
        """Schemas this connection may select: -20 only over TLS 1.3 ([V2G20-2356])
        unless ``iso20_plain_tcp`` (test tools)."""
        wanted = protocol_modules.expand(self.config.protocols)
        tls13 = self.tls_version == "TLSv1.3" or self.config.iso20_plain_tcp
        return {s for s in wanted if s in protocol_modules.SECC_PROTOCOLS
                and (tls13 or s not in protocol_modules.TLS13_ONLY)}

    # -- what every protocol's SessionSetup and Pause use ------------------------------------
    def _session_setup(self, req, msg, now):
        """(ResponseCode, events) of a SessionSetupReq: a known paused SessionID is joined
        again, anything else is a new session."""
        sid_in = msg.Header.SessionID or b""
        resumed = None
        if any(sid_in):
            resumed = self.config.store.resume(sid_in, self.schema)
        if resumed is not None:
            self.session_id, code = sid_in, "OK_OldSessionJoined"
        else:
            # A zero SessionID, or one we do not know: a new session.
            self.session_id, code = self.config.session_id_factory(), "OK_NewSessionEstablished"
        self.evcc_id = req.EVCCID
        return code, [SessionEstablished(self.session_id, resumed is not None, code)]

    def pause(self, now: float) -> None:
        """Keep this session in the store so a later SessionSetupReq can join it."""
        self.config.store.pause(PausedSession(self.session_id, self.schema, self.evcc_id, now))
