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
