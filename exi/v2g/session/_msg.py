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


def message_name(schema: str, msg) -> tuple[str, Any]:
    if schema == "sap":
        return type(msg).__name__, msg
    return body_of(msg)


def v2g(schema: str, session_id: bytes, name: str, body) -> Any:
    m = MODULES[schema]
    return m.V2G_Message(Header=m.MessageHeaderType(SessionID=session_id),
                         Body=m.BodyType(**{name: body}))


def pv(schema: str, value: float, unit: Optional[str]):
    """PhysicalValue with the finest multiplier (-3..3) whose Value fits in a short."""
    m = MODULES[schema]
    for mult in (-3, -2, -1, 0, 1, 2, 3):
        v = round(value / 10 ** mult)
        if -32768 <= v <= 32767:
            return m.PhysicalValueType(Multiplier=mult, Unit=unit, Value=v)
    raise ValueError(f"{value} {unit} does not fit a PhysicalValue")


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
