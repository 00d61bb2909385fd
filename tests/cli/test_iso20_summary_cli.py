"""`exi15118 decode --summary` judges an ISO 15118-20 session against the -20 limits (the one
timer table, exi.v2g.session.timers): on dSPACE's recorded -20 AC_BPT session (Josev), and
on the same capture with one charge-loop request delayed past the 0.5 s
V2G_SECC_Sequence_Timeout of the -20 charge loop."""
from __future__ import annotations

import os
from pathlib import Path

import dpkt
import pytest

import exi.capture

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EXI_SHARED_VECTORS", ROOT.parent / "shared" / "vectors"))
CAPTURE = SHARED / "captures/dspace-group+dsV2Gshark/Wireshark/dsV2Gshark_examples/ISO-20_BPT_AC_DS5366_Josev.pcapng"


@pytest.fixture(scope="module")
def capture() -> Path:
    if not CAPTURE.exists():
        pytest.fail(f"{CAPTURE} missing: check out the shared vectors next to the repository, or set "
                    "EXI_SHARED_VECTORS to the vectors directory", pytrace=False)
    return CAPTURE


def _row(out: str, message: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [message])


def test_summary_of_a_recorded_iso20_session_uses_the_iso20_limits(cli, capture):
    r = cli("decode", capture, "--summary")
    assert r.code == 0, r.err
    assert "protocol: ISO 15118-20" in r.out
    # V2G_EVCC_Msg_Timeout: 0.5 s in the -20 charge loop, 5 s for ServiceDetail, 2 s else
    # (columns: message count min median max limit over)
    assert _row(r.out, "AC_ChargeLoop")[5:] == ["0.5", "0"]
    assert _row(r.out, "ServiceDetail")[5:] == ["5", "0"]
    assert _row(r.out, "SessionSetup")[5:] == ["2", "0"]
    assert "limits: ISO 15118-20 Table 215 V2G_EVCC_Msg_Timeout, charge loops Tables 216-218" in r.out
    assert "timer violations" not in r.out


def test_summary_reports_an_iso20_loop_request_after_the_sequence_timeout(cli, capture, tmp_path):
    """Every frame from the 4th AC_ChargeLoopReq on is shifted 0.6 s later: that request
    comes ~0.68 s after the SECC's last response, past V2G_SECC_Sequence_Timeout (0.5 s
    after a charge-loop response, -20 Tables 216-218); a -2 SECC would allow 60 s."""
    loop_reqs = [rec.frame for rec in exi.capture.read(capture) if rec.name == "AC_ChargeLoopReq"]
    late_frame = loop_reqs[3]
    delayed = tmp_path / "delayed.pcap"
    with open(capture, "rb") as f, open(delayed, "wb") as out:
        reader = dpkt.pcapng.Reader(f)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink(), nano=True)
        for number, (ts, buf) in enumerate(reader, start=1):
            writer.writepkt(buf, ts + (0.6 if number >= late_frame else 0.0))
    r = cli("decode", delayed, "--summary")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    violations = lines[lines.index("  timer violations (1):"):]
    head, _, worst = violations[1].partition(" (worst ")
    assert head == "    V2G_SECC_Sequence_Timeout AC_ChargeLoopReq: 1 over 0.5 s"
    assert 0.6 < float(worst.removesuffix(" s)")) < 0.8
