"""Small SECC/EVCC programs the network tests run inside network namespaces.

    python -m tests.v2g._peers secc --iface IF [--tls --profile iso2 --cert C --key K ...]
    python -m tests.v2g._peers evcc --iface IF (--discover | --host H --port P) [...]
    python -m tests.v2g._peers sdp-server --iface IF --tls-port N [--delay S]
    python -m tests.v2g._peers sdp-client --iface IF [--timeout S --max N]

Each prints JSON lines on stdout; long-running ones (secc, sdp-server) print a "ready"
line and run until their stdin is closed, then print a final summary line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from exi.v2g import sdp, tls, transport
from exi.v2g.v2gtp import Frame


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


async def stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


# ---------------------------------------------------------------------------------------
class EchoHandler:
    """Sans-I/O test handler: answers every frame with 'echo:' + payload."""

    def __init__(self, info: transport.ConnectionInfo, peers: list):
        self.info = info
        if info.peer_certificate is not None:
            peers.append(info.peer_certificate.subject.rfc4514_string())

    def frame_received(self, frame: Frame, now: float):
        if frame.payload == b"close":
            return [Frame(frame.payload_type, b"bye"), transport.CLOSE]
        return [Frame(frame.payload_type, b"echo:" + frame.payload)]


async def run_secc(a) -> None:
    ctx = None
    if a.tls:
        ctx = tls.secc_context(a.profile, a.cert, a.key, trust=a.trust or None, keylog=a.keylog)
    peers: list[str] = []
    server = await transport.start_secc_server(
        lambda info: EchoHandler(info, peers), a.iface, ssl=ctx,
        tls_profile=a.profile if a.tls else None, max_payload=a.max_payload,
        max_connections=a.max_connections)
    sdp_handle = None
    if a.sdp:
        kw = {"tls_port": server.port} if a.tls else {"tcp_port": server.port}
        sdp_handle = await sdp.serve_sdp(a.iface, **kw)
    emit(event="ready", port=server.port, address=str(server.address))
    await stdin_closed()
    if sdp_handle:
        sdp_handle.close()
    await server.close()
    emit(event="closed", reasons=server.closed_reasons, peers=peers)


async def run_sdp_server(a) -> None:
    await asyncio.sleep(a.delay)
    handle = await sdp.serve_sdp(a.iface, tls_port=a.tls_port, tcp_port=a.tcp_port)
    emit(event="ready")
    await stdin_closed()
    handle.close()
    emit(event="closed", answered=handle.core.answered, discarded=handle.core.discarded)


async def run_sdp_client(a) -> None:
    req = sdp.SDPRequest(sdp.Security.TLS if a.security == "tls" else sdp.Security.NONE)
    client = sdp.SDPClient(req, timeout=a.timeout, max_requests=a.max)
    t0 = time.monotonic()
    try:
        resp = await sdp.discover(a.iface, client=client)
    except sdp.SDPTimeout as e:
        emit(ok=False, error="SDPTimeout", requests=e.requests, elapsed=time.monotonic() - t0)
        return
    emit(ok=True, address=str(resp.address), port=resp.port, security=resp.security.name,
         transport=resp.transport.name, requests=client.requests_sent,
         elapsed=time.monotonic() - t0)


# ---------------------------------------------------------------------------------------
async def connect(a, host, port) -> transport.EVCCConnection:
    ctx = None
    if a.tls:
        ctx = tls.evcc_context(a.profile, a.trust, certfile=a.cert, keyfile=a.key,
                               keylog=a.keylog)
    return await transport.connect_evcc(host, port, interface=a.iface, ssl=ctx,
                                        tls_profile=a.profile if a.tls else None, timeout=5)


async def echo(conn: transport.EVCCConnection, payload_type: int, payload: bytes) -> str:
    await conn.send(payload_type, payload)
    f = await conn.receive(timeout=5)
    return f.payload.decode()


class PingHandler:
    """Sans-I/O EVCC handler: first frame on connect, the next ones from a timer,
    close after three answers.  Exercises EVCCConnection.run() and the timer path."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.deadline = None
        self.lost = None

    def connection_made(self, info, now):
        return [Frame(0x8001, b"ping0")]

    def frame_received(self, frame, now):
        self.answers.append(frame.payload.decode())
        if len(self.answers) == 3:
            return [transport.CLOSE]
        self.deadline = now + 0.1           # next ping in 100 ms
        return None

    def get_timer(self):
        return self.deadline

    def handle_timer(self, now):
        self.deadline = None
        return [(0x8001, f"ping{len(self.answers)}".encode())]

    def connection_lost(self, reason):
        self.lost = reason


async def run_evcc(a) -> None:
    host, port = a.host, a.port
    result: dict = {}
    try:
        if a.discover:
            req = sdp.SDPRequest(sdp.Security.TLS if a.tls else sdp.Security.NONE)
            resp = await sdp.discover(a.iface, req, timeout=0.25, max_requests=20)
            host, port = resp.host, resp.port
            result["discovered"] = {"host": host, "port": port, "security": resp.security.name}
        if a.scenario == "echo":
            async with await connect(a, host, port) as conn:
                result.update(tls_version=conn.info.tls_version, cipher=conn.info.cipher,
                              peer=(conn.info.peer_certificate.subject.rfc4514_string()
                                    if conn.info.peer_certificate is not None else None),
                              # None when the SECC already dropped us (-20 client auth)
                              peer_addr=list(conn.info.peer[:2]) if conn.info.peer else None)
                result["echo"] = [await echo(conn, 0x8001, b"hello"),
                                  await echo(conn, 0x8002, b"x" * 3000),
                                  await echo(conn, 0x8004, b"")]
                await conn.send(0x8001, b"close")
                result["last"] = (await conn.receive(timeout=5)).payload.decode()
                try:
                    await conn.receive(timeout=5)
                    result["closed_by_secc"] = False
                except transport.ConnectionClosed:
                    result["closed_by_secc"] = True
        elif a.scenario == "handler":
            conn = await connect(a, host, port)
            h = PingHandler()
            t0 = time.monotonic()
            result["reason"] = await conn.run(h)
            result.update(answers=h.answers, lost=h.lost, elapsed=time.monotonic() - t0)
        elif a.scenario == "oversize":
            good = await connect(a, host, port)
            bad = await connect(a, host, port)
            result["before"] = [await echo(good, 0x8001, b"g1"), await echo(bad, 0x8001, b"b1")]
            # A header announcing one byte more than the SECC buffers; no payload follows.
            oversize = (a.max_payload + 1).to_bytes(4, "big")
            await bad.send_raw(b"\x01\xfe\x80\x01" + oversize)
            try:
                await bad.receive(timeout=5)
                result["bad_closed"] = False
            except (transport.ConnectionClosed, ConnectionError):
                result["bad_closed"] = True
            result["after"] = await echo(good, 0x8001, b"g2")
            # A wrong inverse version on a third connection: also closed, alone.
            third = await connect(a, host, port)
            await third.send_raw(b"\x01\xff\x80\x01\x00\x00\x00\x00")
            try:
                await third.receive(timeout=5)
                result["bad_version_closed"] = False
            except (transport.ConnectionClosed, ConnectionError):
                result["bad_version_closed"] = True
            result["after2"] = await echo(good, 0x8001, b"g3")
            await good.close()
            await bad.close()
            await third.close()
        elif a.scenario == "cap":
            # The SECC serves 3 connections at once: a 4th is closed on arrival, and a
            # connection is accepted again once one of the 3 has gone.
            conns = [await connect(a, host, port) for _ in range(3)]
            result["served"] = [await echo(c, 0x8001, b"c%d" % i) for i, c in enumerate(conns)]
            extra = await connect(a, host, port)
            try:
                await extra.send(0x8001, b"c4")
                await extra.receive(timeout=5)
                result["fourth_closed"] = False
            except (transport.ConnectionClosed, ConnectionError):
                result["fourth_closed"] = True
            await conns.pop().close()
            await asyncio.sleep(0.3)
            async with await connect(a, host, port) as again:
                result["after"] = await echo(again, 0x8001, b"c5")
            for c in conns:
                await c.close()
        result["ok"] = True
    except Exception as e:                      # reported to the test as data
        result.update(ok=False, error=type(e).__name__, message=str(e))
    emit(**result)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="tests.v2g._peers")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("secc", "evcc"):
        s = sub.add_parser(name)
        s.add_argument("--iface", required=True)
        s.add_argument("--tls", action="store_true")
        s.add_argument("--profile", default="iso2")
        s.add_argument("--cert")
        s.add_argument("--key")
        s.add_argument("--trust", action="append", default=[])
        s.add_argument("--keylog")
        s.add_argument("--max-payload", type=int, default=65536)
    sub.choices["secc"].add_argument("--sdp", action="store_true")
    sub.choices["secc"].add_argument("--max-connections", type=int, default=4096)
    e = sub.choices["evcc"]
    e.add_argument("--host")
    e.add_argument("--port", type=int)
    e.add_argument("--discover", action="store_true")
    e.add_argument("--scenario", default="echo", choices=("echo", "oversize", "handler", "cap"))
    s = sub.add_parser("sdp-server")
    s.add_argument("--iface", required=True)
    s.add_argument("--tls-port", type=int)
    s.add_argument("--tcp-port", type=int)
    s.add_argument("--delay", type=float, default=0.0)
    s = sub.add_parser("sdp-client")
    s.add_argument("--iface", required=True)
    s.add_argument("--timeout", type=float, default=0.25)
    s.add_argument("--max", type=int, default=50)
    s.add_argument("--security", default="tls", choices=("tls", "none"))
    a = p.parse_args(argv)
    run = {"secc": run_secc, "evcc": run_evcc, "sdp-server": run_sdp_server,
           "sdp-client": run_sdp_client}[a.cmd]
    asyncio.run(run(a))


if __name__ == "__main__":
    main()
