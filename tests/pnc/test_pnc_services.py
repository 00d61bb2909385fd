"""The session-independent Plug & Charge services: the SECC's ContractAuthorization and the
EVCC's ContractWallet, talking through real EXI bytes, with the local backend on the test
PKI.  One test per failure code the SECC answers with."""
import asyncio
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import exi
from exi.messages import iso2
from exi.v2g.backend import LocalBackend
from exi.v2g.pki import create_pki, write_pki
from exi.v2g.pnc import BackendCall, ContractAuthorization, ContractWallet, SECCPnCConfig
from exi.v2g.pnc.secc import certificate_service, certificate_service_parameters
from exi.v2g.security import SecurityError, SignatureError, installation

SID = bytes.fromhex("0102030405060708")
NOW = dt.datetime.now(dt.timezone.utc)


def wire(msg):
    """What the peer receives: the message through EXI bytes."""
    return exi.decode(exi.encode(msg), "iso2")


def body_msg(**body):
    return iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=SID), Body=iso2.BodyType(**body))


def secc_config(pki, clock=None, **kw):
    return SECCPnCConfig([pki.certs["moRootCA"], pki.certs["v2gRootCA"]],
                         tariff_key=pki.keys["moSubCA2"], clock=clock or (lambda: NOW), **kw)


def wallet(pki, clock=None, contract=True, **kw):
    creds = installation.ContractCredentials(pki.chain("contractLeaf"), pki.keys["contractLeaf"],
                                             "DEEXIC151180001") if contract else None
    return ContractWallet(v2g_roots=[pki.certs["v2gRootCA"]], mo_roots=[pki.certs["moRootCA"]],
                          contract=creds, oem_chain=pki.chain("oemProvLeaf"),
                          oem_key=pki.keys["oemProvLeaf"], clock=clock or (lambda: NOW), **kw)


def payment(auth, w):
    req = wire(body_msg(PaymentDetailsReq=w.payment_details_request())).Body.PaymentDetailsReq
    return auth.payment_details(req)


def authorize(auth, w, challenge, backend=None):
    code, processing = auth.authorization(wire(w.authorization_request(SID, challenge)))
    if processing == "Ongoing" and backend is not None:
        auth.authorize_call.run_now(backend)
        code, processing = auth.authorization(wire(body_msg(AuthorizationReq=iso2.AuthorizationReqType())))
    return code, processing


# --- PaymentDetails and Authorization ---------------------------------------------------------

def test_payment_details_then_signed_authorization(pki, backend):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    code, challenge = payment(auth, w)
    assert code == "OK" and len(challenge) == 16
    assert isinstance(auth.authorize_call, BackendCall)
    # the backend has not answered: Ongoing, the signature is already checked
    assert auth.authorization(wire(w.authorization_request(SID, challenge))) == ("OK", "Ongoing")
    assert auth.signature_verified and not auth.authorized
    auth.authorize_call.run_now(backend)
    # the iso15118 package repeats an empty AuthorizationReq after Ongoing
    assert auth.authorization(wire(body_msg(AuthorizationReq=iso2.AuthorizationReqType()))) == \
        ("OK", "Finished")
    assert auth.authorized
    # a second PaymentDetailsReq draws a new challenge
    assert payment(auth, w)[1] != challenge


def test_error_building_the_backend_request_is_a_refusal(pki, monkeypatch):
    # never fail open: an error after the chain checks leaves no challenge, no call
    from exi.v2g.pnc import secc as pnc_secc

    def broken(chain, root):
        raise ValueError("unreadable certificate")
    monkeypatch.setattr(pnc_secc._ocsp, "chain_request_data", broken)
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    code, challenge = payment(auth, w)
    assert code == "FAILED_CertChainError" and "unreadable certificate" in auth.reason
    assert auth.gen_challenge is None and auth.chain is None and auth.authorize_call is None
    assert auth.authorization(wire(w.authorization_request(SID, challenge)))[0] == "FAILED_SequenceError"


def test_gen_challenge_comes_from_secrets_and_is_never_reused(pki):
    w = wallet(pki)
    seen = {payment(ContractAuthorization(secc_config(pki), SID), w)[1] for _ in range(50)}
    assert len(seen) == 50 and all(len(c) == 16 for c in seen)


def test_wrong_challenge_is_challenge_invalid(pki, backend):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    _, challenge = payment(auth, w)
    wrong = bytes(b ^ 1 for b in challenge)
    assert authorize(auth, w, wrong, backend) == ("FAILED_ChallengeInvalid", "Finished")
    assert not auth.authorized


def test_bad_signature_is_signature_error(pki, backend):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    _, challenge = payment(auth, w)
    # signed by a key that is not the contract's
    other = wallet(pki)
    other.contract = installation.ContractCredentials(w.contract.chain, ec.generate_private_key(ec.SECP256R1()),
                                                      w.contract.emaid)
    assert authorize(auth, other, challenge, backend) == ("FAILED_SignatureError", "Finished")
    # no signature at all, right challenge: refused too (an unsigned repeat counts only
    # after a signed request verified)
    unsigned = body_msg(AuthorizationReq=iso2.AuthorizationReqType(Id="id1", GenChallenge=challenge))
    assert auth.authorization(wire(unsigned)) == ("FAILED_SignatureError", "Finished")
    # every flipped bit of the signed part or the signature is refused
    good = exi.encode(w.authorization_request(SID, challenge))
    refused = 0
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x10
        try:
            msg = exi.decode(bytes(bad), "iso2")
        except exi.DecodeError:
            refused += 1
            continue
        if msg.Header.SessionID != SID:          # the header SessionID is not signed
            continue
        fresh = ContractAuthorization(secc_config(pki), SID)
        fresh.chain, fresh.gen_challenge = auth.chain, challenge
        code, _ = fresh.authorization(msg)
        refused += code != "OK"
        assert code != "OK" or exi.encode(msg) == good, f"byte {i}"
    assert refused >= len(good) - 8


def test_authorization_before_payment_details_is_a_sequence_error(pki):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    assert auth.authorization(wire(w.authorization_request(SID, b"\x00" * 16))) == \
        ("FAILED_SequenceError", "Finished")


def test_expired_and_not_yet_valid_contract(pki):
    w = wallet(pki)
    late = ContractAuthorization(secc_config(pki, clock=lambda: NOW + dt.timedelta(days=800)), SID)
    assert payment(late, w)[0] == "FAILED_CertificateExpired"
    assert late.authorize_call is None
    early = ContractAuthorization(secc_config(pki, clock=lambda: NOW - dt.timedelta(days=1)), SID)
    assert payment(early, w)[0] == "FAILED_CertificateExpired"


def test_wrong_root_and_wrong_emaid_are_chain_errors(pki):
    other = create_pki("iso2", ocsp_url=None)
    auth = ContractAuthorization(secc_config(pki), SID)
    assert payment(auth, wallet(other))[0] == "FAILED_CertChainError"
    w = wallet(pki)
    w.contract.emaid = "DEEXIC151180002"
    assert payment(ContractAuthorization(secc_config(pki), SID), w)[0] == "FAILED_CertChainError"
    # a chain without its Sub-CAs does not reach the root
    w = wallet(pki)
    w.contract.chain = w.contract.chain[:1]
    assert payment(ContractAuthorization(secc_config(pki), SID), w)[0] == "FAILED_CertChainError"


def test_contract_expiring_soon(pki):
    soon = lambda: NOW + dt.timedelta(days=725)          # the contract leaf lives 730 days
    auth = ContractAuthorization(secc_config(pki, clock=soon), SID)
    w = wallet(pki, clock=soon)
    assert payment(auth, w)[0] == "OK_CertificateExpiresSoon"
    assert w.certificate_action() == "update"
    assert wallet(pki).certificate_action() is None
    assert wallet(pki, contract=False).certificate_action() == "installation"


@pytest.mark.parametrize("level", ["contractLeaf", "moSubCA2", "moSubCA1"])
def test_revoked_at_any_level_is_certificate_revoked(level):
    pki = create_pki("iso2", ocsp_url=None)
    backend = LocalBackend(pki)
    backend.responder.revoke(pki.certs[level])
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    code, challenge = payment(auth, w)
    assert code == "OK"                      # the chain itself is fine; the backend says revoked
    assert authorize(auth, w, challenge, backend) == ("FAILED_CertificateRevoked", "Finished")
    assert not auth.authorized


def test_cancelled_contract_and_failing_backend(pki):
    backend = LocalBackend(pki)
    backend.cancelled.add("DEEXIC151180001")
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    _, challenge = payment(auth, w)
    assert authorize(auth, w, challenge, backend) == ("FAILED_ContractCanceled", "Finished")

    class Broken(LocalBackend):
        async def authorize(self, request):
            raise ConnectionError("CSMS unreachable")

    auth = ContractAuthorization(secc_config(pki), SID)
    _, challenge = payment(auth, w)
    assert authorize(auth, w, challenge, Broken(pki)) == ("FAILED", "Finished")
    assert "CSMS unreachable" in auth.reason


def test_backend_call_that_never_answers_stays_ongoing_until_failed(pki):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    _, challenge = payment(auth, w)
    assert auth.authorization(wire(w.authorization_request(SID, challenge))) == ("OK", "Ongoing")
    auth.authorize_call.fail("driver gave up")
    assert auth.authorization(wire(body_msg(AuthorizationReq=iso2.AuthorizationReqType()))) == \
        ("FAILED", "Finished")


# --- SalesTariff and MeteringReceipt ---------------------------------------------------------

def cpd_res(n=2):
    tuples = [iso2.SAScheduleTupleType(
        SAScheduleTupleID=k,
        PMaxSchedule=iso2.PMaxScheduleType(PMaxScheduleEntry=[iso2.PMaxScheduleEntryType(
            RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=0, duration=86400),
            PMax=iso2.PhysicalValueType(Multiplier=0, Unit="W", Value=11000))]),
        SalesTariff=iso2.SalesTariffType(SalesTariffID=k, NumEPriceLevels=1, SalesTariffEntry=[
            iso2.SalesTariffEntryType(
                RelativeTimeInterval=iso2.RelativeTimeIntervalType(start=0, duration=86400),
                EPriceLevel=k)]))
        for k in range(1, n + 1)]
    return body_msg(ChargeParameterDiscoveryRes=iso2.ChargeParameterDiscoveryResType(
        ResponseCode="OK", EVSEProcessing="Finished",
        SAScheduleList=iso2.SAScheduleListType(SAScheduleTuple=tuples),
        AC_EVSEChargeParameter=iso2.AC_EVSEChargeParameterType(
            AC_EVSEStatus=iso2.AC_EVSEStatusType(NotificationMaxDelay=0, EVSENotification="None",
                                                 RCD=False),
            EVSENominalVoltage=iso2.PhysicalValueType(Multiplier=0, Unit="V", Value=230),
            EVSEMaxCurrent=iso2.PhysicalValueType(Multiplier=0, Unit="A", Value=16))))


def test_signed_sales_tariffs(pki):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    data = exi.encode(auth.sign_tariffs(cpd_res(3)))
    msg = exi.decode(data, "iso2")
    assert len(msg.Header.Signature.SignedInfo.Reference) == 3
    assert w.verify_tariffs(msg, require=True) == 3
    # a changed price level is refused
    msg.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple[1].SalesTariff. \
        SalesTariffEntry[0].EPriceLevel = 9
    with pytest.raises(SignatureError):
        w.verify_tariffs(msg)
    # signed by a key that is not the contract chain's MO Sub-CA 2
    other = ContractAuthorization(SECCPnCConfig([pki.certs["moRootCA"]],
                                                tariff_key=pki.keys["cpoSubCA2"]), SID)
    with pytest.raises(SignatureError):
        w.verify_tariffs(wire(other.sign_tariffs(cpd_res())))
    # unsigned tariffs: accepted unless required
    unsigned = wire(cpd_res())
    assert w.verify_tariffs(unsigned) == 0
    with pytest.raises(SignatureError):
        w.verify_tariffs(unsigned, require=True)


def test_signed_metering_receipt(pki):
    auth, w = ContractAuthorization(secc_config(pki), SID), wallet(pki)
    payment(auth, w)
    meter = iso2.MeterInfoType(MeterID="EXI-METER-1", MeterReading=123456, TMeter=1700000000)
    assert auth.metering_receipt(wire(w.metering_receipt(SID, meter, 1)), issued=meter) == "OK"
    other = iso2.MeterInfoType(MeterID="EXI-METER-1", MeterReading=999, TMeter=1700000000)
    assert auth.metering_receipt(wire(w.metering_receipt(SID, other, 1)), issued=meter) == \
        "FAILED_MeteringSignatureNotValid"
    assert auth.metering_receipt(wire(w.metering_receipt(b"\x09" * 8, meter, 1))) == \
        "FAILED_MeteringSignatureNotValid"
    stranger = wallet(pki)
    stranger.contract = installation.ContractCredentials(
        w.contract.chain, ec.generate_private_key(ec.SECP256R1()), w.contract.emaid)
    assert auth.metering_receipt(wire(stranger.metering_receipt(SID, meter, 1))) == \
        "FAILED_MeteringSignatureNotValid"
    unsigned = body_msg(MeteringReceiptReq=iso2.MeteringReceiptReqType(
        Id="id1", SessionID=SID, SAScheduleTupleID=1, MeterInfo=meter))
    assert auth.metering_receipt(wire(unsigned)) == "FAILED_MeteringSignatureNotValid"


# --- CertificateInstallation and CertificateUpdate -------------------------------------------

def relay(auth, request, backend):
    raw = exi.encode(request)
    call = auth.certificate_request(exi.decode(raw, "iso2"), raw)
    assert isinstance(call, BackendCall), (call, auth.reason)
    call.run_now(backend)
    return wire(auth.certificate_result(call))


def test_installation_then_update_stored_in_the_pki_folder(tmp_path):
    pki = create_pki("iso2", ocsp_url=None)
    write_pki(pki, tmp_path)
    (tmp_path / "certs" / "contractChain.pem").unlink()
    backend = LocalBackend(pki)
    w = ContractWallet.from_folder(tmp_path)
    assert w.contract is None and w.certificate_action() == "installation"
    auth = ContractAuthorization(secc_config(pki), SID)
    res = relay(auth, w.certificate_request("installation", SID), backend)
    assert res.Header.SessionID == SID
    new = w.accept_certificate_response(res, "installation")
    assert new.emaid in backend.contracts
    # stored: a new wallet from the folder has it, and pays with it
    again = ContractWallet.from_folder(tmp_path)
    assert again.contract.emaid == new.emaid and again.certificate_action() is None
    code, challenge = payment(auth, again)
    assert code == "OK"
    assert authorize(auth, again, challenge, backend) == ("OK", "Finished")
    # update with the contract key
    res = relay(auth, again.certificate_request("update", SID), backend)
    updated = again.accept_certificate_response(res, "update")
    assert updated.emaid == new.emaid and updated.chain[0] != new.chain[0]
    assert ContractWallet.from_folder(tmp_path).contract.chain[0] == updated.chain[0]


def test_certificate_request_refusals(pki, backend):
    auth = ContractAuthorization(secc_config(pki), SID)
    # the SECC checks the signature before relaying
    req = wallet(pki).certificate_request("installation", SID)
    req.Body.CertificateInstallationReq.Id = "id9"
    raw = exi.encode(req)
    assert auth.certificate_request(exi.decode(raw, "iso2"), raw) == "FAILED_SignatureError"
    # a provisioning certificate the CPS does not trust: the backend's refusal passes through
    foreign = wallet(create_pki("iso2", ocsp_url=None))
    res = relay(auth, foreign.certificate_request("installation", SID), backend)
    code = res.Body.CertificateInstallationRes.ResponseCode
    assert code.startswith("FAILED")
    exi.validate(res)                                   # schema-valid with its placeholders
    with pytest.raises(SecurityError):
        foreign.accept_certificate_response(res, "installation")
    # an update of a revoked contract
    fresh = create_pki("iso2", ocsp_url=None)
    b = LocalBackend(fresh)
    b.responder.revoke(fresh.certs["contractLeaf"])
    res = relay(ContractAuthorization(secc_config(fresh), SID),
                wallet(fresh).certificate_request("update", SID), b)
    assert res.Body.CertificateUpdateRes.ResponseCode == "FAILED_CertificateRevoked"
    exi.validate(res)

    class Broken(LocalBackend):
        async def get_15118_ev_certificate(self, request):
            raise asyncio.TimeoutError()

    res = relay(auth, wallet(pki).certificate_request("installation", SID), Broken(pki))
    assert res.Body.CertificateInstallationRes.ResponseCode == "FAILED"


def test_tampered_encrypted_key_is_refused(pki, backend):
    w = wallet(pki, contract=False)
    auth = ContractAuthorization(secc_config(pki), SID)
    res = relay(auth, w.certificate_request("installation", SID), backend)
    value = bytearray(res.Body.CertificateInstallationRes.ContractSignatureEncryptedPrivateKey.value)
    value[20] ^= 0x01
    res.Body.CertificateInstallationRes.ContractSignatureEncryptedPrivateKey.value = bytes(value)
    with pytest.raises(SignatureError):
        w.accept_certificate_response(wire(res), "installation")
    assert w.contract is None
    # correctly signed, but the encrypted key is not the certificate's: refused after decryption
    minted = backend.mint_contract("DEEXIC151180077")
    wrong = installation.ContractCredentials(minted.chain, ec.generate_private_key(ec.SECP256R1()),
                                             minted.emaid)
    res = installation.certificate_response(
        "installation", SID, contract=wrong, recipient=pki.certs["oemProvLeaf"],
        cps_chain=pki.chain("cpsLeaf"), cps_key=pki.keys["cpsLeaf"])
    with pytest.raises(SecurityError) as err:
        w.accept_certificate_response(wire(res), "installation")
    assert "KeyTransportError" in type(err.value).__name__ or "key" in str(err.value).lower()
    assert w.contract is None
    # the response opened with the wrong static key (an update key for an installation)
    with pytest.raises(SecurityError):
        wallet(pki).accept_certificate_response(
            relay(auth, w.certificate_request("installation", SID), backend), "update")


def test_certificate_service_entries_are_schema_valid():
    exi.validate(body_msg(ServiceDiscoveryRes=iso2.ServiceDiscoveryResType(
        ResponseCode="OK",
        PaymentOptionList=iso2.PaymentOptionListType(PaymentOption=["Contract", "ExternalPayment"]),
        ChargeService=iso2.ChargeServiceType(
            ServiceID=1, ServiceCategory="EVCharging", FreeService=False,
            SupportedEnergyTransferMode=iso2.SupportedEnergyTransferModeType(
                EnergyTransferMode=["AC_three_phase_core"])),
        ServiceList=iso2.ServiceListType(Service=[certificate_service()]))))
    exi.validate(body_msg(ServiceDetailRes=iso2.ServiceDetailResType(
        ResponseCode="OK", ServiceID=2, ServiceParameterList=certificate_service_parameters())))


def test_garbage_and_overlong_chains_are_chain_errors(pki):
    auth = ContractAuthorization(secc_config(pki), SID)
    req = wallet(pki).payment_details_request()
    req.ContractSignatureCertChain.Certificate = b"\x30\x03\x02\x01\x00"
    assert auth.payment_details(req)[0] == "FAILED_CertChainError"
    req = wallet(pki).payment_details_request()
    subs = req.ContractSignatureCertChain.SubCertificates.Certificate
    req.ContractSignatureCertChain.SubCertificates.Certificate = subs + subs   # 4 Sub-CAs
    assert auth.payment_details(req)[0] == "FAILED_CertChainError"
    assert "[V2G2-009]" in auth.reason
    req.ContractSignatureCertChain = None
    assert auth.payment_details(req)[0] == "FAILED_CertChainError"
    assert auth.authorize_call is None and auth.gen_challenge is None
