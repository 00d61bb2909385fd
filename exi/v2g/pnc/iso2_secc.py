"""Plug & Charge in the ISO 15118-2 SECC session: the part of the -2 handlers that deals
with Contract payment, used by the -2 SECC core (composition: ``core.pnc``).

When the SECC config has ``pnc`` (:class:`~exi.v2g.pnc.secc.SECCPnCConfig`) and the
connection is TLS (Plug & Charge runs only over TLS, -2 clause 7.7.4; requirement id
unverified) the core offers, through this object:

* ServiceDiscoveryRes: PaymentOption ``Contract`` before ``ExternalPayment``, the
  certificate service (ServiceID 2) in the ServiceList; ServiceDetail of service 2;
* PaymentServiceSelection(Contract) -> [CertificateInstallation/Update: the response is
  held until the backend answered (``BackendRequest(hold=True)``)] -> PaymentDetails ->
  Authorization (``Ongoing`` while the backend's Authorize runs);
* SalesTariffs in ChargeParameterDiscoveryRes, signed;
* MeteringReceiptReq checked against the contract key and the MeterInfo sent.

Every check is :class:`~exi.v2g.pnc.secc.ContractAuthorization`'s; a refusal raises the
core's ``Failed(code, reason)``: the response with that code, then the end.
"""
from __future__ import annotations

from typing import Optional

import exi
from exi.messages import iso2

from .secc import (CERTIFICATE_SERVICE_ID, ContractAuthorization, certificate_service,
                   certificate_service_parameters)

__all__ = ["SECCContractPayment", "HELD"]

HELD = None             # a handler's response that waits for a backend call (backend_done)
CHARGE_SERVICE_ID = 1


class SECCContractPayment:
    """Contract payment of one -2 SECC session.  ``host``: the core (its ``config.pnc``,
    ``tls_version``, ``session_id``; ``Failed``, ``BackendRequest``, the states ``S``)."""

    def __init__(self, host, failed, backend_request, states) -> None:
        self.host = host
        self.config = host.config.pnc
        self.Failed = failed
        self.BackendRequest = backend_request
        self.S = states
        self.selected = False                # PaymentServiceSelection(Contract) accepted
        self.auth: Optional[ContractAuthorization] = None
        self.held = None                     # (request name, BackendCall)
        self.issued_meter = None             # MeterInfo of the last loop response

    @property
    def offered(self) -> bool:
        return self.host.tls_version is not None

    def _auth(self) -> ContractAuthorization:
        if self.auth is None:
            self.auth = ContractAuthorization(self.config, self.host.session_id)
        return self.auth

    # --- ServiceDiscovery, ServiceDetail, PaymentServiceSelection -------------------------

    def services(self) -> set:
        return {CERTIFICATE_SERVICE_ID} if self.offered and self.config.certificate_service else set()

    def offer(self, res: iso2.ServiceDiscoveryResType, category) -> None:
        if not self.offered:
            return
        res.PaymentOptionList = iso2.PaymentOptionListType(PaymentOption=["Contract", "ExternalPayment"])
        if self.services() and category in (None, "ContractCertificate"):
            listed = res.ServiceList.Service if res.ServiceList is not None else []
            res.ServiceList = iso2.ServiceListType(Service=[certificate_service(), *listed])

    def service_parameters(self, service_id: int):
        return certificate_service_parameters() if service_id in self.services() else None

    def select(self, req, offered: set):
        """PaymentServiceSelectionReq with Contract: (response body, next state, events)."""
        if not self.offered:
            raise self.Failed("FAILED_PaymentSelectionInvalid",
                              "Contract payment is offered over TLS only")
        selected = req.SelectedServiceList.SelectedService if req.SelectedServiceList else []
        ids = [s.ServiceID for s in selected]
        if CHARGE_SERVICE_ID not in ids:
            raise self.Failed("FAILED_NoChargeServiceSelected", "the charge service was not selected")
        if any(i not in offered for i in ids):
            raise self.Failed("FAILED_ServiceSelectionInvalid",
                              f"selected services {ids}, offered {sorted(offered)}")
        self.selected = True
        return iso2.PaymentServiceSelectionResType(ResponseCode="OK"), self.S.PAYMENT_DETAILS, []

    # --- CertificateInstallation / CertificateUpdate ---------------------------------------

    def certificate(self, name: str, msg):
        """Check the request, hold the response for the backend: (HELD, state, events)."""
        if not self.selected:
            raise self.Failed("FAILED_SequenceError", f"{name} without Contract payment")
        call = self._auth().certificate_request(msg, exi.encode(msg))
        if isinstance(call, str):
            raise self.Failed(call, self.auth.reason)
        self.held = (name, call)
        return HELD, self.S.PAYMENT_DETAILS, [self.BackendRequest(call, hold=True)]

    def held_response(self, call):
        """(request name, response message) once the held ``call`` finished; None if the
        call is not the one held."""
        if self.held is None or self.held[1] is not call:
            return None
        name, _ = self.held
        self.held = None
        return name, self.auth.certificate_result(call)

    # --- PaymentDetails, Authorization -------------------------------------------------------

    def payment_details(self, req):
        if not self.selected:
            raise self.Failed("FAILED_SequenceError", "PaymentDetailsReq without Contract payment")
        auth = self._auth()
        code, challenge = auth.payment_details(req)
        if not code.startswith("OK"):
            raise self.Failed(code, auth.reason)
        events = [self.BackendRequest(auth.authorize_call)] if auth.authorize_call else []
        stamp = int(self.config.clock().timestamp())
        return (iso2.PaymentDetailsResType(ResponseCode=code, GenChallenge=challenge,
                                           EVSETimeStamp=stamp), self.S.AUTHORIZATION, events)

    def authorization(self, msg):
        code, processing = self._auth().authorization(msg)
        if not code.startswith("OK"):
            raise self.Failed(code, self.auth.reason)
        nxt = self.S.AUTHORIZATION if processing == "Ongoing" else self.S.CHARGE_PARAMETER_DISCOVERY
        return iso2.AuthorizationResType(ResponseCode="OK", EVSEProcessing=processing), nxt, []

    # --- SalesTariff, MeteringReceipt -----------------------------------------------------

    def add_tariffs(self, schedules: iso2.SAScheduleListType) -> None:
        """A flat SalesTariff per schedule (signed in :meth:`finish`)."""
        if not (self.selected and self.config.sales_tariff):
            return
        for n, t in enumerate(schedules.SAScheduleTuple or [], 1):
            t.SalesTariff = iso2.SalesTariffType(
                Id=f"tariff{n}", SalesTariffID=n, NumEPriceLevels=1,
                SalesTariffEntry=[iso2.SalesTariffEntryType(
                    RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=0), EPriceLevel=1)])

    def finish(self, msg):
        """The response message before it is encoded: SalesTariffs get signed."""
        if self.selected and msg.Body.ChargeParameterDiscoveryRes is not None:
            self._auth().sign_tariffs(msg)
        return msg

    def metering_receipt(self, msg) -> None:
        if not self.selected:
            return
        code = self._auth().metering_receipt(msg, issued=self.issued_meter)
        if code != "OK":
            raise self.Failed(code, self.auth.reason)
