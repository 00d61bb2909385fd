"""Schema-less content: SE(*) with qnames from the string table, built-in element grammars
with their learning (EXI 1.0 section 8.4.3), xsi:type switching to the complex ur-type
grammar (anyType, 8.5.4.1.3), untyped attribute and character values.

It is reached from fragments whose root is not declared in the schema, which is how some
signature tooling writes its digest input (an unqualified element with xsi:type anyType).
Decoded elements become `exi.AnyElement`s and re-encode to the same bytes.  Not a hot
path: plain Python over the engine's reader and writer.
"""
from __future__ import annotations

import sys

from . import _engine
from ._engine import _shown
from ._grammar import coding_length
from .errors import DecodeError, EncodeError
from .message import AnyElement, ElementValue

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = (XSI, "type")
ANY_TYPE = (XSD, "anyType")

# built-in grammars, second level without prefixes, self-contained, DTD, comments, PIs:
# StartTagContent [EE, AT(*), SE(*), CH]; ElementContent [SE(*), CH] (EXIficient's order)
_START_L2 = ("EE", "AT", "SE", "CH")
_CONTENT_L2 = ("SE", "CH")


class _Learned:
    """The productions a built-in grammar has learned (EXI 8.4.3): a new one takes event
    code 0 and moves every other code up by one.  They are kept in the order learned, each
    with its place, so finding a production by code or a code by production takes the same
    time however many the grammar has learned (a list searched and shifted at every event
    made a document with many distinct names cost its square: a peer's 64 KiB took seconds)."""

    __slots__ = ("items", "place")

    def __init__(self, learned=()):
        self.items = []         # oldest first: code c is items[len - 1 - c]
        self.place = {}         # production -> its index in items
        for prod in learned:
            self.learn(prod)

    def __len__(self):
        return len(self.items)

    def at(self, code):
        return self.items[len(self.items) - 1 - code]

    def code(self, prod):
        """The event code of a production, -1 when not learned."""
        i = self.place.get(prod)
        return -1 if i is None else len(self.items) - 1 - i

    def learn(self, prod) -> None:
        """A production the grammar has already is not learned twice (an xsi:type written
        again through the second level)."""
        if prod not in self.place:
            self.place[prod] = len(self.items)
            self.items.append(prod)

    def copy(self):
        c = _Learned.__new__(_Learned)
        c.items, c.place = list(self.items), dict(self.place)
        return c


def _new_builtin():
    # StartTagContent starts empty, ElementContent with EE (8.4.3)
    return [_Learned(), _Learned([("EE", None)])]


class _Tables:
    """The stream's qname partitions (EXI 7.3.2), pre-populated from the schema, with each
    name's index for the encoder."""

    def __init__(self, schema):
        self.uris = list(schema.uris)
        self.locals = [list(x) for x in schema.local_names]
        self.builtin = {}          # qname -> [start productions, content productions] (_Learned)
        self.index()

    def index(self):
        self.uri_index = {u: i for i, u in enumerate(self.uris)}
        self.local_index = [{n: i for i, n in enumerate(part)} for part in self.locals]


def _state(coder) -> _Tables:
    """The qname tables and learned built-in grammars of this stream (kept on the coder)."""
    t = coder.generic
    if t is None:
        t = coder.generic = _Tables(coder.schema)
    return t


def snapshot(coder):
    """The stream's qname tables and learned grammars, to restore() after a rewind."""
    t = coder.generic
    if t is None:
        return None
    return (list(t.uris), [list(x) for x in t.locals],
            {k: [a.copy(), b.copy()] for k, (a, b) in t.builtin.items()})


def restore(coder, snap) -> None:
    if snap is None:
        coder.generic = None
        return
    t = _state(coder)
    t.uris, t.locals, t.builtin = snap[0], snap[1], snap[2]
    t.index()


def _value_key(schema, qn):
    """String-table partitions are per qname: schema qnames use their index, as the engine does."""
    i = schema.qname_index.get(qn)
    return i if i is not None else qn


# --- decoding -------------------------------------------------------------------------


def _read_literal(r, n):
    if n * 8 > r.remaining():
        raise DecodeError(f"string length {_shown(n)} exceeds the remaining input", "", r.pos)
    return "".join(chr(_code_point(r)) for _ in range(n))


def _code_point(r):
    c = r.read_uint()
    if c > 0x10FFFF or 0xD800 <= c <= 0xDFFF:
        raise DecodeError(f"invalid character code point {_shown(c)}", "", r.pos)
    return c


def read_qname(dec) -> tuple:
    t = _state(dec)
    r = dec.r
    u = r.read(coding_length(len(t.uris) + 1))
    if u == 0:
        uri = _read_literal(r, r.read_uint())
        t.uris.append(uri)
        t.locals.append([])
        ui = len(t.uris) - 1
    else:
        ui = u - 1
        if ui >= len(t.uris):
            raise DecodeError(f"URI index {ui} out of range", "", r.pos)
        uri = t.uris[ui]
    n = r.read_uint()
    part = t.locals[ui]
    if n == 0:
        i = r.read(coding_length(len(part)))
        if i >= len(part):
            raise DecodeError(f"local-name index {i} out of range", "", r.pos)
        local = part[i]
    else:
        local = _read_literal(r, n - 1)
        part.append(local)
    return uri, local


def decode_any(dec, name=None):
    """An element reached through SE(*): its qname, then its content."""
    if name is None:
        name = read_qname(dec)
    dec.depth += 1
    if dec.depth > 200:
        dec.depth -= 1      # the handlers above read the depth (Decoder.inner_path)
        raise DecodeError("elements nested too deeply", "", dec.r.pos)
    try:
        schema = dec.schema
        q = schema.qname_index.get(name)
        if q is not None and q in schema.root.index:    # a global element: its own grammar
            i = schema.root.index[q]
            v = dec.element(schema.root.grammars[i], schema.root.classes[i], q)
            if schema.root.grammars[i].simple:       # a simple-typed one keeps its name
                v = ElementValue(name[1], v, schema.id, q)
            return v
        return _builtin(dec, name)
    except DecodeError as e:
        e.path = f"/{name[1]}" + e.path
        e.args = (f"{e.path}: {e.reason}" + (f" at bit {e.bit_offset}" if e.bit_offset >= 0 else ""),)
        raise
    finally:
        dec.depth -= 1


def _grammar(t: _Tables, name):
    g = t.builtin.get(name)
    if g is None:
        g = t.builtin[name] = _new_builtin()
    return g


def _builtin(dec, name):
    t = _state(dec)
    r = dec.r
    start, content = _grammar(t, name)
    el = AnyElement(name)
    while True:                                   # StartTagContent
        code = r.read(coding_length(len(start) + 1))
        if code < len(start):
            ev, q = start.at(code)
        else:
            k = r.read(2)
            ev, q = _START_L2[k], None
            if ev == "EE":
                start.learn(("EE", None))
            elif ev == "AT":
                q = read_qname(dec)
                start.learn(("AT", q))      # xsi:type too (what EXIficient does)
            elif ev == "SE":
                q = read_qname(dec)
                start.learn(("SE", q))
            else:
                start.learn(("CH", None))
        if ev == "EE":
            return el
        if ev == "AT":
            if q == XSI_TYPE:
                el.type = read_qname(dec)
                if el.type != ANY_TYPE:
                    raise DecodeError(f"xsi:type {el.type[1]} on an undeclared element is not supported",
                                      "", r.pos)
                return _ur_type(dec, el)
            el.attributes.append((q, dec.string(_value_key(dec.schema, q))))
            continue
        if ev == "SE":
            el.content.append(decode_any(dec, q))
        else:
            el.content.append(dec.string(_value_key(dec.schema, name)))
        break
    while True:                                   # ElementContent
        code = r.read(coding_length(len(content) + 1))
        if code < len(content):
            ev, q = content.at(code)
        else:
            k = r.read(1)
            ev = _CONTENT_L2[k]
            q = read_qname(dec) if ev == "SE" else None
            content.learn((ev, q))
        if ev == "EE":
            return el
        if ev == "SE":
            el.content.append(decode_any(dec, q))
        else:
            el.content.append(dec.string(_value_key(dec.schema, name)))


# the complex ur-type grammar as EXIficient builds it: FirstStartTag [AT(*), SE(*), EE, CH],
# content [SE(*), EE, CH]; both have EE at the first level
_UR_FIRST = ("AT", "SE", "EE", "CH")
_UR_CONTENT = ("SE", "EE", "CH")


def _ur_type(dec, el):
    r = dec.r
    events = _UR_FIRST
    while True:
        code = r.read(coding_length(len(events) + 1))
        if code >= len(events):
            raise DecodeError("second-level events in anyType content are not supported", "", r.pos)
        ev = events[code]
        if ev == "EE":
            return el
        if ev == "AT":
            q = read_qname(dec)
            el.attributes.append((q, dec.string(_value_key(dec.schema, q))))
            continue
        if ev == "SE":
            el.content.append(decode_any(dec))
        else:
            el.content.append(dec.string(_value_key(dec.schema, el.name)))
        events = _UR_CONTENT


# --- encoding -------------------------------------------------------------------------


def _write_literal(w, s):
    w.write_uint(len(s))
    for ch in s:
        w.write_uint(ord(ch))


def write_qname(enc, qn) -> None:
    t = _state(enc)
    w = enc.w
    uri, local = qn
    width = coding_length(len(t.uris) + 1)
    ui = t.uri_index.get(uri)
    if ui is not None:
        w.write(ui + 1, width)
    else:
        w.write(0, width)
        _write_literal(w, uri)
        ui = t.uri_index[uri] = len(t.uris)
        t.uris.append(uri)
        t.locals.append([])
        t.local_index.append({})
    part, index = t.locals[ui], t.local_index[ui]
    li = index.get(local)
    if li is not None:
        w.write_uint(0)
        w.write(li, coding_length(len(part)))
    else:
        w.write_uint(len(local) + 1)
        for ch in local:
            w.write_uint(ord(ch))
        index[local] = len(part)
        part.append(local)


def _write_string(enc, value):
    if not isinstance(value, str):
        raise EncodeError(f"expected a string, got {type(value).__name__}")
    enc.w.write_uint(len(value) + 2)     # a literal, like every string this encoder writes
    for ch in value:
        enc.w.write_uint(ord(ch))


def encode_any(enc, el) -> None:
    """Write the content of an element reached through SE(*) (its qname already written)."""
    from .message import Message
    if not isinstance(el, AnyElement):
        raise EncodeError(f"expected an AnyElement, got {type(el).__name__}")
    enc.depth += 1
    if enc.depth > 200:
        enc.depth -= 1      # the handlers above read the depth (Encoder.inner_path)
        raise EncodeError("elements nested too deeply (a cycle?)")
    try:
        t = _state(enc)
        w = enc.w
        start, content = _grammar(t, el.name)

        def start_event(ev, q=None):
            # xsi:type is always written through AT(*) (EXIficient), even once learned
            code = start.code((ev, q)) if q != XSI_TYPE else -1
            if code >= 0:
                w.write(code, coding_length(len(start) + 1))
                return
            w.write(len(start), coding_length(len(start) + 1))
            w.write(_START_L2.index(ev), 2)
            if ev in ("AT", "SE"):
                write_qname(enc, q)
            start.learn((ev, q))

        if el.type is not None:
            if tuple(el.type) != ANY_TYPE:
                raise EncodeError("only xsi:type anyType is supported on an undeclared element")
            start_event("AT", XSI_TYPE)
            write_qname(enc, ANY_TYPE)
            return _encode_ur(enc, el)
        for q, v in el.attributes:
            start_event("AT", tuple(q))
            _write_string(enc, v)
        items = list(el.content)
        if not items:
            start_event("EE")
            return
        first = items.pop(0)
        if isinstance(first, str):
            start_event("CH")
            _write_string(enc, first)
        else:
            start_event("SE", tuple(_item_name(enc, first)))
            encode_wildcard_element(enc, first, _item_name(enc, first))
        for item in items + [None]:
            if item is None:
                ev, q = "EE", None
            elif isinstance(item, str):
                ev, q = "CH", None
            else:
                ev, q = "SE", tuple(_item_name(enc, item))
            code = content.code((ev, q))
            if code >= 0:
                w.write(code, coding_length(len(content) + 1))
            else:
                w.write(len(content), coding_length(len(content) + 1))
                w.write(_CONTENT_L2.index(ev), 1)
                if ev == "SE":
                    write_qname(enc, q)
                content.learn((ev, q))
            if ev == "CH":
                _write_string(enc, item)
            elif ev == "SE":
                encode_wildcard_element(enc, item, _item_name(enc, item))
    finally:
        enc.depth -= 1


def _encode_ur(enc, el) -> None:
    w = enc.w
    events = _UR_FIRST
    for q, v in el.attributes:
        w.write(events.index("AT"), coding_length(len(events) + 1))
        write_qname(enc, tuple(q))
        _write_string(enc, v)
    for item in el.content:
        if isinstance(item, str):
            w.write(events.index("CH"), coding_length(len(events) + 1))
            _write_string(enc, item)
        else:
            w.write(events.index("SE"), coding_length(len(events) + 1))
            write_qname(enc, tuple(_item_name(enc, item)))
            encode_wildcard_element(enc, item, _item_name(enc, item))
        events = _UR_CONTENT
    w.write(events.index("EE"), coding_length(len(events) + 1))


def encode_wildcard_items(enc, st, items, qname):
    """The `any` field of a schema-informed element: each item through the state's SE(*)
    (or SE(uri:*)) production, or its mixed-content CH; returns the state after them."""
    from ._kinds import P_CH_MIXED, P_SE_ANY, P_SE_NS
    from .message import Message
    w = enc.w
    for item in items:
        code = -1
        if isinstance(item, str):
            kinds = (P_CH_MIXED,)
        elif isinstance(item, (AnyElement, Message)):
            kinds = (P_SE_NS, P_SE_ANY)
        else:
            raise EncodeError(f"wildcard content must be elements or strings, got {type(item).__name__}")
        for kind in kinds:
            for i, p in enumerate(st.prods):
                if p.kind == kind and (kind != P_SE_NS or p.qname == _item_name(enc, item)[0]):
                    code = i
                    break
            if code >= 0:
                break
        if code < 0:
            raise EncodeError("wildcard content is not allowed here")
        p = st.prods[code]
        w.write(code, st.width)
        if isinstance(item, str):
            _write_string(enc, item)
        else:
            name = _item_name(enc, item)
            write_qname(enc, name)
            encode_wildcard_element(enc, item, name)
        st = p.next
    return st


def encode_wildcard_element(enc, item, name) -> None:
    """The content of a wildcard element whose qname was just written: an AnyElement, or
    a global element of the schema (its object, or an ElementValue of a simple one)."""
    if isinstance(item, AnyElement):
        encode_any(enc, item)
        return
    schema = enc.schema
    q = schema.qname_index.get(name)
    i = schema.root.index.get(q, -1) if q is not None else -1
    if i < 0:
        raise EncodeError(f"{name[1]} is not a global element: use exi.AnyElement")
    enc.element(schema.root.grammars[i], item.value if isinstance(item, ElementValue) else item, q)


def _item_name(enc, item):
    from .message import Message
    if isinstance(item, AnyElement):
        return item.name
    if isinstance(item, ElementValue):
        if item._qname >= 0:
            return enc.schema.qnames[item._qname]
        for q in enc.schema.root.qnames:
            if enc.schema.qnames[q][1] == item.name:
                return enc.schema.qnames[q]
        raise EncodeError(f"{item.name} is not a global element: use exi.AnyElement")
    if not isinstance(item, Message):
        raise EncodeError(f"element content must be elements or strings, got {type(item).__name__}")
    q = type(item)._element
    if q is None:
        raise EncodeError(f"{type(item).__name__} is a type, not an element")
    return enc.schema.qnames[q]


_engine.register("_generic", sys.modules[__name__])
