"""DIN SPEC 70121 SECC handlers (DC only, EIM only: [V2G-DC-252] (2nd-hand)
ExternalPayment), run by :class:`~exi.v2g.session.secc.SECCSession` once
SupportedAppProtocol has chosen DIN.  ``on_<Request>`` handlers return (response body,
next state, events); ``build_<Response>`` builders fill every mandatory field whatever
the response code."""
from __future__ import annotations

from exi.messages import din

from .._msg import val
from ..common import CHARGE_SERVICE_ID, Failed, V2GMessageSECC
from ..events import PowerDeliveryChanged
from ..machine import SECCState
from .tables import SECC_TABLE

__all__ = ["DINSECC"]

S = SECCState


class DINSECC(V2GMessageSECC):
    module = din
    table = SECC_TABLE

    # -- response builders ----------------------------------------------------------------
    def _evseid(self) -> bytes:
        return self.evse.evse_id().encode()[:32] or b"\x00"

    def _schedule(self):
        # DIN PMax is a plain short; [V2G-DC-329] (2nd-hand): at most 12 entries.
        entries = [din.PMaxScheduleEntryType(
            RelativeTimeInterval=din.RelativeTimeIntervalType(start=p.start, duration=p.duration),
            PMax=int(min(p.max_power, 32767))) for p in self.evse.schedule()[:12]]
        return din.SAScheduleListType(SAScheduleTuple=[din.SAScheduleTupleType(
            SAScheduleTupleID=self.config.sa_schedule_tuple_id,
            PMaxSchedule=din.PMaxScheduleType(PMaxScheduleID=1, PMaxScheduleEntry=entries))])

    def build_SessionSetupRes(self, code, now):
        return din.SessionSetupResType(ResponseCode=code, EVSEID=self._evseid())

    def build_ServiceDiscoveryRes(self, code, now):
        return din.ServiceDiscoveryResType(
            ResponseCode=code, PaymentOptions=din.PaymentOptionsType(PaymentOption=["ExternalPayment"]),
            ChargeService=din.ServiceChargeType(
                ServiceTag=din.ServiceTagType(ServiceID=CHARGE_SERVICE_ID, ServiceCategory="EVCharging"),
                FreeService=False, EnergyTransferType="DC_extended"))

    def build_ServicePaymentSelectionRes(self, code, now):
        return din.ServicePaymentSelectionResType(ResponseCode=code)

    def build_ContractAuthenticationRes(self, code, now, processing="Finished"):
        return din.ContractAuthenticationResType(ResponseCode=code, EVSEProcessing=processing)

    def build_ChargeParameterDiscoveryRes(self, code, now, processing="Finished", schedules=None):
        # The DIN schema makes SAScheduleList mandatory (unlike -2's choice), also with
        # Ongoing and FAILED: send the schedule we have, as real DIN chargers do.
        return din.ChargeParameterDiscoveryResType(
            ResponseCode=code, EVSEProcessing=processing, SAScheduleList=schedules or self._schedule(),
            DC_EVSEChargeParameter=self._dc_evse_charge_parameter(now))

    def build_CableCheckRes(self, code, now, processing="Finished"):
        return din.CableCheckResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                     EVSEProcessing=processing)

    def build_PreChargeRes(self, code, now):
        return din.PreChargeResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                    **self._dc_present(now))

    def build_PowerDeliveryRes(self, code, now):
        return din.PowerDeliveryResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now))

    def build_CurrentDemandRes(self, code, now, notification="None", flags=(False, False, False), lim=None):
        return din.CurrentDemandResType(
            ResponseCode=code, DC_EVSEStatus=self._dc_status(now, notification),
            **self._dc_loop_fields(now, flags, lim))

    def build_WeldingDetectionRes(self, code, now):
        return din.WeldingDetectionResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                           **self._dc_present(now))

    def build_SessionStopRes(self, code, now):
        return din.SessionStopResType(ResponseCode=code)

    # -- request handlers: (response body, next state, extra events) --------------------------
    def on_SessionSetupReq(self, req, msg, now):
        code, ev = self.host._session_setup(req, msg, now)
        return self.build_SessionSetupRes(code, now), S.SERVICE_DISCOVERY, ev

    def on_ServiceDiscoveryReq(self, req, msg, now):
        return self.build_ServiceDiscoveryRes("OK", now), S.PAYMENT_SELECTION, []

    def on_ServicePaymentSelectionReq(self, req, msg, now):
        if req.SelectedPaymentOption != "ExternalPayment":
            raise Failed("FAILED_PaymentSelectionInvalid",
                         f"payment option {req.SelectedPaymentOption}: DIN SPEC 70121 allows ExternalPayment only")
        ids = [s.ServiceID for s in (req.SelectedServiceList.SelectedService if req.SelectedServiceList else [])]
        if CHARGE_SERVICE_ID not in ids:
            raise Failed("FAILED_ServiceSelectionInvalid", f"selected services {ids}: the charge service is 1")
        return self.build_ServicePaymentSelectionRes("OK", now), S.AUTHORIZATION, []

    def on_ContractAuthenticationReq(self, req, msg, now):
        processing = self._authorize(now)
        nxt = S.AUTHORIZATION if processing == "Ongoing" else S.CHARGE_PARAMETER_DISCOVERY
        return self.build_ContractAuthenticationRes("OK", now, processing), nxt, []

    def on_ChargeParameterDiscoveryReq(self, req, msg, now):
        mode = val(req.EVRequestedEnergyTransferType)
        # [V2G-DC-625] (2nd-hand): DC_extended or DC_core only.
        if mode not in ("DC_extended", "DC_core") or mode not in self.config.energy_modes:
            raise Failed("FAILED_WrongEnergyTransferType", f"energy transfer type {mode}")
        self.mode = "DC"
        if req.DC_EVChargeParameter is None:
            raise Failed("FAILED_WrongChargeParameter", "no DC_EVChargeParameter")
        if not self.evse.charge_parameters_ready(now):
            return self.build_ChargeParameterDiscoveryRes("OK", now, "Ongoing"), S.CHARGE_PARAMETER_DISCOVERY, []
        return (self.build_ChargeParameterDiscoveryRes("OK", now, "Finished", self._schedule()),
                S.CABLE_CHECK, [])

    def on_CableCheckReq(self, req, msg, now):
        processing, nxt = self._cable_check(now)
        return self.build_CableCheckRes("OK", now, processing), nxt, []

    def on_PreChargeReq(self, req, msg, now):
        self._pre_charge(req, now)
        return self.build_PreChargeRes("OK", now), S.PRE_CHARGE, []

    def on_PowerDeliveryReq(self, req, msg, now):
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
            return self.build_PowerDeliveryRes("OK", now), S.CHARGING, [PowerDeliveryChanged("Start")]
        # ReadyToChargeState=false is accepted in the charge loop and, as the -2 table
        # does for ChargeProgress=Stop, in PreCharge (a car that gives up before
        # charging switches the output off this way).
        if self.state not in (S.CHARGING, S.PRE_CHARGE):
            raise Failed("FAILED_SequenceError", "PowerDelivery ReadyToChargeState=false before charging")
        self.evse.set_output(now, 0.0, 0.0, False)
        return self.build_PowerDeliveryRes("OK", now), S.POWER_STOPPED, [PowerDeliveryChanged("Stop")]

    def on_CurrentDemandReq(self, req, msg, now):
        lim = self.evse.dc_limits()
        flags = self._dc_apply(req, now, lim)
        return self.build_CurrentDemandRes("OK", now, self._notification(now), flags, lim), S.CHARGING, []

    def on_WeldingDetectionReq(self, req, msg, now):
        return self.build_WeldingDetectionRes("OK", now), S.POWER_STOPPED, []

    def on_SessionStopReq(self, req, msg, now):
        return self.build_SessionStopRes("OK", now), S.ENDED, []
