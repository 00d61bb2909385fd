"""DIN SPEC 70121 EVCC handlers (DC, EIM), run by
:class:`~exi.v2g.session.evcc.EVCCSession` once the SECC has chosen DIN.
``on_<Response>`` handlers return the next step (request name, build(now), repeat)."""
from __future__ import annotations

from exi.messages import din

from .._msg import fv, pv, val
from ..common import V2GMessageEVCC
from ..events import PowerDeliveryChanged
from .tables import EVCC_EXPECTS, EVCC_STATE_AFTER, EVCC_TABLE

__all__ = ["DINEVCC"]


class DINEVCC(V2GMessageEVCC):
    module = din
    table = EVCC_TABLE
    state_after = EVCC_STATE_AFTER
    expects = EVCC_EXPECTS

    def phase_timers(self, req: str, now: float) -> None:
        super().phase_timers(req, now)
        host, c = self.host, self.config
        if req == "ChargeParameterDiscoveryReq" and "ready" not in host._timers and self.progress is None:
            host._arm("ready", now + c.ready_to_charge_timeout, "no PowerDelivery(ReadyToCharge)",
                      c.ready_to_charge_timeout)

    # -- requests ---------------------------------------------------------------------------------
    def _cpd(self, now):
        lim = self.ev.dc_limits()
        return din.ChargeParameterDiscoveryReqType(
            EVRequestedEnergyTransferType=self.config.transfer_mode("din"),
            DC_EVChargeParameter=din.DC_EVChargeParameterType(
                DC_EVStatus=self._ev_dc_status(),
                EVMaximumCurrentLimit=pv("din", lim.max_current, "A"),
                EVMaximumPowerLimit=pv("din", lim.max_power, "W"),
                EVMaximumVoltageLimit=pv("din", lim.max_voltage, "V"),
                EVEnergyCapacity=pv("din", self.ev.energy_capacity(), "Wh"),
                EVEnergyRequest=pv("din", self.ev.energy_request(), "Wh"),
                FullSOC=self.ev.full_soc(), BulkSOC=self.ev.bulk_soc()))

    def _power_delivery(self, progress: str):
        self.progress = progress
        ready = progress == "Start"

        def build(now):
            return din.PowerDeliveryReqType(
                ReadyToChargeState=ready,
                DC_EVPowerDeliveryParameter=din.DC_EVPowerDeliveryParameterType(
                    DC_EVStatus=self._ev_dc_status(), ChargingComplete=not ready))
        return "PowerDeliveryReq", build, False

    def _session_stop(self):
        # DIN SessionStopReq has no content: a DIN session always terminates.
        return "SessionStopReq", lambda now: din.SessionStopType(), False

    # -- responses ----------------------------------------------------------------------------------
    def on_ServiceDiscoveryRes(self, res, msg, now, out):
        options = [val(o) for o in (res.PaymentOptions.PaymentOption if res.PaymentOptions else [])]
        if "ExternalPayment" not in options:
            return self._fail(now, out, f"SECC offers no ExternalPayment, only {options}")
        self.charge_service_id = res.ChargeService.ServiceTag.ServiceID
        return "ServicePaymentSelectionReq", lambda now: din.ServicePaymentSelectionReqType(
            SelectedPaymentOption="ExternalPayment",
            SelectedServiceList=din.SelectedServiceListType(SelectedService=[
                din.SelectedServiceType(ServiceID=self.charge_service_id)])), False

    def on_ServicePaymentSelectionRes(self, res, msg, now, out):
        return "ContractAuthenticationReq", lambda now: din.ContractAuthenticationReqType(), False

    def on_ContractAuthenticationRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ContractAuthentication"):
            return self._early_stop(now) or (
                "ContractAuthenticationReq", lambda now: din.ContractAuthenticationReqType(), True)
        return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._cpd, False)

    def on_ChargeParameterDiscoveryRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ChargeParameterDiscovery"):
            return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._cpd, True)
        return self._early_stop(now) or ("CableCheckReq", self._cable_check_req(), False)

    def on_PowerDeliveryRes(self, res, msg, now, out):
        out.append(PowerDeliveryChanged(self.progress))
        if self.progress == "Start":
            self.host._timers.pop("ready", None)
            return "CurrentDemandReq", self._current_demand_req(), True
        self.ev.update(now, 0.0, 0.0)
        if self.config.max_welding_requests > 0:
            return "WeldingDetectionReq", self._welding_req(), False
        return self._session_stop()

    def on_CurrentDemandRes(self, res, msg, now, out):
        self.ev.update(now, fv(res.EVSEPresentVoltage), fv(res.EVSEPresentCurrent))
        nxt = self._after_loop_response(res, now, out, dc_status=res.DC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "CurrentDemandReq", self._current_demand_req(), True
