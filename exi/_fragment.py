"""The relaxed Element Fragment grammar (EXI 1.0 section 8.5.3), for fragment roots whose
qname is declared with more than one type — ISO 15118-2's eMAID is one: a string in most
messages, an Id-carrying complex type in CertificateInstallationRes/UpdateRes, and the
latter is what ISO 15118-2 signatures digest as a fragment.

    ElementFragment_0 : AT(A_0) .. AT(A_n-1) ElementFragment_0   (all attribute qnames, sorted)
                        AT(*) ElementFragment_0
                        SE(F_0) .. SE(F_m-1) ElementFragment_1  (all element qnames, sorted)
                        SE(*) ElementFragment_1
                        EE
                        CH [untyped] ElementFragment_1
    ElementFragment_1 : SE(F_0) .. SE(F_m-1) ElementFragment_1, SE(*), EE, CH [untyped]

plus the second-level productions of a first start tag / element content (treated as
nillable and type-castable, as EXIficient does).  This module handles the flat case that
signatures use — attributes and character content — and maps it onto the declared type
whose attributes fit; child elements in a relaxed fragment raise a DecodeError.
Not a hot path: plain Python on top of the engine's reader/writer.
"""
from __future__ import annotations

import sys

from . import _engine
from ._grammar import coding_length
from ._kinds import DT_STRING, F_ATTRIBUTE, F_VALUE
from .errors import DecodeError, EncodeError
from .message import ElementValue, Message

_FIRST_L2 = 6      # [xsi:type, xsi:nil, AT(*), AT(invalid), SE(*), CH]: EE is first-level


class RelaxedGrammar:
    def __init__(self, schema):
        self.schema = schema
        attrs = {}
        for cls in schema.classes.values():
            for (name, kind, is_list, q, ref) in cls._field_rows:
                if kind == F_ATTRIBUTE:
                    attrs.setdefault(schema.qnames[q], []).append(ref)
        self.attributes = []      # (qname tuple, Datatype) sorted by local name, then uri
        for qn in sorted(attrs, key=lambda t: (t[1], t[0])):
            refs = {tuple(_row(schema, r)) for r in attrs[qn]}
            dt = schema.datatypes[attrs[qn][0]] if len(refs) == 1 else _string(schema)
            self.attributes.append((qn, dt))
        self.attr_index = {qn: i for i, (qn, _) in enumerate(self.attributes)}
        self.m = len(schema.fragment_elements)
        n = len(self.attributes)
        # first start tag: n AT, AT(*), m SE, SE(*), EE, CH
        self.ee0 = n + 1 + self.m + 1
        self.ch0 = self.ee0 + 1
        self.width0 = coding_length(self.ch0 + 1 + 1)
        # element content: m SE, SE(*), EE, CH
        self.ee1 = self.m + 1
        self.width1 = coding_length(self.m + 3 + 1)


def _row(schema, ref):
    dt = schema.datatypes[ref]
    return (dt.kind, dt.min_len, dt.max_len, dt.nbits, str(dt.lo), str(dt.hi))


def _string(schema):
    for dt in schema.datatypes:
        if dt.kind == DT_STRING and dt.min_len < 0 and dt.max_len < 0:
            return dt
    raise ValueError("schema has no unrestricted string datatype")


def _grammar(schema) -> RelaxedGrammar:
    g = getattr(schema, "_relaxed", None)
    if g is None:
        g = schema._relaxed = RelaxedGrammar(schema)
    return g


def decode(decoder, qname: int):
    """Decode one relaxed element fragment whose SE was just read."""
    schema = decoder.schema
    g = _grammar(schema)
    r = decoder.r
    attrs = {}
    text = None
    n = len(g.attributes)
    while True:
        code = r.read(g.width0)
        if code < n:
            qn, dt = g.attributes[code]
            attrs[qn] = decoder.value(dt, qname)
            continue
        if code == g.ee0:
            break
        if code == g.ch0:
            text = decoder.string(qname)
            code = r.read(g.width1)
            if code != g.ee1:
                raise DecodeError("only attributes and character content are supported in a relaxed "
                                  "element fragment", "/" + schema.qname_local(qname), r.pos)
            break
        raise DecodeError(f"event code {code} of the element fragment grammar is not supported "
                          "(child elements, wildcards or second-level events)",
                          "/" + schema.qname_local(qname), r.pos)
    return _to_object(schema, qname, attrs, text)


def _to_object(schema, qname, attrs, text):
    name = schema.qnames[qname][1]
    if not attrs:
        return ElementValue(name, text or "", schema.id, qname)
    element_cls = schema.element_class_of.get(qname)
    candidates = ([element_cls] if element_cls is not None else []) + list(schema.classes.values())
    for cls in candidates:
        rows = cls._field_rows
        if not any(k == F_VALUE for (_, k, _, _, _) in rows):
            continue
        have = {schema.qnames[q]: f for (f, k, _, q, _) in rows if k == F_ATTRIBUTE}
        if not set(attrs) <= set(have) or (cls is not element_cls and not _declares(schema, cls, qname)):
            continue
        obj = cls.__new__(cls)
        for f in cls._fields:
            object.__setattr__(obj, f, None)
        for qn, v in attrs.items():
            object.__setattr__(obj, have[qn], v)
        object.__setattr__(obj, "value", text if text is not None else "")
        return obj
    raise DecodeError(f"no declared type of {name} has the attributes {sorted(a[1] for a in attrs)}")


def _declares(schema, cls, qname) -> bool:
    """True if some element field with this qname has the class as its type."""
    for other in schema.classes.values():
        for (f, k, _, q, ref), g in zip(other._field_rows, other._field_grammars):
            if q == qname and g is not None and g.cls is cls:
                return True
    return False


def encode(encoder, obj, qname: int) -> None:
    """Encode obj (a simple value's ElementValue, or an object with attributes and `value`)
    with the relaxed element fragment grammar."""
    schema = encoder.schema
    g = _grammar(schema)
    w = encoder.w
    if isinstance(obj, ElementValue):
        attrs, text = {}, obj.value
    elif isinstance(obj, Message):
        attrs, text = {}, None
        for (f, k, _, q, _) in type(obj)._field_rows:
            v = getattr(obj, f)
            if k == F_ATTRIBUTE and v is not None:
                attrs[schema.qnames[q]] = v
            elif k == F_VALUE:
                text = v
            elif v is not None:
                raise EncodeError(f"{f}: child elements are not supported in a relaxed element fragment")
    else:
        raise EncodeError(f"expected a message object, got {type(obj).__name__}")
    for qn in sorted(attrs, key=lambda t: (t[1], t[0])):
        i = g.attr_index.get(qn)
        if i is None:
            raise EncodeError(f"attribute {qn[1]} is not declared in the schema")
        w.write(i, g.width0)
        encoder.value(g.attributes[i][1], attrs[qn])
    if text is None or text == "" or text == b"":
        w.write(g.ee0, g.width0)
        return
    if not isinstance(text, str):
        text = str(getattr(text, "value", text))
    w.write(g.ch0, g.width0)
    encoder.value(_string(schema), text)      # CH [untyped]: a String value (EXI 7.1.10)
    w.write(g.ee1, g.width1)


_engine.register("_fragment", sys.modules[__name__])
