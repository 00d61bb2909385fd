"""`python -m exi decode|encode`: hex in, JSON/XML out and back."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ._support import REPO, load_subset

DIN = next(v for v in load_subset() if v.schema == "din" and v.reencodes
           and v.row["message"] == "ChargeParameterDiscoveryRes")
SAP_RES = "80400040"


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "exi", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=60)


def test_decode_json():
    r = cli("decode", "--schema", "din", DIN.row["exi_hex"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "ChargeParameterDiscoveryRes" in doc["V2G_Message"]["Body"]


def test_decode_xml():
    r = cli("decode", "--schema", "din", "--format", "xml", DIN.row["exi_hex"])
    assert r.returncode == 0, r.stderr
    from lxml import etree
    root = etree.fromstring(r.stdout.encode())
    assert etree.QName(root).localname == "V2G_Message"


def test_decode_stdin_and_v2gtp_header():
    frame = "01fe8001" + f"{len(bytes.fromhex(SAP_RES)):08x}" + SAP_RES
    r = cli("decode", "--schema", "sap", "-", stdin=f"{SAP_RES}\n# comment\n{frame}\n")
    assert r.returncode == 0, r.stderr
    docs = _json_stream(r.stdout)
    assert docs == [{"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}] * 2


def _json_stream(text):
    dec, i, out = json.JSONDecoder(), 0, []
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def test_decode_auto_schema():
    r = cli("decode", "--schema", "auto", DIN.row["exi_hex"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] in ("din", "iso2") and "V2G_Message" in doc["message"]
    r = cli("decode", "--schema", "auto", SAP_RES)
    assert json.loads(r.stdout)["schema"] == "sap"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_encode_round_trip(tmp_path, fmt):
    r = cli("decode", "--schema", "din", "--format", fmt, DIN.row["exi_hex"])
    assert r.returncode == 0, r.stderr
    f = tmp_path / f"msg.{fmt}"
    f.write_text(r.stdout, encoding="utf-8")
    r = cli("encode", "--schema", "din", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == DIN.row["exi_hex"]
    r = cli("encode", "--schema", "din", "-", stdin=f.read_text(encoding="utf-8"))
    assert r.stdout.strip() == DIN.row["exi_hex"]


def test_encode_auto_output_round_trip(tmp_path):
    r = cli("decode", "--schema", "auto", SAP_RES)
    f = tmp_path / "auto.json"
    f.write_text(r.stdout)
    r = cli("encode", "--schema", "sap", str(f))
    assert r.returncode == 0 and r.stdout.strip() == SAP_RES, r.stderr


@pytest.mark.parametrize("bad", ["zz", "80400", "8"])
def test_bad_hex(bad):
    r = cli("decode", "--schema", "sap", bad)
    assert r.returncode == 1
    assert "not hex" in r.stderr and "Traceback" not in r.stderr


def test_undecodable_stream():
    r = cli("decode", "--schema", "sap", "00")
    assert r.returncode == 1 and "exi15118 decode" in r.stderr and "Traceback" not in r.stderr


def test_encode_errors_are_reported(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"supportedAppProtocolRes": {"ResponseCode": "nope", "SchemaID": 1}}))
    r = cli("encode", "--schema", "sap", str(f))
    assert r.returncode == 1 and "ResponseCode" in r.stderr and "Traceback" not in r.stderr
    f.write_text("neither")
    r = cli("encode", "--schema", "sap", str(f))
    assert r.returncode != 0 and "Traceback" not in r.stderr
