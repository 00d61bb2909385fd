"""Encode/decode speed per message, typed objects in and out.

    python -m pytest benchmarks/bench_codec.py                      # compiled engine
    EXI_NO_EXTENSIONS=1 python -m pytest benchmarks/bench_codec.py  # pure-Python engine

Each group is one message; the contenders are exi15118 (encode, decode; the engine that is
loaded is named in the test id) and, for scale, json.dumps/json.loads of the same content
(exi.to_dict form).  Speed is measured here, never asserted in the tests.
"""
from __future__ import annotations

import json

import pytest

import exi
from messages import all_messages

MESSAGES = all_messages()
IMPL = exi._impl.IMPLEMENTATION


@pytest.mark.parametrize("name", list(MESSAGES))
def bench_decode(benchmark, name):
    sid, data, _ = MESSAGES[name]
    benchmark.group = name
    benchmark.name = f"exi15118 decode [{IMPL}]"
    msg = benchmark(exi.decode, data, sid)
    assert exi.encode(msg, validate=False) == data


def _valid(msg, data) -> bool:
    try:
        return exi.encode(msg) == data
    except exi.EncodeError:
        return False


@pytest.mark.parametrize("name", list(MESSAGES))
def bench_encode(benchmark, name):
    """exi.encode(msg), facets checked (the default).  A sample whose values break a facet
    (the 175 B CertificateInstallationRes: an over-long eMAID, as captured) is encoded with
    validate=False; pytest-benchmark passes that keyword as **kwargs, which adds ~0.3 us
    of call overhead to that one figure."""
    sid, data, msg = MESSAGES[name]
    benchmark.group = name
    benchmark.name = f"exi15118 encode [{IMPL}]"
    if _valid(msg, data):
        assert benchmark(exi.encode, msg) == data
    else:
        assert benchmark(exi.encode, msg, validate=False) == data


@pytest.mark.parametrize("name", list(MESSAGES))
def bench_json_dumps(benchmark, name):
    _, _, msg = MESSAGES[name]
    benchmark.group = name
    benchmark.name = "json.dumps (same content)"
    benchmark(json.dumps, exi.to_dict(msg))


@pytest.mark.parametrize("name", list(MESSAGES))
def bench_json_loads(benchmark, name):
    _, _, msg = MESSAGES[name]
    benchmark.group = name
    benchmark.name = "json.loads (same content)"
    benchmark(json.loads, json.dumps(exi.to_dict(msg)))


def _wildcard_document(distinct: int, elements: int = 4000) -> str:
    """xmldsig Object content of undeclared elements: `distinct` names, each element with
    an attribute of its own name and text (a signature's Object may carry anything)."""
    inner = "".join(f"<a{i % distinct} x{i % distinct}='{i}'>t{i}</a{i % distinct}>" for i in range(elements))
    return f"<Object xmlns='http://www.w3.org/2000/09/xmldsig#'><w xmlns='urn:w'>{inner}</w></Object>"


@pytest.mark.parametrize("distinct", [50, 1000, 4000])
def bench_decode_wildcard_content(benchmark, distinct):
    """Schema-less content, as a peer may put in a Signature's Object: time per byte must not
    grow with the number of distinct names (built-in grammars learn one production per new
    name; the tables are kept so that neither direction searches them)."""
    msg = exi.from_xml(_wildcard_document(distinct), "xmldsig")
    data = exi.encode(msg)
    benchmark.group = "wildcard content, 4,000 undeclared elements"
    benchmark.name = f"decode, {distinct} distinct names, {len(data)} B [{IMPL}]"
    assert exi.encode(benchmark(exi.decode, data, "xmldsig")) == data


@pytest.mark.parametrize("distinct", [50, 1000, 4000])
def bench_encode_wildcard_content(benchmark, distinct):
    msg = exi.from_xml(_wildcard_document(distinct), "xmldsig")
    benchmark.group = "wildcard content, 4,000 undeclared elements"
    benchmark.name = f"encode, {distinct} distinct names [{IMPL}]"
    data = benchmark(exi.encode, msg)
    assert exi.decode(data, "xmldsig") is not None
