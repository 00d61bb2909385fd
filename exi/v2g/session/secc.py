"""Sans-I/O SECC session core: one object per TCP/TLS connection.

    core = SECCSession(SECCConfig(protocols=("iso2", "din")))
    out = core.connection_made(now)
    out = core.receive(v2gtp_payload, now)      # -> [MessageReceived, Send, ..., Close]
    core.next_deadline(); core.handle_timer(now)

The core decodes the EXI payload (SAP first, then the negotiated schema), checks the
request against the transition table of :mod:`.machine`, asks the
:class:`~.controllers.EVSEController` for the answer, and returns the encoded response.

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
from ._msg import val, din, iso2, message_name, pv, fv, sap, v2g
from .controllers import EVSEController, SimulatedEVSE
from .events import (Close, MessageReceived, PowerDeliveryChanged, ProtocolNegotiated, Send,
                     SessionEnded, SessionEstablished)
from .machine import SAP_REQ, SECC_TABLES, SECCState, check_transition

__all__ = ["SECCConfig", "SECCSession", "SessionStore", "PausedSession", "Failed"]

log = logging.getLogger("exi.v2g.session.secc")
S = SECCState


class Failed(Exception):
    """A request the SECC refuses: answer with ``code`` and end the session."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


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


_INTERNET_SERVICE_ID = 3
_CHARGE_SERVICE_ID = 1


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
        self.mode: Optional[str] = None                # "AC" / "DC"
        self.tuple_id: Optional[int] = None
        self.renegotiating = False
        self.receipt_pending = False
        self.loops = 0
        self.isolation = "Invalid"
        self.ended: Optional[SessionEnded] = None
        self._deadline: Optional[float] = None
        self.requests = 0
        # Set by the driver: "TLSv1.3", "TLSv1.2" or None (plain TCP), and the SHA-512 of
        # the client certificate; -20 needs TLS 1.3 and binds resumption to the vehicle.
        self.tls_version: Optional[str] = None
        self.peer_cert_digest: Optional[bytes] = None
        self.sequence_limit = self.config.sequence_timeout
        # The protocol module that runs the session after SAP (-20); None: DIN/-2 here.
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
        if self.protocol is not None:
            return self.protocol.receive(payload, now, payload_type)
        self.requests += 1
        if payload_type != 0x8001:
            return self._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X}")
        schema = self.schema or "sap"
        try:
            msg = exi.decode(payload, schema, padding=True)   # zero padding some encoders add
            name, body = message_name(schema, msg)
        except (exi.DecodeError, ValueError) as e:
            return self._end(now, False, f"undecodable {schema} message: {e}")
        out: list = [MessageReceived(schema, name, msg)]
        if not name.endswith("Req"):
            return out + self._end(now, False, f"{name} is not a request")
        try:        # values beyond the schema's facets never reach the handlers or the store
            exi.validate(msg)
        except exi.ValidationError as e:
            return out + self._fail(name, "FAILED", f"{name} outside the schema: {e}", now, msg)
        table = SECC_TABLES[self.schema or "iso2"]
        if self.session_id is not None and name != "SessionSetupReq":
            sid = msg.Header.SessionID if msg.Header is not None else None
            if sid != self.session_id:
                return out + self._fail(name, "FAILED_UnknownSession",
                                        f"{name} with SessionID {(sid or b'').hex()} "
                                        f"(session is {self.session_id.hex()})", now, msg)
        if (self.state, name) not in table:
            return out + self._fail(name, "FAILED_SequenceError",
                                    f"{name} not expected in state {self.state.name}", now, msg)
        handler = getattr(self, f"_{self.schema}_{name}" if schema != "sap" else "_sap")
        try:
            res, new_state, events = handler(body, msg, now)
        except Failed as f:
            return out + self._fail(name, f.code, f.reason, now, msg)
        check_transition(table, self.state, name, new_state)
        if new_state is not self.state:
            log.debug("%s: %s -> %s", self.name, self.state.name, new_state.name)
        self.state = new_state
        out.append(self._send(name, res))
        out += events
        if new_state is S.ENDED:
            paused = getattr(body, "ChargingSession", None) == "Pause"
            out += self._end(now, True, "SessionStop (Pause)" if paused else "SessionStop (Terminate)",
                             paused=paused)
        else:
            self._deadline = now + self.config.sequence_timeout
        return out

    def _send(self, req_name: str, body) -> Send:
        if self.schema is None or req_name == SAP_REQ:
            msg, name, schema = body, "supportedAppProtocolRes", "sap"
        else:
            name = req_name[:-3] + "Res"
            schema = self.schema
            msg = v2g(schema, self.session_id or b"\x00", name, body)
        return Send(exi.encode(msg), schema, name, msg)

    def _fail(self, req_name: str, code: str, reason: str, now: float, msg=None) -> list:
        out: list = []
        if req_name == SAP_REQ:
            out.append(self._send(req_name, sap.supportedAppProtocolRes(ResponseCode="Failed_NoNegotiation")))
        else:
            build = getattr(self, f"_r_{self.schema}_{req_name}", None)
            if build is None:
                reason += " (no response sent: request type not supported)"
            else:
                if req_name == "PowerDeliveryReq" and self.mode is None and msg is not None:
                    _, body = message_name(self.schema, msg)
                    self.mode = "DC" if body.DC_EVPowerDeliveryParameter is not None else "AC"
                out.append(self._send(req_name, build(code, now)))
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
        if sid in protocol_modules.SECC_PROTOCOLS:
            self.protocol = protocol_modules.SECC_PROTOCOLS[sid](self, sid)
        res = sap.supportedAppProtocolRes(ResponseCode=code, SchemaID=a.SchemaID)
        return res, S.SESSION_SETUP, [ProtocolNegotiated(sid, a.ProtocolNamespace, a.SchemaID, code)]

    def _serves(self) -> set:
        """Schemas this connection may select: DIN/-2 here, -20 from its module only over
        TLS 1.3 ([V2G20-2356]) unless ``iso20_plain_tcp`` (test tools)."""
        wanted = protocol_modules.expand(self.config.protocols)
        ok = {s for s in wanted if s in SECC_TABLES}
        if self.tls_version == "TLSv1.3" or self.config.iso20_plain_tcp:
            ok |= {s for s in wanted if s in protocol_modules.SECC_PROTOCOLS}
        return ok

    # -- shared -----------------------------------------------------------------------------
    def _session_setup(self, req, msg, now):
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

    def _notification(self, now) -> str:
        return self.evse.notification(now) or "None"

    def _authorize(self, now) -> str:
        ok = self.evse.authorize(now)
        if ok is None:
            return "Ongoing"
        if not ok:
            raise Failed("FAILED", "EVSE refused authorization")
        return "Finished"

    def _check_charging_profile(self, entries: list, pmax: float) -> None:
        # [V2G2-478]/[V2G2-479] (unverified): the profile must stay within the PMax of
        # the selected SAScheduleTuple, else FAILED_ChargingProfileInvalid.
        for start, power in entries:
            if power > pmax * 1.0001:
                raise Failed("FAILED_ChargingProfileInvalid",
                             f"charging profile asks {power:.0f} W at {start} s, PMax is {pmax:.0f} W")

    def _pmax(self) -> float:
        return max((p.max_power for p in self.evse.schedule()), default=0.0)

    def _loop_receipt(self) -> Optional[bool]:
        if not self.config.receipt_required or self.schema != "iso2":
            return None
        self.loops += 1
        if self.loops % max(1, self.config.receipt_every) == 0:
            self.receipt_pending = True
            return True
        return False

    def _power_on(self, now, voltage: float, current: float) -> None:
        self.evse.set_output(now, voltage, current, True)

    # =====================================================================================
    # ISO 15118-2
    def _iso2_ac_status(self, notification="None"):
        return iso2.AC_EVSEStatusType(NotificationMaxDelay=0, EVSENotification=notification, RCD=False)

    def _iso2_dc_status(self, now, notification="None"):
        code = self.evse.status_code(now) if self.isolation in ("Valid", "Warning") else "EVSE_Ready"
        if self.state is S.CABLE_CHECK and self.isolation == "Invalid":
            code = "EVSE_IsolationMonitoringActive"
        return iso2.DC_EVSEStatusType(NotificationMaxDelay=0, EVSENotification=notification,
                                      EVSEIsolationStatus=self.isolation, EVSEStatusCode=code)

    def _iso2_meter(self, now):
        m = self.evse.meter(now)
        return iso2.MeterInfoType(MeterID=m.meter_id, MeterReading=m.energy_wh,
                                  MeterStatus=m.status, TMeter=m.timestamp)

    def _iso2_schedule(self):
        entries = [iso2.PMaxScheduleEntryType(
            RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=p.start, duration=p.duration),
            PMax=pv("iso2", p.max_power, "W")) for p in self.evse.schedule()]
        return iso2.SAScheduleListType(SAScheduleTuple=[iso2.SAScheduleTupleType(
            SAScheduleTupleID=self.config.sa_schedule_tuple_id,
            PMaxSchedule=iso2.PMaxScheduleType(PMaxScheduleEntry=entries))])

    # response builders: every mandatory field is filled whatever the code ([V2G2-736])
    def _r_iso2_SessionSetupReq(self, code, now):
        return iso2.SessionSetupResType(ResponseCode=code, EVSEID=self.evse.evse_id())

    def _r_iso2_ServiceDiscoveryReq(self, code, now, category=None):
        services = None
        if self.config.offer_value_added_services and category in (None, "Internet"):
            services = iso2.ServiceListType(Service=[iso2.ServiceType(
                ServiceID=_INTERNET_SERVICE_ID, ServiceName="Internet", ServiceCategory="Internet",
                FreeService=True)])
        extra = [iso2.ServiceType(ServiceID=i, ServiceName=n, ServiceCategory=c, FreeService=True)
                 for i, n, c in self.config.extra_services if category in (None, c)]
        if extra:
            services = iso2.ServiceListType(Service=(services.Service if services else []) + extra)
        return iso2.ServiceDiscoveryResType(
            ResponseCode=code,
            PaymentOptionList=iso2.PaymentOptionListType(PaymentOption=["ExternalPayment"]),
            ChargeService=iso2.ChargeServiceType(
                ServiceID=_CHARGE_SERVICE_ID, ServiceName="AC_DC_Charging", ServiceCategory="EVCharging",
                FreeService=False, SupportedEnergyTransferMode=iso2.SupportedEnergyTransferModeType(
                    EnergyTransferMode=list(self.config.energy_modes))),
            ServiceList=services)

    def _r_iso2_ServiceDetailReq(self, code, now, service_id=_CHARGE_SERVICE_ID, params=None):
        return iso2.ServiceDetailResType(ResponseCode=code, ServiceID=service_id,
                                         ServiceParameterList=params)

    def _r_iso2_PaymentServiceSelectionReq(self, code, now):
        return iso2.PaymentServiceSelectionResType(ResponseCode=code)

    def _r_iso2_PaymentDetailsReq(self, code, now):
        return iso2.PaymentDetailsResType(ResponseCode=code, GenChallenge=b"\x00" * 16, EVSETimeStamp=0)

    def _r_iso2_AuthorizationReq(self, code, now, processing="Finished"):
        return iso2.AuthorizationResType(ResponseCode=code, EVSEProcessing=processing)

    def _r_iso2_ChargeParameterDiscoveryReq(self, code, now, processing="Finished", schedules=None):
        if self.mode == "DC":
            lim = self.evse.dc_limits()
            param = dict(DC_EVSEChargeParameter=iso2.DC_EVSEChargeParameterType(
                DC_EVSEStatus=self._iso2_dc_status(now),
                EVSEMaximumCurrentLimit=pv("iso2", lim.max_current, "A"),
                EVSEMaximumPowerLimit=pv("iso2", lim.max_power, "W"),
                EVSEMaximumVoltageLimit=pv("iso2", lim.max_voltage, "V"),
                EVSEMinimumCurrentLimit=pv("iso2", lim.min_current, "A"),
                EVSEMinimumVoltageLimit=pv("iso2", lim.min_voltage, "V"),
                EVSEPeakCurrentRipple=pv("iso2", 2.0, "A")))
        else:
            lim = self.evse.ac_limits()
            param = dict(AC_EVSEChargeParameter=iso2.AC_EVSEChargeParameterType(
                AC_EVSEStatus=self._iso2_ac_status(),
                EVSENominalVoltage=pv("iso2", lim.nominal_voltage, "V"),
                EVSEMaxCurrent=pv("iso2", lim.max_current, "A")))
        return iso2.ChargeParameterDiscoveryResType(ResponseCode=code, EVSEProcessing=processing,
                                                    SAScheduleList=schedules, **param)

    def _r_iso2_PowerDeliveryReq(self, code, now, notification="None"):
        if self.mode == "DC":
            return iso2.PowerDeliveryResType(ResponseCode=code,
                                             DC_EVSEStatus=self._iso2_dc_status(now, notification))
        return iso2.PowerDeliveryResType(ResponseCode=code, AC_EVSEStatus=self._iso2_ac_status(notification))

    def _r_iso2_ChargingStatusReq(self, code, now, notification="None", receipt=None, meter=None):
        return iso2.ChargingStatusResType(
            ResponseCode=code, EVSEID=self.evse.evse_id(), SAScheduleTupleID=self.tuple_id or self.config.sa_schedule_tuple_id,
            EVSEMaxCurrent=pv("iso2", self.evse.ac_limits().max_current, "A"),
            MeterInfo=meter, ReceiptRequired=receipt, AC_EVSEStatus=self._iso2_ac_status(notification))

    def _r_iso2_MeteringReceiptReq(self, code, now):
        if self.mode == "DC":
            return iso2.MeteringReceiptResType(ResponseCode=code, DC_EVSEStatus=self._iso2_dc_status(now))
        return iso2.MeteringReceiptResType(ResponseCode=code, AC_EVSEStatus=self._iso2_ac_status())

    def _r_iso2_CableCheckReq(self, code, now, processing="Finished"):
        return iso2.CableCheckResType(ResponseCode=code, DC_EVSEStatus=self._iso2_dc_status(now),
                                      EVSEProcessing=processing)

    def _r_iso2_PreChargeReq(self, code, now):
        return iso2.PreChargeResType(ResponseCode=code, DC_EVSEStatus=self._iso2_dc_status(now),
                                     EVSEPresentVoltage=pv("iso2", self.evse.present_voltage(now), "V"))

    def _r_iso2_CurrentDemandReq(self, code, now, notification="None", flags=(False, False, False),
                                 receipt=None, meter=None):
        lim = self.evse.dc_limits()
        return iso2.CurrentDemandResType(
            ResponseCode=code, DC_EVSEStatus=self._iso2_dc_status(now, notification),
            EVSEPresentVoltage=pv("iso2", self.evse.present_voltage(now), "V"),
            EVSEPresentCurrent=pv("iso2", self.evse.present_current(now), "A"),
            EVSECurrentLimitAchieved=flags[0], EVSEVoltageLimitAchieved=flags[1],
            EVSEPowerLimitAchieved=flags[2],
            EVSEMaximumVoltageLimit=pv("iso2", lim.max_voltage, "V"),
            EVSEMaximumCurrentLimit=pv("iso2", lim.max_current, "A"),
            EVSEMaximumPowerLimit=pv("iso2", lim.max_power, "W"),
            EVSEID=self.evse.evse_id(), SAScheduleTupleID=self.tuple_id or self.config.sa_schedule_tuple_id,
            MeterInfo=meter, ReceiptRequired=receipt)

    def _r_iso2_WeldingDetectionReq(self, code, now):
        return iso2.WeldingDetectionResType(ResponseCode=code, DC_EVSEStatus=self._iso2_dc_status(now),
                                            EVSEPresentVoltage=pv("iso2", self.evse.present_voltage(now), "V"))

    def _r_iso2_SessionStopReq(self, code, now):
        return iso2.SessionStopResType(ResponseCode=code)

    # handlers: (response body, next state, extra events)
    def _iso2_SessionSetupReq(self, req, msg, now):
        code, ev = self._session_setup(req, msg, now)
        return self._r_iso2_SessionSetupReq(code, now), S.SERVICE_DISCOVERY, ev

    def _iso2_ServiceDiscoveryReq(self, req, msg, now):
        return self._r_iso2_ServiceDiscoveryReq("OK", now, req.ServiceCategory), S.PAYMENT_SELECTION, []

    def _offered_services(self) -> set:
        return ({_CHARGE_SERVICE_ID} | ({_INTERNET_SERVICE_ID} if self.config.offer_value_added_services else set())
                | {i for i, _, _ in self.config.extra_services})

    def _iso2_ServiceDetailReq(self, req, msg, now):
        offered = self._offered_services()
        if req.ServiceID not in offered:
            # [V2G2-425] (2nd-hand)
            raise Failed("FAILED_ServiceIDInvalid", f"ServiceDetailReq for unknown ServiceID {req.ServiceID}")
        params = None
        if req.ServiceID == _INTERNET_SERVICE_ID:
            params = iso2.ServiceParameterListType(ParameterSet=[iso2.ParameterSetType(
                ParameterSetID=3, Parameter=[iso2.ParameterType(Name="Protocol", stringValue="https"),
                                             iso2.ParameterType(Name="Port", intValue=443)])])
        return self._r_iso2_ServiceDetailReq("OK", now, req.ServiceID, params), S.PAYMENT_SELECTION, []

    def _iso2_PaymentServiceSelectionReq(self, req, msg, now):
        if req.SelectedPaymentOption != "ExternalPayment":
            raise Failed("FAILED_PaymentSelectionInvalid",
                         f"payment option {req.SelectedPaymentOption} was not offered (EIM only)")
        ids = [s.ServiceID for s in (req.SelectedServiceList.SelectedService if req.SelectedServiceList else [])]
        if _CHARGE_SERVICE_ID not in ids:
            raise Failed("FAILED_NoChargeServiceSelected", "the charge service was not selected")
        offered = self._offered_services()
        if any(i not in offered for i in ids):
            raise Failed("FAILED_ServiceSelectionInvalid", f"selected services {ids}, offered {sorted(offered)}")
        return self._r_iso2_PaymentServiceSelectionReq("OK", now), S.AUTHORIZATION, []

    def _iso2_AuthorizationReq(self, req, msg, now):
        processing = self._authorize(now)
        nxt = S.AUTHORIZATION if processing == "Ongoing" else S.CHARGE_PARAMETER_DISCOVERY
        return self._r_iso2_AuthorizationReq("OK", now, processing), nxt, []

    def _iso2_ChargeParameterDiscoveryReq(self, req, msg, now):
        mode = val(req.RequestedEnergyTransferMode)
        if mode not in self.config.energy_modes:
            raise Failed("FAILED_WrongEnergyTransferMode", f"energy transfer mode {mode} not offered")
        dc = val(mode).startswith("DC")
        if self.mode is not None and self.mode != ("DC" if dc else "AC"):
            raise Failed("FAILED_WrongEnergyTransferMode", f"renegotiation switched to {mode}")
        self.mode = "DC" if dc else "AC"
        if (req.DC_EVChargeParameter if dc else req.AC_EVChargeParameter) is None:
            # [V2G2-477] (2nd-hand)
            raise Failed("FAILED_WrongChargeParameter", f"no {'DC' if dc else 'AC'}_EVChargeParameter for {mode}")
        if not self.evse.charge_parameters_ready(now):
            return (self._r_iso2_ChargeParameterDiscoveryReq("OK", now, "Ongoing"),
                    S.CHARGE_PARAMETER_DISCOVERY, [])
        nxt = S.CABLE_CHECK if dc and not self.renegotiating else S.POWER_DELIVERY
        return (self._r_iso2_ChargeParameterDiscoveryReq("OK", now, "Finished", self._iso2_schedule()),
                nxt, [])

    def _iso2_CableCheckReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "CableCheckReq in an AC session")
        result = self.evse.isolation_check(now)
        if result is None:
            return self._r_iso2_CableCheckReq("OK", now, "Ongoing"), S.CABLE_CHECK, []
        self.isolation = result
        if result not in ("Valid", "Warning"):
            raise Failed("FAILED", f"isolation check: {result}")
        return self._r_iso2_CableCheckReq("OK", now, "Finished"), S.PRE_CHARGE, []

    def _iso2_PreChargeReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "PreChargeReq in an AC session")
        # Precharge current is limited to 2 A ([V2G2-...] unverified; DIN SPEC 70121 same).
        self.evse.set_output(now, fv(req.EVTargetVoltage), min(fv(req.EVTargetCurrent), 2.0), False)
        return self._r_iso2_PreChargeReq("OK", now), S.PRE_CHARGE, []

    def _iso2_PowerDeliveryReq(self, req, msg, now):
        if self.mode is None:
            self.mode = "DC" if req.DC_EVPowerDeliveryParameter is not None else "AC"
        progress = val(req.ChargeProgress)
        if progress == "Start":
            if self.state is S.CHARGING:
                raise Failed("FAILED_SequenceError", "PowerDelivery Start while charging")
            if req.SAScheduleTupleID != self.config.sa_schedule_tuple_id:
                raise Failed("FAILED_TariffSelectionInvalid", f"SAScheduleTupleID {req.SAScheduleTupleID} was not offered")
            entries = [(e.ChargingProfileEntryStart, fv(e.ChargingProfileEntryMaxPower))
                       for e in (req.ChargingProfile.ProfileEntry if req.ChargingProfile else [])]
            self._check_charging_profile(entries, self._pmax())
            self.tuple_id = req.SAScheduleTupleID
            self.renegotiating = False
            if self.mode == "AC":
                lim = self.evse.ac_limits()
                self.evse.set_output(now, lim.nominal_voltage, lim.max_current, True, ac=True)
            else:
                self._power_on(now, self.evse.present_voltage(now), 0.0)
            nxt = S.CHARGING
        elif progress == "Stop":
            self.evse.set_output(now, 0.0, 0.0, False, ac=self.mode == "AC")
            nxt = S.POWER_STOPPED
        else:           # Renegotiate
            if self.state is not S.CHARGING:
                raise Failed("FAILED_SequenceError", "PowerDelivery Renegotiate outside the charge loop")
            self.renegotiating = True
            nxt = S.CHARGE_PARAMETER_DISCOVERY
        return self._r_iso2_PowerDeliveryReq("OK", now), nxt, [PowerDeliveryChanged(progress)]

    def _check_receipt_order(self, name):
        if self.receipt_pending:
            raise Failed("FAILED_SequenceError", f"{name} while a MeteringReceiptReq was required")

    def _iso2_ChargingStatusReq(self, req, msg, now):
        if self.mode != "AC":
            raise Failed("FAILED_SequenceError", "ChargingStatusReq in a DC session")
        self._check_receipt_order("ChargingStatusReq")
        receipt = self._loop_receipt()
        return (self._r_iso2_ChargingStatusReq("OK", now, self._notification(now), receipt,
                                               self._iso2_meter(now)), S.CHARGING, [])

    def _iso2_CurrentDemandReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "CurrentDemandReq in an AC session")
        self._check_receipt_order("CurrentDemandReq")
        flags = self._dc_apply(req, now)
        receipt = self._loop_receipt()
        meter = self._iso2_meter(now) if receipt is not None else None
        return (self._r_iso2_CurrentDemandReq("OK", now, self._notification(now), flags, receipt, meter),
                S.CHARGING, [])

    def _dc_apply(self, req, now) -> tuple:
        lim = self.evse.dc_limits()
        v, i = fv(req.EVTargetVoltage), fv(req.EVTargetCurrent)
        self._power_on(now, v, i)
        return (i >= lim.max_current, v >= lim.max_voltage, v * i >= lim.max_power)

    def _iso2_MeteringReceiptReq(self, req, msg, now):
        if not self.receipt_pending:
            raise Failed("FAILED_SequenceError", "MeteringReceiptReq that was not asked for")
        if req.SessionID != self.session_id:
            raise Failed("FAILED_UnknownSession", "MeteringReceiptReq for another session")
        if req.MeterInfo is None:
            raise Failed("FAILED", "MeteringReceiptReq without MeterInfo")
        self.receipt_pending = False
        return self._r_iso2_MeteringReceiptReq("OK", now), S.CHARGING, []

    def _iso2_WeldingDetectionReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "WeldingDetectionReq in an AC session")
        return self._r_iso2_WeldingDetectionReq("OK", now), S.POWER_STOPPED, []

    def _iso2_SessionStopReq(self, req, msg, now):
        if val(req.ChargingSession) == "Pause":
            self.config.store.pause(PausedSession(self.session_id, self.schema, self.evcc_id, now))
        return self._r_iso2_SessionStopReq("OK", now), S.ENDED, []

    # =====================================================================================
    # DIN SPEC 70121 (DC only, EIM only: [V2G-DC-252] (2nd-hand) ExternalPayment)
    def _din_dc_status(self, now, notification="None"):
        code = "EVSE_Ready"
        if self.state is S.CABLE_CHECK and self.isolation == "Invalid":
            code = "EVSE_IsolationMonitoringActive"
        elif self.isolation in ("Valid", "Warning"):
            code = self.evse.status_code(now)
        return din.DC_EVSEStatusType(EVSEIsolationStatus=self.isolation, EVSEStatusCode=code,
                                     NotificationMaxDelay=0, EVSENotification=notification)

    def _din_evseid(self) -> bytes:
        return self.evse.evse_id().encode()[:32] or b"\x00"

    def _r_din_SessionSetupReq(self, code, now):
        return din.SessionSetupResType(ResponseCode=code, EVSEID=self._din_evseid())

    def _r_din_ServiceDiscoveryReq(self, code, now):
        return din.ServiceDiscoveryResType(
            ResponseCode=code, PaymentOptions=din.PaymentOptionsType(PaymentOption=["ExternalPayment"]),
            ChargeService=din.ServiceChargeType(
                ServiceTag=din.ServiceTagType(ServiceID=_CHARGE_SERVICE_ID, ServiceCategory="EVCharging"),
                FreeService=False, EnergyTransferType="DC_extended"))

    def _r_din_ServicePaymentSelectionReq(self, code, now):
        return din.ServicePaymentSelectionResType(ResponseCode=code)

    def _r_din_ContractAuthenticationReq(self, code, now, processing="Finished"):
        return din.ContractAuthenticationResType(ResponseCode=code, EVSEProcessing=processing)

    def _din_schedule(self):
        # DIN PMax is a plain short; [V2G-DC-329] (2nd-hand): at most 12 entries.
        entries = [din.PMaxScheduleEntryType(
            RelativeTimeInterval=din.RelativeTimeIntervalType(start=p.start, duration=p.duration),
            PMax=int(min(p.max_power, 32767))) for p in self.evse.schedule()[:12]]
        return din.SAScheduleListType(SAScheduleTuple=[din.SAScheduleTupleType(
            SAScheduleTupleID=self.config.sa_schedule_tuple_id,
            PMaxSchedule=din.PMaxScheduleType(PMaxScheduleID=1, PMaxScheduleEntry=entries))])

    def _r_din_ChargeParameterDiscoveryReq(self, code, now, processing="Finished", schedules=None):
        # The DIN schema makes SAScheduleList mandatory (unlike -2's choice), also with
        # Ongoing and FAILED: send the schedule we have, as real DIN chargers do.
        lim = self.evse.dc_limits()
        return din.ChargeParameterDiscoveryResType(
            ResponseCode=code, EVSEProcessing=processing, SAScheduleList=schedules or self._din_schedule(),
            DC_EVSEChargeParameter=din.DC_EVSEChargeParameterType(
                DC_EVSEStatus=self._din_dc_status(now),
                EVSEMaximumCurrentLimit=pv("din", lim.max_current, "A"),
                EVSEMaximumPowerLimit=pv("din", lim.max_power, "W"),
                EVSEMaximumVoltageLimit=pv("din", lim.max_voltage, "V"),
                EVSEMinimumCurrentLimit=pv("din", lim.min_current, "A"),
                EVSEMinimumVoltageLimit=pv("din", lim.min_voltage, "V"),
                EVSEPeakCurrentRipple=pv("din", 2.0, "A")))

    def _r_din_CableCheckReq(self, code, now, processing="Finished"):
        return din.CableCheckResType(ResponseCode=code, DC_EVSEStatus=self._din_dc_status(now),
                                     EVSEProcessing=processing)

    def _r_din_PreChargeReq(self, code, now):
        return din.PreChargeResType(ResponseCode=code, DC_EVSEStatus=self._din_dc_status(now),
                                    EVSEPresentVoltage=pv("din", self.evse.present_voltage(now), "V"))

    def _r_din_PowerDeliveryReq(self, code, now):
        return din.PowerDeliveryResType(ResponseCode=code, DC_EVSEStatus=self._din_dc_status(now))

    def _r_din_CurrentDemandReq(self, code, now, notification="None", flags=(False, False, False)):
        lim = self.evse.dc_limits()
        return din.CurrentDemandResType(
            ResponseCode=code, DC_EVSEStatus=self._din_dc_status(now, notification),
            EVSEPresentVoltage=pv("din", self.evse.present_voltage(now), "V"),
            EVSEPresentCurrent=pv("din", self.evse.present_current(now), "A"),
            EVSECurrentLimitAchieved=flags[0], EVSEVoltageLimitAchieved=flags[1],
            EVSEPowerLimitAchieved=flags[2],
            EVSEMaximumVoltageLimit=pv("din", lim.max_voltage, "V"),
            EVSEMaximumCurrentLimit=pv("din", lim.max_current, "A"),
            EVSEMaximumPowerLimit=pv("din", lim.max_power, "W"))

    def _r_din_WeldingDetectionReq(self, code, now):
        return din.WeldingDetectionResType(ResponseCode=code, DC_EVSEStatus=self._din_dc_status(now),
                                           EVSEPresentVoltage=pv("din", self.evse.present_voltage(now), "V"))

    def _r_din_SessionStopReq(self, code, now):
        return din.SessionStopResType(ResponseCode=code)

    def _din_SessionSetupReq(self, req, msg, now):
        code, ev = self._session_setup(req, msg, now)
        return self._r_din_SessionSetupReq(code, now), S.SERVICE_DISCOVERY, ev

    def _din_ServiceDiscoveryReq(self, req, msg, now):
        return self._r_din_ServiceDiscoveryReq("OK", now), S.PAYMENT_SELECTION, []

    def _din_ServicePaymentSelectionReq(self, req, msg, now):
        if req.SelectedPaymentOption != "ExternalPayment":
            raise Failed("FAILED_PaymentSelectionInvalid",
                         f"payment option {req.SelectedPaymentOption}: DIN SPEC 70121 allows ExternalPayment only")
        ids = [s.ServiceID for s in (req.SelectedServiceList.SelectedService if req.SelectedServiceList else [])]
        if _CHARGE_SERVICE_ID not in ids:
            raise Failed("FAILED_ServiceSelectionInvalid", f"selected services {ids}: the charge service is 1")
        return self._r_din_ServicePaymentSelectionReq("OK", now), S.AUTHORIZATION, []

    def _din_ContractAuthenticationReq(self, req, msg, now):
        processing = self._authorize(now)
        nxt = S.AUTHORIZATION if processing == "Ongoing" else S.CHARGE_PARAMETER_DISCOVERY
        return self._r_din_ContractAuthenticationReq("OK", now, processing), nxt, []

    def _din_ChargeParameterDiscoveryReq(self, req, msg, now):
        mode = val(req.EVRequestedEnergyTransferType)
        # [V2G-DC-625] (2nd-hand): DC_extended or DC_core only.
        if mode not in ("DC_extended", "DC_core") or mode not in self.config.energy_modes:
            raise Failed("FAILED_WrongEnergyTransferType", f"energy transfer type {mode}")
        self.mode = "DC"
        if req.DC_EVChargeParameter is None:
            raise Failed("FAILED_WrongChargeParameter", "no DC_EVChargeParameter")
        if not self.evse.charge_parameters_ready(now):
            return self._r_din_ChargeParameterDiscoveryReq("OK", now, "Ongoing"), S.CHARGE_PARAMETER_DISCOVERY, []
        return (self._r_din_ChargeParameterDiscoveryReq("OK", now, "Finished", self._din_schedule()),
                S.CABLE_CHECK, [])

    def _din_CableCheckReq(self, req, msg, now):
        result = self.evse.isolation_check(now)
        if result is None:
            return self._r_din_CableCheckReq("OK", now, "Ongoing"), S.CABLE_CHECK, []
        self.isolation = result
        if result not in ("Valid", "Warning"):
            raise Failed("FAILED", f"isolation check: {result}")
        return self._r_din_CableCheckReq("OK", now, "Finished"), S.PRE_CHARGE, []

    def _din_PreChargeReq(self, req, msg, now):
        self.evse.set_output(now, fv(req.EVTargetVoltage), min(fv(req.EVTargetCurrent), 2.0), False)
        return self._r_din_PreChargeReq("OK", now), S.PRE_CHARGE, []

    def _din_PowerDeliveryReq(self, req, msg, now):
        if req.ReadyToChargeState:
            if self.state is not S.PRE_CHARGE:
                raise Failed("FAILED_SequenceError", "PowerDelivery ReadyToChargeState=true while charging")
            if req.ChargingProfile is not None:
                if req.ChargingProfile.SAScheduleTupleID != self.config.sa_schedule_tuple_id:
                    raise Failed("FAILED_TariffSelectionInvalid",
                                 f"SAScheduleTupleID {req.ChargingProfile.SAScheduleTupleID} was not offered")
                self._check_charging_profile(
                    [(e.ChargingProfileEntryStart, float(e.ChargingProfileEntryMaxPower or 0))
                     for e in req.ChargingProfile.ProfileEntry or []], min(self._pmax(), 32767))
            self.tuple_id = self.config.sa_schedule_tuple_id
            self._power_on(now, self.evse.present_voltage(now), 0.0)
            return self._r_din_PowerDeliveryReq("OK", now), S.CHARGING, [PowerDeliveryChanged("Start")]
        # ReadyToChargeState=false is accepted in the charge loop and, as the -2 table
        # does for ChargeProgress=Stop, in PreCharge (a car that gives up before
        # charging switches the output off this way).
        if self.state not in (S.CHARGING, S.PRE_CHARGE):
            raise Failed("FAILED_SequenceError", "PowerDelivery ReadyToChargeState=false before charging")
        self.evse.set_output(now, 0.0, 0.0, False)
        return self._r_din_PowerDeliveryReq("OK", now), S.POWER_STOPPED, [PowerDeliveryChanged("Stop")]

    def _din_CurrentDemandReq(self, req, msg, now):
        flags = self._dc_apply(req, now)
        return self._r_din_CurrentDemandReq("OK", now, self._notification(now), flags), S.CHARGING, []

    def _din_WeldingDetectionReq(self, req, msg, now):
        return self._r_din_WeldingDetectionReq("OK", now), S.POWER_STOPPED, []

    def _din_SessionStopReq(self, req, msg, now):
        return self._r_din_SessionStopReq("OK", now), S.ENDED, []
