"""TLS refusals, both sides, in one process per namespace (tests/v2g/test_netns_tls_refusals.py).

    python -m tests.v2g._tls_matrix secc --iface IF --cases FILE.json
    python -m tests.v2g._tls_matrix evcc --iface IF --host H --cases FILE.json --ports JSON

Each case is one SECC server with its own certificate chain and trust (the SECC side of
the case), and one EVCC connection with its own trust and vehicle chain.  ``secc``
prints the ports, then on stdin EOF the WARNING lines each server logged; ``evcc``
prints, per case, whether the connection was established and else the error.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import sys

from exi.v2g import tls, transport
from exi.v2g.faults import FaultLog


class Echo:
    def frame_received(self, frame, now):
        return [frame]


async def run_secc(a) -> None:
    cases = json.loads(open(a.cases).read())
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    servers = {}
    for c in cases:
        ctx = tls.secc_context(c["profile"], c["secc_cert"], c["secc_key"],
                               trust=c.get("secc_trust"))
        servers[c["name"]] = await transport.start_secc_server(
            lambda info: Echo(), a.iface, ssl=ctx, tls_profile=c["profile"],
            faults=FaultLog(logging.getLogger(f"case.{c['name']}")))
    print(json.dumps({name: s.port for name, s in servers.items()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for s in servers.values():
        await s.close()
    lines = buffer.getvalue().splitlines()
    print(json.dumps({name: [ln for ln in lines if f" case.{name}:" in ln] for name in servers}),
          flush=True)


async def run_evcc(a) -> None:
    cases = json.loads(open(a.cases).read())
    ports = json.loads(a.ports)
    out = {}
    for c in cases:
        try:
            ctx = tls.evcc_context(c["profile"], c["evcc_trust"], certfile=c.get("evcc_cert"),
                                   keyfile=c.get("evcc_key"))
            conn = await transport.connect_evcc(a.host, ports[c["name"]], interface=a.iface,
                                                ssl=ctx, tls_profile=c["profile"], timeout=5)
            # A refused vehicle certificate (-20) ends the connection right after the
            # handshake: an echo tells established sessions from refused ones.
            await conn.send(0x8001, b"ping")
            await conn.receive(timeout=5)
            await conn.close()
            out[c["name"]] = {"ok": True}
        except Exception as e:                  # noqa: BLE001 - reported to the test
            out[c["name"]] = {"ok": False, "error": type(e).__name__, "message": str(e)}
    print(json.dumps(out), flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="tests.v2g._tls_matrix")
    p.add_argument("cmd", choices=("secc", "evcc"))
    p.add_argument("--iface", required=True)
    p.add_argument("--cases", required=True)
    p.add_argument("--host")
    p.add_argument("--ports")
    a = p.parse_args(argv)
    asyncio.run(run_secc(a) if a.cmd == "secc" else run_evcc(a))


if __name__ == "__main__":
    main()
