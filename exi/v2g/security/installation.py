"""CertificateInstallation and CertificateUpdate of ISO 15118-2, without the session.

Both sides of the exchange, as functions on ``exi.messages.iso2`` objects:

* the EVCC builds a signed request (:func:`installation_request`, signed with the OEM
  provisioning key; :func:`update_request`, signed with the current contract key; each
  request body element carries ``Id`` and is the one Reference);
* the certificate provisioning service builds the response (:func:`certificate_response`):
  it encrypts the new contract key for the vehicle (:mod:`.keys`) and signs the four
  parts ContractSignatureCertChain (``id1``), ContractSignatureEncryptedPrivateKey
  (``id2``), DHpublickey (``id3``) and eMAID (``id4``) with its leaf key, whose chain goes
  in SAProvisioningCertificateChain (not signed);
* the EVCC opens it (:func:`open_certificate_response`): SA provisioning chain to a V2G
  root, signature over exactly the four parts, decryption with its static key, contract
  chain to an MO or V2G root with the eMAID as CN, and the key matching the certificate.

The Ids and the signed parts follow RISE-V2G's signature test data (the vectors in
shared/vectors/exi_iso2.jsonl) and the iso15118 package.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from exi.messages import iso2

from . import certs as _certs
from . import keys as _keys
from . import xmldsig
from .errors import SecurityError

__all__ = ["SIGNED_PARTS", "ContractCredentials", "installation_request", "update_request",
           "certificate_response", "open_certificate_response", "verify_request",
           "root_certificate_ids"]

# element name -> Id of the four signed parts of CertificateInstallationRes/UpdateRes
SIGNED_PARTS = {"ContractSignatureCertChain": "id1", "ContractSignatureEncryptedPrivateKey": "id2",
                "DHpublickey": "id3", "eMAID": "id4"}


@dataclass
class ContractCredentials:
    """A contract: its chain (leaf, Sub-CA 2, Sub-CA 1), private key and eMAID."""

    chain: list
    key: ec.EllipticCurvePrivateKey
    emaid: str
    expires_soon: bool = False


def root_certificate_ids(roots: Sequence[x509.Certificate]) -> iso2.ListOfRootCertificateIDsType:
    """ListOfRootCertificateIDs: issuer name and serial number of each root held."""
    return iso2.ListOfRootCertificateIDsType(RootCertificateID=[
        iso2.X509IssuerSerialType(X509IssuerName=r.issuer.rfc4514_string(),
                                  X509SerialNumber=r.serial_number) for r in roots])


def _message(session_id: bytes, **body) -> iso2.V2G_Message:
    return iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=session_id),
                            Body=iso2.BodyType(**body))


def installation_request(session_id: bytes, oem_chain: Sequence[x509.Certificate],
                         oem_key: ec.EllipticCurvePrivateKey,
                         roots: Sequence[x509.Certificate], *, Id: str = "id1") -> iso2.V2G_Message:
    """A CertificateInstallationReq signed with the OEM provisioning key."""
    req = iso2.CertificateInstallationReqType(
        Id=Id, OEMProvisioningCert=oem_chain[0].public_bytes(Encoding.DER),
        ListOfRootCertificateIDs=root_certificate_ids(roots))
    msg = _message(session_id, CertificateInstallationReq=req)
    return xmldsig.sign_message(msg, ["CertificateInstallationReq"], oem_key)


def update_request(session_id: bytes, contract: ContractCredentials,
                   roots: Sequence[x509.Certificate], *, Id: str = "id1") -> iso2.V2G_Message:
    """A CertificateUpdateReq signed with the current contract key."""
    req = iso2.CertificateUpdateReqType(
        Id=Id, ContractSignatureCertChain=_certs.chain_to_message(contract.chain),
        eMAID=contract.emaid, ListOfRootCertificateIDs=root_certificate_ids(roots))
    msg = _message(session_id, CertificateUpdateReq=req)
    return xmldsig.sign_message(msg, ["CertificateUpdateReq"], contract.key)


def verify_request(msg: iso2.V2G_Message) -> tuple[str, x509.Certificate]:
    """Check the signature of a CertificateInstallationReq (with its OEM provisioning
    certificate) or CertificateUpdateReq (with its contract certificate).  Returns
    ("installation"|"update", the signer's certificate).  Trust in the signer's chain is
    the certificate provisioning service's decision (the SECC checks only the signature)."""
    try:
        return _verify_request(msg)
    except SecurityError:
        raise
    except Exception as e:                      # never fail open, never crash
        raise SecurityError(f"request refused: {type(e).__name__}: {e}",
                            "FAILED_SignatureError") from e


def _verify_request(msg: iso2.V2G_Message) -> tuple[str, x509.Certificate]:
    body = msg.Body
    if body.CertificateInstallationReq is not None:
        cert = _certs.load_certificates(body.CertificateInstallationReq.OEMProvisioningCert or b"")[0]
        xmldsig.verify_message(msg, ["CertificateInstallationReq"], cert.public_key())
        return "installation", cert
    if body.CertificateUpdateReq is not None:
        cert = _certs.chain_from_message(body.CertificateUpdateReq.ContractSignatureCertChain)[0]
        xmldsig.verify_message(msg, ["CertificateUpdateReq"], cert.public_key())
        return "update", cert
    raise SecurityError("neither CertificateInstallationReq nor CertificateUpdateReq")


def certificate_response(kind: str, session_id: bytes, *, contract: ContractCredentials,
                         recipient: x509.Certificate, cps_chain: Sequence[x509.Certificate],
                         cps_key: ec.EllipticCurvePrivateKey, response_code: str = "OK",
                         retry_counter: Optional[int] = None) -> iso2.V2G_Message:
    """The signed CertificateInstallationRes (``kind="installation"``, ``recipient`` = the
    OEM provisioning certificate) or CertificateUpdateRes (``kind="update"``,
    ``recipient`` = the old contract certificate)."""
    dh_public, encrypted = _keys.encrypt_contract_key(contract.key, recipient)
    parts = dict(
        ResponseCode=response_code,
        SAProvisioningCertificateChain=_certs.chain_to_message(cps_chain),
        ContractSignatureCertChain=_certs.chain_to_message(contract.chain, Id="id1"),
        ContractSignatureEncryptedPrivateKey=iso2.ContractSignatureEncryptedPrivateKeyType(
            Id="id2", value=encrypted),
        DHpublickey=iso2.DiffieHellmanPublickeyType(Id="id3", value=dh_public),
        eMAID=iso2.EMAIDType(Id="id4", value=contract.emaid))
    if kind == "installation":
        msg = _message(session_id, CertificateInstallationRes=iso2.CertificateInstallationResType(**parts))
    elif kind == "update":
        msg = _message(session_id, CertificateUpdateRes=iso2.CertificateUpdateResType(
            RetryCounter=retry_counter, **parts))
    else:
        raise ValueError(f"kind is 'installation' or 'update', not {kind!r}")
    return xmldsig.sign_message(msg, list(SIGNED_PARTS), cps_key)


def open_certificate_response(msg: iso2.V2G_Message, static_key: ec.EllipticCurvePrivateKey, *,
                              v2g_roots: Sequence[x509.Certificate],
                              mo_roots: Sequence[x509.Certificate] = (),
                              now: Optional[_dt.datetime] = None) -> ContractCredentials:
    """Check a CertificateInstallationRes/UpdateRes and return the new contract.

    ``static_key``: the OEM provisioning key (installation) or the old contract key
    (update).  Order: the SA provisioning chain, then the signature, and only then the
    decryption (CBC has no integrity of its own).  Raises :class:`SecurityError`
    subclasses (their ``response_code`` says why)."""
    try:
        return _open(msg, static_key, v2g_roots, mo_roots, now)
    except SecurityError:
        raise
    except Exception as e:                      # never fail open, never crash
        raise SecurityError(f"certificate response refused: {type(e).__name__}: {e}") from e


def _open(msg, static_key, v2g_roots, mo_roots, now) -> ContractCredentials:
    res = msg.Body.CertificateInstallationRes or msg.Body.CertificateUpdateRes
    if res is None:
        raise SecurityError("neither CertificateInstallationRes nor CertificateUpdateRes")
    code = getattr(res.ResponseCode, "value", res.ResponseCode)
    if str(code) not in ("OK", "OK_CertificateExpiresSoon"):
        raise SecurityError(f"the response says {code}", str(code))
    sa = _certs.validate_chain(_certs.chain_from_message(res.SAProvisioningCertificateChain),
                               v2g_roots, now=now, purpose="cps")
    xmldsig.verify_message(msg, list(SIGNED_PARTS), sa.leaf.public_key())
    if res.eMAID is None or not res.eMAID.value:
        raise SecurityError("no eMAID in the response")
    key = _keys.decrypt_contract_key(res.ContractSignatureEncryptedPrivateKey.value or b"",
                                     res.DHpublickey.value or b"", static_key)
    chain = _certs.validate_chain(_certs.chain_from_message(res.ContractSignatureCertChain),
                                  [*mo_roots, *v2g_roots], now=now, purpose="contract",
                                  emaid=res.eMAID.value)
    _keys.check_key_matches(key, chain.leaf)
    return ContractCredentials(list(chain.certificates), key, res.eMAID.value,
                               expires_soon=chain.expires_soon)


def emaid_of(cert: x509.Certificate) -> str:
    """The eMAID a contract certificate carries in its CN."""
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return values[0].value if values else ""
