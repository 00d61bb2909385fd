"""Every message type of the nine message sets, drawn from its grammar, against EXIficient.

tests/codec/_gen.py walks a message type's grammar at random (every optional and choice
branch reachable, repeated groups in random orders with mixed text between them, values
within their facets, lengths up to maxLength).  For each drawn document:

- EXI -> objects -> EXI gives the same bytes;
- XML -> objects -> EXI -> objects -> XML gives the same ordered tree (tags, attributes,
  text and tails, children in order);
- after the draw, the XML of all documents of the message type goes to EXIficient (the
  library inside the iso15118 package's JAR; one JVM for the session, one request per
  message type), configured as the V2G profile the reference vectors were made with
  (schemas/, bit-packed, default fidelity options, no value string table): its bytes
  must equal ours.  EXIficient encodes from the XML, so this covers the xmldsig content
  the package's own JSON layer cannot express (KeyInfo, X509Data, mixed text).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from lxml import etree

import exi
from exi.registry import SCHEMAS
from tests.thorough import scaled

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
PER_TYPE = scaled(3, 8)  # documents per message type (151 types; EXI15118_THOROUGH=1: 8)


def _load_gen():
    name = "exi15118_codec_gen"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "codec" / "_gen.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


gen = _load_gen()
TARGETS = gen.message_targets()
SETTINGS = settings(max_examples=PER_TYPE, deadline=None, database=None,
                    derandomize=bool(os.environ.get("CI")),
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def xsd_of(sid: str) -> Path:
    info = SCHEMAS[sid]
    return REPO / "schemas" / info.directory / info.entry


def tree(xml: str):
    """An XML document as a comparable ordered tree."""
    def node(el):
        return (el.tag, sorted(el.attrib.items()), el.text or "",
                [node(c) for c in el], el.tail or "")
    return node(etree.fromstring(xml.encode("utf-8")))


@pytest.mark.parametrize("sid,name", TARGETS, ids=[f"{s}:{n}" for s, n in TARGETS])
def test_generated_documents(josev, sid, name):
    drawn = []

    @SETTINGS
    @given(msg=gen.messages(sid, name))
    def check(msg):
        data = exi.encode(msg)
        back = exi.decode(data, sid)
        assert exi.encode(back) == data, "EXI -> objects -> EXI changed the bytes"
        xml = exi.to_xml(msg)
        again = exi.from_xml(xml, sid)
        assert exi.encode(again) == data, "XML -> objects -> EXI changed the bytes"
        assert tree(exi.to_xml(exi.decode(data, sid))) == tree(xml), "XML -> EXI -> XML changed the tree"
        drawn.append((xml, data))
    check()
    assert drawn

    theirs = josev.encode_xml([x for x, _ in drawn], xsd_of(sid))
    bad = [(xml, ours, t) for (xml, ours), t in zip(drawn, theirs) if t != ours]
    assert not bad, (f"{len(bad)} of {len(drawn)} documents differ from EXIficient's encoding; first:\n"
                     f"{bad[0][0]}\nours      {bad[0][1].hex()}\nEXIficient "
                     f"{bad[0][2].hex() if isinstance(bad[0][2], bytes) else bad[0][2]}")

