"""Capture decoding throughput: a synthetic capture of >= 100,000 V2GTP messages.

    python -m pytest benchmarks/bench_capture.py --benchmark-only -s

The capture (built at benchmark time in a temp dir) is one DIN session: SDP, the
SupportedAppProtocol handshake and setup messages, then a CurrentDemand loop that
cycles through real CurrentDemandReq/Res payloads from tests/capture/data, one V2GTP
message per TCP segment over IPv6/Ethernet.  NOTE: the decode cache is ON (as in the
CLI): identical EXI payloads are decoded once per run and the resulting dicts shared,
so the "full" figure measures the capture pipeline plus cache lookups, not the EXI
codec; "extraction" replaces the codec with a constant to isolate the capture layers;
"uncached" decodes every message (a smaller capture, the codec dominates).
"""
import json
import os
import struct

import pytest

import exi.capture
from exi.capture import CaptureReader, Decoder, synth

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(os.path.dirname(HERE), "tests", "capture", "data", "exi_samples.json")
N_MESSAGES = 100_000


def build_capture(path, n_messages):
    """Write the capture with struct-patched templates (dpkt writes the file)."""
    import dpkt
    din = json.load(open(SAMPLES))["sessions"]["din"]
    setup = din[:18]
    loop = [e for e in din if e["message"].startswith("CurrentDemand")]
    c = synth.TcpConversation()
    c.handshake()
    for e in setup:
        c.send(e["message"].endswith("Req"), synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"])), dt=0.005)
    frames = synth.sdp_frames(synth.EVCC6, synth.SECC6, 15118, c.frames[0][0] - 1) + c.frames
    # templates: one Ethernet+IPv6+TCP packet per loop payload, sequence numbers patched below
    tmpl = []
    for e in loop:
        frm = e["message"].endswith("Req")
        i = 0 if frm else 1
        ip = c._pkt(frm, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"])))
        tmpl.append((i, bytearray(synth.link_frame(1, ip)), len(ip) - 60))
    seq = list(c.seq)
    t = c.t
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=65535, linktype=1)
        for ts, ip in frames:
            w.writepkt(synth.link_frame(1, ip), ts)
        seq_off = 14 + 40 + 4
        for k in range(n_messages - len(setup)):
            i, pkt, plen = tmpl[k % len(tmpl)]
            struct.pack_into("!II", pkt, seq_off, seq[i] & 0xFFFFFFFF, seq[1 - i] & 0xFFFFFFFF)
            seq[i] += plen
            t += 0.025 if i == 0 else 0.01
            w.writepkt(bytes(pkt), t)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    p = tmp_path_factory.mktemp("bench") / "loop.pcap"
    build_capture(str(p), N_MESSAGES)
    return str(p)


def _count(path, **kw):
    r = CaptureReader(**kw)
    n = sum(1 for rec in r.read(path) if rec.payload_type is not None and rec.error is None)
    return n, r


def _report(benchmark, n, label):
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["messages"] = n
    benchmark.extra_info["messages_per_second"] = round(n / mean)
    print(f"\n{label}: {n} messages in {mean:.3f} s = {n / mean:,.0f} messages/s")


def test_full_decode_cached(benchmark, capture):
    n, r = benchmark.pedantic(_count, args=(capture,), rounds=3, iterations=1)
    assert n >= N_MESSAGES
    _report(benchmark, n, f"full decode, decode cache ON ({r.decoder.hits} cache hits, "
                          f"{r.decoder.calls - r.decoder.hits} real decodes)")


def test_extraction_only(benchmark, capture):
    stub = Decoder(cache=False, impl=lambda data, schema: {"V2G_Message": {"Body": {"X": {}}}})
    n, _r = benchmark.pedantic(_count, args=(capture,), kwargs={"decoder": stub}, rounds=3, iterations=1)
    assert n >= N_MESSAGES
    _report(benchmark, n, "capture layers only (codec replaced by a constant)")


def test_full_decode_uncached(benchmark, tmp_path):
    p = tmp_path / "small.pcap"
    build_capture(str(p), 5_000)
    n, _r = benchmark.pedantic(_count, args=(str(p),), kwargs={"cache": False}, rounds=1, iterations=1)
    _report(benchmark, n, "full decode, decode cache OFF (every message through the EXI codec)")
