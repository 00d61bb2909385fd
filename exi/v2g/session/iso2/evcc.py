"""ISO 15118-2 EVCC handlers (AC and DC; EIM and Plug & Charge), run by
:class:`~exi.v2g.session.evcc.EVCCSession` once the SECC has chosen -2.
``on_<Response>`` handlers return the next step (request name, build(now), repeat).

The payment option is chosen in :meth:`ISO2EVCC.payment_option` and what follows
PaymentServiceSelection in :meth:`ISO2EVCC.after_payment_selection`; with
``EVCCConfig(payment="contract")`` Plug & Charge (:attr:`ISO2EVCC.pnc`, an
:class:`exi.v2g.pnc.iso2_evcc.EVCCContractPayment`) adds Certificate*, PaymentDetails,
the signed requests and the SalesTariff checks.
"""
from __future__ import annotations

from typing import Optional

from exi.messages import iso2

from .._msg import fv, pv, val
from ..common import V2GMessageEVCC
from ..events import PowerDeliveryChanged
from .tables import EVCC_EXPECTS, EVCC_STATE_AFTER, EVCC_TABLE

__all__ = ["ISO2EVCC"]

# IEC 61851-1 covers AC supplies up to 1,000 V: a nominal voltage above it is no charger's.
AC_NOMINAL_VOLTAGE_MAX = 1000


class ISO2EVCC(V2GMessageEVCC):
    module = iso2
    table = EVCC_TABLE
    state_after = EVCC_STATE_AFTER
    expects = EVCC_EXPECTS

    def __init__(self, host, schema: str):
        super().__init__(host, schema)
        self.services: list[int] = []              # value-added services to ask details of
        self.pmax: Optional[float] = None
        self.renegotiating = False
        self.ac_voltage = 230.0
        self.evse_max_current: Optional[float] = None
        self.selected_payment: Optional[str] = "ExternalPayment"
        self.listed: list[int] = []                # the SECC's ServiceList
        self.payment_problem = ""
        self.pnc = None                            # Contract payment (Plug & Charge)
        if self.config.payment == "contract":
            from exi.v2g.pnc.iso2_evcc import EVCCContractPayment
            self.pnc = EVCCContractPayment(host)

    # -- payment ------------------------------------------------------------------------------------
    def payment_option(self, offered: list) -> Optional[str]:
        """The payment option to select among ``offered`` (None: none we can use, see
        :attr:`payment_problem`)."""
        if self.pnc is not None:
            self.payment_problem = self.pnc.choose(offered) or ""
            return None if self.payment_problem else "Contract"
        self.payment_problem = f"SECC offers no ExternalPayment (EIM), only {offered}"
        return "ExternalPayment" if "ExternalPayment" in offered else None

    def after_payment_selection(self, now):
        """The step after PaymentServiceSelectionRes (EIM: Authorization; Contract:
        Certificate* or PaymentDetails)."""
        if self.pnc is not None:
            return self.pnc.after_selection()
        return "AuthorizationReq", lambda now: iso2.AuthorizationReqType(), False

    def finish_request(self, req_name: str, msg):
        return self.pnc.finish_request(req_name, msg) if self.pnc is not None else msg

    def check_response(self, res_name: str, msg):
        return self.pnc.check_response(res_name, msg) if self.pnc is not None else None

    # -- requests -------------------------------------------------------------------------------------
    def _phases(self) -> int:
        return 1 if "single" in self.config.transfer_mode("iso2") else 3

    def _next_detail_or_selection(self):
        if self.services:
            sid = self.services.pop(0)
            return "ServiceDetailReq", lambda now: iso2.ServiceDetailReqType(ServiceID=sid), False
        extra = self.pnc.selected_services(self.listed) if self.pnc is not None else []
        return "PaymentServiceSelectionReq", lambda now: iso2.PaymentServiceSelectionReqType(
            SelectedPaymentOption=self.selected_payment,
            SelectedServiceList=iso2.SelectedServiceListType(SelectedService=[
                iso2.SelectedServiceType(ServiceID=self.charge_service_id), *extra])), False

    def _cpd(self, now):
        mode = self.config.transfer_mode("iso2")
        if self.config.mode == "dc":
            lim = self.ev.dc_limits()
            return iso2.ChargeParameterDiscoveryReqType(
                RequestedEnergyTransferMode=mode, DC_EVChargeParameter=iso2.DC_EVChargeParameterType(
                    DepartureTime=self.ev.departure_time(), DC_EVStatus=self._ev_dc_status(),
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

    def _power_delivery(self, progress: str):
        self.progress = progress

        def build(now):
            profile = None
            if progress == "Start":
                p_ev = self.ev.dc_limits().max_power if self.config.mode == "dc" else \
                    self.ev.ac_limits().max_current * self.ac_voltage * self._phases()
                p = min(p_ev, self.pmax) if self.pmax else p_ev
                profile = iso2.ChargingProfileType(ProfileEntry=[iso2.ProfileEntryType(
                    ChargingProfileEntryStart=0, ChargingProfileEntryMaxPower=pv("iso2", p, "W"),
                    ChargingProfileEntryMaxNumberOfPhasesInUse=self._phases() if self.config.mode == "ac" else None)])
            dc = None
            if self.config.mode == "dc":
                dc = iso2.DC_EVPowerDeliveryParameterType(
                    DC_EVStatus=self._ev_dc_status(),
                    BulkChargingComplete=None, ChargingComplete=progress == "Stop")
            return iso2.PowerDeliveryReqType(ChargeProgress=progress, SAScheduleTupleID=self.tuple_id,
                                             ChargingProfile=profile, DC_EVPowerDeliveryParameter=dc)
        return "PowerDeliveryReq", build, False

    def _session_stop(self):
        mode = "Pause" if self.config.stop == "pause" and not self.host.stop_requested else "Terminate"
        return "SessionStopReq", lambda now: iso2.SessionStopReqType(ChargingSession=mode), False

    def _loop_request(self):
        if self.config.mode == "dc":
            return "CurrentDemandReq", self._current_demand_req(), True
        return "ChargingStatusReq", lambda now: iso2.ChargingStatusReqType(), True

    def _receipt(self, res):
        self.host.receipts += 1
        meter = res.MeterInfo or iso2.MeterInfoType(MeterID="unknown")
        return "MeteringReceiptReq", lambda now: iso2.MeteringReceiptReqType(
            Id="receipt", SessionID=self.session_id, SAScheduleTupleID=self.tuple_id, MeterInfo=meter), False

    def _renegotiation(self, notification: str, now):
        host, c = self.host, self.config
        if notification == "ReNegotiation" or (
                c.renegotiate_after is not None and host.renegotiations == 0
                and host.loops >= c.renegotiate_after) or self.ev.renegotiation_requested(now):
            host.renegotiations += 1
            return self._power_delivery("Renegotiate")
        return None

    # -- responses ------------------------------------------------------------------------------------
    def on_ServiceDiscoveryRes(self, res, msg, now, out):
        options = [val(o) for o in (res.PaymentOptionList.PaymentOption if res.PaymentOptionList else [])]
        self.selected_payment = self.payment_option(options)
        if self.selected_payment is None:
            return self._fail(now, out, self.payment_problem)
        modes = [val(x) for x in res.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode]
        want = self.config.transfer_mode("iso2")
        if want not in modes:
            return self._fail(now, out, f"SECC does not offer {want} (offers {modes})")
        self.charge_service_id = res.ChargeService.ServiceID
        self.listed = [s.ServiceID for s in res.ServiceList.Service] if res.ServiceList else []
        if self.config.request_service_details and res.ServiceList is not None:
            self.services = [s.ServiceID for s in res.ServiceList.Service]
        return self._next_detail_or_selection()

    def on_ServiceDetailRes(self, res, msg, now, out):
        return self._next_detail_or_selection()

    def on_PaymentServiceSelectionRes(self, res, msg, now, out):
        return self.after_payment_selection(now)

    def on_CertificateInstallationRes(self, res, msg, now, out):
        step, problem = self.pnc.certificate_response("installation", msg)
        return self._fail(now, out, problem) if problem else step

    def on_CertificateUpdateRes(self, res, msg, now, out):
        step, problem = self.pnc.certificate_response("update", msg)
        return self._fail(now, out, problem) if problem else step

    def on_PaymentDetailsRes(self, res, msg, now, out):
        step, problem = self.pnc.payment_details_response(res)
        return self._fail(now, out, problem) if problem else step

    def on_AuthorizationRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "Authorization"):
            return self._early_stop(now) or ("AuthorizationReq", lambda now: iso2.AuthorizationReqType(), True)
        return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._cpd, False)

    def on_ChargeParameterDiscoveryRes(self, res, msg, now, out):
        if self._ongoing(res.EVSEProcessing, now, "ChargeParameterDiscovery"):
            return self._early_stop(now) or ("ChargeParameterDiscoveryReq", self._cpd, True)
        stop = self._early_stop(now)
        if stop is not None:
            return stop
        tuples = res.SAScheduleList.SAScheduleTuple if res.SAScheduleList else []
        if not tuples:
            return self._fail(now, out, "ChargeParameterDiscoveryRes Finished without SAScheduleList")
        t = tuples[0]
        self.tuple_id = t.SAScheduleTupleID
        entries = t.PMaxSchedule.PMaxScheduleEntry if t.PMaxSchedule else []
        self.pmax = fv(entries[0].PMax) if entries else None
        # The charging profile of PowerDeliveryReq is computed from these two: a value no
        # charger can mean is refused here, not echoed back (or out of a PhysicalValue's range).
        if self.pmax is not None and self.pmax < 0:
            return self._fail(now, out, f"the SECC's schedule gives PMax {self.pmax:g} W (negative)")
        if res.AC_EVSEChargeParameter is not None:
            nominal = fv(res.AC_EVSEChargeParameter.EVSENominalVoltage)
            if not 0 <= nominal <= AC_NOMINAL_VOLTAGE_MAX:
                return self._fail(now, out, f"the SECC's EVSENominalVoltage is {nominal:g} V "
                                            f"(an AC supply has 0-{AC_NOMINAL_VOLTAGE_MAX} V)")
            self.ac_voltage = nominal or 230.0
            self.evse_max_current = fv(res.AC_EVSEChargeParameter.EVSEMaxCurrent)
        if self.config.mode == "dc" and (not self.renegotiating or self.config.recheck_after_renegotiation):
            self.renegotiating = False
            return "CableCheckReq", self._cable_check_req(), False
        self.renegotiating = False
        return self._power_delivery("Start")

    def on_PowerDeliveryRes(self, res, msg, now, out):
        out.append(PowerDeliveryChanged(self.progress))
        if self.progress == "Start":
            return self._loop_request()
        if self.progress == "Renegotiate":
            self.renegotiating = True
            return "ChargeParameterDiscoveryReq", self._cpd, False
        self.ev.update(now, 0.0, 0.0)
        if self.config.mode == "dc" and self.config.max_welding_requests > 0:
            return "WeldingDetectionReq", self._welding_req(), False
        return self._session_stop()

    def on_ChargingStatusRes(self, res, msg, now, out):
        i = min(self.ev.ac_limits().max_current, fv(res.EVSEMaxCurrent) or self.evse_max_current or 16.0)
        self.ev.update(now, self.ac_voltage * self._phases(), i)
        if res.ReceiptRequired:     # obliges the next request, before any stop
            self.host.loops += 1
            return self._receipt(res)
        nxt = self._after_loop_response(res, now, out, ac_status=res.AC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "ChargingStatusReq", lambda now: iso2.ChargingStatusReqType(), True

    def on_CurrentDemandRes(self, res, msg, now, out):
        self.ev.update(now, fv(res.EVSEPresentVoltage), fv(res.EVSEPresentCurrent))
        if res.ReceiptRequired:     # obliges the next request, before any stop
            self.host.loops += 1
            return self._receipt(res)
        nxt = self._after_loop_response(res, now, out, dc_status=res.DC_EVSEStatus)
        if nxt is not None:
            return nxt
        return "CurrentDemandReq", self._current_demand_req(), True

    def on_MeteringReceiptRes(self, res, msg, now, out):
        return self._loop_request()
