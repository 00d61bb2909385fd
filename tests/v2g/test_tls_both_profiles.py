"""One SECC, -2 and -20 over TLS from one PKI folder (in-process, no network): the folder
`pki create --profile iso2,iso20` writes, the start-up checks on it, and the ClientHello
reading that picks the chain per connection (exi.v2g.clienthello).  The sessions
themselves run in tests/session/test_iso20_netns.py (one SECC, a -2 TLS 1.2 EV and a -20
TLS 1.3 EV on the same port)."""
from __future__ import annotations

import argparse
import random
import ssl

import pytest
from cryptography import x509

from exi.cli import pki as pki_cli
from exi.cli.errors import CLIError
from exi.v2g.clienthello import (MAX_CLIENT_HELLO, MAX_PEEK, MAX_RECORDS, TLS12, ClientHelloError,
                                 parse_client_hello)
from exi.v2g.pki import folder_profiles, profile_folder
from exi.v2g.session.drivers import evcc_tls_context, pki_profiles, secc_tls_contexts


def _parser():
    p = argparse.ArgumentParser(prog="exi15118")
    pki_cli.register(p.add_subparsers(dest="command"))
    return p


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("pki") / "both"
    args = _parser().parse_args(["pki", "create", "--out", str(out), "--profile", "iso2,iso20"])
    assert args.func(args) == 0
    return out


def _client_hello(ctx: ssl.SSLContext) -> bytes:
    """The bytes a client context sends first."""
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_side=False)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


# -- the folder ---------------------------------------------------------------------------

def test_pki_create_both_profiles_layout(both):
    assert folder_profiles(both) == pki_profiles(both) == ("iso2", "iso20")
    readme = (both / "README.md").read_text()
    assert "`iso2/`" in readme and "`iso20/`" in readme and "--protocols din,iso2,iso20" in readme
    keys = {}
    for profile, curve in (("iso2", "secp256r1"), ("iso20", "secp521r1")):
        sub = profile_folder(both, profile)
        assert sub == both / profile and (sub / "README.md").exists()
        leaf = x509.load_pem_x509_certificate((sub / "certs" / "seccLeaf.pem").read_bytes())
        keys[profile] = leaf.public_key().curve.name
        assert (sub / "ocsp" / "responder.json").exists()
    assert keys == {"iso2": "secp256r1", "iso20": "secp521r1"}
    assert (both / "iso20" / "certs" / "vehicleChain.pem").exists()
    assert not (both / "iso2" / "certs" / "vehicleChain.pem").exists()
    # each profile has its own V2G root
    roots = {p: (both / p / "certs" / "v2gRootCA.pem").read_bytes() for p in ("iso2", "iso20")}
    assert roots["iso2"] != roots["iso20"]
    # a single-profile folder is its own profile folder
    assert profile_folder(both / "iso2", "iso2") == both / "iso2"
    assert folder_profiles(both / "iso20") == ()


def test_pki_create_all_and_curve(tmp_path, capsys):
    args = _parser().parse_args(["pki", "create", "--out", str(tmp_path / "a"), "--profile", "all",
                                 "--curve", "ed448"])
    assert args.func(args) == 0
    assert "iso2 (p256), iso20 (ed448)" in capsys.readouterr().out
    assert folder_profiles(tmp_path / "a") == ("iso2", "iso20")
    # --curve with both profiles sets the -20 key type: p256 is refused
    args = _parser().parse_args(["pki", "create", "--out", str(tmp_path / "b"), "--profile", "all",
                                 "--curve", "p256"])
    assert args.func(args) == 2
    assert "iso20 key type" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["pki", "create", "--out", str(tmp_path / "c"), "--profile", "iso2,iso3"])
    assert "choose iso2, iso20" in capsys.readouterr().err


def test_start_up_checks_of_a_folder_of_both(both, tmp_path):
    pki_cli.check_secc_pki(both, None, ("din", "iso2", "iso20"))
    pki_cli.check_secc_pki(both, None, ("iso20",))
    pki_cli.check_evcc_pki(both, "iso20")
    pki_cli.check_evcc_pki(both, "iso2")
    with pytest.raises(CLIError, match="none serves TLS"):
        pki_cli.check_secc_pki(both, None, ("din",))
    # a broken -20 half is found although the -2 half is fine (and named by its folder)
    broken = tmp_path / "broken"
    args = _parser().parse_args(["pki", "create", "--out", str(broken), "--profile", "all"])
    assert args.func(args) == 0
    (broken / "iso20" / "private_keys" / "seccLeaf.key").write_bytes(
        (broken / "iso20" / "private_keys" / "cpsLeaf.key").read_bytes())
    pki_cli.check_secc_pki(broken, None, ("iso2",))
    with pytest.raises(CLIError, match=r"iso20: private_keys/seccLeaf.key does not belong"):
        pki_cli.check_secc_pki(broken, None, ("iso2", "iso20"))


def test_contexts_of_a_folder_of_both(both):
    ctxs = secc_tls_contexts(both, profiles=("din", "iso2", "iso20"))
    assert set(ctxs) == {"iso2", "iso20"}
    assert ctxs["iso2"].maximum_version == ssl.TLSVersion.TLSv1_2
    assert ctxs["iso2"].verify_mode == ssl.CERT_NONE
    assert ctxs["iso20"].minimum_version == ssl.TLSVersion.TLSv1_3
    assert ctxs["iso20"].verify_mode == ssl.CERT_REQUIRED       # [V2G20-2400]
    assert set(secc_tls_contexts(both, profiles=("iso2",))) == {"iso2"}
    assert evcc_tls_context(both, profile="iso20").minimum_version == ssl.TLSVersion.TLSv1_3
    assert evcc_tls_context(both).maximum_version == ssl.TLSVersion.TLSv1_2


def test_one_ocsp_responder_for_both(both):
    responder = pki_cli.load_responder(both)
    names = {c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
             for c, _ in responder.issuers}
    single = pki_cli.load_responder(both / "iso2")
    assert len(responder.issuers) == 2 * len(single.issuers)
    assert len(names) == len(single.issuers)        # the same CA names, once per profile


# -- the ClientHello ----------------------------------------------------------------------

def test_client_hellos_of_our_evcc_contexts(both):
    h2 = parse_client_hello(_client_hello(evcc_tls_context(both, profile="iso2")))
    assert not h2.offers_tls13 and TLS12 in h2.versions
    assert 0xC023 in h2.cipher_suites                   # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    h20 = parse_client_hello(_client_hello(evcc_tls_context(both, profile="iso20")))
    assert h20.offers_tls13 and TLS12 not in h20.versions
    assert 0x1302 in h20.cipher_suites                  # TLS_AES_256_GCM_SHA384
    assert h20.versions == (0x0304,)


def test_client_hello_incomplete_split_and_refused(both):
    data = _client_hello(evcc_tls_context(both, profile="iso20"))
    for n in range(len(data)):
        assert parse_client_hello(data[:n]) is None, n
    # the same handshake message in two records
    body = data[5:]
    split = bytes([22, 3, 1]) + (20).to_bytes(2, "big") + body[:20] + \
        bytes([22, 3, 1]) + (len(body) - 20).to_bytes(2, "big") + body[20:]
    assert parse_client_hello(split).offers_tls13
    assert parse_client_hello(split[:-1]) is None
    # split over as many one-byte records as allowed: read; one more: refused
    def records(body: bytes, n: int) -> bytes:
        parts = [body[i:i + 1] for i in range(n - 1)] + [body[n - 1:]]
        return b"".join(bytes([22, 3, 1]) + len(p).to_bytes(2, "big") + p for p in parts)
    assert parse_client_hello(records(body, MAX_RECORDS)).offers_tls13
    with pytest.raises(ClientHelloError, match="records"):
        parse_client_hello(records(body, MAX_RECORDS + 1))
    # the rest of the last record is not waited for (the SECC peeks MAX_PEEK bytes at most)
    long_record = bytes([22, 3, 3]) + (len(body) + 1000).to_bytes(2, "big") + body
    assert parse_client_hello(long_record).offers_tls13
    assert MAX_PEEK < 17000
    for bad, why in ((b"GET / HTTP/1.1\r\n\r\n", "record type"),
                     (bytes([23, 3, 3, 0, 5]) + b"x" * 5, "record type"),
                     (bytes([22, 3, 3, 0, 4, 2, 0, 0, 0]), "not a ClientHello"),
                     (bytes([22, 3, 3, 0, 4, 1, 1, 0, 0]), f"at most {MAX_CLIENT_HELLO}"),
                     (bytes([22, 3, 3, 0, 6, 1, 0, 0, 2, 3, 3]), "truncated")):
        with pytest.raises(ClientHelloError, match=why):
            parse_client_hello(bad)


def test_client_hello_mutations_are_read_or_refused(both):
    """Whatever arrives: a ClientHello, None (wait for more) or ClientHelloError."""
    data = bytearray(_client_hello(evcc_tls_context(both, profile="iso20")))
    rng = random.Random(15118)
    outcomes = set()
    for _ in range(3000):
        m = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            m[rng.randrange(len(m))] = rng.randrange(256)
        try:
            r = parse_client_hello(bytes(m[:rng.randint(1, len(m))] if rng.random() < 0.2 else m))
            outcomes.add("none" if r is None else "hello")
            assert r is not None or len(m) < MAX_PEEK
        except ClientHelloError:
            outcomes.add("error")
    assert outcomes == {"none", "hello", "error"}


def test_secc_warns_when_its_folder_serves_one_of_two_tls_protocols(both, caplog):
    from exi.cli.secc import _warn_one_tls_profile
    _warn_one_tls_profile(both, ("din", "iso2", "iso20"))
    _warn_one_tls_profile(both / "iso2", ("din", "iso2"))
    assert not caplog.records
    _warn_one_tls_profile(both / "iso20", ("iso20", "iso2", "din"))
    assert "holds iso20 chains only: iso2 EVs cannot use TLS" in caplog.text
    assert "--profile iso2,iso20" in caplog.text


def test_force_does_not_mix_layouts(both, tmp_path, capsys):
    args = _parser().parse_args(["pki", "create", "--out", str(both), "--force", "--profile", "iso2"])
    assert args.func(args) == 1
    assert "other layout" in capsys.readouterr().err
    assert not (both / "certs").exists()
    single = tmp_path / "single"
    args = _parser().parse_args(["pki", "create", "--out", str(single)])
    assert args.func(args) == 0
    args = _parser().parse_args(["pki", "create", "--out", str(single), "--force", "--profile", "all"])
    assert args.func(args) == 1 and folder_profiles(single) == ()
