"""exi.compat.ExiCodec (JSON text in/out, the iso15118 package's IEXICodec) vs that package's
own codec (EXIficient 1.55 in a JVM via py4j), per message and direction.

    python -m pytest benchmarks/bench_compat.py

The benchmark rows time our adapter (json.loads/from_dict/encode, decode/to_dict/dumps):
exactly what the package calls. The Java codec is timed INSIDE its bridge process
(tests/interop/josev_bridge.py "time" op: py4j + JVM, no pipe), which is what the package
pays per call; both figures and the ratio are printed in a "compat vs Java codec" section
at the end and stored in each row's extra_info. Needs the peer venv (fails, never skips).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from exi.compat import ExiCodec
from exi.registry import SCHEMAS

_PEER_PY = Path(__file__).resolve().parents[1] / "tests" / "interop" / "peer.py"
IN_JVM_N = 300
ADAPTER = ExiCodec()


def _load_peer():
    name = "exi15118_interop_peer"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _PEER_PY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


peer = _load_peer()

# (schema, JSON) in the package's convention; CurrentDemandReq/Res as its sessions send them
_H = {"SessionID": "4758FDD348A5EB24"}
_PV = lambda m, u, v: {"Multiplier": m, "Unit": u, "Value": v}   # noqa: E731
MESSAGES = {
    "din SessionSetupReq": ("din", {"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {
        "SessionSetupReq": {"EVCCID": "0A0B0C0D0E0F"}}}}),
    "din CurrentDemandReq": ("din", {"V2G_Message": {"Header": _H, "Body": {"CurrentDemandReq": {
        "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55},
        "EVTargetCurrent": _PV(0, "A", 120), "EVMaximumVoltageLimit": _PV(0, "V", 450),
        "EVMaximumCurrentLimit": _PV(0, "A", 200), "EVMaximumPowerLimit": _PV(3, "W", 90),
        "BulkChargingComplete": False, "ChargingComplete": False,
        "RemainingTimeToFullSoC": _PV(0, "s", 1800), "RemainingTimeToBulkSoC": _PV(0, "s", 1200),
        "EVTargetVoltage": _PV(0, "V", 400)}}}}),
    "din CurrentDemandRes": ("din", {"V2G_Message": {"Header": _H, "Body": {"CurrentDemandRes": {
        "ResponseCode": "OK", "DC_EVSEStatus": {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready",
                                                "NotificationMaxDelay": 0, "EVSENotification": "None"},
        "EVSEPresentVoltage": _PV(0, "V", 398), "EVSEPresentCurrent": _PV(0, "A", 119),
        "EVSECurrentLimitAchieved": False, "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
        "EVSEMaximumVoltageLimit": _PV(0, "V", 500), "EVSEMaximumCurrentLimit": _PV(0, "A", 200),
        "EVSEMaximumPowerLimit": _PV(3, "W", 100)}}}}),
    "iso2 SessionSetupReq": ("iso2", {"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {
        "SessionSetupReq": {"EVCCID": "0A0B0C0D0E0F"}}}}),
    "iso2 CurrentDemandReq": ("iso2", {"V2G_Message": {"Header": _H, "Body": {"CurrentDemandReq": {
        "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55},
        "EVTargetCurrent": _PV(0, "A", 120), "EVMaximumVoltageLimit": _PV(0, "V", 450),
        "EVMaximumCurrentLimit": _PV(0, "A", 200), "EVMaximumPowerLimit": _PV(3, "W", 90),
        "BulkChargingComplete": False, "ChargingComplete": False,
        "RemainingTimeToFullSoC": _PV(0, "s", 1800), "RemainingTimeToBulkSoC": _PV(0, "s", 1200),
        "EVTargetVoltage": _PV(0, "V", 400)}}}}),
    "iso2 CurrentDemandRes": ("iso2", {"V2G_Message": {"Header": _H, "Body": {"CurrentDemandRes": {
        "ResponseCode": "OK", "DC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None",
                                                "EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready"},
        "EVSEPresentVoltage": _PV(0, "V", 398), "EVSEPresentCurrent": _PV(0, "A", 119),
        "EVSECurrentLimitAchieved": False, "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
        "EVSEMaximumVoltageLimit": _PV(0, "V", 500), "EVSEMaximumCurrentLimit": _PV(0, "A", 200),
        "EVSEMaximumPowerLimit": _PV(3, "W", 100), "EVSEID": "DE*ABC*E123456", "SAScheduleTupleID": 1}}}}),
}


@pytest.fixture(scope="module")
def josev(request):
    try:
        codec = peer.JosevCodec()
    except peer.PeerUnavailable as e:
        pytest.fail(f"the iso15118 peer is unavailable: {e}", pytrace=False)
    codec.rows = []
    yield codec
    codec.close()
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    cm = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is not None and cm is not None:
        with cm.global_and_fixture_disabled():
            tr.write_line("")
            tr.write_sep("-", "compat vs Java codec (mean per call)")
            for line in codec.rows:
                tr.write_line(line)


def _run(benchmark, josev, key, op):
    sid, d = MESSAGES[key]
    ns = SCHEMAS[sid].namespace
    text = json.dumps(d)
    data = ADAPTER.encode(text, ns)
    assert josev.encode(text, ns) == data                  # same bytes as the Java codec
    our_text = ADAPTER.decode(data, ns)
    assert our_text == josev.decode_text(data, ns)         # same JSON text
    if op == "encode":
        t = josev.time_in_jvm("encode", ns, IN_JVM_N, message=text)
        fn, arg, expect = ADAPTER.encode, text, data
    else:
        t = josev.time_in_jvm("decode", ns, IN_JVM_N, data=data)
        fn, arg, expect = ADAPTER.decode, data, our_text
    benchmark.group = f"compat {key} {op}"
    benchmark.name = f"ExiCodec.{op} (JSON {'in' if op == 'encode' else 'out'})"
    result = benchmark(fn, arg, ns)
    assert result == expect
    ours = benchmark.stats.stats.mean if benchmark.stats else float("nan")
    benchmark.extra_info.update({"java_in_jvm_mean_s": t["mean_s"], "java_in_jvm_median_s": t["median_s"],
                                 "java_n": t["n"], "speedup_vs_java_mean": t["mean_s"] / ours})
    josev.rows.append(f"{key:24} {op:6}  ExiCodec {ours * 1e6:8.1f} us | Java in-JVM "
                      f"{t['mean_s'] * 1e6:8.1f} us (median {t['median_s'] * 1e6:7.1f}) | "
                      f"x{t['mean_s'] / ours:6.0f}")


@pytest.mark.parametrize("key", list(MESSAGES))
def bench_compat_encode(benchmark, josev, key):
    _run(benchmark, josev, key, "encode")


@pytest.mark.parametrize("key", list(MESSAGES))
def bench_compat_decode(benchmark, josev, key):
    _run(benchmark, josev, key, "decode")
