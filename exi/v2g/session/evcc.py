"""Sans-I/O EVCC session core: runs one whole charging session.

    core = EVCCSession(EVCCConfig(protocols=("iso2",), mode="dc"))
    out = core.start(now)                       # [Send(supportedAppProtocolReq)]
    out = core.receive(v2gtp_payload, now)      # -> [MessageReceived, Send, ...]
    core.next_deadline(); core.handle_timer(now)
    core.result                                  # SessionEnded once over

The core is protocol-agnostic: it offers and negotiates SupportedAppProtocol, then runs
the chosen protocol's handler object (:mod:`.protocols`: :mod:`.din`, :mod:`.iso2`,
:mod:`.iso20`).  For DIN and -2 it decodes each response, checks it is the one its
state waits for (the protocol's table), not FAILED and in this session, and calls the
protocol's handler, which returns the next request; -20 runs its own receive path.

The EVCC waits ``loop_interval`` seconds before repeating a request (EVSEProcessing
Ongoing, CableCheck, PreCharge, the charge loop, WeldingDetection); the pause is a timer
of the core, so the in-memory pair with a fake clock runs sessions in no real time.

Timers (see :mod:`.timers`): V2G_EVCC_Msg_Timeout per request, CommunicationSetup
(until SessionSetupRes), Ongoing, CableCheck, PreCharge and (DIN) ReadyToCharge.  Any
expiry, a FAILED response code, an unexpected or undecodable message ends the session
with ``result.ok == False`` and a reason saying which.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import exi
from exi.registry import SCHEMAS

from . import protocols as protocol_modules
from . import timers
from ._msg import ZERO_SESSION, message_name, sap, v2g, val
from .controllers import EVController, SimulatedEV
from .events import Close, MessageReceived, ProtocolNegotiated, Send, SessionEnded, TimerViolation
from .machine import SAP_EVCC, SAP_REQ, SAP_RES, EVCCState, check_transition

__all__ = ["EVCCConfig", "EVCCSession"]

log = logging.getLogger("exi.v2g.session.evcc")
E = EVCCState


# PreCharge is done when the charger's output is within this of the battery voltage.
# IEC 61851-23 (DC charging; referred to by DIN SPEC 70121 and ISO 15118-2 for PreCharge)
# has the charger adjust its output to the EV's target within +-20 V before the EV closes
# its contactors (2nd-hand: EP 4140800 A1 [0003]; clause number unverified).  Real cars
# judge it on their own inlet measurement and left PreCharge 25-135 V from the voltage the
# charger reported (captures): a car with its own measurement overrides
# EVController.precharge_complete; the window is EVCCConfig.precharge_tolerance
# (`exi15118 evcc --precharge-tolerance V`).
PRECHARGE_TOLERANCE_V = 20.0


@dataclass
class EVCCConfig:
    protocols: tuple = ("iso2", "din")          # offered in SAP; Priority 1 = first
    mode: str = "dc"                             # "ac" / "dc"
    energy_transfer_mode: Optional[str] = None   # default AC_three_phase_core / DC_extended
    loop_interval: float = 0.1                   # pause before a repeated request
    max_charge_loops: Optional[int] = None       # stop after this many loop responses
    stop: str = "terminate"                      # "terminate" / "pause" (-2 only)
    resume_session_id: Optional[bytes] = None    # SessionSetupReq with this SessionID
    renegotiate_after: Optional[int] = None      # -2: EV-initiated renegotiation
    request_service_details: bool = True         # -2: ServiceDetailReq for listed services
    precharge_tolerance: float = PRECHARGE_TOLERANCE_V  # V: PreCharge done within this
    welding_safe_voltage: float = 60.0           # V: WeldingDetection done below this
    max_welding_requests: int = 50               # 0: no WeldingDetection
    # An EV stopping before the charge loop (EVController.stop_requested) after the
    # CableCheck of a DC session: True switches the output off with
    # PowerDelivery(Stop) first, False ends with SessionStop at once.
    early_stop_power_off: bool = False
    # -2 DC renegotiation: run CableCheck and PreCharge again after the new
    # ChargeParameterDiscovery (RISE-V2G does) instead of going to PowerDelivery.
    recheck_after_renegotiation: bool = False
    communication_setup_timeout: float = timers.V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT
    ongoing_timeout: float = timers.V2G_EVCC_ONGOING_TIMEOUT
    cable_check_timeout: float = timers.V2G_EVCC_CABLE_CHECK_TIMEOUT
    pre_charge_timeout: float = timers.V2G_EVCC_PRE_CHARGE_TIMEOUT
    ready_to_charge_timeout: float = timers.V2G_EVCC_READY_TO_CHARGE_TIMEOUT
    msg_timeout: Optional[Callable[[str, str], float]] = None   # override (schema, request)
    # What a late charger gets: "enforce" (the standard: the session ends when a timer
    # expires) or "tolerate" (as many real cars do: every expiry is reported as a
    # TimerViolation event and in ``violations``, and the EVCC waits on, at most
    # ``late_response_limit`` seconds for one response).
    late_responses: str = "enforce"
    late_response_limit: float = timers.V2G_SECC_SEQUENCE_TIMEOUT
    # ISO 15118-20: control mode ("scheduled"/"dynamic"; mode may then also be "ac_bpt"
    # or "dc_bpt"), its settings (exi.v2g.session.iso20.ISO20EVCCSettings, None =
    # defaults), and the test-only permission to offer it on plain TCP ([V2G20-1237]).
    control: str = "scheduled"
    iso20: Any = None
    iso20_plain_tcp: bool = False
    # ISO 15118-2 payment: "external" (EIM) or "contract" (Plug & Charge, over TLS, with
    # ``wallet`` an exi.v2g.pnc.ContractWallet); ``certificate`` forces "installation" or
    # "update"; ``require_signed_tariffs`` refuses unsigned SalesTariffs.
    payment: str = "external"
    wallet: Any = None
    certificate: Optional[str] = None
    require_signed_tariffs: bool = False

    def transfer_mode(self, schema: str) -> str:
        if self.energy_transfer_mode:
            return self.energy_transfer_mode
        return "DC_extended" if self.mode == "dc" else "AC_three_phase_core"


_TIMER_NAMES = {
    "msg": "V2G_EVCC_Msg_Timeout", "setup": "V2G_EVCC_CommunicationSetup_Timeout",
    "ongoing": "V2G_EVCC_Ongoing_Timeout", "cable_check": "V2G_EVCC_CableCheck_Timeout",
    "pre_charge": "V2G_EVCC_PreCharge_Timeout", "ready": "V2G_EVCC_ReadyToCharge_Timeout",
    "late": "late_response_limit (V2G_EVCC_Msg_Timeout tolerated)",
}


class EVCCSession:
    """One charging session, EVCC side (no I/O, no clock)."""

    def __init__(self, config: Optional[EVCCConfig] = None, ev: Optional[EVController] = None,
                 name: str = ""):
        self.config = config or EVCCConfig()
        self.ev = ev if ev is not None else SimulatedEV()
        self.name = name
        self.state = E.IDLE
        self.schema: Optional[str] = None
        self.session_id = self.config.resume_session_id or ZERO_SESSION
        self.result: Optional[SessionEnded] = None
        self.loops = 0
        self.renegotiations = 0
        self.receipts = 0
        self.stop_reason: Optional[str] = None
        self.stop_requested: Optional[str] = None          # request_stop()
        self._timers: dict[str, tuple[float, str]] = {}   # name -> (deadline, what)
        self._pending: Optional[tuple[str, Callable]] = None
        self._last_request: Optional[str] = None
        self._offered: dict[int, str] = {}                 # SchemaID -> schema id
        self.violations: list[TimerViolation] = []     # tolerated expiries
        self.isolation_refused = False                 # stopped: CableCheck without isolation
        self._limits: dict[str, float] = {}            # timer key -> its duration
        # Set by the driver before start(): "TLSv1.3", "TLSv1.2" or None (plain TCP).
        self.tls_version: Optional[str] = None
        # The protocol's handler object, chosen by the SECC in SAP (protocols.EVCC_PROTOCOLS).
        self.protocol = None
        protocol_modules.preload(self.config.protocols)

    # -- driver interface ---------------------------------------------------------------
    def start(self, now: float, setup_started: Optional[float] = None) -> list:
        """Begin: the SupportedAppProtocolReq.  ``setup_started``: when communication
        setup began (before SDP/TCP/TLS), for V2G_EVCC_CommunicationSetup_Timeout."""
        if self.state is not E.IDLE:
            raise RuntimeError("EVCC session already started")
        t0 = now if setup_started is None else setup_started
        self._arm("setup", t0 + self.config.communication_setup_timeout,
                  "no SessionSetupRes within the communication setup time")
        protocols = []
        for prio, schema in enumerate(self._offers(), 1):
            info = SCHEMAS[schema]
            protocols.append(sap.AppProtocolType(
                ProtocolNamespace=info.protocol_namespace, VersionNumberMajor=info.version_major,
                VersionNumberMinor=info.version_minor, SchemaID=prio, Priority=prio))
            self._offered[prio] = schema
        check_transition(SAP_EVCC, E.IDLE, "start", E.SUPPORTED_APP_PROTOCOL)
        return self._send(SAP_REQ, sap.supportedAppProtocolReq(AppProtocol=protocols), now)

    STOPPABLE = (E.POWER_DELIVERY, E.CHARGING_STATUS, E.CURRENT_DEMAND, E.METERING_RECEIPT,
                 E.WELDING_DETECTION, E.SESSION_STOP)

    def request_stop(self, reason: str) -> bool:
        """End the session as a car does when its driver stops charging: from the charge
        loop (or on the way into it) the next loop response leads to PowerDelivery(Stop),
        WeldingDetection (DC) and SessionStop(Terminate).  False when the state has no such
        way out (before the charge loop): the caller closes the connection instead."""
        if self.result is not None or self.state not in self.STOPPABLE:
            return False
        self.stop_requested = reason
        return True

    def _offers(self) -> list:
        """Schemas to offer in SAP: -20 as the message set of ``mode``, and only over
        TLS 1.3 ([V2G20-1237]/[V2G20-1805]) unless ``iso20_plain_tcp`` (test tools)."""
        out = []
        iso20_ok = self.tls_version == "TLSv1.3" or self.config.iso20_plain_tcp
        for p in self.config.protocols:
            if p == "iso20":
                p = "iso20_ac" if self.config.mode.startswith("ac") else "iso20_dc"
            if p in protocol_modules.TLS13_ONLY and not iso20_ok:
                continue
            if p not in out:
                out.append(p)
        if not out:
            raise ValueError(f"nothing to offer: {', '.join(self.config.protocols)} "
                             f"(-20 needs TLS 1.3 or iso20_plain_tcp)")
        return out

    def next_deadline(self) -> Optional[float]:
        if self.result is not None:
            return None
        times = [d for d, _ in self._timers.values()]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list:
        if self.result is not None:
            return []
        due = sorted((d, k) for k, (d, _) in self._timers.items() if d <= now)
        for _, key in due:
            if key == "send":
                name, build = self._pending
                self._pending = None
                del self._timers["send"]
                return self._send(name, build(now), now)
            what = self._timers[key][1]
            if self.config.late_responses == "tolerate" and key not in ("late", "send"):
                return self._tolerate(key, what, now)
            return self._end(now, False, f"{_TIMER_NAMES[key]} expired: {what}")
        return []

    def _tolerate(self, key: str, what: str, now: float) -> list:
        """A timer expired and the config says go on: report it, keep waiting."""
        deadline, _ = self._timers.pop(key)
        v = TimerViolation(_TIMER_NAMES[key], self._limits.get(key, 0.0), what)
        self.violations.append(v)
        log.warning("%s: tolerated: %s expired: %s", self.name, v.timer, what)
        if key == "msg":
            self._arm("late", deadline - self._limits.get(key, 0.0) + self.config.late_response_limit,
                      f"no response to {self._last_request} within {self.config.late_response_limit:g} s")
        return [v]

    def connection_lost(self, reason: str, now: Optional[float] = None) -> list:
        if self.result is not None:
            return []
        return self._end(now, False, f"connection lost while waiting for "
                                     f"{self._expected() or self.state.name}: {reason}", close=False)

    def receive(self, payload: bytes, now: float, payload_type: int = 0x8001) -> list:
        if self.result is not None:
            return []
        try:
            return self._receive(payload, now, payload_type)
        except Exception as e:     # noqa: BLE001 - stop cleanly with the reason
            log.exception("%s: internal error", self.name)
            return self._end(now, False, f"internal error: {e!r}")

    # -- core -----------------------------------------------------------------------------
    def _expected(self) -> Optional[str]:
        if self.protocol is None:
            return SAP_RES if self.state is E.SUPPORTED_APP_PROTOCOL else None
        if self.protocol.owns_messages:
            return self.protocol.expected()
        return self.protocol.expects.get(self.state)

    def _receive(self, payload: bytes, now: float, payload_type: int) -> list:
        if self.protocol is not None and self.protocol.owns_messages:
            return self.protocol.receive(payload, now, payload_type)
        if payload_type != 0x8001:
            return self._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X}")
        schema = "sap" if self.state is E.SUPPORTED_APP_PROTOCOL else self.schema
        out, name, msg, body = self._response(payload, now, schema)
        if name is None:
            return out
        try:        # a missing ResponseCode or a value beyond the schema stops here
            exi.validate(msg)
        except exi.ValidationError as e:
            return out + self._end(now, False, f"{name} from the SECC outside the schema: {e}")
        expected = self._expected()
        if self._pending is not None or name != expected:
            return out + self._end(now, False, f"unexpected {name} (waiting for "
                                               f"{expected if self._pending is None else 'nothing'})")
        refused = self._accept(name, msg, body, now, schema != "sap" and self.state is not E.SESSION_SETUP)
        if refused is not None:
            return out + refused
        problem = self.protocol.check_response(name, msg) if schema != "sap" else None
        if problem:
            return out + self._end(now, False, problem)
        handler = self._on_sap if schema == "sap" else self.protocol.handler(name)
        step = handler(body, msg, now, out)
        if self.result is not None:
            return out
        if step is None:
            return out
        req, build, repeat = step
        after = self.protocol.state_after[req]
        check_transition(self.protocol.table, self.state, name, after)
        self.state = after
        if repeat and self.config.loop_interval > 0:
            self._pending = (req, build)
            self._timers["send"] = (now + self.config.loop_interval, "")
            return out
        return out + self._send(req, build(now), now)

    # -- the preamble every protocol's responses share (DIN, -2 here; -20 from its module) ---
    def _response(self, payload: bytes, now: float, schema: str) -> tuple:
        """Decode a response of ``schema`` (zero padding accepted), name it and report it:
        (events, name, message, body); name None when it was undecodable (session ended)."""
        try:
            msg = exi.decode(payload, schema, padding=True)
            name, body = message_name(schema, msg)
        except (exi.DecodeError, ValueError) as e:
            return self._end(now, False, f"undecodable {schema} message from the SECC: {e}"), None, None, None
        return [MessageReceived(schema, name, msg)], name, msg, body

    def _accept(self, name: str, msg, body, now: float, check_session: bool) -> Optional[list]:
        """The awaited response arrived: its timers stop; a FAILED ResponseCode or (with
        ``check_session``) another SessionID ends the session -- the events -- else None."""
        self._timers.pop("msg", None)
        self._timers.pop("late", None)
        code = val(body.ResponseCode) or ""
        if code.upper().startswith("FAILED"):
            return self._end(now, False, f"SECC answered {self._last_request} with {code}", code=code)
        if check_session:
            sid = msg.Header.SessionID if msg.Header else None
            if sid != self.session_id:
                return self._end(now, False, f"{name} with SessionID {(sid or b'').hex()}, "
                                             f"session is {self.session_id.hex()}")
        return None

    def _send(self, req: str, body, now: float) -> list:
        protocol = self.protocol
        if protocol is not None and protocol.owns_messages:
            return protocol.send(req, body, now)
        if req == SAP_REQ:
            msg, schema = body, "sap"
            self.state = E.SUPPORTED_APP_PROTOCOL
        else:
            schema = self.schema
            msg = protocol.finish_request(req, v2g(schema, self.session_id, req, body))
            self.state = protocol.state_after[req]
        self._last_request = req
        timeout = (self.config.msg_timeout or timers.evcc_msg_timeout)(schema, req)
        self._timers.pop("late", None)
        self._arm("msg", now + timeout, f"no response to {req} within {timeout:g} s", timeout)
        if protocol is not None:
            protocol.phase_timers(req, now)
        return [Send(exi.encode(msg), schema, req, msg)]

    def _arm(self, key: str, deadline: float, what: str, limit: Optional[float] = None) -> None:
        self._timers[key] = (deadline, what)
        if limit is not None:
            self._limits[key] = limit

    def _ongoing(self, processing, now: float, what: str) -> bool:
        # -2 EVSEProcessing also has Ongoing_WaitingForCustomerInteraction (an
        # authorization that waits for the driver): it is ongoing too.
        if str(val(processing)).startswith("Ongoing"):
            if "ongoing" not in self._timers:
                self._arm("ongoing", now + self.config.ongoing_timeout, f"{what} still Ongoing",
                          self.config.ongoing_timeout)
            return True
        self._timers.pop("ongoing", None)
        return False

    def _end(self, now, ok: bool, reason: str, *, paused: bool = False, code: Optional[str] = None,
             close: bool = True) -> list:
        if self.result is not None:
            return []
        self._timers.clear()
        self._pending = None
        self.state = E.DONE
        self.result = SessionEnded(ok, reason, paused, None if self.session_id == ZERO_SESSION
                                   else self.session_id, code)
        if not ok:
            log.warning("%s: session failed: %s", self.name, reason)
        return [self.result, Close(reason)] if close else [self.result]

    # -- SAP ----------------------------------------------------------------------------------
    def _on_sap(self, res, msg, now, out):
        schema = self._offered.get(res.SchemaID)
        if schema is None:
            out.extend(self._end(now, False, f"SECC chose SchemaID {res.SchemaID}, which was not offered"))
            return None
        self.schema = schema
        out.append(ProtocolNegotiated(schema, SCHEMAS[schema].protocol_namespace, res.SchemaID,
                                      val(res.ResponseCode)))
        self.protocol = protocol_modules.EVCC_PROTOCOLS[schema](self, schema)
        if self.protocol.owns_messages:
            out.extend(self.protocol.start(now))
            return None
        return self.protocol.first_request()
