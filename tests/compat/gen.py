"""Seeded random message objects for the compat tests: a walk over a schema's grammar.

A message is built by walking its grammar (the runtime ``exi.schema(id)`` states) from the
first state to an EE production, choosing among the declared productions (attributes,
child elements, character content) and drawing every value within its datatype's facets.
A walk is a valid event sequence, so required elements, choices and maxOccurs hold by
construction; callers still keep only objects ``exi.encode`` accepts. Wildcards and
abstract-typed elements (which need xsi:type, unsupported by the Java peer's JAXB layer
and by no caller) are never chosen.
"""
from __future__ import annotations

import pathlib
import re

import exi
from exi._kinds import (DT_BASE64, DT_BOOL, DT_ENUM, DT_HEX, DT_INT, DT_NBIT, DT_STRING, DT_UINT,
                        DT_DECIMAL, DT_FLOAT, DT_LIST, P_AT, P_CH, P_EE, P_SE)

WALKED = (P_AT, P_SE, P_CH, P_EE)
_SCHEMAS = pathlib.Path(exi.__file__).resolve().parents[1] / "schemas"
# complex types declared abstract in the XSDs (an element of such a type needs xsi:type)
ABSTRACT_TYPES = frozenset(
    m.group(1) for f in sorted(_SCHEMAS.rglob("*.xsd"))
    for m in re.finditer(r'complexType name="(\w+)" abstract="true"', f.read_text(errors="replace")))
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
EXOTIC = "äöüß€中文😀<>&\"' -_.:/#"
INT_EDGES = (0, 1, 127, 128, 255, 256, 16383, 16384, 32767, 65535, 2**31 - 1, 2**32 - 1, 2**63 - 1)


class Walker:
    def __init__(self, sid, rnd, max_depth=8, list_cap=3, allowed=None, skip=()):
        self.sid = sid
        self.allowed = allowed or {}     # type name -> the only field names to fill
        self.skip = frozenset(skip)      # field names never filled (any type)
        self.s = exi.schema(sid)
        self.r = rnd
        self.max_depth = max_depth
        self.list_cap = list_cap
        self._dist = {}

    def dist(self, st, seen=()):
        """Fewest productions from state st to EE (memoised, cycle safe)."""
        k = id(st)
        if k in self._dist:
            return self._dist[k]
        if k in seen:
            return 10**6
        best = 10**6
        for p in st.prods:
            if p.kind == P_EE:
                best = 0
                break
        if best:
            for p in st.prods:
                if p.kind in WALKED and p.next is not None:
                    best = min(best, 1 + self.dist(p.next, seen + (k,)))
        self._dist[k] = best
        return best

    def value(self, dt):
        r = self.r
        k = dt.kind
        if k == DT_BOOL:
            return r.random() < 0.5
        if k in (DT_NBIT, DT_UINT, DT_INT):
            lo = dt.lo if dt.lo is not None else (0 if k == DT_UINT else -2**31)
            hi = dt.hi if dt.hi is not None else 2**32
            edges = [lo, hi] + [e for e in INT_EDGES if lo <= e <= hi] + [-e for e in INT_EDGES if lo <= -e <= hi]
            return r.choice(edges) if r.random() < 0.35 else r.randint(lo, hi)
        if k == DT_ENUM:
            return r.choice(dt.members).value
        if k in (DT_STRING, DT_HEX, DT_BASE64):
            lo = max(1, dt.min_len)
            hi = dt.max_len if dt.max_len >= 0 else 40
            hi = max(lo, min(hi, 40))
            n = r.choice([lo, hi, r.randint(lo, hi)])
            if k == DT_STRING:
                pool = ALNUM + (EXOTIC if r.random() < 0.3 else "")
                v = "".join(r.choice(pool) for _ in range(n))
                if v != v.strip():   # JAXB collapses whitespace of token types
                    v = r.choice(ALNUM) + v.strip()[:max(0, n - 2)] + r.choice(ALNUM) if n >= 2 else r.choice(ALNUM)
                return v
            return bytes(r.getrandbits(8) for _ in range(n))
        if k == DT_DECIMAL:
            from decimal import Decimal
            return Decimal(f"{r.randint(-10**6, 10**6)}.{r.randint(0, 999)}")
        if k == DT_FLOAT:
            return float(r.randint(-1000, 1000))
        if k == DT_LIST:
            return [self.value(dt.item) for _ in range(r.randint(1, 3))]
        raise NotImplementedError(f"datatype kind {k}")

    def element(self, g, depth=0, full=None):
        if g.simple:
            return self.value(g.dt)
        return self.complex(g, depth, full)

    def complex(self, g, depth=0, full=None):
        r = self.r
        if full is None:
            full = r.random() < 0.3
        cls = g.cls
        vals = {}
        counts = {}
        st = g.first
        steps = 0
        while True:
            prods = [p for p in st.prods if p.kind in WALKED]
            if not prods:
                raise LookupError(f"{cls.__name__}: dead end (only wildcards)")
            ee = [p for p in prods if p.kind == P_EE]
            others = [p for p in prods if p.kind != P_EE and p.next is not None]
            others = [p for p in others if p.kind != P_SE or p.child.simple
                      or p.child.cls is None or p.child.cls.__name__ not in ABSTRACT_TYPES]
            allow = self.allowed.get(cls.__name__)
            if allow is not None:
                others = [p for p in others if g.names[p.field] in allow]
            if self.skip:
                others = [p for p in others if g.names[p.field] not in self.skip]
            # lists: at most list_cap items per field
            others = [p for p in others if counts.get(p.field, 0) < (self.list_cap if not full else 2)]
            # head for EE when deep/long
            if depth >= self.max_depth or steps > 25:
                cand = ee or sorted(others, key=lambda p: self.dist(p.next))[:1]
            elif full:
                cand = others[:1] or ee
            elif ee and (not others or r.random() < 0.3):
                cand = ee
            else:
                cand = others or ee
            if not cand:
                raise LookupError(f"{cls.__name__}: stuck")
            p = r.choice(cand)
            if p.kind == P_EE:
                break
            name = g.names[p.field]
            if p.kind == P_SE:
                v = self.element(p.child, depth + 1, None)
            elif p.kind == P_AT and name in ("Id", "URI"):
                v = "".join(r.choice(ALNUM) for _ in range(r.randint(1, 12)))
                v = ("#" + v) if name == "URI" else "id" + v
            else:
                v = self.value(p.dt)
            if g.lists[p.field]:
                vals.setdefault(name, []).append(v)
            else:
                vals[name] = v
            counts[p.field] = counts.get(p.field, 0) + 1
            st = p.next
            steps += 1
        obj = cls.__new__(cls)
        for f in cls._fields:
            object.__setattr__(obj, f, vals.get(f))
        return obj


def body_names(sid):
    """(element name, Body grammar production) for every Body child of a DIN/-2 schema."""
    from importlib import import_module
    exi.schema(sid)
    m = import_module(f"exi.messages.{sid}")
    g = m.BodyType._grammar
    out = {}
    for p in g.first.prods:
        if p.kind == P_SE:
            out[g.names[p.field]] = p
    return out


# the xmldsig subset the iso15118 package models (iso15118/shared/messages/xmldsig.py)
PACKAGE_XMLDSIG = {
    "SignatureType": {"SignedInfo", "SignatureValue"},
    "SignedInfoType": {"CanonicalizationMethod", "SignatureMethod", "Reference"},
    "CanonicalizationMethodType": {"Algorithm"},
    "SignatureMethodType": {"Algorithm"},
    "ReferenceType": {"Id", "URI", "Transforms", "DigestMethod", "DigestValue"},
    "TransformsType": {"Transform"},
    "TransformType": {"Algorithm"},
    "DigestMethodType": {"Algorithm"},
    "SignatureValueType": {"value"},
}


def has_kind(obj, kind) -> bool:
    """Whether a message object holds a value of datatype kind (e.g. DT_BASE64) anywhere."""
    from exi.message import Message
    if not isinstance(obj, Message):
        return False
    s = exi.schema(obj._schema_id)
    for (name, fkind, is_list, q, ref), g in zip(type(obj)._field_rows, type(obj)._field_grammars):
        v = getattr(obj, name)
        if v is None:
            continue
        for item in (v if is_list else (v,)):
            if g is not None and not g.simple:
                if has_kind(item, kind):
                    return True
            else:
                dt = g.dt if g is not None else s.datatypes[ref]
                if dt.kind == kind:
                    return True
    return False


def has_attribute(obj, name: str) -> bool:
    """Whether a message object holds attribute `name` (e.g. Id) anywhere."""
    from exi._kinds import F_ATTRIBUTE
    from exi.message import Message
    if not isinstance(obj, Message):
        return False
    for (fname, fkind, is_list, q, ref), g in zip(type(obj)._field_rows, type(obj)._field_grammars):
        v = getattr(obj, fname)
        if v is None:
            continue
        if fkind == F_ATTRIBUTE and fname == name:
            return True
        if g is not None and not g.simple:
            if any(has_attribute(x, name) for x in (v if is_list else (v,))):
                return True
    return False


def v2g_message(sid: str, body_name: str, walker: "Walker", header_fields=None):
    """A random V2G_Message (din/iso2) whose Body holds body_name."""
    m = exi.schema(sid).messages
    prod = body_names(sid)[body_name]
    hdr = walker.complex(m.MessageHeaderType._grammar, 1, full=False)
    if header_fields is not None:
        for f in m.MessageHeaderType._fields:
            if f not in header_fields:
                object.__setattr__(hdr, f, None)
    body = m.BodyType.__new__(m.BodyType)
    for f in m.BodyType._fields:
        object.__setattr__(body, f, None)
    object.__setattr__(body, body_name, walker.element(prod.child, 2))
    return m.V2G_Message(Header=hdr, Body=body)
