"""Schema-less (wildcard) content at scale, against EXIficient.

Undeclared elements are coded with built-in grammars that learn a production for every new
event (EXI 1.0 section 8.4.3; the newest takes code 0) and with qname tables that grow
with every new name.  Documents with hundreds of distinct names, repeated in random
orders with attributes and mixed text, exercise those codes far past what a signature
carries; EXIficient's bytes are the reference.  (The tables once were lists searched at
every event: 8,000 distinct names took 4 s to decode and 23 s to encode.)
"""
from __future__ import annotations

import random

import pytest

import exi
from tests.interop.test_generated_documents import tree, xsd_of

pytestmark = pytest.mark.interop

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def _element(rng, names, depth):
    name = rng.choice(names)
    attrs = "".join(f' {rng.choice(names)}="{rng.randrange(1000)}"' for _ in range(rng.randrange(2)))
    if depth and rng.random() < 0.3:
        inner = "".join(_element(rng, names, depth - 1) + rng.choice(["", "t"]) for _ in range(rng.randint(1, 4)))
    else:
        inner = rng.choice(["", "v", f"{rng.randrange(10 ** 6)}"])
    # an attribute name may repeat: keep the first (XML allows each once)
    seen, kept = set(), []
    for part in attrs.split(" ")[1:]:
        key = part.split("=")[0]
        if key not in seen:
            seen.add(key)
            kept.append(part)
    return f"<{name}{''.join(' ' + k for k in kept)}>{inner}</{name}>"


def _document(seed: int, distinct: int, elements: int) -> str:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(distinct)]
    body = "".join(_element(rng, names, 2) + rng.choice(["", "x"]) for _ in range(elements))
    return f'<Object xmlns="{DSIG}">lead<w xmlns="urn:w">{body}</w>tail</Object>'


def test_many_distinct_undeclared_names_match_exificient(josev):
    docs = [_document(seed, distinct, elements)
            for seed, distinct, elements in ((1, 40, 300), (2, 400, 800), (3, 1500, 1500))]
    ours = []
    for xml in docs:
        data = exi.encode(exi.from_xml(xml, "xmldsig"))
        back = exi.decode(data, "xmldsig")
        assert exi.encode(back) == data
        assert tree(exi.to_xml(back)) == tree(xml)
        ours.append(data)
    theirs = josev.encode_xml(docs, xsd_of("xmldsig"))
    for xml, o, t in zip(docs, ours, theirs):
        assert o == t, (f"{len(xml)} characters of XML: ours {len(o)} bytes, EXIficient "
                        f"{len(t) if isinstance(t, bytes) else t}")
