"""Pass 1: load an XSD set with xmlschema and turn it into a small intermediate form.

Nothing here knows about EXI; it only answers "what does the schema say": element
declarations, complex types with their particles and attribute uses, and simple types
reduced to the facts the EXI datatype mapping needs (W3C EXI 1.0 section 7.1).
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional, Union

import xmlschema
from xmlschema.validators import (XsdAnyElement, XsdAtomicBuiltin, XsdAtomicRestriction,
                                  XsdComplexType, XsdElement, XsdGroup, XsdList, XsdUnion)

XSD_NS = "http://www.w3.org/2001/XMLSchema"
UNBOUNDED = -1

# Value space bounds of the built-in integer types (XML Schema Part 2, 3.3).
_INT_BOUNDS = {
    "integer": (None, None), "nonPositiveInteger": (None, 0), "negativeInteger": (None, -1),
    "long": (-2**63, 2**63 - 1), "int": (-2**31, 2**31 - 1), "short": (-2**15, 2**15 - 1),
    "byte": (-128, 127), "nonNegativeInteger": (0, None), "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1), "unsignedShort": (0, 65535), "unsignedByte": (0, 255),
    "positiveInteger": (1, None),
}
_DATETIME = {"dateTime", "time", "date", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth"}


@dataclass(frozen=True)
class SimpleType:
    """An XSD simple type reduced to what EXI encodes (section 7.1)."""
    kind: str                      # boolean|integer|decimal|float|string|hex|base64|enum|datetime|list|qname
    name: str                      # XSD name (or derived name for anonymous types)
    min: Optional[int] = None      # integer bounds after facets
    max: Optional[int] = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    enum_values: tuple = ()        # lexical values in schema order
    enum_base: Optional["SimpleType"] = None
    item: Optional["SimpleType"] = None   # list item type
    datetime_kind: str = ""
    builtin: str = ""              # XSD built-in the type derives from
    whitespace: str = "preserve"   # whiteSpace facet of a string type: preserve|replace|collapse


@dataclass(frozen=True)
class QN:
    uri: str
    local: str

    def sort_key(self):
        # EXI sorts qnames by local name, then by URI (section 8.5.4.1.6).
        return (self.local, self.uri)

    def clark(self):
        return f"{{{self.uri}}}{self.local}" if self.uri else self.local


@dataclass
class Particle:
    """A content-model node: an element, a wildcard, or a sequence/choice/all group."""
    kind: str                      # element|any|sequence|choice|all
    min: int
    max: int                       # UNBOUNDED for unbounded
    element: Optional["ElementDecl"] = None
    any_ns: Optional[tuple] = None  # None: any namespace (##any, ##other); tuple: list of uris
    children: list = field(default_factory=list)


@dataclass
class ElementDecl:
    qname: QN
    type: Union["ComplexType", SimpleType] = field(repr=False)
    is_global: bool
    abstract: bool = False
    nillable: bool = False
    substitutes: list = field(default_factory=list, repr=False)   # filled for heads: member declarations
    key: int = 0                   # identity within the schema set


@dataclass
class AttributeUse:
    qname: QN
    type: SimpleType
    required: bool


@dataclass
class ComplexType:
    name: str                      # XSD name or a name derived from the element
    qname: Optional[QN]            # None for anonymous types
    attributes: list               # AttributeUse, any order
    content: str                   # empty|simple|element|mixed
    particle: Optional[Particle] = None
    simple: Optional[SimpleType] = None
    any_attribute: bool = False
    key: int = 0


class SchemaSet:
    """All declarations reachable from one entry XSD."""

    def __init__(self, entry: Path):
        self.entry = entry
        self.xs = xmlschema.XMLSchema10(str(entry))
        self._simple: dict[int, SimpleType] = {}
        self._complex: dict[int, ComplexType] = {}
        self._elements: dict[int, ElementDecl] = {}
        self.complex_types: list[ComplexType] = []
        self.global_elements: list[ElementDecl] = []
        self.all_elements: list[ElementDecl] = []
        self.attribute_qnames: set = set()
        for el in self.xs.maps.elements.values():
            if el.name.startswith(f"{{{XSD_NS}}}"):
                continue   # xmlschema also exposes the meta-schema's own elements
            self.global_elements.append(self.element(el))
        direct = {}
        for el in list(self.global_elements):
            xs_el = self.xs.maps.elements[el.qname.clark()]
            direct[el.qname] = [self.element(m) for m in
                                self.xs.maps.substitution_groups.get(xs_el.name, ())]
        for el in self.global_elements:
            # substitution groups are transitive: members of members substitute too
            seen, todo, out = {el.qname}, list(direct[el.qname]), []
            while todo:
                m = todo.pop(0)
                if m.qname in seen:
                    continue
                seen.add(m.qname)
                out.append(m)
                todo.extend(direct.get(m.qname, ()))
            el.substitutes = out
        for t in self.xs.maps.types.values():
            if isinstance(t, XsdComplexType) and t.name and not t.name.startswith(f"{{{XSD_NS}}}"):
                self.complex_type(t)
        self.namespaces = sorted({ns for ns in self.xs.maps.namespaces if ns} - {
            "", "http://www.w3.org/XML/1998/namespace",
            "http://www.w3.org/2001/XMLSchema-instance", XSD_NS})

    # -- elements ---------------------------------------------------------------------
    def element(self, el: XsdElement) -> ElementDecl:
        if el.ref is not None:
            el = el.ref
        decl = self._elements.get(id(el))
        if decl is not None:
            return decl
        qn = _qn(el.name)
        decl = ElementDecl(qname=qn, type=None, is_global=el.parent is None,
                           abstract=bool(getattr(el, "abstract", False)),
                           nillable=bool(el.nillable), key=len(self._elements))
        self._elements[id(el)] = decl
        self.all_elements.append(decl)
        t = el.type
        decl.type = self.complex_type(t) if isinstance(t, XsdComplexType) \
            else self.simple_type(t if not isinstance(t, XsdComplexType) else t.content)
        return decl

    # -- complex types ----------------------------------------------------------------
    def complex_type(self, t: XsdComplexType) -> ComplexType:
        ct = self._complex.get(id(t))
        if ct is not None:
            return ct
        name = _local(t.name) if t.name else None
        ct = ComplexType(name=name, qname=_qn(t.name) if t.name else None, attributes=[],
                         content="empty", key=len(self._complex))
        self._complex[id(t)] = ct
        self.complex_types.append(ct)
        for key, a in (t.attributes.items() if t.attributes else ()):
            if key is None or a is None or not hasattr(a, "type"):
                continue   # the attribute wildcard is reported separately
            if getattr(a, "use", "optional") == "prohibited":
                continue
            aq = _qn(a.name)
            self.attribute_qnames.add(aq)
            ct.attributes.append(AttributeUse(aq, self.simple_type(a.type), a.use == "required"))
        ct.any_attribute = bool(t.attributes) and None in t.attributes
        if t.has_simple_content():
            ct.content = "simple"
            ct.simple = self.simple_type(t.content)
        elif isinstance(t.content, XsdGroup) and len(t.content) > 0 or (
                isinstance(t.content, XsdGroup) and t.mixed):
            ct.content = "mixed" if t.mixed else "element"
            ct.particle = self.particle(t.content)
            if ct.particle is None:
                ct.content = "mixed" if t.mixed else "empty"
        else:
            ct.content = "empty"
        return ct

    def particle(self, g) -> Optional[Particle]:
        mn = g.min_occurs
        mx = UNBOUNDED if g.max_occurs is None else g.max_occurs
        if isinstance(g, XsdElement):
            return Particle("element", mn, mx, element=self.element(g))
        if isinstance(g, XsdAnyElement):
            ns = g.namespace
            if isinstance(ns, str):
                ns = [ns]
            ns = list(ns)
            if any(n in ("##any", "##other") for n in ns) or getattr(g, "not_namespace", None):
                any_ns = None
            else:
                any_ns = tuple(sorted(("" if n == "##local" else n) for n in ns))
            return Particle("any", mn, mx, any_ns=any_ns)
        assert isinstance(g, XsdGroup), g
        if g.ref is not None:
            inner = g.ref
        else:
            inner = g
        kids = [p for p in (self.particle(c) for c in inner) if p is not None]
        if not kids:
            return None
        return Particle(inner.model, mn, mx, children=kids)

    # -- simple types -----------------------------------------------------------------
    def simple_type(self, t) -> SimpleType:
        st = self._simple.get(id(t))
        if st is not None:
            return st
        st = self._make_simple(t)
        self._simple[id(t)] = st
        return st

    def _make_simple(self, t) -> SimpleType:
        name = _local(t.name) if t.name else "anonymous"
        if isinstance(t, XsdList):
            return SimpleType("list", name, item=self.simple_type(t.item_type))
        if isinstance(t, XsdUnion) or name in ("anySimpleType", "anyAtomicType"):
            return SimpleType("string", name)
        # find the built-in it derives from
        chain = []
        cur = t
        while not isinstance(cur, XsdAtomicBuiltin):
            chain.append(cur)
            base = getattr(cur, "base_type", None)
            if base is None:
                raise ValueError(f"cannot find built-in base of {t!r}")
            if isinstance(base, (XsdList, XsdUnion)):
                inner = self.simple_type(base)
                if _enumeration(cur):
                    return SimpleType("string", name)
                return inner
            cur = base
        builtin = _local(cur.name)
        enum = None
        for c in chain:                 # most derived first
            vals = _enumeration(c)
            if vals is not None:
                enum = vals
                break
        prim = builtin
        b = cur
        while b.base_type is not None and _local(b.base_type.name) not in ("anySimpleType", "anyType"):
            b = b.base_type
        primitive = _local(b.name)
        if enum is not None and primitive not in ("QName", "NOTATION"):
            base = self._base_without_enum(t)
            return SimpleType("enum", name, enum_values=tuple(enum), enum_base=base, builtin=prim)
        lo, hi, minlen, maxlen = None, None, None, None
        for c in reversed(chain):
            f = getattr(c, "facets", {}) or {}
            for key, v in f.items():
                k = _local(key) if key else key
                val = getattr(v, "value", None)
                if k == "minInclusive":
                    lo = _max(lo, int(val))
                elif k == "minExclusive":
                    lo = _max(lo, int(val) + 1)
                elif k == "maxInclusive":
                    hi = _min(hi, int(val))
                elif k == "maxExclusive":
                    hi = _min(hi, int(val) - 1)
                elif k == "length":
                    minlen = maxlen = int(val)
                elif k == "minLength":
                    minlen = int(val)
                elif k == "maxLength":
                    maxlen = int(val)
                elif k == "pattern":
                    raise ValueError(f"pattern facets are not supported yet ({name}); "
                                     "a restricted character set would be needed (EXI 7.1.10)")
        if primitive == "boolean":
            return SimpleType("boolean", name, builtin=prim)
        if primitive == "decimal" and prim not in _INT_BOUNDS:
            return SimpleType("decimal", name, builtin=prim)
        if primitive == "decimal":
            blo, bhi = _INT_BOUNDS[prim]
            return SimpleType("integer", name, min=_max(lo, blo), max=_min(hi, bhi), builtin=prim)
        if primitive in ("float", "double"):
            return SimpleType("float", name, builtin=prim)
        if primitive == "hexBinary":
            return SimpleType("hex", name, min_length=minlen, max_length=maxlen, builtin=prim)
        if primitive == "base64Binary":
            return SimpleType("base64", name, min_length=minlen, max_length=maxlen, builtin=prim)
        if primitive in _DATETIME:
            return SimpleType("datetime", name, datetime_kind=primitive, builtin=prim)
        if primitive == "QName":
            return SimpleType("qname", name, builtin=prim)
        return SimpleType("string", name, min_length=minlen, max_length=maxlen, builtin=prim,
                          whitespace=getattr(t, "white_space", None) or "preserve")

    def _base_without_enum(self, t) -> SimpleType:
        base = t.base_type
        while base is not None and not isinstance(base, XsdAtomicBuiltin) and _enumeration(base) is not None:
            base = base.base_type
        return self.simple_type(base)


def _enumeration(t):
    vals = getattr(t, "enumeration", None)
    if vals is None:
        return None
    # xmlschema keeps the lexical values in the enumeration facet's elements
    facet = (getattr(t, "facets", {}) or {}).get(f"{{{XSD_NS}}}enumeration")
    if facet is not None and getattr(facet, "_elements", None) is not None:
        return [e.get("value") for e in facet._elements]
    return [str(v) for v in vals]


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if name else name


def _qn(name: str) -> QN:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return QN(uri, local)
    return QN("", name)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def python_name(name: str) -> str:
    """XSD names are kept; only names Python cannot spell get a trailing underscore."""
    if keyword.iskeyword(name):
        return name + "_"
    return name.replace("-", "_").replace(".", "_")
