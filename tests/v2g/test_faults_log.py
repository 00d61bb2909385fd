"""exi.v2g.faults: one line per fault, rate-limited per kind, one peer format."""
from __future__ import annotations

import logging

from exi.v2g.faults import FaultLog, peer_label


def test_peer_label_one_format():
    assert peer_label(("fe80::1%eth1", 50123, 0, 2)) == "[fe80::1%eth1]:50123"
    assert peer_label(("fe80::1", 15118, 0, 1)) == "[fe80::1%lo]:15118"     # recvfrom: scope as index
    assert peer_label(("2001:db8::1", 80, 0, 0)) == "[2001:db8::1]:80"
    assert peer_label(("192.0.2.1", 5)) == "192.0.2.1:5"
    assert peer_label(None) == "[?]"


def test_rate_limited_per_kind_with_a_summary(caplog):
    now = [0.0]
    faults = FaultLog(logging.getLogger("test.faults"), limit=3, period=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.faults"):
        for i in range(100):
            faults.report("garbage", ("fe80::1%lo", 1000 + i), f"bad byte {i}")
        faults.report("pipelined request", ("fe80::2%lo", 7), "request before response")
        now[0] = 10.5                     # next period: the held-back count comes first
        faults.report("garbage", ("fe80::1%lo", 2000), "bad byte again")
        faults.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "[fe80::1%lo]:1000 garbage: bad byte 0",
        "[fe80::1%lo]:1001 garbage: bad byte 1",
        "[fe80::1%lo]:1002 garbage: bad byte 2",
        "[fe80::2%lo]:7 pipelined request: request before response",
        "97 more garbage faults in 10 s (not logged one by one)",
        "[fe80::1%lo]:2000 garbage: bad byte again",
    ]
    assert faults.counts == {"garbage": 101, "pipelined request": 1}
