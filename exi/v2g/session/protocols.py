"""The seam between the protocol-agnostic session cores and the protocol modules.

SupportedAppProtocol is negotiated by the cores (:mod:`.secc`, :mod:`.evcc`); the chosen
schema's entry here builds the protocol's handler object ``factory(host core, schema)``,
which holds the protocol's tables, handlers and timer values and uses the core for what
all protocols share (``_end``, the deadline and timers, controllers, the paused-session
store).  DIN SPEC 70121 (:mod:`.din`) and ISO 15118-2 (:mod:`.iso2`) are one
``V2G_Message`` on payload type 0x8001: the core decodes, sequences and answers them
(``owns_messages = False``); ISO 15118-20 (:mod:`.iso20`) has its own message sets,
payload types, state enum and per-message sequence timeouts, so it runs its own receive
path (``owns_messages = True``) over the same preamble (the cores' ``_request`` /
``_wrong_session`` and ``_response`` / ``_accept``: decoding, naming, reporting,
FAILED and SessionID checks).
"""
from __future__ import annotations

import importlib

__all__ = ["SECC_PROTOCOLS", "EVCC_PROTOCOLS", "TLS13_ONLY", "expand", "ALIASES", "preload"]

# Short names users write (CLI --protocols, config) for groups of schemas.
ALIASES = {"iso20": ("iso20_dc", "iso20_ac")}
# Schemas selected and offered only on a TLS 1.3 connection ([V2G20-2356], [V2G20-1237]).
TLS13_ONLY = frozenset({"iso20_dc", "iso20_ac"})


def expand(protocols) -> tuple:
    out: list = []
    for p in protocols:
        for s in ALIASES.get(p, (p,)):
            if s not in out:
                out.append(s)
    return tuple(out)


# The protocol modules import the cores (shared helpers), so they are imported only when
# first used (or by preload): schema -> (module, SECC class, EVCC class).
_MODULES = {"din": (".din", "DINSECC", "DINEVCC"), "iso2": (".iso2", "ISO2SECC", "ISO2EVCC"),
            "iso20_dc": (".iso20", "ISO20SECC", "ISO20EVCC"), "iso20_ac": (".iso20", "ISO20SECC", "ISO20EVCC")}


def _factory(schema: str, role: str):
    package, secc_cls, evcc_cls = _MODULES[schema]

    def make(host, chosen):
        module = importlib.import_module(f"{package}.{role}", __package__)
        return getattr(module, secc_cls if role == "secc" else evcc_cls)(host, chosen)
    return make


SECC_PROTOCOLS = {schema: _factory(schema, "secc") for schema in _MODULES}
EVCC_PROTOCOLS = {schema: _factory(schema, "evcc") for schema in _MODULES}


def preload(protocols) -> None:
    """Import the protocol modules (and so load their grammars) now, not while a message
    waits: the first load takes a noticeable fraction of a message timeout."""
    schemas = expand(protocols)
    if "din" in schemas:
        from .din import evcc, secc      # noqa: F401
    if "iso2" in schemas:
        from .iso2 import evcc, secc     # noqa: F401, F811
    if TLS13_ONLY & set(schemas):
        from . import iso20              # noqa: F401
