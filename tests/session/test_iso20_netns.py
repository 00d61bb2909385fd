"""ISO 15118-20 end to end through the real drivers and CLI: `exi15118 secc` and
`exi15118 evcc` as subprocesses in two network namespaces joined by a veth pair, over
TLS 1.3 with the vehicle certificate, and over plain TCP with the documented test option
--iso20-plain-tcp.  The one SECC serves din, iso2 and iso20 at once from one PKI folder
of both profiles (`pki create --profile iso2,iso20`): -2 EVs over TLS 1.2 with the -2
chain, -20 EVs over TLS 1.3 with the -20 chain, on the same TLS port."""
from __future__ import annotations

import json
import sys

import pytest

from tests.netns import SECCProcess, netns_pair
from tests.session.test_netns_sessions import ROOT, evcc

pytestmark = pytest.mark.netns


pair = pytest.fixture(scope="module")(netns_pair)


@pytest.fixture(scope="module")
def pki20(tmp_path_factory):
    """Written by the CLI, as a user would: both profiles in one folder."""
    from exi.cli.__main__ import main
    d = tmp_path_factory.mktemp("pki") / "both"
    assert main(["pki", "create", "--profile", "iso2,iso20", "--out", str(d)]) == 0
    return d


@pytest.fixture(scope="module")
def secc20(pair, pki20, tmp_path_factory):
    trace = tmp_path_factory.mktemp("trace") / "secc.jsonl"
    s = SECCProcess(pair, ["--protocols", "iso20,iso2,din", "--tls", "--pki", str(pki20),
                           "--iso20-plain-tcp"], trace=trace)
    yield s
    s.stop()


PAYLOAD_SCHEMAS = {"sap", "iso20_cm", "iso20_dc", "iso20_ac"}


def test_every_service_and_control_mode_pause_standby_renegotiations_over_tls13(pair, secc20, pki20):
    """The whole -20 matrix through the driver API, one process for all vehicles
    (tests/session/_iso20_evs.py): AC, DC, AC_BPT, DC_BPT each scheduled and dynamic,
    pause then resume, standby, schedule and service renegotiation, each over TLS 1.3 with
    the vehicle certificate against the one SECC process."""
    r = pair.run("evcc", [sys.executable, "-m", "tests.session._iso20_evs", pair.iface["evcc"], str(pki20)],
                 cwd=str(ROOT), timeout=120)
    runs = {x["name"]: x for x in map(json.loads, r.stdout.splitlines())}
    failed = {n: x["reason"] for n, x in runs.items() if not x["ok"]}
    assert not failed and r.returncode == 0, f"{failed}\n{r.stderr[-3000:]}"
    services = [f"{m}/{c}" for m in ("ac", "dc", "ac_bpt", "dc_bpt") for c in ("scheduled", "dynamic")]
    assert set(runs) == {*services, "pause", "resume", "standby", "schedule_renegotiation",
                         "service_renegotiation"}
    for x in runs.values():
        assert x["tls"] == "TLSv1.3" and x["schema"] in ("iso20_ac", "iso20_dc"), x
        assert x["header_session_ids"] == [x["session_id"]], x     # one SessionID throughout
    for name in services:
        x = runs[name]
        dc = name.startswith("dc")
        assert x["schema"] == ("iso20_dc" if dc else "iso20_ac")
        assert x["requests"].count("DC_ChargeLoopReq" if dc else "AC_ChargeLoopReq") == 3, x["requests"]
        assert x["progress"] == ["Start", "Stop"] and x["stops"] == ["Terminate"]
        assert x["energy_wh"] > 0
    # Pause, then the same vehicle resumes the same session at ChargeParameterDiscovery
    # without a second authorization ([V2G20-1032]).
    paused, resumed = runs["pause"], runs["resume"]
    assert paused["paused"] and paused["stops"] == ["Pause"]
    assert resumed["session_id"] == paused["session_id"] and resumed["setup_codes"] == ["OK_OldSessionJoined"]
    assert resumed["requests"][:3] == ["supportedAppProtocolReq", "SessionSetupReq", "AC_ChargeParameterDiscoveryReq"]
    assert not {"AuthorizationSetupReq", "AuthorizationReq", "ServiceSelectionReq"} & set(resumed["requests"])
    # Standby entered and left (power back on), then the normal stop.
    assert runs["standby"]["progress"] == ["Start", "Standby", "Start", "Stop"]
    assert runs["standby"]["power_delivery_codes"] == ["OK"] * 4
    # Schedule renegotiation: back to ScheduleExchange, power on again, no new service selection.
    x = runs["schedule_renegotiation"]
    assert x["progress"] == ["Start", "ScheduleRenegotiation", "Start", "Stop"]
    assert x["requests"].count("ScheduleExchangeReq") == 2 and x["requests"].count("ServiceSelectionReq") == 1
    # Service renegotiation: SessionStop(ServiceRenegotiation), a second service selection
    # in the same session.
    x = runs["service_renegotiation"]
    assert x["stops"] == ["ServiceRenegotiation", "Terminate"]
    assert x["requests"].count("ServiceSelectionReq") == 2 and x["requests"].count("SessionSetupReq") == 1


def test_iso20_over_tls13_with_the_vehicle_certificate(pair, secc20, pki20, tmp_path):
    """The CLI path: `exi15118 evcc` for one -20 session over TLS 1.3."""
    mode, control = "dc_bpt", "dynamic"
    trace = tmp_path / "evcc.jsonl"
    rc, res, err = evcc(pair, "--protocol", "iso20", "--mode", mode, "--control", control,
                        "--loops", "3", "--loop-interval", "0.05", "--tls", "--pki", str(pki20),
                        "--trace", str(trace))
    assert rc == 0 and res["ok"], err[-3000:]
    assert "TLS TLSv1.3" in err
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    names = [x["message"] for x in lines]
    assert names[0] == "supportedAppProtocolReq" and names[-1] == "SessionStopRes"
    assert {x["schema"] for x in lines} <= PAYLOAD_SCHEMAS
    loop = "DC_ChargeLoopReq" if mode.startswith("dc") else "AC_ChargeLoopReq"
    assert names.count(loop) >= 3
    setup = next(x for x in lines if x["message"] == "SessionSetupRes")
    assert setup["content"]["SessionSetupRes"]["Header"]["SessionID"] == res["session_id"]


# A -20 client whose ClientHello arrives in two pieces 0.3 s apart (the SECC peeks until it
# is complete), then a full TLS 1.3 handshake with the vehicle certificate; then garbage.
_TRICKLE = """
import socket, ssl, sys, time
from exi.v2g.session.drivers import evcc_tls_context
host, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = evcc_tls_context(pki, profile="iso20").wrap_bio(inc, out)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
s.sendall(hello[:40]); time.sleep(0.3); s.sendall(hello[40:])
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        s.sendall(out.read())
        data = s.recv(65536)
        if not data:
            sys.exit("closed during the handshake")
        inc.write(data)
s.sendall(out.read())
print(tls.version(), tls.getpeercert(binary_form=True) is not None)
g = socket.create_connection((host, port), timeout=10)
g.sendall(b"GET / HTTP/1.1" + bytes([13, 10, 13, 10]))
try:
    while g.recv(100):       # at most a TLS alert, then the SECC closes
        pass
except ConnectionResetError:
    pass
print("garbage: closed")
"""


def test_clienthello_in_pieces_and_garbage_on_the_shared_tls_port(pair, secc20, pki20):
    host = f"{pair.link_local('secc')}%{pair.iface['evcc']}"
    r = pair.run("evcc", [sys.executable, "-c", _TRICKLE, host, str(secc20.ready["tls_port"]), str(pki20)],
                 cwd=str(ROOT), timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == ["TLSv1.3 True", "garbage: closed"]


def test_iso2_over_tls12_on_the_same_port(pair, secc20, pki20, tmp_path):
    """The SECC that serves -20 over TLS 1.3 serves a -2 EV over TLS 1.2 on the same
    port, with the -2 chain of the same PKI folder."""
    trace = tmp_path / "evcc.jsonl"
    rc, res, err = evcc(pair, "--protocol", "iso2", "--mode", "dc", "--loops", "2",
                        "--loop-interval", "0.05", "--tls", "--pki", str(pki20), "--trace", str(trace))
    assert rc == 0 and res["ok"], err[-3000:]
    assert "TLS TLSv1.2 ECDHE-ECDSA-AES128-SHA256" in err and "protocol iso2 " in err
    names = [json.loads(x)["message"] for x in trace.read_text().splitlines()]
    assert names.count("CurrentDemandReq") >= 2 and names[-1] == "SessionStopRes"


def test_iso20_plain_tcp_only_with_the_test_option(pair, secc20, tmp_path):
    rc, res, err = evcc(pair, "--protocol", "iso20", "--mode", "dc", "--control", "dynamic",
                        "--loops", "2", "--loop-interval", "0.05", "--iso20-plain-tcp")
    assert rc == 0 and res["ok"], err[-3000:]
    assert "protocol iso20_dc" in err
    # Without it the EV does not offer -20 on plain TCP and falls back to -2.
    rc, res, err = evcc(pair, "--protocol", "iso20,iso2", "--mode", "dc", "--loops", "2",
                        "--loop-interval", "0.05")
    assert rc == 0 and res["ok"], err[-3000:]
    assert "protocol iso2 " in err
