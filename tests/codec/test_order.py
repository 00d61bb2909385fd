"""Order-preserving content models (codegen/order.py, exi/_content.py).

Types whose children's document order carries information (mixed content, repeated
choices such as xmldsig's KeyInfo) keep their children in one ordered list, `content`;
the order survives EXI, the dict form and XML.  The bytes are checked against EXIficient
in tests/interop/test_generated_documents.py; here: the API and its errors.
"""
from __future__ import annotations

import json

import pytest

import exi
from exi._kinds import F_CONTENT
from exi.messages import iso2, xmldsig as ds

ORDERED_XMLDSIG = {"CanonicalizationMethodType", "SignatureMethodType", "TransformType",
                   "DigestMethodType", "KeyInfoType", "KeyValueType", "X509DataType",
                   "SPKIDataType", "ObjectType", "SignaturePropertyType"}
SCHEMAS = ("sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp",
           "xmldsig")


@pytest.mark.parametrize("sid", SCHEMAS)
def test_ordered_types_are_the_xmldsig_ones(sid):
    """Found in the XSDs by codegen: the mixed and repeated-choice types of xmldsig, and
    no type of the V2G messages themselves (their hot paths keep per-field storage)."""
    s = exi.schema(sid)
    ordered = {name for name, cls in s.classes.items()
               if any(r[1] == F_CONTENT for r in cls._field_rows)}
    assert ordered == (set() if sid == "sap" else ORDERED_XMLDSIG)
    for name in ordered:
        rows = s.classes[name]._field_rows
        assert [r[0] for r in rows if r[1] != 0] == ["content"], name   # attributes + content


def _key_info(*items):
    return ds.KeyInfo(Id="ki", content=list(items))


RSA = ds.KeyValue(content=[ds.RSAKeyValue(Modulus=b"\x01\x02", Exponent=b"\x01\x00\x01")])


def test_repeated_choice_keeps_document_order():
    """<KeyValue/><KeyName/> stays in that order (per-field storage wrote it back in
    schema order, KeyName first: different bytes, a different document)."""
    a = _key_info(RSA, exi.ElementValue("KeyName", "k"))
    b = _key_info(exi.ElementValue("KeyName", "k"), RSA)
    da, db = exi.encode_fragment(a), exi.encode_fragment(b)
    assert da != db
    for msg, data in ((a, da), (b, db)):
        back, = exi.decode_fragment(data, "xmldsig")
        assert back == msg and exi.encode_fragment(back) == data
        assert [type(x).__name__ for x in back.content] == [type(x).__name__ for x in msg.content]
        assert exi.from_xml(exi.to_xml(back), "xmldsig") == msg
        assert exi.from_dict(json.loads(json.dumps(exi.to_dict(back))), "xmldsig") == msg
    assert exi.to_xml(a).index("KeyValue") < exi.to_xml(a).index("KeyName")
    assert exi.to_dict(a) == {"KeyInfo": {"Id": "ki", "content": [
        {"KeyValue": {"content": [{"RSAKeyValue": {"Modulus": "AQI=", "Exponent": "AQAB"}}]}},
        {"KeyName": "k"}]}}


def test_mixed_text_keeps_its_place():
    t = ds.Transform(Algorithm="urn:t", content=["before ", exi.ElementValue("XPath", "/a"),
                                                  " between ", exi.ElementValue("XPath", "/b"), "after"])
    data = exi.encode_fragment(t)
    back, = exi.decode_fragment(data, "xmldsig")
    assert back == t and exi.encode_fragment(back) == data
    xml = exi.to_xml(t)
    assert ">before <ns1:XPath>/a</ns1:XPath> between <ns1:XPath>/b</ns1:XPath>after<" in xml
    assert exi.from_xml(xml, "xmldsig") == t
    moved = ds.Transform(Algorithm="urn:t", content=[exi.ElementValue("XPath", "/a"), "before ",
                                                      " between ", exi.ElementValue("XPath", "/b"), "after"])
    assert exi.encode_fragment(moved) != data


def test_repeated_sequence_with_optional_wildcard():
    """SPKIData is (SPKISexp, any?)+: which SPKISexp a wildcard follows is information."""
    ext = exi.AnyElement(("urn:x", "Ext"), content=["1"])
    a = ds.SPKIData(content=[exi.ElementValue("SPKISexp", b"a"), ext, exi.ElementValue("SPKISexp", b"b")])
    b = ds.SPKIData(content=[exi.ElementValue("SPKISexp", b"a"), exi.ElementValue("SPKISexp", b"b"), ext])
    da, db = exi.encode_fragment(a), exi.encode_fragment(b)
    assert da != db
    assert exi.decode_fragment(da, "xmldsig") == [a] and exi.decode_fragment(db, "xmldsig") == [b]


def test_ordered_content_inside_a_v2g_message():
    """The xmldsig types of every message set (here a -2 header signature) work the same."""
    sig = iso2.SignatureType(
        SignedInfo=iso2.SignedInfoType(
            CanonicalizationMethod=iso2.CanonicalizationMethodType(Algorithm="urn:c"),
            SignatureMethod=iso2.SignatureMethodType(
                Algorithm="urn:s", content=["x", exi.ElementValue("HMACOutputLength", 256), "y"]),
            Reference=[iso2.ReferenceType(URI="#a", DigestMethod=iso2.DigestMethodType(Algorithm="urn:d"),
                                          DigestValue=b"\x00" * 32)]),
        SignatureValue=iso2.SignatureValueType(value=b"\x01" * 64),
        KeyInfo=iso2.KeyInfoType(content=[
            iso2.X509Data(content=[exi.ElementValue("X509Certificate", b"cert"),
                                   exi.ElementValue("X509SubjectName", "CN=a")]),
            exi.ElementValue("KeyName", "k")]))
    msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8, Signature=sig),
                           Body=iso2.BodyType(SessionStopReq=iso2.SessionStopReqType(ChargingSession="Terminate")))
    data = exi.encode(msg)
    back = exi.decode(data, "iso2")
    assert back == msg and exi.encode(back) == data
    assert exi.from_xml(exi.to_xml(back), "iso2") == msg
    assert exi.from_dict(exi.to_dict(back), "iso2") == msg


@pytest.mark.parametrize("cls,content,message", [
    (ds.KeyInfo, [exi.ElementValue("XPath", "/a")], "XPath is not allowed here"),
    (ds.KeyInfo, [ds.KeyValueType()], "is a type, not an element"),
    (ds.KeyInfo, [42], "not int"),
    (ds.KeyInfo, "KeyName", "content must be a list"),
    (ds.X509Data, ["text"], "text is not allowed here"),
])
def test_bad_content_is_refused_with_the_reason(cls, content, message):
    with pytest.raises(exi.EncodeError, match=message):
        exi.encode_fragment(cls(content=content))


def test_required_content_missing():
    with pytest.raises(exi.EncodeError, match="missing required content"):
        exi.encode_fragment(ds.KeyInfo(content=[]))
    with pytest.raises(exi.EncodeError, match="missing required content"):
        exi.encode_fragment(ds.X509Data())
