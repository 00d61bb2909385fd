"""The public codec functions (re-exported by exi/__init__.py)."""
from __future__ import annotations

from typing import Union

from . import _content, _engine, _fragment, _generic  # noqa: F401  (they register with the engine)
from ._bits import EndOfStream
from ._convert import from_dict, from_xml, to_dict, to_xml  # noqa: F401  (re-exported)
from ._schema import Schema, _cache, get_schema
from .errors import DecodeError, EncodeError
from .message import AnyElement, ElementValue, Message

BytesLike = Union[bytes, bytearray, memoryview]


def schema(schema_id: str) -> Schema:
    """The compiled schema for an id (sap, din, iso2, iso20_cm, ..., xmldsig)."""
    return get_schema(schema_id)


decode = _engine.decode      # decode(data, schema) -> Message (compiled with the engine)
encode = _engine.encode      # encode(message, *, validate=True) -> bytes


def encode_other(message, validate: bool) -> bytes:
    """encode() of what is not a global element's message object: a simple-typed root
    (ElementValue), or the error saying why it cannot be encoded."""
    if isinstance(message, ElementValue):
        s = get_schema(message._schema_id)
        q = message._qname if message._qname >= 0 else _fragment_qname(s, message.name)
        return _engine.encode_document(s, message.value, q, validate)
    s, q = _root(message)
    return _engine.encode_document(s, message, q, validate)


def decode_fragment(data: BytesLike, schema: str) -> list:
    """Decode an EXI fragment (EXI 8.5.2): the list of its top-level elements."""
    d = _engine.Decoder(get_schema(schema), data)
    try:
        d.header()
        return d.fragment()
    except EndOfStream:
        raise DecodeError("unexpected end of the stream", "", d.r.pos) from None


def encode_fragment(*elements: Message, schema: str = None, name: str = None,
                    validate: bool = True) -> bytes:
    """Encode one or more elements as an EXI fragment (what ISO 15118 signatures digest).

    `name` gives the element name when the object's class is a type rather than an element
    class (for example an iso2 AuthorizationReqType sent as the AuthorizationReq element)."""
    if not elements:
        raise EncodeError("encode_fragment needs at least one element")
    sid = schema or getattr(elements[0], "_schema_id", "")
    if not sid:
        raise EncodeError("say which schema the fragment belongs to: encode_fragment(..., schema=ID)")
    s = get_schema(sid)
    items = []
    for el in elements:
        if not isinstance(el, Message):
            raise EncodeError(f"expected a message object, got {type(el).__name__}")
        if isinstance(el, ElementValue):
            items.append((el.value, el._qname if el._qname >= 0 else _fragment_qname(s, el.name)))
            continue
        if isinstance(el, AnyElement):
            items.append((el, None))
            continue
        if name is not None:
            q = _fragment_qname(s, name)
        elif el._element is not None:
            q = el._element
        else:
            raise EncodeError(f"{type(el).__name__} is a type; pass name= to say which element it is")
        items.append((el, q))
    e = _engine.Encoder(s, validate)
    e.header()
    e.fragment(items)
    return e.getvalue()


def _fragment_qname(s: Schema, name: str) -> int:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        q = s.qname_index.get((uri, local))
        if q is not None and q in s.fragment_index:
            return q
    else:
        for q, _, _ in s.fragment_elements:
            if s.qnames[q][1] == name:
                return q
    raise EncodeError(f"{name} is not an element of schema {s.id!r}")


def _root(message) -> tuple:
    if not isinstance(message, Message):
        raise EncodeError(f"expected a message object, got {type(message).__name__}")
    s = _cache.get(message._schema_id) or get_schema(message._schema_id)
    q = type(message)._element
    if q is None:
        raise EncodeError(f"{type(message).__name__} is a type, not a document root element; "
                          "use the element class (for example din.V2G_Message)")
    return s, q


_engine.register("_encode_other", encode_other)
