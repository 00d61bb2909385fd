"""Message objects release what they hold: the compiled engine gives the generated classes
a leaner tp_dealloc, which must behave like CPython's for them and for user subclasses."""
from __future__ import annotations

import gc
import sys

import exi
from exi.messages import din


class Tracked:
    """A value whose reference count the test watches."""


def test_fields_are_released_when_the_message_goes():
    v = Tracked()
    before = sys.getrefcount(v)
    msgs = [din.PhysicalValueType(Multiplier=0, Unit=v, Value=i) for i in range(100)]
    assert sys.getrefcount(v) == before + 100
    del msgs
    assert sys.getrefcount(v) == before


def test_decoded_messages_release_their_values():
    data = bytes.fromhex("809a0222c4eddff81b0effd0d1400480c0c01803050cc0300c0c3d00c080e1b1660220181057fc8080c082b700040c14334080")
    sample = exi.decode(data, "din")
    unit = sample.Body.CurrentDemandReq.EVTargetCurrent.Unit     # an enum member, shared
    before = sys.getrefcount(unit)
    msgs = [exi.decode(data, "din") for _ in range(50)]
    assert sys.getrefcount(unit) > before
    del msgs
    assert sys.getrefcount(unit) == before


def test_user_subclasses_with_slots_and_finalizers():
    finalized = []

    class Mine(din.PhysicalValueType):
        __slots__ = ("extra",)

        def __del__(self):
            finalized.append(self.Value)

    v, w = Tracked(), Tracked()
    bv, bw = sys.getrefcount(v), sys.getrefcount(w)
    m = Mine(Multiplier=1, Unit=v, Value=7)
    m.extra = w
    assert exi.to_dict(m)["Value"] == 7
    del m
    assert finalized == [7]
    assert sys.getrefcount(v) == bv and sys.getrefcount(w) == bw


def test_cycles_through_messages_are_collected():
    v = Tracked()
    before = sys.getrefcount(v)
    a = din.PhysicalValueType(Multiplier=0, Unit=v, Value=1)
    b = din.PhysicalValueType(Multiplier=0, Unit=a, Value=2)
    a.Unit = [b, v]                      # a -> list -> b -> a: only the collector frees it
    del a, b
    gc.collect()
    assert sys.getrefcount(v) == before
