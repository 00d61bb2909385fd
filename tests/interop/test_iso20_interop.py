"""ISO 15118-20 sessions between our stack and the iso15118 package (its -20 EVCC
examples: AC, AC_BPT, DC, DC_BPT), over its plain-TCP test mode, both directions, across
a veth pair.  Our side runs with the documented test option --iso20-plain-tcp (the
standard allows -20 only over TLS 1.3; the peer's simulators cannot do -20 TLS).

Peer quirk met here: its SECC's codec (a JVM) needs 1-2.5 s for its first -20
message of each set on this shared 2-core machine (SessionSetupRes came 2.36 s after the
request), over V2G_EVCC_Msg_Timeout (2 s); our EVCC runs with --tolerate-late
(each expiry is logged as a WARNING "tolerated: ...").  Its EV usually sends the next
charge-loop request 0.13-0.3 s after our response, but under load it can pass the 0.5 s
V2G_SECC_Sequence_Timeout, so our SECC runs with the test option --iso20-loop-timeout 2."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import netns_pair

from . import josev_programs as jp

pytestmark = [pytest.mark.interop, pytest.mark.netns]
ROOT = Path(__file__).parents[2]

CASES = [  # our mode, the peer's protocol, its energy service
    ("dc", "ISO_15118_20_DC", "DC"),
    ("dc_bpt", "ISO_15118_20_DC", "DC_BPT"),
    ("ac", "ISO_15118_20_AC", "AC"),
    ("ac_bpt", "ISO_15118_20_AC", "AC_BPT"),
]
# Each case starts the peer's JVM (~30 s); the default run takes one service per
# direction, EXI15118_ISO20_FULL=1 all four both ways (documented in the session README).
FULL = os.environ.get("EXI15118_ISO20_FULL") == "1"
CONTROL = os.environ.get("EXI15118_ISO20_CONTROL", "scheduled")     # our EVCC's control mode
OUR_EVCC_CASES = CASES if FULL else [CASES[1]]       # DC_BPT
PEER_EVCC_CASES = CASES if FULL else [CASES[3]]      # AC_BPT


pair = pytest.fixture(netns_pair)


@pytest.mark.parametrize("mode,peer_proto,service", OUR_EVCC_CASES, ids=[c[2] for c in OUR_EVCC_CASES])
def test_our_evcc_against_peer_secc(pair, tmp_path, mode, peer_proto, service):
    secc = jp.start_secc(tmp_path / "secc", pair.iface["secc"], netns=pair.ns["secc"],
                         protocols=[peer_proto])
    try:
        secc.wait_for(jp.SESSION_MARKERS["secc_ready"], 60)
        trace = tmp_path / "evcc.jsonl"
        r = subprocess.run(pair.argv("evcc", [
            sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol", "iso20",
            "--mode", mode, "--control", CONTROL, "--loops", "4", "--precharge-tolerance", "1000", "--iso20-plain-tcp",
            "--tolerate-late",
            "--trace", str(trace)]), cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        result = json.loads(r.stdout.strip().splitlines()[-1])
        assert r.returncode == 0 and result["ok"], (
            f"{result}\n{r.stderr[-3000:]}\npeer log: {secc.log_path}")
        rows = [json.loads(x) for x in trace.read_text().splitlines()]
        names = [x["message"] for x in rows if "message" in x]      # also "event" lines (late responses)
        loop = "DC_ChargeLoopRes" if mode.startswith("dc") else "AC_ChargeLoopRes"
        assert names.count(loop) >= 4 and names[-1] == "SessionStopRes"
        assert f"Chosen protocol: {peer_proto}" in secc.log()
    finally:
        secc.stop()


@pytest.mark.parametrize("mode,peer_proto,service", PEER_EVCC_CASES, ids=[c[2] for c in PEER_EVCC_CASES])
def test_peer_evcc_against_our_secc(pair, tmp_path, mode, peer_proto, service):
    trace = tmp_path / "secc.jsonl"
    secc = pair.popen("secc", [sys.executable, "-m", "exi", "secc", "-i", pair.iface["secc"],
                               "--protocols", "iso20,iso2,din", "--iso20-plain-tcp",
                               "--iso20-loop-timeout", "2", "--trace", str(trace)],
                      cwd=str(ROOT))
    ready, _, _ = select.select([secc.stdout], [], [], 20)
    assert ready and json.loads(secc.stdout.readline())["event"] == "ready", secc.stderr.read()
    evcc = jp.start_evcc(tmp_path / "evcc", pair.iface["evcc"], netns=pair.ns["evcc"],
                         config=jp.evcc_config([peer_proto], energy_services=[service], charge_loop_cycle=4))
    try:
        end = evcc.wait_for(jp.SESSION_MARKERS["session_end"], 90)
        assert evcc.evcc_config_loaded(), "the peer EVCC fell back to its default config"
        assert "SessionStopRes received" in evcc.log() or "SessionStopRes" in evcc.log(), (
            f"{end.group(0)}\npeer log: {evcc.log_path}")
    finally:
        evcc.stop()
        secc.terminate()
        out, err = secc.communicate(timeout=15)
    assert "session ended (ok): SessionStop (Terminate)" in err, err[-3000:]
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    names = [x["message"] for x in lines]
    loop = "DC_ChargeLoopReq" if mode.startswith("dc") else "AC_ChargeLoopReq"
    assert loop in names and names[-1] == "SessionStopRes"
