"""Small helpers over the generated ISO 15118-20 message classes (CommonMessages, DC, AC).

-20 has no V2G_Message wrapper: every request and response is a root element with its
own MessageHeader, and each message set travels on its own V2GTP payload type
(ISO 15118-20 Table 12 via exi.registry: 0x8002 CommonMessages, 0x8003 AC, 0x8004 DC).
"""
from __future__ import annotations

from typing import Any, Optional

import exi
from exi.messages import iso20_ac, iso20_cm, iso20_dc
from exi.registry import PAYLOAD_TYPES, SCHEMAS

for _s in ("iso20_cm", "iso20_dc", "iso20_ac"):
    exi.schema(_s)

MODULES = {"iso20_cm": iso20_cm, "iso20_dc": iso20_dc, "iso20_ac": iso20_ac}
CM, DC, AC = iso20_cm, iso20_dc, iso20_ac

# The payload types a -20 session accepts on its TCP/TLS connection, and their schema.
SESSION_PAYLOAD_TYPES = {SCHEMAS[s].payload_type: s for s in MODULES}


def schema_of(name: str) -> str:
    """The message set of a -20 message name: "DC_CableCheckReq" -> "iso20_dc"."""
    if name.startswith("DC_"):
        return "iso20_dc"
    if name.startswith("AC_"):
        return "iso20_ac"
    return "iso20_cm"


def payload_type_of(schema: str) -> int:
    return SCHEMAS[schema].payload_type


def payload_type_name(code: int) -> str:
    p = PAYLOAD_TYPES.get(code)
    return p.name if p else "unknown"


def build(name: str, session_id: bytes, timestamp: int, **fields) -> Any:
    """A -20 root message with its header: ``build("SessionSetupReq", sid, t, EVCCID=..)``."""
    m = MODULES[schema_of(name)]
    header = m.MessageHeaderType(SessionID=session_id, TimeStamp=timestamp)
    return getattr(m, name)(Header=header, **fields)


def rn(mod, value: float):
    """RationalNumber (Value * 10^Exponent, Value a short) with the finest exponent -3..3."""
    for exp in (-3, -2, -1, 0, 1, 2, 3):
        v = round(value / 10 ** exp)
        if -32768 <= v <= 32767:
            return mod.RationalNumberType(Exponent=exp, Value=v)
    raise ValueError(f"{value} does not fit a RationalNumber")


def fr(r, default: float = 0.0) -> float:
    """Float of a RationalNumber (``default`` when absent)."""
    if r is None or r.Value is None:
        return default
    return r.Value * 10 ** (r.Exponent or 0)


def val(x) -> Optional[str]:
    if x is None:
        return None
    return getattr(x, "value", x)
