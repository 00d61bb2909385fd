"""Hypothesis strategies for message objects, derived from the generated schema tables.

A message is built by walking its grammar (exi/_tables/<id>.json: GRAMMARS, STATES) from the
first state to an EE production, choosing among the declared productions (attributes,
child elements, character content); every value is drawn within its datatype's facets.
A walk through the grammar is a valid event sequence, so the object respects the content
model (required elements, choices with one alternative, maxOccurs) by construction.  Where
the class keeps its children in document order (`content`: mixed content, repeated
choices), the walk's random choices are the document order: repeated groups come in
random orders with text between them, and the items are what exi/_content.py expects.
"""
from __future__ import annotations

import importlib
import json
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from hypothesis import strategies as st

import exi
from exi._convert import whitespace_normalized
from exi._schema import WHITESPACE
from exi._kinds import (DT_BASE64, DT_BOOL, DT_ENUM, DT_HEX, DT_INT, DT_NBIT, DT_STRING, DT_UINT, F_CONTENT,
                        P_AT, P_CH, P_CH_MIXED, P_EE, P_SE, P_SE_ANY, P_SE_ITEM, P_SE_NS)

MAX_DEPTH = 7        # below this, walks take the shortest way to EE
MAX_STEPS = 12       # productions per element before heading for EE
LIST_CAP = 3         # repeated elements per field (bounded maxOccurs are tested apart)
CONTENT_CAP = 7      # items of an ordered content list
WALKED = (P_AT, P_SE, P_CH, P_EE, P_SE_ANY, P_SE_NS, P_CH_MIXED, P_SE_ITEM)
WILDCARD = (P_SE_ANY, P_SE_NS, P_CH_MIXED)

XML_SPECIALS = "<>&\"' \t\n]]>"
# boundaries the integer codec must get right (EXI unsigned integers: 7-bit groups)
INT_EDGES = (0, 1, 127, 128, 16383, 16384, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**35, 2**49,
             2**56 - 1, 2**56, 2**63 - 1, 2**63, 2**64 - 1)


class Tables:
    """One schema's generated tables plus the runtime schema."""

    def __init__(self, sid: str):
        self.sid = sid
        path = Path(exi.__file__).parent / "_tables" / f"{sid}.json"
        self.t = SimpleNamespace(**json.loads(path.read_text(encoding="utf-8")))
        self.m = importlib.import_module(f"exi.messages.{sid}")
        self.schema = exi.schema(sid)
        self.dist = self._distances()

    def _distances(self):
        """Fewest productions from each state to an EE (child content not counted)."""
        states = self.t.STATES
        inf = float("inf")
        dist = [inf] * len(states)
        changed = True
        while changed:
            changed = False
            for i, (_, prods) in enumerate(states):
                best = dist[i]
                for p in prods:
                    if p[0] == P_EE:
                        d = 0
                    elif p[0] in WALKED and p[4] >= 0:
                        d = 1 + dist[p[4]]
                    else:
                        continue
                    if d < best:
                        best = d
                if best < dist[i]:
                    dist[i] = best
                    changed = True
        return dist

    def grammar_class(self, gi):
        cname = self.t.GRAMMARS[gi][2]
        return getattr(self.m, cname) if cname else None

    def max_occurs(self, gi: int, field: int):
        """Most SE(field) productions on a path through grammar gi (None: unbounded)."""
        states = self.t.STATES
        edges = {}
        todo, seen = [self.t.GRAMMARS[gi][0]], set()
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            edges[u] = [(1 if p[0] == P_SE and p[2] == field else 0, p[4]) for p in states[u][1]
                        if p[0] in WALKED and p[0] != P_EE and p[4] >= 0]
            todo += [v for _, v in edges[u]]

        def reachable(a, b):
            stack, seen2 = [a], set()
            while stack:
                x = stack.pop()
                if x == b:
                    return True
                if x not in seen2:
                    seen2.add(x)
                    stack += [v for _, v in edges[x]]
            return False
        if any(w and reachable(v, u) for u in edges for w, v in edges[u]):
            return None
        best = dict.fromkeys(edges, 0)
        changed = True
        while changed:
            changed = False
            for u in edges:
                for w, v in edges[u]:
                    if w + best[v] > best[u]:
                        best[u] = w + best[v]
                        changed = True
        return best[self.t.GRAMMARS[gi][0]]


@lru_cache(maxsize=None)
def tables(sid: str) -> Tables:
    return Tables(sid)


def text_strategy(min_size, max_size, xml_safe):
    if xml_safe:
        chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | \
            st.sampled_from(XML_SPECIALS)
    else:
        chars = st.characters(blacklist_categories=("Cs",))
    chars = chars | st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF,
                                  blacklist_categories=("Cs",))
    return st.text(chars, min_size=min_size, max_size=max_size)


def value_strategy(dt, xml_safe=True):
    k = dt.kind
    if k == DT_BOOL:
        return st.booleans()
    if k == DT_NBIT:
        return st.integers(dt.lo, dt.hi)
    if k == DT_ENUM:
        return st.sampled_from(dt.members)
    if k in (DT_UINT, DT_INT):
        lo = dt.lo if dt.lo is not None else (0 if k == DT_UINT else -2**64)
        hi = dt.hi if dt.hi is not None else 2**64
        edges = sorted({x for e in INT_EDGES for x in (e, -e, -e - 1) if lo <= x <= hi} | {lo, hi})
        return st.integers(lo, hi) | st.sampled_from(edges)
    if k in (DT_STRING, DT_HEX, DT_BASE64):
        lo = max(dt.min_len, 0)
        hi = dt.max_len if dt.max_len >= 0 else None
        small_hi = min(hi, lo + 40) if hi is not None else lo + 40
        if k == DT_STRING:
            s = text_strategy(lo, small_hi, xml_safe)
            if hi is not None and hi <= 400:
                s = s | text_strategy(hi, hi, xml_safe)
            facet = WHITESPACE.get(id(dt))
            if facet:       # anyURI, ID, token...: values are whiteSpace-normalised strings
                s = s.map(lambda v: whitespace_normalized(v, facet)).filter(lambda v: len(v) >= lo)
        else:
            s = st.binary(min_size=lo, max_size=small_hi)
            if hi is not None and hi <= 4000:
                s = s | st.binary(min_size=hi, max_size=hi)
        return s
    raise NotImplementedError(f"datatype kind {k}")


def walk(data, tb: Tables, gi: int, depth: int = 0, cls=None, xml_safe=True):
    """Draw the content of grammar gi: a value (simple type) or a message object."""
    first, _, _, dti = tb.t.GRAMMARS[gi]
    if dti >= 0:
        return data.draw(value_strategy(tb.schema.datatypes[dti], xml_safe))
    cls = cls or tb.grammar_class(gi)
    rows = cls._field_rows
    vals = {}
    s = first
    steps = 0
    while True:
        prods = [p for p in tb.t.STATES[s][1] if p[0] in WALKED]
        usable = []
        for p in prods:
            if p[0] == P_SE_ITEM or (p[0] in WILDCARD and rows[p[2]][1] == F_CONTENT):
                items = vals.get(rows[p[2]][0], [])
                if len(items) >= CONTENT_CAP or (p[0] == P_CH_MIXED and items and isinstance(items[-1], str)):
                    continue
            elif p[0] in (P_AT, P_SE, P_CH):
                f = p[2]
                if rows[f][2]:
                    if len(vals.get(rows[f][0], ())) >= LIST_CAP:
                        continue
                elif rows[f][0] in vals:
                    continue
            elif p[0] in WILDCARD:
                items = vals.get(rows[p[2]][0], [])
                if len(items) >= LIST_CAP or (p[0] == P_CH_MIXED and items and isinstance(items[-1], str)):
                    continue    # no two texts in a row: XML would merge them
            usable.append(p)
        usable = usable or prods
        if not usable:
            raise AssertionError(f"{cls.__name__}: no production to continue with")
        if depth >= MAX_DEPTH or steps >= MAX_STEPS:
            p = min(usable, key=lambda p: 0 if p[0] == P_EE else 1 + tb.dist[p[4]])
        else:
            p = data.draw(st.sampled_from(usable))
        if p[0] == P_EE:
            break
        name, _, is_list = rows[p[2]][:3]
        if p[0] == P_SE_ITEM:
            vals.setdefault(name, []).append(content_item(data, tb, p, depth, xml_safe))
            s = p[4]
            steps += 1
            continue
        if p[0] in WILDCARD:
            # wildcard content: an undeclared element with text, or mixed text (not
            # whitespace only: XML readers take that for formatting)
            text = data.draw(text_strategy(1, 12, xml_safe).filter(str.strip))
            if p[0] == P_CH_MIXED:
                v = text
            else:
                uri = p[1] if p[0] == P_SE_NS else "urn:example:extension"
                v = exi.AnyElement((uri, data.draw(st.sampled_from(["Ext", "Note", "Data"]))),
                                   content=[text])
            vals.setdefault(name, []).append(v)
            s = p[4]
            steps += 1
            continue
        if p[0] == P_SE:
            v = walk(data, tb, p[3], depth + 1, xml_safe=xml_safe)
        else:
            v = data.draw(value_strategy(tb.schema.datatypes[p[3]], xml_safe))
        if is_list:
            vals.setdefault(name, []).append(v)
        else:
            vals[name] = v
        s = p[4]
        steps += 1
    return cls(**vals)


def content_item(data, tb: Tables, p, depth, xml_safe):
    """A declared child of ordered content: an object of its element class, or an
    exi.ElementValue (simple type, or an element without a class of its own)."""
    q, gi = p[1], p[3]
    s = tb.schema
    local = s.qnames[q][1]
    tcls = tb.grammar_class(gi)
    if tcls is None:
        return exi.ElementValue(local, walk(data, tb, gi, depth + 1, xml_safe=xml_safe), s.id, q)
    ecls = s.element_class_of.get(q)
    if ecls is not None and issubclass(ecls, tcls):
        return walk(data, tb, gi, depth + 1, cls=ecls, xml_safe=xml_safe)
    return exi.ElementValue(local, walk(data, tb, gi, depth + 1, xml_safe=xml_safe), s.id, q)


def field_grammar(cls, name):
    for row in cls._field_rows:
        if row[0] == name:
            return row[4]
    raise KeyError(name)


def message_targets():
    """(schema id, message name) for every message type of every schema."""
    from exi.registry import SCHEMAS
    out = []
    for sid in ("sap", "din", "iso2", "iso20_cm", "iso20_ac", "iso20_dc", "iso20_wpt", "iso20_acdp",
                "xmldsig"):
        s = exi.schema(sid)
        if sid in ("din", "iso2"):
            body = tables(sid).grammar_class(field_grammar(_v2g_message(sid), "Body"))
            out += [(sid, r[0]) for r in body._field_rows if r[0].endswith(("Req", "Res"))]
        elif sid == "xmldsig":
            out += [(sid, s.qnames[q][1]) for q, _, cls in s.doc_elements if cls is not None]
        else:
            ns = SCHEMAS[sid].namespace
            out += [(sid, s.qnames[q][1]) for q, _, cls in s.doc_elements
                    if s.qnames[q][0] == ns and s.qnames[q][1].endswith(("Req", "Res"))]
    return out


def _v2g_message(sid):
    return tables(sid).m.V2G_Message


@st.composite
def messages(draw, sid: str, name: str, xml_safe: bool = True):
    """A complete document (root element object) carrying message `name`."""
    tb = tables(sid)
    data = _Draw(draw)
    if sid in ("din", "iso2"):
        root = _v2g_message(sid)
        body_cls = tb.grammar_class(field_grammar(root, "Body"))
        header = walk(data, tb, field_grammar(root, "Header"), 1, xml_safe=xml_safe)
        content = walk(data, tb, field_grammar(body_cls, name), 2, xml_safe=xml_safe)
        return root(Header=header, Body=body_cls(**{name: content}))
    s = tb.schema
    for q, gi, cls in s.doc_elements:
        if s.qnames[q][1] == name:
            return walk(data, tb, gi, 0, cls=cls, xml_safe=xml_safe)
    raise KeyError(name)


class _Draw:
    def __init__(self, draw):
        self.draw = draw
