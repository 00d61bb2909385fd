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


def _schedule_message():
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from messages import all_messages
    return next(v for k, v in all_messages().items() if "3x24" in k)


def test_list_fields_of_freed_messages_are_reused_only_when_nothing_else_holds_them():
    # the compiled engine keeps the lists of freed messages (maxOccurs > 1 fields) as
    # spares for the next decode: a list the caller still holds must stay untouched, a
    # reused one must hold exactly the new items, and items must be released
    sid, data, _ = _schedule_message()
    v = Tracked()
    before = sys.getrefcount(v)
    kept = []
    for round_ in range(6):
        m = exi.decode(data, sid)
        tuples = m.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple
        entries = tuples[0].PMaxSchedule.PMaxScheduleEntry
        assert len(tuples) == 3 and len(entries) == 24
        if round_ % 2:
            kept.append(entries)         # held by the caller: never recycled
            snapshot = list(entries)
        tuples[1].PMaxSchedule.PMaxScheduleEntry.append(v)      # freed with the message
        tuples[2].PMaxSchedule.PMaxScheduleEntry.clear()        # an emptied list (no items)
        del m, tuples, entries
        assert sys.getrefcount(v) == before
        m2 = exi.decode(data, sid)
        assert exi.encode(m2) == data
        if round_ % 2:
            assert kept[-1] == snapshot and all(e is not None for e in kept[-1])
        del m2
    for lst in kept:
        assert len(lst) == 24 and exi.to_dict(lst[0])["PMax"]["Value"] == 11000
    # a list subclass or a list shared with another message is freed the usual way
    a = exi.decode(data, sid)
    b = exi.decode(data, sid)
    shared = a.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple
    b.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple = shared

    class MyList(list):
        pass

    a.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple = MyList(shared)
    del a, b
    assert len(shared) == 3 and exi.encode(exi.decode(data, sid)) == data


def test_the_spare_decoder_keeps_no_large_copy_of_its_input():
    # the compiled reader works on a private copy of the input (8 zero octets after it);
    # after a large document the spare decoder must not hold on to that copy
    import tracemalloc
    big = exi.from_xml("<Object xmlns='http://www.w3.org/2000/09/xmldsig#'><w xmlns='urn:w'>"
                       + "x" * 300_000 + "</w></Object>", "xmldsig")
    data = exi.encode(big)
    assert len(data) > 300_000
    small = bytes.fromhex("8098004011d01800608e3ac34400")      # -2 SessionSetupReq
    exi.decode(small, "iso2")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = exi.decode(data, "xmldsig")
        del decoded                     # the spare decoder is idle now: nothing large held
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 100_000, f"{kept} bytes still held after decoding {len(data)} bytes"
