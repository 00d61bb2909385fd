"""What the shared -2/-20 TLS port costs: TLS handshake times against an SECC transport with
one TLS context (a port of one profile) and with both (exi.v2g.transport peeks at each
ClientHello to choose, see exi.v2g.clienthello).

    python benchmarks/bench_tls_shared_port.py [--n 200]

The server (exi.v2g.transport.start_secc_server, a handler that answers nothing) runs in
one network namespace, the client in the other (tests/netns.py; root needed); the client
makes ``--n`` sequential connections per case, each a full handshake (no resumption) and
one V2GTP header written, and reports the handshake time (connect() done -> handshake
done) p50/p90/max per case, in ms.  Cases: -2 client (TLS 1.2, P-256) against a -2 port
and against the shared port; -20 client (TLS 1.3, P-521, vehicle certificate) against a
-20 port and against the shared port.  Figures depend on the machine: compare the rows.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _serve(pki: str, profiles: list[str], interface: str) -> None:
    from exi.v2g import transport
    from exi.v2g.session.drivers import secc_tls_contexts

    class Quiet:
        def frame_received(self, frame, now):
            return None

    async def main():
        ctxs = secc_tls_contexts(pki, profiles=tuple(profiles))
        server = await transport.start_secc_server(lambda info: Quiet(), interface, ssl=ctxs)
        print(json.dumps({"port": server.port}), flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())


def _connect(pki: str, profile: str, host: str, port: int, n: int) -> None:
    from exi.v2g.session.drivers import evcc_tls_context
    ctx = evcc_tls_context(pki, profile=profile)
    times = []
    for _ in range(n):
        raw = socket.create_connection((host, port), timeout=10)
        t0 = time.perf_counter()
        s = ctx.wrap_socket(raw)            # handshake
        if profile == "iso20":
            s.sendall(bytes.fromhex("01fe800100000000"))   # TLS 1.3: the server reads the client cert
        times.append(time.perf_counter() - t0)
        version = s.version()
        s.close()
    times.sort()
    print(json.dumps({"version": version, "p50": statistics.median(times) * 1000,
                      "p90": times[int(len(times) * 0.9)] * 1000, "max": times[-1] * 1000}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--serve", nargs=3, metavar=("PKI", "PROFILES", "IFACE"), help=argparse.SUPPRESS)
    ap.add_argument("--connect", nargs=4, metavar=("PKI", "PROFILE", "HOST", "PORT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        _serve(a.serve[0], a.serve[1].split(","), a.serve[2])
        return 0
    if a.connect:
        _connect(a.connect[0], a.connect[1], a.connect[2], int(a.connect[3]), a.n)
        return 0
    from exi.v2g.pki import create_pki, write_pkis
    from tests.netns import NetnsPair, missing_prerequisites
    problem = missing_prerequisites()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    me = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as d, NetnsPair() as pair:
        write_pkis([create_pki("iso2"), create_pki("iso20")], d)
        host = f"{pair.link_local('secc')}%{pair.iface['evcc']}"
        rows = []
        for client, served in (("iso2", "iso2"), ("iso2", "iso2,iso20"), ("iso20", "iso20"), ("iso20", "iso2,iso20")):
            server = pair.popen("secc", [sys.executable, me, "--serve", d, served, pair.iface["secc"]],
                                stdout=-1, stderr=-1, text=True)
            try:
                ready, _, _ = select.select([server.stdout], [], [], 20)
                port = json.loads(server.stdout.readline())["port"]
                r = pair.run("evcc", [sys.executable, me, "--n", str(a.n), "--connect", d, client, host, str(port)],
                             timeout=600)
                if r.returncode:
                    print(r.stderr, file=sys.stderr)
                    return 1
                res = json.loads(r.stdout.strip().splitlines()[-1])
                rows.append((client, served, res))
            finally:
                server.terminate()
                server.wait(10)
        print(f"TLS handshakes, {a.n} per case, ms (connect done -> handshake done)")
        print(f"{'client':<8} {'port serves':<12} {'version':<8} {'p50':>7} {'p90':>7} {'max':>7}")
        for client, served, res in rows:
            print(f"{client:<8} {served:<12} {res['version']:<8} {res['p50']:7.2f} {res['p90']:7.2f} {res['max']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
