"""The SECC under faults over real TCP, while 50 good sessions run (issue 15 item 4).

The SECC (serve_secc: TCP, TLS, SDP) runs in one network namespace, the load in the
other (tests/v2g/_faults.py).  Scaled down for the default run (a few seconds, short
timeouts); ``python benchmarks/bench_secc_faults.py`` runs the full scale with the
standard's timeouts.
"""
from __future__ import annotations

import json
import os
import re
import select
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.netns

SEQUENCE_TIMEOUT = 3.0      # V2G_SECC_Sequence_Timeout is 60 s; short for the test
HANDSHAKE_TIMEOUT = 2.0


def test_secc_under_faults(netns_pair, pki_iso2):
    pair = netns_pair
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    common = ["--pki", str(pki_iso2), "--sequence-timeout", str(SEQUENCE_TIMEOUT),
              "--handshake-timeout", str(HANDSHAKE_TIMEOUT)]
    secc = pair.popen("secc", [sys.executable, "-m", "tests.v2g._faults", "secc",
                               "--iface", pair.iface["secc"], *common], cwd=str(ROOT), env=env)
    ready, _, _ = select.select([secc.stdout], [], [], 30)
    assert ready, secc.stderr.read()
    info = json.loads(secc.stdout.readline())
    load = pair.run("evcc", [sys.executable, "-m", "tests.v2g._faults", "load",
                             "--iface", pair.iface["evcc"], *common,
                             "--host", f"{pair.link_local('secc')}%{pair.iface['evcc']}",
                             "--tcp-port", str(info["tcp_port"]),
                             "--tls-port", str(info["tls_port"]),
                             "--scale", "0.1", "--loops", "10",
                             # the standard's 0.25 s for CurrentDemand measures the CI
                             # machine's load more than the SECC: the benchmark keeps it
                             "--msg-timeout", "2"],
                    cwd=str(ROOT), env=env, timeout=120)
    assert load.returncode == 0, load.stderr[-3000:]
    res = json.loads(load.stdout.strip().splitlines()[-1])
    out, err = secc.communicate("", timeout=30)
    summary = json.loads(out.strip().splitlines()[-1])

    # Every good session completes.
    assert res["good"] == {"n": 50, "ok": 50, "reasons": []}, (res["good"], summary["warnings"])
    # Idle connections: closed after the sequence timeout, not before.
    assert res["silent"]["closed"] == 200
    assert SEQUENCE_TIMEOUT - 0.5 <= res["silent"]["min_s"] <= res["silent"]["max_s"] \
        < SEQUENCE_TIMEOUT + 5
    # Bad bytes, a 4 GB header, a stalled TLS handshake, a pipelining client that never
    # reads: each connection closed by the SECC, alone.
    for name in ("garbage", "oversize_4gb", "discard_flood", "pipelined", "tls_stalled"):
        assert res[name]["closed"] == res[name]["n"], (name, res[name])
    assert res["tls_stalled"]["max_s"] < HANDSHAKE_TIMEOUT + 5
    assert res["rapid"]["connected"] == res["rapid"]["n"] == 500
    # The SDP responder keeps answering through the flood.
    assert res["sdp_flood"]["discovered_port"] == info["tcp_port"]
    # (the kernel drops what the socket buffer cannot hold: a flood costs bounded work)
    assert summary["sdp_discarded"] > 0 and summary["sdp_answered"] > 0
    # Values beyond the schema's limits (an EVCCID of 60,000 bytes): that connection is
    # answered or closed and nothing else is affected.  The FAILED code and the refusal
    # to store the value come with the facet check of the session core (issue 15, the
    # "fuzz" branch); this branch asserts what the transport guarantees.
    assert res["beyond_limits"]["codes"], res["beyond_limits"]

    # Nothing left open, memory bounded, each fault logged once and rate-limited.
    assert summary["open"] == 0
    grew = summary["rss"]["VmHWM"] - info["rss"]["VmRSS"]
    assert grew < 60_000, f"SECC resident memory grew by {grew} KiB"
    faults = summary["faults"]
    assert faults["V2GTP"] >= res["oversize_4gb"]["n"]
    assert faults["pipelined request"] == res["pipelined"]["n"]
    assert faults["TLS handshake failed"] >= res["tls_stalled"]["n"]
    assert faults["incomplete frame"] >= res["half_frame"]["n"]
    assert faults["silent connection"] >= 500
    assert faults["SDP"] == summary["sdp_discarded"]
    assert summary["tracebacks"] == 0, summary["warnings"]
    total = sum(faults.values())
    # one line per fault up to 10 per kind and 10 s, then one summary line per period
    assert summary["log_lines"] < 400 < total, (summary["log_lines"], total)
    warnings = summary["warnings"]
    assert any("pipelined request: a request arrived before the peer read our response" in w
               for w in warnings), warnings
    assert any("TLS handshake failed: SSL handshake is taking longer than" in w
               for w in warnings), warnings
    assert faults["discarded frames"] == res["discard_flood"]["n"]
    assert any("discarded frames: 17 frames discarded in a row (last: unknown or unexpected payload type"
               in w for w in warnings), warnings
    # the 4 GB header's own line, unless the garbage connections' V2GTP faults filled that
    # kind's 10 lines of the period first (the attacks run concurrently, so which comes
    # first varies from run to run): it is counted then (faults["V2GTP"] above), not logged
    v2gtp_lines = [w for w in warnings if re.search(r"\]:\d+:? V2GTP: ", w)]
    assert any("V2GTP: payload length exceeds the receive buffer: 4294967295" in w
               for w in warnings) or len(v2gtp_lines) >= 10, warnings
    # the peer named one way: [address%interface]:port
    peer = re.compile(r"WARNING [\w.]+: \[fe80::[0-9a-f:]+%\w+\]:\d+:? [\w ]+(:| ->) \S")
    # (the session cores' lines too: "[peer]:port: SessionSetupReq -> FAILED: ...")
    assert all(peer.match(w) for w in warnings if " faults in " not in w), \
        [w for w in warnings if " faults in " not in w and not peer.match(w)]
