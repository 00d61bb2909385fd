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


def test_freed_instances_come_back_empty_as_any_class_of_their_size():
    # the compiled engine keeps freed instances as spares by number of slots and hands
    # them out again, to any generated class of that size: every field must be None
    # again, and the spare must be of the class asked for
    from exi.messages import iso2
    by_size = {}
    for mod in (din, iso2):
        for cls in vars(mod).values():
            if isinstance(cls, type) and issubclass(cls, exi.Message) and cls.__module__ == mod.__name__:
                by_size.setdefault(len(cls.__slots__), []).append(cls)
    v = Tracked()
    before = sys.getrefcount(v)
    for n, classes in by_size.items():
        if not n or len(classes) < 2:
            continue
        made = []
        for cls in classes:
            obj = cls()
            for f in cls.__slots__:
                object.__setattr__(obj, f, v)
            made.append(obj)
        del obj
        made.clear()                     # all freed: spares now
        assert sys.getrefcount(v) == before
        data = bytes.fromhex("8098004011d01800608e3ac34400")      # -2 SessionSetupReq
        for _ in range(3):
            m = exi.decode(data, "iso2")
            assert all(getattr(m.Body, f) is None for f in type(m.Body).__slots__ if f != "SessionSetupReq")
            assert type(m.Body.SessionSetupReq) is iso2.SessionSetupReqType
        for cls in classes:
            obj = cls()
            assert type(obj) is cls and all(getattr(obj, f) is None for f in cls.__slots__)
