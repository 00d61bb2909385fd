"""ISO 15118-2 Plug & Charge sessions, our EVCC against our SECC in memory (SessionPair,
the link flagged TLS 1.2) with the local backend on the test PKI: installation, update,
authorization (Ongoing while the backend answers), signed SalesTariffs, signed
MeteringReceipts, and each failure code end to end."""
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from exi.v2g.backend import LocalBackend
from exi.v2g.pki import create_pki
from exi.v2g.pnc import ContractWallet, SECCPnCConfig
from exi.v2g.security import installation
from exi.v2g.session.evcc import EVCCConfig
from exi.v2g.session.secc import SECCConfig
from exi.v2g.session.testing import SessionPair

EMAID = "DEEXIC151180001"


def make(pki, *, contract=True, mode="ac", certificate=None, secc_kw=None, evcc_kw=None,
         backend=None, tls="TLSv1.2", backend_delay=0.0, wallet=None):
    backend = backend or LocalBackend(pki)
    pnc = SECCPnCConfig([pki.certs["moRootCA"], pki.certs["v2gRootCA"]],
                        **{"tariff_key": pki.keys["moSubCA2"], "backend": backend, **(secc_kw or {})})
    if wallet is None:
        creds = installation.ContractCredentials(pki.chain("contractLeaf"), pki.keys["contractLeaf"],
                                                 EMAID) if contract else None
        wallet = ContractWallet(v2g_roots=[pki.certs["v2gRootCA"]], mo_roots=[pki.certs["moRootCA"]],
                                contract=creds, oem_chain=pki.chain("oemProvLeaf"),
                                oem_key=pki.keys["oemProvLeaf"])
    evcc = EVCCConfig(**{"protocols": ("iso2",), "mode": mode, "max_charge_loops": 4,
                         "payment": "contract", "wallet": wallet, "certificate": certificate,
                         **(evcc_kw or {})})
    secc = SECCConfig(protocols=("iso2",), pnc=pnc, receipt_required=True, receipt_every=2)
    pair = SessionPair(evcc, secc, tls_version=tls, backend=backend, backend_delay=backend_delay)
    return pair, wallet, backend


@pytest.mark.parametrize("mode", ["ac", "dc"])
def test_contract_session(pki, mode):
    pair, wallet, _ = make(pki, mode=mode)
    result = pair.run()
    assert result.ok, result.reason
    names = pair.requests()
    assert names[:6] == ["supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq",
                         "ServiceDetailReq", "PaymentServiceSelectionReq", "PaymentDetailsReq"] or \
        "PaymentDetailsReq" in names
    assert "AuthorizationReq" in names and "MeteringReceiptReq" in names
    # the tariffs came signed, the receipts went signed
    cpd = next(e for e in pair.log if e.name == "ChargeParameterDiscoveryRes")
    assert cpd.message.Header.Signature is not None
    receipt = next(e for e in pair.log if e.name == "MeteringReceiptReq")
    assert receipt.message.Header.Signature is not None
    print(pair.names())


def test_installation_session(pki):
    pair, wallet, backend = make(pki, contract=False)
    result = pair.run()
    assert result.ok, result.reason
    assert "CertificateInstallationReq" in pair.requests()
    assert wallet.contract.emaid in backend.contracts


def test_update_session(pki):
    pair, wallet, backend = make(pki, certificate="update")
    old = wallet.contract.chain[0]
    result = pair.run()
    assert result.ok, result.reason
    assert "CertificateUpdateReq" in pair.requests() and wallet.contract.chain[0] != old


def test_ongoing_while_backend_thinks(pki):
    pair, _, _ = make(pki, backend_delay=1.5)
    result = pair.run()
    assert result.ok, result.reason
    assert pair.requests().count("AuthorizationReq") > 1


def test_revoked(pki):
    p = create_pki("iso2", ocsp_url=None)
    backend = LocalBackend(p)
    backend.responder.revoke(p.certs["contractLeaf"])
    pair, _, _ = make(p, backend=backend)
    result = pair.run()
    assert not result.ok and result.response_code == "FAILED_CertificateRevoked", result


def wallet_of(pki, cls=ContractWallet, key=None):
    return cls(v2g_roots=[pki.certs["v2gRootCA"]], mo_roots=[pki.certs["moRootCA"]],
               contract=installation.ContractCredentials(
                   pki.chain("contractLeaf"), key or pki.keys["contractLeaf"], EMAID),
               oem_chain=pki.chain("oemProvLeaf"), oem_key=pki.keys["oemProvLeaf"])


def failed(pair):
    result = pair.run()
    assert not result.ok
    return result


def test_expired_contract(pki):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=800)
    pair, _, _ = make(pki, secc_kw={"clock": lambda: later})
    assert failed(pair).response_code == "FAILED_CertificateExpired"


def test_contract_of_an_untrusted_root(pki):
    pair, _, _ = make(pki, wallet=wallet_of(create_pki("iso2", ocsp_url=None)))
    assert failed(pair).response_code == "FAILED_CertChainError"


def test_authorization_signed_with_another_key(pki):
    pair, _, _ = make(pki, wallet=wallet_of(pki, key=ec.generate_private_key(ec.SECP256R1())))
    assert failed(pair).response_code == "FAILED_SignatureError"


def test_authorization_over_another_challenge(pki):
    class Liar(ContractWallet):
        def authorization_request(self, session_id, gen_challenge):
            return super().authorization_request(session_id, bytes(16))
    pair, _, _ = make(pki, wallet=wallet_of(pki, Liar))
    assert failed(pair).response_code == "FAILED_ChallengeInvalid"


def test_receipt_signed_with_another_key(pki):
    class Forger(ContractWallet):
        def metering_receipt(self, session_id, meter_info, tuple_id=None):
            real = self.contract
            self.contract = installation.ContractCredentials(
                real.chain, ec.generate_private_key(ec.SECP256R1()), real.emaid)
            try:
                return super().metering_receipt(session_id, meter_info, tuple_id)
            finally:
                self.contract = real
    pair, _, _ = make(pki, wallet=wallet_of(pki, Forger))
    assert failed(pair).response_code == "FAILED_MeteringSignatureNotValid"


def test_tariffs_signed_by_a_stranger_end_the_session(pki):
    other = create_pki("iso2", ocsp_url=None)
    pair, _, _ = make(pki, secc_kw={"tariff_key": other.keys["moSubCA2"]})
    result = failed(pair)
    assert "SalesTariff signature refused" in result.reason


def test_unsigned_tariffs_only_when_allowed(pki):
    pair, _, _ = make(pki, secc_kw={"tariff_key": None})
    assert pair.run().ok
    pair, _, _ = make(pki, secc_kw={"tariff_key": None}, evcc_kw={"require_signed_tariffs": True})
    assert "SalesTariffs without a signature" in failed(pair).reason


def test_cancelled_contract(pki):
    backend = LocalBackend(pki)
    backend.cancelled.add(EMAID)
    pair, _, _ = make(pki, backend=backend)
    assert failed(pair).response_code == "FAILED_ContractCanceled"


def test_tampered_encrypted_key_is_refused_by_the_evcc(pki):
    import base64
    import exi

    class Tamper(LocalBackend):
        async def get_15118_ev_certificate(self, request):
            res = await super().get_15118_ev_certificate(request)
            msg = exi.decode(base64.b64decode(res.exi_response), "iso2")
            body = msg.Body.CertificateInstallationRes
            value = bytearray(body.ContractSignatureEncryptedPrivateKey.value)
            value[-1] ^= 1
            body.ContractSignatureEncryptedPrivateKey.value = bytes(value)
            res.exi_response = base64.b64encode(exi.encode(msg)).decode()
            return res
    pair, wallet, _ = make(pki, contract=False, backend=Tamper(pki))
    result = failed(pair)
    assert "CertificateInstallationRes refused (FAILED_SignatureError)" in result.reason
    assert wallet.contract is None


def test_installation_refused_by_the_backend(pki):
    foreign = create_pki("iso2", ocsp_url=None)        # an OEM the CPS does not know
    w = ContractWallet(v2g_roots=[pki.certs["v2gRootCA"]], mo_roots=[pki.certs["moRootCA"]],
                       oem_chain=foreign.chain("oemProvLeaf"), oem_key=foreign.keys["oemProvLeaf"])
    pair, _, _ = make(pki, wallet=w)
    assert failed(pair).response_code == "FAILED_CertChainError"


def test_plain_tcp_has_no_contract_payment(pki):
    pair, _, _ = make(pki, tls=None)
    result = failed(pair)
    assert "runs over TLS only" in result.reason
    # the SECC offers only ExternalPayment there, and an EIM EVCC charges
    pair, _, _ = make(pki, tls=None, evcc_kw={"payment": "external"})
    assert pair.run().ok
    sd = next(e for e in pair.log if e.name == "ServiceDiscoveryRes")
    assert [getattr(o, "value", o) for o in sd.message.Body.ServiceDiscoveryRes.PaymentOptionList.PaymentOption] == ["ExternalPayment"]


def test_eim_over_tls_next_to_pnc(pki):
    pair, _, _ = make(pki, evcc_kw={"payment": "external"})
    assert pair.run().ok
    assert "PaymentDetailsReq" not in pair.requests()


def test_secc_says_expires_soon_and_the_wallet_plans_an_update(pki):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=725)   # the contract lives 730
    pair, wallet, _ = make(pki, secc_kw={"clock": lambda: later})
    assert pair.run().ok
    res = next(e for e in pair.log if e.name == "PaymentDetailsRes")
    assert res.message.Body.PaymentDetailsRes.ResponseCode == "OK_CertificateExpiresSoon"
    assert wallet.expires_soon and wallet.certificate_action() == "update"


def test_contract_ending_within_14_days_is_updated_first(tmp_path):
    p = create_pki("iso2", ocsp_url=None, validity={"contractLeaf": 10})
    pair, wallet, _ = make(p)
    old = wallet.contract.chain[0]
    assert pair.run().ok
    assert "CertificateUpdateReq" in pair.requests() and wallet.contract.chain[0] != old
    res = next(e for e in pair.log if e.name == "PaymentDetailsRes")
    assert res.message.Body.PaymentDetailsRes.ResponseCode == "OK"


def test_secc_refuses_contract_payment_on_plain_tcp(pki, monkeypatch):
    from exi.v2g.pnc.iso2_evcc import EVCCContractPayment
    monkeypatch.setattr(EVCCContractPayment, "choose", lambda self, options: None)  # tries anyway
    pair, _, _ = make(pki, tls=None)
    result = failed(pair)
    assert result.response_code == "FAILED_PaymentSelectionInvalid"
