"""The backend seam: what a charger asks its operator's system for Plug & Charge.

Shaped like the ISO 15118 messages of OCPP 2.0.1 (mobilityhouse/ocpp
``ocpp/v201/schemas``), so that an OCPP charging station maps each call onto one OCPP
request, and so that the local implementation (:mod:`.local`) stands in for a CSMS, a
certificate provisioning service and a mobility operator on one machine:

========================  =========================================================
:meth:`Backend.authorize`  OCPP ``Authorize`` with ``idToken`` (type eMAID), the PEM
                           contract chain and/or ``iso15118CertificateHashData`` (<= 4)
:meth:`Backend.get_15118_ev_certificate`  ``Get15118EVCertificate``: the raw EXI
                           CertificateInstallationReq/UpdateReq in (base64), the EXI
                           response out (base64)
:meth:`Backend.get_certificate_status`  ``GetCertificateStatus``: OCSP request data in,
                           the DER OCSP response out (base64, ``ocspResult``)
========================  =========================================================

``certificate_status`` values are OCPP's; :data:`RESPONSE_CODE` maps them onto the
ISO 15118-2 ResponseCodes a SECC answers with.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Optional

from ..security.ocsp import OCSPRequestData

__all__ = ["Backend", "AuthorizeRequest", "AuthorizeResponse", "Get15118EVCertificateRequest",
           "Get15118EVCertificateResponse", "GetCertificateStatusRequest",
           "GetCertificateStatusResponse", "OCSPRequestData", "RESPONSE_CODE", "ISO2_NAMESPACE"]

ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"

# OCPP 2.0.1 AuthorizeCertificateStatusEnumType -> ISO 15118-2 responseCodeType
RESPONSE_CODE = {
    "Accepted": "OK",
    "SignatureError": "FAILED_SignatureError",
    "CertificateExpired": "FAILED_CertificateExpired",
    "CertificateRevoked": "FAILED_CertificateRevoked",
    "NoCertificateAvailable": "FAILED_NoCertificateAvailable",
    "CertChainError": "FAILED_CertChainError",
    "ContractCancelled": "FAILED_ContractCanceled",
}
# and back, for a local backend reporting a -2 check result
CERTIFICATE_STATUS = {v: k for k, v in RESPONSE_CODE.items()}


@dataclass
class AuthorizeRequest:
    id_token: str                                        # the eMAID (idToken.type = eMAID)
    certificate: Optional[str] = None                    # PEM contract chain (leaf first)
    iso15118_certificate_hash_data: list[OCSPRequestData] = field(default_factory=list)


@dataclass
class AuthorizeResponse:
    id_token_status: str                                 # Accepted | Blocked | Invalid | Unknown | ...
    certificate_status: Optional[str] = None             # see RESPONSE_CODE
    reason: str = ""

    @property
    def response_code(self) -> str:
        """The -2 ResponseCode for AuthorizationRes / PaymentDetailsRes."""
        if self.certificate_status not in (None, "Accepted"):
            return RESPONSE_CODE.get(self.certificate_status, "FAILED")
        return "OK" if self.id_token_status == "Accepted" else "FAILED"


@dataclass
class Get15118EVCertificateRequest:
    iso15118_schema_version: str                         # namespace of the EXI request
    action: str                                          # "Install" | "Update"
    exi_request: str                                     # base64 of the EXI V2G_Message


@dataclass
class Get15118EVCertificateResponse:
    status: str                                          # "Accepted" | "Failed"
    exi_response: str = ""                               # base64 of the EXI V2G_Message
    reason: str = ""                                     # -2 code when Failed


@dataclass
class GetCertificateStatusRequest:
    ocsp_request_data: OCSPRequestData


@dataclass
class GetCertificateStatusResponse:
    status: str                                          # "Accepted" | "Failed"
    ocsp_result: str = ""                                # base64 DER OCSPResponse
    reason: str = ""


class Backend(abc.ABC):
    """What a SECC needs from its operator's systems for Plug & Charge (async)."""

    @abc.abstractmethod
    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Authorize a contract (its chain and/or the chain's OCSP request data)."""

    @abc.abstractmethod
    async def get_15118_ev_certificate(
            self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Produce the CertificateInstallationRes / CertificateUpdateRes EXI."""

    @abc.abstractmethod
    async def get_certificate_status(
            self, request: GetCertificateStatusRequest) -> GetCertificateStatusResponse:
        """Fetch an OCSP response (for stapling or for a contract chain)."""
