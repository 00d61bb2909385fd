"""`exi15118 decode`: what the arguments are, unreadable/damaged/empty captures, options that
do not apply, and the capture output (issue 14, items 1-4 and 11)."""
from __future__ import annotations

import json
import re
import shutil
import struct

import dpkt
import pytest

from exi.capture import synth

from .conftest import assert_clean

SAP_RES = "80400040"


# --- item 1: not a capture, empty, truncated, damaged ----------------------------------

def test_random_file_named_pcap_is_an_error(cli, tmp_path):
    f = tmp_path / "x.pcap"
    f.write_bytes(bytes(range(256)) * 8)
    r = cli("decode", f)
    assert r.code == 1 and r.out == ""
    assert r.err == f"exi15118 decode: error: {f}: not a pcap/pcapng capture (it starts with 00 01 02 03 04 05 06 07)\n"


def test_empty_file_is_an_error(cli, tmp_path):
    f = tmp_path / "empty.pcap"
    f.write_bytes(b"")
    r = cli("decode", f)
    assert r.code == 1 and r.out == "" and "empty file" in r.err
    assert_clean(r.err)


def test_truncated_pcapng_is_an_error(cli, tmp_path, example):
    ng = tmp_path / "s.pcapng"
    with open(example, "rb") as src, open(ng, "wb") as dst:
        rd = dpkt.pcap.Reader(src)
        w = dpkt.pcapng.Writer(dst, linktype=rd.datalink())
        for ts, buf in rd:
            w.writepkt(buf, ts)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(ng.read_bytes()[:20])
    r = cli("decode", cut)
    assert r.code == 1 and r.out == ""
    assert r.err.startswith(f"exi15118 decode: error: {cut}: cannot read it: truncated")
    assert r.err.count("\n") == 1


def test_capture_cut_off_decodes_up_to_the_cut(cli, tmp_path, example):
    data = open(example, "rb").read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:3000])
    r = cli("decode", cut)
    assert r.code == 0
    records = [json.loads(x) for x in r.out.splitlines()]
    assert len(records) > 10 and all(x["frame"] > 0 for x in records)
    assert re.fullmatch(r"exi15118 decode: warning: \S+cut.pcap: cut off at byte 2939 \(frame 26\): "
                        r"truncated packet: 154 bytes announced, 45 in file; everything before it is decoded\n",
                        r.err), r.err


def test_damage_inside_a_capture(cli, tmp_path, example):
    data = bytearray(open(example, "rb").read())
    off, n = 24, 0
    while n < 20:                              # the record header of frame 21
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        n += 1
    struct.pack_into("<II", data, off + 8, 0x7FFFFFF0, 0x7FFFFFF0)
    f = tmp_path / "damaged.pcap"
    f.write_bytes(bytes(data))
    r = cli("decode", f, "--format", "table")
    assert r.code == 1
    assert "WeldingDetectionRes" in r.out         # read on after the damage
    assert re.fullmatch(rf"exi15118 decode: warning: \S+damaged.pcap: damaged at byte {off} \(near frame 20\): "
                        r"corrupt record header \(caplen \d+, len \d+\); decoding went on at the next good "
                        r"record\n", r.err), r.err


# --- item 2: what an argument is ------------------------------------------------------

def test_capture_without_extension_is_read_as_capture(cli, tmp_path, example):
    f = tmp_path / "session_dump"
    shutil.copy(example, f)
    r = cli("decode", f, "--format", "table")
    assert r.code == 0 and "SessionSetupReq" in r.out, r.err


def test_directory_without_captures_is_named(cli, tmp_path):
    # a directory is a campaign (exi.capture.campaign); an empty one says so
    (tmp_path / "notes.txt").write_text("not a capture")
    r = cli("decode", tmp_path)
    assert r.code == 1 and r.err == (f"exi15118 decode: error: no capture files in {tmp_path} "
                                     "(use --recursive to descend into subdirectories)\n")


def test_two_captures_are_a_campaign(cli, example):
    r = cli("decode", example, example, "--format", "table")
    assert r.code == 0, r.err
    assert r.out.count("SessionSetupReq") == 2


def test_missing_file_and_bad_hex(cli):
    r = cli("decode", "nothere.pcap")
    assert r.code == 2 and r.err == "exi15118 decode: error: nothere.pcap: no such file\n"
    r = cli("decode", "--schema", "sap", "8040zz40")
    assert r.code == 1
    assert r.err == ("exi15118 decode: error: not hex: '8040zz40' (character 'z' at position 4), "
                     "and no file of that name\n")
    r = cli("decode", "--schema", "sap", "80400")
    assert r.code == 1 and "odd number of digits" in r.err


def test_file_and_hex_together(cli, example):
    r = cli("decode", example, SAP_RES)
    assert r.code == 2 and "either hex or a capture file" in r.err


def test_hex_text_file_gets_a_hint(cli, tmp_path):
    f = tmp_path / "msgs.txt"
    f.write_text(SAP_RES + "\n")
    r = cli("decode", "--schema", "sap", f)
    assert r.code == 1 and "exi15118 decode --schema SCHEMA - < FILE" in r.err


# --- item 3: no V2G traffic -------------------------------------------------------------

def test_capture_without_v2g_says_what_it_holds(cli, tmp_path):
    frames = []
    hpav = synth.MAC_SECC + synth.MAC_EVCC + struct.pack("!H", 0x88E1) + bytes(46)
    for i in range(65):
        frames.append((1_700_000_000 + i * 0.01, hpav))
    dhcp = synth.link_frame(1, synth.udp_packet("192.168.1.10", 68, "192.168.1.1", 67, bytes(240)))
    frames.append((1_700_000_001.0, dhcp))
    f = tmp_path / "slac.dump"
    with open(f, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=1)
        for ts, buf in frames:
            w.writepkt(buf, ts)
    r = cli("decode", f)
    # the HomePlug AV frames are shown (the SLAC timeline), and stderr says there is no V2G
    assert r.code == 0 and len(r.out.splitlines()) == 65
    assert all('"transport": "homeplug"' in line for line in r.out.splitlines())
    assert r.err == f"exi15118 decode: warning: {f}: no V2G messages: 66 frames: 65 HomePlug AV, 1 DHCP\n"


def test_filter_that_matches_nothing(cli, example):
    r = cli("decode", example, "--filter", "CertificateInstallation")
    assert r.code == 0 and r.out == "" and "no message matches --filter CertificateInstallation" in r.err


# --- item 4: stdin and options that do not apply ----------------------------------------

def test_empty_stdin(cli):
    r = cli("decode", "--schema", "din", "-", stdin=b"")
    assert r.code == 1 and r.err == ("exi15118 decode: error: no input on stdin (expected hex lines or a "
                                     "pcap/pcapng capture)\n")


def test_stdin_capture_and_hex(cli, example):
    r = cli("decode", "-", "--format", "table", stdin=open(example, "rb").read())
    assert r.code == 0 and "CurrentDemandReq" in r.out
    r = cli("decode", "--schema", "sap", "-", stdin=b"80400040\nzz\n")
    assert r.code == 1 and json.loads(r.out)["supportedAppProtocolRes"]["SchemaID"] == 1
    assert r.err.startswith("exi15118 decode: error: stdin line 2: not hex")


@pytest.mark.parametrize("opt", [["--format", "table"], ["--summary"], ["--filter", "X"],
                                 ["--keylog", "k.log"]])
def test_capture_options_refused_for_hex(cli, opt):
    r = cli("decode", "--schema", "sap", SAP_RES, *opt)
    assert r.code == 2 and r.out == "" and "does not apply to hex input" in r.err
    assert r.err.startswith(f"exi15118 decode: error: {opt[0]}")


@pytest.mark.parametrize("opt", [["--schema", "din"], ["--fragment"]])
def test_hex_options_refused_for_captures(cli, example, opt):
    r = cli("decode", example, *opt)
    assert r.code == 2 and f"{opt[0]} does not apply to a capture" in r.err


def test_table_with_summary_gives_both(cli, example):
    r = cli("decode", example, "--format", "table", "--summary")
    assert r.code == 0, r.err
    table, _, summary = r.out.partition("\nSession: stream 0")
    assert table.count("CurrentDemandReq") == 5 and "elapsed" in table
    assert "response times" in summary and "errors and FAILED response codes: none" in summary


# --- item 11: times, names, physical values, summary --------------------------------------

def test_json_records_have_iso_times_and_elapsed(cli, example):
    r = cli("decode", example)
    recs = [json.loads(x) for x in r.out.splitlines()]
    first = recs[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", first["time"])
    assert first["elapsed"] == pytest.approx(1.738325)       # SDP request: 1.74 s after the first frame
    assert {x["direction"] for x in recs} == {"EVCC->SECC", "SECC->EVCC"}


def test_table_shows_physical_values(cli, example):
    r = cli("decode", example, "--format", "table")
    lines = r.out.splitlines()
    assert re.match(r" +elapsed UTC 20\d\d-\d\d-\d\d +frame", lines[0])
    assert re.match(r" +1\.738325 \d\d:\d\d:\d\d\.\d{6} ", lines[1])
    pre = next(x for x in lines if "PreChargeReq" in x)
    assert pre.rstrip().endswith("target 344 V 1 A  SoC 30 %")
    res = next(x for x in lines if "PreChargeRes" in x)
    assert res.rstrip().endswith("ResponseCode=OK  present 80.76 V")
    setup = next(x for x in lines if "SessionSetupRes" in x)
    assert "OK_NewSessionEstablished" in setup and "EVSEID=" in setup
    assert "EVCCID=0A1B2C3D4E5F" in next(x for x in lines if "SessionSetupReq" in x)
    assert "EVSEProcessing=Ongoing" in next(x for x in lines if "CableCheckRes" in x)
    assert all(x == x.rstrip() for x in lines)


def test_physical_values():
    from exi.capture.render import physical
    assert physical({"Multiplier": -2, "Unit": "A", "Value": 3000}) == "30 A"
    assert physical({"Multiplier": 1, "Unit": "V", "Value": 40}) == "400 V"
    assert physical({"Exponent": -1, "Value": 4005}, "EVSEPresentVoltage") == "400.5 V"
    assert physical({"Exponent": 3, "Value": 11}, "EVTargetPower") == "11000 W"


def test_summary_groups_failed_and_aligns():
    import io

    from exi.capture.render import write_summary
    probs = [{"time": 1.0, "frame": f, "message": "CurrentDemandRes", "error": "ResponseCode FAILED"}
             for f in (10, 12, 14)] + [{"time": 2.0, "frame": 20, "message": "SessionStopRes",
                                       "error": "ResponseCode FAILED_SequenceError"}]
    session = {"stream": 0, "transport": "tcp", "evcc": "a", "secc": "b", "protocol": "DIN", "protocol_guessed": False,
               "start": 1_700_000_000.0, "end": 1_700_000_002.5, "duration": 2.5, "session_ids": [], "EVCCID": None,
               "EVSEID": None, "messages": {"CertificateInstallationReqWithAVeryLongName": 1, "CurrentDemandRes": 3},
               "response_times": [], "problems": probs}
    out = io.StringIO()
    write_summary({"sessions": [session], "sdp": [], "file_problems": []}, out)
    text = out.getvalue()
    assert "    frames 10-14  CurrentDemandRes  ResponseCode FAILED  (x3)\n" in text
    assert "    frame 20      SessionStopRes    ResponseCode FAILED_SequenceError\n" in text
    assert "time: 2023-11-14T22:13:20.000000+00:00 .. 2023-11-14T22:13:22.500000+00:00 (2.500 s)" in text
    counts = [x for x in text.splitlines() if x.startswith("    C")]
    assert len({len(x) for x in counts}) == 1        # the count column lines up


def test_no_caveat_wording_in_user_facing_output(cli, example):
    r = cli("decode", example, "--summary")
    assert "unverified" not in r.out and "assumed as in" not in r.out and "2nd-hand" not in r.out
    assert "DIN SPEC 70121:2014 Table 75 V2G_EVCC_Msg_Timeout" in r.out     # the source, without caveats
