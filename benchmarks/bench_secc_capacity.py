"""SECC capacity: one `exi15118 secc` process serving N simulated EVs at once over real TCP,
in the ISO 15118-2 DC CurrentDemand loop (``--mode dc``) or AC ChargingStatus loop
(``--mode ac``), or the ISO 15118-20 DC_ChargeLoop in dynamic control (``--protocol
iso20``; over plain TCP with the test option ``--iso20-plain-tcp``: the load is the point).

    python benchmarks/bench_secc_capacity.py [--n 200,500,1000] [--mode dc] [--seconds 10]
    python benchmarks/bench_secc_capacity.py --protocol iso20 [--n ...]
    python benchmarks/bench_secc_capacity.py --pure      # the uncompiled build, on purpose
    python benchmarks/bench_secc_capacity.py --baseline DIR   # A/B against another checkout
    python benchmarks/bench_secc_capacity.py --loop uvloop    # the SECC on uvloop (the [fast] extra)
    python -m pytest benchmarks/bench_secc_capacity.py -s      # pytest-benchmark wrapper

The SECC runs in one network namespace pinned to CPU 0, the EVs in ``--procs`` load
processes in another pinned to CPU 1 (tests/netns.py; root needed).  Each EV runs a whole
session (SDP skipped) with the real EVCC core up to its first loop request, then sends
that request again every ``--interval`` s (0.1) and checks each response (_Replay: the
load must not be the bottleneck; its CPU share is reported).

Which build: the compiled codec is required (EXI_REQUIRE_EXTENSIONS=1 in every process,
and the SECC process is checked to have the compiled engine mapped); ``--pure`` measures
the uncompiled build and says so.  The package is imported as installed, not from the
checkout: run ``pip install -e .`` (or ``pip install .``) first.  ``--baseline DIR`` also
runs the SECC from the checkout DIR (built in place: ``pip install -e .`` there, or its
``.so`` files copied in), interleaved with the installed one for each N, so both see the
same machine load; the rows then carry ``"secc": "baseline"`` / ``"installed"`` and the
table the ratio.

Reported per N, over the window in which every EV is in its loop (measured, not nominal):
loop messages/s, EV-side round trip p50/p99/max (request written to response read) and the share over the SECC performance
time (25 ms CurrentDemand, 1.5 s ChargingStatus), the SECC's CPU share of its core,
its resident memory per EV, its own worst processing time and late count, and the load
processes' CPU (a load near 100 % of its core would make the figures its own).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
LOOP_REQ = {("iso2", "dc"): "CurrentDemandReq", ("iso2", "ac"): "ChargingStatusReq",
            ("iso20", "dc"): "DC_ChargeLoopReq", ("iso20", "ac"): "AC_ChargeLoopReq"}
# SECC performance time of the loop request (timers.py: -2 Table 109; -20 Tables 215-218)
PERF_TIME = {("iso2", "dc"): 0.025, ("iso2", "ac"): 1.5, ("iso20", "dc"): 0.25, ("iso20", "ac"): 0.25}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------
# load generator (runs inside the EV namespace)

class _Replay(asyncio.Protocol):
    """The charge loop of one EV once its session is set up: the EVCC core's first loop
    request (a real CurrentDemandReq/ChargingStatusReq with the session's SessionID) sent
    again every ``interval`` s at a fixed rate, each response checked (decoded, ResponseCode
    OK) and timed.  Cheap enough that one load process drives 1,000 EVs."""

    def __init__(self, transport, frame: bytes, res_name: str, interval: float, run: dict,
                 done: asyncio.Future, schema: str = "iso2"):
        import exi
        self.decode = exi.decode
        self.schema = schema
        self.transport = transport
        self.frame = frame
        self.res_name = res_name
        self.interval = interval
        self.run = run
        self.done = done
        self.buf = b""
        self.samples: list = []
        self.sent = 0.0
        self.loop = asyncio.get_running_loop()
        self.next_at = self.loop.time()

    def send(self) -> None:
        self.sent = time.monotonic()
        self.transport.write(self.frame)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) < 8 or len(self.buf) < 8 + int.from_bytes(self.buf[4:8], "big"):
            return
        now = time.monotonic()
        n = 8 + int.from_bytes(self.buf[4:8], "big")
        payload, self.buf = self.buf[8:n], self.buf[n:]
        msg = self.decode(payload, self.schema)
        body = getattr(msg.Body, self.res_name) if self.schema == "iso2" else msg
        code = getattr(body.ResponseCode, "value", body.ResponseCode)
        if code != "OK":
            self._finish(f"{self.res_name} {code}")
            return
        self.samples.append((self.sent, now - self.sent))
        if self.run["stop_at"] is not None and now >= self.run["stop_at"]:
            self._finish(None)
            return
        self.next_at += self.interval
        self.loop.call_at(max(self.next_at, self.loop.time()), self.send)

    def connection_lost(self, exc) -> None:
        self._finish(f"connection lost: {exc!r}")

    def _finish(self, error) -> None:
        if not self.done.done():
            self.done.set_result(error)
            self.transport.close()


def _in_loop(run: dict, seconds: float, entered: bool) -> None:
    """Count EVs into their loop (or out, failed); once all are in, loop ``seconds`` more."""
    run["in_loop" if entered else "failed"] += 1
    if run["stop_at"] is None and run["in_loop"] + run["failed"] >= run["sessions"]:
        run["stop_at"] = time.monotonic() + seconds


async def _ev(args, run: dict, samples_out: list) -> str | None:
    """One EV: the real EVCC core up to its first loop request, then _Replay."""
    from exi.v2g import transport
    from exi.v2g.session import EVCCConfig, SimulatedEV
    from exi.v2g.session.evcc import EVCCSession
    from exi.v2g.session.events import Send
    loop = asyncio.get_running_loop()
    req_name = LOOP_REQ[args.protocol, args.mode]
    if args.protocol == "iso20":
        cfg = EVCCConfig(protocols=("iso20",), mode=args.mode, control="dynamic", iso20_plain_tcp=True,
                         loop_interval=args.interval)
    else:
        cfg = EVCCConfig(protocols=("iso2",), mode=args.mode, loop_interval=args.interval)
    core = EVCCSession(cfg, SimulatedEV(), name="ev")
    conn = await transport.connect_evcc(args.host, args.port, interface=args.iface, timeout=30)
    out = core.start(loop.time())
    while True:
        sends = [o for o in out if isinstance(o, Send)]
        if core.result is not None:
            await conn.close()
            _in_loop(run, args.seconds, False)
            return core.result.reason
        if any(s.name == req_name for s in sends):
            frame = next(s for s in sends if s.name == req_name)
            break
        for s in sends:
            await conn.send(s.payload_type, s.payload)
        if not sends:
            await asyncio.sleep(max(0.0, core.next_deadline() - loop.time()))
            out = core.handle_timer(loop.time())
            continue
        f = await conn.receive(timeout=10)
        out = core.receive(f.payload, loop.time(), f.payload_type)
    done = loop.create_future()
    tr = conn.writer.transport
    proto = _Replay(tr, transport.Frame(frame.payload_type, frame.payload).pack(),
                    req_name[:-3] + "Res", args.interval, run, done, frame.schema)
    tr.set_protocol(proto)
    _in_loop(run, args.seconds, True)
    proto.send()
    error = await done
    samples_out.append(proto.samples)
    return error


async def _load(args) -> dict:
    import gc
    import exi._impl
    gc.freeze()
    # The load's own collector pauses (its samples list grows by 10,000 tuples a second)
    # would be counted as SECC latency: a 10 s run needs no collection.
    gc.disable()
    per_ev: list[list] = []
    run = {"sessions": args.sessions, "in_loop": 0, "failed": 0, "stop_at": None}

    async def one(i: int):
        await asyncio.sleep(i * args.ramp / max(1, args.sessions))   # spread the setups
        try:
            return await _ev(args, run, per_ev)
        except Exception as e:                 # noqa: BLE001 - reported as a failed EV
            _in_loop(run, args.seconds, False)
            return repr(e)
    errors = [e for e in await asyncio.gather(*(one(i) for i in range(args.sessions))) if e]
    return {"sessions": args.sessions, "failed": len(errors), "reasons": errors[:3],
            "build": exi._impl.IMPLEMENTATION, "samples": per_ev}


def load_main(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iface"), p.add_argument("--host"), p.add_argument("--port", type=int)
    p.add_argument("--sessions", type=int), p.add_argument("--seconds", type=float)
    p.add_argument("--interval", type=float), p.add_argument("--ramp", type=float)
    p.add_argument("--mode"), p.add_argument("--protocol", default="iso2")
    args = p.parse_args(argv)
    print(json.dumps(asyncio.run(_load(args))), flush=True)


# ---------------------------------------------------------------------------------------
# orchestration

def _cpu_rss(pid: int) -> tuple[float, int, float]:
    """(CPU seconds used, resident KiB, CPU seconds in the kernel) of a process and its
    children (--workers)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    kernel = int(fields[12]) / CLK_TCK
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            c, r, k = _cpu_rss(int(child))
        except (OSError, StopIteration):
            continue
        cpu, rss, kernel = cpu + c, rss + r, kernel + k
    return cpu, rss, kernel


class _Sampler(threading.Thread):
    """CPU and RSS of some processes every 0.2 s, with CLOCK_MONOTONIC stamps."""

    def __init__(self, pids: dict):
        super().__init__(daemon=True)
        self.pids = pids
        self.rows: list[tuple] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            row = [time.monotonic()]
            for pid in self.pids.values():
                try:
                    row.append(_cpu_rss(pid))
                except (OSError, StopIteration):
                    row.append((float("nan"), 0, float("nan")))
            self.rows.append(tuple(row))

    def between(self, t0: float, t1: float, k: int) -> tuple[float, int, float]:
        """CPU share (of one core), peak RSS and kernel CPU share of process k in [t0, t1]."""
        rows = [r for r in self.rows if t0 <= r[0] <= t1]
        if len(rows) < 2:
            return float("nan"), 0, float("nan")
        span = rows[-1][0] - rows[0][0]
        cpu = (rows[-1][k + 1][0] - rows[0][k + 1][0]) / span
        kernel = (rows[-1][k + 1][2] - rows[0][k + 1][2]) / span
        return cpu, max(r[k + 1][1] for r in rows), kernel


NICE = 0
LOOP: Optional[str] = None


def _pinned(cpu: Optional[int], argv: list) -> list:
    pin = ["taskset", "-c", str(cpu)] if cpu is not None and (os.cpu_count() or 1) > 1 else []
    return (["nice", "-n", str(NICE)] if NICE else []) + pin + argv


def _start(pair, side: str, argv: list, **kw):
    """Each measured process in a session of its own; with --nice, that session's
    scheduler autogroup gets the niceness too (with autogroups, a process's nice only
    ranks it inside its session, so on a shared machine it would not help)."""
    proc = pair.popen(side, argv, start_new_session=True, **kw)
    if NICE:
        try:
            Path(f"/proc/{proc.pid}/autogroup").write_text(str(NICE))
        except OSError:
            pass
    return proc


def measure(pair, n: int, seconds: float, procs: int, interval: float, mode: str,
            pure: bool, extra_secc_args=(), profile=None, protocol: str = "iso2",
            secc_path: Optional[str] = None) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("EXI_NO_EXTENSIONS" if not pure else "EXI_REQUIRE_EXTENSIONS", None)
    env["EXI_NO_EXTENSIONS" if pure else "EXI_REQUIRE_EXTENSIONS"] = "1"
    secc_env = dict(env, PYTHONPATH=secc_path) if secc_path else env
    protocol_args = ["--protocols", "iso20", "--iso20-plain-tcp"] if protocol == "iso20" else ["--protocols", "iso2"]
    cwd = tempfile.mkdtemp(prefix="secc-capacity-")       # not the checkout: the installed exi
    # CPU time, not wall time: on a shared machine the SECC also waits for the CPU.
    prof = ["-c", "import cProfile, sys, time; from exi.cli.__main__ import main; "
            "p = cProfile.Profile(time.process_time); p.runcall(main, sys.argv[2:]); "
            "p.dump_stats(sys.argv[1])", str(profile)] if profile else ["-m", "exi"]
    # --loop goes to the installed SECC only (a baseline checkout may not know it)
    loop_args = ["--loop", LOOP] if LOOP and not secc_path else []
    workers = int(extra_secc_args[extra_secc_args.index("--workers") + 1]) \
        if "--workers" in extra_secc_args else 1
    secc = _start(pair, "secc", _pinned(0 if workers == 1 else None, [sys.executable, *prof, "secc", "-i", pair.iface["secc"],
                                          *protocol_args, "--log-level", "WARNING",
                                          *loop_args, *extra_secc_args]), cwd=cwd, env=secc_env)
    ready, _, _ = select.select([secc.stdout], [], [], 30)
    info = json.loads(secc.stdout.readline()) if ready else None
    if not info:
        raise RuntimeError(f"SECC did not start: {secc.stderr.read()}")
    maps = Path(f"/proc/{secc.pid}/maps").read_text()
    secc_build = "compiled" if "_engine.cpython" in maps else "python"
    if secc_build != ("python" if pure else "compiled"):
        raise RuntimeError(f"the SECC runs the {secc_build} build; expected the other one")
    engine = next((ln.split()[-1] for ln in maps.splitlines() if "_engine.cpython" in ln), "")
    if secc_path and not engine.startswith(str(Path(secc_path).resolve())):
        raise RuntimeError(f"the baseline SECC runs {engine}, not the build in {secc_path}")
    for _ in range(100):                       # the workers are up once they listen
        if len(Path(f"/proc/{secc.pid}/task/{secc.pid}/children").read_text().split()) >= workers - 1:
            break
        time.sleep(0.1)
    time.sleep(1.0 if workers > 1 else 0)
    host = pair.link_local("secc")
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    ramp = min(5.0, n * 0.005)
    loads = [_start(pair, "evcc", _pinned(1, [sys.executable, __file__, "load", "--iface", pair.iface["evcc"],
                                            "--host", host, "--port", str(info["tcp_port"]),
                                            "--sessions", str(k), "--seconds", str(seconds),
                                            "--interval", str(interval), "--ramp", str(ramp),
                                            "--mode", mode, "--protocol", protocol]), cwd=cwd, env=env)
             for k in per if k]
    sampler = _Sampler({"secc": secc.pid, **{f"load{i}": lp.pid for i, lp in enumerate(loads)}})
    sampler.start()
    idle_rss = _cpu_rss(secc.pid)[1]
    outs = []
    for lp in loads:
        out, err = lp.communicate(timeout=seconds * 4 + 180)
        if lp.returncode != 0:
            raise RuntimeError(f"load process failed: {err[-2000:]}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    sampler.stop.set()
    secc.terminate()
    sout, serr = secc.communicate(timeout=30)
    stats = json.loads(sout.strip().splitlines()[-1])
    evs = [s for o in outs for s in o["samples"] if s]
    # The window in which every EV is in its loop.
    t0 = max(s[0][0] for s in evs) if evs else 0.0
    t1 = min(s[-1][0] for s in evs) if evs else 0.0
    window = [rtt for s in evs for (t, rtt) in s if t0 <= t <= t1]
    rtt = sorted(window)
    span = t1 - t0
    q = (lambda f: round(rtt[min(len(rtt) - 1, int(f * len(rtt)))] * 1000, 2)) if rtt else (lambda f: None)
    cpu, peak_rss, kernel = sampler.between(t0, t1, 0)
    load_cpu = [round(sampler.between(t0, t1, 1 + i)[0] * 100, 1) for i in range(len(loads))]
    row = {"n": n, "protocol": protocol, "mode": mode, "workers": workers, "build": secc_build,
           "loop": "uvloop" if "uvloop" in maps else "asyncio",
           "secc": "baseline" if secc_path else "installed", "window_s": round(span, 2),
           "msgs_per_s": round(len(rtt) / span, 1) if span > 0 else None,
           "failed": sum(o["failed"] for o in outs),
           "reasons": [r for o in outs for r in o["reasons"]][:3],
           "rtt_p50_ms": q(0.5), "rtt_p99_ms": q(0.99), "rtt_max_ms": q(1.0),
           "late_pct": round(100 * sum(x > PERF_TIME[protocol, mode] for x in rtt) / len(rtt), 2) if rtt else None,
           "secc_cpu_pct": round(cpu * 100, 1),
           "secc_kernel_pct": round(kernel * 100, 1),       # of it in the kernel (sockets, TCP)
           "secc_rss_mib": round(peak_rss / 1024, 1),
           # SECC CPU per loop message (all its work: transport, core, codec, EVSE simulation)
           "secc_us_per_msg": round(cpu * span / len(rtt) * 1e6, 1) if rtt and span > 0 else None,
           "rss_per_ev_kib": round((peak_rss - idle_rss) / n, 1),
           "secc_worst_ms": stats["worst_ms"], "secc_late": stats["late"],
           "load_cpu_pct": load_cpu}
    row["held"] = row["failed"] == 0 and row["late_pct"] == 0
    return row


def run(ns_list, seconds=10.0, procs=1, interval=0.1, mode="dc", pure=False,
        extra_secc_args=(), profile=None, protocol="iso2", baseline: Optional[str] = None) -> list[dict]:
    sys.path.append(str(ROOT))                 # tests.netns only; exi comes as installed
    from tests.netns import NetnsPair, missing_prerequisites
    problem = missing_prerequisites()
    if problem:
        raise SystemExit(problem)
    check = subprocess.run([sys.executable, "-c", "import exi._impl as i, exi; print(i.IMPLEMENTATION, exi.__file__)"],
                           capture_output=True, text=True, cwd=tempfile.gettempdir(),
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    build = check.stdout.split()[0] if check.returncode == 0 else None
    if not pure and build != "compiled":
        raise SystemExit(f"the installed exi is not compiled ({check.stdout.strip() or check.stderr.strip()}):"
                         " run `pip install -e .` first, or pass --pure to measure the pure build")
    print(f"# exi build: {'python (--pure)' if pure else build}, {check.stdout.split()[-1]}", flush=True)
    rows = []
    with NetnsPair() as pair:
        for n in ns_list:
            for secc_path in ([str(Path(baseline).resolve())] if baseline else []) + [None]:
                row = measure(pair, n, seconds, procs, interval, mode, pure, extra_secc_args,
                              profile and Path(profile).resolve().with_suffix(f".{n}.prof"),
                              protocol, secc_path)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "load":
        load_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default="200,500,1000", help="EV counts to try (comma list)")
    p.add_argument("--mode", choices=("dc", "ac"), default="dc")
    p.add_argument("--protocol", choices=("iso2", "iso20"), default="iso2",
                   help="iso20: -20 DC/AC_ChargeLoop in dynamic control over plain TCP")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run the SECC from checkout DIR (built in place), interleaved, for ratios")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="how long all EVs loop together (after the last one got there)")
    p.add_argument("--procs", type=int, default=1, help="load processes (all on CPU 1)")
    p.add_argument("--interval", type=float, default=0.1, help="s between loop requests per EV")
    p.add_argument("--pure", action="store_true", help="measure the uncompiled build")
    p.add_argument("--loop", choices=("uvloop", "asyncio"),
                   help="the installed SECC's event loop (exi15118 secc --loop; default asyncio)")
    p.add_argument("--workers", type=int, default=1,
                   help="SECC processes (exi15118 secc --workers; not pinned then)")
    p.add_argument("--profile", metavar="PATH", help="run the SECC under cProfile (PATH.N.prof)")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness of the SECC and load processes (e.g. -10 on a shared machine)")
    a = p.parse_args(argv)
    global NICE, LOOP
    NICE = a.nice
    LOOP = a.loop
    rows = run([int(x) for x in a.n.split(",")], a.seconds, a.procs, a.interval, a.mode, a.pure,
               extra_secc_args=("--workers", str(a.workers)) if a.workers > 1 else (),
               profile=a.profile, protocol=a.protocol, baseline=a.baseline)
    print(f"\n{'EVs':>5} {'SECC':>9} {'mode':>4} {'proc':>4} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'late %':>6} "
          f"{'SECC CPU %':>10} {'us/msg':>6} {'KiB/EV':>7} {'load CPU %':>10} failed")
    for r in rows:
        print(f"{r['n']:>5} {r['secc']:>9} {r['protocol'] + ' ' + r['mode']:>4} {r['workers']:>4} {r['msgs_per_s']:>8} {r['rtt_p50_ms']:>7} {r['rtt_p99_ms']:>7} "
              f"{r['rtt_max_ms']:>7} {r['late_pct']:>6} {r['secc_cpu_pct']:>10} {r['secc_us_per_msg']:>6} {r['rss_per_ev_kib']:>7} "
              f"{str(r['load_cpu_pct']):>10} {r['failed']}")
    if a.baseline:          # installed / baseline, per N, from the interleaved runs
        for base, new in zip(rows[0::2], rows[1::2]):
            if base["secc_us_per_msg"] and new["secc_us_per_msg"]:
                print(f"{new['n']:>5} SECC CPU per message installed/baseline: "
                      f"{new['secc_us_per_msg'] / base['secc_us_per_msg']:.2f}")
    return 0


def bench_secc_capacity(benchmark):
    """pytest-benchmark wrapper: one round at 200 EVs; the row goes to extra_info."""
    rows = benchmark.pedantic(lambda: run([200], seconds=5.0), rounds=1, iterations=1)
    benchmark.extra_info.update(rows[0])
    assert rows[0]["failed"] == 0


if __name__ == "__main__":
    sys.exit(main())
