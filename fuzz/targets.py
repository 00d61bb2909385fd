"""One fuzz target per parser, each with its contract: the exceptions it may raise on bad
input (the documented errors).  Anything else, a crash, a hang or unbounded memory is a
finding.

A target is a function of the fuzzer's bytes.  Where one parser serves several message
sets, the first byte chooses the set, so one corpus covers them all.  Targets also push
what a parser accepted through the functions that consume it (conversions, re-encoding,
rendering), since that is where accepted-but-odd input breaks things.
"""
from __future__ import annotations

import enum
import io
import json
import logging
import os
import pickle
import tempfile
import types
from dataclasses import dataclass
from typing import Callable

import exi
from exi.registry import SCHEMAS as _REGISTRY
from exi.v2g.v2gtp import Frame

SCHEMA_IDS = ("sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp",
              "xmldsig")
assert set(SCHEMA_IDS) <= set(_REGISTRY) | {"xmldsig"}


class Finding(AssertionError):
    """A parser broke its contract (raised by the target itself, not by the parser)."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    allowed: tuple              # exception types that are the documented answer to bad input
    about: str


TARGETS: dict[str, Target] = {}


def target(name: str, allowed: tuple, about: str):
    def register(fn):
        TARGETS[name] = Target(name, fn, allowed, about)
        return fn
    return register


def check(t: Target, data: bytes) -> None:
    """Run one input; raise (a finding) unless it passed or raised a documented error."""
    try:
        t.run(data)
    except t.allowed:
        pass


def _schema_and_rest(data: bytes) -> tuple[str, bytes]:
    if not data:
        return "din", b""
    return SCHEMA_IDS[data[0] % len(SCHEMA_IDS)], data[1:]


def _exercise(msg) -> None:
    """What a user does with a message the codec handed out: none of it may fail except
    with the codec's documented errors."""
    d = exi.to_dict(msg)
    try:
        exi.to_xml(msg)
    except exi.EncodeError:         # text that XML 1.0 cannot carry (U+0000 ...)
        pass
    try:
        exi.validate(msg)
    except exi.ValidationError:
        pass
    try:
        exi.encode(msg, validate=False)
    except exi.EncodeError:
        pass
    try:
        exi.from_dict(d, msg._schema_id if not isinstance(msg, exi.AnyElement) else "xmldsig")
    except exi.EncodeError:
        pass


# --- codec ------------------------------------------------------------------------------------

@target("decode", (exi.DecodeError,), "exi.decode for every message set, then conversions")
def decode(data: bytes) -> None:
    sid, rest = _schema_and_rest(data)
    _exercise(exi.decode(rest, sid))


@target("decode_fragment", (exi.DecodeError,),
        "exi.decode_fragment for every message set, then encode_fragment and to_dict")
def decode_fragment(data: bytes) -> None:
    sid, rest = _schema_and_rest(data)
    elements = exi.decode_fragment(rest, sid)
    for el in elements:
        exi.to_dict(el)
    if elements:
        try:
            exi.encode_fragment(*elements, schema=sid, validate=False)
        except exi.EncodeError:
            pass


@target("from_xml", (exi.EncodeError,), "exi.from_xml for every message set, then encode/to_dict")
def from_xml(data: bytes) -> None:
    sid, rest = _schema_and_rest(data)
    msg = exi.from_xml(rest, sid)
    _exercise(msg)
    exi.encode(msg)


@target("from_dict", (exi.EncodeError,), "exi.from_dict of JSON for every message set, then encode")
def from_dict(data: bytes) -> None:
    sid, rest = _schema_and_rest(data)
    try:
        d = json.loads(rest)
    except (ValueError, RecursionError):        # not JSON: not this parser's business
        return
    msg = exi.from_dict(d, sid)
    _exercise(msg)
    exi.encode(msg)


# --- transport ---------------------------------------------------------------------------------

@target("v2gtp", (), "V2GTPFramer fed the same stream in arbitrary chunks; parse_datagram")
def v2gtp_stream(data: bytes) -> None:
    from exi.v2g import v2gtp
    if len(data) < 2:
        return
    cuts, stream = data[:data[0] % 16], data[data[0] % 16:]
    max_payload = (64, 4096, v2gtp.DEFAULT_MAX_PAYLOAD)[data[-1] % 3]

    def run(chunks):
        framer = v2gtp.V2GTPFramer(max_payload=max_payload)
        frames, errors = [], []
        for c in chunks + [b""]:
            try:
                frames += framer.feed(c)
            except v2gtp.V2GTPError as e:
                errors.append((e.reason, e.action))
                if e.action is v2gtp.Action.CLOSE_CONNECTION:
                    break
        while framer.has_pending and len(errors) < 10_000:
            try:
                frames += framer.feed(b"")
            except v2gtp.V2GTPError as e:
                errors.append((e.reason, e.action))
                if e.action is v2gtp.Action.CLOSE_CONNECTION:
                    break
        return frames, errors

    whole = run([stream])
    chunks, i = [], 0
    for c in cuts:
        chunks.append(stream[i:i + c])
        i += c
    chunks.append(stream[i:])
    if run(chunks) != whole:
        raise Finding("the framer's frames depend on how the stream was cut")
    try:
        v2gtp.parse_datagram(stream)
    except v2gtp.V2GTPError:
        pass


@target("sdp", (), "SDP datagrams: sdp.decode, the SDP server core, the capture's parse_sdp")
def sdp_datagram(data: bytes) -> None:
    import ipaddress

    from exi.capture._v2gtp import parse_sdp
    from exi.v2g import sdp, v2gtp
    try:
        msg = sdp.decode(data)
    except (v2gtp.V2GTPError, sdp.SDPError):
        pass
    else:
        if sdp.decode(sdp.encode(msg)) != msg:
            raise Finding(f"SDP message does not survive encode/decode: {msg!r}")
    server = sdp.SDPServer(ipaddress.IPv6Address("fe80::1"), tls_port=50000, tcp_port=50001)
    server.handle_datagram(data)
    if len(data) >= 8:
        try:
            parse_sdp(0x9000 + data[2] % 4, data[8:])
        except ValueError:
            pass


# --- captures ---------------------------------------------------------------------------------

# The reader takes a file: on tmpfs where there is one (writing and reopening a file on
# this machine's /tmp costs ~0.5 ms, as much as reading the capture).
_CAPTURE_FILE = os.path.join("/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir(),
                             f"exi-fuzz-{os.getpid()}.pcap")


def _no_tshark(*_args):
    return iter(())


@target("capture", (), "capture reader (pcap, pcapng, .dump; TCP reassembly, V2GTP, TLS records) "
                       "and every output format")
def capture(data: bytes) -> None:
    from exi.capture import render, summary, tls
    from exi.capture.reader import CaptureReader
    tls.decrypted_chunks = _no_tshark          # tshark is another program: not fuzzed here
    with open(_CAPTURE_FILE, "wb") as f:
        f.write(data)
    records = list(CaptureReader(cache=False).read(_CAPTURE_FILE))
    out = io.StringIO()
    for fmt in render.FORMATS:
        render.write(records, fmt, out)
    totals = summary.summarize(records)
    render.write_summary(totals, out)
    render.write_summary(totals, out, as_json=True)


# --- session cores ---------------------------------------------------------------------------

# (protocol, mode, -20 control mode); new entries go last (the corpus picks by index).
_SESSIONS = (("din", "dc", None), ("iso2", "dc", None), ("iso2", "ac", None),
             ("iso20", "dc", "dynamic"), ("iso20", "ac_bpt", "scheduled"))


def _new_pair(scenario: int):
    from exi.v2g.session import EVCCConfig, SECCConfig
    from exi.v2g.session.iso20 import ISO20EVCCSettings
    from exi.v2g.session.testing import SessionPair
    schema, mode, control = _SESSIONS[scenario]
    return SessionPair(EVCCConfig(protocols=(schema,), mode=mode, max_charge_loops=2,
                                  renegotiate_after=1 if schema == "iso2" else None,
                                  control=control or "scheduled",
                                  iso20=ISO20EVCCSettings(schedule_renegotiation_after=1)
                                  if control == "scheduled" else None),
                       SECCConfig(protocols=(schema,)), tls_version="TLSv1.3" if control else None)


_MESSAGES: dict = {}
_SNAPSHOTS: dict = {}
_STEPS = 5000           # a session that has not ended after this many steps is a finding


def _messages(scenario: int, direction: str) -> int:
    """How many messages the untampered session sends in one direction (computed once), so
    that every value of the fuzzer's n-th byte picks a message that exists."""
    key = (scenario, direction)
    if key not in _MESSAGES:
        pair, seen = _new_pair(scenario), [0]

        def count(d, original):
            seen[0] += d == direction
            return original
        pair.tamper = count
        pair.run(max_steps=_STEPS)
        _MESSAGES[key] = max(1, seen[0])
    return _MESSAGES[key]


def _snapshot(scenario: int, direction: str, nth: int):
    """The untampered session paused with its ``nth`` message in ``direction`` queued and
    not yet delivered (built once per message and kept): each input continues a copy of it,
    so no input re-runs the messages before the one it changes (a fresh copy per call)."""
    key = (scenario, direction, nth)
    if key not in _SNAPSHOTS:
        pair, seen, wanted = _new_pair(scenario), [0], [None]

        def mark(d, original):
            if d == direction:
                seen[0] += 1
                if seen[0] == nth + 1:
                    wanted[0] = pair._seq + 1       # the sequence number _push gives it
            return original
        pair.tamper = mark
        pair.start()
        while not (pair._queue and pair._queue[0][1] == wanted[0]):
            if not pair.step():
                raise RuntimeError(f"session {scenario} sends no message {nth} {direction}")
        pair.tamper = None
        pair.log.clear()                            # inspection only: not worth copying
        pair.events = {"evcc": [], "secc": []}
        out = io.BytesIO()
        _SnapshotPickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(pair)
        _SNAPSHOTS[key] = out.getvalue()
    return _SnapshotUnpickler(io.BytesIO(_SNAPSHOTS[key])).load()


# A snapshot is kept pickled: loading it is a deep copy at about a third of copy.deepcopy's
# cost.  What cannot change is shared by reference: functions (the configs' default
# factories are lambdas, which pickle cannot name) and enum members (which would be
# looked up by value through Python code on every load).
_SHARED: dict = {}


class _SnapshotPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, enum.Enum)):
            _SHARED[id(obj)] = obj
            return id(obj)
        return None


class _SnapshotUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        return _SHARED[pid]


def _session_pair(data: bytes, tamper_direction: str):
    """A whole EVCC<->SECC session in memory in which the n-th message in one direction is
    replaced by the fuzzer's payload (or XOR-mutated by it): every state is reachable by n
    (the second byte modulo the session's message count in that direction).  The session
    up to that message is the same for every input, so it runs once and each input
    continues a copy of it to the end."""
    if len(data) < 3:
        return None
    scenario = data[0] % len(_SESSIONS)
    nth = data[1] % _messages(scenario, tamper_direction)
    how, payload = data[2] % 3, data[3:]
    pair = _snapshot(scenario, tamper_direction, nth)
    at, seq, side, frame = pair._queue[0]
    payload_type, original = int.from_bytes(frame[2:4], "big"), frame[8:]
    if how == 0 or not payload:
        changed = payload
    elif how == 1:                                  # flip bits of the real message
        changed = bytes(b ^ payload[i % len(payload)] for i, b in enumerate(original))
    else:                                           # splice
        changed = original[:payload[0] % (len(original) + 1)] + payload[1:]
    pair._queue[0] = (at, seq, side, Frame(payload_type, changed).pack())
    pair.finish(max_steps=_STEPS)
    return pair


def _internal(result) -> bool:
    return result is not None and result.reason.startswith("internal error")


@target("secc", (), "the SECC core driven through a session, one request replaced by fuzz")
def secc(data: bytes) -> None:
    pair = _session_pair(data, "evcc->secc")
    if pair is not None and _internal(pair.secc.ended):
        raise Finding(f"SECC: {pair.secc.ended.reason}")


@target("evcc", (), "the EVCC core driven through a session, one response replaced by fuzz")
def evcc(data: bytes) -> None:
    pair = _session_pair(data, "secc->evcc")
    if pair is not None and _internal(pair.evcc.result):
        raise Finding(f"EVCC: {pair.evcc.result.reason}")


def quiet_logs() -> None:
    """The cores log every fault; thousands per second are noise here.  Also loads every
    schema up front: the first use of one takes about a second, which is not a hang."""
    logging.disable(logging.CRITICAL)
    for sid in SCHEMA_IDS:
        exi.schema(sid)

