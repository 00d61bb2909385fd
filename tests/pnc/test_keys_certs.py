"""Contract key transport and chain validation with the -2 response codes."""
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exi.v2g import pki as P
from exi.v2g.security import CertificateError, KeyTransportError, certs, keys

NOW = dt.datetime.now(dt.timezone.utc)


# --- key transport -----------------------------------------------------------------------

def test_session_key_is_concat_kdf_sha256_with_other_info_01_55_56():
    z = bytes(range(32))
    manual = hashlib.sha256(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:16]
    assert keys.session_key(z) == manual


def test_contract_key_round_trip_and_layout(pki):
    contract, oem = pki.keys["contractLeaf"], pki.keys["oemProvLeaf"]
    dh, enc = keys.encrypt_contract_key(contract, pki.certs["oemProvLeaf"])
    assert len(dh) == 65 and dh[0] == 4 and len(enc) == 48
    got = keys.decrypt_contract_key(enc, dh, oem)
    assert got.private_numbers() == contract.private_numbers()
    keys.check_key_matches(got, pki.certs["contractLeaf"])
    # fresh IV and ephemeral key each time
    dh2, enc2 = keys.encrypt_contract_key(contract, pki.certs["oemProvLeaf"])
    assert dh2 != dh and enc2[:16] != enc[:16]


def test_contract_key_refusals(pki):
    contract, oem = pki.keys["contractLeaf"], pki.keys["oemProvLeaf"]
    dh, enc = keys.encrypt_contract_key(contract, pki.certs["oemProvLeaf"])
    # the wrong static key decrypts to garbage that is not the certificate's key
    wrong = keys.decrypt_contract_key(enc, dh, pki.keys["seccLeaf"])
    with pytest.raises(KeyTransportError, match="V2G2-823"):
        keys.check_key_matches(wrong, pki.certs["contractLeaf"])
    # a flipped ciphertext bit: CBC decrypts, the match check refuses
    bad = bytearray(enc)
    bad[20] ^= 1
    with pytest.raises(KeyTransportError):
        keys.check_key_matches(keys.decrypt_contract_key(bytes(bad), dh, oem),
                               pki.certs["contractLeaf"])
    with pytest.raises(KeyTransportError, match="48"):
        keys.decrypt_contract_key(enc[:47], dh, oem)
    with pytest.raises(KeyTransportError, match="uncompressed"):
        keys.decrypt_contract_key(enc, b"\x02" + dh[1:33], oem)
    with pytest.raises(KeyTransportError, match="not a point"):
        keys.decrypt_contract_key(enc, b"\x04" + bytes(64), oem)
    with pytest.raises(KeyTransportError, match="secp256r1"):
        keys.encrypt_contract_key(contract, ec.generate_private_key(ec.SECP384R1()).public_key())


# --- chain validation ----------------------------------------------------------------------

def _name(cn, dc):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc)])


def make_chain(*, leaf_days=(-1, 700), sub_kinds=("sub1", "sub2"), leaf_kind="leaf",
               leaf_cn="DEEXIC15118TEST", leaf_dc="MO", curve="p256", usage=None,
               root_days=(-1, 3650)):
    """root, [Sub-CAs...], leaf with the given twists; returns (chain leaf-first, root)."""
    def window(days):
        return NOW + dt.timedelta(days=days[0]), NOW + dt.timedelta(days=days[1])
    rk = P.new_key("p256")
    root = P.issue(_name("Root", "MO"), rk, issuer=None, issuer_key=rk, kind="root",
                   not_before=window(root_days)[0], not_after=window(root_days)[1])
    issuer, ikey, chain = root, rk, []
    for i, kind in enumerate(sub_kinds):
        k = P.new_key("p256")
        c = P.issue(_name(f"Sub{i}", "MO"), k, issuer=issuer, issuer_key=ikey, kind=kind,
                    not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=1000))
        chain.insert(0, c)
        issuer, ikey = c, k
    lk = P.new_key(curve)
    leaf = P.issue(_name(leaf_cn, leaf_dc), lk, issuer=issuer, issuer_key=ikey, kind=leaf_kind,
                   usage=usage or {"digital_signature", "key_agreement"},
                   not_before=window(leaf_days)[0], not_after=window(leaf_days)[1])
    return [leaf, *chain], root


def code(chain, roots, **kw):
    try:
        return certs.validate_chain(chain, roots, now=NOW, **kw).response_code
    except CertificateError as e:
        return e.response_code


def test_the_test_pki_chains_validate(pki):
    c = certs.validate_chain(pki.chain("contractLeaf"), [pki.certs["moRootCA"]], now=NOW,
                             emaid="DE-EXI-C15118000-1")
    assert c.response_code == "OK" and c.root is pki.certs["moRootCA"]
    assert c.common_name == "DEEXIC151180001"
    s = certs.validate_chain(pki.chain("seccLeaf"), [pki.certs["v2gRootCA"]], now=NOW,
                             purpose="secc")
    assert s.leaf is pki.certs["seccLeaf"]
    # round trip through the message type
    msg = certs.chain_to_message(pki.chain("contractLeaf"))
    assert certs.chain_from_message(msg) == pki.chain("contractLeaf")


def test_response_codes():
    good, root = make_chain()
    assert code(good, [root]) == "OK"
    soon, r = make_chain(leaf_days=(-1, 10))
    assert code(soon, [r]) == "OK_CertificateExpiresSoon"
    old, r = make_chain(leaf_days=(-30, -1))
    assert code(old, [r]) == "FAILED_CertificateExpired"
    future, r = make_chain(leaf_days=(2, 30))
    assert code(future, [r]) == "FAILED_CertificateExpired"
    root_expired, r = make_chain(root_days=(-30, -1))
    assert code(root_expired, [r]) == "FAILED_CertificateExpired"
    # wrong root, no root, extra Sub-CA, missing link
    other = make_chain()[1]
    assert code(good, [other]) == "FAILED_CertChainError"
    assert code(good, []) == "FAILED_CertChainError"
    three, r = make_chain(sub_kinds=("root", "sub1", "sub2"))
    assert code(three, [r]) == "FAILED_CertChainError"
    assert code([good[0], good[2]], [root]) == "FAILED_CertChainError"
    # pathLen: a Sub-CA with pathLen 0 issuing a further Sub-CA
    deep, r = make_chain(sub_kinds=("sub2", "sub2"))
    with pytest.raises(CertificateError, match="pathLenConstraint") as e:
        certs.validate_chain(deep, [r], now=NOW)
    assert e.value.response_code == "FAILED_CertChainError"
    # a CA as leaf, a leaf as CA, a leaf without digitalSignature
    ca_leaf, r = make_chain(sub_kinds=("sub1",), leaf_kind="sub2")
    assert code(ca_leaf, [r]) == "FAILED_CertChainError"
    leaf_as_ca, r = make_chain(sub_kinds=("sub1", "leaf"))
    assert code(leaf_as_ca, [r]) == "FAILED_CertChainError"
    no_sig, r = make_chain(usage={"key_agreement"})
    assert code(no_sig, [r]) == "FAILED_CertChainError"
    no_ka, r = make_chain(usage={"digital_signature"})
    assert code(no_ka, [r], key_agreement=True) == "FAILED_CertChainError"
    # eMAID, domainComponent, curve
    assert code(good, [root], emaid="DE-EXI-C15118TEST") == "OK"
    assert code(good, [root], emaid="DEEXIC15118XXXX") == "FAILED_CertChainError"
    cpo, r = make_chain(leaf_dc="CPO")
    assert code(cpo, [r]) == "FAILED_CertChainError"
    assert code(cpo, [r], purpose="secc") == "OK"
    p384, r = make_chain(curve="p384")
    assert code(p384, [r]) == "FAILED_CertChainError"
    # structure errors win over expiry: a wrong chain is a chain error even when expired
    old_wrong, _ = make_chain(leaf_days=(-30, -1))
    assert code(old_wrong, [other]) == "FAILED_CertChainError"


def test_garbage_certificates_are_chain_errors():
    with pytest.raises(CertificateError) as e:
        certs.load_certificates(b"\x30\x03\x02\x01\x00")
    assert e.value.response_code == "FAILED_CertChainError"
    with pytest.raises(CertificateError):
        certs.chain_from_message(None)


def test_rise_v2g_chains_validate_when_they_were_valid():
    """RISE-V2G's own test certificates (an independent PKI) at dates inside and outside
    their validity."""
    import json
    from .conftest import DATA
    pems = json.loads((DATA / "rise_v2g_certificates.json").read_text())["certificates"]
    c = {k: x509.load_pem_x509_certificate(v.encode()) for k, v in pems.items()}
    cps = [c["cpsLeafCert"], c["cpsSubCA2"], c["cpsSubCA1"]]

    def at(day):
        return dt.datetime.fromisoformat(day + "T12:00:00+00:00")
    ok = certs.validate_chain(cps, [c["v2gRootCA"]], now=at("2017-09-01"), purpose="cps")
    assert ok.response_code == "OK" and ok.root is c["v2gRootCA"]
    assert certs.validate_chain(cps, [c["v2gRootCA"]], now=at("2017-11-15"),
                                purpose="cps").response_code == "OK_CertificateExpiresSoon"
    with pytest.raises(CertificateError) as e:
        certs.validate_chain(cps, [c["v2gRootCA"]], now=at("2018-01-01"), purpose="cps")
    assert e.value.response_code == "FAILED_CertificateExpired"
    # the MO root is not published there: anchor at MO Sub-CA 1 (pathLen 1), eMAID written
    # with and without separators
    contract = [c["contractCert"], c["moSubCA2"]]
    got = certs.validate_chain(contract, [c["moSubCA1"]], now=at("2018-06-01"),
                               emaid="DEABCC123ABC56", key_agreement=True)
    assert got.common_name == "DE-ABC-C123ABC56"
    with pytest.raises(CertificateError) as e:
        certs.validate_chain(contract, [c["v2gRootCA"]], now=at("2018-06-01"))
    assert e.value.response_code == "FAILED_CertChainError"
