"""Small helpers over the generated DIN / ISO 15118-2 / SAP message classes."""
from __future__ import annotations

import math
from typing import Any, Optional

import exi
from exi.messages import din, iso2, sap

# The codec attaches schema metadata to the generated classes when a schema is first
# loaded; hand-built messages can only be encoded after that.
for _s in ("sap", "din", "iso2"):
    exi.schema(_s)

MODULES = {"din": din, "iso2": iso2, "sap": sap}
ZERO_SESSION = b"\x00" * 8
_V2G_MESSAGES = (din.V2G_Message, iso2.V2G_Message)


def body_of(msg) -> tuple[str, Any]:
    """(element name, body object) of a V2G_Message, e.g. ("SessionSetupReq", ...).
    ValueError for anything else the schema lets a stream hold (a bare body element, a
    signature element): the cores treat it as an undecodable message."""
    if type(msg) not in _V2G_MESSAGES:
        raise ValueError(f"{type(msg).__name__} is not a V2G_Message")
    body = msg.Body
    if body is None:
        raise ValueError("V2G_Message without Body")
    for f in type(body).__slots__:
        v = getattr(body, f)
        if v is not None:
            return f, v
    raise ValueError("empty Body")


def message_name(schema: str, msg, hint: Optional[str] = None) -> tuple[str, Any]:
    """(name, body) of a message *decoded* from ``schema``.  ``hint``: the name expected
    (the last one seen), tried first: a decoded Body holds at most one element (the
    schemas' BodyType has one optional BodyElement), so when the hint's slot is set it
    is the one, and the scan over the Body's slots is saved."""
    if schema == "sap" or schema.startswith("iso20"):      # the root is the message itself
        return type(msg).__name__, msg
    if hint is not None and type(msg) in _V2G_MESSAGES and msg.Body is not None:
        v = getattr(msg.Body, hint, None)
        if v is not None:
            return hint, v
    return body_of(msg)


def v2g(schema: str, session_id: bytes, name: str, body) -> Any:
    m = MODULES[schema]
    header = _HEADERS.get((schema, session_id))
    if header is None:
        if len(_HEADERS) >= _CACHE_MAX:
            _HEADERS.clear()
        header = _HEADERS[schema, session_id] = m.MessageHeaderType(SessionID=session_id)
    return m.V2G_Message(Header=header, Body=m.BodyType(**{name: body}))


_POWERS = tuple((mult, 10 ** mult) for mult in (-3, -2, -1, 0, 1, 2, 3))
_PHYSICAL_VALUE = {"din": din.PhysicalValueType, "iso2": iso2.PhysicalValueType}
# The charge loop sends the same limits and mostly the same present values every 0.1 s
# per EV: (schema, value, unit) -> its PhysicalValue, and (schema, SessionID) -> its
# MessageHeader, built once and shared by the messages that carry them (objects the
# session layer builds are read-only once built: encoded, traced, never changed).
_PHYSICAL: dict = {}
_HEADERS: dict = {}
_CACHE_MAX = 4096


def pv(schema: str, value: float, unit: Optional[str]):
    """PhysicalValue with the finest multiplier (-3..3) whose Value fits in a short
    (shared: do not modify it)."""
    key = (schema, value, unit)
    obj = _PHYSICAL.get(key)
    if obj is None:
        for mult, power in _POWERS:
            v = round(value / power)
            if -32768 <= v <= 32767:
                break
        else:
            raise ValueError(f"{value} {unit} does not fit a PhysicalValue")
        if len(_PHYSICAL) >= _CACHE_MAX:
            _PHYSICAL.clear()
        obj = _PHYSICAL[key] = _PHYSICAL_VALUE[schema](Multiplier=mult, Unit=unit, Value=v)
    return obj


def fv(p) -> float:
    """Float of a PhysicalValue (0.0 when absent)."""
    if p is None or p.Value is None:
        return 0.0
    return p.Value * 10 ** (p.Multiplier or 0)


def clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def val(x) -> Optional[str]:
    """The plain value of an enumeration field (``str(x)`` of a str-Enum is 'Type.member')."""
    if x is None:
        return None
    return getattr(x, "value", x)
