"""The seam between the protocol-agnostic session cores and the protocol modules.

SupportedAppProtocol is negotiated by the cores (:mod:`.secc`, :mod:`.evcc`); when the
chosen schema belongs to a protocol module listed here, the core hands every later
message, and its timers, to that module's object (``receive(payload, now,
payload_type)``), which holds the protocol's tables, handlers and timer values and uses
the core for what all protocols share (``_end``, the deadline, controllers, the paused
session store).  DIN and ISO 15118-2 still live in the cores themselves.
"""
from __future__ import annotations

__all__ = ["SECC_PROTOCOLS", "EVCC_PROTOCOLS", "expand", "ALIASES", "preload"]

# Short names users write (CLI --protocols, config) for groups of schemas.
ALIASES = {"iso20": ("iso20_dc", "iso20_ac")}


def expand(protocols) -> tuple:
    out: list = []
    for p in protocols:
        for s in ALIASES.get(p, (p,)):
            if s not in out:
                out.append(s)
    return tuple(out)


def _secc_iso20(host, schema):
    from .iso20.secc import ISO20SECC
    return ISO20SECC(host, schema)


def _evcc_iso20(host, schema):
    from .iso20.evcc import ISO20EVCC
    return ISO20EVCC(host, schema)


def preload(protocols) -> None:
    """Import the protocol modules (and so load their grammars) now, not while a message
    waits: the first load takes a noticeable fraction of a message timeout."""
    if any(s in SECC_PROTOCOLS for s in expand(protocols)):
        from . import iso20     # noqa: F401


SECC_PROTOCOLS = {"iso20_dc": _secc_iso20, "iso20_ac": _secc_iso20}
EVCC_PROTOCOLS = {"iso20_dc": _evcc_iso20, "iso20_ac": _evcc_iso20}
