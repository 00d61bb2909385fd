"""Certificate installation and update through the local backend, OCSP revocation at every
level of the contract chain, the loopback OCSP responder, and the PKI folder."""
import asyncio
import base64
import datetime as dt
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

import exi
from exi.v2g.backend import (AuthorizeRequest, Get15118EVCertificateRequest,
                             GetCertificateStatusRequest, LocalBackend)
from exi.v2g.security import CertificateError, SecurityError, installation, ocsp

NS = "urn:iso:15118:2:2013:MsgDef"


def run(coro):
    return asyncio.run(coro)


def install(backend, pki):
    req = installation.installation_request(b"\x11" * 8, pki.chain("oemProvLeaf"),
                                            pki.keys["oemProvLeaf"], [pki.certs["v2gRootCA"]])
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Install", base64.b64encode(exi.encode(req)).decode())))
    assert res.status == "Accepted", res.reason
    return base64.b64decode(res.exi_response)


def open_response(data, pki, key):
    return installation.open_certificate_response(
        exi.decode(data, "iso2"), key, v2g_roots=[pki.certs["v2gRootCA"]],
        mo_roots=[pki.certs["moRootCA"]])


def pem(chain):
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)


def test_installation_then_update_then_authorization(pki, backend):
    data = install(backend, pki)
    contract = open_response(data, pki, pki.keys["oemProvLeaf"])
    assert contract.emaid in backend.contracts and len(contract.chain) == 3
    assert contract.chain[0].subject.get_attributes_for_oid(
        x509.oid.NameOID.COMMON_NAME)[0].value == contract.emaid
    # the response as the EVCC sees it: four parts signed, Ids id1..id4
    msg = exi.decode(data, "iso2")
    assert [r.URI for r in msg.Header.Signature.SignedInfo.Reference] == ["#id1", "#id2", "#id3", "#id4"]
    # update with the contract key
    req = installation.update_request(b"\x22" * 8, contract, [pki.certs["v2gRootCA"]])
    assert installation.verify_request(exi.decode(exi.encode(req), "iso2"))[0] == "update"
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Update", base64.b64encode(exi.encode(req)).decode())))
    assert res.status == "Accepted", res.reason
    new = open_response(base64.b64decode(res.exi_response), pki, contract.key)
    assert new.emaid == contract.emaid and new.chain[0] != contract.chain[0]
    # the old key cannot open an installation response meant for the OEM key
    with pytest.raises(SecurityError):
        open_response(data, pki, contract.key)
    ok = run(backend.authorize(AuthorizeRequest(new.emaid, pem(new.chain))))
    assert (ok.id_token_status, ok.certificate_status, ok.response_code) == ("Accepted", "Accepted", "OK")


def test_minted_contracts_kept_are_bounded(pki):
    # every EV that asks gets a contract: a long-running SECC keeps only the newest
    backend = LocalBackend(pki, max_contracts=2)
    emaids = [open_response(install(backend, pki), pki, pki.keys["oemProvLeaf"]).emaid
              for _ in range(3)]
    assert len(set(emaids)) == 3 and list(backend.contracts) == emaids[1:]


def test_minted_emaids_do_not_repeat_across_backends(pki):
    # `secc --workers 2` runs two backends, and a restarted SECC a new one: a running number
    # per process would give two cars the same contract ID
    first, second = LocalBackend(pki), LocalBackend(pki)
    emaids = [b._new_emaid() for b in (first, second) for _ in range(50)]
    assert len(set(emaids)) == 100
    assert all(re.fullmatch(r"DEEXIC[0-9A-Z]{8}", e) for e in emaids)     # ISO 15118-2 Annex H, 14 characters


def test_every_tampered_byte_of_a_certificate_response_is_refused(pki, backend):
    data = install(backend, pki)
    good = open_response(data, pki, pki.keys["oemProvLeaf"])
    msg = exi.decode(data, "iso2")
    refused = same = 0
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x04
        try:
            open_response(bytes(bad), pki, pki.keys["oemProvLeaf"])
        except (exi.DecodeError, SecurityError):
            refused += 1
            continue
        # accepted only when nothing but the SessionID, the (unsigned) OK code or padding
        # bits changed
        tampered = exi.decode(bytes(bad), "iso2")
        tampered.Header.SessionID = msg.Header.SessionID
        tampered.Body.CertificateInstallationRes.ResponseCode = \
            msg.Body.CertificateInstallationRes.ResponseCode
        assert exi.encode(tampered) == data, f"byte {i} accepted"
        same += 1
    assert same <= 9 and refused >= len(data) - 9
    assert good.emaid


def test_bad_requests_fail_without_a_crash(pki, backend):
    req = installation.installation_request(b"\x11" * 8, pki.chain("oemProvLeaf"),
                                            pki.keys["oemProvLeaf"], [pki.certs["v2gRootCA"]])
    req.Body.CertificateInstallationReq.Id = "other"          # signature no longer covers it
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Install", base64.b64encode(exi.encode(req)).decode())))
    assert (res.status, res.reason) == ("Failed", "FAILED_SignatureError")
    # signed by a key that is not the provisioning certificate's
    forged = installation.installation_request(b"\x11" * 8, pki.chain("oemProvLeaf"),
                                               pki.keys["seccLeaf"], [pki.certs["v2gRootCA"]])
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Install", base64.b64encode(exi.encode(forged)).decode())))
    assert res.reason == "FAILED_SignatureError"
    # a provisioning certificate from an unknown OEM: a chain error
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Install", base64.b64encode(exi.encode(installation.installation_request(
            b"\x11" * 8, pki.chain("cpsLeaf"), pki.keys["cpsLeaf"],
            [pki.certs["v2gRootCA"]]))).decode())))
    assert (res.status, res.reason) == ("Failed", "FAILED_CertChainError")
    for garbage in ("!!", base64.b64encode(b"\x80\x98\x02\x00").decode()):
        res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(NS, "Install", garbage)))
        assert res.status == "Failed"
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Update", base64.b64encode(exi.encode(req)).decode())))
    assert res.status == "Failed"


@pytest.mark.parametrize("level", [0, 1, 2])
def test_a_revoked_certificate_at_any_level_is_found(pki, level):
    backend = LocalBackend(pki)
    contract = open_response(install(backend, pki), pki, pki.keys["oemProvLeaf"])
    chain = contract.chain
    backend.responder.revoke(chain[level])
    by_chain = run(backend.authorize(AuthorizeRequest(contract.emaid, pem(chain))))
    assert by_chain.response_code == "FAILED_CertificateRevoked", by_chain.reason
    data = ocsp.chain_request_data(chain, pki.certs["moRootCA"])
    assert len(data) == 3 and data[level].serial_number == format(chain[level].serial_number, "x")
    by_hash = run(backend.authorize(AuthorizeRequest(contract.emaid, None, data)))
    assert by_hash.certificate_status == "CertificateRevoked"
    # the SECC's own check of the responses it fetched
    responses = [base64.b64decode(run(backend.get_certificate_status(
        GetCertificateStatusRequest(d))).ocsp_result) for d in data]
    with pytest.raises(CertificateError) as e:
        ocsp.check_chain(chain, pki.certs["moRootCA"], responses)
    assert e.value.response_code == "FAILED_CertificateRevoked"
    # an update with a revoked contract is refused too
    req = installation.update_request(b"\x22" * 8, contract, [pki.certs["v2gRootCA"]])
    res = run(backend.get_15118_ev_certificate(Get15118EVCertificateRequest(
        NS, "Update", base64.b64encode(exi.encode(req)).decode())))
    assert (res.status, res.reason) == ("Failed", "FAILED_CertificateRevoked")


def test_authorize_codes(pki, backend):
    contract = open_response(install(backend, pki), pki, pki.keys["oemProvLeaf"])
    chain = pem(contract.chain)
    assert run(backend.authorize(AuthorizeRequest("DEOTHER0000001", chain))).response_code == \
        "FAILED_CertChainError"
    assert run(backend.authorize(AuthorizeRequest(contract.emaid, pem(pki.chain("seccLeaf"))))
               ).certificate_status == "CertChainError"
    backend.cancelled.add(contract.emaid)
    assert run(backend.authorize(AuthorizeRequest(contract.emaid, chain))).response_code == \
        "FAILED_ContractCanceled"
    later = LocalBackend(pki, responder=backend.responder,
                         now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=800))
    assert run(later.authorize(AuthorizeRequest(contract.emaid, chain))).response_code == \
        "FAILED_CertificateExpired"
    assert run(backend.authorize(AuthorizeRequest(contract.emaid))).certificate_status == \
        "NoCertificateAvailable"
    # hash data of a chain from an issuer the backend does not know
    foreign = ocsp.chain_request_data(pki.chain("seccLeaf")[:1], pki.certs["v2gRootCA"])
    foreign[0] = ocsp.OCSPRequestData("SHA256", "00" * 32, "11" * 32, "1", "")
    assert run(backend.authorize(AuthorizeRequest(contract.emaid, None, foreign))
               ).certificate_status == "CertChainError"


def test_ocsp_responses_are_checked_strictly(pki):
    responder = ocsp.OCSPResponder([(pki.certs["moSubCA2"], pki.keys["moSubCA2"]),
                                    (pki.certs["moSubCA1"], pki.keys["moSubCA1"])])
    leaf, sub2, sub1 = pki.chain("contractLeaf")
    good = responder.response_for(leaf, sub2)
    ocsp.check_response(good, leaf, sub2)

    def refused(der, cert=leaf, issuer=sub2, **kw):
        with pytest.raises(CertificateError) as e:
            ocsp.check_response(der, cert, issuer, **kw)
        return e.value.response_code
    assert refused(good, sub2, sub1) == "FAILED_CertChainError"            # another certificate
    assert refused(responder.response_for(leaf, sub1)) == "FAILED_CertChainError"  # wrong signer
    assert refused(good, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)) == \
        "FAILED_CertChainError"                                            # past nextUpdate
    assert refused(good[:-3]) == "FAILED_CertChainError"                   # malformed
    flipped = bytearray(good)
    flipped[-10] ^= 1
    assert refused(bytes(flipped)) == "FAILED_CertChainError"              # bad signature
    assert refused(responder.respond(b"junk")) == "FAILED_CertChainError"  # malformedRequest
    # a well-formed request whose CertID hash OID is unknown: malformedRequest, not a crash
    req = bytearray(ocsp.ocsp.OCSPRequestBuilder().add_certificate(leaf, sub2, hashes.SHA1())
                    .build().public_bytes(Encoding.DER))
    sha1_oid = bytes.fromhex("06052b0e03021a")
    req[req.index(sha1_oid) + 6] = 0x1b                                    # 1.3.14.3.2.27
    assert ocsp.ocsp.load_der_ocsp_response(responder.respond(bytes(req))).response_status == \
        ocsp.ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    with pytest.raises(ValueError, match="unsupported hashAlgorithm"):
        ocsp.request_from_data(ocsp.OCSPRequestData("MD5", "00", "11", "1", ""))
    with pytest.raises(CertificateError, match="no OCSP response"):
        ocsp.check_chain([leaf, sub2], sub1, [good, None])


def test_loopback_http_responder_and_nearing_expiry(pki):
    responder = ocsp.OCSPResponder([(pki.certs["moSubCA2"], pki.keys["moSubCA2"])])
    leaf, sub2 = pki.certs["contractLeaf"], pki.certs["moSubCA2"]

    async def go():
        async with ocsp.serve(responder) as url:
            der = await ocsp.fetch(url, ocsp.build_request(leaf, sub2, nonce=b"n" * 16))
            ocsp.check_response(der, leaf, sub2)
            assert ocsp.ocsp.load_der_ocsp_response(der).extensions.get_extension_for_class(
                x509.OCSPNonce).value.nonce == b"n" * 16
            responder.revoke(leaf)
            der = await ocsp.fetch(url, ocsp.build_request(leaf, sub2))
            with pytest.raises(CertificateError) as e:
                ocsp.check_response(der, leaf, sub2)
            assert e.value.response_code == "FAILED_CertificateRevoked"
            # an issuer the responder does not serve: "unauthorized", an unusable response
            der = await ocsp.fetch(url, ocsp.build_request(sub2, pki.certs["moSubCA1"]))
            assert ocsp.ocsp.load_der_ocsp_response(der).response_status == \
                ocsp.ocsp.OCSPResponseStatus.UNAUTHORIZED
            # garbage on the HTTP side is answered, not crashed on
            r, w = await asyncio.open_connection(*url[7:].split("/")[0].split(":"))
            w.write(b"POST /ocsp HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
            assert (await r.read()).startswith(b"HTTP/1.1 400")
            w.close()
    run(go())
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=59, hours=12)
    assert ocsp.expiring(pki.chain("seccLeaf"), now=soon) == [pki.certs["seccLeaf"]]
    assert ocsp.expiring(pki.chain("contractLeaf"), now=soon) == []


def test_pki_folder_serves_the_backend_and_responder(tmp_path):
    from exi.cli.__main__ import main
    assert main(["pki", "create", "--out", str(tmp_path), "--ocsp-url",
                 "http://127.0.0.1:1/ocsp"]) == 0
    conf = json.loads((tmp_path / "ocsp" / "responder.json").read_text())
    assert "moSubCA2" in conf["issuers"] and "contractLeaf" not in conf["issuers"]
    contract = x509.load_pem_x509_certificate((tmp_path / "certs" / "contractLeaf.pem").read_bytes())
    assert ocsp.ocsp_url(contract) == "http://127.0.0.1:1/ocsp"
    # revoke the contract in the folder's list: the loaded responder and backend see it
    conf["revoked"].append({"serial": conf["serials"]["contractLeaf"],
                            "time": "2026-01-01T00:00:00+00:00", "reason": "keyCompromise"})
    (tmp_path / "ocsp" / "responder.json").write_text(json.dumps(conf))
    backend = LocalBackend.from_folder(tmp_path)
    chain = [contract] + [x509.load_pem_x509_certificate(
        (tmp_path / "certs" / f"{n}.pem").read_bytes()) for n in ("moSubCA2", "moSubCA1")]
    res = run(backend.authorize(AuthorizeRequest("DEEXIC151180001", pem(chain))))
    assert res.response_code == "FAILED_CertificateRevoked"


def test_malformed_responses_are_refusals_not_crashes(pki, backend):
    from exi.messages import iso2
    msg = exi.decode(install(backend, pki), "iso2")
    for field in ("ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID",
                  "ContractSignatureCertChain", "SAProvisioningCertificateChain"):
        broken = exi.decode(exi.encode(msg), "iso2")
        setattr(broken.Body.CertificateInstallationRes, field, None)
        with pytest.raises(SecurityError):
            installation.open_certificate_response(broken, pki.keys["oemProvLeaf"],
                                                   v2g_roots=[pki.certs["v2gRootCA"]])
    empty = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
                             Body=iso2.BodyType())
    with pytest.raises(SecurityError):
        installation.open_certificate_response(empty, pki.keys["oemProvLeaf"], v2g_roots=[])
    with pytest.raises(SecurityError):
        installation.verify_request(empty)


def test_cli_pki_ocsp_serves_the_folder(tmp_path):
    import subprocess
    import sys
    from exi.cli.__main__ import main
    assert main(["pki", "create", "--out", str(tmp_path)]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "exi", "pki", "ocsp", "--pki", str(tmp_path),
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "OCSP responder for 11 CAs at http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].strip()
        load = lambda n: x509.load_pem_x509_certificate(  # noqa: E731
            (tmp_path / "certs" / f"{n}.pem").read_bytes())
        leaf, issuer = load("seccLeaf"), load("cpoSubCA2")
        der = run(ocsp.fetch(url, ocsp.build_request(leaf, issuer)))
        ocsp.check_response(der, leaf, issuer)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("curve", ["p521", "ed448"])
def test_responder_on_the_iso20_pkis(curve):
    from exi.v2g.pki import create_pki
    p = create_pki("iso20", curve=curve, ocsp_url=None)
    responder = ocsp.OCSPResponder([(p.certs["cpoSubCA2"], p.keys["cpoSubCA2"])])
    leaf, issuer = p.certs["seccLeaf"], p.certs["cpoSubCA2"]
    der = responder.respond(ocsp.build_request(leaf, issuer))
    ocsp.check_response(der, leaf, issuer)
    responder.revoke(leaf)
    with pytest.raises(CertificateError) as e:
        ocsp.check_response(responder.response_for(leaf, issuer), leaf, issuer)
    assert e.value.response_code == "FAILED_CertificateRevoked"
