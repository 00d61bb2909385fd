"""Bad input: on decoding, only exi.DecodeError may come out (no other exception, no hang,
no allocation driven by a corrupt length); on encoding, exi.EncodeError naming the path."""
from __future__ import annotations

import os
import random
import signal
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exi

from ._support import load_subset

SCHEMAS = ("sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp", "xmldsig")
VECTORS = [v for v in load_subset() if v.reencodes]
COMPILED = exi._engine.__file__.endswith((".so", ".pyd"))


def decode_any(data, schema, fragment=False):
    """Decode; return the messages, None for DecodeError; anything else propagates."""
    try:
        if fragment:
            return exi.decode_fragment(data, schema)
        return [exi.decode(data, schema)]
    except exi.DecodeError as e:
        assert isinstance(e.path, str) and isinstance(e.bit_offset, int)
        return None


def pick(schema, message, fragment=False):
    return next(v for v in VECTORS if v.schema == schema and v.row["message"] == message
                and v.fragment == fragment)


SAMPLES = [pick("sap", "supportedAppProtocolReq"), pick("din", "ChargeParameterDiscoveryRes"),
           pick("din", "CurrentDemandReq"), pick("iso2", "ChargeParameterDiscoveryRes"),
           pick("iso2", "AuthorizationReq", fragment=True), pick("iso20_cm", "ServiceDetailRes"),
           pick("iso20_dc", "DC_ChargeParameterDiscoveryReq"), pick("iso20_wpt", "WPT_ChargeLoopRes"),
           pick("iso20_acdp", "ACDP_VehiclePositioningRes")]
SAMPLE_IDS = [v.id for v in SAMPLES]


@pytest.mark.parametrize("v", SAMPLES, ids=SAMPLE_IDS)
def test_every_prefix(v):
    # cutting a stream anywhere gives a DecodeError, never anything else; the last byte may
    # be partly padding, so only prefixes shorter by two bytes or more are certain to fail
    for n in range(len(v.data)):
        got = decode_any(v.data[:n], v.schema, v.fragment)
        if n < len(v.data) - 1:
            assert got is None, f"{v}: a {n}-byte prefix decoded"


@pytest.mark.parametrize("v", SAMPLES, ids=SAMPLE_IDS)
def test_every_bit_flip(v):
    for bit in range(len(v.data) * 8):
        data = bytearray(v.data)
        data[bit >> 3] ^= 0x80 >> (bit & 7)
        got = decode_any(bytes(data), v.schema, v.fragment)
        if got is not None:
            for m in got:
                exi.to_dict(m)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200), schema=st.sampled_from(SCHEMAS), fragment=st.booleans(),
       header=st.booleans())
def test_random_bytes(data, schema, fragment, header):
    if header:
        data = b"\x80" + data
    decode_any(data, schema, fragment)


def test_not_bytes_is_a_type_error():
    with pytest.raises(TypeError):
        exi.decode("8040", "sap")
    with pytest.raises(ValueError):
        exi.decode(b"\x80", "no-such-schema")


# --- mutation fuzz --------------------------------------------------------------------

# A fixed number of mutated inputs (deterministic for a seed), not a time budget: speed is
# measured in benchmarks/, never asserted here.  EXI_FUZZ_INPUTS asks for more.
FUZZ_INPUTS_COMPILED = int(os.environ.get("EXI_FUZZ_INPUTS", "150000"))
FUZZ_INPUTS_PURE = 3_000
HANG_SECONDS = 120


def mutate(rng: random.Random, data: bytes, corpus) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(9)
        n = len(b)
        if op == 0 and n:                       # flip a bit
            i = rng.randrange(n * 8)
            b[i >> 3] ^= 0x80 >> (i & 7)
        elif op == 1 and n:                     # replace a byte
            b[rng.randrange(n)] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == 2:                           # insert bytes
            i = rng.randrange(n + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        elif op == 3 and n > 1:                 # delete a run
            i = rng.randrange(n)
            del b[i:i + rng.randrange(1, 9)]
        elif op == 4 and n:                     # truncate
            del b[rng.randrange(n):]
        elif op == 5 and n > 2:                 # duplicate a chunk
            i = rng.randrange(n)
            j = min(n, i + rng.randrange(1, 17))
            b[j:j] = b[i:j]
        elif op == 6:                           # splice with another stream
            other = rng.choice(corpus).data
            i, j = rng.randrange(n + 1), rng.randrange(len(other) + 1)
            b = b[:i] + other[j:]
        elif op == 7 and n:                     # a run of continuation bytes (huge uints)
            i = rng.randrange(n)
            b[i:i] = b"\xff" * rng.randrange(1, 40)
        elif op == 8 and n > 1:                 # shift the tail by some bits
            i = rng.randrange(1, n)
            k = rng.randrange(1, 8)
            tail = int.from_bytes(b[i:], "big") >> k
            b[i:] = tail.to_bytes(n - i, "big")
    return bytes(b)


class Hang(Exception):
    pass


def test_mutation_fuzz():
    seed = int(os.environ.get("EXI_FUZZ_SEED", "15118"))
    rng = random.Random(seed)
    corpus = VECTORS
    counts = {"inputs": 0, "decoded": 0, "DecodeError": 0, "other exceptions": 0}
    failures = {}

    def on_alarm(signum, frame):
        raise Hang()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_SECONDS)
    start = time.perf_counter()
    needed = FUZZ_INPUTS_COMPILED if COMPILED else FUZZ_INPUTS_PURE
    last = None
    try:
        while counts["inputs"] < needed:
            v = rng.choice(corpus)
            data = mutate(rng, v.data, corpus)
            schema = v.schema if rng.random() < 0.9 else rng.choice(SCHEMAS)
            fragment = v.fragment if rng.random() < 0.95 else not v.fragment
            last = (data.hex(), schema, fragment)
            try:
                got = decode_any(data, schema, fragment)
                for m in got or ():
                    exi.to_dict(m)
            except Hang:
                raise
            except Exception as e:          # noqa: BLE001 - the point of the test
                kind = f"{type(e).__name__}: {str(e)[:80]}"
                failures.setdefault(kind, (counts["inputs"], last))
                counts["other exceptions"] += 1
                got = None
            counts["inputs"] += 1
            counts["decoded" if got is not None else "DecodeError"] += 1
    except Hang:
        raise AssertionError(f"seed {seed}: no result within {HANG_SECONDS} s for {last}") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - start
    print(f"mutation fuzz (seed {seed}, {'compiled' if COMPILED else 'pure Python'}): "
          f"{counts} in {elapsed:.1f} s")
    assert not failures, f"seed {seed}: {counts}; first input of each kind:\n" + "\n".join(
        f"  #{i} {inp}: {kind}" for kind, (i, inp) in failures.items())
    assert counts["inputs"] == needed and counts["decoded"] + counts["DecodeError"] == needed, counts


# --- crafted streams ----------------------------------------------------------------------

def _bits(data: bytes) -> str:
    return "".join(f"{x:08b}" for x in data)


def _bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _uint_bits(n: int) -> str:
    out = ""
    while True:
        low = n & 0x7F
        n >>= 7
        out += f"{(0x80 if n else 0) | low:08b}"
        if not n:
            return out


def first_diff(a: bytes, b: bytes) -> int:
    x, y = _bits(a), _bits(b)
    return next(i for i in range(min(len(x), len(y))) if x[i] != y[i])


def crafted_length(make, schema):
    """A stream whose one string/binary length field says 2**60: `make(one_char)` builds the
    message; 'A' (0x41) and '\\x01' differ in the second bit of the value's first octet."""
    a, b = exi.encode(make(0x41), validate=False), exi.encode(make(0x01), validate=False)
    value_start = first_diff(a, b) - 1
    length_start = value_start - 8              # the length was one octet (a short value)
    bits = _bits(a)
    return _bytes(bits[:length_start] + _uint_bits(2**60 + 2) + bits[value_start:])


def _sap_namespace(c):
    from exi.messages import sap
    return sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace=chr(c), VersionNumberMajor=2, VersionNumberMinor=0, SchemaID=1, Priority=1)])


def _din_evccid(c):
    msg = exi.decode(pick("din", "SessionSetupReq").data, "din")
    msg.Body.SessionSetupReq.EVCCID = bytes((c,))
    return msg


@pytest.mark.parametrize("schema,make,kind", [("sap", _sap_namespace, "string"),
                                               ("din", _din_evccid, "binary")])
def test_oversized_length_raises_before_allocating(schema, make, kind):
    data = crafted_length(make, schema)
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(exi.DecodeError) as e:
            exi.decode(data, schema)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t < 1.0
    assert peak < 4 << 20, f"{peak} bytes allocated for a {len(data)}-byte input"
    assert "length" in e.value.reason and e.value.bit_offset > 0
    if kind == "string" and schema == "sap":
        # the 2**60 was not added to 2 and then trusted: the message names the length
        assert "exceeds" in e.value.reason


def test_huge_unsigned_integer_value():
    # SchemaID is an 8-bit n-bit value in SAP, but VersionNumberMajor is an unsignedInt:
    # a 2000-octet EXI unsigned integer must neither hang nor crash
    from exi.messages import sap
    base = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="x", VersionNumberMajor=1, VersionNumberMinor=0, SchemaID=1, Priority=1)])
    other = sap.supportedAppProtocolReq(AppProtocol=[sap.AppProtocolType(
        ProtocolNamespace="x", VersionNumberMajor=0x41, VersionNumberMinor=0, SchemaID=1, Priority=1)])
    a, b = exi.encode(base), exi.encode(other)
    start = first_diff(a, b) - 1
    bits = _bits(a)
    data = _bytes(bits[:start] + "11111111" * 2000 + "00000001" + bits[start + 8:])
    got = decode_any(data, "sap")
    if got is not None:
        assert got[0].AppProtocol[0].VersionNumberMajor > 2**13000


def test_huge_integers_in_schema_less_content_are_named_not_printed():
    # a string length or character code point of 2,500 octets read inside undeclared
    # (anyType) content: the error names its size, str() of it would raise ValueError
    # (fuzz finding: fuzz/corpus/decode/regress-huge-string-length-in-anytype)
    from exi import _generic
    from exi._bits import BitReader
    huge = b"\xff" * 2500 + b"\x01"
    with pytest.raises(exi.DecodeError, match="string length 17501-bit integer exceeds"):
        _generic._read_literal(BitReader(huge + bytes(8)), BitReader(huge).read_uint())
    with pytest.raises(exi.DecodeError, match="invalid character code point 17501-bit integer"):
        _generic._code_point(BitReader(huge))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_simple_typed_root_elements_decode_to_messages(schema):
    """A document whose root is a global element of simple type (xmldsig DigestValue,
    KeyName, MgmtData are document elements of every schema that imports xmldsig) decodes
    to a message object like any other root, not to a bare str/bytes."""
    from ._gen import tables
    t = tables(schema).t
    s = exi.schema(schema)
    width = (len(s.doc_elements)).bit_length()      # coding_length(n + 1)
    for idx, (q, gi) in enumerate(t.DOC_ELEMENTS):
        if t.GRAMMARS[gi][3] < 0:
            continue
        # SE(root) CH: an empty value (length 0 / empty string: uint 0 or 2) EE
        for value in ("00000000", "00000010"):
            data = _bytes("10000000" + format(idx, f"0{width}b") + "0" + value + "0")
            got = decode_any(data, schema)
            if got is not None:
                msg = got[0]
                assert isinstance(msg, exi.Message), \
                    f"{schema}: root {s.qname_text(q)} decoded to {type(msg).__name__} {msg!r}"
                exi.to_dict(msg)
                break


def test_invalid_document_event_codes():
    # SAP DocContent: 2 elements + SE(*) -> 2-bit codes; 2 is SE(*), 3 is no event at all
    for bits in ("10", "11"):
        with pytest.raises(exi.DecodeError):
            exi.decode(_bytes("10000000" + bits + "0" * 22), "sap")
    for bad_header in (b"\x00\x00", b"\xc0\x00", b"\xa0\x00", b"\x90\x00", b"\x81\x00", b""):
        with pytest.raises(exi.DecodeError):
            exi.decode(bad_header, "sap")


def test_enum_index_out_of_range():
    from exi.messages import sap
    a = exi.encode(sap.supportedAppProtocolRes(ResponseCode=sap.responseCodeType("OK_SuccessfulNegotiation"),
                                               SchemaID=1))
    b = exi.encode(sap.supportedAppProtocolRes(ResponseCode=sap.responseCodeType("Failed_NoNegotiation"),
                                               SchemaID=1))
    n = len(sap.responseCodeType)                  # 3 values in 2 bits: index 3 is invalid
    assert n == 3
    bits = _bits(a)
    i = first_diff(a, b)                           # OK=0 (00) vs Failed=2 (10): first bit
    with pytest.raises(exi.DecodeError) as e:
        exi.decode(_bytes(bits[:i] + "11" + bits[i + 2:]), "sap")
    assert "enumeration" in e.value.reason and "ResponseCode" in e.value.path


# --- encoding -----------------------------------------------------------------------------

def _din_session_setup():
    return exi.decode(pick("din", "SessionSetupReq").data, "din")


def test_encode_out_of_range_ints():
    from exi.messages import sap
    for bad in (-1, 256):          # SchemaID: unsignedByte, an 8-bit n-bit value
        msg = sap.supportedAppProtocolRes(ResponseCode=sap.responseCodeType("OK_SuccessfulNegotiation"),
                                          SchemaID=bad)
        for validate in (True, False):
            with pytest.raises(exi.EncodeError) as e:
                exi.encode(msg, validate=validate)
            assert e.value.path == "/supportedAppProtocolRes/SchemaID", e.value
    msg = _sap_namespace(0x41)
    msg.AppProtocol[0].VersionNumberMajor = 2**32        # unsignedInt
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert "range" in e.value.reason and e.value.path.endswith("/AppProtocol/VersionNumberMajor")
    msg.AppProtocol[0].VersionNumberMajor = -1
    with pytest.raises(exi.EncodeError):
        exi.encode(msg, validate=False)


@pytest.mark.parametrize("field,value", [
    ("VersionNumberMajor", "2"), ("VersionNumberMajor", 2.0), ("VersionNumberMajor", True),
    ("ProtocolNamespace", 5), ("ProtocolNamespace", b"urn"), ("Priority", None.__class__),
])
def test_encode_wrong_types(field, value):
    msg = _sap_namespace(0x41)
    setattr(msg.AppProtocol[0], field, value)
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert e.value.path == f"/supportedAppProtocolReq/AppProtocol/{field}", e.value


def test_encode_wrong_object_types():
    msg = _din_session_setup()
    msg.Body.SessionSetupReq = {"EVCCID": "00"}
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert e.value.path == "/V2G_Message/Body/SessionSetupReq"
    with pytest.raises(exi.EncodeError):
        exi.encode({"V2G_Message": {}})
    msg = _sap_namespace(0x41)
    msg.AppProtocol = msg.AppProtocol[0]            # a list field given one object
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert "AppProtocol" in str(e.value)


def test_encode_missing_required_element():
    msg = _din_session_setup()
    msg.Body.SessionSetupReq.EVCCID = None
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert e.value.path == "/V2G_Message/Body/SessionSetupReq" and "EVCCID" in e.value.reason
    msg = _din_session_setup()
    msg.Header.SessionID = None
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert e.value.path == "/V2G_Message/Header" and "SessionID" in e.value.reason


def test_encode_two_choice_alternatives():
    from exi.messages import iso2
    msg = exi.decode(pick("iso2", "ChargeParameterDiscoveryRes").data, "iso2")
    res = msg.Body.ChargeParameterDiscoveryRes
    assert res.DC_EVSEChargeParameter is not None or res.AC_EVSEChargeParameter is not None
    if res.AC_EVSEChargeParameter is None:
        res.AC_EVSEChargeParameter = iso2.AC_EVSEChargeParameterType()
    else:
        res.DC_EVSEChargeParameter = iso2.DC_EVSEChargeParameterType()
    with pytest.raises(exi.EncodeError) as e:
        exi.encode(msg)
    assert e.value.path.startswith("/V2G_Message/Body/ChargeParameterDiscoveryRes")


def test_from_dict_unknown_keys_and_bad_values():
    d = exi.to_dict(_din_session_setup())
    d["V2G_Message"]["Body"]["SessionSetupReq"]["Bogus"] = 1
    with pytest.raises(exi.EncodeError) as e:
        exi.from_dict(d, "din")
    assert e.value.path == "/V2G_Message/Body/SessionSetupReq" and "Bogus" in e.value.reason
    d = exi.to_dict(_din_session_setup())
    d["V2G_Message"]["Body"]["SessionSetupReq"]["EVCCID"] = "not hex"
    with pytest.raises(exi.EncodeError) as e:
        exi.from_dict(d, "din")
    assert e.value.path == "/V2G_Message/Body/SessionSetupReq/EVCCID"
    with pytest.raises(exi.EncodeError):
        exi.from_dict({"NoSuchRoot": {}}, "din")
    with pytest.raises(exi.EncodeError):
        exi.from_dict({"supportedAppProtocolRes": {"ResponseCode": "NotAMember"}}, "sap")
    with pytest.raises(exi.EncodeError):
        exi.from_xml("<not-closed", "sap")
    with pytest.raises(exi.EncodeError):
        exi.from_xml('<x:supportedAppProtocolRes xmlns:x="urn:iso:15118:2:2010:AppProtocol">'
                     '<ResponseCode>OK_SuccessfulNegotiation</ResponseCode><Bogus/>'
                     '</x:supportedAppProtocolRes>', "sap")


def test_errors_deep_in_nested_elements_name_every_level():
    # the compiled walk enters complex children without an exception handler per level
    # (the nearest element() above names them): the path still has every level, and a
    # decode after the error starts from the top again
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from messages import all_messages
    sid, data, _ = next(v for k, v in all_messages().items() if "3x24" in k)
    tuple_path = "/V2G_Message/Body/ChargeParameterDiscoveryRes/SAScheduleList/SAScheduleTuple"
    expected = {
        200: (tuple_path + "/PMaxSchedule/PMaxScheduleEntry/RelativeTimeInterval", 1582),
        800: (tuple_path + "/SalesTariff/SalesTariffEntry", 6400),
        1200: (tuple_path + "/PMaxSchedule/PMaxScheduleEntry/PMax", 9600),
    }
    for n, (path, bit) in expected.items():
        with pytest.raises(exi.DecodeError) as e:
            exi.decode(data[:n], sid)
        assert (e.value.path, e.value.reason) == (path, "unexpected end of the stream")
        assert str(e.value) == f"{path}: unexpected end of the stream at bit {bit}"
        assert exi.decode(data, sid) is not None


def test_encode_errors_deep_in_nested_elements_name_every_level():
    # the compiled encoder enters children without an exception handler per level too
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from messages import all_messages
    sid, data, _ = next(v for k, v in all_messages().items() if "3x24" in k)
    m = exi.decode(data, sid)
    tup = m.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple[1]
    tup.SalesTariff.SalesTariffEntry[5].ConsumptionCost[0].Cost[0].costKind = -1
    path = ("/V2G_Message/Body/ChargeParameterDiscoveryRes/SAScheduleList/SAScheduleTuple/SalesTariff/"
            "SalesTariffEntry/ConsumptionCost/Cost/costKind")
    for validate in (True, False):
        with pytest.raises(exi.EncodeError) as e:
            exi.encode(m, validate=validate)
        assert e.value.path == path and str(e.value) == f"{path}: -1 is not one of the enumeration values"
    tup.SalesTariff.SalesTariffEntry[5].ConsumptionCost[0].Cost[0].costKind = "relativePricePercentage"
    assert exi.encode(m) == data
