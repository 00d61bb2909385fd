"""Sans-I/O EVCC session core: runs one whole charging session.

    core = EVCCSession(EVCCConfig(protocols=("iso2",), mode="dc"))
    out = core.start(now)                       # [Send(supportedAppProtocolReq)]
    out = core.receive(v2gtp_payload, now)      # -> [MessageReceived, Send, ...]
    core.next_deadline(); core.handle_timer(now)
    core.result                                  # SessionEnded once over

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
from ._msg import ZERO_SESSION, val, din, fv, iso2, message_name, pv, sap, v2g
from .controllers import EVController, SimulatedEV
from .events import (Close, MessageReceived, PowerDeliveryChanged, ProtocolNegotiated, Send,
                     SessionEnded, SessionEstablished, TimerViolation)
from .machine import (EVCC_EXPECTS, EVCC_STATE_AFTER, EVCC_TABLES, SAP_REQ, EVCCState,
                      check_transition)

__all__ = ["EVCCConfig", "EVCCSession"]

log = logging.getLogger("exi.v2g.session.evcc")
E = EVCCState
_STOP_CODES = {"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
               "EVSE_UtilityInterruptEvent"}


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
        self._services: list[int] = []
        self._charge_service_id = 1
        self._tuple_id = 1
        self._pmax: Optional[float] = None
        self._progress: Optional[str] = None               # last PowerDelivery ChargeProgress
        self._renegotiating = False
        self._welding_count = 0
        self._ac_voltage = 230.0
        self._evse_max_current: Optional[float] = None
        self._last_meter = None
        self.violations: list[TimerViolation] = []     # tolerated expiries
        self.isolation_refused = False                 # stopped: CableCheck without isolation
        self._limits: dict[str, float] = {}            # timer key -> its duration
        # Set by the driver before start(): "TLSv1.3", "TLSv1.2" or None (plain TCP).
        self.tls_version: Optional[str] = None
        # The protocol module that runs the session after SAP (-20); None: DIN/-2 here.
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
        check_transition(EVCC_TABLES["iso2"], E.IDLE, "start", E.SUPPORTED_APP_PROTOCOL)
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
            if p in protocol_modules.EVCC_PROTOCOLS and not iso20_ok:
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
        if self.protocol is not None:
            return self.protocol.expected()
        return EVCC_EXPECTS[self.schema or "iso2"].get(self.state)

    def _receive(self, payload: bytes, now: float, payload_type: int) -> list:
        if self.protocol is not None:
            return self.protocol.receive(payload, now, payload_type)
        if payload_type != 0x8001:
            return self._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X}")
        schema = "sap" if self.state is E.SUPPORTED_APP_PROTOCOL else self.schema
        try:
            msg = exi.decode(payload, schema, padding=True)   # zero padding some encoders add
            name, body = message_name(schema, msg)
        except (exi.DecodeError, ValueError) as e:
            return self._end(now, False, f"undecodable {schema} message from the SECC: {e}")
        out: list = [MessageReceived(schema, name, msg)]
        try:        # a missing ResponseCode or a value beyond the schema stops here
            exi.validate(msg)
        except exi.ValidationError as e:
            return out + self._end(now, False, f"{name} from the SECC outside the schema: {e}")
        expected = self._expected()
        if self._pending is not None or name != expected:
            return out + self._end(now, False, f"unexpected {name} (waiting for "
                                               f"{expected if self._pending is None else 'nothing'})")
        self._timers.pop("msg", None)
        self._timers.pop("late", None)
        code = val(body.ResponseCode)
        if code.upper().startswith("FAILED"):
            return out + self._end(now, False, f"SECC answered {self._last_request} with {code}", code=code)
        if schema != "sap" and self.state is not E.SESSION_SETUP:
            sid = msg.Header.SessionID if msg.Header else None
            if sid != self.session_id:
                return out + self._end(now, False, f"{name} with SessionID {(sid or b'').hex()}, "
                                                   f"session is {self.session_id.hex()}")
        handler = getattr(self, f"_on_{schema}_{name}" if schema != "sap" else "_on_sap")
        step = handler(body, msg, now, out)
        if self.result is not None:
            return out
        if step is None:
            return out
        req, build, repeat = step
        table = EVCC_TABLES[self.schema]
        check_transition(table, self.state, name, EVCC_STATE_AFTER[self.schema][req])
        self.state = EVCC_STATE_AFTER[self.schema][req]
        if repeat and self.config.loop_interval > 0:
            self._pending = (req, build)
            self._timers["send"] = (now + self.config.loop_interval, "")
            return out
        return out + self._send(req, build(now), now)

    def _send(self, req: str, body, now: float) -> list:
        if self.protocol is not None:
            return self.protocol.send(req, body, now)
        if req == SAP_REQ:
            msg, schema = body, "sap"
        else:
            schema = self.schema
            msg = v2g(schema, self.session_id, req, body)
        self.state = EVCC_STATE_AFTER[schema if schema != "sap" else "iso2"][req]
        self._last_request = req
        timeout = (self.config.msg_timeout or timers.evcc_msg_timeout)(schema, req)
        self._timers.pop("late", None)
        self._arm("msg", now + timeout, f"no response to {req} within {timeout:g} s", timeout)
        self._arm_phase_timers(req, now)
        return [Send(exi.encode(msg), schema, req, msg)]

    def _arm(self, key: str, deadline: float, what: str, limit: Optional[float] = None) -> None:
        self._timers[key] = (deadline, what)
        if limit is not None:
            self._limits[key] = limit

    def _arm_phase_timers(self, req: str, now: float) -> None:
        c = self.config
        if req == "CableCheckReq" and "cable_check" not in self._timers:
            self._arm("cable_check", now + c.cable_check_timeout, "CableCheck not finished",
                      c.cable_check_timeout)
        elif req == "PreChargeReq" and "pre_charge" not in self._timers:
            self._arm("pre_charge", now + c.pre_charge_timeout, "PreCharge did not reach the battery voltage",
                      c.pre_charge_timeout)
        elif req == "ChargeParameterDiscoveryReq" and self.schema == "din" and "ready" not in self._timers \
                and self._progress is None:
            self._arm("ready", now + c.ready_to_charge_timeout, "no PowerDelivery(ReadyToCharge)",
                      c.ready_to_charge_timeout)

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

    # -- SAP / SessionSetup (both protocols) -----------------------------------------------
    def _on_sap(self, res, msg, now, out):
        schema = self._offered.get(res.SchemaID)
        if schema is None:
            return self._fail(now, out, f"SECC chose SchemaID {res.SchemaID}, which was not offered")
        self.schema = schema
        out.append(ProtocolNegotiated(schema, SCHEMAS[schema].protocol_namespace, res.SchemaID,
                                      val(res.ResponseCode)))
        if schema in protocol_modules.EVCC_PROTOCOLS:
            self.protocol = protocol_modules.EVCC_PROTOCOLS[schema](self, schema)
            out.extend(self.protocol.start(now))
            return None
        m = din if schema == "din" else iso2
        # Tables are per protocol from here; the SAP row is the same in both.
        self.state = E.SUPPORTED_APP_PROTOCOL
        return "SessionSetupReq", lambda now: m.SessionSetupReqType(EVCCID=self.ev.evcc_id), False

    def _session_setup(self, res, msg, now, out):
        self._timers.pop("setup", None)
        self.session_id = msg.Header.SessionID
        resumed = val(res.ResponseCode) == "OK_OldSessionJoined"
        out.append(SessionEstablished(self.session_id, resumed, val(res.ResponseCode)))
        m = din if self.schema == "din" else iso2
        return "ServiceDiscoveryReq", lambda now: m.ServiceDiscoveryReqType(), False

    _on_din_SessionSetupRes = _session_setup
    _on_iso2_SessionSetupRes = _session_setup

    def _fail(self, now, out, reason):
        out.extend(self._end(now, False, reason))
        return None

    def _early_stop(self, now, powered: bool = False):
        """The EV ends the session before the charge loop (driver, car fault)."""
        if not self.ev.stop_requested(now):
            return None
        self.stop_reason = "the EV stopped before charging"
        self._timers.pop("ongoing", None)
        for k in ("cable_check", "pre_charge", "ready"):
            self._timers.pop(k, None)
        if powered and self.config.early_stop_power_off:
            return self._power_delivery("Stop")
        return self._session_stop()

    def _isolation_refused(self, res):
        """PreCharge only after a CableCheck that reports the isolation Valid (or
        Warning) with the EVSE ready (DIN SPEC 70121 / -2 CableCheck; requirement ids
        unverified).  Otherwise the EVCC switches the output off with
        PowerDelivery(Stop) and ends the session, as a real car (Audi Q4) did."""
        st = res.DC_EVSEStatus
        iso = str(val(getattr(st, "EVSEIsolationStatus", None)))
        code = str(val(getattr(st, "EVSEStatusCode", None)))
        if iso in ("Valid", "Warning") and code == "EVSE_Ready":
            return None
        self.stop_reason = (f"CableCheck finished without a valid isolation result "
                            f"(EVSEIsolationStatus {iso}, EVSEStatusCode {code})")
        self.isolation_refused = True
        log.warning("%s: refusing PreCharge: %s", self.name, self.stop_reason)
        return self._power_delivery("Stop")

    # -- DC helpers ---------------------------------------------------------------------------
    def _dc_status(self, m):
        if m is din:
            return din.DC_EVStatusType(EVReady=self.ev.ready(), EVErrorCode="NO_ERROR",
                                       EVRESSSOC=self.ev.soc())
        return iso2.DC_EVStatusType(EVReady=self.ev.ready(), EVErrorCode="NO_ERROR",
                                    EVRESSSOC=self.ev.soc())

    def _target_voltage(self) -> float:
        lim = self.ev.dc_limits()
        return min(lim.max_voltage, self.ev.battery_voltage() + 10.0)

    def _cable_check(self, m):
        return lambda now: m.CableCheckReqType(DC_EVStatus=self._dc_status(m))

    def _pre_charge(self, m):
        s = m.__name__.rsplit(".", 1)[-1]
        return lambda now: m.PreChargeReqType(
            DC_EVStatus=self._dc_status(m), EVTargetVoltage=pv(s, self.ev.battery_voltage(), "V"),
            EVTargetCurrent=pv(s, 1.0, "A"))

    def _current_demand(self, m):
        s = m.__name__.rsplit(".", 1)[-1]

        def build(now):
            lim = self.ev.dc_limits()
            done = self.ev.charging_complete(now)
            rt = self.ev.remaining_time_to_full()
            return m.CurrentDemandReqType(
                DC_EVStatus=self._dc_status(m),
                EVTargetCurrent=pv(s, 0.0 if done else self.ev.target_current(), "A"),
                EVMaximumVoltageLimit=pv(s, lim.max_voltage, "V"),
                EVMaximumCurrentLimit=pv(s, lim.max_current, "A"),
                EVMaximumPowerLimit=pv(s, lim.max_power, "W"),
                BulkChargingComplete=self.ev.soc() >= self.ev.bulk_soc(),
                ChargingComplete=done,
                RemainingTimeToFullSoC=pv(s, min(rt, 172800), "s") if rt is not None else None,
                EVTargetVoltage=pv(s, self._target_voltage(), "V"))
        return build

    def _welding(self, m):
        return lambda now: m.WeldingDetectionReqType(DC_EVStatus=self._dc_status(m))

    def _after_loop_response(self, res, now, out, dc_status=None, ac_status=None):
        """Decide what follows a ChargingStatusRes/CurrentDemandRes: (request, build, repeat)."""
        self.loops += 1
        notification = val((dc_status or ac_status).EVSENotification) if (dc_status or ac_status) else "None"
        code = val(dc_status.EVSEStatusCode) if dc_status is not None else ""
        stop_reason = None
        if self.stop_requested:
            stop_reason = self.stop_requested
        elif notification == "StopCharging":
            stop_reason = "SECC asked to stop (EVSENotification StopCharging)"
        elif code in _STOP_CODES:
            stop_reason = f"EVSE status {code}"
        elif self.ev.charging_complete(now):
            stop_reason = "EV charging complete"
        elif self.config.max_charge_loops is not None and self.loops >= self.config.max_charge_loops:
            stop_reason = f"{self.loops} charge loops done"
        if stop_reason:
            log.info("%s: stopping: %s", self.name, stop_reason)
            self.stop_reason = stop_reason
            return self._power_delivery("Stop")
        if self.schema == "iso2" and (notification == "ReNegotiation" or (
                self.config.renegotiate_after is not None and self.renegotiations == 0
                and self.loops >= self.config.renegotiate_after) or self.ev.renegotiation_requested(now)):
            self.renegotiations += 1
            return self._power_delivery("Renegotiate")
        return None

    def _power_delivery(self, progress: str):
        self._progress = progress
        if self.schema == "din":
            ready = progress == "Start"

            def build_din(now):
                return din.PowerDeliveryReqType(
                    ReadyToChargeState=ready,
                    DC_EVPowerDeliveryParameter=din.DC_EVPowerDeliveryParameterType(
                        DC_EVStatus=self._dc_status(din), ChargingComplete=not ready))
            return "PowerDeliveryReq", build_din, False

        def build(now):
            profile = None
            if progress == "Start":
                p_ev = self.ev.dc_limits().max_power if self.config.mode == "dc" else \
                    self.ev.ac_limits().max_current * self._ac_voltage * self._phases()
                p = min(p_ev, self._pmax) if self._pmax else p_ev
                profile = iso2.ChargingProfileType(ProfileEntry=[iso2.ProfileEntryType(
                    ChargingProfileEntryStart=0, ChargingProfileEntryMaxPower=pv("iso2", p, "W"),
                    ChargingProfileEntryMaxNumberOfPhasesInUse=self._phases() if self.config.mode == "ac" else None)])
            dc = None
            if self.config.mode == "dc":
                dc = iso2.DC_EVPowerDeliveryParameterType(
                    DC_EVStatus=self._dc_status(iso2),
                    BulkChargingComplete=None, ChargingComplete=progress == "Stop")
            return iso2.PowerDeliveryReqType(ChargeProgress=progress, SAScheduleTupleID=self._tuple_id,
                                             ChargingProfile=profile, DC_EVPowerDeliveryParameter=dc)
        return "PowerDeliveryReq", build, False

    def _phases(self) -> int:
        return 1 if "single" in self.config.transfer_mode("iso2") else 3

    def _session_stop(self):
        if self.schema == "din":
            return "SessionStopReq", lambda now: din.SessionStopType(), False
        mode = "Pause" if self.config.stop == "pause" and not self.stop_requested else "Terminate"
        return "SessionStopReq", lambda now: iso2.SessionStopReqType(ChargingSession=mode), False

    def _session_stopped(self, res, msg, now, out):
        paused = self.schema == "iso2" and self.config.stop == "pause" and not self.stop_requested
        out.extend(self._end(now, True, f"SessionStop ({'Pause' if paused else 'Terminate'})" +
                             (f" after: {self.stop_reason}" if self.stop_reason else ""),
                             paused=paused))
        return None

    # =====================================================================================
    # ISO 15118-2
    def _on_iso2_ServiceDiscoveryRes(self, res, msg, now, out):
        options = [val(o) for o in (res.PaymentOptionList.PaymentOption if res.PaymentOptionList else [])]
        if "ExternalPayment" not in options:
            return self._fail(now, out, f"SECC offers no ExternalPayment (EIM), only {options}")
        modes = [val(x) for x in res.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode]
        want = self.config.transfer_mode("iso2")
        if want not in modes:
            return self._fail(now, out, f"SECC does not offer {want} (offers {modes})")
        self._charge_service_id = res.ChargeService.ServiceID
        if self.config.request_service_details and res.ServiceList is not None:
            self._services = [s.ServiceID for s in res.ServiceList.Service]
        return self._next_detail_or_selection()

    def _next_detail_or_selection(self):
        if self._services:
            sid = self._services.pop(0)
            return "ServiceDetailReq", lambda now: iso2.ServiceDetailReqType(ServiceID=sid), False
        return "PaymentServiceSelectionReq", lambda now: iso2.PaymentServiceSelectionReqType(
            SelectedPaymentOption="ExternalPayment",
            SelectedServiceList=iso2.SelectedServiceListType(SelectedService=[
                iso2.SelectedServiceType(ServiceID=self._charge_service_id)])), False

    def _on_iso2_ServiceDetailRes(self, res, msg, now, out):
        return self._next_detail_or_selection()

    def _on_iso2_PaymentServiceSelectionRes(self, res, msg, now, out):
        return "AuthorizationReq", lambda now: iso2.AuthorizationReqType(), False

    def _on_iso2_AuthorizationRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "Authorization"):
            return self._early_stop(now) or ("AuthorizationReq", lambda now: iso2.AuthorizationReqType(), True)
        return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._iso2_cpd, False)

    def _iso2_cpd(self, now):
        mode = self.config.transfer_mode("iso2")
        if self.config.mode == "dc":
            lim = self.ev.dc_limits()
            return iso2.ChargeParameterDiscoveryReqType(
                RequestedEnergyTransferMode=mode, DC_EVChargeParameter=iso2.DC_EVChargeParameterType(
                    DepartureTime=self.ev.departure_time(), DC_EVStatus=self._dc_status(iso2),
                    EVMaximumCurrentLimit=pv("iso2", lim.max_current, "A"),
                    EVMaximumPowerLimit=pv("iso2", lim.max_power, "W"),
                    EVMaximumVoltageLimit=pv("iso2", lim.max_voltage, "V"),
                    EVEnergyCapacity=pv("iso2", self.ev.energy_capacity(), "Wh"),
                    EVEnergyRequest=pv("iso2", self.ev.energy_request(), "Wh"),
                    FullSOC=self.ev.full_soc(), BulkSOC=self.ev.bulk_soc()))
        lim = self.ev.ac_limits()
        return iso2.ChargeParameterDiscoveryReqType(
            RequestedEnergyTransferMode=mode, AC_EVChargeParameter=iso2.AC_EVChargeParameterType(
                DepartureTime=self.ev.departure_time(), EAmount=pv("iso2", self.ev.energy_request(), "Wh"),
                EVMaxVoltage=pv("iso2", lim.nominal_voltage, "V"),
                EVMaxCurrent=pv("iso2", lim.max_current, "A"),
                EVMinCurrent=pv("iso2", lim.min_current, "A")))

    def _on_iso2_ChargeParameterDiscoveryRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ChargeParameterDiscovery"):
            return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._iso2_cpd, True)
        stop = self._early_stop(now)
        if stop is not None:
            return stop
        tuples = res.SAScheduleList.SAScheduleTuple if res.SAScheduleList else []
        if not tuples:
            return self._fail(now, out, "ChargeParameterDiscoveryRes Finished without SAScheduleList")
        t = tuples[0]
        self._tuple_id = t.SAScheduleTupleID
        entries = t.PMaxSchedule.PMaxScheduleEntry if t.PMaxSchedule else []
        self._pmax = fv(entries[0].PMax) if entries else None
        if res.AC_EVSEChargeParameter is not None:
            self._ac_voltage = fv(res.AC_EVSEChargeParameter.EVSENominalVoltage) or 230.0
            self._evse_max_current = fv(res.AC_EVSEChargeParameter.EVSEMaxCurrent)
        if self.config.mode == "dc" and (not self._renegotiating or self.config.recheck_after_renegotiation):
            self._renegotiating = False
            return "CableCheckReq", self._cable_check(iso2), False
        self._renegotiating = False
        return self._power_delivery("Start")

    def _on_iso2_CableCheckRes(self, res, msg, now, out):
        if val(res.EVSEProcessing) == "Ongoing":
            return self._early_stop(now, True) or ("CableCheckReq", self._cable_check(iso2), True)
        self._timers.pop("cable_check", None)
        return self._isolation_refused(res) or self._early_stop(now, True) or \
            ("PreChargeReq", self._pre_charge(iso2), False)

    def _precharged(self, res, now) -> bool:
        # The EV may judge PreCharge itself (real cars measure their inlet); otherwise
        # the charger's EVSEPresentVoltage must be within the window of the battery's.
        done = self.ev.precharge_complete(now, fv(res.EVSEPresentVoltage))
        if done is None:
            done = abs(fv(res.EVSEPresentVoltage) - self.ev.battery_voltage()) <= self.config.precharge_tolerance
        if done:
            self._timers.pop("pre_charge", None)
        return done

    def _on_iso2_PreChargeRes(self, res, msg, now, out):
        stop = self._early_stop(now, True)
        if stop is not None:
            return stop
        if self._precharged(res, now):
            return self._power_delivery("Start")
        return "PreChargeReq", self._pre_charge(iso2), True

    def _on_iso2_PowerDeliveryRes(self, res, msg, now, out):
        out.append(PowerDeliveryChanged(self._progress))
        if self._progress == "Start":
            if self.config.mode == "dc":
                return "CurrentDemandReq", self._current_demand(iso2), True
            return "ChargingStatusReq", lambda now: iso2.ChargingStatusReqType(), True
        if self._progress == "Renegotiate":
            self._renegotiating = True
            return "ChargeParameterDiscoveryReq", self._iso2_cpd, False
        self.ev.update(now, 0.0, 0.0)
        if self.config.mode == "dc" and self.config.max_welding_requests > 0:
            return "WeldingDetectionReq", self._welding(iso2), False
        return self._session_stop()

    def _receipt(self, res):
        self.receipts += 1
        meter = res.MeterInfo or iso2.MeterInfoType(MeterID="unknown")
        return "MeteringReceiptReq", lambda now: iso2.MeteringReceiptReqType(
            Id="receipt", SessionID=self.session_id, SAScheduleTupleID=self._tuple_id, MeterInfo=meter), False

    def _on_iso2_ChargingStatusRes(self, res, msg, now, out):
        i = min(self.ev.ac_limits().max_current, fv(res.EVSEMaxCurrent) or self._evse_max_current or 16.0)
        self.ev.update(now, self._ac_voltage * self._phases(), i)
        if res.ReceiptRequired:     # obliges the next request, before any stop
            self.loops += 1
            return self._receipt(res)
        nxt = self._after_loop_response(res, now, out, ac_status=res.AC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "ChargingStatusReq", lambda now: iso2.ChargingStatusReqType(), True

    def _on_iso2_CurrentDemandRes(self, res, msg, now, out):
        self.ev.update(now, fv(res.EVSEPresentVoltage), fv(res.EVSEPresentCurrent))
        if res.ReceiptRequired:     # obliges the next request, before any stop
            self.loops += 1
            return self._receipt(res)
        nxt = self._after_loop_response(res, now, out, dc_status=res.DC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "CurrentDemandReq", self._current_demand(iso2), True

    def _on_iso2_MeteringReceiptRes(self, res, msg, now, out):
        if self.config.mode == "dc":
            return "CurrentDemandReq", self._current_demand(iso2), True
        return "ChargingStatusReq", lambda now: iso2.ChargingStatusReqType(), True

    def _on_iso2_WeldingDetectionRes(self, res, msg, now, out):
        self._welding_count += 1
        if fv(res.EVSEPresentVoltage) <= self.config.welding_safe_voltage \
                or self._welding_count >= self.config.max_welding_requests:
            return self._session_stop()
        return "WeldingDetectionReq", self._welding(iso2), True

    _on_iso2_SessionStopRes = _session_stopped

    # =====================================================================================
    # DIN SPEC 70121
    def _on_din_ServiceDiscoveryRes(self, res, msg, now, out):
        options = [val(o) for o in (res.PaymentOptions.PaymentOption if res.PaymentOptions else [])]
        if "ExternalPayment" not in options:
            return self._fail(now, out, f"SECC offers no ExternalPayment, only {options}")
        self._charge_service_id = res.ChargeService.ServiceTag.ServiceID
        return "ServicePaymentSelectionReq", lambda now: din.ServicePaymentSelectionReqType(
            SelectedPaymentOption="ExternalPayment",
            SelectedServiceList=din.SelectedServiceListType(SelectedService=[
                din.SelectedServiceType(ServiceID=self._charge_service_id)])), False

    def _on_din_ServicePaymentSelectionRes(self, res, msg, now, out):
        return "ContractAuthenticationReq", lambda now: din.ContractAuthenticationReqType(), False

    def _on_din_ContractAuthenticationRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ContractAuthentication"):
            return self._early_stop(now) or (
                "ContractAuthenticationReq", lambda now: din.ContractAuthenticationReqType(), True)
        return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._din_cpd, False)

    def _din_cpd(self, now):
        lim = self.ev.dc_limits()
        return din.ChargeParameterDiscoveryReqType(
            EVRequestedEnergyTransferType=self.config.transfer_mode("din"),
            DC_EVChargeParameter=din.DC_EVChargeParameterType(
                DC_EVStatus=self._dc_status(din),
                EVMaximumCurrentLimit=pv("din", lim.max_current, "A"),
                EVMaximumPowerLimit=pv("din", lim.max_power, "W"),
                EVMaximumVoltageLimit=pv("din", lim.max_voltage, "V"),
                EVEnergyCapacity=pv("din", self.ev.energy_capacity(), "Wh"),
                EVEnergyRequest=pv("din", self.ev.energy_request(), "Wh"),
                FullSOC=self.ev.full_soc(), BulkSOC=self.ev.bulk_soc()))

    def _on_din_ChargeParameterDiscoveryRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ChargeParameterDiscovery"):
            return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._din_cpd, True)
        return self._early_stop(now) or ("CableCheckReq", self._cable_check(din), False)

    def _on_din_CableCheckRes(self, res, msg, now, out):
        if val(res.EVSEProcessing) == "Ongoing":
            return self._early_stop(now, True) or ("CableCheckReq", self._cable_check(din), True)
        self._timers.pop("cable_check", None)
        return self._isolation_refused(res) or self._early_stop(now, True) or \
            ("PreChargeReq", self._pre_charge(din), False)

    def _on_din_PreChargeRes(self, res, msg, now, out):
        stop = self._early_stop(now, True)
        if stop is not None:
            return stop
        if self._precharged(res, now):
            return self._power_delivery("Start")
        return "PreChargeReq", self._pre_charge(din), True

    def _on_din_PowerDeliveryRes(self, res, msg, now, out):
        out.append(PowerDeliveryChanged(self._progress))
        if self._progress == "Start":
            self._timers.pop("ready", None)
            return "CurrentDemandReq", self._current_demand(din), True
        self.ev.update(now, 0.0, 0.0)
        if self.config.max_welding_requests > 0:
            return "WeldingDetectionReq", self._welding(din), False
        return self._session_stop()

    def _on_din_CurrentDemandRes(self, res, msg, now, out):
        self.ev.update(now, fv(res.EVSEPresentVoltage), fv(res.EVSEPresentCurrent))
        nxt = self._after_loop_response(res, now, out, dc_status=res.DC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "CurrentDemandReq", self._current_demand(din), True

    def _on_din_WeldingDetectionRes(self, res, msg, now, out):
        self._welding_count += 1
        if fv(res.EVSEPresentVoltage) <= self.config.welding_safe_voltage \
                or self._welding_count >= self.config.max_welding_requests:
            return self._session_stop()
        return "WeldingDetectionReq", self._welding(din), True

    _on_din_SessionStopRes = _session_stopped
