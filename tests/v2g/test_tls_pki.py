"""Test PKI, the `pki create` CLI and the TLS profiles (in-process, no network)."""
from __future__ import annotations

import argparse
import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from exi.v2g import tls
from exi.v2g.pki import create_pki, issue, new_key

from .conftest import extra_leaf

CHAINS = {
    "seccLeaf": ["cpoSubCA2", "cpoSubCA1", "v2gRootCA"],
    "cpsLeaf": ["cpsSubCA2", "cpsSubCA1", "v2gRootCA"],
    "oemProvLeaf": ["oemSubCA2", "oemSubCA1", "oemRootCA"],
    "contractLeaf": ["moSubCA2", "moSubCA1", "moRootCA"],
}


@pytest.mark.parametrize("profile,curve,curve_type", [
    ("iso2", None, ec.SECP256R1), ("iso20", None, ec.SECP521R1), ("iso20", "ed448", None)])
def test_pki_structure(profile, curve, curve_type):
    pki = create_pki(profile, curve=curve)
    chains = dict(CHAINS)
    if profile == "iso20":
        chains["vehicleLeaf"] = ["oemSubCA2", "oemSubCA1", "oemRootCA"]
    else:
        assert "vehicleLeaf" not in pki.certs
    for leaf, issuers in chains.items():
        path = [leaf] + issuers
        for child, parent in zip(path, path[1:]):
            pki.certs[child].verify_directly_issued_by(pki.certs[parent])
        root = pki.certs[issuers[-1]]
        root.verify_directly_issued_by(root)
        bc = lambda n: pki.certs[n].extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc(leaf).critical and not bc(leaf).value.ca
        assert bc(issuers[0]).value.path_length == 0 and bc(issuers[1]).value.path_length == 1
        assert bc(issuers[2]).value.ca and bc(issuers[2]).value.path_length is None
        ku = pki.certs[leaf].extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
        assert pki.certs[issuers[0]].extensions.get_extension_for_class(
            x509.KeyUsage).value.key_cert_sign
        assert [c.subject for c in pki.chain(leaf)] == [pki.certs[n].subject for n in path[:3]]
    for name, cert in pki.certs.items():
        key = cert.public_key()
        if curve_type is None:
            assert isinstance(key, ed448.Ed448PublicKey), name
        else:
            assert isinstance(key.curve, curve_type), name
        # Every certificate passes the profile check that TLS peers apply to leaves
        # (leaves only: CAs are rejected as end entities).
        if name.endswith("Leaf"):
            tls.check_peer_certificate(cert, profile)
    secc = pki.certs["seccLeaf"]
    assert (secc.not_valid_after_utc - secc.not_valid_before_utc).days == 60
    assert secc.subject.get_attributes_for_oid(x509.NameOID.DOMAIN_COMPONENT)[0].value == "CPO"


def test_pki_rejects_wrong_curve_for_profile():
    with pytest.raises(ValueError):
        create_pki("iso2", curve="p521")
    with pytest.raises(ValueError):
        create_pki("iso20", curve="p256")
    with pytest.raises(ValueError):
        create_pki("iso15118-3")


def _parser():
    from exi.cli import pki as cli
    p = argparse.ArgumentParser(prog="exi15118")
    cli.register(p.add_subparsers(dest="command"))
    return p


@pytest.mark.parametrize("profile", ["iso2", "iso20"])
def test_cli_pki_create(tmp_path, profile, capsys):
    out = tmp_path / "pki"
    args = _parser().parse_args(["pki", "create", "--out", str(out), "--profile", profile])
    assert args.func(args) == 0
    assert "README.md" in capsys.readouterr().out
    readme = (out / "README.md").read_text()
    names = ["v2gRootCA", "cpoSubCA1", "cpoSubCA2", "seccLeaf", "cpsLeaf", "oemRootCA",
             "oemProvLeaf", "moRootCA", "contractLeaf"] + (["vehicleLeaf"] if profile == "iso20" else [])
    for n in names:
        pem = (out / "certs" / f"{n}.pem").read_bytes()
        der = (out / "certs" / f"{n}.der").read_bytes()
        assert x509.load_pem_x509_certificate(pem) == x509.load_der_x509_certificate(der)
        assert (out / "private_keys" / f"{n}.key").stat().st_mode & 0o077 == 0
        assert (out / "private_keys" / f"{n}.key.der").exists()
        assert f"`{n}`" in readme
    chain = x509.load_pem_x509_certificates((out / "certs" / "seccChain.pem").read_bytes())
    assert len(chain) == 3
    # A second run into the same folder refuses without --force.
    again = _parser().parse_args(["pki", "create", "--out", str(out)])
    assert again.func(again) == 1
    forced = _parser().parse_args(["pki", "create", "--out", str(out), "--force",
                                   "--password", "12345"])
    assert forced.func(forced) == 0
    assert b"ENCRYPTED" in (out / "private_keys" / "seccLeaf.key").read_bytes()


def test_cli_bad_curve(tmp_path, capsys):
    args = _parser().parse_args(["pki", "create", "--out", str(tmp_path / "x"),
                                 "--profile", "iso2", "--curve", "ed448"])
    assert args.func(args) == 2
    assert "p256" in capsys.readouterr().err


# -- TLS contexts ---------------------------------------------------------------------

def test_iso2_contexts(pki_iso2):
    s = tls.secc_context("iso2", pki_iso2 / "certs/seccChain.pem", pki_iso2 / "private_keys/seccLeaf.key")
    c = tls.evcc_context("iso2", pki_iso2 / "certs/v2gRootCA.pem")
    for ctx in (s, c):
        assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
        tls12 = [x["name"] for x in ctx.get_ciphers() if x["protocol"] == "TLSv1.2"]
        assert tls12 == ["ECDHE-ECDSA-AES128-SHA256"]
        assert not ctx.check_hostname
    assert s.verify_mode == ssl.CERT_NONE and c.verify_mode == ssl.CERT_REQUIRED


def test_iso20_contexts_need_mutual_auth(pki_iso20):
    with pytest.raises(ValueError):
        tls.secc_context("iso20", pki_iso20 / "certs/seccChain.pem", pki_iso20 / "private_keys/seccLeaf.key")
    with pytest.raises(ValueError):
        tls.evcc_context("iso20", pki_iso20 / "certs/v2gRootCA.pem")
    s = tls.secc_context("iso20", pki_iso20 / "certs/seccChain.pem",
                         pki_iso20 / "private_keys/seccLeaf.key", trust=[pki_iso20 / "certs/oemRootCA.pem"])
    assert s.minimum_version == s.maximum_version == ssl.TLSVersion.TLSv1_3
    assert s.verify_mode == ssl.CERT_REQUIRED


def _cert(curve, *, days=30, ca=False, usage=None, start=None):
    key = new_key(curve)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    start = start or dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    return issue(name, key, issuer=None, issuer_key=key, kind="root" if ca else "leaf",
                 usage=usage, not_before=start, not_after=start + dt.timedelta(days=days))


def test_check_peer_certificate():
    tls.check_peer_certificate(_cert("p256"), "iso2")
    tls.check_peer_certificate(_cert("p521"), "iso20")
    tls.check_peer_certificate(_cert("ed448"), "iso20")
    cases = [
        (_cert("p384"), "iso2", "secp256r1"),
        (_cert("p521"), "iso2", "secp256r1"),
        (_cert("p256"), "iso20", "secp521r1"),
        (_cert("p256", ca=True), "iso2", "CA"),
        (_cert("p256", usage={"key_agreement"}), "iso2", "digitalSignature"),
    ]
    for cert, profile, words in cases:
        with pytest.raises(tls.TLSPolicyError, match=words):
            tls.check_peer_certificate(cert, profile)
    c = _cert("p256", days=1)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    with pytest.raises(tls.TLSPolicyError, match="expired"):
        tls.check_peer_certificate(c, "iso2", now=later)
    with pytest.raises(tls.TLSPolicyError, match="not valid before"):
        tls.check_peer_certificate(c, "iso2", now=later - dt.timedelta(days=10))


def _handshake(sctx, cctx, profile):
    """TLS over a local socketpair (no network); returns (client result, server result)."""
    a, b = socket.socketpair()
    res = {}

    def server():
        try:
            with sctx.wrap_socket(a, server_side=True) as s:
                res["s"] = tls.describe(s)
                s.recv(1)
        except Exception as e:
            res["s"] = e
    t = threading.Thread(target=server)
    t.start()
    try:
        with cctx.wrap_socket(b) as c:
            res["c"] = (tls.describe(c), tls.check_session(c, profile))
    except Exception as e:
        res["c"] = e
    t.join(5)
    return res["c"], res["s"]


def test_local_handshake_iso2_with_keylog(pki_iso2, tmp_path):
    keylog = tmp_path / "keys.log"
    s = tls.secc_context("iso2", pki_iso2 / "certs/seccChain.pem", pki_iso2 / "private_keys/seccLeaf.key")
    c = tls.evcc_context("iso2", pki_iso2 / "certs/v2gRootCA.pem", keylog=keylog)
    (info, cert), sinfo = _handshake(s, c, "iso2")
    assert info["version"] == "TLSv1.2" and info["cipher"] == "ECDHE-ECDSA-AES128-SHA256"
    assert "DE*EXI*E15118*1" in info["peer"] and sinfo["peer"] is None
    assert "CLIENT_RANDOM " in keylog.read_text()


def test_local_handshake_wrong_curve_refused(pki_iso2, tmp_path):
    chain, key = extra_leaf(pki_iso2, tmp_path, curve="p384")
    s = tls.secc_context("iso2", chain, key)
    c = tls.evcc_context("iso2", pki_iso2 / "certs/v2gRootCA.pem")
    result, _ = _handshake(s, c, "iso2")
    # With TLS 1.2 OpenSSL itself refuses: the only group both offer (secp256r1) also
    # bounds the ECDSA certificate curves (RFC 8422 5.1).  check_session would catch it
    # otherwise (test_check_peer_certificate).
    assert isinstance(result, ssl.SSLError)
    assert isinstance(result, tls.TLSPolicyError) or "handshake failure" in str(result)
