"""ISO 15118-2 SECC handlers (AC and DC; EIM and Plug & Charge), run by
:class:`~exi.v2g.session.secc.SECCSession` once SupportedAppProtocol has chosen -2.

``on_<Request>`` handlers return (response body, next state, events); ``build_<Response>``
builders fill every mandatory field whatever the response code ([V2G2-736]).  What
depends on the payment option goes through :meth:`ISO2SECC.payment_options` and
:attr:`ISO2SECC.payment_option`; Contract payment (Plug & Charge: Certificate*,
PaymentDetails, signed Authorization, signed SalesTariffs, signed MeteringReceipt) is
:attr:`ISO2SECC.pnc`, an :class:`exi.v2g.pnc.iso2_secc.SECCContractPayment`, when the
SECC config has ``pnc``.
"""
from __future__ import annotations

from typing import Optional

from exi.messages import iso2

from .._msg import fv, pv, val
from ..common import CHARGE_SERVICE_ID, Failed, V2GMessageSECC
from ..events import BackendRequest, PowerDeliveryChanged
from ..machine import SECCState
from .tables import SECC_TABLE

__all__ = ["ISO2SECC", "INTERNET_SERVICE_ID"]

S = SECCState
INTERNET_SERVICE_ID = 3


class ISO2SECC(V2GMessageSECC):
    module = iso2
    table = SECC_TABLE

    def __init__(self, host, schema: str):
        super().__init__(host, schema)
        self.renegotiating = False
        self.receipt_pending = False
        self.loops = 0
        self.payment_option: Optional[str] = None      # chosen in PaymentServiceSelection
        self.pnc = None                                # Contract payment (Plug & Charge)
        if self.config.pnc is not None:
            from exi.v2g.pnc.iso2_secc import SECCContractPayment
            self.pnc = SECCContractPayment(host, Failed, BackendRequest, S)

    # -- payment options and services -----------------------------------------------------------
    def payment_options(self) -> list:
        """Offered in ServiceDiscoveryRes: ExternalPayment, and Contract first when Plug &
        Charge is configured and the connection is TLS."""
        return ["Contract", "ExternalPayment"] if self.pnc is not None and self.pnc.offered \
            else ["ExternalPayment"]

    def _offered_services(self) -> set:
        return ({CHARGE_SERVICE_ID} | ({INTERNET_SERVICE_ID} if self.config.offer_value_added_services else set())
                | {i for i, _, _ in self.config.extra_services}
                | (self.pnc.services() if self.pnc is not None else set()))

    # -- Plug & Charge hooks of the core ------------------------------------------------------------
    def finish(self, msg):
        return self.pnc.finish(msg) if self.pnc is not None else msg

    def held_response(self, call):
        return self.pnc.held_response(call) if self.pnc is not None else None

    def refusal_reason(self) -> str:
        return self.pnc.auth.reason if self.pnc is not None and self.pnc.auth is not None else ""

    def _contract(self, name: str):
        if self.pnc is None or self.payment_option != "Contract":
            raise Failed("FAILED_SequenceError", f"{name} without Contract payment")
        return self.pnc

    # -- status, meter, schedule -----------------------------------------------------------------
    def _ac_status(self, notification="None"):
        return iso2.AC_EVSEStatusType(NotificationMaxDelay=0, EVSENotification=notification, RCD=False)

    def _meter(self, now):
        m = self.evse.meter(now)
        meter = iso2.MeterInfoType(MeterID=m.meter_id, MeterReading=m.energy_wh,
                                   MeterStatus=m.status, TMeter=m.timestamp)
        if self.pnc is not None:
            self.pnc.issued_meter = meter          # what a signed receipt must repeat
        return meter

    def _schedule(self):
        entries = [iso2.PMaxScheduleEntryType(
            RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=p.start, duration=p.duration),
            PMax=pv("iso2", p.max_power, "W")) for p in self.evse.schedule()]
        schedules = iso2.SAScheduleListType(SAScheduleTuple=[iso2.SAScheduleTupleType(
            SAScheduleTupleID=self.config.sa_schedule_tuple_id,
            PMaxSchedule=iso2.PMaxScheduleType(PMaxScheduleEntry=entries))])
        if self.pnc is not None:
            self.pnc.add_tariffs(schedules)        # Contract payment: signed in finish()
        return schedules

    def _loop_receipt(self) -> Optional[bool]:
        """ReceiptRequired of a charge-loop response (None: not configured)."""
        if not self.config.receipt_required:
            return None
        self.loops += 1
        if self.loops % max(1, self.config.receipt_every) == 0:
            self.receipt_pending = True
            return True
        return False

    def _check_receipt_order(self, name):
        if self.receipt_pending:
            raise Failed("FAILED_SequenceError", f"{name} while a MeteringReceiptReq was required")

    # -- response builders ------------------------------------------------------------------------
    def build_SessionSetupRes(self, code, now):
        return iso2.SessionSetupResType(ResponseCode=code, EVSEID=self.evse.evse_id())

    def build_ServiceDiscoveryRes(self, code, now, category=None):
        services = None
        if self.config.offer_value_added_services and category in (None, "Internet"):
            services = iso2.ServiceListType(Service=[iso2.ServiceType(
                ServiceID=INTERNET_SERVICE_ID, ServiceName="Internet", ServiceCategory="Internet",
                FreeService=True)])
        extra = [iso2.ServiceType(ServiceID=i, ServiceName=n, ServiceCategory=c, FreeService=True)
                 for i, n, c in self.config.extra_services if category in (None, c)]
        if extra:
            services = iso2.ServiceListType(Service=(services.Service if services else []) + extra)
        res = iso2.ServiceDiscoveryResType(
            ResponseCode=code,
            PaymentOptionList=iso2.PaymentOptionListType(PaymentOption=self.payment_options()),
            ChargeService=iso2.ChargeServiceType(
                ServiceID=CHARGE_SERVICE_ID, ServiceName="AC_DC_Charging", ServiceCategory="EVCharging",
                FreeService=False, SupportedEnergyTransferMode=iso2.SupportedEnergyTransferModeType(
                    EnergyTransferMode=list(self.config.energy_modes))),
            ServiceList=services)
        if self.pnc is not None:
            self.pnc.offer(res, category)           # the certificate service (TLS only)
        return res

    def build_ServiceDetailRes(self, code, now, service_id=CHARGE_SERVICE_ID, params=None):
        return iso2.ServiceDetailResType(ResponseCode=code, ServiceID=service_id,
                                         ServiceParameterList=params)

    def build_PaymentServiceSelectionRes(self, code, now):
        return iso2.PaymentServiceSelectionResType(ResponseCode=code)

    def build_CertificateInstallationRes(self, code, now):
        from exi.v2g.pnc.secc import failed_certificate_response   # (loads cryptography)
        return failed_certificate_response("installation", code, self.session_id or b"\x00").Body. \
            CertificateInstallationRes

    def build_CertificateUpdateRes(self, code, now):
        from exi.v2g.pnc.secc import failed_certificate_response
        return failed_certificate_response("update", code, self.session_id or b"\x00").Body. \
            CertificateUpdateRes

    def build_PaymentDetailsRes(self, code, now):
        return iso2.PaymentDetailsResType(ResponseCode=code, GenChallenge=b"\x00" * 16, EVSETimeStamp=0)

    def build_AuthorizationRes(self, code, now, processing="Finished"):
        return iso2.AuthorizationResType(ResponseCode=code, EVSEProcessing=processing)

    def build_ChargeParameterDiscoveryRes(self, code, now, processing="Finished", schedules=None):
        if self.mode == "DC":
            param = dict(DC_EVSEChargeParameter=self._dc_evse_charge_parameter(now))
        else:
            lim = self.evse.ac_limits()
            param = dict(AC_EVSEChargeParameter=iso2.AC_EVSEChargeParameterType(
                AC_EVSEStatus=self._ac_status(),
                EVSENominalVoltage=pv("iso2", lim.nominal_voltage, "V"),
                EVSEMaxCurrent=pv("iso2", lim.max_current, "A")))
        return iso2.ChargeParameterDiscoveryResType(ResponseCode=code, EVSEProcessing=processing,
                                                    SAScheduleList=schedules, **param)

    def build_PowerDeliveryRes(self, code, now, notification="None"):
        if self.mode == "DC":
            return iso2.PowerDeliveryResType(ResponseCode=code,
                                             DC_EVSEStatus=self._dc_status(now, notification))
        return iso2.PowerDeliveryResType(ResponseCode=code, AC_EVSEStatus=self._ac_status(notification))

    def build_ChargingStatusRes(self, code, now, notification="None", receipt=None, meter=None):
        return iso2.ChargingStatusResType(
            ResponseCode=code, EVSEID=self.evse.evse_id(),
            SAScheduleTupleID=self.tuple_id or self.config.sa_schedule_tuple_id,
            EVSEMaxCurrent=pv("iso2", self.evse.ac_limits().max_current, "A"),
            MeterInfo=meter, ReceiptRequired=receipt, AC_EVSEStatus=self._ac_status(notification))

    def build_MeteringReceiptRes(self, code, now):
        if self.mode == "DC":
            return iso2.MeteringReceiptResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now))
        return iso2.MeteringReceiptResType(ResponseCode=code, AC_EVSEStatus=self._ac_status())

    def build_CableCheckRes(self, code, now, processing="Finished"):
        return iso2.CableCheckResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                      EVSEProcessing=processing)

    def build_PreChargeRes(self, code, now):
        return iso2.PreChargeResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                     **self._dc_present(now))

    def build_CurrentDemandRes(self, code, now, notification="None", flags=(False, False, False),
                               receipt=None, meter=None, lim=None):
        return iso2.CurrentDemandResType(
            ResponseCode=code, DC_EVSEStatus=self._dc_status(now, notification),
            **self._dc_loop_fields(now, flags, lim),
            EVSEID=self.evse.evse_id(), SAScheduleTupleID=self.tuple_id or self.config.sa_schedule_tuple_id,
            MeterInfo=meter, ReceiptRequired=receipt)

    def build_WeldingDetectionRes(self, code, now):
        return iso2.WeldingDetectionResType(ResponseCode=code, DC_EVSEStatus=self._dc_status(now),
                                            **self._dc_present(now))

    def build_SessionStopRes(self, code, now):
        return iso2.SessionStopResType(ResponseCode=code)

    # -- request handlers: (response body, next state, extra events) ----------------------------
    def on_SessionSetupReq(self, req, msg, now):
        code, ev = self.host._session_setup(req, msg, now)
        return self.build_SessionSetupRes(code, now), S.SERVICE_DISCOVERY, ev

    def on_ServiceDiscoveryReq(self, req, msg, now):
        return self.build_ServiceDiscoveryRes("OK", now, req.ServiceCategory), S.PAYMENT_SELECTION, []

    def on_ServiceDetailReq(self, req, msg, now):
        offered = self._offered_services()
        if req.ServiceID not in offered:
            # [V2G2-425] (2nd-hand)
            raise Failed("FAILED_ServiceIDInvalid", f"ServiceDetailReq for unknown ServiceID {req.ServiceID}")
        params = self.pnc.service_parameters(req.ServiceID) if self.pnc is not None else None
        if req.ServiceID == INTERNET_SERVICE_ID:
            params = iso2.ServiceParameterListType(ParameterSet=[iso2.ParameterSetType(
                ParameterSetID=3, Parameter=[iso2.ParameterType(Name="Protocol", stringValue="https"),
                                             iso2.ParameterType(Name="Port", intValue=443)])])
        return self.build_ServiceDetailRes("OK", now, req.ServiceID, params), S.PAYMENT_SELECTION, []

    def on_PaymentServiceSelectionReq(self, req, msg, now):
        if val(req.SelectedPaymentOption) == "Contract" and self.pnc is not None:
            step = self.pnc.select(req, self._offered_services())
            self.payment_option = "Contract"
            return step
        if req.SelectedPaymentOption not in self.payment_options():
            raise Failed("FAILED_PaymentSelectionInvalid",
                         f"payment option {req.SelectedPaymentOption} was not offered (EIM only)")
        ids = [s.ServiceID for s in (req.SelectedServiceList.SelectedService if req.SelectedServiceList else [])]
        if CHARGE_SERVICE_ID not in ids:
            raise Failed("FAILED_NoChargeServiceSelected", "the charge service was not selected")
        offered = self._offered_services()
        if any(i not in offered for i in ids):
            raise Failed("FAILED_ServiceSelectionInvalid", f"selected services {ids}, offered {sorted(offered)}")
        self.payment_option = val(req.SelectedPaymentOption)
        return self.build_PaymentServiceSelectionRes("OK", now), S.AUTHORIZATION, []

    def on_CertificateInstallationReq(self, req, msg, now):
        return self._contract("CertificateInstallationReq").certificate("CertificateInstallationReq", msg)

    def on_CertificateUpdateReq(self, req, msg, now):
        return self._contract("CertificateUpdateReq").certificate("CertificateUpdateReq", msg)

    def on_PaymentDetailsReq(self, req, msg, now):
        return self._contract("PaymentDetailsReq").payment_details(req)

    def on_AuthorizationReq(self, req, msg, now):
        if self.payment_option == "Contract":
            return self.pnc.authorization(msg)
        processing = self._authorize(now)
        nxt = S.AUTHORIZATION if processing == "Ongoing" else S.CHARGE_PARAMETER_DISCOVERY
        return self.build_AuthorizationRes("OK", now, processing), nxt, []

    def on_ChargeParameterDiscoveryReq(self, req, msg, now):
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
            return (self.build_ChargeParameterDiscoveryRes("OK", now, "Ongoing"),
                    S.CHARGE_PARAMETER_DISCOVERY, [])
        nxt = S.CABLE_CHECK if dc and not self.renegotiating else S.POWER_DELIVERY
        return (self.build_ChargeParameterDiscoveryRes("OK", now, "Finished", self._schedule()),
                nxt, [])

    def on_CableCheckReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "CableCheckReq in an AC session")
        processing, nxt = self._cable_check(now)
        return self.build_CableCheckRes("OK", now, processing), nxt, []

    def on_PreChargeReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "PreChargeReq in an AC session")
        self._pre_charge(req, now)
        return self.build_PreChargeRes("OK", now), S.PRE_CHARGE, []

    def on_PowerDeliveryReq(self, req, msg, now):
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
        return self.build_PowerDeliveryRes("OK", now), nxt, [PowerDeliveryChanged(progress)]

    def on_ChargingStatusReq(self, req, msg, now):
        if self.mode != "AC":
            raise Failed("FAILED_SequenceError", "ChargingStatusReq in a DC session")
        self._check_receipt_order("ChargingStatusReq")
        receipt = self._loop_receipt()
        return (self.build_ChargingStatusRes("OK", now, self._notification(now), receipt, self._meter(now)),
                S.CHARGING, [])

    def on_CurrentDemandReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "CurrentDemandReq in an AC session")
        self._check_receipt_order("CurrentDemandReq")
        lim = self.evse.dc_limits()
        flags = self._dc_apply(req, now, lim)
        receipt = self._loop_receipt()
        meter = self._meter(now) if receipt is not None else None
        return (self.build_CurrentDemandRes("OK", now, self._notification(now), flags, receipt, meter, lim),
                S.CHARGING, [])

    def on_MeteringReceiptReq(self, req, msg, now):
        if not self.receipt_pending:
            raise Failed("FAILED_SequenceError", "MeteringReceiptReq that was not asked for")
        if req.SessionID != self.session_id:
            raise Failed("FAILED_UnknownSession", "MeteringReceiptReq for another session")
        if req.MeterInfo is None:
            raise Failed("FAILED", "MeteringReceiptReq without MeterInfo")
        if self.payment_option == "Contract":
            self.pnc.metering_receipt(msg)         # signed with the contract key [V2G2-903]
        self.receipt_pending = False
        return self.build_MeteringReceiptRes("OK", now), S.CHARGING, []

    def on_WeldingDetectionReq(self, req, msg, now):
        if self.mode != "DC":
            raise Failed("FAILED_SequenceError", "WeldingDetectionReq in an AC session")
        return self.build_WeldingDetectionRes("OK", now), S.POWER_STOPPED, []

    def on_SessionStopReq(self, req, msg, now):
        if val(req.ChargingSession) == "Pause":
            self.host.pause(now)
        return self.build_SessionStopRes("OK", now), S.ENDED, []
