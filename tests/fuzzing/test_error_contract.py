"""The error contract of README "Errors on bad input": which exception each public function
raises on bad input, asserted with one hostile input per row (the findings of issue 15
among them), in the build the test run uses (tests/fuzzing/test_fuzz_targets.py replays the
corpus on both builds)."""
from __future__ import annotations

import io
import json
import struct

import pytest

import exi
import exi.capture
from exi import AnyElement
from exi.messages import din, iso2, sap, xmldsig
from exi.registry import SCHEMAS
from exi.v2g import sdp, v2gtp
from exi.v2g.session import EVCCConfig, EVCCSession, SECCConfig, SECCSession, Send, SessionEnded
from exi.v2g.session._msg import v2g, val

SESSION_SETUP = din.V2G_Message(Header=din.MessageHeaderType(SessionID=bytes(8)),
                                Body=din.BodyType(SessionSetupReq=din.SessionSetupReqType(EVCCID=b"\x01" * 6)))


def deep_any(depth):
    el = "x"
    for _ in range(depth):
        el = AnyElement(("", "a"), None, [], [el])
    return el


def deep_dict(depth):
    d = {"a": {"content": ["x"]}}
    for _ in range(depth):
        d = {"a": {"content": [d]}}
    return d


# --- codec ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\x80", b"\x80\x98\x02\x10\x50\x90", b"\xff" * 40])
def test_decode_raises_decode_error(data):
    with pytest.raises(exi.DecodeError):
        exi.decode(data, "iso2")
    with pytest.raises(exi.DecodeError):
        exi.decode_fragment(data, "xmldsig")


def test_unknown_schema_id_is_a_value_error():
    with pytest.raises(ValueError):
        exi.decode(b"\x80", "iso3")


def test_encode_raises_encode_error():
    with pytest.raises(exi.EncodeError):
        exi.encode(din.V2G_Message(Header=din.MessageHeaderType(SessionID=bytes(8))))   # no Body
    with pytest.raises(exi.EncodeError):
        exi.encode({"not": "a message"})
    with pytest.raises(exi.EncodeError):
        exi.encode_fragment(din.SessionSetupReqType(EVCCID=b"1"))      # a type without name=


def test_validate_raises_validation_error_for_decoded_values_beyond_the_facets():
    long_id = din.V2G_Message(Header=din.MessageHeaderType(SessionID=bytes(8)),
                              Body=din.BodyType(SessionSetupReq=din.SessionSetupReqType(EVCCID=b"1" * 60000)))
    msg = exi.decode(exi.encode(long_id, validate=False), "din")       # decodes: non-strict EXI
    assert len(msg.Body.SessionSetupReq.EVCCID) == 60000
    with pytest.raises(exi.ValidationError, match="EVCCID: length 60000 outside"):
        exi.validate(msg)
    exi.validate(SESSION_SETUP)
    huge = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="urn:din:70121:2012:MsgDef", VersionNumberMajor=10 ** 5000, VersionNumberMinor=0,
        SchemaID=1, Priority=1)])
    with pytest.raises(exi.ValidationError, match="16610-bit integer out of range"):
        exi.validate(exi.decode(exi.encode(huge, validate=False), "sap"))


@pytest.mark.parametrize("d", [
    [1], "V2G_Message", None, {},                                      # not a one-key dict
    {"V2G_Message": {"Header": {"SessionID": "XYZ"}}},                   # bad hex
    {"V2G_Message": {"Header": 5}},
    {"V2G_Message": {"Unknown": 1}},
])
def test_from_dict_raises_encode_error(d):
    with pytest.raises(exi.EncodeError):
        exi.from_dict(d, "din")


@pytest.mark.parametrize("content", [
    5, "text", [5], [["a"]], [{1: {}}], [{"a": 5}], [{"a": {"content": 5}}], [{"a": {"b": 5}}],
    [{"a": {"content": [{"b": {"namespace": 1}}]}}],
])
def test_from_dict_wildcard_content_of_the_wrong_shape(content):
    with pytest.raises(exi.EncodeError):
        exi.from_dict({"Object": {"content": content}}, "xmldsig")


@pytest.mark.parametrize("text", [b"", b"<a", b"<x xmlns='urn:nope'/>", "<" * 10 + "a" * 5,
                                  b"<a>" * 300 + b"</a>" * 300])
def test_from_xml_raises_encode_error(text):
    with pytest.raises(exi.EncodeError):
        exi.from_xml(text, "xmldsig")


def test_deep_nesting_is_bounded_in_every_conversion():
    el = deep_any(50_000)
    with pytest.raises(exi.EncodeError, match="nested deeper than 200"):
        exi.to_dict(el)
    with pytest.raises(exi.EncodeError, match="nested deeper than 200"):
        exi.to_xml(el)
    with pytest.raises(exi.EncodeError):
        exi.encode_fragment(el, schema="xmldsig")
    obj = xmldsig.Object(content=[el])
    with pytest.raises(exi.EncodeError, match="nested deeper than 200"):
        exi.to_dict(obj)
    with pytest.raises(exi.EncodeError, match="nested deeper than 200"):
        exi.from_dict({"Object": {"content": [deep_dict(50_000)]}}, "xmldsig")
    exi.to_dict(xmldsig.Object(content=[deep_any(150)]))                    # within the bound: fine


def test_to_dict_of_something_else_is_a_type_error():
    with pytest.raises(TypeError):
        exi.to_dict({"V2G_Message": {}})


def test_to_xml_raises_encode_error_on_text_xml_cannot_carry():
    msg = xmldsig.Object(content=["a\x00b"])
    with pytest.raises(exi.EncodeError, match="U\\+0000"):
        exi.to_xml(msg)


@pytest.mark.parametrize("el", [AnyElement(("", "a\x01"), None, [], ["x"]), AnyElement(("", "1a"), None, [], []),
                                AnyElement(("", "a"), None, [(("", "b c"), "v")], []),
                                AnyElement(("", "a"), None, [(("", "b"), "v\x00")], [])])
def test_to_xml_raises_encode_error_on_names_xml_cannot_carry(el):
    msg = exi.decode(exi.encode(xmldsig.Object(content=[el])), "xmldsig")     # EXI carries them
    with pytest.raises(exi.EncodeError, match="cannot be written as XML"):
        exi.to_xml(msg)


# --- transport -----------------------------------------------------------------------------

def test_v2gtp_framer_raises_v2gtp_error():
    f = v2gtp.V2GTPFramer(max_payload=100)
    with pytest.raises(v2gtp.V2GTPError) as e:
        f.feed(struct.pack("!BBHI", 1, 0xFE, 0x8001, 0xFFFFFFFF))       # announces 4 GB
    assert e.value.action is v2gtp.Action.CLOSE_CONNECTION and f.buffered == 0
    with pytest.raises(v2gtp.V2GTPError):
        v2gtp.V2GTPFramer().feed(b"\x02\xfd\x80\x01\x00\x00\x00\x00")


@pytest.mark.parametrize("datagram", [b"", b"\x01\xfe\x90\x00\x00\x00\x00\x02\x05\x00",
                                      b"\x01\xfe\x90\x00\x00\x00\x00\x09\x00\x00"])
def test_sdp_decode_raises_value_errors_and_the_server_discards(datagram):
    with pytest.raises((v2gtp.V2GTPError, sdp.SDPError)):
        sdp.decode(datagram)
    import ipaddress
    server = sdp.SDPServer(ipaddress.IPv6Address("fe80::1"), tcp_port=50000)
    assert server.handle_datagram(datagram) is None and server.discarded == 1


# --- captures ------------------------------------------------------------------------------

def _pcap(*packets, linktype=101):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, p in enumerate(packets):
        out += struct.pack("<IIII", i, 0, len(p), len(p)) + p
    return out


def _records(data: bytes):
    return list(exi.capture.read(io.BytesIO(data)))


def test_capture_reader_reports_damage_in_records():
    recs = _records(b"not a capture file at all")
    assert len(recs) == 1 and "not a pcap" in recs[0].error
    assert "damaged" in _records(_pcap(b"\x60" + bytes(50))[:-10])[0].error


def test_capture_ipv6_extension_chain_past_the_frame():
    # hop-by-hop header whose length runs past the captured bytes (issue 15: IndexError)
    ip6 = b"\x60\x00\x00\x00" + struct.pack("!HBB", 400, 0, 64) + bytes(32) + b"\x00\x30" + bytes(6)
    assert _records(_pcap(ip6)) == []


def test_capture_output_survives_odd_content():
    from exi.capture import render
    from exi.capture.synth import udp_packet, v2gtp as frame
    sdp_req = udp_packet("fe80::1", 50000, "ff02::1", 15118, frame(0x9000, b"\x05\x00"))   # Security 5
    huge = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="urn:din:70121:2012:MsgDef", VersionNumberMajor=10 ** 5000, VersionNumberMinor=0,
        SchemaID=1, Priority=1)])
    from exi.capture.synth import TcpConversation
    conv = TcpConversation("fe80::1", 50001, "fe80::2", 15118)
    conv.handshake()
    conv.send(True, frame(0x8001, exi.encode(huge, validate=False)))
    recs = _records(_pcap(sdp_req, *(p for _, p in conv.frames)))
    for fmt in render.FORMATS:
        out = io.StringIO()
        assert render.write(recs, fmt, out) == len(recs) == 2
    out = io.StringIO()
    render.write(recs, "table", out)
    assert "Security=5" in out.getvalue()
    out = io.StringIO()
    render.write(recs, "jsonl", out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[1]["content"] is None and "cannot be written as JSON" in lines[1]["error"]
    assert lines[1]["exi_hex"]


# --- session cores -------------------------------------------------------------------------

def _sap_req(schema="din", major=None):
    info = SCHEMAS[schema]
    return exi.encode(sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace=info.protocol_namespace, VersionNumberMajor=info.version_major if major is None else major,
        VersionNumberMinor=info.version_minor, SchemaID=1, Priority=1)]), validate=False)


def _sends(out):
    return [o for o in out if isinstance(o, Send)]


def test_secc_answers_failed_to_a_request_beyond_the_schema():
    core = SECCSession(SECCConfig(protocols=("din",)))
    core.connection_made(0.0)
    assert _sends(core.receive(_sap_req(), 0.1))
    bad = din.V2G_Message(Header=din.MessageHeaderType(SessionID=bytes(8)),
                          Body=din.BodyType(SessionSetupReq=din.SessionSetupReqType(EVCCID=b"\x01" * 60000)))
    out = core.receive(exi.encode(bad, validate=False), 0.2)
    (res,) = _sends(out)
    assert val(exi.decode(res.payload, "din").Body.SessionSetupRes.ResponseCode) == "FAILED"
    assert core.session_id is None or core.session_id != b"\x01" * 60000
    ended = [o for o in out if isinstance(o, SessionEnded)][0]
    assert not ended.ok and "outside the schema" in ended.reason


def test_secc_answers_failed_no_negotiation_to_a_huge_integer():
    core = SECCSession(SECCConfig(protocols=("din",)))
    core.connection_made(0.0)
    out = core.receive(_sap_req(major=10 ** 5000), 0.1)
    (res,) = _sends(out)
    assert val(exi.decode(res.payload, "sap").ResponseCode) == "Failed_NoNegotiation"
    assert "internal error" not in [o for o in out if isinstance(o, SessionEnded)][0].reason


def test_secc_ends_without_response_on_a_root_that_is_not_a_message():
    core = SECCSession(SECCConfig(protocols=("din",)))
    core.connection_made(0.0)
    core.receive(_sap_req(), 0.1)
    out = core.receive(exi.encode(din.WeldingDetectionReq(DC_EVStatus=din.DC_EVStatusType(
        EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=50))), 0.2)
    assert not _sends(out)
    ended = [o for o in out if isinstance(o, SessionEnded)][0]
    assert "is not a message of 'din'" in ended.reason       # the decoder refuses the root


def test_evcc_stops_cleanly_on_a_response_without_response_code():
    core = EVCCSession(EVCCConfig(protocols=("din",)))
    core.start(0.0)
    core.receive(exi.encode(sap.supportedAppProtocolRes(ResponseCode="OK_SuccessfulNegotiation", SchemaID=1)), 0.1)
    # a SessionSetupRes whose first event is its end: non-strict EXI allows it
    res = bytes.fromhex("809a02044444444444444451e800")
    assert exi.decode(res, "din").Body.SessionSetupRes.ResponseCode is None
    core.receive(res, 0.2)
    assert core.result is not None and not core.result.ok
    assert "outside the schema" in core.result.reason and "ResponseCode" in core.result.reason


def test_to_xml_of_schema_elements_inside_undeclared_content():
    # an undeclared xsi:type anyType element whose content holds schema elements, as decode
    # returns it (fuzz finding: fuzz/corpus/decode/regress-schema-element-in-anytype-to-xml)
    anytype = ("http://www.w3.org/2001/XMLSchema", "anyType")
    el = AnyElement(("", "foo"), anytype, [], ["a", xmldsig.DigestMethod(Algorithm="urn:x"), "b",
                                              exi.ElementValue("DigestValue", b"\x01\x02", "xmldsig")])
    msg = exi.decode(exi.encode(xmldsig.Object(content=[el])), "xmldsig")
    xml = exi.to_xml(msg)
    ds = "{http://www.w3.org/2000/09/xmldsig#}"
    from lxml import etree
    foo = etree.fromstring(xml)[0]
    assert foo.tag == "foo" and foo.text == "a"
    assert [c.tag for c in foo] == [ds + "DigestMethod", ds + "DigestValue"]
    assert foo[0].get("Algorithm") == "urn:x" and foo[0].tail == "b" and foo[1].text == "AQI="
    with pytest.raises(exi.EncodeError, match="not int"):
        exi.to_xml(xmldsig.Object(content=[AnyElement(("", "foo"), anytype, [], [5])]))
