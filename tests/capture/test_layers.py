"""Frames, link layers, TCP reassembly, V2GTP framing and schema decisions, tested
without the EXI codec (a stand-in decoder knows the fixture payloads)."""
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exi.capture import CaptureReader, Decoder, synth
from exi.capture import _net, _pcap, _tcp, _v2gtp

from .conftest import StandIn, session_frames


def read(path, samples, **kw):
    r = CaptureReader(decoder=Decoder(impl=StandIn(samples)), **kw)
    recs = list(r.read(str(path)))
    return r, recs


def names(recs):
    return [r.name for r in recs if r.name]


def expected(entries):
    return [e["message"] for e in entries]


# --- file formats and link layers ----------------------------------------------------

@pytest.mark.parametrize("linktype", [1, 113, 276, 101, 0])
@pytest.mark.parametrize("writer", ["pcap", "pcap-ns", "pcapng"])
def test_link_types_and_formats(tmp_path, samples, linktype, writer):
    din = samples["sessions"]["din"]
    c = session_frames(din)
    p = tmp_path / "x.cap"
    if writer == "pcapng":
        synth.write_pcapng(str(p), c.frames, linktype)
    else:
        synth.write_pcap(str(p), c.frames, linktype, nano=writer == "pcap-ns")
    r, recs = read(p, samples)
    assert names(recs) == expected(din)
    assert all(x.error is None for x in recs)
    assert [x.schema for x in recs[:3]] == ["sap", "sap", "din"]
    assert recs[0].direction == "EVCC->SECC" and recs[1].direction == "SECC->EVCC"
    assert abs(recs[0].time - c.frames[3][0]) < 1e-6          # timestamps survive (ns and us)
    assert r.stats["v2g_streams"] == 1


def test_pcapng_interfaces_with_different_link_types(samples):
    """dpkt's reader uses the first interface's link type for every packet; ours does not."""
    import dpkt
    din = samples["sessions"]["din"][:4]
    c = session_frames(din)
    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, idb=[dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=1, snaplen=65535),
                                     dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=101, snaplen=65535)])
    for i, (ts, ip) in enumerate(c.frames):
        iface = i % 2
        epb = dpkt.pcapng.EnhancedPacketBlockLE(iface_id=iface, pkt_data=synth.link_frame(1 if iface == 0 else 101, ip))
        w.writepkt(epb, ts=ts)
    out = [it for it in _pcap._pcapng(buf.getvalue())]
    assert [it[2] for it in out] == [1 if i % 2 == 0 else 101 for i in range(len(c.frames))]


def test_ipv4_and_ethernet_padding(tmp_path, samples):
    entries = samples["sessions"]["din"][:6]
    c = session_frames(entries, client=synth.EVCC4, server=synth.SECC4)
    frames = [(t, ip) for t, ip in c.frames]
    p = tmp_path / "v4.pcap"
    with open(p, "wb") as f:          # pad every frame to the Ethernet minimum the way NICs do
        import dpkt
        w = dpkt.pcap.Writer(f, linktype=1)
        for t, ip in frames:
            fr = synth.link_frame(1, ip)
            w.writepkt(fr + b"\0" * max(0, 60 - len(fr)), t)
    r, recs = read(p, samples)
    assert names(recs) == expected(entries)
    assert recs[0].src == synth.EVCC4 and recs[0].sport == 50000


def test_net_parse_ignores_non_ip_and_fragments():
    assert _net.parse(1, b"\0" * 12 + b"\x88\xe1" + b"\0" * 40) is None       # HomePlug
    ip6 = bytearray(synth.udp_packet(synth.EVCC6, 1, synth.SECC6, 2, b"x"))
    ip6[6] = 44
    assert _net.parse(101, bytes(ip6)) is None
    assert _net.parse(999, bytes(ip6)) is None


# --- TCP reassembly ----------------------------------------------------------------

def test_out_of_order_retransmission_and_overlap(tmp_path, samples):
    din = samples["sessions"]["din"]
    c = synth.TcpConversation()
    c.handshake()
    for i, e in enumerate(din):
        data = synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"]))
        frm = e["message"].endswith("Req")
        if i == 4:      # three segments delivered 3, 1, 2 plus a duplicate of 1
            idx = c.send(frm, data, split=(5, 11))
            f = c.frames
            f[idx[0]], f[idx[1]], f[idx[2]] = f[idx[2]], f[idx[0]], f[idx[1]]
            f.append(f[idx[1]])
        elif i == 6:    # a retransmission overlapping the end of the previous segment
            c.send(frm, data[:10])
            c.raw_segment(frm, -6, data[4:])
            c.seq[0 if frm else 1] += len(data) - 10
        else:
            c.send(frm, data, split=(3,) if i % 3 == 0 else ())
    c.fin()
    p = tmp_path / "ooo.pcap"
    synth.write_pcap(str(p), c.frames)
    r, recs = read(p, samples)
    assert [x.error for x in recs if x.error] == []
    assert names(recs) == expected(din)


def test_half_stream_sequence_wraparound_and_gap():
    h = _tcp.Half()
    h.syn(0xFFFFFFF0)
    assert list(h.accept(0xFFFFFFF1, b"a" * 20)) == [b"a" * 20]        # wraps past 2**32
    assert h.nxt == (0xFFFFFFF1 + 20) & 0xFFFFFFFF
    assert list(h.accept(h.nxt + 10, b"late")) == []                    # hole of 10 bytes
    assert h.finish() == [10, b"late"]


def test_ooo_buffer_is_bounded():
    h = _tcp.Half()
    h.syn(0)
    chunk = b"x" * 65536
    out = []
    for i in range(1, 20):      # never fill the first hole
        out += list(h.accept(1 + 1000 + i * 65536, chunk))
    assert h.held <= _tcp.MAX_OOO
    assert out and isinstance(out[0], int)


class _ScanModel:
    """The reassembly rules as plainly as they can be written (the held segments scanned
    at every step, as _tcp.Half once did): the reference Half must agree with."""
    M, HALF = 0xFFFFFFFF, 0x80000000

    def __init__(self):
        self.nxt, self.ooo, self.held = -1, {}, 0

    def accept(self, seq, data):
        if self.nxt < 0:
            self.nxt = seq
        d = (seq - self.nxt) & self.M
        if d and d >= self.HALF:
            back = (self.nxt - seq) & self.M
            if back >= len(data):
                return []
            data = data[back:]
        elif d:
            old = self.ooo.get(seq)
            if old is None or len(old) < len(data):
                self.ooo[seq] = data
                self.held += len(data) - (len(old) if old is not None else 0)
            return self._skip() if self.held > _tcp.MAX_OOO else []
        self.nxt = (self.nxt + len(data)) & self.M
        return [data] + self._drain()

    def _drain(self):
        out, progress = [], True
        while self.ooo and progress:
            progress = False
            # the earliest-starting first, of those that start at or before nxt
            for seq in sorted(self.ooo, key=lambda s: (s - self.nxt + self.HALF) & self.M):
                d = (seq - self.nxt) & self.M
                if d == 0 or d >= self.HALF:
                    data = self.ooo.pop(seq)
                    self.held -= len(data)
                    back = (self.nxt - seq) & self.M
                    if back < len(data):
                        out.append(data[back:])
                        self.nxt = (self.nxt + len(data) - back) & self.M
                    progress = True
        return out

    def _skip(self):
        first = min(self.ooo, key=lambda s: (s - self.nxt) & self.M)
        gap, self.nxt = (first - self.nxt) & self.M, first
        return [gap] + self._drain()

    def acked(self, ack):
        out = []
        while self.ooo and 0 < ((ack - self.nxt) & self.M) < self.HALF:
            out += self._skip()
        return out

    def finish(self):
        out = []
        while self.ooo:
            out += self._skip()
        return out


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 0xFFFFFFFF), st.lists(st.tuples(st.integers(0, 300), st.integers(1, 40),
                                                      st.integers(0, 9)), min_size=1, max_size=60))
def test_half_agrees_with_the_plain_rules(isn, segments):
    """Segments cut from one stream at random offsets (so out of order, overlapping,
    duplicated, with holes), an ACK now and then, then the end: _tcp.Half gives what the
    plain scan-everything rules give, piece for piece."""
    stream = bytes(range(256)) * 2
    ours, model = _tcp.Half(), _ScanModel()
    ours.syn(isn)
    model.nxt = (isn + 1) & 0xFFFFFFFF
    got, want = [], []
    for off, n, ack in segments:
        seq = (isn + 1 + off) & 0xFFFFFFFF
        got += list(ours.accept(seq, stream[off:off + n]))
        want += model.accept(seq, stream[off:off + n])
        if ack == 0:        # the peer acknowledges what it has
            got += ours.acked((isn + 1 + off + n) & 0xFFFFFFFF)
            want += model.acked((isn + 1 + off + n) & 0xFFFFFFFF)
    got += ours.finish()
    want += model.finish()
    assert got == want
    assert ours.held == 0 and not ours.ooo


def test_many_small_segments_in_reverse_order():
    """20,000 one-byte segments arriving last first, then the first: one piece each, in
    order (a scan of the held segments per step made this quadratic: a minute for 32,000)."""
    h = _tcp.Half()
    h.syn(999)
    n = 20000
    assert list(h.accept(1000 + n, b"!")) == []
    for i in range(n - 1, 0, -1):
        assert list(h.accept(1000 + i, bytes([i & 0xFF]))) == []
    out = list(h.accept(1000, b"\x00"))
    assert len(out) == n + 1 and b"".join(out) == bytes(i & 0xFF for i in range(n)) + b"!"
    assert h.held == 0 and h.finish() == []


def test_capture_gap_resynchronises(tmp_path, samples):
    din = samples["sessions"]["din"]
    c = synth.TcpConversation()
    c.handshake()
    lost = None
    for i, e in enumerate(din):
        idx = c.send(e["message"].endswith("Req"), synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"])),
                     split=(8,) if i == 8 else ())
        if i == 8:
            lost = idx[1]
    c.fin()
    del c.frames[lost]          # the second half of message 8 was never captured
    p = tmp_path / "gap.pcap"
    synth.write_pcap(str(p), c.frames)
    r, recs = read(p, samples)
    errs = [x for x in recs if x.error]
    assert len(errs) == 1 and "gap" in errs[0].error
    assert names(recs) == expected(din[:8] + din[9:])


def test_two_sessions_two_seccs_interleaved_and_port_reuse(tmp_path, samples):
    din, iso2 = samples["sessions"]["din"], samples["sessions"]["iso2"]
    a = session_frames(din, cport=50001, server=synth.SECC6, sport=15118, dt=0.01)
    b = session_frames(iso2, cport=50002, server="fe80::99", sport=61000, t0=1_700_000_000.005, dt=0.01)
    again = session_frames(iso2, cport=50001, server=synth.SECC6, sport=15118, t0=1_700_000_100.0)
    frames = sorted(a.frames + b.frames, key=lambda f: f[0]) + again.frames
    p = tmp_path / "two.pcapng"
    synth.write_pcapng(str(p), frames)
    r, recs = read(p, samples)
    by = {}
    for x in recs:
        by.setdefault(x.stream, []).append(x)
    assert sorted(by) == [0, 1, 2]
    assert names(by[0]) == expected(din) and {x.schema for x in by[0][2:]} == {"din"}
    assert names(by[1]) == expected(iso2) and {x.schema for x in by[1][2:]} == {"iso2"}
    assert names(by[2]) == expected(iso2)
    assert r.stats["tcp_streams"] == 3


def test_midstream_pickup_without_syn_or_sap_guesses(tmp_path, samples):
    din = samples["sessions"]["din"]
    c = session_frames(din[6:], handshake=False)
    p = tmp_path / "mid.pcap"
    first = c.frames[0]
    ts, ip = first                       # cut the first message in half: a pickup mid-message
    c.frames[0] = (ts, ip[:len(ip) - 5])
    fixed = bytearray(c.frames[0][1])
    struct.pack_into("!H", fixed, 4, len(fixed) - 40)
    c.frames[0] = (ts, bytes(fixed))
    synth.write_pcap(str(p), c.frames)
    r, recs = read(p, samples)
    good = [x for x in recs if x.name]
    assert names(good) == expected(din[7:])
    assert all(x.schema == "din" and x.schema_guessed for x in good)
    assert good[0].direction == "SECC->EVCC"          # the first complete message is a Res


def test_non_v2g_tcp_stream_is_ignored(tmp_path, samples):
    c = synth.TcpConversation(sport=80)
    c.handshake()
    c.send(True, b"GET / HTTP/1.1\r\n\r\n" + b"\x01\xfe\x80\x01\0\0\0\x01\0")
    c.fin()
    p = tmp_path / "http.pcap"
    synth.write_pcap(str(p), c.frames)
    r, recs = read(p, samples)
    assert recs == [] and r.stats["v2g_streams"] == 0


def test_sdp_names_the_secc_port(tmp_path, samples):
    din = samples["sessions"]["din"][:4]
    c = session_frames(din, handshake=False, sport=61234)      # no SYN: direction from SDP
    frames = synth.sdp_frames(synth.EVCC6, synth.SECC6, 61234, c.frames[0][0] - 1) + c.frames
    # first frame of the stream comes from the SECC side to make the heuristics work hard
    p = tmp_path / "sdp.pcap"
    synth.write_pcap(str(p), frames)
    r, recs = read(p, samples)
    assert recs[0].name == "SECCDiscoveryReq" and recs[0].direction == "EVCC->SECC"
    assert recs[1].content["SECCPort"] == 61234 and recs[1].content["Security"] == "NoTLS"
    assert recs[1].stream is None and recs[1].transport == "udp"
    tcp = [x for x in recs if x.stream is not None]
    assert [x.direction for x in tcp] == ["EVCC->SECC", "SECC->EVCC"] * 2


def test_sap_failed_negotiation_leaves_schema_undecided(tmp_path, samples):
    din = samples["sessions"]["din"]
    entries = [din[0], samples["failed_sap_res"]]
    c = session_frames(entries)
    p = tmp_path / "fail.pcap"
    synth.write_pcap(str(p), c.frames)
    r, recs = read(p, samples)
    assert names(recs) == ["supportedAppProtocolReq", "supportedAppProtocolRes"]
    assert r.streams[next(iter(r.streams))][0].schema is None


def test_iso20_schema_from_payload_type(tmp_path, samples):
    s20 = samples["sessions"]["iso20"]
    p = tmp_path / "20.pcap"
    synth.write_pcap(str(p), session_frames(s20).frames)
    r, recs = read(p, samples)
    assert names(recs) == expected(s20)
    assert [x.schema for x in recs] == [e["schema"] for e in s20]
    assert not any(x.schema_guessed for x in recs)


# --- damaged files -------------------------------------------------------------------

def _session_file(tmp_path, samples, fmt="pcap"):
    c = session_frames(samples["sessions"]["din"])
    p = tmp_path / f"s.{fmt}"
    (synth.write_pcapng if fmt == "pcapng" else synth.write_pcap)(str(p), c.frames)
    return p


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_file_reports_and_keeps_what_is_there(tmp_path, samples, fmt):
    p = _session_file(tmp_path, samples, fmt)
    data = p.read_bytes()
    for cut in (len(data) - 7, len(data) * 2 // 3, 30, 3):
        q = tmp_path / f"cut{cut}.{fmt}"
        q.write_bytes(data[:cut])
        r, recs = read(q, samples)         # must not raise
        assert any(x.error for x in recs)
        assert r.stats["file_errors"] >= 1 or cut < 24


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_corrupt_record_header_resynchronises(tmp_path, samples, fmt):
    p = _session_file(tmp_path, samples, fmt)
    data = bytearray(p.read_bytes())
    # smash a record header in the middle of the file
    whole = list(_pcap.iter_frames(open(p, "rb")))
    mid = len(data) // 2
    if fmt == "pcap":
        off = 24
        for it in whole:
            if off > mid:
                break
            prev, off = off, off + 16 + len(it[3])
        struct.pack_into("<I", data, prev + 8, 0x7FFFFFFF)
    else:
        off = 0
        while off < mid:
            btype, blen = struct.unpack_from("<II", data, off)
            prev, off = off, off + blen
        struct.pack_into("<I", data, prev + 4, 0x7FFFFFF0)
    q = tmp_path / f"bad.{fmt}"
    q.write_bytes(bytes(data))
    r, recs = read(q, samples)
    assert r.stats["file_errors"] == 1
    ok = [x.name for x in recs if x.name]
    assert len(ok) >= len(samples["sessions"]["din"]) - 3       # lost at most the smashed packet's message


def test_not_a_capture(tmp_path, samples):
    q = tmp_path / "junk.pcap"
    q.write_bytes(b"hello world, not a capture")
    r, recs = read(q, samples)
    assert len(recs) == 1 and "not a pcap" in recs[0].error
    e = tmp_path / "empty.pcap"
    e.write_bytes(b"")
    r, recs = read(e, samples)
    assert "empty" in recs[0].error


# --- V2GTP framer ------------------------------------------------------------------

def test_framer_byte_by_byte_and_garbage():
    msgs = [_v2gtp.SIGNATURE + b"\x80\x01" + struct.pack("!I", n) + bytes([n % 256]) * n for n in (1, 5, 300)]
    stream = msgs[0] + b"\x00\x01\xfe\x12" + msgs[1] + msgs[2]
    f = _v2gtp.Framer(True)
    out = []
    for i in range(len(stream)):
        out += f.feed(stream[i:i + 1])
    out += f.flush()
    got = [(o, t, p if t is None else len(p)) for o, t, p in out]
    assert got[0] == (0, 0x8001, 1)
    assert got[1][1] is None and "skipped 4 bytes" in got[1][2]
    assert got[2] == (len(msgs[0]) + 4, 0x8001, 5) and got[3][2] == 300 and len(got) == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6), st.binary(max_size=12),
       st.lists(st.integers(1, 700), min_size=1, max_size=40), st.booleans())
def test_framer_output_does_not_depend_on_the_cuts(sizes, junk, cuts, synced):
    """Frames and junk fed whole or cut anywhere give the same events (offsets, payloads,
    skipped-bytes reports and what is left at the end)."""
    frames = [_v2gtp.SIGNATURE + b"\x80\x01" + struct.pack("!I", n) + bytes([n % 251]) * n for n in sizes]
    stream = junk + b"".join(frames[:1] + [junk] + frames[1:]) + frames[0][:5]
    whole = _v2gtp.Framer(synced)
    want = whole.feed(stream) + whole.flush()
    cut = _v2gtp.Framer(synced)
    got, i, k = [], 0, 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        got += cut.feed(stream[i:i + n])
        i, k = i + n, k + 1
    got += cut.flush()
    assert got == want


def test_framer_collects_a_large_message_from_small_segments():
    """A 1 MiB message in 16-byte segments is one message (it was re-joined and re-parsed
    at every segment: quadratic in its length, seconds for this one)."""
    n = _v2gtp.MAX_PAYLOAD
    frame = _v2gtp.SIGNATURE + b"\x80\x01" + struct.pack("!I", n) + bytes(range(256)) * (n // 256)
    f = _v2gtp.Framer(True)
    out = []
    for i in range(0, len(frame), 16):
        out += f.feed(frame[i:i + 16])
    assert [(o, t, len(p)) for o, t, p in out] == [(0, 0x8001, n)] and out[0][2] == frame[8:]
    assert f.flush() == [] and len(f.buf) == 0


def test_framer_oversize_and_incomplete():
    f = _v2gtp.Framer(True)
    big = _v2gtp.SIGNATURE + b"\x80\x01" + struct.pack("!I", _v2gtp.MAX_PAYLOAD + 1)
    ev = f.feed(big + _v2gtp.SIGNATURE + b"\x80\x01\0\0\0\x02ab" + _v2gtp.SIGNATURE + b"\x80\x01\0\0\0\x09abc")
    ev += f.flush()
    assert [e[1] for e in ev] == [None, 0x8001, None]
    assert "incomplete" in ev[2][2]


def test_sdp_parse():
    name, d = _v2gtp.parse_sdp(0x9001, bytes(16) + b"\xd7\x4f\x00\x00")
    assert name == "SECCDiscoveryRes" and d["SECCPort"] == 55119 and d["Security"] == "TLS"
    with pytest.raises(ValueError):
        _v2gtp.parse_sdp(0x9001, b"\0")
