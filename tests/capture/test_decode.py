"""Decoding with the real codec: synthetic sessions, rendering, summary, CLI, TLS."""
import argparse
import io
import json
import os
import subprocess
import sys

import pytest

import exi.capture
from exi.capture import cli, render, synth
from exi.capture.summary import summarize

from .conftest import DATA, REPO, session_frames


def ISO20(samples):
    # AC_ChargeLoop* use wildcard content the codec does not decode yet; the shared-capture
    # test covers them, this fixture is about the capture layers.
    return [e for e in samples["sessions"]["iso20"] if not e["message"].startswith("AC_ChargeLoop")]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, samples):
    """DIN + ISO-2 + ISO-20 sessions, SDP, one CurrentDemandRes answered late."""
    s = samples["sessions"]
    din = session_frames(s["din"], cport=50001, dt=0.01)
    iso2 = session_frames(s["iso2"], cport=50002, server="fe80::2", t0=1_700_000_010.0)
    iso20 = session_frames(ISO20(samples), cport=50003, server="fe80::3", t0=1_700_000_020.0)
    frames = synth.sdp_frames(synth.EVCC6, synth.SECC6, 15118, 1_699_999_999.0) + din.frames + iso2.frames + iso20.frames
    p = tmp_path_factory.mktemp("mixed") / "mixed.pcapng"
    synth.write_pcapng(str(p), frames)
    return str(p)


def test_sessions_decode_with_schema_from_sap(codec, samples, mixed):
    recs = list(exi.capture.read(mixed))
    assert [r.error for r in recs if r.error] == []
    by = {}
    for r in recs:
        by.setdefault(r.stream, []).append(r)
    for sid, key in ((0, "din"), (1, "iso2"), (2, "iso20")):
        entries = ISO20(samples) if key == "iso20" else samples["sessions"][key]
        assert [r.name for r in by[sid]] == [e["message"] for e in entries]
        assert [r.schema for r in by[sid]] == [e["schema"] for e in entries]
        assert not any(r.schema_guessed for r in by[sid])
        for r, e in zip(by[sid], entries):
            assert r.content == codec.to_dict(codec.decode(bytes.fromhex(e["exi_hex"]), e["schema"]))
            assert r.exi.hex() == e["exi_hex"]


def test_name_without_the_dict_form(codec, samples):
    """name_of(message) is what message_name(to_dict(message)) says, for every schema."""
    from exi.capture._codec import message_name, name_of, root_name
    entries = [e for s in samples["sessions"].values() for e in s] + [samples["failed_sap_res"]]
    for e in entries:
        msg = codec.decode(bytes.fromhex(e["exi_hex"]), e["schema"])
        d = codec.to_dict(msg)
        assert name_of(msg) == message_name(d) == e["message"]
        assert root_name(msg) == next(iter(d))


@pytest.mark.parametrize("cache", [False, True])
def test_content_is_built_lazily_once(codec, mixed, monkeypatch, cache):
    calls = []
    real = codec.to_dict

    def counting(msg):
        calls.append(msg)
        return real(msg)
    monkeypatch.setattr(codec, "to_dict", counting)
    r = exi.capture.CaptureReader(cache=cache)
    recs = list(r.read(mixed))
    exi_recs = [x for x in recs if x.message is not None]
    # only the SupportedAppProtocol exchange needs a dict to pick the schema
    assert calls and all(m.__class__.__name__.startswith("supportedAppProtocol") for m in calls)
    before = len(calls)
    for x in exi_recs:
        assert x.content is x.content
        assert x.content == real(x.message)
    built = len(calls) - before
    payloads = {(x.schema, x.exi) for x in exi_recs if x.schema != "sap"}
    assert r.stats["decoded"] == sum(1 for x in recs if x.content is not None) == len(exi_recs) + 2   # + SDP
    if cache:       # one dict per distinct payload, shared by the records carrying it
        assert built == len(payloads)
    else:           # one per record (SupportedAppProtocol ones were built while reading)
        assert built == len([x for x in exi_recs if x.schema != "sap"])


def test_records_compare_by_value_and_pickle(codec, mixed):
    """What MessageRecord offered as a dataclass: equality by fields, repr, pickling, no hash."""
    import pickle
    a, b = list(exi.capture.read(mixed)), list(exi.capture.read(mixed, cache=False))
    assert a == b and a[5] is not b[5]
    assert a[5] != a[6]
    for r in a:
        again = pickle.loads(pickle.dumps(r))
        assert again == r and again.content == r.content and again.name == r.name
    assert repr(a[0]).startswith("MessageRecord(time=") and "SECCDiscoveryReq" in repr(a[0])
    with pytest.raises(TypeError):
        hash(a[0])


def test_without_sap_the_schema_is_guessed_and_flagged(codec, tmp_path, samples):
    din = samples["sessions"]["din"][2:]
    p = tmp_path / "nosap.pcap"
    synth.write_pcap(str(p), session_frames(din).frames)
    recs = list(exi.capture.read(str(p)))
    assert [r.name for r in recs] == [e["message"] for e in din]
    assert all(r.schema == "din" and r.schema_guessed for r in recs)


def test_undecodable_frame_reports_error_and_position(codec, tmp_path, samples):
    din = list(samples["sessions"]["din"])
    bad = dict(din[4], exi_hex="80" + "ff" * 12)
    din[4] = bad
    p = tmp_path / "bad.pcap"
    synth.write_pcap(str(p), session_frames(din).frames)
    recs = list(exi.capture.read(str(p)))
    errs = [r for r in recs if r.error]
    assert len(errs) == 1 and errs[0].frame > 0 and errs[0].offset >= 0
    assert errs[0].exi.hex() == bad["exi_hex"] and errs[0].schema == "din"
    assert len([r for r in recs if r.name]) == len(din) - 1


def test_xml_output_goes_on_past_a_value_xml_cannot_hold(codec, tmp_path, samples):
    """EXI strings may hold U+0000, XML 1.0 cannot: that message becomes an <error>, the
    output stays well-formed and the following messages are written (as one BMW capture needs)."""
    din = [e for e in samples["sessions"]["din"] if e["schema"] == "din"][:4]
    msg = exi.decode(bytes.fromhex(din[0]["exi_hex"]), "din")
    d = exi.to_dict(msg)
    body = d["V2G_Message"]["Body"]
    assert "SessionSetupReq" in body, body
    bad = exi.from_dict({"V2G_Message": {"Header": d["V2G_Message"]["Header"], "Body": {
        "ServiceDiscoveryReq": {"ServiceScope": "a\x00b"}}}}, "din")
    frames = [dict(din[0], exi_hex=exi.encode(bad).hex())] + din[1:]
    sap = [e for e in samples["sessions"]["din"] if e["schema"] == "sap"]
    p = tmp_path / "nul.pcap"
    synth.write_pcap(str(p), session_frames(sap + frames).frames)
    x = io.StringIO()
    n = render.write_xml(exi.capture.read(str(p)), x)
    import xml.dom.minidom
    doc = xml.dom.minidom.parseString(x.getvalue())
    msgs = doc.getElementsByTagName("message")
    assert n == len(msgs) == len(sap) + len(frames)
    errors = doc.getElementsByTagName("error")
    assert len(errors) == 1 and "U+0000" in errors[0].firstChild.data
    assert errors[0].parentNode.getAttribute("name") == "ServiceDiscoveryReq"


def test_jsonl_xml_table_and_filter(codec, mixed):
    out = io.StringIO()
    n = render.write_jsonl(render.filtered(exi.capture.read(mixed), render.matcher("CurrentDemand,session*")), out)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert n == len(rows) == 4 + 4 + 2 + 4   # CurrentDemand x4; SessionSetup/Stop: din 4, iso2 2, iso20 4
    assert {r["message"] for r in rows} >= {"CurrentDemandReq", "CurrentDemandRes", "SessionSetupReq"}
    row = rows[0]
    assert set(row) >= {"time", "stream", "direction", "payload_type", "schema", "message", "content"}
    assert row["payload_type"] == "0x8001" and row["src"].startswith("[fe80::")
    x = io.StringIO()
    render.write_xml(exi.capture.read(mixed), x)
    import xml.dom.minidom
    doc = xml.dom.minidom.parseString(x.getvalue())
    assert len(doc.getElementsByTagName("message")) == 2 + 26 + 10 + 14
    t = io.StringIO()
    render.write_table(exi.capture.read(mixed), t)
    lines = t.getvalue().splitlines()
    assert len(lines) == 1 + 2 + 26 + 10 + 14
    assert "SessionSetupRes" in lines[6] and "ResponseCode=OK" in lines[6]


def test_summary(codec, tmp_path, samples):
    din = samples["sessions"]["din"]
    c = synth.TcpConversation()
    c.handshake()
    for e in din:
        slow = e["message"] == "CurrentDemandRes"
        c.send(e["message"].endswith("Req"), synth.v2gtp(e["payload_type"], bytes.fromhex(e["exi_hex"])),
               dt=0.9 if slow else 0.01)
    c.fin()
    c2 = session_frames([din[0], samples["failed_sap_res"]], cport=50009, t0=1_800_000_000.0)
    p = tmp_path / "sum.pcap"
    synth.write_pcap(str(p), c.frames + c2.frames)
    s = summarize(exi.capture.read(str(p)))
    a, b = s["sessions"]
    assert a["protocol"] == "DIN SPEC 70121:2014" and not a["protocol_guessed"]
    assert a["EVCCID"] == "FCA47A14A391" and a["EVSEID"]
    assert a["messages"]["CurrentDemandReq"] == 2
    cd = [t for t in a["response_times"] if t["message"] == "CurrentDemand"][0]
    # One timer table (exi.v2g.session.timers) for the cores and the summary: DIN
    # CurrentDemand V2G_EVCC_Msg_Timeout is 0.25 s in both (the summary said 0.5 s).
    from exi.v2g.session import timers
    assert cd["limit"] == timers.evcc_msg_timeout("din", "CurrentDemandReq") == 0.25
    assert cd["count"] == 2 and cd["over_limit"] == 2 and cd["over_performance_time"] == 2
    assert [(x["message"], x["timer"]) for x in a["late_responses"]] == \
        [("CurrentDemandRes", "V2G_SECC_Msg_Performance_Time"), ("CurrentDemandRes", "V2G_EVCC_Msg_Timeout")] * 2
    assert a["problems"] == []
    assert b["protocol"] is None
    assert any("Failed_NoNegotiation" in p["error"] for p in b["problems"])
    text = io.StringIO()
    render.write_summary(s, text)
    assert "EVCCID: FCA47A14A391" in text.getvalue() and "Table 75" in text.getvalue()
    assert "V2G_EVCC_Msg_Timeout CurrentDemandRes: 2 over 0.25 s" in text.getvalue()


def _run_cli(argv, stdin=None):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(p.parse_args(argv), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_cli(codec, mixed, tmp_path):
    rc, out, err = _run_cli([mixed, "--format", "table", "--filter", "SessionSetupRes"])
    assert rc == 0 and out.count("SessionSetupRes") == 3
    rc, out, err = _run_cli([mixed, "--summary"])
    assert rc == 0 and out.count("Session: stream") == 3
    rc, out, err = _run_cli([mixed, "--summary", "--format", "jsonl"])
    assert len(json.loads(out)["sessions"]) == 3
    rc, out, err = _run_cli([str(tmp_path / "missing.pcap")])
    assert rc == 2 and "no such file" in err
    assert cli.is_capture(mixed) and not cli.is_capture(os.path.join(DATA, "exi_samples.json"))
    # the lead's decode parser may already own --format: add_arguments must not clash
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("--format", choices=["json", "xml", "table", "jsonl"], default="json")
    cli.add_arguments(p, positional=False)
    out = io.StringIO()
    assert cli.run(p.parse_args([mixed]), out=out, err=io.StringIO()) == 0
    assert json.loads(out.getvalue().splitlines()[0])["message"] == "SECCDiscoveryReq"


def test_cli_stdin(codec, mixed):
    with open(mixed, "rb") as f:
        proc = subprocess.run([sys.executable, "-m", "exi.capture", "-", "--format", "table"], stdin=f,
                              capture_output=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().count("\n") == 1 + 2 + 26 + 10 + 14


# --- TLS -----------------------------------------------------------------------------

TLS_PCAP = os.path.join(DATA, "tls_v2g.pcap")
TLS_KEYLOG = os.path.join(DATA, "tls_v2g.keylog")


def test_tls_with_keylog(codec, tshark, samples):
    r = exi.capture.CaptureReader(TLS_KEYLOG)
    recs = list(r.read(TLS_PCAP))
    assert [x.error for x in recs if x.error] == []
    assert r.stats["tls_streams"] == 2 and r.stats["tls_decrypted"] == 2
    s0 = [x.name for x in recs if x.stream == 0]
    s1 = [x.name for x in recs if x.stream == 1]
    assert s0 == [e["message"] for e in samples["sessions"]["din"]]          # TLS 1.2
    assert s1 == [e["message"] for e in samples["sessions"]["iso2"]]         # TLS 1.3
    assert all(x.transport == "tls" for x in recs)
    assert {x.schema for x in recs if x.stream == 1} == {"sap", "iso2"}


def test_tls_without_keys_is_reported(codec, tshark):
    recs = list(exi.capture.read(TLS_PCAP))
    assert len(recs) == 2 and all("no key log" in x.error for x in recs)


def test_tls_keys_sent_in_band(codec, tshark, samples, tmp_path):
    """dsV2Gshark style: key-log lines in UDP datagrams from a port >= 49152."""
    import dpkt
    frames = []
    with open(TLS_PCAP, "rb") as f:
        rd = dpkt.pcap.Reader(f)
        lt = rd.datalink()
        for ts, buf in rd:
            frames.append((ts, buf))
    first = frames[0][0]
    keys = [ln for ln in open(TLS_KEYLOG, "rb").read().splitlines() if ln and not ln.startswith(b"#")]
    udp = [(first - 0.5 + i * 0.001, synth.link_frame(lt, synth.udp_packet("::1", 52345, "::1", 52345, k)))
           for i, k in enumerate(keys)]
    p = tmp_path / "inband.pcap"
    with open(p, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=lt, snaplen=262144)
        for ts, buf in sorted(udp + frames, key=lambda x: x[0]):
            w.writepkt(buf, ts)
    r = exi.capture.CaptureReader()
    recs = list(r.read(str(p)))
    assert r.stats["tls_decrypted"] == 2 and len(r.keylog_lines) == len(keys)
    assert [x.error for x in recs if x.error] == []
    assert len(recs) == len(samples["sessions"]["din"]) + len(samples["sessions"]["iso2"])
