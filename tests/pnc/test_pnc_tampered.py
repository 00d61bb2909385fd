"""The -2 SECC core fed tampered Plug & Charge requests (re-encoded after the EVCC built
them, SessionPair's tamper hook): each is refused with the standard's code, never an
internal error and never accepted."""
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import exi
from exi.messages import iso2
from exi.v2g.pki import create_pki
from exi.v2g.security import xmldsig

from .test_pnc_sessions import make


@pytest.fixture(scope="module")
def stranger():
    return create_pki("iso2", ocsp_url=None)


def der(cert):
    return cert.public_bytes(Encoding.DER)


def stranger_chain(pki):
    return iso2.CertificateChainType(Id="id1", Certificate=der(pki.certs["contractLeaf"]),
                                     SubCertificates=iso2.SubCertificatesType(Certificate=[
                                         der(pki.certs["moSubCA2"]), der(pki.certs["moSubCA1"])]))


def resign(msg, name, key):
    msg.Header.Signature = None
    msg.Header = xmldsig.sign_message(msg, [name], key).Header


CASES = {
    # the Reference names an Id no element carries / the element lost its Id
    "authorization_other_id": ("AuthorizationReq", {}, "FAILED_SignatureError",
                               lambda m, s: setattr(m.Body.AuthorizationReq, "Id", "zz")),
    "receipt_without_id": ("MeteringReceiptReq", {}, "FAILED_MeteringSignatureNotValid",
                           lambda m, s: setattr(m.Body.MeteringReceiptReq, "Id", None)),
    # a chain of another MO, correctly signed with its key
    "payment_details_stranger": ("PaymentDetailsReq", {}, "FAILED_CertChainError",
                                 lambda m, s: setattr(m.Body.PaymentDetailsReq,
                                                      "ContractSignatureCertChain", stranger_chain(s))),
    # an OEM certificate of another PKI, the request signed with its key
    "installation_stranger_oem": (
        "CertificateInstallationReq", {"contract": False}, "FAILED_CertChainError",
        lambda m, s: (setattr(m.Body.CertificateInstallationReq, "OEMProvisioningCert",
                              der(s.certs["oemProvLeaf"])),
                      resign(m, "CertificateInstallationReq", s.keys["oemProvLeaf"]))),
    "update_stranger_contract": (
        "CertificateUpdateReq", {"certificate": "update"}, "FAILED_CertChainError",
        lambda m, s: (setattr(m.Body.CertificateUpdateReq, "ContractSignatureCertChain", stranger_chain(s)),
                      resign(m, "CertificateUpdateReq", s.keys["contractLeaf"]))),
}


@pytest.mark.parametrize("case", CASES)
def test_tampered_request_is_refused(pki, stranger, case):
    target, kw, code, mutate = CASES[case]
    pair, _, _ = make(pki, **kw)

    def tamper(direction, payload):
        try:            # supportedAppProtocolReq is not an iso2 message
            msg = exi.decode(payload, "iso2") if direction == "evcc->secc" else None
        except exi.DecodeError:
            return payload
        if getattr(getattr(msg, "Body", None), target, None) is None:
            return payload
        mutate(msg, stranger)
        return exi.encode(msg)
    pair.tamper = tamper
    result = pair.run()
    answer = next(e for e in pair.log if e.name == target.replace("Req", "Res"))
    assert getattr(answer.message.Body, answer.name).ResponseCode == code, result.reason
    assert not result.ok and "internal error" not in result.reason
