"""The one place where capture decoding meets the EXI codec.

Decoder.decode(payload, schema) -> Decoded: the message name and the codec's message
object; the dict form (exi.to_dict, several times the cost of the decode itself) is built
only when somebody asks for `content`, once per Decoded.  Results are cached per (schema,
payload): a capture repeats identical EXI payloads constantly (the charge loop), so records
carrying the same payload share one Decoded, its message object and its dict; callers must
treat both as read-only.  Decoder(cache=False) decodes every payload.

Cython pure-Python mode (see _codec.pxd): compiled by setup.py, also runs as plain Python.
"""
from __future__ import annotations

from typing import Callable, Optional

import cython

from ..errors import TrailingDataError

if cython.compiled:
    from cython.cimports.exi._slots import get_slot, slot_offset
else:
    def slot_offset(descriptor):
        return 0


class CodecUnavailable(RuntimeError):
    pass


def _load() -> tuple[Callable, Callable]:
    try:
        import exi
        return exi.decode, exi.to_dict
    except (ImportError, AttributeError) as e:
        raise CodecUnavailable(f"EXI codec not available (exi.decode/exi.to_dict): {e}") from None


def message_name(d: dict) -> Optional[str]:
    """Name of a message in dict form: the element inside Body for DIN/-2, the root
    element otherwise."""
    if not d:
        return None
    root = next(iter(d))
    if root == "V2G_Message":
        body = (d[root] or {}).get("Body") or {}
        return next(iter(body), None) or "V2G_Message"
    return root


_ROOTS: dict = {}        # message class -> its root element name (None: not a global element)
_BODIES: dict = {}       # Body class -> (field names in to_dict order, their slot offsets)


def root_name(msg) -> Optional[str]:
    """The root element name of a decoded message: the key exi.to_dict(msg) has."""
    if isinstance(msg, dict):               # a stand-in codec's dict form
        return next(iter(msg), None)
    cls = msg.__class__
    try:
        return _ROOTS[cls]
    except KeyError:
        pass
    from ..message import AnyElement, ElementValue
    if cls is ElementValue:
        return msg.name                     # per object: simple-typed roots share the class
    if cls is AnyElement:
        return msg.name[1]
    from .._schema import get_schema
    q = cls._element
    name = _ROOTS[cls] = get_schema(cls._schema_id).qnames[q][1] if q is not None else None
    return name


@cython.locals(i=cython.Py_ssize_t, fields=tuple, offsets=tuple)
def name_of(msg) -> Optional[str]:
    """message_name(exi.to_dict(msg)) without building the dict."""
    root = root_name(msg)
    if root == "V2G_Message":
        if isinstance(msg, dict):
            return message_name(msg)
        body = msg.Body
        if body is not None:
            plan = _BODIES.get(body.__class__)
            if plan is None:
                plan = _BODIES[body.__class__] = _body_plan(body.__class__)
            fields, offsets = plan          # to_dict's key order; one is set in a valid message
            if cython.compiled:             # read the slots directly, as the compiled engine does
                for i in range(len(fields)):
                    if get_slot(body, offsets[i]) is not None:
                        return fields[i]
            else:
                for f in fields:
                    if getattr(body, f) is not None:
                        return f
        return root
    if root is None and not isinstance(msg, dict):   # not a root element: ask its dict form
        return message_name(_load()[1](msg))
    return root


def _body_plan(cls) -> tuple:
    fields = tuple(cls._fields)
    return fields, tuple(slot_offset(getattr(cls, f)) for f in fields)


@cython.cclass
class Decoded:
    """One decode result: message name, message object, dict form on first use."""
    __slots__ = ("name", "message", "_content", "note")

    def __init__(self, name: Optional[str], message, content: Optional[dict] = None):
        self.name = name
        self.message = message
        self._content = content
        self.note = None

    @property
    def content(self) -> dict:
        c = self._content
        if c is None:
            c = self._content = _load()[1](self.message)
        return c

    @property
    def root(self) -> Optional[str]:
        return root_name(self.message)


@cython.cclass
class Decoder:
    """decode(payload, schema) -> Decoded, with the cache; `impl` replaces the codec by a
    function (payload, schema) -> dict form (the tests' stand-in)."""
    CACHE_LIMIT = 200_000

    def __init__(self, cache: bool = True, impl: Optional[Callable] = None):
        self.cache = {} if cache else None
        self.hits = 0
        self.calls = 0
        self._impl = impl
        self._dec = None            # exi.decode, once loaded

    def _decode(self, payload, schema) -> Decoded:
        if self._impl is not None:
            d = self._impl(payload, schema)
            return Decoded(message_name(d), d, d)
        if self._dec is None:
            self._dec = _load()[0]
        note = None
        try:
            msg = self._dec(payload, schema)
        except TrailingDataError as e:
            # zero bytes after the document: padding some encoders add; accepted, and said
            if bytes(payload).count(0, e.end) != len(payload) - e.end:
                raise
            msg = e.message
            note = f"{len(payload) - e.end} zero padding byte(s) after the EXI document (accepted)"
        res = Decoded.__new__(Decoded)      # compiled: no __init__ call
        res.name = name_of(msg)
        res.message = msg
        res._content = None
        res.note = note
        return res

    @cython.locals(res=object, hit=object)
    def decode(self, payload, schema) -> Decoded:
        """Raise ValueError (the codec's DecodeError) or CodecUnavailable."""
        self.calls += 1
        cache = self.cache
        if cache is not None:
            key = (schema, payload)
            hit = cache.get(key)
            if hit is not None:
                self.hits += 1
                if hit.__class__ is not Decoded:
                    raise hit
                return hit
        try:
            res = self._decode(payload, schema)
        except CodecUnavailable:
            raise
        except Exception as e:  # the codec's contract is DecodeError, but never let a codec bug stop a capture
            if not isinstance(e, ValueError):
                e = ValueError(f"codec raised {type(e).__name__}: {e}")
            res = e
        if cache is not None:
            if len(cache) >= self.CACHE_LIMIT:
                cache.clear()
            cache[key] = res
        if res.__class__ is not Decoded:
            raise res
        return res
