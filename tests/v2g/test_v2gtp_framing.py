"""V2GTP header pack/parse and the incremental framer (no network)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exi.registry import PAYLOAD_TYPES
from exi.v2g import v2gtp
from exi.v2g.v2gtp import (
    Action, Frame, Reason, V2GTPError, V2GTPFramer, pack, parse_datagram, parse_header,
)

TCP_TYPES = sorted(v2gtp.TCP_PAYLOAD_TYPES)


def header(version=1, inverse=0xFE, ptype=0x8001, length=0) -> bytes:
    return struct.pack(">BBHI", version, inverse, ptype, length)


def test_pack_layout():
    assert pack(0x8001, b"\x80\x00") == bytes.fromhex("01fe8001000000028000")
    assert pack(0x9000, b"") == bytes.fromhex("01fe900000000000")


def test_pack_rejects_bad_type():
    with pytest.raises(ValueError):
        pack(0x10000, b"")
    with pytest.raises(ValueError):
        pack(-1, b"")


def test_parse_header_ok():
    assert parse_header(header(ptype=0x8004, length=1234)) == (0x8004, 1234)
    assert parse_header(header(ptype=0x8004, length=1234) + b"rest") == (0x8004, 1234)


def test_every_registry_code_accepted_and_named():
    for code, p in PAYLOAD_TYPES.items():
        assert parse_header(header(ptype=code)) == (code, 0)
        assert v2gtp.payload_type_name(code) == p.name
    assert "0x1234" in v2gtp.payload_type_name(0x1234)


def test_short_header_is_plain_value_error():
    with pytest.raises(ValueError):
        parse_header(b"\x01\xfe\x80")


@pytest.mark.parametrize("hdr,reason,action", [
    (header(version=0x02, inverse=0xFD), Reason.BAD_VERSION, Action.CLOSE_CONNECTION),
    (header(version=0x00, inverse=0xFF), Reason.BAD_VERSION, Action.CLOSE_CONNECTION),
    (header(inverse=0xFF), Reason.BAD_INVERSE, Action.CLOSE_CONNECTION),
    (header(inverse=0x01), Reason.BAD_INVERSE, Action.CLOSE_CONNECTION),
    (header(ptype=0x1234, length=3), Reason.UNKNOWN_PAYLOAD_TYPE, Action.DISCARD),
    (header(ptype=0x0000), Reason.UNKNOWN_PAYLOAD_TYPE, Action.DISCARD),
    (header(ptype=0x1234, length=0xFFFFFFFF), Reason.UNKNOWN_PAYLOAD_TYPE, Action.CLOSE_CONNECTION),
    (header(length=65537), Reason.OVERSIZE, Action.CLOSE_CONNECTION),
    (header(length=0xFFFFFFFF), Reason.OVERSIZE, Action.CLOSE_CONNECTION),
])
def test_bad_headers(hdr, reason, action):
    with pytest.raises(V2GTPError) as ei:
        parse_header(hdr, max_payload=65536)
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.reason is reason and e.action is action
    assert action.value in str(e)
    # The framer raises the same error after the 8 header bytes, buffering nothing.
    f = V2GTPFramer(max_payload=65536, payload_types=None)
    for b in hdr[:-1]:
        assert f.feed(bytes([b])) == []
    with pytest.raises(V2GTPError) as ei2:
        f.feed(hdr[-1:] + b"\x00" * 10)
    assert ei2.value.reason is reason
    assert f.buffered == 0


def test_sdp_type_not_accepted_on_tcp_stream():
    f = V2GTPFramer()
    with pytest.raises(V2GTPError) as ei:
        f.feed(pack(0x9000, b"\x00\x00"))
    assert ei.value.reason is Reason.UNKNOWN_PAYLOAD_TYPE


def test_oversize_rejected_before_buffering():
    f = V2GTPFramer(max_payload=100)
    with pytest.raises(V2GTPError) as ei:
        f.feed(header(length=101) + b"A" * 50)
    assert ei.value.reason is Reason.OVERSIZE and ei.value.length == 101
    assert f.buffered == 0 and f.closed
    with pytest.raises(V2GTPError):             # fatal: stays closed
        f.feed(pack(0x8001, b"ok"))


def test_exactly_max_payload_is_fine():
    f = V2GTPFramer(max_payload=100)
    assert f.feed(pack(0x8001, b"A" * 100)) == [Frame(0x8001, b"A" * 100)]


def test_frames_before_bad_header_are_delivered_first():
    f = V2GTPFramer()
    data = pack(0x8001, b"one") + pack(0x8002, b"two") + header(version=7)
    assert f.feed(data) == [Frame(0x8001, b"one"), Frame(0x8002, b"two")]
    assert f.has_pending
    with pytest.raises(V2GTPError) as ei:
        f.feed(b"")
    assert ei.value.reason is Reason.BAD_VERSION
    assert f.closed


def test_discard_skips_payload_and_continues():
    f = V2GTPFramer()
    data = header(ptype=0x7777, length=5) + b"12345" + pack(0x8001, b"after")
    with pytest.raises(V2GTPError) as ei:
        f.feed(data[:10])
    assert ei.value.action is Action.DISCARD
    assert f.feed(data[10:]) == [Frame(0x8001, b"after")]


def test_discard_with_following_frame_in_same_chunk():
    f = V2GTPFramer()
    data = pack(0x8001, b"a") + header(ptype=0x7777, length=2) + b"xx" + pack(0x8001, b"b")
    assert f.feed(data) == [Frame(0x8001, b"a")]
    with pytest.raises(V2GTPError):
        f.feed(b"")
    assert f.feed(b"") == [Frame(0x8001, b"b")]
    assert not f.has_pending


def test_data_fed_while_error_pending_is_kept():
    f = V2GTPFramer()
    first = pack(0x8001, b"a") + header(ptype=0x7777, length=0)
    assert f.feed(first) == [Frame(0x8001, b"a")]
    with pytest.raises(V2GTPError):
        f.feed(pack(0x8001, b"b"))
    assert f.feed(b"") == [Frame(0x8001, b"b")]


frames_st = st.lists(st.builds(Frame, st.sampled_from(TCP_TYPES), st.binary(max_size=300)),
                     max_size=8)


@settings(max_examples=200, deadline=None)
@given(frames=frames_st, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_arbitrary_chunking(frames, cuts):
    data = b"".join(f.pack() for f in frames)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    framer = V2GTPFramer(max_payload=300)
    out: list[Frame] = []
    for a, b in zip(points, points[1:]):
        out += framer.feed(data[a:b])
    assert out == frames
    assert framer.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=17))
def test_random_bytes_frames_or_v2gtp_error_only(data, step):
    # Fuzz contract: frames or V2GTPError, nothing else, and never more than the
    # header plus max_payload buffered.
    framer = V2GTPFramer(max_payload=64)
    for i in range(0, len(data), step):
        try:
            framer.feed(data[i:i + step])
        except V2GTPError:
            if framer.closed:
                break
        assert framer.buffered <= 64


def test_parse_datagram():
    assert parse_datagram(pack(0x9000, b"\x10\x00")) == Frame(0x9000, b"\x10\x00")
    for bad, reason in [(b"\x01\xfe", Reason.TRUNCATED),
                        (header(ptype=0x9000, length=2) + b"\x10", Reason.TRUNCATED),
                        (header(ptype=0x9000, length=1) + b"\x10\x00", Reason.LENGTH_MISMATCH),
                        (header(version=2, ptype=0x9000), Reason.BAD_VERSION)]:
        with pytest.raises(V2GTPError) as ei:
            parse_datagram(bad)
        assert ei.value.reason is reason and ei.value.action is Action.DISCARD
        assert str(ei.value).endswith(f"({Action.DISCARD.value})")    # the message says so too
