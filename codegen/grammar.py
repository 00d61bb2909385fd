"""Pass 2: derive schema-informed EXI grammars (W3C EXI 1.0, section 8.5) from the IR.

The grammars are built the way the reference encoder (EXIficient) builds them, because
the V2G vectors were produced by encoders that share its grammars:
- a content model becomes a deterministic automaton over element particles (Glushkov
  positions, subset construction); bounded maxOccurs is unrolled, so the states near
  maxOccurs are exact (no SE production left once the array is full);
- an element particle whose declaration heads a substitution group offers the head and
  every member, sorted by local name then URI; an abstract head is kept, as EXIficient does;
- the productions of a state are ordered by event kind: AT(qname) sorted by local name
  then URI, AT(uri:*), AT(*), SE(qname) in content-model order, SE(uri:*), SE(*), EE,
  CH, CH(mixed) — which fixes their event codes (8.5.4.3);
- attribute uses form a chain of start-tag states in front of the content (8.5.4.1.3.1);
  each state records its kind (first start tag, start tag, element content) because the
  non-strict second-level productions (8.5.4.4.1) depend on it, and whether EE is
  first-level.  The second level itself is fixed per kind and computed by the runtime.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Optional

from .xsd import UNBOUNDED, AttributeUse, ComplexType, ElementDecl, Particle, SimpleType

FIRST, START, CONTENT = "first", "start", "content"
# event kinds in EXIficient's EventType order (which is the order of event codes)
AT, AT_NS, AT_ANY, SE, SE_NS, SE_ANY, EE, CH, CH_MIXED = range(9)

sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))


@dataclass
class Prod:
    kind: int
    target: object = None          # AttributeUse | ElementDecl | uri | SimpleType | None
    next: Optional["State"] = None


@dataclass(eq=False)
class State:
    kind: str
    prods: list = field(default_factory=list)
    id: int = -1

    @property
    def has_ee(self) -> bool:
        return any(p.kind == EE for p in self.prods)

    def add(self, prod: Prod) -> None:
        for p in self.prods:
            if p.kind == prod.kind and _same_target(p.target, prod.target):
                if p.next is not prod.next:
                    raise ValueError(f"non-deterministic content model: {prod.kind} {prod.target}")
                return
        self.prods.append(prod)
        self.prods.sort(key=_order_key)


def _same_target(a, b) -> bool:
    if isinstance(a, (ElementDecl, AttributeUse)) and isinstance(b, (ElementDecl, AttributeUse)):
        return a.qname == b.qname
    return a == b or a is b


_insertion = iter(range(1 << 62))


def _order_key(p: Prod):
    if p.kind == AT:
        return (AT, p.target.qname.sort_key(), 0)
    if p.kind == AT_NS:
        return (AT_NS, (p.target, ""), 0)
    # SE / SE_NS keep insertion order (stable sort on equal kinds)
    return (p.kind, ("", ""), 0)


@dataclass(eq=False)
class TypeGrammar:
    """The grammar of one type: a first state and its TypeEmpty variant (for xsi:nil)."""
    type: object                   # ComplexType | SimpleType
    first: State = None
    empty_first: State = None
    states: list = field(default_factory=list)
    id: int = -1


# ---------------------------------------------------------------------------------------
# Content models -> deterministic automata

@dataclass(eq=False)
class _Pos:
    symbols: list                  # [(SE, ElementDecl), ...] or [(SE_ANY, None)] or [(SE_NS, uri)...]
    order: int                     # first-appearance index of the particle (Xerces elemMap)


class _Node:
    __slots__ = ("op", "kids", "pos")

    def __init__(self, op, kids=(), pos=None):
        self.op, self.kids, self.pos = op, list(kids), pos


def _expand(p: Particle, order: dict) -> _Node:
    """The particle as a regular expression tree, minOccurs/maxOccurs unrolled."""
    def term() -> _Node:
        if p.kind == "element":
            head = p.element
            key = ("e", head.qname)
            idx = order.setdefault(key, len(order))
            decls = {head.qname: head}
            for m in head.substitutes:
                decls.setdefault(m.qname, m)
            syms = [(SE, d) for d in sorted(decls.values(), key=lambda d: d.qname.sort_key())]
            return _Node("leaf", pos=_Pos(syms, idx))
        if p.kind == "any":
            key = ("w", p.any_ns)
            idx = order.setdefault(key, len(order))
            syms = [(SE_ANY, None)] if p.any_ns is None else [(SE_NS, u) for u in p.any_ns]
            return _Node("leaf", pos=_Pos(syms, idx))
        if p.kind == "all":
            raise NotImplementedError("xs:all groups do not occur in the V2G schemas")
        op = "seq" if p.kind == "sequence" else "alt"
        return _Node(op, [_expand(c, order) for c in p.children])

    parts = [term() for _ in range(p.min)]
    if p.max == UNBOUNDED:
        parts.append(_Node("star", [term()]))
    else:
        tail = None
        for _ in range(p.max - p.min):
            inner = term() if tail is None else _Node("seq", [term(), tail])
            tail = _Node("opt", [inner])
        if tail is not None:
            parts.append(tail)
    if len(parts) == 1:
        return parts[0]
    return _Node("seq", parts)


def _analyse(n: _Node, follow: dict):
    """Glushkov sets: returns (nullable, first, last) and fills follow."""
    if n.op == "leaf":
        follow.setdefault(n.pos, [])
        return False, [n.pos], [n.pos]
    if n.op in ("star", "opt"):
        nl, f, l = _analyse(n.kids[0], follow)
        if n.op == "star":
            for p in l:
                _extend(follow[p], f)
        return True, f, l
    if n.op == "alt":
        nullable, first, last = False, [], []
        for k in n.kids:
            nl, f, l = _analyse(k, follow)
            nullable |= nl
            _extend(first, f)
            _extend(last, l)
        return nullable, first, last
    # sequence
    nullable, first, last = True, [], []
    for k in n.kids:
        nl, f, l = _analyse(k, follow)
        for p in last:
            _extend(follow[p], f)
        if nullable:
            _extend(first, f)
        last = (last + [x for x in l if x not in last]) if nl else list(l)
        nullable = nullable and nl
    return nullable, first, last


def _extend(dst: list, src: list) -> None:
    seen = set(map(id, dst))
    for x in src:
        if id(x) not in seen:
            dst.append(x)
            seen.add(id(x))


def content_automaton(particle: Optional[Particle], mixed: bool) -> tuple[State, list]:
    """States of the element content; the first one is the content's start."""
    states: list[State] = []
    if particle is None:
        s = State(CONTENT)
        s.add(Prod(EE))
        if mixed:
            s.add(Prod(CH_MIXED, None, s))
        return s, [s]
    order: dict = {}
    tree = _expand(particle, order)
    follow: dict = {}
    nullable, first, last = _analyse(tree, follow)
    last_ids = set(map(id, last))
    known: dict = {}

    def state_for(key: frozenset, candidates: list, end: bool) -> State:
        if key in known:
            return known[key]
        s = State(CONTENT)
        known[key] = s
        states.append(s)
        pending.append((s, candidates, end))
        return s

    pending: list = []
    start = state_for(frozenset(), first, nullable)
    while pending:
        s, candidates, end = pending.pop(0)
        if end:
            s.add(Prod(EE))
        if mixed:
            s.add(Prod(CH_MIXED, None, s))
        # group candidate positions by symbol, in elemMap order
        groups: dict = {}
        for pos in sorted(candidates, key=lambda q: q.order):
            for sym in pos.symbols:
                k = (sym[0], sym[1].qname if isinstance(sym[1], ElementDecl) else sym[1])
                groups.setdefault(k, (sym, []))[1].append(pos)
        for k, (sym, poss) in groups.items():
            key = frozenset(map(id, poss))
            nxt_cands: list = []
            for q in poss:
                _extend(nxt_cands, follow[q])
            nxt = state_for(key, nxt_cands, any(id(q) in last_ids for q in poss))
            s.add(Prod(sym[0], sym[1], nxt))
    return start, states


# ---------------------------------------------------------------------------------------
# Type grammars

def type_grammar(t) -> TypeGrammar:
    g = TypeGrammar(t)
    if isinstance(t, SimpleType):
        end = State(CONTENT, [Prod(EE)])
        first = State(FIRST, [Prod(CH, t, end)])
        g.first, g.states = first, [first, end]
        empty = State(FIRST, [Prod(EE)])
        g.empty_first = empty
        g.states.append(empty)
        return g
    ct: ComplexType = t
    if ct.content == "simple":
        end = State(CONTENT, [Prod(EE)])
        content_start = State(CONTENT, [Prod(CH, ct.simple, end)])
        content_states = [end]
    else:
        content_start, content_states = content_automaton(ct.particle, ct.content == "mixed")
    first, chain = _attribute_chain(ct, content_start)
    ee_only = State(CONTENT, [Prod(EE)])
    empty_first, empty_chain = _attribute_chain(ct, ee_only)
    g.first, g.empty_first = first, empty_first
    reachable = _reachable([first, empty_first])
    g.states = reachable
    return g


def _attribute_chain(ct: ComplexType, content_start: State) -> tuple[State, list]:
    attrs = sorted(ct.attributes, key=lambda a: a.qname.sort_key())
    rule = State(START, list(content_start.prods))
    if ct.any_attribute:
        rule.add(Prod(AT_ANY, None, rule))
    chain = [rule]
    for a in reversed(attrs):
        cur = State(START)
        cur.add(Prod(AT, a, rule))
        if ct.any_attribute:
            cur.add(Prod(AT_ANY, None, cur))
        if not a.required:
            for p in rule.prods:
                if p.kind not in (AT_ANY, AT_NS):
                    cur.add(Prod(p.kind, p.target, p.next))
        rule = cur
        chain.append(rule)
    first = State(FIRST)
    for p in rule.prods:
        first.add(Prod(p.kind, p.target, first if p.next is rule else p.next))
    return first, chain


def _reachable(roots: list) -> list:
    out, seen, todo = [], set(), list(roots)
    while todo:
        s = todo.pop(0)
        if id(s) in seen:
            continue
        seen.add(id(s))
        out.append(s)
        for p in s.prods:
            if p.next is not None and id(p.next) not in seen:
                todo.append(p.next)
    return out


def minimise(states: list) -> dict:
    """Merge states with the same kind, productions and (equivalent) targets.

    Different automaton states with identical futures give identical event codes, so
    merging them changes no byte; it only makes the tables smaller (Moore's algorithm).
    Returns a map from id(state) to its representative."""
    def sig(s, cls):
        return (s.kind, tuple((p.kind, _tkey(p.target), cls.get(id(p.next), -1) if p.next else -1)
                              for p in s.prods))
    cls = {id(s): 0 for s in states}
    while True:
        sigs: dict = {}
        new = {}
        for s in states:
            k = sig(s, cls)
            new[id(s)] = sigs.setdefault(k, len(sigs))
        if len(set(new.values())) == len(set(cls.values())):
            break
        cls = new
    rep: dict = {}
    first_of: dict = {}
    for s in states:
        first_of.setdefault(cls[id(s)], s)
        rep[id(s)] = first_of[cls[id(s)]]
    return rep


def _tkey(t):
    if isinstance(t, (ElementDecl, AttributeUse)):
        return ("q", t.qname.uri, t.qname.local, id(getattr(t, "type", None)))
    if isinstance(t, SimpleType):
        return ("t", id(t))
    return ("v", t)
