"""Plug & Charge in the ISO 15118-2 EVCC session: the part of the -2 steps that deals
with Contract payment, used by the -2 EVCC core (composition: ``core.pnc``).

With ``config.payment == "contract"`` and ``config.wallet`` (a
:class:`~exi.v2g.pnc.evcc.ContractWallet`), over TLS only:

* ServiceDiscoveryRes must offer ``Contract``; the certificate service (ServiceID 2) is
  selected (ParameterSetID 1 Installation / 2 Update) when a certificate is installed or
  updated: ``config.certificate`` forces one, else the wallet decides (no contract:
  install; contract or a CA of its chain ending within 14 days, or the SECC said
  OK_CertificateExpiresSoon earlier: update);
* CertificateInstallationReq / CertificateUpdateReq (signed), the response opened and the
  new contract stored in the PKI folder; then PaymentDetailsReq, and AuthorizationReq
  signed over the SECC's GenChallenge (again, signed, while the SECC answers Ongoing);
* ChargeParameterDiscoveryRes: SalesTariff signatures checked against the MO Sub-CA 2 of
  the contract chain (a bad one ends the session; unsigned tariffs pass unless
  ``config.require_signed_tariffs``);
* MeteringReceiptReq signed with the contract key ([V2G2-903]) whenever ReceiptRequired.
"""
from __future__ import annotations

from typing import Optional

from exi.messages import iso2

from ..security.errors import SecurityError
from .secc import CERTIFICATE_PARAMETER_SETS, CERTIFICATE_SERVICE_ID

__all__ = ["EVCCContractPayment"]

_SET_OF = {v.lower(): k for k, v in CERTIFICATE_PARAMETER_SETS.items()}   # installation -> 1


class EVCCContractPayment:
    """Contract payment of one -2 EVCC session.  ``host``: the core (``config.wallet``,
    ``config.certificate``, ``tls_version``, ``session_id``)."""

    def __init__(self, host) -> None:
        self.host = host
        self.wallet = host.config.wallet
        self.kind: Optional[str] = None          # "installation" | "update" | None
        self.gen_challenge: Optional[bytes] = None
        self.installed = None                    # ContractCredentials stored in this session

    def choose(self, options: list) -> Optional[str]:
        """Why Contract payment cannot go on with these PaymentOptions (None: it can)."""
        if self.wallet is None:
            return "Contract payment needs a contract wallet (a PKI folder)"
        if self.host.tls_version is None:
            return "Contract payment (Plug & Charge) runs over TLS only"
        if "Contract" not in options:
            return f"SECC offers no Contract payment, only {options}"
        try:
            self.kind = self.wallet.certificate_action(self.host.config.certificate)
        except ValueError as e:
            return str(e)
        if self.kind is None and self.wallet.contract is None:
            return "no contract certificate, and no OEM provisioning key to install one"
        return None

    def selected_services(self, listed: list) -> list:
        """The certificate service to select besides the charge service (if any)."""
        if self.kind is None:
            return []
        if CERTIFICATE_SERVICE_ID not in listed:
            if self.host.config.certificate is not None or self.wallet.contract is None:
                return [iso2.SelectedServiceType(ServiceID=CERTIFICATE_SERVICE_ID,
                                                 ParameterSetID=_SET_OF[self.kind])]
            self.kind = None                     # an update can wait for another charger
            return []
        return [iso2.SelectedServiceType(ServiceID=CERTIFICATE_SERVICE_ID,
                                         ParameterSetID=_SET_OF[self.kind])]

    def after_selection(self):
        """The step after PaymentServiceSelectionRes: (request, build, repeat)."""
        if self.kind == "installation":
            return "CertificateInstallationReq", lambda now: None, False
        if self.kind == "update":
            return "CertificateUpdateReq", lambda now: None, False
        return self._payment_details()

    def _payment_details(self):
        return "PaymentDetailsReq", lambda now: self.wallet.payment_details_request(), False

    def finish_request(self, req: str, msg):
        """The request message before it is encoded: the PnC requests signed."""
        sid = self.host.session_id
        if req == "CertificateInstallationReq":
            return self.wallet.certificate_request("installation", sid)
        if req == "CertificateUpdateReq":
            return self.wallet.certificate_request("update", sid)
        if req == "AuthorizationReq" and self.gen_challenge is not None:
            return self.wallet.authorization_request(sid, self.gen_challenge)
        if req == "MeteringReceiptReq":
            body = msg.Body.MeteringReceiptReq
            return self.wallet.metering_receipt(sid, body.MeterInfo, body.SAScheduleTupleID)
        return msg

    def certificate_response(self, kind: str, msg):
        """(next step, None) or (None, why the response is refused)."""
        try:
            self.installed = self.wallet.accept_certificate_response(msg, kind)
        except SecurityError as e:
            return None, f"Certificate{'Installation' if kind == 'installation' else 'Update'}Res " \
                         f"refused ({e.response_code}): {e}"
        return self._payment_details(), None

    def payment_details_response(self, res):
        """(next step, None) or (None, why)."""
        code = getattr(res.ResponseCode, "value", res.ResponseCode)
        if code == "OK_CertificateExpiresSoon":
            self.wallet.expires_soon = True      # update at the next session
        if res.GenChallenge is None or len(res.GenChallenge) != 16:
            return None, "PaymentDetailsRes without a 16-byte GenChallenge"
        self.gen_challenge = bytes(res.GenChallenge)
        return ("AuthorizationReq", lambda now: iso2.AuthorizationReqType(), False), None

    def check_response(self, name: str, msg) -> Optional[str]:
        """Why a response is refused (None: accepted): SalesTariff signatures."""
        if name == "ChargeParameterDiscoveryRes":
            try:
                self.wallet.verify_tariffs(msg, require=self.host.config.require_signed_tariffs)
            except SecurityError as e:
                return f"SalesTariff signature refused: {e}"
        return None
