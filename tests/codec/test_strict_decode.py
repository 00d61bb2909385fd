"""The decoder says when bytes are not a message (issue 13, item 3).

- the root element must be a message of the set unless any_root=True;
- bytes after the end of the document are an error; padding=True (and the capture
  reader, with a note on the record) accepts zero bytes there;
- `exi15118 decode --schema auto` takes only a set that decodes the stream as a whole
  message, checked on the reference vectors: every -20 stream comes out as its own -20 set.
"""
from __future__ import annotations

import contextlib
import io

import pytest

import exi
from exi.capture import reader, synth
from exi.cli import decode as cli_decode

from ._support import SHARED_VECTORS, load_shared, load_subset

SAP_RES = bytes.fromhex("80400040")
DIN_SESSION_SETUP_REQ = bytes.fromhex("809a02000000000000000011d01a121dc983cd6000")


def test_message_roots_of_each_set():
    assert exi.schema("din").root.message_names == "V2G_Message"
    assert exi.schema("iso2").root.message_names == "V2G_Message"
    assert exi.schema("sap").root.message_names == "supportedAppProtocolReq, supportedAppProtocolRes"
    for sid in ("iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp"):
        names = exi.schema(sid).root.message_names.split(", ")
        assert names and all(n.endswith(("Req", "Res")) for n in names), sid
    dc = exi.schema("iso20_dc").root.message_names.split(", ")
    assert "DC_ChargeLoopReq" in dc and "SessionSetupReq" not in dc      # that one is CommonMessages


def test_non_message_root_is_refused_unless_asked():
    digest = exi.from_dict({"DigestValue": "AAEC"}, "iso2")
    data = exi.encode(digest)
    with pytest.raises(exi.DecodeError, match=r"root element DigestValue is not a message of 'iso2' "
                                             r"\(expected V2G_Message\)"):
        exi.decode(data, "iso2")
    value = exi.decode(data, "iso2", any_root=True)
    assert isinstance(value, exi.ElementValue) and value.name == "DigestValue" and value.value == b"\0\1\2"
    assert exi.encode(value) == data


def test_wrong_set_is_refused():
    """A DIN stream read with the -2 grammar: some root, no complaint, before (issue 13)."""
    with pytest.raises(exi.DecodeError):
        exi.decode(DIN_SESSION_SETUP_REQ, "iso2")
    # a -20 reference stream (ISO15118ConformanceTests) that the DIN grammar reads as a
    # whole AC_EVChargeParameter document
    data = bytes.fromhex("8000040000000000000000080e2cfaa06220")
    with pytest.raises(exi.DecodeError, match="root element AC_EVChargeParameter is not a message of 'din'"):
        exi.decode(data, "din")
    assert type(exi.decode(data, "din", any_root=True)).__name__ == "AC_EVChargeParameter"
    assert exi.to_dict(exi.decode(DIN_SESSION_SETUP_REQ, "din"))["V2G_Message"]["Body"]["SessionSetupReq"]


def test_xmldsig_set_and_fragments_accept_their_elements():
    sig = exi.from_dict({"SignatureValue": {"value": "AAEC"}}, "xmldsig")
    assert exi.decode(exi.encode(sig), "xmldsig") == sig
    frag = exi.encode_fragment(exi.from_dict({"DigestMethod": {"Algorithm": "urn:x"}}, "iso2"))
    (el,) = exi.decode_fragment(frag, "iso2")
    assert el.Algorithm == "urn:x"


def test_trailing_bytes():
    for tail in (b"\0", b"\0\0\0\0", b"\x01", b"\0\xff"):
        with pytest.raises(exi.TrailingDataError) as info:
            exi.decode(SAP_RES + tail, "sap")
        e = info.value
        assert isinstance(e, exi.DecodeError) and e.end == len(SAP_RES) and e.bit_offset == 8 * len(SAP_RES)
        assert f"{len(tail)} byte(s) left after the end of the EXI document" in str(e)
        assert exi.to_dict(e.message) == exi.to_dict(exi.decode(SAP_RES, "sap"))
    assert exi.to_dict(exi.decode(SAP_RES + b"\0\0", "sap", padding=True)) == \
        {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}
    with pytest.raises(exi.TrailingDataError, match="not all zero"):
        exi.decode(SAP_RES + b"\0\x01", "sap", padding=True)
    # the unused bits of the last octet are padding, not trailing data
    assert exi.decode(bytes.fromhex("80400040"), "sap").SchemaID == 1


def test_capture_reader_accepts_zero_padding_and_says_so(tmp_path):
    c = synth.TcpConversation()
    c.handshake()
    req = next(v.data for v in load_subset() if v.row["message"] == "supportedAppProtocolReq")
    c.send(True, synth.v2gtp(0x8001, req))
    c.send(False, synth.v2gtp(0x8001, bytes.fromhex("80400040") + b"\0\0"))     # padded response
    c.send(False, synth.v2gtp(0x8001, bytes.fromhex("80400040") + b"\x07"))     # not padding
    path = tmp_path / "padded.pcap"
    synth.write_pcap(str(path), c.frames)
    recs = [r for r in reader.read(str(path)) if r.payload_type == 0x8001]
    assert [r.name for r in recs[:2]] == ["supportedAppProtocolReq", "supportedAppProtocolRes"]
    assert recs[0].note is None and recs[0].error is None
    assert recs[1].error is None
    assert recs[1].note == "2 zero padding byte(s) after the EXI document (accepted)"
    assert recs[2].error and recs[2].note is None       # a non-zero byte after it is no padding


def _auto(data: bytes, fragment: bool = False):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        sid, result = cli_decode._auto(data, fragment)
    return sid, result, err.getvalue()


def test_auto_says_which_and_when_none_fits():
    sid, (msg,), said = _auto(DIN_SESSION_SETUP_REQ)
    assert sid == "din" and said.strip() == "exi15118 decode: schema din"
    with pytest.raises(exi.DecodeError, match="no message set decodes it as a message") as info:
        _auto(SAP_RES + b"\x01")
    assert "sap:" in str(info.value) and "byte(s) left after the end" in str(info.value)


def _vectors():
    """The -20 reference vectors: the full collection when it is next to the repository
    (328 streams), else the subset kept in the repository."""
    if SHARED_VECTORS.is_dir():
        return [v for v in load_shared("iso20") if v.reencodes]
    return [v for v in load_subset() if v.file == "iso20" and v.reencodes]


def test_auto_picks_the_own_set_of_every_iso20_vector():
    vectors = _vectors()
    assert len(vectors) >= 40
    wrong = []
    for v in vectors:
        sid, _, said = _auto(v.data, v.fragment)
        if sid != v.schema:
            wrong.append((v.id, v.schema, sid, said))
    assert not wrong, wrong[:5]
