"""ns per call, measured the way the C codecs' benchmarks measure: calibrated loops.

    python benchmarks/calibrated.py               # the table: ours, and the ratios to the C codecs
    python benchmarks/calibrated.py --markdown    # the same, as the README's table
    python benchmarks/calibrated.py --rounds 3 --target 0.05    # quicker, noisier

For every message of benchmarks/messages.py (the exact streams of bench_codec.py): find
the number of iterations a loop needs to take about --target seconds, then time --rounds
such loops and keep the best; ns per call = best loop time / iterations.  The clock is
the process's CPU time by default, so that other work on a shared machine does not count.  The loop is
timeit's (a compiled `for` around `decode(data, sid)` / `encode(msg)`), so the figure
includes the Python call itself, as a C benchmark's includes its function call.

The C figures are OpenV2G (C, -O2) and EVerest libcbv2g measured with this method on this
machine kind (issue 13); libcbv2g has per-message figures only for the two large messages
(on small ones it takes 1.6-2.3x OpenV2G).  Speed is measured here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import exi  # noqa: E402
from messages import all_messages  # noqa: E402

# message label prefix -> (encode ns, decode ns)
OPENV2G = {
    "ISO2 SessionSetupReq": (54, 60),
    "DIN SessionSetupReq": (67, 72),
    "DIN CurrentDemandReq": (282, 312),
    "ISO2 CurrentDemandReq": (283, 319),
    "ISO2 CurrentDemandRes": (339, 423),
    "ISO2 ChargeParameterDiscoveryRes (63 B)": (392, 445),
    "ISO2 ChargeParameterDiscoveryRes (3x24 + tariffs)": (9983, 14579),
    "SAP supportedAppProtocolReq (3 protocols)": (372, 487),
    "ISO2 CertificateInstallationRes (175 B)": (500, 687),
    "ISO2 CertificateInstallationRes (3.7 kB)": (9064, 10342),
}
LIBCBV2G = {
    "ISO2 ChargeParameterDiscoveryRes (3x24 + tariffs)": (18200, 19800),
    "ISO2 CertificateInstallationRes (3.7 kB)": (23300, 36600),
}


def _lookup(table: dict, label: str):
    for prefix, v in table.items():
        if label.startswith(prefix):
            return v
    return None


def ns_per_call(stmt: str, env: dict, target: float, rounds: int, clock=time.process_time) -> float:
    timer = timeit.Timer(stmt, globals=env, timer=clock)
    n = 1
    while True:                         # calibrate: iterations for about `target` seconds
        t = timer.timeit(n)
        if t >= target / 4:
            n = max(1, int(n * target / t))
            break
        n *= 4
    return min(timer.repeat(rounds, n)) / n * 1e9


def measure(target: float, rounds: int, only: str = "", clock=time.process_time) -> list:
    rows = []
    for label, (sid, data, msg) in all_messages().items():
        if only and only not in label:
            continue
        validate = True
        try:
            exi.encode(msg)
        except exi.EncodeError:
            validate = False        # the 175 B sample carries an over-long eMAID, as captured
        assert exi.encode(msg, validate=validate) == data
        env = {"decode": exi.decode, "encode": exi.encode, "data": data, "sid": sid, "msg": msg}
        enc = ns_per_call("encode(msg)" if validate else "encode(msg, validate=False)", env, target, rounds, clock)
        dec = ns_per_call("decode(data, sid)", env, target, rounds, clock)
        rows.append((label, len(data), enc, dec))
    return rows


def _ratio(ours: float, theirs) -> str:
    return f"{ours / theirs:.2f}" if theirs else "–"


def table(rows, markdown: bool) -> str:
    head = ("message", "bytes", "encode ns", "decode ns", "× OpenV2G enc", "× OpenV2G dec",
            "× libcbv2g enc", "× libcbv2g dec")
    lines = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "---:|" * (len(head) - 1))
    else:
        lines.append(f"{head[0]:<58}" + "".join(f"{h:>15}" for h in head[1:]))
    for label, size, enc, dec in rows:
        o = _lookup(OPENV2G, label) or (None, None)
        c = _lookup(LIBCBV2G, label) or (None, None)
        cells = (str(size), f"{enc:,.0f}", f"{dec:,.0f}", _ratio(enc, o[0]), _ratio(dec, o[1]),
                 _ratio(enc, c[0]), _ratio(dec, c[1]))
        if markdown:
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{label:<58}" + "".join(f"{x:>15}" for x in cells))
    return "\n".join(lines)


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--target", type=float, default=0.2, help="seconds per timed loop")
    ap.add_argument("--only", default="", help="messages whose label contains this")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this process's CPU time (other load on a shared machine does not "
                         "count; the default), wall: elapsed time")
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"exi15118 {exi.__version__} [{exi._impl.IMPLEMENTATION}], best of {args.rounds} "
          f"loops of ~{args.target} s ({args.clock} time), {os.cpu_count()} CPUs, "
          f"load average {_load()} before", file=sys.stderr)
    rows = measure(args.target, args.rounds, args.only, clock)
    print(table(rows, args.markdown))
    print(f"load average {_load()} after (other processes share the caches and cores: "
          "figures taken under load are higher)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
