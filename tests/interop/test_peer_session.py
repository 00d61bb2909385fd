"""The peer against itself over a veth pair: proves josev_programs can run a whole DIN SPEC
70121 session before our stack takes one side (the later session-interop tests)."""
from __future__ import annotations

import re
import time

import pytest

from tests.netns import NetnsPair, missing_prerequisites

from . import josev_programs as jp

pytestmark = [pytest.mark.interop, pytest.mark.netns]


@pytest.fixture
def pair():
    problem = missing_prerequisites()
    if problem:
        pytest.fail(problem, pytrace=False)
    with NetnsPair() as p:
        yield p


def test_peer_secc_and_evcc_complete_a_din_session(pair, tmp_path):
    secc = jp.start_secc(tmp_path / "secc", pair.iface["secc"], netns=pair.ns["secc"],
                         protocols=["DIN_SPEC_70121"])
    try:
        secc.wait_for(jp.SESSION_MARKERS["secc_ready"], 60)
        evcc = jp.start_evcc(tmp_path / "evcc", pair.iface["evcc"], netns=pair.ns["evcc"],
                             config=jp.evcc_config(["DIN_SPEC_70121"]))
        try:
            t0 = time.monotonic()
            # The first "Reason:" line ends the session, successfully or not.
            end = evcc.wait_for(jp.SESSION_MARKERS["session_end"], 90)
            took = time.monotonic() - t0
            evcc_log, secc_log = evcc.log(), secc.log()
            assert evcc.evcc_config_loaded(), "EVCC fell back to its default config"
            assert end.group("reason") == "Communication session stopped successfully", (
                f"session failed after {took:.1f} s: {end.group(0)}\n"
                f"logs: {evcc.log_path} {secc.log_path}")
            assert re.search(jp.SESSION_MARKERS["sap"], secc_log).group("protocol") == "DIN_SPEC_70121"
            assert len(re.findall(jp.SESSION_MARKERS["current_demand"], evcc_log)) >= 1
            assert re.search(jp.SESSION_MARKERS["session_stop"], evcc_log)
            secc.wait_for(jp.SESSION_MARKERS["stopped_ok"], 10)
            # Header SessionID "00" in the EV's SessionSetupReq (PEERS.md), on the wire as JSON.
            assert '"SessionSetupReq":{"EVCCID"' in secc_log and '{"SessionID":"00"}' in secc_log
        finally:
            evcc.stop()       # its EVCC keeps running after SessionStop
    finally:
        secc.stop()
    assert not secc.running() and not evcc.running()
