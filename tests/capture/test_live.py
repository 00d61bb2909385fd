"""`exi15118 decode --live IF` over a veth pair in two network namespaces: frames of real
captures (a SLAC matching, then a DIN charging session) are sent from one namespace and
decoded as they arrive in the other; SIGINT ends the capture cleanly (exit 0, summary)."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

import exi.capture

from tests.netns import SECCProcess, netns_pair
from .conftest import REPO

EXAMPLE = os.path.join(REPO, "examples", "din_dc_session.pcap")
FIAT = "EVerest+logfiles/Fiat/Scudo/2024-02-20T09:37:13.153Z-2_iso2_dc/ethernet-traffic.dump"
BOUND = 60.0

SENDER = r"""
import socket, sys, time
from exi.capture._pcap import iter_frames
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        for n, ts, lt, data in iter_frames(f):
            s.send(bytes(data))
            time.sleep(0.002)
print("sent", flush=True)
"""


pair = pytest.fixture(scope="module")(netns_pair)


def _lines_until(proc, n, bound):
    out = []
    end = time.monotonic() + bound
    while len(out) < n:
        left = end - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        out.append(json.loads(line))
    return out


def _start(pair, *args):
    proc = pair.popen("secc", [sys.executable, "-m", "exi", "decode", "--live", pair.iface["secc"], *args],
                      cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, text=False, bufsize=0)
    ready, _, _ = select.select([proc.stderr], [], [], BOUND)     # "capturing on ..." once the socket is bound
    assert ready and b"capturing on" in proc.stderr.readline()     # unbuffered: select() sees every line
    return proc


def _send(pair, *paths):
    r = pair.run("evcc", [sys.executable, "-c", SENDER, pair.iface["evcc"], *paths], cwd=REPO,
                 env={**os.environ, "PYTHONPATH": REPO}, timeout=BOUND)
    assert r.returncode == 0 and "sent" in r.stdout, r.stderr


def test_live_interface_decodes_slac_and_a_session_as_they_arrive(pair, shared_captures):
    fiat = os.path.join(shared_captures, FIAT)
    want = [(r.name, r.direction) for p in (fiat, EXAMPLE) for r in exi.capture.read(p)]
    proc = _start(pair, "--format", "jsonl")
    try:
        _send(pair, fiat, EXAMPLE)
        got = _lines_until(proc, len(want), BOUND)
        # each record was printed while the capture was still running (before SIGINT)
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read().decode()
        code = proc.wait(BOUND)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert "Traceback" not in err and "frames captured on" in err
    # the receiving namespace adds its own traffic (neighbour discovery...), never a record
    names = [(r["message"], r["direction"]) for r in got]
    assert names == want, (len(names), len(want))
    assert rest.strip() == ""
    slac_recs = [r for r in got if r["transport"] == "homeplug"]
    assert len(slac_recs) == 65 and slac_recs[0]["src"] == "f2:9f:aa:19:28:60"
    cd = [r for r in got if r["message"] == "CurrentDemandReq"]
    assert cd and cd[0]["content"]["V2G_Message"]["Body"]["CurrentDemandReq"]["EVTargetVoltage"]


def test_live_summary_after_sigint(pair, shared_captures):
    proc = _start(pair, "--summary")
    try:
        _send(pair, os.path.join(shared_captures, FIAT))
        time.sleep(0.5)                         # nothing is printed before the capture ends
        proc.send_signal(signal.SIGINT)
        out, err = (b.decode() for b in proc.communicate(timeout=BOUND))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "5 matching attempt(s)" in out
    assert "matched in" in out and "TT_match_response" in out


def test_live_on_a_missing_interface_says_so(pair):
    r = pair.run("secc", [sys.executable, "-m", "exi", "decode", "--live", "nosuchif0"], cwd=REPO,
                 env={**os.environ, "PYTHONPATH": REPO}, timeout=BOUND)
    assert r.returncode == 2
    assert "interface nosuchif0" in r.stderr and "Traceback" not in r.stderr


def test_live_capture_of_our_secc_and_evcc_with_tls(pair, tmp_path, tshark):
    """Our SECC and EVCC charge twice (DIN over TCP, ISO 15118-2 over TLS) while --live
    watches the SECC's interface; TLS is decrypted when the capture ends (SECC key log)."""
    from exi.v2g.pki import create_pki, write_pki
    write_pki(create_pki("iso2"), tmp_path / "pki")
    keylog = tmp_path / "keys.log"
    env = {**os.environ, "PYTHONPATH": REPO}
    live = _start(pair, "--format", "jsonl", "--keylog", str(keylog))
    secc = SECCProcess(pair, ["--tls", "--pki", tmp_path / "pki", "--keylog", keylog], env=env,
                       start_timeout=BOUND)
    try:
        traces = []
        for proto, extra in (("din", []), ("iso2", ["--tls", "--pki", str(tmp_path / "pki")])):
            trace = tmp_path / f"evcc-{proto}.jsonl"
            r = pair.run("evcc", [sys.executable, "-m", "exi", "evcc", "-i", pair.iface["evcc"], "--protocol",
                                  proto, "--mode", "dc", "--loops", "3", "--loop-interval", "0.02",
                                  "--trace", str(trace), *extra], cwd=REPO, env=env, timeout=BOUND)
            assert r.returncode == 0, r.stderr[-2000:]
            traces.append([json.loads(x) for x in trace.read_text().splitlines()])
        din_msgs = [x["message"] for x in traces[0]]
        # the plain TCP session is on the output before the capture is stopped
        got = _lines_until(live, sum(1 for _ in din_msgs) + 2, BOUND)   # + SDP request and response
        assert [r["message"] for r in got if r["transport"] == "tcp"] == din_msgs
        live.send_signal(signal.SIGINT)
        rest = [json.loads(x) for x in live.stdout.read().decode().splitlines()]
        assert live.wait(BOUND) == 0, live.stderr.read().decode()
    finally:
        for p in (live, secc.proc):
            if p.poll() is None:
                p.kill()
    tls = [r for r in got + rest if r["transport"] == "tls"]
    assert [r["message"] for r in tls] == [x["message"] for x in traces[1]]
    assert all(not r.get("error") for r in tls)
    assert {r["schema"] for r in tls} == {"sap", "iso2"}
