"""SDP messages and the sans-I/O client/server (no network)."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exi.v2g import sdp
from exi.v2g.sdp import (
    ClientState, EMSPSDPRequest, EMSPSDPResponse, SDPClient, SDPError, SDPRequest,
    SDPResponse, SDPServer, Security, Transport, WirelessInfo, WirelessSDPRequest,
    WirelessSDPResponse,
)
from exi.v2g.v2gtp import V2GTPError, pack

LL = ipaddress.IPv6Address("fe80::1:2:3:4")


def test_request_bytes():
    assert sdp.encode(SDPRequest(Security.TLS, Transport.TCP)) == bytes.fromhex("01fe9000000000020000")
    assert sdp.encode(SDPRequest(Security.NONE, Transport.UDP)) == bytes.fromhex("01fe9000000000021010")


def test_response_bytes_and_scope_not_sent():
    r = SDPResponse(ipaddress.IPv6Address("fe80::1%eth0"), 0xC350, Security.NONE, Transport.TCP)
    data = sdp.encode(r)
    assert data == bytes.fromhex("01fe900100000014" "fe800000000000000000000000000001" "c350" "1000")
    back = sdp.decode(data)
    assert back.address == ipaddress.IPv6Address("fe80::1") and back.port == 0xC350
    assert back.with_scope("veth1").host == "fe80::1%veth1"
    # A global address gets no scope.
    g = SDPResponse(ipaddress.IPv6Address("2001:db8::1"), 1).with_scope("veth1")
    assert g.host == "2001:db8::1"


@given(st.sampled_from(list(Security)), st.sampled_from(list(Transport)),
       st.integers(0, 0xFFFF), st.binary(min_size=16, max_size=16))
def test_roundtrip(sec, tp, port, raw):
    for msg in (SDPRequest(sec, tp), SDPResponse(ipaddress.IPv6Address(raw), port, sec, tp)):
        assert sdp.decode(sdp.encode(msg)) == msg


@pytest.mark.parametrize("payload", [b"\x01\x00", b"\x00\x01", b"\x00", b"\x00\x00\x00"])
def test_bad_request_payloads(payload):
    with pytest.raises(SDPError):
        sdp.decode(pack(0x9000, payload))


def test_bad_response_payloads():
    with pytest.raises(SDPError):
        SDPResponse.unpack(b"\x00" * 19)
    with pytest.raises(SDPError):
        SDPResponse.unpack(b"\x00" * 18 + b"\x20\x00")


def test_non_sdp_payload_type_is_v2gtp_error():
    with pytest.raises(V2GTPError):
        sdp.decode(pack(0x8001, b"\x00\x00"))


def test_wireless_layout_and_roundtrip():
    req = WirelessSDPRequest(Security.TLS, Transport.TCP,
                             sdp.P2PS_PPD_ON_EV | sdp.P2PS_WPT_LF_ON_EV, 0x10, "EVID1234", "DE*ABC*E1")
    payload = req.pack()
    assert len(payload) == 61
    assert payload[2:4] == b"\x0a\x00" and payload[4] == 0x10
    assert payload[5:13] == b"EVID1234" and payload[25:34] == b"DE*ABC*E1"
    assert sdp.decode(sdp.encode(req)) == req
    res = WirelessSDPResponse(LL, 50000, Security.TLS, Transport.TCP, 0x01, 0x10, "DE*ABC*E1")
    assert len(res.pack()) == 58
    assert sdp.decode(sdp.encode(res)) == res
    with pytest.raises(ValueError):
        WirelessSDPRequest(evid="X" * 21).pack()


def test_emsp_roundtrip():
    for msg in (EMSPSDPRequest("DEABC,DEXYZ"), EMSPSDPRequest(""),
                EMSPSDPResponse(LL, 50001, "DEABC")):
        assert sdp.decode(sdp.encode(msg)) == msg


# -- client ---------------------------------------------------------------------------

def test_client_defaults_follow_standard():
    c = SDPClient()
    assert c.timeout == 0.25 and c.max_requests == 50     # [V2G2-159], [V2G2-161]


def test_client_retries_then_fails():
    c = SDPClient(SDPRequest(Security.TLS), timeout=0.25, max_requests=50)
    assert c.get_timer() is None
    first = c.start(100.0)
    assert first == sdp.encode(SDPRequest(Security.TLS))
    assert c.get_timer() == pytest.approx(100.25)
    assert c.handle_timer(100.2) is None                  # early: nothing to do
    sent = 1
    now = 100.0
    while c.state is ClientState.WAITING:
        now = c.get_timer()
        if c.handle_timer(now) is not None:
            sent += 1
    assert sent == 50 and c.requests_sent == 50
    assert c.state is ClientState.FAILED and c.get_timer() is None
    assert now == pytest.approx(100.0 + 50 * 0.25)        # gives up 250 ms after the 50th


def test_client_accepts_response_and_ignores_noise():
    c = SDPClient(SDPRequest(Security.NONE), timeout=0.1, max_requests=3)
    req = c.start(0.0)
    assert c.receive_datagram(req) is None                # own multicast looped back
    assert c.receive_datagram(b"garbage") is None
    assert c.receive_datagram(pack(0x9001, b"\x00" * 5)) is None
    assert c.ignored == 3 and c.state is ClientState.WAITING
    assert c.handle_timer(0.1) == req                     # the timer still runs
    resp = SDPResponse(LL, 50000, Security.NONE, Transport.TCP)
    assert c.receive_datagram(sdp.encode(resp)) == resp
    assert c.state is ClientState.DONE and c.get_timer() is None
    assert c.handle_timer(5.0) is None
    assert c.receive_datagram(sdp.encode(resp)) is None   # late duplicates are ignored


def test_client_wireless_wants_wireless_response():
    c = SDPClient(WirelessSDPRequest(evid="EV1"))
    c.start(0.0)
    assert c.receive_datagram(sdp.encode(SDPResponse(LL, 1))) is None
    w = WirelessSDPResponse(LL, 1, evseid="E1")
    assert c.receive_datagram(sdp.encode(w)) == w


def test_client_misuse():
    with pytest.raises(ValueError):
        SDPClient(max_requests=0)
    c = SDPClient()
    c.start(0.0)
    with pytest.raises(RuntimeError):
        c.start(0.0)


# -- server ---------------------------------------------------------------------------

@pytest.mark.parametrize("tls_port,tcp_port,wanted,expect", [
    (50000, 50001, Security.TLS, (Security.TLS, 50000)),
    (50000, 50001, Security.NONE, (Security.NONE, 50001)),
    (50000, None, Security.NONE, (Security.TLS, 50000)),     # -20 SECC: TLS only
    (None, 50001, Security.TLS, (Security.NONE, 50001)),     # DIN SECC: TCP only
])
def test_server_security_choice(tls_port, tcp_port, wanted, expect):
    s = SDPServer(LL, tls_port=tls_port, tcp_port=tcp_port)
    out = s.handle_datagram(sdp.encode(SDPRequest(wanted, Transport.UDP)))
    resp = sdp.decode(out)
    assert (resp.security, resp.port) == expect
    assert resp.transport is Transport.TCP and resp.address == LL


def test_server_answers_without_scope_and_discards_noise():
    s = SDPServer(ipaddress.IPv6Address("fe80::9%veth0"), tcp_port=50001)
    assert sdp.decode(s.handle_datagram(sdp.encode(SDPRequest()))).address == \
        ipaddress.IPv6Address("fe80::9")
    assert s.handle_datagram(b"\x01\xfe\x90\x00") is None
    assert s.handle_datagram(sdp.encode(SDPResponse(LL, 1))) is None
    assert s.handle_datagram(sdp.encode(WirelessSDPRequest())) is None   # not configured
    assert s.answered == 1 and s.discarded == 3
    with pytest.raises(ValueError):
        SDPServer(LL)


def test_server_wireless_and_emsp_when_configured():
    s = SDPServer(LL, tls_port=50000, wireless=WirelessInfo(0x01, 0x10, "DE*EXI*E1"),
                  emsp_ids="DEABC")
    w = sdp.decode(s.handle_datagram(sdp.encode(WirelessSDPRequest(evid="EV"))))
    assert isinstance(w, WirelessSDPResponse) and w.evseid == "DE*EXI*E1" and w.port == 50000
    e = sdp.decode(s.handle_datagram(sdp.encode(EMSPSDPRequest("x"))))
    assert isinstance(e, EMSPSDPResponse) and e.emsp_ids == "DEABC"


def test_client_server_in_memory():
    server = SDPServer(LL, tls_port=61000)
    client = SDPClient(SDPRequest(Security.TLS), timeout=0.25, max_requests=5)
    lost = 2                                   # the first two requests get lost
    datagram = client.start(0.0)
    now = 0.0
    while client.state is ClientState.WAITING:
        if lost:
            lost -= 1
            now = client.get_timer()
            datagram = client.handle_timer(now)
            continue
        client.receive_datagram(server.handle_datagram(datagram))
    assert client.state is ClientState.DONE and client.requests_sent == 3
    assert client.response.port == 61000
