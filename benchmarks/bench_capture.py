"""Capture decoding throughput: a synthetic capture of >= 100,000 V2GTP messages.

    python -m pytest benchmarks/bench_capture.py --benchmark-only -s
    EXI_NO_EXTENSIONS=1 python -m pytest benchmarks/bench_capture.py --benchmark-only -s  # pure Python

The capture (built at benchmark time in a temp dir) is one DIN session: SDP, the
SupportedAppProtocol handshake and setup messages, then a CurrentDemand loop that
cycles through four real CurrentDemandReq/Res payloads from tests/capture/data, one
V2GTP message per TCP segment over IPv6/Ethernet.  Every test reads the whole capture
with exi.capture.CaptureReader and counts the records; the figures (min and median of
the rounds, messages per second on one core) are:

- extraction only: pcap records, link/IP/TCP parsing, TCP reassembly, V2GTP framing,
  schema decision and records, with the EXI codec replaced by a lookup of the payloads'
  pre-decoded dict forms;
- full decode, cache OFF: every message goes through exi.decode (the records' name comes
  from the message object; the dict form is not built) -- the honest throughput figure;
- full decode, cache OFF, content read: as above, and every record's `content`
  (exi.to_dict) is built too, which is what JSON output costs per distinct message;
- full decode, cache ON (the CLI's default): the capture repeats its four loop payloads,
  so this measures the capture layers plus cache lookups, not the EXI codec.
"""
import json
import os
import struct

import pytest

import exi
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


class PreDecoded:
    """The codec stand-in of the extraction figure: the dict form of every payload of the
    capture, decoded beforehand, looked up per message."""

    def __init__(self):
        self.known = {}

    def prepare(self, path):
        import exi
        for rec in CaptureReader(cache=True).read(path):
            if rec.message is not None:
                self.known[(rec.schema, rec.exi)] = exi.to_dict(rec.message)
        return self

    def __call__(self, data, schema):
        d = self.known.get((schema, data))
        if d is None:
            raise ValueError("not in the capture")
        return d


def _count(path, content=False, **kw):
    r = CaptureReader(**kw)
    n = 0
    for rec in r.read(path):
        if rec.payload_type is not None and rec.error is None:
            n += 1
            if content and rec.content is None:
                raise AssertionError("a decoded record without content")
    assert r.stats["errors"] == 0
    return n, r


def _report(benchmark, n, label):
    st = benchmark.stats.stats
    benchmark.extra_info["messages"] = n
    benchmark.extra_info["messages_per_second_min_time"] = round(n / st.min)
    benchmark.extra_info["messages_per_second_median_time"] = round(n / st.median)
    print(f"\n{label} [capture: {exi.capture.IMPLEMENTATION}, codec: {exi._impl.IMPLEMENTATION}]: "
          f"{n} messages, min {st.min:.3f} s = {st.min / n * 1e6:.2f} us/message = {n / st.min:,.0f} messages/s; "
          f"median {st.median:.3f} s = {n / st.median:,.0f} messages/s")


def test_extraction_only(benchmark, capture):
    stub = PreDecoded().prepare(capture)
    n, r = benchmark.pedantic(lambda: _count(capture, decoder=Decoder(cache=False, impl=stub)),
                              rounds=5, iterations=1)
    assert n >= N_MESSAGES and r.decoder.calls >= N_MESSAGES
    _report(benchmark, n, "capture layers only (codec replaced by a lookup of pre-decoded dicts)")


def test_full_decode_uncached(benchmark, capture):
    n, r = benchmark.pedantic(_count, args=(capture,), kwargs={"cache": False}, rounds=5, iterations=1)
    assert n >= N_MESSAGES and r.decoder.hits == 0 and r.decoder.calls >= N_MESSAGES
    _report(benchmark, n, "full decode, decode cache OFF (every message through exi.decode; dicts not built)")


def test_full_decode_uncached_content(benchmark, capture):
    n, r = benchmark.pedantic(_count, args=(capture,), kwargs={"cache": False, "content": True},
                              rounds=3, iterations=1)
    assert n >= N_MESSAGES and r.decoder.hits == 0
    _report(benchmark, n, "full decode, decode cache OFF, every record's content (exi.to_dict) built")


def test_full_decode_cached(benchmark, capture):
    n, r = benchmark.pedantic(_count, args=(capture,), rounds=5, iterations=1)
    assert n >= N_MESSAGES
    _report(benchmark, n, f"full decode, decode cache ON ({r.decoder.hits} cache hits, "
                          f"{r.decoder.calls - r.decoder.hits} real decodes)")
