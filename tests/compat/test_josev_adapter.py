"""exi.compat.ExiCodec on its own (no peer): round trips per namespace, fragments, errors."""
from __future__ import annotations

import json
import random
import threading

import pytest

import exi
from exi.compat import CodecJSONError, Exi15118Codec, ExiCodec, UnknownNamespaceError
from exi.compat.josev import FRAGMENT_ROOTS, NAMESPACES, PEER_ZERO_FIELDS
from exi.registry import SCHEMAS

from . import gen

C = ExiCodec()
DIN = "urn:din:70121:2012:MsgDef"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
SAP = "urn:iso:15118:2:2010:AppProtocol"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
CM = "urn:iso:std:iso:15118:-20:CommonMessages"


def test_interface_and_alias():
    assert Exi15118Codec is ExiCodec
    for m in ("encode", "decode", "get_version"):
        assert callable(getattr(C, m))
    assert C.get_version().startswith("exi15118 ")


def test_namespaces_cover_every_schema_the_package_names():
    assert NAMESPACES == {
        "urn:iso:15118:2:2010:AppProtocol": "sap", DIN: "din", ISO2: "iso2",
        CM: "iso20_cm", "urn:iso:std:iso:15118:-20:AC": "iso20_ac",
        "urn:iso:std:iso:15118:-20:DC": "iso20_dc", "urn:iso:std:iso:15118:-20:WPT": "iso20_wpt",
        "urn:iso:std:iso:15118:-20:ACDP": "iso20_acdp", DSIG: "xmldsig"}


def test_known_din_stream():
    data = bytes.fromhex("809a0211d63f74d2297ac9119400")
    text = C.decode(data, DIN)
    assert text == ('{"V2G_Message":{"Header":{"SessionID":"4758FDD348A5EB24"},'
                    '"Body":{"ServiceDiscoveryReq":{"ServiceCategory":"EVCharging"}}}}')
    assert C.encode(text, DIN) == data
    assert C.decode(bytearray(data), DIN) == text        # py4j hands over bytearrays


def _samples(sid, n=12):
    """Encodable documents of a schema: every global element the namespace uses as a root."""
    s = exi.schema(sid)
    ns = SCHEMAS[sid].namespace
    rnd = random.Random(sid)
    w = gen.Walker(sid, rnd, allowed=dict(gen.PACKAGE_XMLDSIG))
    roots = [(q, c) for q, _, c in s.doc_elements if s.qnames[q][0] == ns and c is not None]
    if sid in ("din", "iso2"):
        roots = [(q, c) for q, c in roots if s.qnames[q][1] == "V2G_Message"]
    out = []
    for i in range(n * 20):
        if len(out) >= n:
            break
        q, cls = roots[i % len(roots)]
        try:
            content = w.complex(cls._grammar, 0)
            msg = cls.__new__(cls)
            for f in cls._fields:
                object.__setattr__(msg, f, getattr(content, f))
            exi.encode(msg)
        except (LookupError, exi.EncodeError):
            continue
        out.append(msg)
    return out


@pytest.mark.parametrize("sid", [s for s in SCHEMAS if s != "xmldsig"])
def test_document_round_trip_per_namespace(sid):
    ns = SCHEMAS[sid].namespace
    msgs = _samples(sid)
    assert len(msgs) >= 10
    for msg in msgs:
        data = exi.encode(msg)
        text = C.decode(data, ns)
        assert json.loads(text) == exi.to_dict(msg)
        assert C.encode(text, ns) == data
        assert C.encode(json.dumps(exi.to_dict(msg)), ns) == data   # spaces, ASCII escapes: any JSON


def test_astral_characters_written_as_surrogate_escapes():
    d = {"V2G_Message": {"Header": {"SessionID": "01", "Notification": {
        "FaultCode": "ParsingError", "FaultMsg": "ä😀<&>\"'"}}, "Body": {"SessionStopReq": {}}}}
    data = C.encode(json.dumps(d), DIN)
    text = C.decode(data, DIN)
    assert '"FaultMsg":"ä\\uD83D\\uDE00<&>\\"\'"' in text
    assert json.loads(text) == d


SIGNED_INFO = {"SignedInfo": {
    "CanonicalizationMethod": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"},
    "SignatureMethod": {"Algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
    "Reference": [{"URI": "#id1", "Transforms": {"Transform": [{"Algorithm": "http://www.w3.org/TR/canonical-exi/"}]},
                   "DigestMethod": {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha256"},
                   "DigestValue": "AAECAwQFBgcICQoLDA0ODwABAgMEBQYHCAkKCwwNDg8="}]}}


def test_xmldsig_is_a_fragment_both_ways():
    data = C.encode(json.dumps(SIGNED_INFO), DSIG)
    [el] = exi.decode_fragment(data, "xmldsig")
    assert exi.to_dict(el) == SIGNED_INFO
    assert json.loads(C.decode(data, DSIG)) == SIGNED_INFO
    with pytest.raises(exi.DecodeError):
        exi.decode(data, "xmldsig")        # not a document


def test_iso2_body_element_root_is_a_fragment():
    d = {"AuthorizationReq": {"Id": "ID1", "GenChallenge": "AAECAwQFBgcICQoLDA0ODw=="}}
    data = C.encode(json.dumps(d), ISO2)
    # the bytes the peer writes (tests/interop pins the same against the live peer)
    assert data.hex() == "80040152510c408000081018202830384048505860687079e8"
    [el] = exi.decode_fragment(data, "iso2")
    assert exi.to_dict(el) == d
    sig = C.encode(json.dumps(SIGNED_INFO), ISO2)   # SignedInfo in the -2 grammar: a fragment too
    assert exi.to_dict(exi.decode_fragment(sig, "iso2")[0]) == SIGNED_INFO


def test_iso20_fragment_roots_and_documents():
    assert FRAGMENT_ROOTS["iso20_cm"] == {"OEMProvisioningCertificateChain", "PnC_AReqAuthorizationMode"}
    d = {"OEMProvisioningCertificateChain": {"Id": "id1", "Certificate": "AAEC"}}
    assert C.encode(json.dumps(d), CM).hex() == "8040015a590c40300010231a"
    h = {"SessionID": "0102030405060708", "TimeStamp": 5}
    doc = {"SessionSetupReq": {"Header": h, "EVCCID": "WMIV1234567890ABCDEX"}}
    data = C.encode(json.dumps(doc), CM)
    assert exi.to_dict(exi.decode(data, "iso20_cm")) == doc


def test_din_body_element_root_is_refused():
    with pytest.raises(exi.EncodeError):
        C.encode(json.dumps({"SessionSetupReq": {"EVCCID": "0102"}}), DIN)


def test_bad_namespace():
    for ns in ("urn:bogus", "", None, CM + "x"):
        with pytest.raises(UnknownNamespaceError, match="unknown namespace") as ei:
            C.encode('{"a": {}}', ns)
        assert isinstance(ei.value, ValueError)
        assert "urn:din:70121:2012:MsgDef" in str(ei.value)      # says what is known
        with pytest.raises(UnknownNamespaceError):
            C.decode(b"\x80", ns)


@pytest.mark.parametrize("text", ["not json", "", "[]", "{}", '{"a": 1, "b": 2}', "1", b"\xff"])
def test_bad_json(text):
    with pytest.raises(CodecJSONError) as ei:
        C.encode(text, DIN)
    assert isinstance(ei.value, ValueError)


def test_bad_content_names_the_path():
    d = {"V2G_Message": {"Header": {"SessionID": "0102"},
                         "Body": {"SessionSetupReq": {"EVCCID": "0102", "Bogus": 1}}}}
    with pytest.raises(exi.EncodeError, match="Bogus") as ei:
        C.encode(json.dumps(d), DIN)
    assert "/SessionSetupReq" in str(ei.value)
    with pytest.raises(exi.EncodeError, match="Unit"):
        C.encode(json.dumps({"V2G_Message": {"Header": {"SessionID": "01"}, "Body": {"PreChargeReq": {
            "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50},
            "EVTargetVoltage": {"Multiplier": 0, "Unit": "parsec", "Value": 1},
            "EVTargetCurrent": {"Multiplier": 0, "Unit": "A", "Value": 1}}}}}), DIN)


def test_unknown_keys_drop_mode():
    d = {"V2G_Message": {"Header": {"SessionID": "0102", "X": 1},
                         "Body": {"SessionSetupReq": {"EVCCID": "0102", "Bogus": 1}}}}
    clean = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionSetupReq": {"EVCCID": "0102"}}}}
    assert ExiCodec(unknown_keys="drop").encode(json.dumps(d), DIN) == C.encode(json.dumps(clean), DIN)
    with pytest.raises(ValueError):
        ExiCodec(unknown_keys="ignore")


def test_facets_validate_flag():
    d = {"V2G_Message": {"Header": {"SessionID": "010203040506070809"},     # 9 bytes > 8
                         "Body": {"SessionStopReq": {}}}}
    with pytest.raises(exi.EncodeError, match="SessionID"):
        C.encode(json.dumps(d), DIN)
    assert ExiCodec(validate=False).encode(json.dumps(d), DIN)


def test_peer_zero_quirks_are_opt_in():
    res = {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    assert C.encode(json.dumps(res), SAP).hex() == "804880"
    assert ExiCodec(peer_zeros=True).encode(json.dumps(res), SAP).hex() == "80480000"
    assert json.loads(C.decode(bytes.fromhex("804880"), SAP)) == res     # absent stays absent
    assert ("sap", "supportedAppProtocolRes", "SchemaID") in PEER_ZERO_FIELDS
    # a zero outside the field's range (SAScheduleTupleID is 1..255) cannot be written
    mr = {"MeteringReceiptReq": {"Id": "id1", "SessionID": "0102", "MeterInfo": {"MeterID": "m"}}}
    assert C.encode(json.dumps(mr), ISO2)
    with pytest.raises(exi.EncodeError, match="SAScheduleTupleID"):
        ExiCodec(peer_zeros=True).encode(json.dumps(mr), ISO2)


def test_decode_errors():
    with pytest.raises(exi.DecodeError):
        C.decode(b"\x80\x9a", DIN)
    with pytest.raises(exi.DecodeError):
        C.decode(b"", DSIG)
    with pytest.raises(TypeError):
        C.decode("809a", DIN)


def test_emaid_fragment_uses_the_relaxed_fragment_grammar():
    # eMAID is declared with two types in -2; the bytes are the Java codec's (interop test)
    d = {"eMAID": {"Id": "id4", "value": "DE1234567890123"}}
    data = C.encode(json.dumps(d), ISO2)
    assert data.hex() == "80ec0202b4b21a400451114c4c8ccd0d4d8dce0e4c0c4c8cfd3d00"
    assert exi.to_dict(exi.decode_fragment(data, "iso2")[0]) == d


def test_thread_safe():
    data = bytes.fromhex("809a0211d63f74d2297ac9119400")
    text = C.decode(data, DIN)
    errors = []

    def work():
        try:
            for _ in range(200):
                assert C.encode(C.decode(data, DIN), DIN) == data
        except Exception as e:   # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and C.decode(data, DIN) == text
