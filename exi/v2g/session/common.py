"""What DIN SPEC 70121 and ISO 15118-2 share, for both roles: their messages are one
``V2G_Message`` (Header + Body) on V2GTP payload type 0x8001, so the cores decode,
sequence and answer them on one path (:mod:`.secc`, :mod:`.evcc`) and hand each message
to the protocol's handler object (:mod:`.din`, :mod:`.iso2`), whose base classes are here:

* :class:`V2GMessageSECC`: request dispatch by name (``on_<Request>``), response builders
  (``build_<Response>``, every mandatory field filled whatever the code), the DC status,
  authorization, the charging-profile check, PreCharge/CableCheck/CurrentDemand power
  control shared by both protocols;
* :class:`V2GMessageEVCC`: response dispatch (``on_<Response>``), the DC requests
  (CableCheck, PreCharge, CurrentDemand, WeldingDetection) built for either message set,
  the decisions after a charge-loop response, the early stop and the isolation check.

The -20 module (:mod:`.iso20`) has its own message sets and payload types and runs its
own receive path (``owns_messages = True``).
"""
from __future__ import annotations

import logging
from typing import Optional

from ._msg import fv, pv, val
from .events import SessionEstablished
from .machine import EVCCState, SECCState, Table

__all__ = ["V2GMessageSECC", "V2GMessageEVCC", "Failed", "CHARGE_SERVICE_ID", "STOP_CODES"]
log = logging.getLogger("exi.v2g.session.evcc")     # what the EVCC decides is logged as the EVCC
S = SECCState
E = EVCCState
CHARGE_SERVICE_ID = 1
# EVSEStatusCode values after which the EV stops charging.
STOP_CODES = {"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
              "EVSE_UtilityInterruptEvent"}


class Failed(Exception):
    """A request the SECC refuses: answer with ``code`` and end the session."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


# =========================================================================================
# SECC

class V2GMessageSECC:
    """The DIN / -2 part of one SECC session.  The host core (:class:`~.secc.SECCSession`)
    decodes, checks the sequence against :attr:`table` and calls ``on_<Request>(req, msg,
    now) -> (response body, next state, extra events)``; a :class:`Failed` raised there
    is answered with ``build_<Response>(code, now)``."""

    owns_messages = False           # the core runs the receive path
    module = None                   # exi.messages.din / iso2
    table: Table = {}

    def __init__(self, host, schema: str):
        self.host = host
        self.schema = schema
        self.config = host.config                  # the host's, fixed for the session
        self.evse = host.evse
        self.mode: Optional[str] = None            # "AC" / "DC"
        self.tuple_id: Optional[int] = None
        self.isolation = "Invalid"

    # what the host keeps for every protocol and changes during the session
    state = property(lambda self: self.host.state)
    session_id = property(lambda self: self.host.session_id)

    def handler(self, req_name: str):
        return getattr(self, "on_" + req_name)

    def finish(self, msg):
        """The response message just before it is encoded (-2 Plug & Charge signs parts)."""
        return msg

    def held_response(self, call):
        """(request name, response message) for a response held until ``call`` finished;
        None when nothing waits for it."""
        return None

    def refusal_reason(self) -> str:
        return ""

    def failed_response(self, req_name: str, code: str, now: float, body=None):
        """The response body to a refused request (None: the request type has no
        response builder, i.e. is not supported)."""
        build = getattr(self, "build_" + req_name[:-3] + "Res", None)
        if build is None:
            return None
        if req_name == "PowerDeliveryReq" and self.mode is None and body is not None:
            self.mode = "DC" if body.DC_EVPowerDeliveryParameter is not None else "AC"
        return build(code, now)

    # -- shared decisions -------------------------------------------------------------------
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

    def _power_on(self, now, voltage: float, current: float) -> None:
        self.evse.set_output(now, voltage, current, True)

    # -- DC, the same in both protocols -------------------------------------------------------
    def _dc_status(self, now, notification="None"):
        code = self.evse.status_code(now) if self.isolation in ("Valid", "Warning") else "EVSE_Ready"
        if self.state is S.CABLE_CHECK and self.isolation == "Invalid":
            code = "EVSE_IsolationMonitoringActive"
        return self.module.DC_EVSEStatusType(NotificationMaxDelay=0, EVSENotification=notification,
                                             EVSEIsolationStatus=self.isolation, EVSEStatusCode=code)

    def _cable_check(self, now) -> tuple:
        """(EVSEProcessing, next state) of a CableCheckReq."""
        result = self.evse.isolation_check(now)
        if result is None:
            return "Ongoing", S.CABLE_CHECK
        self.isolation = result
        if result not in ("Valid", "Warning"):
            raise Failed("FAILED", f"isolation check: {result}")
        return "Finished", S.PRE_CHARGE

    def _pre_charge(self, req, now) -> None:
        # Precharge current is limited to 2 A ([V2G2-...] unverified; DIN SPEC 70121 same).
        self.evse.set_output(now, fv(req.EVTargetVoltage), min(fv(req.EVTargetCurrent), 2.0), False)

    def _dc_apply(self, req, now, lim) -> tuple:
        """Apply a CurrentDemandReq's targets within the EVSE's ``lim``: (current,
        voltage, power) limit achieved."""
        v, i = fv(req.EVTargetVoltage), fv(req.EVTargetCurrent)
        self._power_on(now, v, i)
        return (i >= lim.max_current, v >= lim.max_voltage, v * i >= lim.max_power)

    def _dc_present(self, now) -> dict:
        return {"EVSEPresentVoltage": pv(self.schema, self.evse.present_voltage(now), "V")}

    def _dc_loop_fields(self, now, flags, lim=None) -> dict:
        """The CurrentDemandRes fields DIN and -2 share."""
        lim = lim or self.evse.dc_limits()
        s = self.schema
        return dict(EVSEPresentVoltage=pv(s, self.evse.present_voltage(now), "V"),
                    EVSEPresentCurrent=pv(s, self.evse.present_current(now), "A"),
                    EVSECurrentLimitAchieved=flags[0], EVSEVoltageLimitAchieved=flags[1],
                    EVSEPowerLimitAchieved=flags[2],
                    EVSEMaximumVoltageLimit=pv(s, lim.max_voltage, "V"),
                    EVSEMaximumCurrentLimit=pv(s, lim.max_current, "A"),
                    EVSEMaximumPowerLimit=pv(s, lim.max_power, "W"))

    def _dc_evse_charge_parameter(self, now):
        lim = self.evse.dc_limits()
        s = self.schema
        return self.module.DC_EVSEChargeParameterType(
            DC_EVSEStatus=self._dc_status(now),
            EVSEMaximumCurrentLimit=pv(s, lim.max_current, "A"),
            EVSEMaximumPowerLimit=pv(s, lim.max_power, "W"),
            EVSEMaximumVoltageLimit=pv(s, lim.max_voltage, "V"),
            EVSEMinimumCurrentLimit=pv(s, lim.min_current, "A"),
            EVSEMinimumVoltageLimit=pv(s, lim.min_voltage, "V"),
            EVSEPeakCurrentRipple=pv(s, 2.0, "A"))


# =========================================================================================
# EVCC

class V2GMessageEVCC:
    """The DIN / -2 part of one EVCC session.  The host core (:class:`~.evcc.EVCCSession`)
    decodes, checks the response is the one its state waits for (:attr:`expects`), that
    it is not FAILED and carries the SessionID, then calls ``on_<Response>(res, msg, now,
    out)``, which returns the next step ``(request name, build(now) -> body, repeat)``
    or None (the session ended, or the handler put its events in ``out``)."""

    owns_messages = False
    module = None
    table: Table = {}
    state_after: dict = {}          # request -> the state waiting for its response
    expects: dict = {}              # state -> the response it waits for

    def __init__(self, host, schema: str):
        self.host = host
        self.schema = schema
        self.config = host.config                 # the host's, fixed for the session
        self.ev = host.ev
        self.charge_service_id = 1
        self.tuple_id = 1
        self.progress: Optional[str] = None       # last PowerDelivery ChargeProgress
        self.welding_count = 0

    state = property(lambda self: self.host.state)
    session_id = property(lambda self: self.host.session_id)

    def handler(self, res_name: str):
        return getattr(self, "on_" + res_name)

    def finish_request(self, req_name: str, msg):
        """The request message just before it is encoded (-2 Plug & Charge signs it)."""
        return msg

    def check_response(self, res_name: str, msg) -> Optional[str]:
        """Why an accepted response must still be refused (-2: a SalesTariff signature);
        None: it is fine."""
        return None

    def first_request(self):
        """The step after SupportedAppProtocol."""
        return "SessionSetupReq", lambda now: self.module.SessionSetupReqType(EVCCID=self.ev.evcc_id), False

    def phase_timers(self, req: str, now: float) -> None:
        """Arm the timers that run over a whole phase when ``req`` first goes out."""
        host, c = self.host, self.config
        if req == "CableCheckReq" and "cable_check" not in host._timers:
            host._arm("cable_check", now + c.cable_check_timeout, "CableCheck not finished",
                      c.cable_check_timeout)
        elif req == "PreChargeReq" and "pre_charge" not in host._timers:
            host._arm("pre_charge", now + c.pre_charge_timeout, "PreCharge did not reach the battery voltage",
                      c.pre_charge_timeout)

    # -- common responses ---------------------------------------------------------------------
    def on_SessionSetupRes(self, res, msg, now, out):
        host = self.host
        host._timers.pop("setup", None)
        host.session_id = msg.Header.SessionID
        resumed = val(res.ResponseCode) == "OK_OldSessionJoined"
        out.append(SessionEstablished(host.session_id, resumed, val(res.ResponseCode)))
        return "ServiceDiscoveryReq", lambda now: self.module.ServiceDiscoveryReqType(), False

    def on_SessionStopRes(self, res, msg, now, out):
        host = self.host
        paused = self.schema == "iso2" and self.config.stop == "pause" and not host.stop_requested
        out.extend(host._end(now, True, f"SessionStop ({'Pause' if paused else 'Terminate'})" +
                             (f" after: {host.stop_reason}" if host.stop_reason else ""),
                             paused=paused))
        return None

    def _fail(self, now, out, reason):
        out.extend(self.host._end(now, False, reason))
        return None

    def _ongoing(self, processing, now, what) -> bool:
        return self.host._ongoing(processing, now, what)

    # -- decisions ----------------------------------------------------------------------------
    def _early_stop(self, now, powered: bool = False):
        """The EV ends the session before the charge loop (driver, car fault)."""
        if not self.ev.stop_requested(now):
            return None
        host = self.host
        host.stop_reason = "the EV stopped before charging"
        host._timers.pop("ongoing", None)
        for k in ("cable_check", "pre_charge", "ready"):
            host._timers.pop(k, None)
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
        host = self.host
        host.stop_reason = (f"CableCheck finished without a valid isolation result "
                            f"(EVSEIsolationStatus {iso}, EVSEStatusCode {code})")
        host.isolation_refused = True
        log.warning("%s: refusing PreCharge: %s", host.name, host.stop_reason)
        return self._power_delivery("Stop")

    def _precharged(self, res, now) -> bool:
        # The EV may judge PreCharge itself (real cars measure their inlet); otherwise
        # the charger's EVSEPresentVoltage must be within the window of the battery's.
        done = self.ev.precharge_complete(now, fv(res.EVSEPresentVoltage))
        if done is None:
            done = abs(fv(res.EVSEPresentVoltage) - self.ev.battery_voltage()) <= self.config.precharge_tolerance
        if done:
            self.host._timers.pop("pre_charge", None)
        return done

    def _after_loop_response(self, res, now, out, dc_status=None, ac_status=None):
        """Decide what follows a ChargingStatusRes/CurrentDemandRes: (request, build,
        repeat), or None to go on looping."""
        host = self.host
        host.loops += 1
        notification = val((dc_status or ac_status).EVSENotification) if (dc_status or ac_status) else "None"
        code = val(dc_status.EVSEStatusCode) if dc_status is not None else ""
        stop_reason = None
        if host.stop_requested:
            stop_reason = host.stop_requested
        elif notification == "StopCharging":
            stop_reason = "SECC asked to stop (EVSENotification StopCharging)"
        elif code in STOP_CODES:
            stop_reason = f"EVSE status {code}"
        elif self.ev.charging_complete(now):
            stop_reason = "EV charging complete"
        elif self.config.max_charge_loops is not None and host.loops >= self.config.max_charge_loops:
            stop_reason = f"{host.loops} charge loops done"
        if stop_reason:
            log.info("%s: stopping: %s", host.name, stop_reason)
            host.stop_reason = stop_reason
            return self._power_delivery("Stop")
        return self._renegotiation(notification, now)

    def _renegotiation(self, notification: str, now):
        """A renegotiation step after a loop response (-2 only)."""
        return None

    def _power_delivery(self, progress: str):          # per protocol
        raise NotImplementedError

    def _session_stop(self):                           # per protocol
        raise NotImplementedError

    # -- DC requests, either message set ------------------------------------------------------
    def _ev_dc_status(self):
        return self.module.DC_EVStatusType(EVReady=self.ev.ready(), EVErrorCode="NO_ERROR",
                                           EVRESSSOC=self.ev.soc())

    def _target_voltage(self) -> float:
        lim = self.ev.dc_limits()
        return min(lim.max_voltage, self.ev.battery_voltage() + 10.0)

    def _cable_check_req(self):
        return lambda now: self.module.CableCheckReqType(DC_EVStatus=self._ev_dc_status())

    def _pre_charge_req(self):
        m, s = self.module, self.schema
        return lambda now: m.PreChargeReqType(
            DC_EVStatus=self._ev_dc_status(), EVTargetVoltage=pv(s, self.ev.battery_voltage(), "V"),
            EVTargetCurrent=pv(s, 1.0, "A"))

    def _current_demand_req(self):
        m, s = self.module, self.schema

        def build(now):
            lim = self.ev.dc_limits()
            done = self.ev.charging_complete(now)
            rt = self.ev.remaining_time_to_full()
            return m.CurrentDemandReqType(
                DC_EVStatus=self._ev_dc_status(),
                EVTargetCurrent=pv(s, 0.0 if done else self.ev.target_current(), "A"),
                EVMaximumVoltageLimit=pv(s, lim.max_voltage, "V"),
                EVMaximumCurrentLimit=pv(s, lim.max_current, "A"),
                EVMaximumPowerLimit=pv(s, lim.max_power, "W"),
                BulkChargingComplete=self.ev.soc() >= self.ev.bulk_soc(),
                ChargingComplete=done,
                RemainingTimeToFullSoC=pv(s, min(rt, 172800), "s") if rt is not None else None,
                EVTargetVoltage=pv(s, self._target_voltage(), "V"))
        return build

    def _welding_req(self):
        return lambda now: self.module.WeldingDetectionReqType(DC_EVStatus=self._ev_dc_status())

    # -- DC responses, the same in both protocols ---------------------------------------------
    def on_CableCheckRes(self, res, msg, now, out):
        if val(res.EVSEProcessing) == "Ongoing":
            return self._early_stop(now, True) or ("CableCheckReq", self._cable_check_req(), True)
        self.host._timers.pop("cable_check", None)
        return self._isolation_refused(res) or self._early_stop(now, True) or \
            ("PreChargeReq", self._pre_charge_req(), False)

    def on_PreChargeRes(self, res, msg, now, out):
        stop = self._early_stop(now, True)
        if stop is not None:
            return stop
        if self._precharged(res, now):
            return self._power_delivery("Start")
        return "PreChargeReq", self._pre_charge_req(), True

    def on_WeldingDetectionRes(self, res, msg, now, out):
        self.welding_count += 1
        if fv(res.EVSEPresentVoltage) <= self.config.welding_safe_voltage \
                or self.welding_count >= self.config.max_welding_requests:
            return self._session_stop()
        return "WeldingDetectionReq", self._welding_req(), True

