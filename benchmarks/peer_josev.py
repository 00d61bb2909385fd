"""Contender "josev": the iso15118 PyPI package's codec (EXIficient 1.55 in a JVM via py4j).

Two figures per message and direction:
- the benchmark row = one call through our JSON-lines bridge (pipe + JSON + py4j + JVM): what an
  interop test pays;
- ``extra_info["in_jvm_*"]`` = the same call timed in a loop INSIDE the bridge process (py4j +
  JVM only, no pipe), the fairer number to compare a codec against. Both are printed in a
  "josev peer codec" section at the end of the run.
Groups are "<schema> <message> <encode|decode>" so other contenders' rows land beside these.
Needs the peer venv (tests/interop/peer.py): it fails, never skips, when that cannot be built.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from exi.registry import SCHEMAS

_PEER_PY = Path(__file__).resolve().parents[1] / "tests" / "interop" / "peer.py"


def _load_peer():
    # By path: tests/ is not an importable package from here, and peer.py is stdlib-only.
    name = "exi15118_interop_peer"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _PEER_PY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


peer = _load_peer()

# Real-vehicle frames (EVerest/logfiles @ 5dcb757a, Apache-2.0); both re-encode byte-exactly.
MESSAGES = {
    # Mercedes-Benz/EQC/din_spec_70121/2023-04-12T08:52:22.344Z-eqc-din-spec/ethernet-traffic.dump
    "din CurrentDemandReq": ("din", "809a023d9c25cbedddda5b50d1400f00c0c00003050a40300c0c2b008080"
                                    "e170c4201810603088c143bc0800"),
    # Mercedes-Benz/EQE/2023-10-04/dinspec-DC.dump (an ISO 15118-2 session despite the name)
    "iso2 CurrentDemandReq": ("iso2", "80980232fba099b6d59f3fd0d10024818600e01881980601861e8060414"
                                      "362cc04403082b5040610528801881e6040"),
}
IN_JVM_N = 200


@pytest.fixture(scope="module")
def josev(request):
    try:
        codec = peer.JosevCodec()
    except peer.PeerUnavailable as e:
        pytest.fail(f"the iso15118 peer is unavailable: {e}", pytrace=False)
    codec.summary = [f"JVM + bridge start-up: {codec.startup_s * 1000:.0f} ms (EXIficient {codec.version})"]
    yield codec
    codec.close()
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    cm = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is not None and cm is not None:
        with cm.global_and_fixture_disabled():       # teardown output is captured otherwise
            tr.write_line("")
            tr.write_sep("-", "josev peer codec")
            for line in codec.summary:
                tr.write_line(line)


def _run(benchmark, josev, key, op):
    schema, hexstr = MESSAGES[key]
    ns = SCHEMAS[schema].namespace
    data = bytes.fromhex(hexstr)
    text = josev.decode_text(data, ns)                 # also the first (slow) call, not timed
    assert josev.encode(text, ns) == data              # a benchmark of wrong output is worthless
    if op == "encode":
        fn, args, kw = josev.encode, (text, ns), {"data": None, "message": text}
    else:
        fn, args, kw = josev.decode_text, (data, ns), {"data": data, "message": None}
    t = josev.time_in_jvm(op, ns, IN_JVM_N, **kw)
    benchmark.group = f"{key} {op}"
    benchmark.extra_info.update({"contender": "josev", "via": "bridge (pipe+JSON+py4j+JVM)",
                                 "in_jvm_n": t["n"], "in_jvm_mean_s": t["mean_s"],
                                 "in_jvm_median_s": t["median_s"], "in_jvm_min_s": t["min_s"]})
    result = benchmark(fn, *args)
    assert result == (data if op == "encode" else text)
    bridge_mean = benchmark.stats.stats.mean if benchmark.stats else float("nan")
    josev.summary.append(
        f"{key:22} {op:6}  bridge mean {bridge_mean * 1e3:6.2f} ms | in-JVM (n={t['n']}) "
        f"mean {t['mean_s'] * 1e3:6.2f} ms  median {t['median_s'] * 1e3:6.2f} ms  "
        f"min {t['min_s'] * 1e3:6.2f} ms")


@pytest.mark.parametrize("key", list(MESSAGES))
def test_josev_decode(benchmark, josev, key):
    _run(benchmark, josev, key, "decode")


@pytest.mark.parametrize("key", list(MESSAGES))
def test_josev_encode(benchmark, josev, key):
    _run(benchmark, josev, key, "encode")
