"""The session cores' message helpers keep their meaning where they were made cheaper:
PhysicalValue scaling (memoised per value) and naming a decoded body (the expected name
tried first)."""
from __future__ import annotations

import math

import pytest

import exi
from exi.messages import din, iso2
from exi.v2g.session import _msg
from exi.v2g.session._msg import body_of, message_name, pv


def _reference(value):
    """The rule: the finest multiplier -3..3 whose rounded Value fits a signed short."""
    for mult in range(-3, 4):
        v = round(value / 10 ** mult)
        if -32768 <= v <= 32767:
            return mult, v
    return None


VALUES = [0.0, -0.0, 1.0, 0.001, 0.0015, 32.767, 32.7675, 32.768, -32.768, -32.7685, 327.67,
          327.675, 400.0, 3276.75, 32767.0, 32767.5, 32768.0, 100000.0, 150000.0, 3.2767e7,
          -3.2768e7, 2 ** 0.5, 1 / 3, 229.99999999999997, 12345.678]


@pytest.mark.parametrize("schema,module", [("iso2", iso2), ("din", din)])
def test_pv_matches_the_rule_twice_in_a_row(schema, module):
    for value in VALUES:
        for _ in range(2):              # computed, then from the memo
            p = pv(schema, value, "V")
            assert type(p) is module.PhysicalValueType
            assert (p.Multiplier, p.Value, p.Unit) == (*_reference(value), "V"), value
    with pytest.raises(ValueError):
        pv("iso2", 1e9, "W")


def test_pv_memo_is_bounded():
    for i in range(3 * _msg._CACHE_MAX):
        pv("iso2", i * 0.37, "A")
    assert len(_msg._PHYSICAL) <= _msg._CACHE_MAX
    assert not math.isnan(pv("iso2", 0.37, "A").Value)


def test_shared_values_and_headers_encode_as_separate_ones():
    # pv() and v2g() share their objects between messages (and fields of one message)
    v = pv("iso2", 400.0, "V")
    assert pv("iso2", 400.0, "V") is v and pv("din", 400.0, "V") is not v
    assert pv("iso2", 400.0, "A") is not v
    res = iso2.PreChargeResType(ResponseCode="OK", DC_EVSEStatus=iso2.DC_EVSEStatusType(
        NotificationMaxDelay=0, EVSENotification="None", EVSEStatusCode="EVSE_Ready"),
        EVSEPresentVoltage=v)
    a, b = _msg.v2g("iso2", b"\x01" * 8, "PreChargeRes", res), _msg.v2g("iso2", b"\x01" * 8, "PreChargeRes", res)
    assert a.Header is b.Header and a.Body is not b.Body
    back = exi.decode(exi.encode(a), "iso2")
    assert exi.to_dict(back) == exi.to_dict(a)
    got = back.Body.PreChargeRes.EVSEPresentVoltage
    assert got.Value * 10 ** got.Multiplier == 400


def test_header_memo_is_bounded():
    for i in range(3 * _msg._CACHE_MAX):
        _msg.v2g("iso2", i.to_bytes(8, "big"), "SessionStopRes", None)
    assert len(_msg._HEADERS) <= _msg._CACHE_MAX


def test_message_name_with_a_hint_names_what_body_of_names():
    sid = b"\x01" * 8
    for name, body in (("ServiceDiscoveryReq", iso2.ServiceDiscoveryReqType()),
                       ("SessionStopReq", iso2.SessionStopReqType(ChargingSession="Terminate"))):
        msg = iso2.V2G_Message(Header=iso2.MessageHeaderType(SessionID=sid),
                               Body=iso2.BodyType(**{name: body}))
        decoded = exi.decode(exi.encode(msg), "iso2")
        expected = body_of(decoded)
        for hint in (None, name, "ServiceDiscoveryReq", "ChargingStatusReq", "NoSuchElement"):
            assert message_name("iso2", decoded, hint)[0] == expected[0] == name
