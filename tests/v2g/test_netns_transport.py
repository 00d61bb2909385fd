"""Real traffic over a veth pair between two network namespaces: SDP, TCP, TLS.

Each test runs an SECC program in one namespace and an EVCC program in the other
(tests/v2g/_peers.py); needs root and iproute2 (the tests fail, saying so, without).
"""
from __future__ import annotations

import pytest

from .conftest import extra_leaf

pytestmark = pytest.mark.netns


def tls_args(pki, profile, side, *, cert=None, key=None, trust=None, keylog=None):
    if side == "secc":
        args = ["--tls", "--profile", profile,
                "--cert", str(cert or pki / "certs/seccChain.pem"),
                "--key", str(key or pki / "private_keys/seccLeaf.key")]
        if profile == "iso20":
            for t in trust or [pki / "certs/oemRootCA.pem", pki / "certs/v2gRootCA.pem"]:
                args += ["--trust", str(t)]
    else:
        args = ["--tls", "--profile", profile,
                "--trust", str(trust or pki / "certs/v2gRootCA.pem")]
        if profile == "iso20":
            args += ["--cert", str(cert or pki / "certs/vehicleChain.pem"),
                     "--key", str(key or pki / "private_keys/vehicleLeaf.key")]
    if keylog:
        args += ["--keylog", str(keylog)]
    return args


def start_secc(peers, args):
    secc = peers.start("secc", args)
    ready = secc.ready()
    return secc, ready


# -- SDP --------------------------------------------------------------------------------

def test_sdp_exchange(peers, netns_pair):
    server = peers.start("sdp-server", ["--tls-port", "50000", "--tcp-port", "50001"])
    server.ready()
    try:
        tls_res = peers.run("sdp-client", ["--security", "tls"])
        plain = peers.run("sdp-client", ["--security", "none"])
    finally:
        stats = server.stop()
    secc_ll = netns_pair.link_local("secc")
    assert tls_res["ok"], tls_res
    assert tls_res["address"] == f"{secc_ll}%{netns_pair.iface['evcc']}"   # scoped to our link
    assert (tls_res["port"], tls_res["security"], tls_res["transport"]) == (50000, "TLS", "TCP")
    assert (plain["port"], plain["security"]) == (50001, "NONE")
    assert tls_res["requests"] == 1 and stats["answered"] == 2


def test_sdp_retries_until_secc_answers(peers):
    # The SDP server comes up ~1 s after the EVCC starts asking: the EVCC repeats its
    # request every 250 ms ([V2G2-159]) and succeeds well within 50 requests ([V2G2-161]).
    server = peers.start("sdp-server", ["--tcp-port", "50002", "--delay", "1.0"])
    try:
        res = peers.run("sdp-client", ["--security", "none"])
    finally:
        server.stop()
    assert res["ok"], res
    assert res["port"] == 50002
    assert 3 <= res["requests"] < 50


def test_sdp_gives_up_after_max_requests(peers):
    res = peers.run("sdp-client", ["--timeout", "0.1", "--max", "5"])
    assert res == {**res, "ok": False, "error": "SDPTimeout", "requests": 5}
    assert 0.45 <= res["elapsed"] < 2.0


# -- TCP --------------------------------------------------------------------------------

def test_tcp_session_after_discovery(peers, netns_pair):
    secc, ready = start_secc(peers, ["--sdp"])
    try:
        res = peers.run("evcc", ["--discover"])
    finally:
        summary = secc.stop()
    assert res["ok"], res
    secc_ll = netns_pair.link_local("secc")
    assert res["discovered"] == {"host": f"{secc_ll}%{netns_pair.iface['evcc']}",
                                 "port": ready["port"], "security": "NONE"}
    assert 49152 <= ready["port"] <= 65535
    assert res["peer_addr"][0].split("%")[0] == secc_ll
    assert res["echo"] == ["echo:hello", "echo:" + "x" * 3000, "echo:"]
    assert res["last"] == "bye" and res["closed_by_secc"]
    assert res["tls_version"] is None
    assert any("closed by handler" in r for r in summary["reasons"])


def test_evcc_driven_by_sans_io_handler(peers):
    secc, ready = start_secc(peers, [])
    try:
        res = peers.run("evcc", ["--host", ready["address"], "--port", str(ready["port"]),
                                 "--scenario", "handler"])
    finally:
        secc.stop()
    assert res["ok"], res
    assert res["answers"] == ["echo:ping0", "echo:ping1", "echo:ping2"]
    assert res["reason"] == res["lost"] == "closed by handler"
    assert res["elapsed"] >= 0.2                     # two timer-driven pings, 100 ms apart


def test_oversize_frame_closes_only_its_connection(peers):
    secc, ready = start_secc(peers, ["--max-payload", "1024"])
    try:
        res = peers.run("evcc", ["--host", ready["address"].split("%")[0], "--port",
                                 str(ready["port"]), "--scenario", "oversize",
                                 "--max-payload", "1024"])
    finally:
        summary = secc.stop()
    assert res["ok"], res
    assert res["before"] == ["echo:g1", "echo:b1"]
    assert res["bad_closed"] and res["bad_version_closed"]
    assert res["after"] == "echo:g2" and res["after2"] == "echo:g3"
    reasons = " | ".join(summary["reasons"])
    assert "exceeds the receive buffer: 1025 > 1024" in reasons
    assert "inverse protocol version" in reasons


def test_connections_beyond_max_are_closed_on_arrival(peers):
    secc, ready = start_secc(peers, ["--max-connections", "3"])
    try:
        res = peers.run("evcc", ["--host", ready["address"], "--port", str(ready["port"]),
                                 "--scenario", "cap"])
    finally:
        summary = secc.stop()
    assert res["ok"], res
    assert res["served"] == ["echo:c0", "echo:c1", "echo:c2"]
    assert res["fourth_closed"] and res["after"] == "echo:c5"
    assert "refused: 3 connections already (max_connections)" in summary["reasons"]


# -- TLS --------------------------------------------------------------------------------

def test_tls_iso2_handshake(peers, pki_iso2, tmp_path):
    keylog = tmp_path / "sslkeylog.txt"
    secc, ready = start_secc(peers, tls_args(pki_iso2, "iso2", "secc") + ["--sdp"])
    try:
        res = peers.run("evcc", ["--discover"] + tls_args(pki_iso2, "iso2", "evcc", keylog=keylog))
    finally:
        summary = secc.stop()
    assert res["ok"], res
    assert res["discovered"]["security"] == "TLS"
    assert (res["tls_version"], res["cipher"]) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
    assert "CN=DE*EXI*E15118*1" in res["peer"]
    assert res["echo"][0] == "echo:hello"
    assert summary["peers"] == []                      # -2: no client certificate
    assert "CLIENT_RANDOM " in keylog.read_text()


@pytest.mark.parametrize("pki_name", ["pki_iso20", "pki_iso20_ed448"])
def test_tls_iso20_mutual_handshake(peers, request, pki_name):
    pki = request.getfixturevalue(pki_name)
    secc, ready = start_secc(peers, tls_args(pki, "iso20", "secc"))
    try:
        res = peers.run("evcc", ["--host", ready["address"], "--port", str(ready["port"])]
                        + tls_args(pki, "iso20", "evcc"))
    finally:
        summary = secc.stop()
    assert res["ok"], res
    assert (res["tls_version"], res["cipher"]) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert "CN=DE*EXI*E15118*1" in res["peer"]
    assert len(summary["peers"]) == 1 and "CN=WEXI15118VEHICLE1" in summary["peers"][0]


def _refused(peers, secc_args, evcc_args):
    secc, ready = start_secc(peers, secc_args)
    try:
        res = peers.run("evcc", ["--host", ready["address"], "--port", str(ready["port"])]
                        + evcc_args)
    finally:
        summary = secc.stop()
    assert not res["ok"], res
    return res, summary


def test_iso2_refuses_untrusted_secc(peers, pki_iso2, pki_untrusted):
    res, _ = _refused(peers, tls_args(pki_untrusted, "iso2", "secc"),
                      tls_args(pki_iso2, "iso2", "evcc"))
    assert res["error"] == "SSLCertVerificationError"
    assert "unable to get local issuer certificate" in res["message"]


def test_iso2_refuses_expired_secc(peers, pki_iso2, tmp_path):
    chain, key = extra_leaf(pki_iso2, tmp_path, curve="p256", expired=True)
    res, _ = _refused(peers, tls_args(pki_iso2, "iso2", "secc", cert=chain, key=key),
                      tls_args(pki_iso2, "iso2", "evcc"))
    assert res["error"] == "SSLCertVerificationError"
    assert "certificate has expired" in res["message"]


def test_iso2_refuses_wrong_curve_secc(peers, pki_iso2, tmp_path):
    chain, key = extra_leaf(pki_iso2, tmp_path, curve="p384")
    res, _ = _refused(peers, tls_args(pki_iso2, "iso2", "secc", cert=chain, key=key),
                      tls_args(pki_iso2, "iso2", "evcc"))
    # OpenSSL stops it already (secp256r1 is the only group offered), else check_session.
    # (a reset when the SECC drops the TCP connection before the client reads the alert)
    assert res["error"] in ("SSLError", "TLSPolicyError", "ConnectionResetError"), res


def test_iso20_refuses_wrong_curve_secc(peers, pki_iso20, tmp_path):
    chain, key = extra_leaf(pki_iso20, tmp_path, curve="p256")
    res, _ = _refused(peers, tls_args(pki_iso20, "iso20", "secc", cert=chain, key=key),
                      tls_args(pki_iso20, "iso20", "evcc"))
    assert res["error"] == "TLSPolicyError" and "secp521r1" in res["message"]


def test_iso20_secc_refuses_wrong_curve_vehicle(peers, pki_iso20, tmp_path):
    chain, key = extra_leaf(pki_iso20, tmp_path, curve="p256", issuer="oemSubCA2")
    res, summary = _refused(peers, tls_args(pki_iso20, "iso20", "secc"),
                            tls_args(pki_iso20, "iso20", "evcc", cert=chain, key=key))
    assert any("TLS policy" in r and "secp521r1" in r for r in summary["reasons"]), summary


def test_iso20_secc_refuses_untrusted_vehicle(peers, pki_iso20, pki_iso20_ed448):
    # Vehicle certificate from another OEM root the SECC does not trust.
    res, summary = _refused(
        peers, tls_args(pki_iso20, "iso20", "secc"),
        tls_args(pki_iso20, "iso20", "evcc", cert=pki_iso20_ed448 / "certs/vehicleChain.pem",
                 key=pki_iso20_ed448 / "private_keys/vehicleLeaf.key"))
    assert res["error"] in ("SSLError", "ConnectionClosed", "ConnectionResetError"), res
    assert summary["peers"] == []


def test_iso20_refuses_expired_vehicle(peers, pki_iso20, tmp_path):
    chain, key = extra_leaf(pki_iso20, tmp_path, curve="p521", issuer="oemSubCA2", expired=True)
    res, summary = _refused(peers, tls_args(pki_iso20, "iso20", "secc"),
                            tls_args(pki_iso20, "iso20", "evcc", cert=chain, key=key))
    assert summary["peers"] == []
