"""Loads a schema's generated tables and classes into the runtime objects of the engine."""
from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path
from typing import Optional

from . import _engine, _grammar
from ._kinds import DT_ENUM, DT_LIST, DT_STRING
from .registry import schema_info

_cache: dict = _engine.SCHEMAS     # one dict: the compiled decode/encode read it
# id(Datatype) -> whiteSpace facet ("replace", "collapse") of string types that have one:
# how XML text of such a type is normalised (exi._convert); EXI itself carries the value
WHITESPACE: dict = {}
_lock = threading.Lock()


class _Tables:
    """The generated JSON tables of one schema, as attributes."""

    def __init__(self, d: dict):
        self.QNAMES = tuple(tuple(q) for q in d["QNAMES"])
        self.DATATYPES = d["DATATYPES"]
        self.STATES = d["STATES"]
        self.GRAMMARS = d["GRAMMARS"]
        self.CLASSES = [(name, tuple(tuple(f) for f in fields)) for name, fields in d["CLASSES"]]
        self.ELEMENT_CLASSES = d["ELEMENT_CLASSES"]
        self.DOC_ELEMENTS = [tuple(x) for x in d["DOC_ELEMENTS"]]
        self.FRAGMENT_ELEMENTS = [tuple(x) for x in d["FRAGMENT_ELEMENTS"]]
        self.URIS = tuple(d["URIS"])
        self.LOCAL_NAMES = tuple(tuple(x) for x in d["LOCAL_NAMES"])


def _load_tables(schema_id: str) -> _Tables:
    path = Path(__file__).parent / "_tables" / f"{schema_id}.json"
    with open(path, "rb") as f:
        return _Tables(json.loads(f.read()))


class Schema:
    """A compiled grammar set: what exi.decode(data, schema) works with."""

    def __init__(self, schema_id: str):
        schema_info(schema_id)   # validates the id
        self.id = schema_id
        t = _load_tables(schema_id)
        m = importlib.import_module(f"exi.messages.{schema_id}")
        self.messages = m
        self.qnames = t.QNAMES
        self.datatypes = []
        for row in t.DATATYPES:
            if row[0] == DT_ENUM:
                row = tuple(row[:3]) + (tuple(row[3]),)
            enum_class = getattr(m, row[2]) if row[0] == DT_ENUM else None
            self.datatypes.append(_grammar.Datatype(row, enum_class))
        for dt, row in zip(self.datatypes, t.DATATYPES):
            if row[0] == DT_LIST:
                dt.item = self.datatypes[row[1]]
            elif row[0] == DT_STRING and len(row) > 3:
                WHITESPACE[id(dt)] = row[3]
        self.states = [_grammar.State(kind, prods) for kind, prods in t.STATES]
        self.classes = {}
        for name, fields in t.CLASSES:
            cls = getattr(m, name)
            cls._schema_id = schema_id
            cls._field_rows = fields
            cls._fields = tuple(f[0] for f in fields)
            self.classes[name] = cls
        self.grammars = []
        for first, empty, cname, dt in t.GRAMMARS:
            cls = self.classes[cname] if cname else None
            g = _grammar.Grammar(self.states[first], self.states[empty], cls,
                                self.datatypes[dt] if dt >= 0 else None)
            if cls is not None:
                g.bind_class(cls, cls._field_rows)
                _engine.adopt_message_class(cls)     # a leaner tp_dealloc that keeps spares
                cls._grammar = g
            self.grammars.append(g)
        _grammar.link(self.states, self.grammars, self.datatypes)
        # which states belong to which complex grammar: walk from each first state
        for g in self.grammars:
            if not g.simple:
                _grammar.bind_fields(_states_of(g), g)
        _grammar.freeze(self.states)
        for cname, row in t.CLASSES:
            cls = self.classes[cname]
            cls._field_grammars = tuple(self.grammars[f[4]] if f[1] == 1 else None for f in row)
        self.element_class_of = {}
        for name, base, q in t.ELEMENT_CLASSES:
            cls = getattr(m, name)
            cls._schema_id = schema_id
            cls._element = q
            self.element_class_of[q] = cls
        # an anonymous type named after its element is its own element class
        for q, gi in t.DOC_ELEMENTS + t.FRAGMENT_ELEMENTS:
            if gi < 0:
                continue
            g = self.grammars[gi]
            if q not in self.element_class_of and g.cls is not None and \
                    g.cls.__name__ == self.qnames[q][1] and getattr(g.cls, "_element", None) is None:
                g.cls._element = q
                self.element_class_of[q] = g.cls
        self.doc_elements = [(q, gi, self.element_class_of.get(q, self.grammars[gi].cls))
                             for q, gi in t.DOC_ELEMENTS]
        self.doc_index = {q: i for i, (q, _, _) in enumerate(self.doc_elements)}
        self.message_roots = _message_roots(schema_id, self.qnames, [q for q, _, _ in self.doc_elements])
        self.root = _grammar.Root(self, [q for q, _, _ in self.doc_elements],
                                 [self.grammars[g] for _, g, _ in self.doc_elements],
                                 [c for _, _, c in self.doc_elements], self.message_roots)
        self.fragment_elements = [(q, gi, self.element_class_of.get(q, self.grammars[gi].cls if gi >= 0 else None))
                                  for q, gi in t.FRAGMENT_ELEMENTS]
        self.fragment_index = {q: i for i, (q, _, _) in enumerate(self.fragment_elements)}
        self.qname_index = {qn: i for i, qn in enumerate(self.qnames)}
        self.uris = t.URIS
        self.local_names = t.LOCAL_NAMES

    def qname_index_of_root(self, data) -> int:
        """The qname of a document's root element (its first event code, after the header)."""
        from ._bits import BitReader
        r = BitReader(data)
        if len(data) >= 4 and bytes(data[:4]) == b"$EXI":
            r.pos = 32
        r.pos += 8
        return self.root.qnames[r.read(self.root.width)]

    def qname_local(self, q: int) -> str:
        return self.qnames[q][1]

    def qname_text(self, q: int) -> str:
        uri, local = self.qnames[q]
        return f"{{{uri}}}{local}" if uri else local

    def element_qname(self, local: str, uri: Optional[str] = None) -> int:
        for i, (u, l) in enumerate(self.qnames):
            if l == local and (uri is None or u == uri):
                return i
        raise KeyError(local)


def _message_roots(schema_id: str, qnames, roots) -> frozenset:
    """The global elements that are messages of a set: V2G_Message (DIN, ISO 15118-2),
    the Req/Res elements of the set's own namespace (ISO 15118-20, SupportedAppProtocol);
    every global element of the standalone xmldsig set (it has no messages)."""
    if schema_id == "xmldsig":
        return frozenset(roots)
    ns = schema_info(schema_id).namespace
    return frozenset(q for q in roots if qnames[q][0] == ns and
                     (qnames[q][1] == "V2G_Message" or qnames[q][1].endswith(("Req", "Res"))))


def _states_of(g) -> list:
    out, seen, todo = [], set(), [g.first, g.empty_first]
    while todo:
        s = todo.pop()
        if id(s) in seen:
            continue
        seen.add(id(s))
        out.append(s)
        todo.extend(p.next for p in s.prods if p.next is not None)
    return out


def get_schema(schema_id: str) -> Schema:
    s = _cache.get(schema_id)
    if s is None:
        with _lock:
            s = _cache.get(schema_id)
            if s is None:
                s = Schema(schema_id)
                _cache[schema_id] = s
    return s


_engine.register("_load_schema", get_schema)
