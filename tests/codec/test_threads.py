"""The codec keeps a spare decoder and encoder for reuse: threads decoding and encoding
different messages at the same time must still each get their own results."""
from __future__ import annotations

import sys
import threading

import exi

from ._support import load_subset


def test_threads_decode_and_encode_independently():
    vectors = [v for v in load_subset() if v.reencodes][:40]
    assert len(vectors) >= 10
    expected = [(v.data, v.schema, exi.to_dict(exi.decode(v.data, v.schema))) for v in vectors]
    errors = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads as often as possible
    try:
        def work(k):
            try:
                for i in range(300):
                    data, sid, d = expected[(i * 7 + k) % len(expected)]
                    msg = exi.decode(data, sid)
                    if exi.to_dict(msg) != d or exi.encode(msg, validate=False) != data:
                        errors.append((k, i, sid))
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append((k, repr(e)))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


def test_a_failed_decode_leaves_the_next_one_intact():
    v = next(v for v in load_subset() if v.reencodes and v.schema == "din")
    failed = 0
    for cut in (1, 2, len(v.data) // 2, len(v.data) - 1):
        try:
            exi.decode(v.data[:cut], "din")
        except exi.DecodeError:
            failed += 1
        assert exi.encode(exi.decode(v.data, "din"), validate=False) == v.data
    assert failed >= 2          # the short prefixes cannot decode: the spare was abandoned mid-way
