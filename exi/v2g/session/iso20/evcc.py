"""ISO 15118-20 EVCC handlers (EIM), run by :class:`~exi.v2g.session.evcc.EVCCSession`
once the SECC has chosen a -20 namespace in SupportedAppProtocol.

The host core keeps the timers dict, the delayed-repeat mechanism (``loop_interval``),
``_end`` and the EV controller; this module holds the -20 table, the requests and the
reactions to the responses.  Any FAILED response code ends the session (ISO 15118-20
clause 8.6: FAILED is fatal for both sides).
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
from .tables import DYNAMIC, EVCC_STATE_AFTER, EVCC_TABLE, SCHEDULED, SERVICE_IDS, EVCC20State, Service

__all__ = ["ISO20EVCCSettings", "ISO20EVCC"]

log = logging.getLogger("exi.v2g.session.iso20.evcc")
E = EVCC20State


@dataclass
class ISO20EVCCSettings:
    """What a -20 EV does (``EVCCConfig.iso20``)."""
    eim_retries: int = 0                   # AuthorizationReq again after WARNING_EIMAuthorizationFailure
    maximum_supporting_points: int = 24    # ScheduleExchangeReq (12..1024)
    # EV-initiated events, counted in charge-loop responses: ScheduleRenegotiation,
    # Standby (for ``standby_loops`` responses), ServiceRenegotiation after the stop.
    schedule_renegotiation_after: Optional[int] = None
    standby_after: Optional[int] = None
    standby_loops: int = 3
    service_renegotiation: bool = False
    unix_time: Callable[[float], int] = field(default=lambda now: int(now))


class ISO20EVCC:
    """The -20 part of one EVCC session."""

    owns_messages = True            # its own message sets and payload types

    def __init__(self, host, schema: str):
        self.host = host
        self.schema = schema
        self.settings: ISO20EVCCSettings = getattr(host.config, "iso20", None) or ISO20EVCCSettings()
        mode = host.config.mode
        self.dc = schema == "iso20_dc"
        if mode not in SERVICE_IDS or mode.startswith("dc") != self.dc:
            mode = "dc" if self.dc else "ac"
        self.service = SERVICE_IDS[mode]
        self.bpt = self.service in (Service.AC_BPT, Service.DC_BPT)
        self.control = DYNAMIC if host.config.control == "dynamic" else SCHEDULED
        self.state = E.SESSION_SETUP
        self.parameter_set: Optional[int] = None
        self.tuple_id: Optional[int] = None
        self.pmax: Optional[float] = None
        self.precharged = False
        self.progress: Optional[str] = None
        self.loops = 0
        self.auth_attempts = 0
        self.welding = 0
        self.failure: Optional[str] = None        # set when the EV stops because of the SECC
        self.stop_mode = "Pause" if host.config.stop == "pause" else "Terminate"
        self.renegotiated_schedule = False
        self.renegotiated_service = False
        self.standby_left: Optional[int] = None
        self.last_stop: Optional[str] = None
        self.ac_power = 0.0
        # EVSENotification ServiceRenegotiation: stop power, then SessionStop(ServiceRenegotiation)
        self.service_renegotiation_asked = False
        # EVSENotification MeteringConfirmation: confirm the next MeterInfo the SECC sends
        self.confirm_metering = False
        self.metering_confirmations = 0

    @property
    def ev(self):
        return self.host.ev

    def expected(self) -> Optional[str]:
        return self.state.value if self.state is not E.DONE else None

    # -- sending --------------------------------------------------------------------------
    def start(self, now: float) -> list:
        evcc_id = self.ev.evcc_id
        if isinstance(evcc_id, bytes):
            evcc_id = evcc_id.hex().upper()
        return self.send("SessionSetupReq", {"EVCCID": evcc_id}, now)

    def send(self, req: str, fields: dict, now: float) -> list:
        host = self.host
        new = EVCC_STATE_AFTER[req]
        self.state = new
        host._last_request = req
        if req == "SessionStopReq":
            self.last_stop = fields.get("ChargingSession")
        msg = build(req, host.session_id, self.settings.unix_time(now), **fields)
        schema = schema_of(req)
        timeout = (host.config.msg_timeout or timers.evcc_msg_timeout)(schema, req)
        host._timers.pop("late", None)
        host._arm("msg", now + timeout, f"no response to {req} within {timeout:g} s", timeout)
        c = host.config
        if req == "DC_CableCheckReq" and "cable_check" not in host._timers:
            host._arm("cable_check", now + c.cable_check_timeout, "CableCheck not finished", c.cable_check_timeout)
        elif req == "DC_PreChargeReq" and "pre_charge" not in host._timers:
            host._arm("pre_charge", now + c.pre_charge_timeout, "PreCharge did not reach the battery voltage",
                      c.pre_charge_timeout)
        return [Send(exi.encode(msg), schema, req, msg, payload_type_of(schema))]

    # -- receiving ------------------------------------------------------------------------
    def receive(self, payload: bytes, now: float, payload_type: int) -> list:
        host = self.host
        schema = SESSION_PAYLOAD_TYPES.get(payload_type)
        if schema is None:
            return host._end(now, False, f"unexpected V2GTP payload type 0x{payload_type:04X} in a -20 session")
        out, name, msg, _ = host._response(payload, now, schema)    # the cores' shared preamble
        if name is None:
            return out
        try:        # a missing ResponseCode or a value beyond the schema stops here
            exi.validate(msg)
        except exi.ValidationError as e:
            return out + host._end(now, False, f"{name} from the SECC outside the schema: {e}")
        expected = self.expected()
        if host._pending is not None or name != expected or schema_of(name) != schema:
            return out + host._end(now, False, f"unexpected {name} on 0x{payload_type:04X} (waiting for "
                                               f"{expected if host._pending is None else 'nothing'})")
        refused = host._accept(name, msg, msg, now, self.state is not E.SESSION_SETUP)
        if refused is not None:
            return out + refused
        step = getattr(self, f"_on_{name}")(msg, now, out)
        if host.result is not None or step is None:
            return out
        req, fields, repeat = step
        check_transition(EVCC_TABLE, self.state, name, EVCC_STATE_AFTER[req])
        if repeat and host.config.loop_interval > 0:
            self.state = EVCC_STATE_AFTER[req]
            host._pending = (req, lambda now, f=fields: f(now) if callable(f) else f)
            host._timers["send"] = (now + host.config.loop_interval, "")
            return out
        return out + self.send(req, fields(now) if callable(fields) else fields, now)

    def _ongoing(self, processing, now, what) -> bool:
        return self.host._ongoing(processing, now, what)

    def _stop(self, reason: Optional[str] = None):
        """SessionStop(Terminate) before the charge loop; ``reason``: why it failed."""
        if reason:
            self.failure = reason
        return "SessionStopReq", {"ChargingSession": "Terminate"}, False

    # -- CommonMessages ---------------------------------------------------------------------
    def _on_SessionSetupRes(self, res, now, out):
        host = self.host
        host._timers.pop("setup", None)
        host.session_id = res.Header.SessionID
        code = val(res.ResponseCode)
        resumed = code == "OK_OldSessionJoined"
        out.append(SessionEstablished(host.session_id, resumed, code))
        if resumed:
            # [V2G20-1032]: a resumed session goes on at ChargeParameterDiscovery with the
            # services selected before the pause.
            return self._cpd()
        return "AuthorizationSetupReq", {}, False

    def _on_AuthorizationSetupRes(self, res, now, out):
        if "EIM" not in [val(s) for s in (res.AuthorizationServices or [])]:
            return self._stop("the SECC does not offer EIM")
        return "AuthorizationReq", self._auth_req(), False

    def _auth_req(self) -> dict:
        return {"SelectedAuthorizationService": "EIM",
                "EIM_AReqAuthorizationMode": CM.EIM_AReqAuthorizationModeType()}

    def _on_AuthorizationRes(self, res, now, out):
        if val(res.ResponseCode) == "WARNING_EIMAuthorizationFailure":
            self.auth_attempts += 1
            if self.auth_attempts > self.settings.eim_retries:
                self.host._timers.pop("ongoing", None)
                return self._stop("authorization refused (WARNING_EIMAuthorizationFailure)")
            return "AuthorizationReq", self._auth_req(), True
        if self._ongoing(res.EVSEProcessing, now, "Authorization"):
            return "AuthorizationReq", self._auth_req(), True
        return "ServiceDiscoveryReq", {}, False

    def _on_ServiceDiscoveryRes(self, res, now, out):
        offered = [s.ServiceID for s in (res.EnergyTransferServiceList.Service or [])]
        if self.service not in offered:
            return self._stop(f"service {self.service.name} not offered (SECC offers {offered})")
        return "ServiceDetailReq", {"ServiceID": int(self.service)}, False

    def _on_ServiceDetailRes(self, res, now, out):
        for ps in (res.ServiceParameterList.ParameterSet or []):
            params = {p.Name: p.intValue for p in (ps.Parameter or [])}
            if params.get("ControlMode") == self.control:
                self.parameter_set = ps.ParameterSetID
                break
        else:
            return self._stop(f"no parameter set with ControlMode {self.control} for {self.service.name}")
        return "ServiceSelectionReq", {"SelectedEnergyTransferService": CM.SelectedServiceType(
            ServiceID=int(self.service), ParameterSetID=self.parameter_set)}, False

    def _on_ServiceSelectionRes(self, res, now, out):
        return self._cpd()

    def _cpd(self):
        ev = self.ev
        if self.dc:
            lim = ev.dc_limits()
            common = dict(EVMaximumChargePower=rn(DC, lim.max_power), EVMinimumChargePower=rn(DC, 0),
                          EVMaximumChargeCurrent=rn(DC, lim.max_current), EVMinimumChargeCurrent=rn(DC, 0),
                          EVMaximumVoltage=rn(DC, lim.max_voltage), EVMinimumVoltage=rn(DC, lim.min_voltage or 200))
            if self.bpt:
                dp, di = self._discharge_limits()
                return "DC_ChargeParameterDiscoveryReq", {"BPT_DC_CPDReqEnergyTransferMode":
                    DC.BPT_DC_CPDReqEnergyTransferModeType(
                        **common, EVMaximumDischargePower=rn(DC, dp), EVMinimumDischargePower=rn(DC, 0),
                        EVMaximumDischargeCurrent=rn(DC, di), EVMinimumDischargeCurrent=rn(DC, 0))}, False
            return "DC_ChargeParameterDiscoveryReq", {"DC_CPDReqEnergyTransferMode":
                DC.DC_CPDReqEnergyTransferModeType(**common)}, False
        common = dict(EVMaximumChargePower=rn(AC, self._ac_max_power()), EVMinimumChargePower=rn(AC, 0))
        if self.bpt:
            return "AC_ChargeParameterDiscoveryReq", {"BPT_AC_CPDReqEnergyTransferMode":
                AC.BPT_AC_CPDReqEnergyTransferModeType(
                    **common, EVMaximumDischargePower=rn(AC, self._ac_discharge_power()),
                    EVMinimumDischargePower=rn(AC, 0))}, False
        return "AC_ChargeParameterDiscoveryReq", {"AC_CPDReqEnergyTransferMode":
            AC.AC_CPDReqEnergyTransferModeType(**common)}, False

    def _discharge_limits(self) -> tuple:
        return self.ev.discharge_limits()

    def _energy(self) -> tuple:
        """(target, maximum, minimum) energy request in Wh from the battery state."""
        ev = self.ev
        cap = ev.energy_capacity()
        soc = ev.soc()
        target = max(0.0, cap * (getattr(ev, "target_soc", 90) - soc) / 100)
        return target, max(0.0, cap * (100 - soc) / 100), 0.0

    def _departure(self) -> int:
        d = self.ev.departure_time()
        return int(d) if d is not None else 4 * 3600

    def _schedule_exchange(self):
        if self.control == DYNAMIC:
            t, mx, mn = self._energy()
            mode = {"Dynamic_SEReqControlMode": CM.Dynamic_SEReqControlModeType(
                DepartureTime=self._departure(), EVTargetEnergyRequest=rn(CM, t),
                EVMaximumEnergyRequest=rn(CM, mx), EVMinimumEnergyRequest=rn(CM, mn))}
        else:
            mode = {"Scheduled_SEReqControlMode": CM.Scheduled_SEReqControlModeType()}
        return "ScheduleExchangeReq", {"MaximumSupportingPoints": self.settings.maximum_supporting_points,
                                       **mode}, False

    def _on_DC_ChargeParameterDiscoveryRes(self, res, now, out):
        return self._schedule_exchange()

    _on_AC_ChargeParameterDiscoveryRes = _on_DC_ChargeParameterDiscoveryRes

    def _on_ScheduleExchangeRes(self, res, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ScheduleExchange"):
            req, fields, _ = self._schedule_exchange()
            return req, fields, True
        if self.control == SCHEDULED:
            mode = res.Scheduled_SEResControlMode
            if mode is None or not mode.ScheduleTuple:
                return self._stop("scheduled ScheduleExchangeRes without ScheduleTuple")
            # The EV picks the tuple with the most power at the start.
            best = max(mode.ScheduleTuple, key=lambda t: fr(
                t.ChargingSchedule.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry[0].Power))
            self.tuple_id = best.ScheduleTupleID
            self.pmax = fr(best.ChargingSchedule.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry[0].Power)
        if self.dc and not self.precharged:
            return "DC_CableCheckReq", {}, False
        return self._power_delivery("Start")

    def _power_delivery(self, progress: str):
        self.progress = progress
        fields: dict = {"EVProcessing": "Finished", "ChargeProgress": progress}
        if progress == "Start":
            # The profile is optional in the standard; the iso15118 package requires it
            # with Start, so it is always sent: one entry at the power the EV plans.
            lim = self.ev.dc_limits() if self.dc else None
            ev_max = lim.max_power if lim else self._ac_max_power()
            if self.control == SCHEDULED:
                # The schedule's power, within what this EV can take (or give back, BPT): a
                # RationalNumber's exponent reaches 10^127, which no profile entry can echo.
                power = max(-ev_max if self.bpt else 0.0, min(self.pmax or 0.0, ev_max))
                mode = {"Scheduled_EVPPTControlMode": CM.Scheduled_EVPPTControlModeType(
                    # PowerToleranceAcceptance: optional in the published XSD, mandatory
                    # for the iso15118 package (draft schema).
                    SelectedScheduleTupleID=self.tuple_id, PowerToleranceAcceptance="PowerToleranceConfirmed")}
            else:
                power = ev_max
                mode = {"Dynamic_EVPPTControlMode": CM.Dynamic_EVPPTControlModeType()}
            fields["EVPowerProfile"] = CM.EVPowerProfileType(
                TimeAnchor=0, **mode, EVPowerProfileEntries=CM.EVPowerProfileEntryListType(EVPowerProfileEntry=[
                    CM.PowerScheduleEntryType(Duration=86400, Power=rn(CM, power))]))
            if self.bpt:
                fields["BPT_ChannelSelection"] = "Charge"
        return "PowerDeliveryReq", fields, False

    def _on_DC_CableCheckRes(self, res, now, out):
        if self._ongoing(res.EVSEProcessing, now, "CableCheck"):
            return "DC_CableCheckReq", {}, True
        self.host._timers.pop("cable_check", None)
        return "DC_PreChargeReq", (lambda now: self._precharge_fields()), False

    def _precharge_fields(self) -> dict:
        v = self.ev.battery_voltage()
        return {"EVProcessing": "Ongoing", "EVPresentVoltage": rn(DC, v), "EVTargetVoltage": rn(DC, v)}

    def _on_DC_PreChargeRes(self, res, now, out):
        v = fr(res.EVSEPresentVoltage)
        if abs(v - self.ev.battery_voltage()) <= self.host.config.precharge_tolerance:
            self.host._timers.pop("pre_charge", None)
            self.precharged = True
            return self._power_delivery("Start")
        return "DC_PreChargeReq", lambda now: self._precharge_fields(), True

    def _on_PowerDeliveryRes(self, res, now, out):
        out.append(PowerDeliveryChanged(self.progress))
        if self.progress == "Start":
            self.standby_left = None
            return self._loop_req(now)
        if self.progress == "Standby":
            if val(res.ResponseCode) == "WARNING_StandbyNotAllowed":
                self.progress = "Start"
                return self._loop_req(now)
            self.standby_left = self.settings.standby_loops
            return self._loop_req(now)
        if self.progress == "ScheduleRenegotiation":
            return self._schedule_exchange()
        # Stop
        if self.dc and self.host.config.max_welding_requests > 0:
            return "DC_WeldingDetectionReq", {"EVProcessing": "Ongoing"}, False
        return self._session_stop()

    def _session_stop(self):
        own = self.settings.service_renegotiation and not self.renegotiated_service
        if (own or self.service_renegotiation_asked) and self.failure is None:
            self.renegotiated_service = True
            self.service_renegotiation_asked = False
            return "SessionStopReq", {"ChargingSession": "ServiceRenegotiation"}, False
        return "SessionStopReq", {"ChargingSession": self.stop_mode}, False

    def _loop_req(self, now):
        name = "DC_ChargeLoopReq" if self.dc else "AC_ChargeLoopReq"
        return name, lambda now: self._loop_fields(now), False

    def _loop_fields(self, now) -> dict:
        ev = self.ev
        # MeterInfoRequested: a MeteringConfirmation waits for a meter reading ([V2G20-1081]).
        fields: dict = {"MeterInfoRequested": self.confirm_metering,
                        "DisplayParameters": self._display(DC if self.dc else AC, now)}
        if not self.dc:
            return {**fields, **self._ac_loop_fields()}
        lim = ev.dc_limits()
        v = ev.battery_voltage()
        i = 0.0 if self.standby_left is not None else ev.target_current()
        fields["EVPresentVoltage"] = rn(DC, v)
        if self.control == DYNAMIC:
            t, mx, mn = self._energy()
            common = dict(DepartureTime=self._departure(), EVTargetEnergyRequest=rn(DC, t),
                          EVMaximumEnergyRequest=rn(DC, mx), EVMinimumEnergyRequest=rn(DC, mn),
                          EVMaximumChargePower=rn(DC, 0 if self.standby_left is not None else min(lim.max_power, v * i)),
                          EVMinimumChargePower=rn(DC, 0), EVMaximumChargeCurrent=rn(DC, i),
                          EVMaximumVoltage=rn(DC, lim.max_voltage), EVMinimumVoltage=rn(DC, lim.min_voltage or 200))
            if self.bpt:
                dp, di = self._discharge_limits()
                fields["BPT_Dynamic_DC_CLReqControlMode"] = DC.BPT_Dynamic_DC_CLReqControlModeType(
                    **common, EVMaximumDischargePower=rn(DC, dp), EVMinimumDischargePower=rn(DC, 0),
                    EVMaximumDischargeCurrent=rn(DC, di))
            else:
                fields["Dynamic_DC_CLReqControlMode"] = DC.Dynamic_DC_CLReqControlModeType(**common)
        else:
            common = dict(EVTargetCurrent=rn(DC, i), EVTargetVoltage=rn(DC, lim.max_voltage if i else v))
            if self.bpt:
                dp, di = self._discharge_limits()
                fields["BPT_Scheduled_DC_CLReqControlMode"] = DC.BPT_Scheduled_DC_CLReqControlModeType(
                    **common, EVMaximumDischargePower=rn(DC, dp), EVMinimumDischargePower=rn(DC, 0),
                    EVMaximumDischargeCurrent=rn(DC, di))
            else:
                fields["Scheduled_DC_CLReqControlMode"] = DC.Scheduled_DC_CLReqControlModeType(**common)
        return fields

    def _phases(self, total: float) -> dict:
        """Per-phase values of a three-phase quantity: L1 in the base field, _L2/_L3."""
        return {"": total / 3, "_L2": total / 3, "_L3": total / 3}

    def _ac_loop_fields(self) -> dict:
        standby = self.standby_left is not None
        # the schedule's power may be negative (BPT: giving back): no charge power then
        pmax = 0.0 if standby else max(0.0, min(self._ac_max_power(), self.pmax or float("inf")))
        present = 0.0 if standby else self.ac_power
        f: dict = {}
        for suffix, v in self._phases(pmax).items():
            f["EVMaximumChargePower" + suffix] = rn(AC, v)
        for suffix, v in self._phases(present).items():
            f["EVPresentActivePower" + suffix] = rn(AC, v)
        if self.control == DYNAMIC:
            t, mx, mn = self._energy()
            f.update(DepartureTime=self._departure(), EVTargetEnergyRequest=rn(AC, t),
                     EVMaximumEnergyRequest=rn(AC, mx), EVMinimumEnergyRequest=rn(AC, mn),
                     EVMinimumChargePower=rn(AC, 0), EVPresentReactivePower=rn(AC, 0))
        if self.bpt:
            for suffix, v in self._phases(0.0 if standby else self._ac_discharge_power()).items():
                f["EVMaximumDischargePower" + suffix] = rn(AC, v)
            f["EVMinimumDischargePower"] = rn(AC, 0)
            cls = AC.BPT_Dynamic_AC_CLReqControlModeType if self.control == DYNAMIC \
                else AC.BPT_Scheduled_AC_CLReqControlModeType
        else:
            cls = AC.Dynamic_AC_CLReqControlModeType if self.control == DYNAMIC \
                else AC.Scheduled_AC_CLReqControlModeType
        return {cls.__name__[:-4]: cls(**f)}

    def _ac_max_power(self) -> float:
        """The most the EV takes on AC, W (three phases at its nominal voltage)."""
        lim = self.ev.ac_limits()
        return lim.nominal_voltage * lim.max_current * 3

    def _ac_discharge_power(self) -> float:
        """AC_BPT: the most the EV gives back, W (all phases)."""
        return self.ev.ac_discharge_power()

    def _on_AC_ChargeLoopRes(self, res, now, out):
        mode = (res.Dynamic_AC_CLResControlMode or res.BPT_Dynamic_AC_CLResControlMode
                or res.Scheduled_AC_CLResControlMode or res.BPT_Scheduled_AC_CLResControlMode)
        target = getattr(mode, "EVSETargetActivePower", None)
        p = fr(target) * (3 if getattr(mode, "EVSETargetActivePower_L2", None) is not None else 1) \
            if target is not None else self._ac_max_power()
        # never more than the EV can take: the SECC's target is a RationalNumber (up to 10^127)
        self.ac_power = 0.0 if self.standby_left is not None else min(p, self.pmax or p, self._ac_max_power())
        if self.ac_power < 0:           # BPT discharge, as the SECC steers it (dynamic)
            self.ac_power = max(self.ac_power, -self._ac_discharge_power()) if self.bpt else 0.0
        self.ev.update(now, 230.0, self.ac_power / 230.0)
        return self._after_loop(res, now)

    def _display(self, mod, now):
        # ChargingComplete is optional in the published XSD, mandatory for the iso15118
        # package (draft schema): always sent.
        return mod.DisplayParametersType(PresentSOC=self.ev.soc(), ChargingComplete=bool(self.ev.charging_complete(now)))

    def _on_DC_ChargeLoopRes(self, res, now, out):
        v, i = fr(res.EVSEPresentVoltage), fr(res.EVSEPresentCurrent)
        self.ev.update(now, v, i)
        return self._after_loop(res, now)

    def _after_loop(self, res, now):
        host = self.host
        self.loops += 1
        host.loops = self.loops
        n = val(res.EVSEStatus.EVSENotification) if res.EVSEStatus is not None else None
        if n == "Terminate":
            host.stop_reason = "the SECC asked to terminate"
            return self._power_delivery("Stop")
        if n == "Pause":
            host.stop_reason = "the SECC asked to pause"
            self.stop_mode = "Pause"
            return self._power_delivery("Stop")
        if n == "ScheduleRenegotiation" and self.standby_left is None:
            return self._power_delivery("ScheduleRenegotiation")
        if n == "ServiceRenegotiation":
            # Power off, then SessionStop(ServiceRenegotiation) and a new ServiceDiscovery
            # in the same session ([V2G20-1477]).
            self.service_renegotiation_asked = True
            return self._power_delivery("Stop")
        if n == "MeteringConfirmation" or self.confirm_metering:
            # [V2G20-1083]: the EV confirms the meter reading in SignedMeteringData; the
            # reading is the MeterInfo of this response, or of the next one it asks for.
            if res.MeterInfo is not None:
                self.confirm_metering = False
                return self._metering_confirmation(res.MeterInfo)
            self.confirm_metering = True
        if self.standby_left is not None:
            self.standby_left -= 1
            if self.standby_left <= 0 or n == "ExitStandby":
                return self._power_delivery("Start")
        s = self.settings
        if s.schedule_renegotiation_after is not None and self.loops == s.schedule_renegotiation_after \
                and not self.renegotiated_schedule:
            self.renegotiated_schedule = True
            return self._power_delivery("ScheduleRenegotiation")
        if s.standby_after is not None and self.loops == s.standby_after and self.standby_left is None:
            return self._power_delivery("Standby")
        c = host.config
        if self.ev.charging_complete(now) or self.ev.stop_requested(now) or \
                (c.max_charge_loops is not None and self.loops >= c.max_charge_loops):
            return self._power_delivery("Stop")
        name, fields, _ = self._loop_req(now)
        return name, fields, True

    def _metering_confirmation(self, meter):
        """MeteringConfirmationReq for a MeterInfo of a charge-loop response.  EIM: not
        signed (a PnC session signs SignedMeteringData with the contract key: the header's
        Signature, left to the Plug & Charge work)."""
        info = CM.MeterInfoType(**{f: getattr(meter, f) for f in meter._fields})
        mode = {"Dynamic_SMDTControlMode": CM.Dynamic_SMDTControlModeType()} if self.control == DYNAMIC else \
            {"Scheduled_SMDTControlMode": CM.Scheduled_SMDTControlModeType(SelectedScheduleTupleID=self.tuple_id)}
        data = CM.SignedMeteringDataType(Id=f"meter{self.metering_confirmations + 1}",
                                         SessionID=self.host.session_id, MeterInfo=info, **mode)
        return "MeteringConfirmationReq", {"SignedMeteringData": data}, False

    def _on_MeteringConfirmationRes(self, res, now, out):
        self.metering_confirmations += 1
        name, fields, _ = self._loop_req(now)
        return name, fields, True

    def _on_DC_WeldingDetectionRes(self, res, now, out):
        self.welding += 1
        if fr(res.EVSEPresentVoltage) < self.host.config.welding_safe_voltage or \
                self.welding >= self.host.config.max_welding_requests:
            return self._session_stop()
        return "DC_WeldingDetectionReq", {"EVProcessing": "Ongoing"}, True

    def _on_SessionStopRes(self, res, now, out):
        host = self.host
        if self.last_stop == "ServiceRenegotiation":
            # [V2G20-1477]: the same session goes on at ServiceDiscovery.
            self.precharged = False
            self.progress = None
            self.loops = 0
            return "ServiceDiscoveryReq", {}, False
        paused = self.stop_mode == "Pause" and self.failure is None
        ok = self.failure is None
        out.extend(host._end(now, ok, self.failure or ("SessionStop (Pause)" if paused else "SessionStop (Terminate)"),
                             paused=paused))
        return None
