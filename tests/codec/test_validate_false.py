"""Decode/encode symmetry: whatever the decoder accepts, encode(validate=False) writes
back.  A real car (EVerest logfiles, Audi/VW AC) sends ChargingProfileEntryMaxNumberOfPhasesInUse=4:
the schema's range is 1..3, the n-bit encoding holds 1..4, the decoder reads it."""
from __future__ import annotations

import pytest

import exi
from exi.messages import iso2


def _power_delivery(phases):
    exi.schema("iso2")
    return iso2.V2G_Message(
        Header=iso2.MessageHeaderType(SessionID=b"\x01" * 8),
        Body=iso2.BodyType(PowerDeliveryReq=iso2.PowerDeliveryReqType(
            ChargeProgress="Start", SAScheduleTupleID=1,
            ChargingProfile=iso2.ChargingProfileType(ProfileEntry=[iso2.ProfileEntryType(
                ChargingProfileEntryStart=0,
                ChargingProfileEntryMaxPower=iso2.PhysicalValueType(Multiplier=0, Unit="W", Value=11000),
                ChargingProfileEntryMaxNumberOfPhasesInUse=phases)]))))


def test_out_of_facet_nbit_value_round_trips_without_validation():
    data = exi.encode(_power_delivery(4), validate=False)
    msg = exi.decode(data, "iso2")
    entry = msg.Body.PowerDeliveryReq.ChargingProfile.ProfileEntry[0]
    assert entry.ChargingProfileEntryMaxNumberOfPhasesInUse == 4
    assert exi.encode(msg, validate=False) == data
    # a valid value lands on the same bits one step lower
    assert exi.encode(_power_delivery(3)) != data


def test_validation_still_refuses_it():
    with pytest.raises(exi.EncodeError, match=r"out of range \[1, 3\]"):
        exi.encode(_power_delivery(4))


@pytest.mark.parametrize("phases", [0, 5, -1])
def test_values_the_bits_cannot_hold_are_refused_anyway(phases):
    with pytest.raises(exi.EncodeError, match="out of range"):
        exi.encode(_power_delivery(phases), validate=False)


def test_empty_content_is_valid_only_where_the_datatype_has_the_empty_string():
    """<Value></Value> (non-strict EXI: an undeclared EE) decodes as "" whatever the type;
    exi.validate refuses it for a number (a fuzzed DIN PreChargeReq reached the SECC's
    arithmetic with it)."""
    data = bytes.fromhex("809a0224e2b90ec00ecee751514007808143000000008000")
    msg = exi.decode(data, "din", padding=True)
    assert msg.Body.PreChargeReq.EVTargetCurrent.Value == ""
    with pytest.raises(exi.ValidationError, match="empty content"):
        exi.validate(msg)
    assert exi.encode(msg, validate=False)          # still re-encodable as received
    msg.Body.PreChargeReq.EVTargetCurrent.Value = 0
    exi.validate(msg)
