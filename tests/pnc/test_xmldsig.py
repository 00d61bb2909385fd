"""XML signatures over EXI fragments, checked against RISE-V2G's test data and against
signatures RISE-V2G made in real sessions (dsV2Gshark captures)."""
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import exi
from exi.messages import iso2
from exi.v2g.security import SignatureError, certs, xmldsig
from exi.v2g.security.installation import SIGNED_PARTS

from .conftest import load_jsonl

RISE = load_jsonl("rise_v2g_signature_testdata.jsonl")
SIGNED = load_jsonl("rise_v2g_signed_messages.jsonl")


def _groups():
    """The two RISE-V2G data sets: four fragments followed by their SignedInfo."""
    out, frags = [], []
    for row in RISE:
        if row["message"] == "SignedInfo":
            out.append((frags, row))
            frags = []
        else:
            frags.append(row)
    return out


def test_rise_fragments_reencode_and_digest_as_their_signed_info_says():
    (good, good_info), (empty_ns, empty_info) = _groups()
    # MsgBody namespace (the correct one): our fragment encoding reproduces the bytes
    refs = {}
    for row in good:
        data = bytes.fromhex(row["exi_hex"])
        (element,) = exi.decode_fragment(data, "iso2")
        item = xmldsig.SignedElement(element, row["message"])
        assert exi.encode_fragment(element, schema="iso2") == data
        refs["#" + element.Id] = xmldsig.digest(item)
        assert refs["#" + element.Id] == hashlib.sha256(data).digest()
    (info,) = exi.decode_fragment(bytes.fromhex(good_info["exi_hex"]), "xmldsig")
    assert {r.URI: r.DigestValue for r in info.Reference} == refs
    assert [r.URI for r in info.Reference] == ["#id2", "#id1", "#id4", "#id3"]
    # SignedInfo built from the (Id, digest) pairs is RISE-V2G's SignedInfo, byte for byte
    built = xmldsig.signed_info([(r.URI[1:], r.DigestValue) for r in info.Reference])
    assert xmldsig.signed_info_bytes(built).hex() == good_info["exi_hex"]
    # the empty-namespace variant: digests are over its (schema-deviating) bytes
    (info2,) = exi.decode_fragment(bytes.fromhex(empty_info["exi_hex"]), "xmldsig")
    digests = sorted(hashlib.sha256(bytes.fromhex(r["exi_hex"])).digest() for r in empty_ns)
    assert sorted(r.DigestValue for r in info2.Reference) == digests
    assert xmldsig.signed_info_bytes(info2).hex() == empty_info["exi_hex"]


def _signer_keys():
    """Walk the captured sessions; yield (message, signed names, signer public key)."""
    contract = None
    for row in SIGNED:
        msg = exi.decode(bytes.fromhex(row["exi_hex"]), "iso2")
        name = row["message"]
        body = getattr(msg.Body, name)
        if name == "PaymentDetailsReq":
            contract = certs.chain_from_message(body.ContractSignatureCertChain)[0]
        elif name in ("AuthorizationReq", "MeteringReceiptReq"):
            yield row, msg, [name], contract.public_key()
        elif name == "CertificateInstallationReq":
            yield row, msg, [name], certs.load_certificates(body.OEMProvisioningCert)[0].public_key()
        elif name == "CertificateUpdateReq":
            yield row, msg, [name], certs.chain_from_message(
                body.ContractSignatureCertChain)[0].public_key()
        else:
            sa = certs.chain_from_message(body.SAProvisioningCertificateChain)[0]
            yield row, msg, list(SIGNED_PARTS), sa.public_key()


def test_rise_v2g_signatures_from_real_sessions_verify():
    seen = []
    for row, msg, names, key in _signer_keys():
        xmldsig.verify_message(msg, names, key)
        seen.append(row["message"])
        # and they re-encode to the captured bytes, so the digests are over the same bytes
        assert exi.encode(msg).hex() == row["exi_hex"]
    assert sorted(set(seen)) == ["AuthorizationReq", "CertificateInstallationReq",
                                 "CertificateInstallationRes", "CertificateUpdateReq",
                                 "CertificateUpdateRes", "MeteringReceiptReq"]
    assert len(seen) == 10


@pytest.mark.parametrize("name, masks", [("AuthorizationReq", (0x01, 0x80)),
                                         ("CertificateUpdateRes", (0x10,))])
def test_every_tampered_byte_of_a_real_signed_message_is_refused(name, masks):
    row, msg, names, key = next(t for t in _signer_keys() if t[0]["message"] == name)
    data = bytes.fromhex(row["exi_hex"])
    refused = unchanged = in_sa_chain = 0
    for i in range(len(data)):
        for mask in masks:
            bad = bytearray(data)
            bad[i] ^= mask
            try:
                tampered = exi.decode(bytes(bad), "iso2")
            except exi.DecodeError:
                refused += 1
                continue
            try:
                xmldsig.verify_message(tampered, names, key)
            except SignatureError:
                refused += 1
                continue
            tampered.Header.SessionID = msg.Header.SessionID
            if exi.encode(tampered) == data:
                unchanged += 1      # padding bits, or the SessionID the session compares
                continue
            # the unsigned parts left: the SA provisioning chain, which the EVCC validates
            # up to its V2G root (test_installation tampers with every byte of a whole
            # response on our PKI, root included), and the ResponseCode
            body, ok = getattr(tampered.Body, name), getattr(msg.Body, name)
            body.SAProvisioningCertificateChain = ok.SAProvisioningCertificateChain
            body.ResponseCode = ok.ResponseCode
            assert exi.encode(tampered) == data, f"byte {i} mask {mask:#x}"
            in_sa_chain += 1
    assert refused + in_sa_chain > 0.9 * len(masks) * len(data)
    assert unchanged <= len(masks) * 9  # SessionID (8 bytes) and the last byte's padding


def test_sign_and_verify_with_the_test_pki(pki):
    key = pki.keys["contractLeaf"]
    msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
                           Body=iso2.BodyType(AuthorizationReq=iso2.AuthorizationReqType(
                               Id="ID1", GenChallenge=b"\x07" * 16)))
    xmldsig.sign_message(msg, ["AuthorizationReq"], key)
    again = exi.decode(exi.encode(msg), "iso2")
    xmldsig.verify_message(again, ["AuthorizationReq"], key.public_key())
    sig = again.Header.Signature
    assert len(sig.SignatureValue.value) == 64
    assert sig.SignedInfo.SignatureMethod.Algorithm == xmldsig.ECDSA_SHA256
    # another key, another challenge: refused
    with pytest.raises(SignatureError):
        xmldsig.verify_message(again, ["AuthorizationReq"], pki.keys["seccLeaf"].public_key())
    again.Body.AuthorizationReq.GenChallenge = b"\x08" * 16
    with pytest.raises(SignatureError, match="digest"):
        xmldsig.verify_message(again, ["AuthorizationReq"], key.public_key())


def _signed_parts(pki, n=4):
    els = [iso2.DiffieHellmanPublickeyType(Id=f"id{i}", value=bytes([4]) + bytes(64))
           for i in range(n)]
    return [xmldsig.SignedElement(e, "DHpublickey") for e in els]


def test_profile_violations_are_refused(pki):
    key = pki.keys["cpsLeaf"]
    items = _signed_parts(pki)
    sig = xmldsig.sign(items, key)
    xmldsig.verify(sig, items, key.public_key())

    def refused(mutate, match, check_items=items):
        s = exi.decode_fragment(exi.encode_fragment(sig, schema="iso2", name="Signature"),
                                "iso2")[0]
        mutate(s)
        with pytest.raises(SignatureError, match=match):
            xmldsig.verify(s, check_items, key.public_key())

    refused(lambda s: setattr(s, "KeyInfo", iso2.KeyInfoType(content=[exi.ElementValue("KeyName", "x")])), "KeyInfo")
    refused(lambda s: setattr(s.SignedInfo, "Id", "si"), "@Id")
    refused(lambda s: setattr(s.SignedInfo.SignatureMethod, "content",
                              [exi.ElementValue("HMACOutputLength", 8)]), "SignatureMethod")
    refused(lambda s: setattr(s.SignedInfo.SignatureMethod, "Algorithm",
                              "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"), "SignatureMethod")
    refused(lambda s: setattr(s.SignedInfo.CanonicalizationMethod, "Algorithm",
                              "http://www.w3.org/2001/10/xml-exc-c14n#"), "Canonicalization")
    refused(lambda s: setattr(s.SignedInfo.Reference[0].Transforms.Transform[0], "Algorithm",
                              "http://www.w3.org/2000/09/xmldsig#base64"), "Transform")
    refused(lambda s: setattr(s.SignedInfo.Reference[1].DigestMethod, "Algorithm",
                              "http://www.w3.org/2000/09/xmldsig#sha1"), "DigestMethod")
    refused(lambda s: setattr(s.SignedInfo.Reference[2], "Type", "t"), "Type")
    refused(lambda s: s.SignedInfo.Reference.pop(), "does not cover")
    refused(lambda s: setattr(s.SignedInfo.Reference[3], "URI", "#id0"), "twice")
    refused(lambda s: setattr(s.SignatureValue, "value", s.SignatureValue.value[:63]), "64")
    refused(lambda s: setattr(s.SignatureValue, "value", bytes(64)), "verify|signature check")
    refused(lambda s: None, "no signed element", items[:3])       # an extra reference
    # five references are over the limit, when signing and when verifying
    five = _signed_parts(pki, 5)
    with pytest.raises(SignatureError, match="V2G2-909"):
        xmldsig.sign(five, key)
    # a signer key that is not P-256
    with pytest.raises(SignatureError, match="secp256r1"):
        xmldsig.sign(items, ec.generate_private_key(ec.SECP384R1()))
    # two elements sharing an Id cannot be told apart
    with pytest.raises(SignatureError, match="share"):
        xmldsig.sign([items[0], xmldsig.SignedElement(items[0].element, "DHpublickey")], key)


def test_verification_never_fails_open(pki, monkeypatch):
    key = pki.keys["cpsLeaf"]
    items = _signed_parts(pki, 1)
    sig = xmldsig.sign(items, key)

    def boom(item):
        raise RuntimeError("unexpected")
    monkeypatch.setattr(xmldsig, "digest", boom)
    with pytest.raises(SignatureError, match="RuntimeError"):
        xmldsig.verify(sig, items, key.public_key())
    with pytest.raises(SignatureError):
        xmldsig.verify(None, items, key.public_key())
    with pytest.raises(SignatureError):
        xmldsig.verify(sig, items, object())


def test_find_by_id_refuses_duplicates(pki):
    msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
                           Body=iso2.BodyType(MeteringReceiptReq=iso2.MeteringReceiptReqType(
                               Id="id1", SessionID=b"\x01" * 8,
                               MeterInfo=iso2.MeterInfoType(MeterID="m1"))))
    assert xmldsig.find_by_id(msg, "id1").name == "MeteringReceiptReq"
    with pytest.raises(SignatureError):
        xmldsig.find_by_id(msg, "id9")


def test_signed_sales_tariffs_in_one_signature(pki):
    """ChargeParameterDiscoveryRes: one Reference per SalesTariff (RISE-V2G and the
    iso15118 package sign them with MO Sub-CA 2), verified by the EVCC."""
    def tariff(i):
        return iso2.SalesTariffType(Id=f"tariff{i}", SalesTariffID=i, SalesTariffEntry=[
            iso2.SalesTariffEntryType(RelativeTimeInterval=iso2.RelativeTimeIntervalType(
                start=0, duration=86400), EPriceLevel=i)])
    tuples = [iso2.SAScheduleTupleType(SAScheduleTupleID=i, SalesTariff=tariff(i))
              for i in (1, 2, 3)]
    msg = iso2.V2G_Message(
        Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
        Body=iso2.BodyType(ChargeParameterDiscoveryRes=iso2.ChargeParameterDiscoveryResType(
            SAScheduleList=iso2.SAScheduleListType(SAScheduleTuple=tuples))))
    names = ["SalesTariff"] * 3
    xmldsig.sign_message(msg, names, pki.keys["moSubCA2"])
    assert [r.URI for r in msg.Header.Signature.SignedInfo.Reference] == \
        ["#tariff1", "#tariff2", "#tariff3"]
    xmldsig.verify_message(msg, names, pki.certs["moSubCA2"].public_key())
    with pytest.raises(SignatureError, match="not all found"):
        xmldsig.verify_message(msg, names[:2], pki.certs["moSubCA2"].public_key())
    tuples[1].SalesTariff.SalesTariffEntry[0].EPriceLevel = 9
    with pytest.raises(SignatureError, match="#tariff2"):
        xmldsig.verify_message(msg, names, pki.certs["moSubCA2"].public_key())
