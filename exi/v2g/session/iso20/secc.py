"""ISO 15118-20 SECC handlers (EIM), run by :class:`~exi.v2g.session.secc.SECCSession`
once SupportedAppProtocol has chosen a -20 namespace.

The host core keeps what every protocol shares: the connection, the sequence deadline,
the EVSE controller, the paused-session store and ``_end``.  This module holds the -20
table (:mod:`.tables`), the handlers and the response builders.

Errors: out of sequence -> FAILED_SequenceError; wrong SessionID ->
FAILED_UnknownSession; content checks -> FAILED_ServiceSelectionInvalid,
FAILED_NoEnergyTransferServiceSelected, FAILED_ServiceIDInvalid,
FAILED_ScheduleSelectionInvalid, FAILED_EVPowerProfileInvalid, FAILED_WrongChargeParameter,
FAILED_PauseNotAllowed, FAILED_NoServiceRenegotiationSupported, FAILED (isolation; and a
request that decodes but breaks the schema's facets -- a 60,000-byte EVCCID, an integer out
of range, a missing mandatory element, which non-strict EXI can carry -- checked with
:func:`exi.validate` before any handler or the paused-session store sees it).  Every
FAILED response carries its mandatory fields and ends the session (clause 8.6).  A
payload type that is not a -20 message set, or a message on the wrong payload type,
ends the session without a response.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

import exi

from .. import timers
from ..events import PowerDeliveryChanged, Send, SessionEstablished
from ..machine import check_transition
from ._msg import AC, CM, DC, SESSION_PAYLOAD_TYPES, build, fr, payload_type_of, rn, schema_of, val
from ..secc import PausedSession
from .tables import DYNAMIC, SCHEDULED, SECC_TABLE, SERVICES, Service, SECC20State, parameter_sets

__all__ = ["ISO20SECCSettings", "ISO20SECC", "Failed20"]

log = logging.getLogger("exi.v2g.session.iso20.secc")
S = SECC20State

# -2 style notifications of the EVSE controller, in -20 words.
_NOTIFICATION = {"StopCharging": "Terminate", "ReNegotiation": "ScheduleRenegotiation"}


class Failed20(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class ISO20SECCSettings:
    """What a -20 SECC offers (``SECCConfig.iso20``)."""
    services: tuple = SERVICES               # energy services offered (of the negotiated set)
    schedule_tuples: int = 3                 # scheduled mode: ScheduleTuples offered (1..3)
    schedule_tuple_ids: tuple = ()           # their ids (default 1..n; 1..255 allowed)
    service_renegotiation: bool = True
    pause_allowed: bool = True
    standby_allowed: bool = True
    # Dynamic BPT: discharge the EV at this power (W) instead of charging it, within the
    # EV's and the EVSE's discharge limits (the EVSE must be bidirectional).  0: charge.
    discharge_power: float = 0.0
    # TEST OPTION: the sequence timeout after a charge-loop response (None: the
    # standard's 0.5 s); slow test peers (a JVM codec on a loaded machine) need more.
    loop_sequence_timeout: Optional[float] = None
    # Header TimeStamp (Unix seconds) from the core's time; the cores read no clock, so
    # the driver passes a wall-clock mapping here when it has one.
    unix_time: Callable[[float], int] = field(default=lambda now: int(now))


@dataclass
class ISO20Context:
    """What a paused -20 session keeps for its resumption ([V2G20-1844]/[V2G20-1847]:
    authorization and service selection stay valid)."""
    service: int
    parameter_set: int
    control: int


class ISO20SECC:
    """The -20 part of one SECC session."""

    owns_messages = True            # its own message sets and payload types

    def __init__(self, host, schema: str):
        self.host = host
        self.schema = schema                  # negotiated: "iso20_dc" / "iso20_ac"
        self.settings: ISO20SECCSettings = getattr(host.config, "iso20", None) or ISO20SECCSettings()
        self.state = S.SESSION_SETUP
        self.service: Optional[int] = None
        self.parameter_set: Optional[int] = None
        self.control: Optional[int] = None    # 1 scheduled, 2 dynamic
        self.tuple_ids: tuple = ()
        self.selected_tuple: Optional[int] = None
        self.isolation_ok = False
        self.renegotiating = False
        self.loop_count = 0
        self.ev_max_current = 0.0
        self.ev_max_power = 0.0

    @property
    def evse(self):
        return self.host.evse

    def _offered_services(self) -> list[int]:
        ac = self.schema == "iso20_ac"
        return [s for s in self.settings.services
                if (s in (Service.AC, Service.AC_BPT)) == ac]

    @property
    def bpt(self) -> bool:
        return self.service in (Service.AC_BPT, Service.DC_BPT)

    # -- receive ------------------------------------------------------------------------
    def receive(self, payload: bytes, now: float, payload_type: int) -> list:
        host = self.host
        host.requests += 1
        schema = SESSION_PAYLOAD_TYPES.get(payload_type)
        if schema is None:
            return host._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X} in a -20 session")
        out, name, msg, _ = host._request(payload, now, schema)     # the cores' shared preamble
        if name is None:
            return out
        if schema_of(name) != schema:
            return out + host._end(now, False, f"{name} on payload type 0x{payload_type:04X}")
        try:        # values beyond the schema's facets never reach the handlers or the store
            exi.validate(msg)
        except exi.ValidationError as e:
            # The generic FAILED of responseCodeType: no requirement id names a code for a
            # request outside the schema; like every FAILED it ends the session (clause 8.6).
            return out + self._fail(name, "FAILED", f"{name} outside the schema: {e}", now)
        wrong = host._wrong_session(name, msg)
        if wrong:
            return out + self._fail(name, "FAILED_UnknownSession", wrong, now)
        if (self.state, name) not in SECC_TABLE:
            return out + self._fail(name, "FAILED_SequenceError",
                                    f"{name} not expected in state {self.state.name}", now)
        try:
            res_fields, new_state, events = getattr(self, f"_on_{name}")(msg, now)
        except Failed20 as f:
            return out + self._fail(name, f.code, f.reason, now)
        check_transition(SECC_TABLE, self.state, name, new_state)
        self.state = new_state
        out.append(self._respond(name, now, **res_fields))
        out += events
        if new_state is S.ENDED:
            paused = val(msg.ChargingSession) == "Pause"
            return out + host._end(now, True, "SessionStop (Pause)" if paused else "SessionStop (Terminate)",
                                   paused=paused)
        # [V2G20-441]/[V2G20-443]: the sequence timer restarts with every response; its
        # value depends on the message (0.5 s in the charge loop, Tables 216-218).
        limit = timers.secc_sequence_timeout(self.schema, name)
        if self.state is S.CHARGING and self.settings.loop_sequence_timeout is not None:
            limit = self.settings.loop_sequence_timeout
        host._deadline = now + min(limit, host.config.sequence_timeout)
        host.sequence_limit = min(limit, host.config.sequence_timeout)
        return out

    def _respond(self, req_name: str, now: float, code: str = "OK", **fields) -> Send:
        name = req_name[:-3] + "Res"
        fields = {**self._mandatory(name, now), **fields}
        msg = build(name, self.host.session_id or b"\x00" * 8, self.settings.unix_time(now),
                    ResponseCode=code, **fields)
        schema = schema_of(name)
        return Send(exi.encode(msg), schema, name, msg, payload_type_of(schema))

    def _fail(self, req_name: str, code: str, reason: str, now: float) -> list:
        log.warning("%s: %s -> %s: %s", self.host.name, req_name, code, reason)
        self.state = S.ENDED
        return [self._respond(req_name, now, code)] + self.host._end(now, False, reason, code=code)

    # -- mandatory content of each response (also for FAILED answers) ---------------------
    def _mandatory(self, name: str, now: float) -> dict:
        if name == "SessionSetupRes":
            return {"EVSEID": self.evse.evse_id()}
        if name == "AuthorizationSetupRes":
            return {"AuthorizationServices": ["EIM"], "CertificateInstallationService": False,
                    "EIM_ASResAuthorizationMode": CM.EIM_ASResAuthorizationModeType()}
        if name in ("AuthorizationRes", "ScheduleExchangeRes", "DC_CableCheckRes"):
            extra = {}
            if name == "ScheduleExchangeRes":       # the choice the session's control mode wants
                # (scheduled: at least one ScheduleTuple, also in a FAILED answer)
                extra = {"Scheduled_SEResControlMode": self._schedules(now)} \
                    if self.control == SCHEDULED else {"Dynamic_SEResControlMode": CM.Dynamic_SEResControlModeType()}
            return {"EVSEProcessing": "Finished", **extra}
        if name == "ServiceDiscoveryRes":
            return {"ServiceRenegotiationSupported": self.settings.service_renegotiation,
                    "EnergyTransferServiceList": CM.ServiceListType(Service=[
                        CM.ServiceType(ServiceID=s, FreeService=False) for s in self._offered_services()
                        or [Service.DC]])}
        if name == "ServiceDetailRes":
            return {"ServiceID": self.service or Service.DC,
                    "ServiceParameterList": self._parameter_list(self.service or Service.DC)}
        if name == "DC_ChargeParameterDiscoveryRes":
            return self._dc_cpd_res()
        if name in ("DC_PreChargeRes", "DC_WeldingDetectionRes"):
            return {"EVSEPresentVoltage": rn(DC, self.evse.present_voltage(now))}
        if name == "DC_ChargeLoopRes":
            return {"EVSEPresentCurrent": rn(DC, self.evse.present_current(now)),
                    "EVSEPresentVoltage": rn(DC, self.evse.present_voltage(now)),
                    "EVSEPowerLimitAchieved": False, "EVSECurrentLimitAchieved": False,
                    "EVSEVoltageLimitAchieved": False, **self._dc_loop_mode()}
        if name == "AC_ChargeParameterDiscoveryRes":
            return self._ac_cpd_res()
        if name == "AC_ChargeLoopRes":
            return self._ac_loop_mode(now)
        if name == "VehicleCheckOutRes":
            return {"EVSECheckOutStatus": "Completed"}
        if name == "CertificateInstallationRes":
            # This SECC installs no certificates under -20 (its sessions are EIM): the
            # request is refused, with placeholders where the schema wants content.
            return {"EVSEProcessing": "Finished", "CPSCertificateChain": CM.CertificateChainType(Certificate=b"\x00"),
                    "SignedInstallationData": CM.SignedInstallationDataType(
                        Id="id0", ContractCertificateChain=CM.ContractCertificateChainType(
                            Certificate=b"\x00", SubCertificates=CM.SubCertificatesType(Certificate=[b"\x00"])),
                        ECDHCurve="SECP521", DHPublicKey=bytes(133), SECP521_EncryptedPrivateKey=bytes(94)),
                    "RemainingContractCertificateChains": 0}
        return {}

    def _parameter_list(self, service: int):
        lim = self.evse.ac_limits()
        return CM.ServiceParameterListType(ParameterSet=[
            CM.ParameterSetType(ParameterSetID=sid, Parameter=[
                CM.ParameterType(Name=k, intValue=v) for k, v in params.items()])
            for sid, params in parameter_sets(service, lim.nominal_voltage)])

    def _status(self, mod, now: float):
        """EVSEStatus when the EVSE has something to say (-2 style names translated):
        Pause, ExitStandby, Terminate, ScheduleRenegotiation, ServiceRenegotiation or
        MeteringConfirmation (the controller's ``notification``)."""
        n = self.evse.notification(now) or "None"
        n = _NOTIFICATION.get(n, n)
        if n == "ServiceRenegotiation" and not self.settings.service_renegotiation:
            # ServiceDiscoveryRes said it is not supported ([V2G20-1931]): not asked for.
            log.warning("%s: EVSE asked for ServiceRenegotiation, which this SECC does not support",
                        self.host.name)
            return None
        return None if n == "None" else mod.EVSEStatusType(NotificationMaxDelay=0, EVSENotification=n)

    def _loop_extras(self, mod, req, now: float, fields: dict) -> None:
        """EVSEStatus and MeterInfo of a charge-loop response: MeterInfo when asked for,
        in the first response ([V2G20-1081]/[V2G20-1082]/[V2G20-1833]) and with a
        MeteringConfirmation notification, whose SignedMeteringData carries it back."""
        status = self._status(mod, now)
        if status is not None:
            fields["EVSEStatus"] = status
        notification = val(status.EVSENotification) if status is not None else None
        if req.MeterInfoRequested or self.loop_count == 1 or notification == "MeteringConfirmation":
            fields["MeterInfo"] = self._meter_info(mod, now)

    def _on_MeteringConfirmationReq(self, req, now):
        """[V2G20-1083]: the EV confirms a meter reading.  EIM: no signature to check
        (PnC: the header's Signature over SignedMeteringData, FAILED_MeteringSignatureNotValid)."""
        data = req.SignedMeteringData
        if data is None or data.MeterInfo is None or data.SessionID != self.host.session_id:
            raise Failed20("FAILED", "MeteringConfirmation without this session's SignedMeteringData")
        m = data.MeterInfo
        confirmed = getattr(self.evse, "metering_confirmed", None)
        if confirmed is not None:
            confirmed(now, m.MeterID, m.ChargedEnergyReadingWh, m.BPT_DischargedEnergyReadingWh)
        return {}, self.state, []

    # -- CommonMessages -------------------------------------------------------------------
    def _on_SessionSetupReq(self, req, now):
        host = self.host
        sid_in = req.Header.SessionID or b""
        resumed = host.config.store.resume(sid_in, self.schema) if any(sid_in) else None
        # [V2G20-2545]: only the same vehicle may resume.  The standard's example check
        # hashes the SessionID with the TLS vehicle certificate ([V2G20-2630]); we compare
        # the EVCCID (and the certificate digest when the driver gives us one).  A
        # mismatch gets a new session ([V2G20-2626]/[V2G20-2627]).
        if resumed is not None and (resumed.evcc_id != req.EVCCID or
                                    resumed.peer_cert_digest != host.peer_cert_digest):
            log.warning("%s: resume of %s refused: another vehicle", host.name, sid_in.hex())
            resumed = None
        if resumed is not None and isinstance(resumed.context, ISO20Context):
            host.session_id, code = sid_in, "OK_OldSessionJoined"
            ctx = resumed.context
            self.service, self.parameter_set, self.control = ctx.service, ctx.parameter_set, ctx.control
            nxt = S.CHARGE_PARAMETER_DISCOVERY
        else:
            # [V2G20-2621]/[V2G20-835]: >= 58 bits from a CSPRNG (session_id_factory).
            host.session_id, code = host.config.session_id_factory(), "OK_NewSessionEstablished"
            nxt = S.AUTHORIZATION_SETUP
        host.evcc_id = req.EVCCID
        return ({"code": code}, nxt,
                [SessionEstablished(host.session_id, code == "OK_OldSessionJoined", code)])

    def _on_AuthorizationSetupReq(self, req, now):
        # EIM only: no PnC service, no certificate installation (Plug & Charge is a
        # separate issue; the PnC_ASResAuthorizationMode with GenChallenge goes here).
        return {}, S.AUTHORIZATION, []

    def _on_AuthorizationReq(self, req, now):
        if val(req.SelectedAuthorizationService) != "EIM" or req.EIM_AReqAuthorizationMode is None:
            # The only service offered is EIM ([V2G20-...] unverified).
            return {"code": "WARNING_AuthorizationSelectionInvalid"}, S.AUTHORIZATION, []
        ok = self.evse.authorize(now)
        if ok is None:
            return {"EVSEProcessing": "Ongoing"}, S.AUTHORIZATION, []
        if not ok:
            # [V2G20-2219]/[V2G20-2230]: Finished + WARNING_EIMAuthorizationFailure; the EV
            # may ask again.
            return {"code": "WARNING_EIMAuthorizationFailure"}, S.AUTHORIZATION, []
        return {}, S.SERVICE_DISCOVERY, []

    def _on_ServiceDiscoveryReq(self, req, now):
        return {}, S.SERVICE_SELECTION, []

    def _on_ServiceDetailReq(self, req, now):
        if req.ServiceID not in self._offered_services():
            raise Failed20("FAILED_ServiceIDInvalid", f"ServiceDetail for service {req.ServiceID}")
        return ({"ServiceID": req.ServiceID, "ServiceParameterList": self._parameter_list(req.ServiceID)},
                S.SERVICE_SELECTION, [])

    def _on_ServiceSelectionReq(self, req, now):
        sel = req.SelectedEnergyTransferService
        if sel is None:
            raise Failed20("FAILED_NoEnergyTransferServiceSelected", "no energy transfer service")
        sets = dict(parameter_sets(sel.ServiceID)) if sel.ServiceID in self._offered_services() else {}
        if sel.ParameterSetID not in sets:
            raise Failed20("FAILED_ServiceSelectionInvalid",
                           f"service {sel.ServiceID} parameter set {sel.ParameterSetID} was not offered")
        if req.SelectedVASList is not None and req.SelectedVASList.SelectedService:
            raise Failed20("FAILED_ServiceSelectionInvalid", "value-added services were not offered")
        self.service, self.parameter_set = sel.ServiceID, sel.ParameterSetID
        self.control = sets[sel.ParameterSetID]["ControlMode"]
        return {}, S.CHARGE_PARAMETER_DISCOVERY, []

    def _on_ScheduleExchangeReq(self, req, now):
        dynamic = req.Dynamic_SEReqControlMode is not None
        if dynamic != (self.control == DYNAMIC):
            raise Failed20("FAILED_WrongChargeParameter",
                           f"{'dynamic' if dynamic else 'scheduled'} ScheduleExchangeReq, "
                           f"parameter set {self.parameter_set} is {'dynamic' if self.control == DYNAMIC else 'scheduled'}")
        if not 12 <= (req.MaximumSupportingPoints or 0) <= 1024:
            raise Failed20("FAILED_WrongChargeParameter", f"MaximumSupportingPoints {req.MaximumSupportingPoints}")
        if not self.evse.charge_parameters_ready(now):
            mode = {"Dynamic_SEResControlMode": CM.Dynamic_SEResControlModeType()} if dynamic else \
                {"Scheduled_SEResControlMode": self._schedules(now)}
            return {"EVSEProcessing": "Ongoing", **mode}, S.SCHEDULE_EXCHANGE, []
        dc = self.schema == "iso20_dc"
        nxt = S.CABLE_CHECK if dc and not self.isolation_ok else S.POWER_DELIVERY
        if dynamic:
            return {"Dynamic_SEResControlMode": CM.Dynamic_SEResControlModeType(
                DepartureTime=req.Dynamic_SEReqControlMode.DepartureTime)}, nxt, []
        return {"Scheduled_SEResControlMode": self._schedules(now)}, nxt, []

    def _schedules(self, now):
        """Up to three ScheduleTuples (ids 1..n): full power, 2/3 and 1/3 of it, each with
        a one-level price schedule ([V2G20-2176] wants a price schedule)."""
        pmax = max((p.max_power for p in self.evse.schedule()), default=self.evse.dc_limits().max_power)
        ids = tuple(self.settings.schedule_tuple_ids)[:3] or \
            tuple(range(1, max(1, min(3, self.settings.schedule_tuples)) + 1))
        n = len(ids)
        self.tuple_ids = ids
        t0 = self.settings.unix_time(now)
        tuples = []
        for k, tid in enumerate(self.tuple_ids):
            power = pmax * (n - k) / n
            entry = CM.PowerScheduleEntryType(Duration=86400, Power=rn(CM, power))
            sched = CM.ChargingScheduleType(
                PowerSchedule=CM.PowerScheduleType(TimeAnchor=t0, PowerScheduleEntries=CM.PowerScheduleEntryListType(
                    PowerScheduleEntry=[entry])),
                PriceLevelSchedule=CM.PriceLevelScheduleType(
                    TimeAnchor=t0, PriceScheduleID=tid, NumberOfPriceLevels=1,
                    PriceLevelScheduleEntries=CM.PriceLevelScheduleEntryListType(PriceLevelScheduleEntry=[
                        CM.PriceLevelScheduleEntryType(Duration=86400, PriceLevel=0)])))
            discharge = None
            if self.bpt:        # a price schedule here too (the iso15118 package requires it)
                discharge = CM.ChargingScheduleType(PowerSchedule=CM.PowerScheduleType(
                    TimeAnchor=t0, PowerScheduleEntries=CM.PowerScheduleEntryListType(PowerScheduleEntry=[
                        CM.PowerScheduleEntryType(Duration=86400, Power=rn(CM, -power))])),
                    PriceLevelSchedule=sched.PriceLevelSchedule)
            tuples.append(CM.ScheduleTupleType(ScheduleTupleID=tid, ChargingSchedule=sched,
                                               DischargingSchedule=discharge))
        self._tuple_power = {tid: pmax * (n - k) / n for k, tid in enumerate(self.tuple_ids)}
        return CM.Scheduled_SEResControlModeType(ScheduleTuple=tuples)

    def _on_PowerDeliveryReq(self, req, now):
        progress = val(req.ChargeProgress)
        dc = self.schema == "iso20_dc"
        if val(req.EVProcessing) == "Ongoing" and self.state in (S.PRE_CHARGE, S.POWER_DELIVERY):
            return {}, self.state, []           # the EV repeats it once it is ready
        if progress == "Start":
            if self.state is S.CHARGING:
                raise Failed20("FAILED_SequenceError", "PowerDelivery Start while charging")
            if self.state is S.STANDBY:         # ExitStandby: power on again
                self.evse.set_output(now, self.evse.present_voltage(now), 0.0, True, ac=not dc)
                return {}, S.CHARGING, [PowerDeliveryChanged(progress)]
            if self.state is S.PRE_CHARGE and dc and not self.isolation_ok:
                raise Failed20("FAILED_SequenceError", "PowerDelivery Start without a valid CableCheck")
            self._check_power_profile(req.EVPowerProfile)
            if dc:
                self.evse.set_output(now, self.evse.present_voltage(now), 0.0, True)
            else:
                lim = self.evse.ac_limits()
                self.evse.set_output(now, lim.nominal_voltage, lim.max_current, True, ac=True)
            self.renegotiating = False
            nxt = S.CHARGING
        elif progress == "Stop":
            self.evse.set_output(now, 0.0, 0.0, False, ac=not dc)
            nxt = S.POWER_STOPPED
        elif progress == "Standby":
            if self.state is not S.CHARGING:
                raise Failed20("FAILED_SequenceError", "PowerDelivery Standby outside the charge loop")
            if not self.settings.standby_allowed:
                return {"code": "WARNING_StandbyNotAllowed"}, S.CHARGING, [PowerDeliveryChanged(progress)]
            self.evse.set_output(now, self.evse.present_voltage(now), 0.0, True, ac=not dc)
            nxt = S.STANDBY
        else:           # ScheduleRenegotiation -> ScheduleExchange (research 1.6)
            if self.state is not S.CHARGING:
                raise Failed20("FAILED_SequenceError", "ScheduleRenegotiation outside the charge loop")
            self.renegotiating = True
            nxt = S.SCHEDULE_EXCHANGE
        return {}, nxt, [PowerDeliveryChanged(progress)]

    def _check_power_profile(self, profile) -> None:
        if profile is None:
            if self.control != DYNAMIC:
                self.selected_tuple = self.tuple_ids[0] if self.tuple_ids else None
            return
        sched = profile.Scheduled_EVPPTControlMode
        if self.control == DYNAMIC:
            if sched is not None:
                raise Failed20("FAILED_EVPowerProfileInvalid", "scheduled power profile in dynamic mode")
            return
        if sched is None:
            raise Failed20("FAILED_EVPowerProfileInvalid", "dynamic power profile in scheduled mode")
        if sched.SelectedScheduleTupleID not in self.tuple_ids:
            raise Failed20("FAILED_ScheduleSelectionInvalid",
                           f"ScheduleTupleID {sched.SelectedScheduleTupleID} was not offered")
        pmax = self._tuple_power[sched.SelectedScheduleTupleID]
        entries = profile.EVPowerProfileEntries.EVPowerProfileEntry if profile.EVPowerProfileEntries else []
        for e in entries:
            if fr(e.Power) > pmax * 1.0001:
                raise Failed20("FAILED_EVPowerProfileInvalid",
                               f"power profile asks {fr(e.Power):.0f} W, schedule allows {pmax:.0f} W")
        self.selected_tuple = sched.SelectedScheduleTupleID

    def _on_SessionStopReq(self, req, now):
        what = val(req.ChargingSession)
        host = self.host
        if what == "Pause":
            if not self.settings.pause_allowed:
                raise Failed20("FAILED_PauseNotAllowed", "pause not allowed")
            host.config.store.pause(PausedSession(
                host.session_id, self.schema, host.evcc_id, now,
                context=ISO20Context(self.service, self.parameter_set, self.control),
                peer_cert_digest=host.peer_cert_digest))
            return {}, S.ENDED, []
        if what == "ServiceRenegotiation":
            if not self.settings.service_renegotiation:
                raise Failed20("FAILED_NoServiceRenegotiationSupported", "service renegotiation not supported")
            if self.state is not S.POWER_STOPPED:
                raise Failed20("FAILED_SequenceError", "ServiceRenegotiation before PowerDelivery(Stop)")
            self.service = self.parameter_set = self.control = None
            self.isolation_ok = False          # the output was off: CableCheck again
            return {}, S.SERVICE_DISCOVERY, []
        return {}, S.ENDED, []

    # -- DC ---------------------------------------------------------------------------------
    def _dc_cpd_res(self) -> dict:
        lim = self.evse.dc_limits()
        common = dict(EVSEMaximumChargePower=rn(DC, lim.max_power), EVSEMinimumChargePower=rn(DC, 0),
                      EVSEMaximumChargeCurrent=rn(DC, lim.max_current),
                      EVSEMinimumChargeCurrent=rn(DC, lim.min_current),
                      EVSEMaximumVoltage=rn(DC, lim.max_voltage), EVSEMinimumVoltage=rn(DC, lim.min_voltage))
        if self.bpt:
            d = self._discharge_limits()
            return {"BPT_DC_CPDResEnergyTransferMode": DC.BPT_DC_CPDResEnergyTransferModeType(
                **common, EVSEMaximumDischargePower=rn(DC, d[0]), EVSEMinimumDischargePower=rn(DC, 0),
                EVSEMaximumDischargeCurrent=rn(DC, d[1]), EVSEMinimumDischargeCurrent=rn(DC, 0))}
        return {"DC_CPDResEnergyTransferMode": DC.DC_CPDResEnergyTransferModeType(**common)}

    def _discharge_limits(self) -> tuple:
        return self.evse.discharge_limits()

    def _on_DC_ChargeParameterDiscoveryReq(self, req, now):
        if self.service not in (Service.DC, Service.DC_BPT):
            raise Failed20("FAILED_WrongChargeParameter", f"DC_ChargeParameterDiscovery for service {self.service}")
        mode = req.BPT_DC_CPDReqEnergyTransferMode if self.bpt else req.DC_CPDReqEnergyTransferMode
        if mode is None:
            raise Failed20("FAILED_WrongChargeParameter",
                           f"{'BPT_' if self.bpt else ''}DC_CPDReqEnergyTransferMode missing")
        self.ev_max_current = fr(mode.EVMaximumChargeCurrent)
        self.ev_max_power = fr(mode.EVMaximumChargePower)
        if fr(mode.EVMaximumVoltage) < self.evse.dc_limits().min_voltage:
            raise Failed20("FAILED_WrongChargeParameter", "EV maximum voltage below the EVSE minimum")
        return {}, S.SCHEDULE_EXCHANGE, []

    def _on_DC_CableCheckReq(self, req, now):
        result = self.evse.isolation_check(now)
        if result is None:
            return {"EVSEProcessing": "Ongoing"}, S.CABLE_CHECK, []
        if result not in ("Valid", "Warning"):
            raise Failed20("FAILED", f"isolation check: {result}")
        self.isolation_ok = True
        return {}, S.PRE_CHARGE, []

    def _on_DC_PreChargeReq(self, req, now):
        # Precharge current limited to 2 A, as in -2 (id unverified for -20).
        self.evse.set_output(now, fr(req.EVTargetVoltage), 2.0, False)
        return {"EVSEPresentVoltage": rn(DC, self.evse.present_voltage(now))}, S.PRE_CHARGE, []

    def _dc_loop_mode(self, flags_only: bool = False) -> dict:
        lim = self.evse.dc_limits()
        common = dict(EVSEMaximumChargePower=rn(DC, lim.max_power), EVSEMinimumChargePower=rn(DC, 0),
                      EVSEMaximumChargeCurrent=rn(DC, lim.max_current), EVSEMaximumVoltage=rn(DC, lim.max_voltage))
        if self.control == DYNAMIC:
            if self.bpt:
                d = self._discharge_limits()
                return {"BPT_Dynamic_DC_CLResControlMode": DC.BPT_Dynamic_DC_CLResControlModeType(
                    **common, EVSEMaximumDischargePower=rn(DC, d[0]), EVSEMinimumDischargePower=rn(DC, 0),
                    EVSEMaximumDischargeCurrent=rn(DC, d[1]), EVSEMinimumVoltage=rn(DC, lim.min_voltage))}
            return {"Dynamic_DC_CLResControlMode": DC.Dynamic_DC_CLResControlModeType(**common)}
        if self.bpt:
            return {"BPT_Scheduled_DC_CLResControlMode": DC.BPT_Scheduled_DC_CLResControlModeType()}
        return {"Scheduled_DC_CLResControlMode": DC.Scheduled_DC_CLResControlModeType()}

    def _on_DC_ChargeLoopReq(self, req, now):
        lim = self.evse.dc_limits()
        v_ev = fr(req.EVPresentVoltage)
        if self.control == DYNAMIC:
            mode = req.BPT_Dynamic_DC_CLReqControlMode if self.bpt else req.Dynamic_DC_CLReqControlMode
            if mode is None:
                raise Failed20("FAILED_WrongChargeParameter", "no dynamic control mode in DC_ChargeLoopReq")
            # Dynamic: the SECC steers the power within the EV's and its own limits
            # ([V2G20-2188]: the EV's values are limits for the SECC to stay within).
            v = min(v_ev, lim.max_voltage)
            p = min(fr(mode.EVMaximumChargePower), lim.max_power)
            if fr(mode.EVTargetEnergyRequest) <= 0:
                p = min(p, fr(mode.EVMinimumChargePower))
            i = min(fr(mode.EVMaximumChargeCurrent), lim.max_current, p / v if v > 1 else 0.0)
            if self.bpt and self.settings.discharge_power > 0 and self.evse.bidirectional:
                dp, di = self._discharge_limits()
                p_dis = min(self.settings.discharge_power, fr(mode.EVMaximumDischargePower), dp)
                i = -min(fr(mode.EVMaximumDischargeCurrent), di, p_dis / v if v > 1 else 0.0)
        else:
            mode = req.BPT_Scheduled_DC_CLReqControlMode if self.bpt else req.Scheduled_DC_CLReqControlMode
            if mode is None:
                raise Failed20("FAILED_WrongChargeParameter", "no scheduled control mode in DC_ChargeLoopReq")
            v, i = fr(mode.EVTargetVoltage), fr(mode.EVTargetCurrent)
            pmax = getattr(self, "_tuple_power", {}).get(self.selected_tuple, lim.max_power)
            if v > 1:
                i = min(i, pmax / v)
        self.evse.set_output(now, v, i, True)
        self.loop_count += 1
        fields = {"EVSEPresentCurrent": rn(DC, self.evse.present_current(now)),
                  "EVSEPresentVoltage": rn(DC, self.evse.present_voltage(now)),
                  "EVSECurrentLimitAchieved": i >= lim.max_current,
                  "EVSEVoltageLimitAchieved": v >= lim.max_voltage,
                  "EVSEPowerLimitAchieved": v * i >= lim.max_power}
        self._loop_extras(DC, req, now, fields)
        return fields, self.state, []

    def _meter_info(self, mod, now):
        m = self.evse.meter(now)
        discharged = getattr(m, "discharged_wh", None) if self.bpt else None
        return mod.MeterInfoType(MeterID=m.meter_id[:32], ChargedEnergyReadingWh=max(0, int(m.energy_wh)),
                                 BPT_DischargedEnergyReadingWh=None if discharged is None else max(0, int(discharged)))

    def _on_DC_WeldingDetectionReq(self, req, now):
        return {}, S.POWER_STOPPED, []

    # -- AC (item 2: parameter discovery and loop) -------------------------------------------
    def _ac_cpd_res(self) -> dict:
        lim = self.evse.ac_limits()
        p = lim.nominal_voltage * lim.max_current * 3
        common = dict(EVSEMaximumChargePower=rn(AC, p), EVSEMinimumChargePower=rn(AC, 0),
                      EVSENominalFrequency=rn(AC, 50))
        if self.bpt:
            return {"BPT_AC_CPDResEnergyTransferMode": AC.BPT_AC_CPDResEnergyTransferModeType(
                **common, EVSEMaximumDischargePower=rn(AC, p), EVSEMinimumDischargePower=rn(AC, 0))}
        return {"AC_CPDResEnergyTransferMode": AC.AC_CPDResEnergyTransferModeType(**common)}

    def _ac_loop_mode(self, now, ev_max_power: Optional[float] = None) -> dict:
        """The control-mode part of AC_ChargeLoopRes.  The EVSE's target active power
        (dynamic; mandatory there) is split over three phases (L1 in the base field)."""
        lim = self.evse.ac_limits()
        p = lim.nominal_voltage * lim.max_current * 3
        if ev_max_power is not None:
            p = min(p, ev_max_power)
        if self.control == DYNAMIC:
            phases = {"EVSETargetActivePower": rn(AC, p / 3), "EVSETargetActivePower_L2": rn(AC, p / 3),
                      "EVSETargetActivePower_L3": rn(AC, p / 3)}
            if self.bpt:
                return {"BPT_Dynamic_AC_CLResControlMode": AC.BPT_Dynamic_AC_CLResControlModeType(**phases)}
            return {"Dynamic_AC_CLResControlMode": AC.Dynamic_AC_CLResControlModeType(**phases)}
        if self.bpt:
            return {"BPT_Scheduled_AC_CLResControlMode": AC.BPT_Scheduled_AC_CLResControlModeType()}
        return {"Scheduled_AC_CLResControlMode": AC.Scheduled_AC_CLResControlModeType()}

    def _on_AC_ChargeParameterDiscoveryReq(self, req, now):
        if self.service not in (Service.AC, Service.AC_BPT):
            raise Failed20("FAILED_WrongChargeParameter", f"AC_ChargeParameterDiscovery for service {self.service}")
        mode = req.BPT_AC_CPDReqEnergyTransferMode if self.bpt else req.AC_CPDReqEnergyTransferMode
        if mode is None:
            raise Failed20("FAILED_WrongChargeParameter", "AC_CPDReqEnergyTransferMode missing")
        return {}, S.SCHEDULE_EXCHANGE, []

    def _on_AC_ChargeLoopReq(self, req, now):
        mode = (req.Dynamic_AC_CLReqControlMode or req.BPT_Dynamic_AC_CLReqControlMode
                or req.Scheduled_AC_CLReqControlMode or req.BPT_Scheduled_AC_CLReqControlMode)
        if mode is None:
            raise Failed20("FAILED_WrongChargeParameter", "no control mode in AC_ChargeLoopReq")
        if (self.control == DYNAMIC) != ("Dynamic" in type(mode).__name__):
            raise Failed20("FAILED_WrongChargeParameter", f"{type(mode).__name__[:-4]} in this session")
        ev_max = fr(mode.EVMaximumChargePower) * (3 if mode.EVMaximumChargePower_L2 is not None else 1) \
            if mode.EVMaximumChargePower is not None else None
        lim = self.evse.ac_limits()
        p = min(lim.nominal_voltage * lim.max_current * 3, ev_max if ev_max is not None else float("inf"))
        if self.bpt and self.control == DYNAMIC and self.settings.discharge_power > 0 \
                and self.evse.bidirectional:
            # Dynamic AC_BPT: the SECC steers into discharge, a negative target active
            # power within the EV's and its own discharge limits ([V2G20-2188]).
            ev_dis = fr(mode.EVMaximumDischargePower) * (3 if mode.EVMaximumDischargePower_L2 is not None else 1)
            p = -min(self.settings.discharge_power, ev_dis, lim.nominal_voltage * lim.max_current * 3)
        self.evse.set_output(now, lim.nominal_voltage, p / 3 / lim.nominal_voltage, True, ac=True)
        self.loop_count += 1
        fields = self._ac_loop_mode(now, p)
        self._loop_extras(AC, req, now, fields)
        return fields, self.state, []
