"""The SECC's contract authorization service for ISO 15118-2 Plug & Charge.

Session-independent: a -2 SECC session creates one :class:`ContractAuthorization` per
V2G session and hands it the PnC requests; each method returns what goes into the
response (a ResponseCode, a GenChallenge, a signed message) and never raises for bad
input: every refusal is the standard's code, and any unexpected error inside a check is
a refusal too (nothing fails open).

=============================  ==========================================================
PaymentDetailsReq              contract chain to a held MO or V2G root ([V2G2-924]),
                               RFC 5280 subset + the -2 profile ([V2G2-885], [V2G2-009],
                               [V2G2-867], [V2G2-925], :mod:`exi.v2g.security.certs`),
                               eMAID = the leaf's CN; OK / OK_CertificateExpiresSoon with
                               a fresh 16-byte GenChallenge from ``secrets`` (128 bits,
                               >= the 120 [V2G2-825]/[V2G2-826] ask); starts the backend's
                               Authorize (OCPP, with the chain's OCSP request data)
AuthorizationReq               GenChallenge equal -> else FAILED_ChallengeInvalid; the
                               signature over the AuthorizationReq element with the contract
                               key -> else FAILED_SignatureError; then the backend's answer:
                               Ongoing while pending, its code (revoked, cancelled ...)
                               once it is in
ChargeParameterDiscoveryRes    :meth:`ContractAuthorization.sign_tariffs`: one Reference
                               per SalesTariff ([V2G2-909]: at most 4)
MeteringReceiptReq             SessionID, signature with the contract key ([V2G2-903],
                               [V2G2-904]) and the MeterInfo we issued ->
                               else FAILED_MeteringSignatureNotValid ([V2G2-481])
CertificateInstallation/       signature checked here, then relayed as raw EXI to the
UpdateReq                      backend (OCPP Get15118EVCertificate); its response passes
                               through (:meth:`certificate_request`, :meth:`certificate_result`)
=============================  ==========================================================

Requirement ids are those quoted in shared/research/iso20-pnc.md section 2 (a paraphrase
of the 2022 DIS): unverified against ISO 15118-2:2014.

Deviations (documented, see the package README): the backend's verdict (revocation,
contract cancelled) arrives in AuthorizationRes, not in PaymentDetailsRes, because
PaymentDetailsRes has no Ongoing and OCPP Authorize can take longer than the EVCC's 5 s;
an AuthorizationReq repeated after EVSEProcessing=Ongoing may come unsigned (the
iso15118 package sends an empty one) and is accepted only once a signed one in this
session has verified; SalesTariffs are signed with the MO Sub-CA 2 key, as RISE-V2G and
the iso15118 package do (the requirement that names the signer is unverified).
"""
from __future__ import annotations

import base64
import datetime as _dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

import exi
from exi.messages import iso2

from ..backend.base import (ISO2_NAMESPACE, AuthorizeRequest, Get15118EVCertificateRequest)
from ..security import certs as _certs
from ..security import installation as _inst
from ..security import ocsp as _ocsp
from ..security import xmldsig
from ..security.errors import SecurityError, SignatureError
from .calls import BackendCall

__all__ = ["SECCPnCConfig", "ContractAuthorization", "CERTIFICATE_SERVICE_ID",
           "CERTIFICATE_PARAMETER_SETS", "certificate_service", "certificate_service_parameters",
           "failed_certificate_response", "GEN_CHALLENGE_BYTES"]

GEN_CHALLENGE_BYTES = 16            # 128 bits from secrets, >= 120 ([V2G2-825], [V2G2-826])
CERTIFICATE_SERVICE_ID = 2          # ServiceCategory ContractCertificate (research 2.1)
# ServiceDetail parameter sets of the certificate service: 1 = Installation (research 2.1,
# as the iso15118 package), 2 = Update (the value RISE-V2G uses; unverified in the text)
CERTIFICATE_PARAMETER_SETS = {1: "Installation", 2: "Update"}
_RESPONSE_CODES = {c.value for c in iso2.responseCodeType}

Cert = x509.Certificate


def certificate_service() -> iso2.ServiceType:
    """The ServiceList entry a PnC SECC offers in ServiceDiscoveryRes."""
    return iso2.ServiceType(ServiceID=CERTIFICATE_SERVICE_ID, ServiceName="Certificate",
                            ServiceCategory="ContractCertificate", FreeService=True)


def certificate_service_parameters() -> iso2.ServiceParameterListType:
    """ServiceDetailRes parameters of the certificate service (Installation, Update)."""
    return iso2.ServiceParameterListType(ParameterSet=[
        iso2.ParameterSetType(ParameterSetID=k, Parameter=[
            iso2.ParameterType(Name="Service", stringValue=v)])
        for k, v in CERTIFICATE_PARAMETER_SETS.items()])


@dataclass
class SECCPnCConfig:
    """What a PnC SECC holds, shared by all its sessions.

    ``contract_roots``: the MO and V2G roots a contract chain may end at ([V2G2-924]).
    ``tariff_key``: signs SalesTariffs (None: tariffs go unsigned).  ``backend``: the
    :class:`exi.v2g.backend.Backend` the drivers run the sessions' calls on.  ``clock``: the wall
    clock certificates are checked against (the session cores keep no wall clock; this is
    the one place PnC needs it)."""

    contract_roots: Sequence[Cert]
    tariff_key: Optional[ec.EllipticCurvePrivateKey] = None
    certificate_service: bool = True
    verify_receipts: bool = True
    sales_tariff: bool = True            # a (signed) SalesTariff with each SAScheduleTuple
    backend: Any = None
    clock: Callable[[], _dt.datetime] = field(
        default=lambda: _dt.datetime.now(_dt.timezone.utc))

    @classmethod
    def from_folder(cls, folder: Union[str, Path], *, password: Optional[str] = None,
                    sign_tariffs: bool = True, **kw) -> "SECCPnCConfig":
        """From a folder written by ``exi15118 pki create --profile iso2``: trust
        ``certs/moRootCA.pem`` and ``certs/v2gRootCA.pem``; sign tariffs with
        ``private_keys/moSubCA2.key`` when present.  Pass ``backend=`` (e.g.
        ``LocalBackend.from_folder(folder)``) for the sessions' backend calls."""
        folder = Path(folder)
        roots = [x509.load_pem_x509_certificate((folder / "certs" / f"{n}.pem").read_bytes())
                 for n in ("moRootCA", "v2gRootCA") if (folder / "certs" / f"{n}.pem").exists()]
        if not roots:
            raise FileNotFoundError(f"{folder}/certs: neither moRootCA.pem nor v2gRootCA.pem")
        key = None
        key_file = folder / "private_keys" / "moSubCA2.key"
        if sign_tariffs and key_file.exists():
            key = serialization.load_pem_private_key(
                key_file.read_bytes(), password.encode() if password else None)
        return cls(roots, tariff_key=key, **kw)


def failed_certificate_response(kind: str, code: str, session_id: bytes) -> iso2.V2G_Message:
    """A CertificateInstallationRes / CertificateUpdateRes carrying ``code`` and, since
    the schema makes every part mandatory, empty placeholders (nothing signed)."""
    parts = dict(
        ResponseCode=code,
        SAProvisioningCertificateChain=iso2.CertificateChainType(Certificate=b""),
        ContractSignatureCertChain=iso2.CertificateChainType(Id="id1", Certificate=b""),
        ContractSignatureEncryptedPrivateKey=iso2.ContractSignatureEncryptedPrivateKeyType(
            Id="id2", value=b""),
        DHpublickey=iso2.DiffieHellmanPublickeyType(Id="id3", value=b""),
        eMAID=iso2.EMAIDType(Id="id4", value="0" * 14))
    if kind == "installation":
        body = iso2.BodyType(CertificateInstallationRes=iso2.CertificateInstallationResType(**parts))
    else:
        body = iso2.BodyType(CertificateUpdateRes=iso2.CertificateUpdateResType(**parts))
    return iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=session_id), Body=body)


def _code(value) -> str:
    return str(getattr(value, "value", value))


class ContractAuthorization:
    """The PnC state of one -2 session on the SECC side.

    ``token``: the randomness source of GenChallenge (``secrets.token_bytes``; tests may
    pass their own)."""

    def __init__(self, config: SECCPnCConfig, session_id: bytes, *,
                 token: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.config = config
        self.session_id = session_id
        self._token = token
        self.gen_challenge: Optional[bytes] = None
        self.chain: Optional[_certs.ChainResult] = None
        self.emaid: Optional[str] = None
        self.authorize_call: Optional[BackendCall] = None
        self.signature_verified = False
        self.reason = ""                         # why the last refusal happened (for logs)

    # --- PaymentDetails ----------------------------------------------------------------

    def payment_details(self, req: iso2.PaymentDetailsReqType) -> tuple[str, bytes]:
        """(ResponseCode, GenChallenge) for PaymentDetailsRes.  On success the backend's
        Authorize is in :attr:`authorize_call` for the driver to run."""
        self.gen_challenge = None
        self.chain = None
        self.signature_verified = False
        self.authorize_call = None
        try:
            chain = _certs.validate_chain(
                _certs.chain_from_message(req.ContractSignatureCertChain),
                self.config.contract_roots, now=self.config.clock(), purpose="contract",
                emaid=req.eMAID)
            # the backend's request is built from the peer's certificates too
            pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in chain.certificates)
            request = AuthorizeRequest(
                id_token=req.eMAID, certificate=pem,
                iso15118_certificate_hash_data=_ocsp.chain_request_data(chain.certificates, chain.root))
        except SecurityError as e:
            return self._refuse(e.response_code, str(e)), b"\x00" * GEN_CHALLENGE_BYTES
        except Exception as e:                   # never fail open
            return self._refuse("FAILED_CertChainError", f"{type(e).__name__}: {e}"), \
                b"\x00" * GEN_CHALLENGE_BYTES
        self.chain = chain
        self.emaid = req.eMAID
        self.gen_challenge = self._token(GEN_CHALLENGE_BYTES)
        self.authorize_call = BackendCall("authorize", lambda backend: backend.authorize(request))
        return chain.response_code, self.gen_challenge

    # --- Authorization -----------------------------------------------------------------

    def authorization(self, msg: iso2.V2G_Message) -> tuple[str, str]:
        """(ResponseCode, EVSEProcessing) for AuthorizationRes."""
        try:
            return self._authorization(msg)
        except Exception as e:                   # never fail open
            return self._refuse("FAILED", f"{type(e).__name__}: {e}"), "Finished"

    def _authorization(self, msg) -> tuple[str, str]:
        if self.chain is None or self.gen_challenge is None:
            return self._refuse("FAILED_SequenceError", "no accepted PaymentDetailsReq"), "Finished"
        req = msg.Body.AuthorizationReq
        signed = msg.Header is not None and msg.Header.Signature is not None
        if signed or not self.signature_verified:
            if req.GenChallenge is None or not secrets.compare_digest(
                    bytes(req.GenChallenge), self.gen_challenge):
                return self._refuse("FAILED_ChallengeInvalid",
                                    "GenChallenge is not the one of PaymentDetailsRes"), "Finished"
            try:
                xmldsig.verify_message(msg, ["AuthorizationReq"], self.chain.leaf.public_key())
            except SignatureError as e:
                return self._refuse("FAILED_SignatureError", str(e)), "Finished"
            self.signature_verified = True
        call = self.authorize_call
        if call is None or not call.finished:
            return "OK", "Ongoing"
        if call.state == "failed":
            return self._refuse("FAILED", f"backend: {call.error!r}"), "Finished"
        code = call.result.response_code
        if code != "OK":
            return self._refuse(code, f"backend: {call.result.reason or code}"), "Finished"
        return "OK", "Finished"

    @property
    def authorized(self) -> bool:
        """The contract is authorized (signature verified, the backend accepted)."""
        call = self.authorize_call
        return bool(self.signature_verified and call is not None and call.state == "done"
                    and call.result.response_code == "OK")

    # --- SalesTariff -------------------------------------------------------------------

    def sign_tariffs(self, msg: iso2.V2G_Message) -> iso2.V2G_Message:
        """Sign every SalesTariff of a ChargeParameterDiscoveryRes (Ids are given where
        missing); unchanged without a tariff key or tariffs."""
        key = self.config.tariff_key
        res = msg.Body.ChargeParameterDiscoveryRes
        schedules = res.SAScheduleList if res is not None else None
        tariffs = [t.SalesTariff for t in (schedules.SAScheduleTuple or [])
                   if t.SalesTariff is not None] if schedules is not None else []
        if key is None or not tariffs:
            return msg
        for n, tariff in enumerate(tariffs, 1):
            if not tariff.Id:
                tariff.Id = f"tariff{n}"
        return xmldsig.sign_message(msg, ["SalesTariff"] * len(tariffs), key)

    # --- MeteringReceipt ---------------------------------------------------------------

    def metering_receipt(self, msg: iso2.V2G_Message,
                         issued: Optional[iso2.MeterInfoType] = None) -> str:
        """ResponseCode for MeteringReceiptRes; ``issued``: the MeterInfo of the loop
        response that asked for the receipt (compared when given)."""
        try:
            req = msg.Body.MeteringReceiptReq
            if req.SessionID is None or bytes(req.SessionID) != bytes(self.session_id):
                return self._refuse("FAILED_MeteringSignatureNotValid",
                                    "MeteringReceiptReq names another SessionID")
            if issued is not None and req.MeterInfo != issued:
                return self._refuse("FAILED_MeteringSignatureNotValid",
                                    "MeterInfo is not the one the SECC sent [V2G2-902]")
            if not self.config.verify_receipts:
                return "OK"
            if self.chain is None:
                return self._refuse("FAILED_SequenceError", "no contract in this session")
            xmldsig.verify_message(msg, ["MeteringReceiptReq"], self.chain.leaf.public_key())
            return "OK"
        except SignatureError as e:
            return self._refuse("FAILED_MeteringSignatureNotValid", str(e))
        except Exception as e:                   # never fail open
            return self._refuse("FAILED_MeteringSignatureNotValid", f"{type(e).__name__}: {e}")

    # --- CertificateInstallation / CertificateUpdate -----------------------------------

    def certificate_request(self, msg: iso2.V2G_Message, raw: bytes) -> Union[BackendCall, str]:
        """Check the request's signature and return the backend call that produces the
        response (run it, then :meth:`certificate_result`), or a refusal code."""
        try:
            kind, _signer = _inst.verify_request(msg)
        except SecurityError as e:
            return self._refuse(e.response_code, str(e))
        except Exception as e:
            return self._refuse("FAILED", f"{type(e).__name__}: {e}")
        request = Get15118EVCertificateRequest(
            ISO2_NAMESPACE, "Install" if kind == "installation" else "Update",
            base64.b64encode(bytes(raw)).decode())
        call = BackendCall(kind, lambda backend: backend.get_15118_ev_certificate(request))
        return call

    def certificate_result(self, call: BackendCall) -> iso2.V2G_Message:
        """The CertificateInstallationRes / UpdateRes to send once ``call`` finished:
        the backend's EXI response passed through (its header SessionID set to this
        session's), or a failed response with the backend's code."""
        kind = call.what
        try:
            if call.state != "done":
                return self._failed(kind, "FAILED", f"backend: {call.error!r}")
            res = call.result
            if res.status != "Accepted":
                code = res.reason if res.reason in _RESPONSE_CODES and \
                    res.reason.startswith("FAILED") else "FAILED"
                return self._failed(kind, code, f"backend: {res.reason or res.status}")
            msg = exi.decode(base64.b64decode(res.exi_response, validate=True), "iso2")
            body = msg.Body.CertificateInstallationRes if kind == "installation" \
                else msg.Body.CertificateUpdateRes
            if body is None:
                return self._failed(kind, "FAILED", "the backend answered another message")
            msg.Header.SessionID = self.session_id
            return msg
        except Exception as e:                   # a malformed backend answer
            return self._failed(kind, "FAILED", f"{type(e).__name__}: {e}")

    # --- helpers -----------------------------------------------------------------------

    def _failed(self, kind: str, code: str, reason: str) -> iso2.V2G_Message:
        self._refuse(code, reason)
        return failed_certificate_response(kind, code, self.session_id)

    def _refuse(self, code: str, reason: str) -> str:
        self.reason = reason
        return code
