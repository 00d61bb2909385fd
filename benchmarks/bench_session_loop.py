"""What one charge-loop message costs inside the session cores, in process (no I/O).

An EVCC and an SECC core run one long session through the in-memory pair
(``exi.v2g.session.testing.SessionPair``, fake clock); every call into a core that handled
a charge-loop message is timed: the SECC's ``receive`` of the loop request (decode, schema
check, sequence, handler, encode of the response) and the EVCC's ``receive`` of the loop
response plus the ``handle_timer`` that sends the next request.  Reports the median and
p99 per message, microseconds.

    python benchmarks/bench_session_loop.py [--loops 3000] [--case iso20_dc ...]

Runs the build ``exi`` imports (it says which).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import exi
from exi.v2g.session.evcc import EVCCConfig
from exi.v2g.session.events import MessageReceived
from exi.v2g.session.secc import SECCConfig
from exi.v2g.session.testing import SessionPair

# case -> (EVCC protocols, mode, control, loop request name)
CASES = {
    "iso2_dc": (("iso2",), "dc", "scheduled", "CurrentDemandReq"),
    "iso2_ac": (("iso2",), "ac", "scheduled", "ChargingStatusReq"),
    "iso20_dc": (("iso20",), "dc", "dynamic", "DC_ChargeLoopReq"),
    "iso20_ac": (("iso20",), "ac", "dynamic", "AC_ChargeLoopReq"),
}


def _timed(fn, samples: list, loop_names: set):
    def wrapper(*args, **kw):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        dt = time.perf_counter() - t0
        if any(isinstance(o, MessageReceived) and o.name in loop_names for o in out):
            samples.append(dt)
        return out
    return wrapper


def measure(case: str, loops: int = 3000) -> dict:
    protocols, mode, control, req = CASES[case]
    res = req[:-3] + "Res"
    pair = SessionPair(EVCCConfig(protocols=protocols, mode=mode, control=control, max_charge_loops=loops),
                       SECCConfig(protocols=protocols), tls_version="TLSv1.3")
    secc, evcc = [], []
    pair.secc.receive = _timed(pair.secc.receive, secc, {req})
    pair.evcc.receive = _timed(pair.evcc.receive, evcc, {res})
    # The EVCC sends the next loop request from its timer (loop_interval): counted with the
    # response that scheduled it.
    handle_timer = pair.evcc.handle_timer

    def timer(now):
        t0 = time.perf_counter()
        out = handle_timer(now)
        if evcc and pair.evcc._last_request == req:
            evcc[-1] += time.perf_counter() - t0
        return out
    pair.evcc.handle_timer = timer
    result = pair.run(max_steps=20 * loops + 1000)
    if not result.ok:
        raise RuntimeError(f"{case}: session failed: {result.reason}")

    def stats(xs):
        xs = sorted(xs[len(xs) // 10:])            # the first tenth warms up
        return {"median_us": round(statistics.median(xs) * 1e6, 1),
                "p99_us": round(xs[int(len(xs) * 0.99)] * 1e6, 1), "n": len(xs)}
    return {"case": case, "build": exi.IMPLEMENTATION,
            "secc": stats(secc), "evcc": stats(evcc)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loops", type=int, default=3000)
    p.add_argument("--case", action="append", choices=sorted(CASES))
    a = p.parse_args(argv)
    for case in a.case or list(CASES):
        print(json.dumps(measure(case, a.loops)), flush=True)
    return 0


def bench_iso20_dc_loop(benchmark):
    benchmark.pedantic(measure, args=("iso20_dc", 500), rounds=1, iterations=1)


if __name__ == "__main__":
    raise SystemExit(main())
