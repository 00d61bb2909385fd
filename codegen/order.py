"""Pass 1b: find the content models whose document order carries information.

Message classes store each child element in its own field, and the encoder writes the
fields back in the order the content model dictates.  That loses nothing as long as the
content model leaves no choice of order.  It does in two cases, which this pass finds in
the schema (not in a list of names):

- mixed content: character data may stand before, between and after any child;
- a repeated group (a sequence or choice with maxOccurs > 1, or inside one) over two or
  more different children, such as xmldsig's KeyInfo `(KeyName | KeyValue | ... | any)+`,
  X509Data `((X509IssuerSerial | X509SKI | ...)  | any)+` or SPKIData
  `(SPKISexp, any?)+`: `<a/><b/>` and `<b/><a/>` are different documents with the same
  per-field projection.  A repeated sequence of required single elements (`(a, b)+`)
  fixes the order and is left alone.

Such a type gets one ordered list (`content`) of its children instead: declared elements,
wildcard elements and text in document order (emit.py, exi/_content.py).
"""
from __future__ import annotations

from .xsd import UNBOUNDED, ComplexType, Particle


def keeps_order(ct: ComplexType) -> bool:
    """Whether the children of ct must be kept as one ordered list."""
    if ct.content == "mixed":
        return True
    return ct.particle is not None and _repeated_choice_of_order(ct.particle, False)


def _repeated_choice_of_order(p: Particle, repeated: bool) -> bool:
    repeated = repeated or p.max == UNBOUNDED or p.max > 1
    if p.kind in ("element", "any"):
        return False
    if repeated and len(_symbols(p)) > 1 and not _fixed_order(p):
        return True
    return any(_repeated_choice_of_order(c, repeated) for c in p.children)


def _symbols(p: Particle) -> set:
    """The distinct children a particle can produce (element names, wildcards)."""
    if p.kind == "element":
        return {p.element.qname} | {s.qname for s in p.element.substitutes}
    if p.kind == "any":
        return {("any", p.any_ns)}
    out: set = set()
    for c in p.children:
        out |= _symbols(c)
    return out


def _fixed_order(p: Particle) -> bool:
    """A sequence of required, single, non-substitutable elements: one order only."""
    return p.kind == "sequence" and all(
        c.kind == "element" and c.min == c.max == 1 and not c.element.substitutes
        for c in p.children)
