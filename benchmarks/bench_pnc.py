"""Plug & Charge crypto per message (ISO 15118-2), on one core:

    python -m pytest benchmarks/bench_pnc.py --benchmark-only

- sign / verify an AuthorizationReq (one Reference: EXI fragment, SHA-256, SignedInfo
  fragment, ECDSA P-256);
- verify RISE-V2G's captured CertificateUpdateRes signature (four References);
- validate a contract chain (3 signatures up to the MO root);
- open a CertificateInstallationRes as an EVCC (SA chain, signature, ECDH + ConcatKDF +
  AES-CBC, contract chain, key match);
- the local backend answering an installation request (verify, mint, encrypt, sign).
"""
import asyncio
import base64
import json
from pathlib import Path

import pytest

import exi
from exi.messages import iso2
from exi.v2g.backend import Get15118EVCertificateRequest, LocalBackend
from exi.v2g.pki import create_pki
from exi.v2g.security import certs, installation, xmldsig

DATA = Path(__file__).resolve().parents[1] / "tests" / "pnc" / "data"
PKI = create_pki("iso2", ocsp_url=None)


def _auth():
    return iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
                            Body=iso2.BodyType(AuthorizationReq=iso2.AuthorizationReqType(
                                Id="ID1", GenChallenge=b"\x07" * 16)))


def test_sign_authorization_req(benchmark):
    benchmark(xmldsig.sign_message, _auth(), ["AuthorizationReq"], PKI.keys["contractLeaf"])


def test_verify_authorization_req(benchmark):
    msg = exi.decode(exi.encode(xmldsig.sign_message(_auth(), ["AuthorizationReq"],
                                                     PKI.keys["contractLeaf"])), "iso2")
    benchmark(xmldsig.verify_message, msg, ["AuthorizationReq"],
              PKI.keys["contractLeaf"].public_key())


def test_verify_rise_v2g_certificate_update_res(benchmark):
    row = next(json.loads(line) for line in open(DATA / "rise_v2g_signed_messages.jsonl")
               if '"CertificateUpdateRes"' in line)
    msg = exi.decode(bytes.fromhex(row["exi_hex"]), "iso2")
    key = certs.chain_from_message(msg.Body.CertificateUpdateRes.SAProvisioningCertificateChain)[0]
    benchmark(xmldsig.verify_message, msg, list(installation.SIGNED_PARTS), key.public_key())


def test_validate_contract_chain(benchmark):
    benchmark(certs.validate_chain, PKI.chain("contractLeaf"), [PKI.certs["moRootCA"]])


def _install_request():
    req = installation.installation_request(b"\x11" * 8, PKI.chain("oemProvLeaf"),
                                            PKI.keys["oemProvLeaf"], [PKI.certs["v2gRootCA"]])
    return Get15118EVCertificateRequest("urn:iso:15118:2:2013:MsgDef", "Install",
                                        base64.b64encode(exi.encode(req)).decode())


def test_backend_installation(benchmark):
    backend, req = LocalBackend(PKI), _install_request()
    res = benchmark(lambda: asyncio.run(backend.get_15118_ev_certificate(req)))
    assert res.status == "Accepted"


def test_open_installation_response(benchmark):
    res = asyncio.run(LocalBackend(PKI).get_15118_ev_certificate(_install_request()))
    data = base64.b64decode(res.exi_response)
    creds = benchmark(lambda: installation.open_certificate_response(
        exi.decode(data, "iso2"), PKI.keys["oemProvLeaf"], v2g_roots=[PKI.certs["v2gRootCA"]],
        mo_roots=[PKI.certs["moRootCA"]]))
    assert creds.emaid


# --- the session services (exi.v2g.pnc) ---------------------------------------------------

def _services():
    from exi.v2g.pnc import ContractAuthorization, ContractWallet, SECCPnCConfig
    config = SECCPnCConfig([PKI.certs["moRootCA"], PKI.certs["v2gRootCA"]],
                           tariff_key=PKI.keys["moSubCA2"])
    wallet = ContractWallet(v2g_roots=[PKI.certs["v2gRootCA"]], mo_roots=[PKI.certs["moRootCA"]],
                            contract=installation.ContractCredentials(
                                PKI.chain("contractLeaf"), PKI.keys["contractLeaf"], "DEEXIC151180001"))
    return ContractAuthorization(config, b"\x01" * 8), wallet


def test_secc_payment_details(benchmark):
    """PaymentDetailsReq on the SECC: chain validation, OCSP request data, GenChallenge."""
    auth, wallet = _services()
    req = exi.decode(exi.encode(iso2.V2G_Message(
        Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
        Body=iso2.BodyType(PaymentDetailsReq=wallet.payment_details_request()))), "iso2")
    code, _ = benchmark(auth.payment_details, req.Body.PaymentDetailsReq)
    assert code == "OK"


def test_secc_authorization_signed(benchmark):
    """AuthorizationReq on the SECC: challenge and signature (backend not counted)."""
    auth, wallet = _services()
    _, challenge = auth.payment_details(wallet.payment_details_request())
    msg = exi.decode(exi.encode(wallet.authorization_request(b"\x01" * 8, challenge)), "iso2")

    def check():
        auth.signature_verified = False
        return auth.authorization(msg)
    assert benchmark(check) == ("OK", "Ongoing")


def test_backend_authorize_with_ocsp(benchmark):
    """The local backend's Authorize: chain validation and one OCSP response per certificate."""
    from exi.v2g.backend import AuthorizeRequest
    from cryptography.hazmat.primitives.serialization import Encoding
    backend = LocalBackend(PKI)
    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in PKI.chain("contractLeaf"))
    res = benchmark(lambda: asyncio.run(backend.authorize(AuthorizeRequest("DEEXIC151180001", pem))))
    assert res.response_code == "OK"


def test_secc_sign_three_tariffs(benchmark):
    auth, _ = _services()
    tuples = [iso2.SAScheduleTupleType(SAScheduleTupleID=k, SalesTariff=iso2.SalesTariffType(
        Id=f"t{k}", SalesTariffID=k, SalesTariffEntry=[iso2.SalesTariffEntryType(
            RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=0), EPriceLevel=1)]))
        for k in (1, 2, 3)]

    def sign():
        msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
                               Body=iso2.BodyType(ChargeParameterDiscoveryRes=iso2.ChargeParameterDiscoveryResType(
                                   ResponseCode="OK", EVSEProcessing="Finished",
                                   SAScheduleList=iso2.SAScheduleListType(SAScheduleTuple=tuples))))
        return auth.sign_tariffs(msg)
    assert len(benchmark(sign).Header.Signature.SignedInfo.Reference) == 3
