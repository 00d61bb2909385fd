"""ns per call, measured the way the C codecs' benchmarks measure: calibrated loops.

    python benchmarks/calibrated.py               # ours, and the ratios to issue 13's C figures
    python benchmarks/calibrated.py --markdown    # the same, as a Markdown table
    python benchmarks/calibrated.py --rounds 3 --target 0.05    # quicker, noisier
    python benchmarks/calibrated.py --peer OpenV2G=/path/libov.so --peer libcbv2g=/path/libcb.so
                                                  # side by side with C codecs, in alternation

For every message of benchmarks/messages.py (the exact streams of bench_codec.py): find
the number of iterations a loop needs to take about --target seconds, then time --rounds
such loops and keep the best; ns per call = best loop time / iterations.  The clock is
the process's CPU time by default, so that other work on a shared machine does not count.  The loop is
timeit's (a compiled `for` around `decode(data, sid)` / `encode(msg)`), so the figure
includes the Python call itself, as a C benchmark's includes its function call.

Without --peer the ratios are to the C figures of issue 13 (OpenV2G C -O2 and EVerest
libcbv2g, measured with this method on a machine of this kind in an earlier session; libcbv2g
has per-message figures only for the two large messages).  Machines of the same kind differ
by up to 2x in speed, and a shared VM's speed drifts within minutes, so a ratio to figures
taken elsewhere is only indicative.

--peer NAME=LIB measures a C codec in this process, in alternation with ours: each round
times one loop of ours, then one loop of each peer, for the same stream, so that both see
the machine in the same state.  LIB is a shared library (built by you, outside this
repository) that wraps the codec in two functions:

    int prep(int schema, const unsigned char *data, size_t len);
        /* schema 0 sap, 1 din, 2 iso2 (ISO 15118-2:2013), 3 iso20_dc: decode the stream once
           into the codec's document and encode that back; 0: the same bytes, 1: different
           bytes (timed, marked *), < 0: the codec cannot do this stream (not timed) */
    double loop(int op, size_t n);
        /* op 0: n decodes of the prepared stream, op 1: n encodes of the prepared document,
           each with what the codec's API needs per call (stream set-up included);
           returns the CPU seconds of the n calls */

The C figures then include no Python call and no allocation (the C codecs fill a static
struct); ours include both, and the freeing of the decoded objects.  Speed is measured
here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import ctypes
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
PEER_SCHEMAS = {"sap": 0, "din": 1, "iso2": 2, "iso20_dc": 3}
ENC, DEC = 1, 0


def _lookup(table: dict, label: str):
    for prefix, v in table.items():
        if label.startswith(prefix):
            return v
    return None


def _calibrate(run, target: float) -> int:
    """Iterations for a loop of about `target` seconds (run(n) -> seconds)."""
    n = 1
    while True:
        t = run(n)
        if t >= target / 4:
            return max(1, int(n * target / t))
        n *= 4


def ns_per_call(stmt: str, env: dict, target: float, rounds: int, clock=time.process_time) -> float:
    timer = timeit.Timer(stmt, globals=env, timer=clock)
    n = _calibrate(timer.timeit, target)
    return min(timer.repeat(rounds, n)) / n * 1e9


class Peer:
    """A C codec behind prep()/loop() (see the module docstring)."""

    def __init__(self, spec: str):
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--peer wants NAME=LIB, got {spec!r}")
        self.name = name
        lib = ctypes.CDLL(os.path.abspath(path))
        lib.prep.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        lib.prep.restype = ctypes.c_int
        lib.loop.argtypes = [ctypes.c_int, ctypes.c_size_t]
        lib.loop.restype = ctypes.c_double
        self.lib = lib

    def prep(self, sid: str, data: bytes) -> int:
        if sid not in PEER_SCHEMAS:
            return -1
        return self.lib.prep(PEER_SCHEMAS[sid], data, len(data))

    def runner(self, op: int):
        return lambda n: self.lib.loop(op, n)


def _our_runners(sid, data, msg, clock):
    validate = True
    try:
        exi.encode(msg)
    except exi.EncodeError:
        validate = False        # the 175 B sample carries an over-long eMAID, as captured
    assert exi.encode(msg, validate=validate) == data
    env = {"decode": exi.decode, "encode": exi.encode, "data": data, "sid": sid, "msg": msg}
    enc = timeit.Timer("encode(msg)" if validate else "encode(msg, validate=False)", globals=env, timer=clock)
    dec = timeit.Timer("decode(data, sid)", globals=env, timer=clock)
    return {ENC: enc.timeit, DEC: dec.timeit}


def measure(target: float, rounds: int, only: str = "", clock=time.process_time, peers=()) -> list:
    """Rows of (label, bytes, {codec: (enc ns, dec ns)}, {codec: note}); codec "ours" first."""
    rows = []
    for label, (sid, data, msg) in all_messages().items():
        if only and only not in label:
            continue
        runners = {"ours": _our_runners(sid, data, msg, clock)}
        notes = {}
        for p in peers:
            rc = p.prep(sid, data)
            if rc < 0:
                notes[p.name] = "cannot do this stream"
                continue
            if rc == 1:
                notes[p.name] = "its re-encoding differs from the stream"
            runners[p.name] = {ENC: p.runner(ENC), DEC: p.runner(DEC)}
        ns = {}
        for op in (ENC, DEC):
            n = {c: _calibrate(r[op], target) for c, r in runners.items()}
            best = dict.fromkeys(runners, float("inf"))
            for _ in range(rounds):             # one loop of each codec per round, in turn
                for c, r in runners.items():
                    best[c] = min(best[c], r[op](n[c]))
            for c in runners:
                ns.setdefault(c, [None, None])[0 if op == ENC else 1] = best[c] / n[c] * 1e9
        rows.append((label, len(data), {c: tuple(v) for c, v in ns.items()}, notes))
    return rows


def _ratio(ours: float, theirs) -> str:
    return f"{ours / theirs:.2f}" if theirs else "–"


def _ns(v) -> str:
    return f"{v:,.0f}" if v else "–"


def table(rows, markdown: bool, peers=()) -> str:
    if peers:
        names = [p.name for p in peers]
        head = ["message", "bytes", "encode ns", "decode ns"]
        for name in names:
            head += [f"{name} enc / dec ns", f"× {name} enc / dec"]
    else:
        names = []
        head = ["message", "bytes", "encode ns", "decode ns", "× OpenV2G enc / dec", "× libcbv2g enc / dec"]
    lines = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "---:|" * (len(head) - 1))
    else:
        lines.append(f"{head[0]:<58}" + "".join(f"{h:>24}" for h in head[1:]))
    for label, size, ns, notes in rows:
        enc, dec = ns["ours"]
        cells = [str(size), _ns(enc), _ns(dec)]
        if peers:
            for name in names:
                e, d = ns.get(name, (None, None))
                mark = "*" if name in notes and name in ns else ""
                cells += [f"{_ns(e)} / {_ns(d)}{mark}", f"{_ratio(enc, e)} / {_ratio(dec, d)}{mark}"]
        else:
            o = _lookup(OPENV2G, label) or (None, None)
            c = _lookup(LIBCBV2G, label) or (None, None)
            cells += [f"{_ratio(enc, o[0])} / {_ratio(dec, o[1])}", f"{_ratio(enc, c[0])} / {_ratio(dec, c[1])}"]
        if markdown:
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{label:<58}" + "".join(f"{x:>24}" for x in cells))
    foot = [f"{label}: {name}: {note}" for label, _, _, notes in rows for name, note in notes.items()]
    if foot:
        lines.append("")
        lines += [("- " if markdown else "  ") + f for f in foot]
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
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=LIB",
                    help="a C codec wrapped as a shared library (see above), timed in alternation "
                         "with ours; repeatable")
    args = ap.parse_args(argv)
    if args.peer and args.clock != "cpu":
        ap.error("--peer loops report CPU time: use --clock cpu")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    peers = [Peer(spec) for spec in args.peer]
    print(f"exi15118 {exi.__version__} [{exi._impl.IMPLEMENTATION}], best of {args.rounds} "
          f"loops of ~{args.target} s ({args.clock} time)"
          + (f", in alternation with {', '.join(p.name for p in peers)}" if peers else "")
          + f", {os.cpu_count()} CPUs, load average {_load()} before", file=sys.stderr)
    rows = measure(args.target, args.rounds, args.only, clock, peers)
    print(table(rows, args.markdown, peers))
    print(f"load average {_load()} after (other processes share the caches and cores: "
          "figures taken under load are higher)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
