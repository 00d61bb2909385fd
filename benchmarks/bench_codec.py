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
