"""The SECC under faults at full scale (issue 15 item 4): tests/v2g/test_netns_faults.py
with every attack at its full size and the standard's timeouts.

    python benchmarks/bench_secc_faults.py [--scale 1.0] [--sequence-timeout 60]

50 good sessions (DIN DC, -2 DC and AC, every tenth over TLS) run while the same SECC gets
200 connections that never send, garbage, 4 GB V2GTP headers, half frames, 5,000 rapid
connects and disconnects, 5,000 SDP datagrams, stalled TLS handshakes, pipelining
clients that never read and SessionSetupReqs with a 60,000-byte EVCCID.  Prints what
each attack saw, the faults the SECC counted, its log volume and its resident memory.
Needs root (network namespaces).  The silent connections last the whole
V2G_SECC_Sequence_Timeout (60 s).
"""
from __future__ import annotations

import argparse
import json
import os
import select
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(scale: float, sequence_timeout: float, handshake_timeout: float) -> dict:
    sys.path.append(str(ROOT))
    from exi.v2g.pki import create_pki, write_pki
    from tests.netns import NetnsPair
    pki = Path(tempfile.mkdtemp(prefix="faults-pki-"))
    write_pki(create_pki("iso2"), pki)
    env = dict(os.environ, PYTHONPATH=str(ROOT), EXI_REQUIRE_EXTENSIONS="1")
    common = ["--pki", str(pki), "--sequence-timeout", str(sequence_timeout),
              "--handshake-timeout", str(handshake_timeout)]
    with NetnsPair() as pair:
        secc = pair.popen("secc", [sys.executable, "-m", "tests.v2g._faults", "secc",
                                   "--iface", pair.iface["secc"], *common], cwd=str(ROOT), env=env)
        ready, _, _ = select.select([secc.stdout], [], [], 60)
        if not ready:
            raise SystemExit(secc.stderr.read())
        info = json.loads(secc.stdout.readline())
        t0 = time.monotonic()
        load = pair.run("evcc", [sys.executable, "-m", "tests.v2g._faults", "load",
                                 "--iface", pair.iface["evcc"], *common,
                                 "--host", f"{pair.link_local('secc')}%{pair.iface['evcc']}",
                                 "--tcp-port", str(info["tcp_port"]),
                                 "--tls-port", str(info["tls_port"]), "--scale", str(scale)],
                        cwd=str(ROOT), env=env, timeout=sequence_timeout * 3 + 600)
        if load.returncode != 0:
            raise SystemExit(load.stderr[-3000:])
        res = json.loads(load.stdout.strip().splitlines()[-1])
        out, _ = secc.communicate("", timeout=60)
        summary = json.loads(out.strip().splitlines()[-1])
    res["wall_s"] = round(time.monotonic() - t0, 1)
    summary["rss_ready_kib"] = info["rss"]["VmRSS"]
    summary["warnings"] = summary["warnings"][:12]
    return {"load": res, "secc": summary}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--sequence-timeout", type=float, default=60.0)
    p.add_argument("--handshake-timeout", type=float, default=10.0)
    a = p.parse_args(argv)
    print(json.dumps(run(a.scale, a.sequence_timeout, a.handshake_timeout), indent=1))
    return 0


def bench_secc_faults(benchmark):
    """pytest-benchmark wrapper: full scale, the figures go to extra_info."""
    r = benchmark.pedantic(lambda: run(1.0, 60.0, 10.0), rounds=1, iterations=1)
    benchmark.extra_info.update(r)
    assert r["load"]["good"]["ok"] == 50


if __name__ == "__main__":
    sys.exit(main())
