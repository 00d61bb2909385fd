"""`exi15118 encode` (and the rest of the CLI): errors name the problem, never Python
internals (issue 14, item 9)."""
from __future__ import annotations

import json

import pytest

from .conftest import assert_clean

CURRENT_DEMAND = {"V2G_Message": {"Header": {"SessionID": "0EBE5B8D693EE379"}, "Body": {"CurrentDemandReq": {
    "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 73},
    "EVTargetCurrent": {"Multiplier": 0, "Unit": "A", "Value": 45}, "ChargingComplete": False,
    "EVTargetVoltage": {"Multiplier": 0, "Unit": "V", "Value": 333}}}}}


def test_complete_message_encodes(cli, tmp_path):
    f = tmp_path / "cd.json"
    f.write_text(json.dumps(CURRENT_DEMAND))
    r = cli("encode", "--schema", "din", f)
    assert r.code == 0 and r.out.startswith("809a"), r.err


def test_missing_required_field_is_named(cli, tmp_path):
    doc = json.loads(json.dumps(CURRENT_DEMAND))
    del doc["V2G_Message"]["Body"]["CurrentDemandReq"]["DC_EVStatus"]
    f = tmp_path / "cd.json"
    f.write_text(json.dumps(doc))
    r = cli("encode", "--schema", "din", f)
    assert r.code == 1
    assert r.err == ("exi15118 encode: error: /V2G_Message/Body/CurrentDemandReq: missing required element "
                     "DC_EVStatus (given: EVTargetCurrent, ChargingComplete, EVTargetVoltage)\n")


@pytest.mark.parametrize("text,got", [("[]", "a list"), ("null", "null"), ('"x"', "a string"), ("42", "a number"),
                                      ('{"a": 1, "b": 2}', "an object with 2 keys")])
def test_json_that_is_not_a_message(cli, text, got):
    r = cli("encode", "--schema", "din", "-", stdin=text.encode())
    assert r.code == 1
    assert r.err == ("exi15118 encode: error: stdin: expected a JSON object with one key, the root element "
                     f'(e.g. {{"V2G_Message": {{...}}}}), got {got}\n')


def test_binary_file(cli, tmp_path):
    f = tmp_path / "msg.exi"
    f.write_bytes(bytes.fromhex("809a0211d63f74d2297ac9119400"))
    r = cli("encode", "--schema", "din", f)
    assert r.code == 1 and "is not UTF-8 text (byte 0 is 0x80): expected XML or JSON" in r.err
    assert_clean(r.err)


def test_not_json_nor_xml_and_missing_file(cli, tmp_path):
    r = cli("encode", "--schema", "din", "-", stdin=b"hello")
    assert r.code == 1 and "stdin is neither XML nor JSON (JSON: Expecting value at line 1 column 1)" in r.err
    r = cli("encode", "--schema", "din", tmp_path / "none.json")
    assert r.code == 2 and r.err.endswith("none.json: no such file\n")
    r = cli("encode", "--schema", "din", "-", stdin=b"")
    assert r.code == 1 and "stdin is empty" in r.err


EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE V2G_Message [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
            '<V2G_Message xmlns="urn:din:70121:2012:MsgDef">&e;</V2G_Message>')


def _billion_laughs() -> str:
    ents = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    return '<?xml version="1.0"?><!DOCTYPE V2G_Message [' + "".join(ents) + \
        ']><V2G_Message xmlns="urn:din:70121:2012:MsgDef">&l9;</V2G_Message>'


@pytest.mark.parametrize("xml", [EXTERNAL, _billion_laughs()], ids=["external-entity", "billion-laughs"])
def test_xml_with_entities_is_refused(cli, xml):
    r = cli("encode", "--schema", "din", "-", stdin=xml.encode())
    assert r.code == 1
    assert "XML with a DOCTYPE is refused: V2G messages have no DTD" in r.err
    assert "not well-formed" not in r.err


def test_from_xml_refuses_a_doctype():
    import exi
    with pytest.raises(exi.EncodeError, match="DOCTYPE is refused"):
        exi.from_xml(EXTERNAL, "din")


def test_evcc_resume_not_hex(cli):
    r = cli("evcc", "-i", "lo", "--protocol", "iso2", "--mode", "ac", "--resume", "zz")
    assert r.code == 2
    assert r.err == ("exi15118 evcc: error: --resume: a SessionID is 1 to 8 bytes in hex "
                     "(e.g. 4758FDD348A5EB24), not 'zz'\n")


def test_debug_after_the_subcommand_shows_the_traceback(cli):
    import exi
    with pytest.raises(exi.DecodeError):
        cli("decode", "--schema", "sap", "00", "--debug")
    r = cli("decode", "--schema", "sap", "00")
    assert r.code == 1 and r.err.startswith("exi15118 decode: error: /") and "at bit" in r.err
