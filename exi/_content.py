"""Ordered content: the children of a type whose document order carries information.

codegen/order.py finds these content models in the XSDs (mixed content, repeated choices
such as xmldsig's KeyInfo); their class has one list field, `content`, instead of a field
per child, and their grammar's SE productions are P_SE_ITEM.  An item is

- `str`: character data (mixed content);
- an object of the child element's class (xmldsig.KeyValue, xmldsig.X509Data, ...), or
  `exi.ElementValue(name, value)` for a simple-typed child (KeyName, X509SKI, ...) or a
  child whose element has no class of its own;
- `exi.AnyElement`, or an object of a global element's class: wildcard content.

Items are written in list order, each through the production of the current state that
accepts it (a declared SE(qname) before SE(uri:*) before SE(*), as EXI 8.5.4.1.6 orders
them), so the bytes, the XML and the dict form keep the document's order.  Not a hot path:
no message of the V2G body has such a type; only the xmldsig part does.
"""
from __future__ import annotations

import sys

from . import _engine
from ._kinds import P_CH_MIXED, P_SE_ANY, P_SE_ITEM, P_SE_NS
from .errors import EncodeError
from .message import AnyElement, ElementValue, Message


def item_class(schema, p):
    """The class a declared child of ordered content decodes to (None: ElementValue)."""
    cache = schema.__dict__.setdefault("_item_classes", {})
    key = (p.qname, id(p.child))
    if key not in cache:
        cls = schema.element_class_of.get(p.qname)
        child_cls = p.child.cls
        cache[key] = cls if (child_cls is not None and cls is not None and issubclass(cls, child_cls)) else None
    return cache[key]


def decode_item(dec, p):
    """A declared child of ordered content, whose SE(qname) was just read."""
    schema = dec.schema
    cls = item_class(schema, p)
    v = dec.element(p.child, cls if cls is not None else p.child.cls, p.qname)
    if cls is None:
        return ElementValue(schema.qnames[p.qname][1], v, schema.id, p.qname)
    return v


def children(schema, cls) -> dict:
    """{(uri, local): (qname index, child Grammar, item class or None)} of a class with
    ordered content: its declared children, from its grammar's P_SE_ITEM productions."""
    out = cls.__dict__.get("_content_children_")
    if out is None:
        out = {}
        seen, todo = set(), [cls._grammar.first]
        while todo:
            st = todo.pop()
            if id(st) in seen:
                continue
            seen.add(id(st))
            for p in st.prods:
                if p.kind == P_SE_ITEM:
                    out.setdefault(schema.qnames[p.qname], (p.qname, p.child, item_class(schema, p)))
                if p.next is not None:
                    todo.append(p.next)
        cls._content_children_ = out
    return out


def item_name(schema, item):
    """(uri, local) of an element item; None for text."""
    if isinstance(item, str):
        return None
    if isinstance(item, AnyElement):
        return tuple(item.name)
    if isinstance(item, ElementValue):
        if item._qname >= 0 and item._schema == schema.id:
            return schema.qnames[item._qname]
        return ("?", item.name)         # resolved by local name against the state
    if isinstance(item, Message):
        q = type(item)._element
        if q is None:
            raise EncodeError(f"{type(item).__name__} is a type, not an element: use its element "
                              "class or exi.ElementValue(name, object) in `content`")
        if item._schema_id != schema.id:
            raise EncodeError(f"a {type(item).__name__} of schema {item._schema_id!r} "
                              f"in a message of schema {schema.id!r}")
        return schema.qnames[q]
    raise EncodeError(f"content items are element objects, exi.ElementValue, exi.AnyElement "
                      f"or str, not {type(item).__name__}")


def _production(schema, st, item, name):
    """Event code of the production of st that takes this item, or -1."""
    if name is None:
        for i, p in enumerate(st.prods):
            if p.kind == P_CH_MIXED:
                return i
        return -1
    if not isinstance(item, AnyElement):
        for i, p in enumerate(st.prods):
            if p.kind == P_SE_ITEM:
                qn = schema.qnames[p.qname]
                if qn == name or (name[0] == "?" and qn[1] == name[1]):
                    return i
    if name[0] == "?":
        return -1
    for i, p in enumerate(st.prods):
        if p.kind == P_SE_NS and p.qname == name[0]:
            return i
    for i, p in enumerate(st.prods):
        if p.kind == P_SE_ANY:
            return i
    return -1


def encode_items(enc, g, st, items, qname):
    """Write the `content` list of an element from state st; the state after it."""
    from . import _generic
    schema = enc.schema
    if not isinstance(items, (list, tuple)):
        raise EncodeError("content must be a list")
    for item in items:
        name = item_name(schema, item)
        code = _production(schema, st, item, name)
        if code < 0:
            what = "text" if name is None else name[1]
            raise EncodeError(f"{what} is not allowed here in content; expected "
                              f"{enc.expected(st, g.names)}")
        p = st.prods[code]
        if p.kind == P_SE_ITEM:
            st = enc.child(st, code, item.value if isinstance(item, ElementValue) else item)
            continue
        enc.w.write(code, st.width)
        if p.kind == P_CH_MIXED:
            _generic._write_string(enc, item)
        else:
            _generic.write_qname(enc, name)
            _generic.encode_wildcard_element(enc, item, name)
        st = p.next
    return st


_engine.register("_content", sys.modules[__name__])
